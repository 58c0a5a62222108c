//! One appended ledger row: how it is written, read back and shown.

use rusqlite::{Transaction, params};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::LedgerError;
use super::kinds::{Source, TransactionKind};
use crate::platform::clock::{Millis, rfc3339};
use crate::platform::ids::HoldId;

/// One ledger row as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TransactionView {
    pub id: i64,
    /// `grant`, `spend`, `hold`, `hold_release`, `expire` or `clawback`.
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: TransactionKind,
    /// Signed: positive adds tokens, negative removes them.
    pub amount: i64,
    pub balance_after: i64,
    #[schema(value_type = Option<String>)]
    pub source: Option<Source>,
    pub reference: Option<String>,
    pub description: Option<String>,
    pub feature: Option<String>,
    #[schema(value_type = Option<String>)]
    pub hold_id: Option<HoldId>,
    /// The lots drawn from or returned to: `[{"lot": id, "amount": n}]`.
    #[schema(value_type = Vec<Object>)]
    pub lots: Value,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub created_at: String,
}

pub(super) const TRANSACTION_COLUMNS: &str = "id, kind, amount, balance_after, source, reference, description, feature, hold_id, lots, metadata, created_at";

pub(super) fn transaction_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TransactionView> {
    let lots: String = r.get(9)?;
    let metadata: String = r.get(10)?;
    Ok(TransactionView {
        id: r.get(0)?,
        kind: r.get(1)?,
        amount: r.get(2)?,
        balance_after: r.get(3)?,
        source: r.get(4)?,
        reference: r.get(5)?,
        description: r.get(6)?,
        feature: r.get(7)?,
        hold_id: r.get(8)?,
        lots: serde_json::from_str(&lots).unwrap_or(Value::Array(vec![])),
        metadata: serde_json::from_str(&metadata).unwrap_or(Value::Object(Default::default())),
        created_at: rfc3339(r.get(11)?),
    })
}

/// A ledger row to append; the balance after it is read from `users`.
pub(super) struct Entry<'a> {
    pub kind: TransactionKind,
    pub amount: i64,
    pub source: Option<Source>,
    pub reference: Option<&'a str>,
    pub description: Option<&'a str>,
    pub feature: Option<&'a str>,
    pub hold_id: Option<&'a HoldId>,
    pub lots: &'a [(i64, i64)],
    pub metadata: Option<&'a Value>,
}

impl<'a> Entry<'a> {
    /// A row of `kind` moving `amount`, drawn from or returned to `lots`; the rest unset.
    pub fn new(kind: TransactionKind, amount: i64, lots: &'a [(i64, i64)]) -> Entry<'a> {
        Entry {
            kind,
            amount,
            source: None,
            reference: None,
            description: None,
            feature: None,
            hold_id: None,
            lots,
            metadata: None,
        }
    }
}

/// `[{"lot": id, "amount": n}]`, as rows and holds store the lots they touched.
pub(super) fn lots_json(lots: &[(i64, i64)]) -> String {
    Value::Array(
        lots.iter()
            .map(|(lot, amount)| json!({ "lot": lot, "amount": amount }))
            .collect(),
    )
    .to_string()
}

pub(super) fn append(
    tx: &Transaction<'_>,
    user_id: &str,
    entry: &Entry<'_>,
    now: Millis,
) -> Result<TransactionView, LedgerError> {
    let metadata = entry
        .metadata
        .map_or_else(|| "{}".to_owned(), Value::to_string);
    let mut insert = tx.prepare_cached(&format!(
        "INSERT INTO token_transactions
            (user_id, kind, amount, balance_after, source, reference, description, feature, hold_id, lots, metadata, created_at)
         VALUES (?1, ?2, ?3, (SELECT token_balance FROM users WHERE id = ?1), ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         RETURNING {TRANSACTION_COLUMNS}"
    ))?;
    let row = insert.query_row(
        params![
            user_id,
            entry.kind,
            entry.amount,
            entry.source,
            entry.reference,
            entry.description,
            entry.feature,
            entry.hold_id,
            lots_json(entry.lots),
            metadata,
            now
        ],
        transaction_from_row,
    )?;
    Ok(row)
}
