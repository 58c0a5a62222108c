//! `POST backups`, `GET backups` and `GET backups/{name}`: the CLI's online backup
//! (`audiostudio backup`) from the admin API, into the same `<data_dir>/backups`, listed
//! and downloaded. Thin handlers over `platform::backup`; the copy and its checks run on
//! the blocking pool, never on the executor, and one at a time per data dir.

use std::path::{Path, PathBuf};

use rocket::http::{ContentType, Status};
use rocket::response::{self, Responder, Response};
use rocket::serde::json::Json;
use rocket::{Request, State, get, post};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::user_actions::EmptyRequest;
use crate::auth::AdminUser;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::{ClientInfo, JsonBody, parse_body};
use crate::platform::audit::{self, Actor, Event};
use crate::platform::backup::{self, Listed};
use crate::platform::clock::rfc3339;
use crate::platform::connections::{ConnectionsHandle, Streamed};
use crate::state::App;

/// A backup in the backups dir.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackupInfo {
    /// The file name, e.g. `20261203T120000Z.db`; download it at `backups/{name}`.
    pub name: String,
    pub size_bytes: u64,
    /// When the file was last written (RFC 3339).
    pub modified_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BackupList {
    /// Newest first.
    pub backups: Vec<BackupInfo>,
}

/// A backup just taken, and what verifying it said.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackupCreated {
    pub name: String,
    pub size_bytes: u64,
    /// When the copy was started (RFC 3339); it holds the database as it was then.
    pub created_at: String,
    /// How long the copy and its checks took.
    pub elapsed_ms: u64,
    /// Whether the copy passed `backup --verify` (integrity, schema version, ledger).
    pub verified: bool,
    /// What the checks said (the problem, when `verified` is false).
    pub verification: String,
}

/// A backup file: an SQLite database.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct BackupFile(pub Vec<u8>);

fn info(b: Listed) -> BackupInfo {
    BackupInfo {
        name: b.name,
        size_bytes: b.bytes,
        modified_at: rfc3339(b.modified_ms),
    }
}

/// Copies and verifies, on the calling (blocking) thread.
fn take(data_dir: &Path, database: &Path, now: i64) -> anyhow::Result<BackupCreated> {
    let started = std::time::Instant::now();
    let copied = backup::create(data_dir, database, now, &mut |_, _| {})?;
    let name = copied
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let checked = backup::verify(&copied.path, &crate::tokens::ops::ledger_verdict);
    let (verified, verification) = match checked {
        Ok(v) => (
            true,
            format!(
                "integrity ok, schema version {}, {}",
                v.schema_version, v.ledger
            ),
        ),
        // Named by its file name, not the server's path.
        Err(e) => (
            false,
            e.to_string()
                .replace(&copied.path.display().to_string(), &name),
        ),
    };
    Ok(BackupCreated {
        name,
        size_bytes: copied.bytes,
        created_at: rfc3339(now),
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        verified,
        verification,
    })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("backup task failed: {e}")))?
        .map_err(ApiError::Internal)
}

async fn record(
    app: &App,
    actor: Actor,
    action: &'static str,
    name: String,
    details: serde_json::Value,
) -> ApiResult<()> {
    let now = app.clock.now_ms();
    app.db
        .write(move |tx| {
            let event = Event::new(action).target("backup", &name).details(details);
            audit::record(tx, now, &actor, event).map_err(ApiError::from)
        })
        .await
}

