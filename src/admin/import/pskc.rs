//! PSKC 1.0 (RFC 6030, "Portable Symmetric Key Container"): the XML file a token vendor ships
//! with its fobs. One token per `KeyPackage`: the serial from `DeviceInfo/SerialNo` (else the
//! `Key`'s `Id`), the type from the `Key`'s `Algorithm` URN (`…:hotp`, `…:totp`; `…:pin` keys,
//! a device's PIN, are skipped), the digits from `ResponseFormat@Length`, the hash from
//! `Suite` (default SHA-1), the counter, the time step (`TimeInterval`) and the secret.
//!
//! A secret is a `PlainValue` (base64) or an `EncryptedValue` (RFC 6030 §6: AES-128-CBC, the
//! IV in front of the ciphertext, PKCS#7 padding) under a pre-shared key (`EncryptionKey/
//! KeyName`, §6.1) or a key derived from a password with PBKDF2 (`DerivedKey`, §6.2). An
//! encrypted secret must carry a `ValueMAC`: HMAC-SHA1 or -SHA256 (`MACMethod`) over the IV
//! and ciphertext, keyed by the `MACKey` (itself encrypted with the same key; older drafts
//! without one MAC with the encryption key), checked in constant time before the secret is
//! decrypted. A wrong key or password shows as a MAC mismatch. The XML is read with
//! roxmltree, which refuses a DTD (no entity expansion), by local names, as privacyIDEA does.
//! Checked against RFC 6030's Figures 2, 5, 6 and 7 (python-pskc's copies, in `testdata/`)
//! here and python-pskc's own output in the end-to-end tests.

use aes::Aes128;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, KeyIvInit};
use roxmltree::{Document, Node};
use sha1::Sha1;
use sha2::Sha256;

use super::{Entry, EntryError, ImportKeys};
use crate::otp::hotp::hmac;
use crate::secret::Secret;
use crate::store::{HashAlgorithm, TokenKind};

const AES128_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes128-cbc";
const PBKDF2: &str = "http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#pbkdf2";

/// The largest PBKDF2 iteration count accepted (a file cannot make an import run for hours).
const MAX_ITERATIONS: u32 = 10_000_000;

/// The entries of a PSKC document.
pub fn parse(text: &str, keys: &ImportKeys) -> Result<Vec<Entry>, EntryError> {
    let file = |why: String| EntryError::new("file", why);
    let doc = Document::parse(text).map_err(|e| file(format!("not PSKC XML: {e}")))?;
    let root = doc.root_element();
    if root.tag_name().name() != "KeyContainer" {
        return Err(file(
            "not PSKC: the root element is not KeyContainer".into(),
        ));
    }
    if let Some(version) = root.attribute("Version")
        && version != "1.0"
    {
        return Err(file(format!("PSKC version {version:?} (1.0 is read)")));
    }
    let mut crypto = None;
    let mut entries = vec![];
    for (i, package) in elements(root, "KeyPackage").enumerate() {
        let at = format!("KeyPackage {}", i + 1);
        let Some(key) = child(package, "Key") else {
            return Err(EntryError::new(at, "no Key"));
        };
        let algorithm = key.attribute("Algorithm").unwrap_or("");
        let kind = match algorithm.rsplit([':', '#']).next().unwrap_or("") {
            "hotp" => TokenKind::Hotp,
            "totp" => TokenKind::Totp,
            // A device's PIN (RFC 6030 Figure 5): not a token.
            "pin" => continue,
            other => {
                return Err(EntryError::new(
                    at,
                    format!("algorithm {other:?} is not imported (hotp or totp)"),
                ));
            }
        };
        let serial = path(package, &["DeviceInfo", "SerialNo"])
            .and_then(text_of)
            .or_else(|| key.attribute("Id").map(str::to_string))
            .ok_or_else(|| EntryError::new(&at, "no SerialNo and no Key Id"))?;
        let at = format!("{at} (serial {serial})");
        let fail = |why: String| EntryError::new(&at, why);
        let secret = path(key, &["Data", "Secret"]).ok_or_else(|| fail("no secret".into()))?;
        let seed = match child(secret, "PlainValue") {
            Some(plain) => base64(plain).map_err(|e| fail(format!("PlainValue: {e}")))?,
            None => {
                if crypto.is_none() {
                    crypto = Some(Crypto::of(root, keys)?);
                }
                match &crypto {
                    Some(crypto) => crypto.open(secret).map_err(fail)?,
                    None => return Err(fail("no key to decrypt the secret".into())),
                }
            }
        };
        if seed.is_empty() {
            return Err(fail("the secret is empty".into()));
        }
        let Parameters {
            digits,
            algorithm,
            counter,
            time_step,
        } = parameters(key, kind, &at)?;
        entries.push(Entry {
            at: at.clone(),
            serial,
            kind,
            seed: Secret::new(seed),
            digits,
            counter,
            algorithm,
            time_step,
            public_id: None,
            user: None,
        });
    }
    Ok(entries)
}

