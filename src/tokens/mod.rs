//! The token economy (`/api/tokens`): balance, ledger, packs, spends, holds, admin grants,
//! social rewards and analytics; the sweeper that expires lots and holds.

pub mod analytics;
pub mod api;
pub mod ledger;
pub mod ops;
pub mod social;
pub mod store;
pub mod sweeper;

use rocket::{Build, Rocket};
use utoipa::OpenApi;

pub use ledger::MAX_AMOUNT;
pub use ops::{check_amount, grant_by_admin};
pub use sweeper::sweep_due;

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(
    api::balance::get_balance,
    api::transactions::list_transactions,
    api::packs::list_packs,
    api::spend::use_tokens,
    api::holds::create_hold,
    api::holds::capture_hold,
    api::holds::release_hold,
    api::holds::list_holds,
    api::grants::add_tokens,
    api::social::list_tasks,
    api::social::claim_task,
    api::claims::list_claims,
    api::claims::approve_claim,
    api::claims::reject_claim,
    api::analytics::my_analytics,
    api::analytics::all_analytics,
))]
pub struct ApiDoc;

/// Mounts the token routes under `/api/tokens` and their admin review under `/api/admin`.
pub fn stage(rocket: Rocket<Build>) -> Rocket<Build> {
    rocket
        .mount("/api/tokens", api::routes())
        .mount("/api/admin", api::admin_routes())
}
