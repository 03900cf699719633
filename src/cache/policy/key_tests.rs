//! Tests for the primary cache key (RFC 9111 §2, RFC 9110 §4.2.3).

use super::*;

fn key(text: &str) -> Option<String> {
    cache_key(&text.parse::<Uri>().unwrap())
}

// RFC 9110 §4.2.3: scheme and host are case-insensitive.
#[test]
fn rfc9110_4_2_3_lower_cases_scheme_and_host_not_path() {
    assert_eq!(
        key("HTTP://Example.COM/A/b").as_deref(),
        Some("http://example.com/A/b")
    );
}

// RFC 9110 §4.2.3: the default port is dropped, others are kept.
#[test]
fn rfc9110_4_2_3_default_port() {
    assert_eq!(
        key("http://a.test:80/x").as_deref(),
        Some("http://a.test/x")
    );
    assert_eq!(
        key("https://a.test:443/x").as_deref(),
        Some("https://a.test/x")
    );
    assert_eq!(
        key("http://a.test:8080/x").as_deref(),
        Some("http://a.test:8080/x")
    );
    assert_eq!(
        key("https://a.test:80/x").as_deref(),
        Some("https://a.test:80/x")
    );
    assert_eq!(
        key("http://a.test:443/").as_deref(),
        Some("http://a.test:443/")
    );
}

// RFC 9110 §4.2.3: an empty path is equivalent to "/".
#[test]
fn rfc9110_4_2_3_empty_path_is_slash() {
    assert_eq!(key("http://a.test").as_deref(), Some("http://a.test/"));
    assert_eq!(
        key("http://a.test?q=1").as_deref(),
        Some("http://a.test/?q=1")
    );
}

// RFC 9111 §2: the query is part of the key, byte for byte.
#[test]
fn rfc9111_2_query_kept_verbatim() {
    assert_eq!(
        key("http://a.test/p?B=2&a=%41").as_deref(),
        Some("http://a.test/p?B=2&a=%41")
    );
    assert_ne!(
        key("http://a.test/p?a=1&b=2"),
        key("http://a.test/p?b=2&a=1")
    );
    assert_eq!(key("http://a.test/p?").as_deref(), Some("http://a.test/p?"));
}

// RFC 3986 §3.2.2: IPv6 literals keep their brackets; userinfo is dropped.
#[test]
fn rfc3986_3_2_2_ipv6_literal_and_userinfo() {
    assert_eq!(
        key("http://[2001:DB8::1]:8080/x").as_deref(),
        Some("http://[2001:db8::1]:8080/x")
    );
    assert_eq!(key("http://[::1]:80/").as_deref(), Some("http://[::1]/"));
    assert_eq!(
        key("http://user:pw@a.test/").as_deref(),
        Some("http://a.test/")
    );
}

// RFC 3986 §3.2.3: an empty port is the default; an invalid one is no key.
#[test]
fn rfc3986_3_2_3_empty_and_invalid_ports() {
    assert_eq!(key("http://a.test:/x").as_deref(), Some("http://a.test/x"));
    assert_eq!(
        key("http://a.test:080/x").as_deref(),
        Some("http://a.test/x")
    );
    assert_eq!(key("http://a.test:99999/x"), None);
    assert_eq!(key("http://:80/x"), None);
    let port = |t: &str| effective_port(&t.parse::<Uri>().unwrap());
    assert_eq!(port("https://a.test/"), Some(443));
    assert_eq!(port("http://a.test:8080/"), Some(8080));
    assert_eq!(port("ftp://a.test/"), None);
    assert_eq!(port("http://a.test:70000/"), None);
}

// No scheme or no authority: not a cacheable absolute target.
#[test]
fn rfc9111_2_needs_absolute_uri() {
    assert_eq!(key("/just/a/path"), None);
    assert_eq!(key("a.test:443"), None);
    assert_eq!(key("*"), None);
}
