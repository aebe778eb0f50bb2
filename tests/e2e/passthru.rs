//! Issue 23 over the wire, against a real FreeRADIUS as the legacy server: passthru to a stock
//! FreeRADIUS 3.2.1 reply (no Message-Authenticator) under the upstream's
//! `require_message_authenticator` (`auto` by default, `yes`, and `auto` after a signed reply),
//! and no forward of another spelling (`CORP\alice`, `alice@corp.example`) of a token holder.

use crate::rollout::{audit_reasons, start, upstream};
use crate::util::Server;
use crate::util::freeradius::FreeRadius;

/// Everyone without a token goes to the legacy server.
const PASSTHRU: &str = "\n[[policy]]\nname = \"migration\"\nscope = \"authentication\"\n\
                        action = \"passthru=legacy\"\n";

/// What a NAS is told when the legacy server gives no (acceptable) answer.
const UNAVAILABLE: &str = "authentication service unavailable, try again later";

/// The reply's code, with both servers' logs when it is not `code`.
fn expect(server: &Server, legacy: &FreeRadius, user: &str, password: &str, code: &str) {
    let reply = server.auth(user, password, None);
    assert_eq!(
        reply.code,
        code,
        "{user:?}: {}\ntessera:\n{}\nFreeRADIUS:\n{}",
        reply.output,
        server.log_text(),
        legacy.log()
    );
}

/// Issue 23 #8: Debian 12's FreeRADIUS (3.2.1) signs no Accept or Reject unless its reply list
/// holds a Message-Authenticator; tessera dropped every such reply ("did not answer after 3
/// tries"). With the default (`auto`) its stock replies are taken.
#[test]
fn issue_23_passthru_to_a_stock_freeradius_with_the_default() {
    let legacy = FreeRadius::start(&[("bob", "old-bob")], "oldsecret");
    let server = start(PASSTHRU, &upstream(legacy.addr, ""));
    let accept = server.auth("bob", "old-bob", None);
    assert_eq!(
        accept.code,
        "Access-Accept",
        "{}\ntessera:\n{}\nFreeRADIUS:\n{}",
        accept.output,
        server.log_text(),
        legacy.log()
    );
    assert_eq!(
        accept.get("Reply-Message"),
        Some("welcome from the old server")
    );
    let reject = server.auth("bob", "wrong", None);
    reject.expect("Access-Reject");
    assert_ne!(reject.get("Reply-Message"), Some(UNAVAILABLE));
    server.wait_for_log("answer=Access-Reject");
    assert_eq!(server.log_count("answers without Message-Authenticator"), 0);
    assert_eq!(server.log_count("bad authenticator or not ours"), 0);
}

/// Issue 23 #8: `require_message_authenticator = "yes"` still drops the stock reply, and the
/// log says why — once per upstream, naming the setting.
#[test]
fn issue_23_require_message_authenticator_yes_drops_an_unsigned_reply_and_says_why() {
    let legacy = FreeRadius::start(&[("bob", "old-bob")], "oldsecret");
    let server = start(
        PASSTHRU,
        &upstream(legacy.addr, "require_message_authenticator = \"yes\""),
    );
    for _ in 0..2 {
        let down = server.auth("bob", "old-bob", None);
        down.expect("Access-Reject");
        assert_eq!(down.get("Reply-Message"), Some(UNAVAILABLE));
    }
    let why = "upstream legacy answers without Message-Authenticator; \
               set require_message_authenticator = auto|no for it";
    server.wait_for_log(why);
    assert_eq!(
        server.log_count_reaching("passthru: the legacy server did not answer", 2),
        2
    );
    assert_eq!(server.log_count(why), 1, "{}", server.log_text());
}

/// Issue 23 #8: under `auto`, once the upstream has sent a signed reply, an unsigned one is
/// dropped (a forger without the secret cannot switch the check off again). The real
/// FreeRADIUS signs carol's Accept (her reply list holds the attribute) and not bob's.
#[test]
fn issue_23_auto_requires_message_authenticator_once_the_upstream_sent_one() {
    let legacy = FreeRadius::start_signing_for(
        &[("bob", "old-bob"), ("frank", "old-frank")],
        "oldsecret",
        &["frank"],
    );
    let server = start(
        PASSTHRU,
        &upstream(legacy.addr, "require_message_authenticator = \"auto\""),
    );
    expect(&server, &legacy, "bob", "old-bob", "Access-Accept");
    expect(&server, &legacy, "frank", "old-frank", "Access-Accept");
    server.wait_for_log("the upstream signs its replies");
    let down = server.auth("bob", "old-bob", None);
    down.expect("Access-Reject");
    assert_eq!(down.get("Reply-Message"), Some(UNAVAILABLE));
    server.wait_for_log(
        "upstream legacy answers without Message-Authenticator after it had sent one",
    );
    // Signed replies still pass.
    expect(&server, &legacy, "frank", "old-frank", "Access-Accept");
}

