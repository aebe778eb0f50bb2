//! The HTTP listener's connections (issue 24): garbage and a head that never ends are closed,
//! connections are admitted as RadSec's are (the cap, one address's share, strangers making
//! room), and a shutdown closes kept-alive connections. Raw TCP, so nothing is hidden by a
//! client's retries.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};

use crate::http::http_setup;
use crate::util::Server;

/// Reads until the server closes the connection (a reset counts as closed); retries a read
/// that a stop and continue of the test process interrupts (EINTR).
fn read_until_closed(stream: &mut TcpStream) -> String {
    use std::io::Read;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut seen = vec![];
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server did not close the connection: {e}"),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// One request on a kept-alive connection; returns the status line.
fn healthz_on(stream: &mut TcpStream) -> String {
    use std::io::{BufRead, BufReader};
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: tessera\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    // The rest of the head and the 3-octet body ("ok\n"), so the connection is idle again.
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 2 {
        line.clear();
    }
    let mut body = [0u8; 3];
    std::io::Read::read_exact(&mut reader, &mut body).unwrap();
    status.trim_end().to_string()
}

#[test]
fn garbage_a_stalled_head_and_connections_past_the_cap_are_closed() {
    let server = Server::start_with(&http_setup("max_connections = 2", ""));
    let addr = server.http_addr.unwrap();
    // Not HTTP at all: 400, closed.
    let mut garbage = TcpStream::connect(addr).unwrap();
    garbage
        .write_all(b"\x16\x03\x01\x00\xff\x00garbage\r\n\r\n")
        .unwrap();
    assert!(read_until_closed(&mut garbage).starts_with("HTTP/1.1 400"));
    // A head that never ends is closed by the header timeout.
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled
        .write_all(b"POST /validate/check HTTP/1.1\r\nHost: tessera\r\nX-Slow: ")
        .unwrap();
    read_until_closed(&mut stalled);
    drop((garbage, stalled));
    // Two kept-alive connections fill the cap; a third is closed unanswered.
    let mut first = TcpStream::connect(addr).unwrap();
    let mut second = TcpStream::connect(addr).unwrap();
    assert_eq!(healthz_on(&mut first), "HTTP/1.1 200 OK");
    assert_eq!(healthz_on(&mut second), "HTTP/1.1 200 OK");
    let mut third = TcpStream::connect(addr).unwrap();
    let _ = third.write_all(b"GET /healthz HTTP/1.1\r\nHost: tessera\r\n\r\n");
    assert_eq!(read_until_closed(&mut third), "", "past max_connections");
    // A freed place is taken again (the server notices the close a little later).
    drop(first);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let mut again = TcpStream::connect(addr).unwrap();
        let _ =
            again.write_all(b"GET /healthz HTTP/1.1\r\nHost: tessera\r\nConnection: close\r\n\r\n");
        if read_until_closed(&mut again).starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the freed place was not reused"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(healthz_on(&mut second), "HTTP/1.1 200 OK");
}

/// A connection to `to` from the loopback address `source` (127.0.0.2 and up are loopback too).
fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let from = SocketAddr::new(source.parse().unwrap(), 0);
    socket.bind(&from.into()).unwrap();
    socket.connect(&to.into()).unwrap();
    socket.into()
}

/// The admission RadSec uses: one address's share, and a stranger's connection (outside
/// `allow`) closed to make room while an allowed caller's keeps its place.
#[test]
fn strangers_make_room_and_one_address_gets_its_share() {
    let server = Server::start_with(&http_setup(
        "allow = [\"127.0.0.1/32\"]\nmax_connections = 2\nmax_connections_per_source = 1",
        "[metrics]\nlisten = \"127.0.0.1:0\"\n",
    ));
    let addr = server.http_addr.unwrap();
    let mut allowed = connect_from("127.0.0.1", addr);
    assert_eq!(healthz_on(&mut allowed), "HTTP/1.1 200 OK");
    // A second connection from the same address: past its share.
    let mut second = connect_from("127.0.0.1", addr);
    assert_eq!(
        read_until_closed(&mut second),
        "",
        "past max_connections_per_source"
    );
    // A stranger takes the last place, and gives it up to the next stranger.
    let mut stranger = connect_from("127.0.0.2", addr);
    let _next = connect_from("127.0.0.3", addr);
    assert_eq!(
        read_until_closed(&mut stranger),
        "",
        "the oldest stranger makes room"
    );
    assert_eq!(
        healthz_on(&mut allowed),
        "HTTP/1.1 200 OK",
        "the allowed caller stays"
    );
    let (_, metrics) = server.http_get("/metrics");
    for line in [
        "tessera_connections_refused_total{listener=\"http\",reason=\"per_source\"} 1",
        "tessera_connections_closed_total{listener=\"http\",reason=\"evicted\"} 1",
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
}

#[test]
fn sigterm_closes_a_kept_alive_connection_and_exits() {
    let mut server = Server::start_with(&http_setup("", ""));
    let mut kept = TcpStream::connect(server.http_addr.unwrap()).unwrap();
    assert_eq!(healthz_on(&mut kept), "HTTP/1.1 200 OK");
    server.signal("TERM");
    assert_eq!(read_until_closed(&mut kept), "", "closed by the shutdown");
    assert_eq!(server.wait_exit(), Some(0));
}
