//! Tests of policy parsing and matching: LinOTP's action syntax, filters and precedence.

use super::filters::glob;
use super::*;

fn ctx<'a>(user: &'a str, realm: &'a str, client: &str) -> PolicyContext<'a> {
    PolicyContext {
        user,
        realm,
        client: client.parse().unwrap(),
        groups: &[],
    }
}

fn auth(name: &str, action: &str, user: &str, realm: &str, client: &str) -> Policy {
    Policy::parse(name, "authentication", action, user, realm, client, true).unwrap()
}

#[test]
fn actions_parse_linotp_syntax() {
    let p = auth(
        "p",
        "otppin=password, sms_provider= one   two ,smstext='Code: <otp>, bye'",
        "",
        "",
        "",
    );
    assert_eq!(p.actions.otppin, Some(OtpPin::Password));
    assert_eq!(
        p.actions.sms_provider,
        Some(vec!["one".to_string(), "two".to_string()])
    );
    assert_eq!(p.actions.smstext.as_deref(), Some("Code: <otp>, bye"));
    let e = Policy::parse(
        "e",
        "enrollment",
        "autoenrollment = sms  email",
        "",
        "",
        "",
        true,
    )
    .unwrap();
    assert_eq!(
        e.actions.autoenrollment,
        Some(vec![EnrollType::Sms, EnrollType::Email])
    );
    let star = Policy::parse("e", "enrollment", "autoenrollment=*", "", "", "", true).unwrap();
    assert_eq!(
        star.actions.autoenrollment,
        Some(vec![EnrollType::Sms, EnrollType::Email])
    );
}

#[test]
fn bad_actions_are_errors() {
    for (scope, action) in [
        ("authentication", "otppin=7"),
        ("authentication", "frobnicate=1"),
        ("authentication", "autoenrollment=sms"),
        ("enrollment", "autoenrollment=fax"),
        ("enrollment", "otppin=1"),
        ("authentication", "max_fail=0"),
        ("authentication", "otppin=1, otppin=2"),
        ("authentication", "smstext='unterminated"),
    ] {
        let r = Policy::parse("p", scope, action, "", "", "", true);
        assert_eq!(
            r.map_err(|e| e.field),
            Err(PolicyField::Action),
            "{scope} {action}"
        );
    }
    assert_eq!(
        Policy::parse("p", "admin", "", "", "", "", true).map_err(|e| e.field),
        Err(PolicyField::Scope)
    );
    assert_eq!(
        Policy::parse(
            "p",
            "authentication",
            "otppin=1",
            "",
            "",
            "10.0.0.300",
            true
        )
        .map_err(|e| e.field),
        Err(PolicyField::Client)
    );
}

#[test]
fn client_networks_like_linotp_autosms_test() {
    let set = PolicySet::new(vec![auth("net", "otppin=2", "*", "*", "172.16.200.0/24")]);
    let get = |c| {
        set.action(Scope::Authentication, &ctx("u", "r", c), |a| {
            a.otppin.as_ref()
        })
        .copied()
    };
    assert_eq!(get("172.16.200.123"), Some(OtpPin::OnlyOtp));
    assert_eq!(get("192.168.20.1"), None);
}

#[test]
fn user_patterns_and_negation() {
    let set = PolicySet::new(vec![auth("p", "otppin=2", "horst, adm*, -admin2", "", "")]);
    let get = |u| {
        set.action(Scope::Authentication, &ctx(u, "r", "10.0.0.1"), |a| {
            a.otppin.as_ref()
        })
        .copied()
    };
    assert_eq!(get("horst"), Some(OtpPin::OnlyOtp));
    assert_eq!(get("admin1"), Some(OtpPin::OnlyOtp));
    assert_eq!(get("admin2"), None);
    assert_eq!(get("localuser"), None);
}

