//! Token analytics: spent per day or feature and earned per source, equal to what the ledger says.

use std::collections::BTreeMap;

use audiostudio::platform::clock::rfc3339;
use rocket::http::Status;
use serde_json::{Value, json};

use crate::helpers::*;

type Groups = BTreeMap<String, (i64, i64)>;

async fn add(app: &TestApp, root: &str, email: &str, amount: i64) {
    let reply = app
        .post(
            "/api/tokens/add",
            json!({ "email": email, "amount": amount, "reason": "analytics test" }),
            Some(root),
        )
        .await;
    assert_eq!(reply.status, Status::Created, "{}", reply.body);
}

async fn spend(app: &TestApp, token: &str, amount: i64, feature: &str) {
    let reply = app
        .post(
            "/api/tokens/use",
            json!({ "amount": amount, "feature": feature }),
            Some(token),
        )
        .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
}

async fn report(app: &TestApp, path: &str, token: &str) -> Value {
    let reply = app.get(path, Some(token)).await;
    assert_eq!(reply.status, Status::Ok, "{path}: {}", reply.body);
    reply.body
}

fn spent_groups(report: &Value) -> Groups {
    report["spent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["key"].as_str().unwrap().to_owned(),
                (g["tokens"].as_i64().unwrap(), g["jobs"].as_i64().unwrap()),
            )
        })
        .collect()
}

