//! Billing against a fake Stripe over real HTTP: plans, checkout, portal, cancel/resume/update,
//! history, token-pack purchase, checkout status, the client's retries and error mapping,
//! catalogue sync, and bad input everywhere.

use std::time::Duration;

use audiostudio::billing::stripe::{RetryPolicy, Stripe, StripeError};
use audiostudio::http::error::ApiError;
use rocket::figment::providers::Serialized;
use rocket::http::Status;
use serde_json::{Value, json};

use crate::fake_stripe::{FakeStripe, Recorded, stripe_error};
use crate::helpers::*;

const KEY: &str = "sk_test_fake_4eC39HqLyjWDarjtT1zdp7dc";

async fn billing_app(fake: &FakeStripe) -> TestApp {
    let base = fake.url.clone();
    spawn_app_with(move |f| {
        with_billing(
            f,
            KEY,
            &base,
            &["https://app.example.com", "http://localhost:3000"],
        )
    })
    .await
}

/// The seeded catalogue with Stripe prices for the paid plans and one pack, plus an
/// unsynced plan and pack and retired ones that must never show.
fn seed_catalogue(app: &TestApp, fake: &FakeStripe) {
    app.db()
        .execute_batch(
            r#"INSERT INTO subscription_plans (id, name, description, price_cents, currency, billing_interval, monthly_tokens, features, stripe_price_id, active, sort_order, created_at, updated_at) VALUES
                 ('plan_free', 'Free', 'Try the studio', 0, 'usd', 'month', 100, '["text_to_speech","transcription"]', NULL, 1, 0, 0, 0),
                 ('plan_creator', 'Creator', 'For regular creators', 1200, 'usd', 'month', 2000, '["text_to_speech","voice_clone"]', 'price_creator', 1, 1, 0, 0),
                 ('plan_studio', 'Studio', 'Everything, in volume', 3900, 'usd', 'month', 10000, '["text_to_speech","voice_clone","stem_separation"]', 'price_studio', 1, 2, 0, 0),
                 ('plan_new', 'New', NULL, 2500, 'usd', 'year', 5000, '[]', NULL, 1, 3, 0, 0),
                 ('plan_retired', 'Retired', NULL, 900, 'usd', 'month', 900, '[]', 'price_retired', 0, 4, 0, 0);
               INSERT INTO token_packs (id, name, tokens, price_cents, stripe_price_id, active, sort_order, created_at, updated_at) VALUES
                 ('pack_small', '500 tokens', 500, 500, 'price_small', 1, 0, 0, 0),
                 ('pack_unsynced', '2,000 tokens', 2000, 1800, NULL, 1, 1, 0, 0),
                 ('pack_retired', 'Old', 100, 100, 'price_old', 0, 2, 0, 0);"#,
        )
        .unwrap();
    fake.add_price("price_creator", 1200, Some("month"));
    fake.add_price("price_studio", 3900, Some("month"));
    fake.add_price("price_retired", 900, Some("month"));
    fake.add_price("price_small", 500, None);
}

fn customer_of(app: &TestApp, user_id: &str) -> Option<String> {
    app.db()
        .query_row(
            "SELECT stripe_customer_id FROM users WHERE id = ?1",
            [user_id],
            |r| r.get(0),
        )
        .unwrap()
}

fn assert_stripe_headers(request: &Recorded) {
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(request.header("stripe-version"), Some("2024-06-20"));
    if request.method == "POST" {
        let key = request
            .header("idempotency-key")
            .expect("an Idempotency-Key");
        assert!(key.starts_with("audiostudio-") && key.len() <= 255, "{key}");
        assert_eq!(
            request.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
    }
}

/// A subscription as the webhook will have stored it: Stripe has it, and so do we.
async fn subscribe(
    app: &TestApp,
    fake: &FakeStripe,
    token: &str,
    user_id: &str,
    plan: &str,
) -> String {
    let reply = app
        .post(
            "/api/subscriptions/checkout",
            json!({ "plan_id": plan }),
            Some(token),
        )
        .await;
    assert_eq!(reply.status, Status::Created, "{}", reply.body);
    let customer = customer_of(app, user_id).unwrap();
    let price = format!("price_{}", plan.trim_start_matches("plan_"));
    let sub = fake.add_subscription(&customer, &price);
    let stripe_sub = fake.object(&sub).unwrap();
    app.db()
        .execute(
            "INSERT INTO user_subscriptions (id, user_id, plan_id, stripe_subscription_id, stripe_customer_id, status, current_period_start, current_period_end, cancel_at_period_end, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'active', ?6, ?7, 0, ?8, ?8)",
            rusqlite::params![
                format!("local-{sub}"),
                user_id,
                plan,
                sub,
                customer,
                stripe_sub["current_period_start"].as_i64().unwrap() * 1000,
                stripe_sub["current_period_end"].as_i64().unwrap() * 1000,
                app.clock_now()
            ],
        )
        .unwrap();
    sub
}

#[rocket::async_test]
async fn without_a_secret_key_billing_answers_503_and_the_catalogue_still_shows() {
    let app = spawn_app().await;
    let fake = FakeStripe::start().await;
    seed_catalogue(&app, &fake);
    let (token, _) = user(&app, "ada@example.com").await;
    let before = app.snapshot();
    for (method, path, body) in [
        (
            "POST",
            "/api/subscriptions/checkout",
            Some(json!({ "plan_id": "plan_creator" })),
        ),
        ("POST", "/api/subscriptions/portal", None),
        ("POST", "/api/subscriptions/cancel", None),
        ("POST", "/api/subscriptions/resume", None),
        (
            "PUT",
            "/api/subscriptions/update",
            Some(json!({ "plan_id": "plan_studio" })),
        ),
        ("GET", "/api/subscriptions/history", None),
        ("GET", "/api/subscriptions/checkout/cs_test_1", None),
        (
            "POST",
            "/api/tokens/purchase",
            Some(json!({ "pack_id": "pack_small" })),
        ),
    ] {
        let reply = send_with(&app, method, path, body, &token, &[]).await;
        reply.assert_problem(503);
        assert!(
            reply.body["detail"]
                .as_str()
                .unwrap()
                .contains("billing is not configured"),
            "{path}: {}",
            reply.body
        );
    }
    assert_eq!(app.snapshot(), before);
    let plans = app.get("/api/subscriptions/plans", None).await;
    assert_eq!(plans.status, Status::Ok);
    let current = app.get("/api/subscriptions/current", Some(&token)).await;
    assert_eq!(current.status, Status::Ok);
    assert_eq!(current.body["status"], "free");
    assert_eq!(current.body["plan"]["id"], "plan_free");
    assert!(fake.requests().is_empty());
}

#[rocket::async_test]
async fn plans_are_public_and_list_active_plans_with_prices_tokens_and_features() {
    let fake = FakeStripe::start().await;
    let app = billing_app(&fake).await;
    seed_catalogue(&app, &fake);
    let reply = app.get("/api/subscriptions/plans", None).await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    let plans = reply.body["plans"].as_array().unwrap();
    let ids: Vec<&str> = plans.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["plan_free", "plan_creator", "plan_studio", "plan_new"]
    );
    assert_eq!(
        plans[1],
        json!({
            "id": "plan_creator", "name": "Creator", "description": "For regular creators",
            "price_cents": 1200, "currency": "usd", "interval": "month", "monthly_tokens": 2000,
            "features": ["text_to_speech", "voice_clone"], "free": false, "available": true,
        })
    );
    assert_eq!(plans[0]["free"], true);
    assert_eq!(plans[0]["available"], true);
    assert_eq!(plans[3]["interval"], "year");
    assert_eq!(plans[3]["available"], false, "no Stripe price yet");
    assert!(
        fake.requests().is_empty(),
        "the catalogue is ours, not Stripe's"
    );
}

