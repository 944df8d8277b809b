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
///
/// Two words: the breaker and a token packing the generation with the kind of permit,
/// so that admitting and settling a call stays in registers.
#[must_use = "a permit records the call's outcome; dropping it records `Outcome::Ignored`"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    token: u64,
}

/// Token layout: `ticket (17) | slot (10) | kind (2) | generation (35)`, low bits last.
const KIND_SHIFT: u32 = 35;
const GENERATION_MASK: u64 = (1 << KIND_SHIFT) - 1;
const KIND_MASK: u64 = 0b11;
const KIND_CLOSED: u64 = 0;
const KIND_CLOSED_COUNTING: u64 = 1;
const KIND_PROBE: u64 = 2;
const KIND_STALE: u64 = 3;
const SLOT_SHIFT: u32 = KIND_SHIFT + 2;
const SLOT_MASK: u64 = (1 << 10) - 1;
const TICKET_SHIFT: u32 = SLOT_SHIFT + 10;

// The fields must fit: generations, slots and tickets are sized to this layout.
const _: () = assert!(GENERATION_MASK == super::state::GENERATION_MASK);
const _: () = assert!(SLOT_MASK >= super::state::MAX_IN_FLIGHT);
const _: () = assert!(TICKET_SHIFT + super::probes::TICKET_BITS == 64);

/// What a permit admits, decoded from its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PermitKind {
    /// Admitted while closed. `count_calls`: the failure-rate policy needs successes.
    Closed { count_calls: bool },
    /// A half-open probe holding a slot.
    Probe(Lease),
    /// Admitted into a half-open cycle that ended before it got a slot; ignored.
    Stale,
}

impl PermitKind {
    #[inline]
    pub(crate) const fn encode(self, generation: u64) -> u64 {
        let kind = match self {
            PermitKind::Closed { count_calls: false } => KIND_CLOSED << KIND_SHIFT,
            PermitKind::Closed { count_calls: true } => KIND_CLOSED_COUNTING << KIND_SHIFT,
            PermitKind::Probe(lease) => {
                KIND_PROBE << KIND_SHIFT
                    | (lease.slot & SLOT_MASK) << SLOT_SHIFT
                    | (lease.ticket & super::probes::TICKET_MASK) << TICKET_SHIFT
            }
            PermitKind::Stale => KIND_STALE << KIND_SHIFT,
        };
        (generation & GENERATION_MASK) | kind
    }

    /// The generation and kind a token carries.
    #[inline]
    pub(crate) const fn decode(token: u64) -> (u64, PermitKind) {
        let kind = match (token >> KIND_SHIFT) & KIND_MASK {
            KIND_CLOSED => PermitKind::Closed { count_calls: false },
            KIND_CLOSED_COUNTING => PermitKind::Closed { count_calls: true },
            KIND_PROBE => PermitKind::Probe(Lease {
                slot: (token >> SLOT_SHIFT) & SLOT_MASK,
                ticket: token >> TICKET_SHIFT,
            }),
            _ => PermitKind::Stale,
        };
        (token & GENERATION_MASK, kind)
    }
}

impl<'a> Permit<'a> {
    #[inline]
    pub(crate) fn new(breaker: &'a CircuitBreaker, generation: u64, kind: PermitKind) -> Self {
        Permit {
            breaker,
            token: kind.encode(generation),
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
        // The hot path, tested on the token's bits directly: a closed-state success or
        // ignore has nothing to tell a breaker that counts only failures.
        if (this.token >> KIND_SHIFT) & KIND_MASK == KIND_CLOSED && outcome != Outcome::Failure {
            return;
        }
        this.breaker.settle(this.token, outcome);
    }

    /// Whether this permit is a half-open probe.
    pub fn is_probe(&self) -> bool {
        matches!(PermitKind::decode(self.token).1, PermitKind::Probe(_))
    }

    /// The generation that admitted this permit.
    pub fn generation(&self) -> u64 {
        PermitKind::decode(self.token).0
    }

    /// Forgets the permit without settling it: the seed API settles later, by state.
    pub(crate) fn detach(self) {
        mem::forget(self);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.breaker.settle(self.token, Outcome::Ignored);
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (generation, kind) = PermitKind::decode(self.token);
        f.debug_struct("Permit")
            .field("generation", &generation)
            .field("kind", &kind)
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
