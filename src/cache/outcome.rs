//! What the cache did for one request: the single source of the
//! `Cache-Status` text (RFC 9211), the Squid result code and the metrics
//! label. Pure.

/// The cache's part in answering a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Served from the memory tier.
    MemHit,
    /// Served from the disk tier.
    DiskHit,
    /// A stored error status (4xx/5xx) served from cache.
    NegativeHit,
    /// A client's conditional request answered 304 from cache.
    ImsHit,
    /// Served stale while a background refresh runs (RFC 5861 §3).
    StaleWhileRevalidate,
    /// Nothing stored for the URL; fetched from the origin.
    UriMiss,
    /// The URL had variants, none matching this request's Vary fields.
    VaryMiss,
    /// Revalidated with the origin, which said 304: served from cache.
    RefreshUnmodified,
    /// Revalidated with the origin, which sent a new response.
    RefreshModified,
    /// Revalidation failed; stale content served (stale-if-error).
    RefreshFailOld,
    /// Revalidation failed and the error was passed on.
    RefreshFailErr,
    /// Revalidation could not reach the origin (no answer at all); stale
    /// content served within `cache.max_stale` (RFC 9111 §4.2.4).
    UnreachableStale,
    /// The client asked for revalidation (no-cache, max-age=0...).
    ClientRefresh,
    /// Not a cacheable request (method, Range...): forwarded as is.
    Bypass,
    /// `only-if-cached` and nothing suitable stored: 504.
    OnlyIfCachedMiss,
}

