//! `spawn_app()` and friends: a fresh application per test, driven through Rocket's local client.

mod app;
mod builders;
mod client;
mod rewards;
mod rows;
mod tools;

pub use app::*;
pub use builders::*;
pub use client::*;
pub use rewards::*;
pub use rows::*;
pub use tools::*;
