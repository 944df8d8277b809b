//! `CircuitBreakerSnapshot`: what survives a restart.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::state::CircuitState;

/// The part of a breaker's state worth persisting: restoring it after a restart keeps an
/// open breaker open for the rest of its open duration and a forced one forced.
///
/// The rolling window and probes in flight are not kept: the calls they describe died
/// with the process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircuitBreakerSnapshot {
    /// The state when the snapshot was taken.
    pub state: CircuitState,
    /// Whether an operator forced it.
    pub forced: bool,
    /// When it opened, as wall-clock time (`None` unless open).
    pub opened_at: Option<SystemTime>,
    /// Consecutive trips without closing, which sets the backed-off open duration.
    pub consecutive_trips: u32,
    /// How long the open period lasts in all (with backoff and jitter), in ms; `None`
    /// unless open. Restoring uses it rather than drawing a new jitter.
    #[serde(default)]
    pub open_duration_ms: Option<u64>,
}