/// What a `Key` says about its OTPs besides the secret.
struct Parameters {
    digits: u32,
    algorithm: HashAlgorithm,
    counter: u64,
    time_step: Option<u32>,
}

/// A `Key`'s response length, hash, counter and time step.
fn parameters(key: Node<'_, '_>, kind: TokenKind, at: &str) -> Result<Parameters, EntryError> {
    let fail = |why: String| EntryError::new(at, why);
    let format = path(key, &["AlgorithmParameters", "ResponseFormat"]);
    if let Some(encoding) = format.and_then(|f| f.attribute("Encoding"))
        && !encoding.eq_ignore_ascii_case("DECIMAL")
    {
        return Err(fail(format!(
            "response encoding {encoding:?} (DECIMAL is read)"
        )));
    }
    let digits = match format.and_then(|f| f.attribute("Length")) {
        None => 6,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|d| (6..=8).contains(d))
            .ok_or_else(|| fail(format!("response length {l:?} (6 to 8)")))?,
    };
    let algorithm = match path(key, &["AlgorithmParameters", "Suite"]).and_then(text_of) {
        None => HashAlgorithm::Sha1,
        Some(suite) => suite_hash(&suite).ok_or_else(|| fail(format!("suite {suite:?}")))?,
    };
    let number = |name: &str| -> Result<Option<u64>, EntryError> {
        match path(key, &["Data", name]) {
            None => Ok(None),
            Some(node) => child(node, "PlainValue")
                .and_then(text_of)
                .and_then(|t| t.parse::<u64>().ok())
                .map(Some)
                .ok_or_else(|| fail(format!("{name}: not a plain number"))),
        }
    };
    let counter = number("Counter")?.unwrap_or(0);
    let time_step = match (kind, number("TimeInterval")?) {
        (TokenKind::Totp, step) => Some(
            step.and_then(|s| u32::try_from(s).ok())
                .unwrap_or(30)
                .clamp(1, 3600),
        ),
        _ => None,
    };
    Ok(Parameters {
        digits,
        algorithm,
        counter,
        time_step,
    })
}

/// The hash a `Suite` names (`HMAC-SHA256`, `SHA256`, `sha-512` …).
fn suite_hash(suite: &str) -> Option<HashAlgorithm> {
    let s = suite.to_ascii_lowercase().replace('-', "");
    if s.contains("sha512") {
        Some(HashAlgorithm::Sha512)
    } else if s.contains("sha256") {
        Some(HashAlgorithm::Sha256)
    } else if s.contains("sha1") {
        Some(HashAlgorithm::Sha1)
    } else {
        None
    }
}

/// The file's decryption key and MAC: what opens an `EncryptedValue`.
struct Crypto {
    key: Secret,
    mac_key: Secret,
    mac: HashAlgorithm,
}

impl Crypto {
    /// From the container's `EncryptionKey` and `MACMethod`, with the key or password given.
    fn of(root: Node<'_, '_>, keys: &ImportKeys) -> Result<Self, EntryError> {
        let file = |why: String| EntryError::new("file", why);
        let encryption = child(root, "EncryptionKey")
            .ok_or_else(|| file("a secret is encrypted but there is no EncryptionKey".into()))?;
        let key = if let Some(derived) = child(encryption, "DerivedKey") {
            let password = keys.password.as_ref().ok_or_else(|| {
                file("the keys are encrypted with a password: give --password-file".into())
            })?;
            derive(derived, password)?
        } else {
            let name = child(encryption, "KeyName")
                .and_then(text_of)
                .unwrap_or_default();
            let psk = keys.psk.as_ref().ok_or_else(|| {
                file(format!(
                    "the keys are encrypted with a pre-shared key ({name:?}): give --psk-file"
                ))
            })?;
            if psk.len() != 16 {
                return Err(file("the pre-shared key is not 16 octets (AES-128)".into()));
            }
            psk.clone()
        };
        let method = child(root, "MACMethod");
        let mac = match method.and_then(|m| m.attribute("Algorithm")) {
            None => HashAlgorithm::Sha1,
            Some(a) if a.ends_with("#hmac-sha1") => HashAlgorithm::Sha1,
            Some(a) if a.ends_with("#hmac-sha256") => HashAlgorithm::Sha256,
            Some(a) if a.ends_with("#hmac-sha512") => HashAlgorithm::Sha512,
            Some(a) => return Err(file(format!("MAC algorithm {a:?} (hmac-sha1 or -sha256)"))),
        };
        // RFC 6030 §6.1.1: the MAC key travels encrypted; drafts before it MAC'd with the
        // encryption key itself.
        let mac_key = match method.and_then(|m| child(m, "MACKey")) {
            Some(mac_key) => {
                Secret::new(decrypt(&key, mac_key).map_err(|why| file(format!("MACKey: {why}")))?)
            }
            None => key.clone(),
        };
        Ok(Crypto { key, mac_key, mac })
    }