impl Outcome {
    /// Metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::MemHit => "mem_hit",
            Outcome::DiskHit => "disk_hit",
            Outcome::NegativeHit => "negative_hit",
            Outcome::ImsHit => "ims_hit",
            Outcome::StaleWhileRevalidate => "stale_while_revalidate",
            Outcome::UriMiss => "uri_miss",
            Outcome::VaryMiss => "vary_miss",
            Outcome::RefreshUnmodified => "refresh_unmodified",
            Outcome::RefreshModified => "refresh_modified",
            Outcome::RefreshFailOld => "refresh_fail_old",
            Outcome::RefreshFailErr => "refresh_fail_err",
            Outcome::UnreachableStale => "unreachable_stale",
            Outcome::ClientRefresh => "client_refresh",
            Outcome::Bypass => "bypass",
            Outcome::OnlyIfCachedMiss => "only_if_cached_miss",
        }
    }

    /// Squid's access-log result code.
    pub fn squid_code(self) -> &'static str {
        match self {
            Outcome::MemHit => "TCP_MEM_HIT",
            Outcome::DiskHit | Outcome::StaleWhileRevalidate => "TCP_HIT",
            Outcome::NegativeHit => "TCP_NEGATIVE_HIT",
            Outcome::ImsHit => "TCP_IMS_HIT",
            Outcome::UriMiss | Outcome::VaryMiss | Outcome::Bypass | Outcome::OnlyIfCachedMiss => {
                "TCP_MISS"
            }
            Outcome::RefreshUnmodified => "TCP_REFRESH_UNMODIFIED",
            Outcome::RefreshModified => "TCP_REFRESH_MODIFIED",
            Outcome::RefreshFailOld | Outcome::UnreachableStale => "TCP_REFRESH_FAIL_OLD",
            Outcome::RefreshFailErr => "TCP_REFRESH_FAIL_ERR",
            Outcome::ClientRefresh => "TCP_CLIENT_REFRESH_MISS",
        }
    }

    /// True when a response with this outcome replaces a stored one
    /// (a revalidation that brought a new response).
    pub fn replaces_stored(self) -> bool {
        matches!(
            self,
            Outcome::RefreshModified | Outcome::RefreshFailErr | Outcome::ClientRefresh
        )
    }

    /// True when the response body came from the cache.
    pub fn is_hit(self) -> bool {
        matches!(
            self,
            Outcome::MemHit
                | Outcome::DiskHit
                | Outcome::NegativeHit
                | Outcome::ImsHit
                | Outcome::StaleWhileRevalidate
                | Outcome::RefreshUnmodified
                | Outcome::RefreshFailOld
                | Outcome::UnreachableStale
        )
    }

    /// The `Cache-Status` member for this outcome (RFC 9211 §2):
    /// `<name>; hit` or `<name>; fwd=<reason>[; fwd-status=N]`. No `stored`
    /// (RFC 9211 §2.5): the head goes out before the body is in, so whether
    /// it will be stored is not known yet; a response that will not be
    /// stored says why in its `detail`.
    pub fn cache_status(self, name: &str, fwd_status: Option<u16>) -> String {
        self.cache_status_with(name, fwd_status, None)
    }

    /// [`Outcome::cache_status`] with the response's remaining freshness
    /// (`ttl`, RFC 9211 §2.4; negative when stale) after `hit`.
    pub fn cache_status_with(
        self,
        name: &str,
        fwd_status: Option<u16>,
        ttl: Option<i64>,
    ) -> String {
        let mut s = String::with_capacity(48);
        s.push_str(name);
        let ttl_param = |s: &mut String| {
            if let Some(ttl) = ttl {
                s.push_str("; ttl=");
                s.push_str(&ttl.to_string());
            }
        };
        let fwd = match self {
            Outcome::MemHit | Outcome::DiskHit | Outcome::NegativeHit | Outcome::ImsHit => {
                s.push_str("; hit");
                ttl_param(&mut s);
                None
            }
            Outcome::UnreachableStale => {
                s.push_str("; hit");
                ttl_param(&mut s);
                s.push_str("; detail=origin-unreachable");
                None
            }
            Outcome::StaleWhileRevalidate => {
                s.push_str("; hit; detail=stale-while-revalidate");
                None
            }
            Outcome::RefreshFailOld => {
                s.push_str("; hit; fwd=stale; detail=stale-if-error");
                None
            }
            Outcome::UriMiss => Some("uri-miss"),
            Outcome::VaryMiss => Some("vary-miss"),
            Outcome::RefreshUnmodified | Outcome::RefreshModified | Outcome::RefreshFailErr => {
                Some("stale")
            }
            Outcome::ClientRefresh => Some("request"),
            Outcome::Bypass => Some("bypass"),
            Outcome::OnlyIfCachedMiss => {
                s.push_str("; fwd=miss; detail=only-if-cached");
                None
            }
        };
        if let Some(fwd) = fwd {
            s.push_str("; fwd=");
            s.push_str(fwd);
        }
        if let Some(code) = fwd_status {
            s.push_str("; fwd-status=");
            s.push_str(&code.to_string());
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_status_follows_rfc_9211_syntax() {
        // RFC 9211 §2.1 (hit), §2.2 (fwd), §2.3 (fwd-status).
        assert_eq!(
            Outcome::MemHit.cache_status("cachalot", None),
            "cachalot; hit"
        );
        assert_eq!(
            Outcome::UriMiss.cache_status("cachalot", Some(200)),
            "cachalot; fwd=uri-miss; fwd-status=200"
        );
        assert_eq!(
            Outcome::RefreshUnmodified.cache_status("c", Some(304)),
            "c; fwd=stale; fwd-status=304"
        );
    }

    #[test]
    fn stale_on_an_unreachable_origin_is_a_hit_with_a_negative_ttl() {
        // RFC 9211 §2.1 (hit), §2.4 (ttl, negative when stale), §2.8 (detail).
        assert_eq!(
            Outcome::UnreachableStale.cache_status_with("cachalot", None, Some(-3600)),
            "cachalot; hit; ttl=-3600; detail=origin-unreachable"
        );
        assert_eq!(
            Outcome::MemHit.cache_status_with("c", None, Some(42)),
            "c; hit; ttl=42"
        );
        assert_eq!(
            Outcome::MemHit.cache_status_with("c", None, None),
            Outcome::MemHit.cache_status("c", None)
        );
    }

    #[test]
    fn squid_codes_match_squid_names() {
        assert_eq!(Outcome::MemHit.squid_code(), "TCP_MEM_HIT");
        assert_eq!(Outcome::DiskHit.squid_code(), "TCP_HIT");
        assert_eq!(Outcome::RefreshFailOld.squid_code(), "TCP_REFRESH_FAIL_OLD");
        assert_eq!(
            Outcome::UnreachableStale.squid_code(),
            "TCP_REFRESH_FAIL_OLD"
        );
        assert!(Outcome::UnreachableStale.is_hit());
        assert!(Outcome::RefreshUnmodified.is_hit());
        assert!(!Outcome::UriMiss.is_hit());
    }
}
