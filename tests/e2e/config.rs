//! The config as a sysadmin meets it: `check-config`, and `serve` refusing a bad file.

use crate::util::{Setup, tessera, write_config};

#[test]
fn check_config_accepts_the_shipped_default() {
    let out = tessera()
        .args([
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/conf/tessera.toml"),
            "check-config",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(": ok ("));
}

#[test]
fn bad_config_is_reported_with_file_line_and_key_and_serve_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup {
        clients: "[[client]]\naddress = \"10.0.0.300\"\nsecret = \"s\"\n".into(),
        policies: "[[policy]]\nname = \"p\"\nscope = \"authentication\"\naction = \"otppin=9\"\n"
            .into(),
        ..Setup::default()
    };
    let path = write_config(dir.path(), &setup);
    let shown = path.display().to_string();
    let check = tessera()
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        stderr.contains(&format!(
            "tessera: {shown}:9: client.address: \"10.0.0.300\" is not an IP address"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "tessera: {shown}:32: policy.action: policy \"p\": otppin:"
        )),
        "{stderr}"
    );

    let serve = tessera()
        .arg("--config")
        .arg(&path)
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(serve.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&serve.stderr),
        stderr,
        "serve reports the same problems"
    );
}

#[test]
fn unknown_key_gets_a_located_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &Setup::default());
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("[server]\n", "[server]\nreply_cache_secs = 3\n");
    std::fs::write(&path, text).unwrap();
    let check = tessera()
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(1));
    assert!(
        stderr.contains(":2: server.reply_cache_secs: unknown field `reply_cache_secs`"),
        "{stderr}"
    );
}

#[test]
fn serve_refuses_a_key_file_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &Setup::default());
    let key = dir.path().join("tessera.key");
    std::fs::write(&key, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let serve = tessera()
        .arg("--config")
        .arg(&path)
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(serve.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&serve.stderr);
    assert!(
        stderr.contains("has mode 0644; it must not be accessible to group or others"),
        "{stderr}"
    );
}

#[test]
fn a_new_key_file_is_private_and_seeds_are_not_stored_in_clear() {
    use std::os::unix::fs::PermissionsExt;
    let server = crate::util::Server::start();
    server
        .auth("alice", "wonderland", None)
        .expect("Access-Challenge");
    let key_path = server.dir.path().join("tessera.key");
    assert_eq!(
        std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let db = rusqlite::Connection::open(server.dir.path().join("tessera.db")).unwrap();
    let (serial, sealed): (String, Vec<u8>) = db
        .query_row("SELECT serial, seed FROM tokens", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(sealed.len(), 24 + 20 + 16, "nonce + seed + tag");
    let key = tessera::store::seal::SealKey::load_or_create(&key_path).unwrap();
    let seed = key.open(&sealed, &serial).unwrap();
    assert_eq!(seed.len(), 20);
    assert!(
        !sealed.windows(20).any(|w| w == seed.expose()),
        "the seed is not in the row in clear"
    );
    // It is the seed the code came from (the first challenge uses counter 0).
    assert_eq!(tessera::otp::hotp(seed.expose(), 0, 6), server.last_otp());
}

#[test]
fn broken_dictionary_line_is_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &Setup::default());
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("[server]\n", "[server]\ndictionary = \"dict/dictionary\"\n");
    std::fs::write(&path, text).unwrap();
    let dict = dir.path().join("dict");
    std::fs::create_dir(&dict).unwrap();
    std::fs::write(
        dict.join("dictionary"),
        "ATTRIBUTE User-Name 1 string\n$INCLUDE dictionary.acme\n",
    )
    .unwrap();
    std::fs::write(
        dict.join("dictionary.acme"),
        "VENDOR Acme 99999\nBEGIN-VENDOR Acme\nATTRIBUTE Acme-Group 1 strin\nEND-VENDOR Acme\n",
    )
    .unwrap();

    let check = tessera()
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(1), "{stderr}");
    let expected = format!(
        "tessera: {}:3: dictionary: unknown data type \"strin\"",
        dict.join("dictionary.acme").display()
    );
    assert!(stderr.contains(&expected), "{stderr}");

    let serve = tessera()
        .arg("--config")
        .arg(&path)
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(serve.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&serve.stderr), stderr);

    // Fixed, the same files load.
    std::fs::write(
        dict.join("dictionary.acme"),
        "VENDOR Acme 99999\nBEGIN-VENDOR Acme\nATTRIBUTE Acme-Group 1 string\nEND-VENDOR Acme\n",
    )
    .unwrap();
    let check = tessera()
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// Runs `tessera serve` and waits up to 10 s for it to exit: (exit code, stderr). A server
/// that starts (instead of refusing) is killed and reported as `None`.
fn serve_until_exit(config: &std::path::Path) -> (Option<i32>, String) {
    use std::io::Read;
    let mut child = tessera()
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    (code, stderr)
}

