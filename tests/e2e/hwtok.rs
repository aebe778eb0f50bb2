//! Hardware tokens (issue 29): seed files made by the real tools — PSKC by python-pskc
//! (plain, pre-shared key, password; a wrong MAC, a wrong password), an OATH CSV with HOTP and
//! TOTP rows, the YubiKey personalization tool's CSV — imported with `tessera token import`,
//! handed out with `tessera token assign`, and used over RADIUS with codes computed from the
//! seeds; YubiKey OTPs made by PyPI's `yubiotp` acting as the YubiKey.

use std::path::Path;
use std::process::Command;

use tessera::otp::{hotp_with, totp_step};
use tessera::store::HashAlgorithm;

use crate::util::{Server, Setup};

/// RFC 4226's test seed, and RFC 6238's 32-octet one.
const SEED20: &[u8] = b"12345678901234567890";
const SEED32: &[u8] = b"12345678901234567890123456789012";

fn setup(otppin: &str) -> Setup {
    Setup {
        policies: format!(
            "[[policy]]\nname = \"pin\"\nscope = \"authentication\"\naction = \"otppin={otppin}\"\n"
        ),
        ..Setup::default()
    }
}

/// Runs a Python script with arguments; its standard output.
fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes a PSKC file with python-pskc: one key, `protection` none, `psk:HEX` or
/// `password:TEXT`.
const MAKE_PSKC: &str = r#"
import sys, pskc
path, serial, secret, algorithm, digits, extra, protection = sys.argv[1:8]
p = pskc.PSKC()
kwargs = dict(serial=serial, secret=bytes.fromhex(secret),
              algorithm='urn:ietf:params:xml:ns:keyprov:pskc:' + algorithm,
              response_length=int(digits))
if algorithm == 'hotp':
    kwargs['counter'] = int(extra)
else:
    kwargs['time_interval'] = int(extra)
    kwargs['algorithm_suite'] = 'HMAC-SHA256'
p.add_key(**kwargs)
if protection.startswith('psk:'):
    p.encryption.setup_preshared_key(key=bytes.fromhex(protection[4:]))
    p.mac.setup()
elif protection.startswith('password:'):
    p.encryption.setup_pbkdf2(protection[9:], iterations=2000)
    p.mac.setup(algorithm='hmac-sha256')
p.write(path)
"#;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write(path: &Path, text: &str) -> String {
    std::fs::write(path, text).expect("write");
    path.display().to_string()
}

fn token_count(server: &Server) -> usize {
    let (_, out, _) = server.cli(&["token", "list", "--json"], "");
    let list: serde_json::Value = serde_json::from_str(&out).expect("json");
    list.as_array().map_or(0, Vec::len)
}

/// The TOTP code of `seed` now, for a token of `step` seconds.
fn totp_now(algorithm: HashAlgorithm, seed: &[u8], step: u64, digits: u32) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    hotp_with(
        algorithm,
        seed,
        totp_step(i64::try_from(now).expect("time"), step),
        digits,
    )
}

/// Three PSKC files made by python-pskc in the server's directory: plain HOTP (counter 3),
/// HOTP of 8 digits under a pre-shared key, TOTP (SHA-256, 60 s) under a password. Returns
/// their paths and the PSK and password files'.
struct PskcFiles {
    plain: String,
    psk: String,
    psk_file: String,
    password: String,
    password_file: String,
}

const PSK: &str = "00112233445566778899aabbccddeeff";

fn pskc_files(dir: &Path) -> PskcFiles {
    let path = |name: &str| dir.join(name).display().to_string();
    let files = PskcFiles {
        plain: path("plain.pskc"),
        psk: path("psk.pskc"),
        psk_file: write(&dir.join("psk.hex"), &format!("{PSK}\n")),
        password: path("pw.pskc"),
        password_file: write(&dir.join("pw.txt"), "s3cret pass\n"),
    };
    python(
        MAKE_PSKC,
        &[
            &files.plain,
            "HW-PLAIN",
            &hex(SEED20),
            "hotp",
            "6",
            "3",
            "none",
        ],
    );
    python(
        MAKE_PSKC,
        &[
            &files.psk,
            "HW-PSK",
            &hex(SEED20),
            "hotp",
            "8",
            "0",
            &format!("psk:{PSK}"),
        ],
    );
    python(
        MAKE_PSKC,
        &[
            &files.password,
            "HW-PW",
            &hex(SEED32),
            "totp",
            "6",
            "60",
            "password:s3cret pass",
        ],
    );
    files
}

