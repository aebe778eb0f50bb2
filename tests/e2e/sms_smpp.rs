//! The SMPP SMS provider against a real SMPP peer (the test SMSC in `util/smsc.rs`): the PDUs
//! and their fields, refusals with their status names, unavailability and failover, and the
//! whole RADIUS login with the OTP taken from the SMSC.

use std::path::Path;

use rusmpp::CommandStatus;
use tessera::config::Config;
use tessera::delivery::smpp_sms::{SmppSmsConfig, SmppSmsProvider};
use tessera::delivery::{Channel, DeliveryError, Message, Provider};
use tessera::secret::Secret;

use crate::util::smsc::{Smsc, SmscBehaviour};
use crate::util::{Server, Setup};
use testkit::ports::closed_port;

fn provider(toml_keys: &str) -> SmppSmsProvider {
    let config: SmppSmsConfig = toml::from_str(toml_keys).expect("provider keys");
    config.check().expect("valid keys");
    SmppSmsProvider::new("smsc", &config)
}

fn keys(port: u16, extra: &str) -> String {
    format!(
        "server = \"127.0.0.1\"\nport = {port}\nsystem_id = \"tessera\"\npassword = \"s3cret\"\n{extra}"
    )
}

fn sms(to: &str, text: &str) -> Message {
    Message {
        channel: Channel::Sms,
        recipient: to.into(),
        subject: None,
        text: Secret::from(text),
        serial: "LSSMTEST".into(),
        user: "alice".into(),
    }
}

#[tokio::test]
async fn bind_submit_unbind_with_the_configured_fields() {
    let smsc = Smsc::start();
    // The seed's keys, with LinOTP's quoted numbers.
    let p = provider(&keys(
        smsc.port(),
        "system_type = \"OTP\"\nsource_addr = \"TESSERA\"\nsource_addr_ton = \"5\"\n\
         source_addr_npi = \"0\"\ndest_addr_ton = 1\ndest_addr_npi = \"1\"\n\
         MSISDN = true\nSUPPRESS_PREFIX = \"+\"\n",
    ));
    let receipt = p
        .send(&sms("+49 170 1234-5678", "Your OTP is 123456"))
        .await
        .expect("sent");
    assert!(receipt.detail.contains("msg-1"), "{}", receipt.detail);

    assert_eq!(
        smsc.wait_for_events(3),
        ["bind_transceiver", "submit_sm", "unbind"],
        "LinOTP's PDU sequence"
    );
    let bind = &smsc.binds()[0];
    assert_eq!(
        (
            bind.system_id.as_str(),
            bind.password.as_str(),
            bind.system_type.as_str()
        ),
        ("tessera", "s3cret", "OTP")
    );
    assert_eq!(bind.interface_version, 0x34, "SMPP 3.4");
    let submit = &smsc.submits()[0];
    assert_eq!(
        (
            submit.source_addr_ton,
            submit.source_addr_npi,
            submit.source_addr.as_str()
        ),
        (5, 0, "TESSERA")
    );
    assert_eq!(
        (
            submit.dest_addr_ton,
            submit.dest_addr_npi,
            submit.destination_addr.as_str()
        ),
        (1, 1, "4917012345678"),
        "MSISDN and SUPPRESS_PREFIX applied"
    );
    assert_eq!(submit.data_coding, 3, "ISO8859-1 by default");
    assert_eq!(submit.esm_class, 0, "a plain message");
    assert_eq!(submit.text(), "Your OTP is 123456");
}

#[tokio::test]
async fn transmitter_bind_and_ucs2_text() {
    let smsc = Smsc::start();
    let p = provider(&keys(
        smsc.port(),
        "bind = \"transmitter\"\ntarget_encoding = \"UCS2\"\n",
    ));
    p.send(&sms("+4917012345678", "Code 123456 ✓"))
        .await
        .expect("sent");
    assert_eq!(smsc.wait_for_events(3)[0], "bind_transmitter");
    let submit = &smsc.submits()[0];
    assert_eq!(submit.data_coding, 8);
    let expected: Vec<u8> = "Code 123456 ✓"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    assert_eq!(submit.short_message, expected);
    assert_eq!(
        submit.destination_addr, "+4917012345678",
        "no MSISDN: as given"
    );
}

#[tokio::test]
async fn the_smscs_own_enquire_link_is_answered_while_binding() {
    let smsc = Smsc::start_with(SmscBehaviour {
        enquire_link_first: true,
        ..SmscBehaviour::default()
    });
    let p = provider(&keys(smsc.port(), ""));
    p.send(&sms("+4917012345678", "123456"))
        .await
        .expect("sent");
    assert_eq!(
        smsc.wait_for_events(4),
        [
            "bind_transceiver",
            "enquire_link_resp",
            "submit_sm",
            "unbind"
        ]
    );
}

