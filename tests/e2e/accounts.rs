//! Accounts end to end: configuration, sessions across a restart, and the users, audit,
//! migrate, config, completions and help commands.

use std::path::Path;

use reqwest::StatusCode;
use reqwest::blocking::Response;
use serde_json::{Value, json};

use crate::harness::*;

/// Asserts the status and returns the JSON body, with the body in the failure message.
fn expect_json(response: Response, status: StatusCode, what: &str) -> Value {
    let actual = response.status();
    let text = response.text().unwrap_or_default();
    assert_eq!(actual, status, "{what}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"))
}

fn str_field<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {value}"))
}

fn assert_healthy(server: &Server) {
    let response = server.get("/health", None);
    let request_id = response
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().expect("ASCII request id").to_owned());
    let health = expect_json(response, StatusCode::OK, "GET /health");
    assert!(
        request_id.is_some_and(|id| !id.is_empty()),
        "/health has no x-request-id header"
    );
    assert_eq!(health["status"], "ok", "{health}");
    // Version and mailer mode are for admins only.
    assert!(health.get("version").is_none(), "{health}");
    assert!(health.get("email").is_none(), "{health}");
    let latest = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .into_string()
                .ok()?
                .strip_prefix('V')?
                .split("__")
                .next()?
                .parse::<i64>()
                .ok()
        })
        .max();
    assert_eq!(health["schema_version"].as_i64(), latest, "{health}");
    assert_eq!(health["database_reachable"], true, "{health}");
    assert!(health["uptime_seconds"].is_u64(), "{health}");
}

/// Checks the shape of a successful register/login/refresh answer.
fn assert_auth_response(body: &Value, email: &str, role: &str) {
    assert_eq!(str_field(body, "/user/email"), email, "{body}");
    assert_eq!(str_field(body, "/user/role"), role, "{body}");
    assert!(!str_field(body, "/user/id").is_empty(), "{body}");
    assert!(!str_field(body, "/access_token").is_empty(), "{body}");
    assert!(!str_field(body, "/refresh_token").is_empty(), "{body}");
    assert!(!str_field(body, "/session_id").is_empty(), "{body}");
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert!(body["expires_in"].as_i64().is_some_and(|s| s > 0), "{body}");
}

fn register(server: &Server, email: &str) -> Value {
    let body = json!({ "email": email, "password": PASSWORD, "display_name": "E2E" });
    let response = server.post("/api/auth/register", &body);
    let auth = expect_json(response, StatusCode::CREATED, "register");
    assert_auth_response(&auth, email, "user");
    auth
}

fn login(server: &Server, email: &str, role: &str) -> Value {
    let body = json!({ "email": email, "password": PASSWORD });
    let auth = expect_json(
        server.post("/api/auth/login", &body),
        StatusCode::OK,
        "login",
    );
    assert_auth_response(&auth, email, role);
    auth
}

fn profile(server: &Server, access_token: &str) -> Value {
    let response = server.get("/api/auth/profile", Some(access_token));
    expect_json(response, StatusCode::OK, "GET /api/auth/profile")
}

/// `audiostudio --data-dir <data> users create --email <email> [--admin]`, the password on stdin.
fn create_user(cwd: &Path, data: &str, email: &str, admin: bool, password_line: &str) -> Output {
    let mut args = vec!["--data-dir", data, "users", "create", "--email", email];
    if admin {
        args.push("--admin");
    }
    cli(cwd, &args, Some(password_line))
}

fn assert_stops_cleanly(server: &mut Server) {
    let status = server.stop();
    assert!(
        status.success(),
        "SIGTERM should exit 0, got {status}:\n{}",
        server.log()
    );
    assert!(
        !is_listening(server.port),
        "port {} still answers after exit",
        server.port
    );
}

#[test]
fn a_server_with_no_configuration_serves_and_keeps_sessions_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[], &[]);
    assert_healthy(&server);

    let secret_path = dir.path().join("data").join("jwt_secret");
    assert!(dir.path().join("data").join("audiostudio.db").is_file());
    assert!(secret_path.is_file(), "data/jwt_secret was not generated");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret_path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "data/jwt_secret has mode {mode:o}");
    }
    let secret_before = std::fs::read(&secret_path).unwrap();

    let email = "listener@example.com";
    let registered = register(&server, email);
    let logged_in = login(&server, email, "user");
    let me = profile(&server, str_field(&logged_in, "/access_token"));
    assert_eq!(me["email"], email, "{me}");
    assert_eq!(me["id"], registered["user"]["id"], "{me}");
    assert_eq!(
        server.get("/api/auth/profile", None).status(),
        StatusCode::UNAUTHORIZED
    );

    assert_stops_cleanly(&mut server);

    let mut server = Server::start_serve(dir.path(), &[], &[]);
    assert_healthy(&server);
    assert_eq!(
        std::fs::read(&secret_path).unwrap(),
        secret_before,
        "the JWT secret changed on restart"
    );

    // An access token from before the restart is still valid: the secret persisted.
    let me = profile(&server, str_field(&registered, "/access_token"));
    assert_eq!(me["email"], email, "{me}");

    let body = json!({ "refresh_token": str_field(&logged_in, "/refresh_token") });
    let refreshed = expect_json(
        server.post("/api/auth/refresh", &body),
        StatusCode::OK,
        "refresh after restart",
    );
    assert_auth_response(&refreshed, email, "user");
    assert_eq!(
        refreshed["session_id"], logged_in["session_id"],
        "{refreshed}"
    );
    assert_ne!(
        refreshed["refresh_token"], logged_in["refresh_token"],
        "not rotated"
    );
    let me = profile(&server, str_field(&refreshed, "/access_token"));
    assert_eq!(me["email"], email, "{me}");

    assert_stops_cleanly(&mut server);
}

