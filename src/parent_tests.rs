//! Parent selection: rendezvous hashing keeps each URL on one parent, a
//! parent going down moves only its own URLs, weights set the shares, and
//! the direct rules.

use super::*;

fn parents(names: &[(&str, f64)], always: &[&str], never: &[&str]) -> Parents {
    let list: Vec<ParentConfig> = names
        .iter()
        .enumerate()
        .map(|(i, (name, weight))| ParentConfig {
            name: Some((*name).to_owned()),
            host: "127.0.0.1".into(),
            port: 4000 + i as u16,
            user: None,
            password: None,
            weight: *weight,
        })
        .collect();
    let rules = ParentsConfig {
        always_direct: always.iter().map(|s| (*s).to_owned()).collect(),
        never_direct: never.iter().map(|s| (*s).to_owned()).collect(),
        down_for: Duration::from_secs(30),
    };
    Parents::compile(&list, &rules).unwrap()
}

fn urls() -> Vec<String> {
    (0..3000)
        .map(|i| format!("http://example.com/object/{i}"))
        .collect()
}

#[test]
fn each_url_always_goes_to_the_same_parent_and_the_load_is_spread() {
    let p = parents(&[("a", 1.0), ("b", 1.0), ("c", 1.0)], &[], &[]);
    let now = Instant::now();
    let mut counts = [0usize; 3];
    for url in urls() {
        let first = p.plan(&url, "example.com", now).parents[0];
        assert_eq!(p.plan(&url, "example.com", now).parents[0], first);
        counts[first] += 1;
    }
    for c in counts {
        assert!((800..1200).contains(&c), "{counts:?}");
    }
}

#[test]
fn a_parent_going_down_moves_only_its_own_share() {
    let p = parents(&[("a", 1.0), ("b", 1.0), ("c", 1.0)], &[], &[]);
    let now = Instant::now();
    let before: Vec<usize> = urls()
        .iter()
        .map(|u| p.plan(u, "example.com", now).parents[0])
        .collect();
    assert!(p.list[1].mark_down(now + Duration::from_secs(30), now));
    for (url, was) in urls().iter().zip(&before) {
        let plan = p.plan(url, "example.com", now);
        assert!(!plan.parents.contains(&1));
        if *was != 1 {
            assert_eq!(plan.parents[0], *was, "{url} kept its parent");
        }
    }
    // Back up once its time is over.
    let later = now + Duration::from_secs(31);
    let again: Vec<usize> = urls()
        .iter()
        .map(|u| p.plan(u, "example.com", later).parents[0])
        .collect();
    assert_eq!(again, before);
}

#[test]
fn weights_set_the_shares() {
    let p = parents(&[("big", 3.0), ("small", 1.0)], &[], &[]);
    let now = Instant::now();
    let big = urls()
        .iter()
        .filter(|u| p.plan(u, "example.com", now).parents[0] == 0)
        .count();
    assert!((2000..2500).contains(&big), "{big} of 3000");
}

#[test]
fn direct_rules_decide_where_parents_are_used() {
    let p = parents(&[("a", 1.0)], &[".lan", "intranet"], &["*.secure.example"]);
    let now = Instant::now();
    let direct_only = Plan {
        parents: vec![],
        direct: true,
    };
    assert_eq!(p.plan("k", "printer.lan", now), direct_only);
    assert_eq!(p.plan("k", "lan", now), direct_only);
    assert_eq!(p.plan("k", "intranet", now), direct_only);
    assert_eq!(
        p.plan("k", "example.com", now),
        Plan {
            parents: vec![0],
            direct: true
        }
    );
    let strict = p.plan("k", "www.secure.example", now);
    assert_eq!(strict.parents, vec![0]);
    assert!(!strict.direct);
    // Every parent down and direct refused: the down ones are tried anyway.
    p.list[0].mark_down(now + Duration::from_secs(30), now);
    assert_eq!(p.plan("k", "www.secure.example", now).parents, vec![0]);
    assert!(p.plan("k", "example.com", now).parents.is_empty());
}

#[test]
fn bad_parents_are_refused_with_their_keys() {
    let bad = ParentConfig {
        name: None,
        host: " ".into(),
        port: 0,
        user: Some("u".into()),
        password: None,
        weight: 0.0,
    };
    let rules = ParentsConfig {
        always_direct: vec!["bad host".into()],
        never_direct: vec![],
        down_for: Duration::from_secs(1),
    };
    let errors = Parents::compile(&[bad], &rules).unwrap_err();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "parent[0].host",
            "parent[0].port",
            "parent[0].weight",
            "parent[0].user",
            "parents.always_direct"
        ]
    );
}

#[test]
fn credentials_become_a_basic_proxy_authorization() {
    let c = ParentConfig {
        name: None,
        host: "p".into(),
        port: 3128,
        user: Some("alice".into()),
        password: Some("s3cret".into()),
        weight: 1.0,
    };
    let rules = ParentsConfig {
        always_direct: vec![],
        never_direct: vec![],
        down_for: Duration::from_secs(1),
    };
    let p = Parents::compile(&[c], &rules).unwrap();
    assert_eq!(p.list[0].name, "p:3128");
    assert_eq!(
        p.list[0].authorization.as_ref().unwrap(),
        "Basic YWxpY2U6czNjcmV0"
    );
}
