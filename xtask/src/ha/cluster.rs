//! The drill's rig: a 3-member etcd cluster, anvil, and three node slots, each with its
//! configuration, its log, its fault proxy in front of anvil (counting its broadcasts) and
//! its process while one runs. Dropping it kills every node (SIGKILL), then etcd and anvil.

use std::path::{Path, PathBuf};
use std::time::Duration;

use etcdharness::Etcd;
use faultproxy::{FaultProxy, Mode};

use super::log::Log;
use super::node::{NodeProcess, TOKEN};
use crate::anvil::{self, Anvil};

/// The leader's lease (`etcd.lease_ttl_secs`).
pub(super) const LEASE_TTL: Duration = Duration::from_secs(3);
/// The executor's tick (`poll_interval_ms`); the campaign's round is min(TTL / 4, this).
pub(super) const TICK: Duration = Duration::from_millis(200);
/// Each etcd request's deadline (`etcd.request_timeout_ms`): under the lease.
const ETCD_REQUEST_TIMEOUT_MS: u64 = 1000;
/// The nodes.
pub(super) const NODES: usize = 3;
/// The etcd members.
pub(super) const MEMBERS: usize = 3;

/// What the drill did to a slot's node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// Running: queued through and polled.
    Live,
    /// SIGSTOPped: neither queued through nor polled (it would not answer).
    Frozen,
    /// Not running (killed or stopped).
    Down,
}

/// One node's place in the drill.
pub(super) struct Slot {
    /// Its identity, `ha-I`.
    pub(super) name: String,
    config: PathBuf,
    pub(super) log: PathBuf,
    /// Between the node and anvil, counting its `eth_sendRawTransaction` calls.
    pub(super) proxy: FaultProxy,
    pub(super) process: Option<NodeProcess>,
    pub(super) state: State,
}

impl Slot {
    pub(super) fn address(&self) -> Option<&str> {
        self.process.as_ref().map(|p| p.address.as_str())
    }

    /// The address, if the node is live.
    pub(super) fn live(&self) -> Option<&str> {
        self.address().filter(|_| self.state == State::Live)
    }
}

/// The rig. Fields drop in order: the nodes first (each `NodeProcess` kills its process),
/// then etcd (its members killed, its directory removed), then anvil.
pub(super) struct Cluster {
    pub(super) slots: Vec<Slot>,
    pub(super) etcd: Etcd,
    pub(super) anvil: Anvil,
    binary: PathBuf,
}

impl Cluster {
    /// Starts etcd, anvil and a proxy per node, writes the nodes' configurations into
    /// `scratch`, and starts the nodes.
    pub(super) fn start(binary: PathBuf, scratch: &Path, log: &Log) -> Result<Cluster, String> {
        let etcd = Etcd::cluster(MEMBERS)?;
        let anvil = Anvil::start(&[])?;
        log.event(&format!(
            "etcd: {} members ({}), data in {}; anvil on {} (auto-mining)",
            MEMBERS,
            etcd.endpoints().join(", "),
            etcd.dir().display(),
            anvil.address
        ));
        let key = scratch.join("treasury.key");
        std::fs::write(&key, format!("0x{}\n", anvil::KEY_0))
            .map_err(|e| format!("cannot write {}: {e}", key.display()))?;
        let mut slots = vec![];
        for i in 0..NODES {
            let proxy = anvil.fault_proxy()?;
            proxy
                .set_mode(Mode::CountSends)
                .map_err(|e| format!("fault proxy: {e}"))?;
            let name = format!("ha-{i}");
            let config = scratch.join(format!("{name}.toml"));
            let text = config_text(
                &name,
                &proxy.addr().to_string(),
                &key,
                &scratch.join(format!("{name}.db")),
                &etcd.endpoints(),
            );
            std::fs::write(&config, text)
                .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
            slots.push(Slot {
                log: scratch.join(format!("{name}.log")),
                name,
                config,
                proxy,
                process: None,
                state: State::Down,
            });
        }
        let mut cluster = Cluster {
            slots,
            etcd,
            anvil,
            binary,
        };
        for i in 0..NODES {
            cluster.start_node(i, log)?;
        }
        Ok(cluster)
    }

    /// Starts slot `i`'s node (it must be down).
    pub(super) fn start_node(&mut self, i: usize, log: &Log) -> Result<(), String> {
        let slot = &mut self.slots[i];
        log.file_only(&slot.log, &format!("start {}", slot.name));
        let process = NodeProcess::start(&self.binary, &slot.config, &slot.log)?;
        log.event(&format!(
            "{} started: pid {}, on {}, to anvil through {}",
            slot.name,
            process.pid(),
            process.address,
            slot.proxy.addr()
        ));
        slot.process = Some(process);
        slot.state = State::Live;
        Ok(())
    }