#[test]
fn a_bad_configuration_value_exits_non_zero_naming_the_key_without_serving() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "tooshort-XYZ123";
    let cases = [
        ("ROCKET_READ_POOL_SIZE", "many", "read_pool_size"),
        ("ROCKET_READ_POOL_SIZE", "0", "read_pool_size"),
        ("JWT_SECRET", secret, "JWT_SECRET"),
    ];
    let mut problems = Vec::new();
    for (key, value, named) in cases {
        let port = free_port().to_string();
        // A server that wrongly starts never exits: `cli_env` kills it and fails.
        let envs = [("ROCKET_PORT", port.as_str()), (key, value)];
        let serve = cli_env(dir.path(), &[], None, &envs);
        let config = cli_env(dir.path(), &["config"], None, &envs);
        for (what, out) in [("serve", serve), ("config", config)] {
            if out.status.success() {
                problems.push(format!("{what} with {key}={value} succeeded: {out}"));
            }
            if !out.stderr.contains(named) {
                problems.push(format!(
                    "{what} with {key}={value} does not name `{named}`: {out}"
                ));
            }
            if out.stderr.contains(secret) || out.stdout.contains(secret) {
                problems.push(format!(
                    "{what} with {key}={value} printed the secret: {out}"
                ));
            }
        }
        let port: u16 = port.parse().unwrap();
        assert!(
            !is_listening(port),
            "{key}={value}: something listens on {port}"
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn the_users_cli_creates_an_admin_who_can_log_in_and_list_users_over_http() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("store");
    let d = path_str(&data);
    let admin = "boss@example.com";
    let line = format!("{PASSWORD}\n");

    let out = create_user(root.path(), d, admin, true, &line);
    assert!(out.status.success(), "{out}");
    let created = regex::Regex::new(r"^created admin (\S+) \(([0-9a-f-]{36})\)\s*$").unwrap();
    let captures = created
        .captures(&out.stdout)
        .unwrap_or_else(|| panic!("unexpected output: {out}"));
    assert_eq!(&captures[1], admin);
    let admin_id = captures[2].to_owned();

    let out = create_user(root.path(), d, admin, true, &line);
    assert!(!out.status.success(), "a duplicate email must fail: {out}");
    assert!(out.stderr.contains("already exists"), "{out}");

    for weak in ["short1\n", "password\n", "\n"] {
        let out = create_user(root.path(), d, "weak@example.com", false, weak);
        assert!(
            !out.status.success(),
            "password {weak:?} must be refused: {out}"
        );
        assert!(out.stderr.contains("password"), "{out}");
    }

    let out = create_user(root.path(), d, "member@example.com", false, &line);
    assert!(out.status.success(), "{out}");
    assert!(
        out.stdout.starts_with("created user member@example.com ("),
        "{out}"
    );

    let out = cli(root.path(), &["--data-dir", d, "users", "list"], None);
    assert!(out.status.success(), "{out}");
    let admin_row = out
        .stdout
        .lines()
        .find(|l| l.contains(admin))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(admin_row.contains(&admin_id), "{out}");
    assert!(admin_row.split_whitespace().any(|w| w == "admin"), "{out}");
    let member_row = out
        .stdout
        .lines()
        .find(|l| l.contains("member@example.com"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(member_row.split_whitespace().any(|w| w == "user"), "{out}");
    assert!(
        !out.stdout.contains("weak@example.com"),
        "a refused user was created: {out}"
    );

    // Two-factor sign-in for admins is tested in e2e/mfa.rs; here the admin API as such.
    let no_mfa = [("ROCKET_MFA_REQUIRED_FOR_ADMINS", "false")];
    let mut server = Server::start(root.path(), &["--data-dir", d], &no_mfa);
    assert!(
        !root.path().join("data").exists(),
        "--data-dir was ignored: ./data was created"
    );
    let admin_auth = login(&server, admin, "admin");
    assert_eq!(admin_auth["user"]["id"], admin_id.as_str());
    let admin_token = str_field(&admin_auth, "/access_token");
    let user_auth = register(&server, "listener@example.com");
    let user_token = str_field(&user_auth, "/access_token");

    let page = expect_json(
        server.get("/api/admin/users", Some(admin_token)),
        StatusCode::OK,
        "GET /api/admin/users as admin",
    );
    let emails: Vec<&str> = page["users"]
        .as_array()
        .unwrap_or_else(|| panic!("no users array: {page}"))
        .iter()
        .map(|u| str_field(u, "/email"))
        .collect();
    for email in [admin, "member@example.com", "listener@example.com"] {
        assert!(emails.contains(&email), "{email} missing from {page}");
    }
    assert_eq!(
        server.get("/api/admin/users", Some(user_token)).status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        server.get("/api/admin/users", None).status(),
        StatusCode::UNAUTHORIZED
    );

    assert_stops_cleanly(&mut server);
}

#[test]
fn the_audit_cli_verifies_the_chain_and_detects_a_tampered_row() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let d = path_str(&data);

    let out = cli(root.path(), &["--data-dir", d, "migrate"], None);
    assert!(out.status.success(), "{out}");
    let out = cli(root.path(), &["--data-dir", d, "audit", "verify"], None);
    assert!(out.status.success(), "{out}");
    assert!(
        out.stdout.contains("audit log intact: 0 rows verified"),
        "{out}"
    );

    let line = format!("{PASSWORD}\n");
    for (email, admin) in [("boss@example.com", true), ("member@example.com", false)] {
        let out = create_user(root.path(), d, email, admin, &line);
        assert!(out.status.success(), "{out}");
    }

    let out = cli(root.path(), &["--data-dir", d, "audit", "verify"], None);
    assert!(out.status.success(), "{out}");
    assert!(
        out.stdout.contains("audit log intact: 2 rows verified"),
        "{out}"
    );

    let db = rusqlite::Connection::open(data.join("audiostudio.db")).unwrap();
    let changed = db
        .execute("UPDATE audit_logs SET action = 'tampered' WHERE id = 1", [])
        .unwrap();
    assert_eq!(changed, 1);
    drop(db);

    let out = cli(root.path(), &["--data-dir", d, "audit", "verify"], None);
    assert!(!out.status.success(), "tampering went unnoticed: {out}");
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains("BROKEN at row 1"),
        "{out}"
    );
}

#[test]
fn the_migrate_config_completions_and_help_commands_work() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("store");
    let d = path_str(&data);

    let out = cli(root.path(), &["--data-dir", d, "migrate"], None);
    assert!(out.status.success(), "{out}");
    assert!(
        out.stdout.lines().any(|l| l.starts_with("V1"))
            && out.stdout.lines().any(|l| l.starts_with("V2")),
        "{out}"
    );
    assert!(data.join("audiostudio.db").is_file());
    let out = cli(root.path(), &["--data-dir", d, "migrate"], None);
    assert!(out.status.success(), "{out}");
    assert!(out.stdout.contains("nothing (up to date)"), "{out}");
    assert!(out.stdout.lines().any(|l| l.starts_with("V1")), "{out}");

    let jwt_secret = "0123456789abcdefghij0123456789ABCDEFGHIJ";
    let stripe_key = "sk_test_e2e_do_not_print_me_1234567890";
    let envs = [
        ("JWT_SECRET", jwt_secret),
        ("STRIPE_SECRET_KEY", stripe_key),
        ("ROCKET_PORT", "9123"),
    ];
    let out = cli_env(root.path(), &["--data-dir", d, "config"], None, &envs);
    assert!(out.status.success(), "{out}");
    let printed = format!("{}{}", out.stdout, out.stderr);
    assert!(!printed.contains(jwt_secret), "JWT_SECRET leaked: {out}");
    assert!(
        !printed.contains(stripe_key),
        "STRIPE_SECRET_KEY leaked: {out}"
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    for expected in [
        "JWT_SECRET = ******** (set)",
        "STRIPE_SECRET_KEY = ******** (set)",
        "STRIPE_WEBHOOK_SECRET = (not set)",
        "SMTP_URL = (not set)",
        "port = 9123",
    ] {
        assert!(lines.contains(&expected), "missing `{expected}`: {out}");
    }
    assert!(lines.contains(&format!("data_dir = {d}").as_str()), "{out}");

    let out = cli(root.path(), &["config"], None);
    assert!(out.status.success(), "{out}");
    for expected in ["JWT_SECRET = (not set)", "data_dir = data", "port = 8000"] {
        assert!(
            out.stdout.lines().any(|l| l == expected),
            "missing `{expected}`: {out}"
        );
    }

    for shell in ["bash", "zsh", "fish"] {
        let out = cli(root.path(), &["completions", shell], None);
        assert!(out.status.success(), "{out}");
        assert!(out.stdout.contains("audiostudio"), "{out}");
    }

    let commands: [&[&str]; 10] = [
        &[],
        &["serve"],
        &["migrate"],
        &["users"],
        &["users", "create"],
        &["users", "list"],
        &["audit"],
        &["audit", "verify"],
        &["config"],
        &["completions"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let out = cli(root.path(), &args, None);
        assert!(out.status.success(), "{args:?}: {out}");
        assert!(out.stdout.contains("Usage: audiostudio"), "{args:?}: {out}");
    }
    let out = cli(root.path(), &["--version"], None);
    assert!(out.status.success(), "{out}");
    assert!(out.stdout.contains(env!("CARGO_PKG_VERSION")), "{out}");
    // Read-only commands leave no default data directory behind.
    assert!(
        !root.path().join("data").exists(),
        "a read-only command created ./data"
    );
}
