//! RPC fault soak: anvil ← faultproxy ← the real `node` binary (EVM ledger, breaker open for
//! 1 s, each RPC call given 500 ms), disbursements queued a few at a time while the proxy
//! cycles through every fault mode in a seeded random order.
//!
//! Each fault phase (refuse, blackhole, HTTP 500, garbage) lasts until `/metrics` shows the
//! breaker open, then the proxy passes again until it closes: so the number of outages is
//! known, and so is the number of closed → open transitions. Latency phases (well under the
//! RPC timeout) last a fixed time and must not open it. At the end every disbursement is
//! executed, each destination on anvil holds exactly its amount (paid once), the treasury's
//! nonce is the number of disbursements, and the node never panicked and exits 0 on SIGTERM.
//!
//! The seed is printed; `SOAK_SEED=<n>` replays an order.

mod common;

use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use faultproxy::{FaultProxy, Mode};
use serde_json::{Value, json};

use crate::common::{Anvil, NodeProcess, Rng, TREASURY_KEY, http_request};

const TOKEN: &str = "soak-test-admin-token-0123456789";
/// Disbursements queued in all.
const TOTAL: u64 = 60;
/// Queued before the first phase, with the endpoint up.
const WARM_UP: u64 = 4;
/// Queued when a fault starts, and again once the breaker is open.
const AT_FAULT: u64 = 2;
const WHILE_OPEN: u64 = 1;
/// Queued during a latency phase, one at a time.
const AT_LATENCY: u64 = 4;
/// Each fault mode this many times.
const FAULT_ROUNDS: usize = 3;
const LATENCY_PHASES: usize = 4;
/// How long a latency phase lasts at least.
const LATENCY_FOR: Duration = Duration::from_secs(2);
/// The RPC deadline the node runs with; latency phases stay far below it.
const REQUEST_TIMEOUT_MS: u64 = 500;
/// Anything the node does by itself (start, open, close, pay, stop).
const PATIENCE: Duration = Duration::from_secs(60);

// ----- the node ------------------------------------------------------------------------

type Node = NodeProcess;

impl Node {
    fn get(&self, path: &str) -> String {
        let (code, body) = self.exchange("GET", path, None);
        assert_eq!(code, 200, "GET {path}: {body}");
        body
    }

    fn exchange(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let auth = format!("Bearer {TOKEN}");
        let headers = [("Authorization", auth.as_str()), ("X-Actor", "soak")];
        http_request(&self.address, method, path, &headers, body)
    }

    fn queue(&self, i: u64) {
        let body = json!({
            "destination": destination(i),
            "amount": amount(i).to_string(),
            "memo": format!("soak {i}"),
        });
        let (code, answer) = self.exchange("POST", "/admin/disbursements", Some(&body.to_string()));
        assert_eq!(code, 201, "queue {i}: {answer}");
    }

