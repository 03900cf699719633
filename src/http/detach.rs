//! Copies of parsed header names and values in their own allocation: a
//! parsed value shares the connection's whole read buffer, which a stored
//! entry or a log record would otherwise keep alive. Pure.

use http::header::{HeaderName, HeaderValue};

/// A copy of a parsed field value in its own allocation: a parsed value
/// shares the connection's whole read buffer, which a stored entry would
/// otherwise keep alive for as long as it is cached.
pub fn detach_value(value: &HeaderValue) -> HeaderValue {
    let mut copy = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
    copy.set_sensitive(value.is_sensitive());
    copy
}

pub fn detach_name(name: &HeaderName) -> HeaderName {
    HeaderName::from_bytes(name.as_str().as_bytes()).unwrap_or_else(|_| name.clone())
}
