//! Dictionary tests: the shipped files, every kind of bad line with its file:line, values of
//! every type, vendor encoding checked octet by octet, and log text.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::load::{BUILTIN, load_with};
use super::*;
use crate::radius::codec::Attribute;

/// Loads in-memory files; the top one is `dict`.
fn load_mem(files: &[(&str, &str)]) -> Result<Dictionary, Vec<DictionaryError>> {
    let files: HashMap<PathBuf, String> = files
        .iter()
        .map(|(n, t)| (Path::new("mem").join(n), t.to_string()))
        .collect();
    load_with(Path::new("mem/dict"), &mut |p: &Path| {
        files
            .get(p)
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    })
}

/// The one error of a file that should fail, as text.
fn one_error(text: &str) -> String {
    let errors = load_mem(&[("dict", text)]).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors[0].to_string()
}

const SMALL: &str = "\
# a comment
ATTRIBUTE  User-Name      1   string
ATTRIBUTE  User-Password  2   string  encrypt=1
ATTRIBUTE  NAS-IP-Address 4   ipaddr
ATTRIBUTE  Service-Type   6   integer   # trailing comment
ATTRIBUTE  Reply-Message  18  string  concat
ATTRIBUTE  Class          25  octets
ATTRIBUTE  Tunnel-Type    64  integer has_tag
ATTRIBUTE  Tunnel-Private-Group-Id 81 string has_tag
VALUE  Service-Type  Login-User   1
VALUE  Service-Type  Framed-User  2
VALUE  Tunnel-Type   VLAN         13
VENDOR Acme 0x1234
BEGIN-VENDOR Acme
ATTRIBUTE  Acme-Group  1  string
ATTRIBUTE  Acme-Level  2  integer
ATTRIBUTE  Acme-Mac    3  ether
END-VENDOR Acme
VALUE Acme-Level High 3
";

fn small() -> Dictionary {
    load_mem(&[("dict", SMALL)]).unwrap()
}

#[test]
fn parses_attributes_values_and_vendors() {
    let d = small();
    assert_eq!(d.len(), 11);
    let st = d.attribute("service-type").unwrap();
    assert_eq!(
        (st.number, st.data_type, st.vendor),
        (6, DataType::Integer, None)
    );
    assert_eq!(st.value_number("FRAMED-USER"), Some(2));
    assert_eq!(st.value_name(1), Some("Login-User"));
    let group = d.attribute("Acme-Group").unwrap();
    assert_eq!((group.vendor, group.number), (Some(0x1234), 1));
    assert_eq!(d.vendor_name(0x1234), Some("Acme"));
    assert_eq!(d.name_of(AttributeType(18)), Some("Reply-Message"));
    assert!(d.attribute("User-Password").unwrap().is_secret());
    assert!(d.attribute("Reply-Message").unwrap().concat);
    assert!(d.attribute("Tunnel-Type").unwrap().has_tag);
}

#[test]
fn includes_are_relative_and_loaded_once() {
    let d = load_mem(&[
        (
            "dict",
            "$INCLUDE sub/a\n$INCLUDE ./sub/a\n$INCLUDE- missing\n",
        ),
        ("sub/a", "ATTRIBUTE A 1 string\n$INCLUDE b\n"),
        ("sub/b", "ATTRIBUTE B 2 octets\n$INCLUDE ../dict\n"),
    ])
    .unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(d.attribute("b").unwrap().data_type, DataType::Octets);
}

