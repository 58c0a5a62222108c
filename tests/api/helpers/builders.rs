//! Fixtures: state put in place directly, as the CLI or another service would have.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{TestApp, access};

impl TestApp {
    /// Makes a registered user an admin, as `users create --admin` would have.
    pub fn promote(&self, user_id: &str) {
        self.db()
            .execute("UPDATE users SET role = 'admin' WHERE id = ?1", [user_id])
            .unwrap();
    }
}

/// The catalogue `audiostudio seed` installs, plus a retired task that must never show.
pub fn seed_tasks(app: &TestApp) {
    app.db()
        .execute_batch(
            "INSERT INTO social_tasks (id, platform, action, title, description, reward_tokens, auto_approve, reward_expires_days, active, sort_order, created_at) VALUES
               ('task_x_follow', 'x', 'follow', 'Follow audiostudio on X', 'Follow @audiostudio', 50, 1, 90, 1, 0, 0),
               ('task_youtube_subscribe', 'youtube', 'subscribe', 'Subscribe on YouTube', NULL, 50, 1, 90, 1, 1, 0),
               ('task_instagram_share', 'instagram', 'share', 'Share a track you made on Instagram', NULL, 150, 0, NULL, 1, 2, 0),
               ('task_tiktok_video', 'tiktok', 'video', 'Post a TikTok made with audiostudio', NULL, 300, 0, 30, 1, 3, 0),
               ('task_retired', 'myspace', 'friend', 'Befriend us on MySpace', NULL, 999, 1, NULL, 0, 4, 0)",
        )
        .unwrap();
}

/// A registered user: (access token, user id).
pub async fn user(app: &TestApp, email: &str) -> (String, String) {
    let session = app.register(email).await;
    (
        access(&session).to_owned(),
        session["user"]["id"].as_str().unwrap().to_owned(),
    )
}

/// A registered user made an admin: (access token, user id).
pub async fn admin(app: &TestApp) -> (String, String) {
    let (token, id) = user(app, "root@example.com").await;
    app.promote(&id);
    (token, id)
}

/// HMAC-SHA256 of `t.body`, computed here independently of the app's code.
pub fn v1(secret: &str, t: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A `Stripe-Signature` header for `body` signed at `t` with `secret`.
pub fn signed(secret: &str, t: i64, body: &str) -> String {
    format!("t={t},v1={}", v1(secret, t, body))
}
