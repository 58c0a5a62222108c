//! The admin's token actions on one user: read, grant, adjust down, force-release a hold;
//! idempotent, audited, and the ledger consistent after every one.

use rocket::http::Status;
use serde_json::json;

use crate::admin_helpers::*;
use crate::helpers::*;

#[rocket::async_test]
async fn a_grant_with_a_reason_shows_in_the_ledger_and_is_replayed_for_its_key() {
    let app = spawn_app().await;
    let (cookie, _, root) = console_admin(&app).await;
    let (ada_token, ada) = user(&app, "ada@example.com").await;
    let path = format!("/admin/api/users/{ada}/tokens/grant");
    let body = json!({ "amount": 500, "reason": "welcome", "expires_at": "2099-01-01T00:00:00Z" });
    let first = cpost_key(&app, &path, body.clone(), &cookie, "k-1").await;
    assert_eq!(first.status, Status::Created, "{}", first.body);
    assert_eq!(first.body["balance"], 500);
    assert_eq!(first.body["entry"]["kind"], "grant");
    assert_eq!(first.body["entry"]["reason"], "welcome");
    assert_ledger_consistent(&app);
    let again = cpost_key(&app, &path, body.clone(), &cookie, "k-1").await;
    assert_eq!((again.status, &again.body), (Status::Created, &first.body));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(balance(&app, &ada_token).await["balance"], 500);
    let (action, actor, target, details) = last_audit(&app);
    assert_eq!(
        (action.as_str(), actor, target),
        ("tokens.admin_grant", Some(root), Some(ada.clone()))
    );
    assert_eq!(details["reason"], "welcome");
    cpost_key(
        &app,
        &path,
        json!({ "amount": 1, "reason": "other" }),
        &cookie,
        "k-1",
    )
    .await
    .assert_problem(422);
    let before = app.snapshot();
    for bad in [
        json!({ "amount": 0, "reason": "x" }),
        json!({ "amount": 5, "reason": "" }),
        json!({ "amount": 5, "reason": "x", "expires_at": "2001-01-01T00:00:00Z" }),
        json!({ "amount": 5, "reason": "x", "extra": 1 }),
    ] {
        cpost_key(&app, &path, bad, &cookie, "k-bad")
            .await
            .assert_problem(422);
    }
    assert_eq!(
        app.snapshot().replace("k-bad", ""),
        before,
        "a refusal stores nothing but its key"
    );
    let tokens = cget(&app, &format!("/admin/api/users/{ada}/tokens"), &cookie).await;
    assert_eq!(
        tokens.body,
        json!({ "balance": 500, "held": 0, "available": 500, "expiring_7d": 0 })
    );
    let lots = cget(&app, &format!("/admin/api/users/{ada}/lots"), &cookie).await;
    assert_eq!(lots.body["lots"][0]["source"], "admin");
    let ledger = cget(
        &app,
        &format!("/admin/api/users/{ada}/ledger?limit=1"),
        &cookie,
    )
    .await;
    assert_eq!(ledger.body["entries"][0]["amount"], 500);
    assert!(ledger.body["next_cursor"].is_null());
}

