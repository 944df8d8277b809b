//! What the node's integration tests share: a real anvil (a local Ethereum node), and
//! the node binary as a child process.
//!
//! anvil is found through `ANVIL_BIN`, else at `.tools/npm/node_modules/@foundry-rs/
//! anvil-linux-amd64/bin/anvil` in the workspace; if it is missing there, it is installed
//! with npm (`@foundry-rs/anvil-linux-amd64@1.7.1`). A test never skips for want of it.
#![allow(dead_code)] // each test crate uses its own part of it

pub mod tls;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use node::client::transport::{self, AgentOptions, Failure, Trust};
use serde_json::{Value, json};
use ureq::http;

/// anvil's first dev account: the funded treasury (10 000 ETH). Its well-known key,
/// as anvil 1.7.1 prints it under "Private Keys".
pub const TREASURY_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
pub const TREASURY: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
/// anvil's second dev account (unlocked): deploys the test contracts.
pub const DEPLOYER: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
/// anvil's default chain id.
pub const ANVIL_CHAIN_ID: u64 = 31_337;
/// An address nobody funds: its balance is what the tests pay it.
pub const DESTINATION: &str = "0x1111111111111111111111111111111111111111";
pub const ANVIL_VERSION: &str = "1.7.1";
/// Generous: anvil starts in well under a second, but not on a loaded 2-core machine.
pub const STARTUP: Duration = Duration::from_secs(60);

/// A running anvil, killed on drop.
pub struct Anvil {
    child: Child,
    pub address: SocketAddr,
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("node/ has a parent")
        .to_owned()
}

/// The anvil binary, installed with npm if it is not there yet.
pub fn anvil_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("ANVIL_BIN") {
        let bin = PathBuf::from(bin);
        assert!(bin.is_file(), "ANVIL_BIN={} is not a file", bin.display());
        return bin;
    }
    let prefix = workspace().join(".tools/npm");
    let bin = prefix.join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    // Tests run in parallel: one of them installs, the others wait for it.
    static INSTALL: Mutex<()> = Mutex::new(());
    let _installing = INSTALL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !bin.is_file() {
        let package = format!("@foundry-rs/anvil-linux-amd64@{ANVIL_VERSION}");
        let status = Command::new("npm")
            .arg("install")
            .arg("--prefix")
            .arg(&prefix)
            .args(["--no-save", "--no-audit", "--no-fund", &package])
            .status()
            .unwrap_or_else(|error| {
                panic!("anvil is missing and npm cannot run to install {package}: {error}")
            });
        assert!(status.success(), "npm install {package} failed: {status}");
        assert!(
            bin.is_file(),
            "npm installed {package} but {} is not there",
            bin.display()
        );
    }
    bin
}

