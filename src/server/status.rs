//! The live status page: who is using the bandwidth now (per client and per
//! domain, last 10 s and 5 min), open tunnels, requests in flight, the hit
//! ratio over 5 min and the cache's fill, as `/status.json` and as a
//! self-refreshing HTML page with no external assets (`/status`).

use std::fmt::Write as _;
use std::time::Instant;

use serde::Serialize;

use crate::cache::store::StoreStats;
use crate::metrics::live::Transfer;
use crate::metrics::window::{Ratio, Top, TOP};
use crate::metrics::Metrics;

/// Open tunnels and requests listed (the largest / oldest first).
const LISTED: usize = 50;
/// Longest target shown.
const TARGET_CHARS: usize = 200;
/// Seconds between refreshes of the HTML page.
const REFRESH_SECS: u32 = 5;

/// Everything the page shows.
#[derive(Debug, Serialize)]
pub struct Status {
    pub uptime_seconds: u64,
    pub client_connections: i64,
    pub bandwidth: Bandwidth,
    pub tunnels: Listing<TunnelView>,
    pub in_flight: Listing<RequestView>,
    pub hit_ratio: HitRatio,
    pub cache: CacheFill,
}

#[derive(Debug, Serialize)]
pub struct Bandwidth {
    pub last_10s: Top,
    pub last_5m: Top,
}

/// A count and the first [`LISTED`] of them.
#[derive(Debug, Serialize)]
pub struct Listing<T> {
    pub count: usize,
    pub list: Vec<T>,
}

