//! EAP (RFC 3748) for 802.1X and IKEv2: the methods tessera speaks and the conversations they
//! run, front-end neutral. A front end (`radius::eap`, RFC 3579) hands over the peer's EAP
//! packet, the State of its conversation and the request as the engine would see a PAP login;
//! [`serve`] runs the method, asks the engine about the inner identity and password exactly as
//! for PAP, and answers with the next EAP request, or success (with the MSK) or failure.
//!
//! - [`packet`]: the EAP codec.
//! - [`settings`]: `[eap]`, and the opened [`EapServer`] of one configuration.
//! - [`Conversation`] (here): one conversation's state; [`method`]: the dispatch of a peer's
//!   packet to its method; [`conversation`]: the bounded store of open conversations.
//! - [`gtc`], [`ttls`] (with the Diameter AVP codec), [`peap`]: the methods.
//! - [`tls`]: rustls on in-memory buffers and the L/M/S fragmentation.
//! - [`keys`]: the MSK from the TLS exporter.
//!
//! The engine knows nothing of EAP: it gets an [`AuthRequest`] whose user and password are the
//! inner ones, and whose client name carries the method for the audit.

pub mod conversation;
pub mod gtc;
pub mod keys;
pub mod method;
pub mod packet;
pub mod peap;
pub mod settings;
pub mod tls;
pub mod ttls;

use std::time::{Duration, Instant};

use crate::auth::{AuthRequest, Authenticate, Outcome};
use crate::secret::Secret;
use conversation::Conversations;
use packet::{Eap, kind};
pub use settings::{EapConfig, EapServer, EapSettings, Method};

/// What the method is doing.
pub enum Phase {
    /// A method was proposed; the peer may Nak it once.
    Proposed(Method),
    /// Outer GTC: a request is out.
    Gtc,
    /// TTLS: the tunnel and the inner method.
    Ttls(Box<ttls::Ttls>),
    /// PEAPv0: the tunnel and the inner method.
    Peap(Box<peap::Peap>),
}

/// One conversation.
pub struct Conversation {
    /// The identity of EAP-Response/Identity: the user for outer GTC, only logged for the
    /// tunnelled methods (their inner identity decides).
    pub outer_identity: String,
    /// The method's progress.
    pub phase: Phase,
    /// The identifier of the last request sent.
    pub identifier: u8,
    /// Packets taken from the peer so far.
    pub rounds: u32,
    /// The engine's challenge State, echoed in the next check.
    pub engine_state: Option<Vec<u8>>,
    /// Seconds the engine's last challenge stays answerable.
    pub challenge_timeout: Option<u32>,
    /// The engine's Accept, kept while PEAP exchanges its result.
    pub accepted: Option<Accepted>,
    /// Whether a Nak was taken already.
    pub naked: bool,
    /// The TLS fragment size (from Framed-MTU).
    pub fragment: usize,
}

impl Conversation {
    /// A new conversation for `identity`.
    pub fn new(identity: String, first: Method, fragment: usize) -> Conversation {
        Conversation {
            outer_identity: identity,
            phase: Phase::Proposed(first),
            identifier: 0,
            rounds: 0,
            engine_state: None,
            challenge_timeout: None,
            accepted: None,
            naked: false,
            fragment,
        }
    }

    /// The next request's identifier.
    pub fn next_identifier(&mut self) -> u8 {
        self.identifier = self.identifier.wrapping_add(1);
        self.identifier
    }
}

