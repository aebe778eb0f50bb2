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

#[test]
fn missing_dictionary_file_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &Setup::default());
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("[server]\n", "[server]\ndictionary = \"nope/dictionary\"\n");
    std::fs::write(&path, text).unwrap();
    let check = tessera()
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("server.dictionary: cannot read") && stderr.contains("nope/dictionary"),
        "{stderr}"
    );
}
