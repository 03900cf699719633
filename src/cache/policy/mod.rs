//! Shared-cache policy (RFC 9111 §3, §4, §5; RFC 5861; RFC 8246): may a
//! response be stored, what is stored, how fresh and how old it is, and may a
//! stored response answer a request. Pure: functions of headers, statuses and
//! times passed in by the caller; no clock, no I/O.

pub mod cache_control;
pub mod fields;
pub mod invalidation;
pub mod key;
pub mod range;
pub mod serve;
pub mod validation;
pub mod vary;

use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode, Uri};

use crate::cache::policy::cache_control::{
    delta_seconds, request_no_cache_with, CacheControl, FieldDirective, DELTA_SECONDS_MAX,
};
use crate::cache::policy::fields::{hop_by_hop_names, http_date};
use crate::cache::policy::vary::vary_names;

pub use crate::cache::policy::invalidation::{
    content_location_is_request_uri, invalidates, invalidation_targets,
};
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

/// Why a response is not stored (RFC 9111 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStorable {
    /// The request method is not GET.
    Method,
    /// The status is not final, is 304, or is neither heuristically cacheable
    /// nor given explicit freshness or `public`.
    Status,
    /// The request carries `no-store` (RFC 9111 §5.2.1.5).
    RequestNoStore,
    /// The response carries `no-store` (RFC 9111 §5.2.2.5).
    ResponseNoStore,
    /// The response carries unqualified `private` (RFC 9111 §5.2.2.7).
    Private,
    /// The request carries `Authorization` and the response does not allow a
    /// shared cache to store it (RFC 9111 §3.5).
    Authorization,
    /// The response sets a cookie and is not explicitly shareable.
    SetCookie,
    /// The response carries `Vary: *` (RFC 9111 §4.1).
    VaryStar,
    /// No explicit freshness and no validator: it could never be reused.
    NoFreshnessOrValidator,
    /// A 206 partial response: we store complete responses only.
    Partial,
    /// `must-understand` on a status whose caching rules we do not
    /// implement (RFC 9111 §5.2.2.3).
    MustUnderstand,
}

impl NotStorable {
    /// A short kebab-case label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Method => "method",
            Self::Status => "status",
            Self::RequestNoStore => "request-no-store",
            Self::ResponseNoStore => "response-no-store",
            Self::Private => "private",
            Self::Authorization => "authorization",
            Self::SetCookie => "set-cookie",
            Self::VaryStar => "vary-star",
            Self::NoFreshnessOrValidator => "no-freshness-or-validator",
            Self::Partial => "partial",
            Self::MustUnderstand => "must-understand",
        }
    }
}

