//! The Debian package: built by `packaging/build-deb.sh` from the binary under test, unpacked
//! into a scratch root with `dpkg -x`, and checked — files, modes, conffiles, and that the
//! installed binary accepts the installed default config.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario (build the .deb, install it into a root, check every file, start it) read as a story"
)]
fn deb_installs_files_with_safe_modes_and_a_valid_config() {
    let work = tempfile::tempdir().unwrap();
    let build = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/build-deb.sh"
    ))
    .args(["--binary", env!("CARGO_BIN_EXE_tessera"), "--out"])
    .arg(work.path().join("out"))
    .output()
    .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let package = String::from_utf8_lossy(&build.stdout).trim().to_string();
    assert!(package.ends_with(".deb"), "{package}");

    let field = |name: &str| {
        let out = Command::new("dpkg-deb")
            .args(["-f", &package, name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(field("Package"), "tessera");
    assert_eq!(field("Version"), env!("CARGO_PKG_VERSION"));
    let control = work.path().join("control");
    assert!(
        Command::new("dpkg-deb")
            .arg("-e")
            .arg(&package)
            .arg(&control)
            .status()
            .unwrap()
            .success()
    );
    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap();
    assert_eq!(
        conffiles.lines().collect::<Vec<_>>(),
        ["/etc/tessera/tessera.toml", "/etc/tessera/users.toml"]
    );
    assert_eq!(mode(&control.join("postinst")), 0o755);

    let root = work.path().join("root");
    assert!(
        Command::new("dpkg")
            .arg("-x")
            .arg(&package)
            .arg(&root)
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(mode(&root.join("usr/bin/tessera")), 0o755);
    assert_eq!(
        mode(&root.join("lib/systemd/system/tessera.service")),
        0o644
    );
    assert_eq!(mode(&root.join("etc/tessera")), 0o750);
    assert_eq!(
        mode(&root.join("etc/tessera/tessera.toml")),
        0o640,
        "the config holds client secrets"
    );
    assert_eq!(mode(&root.join("etc/tessera/users.toml")), 0o640);
    assert!(root.join("usr/share/doc/tessera/README.md").exists());
    // The README's links into docs/ resolve in the installed copy too.
    assert!(
        root.join("usr/share/doc/tessera/docs/src/configuration.md")
            .exists()
    );

    let unit = std::fs::read_to_string(root.join("lib/systemd/system/tessera.service")).unwrap();
    for line in [
        "User=tessera",
        "StateDirectory=tessera",
        "ConfigurationDirectory=tessera",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.lines().any(|l| l == line), "unit lacks {line}");
    }
    // Issue 23: without LimitNOFILE the service gets 1,024 descriptors, and idle RadSec
    // connections took them all. The limit must hold the default RadSec connections and the
    // descriptors tessera keeps in reserve for the store, the directory and the providers.
    let defaults = tessera::radius::settings::ServerSettings::default();
    let limit: usize = unit
        .lines()
        .find_map(|l| l.strip_prefix("LimitNOFILE="))
        .expect("the unit sets LimitNOFILE")
        .parse()
        .expect("LimitNOFILE is one number (soft and hard alike)");
    assert!(
        limit >= 2 * (defaults.tls_max_connections + defaults.descriptor_reserve),
        "LimitNOFILE={limit} is too low for {} RadSec connections and a reserve of {}",
        defaults.tls_max_connections,
        defaults.descriptor_reserve
    );

    // Issue 13: the packaged config names the packaged dictionaries, so a vendor file added
    // there (as the README says) is read; without the key the built-in copy was used and the
    // file ignored. Checked in the scratch root: the absolute paths point into it, and a
    // policy uses an attribute only the added file defines.
    let config = std::fs::read_to_string(root.join("etc/tessera/tessera.toml")).unwrap();
    assert!(
        config
            .lines()
            .any(|l| l == "dictionary = \"/usr/share/tessera/dictionaries/dictionary\""),
        "{config}"
    );
    let dictionaries = root.join("usr/share/tessera/dictionaries");
    std::fs::write(
        dictionaries.join("dictionary.acme"),
        "VENDOR Acme 99999\nBEGIN-VENDOR Acme\nATTRIBUTE Acme-Group 1 string\nEND-VENDOR Acme\n",
    )
    .unwrap();
    let top = dictionaries.join("dictionary");
    let mut text = std::fs::read_to_string(&top).unwrap();
    text.push_str("$INCLUDE dictionary.acme\n");
    std::fs::write(&top, text).unwrap();
    let scratch_config = config.replace(
        "\"/usr/share/tessera/",
        &format!("\"{}/usr/share/tessera/", root.display()),
    ) + "\n[[policy]]\nname = \"acme\"\nscope = \"authentication\"\nreply = [\"Acme-Group = staff\"]\n";
    std::fs::write(root.join("etc/tessera/tessera.toml"), scratch_config).unwrap();

    let check = Command::new(root.join("usr/bin/tessera"))
        .arg("--config")
        .arg(root.join("etc/tessera/tessera.toml"))
        .arg("check-config")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}
