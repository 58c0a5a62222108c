//! A whole subscription through localstripe (PyPI `localstripe`, a stateful fake Stripe):
//! its real signed webhooks arrive at the running `audiostudio` binary, which fetches the
//! objects back from localstripe, and the tokens are granted exactly once however often
//! the events arrive. Checked over HTTP, in the SQLite file and with `audiostudio check`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::Value;

use crate::harness::*;

const EMAIL: &str = "subscriber@example.com";
/// localstripe accepts any `sk_...` key.
const SECRET_KEY: &str = "sk_test_localstripe_e2e";
const WEBHOOK_SECRET: &str = "whsec_localstripe_e2e";
/// The localstripe plan (a Stripe price, for the app) that sells `plan_creator`.
const PRICE: &str = "price_e2e_creator";
const CREATOR_TOKENS: i64 = 2000;
/// `src/billing/events.rs` GRANT_GRACE_MS: subscription tokens outlive their period by 3 days.
const GRACE_MS: i64 = 3 * 24 * 3600 * 1000;
const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs localstripe from the installed package, its store kept in memory: the stock
/// server pickles every change to the fixed path /tmp/localstripe.pickle, which
/// concurrent runs (other worktrees, other users) would share or be refused.
const LOCALSTRIPE: &str = "\
from localstripe import resources, server
resources.Store.dump_to_disk = lambda self: None
server.start()
";

