//! A minimal EAP-TTLS/PAP supplicant and NAS in the test, for what eapol_test cannot do: an
//! inner Access-Challenge (RFC 5281 §11.2.5), whose text comes back in a tunnelled
//! Reply-Message AVP and is answered by a second User-Password. rustls is the TLS client (it
//! trusts the test CA); the RADIUS packets are tessera's codec, with Message-Authenticator; the
//! EAP-TLS fragments go through tessera's own framing, both directions.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tessera::eap::packet::{self, Eap, code, kind};
use tessera::eap::tls::{FLAG_START, Framed, Framing};
use tessera::eap::ttls::{decode_avps, encode_avp};
use tessera::radius::codec::{Attribute, AttributeType, Code, Packet};

use crate::util::SECRET;

/// How a run ended: the last RADIUS code and the challenge texts seen.
pub struct Ended {
    /// Access-Accept or Access-Reject.
    pub code: Code,
    /// The Reply-Message AVPs tunnelled to the client, in order.
    pub challenges: Vec<String>,
    /// The longest EAP-Message tessera sent (octets, the EAP header included).
    pub longest: usize,
}

struct Nas {
    /// Framed-MTU sent with every request, if any.
    mtu: Option<u32>,
    socket: UdpSocket,
    server: SocketAddr,
    identifier: u8,
    state: Option<Vec<u8>>,
}

impl Nas {
    /// Sends one EAP response in an Access-Request; returns the reply.
    fn exchange(&mut self, eap: &[u8]) -> Packet {
        self.identifier = self.identifier.wrapping_add(1);
        let mut request = Packet {
            code: Code::ACCESS_REQUEST,
            identifier: self.identifier,
            authenticator: rand_authenticator(self.identifier),
            attributes: vec![Attribute {
                typ: AttributeType::USER_NAME,
                value: b"anonymous".to_vec(),
            }],
        };
        request.push_split(AttributeType::EAP_MESSAGE, eap);
        if let Some(mtu) = self.mtu {
            request.attributes.push(Attribute {
                typ: AttributeType(12),
                value: mtu.to_be_bytes().to_vec(),
            });
        }
        if let Some(state) = &self.state {
            request.push_split(AttributeType::STATE, state);
        }
        let datagram = request.encode_request(SECRET.as_bytes(), true).unwrap();
        self.socket.send_to(&datagram, self.server).unwrap();
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).expect("a reply from tessera");
        let reply = Packet::decode(&buf[..n]).unwrap();
        self.state = reply.get(AttributeType::STATE).map(<[u8]>::to_vec);
        reply
    }
}

fn rand_authenticator(seed: u8) -> [u8; 16] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mut out = nanos.to_be_bytes();
    out[0] ^= seed;
    out
}

/// Logs `user` in with EAP-TTLS/PAP, the NAS sending `mtu` as Framed-MTU: the first
/// User-Password is `answer(None)`; each tunnelled Reply-Message is answered with
/// `answer(Some(text))`.
pub fn ttls_pap(
    server: SocketAddr,
    mtu: Option<u32>,
    ca: &Path,
    user: &str,
    mut answer: impl FnMut(Option<&str>) -> String,
) -> Ended {
    let mut tls = client(ca);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut nas = Nas {
        mtu,
        socket,
        server,
        identifier: 0,
        state: None,
    };
    let mut framing = Framing::new(1000);
    let mut challenges = vec![];
    let mut sent_credentials = false;
    let mut longest = 0;
    let mut reply = nas.exchange(&packet::encode(
        code::RESPONSE,
        0,
        kind::IDENTITY,
        b"anonymous",
    ));
    for _ in 0..64 {
        if reply.code != Code::ACCESS_CHALLENGE {
            return Ended {
                code: reply.code,
                challenges,
                longest,
            };
        }
        let octets: Vec<u8> = reply
            .get_all(AttributeType::EAP_MESSAGE)
            .flatten()
            .copied()
            .collect();
        let eap = Eap::decode(&octets).unwrap();
        longest = longest.max(octets.len());
        assert_eq!(eap.kind, Some(kind::TTLS), "tessera proposes TTLS");
        let data = if eap.data.first().is_some_and(|f| f & FLAG_START != 0) {
            flight(&mut tls, &mut framing)
        } else {
            match framing.receive(eap.data).unwrap() {
                Framed::Ack => framing.next_fragment().unwrap(),
                Framed::Fragment => vec![0],
                Framed::Message(message) => {
                    let mut message = &message[..];
                    while !message.is_empty() {
                        tls.read_tls(&mut message).unwrap();
                        tls.process_new_packets().unwrap();
                    }
                    let mut plaintext = vec![];
                    let _ = std::io::Read::read_to_end(&mut tls.reader(), &mut plaintext);
                    let avps = decode_avps(&plaintext).unwrap();
                    if let Some(text) = avps.iter().find(|a| a.code == 18) {
                        let text = String::from_utf8_lossy(text.data).into_owned();
                        let password = answer(Some(&text));
                        challenges.push(text);
                        credentials(&mut tls, user, &password);
                    } else if !tls.is_handshaking() && !sent_credentials {
                        credentials(&mut tls, user, &answer(None));
                        sent_credentials = true;
                    }
                    flight(&mut tls, &mut framing)
                }
            }
        };
        reply = nas.exchange(&packet::encode(
            code::RESPONSE,
            eap.identifier,
            kind::TTLS,
            &data,
        ));
    }
    panic!("the conversation did not end");
}

/// A TLS client trusting `ca`, for the server `localhost`.
fn client(ca: &Path) -> rustls::ClientConnection {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    rustls::ClientConnection::new(Arc::new(config), name).unwrap()
}

/// User-Name and User-Password AVPs into the tunnel.
fn credentials(tls: &mut rustls::ClientConnection, user: &str, password: &str) {
    let mut avps = encode_avp(1, user.as_bytes());
    avps.extend(encode_avp(2, password.as_bytes()));
    std::io::Write::write_all(&mut tls.writer(), &avps).unwrap();
}

/// What TLS has to send, as the first fragment's data (an acknowledgement when nothing).
fn flight(tls: &mut rustls::ClientConnection, framing: &mut Framing) -> Vec<u8> {
    let mut out = vec![];
    while tls.wants_write() {
        tls.write_tls(&mut out).unwrap();
    }
    framing.send(out).unwrap_or_else(|| vec![0])
}
