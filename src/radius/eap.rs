//! The seam between RADIUS and EAP (RFC 3579): an Access-Request carrying EAP-Message becomes
//! an [`crate::eap::Input`] — the EAP-Message attributes joined, the State of its
//! conversation, Framed-MTU, and the request as a PAP login's `AuthRequest` — and the EAP
//! answer becomes Access-Challenge (EAP-Message split into 253-octet attributes, State),
//! Access-Accept (EAP-Success, User-Name = the identity the engine authenticated — the inner
//! one after TTLS and PEAP — MS-MPPE-Recv-Key and MS-MPPE-Send-Key hidden as RFC 2548 asks, the
//! policies' reply attributes) or Access-Reject (EAP-Failure).
//!
//! The User-Name is what FreeRADIUS sends with `use_tunneled_reply`: the NAS takes it for its
//! accounting (hostapd: `ieee802_1x_update_sta_identity`), so the sessions, `tessera sessions`
//! and the Disconnect on revoke name the user and not the anonymous outer identity.
//!
//! RFC 3579 §3.2: an Access-Request with EAP-Message must carry a Message-Authenticator (which
//! `verify` has checked when present); one without is rejected here. The handler only comes
//! here for a request without User-Password, so a PAP login does no work for EAP.

use super::clients::Client;
use super::codec::{Attribute, AttributeType, Code, MAX_ATTRIBUTE_VALUE, Packet};
use super::crypto;
use super::dictionary::Dictionary;
use super::verify::Wire;
use crate::auth::{AuthRequest, Authenticate};
use crate::eap::{Answer, EapServer, Input};

/// RADIUS Framed-MTU (RFC 2865 §5.12).
const FRAMED_MTU: AttributeType = AttributeType(12);
/// Microsoft's vendor number, and its MPPE key attributes (RFC 2548 §2.4.2-3).
const MICROSOFT: u32 = 311;
const MS_MPPE_SEND_KEY: u8 = 16;
const MS_MPPE_RECV_KEY: u8 = 17;
/// The octets an EAP Accept adds to the engine's: EAP-Success, the two keys and the longest
/// User-Name.
const EAP_ACCEPT_OCTETS: usize = 6 + 2 * 58 + 2 + MAX_ATTRIBUTE_VALUE;

/// Answers an Access-Request carrying EAP-Message with the reply to sign; `eap` is the
/// configuration's EAP side (`None`: EAP is off, the request is rejected as before EAP
/// existed), `base` the request as a PAP login's (the inner logins are built on it).
pub(super) async fn handle<A: Authenticate>(
    auth: &A,
    eap: Option<&EapServer>,
    dictionary: &Dictionary,
    on: On<'_>,
    mut base: AuthRequest,
) -> Packet {
    let On {
        request,
        wire,
        client,
    } = on;
    let reject = |message: Option<&str>, eap: Option<Vec<u8>>| {
        let mut reply = reply(Code::ACCESS_REJECT, request);
        if let Some(eap) = eap {
            reply.push_split(AttributeType::EAP_MESSAGE, &eap);
        }
        if let Some(message) = message {
            reply.push_split(AttributeType::REPLY_MESSAGE, message.as_bytes());
        }
        reply
    };
    let Some(server) = eap else {
        tracing::info!(client = %client.name, "access-request rejected before the engine: EAP is not configured ([eap] methods)");
        return reject(Some("EAP is not supported; use PAP"), None);
    };
    if wire == Wire::Classic && !request.has_message_authenticator() {
        tracing::info!(client = %client.name, "EAP access-request without Message-Authenticator (RFC 3579 §3.2): rejected");
        return reject(None, None);
    }
    let message: Vec<u8> = request
        .get_all(AttributeType::EAP_MESSAGE)
        .flatten()
        .copied()
        .collect();
    base.reply_limit = base
        .reply_limit
        .map(|limit| limit.saturating_sub(EAP_ACCEPT_OCTETS));
    let mtu = request
        .get(FRAMED_MTU)
        .and_then(|v| <[u8; 4]>::try_from(v).ok())
        .and_then(|v| usize::try_from(u32::from_be_bytes(v)).ok());
    let input = Input {
        message,
        state: request.get(AttributeType::STATE).map(<[u8]>::to_vec),
        mtu,
        request: base,
    };
    match crate::eap::serve(auth, server, input).await {
        Answer::Continue { eap, state } => {
            let mut reply = reply(Code::ACCESS_CHALLENGE, request);
            reply.push_split(AttributeType::EAP_MESSAGE, &eap);
            reply.push_split(AttributeType::STATE, &state);
            reply
        }
        Answer::Reject { eap } => reject(None, eap),
        Answer::Accept { eap, msk, accepted } => {
            accept(dictionary, &on, &eap, msk.as_ref(), &accepted)
                .unwrap_or_else(|| reject(None, None))
        }
    }
}

