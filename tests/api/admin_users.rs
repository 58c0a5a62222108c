//! The admin's user actions, through the console cookie and the Bearer token alike:
//! search, detail, disable/enable, role, unlock, verify, emails, sessions, activity.

use rocket::http::Status;
use serde_json::json;

use crate::admin_helpers::*;
use crate::helpers::*;

#[rocket::async_test]
async fn users_are_searched_and_filtered() {
    let app = spawn_app().await;
    let (cookie, token, root) = console_admin(&app).await;
    let (_, ada) = user(&app, "ada@example.com").await;
    user(&app, "grace@example.com").await;
    let all = cget(&app, "/admin/api/users", &cookie).await;
    assert_eq!(all.status, Status::Ok, "{}", all.body);
    assert_eq!(all.body["users"].as_array().unwrap().len(), 3);
    let row = &all.body["users"][0];
    for field in [
        "id",
        "email",
        "display_name",
        "role",
        "status",
        "email_verified",
        "locked",
        "balance",
        "last_seen_at",
        "created_at",
    ] {
        assert!(row.get(field).is_some(), "{field} missing: {row}");
    }
    let admins = app.get("/api/admin/users?role=admin", Some(&token)).await;
    assert_eq!(admins.body["users"].as_array().unwrap().len(), 1);
    assert_eq!(admins.body["users"][0]["id"], root.as_str());
    let by_id = cget(&app, &format!("/admin/api/users?q={ada}"), &cookie).await;
    assert_eq!(by_id.body["users"][0]["email"], "ada@example.com");
    let by_part = cget(&app, "/admin/api/users?q=GRACE", &cookie).await;
    assert_eq!(by_part.body["users"].as_array().unwrap().len(), 1);
    let unverified = cget(
        &app,
        "/admin/api/users?verified=false&status=active&locked=false",
        &cookie,
    )
    .await;
    assert_eq!(unverified.body["users"].as_array().unwrap().len(), 3);
    for bad in [
        "role=root",
        "status=gone",
        "verified=yes",
        "locked=1",
        "limit=0",
        "cursor=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    ] {
        cget(&app, &format!("/admin/api/users?{bad}"), &cookie)
            .await
            .assert_problem(422);
    }
    let detail = cget(&app, &format!("/admin/api/users/{ada}"), &cookie).await;
    assert_eq!(detail.status, Status::Ok);
    assert_eq!(detail.body["lockout"]["failed_attempts"], 0);
    assert!(detail.body["plan"].is_null());
    cget(&app, "/admin/api/users/nobody", &cookie)
        .await
        .assert_problem(404);
}

