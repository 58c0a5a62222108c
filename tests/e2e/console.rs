//! The admin console in a real browser: runs `node --test tests/ui/` (playwright-core
//! driving Debian's chromium, never a browser download) against this build's binary.
//! Missing chromium or node fails the test with the command that installs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{BIN, wait_with_timeout};

const CHROMIUM: &str = "/usr/bin/chromium";
const NPM_TIMEOUT: Duration = Duration::from_secs(300);
const BROWSER_TESTS_TIMEOUT: Duration = Duration::from_secs(900);

fn ui_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui")
}

fn has(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `npm ci` from the committed lockfile when `node_modules` is missing (a fresh clone).
fn ensure_node_modules(dir: &Path) {
    if dir
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        return;
    }
    let mut child = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn npm ci");
    let status = wait_with_timeout(&mut child, NPM_TIMEOUT, "npm ci in tests/ui");
    assert!(status.success(), "npm ci in tests/ui failed: {status}");
}

#[test]
fn the_admin_console_passes_its_browser_tests() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "chromium is missing at {CHROMIUM}: the browser tests need Debian's chromium \
         (`apt-get install -y chromium`, as .ci/run does)"
    );
    assert!(
        has("node") && has("npm"),
        "node and npm are missing: the browser tests need them (`apt-get install -y nodejs npm`)"
    );
    let dir = ui_dir();
    ensure_node_modules(&dir);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let log = tempfile::NamedTempFile::new().expect("a log file");
    let mut child = Command::new("node")
        .args(["--test", "--test-reporter=spec", "tests/ui/"])
        .current_dir(root)
        .env("AUDIOSTUDIO_BIN", BIN)
        .env("CHROMIUM", CHROMIUM)
        .stdin(Stdio::null())
        .stdout(log.reopen().expect("log handle"))
        .stderr(log.reopen().expect("log handle"))
        .spawn()
        .expect("spawn node --test");
    let status = wait_with_timeout(&mut child, BROWSER_TESTS_TIMEOUT, "node --test tests/ui/");
    let output = std::fs::read_to_string(log.path()).unwrap_or_default();
    println!("{output}");
    assert!(
        status.success(),
        "the browser tests failed ({status}):\n{output}"
    );
    assert!(output.contains("fail 0"), "{output}");
}
