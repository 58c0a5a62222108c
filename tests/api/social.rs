//! Social engagement rewards: claiming, the daily cap, one claim per task and handle, admin review.

use rocket::figment::providers::Serialized;
use rocket::http::Status;
use serde_json::{Value, json};

use crate::helpers::*;

const DAY_MS: i64 = 86_400_000;

async fn states(app: &TestApp, token: &str) -> Vec<(String, String)> {
    let reply = app.get("/api/tokens/social", Some(token)).await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    reply.body["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_owned(),
                t["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn claim_with_key(app: &TestApp, token: &str, key: &str, body: &Value) -> Reply {
    post_with_key(app, "/api/tokens/social", body.clone(), token, key).await
}

/// The spendable balance, in tokens.
async fn balance_of(app: &TestApp, token: &str) -> i64 {
    balance(app, token).await["balance"].as_i64().unwrap()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[rocket::async_test]
async fn the_task_list_shows_each_active_task_with_the_callers_state() {
    let app = spawn_app().await;
    seed_tasks(&app);
    let (root, _) = admin(&app).await;
    let (ada, _) = verified_user(&app, "ada@example.com").await;
    let (bob, _) = verified_user(&app, "bob@example.com").await;

    let listed = app.get("/api/tokens/social", Some(&ada)).await;
    assert_eq!(listed.status, Status::Ok);
    assert_eq!(
        listed.body["tasks"][0],
        json!({
            "id": "task_x_follow", "platform": "x", "action": "follow",
            "title": "Follow audiostudio on X", "description": "Follow @audiostudio",
            "reward_tokens": 50, "auto_approve": true, "reward_expires_days": 90,
            "state": "available"
        })
    );
    let x = claim(&app, &ada, "task_x_follow", None).await;
    let share = claim(&app, &ada, "task_instagram_share", Some("@ada")).await;
    let video = claim(&app, &ada, "task_tiktok_video", Some("ada")).await;
    for reply in [&x, &share, &video] {
        assert_eq!(reply.status, Status::Created, "{}", reply.body);
    }
    let video_id = video.body["claim"]["id"].as_str().unwrap();
    let rejected = app
        .send(
            "POST",
            &format!("/api/admin/social/{video_id}/reject"),
            None,
            Some(&root),
            None,
        )
        .await;
    assert_eq!(rejected.status, Status::Ok, "{}", rejected.body);

    assert_eq!(
        states(&app, &ada).await,
        pairs(&[
            ("task_x_follow", "approved"),
            ("task_youtube_subscribe", "available"),
            ("task_instagram_share", "pending"),
            ("task_tiktok_video", "rejected"),
        ])
    );
    let listed = app.get("/api/tokens/social", Some(&ada)).await;
    assert_eq!(listed.body["tasks"][0]["claim_id"], x.body["claim"]["id"]);
    assert!(listed.body["tasks"][1].get("claim_id").is_none());
    // Another user's claims are not the caller's business.
    assert!(
        states(&app, &bob)
            .await
            .iter()
            .all(|(_, state)| state == "available")
    );
    app.get("/api/tokens/social", None)
        .await
        .assert_problem(401);
}

#[rocket::async_test]
async fn an_auto_approved_claim_pays_at_once_with_an_expiring_reward_lot() {
    let app = spawn_app().await;
    seed_tasks(&app);
    let (ada, ada_id) = verified_user(&app, "ada@example.com").await;
    let now = app.clock_now();

    let reply = app
        .post(
            "/api/tokens/social",
            json!({ "task_id": "task_x_follow", "proof_url": "https://x.com/ada/status/1", "handle": "@Ada_Lovelace" }),
            Some(&ada),
        )
        .await;
    assert_eq!(reply.status, Status::Created, "{}", reply.body);
    let claim = &reply.body["claim"];
    assert_eq!(claim["status"], "approved");
    assert_eq!(claim["task_id"], "task_x_follow");
    assert_eq!(claim["reward_tokens"], 50);
    assert_eq!(claim["proof_url"], "https://x.com/ada/status/1");
    assert_eq!(claim["handle"], "Ada_Lovelace");
    assert!(claim["created_at"].is_string() && claim["reviewed_at"].is_string());
    assert_eq!(reply.body["balance"], 50);
    assert_eq!(balance_of(&app, &ada).await, 50);

    let claim_id = claim["id"].as_str().unwrap().to_owned();
    let (kind, source, reference, amount): (String, String, String, i64) = app
        .db()
        .query_row(
            "SELECT kind, source, reference, amount FROM token_transactions WHERE user_id = ?1",
            [&ada_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        (kind.as_str(), source.as_str(), reference.as_str(), amount),
        ("grant", "reward", claim_id.as_str(), 50)
    );
    let expires_at: i64 = app
        .db()
        .query_row(
            "SELECT expires_at FROM token_lots WHERE source = 'reward' AND source_ref = ?1",
            [&claim_id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(expires_at, now + 90 * DAY_MS);
    let stored: (String, String, String, Option<String>) = app
        .db()
        .query_row(
            "SELECT platform, action, url, handle FROM social_engagements WHERE id = ?1",
            [&claim_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        stored,
        (
            "x".into(),
            "follow".into(),
            "https://x.com/ada/status/1".into(),
            Some("Ada_Lovelace".into())
        )
    );
    assert!(
        app.audit_actions()
            .contains(&"tokens.social_auto_approved".to_owned())
    );
    // The reward runs out after its 90 days.
    let b = app.get("/api/tokens/balance", Some(&ada)).await;
    assert_eq!(b.body["expiring"][0]["amount"], 50);
    assert_ledger_consistent(&app);
}

#[rocket::async_test]
async fn claiming_the_same_task_twice_is_a_conflict() {
    let app = spawn_app().await;
    seed_tasks(&app);
    let (ada, _) = verified_user(&app, "ada@example.com").await;
    assert_eq!(
        claim(&app, &ada, "task_x_follow", None).await.status,
        Status::Created
    );
    let before = app.snapshot();
    let again = claim(&app, &ada, "task_x_follow", Some("another_handle")).await;
    again.assert_problem(409);
    assert!(
        again.body["detail"]
            .as_str()
            .unwrap()
            .contains("already claimed"),
        "{}",
        again.body
    );
    // A pending claim blocks a second one just the same.
    assert_eq!(
        claim(&app, &ada, "task_instagram_share", None).await.status,
        Status::Created
    );
    claim(&app, &ada, "task_instagram_share", None)
        .await
        .assert_problem(409);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM social_engagements WHERE task_id = 'task_x_follow'"),
        1
    );
    assert_eq!(balance_of(&app, &ada).await, 50);
    assert_ne!(app.snapshot(), before);
    assert_ledger_consistent(&app);
}

#[rocket::async_test]
async fn a_handle_can_claim_a_task_for_one_account_only() {
    let app = spawn_app().await;
    seed_tasks(&app);
    let (ada, _) = verified_user(&app, "ada@example.com").await;
    let (bob, _) = verified_user(&app, "bob@example.com").await;
    assert_eq!(
        claim(&app, &ada, "task_x_follow", Some("@ada"))
            .await
            .status,
        Status::Created
    );
    let before = app.snapshot();
    // With or without '@', in any case: the same handle.
    for handle in ["ada", "@ADA"] {
        let reply = claim(&app, &bob, "task_x_follow", Some(handle)).await;
        reply.assert_problem(409);
        assert!(
            reply.body["detail"].as_str().unwrap().contains("handle"),
            "{}",
            reply.body
        );
    }
    assert_eq!(app.snapshot(), before, "a refused claim changed something");
    assert_eq!(balance_of(&app, &bob).await, 0);
    // The same handle on another task, and another handle on this task, are fine.
    assert_eq!(
        claim(&app, &ada, "task_youtube_subscribe", Some("ada"))
            .await
            .status,
        Status::Created
    );
    assert_eq!(
        claim(&app, &bob, "task_x_follow", Some("bob")).await.status,
        Status::Created
    );
    assert_eq!(balance_of(&app, &bob).await, 50);
    assert_ledger_consistent(&app);
}

#[rocket::async_test]
async fn the_daily_reward_cap_holds_claims_back_until_midnight_utc() {
    let app = spawn_app_with(|f| f.merge(Serialized::global("social_daily_reward_cap", 120))).await;
    seed_tasks(&app);
    app.db()
        .execute_batch(
            "INSERT INTO social_tasks (id, platform, action, title, reward_tokens, auto_approve, sort_order, created_at) VALUES
               ('task_small', 'threads', 'follow', 'Follow on Threads', 20, 0, 9, 0),
               ('task_tiny', 'bluesky', 'follow', 'Follow on Bluesky', 10, 1, 9, 0),
               ('task_later', 'mastodon', 'follow', 'Follow on Mastodon', 30, 1, 9, 0)",
        )
        .unwrap();
    let (root, _) = admin(&app).await;
    let (ada, _) = verified_user(&app, "ada@example.com").await;
    let (bob, _) = verified_user(&app, "bob@example.com").await;

    // 50 + 50 + 20 = 120: exactly the cap.
    for task in ["task_x_follow", "task_youtube_subscribe", "task_small"] {
        let reply = claim(&app, &ada, task, None).await;
        assert_eq!(reply.status, Status::Created, "{task}: {}", reply.body);
    }
    let before = app.snapshot();
    let refused = claim(&app, &ada, "task_tiny", None).await;
    refused.assert_problem(429);
    assert!(
        refused.body["detail"].as_str().unwrap().contains("cap"),
        "{}",
        refused.body
    );
    let now = app.clock_now();
    let until_midnight = ((now.div_euclid(DAY_MS) + 1) * DAY_MS - now + 999) / 1000;
    assert_eq!(
        refused.header("retry-after"),
        Some(until_midnight.to_string().as_str())
    );
    // A claim too big for what is left of the cap is refused too, and nothing was stored.
    claim(&app, &ada, "task_instagram_share", None)
        .await
        .assert_problem(429);
    assert_eq!(app.snapshot(), before);
    assert_eq!(balance_of(&app, &ada).await, 100);
    // The cap is per user.
    assert_eq!(
        claim(&app, &bob, "task_tiny", None).await.status,
        Status::Created
    );

    // A rejected claim no longer counts against the day.
    let pending = app
        .get("/api/admin/social?status=pending", Some(&root))
        .await;
    let small = pending.body["claims"][0]["id"].as_str().unwrap().to_owned();
    app.send(
        "POST",
        &format!("/api/admin/social/{small}/reject"),
        None,
        Some(&root),
        None,
    )
    .await;
    assert_eq!(
        claim(&app, &ada, "task_tiny", None).await.status,
        Status::Created
    );

    claim(&app, &ada, "task_later", None)
        .await
        .assert_problem(429);

    // After midnight UTC the cap starts again.
    app.clock.advance_secs(until_midnight);
    let ada = access(&app.login("ada@example.com", PASSWORD).await.body).to_owned();
    let later = claim(&app, &ada, "task_later", None).await;
    assert_eq!(later.status, Status::Created, "{}", later.body);
    assert_eq!(balance_of(&app, &ada).await, 140);
    assert_ledger_consistent(&app);
}

#[rocket::async_test]
async fn review_approves_once_and_rejects_without_tokens() {
    let app = spawn_app().await;
    seed_tasks(&app);
    let (root, root_id) = admin(&app).await;
    let (ada, ada_id) = verified_user(&app, "ada@example.com").await;
    let share = claim(&app, &ada, "task_instagram_share", Some("ada")).await;
    assert_eq!(share.status, Status::Created, "{}", share.body);
    assert_eq!(share.body["claim"]["status"], "pending");
    assert!(share.body["claim"]["reviewed_at"].is_null());
    assert_eq!(share.body["balance"], 0);
    let video = claim(&app, &ada, "task_tiktok_video", None).await;
    let share_id = share.body["claim"]["id"].as_str().unwrap().to_owned();
    let video_id = video.body["claim"]["id"].as_str().unwrap().to_owned();

    let pending = app
        .get("/api/admin/social?status=pending", Some(&root))
        .await;
    assert_eq!(pending.status, Status::Ok, "{}", pending.body);
    let claims = pending.body["claims"].as_array().unwrap();
    assert_eq!(claims.len(), 2);
    assert_eq!(claims[0]["id"], video_id.as_str(), "newest first");
    assert_eq!(claims[1]["email"], "ada@example.com");
    assert_eq!(claims[1]["user_id"], ada_id.as_str());
    assert_eq!(claims[1]["handle"], "ada");
    assert_eq!(claims[1]["platform"], "instagram");
    assert_eq!(
        claims[1]["task_title"],
        "Share a track you made on Instagram"
    );

    let approve = format!("/api/admin/social/{share_id}/approve");
    let approved = app.send("POST", &approve, None, Some(&root), None).await;
    assert_eq!(approved.status, Status::Ok, "{}", approved.body);
    assert_eq!(approved.body["status"], "approved");
    assert_eq!(approved.body["reviewed_by"], root_id.as_str());
    assert!(approved.body["reviewed_at"].is_string());
    assert_eq!(balance_of(&app, &ada).await, 150);
    // No expiry on this task: the lot never expires.
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM token_lots WHERE source = 'reward' AND source_ref = '{share_id}' AND expires_at IS NULL AND amount = 150"
        )),
        1
    );

    // Approving again, or rejecting what was approved, is a conflict and pays nothing more.
    let before = app.snapshot();
    app.send("POST", &approve, None, Some(&root), None)
        .await
        .assert_problem(409);
    app.send(
        "POST",
        &format!("/api/admin/social/{share_id}/reject"),
        None,
        Some(&root),
        None,
    )
    .await
    .assert_problem(409);
    assert_eq!(app.snapshot(), before);
    assert_eq!(balance_of(&app, &ada).await, 150);

    let rejected = app
        .send(
            "POST",
            &format!("/api/admin/social/{video_id}/reject"),
            None,
            Some(&root),
            None,
        )
        .await;
    assert_eq!(rejected.status, Status::Ok, "{}", rejected.body);
    assert_eq!(rejected.body["status"], "rejected");
    app.send(
        "POST",
        &format!("/api/admin/social/{video_id}/approve"),
        None,
        Some(&root),
        None,
    )
    .await
    .assert_problem(409);
    assert_eq!(balance_of(&app, &ada).await, 150);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM token_lots WHERE source = 'reward'"),
        1
    );

    let actions = app.audit_actions();
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "tokens.social_approved")
            .count(),
        1
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "tokens.social_rejected")
            .count(),
        1
    );
    let listed = |status: &'static str| {
        let app = &app;
        let root = root.clone();
        async move {
            app.get(&format!("/api/admin/social?status={status}"), Some(&root))
                .await
                .body["claims"]
                .as_array()
                .unwrap()
                .len()
        }
    };
    assert_eq!(
        (
            listed("pending").await,
            listed("approved").await,
            listed("rejected").await
        ),
        (0, 1, 1)
    );
    for path in [
        "/api/admin/social/nope/approve",
        "/api/admin/social/nope/reject",
    ] {
        app.send("POST", path, None, Some(&root), None)
            .await
            .assert_problem(404);
    }
    // A reward that expires runs from the approval, not from the claim.
    let (bob, _) = verified_user(&app, "bob@example.com").await;
    let bobs = claim(&app, &bob, "task_tiktok_video", None).await;
    let bobs = bobs.body["claim"]["id"].as_str().unwrap().to_owned();
    app.clock.advance_secs(3 * 86_400);
    let root = access(&app.login("root@example.com", PASSWORD).await.body).to_owned();
    let approved_at = app.clock_now();
    let approved = app
        .send(
            "POST",
            &format!("/api/admin/social/{bobs}/approve"),
            None,
            Some(&root),
            None,
        )
        .await;
    assert_eq!(approved.status, Status::Ok, "{}", approved.body);
    let expires_at: i64 = app
        .db()
        .query_row(
            "SELECT expires_at FROM token_lots WHERE source = 'reward' AND source_ref = ?1 AND amount = 300",
            [&bobs],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(expires_at, approved_at + 30 * DAY_MS);
    let long = format!("/api/admin/social/{}/approve", "x".repeat(500));
    app.send("POST", &long, None, Some(&root), None)
        .await
        .assert_problem(404);
    assert_ledger_consistent(&app);
}