#[test]
fn pskc_wrong_password_key_or_mac_imports_nothing() {
    let server = Server::start_with(&setup("2"));
    let dir = server.dir.path();
    let files = pskc_files(dir);
    let wrong_pw = write(&dir.join("wrong.txt"), "s3cret pasS\n");
    // A wrong password: refused, naming the cause, nothing stored.
    let (code, out, err) = server.cli(
        &[
            "token",
            "import",
            &files.password,
            "--password-file",
            &wrong_pw,
        ],
        "",
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("wrong key or password"), "{err}");
    assert!(err.contains("nothing imported"), "{err}");
    // No key given for an encrypted file.
    let (code, _, err) = server.cli(&["token", "import", &files.psk], "");
    assert_eq!(code, 1);
    assert!(err.contains("--psk-file"), "{err}");
    // A wrong MAC (the value's MAC altered by one character).
    let text = std::fs::read_to_string(&files.psk).expect("read");
    let start = text.find("ValueMAC>").expect("ValueMAC") + "ValueMAC>".len();
    let mut tampered = text.clone();
    let first = &text[start..=start];
    tampered.replace_range(start..=start, if first == "A" { "B" } else { "A" });
    let tampered_path = write(&dir.join("tampered.pskc"), &tampered);
    let (code, _, err) = server.cli(
        &[
            "token",
            "import",
            &tampered_path,
            "--psk-file",
            &files.psk_file,
        ],
        "",
    );
    assert_eq!(code, 1);
    assert!(err.contains("KeyPackage 1 (serial HW-PSK)"), "{err}");
    assert!(err.contains("MAC does not match"), "{err}");
    assert_eq!(token_count(&server), 0);
    let (_, audit, _) = server.cli(&["audit", "--json"], "");
    // Each refusal is audited, naming the file, the entry and why.
    assert!(
        audit.contains("tampered.pskc: KeyPackage 1 (serial HW-PSK): the MAC does not match"),
        "{audit}"
    );
}

#[test]
fn pskc_files_from_python_pskc_import_and_log_in() {
    let server = Server::start_with(&setup("2"));
    let files = pskc_files(server.dir.path());
    for (file, flags) in [
        (&files.plain, vec![]),
        (&files.psk, vec!["--psk-file", files.psk_file.as_str()]),
        (
            &files.password,
            vec!["--password-file", files.password_file.as_str()],
        ),
    ] {
        let mut args = vec!["token", "import", file.as_str()];
        args.extend(flags);
        let (code, out, err) = server.cli(&args, "");
        assert_eq!(code, 0, "{file}: {err}");
        assert!(out.contains("1 tokens imported"), "{out}");
        assert!(!out.contains(&hex(SEED20)) && !err.contains(&hex(SEED20)));
    }
    assert_eq!(token_count(&server), 3);
    // Re-importing a serial that exists: refused unless --force.
    let (code, _, err) = server.cli(&["token", "import", &files.plain], "");
    assert_eq!(code, 1);
    assert!(err.contains("HW-PLAIN exists"), "{err}");
    let (code, _, err) = server.cli(&["token", "import", &files.plain, "--force"], "");
    assert_eq!(code, 0, "{err}");

    // Unassigned, the fob logs nobody in; handed to alice, it does.
    let code3 = hotp_with(HashAlgorithm::Sha1, SEED20, 3, 6);
    server.auth("alice", &code3, None).expect("Access-Reject");
    let (code, out, err) = server.cli(&["token", "assign", "HW-PLAIN", "alice"], "");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("assigned to alice@local"), "{out}");
    server.auth("alice", &code3, None).expect("Access-Accept");
    server.auth("alice", &code3, None).expect("Access-Reject");
    // The PSK fob (8 digits) to bob, the password one (TOTP, SHA-256, 60 s) to carol.
    server.cli(&["token", "assign", "HW-PSK", "bob"], "");
    let code0 = hotp_with(HashAlgorithm::Sha1, SEED20, 0, 8);
    server.auth("bob", &code0, None).expect("Access-Accept");
    server.cli(&["token", "assign", "HW-PW", "carol"], "");
    let now = totp_now(HashAlgorithm::Sha256, SEED32, 60, 6);
    server.auth("carol", &now, None).expect("Access-Accept");
    // Taken back, it logs nobody in again.
    let (code, _, _) = server.cli(&["token", "unassign", "HW-PSK"], "");
    assert_eq!(code, 0);
    let code1 = hotp_with(HashAlgorithm::Sha1, SEED20, 1, 8);
    server.auth("bob", &code1, None).expect("Access-Reject");

    // The audit: who imported how many tokens from which file; never a seed.
    let (_, audit, _) = server.cli(&["audit", "--json"], "");
    assert!(audit.contains("token import"), "{audit}");
    assert!(audit.contains("1 tokens (0 assigned) from"), "{audit}");
    assert!(audit.contains("psk.pskc (pskc)"), "{audit}");
    assert!(audit.contains("token assign"), "{audit}");
    for secret in [hex(SEED20), hex(SEED32), PSK.to_string()] {
        assert!(!audit.contains(&secret) && !server.log_text().contains(&secret));
    }
}

