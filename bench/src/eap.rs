//! `ttls-gtc` (issue 26): whole EAP-TTLS logins with inner EAP-GTC per second, each a full TLS
//! handshake (ECDSA P-256 certificate, no resumption: tessera has none) and the inner rounds —
//! the inner identity, then the GTC request answered with the HOTP code (otppin=2) — over UDP,
//! each virtual user a supplicant and a NAS in one. The samples are whole logins, first
//! packet to Access-Accept; the TLS fragments go through tessera's own framing.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tessera::eap::packet::{self, Eap, code, kind};
use tessera::eap::tls::{FLAG_START, Framed, Framing};
use tessera::eap::ttls::{decode_avps, encode_avp};
use tessera::otp::hotp;
use tessera::radius::codec::{Attribute, AttributeType, Code};

use crate::load::{Answer, Client, Sample, Transport, VirtualUser};
use crate::scenarios::{Knobs, Row, accepts, measure_over, row, seed, tessera_with_hotp_tokens_in};
use testkit::ca::{KeyKind, TestCa};

/// The AVP codes (RADIUS attribute numbers) the client tunnels.
const AVP_EAP_MESSAGE: u32 = 79;

/// Runs the scenario.
pub async fn ttls_gtc(knobs: &Knobs) -> Result<Vec<Row>, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    TestCa::try_create_in(dir.path(), KeyKind::EcP256)?;
    let config = Arc::new(client_config(&dir.path().join("ca.pem"))?);
    let more = format!(
        "\n[eap]\nmethods = [\"ttls\"]\ntls_certificate = \"server.pem\"\ntls_key = \"server.key\"\n\
         max_conversations = {}\n",
        knobs.concurrency.max(1) * 2
    );
    let peer = tessera_with_hotp_tokens_in(knobs, knobs.users, dir, false, &more).await?;
    let mut users: Vec<EapUser> = (0..knobs.concurrency)
        .map(|_| EapUser {
            config: config.clone(),
            users: vec![],
            next: 0,
        })
        .collect();
    for i in 0..knobs.users {
        if let Some(vu) = users.get_mut(i % knobs.concurrency.max(1)) {
            vu.users.push((format!("u{i}"), seed(i), 0));
        }
    }
    let udp = Transport::Udp(Arc::new(crate::scenarios::SECRET.as_bytes().to_vec()));
    let (_, result) = measure_over(knobs, &peer, peer.addr, &udp, users, None).await?;
    let load = format!("{} VUs", knobs.concurrency);
    Ok(vec![row(
        "ttls-gtc",
        knobs.users,
        load,
        &result,
        accepts(&result),
        &peer,
    )])
}

fn client_config(ca: &Path) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| e.to_string())? {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A virtual user: its share of the HOTP users, each with its counter.
struct EapUser {
    config: Arc<rustls::ClientConfig>,
    users: Vec<(String, Vec<u8>, u64)>,
    next: usize,
}

impl VirtualUser for EapUser {
    async fn step(&mut self, client: &mut Client, samples: &mut Vec<Sample>) {
        let len = self.users.len().max(1);
        let Some((name, seed, counter)) = self.users.get_mut(self.next % len) else {
            return;
        };
        self.next += 1;
        let otp = hotp(seed, *counter, 6);
        let started = std::time::Instant::now();
        let answer = login(client, &self.config, name, &otp)
            .await
            .unwrap_or(Answer::Lost);
        if answer == Answer::Accept {
            *counter += 1;
        }
        samples.push(Sample {
            round: 1,
            micros: started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32,
            answer,
            late: false,
        });
    }
}

/// One whole login; `None` when something other than an answer came (a lost packet, a
/// packet that is not what TTLS says next).
async fn login(
    client: &mut Client,
    config: &Arc<rustls::ClientConfig>,
    user: &str,
    otp: &str,
) -> Option<Answer> {
    let name = ServerName::try_from("localhost").ok()?;
    let mut tls = rustls::ClientConnection::new(config.clone(), name).ok()?;
    let mut framing = Framing::new(1000);
    let mut state: Option<Vec<u8>> = None;
    let mut identity_sent = false;
    let mut eap = packet::encode(code::RESPONSE, 0, kind::IDENTITY, b"anonymous");
    for _ in 0..40 {
        let mut request = client.new_request(Code::ACCESS_REQUEST);
        request.attributes.push(Attribute {
            typ: AttributeType::USER_NAME,
            value: b"anonymous".to_vec(),
        });
        request.push_split(AttributeType::EAP_MESSAGE, &eap);
        if let Some(state) = &state {
            request.push_split(AttributeType::STATE, state);
        }
        let reply = client.exchange(request).await?;
        match reply.code {
            Code::ACCESS_ACCEPT => return Some(Answer::Accept),
            Code::ACCESS_CHALLENGE => {}
            _ => return Some(Answer::Reject),
        }
        state = reply.get(AttributeType::STATE).map(<[u8]>::to_vec);
        let octets: Vec<u8> = reply
            .get_all(AttributeType::EAP_MESSAGE)
            .flatten()
            .copied()
            .collect();
        let request = Eap::decode(&octets).ok()?;
        let data = if request.data.first().is_some_and(|f| f & FLAG_START != 0) {
            flight(&mut tls, &mut framing)?
        } else {
            match framing.receive(request.data).ok()? {
                Framed::Ack => framing.next_fragment()?,
                Framed::Fragment => vec![0],
                Framed::Message(message) => {
                    let mut message = &message[..];
                    while !message.is_empty() {
                        tls.read_tls(&mut message).ok()?;
                        tls.process_new_packets().ok()?;
                    }
                    let mut plaintext = vec![];
                    let _ = std::io::Read::read_to_end(&mut tls.reader(), &mut plaintext);
                    let avps = decode_avps(&plaintext).ok()?;
                    if let Some(inner) = avps.iter().find(|a| a.code == AVP_EAP_MESSAGE) {
                        // The inner GTC request: answer with the code.
                        let inner = Eap::decode(inner.data).ok()?;
                        let response = packet::encode(
                            code::RESPONSE,
                            inner.identifier,
                            kind::GTC,
                            otp.as_bytes(),
                        );
                        tunnel(&mut tls, &response)?;
                    } else if !tls.is_handshaking() && !identity_sent {
                        let identity =
                            packet::encode(code::RESPONSE, 0, kind::IDENTITY, user.as_bytes());
                        tunnel(&mut tls, &identity)?;
                        identity_sent = true;
                    }
                    flight(&mut tls, &mut framing)?
                }
            }
        };
        eap = packet::encode(code::RESPONSE, request.identifier, kind::TTLS, &data);
    }
    None
}

/// An inner EAP packet into the tunnel, in an EAP-Message AVP.
fn tunnel(tls: &mut rustls::ClientConnection, inner: &[u8]) -> Option<()> {
    std::io::Write::write_all(&mut tls.writer(), &encode_avp(AVP_EAP_MESSAGE, inner)).ok()
}

/// What TLS has to send, as the first fragment's data (an acknowledgement when nothing).
fn flight(tls: &mut rustls::ClientConnection, framing: &mut Framing) -> Option<Vec<u8>> {
    let mut out = vec![];
    while tls.wants_write() {
        tls.write_tls(&mut out).ok()?;
    }
    Some(framing.send(out).unwrap_or_else(|| vec![0]))
}
