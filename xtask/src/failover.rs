//! `cargo xtask failover`: the failover drill, automated, against a real chain.
//!
//! anvil ← fault proxy ← node (EVM ledger, breaker timeout 3 s). Queue 10 disbursements and
//! see them paid; cut the proxy (connections refused) and queue 10 more; then check, by
//! scraping `/metrics`: the breaker opens after exactly 5 failed ledger calls and makes no
//! call while open; after the timeout it probes (half-open) and, the endpoint still down,
//! opens again after exactly one more failure; with the proxy restored (slow at first, so
//! that the scrapes see the half-open state) it closes after 2 accepted submissions and
//! the backlog drains. Last, on anvil: every destination holds
//! exactly its amount (paid once) and the treasury's nonce is 20 (no gap, no extra).
//! Prints the timeline and writes it to `failover-timeline.csv` in the target directory
//! (`target/` unless `CARGO_TARGET_DIR` is set).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use faultproxy::{FaultProxy, Mode};

use crate::Error;
use crate::anvil::{self, Anvil};
use crate::cargo::fresh_dir;
use crate::http;
use crate::scrape;
use crate::timeline::{self, Row, any};

const TOKEN: &str = "failover-drill-admin-token";
const TIMEOUT_SECS: u64 = 3;
const FIRST: u64 = 10;
const SECOND: u64 = 10;

pub fn about() -> String {
    "anvil + fault proxy + node: breaker opens, probes, closes; every payment exactly once; \
     then the same with 3 endpoints (--endpoints 3)"
        .into()
}

/// `cargo xtask failover [--endpoints 1|3]`: one drill, or (with no argument) both.
pub fn main(args: &[std::ffi::OsString]) -> Result<(), Error> {
    let args: Vec<&str> = args
        .iter()
        .map(|arg| {
            arg.to_str()
                .ok_or_else(|| Error::Usage(format!("not UTF-8: {}", arg.to_string_lossy())))
        })
        .collect::<Result<_, _>>()?;
    match args.as_slice() {
        [] => run_both().map_err(Error::Failed),
        ["-h" | "--help"] => {
            println!("cargo xtask failover [--endpoints 1|3]: {}", about());
            Ok(())
        }
        ["--endpoints", "1"] => run().map_err(Error::Failed),
        ["--endpoints", "3"] => crate::failover_pool::run().map_err(Error::Failed),
        ["--endpoints", other] => Err(Error::Usage(format!("--endpoints: 1 or 3, got `{other}`"))),
        [other, ..] => Err(Error::Usage(format!(
            "unexpected argument `{other}` for `failover`"
        ))),
    }
}

/// Both drills: one endpoint, then three.
pub fn run_both() -> Result<(), String> {
    run()?;
    crate::failover_pool::run()
}

/// The drill; `Err` says which check failed.
pub fn run() -> Result<(), String> {
    let binary = crate::cargo::build_node("failover")?;
    let target = crate::cargo::target_dir();
    let scratch = target.join("xtask-failover");
    fresh_dir(&scratch)?;

    let anvil = Anvil::start(&[])?;
    let proxy = anvil.fault_proxy()?;
    eprintln!(
        "==> [failover] anvil on {}, fault proxy on {}",
        anvil.address,
        proxy.addr()
    );
    let config = write_evm_config(
        &scratch,
        &[&proxy.addr().to_string()],
        TOKEN,
        &format!("poll_interval_ms = 200\n[circuit_breaker]\ntimeout_secs = {TIMEOUT_SECS}\n"),
        "request_timeout_ms = 2000\n",
    )?;
    let mut node = Node::start(&binary, &config, &scratch.join("node.log"))?;
    let result = drill(&anvil, &proxy, &node, target);
    node.stop();
    if result.is_err() {
        eprintln!(
            "==> [failover] node log: {}",
            scratch.join("node.log").display()
        );
    }
    result
}

