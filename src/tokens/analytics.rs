//! Token analytics: tokens spent and jobs run per day or per feature, tokens earned per source.

use rocket::serde::json::Json;
use rocket::{Route, State, get, routes};
use rusqlite::{Connection, params};
use serde::Serialize;
use time::macros::format_description;
use utoipa::ToSchema;

use crate::accounts::validate::Checks;
use crate::auth::{AdminUser, AuthUser};
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::platform::clock::{Millis, rfc3339};
use crate::state::App;

const DAY_MS: Millis = 86_400_000;
const DEFAULT_DAYS: i64 = 30;
const MAX_DAYS: i64 = 366;
const MAX_PARAM_LEN: usize = 64;

pub fn routes() -> Vec<Route> {
    routes![my_analytics]
}

pub fn admin_routes() -> Vec<Route> {
    routes![all_analytics]
}

/// Spending in one group: a UTC day (`YYYY-MM-DD`) or a feature.
#[derive(Debug, Serialize, ToSchema)]
pub struct SpentGroup {
    pub key: String,
    pub tokens: i64,
    /// How many spends (jobs) made up `tokens`.
    pub jobs: i64,
}

/// Tokens granted from one source (`subscription`, `purchase`, `reward`, `admin`, `refund`).
#[derive(Debug, Serialize, ToSchema)]
pub struct EarnedGroup {
    pub source: String,
    pub tokens: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AnalyticsReport {
    /// Start of the range (inclusive), RFC 3339.
    pub from: String,
    /// End of the range (exclusive), RFC 3339.
    pub to: String,
    /// `day` or `feature`.
    pub group_by: String,
    /// By day: oldest first, days without spending left out. By feature: most tokens first.
    pub spent: Vec<SpentGroup>,
    /// Most tokens first.
    pub earned: Vec<EarnedGroup>,
    pub total_spent: i64,
    pub total_earned: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupBy {
    Day,
    Feature,
}

impl GroupBy {
    fn as_str(self) -> &'static str {
        match self {
            GroupBy::Day => "day",
            GroupBy::Feature => "feature",
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Query {
    from: Millis,
    to: Millis,
    group_by: GroupBy,
}

/// Start of a UTC date in unix ms.
fn date_start(date: time::Date) -> Millis {
    date.midnight().assume_utc().unix_timestamp() * 1000
}

/// A bound given as `YYYY-MM-DD` (a whole UTC day: its start for `from`, its end for
/// `to`) or as an RFC 3339 time. A `+` of an offset left unencoded in the query arrives
/// as a space; it is read back as `+`.
fn parse_bound(text: &str, end_of_day: bool) -> Result<Millis, String> {
    const HINT: &str = "must be a date (2026-01-31) or an RFC 3339 time (2026-01-31T12:00:00Z)";
    if text.len() > MAX_PARAM_LEN {
        return Err(HINT.into());
    }
    if let Ok(date) = time::Date::parse(text, format_description!("[year]-[month]-[day]")) {
        let start = date_start(date);
        return Ok(if end_of_day { start + DAY_MS } else { start });
    }
    super::parse_time(text)
        .or_else(|| super::parse_time(&text.replace(' ', "+")))
        .ok_or_else(|| HINT.into())
}

fn parse_query(
    from: Option<&str>,
    to: Option<&str>,
    group_by: Option<&str>,
    now: Millis,
) -> ApiResult<Query> {
    let from = from.map(|t| parse_bound(t, false)).transpose();
    let to = to.map(|t| parse_bound(t, true)).transpose();
    let group_by = match group_by {
        None | Some("day") => Ok(GroupBy::Day),
        Some("feature") => Ok(GroupBy::Feature),
        Some(_) => Err("must be day or feature".to_owned()),
    };
    Checks::default()
        .check("from", from.as_ref().map(|_| ()).map_err(Clone::clone))
        .check("to", to.as_ref().map(|_| ()).map_err(Clone::clone))
        .check(
            "group_by",
            group_by.as_ref().map(|_| ()).map_err(Clone::clone),
        )
        .finish()?;
    let (from, to, group_by) = (
        from.ok().flatten(),
        to.ok().flatten(),
        group_by.unwrap_or(GroupBy::Day),
    );
    // By default the range ends with the current UTC day, so what happens now is in it.
    let end_of_today = (now.div_euclid(DAY_MS) + 1) * DAY_MS;
    let to = to.unwrap_or(end_of_today);
    let from = from.unwrap_or(to - DEFAULT_DAYS * DAY_MS);
    if to <= from {
        return Err(ApiError::field(
            "to",
            "must be after from (to defaults to the end of today, UTC)",
        ));
    }
    if to - from > MAX_DAYS * DAY_MS {
        return Err(ApiError::field(
            "to",
            format!("the range must be at most {MAX_DAYS} days"),
        ));
    }
    Ok(Query { from, to, group_by })
}

/// The report over `query`, for one user or (with `None`) for everyone.
fn report(
    conn: &Connection,
    user_id: Option<&str>,
    query: &Query,
) -> rusqlite::Result<AnalyticsReport> {
    // Two statement shapes rather than `?1 IS NULL OR user_id = ?1`, so each can use its index.
    let user_filter = if user_id.is_some() {
        "user_id = ?1"
    } else {
        "?1 IS NULL"
    };
    let (key, order) = match query.group_by {
        GroupBy::Day => (
            "strftime('%Y-%m-%d', created_at / 1000, 'unixepoch')",
            "key",
        ),
        GroupBy::Feature => ("COALESCE(feature, 'unknown')", "SUM(tokens_used) DESC, key"),
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT {key} AS key, SUM(tokens_used), COUNT(*) FROM usage_analytics
         WHERE {user_filter} AND event = 'tokens_spent' AND created_at >= ?2 AND created_at < ?3
         GROUP BY key ORDER BY {order}"
    ))?;
    let spent = stmt
        .query_map(params![user_id, query.from, query.to], |r| {
            Ok(SpentGroup {
                key: r.get(0)?,
                tokens: r.get(1)?,
                jobs: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut stmt = conn.prepare(&format!(
        "SELECT COALESCE(source, 'unknown') AS source, SUM(amount) FROM token_transactions
         WHERE {user_filter} AND kind = 'grant' AND created_at >= ?2 AND created_at < ?3
         GROUP BY source ORDER BY SUM(amount) DESC, source"
    ))?;
    let earned = stmt
        .query_map(params![user_id, query.from, query.to], |r| {
            Ok(EarnedGroup {
                source: r.get(0)?,
                tokens: r.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(AnalyticsReport {
        from: rfc3339(query.from),
        to: rfc3339(query.to),
        group_by: query.group_by.as_str().to_owned(),
        total_spent: spent.iter().map(|g| g.tokens).sum(),
        total_earned: earned.iter().map(|g| g.tokens).sum(),
        spent,
        earned,
    })
}

async fn run(
    app: &App,
    user_id: Option<String>,
    from: Option<&str>,
    to: Option<&str>,
    group_by: Option<&str>,
) -> ApiResult<Json<AnalyticsReport>> {
    let query = parse_query(from, to, group_by, app.clock.now_ms())?;
    let report = app
        .db
        .read(move |c| Ok::<_, ApiError>(report(c, user_id.as_deref(), &query)?))
        .await?;
    Ok(Json(report))
}

/// The caller's tokens spent (per day or feature) and earned (per source) over a range.
#[utoipa::path(get, path = "/api/tokens/analytics", tag = "tokens", security(("bearer" = [])),
    params(
        ("from" = Option<String>, Query, description = "YYYY-MM-DD (start of that UTC day) or RFC 3339; default 30 days before `to`"),
        ("to" = Option<String>, Query, description = "YYYY-MM-DD (end of that UTC day, inclusive) or RFC 3339 (exclusive); default the end of today (UTC). At most 366 days after `from`"),
        ("group_by" = Option<String>, Query, description = "day (default) or feature"),
    ),
    responses(
        (status = 200, description = "The report", body = AnalyticsReport),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad from, to or group_by", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/analytics?<from>&<to>&<group_by>")]
async fn my_analytics(
    app: &State<App>,
    user: AuthUser,
    from: Option<&str>,
    to: Option<&str>,
    group_by: Option<&str>,
) -> ApiResult<Json<AnalyticsReport>> {
    run(app, Some(user.user_id.to_string()), from, to, group_by).await
}

/// The same report across all users (admins only).
#[utoipa::path(get, path = "/api/admin/analytics", tag = "admin", security(("bearer" = [])),
    params(
        ("from" = Option<String>, Query, description = "YYYY-MM-DD (start of that UTC day) or RFC 3339; default 30 days before `to`"),
        ("to" = Option<String>, Query, description = "YYYY-MM-DD (end of that UTC day, inclusive) or RFC 3339 (exclusive); default the end of today (UTC). At most 366 days after `from`"),
        ("group_by" = Option<String>, Query, description = "day (default) or feature"),
    ),
    responses(
        (status = 200, description = "The report across all users", body = AnalyticsReport),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad from, to or group_by", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/analytics?<from>&<to>&<group_by>")]
async fn all_analytics(
    app: &State<App>,
    _admin: AdminUser,
    from: Option<&str>,
    to: Option<&str>,
    group_by: Option<&str>,
) -> ApiResult<Json<AnalyticsReport>> {
    run(app, None, from, to, group_by).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    #[test]
    fn bounds() {
        let q = parse_query(Some("2025-03-01"), Some("2025-03-31"), None, NOW).unwrap();
        assert_eq!(rfc3339(q.from), "2025-03-01T00:00:00Z");
        assert_eq!(rfc3339(q.to), "2025-04-01T00:00:00Z");
        assert_eq!(q.group_by, GroupBy::Day);
        let q = parse_query(
            Some("2025-03-01T10:00:00 02:00"),
            Some("2025-03-02T00:00:00Z"),
            Some("feature"),
            NOW,
        )
        .unwrap();
        assert_eq!(rfc3339(q.from), "2025-03-01T08:00:00Z");
        assert_eq!(q.group_by, GroupBy::Feature);
        // The default: the 30 UTC days ending with today.
        let q = parse_query(None, None, None, NOW + 5).unwrap();
        assert_eq!((q.from, q.to), (NOW - 29 * DAY_MS, NOW + DAY_MS));
        // One day is a valid range; a whole leap year too.
        assert!(parse_query(Some("2025-03-01"), Some("2025-03-01"), None, NOW).is_ok());
        assert!(parse_query(Some("2024-01-01"), Some("2024-12-31"), None, NOW).is_ok());
        for (from, to, group_by) in [
            (Some("2025-03-02"), Some("2025-03-01"), None),
            (Some("2024-01-01"), Some("2025-01-01"), None),
            (Some("yesterday"), None, None),
            (None, Some("2025-02-30"), None),
            (None, None, Some("month")),
            (Some("2025-03-01T00:00:00"), None, None),
        ] {
            assert!(
                parse_query(from, to, group_by, NOW).is_err(),
                "{from:?} {to:?} {group_by:?}"
            );
        }
    }
}