/// Polls `probe` until it yields, failing with `context()` after `TIMEOUT`.
fn eventually<T>(
    what: &str,
    context: impl Fn() -> String,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {TIMEOUT:?}\n{}",
            context()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Installs tests/requirements.txt once when localstripe is missing (a fresh machine).
pub(crate) fn ensure_localstripe() {
    let importable = || {
        Command::new("python3")
            .args(["-c", "import localstripe.server"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if importable() {
        return;
    }
    let requirements = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/requirements.txt");
    let pip = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["-r", requirements])
        .output()
        .expect("python3 (>= 3.8, with pip) is needed to run localstripe");
    assert!(
        pip.status.success() && importable(),
        "localstripe is not importable and `python3 -m pip install -r {requirements}` did not fix it:\n{}",
        String::from_utf8_lossy(&pip.stderr)
    );
}

/// A running localstripe; killed on drop.
pub(crate) struct LocalStripe {
    child: Child,
    port: u16,
    log: PathBuf,
    http: Client,
}

impl LocalStripe {
    pub(crate) fn start(dir: &Path) -> LocalStripe {
        ensure_localstripe();
        let port = free_port();
        let log = dir.join("localstripe.log");
        let file = std::fs::File::create(&log).expect("localstripe log");
        let child = Command::new("python3")
            .args([
                "-c",
                LOCALSTRIPE,
                "--port",
                &port.to_string(),
                "--from-scratch",
            ])
            .current_dir(dir)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log handle"))
            .stderr(file)
            .spawn()
            .expect("spawn python3 (localstripe)");
        let mut stripe = LocalStripe {
            child,
            port,
            log: log.clone(),
            http: http(),
        };
        let started = Instant::now();
        eventually(
            "localstripe answers",
            || read_log(&log),
            || {
                if let Ok(Some(status)) = stripe.child.try_wait() {
                    panic!(
                        "localstripe exited at startup ({status}) after {:?}:\n{}",
                        started.elapsed(),
                        read_log(&log)
                    );
                }
                let request = stripe.http.get(stripe.url("/v1/customers"));
                let ok = request
                    .bearer_auth(SECRET_KEY)
                    .timeout(Duration::from_secs(2))
                    .send()
                    .is_ok_and(|r| r.status() == StatusCode::OK);
                ok.then_some(())
            },
        );
        stripe
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn expect_ok(&self, what: &str, request: RequestBuilder) -> Value {
        let response = request.send().unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = response.status();
        let text = response.text().unwrap_or_default();
        assert_eq!(
            status,
            StatusCode::OK,
            "{what}: {text}\n{}",
            read_log(&self.log)
        );
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// A form-encoded API call with Stripe's bracketed keys.
    fn post(&self, path: &str, form: &[(&str, &str)]) -> Value {
        let request = self.http.post(self.url(path)).bearer_auth(SECRET_KEY);
        self.expect_ok(&format!("POST {path}"), request.form(form))
    }

    fn get(&self, path: &str) -> Value {
        let request = self.http.get(self.url(path)).bearer_auth(SECRET_KEY);
        self.expect_ok(&format!("GET {path}"), request)
    }

    fn delete(&self, path: &str) -> Value {
        let request = self.http.delete(self.url(path)).bearer_auth(SECRET_KEY);
        self.expect_ok(&format!("DELETE {path}"), request)
    }

    /// localstripe signs every later event for `url` with our secret (all types).
    fn register_webhook(&self, name: &str, url: &str) {
        let path = format!("/_config/webhooks/{name}");
        let form = [("url", url), ("secret", WEBHOOK_SECRET)];
        let response = self.http.post(self.url(&path)).form(&form).send();
        let status = response.map(|r| r.status());
        assert!(
            status.as_ref().is_ok_and(StatusCode::is_success),
            "POST {path}: {status:?}"
        );
    }

    /// Every event localstripe has created, by id: type.
    fn events(&self) -> BTreeMap<String, String> {
        let list = self.get("/v1/events?limit=100");
        assert_eq!(list["has_more"], false, "more than 100 events: {list}");
        let data = list["data"].as_array().expect("events");
        data.iter()
            .map(|e| {
                let id = e["id"].as_str().expect("event id");
                (id.to_owned(), e["type"].as_str().expect("type").to_owned())
            })
            .collect()
    }

    /// Its webhook deliveries so far, from its access log: (event type, delivered).
    fn deliveries(&self) -> Vec<(String, bool)> {
        let re = regex::Regex::new(r#"webhook "([^"]+)" (successfully delivered|failed.*)"#)
            .expect("regex");
        read_log(&self.log)
            .lines()
            .filter_map(|line| re.captures(line))
            .map(|c| (c[1].to_owned(), c[2].starts_with("successfully")))
            .collect()
    }
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// The stored webhook events, by Stripe event id: (type, status).
fn stored_events(dir: &Path) -> BTreeMap<String, (String, String)> {
    let conn = db(dir);
    let mut query = conn
        .prepare("SELECT id, event_type, status FROM webhook_events")
        .expect("query webhook_events");
    query
        .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .expect("webhook_events")
        .collect::<Result<_, _>>()
        .expect("webhook_events rows")
}

/// The running server, pointed at localstripe, logged in as [`EMAIL`]; killed on drop unless stopped.
fn serve(dir: &Path, stripe: &LocalStripe) -> Session {
    let base = stripe.url("");
    let envs = [
        ("STRIPE_SECRET_KEY", SECRET_KEY),
        ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("STRIPE_API_BASE", base.as_str()),
    ];
    Session::start(dir, &envs, EMAIL)
}

/// Whether every event in `ids` is stored and done with (processed or ignored, not failed).
fn settled(dir: &Path, ids: &BTreeSet<String>) -> bool {
    let stored = stored_events(dir);
    for id in ids {
        match stored.get(id).map(|(_, status)| status.as_str()) {
            Some("processed" | "ignored") => {}
            Some("failed") => panic!("event {id} failed: {stored:?}"),
            _ => return false,
        }
    }
    true
}

#[test]
fn a_subscription_paid_in_localstripe_grants_its_tokens_exactly_once_however_often_events_arrive() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let stripe = LocalStripe::start(dir);

    // Our side: the catalog and a user. Stripe's side: a plan selling plan_creator and a
    // customer with a card that pays (4242...).
    data_cli_ok(dir, &["seed"], Some(""));
    data_cli_ok(
        dir,
        &["users", "create", "--email", EMAIL],
        Some(&format!("{PASSWORD}\n")),
    );
    let form = [
        ("id", PRICE),
        ("amount", "1200"),
        ("currency", "usd"),
        ("interval", "month"),
        ("product[name]", "Creator"),
    ];
    stripe.post("/v1/plans", &form);
    let form = [
        ("email", EMAIL),
        ("source[object]", "card"),
        ("source[number]", "4242424242424242"),
        ("source[exp_month]", "12"),
        ("source[exp_year]", "2040"),
        ("source[cvc]", "123"),
    ];
    let customer = stripe.post("/v1/customers", &form);
    let setup_done = Instant::now();
    let customer_id = customer["id"].as_str().expect("customer id").to_owned();
    assert!(customer["default_source"].is_string(), "{customer}");
    let user_id: String = {
        let conn = db(dir);
        let linked = conn
            .execute(
                "UPDATE subscription_plans SET stripe_price_id = ?1 WHERE id = 'plan_creator'",
                [PRICE],
            )
            .expect("link the plan");
        assert_eq!(linked, 1, "plan_creator is seeded");
        let linked = conn
            .execute(
                "UPDATE users SET stripe_customer_id = ?1 WHERE email = ?2",
                [&customer_id, EMAIL],
            )
            .expect("link the customer");
        assert_eq!(linked, 1, "the user exists");
        conn.query_row("SELECT id FROM users WHERE email = ?1", [EMAIL], |r| {
            r.get(0)
        })
        .expect("user id")
    };

    let mut server = serve(dir, &stripe);
    assert_eq!(server.balance_tokens(), 0);
    let current = server.authed_get("/api/subscriptions/current");
    assert_eq!(current["status"], "free", "{current}");

    // localstripe posts each event 1 s after creating it, to the endpoints registered by
    // then: let the setup's events (customer.created, plan.created, ...) go nowhere, so
    // the endpoint gets exactly the subscription's events.
    thread::sleep(Duration::from_millis(1500).saturating_sub(setup_done.elapsed()));
    let before = stripe.events();
    let webhook_url = server.url("/api/webhooks/stripe");
    stripe.register_webhook("audiostudio", &webhook_url);

    // The subscription: localstripe invoices it, charges the card at once, and sends
    // invoice.created, payment_intent.succeeded, invoice.payment_succeeded and
    // customer.subscription.created to the running binary.
    let form = [
        ("customer", customer_id.as_str()),
        ("items[0][plan]", PRICE),
    ];
    let subscription = stripe.post("/v1/subscriptions", &form);
    assert_eq!(subscription["status"], "active", "{subscription}");
    let subscription_id = subscription["id"]
        .as_str()
        .expect("subscription id")
        .to_owned();
    let invoice_id = subscription["latest_invoice"]
        .as_str()
        .expect("latest_invoice")
        .to_owned();
    let invoice = stripe.get(&format!("/v1/invoices/{invoice_id}"));
    assert_eq!(invoice["status"], "paid", "{invoice}");
    let period_end = invoice["lines"]["data"][0]["period"]["end"]
        .as_i64()
        .unwrap_or_else(|| panic!("the invoice line's period: {invoice}"));

    let context = || {
        format!(
            "stored events: {:?}\n--- localstripe log\n{}\n--- server log\n{}",
            stored_events(dir),
            read_log(&stripe.log),
            server.log()
        )
    };
    let all = stripe.events();
    let first_round: BTreeSet<String> = all
        .keys()
        .filter(|id| !before.contains_key(*id))
        .cloned()
        .collect();
    let mut types: Vec<&str> = first_round.iter().map(|id| all[id].as_str()).collect();
    types.sort_unstable();
    for kind in ["customer.subscription.created", "invoice.payment_succeeded"] {
        assert!(
            types.contains(&kind),
            "localstripe did not emit {kind}: {types:?}"
        );
    }
    eventually("the first events are processed", context, || {
        settled(dir, &first_round).then_some(())
    });
    eventually("2000 tokens", context, || {
        (server.balance_tokens() == CREATOR_TOKENS).then_some(())
    });
    let current = server.authed_get("/api/subscriptions/current");
    assert_eq!(current["plan"]["id"], "plan_creator", "{current}");
    assert_eq!(current["status"], "active", "{current}");
    assert_eq!(current["cancel_at_period_end"], false, "{current}");
    assert!(current["current_period_end"].is_string(), "{current}");
    assert!(current["subscription_id"].is_string(), "{current}");

    // From now on localstripe delivers every event twice: a second endpoint, same URL.
    stripe.register_webhook("audiostudio-again", &webhook_url);
    let canceled = stripe.delete(&format!("/v1/subscriptions/{subscription_id}"));
    assert_eq!(canceled["status"], "canceled", "{canceled}");
    let all = stripe.events();
    let second_round: BTreeSet<String> = all
        .keys()
        .filter(|id| !before.contains_key(*id) && !first_round.contains(*id))
        .cloned()
        .collect();
    let types: Vec<&str> = second_round.iter().map(|id| all[id].as_str()).collect();
    assert_eq!(types, ["customer.subscription.deleted"], "{second_round:?}");
    eventually("the cancellation is delivered twice", context, || {
        let deliveries = stripe.deliveries();
        let twice = deliveries
            .iter()
            .filter(|(kind, _)| kind == "customer.subscription.deleted")
            .count()
            >= 2;
        (twice && settled(dir, &second_round)).then_some(())
    });
    let current = server.authed_get("/api/subscriptions/current");
    assert_eq!(
        current["status"], "free",
        "back on the free plan: {current}"
    );
    assert_eq!(current["plan"]["id"], "plan_free", "{current}");

    // And once more by hand: localstripe's own invoice.payment_succeeded event, exactly
    // as it stored it, freshly signed and delivered again (Stripe retries like this).
    let paid_event = all
        .iter()
        .find(|(_, kind)| *kind == "invoice.payment_succeeded")
        .map(|(id, _)| stripe.get(&format!("/v1/events/{id}")))
        .expect("the payment event");
    let body = serde_json::to_vec(&paid_event).expect("event JSON");
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).expect("HMAC key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(&body);
    let signature = hex::encode(mac.finalize().into_bytes());
    let replay = server
        .http
        .post(&webhook_url)
        .header("Content-Type", "application/json")
        .header("Stripe-Signature", format!("t={t},v1={signature}"))
        .body(body)
        .send()
        .expect("the server answered");
    assert_eq!(
        replay.status(),
        StatusCode::OK,
        "a duplicate is acknowledged"
    );

    // Every delivery was accepted; each event stored once, none failed; 2000 tokens.
    let deliveries = stripe.deliveries();
    let refused: Vec<_> = deliveries.iter().filter(|(_, ok)| !ok).collect();
    assert!(
        refused.is_empty(),
        "refused deliveries: {refused:?}\n{}",
        context()
    );
    assert_eq!(
        deliveries.len(),
        first_round.len() + 2,
        "one delivery per first-round event, two of the cancellation: {deliveries:?}"
    );
    assert!(settled(dir, &first_round) && settled(dir, &second_round));
    assert_eq!(server.balance_tokens(), CREATOR_TOKENS, "{}", context());
    server.stop_ok();

    let out = data_cli_ok(dir, &["webhooks", "list", "--limit", "1000"], Some(""));
    let listing = out.stdout.clone();
    let mut listed = BTreeMap::<String, (String, String, usize)>::new();
    for line in listing.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert!(fields.len() >= 3, "webhooks list line: {line:?}");
        let entry = listed
            .entry(fields[0].to_owned())
            .or_insert_with(|| (fields[1].to_owned(), fields[2].to_owned(), 0));
        entry.2 += 1;
    }
    let expected: BTreeSet<&String> = first_round.iter().chain(&second_round).collect();
    assert_eq!(
        listed.keys().collect::<BTreeSet<_>>(),
        expected,
        "the stored events are localstripe's, each listed:\n{listing}"
    );
    for (id, (kind, status, lines)) in &listed {
        assert_eq!(*lines, 1, "{id} listed {lines} times:\n{listing}");
        assert_eq!(kind, &all[id], "{id}:\n{listing}");
        let acted = matches!(
            kind.as_str(),
            "customer.subscription.created"
                | "customer.subscription.deleted"
                | "invoice.payment_succeeded"
        );
        let want: &[&str] = if acted {
            &["processed"]
        } else {
            &["processed", "ignored"]
        };
        assert!(
            want.contains(&status.as_str()),
            "{id} {kind} is {status}:\n{listing}"
        );
    }

    // One grant in the ledger, keyed by the invoice, expiring with its period (plus grace).
    let conn = db(dir);
    let rows: Vec<(String, i64, Option<String>)> = conn
        .prepare("SELECT kind, amount, reference FROM token_transactions WHERE user_id = ?1")
        .expect("ledger query")
        .query_map([&user_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("ledger rows")
        .collect::<Result<_, _>>()
        .expect("ledger rows");
    assert_eq!(
        rows,
        [("grant".to_owned(), CREATOR_TOKENS, Some(invoice_id.clone()))],
        "the user's ledger"
    );
    let lots: Vec<(String, String, i64, Option<i64>)> = conn
        .prepare("SELECT source, source_ref, amount, expires_at FROM token_lots WHERE user_id = ?1")
        .expect("lots query")
        .query_map([&user_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .expect("lots")
        .collect::<Result<_, _>>()
        .expect("lots");
    assert_eq!(
        lots,
        [(
            "subscription".to_owned(),
            invoice_id.clone(),
            CREATOR_TOKENS,
            Some(period_end * 1000 + GRACE_MS)
        )],
        "the user's token lots"
    );
    let (status, plan): (String, String) = conn
        .query_row(
            "SELECT status, plan_id FROM user_subscriptions WHERE stripe_subscription_id = ?1",
            [&subscription_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("our copy of the subscription");
    assert_eq!(
        (status.as_str(), plan.as_str()),
        ("canceled", "plan_creator")
    );
    drop(conn);

    let out = data_cli_ok(dir, &["check"], Some(""));
    assert!(out.stdout.contains("ledger consistent"), "{out}");
    eprintln!("stripe_e2e took {:?}", started.elapsed());
}
