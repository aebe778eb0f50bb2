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

/// What one peer packet carried, as the framing sees it.
#[derive(Debug, PartialEq, Eq)]
pub enum Framed {
    /// A fragment of a longer message.
    Fragment,
    /// The acknowledgement of a fragment of ours.
    Ack,
    /// A whole message (empty: the peer has nothing to say).
    Message(Vec<u8>),
}

/// The L/M/S framing of one conversation, both directions, without TLS: the peer's fragments
/// reassembled, tessera's message cut.
pub struct Framing {
    /// The peer's message being reassembled, and the total its L flag announced.
    incoming: Vec<u8>,
    announced: Option<usize>,
    /// What is left to send of tessera's message, and whether a fragment of it went out.
    outgoing: Vec<u8>,
    started_sending: bool,
    /// The octets of TLS data per fragment.
    fragment: usize,
}

impl Framing {
    /// Framing with `fragment` octets of data per packet (at least 64).
    pub fn new(fragment: usize) -> Framing {
        Framing {
            incoming: vec![],
            announced: None,
            outgoing: vec![],
            started_sending: false,
            fragment: fragment.max(64),
        }
    }

    /// Takes one packet's data (flags, optional length, fragment).
    pub fn receive(&mut self, data: &[u8]) -> Result<Framed, TlsError> {
        let (flags, rest) = data.split_first().ok_or(TlsError::Framing("no flags"))?;
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
                Ok(Framed::Ack)
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
            return Ok(Framed::Fragment);
        }
        if let Some(announced) = self.announced
            && self.incoming.len() != announced
        {
            return Err(TlsError::Framing("fewer octets than the length announced"));
        }
        self.announced = None;
        Ok(Framed::Message(std::mem::take(&mut self.incoming)))
    }

    /// Starts sending `message`; the first fragment's data, `None` when it is empty.
    pub fn send(&mut self, message: Vec<u8>) -> Option<Vec<u8>> {
        self.outgoing = message;
        self.started_sending = false;
        self.next_fragment()
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

/// One TLS tunnel and its framing.
pub struct Tunnel {
    conn: ServerConnection,
    framing: Framing,
}

impl Tunnel {
    /// A new tunnel on `config`; `fragment` octets of TLS data per EAP packet.
    pub fn new(config: Arc<rustls::ServerConfig>, fragment: usize) -> Result<Tunnel, TlsError> {
        let conn = ServerConnection::new(config).map_err(|e| TlsError::Tls(e.to_string()))?;
        Ok(Tunnel {
            conn,
            framing: Framing::new(fragment),
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

    /// The connection, for the key exporter.
    pub fn connection(&self) -> &ServerConnection {
        &self.conn
    }

    /// Takes one packet's data; a whole message goes to TLS.
    pub fn receive(&mut self, data: &[u8]) -> Result<Received, TlsError> {
        match self.framing.receive(data)? {
            Framed::Fragment => Ok(Received::Fragment),
            Framed::Ack => Ok(Received::Ack),
            Framed::Message(message) => {
                self.feed(&message)?;
                Ok(Received::Message)
            }
        }
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

    /// Starts sending what TLS has to say; the first fragment's data, or `None` when TLS has
    /// nothing to say.
    pub fn flush(&mut self) -> Result<Option<Vec<u8>>, TlsError> {
        let mut out = vec![];
        while self.conn.wants_write() {
            self.conn
                .write_tls(&mut out)
                .map_err(|e| TlsError::Tls(e.to_string()))?;
        }
        Ok(self.framing.send(out))
    }

    /// The next fragment of what is being sent.
    pub fn next_fragment(&mut self) -> Option<Vec<u8>> {
        self.framing.next_fragment()
    }

    /// The octets held in buffers, for the conversation's memory bound.
    pub fn buffered(&self) -> usize {
        self.framing.buffered()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_are_reassembled_and_acknowledged() {
        let mut f = Framing::new(64);
        assert_eq!(
            f.receive(&[FLAG_LENGTH | FLAG_MORE, 0, 0, 0, 5, 1, 2, 3]),
            Ok(Framed::Fragment)
        );
        assert_eq!(
            f.receive(&[0, 4, 5]),
            Ok(Framed::Message(vec![1, 2, 3, 4, 5]))
        );
        // Without L, one fragment.
        assert_eq!(f.receive(&[0, 9]), Ok(Framed::Message(vec![9])));
        // Nothing to say.
        assert_eq!(f.receive(&[0]), Ok(Framed::Message(vec![])));
    }

    #[test]
    fn wrong_flags_and_lengths_end_the_conversation() {
        let framing = |e: &'static str| Err(TlsError::Framing(e));
        assert_eq!(Framing::new(64).receive(&[]), framing("no flags"));
        assert_eq!(
            Framing::new(64).receive(&[FLAG_START]),
            framing("start flag from the peer")
        );
        assert_eq!(
            Framing::new(64).receive(&[FLAG_LENGTH, 0, 0]),
            framing("L flag without a length")
        );
        assert_eq!(
            Framing::new(64).receive(&[FLAG_LENGTH, 0, 0, 0, 2, 1, 2, 3]),
            framing("more octets than the length announced")
        );
        assert_eq!(
            Framing::new(64).receive(&[FLAG_LENGTH, 0, 0, 0, 4, 1, 2, 3]),
            framing("fewer octets than the length announced")
        );
        assert_eq!(
            Framing::new(64).receive(&[FLAG_MORE]),
            framing("an empty fragment with more to come")
        );
        let mut f = Framing::new(64);
        f.receive(&[FLAG_LENGTH | FLAG_MORE, 0, 0, 0, 9, 1])
            .unwrap();
        assert_eq!(
            f.receive(&[FLAG_LENGTH | FLAG_MORE, 0, 0, 0, 8, 1]),
            framing("the length changed between fragments")
        );
        assert_eq!(
            Framing::new(64).receive(&[FLAG_LENGTH, 0xff, 0xff, 0xff, 0xff]),
            Err(TlsError::TooLong)
        );
        // Data where the acknowledgement of our fragment was due.
        let mut f = Framing::new(64);
        f.send(vec![0; 100]).unwrap();
        assert_eq!(
            f.receive(&[0, 1]),
            framing("data where an acknowledgement was due")
        );
    }

    #[test]
    fn a_fragment_flood_is_cut_at_the_bound() {
        let mut f = Framing::new(64);
        let mut fragment = vec![FLAG_MORE];
        fragment.extend([0u8; 1000]);
        let mut taken = 0;
        let error = loop {
            match f.receive(&fragment) {
                Ok(Framed::Fragment) => taken += 1,
                other => break other,
            }
        };
        assert_eq!(error, Err(TlsError::TooLong));
        assert_eq!(taken, MAX_MESSAGE / 1000);
        assert!(f.buffered() <= MAX_MESSAGE);
    }

    #[test]
    fn our_message_goes_out_in_fragments_each_acknowledged() {
        let mut f = Framing::new(64);
        let message: Vec<u8> = (0..150u8).collect();
        let first = f.send(message.clone()).unwrap();
        assert_eq!(&first[..5], &[FLAG_LENGTH | FLAG_MORE, 0, 0, 0, 150]);
        assert_eq!(first.len(), 5 + 64);
        assert_eq!(f.receive(&[0]), Ok(Framed::Ack));
        let second = f.next_fragment().unwrap();
        assert_eq!((second[0], second.len()), (FLAG_MORE, 65));
        assert_eq!(f.receive(&[0]), Ok(Framed::Ack));
        let last = f.next_fragment().unwrap();
        assert_eq!((last[0], last.len()), (0, 23));
        let sent: Vec<u8> = [&first[5..], &second[1..], &last[1..]].concat();
        assert_eq!(sent, message);
        assert_eq!(f.next_fragment(), None);
        // A short message goes whole, without L.
        assert_eq!(f.send(vec![7, 7]), Some(vec![0, 7, 7]));
    }
}