fn check_config(config: &std::path::Path) -> (Option<i32>, String) {
    let out = tessera()
        .arg("--config")
        .arg(config)
        .arg("check-config")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Issue 13: `mv tessera.key elsewhere; tessera serve` created a new key, said "ready", and no
/// existing token opened again. The store now records the key's fingerprint with the first
/// sealed seed; `serve` and `check-config` refuse a missing or different key file while seeds
/// are sealed, and create nothing.
#[test]
fn issue_13_a_missing_or_different_key_file_is_refused_while_seeds_are_sealed() {
    use std::os::unix::fs::PermissionsExt;
    let mut server = crate::util::Server::start();
    server
        .auth("alice", "wonderland", None)
        .expect("Access-Challenge");
    let dir = std::mem::replace(&mut server.dir, tempfile::tempdir().unwrap());
    drop(server);
    let config = dir.path().join("tessera.toml");
    let key = dir.path().join("tessera.key");
    let saved = dir.path().join("tessera.key.saved");
    std::fs::rename(&key, &saved).unwrap();

    let (code, stderr) = check_config(&config);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("is missing, but"), "{stderr}");
    let (code, stderr) = serve_until_exit(&config);
    assert_eq!(code, Some(2), "serve must refuse:\n{stderr}");
    assert!(stderr.contains("holds sealed token seeds"), "{stderr}");
    assert!(!stderr.contains("tessera ready"), "{stderr}");
    assert!(!key.exists(), "no new key file was created");

    // Another key, private as required: refused too.
    std::fs::write(&key, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, stderr) = check_config(&config);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("is not the key that sealed"), "{stderr}");
    let (code, stderr) = serve_until_exit(&config);
    assert_eq!(code, Some(2), "serve must refuse:\n{stderr}");
    assert!(stderr.contains("is not the key that sealed"), "{stderr}");

    // The right key back: all is well, and alice's token opens.
    std::fs::rename(&saved, &key).unwrap();
    let (code, stderr) = check_config(&config);
    assert_eq!(code, Some(0), "{stderr}");
    let server = crate::util::Server::start_in(dir, &config);
    let first = server.auth("alice", "wonderland", None);
    first.expect("Access-Challenge");
    server
        .auth("alice", &server.last_otp(), Some(&first.state()))
        .expect("Access-Accept");
}

/// Issue 13: `check-config` passed a key file others can read, which `serve` refuses, so a
/// unit's `ExecStartPre=tessera check-config` missed it.
#[test]
fn issue_13_check_config_refuses_a_key_file_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &Setup::default());
    let key = dir.path().join("tessera.key");
    std::fs::write(&key, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, stderr) = check_config(&path);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("has mode 0644; it must not be accessible to group or others"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("tessera.db").exists(),
        "check-config creates nothing"
    );
}

/// Issue 23 (9): PostgreSQL's `password_file` at 0644 was read and used. It follows the key
/// file's rule now: `check-config` and `serve` refuse it, naming the file, its mode and the fix,
/// before any connection is tried (nothing listens on port 1).
#[test]
fn issue_23_a_postgres_password_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("pg.password");
    std::fs::write(&password, "tessera-demo\n").unwrap();
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o644)).unwrap();
    let setup = Setup {
        store: format!(
            "backend = \"postgresql\"\nurl = \"postgresql://tessera@127.0.0.1:1/tessera?sslmode=disable\"\n\
             password_file = \"{}\"\nkey_file = \"tessera.key\"\n",
            password.display()
        ),
        ..Setup::default()
    };
    let path = write_config(dir.path(), &setup);
    let expected = format!(
        "password_file {0} has mode 0644; it must not be accessible to group or others (chmod 600 {0})",
        password.display()
    );
    let (code, stderr) = check_config(&path);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(!stderr.contains("tessera-demo"), "{stderr}");
    let (code, stderr) = serve_until_exit(&path);
    assert_eq!(code, Some(2), "serve must refuse:\n{stderr}");
    assert!(stderr.contains(&expected), "{stderr}");
}

/// Issue 13: the database (PIN hashes, audit) was created mode 0644; only the key file was
/// private. Now the database, its -wal and -shm are 0600, and a directory tessera creates for
/// them 0700.
#[test]
fn issue_13_the_database_and_its_directory_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &Setup::default());
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("path = \"tessera.db\"", "path = \"data/tessera.db\"")
        .replace(
            "key_file = \"tessera.key\"",
            "key_file = \"keys/tessera.key\"",
        );
    std::fs::write(&path, text).unwrap();
    let server = crate::util::Server::start_in(dir, &path);
    server
        .auth("alice", "wonderland", None)
        .expect("Access-Challenge");
    let mode = |p: &str| {
        std::fs::metadata(server.dir.path().join(p))
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("data"), 0o700, "data/");
    assert_eq!(mode("keys"), 0o700, "keys/");
    for file in [
        "data/tessera.db",
        "data/tessera.db-wal",
        "data/tessera.db-shm",
        "keys/tessera.key",
    ] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
}