    /// An `EncryptedValue`'s plaintext, its `ValueMAC` checked first.
    fn open(&self, secret: Node<'_, '_>) -> Result<Vec<u8>, String> {
        let encrypted = child(secret, "EncryptedValue").ok_or("no PlainValue or EncryptedValue")?;
        let given = child(secret, "ValueMAC").ok_or("the encrypted secret has no ValueMAC")?;
        let given = base64(given).map_err(|e| format!("ValueMAC: {e}"))?;
        let cipher = cipher_value(encrypted)?;
        let computed = hmac(self.mac, self.mac_key.expose(), &cipher);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            computed.as_slice(),
            given.as_slice(),
        )) {
            return Err(
                "the MAC does not match: a wrong key or password, or an altered file".into(),
            );
        }
        decrypt(&self.key, encrypted)
    }
}

/// PBKDF2 (RFC 8018) as `DerivedKey/KeyDerivationMethod/PBKDF2-params` says: salt, iteration
/// count, key length 16, PRF HMAC-SHA1 (default) or HMAC-SHA256.
fn derive(derived: Node<'_, '_>, password: &Secret) -> Result<Secret, EntryError> {
    let file = |why: String| EntryError::new("file", why);
    let method = child(derived, "KeyDerivationMethod")
        .filter(|m| m.attribute("Algorithm") == Some(PBKDF2))
        .ok_or_else(|| file("the key derivation is not PBKDF2".into()))?;
    let params = child(method, "PBKDF2-params").ok_or_else(|| file("no PBKDF2-params".into()))?;
    let salt = path(params, &["Salt", "Specified"])
        .ok_or_else(|| file("PBKDF2: no Salt/Specified".into()))
        .and_then(|s| base64(s).map_err(|e| file(format!("PBKDF2 salt: {e}"))))?;
    let rounds = child(params, "IterationCount")
        .and_then(text_of)
        .and_then(|t| t.parse::<u32>().ok())
        .filter(|n| (1..=MAX_ITERATIONS).contains(n))
        .ok_or_else(|| file("PBKDF2: IterationCount is not 1 to 10000000".into()))?;
    if let Some(length) = child(params, "KeyLength").and_then(text_of)
        && length != "16"
    {
        return Err(file(format!("PBKDF2: KeyLength {length} (16 for AES-128)")));
    }
    let prf = child(params, "PRF").and_then(|p| p.attribute("Algorithm"));
    let mut key = [0u8; 16];
    let password = password.expose();
    match prf {
        None => pbkdf2::pbkdf2_hmac::<Sha1>(password, &salt, rounds, &mut key),
        Some(a) if a.ends_with("hmac-sha1") => {
            pbkdf2::pbkdf2_hmac::<Sha1>(password, &salt, rounds, &mut key)
        }
        Some(a) if a.ends_with("hmac-sha256") => {
            pbkdf2::pbkdf2_hmac::<Sha256>(password, &salt, rounds, &mut key)
        }
        Some(a) => return Err(file(format!("PBKDF2: PRF {a:?} (hmac-sha1 or -sha256)"))),
    }
    Ok(Secret::new(key.to_vec()))
}

/// An element holding `EncryptionMethod` and `CipherData/CipherValue`, decrypted.
fn decrypt(key: &Secret, encrypted: Node<'_, '_>) -> Result<Vec<u8>, String> {
    let method = child(encrypted, "EncryptionMethod").and_then(|m| m.attribute("Algorithm"));
    if method != Some(AES128_CBC) {
        return Err(format!(
            "encryption {:?} (aes128-cbc is read)",
            method.unwrap_or("none")
        ));
    }
    let cipher = cipher_value(encrypted)?;
    let (iv, body) = cipher
        .split_at_checked(16)
        .filter(|(_, b)| !b.is_empty() && b.len() % 16 == 0)
        .ok_or("the CipherValue is not an IV and whole AES blocks")?;
    cbc::Decryptor::<Aes128>::new_from_slices(key.expose(), iv)
        .map_err(|_| "the key is not 16 octets".to_string())?
        .decrypt_padded_vec_mut::<Pkcs7>(body)
        .map_err(|_| "cannot decrypt: a wrong key or password".to_string())
}

