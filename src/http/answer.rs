//! What `/validate/check` and `/validate/simplecheck` answer: the engine's [`Outcome`] as the
//! one JSON document both LinOTP's and privacyIDEA's clients read ([`CheckAnswer`]), as
//! LinOTP's plain-text smileys ([`simplecheck`]), and the 400 answer for a request that never
//! reached the engine ([`CheckAnswer::error`]).
//!
//! The fields, after `docs/src/http.md`: `result.status` is true whenever the request was
//! understood (LinOTP and privacyIDEA alike); `result.value` is LinOTP's verdict (true only on
//! accept); `result.authentication` privacyIDEA 3.x's (`ACCEPT`, `REJECT`, `CHALLENGE`). On a
//! challenge `detail` carries the transaction under all three names (`transaction_id`,
//! `transactionid`, `state`) and one `multi_challenge` entry; on a reject only the engine's
//! message, which is the same whatever the reason (as over RADIUS).

use serde::Serialize;

use crate::auth::{Challenged, Outcome};

/// The `version` field: which server answered.
const VERSION: &str = concat!("tessera ", env!("CARGO_PKG_VERSION"));

/// The JSON answer of `/validate/check`.
#[derive(Debug, Serialize)]
pub struct CheckAnswer {
    jsonrpc: &'static str,
    id: u32,
    version: &'static str,
    result: ResultPart,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<Detail>,
}

/// `result`.
#[derive(Debug, Serialize)]
struct ResultPart {
    status: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authentication: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorPart>,
}

/// `result.error` of a request tessera could not read.
#[derive(Debug, Serialize)]
struct ErrorPart {
    /// privacyIDEA's ERR905 (a parameter), so its clients tell it from "user not found" (904).
    code: u32,
    message: String,
}

/// `detail`.
#[derive(Debug, Serialize)]
struct Detail {
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    transaction_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transactionid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    multi_challenge: Vec<Challenge>,
}

/// One entry of `detail.multi_challenge` (privacyIDEA 3.x): one per token a code went to.
#[derive(Debug, Serialize)]
struct Challenge {
    transaction_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    serial: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    message: String,
    /// privacyIDEA's clients show a field to type the code into.
    client_mode: &'static str,
}

/// The accept/reject/challenge trichotomy, for the answer and the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Authenticated.
    Accept,
    /// A code was sent; answer it with the transaction id.
    Challenge,
    /// Not authenticated.
    Reject,
}

impl Verdict {
    /// privacyIDEA's `result.authentication`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accept => "ACCEPT",
            Verdict::Challenge => "CHALLENGE",
            Verdict::Reject => "REJECT",
        }
    }

    /// The `answer` label of `tessera_http_requests_total`.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Accept => "accept",
            Verdict::Challenge => "challenge",
            Verdict::Reject => "reject",
        }
    }
}

/// The text a transaction id is: the engine's State, which is hex.
pub fn transaction_id(state: &[u8]) -> String {
    String::from_utf8_lossy(state).into_owned()
}

impl CheckAnswer {
    /// The answer to a decided request. A `Forward` reaches here only when the front end could
    /// not relay it; it is answered as the reject it becomes.
    pub fn from_outcome(outcome: &Outcome) -> (Verdict, CheckAnswer) {
        let (verdict, detail) = match outcome {
            Outcome::Accept { message, .. } => (
                Verdict::Accept,
                message.as_ref().map(|m| Detail::message(m.clone())),
            ),
            Outcome::Challenge {
                state,
                message,
                tokens,
                ..
            } => {
                let id = transaction_id(state);
                let entry = |token: Option<&Challenged>| Challenge {
                    transaction_id: id.clone(),
                    serial: token.map(|t| t.serial.clone()),
                    kind: token.map(|t| t.kind.as_str()),
                    message: message.clone(),
                    client_mode: "interactive",
                };
                let multi_challenge = if tokens.is_empty() {
                    vec![entry(None)]
                } else {
                    tokens.iter().map(|t| entry(Some(t))).collect()
                };
                let detail = Detail {
                    message: message.clone(),
                    transaction_id: Some(id.clone()),
                    transactionid: Some(id.clone()),
                    state: Some(id),
                    multi_challenge,
                };
                (Verdict::Challenge, Some(detail))
            }
            Outcome::Reject { message } => {
                (Verdict::Reject, Some(Detail::message(message.clone())))
            }
            Outcome::Forward { .. } => (
                Verdict::Reject,
                Some(Detail::message(
                    crate::auth::decision::MSG_FAILED.to_string(),
                )),
            ),
        };
        let answer = CheckAnswer {
            jsonrpc: "2.0",
            id: 1,
            version: VERSION,
            result: ResultPart {
                status: true,
                value: Some(verdict == Verdict::Accept),
                authentication: Some(verdict.as_str()),
                error: None,
            },
            detail,
        };
        (verdict, answer)
    }

