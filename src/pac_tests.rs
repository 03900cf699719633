//! Tests of the PAC file: which requests get it, what it lists, and the
//! proxy host it names.

use super::*;

fn pac(proxy_host: &str, direct: &[&str]) -> PacConfig {
    PacConfig {
        enabled: true,
        proxy_host: proxy_host.into(),
        direct: direct.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn rule(action: Action, src: &[&str]) -> RuleConfig {
    RuleConfig {
        action: Some(action),
        src: src.iter().map(|s| (*s).to_owned()).collect(),
        ..RuleConfig::default()
    }
}

#[test]
fn only_get_and_head_of_the_two_paths_in_origin_form() {
    let on = pac("", &[]);
    let uri = |s: &str| s.parse::<Uri>().unwrap();
    assert!(wanted(&on, &Method::GET, &uri("/proxy.pac")));
    assert!(wanted(&on, &Method::HEAD, &uri("/wpad.dat")));
    assert!(wanted(&on, &Method::GET, &uri("/wpad.dat?x=1")));
    assert!(!wanted(&on, &Method::POST, &uri("/proxy.pac")));
    assert!(!wanted(&on, &Method::GET, &uri("/")));
    assert!(!wanted(&on, &Method::GET, &uri("/proxy.pac/x")));
    assert!(!wanted(
        &on,
        &Method::GET,
        &uri("http://example.com/proxy.pac")
    ));
    let off = PacConfig {
        enabled: false,
        ..on
    };
    assert!(!wanted(&off, &Method::GET, &uri("/proxy.pac")));
}

#[test]
fn lan_ranges_come_from_allow_rules_only_without_any_or_duplicates() {
    let rules = [
        rule(Action::Deny, &["192.0.2.0/24"]),
        rule(
            Action::Allow,
            &["10.0.0.0/8", "::ffff:172.16.0.0/108", "10.1.2.3"],
        ),
        rule(Action::Allow, &["10.0.0.0/8", "fc00::/7", "0.0.0.0/0"]),
    ];
    let nets: Vec<String> = lan_ranges(&rules).iter().map(|n| n.to_string()).collect();
    assert_eq!(
        nets,
        [
            "127.0.0.0/8",
            "::1/128",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "10.1.2.3/32",
            "fc00::/7"
        ]
    );
}

#[test]
fn the_script_lists_direct_domains_ranges_and_the_proxy() {
    let rules = [rule(Action::Allow, &["192.168.0.0/16", "fd00::/8"])];
    let text = script(
        &pac("", &["intranet.example", ".Corp.Example", "*.lab.example"]),
        &rules,
        "proxy.lan:3128",
    );
    for needle in [
        "function FindProxyForURL(url, host)",
        "isPlainHostName(host)",
        "host == \"intranet.example\"",
        "host == \"corp.example\"",
        "dnsDomainIs(host, \".corp.example\")",
        "dnsDomainIs(host, \".lab.example\")",
        "isInNet(ip, \"127.0.0.0\", \"255.0.0.0\")",
        "isInNet(ip, \"192.168.0.0\", \"255.255.0.0\")",
        "isInNetEx(v6, \"fd00::/8\")",
        "return \"PROXY proxy.lan:3128\";",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    assert!(!text.contains("host == \"lab.example\""), "{text}");
}

#[test]
fn javascript_strings_are_escaped() {
    assert_eq!(js("a\"b\\c"), "\"a\\\"b\\\\c\"");
    assert_eq!(js("é\n"), "\"\\u{e9}\\u{a}\"");
}

#[test]
fn the_proxy_host_is_the_configured_one_or_the_request_host() {
    let field = |v: &str| HeaderValue::from_str(v).unwrap();
    let host = |pac: &PacConfig, v: Option<&str>| {
        proxy_host(pac, v.map(field).as_ref()).map(|h| h.to_string())
    };
    let from_request = pac("", &[]);
    assert_eq!(
        host(&from_request, Some("Proxy.LAN:8080")).unwrap(),
        "proxy.lan"
    );
    assert_eq!(host(&from_request, Some("[::1]:3128")).unwrap(), "[::1]");
    assert_eq!(host(&from_request, Some("10.0.0.1")).unwrap(), "10.0.0.1");
    assert!(host(&from_request, None).is_err());
    assert!(host(&from_request, Some("bad host")).is_err());
    let fixed = pac("GW.example", &[]);
    assert_eq!(host(&fixed, Some("other.example")).unwrap(), "gw.example");

    let response = answer(&from_request, &[], 3128, Some(&field("proxy.lan"))).unwrap();
    assert_eq!(response.headers()[CONTENT_TYPE], CONTENT_TYPE_PAC);
    assert_eq!(response.headers()[VARY], "Host");
    let response = answer(&fixed, &[], 3128, None).unwrap();
    assert!(!response.headers().contains_key(VARY));
}

#[test]
fn validation_names_the_keys() {
    assert!(validate(&pac("proxy.lan", &[".ok.example"])).is_empty());
    let errors = validate(&pac("not a host", &["10.0.0.1", "bad/"]));
    let keys: Vec<_> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["pac.proxy_host", "pac.direct", "pac.direct"]);
}
