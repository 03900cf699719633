//! Access-log lines: Squid's native format (what calamaris, SARG and
//! GoAccess read), Apache/nginx `combined`, and one JSON object per line
//! with every field. Pure.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

/// `[log] format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Squid,
    Combined,
    Json,
}

/// One finished request, as the log sees it.
#[derive(Debug, Clone)]
pub struct LogRecord {
    /// When the response was done: its last byte written to the client, or
    /// the client gone (Squid's timestamp).
    pub time: SystemTime,
    /// From arrival to the last byte sent (or the abort).
    pub elapsed: Duration,
    pub client: IpAddr,
    /// Squid result code, e.g. `TCP_MEM_HIT`.
    pub result: &'static str,
    /// The transfer to the client did not complete.
    pub aborted: bool,
    pub status: u16,
    /// Bytes sent to the client, head and body.
    pub bytes: u64,
    pub method: http::Method,
    pub url: String,
    pub version: &'static str,
    pub user: Option<Arc<str>>,
    pub peer: Option<SocketAddr>,
    /// `peer` is a parent proxy chosen by URL hashing.
    pub via_parent: bool,
    pub content_type: Option<http::HeaderValue>,
    pub cache_status: Option<http::HeaderValue>,
    pub coalesced: bool,
    /// Time to the origin's response head.
    pub upstream_time: Option<Duration>,
    /// Time the access rules waited on the resolver, when they needed it.
    pub dns_time: Option<Duration>,
    /// Body bytes received from the origin for this request.
    pub bytes_from_origin: u64,
    pub referer: Option<String>,
    pub user_agent: Option<String>,
    pub error: Option<String>,
    /// A CONNECT tunnel's traffic, logged when it closed.
    pub tunnel: Option<TunnelBytes>,
    /// Why the response was not stored (`NotStorable::as_str`); JSON only,
    /// so that Squid's 10 fields stay as they are.
    pub reason: Option<&'static str>,
}

/// Both directions of a closed CONNECT tunnel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TunnelBytes {
    /// Bytes from the client to the origin.
    pub up: u64,
    /// Bytes from the origin to the client (the 200 head not included).
    pub down: u64,
    /// The client's side ended with a reset (or another error).
    pub client_reset: bool,
    /// The origin's side ended with a reset (or another error).
    pub origin_reset: bool,
}

impl LogRecord {
    /// The result code as logged (Squid appends `_ABORTED`).
    pub fn code(&self) -> String {
        if self.aborted && !self.result.ends_with("_ABORTED") {
            format!("{}_ABORTED", self.result)
        } else {
            self.result.to_owned()
        }
    }
}

/// Formats one line (without the newline).
pub fn line(format: Format, r: &LogRecord) -> String {
    match format {
        Format::Squid => squid(r),
        Format::Combined => combined(r),
        Format::Json => json(r),
    }
}

/// Squid's hierarchy code: how the response was obtained.
fn hierarchy_code(r: &LogRecord) -> &'static str {
    match (r.peer, r.via_parent) {
        (None, _) => "HIER_NONE",
        (Some(_), false) => "HIER_DIRECT",
        // A parent chosen by hashing the URL, as Squid's CARP.
        (Some(_), true) => "CARP",
    }
}

/// `time.millis elapsed client code/status bytes method URL user hier/peer type`:
/// exactly 10 fields, 3 decimals, `-` for anything absent.
pub fn squid(r: &LogRecord) -> String {
    let since = r.time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut out = String::with_capacity(160);
    let _ = write!(
        out,
        "{}.{:03} {:>6} {} {}/{:03} {} {} {} {} {} {}",
        since.as_secs(),
        since.subsec_millis(),
        r.elapsed.as_millis(),
        r.client.to_canonical(),
        r.code(),
        r.status,
        r.bytes,
        token(r.method.as_str()),
        escape(&r.url),
        r.user.as_deref().map_or("-".to_owned(), escape),
        hierarchy(r),
        content_type(r.content_type.as_ref().and_then(|v| v.to_str().ok())),
    );
    out
}