/// Where an EAP answer goes: the request, how it came, its client.
#[derive(Clone, Copy)]
pub(super) struct On<'a> {
    /// The Access-Request.
    pub(super) request: &'a Packet,
    /// How it came.
    pub(super) wire: Wire,
    /// Its client.
    pub(super) client: &'a Client,
}

impl<'a> On<'a> {
    /// The request `request`, come over `wire` from `client`.
    pub(super) fn new(request: &'a Packet, wire: Wire, client: &'a Client) -> On<'a> {
        On {
            request,
            wire,
            client,
        }
    }
}

/// The Access-Accept: EAP-Success, the engine's message, the authenticated user's name, the
/// MPPE keys, the policies' reply attributes; `None` when one of those cannot be encoded (the
/// NAS then gets a Reject). A policy's own User-Name replaces the user's.
fn accept(
    dictionary: &Dictionary,
    to: &On<'_>,
    eap: &[u8],
    msk: Option<&crate::eap::keys::Msk>,
    accepted: &crate::eap::Accepted,
) -> Option<Packet> {
    let On {
        request,
        wire,
        client,
    } = *to;
    let mut reply = reply(Code::ACCESS_ACCEPT, request);
    reply.push_split(AttributeType::EAP_MESSAGE, eap);
    if let Some(message) = &accepted.message {
        reply.push_split(AttributeType::REPLY_MESSAGE, message.as_bytes());
    }
    let policy_names_user = accepted
        .reply
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("User-Name"));
    if !policy_names_user {
        user_name(&mut reply, &accepted.user, client);
    }
    if let Some(msk) = msk {
        let (recv, send) = msk.split_at(32);
        for (typ, key) in [(MS_MPPE_RECV_KEY, recv), (MS_MPPE_SEND_KEY, send)] {
            let value = match wire {
                Wire::Classic => {
                    let mut salt = [0u8; 2];
                    getrandom::fill(&mut salt).ok()?;
                    crypto::hide_mppe_key(key, salt, &request.authenticator, client.secret.expose())
                }
                // RFC 9765: no MD5 obfuscation; TLS protects the key.
                Wire::Radius11 => key.to_vec(),
            };
            reply.attributes.push(vendor_attribute(typ, &value));
        }
    }
    for (name, value) in &accepted.reply {
        match dictionary.encode(name, value) {
            Ok(encoded) => reply.attributes.extend(encoded),
            Err(error) => {
                tracing::error!(client = %client.name, attribute = %name, %error, "reply attribute cannot be encoded: Access-Accept turned into Access-Reject");
                return None;
            }
        }
    }
    Some(reply)
}

/// Adds User-Name = `user` (one attribute: RFC 2865 §5.1 allows no more); a name too long for
/// one is left out, and the NAS keeps the identity it had.
fn user_name(reply: &mut Packet, user: &str, client: &Client) {
    if user.is_empty() {
        return;
    }
    if user.len() > MAX_ATTRIBUTE_VALUE {
        tracing::warn!(client = %client.name, "EAP: the inner identity is longer than one User-Name attribute: left out of the Access-Accept");
        return;
    }
    reply.attributes.push(Attribute {
        typ: AttributeType::USER_NAME,
        value: user.as_bytes().to_vec(),
    });
}