#[test]
fn old_style_vendor_field_is_understood() {
    let d = load_mem(&[(
        "dict",
        "VENDOR Cisco 9\nATTRIBUTE Cisco-AVPair 1 string Cisco\n",
    )])
    .unwrap();
    assert_eq!(d.attribute("Cisco-AVPair").unwrap().vendor, Some(9));
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "a table of cases, one bad line each, with the error it must give"
)]
fn every_bad_line_kind_is_reported_with_file_and_line() {
    let cases: &[(&str, &str)] = &[
        (
            "\n\nATRIBUTE X 1 string\n",
            "mem/dict:3: unknown keyword \"ATRIBUTE\"",
        ),
        (
            "ATTRIBUTE X 1\n",
            "mem/dict:1: ATTRIBUTE needs a name, a number, a type and optional flags, found 2 field(s)",
        ),
        (
            "ATTRIBUTE X 256 string\n",
            "mem/dict:1: attribute number \"256\" is not a number in 1..=255",
        ),
        (
            "ATTRIBUTE X 0 string\n",
            "mem/dict:1: attribute number \"0\" is not a number in 1..=255",
        ),
        (
            "ATTRIBUTE X 26.9.1 string\n",
            "mem/dict:1: attribute number \"26.9.1\"",
        ),
        (
            "ATTRIBUTE X 1 strng\n",
            "mem/dict:1: unknown data type \"strng\"",
        ),
        (
            "ATTRIBUTE X 1 tlv\n",
            "mem/dict:1: unknown data type \"tlv\"",
        ),
        (
            "ATTRIBUTE X 1 string secret\n",
            "mem/dict:1: unknown flag \"secret\"",
        ),
        (
            "ATTRIBUTE X 1 string encrypt=9\n",
            "mem/dict:1: unknown flag \"encrypt=9\"",
        ),
        (
            "ATTRIBUTE X 1 ipaddr has_tag\n",
            "mem/dict:1: has_tag is allowed on string and integer attributes only, not ipaddr",
        ),
        (
            "ATTRIBUTE X 1 string\nATTRIBUTE x 2 string\n",
            "mem/dict:2: attribute \"x\" is already defined at mem/dict:1",
        ),
        (
            "ATTRIBUTE Other 26 octets\n",
            "mem/dict:1: attribute number 26 is Vendor-Specific",
        ),
        (
            "VALUE X A 1\n",
            "mem/dict:1: VALUE for \"X\", which is not defined",
        ),
        (
            "ATTRIBUTE X 1 string\nVALUE X A 1\n",
            "mem/dict:2: VALUE for \"X\", which is string, not a number type",
        ),
        (
            "ATTRIBUTE X 1 byte\nVALUE X A 256\n",
            "mem/dict:2: value \"256\" is not a number in 0..=255",
        ),
        (
            "ATTRIBUTE X 1 integer\nVALUE X A 1\nVALUE X A 2\n",
            "mem/dict:3: VALUE A of X is already defined as 1",
        ),
        (
            "ATTRIBUTE X 1 integer\nVALUE X A\n",
            "mem/dict:2: VALUE needs an attribute, a name and a number, found 2 field(s)",
        ),
        (
            "VENDOR V\n",
            "mem/dict:1: VENDOR needs a name and a number, found 1 field(s)",
        ),
        ("VENDOR V 0\n", "mem/dict:1: vendor number \"0\""),
        (
            "VENDOR V 9 format=2,1\n",
            "mem/dict:1: vendor format \"format=2,1\" is not supported",
        ),
        (
            "VENDOR V 9\nVENDOR v 10\n",
            "mem/dict:2: vendor \"v\" is already defined at mem/dict:1",
        ),
        ("BEGIN-VENDOR Nope\n", "mem/dict:1: unknown vendor \"Nope\""),
        (
            "VENDOR V 9\nVENDOR W 10\nBEGIN-VENDOR V\nBEGIN-VENDOR W\nEND-VENDOR V\n",
            "mem/dict:4: BEGIN-VENDOR W inside BEGIN-VENDOR V",
        ),
        (
            "VENDOR V 9\nEND-VENDOR V\n",
            "mem/dict:2: END-VENDOR V does not close any BEGIN-VENDOR",
        ),
        (
            "VENDOR V 9\nBEGIN-VENDOR V\nATTRIBUTE A 1 string\n",
            "mem/dict:2: BEGIN-VENDOR V is not closed by END-VENDOR",
        ),
        (
            "$INCLUDE\n",
            "mem/dict:1: $INCLUDE needs one file name, found 0 field(s)",
        ),
        (
            "\n$INCLUDE nothere\n",
            "mem/dict:2: cannot read included file mem/nothere",
        ),
    ];
    for (text, expected) in cases {
        let got = one_error(text);
        assert!(
            got.starts_with(expected),
            "for {text:?}:\n got {got}\nwant {expected}"
        );
    }
}

