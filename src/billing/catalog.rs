//! The catalogue: plans on sale (`GET /api/subscriptions/plans`) and its copy in Stripe (`audiostudio stripe sync-catalog`).

use rocket::serde::json::Json;
use rocket::{State, get};
use rusqlite::{Connection, params};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::store::{self, PlanView};
use super::stripe::{self, Stripe, StripeError};
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::platform::audit::{self, Actor, Event};
use crate::platform::clock::Millis;
use crate::platform::db::{Db, DbError};
use crate::state::App;

#[derive(Debug, Serialize, ToSchema)]
pub struct PlansResponse {
    pub plans: Vec<PlanView>,
}

/// Plans on sale, with prices, monthly tokens and features (no authentication needed).
#[utoipa::path(get, path = "/api/subscriptions/plans", tag = "billing",
    responses(
        (status = 200, description = "Active plans, in catalogue order", body = PlansResponse),
        (status = 400, description = "A malformed request", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/plans")]
pub async fn list_plans(app: &State<App>) -> ApiResult<Json<PlansResponse>> {
    let plans = app
        .db
        .read(|c| Ok::<_, ApiError>(store::active_plans(c)?))
        .await?;
    Ok(Json(PlansResponse { plans }))
}

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

struct Item {
    kind: &'static str,
    id: String,
    name: String,
    description: Option<String>,
    price_cents: i64,
    currency: String,
    /// `month`/`year` for plans; `None` (one-time) for packs.
    interval: Option<String>,
    product_id: Option<String>,
    price_id: Option<String>,
}

fn items(conn: &Connection) -> rusqlite::Result<Vec<Item>> {
    let mut out = Vec::new();
    let mut plans = conn.prepare(
        "SELECT id, name, description, price_cents, currency, billing_interval, stripe_product_id, stripe_price_id
         FROM subscription_plans WHERE active = 1 ORDER BY sort_order, id",
    )?;
    for item in plans.query_map([], |r| {
        Ok(Item {
            kind: "plan",
            id: r.get(0)?,
            name: r.get(1)?,
            description: r.get(2)?,
            price_cents: r.get(3)?,
            currency: r.get(4)?,
            interval: Some(r.get(5)?),
            product_id: r.get(6)?,
            price_id: r.get(7)?,
        })
    })? {
        out.push(item?);
    }
    let mut packs = conn.prepare(
        "SELECT id, name, description, price_cents, currency, stripe_product_id, stripe_price_id
         FROM token_packs WHERE active = 1 ORDER BY sort_order, id",
    )?;
    for item in packs.query_map([], |r| {
        Ok(Item {
            kind: "pack",
            id: r.get(0)?,
            name: r.get(1)?,
            description: r.get(2)?,
            price_cents: r.get(3)?,
            currency: r.get(4)?,
            interval: None,
            product_id: r.get(5)?,
            price_id: r.get(6)?,
        })
    })? {
        out.push(item?);
    }
    Ok(out)
}

fn table(kind: &str) -> &'static str {
    if kind == "plan" {
        "subscription_plans"
    } else {
        "token_packs"
    }
}

/// Creates the Stripe Product and Price of every active plan and pack that lacks a price,
/// and records their ids. Idempotent: what has a price is left alone, and each request
/// carries an Idempotency-Key derived from our id (and the amount, for prices), so a run
/// interrupted between Stripe's answer and our write creates nothing twice when re-run.
/// Free plans are never synced. Stripe is called outside any transaction.
pub async fn sync(db: &Db, stripe: &Stripe, now: Millis) -> anyhow::Result<SyncReport> {
    let mut report = SyncReport::default();
    for item in db.read(|c| Ok::<_, DbError>(items(c)?)).await? {
        if item.kind == "plan" && item.price_cents == 0 {
            report.free.push(item.id);
            continue;
        }
        if item.price_id.is_some() {
            report.already_synced.push(item.id);
            continue;
        }
        let metadata = [(
            if item.kind == "plan" {
                "plan_id"
            } else {
                "pack_id"
            },
            item.id.as_str(),
        )];
        let (product_id, created_product) = match &item.product_id {
            Some(id) => (id.clone(), false),
            None => {
                let product = stripe
                    .create_product(
                        &item.name,
                        item.description.as_deref(),
                        &metadata,
                        &stripe::idempotency_key(&["product", item.kind, &item.id]),
                    )
                    .await
                    .map_err(|e| explain(e, &item))?;
                let (id, product_id, kind) = (item.id.clone(), product.id.clone(), item.kind);
                db.write(move |tx| {
                    tx.execute(
                        &format!(
                            "UPDATE {} SET stripe_product_id = ?2, updated_at = ?3 WHERE id = ?1 AND stripe_product_id IS NULL",
                            table(kind)
                        ),
                        params![id, product_id, now],
                    )?;
                    Ok::<_, DbError>(())
                })
                .await?;
                (product.id, true)
            }
        };
        let amount = item.price_cents.to_string();
        let price = stripe
            .create_price(
                &product_id,
                item.price_cents,
                &item.currency,
                item.interval.as_deref(),
                &metadata,
                &stripe::idempotency_key(&[
                    "price",
                    item.kind,
                    &item.id,
                    &product_id,
                    &amount,
                    &item.currency,
                    item.interval.as_deref().unwrap_or("once"),
                ]),
            )
            .await
            .map_err(|e| explain(e, &item))?;
        let details = json!({
            "stripe_product_id": product_id,
            "stripe_price_id": price.id,
            "price_cents": item.price_cents,
            "currency": item.currency,
            "interval": item.interval,
        });
        let (id, price_id, kind) = (item.id.clone(), price.id.clone(), item.kind);
        db.write(move |tx| {
            tx.execute(
                &format!(
                    "UPDATE {} SET stripe_price_id = ?2, updated_at = ?3 WHERE id = ?1 AND stripe_price_id IS NULL",
                    table(kind)
                ),
                params![id, price_id, now],
            )?;
            let event = Event::new("billing.catalog_synced")
                .target(kind, &id)
                .details(details);
            audit::record(tx, now, &Actor::cli(), event)?;
            Ok::<_, DbError>(())
        })
        .await?;
        report.synced.push(Synced {
            kind: item.kind,
            id: item.id,
            product_id,
            price_id: price.id,
            created_product,
            created_price: true,
        });
    }
    Ok(report)
}

fn explain(e: StripeError, item: &Item) -> anyhow::Error {
    anyhow::anyhow!("{} {}: {e}", item.kind, item.id)
}
