//! What Stripe's webhook events do to subscriptions and tokens (`billing::events`), end to
//! end: signed deliveries to `POST /api/webhooks/stripe`, the worker, and the handlers
//! fetching the current objects from the fake Stripe over real HTTP. Every scenario is
//! delivered twice, ten times, shuffled and stale, and ends with the ledger consistent.

use std::time::Duration;

use audiostudio::billing::events::GRANT_GRACE_MS;
use audiostudio::tokens::ledger;
use audiostudio::webhooks::Webhooks;
use rocket::figment::providers::Serialized;
use rocket::http::{ContentType, Header, Status};
use serde_json::{Value, json};

use crate::fake_stripe::{FakeStripe, stripe_error, unused_port};
use crate::helpers::*;

const KEY: &str = "sk_test_events_4eC39HqLyjWDarjtT1zdp7dc";
const SECRET: &str = "whsec_billing_events_test";
const DAY: i64 = 86_400;

async fn events_app(base: &str) -> TestApp {
    let base = base.to_owned();
    spawn_app_with(move |f| {
        with_billing(f, KEY, &base, &["https://studio.example.com"])
            .merge(Serialized::global("stripe_webhook_secret", SECRET))
    })
    .await
}

/// Plans and packs with Stripe prices, in our database and in the fake.
fn seed_catalogue(app: &TestApp, fake: &FakeStripe) {
    app.db()
        .execute_batch(
            r#"INSERT INTO subscription_plans (id, name, description, price_cents, currency, billing_interval, monthly_tokens, features, stripe_price_id, active, sort_order, created_at, updated_at) VALUES
                 ('plan_free', 'Free', NULL, 0, 'usd', 'month', 100, '[]', NULL, 1, 0, 0, 0),
                 ('plan_creator', 'Creator', NULL, 1200, 'usd', 'month', 2000, '[]', 'price_creator', 1, 1, 0, 0),
                 ('plan_studio', 'Studio', NULL, 3900, 'usd', 'month', 10000, '[]', 'price_studio', 1, 2, 0, 0);
               INSERT INTO token_packs (id, name, tokens, price_cents, stripe_price_id, active, sort_order, created_at, updated_at) VALUES
                 ('pack_small', '500 tokens', 500, 500, 'price_small', 1, 0, 0, 0),
                 ('pack_large', '2,000 tokens', 2000, 1800, 'price_large', 1, 1, 0, 0);"#,
        )
        .unwrap();
    fake.add_price("price_creator", 1200, Some("month"));
    fake.add_price("price_studio", 3900, Some("month"));
    fake.add_price("price_small", 500, None);
    fake.add_price("price_large", 1800, None);
}

struct User {
    token: String,
    id: String,
    email: String,
}

/// A pack purchase as Stripe will know it: the Checkout Session we opened, and the
/// payment intent and charge paying it.
struct Purchase {
    session: String,
    intent: String,
    charge: String,
    amount: i64,
}

/// A subscription in the fake, with its period (unix seconds).
struct Sub {
    id: String,
    customer: String,
    start: i64,
    end: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Lot {
    source: String,
    source_ref: String,
    amount: i64,
    remaining: i64,
    expires_at: Option<i64>,
}

/// A subscription change: (kind, from plan, to plan, status).
type Change = (String, Option<String>, Option<String>, Option<String>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    kind: String,
    amount: i64,
    reference: Option<String>,
    description: Option<String>,
}

struct Harness {
    fake: FakeStripe,
    app: TestApp,
}

impl Harness {
    async fn start() -> Harness {
        let fake = FakeStripe::start().await;
        let app = events_app(&fake.url).await;
        seed_catalogue(&app, &fake);
        Harness { fake, app }
    }

    fn now(&self) -> i64 {
        self.app.clock_now() / 1000
    }

    fn hooks(&self) -> Webhooks {
        self.app
            .client
            .rocket()
            .state::<Webhooks>()
            .unwrap()
            .clone()
    }

    async fn user(&self, email: &str) -> User {
        let session = self.app.register(email).await;
        User {
            token: access(&session).to_owned(),
            id: session["user"]["id"].as_str().unwrap().to_owned(),
            email: email.to_owned(),
        }
    }

    fn customer(&self, user: &User) -> String {
        self.app
            .db()
            .query_row(
                "SELECT stripe_customer_id FROM users WHERE id = ?1",
                [&user.id],
                |r| r.get::<_, Option<String>>(0),
            )
            .unwrap()
            .expect("the user has a Stripe customer")
    }

    // ---- deliveries -------------------------------------------------------------------

    /// Delivers a signed Stripe event whose `data.object` is `object` (as it was when the
    /// event was created: possibly stale); returns the intake's answer.
    async fn deliver(&self, id: &str, kind: &str, object: &Value) -> Value {
        let body = json!({
            "id": id, "object": "event", "type": kind, "livemode": false, "api_version": "2024-06-20",
            "created": self.now(), "data": { "object": object }, "pending_webhooks": 1,
            "request": { "id": null, "idempotency_key": null },
        })
        .to_string();
        let reply = Reply::from(
            self.app
                .client
                .post("/api/webhooks/stripe")
                .header(ContentType::JSON)
                .header(Header::new(
                    "Stripe-Signature",
                    signed(SECRET, self.now(), &body),
                ))
                .body(body)
                .dispatch()
                .await,
        )
        .await;
        assert_eq!(reply.status, Status::Ok, "{}", reply.body);
        assert_eq!(reply.body["received"], true);
        reply.body
    }

