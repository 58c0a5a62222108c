//! The token ledger through the API: spends, lots, expiry, holds, idempotency, admin grants.

use audiostudio::tokens::ledger::{self, Grant, Source};
use rocket::figment::providers::Serialized;
use rocket::http::Status;
use serde_json::{Value, json};

use crate::helpers::*;

/// Grants `amount` tokens to the user of `session`, expiring in `expires_in_secs` if given.
async fn grant(
    app: &TestApp,
    session: &Value,
    amount: i64,
    expires_in_secs: Option<i64>,
    reference: &str,
) -> i64 {
    let user_id = session["user"]["id"].as_str().unwrap().to_owned();
    let reference = reference.to_owned();
    let now = app.clock_now();
    let expires_at = expires_in_secs.map(|s| now + s * 1000);
    app.app()
        .db
        .write(move |tx| {
            let granted = ledger::grant(
                tx,
                &Grant {
                    user_id: &user_id,
                    source: Source::Purchase,
                    source_ref: &reference,
                    amount,
                    expires_at,
                    description: None,
                },
                now,
            )
            .map_err(audiostudio::http::error::ApiError::from)?;
            Ok::<_, audiostudio::http::error::ApiError>(match granted {
                ledger::Granted::New { lot_id, .. }
                | ledger::Granted::AlreadyGranted { lot_id } => lot_id,
            })
        })
        .await
        .unwrap()
}

async fn spend(app: &TestApp, token: &str, amount: i64) -> Reply {
    app.post(
        "/api/tokens/use",
        json!({ "amount": amount, "feature": "text_to_speech" }),
        Some(token),
    )
    .await
}

#[rocket::async_test]
async fn spending_takes_tokens_and_refuses_to_overdraw() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com").await;
    let token = access(&session);
    grant(&app, &session, 10, None, "pi_1").await;

    let reply = app
        .post(
            "/api/tokens/use",
            json!({ "amount": 7, "feature": "voice_clone", "description": "clone my voice", "metadata": { "job": "j1" } }),
            Some(token),
        )
        .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    assert_eq!(reply.body["balance"], 3);
    let t = &reply.body["transaction"];
    assert_eq!(t["type"], "spend");
    assert_eq!(t["amount"], -7);
    assert_eq!(t["balance_after"], 3);
    assert_eq!(t["feature"], "voice_clone");
    assert_eq!(t["metadata"]["job"], "j1");

    let refused = spend(&app, token, 4).await;
    refused.assert_problem(402);
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("balance is 3") && detail.contains("4 needed"),
        "{detail}"
    );
    let b = balance(&app, token).await;
    assert_eq!(
        (
            b["balance"].as_i64(),
            b["lifetime_earned"].as_i64(),
            b["lifetime_spent"].as_i64()
        ),
        (Some(3), Some(10), Some(7))
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM token_transactions"), 2);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM usage_analytics WHERE feature = 'voice_clone' AND tokens_used = 7"
        ),
        1
    );
    assert_ledger_consistent(&app);
}

#[rocket::async_test]
async fn a_payment_reference_mints_one_lot_only() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com").await;
    let first = grant(&app, &session, 50, None, "pi_same").await;
    let second = grant(&app, &session, 50, None, "pi_same").await;
    assert_eq!(first, second);
    assert_eq!(balance(&app, access(&session)).await["balance"], 50);
    assert_ledger_consistent(&app);
}

#[rocket::async_test]
async fn spends_draw_the_soonest_expiring_lots_first() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com").await;
    let token = access(&session);
    let never = grant(&app, &session, 10, None, "never").await;
    let late = grant(&app, &session, 10, Some(30 * 86400), "late").await;
    let soon = grant(&app, &session, 10, Some(86400), "soon").await;

    let reply = spend(&app, token, 15).await;
    assert_eq!(
        reply.body["transaction"]["lots"],
        json!([{ "lot": soon, "amount": 10 }, { "lot": late, "amount": 5 }])
    );
    let reply = spend(&app, token, 10).await;
    assert_eq!(
        reply.body["transaction"]["lots"],
        json!([{ "lot": late, "amount": 5 }, { "lot": never, "amount": 5 }])
    );
    let b = balance(&app, token).await;
    assert_eq!(b["balance"], 5);
    assert_eq!(b["expiring"], json!([]));
    assert_ledger_consistent(&app);
}

