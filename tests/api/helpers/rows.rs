//! Readers of what the application stored, for assertions.

use super::TestApp;

impl TestApp {
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

    pub fn audit_actions(&self) -> Vec<String> {
        let db = self.db();
        let mut stmt = db
            .prepare("SELECT action FROM audit_logs ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// Every row of every application table, to show that a request changed nothing.
    pub fn snapshot(&self) -> String {
        let db = self.db();
        let tables: Vec<String> = db
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
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
