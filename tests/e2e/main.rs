//! End to end: the real `audiostudio` binary, started as a process and driven over HTTP and its CLI.

mod accounts;
mod audit_head;
mod connections;
mod contract;
mod harness;
mod security;
mod stripe;
mod tokens;