#[rocket::async_test]
async fn current_is_the_free_plan_until_a_subscription_exists() {
    let fake = FakeStripe::start().await;
    let app = billing_app(&fake).await;
    seed_catalogue(&app, &fake);
    let (token, user_id) = user(&app, "ada@example.com").await;
    let reply = app.get("/api/subscriptions/current", Some(&token)).await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    assert_eq!(reply.body["status"], "free");
    assert_eq!(reply.body["plan"]["id"], "plan_free");
    assert_eq!(reply.body["cancel_at_period_end"], false);
    assert_eq!(reply.body["next_grant_at"], Value::Null);
    subscribe(&app, &fake, &token, &user_id, "plan_creator").await;
    let reply = app.get("/api/subscriptions/current", Some(&token)).await;
    assert_eq!(reply.body["status"], "active");
    assert_eq!(reply.body["plan"]["id"], "plan_creator");
    assert!(reply.body["current_period_end"].is_string());
    assert_eq!(
        reply.body["next_grant_at"],
        reply.body["current_period_end"]
    );
    app.get("/api/subscriptions/current", None)
        .await
        .assert_problem(401);
}

#[rocket::async_test]
async fn checkout_creates_the_customer_once_and_sends_stripe_the_right_fields() {
    let fake = FakeStripe::start().await;
    let app = billing_app(&fake).await;
    seed_catalogue(&app, &fake);
    let (token, user_id) = user(&app, "ada@example.com").await;
    let reply = app
        .post(
            "/api/subscriptions/checkout",
            json!({ "plan_id": "plan_creator" }),
            Some(&token),
        )
        .await;
    assert_eq!(reply.status, Status::Created, "{}", reply.body);
    let session_id = reply.body["id"].as_str().unwrap().to_owned();
    assert!(session_id.starts_with("cs_test_"));
    assert_eq!(
        reply.body["url"],
        format!("https://checkout.stripe.test/c/pay/{session_id}")
    );

    let customers = fake.calls("POST", "/v1/customers");
    assert_eq!(customers.len(), 1);
    assert_stripe_headers(&customers[0]);
    assert_eq!(customers[0].field("email"), Some("ada@example.com"));
    assert_eq!(
        customers[0].field("metadata[user_id]"),
        Some(user_id.as_str())
    );
    assert!(customers[0].raw_body.contains("metadata%5Buser_id%5D="));
    let customer = customer_of(&app, &user_id).expect("the customer id is stored");
    assert!(customer.starts_with("cus_"));

    let sessions = fake.calls("POST", "/v1/checkout/sessions");
    assert_eq!(sessions.len(), 1);
    let s = &sessions[0];
    assert_stripe_headers(s);
    assert_eq!(s.field("mode"), Some("subscription"));
    assert_eq!(s.field("customer"), Some(customer.as_str()));
    assert_eq!(s.field("client_reference_id"), Some(user_id.as_str()));
    assert_eq!(s.field("line_items[0][price]"), Some("price_creator"));
    assert_eq!(s.field("line_items[0][quantity]"), Some("1"));
    assert_eq!(s.field("metadata[user_id]"), Some(user_id.as_str()));
    assert_eq!(s.field("metadata[plan_id]"), Some("plan_creator"));
    assert_eq!(
        s.field("subscription_data[metadata][user_id]"),
        Some(user_id.as_str())
    );
    assert_eq!(
        s.field("subscription_data[metadata][plan_id]"),
        Some("plan_creator")
    );
    assert_eq!(
        s.field("success_url"),
        Some("https://studio.example.com/billing/success?session_id={CHECKOUT_SESSION_ID}")
    );
    assert_eq!(
        s.field("cancel_url"),
        Some("https://studio.example.com/billing/cancel")
    );
    assert_ne!(
        s.header("idempotency-key"),
        customers[0].header("idempotency-key")
    );

    // A second checkout (another plan, an allowed origin of its own) reuses the customer.
    let reply = app
        .post(
            "/api/subscriptions/checkout",
            json!({ "plan_id": "plan_studio", "success_url": "https://app.example.com/thanks?from=pricing", "cancel_url": "http://localhost:3000/pricing" }),
            Some(&token),
        )
        .await;
    assert_eq!(reply.status, Status::Created, "{}", reply.body);
    assert_eq!(fake.calls("POST", "/v1/customers").len(), 1);
    let sessions = fake.calls("POST", "/v1/checkout/sessions");
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[1].field("customer"), Some(customer.as_str()));
    assert_eq!(
        sessions[1].field("success_url"),
        Some("https://app.example.com/thanks?from=pricing&session_id={CHECKOUT_SESSION_ID}")
    );
    assert_eq!(
        sessions[1].field("cancel_url"),
        Some("http://localhost:3000/pricing")
    );
    assert_ne!(
        sessions[0].header("idempotency-key"),
        sessions[1].header("idempotency-key")
    );

    assert_eq!(
        app.count("SELECT COUNT(*) FROM billing_checkout_sessions WHERE mode = 'subscription'"),
        2
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM subscription_changes WHERE kind = 'checkout_started'"),
        2
    );
    let actions = app.audit_actions();
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "billing.customer_created")
            .count(),
        1
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "billing.checkout_created")
            .count(),
        2
    );
    // Nothing about the subscription changes until Stripe says it was paid.
    let current = app.get("/api/subscriptions/current", Some(&token)).await;
    assert_eq!(current.body["status"], "free");
}