#[test]
fn oath_csv_with_hotp_and_totp_rows() {
    let server = Server::start_with(&setup("1"));
    let dir = server.dir.path();
    let csv = write(
        &dir.join("tokens.csv"),
        &format!(
            "# serial, key, type, digits, counter|step, hash, user\n\
             CSV-HOTP, {}, hotp, 6, 10, alice\n\
             CSV-TOTP, {}, totp, 8, 60, sha256, bob\n\
             CSV-SPARE, {}, hotp, 6\n",
            hex(SEED20),
            hex(SEED32),
            hex(SEED20)
        ),
    );
    // One bad entry (line 3: not hex) imports nothing.
    let bad = write(
        &dir.join("bad.csv"),
        &format!(
            "B1, {}, hotp\nB2, {}, hotp\nB3, 31x2, totp\n",
            hex(SEED20),
            hex(SEED20)
        ),
    );
    let (code, _, err) = server.cli(&["token", "import", &bad], "");
    assert_eq!(code, 1);
    assert!(err.contains("line 3: B3: the key is not hex"), "{err}");
    assert_eq!(token_count(&server), 0);
    // An unknown user: nothing either.
    let stranger = write(
        &dir.join("stranger.csv"),
        &format!("S1, {}, hotp, 6, 0, mallory\n", hex(SEED20)),
    );
    let (code, _, err) = server.cli(&["token", "import", &stranger], "");
    assert_eq!(code, 1);
    assert!(err.contains("line 1"), "{err}");
    assert_eq!(token_count(&server), 0);

    let (code, out, err) = server.cli(&["token", "import", &csv], "");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("3 tokens imported") && out.contains("(2 assigned)"),
        "{out}"
    );
    // alice: password followed by the HOTP code at counter 10 (otppin=1).
    let code10 = hotp_with(HashAlgorithm::Sha1, SEED20, 10, 6);
    server
        .auth("alice", &format!("wonderland{code10}"), None)
        .expect("Access-Accept");
    // bob: TOTP, SHA-256, 8 digits, 60-second steps.
    let now = totp_now(HashAlgorithm::Sha256, SEED32, 60, 8);
    server
        .auth("bob", &format!("builder{now}"), None)
        .expect("Access-Accept");
    let (_, show, _) = server.cli(&["token", "show", "CSV-TOTP", "--json"], "");
    let show: serde_json::Value = serde_json::from_str(&show).expect("json");
    assert_eq!(show["algorithm"], "sha256");
    assert_eq!(show["time_step"], 60);
    assert_eq!(show["user"], "bob");
}

