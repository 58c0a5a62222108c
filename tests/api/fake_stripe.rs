//! A small stateful fake of Stripe's API, served over real HTTP by a second Rocket on a free port.
//!
//! It records every request (method, path, headers, decoded form fields), keeps the objects
//! it created, replays POSTs with a known `Idempotency-Key` like Stripe does, and can be
//! told to fail or stall the next requests. It covers what billing calls: customers,
//! products, prices, Checkout and Portal sessions, subscriptions, invoices, charges and
//! payment intents; tests seed the objects webhooks refer to with `insert` and `patch`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rocket::http::{ContentType, Header, RawStr, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, Responder, Response};
use rocket::{Shutdown, State};
use serde_json::{Map, Value, json};

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Lower-cased names.
    pub headers: Vec<(String, String)>,
    /// The form body, decoded, in order (bracketed keys kept as sent).
    pub form: Vec<(String, String)>,
    pub raw_body: String,
}

impl Recorded {
    pub fn field(&self, key: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A scripted answer for the next matching requests.
#[derive(Debug, Clone)]
struct Fault {
    method: Option<String>,
    path_prefix: Option<String>,
    remaining: u32,
    status: u16,
    body: Value,
    headers: Vec<(String, String)>,
    delay: Duration,
    /// Pass the request through after the delay instead of answering with `status`.
    pass_through: bool,
}

#[derive(Default)]
pub struct FakeState {
    pub requests: Vec<Recorded>,
    objects: BTreeMap<String, Value>,
    counter: u64,
    faults: VecDeque<Fault>,
    idempotent: HashMap<String, (u16, Value)>,
}

pub struct FakeStripe {
    pub url: String,
    state: Arc<Mutex<FakeState>>,
    shutdown: Shutdown,
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        self.shutdown.clone().notify();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port nothing listens on (yet): for a Stripe that is unreachable until started there.
pub fn unused_port() -> u16 {
    free_port()
}

impl FakeStripe {
    pub async fn start() -> FakeStripe {
        FakeStripe::start_on(free_port()).await
    }

    /// Serves on `port`, e.g. one an app was pointed at while nothing listened there.
    pub async fn start_on(port: u16) -> FakeStripe {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let config = rocket::Config {
            address: Ipv4Addr::LOCALHOST.into(),
            port,
            log_level: rocket::config::LogLevel::Off,
            cli_colors: false,
            shutdown: rocket::config::Shutdown {
                ctrlc: false,
                #[cfg(unix)]
                signals: Default::default(),
                grace: 1,
                mercy: 1,
                ..Default::default()
            },
            ..rocket::Config::debug_default()
        };
        let rocket = rocket::custom(config)
            .manage(Shared(state.clone()))
            .mount("/", rocket::routes![get_any, post_any, delete_any])
            .ignite()
            .await
            .unwrap();
        let shutdown = rocket.shutdown();
        tokio::spawn(async move {
            let _ = rocket.launch().await;
        });
        for _ in 0..500 {
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        FakeStripe {
            url: format!("http://127.0.0.1:{port}"),
            state,
            shutdown,
        }
    }

    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }

    /// Requests with that method whose path starts with `prefix`.
    pub fn calls(&self, method: &str, prefix: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path.starts_with(prefix))
            .collect()
    }

    pub fn posts(&self) -> usize {
        self.requests().iter().filter(|r| r.method != "GET").count()
    }

    pub fn object(&self, id: &str) -> Option<Value> {
        self.state().objects.get(id).cloned()
    }

    /// Objects of a type (`customer`, `product`, `price`, ...).
    pub fn objects(&self, kind: &str) -> Vec<Value> {
        self.state()
            .objects
            .values()
            .filter(|o| o["object"] == kind)
            .cloned()
            .collect()
    }

    pub fn insert(&self, object: Value) {
        let id = object["id"].as_str().unwrap().to_owned();
        self.state().objects.insert(id, object);
    }

    /// Sets top-level fields of a stored object, as Stripe's own changes would.
    pub fn patch(&self, id: &str, fields: Value) {
        let mut state = self.state();
        let object = state
            .objects
            .get_mut(id)
            .unwrap_or_else(|| panic!("the fake has no object {id}"));
        for (key, value) in fields.as_object().expect("an object of fields") {
            object[key.as_str()] = value.clone();
        }
    }

    /// A price with a known id: recurring every `interval`, or one-time.
    pub fn add_price(&self, id: &str, amount: i64, interval: Option<&str>) {
        self.insert(json!({
            "id": id, "object": "price", "product": format!("prod_{id}"), "unit_amount": amount,
            "currency": "usd", "type": if interval.is_some() { "recurring" } else { "one_time" },
            "recurring": interval.map(|i| json!({ "interval": i, "interval_count": 1 })),
            "metadata": {}, "livemode": false,
        }));
    }

    /// An active subscription of `customer` to `price`, as if its Checkout had completed.
    pub fn add_subscription(&self, customer: &str, price: &str) -> String {
        let mut state = self.state();
        let id = state.next_id("sub");
        let item = state.next_id("si");
        let price = state.objects.get(price).cloned().unwrap_or(Value::Null);
        let now = unix_now();
        state.objects.insert(
            id.clone(),
            json!({
                "id": id, "object": "subscription", "customer": customer, "status": "active",
                "cancel_at_period_end": false, "cancel_at": null, "canceled_at": null, "ended_at": null,
                "current_period_start": now, "current_period_end": now + 30 * 86400, "created": now,
                "items": { "object": "list", "data": [ { "id": item, "object": "subscription_item", "price": price, "quantity": 1 } ], "has_more": false },
                "latest_invoice": null, "metadata": {}, "livemode": false,
            }),
        );
        id
    }

    /// An invoice of `customer`, for the history.
    pub fn add_invoice(
        &self,
        customer: &str,
        subscription: &str,
        amount: i64,
        status: &str,
    ) -> String {
        let mut state = self.state();
        let id = state.next_id("in");
        let now = unix_now();
        let created = now + i64::try_from(state.counter).unwrap();
        let number = format!("AS-{}", state.counter);
        state.objects.insert(
            id.clone(),
            json!({
                "id": id, "object": "invoice", "number": number, "customer": customer,
                "subscription": subscription, "status": status, "paid": status == "paid",
                "amount_due": amount, "amount_paid": if status == "paid" { amount } else { 0 }, "amount_remaining": 0,
                "currency": "usd", "billing_reason": "subscription_cycle",
                "hosted_invoice_url": format!("https://invoice.stripe.test/i/{id}"),
                "invoice_pdf": format!("https://invoice.stripe.test/i/{id}/pdf"),
                "period_start": now - 30 * 86400, "period_end": now, "created": created,
                "lines": { "object": "list", "has_more": false, "data": [ { "id": "il_1", "amount": amount, "proration": false, "period": { "start": now, "end": now + 30 * 86400 } } ] },
                "metadata": {}, "livemode": false,
            }),
        );
        id
    }

    /// Marks a Checkout Session paid, as if the user had paid.
    pub fn complete_session(&self, id: &str) {
        let mut state = self.state();
        let session = state.objects.get_mut(id).unwrap();
        session["status"] = json!("complete");
        session["payment_status"] = json!("paid");
    }

    fn push_fault(&self, fault: Fault) {
        self.state().faults.push_back(fault);
    }

    /// The next `times` requests (any) get `status` and `body`.
    pub fn fail_next(&self, times: u32, status: u16, body: Value) {
        self.push_fault(Fault {
            method: None,
            path_prefix: None,
            remaining: times,
            status,
            body,
            headers: Vec::new(),
            delay: Duration::ZERO,
            pass_through: false,
        });
    }

    /// The next `times` requests of `method` under `prefix` get `status`, `body` and `headers`.
    pub fn fail_matching(
        &self,
        method: &str,
        prefix: &str,
        times: u32,
        status: u16,
        body: Value,
        headers: &[(&str, &str)],
    ) {
        self.push_fault(Fault {
            method: Some(method.to_owned()),
            path_prefix: Some(prefix.to_owned()),
            remaining: times,
            status,
            body,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            delay: Duration::ZERO,
            pass_through: false,
        });
    }

    /// The next `times` requests (any) are answered normally, but only after `delay`.
    pub fn stall_next(&self, times: u32, delay: Duration) {
        self.push_fault(Fault {
            method: None,
            path_prefix: None,
            remaining: times,
            status: 200,
            body: Value::Null,
            headers: Vec::new(),
            delay,
            pass_through: true,
        });
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn stripe_error(kind: &str, code: Option<&str>, message: &str) -> Value {
    json!({ "error": { "type": kind, "code": code, "message": message } })
}

fn missing(id: &str) -> (u16, Value) {
    (
        404,
        json!({ "error": { "type": "invalid_request_error", "code": "resource_missing", "message": format!("No such object: '{id}'") } }),
    )
}

fn invalid(param: &str, message: &str) -> (u16, Value) {
    (
        400,
        json!({ "error": { "type": "invalid_request_error", "param": param, "message": message } }),
    )
}

impl FakeState {
    fn next_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}_{}", self.counter)
    }

    /// The next fault matching this request, used up by one.
    fn take_fault(&mut self, method: &str, path: &str) -> Option<Fault> {
        let index = self.faults.iter().position(|f| {
            f.remaining > 0
                && f.method.as_deref().is_none_or(|m| m == method)
                && f.path_prefix.as_deref().is_none_or(|p| path.starts_with(p))
        })?;
        let fault = &mut self.faults[index];
        fault.remaining -= 1;
        let taken = fault.clone();
        if fault.remaining == 0 {
            self.faults.remove(index);
        }
        Some(taken)
    }

    fn get(&self, id: &str, kind: &str) -> Result<Value, (u16, Value)> {
        match self.objects.get(id) {
            Some(o) if o["object"] == kind => Ok(o.clone()),
            _ => Err(missing(id)),
        }
    }

    fn list(&self, kind: &str, customer: Option<&str>, limit: usize) -> Value {
        self.list_where(kind, &[("customer", customer.map(str::to_owned))], limit)
    }

    /// Objects of `kind` whose fields equal every given filter, newest first.
    fn list_where(&self, kind: &str, filters: &[(&str, Option<String>)], limit: usize) -> Value {
        let mut data: Vec<Value> = self
            .objects
            .values()
            .filter(|o| o["object"] == kind)
            .filter(|o| {
                filters
                    .iter()
                    .all(|(field, value)| value.as_ref().is_none_or(|v| o[*field] == v.as_str()))
            })
            .cloned()
            .collect();
        data.sort_by_key(|o| std::cmp::Reverse(o["created"].as_i64().unwrap_or(0)));
        let has_more = data.len() > limit;
        data.truncate(limit);
        json!({ "object": "list", "data": data, "has_more": has_more })
    }

    fn handle(
        &mut self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        form: &[(String, String)],
    ) -> (u16, Value) {
        let field = |k: &str| {
            form.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let param = |k: &str| {
            query
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let metadata = |prefix: &str| -> Value {
            let mut map = Map::new();
            for (k, v) in form {
                if let Some(name) = k
                    .strip_prefix(&format!("{prefix}["))
                    .and_then(|r| r.strip_suffix(']'))
                    && !name.contains('[')
                {
                    map.insert(name.to_owned(), json!(v));
                }
            }
            Value::Object(map)
        };
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let result: Result<Value, (u16, Value)> = match (method, segments.as_slice()) {
            ("POST", ["v1", "customers"]) => {
                let id = self.next_id("cus");
                let customer = json!({ "id": id, "object": "customer", "email": field("email"), "metadata": metadata("metadata"), "created": unix_now() });
                self.objects.insert(id, customer.clone());
                Ok(customer)
            }
            ("GET", ["v1", "customers", id]) => self.get(id, "customer"),
            ("POST", ["v1", "products"]) => match field("name") {
                None => Err(invalid("name", "Missing required param: name.")),
                Some(name) => {
                    let id = self.next_id("prod");
                    let product = json!({ "id": id, "object": "product", "name": name, "description": field("description"), "metadata": metadata("metadata") });
                    self.objects.insert(id, product.clone());
                    Ok(product)
                }
            },
            ("POST", ["v1", "prices"]) => {
                let product = field("product").unwrap_or_default();
                if self.get(&product, "product").is_err() {
                    Err(invalid("product", &format!("No such product: '{product}'")))
                } else {
                    let id = self.next_id("price");
                    let interval = field("recurring[interval]");
                    let price = json!({
                        "id": id, "object": "price", "product": product,
                        "unit_amount": field("unit_amount").and_then(|a| a.parse::<i64>().ok()),
                        "currency": field("currency"),
                        "type": if interval.is_some() { "recurring" } else { "one_time" },
                        "recurring": interval.map(|i| json!({ "interval": i, "interval_count": 1 })),
                        "metadata": metadata("metadata"),
                    });
                    self.objects.insert(id, price.clone());
                    Ok(price)
                }
            }
            ("POST", ["v1", "checkout", "sessions"]) => self.create_session(&field, &metadata),
            ("GET", ["v1", "checkout", "sessions"]) => {
                let limit = param("limit").and_then(|l| l.parse().ok()).unwrap_or(10);
                Ok(self.list_where(
                    "checkout.session",
                    &[
                        ("customer", param("customer")),
                        ("payment_intent", param("payment_intent")),
                        ("subscription", param("subscription")),
                    ],
                    limit,
                ))
            }
            ("GET", ["v1", "checkout", "sessions", id]) => self.get(id, "checkout.session"),
            ("POST", ["v1", "billing_portal", "sessions"]) => {
                let customer = field("customer").unwrap_or_default();
                match self.get(&customer, "customer") {
                    Err(e) => Err(e),
                    Ok(_) => {
                        let id = self.next_id("bps");
                        Ok(
                            json!({ "id": id, "object": "billing_portal.session", "customer": customer,
                            "return_url": field("return_url"), "url": format!("https://billing.stripe.test/p/session/{id}") }),
                        )
                    }
                }
            }
            ("GET", ["v1", "subscriptions"]) => {
                Ok(self.list("subscription", param("customer").as_deref(), 100))
            }
            ("GET", ["v1", "subscriptions", id]) => self.get(id, "subscription"),
            ("POST", ["v1", "subscriptions", id]) => {
                self.update_subscription(id, &field, &metadata)
            }
            ("DELETE", ["v1", "subscriptions", id]) => match self.get(id, "subscription") {
                Err(e) => Err(e),
                Ok(_) => {
                    let sub = self.objects.get_mut(*id).unwrap();
                    sub["status"] = json!("canceled");
                    sub["canceled_at"] = json!(unix_now());
                    sub["ended_at"] = json!(unix_now());
                    Ok(sub.clone())
                }
            },
            ("GET", ["v1", "invoices"]) => {
                let limit = param("limit").and_then(|l| l.parse().ok()).unwrap_or(10);
                Ok(self.list("invoice", param("customer").as_deref(), limit))
            }
            ("GET", ["v1", "invoices", id]) => self.get(id, "invoice"),
            ("GET", ["v1", "charges", id]) => self.get(id, "charge"),
            ("GET", ["v1", "payment_intents", id]) => self.get(id, "payment_intent"),
            _ => Err((
                404,
                json!({ "error": { "type": "invalid_request_error", "message": format!("Unrecognized request URL ({method}: {path})") } }),
            )),
        };
        match result {
            Ok(v) => (200, v),
            Err(e) => e,
        }
    }

    fn create_session(
        &mut self,
        field: &dyn Fn(&str) -> Option<String>,
        metadata: &dyn Fn(&str) -> Value,
    ) -> Result<Value, (u16, Value)> {
        let mode = field("mode").ok_or_else(|| invalid("mode", "Missing required param: mode."))?;
        let customer = field("customer").unwrap_or_default();
        self.get(&customer, "customer")?;
        let price_id = field("line_items[0][price]").unwrap_or_default();
        let price = self.get(&price_id, "price").map_err(|_| {
            invalid(
                "line_items[0][price]",
                &format!("No such price: '{price_id}'"),
            )
        })?;
        match (mode.as_str(), price["type"].as_str()) {
            ("subscription", Some("recurring")) | ("payment", Some("one_time")) => {}
            _ => {
                return Err(invalid(
                    "line_items[0][price]",
                    "The price type does not fit the mode",
                ));
            }
        }
        for url in ["success_url", "cancel_url"] {
            if field(url).is_none() {
                return Err(invalid(url, &format!("Missing required param: {url}.")));
            }
        }
        let id = self.next_id("cs_test");
        let session = json!({
            "id": id, "object": "checkout.session", "mode": mode, "status": "open", "payment_status": "unpaid",
            "customer": customer, "client_reference_id": field("client_reference_id"),
            "metadata": metadata("metadata"), "amount_total": price["unit_amount"], "currency": price["currency"],
            "success_url": field("success_url"), "cancel_url": field("cancel_url"),
            "url": format!("https://checkout.stripe.test/c/pay/{id}"),
            "expires_at": unix_now() + 86400, "subscription": null, "payment_intent": null, "livemode": false,
        });
        self.objects.insert(id, session.clone());
        Ok(session)
    }

    fn update_subscription(
        &mut self,
        id: &str,
        field: &dyn Fn(&str) -> Option<String>,
        metadata: &dyn Fn(&str) -> Value,
    ) -> Result<Value, (u16, Value)> {
        self.get(id, "subscription")?;
        let new_price = match field("items[0][price]") {
            Some(p) => Some(
                self.get(&p, "price")
                    .map_err(|_| invalid("items[0][price]", &format!("No such price: '{p}'")))?,
            ),
            None => None,
        };
        let sub = self.objects.get_mut(id).unwrap();
        if let Some(cancel) = field("cancel_at_period_end") {
            sub["cancel_at_period_end"] = json!(cancel == "true");
        }
        if let Some(price) = new_price {
            let item = field("items[0][id]").unwrap_or_default();
            if sub["items"]["data"][0]["id"] != item.as_str() {
                return Err(invalid("items[0][id]", "No such subscription item"));
            }
            sub["items"]["data"][0]["price"] = price;
        }
        if let Value::Object(meta) = metadata("metadata")
            && let Some(existing) = sub["metadata"].as_object_mut()
        {
            existing.extend(meta);
        }
        Ok(sub.clone())
    }
}

struct Shared(Arc<Mutex<FakeState>>);

/// What the routes need of a request besides its body.
struct Incoming {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Incoming {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(Incoming {
            method: req.method().as_str().to_owned(),
            path: req.uri().path().to_string(),
            query: req
                .uri()
                .query()
                .map(|q| decode_form(q.as_str()))
                .unwrap_or_default(),
            headers: req
                .headers()
                .iter()
                .map(|h| (h.name().as_str().to_ascii_lowercase(), h.value().to_owned()))
                .collect(),
        })
    }
}

fn decode_form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                RawStr::new(k).url_decode_lossy().into_owned(),
                RawStr::new(v).url_decode_lossy().into_owned(),
            )
        })
        .collect()
}

