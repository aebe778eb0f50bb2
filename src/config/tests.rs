//! Config loading: what loads, and every problem reported at its `file:line`.

use super::*;

const MINIMAL: &str = r#"
[server]
listen = ["127.0.0.1:1812"]

[store]
path = "db.sqlite"
key_file = "db.key"

[[client]]
address = "127.0.0.1"
secret = "testing123"

[directory.local]
type = "users_file"
path = "users.toml"

[[realm]]
name = "Local"
directories = ["local"]
default = true

[provider.sms.spool]
class = "file"
path = "spool.log"

[[policy]]
name = "autoenroll"
scope = "enrollment"
action = "autoenrollment=sms email"
"#;

#[test]
fn minimal_config_loads_and_resolves_paths() {
    let c = Config::parse(Path::new("/etc/tessera/tessera.toml"), MINIMAL).unwrap();
    assert_eq!(
        c.store.sqlite_path(),
        Some(Path::new("/etc/tessera/db.sqlite"))
    );
    assert_eq!(c.realms[0].name, "local");
    assert_eq!(c.clients.len(), 1);
    let users = c.directories["local"].downcast_ref();
    let users: &crate::directory::users_file::UsersFileConfig = users.expect("a users file");
    assert_eq!(users.path, Path::new("/etc/tessera/users.toml"));
}

fn errors(text: &str) -> Vec<String> {
    match Config::parse(Path::new("t.toml"), text) {
        Ok(_) => vec![],
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let text = MINIMAL.replace("[server]\n", "[server]\ntimout = 5\n");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("t.toml:3: server.timout: unknown field `timout`"),
        "{}",
        errs[0]
    );
}

#[test]
fn semantic_errors_are_all_reported_with_lines() {
    let text = MINIMAL
        .replace("address = \"127.0.0.1\"", "address = \"127.0.0.300\"")
        .replace("directories = [\"local\"]", "directories = [\"ldap\"]")
        .replace("autoenrollment=sms email", "autoenrollment=fax");
    let errs = errors(&text);
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(
        errs[0].starts_with("t.toml:10: client.address:"),
        "{}",
        errs[0]
    );
    assert!(
        errs[1].starts_with("t.toml:19: realm.directories: no [directory.ldap]"),
        "{}",
        errs[1]
    );
    assert!(
        errs[2].starts_with(
            "t.toml:29: policy.action: policy \"autoenroll\": autoenrollment: unknown token type"
        ),
        "{}",
        errs[2]
    );
}

#[test]
fn policy_naming_a_missing_provider() {
    let text = format!(
        "{MINIMAL}\n[[policy]]\nname = \"p\"\nscope = \"authentication\"\naction = \"sms_provider=spool nope\"\n"
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("no [provider.sms.nope] exists"),
        "{}",
        errs[0]
    );
}

#[test]
fn unknown_provider_key_is_reported() {
    let text = MINIMAL.replace("path = \"spool.log\"", "path = \"spool.log\"\nURLL = \"x\"");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("t.toml:25: provider.sms.spool.URLL: unknown field `URLL`"),
        "{}",
        errs[0]
    );
}

fn sms_provider(body: &str) -> String {
    MINIMAL.replace(
        "[provider.sms.spool]\nclass = \"file\"\npath = \"spool.log\"\n",
        &format!("[provider.sms.gw]\n{body}\n"),
    )
}

#[test]
fn config_json_holds_linotp_json_verbatim() {
    // The seed's clickatell example, pasted unchanged.
    let text = sms_provider(
        r#"class = "smsprovider.HttpSMSProvider.HttpSMSProvider"
timeout = 3
config_json = '''
{ "URL" : "http://api.clickatell.com/http/sendmsg",
 "PARAMETER" : {
 "user":"username",
 "password":"askme",
 "api_id":"12980436"
  },
  "SMS_TEXT_KEY":"text",
  "SMS_PHONENUMBER_KEY":"to",
  "HTTP_Method":"GET",
  "PROXY" : "http://user:pass@192.168.100.250:8080",
  "RETURN_SUCCESS" : "ID"
 }
'''"#,
    );
    let c = Config::parse(Path::new("t.toml"), &text).unwrap();
    let settings = c.providers[&Channel::Sms]["gw"].0.downcast_ref();
    let settings: &crate::delivery::http_sms::HttpSmsSettings = settings.expect("HTTP");
    let h = &settings.config;
    assert_eq!(h.url, "http://api.clickatell.com/http/sendmsg");
    assert_eq!(h.parameter.0["api_id"], "12980436");
    assert_eq!(h.return_success.as_deref(), Some("ID"));
    assert!(h.timeout.is_some());
}

