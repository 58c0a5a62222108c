//! Account flows end to end through the API: success and failure.

use rocket::http::Status;
use serde_json::json;

use crate::helpers::*;

#[rocket::async_test]
async fn registering_logs_the_user_in_and_queues_a_verification_email() {
    let app = spawn_app().await;
    let reply = app
        .post(
            "/api/auth/register",
            json!({ "email": " Ada@Example.com ", "password": PASSWORD, "display_name": "Ada 🎧" }),
            None,
        )
        .await;
    assert_eq!(reply.status, Status::Created, "{}", reply.body);
    let body = &reply.body;
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert_eq!(body["user"]["display_name"], "Ada 🎧");
    assert_eq!(body["user"]["role"], "user");
    assert_eq!(body["user"]["email_verified"], false);
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["token_type"], "Bearer");
    assert!(refresh(body).len() >= 43, "refresh token carries 256 bits");

    let profile = app.get("/api/auth/profile", Some(access(body))).await;
    assert_eq!(profile.status, Status::Ok);
    assert_eq!(profile.body["email"], "ada@example.com");
    assert_eq!(profile.body["preferences"], json!({}));

    let (subject, text) = app.last_email_to("ada@example.com").unwrap();
    assert_eq!(subject, "Confirm your email address");
    assert!(
        text.contains("https://studio.example.com/verify-email#token="),
        "{text}"
    );
    assert_eq!(app.audit_actions(), ["user.registered"]);
    // The password is stored only as an argon2id PHC string.
    let stored: String = app
        .db()
        .query_row("SELECT password_hash FROM users", [], |r| r.get(0))
        .unwrap();
    assert!(stored.starts_with("$argon2id$v=19$"));
}

#[rocket::async_test]
async fn a_taken_email_is_a_conflict_whatever_its_case() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let reply = app
        .post(
            "/api/auth/register",
            json!({ "email": "ADA@example.com", "password": PASSWORD }),
            None,
        )
        .await;
    reply.assert_problem(409);
    assert_eq!(app.count("SELECT COUNT(*) FROM users"), 1);
}

#[rocket::async_test]
async fn weak_passwords_are_refused_with_a_field_error() {
    let app = spawn_app().await;
    for password in ["short", "password123", "iloveyou", &"x".repeat(129)] {
        let reply = app
            .post(
                "/api/auth/register",
                json!({ "email": "ada@example.com", "password": password }),
                None,
            )
            .await;
        reply.assert_problem(422);
        assert!(
            reply.body["errors"]["password"][0].is_string(),
            "{}",
            reply.body
        );
    }
    // Unicode counts characters, not bytes, and there are no composition rules.
    let reply = app
        .post(
            "/api/auth/register",
            json!({ "email": "ada@example.com", "password": "ééééééééé" }),
            None,
        )
        .await;
    assert_eq!(reply.status, Status::Created, "{}", reply.body);
}

#[rocket::async_test]
async fn unknown_email_and_wrong_password_get_the_same_answer() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let wrong = app.login("ada@example.com", "not the password").await;
    let unknown = app.login("nobody@example.com", PASSWORD).await;
    wrong.assert_problem(401);
    unknown.assert_problem(401);
    for field in ["type", "title", "detail", "status"] {
        assert_eq!(wrong.body[field], unknown.body[field]);
    }
    let ok = app.login("ADA@example.com", PASSWORD).await;
    assert_eq!(ok.status, Status::Ok);
    assert_eq!(ok.body["user"]["email"], "ada@example.com");
    let actions = app.audit_actions();
    assert_eq!(
        actions.iter().filter(|a| *a == "auth.login_failed").count(),
        2
    );
    assert!(actions.contains(&"auth.login".to_owned()));
}

#[rocket::async_test]
async fn login_rehashes_a_password_stored_with_old_parameters() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    // Pretend the hash was made with weaker settings than today's.
    let weak = argon2::Params::new(512, 1, 1, None).unwrap();
    let old = audiostudio::auth::password::hash_blocking(&weak, PASSWORD).unwrap();
    app.db()
        .execute("UPDATE users SET password_hash = ?1", [&old])
        .unwrap();
    app.assert_logs_in("ada@example.com", PASSWORD).await;
    let stored: String = app
        .db()
        .query_row("SELECT password_hash FROM users", [], |r| r.get(0))
        .unwrap();
    assert!(stored.contains("m=1024,t=1,p=1"), "{stored}");
    app.assert_logs_in("ada@example.com", PASSWORD).await;
}

