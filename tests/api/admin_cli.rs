//! `audiostudio users disable|enable|role|unlock`: the admin API's operations at the
//! command line, with the same rules and audit rows.

use std::path::Path;

use rocket::http::Status;

use crate::admin_helpers::*;
use crate::helpers::*;

fn users(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let output = audiostudio_command(dir)
        .arg("users")
        .args(args)
        .output()
        .expect("run the audiostudio binary");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[rocket::async_test]
async fn the_cli_runs_the_same_account_actions_with_the_same_rules() {
    let app = spawn_app().await;
    let (cookie, _, _) = console_admin(&app).await;
    let (ada_token, _) = user(&app, "ada@example.com").await;
    let dir = app.dir.path().to_owned();
    let (ok, out, err) = users(
        &dir,
        &["disable", "--email", "Ada@Example.com", "--reason", "spam"],
    );
    assert!(ok, "{err}");
    assert!(out.contains("disabled"), "{out}");
    app.get("/api/tokens/balance", Some(&ada_token))
        .await
        .assert_problem(401);
    let (action, actor, _, details) = last_audit(&app);
    assert_eq!(
        (action.as_str(), actor, details["reason"].as_str()),
        ("admin.user_disabled", None, Some("spam"))
    );
    let ua: String = app
        .db()
        .query_row(
            "SELECT user_agent FROM audit_logs ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(ua, "audiostudio-cli");
    let (ok, _, err) = users(&dir, &["enable", "--email", "ada@example.com"]);
    assert!(ok, "{err}");
    app.assert_logs_in("ada@example.com", PASSWORD).await;
    let (ok, _, err) = users(&dir, &["unlock", "--email", "ada@example.com"]);
    assert!(ok, "{err}");
    // The last admin keeps the role and the console.
    let (ok, _, err) = users(
        &dir,
        &["role", "--email", "root@example.com", "--role", "user"],
    );
    assert!(!ok && err.contains("last admin"), "{err}");
    assert_eq!(
        cget(&app, "/admin/api/me", &cookie).await.status,
        Status::Ok
    );
    let (ok, _, err) = users(
        &dir,
        &["role", "--email", "ada@example.com", "--role", "root"],
    );
    assert!(!ok && err.contains("user or admin"), "{err}");
    let (ok, _, err) = users(
        &dir,
        &["disable", "--email", "nobody@example.com", "--reason", "x"],
    );
    assert!(!ok && err.contains("no account"), "{err}");
}