#[test]
fn single_quoted_json_is_an_error_at_its_line() {
    let text = sms_provider(
        "class = \"HttpSMSProvider\"\nconfig_json = '''\n{\n  'URL': 'http://gw'\n}\n'''",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    // The provider header is on line 22, the JSON starts on line 25; its second line is bad.
    assert!(
        errs[0].starts_with(
            "t.toml:26: provider.sms.gw.config_json: invalid JSON at line 2, column 3"
        ),
        "{}",
        errs[0]
    );
    assert!(errs[0].contains("double quotes"), "{}", errs[0]);
}

#[test]
fn config_json_and_toml_key_clash() {
    let text = sms_provider(
        "class = \"HttpSMSProvider\"\nURL = \"http://a\"\nconfig_json = '{\"URL\": \"http://b\"}'",
    );
    let errs = errors(&text);
    assert!(
        errs[0].contains("\"URL\" is given both in config_json and as a TOML key"),
        "{errs:?}"
    );
}

#[test]
fn provider_classes_by_channel() {
    let errs = errors(&sms_provider(
        "class = \"SMTPEmailProvider\"\nSMTP_SERVER = \"mx\"",
    ));
    assert!(
        errs[0].contains("define it as [provider.email.NAME]"),
        "{errs:?}"
    );
    let errs = errors(&sms_provider("class = \"FaxProvider\""));
    assert!(errs[0].contains("known: file, HttpSMSProvider"), "{errs:?}");
    let errs = errors(&sms_provider(
        "class = \"HttpSMSProvider\"\nURL = \"http://gw\"\nHTTP_Method = \"PUT\"",
    ));
    assert!(
        errs[0].starts_with("t.toml:25: provider.sms.gw.HTTP_Method: \"PUT\" is not GET or POST"),
        "{errs:?}"
    );
    let text = format!(
        "{MINIMAL}\n[provider.email.mail]\nclass = \"linotp.lib.emailprovider.SMTPEmailProvider\"\nconfig_json = '{{\"SMTP_SERVER\": \"mail.example.com\", \"SMTP_USER\": \"u\", \"SMTP_PASSWORD\": \"p\"}}'\n"
    );
    assert!(errors(&text).is_empty(), "{:?}", errors(&text));
}

#[test]
fn ldap_problems_point_at_their_keys() {
    let text = MINIMAL.replace(
        "[directory.local]",
        "[directory.corp]\ntype = \"ldap\"\nLDAPBASE = \"dc=example,dc=org\"\n\
         LDAPURI = \"http://dc1\"\ntimeout = 5000\n\n[directory.corp.attributes]\nmobile = \"(bad)\"\n\n\
         [directory.local]",
    );
    let errs = errors(&text);
    assert_eq!(
        errs,
        [
            "t.toml:16: directory.corp.uri: \"http://dc1\": scheme \"http\" is not supported (ldap or ldaps)",
            "t.toml:20: directory.corp.attributes.mobile: \"(bad)\" is not an attribute name",
            "t.toml:17: directory.corp.timeout: at most 600 seconds",
        ]
    );
}

#[test]
fn line_col_counts() {
    assert_eq!(line_col("a\nbc\n", 3), (2, 2));
    assert_eq!(line_col("abc", 0), (1, 1));
}

#[test]
fn issue_15_postgresql_store_keys_load_and_resolve() {
    let text = MINIMAL.replace(
        "path = \"db.sqlite\"\n",
        "backend = \"postgresql\"\n\
         url = \"postgresql://tessera@db1,db2/tessera?target_session_attrs=read-write\"\n\
         password_file = \"pg.password\"\npool_size = 4\nstatement_timeout = 3\n",
    );
    let c = Config::parse(Path::new("/etc/tessera/tessera.toml"), &text).unwrap();
    let crate::store::config::StoreBackend::Postgres(pg) = &c.store.backend else {
        panic!("not PostgreSQL: {:?}", c.store.backend);
    };
    assert_eq!(
        pg.password_file.as_deref(),
        Some(Path::new("/etc/tessera/pg.password"))
    );
    assert_eq!((pg.pool_size, pg.statement_timeout), (4, 3));
    assert_eq!(c.store.sqlite_path(), None);
}

#[test]
fn issue_15_store_key_errors_name_their_line_and_never_the_password() {
    // postgresql without url, with SQLite's path.
    let errs = errors(&MINIMAL.replace(
        "path = \"db.sqlite\"\n",
        "path = \"db.sqlite\"\nbackend = \"postgresql\"\n",
    ));
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs.iter()
            .any(|e| e.starts_with("t.toml:6: store.path: is not a key of backend")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("t.toml:7: store.url: backend = \"postgresql\" needs url")),
        "{errs:?}"
    );
    // SQLite with PostgreSQL's keys; an unknown backend.
    let errs = errors(&MINIMAL.replace(
        "path = \"db.sqlite\"\n",
        "path = \"db.sqlite\"\npool_size = 3\n",
    ));
    assert_eq!(
        errs,
        ["t.toml:7: store.pool_size: is not a key of backend = \"sqlite\""]
    );
    let errs = errors(&MINIMAL.replace("path = \"db.sqlite\"\n", "backend = \"mysql\"\n"));
    assert_eq!(
        errs,
        ["t.toml:6: store.backend: unknown backend \"mysql\" (known: sqlite, postgresql)"]
    );
    // A URL that does not parse is shown without its password.
    let errs = errors(&MINIMAL.replace(
        "path = \"db.sqlite\"\n",
        "backend = \"postgresql\"\nurl = \"postgresql://t:hunter2@db1/x?sslmode=bogus\"\n",
    ));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("t.toml:7: store.url: postgresql://t:***@db1/x"),
        "{errs:?}"
    );
    assert!(!errs[0].contains("hunter2"), "{errs:?}");
}

