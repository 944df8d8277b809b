//! `--faults`: the chain misbehaving while the node is killed.
//!
//! anvil runs with `--no-mining`; a miner thread calls `evm_mine` every 250–400 ms for the
//! whole drill, so blocks keep coming whatever the node does. A fault thread picks one
//! enabled fault every 1–4 s, in rounds (every enabled kind once per round, in a seeded
//! order, so that even a short drill sees each of them):
//!
//! - `drops`: `anvil_dropAllTransactions`, the mempool forgets every pending transaction;
//! - `fees`: a base-fee spike: for the next 3–8 blocks the miner calls
//!   `anvil_setNextBlockBaseFeePerGas` (20–80 gwei) before each `evm_mine` (anvil does
//!   not keep it from one block to the next), then stops and the fee decays;
//! - `reorgs`: `anvil_reorg [depth, []]`, depth 1 or 2: the last blocks replaced by empty
//!   ones, their transactions gone (anvil does not put them back in its pool). Never a
//!   block that has already been [`CONFIRMATIONS`] deep ([`ReorgGuard`]);
//! - `stale`: the fault proxy between the node and anvil answers lookups by hash `null`
//!   for 2–8 s (a lagging read backend), every other call passing.
//!
//! Every call that changes the chain (a block, a base fee, a drop, a reorg) is made under
//! one mutex ([`Chain`]), so that the miner and the fault thread never race: a reorg's
//! depth is decided on the head it is applied to. The schedule and the miner's jitter
//! come from the drill's seed ([`Schedule`]).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use faultproxy::{FaultProxy, Mode};

use super::Rng;
use super::rpc::head;
use crate::anvil::Anvil;

/// `[evm] confirmations` under faults: a payment is Executed this deep, the tip counted.
pub(super) const CONFIRMATIONS: u64 = 3;
/// A block every this many milliseconds, at random.
const BLOCK_EVERY_MS: (u64, u64) = (250, 400);
/// A fault every this many milliseconds, at random.
const FAULT_EVERY_MS: (u64, u64) = (1_000, 4_000);
/// A fee spike lasts this many blocks.
const SPIKE_BLOCKS: (u64, u64) = (3, 8);
/// A fee spike's base fee, in gwei (the node's cap is 200 gwei).
const SPIKE_GWEI: (u64, u64) = (20, 80);
/// A reorg's depth, asked for; [`ReorgGuard`] may make it shallower.
const REORG_DEPTH: (u64, u64) = (1, 2);
/// Stale reads last this many milliseconds.
const STALE_MS: (u64, u64) = (2_000, 8_000);
/// The longest sleep between two looks at a stop flag.
const SLICE: Duration = Duration::from_millis(25);
/// Mixed into the drill's seed, one per generator, so that the kill delays (seeded with
/// the seed itself, as before `--faults`), the faults and the miner's jitter are
/// independent streams.
const FAULT_STREAM: u64 = 0x6661_756c_7473_0001;
const MINER_STREAM: u64 = 0x6d69_6e65_7200_0002;

const GWEI: u128 = 1_000_000_000;

/// The node's `[evm]` table under faults: Executed at [`CONFIRMATIONS`]; a transaction
/// pending for 2 blocks (or under the base fee) replaced with fees 20% higher, up to a cap
/// (200 gwei) well above the spikes (80 gwei at most), so that bumping can always win.
pub(super) fn evm_keys() -> String {
    format!(
        "confirmations = {CONFIRMATIONS}\n\
         bump_after_blocks = 2\n\
         bump_percent = 20\n\
         max_fee_per_gas = \"200000000000\"\n\
         max_priority_fee_per_gas = \"2000000000\"\n"
    )
}

/// One kind of fault, as `--faults` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Drops,
    Fees,
    Reorgs,
    Stale,
}

impl Kind {
    pub(super) const ALL: [Kind; 4] = [Kind::Drops, Kind::Fees, Kind::Reorgs, Kind::Stale];

    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Drops => "drops",
            Kind::Fees => "fees",
            Kind::Reorgs => "reorgs",
            Kind::Stale => "stale",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The faults a drill injects (`--faults`); none by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Faults([bool; 4]);

impl Faults {
    pub(super) const NONE: Faults = Faults([false; 4]);
    pub(super) const ALL: Faults = Faults([true; 4]);

