//! Rate limits on every route class: per user, per client IP, a global per-IP ceiling and
//! the webhook intake; the headers on every response of a limited class.

use rocket::figment::providers::Serialized;
use rocket::http::Status;
use serde_json::json;

use crate::helpers::*;

fn assert_limited(reply: &Reply, limit: u32) {
    assert_eq!(reply.status.code, 429, "{}", reply.body);
    let retry: u64 = reply
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert!(
        reply
            .header("ratelimit-policy")
            .unwrap()
            .starts_with(&format!("{limit};w=")),
        "{:?}",
        reply.header("ratelimit-policy")
    );
    assert!(reply.header("ratelimit").unwrap().contains("remaining=0"));
}

fn assert_counted(reply: &Reply, limit: u32, remaining: u32) {
    assert_ne!(reply.status.code, 429, "{}", reply.body);
    assert!(
        reply
            .header("ratelimit-policy")
            .is_some_and(|p| p.starts_with(&format!("{limit};w="))),
        "{} {:?}",
        reply.status,
        reply.headers
    );
    let state = reply.header("ratelimit").unwrap();
    assert!(
        state.contains(&format!("limit={limit}, remaining={remaining}")),
        "{state}"
    );
    assert!(reply.header("retry-after").is_none());
}

/// (setting, method, path, body) of every per-user class.
const PER_USER: &[(&str, &str, &str, &str)] = &[
    (
        "rate_limit_token_mutations_per_minute",
        "POST",
        "/api/tokens/use",
        r#"{"amount":1,"feature":"text_to_speech"}"#,
    ),
    (
        "rate_limit_token_mutations_per_minute",
        "POST",
        "/api/tokens/holds",
        r#"{"amount":1,"feature":"text_to_speech"}"#,
    ),
    (
        "rate_limit_token_mutations_per_minute",
        "POST",
        "/api/tokens/holds/hold_x/capture",
        "{}",
    ),
    (
        "rate_limit_token_mutations_per_minute",
        "POST",
        "/api/tokens/holds/hold_x/release",
        "{}",
    ),
    (
        "rate_limit_social_claims_per_hour",
        "POST",
        "/api/tokens/social",
        r#"{"task_id":"task_x_follow"}"#,
    ),
    (
        "rate_limit_checkout_per_hour",
        "POST",
        "/api/subscriptions/checkout",
        r#"{"plan":"pro"}"#,
    ),
    (
        "rate_limit_checkout_per_hour",
        "POST",
        "/api/subscriptions/portal",
        "{}",
    ),
    (
        "rate_limit_checkout_per_hour",
        "POST",
        "/api/tokens/purchase",
        r#"{"pack":"small"}"#,
    ),
    (
        "rate_limit_billing_history_per_minute",
        "GET",
        "/api/subscriptions/history",
        "",
    ),
    (
        "rate_limit_account_changes_per_hour",
        "PUT",
        "/api/auth/profile",
        r#"{"display_name":"Ada"}"#,
    ),
    (
        "rate_limit_account_changes_per_hour",
        "POST",
        "/api/auth/change-password",
        r#"{"current_password":"x","new_password":"y"}"#,
    ),
];

#[rocket::async_test]
async fn every_per_user_class_counts_each_user_and_refuses_with_429() {
    for (setting, method, path, body) in PER_USER {
        let app = spawn_app_with(|f| f.merge(Serialized::global(setting, 2))).await;
        let (ada, _) = user(&app, "ada@example.com").await;
        let (bob, _) = user(&app, "bob@example.com").await;
        let body = (!body.is_empty()).then_some(*body);
        let first = app.send(method, path, body, Some(&ada), None).await;
        assert_counted(&first, 2, 1);
        let second = app.send(method, path, body, Some(&ada), None).await;
        assert_counted(&second, 2, 0);
        let third = app.send(method, path, body, Some(&ada), None).await;
        assert_limited(&third, 2);
        // Per user: another user is not affected.
        let other = app.send(method, path, body, Some(&bob), None).await;
        assert_counted(&other, 2, 1);
    }
}