#[test]
fn most_specific_wins() {
    let set = PolicySet::new(vec![
        auth("all", "otppin=0", "*", "*", "*"),
        auth("pattern", "otppin=1", "al*", "*", "*"),
        auth("exact", "otppin=2", "alice", "*", "*"),
        auth("realm", "max_fail=3", "*", "*", "*"),
        auth("realm-exact", "max_fail=5", "*", "Corp", "*"),
        auth("client", "blocking_timeout=7", "*", "*", "*"),
        auth(
            "client-exact",
            "blocking_timeout=9",
            "*",
            "*",
            "10.1.0.0/16",
        ),
        auth("inactive", "otppin=2", "bob", "*", "*"),
    ]);
    let mut set = set;
    set.policies.last_mut().unwrap().active = false;
    let otppin = |u| {
        set.action(Scope::Authentication, &ctx(u, "corp", "10.1.2.3"), |a| {
            a.otppin.as_ref()
        })
        .copied()
    };
    assert_eq!(otppin("alice"), Some(OtpPin::OnlyOtp));
    assert_eq!(otppin("albert"), Some(OtpPin::Password));
    assert_eq!(otppin("bob"), Some(OtpPin::TokenPin));
    let c = ctx("x", "corp", "10.1.2.3");
    assert_eq!(
        set.action(Scope::Authentication, &c, |a| a.max_fail.as_ref()),
        Some(&5)
    );
    assert_eq!(
        set.action(Scope::Authentication, &c, |a| a.blocking_timeout.as_ref()),
        Some(&9)
    );
    let other = ctx("x", "other", "192.0.2.1");
    assert_eq!(
        set.action(Scope::Authentication, &other, |a| a.max_fail.as_ref()),
        Some(&3)
    );
    assert_eq!(
        set.action(Scope::Authentication, &other, |a| a
            .blocking_timeout
            .as_ref()),
        Some(&7)
    );
}

#[test]
fn reply_templates() {
    let t = ReplyTemplate::parse(" Fortinet-Group-Name = \"{groups}\" ").unwrap();
    assert_eq!(
        (t.attribute.as_str(), t.value.as_str()),
        ("Fortinet-Group-Name", "{groups}")
    );
    assert!(t.per_group());
    let t = ReplyTemplate::parse("Class = vpn-{user}-{givenname}!").unwrap();
    assert!(!t.per_group() && t.constant().is_none());
    // A value from the directory is text, never read for placeholders again.
    let filled = t.render(
        |field| match field {
            ReplyField::User => "alice".into(),
            _ => "{groups}".into(),
        },
        None,
    );
    assert_eq!(filled, "vpn-alice-{groups}!");
    assert_eq!(
        ReplyTemplate::parse("Filter-Id = staff")
            .unwrap()
            .constant(),
        Some("staff")
    );
    assert!(ReplyTemplate::parse("Class").is_err());
    assert!(ReplyTemplate::parse("Bad Name = x").is_err());
    assert!(
        ReplyTemplate::parse("Class = {nope}")
            .unwrap_err()
            .contains("unknown placeholder")
    );
    let reply = vec!["Class = x".to_string()];
    let e = Policy::from_text(&PolicyText {
        name: "p",
        scope: "enrollment",
        action: "autoenrollment=sms",
        reply: &reply,
        active: true,
        ..PolicyText::default()
    });
    assert_eq!(e.map_err(|e| e.field), Err(PolicyField::Reply));
    let empty = Policy::parse("p", "authentication", " ", "", "", "", true);
    assert_eq!(empty.map_err(|e| e.field), Err(PolicyField::Action));
}

/// Issue 17: `group` filters on directory groups (name or DN, ignoring case), and ranks
/// between user and realm; user names match the directory's spelling ignoring case.
#[test]
fn issue_17_group_filters_and_case_insensitive_users() {
    let policy = |name: &str, action: &str, user: &str, group: &str| {
        Policy::from_text(&PolicyText {
            name,
            scope: "authentication",
            action,
            user,
            group,
            active: true,
            ..PolicyText::default()
        })
        .unwrap()
    };
    let set = PolicySet::new(vec![
        policy("all", "mfa=required", "", ""),
        policy(
            "admins",
            "mfa=password_only",
            "",
            "Break-Glass; cn=svc,ou=groups,dc=x",
        ),
        policy("bob", "mfa=required", "BOB", "break-glass"),
    ]);
    let mfa = |user: &str, groups: &[String]| {
        let ctx = PolicyContext {
            user,
            realm: "local",
            client: "10.0.0.1".parse().unwrap(),
            groups,
        };
        set.action(Scope::Authentication, &ctx, |a| a.mfa.as_ref())
            .copied()
    };
    let glass = vec!["break-glass".to_string()];
    let dn = vec!["CN=svc,OU=groups,DC=x".to_string()];
    assert_eq!(mfa("alice", &[]), Some(Mfa::Required));
    assert_eq!(mfa("alice", &glass), Some(Mfa::PasswordOnly));
    assert_eq!(mfa("carol", &dn), Some(Mfa::PasswordOnly), "by DN");
    assert_eq!(
        mfa("bob", &glass),
        Some(Mfa::Required),
        "the user is more specific"
    );
}

