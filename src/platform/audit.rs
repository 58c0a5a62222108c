//! The hash-chained audit log: who did what to what, written in the same transaction as the action.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::platform::client::ClientInfo;
use crate::platform::clock::Millis;

/// The hash before the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who acted and from where.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub user_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Actor {
    pub fn user(user_id: &str, client: &ClientInfo) -> Actor {
        Actor {
            user_id: Some(user_id.to_owned()),
            ..Actor::anonymous(client)
        }
    }

    pub fn anonymous(client: &ClientInfo) -> Actor {
        Actor {
            user_id: None,
            ip: client.ip.map(|ip| ip.to_string()),
            user_agent: client.user_agent.clone(),
        }
    }

    /// The operator at the command line.
    pub fn cli() -> Actor {
        Actor {
            user_id: None,
            ip: None,
            user_agent: Some("audiostudio-cli".into()),
        }
    }
}

/// One audit event, before it is chained.
pub struct Event<'a> {
    pub action: &'a str,
    pub target_type: Option<&'a str>,
    pub target_id: Option<&'a str>,
    pub details: Value,
}

impl<'a> Event<'a> {
    pub fn new(action: &'a str) -> Self {
        Event {
            action,
            target_type: None,
            target_id: None,
            details: Value::Object(Default::default()),
        }
    }

    pub fn target(mut self, kind: &'a str, id: &'a str) -> Self {
        self.target_type = Some(kind);
        self.target_id = Some(id);
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

struct Row {
    id: i64,
    occurred_at: Millis,
    actor_user_id: Option<String>,
    action: String,
    target_type: Option<String>,
    target_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    details: String,
    prev_hash: String,
    hash: String,
}

fn row_hash(prev_hash: &str, row: &Row) -> String {
    // Length-prefixed fields, so no two different rows can serialise alike.
    let mut h = Sha256::new();
    let mut field = |value: Option<&str>| match value {
        None => h.update(b"\xff"),
        Some(v) => {
            h.update((v.len() as u64).to_be_bytes());
            h.update(v.as_bytes());
        }
    };
    field(Some(prev_hash));
    field(Some(&row.id.to_string()));
    field(Some(&row.occurred_at.to_string()));
    field(row.actor_user_id.as_deref());
    field(Some(&row.action));
    field(row.target_type.as_deref());
    field(row.target_id.as_deref());
    field(row.ip.as_deref());
    field(row.user_agent.as_deref());
    field(Some(&row.details));
    hex::encode(h.finalize())
}

/// Appends one event to the chain inside the caller's transaction.
pub fn record(
    tx: &Transaction<'_>,
    now: Millis,
    actor: &Actor,
    event: Event<'_>,
) -> rusqlite::Result<()> {
    let last: Option<(i64, String)> = tx
        .query_row(
            "SELECT id, hash FROM audit_logs ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (last_id, prev_hash) = last.unwrap_or((0, GENESIS.to_owned()));
    let mut row = Row {
        id: last_id + 1,
        occurred_at: now,
        actor_user_id: actor.user_id.clone(),
        action: event.action.to_owned(),
        target_type: event.target_type.map(str::to_owned),
        target_id: event.target_id.map(str::to_owned),
        ip: actor.ip.clone(),
        user_agent: actor.user_agent.as_deref().map(|ua| truncate(ua, 512)),
        details: event.details.to_string(),
        prev_hash: prev_hash.clone(),
        hash: String::new(),
    };
    row.hash = row_hash(&prev_hash, &row);
    tx.execute(
        "INSERT INTO audit_logs (id, occurred_at, actor_user_id, action, target_type, target_id, ip, user_agent, details, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            row.id, row.occurred_at, row.actor_user_id, row.action, row.target_type, row.target_id,
            row.ip, row.user_agent, row.details, row.prev_hash, row.hash
        ],
    )?;
    Ok(())
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The newest row of the chain: its id and hash. Kept outside the database after a
/// successful verify, it lets the next verify notice the newest rows being removed (a
/// shorter chain is still a valid chain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub id: i64,
    pub hash: String,
}

/// The outcome of walking the whole chain.
#[derive(Debug, PartialEq, Eq)]
pub enum Verification {
    /// Every link holds, and the chain reaches the kept head; `head` is its newest row.
    Intact {
        rows: u64,
        head: Option<Head>,
    },
    Broken {
        row_id: i64,
        reason: String,
    },
}

/// What a walk ending at `last` (the newest row seen) says about the `kept` head.
fn check_end(rows: u64, last: Option<Head>, kept: Option<&Head>) -> Verification {
    match (kept, &last) {
        (Some(kept), _) if last.as_ref().is_none_or(|l| l.id < kept.id) => {
            let end = last.as_ref().map_or(0, |l| l.id);
            Verification::Broken {
                row_id: kept.id,
                reason: format!(
                    "the log ends at row {end}, before row {} (the head at the last verify): rows {}..={} were removed",
                    kept.id,
                    end + 1,
                    kept.id
                ),
            }
        }
        _ => Verification::Intact { rows, head: last },
    }
}

/// Recomputes every link, oldest first, and stops at the first broken one. `kept` is the
/// head recorded at the last successful verify: the chain must still contain it, unchanged.
pub fn verify(conn: &Connection, kept: Option<&Head>) -> rusqlite::Result<Verification> {
    let mut stmt = conn.prepare(
        "SELECT id, occurred_at, actor_user_id, action, target_type, target_id, ip, user_agent, details, prev_hash, hash
         FROM audit_logs ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    let mut expected_prev = GENESIS.to_owned();
    let mut expected_id = 1;
    let mut count = 0;
    let mut last = None;
    while let Some(r) = rows.next()? {
        let row = Row {
            id: r.get(0)?,
            occurred_at: r.get(1)?,
            actor_user_id: r.get(2)?,
            action: r.get(3)?,
            target_type: r.get(4)?,
            target_id: r.get(5)?,
            ip: r.get(6)?,
            user_agent: r.get(7)?,
            details: r.get(8)?,
            prev_hash: r.get(9)?,
            hash: r.get(10)?,
        };
        if row.id != expected_id {
            return Ok(Verification::Broken {
                row_id: row.id,
                reason: format!("row {expected_id} is missing"),
            });
        }
        if row.prev_hash != expected_prev {
            return Ok(Verification::Broken {
                row_id: row.id,
                reason: "prev_hash does not match the previous row's hash".into(),
            });
        }
        if row_hash(&expected_prev, &row) != row.hash {
            return Ok(Verification::Broken {
                row_id: row.id,
                reason: "the row's contents do not match its hash (altered)".into(),
            });
        }
        if let Some(kept) = kept.filter(|k| k.id == row.id && k.hash != row.hash) {
            return Ok(Verification::Broken {
                row_id: kept.id,
                reason: "the row's hash differs from the head kept at the last verify (the log was rewritten)".into(),
            });
        }
        last = Some(Head {
            id: row.id,
            hash: row.hash.clone(),
        });
        expected_prev = row.hash;
        expected_id += 1;
        count += 1;
    }
    Ok(check_end(count, last, kept))
}
