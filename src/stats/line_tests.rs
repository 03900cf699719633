//! Tests of the access-log line parser.

use super::*;

#[test]
fn parses_the_squid_native_example() {
    let line = b"1732471234.567    12 192.168.1.10 TCP_MEM_HIT/200 1534 GET http://example.com/a.png - HIER_NONE/- image/png\n";
    assert_eq!(
        parse(line),
        Some(Entry {
            millis: 1_732_471_234_567,
            code: "TCP_MEM_HIT",
            status: 200,
            bytes: 1534,
            connect: false,
            method: "GET",
            url: "http://example.com/a.png",
            host: "example.com",
            content_type: "image/png",
        })
    );
}

#[test]
fn tabs_crlf_and_padding_are_whitespace() {
    let line = b"  1.5\t  7 ::1 TCP_MISS/304 0 GET http://a/ - DIRECT/1.2.3.4 -\r\n";
    let entry = parse(line).unwrap();
    assert_eq!(entry.millis, 1500);
    assert_eq!(entry.status, 304);
    assert_eq!(entry.content_type, "-");
}

#[test]
fn exactly_ten_fields() {
    let nine = b"1.000 1 c TCP_MISS/200 1 GET http://a/ - DIRECT/b";
    assert_eq!(parse(nine), None);
    let eleven = b"1.000 1 c TCP_MISS/200 1 GET http://a/ - DIRECT/b text/html extra";
    assert_eq!(parse(eleven), None);
    assert_eq!(parse(b""), None);
    assert_eq!(parse(b"   \n"), None);
}

#[test]
fn bad_numbers_and_codes_are_malformed() {
    let ok = "1.000 1 c TCP_MISS/200 1 GET http://a/ - DIRECT/b text/html";
    assert!(parse(ok.as_bytes()).is_some());
    for bad in [
        "x.000 1 c TCP_MISS/200 1 GET http://a/ - DIRECT/b text/html",
        "1.0x0 1 c TCP_MISS/200 1 GET http://a/ - DIRECT/b text/html",
        "1.000 z c TCP_MISS/200 1 GET http://a/ - DIRECT/b text/html",
        "1.000 1 c TCP_MISS 1 GET http://a/ - DIRECT/b text/html",
        "1.000 1 c /200 1 GET http://a/ - DIRECT/b text/html",
        "1.000 1 c TCP_MISS/2x0 1 GET http://a/ - DIRECT/b text/html",
        "1.000 1 c TCP_MISS/99999 1 GET http://a/ - DIRECT/b text/html",
        "1.000 1 c TCP_MISS/200 -1 GET http://a/ - DIRECT/b text/html",
        "1.000 1 c TCP_MISS/200 99999999999999999999 GET http://a/ - DIRECT/b text/html",
    ] {
        assert_eq!(parse(bad.as_bytes()), None, "{bad}");
    }
    // Squid may log a negative elapsed time after a clock step.
    assert!(parse(b"1.000 -1 c TCP_MISS/200 1 GET http://a/ - DIRECT/b -").is_some());
}

#[test]
fn timestamps_to_milliseconds() {
    assert_eq!(parse_time(b"1732471234.567"), Some(1_732_471_234_567));
    assert_eq!(parse_time(b"1732471234"), Some(1_732_471_234_000));
    assert_eq!(parse_time(b"1732471234.5"), Some(1_732_471_234_500));
    assert_eq!(parse_time(b"1732471234.56789"), Some(1_732_471_234_567));
    assert_eq!(parse_time(b".5"), None);
    assert_eq!(parse_time(b"-1.000"), None);
}

fn host(url: &str, connect: bool) -> &str {
    std::str::from_utf8(host_of(url.as_bytes(), connect)).unwrap()
}

#[test]
fn hosts_from_urls_and_connect_authorities() {
    assert_eq!(host("http://example.com/a.png", false), "example.com");
    assert_eq!(host("http://Example.COM:8080/x?y", false), "Example.COM");
    assert_eq!(host("http://user:pw@example.com/", false), "example.com");
    assert_eq!(host("http://example.com./", false), "example.com");
    assert_eq!(host("http://example.com?q", false), "example.com");
    assert_eq!(host("http://[2001:db8::1]:80/", false), "[2001:db8::1]");
    assert_eq!(host("example.com:443", true), "example.com");
    assert_eq!(host("[::1]:443", true), "[::1]");
    assert_eq!(host("error:invalid-request", false), "-");
    assert_eq!(host("-", false), "-");
    assert_eq!(host("http:///nohost", false), "-");
}

#[test]
fn content_type_is_cut_at_the_semicolon() {
    assert_eq!(media_type(b"text/html;charset=utf-8"), b"text/html");
    assert_eq!(media_type(b"text/html"), b"text/html");
    assert_eq!(media_type(b";x"), b"-");
    assert_eq!(media_type(b"-"), b"-");
}

#[test]
fn connect_lines() {
    let line = b"1.000 50 c TCP_TUNNEL/200 4000 CONNECT example.com:443 - HIER_DIRECT/1.2.3.4 -";
    let entry = parse(line).unwrap();
    assert!(entry.connect);
    assert_eq!(entry.host, "example.com");
}
