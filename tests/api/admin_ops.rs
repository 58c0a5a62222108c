//! The console's other screens: the claims queue, webhooks, the audit log, the money
//! checks, overview, system and a user's billing.

use rocket::http::Status;
use serde_json::json;

use crate::admin_helpers::*;
use crate::helpers::*;

fn insert_event(app: &TestApp, id: &str, status: &str, kind: &str) {
    let payload = json!({ "id": id, "type": kind, "data": { "object": { "id": format!("obj_{id}"), "customer": "cus_ada" } } });
    app.db()
        .execute(
            "INSERT INTO webhook_events (id, event_type, payload, object_id, status, attempts, last_error, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 8, 'handler exploded', ?6)",
            rusqlite::params![id, kind, payload.to_string(), format!("obj_{id}"), status, app.clock_now()],
        )
        .unwrap();
}

#[rocket::async_test]
async fn the_claims_queue_puts_pending_first_and_approve_or_reject_decides_once() {
    let app = spawn_app().await;
    let (cookie, _, root) = console_admin(&app).await;
    seed_tasks(&app);
    let (ada_token, _) = verified_user(&app, "ada@example.com").await;
    let (bob_token, _) = verified_user(&app, "bob@example.com").await;
    let first = claim(&app, &ada_token, "task_instagram_share", None).await;
    assert_eq!(first.status, Status::Created, "{}", first.body);
    app.clock.advance_secs(5);
    claim(&app, &bob_token, "task_instagram_share", None).await;
    claim(&app, &ada_token, "task_x_follow", None).await; // auto-approved
    let queue = cget(&app, "/admin/api/claims", &cookie).await;
    assert_eq!(queue.status, Status::Ok, "{}", queue.body);
    let claims = queue.body["claims"].as_array().unwrap();
    let statuses: Vec<_> = claims
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["pending", "pending", "approved"]);
    assert_eq!(claims[0]["email"], "ada@example.com");
    assert_eq!(
        (
            claims[0]["claims_today"].as_i64(),
            claims[0]["daily_cap"].as_i64()
        ),
        (Some(200), Some(500))
    );
    let paged = cget(&app, "/admin/api/claims?limit=1", &cookie).await;
    let cursor = paged.body["next_cursor"].as_str().unwrap();
    let next = cget(
        &app,
        &format!("/admin/api/claims?limit=1&cursor={cursor}"),
        &cookie,
    )
    .await;
    assert_eq!(next.body["claims"][0]["email"], "bob@example.com");
    cget(&app, "/admin/api/claims?status=maybe", &cookie)
        .await
        .assert_problem(422);

    let ada_claim = claims[0]["id"].as_str().unwrap();
    let approved = cpost(
        &app,
        &format!("/admin/api/claims/{ada_claim}/approve"),
        json!({}),
        &cookie,
    )
    .await;
    assert_eq!(approved.body["status"], "approved", "{}", approved.body);
    assert_eq!(approved.body["reviewed_by"], root.as_str());
    assert_eq!(balance(&app, &ada_token).await["balance"], 200);
    assert_ledger_consistent(&app);
    cpost(
        &app,
        &format!("/admin/api/claims/{ada_claim}/approve"),
        json!({}),
        &cookie,
    )
    .await
    .assert_problem(409);
    let bob_claim = claims[1]["id"].as_str().unwrap();
    cpost(
        &app,
        &format!("/admin/api/claims/{bob_claim}/reject"),
        json!({ "reason": "" }),
        &cookie,
    )
    .await
    .assert_problem(422);
    let rejected = cpost(
        &app,
        &format!("/admin/api/claims/{bob_claim}/reject"),
        json!({ "reason": "not your account" }),
        &cookie,
    )
    .await;
    assert_eq!(
        (
            rejected.body["status"].as_str(),
            rejected.body["reason"].as_str()
        ),
        (Some("rejected"), Some("not your account"))
    );
    assert_eq!(last_audit(&app).0, "tokens.social_rejected");
    cpost(&app, "/admin/api/claims/nope/approve", json!({}), &cookie)
        .await
        .assert_problem(404);
}

