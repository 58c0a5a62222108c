//! Billing defects found against localstripe (issue 9, item 6), reproduced with the
//! in-test fake Stripe: a first payment still pending shows as that subscription, its
//! failure emails the truth, and a Checkout Session Stripe cannot open for a missing
//! object says which object was missing.

use std::time::Duration;

use rocket::figment::providers::Serialized;
use rocket::http::{ContentType, Header, Status};
use serde_json::{Value, json};

use crate::fake_stripe::FakeStripe;
use crate::helpers::*;

const KEY: &str = "sk_test_edge_4eC39HqLyjWDarjtT1zdp7dc";
const SECRET: &str = "whsec_edge_billing_test";

struct Edge {
    fake: FakeStripe,
    app: TestApp,
}

struct Buyer {
    token: String,
    id: String,
    email: String,
}

impl Edge {
    async fn start() -> Edge {
        let fake = FakeStripe::start().await;
        let base = fake.url.clone();
        let app = spawn_app_with(move |f| {
            with_billing(f, KEY, &base, &["https://studio.example.com"])
                .merge(Serialized::global("stripe_webhook_secret", SECRET))
        })
        .await;
        app.db()
            .execute_batch(
                r#"INSERT INTO subscription_plans (id, name, description, price_cents, currency, billing_interval, monthly_tokens, features, stripe_price_id, active, sort_order, created_at, updated_at) VALUES
                     ('plan_free', 'Free', NULL, 0, 'usd', 'month', 100, '[]', NULL, 1, 0, 0, 0),
                     ('plan_creator', 'Creator', NULL, 1200, 'usd', 'month', 2000, '[]', 'price_creator', 1, 1, 0, 0);
                   INSERT INTO token_packs (id, name, tokens, price_cents, stripe_price_id, active, sort_order, created_at, updated_at) VALUES
                     ('pack_small', '500 tokens', 500, 500, 'price_small', 1, 0, 0, 0);"#,
            )
            .unwrap();
        fake.add_price("price_creator", 1200, Some("month"));
        fake.add_price("price_small", 500, None);
        Edge { fake, app }
    }

    async fn buyer(&self, email: &str) -> Buyer {
        let session = self.app.register(email).await;
        Buyer {
            token: access(&session).to_owned(),
            id: session["user"]["id"].as_str().unwrap().to_owned(),
            email: email.to_owned(),
        }
    }

    async fn checkout(&self, buyer: &Buyer) -> Reply {
        self.app
            .post(
                "/api/subscriptions/checkout",
                json!({ "plan_id": "plan_creator" }),
                Some(&buyer.token),
            )
            .await
    }

    fn customer(&self, buyer: &Buyer) -> String {
        self.app
            .db()
            .query_row(
                "SELECT stripe_customer_id FROM users WHERE id = ?1",
                [&buyer.id],
                |r| r.get(0),
            )
            .unwrap()
    }

    /// A subscription whose first payment is pending, as Stripe creates it when the card
    /// asks for 3-D Secure or is declined: `incomplete`, with its open first invoice.
    async fn incomplete_subscription(&self, buyer: &Buyer) -> (String, Value) {
        let reply = self.checkout(buyer).await;
        assert_eq!(reply.status, Status::Created, "{}", reply.body);
        let customer = self.customer(buyer);
        let sub = self.fake.add_subscription(&customer, "price_creator");
        self.fake.patch(
            &sub,
            json!({ "status": "incomplete", "metadata": { "user_id": buyer.id } }),
        );
        let now = self.app.clock_now() / 1000;
        let invoice = json!({
            "id": "in_first", "object": "invoice", "number": "AS-1", "customer": customer,
            "subscription": sub, "status": "open", "paid": false, "amount_due": 1200,
            "amount_paid": 0, "amount_remaining": 1200, "currency": "usd",
            "billing_reason": "subscription_create",
            "hosted_invoice_url": "https://invoice.stripe.test/i/in_first",
            "period_start": now, "period_end": now, "created": now,
            "lines": { "object": "list", "has_more": false, "data": [] },
            "metadata": {}, "livemode": false,
        });
        self.fake.insert(invoice.clone());
        let object = self.fake.object(&sub).unwrap();
        self.processed("evt_sub_created", "customer.subscription.created", &object)
            .await;
        (sub, invoice)
    }

