//! A test SMSC: rusmpp's codec playing the server side of SMPP on a free loopback port.
//!
//! It checks bind credentials, answers `submit_sm` with a configurable status, answers
//! `enquire_link` and `unbind`, and records every PDU it receives, so tests can assert on what
//! tessera sent. It runs on its own thread with its own runtime; dropping it stops the thread.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rusmpp::pdus::{BindTransceiverResp, BindTransmitterResp, SubmitSmResp};
use rusmpp::tokio_codec::CommandCodec;
use rusmpp::{Command, CommandStatus, Pdu};
use tokio_util::codec::Framed;

/// How the SMSC behaves.
#[derive(Clone, Debug)]
pub struct SmscBehaviour {
    /// The system_id it accepts.
    pub system_id: String,
    /// The password it accepts.
    pub password: String,
    /// The status of every submit_sm_resp.
    pub submit_status: CommandStatus,
    /// When false, it accepts connections and never answers anything.
    pub answers: bool,
    /// Sends its own `enquire_link` (and waits for the resp) before answering a bind, as an
    /// SMSC checking the link may.
    pub enquire_link_first: bool,
    /// Closes the connection instead of answering submit_sm.
    pub hang_up_on_submit: bool,
}

impl Default for SmscBehaviour {
    fn default() -> Self {
        SmscBehaviour {
            system_id: "tessera".into(),
            password: "s3cret".into(),
            submit_status: CommandStatus::EsmeRok,
            answers: true,
            enquire_link_first: false,
            hang_up_on_submit: false,
        }
    }
}

/// A bind the SMSC received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    /// `bind_transceiver` or `bind_transmitter`.
    pub kind: String,
    /// Its system_id.
    pub system_id: String,
    /// Its password.
    pub password: String,
    /// Its system_type.
    pub system_type: String,
    /// Its interface_version octet.
    pub interface_version: u8,
}

/// A submit_sm the SMSC received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submit {
    /// source_addr_ton.
    pub source_addr_ton: u8,
    /// source_addr_npi.
    pub source_addr_npi: u8,
    /// source_addr.
    pub source_addr: String,
    /// dest_addr_ton.
    pub dest_addr_ton: u8,
    /// dest_addr_npi.
    pub dest_addr_npi: u8,
    /// destination_addr.
    pub destination_addr: String,
    /// data_coding.
    pub data_coding: u8,
    /// esm_class (0: no UDH).
    pub esm_class: u8,
    /// The short message octets.
    pub short_message: Vec<u8>,
}

impl Submit {
    /// The short message as Latin-1 (each octet one character).
    pub fn text(&self) -> String {
        self.short_message.iter().map(|b| char::from(*b)).collect()
    }
}

#[derive(Default, Debug)]
struct Record {
    /// Command names in arrival order, per connection joined: `bind_transceiver`, `submit_sm` …
    events: Vec<String>,
    binds: Vec<Bind>,
    submits: Vec<Submit>,
    connections: usize,
}

/// A running SMSC.
pub struct Smsc {
    /// Where it listens.
    pub addr: SocketAddr,
    record: Arc<Mutex<Record>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Smsc {
    /// Starts an SMSC with the default behaviour (system_id `tessera`, password `s3cret`).
    pub fn start() -> Smsc {
        Smsc::start_with(SmscBehaviour::default())
    }

