use super::*;
use std::net::IpAddr;
use std::time::Instant;

use crate::metrics::window::Finished;

#[test]
fn the_page_escapes_what_clients_sent_and_lists_the_tunnel() {
    let metrics = Metrics::default();
    let ip = IpAddr::from([192, 168, 1, 7]);
    let evil = metrics.live.start(
        ip,
        &http::Method::GET,
        "http://a.test/<script>alert(1)</script>",
        Instant::now(),
    );
    let tunnel = metrics
        .live
        .start(ip, &http::Method::CONNECT, "b.test:443", Instant::now());
    tunnel.transfer.set_tunnel();
    tunnel.transfer.up(10);
    tunnel.transfer.down(2048);
    let done = metrics
        .live
        .start(ip, &http::Method::GET, "http://a.test/x", Instant::now());
    done.transfer.down(1000);
    done.finish(Some(Finished {
        hit: true,
        bytes: 1000,
    }));
    let stats = StoreStats {
        memory_bytes: 64,
        ..StoreStats::default()
    };
    let s = snapshot(&metrics, &stats, (256, 1024));
    assert_eq!((s.tunnels.count, s.in_flight.count), (1, 1));
    assert_eq!(s.tunnels.list[0].destination, "b.test:443");
    assert_eq!(s.hit_ratio.ratio, Some(1.0));
    assert_eq!(s.cache.memory.fill, 0.25);
    assert_eq!(s.bandwidth.last_10s.bytes, 1000 + 2058);
    let page = html(&s, "cachalot");
    assert!(!page.contains("<script>"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("b.test:443"));
    assert!(page.contains("192.168.1.7"));
    drop(evil);
}