#[rocket::async_test]
async fn refresh_rotates_and_a_reused_token_revokes_the_session() {
    let app = spawn_app().await;
    let first = app.register("ada@example.com").await;
    let second = app
        .post(
            "/api/auth/refresh",
            json!({ "refresh_token": refresh(&first) }),
            None,
        )
        .await;
    assert_eq!(second.status, Status::Ok, "{}", second.body);
    assert_ne!(refresh(&second.body), refresh(&first));
    assert_eq!(
        app.get("/api/auth/profile", Some(access(&second.body)))
            .await
            .status,
        Status::Ok
    );

    // A second tab presenting the same token a moment later still gets a pair.
    let tab = app
        .post(
            "/api/auth/refresh",
            json!({ "refresh_token": refresh(&first) }),
            None,
        )
        .await;
    assert_eq!(tab.status, Status::Ok, "{}", tab.body);

    // Long after, the rotated token is a sign of theft: the whole session ends.
    app.clock.advance_secs(60);
    let reused = app
        .post(
            "/api/auth/refresh",
            json!({ "refresh_token": refresh(&first) }),
            None,
        )
        .await;
    reused.assert_problem(401);
    assert!(reused.body["detail"].as_str().unwrap().contains("revoked"));
    let latest = app
        .post(
            "/api/auth/refresh",
            json!({ "refresh_token": refresh(&tab.body) }),
            None,
        )
        .await;
    latest.assert_problem(401);
    app.get("/api/auth/profile", Some(access(&tab.body)))
        .await
        .assert_problem(401);
    assert!(
        app.audit_actions()
            .contains(&"auth.refresh_token_reused".to_owned())
    );
    // The refresh token is stored only as a hash.
    let plain = refresh(&tab.body).to_owned();
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM refresh_tokens WHERE token_hash = '{plain}'"
        )),
        0
    );
}

#[rocket::async_test]
async fn an_unknown_refresh_token_is_refused() {
    let app = spawn_app().await;
    app.post(
        "/api/auth/refresh",
        json!({ "refresh_token": "made-up" }),
        None,
    )
    .await
    .assert_problem(401);
}

#[rocket::async_test]
async fn logout_stops_the_access_token_at_once() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com").await;
    let reply = app
        .send(
            "POST",
            "/api/auth/logout",
            None,
            Some(access(&session)),
            None,
        )
        .await;
    assert_eq!(reply.status, Status::NoContent);
    app.get("/api/auth/profile", Some(access(&session)))
        .await
        .assert_problem(401);
    app.post(
        "/api/auth/refresh",
        json!({ "refresh_token": refresh(&session) }),
        None,
    )
    .await
    .assert_problem(401);
    assert!(app.audit_actions().contains(&"auth.logout".to_owned()));
}

#[rocket::async_test]
async fn sessions_can_be_listed_and_revoked_one_by_one_or_all_at_once() {
    let app = spawn_app().await;
    let phone = app.register("ada@example.com").await;
    let laptop = app.login("ada@example.com", PASSWORD).await.body;
    let other = app.register("bob@example.com").await;

    let list = app.get("/api/auth/sessions", Some(access(&laptop))).await;
    assert_eq!(list.status, Status::Ok);
    let sessions = list.body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0]["id"], laptop["session_id"]);
    assert_eq!(sessions[0]["current"], true);
    assert_eq!(sessions[1]["current"], false);

    // Someone else's session is invisible.
    let path = format!(
        "/api/auth/sessions/{}",
        other["session_id"].as_str().unwrap()
    );
    app.send("DELETE", &path, None, Some(access(&laptop)), None)
        .await
        .assert_problem(404);
    app.send(
        "DELETE",
        "/api/auth/sessions/nope",
        None,
        Some(access(&laptop)),
        None,
    )
    .await
    .assert_problem(404);

    let path = format!(
        "/api/auth/sessions/{}",
        phone["session_id"].as_str().unwrap()
    );
    assert_eq!(
        app.send("DELETE", &path, None, Some(access(&laptop)), None)
            .await
            .status,
        Status::NoContent
    );
    app.get("/api/auth/profile", Some(access(&phone)))
        .await
        .assert_problem(401);
    assert_eq!(
        app.get("/api/auth/profile", Some(access(&laptop)))
            .await
            .status,
        Status::Ok
    );

    let all = app
        .send(
            "POST",
            "/api/auth/logout-all",
            None,
            Some(access(&laptop)),
            None,
        )
        .await;
    assert_eq!(all.status, Status::Ok);
    assert_eq!(all.body["sessions_revoked"], 1);
    app.get("/api/auth/profile", Some(access(&laptop)))
        .await
        .assert_problem(401);
    assert_eq!(
        app.get("/api/auth/profile", Some(access(&other)))
            .await
            .status,
        Status::Ok
    );
}

