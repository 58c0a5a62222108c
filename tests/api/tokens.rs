//! Access tokens are accepted only when genuine, unexpired, for us, and their session lives.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rocket::http::Status;
use serde_json::{Value, json};

use crate::helpers::*;

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn secret(app: &TestApp) -> Vec<u8> {
    let text = std::fs::read_to_string(app.dir.path().join("jwt_secret")).unwrap();
    hex::decode(text.trim()).unwrap()
}

fn sign(app: &TestApp, alg: Algorithm, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(&secret(app)),
    )
    .unwrap()
}

#[rocket::async_test]
async fn the_access_token_has_the_documented_claims() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com").await;
    let claims = claims_of(access(&session));
    assert_eq!(claims["iss"], "audiostudio");
    assert_eq!(claims["aud"], "audiostudio-api");
    assert_eq!(claims["sub"], session["user"]["id"]);
    assert_eq!(claims["sid"], session["session_id"]);
    assert_eq!(claims["role"], "user");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );
    // A token we sign ourselves with the same claims is accepted: the tests below differ in one thing only.
    assert_eq!(
        app.get(
            "/api/auth/profile",
            Some(&sign(&app, Algorithm::HS256, &claims))
        )
        .await
        .status,
        Status::Ok
    );
}

#[rocket::async_test]
async fn forged_and_foreign_tokens_are_refused() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com").await;
    let token = access(&session);
    let claims = claims_of(token);

    // Tampered signature.
    let mut tampered = token.to_owned();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    // Tampered payload, original signature.
    let mut elevated = claims.clone();
    elevated["role"] = json!("admin");
    let parts: Vec<&str> = token.split('.').collect();
    let swapped = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(elevated.to_string()),
        parts[2]
    );
    // alg: none.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let hs512 = sign(&app, Algorithm::HS512, &claims);
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = json!("someone-else");
    let mut wrong_iss = claims.clone();
    wrong_iss["iss"] = json!("evil");

    for (what, bad) in [
        ("tampered signature", tampered),
        ("tampered payload", swapped),
        ("alg none", none),
        ("HS512", hs512),
        ("wrong audience", sign(&app, Algorithm::HS256, &wrong_aud)),
        ("wrong issuer", sign(&app, Algorithm::HS256, &wrong_iss)),
        ("garbage", "not.a.jwt".to_owned()),
        ("refresh token", refresh(&session).to_owned()),
    ] {
        let reply = app.get("/api/auth/profile", Some(&bad)).await;
        assert_eq!(reply.status.code, 401, "{what} was accepted");
        reply.assert_problem(401);
    }
    app.get("/api/auth/profile", None).await.assert_problem(401);
    let basic = app
        .client
        .get("/api/auth/profile")
        .header(rocket::http::Header::new(
            "Authorization",
            format!("Basic {token}"),
        ));
    assert_eq!(basic.dispatch().await.status(), Status::Unauthorized);
}

#[rocket::async_test]
async fn an_access_token_expires_after_fifteen_minutes() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com").await;
    app.clock.advance_secs(14 * 60);
    assert_eq!(
        app.get("/api/auth/profile", Some(access(&session)))
            .await
            .status,
        Status::Ok
    );
    app.clock.advance_secs(61);
    app.get("/api/auth/profile", Some(access(&session)))
        .await
        .assert_problem(401);
    // The refresh token still gets a fresh one.
    let renewed = app
        .post(
            "/api/auth/refresh",
            json!({ "refresh_token": refresh(&session) }),
            None,
        )
        .await;
    assert_eq!(renewed.status, Status::Ok);
    assert_eq!(
        app.get("/api/auth/profile", Some(access(&renewed.body)))
            .await
            .status,
        Status::Ok
    );
}

#[rocket::async_test]
async fn a_demoted_admin_loses_admin_access_at_once() {
    let app = spawn_app().await;
    let session = app.register("ada@example.com").await;
    let id = session["user"]["id"].as_str().unwrap();
    app.promote(id);
    let admin = app.login("ada@example.com", PASSWORD).await.body;
    assert_eq!(
        app.get("/api/admin/users", Some(access(&admin)))
            .await
            .status,
        Status::Ok
    );
    app.db()
        .execute("UPDATE users SET role = 'user' WHERE id = ?1", [id])
        .unwrap();
    app.get("/api/admin/users", Some(access(&admin)))
        .await
        .assert_problem(403);
}
