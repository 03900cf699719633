//! The hit definition of `cachalot stats`: which Squid result codes count as
//! cache hits and which lines belong to cacheable traffic. Pure; the single
//! place where these lists live, so the report can print what it used.

/// Result codes that count as hits: exactly those of Squid's
/// `LogTags::isTcpHit()` (Squid 3 to 7), which are also the codes our own
/// `Outcome::is_hit` logs, then the Squid 2.7 names of the same outcomes
/// (its `isTcpHit()`), so that old logs are read the same way.
pub const HIT_CODES: &[&str] = &[
    "TCP_HIT",
    "TCP_MEM_HIT",
    "TCP_IMS_HIT",
    "TCP_INM_HIT",
    "TCP_REFRESH_UNMODIFIED",
    "TCP_REFRESH_FAIL_OLD",
    "TCP_NEGATIVE_HIT",
    "TCP_OFFLINE_HIT",
    // Squid 2.7 only.
    "TCP_STALE_HIT",
    "TCP_ASYNC_HIT",
    "TCP_REFRESH_HIT",
    "TCP_REFRESH_FAIL_HIT",
];

/// Squid decorates a result code with these; none changes hit or miss
/// (Squid's own test looks at the base code only): `_CF` after the protocol
/// (collapsed forwarding), and the trailing `_IGNORED`, `_TIMEDOUT`,
/// `_ABORTED`.
pub const IGNORED_MODIFIERS: &[&str] = &["_CF", "_IGNORED", "_TIMEDOUT", "_ABORTED"];

/// Base codes left out of cacheable traffic although they start with `TCP_`:
/// tunnels (the proxy never sees the content), refusals and redirector
/// answers (nothing was fetched, so nothing could be cached).
pub const NOT_CACHEABLE_CODES: &[&str] = &[
    "TCP_TUNNEL",
    "TCP_DENIED",
    "TCP_DENIED_REPLY",
    "TCP_REDIRECT",
];

/// One sentence per denominator, printed with every report.
pub const ALL_TRAFFIC: &str = "all traffic: every well-formed line within --since/--until";
/// See [`ALL_TRAFFIC`].
pub const CACHEABLE_TRAFFIC: &str = "cacheable traffic: all traffic whose result code starts \
with TCP_, except TCP_TUNNEL, TCP_DENIED, TCP_DENIED_REPLY and TCP_REDIRECT and except CONNECT \
requests; so NONE, NONE_NONE, TAG_NONE (errors before any result), UDP_* (ICP queries) and \
codes of other software are left out too";

/// What a result code means for the ratios.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Class {
    /// The response came from the cache.
    pub hit: bool,
    /// The line belongs to cacheable traffic (method permitting).
    pub cacheable: bool,
}

/// Classifies a result code as logged, modifiers and all (`TCP_CF_HIT`,
/// `TCP_MISS_ABORTED`...). A CONNECT request is never cacheable whatever its
/// code; that test is the caller's, as it needs the method.
pub fn classify(code: &str) -> Class {
    let base = base_code(code);
    let hit = HIT_CODES.contains(&base.as_ref());
    let cacheable =
        hit || (base.starts_with("TCP_") && !NOT_CACHEABLE_CODES.contains(&base.as_ref()));
    Class { hit, cacheable }
}

/// The code without Squid's modifiers: `TCP_CF_HIT_ABORTED` → `TCP_HIT`.
pub fn base_code(code: &str) -> std::borrow::Cow<'_, str> {
    let mut base = code;
    while let Some(stripped) = ["_IGNORED", "_TIMEDOUT", "_ABORTED"]
        .iter()
        .find_map(|suffix| base.strip_suffix(suffix))
    {
        base = stripped;
    }
    match base
        .split_once('_')
        .and_then(|(protocol, rest)| Some((protocol, rest.strip_prefix("CF_")?)))
    {
        Some((protocol, rest)) => std::borrow::Cow::Owned(format!("{protocol}_{rest}")),
        None => std::borrow::Cow::Borrowed(base),
    }
}

/// True when `code` counts as a hit; the one hit test of the proxy's
/// metrics, its access-log accounting and `cachalot stats`.
pub fn is_hit(code: &str) -> bool {
    classify(code).hit
}

#[cfg(test)]
mod tests {
    use super::*;

    const HIT: Class = Class {
        hit: true,
        cacheable: true,
    };
    const MISS: Class = Class {
        hit: false,
        cacheable: true,
    };
    const OTHER: Class = Class {
        hit: false,
        cacheable: false,
    };

    #[test]
    fn squid_is_tcp_hit_codes_are_hits() {
        for code in [
            "TCP_HIT",
            "TCP_MEM_HIT",
            "TCP_IMS_HIT",
            "TCP_INM_HIT",
            "TCP_REFRESH_UNMODIFIED",
            "TCP_REFRESH_FAIL_OLD",
            "TCP_NEGATIVE_HIT",
            "TCP_OFFLINE_HIT",
        ] {
            assert_eq!(classify(code), HIT, "{code}");
        }
    }

    #[test]
    fn our_own_hit_outcomes_agree_with_the_list() {
        use crate::cache::outcome::Outcome;
        let all = [
            Outcome::MemHit,
            Outcome::DiskHit,
            Outcome::NegativeHit,
            Outcome::ImsHit,
            Outcome::StaleWhileRevalidate,
            Outcome::UriMiss,
            Outcome::VaryMiss,
            Outcome::RefreshUnmodified,
            Outcome::RefreshModified,
            Outcome::RefreshFailOld,
            Outcome::RefreshFailErr,
            Outcome::UnreachableStale,
            Outcome::ClientRefresh,
            Outcome::Bypass,
            Outcome::OnlyIfCachedMiss,
        ];
        for outcome in all {
            let expected = if outcome.is_hit() { HIT } else { MISS };
            assert_eq!(classify(outcome.squid_code()), expected, "{outcome:?}");
        }
    }

    #[test]
    fn misses_are_cacheable_but_not_hits() {
        for code in [
            "TCP_MISS",
            "TCP_REFRESH_MODIFIED",
            "TCP_REFRESH_FAIL_ERR",
            "TCP_CLIENT_REFRESH_MISS",
            "TCP_SWAPFAIL_MISS",
        ] {
            assert_eq!(classify(code), MISS, "{code}");
        }
    }

    #[test]
    fn tunnels_refusals_and_errors_are_not_cacheable() {
        for code in [
            "TCP_TUNNEL",
            "TCP_DENIED",
            "TCP_DENIED_REPLY",
            "TCP_REDIRECT",
            "NONE",
            "NONE_NONE",
            "TAG_NONE",
            "NONE_NONE_ABORTED",
            "UDP_HIT",
            "UDP_MISS",
            "TCP_TUNNEL_ABORTED",
            "whatever",
        ] {
            assert_eq!(classify(code), OTHER, "{code}");
        }
    }

    #[test]
    fn modifiers_do_not_change_the_class() {
        assert_eq!(base_code("TCP_CF_HIT"), "TCP_HIT");
        assert_eq!(base_code("TCP_HIT_ABORTED"), "TCP_HIT");
        assert_eq!(base_code("TCP_CF_MEM_HIT_TIMEDOUT_ABORTED"), "TCP_MEM_HIT");
        assert_eq!(
            base_code("TCP_REFRESH_UNMODIFIED_IGNORED"),
            "TCP_REFRESH_UNMODIFIED"
        );
        assert_eq!(classify("TCP_CF_HIT"), HIT);
        assert_eq!(classify("TCP_MISS_ABORTED"), MISS);
    }
}