#[rocket::async_test]
async fn the_profile_can_be_edited_within_its_limits() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com").await;
    let token = access(&session);
    let update = json!({
        "display_name": "Ada Lovelace",
        "bio": "Writes music with 🤖",
        "avatar_url": "https://cdn.example.com/ada.png",
        "preferences": { "theme": "dark", "sample_rate": 48000 }
    });
    let reply = app.put("/api/auth/profile", update, Some(token)).await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    let profile = app.get("/api/auth/profile", Some(token)).await.body;
    assert_eq!(profile["display_name"], "Ada Lovelace");
    assert_eq!(profile["bio"], "Writes music with 🤖");
    assert_eq!(profile["avatar_url"], "https://cdn.example.com/ada.png");
    assert_eq!(profile["preferences"]["sample_rate"], 48000);

    // Absent fields stay; an empty string clears.
    let reply = app
        .put("/api/auth/profile", json!({ "bio": "" }), Some(token))
        .await;
    assert_eq!(reply.body["bio"], serde_json::Value::Null);
    assert_eq!(reply.body["display_name"], "Ada Lovelace");

    let bad = json!({
        "display_name": "x".repeat(101),
        "bio": "y".repeat(1001),
        "avatar_url": "javascript:alert(1)",
        "preferences": ["not", "an", "object"]
    });
    let reply = app.put("/api/auth/profile", bad, Some(token)).await;
    reply.assert_problem(422);
    for field in ["display_name", "bio", "avatar_url", "preferences"] {
        assert!(
            reply.body["errors"][field].is_array(),
            "{field}: {}",
            reply.body
        );
    }
    let huge = json!({ "preferences": { "blob": "z".repeat(20_000) } });
    let reply = app.put("/api/auth/profile", huge, Some(token)).await;
    reply.assert_problem(422);
    assert!(reply.body["errors"]["preferences"].is_array());
    assert_eq!(
        app.get("/api/auth/profile", Some(token)).await.body["display_name"],
        "Ada Lovelace"
    );
}

#[rocket::async_test]
async fn changing_the_password_logs_out_every_other_session() {
    let app = spawn_app().await;
    let other = app.register("ada@example.com").await;
    let current = app.login("ada@example.com", PASSWORD).await.body;
    let wrong = app
        .post(
            "/api/auth/change-password",
            json!({ "current_password": "nope nope nope", "new_password": "a brand new secret" }),
            Some(access(&current)),
        )
        .await;
    wrong.assert_problem(422);
    assert!(wrong.body["errors"]["current_password"].is_array());
    let weak = app
        .post(
            "/api/auth/change-password",
            json!({ "current_password": PASSWORD, "new_password": "password" }),
            Some(access(&current)),
        )
        .await;
    weak.assert_problem(422);

    let reply = app
        .post(
            "/api/auth/change-password",
            json!({ "current_password": PASSWORD, "new_password": "a brand new secret" }),
            Some(access(&current)),
        )
        .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    assert_eq!(reply.body["sessions_revoked"], 1);
    app.get("/api/auth/profile", Some(access(&other)))
        .await
        .assert_problem(401);
    assert_eq!(
        app.get("/api/auth/profile", Some(access(&current)))
            .await
            .status,
        Status::Ok
    );
    app.login("ada@example.com", PASSWORD)
        .await
        .assert_problem(401);
    assert_eq!(
        app.login("ada@example.com", "a brand new secret")
            .await
            .status,
        Status::Ok
    );
    assert!(
        app.audit_actions()
            .contains(&"auth.password_changed".to_owned())
    );
}

