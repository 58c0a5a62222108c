//! Free-token farming through social tasks (issue 10, item 4): rewards need a verified
//! email, and the daily caps hold across the accounts of one client address.

use rocket::figment::providers::Serialized;
use rocket::http::Status;

use crate::helpers::*;

const HOME: &str = "203.0.113.9";
const ELSEWHERE: &str = "198.51.100.4";

fn claims_of(app: &TestApp, user_id: &str) -> i64 {
    app.db()
        .query_row(
            "SELECT COUNT(*) FROM social_engagements WHERE user_id = ?1",
            [user_id],
            |r| r.get(0),
        )
        .unwrap()
}

#[rocket::async_test]
async fn an_unverified_account_cannot_claim_a_reward() {
    let app = spawn_app().await;
    seed_tasks(&app);
    let (ada, ada_id) = user(&app, "ada@example.com").await;

    let refused = claim(&app, &ada, "task_x_follow", None).await;
    refused.assert_problem(403);
    assert_eq!(
        refused.body["type"],
        "urn:audiostudio:problem:email-not-verified"
    );
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(detail.contains("verify your email"), "{detail}");
    assert_eq!(claims_of(&app, &ada_id), 0);
    assert_eq!(balance(&app, &ada).await["balance"], 0);
    // The task stays available to them, and a verified account claims it as before.
    app.verify_email(&ada_id);
    let paid = claim(&app, &ada, "task_x_follow", None).await;
    assert_eq!(paid.status, Status::Created, "{}", paid.body);
    assert_eq!(paid.body["balance"], 50);
}

#[rocket::async_test]
async fn the_operator_can_let_unverified_accounts_claim() {
    let app = spawn_app_with(|f| {
        f.merge(Serialized::global(
            "social_rewards_require_verified_email",
            false,
        ))
    })
    .await;
    seed_tasks(&app);
    let (ada, _) = user(&app, "ada@example.com").await;
    let paid = claim(&app, &ada, "task_x_follow", None).await;
    assert_eq!(paid.status, Status::Created, "{}", paid.body);
    assert_eq!(paid.body["balance"], 50);
}

#[rocket::async_test]
async fn the_per_ip_cap_holds_across_accounts_on_defaults() {
    let app = spawn_app().await;
    seed_tasks(&app);
    // Ten accounts from one address take the two auto-approved tasks: 1,000 tokens,
    // the default cap per address and UTC day.
    for i in 0..10 {
        let (token, _) = verified_user(&app, &format!("farm{i}@example.com")).await;
        for task in ["task_x_follow", "task_youtube_subscribe"] {
            let reply = claim_from(&app, &token, task, HOME).await;
            assert_eq!(reply.status, Status::Created, "{i} {task}: {}", reply.body);
        }
    }
    let (eleventh, eleventh_id) = verified_user(&app, "farm10@example.com").await;
    let refused = claim_from(&app, &eleventh, "task_x_follow", HOME).await;
    refused.assert_problem(429);
    assert!(refused.header("retry-after").is_some());
    assert_eq!(claims_of(&app, &eleventh_id), 0);
    assert_eq!(balance(&app, &eleventh).await["balance"], 0);
}

#[rocket::async_test]
async fn the_per_ip_cap_counts_every_account_and_resets_at_utc_midnight() {
    let app =
        spawn_app_with(|f| f.merge(Serialized::global("social_daily_reward_cap_per_ip", 200)))
            .await;
    seed_tasks(&app);
    let (ada, _) = verified_user(&app, "ada@example.com").await;
    let (bob, _) = verified_user(&app, "bob@example.com").await;
    let (eve, eve_id) = verified_user(&app, "eve@example.com").await;
    for (token, task) in [
        (&ada, "task_x_follow"),
        (&ada, "task_youtube_subscribe"),
        (&bob, "task_x_follow"),
        (&bob, "task_youtube_subscribe"),
    ] {
        let reply = claim_from(&app, token, task, HOME).await;
        assert_eq!(reply.status, Status::Created, "{}", reply.body);
    }
    // 200 tokens claimed from HOME today: a third account there is refused...
    let refused = claim_from(&app, &eve, "task_x_follow", HOME).await;
    refused.assert_problem(429);
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(detail.contains("200"), "{detail}");
    let retry: i64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry), "{retry}");
    assert_eq!(refused.header("ratelimit-policy"), Some("200;w=86400"));
    assert_eq!(claims_of(&app, &eve_id), 0);
    // ...a pending claim (an admin's review) counts as well...
    let pending = claim_from(&app, &eve, "task_instagram_share", HOME).await;
    pending.assert_problem(429);
    // ...while the same account from another address is not held back by HOME's claims.
    let elsewhere = claim_from(&app, &eve, "task_x_follow", ELSEWHERE).await;
    assert_eq!(elsewhere.status, Status::Created, "{}", elsewhere.body);

    // The next UTC day HOME has its full cap again.
    app.clock.advance_secs(retry);
    let eve = app.login("eve@example.com", PASSWORD).await;
    let next_day = claim_from(&app, access(&eve.body), "task_youtube_subscribe", HOME).await;
    assert_eq!(next_day.status, Status::Created, "{}", next_day.body);
    let stored: Vec<String> = app.column(&format!(
        "SELECT client_ip FROM social_engagements WHERE user_id = '{eve_id}' ORDER BY created_at"
    ));
    assert_eq!(stored, [ELSEWHERE, HOME]);
}

#[rocket::async_test]
async fn an_ipv6_client_is_capped_by_its_64_prefix() {
    let app =
        spawn_app_with(|f| f.merge(Serialized::global("social_daily_reward_cap_per_ip", 50))).await;
    seed_tasks(&app);
    let (ada, _) = verified_user(&app, "ada@example.com").await;
    let (bob, _) = verified_user(&app, "bob@example.com").await;
    let first = claim_from(&app, &ada, "task_x_follow", "2001:db8:1:2::1").await;
    assert_eq!(first.status, Status::Created, "{}", first.body);
    claim_from(&app, &bob, "task_x_follow", "2001:db8:1:2:ffff::9")
        .await
        .assert_problem(429);
    let other = claim_from(&app, &bob, "task_x_follow", "2001:db8:1:3::1").await;
    assert_eq!(other.status, Status::Created, "{}", other.body);
}
