//! `Idempotency-Key`: the first response to a (user, key) is stored with the change it made
//! and replayed on every retry; the same key with another request is refused.

use std::io::Cursor;

use rocket::http::{ContentType, Header, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, Responder, Response};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::http::error::{ApiError, ApiResult};
use crate::platform::clock::Millis;
use crate::platform::db::{Db, run_cached};

const MAX_KEY_LEN: usize = 255;

/// The raw `Idempotency-Key` header, validated by `key()`.
pub struct IdempotencyHeader(Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for IdempotencyHeader {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(IdempotencyHeader(
            req.headers().get_one("Idempotency-Key").map(str::to_owned),
        ))
    }
}

impl IdempotencyHeader {
    pub fn key(self) -> ApiResult<Option<String>> {
        match self.0 {
            None => Ok(None),
            Some(key)
                if !key.is_empty()
                    && key.len() <= MAX_KEY_LEN
                    && key.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                Ok(Some(key))
            }
            Some(_) => Err(ApiError::BadRequest(format!(
                "the Idempotency-Key header must be 1 to {MAX_KEY_LEN} visible ASCII characters"
            ))),
        }
    }
}

/// Fingerprint of a request: the operation and its canonical JSON body.
fn fingerprint(operation: &str, body: &impl Serialize) -> String {
    let canonical = serde_json::to_value(body)
        .map(|v| v.to_string())
        .unwrap_or_default();
    let mut h = Sha256::new();
    h.update(operation.as_bytes());
    h.update(b"\n");
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

/// A response that can be stored and replayed byte for byte.
#[derive(Debug, Clone)]
pub struct Stored {
    pub status: Status,
    pub body: String,
    pub problem: bool,
    pub replayed: bool,
}

impl Stored {
    pub fn json(status: Status, value: &impl Serialize) -> Stored {
        Stored {
            status,
            body: serde_json::to_string(value).unwrap_or_default(),
            problem: false,
            replayed: false,
        }
    }

    fn refused(error: &ApiError) -> Stored {
        Stored {
            status: error.status(),
            body: serde_json::to_string(&error.problem(None)).unwrap_or_default(),
            problem: true,
            replayed: false,
        }
    }
}

impl<'r> Responder<'r, 'static> for Stored {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let content_type = if self.problem {
            ContentType::new("application", "problem+json")
        } else {
            ContentType::JSON
        };
        let mut response = Response::build()
            .status(self.status)
            .header(content_type)
            .sized_body(self.body.len(), Cursor::new(self.body))
            .finalize();
        if self.replayed {
            response.set_header(Header::new("Idempotent-Replayed", "true"));
        }
        Ok(response)
    }
}

/// The stored response for (user, key), if any; a 422 when the key was used with
/// another request.
fn lookup(
    conn: &Connection,
    user_id: &str,
    key: &str,
    fingerprint: &str,
) -> ApiResult<Option<Stored>> {
    let previous: Option<(String, i64, String)> = conn
        // A 429 is about when the request came, not what it asked: it is never kept, so a
        // retry after `Retry-After` runs (rows stored before that rule are skipped too).
        .prepare_cached("SELECT request_hash, status, body FROM idempotency_keys WHERE user_id = ?1 AND key = ?2 AND status <> 429")?
        .query_row(params![user_id, key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((hash, status, body)) = previous else {
        return Ok(None);
    };
    if hash != fingerprint {
        return Err(ApiError::Unprocessable(
            "this Idempotency-Key was already used with a different request".into(),
        ));
    }
    let status = Status::new(u16::try_from(status).unwrap_or(500));
    Ok(Some(Stored {
        status,
        body,
        problem: status.code >= 400,
        replayed: true,
    }))
}

/// The caller an idempotent request acts for, established on the connection the stored
/// answer is looked up on (so a revoked session never gets a replay).
pub trait Caller {
    fn user_id_on(&self, conn: &Connection, now: Millis) -> ApiResult<String>;
}

/// One idempotent request: its key (if the client sent one), its caller and its fingerprint.
///
/// Every idempotent route starts with [`Idempotent::begin`], which answers a retry from
/// the store before anything else is checked (validation, configuration such as Stripe,
/// state): a retry gets the first answer even when those would now differ. The change
/// itself then runs through [`Idempotent::run`] inside the route's write.
pub struct Idempotent {
    /// (user, key) when the client sent a key.
    scope: Option<(String, String)>,
    fingerprint: String,
}

impl Idempotent {
    /// The stored answer of a retry (`Err`, to return as it is), or the request to run (`Ok`).
    pub async fn begin(
        db: &Db,
        caller: &(impl Caller + Clone + Send + 'static),
        header: IdempotencyHeader,
        now: Millis,
        operation: &str,
        body: &impl Serialize,
    ) -> ApiResult<Result<Idempotent, Stored>> {
        let fingerprint = fingerprint(operation, body);
        let Some(key) = header.key()? else {
            return Ok(Ok(Idempotent {
                scope: None,
                fingerprint,
            }));
        };
        let (caller, probe) = (caller.clone(), fingerprint.clone());
        let (user_id, stored) = db
            .read(move |c| {
                let user_id = caller.user_id_on(c, now)?;
                let stored = lookup(c, &user_id, &key, &probe)?;
                Ok::<_, ApiError>(((user_id, key), stored))
            })
            .await?;
        Ok(match stored {
            Some(stored) => Err(stored),
            None => Ok(Idempotent {
                scope: Some(user_id),
                fingerprint,
            }),
        })
    }

    /// The client's key, if it sent one.
    pub fn key(&self) -> Option<&str> {
        self.scope.as_ref().map(|(_, key)| key.as_str())
    }

    /// The fingerprint of the request (for references derived from it).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Runs `operation` once per (user, key) inside the caller's transaction. A refusal
    /// (4xx) is stored too: its partial writes are rolled back to a savepoint, the
    /// refusal is remembered, and retries get it. A 429 is the exception: it is answered
    /// with its `Retry-After` and not stored, so the retry it asks for can succeed.
    pub fn run(
        &self,
        tx: &Transaction<'_>,
        now: Millis,
        operation: impl FnOnce(&Transaction<'_>) -> ApiResult<Stored>,
    ) -> ApiResult<Stored> {
        let Some((user_id, key)) = &self.scope else {
            return operation(tx);
        };
        // A concurrent request with the same key may have committed since `begin`.
        if let Some(stored) = lookup(tx, user_id, key, &self.fingerprint)? {
            return Ok(stored);
        }
        const UNDO: [&str; 2] = [
            "ROLLBACK TO idempotent_operation",
            "RELEASE idempotent_operation",
        ];
        run_cached(tx, &["SAVEPOINT idempotent_operation"])?;
        let stored = match operation(tx) {
            Ok(stored) => {
                run_cached(tx, &["RELEASE idempotent_operation"])?;
                stored
            }
            // A throttle is answered as it is (with its Retry-After), never stored.
            Err(error @ ApiError::TooManyRequests { .. }) => {
                run_cached(tx, &UNDO)?;
                return Err(error);
            }
            Err(error) if error.status().code < 500 => {
                run_cached(tx, &UNDO)?;
                Stored::refused(&error)
            }
            Err(error) => return Err(error),
        };
        tx.prepare_cached(
            "INSERT INTO idempotency_keys (user_id, key, request_hash, status, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![user_id, key, self.fingerprint, stored.status.code, stored.body, now])?;
        Ok(stored)
    }
}