/// Writes anvil's account-0 key and a node configuration for the EVM ledger at `rpc`
/// (`host:port` of each endpoint: one is `rpc_url`; several are `rpc_urls`, named `a`,
/// `b`, `c`, …) into `scratch`, with the database there too. `extra` is appended at the
/// top level (TOML keys, then any tables but `[evm]`); `evm` holds the lines of the `[evm]`
/// table (subtables such as `[evm.endpoint_breaker]` may end it), which this writes last.
/// Returns the configuration's path. The chaos drill, the pool drill and the node bench
/// use it too.
///
/// Unless `evm` sets `confirmations`, the table gets `confirmations = 1`: the xtasks run
/// the node against an anvil that mines a block per transaction (auto-mining) and none
/// without one, so at the node's default depth (12 blocks) the last payments of a drill
/// would never be buried that deep and never reach Executed. At 1 a payment is Executed at
/// first inclusion, as before confirmations existed, and such a chain never takes a block
/// back. (The chaos drill's `--block-time` keeps it too: a payment counts as it did before
/// confirmations.) A drill whose chain misbehaves (the chaos drill's `--faults`) sets its
/// own depth.
pub(crate) fn write_evm_config(
    scratch: &Path,
    rpc: &[&str],
    token: &str,
    extra: &str,
    evm: &str,
) -> Result<PathBuf, String> {
    let key = scratch.join("treasury.key");
    std::fs::write(&key, format!("0x{}\n", anvil::KEY_0))
        .map_err(|e| format!("cannot write {}: {e}", key.display()))?;
    let config = scratch.join("node.toml");
    let text = evm_config_text(
        rpc,
        &key.display().to_string(),
        &scratch.join("governance.db").display().to_string(),
        token,
        extra,
        evm,
    )?;
    std::fs::write(&config, text).map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    Ok(config)
}

/// The text [`write_evm_config`] writes.
fn evm_config_text(
    rpc: &[&str],
    key: &str,
    db: &str,
    token: &str,
    extra: &str,
    evm: &str,
) -> Result<String, String> {
    if extra.lines().any(|line| line.trim() == "[evm]") {
        return Err("an [evm] table in the top-level lines: pass its keys as `evm`".into());
    }
    let sets = |name: &str| {
        evm.lines().any(|line| {
            line.split_once('=')
                .is_some_and(|(key, _)| key.trim() == name)
        })
    };
    let confirmations = if sets("confirmations") {
        ""
    } else {
        "# anvil auto-mines: no block without a transaction, so the last payments would\n\
         # never be 12 deep (the default). Executed at first inclusion.\n\
         confirmations = 1\n"
    };
    let endpoints = match rpc {
        [one] => format!("rpc_url = \"http://{one}\""),
        several => {
            let named: Vec<String> = several
                .iter()
                .zip('a'..='z')
                .map(|(address, name)| {
                    format!("{{ url = \"http://{address}\", name = \"{name}\" }}")
                })
                .collect();
            format!("rpc_urls = [{}]", named.join(", "))
        }
    };
    Ok(format!(
        "ledger = \"evm\"\n{endpoints}\ntreasury_key_file = \"{key}\"\n\
         db_path = \"{db}\"\nadmin_token = \"{token}\"\n{extra}[evm]\n{confirmations}{evm}"
    ))
}

/// A `node run --config CONFIG` process on an ephemeral port, its stderr appended to a
/// log file; killed (SIGKILL) on drop if still running. The chaos drill reuses it.
pub(crate) struct Node {
    child: Child,
    /// `127.0.0.1:PORT`, from the `listening on` line.
    pub(crate) address: String,
}