#[rocket::async_test]
async fn webhooks_are_browsed_and_a_failed_one_is_replayed() {
    let app = spawn_app().await;
    let (cookie, token, _) = console_admin(&app).await;
    insert_event(&app, "evt_failed", "failed", "nothing.we.handle");
    app.clock.advance_secs(1);
    insert_event(&app, "evt_done", "processed", "invoice.paid");
    let all = cget(&app, "/admin/api/webhooks", &cookie).await;
    assert_eq!(all.status, Status::Ok, "{}", all.body);
    assert_eq!(all.body["events"][0]["id"], "evt_done");
    let failed = app
        .get(
            "/api/admin/webhooks?status=failed&object=obj_evt_failed",
            Some(&token),
        )
        .await;
    assert_eq!(failed.body["events"].as_array().unwrap().len(), 1);
    assert_eq!(failed.body["events"][0]["last_error"], "handler exploded");
    let by_type = cget(&app, "/admin/api/webhooks?type=invoice.paid", &cookie).await;
    assert_eq!(by_type.body["events"][0]["id"], "evt_done");
    cget(&app, "/admin/api/webhooks?status=lost", &cookie)
        .await
        .assert_problem(422);
    let detail = cget(&app, "/admin/api/webhooks/evt_failed", &cookie).await;
    assert_eq!(
        detail.body["payload"]["data"]["object"]["id"],
        "obj_evt_failed"
    );
    cget(&app, "/admin/api/webhooks/evt_none", &cookie)
        .await
        .assert_problem(404);
    cpost(
        &app,
        "/admin/api/webhooks/evt_done/replay",
        json!({}),
        &cookie,
    )
    .await
    .assert_problem(409);
    let replayed = cpost(
        &app,
        "/admin/api/webhooks/evt_failed/replay",
        json!({}),
        &cookie,
    )
    .await;
    assert_eq!(replayed.status, Status::Ok, "{}", replayed.body);
    assert_ne!(replayed.body["status"], "failed");
    assert_eq!(last_audit(&app).0, "webhooks.retry");
    insert_event(&app, "evt_failed_2", "failed", "nothing.we.handle");
    let all = cpost(
        &app,
        "/admin/api/webhooks/replay-failed",
        json!({}),
        &cookie,
    )
    .await;
    assert_eq!(all.body, json!({ "requeued": 1 }));
}

#[rocket::async_test]
async fn the_audit_log_is_filtered_read_row_by_row_and_verified() {
    let app = spawn_app().await;
    let (cookie, _, root) = console_admin(&app).await;
    let (_, ada) = user(&app, "ada@example.com").await;
    cpost(
        &app,
        &format!("/admin/api/users/{ada}/unlock"),
        json!({}),
        &cookie,
    )
    .await;
    let mine = cget(
        &app,
        &format!("/admin/api/audit?actor={root}&action=admin."),
        &cookie,
    )
    .await;
    let actions: Vec<_> = mine.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["admin.user_unlocked", "admin.console_login"]);
    let about = cget(&app, &format!("/admin/api/audit?target={ada}"), &cookie).await;
    assert_eq!(about.body["entries"][0]["actor_email"], "root@example.com");
    let id = about.body["entries"][0]["id"].as_i64().unwrap();
    let row = cget(&app, &format!("/admin/api/audit/{id}"), &cookie).await;
    assert_eq!(row.body["hash"].as_str().unwrap().len(), 64);
    cget(&app, "/admin/api/audit/999999", &cookie)
        .await
        .assert_problem(404);
    cget(&app, "/admin/api/audit/abc", &cookie)
        .await
        .assert_problem(404);
    // `verify` is not a row id, and the path is the verify route's, which only takes POST.
    cget(&app, "/admin/api/audit/verify", &cookie)
        .await
        .assert_problem(405);
    // A `+` left unencoded arrives as a space; it is read back as the offset's `+`.
    let unencoded = cget(
        &app,
        "/admin/api/audit?from=2026-01-01T00:00:00+01:00",
        &cookie,
    )
    .await;
    assert_eq!(unencoded.status.code, 200, "{}", unencoded.body);
    cget(&app, "/admin/api/audit?from=yesterday", &cookie)
        .await
        .assert_problem(422);
    let verdict = cpost(&app, "/admin/api/audit/verify", json!({}), &cookie).await;
    let head: i64 = app
        .db()
        .query_row("SELECT MAX(id) FROM audit_logs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        (
            verdict.body["intact"].as_bool(),
            verdict.body["head_id"].as_i64()
        ),
        (Some(true), Some(head))
    );
    app.db()
        .execute(
            "UPDATE audit_logs SET details = '{\"forged\":1}' WHERE id = 1",
            [],
        )
        .unwrap();
    let broken = cpost(&app, "/admin/api/audit/verify", json!({}), &cookie).await;
    assert_eq!(broken.body["intact"], false);
    assert!(
        broken.body["problem"]
            .as_str()
            .unwrap()
            .starts_with("row 1"),
        "{}",
        broken.body
    );
}