#[test]
fn radsec_settings_and_clients_are_checked_together() {
    let text = MINIMAL
        .replace(
            "listen = [\"127.0.0.1:1812\"]",
            "listen = [\"127.0.0.1:1812\"]\ntls_listen = [\"0.0.0.0:2083x\"]\ntls_certificate = \"c.pem\"",
        )
        .replace(
            "secret = \"testing123\"",
            "secret = \"testing123\"\n\n[[client]]\nname = \"nas\"\ntls_identity = \"sha256:12ab\"\n\n[[client]]\nname = \"lost\"\ntls_only = true",
        );
    let errs = errors(&text);
    let has = |prefix: &str| errs.iter().any(|e| e.starts_with(prefix));
    assert!(
        has("t.toml:4: server.tls_listen: \"0.0.0.0:2083x\""),
        "{errs:?}"
    );
    assert!(
        has("t.toml: server.tls_key: needed with tls_listen"),
        "{errs:?}"
    );
    assert!(
        has("t.toml: server.tls_client_ca: needed with tls_listen"),
        "{errs:?}"
    );
    assert!(
        has("t.toml:17: client.tls_identity: \"sha256:12ab\""),
        "{errs:?}"
    );
    assert!(
        has("t.toml: client.address: client \"lost\" has neither"),
        "{errs:?}"
    );
    assert_eq!(errs.len(), 5, "{errs:?}");
}

#[test]
fn a_radsec_client_needs_no_address_and_gets_the_radsec_secret() {
    let text = MINIMAL.replace(
        "listen = [\"127.0.0.1:1812\"]",
        "listen = [\"127.0.0.1:1812\"]\ntls_listen = [\"127.0.0.1:2083\"]\ntls_certificate = \"c.pem\"\ntls_key = \"k.pem\"\ntls_client_ca = \"ca.pem\"",
    ) + "\n[[client]]\nname = \"nas\"\ntls_identity = \"nas.example.org\"\ntls_only = true\n";
    let c = Config::parse(Path::new("/etc/tessera/t.toml"), &text).unwrap();
    let client = c
        .clients
        .find_tls(b"", &["nas.example.org".into()])
        .unwrap();
    assert_eq!(client.secret.expose(), b"radsec");
    assert!(client.tls_only);
    assert_eq!(c.tls_listen.len(), 1);
    let cert = c.server.tls_certificate.as_ref().unwrap();
    assert_eq!(cert.get_ref(), Path::new("/etc/tessera/c.pem"));
}