    /// Starts an SMSC on a free loopback port.
    pub fn start_with(behaviour: SmscBehaviour) -> Smsc {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind smsc");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("smsc address");
        let record = Arc::new(Mutex::new(Record::default()));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = record.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("smsc runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let mut tasks = tokio::task::JoinSet::new();
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => {
                            let Ok((socket, _)) = accepted else { continue };
                            shared.lock().unwrap().connections += 1;
                            tasks.spawn(serve(socket, behaviour.clone(), shared.clone()));
                        }
                    }
                }
                tasks.abort_all();
            });
        });
        Smsc {
            addr,
            record,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Command names received so far, in order.
    pub fn events(&self) -> Vec<String> {
        self.record.lock().unwrap().events.clone()
    }

    /// Binds received so far.
    pub fn binds(&self) -> Vec<Bind> {
        self.record.lock().unwrap().binds.clone()
    }

    /// Messages received so far.
    pub fn submits(&self) -> Vec<Submit> {
        self.record.lock().unwrap().submits.clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.record.lock().unwrap().connections
    }

    /// Waits until `n` events were recorded (the client may still be closing).
    pub fn wait_for_events(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let events = self.events();
            if events.len() >= n || Instant::now() > deadline {
                return events;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Smsc {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn name(pdu: Option<&Pdu>) -> String {
    match pdu {
        Some(Pdu::BindTransceiver(_)) => "bind_transceiver",
        Some(Pdu::BindTransmitter(_)) => "bind_transmitter",
        Some(Pdu::SubmitSm(_)) => "submit_sm",
        Some(Pdu::Unbind) => "unbind",
        Some(Pdu::EnquireLink) => "enquire_link",
        Some(Pdu::EnquireLinkResp) => "enquire_link_resp",
        _ => "other",
    }
    .to_string()
}

#[expect(
    clippy::too_many_lines,
    reason = "one loop over the SMPP PDUs the SMSC answers, one arm each: a table, read top to bottom"
)]
async fn serve(
    socket: tokio::net::TcpStream,
    behaviour: SmscBehaviour,
    record: Arc<Mutex<Record>>,
) {
    let mut conn = Framed::new(socket, CommandCodec::new());
    let mut message_id = 0u32;
    while let Some(Ok(command)) = conn.next().await {
        let sequence = command.sequence_number();
        record.lock().unwrap().events.push(name(command.pdu()));
        if !behaviour.answers {
            continue;
        }
        let credentials_ok = |system_id: &str, password: &str| {
            system_id == behaviour.system_id && password == behaviour.password
        };
        let bind_status = |ok: bool| {
            if ok {
                CommandStatus::EsmeRok
            } else {
                CommandStatus::EsmeRinvpaswd
            }
        };
        let is_bind = matches!(
            command.pdu(),
            Some(Pdu::BindTransceiver(_) | Pdu::BindTransmitter(_))
        );
        if is_bind && behaviour.enquire_link_first {
            let probe = Command::new(CommandStatus::EsmeRok, 1000, Pdu::EnquireLink);
            if conn.send(probe).await.is_err() {
                break;
            }
            match conn.next().await {
                Some(Ok(answer)) => record.lock().unwrap().events.push(name(answer.pdu())),
                _ => break,
            }
        }
        let reply = match command.pdu() {
            Some(Pdu::BindTransceiver(b)) => {
                record.lock().unwrap().binds.push(Bind {
                    kind: "bind_transceiver".into(),
                    system_id: b.system_id.to_string(),
                    password: b.password.to_string(),
                    system_type: b.system_type.to_string(),
                    interface_version: u8::from(b.interface_version),
                });
                let ok = credentials_ok(b.system_id.as_str(), b.password.as_str());
                Command::new(
                    bind_status(ok),
                    sequence,
                    BindTransceiverResp::builder()
                        .system_id("smsc".parse().unwrap())
                        .build(),
                )
            }
            Some(Pdu::BindTransmitter(b)) => {
                record.lock().unwrap().binds.push(Bind {
                    kind: "bind_transmitter".into(),
                    system_id: b.system_id.to_string(),
                    password: b.password.to_string(),
                    system_type: b.system_type.to_string(),
                    interface_version: u8::from(b.interface_version),
                });
                let ok = credentials_ok(b.system_id.as_str(), b.password.as_str());
                Command::new(
                    bind_status(ok),
                    sequence,
                    BindTransmitterResp::builder()
                        .system_id("smsc".parse().unwrap())
                        .build(),
                )
            }
            Some(Pdu::SubmitSm(_)) if behaviour.hang_up_on_submit => break,
            Some(Pdu::SubmitSm(sm)) => {
                record.lock().unwrap().submits.push(Submit {
                    source_addr_ton: u8::from(sm.source_addr_ton),
                    source_addr_npi: u8::from(sm.source_addr_npi),
                    source_addr: sm.source_addr.to_string(),
                    dest_addr_ton: u8::from(sm.dest_addr_ton),
                    dest_addr_npi: u8::from(sm.dest_addr_npi),
                    destination_addr: sm.destination_addr.to_string(),
                    data_coding: u8::from(sm.data_coding),
                    esm_class: u8::from(sm.esm_class),
                    short_message: sm.short_message().as_ref().to_vec(),
                });
                message_id += 1;
                Command::new(
                    behaviour.submit_status,
                    sequence,
                    SubmitSmResp::builder()
                        .message_id(format!("msg-{message_id}").parse().unwrap())
                        .build(),
                )
            }
            Some(Pdu::EnquireLink) => {
                Command::new(CommandStatus::EsmeRok, sequence, Pdu::EnquireLinkResp)
            }
            Some(Pdu::Unbind) => {
                let _ = conn
                    .send(Command::new(
                        CommandStatus::EsmeRok,
                        sequence,
                        Pdu::UnbindResp,
                    ))
                    .await;
                break;
            }
            _ => Command::new(CommandStatus::EsmeRinvcmdid, sequence, Pdu::GenericNack),
        };
        if conn.send(reply).await.is_err() {
            break;
        }
    }
}
