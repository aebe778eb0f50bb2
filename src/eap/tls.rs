//! TLS inside EAP (RFC 5216 §2.1.5 framing, used by EAP-TTLS and PEAP): a rustls
//! [`ServerConnection`] on in-memory buffers, and the fragmentation of its records into EAP
//! packets with the L (length included), M (more fragments) and S (start) flags.
//!
//! Each direction is bounded: a peer's message is reassembled up to [`MAX_MESSAGE`] octets and
//! no further (a fragment flood ends the conversation), and what tessera sends is cut into
//! fragments of at most the size the NAS's `Framed-MTU` allows. A fragment is acknowledged by
//! an empty message of the same type; anything else where an acknowledgement is due, a length
//! that disagrees with what arrives, or fragments after the length was reached, ends the
//! conversation.

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::ServerConnection;

/// The L flag: a four-octet total length follows the flags.
pub const FLAG_LENGTH: u8 = 0x80;
/// The M flag: more fragments follow.
pub const FLAG_MORE: u8 = 0x40;
/// The S flag: start (server's first message only).
pub const FLAG_START: u8 = 0x20;

/// The most octets of one peer message (all its fragments). A TTLS or PEAP peer without a
/// client certificate sends a few hundred octets per flight.
pub const MAX_MESSAGE: usize = 16 * 1024;

/// The most plaintext octets taken from the tunnel per message (inner AVPs, inner EAP).
pub const MAX_PLAINTEXT: usize = 8 * 1024;

/// Why the tunnel cannot go on. Each ends the conversation with EAP-Failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsError {
    /// Flags or lengths that do not add up (a fragment where an acknowledgement was due, a
    /// length that disagrees with the octets, the start flag from a peer).
    Framing(&'static str),
    /// More than [`MAX_MESSAGE`] octets.
    TooLong,
    /// rustls refused the peer's TLS (bad record, no common cipher suite, a failed handshake).
    Tls(String),
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsError::Framing(what) => write!(f, "EAP-TLS framing: {what}"),
            TlsError::TooLong => write!(f, "peer message over {MAX_MESSAGE} octets"),
            TlsError::Tls(e) => write!(f, "TLS: {e}"),
        }
    }
}

/// What one peer packet amounted to.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A fragment of a longer message: acknowledge it (send [`Tunnel::ack`]).
    Fragment,
    /// The acknowledgement of a fragment of ours: send the next one (`Tunnel::next_fragment`).
    Ack,
    /// A whole message, fed to TLS: read the plaintext, write the answer, then flush.
    Message,
}

/// One TLS tunnel and its fragment buffers.
pub struct Tunnel {
    conn: ServerConnection,
    /// The peer's message being reassembled, and the total its L flag announced.
    incoming: Vec<u8>,
    announced: Option<usize>,
    /// What is left to send of tessera's message, and whether a fragment of it went out.
    outgoing: Vec<u8>,
    started_sending: bool,
    /// The octets of TLS data per fragment.
    fragment: usize,
}

impl Tunnel {
    /// A new tunnel on `config`; `fragment` octets of TLS data per EAP packet.
    pub fn new(config: Arc<rustls::ServerConfig>, fragment: usize) -> Result<Tunnel, TlsError> {
        let conn = ServerConnection::new(config).map_err(|e| TlsError::Tls(e.to_string()))?;
        Ok(Tunnel {
            conn,
            incoming: vec![],
            announced: None,
            outgoing: vec![],
            started_sending: false,
            fragment: fragment.max(64),
        })
    }

    /// The data of the first request: the S flag, no TLS data (RFC 5216 §2.1.1).
    pub fn start() -> Vec<u8> {
        vec![FLAG_START]
    }

    /// An acknowledgement: flags only.
    pub fn ack() -> Vec<u8> {
        vec![0]
    }

    /// Whether the handshake is still going on.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// The negotiated TLS version, for the keys and the log.
    pub fn version(&self) -> Option<rustls::ProtocolVersion> {
        self.conn.protocol_version()
    }

    /// The connection, for the key exporter.
    pub fn connection(&self) -> &ServerConnection {
        &self.conn
    }