#[test]
fn errors_in_included_files_name_that_file_and_all_are_reported() {
    let errors = load_mem(&[
        ("dict", "ATTRIBUTE A 1 string\n$INCLUDE vendor\nBOGUS\n"),
        ("vendor", "# header\nATTRIBUTE B 2 number\n"),
    ])
    .unwrap_err();
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 2, "{text:?}");
    assert!(text[0].starts_with("mem/vendor:2: unknown data type \"number\""));
    assert!(text[1].starts_with("mem/dict:3: unknown keyword \"BOGUS\""));
}

#[test]
fn missing_top_file_is_a_read_error() {
    let errors = Dictionary::load(Path::new("/nonexistent/tessera/dictionary")).unwrap_err();
    assert!(matches!(&errors[..], [DictionaryError::Read { .. }]));
}

#[test]
fn shipped_dictionary_loads_from_disk_and_builtin_matches_it() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dictionaries");
    let disk = Dictionary::load(&dir.join("dictionary")).unwrap();
    let builtin = Dictionary::builtin().unwrap();
    assert_eq!(disk.len(), builtin.len());
    for name in [
        "User-Name",
        "Acct-Status-Type",
        "Tunnel-Private-Group-Id",
        "Event-Timestamp",
        "Framed-IPv6-Prefix",
        "EAP-Message",
        "Message-Authenticator",
        "Cisco-AVPair",
        "MS-MPPE-Send-Key",
        "Fortinet-Group-Name",
        "Fortinet-Access-Profile",
        "Juniper-Local-User-Name",
        "PaloAlto-Admin-Role",
        "PaloAlto-User-Group",
    ] {
        assert_eq!(disk.attribute(name), builtin.attribute(name), "{name}");
        assert!(disk.attribute(name).is_some(), "{name} missing");
    }
    // Every file of the directory is built in, and nothing else.
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut built_in: Vec<String> = BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
    built_in.sort();
    assert_eq!(on_disk, built_in);
}

fn vsa(d: &Dictionary, name: &str, value: &str) -> Vec<u8> {
    let attrs = d.encode(name, value).unwrap();
    assert_eq!(attrs.len(), 1);
    assert_eq!(attrs[0].typ, AttributeType::VENDOR_SPECIFIC);
    attrs[0].value.clone()
}

#[test]
fn vendor_attributes_are_wrapped_byte_exact() {
    let d = Dictionary::builtin().unwrap();
    // RFC 2865 §5.26: Vendor-Id 12356 = 0x00003044, vendor type 1, vendor length 2 + 9.
    assert_eq!(
        vsa(&d, "Fortinet-Group-Name", "vpn-users"),
        [
            0x00, 0x00, 0x30, 0x44, 0x01, 0x0b, b'v', b'p', b'n', b'-', b'u', b's', b'e', b'r',
            b's'
        ]
    );
    // Cisco (9), type 1, "shell:priv-lvl=15" (17 octets) → vendor length 19.
    let mut expected = vec![0, 0, 0, 9, 1, 19];
    expected.extend_from_slice(b"shell:priv-lvl=15");
    assert_eq!(vsa(&d, "Cisco-AVPair", "shell:priv-lvl=15"), expected);
    // Palo Alto 25461 = 0x6375.
    assert_eq!(
        vsa(&d, "PaloAlto-Admin-Role", "superuser")[..6],
        [0x00, 0x00, 0x63, 0x75, 0x01, 11]
    );
    // Microsoft 311 = 0x137, an integer by VALUE name.
    assert_eq!(
        vsa(&d, "MS-MPPE-Encryption-Policy", "Encryption-Required"),
        [0x00, 0x00, 0x01, 0x37, 0x07, 0x06, 0, 0, 0, 2]
    );
    // The whole attribute on the wire: type 26, length 2 + 6 + 3.
    let attrs = d.encode("Juniper-Local-User-Name", "ops").unwrap();
    let packet = crate::radius::codec::Packet {
        code: crate::radius::codec::Code::ACCESS_ACCEPT,
        identifier: 0,
        authenticator: [0; 16],
        attributes: attrs,
    };
    let wire = packet.encode_raw().unwrap();
    assert_eq!(
        wire[20..],
        [26, 11, 0x00, 0x00, 0x0a, 0x4c, 1, 5, b'o', b'p', b's']
    );
}

