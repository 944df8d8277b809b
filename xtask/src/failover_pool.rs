//! `cargo xtask failover --endpoints 3`: the failover drill with a pool of endpoints.
//!
//! One anvil, three fault proxies in front of it (endpoints `a`, `b`, `c`), one node
//! with `rpc_urls` naming all three. Checked through `/metrics`, `/status` and anvil:
//!
//! 1. 10 disbursements are paid through the three.
//! 2. `a` is cut (connections refused) and 10 more are queued: they are paid with no
//!    failed call seen by the executor's breaker, which never leaves closed, while `a`'s
//!    own breaker opens within its threshold (3 failed calls: 3 ticks).
//! 3. `a` is back; `b` serves stale reads (every lookup answers "unknown") and ranks first
//!    (`a` and `c` are slowed): 10 more are paid, each exactly once; `b`'s wrong answers
//!    open its breaker (it is caught and no longer read from).
//! 4. With nothing left to pay, all three are cut: the executor's breaker opens after
//!    exactly 5 failed calls (its `failure_threshold`). One endpoint is restored: the
//!    breaker closes by itself, with no payment traffic (its probes are head reads),
//!    within `timeout_secs` and a few ticks.
//! 5. 10 more are queued and paid through the one endpoint; then `b` and `c` come back.
//!
//! Last, on anvil: every destination holds exactly its amount (paid once) and the
//! treasury's nonce is the number of disbursements. Prints the timeline and writes it to
//! `failover-endpoints-timeline.csv` in the target directory (`target/` unless
//! `CARGO_TARGET_DIR` is set).

use std::thread;
use std::time::{Duration, Instant};

use faultproxy::{FaultProxy, Mode};

use crate::anvil::Anvil;
use crate::cargo::fresh_dir;
use crate::failover::{Node, check, check_paid_once, metric, write_evm_config};
use crate::http;
use crate::timeline::{self, Row, any};

const TOKEN: &str = "failover-pool-admin-token";
const TIMEOUT_SECS: u64 = 3;
const POLL_MS: u64 = 200;
const BATCH: u64 = 10;
const NAMES: [&str; 3] = ["a", "b", "c"];

/// The drill; `Err` says which check failed.
pub fn run() -> Result<(), String> {
    let binary = crate::cargo::build_node("failover")?;
    let target = crate::cargo::target_dir();
    let scratch = target.join("xtask-failover-endpoints");
    fresh_dir(&scratch)?;

    let anvil = Anvil::start(&[])?;
    let proxies = [
        anvil.fault_proxy()?,
        anvil.fault_proxy()?,
        anvil.fault_proxy()?,
    ];
    eprintln!(
        "==> [failover --endpoints 3] anvil on {}, endpoints a {} b {} c {}",
        anvil.address,
        proxies[0].addr(),
        proxies[1].addr(),
        proxies[2].addr()
    );
    let addresses: Vec<String> = proxies
        .iter()
        .map(|proxy| proxy.addr().to_string())
        .collect();
    let rpc: Vec<&str> = addresses.iter().map(String::as_str).collect();
    let config = write_evm_config(
        &scratch,
        &rpc,
        TOKEN,
        &format!(
            "poll_interval_ms = {POLL_MS}\n[circuit_breaker]\ntimeout_secs = {TIMEOUT_SECS}\n"
        ),
        &format!(
            "request_timeout_ms = 2000\n[evm.endpoint_breaker]\ntimeout_secs = {TIMEOUT_SECS}\n"
        ),
    )?;
    let mut node = Node::start(&binary, &config, &scratch.join("node.log"))?;
    let mut t = Timeline::new("failover --endpoints 3", |began| sample(&node, began));
    let result = steps(&anvil, &proxies, &node, &mut t);
    t.print();
    let csv = target.join("failover-endpoints-timeline.csv");
    let written =
        std::fs::write(&csv, t.csv()).map_err(|e| format!("cannot write {}: {e}", csv.display()));
    eprintln!(
        "==> [failover --endpoints 3] timeline written to {}",
        csv.display()
    );
    drop(t);
    node.stop();
    if result.is_err() {
        eprintln!(
            "==> [failover --endpoints 3] node log: {}",
            scratch.join("node.log").display()
        );
    }
    result.and(written)
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    seconds: f64,
    /// The executor's breaker.
    state: u64,
    /// Failed ledger calls the executor's breaker counted (submissions and reads).
    failures: u64,
    accepted: u64,
    executed: u64,
    /// Each endpoint's breaker state and whether it is in sync.
    endpoints: [(u64, u64); 3],
}

