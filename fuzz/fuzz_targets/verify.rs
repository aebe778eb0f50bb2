//! Fuzz target: everything a datagram from a known client goes through before and after the
//! engine — decode, the Message-Authenticator check, `verify`, User-Password unhiding, the
//! handler's mapping to an `AuthRequest` and the reply encoding — with a fixed secret and a
//! fake engine. Nothing may panic, and every reply must verify as a client checks it.
#![no_main]

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use tessera::auth::{AuthRequest, Authenticate, Outcome};
use tessera::radius::clients::{Client, parse_address};
use tessera::radius::codec::{AttributeType, Packet};
use tessera::radius::dictionary::Dictionary;
use tessera::radius::{crypto, handler, verify};
use tessera::secret::Secret;

const SECRET: &[u8] = b"testing123";

/// An engine that answers at once, in a way that depends on the request.
struct FakeEngine;

impl Authenticate for FakeEngine {
    fn authenticate(&self, request: AuthRequest) -> impl Future<Output = Outcome> + Send {
        let outcome = match request.password.len() % 3 {
            0 => Outcome::Accept {
                message: Some(request.user_name.clone()),
                // Reply attributes from hostile text: the dictionary must encode or refuse.
                reply: vec![
                    ("Class".into(), request.user_name.clone()),
                    ("Session-Timeout".into(), request.user_name.clone()),
                ],
            },
            1 => Outcome::Challenge {
                state: request.state.clone().unwrap_or_default(),
                message: request.user_name.repeat(3),
                timeout: 120,
                tokens: vec![],
            },
            _ => Outcome::Reject {
                message: String::new(),
            },
        };
        std::future::ready(outcome)
    }
}

/// Polls a future that is ready at once (the fake engine never waits).
fn run_now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

fn client(require_message_authenticator: bool) -> Client {
    Client {
        network: Some(parse_address("127.0.0.1").expect("address")),
        secret: Secret::new(SECRET),
        name: "fuzz".into(),
        require_message_authenticator,
        limit_proxy_state: true,
        tls_only: false,
    }
}

fn dictionary() -> &'static Dictionary {
    static DICTIONARY: OnceLock<Dictionary> = OnceLock::new();
    DICTIONARY.get_or_init(|| Dictionary::builtin().unwrap_or_default())
}

fuzz_target!(|data: &[u8]| {
    let Ok(decoded) = Packet::decode(data) else {
        return;
    };
    // Random octets never carry a right HMAC. For half the inputs (by the Identifier's low
    // bit), sign the packet as a client would, so that the paths behind a valid
    // Message-Authenticator are explored too.
    let signed;
    let data = if decoded.identifier & 1 == 1 {
        match decoded.encode_request(SECRET, true) {
            Ok(bytes) => {
                signed = bytes;
                &signed[..]
            }
            Err(_) => return,
        }
    } else {
        data
    };
    let Ok(packet) = Packet::decode(data) else {
        return;
    };
    let _ = crypto::check_request_message_authenticator(data, SECRET);
    if let Some(hidden) = packet.get(AttributeType::USER_PASSWORD) {
        let _ = crypto::unhide_password(hidden, &packet.authenticator, SECRET);
    }
    // With Message-Authenticator optional (the Identifier's second bit), unsigned requests
    // reach the handler too.
    let client = client(decoded.identifier & 2 == 2);
    let Ok(verified) = verify::verify(packet.clone(), data, &client) else {
        return;
    };
    let source = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let reply = run_now(handler::handle(
        &FakeEngine,
        dictionary(),
        &client,
        source,
        verified,
    ));
    if let Ok(reply) = reply {
        let decoded = Packet::decode(&reply).expect("our reply decodes");
        assert_eq!(decoded.identifier, packet.identifier);
        assert!(
            crypto::verify_response(&reply, &packet.authenticator, SECRET),
            "our reply verifies"
        );
    }
});