    /// Delivers a signed event and waits until the worker processed it.
    async fn processed(&self, id: &str, kind: &str, object: &Value) {
        let now = self.app.clock_now() / 1000;
        let body = json!({
            "id": id, "object": "event", "type": kind, "livemode": false, "api_version": "2024-06-20",
            "created": now, "data": { "object": object }, "pending_webhooks": 1,
            "request": { "id": null, "idempotency_key": null },
        })
        .to_string();
        let reply = Reply::from(
            self.app
                .client
                .post("/api/webhooks/stripe")
                .header(ContentType::JSON)
                .header(Header::new("Stripe-Signature", signed(SECRET, now, &body)))
                .body(body)
                .dispatch()
                .await,
        )
        .await;
        assert_eq!(reply.status, Status::Ok, "{}", reply.body);
        for _ in 0..800 {
            let row = self.app.webhook_event(id);
            if row.attempts >= 1 && row.status != "processing" {
                assert_eq!(row.status, "processed", "{id}: {row:?}");
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{id} was never processed");
    }

    fn emails(&self, buyer: &Buyer) -> Vec<(String, String)> {
        let db = self.app.db();
        let mut stmt = db
            .prepare(
                "SELECT subject, text_body FROM email_outbox WHERE to_address = ?1 ORDER BY id",
            )
            .unwrap();
        stmt.query_map([&buyer.email], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

#[rocket::async_test]
async fn a_subscription_waiting_for_its_first_payment_is_reported_with_stripes_status() {
    let edge = Edge::start().await;
    let ada = edge.buyer("ada@example.com").await;
    let (sub, _) = edge.incomplete_subscription(&ada).await;

    let reply = edge
        .app
        .get("/api/subscriptions/current", Some(&ada.token))
        .await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.body);
    assert_eq!(reply.body["status"], "incomplete", "{}", reply.body);
    assert_eq!(reply.body["plan"]["id"], "plan_creator", "{}", reply.body);
    assert!(reply.body["subscription_id"].is_string(), "{}", reply.body);
    assert!(reply.body["next_grant_at"].is_null(), "{}", reply.body);

    // Once Stripe gives up on the first payment the subscription never existed for the
    // user: the free plan again.
    edge.fake
        .patch(&sub, json!({ "status": "incomplete_expired" }));
    let object = edge.fake.object(&sub).unwrap();
    edge.processed("evt_sub_expired", "customer.subscription.updated", &object)
        .await;
    let reply = edge
        .app
        .get("/api/subscriptions/current", Some(&ada.token))
        .await;
    assert_eq!(reply.body["status"], "free", "{}", reply.body);
    assert!(reply.body["subscription_id"].is_null(), "{}", reply.body);
}

#[rocket::async_test]
async fn a_failed_first_payment_emails_that_the_subscription_did_not_start() {
    let edge = Edge::start().await;
    let ada = edge.buyer("ada@example.com").await;
    let (_, invoice) = edge.incomplete_subscription(&ada).await;
    let before = edge.emails(&ada).len();

    edge.processed("evt_first_failed", "invoice.payment_failed", &invoice)
        .await;

    let emails = edge.emails(&ada);
    assert_eq!(emails.len(), before + 1, "{emails:?}");
    let (subject, text) = emails.last().unwrap();
    assert_eq!(subject, "Your audiostudio subscription did not start");
    assert!(!text.contains("stays active"), "{text}");
    assert!(text.contains("Complete or retry the payment"), "{text}");
    assert!(
        text.contains("https://invoice.stripe.test/i/in_first"),
        "{text}"
    );
}

fn resource_missing(param: &str, message: &str) -> Value {
    json!({ "error": { "type": "invalid_request_error", "code": "resource_missing", "param": param, "message": message } })
}

#[rocket::async_test]
async fn a_checkout_stripe_cannot_open_for_a_missing_object_says_which() {
    let edge = Edge::start().await;
    let ada = edge.buyer("ada@example.com").await;

    edge.fake.fail_matching(
        "POST",
        "/v1/checkout/sessions",
        1,
        404,
        resource_missing("line_items[0][price]", "No such price: 'price_creator'"),
        &[],
    );
    let reply = edge.checkout(&ada).await;
    reply.assert_problem(409);
    let detail = reply.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("price price_creator"), "{}", reply.body);

    let customer = edge.customer(&ada);
    edge.fake.fail_matching(
        "POST",
        "/v1/checkout/sessions",
        1,
        404,
        resource_missing("customer", &format!("No such customer: '{customer}'")),
        &[],
    );
    let reply = edge
        .app
        .post(
            "/api/tokens/purchase",
            json!({ "pack_id": "pack_small" }),
            Some(&ada.token),
        )
        .await;
    reply.assert_problem(409);
    let detail = reply.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("customer {customer}")),
        "{}",
        reply.body
    );
    assert!(!detail.contains(KEY), "{}", reply.body);
    assert_eq!(
        edge.app
            .count("SELECT COUNT(*) FROM billing_checkout_sessions"),
        0
    );
}

#[rocket::async_test]
async fn the_checkout_routes_document_the_missing_stripe_object() {
    let app = spawn_app().await;
    let reply = app.get("/api/openapi.json", None).await;
    assert_eq!(reply.status, Status::Ok);
    for path in ["/api/subscriptions/checkout", "/api/tokens/purchase"] {
        let text = reply.body["paths"][path]["post"]["responses"]["409"]["description"]
            .as_str()
            .unwrap_or_default();
        assert!(text.contains("did not find"), "{path}: {text}");
    }
}
