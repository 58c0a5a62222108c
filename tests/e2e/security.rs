//! What a local user or a browser sees of a running server: file modes in the data
//! directory, banners and the security headers on the wire.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::*;

/// The permission bits of `path`, in octal as `ls` and `chmod` write them.
fn mode(path: &Path) -> String {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    format!("{:o}", meta.permissions().mode() & 0o777)
}

#[test]
fn a_fresh_start_keeps_the_database_and_secrets_to_their_owner() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    let server = Server::start_serve(dir.path(), &["--data-dir", path_str(&data)], &FAST_ARGON2);
    // A write, so the WAL and its index exist and hold a live link (the verification email).
    let registered = server.post(
        "/api/auth/register",
        &json!({ "email": "ada@example.com", "password": PASSWORD }),
    );
    assert_eq!(registered.status(), StatusCode::CREATED);

    assert_eq!(mode(&data), "700", "the data directory");
    for name in [
        "audiostudio.db",
        "audiostudio.db-wal",
        "audiostudio.db-shm",
        "jwt_secret",
    ] {
        assert_eq!(mode(&data.join(name)), "600", "{name}");
    }
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        let bits = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(bits & 0o077, 0, "{} is open to others", path.display());
    }
}

#[test]
fn a_database_other_users_can_read_stops_the_start_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    data_cli_ok(dir.path(), &["migrate"], None);
    let db = data.join("audiostudio.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();

    let port = free_port().to_string();
    let out = data_cli(dir.path(), &["serve", "--port", &port], None);
    assert!(!out.status.success(), "{out}");
    assert!(out.stderr.contains("audiostudio.db (mode 644)"), "{out}");
    assert!(out.stderr.contains("chmod 600"), "{out}");
    assert_eq!(
        mode(&db),
        "644",
        "the file is left for the operator to judge"
    );
    // The directory only revealed names: it is tightened, with a warning.
    assert_eq!(mode(&data), "700", "the data directory");
    assert!(out.stderr.contains("now 0700"), "{out}");

    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
    let server = Server::start_serve(dir.path(), &["--data-dir", path_str(&data)], &[]);
    assert_eq!(server.get("/health", None).status(), StatusCode::OK);
}

#[test]
fn the_wire_shows_no_banner_and_the_log_line_keeps_both_request_ids_and_the_ip() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    let server = Server::start_serve(
        dir.path(),
        &["--data-dir", path_str(&data)],
        &[("AUDIOSTUDIO_LOG_FORMAT", "json")],
    );
    let response = server
        .http
        .get(server.url("/api/auth/profile"))
        .header("X-Request-Id", "trace-abc-123")
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers().get("server").is_none(),
        "{:?}",
        response.headers()
    );
    assert_eq!(response.headers()["x-request-id"], "trace-abc-123");
    let problem: serde_json::Value = response.json().unwrap();
    let ours = problem["request_id"].as_str().unwrap().to_owned();

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let line = loop {
        let log = server.log();
        let found = log
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|l| l["fields"]["path"] == "/api/auth/profile");
        if let Some(line) = found {
            break line;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no request line:\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let fields = &line["fields"];
    assert_eq!(fields["request_id"], ours.as_str(), "{line}");
    assert_eq!(fields["client_request_id"], "trace-abc-123", "{line}");
    assert_eq!(fields["client_ip"], "127.0.0.1", "{line}");
    assert_eq!(fields["status"], 401, "{line}");
}
