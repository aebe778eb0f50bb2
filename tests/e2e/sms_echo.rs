//! Issue 23 #6: a gateway that echoes the request in another encoding — HTML-escaped,
//! JSON-escaped, percent- or form-encoded, base64 — put provider secrets, the phone number and
//! the text with its OTP into tessera's log, the audit and `tessera provider test`. The testkit
//! gateway echoes every value it got in one encoding (`--echo-as`); none of those echoes may
//! reach any of the three, and the reply's excerpt still does.

use crate::util::peers::{Peer, http_gateway};
use crate::util::{Server, Setup};

/// Every encoding the gateway can echo in (`http_gateway.py`).
const ENCODINGS: [&str; 8] = [
    "html",
    "html-numeric",
    "html-hex",
    "json",
    "url",
    "url-lower",
    "form",
    "base64",
];

/// The provider: secrets in the URL's query, basic auth, `PARAMETER`s and a header; the
/// PASSWORD and parameters hold what HTML, JSON and URLs each escape.
fn setup(gw: &Peer) -> Setup {
    let providers = format!(
        "[provider.sms.gw]\nclass = \"HttpSMSProvider\"\nURL = \"{}?account=acct-secret-77\"\n\
         USERNAME = \"gwuser\"\nPASSWORD = \"S3cr3t P@ss&w0rd=1+2\"\n\
         PARAMETER = {{ apikey = 'KEY\"with\\backslash', passwort = \"Pässwort <9>\" }}\n\
         HEADERS = {{ X-Api-Token = \"hdr-token/9876\" }}\n\n\
         [provider.email.spool]\nclass = \"file\"\npath = \"spool.log\"\n",
        gw.url("/send")
    );
    Setup {
        providers,
        ..Setup::default()
    }
}

/// Every string value of the audit rows, decoded from the JSON output.
fn audit_values(server: &Server) -> String {
    let (_, out, _) = server.cli(&["audit", "--json"], "");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    rows.as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| row.as_object())
        .flat_map(|row| row.values())
        .filter_map(|v| v.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn issue_23_echoes_in_other_encodings_reach_no_log_audit_or_provider_test() {
    for encoding in ENCODINGS {
        let gw = http_gateway(400, "rejected:", &["--echo-as", encoding]);
        let server = Server::start_with(&setup(&gw));
        server
            .auth("alice", "wonderland", None)
            .expect("Access-Reject");
        let line = server.wait_for_log("result=\"reject\"");
        assert!(line.contains("HTTP 400: rejected:"), "{encoding}: {line}");
        let (code, out, err) =
            server.cli(&["provider", "test", "gw", "--to", "+4917012345678"], "");
        assert_eq!(code, 1, "{encoding}: {out}{err}");
        let provider_test = format!("{out}{err}");
        assert!(
            provider_test.contains("HTTP 400: rejected:"),
            "{encoding}: {provider_test}"
        );

        let echoed: Vec<String> = gw
            .wait_for(2)
            .iter()
            .flat_map(|r| r["echoed"].as_array().cloned().unwrap_or_default())
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        assert!(echoed.len() >= 12, "{encoding}: {echoed:?}");
        let audit = audit_values(&server);
        assert!(audit.contains("HTTP 400: rejected:"), "{encoding}: {audit}");
        let log = server.log_text();
        for (place, text) in [
            ("log", &log),
            ("audit", &audit),
            ("provider test", &provider_test),
        ] {
            for form in &echoed {
                assert!(
                    !text.contains(form.as_str()),
                    "{encoding}: {form:?} reached the {place}:\n{text}"
                );
            }
        }
    }
}
