//! anvil, a local Ethereum node from the npm registry: installed into the ignored
//! `.tools/` folder when missing, started on a free port, killed on drop.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use faultproxy::FaultProxy;

use crate::cargo::workspace_root;
use crate::tool::ToolCommand;

/// The npm package, pinned: its binary is what the tests were written against.
pub const PACKAGE: &str = "@foundry-rs/anvil-linux-amd64@1.7.1";

/// anvil's funded account 0 and its private key (public test values, in every anvil).
pub const ACCOUNT_0: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
pub const KEY_0: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// anvil's funded account 1, unlocked (`eth_sendTransaction` signs for it): deploys test
/// contracts, so that the treasury's nonces stay the executor's.
pub const ACCOUNT_1: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

/// Where the package puts the binary under `.tools/npm`.
fn installed() -> PathBuf {
    workspace_root().join(".tools/npm/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
}

/// The anvil binary: `$ANVIL_BIN`, else the one under `.tools/`, installed with npm if
/// missing.
pub fn ensure() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("ANVIL_BIN").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("ANVIL_BIN={} is not a file", path.display()))
        };
    }
    let path = installed();
    if path.is_file() {
        return Ok(path);
    }
    let prefix = workspace_root().join(".tools/npm");
    ToolCommand::new(
        "anvil",
        "npm",
        &["install", "--no-save", "--no-audit", "--no-fund"],
    )
    .args([std::ffi::OsStr::new("--prefix"), prefix.as_os_str()])
    .args([PACKAGE])
    .run()
    .map_err(|e| format!("{e} (anvil comes from the npm registry; is npm installed?)"))?;
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "npm installed {PACKAGE} but {} is missing",
            path.display()
        ))
    }
}

/// A running anvil; killed when dropped.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub address: String,
}

impl Anvil {
    /// Starts anvil (auto-mining; `extra` arguments appended) and waits until it answers.
    pub fn start(extra: &[&str]) -> Result<Anvil, String> {
        let binary = ensure()?;
        let port = free_port()?;
        let child = Command::new(&binary)
            .args(["--port", &port.to_string(), "--silent"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut anvil = Anvil {
            child,
            address: format!("127.0.0.1:{port}"),
        };
        let began = Instant::now();
        loop {
            if anvil.rpc("eth_chainId", "[]").is_ok() {
                return Ok(anvil);
            }
            if let Ok(Some(status)) = anvil.child.try_wait() {
                return Err(format!("anvil exited at start ({status})"));
            }
            if began.elapsed() > Duration::from_secs(60) {
                return Err("anvil did not answer within 60 s".into());
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// One JSON-RPC call; the `result` as JSON text (a string, number or null: use
    /// [`rpc_answer`](Self::rpc_answer) for results that are objects).
    pub fn rpc(&self, method: &str, params: &str) -> Result<String, String> {
        let answer = self.rpc_answer(method, params)?;
        match json_field(&answer, "result") {
            Some(result) => Ok(result),
            None => Err(format!("{method}: {}", answer.trim())),
        }
    }

    /// One JSON-RPC call; the whole answer's JSON text (HTTP 200 only).
    pub fn rpc_answer(&self, method: &str, params: &str) -> Result<String, String> {
        let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{params}}}"#);
        let answer = crate::http::request(&self.address, "POST", "/", None, Some(&body))?;
        if answer.status != 200 {
            return Err(format!("{method}: HTTP {}", answer.status));
        }
        Ok(answer.body)
    }

    /// An account's balance in wei.
    pub fn balance(&self, address: &str) -> Result<u128, String> {
        let result = self.rpc("eth_getBalance", &format!(r#"["{address}","latest"]"#))?;
        u128::from_str_radix(hex_digits(&result), 16).map_err(|e| format!("balance {result}: {e}"))
    }

    /// The chain's head (`eth_blockNumber`).
    pub fn head(&self) -> Result<u64, String> {
        let result = self.rpc("eth_blockNumber", "[]")?;
        u64::from_str_radix(hex_digits(&result), 16)
            .map_err(|e| format!("eth_blockNumber {result}: {e}"))
    }

    /// The treasury's (account 0's) transaction count at `block` (`latest`: mined;
    /// `pending`: with the pool).
    pub fn nonce(&self, block: &str) -> Result<u64, String> {
        let result = self.rpc(
            "eth_getTransactionCount",
            &format!(r#"["{ACCOUNT_0}","{block}"]"#),
        )?;
        u64::from_str_radix(hex_digits(&result), 16).map_err(|e| format!("nonce {result}: {e}"))
    }

    /// A fault proxy in front of this anvil, passing every call until told otherwise.
    pub fn fault_proxy(&self) -> Result<FaultProxy, String> {
        let upstream: SocketAddr = self
            .address
            .parse()
            .map_err(|e| format!("anvil's address: {e}"))?;
        FaultProxy::start(upstream).map_err(|e| format!("fault proxy: {e}"))
    }
}

/// The hex digits of a JSON-RPC quantity result's text (`"0x1a"` → `1a`).
fn hex_digits(result: &str) -> &str {
    result.trim_matches('"').trim_start_matches("0x")
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now.
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// The raw JSON text of a top-level `"name":` value in a flat JSON object (strings,
/// numbers, null): enough for JSON-RPC results and the node's counters.
pub fn json_field(json: &str, name: &str) -> Option<String> {
    let at = json.find(&format!("\"{name}\":"))? + name.len() + 3;
    let rest = json[at..].trim_start();
    let end = if let Some(stripped) = rest.strip_prefix('"') {
        stripped.find('"')? + 2
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Some(rest[..end].trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::json_field;

    #[test]
    fn fields_of_flat_json() {
        let json = r#"{"jsonrpc":"2.0","id":1,"result":"0x7a69"}"#;
        assert_eq!(json_field(json, "result").as_deref(), Some("\"0x7a69\""));
        assert_eq!(json_field(json, "id").as_deref(), Some("1"));
        assert_eq!(json_field(r#"{"a": null}"#, "a").as_deref(), Some("null"));
        assert_eq!(json_field(json, "error"), None);
    }
}
