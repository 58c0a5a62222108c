//! Connection limits of the real server: silent, half-sent and idle connections are
//! closed, and a flood of idle sockets from one client leaves the server answering.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
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

/// The idle limit the download tests run under; a download takes several times as long.
const DOWNLOAD_IDLE_SECS: u64 = 2;

/// A server whose database holds 16 MiB of padding (more than the sockets' buffers hold,
/// so a download cannot finish into them), with an admin signed in and one backup taken:
/// (server, admin token, backup name, backup bytes).
fn server_with_a_large_backup(dir: &Path) -> (Server, String, String, Vec<u8>) {
    let email = "root@example.com";
    data_cli_ok(
        dir,
        &["users", "create", "--email", email, "--admin"],
        Some(&format!("{PASSWORD}\n")),
    );
    db(dir)
        .execute_batch(
            "CREATE TABLE e2e_padding (b BLOB); INSERT INTO e2e_padding VALUES (randomblob(16 * 1024 * 1024));",
        )
        .unwrap();
    let idle = DOWNLOAD_IDLE_SECS.to_string();
    let mut envs = FAST_ARGON2.to_vec();
    envs.extend([
        ("ROCKET_IDLE_TIMEOUT_SECS", idle.as_str()),
        ("ROCKET_HEADER_READ_TIMEOUT_SECS", idle.as_str()),
        ("ROCKET_MFA_REQUIRED_FOR_ADMINS", "false"),
    ]);
    let server = Server::start_serve(dir, &["--data-dir", path_str(&data_dir(dir))], &envs);
    let login = serde_json::json!({ "email": email, "password": PASSWORD });
    let body = server.expect_ok(server.http.post(server.url("/api/auth/login")).json(&login));
    let token = body["access_token"].as_str().unwrap().to_owned();
    let made = server
        .http
        .post(server.url("/api/admin/backups"))
        .bearer_auth(&token)
        .json(&serde_json::json!({}))
        .send()
        .unwrap();
    assert_eq!(made.status(), 201);
    let made: serde_json::Value = made.json().unwrap();
    assert_eq!(made["verified"], true, "{made}");
    let name = made["name"].as_str().unwrap().to_owned();
    let bytes = std::fs::read(data_dir(dir).join("backups").join(&name)).unwrap();
    assert!(bytes.len() > 16 * 1024 * 1024);
    (server, token, name, bytes)
}

/// A connection with a small receive buffer (a slow link's window) that asked for `path`;
/// returns it after the response head, with the Content-Length.
fn start_download(server: &Server, path: &str, token: &str) -> (TcpStream, usize) {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn, connect, setsockopt, socket, sockopt,
    };
    use std::os::fd::AsRawFd;
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    setsockopt(&fd, sockopt::RcvBuf, &(64 * 1024)).unwrap();
    let addr = SockaddrIn::new(127, 0, 0, 1, server.port);
    connect(fd.as_raw_fd(), &addr).unwrap();
    let mut stream = TcpStream::from(fd);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "the head ended early");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no Content-Length in {head}"));
    (stream, length)
}

/// Reads what the server sends until it closes, at most `rate` bytes a second.
fn read_slowly(stream: &mut TcpStream, rate: usize) -> Vec<u8> {
    let mut body = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let started = Instant::now();
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return body,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return body,
            Err(e) => panic!("reading the download: {e} after {} bytes", body.len()),
        }
        let due = Duration::from_secs_f64(body.len() as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

#[test]
fn a_backup_downloaded_slowly_for_longer_than_the_idle_limit_arrives_whole_and_valid() {
    let dir = tempfile::tempdir().unwrap();
    let (server, token, name, on_disk) = server_with_a_large_backup(dir.path());
    let (mut stream, length) =
        start_download(&server, &format!("/api/admin/backups/{name}"), &token);
    assert_eq!(length, on_disk.len());
    let started = Instant::now();
    // 2 MiB/s: about 8 s for the file, four times the idle limit.
    let body = read_slowly(&mut stream, 2 * 1024 * 1024);
    let took = started.elapsed();
    assert_eq!(
        body.len(),
        length,
        "the download was cut after {took:?}:\n{}",
        server.log()
    );
    assert!(body == on_disk, "the download differs from the backup");
    assert!(
        took > Duration::from_secs(2 * DOWNLOAD_IDLE_SECS),
        "the test did not outlast the limit ({took:?}); the padding is too small"
    );
    let copy = dir.path().join("downloaded.db");
    std::fs::write(&copy, &body).unwrap();
    let verified = data_cli_ok(dir.path(), &["backup", "--verify", path_str(&copy)], None);
    assert!(verified.stdout.contains("integrity ok"), "{verified}");
}

#[test]
fn a_download_that_stalls_is_cut_like_an_idle_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (server, token, name, on_disk) = server_with_a_large_backup(dir.path());
    let (mut stream, length) =
        start_download(&server, &format!("/api/admin/backups/{name}"), &token);
    let mut first = vec![0u8; 256 * 1024];
    stream.read_exact(&mut first).unwrap();
    // The client stops reading for three idle limits, then takes what is left.
    std::thread::sleep(Duration::from_secs(3 * DOWNLOAD_IDLE_SECS));
    let rest = read_slowly(&mut stream, usize::MAX);
    assert!(
        first.len() + rest.len() < length,
        "a stalled download was kept open to the end ({} bytes)",
        on_disk.len()
    );
    assert!(
        server
            .log()
            .contains("closed client connections that broke a limit"),
        "{}",
        server.log()
    );
    assert_eq!(server.get("/health", None).status(), 200);
}