impl Row for Sample {
    const CSV_HEADER: &'static str = "seconds,state,failures,accepted,executed,\
         a_state,a_in_sync,b_state,b_in_sync,c_state,c_in_sync";
    const COLUMNS: &'static str = "state  failures  accepted  executed  a b c (state/in sync)";

    fn seconds(&self) -> f64 {
        self.seconds
    }

    fn csv(&self) -> String {
        let [a, b, c] = self.endpoints;
        format!(
            "{:.2},{},{},{},{},{},{},{},{},{},{}",
            self.seconds,
            self.state,
            self.failures,
            self.accepted,
            self.executed,
            a.0,
            a.1,
            b.0,
            b.1,
            c.0,
            c.1
        )
    }

    fn columns(&self) -> String {
        let [a, b, c] = self.endpoints;
        format!(
            "{:>5}  {:>8}  {:>8}  {:>8}  {}/{} {}/{} {}/{}",
            self.state, self.failures, self.accepted, self.executed, a.0, a.1, b.0, b.1, c.0, c.1
        )
    }

    fn key(&self) -> String {
        format!(
            "{} {} {} {:?}",
            self.state, self.failures, self.executed, self.endpoints
        )
    }
}

type Timeline<'a> = timeline::Timeline<'a, Sample>;

/// One sample: the node's `/metrics` and `/status`.
fn sample(node: &Node, began: Instant) -> Result<Sample, String> {
    let metrics = http::get(&node.address, "/metrics")?;
    let status = http::get(&node.address, "/status")?;
    let value = |series: &str| metric(&metrics, series);
    let mut endpoints = [(0, 0); 3];
    for (slot, name) in endpoints.iter_mut().zip(NAMES) {
        *slot = (
            value(&format!(
                "treasury_rpc_endpoint_state{{endpoint=\"{name}\"}}"
            ))?,
            value(&format!(
                "treasury_rpc_endpoint_in_sync{{endpoint=\"{name}\"}}"
            ))?,
        );
    }
    Ok(Sample {
        seconds: began.elapsed().as_secs_f64(),
        state: value("treasury_circuit_breaker_state")?,
        failures: value(r#"treasury_submissions_total{asset="native",result="failed"}"#)?
            + value("treasury_ledger_read_failures_total")?,
        accepted: value(r#"treasury_submissions_total{asset="native",result="accepted"}"#)?,
        executed: crate::http::executed_total(&status)?,
        endpoints,
    })
}

fn destination(i: u64) -> String {
    format!("0x{:040x}", 0xe9d0_0000_u64 + i)
}

fn amount(i: u64) -> u128 {
    2_000_000_000_000_000 + u128::from(i)
}

fn queue(node: &Node, mut range: std::ops::Range<u64>) -> Result<(), String> {
    range.try_for_each(|i| node.queue_as(TOKEN, &destination(i), amount(i), "failover endpoints"))
}

fn set(proxy: &FaultProxy, mode: Mode) -> Result<(), String> {
    proxy.set_mode(mode).map_err(|e| format!("proxy: {e}"))
}

fn steps(
    anvil: &Anvil,
    proxies: &[FaultProxy; 3],
    node: &Node,
    t: &mut Timeline<'_>,
) -> Result<(), String> {
    let minute = Duration::from_secs(60);
    let mut queued = 0;

    // 1. All three up.
    t.event(&format!("queue {BATCH} disbursements, three endpoints up"));
    queue(node, queued..queued + BATCH)?;
    queued += BATCH;
    let start = t.until(
        "the first disbursements executed",
        minute,
        |s| s.executed == queued && s.endpoints.iter().all(|e| *e == (0, 1)),
        any,
    )?;
    check(
        start.failures == 0,
        format!("{} failed calls with every endpoint up", start.failures),
    )?;

    // 2. `a` cut: the pool pays on; the executor's breaker sees nothing.
    set(&proxies[0], Mode::Refuse)?;
    t.event(&format!(
        "endpoint a cut (connections refused); queue {BATCH} more"
    ));
    queue(node, queued..queued + BATCH)?;
    queued += BATCH;
    let never_failed = |s: &Sample| {
        check(
            s.state == 0 && s.failures == 0,
            format!(
                "the executor's breaker saw a failure with one endpoint of three down: state {}, {} failed calls",
                s.state, s.failures
            ),
        )
    };
    t.until(
        "a's breaker to open",
        minute,
        |s| s.endpoints[0].0 == 1,
        never_failed,
    )?;
    t.event("a's own breaker open; the executor's breaker closed, no failed call");
    t.until(
        "the second batch executed",
        minute,
        |s| s.executed == queued,
        never_failed,
    )?;
    t.event("second batch paid through b and c");

    // 3. `a` back, `b` stale: nothing paid twice. `a` and `c` are made slow first, so
    //    that `b` ranks first (same head, lowest latency) and answers the lookups.
    let slow = Mode::Latency(Duration::from_millis(20));
    set(&proxies[0], slow)?;
    set(&proxies[2], slow)?;
    set(&proxies[1], Mode::StaleReads)?;
    t.event("a restored; a and c slowed (20 ms a chunk); b serves stale reads (lookups: unknown)");
    thread::sleep(Duration::from_millis(POLL_MS * 5)); // the latency averages settle
    let phase_3 = t.samples.len();
    t.event(&format!("queue {BATCH} more"));
    queue(node, queued..queued + BATCH)?;
    queued += BATCH;
    t.until(
        "the third batch executed",
        minute,
        |s| s.executed == queued,
        never_failed,
    )?;
    // The counter, not the sampled gauge: b's breaker may open and close again (its
    // probe, a head read, succeeds) between two samples.
    let metrics = http::get(&node.address, "/metrics")?;
    let opened = metric(
        &metrics,
        r#"treasury_rpc_endpoint_transitions_total{endpoint="b",from="closed",to="open"}"#,
    )
    .unwrap_or(0);
    let seen = t.samples[phase_3..].iter().any(|s| s.endpoints[1].0 == 1);
    check(
        opened > 0 || seen,
        "b's stale reads never opened its breaker: it was still trusted".into(),
    )?;
    let stale = proxies[1].stale_answers();
    check(
        stale > 0,
        "b never answered a lookup stale: the drill proved nothing".into(),
    )?;
    t.event(&format!(
        "third batch paid; b gave {stale} stale answers, was caught and its breaker opened"
    ));
    for proxy in proxies {
        set(proxy, Mode::Pass)?;
    }
    let a_back = t.until("a back in sync", minute, |s| s.endpoints[0] == (0, 1), any)?;
    check(
        a_back.failures == 0,
        format!("{} failed calls so far", a_back.failures),
    )?;

    // 4. Everything paid; all cut: the breaker opens after exactly 5 failed calls, then
    //    closes by itself once one endpoint is back, with nothing to submit.
    for proxy in proxies {
        set(proxy, Mode::Refuse)?;
    }
    t.event("all three endpoints cut, nothing left to pay");
    let opened = t.until(
        "the executor's breaker to open",
        minute,
        |s| s.state == 1,
        any,
    )?;
    check(
        opened.failures == 5,
        format!(
            "opened after {} failed calls, expected exactly 5",
            opened.failures
        ),
    )?;
    t.event("executor's breaker open after exactly 5 failed calls");
    let accepted = opened.accepted;
    set(&proxies[2], Mode::Pass)?;
    let restored = Instant::now();
    t.event("endpoint c restored");
    let ticks = Duration::from_millis(POLL_MS * 10);
    let closed = t.until(
        "the executor's breaker to close with no payment traffic",
        Duration::from_secs(TIMEOUT_SECS) + ticks,
        |s| s.state == 0,
        |s| {
            check(
                s.accepted == accepted,
                "a submission while nothing was queued".into(),
            )
        },
    )?;
    t.event(&format!(
        "closed {:.1}s after the restore, by head-read probes ({} failed calls in all)",
        restored.elapsed().as_secs_f64(),
        closed.failures
    ));

    // 5. Pay through the one endpoint; then everything back.
    queue(node, queued..queued + BATCH)?;
    queued += BATCH;
    t.event(&format!("queue {BATCH} more through c alone"));
    t.until(
        "the last batch executed",
        minute,
        |s| s.executed == queued,
        any,
    )?;
    set(&proxies[0], Mode::Pass)?;
    set(&proxies[1], Mode::Pass)?;
    t.until(
        "every endpoint closed and in sync",
        minute,
        |s| s.endpoints.iter().all(|e| *e == (0, 1)),
        any,
    )?;
    t.event("a and b restored: all three closed and in sync");

    let nonce = check_paid_once(anvil, queued, destination, amount)?;
    t.event(&format!(
        "on anvil: {queued} destinations paid exactly their amount once; treasury nonce {nonce}"
    ));
    Ok(())
}
