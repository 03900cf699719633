//! Access logging: line formats (`format`, pure), the writer thread
//! (`writer`), the body wrapper that reports when a response's body is done
//! (`finish`), and the connection's write side that says when its bytes
//! reached the socket (`delivery`), so that a request is logged with its
//! true size and duration.

pub mod delivery;
pub mod finish;
pub mod format;
pub mod writer;

pub use format::{Format, LogRecord, TunnelBytes};
pub use writer::AccessLog;
