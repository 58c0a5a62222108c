//! In-process API tests: each test gets its own data directory, database and clock.

mod accounts;
mod bad_input;
mod email;
mod helpers;
mod throttling;
mod tokens;