#[test]
fn standard_values_of_each_type() {
    let d = Dictionary::builtin().unwrap();
    let one = |name: &str, value: &str| {
        let attrs = d.encode(name, value).unwrap();
        assert_eq!(attrs.len(), 1, "{name}");
        (attrs[0].typ.0, attrs[0].value.clone())
    };
    assert_eq!(one("Filter-Id", "staff"), (11, b"staff".to_vec()));
    assert_eq!(one("Service-Type", "Framed-User"), (6, vec![0, 0, 0, 2]));
    assert_eq!(one("service-type", "framed-user"), (6, vec![0, 0, 0, 2]));
    assert_eq!(one("Session-Timeout", "3600"), (27, vec![0, 0, 0x0e, 0x10]));
    assert_eq!(one("Session-Timeout", "0x10"), (27, vec![0, 0, 0, 0x10]));
    assert_eq!(one("Framed-IP-Address", "10.1.2.3"), (8, vec![10, 1, 2, 3]));
    assert_eq!(one("Class", "0x0102ff"), (25, vec![1, 2, 0xff]));
    assert_eq!(one("Class", "staff"), (25, b"staff".to_vec()));
    assert_eq!(one("Event-Timestamp", "1"), (55, vec![0, 0, 0, 1]));
    let mut v6 = vec![0u8; 16];
    v6[15] = 1;
    assert_eq!(one("NAS-IPv6-Address", "::1"), (95, v6));
    assert_eq!(
        one("Framed-IPv6-Prefix", "2001:db8::/32"),
        (97, vec![0, 32, 0x20, 0x01, 0x0d, 0xb8])
    );
    assert_eq!(one("Framed-IPv6-Prefix", "::/0"), (97, vec![0, 0]));
    assert_eq!(
        one("Framed-Interface-Id", "0:0:0:1"),
        (96, vec![0, 0, 0, 0, 0, 0, 0, 1])
    );
    // RFC 2868 §3.1: Tunnel-Type with tag 1 and value VLAN (13).
    assert_eq!(one("Tunnel-Type:1", "VLAN"), (64, vec![1, 0, 0, 13]));
    assert_eq!(one("Tunnel-Type", "VLAN"), (64, vec![0, 0, 0, 13]));
    assert_eq!(
        one("Tunnel-Private-Group-Id:1", "100"),
        (81, vec![1, b'1', b'0', b'0'])
    );
    assert_eq!(one("Tunnel-Private-Group-Id", "100"), (81, b"100".to_vec()));
}

#[test]
fn small_types_and_ether() {
    let d = load_mem(&[(
        "dict",
        "ATTRIBUTE B 1 byte\nATTRIBUTE S 2 short\nATTRIBUTE L 3 integer64\nATTRIBUTE E 4 ether\n",
    )])
    .unwrap();
    assert_eq!(d.encode("B", "255").unwrap()[0].value, [255]);
    assert_eq!(d.encode("S", "258").unwrap()[0].value, [1, 2]);
    assert_eq!(
        d.encode("L", "4294967296").unwrap()[0].value,
        [0, 0, 0, 1, 0, 0, 0, 0]
    );
    assert_eq!(
        d.encode("E", "00-11-22-aa-bb-CC").unwrap()[0].value,
        [0, 0x11, 0x22, 0xaa, 0xbb, 0xcc]
    );
    assert!(matches!(
        d.encode("B", "256"),
        Err(DictionaryError::BadValue { .. })
    ));
    assert!(matches!(
        d.encode("E", "00:11:22:33:44"),
        Err(DictionaryError::BadValue { .. })
    ));
}

