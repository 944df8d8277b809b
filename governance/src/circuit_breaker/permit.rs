//! `Permit`, `Outcome` and `Rejected`: the precise API's admission and settlement.

use std::fmt;
use std::mem::{self, ManuallyDrop};

use super::CircuitBreaker;
use super::probes::Lease;
use super::state::CircuitState;

/// How a call admitted by a [`Permit`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The dependency worked.
    Success,
    /// The dependency failed in a way the breaker should count (infrastructure).
    Failure,
    /// Neither: a business error, or the call was never made. Frees a probe slot.
    Ignored,
}

/// Leave to make one call through the breaker. Settle it with [`success`](Self::success),
/// [`failure`](Self::failure) or [`ignore`](Self::ignore); dropping it counts as ignored.
///
/// A permit belongs to the generation that admitted it: if the breaker has transitioned
/// since, its outcome is ignored, so a slow call admitted while closed cannot close or
/// reopen a later half-open breaker.
#[must_use = "a permit records the call's outcome; dropping it records `Outcome::Ignored`"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    generation: u64,
    kind: PermitKind,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum PermitKind {
    /// Admitted while closed. `count_calls`: the failure-rate policy needs successes.
    Closed { count_calls: bool },
    /// A half-open probe holding a slot.
    Probe(Lease),
    /// Admitted into a half-open cycle that ended before it got a slot; ignored.
    Stale,
}

impl<'a> Permit<'a> {
    #[inline]
    pub(crate) fn new(breaker: &'a CircuitBreaker, generation: u64, kind: PermitKind) -> Self {
        Permit {
            breaker,
            generation,
            kind,
        }
    }

    /// Records a success.
    #[inline]
    pub fn success(self) {
        self.record(Outcome::Success);
    }

    /// Records a failure.
    #[inline]
    pub fn failure(self) {
        self.record(Outcome::Failure);
    }

    /// Records neither; frees the probe slot if this was a probe.
    #[inline]
    pub fn ignore(self) {
        self.record(Outcome::Ignored);
    }

    /// Records `outcome`.
    #[inline]
    pub fn record(self, outcome: Outcome) {
        let this = ManuallyDrop::new(self);
        this.breaker.settle(this.generation, this.kind, outcome);
    }

    /// Whether this permit is a half-open probe.
    pub fn is_probe(&self) -> bool {
        matches!(self.kind, PermitKind::Probe(_))
    }

    /// The generation that admitted this permit.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Forgets the permit without settling it: the seed API settles later, by state.
    pub(crate) fn detach(self) {
        mem::forget(self);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.breaker
            .settle(self.generation, self.kind, Outcome::Ignored);
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("generation", &self.generation)
            .field("kind", &self.kind)
            .finish()
    }
}

/// Why [`CircuitBreaker::try_acquire`] refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// Open, waiting out the open duration.
    Open,
    /// Held open by an operator.
    ForcedOpen,
    /// Half-open with every probe slot taken.
    HalfOpenFull,
}

/// A call the breaker refused. Small and `Copy`: rejection is the hot path while open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rejected {
    reason: RejectReason,
}

impl Rejected {
    pub(crate) const fn new(reason: RejectReason) -> Rejected {
        Rejected { reason }
    }

    /// Why the call was refused.
    pub const fn reason(&self) -> RejectReason {
        self.reason
    }

    /// The state the breaker was in when it refused.
    pub const fn state(&self) -> CircuitState {
        match self.reason {
            RejectReason::Open | RejectReason::ForcedOpen => CircuitState::Open,
            RejectReason::HalfOpenFull => CircuitState::HalfOpen,
        }
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.reason {
            RejectReason::Open => "circuit breaker is open",
            RejectReason::ForcedOpen => "circuit breaker is forced open by an operator",
            RejectReason::HalfOpenFull => {
                "circuit breaker is half-open and every probe slot is taken"
            }
        })
    }
}

impl std::error::Error for Rejected {}
