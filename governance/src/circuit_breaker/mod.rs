//! The lock-free circuit breaker that gates every submission to the ledger.
//!
//! ```text
//!            failures in window reach threshold
//!   +--------+ ------------------------------> +------+
//!   | Closed |                                 | Open | <-----------------+
//!   +--------+ <--+                            +------+                   |
//!                 | success_threshold             | open duration elapsed |
//!                 | probe successes               | (next caller is the   | any probe
//!                 |                               v  first probe)         | fails
//!                 |                          +----------+                 |
//!                 +------------------------- | HalfOpen | ----------------+
//!                                            +----------+
//!   force_open / force_close: sticky Open / Closed until reset; reset: clean Closed.
//! ```
//!
//! Everything that decides a transition lives in one packed atomic word (see
//! `state.rs`) moved by compare-and-swap, so exactly one caller performs each transition
//! and reports it. Every transition starts a new *generation*; a permit carries the
//! generation that admitted it and its outcome is ignored once the breaker has moved on.
//! The rolling window (`window.rs`) and the probe leases (`probes.rs`) are tagged with
//! generations too, which is how a transition clears them without a second write.
//!
//! Nothing here locks or allocates after construction. While closed, admitting a call
//! and recording its success read one atomic and write nothing.

mod clock;
mod config;
mod error;
mod event;
mod permit;
mod probes;
mod snapshot;
mod state;
mod timing;
mod window;

#[cfg(all(test, not(loom)))]
mod tests;

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use crate::sync::{AtomicU64, Ordering};

pub use clock::{Clock, ManualClock, MonotonicClock};
pub use config::{CircuitBreakerConfig, FailureRatePolicy, MAX_DURATION_SECS};
pub use error::CircuitBreakerConfigError;
pub use event::{Transition, TransitionCause};
pub use permit::{Outcome, Permit, RejectReason, Rejected};
pub use snapshot::CircuitBreakerSnapshot;
pub use state::{CircuitState, InvalidCircuitState};

use clock::ClockHandle;

/// `open_until` layout: `VALID (1) | generation (23) | deadline in ms (40)`.
const OPEN_VALID: u64 = 1 << 63;
const OPEN_GEN_SHIFT: u32 = 40;
const OPEN_GEN_MASK: u64 = (1 << 23) - 1;
const OPEN_MS_MASK: u64 = (1 << OPEN_GEN_SHIFT) - 1;
use permit::PermitKind;
use probes::ProbeSlots;
use state::Word;
use timing::{NANOS_PER_MS, Timing};
use window::Window;

/// A function told about every transition.
pub type TransitionListener = Box<dyn Fn(&Transition) + Send + Sync>;

/// A listener was already set; a breaker has at most one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the circuit breaker already has a transition listener")]
pub struct ListenerAlreadySet;

/// A lock-free circuit breaker. Share it as `Arc<CircuitBreaker>`.
///
/// Two APIs run on one core. The precise one admits a call with
/// [`try_acquire`](Self::try_acquire) and settles the returned [`Permit`]. The seed's
/// ([`allow_request`](Self::allow_request), [`record_success`](Self::record_success),
/// [`record_failure`](Self::record_failure)) settles by state instead of by permit, so
/// it cannot tell a stale result from a current one: prefer permits, and do not mix the
/// two APIs on one breaker while it is half-open.
///
/// ```
/// use governance::{CircuitBreaker, CircuitBreakerConfig};
///
/// let breaker = CircuitBreaker::new(CircuitBreakerConfig::default());
/// match breaker.try_acquire() {
///     Ok(permit) => permit.success(), // or .failure() / .ignore()
///     Err(rejected) => eprintln!("not now: {rejected}"),
/// }
/// ```
pub struct CircuitBreaker {
    /// The packed state word; see `state.rs`.
    word: AtomicU64,
    /// End of the current open period: `VALID | generation (23) | ms (40)`, so that a
    /// reader can tell whether it describes the open period it is looking at, and one
    /// CAS publishes both (see `store_open`).
    open_until: AtomicU64,
    /// Failures per slot of the rolling window.
    failures: Window,
    clock: ClockHandle,
    /// Whether closed-state successes must be counted (the failure-rate policy is on).
    count_calls: bool,
    /// What the hot paths rarely touch.
    cold: Box<Cold>,
}