    /// kill -9 slot `i`'s node.
    pub(super) fn kill_node(&mut self, i: usize) -> Result<(), String> {
        let slot = &mut self.slots[i];
        slot.state = State::Down;
        match slot.process.take() {
            Some(process) => process.kill_9(),
            None => Err(format!("{} is not running", slot.name)),
        }
    }

    /// SIGTERM to every node still running, and waits for each to exit. The names of those
    /// that had to be killed.
    pub(super) fn stop_nodes(&mut self) -> Vec<String> {
        let mut lingered = vec![];
        for slot in &mut self.slots {
            slot.state = State::Down;
            if let Some(process) = slot.process.take()
                && !process.terminate()
            {
                lingered.push(slot.name.clone());
            }
        }
        lingered
    }

    /// Sends `signal` to slot `i`'s node and records what it did.
    pub(super) fn signal(&mut self, i: usize, signal: &str) -> Result<(), String> {
        let slot = &mut self.slots[i];
        let process = slot
            .process
            .as_ref()
            .ok_or_else(|| format!("{} is not running", slot.name))?;
        process.signal(signal)?;
        slot.state = if signal == "STOP" {
            State::Frozen
        } else {
            State::Live
        };
        Ok(())
    }

    /// Live slots, by index.
    pub(super) fn live(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&i| self.slots[i].live().is_some())
            .collect()
    }

    /// `eth_sendRawTransaction` calls through slot `i`'s proxy so far.
    pub(super) fn sends(&self, i: usize) -> u64 {
        self.slots[i].proxy.raw_transactions()
    }

    /// Whether etcd member `m` says it is the raft leader (`etcd_server_is_leader 1` in
    /// its `/metrics`); `None` if it does not answer.
    pub(super) fn raft_leader(&self, m: usize) -> Option<bool> {
        let endpoint = self.etcd.endpoints().get(m)?.clone();
        let address = endpoint.trim_start_matches("http://");
        let metrics = crate::http::get(address, "/metrics").ok()?;
        crate::failover::metric(&metrics, "etcd_server_is_leader")
            .ok()
            .map(|v| v == 1)
    }

    /// Copies etcd's member logs next to the nodes' (the harness removes its directory
    /// when dropped).
    pub(super) fn keep_etcd_logs(&self, scratch: &Path) {
        for m in 0..MEMBERS {
            let from = self.etcd.dir().join(format!("m{m}.log"));
            let _ = std::fs::copy(&from, scratch.join(format!("etcd-m{m}.log")));
        }
    }
}

/// A node's configuration: the EVM ledger through its proxy, the store on etcd.
fn config_text(name: &str, rpc: &str, key: &Path, db: &Path, endpoints: &[String]) -> String {
    let endpoints: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
    format!(
        "ledger = \"evm\"\n\
         rpc_url = \"http://{rpc}\"\n\
         treasury_key_file = \"{key}\"\n\
         db_path = \"{db}\"\n\
         identity = \"{name}\"\n\
         admin_token = \"{TOKEN}\"\n\
         poll_interval_ms = {tick}\n\
         store = \"etcd\"\n\
         # A short breaker timeout: should a loaded machine make anvil time out five\n\
         # times, the drill waits 3 s rather than a minute.\n\
         [circuit_breaker]\n\
         timeout_secs = 3\n\
         [etcd]\n\
         endpoints = [{endpoints}]\n\
         prefix = \"/ha-drill/\"\n\
         lease_ttl_secs = {ttl}\n\
         request_timeout_ms = {ETCD_REQUEST_TIMEOUT_MS}\n\
         [evm]\n\
         # anvil auto-mines: executed at first inclusion.\n\
         confirmations = 1\n",
        key = key.display(),
        db = db.display(),
        tick = TICK.as_millis(),
        ttl = LEASE_TTL.as_secs(),
        endpoints = endpoints.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_config_names_its_identity_the_store_and_the_lease() {
        let text = config_text(
            "ha-1",
            "127.0.0.1:9",
            Path::new("/k"),
            Path::new("/db"),
            &["http://127.0.0.1:1".into(), "http://127.0.0.1:2".into()],
        );
        for line in [
            "identity = \"ha-1\"",
            "store = \"etcd\"",
            "rpc_url = \"http://127.0.0.1:9\"",
            "endpoints = [\"http://127.0.0.1:1\", \"http://127.0.0.1:2\"]",
            "lease_ttl_secs = 3",
            "request_timeout_ms = 1000",
            "poll_interval_ms = 200",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in {text}");
        }
        assert!(ETCD_REQUEST_TIMEOUT_MS < LEASE_TTL.as_secs() * 1000);
    }
}