#[rocket::async_test]
async fn expired_tokens_never_count_and_leave_through_a_ledger_row() {
    let app =
        spawn_app_with(|f| f.merge(Serialized::global("token_sweep_interval_secs", 3600))).await;
    let session = app.register("ada@example.com").await;
    let token = access(&session);
    grant(&app, &session, 10, None, "keep").await;
    grant(&app, &session, 30, Some(3600), "brief").await;
    let b = balance(&app, token).await;
    assert_eq!(b["balance"], 40);
    assert_eq!(b["expiring"][0]["amount"], 30);

    app.clock.advance_secs(3601);
    let again = app.login("ada@example.com", PASSWORD).await.body;
    let token = access(&again);
    // The sweeper has not run (it waits an hour): the read still leaves the lot out.
    assert_eq!(balance(&app, token).await["balance"], 10);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM token_transactions WHERE kind = 'expire'"),
        0
    );
    spend(&app, token, 11).await.assert_problem(402);
    // A refused spend changes nothing; a spend that goes through expires the lot on its
    // way, through a ledger row, before drawing from what is left.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM token_transactions WHERE kind = 'expire'"),
        0
    );
    let spent = spend(&app, token, 10).await;
    assert_eq!(spent.status, Status::Ok);
    assert_eq!(spent.body["balance"], 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM token_transactions WHERE kind = 'expire' AND amount = -30"),
        1
    );
    assert_ledger_consistent(&app);
}

#[rocket::async_test]
async fn the_sweeper_expires_lots_and_holds_on_its_own() {
    let app = spawn_app_with(|f| f.merge(Serialized::global("token_sweep_interval_secs", 1))).await;
    let session = app.register("ada@example.com").await;
    let token = access(&session);
    grant(&app, &session, 20, Some(60), "brief").await;
    grant(&app, &session, 5, None, "keep").await;
    let hold = app
        .post(
            "/api/tokens/holds",
            json!({ "amount": 5, "feature": "music_generation", "ttl_seconds": 30 }),
            Some(token),
        )
        .await;
    assert_eq!(hold.status, Status::Created, "{}", hold.body);
    app.clock.advance_secs(120);
    for _ in 0..100 {
        if app.count("SELECT COUNT(*) FROM token_holds WHERE status = 'expired'") == 1
            && app.count(
                "SELECT COALESCE(SUM(remaining), 0) FROM token_lots WHERE expires_at IS NOT NULL",
            ) == 0
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM token_holds WHERE status = 'expired'"),
        1
    );
    // The hold drew 5 from the soon-expiring lot; returned after its expiry, they expire too.
    assert_eq!(
        app.count("SELECT -SUM(amount) FROM token_transactions WHERE kind = 'expire'"),
        20
    );
    let b = balance(&app, token).await;
    assert_eq!(
        (b["balance"].as_i64(), b["held"].as_i64()),
        (Some(5), Some(0))
    );
    assert!(
        app.audit_actions()
            .contains(&"tokens.holds_expired".to_owned())
    );
    assert_ledger_consistent(&app);
}

