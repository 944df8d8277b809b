//! `cargo xtask chaos`: exactly once under `kill -9`, against a real chain, optionally
//! misbehaving.
//!
//! anvil ← node (EVM ledger, a fresh database). A queueing thread sends M disbursements to
//! distinct fresh addresses with distinct amounts, spread over the crash phase, each with
//! an external key so that a request whose answer a kill swallowed can be sent again
//! without queueing twice. Meanwhile the node is killed with SIGKILL at a random moment
//! 50–1500 ms after each start and restarted on the same database, N times; after each
//! restart no destination may hold more than its amount. Then it runs undisturbed until
//! every disbursement is executed or cancelled and the executor holds for no operator.
//! Last, the store (`GET /admin/disbursements`, page by page) is compared with the chain:
//! each destination queued once and holding exactly its amount (more is a double
//! payment), each executed disbursement's transaction in the canonical chain, successful,
//! in the block the store names and at least `confirmations` deep, and the treasury's
//! nonce equal to the transactions that paid them (no gap, nothing extra).
//!
//! Without `--faults` anvil auto-mines (or mines every `--block-time` seconds), the node
//! talks to it directly and counts a payment at its first block. With `--faults` (see
//! [`faults`]) anvil mines only when a miner thread says so (every 250–400 ms), the node
//! talks to it through a fault proxy, waits for 3 confirmations and bumps fees, and a
//! fault thread drops the mempool, spikes the base fee, reorgs the last blocks and makes
//! the proxy's reads stale; the faults stop after the last restart (the blocks go on)
//! and the node must then settle everything.
//!
//! The delays come from xorshift generators seeded from one seed, which is printed;
//! `--seed` replays the same kill delays, fault schedule and block jitter (the node's
//! timing still varies from run to run).

mod compare;
mod crash;
mod faults;
mod json;
mod rpc;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use faultproxy::FaultProxy;

use crate::Error;
use crate::anvil::{self, Anvil};
use crate::cargo::workspace_root;
use crate::failover::Node;

use self::compare::{Run, compare, list, settle};
use self::crash::{Address, kill_repeatedly, queue_all};
use self::faults::{Chain, Faults, Schedule};

const TOKEN: &str = "chaos-drill-admin-token";
/// A kill comes this long after the node listens, at random (milliseconds).
const KILL_AFTER_MS: (u64, u64) = (50, 1500);
/// How long the node may take to settle everything after the last restart.
const SETTLE: Duration = Duration::from_secs(180);
/// The same under faults: fee bumps, confirmations and rebroadcasts take blocks.
const SETTLE_UNDER_FAULTS: Duration = Duration::from_secs(300);
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
    faults: Faults,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            runs: 5,
            disbursements: 200,
            block_time: None,
            seed: None,
            faults: Faults::NONE,
        }
    }
}

impl Options {
    /// What `cargo xtask validate` runs: a short drill with every fault, so that CI
    /// exercises them (under a minute once the node is built). 20 kills make a crash phase
    /// of about 16 s, which holds 4 to 8 faults: in rounds, so that 4 cover every kind.
    fn validate() -> Self {
        Self {
            runs: 20,
            disbursements: 30,
            faults: Faults::ALL,
            ..Self::default()
        }
    }
}

pub fn about() -> String {
    let o = Options::validate();
    format!(
        "anvil + fault proxy + node killed {} times while paying {}, under drops, fee spikes, \
         reorgs, stale reads: each paid once, at depth",
        o.runs, o.disbursements
    )
}

const HEADER: &str = "exactly once under kill -9, against anvil, optionally misbehaving";

const USAGE: &str = "\
cargo xtask chaos [--runs N] [--disbursements M] [--block-time SECS] [--faults LIST] [--seed S]

    --runs N            kill -9 and restart the node N times (default 5)
    --disbursements M   queue M disbursements to fresh addresses (default 200)
    --block-time SECS   anvil mines a block every SECS seconds (default: one per transaction;
                        not with --faults, which mines by itself)
    --faults LIST       make the chain misbehave meanwhile (default: none); LIST is
                        comma-separated, or `all` (or `none`):
                          drops   anvil_dropAllTransactions (the mempool forgets)
                          fees    base fee 20-80 gwei for the next 3-8 blocks
                          reorgs  anvil_reorg of the last 1 or 2 blocks (never a block
                                  already 3 deep)
                          stale   lookups by hash answered null for 2-8 s (fault proxy)
                        One every 1-4 s; anvil then runs with --no-mining and a block comes
                        every 250-400 ms, the node waits for 3 confirmations and bumps fees.
                        The faults stop after the last restart; then everything must settle.
    --seed S            replay the kill delays (and faults, and block jitter) of an earlier
                        run (default: from the clock)

Checks, at the end: no destination paid twice, no disbursement executed without its
transaction in the canonical chain at depth, the treasury's nonce exactly the payments,
no executor halted; and after every restart, no destination holding more than its amount.
`cargo xtask chaos --runs 200 --faults all` is issue 10's acceptance drill.";

