//! The seam between RADIUS and the engine: a verified Access-Request becomes an
//! [`AuthRequest`], and the engine's [`Outcome`] becomes Access-Accept, Access-Challenge or
//! Access-Reject. Status-Server is answered here without the engine (RFC 5997).

use super::clients::Client;
use super::codec::{AttributeType, Code, EncodeError, Packet};
use super::crypto;
use super::dictionary::Dictionary;
use super::verify::{Verified, Wire};
use crate::auth::{AuthRequest, Authenticate, Outcome, ReplyCheck};
use crate::secret::Secret;

/// Answers a verified request; returns the encoded reply. The dictionary names attributes in
/// the debug log.
pub async fn handle<A: Authenticate>(
    auth: &A,
    dictionary: &Dictionary,
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
    let outcome = if request.code == Code::STATUS_SERVER {
        // RFC 5997 §3: Access-Accept (with Message-Authenticator) means "alive".
        Outcome::Accept {
            message: None,
            reply: vec![],
        }
    } else {
        match to_auth_request(request, wire, client, source) {
            Ok(auth_request) => auth.authenticate(auth_request).await,
            Err(message) => {
                tracing::info!(client = %client.name, reason = message, "access-request rejected before the engine");
                Outcome::Reject {
                    message: message.to_string(),
                }
            }
        }
    };
    encode_outcome(request, wire, &outcome, client, dictionary)
}

/// The engine checks its reply attributes against the dictionary that will encode them (both
/// come from one configuration snapshot).
impl ReplyCheck for Dictionary {
    fn check(&self, attribute: &str, value: &str) -> Result<(), String> {
        self.encode(attribute, value)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Turns an Access-Request into the engine's request. Errors are reasons to reject.
fn to_auth_request(
    packet: &Packet,
    wire: Wire,
    client: &Client,
    source: std::net::IpAddr,
) -> Result<AuthRequest, &'static str> {
    let user_name = packet
        .get(AttributeType::USER_NAME)
        .ok_or("User-Name missing")?;
    // A non-UTF-8 User-Name is kept, lossily, so logs stay readable; it will match no user.
    let user_name = String::from_utf8_lossy(user_name).into_owned();
    let hidden = match packet.get(AttributeType::USER_PASSWORD) {
        Some(hidden) => hidden,
        None if packet.get(AttributeType::CHAP_PASSWORD).is_some() => {
            return Err("CHAP is not supported; use PAP");
        }
        None if packet.get(AttributeType::EAP_MESSAGE).is_some() => {
            return Err("EAP is not supported; use PAP");
        }
        None => return Err("User-Password missing"),
    };
    let password = match wire {
        Wire::Classic => {
            crypto::unhide_password(hidden, &packet.authenticator, client.secret.expose())
                .map_err(|_| "User-Password malformed")?
        }
        // RFC 9765 §5.1.1: a plain string of 1..=128 octets.
        Wire::Radius11 if (1..=128).contains(&hidden.len()) => hidden.to_vec(),
        Wire::Radius11 => return Err("User-Password malformed"),
    };
    Ok(AuthRequest {
        user_name,
        password: Secret::new(password),
        state: packet.get(AttributeType::STATE).map(<[u8]>::to_vec),
        client: source,
        client_name: client.name.clone(),
    })
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
        Outcome::Reject { .. } => Code::ACCESS_REJECT,
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
                            message: crate::auth::engine::MSG_FAILED.to_string(),
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
        } => {
            reply.push_split(AttributeType::STATE, state);
            reply.push_split(AttributeType::REPLY_MESSAGE, message.as_bytes());
            reply.push_split(AttributeType::SESSION_TIMEOUT, &timeout.to_be_bytes());
        }
        Outcome::Reject { message } => {
            reply.push_split(AttributeType::REPLY_MESSAGE, message.as_bytes())
        }
    }
    for proxy_state in request.get_all(AttributeType::PROXY_STATE) {
        reply.push_split(AttributeType::PROXY_STATE, proxy_state);
    }
    match wire {
        Wire::Classic => reply.encode_reply(&request.authenticator, client.secret.expose()),
        Wire::Radius11 => reply.encode_radius11(request.token()),
    }
}