#[rocket::async_test]
async fn holds_reserve_then_capture_part_or_release_all() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com").await;
    let token = access(&session);
    grant(&app, &session, 100, None, "pi").await;

    let hold = app
        .post(
            "/api/tokens/holds",
            json!({ "amount": 40, "feature": "music_generation" }),
            Some(token),
        )
        .await;
    assert_eq!(hold.status, Status::Created, "{}", hold.body);
    assert_eq!(hold.body["status"], "open");
    assert_eq!(hold.body["balance"], 60);
    let b = balance(&app, token).await;
    assert_eq!(
        (b["balance"].as_i64(), b["held"].as_i64()),
        (Some(60), Some(40))
    );
    let id = hold.body["id"].as_str().unwrap();

    let too_much = app
        .post(
            &format!("/api/tokens/holds/{id}/capture"),
            json!({ "amount": 41 }),
            Some(token),
        )
        .await;
    too_much.assert_problem(422);
    let captured = app
        .post(
            &format!("/api/tokens/holds/{id}/capture"),
            json!({ "amount": 25 }),
            Some(token),
        )
        .await;
    assert_eq!(captured.status, Status::Ok, "{}", captured.body);
    assert_eq!(captured.body["status"], "captured");
    assert_eq!(captured.body["captured"], 25);
    assert_eq!(captured.body["balance"], 75);
    app.post(
        &format!("/api/tokens/holds/{id}/capture"),
        json!({ "amount": 1 }),
        Some(token),
    )
    .await
    .assert_problem(409);
    app.send(
        "POST",
        &format!("/api/tokens/holds/{id}/release"),
        None,
        Some(token),
        None,
    )
    .await
    .assert_problem(409);

    let second = app
        .post(
            "/api/tokens/holds",
            json!({ "amount": 30, "feature": "music_generation" }),
            Some(token),
        )
        .await;
    let id2 = second.body["id"].as_str().unwrap();
    let released = app
        .send(
            "POST",
            &format!("/api/tokens/holds/{id2}/release"),
            None,
            Some(token),
            None,
        )
        .await;
    assert_eq!(released.status, Status::Ok, "{}", released.body);
    assert_eq!(released.body["status"], "released");
    assert_eq!(released.body["balance"], 75);
    app.post(
        &format!("/api/tokens/holds/{id2}/capture"),
        json!({ "amount": 1 }),
        Some(token),
    )
    .await
    .assert_problem(409);

    let over = app
        .post(
            "/api/tokens/holds",
            json!({ "amount": 76, "feature": "music_generation" }),
            Some(token),
        )
        .await;
    over.assert_problem(402);

    let listed = app
        .get("/api/tokens/holds?status=captured", Some(token))
        .await;
    assert_eq!(listed.body["holds"].as_array().unwrap().len(), 1);
    let b = balance(&app, token).await;
    assert_eq!(
        (
            b["balance"].as_i64(),
            b["held"].as_i64(),
            b["lifetime_spent"].as_i64()
        ),
        (Some(75), Some(0), Some(25))
    );
    assert_ledger_consistent(&app);
}

#[rocket::async_test]
async fn an_expired_hold_cannot_be_captured() {
    let app =
        spawn_app_with(|f| f.merge(Serialized::global("token_sweep_interval_secs", 3600))).await;
    let session = app.register("ada@example.com").await;
    let token = access(&session);
    grant(&app, &session, 10, None, "pi").await;
    let hold = app
        .post(
            "/api/tokens/holds",
            json!({ "amount": 10, "feature": "transcription", "ttl_seconds": 60 }),
            Some(token),
        )
        .await;
    let id = hold.body["id"].as_str().unwrap();
    app.clock.advance_secs(61);
    app.post(
        &format!("/api/tokens/holds/{id}/capture"),
        json!({ "amount": 10 }),
        Some(token),
    )
    .await
    .assert_problem(409);
}

#[rocket::async_test]
async fn one_users_tokens_and_holds_are_invisible_to_another() {
    let app = spawn_app().await;
    let ada = app.register("ada@example.com").await;
    let bob = app.register("bob@example.com").await;
    grant(&app, &ada, 50, None, "pi").await;
    let hold = app
        .post(
            "/api/tokens/holds",
            json!({ "amount": 10, "feature": "transcription" }),
            Some(access(&ada)),
        )
        .await;
    let id = hold.body["id"].as_str().unwrap();

    spend(&app, access(&bob), 1).await.assert_problem(402);
    assert_eq!(balance(&app, access(&bob)).await["balance"], 0);
    app.post(
        &format!("/api/tokens/holds/{id}/capture"),
        json!({ "amount": 10 }),
        Some(access(&bob)),
    )
    .await
    .assert_problem(404);
    app.send(
        "POST",
        &format!("/api/tokens/holds/{id}/release"),
        None,
        Some(access(&bob)),
        None,
    )
    .await
    .assert_problem(404);
    let listed = app
        .get("/api/tokens/transactions", Some(access(&bob)))
        .await;
    assert_eq!(listed.body["transactions"], json!([]));
    assert_eq!(
        app.get("/api/tokens/holds", Some(access(&bob))).await.body["holds"],
        json!([])
    );
    assert_eq!(balance(&app, access(&ada)).await["balance"], 40);
}