/// Take an online backup into the server's backups dir, as `audiostudio backup` does,
/// and verify it; the server keeps taking writes meanwhile. Audited.
#[utoipa::path(post, path = "/api/admin/backups", tag = "admin", security(("bearer" = [])), request_body = EmptyRequest,
    responses(
        (status = 201, description = "Written and checked (see `verified`)", body = BackupCreated),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin (or, with the console cookie, not a same-origin JSON request)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A backup is being taken already", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown fields", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/backups", data = "<body>")]
pub async fn create(
    app: &State<App>,
    admin: AdminUser,
    client: ClientInfo,
    body: JsonBody<'_, EmptyRequest>,
) -> ApiResult<(Status, Json<BackupCreated>)> {
    parse_body(body)?;
    let data_dir = app.settings.storage.data_dir.clone();
    let database = app.settings.database_path();
    let now = app.clock.now_ms();
    let running = backup::Running::begin(&data_dir).ok_or_else(|| {
        ApiError::Conflict("a backup is being taken already; try again when it is done".into())
    })?;
    // The guard goes with the copy: a caller who hangs up does not free the slot early.
    let created = blocking(move || {
        let _running = running;
        take(&data_dir, &database, now)
    })
    .await?;
    let details = json!({ "size_bytes": created.size_bytes, "verified": created.verified });
    let actor = Actor::user(&admin.0.user_id, &client);
    record(
        app,
        actor,
        "admin.backup_created",
        created.name.clone(),
        details,
    )
    .await?;
    Ok((Status::Created, Json(created)))
}

/// The backups in the server's backups dir, newest first (`audiostudio backup --list`).
#[utoipa::path(get, path = "/api/admin/backups", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "The backups", body = BackupList),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/backups")]
pub async fn list(app: &State<App>, _admin: AdminUser) -> ApiResult<Json<BackupList>> {
    let data_dir = app.settings.storage.data_dir.clone();
    let listed = blocking(move || backup::list(&data_dir)).await?;
    Ok(Json(BackupList {
        backups: listed.into_iter().map(info).collect(),
    }))
}

/// A backup file being sent.
pub struct Download {
    name: String,
    file: tokio::fs::File,
}

impl<'r> Responder<'r, 'static> for Download {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        // Kept busy while the client takes the bytes, however long a slow link needs.
        let handle = req.local_cache(|| ConnectionsHandle(None));
        let body = Streamed::new(self.file, handle, req.remote());
        Response::build()
            .header(ContentType::new("application", "vnd.sqlite3"))
            .raw_header(
                "Content-Disposition",
                format!("attachment; filename=\"{}\"", self.name),
            )
            .raw_header("Cache-Control", "no-store")
            .sized_body(None, body)
            // Reads of 64 KiB rather than Rocket's 4 KiB: fewer, larger writes for a big file.
            .max_chunk_size(64 * 1024)
            .ok()
    }
}

/// Opens a listed backup for reading, refusing links; `None` if it is gone meanwhile.
fn open(path: &PathBuf) -> anyhow::Result<Option<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path);
    match opened {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        other => Ok(Some(other?)),
    }
}

/// Download a backup (streamed from its file). Audited.
#[utoipa::path(get, path = "/api/admin/backups/{name}", tag = "admin", security(("bearer" = [])),
    params(("name" = String, Path, description = "A backup's name, as listed")),
    responses(
        (status = 200, description = "The file, as an attachment", body = BackupFile, content_type = "application/vnd.sqlite3"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such backup", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/backups/<name>")]
pub async fn download(
    app: &State<App>,
    admin: AdminUser,
    client: ClientInfo,
    name: &str,
) -> ApiResult<Download> {
    if !backup::valid_name(name) {
        return Err(ApiError::NotFound);
    }
    let data_dir = app.settings.storage.data_dir.clone();
    let wanted = name.to_owned();
    let found = blocking(move || match backup::find(&data_dir, &wanted)? {
        Some(b) => Ok(open(&b.path)?.map(|file| (file, b.bytes))),
        None => Ok(None),
    })
    .await?;
    let (file, bytes) = found.ok_or(ApiError::NotFound)?;
    let actor = Actor::user(&admin.0.user_id, &client);
    let details = json!({ "size_bytes": bytes });
    record(
        app,
        actor,
        "admin.backup_downloaded",
        name.to_owned(),
        details,
    )
    .await?;
    Ok(Download {
        name: name.to_owned(),
        file: tokio::fs::File::from_std(file),
    })
}