struct FakeReply {
    status: u16,
    body: Value,
    headers: Vec<(String, String)>,
}

impl<'r> Responder<'r, 'static> for FakeReply {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let body = self.body.to_string();
        let mut response = Response::build()
            .status(Status::new(self.status))
            .header(ContentType::JSON)
            .header(Header::new("Request-Id", "req_fake"))
            .sized_body(body.len(), std::io::Cursor::new(body))
            .finalize();
        for (name, value) in self.headers {
            response.set_header(Header::new(name, value));
        }
        Ok(response)
    }
}

async fn respond(shared: &Shared, incoming: Incoming, body: String) -> FakeReply {
    let form = decode_form(&body);
    let key = incoming
        .headers
        .iter()
        .find(|(n, _)| n == "idempotency-key")
        .map(|(_, v)| v.clone());
    let fault = {
        let mut state = shared.0.lock().unwrap();
        state.requests.push(Recorded {
            method: incoming.method.clone(),
            path: incoming.path.clone(),
            query: incoming.query.clone(),
            headers: incoming.headers.clone(),
            form: form.clone(),
            raw_body: body.clone(),
        });
        state.take_fault(&incoming.method, &incoming.path)
    };
    if let Some(fault) = &fault {
        tokio::time::sleep(fault.delay).await;
        if !fault.pass_through {
            return FakeReply {
                status: fault.status,
                body: fault.body.clone(),
                headers: fault.headers.clone(),
            };
        }
    }
    let mut state = shared.0.lock().unwrap();
    if let Some(key) = &key
        && let Some((status, body)) = state.idempotent.get(key).cloned()
    {
        return FakeReply {
            status,
            body,
            headers: vec![("Idempotent-Replayed".into(), "true".into())],
        };
    }
    let (status, reply) = state.handle(&incoming.method, &incoming.path, &incoming.query, &form);
    if let Some(key) = key
        && incoming.method == "POST"
        && status < 500
    {
        state.idempotent.insert(key, (status, reply.clone()));
    }
    FakeReply {
        status,
        body: reply,
        headers: Vec::new(),
    }
}

#[rocket::get("/<_..>")]
async fn get_any(incoming: Incoming, shared: &State<Shared>) -> FakeReply {
    respond(shared, incoming, String::new()).await
}

#[rocket::post("/<_..>", data = "<body>")]
async fn post_any(incoming: Incoming, shared: &State<Shared>, body: String) -> FakeReply {
    respond(shared, incoming, body).await
}

#[rocket::delete("/<_..>", data = "<body>")]
async fn delete_any(incoming: Incoming, shared: &State<Shared>, body: String) -> FakeReply {
    respond(shared, incoming, body).await
}