#[rocket::async_test]
async fn a_retried_request_with_the_same_key_changes_nothing() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com").await;
    let token = access(&session);
    grant(&app, &session, 10, None, "pi").await;
    let body = json!({ "amount": 4, "feature": "text_to_speech" });

    let first = post_with_key(&app, "/api/tokens/use", body.clone(), token, "job-42").await;
    let again = post_with_key(&app, "/api/tokens/use", body.clone(), token, "job-42").await;
    assert_eq!(first.status, Status::Ok);
    assert_eq!(again.status, Status::Ok);
    assert_eq!(first.body, again.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(balance(&app, token).await["balance"], 6);

    // Key order in the body does not matter; another amount with the same key does.
    let reordered = json!({ "feature": "text_to_speech", "amount": 4 });
    assert_eq!(
        post_with_key(&app, "/api/tokens/use", reordered, token, "job-42")
            .await
            .status,
        Status::Ok
    );
    let other = post_with_key(
        &app,
        "/api/tokens/use",
        json!({ "amount": 5, "feature": "text_to_speech" }),
        token,
        "job-42",
    )
    .await;
    other.assert_problem(422);
    assert_eq!(balance(&app, token).await["balance"], 6);

    // A refusal is remembered too: topping up does not turn the retry into a spend.
    let broke = post_with_key(
        &app,
        "/api/tokens/use",
        json!({ "amount": 100, "feature": "text_to_speech" }),
        token,
        "job-43",
    )
    .await;
    broke.assert_problem(402);
    grant(&app, &session, 200, None, "pi_2").await;
    let retried = post_with_key(
        &app,
        "/api/tokens/use",
        json!({ "amount": 100, "feature": "text_to_speech" }),
        token,
        "job-43",
    )
    .await;
    retried.assert_problem(402);
    assert_eq!(balance(&app, token).await["balance"], 206);

    // Keys belong to one user.
    let bob = app.register("bob@example.com").await;
    grant(&app, &bob, 10, None, "pi_bob").await;
    let bobs = post_with_key(&app, "/api/tokens/use", body, access(&bob), "job-42").await;
    assert_eq!(bobs.status, Status::Ok);
    assert_eq!(bobs.body["balance"], 6);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM token_transactions WHERE kind = 'spend'"),
        2
    );

    let bad = post_with_key(
        &app,
        "/api/tokens/use",
        json!({ "amount": 1, "feature": "text_to_speech" }),
        token,
        &"k".repeat(300),
    )
    .await;
    bad.assert_problem(400);
    assert_ledger_consistent(&app);
}

#[rocket::async_test]
async fn holds_and_captures_are_idempotent_too() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com").await;
    let token = access(&session);
    grant(&app, &session, 10, None, "pi").await;
    let body = json!({ "amount": 6, "feature": "sound_effects" });
    let first = post_with_key(&app, "/api/tokens/holds", body.clone(), token, "h1").await;
    let again = post_with_key(&app, "/api/tokens/holds", body, token, "h1").await;
    assert_eq!(first.status, Status::Created);
    assert_eq!(first.body, again.body);
    let id = first.body["id"].as_str().unwrap();
    let path = format!("/api/tokens/holds/{id}/capture");
    let c1 = post_with_key(&app, &path, json!({ "amount": 2 }), token, "c1").await;
    let c2 = post_with_key(&app, &path, json!({ "amount": 2 }), token, "c1").await;
    assert_eq!(c1.status, Status::Ok);
    assert_eq!(c1.body, c2.body);
    assert_eq!(balance(&app, token).await["balance"], 8);
    assert_ledger_consistent(&app);
}