struct Cold {
    config: CircuitBreakerConfig,
    timing: Timing,
    probes: ProbeSlots,
    /// Settled calls per slot, for the failure-rate policy only.
    calls: Option<Window>,
    listener: OnceLock<TransitionListener>,
}

impl CircuitBreaker {
    /// A breaker on the monotonic clock.
    ///
    /// # Panics
    /// If `config` is invalid; [`try_new`](Self::try_new) returns the error instead.
    pub fn new(config: CircuitBreakerConfig) -> CircuitBreaker {
        Self::with_clock(config, MonotonicClock)
    }

    /// A breaker on the monotonic clock, or the reason `config` is invalid.
    pub fn try_new(
        config: CircuitBreakerConfig,
    ) -> Result<CircuitBreaker, CircuitBreakerConfigError> {
        Self::try_with_clock(config, MonotonicClock)
    }

    /// A breaker on `clock`, such as a [`ManualClock`] in tests.
    ///
    /// # Panics
    /// If `config` is invalid, like [`new`](Self::new).
    pub fn with_clock(config: CircuitBreakerConfig, clock: impl Clock) -> CircuitBreaker {
        match Self::try_with_clock(config, clock) {
            Ok(breaker) => breaker,
            Err(error) => panic!("invalid circuit breaker configuration: {error}"),
        }
    }

    /// A breaker on `clock`, or the reason `config` is invalid.
    pub fn try_with_clock(
        config: CircuitBreakerConfig,
        clock: impl Clock,
    ) -> Result<CircuitBreaker, CircuitBreakerConfigError> {
        config.validate()?;
        let timing = Timing::new(&config);
        Ok(CircuitBreaker {
            word: AtomicU64::new(Word::INITIAL.bits()),
            open_until: AtomicU64::new(0), // not VALID: nothing published yet
            failures: Window::new(),
            clock: ClockHandle::new(clock),
            count_calls: timing.failure_rate.is_some(),
            cold: Box::new(Cold {
                probes: ProbeSlots::new(config.half_open_max_probes),
                calls: timing.failure_rate.map(|_| Window::new()),
                listener: OnceLock::new(),
                timing,
                config,
            }),
        })
    }

    /// Sets the function told about every transition, exactly once each, after the new
    /// state is visible and with no lock held. It runs on the thread that made the
    /// transition, inside that thread's call into the breaker: keep it short.
    ///
    /// Transitions made on different threads may be reported out of order (the report
    /// follows the CAS, and threads run at their own pace): a consumer that keeps the
    /// latest state should order them by [`Transition::generation`].
    pub fn set_listener(
        &self,
        listener: impl Fn(&Transition) + Send + Sync + 'static,
    ) -> Result<(), ListenerAlreadySet> {
        self.cold
            .listener
            .set(Box::new(listener))
            .map_err(|_| ListenerAlreadySet)
    }

    /// The configuration the breaker was built with.
    pub fn config(&self) -> &CircuitBreakerConfig {
        &self.cold.config
    }

    // ----- the precise API ------------------------------------------------------------

    /// Asks to make one call. While closed this reads one atomic and writes nothing;
    /// while open it reads two more and the clock.
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, Rejected> {
        let word = self.load();
        if word.is_closed() {
            let kind = PermitKind::Closed {
                count_calls: self.count_calls,
            };
            return Ok(Permit::new(self, word.generation(), kind));
        }
        let now = self.clock.now_nanos();
        if word.is_open_unforced() {
            // The rejection path while open: no call, no division, no write.
            match self.open_deadline(word) {
                Some(deadline) if now >= deadline => {}
                _ => return Err(Rejected::new(RejectReason::Open)),
            }
        }
        self.acquire_slow(word, now)
    }

