//! The fault thread: waits for each fault of the schedule and injects it until told to
//! stop, then ends them all (the proxy passes, no spike is left for the miner).

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Instant;

use faultproxy::FaultProxy;

use super::action::{Action, Applied};
use super::chain::{Chain, SLICE};
use super::failures::Failures;
use super::kinds::Kind;
use super::schedule::Schedule;
use super::stale::{self, StaleWindow};
use super::{drops, fees, reorgs};
use crate::chaos::log::Log;

/// What the fault thread did.
#[derive(Debug, Default)]
pub(in crate::chaos) struct Injected {
    /// Faults made, by [`Kind::index`].
    counts: [u64; 4],
    /// Reorgs made shallower, or not made, by [`ReorgGuard`](super::guard::ReorgGuard).
    pub(in crate::chaos) reorgs_limited: u64,
    pub(in crate::chaos) failures: Failures,
}

impl Injected {
    fn count(&self, kind: Kind) -> u64 {
        self.counts[kind.index()]
    }

    /// `drops 3, fees 2, reorgs 4, stale 1` (every kind, enabled or not).
    pub(in crate::chaos) fn by_kind(&self) -> String {
        let counts: Vec<String> = Kind::ALL
            .iter()
            .map(|k| format!("{} {}", k.name(), self.count(*k)))
            .collect();
        counts.join(", ")
    }
}

/// Injects the faults of `schedule` until `stop`; then ends them: the proxy passes again,
/// no spike is left for the miner. Every fault is logged with its time.
pub(in crate::chaos) fn inject(
    chain: &Chain<'_>,
    proxy: &FaultProxy,
    mut schedule: Schedule,
    stop: &AtomicBool,
    log: &Log,
) -> Injected {
    let mut injected = Injected::default();
    let mut stale = StaleWindow::default();
    'faults: while let Some((wait, action)) = schedule.next_fault() {
        let due = Instant::now() + wait;
        // Wait for it, ending a stale window on time meanwhile.
        loop {
            if stop.load(Ordering::Relaxed) {
                break 'faults;
            }
            let now = Instant::now();
            if let Err(error) = stale.close_if_over(now, proxy, log) {
                injected.failures.note(error);
            }
            if now >= due {
                break;
            }
            thread::sleep((stale.wake(due) - now).min(SLICE));
        }
        match apply(chain, proxy, action, &mut stale, log) {
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
    if let Err(error) = stale::stop(proxy) {
        injected.failures.note(error);
    }
    chain.lock().spike = None;
    log.event(&format!(
        "faults stopped (the proxy passes, no spike, no drop, no reorg; blocks keep coming): \
         {}",
        injected.by_kind()
    ));
    injected
}

fn apply(
    chain: &Chain<'_>,
    proxy: &FaultProxy,
    action: Action,
    stale: &mut StaleWindow,
    log: &Log,
) -> Result<Applied, String> {
    match action {
        Action::DropAll => drops::drop_all(chain, log),
        Action::Spike { blocks, base_fee } => fees::spike(chain, blocks, base_fee, log),
        Action::Reorg { depth } => reorgs::reorg(chain, depth, log),
        Action::Stale { lasting } => stale.open(proxy, lasting, log),
    }
}
