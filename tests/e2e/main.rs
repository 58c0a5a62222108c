//! End to end: the real `audiostudio` binary, started as a process and driven over HTTP and its CLI.

mod accounts;
mod audit_head;
mod connections;
mod console;
mod harness;
mod mfa;
mod security;
mod stripe;
mod tokens;
