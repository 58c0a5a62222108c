//! `audiostudio audit verify` keeps the head of the chain it verified outside the
//! database (`<data_dir>/audit_head`), so removing the newest rows with SQL — which
//! leaves a shorter, still valid chain — is reported on the next verify.

use std::os::unix::fs::PermissionsExt;

use crate::harness::*;

const PASSWORD: &str = "violet kettle 9 tambourine";

fn add_user(root: &std::path::Path, email: &str) {
    let line = format!("{PASSWORD}\n");
    data_cli_ok(root, &["users", "create", "--email", email], Some(&line));
}

fn audit_rows(root: &std::path::Path) -> Vec<(i64, String)> {
    let conn = db(root);
    let mut stmt = conn
        .prepare("SELECT id, hash FROM audit_logs ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn verify_prints_and_keeps_the_head_and_reports_removed_newest_rows() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    data_cli_ok(dir, &["migrate"], None);
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        add_user(dir, email);
    }
    let rows = audit_rows(dir);
    assert_eq!(rows.len(), 3, "{rows:?}");
    let (head_id, head_hash) = rows.last().unwrap().clone();

    let out = data_cli_ok(dir, &["audit", "verify"], None);
    assert!(
        out.stdout.contains("audit log intact: 3 rows verified"),
        "{out}"
    );
    assert!(
        out.stdout
            .contains(&format!("head: row {head_id} hash {head_hash}")),
        "{out}"
    );
    let kept = data_dir(dir).join("audit_head");
    let mode = std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the kept head is the owner's only");

    // A newer row moves the kept head forward on the next verify.
    add_user(dir, "d@example.com");
    let out = data_cli_ok(dir, &["audit", "verify"], None);
    assert!(
        out.stdout.contains("audit log intact: 4 rows verified"),
        "{out}"
    );
    assert!(out.stdout.contains("head: row 4 hash"), "{out}");

    // Whoever edits the database drops the two newest rows: the chain left is valid.
    let removed = db(dir)
        .execute("DELETE FROM audit_logs WHERE id >= 3", [])
        .unwrap();
    assert_eq!(removed, 2);
    let out = data_cli(dir, &["audit", "verify"], None);
    assert!(
        !out.status.success(),
        "the truncation went unnoticed: {out}"
    );
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains("BROKEN at row 4"), "{out}");
    assert!(text.contains("ends at row 2"), "{out}");
    // The failed verify leaves the kept head alone: it keeps failing until an operator acts.
    let out = data_cli(dir, &["audit", "verify"], None);
    assert!(!out.status.success(), "{out}");
}

#[test]
fn verify_reports_an_emptied_log() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    data_cli_ok(dir, &["migrate"], None);
    add_user(dir, "a@example.com");
    add_user(dir, "b@example.com");
    data_cli_ok(dir, &["audit", "verify"], None);

    let conn = db(dir);
    conn.execute("DELETE FROM audit_logs", []).unwrap();
    drop(conn);
    let out = data_cli(dir, &["audit", "verify"], None);
    assert!(
        !out.status.success(),
        "an emptied log went unnoticed: {out}"
    );
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains("ends at row 0"),
        "{out}"
    );
}