impl Anvil {
    /// Starts anvil on an ephemeral port and waits until it answers JSON-RPC.
    pub fn start(extra: &[&str]) -> Anvil {
        let mut child = Command::new(anvil_bin())
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("anvil starts");
        let stdout = child.stdout.take().expect("anvil's stdout is piped");
        let (tx, rx) = mpsc::channel();
        // Read the port from "Listening on 127.0.0.1:PORT", then drain what anvil logs
        // (one line per call) so that it never blocks on a full pipe.
        thread::spawn(move || {
            let mut announced = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !announced && let Some(address) = line.trim().strip_prefix("Listening on ") {
                    announced = true;
                    let _ = tx.send(address.trim().to_owned());
                }
            }
        });
        let anvil_of = |child: Child, address| Anvil { child, address };
        let address = match rx.recv_timeout(STARTUP) {
            Ok(address) => address.parse().expect("anvil's address"),
            Err(error) => {
                let _ = anvil_of(child, "127.0.0.1:1".parse().expect("address"));
                panic!("anvil did not say where it listens within {STARTUP:?}: {error}");
            }
        };
        let anvil = anvil_of(child, address);
        let deadline = Instant::now() + STARTUP;
        while anvil.try_call("eth_chainId", json!([])).is_err() {
            assert!(
                Instant::now() < deadline,
                "anvil did not answer within {STARTUP:?}"
            );
            thread::sleep(Duration::from_millis(50));
        }
        anvil
    }

    /// A JSON-RPC call straight to anvil: the whole answer, or why there is none.
    pub fn try_call(&self, method: &str, params: Value) -> Result<Value, String> {
        json_rpc(self.address, method, params)
    }

    /// A JSON-RPC call straight to anvil; its `result`.
    pub fn call(&self, method: &str, params: Value) -> Value {
        let answer = self.try_call(method, params).expect("anvil answers");
        answer
            .get("result")
            .cloned()
            .unwrap_or_else(|| panic!("{method} failed: {answer}"))
    }

    /// Deploys `contracts/build/<name>.json`'s creation code with `args` (its constructor
    /// arguments, ABI-encoded) from anvil's second dev account (not the treasury: its
    /// nonces stay the executor's); the contract's address once mined.
    pub fn deploy(&self, name: &str, args: &[u8]) -> String {
        let path = workspace()
            .join("contracts/build")
            .join(format!("{name}.json"));
        let build: Value = serde_json::from_slice(&std::fs::read(&path).expect("contract build"))
            .expect("contract build json");
        let mut code = build["bytecode"].as_str().expect("bytecode").to_owned();
        for byte in args {
            code.push_str(&format!("{byte:02x}"));
        }
        let hash = self.call(
            "eth_sendTransaction",
            json!([{ "from": DEPLOYER, "data": code, "gas": "0x2dc6c0" }]),
        );
        let deadline = Instant::now() + STARTUP;
        loop {
            let receipt = self.call("eth_getTransactionReceipt", json!([hash]));
            if let Some(address) = receipt.get("contractAddress").and_then(Value::as_str) {
                assert_eq!(receipt["status"], "0x1", "{name} deployed: {receipt}");
                return address.to_owned();
            }
            assert!(Instant::now() < deadline, "{name} not deployed");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// `eth_call` of `data` on `to`: the returned bytes as hex.
    pub fn eth_call(&self, to: &str, data: &str) -> String {
        let answer = self.call("eth_call", json!([{ "to": to, "data": data }, "latest"]));
        answer.as_str().expect("hex").to_owned()
    }

    pub fn balance(&self, address: &str) -> u128 {
        quantity(&self.call("eth_getBalance", json!([address, "latest"])))
    }

    /// The treasury's transaction count at `tag` ("latest": mined; "pending": with the pool).
    pub fn tx_count(&self, tag: &str) -> u64 {
        let count = quantity(&self.call("eth_getTransactionCount", json!([TREASURY, tag])));
        u64::try_from(count).expect("a nonce fits in u64")
    }
}

/// A JSON-RPC quantity (`"0x1a"`).
pub fn quantity(value: &Value) -> u128 {
    let digits = value.as_str().and_then(|q| q.strip_prefix("0x"));
    u128::from_str_radix(
        digits.unwrap_or_else(|| panic!("not a quantity: {value}")),
        16,
    )
    .unwrap_or_else(|_| panic!("not a quantity: {value}"))
}

/// A JSON-RPC call to the endpoint at `address` (usable from any thread): the whole
/// answer, or why there is none.
pub fn json_rpc(address: SocketAddr, method: &str, params: Value) -> Result<Value, String> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let body = body.to_string();
    let answer = http_exchange(
        &address.to_string(),
        "POST",
        "/",
        &[],
        Some(body.as_bytes()),
        Duration::from_secs(30),
    )?;
    serde_json::from_slice(&answer.body).map_err(|e| e.to_string())
}

