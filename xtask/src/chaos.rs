//! `cargo xtask chaos`: exactly once under `kill -9`, against a real chain.
//!
//! anvil (auto-mining, or a block every `--block-time` seconds) ← node (EVM ledger, a
//! fresh database). A queueing thread sends M disbursements to distinct fresh addresses
//! with distinct amounts, spread over the crash phase, each with an external key so that a
//! request whose answer a kill swallowed can be sent again without queueing twice.
//! Meanwhile the node is killed with SIGKILL at a random moment 50–1500 ms after each
//! start and restarted on the same database, N times; then it runs undisturbed until every
//! disbursement is executed or cancelled. Last, the store (`GET /admin/disbursements`,
//! page by page) is compared with the chain: each destination queued once and holding
//! exactly its amount, each executed transaction's receipt on anvil in the block the
//! store names, and the treasury's nonce equal to the number executed (no gap, nothing
//! extra). The delays come from a xorshift generator whose seed is printed; `--seed`
//! replays the same delays (the node's timing still varies from run to run).

mod compare;
mod crash;
mod json;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::Error;
use crate::anvil::{self, Anvil};
use crate::cargo::workspace_root;
use crate::failover::Node;

use self::compare::settle_and_compare;
use self::crash::{Address, kill_repeatedly, queue_all};

const TOKEN: &str = "chaos-drill-admin-token";
/// A kill comes this long after the node listens, at random (milliseconds).
const KILL_AFTER_MS: (u64, u64) = (50, 1500);
/// How long the node may take to settle everything after the last restart.
const SETTLE: Duration = Duration::from_secs(180);
/// How long a queue request may keep failing (node down, restarting) before giving up.
const QUEUE_PATIENCE: Duration = Duration::from_secs(120);
/// Page size when reading the store back: small enough that paging is exercised.
const PAGE: usize = 100;

/// The command line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    runs: u64,
    disbursements: u64,
    block_time: Option<u64>,
    seed: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            runs: 5,
            disbursements: 200,
            block_time: None,
            seed: None,
        }
    }
}

pub fn about() -> String {
    "anvil + node killed with SIGKILL 5 times while paying 200: each paid exactly once".into()
}

const USAGE: &str = "\
cargo xtask chaos [--runs N] [--disbursements M] [--block-time SECS] [--seed S]

    --runs N            kill -9 and restart the node N times (default 5)
    --disbursements M   queue M disbursements to fresh addresses (default 200)
    --block-time SECS   anvil mines a block every SECS seconds (default: one per transaction)
    --seed S            replay the kill delays of an earlier run (default: from the clock)";

pub fn main(args: &[OsString]) -> Result<(), Error> {
    match parse_args(args)? {
        Some(options) => drill(&options).map_err(Error::Failed),
        None => {
            println!("cargo xtask chaos: {}\n\n{USAGE}", about());
            Ok(())
        }
    }
}

/// The drill with its defaults, for `validate`.
pub fn run() -> Result<(), String> {
    drill(&Options::default())
}

/// Parses the options; `None` when help was asked for.
fn parse_args(args: &[OsString]) -> Result<Option<Options>, Error> {
    let mut options = Options::default();
    let mut args = args.iter().map(|a| a.to_string_lossy());
    while let Some(arg) = args.next() {
        if matches!(arg.as_ref(), "-h" | "--help") {
            return Ok(None);
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone().into_owned(), None),
        };
        if !matches!(
            name.as_str(),
            "--runs" | "--disbursements" | "--block-time" | "--seed"
        ) {
            return Err(Error::Usage(format!(
                "unexpected argument `{arg}` for `chaos`"
            )));
        }
        let value = match inline {
            Some(value) => value,
            None => args
                .next()
                .map(|v| v.into_owned())
                .ok_or_else(|| Error::Usage(format!("`{name}` needs a value")))?,
        };
        let number = |min: u64, max: u64| -> Result<u64, Error> {
            value
                .parse::<u64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "`{name}` expects an integer from {min} to {max}, got `{value}`"
                    ))
                })
        };
        match name.as_str() {
            "--runs" => options.runs = number(0, 100_000)?,
            "--disbursements" => options.disbursements = number(1, 100_000)?,
            "--block-time" => options.block_time = Some(number(1, 60)?),
            _ => options.seed = Some(number(0, u64::MAX)?),
        }
    }
    Ok(Some(options))
}