pub fn main(args: &[OsString]) -> Result<(), Error> {
    match parse_args(args)? {
        Some(options) => drill(&options).map_err(Error::Failed),
        None => {
            println!("cargo xtask chaos: {HEADER}\n\n{USAGE}");
            Ok(())
        }
    }
}

/// The drill `validate` runs: short, every fault on ([`Options::validate`]).
pub fn run() -> Result<(), String> {
    drill(&Options::validate())
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
            "--runs" | "--disbursements" | "--block-time" | "--seed" | "--faults"
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
            "--faults" => {
                options.faults =
                    Faults::parse(&value).map_err(|e| Error::Usage(format!("`--faults`: {e}")))?;
            }
            _ => options.seed = Some(number(0, u64::MAX)?),
        }
    }
    if options.block_time.is_some() && !options.faults.is_empty() {
        return Err(Error::Usage(
            "`--block-time` is for the drill without faults: `--faults` mines a block every \
             250-400 ms by itself"
                .into(),
        ));
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

/// The drill's log: each event with its time since the drill began, on stderr, in
/// `drill.log`, and in the node's log (so that its lines can be read against the faults
/// and kills around them).
struct Log {
    began: Instant,
    files: Vec<PathBuf>,
}

impl Log {
    fn event(&self, what: &str) {
        let line = format!(
            "==> [chaos] {:6.2}s  {what}",
            self.began.elapsed().as_secs_f64()
        );
        eprintln!("{line}");
        for file in &self.files {
            append(file, &format!("{line}\n"));
        }
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
    eprintln!(
        "==> [chaos] seed {seed} (`--seed {seed}` replays these kill delays{})",
        if options.faults.is_empty() {
            ""
        } else {
            ", faults and block times"
        }
    );

    let faulty = !options.faults.is_empty();
    let block_time = options.block_time.map(|s| s.to_string());
    let extra: Vec<&str> = match &block_time {
        _ if faulty => vec!["--no-mining"],
        Some(secs) => vec!["--block-time", secs],
        None => vec![],
    };
    let anvil = Anvil::start(&extra)?;
    // Under faults the node reaches anvil through the proxy (stale reads); the drill
    // always reads anvil directly.
    let proxy = if faulty {
        let upstream: SocketAddr = anvil
            .address
            .parse()
            .map_err(|e| format!("anvil's address: {e}"))?;
        Some(FaultProxy::start(upstream).map_err(|e| format!("fault proxy: {e}"))?)
    } else {
        None
    };
    let rpc = proxy
        .as_ref()
        .map_or_else(|| anvil.address.clone(), |p| p.addr().to_string());
    eprintln!(
        "==> [chaos] anvil on {} ({}){}; {} disbursements, {} kills, faults: {}",
        anvil.address,
        if faulty {
            "no auto-mining: a block every 250-400 ms".to_owned()
        } else {
            block_time
                .as_ref()
                .map_or("auto-mining".to_owned(), |s| format!("a block every {s} s"))
        },
        proxy
            .as_ref()
            .map_or(String::new(), |p| format!(", fault proxy on {}", p.addr())),
        options.disbursements,
        options.runs,
        options.faults
    );
    let rig = Rig {
        binary,
        // A short breaker timeout: anvil should never fail a call, but if a loaded
        // machine makes it time out five times, the run waits 3 s rather than a minute.
        config: crate::failover::write_evm_config(
            &scratch,
            &rpc,
            TOKEN,
            "poll_interval_ms = 100\n[circuit_breaker]\ntimeout_secs = 3\n",
            &if faulty {
                faults::evm_keys()
            } else {
                String::new()
            },
        )?,
        log: scratch.join("node.log"),
    };
    // The drill's clock starts with the crash phase (the node built, anvil up).
    let log = Log {
        began: Instant::now(),
        files: vec![scratch.join("drill.log"), rig.log.clone()],
    };
    let result = crash_and_check(options, seed, &anvil, proxy.as_ref(), &rig, &log);
    eprintln!(
        "==> [chaos] seed {seed}; {:.1} s in all; drill log: {}; node log: {}",
        began.elapsed().as_secs_f64(),
        scratch.join("drill.log").display(),
        rig.log.display()
    );
    result
}

/// Sets its flags when dropped: whichever way the drill's scope is left, the threads it
/// started stop (the scope waits for them).
struct StopAll<'a>(&'a [&'a AtomicBool]);

impl Drop for StopAll<'_> {
    fn drop(&mut self) {
        for flag in self.0 {
            flag.store(true, Ordering::Relaxed);
        }
    }
}

fn crash_and_check(
    options: &Options,
    seed: u64,
    anvil: &Anvil,
    proxy: Option<&FaultProxy>,
    rig: &Rig,
    log: &Log,
) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    let address: Address = Mutex::new(None);
    let sent = AtomicU64::new(0);
    let (abort, stop_faults, stop_mining) = (
        AtomicBool::new(false),
        AtomicBool::new(false),
        AtomicBool::new(false),
    );
    let chain = Chain::new(anvil);
    // Spread the queueing over the expected crash phase, so that kills find work.
    let mean_ms = (KILL_AFTER_MS.0 + KILL_AFTER_MS.1) / 2;
    let spacing = Duration::from_millis(options.runs * mean_ms / options.disbursements)
        .min(Duration::from_secs(1));

    thread::scope(|scope| -> Result<(), String> {
        let flags = [&abort, &stop_faults, &stop_mining];
        let _stop = StopAll(&flags);
        let miner = proxy.map(|_| {
            scope.spawn(|| faults::mine(&chain, faults::miner_rng(seed), &stop_mining, log))
        });
        let injector = proxy.map(|proxy| {
            let schedule = Schedule::new(seed, options.faults);
            scope.spawn(|| faults::inject(&chain, proxy, schedule, &stop_faults, log))
        });
        let queuer = scope.spawn(|| {
            queue_all(
                &address,
                &abort,
                options.disbursements,
                spacing,
                seed,
                &sent,
            )
        });
        let killed = kill_repeatedly(options.runs, &mut rng, rig, anvil, &address, &sent, log);
        if killed.is_err() {
            abort.store(true, Ordering::Relaxed);
        }
        // After the last restart the faults stop (the proxy passes, no spike, drop or
        // reorg); the blocks go on.
        stop_faults.store(true, Ordering::Relaxed);
        let injected = injector.map(|injector| injector.join());
        let queued = queuer
            .join()
            .unwrap_or_else(|_| Err("the queueing thread panicked".into()));
        // On an error the node (if any) is dropped here, which kills it.
        let (mut node, kills) = killed?;
        let queued = queued?;
        log.event(&format!(
            "all {} queued ({} requests sent again after a kill, {} of them already queued \
             by their external key)",
            options.disbursements, queued.retries, queued.already_queued
        ));
        let injected = injected
            .transpose()
            .map_err(|_| "the fault thread panicked".to_owned())?;
        log.event("waiting for the node to settle");
        let limit = if proxy.is_some() {
            SETTLE_UNDER_FAULTS
        } else {
            SETTLE
        };
        let settled = settle(&node.address, options.disbursements, limit, log);
        // Compare on a chain that no longer moves.
        stop_mining.store(true, Ordering::Relaxed);
        let mined = miner
            .map(|miner| miner.join())
            .transpose()
            .map_err(|_| "the mining thread panicked".to_owned())?;
        let run = Run {
            options,
            kills,
            confirmations: if proxy.is_some() {
                faults::CONFIRMATIONS
            } else {
                1
            },
            injected: injected.as_ref(),
            mined: mined.as_ref(),
            began: log.began,
        };
        let result = match settled {
            Ok(records) => {
                let executed = records.iter().filter(|r| r.status == "executed").count();
                let cancelled = records.iter().filter(|r| r.status == "cancelled").count();
                log.event(&format!(
                    "settled: {executed} executed, {cancelled} cancelled"
                ));
                compare(&run, anvil, &records)
            }
            // Not settled: compare what there is anyway, for what the chain says about it
            // (the disbursements in flight show as mismatches).
            Err(unsettled) => match list(&node.address) {
                Ok(records) => match compare(&run, anvil, &records) {
                    Ok(()) => Err(unsettled),
                    Err(compared) => Err(format!("{unsettled}; and {compared}")),
                },
                Err(_) => Err(unsettled),
            },
        };
        node.stop();
        result
    })
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
                faults: Faults::NONE,
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
            &["--faults"],
            &["--faults", ""],
            &["--faults", "drops,"],
            &["--faults=quakes"],
            &["--faults", "all", "--block-time", "2"],
        ] {
            assert!(matches!(parse(bad), Err(Error::Usage(_))), "{bad:?}");
        }
    }

    #[test]
    fn faults_are_off_by_default_and_named_or_all() {
        let faults = |args: &[&str]| parse(args).map(|o| o.map(|o| o.faults));
        assert_eq!(faults(&[]), Ok(Some(Faults::NONE)));
        assert_eq!(faults(&["--faults", "all"]), Ok(Some(Faults::ALL)));
        assert_eq!(faults(&["--faults=none"]), Ok(Some(Faults::NONE)));
        assert_eq!(
            faults(&["--faults", "reorgs,stale"]).map(|f| f.map(|f| f.to_string())),
            Ok(Some("reorgs,stale".to_owned()))
        );
        assert_eq!(
            parse(&["--runs", "200", "--faults", "all"]),
            Ok(Some(Options {
                runs: 200,
                faults: Faults::ALL,
                ..Options::default()
            }))
        );
        let validate = Options::validate();
        assert_eq!(
            validate.faults,
            Faults::ALL,
            "validate exercises every fault"
        );
        assert!(
            validate.runs <= 20 && validate.disbursements <= 30,
            "and stays short"
        );
        assert!(about().contains(&format!("killed {} times", validate.runs)));
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
