//! Property tests for the RADIUS layer: for generated packets, encoding then decoding is the
//! identity; User-Password hiding round-trips for every legal length; hostile bytes never make
//! the decoder or the dictionary's log text panic; replies always verify as a client checks
//! them; EAP's fragments reassemble and hostile EAP stays bounded. The fuzz targets in `fuzz/`
//! explore the same ground without a generator.

use proptest::prelude::*;
use tessera::radius::codec::{
    Attribute, AttributeType, Code, HEADER_LEN, MAX_ATTRIBUTE_VALUE, MAX_PACKET_LEN, Packet,
};
use tessera::radius::crypto::{hide_password, unhide_password, verify_response};
use tessera::radius::dictionary::Dictionary;

/// Any attribute but Message-Authenticator, which has rules of its own (RFC 3579 §3.2).
fn attribute() -> impl Strategy<Value = Attribute> {
    (
        any::<u8>().prop_filter("not Message-Authenticator", |t| {
            AttributeType(*t) != AttributeType::MESSAGE_AUTHENTICATOR
        }),
        prop::collection::vec(any::<u8>(), 0..=MAX_ATTRIBUTE_VALUE),
    )
        .prop_map(|(typ, value)| Attribute {
            typ: AttributeType(typ),
            value,
        })
}

/// Any code, identifier and authenticator; attributes kept while the packet stays within
/// 4096 octets; at most one Message-Authenticator (16 octets) anywhere among them.
fn packet() -> impl Strategy<Value = Packet> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<[u8; 16]>(),
        prop::collection::vec(attribute(), 0..=40),
        prop::option::of((any::<[u8; 16]>(), any::<prop::sample::Index>())),
    )
        .prop_map(|(code, identifier, authenticator, generated, ma)| {
            let mut len = HEADER_LEN + if ma.is_some() { 18 } else { 0 };
            let mut attributes: Vec<Attribute> = vec![];
            // An Access-Request may carry User-Name, User-Password, CHAP-Password and State
            // once each (the decoder refuses a second one since issue 12).
            let singular = [
                AttributeType::USER_NAME,
                AttributeType::USER_PASSWORD,
                AttributeType(3),
                AttributeType::STATE,
            ];
            for a in generated {
                if len + 2 + a.value.len() > MAX_PACKET_LEN {
                    break;
                }
                if Code(code) == Code::ACCESS_REQUEST
                    && singular.contains(&a.typ)
                    && attributes.iter().any(|b| b.typ == a.typ)
                {
                    continue;
                }
                len += 2 + a.value.len();
                attributes.push(a);
            }
            if let Some((value, at)) = ma {
                attributes.insert(
                    at.index(attributes.len() + 1),
                    Attribute {
                        typ: AttributeType::MESSAGE_AUTHENTICATOR,
                        value: value.to_vec(),
                    },
                );
            }
            Packet {
                code: Code(code),
                identifier,
                authenticator,
                attributes,
            }
        })
}

proptest! {
    #[test]
    fn encode_then_decode_is_the_identity(p in packet(), padding in prop::collection::vec(any::<u8>(), 0..8)) {
        let mut wire = p.encode_raw().unwrap();
        let declared = usize::from(u16::from_be_bytes([wire[2], wire[3]]));
        prop_assert_eq!(declared, wire.len());
        prop_assert!(wire.len() <= MAX_PACKET_LEN);
        prop_assert_eq!(&Packet::decode(&wire).unwrap(), &p);
        // RFC 2865 §3: octets past Length are padding.
        wire.extend_from_slice(&padding);
        prop_assert_eq!(Packet::decode(&wire).unwrap(), p);
    }

    #[test]
    fn replies_verify_and_carry_message_authenticator_first(
        p in packet(),
        request_authenticator in any::<[u8; 16]>(),
        secret in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        if let Ok(reply) = p.encode_reply(&request_authenticator, &secret) {
            prop_assert!(verify_response(&reply, &request_authenticator, &secret));
            let back = Packet::decode(&reply).unwrap();
            prop_assert_eq!(back.attributes[0].typ, AttributeType::MESSAGE_AUTHENTICATOR);
            let ma_count = back
                .attributes
                .iter()
                .filter(|a| a.typ == AttributeType::MESSAGE_AUTHENTICATOR)
                .count();
            prop_assert_eq!(ma_count, 1);
        }
    }

    #[test]
    fn user_password_round_trips(
        password in prop::collection::vec(1u8..=255, 1..=128),
        authenticator in any::<[u8; 16]>(),
        secret in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        let hidden = hide_password(&password, &authenticator, &secret);
        prop_assert_eq!(hidden.len(), password.len().div_ceil(16) * 16);
        prop_assert_eq!(unhide_password(&hidden, &authenticator, &secret).unwrap(), password);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..=600)) {
        let dictionary = Dictionary::builtin().unwrap();
        if let Ok(p) = Packet::decode(&bytes) {
            let _ = dictionary.describe_all(&p.attributes);
        }
    }

    #[test]
    fn vendor_strings_encode_and_describe(text in "[ -~]{1,247}") {
        let dictionary = Dictionary::builtin().unwrap();
        let attributes = dictionary.encode("Cisco-AVPair", &text).unwrap();
        prop_assert_eq!(attributes.len(), 1);
        prop_assert_eq!(attributes[0].value.len(), text.len() + 6);
        prop_assert_eq!(dictionary.describe(&attributes[0]), format!("Cisco-AVPair = {text:?}"));
    }
}

/// EAP's framing (issue 26): a message cut into fragments as tessera cuts its own is
/// reassembled to the same octets, whatever the fragment size; arbitrary packets never make
/// the EAP or AVP decoders or the reassembler panic or hold more than the bound.
mod eap {
    use proptest::prelude::*;
    use tessera::eap::packet::Eap;
    use tessera::eap::tls::{Framed, Framing, MAX_MESSAGE};
    use tessera::eap::ttls::decode_avps;

    proptest! {
        #[test]
        fn fragments_reassemble_to_the_message(
            message in prop::collection::vec(any::<u8>(), 1..5000),
            size in 64usize..1500,
        ) {
            let mut sender = Framing::new(size);
            let mut receiver = Framing::new(size);
            let mut fragment = sender.send(message.clone());
            let mut whole = None;
            while let Some(data) = fragment.take() {
                match receiver.receive(&data) {
                    Ok(Framed::Fragment) => {
                        prop_assert_eq!(sender.receive(&[0]), Ok(Framed::Ack));
                        fragment = sender.next_fragment();
                    }
                    Ok(Framed::Message(m)) => whole = Some(m),
                    other => prop_assert!(false, "{other:?}"),
                }
            }
            prop_assert_eq!(whole, Some(message));
        }

        #[test]
        fn hostile_eap_never_panics_nor_grows(
            packets in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..1200), 1..40),
        ) {
            let mut framing = Framing::new(64);
            for packet in &packets {
                let _ = Eap::decode(packet);
                let _ = decode_avps(packet);
                match framing.receive(packet) {
                    Ok(Framed::Message(m)) => prop_assert!(m.len() <= MAX_MESSAGE),
                    Ok(_) => {}
                    Err(_) => break,
                }
                prop_assert!(framing.buffered() <= MAX_MESSAGE);
            }
        }
    }
}