#[rocket::async_test]
async fn concurrent_first_purchases_share_one_customer() {
    let fake = FakeStripe::start().await;
    let app = billing_app(&fake).await;
    seed_catalogue(&app, &fake);
    let (token, user_id) = user(&app, "ada@example.com").await;
    let buy = || {
        app.post(
            "/api/tokens/purchase",
            json!({ "pack_id": "pack_small" }),
            Some(&token),
        )
    };
    let (a, b, c) = tokio::join!(buy(), buy(), buy());
    for reply in [&a, &b, &c] {
        assert_eq!(reply.status, Status::Created, "{}", reply.body);
    }
    assert_eq!(fake.objects("customer").len(), 1);
    let customer = customer_of(&app, &user_id).unwrap();
    let sessions = fake.calls("POST", "/v1/checkout/sessions");
    assert_eq!(sessions.len(), 3);
    assert!(
        sessions
            .iter()
            .all(|s| s.field("customer") == Some(customer.as_str()))
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM user_token_packs WHERE status = 'pending'"),
        3
    );
    assert_eq!(
        app.audit_actions()
            .iter()
            .filter(|a| *a == "billing.customer_created")
            .count(),
        1
    );
}

#[rocket::async_test]
async fn checkout_refuses_redirects_off_the_allowed_origins() {
    let fake = FakeStripe::start().await;
    let app = billing_app(&fake).await;
    seed_catalogue(&app, &fake);
    let (token, _) = user(&app, "ada@example.com").await;
    let before = app.snapshot();
    for (field, url) in [
        ("success_url", "https://evil.example.net/phish"),
        (
            "success_url",
            "https://studio.example.com@evil.example.net/",
        ),
        (
            "success_url",
            "https://evil.example.net\\@studio.example.com/",
        ),
        ("success_url", "http://studio.example.com/billing/success"),
        ("success_url", "https://studio.example.com.evil.net/"),
        ("success_url", "javascript:alert(1)"),
        ("success_url", "//evil.example.net"),
        ("success_url", "/relative/path"),
        ("cancel_url", "https://app.example.com:8443/"),
        ("cancel_url", "https://evil.example.net/"),
    ] {
        let reply = app
            .post(
                "/api/subscriptions/checkout",
                json!({ "plan_id": "plan_creator", field: url }),
                Some(&token),
            )
            .await;
        reply.assert_problem(422);
        assert!(
            reply.body["errors"][field].is_array(),
            "{url}: {}",
            reply.body
        );
        let reply = app
            .post(
                "/api/tokens/purchase",
                json!({ "pack_id": "pack_small", field: url }),
                Some(&token),
            )
            .await;
        reply.assert_problem(422);
    }
    let reply = app
        .post(
            "/api/subscriptions/portal",
            json!({ "return_url": "https://evil.example.net/" }),
            Some(&token),
        )
        .await;
    reply.assert_problem(422);
    assert!(reply.body["errors"]["return_url"].is_array());
    assert_eq!(app.snapshot(), before);
    assert!(fake.requests().is_empty(), "nothing reached Stripe");
}

#[rocket::async_test]
async fn checkout_refuses_free_unknown_retired_and_unsynced_plans() {
    let fake = FakeStripe::start().await;
    let app = billing_app(&fake).await;
    seed_catalogue(&app, &fake);
    let (token, _) = user(&app, "ada@example.com").await;
    let before = app.snapshot();
    for (plan, status, needle) in [
        ("plan_free", 422, "free plan"),
        ("plan_nope", 422, "not a plan on sale"),
        ("plan_retired", 422, "not a plan on sale"),
        ("plan_new", 409, "no Stripe price"),
        ("", 422, "required"),
    ] {
        let reply = app
            .post(
                "/api/subscriptions/checkout",
                json!({ "plan_id": plan }),
                Some(&token),
            )
            .await;
        reply.assert_problem(status);
        assert!(
            reply.body.to_string().contains(needle),
            "{plan}: {}",
            reply.body
        );
    }
    for (pack, status) in [
        ("pack_nope", 422),
        ("pack_retired", 422),
        ("pack_unsynced", 409),
    ] {
        app.post(
            "/api/tokens/purchase",
            json!({ "pack_id": pack }),
            Some(&token),
        )
        .await
        .assert_problem(status);
    }
    assert_eq!(app.snapshot(), before);
    assert!(fake.requests().is_empty());
}

#[rocket::async_test]
async fn a_subscriber_gets_409_pointing_at_update() {
    let fake = FakeStripe::start().await;
    let app = billing_app(&fake).await;
    seed_catalogue(&app, &fake);
    let (token, user_id) = user(&app, "ada@example.com").await;
    subscribe(&app, &fake, &token, &user_id, "plan_creator").await;
    let sessions = fake.calls("POST", "/v1/checkout/sessions").len();
    let reply = app
        .post(
            "/api/subscriptions/checkout",
            json!({ "plan_id": "plan_studio" }),
            Some(&token),
        )
        .await;
    reply.assert_problem(409);
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("/api/subscriptions/update"),
        "{}",
        reply.body
    );
    assert_eq!(fake.calls("POST", "/v1/checkout/sessions").len(), sessions);

    // Stripe already has a subscription its webhook has not told us about yet: also 409.
    let (token, user_id) = user(&app, "bob@example.com").await;
    let reply = app
        .post(
            "/api/subscriptions/checkout",
            json!({ "plan_id": "plan_creator" }),
            Some(&token),
        )
        .await;
    assert_eq!(reply.status, Status::Created);
    fake.add_subscription(&customer_of(&app, &user_id).unwrap(), "price_creator");
    let reply = app
        .post(
            "/api/subscriptions/checkout",
            json!({ "plan_id": "plan_creator" }),
            Some(&token),
        )
        .await;
    reply.assert_problem(409);
    assert!(reply.body["detail"].as_str().unwrap().contains("update"));
}

#[rocket::async_test]
async fn the_portal_needs_a_billing_account_and_returns_stripes_url() {
    let fake = FakeStripe::start().await;
    let app = billing_app(&fake).await;
    seed_catalogue(&app, &fake);
    let (token, user_id) = user(&app, "ada@example.com").await;
    let reply = app
        .send(
            "POST",
            "/api/subscriptions/portal",
            None,
            Some(&token),
            None,
        )
        .await;
    reply.assert_problem(409);
    assert!(fake.requests().is_empty());
    subscribe(&app, &fake, &token, &user_id, "plan_creator").await;
    let reply = app
        .send(
            "POST",
            "/api/subscriptions/portal",
            None,
            Some(&token),
            None,
        )
        .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    assert!(
        reply.body["url"]
            .as_str()
            .unwrap()
            .starts_with("https://billing.stripe.test/p/session/bps_")
    );
    let portal = fake.calls("POST", "/v1/billing_portal/sessions");
    assert_eq!(portal.len(), 1);
    assert_stripe_headers(&portal[0]);
    let customer = customer_of(&app, &user_id).unwrap();
    assert_eq!(portal[0].field("customer"), Some(customer.as_str()));
    assert_eq!(
        portal[0].field("return_url"),
        Some("https://studio.example.com")
    );
    let reply = app
        .post(
            "/api/subscriptions/portal",
            json!({ "return_url": "https://app.example.com/account" }),
            Some(&token),
        )
        .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    let portal = fake.calls("POST", "/v1/billing_portal/sessions");
    assert_eq!(
        portal[1].field("return_url"),
        Some("https://app.example.com/account")
    );
}