fn hierarchy(r: &LogRecord) -> String {
    match r.peer {
        Some(peer) => format!("{}/{}", hierarchy_code(r), peer.ip().to_canonical()),
        None => "HIER_NONE/-".to_owned(),
    }
}

/// The media type alone: parameters cut at `;`, `-` when absent.
fn content_type(value: Option<&str>) -> String {
    match value.map(|v| v.split(';').next().unwrap_or("").trim()) {
        Some(t) if !t.is_empty() => escape(t),
        _ => "-".to_owned(),
    }
}

fn token(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        escape(text)
    }
}

/// Percent-escapes whitespace, controls, `%`... so a field never splits.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b <= b' ' || b == 0x7f || b == b'"' || b >= 0x80 {
            let _ = write!(out, "%{b:02X}");
        } else {
            out.push(b as char);
        }
    }
    out
}

/// Apache/nginx combined: `client - user [time] "request" status bytes "referer" "agent"`.
pub fn combined(r: &LogRecord) -> String {
    // Apache's %t is when the request arrived; ours is when it was done.
    let arrived = r.time.checked_sub(r.elapsed).unwrap_or(r.time);
    let time = httpdate::fmt_http_date(arrived);
    // "Tue, 24 Nov 2026 20:26:50 GMT" → "24/Nov/2026:20:26:50 +0000"
    let parts: Vec<&str> = time.split([' ', ',']).filter(|p| !p.is_empty()).collect();
    let clf = match parts.as_slice() {
        [_, day, month, year, hms, _] => format!("{day}/{month}/{year}:{hms} +0000"),
        _ => time.clone(),
    };
    let quoted = |v: Option<&str>| v.map_or("-".to_owned(), |v| v.replace('"', "%22"));
    format!(
        "{} - {} [{}] \"{} {} {}\" {} {} \"{}\" \"{}\"",
        r.client.to_canonical(),
        r.user.as_deref().map_or("-".to_owned(), escape),
        clf,
        token(r.method.as_str()),
        escape(&r.url),
        r.version,
        r.status,
        r.bytes,
        quoted(r.referer.as_deref()),
        quoted(r.user_agent.as_deref()),
    )
}

/// One JSON object with every field.
pub fn json(r: &LogRecord) -> String {
    let since = r.time.duration_since(UNIX_EPOCH).unwrap_or_default();
    serde_json::json!({
        "time": since.as_secs_f64(),
        "elapsed_ms": r.elapsed.as_millis() as u64,
        "client": r.client.to_canonical().to_string(),
        "result": r.code(),
        "status": r.status,
        "bytes": r.bytes,
        "method": r.method.as_str(),
        "url": r.url,
        "user": r.user.as_deref(),
        "hierarchy": hierarchy_code(r),
        "peer": r.peer.map(|p| p.ip().to_canonical().to_string()),
        "content_type": r.content_type.as_ref().and_then(|v| v.to_str().ok()),
        "cache_status": r.cache_status.as_ref().and_then(|v| v.to_str().ok()),
        "coalesced": r.coalesced,
        "upstream_ms": r.upstream_time.map(|t| t.as_millis() as u64),
        "dns_ms": r.dns_time.map(|t| t.as_secs_f64() * 1000.0),
        "bytes_from_origin": r.bytes_from_origin,
        "aborted": r.aborted,
        "referer": r.referer,
        "user_agent": r.user_agent,
        "error": r.error,
        "bytes_up": r.tunnel.map(|t| t.up),
        "bytes_down": r.tunnel.map(|t| t.down),
        "client_reset": r.tunnel.map(|t| t.client_reset),
        "origin_reset": r.tunnel.map(|t| t.origin_reset),
        "reason": r.reason,
    })
    .to_string()
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
