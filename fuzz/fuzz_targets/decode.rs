//! Fuzz target: the packet decoder. Any datagram either fails to decode or decodes to a packet
//! that encodes back to exactly the octets it was read from (RFC 2865 §3: octets past Length
//! are padding), and decodes again to the same packet. The dictionary's log text must not
//! panic on whatever attributes came in.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tessera::radius::codec::Packet;
use tessera::radius::dictionary::Dictionary;

fn dictionary() -> &'static Dictionary {
    static DICTIONARY: OnceLock<Dictionary> = OnceLock::new();
    DICTIONARY.get_or_init(|| Dictionary::builtin().unwrap_or_default())
}

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::decode(data) else {
        return;
    };
    let encoded = packet.encode_raw().expect("a decoded packet encodes");
    let declared = usize::from(u16::from_be_bytes([data[2], data[3]]));
    assert_eq!(
        encoded,
        data[..declared],
        "encode(decode(x)) is x up to Length"
    );
    let again = Packet::decode(&encoded).expect("an encoded packet decodes");
    assert_eq!(again, packet, "decode(encode(p)) is p");
    let _ = dictionary().describe_all(&packet.attributes);
});
