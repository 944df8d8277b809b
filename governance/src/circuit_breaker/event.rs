//! `Transition`: what the breaker reports to its listener, once per transition.

use std::fmt;

use super::state::CircuitState;

/// One state transition, reported exactly once by the caller whose CAS performed it,
/// after the new state is visible and with no lock held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state before.
    pub from: CircuitState,
    /// The state after.
    pub to: CircuitState,
    /// Whether the new state is an operator's sticky override.
    pub forced: bool,
    /// The generation the transition started.
    pub generation: u64,
    /// Why it happened.
    pub cause: TransitionCause,
}

/// Why a [`Transition`] happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransitionCause {
    /// Failures in the rolling window reached `failure_threshold`.
    FailureThreshold,
    /// The failure rate in the window reached the failure-rate policy's threshold.
    FailureRate,
    /// The open duration elapsed and a caller was admitted as the first probe.
    OpenTimeoutElapsed,
    /// `success_threshold` probes succeeded.
    ProbesSucceeded,
    /// A probe failed.
    ProbeFailed,
    /// `force_open`.
    ForcedOpen,
    /// `force_close`.
    ForcedClose,
    /// `reset`.
    Reset,
    /// `restore` from a snapshot.
    Restored,
}

impl TransitionCause {
    /// A stable `snake_case` name, for logs, audit records and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::FailureThreshold => "failure_threshold",
            Self::FailureRate => "failure_rate",
            Self::OpenTimeoutElapsed => "open_timeout_elapsed",
            Self::ProbesSucceeded => "probes_succeeded",
            Self::ProbeFailed => "probe_failed",
            Self::ForcedOpen => "forced_open",
            Self::ForcedClose => "forced_close",
            Self::Reset => "reset",
            Self::Restored => "restored",
        }
    }
}

impl fmt::Display for TransitionCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.from, self.to)?;
        if self.forced {
            f.write_str(" (forced)")?;
        }
        write!(f, " on {} [generation {}]", self.cause, self.generation)
    }
}