#[derive(Debug, Serialize)]
pub struct TunnelView {
    pub client: String,
    pub destination: String,
    pub age_seconds: f64,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

#[derive(Debug, Serialize)]
pub struct RequestView {
    pub client: String,
    pub method: String,
    pub url: String,
    pub age_seconds: f64,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct HitRatio {
    #[serde(flatten)]
    pub counts: Ratio,
    /// hits / requests (null with no request).
    pub ratio: Option<f64>,
    pub byte_ratio: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct CacheFill {
    pub memory: Tier,
    pub disk: Tier,
}

#[derive(Debug, Serialize)]
pub struct Tier {
    pub entries: u64,
    pub bytes: u64,
    pub capacity_bytes: u64,
    pub fill: f64,
}

fn shorten(s: &str) -> String {
    match s.char_indices().nth(TARGET_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// Builds the status now; `capacity` is (memory, disk) from the config.
pub fn snapshot(metrics: &Metrics, store: &StoreStats, capacity: (u64, u64)) -> Status {
    let live = &metrics.live;
    live.sweep();
    let now = Instant::now();
    let (tunnels, requests): (Vec<_>, Vec<_>) =
        live.in_flight().into_iter().partition(|t| t.is_tunnel());
    let age = |t: &Transfer| now.saturating_duration_since(t.started).as_secs_f64();
    let mut tunnel_views: Vec<TunnelView> = tunnels
        .iter()
        .map(|t| {
            let (up, down) = t.bytes();
            TunnelView {
                client: t.client.to_string(),
                destination: shorten(t.target()),
                age_seconds: age(t),
                bytes_up: up,
                bytes_down: down,
            }
        })
        .collect();
    tunnel_views.sort_by_key(|t| std::cmp::Reverse(t.bytes_up + t.bytes_down));
    tunnel_views.truncate(LISTED);
    let mut request_views: Vec<RequestView> = requests
        .iter()
        .map(|t| RequestView {
            client: t.client.to_string(),
            method: t.method.to_string(),
            url: shorten(t.target()),
            age_seconds: age(t),
            bytes: t.bytes().1,
        })
        .collect();
    request_views.sort_by(|a, b| b.age_seconds.total_cmp(&a.age_seconds));
    request_views.truncate(LISTED);
    let (short, long, counts) = live.windows();
    let tier = |entries, bytes, capacity| Tier {
        entries,
        bytes,
        capacity_bytes: capacity,
        fill: ratio(bytes, capacity).unwrap_or(0.0),
    };
    Status {
        uptime_seconds: metrics.started.elapsed().as_secs(),
        client_connections: metrics
            .client_connections
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(0),
        bandwidth: Bandwidth {
            last_10s: short,
            last_5m: long,
        },
        tunnels: Listing {
            count: tunnels.len(),
            list: tunnel_views,
        },
        in_flight: Listing {
            count: requests.len(),
            list: request_views,
        },
        hit_ratio: HitRatio {
            ratio: ratio(counts.hits, counts.requests),
            byte_ratio: ratio(counts.hit_bytes, counts.bytes),
            counts,
        },
        cache: CacheFill {
            memory: tier(store.memory_entries, store.memory_bytes, capacity.0),
            disk: tier(store.disk_entries, store.disk_bytes, capacity.1),
        },
    }
}

/// `&`, `<`, `>`, `"` escaped for HTML text and attributes.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Bytes for people: `1.5 MiB`.
fn human(n: u64) -> String {
    bytesize::ByteSize(n).to_string()
}

fn pct(r: Option<f64>) -> String {
    r.map_or_else(|| "–".to_owned(), |r| format!("{:.1} %", r * 100.0))
}

fn top_table(out: &mut String, title: &str, top: &Top, uptime: u64) {
    // A window longer than the process's life is averaged over that life.
    let rate = top.bytes as f64 / top.seconds.min(uptime).max(1) as f64;
    let _ = write!(
        out,
        "<section><h2>{title}</h2><p>{} in {} s ({}/s)</p><div class=cols>",
        human(top.bytes),
        top.seconds,
        human(rate as u64)
    );
    for (what, list, other) in [
        ("Client", &top.clients, top.other_clients_bytes),
        ("Domain", &top.domains, top.other_domains_bytes),
    ] {
        let _ = write!(
            out,
            "<table><tr><th>{what}</th><th>bytes</th><th></th></tr>"
        );
        let max = list.first().map_or(1, |e| e.bytes.max(1));
        for e in list {
            let width = (e.bytes as f64 / max as f64 * 100.0).round();
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=n>{}</td><td class=bar><i style=\"width:{width}%\"></i></td></tr>",
                esc(&e.key),
                human(e.bytes)
            );
        }
        if list.is_empty() {
            out.push_str("<tr><td colspan=3 class=none>nothing</td></tr>");
        }
        if other > 0 {
            let _ = write!(
                out,
                "<tr><td><em>others</em></td><td class=n>{}</td><td></td></tr>",
                human(other)
            );
        }
        out.push_str("</table>");
    }
    out.push_str("</div></section>");
}

/// The HTML page (refreshes itself every [`REFRESH_SECS`] seconds).
pub fn html(s: &Status, name: &str) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
<meta http-equiv=refresh content={REFRESH_SECS}>\
<meta name=viewport content=\"width=device-width\"><title>{} status</title><style>\
body{{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#222;background:#fafafa}}\
h1{{font-size:1.4em;margin:.2em 0}}h2{{font-size:1.1em;margin:1em 0 .3em}}\
.cards{{display:flex;gap:1em;flex-wrap:wrap}}.card{{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:11em}}\
.card b{{display:block;font-size:1.5em}}.cols{{display:flex;gap:2em;flex-wrap:wrap;align-items:flex-start}}\
table{{border-collapse:collapse;background:#fff;min-width:26em}}td,th{{padding:2px 8px;border-bottom:1px solid #eee;text-align:left}}\
td.n{{text-align:right;white-space:nowrap}}td.bar{{width:10em}}td.bar i{{display:block;height:.8em;background:#3b82f6;border-radius:2px}}\
.none{{color:#888}}.fill{{background:#e5e7eb;height:.6em;border-radius:3px;margin-top:.3em}}.fill i{{display:block;height:100%;background:#10b981;border-radius:3px}}\
td.url{{max-width:40em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}}\
</style></head><body><h1>{} — live status</h1><p class=none>Up {} s; this page reloads every {REFRESH_SECS} s; \
the same as JSON: <a href=\"/status.json\">/status.json</a>; counters: <a href=\"/metrics\">/metrics</a>.</p>",
        esc(name),
        esc(name),
        s.uptime_seconds
    );
    let h = &s.hit_ratio;
    let _ = write!(
        out,
        "<div class=cards>\
<div class=card>Hit ratio, 5 min<b>{}</b>{} of {} requests; bytes {}</div>\
<div class=card>In flight<b>{}</b>requests</div>\
<div class=card>Open tunnels<b>{}</b>CONNECT</div>\
<div class=card>Client connections<b>{}</b>open</div>",
        pct(h.ratio),
        h.counts.hits,
        h.counts.requests,
        pct(h.byte_ratio),
        s.in_flight.count,
        s.tunnels.count,
        s.client_connections
    );
    for (label, t) in [("Memory", &s.cache.memory), ("Disk", &s.cache.disk)] {
        let _ = write!(
            out,
            "<div class=card>{label} cache<b>{:.1} %</b>{} of {}, {} entries\
<div class=fill><i style=\"width:{:.1}%\"></i></div></div>",
            t.fill * 100.0,
            human(t.bytes),
            human(t.capacity_bytes),
            t.entries,
            (t.fill * 100.0).min(100.0)
        );
    }
    out.push_str("</div>");
    top_table(
        &mut out,
        "Last 10 seconds",
        &s.bandwidth.last_10s,
        s.uptime_seconds,
    );
    top_table(
        &mut out,
        "Last 5 minutes",
        &s.bandwidth.last_5m,
        s.uptime_seconds,
    );
    let _ = write!(
        out,
        "<section><h2>Open tunnels ({})</h2><table><tr><th>client</th><th>destination</th>\
<th>age</th><th>up</th><th>down</th></tr>",
        s.tunnels.count
    );
    for t in &s.tunnels.list {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=n>{:.0} s</td><td class=n>{}</td><td class=n>{}</td></tr>",
            esc(&t.client),
            esc(&t.destination),
            t.age_seconds,
            human(t.bytes_up),
            human(t.bytes_down)
        );
    }
    if s.tunnels.list.is_empty() {
        out.push_str("<tr><td colspan=5 class=none>none</td></tr>");
    }
    let _ = write!(
        out,
        "</table></section><section><h2>Requests in flight ({})</h2><table><tr><th>client</th>\
<th>method</th><th>URL</th><th>age</th><th>bytes</th></tr>",
        s.in_flight.count
    );
    for r in &s.in_flight.list {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=url>{}</td><td class=n>{:.1} s</td><td class=n>{}</td></tr>",
            esc(&r.client),
            esc(&r.method),
            esc(&r.url),
            r.age_seconds,
            human(r.bytes)
        );
    }
    if s.in_flight.list.is_empty() {
        out.push_str("<tr><td colspan=5 class=none>none</td></tr>");
    }
    let _ = writeln!(
        out,
        "</table></section><p class=none>Top {TOP} per window; at most {} clients and {} domains \
are tracked per time slot, the rest counted as others.</p></body></html>",
        crate::metrics::window::MAX_KEYS,
        crate::metrics::window::MAX_KEYS
    );
    out
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
