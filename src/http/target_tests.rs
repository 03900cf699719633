//! Tests of request-target classification and host normalization.

use super::*;

fn http(uri: &str) -> Result<(String, Authority), ProxyError> {
    match classify(&Method::GET, &uri.parse().unwrap())? {
        Target::Http { uri, authority } => Ok((uri.to_string(), authority)),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn absolute_form_is_normalized() {
    // RFC 9112 §3.2.2; RFC 9110 §4.2.3 (case, default port, empty path).
    let (uri, a) = http("http://WWW.Example.COM:80").unwrap();
    assert_eq!(uri, "http://www.example.com/");
    assert_eq!(a.port, 80);
    let (uri, a) = http("http://example.com:8080/a/b?x=1&Y=2").unwrap();
    assert_eq!(uri, "http://example.com:8080/a/b?x=1&Y=2");
    assert_eq!(a.port, 8080);
    let (uri, _) = http("http://example.com./p").unwrap();
    assert_eq!(uri, "http://example.com/p");
}

#[test]
fn origin_form_is_refused_as_not_a_proxy_request() {
    let err = classify(&Method::GET, &"/index.html".parse().unwrap()).unwrap_err();
    assert!(matches!(err, ProxyError::OriginForm));
    let err = classify(&Method::OPTIONS, &"*".parse().unwrap()).unwrap_err();
    assert!(matches!(err, ProxyError::OriginForm));
}

#[test]
fn https_and_other_schemes_are_not_forwarded() {
    let err = http("https://example.com/").unwrap_err();
    assert!(matches!(err, ProxyError::UnsupportedScheme(s) if s == "https"));
    assert!(matches!(
        http("ftp://example.com/").unwrap_err(),
        ProxyError::UnsupportedScheme(_)
    ));
}

#[test]
fn userinfo_is_refused() {
    assert!(matches!(
        http("http://user:pw@example.com/").unwrap_err(),
        ProxyError::BadTarget(_)
    ));
}

#[test]
fn ip_literals_in_every_spelling_normalize() {
    for spelling in [
        "127.0.0.1",
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "127.1",
        "0x7f.1",
        "[::ffff:127.0.0.1]",
    ] {
        let (_, a) = http(&format!("http://{spelling}/")).unwrap();
        assert_eq!(a.host, Host::Ip("127.0.0.1".parse().unwrap()), "{spelling}");
    }
    let (uri, a) = http("http://[::1]:8080/").unwrap();
    assert_eq!(a.host, Host::Ip("::1".parse().unwrap()));
    assert_eq!(uri, "http://[::1]:8080/");
}

#[test]
fn idn_becomes_punycode() {
    let a = Host::parse("BÜCHER.example").unwrap();
    assert_eq!(a, Host::Domain("xn--bcher-kva.example".into()));
}

#[test]
fn connect_takes_host_and_port() {
    let t = classify(&Method::CONNECT, &"Example.com:443".parse().unwrap()).unwrap();
    assert_eq!(
        t,
        Target::Connect(Authority {
            host: Host::Domain("example.com".into()),
            port: 443
        })
    );
    assert!(classify(&Method::CONNECT, &"example.com".parse().unwrap()).is_err());
    assert!(classify(&Method::CONNECT, &"/path".parse().unwrap()).is_err());
}

#[test]
fn bad_ports_are_refused() {
    assert!(http("http://example.com:0/").is_err());
    assert!(http("http://example.com:99999/").is_err());
}

#[test]
fn a_port_is_digits_only() {
    // RFC 9110 §4.2.3 / RFC 3986 §3.2.3: port = *DIGIT.
    for bad in ["127.0.0.1:+443", "example.com:+80", "example.com:44 3"] {
        if let Ok(uri) = bad.parse::<http::Uri>() {
            assert!(classify(&Method::CONNECT, &uri).is_err(), "{bad}");
        }
        if let Ok(uri) = format!("http://{bad}/").parse::<http::Uri>() {
            assert!(classify(&Method::GET, &uri).is_err(), "http://{bad}/");
        }
    }
    assert!(classify(&Method::CONNECT, &"example.com:0443".parse().unwrap()).is_ok());
}