#[tokio::test]
async fn wrong_password_is_refused_with_the_status_name() {
    let smsc = Smsc::start_with(SmscBehaviour {
        password: "other".into(),
        ..SmscBehaviour::default()
    });
    let p = provider(&keys(smsc.port(), ""));
    let error = p.send(&sms("+4917012345678", "123456")).await.unwrap_err();
    let DeliveryError::Refused { reason, .. } = &error else {
        panic!("expected a refusal, got {error}");
    };
    assert!(reason.contains("ESME_RINVPASWD"), "{reason}");
    assert!(
        !error.to_string().contains("s3cret"),
        "no password in {error}"
    );
    assert!(
        smsc.submits().is_empty(),
        "nothing submitted after a failed bind"
    );
}

#[tokio::test]
async fn submit_error_status_is_refused_with_the_status_name() {
    let smsc = Smsc::start_with(SmscBehaviour {
        submit_status: CommandStatus::EsmeRsubmitfail,
        ..SmscBehaviour::default()
    });
    let p = provider(&keys(smsc.port(), ""));
    let error = p.send(&sms("+4917012345678", "123456")).await.unwrap_err();
    assert!(
        matches!(&error, DeliveryError::Refused { reason, .. } if reason.contains("submit_sm") && reason.contains("ESME_RSUBMITFAIL")),
        "{error}"
    );
    assert!(!error.to_string().contains("123456"), "no OTP in {error}");
}

#[tokio::test]
async fn long_text_is_split_into_several_submit_sm() {
    let smsc = Smsc::start();
    let p = provider(&keys(smsc.port(), ""));
    let text: String = (0..220)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    p.send(&sms("+4917012345678", &text)).await.expect("sent");
    assert_eq!(
        smsc.wait_for_events(4),
        ["bind_transceiver", "submit_sm", "submit_sm", "unbind"]
    );
    let submits = smsc.submits();
    assert_eq!(
        submits
            .iter()
            .map(|s| s.short_message.len())
            .collect::<Vec<_>>(),
        [153, 67]
    );
    assert!(
        submits.iter().all(|s| s.esm_class == 0),
        "no UDH, as LinOTP: {submits:?}"
    );
    assert_eq!(format!("{}{}", submits[0].text(), submits[1].text()), text);
}

#[tokio::test]
async fn a_number_smpp_cannot_carry_is_refused_without_a_session() {
    let smsc = Smsc::start();
    let p = provider(&keys(smsc.port(), ""));
    let error = p
        .send(&sms("+491701234567890123456789", "123456"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DeliveryError::Refused { reason, .. } if reason.contains("destination")),
        "{error}"
    );
    assert_eq!(smsc.connections(), 0);
}

#[tokio::test]
async fn nothing_listening_is_unavailable() {
    let p = provider(&keys(closed_port(), ""));
    let error = p.send(&sms("+4917012345678", "123456")).await.unwrap_err();
    assert!(
        matches!(&error, DeliveryError::Unavailable { reason, .. } if reason.contains("cannot connect")),
        "{error}"
    );
}

#[tokio::test]
async fn smsc_hanging_up_is_unavailable() {
    let smsc = Smsc::start_with(SmscBehaviour {
        hang_up_on_submit: true,
        ..SmscBehaviour::default()
    });
    let p = provider(&keys(smsc.port(), ""));
    let error = p.send(&sms("+4917012345678", "123456")).await.unwrap_err();
    assert!(
        matches!(&error, DeliveryError::Unavailable { reason, .. } if reason.contains("closed the connection before answering submit_sm")),
        "{error}"
    );
}

#[tokio::test]
async fn silent_smsc_is_unavailable_after_the_timeout() {
    let smsc = Smsc::start_with(SmscBehaviour {
        answers: false,
        ..SmscBehaviour::default()
    });
    let p = provider(&keys(smsc.port(), "TIMEOUT = \"0.3\"\n"));
    let error = p.send(&sms("+4917012345678", "123456")).await.unwrap_err();
    assert!(
        matches!(&error, DeliveryError::Unavailable { reason, .. } if reason.contains("within 0.3s")),
        "{error}"
    );
    assert_eq!(smsc.events(), ["bind_transceiver"]);
}

