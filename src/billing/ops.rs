//! Billing operations for the CLI and the admin API: plain functions, no clap, no Rocket.

use std::sync::Arc;

use super::events::{BillingEvents, Reconciled};
use super::stripe::Stripe;
use crate::accounts::validate::normalize_email;
use crate::platform::clock::SharedClock;
use crate::platform::config::Settings;
use crate::platform::db::{Db, DbError};
use crate::webhooks::HandlerError;

pub use super::catalog::{SyncReport, sync as sync_catalog};
pub use super::seed::seed_plans;

/// What reconciling one customer did.
pub struct CustomerReconciled {
    pub email: String,
    pub customer: String,
    pub outcome: Result<Reconciled, HandlerError>,
}

/// The customers to reconcile: every user with a Stripe customer, or only `email`'s.
async fn customers(db: &Db, email: Option<&str>) -> Result<Vec<(String, String)>, DbError> {
    let email = email.map(normalize_email);
    db.read(move |c| {
        let mut stmt = c.prepare(
            "SELECT email, stripe_customer_id FROM users
             WHERE stripe_customer_id IS NOT NULL AND (?1 IS NULL OR email = ?1) ORDER BY email",
        )?;
        let rows = stmt
            .query_map([email], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    })
    .await
}

/// Fetches each customer's subscriptions and recent paid invoices from Stripe and repairs
/// local state and missing grants, as the webhooks would have (safe to rerun). `None`
/// when `email` names no user with a Stripe customer.
pub async fn reconcile(
    db: &Db,
    stripe: &Stripe,
    clock: SharedClock,
    settings: &Settings,
    email: Option<&str>,
) -> anyhow::Result<Option<Vec<CustomerReconciled>>> {
    let customers = customers(db, email).await?;
    if email.is_some() && customers.is_empty() {
        return Ok(None);
    }
    let events = BillingEvents::from_parts(db.clone(), clock, settings.clone(), Arc::default());
    let mut out = Vec::with_capacity(customers.len());
    for (email, customer) in customers {
        let outcome = events.reconcile_customer(stripe, &customer).await;
        out.push(CustomerReconciled {
            email,
            customer,
            outcome,
        });
    }
    Ok(Some(out))
}
