//! The RADIUS wire format's vocabulary, below the codec (`codec.rs`) that reads and writes it:
//! packet codes ([`Code`]) and attribute types ([`AttributeType`]) with their RFC names, and
//! why a datagram is refused ([`DecodeError`]) or a reply cannot be encoded ([`EncodeError`]).
//! The codec's no-panic lints hold here too.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation
)]

use std::fmt;

/// A RADIUS packet code (RFC 2865 §3). Unknown codes stay representable.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code(pub u8);

impl Code {
    /// RFC 2865 §4.1
    pub const ACCESS_REQUEST: Code = Code(1);
    /// RFC 2865 §4.2
    pub const ACCESS_ACCEPT: Code = Code(2);
    /// RFC 2865 §4.3
    pub const ACCESS_REJECT: Code = Code(3);
    /// RFC 2866 §4.1
    pub const ACCOUNTING_REQUEST: Code = Code(4);
    /// RFC 2866 §4.2
    pub const ACCOUNTING_RESPONSE: Code = Code(5);
    /// RFC 2865 §4.4
    pub const ACCESS_CHALLENGE: Code = Code(11);
    /// RFC 5997 §3
    pub const STATUS_SERVER: Code = Code(12);
    /// RFC 5176 §3
    pub const DISCONNECT_REQUEST: Code = Code(40);
    /// RFC 5176 §3
    pub const COA_REQUEST: Code = Code(43);
    /// Disconnect-ACK (RFC 5176 §2.1).
    pub const DISCONNECT_ACK: Code = Code(41);
    /// Disconnect-NAK (RFC 5176 §2.1).
    pub const DISCONNECT_NAK: Code = Code(42);

    /// The RFC name of a known code.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Code::ACCESS_REQUEST => "Access-Request",
            Code::ACCESS_ACCEPT => "Access-Accept",
            Code::ACCESS_REJECT => "Access-Reject",
            Code::ACCOUNTING_REQUEST => "Accounting-Request",
            Code::ACCOUNTING_RESPONSE => "Accounting-Response",
            Code::ACCESS_CHALLENGE => "Access-Challenge",
            Code::STATUS_SERVER => "Status-Server",
            Code::DISCONNECT_REQUEST => "Disconnect-Request",
            Code::COA_REQUEST => "CoA-Request",
            Code::DISCONNECT_ACK => "Disconnect-ACK",
            Code::DISCONNECT_NAK => "Disconnect-NAK",
            _ => return None,
        })
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Code({})", self.0),
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A RADIUS attribute type (RFC 2865 §5). Unknown types pass through untouched.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttributeType(pub u8);

impl AttributeType {
    /// RFC 2865 §5.1
    pub const USER_NAME: AttributeType = AttributeType(1);
    /// RFC 2865 §5.2
    pub const USER_PASSWORD: AttributeType = AttributeType(2);
    /// RFC 2865 §5.3
    pub const CHAP_PASSWORD: AttributeType = AttributeType(3);
    /// RFC 2865 §5.4
    pub const NAS_IP_ADDRESS: AttributeType = AttributeType(4);
    /// RFC 2865 §5.18
    pub const REPLY_MESSAGE: AttributeType = AttributeType(18);
    /// RFC 2865 §5.24
    pub const STATE: AttributeType = AttributeType(24);
    /// RFC 2865 §5.25
    pub const CLASS: AttributeType = AttributeType(25);
    /// RFC 2865 §5.26
    pub const VENDOR_SPECIFIC: AttributeType = AttributeType(26);
    /// RFC 2865 §5.27
    pub const SESSION_TIMEOUT: AttributeType = AttributeType(27);
    /// RFC 2865 §5.31
    pub const CALLING_STATION_ID: AttributeType = AttributeType(31);
    /// RFC 2865 §5.32
    pub const NAS_IDENTIFIER: AttributeType = AttributeType(32);
    /// RFC 2865 §5.33
    pub const PROXY_STATE: AttributeType = AttributeType(33);
    /// RFC 3579 §3.1
    pub const EAP_MESSAGE: AttributeType = AttributeType(79);
    /// RFC 3579 §3.2
    pub const MESSAGE_AUTHENTICATOR: AttributeType = AttributeType(80);
    /// RFC 3162 §2.1
    pub const NAS_IPV6_ADDRESS: AttributeType = AttributeType(95);

