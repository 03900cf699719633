//! May a shared cache store a response (RFC 9111 §3, §5.2.2), and what of
//! it is stored (never one client's `Set-Cookie`, nor hop-by-hop fields).
//! Pure.

use http::header::{self, HeaderMap};
use http::{Method, StatusCode, Uri};

use crate::cache::policy::cache_control::{CacheControl, FieldDirective};
use crate::cache::policy::fields::{hop_by_hop_names, http_date};
use crate::cache::policy::freshness::has_explicit_expiration;
use crate::cache::policy::invalidation::content_location_is_request_uri;
use crate::cache::policy::vary::vary_names;
use crate::cache::policy::PolicyConfig;
use crate::http::detach::{detach_name, detach_value};

/// Why a response is not stored (RFC 9111 §3): the one reason a miss left
/// nothing in the cache, decided where the decision is made and shown in the
/// JSON access log (`reason`), in `Cache-Status` (`detail`, RFC 9211 §2.8)
/// and in `/metrics` (`cachalot_not_stored_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStorable {
    /// The request method is not GET (HEAD misses, POST, PUT...).
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
    /// A 206 that is not kept as a piece of a partial object (see
    /// `policy::partial`): no validator, `Vary`, overlapping a stored piece,
    /// or with `cache.range_fill` on, where whole objects are fetched.
    Partial,
    /// The request asked for a range: passed through, we store whole
    /// responses only.
    Range,
    /// `must-understand` on a status whose caching rules we do not
    /// implement (RFC 9111 §5.2.2.3).
    MustUnderstand,
    /// The response's `Content-Length` exceeds `cache.max_object_size`.
    TooBig,
    /// The request had a body (a GET or HEAD with one): not replayable.
    RequestBody,
    /// The URL has no cache key (not plain `http`, say): passed through.
    NoKey,
    /// The fills in progress hold all of `cache.fill_budget`: streamed
    /// through without being stored.
    FillBudget,
    /// Too large for the memory tier, and the disk tier takes no writes now
    /// (a full or failing disk), or its write failed during the transfer.
    DiskOff,
    /// Too large for the memory tier, and the downloads being stored already
    /// hold all of `cache.disk_size`.
    DiskSpace,
}

impl NotStorable {
    /// Every reason, in a fixed order (the metrics' slots).
    pub const ALL: [NotStorable; 18] = [
        Self::Method,
        Self::Status,
        Self::RequestNoStore,
        Self::ResponseNoStore,
        Self::Private,
        Self::Authorization,
        Self::SetCookie,
        Self::VaryStar,
        Self::NoFreshnessOrValidator,
        Self::Partial,
        Self::Range,
        Self::MustUnderstand,
        Self::TooBig,
        Self::RequestBody,
        Self::NoKey,
        Self::FillBudget,
        Self::DiskOff,
        Self::DiskSpace,
    ];

    /// A short kebab-case label for logs, `Cache-Status` and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Method => "method",
            Self::Status => "status",
            Self::RequestNoStore => "request-no-store",
            Self::ResponseNoStore => "no-store",
            Self::Private => "private",
            Self::Authorization => "authorization",
            Self::SetCookie => "set-cookie",
            Self::VaryStar => "vary-star",
            Self::NoFreshnessOrValidator => "no-validator-no-freshness",
            Self::Partial => "partial",
            Self::Range => "range",
            Self::MustUnderstand => "must-understand",
            Self::TooBig => "too-big",
            Self::RequestBody => "request-body",
            Self::NoKey => "no-key",
            Self::FillBudget => "fill-budget",
            Self::DiskOff => "disk-off",
            Self::DiskSpace => "disk-space",
        }
    }

    /// The reason's position in [`NotStorable::ALL`].
    pub fn index(self) -> usize {
        self as usize
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
