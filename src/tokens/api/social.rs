//! `/api/tokens/social`: the engagement tasks on offer, and claiming one's reward.

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{State, get, post};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::http::UserLimit;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::idempotency::{IdempotencyHeader, Idempotent, Stored};
use crate::http::validate::{Checks, http_url};
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::Actor;
use crate::state::App;
use crate::tokens::ledger;
use crate::tokens::social::claims::{self, RewardRules};
use crate::tokens::social::store::{self, NewClaim};
use crate::tokens::social::{ClaimView, MAX_ID, TaskView};

const MAX_HANDLE: usize = 64;
const MAX_PROOF_URL: usize = 2048;

#[derive(Debug, Serialize, ToSchema)]
pub struct TasksResponse {
    pub tasks: Vec<TaskView>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    #[schema(pattern = "^[ -~]{1,128}$", example = "follow_x")]
    pub task_id: String,
    /// An http(s) link to the follow, share or post.
    #[schema(
        max_length = 2048,
        pattern = "^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,4})?(?:/[A-Za-z0-9._~/-]*)?(?:\\?[A-Za-z0-9._~=&-]*)?$",
        example = "https://x.com/ada/status/1"
    )]
    pub proof_url: String,
    /// The caller's handle on the platform (`@` optional); one account per handle and task.
    #[schema(pattern = "^@?[A-Za-z0-9_.-]{1,64}$", example = "@ada")]
    pub handle: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimResponse {
    pub claim: ClaimView,
    /// The caller's balance after the claim (an auto-approved reward is already in it).
    pub balance: i64,
}

/// The engagement tasks on offer, with the caller's state for each.
#[utoipa::path(get, path = "/api/tokens/social", tag = "tokens", security(("bearer" = [])),
    responses(
        (status = 200, description = "Active tasks in display order", body = TasksResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/social")]
pub async fn list_tasks(app: &State<App>, user: AuthUser) -> ApiResult<Json<TasksResponse>> {
    let tasks = app
        .db
        .read(move |c| Ok::<_, ApiError>(store::tasks_for(c, &user.user_id)?))
        .await?;
    Ok(Json(TasksResponse { tasks }))
}

/// The handle as stored: without its `@`, or why it is refused.
fn normalize_handle(handle: &str) -> Result<String, String> {
    let bare = handle.strip_prefix('@').unwrap_or(handle);
    let valid = !bare.is_empty()
        && bare.len() <= MAX_HANDLE
        && bare
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(bare.to_owned())
    } else {
        Err(format!(
            "must be 1 to {MAX_HANDLE} letters, digits, '_', '.' or '-', optionally after one '@'"
        ))
    }
}

fn task_id(id: &str) -> Result<String, String> {
    if id.is_empty() {
        Err("is required".into())
    } else if id.len() > MAX_ID || id.chars().any(char::is_control) {
        Err("is not a task id".into())
    } else {
        Ok(id.to_owned())
    }
}

/// Claim a task's reward (accounts with a verified email). Auto-approved tasks pay at
/// once; the others wait for review.
#[utoipa::path(post, path = "/api/tokens/social", tag = "tokens", security(("bearer" = [])), request_body = ClaimRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses(
        (status = 201, description = "Claimed: approved and paid, or pending review", body = ClaimResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller's email is not verified (`email-not-verified`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such active task", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already claimed by the caller (a claim pending or approved; a rejected claim may be followed by a new one, 3 claims per task in all), or the handle was used by another account", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or the key was used with another request", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the daily reward cap of the caller or of the client address; Retry-After is the next UTC midnight", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/social", data = "<body>")]
pub async fn claim_task(
    app: &State<App>,
    user: AuthUser,
    _limit: UserLimit,
    client: ClientInfo,
    key: IdempotencyHeader,
    body: JsonBody<'_, ClaimRequest>,
) -> ApiResult<Stored> {
    let body = parse_body(body)?;
    let now = app.clock.now_ms();
    let idem = match Idempotent::begin(&app.db, &user, key, now, "social", &body).await? {
        Ok(idem) => idem,
        Err(replayed) => return Ok(replayed),
    };
    let mut checks = Checks::default();
    let task_id = checks.field("task_id", task_id(&body.task_id));
    let proof_url = checks.field(
        "proof_url",
        http_url(&body.proof_url, MAX_PROOF_URL).map(|()| body.proof_url.clone()),
    );
    let handle = checks.field(
        "handle",
        body.handle.as_deref().map(normalize_handle).transpose(),
    );
    let (task_id, proof_url, handle) = checks.finish((task_id, proof_url, handle))?;
    let tokens = &app.settings.tokens;
    let rules = RewardRules {
        require_verified_email: tokens.social_rewards_require_verified_email,
        daily_cap: tokens.social_daily_reward_cap,
        daily_cap_per_ip: tokens.social_daily_reward_cap_per_ip,
    };
    let client_ip = client.ip_key();
    let actor = Actor::user(&user.user_id, &client);
    app.db
        .write(move |tx| {
            idem.run(tx, now, |tx| {
                let claim = NewClaim {
                    user_id: &user.user_id,
                    task_id: &task_id,
                    proof_url: &proof_url,
                    handle: handle.as_deref(),
                    client_ip: &client_ip,
                };
                let claim = claims::create_claim(tx, &claim, &rules, &actor, now)?;
                let balance = ledger::available(tx, &user.user_id)?;
                Ok(Stored::json(
                    Status::Created,
                    &ClaimResponse { claim, balance },
                ))
            })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles() {
        assert_eq!(normalize_handle("@ada_l.ove-1").unwrap(), "ada_l.ove-1");
        assert_eq!(normalize_handle("Ada").unwrap(), "Ada");
        assert!(normalize_handle(&"a".repeat(64)).is_ok());
        for bad in [
            "",
            "@",
            "@@ada",
            "ada lovelace",
            "ädä",
            "ada/x",
            &"a".repeat(65),
        ] {
            assert!(normalize_handle(bad).is_err(), "{bad}");
        }
    }
}
