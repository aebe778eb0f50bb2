//! Loopback ports for peers: bound to port 0, noted and released, so the peer can bind it right
//! after (fine on a test machine; every peer gets its own).

use std::net::{TcpListener, UdpSocket};

/// A TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    try_free_port().expect("free port")
}

/// The same, or why there is none.
pub fn try_free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free TCP port: {e}"))
}

/// A UDP port that was free a moment ago.
pub fn try_free_udp_port() -> Result<u16, String> {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free UDP port: {e}"))
}

/// A TCP port nothing listens on (bound, then released): a peer that is down.
pub fn closed_port() -> u16 {
    free_port()
}
