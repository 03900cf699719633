//! Access logging: line formats (`format`, pure), the writer thread
//! (`writer`), and the body wrapper that reports when a response is done
//! (`finish`), so that a request is logged with its true size and duration.

pub mod finish;
pub mod format;
pub mod writer;

pub use format::{Format, LogRecord};
pub use writer::AccessLog;
