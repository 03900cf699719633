//! HTTP building blocks shared by the request path: body type, request
//! targets, hop-by-hop handling and error pages. Pure.

pub mod body;
pub mod detach;
pub mod error_page;
pub mod hop_by_hop;
pub mod max_forwards;
pub mod target;
pub mod via;