    fn sample(&self) -> Sample {
        let metrics = self.get("/metrics");
        let status: Value = serde_json::from_str(&self.get("/status")).expect("status is JSON");
        let value = |series: &str| {
            metrics
                .lines()
                .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
                .and_then(|value| value.trim().parse::<f64>().ok())
                .unwrap_or_else(|| panic!("no {series} in /metrics:\n{metrics}")) as u64
        };
        Sample {
            state: value("treasury_circuit_breaker_state"),
            tripped: value(
                r#"treasury_circuit_breaker_transitions_total{from="closed",to="open"}"#,
            ),
            recovered: value(
                r#"treasury_circuit_breaker_transitions_total{from="half_open",to="closed"}"#,
            ),
            failures: value(r#"treasury_submissions_total{asset="native",result="failed"}"#)
                + value("treasury_ledger_read_failures_total"),
            accepted: value(r#"treasury_submissions_total{asset="native",result="accepted"}"#),
            executed: status["executor"]["totals"]["executed"]
                .as_u64()
                .expect("executed"),
            ticks: status["executor"]["ticks"].as_u64().expect("ticks"),
        }
    }

    /// Samples until `done` holds; the sample that satisfied it.
    fn until(&self, what: &str, done: impl Fn(&Sample) -> bool) -> Sample {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let sample = self.sample();
            if done(&sample) {
                return sample;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {PATIENCE:?} waiting for {what}; last sample {sample:?}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// What `/metrics` and `/status` say at one moment.
#[derive(Debug, Clone, Copy)]
struct Sample {
    state: u64,
    /// closed → open transitions: outages detected.
    tripped: u64,
    /// half-open → closed transitions: recoveries.
    recovered: u64,
    /// Failed ledger calls, submissions and reads: what the breaker counts.
    failures: u64,
    accepted: u64,
    executed: u64,
    ticks: u64,
}

fn destination(i: u64) -> String {
    format!("0x{:040x}", 0x50a4_0000_u64 + i)
}

fn amount(i: u64) -> u128 {
    1_000_000_000_000_000 + u128::from(i)
}

// ----- the phases ----------------------------------------------------------------------

fn seed() -> u64 {
    let seed = match std::env::var("SOAK_SEED") {
        Ok(text) => {
            let text = text.trim();
            match text.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => text.parse(),
            }
            .unwrap_or_else(|error| panic!("SOAK_SEED={text:?}: {error}"))
        }
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    };
    seed.max(1) // xorshift stays at 0 from 0
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Until the breaker opens, then the proxy passes again until it closes.
    Fault(Mode),
    /// A fixed time at this latency per chunk, far below the RPC deadline.
    Latency(Duration),
}

/// Every fault mode `FAULT_ROUNDS` times and `LATENCY_PHASES` latency phases, shuffled.
/// Two latency phases are never adjacent: switching the proxy's mode cuts the connection
/// in flight (one failed call), and the breaker forgets failures only when it changes
/// state, so the closed stretch between two outages may see at most two switches (to and
/// from one latency phase), well under the 5 failures that open it.
fn phases(rng: &mut Rng) -> Vec<Phase> {
    let faults = [Mode::Refuse, Mode::Blackhole, Mode::Http500, Mode::Garbage];
    let mut phases: Vec<Phase> = (0..FAULT_ROUNDS)
        .flat_map(|_| faults.map(Phase::Fault))
        .collect();
    for _ in 0..LATENCY_PHASES {
        let delay = Duration::from_millis(20 + 10 * rng.below(5)); // 20 to 60 ms a chunk
        phases.push(Phase::Latency(delay));
    }
    loop {
        for i in (1..phases.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            phases.swap(i, j);
        }
        let adjacent = phases
            .windows(2)
            .any(|w| matches!(w, [Phase::Latency(_), Phase::Latency(_)]));
        if !adjacent {
            return phases;
        }
    }
}

struct Soak<'a> {
    node: &'a Node,
    proxy: &'a FaultProxy,
    queued: u64,
    began: Instant,
    log: Vec<String>,
}

impl Soak<'_> {
    fn queue(&mut self, n: u64) {
        for _ in 0..n {
            self.node.queue(self.queued);
            self.queued += 1;
        }
    }

    fn set(&self, mode: Mode) {
        self.proxy
            .set_mode(mode)
            .unwrap_or_else(|error| panic!("proxy to {mode:?}: {error}"));
    }

    /// Logs a phase's outcome, once the node has been seen not to panic during it (a
    /// panicking task need not end the process).
    fn note(&mut self, what: String) {
        let stderr = self.node.stderr();
        assert!(
            !stderr.contains("panicked"),
            "the node panicked by the end of {what}: {stderr}"
        );
        let line = format!("{:6.2}s  {what}", self.began.elapsed().as_secs_f64());
        eprintln!("soak: {line}");
        self.log.push(line);
    }

    /// A fault until the breaker opens; then the endpoint back until it closes.
    fn fault(&mut self, mode: Mode) {
        let before = self.node.sample();
        let began = Instant::now();
        self.set(mode);
        self.queue(AT_FAULT);
        let opened = self
            .node
            .until(&format!("the breaker to open under {mode:?}"), |s| {
                s.state == 1
            });
        assert_eq!(
            opened.tripped,
            before.tripped + 1,
            "{mode:?}: one outage, one trip: {before:?} -> {opened:?}"
        );
        let opened_after = began.elapsed();
        self.queue(WHILE_OPEN);
        self.set(Mode::Pass);
        let closed = self
            .node
            .until(&format!("the breaker to close after {mode:?}"), |s| {
                s.state == 0 && s.recovered > before.recovered
            });
        assert_eq!(
            (closed.tripped, closed.recovered),
            (before.tripped + 1, before.recovered + 1),
            "{mode:?}: one trip and one recovery: {before:?} -> {closed:?}"
        );
        self.note(format!(
            "{mode:?}: open after {opened_after:.1?} and {} failed calls; closed {:.1?} later",
            opened.failures - before.failures,
            began.elapsed() - opened_after,
        ));
    }

    /// A fixed time at a latency far below the RPC deadline: calls go through, slowly,
    /// and the breaker stays closed.
    fn latency(&mut self, delay: Duration) {
        let before = self.node.sample();
        assert_eq!(before.state, 0, "a latency phase starts closed: {before:?}");
        let began = Instant::now();
        self.set(Mode::Latency(delay));
        let mut queued = 0;
        let mut samples = 0;
        while began.elapsed() < LATENCY_FOR || queued < AT_LATENCY {
            let due = LATENCY_FOR.mul_f64(queued as f64 / AT_LATENCY as f64);
            if queued < AT_LATENCY && began.elapsed() >= due {
                self.queue(1);
                queued += 1;
            }
            let sample = self.node.sample();
            samples += 1;
            assert_eq!(
                (sample.state, sample.tripped),
                (0, before.tripped),
                "latency {delay:?} is not a fault: the breaker stays closed: {before:?} -> {sample:?}"
            );
            thread::sleep(Duration::from_millis(100));
        }
        // Traffic went through the slow proxy, not around it.
        let through = self.node.until("a submission accepted at latency", |s| {
            assert_eq!((s.state, s.tripped), (0, before.tripped), "closed: {s:?}");
            s.accepted > before.accepted
        });
        self.set(Mode::Pass);
        // Let the switch's cut connection (if any) be counted.
        let switched = self.node.sample();
        let after = self.node.until("two ticks after the latency phase", |s| {
            s.ticks >= switched.ticks + 2
        });
        assert_eq!(
            (after.state, after.tripped),
            (0, before.tripped),
            "latency {delay:?} opened nothing"
        );
        // At most the two calls cut by switching the proxy's mode; a timeout per call
        // would be many more.
        assert!(
            after.failures - before.failures <= 2,
            "latency {delay:?} made calls fail: {before:?} -> {after:?}"
        );
        self.note(format!(
            "Latency({delay:?}): {:.1?}, {samples} samples closed, {} accepted, {} failed call(s) (cut by the switches)",
            began.elapsed(),
            through.accepted - before.accepted,
            after.failures - before.failures,
        ));
    }
}

#[test]
fn rpc_faults_open_and_close_the_breaker_and_every_payment_lands_once() {
    let began = Instant::now();
    let seed = seed();
    let mut rng = Rng(seed);
    let phases = phases(&mut rng);
    eprintln!("soak: SOAK_SEED={seed} (set it to replay this order)");
    eprintln!("soak: phases {phases:?}");

    let anvil = Anvil::start(&[]);
    let proxy = FaultProxy::start(anvil.address).expect("the proxy starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("treasury.key");
    std::fs::write(&key, format!("{TREASURY_KEY}\n")).expect("write the key");
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "ledger = \"evm\"\n\
             rpc_url = \"http://{proxy}\"\n\
             treasury_key_file = \"{key}\"\n\
             admin_token = \"{TOKEN}\"\n\
             poll_interval_ms = 100\n\
             [circuit_breaker]\n\
             timeout_secs = 1\n\
             [evm]\n\
             request_timeout_ms = {REQUEST_TIMEOUT_MS}\n\
             confirmations = 1\n",
            proxy = proxy.addr(),
            key = key.display(),
        ),
    )
    .expect("write the config");
    let mut node = Node::start(&config, &dir.path().join("governance.db"));

    let mut soak = Soak {
        node: &node,
        proxy: &proxy,
        queued: 0,
        began: Instant::now(),
        log: Vec::new(),
    };
    soak.queue(WARM_UP);
    node.until("the warm-up paid", |s| s.executed == WARM_UP);
    soak.note(format!("warm-up: {WARM_UP} paid"));

    let mut faults = 0;
    for phase in &phases {
        match *phase {
            Phase::Fault(mode) => {
                soak.fault(mode);
                faults += 1;
            }
            Phase::Latency(delay) => soak.latency(delay),
        }
    }
    let rest = TOTAL
        .checked_sub(soak.queued)
        .expect("the phases queue at most TOTAL");
    soak.queue(rest);
    let drained = node.until("every disbursement paid", |s| s.executed == TOTAL);
    soak.note(format!("drained: {TOTAL} executed"));
    let log = std::mem::take(&mut soak.log);

    // Every disbursement executed, as the store says.
    let (code, list) = node.exchange("GET", "/admin/disbursements?limit=1000", None);
    assert_eq!(code, 200, "{list}");
    let list: Value = serde_json::from_str(&list).expect("JSON");
    let list = list["disbursements"].as_array().expect("disbursements");
    assert_eq!(list.len() as u64, TOTAL);
    for d in list {
        assert_eq!(d["status"]["status"], "executed", "{d}");
    }
    // On the chain: each destination paid exactly its amount, once; no other transfer.
    for i in 0..TOTAL {
        assert_eq!(
            anvil.balance(&destination(i)),
            amount(i),
            "{} paid exactly once (seed {seed})",
            destination(i)
        );
    }
    assert_eq!(
        anvil.tx_count("latest"),
        TOTAL,
        "the treasury's nonce (seed {seed})"
    );
    // One trip per outage, none for latency.
    assert_eq!(
        drained.tripped, faults,
        "closed -> open transitions for {faults} fault phases (seed {seed})"
    );
    assert_eq!(drained.state, 0);

    // Alive all along, never panicked, exits 0.
    node.stop_cleanly();

    eprintln!(
        "soak: seed {seed}, {} phases ({faults} outages), {TOTAL} paid once, {:.1?} in all\n{}",
        phases.len(),
        began.elapsed(),
        log.join("\n")
    );
}