#[rocket::async_test]
async fn password_reset_works_once_and_looks_the_same_for_unknown_emails() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com").await;
    let emails_before = app.count("SELECT COUNT(*) FROM email_outbox");

    let unknown = app
        .post(
            "/api/auth/request-password-reset",
            json!({ "email": "nobody@example.com" }),
            None,
        )
        .await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM email_outbox"),
        emails_before
    );
    let known = app
        .post(
            "/api/auth/request-password-reset",
            json!({ "email": "ada@example.com" }),
            None,
        )
        .await;
    assert_eq!(known.status, Status::Accepted);
    assert_eq!(unknown.status, known.status);
    assert_eq!(unknown.body, known.body);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM email_outbox"),
        emails_before + 1
    );

    let (subject, _) = app.last_email_to("ada@example.com").unwrap();
    assert_eq!(subject, "Reset your password");
    let token = app.token_from_last_email("ada@example.com");

    // A reset token is not an access token.
    app.get("/api/auth/profile", Some(&token))
        .await
        .assert_problem(401);

    let reply = app
        .post(
            "/api/auth/reset-password",
            json!({ "token": token, "new_password": "a brand new secret" }),
            None,
        )
        .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    app.get("/api/auth/profile", Some(access(&session)))
        .await
        .assert_problem(401);
    assert_eq!(
        app.login("ada@example.com", "a brand new secret")
            .await
            .status,
        Status::Ok
    );

    let again = app
        .post(
            "/api/auth/reset-password",
            json!({ "token": token, "new_password": "yet another secret" }),
            None,
        )
        .await;
    again.assert_problem(422);
    assert!(again.body["errors"]["token"].is_array());
    assert_eq!(
        app.login("ada@example.com", "a brand new secret")
            .await
            .status,
        Status::Ok
    );
    let actions = app.audit_actions();
    assert!(actions.contains(&"auth.password_reset_requested".to_owned()));
    assert!(actions.contains(&"auth.password_reset_completed".to_owned()));
}

#[rocket::async_test]
async fn a_reset_token_expires_after_thirty_minutes() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    app.post(
        "/api/auth/request-password-reset",
        json!({ "email": "ada@example.com" }),
        None,
    )
    .await;
    let token = app.token_from_last_email("ada@example.com");
    app.clock.advance_secs(31 * 60);
    app.post(
        "/api/auth/reset-password",
        json!({ "token": token, "new_password": "a brand new secret" }),
        None,
    )
    .await
    .assert_problem(422);
    app.assert_logs_in("ada@example.com", PASSWORD).await;
}

#[rocket::async_test]
async fn email_verification_uses_the_emailed_token_once() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com").await;
    let token = app.token_from_last_email("ada@example.com");
    app.get("/api/auth/profile", Some(&token))
        .await
        .assert_problem(401);

    // Asking again right away is throttled.
    let soon = app
        .send(
            "POST",
            "/api/auth/resend-verification",
            None,
            Some(access(&session)),
            None,
        )
        .await;
    soon.assert_problem(429);
    assert!(soon.header("retry-after").is_some());
    app.clock.advance_secs(61);
    let resent = app
        .send(
            "POST",
            "/api/auth/resend-verification",
            None,
            Some(access(&session)),
            None,
        )
        .await;
    assert_eq!(resent.status, Status::Accepted);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM email_outbox WHERE subject = 'Confirm your email address'"),
        2
    );

    let reply = app
        .post("/api/auth/verify-email", json!({ "token": token }), None)
        .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    assert_eq!(
        app.get("/api/auth/profile", Some(access(&session)))
            .await
            .body["email_verified"],
        true
    );
    app.post("/api/auth/verify-email", json!({ "token": token }), None)
        .await
        .assert_problem(422);
    app.clock.advance_secs(61);
    app.send(
        "POST",
        "/api/auth/resend-verification",
        None,
        Some(access(&session)),
        None,
    )
    .await
    .assert_problem(409);
    assert!(
        app.audit_actions()
            .contains(&"auth.email_verified".to_owned())
    );
}

