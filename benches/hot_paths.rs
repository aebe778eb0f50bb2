//! `cargo bench`: the pure functions every request runs through, one at a time.
//!
//! These show where a change moves the cost of a single step; `bench/run.sh` (tessera-bench)
//! measures the whole server under RADIUS load. Inputs are built once, outside the timed part.

use std::net::{IpAddr, Ipv4Addr};

use divan::{Bencher, black_box};
use tessera::auth::policy::{Policy, PolicyContext, PolicySet, Scope};
use tessera::otp::hotp;
use tessera::radius::codec::{Attribute, AttributeType, Code, Packet};
use tessera::radius::crypto;

const SECRET: &[u8] = b"testing123";
const AUTHENTICATOR: [u8; 16] = *b"0123456789abcdef";

fn main() {
    divan::main();
}

/// A typical Access-Request from a VPN gateway: user, password, NAS facts, with a
/// Message-Authenticator, as bytes on the wire.
fn access_request() -> Vec<u8> {
    let text = |typ, value: &str| Attribute {
        typ: AttributeType(typ),
        value: value.as_bytes().to_vec(),
    };
    let packet = Packet {
        code: Code::ACCESS_REQUEST,
        identifier: 7,
        authenticator: AUTHENTICATOR,
        attributes: vec![
            text(1, "alice@example.org"),
            Attribute {
                typ: AttributeType::USER_PASSWORD,
                value: crypto::hide_password(b"wonderland123456", &AUTHENTICATOR, SECRET),
            },
            text(32, "vpn-gw-1"),
            Attribute {
                typ: AttributeType(4),
                value: vec![192, 0, 2, 1],
            },
            text(30, "203.0.113.5"),
            text(31, "198.51.100.23"),
        ],
    };
    packet.encode_request(SECRET, true).expect("encodes")
}

#[divan::bench]
fn decode_access_request(bencher: Bencher) {
    let datagram = access_request();
    bencher.bench(|| Packet::decode(black_box(&datagram)));
}

#[divan::bench]
fn check_message_authenticator(bencher: Bencher) {
    let datagram = access_request();
    bencher.bench(|| crypto::check_request_message_authenticator(black_box(&datagram), SECRET));
}

#[divan::bench]
fn decode_user_password(bencher: Bencher) {
    let hidden = crypto::hide_password(b"wonderland123456", &AUTHENTICATOR, SECRET);
    bencher.bench(|| crypto::unhide_password(black_box(&hidden), &AUTHENTICATOR, SECRET));
}

/// An Access-Accept with a Reply-Message and a Class, Message-Authenticator and Response
/// Authenticator computed.
#[divan::bench]
fn encode_access_accept(bencher: Bencher) {
    let reply = Packet {
        code: Code::ACCESS_ACCEPT,
        identifier: 7,
        authenticator: [0; 16],
        attributes: vec![
            Attribute {
                typ: AttributeType::REPLY_MESSAGE,
                value: b"welcome".to_vec(),
            },
            Attribute {
                typ: AttributeType(25),
                value: b"vpn-users".to_vec(),
            },
        ],
    };
    bencher.bench(|| black_box(&reply).encode_reply(&AUTHENTICATOR, SECRET));
}

#[divan::bench(args = [6, 8])]
fn hotp_code(bencher: Bencher, digits: u32) {
    let seed = b"12345678901234567890";
    let mut counter = 0u64;
    bencher.bench_local(|| {
        counter += 1;
        hotp(black_box(seed), counter, digits)
    });
}

/// The lookup every request makes (otppin), over a policy set shaped like a real one: a
/// default, per-realm rules, a user pattern and an exact user.
#[divan::bench]
fn policy_lookup(bencher: Bencher) {
    let policy = |name: &str, action: &str, user: &str, realm: &str| {
        Policy::parse(name, "authentication", action, user, realm, "", true).expect("parses")
    };
    let mut policies = vec![policy("default", "otppin=1", "*", "*")];
    for n in 0..20 {
        policies.push(policy(
            &format!("realm{n}"),
            "otppin=2, challenge_validity=300",
            "*",
            &format!("realm{n}"),
        ));
    }
    policies.push(policy("admins", "otppin=0", "admin*", "*"));
    policies.push(policy("alice", "otppin=2", "alice", "example.org"));
    let set = PolicySet::new(policies);
    let ctx = PolicyContext {
        user: "alice",
        realm: "example.org",
        client: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        groups: &[],
    };
    bencher.bench(|| {
        set.action(Scope::Authentication, black_box(&ctx), |a| {
            a.otppin.as_ref()
        })
        .copied()
    });
}