/// The chart as the ledger tells it: spends and captured holds per UTC day of the last 30.
fn spend_chart_from_the_ledger(app: &TestApp) -> Vec<i64> {
    let today = app.clock_now().div_euclid(86_400_000);
    let mut days = vec![0; 30];
    let db = app.db();
    let mut stmt = db
        .prepare(
            "SELECT created_at / 86400000, -amount FROM token_transactions WHERE kind = 'spend'
             UNION ALL SELECT settled_at / 86400000, captured FROM token_holds WHERE status = 'captured'",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
        .unwrap();
    for (day, tokens) in rows.map(Result::unwrap) {
        if let Some(slot) = usize::try_from(day - (today - 29))
            .ok()
            .and_then(|i| days.get_mut(i))
        {
            *slot += tokens;
        }
    }
    days
}

async fn spend_chart(app: &TestApp, cookie: &str) -> Vec<i64> {
    let overview = cget(app, "/admin/api/overview", cookie).await;
    assert_eq!(overview.status, Status::Ok, "{}", overview.body);
    overview.body["spend_per_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["tokens"].as_i64().unwrap())
        .collect()
}

/// Days pass: both sessions would have ended, so Ada and the admin sign in again.
async fn days_later(app: &TestApp, days: i64) -> (String, String) {
    app.clock.advance_secs(days * 86_400);
    let ada = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(ada.status, Status::Ok, "{}", ada.body);
    let console = console_login(app, "root@example.com", PASSWORD).await;
    assert_eq!(console.status, Status::Ok, "{}", console.body);
    (access(&ada.body).to_owned(), cookie_of(&console))
}

async fn spend(app: &TestApp, token: &str, amount: i64) {
    let used = app
        .post(
            "/api/tokens/use",
            json!({ "amount": amount, "feature": "music_generation" }),
            Some(token),
        )
        .await;
    assert_eq!(used.status, Status::Ok, "{}", used.body);
}

#[rocket::async_test]
async fn the_spend_chart_counts_every_spend_and_capture_by_day_including_ones_after_a_visit() {
    let app = spawn_app().await;
    let (cookie, _, _) = console_admin(&app).await;
    let (ada_token, ada) = user(&app, "ada@example.com").await;
    console_grant(&app, &cookie, &ada, 10_000).await;
    // A spend that the window will leave behind, then two more days of spends.
    spend(&app, &ada_token, 1_000).await;
    let (ada_token, _) = days_later(&app, 10).await;
    spend(&app, &ada_token, 7).await;
    spend(&app, &ada_token, 8).await;
    let (ada_token, cookie) = days_later(&app, 1).await;
    spend(&app, &ada_token, 20).await;
    assert_eq!(
        spend_chart(&app, &cookie).await,
        spend_chart_from_the_ledger(&app)
    );
    let (ada_token, cookie) = days_later(&app, 28).await;
    let chart = spend_chart(&app, &cookie).await;
    assert_eq!(chart, spend_chart_from_the_ledger(&app));
    assert_eq!(
        (chart[0], chart[1], chart.iter().sum::<i64>()),
        (15, 20, 35)
    );
    // After a first visit: a spend, a hold captured in part and one released.
    spend(&app, &ada_token, 3).await;
    for (capture, amount) in [(Some(40), 50), (None, 60)] {
        let hold = app
            .post(
                "/api/tokens/holds",
                json!({ "amount": amount, "feature": "music_generation" }),
                Some(&ada_token),
            )
            .await;
        assert_eq!(hold.status, Status::Created, "{}", hold.body);
        let id = hold.body["id"].as_str().unwrap();
        let settled = match capture {
            Some(amount) => {
                app.post(
                    &format!("/api/tokens/holds/{id}/capture"),
                    json!({ "amount": amount }),
                    Some(&ada_token),
                )
                .await
            }
            None => {
                app.post(
                    &format!("/api/tokens/holds/{id}/release"),
                    json!({}),
                    Some(&ada_token),
                )
                .await
            }
        };
        assert_eq!(settled.status, Status::Ok, "{}", settled.body);
    }
    let chart = spend_chart(&app, &cookie).await;
    assert_eq!(chart, spend_chart_from_the_ledger(&app));
    assert_eq!((chart[29], chart.iter().sum::<i64>()), (43, 78));
    // A day later the window has moved on by one.
    let (_, cookie) = days_later(&app, 1).await;
    let chart = spend_chart(&app, &cookie).await;
    assert_eq!(chart, spend_chart_from_the_ledger(&app));
    assert_eq!(
        (chart[28], chart[29], chart.iter().sum::<i64>()),
        (43, 0, 63)
    );
}

#[rocket::async_test]
async fn overview_system_checks_shortfalls_billing_and_analytics() {
    let app = spawn_app().await;
    let (cookie, token, _) = console_admin(&app).await;
    let (ada_token, ada) = user(&app, "ada@example.com").await;
    console_grant(&app, &cookie, &ada, 100).await;
    app.post(
        "/api/tokens/use",
        json!({ "amount": 30, "feature": "music_generation" }),
        Some(&ada_token),
    )
    .await;
    insert_event(&app, "evt_failed", "failed", "nothing.we.handle");
    // The overview shows the newest ledger check (the server's periodic one, or this one).
    cget(&app, "/admin/api/checks/ledger", &cookie).await;
    let overview = cget(&app, "/admin/api/overview", &cookie).await;
    assert_eq!(overview.status, Status::Ok, "{}", overview.body);
    assert_eq!(overview.body["alerts"]["failed_webhooks"], 1);
    assert_eq!(overview.body["alerts"]["last_ledger_check"]["clean"], true);
    assert_eq!(
        (
            overview.body["kpis"]["users"].as_i64(),
            overview.body["kpis"]["tokens_outstanding"].as_i64()
        ),
        (Some(2), Some(70))
    );
    let days = overview.body["spend_per_day"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    assert_eq!(days[29]["tokens"], 30, "{}", overview.body);
    let system = app.get("/api/admin/system", Some(&token)).await;
    assert_eq!(system.body["schema_version"], latest_migration());
    assert_eq!(system.body["email_mode"], "log");
    assert_eq!(system.body["stripe"]["configured"], false);
    assert!(system.body["db_bytes"].as_u64().unwrap() > 0);
    assert!(system.body["config"]["jwt_issuer"].is_string());
    assert!(!system.body.to_string().contains(&token));
    let check = cget(&app, "/admin/api/checks/ledger", &cookie).await;
    assert_eq!(
        (
            check.body["clean"].as_bool(),
            check.body["users_checked"].as_u64()
        ),
        (Some(true), Some(2))
    );
    app.db()
        .execute("UPDATE users SET token_balance = 7 WHERE id = ?1", [&ada])
        .unwrap();
    let broken = cget(&app, "/admin/api/checks/ledger", &cookie).await;
    assert_eq!(broken.body["mismatches"][0]["user_id"], ada.as_str());
    assert_eq!(broken.body["mismatches"][0]["actual"], 7);
    // The overview now shows that check: a mismatch, at the time it ran.
    let overview = cget(&app, "/admin/api/overview", &cookie).await;
    assert_eq!(
        overview.body["alerts"]["last_ledger_check"],
        json!({ "at": broken.body["checked_at"], "clean": false })
    );
    let shortfalls = cget(
        &app,
        &format!("/admin/api/token-shortfalls?user_id={ada}"),
        &cookie,
    )
    .await;
    assert_eq!(
        shortfalls.body,
        json!({ "shortfalls": [], "total": 0, "next_cursor": null })
    );
    let billing = cget(&app, &format!("/admin/api/users/{ada}/billing"), &cookie).await;
    assert_eq!(
        billing.body,
        json!({ "stripe_customer_id": null, "subscription": null, "changes": [], "purchases": [] })
    );
    cget(&app, "/admin/api/users/nobody/billing", &cookie)
        .await
        .assert_problem(404);
    let analytics = cget(&app, "/admin/api/analytics", &cookie).await;
    assert_eq!(analytics.status, Status::Ok, "{}", analytics.body);
}

#[rocket::async_test]
async fn the_server_runs_the_ledger_check_every_interval_for_the_overview() {
    let app = spawn_app_with(|f| {
        f.merge(rocket::figment::providers::Serialized::global(
            "ledger_check_interval_secs",
            1,
        ))
    })
    .await;
    let (cookie, _, _) = console_admin(&app).await;
    let (_, ada) = user(&app, "ada@example.com").await;
    app.db()
        .execute("UPDATE users SET token_balance = 7 WHERE id = ?1", [&ada])
        .unwrap();
    // Nobody runs the check: the server's own run finds the mismatch within a few seconds.
    let mut seen = serde_json::Value::Null;
    for _ in 0..50 {
        seen = cget(&app, "/admin/api/overview", &cookie).await.body["alerts"]["last_ledger_check"]
            .clone();
        if seen["clean"] == false {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen["clean"], false, "{seen}");
    assert!(seen["at"].is_string(), "{seen}");
}