/// An OTP of the YubiKey `(key, uid, public id)` with usage counter `session` and press
/// `counter`, made by yubiotp.
fn yubikey_otp(key: &str, uid: &str, public_id: &str, session: u16, counter: u8) -> String {
    python(
        "import sys\n\
         from binascii import unhexlify as u\n\
         from yubiotp.otp import OTP, encode_otp\n\
         key, uid, pub, session, counter = sys.argv[1:6]\n\
         otp = OTP(u(uid), int(session), 0x1234, int(counter), 0x5678)\n\
         print(encode_otp(otp, u(key), pub.encode()).decode())\n",
        &[
            key,
            uid,
            public_id,
            &session.to_string(),
            &counter.to_string(),
        ],
    )
    .trim()
    .to_string()
}

const KEY_A: &str = "ecde18dbe76fbd0c33330f1c354871db";
const UID_A: &str = "8792ebfe26cc";
const PUB_A: &str = "vvccccfbhhgb";
const KEY_B: &str = "000102030405060708090a0b0c0d0e0f";
const UID_B: &str = "0a0b0c0d0e0f";
const PUB_B: &str = "vvccccdhhgkt";

#[test]
fn yubikey_otps_from_yubiotp() {
    let mut server = Server::start_with(&setup("1"));
    let dir = server.dir.path();
    // The personalization tool's log for key A; key B enrolled on the command line.
    let csv = write(
        &dir.join("yubikeys.csv"),
        &format!("Yubico OTP,12/11/2026 11:10,1,{PUB_A},{UID_A},{KEY_A},,,0,0,0,0,0,0,0,0,0,0\n"),
    );
    let (code, out, err) = server.cli(&["token", "import", "--format", "yubikey", &csv], "");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("UBAM{PUB_A}")), "{out}");
    server.cli(&["token", "assign", &format!("UBAM{PUB_A}"), "alice"], "");
    let (code, out, err) = server.cli(
        &[
            "token",
            "enroll",
            "--type",
            "yubikey",
            "--user",
            "bob",
            "--public-id",
            PUB_B,
            "--private-id",
            UID_B,
            "--seed-file",
            "-",
            "--json",
        ],
        KEY_B,
    );
    assert_eq!(code, 0, "{out}{err}");
    let enrolled: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(enrolled["serial"], format!("UBAM{PUB_B}"));
    assert_eq!(enrolled["public_id"], PUB_B);
    assert!(!out.contains(KEY_B) && !out.contains(UID_B), "{out}");

    // Password and the 44 characters in one field.
    let first = yubikey_otp(KEY_A, UID_A, PUB_A, 5, 3);
    assert_eq!(first.len(), 44);
    server
        .auth("alice", &format!("wonderland{first}"), None)
        .expect("Access-Accept");
    // The same OTP again; an older one (lower counter); a wrong password.
    server
        .auth("alice", &format!("wonderland{first}"), None)
        .expect("Access-Reject");
    let older = yubikey_otp(KEY_A, UID_A, PUB_A, 5, 2);
    server
        .auth("alice", &format!("wonderland{older}"), None)
        .expect("Access-Reject");
    let next = yubikey_otp(KEY_A, UID_A, PUB_A, 5, 4);
    server
        .auth("alice", &format!("wonderlend{next}"), None)
        .expect("Access-Reject");
    // Another key's OTP (bob's public id) is not alice's, though bob's own works.
    let of_b = yubikey_otp(KEY_B, UID_B, PUB_B, 1, 0);
    server
        .auth("alice", &format!("wonderland{of_b}"), None)
        .expect("Access-Reject");
    server
        .auth("bob", &format!("builder{of_b}"), None)
        .expect("Access-Accept");
    // Key A's private id under key B's public id: refused (the public id is bound).
    let forged = yubikey_otp(KEY_A, UID_A, PUB_B, 9, 0);
    server
        .auth("alice", &format!("wonderland{forged}"), None)
        .expect("Access-Reject");

    // A new session after a replug: a higher usage counter, press 0.
    let replugged = yubikey_otp(KEY_A, UID_A, PUB_A, 6, 0);
    server
        .auth("alice", &format!("wonderland{replugged}"), None)
        .expect("Access-Accept");
    // kill -9 right after the Accept: the counter was committed before it left.
    server.restart();
    server
        .auth("alice", &format!("wonderland{replugged}"), None)
        .expect("Access-Reject");
    let later = yubikey_otp(KEY_A, UID_A, PUB_A, 6, 1);
    server
        .auth("alice", &format!("wonderland{later}"), None)
        .expect("Access-Accept");
    for secret in [KEY_A, UID_A, KEY_B, UID_B] {
        assert!(!server.log_text().contains(secret), "{secret} in the log");
    }
}

