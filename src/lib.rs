//! cachalot: an HTTP/1.1 forward proxy with a shared cache.
//!
//! A request flows one way through the stages, in the order `pipeline` knows:
//!
//! ```text
//! accept (server) → target (parse/normalize) → CONNECT? tunnel
//!                                            : forward → upstream
//!        → error page if anything failed → per-request record (exchange)
//! ```
//!
//! Layers, lowest first; a module uses its own layer or a lower one:
//! - pure: `config`, `error`, `exchange`, `http::*`
//! - one resource each: `upstream` (outbound sockets)
//! - composition: `forward`, `tunnel`
//! - orchestration: `pipeline`, `shared`
//! - process: `server::*`, `cli`

pub mod access_log;
pub mod acl;
pub mod anonymize;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod config;
pub mod error;
pub mod exchange;
pub mod forward;
pub mod http;
pub mod metrics;
pub mod pipeline;
pub mod server;
pub mod shared;
pub mod stats;
pub mod tunnel;
pub mod upstream;
