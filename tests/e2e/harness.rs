//! Starting the real `audiostudio` binary: its CLI, a served instance, a logged-in user.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_audiostudio");
pub const PASSWORD: &str = "violet kettle 9 tambourine";
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(60);
pub const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// Variables that would leak configuration from the environment running the tests.
const LEAKY_VARS: [&str; 6] = [
    "JWT_SECRET",
    "SMTP_URL",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_API_BASE",
    "RUST_LOG",
];

/// Argon2 cheap enough for servers that log users in often.
pub const FAST_ARGON2: [(&str, &str); 2] = [
    ("ROCKET_ARGON2_MEMORY_KIB", "1024"),
    ("ROCKET_ARGON2_ITERATIONS", "1"),
];

/// The binary with a clean environment (no inherited `ROCKET_*`, secrets or log filters), run from `cwd`.
pub fn command(cwd: &Path) -> Command {
    program_command(BIN, cwd)
}

/// `program` (the binary, or a wrapper such as `prlimit` that runs it) with the same clean environment.
fn program_command(program: &str, cwd: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(cwd);
    for (key, _) in std::env::vars() {
        if key.starts_with("ROCKET_") || key.starts_with("AUDIOSTUDIO_") {
            cmd.env_remove(key);
        }
    }
    for key in LEAKY_VARS {
        cmd.env_remove(key);
    }
    cmd
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

pub fn is_listening(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// An HTTP client for local servers, pooling enough connections for the concurrency tests.
pub fn http() -> Client {
    Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(256)
        .build()
        .expect("HTTP client")
}

/// A log file's text so far (empty when there is none yet).
pub fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Waits for `child` to exit, killing it (and failing) after `timeout`.
pub fn wait_with_timeout(child: &mut Child, timeout: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("poll child") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Kills `child` unless it has exited already, and reaps it.
pub fn kill(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The data directory the tests that serve `<dir>/data` use.
pub fn data_dir(dir: &Path) -> PathBuf {
    dir.join("data")
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// The SQLite file of `<dir>/data`, waiting for the server's locks rather than failing.
pub fn db(dir: &Path) -> rusqlite::Connection {
    let conn =
        rusqlite::Connection::open(data_dir(dir).join("audiostudio.db")).expect("open the db");
    conn.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    conn
}

/// What a finished command printed.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `audiostudio <args>` from `cwd`, feeding `stdin` when given.
pub fn cli(cwd: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    cli_env(cwd, args, stdin, &[])
}

/// [`cli`] with extra environment variables.
pub fn cli_env(cwd: &Path, args: &[&str], stdin: Option<&str>, envs: &[(&str, &str)]) -> Output {
    let mut child = command(cwd)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn audiostudio");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        // The command may exit before reading (a bad email, say): a broken pipe is fine.
        let _ = pipe.write_all(input.as_bytes());
    }
    let read = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read(Box::new(child.stdout.take().expect("stdout pipe")));
    let stderr = read(Box::new(child.stderr.take().expect("stderr pipe")));
    let status = wait_with_timeout(&mut child, CLI_TIMEOUT, &format!("audiostudio {args:?}"));
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// `audiostudio --data-dir <dir>/data <args>` run from `dir`, `stdin` fed to it.
pub fn data_cli(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let data = data_dir(dir);
    let mut all = vec!["--data-dir", path_str(&data)];
    all.extend_from_slice(args);
    cli(dir, &all, stdin)
}

/// [`data_cli`], failing unless the command exits 0.
pub fn data_cli_ok(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let out = data_cli(dir, args, stdin);
    assert!(out.status.success(), "audiostudio {args:?}: {out}");
    out
}

/// A running server process; killed on drop if the test did not stop it.
pub struct Server {
    child: Child,
    pub port: u16,
    log: PathBuf,
    pub http: Client,
}

impl Server {
    /// `audiostudio <args>` with the port from `ROCKET_PORT`, run from `cwd`.
    pub fn start(cwd: &Path, args: &[&str], envs: &[(&str, &str)]) -> Server {
        let port = free_port();
        let port_text = port.to_string();
        let mut envs = envs.to_vec();
        envs.push(("ROCKET_PORT", &port_text));
        Server::launch(cwd, args, &envs, port)
    }

    /// `audiostudio <global_args> serve --port N`, run from `cwd`.
    pub fn start_serve(cwd: &Path, global_args: &[&str], envs: &[(&str, &str)]) -> Server {
        let port = free_port();
        let port_text = port.to_string();
        let mut args = global_args.to_vec();
        args.extend(["serve", "--port", &port_text]);
        Server::launch(cwd, &args, envs, port)
    }

    /// `audiostudio serve` on `port` under `prlimit` (e.g. `--nofile=1024:1024`), run from `cwd`.
    pub fn start_limited(cwd: &Path, limit: &str, envs: &[(&str, &str)]) -> Server {
        let port = free_port();
        let port_text = port.to_string();
        let args = [limit, BIN, "serve", "--port", &port_text];
        Server::launch_program("prlimit", cwd, &args, envs, port)
    }

    fn launch(cwd: &Path, args: &[&str], envs: &[(&str, &str)], port: u16) -> Server {
        Server::launch_program(BIN, cwd, args, envs, port)
    }

    fn launch_program(
        program: &str,
        cwd: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
        port: u16,
    ) -> Server {
        let log = cwd.join(format!("server-{port}.log"));
        let log_file = std::fs::File::create(&log).expect("create the server log");
        let child = program_command(program, cwd)
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone the log handle"))
            .stderr(log_file)
            .spawn()
            .expect("spawn audiostudio");
        let mut server = Server {
            child,
            port,
            log,
            http: http(),
        };
        server.wait_until_healthy();
        server
    }

    fn wait_until_healthy(&mut self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll server") {
                panic!(
                    "the server exited during startup with {status}:\n{}",
                    self.log()
                );
            }
            let ready = self
                .http
                .get(self.url("/health"))
                .timeout(Duration::from_secs(2))
                .send()
                .is_ok_and(|r| r.status() == StatusCode::OK);
            if ready {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "the server did not become healthy within {STARTUP_TIMEOUT:?}:\n{}",
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn log(&self) -> String {
        read_log(&self.log)
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.http.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub fn post(&self, path: &str, body: &Value) -> Response {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// Sends `request`, failing unless it answers 200; the JSON body (`Null` when not JSON).
    pub fn expect_ok(&self, request: RequestBuilder) -> Value {
        let response = request.send().expect("the server answered");
        let (status, url) = (response.status(), response.url().clone());
        let text = response.text().unwrap_or_default();
        assert_eq!(status, StatusCode::OK, "{url}: {text}\n{}", self.log());
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn stop(&mut self) -> ExitStatus {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: `pid` is our own child, not yet reaped, so it cannot have been reused.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(sent, 0, "kill(SIGTERM) failed");
        wait_with_timeout(&mut self.child, EXIT_TIMEOUT, "the server after SIGTERM")
    }

    /// [`Server::stop`], failing unless the exit status is success.
    pub fn stop_ok(&mut self) {
        let status = self.stop();
        assert!(
            status.success(),
            "SIGTERM should exit 0, got {status}:\n{}",
            self.log()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// A server serving `<dir>/data` and a user logged in on it; the server's methods through `Deref`.
pub struct Session {
    server: Server,
    pub token: String,
}

impl Session {
    /// `audiostudio --data-dir <dir>/data serve` with cheap Argon2 and `envs`, logged in as `email`.
    pub fn start(dir: &Path, envs: &[(&str, &str)], email: &str) -> Session {
        let data = data_dir(dir);
        let mut all = FAST_ARGON2.to_vec();
        all.extend_from_slice(envs);
        let server = Server::start_serve(dir, &["--data-dir", path_str(&data)], &all);
        let login = json!({ "email": email, "password": PASSWORD });
        let body = server.expect_ok(server.http.post(server.url("/api/auth/login")).json(&login));
        let token = body["access_token"].as_str().expect("access_token").into();
        Session { server, token }
    }

    /// An authenticated POST with a JSON body, to send.
    pub fn authed_post(&self, path: &str, body: &Value) -> RequestBuilder {
        self.http
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(body)
    }

    /// An authenticated GET that must answer 200: its JSON body.
    pub fn authed_get(&self, path: &str) -> Value {
        self.expect_ok(self.http.get(self.url(path)).bearer_auth(&self.token))
    }

    /// `GET /api/tokens/balance`.
    pub fn balance(&self) -> Value {
        self.authed_get("/api/tokens/balance")
    }

    /// The spendable balance, in tokens.
    pub fn balance_tokens(&self) -> i64 {
        let body = self.balance();
        body["balance"].as_i64().unwrap_or_else(|| panic!("{body}"))
    }
}

impl Deref for Session {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.server
    }
}

impl DerefMut for Session {
    fn deref_mut(&mut self) -> &mut Server {
        &mut self.server
    }
}
