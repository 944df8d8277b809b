//! The treasury node as a library, so that its parts are testable: configuration, the dev
//! ledger, the executor driver and the HTTP surface. `main.rs` only wires them.

pub mod admin;
pub mod app;
pub mod cli;
pub mod client;
pub mod config;
pub mod driver;
pub mod governance;
pub mod ha;
pub mod http;
pub mod ledger;
pub mod start;
pub mod store_cli;
