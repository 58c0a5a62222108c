//! `billing_checkout_sessions` (the sessions we created) and `user_token_packs` (pack purchases, pending until paid).

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::catalog::Pack;
use super::secs_to_ms;
use crate::billing::status::CheckoutStatus;
use crate::billing::stripe;
use crate::platform::clock::Millis;
use crate::platform::ids::{PackId, PlanId, UserId};
use crate::tokens::ledger::Source;

/// A Checkout Session we created.
#[derive(Debug, Clone)]
pub struct CheckoutRow {
    pub id: String,
    pub user_id: UserId,
    pub mode: String,
    pub plan_id: Option<PlanId>,
    pub pack_id: Option<PackId>,
    pub status: CheckoutStatus,
}

pub struct NewCheckout<'a> {
    pub session: &'a stripe::CheckoutSession,
    pub user_id: &'a UserId,
    pub mode: stripe::CheckoutMode,
    pub plan_id: Option<&'a PlanId>,
    pub pack_id: Option<&'a PackId>,
    pub customer_id: &'a str,
}

/// Records a session; false when it was recorded already (a replayed request).
pub fn insert_checkout(
    tx: &Transaction<'_>,
    new: &NewCheckout<'_>,
    now: Millis,
) -> rusqlite::Result<bool> {
    let inserted = tx.execute(
        "INSERT INTO billing_checkout_sessions (id, user_id, mode, plan_id, pack_id, status, payment_status, stripe_customer_id, url, expires_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11) ON CONFLICT (id) DO NOTHING",
        params![
            new.session.id,
            new.user_id,
            new.mode.as_str(),
            new.plan_id,
            new.pack_id,
            CheckoutStatus::from_stripe(new.session.status.as_deref()),
            new.session.payment_status,
            new.customer_id,
            new.session.url,
            secs_to_ms(new.session.expires_at),
            now
        ],
    )?;
    Ok(inserted == 1)
}

/// A session, only if `user_id` started it.
pub fn checkout_of(
    conn: &Connection,
    user_id: &UserId,
    id: &str,
) -> rusqlite::Result<Option<CheckoutRow>> {
    conn.query_row(
        "SELECT id, user_id, mode, plan_id, pack_id, status FROM billing_checkout_sessions WHERE id = ?1 AND user_id = ?2",
        params![id, user_id],
        |r| {
            Ok(CheckoutRow {
                id: r.get(0)?,
                user_id: r.get(1)?,
                mode: r.get(2)?,
                plan_id: r.get(3)?,
                pack_id: r.get(4)?,
                status: r.get(5)?,
            })
        },
    )
    .optional()
}

/// Notes the latest status Stripe gave for a session.
pub fn update_checkout(
    tx: &Transaction<'_>,
    session: &stripe::CheckoutSession,
    now: Millis,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE billing_checkout_sessions SET status = ?2, payment_status = COALESCE(?3, payment_status), updated_at = ?4 WHERE id = ?1",
        params![
            session.id,
            CheckoutStatus::from_stripe(session.status.as_deref()),
            session.payment_status,
            now
        ],
    )?;
    Ok(())
}

/// A pending token-pack purchase, keyed by its Checkout Session; false if it exists already.
pub fn insert_pending_pack(
    tx: &Transaction<'_>,
    user_id: &UserId,
    pack: &Pack,
    session_id: &str,
    now: Millis,
) -> rusqlite::Result<bool> {
    let inserted = tx.execute(
        "INSERT INTO user_token_packs (id, user_id, pack_id, tokens, amount_cents, currency, status, stripe_checkout_session_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8) ON CONFLICT (stripe_checkout_session_id) DO NOTHING",
        params![
            uuid::Uuid::now_v7().to_string(),
            user_id,
            pack.id,
            pack.tokens,
            pack.price_cents,
            pack.currency,
            session_id,
            now
        ],
    )?;
    Ok(inserted == 1)
}

/// The user a pack payment granted tokens to already, if it did (its other event came first).
pub fn purchase_grantee(conn: &Connection, payment: &str) -> rusqlite::Result<Option<UserId>> {
    conn.query_row(
        "SELECT user_id FROM token_lots WHERE source = 'purchase' AND source_ref = ?1",
        [payment],
        |r| r.get(0),
    )
    .optional()
}

/// The tokens promised when the user's checkout for this session or payment started.
pub fn promised_tokens(
    conn: &Connection,
    user_id: &UserId,
    session: Option<&str>,
    payment: &str,
) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT tokens FROM user_token_packs
         WHERE user_id = ?1 AND (stripe_checkout_session_id = ?2 OR stripe_payment_intent_id = ?3)",
        params![user_id, session, payment],
        |r| r.get(0),
    )
    .optional()
}

/// Marks the pending purchase of `payment` (started as Checkout `session`) completed.
pub fn complete_pack(
    tx: &Transaction<'_>,
    session: Option<&str>,
    payment: &str,
    now: Millis,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE user_token_packs SET status = 'completed', stripe_payment_intent_id = COALESCE(stripe_payment_intent_id, ?2),
                completed_at = COALESCE(completed_at, ?3)
         WHERE (stripe_checkout_session_id = ?1 OR stripe_payment_intent_id = ?2) AND status = 'pending'",
        params![session, payment, now],
    )?;
    Ok(())
}

/// Marks a fully refunded pack purchase `refunded`.
pub fn refund_pack(tx: &Transaction<'_>, payment: &str, user_id: &UserId) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE user_token_packs SET status = 'refunded' WHERE stripe_payment_intent_id = ?1 AND user_id = ?2",
        params![payment, user_id],
    )?;
    Ok(())
}

/// A lot some Stripe payment minted.
pub struct MintedLot {
    pub id: i64,
    pub user_id: UserId,
    pub amount: i64,
    /// `purchase` or `subscription`.
    pub source: String,
}

impl MintedLot {
    pub fn is_purchase(&self) -> bool {
        self.source == Source::Purchase.as_str()
    }
}

/// The lot a charge paid for: a pack purchase (keyed by its payment) or a subscription
/// invoice.
pub fn minted_lot(
    conn: &Connection,
    payment: &str,
    invoice: Option<&str>,
) -> rusqlite::Result<Option<MintedLot>> {
    conn.query_row(
        "SELECT id, user_id, amount, source FROM token_lots
         WHERE (source = 'purchase' AND source_ref = ?1) OR (source = 'subscription' AND source_ref = ?2)
         ORDER BY id LIMIT 1",
        params![payment, invoice],
        |r| {
            Ok(MintedLot {
                id: r.get(0)?,
                user_id: r.get(1)?,
                amount: r.get(2)?,
                source: r.get(3)?,
            })
        },
    )
    .optional()
}

/// Notes that the user was told about this invoice's failed payment; false when they
/// were already (one email per invoice, however many deliveries it brings).
pub fn note_payment_notice(
    tx: &Transaction<'_>,
    invoice_id: &str,
    now: Millis,
) -> rusqlite::Result<bool> {
    let inserted = tx.execute(
        "INSERT INTO settings (key, value, updated_at) VALUES (?1, 'notified', ?2) ON CONFLICT (key) DO NOTHING",
        params![format!("billing.notice.invoice:{invoice_id}"), now],
    )?;
    Ok(inserted == 1)
}