#[rocket::async_test]
async fn admins_grant_tokens_by_email_and_it_is_audited() {
    let app = spawn_app().await;
    let admin = app.register("root@example.com").await;
    app.promote(admin["user"]["id"].as_str().unwrap());
    let user = app.register("ada@example.com").await;
    let body = json!({ "email": "ada@example.com", "amount": 25, "reason": "contest prize", "expires_at": "2099-01-01T00:00:00Z" });

    app.post("/api/tokens/add", body.clone(), Some(access(&user)))
        .await
        .assert_problem(403);
    let reply = app
        .post("/api/tokens/add", body, Some(access(&admin)))
        .await;
    assert_eq!(reply.status, Status::Created, "{}", reply.body);
    assert_eq!(reply.body["balance"], 25);
    assert_eq!(reply.body["transaction"]["source"], "admin");
    let b = balance(&app, access(&user)).await;
    assert_eq!(b["expiring"][0]["expires_at"], "2099-01-01T00:00:00Z");
    assert!(
        app.audit_actions()
            .contains(&"tokens.admin_grant".to_owned())
    );

    for (bad, field) in [
        (
            json!({ "email": "ada@example.com", "amount": 5, "reason": "x", "expires_at": "2001-01-01T00:00:00Z" }),
            "expires_at",
        ),
        (
            json!({ "email": "ada@example.com", "amount": 5, "reason": "x", "expires_at": "tomorrow" }),
            "expires_at",
        ),
        (
            json!({ "email": "ada@example.com", "user_id": "u", "amount": 5, "reason": "x" }),
            "user_id",
        ),
        (
            json!({ "email": "ada@example.com", "amount": 0, "reason": "x" }),
            "amount",
        ),
        (
            json!({ "email": "ada@example.com", "amount": 5, "reason": " " }),
            "reason",
        ),
    ] {
        let reply = app.post("/api/tokens/add", bad, Some(access(&admin))).await;
        reply.assert_problem(422);
        assert!(reply.body["errors"][field].is_array(), "{}", reply.body);
    }
    app.post(
        "/api/tokens/add",
        json!({ "email": "nobody@example.com", "amount": 5, "reason": "x" }),
        Some(access(&admin)),
    )
    .await
    .assert_problem(404);
    assert_ledger_consistent(&app);
}

#[rocket::async_test]
async fn the_ledger_pages_newest_first_and_filters_by_type() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com").await;
    let token = access(&session);
    grant(&app, &session, 100, None, "pi").await;
    for _ in 0..5 {
        spend(&app, token, 1).await;
    }
    let page = app
        .get("/api/tokens/transactions?limit=4", Some(token))
        .await;
    let rows = page.body["transactions"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["balance_after"], 95);
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let rest = app
        .get(
            &format!("/api/tokens/transactions?limit=4&cursor={cursor}"),
            Some(token),
        )
        .await;
    let rows = rest.body["transactions"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["type"], "grant");
    assert!(rest.body["next_cursor"].is_null());
    let grants = app
        .get("/api/tokens/transactions?type=grant", Some(token))
        .await;
    assert_eq!(grants.body["transactions"].as_array().unwrap().len(), 1);
    for bad in [
        "?cursor=abc",
        "?cursor=-1",
        "?limit=0",
        "?limit=100000",
        "?type=refund_all",
        "?limit=1.5",
    ] {
        app.get(&format!("/api/tokens/transactions{bad}"), Some(token))
            .await
            .assert_problem(422);
    }
}

#[rocket::async_test]
async fn active_packs_are_listed() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com").await;
    app.db()
        .execute_batch(
            "INSERT INTO token_packs (id, name, tokens, price_cents, active, created_at, updated_at) VALUES
               ('p1', 'Small', 500, 500, 1, 0, 0), ('p2', 'Retired', 100, 100, 0, 0, 0)",
        )
        .unwrap();
    let reply = app.get("/api/tokens/packs", Some(access(&session))).await;
    assert_eq!(
        reply.body["packs"],
        json!([{ "id": "p1", "name": "Small", "description": null, "tokens": 500, "price_cents": 500, "currency": "usd" }])
    );
    app.get("/api/tokens/packs", None).await.assert_problem(401);
}

