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
        dst: Dst::Known(dst.parse().unwrap()),
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
    let rules = Rules::compile(&[deny, allow], false, &[]).unwrap();
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
        Rules::compile(&[r], true, &[]).unwrap().evaluate(&s) == Decision::Allow(0)
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
            dst: Dst::Known("127.0.0.1".parse().unwrap()),
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
        Rules::compile(&[r], false, &[])
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
    let rules = Rules::compile(&[r], false, &[]).unwrap();
    let (h, get) = (host("x.example"), Method::GET);
    assert_eq!(
        rules.evaluate(&subject("10.0.0.1", &h, 80, &get, "::ffff:127.0.0.1")),
        Decision::Deny(Some(0))
    );
}

#[test]
fn shipped_defaults_let_lan_in_and_keep_others_out() {
    let config = crate::config::Config::defaults(std::path::Path::new(".")).unwrap();
    let rules = Rules::compile(&config.acl, false, &[]).unwrap();
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
    let errors = Rules::compile(&[RuleConfig::default(), r], false, &[]).unwrap_err();
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

#[test]
fn rules_without_dst_are_decided_without_the_address() {
    let mut deny = rule(Action::Deny);
    deny.dst_domain = vec![".blocked.test".into()];
    let mut lan = rule(Action::Allow);
    lan.src = vec!["10.0.0.0/8".into()];
    let rules = Rules::compile(&[deny, lan], false, &[]).unwrap();
    let get = Method::GET;
    let (blocked, other) = (host("www.blocked.test"), host("example.com"));
    fn unknown<'a>(h: &'a Host, m: &'a Method) -> Subject<'a> {
        Subject {
            dst: Dst::Unknown,
            ..subject("10.0.0.1", h, 80, m, "1.1.1.1")
        }
    }
    assert_eq!(
        rules.evaluate(&unknown(&blocked, &get)),
        Decision::Deny(Some(0))
    );
    assert_eq!(rules.evaluate(&unknown(&other, &get)), Decision::Allow(1));
}

#[test]
fn a_dst_rule_whose_other_conditions_hold_asks_for_the_address() {
    let mut admins = rule(Action::Allow);
    admins.src = vec!["10.9.0.0/16".into()];
    let mut local = rule(Action::Deny);
    local.dst = vec![TO_LOCALHOST.into()];
    local.method = vec!["POST".into()];
    let rules = Rules::compile(&[admins, local, rule(Action::Allow)], false, &[]).unwrap();
    let (h, get, post) = (host("example.com"), Method::GET, Method::POST);
    let s = |src, m| Subject {
        dst: Dst::Unknown,
        ..subject(src, &h, 80, m, "1.1.1.1")
    };
    // An earlier rule decides: no lookup.
    assert_eq!(rules.evaluate(&s("10.9.1.1", &post)), Decision::Allow(0));
    // The dst rule's method does not hold: skipped without a lookup.
    assert_eq!(rules.evaluate(&s("10.1.1.1", &get)), Decision::Allow(2));
    // Reached with its other conditions holding: the address is needed.
    assert_eq!(
        rules.evaluate(&s("10.1.1.1", &post)),
        Decision::NeedsAddress(1)
    );
    let known = |dst| Subject {
        dst: Dst::Known(dst),
        ..s("10.1.1.1", &post)
    };
    assert_eq!(
        rules.evaluate(&known("127.0.0.2".parse().unwrap())),
        Decision::Deny(Some(1))
    );
    assert_eq!(
        rules.evaluate(&known("1.1.1.1".parse().unwrap())),
        Decision::Allow(2)
    );
    // A name that does not resolve matches no dst condition (Squid).
    let unresolvable = Subject {
        dst: Dst::Unresolvable,
        ..s("10.1.1.1", &post)
    };
    assert_eq!(rules.evaluate(&unresolvable), Decision::Allow(2));
}

#[test]
fn to_localhost_covers_loopback_unspecified_and_own_addresses() {
    let mut local = rule(Action::Deny);
    local.dst = vec![TO_LOCALHOST.into()];
    let own: IpAddr = "192.168.7.7".parse().unwrap();
    let rules = Rules::compile(&[local, rule(Action::Allow)], false, &[own]).unwrap();
    let (h, get) = (host("example.com"), Method::GET);
    for dst in [
        "127.0.0.1",
        "127.9.9.9",
        "::1",
        "0.0.0.0",
        "::",
        "::ffff:127.0.0.1",
        "192.168.7.7",
    ] {
        assert_eq!(
            rules.evaluate(&subject("10.0.0.1", &h, 80, &get, dst)),
            Decision::Deny(Some(0)),
            "{dst}"
        );
    }
    assert_eq!(
        rules.evaluate(&subject("10.0.0.1", &h, 80, &get, "192.168.7.8")),
        Decision::Allow(1)
    );
}

#[test]
fn shipped_rules_refuse_this_host_and_link_local_destinations() {
    let config = crate::config::Config::defaults(std::path::Path::new(".")).unwrap();
    let rules = Rules::compile(&config.acl, false, &[]).unwrap();
    let (h, get) = (host("example.com"), Method::GET);
    for dst in ["127.0.0.1", "169.254.169.254", "fe80::1", "0.0.0.0"] {
        let d = rules.evaluate(&subject("192.168.1.2", &h, 80, &get, dst));
        assert_eq!(d, Decision::Deny(Some(0)), "{dst}");
        assert!(rules
            .explain(Some(0), dst.parse().ok())
            .contains("acl[0].dst"));
    }
}