#[rocket::async_test]
async fn only_admins_list_users_page_by_page() {
    let app = spawn_app().await;
    let admin = app.register("root@example.com").await;
    app.promote(admin["user"]["id"].as_str().unwrap());
    for i in 0..5 {
        app.register(&format!("user{i}@example.com")).await;
    }
    let user = app.login("user1@example.com", PASSWORD).await.body;
    app.get("/api/admin/users", Some(access(&user)))
        .await
        .assert_problem(403);
    app.get("/api/admin/users", None).await.assert_problem(401);

    let token = access(&admin);
    let first = app.get("/api/admin/users?limit=4", Some(token)).await;
    assert_eq!(first.status, Status::Ok, "{}", first.body);
    let emails: Vec<&str> = first.body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        [
            "user4@example.com",
            "user3@example.com",
            "user2@example.com",
            "user1@example.com"
        ]
    );
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = app
        .get(
            &format!("/api/admin/users?limit=4&cursor={cursor}"),
            Some(token),
        )
        .await;
    let emails: Vec<&str> = second.body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["user0@example.com", "root@example.com"]);
    assert!(second.body["next_cursor"].is_null());

    let search = app.get("/api/admin/users?email=USER3", Some(token)).await;
    assert_eq!(search.body["users"].as_array().unwrap().len(), 1);
    let wildcard = app.get("/api/admin/users?email=%25", Some(token)).await;
    assert_eq!(
        wildcard.body["users"].as_array().unwrap().len(),
        0,
        "% is matched literally"
    );
    app.get("/api/admin/users?limit=0", Some(token))
        .await
        .assert_problem(422);
    app.get("/api/admin/users?limit=abc", Some(token))
        .await
        .assert_problem(422);
}

#[rocket::async_test]
async fn health_reports_version_and_schema() {
    let app = spawn_app().await;
    let reply = app.get("/health", None).await;
    assert_eq!(reply.status, Status::Ok);
    assert_eq!(reply.body["status"], "ok");
    assert_eq!(reply.body["schema_version"], latest_migration());
    assert_eq!(reply.body["database_reachable"], true);
    // The version is for admins only (tests/api/security_http.rs).
    let (admin_token, _) = admin(&app).await;
    let reply = app.get("/health", Some(&admin_token)).await;
    assert_eq!(reply.body["version"], env!("CARGO_PKG_VERSION"));
}

#[rocket::async_test]
async fn health_turns_degraded_within_a_second_when_the_database_cannot_be_read() {
    let app = spawn_app().await;
    assert_eq!(app.get("/health", None).await.status, Status::Ok);
    let rename = |from: &str, to: &str| {
        app.db()
            .execute_batch(&format!("ALTER TABLE {from} RENAME TO {to}"))
            .unwrap();
    };
    rename("refinery_schema_history", "schema_history_away");
    // A successful probe answers for up to a second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let reply = app.get("/health", None).await;
    assert_eq!(reply.status, Status::ServiceUnavailable, "{}", reply.body);
    assert_eq!(reply.body["status"], "degraded");
    assert_eq!(reply.body["database_reachable"], false);
    assert!(reply.body["schema_version"].is_null(), "{}", reply.body);
    // A failed probe is never reused: the recovery shows on the next request.
    rename("schema_history_away", "refinery_schema_history");
    let reply = app.get("/health", None).await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    assert_eq!(reply.body["schema_version"], latest_migration());
}