/// Issue 23 #7: with `user = "*, -alice"` and passthru, `CORP\alice` and
/// `alice@corp.example` were forwarded although alice holds a token; an old server that maps
/// them to alice (NPS with Active Directory) let her in without the code. The legacy server
/// here takes any name with the password, as such a server would.
#[test]
fn issue_23_passthru_forwards_no_other_spelling_of_a_token_holder() {
    let legacy = FreeRadius::start(&[("DEFAULT", "old-password")], "oldsecret");
    let server = start(
        "\n[[policy]]\nname = \"migration\"\nscope = \"authentication\"\n\
         user = \"*, -alice\"\naction = \"passthru=legacy\"\n",
        &upstream(legacy.addr, ""),
    );
    let domain_forms = [
        "CORP\\alice",
        "alice@corp.example",
        "ＣＯＲＰ＼ａｌｉｃｅ",
        "alice＠corp.example",
        "corp.example\\Alice",
        "CORP\\alice@corp.example",
    ];
    // No token yet, but the policy excludes alice: not under another spelling either.
    for name in domain_forms {
        expect(&server, &legacy, name, "old-password", "Access-Reject");
    }
    server.wait_for_log("whom no passthru policy sends there");
    // alice's first login enrolls her SMS token.
    server
        .auth("alice", "wonderland", None)
        .expect("Access-Challenge");
    for name in domain_forms
        .iter()
        .chain(&["ALICE", "ａｌｉｃｅ", " Alice"])
    {
        expect(&server, &legacy, name, "old-password", "Access-Reject");
    }
    server.wait_for_log("who holds a token");
    let reasons = audit_reasons(&server, "CORP\\alice", 2);
    assert!(
        reasons[0].starts_with(
            "not forwarded to the legacy server legacy: the name is a spelling of alice@local"
        ),
        "{reasons:?}"
    );
    // Names that are nobody's spelling, and a user without a token, still go through.
    for name in ["CORP\\zed", "zed@corp.example", "bob", "CORP\\bob"] {
        expect(&server, &legacy, name, "old-password", "Access-Accept");
    }
    assert_eq!(
        server.log_count_reaching("passthru: relayed the legacy server's answer", 4),
        4,
        "only those four were forwarded"
    );
}

/// One Accounting-Request of session `id` of `user` to tessera's accounting port.
fn acct(server: &Server, status: &str, id: &str, user: &str) -> testkit::radclient::Reply {
    let (id, user) = (format!("\"{id}\""), format!("\"{user}\""));
    testkit::radclient::radclient_command(
        crate::accounting::accounting_addr(server),
        testkit::radclient::SECRET,
        "acct",
        &[
            ("Acct-Status-Type", status),
            ("Acct-Session-Id", &id),
            ("NAS-Identifier", "\"gw1\""),
            ("User-Name", &user),
        ],
    )
}

/// Issue 30: the accounting of a user the passthru policy sends to the old server goes there
/// too (its detail file has it), and is kept here; another user's stays here only; with the
/// old server down, the record is kept but not answered, so the NAS sends it again.
#[test]
fn a_passthru_users_accounting_is_forwarded_to_the_old_server_too() {
    let mut legacy = FreeRadius::start(&[("bob", "old-bob")], "oldsecret");
    let server = start(
        "\n[[policy]]\nname = \"migration\"\nscope = \"authentication\"\nuser = \"bob\"\n\
         action = \"passthru=legacy\"\n",
        &upstream(
            legacy.addr,
            &format!("accounting_address = \"{}\"", legacy.acct_addr),
        ),
    );
    acct(&server, "Start", "s-bob", "bob").expect("Accounting-Response");
    acct(&server, "Start", "s-alice", "alice").expect("Accounting-Response");
    let detail = legacy.accounting_records();
    assert!(detail.contains("Acct-Session-Id = \"s-bob\""), "{detail}");
    assert!(!detail.contains("s-alice"), "{detail}");
    let (code, out, err) = server.cli(&["sessions", "--json"], "");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("\"s-bob\"") && out.contains("\"s-alice\""),
        "{out}"
    );

    legacy.stop();
    let unanswered = acct(&server, "Stop", "s-bob", "bob");
    assert_eq!(unanswered.code, "none", "{}", unanswered.output);
    server.wait_for_log("the legacy server did not acknowledge the record");
    acct(&server, "Stop", "s-alice", "alice").expect("Accounting-Response");
}
