//! What the miner and the fault thread share: anvil under the one mutex every
//! chain-changing call is made under, the state that mutex guards (the reorg guard, a fee
//! spike in progress), and a sleep that ends when the thread is told to stop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::CONFIRMATIONS;
use super::guard::ReorgGuard;
use crate::anvil::Anvil;

/// The longest sleep between two looks at a stop flag.
pub(super) const SLICE: Duration = Duration::from_millis(25);

/// What the chain-changing calls share, under one mutex.
pub(super) struct State {
    pub(super) guard: ReorgGuard,
    pub(super) spike: Option<Spike>,
}

/// A fee spike in progress: the miner sets the base fee before each of its blocks.
#[derive(Debug, Clone, Copy)]
pub(super) struct Spike {
    pub(super) blocks_left: u64,
    pub(super) base_fee: u128,
}

/// anvil, with the one mutex that every chain-changing call (a block, a base fee, a
/// drop, a reorg) is made under.
pub(in crate::chaos) struct Chain<'a> {
    pub(super) anvil: &'a Anvil,
    state: Mutex<State>,
}

impl<'a> Chain<'a> {
    pub(in crate::chaos) fn new(anvil: &'a Anvil) -> Chain<'a> {
        Chain {
            anvil,
            state: Mutex::new(State {
                guard: ReorgGuard::new(CONFIRMATIONS),
                spike: None,
            }),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Sleeps `length` in short slices; `false` as soon as `stop` is set.
pub(super) fn pause(stop: &AtomicBool, length: Duration) -> bool {
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
