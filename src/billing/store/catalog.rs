//! Plans and token packs (`subscription_plans`, `token_packs`) as billing reads them.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::platform::clock::Millis;
use crate::platform::ids::{PackId, PlanId};

/// A subscription plan as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlanView {
    #[schema(value_type = String)]
    pub id: PlanId,
    pub name: String,
    pub description: Option<String>,
    /// In the smallest currency unit (cents); 0 for the free plan.
    pub price_cents: i64,
    pub currency: String,
    /// `month` or `year`.
    pub interval: String,
    /// Tokens granted for each month of the plan.
    pub monthly_tokens: i64,
    pub features: Vec<String>,
    /// The plan costs nothing and needs no checkout.
    pub free: bool,
    /// A checkout can be started for it (it has a Stripe price), or it is free.
    pub available: bool,
}

/// A plan with what billing needs beyond the view.
#[derive(Debug, Clone)]
pub struct Plan {
    pub view: PlanView,
    pub active: bool,
    pub stripe_price_id: Option<String>,
}

const PLAN_COLUMNS: &str = "id, name, description, price_cents, currency, billing_interval, monthly_tokens, features, active, stripe_price_id";

fn plan_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Plan> {
    let features: String = r.get(7)?;
    let price_cents: i64 = r.get(3)?;
    let stripe_price_id: Option<String> = r.get(9)?;
    let features = match serde_json::from_str::<Value>(&features) {
        Ok(Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    Ok(Plan {
        view: PlanView {
            id: r.get(0)?,
            name: r.get(1)?,
            description: r.get(2)?,
            price_cents,
            currency: r.get(4)?,
            interval: r.get(5)?,
            monthly_tokens: r.get(6)?,
            features,
            free: price_cents == 0,
            available: price_cents == 0 || stripe_price_id.is_some(),
        },
        active: r.get::<_, i64>(8)? == 1,
        stripe_price_id,
    })
}

/// Active plans, in catalogue order.
pub fn active_plans(conn: &Connection) -> rusqlite::Result<Vec<PlanView>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PLAN_COLUMNS} FROM subscription_plans WHERE active = 1 ORDER BY sort_order, price_cents, id"
    ))?;
    stmt.query_map([], plan_from_row)?
        .map(|p| p.map(|p| p.view))
        .collect()
}

/// Any plan by id, active or not.
pub fn plan(conn: &Connection, id: &PlanId) -> rusqlite::Result<Option<Plan>> {
    conn.query_row(
        &format!("SELECT {PLAN_COLUMNS} FROM subscription_plans WHERE id = ?1"),
        [id],
        plan_from_row,
    )
    .optional()
}

/// The plan sold at a Stripe price.
pub fn plan_by_price(conn: &Connection, price_id: &str) -> rusqlite::Result<Option<Plan>> {
    conn.query_row(
        &format!("SELECT {PLAN_COLUMNS} FROM subscription_plans WHERE stripe_price_id = ?1"),
        [price_id],
        plan_from_row,
    )
    .optional()
}

/// The plan everyone has without a subscription: the first active plan that costs nothing.
pub fn free_plan(conn: &Connection) -> rusqlite::Result<Option<PlanView>> {
    conn.query_row(
        &format!(
            "SELECT {PLAN_COLUMNS} FROM subscription_plans WHERE active = 1 AND price_cents = 0 ORDER BY sort_order, id LIMIT 1"
        ),
        [],
        plan_from_row,
    )
    .optional()
    .map(|p| p.map(|p| p.view))
}

/// A token pack with its Stripe price.
#[derive(Debug, Clone)]
pub struct Pack {
    pub id: PackId,
    pub name: String,
    pub tokens: i64,
    pub price_cents: i64,
    pub currency: String,
    pub active: bool,
    pub stripe_price_id: Option<String>,
}

pub fn pack(conn: &Connection, id: &PackId) -> rusqlite::Result<Option<Pack>> {
    conn.query_row(
        "SELECT id, name, tokens, price_cents, currency, active, stripe_price_id FROM token_packs WHERE id = ?1",
        [id],
        |r| {
            Ok(Pack {
                id: r.get(0)?,
                name: r.get(1)?,
                tokens: r.get(2)?,
                price_cents: r.get(3)?,
                currency: r.get(4)?,
                active: r.get::<_, i64>(5)? == 1,
                stripe_price_id: r.get(6)?,
            })
        },
    )
    .optional()
}

/// Which catalogue table an item comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogKind {
    Plan,
    Pack,
}

impl CatalogKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CatalogKind::Plan => "plan",
            CatalogKind::Pack => "pack",
        }
    }

    fn table(self) -> &'static str {
        match self {
            CatalogKind::Plan => "subscription_plans",
            CatalogKind::Pack => "token_packs",
        }
    }

    /// The metadata key carrying our id on its Stripe objects.
    pub fn metadata_key(self) -> &'static str {
        match self {
            CatalogKind::Plan => "plan_id",
            CatalogKind::Pack => "pack_id",
        }
    }
}

/// An active plan or pack, with its Stripe ids if it has them.
pub struct CatalogItem {
    pub kind: CatalogKind,
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub price_cents: i64,
    pub currency: String,
    /// `month`/`year` for plans; `None` (one-time) for packs.
    pub interval: Option<String>,
    pub product_id: Option<String>,
    pub price_id: Option<String>,
}

/// Every active plan, then every active pack, in catalogue order.
pub fn catalog_items(conn: &Connection) -> rusqlite::Result<Vec<CatalogItem>> {
    let mut out = Vec::new();
    let mut plans = conn.prepare(
        "SELECT id, name, description, price_cents, currency, billing_interval, stripe_product_id, stripe_price_id
         FROM subscription_plans WHERE active = 1 ORDER BY sort_order, id",
    )?;
    for item in plans.query_map([], |r| {
        Ok(CatalogItem {
            kind: CatalogKind::Plan,
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
        Ok(CatalogItem {
            kind: CatalogKind::Pack,
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

/// Records an item's Stripe product, unless one is recorded already.
pub fn set_product(
    tx: &Transaction<'_>,
    kind: CatalogKind,
    id: &str,
    product_id: &str,
    now: Millis,
) -> rusqlite::Result<()> {
    tx.execute(
        &format!(
            "UPDATE {} SET stripe_product_id = ?2, updated_at = ?3 WHERE id = ?1 AND stripe_product_id IS NULL",
            kind.table()
        ),
        params![id, product_id, now],
    )?;
    Ok(())
}

/// Records an item's Stripe price, unless one is recorded already.
pub fn set_price(
    tx: &Transaction<'_>,
    kind: CatalogKind,
    id: &str,
    price_id: &str,
    now: Millis,
) -> rusqlite::Result<()> {
    tx.execute(
        &format!(
            "UPDATE {} SET stripe_price_id = ?2, updated_at = ?3 WHERE id = ?1 AND stripe_price_id IS NULL",
            kind.table()
        ),
        params![id, price_id, now],
    )?;
    Ok(())
}
