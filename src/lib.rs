//! cachalot: an HTTP/1.1 forward proxy with a shared cache.
//!
//! A request flows one way through the stages, in the order `pipeline` knows:
//!
//! ```text
//! accept (server) → auth → target (http::target: parse/normalize)
//!   → access rules (acl; without DNS unless a `dst` rule needs the address,
//!     then through dns, the admitted addresses pinned) → anonymize
//!   → CONNECT? tunnel (direct or through a parent)
//!            : cache (lookup → coalesce → upstream → tee/store)
//!   → error page if anything failed → record (exchange, one Disposition)
//!   → access log + metrics once delivered (access_log, metrics)
//! ```
//!
//! Every request is in the table of requests in flight (`metrics::live`)
//! from its arrival to that moment; the admin listener's status page reads
//! it and the bandwidth windows (`metrics::window`), `/metrics` the
//! counters (`metrics::encode`).
//!
//! Layers, lowest first; a module uses its own layer or a lower one
//! (`.ci/layers` checks that the pure ones import no tokio and read no clock):
//! - pure: `config`, `config_error`, `error`, `exchange`, `http::*`, `acl`,
//!   `anonymize`, `parent` (the choice; its down marks take time passed in),
//!   `pac`, `cache::policy::*`, `cache::outcome`, `access_log::format`,
//!   `stats::{report, simulate, sim_input, sim_render, sink}`, `thread_slot`
//! - one resource each: `dns` (the caching resolver), `upstream` (outbound
//!   sockets, pools, parents), `auth` (users file, bcrypt),
//!   `cache::store::{memory, disk, record}`, `access_log::writer`, `metrics`
//!   (with `live`, `window`, `histogram`, `encode`)
//! - composition: `cache::store` (the tiers together), `cache::flight::*`
//!   (coalescing, tee), `forward`, `tunnel` (which takes the client's socket
//!   back from hyper by its type, `server::listener::ServedIo`, to splice
//!   it: the one reference upwards)
//! - orchestration: `cache` (with `hit` and `miss`), `pipeline`, `shared`
//! - process: `server::*` (with `workers`: one runtime per serving thread),
//!   `cli`, `stats` (the report command)

pub mod access_log;
pub mod acl;
pub mod anonymize;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod config;
pub mod config_error;
pub mod dns;
pub mod error;
pub mod exchange;
pub mod forward;
pub mod http;
pub mod metrics;
pub mod pac;
pub mod parent;
pub mod pipeline;
pub mod server;
pub mod shared;
pub mod stats;
pub mod thread_slot;
pub mod tunnel;
pub mod upstream;