#[test]
fn long_values_split_only_where_allowed() {
    let d = Dictionary::builtin().unwrap();
    let long = "x".repeat(600);
    let parts = d.encode("Reply-Message", &long).unwrap();
    assert_eq!(
        parts.iter().map(|a| a.value.len()).collect::<Vec<_>>(),
        [253, 253, 94]
    );
    assert!(parts.iter().all(|a| a.typ == AttributeType::REPLY_MESSAGE));
    assert!(matches!(
        d.encode("Filter-Id", &long),
        Err(DictionaryError::TooLong {
            len: 600,
            max: 253,
            ..
        })
    ));
    // A vendor attribute holds 253 - 6 octets.
    assert!(d.encode("Cisco-AVPair", &"a".repeat(247)).is_ok());
    assert!(matches!(
        d.encode("Cisco-AVPair", &"a".repeat(248)),
        Err(DictionaryError::TooLong {
            len: 248,
            max: 247,
            ..
        })
    ));
}

#[test]
fn bad_values_are_errors_that_name_the_attribute() {
    let d = Dictionary::builtin().unwrap();
    let err = |name: &str, value: &str| d.encode(name, value).unwrap_err().to_string();
    assert_eq!(
        err("No-Such-Attribute", "1"),
        "unknown attribute \"No-Such-Attribute\""
    );
    assert!(
        err("Service-Type", "Framed-Usr")
            .starts_with("Service-Type: \"Framed-Usr\" is not a valid integer value")
    );
    assert!(err("Session-Timeout", "4294967296").contains("out of range"));
    assert!(err("Framed-IP-Address", "10.0.0.256").contains("not an IPv4 address"));
    assert!(err("Class", "0x123").contains("not hex"));
    assert!(err("Filter-Id", "").contains("empty"));
    assert!(err("Framed-IPv6-Prefix", "2001:db8::1/32").contains("past the prefix length"));
    assert!(err("Tunnel-Type:32", "VLAN").contains("1..=31"));
    assert!(err("Filter-Id:1", "x").contains("takes no tag"));
    assert!(err("Tunnel-Type", "16777216").contains("24 bits"));
    assert_eq!(
        err("Tunnel-Password", "secret"),
        "Tunnel-Password is encrypted (encrypt=2); tessera does not send it"
    );
    assert!(err("MS-MPPE-Recv-Key", "0x00").contains("encrypted"));
}

#[test]
fn describe_names_attributes_and_hides_secrets() {
    let d = Dictionary::builtin().unwrap();
    let show = |name: &str, value: &str| d.describe(&d.encode(name, value).unwrap()[0]);
    assert_eq!(show("Service-Type", "2"), "Service-Type = Framed-User");
    assert_eq!(show("Filter-Id", "staff"), "Filter-Id = \"staff\"");
    assert_eq!(show("Class", "0xff00"), "Class = 0xff00");
    assert_eq!(
        show("Framed-IP-Address", "10.0.0.1"),
        "Framed-IP-Address = 10.0.0.1"
    );
    assert_eq!(
        show("Framed-IPv6-Prefix", "2001:db8::/32"),
        "Framed-IPv6-Prefix = 2001:db8::/32"
    );
    assert_eq!(show("Tunnel-Type:1", "VLAN"), "Tunnel-Type:1 = VLAN");
    assert_eq!(
        show("Tunnel-Private-Group-Id:2", "100"),
        "Tunnel-Private-Group-Id:2 = \"100\""
    );
    assert_eq!(
        show("Fortinet-Group-Name", "vpn"),
        "Fortinet-Group-Name = \"vpn\""
    );
    assert_eq!(
        show("Framed-Interface-Id", "0:0:0:1"),
        "Framed-Interface-Id = 0:0:0:1"
    );
    let password = Attribute {
        typ: AttributeType::USER_PASSWORD,
        value: b"hunter2hunter2xx".to_vec(),
    };
    assert_eq!(d.describe(&password), "User-Password = ***");
    let chap = Attribute {
        typ: AttributeType::CHAP_PASSWORD,
        value: vec![1; 17],
    };
    assert_eq!(d.describe(&chap), "CHAP-Password = ***");
    // Even with an empty dictionary, passwords stay hidden.
    assert_eq!(
        Dictionary::default().describe(&password),
        "User-Password = ***"
    );
    // An encrypted vendor attribute, as a NAS might send it.
    let mut mppe = vec![0, 0, 1, 0x37, 16, 6];
    mppe.extend_from_slice(b"keyy");
    let mppe = Attribute {
        typ: AttributeType::VENDOR_SPECIFIC,
        value: mppe,
    };
    assert_eq!(d.describe(&mppe), "MS-MPPE-Send-Key = ***");
}

