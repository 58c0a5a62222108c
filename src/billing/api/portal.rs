//! `POST /api/subscriptions/portal`: a Stripe Billing Portal session for the caller.

use rocket::data::Capped;
use rocket::serde::json::Json;
use rocket::{State, post};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::fields::{fresh_ref, optional_json, redirect, stripe_for};
use crate::auth::AuthUser;
use crate::billing::store;
use crate::billing::stripe;
use crate::http::UserLimit;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::validate::Checks;
use crate::state::App;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalRequest {
    /// Where the portal's "return" link goes (default: `public_base_url`); allowed origins only.
    pub return_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PortalResponse {
    pub url: String,
}

/// A Stripe Billing Portal session, where the caller manages payment methods and invoices.
#[utoipa::path(post, path = "/api/subscriptions/portal", tag = "billing", security(("bearer" = [])), request_body(content = Option<PortalRequest>, description = "Optional"),
    responses(
        (status = 200, description = "Send the user to `url`", body = PortalResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No billing account yet (nothing bought)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A return URL off the allowed origins", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Billing not configured, or Stripe unreachable", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/portal", data = "<body>")]
pub async fn portal(
    app: &State<App>,
    user: AuthUser,
    _limit: UserLimit,
    body: Capped<String>,
) -> ApiResult<Json<PortalResponse>> {
    let body: PortalRequest = optional_json(body)?.unwrap_or_default();
    let stripe = stripe_for(app)?;
    let mut checks = Checks::default();
    let return_ok = checks.field("return_url", redirect(app, body.return_url.as_deref()));
    checks.finish(return_ok)?;
    let owner = user.user_id.clone();
    let customer = app
        .db
        .read(move |c| Ok::<_, ApiError>(store::customer_of(c, &owner)?))
        .await?
        .and_then(|(_, customer)| customer)
        .ok_or_else(|| {
            ApiError::Conflict(
                "you have no billing account yet: subscribe or buy a token pack first".into(),
            )
        })?;
    let return_url = body
        .return_url
        .unwrap_or_else(|| app.settings.server.public_base_url.clone());
    let session = stripe
        .create_portal_session(
            &customer,
            &return_url,
            &stripe::idempotency_key(&["portal", &user.user_id, &fresh_ref()]),
        )
        .await?;
    Ok(Json(PortalResponse { url: session.url }))
}