#[test]
fn yubikey_with_otppin_2_alone_0_with_token_pin_and_append_mode() {
    let server = Server::start_with(&setup("2"));
    let dir = server.dir.path();
    let csv = write(&dir.join("y.csv"), &format!("{PUB_A}, {UID_A}, {KEY_A}\n"));
    let (code, _, err) = server.cli(&["token", "import", "--format", "yubikey", &csv], "");
    assert_eq!(code, 0, "{err}");
    server.cli(&["token", "assign", &format!("UBAM{PUB_A}"), "alice"], "");
    let otp = yubikey_otp(KEY_A, UID_A, PUB_A, 1, 0);
    server.auth("alice", &otp, None).expect("Access-Accept");
    server.auth("alice", &otp, None).expect("Access-Reject");

    let server = Server::start_with(&setup("0"));
    let dir = server.dir.path();
    let csv = write(&dir.join("y.csv"), &format!("{PUB_A}, {UID_A}, {KEY_A}\n"));
    server.cli(&["token", "import", "--format", "yubikey", &csv], "");
    let serial = format!("UBAM{PUB_A}");
    server.cli(&["token", "assign", &serial, "alice"], "");
    let (code, _, err) = server.cli(&["token", "set-pin", &serial], "4321\n");
    assert_eq!(code, 0, "{err}");
    let otp = yubikey_otp(KEY_A, UID_A, PUB_A, 1, 0);
    server
        .auth("alice", &format!("4321{otp}"), None)
        .expect("Access-Accept");
    // The directory password is not the token PIN under otppin=0.
    let next = yubikey_otp(KEY_A, UID_A, PUB_A, 1, 1);
    server
        .auth("alice", &format!("wonderland{next}"), None)
        .expect("Access-Reject");

    // login_mode=append (a NAS that cannot show a challenge): password and OTP in one field.
    let server = Server::start_with(&setup("1, login_mode=append"));
    let dir = server.dir.path();
    let csv = write(&dir.join("y.csv"), &format!("{PUB_A}, {UID_A}, {KEY_A}\n"));
    server.cli(&["token", "import", "--format", "yubikey", &csv], "");
    server.cli(&["token", "assign", &format!("UBAM{PUB_A}"), "alice"], "");
    server
        .auth("alice", "wonderland", None)
        .expect("Access-Reject");
    let otp = yubikey_otp(KEY_A, UID_A, PUB_A, 2, 0);
    server
        .auth("alice", &format!("wonderland{otp}"), None)
        .expect("Access-Accept");
    server
        .auth("alice", &format!("wonderland{otp}"), None)
        .expect("Access-Reject");
}

