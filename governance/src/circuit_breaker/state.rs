//! `CircuitState` and the packed state word that every transition moves with one CAS.
//!
//! The breaker's whole control state lives in one `u64` so that a transition is a
//! single compare-and-swap: whoever wins the CAS performed the transition, everyone
//! else observes it. Layout, low bits first:
//!
//! ```text
//!  63                               29 28   23 22       13 12        3  2   1  0
//! +-----------------------------------+-------+-----------+-----------+---+-----+
//! |            generation (35)        | trips | successes | in flight | F |state|
//! +-----------------------------------+-------+-----------+-----------+---+-----+
//! ```
//!
//! - `state`: [`CircuitState`] as its `u8` value.
//! - `F`: forced by an operator (sticky until `reset`).
//! - `in flight`: half-open probes admitted and not yet settled (or taken over).
//! - `successes`: probe successes in the current half-open cycle.
//! - `trips`: consecutive trips since the breaker last closed, for backoff (saturates).
//! - `generation`: bumped by every transition, so permits from an earlier one are stale.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The three states of a circuit breaker. The discriminants are the values exported
/// by the `treasury_circuit_breaker_state` gauge, so they are part of the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum CircuitState {
    /// Calls flow; failures are counted in the rolling window.
    Closed = 0,
    /// Calls are rejected until the open duration has elapsed.
    Open = 1,
    /// A bounded number of probe calls test whether the dependency recovered.
    HalfOpen = 2,
}

impl CircuitState {
    /// The state as the number exported to metrics (0 closed, 1 open, 2 half-open).
    #[inline]
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The lowercase name used in `/status` and logs: `closed`, `open`, `half_open`.
    #[inline]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `u8` that names no [`CircuitState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not a circuit state (expected 0 closed, 1 open or 2 half-open)")]
pub struct InvalidCircuitState(pub u8);

impl TryFrom<u8> for CircuitState {
    type Error = InvalidCircuitState;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        match value {
            0 => Ok(Self::Closed),
            1 => Ok(Self::Open),
            2 => Ok(Self::HalfOpen),
            other => Err(InvalidCircuitState(other)),
        }
    }
}

const STATE_BITS: u32 = 2;
const STATE_MASK: u64 = (1 << STATE_BITS) - 1;

const FORCED_SHIFT: u32 = STATE_BITS;
const FORCED: u64 = 1 << FORCED_SHIFT;

const IN_FLIGHT_SHIFT: u32 = FORCED_SHIFT + 1;
const IN_FLIGHT_BITS: u32 = 10;
const IN_FLIGHT_MASK: u64 = ((1 << IN_FLIGHT_BITS) - 1) << IN_FLIGHT_SHIFT;

const SUCCESSES_SHIFT: u32 = IN_FLIGHT_SHIFT + IN_FLIGHT_BITS;
const SUCCESSES_BITS: u32 = 10;
const SUCCESSES_MASK: u64 = ((1 << SUCCESSES_BITS) - 1) << SUCCESSES_SHIFT;

const TRIPS_SHIFT: u32 = SUCCESSES_SHIFT + SUCCESSES_BITS;
const TRIPS_BITS: u32 = 6;
const TRIPS_MASK: u64 = ((1 << TRIPS_BITS) - 1) << TRIPS_SHIFT;

const GENERATION_SHIFT: u32 = TRIPS_SHIFT + TRIPS_BITS;
/// Generations wrap after 2^35 transitions; permits compare them for equality only.
pub(crate) const GENERATION_MASK: u64 = u64::MAX >> GENERATION_SHIFT;

/// The largest `half_open_max_probes` the word can count.
pub(crate) const MAX_IN_FLIGHT: u64 = (1 << IN_FLIGHT_BITS) - 1;
/// The largest `success_threshold` the word can count up to.
pub(crate) const MAX_SUCCESSES: u64 = (1 << SUCCESSES_BITS) - 1;
/// Consecutive trips saturate here; backoff has long reached its cap by then.
pub(crate) const MAX_TRIPS: u64 = (1 << TRIPS_BITS) - 1;

/// A snapshot of the packed state word. `Copy`, so reading it once gives a consistent
/// view of every field; building a new one never touches the atomic.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Word(u64);

