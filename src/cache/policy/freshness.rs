//! How fresh and how old a stored response is (RFC 9111 §4.2), and whether
//! it may answer a request as it is, after revalidation, or stale (RFC 9111
//! §4.2.4, RFC 5861). Pure: `now` is passed in.

use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;

use crate::cache::policy::cache_control::{
    delta_seconds, request_no_cache_with, CacheControl, DELTA_SECONDS_MAX,
};
use crate::cache::policy::fields::http_date;
use crate::cache::policy::storability::heuristically_cacheable;
use crate::cache::policy::PolicyConfig;

/// The freshness lifetime of a response in a shared cache (RFC 9111
/// §4.2.1): `s-maxage`, else `max-age`, else `Expires` − `Date` (an invalid
/// `Expires` such as "0" means already expired; `response_time` stands in for
/// a missing or invalid `Date`), else the heuristic of §4.2.2.
pub fn freshness_lifetime(
    status: StatusCode,
    resp_headers: &HeaderMap,
    response_time: SystemTime,
    cfg: &PolicyConfig,
) -> Duration {
    lifetime_of(
        &CacheControl::from_headers(resp_headers),
        status,
        resp_headers,
        response_time,
        cfg,
    )
}

fn lifetime_of(
    cc: &CacheControl,
    status: StatusCode,
    headers: &HeaderMap,
    response_time: SystemTime,
    cfg: &PolicyConfig,
) -> Duration {
    // RFC 9111 §4.2.1: a shared cache prefers s-maxage, then max-age (which
    // overrides Expires, §5.3).
    if let Some(secs) = cc.s_maxage.or(cc.max_age) {
        return Duration::from_secs(secs);
    }
    let date = http_date(headers, &header::DATE).unwrap_or(response_time);
    if headers.contains_key(header::EXPIRES) {
        // RFC 9111 §5.3: an invalid Expires ("0") represents a time in the
        // past; a past Expires saturates at zero.
        return http_date(headers, &header::EXPIRES)
            .and_then(|expires| expires.duration_since(date).ok())
            .unwrap_or(Duration::ZERO);
    }
    // RFC 9111 §4.2.2: heuristics only without explicit expiration, for a
    // heuristically cacheable status or a `public` response.
    if !heuristically_cacheable(status) && !cc.public {
        return Duration::ZERO;
    }
    // A Last-Modified later than Date (clock trouble) gives no heuristic.
    let Some(since_modified) = http_date(headers, &header::LAST_MODIFIED)
        .and_then(|last_modified| date.duration_since(last_modified).ok())
    else {
        return Duration::ZERO;
    };
    let secs = since_modified.as_secs_f64() * cfg.heuristic_fraction;
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs).map_or(cfg.heuristic_max, |d| d.min(cfg.heuristic_max))
}

pub(crate) fn has_explicit_expiration(cc: &CacheControl, headers: &HeaderMap) -> bool {
    cc.s_maxage.is_some() || cc.max_age.is_some() || headers.contains_key(header::EXPIRES)
}

/// When the exchange that produced a stored response happened (RFC 9111
/// §4.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredTimes {
    /// When the request that produced the stored response was sent.
    pub request_time: SystemTime,
    /// When the response was received.
    pub response_time: SystemTime,
}

/// The current age of a stored response, exactly as RFC 9111 §4.2.3 computes
/// it. A missing or invalid `Date` gives an apparent age of 0; an invalid
/// `Age` counts as 0 (see [`age_value`]); clocks going backwards saturate
/// at 0.
pub fn current_age(resp_headers: &HeaderMap, times: &StoredTimes, now: SystemTime) -> Duration {
    let age_value = age_value(resp_headers).map_or(Duration::ZERO, Duration::from_secs);
    let apparent_age = http_date(resp_headers, &header::DATE)
        .map_or(Duration::ZERO, |date| elapsed(date, times.response_time));
    let response_delay = elapsed(times.request_time, times.response_time);
    let corrected_age_value = age_value.saturating_add(response_delay);
    let corrected_initial_age = apparent_age.max(corrected_age_value);
    let resident_time = elapsed(times.response_time, now);
    corrected_initial_age.saturating_add(resident_time)
}

/// The `Age` field's value in seconds (RFC 9111 §5.1). `Age` is a single
/// delta-seconds, but a response may carry it as a list (`Age: 7200, 0`, or
/// two `Age` lines, which RFC 9110 §5.3 combines into that list); like any
/// field that should appear once, the first member is the one read (RFC
/// 9111 §4.2.1 reads the first occurrence of a repeated field the same
/// way). A first member that is not delta-seconds makes the field invalid:
/// `None`, so it is ignored rather than guessed at. Huge values cap at 2^31.
pub fn age_value(resp_headers: &HeaderMap) -> Option<u64> {
    let first_line = resp_headers.get(header::AGE)?.to_str().ok()?;
    let first_member = first_line.split(',').next()?;
    delta_seconds(first_member)
}

/// `to − from`, or zero when `to` is earlier.
fn elapsed(from: SystemTime, to: SystemTime) -> Duration {
    to.duration_since(from).unwrap_or(Duration::ZERO)
}