    #[cold]
    #[inline(never)]
    fn acquire_slow(&self, mut word: Word, now: u64) -> Result<Permit<'_>, Rejected> {
        let timing = &self.cold.timing;
        let now_ms = now / NANOS_PER_MS;
        loop {
            match word.state() {
                CircuitState::Closed => {
                    let kind = PermitKind::Closed {
                        count_calls: self.count_calls,
                    };
                    return Ok(Permit::new(self, word.generation(), kind));
                }
                CircuitState::Open => {
                    if word.forced() {
                        return Err(Rejected::new(RejectReason::ForcedOpen));
                    }
                    match self.open_deadline(word) {
                        Some(deadline) if now >= deadline => {}
                        _ => return Err(Rejected::new(RejectReason::Open)),
                    }
                    // Exactly one caller wins this CAS; it becomes the first probe.
                    let next = word.half_open();
                    match self.compare_exchange(word, next) {
                        Ok(()) => {
                            self.notify(word, next, TransitionCause::OpenTimeoutElapsed);
                            return Ok(self.claim_probe(next.generation(), now_ms));
                        }
                        Err(actual) => word = actual,
                    }
                }
                CircuitState::HalfOpen => {
                    if word.in_flight() < timing.max_probes {
                        match self.compare_exchange(word, word.add_probe()) {
                            Ok(()) => return Ok(self.claim_probe(word.generation(), now_ms)),
                            Err(actual) => word = actual,
                        }
                        continue;
                    }
                    let generation = word.generation();
                    if let Some(lease) = self.cold.probes.take_over_expired(
                        generation,
                        now_ms,
                        timing.probe_deadline_ms,
                    ) {
                        // The lost probe's place in the count passes to this one. Should
                        // the cycle have ended meanwhile, the permit is merely stale.
                        return Ok(Permit::new(self, generation, PermitKind::Probe(lease)));
                    }
                    return Err(Rejected::new(RejectReason::HalfOpenFull));
                }
            }
        }
    }

    /// A slot for a probe already counted in the word of `generation`.
    fn claim_probe(&self, generation: u64, now_ms: u64) -> Permit<'_> {
        loop {
            if let Some(lease) = self.cold.probes.claim_free(generation, now_ms) {
                return Permit::new(self, generation, PermitKind::Probe(lease));
            }
            // Being counted guarantees a free slot while the generation lasts; a failed
            // scan means another claimer took one first, or the cycle is over.
            if self.load().generation() != generation {
                return Permit::new(self, generation, PermitKind::Stale);
            }
            crate::sync::spin_loop();
        }
    }

    /// Settles a permit (`Permit::record` has already skipped the closed-state paths
    /// that do nothing).
    pub(crate) fn settle(&self, token: u64, outcome: Outcome) {
        let (generation, kind) = PermitKind::decode(token);
        match (kind, outcome) {
            (PermitKind::Closed { count_calls }, Outcome::Success) => {
                if count_calls {
                    self.record_closed(generation, Outcome::Success);
                }
            }
            (PermitKind::Closed { .. }, Outcome::Failure) => {
                self.record_closed(generation, Outcome::Failure);
            }
            (PermitKind::Closed { .. }, Outcome::Ignored) | (PermitKind::Stale, _) => {}
            (PermitKind::Probe(lease), outcome) => {
                // A failed release means the probe was presumed lost and its slot was
                // taken over: it owns nothing any more, and its result is ignored.
                if self.cold.probes.release(generation, lease) {
                    self.record_half_open(generation, outcome, true);
                }
            }
        }
    }

    /// A settled call of a closed `generation`: counted in the window, and the failure
    /// that reaches a threshold trips the breaker.
    #[cold]
    fn record_closed(&self, generation: u64, outcome: Outcome) {
        let word = self.load();
        if word.generation() != generation || !word.is_closed() {
            return; // stale: the breaker has transitioned since this call was admitted
        }
        let now = self.clock.now_nanos();
        let slot = now / self.cold.timing.slot_nanos;
        if let Some(calls) = &self.cold.calls {
            calls.record(generation, slot);
        }
        if outcome != Outcome::Failure {
            return;
        }
        if word.forced() {
            self.failures.record(generation, slot);
            return; // forced closed: counted for metrics, never trips
        }
        let timing = &self.cold.timing;
        let (failures, slot) = self.failures.record_then_sum(generation, slot, || {
            self.clock.now_nanos() / timing.slot_nanos
        });
        let cause = if failures >= timing.failure_threshold {
            TransitionCause::FailureThreshold
        } else if let Some(calls) = &self.cold.calls
            && timing.rate_trips(failures, calls.sum(generation, slot))
        {
            TransitionCause::FailureRate
        } else {
            return;
        };
        // The word of a closed generation changes only by a transition, so a failed CAS
        // means another caller already made one (perhaps this very trip).
        let next = word.trip();
        if self.compare_exchange(word, next).is_ok() {
            self.publish_open(next, now);
            self.notify(word, next, cause);
        }
    }

    /// A result of the half-open `generation`. `holds_probe`: the caller owned one of the
    /// probes counted in the word and gives it back.
    fn record_half_open(&self, generation: u64, outcome: Outcome, holds_probe: bool) {
        let timing = &self.cold.timing;
        let mut word = self.load();
        loop {
            if word.generation() != generation || word.state() != CircuitState::HalfOpen {
                return;
            }
            let settled = if holds_probe {
                word.remove_probe()
            } else {
                word
            };
            let (next, cause) = match outcome {
                Outcome::Success if word.successes() + 1 >= timing.success_threshold => {
                    (word.close(), Some(TransitionCause::ProbesSucceeded))
                }
                Outcome::Success => (settled.add_success(), None),
                Outcome::Failure => (word.trip(), Some(TransitionCause::ProbeFailed)),
                Outcome::Ignored => (settled, None),
            };
            match self.compare_exchange(word, next) {
                Ok(()) => {
                    if let Some(cause) = cause {
                        if next.state() == CircuitState::Open {
                            self.publish_open(next, self.clock.now_nanos());
                        }
                        self.notify(word, next, cause);
                    }
                    return;
                }
                Err(actual) => word = actual,
            }
        }
    }

    // ----- the seed's API -------------------------------------------------------------

    /// Whether a call may proceed now. A `true` while half-open takes a probe slot that
    /// the next [`record_success`](Self::record_success) or
    /// [`record_failure`](Self::record_failure) gives back (or the probe deadline frees).
    pub fn allow_request(&self) -> bool {
        match self.try_acquire() {
            Ok(permit) => {
                permit.detach();
                true
            }
            Err(_) => false,
        }
    }

    /// Records a successful call against the current state.
    pub fn record_success(&self) {
        self.record_unattributed(Outcome::Success);
    }

    /// Records a failed call against the current state.
    pub fn record_failure(&self) {
        self.record_unattributed(Outcome::Failure);
    }

    fn record_unattributed(&self, outcome: Outcome) {
        let word = self.load();
        match word.state() {
            CircuitState::Closed => {
                if outcome == Outcome::Failure || self.count_calls {
                    self.record_closed(word.generation(), outcome);
                }
            }
            CircuitState::HalfOpen => {
                let released = self.cold.probes.release_oldest(word.generation());
                self.record_half_open(word.generation(), outcome, released);
            }
            CircuitState::Open => {}
        }
    }

    /// The current state. An open breaker whose open duration has elapsed still reads
    /// `Open` until the next admission attempt makes it half-open.
    pub fn state(&self) -> CircuitState {
        self.load().state()
    }

    /// Whether an operator's `force_open` or `force_close` is in effect.
    pub fn is_forced(&self) -> bool {
        self.load().forced()
    }

    /// Failures in the rolling window of the current closed period (0 unless closed: the
    /// window starts afresh each time the breaker closes).
    pub fn failure_count(&self) -> u64 {
        let word = self.load();
        if !word.is_closed() {
            return 0;
        }
        let slot = self.clock.now_nanos() / self.cold.timing.slot_nanos;
        self.failures.sum(word.generation(), slot)
    }

    /// Probe successes in the current half-open cycle (0 unless half-open).
    pub fn success_count(&self) -> u64 {
        self.load().successes()
    }

    /// Half-open probes admitted and not yet settled.
    pub fn probes_in_flight(&self) -> u64 {
        self.load().in_flight()
    }

    /// Trips since the breaker last closed; sets the backed-off open duration.
    pub fn consecutive_trips(&self) -> u64 {
        self.load().trips()
    }

    /// The current generation: it changes with every transition.
    pub fn generation(&self) -> u64 {
        self.load().generation()
    }

    /// Whether an admission attempt now would be refused because the breaker is open:
    /// forced open, or its open duration not yet over. Reads, never transitions: for a
    /// caller that wants to skip work (and calls) while the breaker is known to refuse.
    /// (Half-open with every probe slot taken also refuses, but only `try_acquire` can
    /// tell, since a slot may be freed or taken over.)
    pub fn is_rejecting(&self) -> bool {
        let word = self.load();
        if word.state() != CircuitState::Open {
            return false;
        }
        if word.forced() {
            return true;
        }
        // Unpublished deadline: just opened, so rejecting (as `try_acquire` decides).
        self.open_deadline(word)
            .is_none_or(|deadline| self.clock.now_nanos() < deadline)
    }

    /// How long until an open breaker admits a probe (`None` unless open and not forced).
    pub fn open_remaining(&self) -> Option<Duration> {
        let word = self.load();
        if word.state() != CircuitState::Open || word.forced() {
            return None;
        }
        let now = self.clock.now_nanos();
        let deadline = self.open_deadline(word).unwrap_or(now);
        Some(Duration::from_nanos(deadline.saturating_sub(now)))
    }

    // ----- operators ------------------------------------------------------------------

    /// Opens the breaker and keeps it open (no half-open) until [`reset`](Self::reset).
    pub fn force_open(&self) -> Transition {
        self.manual(TransitionCause::ForcedOpen, |word| {
            word.transition(CircuitState::Open, true, word.trips())
        })
    }

    /// Closes the breaker and keeps it closed until [`reset`](Self::reset): failures are
    /// still counted (for metrics) but never trip it.
    pub fn force_close(&self) -> Transition {
        self.manual(TransitionCause::ForcedClose, |word| {
            word.transition(CircuitState::Closed, true, 0)
        })
    }

    /// Returns to a clean closed state: not forced, empty window, backoff reset.
    pub fn reset(&self) -> Transition {
        self.manual(TransitionCause::Reset, |word| {
            word.transition(CircuitState::Closed, false, 0)
        })
    }

    fn manual(&self, cause: TransitionCause, target: impl Fn(Word) -> Word) -> Transition {
        let mut word = self.load();
        loop {
            let next = target(word);
            match self.compare_exchange(word, next) {
                Ok(()) => {
                    if next.state() == CircuitState::Open {
                        self.publish_open(next, self.clock.now_nanos());
                    }
                    return self.notify(word, next, cause);
                }
                Err(actual) => word = actual,
            }
        }
    }

    // ----- persistence ----------------------------------------------------------------

    /// What to persist so that [`restore`](Self::restore) can resume after a restart.
    pub fn snapshot(&self) -> CircuitBreakerSnapshot {
        let word = self.load();
        let opened_at = (word.state() == CircuitState::Open).then(|| {
            let now = self.clock.now_nanos();
            // Unpublished (the transition is a moment old) reads as opened now.
            let opened = self
                .open_deadline(word)
                .map_or(now, |until| until.saturating_sub(self.open_nanos(word)));
            let wall = self.clock.wall_now();
            wall.checked_sub(Duration::from_nanos(now.saturating_sub(opened)))
                .unwrap_or(wall)
        });
        CircuitBreakerSnapshot {
            state: word.state(),
            forced: word.forced(),
            opened_at,
            consecutive_trips: word.trips() as u32,
            open_duration_ms: (word.state() == CircuitState::Open && !word.forced())
                .then(|| self.open_nanos(word) / NANOS_PER_MS),
        }
    }

    /// Resumes from a snapshot: an open breaker stays open for what remains of its open
    /// duration (measured on the wall clock across the restart), a forced one stays
    /// forced. A half-open breaker resumes half-open with no probes in flight.
    pub fn restore(&self, snapshot: &CircuitBreakerSnapshot) -> Transition {
        let now = self.clock.now_nanos();
        let elapsed = snapshot
            .opened_at
            .and_then(|at| self.clock.wall_now().duration_since(at).ok())
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let trips = u64::from(snapshot.consecutive_trips);
        // Only an open or closed state can be held by an operator.
        let forced = snapshot.forced && snapshot.state != CircuitState::HalfOpen;
        let mut word = self.load();
        loop {
            let next = word.transition(snapshot.state, forced, trips);
            match self.compare_exchange(word, next) {
                Ok(()) => {
                    if next.state() == CircuitState::Open {
                        // The open period's own length if the snapshot has it (its jitter
                        // was drawn already), bounded like any configured duration.
                        let open = snapshot.open_duration_ms.map_or_else(
                            || self.open_nanos(next),
                            |ms| ms.min(2 * MAX_DURATION_SECS * 1_000) * NANOS_PER_MS,
                        );
                        let remaining = if next.forced() {
                            0
                        } else {
                            open.saturating_sub(elapsed)
                        };
                        self.store_open(next, now.saturating_add(remaining));
                    }
                    return self.notify(word, next, TransitionCause::Restored);
                }
                Err(actual) => word = actual,
            }
        }
    }

    // ----- internals ------------------------------------------------------------------

    #[inline]
    fn load(&self) -> Word {
        // Ordering: Acquire pairs with the AcqRel CAS in `compare_exchange`: whoever
        // reads a word sees everything its transitioner did before publishing it.
        Word::from_bits(self.word.load(Ordering::Acquire))
    }

    /// The single way the word changes. `Err` carries the word found instead.
    #[inline]
    fn compare_exchange(&self, current: Word, next: Word) -> Result<(), Word> {
        // Ordering: AcqRel. Release publishes the transition to the Acquire loads in
        // `load`; Acquire orders this caller after the transition it replaces (a
        // plain store here would let two callers both "transition").
        self.word
            .compare_exchange(
                current.bits(),
                next.bits(),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .map(|_| ())
            .map_err(Word::from_bits)
    }

    /// The end of the open period of `word` in clock nanoseconds, if its transitioner
    /// has published it. Until then the breaker reads as just opened.
    #[inline]
    fn open_deadline(&self, word: Word) -> Option<u64> {
        // Ordering: Acquire pairs with the Release CAS in `store_open`. The value is
        // self-validating (its generation tag), so nothing else needs ordering.
        let value = self.open_until.load(Ordering::Acquire);
        if value & OPEN_VALID == 0
            || (value >> OPEN_GEN_SHIFT) & OPEN_GEN_MASK != word.generation() & OPEN_GEN_MASK
        {
            return None;
        }
        Some((value & OPEN_MS_MASK) * NANOS_PER_MS)
    }

    /// How long the open period of `word` lasts (zero when forced: it never ends).
    fn open_nanos(&self, word: Word) -> u64 {
        if word.forced() {
            0
        } else {
            self.cold.timing.open_ms(word.trips(), word.generation()) * NANOS_PER_MS
        }
    }

    /// Publishes the open period of `word`, installed at `now`.
    fn publish_open(&self, word: Word, now: u64) {
        self.store_open(word, now.saturating_add(self.open_nanos(word)));
    }

    fn store_open(&self, word: Word, until: u64) {
        let generation = word.generation() & OPEN_GEN_MASK;
        // Rounded up: the breaker never admits a probe before the deadline.
        let ours = OPEN_VALID
            | (generation << OPEN_GEN_SHIFT)
            | (until.div_ceil(NANOS_PER_MS) & OPEN_MS_MASK);
        // Ordering: Acquire on the load and on failure, to read the tag being replaced.
        let mut current = self.open_until.load(Ordering::Acquire);
        loop {
            // A transitioner delayed between its CAS on the word and this publication
            // must not overwrite the deadline of a later open period: that would leave
            // the later one without a deadline (shut for good) or with a wrong one.
            let theirs = (current >> OPEN_GEN_SHIFT) & OPEN_GEN_MASK;
            let ahead = theirs.wrapping_sub(generation) & OPEN_GEN_MASK;
            if current & OPEN_VALID != 0 && ahead != 0 && ahead <= OPEN_GEN_MASK / 2 {
                return;
            }
            // Ordering: Release pairs with the Acquire load in `open_deadline`.
            match self.open_until.compare_exchange_weak(
                current,
                ours,
                Ordering::Release,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    /// Reports a transition this caller's CAS performed.
    fn notify(&self, from: Word, to: Word, cause: TransitionCause) -> Transition {
        let transition = Transition {
            from: from.state(),
            to: to.state(),
            forced: to.forced(),
            generation: to.generation(),
            cause,
        };
        if let Some(listener) = self.cold.listener.get() {
            listener(&transition);
        }
        transition
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = self.load();
        f.debug_struct("CircuitBreaker")
            .field("state", &word.state())
            .field("forced", &word.forced())
            .field("generation", &word.generation())
            .field("probes_in_flight", &word.in_flight())
            .field("successes", &word.successes())
            .field("consecutive_trips", &word.trips())
            .field("clock", &self.clock)
            .field("probe_slots", &self.cold.probes.len())
            .finish_non_exhaustive()
    }
}
