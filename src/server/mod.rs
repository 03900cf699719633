//! The process around the proxy: the listening socket and its connections,
//! and the signals that stop or reload it.

pub mod admin;
pub mod cache_tool;
pub mod conn;
pub mod listener;
pub mod park;
pub mod signals;
pub mod status;
pub mod workers;

pub use listener::{bind, run};
