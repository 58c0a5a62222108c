//! Social engagement rewards: users claim tokens for following, sharing or posting; a task either pays at once or waits for an admin's review.

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{Route, State, get, post, routes};
use rusqlite::{OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::ledger::{self, Grant, Granted, Source};
use crate::accounts::validate::{Checks, avatar_url};
use crate::auth::{AdminUser, AuthUser};
use crate::http::error::{ApiError, ApiResult, Problem, Throttle};
use crate::http::idempotency::{IdempotencyHeader, Idempotent, Stored};
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::{self, Actor, Event};
use crate::platform::clock::{Millis, rfc3339};
use crate::state::App;

const DAY_MS: Millis = 86_400_000;
const MAX_HANDLE: usize = 64;
const MAX_ID: usize = 128;
const CLAIM_STATUSES: [&str; 3] = ["pending", "approved", "rejected"];

pub fn routes() -> Vec<Route> {
    routes![list_tasks, claim_task]
}

pub fn admin_routes() -> Vec<Route> {
    routes![list_claims, approve_claim, reject_claim]
}

/// A task as one user sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskView {
    pub id: String,
    pub platform: String,
    pub action: String,
    pub title: String,
    pub description: Option<String>,
    pub reward_tokens: i64,
    /// Approved (and paid) at once when claimed; otherwise an admin reviews the claim.
    pub auto_approve: bool,
    /// The reward tokens expire this many days after they are granted; absent: never.
    pub reward_expires_days: Option<i64>,
    /// `available`, `pending`, `approved` or `rejected`, for the caller.
    pub state: String,
    /// The caller's claim on this task, once there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TasksResponse {
    pub tasks: Vec<TaskView>,
}

/// A claim as its owner sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimView {
    pub id: String,
    pub task_id: Option<String>,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    pub reward_tokens: i64,
    pub proof_url: Option<String>,
    /// The account handle on the platform, without a leading `@`.
    pub handle: Option<String>,
    pub created_at: String,
    pub reviewed_at: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    pub task_id: String,
    /// An http(s) link to the follow, share or post.
    pub proof_url: String,
    /// The caller's handle on the platform (`@` optional); one account per handle and task.
    pub handle: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimResponse {
    pub claim: ClaimView,
    /// The caller's balance after the claim (an auto-approved reward is already in it).
    pub balance: i64,
}

