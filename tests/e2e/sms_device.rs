//! The device SMS provider against a modem on a pseudo-terminal (`util/modem.rs`): the AT
//! dialogue, `+CMS ERROR`, the SIM PIN, LinOTP's gnokiirc form, one message at a time per
//! device, and the RADIUS login with the OTP taken from the modem.

use std::path::Path;
use std::sync::Arc;

use tessera::config::Config;
use tessera::delivery::device_sms::{DeviceSmsConfig, DeviceSmsProvider};
use tessera::delivery::{Channel, DeliveryError, Message, Provider};
use tessera::secret::Secret;

use crate::util::modem::{FakeModem, ModemBehaviour};
use crate::util::{Server, Setup};

fn provider(keys: &str) -> DeviceSmsProvider {
    let config: DeviceSmsConfig = toml::from_str(keys).expect("provider keys");
    config.check().expect("valid keys");
    DeviceSmsProvider::open("modem", &config).expect("open")
}

fn device_keys(modem: &FakeModem, extra: &str) -> String {
    format!(
        "DEVICE = \"{}\"\nTIMEOUT = 5\n{extra}",
        modem.path.display()
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
async fn text_mode_dialogue_sends_the_message() {
    let modem = FakeModem::start();
    let p = provider(&device_keys(&modem, "MSISDN = \"true\"\n"));
    let receipt = p
        .send(&sms("+49 170 1234-5678", "Your OTP is 123456"))
        .await
        .expect("sent");
    assert!(receipt.detail.starts_with("+CMGS: 1"), "{}", receipt.detail);
    let record = modem.record();
    assert_eq!(
        record.commands,
        ["AT", "AT+CMGF=1", "AT+CMGS=\"+4917012345678\""]
    );
    assert_eq!(
        record.messages,
        [(
            "+4917012345678".to_string(),
            "Your OTP is 123456".to_string()
        )]
    );
}

#[tokio::test]
async fn cms_error_is_a_refusal_with_the_code() {
    let modem = FakeModem::start_with(ModemBehaviour {
        cms_error: Some(500),
        ..ModemBehaviour::default()
    });
    let p = provider(&device_keys(&modem, ""));
    let error = p
        .send(&sms("+4917012345678", "Your OTP is 123456"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DeliveryError::Refused { reason, .. } if reason.contains("+CMS ERROR: 500")),
        "{error}"
    );
    assert!(!error.to_string().contains("123456"), "no OTP in {error}");
}

#[tokio::test]
async fn sim_pin_is_entered_when_the_sim_asks() {
    let modem = FakeModem::start_with(ModemBehaviour {
        pin: Some("4711".into()),
        ..ModemBehaviour::default()
    });
    let p = provider(&device_keys(
        &modem,
        "PIN = \"4711\"\nSMSC = \"+491710760000\"\n",
    ));
    p.send(&sms("+4917012345678", "123456"))
        .await
        .expect("sent");
    assert_eq!(
        modem.record().commands,
        [
            "AT",
            "AT+CPIN?",
            "AT+CPIN=\"4711\"",
            "AT+CSCA=\"+491710760000\"",
            "AT+CMGF=1",
            "AT+CMGS=\"+4917012345678\""
        ]
    );
    // The PIN is in: the next message only asks.
    p.send(&sms("+4917012345678", "654321"))
        .await
        .expect("sent");
    let commands = modem.record().commands;
    assert_eq!(
        commands
            .iter()
            .filter(|c| c.starts_with("AT+CPIN="))
            .count(),
        1
    );
    assert_eq!(modem.record().messages.len(), 2);
}

#[tokio::test]
async fn wrong_sim_pin_is_refused_without_showing_it() {
    let modem = FakeModem::start_with(ModemBehaviour {
        pin: Some("4711".into()),
        ..ModemBehaviour::default()
    });
    let p = provider(&device_keys(&modem, "PIN = \"9999\"\n"));
    let error = p.send(&sms("+4917012345678", "123456")).await.unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(&error, DeliveryError::Refused { .. })
            && text.contains("SIM PIN not accepted (AT+CPIN: +CME ERROR: 16)"),
        "{text}"
    );
    assert!(!text.contains("9999"), "no PIN in {text}");
    assert!(modem.record().messages.is_empty());

    // A wrong PIN is not tried again: three would lock the SIM.
    let again = p.send(&sms("+4917012345678", "123456")).await.unwrap_err();
    assert!(again.to_string().contains("not trying it again"), "{again}");
    let commands = modem.record().commands;
    assert_eq!(
        commands
            .iter()
            .filter(|c| c.starts_with("AT+CPIN="))
            .count(),
        1
    );
}

#[tokio::test]
async fn gnokiirc_configfile_names_the_device() {
    let modem = FakeModem::start();
    let dir = tempfile::tempdir().unwrap();
    let rc = dir.path().join("gnokiirc");
    // The seed's example file, with the pseudo-terminal for /dev/ttyACM1.
    std::fs::write(
        &rc,
        format!(
            "[global]\n model = AT\n port = {}\n connection = serial\n",
            modem.path.display()
        ),
    )
    .unwrap();
    let p = provider(&format!("CONFIGFILE = \"{}\"\n", rc.display()));
    assert_eq!(p.device(), modem.path);
    p.send(&sms("+4917012345678", "123456"))
        .await
        .expect("sent");
    assert_eq!(modem.record().messages.len(), 1);

    // A gnokiirc without a port is a startup error naming the key.
    std::fs::write(&rc, "[global]\nmodel = AT\n").unwrap();
    let config: DeviceSmsConfig =
        toml::from_str(&format!("CONFIGFILE = \"{}\"\n", rc.display())).unwrap();
    let error = DeviceSmsProvider::open("modem", &config).err().unwrap();
    assert!(
        error.starts_with("CONFIGFILE:") && error.contains("no `port`"),
        "{error}"
    );
}

#[tokio::test]
async fn missing_or_silent_modem_is_unavailable() {
    let p = provider("DEVICE = \"/dev/tessera-no-such-modem\"\n");
    let error = p.send(&sms("+4917012345678", "123456")).await.unwrap_err();
    assert!(
        matches!(&error, DeliveryError::Unavailable { reason, .. } if reason.contains("cannot open")),
        "{error}"
    );

    let modem = FakeModem::start_with(ModemBehaviour {
        answers: false,
        ..ModemBehaviour::default()
    });
    let p = provider(&format!(
        "DEVICE = \"{}\"\nTIMEOUT = 0.3\n",
        modem.path.display()
    ));
    let error = p.send(&sms("+4917012345678", "123456")).await.unwrap_err();
    assert!(
        matches!(&error, DeliveryError::Unavailable { reason, .. } if reason.contains("no answer to AT")),
        "{error}"
    );
}

#[tokio::test]
async fn a_device_sends_one_message_at_a_time() {
    let modem = FakeModem::start();
    // Two providers on the same device share its queue. The deadline covers the wait in the
    // queue, so it is generous here.
    let keys = format!("DEVICE = \"{}\"\nTIMEOUT = 60\n", modem.path.display());
    let a = Arc::new(provider(&keys));
    let b = Arc::new(provider(&keys));
    let mut tasks = vec![];
    for i in 0..6 {
        let p = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            p.send(&sms("+4917012345678", &format!("OTP {i:06}"))).await
        }));
    }
    for task in tasks {
        task.await.unwrap().expect("sent");
    }
    let record = modem.record();
    assert_eq!(
        record.unknown, 0,
        "no interleaved commands: {:?}",
        record.commands
    );
    let mut texts: Vec<String> = record.messages.into_iter().map(|(_, t)| t).collect();
    texts.sort();
    assert_eq!(
        texts,
        (0..6).map(|i| format!("OTP {i:06}")).collect::<Vec<_>>()
    );
}

