//! Readers of what the application stored, for assertions.

use audiostudio::tokens::ledger;

use super::TestApp;

impl TestApp {
    /// The stored webhook event `id`; fails when there is none.
    pub fn webhook_event(&self, id: &str) -> WebhookEventRow {
        self.db()
            .query_row(
                "SELECT status, attempts, last_error, next_attempt_at, processed_at, note FROM webhook_events WHERE id = ?1",
                [id],
                |r| {
                    Ok(WebhookEventRow {
                        status: r.get(0)?,
                        attempts: r.get(1)?,
                        last_error: r.get(2)?,
                        next_attempt_at: r.get(3)?,
                        processed_at: r.get(4)?,
                        note: r.get(5)?,
                    })
                },
            )
            .unwrap_or_else(|e| panic!("no stored event {id}: {e}"))
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.db().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// The newest queued email to `to`: (subject, text body).
    pub fn last_email_to(&self, to: &str) -> Option<(String, String)> {
        self.db()
            .query_row(
                "SELECT subject, text_body FROM email_outbox WHERE to_address = ?1 ORDER BY id DESC LIMIT 1",
                [to],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok()
    }

    /// The token carried by the link in the newest email to `to`.
    pub fn token_from_last_email(&self, to: &str) -> String {
        let (_, text) = self.last_email_to(to).expect("an email was queued");
        token_in(&text)
    }

    /// The first column of every row `sql` selects, in its order.
    pub fn column<T: rusqlite::types::FromSql>(&self, sql: &str) -> Vec<T> {
        let db = self.db();
        let mut stmt = db.prepare(sql).unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    pub fn audit_actions(&self) -> Vec<String> {
        self.column("SELECT action FROM audit_logs ORDER BY id")
    }

    /// Every row of every application table, to show that a request changed nothing.
    pub fn snapshot(&self) -> String {
        let db = self.db();
        let tables: Vec<String> = db
            // The search index (`user_search*`) is derived from users and their profiles.
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'user_search%' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut out = String::new();
        for table in tables {
            // The outbox worker updates delivery columns on its own schedule; the messages are what count.
            let columns = if table == "email_outbox" {
                "id, to_address, subject, text_body"
            } else {
                "*"
            };
            let mut stmt = db
                .prepare(&format!("SELECT {columns} FROM {table} ORDER BY rowid"))
                .unwrap();
            let columns = stmt.column_count();
            let mut rows = stmt.query([]).unwrap();
            out.push_str(&format!("[{table}]\n"));
            while let Some(row) = rows.next().unwrap() {
                for i in 0..columns {
                    match row.get_ref(i).unwrap() {
                        rusqlite::types::ValueRef::Text(t) => {
                            out.push_str(&String::from_utf8_lossy(t))
                        }
                        other => out.push_str(&format!("{other:?}")),
                    }
                    out.push('|');
                }
                out.push('\n');
            }
        }
        out
    }
}

/// Finds `token=...` in a message body.
pub fn token_in(text: &str) -> String {
    let re = regex::Regex::new(r"token=([A-Za-z0-9_-]+)").unwrap();
    re.captures(text).expect("a token link")[1].to_owned()
}

/// Asserts that `ledger::check` finds no balance out of step with the ledger.
pub fn assert_ledger_consistent(app: &TestApp) {
    let (_, mismatches) = ledger::check(&app.db()).unwrap();
    assert!(mismatches.is_empty(), "{mismatches:?}");
}

/// A stored Stripe webhook event, as the worker left it.
#[derive(Debug)]
pub struct WebhookEventRow {
    pub status: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<i64>,
    pub processed_at: Option<i64>,
    pub note: Option<String>,
}
