//! What the tests need from outside the application: the migrations it ships, Python tools.

/// The newest migration version shipped in `migrations/`, which `/health` must report.
pub fn latest_migration() -> i64 {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_prefix('V')?.split("__").next()?.parse().ok()
        })
        .max()
        .unwrap()
}

/// Makes sure the Python tools in tests/requirements.txt (Stripe's library, localstripe, pyotp,
/// Prometheus' client for its text parser)
/// are importable, installing them with pip once if they are not: `cargo test` alone
/// works on a fresh machine. Panics with pip's output when that fails.
pub fn ensure_python_tools() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let importable = |check: &str| {
            std::process::Command::new("python3")
                .args(["-c", check])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if importable("import stripe, localstripe, pyotp, prometheus_client") {
            return;
        }
        let requirements = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/requirements.txt");
        let pip = std::process::Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                requirements,
            ])
            .output()
            .expect("python3 is needed by the Stripe tests");
        assert!(
            pip.status.success()
                && importable("import stripe, localstripe, pyotp, prometheus_client"),
            "could not install the Python test tools from {requirements}: {}",
            String::from_utf8_lossy(&pip.stderr)
        );
    });
}
