//! Tests for Cache-Control parsing (RFC 9111 §5.2, RFC 5861, RFC 8246).

use super::*;
use http::HeaderValue;

fn cc(lines: &[&str]) -> CacheControl {
    CacheControl::from_headers(&headers(header::CACHE_CONTROL, lines))
}

fn headers(name: header::HeaderName, lines: &[&str]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for line in lines {
        h.append(name.clone(), HeaderValue::from_str(line).unwrap());
    }
    h
}

// RFC 9111 §5.2: every directive, names case-insensitive, several lines.
#[test]
fn rfc9111_5_2_parses_all_directives_across_lines() {
    let c = cc(&[
        "Max-Age=60, S-MAXAGE=120, no-store, public, must-revalidate",
        "proxy-revalidate, immutable, no-transform, only-if-cached",
        "min-fresh=5, stale-while-revalidate=30, stale-if-error=600, max-stale=9",
    ]);
    assert_eq!(c.max_age, Some(60));
    assert_eq!(c.s_maxage, Some(120));
    assert!(c.no_store && c.public && c.must_revalidate && c.proxy_revalidate);
    assert!(c.immutable && c.no_transform && c.only_if_cached);
    assert_eq!(c.min_fresh, Some(5));
    assert_eq!(c.stale_while_revalidate, Some(30));
    assert_eq!(c.stale_if_error, Some(600));
    assert_eq!(c.max_stale, Some(MaxStale::Seconds(9)));
    assert_eq!(c.no_cache, FieldDirective::Absent);
    assert_eq!(c.private, FieldDirective::Absent);
}

// RFC 9111 §5.2: quoted-string arguments are accepted too.
#[test]
fn rfc9111_5_2_quoted_arguments() {
    assert_eq!(cc(&["max-age=\"60\""]).max_age, Some(60));
    assert_eq!(cc(&["max-age = 60"]).max_age, Some(60));
    let c = cc(&["no-cache=\"Set-Cookie, X-Foo\", private=\"a\\\"b\""]);
    assert_eq!(
        c.no_cache,
        FieldDirective::Fields(vec!["set-cookie".into(), "x-foo".into()])
    );
    assert_eq!(c.private, FieldDirective::Fields(vec!["a\"b".into()]));
}

// RFC 9111 §5.2.2.4 / §5.2.2.7: unqualified vs qualified forms.
#[test]
fn rfc9111_5_2_2_4_field_directives() {
    assert_eq!(cc(&["no-cache"]).no_cache, FieldDirective::All);
    assert_eq!(cc(&["private"]).private, FieldDirective::All);
    assert_eq!(cc(&["private=\"\""]).private, FieldDirective::All);
    assert_eq!(cc(&["private=x-a"]).private.fields(), ["x-a".to_owned()]);
    // Repeats merge; the unqualified form wins.
    let merged = cc(&["no-cache=\"a\"", "no-cache=\"b, a\""]).no_cache;
    assert_eq!(merged, FieldDirective::Fields(vec!["a".into(), "b".into()]));
    assert_eq!(cc(&["private=\"a\", private"]).private, FieldDirective::All);
    assert_eq!(cc(&["private, private=\"a\""]).private, FieldDirective::All);
}

// RFC 9111 §1.2.2: overflowing delta-seconds become 2^31.
#[test]
fn rfc9111_1_2_2_overflow_saturates_to_2_pow_31() {
    assert_eq!(cc(&["max-age=99999999999999999999"]).max_age, Some(1 << 31));
    assert_eq!(
        cc(&["s-maxage=4294967296"]).s_maxage,
        Some(DELTA_SECONDS_MAX)
    );
    assert_eq!(cc(&["max-age=2147483647"]).max_age, Some(2_147_483_647));
    assert_eq!(delta_seconds("0007"), Some(7));
}

// RFC 9111 §4.2.1: invalid freshness is treated as stale (max-age 0);
// other invalid arguments never widen what may be served.
#[test]
fn rfc9111_4_2_1_invalid_arguments() {
    for bad in [
        "max-age=abc",
        "max-age=-1",
        "max-age",
        "max-age=1.5",
        "max-age=+5",
    ] {
        assert_eq!(cc(&[bad]).max_age, Some(0), "{bad}");
    }
    assert_eq!(cc(&["s-maxage="]).s_maxage, Some(0));
    assert_eq!(cc(&["max-stale=soon"]).max_stale, None);
    assert_eq!(cc(&["min-fresh=x, stale-if-error=-3"]).min_fresh, None);
    assert_eq!(cc(&["stale-while-revalidate"]).stale_while_revalidate, None);
}