#[rocket::async_test]
async fn users_cannot_review_claims() {
    let app = spawn_app().await;
    seed_tasks(&app);
    let (ada, _) = verified_user(&app, "ada@example.com").await;
    let share = claim(&app, &ada, "task_instagram_share", None).await;
    let id = share.body["claim"]["id"].as_str().unwrap();
    let before = app.snapshot();
    app.get("/api/admin/social", Some(&ada))
        .await
        .assert_problem(403);
    app.get("/api/admin/social", None).await.assert_problem(401);
    for action in ["approve", "reject"] {
        let path = format!("/api/admin/social/{id}/{action}");
        app.send("POST", &path, None, Some(&ada), None)
            .await
            .assert_problem(403);
        app.send("POST", &path, None, None, None)
            .await
            .assert_problem(401);
    }
    assert_eq!(app.snapshot(), before);
    assert_eq!(balance_of(&app, &ada).await, 0);
}

#[rocket::async_test]
async fn the_review_queue_pages_newest_first() {
    let app = spawn_app().await;
    seed_tasks(&app);
    let (root, _) = admin(&app).await;
    let mut made = Vec::new();
    for i in 0..5 {
        let (token, _) = verified_user(&app, &format!("user{i}@example.com")).await;
        for task in ["task_instagram_share", "task_x_follow"] {
            let reply = claim(&app, &token, task, None).await;
            assert_eq!(reply.status, Status::Created, "{}", reply.body);
            made.push(reply.body["claim"]["id"].as_str().unwrap().to_owned());
        }
        // Some claims share a millisecond, some do not.
        if i % 2 == 0 {
            app.clock.advance_secs(1);
        }
    }
    made.reverse();
    let mut seen = Vec::new();
    let mut path = "/api/admin/social?limit=3".to_owned();
    loop {
        let page = app.get(&path, Some(&root)).await;
        assert_eq!(page.status, Status::Ok, "{}", page.body);
        let claims = page.body["claims"].as_array().unwrap();
        assert!(claims.len() <= 3);
        seen.extend(claims.iter().map(|c| c["id"].as_str().unwrap().to_owned()));
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/admin/social?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, made);
    let pending = app
        .get("/api/admin/social?status=pending&limit=200", Some(&root))
        .await;
    assert_eq!(pending.body["claims"].as_array().unwrap().len(), 5);
    for bad in [
        "?status=done",
        "?status=",
        "?limit=0",
        "?limit=201",
        "?limit=x",
        "?cursor=abc",
        "?cursor=-1_x",
        "?cursor=12_",
    ] {
        app.get(&format!("/api/admin/social{bad}"), Some(&root))
            .await
            .assert_problem(422);
    }
}

