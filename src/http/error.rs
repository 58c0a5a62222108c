//! One error type for the API: what the client sees (RFC 9457 problem+json) is kept apart from what is logged.

use std::collections::BTreeMap;
use std::io::Cursor;

use rocket::http::{ContentType, Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder, Response};
use rocket::{Catcher, catch, catchers};
use serde::Serialize;
use utoipa::ToSchema;

/// Field name → messages, for 422 responses.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Per-field messages, on validation failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<FieldErrors>,
    /// The request id, to find the matching log line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// A rate limit that was hit: enough to fill `Retry-After` and the `RateLimit` headers.
#[derive(Debug, Clone)]
pub struct Throttle {
    pub retry_after_secs: u64,
    pub limit: u32,
    pub window_secs: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body could not be read as JSON at all.
    #[error("{0}")]
    BadRequest(String),
    /// 401: missing or invalid credentials.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 402: not enough tokens.
    #[error("{0}")]
    PaymentRequired(String),
    /// 402: a payment was declined (a Stripe card error).
    #[error("{0}")]
    PaymentFailed(String),
    /// 403: the caller lacks the role.
    #[error("forbidden")]
    Forbidden,
    /// 403: the caller must verify their email address first; the detail says what for.
    #[error("{0}")]
    EmailNotVerified(&'static str),
    /// 403: the caller must use a second factor first; the detail says how.
    #[error("{0}")]
    MfaRequired(&'static str),
    /// 404: nothing the caller may see.
    #[error("not found")]
    NotFound,
    /// 409: a conflict with current state.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is over the configured limit.
    #[error("request body is larger than the limit")]
    PayloadTooLarge,
    /// 415: a body that is not declared JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed but invalid input.
    #[error("validation failed")]
    Validation(FieldErrors),
    /// 422 without a field map (e.g. a wrong JSON type).
    #[error("{0}")]
    Unprocessable(String),
    /// 429: a rate limit or lockout.
    #[error("{detail}")]
    TooManyRequests { detail: String, throttle: Throttle },
    /// 502: an integration (Stripe) answered with an error or nonsense.
    #[error("{0}")]
    BadGateway(String),
    /// 503: an integration or the database is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a bug or an I/O failure; the cause is logged, never sent.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn field(field: &str, message: impl Into<String>) -> ApiError {
        let mut errors = FieldErrors::new();
        errors.insert(field.to_owned(), vec![message.into()]);
        ApiError::Validation(errors)
    }

    pub fn status(&self) -> Status {
        match self {
            ApiError::BadRequest(_) => Status::BadRequest,
            ApiError::Unauthorized(_) => Status::Unauthorized,
            ApiError::PaymentRequired(_) | ApiError::PaymentFailed(_) => Status::PaymentRequired,
            ApiError::Forbidden | ApiError::EmailNotVerified(_) | ApiError::MfaRequired(_) => {
                Status::Forbidden
            }
            ApiError::NotFound => Status::NotFound,
            ApiError::Conflict(_) => Status::Conflict,
            ApiError::PayloadTooLarge => Status::PayloadTooLarge,
            ApiError::UnsupportedMediaType(_) => Status::UnsupportedMediaType,
            ApiError::Validation(_) | ApiError::Unprocessable(_) => Status::UnprocessableEntity,
            ApiError::TooManyRequests { .. } => Status::TooManyRequests,
            ApiError::BadGateway(_) => Status::BadGateway,
            ApiError::Unavailable(_) => Status::ServiceUnavailable,
            ApiError::Internal(_) => Status::InternalServerError,
        }
    }

    pub fn problem(&self, request_id: Option<String>) -> Problem {
        let status = self.status();
        let (slug, detail, errors) = match self {
            ApiError::Validation(errors) => (
                "validation-error",
                Some("the request has invalid fields".to_owned()),
                Some(errors.clone()),
            ),
            ApiError::Internal(_) => (
                "internal-error",
                Some(
                    "an unexpected error occurred; the request id identifies it in the logs"
                        .to_owned(),
                ),
                None,
            ),
            ApiError::Forbidden => (
                "forbidden",
                Some("your role does not allow this".to_owned()),
                None,
            ),
            ApiError::EmailNotVerified(_) => ("email-not-verified", Some(self.to_string()), None),
            ApiError::MfaRequired(_) => ("mfa-required", Some(self.to_string()), None),
            ApiError::NotFound => ("not-found", None, None),
            ApiError::TooManyRequests { .. } => ("rate-limited", Some(self.to_string()), None),
            ApiError::Unauthorized(_) => ("unauthorized", Some(self.to_string()), None),
            ApiError::Conflict(_) => ("conflict", Some(self.to_string()), None),
            ApiError::PaymentRequired(_) => ("insufficient-tokens", Some(self.to_string()), None),
            ApiError::PaymentFailed(_) => ("payment-failed", Some(self.to_string()), None),
            ApiError::BadGateway(_) => ("bad-gateway", Some(self.to_string()), None),
            ApiError::PayloadTooLarge => ("payload-too-large", Some(self.to_string()), None),
            ApiError::UnsupportedMediaType(_) => {
                ("unsupported-media-type", Some(self.to_string()), None)
            }
            ApiError::BadRequest(_) => ("bad-request", Some(self.to_string()), None),
            ApiError::Unprocessable(_) => ("unprocessable", Some(self.to_string()), None),
            ApiError::Unavailable(_) => ("unavailable", Some(self.to_string()), None),
        };
        Problem {
            kind: format!("urn:audiostudio:problem:{slug}"),
            title: status.reason().unwrap_or("Error").to_owned(),
            status: status.code,
            detail,
            errors,
            request_id,
        }
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::Internal(e.into())
    }
}

impl From<crate::platform::db::DbError> for ApiError {
    fn from(e: crate::platform::db::DbError) -> Self {
        match e {
            crate::platform::db::DbError::Unavailable(msg) => ApiError::Unavailable(msg),
            other => ApiError::Internal(other.into()),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(request_id = %crate::http::request_id(req), error = format!("{cause:#}"), "request failed");
        }
        let problem = self.problem(Some(crate::http::request_id(req).to_owned()));
        let mut response = problem_response(&problem);
        if let ApiError::TooManyRequests { throttle, .. } = &self {
            response.set_header(Header::new(
                "Retry-After",
                throttle.retry_after_secs.to_string(),
            ));
            response.set_header(Header::new(
                "RateLimit-Policy",
                format!("{};w={}", throttle.limit, throttle.window_secs),
            ));
            response.set_header(Header::new(
                "RateLimit",
                format!(
                    "limit={}, remaining=0, reset={}",
                    throttle.limit, throttle.retry_after_secs
                ),
            ));
        }
        if let ApiError::Unauthorized(_) = &self {
            response.set_header(Header::new("WWW-Authenticate", "Bearer"));
        }
        Ok(response)
    }
}

fn problem_response(problem: &Problem) -> Response<'static> {
    let body = serde_json::to_vec(problem).unwrap_or_default();
    Response::build()
        .status(Status::new(problem.status))
        .header(problem_json())
        .sized_body(body.len(), Cursor::new(body))
        .finalize()
}

