//! The node under test: its files (binary, configuration, log), its admin token, and how
//! to (re)start it on the same database.

use std::path::{Path, PathBuf};

use super::faults;
use super::log::append;
use super::token::Token;
use crate::failover::{Node, write_evm_config};

pub(super) const TOKEN: &str = "chaos-drill-admin-token";

/// The node's files, and how to (re)start it.
pub(super) struct Rig {
    binary: PathBuf,
    config: PathBuf,
    pub(super) log: PathBuf,
}

impl Rig {
    /// Writes the node's configuration into `scratch`: the EVM ledger at `rpc`, with the
    /// `[evm]` keys of [`faults::evm_keys`] when the chain misbehaves (`faulty`), and the
    /// drill's `token` in `[[evm.tokens]]`.
    pub(super) fn new(
        binary: PathBuf,
        scratch: &Path,
        rpc: &str,
        faulty: bool,
        token: &Token,
    ) -> Result<Rig, String> {
        let mut evm = if faulty {
            faults::evm_keys()
        } else {
            String::new()
        };
        // Last: an array-of-tables entry ends the `[evm]` keys.
        evm.push_str(&token.config_entry());
        Ok(Rig {
            binary,
            // A short breaker timeout: anvil should never fail a call, but if a loaded
            // machine makes it time out five times, the run waits 3 s rather than a minute.
            config: write_evm_config(
                scratch,
                &[rpc],
                TOKEN,
                "poll_interval_ms = 100\n[circuit_breaker]\ntimeout_secs = 3\n",
                &evm,
            )?,
            log: scratch.join("node.log"),
        })
    }

    pub(super) fn start(&self, run: u64) -> Result<Node, String> {
        append(&self.log, &format!("\n==> [chaos] start {run}\n"));
        Node::start(&self.binary, &self.config, &self.log)
    }
}