/// (setting, method, path, body) of every per-IP class.
const PER_IP: &[(&str, &str, &str, &str)] = &[
    (
        "rate_limit_login_per_minute",
        "POST",
        "/api/auth/login",
        r#"{"email":"ada@example.com","password":"wrong password!"}"#,
    ),
    (
        "rate_limit_register_per_hour",
        "POST",
        "/api/auth/register",
        r#"{"email":"x","password":"y"}"#,
    ),
    (
        "rate_limit_password_reset_per_hour",
        "POST",
        "/api/auth/request-password-reset",
        r#"{"email":"ada@example.com"}"#,
    ),
    (
        "rate_limit_password_reset_per_hour",
        "POST",
        "/api/auth/reset-password",
        r#"{"token":"t","new_password":"p"}"#,
    ),
    (
        "rate_limit_password_reset_per_hour",
        "POST",
        "/api/auth/unlock-account",
        r#"{"token":"t"}"#,
    ),
    (
        "rate_limit_public_per_minute",
        "POST",
        "/api/auth/verify-email",
        r#"{"token":"t"}"#,
    ),
    (
        "rate_limit_public_per_minute",
        "POST",
        "/api/auth/resend-verification",
        "",
    ),
    (
        "rate_limit_public_per_minute",
        "POST",
        "/api/auth/refresh",
        r#"{"refresh_token":"t"}"#,
    ),
    (
        "rate_limit_public_per_minute",
        "GET",
        "/api/subscriptions/plans",
        "",
    ),
    (
        "rate_limit_webhook_per_minute",
        "POST",
        "/api/webhooks/stripe",
        "{}",
    ),
];

#[rocket::async_test]
async fn every_per_ip_class_counts_each_address_and_refuses_with_429() {
    for (setting, method, path, body) in PER_IP {
        let app = spawn_app_with(|f| f.merge(Serialized::global(setting, 2))).await;
        let body = (!body.is_empty()).then_some(*body);
        for remaining in [1, 0] {
            let reply = app
                .send(method, path, body, None, Some("198.51.100.7"))
                .await;
            assert_counted(&reply, 2, remaining);
        }
        let refused = app
            .send(method, path, body, None, Some("198.51.100.7"))
            .await;
        assert_limited(&refused, 2);
        let other = app
            .send(method, path, body, None, Some("198.51.100.8"))
            .await;
        assert_counted(&other, 2, 1);
    }
}

#[rocket::async_test]
async fn a_200_of_a_limited_class_carries_the_headers() {
    let app =
        spawn_app_with(|f| f.merge(Serialized::global("rate_limit_public_per_minute", 5))).await;
    let plans = app.get("/api/subscriptions/plans", None).await;
    assert_eq!(plans.status, Status::Ok, "{}", plans.body);
    assert_counted(&plans, 5, 4);
    assert!(plans.header("ratelimit").unwrap().contains("reset="));
}

#[rocket::async_test]
async fn one_address_hits_the_global_ceiling_across_routes_but_not_others() {
    let app =
        spawn_app_with(|f| f.merge(Serialized::global("rate_limit_global_per_minute", 3))).await;
    let ip = Some("203.0.113.9");
    for path in ["/health", "/api/openapi.json", "/api/tokens/balance"] {
        assert_ne!(app.send("GET", path, None, None, ip).await.status.code, 429);
    }
    let refused = app.send("GET", "/api/tokens/packs", None, None, ip).await;
    assert_limited(&refused, 3);
    assert_eq!(
        refused.body["type"], "urn:audiostudio:problem:rate-limited",
        "{}",
        refused.body
    );
    let other = app
        .send("GET", "/health", None, None, Some("203.0.113.10"))
        .await;
    assert_ne!(other.status.code, 429);
}

#[rocket::async_test]
async fn a_429_retried_with_its_idempotency_key_still_carries_retry_after() {
    let app = spawn_app_with(|f| f.merge(Serialized::global("social_daily_reward_cap", 50))).await;
    seed_tasks(&app);
    let (ada, _) = verified_user(&app, "ada@example.com").await;
    assert_eq!(
        claim(&app, &ada, "task_x_follow", None).await.status,
        Status::Created
    );
    let body =
        json!({ "task_id": "task_youtube_subscribe", "proof_url": "https://social.example.com/p" });
    for _ in 0..2 {
        let refused =
            post_with_key(&app, "/api/tokens/social", body.clone(), &ada, "retry-1").await;
        assert_eq!(refused.status.code, 429, "{}", refused.body);
        assert!(
            refused.header("retry-after").is_some(),
            "{:?}",
            refused.headers
        );
        assert!(refused.header("ratelimit-policy").is_some());
    }
    let stored = app.count("SELECT COUNT(*) FROM idempotency_keys WHERE status = 429");
    assert_eq!(stored, 0);
}