#[test]
fn describe_survives_malformed_values() {
    let d = Dictionary::builtin().unwrap();
    let attr = |typ: u8, value: &[u8]| {
        d.describe(&Attribute {
            typ: AttributeType(typ),
            value: value.to_vec(),
        })
    };
    assert_eq!(attr(6, &[1, 2]), "Service-Type = 0x0102");
    assert_eq!(attr(4, &[1, 2, 3]), "NAS-IP-Address = 0x010203");
    assert_eq!(attr(1, &[0xff, 0xfe]), "User-Name = 0xfffe");
    assert_eq!(attr(1, b"a\"b\n"), "User-Name = \"a\\\"b\\n\"");
    assert_eq!(attr(200, &[7]), "Attr-200 = 0x07");
    assert_eq!(attr(97, &[0, 200, 1]), "Framed-IPv6-Prefix = 0x00c801");
    // Vendor-Specific that is not laid out as RFC 2865 §5.26 suggests.
    assert_eq!(
        attr(26, &[0, 0, 0, 9, 1, 9, b'x']),
        "Vendor-Specific = 0x00000009010978"
    );
    assert_eq!(attr(26, &[0, 0]), "Vendor-Specific = 0x0000");
    assert_eq!(
        attr(26, &[0, 0, 0, 9, 1, 3, b'x', 99, 3, b'y']),
        "Cisco-AVPair = \"x\", Cisco-Attr-99 = 0x79"
    );
    assert_eq!(attr(26, &[0, 0, 0, 1, 1, 2]), "Vendor-1-Attr-1 = 0x");
    for len in 0..12 {
        for fill in [0u8, 1, 0x1f, 0xff] {
            for typ in [1u8, 4, 6, 26, 64, 81, 95, 96, 97] {
                let _ = attr(typ, &vec![fill; len]);
            }
        }
    }
}

#[test]
fn assignments_as_freeradius_writes_them() {
    let d = Dictionary::builtin().unwrap();
    let value = |text: &str| {
        let attrs = d.encode_assignment(text).unwrap();
        (attrs[0].typ.0, attrs[0].value.clone())
    };
    assert_eq!(value("Filter-Id = staff"), (11, b"staff".to_vec()));
    assert_eq!(value("Filter-Id=\"a b\""), (11, b"a b".to_vec()));
    assert_eq!(
        value(r#"Reply-Message = "say \"hi\" \\o/""#).1,
        br#"say "hi" \o/"#.to_vec()
    );
    assert_eq!(value("Tunnel-Type:1 = VLAN"), (64, vec![1, 0, 0, 13]));
    assert_eq!(value("Class = a=b"), (25, b"a=b".to_vec()));
    for bad in ["Filter-Id", "Filter-Id = \"a\"b\"", "Filter-Id = \"a\\x\""] {
        assert!(
            matches!(
                d.encode_assignment(bad),
                Err(DictionaryError::NotAnAssignment { .. })
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        d.encode_assignment("Nope = 1"),
        Err(DictionaryError::UnknownAttribute { .. })
    ));
}
