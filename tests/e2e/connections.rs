//! Connection limits of the real server: silent, half-sent and idle connections are
//! closed, and a flood of idle sockets from one client leaves the server answering.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::harness::*;

/// Reads until the server closes the connection; how long that took, or `None` if it
/// was still open after `within`.
fn closed_by_server(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(started.elapsed());
            }
            Err(_) => return None,
        }
        if started.elapsed() > within {
            return None;
        }
    }
}

#[test]
fn silent_half_header_and_idle_connections_are_closed_within_the_timeouts() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_serve(
        dir.path(),
        &["--data-dir", path_str(&data_dir(dir.path()))],
        &[
            ("ROCKET_HEADER_READ_TIMEOUT_SECS", "2"),
            ("ROCKET_IDLE_TIMEOUT_SECS", "2"),
        ],
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], server.port));
    let mut silent = TcpStream::connect(addr).unwrap();
    let mut half = TcpStream::connect(addr).unwrap();
    half.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).unwrap();
    assert_eq!(
        &first, b"HTTP/1.1 200",
        "the idle connection was answered first"
    );
    for (what, stream) in [
        ("silent", &mut silent),
        ("half header", &mut half),
        ("idle after a response", &mut idle),
    ] {
        let closed = closed_by_server(stream, Duration::from_secs(10));
        let took =
            closed.unwrap_or_else(|| panic!("the {what} connection was still open after 10 s"));
        assert!(
            took < Duration::from_secs(6),
            "the {what} connection was closed after {took:?}"
        );
    }
    // A connection busy with requests is not cut.
    assert_eq!(server.get("/health", None).status(), 200);
}

#[test]
fn a_flood_of_idle_sockets_leaves_health_answering_under_1024_open_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    let envs = [("ROCKET_DATA_DIR", path_str(&data))];
    let server = Server::start_limited(dir.path(), "--nofile=1024:1024", &envs);
    let addr = SocketAddr::from(([127, 0, 0, 1], server.port));
    let mut held = Vec::new();
    for _ in 0..1100 {
        if let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            held.push(stream);
        }
    }
    assert!(
        held.len() >= 1024,
        "the client held only {} sockets",
        held.len()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let answered = loop {
        let reply = server
            .http
            .get(server.url("/health"))
            .timeout(Duration::from_secs(5))
            .send();
        match reply {
            Ok(r) => break r.status(),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => panic!(
                "/health did not answer while {} idle sockets were held: {e}\n{}",
                held.len(),
                server.log()
            ),
        }
    };
    assert_eq!(answered, 200);
    // The sweep says what it closed (its line may follow the answer by a moment).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server
        .log()
        .contains("closed client connections that broke a limit")
    {
        assert!(
            Instant::now() < deadline,
            "no sweep was logged:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(held);
}