/// An HTTP answer: its status and body.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One HTTP exchange with `http://{address}` through the node's own HTTP client setup
/// (`node::client::transport`, on ureq), within `timeout`: `headers` as given, and a
/// `body` sent as JSON (`Content-Type: application/json`). Any status is an answer; the
/// error is why there is none.
pub fn http_exchange(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<HttpAnswer, String> {
    let agent = transport::agent(AgentOptions {
        timeout,
        trust: Trust::System,
        user_agent: "node-tests",
    });
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("http://{address}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let sent = match body {
        Some(body) => request
            .header("Content-Type", "application/json")
            .body(body)
            .map(|request| agent.run(request)),
        // As a body of 0 bytes (`Content-Length: 0`) for anything but GET and HEAD.
        None if method != "GET" && method != "HEAD" => {
            request.body(&[][..]).map(|request| agent.run(request))
        }
        None => request.body(()).map(|request| agent.run(request)),
    };
    let failed = |error: ureq::Error| Failure::from(error).to_string();
    let mut response = sent
        .map_err(|error| format!("invalid request: {error}"))?
        .map_err(failed)?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(transport::MAX_BODY_BYTES)
        .read_to_vec()
        .map_err(failed)?;
    Ok(HttpAnswer { status, body })
}

/// One HTTP request to the node at `address` (`127.0.0.1:PORT`) through the node's own
/// client setup, with `headers` and a JSON `body`: the status and the body as text. Panics
/// if no answer comes within 30 s.
pub fn http_request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String) {
    let answer = http_exchange(
        address,
        method,
        path,
        headers,
        body.map(str::as_bytes),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|error| panic!("{method} {path}: {error}"));
    (
        answer.status,
        String::from_utf8_lossy(&answer.body).into_owned(),
    )
}

/// Polls `check` every 50 ms until it holds; panics after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// A poisoned lock still holds the data: a test that panicked holding it has failed already.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A `node run` process (the binary under test) on an ephemeral port, with its stdout
/// and stderr drained for its whole life (a full pipe would block it); killed on drop if
/// the test did not stop it.
pub struct NodeProcess {
    child: Child,
    /// `127.0.0.1:PORT`, from its `listening on` line.
    pub address: String,
    stderr: Arc<Mutex<String>>,
}