#[test]
fn bad_device_keys_are_config_errors() {
    let base = "[server]\nlisten = [\"127.0.0.1:1812\"]\n[store]\npath = \"db\"\nkey_file = \"k\"\n\
                [[client]]\naddress = \"127.0.0.1\"\nsecret = \"x\"\n\
                [directory.local]\ntype = \"users_file\"\npath = \"u.toml\"\n\
                [[realm]]\nname = \"local\"\ndirectories = [\"local\"]\n\
                [provider.sms.modem]\nclass = \"smsprovider.DeviceSMSProvider.DeviceSMSProvider\"\n";
    let ok = Config::parse(
        Path::new("t.toml"),
        &format!("{base}CONFIGFILE = \"/etc/linotp2/gnokiirc\"\n"),
    );
    assert!(ok.is_ok(), "{:?}", ok.err());
    let errors = Config::parse(Path::new("t.toml"), &format!("{base}BAUDRATE = 9600\n"))
        .unwrap_err()
        .to_string();
    assert!(
        errors.starts_with("t.toml:15: provider.sms.modem.DEVICE: set DEVICE"),
        "{errors}"
    );
    let errors = Config::parse(
        Path::new("t.toml"),
        &format!("{base}DEVICE = \"/dev/ttyACM1\"\nBAUDRATE = \"fast\"\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(errors.contains("\"fast\" is not a baud rate"), "{errors}");
}

fn device_provider_block(modem: &FakeModem, extra: &str) -> String {
    format!(
        "[provider.sms.modem]\nclass = \"DeviceSMSProvider\"\nDEVICE = \"{}\"\nTIMEOUT = 5\n{extra}\n",
        modem.path.display()
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
fn radius_login_with_the_otp_from_the_modem() {
    let modem = FakeModem::start_with(ModemBehaviour {
        pin: Some("27182818".into()),
        ..ModemBehaviour::default()
    });
    let server = Server::start_with(&Setup {
        providers: device_provider_block(&modem, "PIN = \"27182818\"\n"),
        ..Setup::default()
    });
    let first = server.auth("alice", "wonderland", None);
    first.expect("Access-Challenge");
    let messages = modem.record().messages;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].0, "+4917012345678");
    let otp = otp_in(&messages[0].1);
    server
        .auth("alice", &otp, Some(&first.state()))
        .expect("Access-Accept");
    let log = server.log_text();
    let words: Vec<&str> = log.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    assert!(
        !words.contains(&"27182818"),
        "no SIM PIN in the log:\n{log}"
    );
    assert!(!words.contains(&otp.as_str()), "no OTP in the log:\n{log}");
}

#[test]
fn failing_modem_rejects_the_login() {
    let modem = FakeModem::start_with(ModemBehaviour {
        cms_error: Some(38),
        ..ModemBehaviour::default()
    });
    let server = Server::start_with(&Setup {
        providers: device_provider_block(&modem, ""),
        ..Setup::default()
    });
    let reply = server.auth("alice", "wonderland", None);
    reply.expect("Access-Reject");
    assert_eq!(
        reply.get("Reply-Message"),
        Some("sending the OTP by SMS failed")
    );
    server.wait_for_log("+CMS ERROR: 38");
}