    /// `drops,fees,reorgs,stale` (any of them, comma-separated, in any order), `all`, or
    /// `none`.
    pub(super) fn parse(list: &str) -> Result<Faults, String> {
        let names = || {
            Kind::ALL
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if list.trim() == "none" {
            return Ok(Faults::NONE);
        }
        let mut faults = Faults::NONE;
        for item in list.split(',').map(str::trim) {
            match item {
                "" => return Err(format!("an empty fault name in `{list}`")),
                "all" => faults = Faults::ALL,
                _ => match Kind::ALL.iter().find(|k| k.name() == item) {
                    Some(kind) => faults.0[kind.index()] = true,
                    None => {
                        return Err(format!(
                            "unknown fault `{item}` (faults: {}, all, none)",
                            names()
                        ));
                    }
                },
            }
        }
        Ok(faults)
    }

    pub(super) fn is_empty(self) -> bool {
        self == Faults::NONE
    }

    /// The enabled kinds, in [`Kind::ALL`]'s order.
    pub(super) fn kinds(self) -> Vec<Kind> {
        Kind::ALL
            .into_iter()
            .filter(|k| self.0[k.index()])
            .collect()
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = self.kinds().into_iter().map(Kind::name).collect();
        f.write_str(&names.join(","))
    }
}

/// One fault, with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// `anvil_dropAllTransactions`.
    DropAll,
    /// The next `blocks` blocks mined at this base fee (wei).
    Spike { blocks: u64, base_fee: u128 },
    /// `anvil_reorg [depth, []]`, if [`ReorgGuard`] allows that deep.
    Reorg { depth: u64 },
    /// The proxy in `StaleReads` this long.
    Stale { lasting: Duration },
}

impl Action {
    pub(super) fn kind(self) -> Kind {
        match self {
            Action::DropAll => Kind::Drops,
            Action::Spike { .. } => Kind::Fees,
            Action::Reorg { .. } => Kind::Reorgs,
            Action::Stale { .. } => Kind::Stale,
        }
    }
}

/// The faults to inject, each with the wait before it: a function of the seed and the
/// enabled kinds only, so that `--seed` replays it.
pub(super) struct Schedule {
    rng: Rng,
    kinds: Vec<Kind>,
    /// What is left of this round, drawn from the end.
    round: Vec<Kind>,
}

impl Schedule {
    pub(super) fn new(seed: u64, faults: Faults) -> Schedule {
        Schedule {
            rng: Rng::new(seed ^ FAULT_STREAM),
            kinds: faults.kinds(),
            round: vec![],
        }
    }

    /// The next fault and how long to wait before it; `None` when no fault is enabled.
    pub(super) fn next_fault(&mut self) -> Option<(Duration, Action)> {
        if self.kinds.is_empty() {
            return None;
        }
        if self.round.is_empty() {
            // A new round: every enabled kind once, shuffled (Fisher–Yates).
            self.round.clone_from(&self.kinds);
            for i in (1..self.round.len()).rev() {
                let j = self.rng.between(0, i as u64) as usize;
                self.round.swap(i, j);
            }
        }
        let kind = self.round.pop()?;
        let wait = Duration::from_millis(self.rng.between(FAULT_EVERY_MS.0, FAULT_EVERY_MS.1));
        let rng = &mut self.rng;
        let action = match kind {
            Kind::Drops => Action::DropAll,
            Kind::Fees => Action::Spike {
                blocks: rng.between(SPIKE_BLOCKS.0, SPIKE_BLOCKS.1),
                base_fee: u128::from(rng.between(SPIKE_GWEI.0, SPIKE_GWEI.1)) * GWEI,
            },
            Kind::Reorgs => Action::Reorg {
                depth: rng.between(REORG_DEPTH.0, REORG_DEPTH.1),
            },
            Kind::Stale => Action::Stale {
                lasting: Duration::from_millis(rng.between(STALE_MS.0, STALE_MS.1)),
            },
        };
        Some((wait, action))
    }
}

/// The miner's delays between blocks, from the drill's seed.
pub(super) fn miner_rng(seed: u64) -> Rng {
    Rng::new(seed ^ MINER_STREAM)
}

/// Keeps reorgs from dropping a block that has already been `confirmations` deep (the tip
/// counted as 1), whatever happened before: it remembers the highest head it has seen, so
/// the protection is cumulative over every block mined and every reorg made, and it would
/// hold even if the head went down. A reorg is also never deeper than `confirmations - 1`.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReorgGuard {
    confirmations: u64,
    highest_head: u64,
}

