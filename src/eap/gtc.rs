//! EAP-GTC (RFC 3748 §5.6): a request carries text for the user, the response what the user
//! typed. Outside a tunnel (IKEv2 inside its own, `methods = ["gtc"]`) the peer's identity is
//! the user, and the response goes to the engine like a PAP password: password+code in one
//! field. When the engine answers with a challenge, a second GTC request carries its text and
//! the response is the code (RFC 3748 allows it; wpa_supplicant ignores a second outer GTC
//! request, strongSwan and other peers answer it). Inside TTLS and PEAP, the same two rounds
//! are run by `ttls.rs` and `peap.rs` with this prompt.

use super::Conversation;
use super::packet::{self, kind};
use super::{Login, Step, Verdict};
use crate::secret::Secret;

/// The first GTC request's text.
pub const PROMPT: &str = "Password: ";

/// The peer's GTC response: the credentials for the engine.
pub fn response(conversation: &mut Conversation, data: &[u8]) -> Step {
    Step::Check(Login {
        user: conversation.outer_identity.clone(),
        password: Secret::new(data.to_vec()),
    })
}

/// The engine's verdict: success, a second request with the challenge's text, or failure.
pub fn resume(conversation: &mut Conversation, verdict: Verdict) -> Step {
    match verdict {
        Verdict::Accept => Step::Success,
        Verdict::Challenge { message } => {
            let id = conversation.next_identifier();
            Step::Send(packet::request(id, kind::GTC, prompt(&message).as_bytes()))
        }
        Verdict::Reject => Step::Failure("rejected"),
    }
}

/// A GTC request's text: the engine's message, never empty (RFC 3748 §5.6 asks for a
/// displayable message).
pub fn prompt(message: &str) -> &str {
    if message.is_empty() { PROMPT } else { message }
}