#[rocket::async_test]
async fn bad_amounts_and_features_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com").await;
    let token = access(&session);
    grant(&app, &session, 100, None, "pi").await;
    let hold = app
        .post(
            "/api/tokens/holds",
            json!({ "amount": 5, "feature": "transcription" }),
            Some(token),
        )
        .await;
    let capture = format!(
        "/api/tokens/holds/{}/capture",
        hold.body["id"].as_str().unwrap()
    );
    let before = app.snapshot();
    let long = "f".repeat(100_000);
    let amounts = [
        json!(0),
        json!(-5),
        json!(1_000_000_001),
        json!(9_223_372_036_854_775_807i64),
        json!(1e30),
        json!(1.5),
        json!("10"),
        json!(null),
        json!([1]),
    ];
    for amount in &amounts {
        for (path, extra) in [
            ("/api/tokens/use", true),
            ("/api/tokens/holds", true),
            (capture.as_str(), false),
        ] {
            if !extra && *amount == json!(0) {
                continue; // capturing nothing is allowed: everything returns
            }
            let mut body = json!({ "amount": amount });
            if extra {
                body["feature"] = json!("text_to_speech");
            }
            let reply = app.post(path, body.clone(), Some(token)).await;
            assert!(
                matches!(reply.status.code, 400 | 422),
                "{path} {body}: {}",
                reply.body
            );
            reply.assert_problem(reply.status.code);
        }
    }
    for feature in [
        json!("teleportation"),
        json!(long),
        json!(""),
        json!(5),
        json!("TEXT_TO_SPEECH"),
    ] {
        let reply = app
            .post(
                "/api/tokens/use",
                json!({ "amount": 1, "feature": feature }),
                Some(token),
            )
            .await;
        assert!(matches!(reply.status.code, 413 | 422), "{}", reply.body);
    }
    for body in [
        json!({ "amount": 1, "feature": "transcription", "metadata": [1] }),
        json!({ "amount": 1, "feature": "transcription", "metadata": { "x": "y".repeat(5000) } }),
        json!({ "amount": 1, "feature": "transcription", "description": "x\u{0007}" }),
        json!({ "amount": 1, "feature": "transcription", "surprise": true }),
        json!({ "amount": 1, "feature": "transcription", "ttl_seconds": 0 }),
    ] {
        app.post("/api/tokens/use", body, Some(token))
            .await
            .assert_problem(422);
    }
    for body in [
        json!({ "amount": 1, "feature": "transcription", "ttl_seconds": 0 }),
        json!({ "amount": 1, "feature": "transcription", "ttl_seconds": 10_000_000 }),
        json!({ "amount": 1, "feature": "transcription", "ttl_seconds": -1 }),
    ] {
        app.post("/api/tokens/holds", body, Some(token))
            .await
            .assert_problem(422);
    }
    app.post(
        "/api/tokens/holds/nope/capture",
        json!({ "amount": 1 }),
        Some(token),
    )
    .await
    .assert_problem(404);
    app.send(
        "POST",
        "/api/tokens/holds/nope/release",
        None,
        Some(token),
        None,
    )
    .await
    .assert_problem(404);
    app.get("/api/tokens/holds?status=weird", Some(token))
        .await
        .assert_problem(422);
    app.send(
        "POST",
        "/api/tokens/use",
        Some("{\"amount\": 1,"),
        Some(token),
        None,
    )
    .await
    .assert_problem(400);
    for path in [
        "/api/tokens/balance",
        "/api/tokens/transactions",
        "/api/tokens/holds",
    ] {
        app.get(path, Some("forged")).await.assert_problem(401);
    }
    assert_eq!(
        app.snapshot(),
        before,
        "a refused request changed the database"
    );
}

