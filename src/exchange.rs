//! The per-request record: filled in by the stages as the request moves
//! along, read once at the end by the log and the metrics. Pure.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};

use crate::cache::outcome::Outcome;
use crate::cache::policy::storability::NotStorable;
use crate::error::{ProxyError, Side};

/// What became of one request: the cache's outcome, or what the proxy did
/// instead. The Squid result code and the metrics label are read off it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Nothing decided yet (a request that fails before any stage).
    Pending,
    /// The cache's part (hit, miss, refresh, bypass...).
    Cache(Outcome),
    /// A CONNECT tunnel.
    Tunnel,
    /// Refused: access rules, CONNECT port, authentication.
    Denied,
    /// Answered by the proxy itself (PURGE, the PAC file, Max-Forwards).
    Proxy,
    /// Failed before the cache decided; the side at fault.
    Failed(Side),
}

impl Disposition {
    /// Squid's result code (without `_ABORTED`).
    pub fn squid_code(self) -> &'static str {
        match self {
            Disposition::Cache(outcome) => outcome.squid_code(),
            Disposition::Tunnel => "TCP_TUNNEL",
            Disposition::Denied => "TCP_DENIED",
            Disposition::Failed(Side::Upstream) => "TCP_MISS",
            Disposition::Pending | Disposition::Proxy | Disposition::Failed(_) => "NONE_NONE",
        }
    }

    /// The disposition a failure gives a request no stage decided for: a
    /// stage's own decision (a failed revalidation, say) is kept.
    pub fn after(self, error: &ProxyError) -> Disposition {
        match self {
            Disposition::Pending if error.is_denial() => Disposition::Denied,
            Disposition::Pending => Disposition::Failed(error.side()),
            decided => decided,
        }
    }
}

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
    /// What became of the request, decided by the stage that knows; read
    /// once at the end by the log and the metrics.
    pub result: Disposition,
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
    /// Why the origin's response was not stored, set by the cache stage
    /// that decided it; `None` for hits, stored misses and non-cache answers.
    pub not_stored: Option<NotStorable>,
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
            result: Disposition::Pending,
            peer: None,
            via_parent: false,
            status: None,
            error: None,
            user: None,
            coalesced: false,
            not_stored: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_decision_survives_the_error_that_follows() {
        let e = ProxyError::ConnectRefused("o:80".into());
        let refresh = Disposition::Cache(Outcome::RefreshFailErr);
        assert_eq!(refresh.after(&e).squid_code(), "TCP_REFRESH_FAIL_ERR");
        assert_eq!(Disposition::Pending.after(&e).squid_code(), "TCP_MISS");
        let denied = ProxyError::Denied("acl rule 1".into());
        assert_eq!(Disposition::Pending.after(&denied), Disposition::Denied);
        assert_eq!(Disposition::Tunnel.squid_code(), "TCP_TUNNEL");
    }
}
