//! The seam between RADIUS accounting (RFC 2866) and the accounting engine: a verified
//! Accounting-Request becomes an [`crate::accounting::Event`], and an event the engine committed
//! becomes an Accounting-Response; one it did not commit gets no answer, so the NAS sends it
//! again. Status-Server on the accounting port is answered here too (RFC 5997 §4:
//! Accounting-Response). What a record means for sessions is the engine's, not this file's.
//! A passthru user's record is forwarded to the legacy server too (`upstream::accounting`),
//! and answered once both have it.

use super::clients::Client;
use super::codec::{AttributeType, Code, EncodeError, Packet};
use super::counters::DropCause;
use super::crypto::sign_accounting_response;
use super::handler::sign;
use super::upstream::Upstreams;
use super::verify::{Verified, Wire};
use crate::accounting::{Accounting, Event};
use crate::store::{AccountingRecord, AcctStatus, Usage};
use crate::time::UnixMs;

const FRAMED_IP_ADDRESS: AttributeType = AttributeType(8);
const ACCT_STATUS_TYPE: AttributeType = AttributeType(40);
const ACCT_DELAY_TIME: AttributeType = AttributeType(41);
const ACCT_INPUT_OCTETS: AttributeType = AttributeType(42);
const ACCT_OUTPUT_OCTETS: AttributeType = AttributeType(43);
const ACCT_SESSION_ID: AttributeType = AttributeType(44);
const ACCT_SESSION_TIME: AttributeType = AttributeType(46);
const ACCT_INPUT_PACKETS: AttributeType = AttributeType(47);
const ACCT_OUTPUT_PACKETS: AttributeType = AttributeType(48);
const ACCT_TERMINATE_CAUSE: AttributeType = AttributeType(49);
const ACCT_INPUT_GIGAWORDS: AttributeType = AttributeType(52);
const ACCT_OUTPUT_GIGAWORDS: AttributeType = AttributeType(53);
const FRAMED_IPV6_ADDRESS: AttributeType = AttributeType(168);

/// RFC 2866 §5.10's Acct-Terminate-Cause names, from 1.
const TERMINATE_CAUSES: [&str; 18] = [
    "User-Request",
    "Lost-Carrier",
    "Lost-Service",
    "Idle-Timeout",
    "Session-Timeout",
    "Admin-Reset",
    "Admin-Reboot",
    "Port-Error",
    "NAS-Error",
    "NAS-Request",
    "NAS-Reboot",
    "Port-Unneeded",
    "Port-Preempted",
    "Port-Suspended",
    "Service-Unavailable",
    "Callback",
    "User-Error",
    "Host-Request",
];

/// What an accounting request asks of the engine.
enum Asked {
    /// An event to record before answering.
    Record(Box<Event>),
    /// A status type tessera keeps nothing of (Failed, the tunnel types …): answered, so the
    /// NAS does not retry it for ever.
    Nothing(u32),
}

/// Answers a verified Accounting-Request or Status-Server on the accounting port: `Ok(reply)`,
/// or `Err(cause)` to drop it unanswered (counted by the caller).
pub async fn handle(
    accounting: &Accounting,
    directory: &impl crate::auth::Authenticate,
    upstreams: &Upstreams,
    client: &Client,
    source: std::net::IpAddr,
    request: Verified,
) -> Result<Vec<u8>, DropCause> {
    let wire = request.wire();
    let request = request.packet();
    if request.code == Code::ACCOUNTING_REQUEST {
        let asked = to_event(request, client, source, UnixMs::now()).map_err(|detail| {
            tracing::info!(client = %client.name, detail, "accounting request malformed");
            DropCause::Malformed
        })?;
        match asked {
            Asked::Record(event) => {
                // The engine logs why (once a minute); the drop is counted by the caller.
                match accounting.record(*event, directory).await {
                    Err(_) => return Err(DropCause::NotRecorded),
                    Ok(None) => {}
                    Ok(Some(name)) => forward(upstreams, &name, client, request).await?,
                }
            }
            Asked::Nothing(status) => {
                tracing::debug!(client = %client.name, status, "accounting status type not kept, answered");
            }
        }
    }
    let mut reply = Packet {
        code: Code::ACCOUNTING_RESPONSE,
        identifier: request.identifier,
        authenticator: [0; 16],
        attributes: vec![],
    };
    let signed = match wire {
        // Status-Server's reply is signed as any reply to a random authenticator.
        Wire::Classic if request.code == Code::ACCOUNTING_REQUEST => {
            for proxy_state in request.get_all(AttributeType::PROXY_STATE) {
                reply.push_split(AttributeType::PROXY_STATE, proxy_state);
            }
            sign_accounting_response(&reply, &request.authenticator, client.secret.expose())
        }
        Wire::Classic | Wire::Radius11 => sign(reply, request, wire, client),
    };
    signed.map_err(|e: EncodeError| {
        tracing::error!(client = %client.name, error = %e, "Accounting-Response could not be encoded");
        DropCause::Malformed
    })
}