#[test]
fn linotp_class_names_and_bad_values_in_the_config() {
    let base = "[server]\nlisten = [\"127.0.0.1:1812\"]\n[store]\npath = \"db\"\nkey_file = \"k\"\n\
                [[client]]\naddress = \"127.0.0.1\"\nsecret = \"x\"\n\
                [directory.local]\ntype = \"users_file\"\npath = \"u.toml\"\n\
                [[realm]]\nname = \"local\"\ndirectories = [\"local\"]\n";
    let good = format!(
        "{base}[provider.sms.smpp]\nclass = \"smsprovider.SMPPSMSProvider.SMPPSMSProvider\"\n\
         server = \"smpp-server\"\nport = \"2775\"\nsystem_id = \"login-name\"\nsystem_type = \"\"\n\
         password = \"password\"\nsource_addr = \"displayed-source\"\nsource_addr_npi = \"0\"\n\
         source_addr_ton = \"5\"\n"
    );
    let config = Config::parse(Path::new("t.toml"), &good).expect("the seed's keys load");
    let c = config.providers[&Channel::Sms]["smpp"].0.downcast_ref();
    let c: &SmppSmsConfig = c.expect("an SMPP provider");
    assert_eq!((c.port, c.source_addr_ton, c.source_addr_npi), (2775, 5, 0));

    let bad = good.replace("port = \"2775\"", "port = \"smmp-port\"");
    let errors = Config::parse(Path::new("t.toml"), &bad)
        .unwrap_err()
        .to_string();
    assert!(
        errors.starts_with("t.toml:18: provider.sms.smpp.port: ")
            && errors.contains("\"smmp-port\" is not a port"),
        "{errors}"
    );
    let ton = good.replace("source_addr_ton = \"5\"", "source_addr_ton = \"alpha\"");
    let errors = Config::parse(Path::new("t.toml"), &ton)
        .unwrap_err()
        .to_string();
    assert!(
        errors.starts_with(
            "t.toml:24: provider.sms.smpp.source_addr_ton: \"alpha\" is not a TON/NPI value"
        ),
        "{errors}"
    );
    let long = good.replace("password = \"password\"", "password = \"much-too-long\"");
    let errors = Config::parse(Path::new("t.toml"), &long)
        .unwrap_err()
        .to_string();
    assert!(
        errors.starts_with("t.toml:21: provider.sms.smpp.password: must be ASCII and at most 8"),
        "{errors}"
    );
    assert!(!errors.contains("much-too-long"), "{errors}");
    let email = good.replace("[provider.sms.smpp]", "[provider.email.smpp]");
    let errors = Config::parse(Path::new("t.toml"), &email)
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("is an SMS provider class: define it as [provider.sms.NAME]"),
        "{errors}"
    );
}

fn smpp_provider_block(name: &str, port: u16) -> String {
    format!(
        "[provider.sms.{name}]\nclass = \"SMPPSMSProvider\"\nserver = \"127.0.0.1\"\nport = {port}\n\
         system_id = \"tessera\"\npassword = \"s3cret\"\nsource_addr = \"TESSERA\"\n\
         source_addr_ton = 5\nsource_addr_npi = 0\nTIMEOUT = 2\n\n"
    )
}

/// The six-digit word of a text.
fn otp_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no OTP in {text:?}"))
        .to_string()
}

#[test]
fn radius_login_with_the_otp_from_the_smsc() {
    let smsc = Smsc::start();
    let server = Server::start_with(&Setup {
        providers: smpp_provider_block("smsc", smsc.port()),
        ..Setup::default()
    });
    let first = server.auth("alice", "wonderland", None);
    first.expect("Access-Challenge");
    let submits = smsc.submits();
    assert_eq!(submits.len(), 1);
    assert_eq!(submits[0].destination_addr, "+4917012345678");
    let otp = otp_in(&submits[0].text());
    server
        .auth("alice", &otp, Some(&first.state()))
        .expect("Access-Accept");
    assert!(
        !server.log_text().contains("s3cret"),
        "no SMPP password in the log"
    );
}

#[test]
fn refusing_smsc_rejects_the_login_and_logs_the_status() {
    let smsc = Smsc::start_with(SmscBehaviour {
        submit_status: CommandStatus::EsmeRthrottled,
        ..SmscBehaviour::default()
    });
    let server = Server::start_with(&Setup {
        providers: smpp_provider_block("smsc", smsc.port()),
        ..Setup::default()
    });
    let reply = server.auth("alice", "wonderland", None);
    reply.expect("Access-Reject");
    assert_eq!(
        reply.get("Reply-Message"),
        Some("sending the OTP by SMS failed")
    );
    server.wait_for_log("ESME_RTHROTTLED");
    let log = server.log_text();
    assert!(!log.contains("s3cret"), "no SMPP password in the log");
    // The SMSC saw the refused message, so the OTP is known: it must not be in the log.
    let otp = otp_in(&smsc.submits()[0].text());
    assert!(
        !log.split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| w == otp),
        "no OTP in the log:\n{log}"
    );
}

#[test]
fn unavailable_smsc_fails_over_to_the_next_by_policy() {
    let smsc = Smsc::start();
    let mut setup = Setup {
        providers: format!(
            "{}{}",
            smpp_provider_block("dead", closed_port()),
            smpp_provider_block("smsc", smsc.port())
        ),
        ..Setup::default()
    };
    setup.policies.push_str(
        "\n[[policy]]\nname = \"providers\"\nscope = \"authentication\"\naction = \"sms_provider=dead smsc\"\n",
    );
    let server = Server::start_with(&setup);
    let first = server.auth("alice", "wonderland", None);
    first.expect("Access-Challenge");
    server.wait_for_log("provider unavailable");
    let otp = otp_in(&smsc.submits()[0].text());
    server
        .auth("alice", &otp, Some(&first.state()))
        .expect("Access-Accept");
}
