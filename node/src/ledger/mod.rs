//! The ledgers the node can talk to. Today: the embedded dev ledger.

pub mod dev;