fn problem_json() -> ContentType {
    ContentType::new("application", "problem+json")
}

/// The problem a request guard failed with. Rocket hands catchers only the status, so a
/// guard whose refusal must say more (what to do) leaves it here for the catcher.
struct GuardProblem(Option<Problem>);

/// `e` as a guard's failure, its problem kept for the catcher.
pub fn guard_failure(req: &Request<'_>, e: ApiError) -> (Status, ApiError) {
    req.local_cache(|| GuardProblem(Some(e.problem(None))));
    (e.status(), e)
}

/// The problem a guard kept for this status, if any.
fn kept_problem(req: &Request<'_>, status: Status) -> Option<Problem> {
    let kept = req.local_cache(|| GuardProblem(None)).0.as_ref()?;
    (kept.status == status.code).then(|| Problem {
        kind: kept.kind.clone(),
        title: kept.title.clone(),
        status: kept.status,
        detail: kept.detail.clone(),
        errors: None,
        request_id: Some(crate::http::request_id(req).to_owned()),
    })
}

/// Rocket's own errors (no route, wrong method, body over the limit, a failed guard) as
/// problems. A 404 on a path that has routes for other methods is a 405 with `Allow`, and
/// so is a method Rocket cannot parse on such a path.
#[catch(default)]
fn default_catcher(status: Status, req: &Request<'_>) -> Built {
    if let Some(problem) = kept_problem(req, status) {
        return Built(problem_response(&problem));
    }
    let allowed = match status.code {
        // 422: a path segment another route could not parse (`GET /api/admin/audit/verify`
        // tried as `/api/admin/audit/<id>`), on a path whose own routes lack the method.
        404 | 422 => crate::http::methods::not_allowed(req),
        400 if !crate::http::was_dispatched(req) => crate::http::methods::unknown_method(req),
        _ => None,
    };
    let status = if allowed.is_some() {
        Status::MethodNotAllowed
    } else {
        status
    };
    let detail = match status.code {
        404 => "no resource at this path",
        405 => "this method is not allowed here; the Allow header lists the ones that are",
        413 => "request body is larger than the limit",
        422 => {
            "the request does not have the expected shape (a path segment, query parameter or body)"
        }
        400 => "the request is malformed",
        401 => "authentication is required",
        429 => "too many requests; try again after Retry-After seconds",
        500 => "an unexpected error occurred; the request id identifies it in the logs",
        _ => status.reason().unwrap_or("error"),
    };
    let problem = Problem {
        kind: format!("urn:audiostudio:problem:http-{}", status.code),
        title: status.reason().unwrap_or("Error").to_owned(),
        status: status.code,
        detail: Some(detail.to_owned()),
        errors: None,
        request_id: Some(crate::http::request_id(req).to_owned()),
    };
    let mut response = problem_response(&problem);
    if let Some(methods) = allowed {
        response.set_header(crate::http::methods::allow_header(&methods));
    }
    Built(response)
}

/// A response already built, as a responder.
struct Built(Response<'static>);

impl<'r> Responder<'r, 'static> for Built {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        Ok(self.0)
    }
}

pub fn catchers() -> Vec<Catcher> {
    catchers![default_catcher]
}