#[test]
fn toml_errors_name_the_key_that_stands_there() {
    // A wrong type inside an array of tables: the entry's key, without its index.
    let errs = errors(&MINIMAL.replace("secret = \"testing123\"", "secret = 5"));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("t.toml:11: client.secret: "),
        "{errs:?}"
    );
    // A syntax error: the table of the broken line (its key did not parse).
    let errs = errors(&MINIMAL.replace("path = \"users.toml\"", "path = \"users.toml"));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("t.toml:15: directory.local: "),
        "{errs:?}"
    );
    // A table the schema does not know: named by its header.
    let errs = errors(&MINIMAL.replace("[provider.sms.spool]", "[provider.fax.spool]"));
    assert!(
        errs[0].starts_with("t.toml:22: provider.fax.spool: "),
        "{errs:?}"
    );
}

#[test]
fn provider_problems_point_at_their_keys_or_at_config_json() {
    // A key set in TOML: its own line. A key that came from config_json: that line. A key
    // that is missing: the table's header.
    let errs = errors(&sms_provider(
        "class = \"HttpSMSProvider\"\nURL = \"ftp://gw\"\ntimeout = 5",
    ));
    assert_eq!(
        errs,
        ["t.toml:24: provider.sms.gw.URL: scheme \"ftp\" is not http or https"]
    );
    let errs = errors(&sms_provider(
        "class = \"HttpSMSProvider\"\ntimeout = 5\nconfig_json = '{\"URL\": \"http://gw\", \"PROXY\": \"socks5://p\"}'",
    ));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("t.toml:25: provider.sms.gw.PROXY: scheme \"socks5\""),
        "{errs:?}"
    );
    let errs = errors(&sms_provider("class = \"HttpSMSProvider\"\ntimeout = 5"));
    assert_eq!(errs, ["t.toml:22: provider.sms.gw: missing field `URL`"]);
}

#[test]
fn worker_threads_is_checked_at_its_line_and_defaults_to_half_the_cpus() {
    let text = MINIMAL.replace("[server]\n", "[server]\nworker_threads = 0\n");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("t.toml:3: server.worker_threads: 0 threads: give 1 to 1024"),
        "{}",
        errs[0]
    );
    let two = MINIMAL.replace("[server]\n", "[server]\nworker_threads = 2\n");
    let c = Config::parse(Path::new("t.toml"), &two).unwrap();
    assert_eq!(c.server.worker_threads(), 2);
    let c = Config::parse(Path::new("t.toml"), MINIMAL).unwrap();
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    assert_eq!(c.server.worker_threads(), cpus.div_ceil(2));
}

