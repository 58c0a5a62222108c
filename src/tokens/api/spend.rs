//! `POST /api/tokens/use`: spend tokens on a job, once per `Idempotency-Key`.

use rocket::http::Status;
use rocket::{State, post};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::checks;
use crate::auth::SessionToken;
use crate::http::UserLimit;
use crate::http::error::{ApiResult, Problem};
use crate::http::idempotency::{IdempotencyHeader, Idempotent, Stored};
use crate::http::validate::Checks;
use crate::http::{JsonBody, parse_body};
use crate::state::App;
use crate::tokens::ledger::{self, Debit, TransactionView};
use crate::tokens::store;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UseRequest {
    #[schema(minimum = 1, maximum = 1_000_000_000, example = 14)]
    pub amount: i64,
    /// One of the configured features (`token_features`).
    #[schema(example = "text_to_speech")]
    pub feature: String,
    #[schema(max_length = 500, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub description: Option<String>,
    /// A JSON object of at most 4 KiB, kept on the ledger row.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UseResponse {
    pub transaction: TransactionView,
    pub balance: i64,
}

/// Spend tokens on a job. Retries with the same `Idempotency-Key` spend once.
#[utoipa::path(post, path = "/api/tokens/use", tag = "tokens", security(("bearer" = [])), request_body = UseRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses(
        (status = 200, description = "Spent", body = UseResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 402, description = "Not enough tokens; the detail states the balance", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or the key was used with another request", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/use", data = "<body>")]
pub async fn use_tokens(
    app: &State<App>,
    token: SessionToken,
    _limit: UserLimit,
    key: IdempotencyHeader,
    body: JsonBody<'_, UseRequest>,
) -> ApiResult<Stored> {
    let body = parse_body(body)?;
    let now = app.clock.now_ms();
    let idem = match Idempotent::begin(&app.db, &token, key, now, "use", &body).await? {
        Ok(idem) => idem,
        Err(replayed) => return Ok(replayed),
    };
    let mut checks = Checks::default();
    let amount = checks.field("amount", checks::amount(body.amount));
    let feature = checks.field(
        "feature",
        checks::feature(&app.settings.tokens.token_features, &body.feature),
    );
    let description = checks.field(
        "description",
        checks::optional_line(body.description.as_deref(), 500),
    );
    let metadata = checks.field("metadata", checks::metadata(body.metadata.as_ref()));
    let (amount, feature, description, metadata) =
        checks.finish((amount, feature, description, metadata))?;
    app.db
        .write(move |tx| {
            // The session is checked in the spend's own transaction: one hop, not two.
            let user = token.check(tx, now)?;
            idem.run(tx, now, |tx| {
                let debit = Debit {
                    user_id: &user.user_id,
                    amount,
                    feature: &feature,
                    description: description.as_deref(),
                    metadata: metadata.as_ref(),
                };
                let transaction = ledger::debit(tx, &debit, now)?;
                store::record_usage(tx, &user.user_id, &feature, amount, now)?;
                // The spend's row was the last change to the balance: no second read.
                Ok(Stored::json(
                    Status::Ok,
                    &UseResponse {
                        balance: transaction.balance_after,
                        transaction,
                    },
                ))
            })
        })
        .await
}