// RFC 9111 §4.2.1: duplicated directives keep the most restrictive value.
#[test]
fn rfc9111_4_2_1_duplicates_most_restrictive() {
    assert_eq!(cc(&["max-age=60, max-age=10"]).max_age, Some(10));
    assert_eq!(cc(&["max-age=10", "max-age=60"]).max_age, Some(10));
    assert_eq!(cc(&["min-fresh=5, min-fresh=50"]).min_fresh, Some(50));
    assert_eq!(
        cc(&["max-stale, max-stale=5"]).max_stale,
        Some(MaxStale::Seconds(5))
    );
    assert_eq!(
        cc(&["max-stale=5, max-stale"]).max_stale,
        Some(MaxStale::Seconds(5))
    );
    assert_eq!(
        cc(&["stale-if-error=9, stale-if-error=3"]).stale_if_error,
        Some(3)
    );
}

// RFC 9111 §5.2.1.2: max-stale without a value accepts any staleness.
#[test]
fn rfc9111_5_2_1_2_max_stale_forms() {
    assert_eq!(cc(&["max-stale"]).max_stale, Some(MaxStale::Any));
    let limited = MaxStale::Seconds(10);
    assert!(limited.accepts(std::time::Duration::from_secs(10)));
    assert!(!limited.accepts(std::time::Duration::from_millis(10_001)));
    assert!(MaxStale::Any.accepts(std::time::Duration::MAX));
}

// RFC 9111 §5.2: unknown and malformed directives are ignored, never a panic.
#[test]
fn rfc9111_5_2_tolerates_garbage() {
    let c = cc(&[
        ",,, ,public,,",
        "foo=\"bar, max-age=1\", x y=2, =5, max-age=7",
    ]);
    assert!(c.public);
    assert_eq!(
        c.max_age,
        Some(7),
        "max-age inside a quoted string is not a directive"
    );
    let unterminated = cc(&["no-cache=\"a, b"]);
    assert_eq!(
        unterminated.no_cache.fields(),
        ["a".to_owned(), "b".to_owned()]
    );
    let mut h = HeaderMap::new();
    h.append(
        header::CACHE_CONTROL,
        HeaderValue::from_bytes(b"\xff\xfe=1, no-store, max-age=\xc3\x28").unwrap(),
    );
    let c = CacheControl::from_headers(&h);
    assert!(c.no_store);
    assert_eq!(c.max_age, Some(0));
    assert_eq!(
        CacheControl::from_headers(&HeaderMap::new()),
        CacheControl::default()
    );
}

// RFC 9111 §5.4: Pragma: no-cache counts only without Cache-Control.
#[test]
fn rfc9111_5_4_pragma_no_cache() {
    assert!(request_no_cache(&headers(header::PRAGMA, &["No-Cache"])));
    assert!(request_no_cache(&headers(header::PRAGMA, &["x, no-cache"])));
    assert!(!request_no_cache(&headers(header::PRAGMA, &["no-cachex"])));
    let mut both = headers(header::PRAGMA, &["no-cache"]);
    both.append(header::CACHE_CONTROL, HeaderValue::from_static("max-age=5"));
    assert!(!request_no_cache(&both));
    assert!(request_no_cache(&headers(
        header::CACHE_CONTROL,
        &["no-cache"]
    )));
    assert!(!request_no_cache(&HeaderMap::new()));
}

// RFC 9111 §5.2.2.3: must-understand is parsed, in any case, alone or with
// an (ignored) argument.
#[test]
fn rfc9111_5_2_2_3_must_understand_parsed() {
    assert!(cc(&["must-understand, no-store"]).must_understand);
    assert!(cc(&["no-store", "Must-Understand"]).must_understand);
    assert!(cc(&["must-understand=1"]).must_understand);
    assert!(!cc(&["must-understandable, no-store"]).must_understand);
    assert!(!cc(&["no-store"]).must_understand);
}