/// The `Age` field value for a response of this age: whole seconds, capped
/// at 2^31 (RFC 9111 §5.1, §1.2.2).
pub fn age_header_value(age: Duration) -> HeaderValue {
    HeaderValue::from(age.as_secs().min(DELTA_SECONDS_MAX))
}

/// Why a stored response must be revalidated before use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevalidateReason {
    /// It is stale and may not be served stale (RFC 9111 §4.2.4).
    Stale,
    /// The request carries `no-cache` or `Pragma: no-cache` (RFC 9111
    /// §5.2.1.4, §5.4).
    RequestNoCache,
    /// It is older than the request's `max-age` (RFC 9111 §5.2.1.1).
    RequestMaxAge,
    /// It stays fresh for less than the request's `min-fresh` (RFC 9111
    /// §5.2.1.3).
    RequestMinFresh,
    /// The response carries unqualified `no-cache` (RFC 9111 §5.2.2.4).
    ResponseNoCache,
}

impl RevalidateReason {
    /// A short kebab-case label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stale => "stale",
            Self::RequestNoCache => "request-no-cache",
            Self::RequestMaxAge => "request-max-age",
            Self::RequestMinFresh => "request-min-fresh",
            Self::ResponseNoCache => "response-no-cache",
        }
    }
}

/// What to do with a stored response for a request (RFC 9111 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Fresh: serve it.
    Fresh,
    /// Stale, but the client's `max-stale` accepts it (RFC 9111 §5.2.1.2).
    StaleAllowed,
    /// Stale within `stale-while-revalidate`: serve it now and refresh it in
    /// the background (RFC 5861 §3).
    StaleWhileRevalidate,
    /// Send a conditional request first.
    Revalidate(RevalidateReason),
}

impl Verdict {
    /// A short kebab-case label for logs and metrics; the reason of
    /// `Revalidate` has its own `as_str`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fresh => "fresh",
            Self::StaleAllowed => "stale-allowed",
            Self::StaleWhileRevalidate => "stale-while-revalidate",
            Self::Revalidate(_) => "revalidate",
        }
    }
}

/// Decides whether a stored response may answer a request (RFC 9111 §4,
/// §5.2.1, §5.2.2; RFC 5861 §3; RFC 8246 §2), in this order:
/// 1. response `no-cache` (unqualified) always revalidates;
/// 2. request `no-cache`/`Pragma: no-cache` revalidates, except a fresh
///    `immutable` response;
/// 3. request `max-age=N` revalidates when age > N (`max-age=0` is ignored for
///    a fresh `immutable` response: it is a reload);
/// 4. request `min-fresh=N` revalidates when lifetime − age < N;
/// 5. fresh → `Fresh`;
/// 6. stale with `must-revalidate`, `proxy-revalidate` or `s-maxage` →
///    revalidate; else the client's `max-stale` → `StaleAllowed`; else the
///    response's `stale-while-revalidate` → `StaleWhileRevalidate`; else
///    revalidate.
pub fn evaluate(
    req_headers: &HeaderMap,
    status: StatusCode,
    stored_headers: &HeaderMap,
    times: &StoredTimes,
    now: SystemTime,
    cfg: &PolicyConfig,
) -> Verdict {
    use RevalidateReason as R;
    let stored_cc = CacheControl::from_headers(stored_headers);
    let req_cc = CacheControl::from_headers(req_headers);
    let lifetime = lifetime_of(&stored_cc, status, stored_headers, times.response_time, cfg);
    let age = current_age(stored_headers, times, now);
    // RFC 9111 §4.2: fresh when the lifetime exceeds the current age.
    let fresh = lifetime > age;

    // RFC 9111 §5.2.2.4: never reused without successful validation.
    if stored_cc.no_cache.is_all() {
        return Verdict::Revalidate(R::ResponseNoCache);
    }
    // RFC 8246 §2: a reload does not revalidate a fresh immutable response.
    let fresh_immutable = stored_cc.immutable && fresh;
    if request_no_cache_with(&req_cc, req_headers) && !fresh_immutable {
        return Verdict::Revalidate(R::RequestNoCache);
    }
    if let Some(max_age) = req_cc.max_age {
        let reload = max_age == 0 && fresh_immutable;
        // RFC 9111 §5.2.1.1
        if !reload && age > Duration::from_secs(max_age) {
            return Verdict::Revalidate(R::RequestMaxAge);
        }
    }
    if let Some(min_fresh) = req_cc.min_fresh {
        // RFC 9111 §5.2.1.3
        if lifetime.saturating_sub(age) < Duration::from_secs(min_fresh) {
            return Verdict::Revalidate(R::RequestMinFresh);
        }
    }
    if fresh {
        return Verdict::Fresh;
    }
    // RFC 9111 §4.2.4, §5.2.2.2, §5.2.2.8, §5.2.2.10: never served stale.
    if no_stale_allowed(&stored_cc) {
        return Verdict::Revalidate(R::Stale);
    }
    let staleness = age.saturating_sub(lifetime);
    if req_cc.max_stale.is_some_and(|m| m.accepts(staleness)) {
        return Verdict::StaleAllowed;
    }
    // RFC 5861 §3
    if stored_cc
        .stale_while_revalidate
        .is_some_and(|secs| staleness <= Duration::from_secs(secs))
    {
        return Verdict::StaleWhileRevalidate;
    }
    Verdict::Revalidate(R::Stale)
}