#[test]
fn issue_17_new_actions_parse_and_refuse_bad_values() {
    let p = auth(
        "p",
        "mfa=password_only, delivery_failmode=password_only, login_mode=append, \
         challenge_text='Code sent to <recipient>', reject_text='Nope'",
        "",
        "",
        "",
    );
    assert_eq!(p.actions.mfa, Some(Mfa::PasswordOnly));
    assert_eq!(
        p.actions.delivery_failmode,
        Some(DeliveryFailMode::PasswordOnly)
    );
    assert_eq!(p.actions.login_mode, Some(LoginMode::Append));
    assert_eq!(
        p.actions.challenge_text.as_deref(),
        Some("Code sent to <recipient>")
    );
    for bad in [
        "mfa=maybe",
        "delivery_failmode=open",
        "login_mode=inline",
        "challenge_text=your code is <otp>",
    ] {
        let e = Policy::parse("p", "authentication", bad, "", "", "", true).unwrap_err();
        assert_eq!(e.field, PolicyField::Action, "{bad}");
    }
}

#[test]
fn glob_cases() {
    assert!(glob("adm*", "admin"));
    assert!(glob("*-svc", "vpn-svc"));
    assert!(glob("a*b*c", "aXXbYYc"));
    assert!(!glob("a*b*c", "aXXcYYb"));
    assert!(!glob("ab*ba", "aba"));
    assert!(glob("*", ""));
}

#[test]
fn a_bad_value_is_named_by_its_action_and_said_by_its_type() {
    let message = |action: &str| {
        Policy::parse("p", "authentication", action, "", "", "", true)
            .unwrap_err()
            .message
    };
    assert_eq!(
        message("otppin=7"),
        r#"otppin: "7" is not 0/token_pin, 1/password or 2/only_otp"#
    );
    assert_eq!(
        message("blocking_timeout=soon"),
        r#"blocking_timeout: "soon": expected a number of seconds"#
    );
    assert_eq!(
        message("max_fail=0"),
        r#"max_fail: "0": expected a number above 0"#
    );
    assert_eq!(message("passthru="), "passthru: needs a value");
    assert_eq!(
        message("sms_keyword=two words"),
        r#"sms_keyword: "two words" must be one word"#
    );
    assert_eq!(
        message("sms_provider= , "),
        "sms_provider: needs at least one provider name"
    );
}

#[test]
fn every_action_of_the_table_is_set_by_its_name() {
    // A value each type accepts; the table's names are the fields of `Actions`.
    let value = |name: &str| match name {
        "autoenrollment" | "passthru_assign" => "sms",
        "otppin" => "1",
        "mfa" => "password_only",
        "delivery_failmode" => "closed",
        "login_mode" => "append",
        "challenge_validity" | "blocking_timeout" | "max_fail" | "lockout_duration"
        | "grace_seconds" => "7",
        _ => "word",
    };
    for (name, scope) in action_scopes() {
        let scope = match scope {
            Scope::Enrollment => "enrollment",
            Scope::Authentication => "authentication",
        };
        let action = format!("{name}={}", value(name));
        let policy = Policy::parse("p", scope, &action, "", "", "", true);
        let actions = policy
            .unwrap_or_else(|e| panic!("{action}: {}", e.message))
            .actions;
        assert_ne!(actions, Actions::default(), "{action} set nothing");
    }
}