/// A claim as an admin sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminClaimView {
    #[serde(flatten)]
    pub claim: ClaimView,
    pub user_id: String,
    pub email: String,
    pub platform: String,
    pub action: String,
    /// The task's title, while the task exists.
    pub task_title: Option<String>,
    /// The admin who approved or rejected it; absent when pending or auto-approved.
    pub reviewed_by: Option<String>,
    #[serde(skip)]
    created_ms: Millis,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimPage {
    pub claims: Vec<AdminClaimView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

const CLAIM_COLUMNS: &str =
    "e.id, e.task_id, e.status, e.reward_tokens, e.url, e.handle, e.created_at, e.reviewed_at,
     e.user_id, u.email, e.platform, e.action, t.title, e.reviewed_by";

const CLAIM_FROM: &str = "social_engagements e JOIN users u ON u.id = e.user_id
     LEFT JOIN social_tasks t ON t.id = e.task_id";

fn admin_claim_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AdminClaimView> {
    Ok(AdminClaimView {
        claim: ClaimView {
            id: r.get(0)?,
            task_id: r.get(1)?,
            status: r.get(2)?,
            reward_tokens: r.get(3)?,
            proof_url: r.get(4)?,
            handle: r.get(5)?,
            created_at: rfc3339(r.get(6)?),
            reviewed_at: r.get::<_, Option<Millis>>(7)?.map(rfc3339),
        },
        user_id: r.get(8)?,
        email: r.get(9)?,
        platform: r.get(10)?,
        action: r.get(11)?,
        task_title: r.get(12)?,
        reviewed_by: r.get(13)?,
        created_ms: r.get(6)?,
    })
}

fn find_claim(conn: &rusqlite::Connection, id: &str) -> rusqlite::Result<Option<AdminClaimView>> {
    conn.query_row(
        &format!("SELECT {CLAIM_COLUMNS} FROM {CLAIM_FROM} WHERE e.id = ?1"),
        [id],
        admin_claim_from_row,
    )
    .optional()
}

/// The engagement tasks on offer, with the caller's state for each.
#[utoipa::path(get, path = "/api/tokens/social", tag = "tokens", security(("bearer" = [])),
    responses(
        (status = 200, description = "Active tasks in display order", body = TasksResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/social")]
async fn list_tasks(app: &State<App>, user: AuthUser) -> ApiResult<Json<TasksResponse>> {
    let tasks = app
        .db
        .read(move |c| {
            let mut stmt = c.prepare(
                "SELECT t.id, t.platform, t.action, t.title, t.description, t.reward_tokens,
                        t.auto_approve, t.reward_expires_days, e.status, e.id
                 FROM social_tasks t
                 LEFT JOIN social_engagements e ON e.task_id = t.id AND e.user_id = ?1
                 WHERE t.active = 1 ORDER BY t.sort_order, t.id",
            )?;
            let tasks = stmt
                .query_map([&user.user_id], |r| {
                    Ok(TaskView {
                        id: r.get(0)?,
                        platform: r.get(1)?,
                        action: r.get(2)?,
                        title: r.get(3)?,
                        description: r.get(4)?,
                        reward_tokens: r.get(5)?,
                        auto_approve: r.get::<_, i64>(6)? == 1,
                        reward_expires_days: r.get(7)?,
                        state: r
                            .get::<_, Option<String>>(8)?
                            .unwrap_or_else(|| "available".to_owned()),
                        claim_id: r.get(9)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok::<_, ApiError>(tasks)
        })
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

fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        Err("is required".into())
    } else if id.len() > MAX_ID || id.chars().any(char::is_control) {
        Err("is not a task id".into())
    } else {
        Ok(())
    }
}

/// Claim a task's reward. Auto-approved tasks pay at once; the others wait for review.
#[utoipa::path(post, path = "/api/tokens/social", tag = "tokens", security(("bearer" = [])), request_body = ClaimRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses(
        (status = 201, description = "Claimed: approved and paid, or pending review", body = ClaimResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such active task", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already claimed by the caller, or the handle was used by another account", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or the key was used with another request", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the daily reward cap; Retry-After is the next UTC midnight", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/social", data = "<body>")]
async fn claim_task(
    app: &State<App>,
    user: AuthUser,
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
    let handle = body.handle.as_deref().map(normalize_handle).transpose();
    Checks::default()
        .check("task_id", check_id(&body.task_id))
        .check("proof_url", avatar_url(&body.proof_url))
        .check("handle", handle.as_ref().map(|_| ()).map_err(Clone::clone))
        .finish()?;
    let handle = handle.ok().flatten();
    let now = app.clock.now_ms();
    let cap = app.settings.social_daily_reward_cap;
    let actor = Actor::user(&user.user_id, &client);
    app.db
        .write(move |tx| {
            idem.run(tx, now, |tx| {
                let claim = NewClaim {
                    user_id: &user.user_id,
                    task_id: &body.task_id,
                    proof_url: &body.proof_url,
                    handle: handle.as_deref(),
                };
                let claim = create_claim(tx, &claim, cap, &actor, now)?;
                let balance = super::available(tx, &user.user_id)?;
                Ok(Stored::json(
                    Status::Created,
                    &ClaimResponse { claim, balance },
                ))
            })
        })
        .await
}

struct NewClaim<'a> {
    user_id: &'a str,
    task_id: &'a str,
    proof_url: &'a str,
    handle: Option<&'a str>,
}

struct Task {
    platform: String,
    action: String,
    title: String,
    reward_tokens: i64,
    auto_approve: bool,
    reward_expires_days: Option<i64>,
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

/// Records a claim (one per task and user, one account per handle and task), enforces the
/// daily cap, and pays an auto-approved task at once; all in the caller's transaction.
fn create_claim(
    tx: &Transaction<'_>,
    claim: &NewClaim<'_>,
    cap: i64,
    actor: &Actor,
    now: Millis,
) -> ApiResult<ClaimView> {
    let task = tx
        .query_row(
            "SELECT platform, action, title, reward_tokens, auto_approve, reward_expires_days
             FROM social_tasks WHERE id = ?1 AND active = 1",
            [claim.task_id],
            |r| {
                Ok(Task {
                    platform: r.get(0)?,
                    action: r.get(1)?,
                    title: r.get(2)?,
                    reward_tokens: r.get(3)?,
                    auto_approve: r.get::<_, i64>(4)? == 1,
                    reward_expires_days: r.get(5)?,
                })
            },
        )
        .optional()?
        .ok_or(ApiError::NotFound)?;
    let id = uuid::Uuid::now_v7().to_string();
    let status = if task.auto_approve {
        "approved"
    } else {
        "pending"
    };
    let inserted = tx.execute(
        "INSERT INTO social_engagements
            (id, user_id, task_id, platform, action, url, handle, reward_tokens, status, created_at, reviewed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            id,
            claim.user_id,
            claim.task_id,
            task.platform,
            task.action,
            claim.proof_url,
            claim.handle,
            task.reward_tokens,
            status,
            now,
            task.auto_approve.then_some(now)
        ],
    );
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Err(claim_conflict(tx, claim, &task)?),
        Err(e) => return Err(e.into()),
    }
    check_daily_cap(tx, claim.user_id, cap, now)?;
    if task.auto_approve {
        let lot = grant_reward(
            tx,
            claim.user_id,
            &id,
            task.reward_tokens,
            task.reward_expires_days,
            &task.title,
            now,
        )?;
        let event = Event::new("tokens.social_auto_approved")
            .target("social_claim", &id)
            .details(json!({
                "user_id": claim.user_id,
                "task_id": claim.task_id,
                "amount": task.reward_tokens,
                "lot": lot,
            }));
        audit::record(tx, now, actor, event)?;
    }
    let view = find_claim(tx, &id)?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the claim just written is missing")))?;
    Ok(view.claim)
}

/// Which uniqueness rule a refused insert broke, as a 409.
fn claim_conflict(tx: &Transaction<'_>, claim: &NewClaim<'_>, task: &Task) -> ApiResult<ApiError> {
    let mine: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM social_engagements
                        WHERE user_id = ?1 AND (task_id = ?2 OR (platform = ?3 AND action = ?4)))",
        params![claim.user_id, claim.task_id, task.platform, task.action],
        |r| r.get(0),
    )?;
    Ok(ApiError::Conflict(if mine {
        "you have already claimed this task".into()
    } else {
        "this handle was already used for this task by another account".into()
    }))
}

/// The caller's pending and approved rewards claimed today (UTC), this claim included, must fit the cap.
fn check_daily_cap(tx: &Transaction<'_>, user_id: &str, cap: i64, now: Millis) -> ApiResult<()> {
    let day_start = now.div_euclid(DAY_MS) * DAY_MS;
    let claimed: i64 = tx.query_row(
        "SELECT COALESCE(SUM(reward_tokens), 0) FROM social_engagements
         WHERE user_id = ?1 AND status IN ('pending', 'approved') AND created_at >= ?2 AND created_at < ?3",
        params![user_id, day_start, day_start + DAY_MS],
        |r| r.get(0),
    )?;
    if claimed <= cap {
        return Ok(());
    }
    let retry_after_ms = day_start + DAY_MS - now;
    Err(ApiError::TooManyRequests {
        detail: format!(
            "this claim would take today's social rewards to {claimed} tokens, over the daily cap of {cap}; try again after midnight UTC"
        ),
        throttle: Throttle {
            retry_after_secs: u64::try_from((retry_after_ms + 999) / 1000).unwrap_or(1),
            limit: u32::try_from(cap).unwrap_or(u32::MAX),
            window_secs: 86_400,
        },
    })
}

/// Mints the claim's reward lot; the claim id is the lot's reference, so it pays once.
fn grant_reward(
    tx: &Transaction<'_>,
    user_id: &str,
    claim_id: &str,
    amount: i64,
    expires_days: Option<i64>,
    title: &str,
    now: Millis,
) -> ApiResult<Option<i64>> {
    if amount <= 0 {
        return Ok(None);
    }
    let expires_at = expires_days.map(|days| now.saturating_add(days.saturating_mul(DAY_MS)));
    let description = format!("social reward: {title}");
    let granted = ledger::grant(
        tx,
        &Grant {
            user_id,
            source: Source::Reward,
            source_ref: claim_id,
            amount,
            expires_at,
            description: Some(&description),
        },
        now,
    )?;
    match granted {
        Granted::New { lot_id, .. } => Ok(Some(lot_id)),
        Granted::AlreadyGranted { .. } => Err(ApiError::Conflict(
            "this claim's reward was already granted".into(),
        )),
    }
}

/// Claims for review, newest first (admins only).
#[utoipa::path(get, path = "/api/admin/social", tag = "admin", security(("bearer" = [])),
    params(
        ("status" = Option<String>, Query, description = "pending, approved or rejected; absent: all"),
        ("limit" = Option<u32>, Query, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "One page of claims", body = ClaimPage),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad status, limit or cursor", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/social?<status>&<limit>&<cursor>")]
async fn list_claims(
    app: &State<App>,
    _admin: AdminUser,
    status: Option<&str>,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> ApiResult<Json<ClaimPage>> {
    let limit = crate::http::pagination::page_limit(limit, 50, 200)?;
    let status = match status {
        None => None,
        Some(s) if CLAIM_STATUSES.contains(&s) => Some(s.to_owned()),
        Some(_) => {
            return Err(ApiError::field(
                "status",
                format!("must be one of {}", CLAIM_STATUSES.join(", ")),
            ));
        }
    };
    let cursor = match cursor {
        None => None,
        Some(c) => Some(
            parse_cursor(c)
                .ok_or_else(|| ApiError::field("cursor", "is not a cursor from this list"))?,
        ),
    };
    let (before_time, before_id) = cursor.unzip();
    let mut claims = app
        .db
        .read(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {CLAIM_COLUMNS} FROM {CLAIM_FROM}
                 WHERE (?1 IS NULL OR e.status = ?1)
                   AND (?2 IS NULL OR e.created_at < ?2 OR (e.created_at = ?2 AND e.id < ?3))
                 ORDER BY e.created_at DESC, e.id DESC LIMIT ?4"
            ))?;
            let claims = stmt
                .query_map(
                    params![status, before_time, before_id, limit + 1],
                    admin_claim_from_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok::<_, ApiError>(claims)
        })
        .await?;
    let next_cursor = if claims.len() > limit as usize {
        claims.truncate(limit as usize);
        claims
            .last()
            .map(|last| format!("{}_{}", last.created_ms, last.claim.id))
    } else {
        None
    };
    Ok(Json(ClaimPage {
        claims,
        next_cursor,
    }))
}

/// A cursor is `<created_at ms>_<claim id>` of the last claim of the previous page.
fn parse_cursor(text: &str) -> Option<(Millis, String)> {
    let (at, id) = text.split_once('_')?;
    let at = at.parse::<Millis>().ok().filter(|t| *t >= 0)?;
    (!id.is_empty() && id.len() <= MAX_ID && id.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| (at, id.to_owned()))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Decision {
    Approve,
    Reject,
}

/// Approve a pending claim: its reward lot is granted once; audited.
#[utoipa::path(post, path = "/api/admin/social/{id}/approve", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The claim id")),
    responses(
        (status = 200, description = "Approved and paid", body = AdminClaimView),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such claim", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The claim is not pending", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/social/<id>/approve")]
async fn approve_claim(
    app: &State<App>,
    admin: AdminUser,
    client: ClientInfo,
    id: &str,
) -> ApiResult<Json<AdminClaimView>> {
    review(app, &admin, &client, id, Decision::Approve).await
}

/// Reject a pending claim: no tokens; audited.
#[utoipa::path(post, path = "/api/admin/social/{id}/reject", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The claim id")),
    responses(
        (status = 200, description = "Rejected", body = AdminClaimView),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such claim", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The claim is not pending", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/social/<id>/reject")]
async fn reject_claim(
    app: &State<App>,
    admin: AdminUser,
    client: ClientInfo,
    id: &str,
) -> ApiResult<Json<AdminClaimView>> {
    review(app, &admin, &client, id, Decision::Reject).await
}

async fn review(
    app: &App,
    admin: &AdminUser,
    client: &ClientInfo,
    id: &str,
    decision: Decision,
) -> ApiResult<Json<AdminClaimView>> {
    if id.len() > MAX_ID {
        return Err(ApiError::NotFound);
    }
    let id = id.to_owned();
    let admin_id = admin.0.user_id.clone();
    let actor = Actor::user(&admin_id, client);
    let now = app.clock.now_ms();
    let view = app
        .db
        .write(move |tx| {
            let (user_id, status, reward, expires_days, title): (
                String,
                String,
                i64,
                Option<i64>,
                String,
            ) = tx
                .query_row(
                    "SELECT e.user_id, e.status, e.reward_tokens, t.reward_expires_days,
                            COALESCE(t.title, e.platform || ' ' || e.action)
                     FROM social_engagements e LEFT JOIN social_tasks t ON t.id = e.task_id
                     WHERE e.id = ?1",
                    [&id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()?
                .ok_or(ApiError::NotFound)?;
            if status != "pending" {
                return Err(ApiError::Conflict(format!(
                    "the claim is already {status}; only pending claims can be reviewed"
                )));
            }
            let new_status = match decision {
                Decision::Approve => "approved",
                Decision::Reject => "rejected",
            };
            tx.execute(
                "UPDATE social_engagements SET status = ?2, reviewed_at = ?3, reviewed_by = ?4
                 WHERE id = ?1 AND status = 'pending'",
                params![id, new_status, now, admin_id],
            )?;
            let event = match decision {
                Decision::Approve => {
                    let lot = grant_reward(tx, &user_id, &id, reward, expires_days, &title, now)?;
                    Event::new("tokens.social_approved")
                        .details(json!({ "user_id": user_id, "amount": reward, "lot": lot }))
                }
                Decision::Reject => Event::new("tokens.social_rejected")
                    .details(json!({ "user_id": user_id, "amount": reward })),
            };
            audit::record(tx, now, &actor, event.target("social_claim", &id))?;
            find_claim(tx, &id)?.ok_or(ApiError::NotFound)
        })
        .await?;
    Ok(Json(view))
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

    #[test]
    fn cursors() {
        assert_eq!(
            parse_cursor("1700000000000_0190-ab"),
            Some((1_700_000_000_000, "0190-ab".to_owned()))
        );
        for bad in ["", "_", "12_", "x_abc", "-5_abc", "12"] {
            assert!(parse_cursor(bad).is_none(), "{bad}");
        }
    }
}
