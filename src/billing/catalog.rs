//! The catalogue's copy in Stripe (`audiostudio stripe sync-catalog`): a Product and a Price for every paid plan and pack.

use serde::Serialize;
use serde_json::json;

use super::store::{self, CatalogItem, CatalogKind};
use super::stripe::{self, Stripe, StripeError};
use crate::platform::audit::{self, Actor, Event};
use crate::platform::clock::Millis;
use crate::platform::db::{Db, DbError};

/// What `sync` did for one plan or pack.
#[derive(Debug, Clone, Serialize)]
pub struct Synced {
    /// `plan` or `pack`.
    pub kind: &'static str,
    pub id: String,
    pub product_id: String,
    pub price_id: String,
    pub created_product: bool,
    pub created_price: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct SyncReport {
    pub synced: Vec<Synced>,
    /// Active plans and packs that already had a Stripe price.
    pub already_synced: Vec<String>,
    /// Free plans: never in Stripe.
    pub free: Vec<String>,
}

/// Creates the Stripe Product and Price of every active plan and pack that lacks a price,
/// and records their ids. Idempotent: what has a price is left alone, and each request
/// carries an Idempotency-Key derived from our id (and the amount, for prices), so a run
/// interrupted between Stripe's answer and our write creates nothing twice when re-run.
/// Free plans are never synced. Stripe is called outside any transaction.
pub async fn sync(db: &Db, stripe: &Stripe, now: Millis) -> anyhow::Result<SyncReport> {
    let mut report = SyncReport::default();
    for item in db
        .read(|c| Ok::<_, DbError>(store::catalog_items(c)?))
        .await?
    {
        if item.kind == CatalogKind::Plan && item.price_cents == 0 {
            report.free.push(item.id);
        } else if item.price_id.is_some() {
            report.already_synced.push(item.id);
        } else {
            report.synced.push(sync_item(db, stripe, item, now).await?);
        }
    }
    Ok(report)
}

/// Creates what one item lacks in Stripe (its product, then its price) and records it.
async fn sync_item(
    db: &Db,
    stripe: &Stripe,
    item: CatalogItem,
    now: Millis,
) -> anyhow::Result<Synced> {
    let (product_id, created_product) = match &item.product_id {
        Some(id) => (id.clone(), false),
        None => (create_product(db, stripe, &item, now).await?, true),
    };
    let price_id = create_price(db, stripe, &item, &product_id, now).await?;
    Ok(Synced {
        kind: item.kind.as_str(),
        id: item.id,
        product_id,
        price_id,
        created_product,
        created_price: true,
    })
}

fn metadata(item: &CatalogItem) -> [(&'static str, &str); 1] {
    [(item.kind.metadata_key(), item.id.as_str())]
}

async fn create_product(
    db: &Db,
    stripe: &Stripe,
    item: &CatalogItem,
    now: Millis,
) -> anyhow::Result<String> {
    let product = stripe
        .create_product(
            &item.name,
            item.description.as_deref(),
            &metadata(item),
            &stripe::idempotency_key(&["product", item.kind.as_str(), &item.id]),
        )
        .await
        .map_err(|e| explain(e, item))?;
    let (kind, id, product_id) = (item.kind, item.id.clone(), product.id.clone());
    db.write(move |tx| Ok::<_, DbError>(store::set_product(tx, kind, &id, &product_id, now)?))
        .await?;
    Ok(product.id)
}

async fn create_price(
    db: &Db,
    stripe: &Stripe,
    item: &CatalogItem,
    product_id: &str,
    now: Millis,
) -> anyhow::Result<String> {
    let amount = item.price_cents.to_string();
    let key = stripe::idempotency_key(&[
        "price",
        item.kind.as_str(),
        &item.id,
        product_id,
        &amount,
        &item.currency,
        item.interval.as_deref().unwrap_or("once"),
    ]);
    let price = stripe
        .create_price(
            product_id,
            item.price_cents,
            &item.currency,
            item.interval.as_deref(),
            &metadata(item),
            &key,
        )
        .await
        .map_err(|e| explain(e, item))?;
    let details = json!({
        "stripe_product_id": product_id,
        "stripe_price_id": price.id,
        "price_cents": item.price_cents,
        "currency": item.currency,
        "interval": item.interval,
    });
    let (kind, id, price_id) = (item.kind, item.id.clone(), price.id.clone());
    db.write(move |tx| {
        store::set_price(tx, kind, &id, &price_id, now)?;
        let event = Event::new("billing.catalog_synced")
            .target(kind.as_str(), &id)
            .details(details);
        audit::record(tx, now, &Actor::cli(), event)?;
        Ok::<_, DbError>(())
    })
    .await?;
    Ok(price.id)
}

fn explain(e: StripeError, item: &CatalogItem) -> anyhow::Error {
    anyhow::anyhow!("{} {}: {e}", item.kind.as_str(), item.id)
}