/// Statuses that are heuristically cacheable (RFC 9110 §15.1), minus 206: we
/// never store partial content.
pub fn heuristically_cacheable(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// Statuses whose caching rules this cache implements, for `must-understand`
/// (RFC 9111 §5.2.2.3): the final statuses of RFC 9110 §15 whose meaning for
/// a cache we know — the heuristically cacheable ones (§15.1), the
/// redirections we store with explicit freshness (302, 303, 307) and the
/// errors we store with explicit freshness and pass through otherwise.
/// Unregistered or extension codes (e.g. 299, 418, 599) are not understood;
/// 206 is understood but never stored (`NotStorable::Partial` decides first).
pub fn understood_status(status: StatusCode) -> bool {
    heuristically_cacheable(status)
        || matches!(
            status.as_u16(),
            201..=203
                | 205
                | 206
                | 302
                | 303
                | 305
                | 307
                | 400..=417
                | 421..=422
                | 426
                | 500
                | 502..=505
        )
}

/// Whether a shared cache may store this response (RFC 9111 §3).
///
/// `Set-Cookie` is tolerated with `public`, `s-maxage`, or when the response
/// itself names it in `private="set-cookie"` / `no-cache="set-cookie"`: the
/// stored copy never carries it (`headers_to_store`). `_cfg` does not change
/// the answer today: heuristic freshness needs a `Last-Modified`, which is
/// also a validator.
pub fn storability(
    method: &Method,
    req_headers: &HeaderMap,
    status: StatusCode,
    resp_headers: &HeaderMap,
    _cfg: &PolicyConfig,
) -> Result<(), NotStorable> {
    // RFC 9111 §3: "the request method is understood by the cache"; we only
    // cache GET.
    if method != Method::GET {
        return Err(NotStorable::Method);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        return Err(NotStorable::Partial);
    }
    // RFC 9111 §3: "the response status code is final"; a 304 only updates
    // a stored response (§4.3.4), it is never stored itself.
    if status.as_u16() < 200 || status == StatusCode::NOT_MODIFIED {
        return Err(NotStorable::Status);
    }
    if CacheControl::from_headers(req_headers).no_store {
        return Err(NotStorable::RequestNoStore);
    }
    let cc = CacheControl::from_headers(resp_headers);
    // RFC 9111 §5.2.2.3: with must-understand, a cache that implements the
    // status code's caching rules ignores no-store; one that does not
    // implement them does not store.
    if cc.must_understand && !understood_status(status) {
        return Err(NotStorable::MustUnderstand);
    }
    if cc.no_store && !cc.must_understand {
        return Err(NotStorable::ResponseNoStore);
    }
    // RFC 9111 §3, §5.2.2.7: a shared cache must not store `private`
    // responses; the qualified form only strips the named fields.
    if cc.private.is_all() {
        return Err(NotStorable::Private);
    }
    // RFC 9111 §3.5: authenticated requests only with public, s-maxage or
    // must-revalidate.
    if req_headers.contains_key(header::AUTHORIZATION)
        && !(cc.public || cc.s_maxage.is_some() || cc.must_revalidate)
    {
        return Err(NotStorable::Authorization);
    }
    let shareable = cc.public || cc.s_maxage.is_some();
    for cookie in ["set-cookie", "set-cookie2"] {
        let named = |d: &FieldDirective| d.fields().iter().any(|f| f == cookie);
        if resp_headers.contains_key(cookie)
            && !shareable
            && !named(&cc.private)
            && !named(&cc.no_cache)
        {
            return Err(NotStorable::SetCookie);
        }
    }
    if vary_names(resp_headers).is_none() {
        return Err(NotStorable::VaryStar);
    }
    // RFC 9111 §3: a final status that is heuristically cacheable, or any
    // final status with explicit expiration or `public`.
    let explicit = has_explicit_expiration(&cc, resp_headers);
    if !explicit && !cc.public && !heuristically_cacheable(status) {
        return Err(NotStorable::Status);
    }
    let has_validator = resp_headers.contains_key(header::ETAG)
        || http_date(resp_headers, &header::LAST_MODIFIED).is_some();
    if !explicit && !has_validator {
        return Err(NotStorable::NoFreshnessOrValidator);
    }
    Ok(())
}

/// Whether the response to a POST of `request_uri` may be stored as the
/// response to a GET of that URI (RFC 9110 §9.3.3: "only cacheable when they
/// include explicit freshness information and a Content-Location header
/// field that has the same value as the POST's target URI"; RFC 9111 §2,
/// §4.3.5 lets a cache reuse it for later GETs). The rest of `storability`
/// (status, no-store, private, Vary ...) still applies, as for a GET.
pub fn post_stores_as_get(method: &Method, request_uri: &Uri, resp_headers: &HeaderMap) -> bool {
    method == Method::POST
        && has_explicit_expiration(&CacheControl::from_headers(resp_headers), resp_headers)
        && content_location_is_request_uri(request_uri, resp_headers)
}

/// Why a response's `Set-Cookie` did not go into the cache, as the `detail`
/// of its `Cache-Status` (RFC 9211 §2.8), given what `storability` said and
/// whether the response is `stored`.
///
/// A deliberate choice against the letter of RFC 9111 §3.1 (which lets a
/// cache store `Set-Cookie` and says nothing against replaying it): for
/// privacy, one client's cookie never reaches another. A shareable response
/// (`public`, `s-maxage`, or naming the cookie in `private=`/`no-cache=`) is
/// stored without its `Set-Cookie` (`set-cookie-withheld`); any other
/// response setting a cookie is not stored at all (`set-cookie-not-shared`).
/// `None` when the response sets no cookie, or was not stored for another
/// reason.
pub fn set_cookie_detail(
    resp_headers: &HeaderMap,
    verdict: Result<(), NotStorable>,
    stored: bool,
) -> Option<&'static str> {
    match verdict {
        Err(NotStorable::SetCookie) => Some("set-cookie-not-shared"),
        Ok(())
            if stored
                && (resp_headers.contains_key("set-cookie")
                    || resp_headers.contains_key("set-cookie2")) =>
        {
            Some("set-cookie-withheld")
        }
        _ => None,
    }
}

/// The header fields to store for a response: all of them except
/// `Set-Cookie`/`Set-Cookie2` (one client's cookie must never reach another),
/// the fields named by `private="..."` and `no-cache="..."` (RFC 9111
/// §5.2.2.7, §5.2.2.4: stripping them is the safe handling) and the
/// hop-by-hop fields (RFC 9111 §3.1, RFC 9110 §7.6.1).
pub fn headers_to_store(resp_headers: &HeaderMap) -> HeaderMap {
    let cc = CacheControl::from_headers(resp_headers);
    let mut excluded = hop_by_hop_names(resp_headers);
    excluded.extend(["set-cookie".to_owned(), "set-cookie2".to_owned()]);
    excluded.extend(cc.private.fields().iter().cloned());
    excluded.extend(cc.no_cache.fields().iter().cloned());
    let mut stored = HeaderMap::with_capacity(resp_headers.len());
    for (name, value) in resp_headers {
        if !excluded.iter().any(|e| e == name.as_str()) {
            stored.append(detach_name(name), detach_value(value));
        }
    }
    stored
}

/// A copy of a parsed field value in its own allocation: a parsed value
/// shares the connection's whole read buffer, which a stored entry would
/// otherwise keep alive for as long as it is cached.
pub fn detach_value(value: &HeaderValue) -> HeaderValue {
    let mut copy = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
    copy.set_sensitive(value.is_sensitive());
    copy
}

fn detach_name(name: &header::HeaderName) -> header::HeaderName {
    header::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap_or_else(|_| name.clone())
}

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

fn has_explicit_expiration(cc: &CacheControl, headers: &HeaderMap) -> bool {
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

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "policy_stale_tests.rs"]
mod stale_tests;