fn reply(code: Code, request: &Packet) -> Packet {
    Packet {
        code,
        identifier: request.identifier,
        authenticator: [0; 16],
        attributes: vec![],
    }
}

/// A Microsoft Vendor-Specific attribute (RFC 2865 §5.26).
fn vendor_attribute(typ: u8, value: &[u8]) -> Attribute {
    let mut data = MICROSOFT.to_be_bytes().to_vec();
    data.push(typ);
    data.push(u8::try_from(value.len() + 2).unwrap_or(u8::MAX));
    data.extend_from_slice(value);
    Attribute {
        typ: AttributeType::VENDOR_SPECIFIC,
        value: data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The User-Names of the Accept `accept` builds for `accepted`.
    fn accepted_names(accepted: &crate::eap::Accepted) -> Vec<Vec<u8>> {
        let dictionary = Dictionary::builtin().expect("the built-in dictionary");
        let client = Client {
            network: None,
            secret: crate::secret::Secret::new(b"s".to_vec()),
            name: "wifi".into(),
            require_message_authenticator: false,
            limit_proxy_state: false,
            tls_only: false,
            das: None,
        };
        let request = Packet {
            code: Code::ACCESS_REQUEST,
            identifier: 3,
            authenticator: [1; 16],
            attributes: vec![Attribute {
                typ: AttributeType::USER_NAME,
                value: b"anonymous".to_vec(),
            }],
        };
        let on = On::new(&request, Wire::Classic, &client);
        let reply = accept(&dictionary, &on, &[3, 3, 0, 4], None, accepted).expect("an Accept");
        reply
            .get_all(AttributeType::USER_NAME)
            .map(<[u8]>::to_vec)
            .collect()
    }

    /// The Accept names the user the engine authenticated (the inner identity, as typed), once;
    /// a policy's User-Name replaces it; a name too long for one attribute is left out.
    #[test]
    fn the_accept_names_the_authenticated_user() {
        let mut accepted = crate::eap::Accepted {
            user: "Alice".into(),
            ..Default::default()
        };
        assert_eq!(accepted_names(&accepted), [b"Alice".to_vec()]);
        accepted.reply = vec![("User-Name".into(), "wifi-alice".into())];
        assert_eq!(accepted_names(&accepted), [b"wifi-alice".to_vec()]);
        let accepted = crate::eap::Accepted {
            user: "a".repeat(MAX_ATTRIBUTE_VALUE + 1),
            ..Default::default()
        };
        assert!(accepted_names(&accepted).is_empty());
    }

    /// RFC 2548's hiding, undone as the NAS does: the key comes back.
    #[test]
    fn mppe_keys_are_hidden_so_the_nas_recovers_them() {
        let key: Vec<u8> = (0..32).collect();
        let authenticator = [7u8; 16];
        let hidden = crypto::hide_mppe_key(&key, [0x12, 0x34], &authenticator, b"secret");
        assert_eq!(hidden.len(), 2 + 48);
        assert_eq!(hidden[0] & 0x80, 0x80);
        let (salt, cipher) = hidden.split_at(2);
        let mut plain = vec![];
        let mut b = crate::radius::digest::md5_concat(&[b"secret", &authenticator, salt]);
        for block in cipher.chunks(16) {
            plain.extend(block.iter().zip(b.iter()).map(|(c, k)| c ^ k));
            b = crate::radius::digest::md5_concat(&[b"secret", block]);
        }
        assert_eq!(plain[0], 32);
        assert_eq!(&plain[1..33], &key[..]);
        let attribute = vendor_attribute(MS_MPPE_RECV_KEY, &hidden);
        assert_eq!(&attribute.value[..6], &[0, 0, 1, 55, 17, 52]);
    }
}
