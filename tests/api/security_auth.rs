//! The attacks of issue 10 on login, lockout, sessions and credentials, replayed.

use rocket::figment::providers::Serialized;
use rocket::futures::future::join_all;
use rocket::http::Status;
use serde_json::{Value, json};

use crate::helpers::*;

/// What a client can tell about a reply: status, body and headers, without the ids
/// that differ on every request.
fn observable(reply: &Reply) -> (u16, Value, Vec<(String, String)>) {
    let mut body = reply.body.clone();
    if let Some(object) = body.as_object_mut() {
        object.remove("request_id");
    }
    let mut headers: Vec<_> = reply
        .headers
        .iter()
        // `RateLimit` counts the client address's login requests, whatever the account.
        .filter(|(name, _)| name != "x-request-id" && name != "ratelimit")
        .cloned()
        .collect();
    headers.sort();
    (reply.status.code, body, headers)
}

fn login_body(email: &str, password: &str) -> String {
    json!({ "email": email, "password": password }).to_string()
}

/// Logins that reached the password check: every one ends in a success or a failure row.
fn verified_logins(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM audit_logs WHERE action IN ('auth.login', 'auth.login_failed')")
}

/// `count` wrong passwords for `email`, each answered 401 (the last one locks it when
/// the window holds 5 attempts).
async fn guess_wrong(app: &TestApp, email: &str, count: usize) {
    for i in 0..count {
        let body = login_body(email, &format!("wrong guess {i}"));
        app.send(
            "POST",
            "/api/auth/login",
            Some(&body),
            None,
            Some("203.0.113.9"),
        )
        .await
        .assert_problem(401);
    }
}

// Item 1: 40 simultaneous guesses from 40 addresses, the right password last. Before the
// fix all 40 were verified and the right one answered differently from the wrong ones.
#[rocket::async_test]
async fn simultaneous_guesses_are_counted_before_they_are_checked() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let guesses: Vec<(String, String)> = (0..40)
        .map(|i| {
            let password = if i == 39 {
                PASSWORD.to_owned()
            } else {
                format!("wrong guess {i}")
            };
            (
                login_body("ada@example.com", &password),
                format!("10.1.0.{i}"),
            )
        })
        .collect();
    let replies = join_all(
        guesses
            .iter()
            .map(|(body, ip)| app.send("POST", "/api/auth/login", Some(body), None, Some(ip))),
    )
    .await;

    let verified = verified_logins(&app);
    assert!(
        verified <= 5,
        "{verified} guesses were checked against a limit of 5"
    );
    let refused: Vec<&Reply> = replies.iter().filter(|r| r.status.code == 429).collect();
    assert_eq!(refused.len() as i64, 40 - verified);
    refused[0].assert_problem(429);
    let reference = observable(refused[0]);
    for reply in &refused {
        assert_eq!(observable(reply), reference);
    }
    let right = &replies[39];
    assert_eq!(
        observable(right),
        reference,
        "the right password stands out"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions"),
        1,
        "only the registration's session"
    );
}

// Items 1 and 5: once locked, the right password, a wrong one and an email without an
// account (locked by its own failures) all get the same answer. Before the fix the
// unknown email answered 401 forever.
#[rocket::async_test]
async fn a_locked_account_and_an_unknown_email_answer_alike() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    let before_ada = app.login("ada@example.com", "wrong guess").await;
    let before_ghost = app.login("ghost@example.com", "wrong guess").await;
    assert_eq!(observable(&before_ada), observable(&before_ghost));
    guess_wrong(&app, "ada@example.com", 4).await;
    guess_wrong(&app, "ghost@example.com", 4).await;

    let right = app.login("ada@example.com", PASSWORD).await;
    right.assert_problem(429);
    let reference = observable(&right);
    assert_eq!(
        observable(&app.login("ada@example.com", "wrong guess").await),
        reference
    );
    assert_eq!(
        observable(&app.login("ghost@example.com", PASSWORD).await),
        reference
    );
    assert_eq!(
        observable(&app.login("Ghost@Example.com ", "x").await),
        reference
    );

    // Both locks end together, and the owner gets in again.
    app.clock.advance_secs(901);
    app.assert_logs_in("ada@example.com", PASSWORD).await;
    app.login("ghost@example.com", "wrong guess")
        .await
        .assert_problem(401);
}