/// What a method does next.
#[derive(Debug)]
pub enum Step {
    /// Send this EAP request and wait for the peer.
    Send(Vec<u8>),
    /// Ask the engine about these credentials, then [`Conversation::resume`].
    Check(Login),
    /// Authenticated.
    Success,
    /// Not authenticated, or the conversation cannot go on (why, for the log).
    Failure(&'static str),
}

/// Credentials for the engine.
#[derive(Debug)]
pub struct Login {
    /// The user (the inner identity in a tunnel).
    pub user: String,
    /// What the user typed.
    pub password: Secret,
}

/// The engine's answer, as a method needs it.
#[derive(Debug)]
pub enum Verdict {
    /// Authenticated.
    Accept,
    /// A code was sent: ask for it with this text.
    Challenge {
        /// What to show the user.
        message: String,
    },
    /// Not authenticated.
    Reject,
}

/// The engine's Accept, kept until the method is done.
#[derive(Debug, Clone, Default)]
pub struct Accepted {
    /// Text for the user.
    pub message: Option<String>,
    /// The policies' reply attributes.
    pub reply: Vec<(String, String)>,
    /// The user who was authenticated (the inner identity).
    pub user: String,
}

/// A peer's EAP packet, as a front end hands it over.
pub struct Input {
    /// The EAP packet (RADIUS: the EAP-Message attributes joined).
    pub message: Vec<u8>,
    /// The conversation's State, if the front end had one.
    pub state: Option<Vec<u8>>,
    /// The link's MTU (RADIUS: Framed-MTU), for the TLS fragments.
    pub mtu: Option<usize>,
    /// The request as the engine sees a PAP login: client, origin, request id, reply room.
    /// User and password are replaced by the inner ones.
    pub request: AuthRequest,
}

/// The answer to the front end.
#[derive(Debug)]
pub enum Answer {
    /// Send `eap` and wait (RADIUS: Access-Challenge with State).
    Continue {
        /// The EAP request.
        eap: Vec<u8>,
        /// The conversation's State.
        state: [u8; 16],
    },
    /// EAP-Success (RADIUS: Access-Accept with the keys).
    Accept {
        /// The EAP-Success.
        eap: Vec<u8>,
        /// The MSK of a tunnelled method.
        msk: Option<keys::Msk>,
        /// The engine's Accept.
        accepted: Accepted,
    },
    /// EAP-Failure (RADIUS: Access-Reject); `None` when the packet was not EAP at all.
    Reject {
        /// The EAP-Failure.
        eap: Option<Vec<u8>>,
    },
}

/// The TLS data per fragment when the front end gives no MTU, and the overhead of the EAP
/// header, TLS flags and length subtracted from one it gives.
const DEFAULT_FRAGMENT: usize = 1000;
const FRAGMENT_OVERHEAD: usize = 14;

fn fragment_size(mtu: Option<usize>) -> usize {
    mtu.map_or(DEFAULT_FRAGMENT, |mtu| {
        mtu.saturating_sub(FRAGMENT_OVERHEAD)
            .clamp(64, DEFAULT_FRAGMENT)
    })
}

fn count(end: &'static str) {
    crate::metrics::inc("tessera_eap_conversations_total", &[("end", end)]);
}

/// Runs one step of a conversation: the front end's whole EAP side.
pub async fn serve<A: Authenticate>(auth: &A, server: &EapServer, input: Input) -> Answer {
    let Ok(eap) = Eap::decode(&input.message) else {
        crate::metrics::inc("tessera_eap_malformed_total", &[]);
        tracing::info!(client = %input.request.client_name, "EAP: malformed packet: rejected");
        return Answer::Reject { eap: None };
    };
    let failure = Answer::Reject {
        eap: Some(packet::failure(eap.identifier)),
    };
    if eap.code != packet::code::RESPONSE {
        return failure;
    }
    let store = Conversations::global();
    let now = Instant::now();
    let known = input
        .state
        .as_deref()
        .and_then(|state| Some((<[u8; 16]>::try_from(state).ok()?, store.take(state, now)?)));
    let (held, step) = match known {
        Some((id, (conversation, busy))) => {
            match receive(server, conversation, &input.message).await {
                Some((conversation, step)) => (
                    Held {
                        id,
                        conversation,
                        busy,
                    },
                    step,
                ),
                None => return failure,
            }
        }
        None if eap.kind == Some(kind::IDENTITY) => match open(server, &eap, &input, now) {
            Ok((mut held, first)) => {
                let step = Step::Send(held.conversation.propose(first));
                (held, step)
            }
            Err(eap) => return Answer::Reject { eap },
        },
        None => {
            tracing::info!(client = %input.request.client_name, "EAP: a response to no open conversation (expired or unknown): rejected");
            count("unknown");
            return failure;
        }
    };
    let peer_identifier = eap.identifier;
    run(auth, server, input, held, step, peer_identifier).await
}

/// Hands the peer's packet to the conversation on a blocking thread: a TLS handshake signs
/// with the server key, which is not for the runtime's threads. `None` if the thread failed.
async fn receive(
    server: &EapServer,
    mut conversation: Conversation,
    message: &[u8],
) -> Option<(Conversation, Step)> {
    let server = server.clone();
    let message = message.to_vec();
    tokio::task::spawn_blocking(move || {
        let step = match Eap::decode(&message) {
            Ok(eap) => conversation.receive(&eap, &server),
            Err(_) => Step::Failure("malformed"),
        };
        (conversation, step)
    })
    .await
    .ok()
}

/// A new conversation for a peer's Identity: room in the store, the first method proposed.
fn open(
    server: &EapServer,
    eap: &Eap<'_>,
    input: &Input,
    now: Instant,
) -> Result<(Held, Method), Option<Vec<u8>>> {
    let Some(first) = server.methods.first() else {
        return Err(Some(packet::failure(eap.identifier)));
    };
    // A station is the NAS's client entry and its Calling-Station-Id: one Wi-Fi client, one
    // port, one VPN client's address.
    let station = input
        .request
        .calling_station
        .as_deref()
        .map(|station| format!("{}/{station}", input.request.client_name));
    let Ok(busy) =
        Conversations::global().reserve(server.limits.max_conversations, station.as_deref(), now)
    else {
        count("refused");
        tracing::warn!(client = %input.request.client_name, station = ?input.request.calling_station, "EAP: new conversation refused: the table is full (max_conversations) or this station holds its share");
        return Err(Some(packet::failure(eap.identifier)));
    };
    let mut id = [0u8; 16];
    if getrandom::fill(&mut id).is_err() {
        return Err(None);
    }
    let identity = String::from_utf8_lossy(eap.data).into_owned();
    let mut conversation = Conversation::new(identity, *first, fragment_size(input.mtu));
    // The peer's Identity response names the identifier the proposal follows.
    conversation.identifier = eap.identifier;
    count("opened");
    let held = Held {
        id,
        conversation,
        busy,
    };
    Ok((held, *first))
}

/// A conversation being worked on: its State, itself, and its place in the store.
struct Held {
    id: [u8; 16],
    conversation: Conversation,
    busy: conversation::Busy<'static>,
}

/// Drives the conversation's steps: engine checks until a request goes out or it ends.
async fn run<A: Authenticate>(
    auth: &A,
    server: &EapServer,
    input: Input,
    held: Held,
    first: Step,
    peer_identifier: u8,
) -> Answer {
    let Held {
        id,
        mut conversation,
        busy,
    } = held;
    let store = Conversations::global();
    let mut step = first;
    loop {
        match step {
            Step::Send(eap) => {
                let wait = server.limits.timeout.max(Duration::from_secs(u64::from(
                    conversation.challenge_timeout.unwrap_or(0),
                )));
                if conversation.buffered() > 2 * tls::MAX_MESSAGE {
                    count("rejected");
                    return Answer::Reject {
                        eap: Some(packet::failure(peer_identifier)),
                    };
                }
                store.put(busy, id, conversation, Instant::now() + wait);
                return Answer::Continue { eap, state: id };
            }
            Step::Check(login) => {
                let verdict = check(auth, &input, &mut conversation, login).await;
                step = conversation.resume(verdict);
            }
            Step::Success => {
                drop(busy);
                count("accepted");
                let msk = conversation.msk();
                let accepted = conversation.accepted.take().unwrap_or_default();
                tracing::info!(client = %input.request.client_name, method = conversation.method_label(), outer = %conversation.outer_identity, user = %accepted.user, "EAP: success");
                return Answer::Accept {
                    eap: packet::success(peer_identifier),
                    msk,
                    accepted,
                };
            }
            Step::Failure(why) => {
                drop(busy);
                count("rejected");
                tracing::info!(client = %input.request.client_name, method = conversation.method_label(), outer = %conversation.outer_identity, reason = why, "EAP: failure");
                return Answer::Reject {
                    eap: Some(packet::failure(peer_identifier)),
                };
            }
        }
    }
}

/// Asks the engine, as for a PAP login, and keeps what the next round needs.
async fn check<A: Authenticate>(
    auth: &A,
    input: &Input,
    conversation: &mut Conversation,
    login: Login,
) -> Verdict {
    let mut request = input.request.clone();
    request.client_name = format!("{} {}", request.client_name, conversation.method_label());
    request.user_name = login.user.clone();
    request.password = login.password;
    request.state = conversation.engine_state.take();
    match auth.authenticate(request).await {
        Outcome::Accept { message, reply } => {
            conversation.accepted = Some(Accepted {
                message,
                reply,
                user: login.user,
            });
            Verdict::Accept
        }
        Outcome::Challenge {
            state,
            message,
            timeout,
            ..
        } => {
            conversation.engine_state = Some(state);
            conversation.challenge_timeout = Some(timeout);
            Verdict::Challenge { message }
        }
        Outcome::Reject { .. } => Verdict::Reject,
        Outcome::Forward { .. } => {
            tracing::warn!(client = %input.request.client_name, user = %login.user, "EAP: a policy forwards this user to a legacy server (passthru), which EAP cannot: rejected");
            Verdict::Reject
        }
    }
}

#[cfg(test)]
mod tests;