#[rocket::async_test]
async fn an_adjustment_takes_tokens_away_but_never_below_zero() {
    let app = spawn_app().await;
    let (_, token, _) = console_admin(&app).await;
    let (ada_token, ada) = user(&app, "ada@example.com").await;
    let grant = format!("/api/admin/users/{ada}/tokens/grant");
    post_with_key(
        &app,
        &grant,
        json!({ "amount": 300, "reason": "start" }),
        &token,
        "g",
    )
    .await;
    let path = format!("/api/admin/users/{ada}/tokens/adjust");
    let taken = post_with_key(
        &app,
        &path,
        json!({ "amount": 120, "reason": "duplicate grant" }),
        &token,
        "a-1",
    )
    .await;
    assert_eq!(taken.status, Status::Created, "{}", taken.body);
    assert_eq!(
        (
            taken.body["balance"].as_i64(),
            taken.body["entry"]["amount"].as_i64()
        ),
        (Some(180), Some(-120))
    );
    assert_ledger_consistent(&app);
    let replay = post_with_key(
        &app,
        &path,
        json!({ "amount": 120, "reason": "duplicate grant" }),
        &token,
        "a-1",
    )
    .await;
    assert_eq!(
        (replay.status, &replay.body),
        (Status::Created, &taken.body)
    );
    assert_eq!(
        balance(&app, &ada_token).await["balance"],
        180,
        "a replay takes nothing more"
    );
    post_with_key(
        &app,
        &path,
        json!({ "amount": 181, "reason": "too much" }),
        &token,
        "a-2",
    )
    .await
    .assert_problem(409);
    assert_eq!(balance(&app, &ada_token).await["balance"], 180);
    assert_ledger_consistent(&app);
    let (action, _, _, details) = last_audit(&app);
    assert_eq!(
        (action.as_str(), details["amount"].as_i64()),
        ("tokens.admin_adjust", Some(120))
    );
    // A held token is not available to take away.
    let hold = app
        .post(
            "/api/tokens/holds",
            json!({ "amount": 100, "feature": "music_generation" }),
            Some(&ada_token),
        )
        .await;
    assert_eq!(hold.status, Status::Created, "{}", hold.body);
    post_with_key(
        &app,
        &path,
        json!({ "amount": 81, "reason": "held ones" }),
        &token,
        "a-3",
    )
    .await
    .assert_problem(409);
    let ok = post_with_key(
        &app,
        &path,
        json!({ "amount": 80, "reason": "all that is free" }),
        &token,
        "a-4",
    )
    .await;
    assert_eq!(ok.body["balance"], 0);
    assert_ledger_consistent(&app);
}

#[rocket::async_test]
async fn a_hold_is_force_released_once_and_the_ledger_stays_consistent() {
    let app = spawn_app().await;
    let (cookie, _, _) = console_admin(&app).await;
    let (ada_token, ada) = user(&app, "ada@example.com").await;
    console_grant(&app, &cookie, &ada, 50).await;
    let hold = app
        .post(
            "/api/tokens/holds",
            json!({ "amount": 30, "feature": "music_generation" }),
            Some(&ada_token),
        )
        .await;
    let hold_id = hold.body["id"].as_str().unwrap().to_owned();
    let holds = cget(
        &app,
        &format!("/admin/api/users/{ada}/holds?status=open"),
        &cookie,
    )
    .await;
    assert_eq!(holds.body["holds"][0]["id"], hold_id.as_str());
    cget(
        &app,
        &format!("/admin/api/users/{ada}/holds?status=held"),
        &cookie,
    )
    .await
    .assert_problem(422);
    let path = format!("/admin/api/users/{ada}/holds/{hold_id}/release");
    let released = cpost_key(
        &app,
        &path,
        json!({ "reason": "stuck job" }),
        &cookie,
        "r-1",
    )
    .await;
    assert_eq!(released.status, Status::Ok, "{}", released.body);
    assert_eq!(
        (
            released.body["hold"]["status"].as_str(),
            released.body["balance"].as_i64()
        ),
        (Some("released"), Some(50))
    );
    assert_ledger_consistent(&app);
    let replay = cpost_key(
        &app,
        &path,
        json!({ "reason": "stuck job" }),
        &cookie,
        "r-1",
    )
    .await;
    assert_eq!(replay.body, released.body);
    cpost_key(
        &app,
        &path,
        json!({ "reason": "stuck job" }),
        &cookie,
        "r-2",
    )
    .await
    .assert_problem(409);
    cpost_key(
        &app,
        &format!("/admin/api/users/{ada}/holds/nohold/release"),
        json!({ "reason": "x" }),
        &cookie,
        "r-3",
    )
    .await
    .assert_problem(404);
    assert_eq!(last_audit(&app).0, "tokens.admin_hold_release");
    assert_ledger_consistent(&app);
}