fn cipher_value(encrypted: Node<'_, '_>) -> Result<Vec<u8>, String> {
    let value = path(encrypted, &["CipherData", "CipherValue"]).ok_or("no CipherValue")?;
    base64(value).map_err(|e| format!("CipherValue: {e}"))
}

/// An element's text as base64 (whitespace, as files wrap it, ignored).
fn base64(node: Node<'_, '_>) -> Result<Vec<u8>, String> {
    let text: String = node
        .text()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(text).map_err(|_| "not base64".to_string())
}

fn text_of(node: Node<'_, '_>) -> Option<String> {
    node.text()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// The element children of `node` whose local name is `name`.
fn elements<'a, 'input: 'a>(
    node: Node<'a, 'input>,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'input>> + 'a {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

fn child<'a, 'input>(node: Node<'a, 'input>, name: &str) -> Option<Node<'a, 'input>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn path<'a, 'input>(node: Node<'a, 'input>, names: &[&str]) -> Option<Node<'a, 'input>> {
    names.iter().try_fold(node, |n, name| child(n, name))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Secret {
        Secret::new(crate::hex::decode(s).unwrap())
    }

    #[test]
    fn rfc6030_figure2_plain_key() {
        let entries = parse(
            include_str!("testdata/rfc6030-figure2.pskcxml"),
            &ImportKeys::default(),
        )
        .unwrap();
        assert_eq!(entries.len(), 1);
        // No SerialNo: the Key's Id.
        assert_eq!(entries[0].serial, "12345678");
        assert_eq!(entries[0].seed.expose(), b"1234");
        assert_eq!(entries[0].kind, TokenKind::Hotp);
        assert_eq!(entries[0].digits, 6);
    }

    #[test]
    fn rfc6030_figure5_skips_the_pin_key() {
        let entries = parse(
            include_str!("testdata/rfc6030-figure5.pskcxml"),
            &ImportKeys::default(),
        )
        .unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].serial, "987654321");
        assert_eq!(entries[0].seed.expose(), b"12345678901234567890");
        assert_eq!(entries[0].digits, 8);
        assert_eq!(entries[0].counter, 0);
    }

    #[test]
    fn rfc6030_figure6_pre_shared_key() {
        let text = include_str!("testdata/rfc6030-figure6.pskcxml");
        let keys = ImportKeys {
            psk: Some(hex("12345678901234567890123456789012")),
            password: None,
        };
        let entries = parse(text, &keys).unwrap();
        assert_eq!(entries[0].serial, "987654321");
        assert_eq!(entries[0].seed.expose(), b"12345678901234567890");
        assert_eq!(entries[0].digits, 8);
        // Without the key, or with another one: refused, the entry named.
        let none = parse(text, &ImportKeys::default()).unwrap_err();
        assert!(none.why.contains("--psk-file"), "{none}");
        let wrong = ImportKeys {
            psk: Some(hex("12345678901234567890123456789013")),
            password: None,
        };
        let wrong = parse(text, &wrong).unwrap_err();
        assert!(wrong.to_string().contains("MAC"), "{wrong}");
    }

    #[test]
    fn rfc6030_figure7_password() {
        let text = include_str!("testdata/rfc6030-figure7.pskcxml");
        let keys = ImportKeys {
            psk: None,
            password: Some(Secret::from("qwerty")),
        };
        let entries = parse(text, &keys).unwrap();
        assert_eq!(entries[0].serial, "987654321");
        assert_eq!(entries[0].seed.expose(), b"12345678901234567890");
        let wrong = ImportKeys {
            psk: None,
            password: Some(Secret::from("qwertz")),
        };
        // The MAC key does not decrypt (or, once in 256 passwords, its MAC fails).
        let wrong = parse(text, &wrong).unwrap_err();
        assert!(wrong.why.contains("wrong key or password"), "{wrong}");
    }

    #[test]
    fn a_dtd_is_refused() {
        let text = "<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY x \"y\">]><KeyContainer/>";
        assert!(parse(text, &ImportKeys::default()).is_err());
    }
}