    /// The answer to a request that did not reach the engine (HTTP 400): `status` false and
    /// the reason, as privacyIDEA's `send_error` has it.
    pub fn error(message: impl Into<String>) -> CheckAnswer {
        CheckAnswer {
            jsonrpc: "2.0",
            id: 1,
            version: VERSION,
            result: ResultPart {
                status: false,
                value: None,
                authentication: None,
                error: Some(ErrorPart {
                    code: 905,
                    message: message.into(),
                }),
            },
            detail: None,
        }
    }
}

impl Detail {
    fn message(message: String) -> Detail {
        Detail {
            message,
            transaction_id: None,
            transactionid: None,
            state: None,
            multi_challenge: vec![],
        }
    }
}

/// LinOTP's `/validate/simplecheck` text: `:-)`, `:-(`, or on a challenge
/// `:-( <transactionid> <message>` (LinOTP joins the three with spaces; its FreeRADIUS module
/// splits on the first two).
pub fn simplecheck(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Accept { .. } => ":-)".into(),
        Outcome::Challenge { state, message, .. } => {
            format!(":-( {} {message}", transaction_id(state))
        }
        Outcome::Reject { .. } | Outcome::Forward { .. } => ":-(".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_challenge_carries_every_name_of_its_transaction() {
        let outcome = Outcome::Challenge {
            state: b"0a1b".to_vec(),
            message: "sms submitted to +49********678".into(),
            timeout: 120,
            tokens: vec![Challenged {
                serial: "LSSM0001".into(),
                kind: crate::store::TokenKind::Sms,
            }],
        };
        let (verdict, answer) = CheckAnswer::from_outcome(&outcome);
        assert_eq!(verdict, Verdict::Challenge);
        let json = serde_json::to_value(&answer).unwrap();
        assert_eq!(json["result"]["status"], true);
        assert_eq!(json["result"]["value"], false);
        assert_eq!(json["result"]["authentication"], "CHALLENGE");
        for name in ["transaction_id", "transactionid", "state"] {
            assert_eq!(json["detail"][name], "0a1b", "{name}");
        }
        assert_eq!(
            json["detail"]["multi_challenge"][0]["transaction_id"],
            "0a1b"
        );
        assert_eq!(
            json["detail"]["multi_challenge"][0]["message"],
            "sms submitted to +49********678"
        );
        assert_eq!(json["detail"]["multi_challenge"][0]["serial"], "LSSM0001");
        assert_eq!(json["detail"]["multi_challenge"][0]["type"], "sms");
        assert_eq!(
            simplecheck(&outcome),
            ":-( 0a1b sms submitted to +49********678"
        );
    }

    #[test]
    fn accept_reject_and_error() {
        let accept = Outcome::Accept {
            message: None,
            reply: vec![("Class".into(), "vpn".into())],
        };
        let json = serde_json::to_value(CheckAnswer::from_outcome(&accept).1).unwrap();
        assert_eq!(json["result"]["value"], true);
        assert_eq!(json["result"]["authentication"], "ACCEPT");
        assert!(json.get("detail").is_none(), "{json}");
        assert_eq!(simplecheck(&accept), ":-)");

        let reject = Outcome::Reject {
            message: "authentication failed".into(),
        };
        let json = serde_json::to_value(CheckAnswer::from_outcome(&reject).1).unwrap();
        assert_eq!(json["result"]["value"], false);
        assert_eq!(json["result"]["authentication"], "REJECT");
        assert_eq!(json["detail"]["message"], "authentication failed");
        assert!(json["detail"].get("transaction_id").is_none(), "{json}");
        assert_eq!(simplecheck(&reject), ":-(");

        let json = serde_json::to_value(CheckAnswer::error("missing parameter: pass")).unwrap();
        assert_eq!(json["result"]["status"], false);
        assert_eq!(
            json["result"]["error"]["message"],
            "missing parameter: pass"
        );
        assert!(json["result"].get("value").is_none());
    }
}
