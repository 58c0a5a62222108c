//! Fixtures: state put in place directly, as the CLI or another service would have.

use super::TestApp;

impl TestApp {
    /// Makes a registered user an admin, as `users create --admin` would have.
    pub fn promote(&self, user_id: &str) {
        self.db()
            .execute("UPDATE users SET role = 'admin' WHERE id = ?1", [user_id])
            .unwrap();
    }
}
