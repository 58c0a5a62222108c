//! End to end: the real `audiostudio` binary, started as a process and driven over HTTP and its CLI.

mod accounts;
mod audit_head;
mod backup;
mod connections;
mod console;
mod contract;
mod harness;
mod mfa;
mod replication;
mod security;
mod stripe;
mod tokens;
