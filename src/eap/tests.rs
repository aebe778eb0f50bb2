//! The conversation driver ([`super::serve`]) with a fake engine: outer GTC in one and two
//! rounds, the Nak, what the engine is asked (the inner identity, the method in the client
//! name), and the malformed cases — truncated lengths, an unknown method, a response to no
//! conversation, a conversation abandoned and forgotten.

use std::sync::Mutex;

use super::packet::{self, code, kind};
use super::*;
use crate::auth::Challenged;

/// Accepts "ok", challenges "pin" (state "s1"), accepts the code "123456" with state "s1".
struct Fake {
    asked: Mutex<Vec<AuthRequest>>,
}

impl Authenticate for Fake {
    async fn authenticate(&self, request: AuthRequest) -> Outcome {
        let answer = match (request.password.expose(), request.state.as_deref()) {
            (b"ok", None) => Outcome::Accept {
                message: None,
                reply: vec![("Class".into(), "vpn".into())],
            },
            (b"pin", None) => Outcome::Challenge {
                state: b"s1".to_vec(),
                message: "code sent".into(),
                timeout: 120,
                tokens: Vec::<Challenged>::new(),
            },
            (b"123456", Some(b"s1")) => Outcome::Accept {
                message: None,
                reply: vec![],
            },
            _ => Outcome::Reject {
                message: "no".into(),
            },
        };
        if let Ok(mut asked) = self.asked.lock() {
            asked.push(request);
        }
        answer
    }
}

fn fake() -> Fake {
    Fake {
        asked: Mutex::new(vec![]),
    }
}

fn server(methods: Vec<Method>) -> EapServer {
    EapServer {
        methods,
        tls: None,
        not_after: None,
        limits: settings::Limits::default(),
    }
}

fn input(message: Vec<u8>, state: Option<[u8; 16]>) -> Input {
    Input {
        message,
        state: state.map(|s| s.to_vec()),
        mtu: None,
        request: AuthRequest {
            user_name: "anonymous".into(),
            password: Secret::new(vec![]),
            state: None,
            client: "192.0.2.1".parse().unwrap(),
            client_name: "wifi".into(),
            calling_station: None,
            origin: "192.0.2.1".into(),
            request_id: None,
            reply_limit: None,
        },
    }
}

fn response(id: u8, typ: u8, data: &[u8]) -> Vec<u8> {
    packet::encode(code::RESPONSE, id, typ, data)
}

/// The request an answer carries: (identifier, type, data), and the State.
fn expect_request(answer: Answer) -> (u8, u8, Vec<u8>, [u8; 16]) {
    let Answer::Continue { eap, state } = answer else {
        panic!("expected a request, got {answer:?}");
    };
    let parsed = packet::Eap::decode(&eap).unwrap();
    assert_eq!(parsed.code, code::REQUEST);
    (
        parsed.identifier,
        parsed.kind.unwrap(),
        parsed.data.to_vec(),
        state,
    )
}

fn is_failure(answer: &Answer) -> bool {
    matches!(answer, Answer::Reject { eap: Some(eap) } if eap.first() == Some(&code::FAILURE))
}

#[tokio::test]
async fn outer_gtc_two_rounds_ask_the_engine_with_the_identity_and_method() {
    let (auth, server) = (fake(), server(vec![Method::Gtc]));
    let identity = response(1, kind::IDENTITY, b"alice");
    let (id, typ, text, state) = expect_request(serve(&auth, &server, input(identity, None)).await);
    assert_eq!(
        (id, typ, text.as_slice()),
        (2, kind::GTC, gtc::PROMPT.as_bytes())
    );
    let pin = response(id, kind::GTC, b"pin");
    let (id, typ, text, state) =
        expect_request(serve(&auth, &server, input(pin, Some(state))).await);
    assert_eq!(
        (id, typ, text.as_slice()),
        (3, kind::GTC, &b"code sent"[..])
    );
    let code = response(id, kind::GTC, b"123456");
    let answer = serve(&auth, &server, input(code, Some(state))).await;
    let Answer::Accept { eap, msk, accepted } = answer else {
        panic!("{answer:?}");
    };
    assert_eq!(eap, packet::success(3));
    assert_eq!((msk, accepted.user.as_str()), (None, "alice"));
    {
        let asked = auth.asked.lock().unwrap();
        assert_eq!(asked.len(), 2);
        assert_eq!(asked[0].user_name, "alice");
        assert_eq!(asked[0].client_name, "wifi eap-gtc");
        assert_eq!(asked[1].state.as_deref(), Some(&b"s1"[..]));
    }
    // The conversation is over: its State opens nothing.
    let again = response(3, kind::GTC, b"123456");
    assert!(is_failure(
        &serve(&auth, &server, input(again, Some(state))).await
    ));
}