#[rocket::async_test]
async fn a_retried_claim_with_the_same_key_claims_once() {
    let app = spawn_app().await;
    seed_tasks(&app);
    let (ada, _) = verified_user(&app, "ada@example.com").await;
    let body =
        json!({ "task_id": "task_x_follow", "proof_url": "https://x.com/ada", "handle": "ada" });
    let first = claim_with_key(&app, &ada, "claim-1", &body).await;
    let again = claim_with_key(&app, &ada, "claim-1", &body).await;
    assert_eq!(first.status, Status::Created, "{}", first.body);
    assert_eq!(again.status, Status::Created);
    assert_eq!(first.body, again.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(app.count("SELECT COUNT(*) FROM social_engagements"), 1);
    assert_eq!(balance_of(&app, &ada).await, 50);

    // The same key with another request is refused; a new key meets the one-claim rule.
    let other = json!({ "task_id": "task_youtube_subscribe", "proof_url": "https://x.com/ada" });
    claim_with_key(&app, &ada, "claim-1", &other)
        .await
        .assert_problem(422);
    let conflict = claim_with_key(&app, &ada, "claim-2", &body).await;
    conflict.assert_problem(409);
    // The refusal is remembered under its key.
    let replayed = claim_with_key(&app, &ada, "claim-2", &body).await;
    replayed.assert_problem(409);
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    assert_eq!(app.count("SELECT COUNT(*) FROM social_engagements"), 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM token_lots WHERE source = 'reward'"),
        1
    );
    assert_eq!(balance_of(&app, &ada).await, 50);
    assert_ledger_consistent(&app);
}

#[rocket::async_test]
async fn bad_claims_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    seed_tasks(&app);
    let (ada, _) = verified_user(&app, "ada@example.com").await;
    let before = app.snapshot();
    let url = "https://x.com/ada";
    let long = "a".repeat(10_000);
    let cases: Vec<(Value, u16, Option<&str>)> = vec![
        (
            json!({ "task_id": "task_x_follow", "proof_url": "javascript:alert(1)" }),
            422,
            Some("proof_url"),
        ),
        (
            json!({ "task_id": "task_x_follow", "proof_url": "ftp://x.com/a" }),
            422,
            Some("proof_url"),
        ),
        (
            json!({ "task_id": "task_x_follow", "proof_url": "https://" }),
            422,
            Some("proof_url"),
        ),
        (
            json!({ "task_id": "task_x_follow", "proof_url": "" }),
            422,
            Some("proof_url"),
        ),
        (
            json!({ "task_id": "task_x_follow", "proof_url": format!("https://x.com/{}", "a".repeat(2048)) }),
            422,
            Some("proof_url"),
        ),
        (
            json!({ "task_id": "task_x_follow", "proof_url": url, "handle": "" }),
            422,
            Some("handle"),
        ),
        (
            json!({ "task_id": "task_x_follow", "proof_url": url, "handle": "@" }),
            422,
            Some("handle"),
        ),
        (
            json!({ "task_id": "task_x_follow", "proof_url": url, "handle": "ada lovelace" }),
            422,
            Some("handle"),
        ),
        (
            json!({ "task_id": "task_x_follow", "proof_url": url, "handle": "ada'; DROP TABLE users; --" }),
            422,
            Some("handle"),
        ),
        (
            json!({ "task_id": "task_x_follow", "proof_url": url, "handle": "a".repeat(65) }),
            422,
            Some("handle"),
        ),
        (
            json!({ "task_id": "task_x_follow", "proof_url": url, "handle": "zoë" }),
            422,
            Some("handle"),
        ),
        (
            json!({ "task_id": "", "proof_url": url }),
            422,
            Some("task_id"),
        ),
        (
            json!({ "task_id": long, "proof_url": url }),
            422,
            Some("task_id"),
        ),
        (
            json!({ "task_id": "task_x_follow", "proof_url": url, "reward_tokens": 1000 }),
            422,
            None,
        ),
        (json!({ "task_id": "task_x_follow" }), 422, None),
        (json!({ "task_id": 5, "proof_url": url }), 422, None),
        (
            json!({ "task_id": "task_x_follow", "proof_url": url, "handle": 7 }),
            422,
            None,
        ),
        (
            json!({ "task_id": "no_such_task", "proof_url": url }),
            404,
            None,
        ),
        (
            json!({ "task_id": "task_retired", "proof_url": url }),
            404,
            None,
        ),
    ];
    for (body, status, field) in cases {
        let reply = app
            .post("/api/tokens/social", body.clone(), Some(&ada))
            .await;
        reply.assert_problem(status);
        if let Some(field) = field {
            assert!(
                reply.body["errors"][field].is_array(),
                "{body}: {}",
                reply.body
            );
        }
    }
    for raw in ["{\"task_id\": ", "[]", "null", ""] {
        let reply = app
            .send("POST", "/api/tokens/social", Some(raw), Some(&ada), None)
            .await;
        assert!(
            matches!(reply.status.code, 400 | 422),
            "{raw}: {}",
            reply.body
        );
        reply.assert_problem(reply.status.code);
    }
    app.post(
        "/api/tokens/social",
        json!({ "task_id": "task_x_follow", "proof_url": url }),
        None,
    )
    .await
    .assert_problem(401);
    assert_eq!(
        app.snapshot(),
        before,
        "a refused claim changed the database"
    );
}