    /// The RFC name of the attributes the server itself handles.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            AttributeType::USER_NAME => "User-Name",
            AttributeType::USER_PASSWORD => "User-Password",
            AttributeType::CHAP_PASSWORD => "CHAP-Password",
            AttributeType::NAS_IP_ADDRESS => "NAS-IP-Address",
            AttributeType::REPLY_MESSAGE => "Reply-Message",
            AttributeType::STATE => "State",
            AttributeType::CLASS => "Class",
            AttributeType::VENDOR_SPECIFIC => "Vendor-Specific",
            AttributeType::SESSION_TIMEOUT => "Session-Timeout",
            AttributeType::CALLING_STATION_ID => "Calling-Station-Id",
            AttributeType::NAS_IDENTIFIER => "NAS-Identifier",
            AttributeType::PROXY_STATE => "Proxy-State",
            AttributeType::EAP_MESSAGE => "EAP-Message",
            AttributeType::MESSAGE_AUTHENTICATOR => "Message-Authenticator",
            AttributeType::NAS_IPV6_ADDRESS => "NAS-IPv6-Address",
            _ => return None,
        })
    }
}

impl fmt::Debug for AttributeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Attr-{}", self.0),
        }
    }
}

/// Why a datagram is not a RADIUS packet we accept. Each variant names the numbers involved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// RFC 2865 §3: fewer octets than the header.
    #[error("datagram of {len} octets is shorter than the 20-octet header")]
    TooShort {
        /// Octets received.
        len: usize,
    },
    /// RFC 2865 §3: the Length field is outside 20..=4096.
    #[error("length field {declared} is outside 20..=4096")]
    BadLength {
        /// The Length field.
        declared: usize,
    },
    /// RFC 2865 §3: the datagram is shorter than its Length field: silently discard.
    #[error("length field {declared} exceeds the {received} octets received")]
    Truncated {
        /// The Length field.
        declared: usize,
        /// Octets received.
        received: usize,
    },
    /// RFC 2865 §5: an attribute's Length is below 2.
    #[error("attribute {typ} at offset {offset} has length {len}, minimum 2")]
    AttributeTooShort {
        /// Attribute type.
        typ: u8,
        /// Offset of the attribute in the packet.
        offset: usize,
        /// Its Length field.
        len: usize,
    },
    /// An attribute runs past the packet's Length.
    #[error("attribute {typ} at offset {offset} with length {len} overruns the packet")]
    AttributeOverrun {
        /// Attribute type.
        typ: u8,
        /// Offset of the attribute in the packet.
        offset: usize,
        /// Its Length field.
        len: usize,
    },
    /// RFC 3579 §3.2: Message-Authenticator is exactly 16 octets.
    #[error("Message-Authenticator has {len} octets, expected 16")]
    BadMessageAuthenticatorLength {
        /// Value length found.
        len: usize,
    },
    /// RFC 3579 §3.2: more than one Message-Authenticator.
    #[error("more than one Message-Authenticator")]
    DuplicateMessageAuthenticator,
    /// RFC 2865 §5.44: an Access-Request holds at most one User-Name, User-Password,
    /// CHAP-Password and State. Two of them would leave "which one counts" to the reader.
    #[error("Access-Request with more than one attribute {typ}")]
    DuplicateAttribute {
        /// Attribute type.
        typ: u8,
    },
}

/// Why a reply could not be encoded. These are programming or configuration errors, not
/// network input errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// RFC 2865 §5: a value longer than 253 octets.
    #[error("attribute {typ} value of {len} octets exceeds 253")]
    ValueTooLong {
        /// Attribute type.
        typ: u8,
        /// Value length.
        len: usize,
    },
    /// The packet would exceed 4096 octets.
    #[error("packet of {len} octets exceeds 4096")]
    PacketTooLong {
        /// Encoded length.
        len: usize,
    },
}
