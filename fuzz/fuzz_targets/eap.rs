//! Fuzz target: EAP's framing (issue 26). The input is split at 0xff octets into pieces: the
//! first is decoded as an EAP packet and, when it decodes, re-encoded to the same octets up to
//! its length; each piece is decoded as TTLS AVPs; and the pieces are fed in order to one
//! EAP-TLS fragment reassembler, which must never panic, never hold more than its bound, and
//! stop at the first error. Whatever a whole message it returns is at most the bound too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::eap::packet::{self, Eap};
use tessera::eap::tls::{Framed, Framing, MAX_MESSAGE};
use tessera::eap::ttls::decode_avps;

fuzz_target!(|data: &[u8]| {
    let mut pieces = data.split(|b| *b == 0xff);
    if let Some(first) = pieces.clone().next()
        && let Ok(eap) = Eap::decode(first)
        && let Some(kind) = eap.kind
    {
        let encoded = packet::encode(eap.code, eap.identifier, kind, eap.data);
        let declared = usize::from(u16::from_be_bytes([first[2], first[3]]));
        assert_eq!(encoded, first[..declared], "encode(decode(x)) is x up to Length");
    }
    let mut framing = Framing::new(64);
    for piece in pieces.by_ref() {
        let _ = decode_avps(piece);
        match framing.receive(piece) {
            Ok(Framed::Message(message)) => assert!(message.len() <= MAX_MESSAGE),
            Ok(_) => {}
            Err(_) => break,
        }
        assert!(framing.buffered() <= MAX_MESSAGE);
    }
});
