//! Tests of ACL compilation and matching, one per condition type, plus the
//! shipped defaults and the bypass forms.

use super::*;

fn rule(action: Action) -> RuleConfig {
    RuleConfig {
        action: Some(action),
        ..RuleConfig::default()
    }
}

fn subject<'a>(src: &str, host: &'a Host, port: u16, method: &'a Method, dst: &str) -> Subject<'a> {
    Subject {
        src: src.parse().unwrap(),
        host,
        port,
        method,
        user: None,
        dst: dst.parse().unwrap(),
    }
}

fn host(h: &str) -> Host {
    Host::parse(h).unwrap()
}

#[test]
fn first_match_wins_and_nothing_matching_is_denied() {
    let mut deny = rule(Action::Deny);
    deny.dst_domain = vec!["ads.example.com".into()];
    let mut allow = rule(Action::Allow);
    allow.src = vec!["192.168.0.0/16".into()];
    let rules = Rules::compile(&[deny, allow], false).unwrap();
    let (ads, other, get) = (host("ads.example.com"), host("example.org"), Method::GET);
    assert_eq!(
        rules.evaluate(&subject("192.168.1.2", &ads, 80, &get, "1.2.3.4")),
        Decision::Deny(Some(0))
    );
    assert_eq!(
        rules.evaluate(&subject("192.168.1.2", &other, 80, &get, "1.2.3.4")),
        Decision::Allow(1)
    );
    assert_eq!(
        rules.evaluate(&subject("8.8.8.8", &other, 80, &get, "1.2.3.4")),
        Decision::Deny(None)
    );
    assert_eq!(rules.label(None), "the implicit final deny");
}

#[test]
fn each_condition_type_matches_as_written() {
    let get = Method::GET;
    let connect = Method::CONNECT;
    let h = host("www.example.com");
    let base = subject("10.0.0.1", &h, 443, &get, "93.184.216.34");
    let check = |r: RuleConfig, s: Subject<'_>| {
        Rules::compile(&[r], true).unwrap().evaluate(&s) == Decision::Allow(0)
    };
    let mut r = rule(Action::Allow);
    r.src = vec!["10.0.0.0/8".into()];
    assert!(check(r.clone(), base));
    assert!(!check(
        r,
        Subject {
            src: "11.0.0.1".parse().unwrap(),
            ..base
        }
    ));
    let mut r = rule(Action::Allow);
    r.dst = vec!["93.184.0.0/16".into()];
    assert!(check(r.clone(), base));
    assert!(!check(
        r,
        Subject {
            dst: "127.0.0.1".parse().unwrap(),
            ..base
        }
    ));
    let mut r = rule(Action::Allow);
    r.port = vec![443];
    assert!(check(r.clone(), base));
    assert!(!check(r, Subject { port: 8443, ..base }));
    let mut r = rule(Action::Allow);
    r.method = vec!["connect".into()];
    assert!(!check(r.clone(), base));
    assert!(check(
        r,
        Subject {
            method: &connect,
            ..base
        }
    ));
    let mut r = rule(Action::Allow);
    r.user = vec!["alice".into()];
    assert!(
        !check(r.clone(), base),
        "a user rule needs an authenticated user"
    );
    assert!(!check(
        r.clone(),
        Subject {
            user: Some("bob"),
            ..base
        }
    ));
    assert!(check(
        r,
        Subject {
            user: Some("alice"),
            ..base
        }
    ));
}

#[test]
fn domain_forms_exact_suffix_and_wildcard() {
    let get = Method::GET;
    let matches = |pattern: &str, h: &str| {
        let mut r = rule(Action::Allow);
        r.dst_domain = vec![pattern.into()];
        let h = host(h);
        Rules::compile(&[r], false)
            .unwrap()
            .evaluate(&subject("10.0.0.1", &h, 80, &get, "1.1.1.1"))
            == Decision::Allow(0)
    };
    assert!(matches("example.com", "EXAMPLE.com."));
    assert!(!matches("example.com", "www.example.com"));
    assert!(matches(".example.com", "example.com"));
    assert!(matches(".example.com", "a.b.example.com"));
    assert!(!matches(".example.com", "badexample.com"));
    assert!(matches("*.tracker.example", "x.tracker.example"));
    assert!(!matches("*.tracker.example", "tracker.example"));
    assert!(
        matches("bücher.example", "xn--bcher-kva.example"),
        "IDN in punycode"
    );
    assert!(
        matches("127.0.0.1", "2130706433"),
        "IP literal forms normalized"
    );
}

#[test]
fn ipv4_mapped_addresses_match_ipv4_rules() {
    let mut r = rule(Action::Deny);
    r.dst = vec!["127.0.0.0/8".into()];
    let rules = Rules::compile(&[r], false).unwrap();
    let (h, get) = (host("x.example"), Method::GET);
    assert_eq!(
        rules.evaluate(&subject("10.0.0.1", &h, 80, &get, "::ffff:127.0.0.1")),
        Decision::Deny(Some(0))
    );
}

#[test]
fn shipped_defaults_let_lan_in_and_keep_others_out() {
    let config = crate::config::Config::defaults(std::path::Path::new(".")).unwrap();
    let rules = Rules::compile(&config.acl, false).unwrap();
    let (h, get) = (host("example.com"), Method::GET);
    for lan in [
        "127.0.0.1",
        "::1",
        "10.1.2.3",
        "172.16.5.5",
        "192.168.1.1",
        "fd00::1",
        "fe80::1",
        "169.254.1.1",
    ] {
        assert!(
            matches!(
                rules.evaluate(&subject(lan, &h, 80, &get, "1.1.1.1")),
                Decision::Allow(_)
            ),
            "{lan}"
        );
    }
    for wan in ["8.8.8.8", "2001:db8::1", "172.32.0.1"] {
        assert!(
            matches!(
                rules.evaluate(&subject(wan, &h, 80, &get, "1.1.1.1")),
                Decision::Deny(_)
            ),
            "{wan}"
        );
    }
}

#[test]
fn bad_rules_are_refused_with_their_keys() {
    let mut r = rule(Action::Allow);
    r.src = vec!["10.0.0.0/33".into()];
    r.method = vec!["G E T".into()];
    r.user = vec!["alice".into()];
    let errors = Rules::compile(&[RuleConfig::default(), r], false).unwrap_err();
    let keys: Vec<_> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "acl[0].action",
            "acl[1].src",
            "acl[1].method",
            "acl[1].user"
        ]
    );
}