#[rocket::async_test]
async fn a_retry_is_answered_from_the_store_even_if_validation_would_now_fail() {
    let app = spawn_app().await;
    let admin = app.register("root@example.com").await;
    app.promote(admin["user"]["id"].as_str().unwrap());
    app.register("ada@example.com").await;
    let soon = app.clock_now() + 60_000;
    let expires_at = audiostudio::platform::clock::rfc3339(soon);
    let body = json!({ "email": "ada@example.com", "amount": 5, "reason": "promo", "expires_at": expires_at });
    let first = post_with_key(
        &app,
        "/api/tokens/add",
        body.clone(),
        access(&admin),
        "grant-1",
    )
    .await;
    assert_eq!(first.status, Status::Created, "{}", first.body);
    app.clock.advance_secs(120);
    let fresh = app.login("root@example.com", PASSWORD).await.body;
    let retry = post_with_key(&app, "/api/tokens/add", body, access(&fresh), "grant-1").await;
    assert_eq!(retry.status, Status::Created, "{}", retry.body);
    assert_eq!(retry.body, first.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM token_lots"), 1);
}

#[rocket::async_test]
async fn capturing_nothing_returns_everything_and_overdue_holds_show_as_expired() {
    let app =
        spawn_app_with(|f| f.merge(Serialized::global("token_sweep_interval_secs", 3600))).await;
    let session = app.register("ada@example.com").await;
    let token = access(&session);
    grant(&app, &session, 10, None, "pi").await;
    let hold = app
        .post(
            "/api/tokens/holds",
            json!({ "amount": 4, "feature": "transcription" }),
            Some(token),
        )
        .await;
    let id = hold.body["id"].as_str().unwrap();
    let captured = app
        .post(
            &format!("/api/tokens/holds/{id}/capture"),
            json!({ "amount": 0 }),
            Some(token),
        )
        .await;
    assert_eq!(captured.status, Status::Ok, "{}", captured.body);
    assert_eq!(captured.body["captured"], 0);
    assert_eq!(captured.body["balance"], 10);
    assert_eq!(app.count("SELECT COUNT(*) FROM usage_analytics"), 0);

    let brief = app
        .post(
            "/api/tokens/holds",
            json!({ "amount": 3, "feature": "transcription", "ttl_seconds": 60 }),
            Some(token),
        )
        .await;
    assert_eq!(brief.status, Status::Created);
    app.clock.advance_secs(61);
    let open = app.get("/api/tokens/holds?status=open", Some(token)).await;
    assert_eq!(open.body["holds"], json!([]));
    let expired = app
        .get("/api/tokens/holds?status=expired", Some(token))
        .await;
    assert_eq!(expired.body["holds"][0]["id"], brief.body["id"]);
    assert_ledger_consistent(&app);
}

#[rocket::async_test]
async fn a_reference_reused_for_another_user_or_amount_is_refused() {
    let app = spawn_app().await;
    let ada = app.register("ada@example.com").await;
    let bob = app.register("bob@example.com").await;
    grant(&app, &ada, 10, None, "pi_shared").await;
    for (user, amount) in [(&bob, 10), (&ada, 11)] {
        let user_id = user["user"]["id"].as_str().unwrap().to_owned();
        let now = app.clock_now();
        let outcome = app
            .app()
            .db
            .write(move |tx| {
                let grant = Grant {
                    user_id: &user_id,
                    source: Source::Purchase,
                    source_ref: "pi_shared",
                    amount,
                    expires_at: None,
                    description: None,
                };
                ledger::grant(tx, &grant, now)
                    .map(|_| ())
                    .map_err(audiostudio::http::error::ApiError::from)
            })
            .await;
        assert!(
            matches!(
                outcome,
                Err(audiostudio::http::error::ApiError::Conflict(_))
            ),
            "{outcome:?}"
        );
    }
    assert_eq!(balance(&app, access(&bob)).await["balance"], 0);
    assert_ledger_consistent(&app);
}

async fn claw(
    app: &TestApp,
    session: &Value,
    lot: Option<i64>,
    reference: &str,
    target: i64,
) -> ledger::Clawback {
    let user_id = session["user"]["id"].as_str().unwrap().to_owned();
    let (reference, now) = (reference.to_owned(), app.clock_now());
    app.app()
        .db
        .write(move |tx| {
            ledger::claw_back(tx, &user_id, lot, &reference, target, "refund", now)
                .map_err(audiostudio::http::error::ApiError::from)
        })
        .await
        .unwrap()
}

#[rocket::async_test]
async fn refunds_claw_back_once_from_their_lot_first_and_never_below_zero() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com").await;
    let token = access(&session);
    let gift = grant(&app, &session, 50, Some(86400), "gift").await;
    let bought = grant(&app, &session, 100, None, "pi_1").await;
    // Partial refund of a quarter: 25 tokens, from the refunded purchase's own lot.
    let first = claw(&app, &session, Some(bought), "ch_1", 25).await;
    assert_eq!(
        first,
        ledger::Clawback {
            taken: 25,
            shortfall: 0
        }
    );
    let lots: Vec<(i64, i64)> = {
        let db = app.db();
        let mut stmt = db
            .prepare("SELECT id, remaining FROM token_lots ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(lots, [(gift, 50), (bought, 75)]);
    // The same refund delivered again changes nothing.
    assert_eq!(
        claw(&app, &session, Some(bought), "ch_1", 25).await,
        ledger::Clawback {
            taken: 0,
            shortfall: 0
        }
    );
    // Most tokens get spent, then the rest of the charge is refunded (cumulative 100).
    assert_eq!(spend(&app, token, 110).await.status, Status::Ok);
    let rest = claw(&app, &session, Some(bought), "ch_1", 100).await;
    assert_eq!(
        rest,
        ledger::Clawback {
            taken: 15,
            shortfall: 60
        }
    );
    let b = balance(&app, token).await;
    assert_eq!(b["balance"], 0);
    assert_eq!(
        app.count("SELECT SUM(amount) FROM token_shortfalls WHERE reference = 'ch_1'"),
        60
    );
    assert_eq!(
        claw(&app, &session, Some(bought), "ch_1", 100).await,
        ledger::Clawback {
            taken: 0,
            shortfall: 0
        }
    );
    let admin = app.register("root@example.com").await;
    app.promote(admin["user"]["id"].as_str().unwrap());
    let shortfalls = app
        .get("/api/admin/token-shortfalls", Some(access(&admin)))
        .await;
    assert_eq!(shortfalls.status, Status::Ok, "{}", shortfalls.body);
    assert_eq!(shortfalls.body["total"], 60);
    assert_eq!(shortfalls.body["shortfalls"][0]["email"], "ada@example.com");
    assert_eq!(shortfalls.body["shortfalls"][0]["reference"], "ch_1");
    app.get("/api/admin/token-shortfalls", Some(token))
        .await
        .assert_problem(403);
    let rows = app
        .get("/api/tokens/transactions?type=clawback", Some(token))
        .await;
    assert_eq!(rows.body["transactions"].as_array().unwrap().len(), 2);
    assert_ledger_consistent(&app);
}

#[rocket::async_test]
async fn a_revoked_session_can_neither_read_nor_spend_tokens() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com").await;
    let token = access(&session);
    grant(&app, &session, 10, None, "pi").await;
    assert_eq!(spend(&app, token, 1).await.status, Status::Ok);
    let logout = app
        .send("POST", "/api/auth/logout", None, Some(token), None)
        .await;
    assert_eq!(logout.status, Status::NoContent);
    let before = app.snapshot();
    app.get("/api/tokens/balance", Some(token))
        .await
        .assert_problem(401);
    spend(&app, token, 1).await.assert_problem(401);
    post_with_key(
        &app,
        "/api/tokens/use",
        json!({ "amount": 1, "feature": "text_to_speech" }),
        token,
        "k1",
    )
    .await
    .assert_problem(401);
    assert_eq!(app.snapshot(), before);
    let again = app.login("ada@example.com", PASSWORD).await.body;
    assert_eq!(balance(&app, access(&again)).await["balance"], 9);
}
