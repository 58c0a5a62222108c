//! A bare Rocket 0.5 JSON hello: the ceiling of the HTTP path before any application work.
//! Usage: hello <port>

use rocket::serde::json::{Json, Value, json};
use rocket::{get, routes};

#[get("/hello")]
fn hello() -> Json<Value> {
    Json(json!({ "hello": "world" }))
}

#[rocket::launch]
fn rocket() -> _ {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8001);
    let figment = rocket::Config::figment()
        .merge(("port", port))
        .merge(("address", "127.0.0.1"))
        .merge(("log_level", "off"));
    rocket::custom(figment).mount("/", routes![hello])
}