impl ReorgGuard {
    pub(super) fn new(confirmations: u64) -> ReorgGuard {
        ReorgGuard {
            confirmations: confirmations.max(1),
            highest_head: 0,
        }
    }

    /// The chain's head was seen at `head`.
    pub(super) fn observe(&mut self, head: u64) {
        self.highest_head = self.highest_head.max(head);
    }

    /// The highest block that has ever been `confirmations` deep: it and every block below
    /// stay. (Block 0 always stays: before anything is that deep, this is 0.)
    pub(super) fn protected(&self) -> u64 {
        self.highest_head.saturating_sub(self.confirmations - 1)
    }

    /// How deep a reorg asked to be `requested` deep at `head` may go: it replaces blocks
    /// `head - depth + 1 ..= head`, all above [`protected`](Self::protected). 0: none.
    pub(super) fn allowed(&mut self, head: u64, requested: u64) -> u64 {
        self.observe(head);
        requested
            .min(self.confirmations - 1)
            .min(head.saturating_sub(self.protected()))
    }
}

/// What the chain-changing calls share, under one mutex.
struct State {
    guard: ReorgGuard,
    spike: Option<Spike>,
}

#[derive(Debug, Clone, Copy)]
struct Spike {
    blocks_left: u64,
    base_fee: u128,
}

/// anvil, with the one mutex that every chain-changing call (a block, a base fee, a
/// drop, a reorg) is made under.
pub(super) struct Chain<'a> {
    anvil: &'a Anvil,
    state: Mutex<State>,
}

