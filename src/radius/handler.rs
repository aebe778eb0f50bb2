//! The seam between RADIUS and the engine: a verified Access-Request becomes an
//! [`AuthRequest`], and the engine's [`Outcome`] becomes Access-Accept, Access-Challenge or
//! Access-Reject. Status-Server is answered here without the engine (RFC 5997).

use super::clients::Client;
use super::codec::{AttributeType, Code, EncodeError, HEADER_LEN, MAX_PACKET_LEN, Packet};
use super::crypto;
use super::dictionary::Dictionary;
use super::upstream::{UpstreamStates, Upstreams};
use super::verify::{Verified, Wire};
use crate::auth::{AuthRequest, Authenticate, Outcome, ReplyCheck};
use crate::secret::Secret;

/// Answers a verified request; returns the encoded reply. The dictionary names attributes in
/// the debug log.
#[allow(
    clippy::too_many_arguments,
    reason = "one request's snapshot parts, none of which belong together elsewhere"
)]
pub async fn handle<A: Authenticate>(
    auth: &A,
    eap: Option<&crate::eap::EapServer>,
    dictionary: &Dictionary,
    upstreams: &Upstreams,
    client: &Client,
    source: std::net::IpAddr,
    request: Verified,
) -> Result<Vec<u8>, EncodeError> {
    let wire = request.wire();
    let request = request.packet();
    if tracing::enabled!(tracing::Level::DEBUG) {
        // `describe_all` prints User-Password and CHAP-Password as `***`.
        tracing::debug!(
            client = %client.name,
            code = %request.code,
            id = request.identifier,
            attributes = %dictionary.describe_all(&request.attributes),
            "request"
        );
    }
    // The second round of a legacy server's challenge goes back to that server (passthru).
    if request.code == Code::ACCESS_REQUEST
        && let Some(upstream) = request
            .get(AttributeType::STATE)
            .and_then(|state| UpstreamStates::global().issuer(state))
    {
        let password = request
            .get(AttributeType::USER_PASSWORD)
            .and_then(|hidden| match wire {
                Wire::Classic => {
                    crypto::unhide_password(hidden, &request.authenticator, client.secret.expose())
                        .ok()
                }
                Wire::Radius11 => Some(hidden.to_vec()),
            })
            .unwrap_or_default();
        let to = Relay {
            request,
            wire,
            client,
        };
        return relay(auth, upstreams, &upstream, &to, &password, None).await;
    }
    let outcome = if request.code == Code::STATUS_SERVER {
        // RFC 5997 §3: Access-Accept (with Message-Authenticator) means "alive".
        Outcome::Accept {
            message: None,
            reply: vec![],
        }
    } else {
        match to_auth_request(request, wire, client, source) {
            Ok(auth_request) => auth.authenticate(auth_request).await,
            Err(NotPap::Eap) => {
                let on = super::eap::On::new(request, wire, client);
                return eap_reply(auth, eap, dictionary, on, source).await;
            }
            Err(NotPap::Reject(message)) => {
                tracing::info!(client = %client.name, reason = message, "access-request rejected before the engine");
                Outcome::Reject {
                    message: message.to_string(),
                }
            }
        }
    };
    if let Outcome::Forward {
        upstream,
        request: forwarded,
    } = outcome
    {
        let password = forwarded.password.clone();
        let to = Relay {
            request,
            wire,
            client,
        };
        return relay(
            auth,
            upstreams,
            &upstream,
            &to,
            password.expose(),
            Some(*forwarded),
        )
        .await;
    }
    encode_outcome(request, wire, &outcome, client, dictionary)
}

/// The reply to an Access-Request carrying EAP (see [`super::eap`]), signed.
async fn eap_reply<A: Authenticate>(
    auth: &A,
    eap: Option<&crate::eap::EapServer>,
    dictionary: &Dictionary,
    on: super::eap::On<'_>,
    source: std::net::IpAddr,
) -> Result<Vec<u8>, EncodeError> {
    let super::eap::On {
        request,
        wire,
        client,
    } = on;
    // The inner logins are built on this request; user and password are EAP's.
    let user_name = request
        .get(AttributeType::USER_NAME)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default();
    let base = auth_request(
        request,
        wire,
        client,
        source,
        user_name,
        Secret::new(vec![]),
    );
    let reply = super::eap::handle(auth, eap, dictionary, on, base).await;
    sign(reply, request, wire, client)
}

