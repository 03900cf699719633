//! One origin fetch serving many: coalescing of identical requests
//! (`coalesce`: a leader and its followers per URL) and the tee of the
//! origin's body into the client, the followers and the store (`tee`).
//! Composition: combines the store and the upstream, knows no request order.

pub mod coalesce;
pub mod tee;