/// Forwards a passthru user's record to the legacy server `name` (recorded here already);
/// `Err` when it did not acknowledge it, so the NAS is not answered and sends it again.
async fn forward(
    upstreams: &Upstreams,
    name: &str,
    client: &Client,
    request: &Packet,
) -> Result<(), DropCause> {
    let Some(upstream) = upstreams.get(name) else {
        // The config check makes a policy's upstream exist; a reload may have removed it.
        tracing::warn!(client = %client.name, upstream = name, "passthru accounting: no such upstream, recorded here only");
        return Ok(());
    };
    upstream.forward_accounting(request).await.map_err(|error| {
        tracing::warn!(client = %client.name, upstream = name, %error, "passthru accounting: the legacy server did not acknowledge the record; not answered, the NAS will resend it");
        DropCause::NotRecorded
    })
}

fn integer(packet: &Packet, typ: AttributeType) -> Option<u32> {
    packet
        .get(typ)
        .and_then(|v| <[u8; 4]>::try_from(v).ok())
        .map(u32::from_be_bytes)
}

fn text(packet: &Packet, typ: AttributeType) -> Option<String> {
    packet
        .get(typ)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// The NAS: NAS-Identifier, else NAS-IP-Address, else NAS-IPv6-Address, else the source.
fn nas_of(packet: &Packet, source: std::net::IpAddr) -> String {
    if let Some(id) = text(packet, AttributeType::NAS_IDENTIFIER).filter(|s| !s.is_empty()) {
        return id;
    }
    if let Some(v4) = packet
        .get(AttributeType::NAS_IP_ADDRESS)
        .and_then(|v| <[u8; 4]>::try_from(v).ok())
    {
        return std::net::Ipv4Addr::from(v4).to_string();
    }
    if let Some(v6) = packet
        .get(AttributeType::NAS_IPV6_ADDRESS)
        .and_then(|v| <[u8; 16]>::try_from(v).ok())
    {
        return std::net::Ipv6Addr::from(v6).to_string();
    }
    source.to_string()
}

/// The user's address: Framed-IP-Address, else Framed-IPv6-Address.
fn framed_ip(packet: &Packet) -> Option<String> {
    if let Some(v4) = packet
        .get(FRAMED_IP_ADDRESS)
        .and_then(|v| <[u8; 4]>::try_from(v).ok())
    {
        return Some(std::net::Ipv4Addr::from(v4).to_string());
    }
    packet
        .get(FRAMED_IPV6_ADDRESS)
        .and_then(|v| <[u8; 16]>::try_from(v).ok())
        .map(|v6| std::net::Ipv6Addr::from(v6).to_string())
}

/// The counters, when the record carries any: octets with their Gigawords (RFC 2869 §5.1).
fn usage(packet: &Packet) -> Option<Usage> {
    let octets = |low: AttributeType, high: AttributeType| {
        let low = integer(packet, low)?;
        let high = integer(packet, high).unwrap_or(0);
        Some((u64::from(high) << 32) | u64::from(low))
    };
    let input_octets = octets(ACCT_INPUT_OCTETS, ACCT_INPUT_GIGAWORDS);
    let output_octets = octets(ACCT_OUTPUT_OCTETS, ACCT_OUTPUT_GIGAWORDS);
    let input_packets = integer(packet, ACCT_INPUT_PACKETS);
    let output_packets = integer(packet, ACCT_OUTPUT_PACKETS);
    if input_octets.is_none()
        && output_octets.is_none()
        && input_packets.is_none()
        && output_packets.is_none()
    {
        return None;
    }
    Some(Usage {
        input_octets: input_octets.unwrap_or(0),
        output_octets: output_octets.unwrap_or(0),
        input_packets: input_packets.map_or(0, u64::from),
        output_packets: output_packets.map_or(0, u64::from),
    })
}

/// Turns an Accounting-Request into what it asks of the engine; `Err` says why it is
/// malformed. `received` less Acct-Delay-Time is when the NAS says it happened.
fn to_event(
    packet: &Packet,
    client: &Client,
    source: std::net::IpAddr,
    received: UnixMs,
) -> Result<Asked, &'static str> {
    let status = integer(packet, ACCT_STATUS_TYPE).ok_or("Acct-Status-Type missing")?;
    let delay = integer(packet, ACCT_DELAY_TIME).unwrap_or(0);
    let at = received.minus_ms(i64::from(delay).saturating_mul(1000));
    let nas = nas_of(packet, source);
    let status = match status {
        1 => AcctStatus::Start,
        2 => AcctStatus::Stop,
        3 => AcctStatus::Interim,
        7 | 8 => {
            return Ok(Asked::Record(Box::new(Event::NasRestarted {
                client: client.name.clone(),
                nas,
                at,
            })));
        }
        other => return Ok(Asked::Nothing(other)),
    };
    let session_id = text(packet, ACCT_SESSION_ID)
        .filter(|s| !s.is_empty())
        .ok_or("Acct-Session-Id missing")?;
    let cause = integer(packet, ACCT_TERMINATE_CAUSE).map(|n| {
        usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| TERMINATE_CAUSES.get(i))
            .map_or_else(|| n.to_string(), |name| (*name).to_string())
    });
    Ok(Asked::Record(Box::new(Event::Session(Box::new(
        AccountingRecord {
            client: client.name.clone(),
            nas,
            session_id,
            status,
            user: text(packet, AttributeType::USER_NAME).unwrap_or_default(),
            calling_station: text(packet, AttributeType::CALLING_STATION_ID),
            framed_ip: framed_ip(packet),
            usage: usage(packet),
            session_seconds: integer(packet, ACCT_SESSION_TIME),
            cause,
            at,
            identity: None,
            nas_address: Some(source.to_canonical().to_string()),
        },
    )))))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn client() -> Client {
        Client {
            network: None,
            secret: Secret::new(b"s".to_vec()),
            name: "vpn".into(),
            require_message_authenticator: false,
            limit_proxy_state: false,
            tls_only: false,
            das: None,
        }
    }

    fn packet(attributes: &[(u8, &[u8])]) -> Packet {
        let mut p = Packet {
            code: Code::ACCOUNTING_REQUEST,
            identifier: 1,
            authenticator: [0; 16],
            attributes: vec![],
        };
        for (typ, value) in attributes {
            p.push_split(AttributeType(*typ), value);
        }
        p
    }

    fn session(p: &Packet) -> AccountingRecord {
        let source = std::net::IpAddr::from([192, 0, 2, 9]);
        match to_event(p, &client(), source, UnixMs::from_secs(1_000)) {
            Ok(Asked::Record(event)) => match *event {
                Event::Session(record) => *record,
                other => panic!("{other:?}"),
            },
            _ => panic!("not a session record"),
        }
    }

    #[test]
    fn a_stop_becomes_a_record() {
        let p = packet(&[
            (40, &2u32.to_be_bytes()),
            (44, b"s1"),
            (1, b"alice"),
            (4, &[10, 0, 0, 1]),
            (8, &[10, 9, 8, 7]),
            (41, &10u32.to_be_bytes()),
            (42, &5u32.to_be_bytes()),
            (52, &2u32.to_be_bytes()),
            (43, &7u32.to_be_bytes()),
            (49, &11u32.to_be_bytes()),
        ]);
        let r = session(&p);
        assert_eq!(r.status, AcctStatus::Stop);
        assert_eq!(r.nas, "10.0.0.1", "NAS-IP-Address without NAS-Identifier");
        assert_eq!(r.framed_ip.as_deref(), Some("10.9.8.7"));
        assert_eq!(r.at, UnixMs::from_secs(990), "less Acct-Delay-Time");
        let usage = r.usage.unwrap();
        assert_eq!(usage.input_octets, (2 << 32) + 5);
        assert_eq!(usage.output_octets, 7);
        assert_eq!(r.cause.as_deref(), Some("NAS-Reboot"));
        // Without any NAS attribute, the source; an unknown cause by its number.
        let p = packet(&[
            (40, &1u32.to_be_bytes()),
            (44, b"s2"),
            (49, &99u32.to_be_bytes()),
        ]);
        let r = session(&p);
        assert_eq!(r.nas, "192.0.2.9");
        assert_eq!(r.cause.as_deref(), Some("99"));
        assert_eq!(r.usage, None);
    }

    #[test]
    fn what_is_not_a_session_record() {
        let source = std::net::IpAddr::from([192, 0, 2, 9]);
        let now = UnixMs::from_secs(1);
        let asked = |p: &Packet| to_event(p, &client(), source, now);
        assert!(asked(&packet(&[(44, b"s1")])).is_err(), "no status type");
        assert!(
            asked(&packet(&[(40, &1u32.to_be_bytes())])).is_err(),
            "no session id"
        );
        assert!(
            asked(&packet(&[(40, &[1, 2])])).is_err(),
            "a short status type"
        );
        assert!(matches!(
            asked(&packet(&[(40, &15u32.to_be_bytes())])),
            Ok(Asked::Nothing(15))
        ));
        let on = packet(&[(40, &7u32.to_be_bytes()), (32, b"gw1")]);
        match asked(&on) {
            Ok(Asked::Record(event)) => assert_eq!(
                *event,
                Event::NasRestarted {
                    client: "vpn".into(),
                    nas: "gw1".into(),
                    at: now
                }
            ),
            _ => panic!("Accounting-On is a NAS restart"),
        }
    }
}