/// What a user is told when the legacy server of a passthru does not answer.
const MSG_UPSTREAM_DOWN: &str = "authentication service unavailable, try again later";

/// Forwards `request` to the legacy server `name` and answers the NAS with its reply, re-signed
/// (see [`super::upstream`]). An Accept of a forwarded first round is handed back to the
/// engine (`handed_back`), which may enroll the user's token.
async fn relay<A: Authenticate>(
    auth: &A,
    upstreams: &Upstreams,
    name: &str,
    to: &Relay<'_>,
    password: &[u8],
    handed_back: Option<AuthRequest>,
) -> Result<Vec<u8>, EncodeError> {
    let Relay {
        request,
        wire,
        client,
    } = *to;
    let reject = |message: &str| {
        let mut reply = Packet {
            code: Code::ACCESS_REJECT,
            identifier: request.identifier,
            authenticator: [0; 16],
            attributes: vec![],
        };
        reply.push_split(AttributeType::REPLY_MESSAGE, message.as_bytes());
        sign(reply, request, wire, client)
    };
    let Some(upstream) = upstreams.get(name) else {
        tracing::error!(client = %client.name, upstream = name, "passthru to an upstream the configuration no longer has");
        return reject(MSG_UPSTREAM_DOWN);
    };
    let answer = match upstream.forward(request, password).await {
        Ok(answer) => answer,
        Err(error) => {
            tracing::warn!(client = %client.name, upstream = name, %error, "passthru: the legacy server did not answer");
            return reject(MSG_UPSTREAM_DOWN);
        }
    };
    tracing::info!(client = %client.name, upstream = name, answer = %answer.code, "passthru: relayed the legacy server's answer");
    if answer.code == Code::ACCESS_CHALLENGE
        && let Some(state) = answer.get(AttributeType::STATE)
    {
        let lifetime = answer
            .get(AttributeType::SESSION_TIMEOUT)
            .and_then(|v| <[u8; 4]>::try_from(v).ok())
            .map(|v| std::time::Duration::from_secs(u64::from(u32::from_be_bytes(v))));
        UpstreamStates::global().remember(state, name, lifetime);
    }
    if answer.code == Code::ACCESS_ACCEPT
        && let Some(forwarded) = handed_back
    {
        auth.passthru_accepted(forwarded).await;
    }
    let reply = Packet {
        code: answer.code,
        identifier: request.identifier,
        authenticator: [0; 16],
        attributes: answer
            .attributes
            .into_iter()
            .filter(|a| a.typ != AttributeType::PROXY_STATE)
            .collect(),
    };
    // The NAS's own Proxy-State goes back in `sign` (the upstream echoed them too).
    sign(reply, request, wire, client)
}

/// Where a relayed answer goes: the NAS's request, how it came, and its client.
#[derive(Clone, Copy)]
struct Relay<'a> {
    request: &'a Packet,
    wire: Wire,
    client: &'a Client,
}

