//! Tests of the LRU replay: known sequences, the bounds, and a comparison
//! with a naive model on a pseudo-random trace.

use super::*;

fn get(url: &str, bytes: u64) -> Request<'_> {
    Request {
        url,
        bytes,
        object_size: Some(bytes),
        kind: Kind::Store { confirmed: true },
        logged_hit: false,
    }
}

fn replay(capacities: &[u64], requests: &[Request<'_>]) -> Outcome {
    let mut simulation = Simulation::new(capacities);
    for r in requests {
        simulation.request(r);
    }
    simulation.finish()
}

#[test]
fn least_recently_used_is_evicted_first() {
    // Room for two: A B A C (evicts B) B (evicts A) A (evicts C).
    let trace: Vec<_> = ["a", "b", "a", "c", "b", "a"]
        .iter()
        .map(|u| get(u, 100))
        .collect();
    let out = replay(&[200], &trace);
    assert_eq!(
        out.predictions[0].lower,
        Hits {
            requests: 1,
            bytes: 100
        }
    );
    assert_eq!(out.predictions[0].evictions, 3);
    assert_eq!(out.predictions[0].used, 200);
    // Unbounded: every repeat hits.
    assert_eq!(out.predictions[1].capacity, None);
    assert_eq!(out.predictions[1].lower.requests, 3);
    assert_eq!(out.distinct_urls, 3);
    assert_eq!(out.requests, 6);
}

#[test]
fn an_object_larger_than_the_cache_is_never_stored() {
    let trace = [
        get("big", 500),
        get("big", 500),
        get("small", 10),
        get("small", 10),
    ];
    let out = replay(&[100], &trace);
    assert_eq!(out.predictions[0].lower.requests, 1);
    assert_eq!(out.predictions[0].used, 10);
    assert_eq!(out.predictions[1].lower.requests, 2);
}

#[test]
fn an_object_that_grows_past_the_cache_leaves_it() {
    let trace = [get("x", 50), get("x", 150), get("x", 150)];
    let out = replay(&[100], &trace);
    // The second request hits (the 50-byte copy), the new size does not fit.
    assert_eq!(
        out.predictions[0].lower,
        Hits {
            requests: 1,
            bytes: 150
        }
    );
    assert_eq!(out.predictions[0].used, 0);
}

#[test]
fn pass_and_lookup_lines_are_never_stored() {
    let head = Request {
        kind: Kind::LookUp { confirmed: false },
        object_size: None,
        ..get("h", 10)
    };
    let pass = Request {
        kind: Kind::Pass,
        ..get("p", 10)
    };
    let out = replay(&[1000], &[head, head, pass, pass]);
    assert_eq!(out.predictions[0].lower.requests, 0);
    assert_eq!(out.predictions[0].upper.requests, 0);
    assert_eq!(out.cacheable_requests, 2);
    assert_eq!(out.distinct_urls, 0);
    assert_eq!(out.requests, 4);
    // A HEAD after a stored GET is a hit.
    let out = replay(&[1000], &[get("h", 10), head]);
    assert_eq!(
        out.predictions[0].lower,
        Hits {
            requests: 1,
            bytes: 10
        }
    );
}

#[test]
fn hits_on_unconfirmed_urls_are_pending_until_the_log_shows_a_hit() {
    let miss = |url| Request {
        kind: Kind::Store { confirmed: false },
        ..get(url, 100)
    };
    let logged_hit = |url| Request {
        kind: Kind::Store { confirmed: true },
        logged_hit: true,
        ..get(url, 100)
    };
    // "a" misses twice, then the log shows a hit: all three hits count.
    // "b" misses three times and is never shown cacheable: upper only.
    let trace = [
        miss("a"),
        miss("a"),
        miss("b"),
        miss("b"),
        miss("b"),
        logged_hit("a"),
    ];
    let out = replay(&[1000], &trace);
    let p = out.predictions[0];
    assert_eq!(
        p.lower,
        Hits {
            requests: 2,
            bytes: 200
        }
    );
    assert_eq!(
        p.upper,
        Hits {
            requests: 4,
            bytes: 400
        }
    );
    assert_eq!(
        out.logged_hits,
        Hits {
            requests: 1,
            bytes: 100
        }
    );
    assert_eq!(out.confirmed_urls, 1);
    assert_eq!(out.predictions[1].lower, p.lower);
    assert_eq!(out.predictions[1].upper, p.upper);
}

#[test]
fn bytes_counted_are_those_of_the_hit_line() {
    let not_modified = Request {
        object_size: None,
        kind: Kind::LookUp { confirmed: true },
        ..get("x", 30)
    };
    let out = replay(&[10_000], &[get("x", 5000), not_modified]);
    assert_eq!(
        out.predictions[0].lower,
        Hits {
            requests: 1,
            bytes: 30
        }
    );
    // The 304 did not change the stored size.
    assert_eq!(out.predictions[0].used, 5000);
}

/// The obvious LRU: a vector, most recent first.
fn naive(capacity: u64, trace: &[(u32, u64)]) -> u64 {
    let mut cache: Vec<(u32, u64)> = Vec::new();
    let mut hits = 0;
    for &(url, size) in trace {
        let used = |cache: &Vec<(u32, u64)>| cache.iter().map(|e| e.1).sum::<u64>();
        if let Some(at) = cache.iter().position(|e| e.0 == url) {
            hits += 1;
            cache.remove(at);
            if size <= capacity {
                cache.insert(0, (url, size));
            }
        } else if size <= capacity {
            cache.insert(0, (url, size));
        }
        while used(&cache) > capacity {
            cache.pop();
        }
    }
    hits
}

/// A small xorshift: the same trace on every run.
fn trace(len: usize) -> Vec<(u32, u64)> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..len)
        .map(|_| {
            // A skewed popularity: low numbers come back often.
            let url = (next() % 300) as u32 * (next() % 4) as u32 / 3;
            let size = 1 + (u64::from(url) * 37 + next() % 3) % 500;
            (url, size)
        })
        .collect()
}

#[test]
fn agrees_with_a_naive_lru_and_bigger_caches_never_hit_less() {
    let trace = trace(5000);
    let names: Vec<String> = trace.iter().map(|(u, _)| format!("http://x/{u}")).collect();
    let requests: Vec<Request<'_>> = trace
        .iter()
        .zip(&names)
        .map(|(&(_, size), name)| get(name, size))
        .collect();
    let capacities = [0, 400, 1000, 5000, 20_000, 200_000];
    let out = replay(&capacities, &requests);
    let mut previous = 0;
    for (prediction, &capacity) in out.predictions.iter().zip(&capacities) {
        assert_eq!(
            prediction.lower.requests,
            naive(capacity, &trace),
            "capacity {capacity}"
        );
        assert!(prediction.lower.requests >= previous, "capacity {capacity}");
        assert!(prediction.used <= capacity);
        previous = prediction.lower.requests;
    }
    let unbounded = out.predictions.last().unwrap();
    assert!(unbounded.lower.requests >= previous);
    assert_eq!(
        unbounded.lower.requests,
        out.requests - out.distinct_urls,
        "unbounded: every repeat hits"
    );
}