#[tokio::test]
async fn a_nak_picks_the_next_method_and_an_unknown_one_fails() {
    let (auth, server) = (fake(), server(vec![Method::Ttls, Method::Gtc]));
    let identity = response(7, kind::IDENTITY, b"alice");
    let (id, typ, _, state) = expect_request(serve(&auth, &server, input(identity, None)).await);
    assert_eq!((id, typ), (8, kind::TTLS));
    // The peer wants MD5 (4) or GTC.
    let nak = response(id, kind::NAK, &[4, kind::GTC]);
    let (id, typ, _, state) = expect_request(serve(&auth, &server, input(nak, Some(state))).await);
    assert_eq!(typ, kind::GTC);
    let ok = response(id, kind::GTC, b"ok");
    let Answer::Accept { accepted, .. } = serve(&auth, &server, input(ok, Some(state))).await
    else {
        panic!("expected accept");
    };
    assert_eq!(
        accepted.reply,
        vec![("Class".to_string(), "vpn".to_string())]
    );

    // A peer that answers with a method never proposed (MD5), or Naks for one not offered.
    let identity = response(1, kind::IDENTITY, b"alice");
    let (id, _, _, state) = expect_request(serve(&auth, &server, input(identity, None)).await);
    let md5 = response(id, 4, &[16, 0, 0]);
    assert!(is_failure(
        &serve(&auth, &server, input(md5, Some(state))).await
    ));
    let identity = response(1, kind::IDENTITY, b"alice");
    let (id, _, _, state) = expect_request(serve(&auth, &server, input(identity, None)).await);
    let nak = response(id, kind::NAK, &[4]);
    assert!(is_failure(
        &serve(&auth, &server, input(nak, Some(state))).await
    ));
    assert_eq!(auth.asked.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn malformed_and_strangers_packets_are_rejected_without_the_engine() {
    let (auth, server) = (fake(), server(vec![Method::Gtc]));
    // Truncated: the length says 40.
    let answer = serve(&auth, &server, input(vec![2, 1, 0, 40, 1, b'a'], None)).await;
    assert!(matches!(answer, Answer::Reject { eap: None }));
    // A length below the header.
    let answer = serve(&auth, &server, input(vec![2, 1, 0, 2], None)).await;
    assert!(matches!(answer, Answer::Reject { eap: None }));
    // A request, not a response.
    let request = packet::request(1, kind::IDENTITY, b"x");
    assert!(is_failure(
        &serve(&auth, &server, input(request, None)).await
    ));
    // A GTC response without a conversation, and with an unknown State.
    let gtc = response(2, kind::GTC, b"ok");
    assert!(is_failure(
        &serve(&auth, &server, input(gtc.clone(), None)).await
    ));
    assert!(is_failure(
        &serve(&auth, &server, input(gtc, Some([9; 16]))).await
    ));
    // A response to another request than the last one.
    let identity = response(1, kind::IDENTITY, b"alice");
    let (id, _, _, state) = expect_request(serve(&auth, &server, input(identity, None)).await);
    let stale = response(id.wrapping_sub(1), kind::GTC, b"ok");
    assert!(is_failure(
        &serve(&auth, &server, input(stale, Some(state))).await
    ));
    assert!(auth.asked.lock().unwrap().is_empty());
}

#[tokio::test]
async fn tls_methods_without_a_tunnel_fail_cleanly() {
    // TTLS offered, the peer starts TLS with garbage: the tunnel refuses it.
    let (auth, mut server) = (fake(), server(vec![Method::Ttls]));
    let ca = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_no_client_auth()
    .with_cert_resolver(std::sync::Arc::new(NoCert));
    server.tls = Some(std::sync::Arc::new(ca));
    let identity = response(1, kind::IDENTITY, b"anonymous");
    let (id, typ, data, state) = expect_request(serve(&auth, &server, input(identity, None)).await);
    assert_eq!((typ, data.as_slice()), (kind::TTLS, &[tls::FLAG_START][..]));
    let garbage = response(id, kind::TTLS, &[0, 0x16, 3, 3, 0, 4, 0xfe, 0, 0, 0]);
    assert!(is_failure(
        &serve(&auth, &server, input(garbage, Some(state))).await
    ));
}

/// A resolver without a certificate: the tests above never get as far as one.
#[derive(Debug)]
struct NoCert;

impl rustls::server::ResolvesServerCert for NoCert {
    fn resolve(
        &self,
        _: rustls::server::ClientHello<'_>,
    ) -> Option<std::sync::Arc<rustls::sign::CertifiedKey>> {
        None
    }
}
