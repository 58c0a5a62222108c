//! The token ledger under concurrency: the real `audiostudio` binary driven over real HTTP
//! by many client threads at once, then checked with `audiostudio check` and the SQLite file.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::Instant;

use reqwest::StatusCode;
use reqwest::blocking::RequestBuilder;
use serde_json::{Value, json};

use crate::harness::*;

const FEATURE: &str = "text_to_speech";

/// Creates a user and grants `tokens` through the CLI (straight into SQLite).
fn user_with_tokens(dir: &Path, email: &str, tokens: i64) {
    let out = data_cli(
        dir,
        &["users", "create", "--email", email],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(out.status.success(), "users create: {out}");
    let amount = tokens.to_string();
    let out = data_cli(
        dir,
        &["tokens", "grant", email, &amount, "--reason", "e2e"],
        Some(""),
    );
    assert!(out.status.success(), "tokens grant: {out}");
}

fn assert_check_clean(dir: &Path) {
    let out = data_cli(dir, &["check"], Some(""));
    assert!(
        out.status.success(),
        "audiostudio check found a mismatch: {out}"
    );
    assert!(out.stdout.contains("ledger consistent"), "{out}");
}

/// Serves `<dir>/data` (logins, token mutations and the per-IP ceiling unthrottled: these
/// tests race a thousand requests from one user) and logs in as `email`.
fn serve(dir: &Path, email: &str) -> Session {
    let envs = [
        ("ROCKET_RATE_LIMIT_LOGIN_PER_MINUTE", "100000"),
        ("ROCKET_RATE_LIMIT_TOKEN_MUTATIONS_PER_MINUTE", "100000"),
        ("ROCKET_RATE_LIMIT_GLOBAL_PER_MINUTE", "1000000"),
    ];
    Session::start(dir, &envs, email)
}

/// Sends and returns the status and the JSON body (`Null` when empty or not JSON).
fn send(request: RequestBuilder) -> (StatusCode, Value) {
    let (status, _, body) = send_full(request);
    (status, body)
}

/// A response as the tests look at it: status, selected headers, JSON body.
fn send_full(request: RequestBuilder) -> (StatusCode, BTreeMap<String, String>, Value) {
    let response = request.send().expect("the server answered");
    let status = response.status();
    let headers = ["content-type", "idempotent-replayed"]
        .into_iter()
        .filter_map(|name| {
            let value = response.headers().get(name)?.to_str().ok()?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect();
    let text = response.text().unwrap_or_default();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// Runs `jobs` on `threads` client threads released together by a barrier; results in job order.
fn concurrently<J, R>(threads: usize, jobs: Vec<J>, run: impl Fn(J) -> R + Sync) -> Vec<R>
where
    J: Send,
    R: Send,
{
    let n = jobs.len();
    let queue = Mutex::new(jobs.into_iter().enumerate().collect::<Vec<_>>());
    let results = Mutex::new((0..n).map(|_| None).collect::<Vec<Option<R>>>());
    let barrier = Barrier::new(threads);
    thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                barrier.wait();
                loop {
                    let Some((i, job)) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let result = run(job);
                    results.lock().unwrap()[i] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}

/// The balance a 402 problem states in its detail.
fn stated_balance(problem: &Value) -> i64 {
    let detail = problem["detail"].as_str().unwrap_or_default();
    let re = regex::Regex::new(r"balance\D*?(\d+)").unwrap();
    re.captures(detail)
        .and_then(|c| c[1].parse().ok())
        .unwrap_or_else(|| panic!("the 402 detail does not state the balance: {problem}"))
}

fn assert_insufficient(headers: &BTreeMap<String, String>, problem: &Value, needed: i64) {
    assert_eq!(
        headers.get("content-type").map(String::as_str),
        Some("application/problem+json"),
        "{problem}"
    );
    assert_eq!(problem["status"], 402, "{problem}");
    let balance = stated_balance(problem);
    assert!(
        (0..needed).contains(&balance),
        "402 for {needed} tokens states balance {balance}: {problem}"
    );
}

fn user_id(dir: &Path, email: &str) -> String {
    db(dir)
        .query_row("SELECT id FROM users WHERE email = ?1", [email], |r| {
            r.get(0)
        })
        .expect("the user row")
}

#[test]
fn a_thousand_concurrent_spends_of_one_token_against_a_hundred_succeed_exactly_a_hundred_times() {
    let dir = tempfile::tempdir().unwrap();
    let email = "racer@example.com";
    user_with_tokens(dir.path(), email, 100);
    let mut server = serve(dir.path(), email);

    let body = json!({ "amount": 1, "feature": FEATURE, "description": "e2e race" });
    let started = Instant::now();
    let results = concurrently(128, (0..1000).collect(), |_| {
        send_full(server.authed_post("/api/tokens/use", &body))
    });
    let elapsed = started.elapsed();

    let mut by_status = BTreeMap::<u16, usize>::new();
    let mut balances_after = Vec::new();
    for (status, headers, body) in &results {
        *by_status.entry(status.as_u16()).or_default() += 1;
        match *status {
            StatusCode::OK => {
                assert_eq!(body["transaction"]["type"], "spend", "{body}");
                assert_eq!(body["transaction"]["amount"], -1, "{body}");
                let balance = body["balance"].as_i64().expect("balance");
                assert_eq!(body["transaction"]["balance_after"], balance, "{body}");
                balances_after.push(balance);
            }
            StatusCode::PAYMENT_REQUIRED => {
                assert_insufficient(headers, body, 1);
                assert_eq!(stated_balance(body), 0, "{body}");
            }
            other => panic!("unexpected {other}: {body}\n{}", server.log()),
        }
    }
    assert_eq!(
        by_status,
        BTreeMap::from([(200, 100), (402, 900)]),
        "1000 spends of 1 against 100 tokens (in {elapsed:?})"
    );
    // Each success saw its own balance: the debits were serialised, none was lost.
    balances_after.sort_unstable();
    assert_eq!(balances_after, (0..100).collect::<Vec<i64>>());

    let balance = server.balance();
    assert_eq!(balance["balance"], 0, "{balance}");
    assert_eq!(balance["held"], 0, "{balance}");
    assert_eq!(balance["lifetime_spent"], 100, "{balance}");
    assert_eq!(balance["lifetime_earned"], 100, "{balance}");

    server.stop_ok();
    assert_check_clean(dir.path());
    let user = user_id(dir.path(), email);
    let (rows, sum): (i64, i64) = db(dir.path())
        .query_row(
            "SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM token_transactions
             WHERE user_id = ?1 AND kind = 'spend'",
            [&user],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((rows, sum), (100, -100), "spend rows of the user");
    let min_after: i64 = db(dir.path())
        .query_row(
            "SELECT MIN(balance_after) FROM token_transactions WHERE user_id = ?1",
            [&user],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(min_after, 0);
}

/// One client's plan in the holds race.
#[derive(Clone, Copy, Debug)]
enum Plan {
    /// `POST /use` of 2.
    Spend,
    /// A hold of 3, then a capture of `n` (1..=3).
    HoldCapture(i64),
    /// A hold of 3, then a release.
    HoldRelease,
    /// A hold of 3, then a capture of `n` and a release racing each other.
    HoldRace(i64),
}

/// What one plan did: tokens it spent, every status seen, and the lowest balance reported.
#[derive(Debug, Default)]
struct Outcome {
    spent: i64,
    statuses: Vec<u16>,
    min_balance: i64,
    problems: Vec<String>,
}

/// Records one response of a plan; anything but 200/201/402/409 is a problem.
fn note(out: &mut Outcome, what: &str, status: StatusCode, body: &Value) {
    out.statuses.push(status.as_u16());
    if let Some(balance) = body["balance"].as_i64() {
        out.min_balance = out.min_balance.min(balance);
    }
    if ![200, 201, 402, 409].contains(&status.as_u16()) {
        out.problems.push(format!("{what}: {status} {body}"));
    }
}

fn play(server: &Session, plan: Plan) -> Outcome {
    let mut out = Outcome {
        min_balance: i64::MAX,
        ..Outcome::default()
    };
    if let Plan::Spend = plan {
        let body = json!({ "amount": 2, "feature": FEATURE });
        let (status, headers, body) = send_full(server.authed_post("/api/tokens/use", &body));
        note(&mut out, "use 2", status, &body);
        match status {
            StatusCode::OK => out.spent += 2,
            StatusCode::PAYMENT_REQUIRED => assert_insufficient(&headers, &body, 2),
            _ => {}
        }
        return out;
    }
    let hold = json!({ "amount": 3, "feature": FEATURE, "ttl_seconds": 600 });
    let (status, headers, body) = send_full(server.authed_post("/api/tokens/holds", &hold));
    note(&mut out, "hold 3", status, &body);
    if status == StatusCode::PAYMENT_REQUIRED {
        assert_insufficient(&headers, &body, 3);
    }
    if status != StatusCode::CREATED {
        return out;
    }
    assert_eq!(body["status"], "open", "{body}");
    assert_eq!(body["amount"], 3, "{body}");
    let id = body["id"].as_str().expect("hold id").to_owned();
    let capture = |n: i64| {
        let path = format!("/api/tokens/holds/{id}/capture");
        send(server.authed_post(&path, &json!({ "amount": n })))
    };
    let release = || {
        let path = format!("/api/tokens/holds/{id}/release");
        send(
            server
                .http
                .post(server.url(&path))
                .bearer_auth(&server.token),
        )
    };
    match plan {
        Plan::HoldCapture(n) => {
            let (status, body) = capture(n);
            note(&mut out, "capture", status, &body);
            if status == StatusCode::OK {
                assert_eq!(body["status"], "captured", "{body}");
                assert_eq!(body["captured"], n, "{body}");
                out.spent += n;
            } else {
                out.problems
                    .push(format!("capture of an open hold: {status} {body}"));
            }
        }
        Plan::HoldRelease => {
            let (status, body) = release();
            note(&mut out, "release", status, &body);
            if status == StatusCode::OK {
                assert_eq!(body["status"], "released", "{body}");
            } else {
                out.problems
                    .push(format!("release of an open hold: {status} {body}"));
            }
        }
        Plan::HoldRace(n) => {
            let barrier = Barrier::new(2);
            let ((cs, cb), (rs, rb)) = thread::scope(|s| {
                let c = s.spawn(|| {
                    barrier.wait();
                    capture(n)
                });
                let r = s.spawn(|| {
                    barrier.wait();
                    release()
                });
                (c.join().unwrap(), r.join().unwrap())
            });
            note(&mut out, "racing capture", cs, &cb);
            note(&mut out, "racing release", rs, &rb);
            match (cs, rs) {
                (StatusCode::OK, StatusCode::CONFLICT) => {
                    assert_eq!(cb["captured"], n, "{cb}");
                    out.spent += n;
                }
                (StatusCode::CONFLICT, StatusCode::OK) => {}
                other => out.problems.push(format!(
                    "capture and release of one hold: expected exactly one 200 and one 409, got {other:?}: {cb} / {rb}"
                )),
            }
        }
        Plan::Spend => unreachable!(),
    }
    out
}

#[test]
fn holds_racing_spends_never_overdraw_and_every_token_is_accounted_for() {
    let dir = tempfile::tempdir().unwrap();
    let email = "holder@example.com";
    user_with_tokens(dir.path(), email, 100);
    let mut server = serve(dir.path(), email);

    // A fixed, shuffled mix: 126 spends and 126 holds, each successful hold settled by
    // its client (capture, release, or both racing): about 300 requests in all.
    let mut seed: u64 = 0x5eed_1234_abcd_ef01;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut plans: Vec<Plan> = (0..252)
        .map(|i| match i % 6 {
            0..=2 => Plan::Spend,
            3 => Plan::HoldCapture(1 + (i / 6) % 3),
            4 => Plan::HoldRelease,
            _ => Plan::HoldRace(1 + (i / 6) % 3),
        })
        .collect();
    for i in (1..plans.len()).rev() {
        let j = usize::try_from(next() % (i as u64 + 1)).unwrap();
        plans.swap(i, j);
    }

    let outcomes = concurrently(96, plans, |plan| play(&server, plan));

    let mut by_status = BTreeMap::<u16, usize>::new();
    let mut problems = Vec::new();
    let mut spent = 0;
    let mut min_balance = i64::MAX;
    for out in &outcomes {
        for s in &out.statuses {
            *by_status.entry(*s).or_default() += 1;
        }
        problems.extend(out.problems.iter().cloned());
        spent += out.spent;
        min_balance = min_balance.min(out.min_balance);
    }
    let requests: usize = by_status.values().sum();
    assert!(
        problems.is_empty(),
        "{} bad responses ({by_status:?}):\n{}\n{}",
        problems.len(),
        problems.join("\n"),
        server.log()
    );
    assert!(
        min_balance >= 0,
        "a response reported balance {min_balance}"
    );
    assert!(requests >= 252, "only {requests} requests: {by_status:?}");
    // The race has to contend: holds were taken, and requests were refused for funds.
    for status in [201, 402] {
        assert!(
            by_status.get(&status).is_some_and(|n| *n > 0),
            "{by_status:?}"
        );
    }
    eprintln!("holds race: {requests} requests {by_status:?}, {spent} tokens spent");

    let balance = server.balance();
    let final_balance = balance["balance"].as_i64().expect("balance");
    assert_eq!(balance["held"], 0, "every hold was settled: {balance}");
    assert!(final_balance >= 0, "{balance}");
    assert_eq!(
        final_balance + spent,
        100,
        "final balance {final_balance} + spent {spent} (per the responses {by_status:?}) != 100"
    );
    assert_eq!(balance["lifetime_spent"], spent, "{balance}");

    server.stop_ok();
    assert_check_clean(dir.path());
    let user = user_id(dir.path(), email);
    let conn = db(dir.path());
    let (open, min_after): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT COUNT(*) FROM token_holds WHERE user_id = ?1 AND status = 'open'),
                    (SELECT MIN(balance_after) FROM token_transactions WHERE user_id = ?1)",
            [&user],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(open, 0, "open holds left");
    assert!(min_after >= 0, "a ledger row has balance_after {min_after}");
}

#[test]
fn fifty_concurrent_retries_with_one_idempotency_key_debit_once() {
    let dir = tempfile::tempdir().unwrap();
    let email = "retrier@example.com";
    user_with_tokens(dir.path(), email, 100);
    let mut server = serve(dir.path(), email);

    let key = "e2e-idem-0001";
    let body = json!({ "amount": 7, "feature": FEATURE, "metadata": { "job": "j-1" } });
    let results = concurrently(50, (0..50).collect(), |_| {
        send_full(
            server
                .authed_post("/api/tokens/use", &body)
                .header("Idempotency-Key", key),
        )
    });

    let first = &results[0].2;
    let mut replayed = 0;
    for (status, headers, response) in &results {
        assert_eq!(*status, StatusCode::OK, "{response}");
        assert_eq!(response, first, "a retry got another body");
        if headers.get("idempotent-replayed").map(String::as_str) == Some("true") {
            replayed += 1;
        }
    }
    assert_eq!(first["balance"], 93, "{first}");
    assert_eq!(first["transaction"]["amount"], -7, "{first}");
    assert_eq!(replayed, 49, "all but the first answer are replays");

    let other = json!({ "amount": 8, "feature": FEATURE, "metadata": { "job": "j-1" } });
    let (status, headers, problem) = send_full(
        server
            .authed_post("/api/tokens/use", &other)
            .header("Idempotency-Key", key),
    );
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        headers.get("content-type").map(String::as_str),
        Some("application/problem+json"),
        "{problem}"
    );
    let balance = server.balance();
    assert_eq!(balance["balance"], 93, "debited once: {balance}");
    assert_eq!(balance["lifetime_spent"], 7, "{balance}");

    server.stop_ok();
    assert_check_clean(dir.path());
    let user = user_id(dir.path(), email);
    let spends: i64 = db(dir.path())
        .query_row(
            "SELECT COUNT(*) FROM token_transactions WHERE user_id = ?1 AND kind = 'spend'",
            [&user],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(spends, 1, "one spend row for fifty retries");
}
