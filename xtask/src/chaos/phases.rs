//! The drill's phases, on one chain: the crash phase (a queueing thread, the miner and the
//! fault thread under `--faults`, and this thread killing the node), then settling, then
//! the store compared with the chain once the miner has stopped.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use faultproxy::FaultProxy;

use super::compare::{Run, compare};
use super::faults::{self, Chain, Schedule};
use super::kill::{KILL_AFTER_MS, kill_repeatedly};
use super::log::Log;
use super::options::Options;
use super::queue::{Address, queue_all};
use super::rig::Rig;
use super::rng::Rng;
use super::settle::{SETTLE, SETTLE_UNDER_FAULTS, settle};
use super::store::{Record, list};
use super::token::Token;
use crate::anvil::Anvil;

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

pub(super) fn crash_and_check(
    options: &Options,
    seed: u64,
    anvil: &Anvil,
    proxy: Option<&FaultProxy>,
    rig: &Rig,
    token: &Token,
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
        let killed = kill_repeatedly(
            options.runs,
            &mut rng,
            rig,
            (anvil, token),
            &address,
            &sent,
            log,
        );
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
        let mut node = killed?;
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
            confirmations: if proxy.is_some() {
                faults::CONFIRMATIONS
            } else {
                1
            },
            injected: injected.as_ref(),
            mined: mined.as_ref(),
            began: log.began,
        };
        let result = check(&run, anvil, token, &node.address, settled, log);
        node.stop();
        result
    })
}

/// Compares the store (of the node at `address`) with the chain once settling is over.
fn check(
    run: &Run<'_>,
    anvil: &Anvil,
    token: &Token,
    address: &str,
    settled: Result<Vec<Record>, String>,
    log: &Log,
) -> Result<(), String> {
    match settled {
        Ok(records) => {
            let executed = records.iter().filter(|r| r.status == "executed").count();
            let cancelled = records.iter().filter(|r| r.status == "cancelled").count();
            log.event(&format!(
                "settled: {executed} executed, {cancelled} cancelled"
            ));
            compare(run, anvil, token, &records)
        }
        // Not settled: compare what there is anyway, for what the chain says about it
        // (the disbursements in flight show as mismatches).
        Err(unsettled) => match list(address) {
            Ok(records) => match compare(run, anvil, token, &records) {
                Ok(()) => Err(unsettled),
                Err(compared) => Err(format!("{unsettled}; and {compared}")),
            },
            Err(_) => Err(unsettled),
        },
    }
}