    /// Takes one packet's data (flags, optional length, fragment).
    pub fn receive(&mut self, data: &[u8]) -> Result<Received, TlsError> {
        let (flags, rest) = data
            .split_first()
            .ok_or(TlsError::Framing("no flags"))?;
        let flags = *flags;
        if flags & FLAG_START != 0 {
            return Err(TlsError::Framing("start flag from the peer"));
        }
        let (length, fragment) = if flags & FLAG_LENGTH != 0 {
            let (length, fragment) = rest
                .split_first_chunk::<4>()
                .ok_or(TlsError::Framing("L flag without a length"))?;
            let length = usize::try_from(u32::from_be_bytes(*length)).unwrap_or(usize::MAX);
            (Some(length), fragment)
        } else {
            (None, rest)
        };
        if !self.outgoing.is_empty() {
            // A fragment of ours is out: only an empty acknowledgement may come.
            return if fragment.is_empty() && flags & FLAG_MORE == 0 {
                Ok(Received::Ack)
            } else {
                Err(TlsError::Framing("data where an acknowledgement was due"))
            };
        }
        if let Some(length) = length {
            if length > MAX_MESSAGE {
                return Err(TlsError::TooLong);
            }
            match self.announced {
                None if self.incoming.is_empty() => self.announced = Some(length),
                Some(announced) if announced == length => {}
                _ => return Err(TlsError::Framing("the length changed between fragments")),
            }
        }
        if self.incoming.len() + fragment.len() > MAX_MESSAGE {
            return Err(TlsError::TooLong);
        }
        self.incoming.extend_from_slice(fragment);
        if let Some(announced) = self.announced
            && self.incoming.len() > announced
        {
            return Err(TlsError::Framing("more octets than the length announced"));
        }
        if flags & FLAG_MORE != 0 {
            if fragment.is_empty() {
                return Err(TlsError::Framing("an empty fragment with more to come"));
            }
            return Ok(Received::Fragment);
        }
        if let Some(announced) = self.announced
            && self.incoming.len() != announced
        {
            return Err(TlsError::Framing("fewer octets than the length announced"));
        }
        if self.incoming.is_empty() {
            // An empty message outside a fragment exchange: the peer has nothing to say
            // (TLS 1.3 after its Finished, or an acknowledgement of our last flight).
            return Ok(Received::Message);
        }
        let message = std::mem::take(&mut self.incoming);
        self.announced = None;
        self.feed(&message)?;
        Ok(Received::Message)
    }

    fn feed(&mut self, mut message: &[u8]) -> Result<(), TlsError> {
        while !message.is_empty() {
            let read = self
                .conn
                .read_tls(&mut message)
                .map_err(|e| TlsError::Tls(e.to_string()))?;
            if read == 0 {
                break;
            }
            self.conn
                .process_new_packets()
                .map_err(|e| TlsError::Tls(e.to_string()))?;
        }
        Ok(())
    }

    /// The plaintext the peer sent through the tunnel (at most [`MAX_PLAINTEXT`] octets).
    pub fn plaintext(&mut self) -> Vec<u8> {
        let mut out = vec![];
        let mut buf = [0u8; 1024];
        while out.len() < MAX_PLAINTEXT {
            match self.conn.reader().read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(buf.get(..n).unwrap_or_default()),
            }
        }
        out
    }

    /// Writes plaintext into the tunnel (sent with the next flush).
    pub fn write(&mut self, plaintext: &[u8]) -> Result<(), TlsError> {
        self.conn
            .writer()
            .write_all(plaintext)
            .map_err(|e| TlsError::Tls(e.to_string()))
    }

    /// Moves what TLS has to send into the fragment buffer; the first fragment's data, or
    /// `None` when TLS has nothing to say.
    pub fn flush(&mut self) -> Result<Option<Vec<u8>>, TlsError> {
        while self.conn.wants_write() {
            self.conn
                .write_tls(&mut self.outgoing)
                .map_err(|e| TlsError::Tls(e.to_string()))?;
        }
        if self.outgoing.is_empty() {
            return Ok(None);
        }
        self.started_sending = false;
        Ok(self.next_fragment())
    }

    /// The next fragment of what is being sent: the L flag and the total on the first one of
    /// several, the M flag on all but the last.
    pub fn next_fragment(&mut self) -> Option<Vec<u8>> {
        if self.outgoing.is_empty() {
            return None;
        }
        let take = self.fragment.min(self.outgoing.len());
        let more = take < self.outgoing.len();
        let mut data = Vec::with_capacity(take + 5);
        if !self.started_sending && more {
            data.push(FLAG_LENGTH | FLAG_MORE);
            let total = u32::try_from(self.outgoing.len()).unwrap_or(u32::MAX);
            data.extend_from_slice(&total.to_be_bytes());
        } else if more {
            data.push(FLAG_MORE);
        } else {
            data.push(0);
        }
        data.extend(self.outgoing.drain(..take));
        self.started_sending = true;
        Some(data)
    }

    /// The octets held in buffers, for the conversation's memory bound.
    pub fn buffered(&self) -> usize {
        self.incoming.len() + self.outgoing.len()
    }
}
