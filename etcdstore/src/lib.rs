//! The treasury store on etcd, and the executor's leader lease.
//!
//! [`EtcdKeySpace`] implements the store's engine interface
//! ([`KeySpace`](governance::store::engine::KeySpace)) with etcd transactions, so the
//! store's logic runs unchanged on a Raft-replicated cluster. Every call runs on a
//! runtime thread of the engine's own (see `bridge.rs`): the interface is blocking.

mod bridge;
mod connection;
mod engine;
pub mod leader;

pub use connection::{CallKind, EngineErrors, EtcdOptions, TlsFiles};
pub use engine::EtcdKeySpace;
pub use leader::{LEADER_KEY, Leadership, LeaseOptions, Role, Status};