/// xorshift64: small, seedable, good enough to pick delays.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // One splitmix64 step, so that close seeds (clock readings) start far apart.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // xorshift stays at 0 forever from 0.
        Rng(if z == 0 { 0x9e37_79b9_7f4a_7c15 } else { z })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform enough in `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

fn clock_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ u64::from(std::process::id()).rotate_left(32)
}

fn destination(i: u64) -> String {
    format!("0x{:040x}", 0xc4a0_5000_0000_0000_u64 + i)
}

fn amount(i: u64) -> u128 {
    1_000_000_000_000_000 + 7_919 * u128::from(i) + 1
}

/// The node's files, and how to (re)start it.
struct Rig {
    binary: PathBuf,
    config: PathBuf,
    log: PathBuf,
}

impl Rig {
    fn start(&self, run: u64) -> Result<Node, String> {
        append(&self.log, &format!("\n==> [chaos] start {run}\n"));
        Node::start(&self.binary, &self.config, &self.log)
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write as _;
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = file.write_all(text.as_bytes());
    }
}

fn drill(options: &Options) -> Result<(), String> {
    let began = Instant::now();
    let binary = crate::cargo::build_node("chaos")?;
    let root = workspace_root();
    let scratch = root.join("target").join("xtask-chaos");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)
        .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
    let seed = options.seed.unwrap_or_else(clock_seed);
    eprintln!("==> [chaos] seed {seed} (`--seed {seed}` replays these kill delays)");

    let block_time = options.block_time.map(|s| s.to_string());
    let extra: Vec<&str> = match &block_time {
        Some(secs) => vec!["--block-time", secs],
        None => vec![],
    };
    let anvil = Anvil::start(&extra)?;
    eprintln!(
        "==> [chaos] anvil on {} ({}); {} disbursements, {} kills",
        anvil.address,
        block_time
            .as_ref()
            .map_or("auto-mining".to_owned(), |s| format!("a block every {s} s")),
        options.disbursements,
        options.runs
    );
    let rig = Rig {
        binary,
        // A short breaker timeout: anvil should never fail a call, but if a loaded
        // machine makes it time out five times, the run waits 3 s rather than a minute.
        config: crate::failover::write_evm_config(
            &scratch,
            &anvil.address,
            TOKEN,
            "poll_interval_ms = 100\n[circuit_breaker]\ntimeout_secs = 3\n",
        )?,
        log: scratch.join("node.log"),
    };
    let result = crash_and_check(options, seed, &anvil, &rig);
    eprintln!(
        "==> [chaos] seed {seed}; {:.1} s in all; node log: {}",
        began.elapsed().as_secs_f64(),
        rig.log.display()
    );
    result
}

fn crash_and_check(options: &Options, seed: u64, anvil: &Anvil, rig: &Rig) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    let address: Address = Mutex::new(None);
    let abort = AtomicBool::new(false);
    // Spread the queueing over the expected crash phase, so that kills find work.
    let mean_ms = (KILL_AFTER_MS.0 + KILL_AFTER_MS.1) / 2;
    let spacing = Duration::from_millis(options.runs * mean_ms / options.disbursements)
        .min(Duration::from_secs(1));
    let began = Instant::now();

    let (queued, mut node, crashes) = thread::scope(|scope| -> Result<_, String> {
        let queuer =
            scope.spawn(|| queue_all(&address, &abort, options.disbursements, spacing, seed));
        let killed = kill_repeatedly(options.runs, &mut rng, rig, anvil, &address);
        if killed.is_err() {
            abort.store(true, Ordering::Relaxed);
        }
        let queued = queuer
            .join()
            .unwrap_or_else(|_| Err("the queueing thread panicked".into()));
        // On an error the node (if any) is dropped here, which kills it.
        let (node, crashes) = killed?;
        Ok((queued?, node, crashes))
    })?;
    eprintln!(
        "==> [chaos] {:6.2}s  all {} queued ({} requests sent again after a kill, {} of them \
         already queued by their external key); waiting for the node to settle",
        began.elapsed().as_secs_f64(),
        options.disbursements,
        queued.retries,
        queued.already_queued
    );
    let result = settle_and_compare(options, anvil, &node, began, crashes);
    node.stop();
    result
}

fn nonce(anvil: &Anvil, block: &str) -> Result<u64, String> {
    let result = anvil.rpc(
        "eth_getTransactionCount",
        &format!(r#"["{}","{block}"]"#, anvil::ACCOUNT_0),
    )?;
    let hex = result.trim_matches('"').trim_start_matches("0x");
    u64::from_str_radix(hex, 16).map_err(|e| format!("nonce {result}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Options>, Error> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse_args(&args)
    }

    #[test]
    fn options_in_both_spellings_and_bad_ones_refused() {
        assert_eq!(parse(&[]), Ok(Some(Options::default())));
        assert_eq!(
            parse(&[
                "--runs",
                "200",
                "--disbursements=10",
                "--block-time",
                "1",
                "--seed=7"
            ]),
            Ok(Some(Options {
                runs: 200,
                disbursements: 10,
                block_time: Some(1),
                seed: Some(7),
            }))
        );
        assert_eq!(parse(&["--help"]), Ok(None));
        for bad in [
            &["--runs"][..],
            &["--runs", "-1"],
            &["--disbursements", "0"],
            &["--block-time", "0"],
            &["--seed", "x"],
            &["--fast"],
        ] {
            assert!(matches!(parse(bad), Err(Error::Usage(_))), "{bad:?}");
        }
    }

    #[test]
    fn the_generator_replays_and_stays_in_range() {
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        for _ in 0..1000 {
            let delay = a.between(50, 1500);
            assert_eq!(delay, b.between(50, 1500));
            assert!((50..=1500).contains(&delay));
        }
        assert_ne!(Rng::new(0).next(), 0, "a zero seed does not stall");
    }

    #[test]
    fn destinations_and_amounts_are_distinct() {
        let destinations: std::collections::HashSet<String> = (0..1000).map(destination).collect();
        let amounts: std::collections::HashSet<u128> = (0..1000).map(amount).collect();
        assert_eq!((destinations.len(), amounts.len()), (1000, 1000));
        assert!(destinations.iter().all(|d| d.len() == 42));
    }
}
