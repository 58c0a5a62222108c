//! The admin endpoints under `/api/admin`, one flow per file.

pub mod shortfalls;
pub mod users;

/// The largest page an admin list returns.
const MAX_PAGE: u32 = 200;
