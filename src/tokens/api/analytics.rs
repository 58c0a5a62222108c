//! `GET /api/tokens/analytics` and `GET /api/admin/analytics`: spending and earning over a range.

use rocket::serde::json::Json;
use rocket::{State, get};
use time::macros::format_description;

use crate::auth::{AdminUser, AuthUser};
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::validate::{Checks, rfc3339_millis};
use crate::platform::clock::Millis;
use crate::platform::ids::UserId;
use crate::state::App;
use crate::tokens::analytics::{self, AnalyticsReport, GroupBy, Query};

const DAY_MS: Millis = 86_400_000;
const DEFAULT_DAYS: i64 = 30;
const MAX_DAYS: i64 = 366;
const MAX_PARAM_LEN: usize = 64;

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
    rfc3339_millis(text)
        .or_else(|| rfc3339_millis(&text.replace(' ', "+")))
        .ok_or_else(|| HINT.into())
}

fn group_by(text: Option<&str>) -> Result<GroupBy, String> {
    text.map_or(Ok(GroupBy::Day), |t| {
        t.parse().map_err(|_| "must be day or feature".to_owned())
    })
}

fn parse_query(
    from: Option<&str>,
    to: Option<&str>,
    group_by_text: Option<&str>,
    now: Millis,
) -> ApiResult<Query> {
    let mut checks = Checks::default();
    let from = checks.field("from", from.map(|t| parse_bound(t, false)).transpose());
    let to = checks.field("to", to.map(|t| parse_bound(t, true)).transpose());
    let group_by = checks.field("group_by", group_by(group_by_text));
    let (from, to, group_by) = checks.finish((from, to, group_by))?;
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

/// The report for one user or (with `None`) for everyone.
async fn run(
    app: &App,
    user_id: Option<UserId>,
    from: Option<&str>,
    to: Option<&str>,
    group_by: Option<&str>,
) -> ApiResult<Json<AnalyticsReport>> {
    let query = parse_query(from, to, group_by, app.clock.now_ms())?;
    let report = app
        .db
        .read(move |c| Ok::<_, ApiError>(analytics::report(c, user_id.as_ref(), &query)?))
        .await?;
    Ok(Json(report))
}

/// The caller's tokens spent (per day or feature) and earned (per source) over a range.
#[utoipa::path(get, path = "/api/tokens/analytics", tag = "tokens", security(("bearer" = [])),
    params(
        ("from" = Option<String>, Query, pattern = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]([.][0-9]{1,9})?(Z|[+ -]([01][0-9]|2[0-3]):[0-5][0-9]))?$", description = "YYYY-MM-DD (start of that UTC day) or RFC 3339; default 30 days before `to`"),
        ("to" = Option<String>, Query, pattern = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]([.][0-9]{1,9})?(Z|[+ -]([01][0-9]|2[0-3]):[0-5][0-9]))?$", description = "YYYY-MM-DD (end of that UTC day, inclusive) or RFC 3339 (exclusive); default the end of today (UTC). At most 366 days after `from`"),
        ("group_by" = Option<String>, Query, pattern = "^(day|feature)$", description = "day (default) or feature"),
    ),
    responses(
        (status = 200, description = "The report", body = AnalyticsReport),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad from, to or group_by", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/analytics?<from>&<to>&<group_by>")]
pub async fn my_analytics(
    app: &State<App>,
    user: AuthUser,
    from: Option<&str>,
    to: Option<&str>,
    group_by: Option<&str>,
) -> ApiResult<Json<AnalyticsReport>> {
    run(app, Some(user.user_id), from, to, group_by).await
}

/// The same report across all users (admins only).
#[utoipa::path(get, path = "/api/admin/analytics", tag = "admin", security(("bearer" = [])),
    params(
        ("from" = Option<String>, Query, pattern = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]([.][0-9]{1,9})?(Z|[+ -]([01][0-9]|2[0-3]):[0-5][0-9]))?$", description = "YYYY-MM-DD (start of that UTC day) or RFC 3339; default 30 days before `to`"),
        ("to" = Option<String>, Query, pattern = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]([.][0-9]{1,9})?(Z|[+ -]([01][0-9]|2[0-3]):[0-5][0-9]))?$", description = "YYYY-MM-DD (end of that UTC day, inclusive) or RFC 3339 (exclusive); default the end of today (UTC). At most 366 days after `from`"),
        ("group_by" = Option<String>, Query, pattern = "^(day|feature)$", description = "day (default) or feature"),
    ),
    responses(
        (status = 200, description = "The report across all users", body = AnalyticsReport),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad from, to or group_by", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/analytics?<from>&<to>&<group_by>")]
pub async fn all_analytics(
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
    use crate::platform::clock::rfc3339;

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