#[rocket::async_test]
async fn cancel_resume_and_update_send_stripe_the_right_fields_and_are_recorded() {
    let fake = FakeStripe::start().await;
    let app = billing_app(&fake).await;
    seed_catalogue(&app, &fake);
    let (token, user_id) = user(&app, "ada@example.com").await;

    // Nothing to change yet.
    for (method, path, body) in [
        ("POST", "/api/subscriptions/cancel", None),
        ("POST", "/api/subscriptions/resume", None),
        (
            "PUT",
            "/api/subscriptions/update",
            Some(json!({ "plan_id": "plan_studio" })),
        ),
    ] {
        send_with(&app, method, path, body, &token, &[])
            .await
            .assert_problem(409);
    }

    let sub = subscribe(&app, &fake, &token, &user_id, "plan_creator").await;
    let path = format!("/v1/subscriptions/{sub}");

    // Cancel at the period's end (the default, with an empty body).
    let reply = app
        .send(
            "POST",
            "/api/subscriptions/cancel",
            None,
            Some(&token),
            None,
        )
        .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    assert_eq!(reply.body["status"], "active");
    assert_eq!(reply.body["cancel_at_period_end"], true);
    assert_eq!(reply.body["next_grant_at"], Value::Null);
    let calls = fake.calls("POST", &path);
    assert_eq!(calls.len(), 1);
    assert_stripe_headers(&calls[0]);
    assert_eq!(calls[0].field("cancel_at_period_end"), Some("true"));

    // Resume.
    let reply = app
        .send(
            "POST",
            "/api/subscriptions/resume",
            None,
            Some(&token),
            None,
        )
        .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    assert_eq!(reply.body["cancel_at_period_end"], false);
    assert!(reply.body["next_grant_at"].is_string());
    let calls = fake.calls("POST", &path);
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].field("cancel_at_period_end"), Some("false"));
    assert_ne!(
        calls[0].header("idempotency-key"),
        calls[1].header("idempotency-key")
    );
    // Nothing left to resume.
    app.send(
        "POST",
        "/api/subscriptions/resume",
        None,
        Some(&token),
        None,
    )
    .await
    .assert_problem(409);

    // Cancel again, then resume again: each call reaches Stripe (fresh keys, not replays).
    app.post(
        "/api/subscriptions/cancel",
        json!({ "at_period_end": true }),
        Some(&token),
    )
    .await;
    let reply = app
        .send(
            "POST",
            "/api/subscriptions/resume",
            None,
            Some(&token),
            None,
        )
        .await;
    assert_eq!(reply.body["cancel_at_period_end"], false);
    assert_eq!(fake.object(&sub).unwrap()["cancel_at_period_end"], false);

    // Change plans, charging the difference now.
    let reply = app
        .put(
            "/api/subscriptions/update",
            json!({ "plan_id": "plan_studio", "proration": "always_invoice" }),
            Some(&token),
        )
        .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    assert_eq!(reply.body["plan"]["id"], "plan_studio");
    let update = fake.calls("POST", &path).pop().unwrap();
    assert_stripe_headers(&update);
    let item = fake.object(&sub).unwrap()["items"]["data"][0]["id"].clone();
    assert_eq!(update.field("items[0][id]"), item.as_str());
    assert_eq!(update.field("items[0][price]"), Some("price_studio"));
    assert_eq!(update.field("proration_behavior"), Some("always_invoice"));
    assert_eq!(
        update.field("payment_behavior"),
        Some("error_if_incomplete")
    );
    assert_eq!(update.field("metadata[plan_id]"), Some("plan_studio"));
    // The default proration.
    let reply = app
        .put(
            "/api/subscriptions/update",
            json!({ "plan_id": "plan_creator" }),
            Some(&token),
        )
        .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    let update = fake.calls("POST", &path).pop().unwrap();
    assert_eq!(
        update.field("proration_behavior"),
        Some("create_prorations")
    );
    assert_eq!(update.field("payment_behavior"), None);

    // Refusals: same plan, free plan, unknown proration.
    let before = app.snapshot();
    let posts = fake.posts();
    app.put(
        "/api/subscriptions/update",
        json!({ "plan_id": "plan_creator" }),
        Some(&token),
    )
    .await
    .assert_problem(409);
    app.put(
        "/api/subscriptions/update",
        json!({ "plan_id": "plan_free" }),
        Some(&token),
    )
    .await
    .assert_problem(422);
    let reply = app
        .put(
            "/api/subscriptions/update",
            json!({ "plan_id": "plan_studio", "proration": "sometimes" }),
            Some(&token),
        )
        .await;
    reply.assert_problem(422);
    assert!(reply.body["errors"]["proration"].is_array());
    assert_eq!(app.snapshot(), before);
    assert_eq!(fake.posts(), posts);

    // End it now.
    let reply = app
        .post(
            "/api/subscriptions/cancel",
            json!({ "at_period_end": false }),
            Some(&token),
        )
        .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    assert_eq!(reply.body["status"], "free");
    assert_eq!(reply.body["plan"]["id"], "plan_free");
    assert_eq!(fake.calls("DELETE", &path).len(), 1);
    let (status, canceled_at): (String, Option<i64>) = app
        .db()
        .query_row(
            "SELECT status, canceled_at FROM user_subscriptions WHERE stripe_subscription_id = ?1",
            [&sub],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(status, "canceled");
    assert!(canceled_at.is_some());

    let kinds: Vec<String> = app.column("SELECT kind FROM subscription_changes ORDER BY id");
    assert_eq!(
        kinds,
        [
            "checkout_started",
            "cancel_scheduled",
            "resumed",
            "cancel_scheduled",
            "resumed",
            "plan_changed",
            "plan_changed",
            "canceled"
        ]
    );
    let actions = app.audit_actions();
    for action in [
        "billing.subscription_cancel",
        "billing.subscription_resume",
        "billing.subscription_update",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
}

#[rocket::async_test]
async fn history_shows_periods_changes_and_stripes_invoices() {
    let fake = FakeStripe::start().await;
    let app = billing_app(&fake).await;
    seed_catalogue(&app, &fake);
    let (token, user_id) = user(&app, "ada@example.com").await;
    let reply = app.get("/api/subscriptions/history", Some(&token)).await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({ "subscriptions": [], "changes": [], "invoices": [] })
    );
    assert!(
        fake.requests().is_empty(),
        "no customer: no need to ask Stripe"
    );

    let sub = subscribe(&app, &fake, &token, &user_id, "plan_creator").await;
    let customer = customer_of(&app, &user_id).unwrap();
    let first = fake.add_invoice(&customer, &sub, 1200, "paid");
    let second = fake.add_invoice(&customer, &sub, 1200, "open");
    let other = user(&app, "bob@example.com").await;
    app.put(
        "/api/subscriptions/update",
        json!({ "plan_id": "plan_studio" }),
        Some(&token),
    )
    .await;
    let reply = app.get("/api/subscriptions/history", Some(&token)).await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    let subs = reply.body["subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0]["plan_id"], "plan_studio");
    assert_eq!(subs[0]["plan_name"], "Studio");
    assert_eq!(subs[0]["status"], "active");
    let changes = reply.body["changes"].as_array().unwrap();
    assert_eq!(changes[0]["kind"], "plan_changed");
    assert_eq!(changes[0]["from_plan_id"], "plan_creator");
    assert_eq!(changes[0]["to_plan_id"], "plan_studio");
    assert_eq!(changes[1]["kind"], "checkout_started");
    let invoices = reply.body["invoices"].as_array().unwrap();
    assert_eq!(invoices.len(), 2);
    assert_eq!(invoices[0]["id"], second.as_str(), "newest first");
    assert_eq!(invoices[1]["id"], first.as_str());
    assert_eq!(invoices[1]["status"], "paid");
    assert_eq!(invoices[1]["amount_paid"], 1200);
    assert_eq!(invoices[1]["currency"], "usd");
    assert_eq!(
        invoices[1]["hosted_invoice_url"],
        format!("https://invoice.stripe.test/i/{first}")
    );
    assert!(invoices[1]["period_start"].is_string());
    let list = fake.calls("GET", "/v1/invoices").pop().unwrap();
    assert_stripe_headers(&list);
    assert!(list.query.contains(&("customer".into(), customer.clone())));

    let reply = app
        .get("/api/subscriptions/history?limit=1", Some(&token))
        .await;
    assert_eq!(reply.body["invoices"].as_array().unwrap().len(), 1);
    assert_eq!(reply.body["changes"].as_array().unwrap().len(), 1);
    for bad in ["0", "101", "x"] {
        app.get(
            &format!("/api/subscriptions/history?limit={bad}"),
            Some(&token),
        )
        .await
        .assert_problem(422);
    }
    // Another user sees none of it.
    let reply = app.get("/api/subscriptions/history", Some(&other.0)).await;
    assert_eq!(
        reply.body,
        json!({ "subscriptions": [], "changes": [], "invoices": [] })
    );
}

#[rocket::async_test]
async fn buying_a_pack_opens_a_payment_checkout_and_a_pending_purchase() {
    let fake = FakeStripe::start().await;
    let app = billing_app(&fake).await;
    seed_catalogue(&app, &fake);
    let (token, user_id) = user(&app, "ada@example.com").await;
    let reply = app
        .post(
            "/api/tokens/purchase",
            json!({ "pack_id": "pack_small" }),
            Some(&token),
        )
        .await;
    assert_eq!(reply.status, Status::Created, "{}", reply.body);
    let session_id = reply.body["id"].as_str().unwrap().to_owned();
    assert!(reply.body["url"].as_str().unwrap().ends_with(&session_id));
    let s = fake.calls("POST", "/v1/checkout/sessions").pop().unwrap();
    assert_stripe_headers(&s);
    assert_eq!(s.field("mode"), Some("payment"));
    assert_eq!(s.field("line_items[0][price]"), Some("price_small"));
    assert_eq!(s.field("line_items[0][quantity]"), Some("1"));
    assert_eq!(s.field("client_reference_id"), Some(user_id.as_str()));
    assert_eq!(s.field("metadata[user_id]"), Some(user_id.as_str()));
    assert_eq!(s.field("metadata[pack_id]"), Some("pack_small"));
    assert_eq!(
        s.field("payment_intent_data[metadata][pack_id]"),
        Some("pack_small")
    );
    assert_eq!(
        s.field("payment_intent_data[metadata][user_id]"),
        Some(user_id.as_str())
    );
    assert_eq!(s.field("subscription_data[metadata][user_id]"), None);
    let (status, tokens, amount, owner): (String, i64, i64, String) = app
        .db()
        .query_row(
            "SELECT status, tokens, amount_cents, user_id FROM user_token_packs WHERE stripe_checkout_session_id = ?1",
            [&session_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((status.as_str(), tokens, amount), ("pending", 500, 500));
    assert_eq!(owner, user_id);
    assert!(
        app.audit_actions()
            .contains(&"billing.pack_checkout_created".to_owned())
    );
    // No tokens until Stripe reports the payment.
    let balance = app.get("/api/tokens/balance", Some(&token)).await;
    assert_eq!(balance.body["balance"], 0);

    // A retry with the same Idempotency-Key answers the same session and creates nothing.
    let first = send_with(
        &app,
        "POST",
        "/api/tokens/purchase",
        Some(json!({ "pack_id": "pack_small" })),
        &token,
        &[("Idempotency-Key", "buy-1")],
    )
    .await;
    assert_eq!(first.status, Status::Created, "{}", first.body);
    let again = send_with(
        &app,
        "POST",
        "/api/tokens/purchase",
        Some(json!({ "pack_id": "pack_small" })),
        &token,
        &[("Idempotency-Key", "buy-1")],
    )
    .await;
    assert_eq!(again.status, Status::Created);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(fake.calls("POST", "/v1/checkout/sessions").len(), 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM user_token_packs"), 2);
    assert_eq!(fake.calls("POST", "/v1/customers").len(), 1);
    send_with(
        &app,
        "POST",
        "/api/tokens/purchase",
        Some(json!({ "pack_id": "pack_unsynced" })),
        &token,
        &[("Idempotency-Key", "buy-1")],
    )
    .await
    .assert_problem(422);
}

#[rocket::async_test]
async fn a_retry_replays_its_stored_answer_even_after_stripe_is_unconfigured() {
    let fake = FakeStripe::start().await;
    let app = billing_app(&fake).await;
    seed_catalogue(&app, &fake);
    let (token, _) = user(&app, "ada@example.com").await;
    let requests = [
        (
            "/api/tokens/purchase",
            json!({ "pack_id": "pack_small" }),
            "buy-1",
        ),
        (
            "/api/subscriptions/checkout",
            json!({ "plan_id": "plan_creator" }),
            "subscribe-1",
        ),
    ];
    let mut first = Vec::new();
    for (path, body, key) in &requests {
        let reply = send_with(
            &app,
            "POST",
            path,
            Some(body.clone()),
            &token,
            &[("Idempotency-Key", key)],
        )
        .await;
        assert_eq!(reply.status, Status::Created, "{path}: {}", reply.body);
        first.push(reply.body);
    }
    // The operator removes the Stripe key and restarts: new requests get 503...
    let app = app.restart_with(|f| f).await;
    let sessions = fake.calls("POST", "/v1/checkout/sessions").len();
    send_with(
        &app,
        "POST",
        "/api/tokens/purchase",
        Some(json!({ "pack_id": "pack_small" })),
        &token,
        &[("Idempotency-Key", "buy-2")],
    )
    .await
    .assert_problem(503);
    // ...but a retry of an answered request still gets its first answer, from the store.
    for ((path, body, key), first) in requests.iter().zip(&first) {
        let again = send_with(
            &app,
            "POST",
            path,
            Some(body.clone()),
            &token,
            &[("Idempotency-Key", key)],
        )
        .await;
        assert_eq!(again.status, Status::Created, "{path}: {}", again.body);
        assert_eq!(&again.body, first);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
    }
    assert_eq!(fake.calls("POST", "/v1/checkout/sessions").len(), sessions);
}

#[rocket::async_test]
async fn checkout_status_is_fetched_from_stripe_for_its_owner_only() {
    let fake = FakeStripe::start().await;
    let app = billing_app(&fake).await;
    seed_catalogue(&app, &fake);
    let (token, _) = user(&app, "ada@example.com").await;
    let (other, _) = user(&app, "bob@example.com").await;
    let started = app
        .post(
            "/api/tokens/purchase",
            json!({ "pack_id": "pack_small" }),
            Some(&token),
        )
        .await;
    let id = started.body["id"].as_str().unwrap().to_owned();
    let path = format!("/api/subscriptions/checkout/{id}");
    let reply = app.get(&path, Some(&token)).await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    assert_eq!(reply.body["status"], "open");
    assert_eq!(reply.body["paid"], false);
    assert_eq!(reply.body["mode"], "payment");
    assert_eq!(reply.body["pack_id"], "pack_small");
    assert_eq!(reply.body["amount_total"], 500);
    fake.complete_session(&id);
    let reply = app.get(&path, Some(&token)).await;
    assert_eq!(reply.body["status"], "complete");
    assert_eq!(reply.body["payment_status"], "paid");
    assert_eq!(reply.body["paid"], true);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM billing_checkout_sessions WHERE id = '{id}' AND status = 'complete' AND payment_status = 'paid'"
        )),
        1
    );
    let gets = fake.calls("GET", "/v1/checkout/sessions").len();
    assert_eq!(gets, 2);
    assert_stripe_headers(&fake.calls("GET", "/v1/checkout/sessions")[0]);
    // Someone else's session, an unknown one, a made-up one: 404 without asking Stripe.
    app.get(&path, Some(&other)).await.assert_problem(404);
    app.get("/api/subscriptions/checkout/cs_test_999", Some(&token))
        .await
        .assert_problem(404);
    app.get(
        "/api/subscriptions/checkout/..%2Fv1%2Fcharges",
        Some(&token),
    )
    .await
    .assert_problem(404);
    app.get(&path, None).await.assert_problem(401);
    assert_eq!(fake.calls("GET", "/v1/checkout/sessions").len(), gets);
}

#[rocket::async_test]
async fn the_client_retries_stripe_failures_with_the_same_idempotency_key() {
    let fake = FakeStripe::start().await;
    let app = billing_app(&fake).await;
    seed_catalogue(&app, &fake);
    let (token, _) = user(&app, "ada@example.com").await;
    fake.fail_matching(
        "POST",
        "/v1/checkout/sessions",
        2,
        500,
        stripe_error("api_error", None, "Something went wrong on Stripe's end."),
        &[],
    );
    let reply = app
        .post(
            "/api/tokens/purchase",
            json!({ "pack_id": "pack_small" }),
            Some(&token),
        )
        .await;
    assert_eq!(reply.status, Status::Created, "{}", reply.body);
    let attempts = fake.calls("POST", "/v1/checkout/sessions");
    assert_eq!(attempts.len(), 3);
    let key = attempts[0].header("idempotency-key").unwrap();
    assert!(
        attempts
            .iter()
            .all(|a| a.header("idempotency-key") == Some(key))
    );
    assert_eq!(fake.objects("checkout.session").len(), 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM user_token_packs"), 1);

    // A 429 then success.
    fake.fail_matching(
        "POST",
        "/v1/checkout/sessions",
        1,
        429,
        stripe_error(
            "invalid_request_error",
            Some("rate_limit"),
            "Too many requests",
        ),
        &[("Retry-After", "0")],
    );
    let reply = app
        .post(
            "/api/tokens/purchase",
            json!({ "pack_id": "pack_small" }),
            Some(&token),
        )
        .await;
    assert_eq!(reply.status, Status::Created, "{}", reply.body);
}

#[rocket::async_test]
async fn stripe_failures_become_clear_problems_and_change_nothing() {
    let fake = FakeStripe::start().await;
    let app = billing_app(&fake).await;
    seed_catalogue(&app, &fake);
    let (token, user_id) = user(&app, "ada@example.com").await;
    subscribe(&app, &fake, &token, &user_id, "plan_creator").await;
    let before = app.snapshot();
    let purchase = || {
        app.post(
            "/api/tokens/purchase",
            json!({ "pack_id": "pack_small" }),
            Some(&token),
        )
    };

    // Stripe keeps failing: 502 after three attempts.
    let requests = fake.requests().len();
    fake.fail_next(3, 500, stripe_error("api_error", None, "boom"));
    let reply = purchase().await;
    reply.assert_problem(502);
    assert_eq!(fake.requests().len(), requests + 3);

    // Still rate limited after every attempt: 503.
    fake.fail_next(3, 429, stripe_error("rate_limit_error", None, "slow down"));
    purchase().await.assert_problem(503);

    // A card error on a plan change: 402 with Stripe's message, nothing changed.
    fake.fail_matching(
        "POST",
        "/v1/subscriptions/",
        1,
        402,
        json!({ "error": { "type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds", "message": "Your card has insufficient funds." } }),
        &[],
    );
    let reply = app
        .put(
            "/api/subscriptions/update",
            json!({ "plan_id": "plan_studio", "proration": "always_invoice" }),
            Some(&token),
        )
        .await;
    reply.assert_problem(402);
    assert_eq!(reply.body["type"], "urn:audiostudio:problem:payment-failed");
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("insufficient funds")
    );

    // Stripe refuses our parameters: 422 with its message.
    fake.fail_matching(
        "POST",
        "/v1/subscriptions/",
        1,
        400,
        stripe_error(
            "invalid_request_error",
            Some("parameter_invalid"),
            "Invalid proration",
        ),
        &[],
    );
    let reply = app
        .post("/api/subscriptions/cancel", json!({}), Some(&token))
        .await;
    reply.assert_problem(422);
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("Invalid proration")
    );

    // A wrong secret key: 503, the key never in the answer.
    fake.fail_next(
        1,
        401,
        stripe_error(
            "invalid_request_error",
            None,
            "Invalid API Key provided: sk_test_****dp7dc",
        ),
    );
    let reply = app.get("/api/subscriptions/history", Some(&token)).await;
    reply.assert_problem(503);
    assert!(!reply.body.to_string().contains(KEY));
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("misconfigured")
    );

    // Nonsense instead of JSON: 502.
    fake.fail_next(1, 200, Value::String("<html>".into()));
    app.get("/api/subscriptions/history", Some(&token))
        .await
        .assert_problem(502);

    assert_eq!(app.snapshot(), before);
}

