//! Shared-cache policy (RFC 9111 §3, §4, §5; RFC 5861; RFC 8246): may a
//! response be stored, what is stored, how fresh and how old it is, and may a
//! stored response answer a request. Pure: functions of headers, statuses and
//! times passed in by the caller; no clock, no I/O.

pub mod cache_control;
pub mod fields;
pub mod freshness;
pub mod invalidation;
pub mod key;
pub mod partial;
pub mod range;
pub mod serve;
pub mod storability;
pub mod validation;
pub mod vary;

use std::time::Duration;

pub use crate::cache::policy::freshness::*;
pub use crate::cache::policy::invalidation::{
    content_location_is_request_uri, invalidates, invalidation_targets,
};
pub use crate::cache::policy::storability::*;
pub use crate::cache::policy::validation::{
    client_conditional, revalidation_headers, update_headers_from_304, validators_match_304,
    Conditional,
};

/// Tunables of the policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolicyConfig {
    /// Heuristic freshness as a fraction of (Date − Last-Modified)
    /// (RFC 9111 §4.2.2 suggests 10%). Non-positive or NaN disables it.
    pub heuristic_fraction: f64,
    /// Upper bound of a heuristic freshness lifetime.
    pub heuristic_max: Duration,
    /// How stale a stored response may be and still be served when the
    /// origin cannot be reached (RFC 9111 §4.2.4); zero turns it off.
    pub max_stale: Duration,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            heuristic_fraction: 0.1,
            heuristic_max: Duration::from_secs(24 * 60 * 60),
            max_stale: Duration::from_secs(7 * 24 * 60 * 60),
        }
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "policy_stale_tests.rs"]
mod stale_tests;
