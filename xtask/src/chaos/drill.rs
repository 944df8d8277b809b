//! The drill, end to end: the node built, a fresh scratch directory, the seed, anvil (and
//! the fault proxy under `--faults`), the token deployed, the node's configuration; then
//! the phases; last, the line naming the seed, the time taken and the logs.

use std::time::Instant;

use super::disbursements::by_asset;
use super::log::Log;
use super::options::Options;
use super::phases::crash_and_check;
use super::rig::Rig;
use super::rng::clock_seed;
use super::token::{SYMBOL, Token};
use crate::anvil::Anvil;
use crate::cargo::fresh_dir;

pub(super) fn drill(options: &Options) -> Result<(), String> {
    let began = Instant::now();
    let binary = crate::cargo::build_node("chaos")?;
    let scratch = crate::cargo::target_dir().join("xtask-chaos");
    fresh_dir(&scratch)?;
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
        Some(anvil.fault_proxy()?)
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
    // Before the node's first start: the token it pays, in its configuration.
    let token = Token::deploy(&anvil, options.disbursements)?;
    let (native, tokens) = by_asset(options.disbursements);
    eprintln!(
        "==> [chaos] token {SYMBOL} deployed at {}, its supply moved to the treasury; \
         {native} disbursements pay ether, {tokens} pay {SYMBOL}",
        token.address
    );
    let rig = Rig::new(binary, &scratch, &rpc, faulty, &token)?;
    // The drill's clock starts with the crash phase (the node built, anvil up).
    let log = Log::new(vec![scratch.join("drill.log"), rig.log.clone()]);
    let result = crash_and_check(options, seed, &anvil, proxy.as_ref(), &rig, &token, &log);
    eprintln!(
        "==> [chaos] seed {seed}; {:.1} s in all; drill log: {}; node log: {}",
        began.elapsed().as_secs_f64(),
        scratch.join("drill.log").display(),
        rig.log.display()
    );
    result
}