    /// Waits until the worker has finished attempt `attempts` of event `id`.
    async fn attempted(&self, id: &str, attempts: u32) -> WebhookEventRow {
        for _ in 0..800 {
            let row = self.app.webhook_event(id);
            if row.attempts >= attempts && row.status != "processing" {
                return row;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "attempt {attempts} of {id} never finished: {:?}",
            self.app.webhook_event(id)
        );
    }

    /// Delivers an event and waits for its first attempt.
    async fn process(&self, id: &str, kind: &str, object: &Value) -> WebhookEventRow {
        let reply = self.deliver(id, kind, object).await;
        assert_eq!(reply["duplicate"], false, "{id} was delivered before");
        self.attempted(id, 1).await
    }

    /// Delivers an event and asserts the handler processed it.
    async fn processed(&self, id: &str, kind: &str, object: &Value) {
        let row = self.process(id, kind, object).await;
        assert_eq!(row.status, "processed", "{id} ({kind}): {row:?}");
        assert_eq!(row.attempts, 1, "{id}: {row:?}");
    }

    /// Delivers an event and asserts it failed for good at its first attempt, with an
    /// error containing `error`.
    async fn failed(&self, id: &str, kind: &str, object: &Value, error: &str) {
        let row = self.process(id, kind, object).await;
        assert_eq!(row.status, "failed", "{id} ({kind}): {row:?}");
        assert_eq!(
            row.attempts, 1,
            "permanent failures are not retried: {row:?}"
        );
        let text = row.last_error.unwrap_or_default();
        assert!(text.contains(error), "{id}: {text}");
    }

    /// Delivers an event and asserts the handler had nothing to do with it.
    async fn ignored(&self, id: &str, kind: &str, object: &Value) {
        let row = self.process(id, kind, object).await;
        assert_eq!(row.status, "ignored", "{id} ({kind}): {row:?}");
        assert!(row.note.is_some(), "{row:?}");
    }

    /// Delivers the same event again: stored once, handled once.
    async fn redeliver(&self, id: &str, kind: &str, object: &Value) {
        let reply = self.deliver(id, kind, object).await;
        assert_eq!(reply["duplicate"], true, "{id}");
    }

    // ---- Stripe's side ----------------------------------------------------------------

    /// Starts a pack purchase through our API, as the user would.
    async fn buy(&self, user: &User, pack: &str) -> Purchase {
        let reply = self
            .app
            .post(
                "/api/tokens/purchase",
                json!({ "pack_id": pack }),
                Some(&user.token),
            )
            .await;
        assert_eq!(reply.status, Status::Created, "{}", reply.body);
        let session = reply.body["id"].as_str().unwrap().to_owned();
        let amount = self.fake.object(&session).unwrap()["amount_total"]
            .as_i64()
            .unwrap();
        Purchase {
            intent: format!("pi_{session}"),
            charge: format!("ch_{session}"),
            session,
            amount,
        }
    }

    /// The user pays: the session completes (paid, or still processing for a bank
    /// debit), with its payment intent (carrying Checkout's metadata) and charge.
    fn pay(&self, purchase: &Purchase, paid: bool) {
        let session = self.fake.object(&purchase.session).unwrap();
        self.fake.patch(
            &purchase.session,
            json!({ "status": "complete", "payment_status": if paid { "paid" } else { "unpaid" }, "payment_intent": purchase.intent }),
        );
        self.fake.insert(json!({
            "id": purchase.intent, "object": "payment_intent", "amount": purchase.amount,
            "amount_received": if paid { purchase.amount } else { 0 }, "currency": "usd",
            "status": if paid { "succeeded" } else { "processing" }, "customer": session["customer"],
            "latest_charge": purchase.charge, "invoice": null, "metadata": session["metadata"], "livemode": false,
        }));
        self.fake.insert(charge(
            &purchase.charge,
            purchase.amount,
            0,
            Some(&purchase.intent),
            None,
        ));
    }

    /// A whole paid pack purchase, its Checkout event processed.
    async fn bought(&self, user: &User, pack: &str, event: &str) -> Purchase {
        let purchase = self.buy(user, pack).await;
        self.pay(&purchase, true);
        let session = self.fake.object(&purchase.session).unwrap();
        self.processed(event, "checkout.session.completed", &session)
            .await;
        purchase
    }

    /// Starts a subscription Checkout through our API and has Stripe create the
    /// subscription for it (`active`, one month from now); returns it and the session.
    async fn subscribe(&self, user: &User, plan: &str, sub: &str) -> (Sub, String) {
        let reply = self
            .app
            .post(
                "/api/subscriptions/checkout",
                json!({ "plan_id": plan }),
                Some(&user.token),
            )
            .await;
        assert_eq!(reply.status, Status::Created, "{}", reply.body);
        let session = reply.body["id"].as_str().unwrap().to_owned();
        let customer = self.customer(user);
        let start = self.now();
        let sub = Sub {
            id: sub.to_owned(),
            customer,
            start,
            end: start + 30 * DAY,
        };
        let price = format!("price_{}", plan.trim_start_matches("plan_"));
        self.fake
            .insert(self.subscription(&sub, &price, "active", &user.id));
        self.fake.patch(
            &session,
            json!({ "status": "complete", "payment_status": "paid", "subscription": sub.id }),
        );
        (sub, session)
    }

    fn price(&self, price: &str) -> Value {
        self.fake.object(price).unwrap()
    }

    /// A subscription object as Stripe's API shows it (`price` and the legacy `plan`).
    fn subscription(&self, sub: &Sub, price: &str, status: &str, user_id: &str) -> Value {
        let price = self.price(price);
        json!({
            "id": sub.id, "object": "subscription", "customer": sub.customer, "status": status,
            "cancel_at_period_end": false, "cancel_at": null, "canceled_at": null, "ended_at": null,
            "current_period_start": sub.start, "current_period_end": sub.end, "created": sub.start,
            "items": { "object": "list", "has_more": false, "data": [
                { "id": format!("si_{}", sub.id), "object": "subscription_item", "price": price, "plan": price, "quantity": 1 }
            ] },
            "latest_invoice": null, "metadata": { "user_id": user_id }, "livemode": false,
        })
    }

    /// Moves the fake's subscription to another price, as an update would.
    fn set_price(&self, sub: &str, price: &str) {
        let mut object = self.fake.object(sub).unwrap();
        let price = self.price(price);
        object["items"]["data"][0]["price"] = price.clone();
        object["items"]["data"][0]["plan"] = price;
        self.fake.insert(object);
    }

    /// A subscription line of an invoice.
    fn line(&self, price: &str, amount: i64, proration: bool, period: (i64, i64)) -> Value {
        let price = self.price(price);
        json!({
            "id": format!("il_{}_{amount}", price["id"].as_str().unwrap()), "object": "line_item", "amount": amount,
            "currency": "usd", "description": null, "period": { "start": period.0, "end": period.1 },
            "price": price, "plan": price, "proration": proration, "quantity": 1, "type": "subscription",
        })
    }

    /// An invoice of `sub` with `lines`, stored in the fake.
    fn invoice(&self, id: &str, sub: &Sub, status: &str, reason: &str, lines: Vec<Value>) -> Value {
        let total: i64 = lines.iter().map(|l| l["amount"].as_i64().unwrap()).sum();
        let paid = status == "paid";
        let invoice = json!({
            "id": id, "object": "invoice", "number": format!("AS-{id}"), "customer": sub.customer,
            "subscription": sub.id, "status": status, "paid": paid, "amount_due": total,
            "amount_paid": if paid { total } else { 0 }, "amount_remaining": if paid { 0 } else { total },
            "currency": "usd", "billing_reason": reason,
            "hosted_invoice_url": format!("https://invoice.stripe.test/i/{id}"),
            "charge": format!("ch_{id}"), "payment_intent": format!("pi_{id}"),
            // Stripe's invoice period is the one *before* the lines' (the usage period):
            // a first invoice has start == end == its creation.
            "period_start": self.now(), "period_end": self.now(), "created": self.now(),
            "lines": { "object": "list", "has_more": false, "data": lines },
            "metadata": {}, "livemode": false,
        });
        self.fake.insert(invoice.clone());
        invoice
    }

    /// The first invoice of a subscription, paid, with its charge.
    fn first_invoice(&self, id: &str, sub: &Sub, price: &str) -> Value {
        let amount = self.price(price)["unit_amount"].as_i64().unwrap();
        let line = self.line(price, amount, false, (sub.start, sub.end));
        let invoice = self.invoice(id, sub, "paid", "subscription_create", vec![line]);
        self.fake.insert(charge(
            &format!("ch_{id}"),
            amount,
            0,
            Some(&format!("pi_{id}")),
            Some(id),
        ));
        invoice
    }

    /// A user subscribed to `plan` and granted its first month through `invoice.paid`.
    async fn subscribed(&self, user: &User, plan: &str, sub: &str, invoice: &str) -> Sub {
        let (sub, _) = self.subscribe(user, plan, sub).await;
        let price = format!("price_{}", plan.trim_start_matches("plan_"));
        let object = self.first_invoice(invoice, &sub, &price);
        self.processed(&format!("evt_paid_{invoice}"), "invoice.paid", &object)
            .await;
        sub
    }

    // ---- our side ---------------------------------------------------------------------

    /// A fresh access token: the tests move the clock by days, past any token's life.
    async fn token(&self, user: &User) -> String {
        let reply = self.app.login(&user.email, PASSWORD).await;
        assert_eq!(reply.status, Status::Ok, "{}", reply.body);
        access(&reply.body).to_owned()
    }

    async fn balance(&self, user: &User) -> i64 {
        let reply = self
            .app
            .get("/api/tokens/balance", Some(&self.token(user).await))
            .await;
        assert_eq!(reply.status, Status::Ok, "{}", reply.body);
        reply.body["balance"].as_i64().unwrap()
    }

    async fn current(&self, user: &User) -> Value {
        let reply = self
            .app
            .get("/api/subscriptions/current", Some(&self.token(user).await))
            .await;
        assert_eq!(reply.status, Status::Ok, "{}", reply.body);
        reply.body
    }

    fn lots(&self, user: &User) -> Vec<Lot> {
        let db = self.app.db();
        let mut stmt = db
            .prepare("SELECT source, source_ref, amount, remaining, expires_at FROM token_lots WHERE user_id = ?1 ORDER BY id")
            .unwrap();
        stmt.query_map([&user.id], |r| {
            Ok(Lot {
                source: r.get(0)?,
                source_ref: r.get(1)?,
                amount: r.get(2)?,
                remaining: r.get(3)?,
                expires_at: r.get(4)?,
            })
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    /// The user's ledger, oldest first.
    fn ledger(&self, user: &User) -> Vec<Row> {
        let db = self.app.db();
        let mut stmt = db
            .prepare("SELECT kind, amount, reference, description FROM token_transactions WHERE user_id = ?1 ORDER BY id")
            .unwrap();
        stmt.query_map([&user.id], |r| {
            Ok(Row {
                kind: r.get(0)?,
                amount: r.get(1)?,
                reference: r.get(2)?,
                description: r.get(3)?,
            })
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    /// The details of the audit rows of `action` about `user`.
    fn audits(&self, action: &str, user: &User) -> Vec<Value> {
        let db = self.app.db();
        let mut stmt = db
            .prepare("SELECT details FROM audit_logs WHERE action = ?1 AND target_type = 'user' AND target_id = ?2 ORDER BY id")
            .unwrap();
        stmt.query_map([action, &user.id], |r| r.get::<_, String>(0))
            .unwrap()
            .map(|d| serde_json::from_str(&d.unwrap()).unwrap())
            .collect()
    }

    /// (subject, text) of every message queued to the user.
    fn emails(&self, user: &User) -> Vec<(String, String)> {
        let db = self.app.db();
        let mut stmt = db
            .prepare(
                "SELECT subject, text_body FROM email_outbox WHERE to_address = ?1 ORDER BY id",
            )
            .unwrap();
        stmt.query_map([&user.email], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// What the webhooks recorded of the user's subscription story: (kind, from, to, status).
    fn changes(&self, user: &User) -> Vec<Change> {
        let db = self.app.db();
        let mut stmt = db
            .prepare("SELECT kind, from_plan_id, to_plan_id, status FROM subscription_changes WHERE user_id = ?1 AND kind <> 'checkout_started' ORDER BY id")
            .unwrap();
        stmt.query_map([&user.id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    /// Our row of a Stripe subscription.
    fn sub_row(&self, id: &str) -> Value {
        self.app
            .db()
            .query_row(
                "SELECT user_id, plan_id, stripe_customer_id, status, current_period_start, current_period_end, cancel_at_period_end, canceled_at
                 FROM user_subscriptions WHERE stripe_subscription_id = ?1",
                [id],
                |r| {
                    Ok(json!({
                        "user_id": r.get::<_, String>(0)?, "plan_id": r.get::<_, String>(1)?,
                        "customer": r.get::<_, Option<String>>(2)?, "status": r.get::<_, String>(3)?,
                        "start": r.get::<_, Option<i64>>(4)?, "end": r.get::<_, Option<i64>>(5)?,
                        "cancel_at_period_end": r.get::<_, i64>(6)? == 1, "canceled_at": r.get::<_, Option<i64>>(7)?,
                    }))
                },
            )
            .unwrap_or_else(|e| panic!("no subscription row {id}: {e}"))
    }

    /// Our row must say what the fake's subscription says now.
    fn assert_matches_stripe(&self, id: &str, user: &User, plan: &str) {
        let stripe = self.fake.object(id).unwrap();
        let ms = |v: &Value| v.as_i64().map(|s| s * 1000);
        assert_eq!(
            self.sub_row(id),
            json!({
                "user_id": user.id, "plan_id": plan, "customer": stripe["customer"],
                "status": stripe["status"], "start": ms(&stripe["current_period_start"]),
                "end": ms(&stripe["current_period_end"]), "cancel_at_period_end": stripe["cancel_at_period_end"],
                "canceled_at": ms(if stripe["ended_at"].is_null() { &stripe["canceled_at"] } else { &stripe["ended_at"] }),
            })
        );
    }

    fn pack_row(&self, purchase: &Purchase) -> (String, Option<String>, i64) {
        self.app
            .db()
            .query_row(
                "SELECT status, stripe_payment_intent_id, tokens FROM user_token_packs WHERE stripe_checkout_session_id = ?1",
                [&purchase.session],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
    }

    fn assert_consistent(&self) {
        let (users, mismatches) = ledger::check(&self.app.db()).unwrap();
        assert!(users > 0);
        assert!(mismatches.is_empty(), "{mismatches:?}");
    }

    async fn spend(&self, user: &User, amount: i64) -> Reply {
        self.app
            .post(
                "/api/tokens/use",
                json!({ "amount": amount, "feature": "voice_clone" }),
                Some(&self.token(user).await),
            )
            .await
    }

    async fn admin(&self) -> String {
        let session = self.app.register("root@example.com").await;
        self.app.promote(session["user"]["id"].as_str().unwrap());
        access(&self.app.login("root@example.com", PASSWORD).await.body).to_owned()
    }
}

fn charge(
    id: &str,
    amount: i64,
    refunded: i64,
    intent: Option<&str>,
    invoice: Option<&str>,
) -> Value {
    json!({
        "id": id, "object": "charge", "amount": amount, "amount_captured": amount, "amount_refunded": refunded,
        "refunded": refunded >= amount, "paid": true, "status": "succeeded", "currency": "usd",
        "customer": null, "payment_intent": intent, "invoice": invoice, "metadata": {}, "livemode": false,
    })
}

fn lot(
    source: &str,
    source_ref: &str,
    amount: i64,
    remaining: i64,
    expires_at: Option<i64>,
) -> Lot {
    Lot {
        source: source.into(),
        source_ref: source_ref.into(),
        amount,
        remaining,
        expires_at,
    }
}

fn row(kind: &str, amount: i64, reference: &str) -> (String, i64, Option<String>) {
    (kind.into(), amount, Some(reference.into()))
}

fn rows(ledger: &[Row]) -> Vec<(String, i64, Option<String>)> {
    ledger
        .iter()
        .map(|r| (r.kind.clone(), r.amount, r.reference.clone()))
        .collect()
}

fn change(kind: &str, from: Option<&str>, to: &str, status: &str) -> Change {
    (
        kind.into(),
        from.map(str::to_owned),
        Some(to.into()),
        Some(status.into()),
    )
}

/// When a subscription grant for a period ending at `end` (unix seconds) expires.
fn grant_expiry(end: i64) -> Option<i64> {
    Some(end * 1000 + GRANT_GRACE_MS)
}

// --- token packs --------------------------------------------------------------------------

#[rocket::async_test]
async fn a_paid_pack_checkout_grants_its_tokens_once_and_they_never_expire() {
    let h = Harness::start().await;
    let ada = h.user("ada@example.com").await;
    let purchase = h.buy(&ada, "pack_small").await;
    assert_eq!(h.balance(&ada).await, 0);
    h.pay(&purchase, true);
    let session = h.fake.object(&purchase.session).unwrap();

    h.processed("evt_cs_1", "checkout.session.completed", &session)
        .await;
    assert_eq!(h.balance(&ada).await, 500);
    let once = vec![lot("purchase", &purchase.intent, 500, 500, None)];
    assert_eq!(h.lots(&ada), once);
    assert_eq!(
        h.ledger(&ada),
        [Row {
            kind: "grant".into(),
            amount: 500,
            reference: Some(purchase.intent.clone()),
            description: Some("token pack".into()),
        }]
    );
    assert_eq!(
        h.pack_row(&purchase),
        ("completed".into(), Some(purchase.intent.clone()), 500)
    );
    let (status, payment_status): (String, String) = h
        .app
        .db()
        .query_row(
            "SELECT status, payment_status FROM billing_checkout_sessions WHERE id = ?1",
            [&purchase.session],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (status.as_str(), payment_status.as_str()),
        ("complete", "paid")
    );
    let granted = h.audits("billing.tokens_granted", &ada);
    assert_eq!(granted.len(), 1);
    assert_eq!(granted[0]["source"], "purchase");
    assert_eq!(granted[0]["pack"], "pack_small");
    assert_eq!(granted[0]["payment"], purchase.intent.as_str());
    assert_eq!(granted[0]["tokens"], 500);
    h.assert_consistent();

    // The same delivery twice, then ten times: stored and handled once.
    for _ in 0..10 {
        h.redeliver("evt_cs_1", "checkout.session.completed", &session)
            .await;
    }
    // Ten distinct events for the same session (Stripe re-sends under new ids too), the
    // async-payment event, and the payment intent's own success: still one grant.
    for i in 2..=11 {
        h.processed(
            &format!("evt_cs_{i}"),
            "checkout.session.completed",
            &session,
        )
        .await;
    }
    h.processed(
        "evt_cs_async",
        "checkout.session.async_payment_succeeded",
        &session,
    )
    .await;
    let intent = h.fake.object(&purchase.intent).unwrap();
    h.processed("evt_pi_1", "payment_intent.succeeded", &intent)
        .await;
    h.redeliver("evt_pi_1", "payment_intent.succeeded", &intent)
        .await;
    assert_eq!(h.balance(&ada).await, 500);
    assert_eq!(h.lots(&ada), once);
    assert_eq!(h.ledger(&ada).len(), 1);
    assert_eq!(h.audits("billing.tokens_granted", &ada).len(), 1);
    assert_eq!(h.app.count("SELECT COUNT(*) FROM webhook_events"), 13);
    h.assert_consistent();

    // Pack tokens never expire.
    h.app.clock.advance_secs(800 * DAY);
    assert_eq!(h.balance(&ada).await, 500);
    h.assert_consistent();
}

#[rocket::async_test]
async fn an_async_payment_grants_nothing_until_it_succeeds() {
    let h = Harness::start().await;
    let ada = h.user("ada@example.com").await;
    let purchase = h.buy(&ada, "pack_small").await;
    // A bank debit: Checkout completes, the money is not there yet.
    h.pay(&purchase, false);
    let unpaid = h.fake.object(&purchase.session).unwrap();
    h.processed("evt_async_done", "checkout.session.completed", &unpaid)
        .await;
    let intent = h.fake.object(&purchase.intent).unwrap();
    h.ignored("evt_pi_processing", "payment_intent.processing", &intent)
        .await;
    // A payload claiming success is not trusted: the intent is still processing.
    let mut claimed = intent.clone();
    claimed["status"] = json!("succeeded");
    h.processed("evt_pi_early", "payment_intent.succeeded", &claimed)
        .await;
    assert_eq!(h.balance(&ada).await, 0);
    assert!(h.lots(&ada).is_empty());
    assert_eq!(h.pack_row(&purchase).0, "pending");
    let payment_status: String = h
        .app
        .db()
        .query_row(
            "SELECT payment_status FROM billing_checkout_sessions WHERE id = ?1",
            [&purchase.session],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(payment_status, "unpaid");

    // The debit clears.
    h.fake
        .patch(&purchase.session, json!({ "payment_status": "paid" }));
    h.fake.patch(
        &purchase.intent,
        json!({ "status": "succeeded", "amount_received": 500 }),
    );
    let paid = h.fake.object(&purchase.session).unwrap();
    h.processed(
        "evt_async_ok",
        "checkout.session.async_payment_succeeded",
        &paid,
    )
    .await;
    assert_eq!(h.balance(&ada).await, 500);
    assert_eq!(h.pack_row(&purchase).0, "completed");
    // Late and stale deliveries change nothing.
    h.redeliver(
        "evt_async_ok",
        "checkout.session.async_payment_succeeded",
        &paid,
    )
    .await;
    h.processed("evt_async_done_2", "checkout.session.completed", &unpaid)
        .await;
    h.processed(
        "evt_pi_ok",
        "payment_intent.succeeded",
        &h.fake.object(&purchase.intent).unwrap(),
    )
    .await;
    assert_eq!(
        h.lots(&ada),
        [lot("purchase", &purchase.intent, 500, 500, None)]
    );
    assert_eq!(h.audits("billing.tokens_granted", &ada).len(), 1);

    // A debit that fails grants nothing.
    let failing = h.buy(&ada, "pack_large").await;
    h.pay(&failing, false);
    let session = h.fake.object(&failing.session).unwrap();
    h.processed("evt_fail_done", "checkout.session.completed", &session)
        .await;
    h.fake.patch(
        &failing.intent,
        json!({ "status": "requires_payment_method" }),
    );
    h.ignored(
        "evt_fail_async",
        "checkout.session.async_payment_failed",
        &session,
    )
    .await;
    h.processed(
        "evt_fail_pi",
        "payment_intent.payment_failed",
        &h.fake.object(&failing.intent).unwrap(),
    )
    .await;
    assert_eq!(h.balance(&ada).await, 500);
    assert_eq!(h.pack_row(&failing).0, "pending");
    h.assert_consistent();
}

#[rocket::async_test]
async fn a_payment_intent_before_its_checkout_event_grants_the_promised_tokens_once() {
    let h = Harness::start().await;
    let ada = h.user("ada@example.com").await;
    let purchase = h.buy(&ada, "pack_small").await;
    // The catalogue changes after the user started paying: the purchase keeps its promise.
    h.app
        .db()
        .execute(
            "UPDATE token_packs SET tokens = 600 WHERE id = 'pack_small'",
            [],
        )
        .unwrap();
    h.pay(&purchase, true);
    let intent = h.fake.object(&purchase.intent).unwrap();
    h.processed("evt_pi_first", "payment_intent.succeeded", &intent)
        .await;
    assert_eq!(h.balance(&ada).await, 500);
    let session = h.fake.object(&purchase.session).unwrap();
    h.processed("evt_cs_second", "checkout.session.completed", &session)
        .await;
    h.processed(
        "evt_pi_again",
        "payment_intent.succeeded",
        &h.fake.object(&purchase.intent).unwrap(),
    )
    .await;
    assert_eq!(h.balance(&ada).await, 500);
    assert_eq!(
        h.lots(&ada),
        [lot("purchase", &purchase.intent, 500, 500, None)]
    );
    assert_eq!(
        h.pack_row(&purchase),
        ("completed".into(), Some(purchase.intent.clone()), 500)
    );
    assert_eq!(h.audits("billing.tokens_granted", &ada).len(), 1);

    // A purchase started after the change gets the new amount, whichever event comes first.
    let later = h.buy(&ada, "pack_small").await;
    h.pay(&later, true);
    h.processed(
        "evt_pi_later",
        "payment_intent.succeeded",
        &h.fake.object(&later.intent).unwrap(),
    )
    .await;
    h.processed(
        "evt_cs_later",
        "checkout.session.completed",
        &h.fake.object(&later.session).unwrap(),
    )
    .await;
    assert_eq!(h.balance(&ada).await, 1100);
    h.assert_consistent();
}

// --- subscriptions --------------------------------------------------------------------------

#[rocket::async_test]
async fn subscription_events_sync_stripes_current_object_whatever_the_order_or_payload() {
    let h = Harness::start().await;
    let ada = h.user("ada@example.com").await;
    let (sub, _) = h.subscribe(&ada, "plan_creator", "sub_ada").await;
    assert_eq!(h.current(&ada).await["status"], "free");

    // `updated` arrives before `created`, and its payload is stale and wrong.
    let mut stale = h.subscription(&sub, "price_studio", "incomplete", &ada.id);
    stale["cancel_at_period_end"] = json!(true);
    h.processed("evt_sub_updated_1", "customer.subscription.updated", &stale)
        .await;
    h.assert_matches_stripe(&sub.id, &ada, "plan_creator");
    assert_eq!(
        h.changes(&ada),
        [change("started", None, "plan_creator", "active")]
    );
    h.processed("evt_sub_created", "customer.subscription.created", &stale)
        .await;
    h.redeliver("evt_sub_created", "customer.subscription.created", &stale)
        .await;
    h.assert_matches_stripe(&sub.id, &ada, "plan_creator");
    assert_eq!(h.changes(&ada).len(), 1, "nothing changed");
    let current = h.current(&ada).await;
    assert_eq!(current["plan"]["id"], "plan_creator");
    assert_eq!(current["status"], "active");
    assert_eq!(current["cancel_at_period_end"], false);
    assert!(current["next_grant_at"].is_string(), "{current}");

    // The user schedules the end in the portal; a stale replay cannot undo it.
    h.fake.patch(
        &sub.id,
        json!({ "cancel_at_period_end": true, "cancel_at": sub.end }),
    );
    let fresh = h.fake.object(&sub.id).unwrap();
    h.processed("evt_sub_cancel", "customer.subscription.updated", &fresh)
        .await;
    let old = h.subscription(&sub, "price_creator", "active", &ada.id);
    h.processed("evt_sub_stale", "customer.subscription.updated", &old)
        .await;
    h.assert_matches_stripe(&sub.id, &ada, "plan_creator");
    let current = h.current(&ada).await;
    assert_eq!(current["cancel_at_period_end"], true);
    assert!(current["next_grant_at"].is_null(), "{current}");

    // Resumed, upgraded, past due and paid again: each recorded once, in order.
    h.fake.patch(
        &sub.id,
        json!({ "cancel_at_period_end": false, "cancel_at": null }),
    );
    h.processed("evt_sub_resume", "customer.subscription.updated", &old)
        .await;
    h.set_price(&sub.id, "price_studio");
    h.processed("evt_sub_upgrade", "customer.subscription.updated", &old)
        .await;
    h.assert_matches_stripe(&sub.id, &ada, "plan_studio");
    h.fake.patch(&sub.id, json!({ "status": "past_due" }));
    h.processed("evt_sub_past_due", "customer.subscription.updated", &old)
        .await;
    assert_eq!(h.current(&ada).await["status"], "past_due");
    h.fake.patch(&sub.id, json!({ "status": "active" }));
    h.processed("evt_sub_active", "customer.subscription.updated", &old)
        .await;
    for i in 0..3 {
        h.processed(
            &format!("evt_sub_repeat_{i}"),
            "customer.subscription.updated",
            &stale,
        )
        .await;
    }
    h.assert_matches_stripe(&sub.id, &ada, "plan_studio");
    assert_eq!(
        h.changes(&ada),
        [
            change("started", None, "plan_creator", "active"),
            change(
                "cancel_scheduled",
                Some("plan_creator"),
                "plan_creator",
                "active"
            ),
            change("resumed", Some("plan_creator"), "plan_creator", "active"),
            change(
                "plan_changed",
                Some("plan_creator"),
                "plan_studio",
                "active"
            ),
            change(
                "status_changed",
                Some("plan_studio"),
                "plan_studio",
                "past_due"
            ),
            change(
                "status_changed",
                Some("plan_studio"),
                "plan_studio",
                "active"
            ),
        ]
    );
    let audited = h.audits("billing.subscription_changed", &ada);
    let kinds: Vec<&str> = audited
        .iter()
        .map(|d| d["change"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "started",
            "cancel_scheduled",
            "resumed",
            "plan_changed",
            "status_changed",
            "status_changed"
        ]
    );
    assert_eq!(audited[0]["subscription"], sub.id.as_str());
    // Syncing state grants nothing: tokens come from paid invoices.
    assert!(h.lots(&ada).is_empty());

    // Stripe ends it: back to the free plan.
    let ended = h.now();
    h.fake.patch(
        &sub.id,
        json!({ "status": "canceled", "canceled_at": ended, "ended_at": ended }),
    );
    h.processed("evt_sub_deleted", "customer.subscription.deleted", &old)
        .await;
    h.assert_matches_stripe(&sub.id, &ada, "plan_studio");
    let current = h.current(&ada).await;
    assert_eq!(current["status"], "free", "{current}");
    assert_eq!(current["plan"]["id"], "plan_free");
    assert!(current["subscription_id"].is_null());
    // Late, repeated and stale deliveries leave it ended.
    h.redeliver("evt_sub_deleted", "customer.subscription.deleted", &old)
        .await;
    h.processed("evt_sub_deleted_2", "customer.subscription.deleted", &old)
        .await;
    h.processed("evt_sub_late", "customer.subscription.updated", &old)
        .await;
    h.processed(
        "evt_sub_late_created",
        "customer.subscription.created",
        &stale,
    )
    .await;
    h.assert_matches_stripe(&sub.id, &ada, "plan_studio");
    assert_eq!(h.current(&ada).await["status"], "free");
    let changes = h.changes(&ada);
    assert_eq!(changes.len(), 7, "{changes:?}");
    assert_eq!(
        changes[6],
        change("canceled", Some("plan_studio"), "plan_studio", "canceled")
    );
    assert_eq!(h.audits("billing.subscription_changed", &ada).len(), 7);
    assert_eq!(
        h.app.count(
            "SELECT COUNT(*) FROM user_subscriptions WHERE stripe_subscription_id = 'sub_ada'"
        ),
        1
    );
    h.assert_consistent();
}

// --- invoices -------------------------------------------------------------------------------

#[rocket::async_test]
async fn a_paid_invoice_grants_the_monthly_tokens_once_expiring_after_the_period_and_grace() {
    let h = Harness::start().await;
    let ada = h.user("ada@example.com").await;
    let (sub, _) = h.subscribe(&ada, "plan_creator", "sub_ada").await;
    let invoice = h.first_invoice("in_first", &sub, "price_creator");

    h.processed("evt_in_1", "invoice.paid", &invoice).await;
    assert_eq!(h.balance(&ada).await, 2000);
    let first = lot(
        "subscription",
        "in_first",
        2000,
        2000,
        grant_expiry(sub.end),
    );
    assert_eq!(h.lots(&ada), std::slice::from_ref(&first));
    assert_eq!(
        h.ledger(&ada),
        [Row {
            kind: "grant".into(),
            amount: 2000,
            reference: Some("in_first".into()),
            description: Some("monthly allowance".into()),
        }]
    );
    let granted = h.audits("billing.tokens_granted", &ada);
    assert_eq!(granted.len(), 1);
    assert_eq!(granted[0]["source"], "subscription");
    assert_eq!(granted[0]["invoice"], "in_first");
    assert_eq!(granted[0]["plan"], "plan_creator");
    assert_eq!(granted[0]["tokens"], 2000);
    // The invoice brought the subscription along (its own event may come later).
    h.assert_matches_stripe(&sub.id, &ada, "plan_creator");

    for _ in 0..10 {
        h.redeliver("evt_in_1", "invoice.paid", &invoice).await;
    }
    for i in 2..=10 {
        h.processed(&format!("evt_in_{i}"), "invoice.paid", &invoice)
            .await;
    }
    h.processed("evt_in_succeeded", "invoice.payment_succeeded", &invoice)
        .await;
    assert_eq!(h.lots(&ada), std::slice::from_ref(&first));
    assert_eq!(h.ledger(&ada).len(), 1);
    assert_eq!(h.audits("billing.tokens_granted", &ada).len(), 1);
    h.assert_consistent();

    // An invoice that is not paid grants nothing, whatever its payload says.
    let mut open = h.invoice(
        "in_open",
        &sub,
        "open",
        "manual",
        vec![h.line("price_creator", 1200, false, (sub.start, sub.end))],
    );
    open["status"] = json!("paid");
    open["paid"] = json!(true);
    h.processed("evt_in_open", "invoice.paid", &open).await;
    assert_eq!(h.lots(&ada).len(), 1);

    // The renewal a month later: a new lot for the new period.
    h.app.clock.advance_secs(30 * DAY);
    let next = Sub {
        id: sub.id.clone(),
        customer: sub.customer.clone(),
        start: sub.end,
        end: sub.end + 30 * DAY,
    };
    h.fake.patch(
        &sub.id,
        json!({ "current_period_start": next.start, "current_period_end": next.end }),
    );
    let mut renewal = h.invoice(
        "in_renewal",
        &next,
        "paid",
        "subscription_cycle",
        vec![h.line("price_creator", 1200, false, (next.start, next.end))],
    );
    renewal["period_start"] = json!(sub.start);
    renewal["period_end"] = json!(sub.end);
    h.fake.insert(renewal.clone());
    h.processed("evt_renewal_ok", "invoice.payment_succeeded", &renewal)
        .await;
    h.processed("evt_renewal_paid", "invoice.paid", &renewal)
        .await;
    let second = lot(
        "subscription",
        "in_renewal",
        2000,
        2000,
        grant_expiry(next.end),
    );
    assert_eq!(h.lots(&ada), [first, second]);
    // Inside the grace both months count; after it only the new one.
    assert_eq!(h.balance(&ada).await, 4000);
    h.assert_matches_stripe(&sub.id, &ada, "plan_creator");
    assert_eq!(
        h.changes(&ada).last().unwrap().0,
        "renewed",
        "{:?}",
        h.changes(&ada)
    );
    h.app.clock.advance_secs(GRANT_GRACE_MS / 1000 + 1);
    assert_eq!(h.balance(&ada).await, 2000);
    h.assert_consistent();
}

#[rocket::async_test]
async fn invoice_paid_before_checkout_completed_still_ends_right() {
    let h = Harness::start().await;
    let ada = h.user("ada@example.com").await;
    let (sub, session) = h.subscribe(&ada, "plan_creator", "sub_ada").await;
    let invoice = h.first_invoice("in_first", &sub, "price_creator");
    h.fake.patch(&session, json!({ "invoice": "in_first" }));
    let created = h.subscription(&sub, "price_creator", "incomplete", &ada.id);

    h.processed("evt_paid", "invoice.paid", &invoice).await;
    h.processed(
        "evt_checkout",
        "checkout.session.completed",
        &h.fake.object(&session).unwrap(),
    )
    .await;
    h.processed("evt_created", "customer.subscription.created", &created)
        .await;
    h.processed("evt_succeeded", "invoice.payment_succeeded", &invoice)
        .await;
    h.redeliver("evt_paid", "invoice.paid", &invoice).await;

    assert_eq!(h.balance(&ada).await, 2000);
    assert_eq!(
        h.lots(&ada),
        [lot(
            "subscription",
            "in_first",
            2000,
            2000,
            grant_expiry(sub.end)
        )]
    );
    h.assert_matches_stripe(&sub.id, &ada, "plan_creator");
    assert_eq!(
        h.changes(&ada),
        [change("started", None, "plan_creator", "active")]
    );
    let current = h.current(&ada).await;
    assert_eq!(current["plan"]["id"], "plan_creator");
    assert_eq!(current["status"], "active");
    let status: String = h
        .app
        .db()
        .query_row(
            "SELECT status FROM billing_checkout_sessions WHERE id = ?1",
            [&session],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(status, "complete");
    // Checkout of a subscription grants nothing by itself.
    assert_eq!(h.audits("billing.tokens_granted", &ada).len(), 1);
    h.assert_consistent();
}

#[rocket::async_test]
async fn an_upgrade_invoice_grants_only_the_difference_and_a_downgrade_nothing() {
    let h = Harness::start().await;
    let ada = h.user("ada@example.com").await;
    let sub = h
        .subscribed(&ada, "plan_creator", "sub_ada", "in_first")
        .await;
    assert_eq!(h.balance(&ada).await, 2000);
    assert_eq!(h.spend(&ada, 300).await.status, Status::Ok);

    // Ten days in, the user upgrades; Stripe invoices the prorated difference at once.
    h.app.clock.advance_secs(10 * DAY);
    let now = h.now();
    h.set_price(&sub.id, "price_studio");
    let upgrade = h.invoice(
        "in_upgrade",
        &sub,
        "paid",
        "subscription_update",
        vec![
            h.line("price_creator", -800, true, (now, sub.end)),
            h.line("price_studio", 2600, true, (now, sub.end)),
        ],
    );
    h.processed("evt_upgrade_paid", "invoice.paid", &upgrade)
        .await;
    h.processed(
        "evt_upgrade_sub",
        "customer.subscription.updated",
        &h.fake.object(&sub.id).unwrap(),
    )
    .await;
    for i in 0..3 {
        h.processed(
            &format!("evt_upgrade_again_{i}"),
            "invoice.payment_succeeded",
            &upgrade,
        )
        .await;
    }
    assert_eq!(h.balance(&ada).await, 1700 + 8000);
    assert_eq!(
        h.lots(&ada),
        [
            lot(
                "subscription",
                "in_first",
                2000,
                1700,
                grant_expiry(sub.end)
            ),
            lot(
                "subscription",
                "in_upgrade",
                8000,
                8000,
                grant_expiry(sub.end)
            ),
        ]
    );
    let last = h.ledger(&ada).pop().unwrap();
    assert_eq!(last.description.as_deref(), Some("plan upgrade"));
    let granted = h.audits("billing.tokens_granted", &ada);
    assert_eq!(granted.len(), 2);
    assert_eq!(granted[1]["plan"], "plan_studio");
    assert_eq!(granted[1]["tokens"], 8000);
    h.assert_matches_stripe(&sub.id, &ada, "plan_studio");

    // Back down (credit line first this time): nothing granted, nothing taken.
    h.set_price(&sub.id, "price_creator");
    let downgrade = h.invoice(
        "in_downgrade",
        &sub,
        "paid",
        "subscription_update",
        vec![
            h.line("price_creator", 800, true, (now, sub.end)),
            h.line("price_studio", -2600, true, (now, sub.end)),
        ],
    );
    h.processed("evt_downgrade", "invoice.paid", &downgrade)
        .await;
    assert_eq!(h.balance(&ada).await, 9700);
    assert_eq!(h.lots(&ada).len(), 2);
    h.assert_matches_stripe(&sub.id, &ada, "plan_creator");
    h.assert_consistent();
}

#[rocket::async_test]
async fn a_failed_payment_marks_the_subscription_past_due_and_emails_once() {
    let h = Harness::start().await;
    let ada = h.user("ada@example.com").await;
    let sub = h
        .subscribed(&ada, "plan_creator", "sub_ada", "in_first")
        .await;
    let before = h.emails(&ada).len();

    h.fake.patch(&sub.id, json!({ "status": "past_due" }));
    let failed = h.invoice(
        "in_renewal",
        &sub,
        "open",
        "subscription_cycle",
        vec![h.line("price_creator", 1200, false, (sub.end, sub.end + 30 * DAY))],
    );
    h.processed("evt_failed_1", "invoice.payment_failed", &failed)
        .await;
    for _ in 0..3 {
        h.redeliver("evt_failed_1", "invoice.payment_failed", &failed)
            .await;
    }
    // Stripe retries the card and reports each failure under a new event id.
    for i in 2..=5 {
        h.processed(
            &format!("evt_failed_{i}"),
            "invoice.payment_failed",
            &failed,
        )
        .await;
    }
    h.processed("evt_action", "invoice.payment_action_required", &failed)
        .await;
    let emails = h.emails(&ada);
    assert_eq!(emails.len(), before + 1, "{emails:?}");
    let (subject, text) = emails.last().unwrap();
    assert_eq!(subject, "Your audiostudio payment did not go through");
    assert!(
        text.contains("https://invoice.stripe.test/i/in_renewal"),
        "{text}"
    );
    let audited = h.audits("billing.payment_failed", &ada);
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0]["invoice"], "in_renewal");
    h.assert_matches_stripe(&sub.id, &ada, "plan_creator");
    let current = h.current(&ada).await;
    assert_eq!(current["status"], "past_due");
    assert!(current["next_grant_at"].is_null());
    assert_eq!(
        h.changes(&ada).last().unwrap(),
        &change(
            "status_changed",
            Some("plan_creator"),
            "plan_creator",
            "past_due"
        )
    );
    assert_eq!(h.lots(&ada).len(), 1, "a failed invoice grants nothing");

    // The retry succeeds: active again, and the month's tokens.
    h.fake.patch(&sub.id, json!({ "status": "active" }));
    h.fake.patch(
        "in_renewal",
        json!({ "status": "paid", "paid": true, "amount_paid": 1200, "amount_remaining": 0 }),
    );
    h.processed(
        "evt_renewal_paid",
        "invoice.paid",
        &h.fake.object("in_renewal").unwrap(),
    )
    .await;
    assert_eq!(h.current(&ada).await["status"], "active");
    assert_eq!(h.balance(&ada).await, 4000);
    // A failure notice that arrives after the invoice got paid is old news: no email.
    h.processed("evt_failed_late", "invoice.payment_failed", &failed)
        .await;
    let mut late = h.invoice(
        "in_late",
        &sub,
        "paid",
        "subscription_cycle",
        vec![h.line("price_creator", 1200, false, (sub.end, sub.end + 30 * DAY))],
    );
    late["status"] = json!("open");
    h.processed("evt_late_failed", "invoice.payment_failed", &late)
        .await;
    assert_eq!(h.emails(&ada).len(), before + 1);
    assert_eq!(h.audits("billing.payment_failed", &ada).len(), 1);
    assert_eq!(h.current(&ada).await["status"], "active");
    h.assert_consistent();
}

// --- refunds --------------------------------------------------------------------------------

#[rocket::async_test]
async fn partial_and_repeated_refunds_claw_back_the_refunded_share_once() {
    let h = Harness::start().await;
    let ada = h.user("ada@example.com").await;
    let purchase = h.bought(&ada, "pack_small", "evt_bought").await;
    let refund = |refunded: i64| {
        charge(
            &purchase.charge,
            500,
            refunded,
            Some(&purchase.intent),
            None,
        )
    };
    let reference = format!("refund:{}", purchase.charge);

    h.fake.insert(refund(100));
    h.processed("evt_refund_1", "charge.refunded", &refund(100))
        .await;
    assert_eq!(h.balance(&ada).await, 400);
    for _ in 0..3 {
        h.redeliver("evt_refund_1", "charge.refunded", &refund(100))
            .await;
    }
    h.processed("evt_refund_1b", "charge.refunded", &refund(100))
        .await;
    assert_eq!(h.balance(&ada).await, 400);

    // A second refund: amount_refunded is cumulative.
    h.fake.insert(refund(250));
    h.processed("evt_refund_2", "charge.refunded", &refund(250))
        .await;
    assert_eq!(h.balance(&ada).await, 250);
    // The first refund's event again, late, with its stale payload.
    h.processed("evt_refund_1c", "charge.refunded", &refund(100))
        .await;
    assert_eq!(h.balance(&ada).await, 250);

    // The rest.
    h.fake.insert(refund(500));
    h.processed("evt_refund_3", "charge.refunded", &refund(250))
        .await;
    h.processed("evt_refund_3b", "charge.refunded", &refund(500))
        .await;
    assert_eq!(h.balance(&ada).await, 0);
    assert_eq!(
        h.lots(&ada),
        [lot("purchase", &purchase.intent, 500, 0, None)]
    );
    assert_eq!(
        rows(&h.ledger(&ada)),
        [
            row("grant", 500, &purchase.intent),
            row("clawback", -100, &reference),
            row("clawback", -150, &reference),
            row("clawback", -250, &reference),
        ]
    );
    let audited = h.audits("billing.tokens_clawed_back", &ada);
    let taken: Vec<i64> = audited
        .iter()
        .map(|d| d["taken"].as_i64().unwrap())
        .collect();
    assert_eq!(taken, [100, 150, 250]);
    assert!(audited.iter().all(|d| d["shortfall"] == 0));
    assert_eq!(audited[2]["refunded_cents"], 500);
    assert_eq!(h.app.count("SELECT COUNT(*) FROM token_shortfalls"), 0);
    assert_eq!(h.pack_row(&purchase).0, "refunded");
    h.assert_consistent();

    // The share is rounded down: 1,000 of 1,800 cents back on 2,000 tokens takes 1,111.
    let large = h.bought(&ada, "pack_large", "evt_bought_large").await;
    let partial = charge(&large.charge, 1800, 1000, Some(&large.intent), None);
    h.fake.insert(partial.clone());
    h.processed("evt_refund_large", "charge.refunded", &partial)
        .await;
    assert_eq!(h.balance(&ada).await, 2000 - 1111);
    assert_eq!(h.pack_row(&large).0, "completed", "only partly refunded");
    h.assert_consistent();
}

#[rocket::async_test]
async fn a_refund_after_the_tokens_were_spent_takes_what_is_left_and_records_the_shortfall() {
    let h = Harness::start().await;
    let ada = h.user("ada@example.com").await;
    let first = h.bought(&ada, "pack_small", "evt_first").await;
    let second = h.bought(&ada, "pack_small", "evt_second").await;
    // Spending draws the older lot first: the first pack is gone, the second has 300 left.
    assert_eq!(h.spend(&ada, 700).await.status, Status::Ok);
    assert_eq!(h.balance(&ada).await, 300);

    let refunded = charge(&first.charge, 500, 500, Some(&first.intent), None);
    h.fake.insert(refunded.clone());
    h.processed("evt_refund", "charge.refunded", &refunded)
        .await;
    for i in 0..3 {
        h.processed(&format!("evt_refund_{i}"), "charge.refunded", &refunded)
            .await;
    }
    // Never below zero: what could be taken was, the rest is a shortfall.
    assert_eq!(h.balance(&ada).await, 0);
    assert_eq!(
        h.lots(&ada),
        [
            lot("purchase", &first.intent, 500, 0, None),
            lot("purchase", &second.intent, 500, 0, None),
        ]
    );
    let reference = format!("refund:{}", first.charge);
    assert_eq!(
        rows(&h.ledger(&ada)).last().unwrap(),
        &row("clawback", -300, &reference)
    );
    let shortfalls: Vec<(String, String, i64)> = {
        let db = h.app.db();
        let mut stmt = db
            .prepare("SELECT user_id, reference, amount FROM token_shortfalls")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(shortfalls, [(ada.id.clone(), reference, 200)]);
    let audited = h.audits("billing.tokens_clawed_back", &ada);
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0]["taken"], 300);
    assert_eq!(audited[0]["shortfall"], 200);
    h.spend(&ada, 1).await.assert_problem(402);
    h.assert_consistent();

    // A later purchase is the user's in full: the shortfall stays recorded for admins.
    let third = h.bought(&ada, "pack_small", "evt_third").await;
    assert_eq!(h.balance(&ada).await, 500);
    assert_eq!(
        h.lots(&ada)[2],
        lot("purchase", &third.intent, 500, 500, None)
    );
    h.assert_consistent();
}

#[rocket::async_test]
async fn a_refunded_invoice_takes_from_its_own_lot_first_then_from_others() {
    let h = Harness::start().await;
    let bob = h.user("bob@example.com").await;
    let sub = h
        .subscribed(&bob, "plan_creator", "sub_bob", "in_first")
        .await;
    let pack = h.bought(&bob, "pack_small", "evt_pack").await;
    // The expiring subscription lot is spent first.
    assert_eq!(h.spend(&bob, 100).await.status, Status::Ok);

    // Half the pack back: from the pack's lot, not the subscription's.
    let half = charge(&pack.charge, 500, 250, Some(&pack.intent), None);
    h.fake.insert(half.clone());
    h.processed("evt_refund_pack", "charge.refunded", &half)
        .await;
    assert_eq!(
        h.lots(&bob),
        [
            lot(
                "subscription",
                "in_first",
                2000,
                1900,
                grant_expiry(sub.end)
            ),
            lot("purchase", &pack.intent, 500, 250, None),
        ]
    );

    // The whole invoice back: its lot's 1,900, then 100 more from the pack.
    let invoice_charge = charge(
        "ch_in_first",
        1200,
        1200,
        Some("pi_in_first"),
        Some("in_first"),
    );
    h.fake.insert(invoice_charge.clone());
    h.processed("evt_refund_invoice", "charge.refunded", &invoice_charge)
        .await;
    h.processed("evt_refund_invoice_2", "charge.refunded", &invoice_charge)
        .await;
    assert_eq!(
        h.lots(&bob),
        [
            lot("subscription", "in_first", 2000, 0, grant_expiry(sub.end)),
            lot("purchase", &pack.intent, 500, 150, None),
        ]
    );
    assert_eq!(h.balance(&bob).await, 150);
    assert_eq!(
        rows(&h.ledger(&bob)).last().unwrap(),
        &row("clawback", -2000, "refund:ch_in_first")
    );
    assert_eq!(h.app.count("SELECT COUNT(*) FROM token_shortfalls"), 0);
    h.assert_consistent();
}

#[rocket::async_test]
async fn a_refund_delivered_before_the_purchase_event_still_ends_right() {
    let h = Harness::start().await;
    let ada = h.user("ada@example.com").await;
    let purchase = h.buy(&ada, "pack_small").await;
    h.pay(&purchase, true);
    // Refunded in full before any of its events was processed.
    let refunded = charge(&purchase.charge, 500, 500, Some(&purchase.intent), None);
    h.fake.insert(refunded.clone());
    h.processed("evt_refund_first", "charge.refunded", &refunded)
        .await;
    h.processed(
        "evt_checkout_late",
        "checkout.session.completed",
        &h.fake.object(&purchase.session).unwrap(),
    )
    .await;
    h.processed(
        "evt_pi_late",
        "payment_intent.succeeded",
        &h.fake.object(&purchase.intent).unwrap(),
    )
    .await;
    assert_eq!(h.balance(&ada).await, 0);
    assert_eq!(
        h.lots(&ada),
        [lot("purchase", &purchase.intent, 500, 0, None)]
    );

    // The same for a subscription invoice refunded before its `invoice.paid`.
    let bob = h.user("bob@example.com").await;
    let (sub, _) = h.subscribe(&bob, "plan_creator", "sub_bob").await;
    let invoice = h.first_invoice("in_bob", &sub, "price_creator");
    let half = charge("ch_in_bob", 1200, 600, Some("pi_in_bob"), Some("in_bob"));
    h.fake.insert(half.clone());
    h.processed("evt_refund_invoice_first", "charge.refunded", &half)
        .await;
    h.processed("evt_paid_late", "invoice.paid", &invoice).await;
    assert_eq!(h.balance(&bob).await, 1000);
    assert_eq!(
        h.lots(&bob),
        [lot(
            "subscription",
            "in_bob",
            2000,
            1000,
            grant_expiry(sub.end)
        )]
    );
    h.assert_consistent();
}

// --- faults ---------------------------------------------------------------------------------

#[rocket::async_test]
async fn stripe_failing_during_processing_is_retried_later_and_succeeds() {
    let h = Harness::start().await;
    let ada = h.user("ada@example.com").await;
    let bob = h.user("bob@example.com").await;
    let purchase = h.buy(&ada, "pack_small").await;
    h.pay(&purchase, true);
    let other = h.buy(&bob, "pack_small").await;
    h.pay(&other, true);

    // Every attempt the client makes within this processing gets a 503.
    h.fake.fail_matching(
        "GET",
        &format!("/v1/checkout/sessions/{}", purchase.session),
        3,
        503,
        stripe_error("api_error", None, "Stripe is having a bad day"),
        &[],
    );
    let session = h.fake.object(&purchase.session).unwrap();
    let row = h
        .process("evt_flaky", "checkout.session.completed", &session)
        .await;
    assert_eq!(row.status, "pending", "{row:?}");
    assert_eq!(row.attempts, 1);
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("Stripe is having a bad day"),
        "{row:?}"
    );
    assert!(row.next_attempt_at.unwrap() >= h.app.clock_now() + 30_000);
    assert_eq!(h.balance(&ada).await, 0);

    // Other events go through meanwhile.
    h.processed(
        "evt_other",
        "checkout.session.completed",
        &h.fake.object(&other.session).unwrap(),
    )
    .await;
    assert_eq!(h.balance(&bob).await, 500);
    assert_eq!(h.app.webhook_event("evt_flaky").attempts, 1, "not due yet");

    // Once due, the retry succeeds.
    h.app.clock.advance_secs(40);
    h.hooks().wake();
    let row = h.attempted("evt_flaky", 2).await;
    assert_eq!(row.status, "processed", "{row:?}");
    assert_eq!(h.balance(&ada).await, 500);
    assert_eq!(h.lots(&ada).len(), 1);
    h.assert_consistent();
}

#[rocket::async_test]
async fn an_unreachable_stripe_delays_processing_until_it_answers() {
    // The app points at a port where nothing listens yet.
    let port = unused_port();
    let app = events_app(&format!("http://127.0.0.1:{port}")).await;
    let ada = {
        let session = app.register("ada@example.com").await;
        User {
            token: access(&session).to_owned(),
            id: session["user"]["id"].as_str().unwrap().to_owned(),
            email: "ada@example.com".into(),
        }
    };
    app.db()
        .execute(
            "UPDATE users SET stripe_customer_id = 'cus_ada' WHERE id = ?1",
            [&ada.id],
        )
        .unwrap();
    let now = app.clock_now() / 1000;
    let sub = Sub {
        id: "sub_ada".into(),
        customer: "cus_ada".into(),
        start: now,
        end: now + 30 * DAY,
    };
    let payload =
        json!({ "id": "in_ada", "object": "invoice", "status": "paid", "subscription": "sub_ada" });
    let pending = {
        // The harness's own fake is elsewhere: the app does not know it.
        let h = Harness {
            fake: FakeStripe::start().await,
            app,
        };
        let row = h.process("evt_unreachable", "invoice.paid", &payload).await;
        assert_eq!(row.status, "pending", "{row:?}");
        assert!(
            row.last_error
                .as_deref()
                .unwrap_or_default()
                .contains("unreachable"),
            "{row:?}"
        );
        h.app
    };
    // Stripe comes back.
    let h = Harness {
        fake: FakeStripe::start_on(port).await,
        app: pending,
    };
    seed_catalogue(&h.app, &h.fake);
    h.fake
        .insert(h.subscription(&sub, "price_creator", "active", &ada.id));
    h.first_invoice("in_ada", &sub, "price_creator");
    h.app.clock.advance_secs(40);
    h.hooks().wake();
    let row = h.attempted("evt_unreachable", 2).await;
    assert_eq!(row.status, "processed", "{row:?}");
    assert_eq!(h.balance(&ada).await, 2000);
    h.assert_matches_stripe("sub_ada", &ada, "plan_creator");
    h.assert_consistent();
}

#[rocket::async_test]
async fn a_failing_event_does_not_block_the_others_and_unknown_types_are_ignored() {
    let h = Harness::start().await;
    let ada = h.user("ada@example.com").await;
    let bob = h.user("bob@example.com").await;
    let admin = h.admin().await;
    // Ada gets a Stripe customer through a purchase she never pays.
    h.buy(&ada, "pack_small").await;
    let customer = h.customer(&ada);

    // A subscription to a price no plan sells (made in Stripe's dashboard, say).
    h.fake.add_price("price_mystery", 999, Some("month"));
    let sub = Sub {
        id: "sub_mystery".into(),
        customer,
        start: h.now(),
        end: h.now() + 30 * DAY,
    };
    let mystery = h.subscription(&sub, "price_mystery", "active", &ada.id);
    h.fake.insert(mystery.clone());
    let invoice = h.first_invoice("in_mystery", &sub, "price_mystery");
    h.failed(
        "evt_mystery_sub",
        "customer.subscription.created",
        &mystery,
        "no plan sells Stripe price price_mystery",
    )
    .await;
    h.failed(
        "evt_mystery_invoice",
        "invoice.paid",
        &invoice,
        "no plan sells Stripe price price_mystery",
    )
    .await;
    // Objects Stripe does not have.
    for (id, kind, object) in [
        (
            "evt_gone_session",
            "checkout.session.completed",
            "cs_test_gone",
        ),
        ("evt_gone_sub", "customer.subscription.updated", "sub_gone"),
        ("evt_gone_invoice", "invoice.paid", "in_gone"),
        ("evt_gone_charge", "charge.refunded", "ch_gone"),
        ("evt_gone_intent", "payment_intent.succeeded", "pi_gone"),
    ] {
        h.failed(id, kind, &json!({ "id": object }), "no such object")
            .await;
    }
    // A known type whose object has no id.
    h.failed(
        "evt_no_id",
        "invoice.paid",
        &json!({ "object": "invoice" }),
        "no data.object.id",
    )
    .await;
    // A paid session for a pack we do not sell.
    h.fake.insert(json!({
        "id": "cs_test_odd", "object": "checkout.session", "mode": "payment", "status": "complete",
        "payment_status": "paid", "customer": h.customer(&ada), "payment_intent": "pi_odd",
        "client_reference_id": ada.id, "metadata": { "user_id": ada.id, "pack_id": "pack_gone" },
    }));
    h.failed(
        "evt_odd_pack",
        "checkout.session.completed",
        &json!({ "id": "cs_test_odd" }),
        "pack_gone",
    )
    .await;
    // A subscription of a customer that is nobody here.
    let stranger = Sub {
        id: "sub_stranger".into(),
        customer: "cus_stranger".into(),
        start: h.now(),
        end: h.now() + 30 * DAY,
    };
    h.fake
        .insert(h.subscription(&stranger, "price_creator", "active", "user_nobody"));
    h.failed(
        "evt_stranger",
        "customer.subscription.created",
        &json!({ "id": "sub_stranger" }),
        "no user",
    )
    .await;

    // Types billing does not handle, and Stripe objects that are not ours.
    for (id, kind) in [
        ("evt_customer", "customer.created"),
        ("evt_product", "product.updated"),
        ("evt_finalized", "invoice.finalized"),
        ("evt_expired", "checkout.session.expired"),
        ("evt_dispute", "charge.dispute.created"),
    ] {
        h.ignored(id, kind, &json!({ "id": "obj_whatever" })).await;
    }
    h.fake.insert(json!({
        "id": "pi_foreign", "object": "payment_intent", "amount": 700, "status": "succeeded", "metadata": {},
    }));
    h.ignored(
        "evt_foreign_pi",
        "payment_intent.succeeded",
        &json!({ "id": "pi_foreign" }),
    )
    .await;
    let foreign = charge("ch_foreign", 700, 700, Some("pi_foreign"), None);
    h.fake.insert(foreign.clone());
    h.ignored("evt_foreign_refund", "charge.refunded", &foreign)
        .await;

    // Bob's purchase, after all of that, goes through.
    h.bought(&bob, "pack_small", "evt_bob").await;
    assert_eq!(h.balance(&bob).await, 500);
    assert_eq!(h.balance(&ada).await, 0);
    assert_eq!(
        h.app
            .count("SELECT COUNT(*) FROM webhook_events WHERE status = 'failed'"),
        10
    );
    let status = h.app.get("/api/webhooks/status", Some(&admin)).await;
    assert_eq!(status.body["by_status"]["failed"], 10, "{}", status.body);
    assert_eq!(status.body["by_status"]["ignored"], 7, "{}", status.body);

    // An operator adds the plan, then retries the failed events: the two that can
    // succeed now do; the others fail again.
    h.app
        .db()
        .execute(
            "INSERT INTO subscription_plans (id, name, price_cents, currency, billing_interval, monthly_tokens, features, stripe_price_id, active, sort_order, created_at, updated_at)
             VALUES ('plan_mystery', 'Mystery', 999, 'usd', 'month', 700, '[]', 'price_mystery', 0, 9, 0, 0)",
            [],
        )
        .unwrap();
    let retried = h
        .app
        .post("/api/webhooks/retry", json!({}), Some(&admin))
        .await;
    assert_eq!(retried.body["requeued"], 10, "{}", retried.body);
    for id in ["evt_mystery_sub", "evt_mystery_invoice"] {
        let row = h.attempted(id, 1).await;
        assert_eq!(row.status, "processed", "{id}: {row:?}");
    }
    h.attempted("evt_stranger", 1).await;
    assert_eq!(
        h.app
            .count("SELECT COUNT(*) FROM webhook_events WHERE status = 'failed'"),
        8
    );
    assert_eq!(h.balance(&ada).await, 700);
    assert_eq!(
        h.lots(&ada),
        [lot(
            "subscription",
            "in_mystery",
            700,
            700,
            grant_expiry(sub.end)
        )]
    );
    h.assert_matches_stripe("sub_mystery", &ada, "plan_mystery");
    h.assert_consistent();
}

#[rocket::async_test]
async fn reconcile_repairs_what_missing_webhooks_left_undone_and_changes_nothing_twice() {
    use audiostudio::billing::events::{BillingEvents, Reconciled};
    use audiostudio::billing::stripe::Stripe;

    let h = Harness::start().await;
    let ada = h.user("ada@example.com").await;
    let (sub, _) = h.subscribe(&ada, "plan_creator", "sub_lost").await;
    h.first_invoice("in_lost", &sub, "price_creator");
    // No webhook ever arrives: nothing is granted and the subscription is unknown here.
    assert_eq!(h.balance(&ada).await, 0);

    let app = h.app.app();
    let events = BillingEvents::new(app);
    let stripe = Stripe::from_settings(&app.settings).unwrap();
    let customer = h.customer(&ada);
    let first = events.reconcile_customer(&stripe, &customer).await.unwrap();
    assert_eq!(
        first,
        Reconciled {
            subscriptions: 1,
            paid_invoices: 1
        }
    );
    assert_eq!(h.balance(&ada).await, 2000);
    h.assert_matches_stripe(&sub.id, &ada, "plan_creator");

    let again = events.reconcile_customer(&stripe, &customer).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(h.balance(&ada).await, 2000);
    assert_eq!(h.ledger(&ada).len(), 1);
    h.assert_consistent();
}

#[rocket::async_test]
async fn an_upgrade_billed_on_the_next_renewal_also_grants_the_difference_once() {
    let h = Harness::start().await;
    let ada = h.user("ada@example.com").await;
    let sub = h
        .subscribed(&ada, "plan_creator", "sub_ada", "in_first")
        .await;
    assert_eq!(h.balance(&ada).await, 2000);
    // Mid-period upgrade with `create_prorations`: nothing is invoiced until the renewal,
    // whose invoice carries the proration pair beside the new period's line.
    h.app.clock.advance_secs(10 * DAY);
    let upgraded_at = h.now();
    h.set_price(&sub.id, "price_studio");
    h.app.clock.advance_secs(20 * DAY);
    let next = (sub.end, sub.end + 30 * DAY);
    let renewal = h.invoice(
        "in_cycle",
        &sub,
        "paid",
        "subscription_cycle",
        vec![
            h.line("price_creator", -800, true, (upgraded_at, sub.end)),
            h.line("price_studio", 2600, true, (upgraded_at, sub.end)),
            h.line("price_studio", 3900, false, next),
        ],
    );
    for i in 0..3 {
        h.processed(&format!("evt_cycle_{i}"), "invoice.paid", &renewal)
            .await;
    }
    let references: Vec<(Option<String>, i64)> = h
        .ledger(&ada)
        .into_iter()
        .map(|r| (r.reference, r.amount))
        .collect();
    assert_eq!(
        references,
        [
            (Some("in_first".into()), 2000),
            (Some("in_cycle:proration".into()), 8000),
            (Some("in_cycle".into()), 10000),
        ]
    );
    h.assert_consistent();
}
