//! The per-request record: filled in by the stages as the request moves
//! along, read once at the end by the log. Pure.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};

/// What happened to one request.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The client's address.
    pub client: SocketAddr,
    /// When the request head was received.
    pub started: Instant,
    /// The client's protocol version, e.g. `HTTP/1.1`.
    pub version: &'static str,
    /// Referer and User-Agent as the client sent them (combined log format).
    pub referer: Option<String>,
    pub user_agent: Option<String>,
    /// Time from sending to the origin to its response head.
    pub upstream_time: Option<Duration>,
    /// Time the access rules waited on the resolver for the origin's address.
    pub dns_time: Option<Duration>,
    pub method: Method,
    /// The request target as received. A copy, not the parsed `Uri`: that
    /// shares the connection's read buffer and would pin it until logged.
    pub target: String,
    /// Squid result code (e.g. `TCP_MISS`, `TCP_TUNNEL`, `NONE_NONE`).
    pub result: &'static str,
    /// The address of the origin actually contacted, if any.
    pub peer: Option<SocketAddr>,
    /// `peer` is a parent proxy (logged as Squid's `CARP` hierarchy code).
    pub via_parent: bool,
    /// Status sent to the client.
    pub status: Option<StatusCode>,
    /// Why the request failed, if it did.
    pub error: Option<String>,
    /// The authenticated user, if any.
    pub user: Option<std::sync::Arc<str>>,
    /// Served from another request's origin fetch (request coalescing).
    pub coalesced: bool,
}

impl Exchange {
    /// A fresh record for a request that just arrived.
    pub fn new(client: SocketAddr, method: &Method, target: String, now: Instant) -> Exchange {
        Exchange {
            client,
            started: now,
            version: "HTTP/1.1",
            referer: None,
            user_agent: None,
            upstream_time: None,
            dns_time: None,
            method: method.clone(),
            target,
            result: "NONE_NONE",
            peer: None,
            via_parent: false,
            status: None,
            error: None,
            user: None,
            coalesced: false,
        }
    }

    /// Time since the request arrived.
    pub fn elapsed(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }
}