#[rocket::async_test]
async fn stripe_should_retry_false_is_obeyed() {
    let fake = FakeStripe::start().await;
    let app = billing_app(&fake).await;
    seed_catalogue(&app, &fake);
    let (token, _) = user(&app, "ada@example.com").await;
    app.post(
        "/api/tokens/purchase",
        json!({ "pack_id": "pack_small" }),
        Some(&token),
    )
    .await;
    let before = app.snapshot();
    let sessions = fake.calls("POST", "/v1/checkout/sessions").len();
    fake.fail_matching(
        "POST",
        "/v1/checkout/sessions",
        3,
        500,
        stripe_error("api_error", None, "not this time"),
        &[("Stripe-Should-Retry", "false")],
    );
    app.post(
        "/api/tokens/purchase",
        json!({ "pack_id": "pack_small" }),
        Some(&token),
    )
    .await
    .assert_problem(502);
    assert_eq!(
        fake.calls("POST", "/v1/checkout/sessions").len(),
        sessions + 1
    );
    assert_eq!(app.snapshot(), before);
}

#[rocket::async_test]
async fn an_unreachable_stripe_is_a_503_and_changes_nothing() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn_app_with(move |f| {
        f.merge(Serialized::global("stripe_secret_key", KEY))
            .merge(Serialized::global(
                "stripe_api_base",
                format!("http://127.0.0.1:{port}"),
            ))
    })
    .await;
    let fake = FakeStripe::start().await;
    seed_catalogue(&app, &fake);
    let (token, _) = user(&app, "ada@example.com").await;
    let before = app.snapshot();
    let reply = app
        .post(
            "/api/tokens/purchase",
            json!({ "pack_id": "pack_small" }),
            Some(&token),
        )
        .await;
    reply.assert_problem(503);
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("unavailable"),
        "{}",
        reply.body
    );
    assert_eq!(app.snapshot(), before);
}