/// The engine checks its reply attributes against the dictionary that will encode them (both
/// come from one configuration snapshot).
impl ReplyCheck for Dictionary {
    fn check(&self, attribute: &str, value: &str) -> Result<(), String> {
        self.encode(attribute, value)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// As `encode_outcome` writes an Accept: the Reply-Message split into pieces, then each
    /// attribute as the dictionary encodes it.
    fn reply_len(&self, message: Option<&str>, attributes: &[(String, String)]) -> usize {
        let message = message.map_or(0, |m| Packet::split_len(m.len()));
        attributes
            .iter()
            .filter_map(|(name, value)| self.encode(name, value).ok())
            .flatten()
            .map(|attribute| attribute.value.len().saturating_add(2))
            .fold(message, usize::saturating_add)
    }
}

/// The octets an Accept to `packet` has for the engine's message and reply attributes: a
/// packet's 4,096 (RFC 2865 §3) less the header, the Message-Authenticator (RADIUS/1.1 has
/// none) and the request's Proxy-State, which the reply echoes (RFC 2865 §5.33).
fn reply_limit(packet: &Packet, wire: Wire) -> usize {
    let message_authenticator = match wire {
        Wire::Classic => 18,
        Wire::Radius11 => 0,
    };
    packet
        .get_all(AttributeType::PROXY_STATE)
        .map(|proxy_state| Packet::split_len(proxy_state.len()))
        .fold(
            MAX_PACKET_LEN - HEADER_LEN - message_authenticator,
            usize::saturating_sub,
        )
}

/// Why an Access-Request is not a PAP login.
enum NotPap {
    /// It carries EAP: `super::eap` answers it.
    Eap,
    /// A reason to reject.
    Reject(&'static str),
}

/// Turns an Access-Request into the engine's request.
fn to_auth_request(
    packet: &Packet,
    wire: Wire,
    client: &Client,
    source: std::net::IpAddr,
) -> Result<AuthRequest, NotPap> {
    let user_name = packet
        .get(AttributeType::USER_NAME)
        .ok_or(NotPap::Reject("User-Name missing"))?;
    // A non-UTF-8 User-Name is kept, lossily, so logs stay readable; it will match no user.
    let user_name = String::from_utf8_lossy(user_name).into_owned();
    let hidden = match packet.get(AttributeType::USER_PASSWORD) {
        Some(hidden) => hidden,
        None if packet.get(AttributeType::CHAP_PASSWORD).is_some() => {
            return Err(NotPap::Reject("CHAP is not supported; use PAP"));
        }
        None if packet.get(AttributeType::EAP_MESSAGE).is_some() => return Err(NotPap::Eap),
        None => return Err(NotPap::Reject("User-Password missing")),
    };
    let password = match wire {
        Wire::Classic => {
            crypto::unhide_password(hidden, &packet.authenticator, client.secret.expose())
                .map_err(|_| NotPap::Reject("User-Password malformed"))?
        }
        // RFC 9765 §5.1.1: a plain string of 1..=128 octets.
        Wire::Radius11 if (1..=128).contains(&hidden.len()) => hidden.to_vec(),
        Wire::Radius11 => return Err(NotPap::Reject("User-Password malformed")),
    };
    Ok(auth_request(
        packet,
        wire,
        client,
        source,
        user_name,
        Secret::new(password),
    ))
}

/// The engine's request for `user_name` and `password` as this Access-Request has them: the
/// State, the client, the back-off's origin, the request's identity among retransmits and the
/// room for the reply. EAP's inner logins are built on it too.
fn auth_request(
    packet: &Packet,
    wire: Wire,
    client: &Client,
    source: std::net::IpAddr,
    user_name: String,
    password: Secret,
) -> AuthRequest {
    let state = packet.get(AttributeType::STATE).map(<[u8]>::to_vec);
    let calling_station = packet
        .get(AttributeType::CALLING_STATION_ID)
        .map(|v| String::from_utf8_lossy(v).into_owned());
    // The back-off's origin: the user's station where the NAS names one, else the NAS.
    let origin = match calling_station.as_deref() {
        Some(station) if !station.is_empty() => station.to_string(),
        _ => source.to_string(),
    };
    AuthRequest {
        request_id: Some(request_id(packet, source, &user_name, state.as_deref())),
        reply_limit: Some(reply_limit(packet, wire)),
        user_name,
        password,
        state,
        client: source,
        client_name: client.name.clone(),
        calling_station,
        origin,
    }
}

/// What makes a request the same request when a NAS resends it, to this node or (after a
/// failover) another: the NAS's address, Identifier and Request Authenticator (RFC 5080
/// §2.2.2, less the source port, which differs between the sockets a NAS uses per server),
/// with User-Name and State so that a digest names one login round. The password is not in
/// it: the digest is stored.
fn request_id(
    packet: &Packet,
    source: std::net::IpAddr,
    user_name: &str,
    state: Option<&[u8]>,
) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(b"tessera request\0");
    match source {
        std::net::IpAddr::V4(a) => hash.update(a.to_ipv6_mapped().octets()),
        std::net::IpAddr::V6(a) => hash.update(a.octets()),
    }
    hash.update([packet.identifier]);
    hash.update(packet.authenticator);
    for part in [user_name.as_bytes(), state.unwrap_or_default()] {
        hash.update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
        hash.update(part);
    }
    let digest = hash.finalize();
    let mut id = [0u8; 16];
    for (to, from) in id.iter_mut().zip(digest.iter()) {
        *to = *from;
    }
    id
}

/// Builds and encodes the reply for an outcome: Message-Authenticator first (added by the
/// encoder), Proxy-State echoed in order (RFC 2865 §5.33), then the outcome's attributes.
fn encode_outcome(
    request: &Packet,
    wire: Wire,
    outcome: &Outcome,
    client: &Client,
    dictionary: &Dictionary,
) -> Result<Vec<u8>, EncodeError> {
    let code = match outcome {
        Outcome::Accept { .. } => Code::ACCESS_ACCEPT,
        Outcome::Challenge { .. } => Code::ACCESS_CHALLENGE,
        // `handle` forwards these; should one reach here, nobody decided: reject.
        Outcome::Reject { .. } | Outcome::Forward { .. } => Code::ACCESS_REJECT,
    };
    let mut reply = Packet {
        code,
        identifier: request.identifier,
        authenticator: [0; 16],
        attributes: vec![],
    };
    match outcome {
        Outcome::Accept {
            message,
            reply: attributes,
        } => {
            if let Some(message) = message {
                reply.push_split(AttributeType::REPLY_MESSAGE, message.as_bytes());
            }
            // Policies' reply attributes, typed by the dictionary. Names were checked when the
            // config loaded, and the engine checked the values (an integer attribute fed a
            // group name, a 300-octet Class) against this same dictionary before accepting.
            // Should one still fail, the answer is a Reject: an Accept never goes out without
            // an attribute a policy added.
            for (name, value) in attributes {
                match dictionary.encode(name, value) {
                    Ok(encoded) => reply.attributes.extend(encoded),
                    Err(error) => {
                        tracing::error!(
                            client = %client.name,
                            attribute = %name,
                            %error,
                            "reply attribute cannot be encoded: Access-Accept turned into Access-Reject"
                        );
                        let reject = Outcome::Reject {
                            message: crate::auth::decision::MSG_FAILED.to_string(),
                        };
                        return encode_outcome(request, wire, &reject, client, dictionary);
                    }
                }
            }
        }
        Outcome::Challenge {
            state,
            message,
            timeout,
            ..
        } => {
            reply.push_split(AttributeType::STATE, state);
            reply.push_split(AttributeType::REPLY_MESSAGE, message.as_bytes());
            reply.push_split(AttributeType::SESSION_TIMEOUT, &timeout.to_be_bytes());
        }
        Outcome::Reject { message } => {
            reply.push_split(AttributeType::REPLY_MESSAGE, message.as_bytes())
        }
        Outcome::Forward { .. } => {}
    }
    match sign(reply, request, wire, client) {
        // The engine measured the Accept against the request's room (`reply_limit`); should a
        // reply still not fit, the NAS hears a Reject now rather than nothing, retransmit
        // after retransmit.
        Err(EncodeError::PacketTooLong { len }) if code != Code::ACCESS_REJECT => {
            tracing::error!(
                client = %client.name,
                code = %code,
                len,
                "reply does not fit in one packet: Access-Reject sent instead"
            );
            let reject = Outcome::Reject {
                message: crate::auth::decision::MSG_FAILED.to_string(),
            };
            encode_outcome(request, wire, &reject, client, dictionary)
        }
        encoded => encoded,
    }
}

/// Finishes a reply to `request`: its Proxy-State echoed in order (RFC 2865 §5.33), then
/// encoded as the request came — RADIUS with Message-Authenticator and Response Authenticator,
/// or RADIUS/1.1 with the request's Token. Accounting-Responses are signed here too.
pub(super) fn sign(
    mut reply: Packet,
    request: &Packet,
    wire: Wire,
    client: &Client,
) -> Result<Vec<u8>, EncodeError> {
    for proxy_state in request.get_all(AttributeType::PROXY_STATE) {
        reply.push_split(AttributeType::PROXY_STATE, proxy_state);
    }
    match wire {
        Wire::Classic => reply.encode_reply(&request.authenticator, client.secret.expose()),
        Wire::Radius11 => reply.encode_radius11(request.token()),
    }
}
