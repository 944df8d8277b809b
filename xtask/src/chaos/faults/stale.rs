//! `stale`: the fault proxy between the node and anvil answers lookups by hash `null` for
//! 2–8 s (a lagging read backend), every other call passing. A stale fault during another
//! one's window extends it.

use std::time::{Duration, Instant};

use faultproxy::{FaultProxy, Mode};

use super::action::{Action, Applied};
use crate::chaos::log::Log;
use crate::chaos::rng::Rng;

/// Stale reads last this many milliseconds.
const STALE_MS: (u64, u64) = (2_000, 8_000);

/// A stale window's length, at random.
pub(super) fn draw(rng: &mut Rng) -> Action {
    Action::Stale {
        lasting: Duration::from_millis(rng.between(STALE_MS.0, STALE_MS.1)),
    }
}

/// When the proxy's stale reads end; `None`: it passes every call.
#[derive(Debug, Default)]
pub(super) struct StaleWindow {
    until: Option<Instant>,
}

impl StaleWindow {
    /// Puts the proxy in `StaleReads` for `lasting` from now (or until the open window
    /// ends, if later).
    pub(super) fn open(
        &mut self,
        proxy: &FaultProxy,
        lasting: Duration,
        log: &Log,
    ) -> Result<Applied, String> {
        if proxy.mode() != Mode::StaleReads {
            proxy
                .set_mode(Mode::StaleReads)
                .map_err(|e| format!("proxy: {e}"))?;
        }
        let until = Instant::now() + lasting;
        self.until = Some(self.until.map_or(until, |t| t.max(until)));
        log.event(&format!(
            "fault stale: lookups by hash answered null for {:.1} s",
            lasting.as_secs_f64()
        ));
        Ok(Applied::Made)
    }

    /// Ends the window if it is over at `now`: the proxy passes every call again.
    pub(super) fn close_if_over(
        &mut self,
        now: Instant,
        proxy: &FaultProxy,
        log: &Log,
    ) -> Result<(), String> {
        if self.until.is_some_and(|until| now >= until) {
            self.until = None;
            proxy
                .set_mode(Mode::Pass)
                .map_err(|error| format!("proxy: {error}"))?;
            log.event("stale reads over: the proxy passes every call");
        }
        Ok(())
    }

    /// When to look again while waiting for `due`: then, or when the window ends.
    pub(super) fn wake(&self, due: Instant) -> Instant {
        self.until.map_or(due, |until| until.min(due))
    }
}

/// The faults stop: the proxy passes every call again, whatever window was open.
pub(super) fn stop(proxy: &FaultProxy) -> Result<(), String> {
    if proxy.mode() != Mode::Pass {
        proxy
            .set_mode(Mode::Pass)
            .map_err(|error| format!("proxy: {error}"))?;
    }
    Ok(())
}