/// Issue 13: an unsupported `PROXY` scheme (`ftp://`) passed the checks and the proxy was
/// silently skipped: the gateway was then reached directly. It is a config error now, with its
/// line, and without the URL's credentials.
#[test]
fn issue_13_an_unsupported_proxy_scheme_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup {
        providers:
            "[provider.sms.gw]\nclass = \"HttpSMSProvider\"\nURL = \"http://127.0.0.1:9/send\"\n\
                    PROXY = \"ftp://puser:proxy-pw@127.0.0.1:21\"\n\n\
                    [provider.email.spool]\nclass = \"file\"\npath = \"spool.log\"\n"
                .into(),
        ..Setup::default()
    };
    let path = write_config(dir.path(), &setup);
    let (code, stderr) = check_config(&path);
    assert_eq!(code, Some(1), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("provider.sms.gw"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        line.contains("PROXY: scheme \"ftp\" is not supported"),
        "{line}"
    );
    let location = line.split(": provider.sms.gw").next().unwrap();
    assert!(
        location
            .rsplit(':')
            .next()
            .unwrap()
            .parse::<usize>()
            .is_ok(),
        "file:line: {line}"
    );
    assert!(!stderr.contains("proxy-pw"), "{stderr}");
    let (code, stderr) = serve_until_exit(&path);
    assert_eq!(code, Some(1), "serve refuses it too: {stderr}");
}

/// Issue 23 (9): a secret written as a number (`secret = 987654321012`) came back in the
/// error, as serde's type error echoes the value: `client.secret: invalid type: integer
/// `987654321012``. Every secret key is refused now by its kind alone. (One config per key:
/// a broken `[[client]]` stops the check before the providers are read.)
#[test]
fn issue_23_a_secret_given_as_a_number_is_not_echoed() {
    let secrets = [
        "client.secret",
        "directory.corp.bind_password",
        "provider.sms.gw.PASSWORD",
        "provider.sms.mail.mailpassword",
        "provider.sms.smsc.password",
        "provider.sms.modem.PIN",
        "provider.email.smtp.SMTP_PASSWORD",
    ];
    for (n, wrong) in secrets.into_iter().enumerate() {
        let number = format!("98765432101{n}");
        // `wrong` gets the number, every other secret a string.
        let value = |key: &str| {
            if key == wrong {
                number.clone()
            } else {
                "\"s3cr3t\"".to_string()
            }
        };
        let setup = Setup {
            clients: format!(
                "[[client]]\naddress = \"127.0.0.1\"\nsecret = {}\n",
                value("client.secret")
            ),
            directories: format!(
                "{}\n[directory.corp]\ntype = \"ldap\"\nurl = \"ldap://127.0.0.1:1\"\n\
                 base_dn = \"dc=example,dc=org\"\nbind_dn = \"cn=reader,dc=example,dc=org\"\n\
                 bind_password = {}\n",
                Setup::default().directories,
                value("directory.corp.bind_password")
            ),
            providers: format!(
                "{}\n[provider.sms.gw]\nclass = \"HttpSMSProvider\"\n\
                 URL = \"https://sms.example/send\"\nPASSWORD = {}\n\n[provider.sms.mail]\n\
                 class = \"SmtpSMSProvider\"\nmailserver = \"smtp.example\"\n\
                 mailsender = \"otp@example.org\"\nmailto = \"<phone>@sms.example\"\n\
                 mailpassword = {}\n\n[provider.sms.smsc]\nclass = \"SMPPSMSProvider\"\n\
                 server = \"127.0.0.1\"\nsystem_id = \"tessera\"\npassword = {}\n\n\
                 [provider.sms.modem]\nclass = \"DeviceSMSProvider\"\nDEVICE = \"/dev/null\"\n\
                 PIN = {}\n\n[provider.email.smtp]\nclass = \"SMTPEmailProvider\"\n\
                 SMTP_SERVER = \"smtp.example\"\nEMAIL_FROM = \"otp@example.org\"\n\
                 SMTP_PASSWORD = {}\n",
                Setup::default().providers,
                value("provider.sms.gw.PASSWORD"),
                value("provider.sms.mail.mailpassword"),
                value("provider.sms.smsc.password"),
                value("provider.sms.modem.PIN"),
                value("provider.email.smtp.SMTP_PASSWORD"),
            ),
            ..Setup::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = write_config(dir.path(), &setup);
        let (code, stderr) = check_config(&path);
        assert_eq!(code, Some(1), "{wrong}: {stderr}");
        assert!(
            stderr.contains(&format!(
                ": {wrong}: expected a string in quotes, found an integer (not shown: it is a secret)"
            )),
            "{wrong}:\n{stderr}"
        );
        assert!(!stderr.contains(&number), "{wrong} echoed:\n{stderr}");
    }
}