/// Whether a stored response of this `lifetime` and `age` may be served when
/// revalidation fails with an error (RFC 5861 §4): a `stale-if-error=N` in
/// the response or in the request covers its staleness (≤ N seconds; either
/// one suffices).
///
/// Always false with `must-revalidate`, `proxy-revalidate`, `s-maxage` or an
/// unqualified response `no-cache`: RFC 9111 §4.2.4 forbids generating a
/// stale response against those explicit directives, and it is the later,
/// normative text (RFC 5861's "regardless of other freshness information"
/// does not override them). A fresh response counts as staleness 0.
pub fn stale_if_error_allows(
    req_headers: &HeaderMap,
    stored_headers: &HeaderMap,
    lifetime: Duration,
    age: Duration,
) -> bool {
    let stored_cc = CacheControl::from_headers(stored_headers);
    if no_stale_allowed(&stored_cc) || stored_cc.no_cache.is_all() {
        return false;
    }
    let staleness = age.saturating_sub(lifetime);
    let req_cc = CacheControl::from_headers(req_headers);
    [stored_cc.stale_if_error, req_cc.stale_if_error]
        .into_iter()
        .flatten()
        .any(|secs| staleness <= Duration::from_secs(secs))
}

/// Whether a stored response of this `lifetime` and `age` may be served
/// stale because the origin cannot be reached (RFC 9111 §4.2.4: a cache may
/// serve stale "when it is disconnected", unless an explicit directive
/// prohibits it). The caller decides that the origin is unreachable (no
/// response at all; an origin's 5xx is `stale_if_error_allows`'s business).
///
/// Allowed while the staleness is at most `cfg.max_stale` (zero: never),
/// and never:
/// - with `must-revalidate` (§5.2.2.2), `proxy-revalidate` (§5.2.2.8),
///   `s-maxage` (§5.2.2.10, which implies proxy-revalidate for a shared
///   cache) or an unqualified `no-cache` (§5.2.2.4) on the stored response;
/// - when the request forbids it: `no-cache` or `Pragma: no-cache`
///   (§5.2.1.4, §5.4), a `max-age` the response is older than (§5.2.1.1),
///   any `min-fresh` (§5.2.1.3: a stale response is never fresh enough), a
///   `max-stale=N` (§5.2.1.2) or `stale-if-error=N` (RFC 5861 §4) smaller
///   than the staleness: the client's own bound is the tighter one.
pub fn stale_on_unreachable_allows(
    req_headers: &HeaderMap,
    stored_headers: &HeaderMap,
    lifetime: Duration,
    age: Duration,
    cfg: &PolicyConfig,
) -> bool {
    if cfg.max_stale.is_zero() {
        return false;
    }
    let stored_cc = CacheControl::from_headers(stored_headers);
    if no_stale_allowed(&stored_cc) || stored_cc.no_cache.is_all() {
        return false;
    }
    let req_cc = CacheControl::from_headers(req_headers);
    if request_no_cache_with(&req_cc, req_headers) || req_cc.min_fresh.is_some() {
        return false;
    }
    if req_cc
        .max_age
        .is_some_and(|max_age| age > Duration::from_secs(max_age))
    {
        return false;
    }
    let staleness = age.saturating_sub(lifetime);
    if req_cc.max_stale.is_some_and(|m| !m.accepts(staleness)) {
        return false;
    }
    if req_cc
        .stale_if_error
        .is_some_and(|secs| staleness > Duration::from_secs(secs))
    {
        return false;
    }
    staleness <= cfg.max_stale
}

/// The `ttl` of a `Cache-Status` (RFC 9211 §2.4) for a response of this
/// `lifetime` and `age`: its remaining freshness in whole seconds, negative
/// once stale. A stale response never shows 0: staleness is rounded up.
pub fn cache_status_ttl(lifetime: Duration, age: Duration) -> i64 {
    if lifetime > age {
        let left = lifetime.saturating_sub(age).as_secs();
        return i64::try_from(left).unwrap_or(i64::MAX);
    }
    let stale = age.saturating_sub(lifetime);
    let secs = stale
        .as_secs()
        .saturating_add(u64::from(stale.subsec_nanos() > 0))
        .max(1);
    i64::try_from(secs).map_or(i64::MIN, |s| -s)
}

/// Whether a stored response must never be served stale: `must-revalidate`,
/// `proxy-revalidate` or `s-maxage` (which implies proxy-revalidate for a
/// shared cache, RFC 9111 §5.2.2.10).
pub fn must_not_serve_stale(stored_headers: &HeaderMap) -> bool {
    no_stale_allowed(&CacheControl::from_headers(stored_headers))
}

fn no_stale_allowed(cc: &CacheControl) -> bool {
    cc.must_revalidate || cc.proxy_revalidate || cc.s_maxage.is_some()
}