#[rocket::async_test]
async fn the_client_times_out_retries_and_maps_errors() {
    let fake = FakeStripe::start().await;
    let policy = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
        timeout: Duration::from_millis(300),
    };
    let stripe = Stripe::new(&fake.url, KEY.to_owned().into())
        .unwrap()
        .with_policy(policy);
    // Stalled twice: a timeout after both attempts.
    fake.stall_next(2, Duration::from_millis(1500));
    let err = stripe.get_invoice("in_missing").await.unwrap_err();
    assert!(matches!(err, StripeError::Timeout), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(ApiError::from(err).status(), Status::ServiceUnavailable);
    assert_eq!(fake.calls("GET", "/v1/invoices/in_missing").len(), 2);
    // Stalled once: the retry answers (here: Stripe's 404).
    fake.stall_next(1, Duration::from_millis(1500));
    let err = stripe.get_charge("ch_missing").await.unwrap_err();
    assert!(matches!(err, StripeError::NotFound(_)), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(ApiError::from(err).status(), Status::NotFound);
    // Objects event handlers fetch come back typed.
    let customer = stripe
        .create_customer("ada@example.com", "user-1", "key-1")
        .await
        .unwrap();
    let again = stripe
        .create_customer("ada@example.com", "user-1", "key-1")
        .await
        .unwrap();
    assert_eq!(customer.id, again.id, "same key, same customer");
    assert_eq!(
        customer.metadata.get("user_id").map(String::as_str),
        Some("user-1")
    );
    fake.add_price("price_x", 1200, Some("month"));
    let sub = fake.add_subscription(&customer.id, "price_x");
    let subscription = stripe.get_subscription(&sub).await.unwrap();
    assert_eq!(subscription.status.as_str(), "active");
    assert_eq!(subscription.price_id(), Some("price_x"));
    assert!(subscription.period().1.is_some());
    let invoice = fake.add_invoice(&customer.id, &sub, 1200, "paid");
    let invoice = stripe.get_invoice(&invoice).await.unwrap();
    assert_eq!(invoice.subscription.as_deref(), Some(sub.as_str()));
    assert_eq!(invoice.amount_paid, 1200);
    // Ids that are not Stripe ids never reach the wire.
    let requests = fake.requests().len();
    assert!(matches!(
        stripe.get_subscription("../v1/charges").await,
        Err(StripeError::Local(_))
    ));
    assert_eq!(fake.requests().len(), requests);
}

#[rocket::async_test]
async fn sync_catalog_creates_products_and_prices_once() {
    let fake = FakeStripe::start().await;
    let app = billing_app(&fake).await;
    app.db()
        .execute_batch(
            r#"INSERT INTO subscription_plans (id, name, description, price_cents, billing_interval, monthly_tokens, active, sort_order, created_at, updated_at) VALUES
                 ('plan_free', 'Free', NULL, 0, 'month', 100, 1, 0, 0, 0),
                 ('plan_creator', 'Creator', 'For regular creators', 1200, 'month', 2000, 1, 1, 0, 0),
                 ('plan_yearly', 'Yearly', NULL, 12000, 'year', 2000, 1, 2, 0, 0),
                 ('plan_retired', 'Retired', NULL, 900, 'month', 900, 0, 3, 0, 0);
               INSERT INTO token_packs (id, name, tokens, price_cents, active, sort_order, created_at, updated_at) VALUES
                 ('pack_small', '500 tokens', 500, 500, 1, 0, 0, 0),
                 ('pack_large', '10,000 tokens', 10000, 8000, 1, 1, 0, 0);"#,
        )
        .unwrap();
    let stripe = Stripe::new(&fake.url, KEY.to_owned().into()).unwrap();
    let conn = app.db();
    let report = audiostudio::billing::catalog::sync(&app.app().db, &stripe, 1)
        .await
        .unwrap();
    assert_eq!(report.synced.len(), 4, "{report:?}");
    assert_eq!(report.free, ["plan_free"]);
    assert_eq!(fake.objects("product").len(), 4);
    assert_eq!(fake.objects("price").len(), 4);
    for request in fake.requests() {
        assert_stripe_headers(&request);
    }
    let prices = fake.calls("POST", "/v1/prices");
    let creator = prices
        .iter()
        .find(|p| p.field("metadata[plan_id]") == Some("plan_creator"))
        .unwrap();
    assert_eq!(creator.field("unit_amount"), Some("1200"));
    assert_eq!(creator.field("currency"), Some("usd"));
    assert_eq!(creator.field("recurring[interval]"), Some("month"));
    let yearly = prices
        .iter()
        .find(|p| p.field("metadata[plan_id]") == Some("plan_yearly"))
        .unwrap();
    assert_eq!(yearly.field("recurring[interval]"), Some("year"));
    let pack = prices
        .iter()
        .find(|p| p.field("metadata[pack_id]") == Some("pack_small"))
        .unwrap();
    assert_eq!(
        pack.field("recurring[interval]"),
        None,
        "packs are one-time"
    );
    let (product, price): (String, String) = conn
        .query_row(
            "SELECT stripe_product_id, stripe_price_id FROM subscription_plans WHERE id = 'plan_creator'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(creator.field("product"), Some(product.as_str()));
    assert_eq!(fake.object(&price).unwrap()["unit_amount"], 1200);
    assert_eq!(
        conn.query_row("SELECT COUNT(*) FROM subscription_plans WHERE id IN ('plan_free', 'plan_retired') AND stripe_price_id IS NULL", [], |r| r.get::<_, i64>(0)).unwrap(),
        2
    );

    // Again: nothing to do.
    let requests = fake.requests().len();
    let report = audiostudio::billing::catalog::sync(&app.app().db, &stripe, 2)
        .await
        .unwrap();
    assert!(report.synced.is_empty());
    assert_eq!(report.already_synced.len(), 4);
    assert_eq!(fake.requests().len(), requests);

    // The ids got lost after Stripe answered (a crash): the same keys find the same objects.
    conn.execute(
        "UPDATE subscription_plans SET stripe_product_id = NULL, stripe_price_id = NULL WHERE id = 'plan_creator'",
        [],
    )
    .unwrap();
    let report = audiostudio::billing::catalog::sync(&app.app().db, &stripe, 3)
        .await
        .unwrap();
    assert_eq!(report.synced.len(), 1);
    assert_eq!(report.synced[0].price_id, price);
    assert_eq!(fake.objects("product").len(), 4);
    assert_eq!(fake.objects("price").len(), 4);

    // Now the real binary: a plan whose price was removed gets a new price, not a new product.
    conn.execute(
        "UPDATE subscription_plans SET stripe_price_id = NULL, price_cents = 1500 WHERE id = 'plan_creator'",
        [],
    )
    .unwrap();
    drop(conn);
    let output = run_cli(&app, &fake, &["stripe", "sync-catalog"]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("plan plan_creator: product"), "{stdout}");
    assert!(
        stdout.contains("1 synced, 3 already in Stripe, 1 free"),
        "{stdout}"
    );
    assert_eq!(fake.objects("product").len(), 4);
    assert_eq!(fake.objects("price").len(), 5);
    let output = run_cli(&app, &fake, &["stripe", "sync-catalog"]).await;
    assert!(output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("0 synced, 4 already in Stripe, 1 free")
    );
    assert_eq!(fake.objects("price").len(), 5);
    assert!(
        app.audit_actions()
            .iter()
            .filter(|a| *a == "billing.catalog_synced")
            .count()
            >= 5
    );

    // Without a key the command says how to fix it.
    let output = run_cli_env(&app, &[], &["stripe", "sync-catalog"]).await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("STRIPE_SECRET_KEY"));
}

async fn run_cli(app: &TestApp, fake: &FakeStripe, args: &[&str]) -> std::process::Output {
    run_cli_env(
        app,
        &[("STRIPE_SECRET_KEY", KEY), ("STRIPE_API_BASE", &fake.url)],
        args,
    )
    .await
}

async fn run_cli_env(app: &TestApp, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut command = audiostudio_command(app.dir.path());
    command.args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// Every billing route with a JSON body, and the bodies that must be refused.
const JSON_ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/subscriptions/checkout"),
    ("PUT", "/api/subscriptions/update"),
    ("POST", "/api/tokens/purchase"),
    ("POST", "/api/subscriptions/cancel"),
    ("POST", "/api/subscriptions/portal"),
];

#[rocket::async_test]
async fn bad_input_on_every_billing_route_is_a_4xx_problem_and_changes_nothing() {
    let fake = FakeStripe::start().await;
    let app = billing_app(&fake).await;
    seed_catalogue(&app, &fake);
    let (token, user_id) = user(&app, "ada@example.com").await;
    subscribe(&app, &fake, &token, &user_id, "plan_creator").await;
    let before = app.snapshot();
    let posts = fake.posts();
    let bodies: Vec<(&str, String, u16)> = vec![
        ("malformed JSON", r#"{"plan_id"#.into(), 400),
        ("not JSON", "plan_id=plan_creator".into(), 400),
        ("an array", "[]".into(), 422),
        ("a number", "42".into(), 422),
        ("wrong types", r#"{"plan_id": 5, "pack_id": [], "success_url": 1, "cancel_url": {}, "at_period_end": "yes", "return_url": 3, "proration": 1}"#.into(), 422),
        ("unknown field", r#"{"plan_id": "plan_studio", "pack_id": "pack_small", "at_period_end": true, "return_url": null, "price": 1}"#.into(), 422),
        ("oversized", json!({ "plan_id": "x".repeat(100 * 1024) }).to_string(), 413),
    ];
    for (method, path) in JSON_ROUTES {
        for (what, body, status) in &bodies {
            let reply = app.send(method, path, Some(body), Some(&token), None).await;
            assert_eq!(
                reply.status.code, *status,
                "{what} on {path}: {}",
                reply.body
            );
            reply.assert_problem(*status);
        }
    }
    // An empty body is a 400 where a body is required, and the defaults where it is optional.
    for (method, path) in &JSON_ROUTES[..3] {
        app.send(method, path, Some(""), Some(&token), None)
            .await
            .assert_problem(400);
    }
    // Semantically bad fields.
    for (method, path, body) in [
        (
            "POST",
            "/api/subscriptions/checkout",
            json!({ "plan_id": "x".repeat(65) }),
        ),
        (
            "POST",
            "/api/subscriptions/checkout",
            json!({ "plan_id": "plan\u{0}" }),
        ),
        ("POST", "/api/tokens/purchase", json!({ "pack_id": " " })),
        ("PUT", "/api/subscriptions/update", json!({ "plan_id": "" })),
        (
            "PUT",
            "/api/subscriptions/update",
            json!({ "plan_id": "plan_studio", "proration": "" }),
        ),
    ] {
        let reply = send_with(&app, method, path, Some(body), &token, &[]).await;
        reply.assert_problem(422);
    }
    // A bad Idempotency-Key header.
    send_with(
        &app,
        "POST",
        "/api/tokens/purchase",
        Some(json!({ "pack_id": "pack_small" })),
        &token,
        &[("Idempotency-Key", "")],
    )
    .await
    .assert_problem(400);
    // Without credentials, every route but the catalogue answers 401.
    for (method, path) in JSON_ROUTES.iter().copied().chain([
        ("GET", "/api/subscriptions/current"),
        ("GET", "/api/subscriptions/history"),
        ("POST", "/api/subscriptions/resume"),
        ("GET", "/api/subscriptions/checkout/cs_test_1"),
    ]) {
        app.send(method, path, Some("{}"), None, None)
            .await
            .assert_problem(401);
    }
    assert_eq!(app.snapshot(), before);
    assert_eq!(fake.posts(), posts, "nothing reached Stripe");
}