#[rocket::async_test]
async fn disabling_revokes_every_session_at_once_and_enabling_lets_the_user_back_in() {
    let app = spawn_app().await;
    let (cookie, _, root) = console_admin(&app).await;
    let (ada_token, ada) = user(&app, "ada@example.com").await;
    cpost(
        &app,
        &format!("/admin/api/users/{ada}/disable"),
        json!({ "reason": " " }),
        &cookie,
    )
    .await
    .assert_problem(422);
    let reply = cpost(
        &app,
        &format!("/admin/api/users/{ada}/disable"),
        json!({ "reason": "spam" }),
        &cookie,
    )
    .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    assert_eq!(reply.body["status"], "disabled");
    app.get("/api/tokens/balance", Some(&ada_token))
        .await
        .assert_problem(401);
    let (action, actor, target, details) = last_audit(&app);
    assert_eq!(
        (action.as_str(), actor, target),
        ("admin.user_disabled", Some(root.clone()), Some(ada.clone()))
    );
    assert_eq!(
        (
            details["reason"].as_str(),
            details["sessions_revoked"].as_i64()
        ),
        (Some("spam"), Some(1))
    );
    let ip: Option<String> = app
        .db()
        .query_row(
            "SELECT user_agent FROM audit_logs ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(ip, None, "the test client sends no user agent");
    cpost(
        &app,
        &format!("/admin/api/users/{ada}/disable"),
        json!({ "reason": "again" }),
        &cookie,
    )
    .await
    .assert_problem(409);
    let enabled = cpost(
        &app,
        &format!("/admin/api/users/{ada}/enable"),
        json!({}),
        &cookie,
    )
    .await;
    assert_eq!(enabled.body["status"], "active");
    app.assert_logs_in("ada@example.com", PASSWORD).await;
    // Never yourself.
    cpost(
        &app,
        &format!("/admin/api/users/{root}/disable"),
        json!({ "reason": "oops" }),
        &cookie,
    )
    .await
    .assert_problem(409);
}

#[rocket::async_test]
async fn the_role_never_changes_for_yourself_nor_the_last_admin_and_a_demotion_ends_the_console() {
    let app = spawn_app().await;
    let (cookie, token, root) = console_admin(&app).await;
    let (_, ada) = user(&app, "ada@example.com").await;
    cpost(
        &app,
        &format!("/admin/api/users/{root}/role"),
        json!({ "role": "user" }),
        &cookie,
    )
    .await
    .assert_problem(409);
    cpost(
        &app,
        &format!("/admin/api/users/{ada}/role"),
        json!({ "role": "root" }),
        &cookie,
    )
    .await
    .assert_problem(422);
    let promoted = app
        .post(
            &format!("/api/admin/users/{ada}/role"),
            json!({ "role": "admin" }),
            Some(&token),
        )
        .await;
    assert_eq!(promoted.body["role"], "admin", "{}", promoted.body);
    let (action, _, _, details) = last_audit(&app);
    assert_eq!(
        (action.as_str(), details["to"].as_str()),
        ("admin.role_changed", Some("admin"))
    );
    // Ada, now an admin, demotes root; root's console ends.
    let ada_console = cookie_of(&console_login(&app, "ada@example.com", PASSWORD).await);
    let demoted = cpost(
        &app,
        &format!("/admin/api/users/{root}/role"),
        json!({ "role": "user" }),
        &ada_console,
    )
    .await;
    assert_eq!(demoted.body["role"], "user", "{}", demoted.body);
    cget(&app, "/admin/api/me", &cookie)
        .await
        .assert_problem(401);
    // Ada is the last admin now: nobody may demote her (not even herself).
    cpost(
        &app,
        &format!("/admin/api/users/{ada}/role"),
        json!({ "role": "user" }),
        &ada_console,
    )
    .await
    .assert_problem(409);
}

#[rocket::async_test]
async fn unlock_verify_and_the_two_emails() {
    let app = spawn_app().await;
    let (cookie, _, _) = console_admin(&app).await;
    let (_, ada) = user(&app, "ada@example.com").await;
    for i in 0..5 {
        app.login("ada@example.com", &format!("wrong {i} wrong wrong"))
            .await;
    }
    let locked = cget(&app, &format!("/admin/api/users/{ada}"), &cookie).await;
    assert_eq!(locked.body["locked"], true, "{}", locked.body);
    let unlocked = cpost(
        &app,
        &format!("/admin/api/users/{ada}/unlock"),
        json!({}),
        &cookie,
    )
    .await;
    assert_eq!(unlocked.body["locked"], false);
    app.assert_logs_in("ada@example.com", PASSWORD).await;

    let sent = cpost(
        &app,
        &format!("/admin/api/users/{ada}/resend-verification"),
        json!({}),
        &cookie,
    )
    .await;
    assert_eq!(
        (sent.status, &sent.body),
        (Status::Accepted, &json!({ "sent": true }))
    );
    let (_, text) = app.last_email_to("ada@example.com").unwrap();
    assert!(text.contains("/verify-email#token="), "{text}");
    let verified = cpost(
        &app,
        &format!("/admin/api/users/{ada}/verify-email"),
        json!({}),
        &cookie,
    )
    .await;
    assert_eq!(verified.body["email_verified"], true);
    cpost(
        &app,
        &format!("/admin/api/users/{ada}/resend-verification"),
        json!({}),
        &cookie,
    )
    .await
    .assert_problem(409);
    let before: String = app
        .db()
        .query_row(
            "SELECT password_hash FROM users WHERE id = ?1",
            [&ada],
            |r| r.get(0),
        )
        .unwrap();
    let reset = cpost(
        &app,
        &format!("/admin/api/users/{ada}/password-reset"),
        json!({}),
        &cookie,
    )
    .await;
    assert_eq!(reset.status, Status::Accepted);
    let (_, text) = app.last_email_to("ada@example.com").unwrap();
    assert!(text.contains("/reset-password#token="), "{text}");
    let after: String = app
        .db()
        .query_row(
            "SELECT password_hash FROM users WHERE id = ?1",
            [&ada],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(before, after);
    let actions = app.audit_actions();
    for action in [
        "admin.user_unlocked",
        "admin.verification_resent",
        "admin.email_verified",
        "admin.password_reset_sent",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action} not audited");
    }
}

#[rocket::async_test]
async fn sessions_are_listed_and_revoked_one_or_all() {
    let app = spawn_app().await;
    let (cookie, _, _) = console_admin(&app).await;
    let (first, ada) = user(&app, "ada@example.com").await;
    let second = app.login("ada@example.com", PASSWORD).await;
    let listed = cget(&app, &format!("/admin/api/users/{ada}/sessions"), &cookie).await;
    let sessions = listed.body["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2);
    let newest = sessions[0]["id"].as_str().unwrap();
    assert_eq!(newest, second.body["session_id"]);
    let revoked = cpost(
        &app,
        &format!("/admin/api/users/{ada}/sessions/{newest}/revoke"),
        json!({}),
        &cookie,
    )
    .await;
    assert_eq!(revoked.status, Status::NoContent, "{}", revoked.body);
    app.get("/api/tokens/balance", Some(access(&second.body)))
        .await
        .assert_problem(401);
    assert_eq!(
        app.get("/api/tokens/balance", Some(&first)).await.status,
        Status::Ok
    );
    cpost(
        &app,
        &format!("/admin/api/users/{ada}/sessions/{newest}/revoke"),
        json!({}),
        &cookie,
    )
    .await
    .assert_problem(404);
    let all = cpost(
        &app,
        &format!("/admin/api/users/{ada}/sessions/revoke-all"),
        json!({}),
        &cookie,
    )
    .await;
    assert_eq!(all.body, json!({ "revoked": 1 }));
    app.get("/api/tokens/balance", Some(&first))
        .await
        .assert_problem(401);

    let activity = cget(
        &app,
        &format!("/admin/api/users/{ada}/activity?limit=2"),
        &cookie,
    )
    .await;
    assert_eq!(
        activity.body["entries"][0]["action"],
        "admin.sessions_revoked"
    );
    assert_eq!(
        activity.body["entries"][0]["actor_email"],
        "root@example.com"
    );
    let cursor = activity.body["next_cursor"].as_str().unwrap();
    let more = cget(
        &app,
        &format!("/admin/api/users/{ada}/activity?cursor={cursor}"),
        &cookie,
    )
    .await;
    assert!(
        more.body["entries"].as_array().unwrap().len() >= 2,
        "{}",
        more.body
    );
}

#[rocket::async_test]
async fn an_admin_action_is_audited_with_the_admin_their_address_and_user_agent() {
    let app = spawn_app().await;
    let (cookie, _, root) = console_admin(&app).await;
    let (_, ada) = user(&app, "ada@example.com").await;
    let request = app
        .client
        .post(format!("/admin/api/users/{ada}/verify-email"))
        .header(rocket::http::ContentType::JSON)
        .header(rocket::http::Header::new("Origin", ORIGIN))
        .header(rocket::http::Header::new("User-Agent", "console-test/1.0"))
        .header(rocket::http::Header::new(
            "Cookie",
            format!("audiostudio_admin={cookie}"),
        ))
        .remote("198.51.100.7:5000".parse().unwrap())
        .body("{}");
    assert_eq!(request.dispatch().await.status(), Status::Ok);
    let row = last_audit_row(&app);
    assert_eq!(
        row,
        (
            "admin.email_verified".into(),
            root,
            ada,
            "198.51.100.7".into(),
            "console-test/1.0".into()
        )
    );
}

/// The users a scan of every user would answer for `q`, newest first: the oracle the
/// search (which reads the newest users, then a trigram index) is held to.
fn scanned(app: &TestApp, q: &str) -> Vec<String> {
    let pattern = format!(
        "%{}%",
        q.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let db = app.db();
    let mut stmt = db
        .prepare(
            "SELECT u.id FROM users u LEFT JOIN user_profiles p ON p.user_id = u.id
             WHERE u.email LIKE ?1 ESCAPE '\\' OR p.display_name LIKE ?1 ESCAPE '\\' OR u.id = ?2
             ORDER BY u.id DESC",
        )
        .unwrap();
    stmt.query_map(rusqlite::params![pattern, q], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Every user the search answers for `q`, following `next_cursor` page by page.
async fn searched(app: &TestApp, token: &str, q: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = String::new();
    loop {
        let path = format!("/api/admin/users?limit=100&q={}{cursor}", query_value(q));
        let page = app.get(&path, Some(token)).await;
        assert_eq!(page.status, Status::Ok, "{path}: {}", page.body);
        ids.extend(
            page.body["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["id"].as_str().unwrap().to_owned()),
        );
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return ids,
        }
    }
}

/// `text` percent-encoded as a query value.
fn query_value(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[rocket::async_test]
async fn a_search_among_thousands_of_newer_users_answers_as_a_scan_of_every_user_would() {
    let app = spawn_app().await;
    let (_, token, _) = console_admin(&app).await;
    let (ada_token, ada) = user(&app, "ada@example.com").await;
    let named = app
        .put(
            "/api/auth/profile",
            json!({ "display_name": "Ada \"the countess\" 100%_sure" }),
            Some(&ada_token),
        )
        .await;
    assert_eq!(named.status, Status::Ok, "{}", named.body);
    // 2,500 users newer than Ada, more than the search reads before it asks the index.
    {
        let mut db = app.db();
        let tx = db.transaction().unwrap();
        for i in 0..2500 {
            tx.execute(
                "INSERT INTO users (id, email, password_hash, created_at, updated_at)
                 VALUES (?1, ?2, 'x', 0, 0)",
                rusqlite::params![
                    format!("fff-bulk-{i:05}"),
                    format!("bulk{i:05}@example.com")
                ],
            )
            .unwrap();
        }
        tx.execute(
            "INSERT INTO user_profiles (user_id, display_name, updated_at) VALUES ('fff-bulk-00007', 'Grace Hopper', 0)",
            [],
        )
        .unwrap();
        tx.commit().unwrap();
    }

    // The oldest user, a rare part of a name (quotes and LIKE's wildcards taken as text),
    // the oldest bulk users, a common substring over many pages, an exact id, a short text.
    for q in [
        "ada@",
        "COUNTESS",
        "\"the",
        "0%_s",
        "bulk0001",
        "hopper",
        "bulk",
        "example.com",
        ada.as_str(),
        "fff-bulk-00003",
        "a",
        "%",
        "nobody-by-this-name",
    ] {
        let expected = scanned(&app, q);
        assert_eq!(searched(&app, &token, q).await, expected, "q={q}");
    }
    assert_eq!(searched(&app, &token, "ada@").await, [ada.as_str()]);
    assert_eq!(searched(&app, &token, "0%_s").await, [ada.as_str()]);
    assert_eq!(searched(&app, &token, "bulk0001").await.len(), 10);
    assert_eq!(searched(&app, &token, "bulk").await.len(), 2500);

    // A renamed user, a changed email and a deleted user are found as they are now.
    let renamed = app
        .put(
            "/api/auth/profile",
            json!({ "display_name": "Lovelace" }),
            Some(&ada_token),
        )
        .await;
    assert_eq!(renamed.status, Status::Ok, "{}", renamed.body);
    let db = app.db();
    db.execute(
        "UPDATE users SET email = 'grace@navy.example' WHERE id = 'fff-bulk-00007'",
        [],
    )
    .unwrap();
    db.execute("DELETE FROM users WHERE id = 'fff-bulk-00015'", [])
        .unwrap();
    assert_eq!(searched(&app, &token, "lovelace").await, [ada.as_str()]);
    assert!(searched(&app, &token, "countess").await.is_empty());
    assert_eq!(searched(&app, &token, "navy.ex").await, ["fff-bulk-00007"]);
    assert!(searched(&app, &token, "bulk00007").await.is_empty());
    assert_eq!(searched(&app, &token, "bulk0001").await.len(), 9);
    for q in ["bulk0001", "hopper", "grace", "bulk", "lovelace"] {
        assert_eq!(searched(&app, &token, q).await, scanned(&app, q), "q={q}");
    }
}