// Item 1: change-password shares the count and gets the same reservation.
#[rocket::async_test]
async fn simultaneous_change_password_guesses_are_counted_too() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com").await;
    let token = access(&session).to_owned();
    let bodies: Vec<String> = (0..20)
        .map(|i| {
            json!({ "current_password": format!("wrong guess {i}"), "new_password": "another fine passphrase" })
                .to_string()
        })
        .collect();
    let replies = join_all(bodies.iter().map(|body| {
        app.send(
            "POST",
            "/api/auth/change-password",
            Some(body),
            Some(&token),
            None,
        )
    }))
    .await;
    let checked =
        app.count("SELECT COUNT(*) FROM audit_logs WHERE action = 'auth.password_change_failed'");
    assert!(
        checked <= 5,
        "{checked} guesses were checked against a limit of 5"
    );
    assert_eq!(
        replies.iter().filter(|r| r.status.code == 429).count() as i64,
        20 - checked
    );
    app.login("ada@example.com", PASSWORD)
        .await
        .assert_problem(429);
}

// Item 7: the lock stays global, but its owner is emailed a link that lifts it.
#[rocket::async_test]
async fn the_owner_of_a_locked_account_can_lift_the_lock_by_email() {
    let app = spawn_app().await;
    app.register("ada@example.com").await;
    guess_wrong(&app, "ada@example.com", 5).await;
    guess_wrong(&app, "ghost@example.com", 5).await;
    let (subject, text) = app.last_email_to("ada@example.com").expect("an email");
    assert!(subject.contains("locked"), "{subject}");
    assert!(
        text.contains("https://studio.example.com/unlock-account#token="),
        "{text}"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM email_outbox WHERE subject LIKE '%locked%'"),
        1
    );
    assert!(app.last_email_to("ghost@example.com").is_none());

    let token = app.token_from_last_email("ada@example.com");
    let last = if token.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &token[..token.len() - 1]);
    let unlock =
        |token: &str| app.post("/api/auth/unlock-account", json!({ "token": token }), None);
    unlock(&forged).await.assert_problem(422);
    let reply = unlock(&token).await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    app.assert_logs_in("ada@example.com", PASSWORD).await;
    // Used once; it does not lift a later lock either.
    unlock(&token).await.assert_problem(422);
    app.clock.advance_secs(1);
    guess_wrong(&app, "ada@example.com", 5).await;
    unlock(&token).await.assert_problem(422);
    assert!(
        app.audit_actions()
            .contains(&"auth.account_unlocked".to_owned())
    );
}

// Item 8: 20 exchanges of one refresh token inside the grace window used to give 20
// live branches; now they share one successor, and a later reuse revokes the session.
#[rocket::async_test]
async fn exchanges_inside_the_grace_window_share_one_successor() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com").await;
    let first = refresh(&session).to_owned();
    let body = json!({ "refresh_token": first }).to_string();
    let replies =
        join_all((0..20).map(|_| app.send("POST", "/api/auth/refresh", Some(&body), None, None)))
            .await;
    let successors: std::collections::BTreeSet<String> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, Status::Ok, "{}", r.body);
            refresh(&r.body).to_owned()
        })
        .collect();
    assert_eq!(successors.len(), 1, "{successors:?}");
    assert_eq!(app.count("SELECT COUNT(*) FROM refresh_tokens"), 2);
    let successor = successors.into_iter().next().unwrap();

    app.clock.advance_secs(11);
    app.post("/api/auth/refresh", json!({ "refresh_token": first }), None)
        .await
        .assert_problem(401);
    app.post(
        "/api/auth/refresh",
        json!({ "refresh_token": successor }),
        None,
    )
    .await
    .assert_problem(401);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE revoked_reason = 'refresh_token_reuse'"),
        1
    );
}