/// The admin API's upload: an operator who may enroll imports an OATH CSV and hands a fob
/// out; the helpdesk may do neither; a bad file imports nothing.
#[test]
fn the_admin_api_imports_and_assigns() {
    use crate::admin_api::{Client, setup as admin_setup};
    use serde_json::json;

    let server = Server::start_with(&admin_setup("", ""));
    let csv = format!(
        "API-1, {}, hotp, 6, 0, carol\nAPI-2, {}, hotp, 6, 0\nAPI-3, {}, hotp, 6, 0\n",
        hex(SEED20),
        hex(SEED20),
        hex(SEED20)
    );
    let mut alice = Client::login(&server, "alice", "wonderland");
    let page = alice.call("GET", "/ui/users/local/bob", None);
    assert!(!page.body.contains("/assign"), "helpdesk: {}", page.body);
    let refused = alice.call(
        "POST",
        "/api/v1/tokens/import",
        Some(json!({"file": csv, "file_name": "fobs.csv"})),
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    let mut dave = Client::login(&server, "dave", "davepw");
    let bad = dave.call(
        "POST",
        "/api/v1/tokens/import",
        Some(json!({"file": format!("{csv}API-4, nothex, hotp\n"), "file_name": "bad.csv"})),
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("line 4: API-4"), "{}", bad.body);
    assert_eq!(
        token_count(&server),
        2,
        "only alice's and dave's SMS tokens"
    );
    let done = dave.call(
        "POST",
        "/api/v1/tokens/import",
        Some(json!({"file": csv, "file_name": "fobs.csv", "format": "csv"})),
    );
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.json()["serials"], json!(["API-1", "API-2", "API-3"]));
    assert_eq!(done.json()["assigned"], 1);
    assert!(!done.body.contains(&hex(SEED20)));
    let given = dave.call(
        "POST",
        "/api/v1/tokens/API-3/assign",
        Some(json!({"user": "alice"})),
    );
    assert_eq!(given.status, 200, "{}", given.body);
    assert_eq!(given.json()["user"], "alice");
    // Taken by alice now: assigning it again is refused.
    let again = dave.call(
        "POST",
        "/api/v1/tokens/API-3/assign",
        Some(json!({"user": "bob"})),
    );
    assert_eq!(again.status, 400, "{}", again.body);
    page_hands_a_fob_out(&server, &mut dave);
    page_imports(&server, &mut dave, &mut alice);
    // Both log in over RADIUS with their fob's code after the password (otppin=1).
    let code0 = hotp_with(HashAlgorithm::Sha1, SEED20, 0, 6);
    server
        .auth("carol", &format!("carolpw{code0}"), None)
        .expect("Access-Accept");
    server
        .auth("bob", &format!("builder{code0}"), None)
        .expect("Access-Accept");
    let audit = dave.call("GET", "/api/v1/audit?limit=50", None);
    assert!(
        audit.body.contains("3 tokens (1 assigned) from fobs.csv"),
        "{}",
        audit.body
    );
}

/// The helpdesk page's form on bob's screen hands API-2 out (admins only).
fn page_hands_a_fob_out(server: &Server, dave: &mut crate::admin_api::Client) {
    use serde_json::json;

    // The helpdesk page's form on bob's screen hands API-2 out.
    let page = dave.call("GET", "/ui/users/local/bob", None);
    assert!(
        page.body.contains("/ui/users/local/bob/assign"),
        "{}",
        page.body
    );
    let session = dave.cookie.clone();
    let posted = dave.call(
        "POST",
        "/ui/users/local/bob/assign",
        Some(json!({"serial": "API-2"})),
    );
    // The answer's cookie is the flash message, not a new session.
    dave.cookie = session;
    assert_eq!(posted.status, 303, "{}", posted.body);
    let location = posted
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("location"))
        .map(|(_, v)| v.as_str());
    assert_eq!(location, Some("/ui/users/local/bob"));
    let (_, show, _) = server.cli(&["token", "show", "API-2", "--json"], "");
    let show: serde_json::Value = serde_json::from_str(&show).expect("json");
    assert_eq!(show["user"], "bob", "{show}");
}

/// The page's import screen: admins paste a file, the helpdesk is refused.
fn page_imports(
    server: &Server,
    dave: &mut crate::admin_api::Client,
    alice: &mut crate::admin_api::Client,
) {
    use serde_json::json;

    assert_eq!(alice.call("GET", "/ui/import", None).status, 403);
    let screen = dave.call("GET", "/ui/import", None);
    assert_eq!(screen.status, 200, "{}", screen.body);
    assert!(screen.body.contains("name=\"file\""), "{}", screen.body);
    let session = dave.cookie.clone();
    let posted = dave.call(
        "POST",
        "/ui/import",
        Some(json!({"file": format!("PAGE-1, {}, hotp\n", hex(SEED20)), "file_name": "page.csv"})),
    );
    dave.cookie = session;
    assert_eq!(posted.status, 303, "{}", posted.body);
    let (code, _, err) = server.cli(&["token", "show", "PAGE-1"], "");
    assert_eq!(code, 0, "{err}");
}
