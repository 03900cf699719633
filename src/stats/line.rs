//! One line of a Squid-native access log, parsed in place: the ten fields
//! borrowed from the caller's buffer, nothing allocated. Pure.
//!
//! `time.millis elapsed client code/status bytes method URL user hierarchy/peer type`,
//! fields separated by runs of whitespace (Squid pads the elapsed field).

/// The fields the report uses, borrowed from the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Unix time of the line, in milliseconds.
    pub millis: i64,
    /// Result code as logged, modifiers included (`TCP_MEM_HIT`, `TCP_MISS_ABORTED`).
    pub code: &'a str,
    /// HTTP status sent to the client (0 when none was).
    pub status: u16,
    /// Bytes sent to the client, headers included.
    pub bytes: u64,
    /// True for CONNECT requests.
    pub connect: bool,
    /// Request method as logged (`GET`, `CONNECT`...).
    pub method: &'a str,
    /// URL (or CONNECT authority) as logged.
    pub url: &'a str,
    /// Host of the URL (or of the CONNECT authority) as logged; `-` when
    /// the line has none (`error:invalid-request`...). Not yet lowercased.
    pub host: &'a str,
    /// Media type without parameters; `-` when absent.
    pub content_type: &'a str,
}

/// Parses one line (with or without its line ending). None: malformed.
pub fn parse(line: &[u8]) -> Option<Entry<'_>> {
    let mut fields = line
        .split(u8::is_ascii_whitespace)
        .filter(|field| !field.is_empty());
    let mut next = || fields.next();
    let (time, elapsed, _client, code_status, bytes, method, url, _user, _peer, content_type) = (
        next()?,
        next()?,
        next()?,
        next()?,
        next()?,
        next()?,
        next()?,
        next()?,
        next()?,
        next()?,
    );
    if next().is_some() {
        return None;
    }
    let millis = parse_time(time)?;
    let elapsed = elapsed.strip_prefix(b"-").unwrap_or(elapsed);
    parse_u64(elapsed)?;
    let slash = code_status.iter().rposition(|&b| b == b'/')?;
    let (code, status) = (&code_status[..slash], &code_status[slash + 1..]);
    if code.is_empty() || !code.iter().all(u8::is_ascii_graphic) {
        return None;
    }
    let code = std::str::from_utf8(code).ok()?;
    let status = u16::try_from(parse_u64(status)?).ok()?;
    let bytes = parse_u64(bytes)?;
    let connect = method == b"CONNECT";
    let method = std::str::from_utf8(method).ok()?;
    let host = std::str::from_utf8(host_of(url, connect)).ok()?;
    let content_type = std::str::from_utf8(media_type(content_type)).ok()?;
    let url = std::str::from_utf8(url).ok()?;
    Some(Entry {
        millis,
        code,
        status,
        bytes,
        connect,
        method,
        url,
        host,
        content_type,
    })
}

/// `1732471234.567` → milliseconds. Squid writes exactly three decimals;
/// fewer or more are accepted (more are cut).
fn parse_time(field: &[u8]) -> Option<i64> {
    let (secs, frac) = match field.iter().position(|&b| b == b'.') {
        Some(dot) => (&field[..dot], &field[dot + 1..]),
        None => (field, &b""[..]),
    };
    let secs = i64::try_from(parse_u64(secs)?).ok()?;
    if !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut millis = 0;
    for i in 0..3 {
        millis = millis * 10 + frac.get(i).map_or(0, |d| i64::from(d - b'0'));
    }
    secs.checked_mul(1000)?.checked_add(millis)
}

/// Decimal digits only, at least one, no overflow.
pub fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// The host in `scheme://[user@]host[:port]/...`, or in `host:port` for a
/// CONNECT; `-` when there is none. IPv6 literals keep their brackets.
fn host_of(url: &[u8], connect: bool) -> &[u8] {
    let authority = match url.windows(3).position(|w| w == b"://") {
        Some(at) => &url[at + 3..],
        None if connect => url,
        None => return b"-",
    };
    let end = authority
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(authority.len());
    let authority = &authority[..end];
    let authority = match authority.iter().rposition(|&b| b == b'@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    let host = if authority.first() == Some(&b'[') {
        match authority.iter().position(|&b| b == b']') {
            Some(close) => &authority[..=close],
            None => authority,
        }
    } else {
        match authority.iter().position(|&b| b == b':') {
            Some(colon) => &authority[..colon],
            None => authority,
        }
    };
    let host = host.strip_suffix(b".").unwrap_or(host);
    if host.is_empty() {
        b"-"
    } else {
        host
    }
}

/// [`host_of`] for a URL already known to be text.
pub(super) fn host_of_str(url: &str, connect: bool) -> &str {
    std::str::from_utf8(host_of(url.as_bytes(), connect)).unwrap_or("-")
}

/// [`media_type`] for a field already known to be text.
pub(super) fn media_type_str(field: &str) -> &str {
    std::str::from_utf8(media_type(field.as_bytes())).unwrap_or("-")
}

/// `text/html; charset=utf-8` → `text/html`; `-` when empty.
fn media_type(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == b';').unwrap_or(field.len());
    let media = field[..end].trim_ascii();
    if media.is_empty() {
        b"-"
    } else {
        media
    }
}

#[cfg(test)]
#[path = "line_tests.rs"]
mod tests;