// Item 9: a session nobody refreshes for `session_idle_timeout_secs` ends.
#[rocket::async_test]
async fn an_idle_session_ends() {
    let app =
        spawn_app_with(|f| f.merge(Serialized::global("session_idle_timeout_secs", 3600))).await;
    let session = app.register("ada@example.com").await;
    let mut token = refresh(&session).to_owned();
    for _ in 0..3 {
        app.clock.advance_secs(3000);
        let reply = app
            .post("/api/auth/refresh", json!({ "refresh_token": token }), None)
            .await;
        assert_eq!(reply.status, Status::Ok, "{}", reply.body);
        token = refresh(&reply.body).to_owned();
    }
    app.clock.advance_secs(3601);
    app.post("/api/auth/refresh", json!({ "refresh_token": token }), None)
        .await
        .assert_problem(401);
}

#[rocket::async_test]
async fn an_idle_timeout_shorter_than_an_access_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let figment =
        test_figment(dir.path()).merge(Serialized::global("session_idle_timeout_secs", 60));
    let deps = audiostudio::Deps {
        clock: ManualClock::starting_now(),
        event_handler: None,
    };
    let Err(error) = audiostudio::build(figment, deps) else {
        panic!("an idle timeout of 60 s was accepted");
    };
    assert!(
        format!("{error:#}").contains("session_idle_timeout_secs"),
        "{error:#}"
    );
}

fn assert_field_refused(reply: &Reply, field: &str) {
    reply.assert_problem(422);
    assert!(reply.body["errors"][field].is_array(), "{}", reply.body);
}

// Item 9: passwords made of the email, and all-whitespace ones, are refused everywhere.
#[rocket::async_test]
async fn passwords_built_from_the_email_or_of_whitespace_are_refused() {
    let app = spawn_app().await;
    let email = "ada.lovelace@example.com";
    for password in [
        email,
        "ADA.LOVELACE@EXAMPLE.COM",
        "ada.lovelace 1815",
        "                ",
    ] {
        let reply = app
            .post(
                "/api/auth/register",
                json!({ "email": email, "password": password }),
                None,
            )
            .await;
        assert_field_refused(&reply, "password");
    }
    let session = app.register(email).await;
    let change = json!({ "current_password": PASSWORD, "new_password": "I am ada.lovelace!" });
    let reply = app
        .post("/api/auth/change-password", change, Some(access(&session)))
        .await;
    assert_field_refused(&reply, "new_password");

    app.post(
        "/api/auth/request-password-reset",
        json!({ "email": email }),
        None,
    )
    .await;
    let token = app.token_from_last_email(email);
    let reset = json!({ "token": token, "new_password": "my mail: ada.lovelace@example.com" });
    assert_field_refused(
        &app.post("/api/auth/reset-password", reset, None).await,
        "new_password",
    );
    let reset = json!({ "token": token, "new_password": "a genuinely new passphrase" });
    let reply = app.post("/api/auth/reset-password", reset, None).await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
}

// Item 9: addresses the RFC 5322 grammar refuses are refused.
#[rocket::async_test]
async fn addresses_outside_the_grammar_are_refused() {
    let app = spawn_app().await;
    for email in [
        "local.@example.com",
        ".local@example.com",
        "a..b@example.com",
        "ada@-example.com",
    ] {
        let reply = app
            .post(
                "/api/auth/register",
                json!({ "email": email, "password": PASSWORD }),
                None,
            )
            .await;
        assert_field_refused(&reply, "email");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM users"), 0);
}

// Item 10: what is typed into the email field of a failed login (often a password) is
// not kept in the audit log; a digest is, so repeated attempts still correlate.
#[rocket::async_test]
async fn a_typed_unknown_email_is_not_kept_verbatim() {
    let app = spawn_app().await;
    for _ in 0..2 {
        app.login("Tr0ub4dor&3-secret", "whatever")
            .await
            .assert_problem(401);
    }
    let details: Vec<String> =
        app.column("SELECT details FROM audit_logs WHERE action = 'auth.login_failed' ORDER BY id");
    assert_eq!(details.len(), 2);
    assert!(
        details
            .iter()
            .all(|d| !d.to_lowercase().contains("tr0ub4dor")),
        "{details:?}"
    );
    assert_eq!(details[0], details[1]);
    assert!(details[0].contains("email_digest"), "{}", details[0]);
}
