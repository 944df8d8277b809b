//! Shared pieces of the fuzz targets: the store's trees and the invariant on its errors
//! ([`store`]), and a loopback server that answers JSON-RPC calls with fuzz input
//! ([`rpc_server`]).
//!
//! Each target in `fuzz_targets/` documents its input format at the top; the seeds in
//! `corpus/<target>/` are examples of it.

pub mod rpc_server;
pub mod store;
