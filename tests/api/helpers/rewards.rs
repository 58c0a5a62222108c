//! Fixtures for social rewards: accounts whose email is verified, claims from a chosen
//! client address.

use serde_json::json;

use super::{Reply, TestApp, user};

impl TestApp {
    /// Marks a user's email verified, as following the emailed link would have.
    pub fn verify_email(&self, user_id: &str) {
        self.db()
            .execute(
                "UPDATE users SET email_verified_at = COALESCE(email_verified_at, 0) WHERE id = ?1",
                [user_id],
            )
            .unwrap();
    }
}

/// A registered user whose email is verified: (access token, user id).
pub async fn verified_user(app: &TestApp, email: &str) -> (String, String) {
    let (token, id) = user(app, email).await;
    app.verify_email(&id);
    (token, id)
}

/// A claim of social task `task` sent from client address `ip`.
pub async fn claim_from(app: &TestApp, token: &str, task: &str, ip: &str) -> Reply {
    let body =
        json!({ "task_id": task, "proof_url": format!("https://social.example.com/{task}/proof") });
    app.send(
        "POST",
        "/api/tokens/social",
        Some(&body.to_string()),
        Some(token),
        Some(ip),
    )
    .await
}
