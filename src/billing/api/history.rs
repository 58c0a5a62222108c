//! `GET /api/subscriptions/history`: the caller's subscriptions, plan changes and invoices.

use rocket::serde::json::Json;
use rocket::{State, get};
use serde::Serialize;
use utoipa::ToSchema;

use super::fields::{secs, stripe_for, time};
use crate::auth::AuthUser;
use crate::billing::store::{self, ChangeView, SubscriptionRow};
use crate::billing::stripe;
use crate::http::UserLimit;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::platform::clock::rfc3339;
use crate::platform::ids::PlanId;
use crate::state::App;

/// One subscription of the caller, as we recorded it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PeriodView {
    pub subscription_id: String,
    #[schema(value_type = String)]
    pub plan_id: PlanId,
    pub plan_name: Option<String>,
    pub status: String,
    pub current_period_start: Option<String>,
    pub current_period_end: Option<String>,
    pub cancel_at_period_end: bool,
    pub canceled_at: Option<String>,
    pub started_at: String,
}

/// An invoice, as Stripe has it now.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceView {
    pub id: String,
    pub number: Option<String>,
    /// `draft`, `open`, `paid`, `uncollectible` or `void`.
    pub status: Option<String>,
    /// In the smallest currency unit.
    pub amount_due: i64,
    pub amount_paid: i64,
    pub currency: Option<String>,
    /// Stripe's page for the invoice (view, pay, download).
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
    /// `subscription_create`, `subscription_cycle`, `subscription_update`, ...
    pub billing_reason: Option<String>,
    pub period_start: Option<String>,
    pub period_end: Option<String>,
    pub created_at: Option<String>,
}

impl PeriodView {
    fn of(row: SubscriptionRow, plan_name: Option<String>) -> PeriodView {
        PeriodView {
            subscription_id: row.id,
            plan_id: row.plan_id,
            plan_name,
            status: row.status.to_string(),
            current_period_start: time(row.current_period_start),
            current_period_end: time(row.current_period_end),
            cancel_at_period_end: row.cancel_at_period_end,
            canceled_at: time(row.canceled_at),
            started_at: rfc3339(row.created_at),
        }
    }
}

fn invoice_view(invoice: stripe::Invoice) -> InvoiceView {
    // An invoice's own period is the one before it; its lines carry the period billed.
    let line = invoice.lines.as_ref().and_then(|l| {
        l.data
            .iter()
            .find(|line| !line.proration)
            .or(l.data.first())
    });
    let (start, end) = match line {
        Some(line) if line.period.start.is_some() => (line.period.start, line.period.end),
        _ => (invoice.period_start, invoice.period_end),
    };
    InvoiceView {
        id: invoice.id,
        number: invoice.number,
        status: invoice.status,
        amount_due: invoice.amount_due,
        amount_paid: invoice.amount_paid,
        currency: invoice.currency,
        hosted_invoice_url: invoice.hosted_invoice_url,
        invoice_pdf: invoice.invoice_pdf,
        billing_reason: invoice.billing_reason,
        period_start: secs(start),
        period_end: secs(end),
        created_at: secs(invoice.created),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryResponse {
    /// The caller's subscriptions, newest first.
    pub subscriptions: Vec<PeriodView>,
    /// Checkouts started, plan changes, cancellations and resumptions, newest first.
    pub changes: Vec<ChangeView>,
    /// The caller's invoices from Stripe, newest first.
    pub invoices: Vec<InvoiceView>,
}

/// The caller's subscriptions, plan changes and invoices (each list newest first, at most `limit`).
#[utoipa::path(get, path = "/api/subscriptions/history", tag = "billing", security(("bearer" = [])),
    params(("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "1 to 100 per list, default 20")),
    responses(
        (status = 200, description = "History", body = HistoryResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Stripe failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Billing not configured, or Stripe unreachable", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/history?<limit>")]
pub async fn history(
    app: &State<App>,
    user: AuthUser,
    _limit: UserLimit,
    limit: Option<&str>,
) -> ApiResult<Json<HistoryResponse>> {
    let limit = crate::http::pagination::page_limit(limit, 20, 100)?;
    let stripe = stripe_for(app)?;
    let owner = user.user_id.clone();
    let (rows, changes, customer) = app
        .db
        .read(move |c| {
            let rows = store::subscriptions_of(c, &owner, limit)?;
            let mut named = Vec::with_capacity(rows.len());
            for row in rows {
                let name = store::plan(c, &row.plan_id)?.map(|p| p.view.name);
                named.push((row, name));
            }
            Ok::<_, ApiError>((
                named,
                store::changes_of(c, &owner, limit)?,
                store::customer_of(c, &owner)?.and_then(|(_, customer)| customer),
            ))
        })
        .await?;
    let invoices = match customer {
        Some(customer) => stripe
            .list_invoices(&customer, limit)
            .await?
            .data
            .into_iter()
            .map(invoice_view)
            .collect(),
        None => Vec::new(),
    };
    let subscriptions = rows
        .into_iter()
        .map(|(row, plan_name)| PeriodView::of(row, plan_name))
        .collect();
    Ok(Json(HistoryResponse {
        subscriptions,
        changes,
        invoices,
    }))
}