impl Node {
    /// Starts the node and waits (60 s at most) until it listens. The log is appended to,
    /// so restarts on one log keep every run's lines.
    pub(crate) fn start(binary: &Path, config: &Path, log: &Path) -> Result<Node, String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("cannot open the node's log {}: {e}", log.display()))?;
        let mut child = Command::new(binary)
            .args(["run", "--config"])
            .arg(config)
            .env("TB_LISTEN", "127.0.0.1:0")
            .env_remove("TB_CONFIG")
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
            .env_remove("TB_GOVERNANCE_DB_PATH")
            .env_remove("TB_ADMIN_TOKEN")
            .env_remove("TB_CRASH_AT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        match scrape::listening_address(&mut child) {
            Ok(address) => Ok(Node { child, address }),
            Err(error) => {
                scrape::stop(&mut child);
                Err(error)
            }
        }
    }

    /// SIGTERM (the node finishes its tick and exits), then reaps it.
    pub(crate) fn stop(&mut self) {
        scrape::stop(&mut self.child);
    }

    /// SIGKILL (`Child::kill` on unix), then reaps it: a crash, nothing drained or
    /// flushed.
    pub(crate) fn kill_9(&mut self) -> Result<(), String> {
        self.child
            .kill()
            .map_err(|e| format!("cannot kill the node: {e}"))?;
        self.child
            .wait()
            .map(drop)
            .map_err(|e| format!("cannot reap the node: {e}"))
    }

    fn queue(&self, destination: &str, amount: u128) -> Result<(), String> {
        self.queue_as(TOKEN, destination, amount, "failover drill")
    }

    /// Queues one disbursement through the admin API with `token` (201 expected).
    pub(crate) fn queue_as(
        &self,
        token: &str,
        destination: &str,
        amount: u128,
        memo: &str,
    ) -> Result<(), String> {
        let body =
            format!(r#"{{"destination":"{destination}","amount":"{amount}","memo":"{memo}"}}"#);
        let answer = http::request(
            &self.address,
            "POST",
            "/admin/disbursements",
            Some(token),
            Some(&body),
        )?;
        if answer.status != 201 {
            return Err(format!(
                "queueing {destination}: HTTP {}: {}",
                answer.status, answer.body
            ));
        }
        Ok(())
    }

    fn sample(&self, began: Instant) -> Result<Sample, String> {
        let metrics = http::get(&self.address, "/metrics")?;
        let status = http::get(&self.address, "/status")?;
        let value = |series: &str| metric(&metrics, series);
        Ok(Sample {
            seconds: began.elapsed().as_secs_f64(),
            state: value("treasury_circuit_breaker_state")?,
            failures: value(r#"treasury_submissions_total{asset="native",result="failed"}"#)?
                + value("treasury_ledger_read_failures_total")?,
            successes: value("treasury_circuit_breaker_successes")?,
            accepted: value(r#"treasury_submissions_total{asset="native",result="accepted"}"#)?,
            to_half_open: value(
                r#"treasury_circuit_breaker_transitions_total{from="open",to="half_open"}"#,
            )?,
            to_open_again: value(
                r#"treasury_circuit_breaker_transitions_total{from="half_open",to="open"}"#,
            )?,
            to_closed: value(
                r#"treasury_circuit_breaker_transitions_total{from="half_open",to="closed"}"#,
            )?,
            executed: crate::http::executed_total(&status)?,
        })
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    seconds: f64,
    state: u64,
    /// Failed ledger calls so far (submissions and reads): what the breaker counted.
    failures: u64,
    successes: u64,
    accepted: u64,
    to_half_open: u64,
    to_open_again: u64,
    to_closed: u64,
    executed: u64,
}

/// A series' value in a Prometheus text exposition (`name{labels} value`).
pub(crate) fn metric(text: &str, series: &str) -> Result<u64, String> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map(|value| value as u64)
        .ok_or_else(|| format!("no {series} in /metrics"))
}

impl Row for Sample {
    const CSV_HEADER: &'static str = "seconds,state,failures,successes,executed";
    const COLUMNS: &'static str = "state  failures  successes  executed";

    fn seconds(&self) -> f64 {
        self.seconds
    }

    fn csv(&self) -> String {
        format!(
            "{:.2},{},{},{},{}",
            self.seconds, self.state, self.failures, self.successes, self.executed
        )
    }

    fn columns(&self) -> String {
        format!(
            "{:>5}  {:>8}  {:>9}  {:>8}",
            self.state, self.failures, self.successes, self.executed
        )
    }

    fn key(&self) -> String {
        format!(
            "{} {} {} {}",
            self.state, self.failures, self.successes, self.executed
        )
    }
}

type Timeline<'a> = timeline::Timeline<'a, Sample>;

fn destination(i: u64) -> String {
    format!("0x{:040x}", 0xd15b_0000_u64 + i)
}

fn amount(i: u64) -> u128 {
    1_000_000_000_000_000 + u128::from(i)
}

fn drill(anvil: &Anvil, proxy: &FaultProxy, node: &Node, target: &Path) -> Result<(), String> {
    let mut t = Timeline::new("failover", |began| node.sample(began));
    let result = steps(anvil, proxy, node, &mut t);
    t.print();
    let csv = target.join("failover-timeline.csv");
    std::fs::write(&csv, t.csv()).map_err(|e| format!("cannot write {}: {e}", csv.display()))?;
    eprintln!("==> [failover] timeline written to {}", csv.display());
    result
}

fn steps(
    anvil: &Anvil,
    proxy: &FaultProxy,
    node: &Node,
    t: &mut Timeline<'_>,
) -> Result<(), String> {
    let minute = Duration::from_secs(60);
    let open_for = Duration::from_secs(TIMEOUT_SECS);

    t.event(&format!("queue {FIRST} disbursements, endpoint up"));
    for i in 0..FIRST {
        node.queue(&destination(i), amount(i))?;
    }
    t.until(
        "the first disbursements executed",
        minute,
        |s| s.executed == FIRST,
        any,
    )?;

    proxy
        .set_mode(Mode::Refuse)
        .map_err(|e| format!("proxy: {e}"))?;
    t.event(&format!(
        "proxy cut (connections refused); queue {SECOND} more"
    ));
    for i in FIRST..FIRST + SECOND {
        node.queue(&destination(i), amount(i))?;
    }
    let opened = t.until("the breaker to open", minute, |s| s.state == 1, any)?;
    check(
        opened.failures == 5,
        format!(
            "opened after {} failed calls, expected exactly 5",
            opened.failures
        ),
    )?;
    t.event("breaker open after exactly 5 failed calls");

    thread::sleep(open_for / 2);
    let held = t.sample()?;
    check(
        held.state == 1 && held.failures == 5,
        format!(
            "while open: state {} after {} failures (expected 1, no new calls)",
            held.state, held.failures
        ),
    )?;
    t.event("no ledger call while open");

    let reopened = t.until(
        "a probe after the timeout",
        minute,
        |s| s.to_open_again >= 1,
        any,
    )?;
    check(
        reopened.to_half_open >= 1,
        "no open -> half-open transition".into(),
    )?;
    check(
        reopened.failures == 6,
        format!(
            "the failed probe: {} failures in all, expected 6",
            reopened.failures
        ),
    )?;
    t.event("half-open after the timeout; the probe failed (endpoint still down): open again");

    // Restored, but slow at first (each chunk 300 ms late): the half-open probes then
    // take long enough for the scrapes to see state 2 and the successes counting up.
    let before = t.sample()?;
    proxy
        .set_mode(Mode::Latency(Duration::from_millis(300)))
        .map_err(|e| format!("proxy: {e}"))?;
    t.event("proxy restored, slow (300 ms per chunk)");
    t.until("the breaker to go half-open", minute, |s| s.state == 2, any)?;
    t.event("half-open: probing");
    // The state gauge moves at the transition, mid-tick; the submission counters when the
    // tick ends: wait for both.
    let closed = t.until(
        "the breaker to close after 2 accepted submissions",
        minute,
        |s| s.state == 0 && s.accepted >= before.accepted + 2,
        any,
    )?;
    check(
        closed.to_closed == 1,
        format!("{} half-open -> closed transitions", closed.to_closed),
    )?;
    check(
        closed.failures == 6,
        format!("{} failures in all, expected 6", closed.failures),
    )?;
    t.event("half-open, 2 probe successes: closed");
    proxy
        .set_mode(Mode::Pass)
        .map_err(|e| format!("proxy: {e}"))?;
    t.event("proxy at full speed");

    t.until(
        "the backlog to drain",
        minute,
        |s| s.executed == FIRST + SECOND,
        any,
    )?;
    t.event("backlog drained");

    let nonce = check_paid_once(anvil, FIRST + SECOND, destination, amount)?;
    t.event(&format!(
        "on anvil: {} destinations paid exactly their amount once; treasury nonce {nonce}",
        FIRST + SECOND
    ));
    Ok(())
}

/// On anvil: destinations `0..n` each hold exactly their amount (paid once), and the
/// treasury sent exactly `n` transactions. Returns the treasury's nonce.
pub(crate) fn check_paid_once(
    anvil: &Anvil,
    n: u64,
    destination: impl Fn(u64) -> String,
    amount: impl Fn(u64) -> u128,
) -> Result<u64, String> {
    for i in 0..n {
        let paid = anvil.balance(&destination(i))?;
        check(
            paid == amount(i),
            format!(
                "{} holds {paid} wei, expected {} (paid exactly once)",
                destination(i),
                amount(i)
            ),
        )?;
    }
    let nonce = anvil.nonce("latest")?;
    check(
        nonce == n,
        format!("the treasury sent {nonce} transactions, expected {n}"),
    )?;
    Ok(nonce)
}

pub(crate) fn check(ok: bool, failure: String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(failure) }
}

#[cfg(test)]
mod tests {
    use super::evm_config_text;

    fn text(extra: &str, evm: &str) -> Result<String, String> {
        evm_config_text(&["127.0.0.1:8545"], "/k", "/db", "t", extra, evm)
    }

    /// The lines of the `[evm]` table (up to the next table or the end), comments left out.
    fn evm_table(text: &str) -> Vec<&str> {
        let mut lines = text.lines().skip_while(|l| *l != "[evm]").skip(1);
        let mut table = vec![];
        for line in lines.by_ref() {
            if line.starts_with('[') {
                break;
            }
            if !line.starts_with('#') {
                table.push(line);
            }
        }
        table
    }

    #[test]
    fn an_instant_mining_anvil_gets_one_confirmation_in_the_one_evm_table() {
        let plain = text(
            "poll_interval_ms = 100\n[circuit_breaker]\ntimeout_secs = 3\n",
            "",
        )
        .expect("a config");
        assert_eq!(plain.matches("[evm]").count(), 1, "{plain}");
        assert_eq!(evm_table(&plain), ["confirmations = 1"], "{plain}");
        assert!(
            plain.find("poll_interval_ms") < plain.find("[circuit_breaker]"),
            "top-level keys before the first table: {plain}"
        );

        let failover = text("", "request_timeout_ms = 2000\n").expect("a config");
        assert_eq!(
            evm_table(&failover),
            ["confirmations = 1", "request_timeout_ms = 2000"]
        );
    }

    /// Several endpoints are a named `rpc_urls` list, and an `[evm]` subtable after the
    /// drill's keys takes none of the table's (the default depth is written first).
    #[test]
    fn a_pool_is_named_and_a_subtable_ends_the_evm_table() {
        let text = evm_config_text(
            &["127.0.0.1:1", "127.0.0.1:2"],
            "/k",
            "/db",
            "t",
            "",
            "request_timeout_ms = 2000\n[evm.endpoint_breaker]\ntimeout_secs = 3\n",
        )
        .expect("a config");
        assert!(
            text.contains(
                r#"rpc_urls = [{ url = "http://127.0.0.1:1", name = "a" }, { url = "http://127.0.0.1:2", name = "b" }]"#
            ),
            "{text}"
        );
        assert_eq!(
            evm_table(&text),
            ["confirmations = 1", "request_timeout_ms = 2000"],
            "{text}"
        );
        assert!(
            text.trim_end()
                .ends_with("[evm.endpoint_breaker]\ntimeout_secs = 3"),
            "{text}"
        );
    }

    #[test]
    fn a_drill_that_sets_its_depth_keeps_it() {
        let config = text("", "confirmations = 3\nbump_percent = 20\n").expect("a config");
        assert_eq!(
            evm_table(&config),
            ["confirmations = 3", "bump_percent = 20"]
        );
        assert!(
            text("[evm]\nchain_id = 1\n", "").is_err(),
            "a second [evm] table would be a TOML error"
        );
    }
}