impl<'a> Chain<'a> {
    pub(super) fn new(anvil: &'a Anvil) -> Chain<'a> {
        Chain {
            anvil,
            state: Mutex::new(State {
                guard: ReorgGuard::new(CONFIRMATIONS),
                spike: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Sleeps `length` in short slices; `false` as soon as `stop` is set.
fn pause(stop: &AtomicBool, length: Duration) -> bool {
    let until = Instant::now() + length;
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        thread::sleep((until - now).min(SLICE));
    }
}

/// Calls that failed, the first few kept.
#[derive(Debug, Default)]
pub(super) struct Failures {
    pub(super) count: u64,
    pub(super) first: Vec<String>,
}

impl Failures {
    fn note(&mut self, error: String) {
        self.count += 1;
        if self.first.len() < 5 {
            self.first.push(error);
        }
    }

    /// Notes it, and logs the first one at once (the rest go to the result).
    fn note_and_log(&mut self, what: &str, error: String, log: &super::Log) {
        if self.count == 0 {
            log.event(&format!(
                "{what} FAILED (later failures only counted): {error}"
            ));
        }
        self.note(error);
    }
}

/// What the miner did.
#[derive(Debug, Default)]
pub(super) struct Mined {
    pub(super) blocks: u64,
    /// Blocks mined at a spiked base fee.
    pub(super) spiked: u64,
    pub(super) failures: Failures,
}

/// Mines a block every 250–400 ms until `stop`; before each block of a fee spike, sets
/// the next block's base fee.
pub(super) fn mine(chain: &Chain<'_>, mut rng: Rng, stop: &AtomicBool, log: &super::Log) -> Mined {
    let mut mined = Mined::default();
    while pause(
        stop,
        Duration::from_millis(rng.between(BLOCK_EVERY_MS.0, BLOCK_EVERY_MS.1)),
    ) {
        let mut state = chain.lock();
        if let Some(spike) = state.spike.as_mut() {
            let params = format!(r#"["{:#x}"]"#, spike.base_fee);
            match chain.anvil.rpc("anvil_setNextBlockBaseFeePerGas", &params) {
                Ok(_) => mined.spiked += 1,
                Err(error) => mined.failures.note_and_log("mining", error, log),
            }
            spike.blocks_left -= 1;
            if spike.blocks_left == 0 {
                state.spike = None;
                log.event("fee spike over: the base fee decays from the next block");
            }
        }
        match chain.anvil.rpc("evm_mine", "[]") {
            Ok(_) => mined.blocks += 1,
            Err(error) => mined.failures.note_and_log("mining", error, log),
        }
        match head(chain.anvil) {
            Ok(head) => state.guard.observe(head),
            Err(error) => mined.failures.note_and_log("mining", error, log),
        }
    }
    mined
}

/// What the fault thread did.
#[derive(Debug, Default)]
pub(super) struct Injected {
    /// Faults made, by [`Kind::index`].
    pub(super) counts: [u64; 4],
    /// Reorgs made shallower, or not made, by [`ReorgGuard`].
    pub(super) reorgs_limited: u64,
    pub(super) failures: Failures,
}

impl Injected {
    pub(super) fn count(&self, kind: Kind) -> u64 {
        self.counts[kind.index()]
    }

    /// `drops 3, fees 2, reorgs 4, stale 1` (every kind, enabled or not).
    pub(super) fn by_kind(&self) -> String {
        let counts: Vec<String> = Kind::ALL
            .iter()
            .map(|k| format!("{} {}", k.name(), self.count(*k)))
            .collect();
        counts.join(", ")
    }
}

/// Injects the faults of `schedule` until `stop`; then ends them: the proxy passes again,
/// no spike is left for the miner. Every fault is logged with its time.
pub(super) fn inject(
    chain: &Chain<'_>,
    proxy: &FaultProxy,
    mut schedule: Schedule,
    stop: &AtomicBool,
    log: &super::Log,
) -> Injected {
    let mut injected = Injected::default();
    let mut stale_until: Option<Instant> = None;
    'faults: while let Some((wait, action)) = schedule.next_fault() {
        let due = Instant::now() + wait;
        // Wait for it, ending a stale window on time meanwhile.
        loop {
            if stop.load(Ordering::Relaxed) {
                break 'faults;
            }
            let now = Instant::now();
            if stale_until.is_some_and(|until| now >= until) {
                stale_until = None;
                match proxy.set_mode(Mode::Pass) {
                    Ok(()) => log.event("stale reads over: the proxy passes every call"),
                    Err(error) => injected.failures.note(format!("proxy: {error}")),
                }
            }
            if now >= due {
                break;
            }
            let next = stale_until.map_or(due, |until| until.min(due));
            thread::sleep((next - now).min(SLICE));
        }
        let done = apply(chain, proxy, action, &mut stale_until, log);
        match done {
            Ok(Applied::Made) => injected.counts[action.kind().index()] += 1,
            Ok(Applied::Limited) => {
                injected.counts[action.kind().index()] += 1;
                injected.reorgs_limited += 1;
            }
            Ok(Applied::Skipped) => injected.reorgs_limited += 1,
            Err(error) => {
                log.event(&format!("FAULT FAILED: {action:?}: {error}"));
                injected.failures.note(format!("{action:?}: {error}"));
            }
        }
    }
    // The faults stop: honest reads, no more spikes (the miner goes on).
    if proxy.mode() != Mode::Pass
        && let Err(error) = proxy.set_mode(Mode::Pass)
    {
        injected.failures.note(format!("proxy: {error}"));
    }
    chain.lock().spike = None;
    log.event(&format!(
        "faults stopped (the proxy passes, no spike, no drop, no reorg; blocks keep coming): \
         {}",
        injected.by_kind()
    ));
    injected
}

enum Applied {
    Made,
    /// A reorg, shallower than asked.
    Limited,
    /// A reorg not made: it would have dropped a block already deep enough.
    Skipped,
}

fn apply(
    chain: &Chain<'_>,
    proxy: &FaultProxy,
    action: Action,
    stale_until: &mut Option<Instant>,
    log: &super::Log,
) -> Result<Applied, String> {
    match action {
        Action::DropAll => {
            let _state = chain.lock();
            chain.anvil.rpc("anvil_dropAllTransactions", "[]")?;
            log.event("fault drops: anvil_dropAllTransactions (the mempool is emptied)");
            Ok(Applied::Made)
        }
        Action::Spike { blocks, base_fee } => {
            chain.lock().spike = Some(Spike {
                blocks_left: blocks,
                base_fee,
            });
            log.event(&format!(
                "fault fees: base fee {} gwei for the next {blocks} blocks",
                base_fee / GWEI
            ));
            Ok(Applied::Made)
        }
        Action::Reorg { depth } => {
            let mut state = chain.lock();
            let head = head(chain.anvil)?;
            let allowed = state.guard.allowed(head, depth);
            if allowed == 0 {
                log.event(&format!(
                    "fault reorgs: depth {depth} at head {head} NOT made: it would drop block \
                     {}, which has been {CONFIRMATIONS} deep",
                    state.guard.protected()
                ));
                return Ok(Applied::Skipped);
            }
            chain
                .anvil
                .rpc("anvil_reorg", &format!("[{allowed}, []]"))?;
            log.event(&format!(
                "fault reorgs: anvil_reorg depth {allowed}{} at head {head}: blocks {}..={head} \
                 replaced by empty ones",
                if allowed < depth {
                    format!(" (asked {depth})")
                } else {
                    String::new()
                },
                head + 1 - allowed
            ));
            Ok(if allowed < depth {
                Applied::Limited
            } else {
                Applied::Made
            })
        }
        Action::Stale { lasting } => {
            if proxy.mode() != Mode::StaleReads {
                proxy
                    .set_mode(Mode::StaleReads)
                    .map_err(|e| format!("proxy: {e}"))?;
            }
            let until = Instant::now() + lasting;
            *stale_until = Some(stale_until.map_or(until, |t| t.max(until)));
            log.event(&format!(
                "fault stale: lookups by hash answered null for {:.1} s",
                lasting.as_secs_f64()
            ));
            Ok(Applied::Made)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_lists_parse_and_bad_ones_are_refused() {
        assert_eq!(Faults::parse("all"), Ok(Faults::ALL));
        assert_eq!(Faults::parse("none"), Ok(Faults::NONE));
        assert_eq!(
            Faults::parse("drops,fees,reorgs,stale"),
            Ok(Faults::ALL),
            "every kind named is all"
        );
        let two = Faults::parse("stale, drops").expect("two kinds");
        assert_eq!(two.kinds(), [Kind::Drops, Kind::Stale]);
        assert_eq!(two.to_string(), "drops,stale");
        assert_eq!(
            Faults::parse("reorgs,reorgs").map(Faults::kinds),
            Ok(vec![Kind::Reorgs])
        );
        assert_eq!(Faults::parse("fees,all"), Ok(Faults::ALL));
        assert_eq!(Faults::NONE.to_string(), "none");
        assert_eq!(Faults::ALL.to_string(), "drops,fees,reorgs,stale");
        for bad in [
            "",
            "drop",
            "drops,",
            ",fees",
            "drops,,fees",
            "ALL",
            "none,drops",
            "x",
        ] {
            assert!(Faults::parse(bad).is_err(), "{bad:?}");
        }
    }

    fn schedule(seed: u64, faults: Faults, n: usize) -> Vec<(Duration, Action)> {
        let mut schedule = Schedule::new(seed, faults);
        (0..n).map_while(|_| schedule.next_fault()).collect()
    }

    #[test]
    fn the_fault_schedule_is_a_function_of_the_seed() {
        assert_eq!(schedule(7, Faults::ALL, 400), schedule(7, Faults::ALL, 400));
        assert_ne!(schedule(7, Faults::ALL, 40), schedule(8, Faults::ALL, 40));
        assert!(schedule(7, Faults::NONE, 10).is_empty());
        let only = Faults::parse("reorgs,stale").expect("faults");
        let faults = schedule(3, only, 400);
        assert_eq!(faults.len(), 400);
        assert!(faults.iter().all(|(_, a)| only.kinds().contains(&a.kind())));
        for (wait, action) in schedule(11, Faults::ALL, 2_000) {
            assert!(
                (1_000..=4_000).contains(&(wait.as_millis() as u64)),
                "{wait:?}"
            );
            match action {
                Action::DropAll => {}
                Action::Spike { blocks, base_fee } => {
                    assert!((3..=8).contains(&blocks));
                    assert!((20 * GWEI..=80 * GWEI).contains(&base_fee));
                    assert_eq!(base_fee % GWEI, 0);
                }
                Action::Reorg { depth } => assert!((1..=2).contains(&depth)),
                Action::Stale { lasting } => {
                    assert!((2_000..=8_000).contains(&(lasting.as_millis() as u64)));
                }
            }
        }
    }

    #[test]
    fn every_round_holds_each_enabled_fault_once() {
        let faults = schedule(42, Faults::ALL, 400);
        for round in faults.chunks(4) {
            let mut kinds: Vec<usize> = round.iter().map(|(_, a)| a.kind().index()).collect();
            kinds.sort_unstable();
            assert_eq!(kinds, [0, 1, 2, 3], "{round:?}");
        }
        // And the order varies from round to round.
        let orders: std::collections::HashSet<Vec<usize>> = faults
            .chunks(4)
            .map(|r| r.iter().map(|(_, a)| a.kind().index()).collect())
            .collect();
        assert!(orders.len() > 5, "{orders:?}");
    }

    #[test]
    fn the_guard_limits_depth_and_keeps_deep_blocks() {
        let mut guard = ReorgGuard::new(3);
        assert_eq!(guard.allowed(0, 2), 0, "genesis stays");
        assert_eq!(guard.allowed(1, 2), 1, "only block 1 can go");
        assert_eq!(guard.allowed(2, 2), 2);
        assert_eq!(
            guard.allowed(10, 5),
            2,
            "never deeper than confirmations - 1"
        );
        assert_eq!(guard.protected(), 8, "block 8 was 3 deep at head 10");
        // Had the head gone down, the blocks that were deep stay.
        assert_eq!(guard.allowed(9, 2), 1);
        assert_eq!(guard.allowed(8, 2), 0);
        assert_eq!(
            ReorgGuard::new(1).allowed(10, 2),
            0,
            "1 confirmation: no reorg at all"
        );
    }

    /// A model chain: blocks by id; random mining, reorgs (and, to test the cumulative
    /// rule, rollbacks that lower the head) through the guard. No block that has ever been
    /// 3 deep is ever dropped, and reorgs do happen.
    #[test]
    fn no_block_that_was_three_deep_is_ever_dropped() {
        for seed in 0..200 {
            let mut rng = Rng::new(seed);
            let mut guard = ReorgGuard::new(CONFIRMATIONS);
            // chain[height] = block id; deepest[id] = the most confirmations it ever had.
            let mut chain: Vec<usize> = vec![0];
            let mut deepest: Vec<u64> = vec![1];
            let mut reorgs = 0;
            let record = |chain: &[usize], deepest: &mut Vec<u64>| {
                let head = chain.len() - 1;
                for (height, &id) in chain.iter().enumerate() {
                    deepest[id] = deepest[id].max((head - height + 1) as u64);
                }
            };
            for _ in 0..300 {
                let head = (chain.len() - 1) as u64;
                match rng.between(0, 9) {
                    0..=4 => {
                        deepest.push(0);
                        chain.push(deepest.len() - 1);
                        guard.observe(chain.len() as u64 - 1);
                    }
                    5..=8 => {
                        let depth = guard.allowed(head, rng.between(1, 4));
                        assert!(depth < CONFIRMATIONS);
                        let from = chain.len() - depth as usize;
                        for (height, block) in chain.iter_mut().enumerate().skip(from) {
                            assert!(
                                deepest[*block] < CONFIRMATIONS,
                                "seed {seed}: block {block} at height {height} was {} deep",
                                deepest[*block]
                            );
                            deepest.push(0);
                            *block = deepest.len() - 1;
                        }
                        reorgs += u64::from(depth > 0);
                    }
                    _ => {
                        // A rollback that the drill never makes: the guard must hold anyway.
                        if chain.len() > 1 {
                            let depth = guard.allowed(head, 1) as usize;
                            for &id in &chain[chain.len() - depth..] {
                                assert!(deepest[id] < CONFIRMATIONS, "seed {seed}: rollback");
                            }
                            chain.truncate(chain.len() - depth);
                        }
                    }
                }
                record(&chain, &mut deepest);
            }
            assert!(reorgs > 10, "seed {seed}: {reorgs} reorgs");
        }
    }
}