impl Word {
    /// Closed, not forced, generation 0: a new breaker.
    pub(crate) const INITIAL: Word = Word(0);

    #[inline]
    pub(crate) const fn from_bits(bits: u64) -> Word {
        Word(bits)
    }

    #[inline]
    pub(crate) const fn bits(self) -> u64 {
        self.0
    }

    #[inline]
    pub(crate) fn state(self) -> CircuitState {
        match self.0 & STATE_MASK {
            0 => CircuitState::Closed,
            1 => CircuitState::Open,
            // Only transitions below write this field and they never write 3.
            _ => CircuitState::HalfOpen,
        }
    }

    #[inline]
    pub(crate) const fn is_closed(self) -> bool {
        self.0 & STATE_MASK == CircuitState::Closed as u64
    }

    /// Open and not held open by an operator: the state whose rejections are hot.
    #[inline]
    pub(crate) const fn is_open_unforced(self) -> bool {
        self.0 & (STATE_MASK | FORCED) == CircuitState::Open as u64
    }

    #[inline]
    pub(crate) const fn forced(self) -> bool {
        self.0 & FORCED != 0
    }

    #[inline]
    pub(crate) const fn in_flight(self) -> u64 {
        (self.0 & IN_FLIGHT_MASK) >> IN_FLIGHT_SHIFT
    }

    #[inline]
    pub(crate) const fn successes(self) -> u64 {
        (self.0 & SUCCESSES_MASK) >> SUCCESSES_SHIFT
    }

    #[inline]
    pub(crate) const fn trips(self) -> u64 {
        (self.0 & TRIPS_MASK) >> TRIPS_SHIFT
    }

    #[inline]
    pub(crate) const fn generation(self) -> u64 {
        self.0 >> GENERATION_SHIFT
    }

    /// One more probe in flight. The caller has checked it is below the cap.
    #[inline]
    pub(crate) const fn add_probe(self) -> Word {
        Word(self.0 + (1 << IN_FLIGHT_SHIFT))
    }

    /// One probe fewer in flight (saturating: the seed API may settle unadmitted calls).
    #[inline]
    pub(crate) const fn remove_probe(self) -> Word {
        if self.in_flight() == 0 {
            self
        } else {
            Word(self.0 - (1 << IN_FLIGHT_SHIFT))
        }
    }

    /// One more half-open success. The caller has checked it is below the threshold.
    #[inline]
    pub(crate) const fn add_success(self) -> Word {
        Word(self.0 + (1 << SUCCESSES_SHIFT))
    }

    /// The word a transition to `state` produces: the next generation, no probes, no
    /// successes, the given forced flag and trip count.
    #[inline]
    pub(crate) const fn transition(self, state: CircuitState, forced: bool, trips: u64) -> Word {
        let generation = (self.generation() + 1) & GENERATION_MASK;
        let trips = if trips > MAX_TRIPS { MAX_TRIPS } else { trips };
        Word(
            (generation << GENERATION_SHIFT)
                | (trips << TRIPS_SHIFT)
                | if forced { FORCED } else { 0 }
                | state as u64,
        )
    }

    /// Closed → Open or HalfOpen → Open on failures: one more consecutive trip.
    #[inline]
    pub(crate) const fn trip(self) -> Word {
        self.transition(CircuitState::Open, false, self.trips() + 1)
    }

    /// Open → HalfOpen: the caller that wins this CAS is admitted as the first probe.
    #[inline]
    pub(crate) const fn half_open(self) -> Word {
        self.transition(CircuitState::HalfOpen, false, self.trips())
            .add_probe()
    }

    /// HalfOpen → Closed after enough probe successes: backoff starts over.
    #[inline]
    pub(crate) const fn close(self) -> Word {
        self.transition(CircuitState::Closed, false, 0)
    }
}

impl fmt::Debug for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Word")
            .field("state", &self.state())
            .field("forced", &self.forced())
            .field("in_flight", &self.in_flight())
            .field("successes", &self.successes())
            .field("trips", &self.trips())
            .field("generation", &self.generation())
            .finish()
    }
}