#[test]
fn issue_23_radsec_admission_keys_default_and_are_checked() {
    let c = Config::parse(Path::new("t.toml"), MINIMAL).unwrap();
    assert_eq!(*c.server.tls_max_connections_per_source.get_ref(), 16);
    assert_eq!(*c.server.tls_handshake_timeout_seconds.get_ref(), 5);
    assert_eq!(c.server.descriptor_reserve, 128);
    let text = MINIMAL.replace(
        "[server]\n",
        "[server]\ntls_max_connections_per_source = 0\ntls_handshake_timeout_seconds = 0\n",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!(
        errs,
        [
            "t.toml:3: server.tls_max_connections_per_source: must be at least 1",
            "t.toml:4: server.tls_handshake_timeout_seconds: must be at least 1"
        ]
    );
}

/// Issue 23: the back-off's ceiling window is a few seconds at most — it must slow, not lock.
#[test]
fn issue_23_the_backoff_ceiling_window_is_a_few_seconds() {
    for (window, refused) in [(0, true), (1, false), (10, false), (11, true), (3600, true)] {
        let text = format!("{MINIMAL}\n[auth]\nbackoff_identity_window = {window}\n");
        let errs = errors(&text);
        assert_eq!(!errs.is_empty(), refused, "{window}: {errs:?}");
        if refused {
            assert!(
                errs[0].contains("auth.backoff_identity_window: must be between 1 and 10"),
                "{}",
                errs[0]
            );
        }
    }
    let text = format!("{MINIMAL}\n[auth]\nbackoff_identity_after = 0\nbackoff_after = 0\n");
    let c = Config::parse(Path::new("t.toml"), &text).unwrap();
    assert_eq!(
        (c.auth.backoff_after, c.auth.backoff_identity_after),
        (0, 0)
    );
}

#[test]
fn issue_24_http_section_is_off_by_default_and_its_problems_have_lines() {
    let c = Config::parse(Path::new("/etc/tessera/tessera.toml"), MINIMAL).unwrap();
    assert!(c.http.listen.is_empty(), "off by default");
    let on = format!(
        "{MINIMAL}\n[http]\nlisten = [\"127.0.0.1:5080\"]\ntls_certificate = \"tls/http.pem\"\ntls_key = \"/k.pem\"\n"
    );
    let c = Config::parse(Path::new("/etc/tessera/tessera.toml"), &on).unwrap();
    assert_eq!(c.http.listen, ["127.0.0.1:5080".parse().unwrap()]);
    assert_eq!(
        c.http.tls,
        Some((
            PathBuf::from("/etc/tessera/tls/http.pem"),
            PathBuf::from("/k.pem")
        ))
    );
    let bad = format!(
        "{MINIMAL}\n[http]\nlisten = [\"localhost:80\"]\nallow = [\"10.0.0.0/8\", \"lan\"]\ntls_key = \"k.pem\"\n"
    );
    let line = |key: &str| bad.lines().position(|l| l.starts_with(key)).unwrap() + 1;
    let errs = errors(&bad);
    assert_eq!(
        errs,
        [
            format!(
                "t.toml:{}: http.listen: \"localhost:80\" is not an address:port (IPv6 as \"[::1]:5080\")",
                line("listen = [\"localhost")
            ),
            format!(
                "t.toml:{}: http.allow: \"lan\" is not a network (\"10.0.0.0/8\", \"::1/128\") or an address",
                line("allow")
            ),
            format!(
                "t.toml:{}: http.tls_certificate: needed with tls_key",
                line("tls_key")
            ),
        ]
    );
    let typo = errors(&format!("{MINIMAL}\n[http]\nlisen = []\n"));
    assert!(
        typo[0].contains("http.lisen: unknown field `lisen`"),
        "{typo:?}"
    );
}

#[test]
fn admin_section_is_off_by_default_and_its_problems_name_their_lines() {
    let c = Config::parse(Path::new("t.toml"), MINIMAL).unwrap();
    assert!(!c.admin.enabled);
    let text = format!(
        "{MINIMAL}\n[http]\nlisten = [\"127.0.0.1:0\"]\n\n[admin]\nenabled = true\n\
         helpdesk = \"helpdesk\"\nallow = [\"10.0.0.0/33\"]\nselfservice = [\"fly\"]\n\
         session_idle_timeout = 0\n"
    );
    let base = MINIMAL.lines().count();
    let errs = errors(&text);
    assert_eq!(
        errs,
        [
            format!(
                "t.toml:{}: admin.allow: \"10.0.0.0/33\" is not a network (\"10.0.0.0/8\", \
                 \"::1/128\") or an address",
                base + 8
            ),
            format!(
                "t.toml:{}: admin.selfservice: unknown self-service action \"fly\" (expected one \
                 of enrollTOTP, enrollHOTP, disable, enable, delete, reset, resync, \
                 setDescription, history)",
                base + 9
            ),
            format!(
                "t.toml:{}: admin.session_idle_timeout: must be at least 1 (seconds)",
                base + 10
            ),
        ]
    );
    let text = format!("{MINIMAL}\n[admin]\nenabled = true\nadmin = \"dave\"\n");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("admin.enabled: the admin API is served on the [http] listener"));
}