#[rocket::async_test]
async fn responses_carry_request_ids_and_security_headers() {
    let app = spawn_app().await;
    let reply = app.get("/nowhere", None).await;
    reply.assert_problem(404);
    let id = reply.header("x-request-id").unwrap().to_owned();
    assert_eq!(reply.body["request_id"], id.as_str());

    let request = app
        .client
        .get("/api/auth/profile")
        .header(rocket::http::Header::new("X-Request-Id", "trace-abc-123"));
    let reply = Reply::from(request.dispatch().await).await;
    reply.assert_problem(401);
    assert_eq!(reply.header("x-request-id"), Some("trace-abc-123"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(reply.header("x-frame-options"), Some("DENY"));
    assert!(
        reply
            .header("content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));

    let admin = app.get("/admin", None).await;
    assert_eq!(admin.status, Status::Ok);
    assert_eq!(admin.header("x-frame-options"), Some("DENY"));
}

#[rocket::async_test]
async fn the_openapi_document_describes_every_route() {
    let app = spawn_app().await;
    let doc = app.get("/api/openapi.json", None).await;
    assert_eq!(doc.status, Status::Ok);
    let paths = doc.body["paths"].as_object().unwrap();
    let param = regex::Regex::new(r"<(\w+)>").unwrap();
    for route in app.client.rocket().routes() {
        let path = route.uri.path().to_string();
        // `/api/<_..>`: the gates that answer 415 to bodies that are not JSON and 422 to
        // repeated query parameters; `/<_..>`: the OPTIONS fallback (no operation of its own).
        if path.starts_with("/api/docs")
            || path.starts_with("/admin")
            || path == "/api/openapi.json"
            || path == "/api/<_..>"
            || path == "/<_..>"
        {
            continue;
        }
        let path = param.replace_all(&path, "{$1}").into_owned();
        let method = route.method.as_str().to_ascii_lowercase();
        let op = &paths.get(&path).unwrap_or_else(|| panic!("{path} missing"))[&method];
        assert!(op.is_object(), "{method} {path} missing");
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|k| k.starts_with('2')),
            "{path}: no success response"
        );
        if path != "/health" {
            assert!(
                responses.keys().any(|k| k.starts_with('4')),
                "{path}: no error response"
            );
        }
    }
    assert!(doc.body["components"]["schemas"]["Problem"].is_object());
    let docs = app.get("/api/docs/", None).await;
    assert_eq!(docs.status, Status::Ok);
}

#[rocket::async_test]
async fn two_tabs_refreshing_at_once_both_stay_logged_in() {
    let app = spawn_app().await;
    let start = app.register("ada@example.com").await;
    let token = json!({ "refresh_token": refresh(&start) });
    let tab_a = app.post("/api/auth/refresh", token.clone(), None).await;
    let tab_b = app.post("/api/auth/refresh", token, None).await;
    assert_eq!(tab_a.status, Status::Ok);
    assert_eq!(tab_b.status, Status::Ok);
    app.clock.advance_secs(600);
    for tab in [&tab_a, &tab_b] {
        let next = app
            .post(
                "/api/auth/refresh",
                json!({ "refresh_token": refresh(&tab.body) }),
                None,
            )
            .await;
        assert_eq!(next.status, Status::Ok, "{}", next.body);
        assert_eq!(
            app.get("/api/auth/profile", Some(access(&next.body)))
                .await
                .status,
            Status::Ok
        );
    }
}

#[rocket::async_test]
async fn reset_emails_to_one_account_are_spaced_out_without_telling_the_caller() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let request = || {
        app.post(
            "/api/auth/request-password-reset",
            json!({ "email": "ada@example.com" }),
            None,
        )
    };
    let first = request().await;
    let second = request().await;
    assert_eq!((first.status, &first.body), (second.status, &second.body));
    let resets = "SELECT COUNT(*) FROM email_outbox WHERE subject = 'Reset your password'";
    assert_eq!(app.count(resets), 1);
    app.clock.advance_secs(61);
    request().await;
    assert_eq!(app.count(resets), 2);
}

#[rocket::async_test]
async fn guessing_the_current_password_counts_toward_the_lockout() {
    let app = spawn_app_with(|f| {
        f.merge(rocket::figment::providers::Serialized::global(
            "login_max_failures",
            2,
        ))
    })
    .await;
    let session = app.register("ada@example.com").await;
    let guess =
        json!({ "current_password": "a wrong guess", "new_password": "a brand new secret" });
    for _ in 0..2 {
        app.post(
            "/api/auth/change-password",
            guess.clone(),
            Some(access(&session)),
        )
        .await
        .assert_problem(422);
    }
    let right = json!({ "current_password": PASSWORD, "new_password": "a brand new secret" });
    app.post("/api/auth/change-password", right, Some(access(&session)))
        .await
        .assert_problem(429);
    app.login("ada@example.com", PASSWORD)
        .await
        .assert_problem(429);
    assert!(
        app.audit_actions()
            .contains(&"auth.password_change_failed".to_owned())
    );
}
