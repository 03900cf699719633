//! End-to-end tests: the proxy in-process on 127.0.0.1:0 between a real
//! counting origin and real clients, and the binary for the CLI. One test
//! binary so that CI links once.

// clippy.toml allows these inside #[test] functions only; the helpers in
// this crate are test code too, where a broken assumption must fail loudly.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test-only crate: failing fast is the point"
)]

mod cache;
mod coalesce;
mod conformance;
mod delivery;
mod dns;
mod dns_server;
mod forward;
mod hardening;
mod large;
mod lifecycle;
mod limits;
mod logging;
mod marks;
mod not_stored;
mod pac;
mod parent;
mod park;
mod policy;
mod reload;
mod scripted;
mod simulate;
mod stats;
mod status;
mod support;
mod threads;
mod tunnel;