impl NodeProcess {
    /// Starts the node with the TOML `config` on the database `db`, and waits until it
    /// listens (60 s at most).
    pub fn start(config: &Path, db: &Path) -> NodeProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_node"))
            .arg("run")
            .env_remove("TB_ADMIN_TOKEN")
            .env_remove("TB_LEDGER")
            .env_remove("TB_RPC_URL")
            .env_remove("TB_RPC_URLS")
            .env_remove("TB_TREASURY_KEY_FILE")
            .env_remove("TB_STORE")
            .env_remove("TB_ETCD_ENDPOINTS")
            .env_remove("TB_ETCD_PREFIX")
            .env_remove("TB_ETCD_LEASE_TTL_SECS")
            .env_remove("TB_ETCD_USERNAME")
            .env_remove("TB_ETCD_PASSWORD_FILE")
            .env_remove("TB_CRASH_AT")
            .env("TB_CONFIG", config)
            .env("TB_LISTEN", "127.0.0.1:0")
            .env("TB_GOVERNANCE_DB_PATH", db)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn node");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut text = lock(&sink);
                text.push_str(&line);
                text.push('\n');
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(address) = line.strip_prefix("listening on ") {
                    let _ = tx.send(address.trim().to_owned());
                }
            }
        });
        let mut node = NodeProcess {
            child,
            address: String::new(),
            stderr,
        };
        match rx.recv_timeout(STARTUP) {
            Ok(address) => node.address = address,
            Err(_) => panic!("node did not start: {}", node.stderr()),
        }
        node
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        lock(&self.stderr).clone()
    }

    /// Sends it a signal (`HUP`, `STOP`, …).
    #[allow(dead_code)] // not every test binary signals
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -{name}");
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, and the exit status. Panics if the node had already exited.
    pub fn terminate(&mut self) -> ExitStatus {
        assert!(
            self.alive(),
            "the node died before it was asked to stop: {}",
            self.stderr()
        );
        let pid = self.child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(killed.success());
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "node did not stop after SIGTERM");
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the node and checks it never panicked and exited 0.
    pub fn stop_cleanly(&mut self) {
        let status = self.terminate();
        let stderr = self.stderr();
        assert!(status.success(), "SIGTERM exits 0, got {status}: {stderr}");
        assert!(!stderr.contains("panicked"), "the node panicked: {stderr}");
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if self.alive() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// xorshift64: deterministic choices a test can replay from its seed (never 0).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// ABI-encodes constructor arguments: each a static word (`Word`) or a string.
pub enum Arg<'a> {
    Word(u128),
    Address(&'a str),
    Text(&'a str),
}

pub fn abi_encode(args: &[Arg<'_>]) -> Vec<u8> {
    let word = |n: u128| {
        let mut w = [0_u8; 32];
        w[16..].copy_from_slice(&n.to_be_bytes());
        w
    };
    let mut head = Vec::new();
    let mut tail = Vec::new();
    let head_len = 32 * args.len();
    for arg in args {
        match arg {
            Arg::Word(n) => head.extend_from_slice(&word(*n)),
            Arg::Address(address) => {
                let mut w = [0_u8; 32];
                w[12..].copy_from_slice(&hex_bytes(&address[2..]));
                head.extend_from_slice(&w);
            }
            Arg::Text(text) => {
                head.extend_from_slice(&word((head_len + tail.len()) as u128));
                tail.extend_from_slice(&word(text.len() as u128));
                let mut bytes = text.as_bytes().to_vec();
                bytes.resize(text.len().div_ceil(32) * 32, 0);
                tail.extend_from_slice(&bytes);
            }
        }
    }
    head.extend_from_slice(&tail);
    head
}

/// Deploys a token (`StandardToken`, `FalseToken`: name, symbol, 18 decimals, `supply`;
/// `FeeToken`: also `fee_bps` to the deployer) and moves `supply` to the treasury; its
/// address.
pub fn deploy_token(
    anvil: &Anvil,
    contract: &str,
    symbol: &str,
    supply: u128,
    fee_bps: Option<u128>,
) -> String {
    let mut args = vec![
        Arg::Text(symbol),
        Arg::Text(symbol),
        Arg::Word(18),
        Arg::Word(supply),
    ];
    if let Some(fee) = fee_bps {
        args.push(Arg::Word(fee));
        args.push(Arg::Address(DEPLOYER));
    }
    let token = anvil.deploy(contract, &abi_encode(&args));
    token_transfer_from_deployer(anvil, &token, TREASURY, supply);
    token
}

/// `transfer(to, amount)` on `token`, sent by the deployer (who holds the supply).
pub fn token_transfer_from_deployer(anvil: &Anvil, token: &str, to: &str, amount: u128) {
    let mut data = String::from("0xa9059cbb");
    data.push_str(&format!("{:0>64}", &to[2..].to_ascii_lowercase()));
    data.push_str(&format!("{amount:064x}"));
    let hash = anvil.call(
        "eth_sendTransaction",
        json!([{ "from": DEPLOYER, "to": token, "data": data, "gas": "0x30d40" }]),
    );
    wait_receipt(anvil, &hash);
}

/// `balanceOf(owner)` on `token`.
pub fn token_balance(anvil: &Anvil, token: &str, owner: &str) -> u128 {
    let data = format!("0x70a08231{:0>64}", &owner[2..].to_ascii_lowercase());
    quantity(&json!(trim_hex(&anvil.eth_call(token, &data))))
}

/// Sends `data` to `to` from the deployer, and waits for its receipt.
pub fn send_from_deployer(anvil: &Anvil, to: &str, data: &str) {
    let hash = anvil.call(
        "eth_sendTransaction",
        json!([{ "from": DEPLOYER, "to": to, "data": data, "gas": "0x30d40" }]),
    );
    wait_receipt(anvil, &hash);
}

fn wait_receipt(anvil: &Anvil, hash: &Value) -> Value {
    let deadline = Instant::now() + STARTUP;
    loop {
        let receipt = anvil.call("eth_getTransactionReceipt", json!([hash]));
        if !receipt.is_null() {
            assert_eq!(receipt["status"], "0x1", "{receipt}");
            return receipt;
        }
        assert!(Instant::now() < deadline, "{hash} not mined");
        thread::sleep(Duration::from_millis(20));
    }
}

fn trim_hex(word: &str) -> String {
    let digits = word.trim_start_matches("0x").trim_start_matches('0');
    format!("0x{}", if digits.is_empty() { "0" } else { digits })
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}