fn earned_groups(report: &Value) -> BTreeMap<String, i64> {
    report["earned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["source"].as_str().unwrap().to_owned(),
                g["tokens"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Spend rows of the ledger itself, grouped by UTC day or by feature; all users with `None`.
fn ledger_spent(app: &TestApp, user_id: Option<&str>, by: &str) -> Groups {
    let key = match by {
        "day" => "strftime('%Y-%m-%d', created_at / 1000, 'unixepoch')",
        _ => "feature",
    };
    let db = app.db();
    let mut stmt = db
        .prepare(&format!(
            "SELECT {key}, -SUM(amount), COUNT(*) FROM token_transactions
             WHERE kind = 'spend' AND (?1 IS NULL OR user_id = ?1) GROUP BY 1"
        ))
        .unwrap();
    stmt.query_map([user_id], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn ledger_earned(app: &TestApp, user_id: Option<&str>) -> BTreeMap<String, i64> {
    let db = app.db();
    let mut stmt = db
        .prepare(
            "SELECT source, SUM(amount) FROM token_transactions
             WHERE kind = 'grant' AND (?1 IS NULL OR user_id = ?1) GROUP BY 1",
        )
        .unwrap();
    stmt.query_map([user_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn day_of(ms: i64) -> String {
    rfc3339(ms)[..10].to_owned()
}

fn groups(list: &[(&str, i64, i64)]) -> Groups {
    list.iter()
        .map(|(k, t, j)| ((*k).to_owned(), (*t, *j)))
        .collect()
}

#[rocket::async_test]
async fn the_sums_by_day_and_by_feature_equal_the_ledger() {
    let app = spawn_app().await;
    seed_tasks(&app);
    let (root, _) = admin(&app).await;
    let (ada, ada_id) = verified_user(&app, "ada@example.com").await;
    let (bob, _) = user(&app, "bob@example.com").await;
    add(&app, &root, "ada@example.com", 1000).await;
    add(&app, &root, "bob@example.com", 100).await;
    assert_eq!(
        claim(&app, &ada, "task_x_follow", None).await.status,
        Status::Created
    );
    let day1 = app.clock_now();
    spend(&app, &ada, 10, "text_to_speech").await;
    spend(&app, &ada, 20, "music_generation").await;
    spend(&app, &ada, 5, "text_to_speech").await;
    spend(&app, &bob, 99, "voice_clone").await;
    app.clock.advance_secs(86_400);
    let day2 = app.clock_now();
    let ada = access(&app.login("ada@example.com", PASSWORD).await.body).to_owned();
    spend(&app, &ada, 7, "transcription").await;
    spend(&app, &ada, 3, "text_to_speech").await;

    let by_feature = report(&app, "/api/tokens/analytics?group_by=feature", &ada).await;
    assert_eq!(by_feature["group_by"], "feature");
    assert_eq!(
        by_feature["spent"],
        json!([
            { "key": "music_generation", "tokens": 20, "jobs": 1 },
            { "key": "text_to_speech", "tokens": 18, "jobs": 3 },
            { "key": "transcription", "tokens": 7, "jobs": 1 },
        ])
    );
    assert_eq!(
        spent_groups(&by_feature),
        ledger_spent(&app, Some(&ada_id), "feature")
    );
    assert_eq!(by_feature["total_spent"], 45);
    assert_eq!(
        by_feature["earned"],
        json!([{ "source": "admin", "tokens": 1000 }, { "source": "reward", "tokens": 50 }])
    );
    assert_eq!(
        earned_groups(&by_feature),
        ledger_earned(&app, Some(&ada_id))
    );
    assert_eq!(by_feature["total_earned"], 1050);
    // The default range: the 30 UTC days ending with today.
    let tomorrow = (day2.div_euclid(86_400_000) + 1) * 86_400_000;
    assert_eq!(by_feature["to"], rfc3339(tomorrow));
    assert_eq!(by_feature["from"], rfc3339(tomorrow - 30 * 86_400_000));

    let by_day = report(&app, "/api/tokens/analytics", &ada).await;
    assert_eq!(by_day["group_by"], "day");
    assert_eq!(
        spent_groups(&by_day),
        groups(&[(&day_of(day1), 35, 3), (&day_of(day2), 10, 2)])
    );
    assert_eq!(
        spent_groups(&by_day),
        ledger_spent(&app, Some(&ada_id), "day")
    );
    assert_eq!(by_day["spent"][0]["key"], day_of(day1), "oldest day first");
    assert_eq!(by_day["total_spent"], 45);
    assert_eq!(by_day["total_earned"], 1050);

    // Each user sees only their own figures.
    let bob = access(&app.login("bob@example.com", PASSWORD).await.body).to_owned();
    let bobs = report(&app, "/api/tokens/analytics?group_by=feature", &bob).await;
    assert_eq!(
        bobs["spent"],
        json!([{ "key": "voice_clone", "tokens": 99, "jobs": 1 }])
    );
    assert_eq!(bobs["total_earned"], 100);
    let (carol, _) = user(&app, "carol@example.com").await;
    let empty = report(&app, "/api/tokens/analytics", &carol).await;
    assert_eq!(
        (
            &empty["spent"],
            &empty["earned"],
            &empty["total_spent"],
            &empty["total_earned"]
        ),
        (&json!([]), &json!([]), &json!(0), &json!(0))
    );
}

#[rocket::async_test]
async fn a_range_counts_only_what_falls_inside_it() {
    let app = spawn_app().await;
    let (root, _) = admin(&app).await;
    let (ada, _) = user(&app, "ada@example.com").await;
    add(&app, &root, "ada@example.com", 500).await;
    let day1 = app.clock_now();
    spend(&app, &ada, 11, "text_to_speech").await;
    app.clock.advance_secs(86_400);
    let day2 = app.clock_now();
    let ada = access(&app.login("ada@example.com", PASSWORD).await.body).to_owned();
    spend(&app, &ada, 22, "sound_effects").await;
    let (d1, d2) = (day_of(day1), day_of(day2));

    // A date means the whole UTC day, at either end.
    let only_day2 = report(
        &app,
        &format!("/api/tokens/analytics?from={d2}&to={d2}"),
        &ada,
    )
    .await;
    assert_eq!(spent_groups(&only_day2), groups(&[(&d2, 22, 1)]));
    assert_eq!(only_day2["from"], format!("{d2}T00:00:00Z"));
    assert_eq!(only_day2["earned"], json!([]));
    let until_day1 = report(&app, &format!("/api/tokens/analytics?to={d1}"), &ada).await;
    assert_eq!(spent_groups(&until_day1), groups(&[(&d1, 11, 1)]));
    assert_eq!(until_day1["total_earned"], 500);
    // RFC 3339 bounds: `from` inclusive, `to` exclusive.
    let at_day2 = rfc3339(day2);
    let from_exact = report(
        &app,
        &format!("/api/tokens/analytics?from={at_day2}&group_by=feature"),
        &ada,
    )
    .await;
    assert_eq!(
        spent_groups(&from_exact),
        groups(&[("sound_effects", 22, 1)])
    );
    let to_exact = report(
        &app,
        &format!("/api/tokens/analytics?to={at_day2}&group_by=feature"),
        &ada,
    )
    .await;
    assert_eq!(
        spent_groups(&to_exact),
        groups(&[("text_to_speech", 11, 1)])
    );
    // An offset works, encoded or not (an unencoded '+' arrives as a space).
    for offset in ["%2B02:00", "+02:00"] {
        let shifted = report(
            &app,
            &format!("/api/tokens/analytics?from={d2}T02:00:00{offset}&to={d2}T23:00:00{offset}"),
            &ada,
        )
        .await;
        assert_eq!(shifted["from"], format!("{d2}T00:00:00Z"), "{offset}");
    }
}

#[rocket::async_test]
async fn bad_parameters_are_refused_with_field_errors() {
    let app = spawn_app().await;
    let (root, _) = admin(&app).await;
    let (ada, _) = user(&app, "ada@example.com").await;
    let tomorrow = day_of(app.clock_now() + 86_400_000);
    let long_from = format!("from={}", "9".repeat(5000));
    let after_now = format!("from={tomorrow}");
    let cases = [
        ("from=yesterday", "from"),
        ("from=2025-02-30", "from"),
        ("to=2025-13-01", "to"),
        ("from=2025-03-01T00:00:00", "from"),
        (long_from.as_str(), "from"),
        ("group_by=month", "group_by"),
        ("group_by=", "group_by"),
        ("group_by=DAY", "group_by"),
        ("from=2025-03-02&to=2025-03-01", "to"),
        ("from=2025-03-01T12:00:00Z&to=2025-03-01T12:00:00Z", "to"),
        ("from=2024-01-01&to=2025-06-01", "to"),
        (after_now.as_str(), "to"),
    ];
    for (query, field) in cases {
        for (path, token) in [
            ("/api/tokens/analytics", &ada),
            ("/api/admin/analytics", &root),
        ] {
            let reply = app.get(&format!("{path}?{query}"), Some(token)).await;
            reply.assert_problem(422);
            assert!(
                reply.body["errors"][field].is_array(),
                "{path}?{query}: {}",
                reply.body
            );
        }
    }
    app.get("/api/tokens/analytics", None)
        .await
        .assert_problem(401);
    app.get("/api/tokens/analytics", Some("forged"))
        .await
        .assert_problem(401);
}

#[rocket::async_test]
async fn admin_analytics_covers_every_user_and_only_admins_see_it() {
    let app = spawn_app().await;
    seed_tasks(&app);
    let (root, _) = admin(&app).await;
    let (ada, _) = user(&app, "ada@example.com").await;
    let (bob, _) = verified_user(&app, "bob@example.com").await;
    add(&app, &root, "ada@example.com", 300).await;
    add(&app, &root, "bob@example.com", 200).await;
    assert_eq!(
        claim(&app, &bob, "task_youtube_subscribe", None)
            .await
            .status,
        Status::Created
    );
    spend(&app, &ada, 40, "music_generation").await;
    spend(&app, &ada, 2, "text_to_speech").await;
    spend(&app, &bob, 8, "text_to_speech").await;
    spend(&app, &bob, 30, "stem_separation").await;

    let all = report(&app, "/api/admin/analytics?group_by=feature", &root).await;
    assert_eq!(
        spent_groups(&all),
        groups(&[
            ("music_generation", 40, 1),
            ("stem_separation", 30, 1),
            ("text_to_speech", 10, 2),
        ])
    );
    assert_eq!(spent_groups(&all), ledger_spent(&app, None, "feature"));
    assert_eq!(earned_groups(&all), ledger_earned(&app, None));
    assert_eq!(
        (all["total_spent"].as_i64(), all["total_earned"].as_i64()),
        (Some(80), Some(550))
    );
    let by_day = report(&app, "/api/admin/analytics", &root).await;
    assert_eq!(spent_groups(&by_day), ledger_spent(&app, None, "day"));
    // The caller's own report is unchanged by everyone else's.
    let own = report(&app, "/api/tokens/analytics", &ada).await;
    assert_eq!(own["total_spent"], 42);

    for token in [&ada, &bob] {
        app.get("/api/admin/analytics", Some(token))
            .await
            .assert_problem(403);
    }
    app.get("/api/admin/analytics", None)
        .await
        .assert_problem(401);
}
