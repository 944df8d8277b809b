//! `CircuitBreakerConfig`: the knobs, their production defaults, and validation.

use serde::{Deserialize, Serialize};

use super::error::CircuitBreakerConfigError;
use super::state::{MAX_IN_FLIGHT, MAX_SUCCESSES};
use super::window::MAX_BUCKET_COUNT;

/// The longest any single duration setting may be: one week. Longer waits are what
/// `force_open` is for, and the bound keeps millisecond arithmetic far from overflow.
pub const MAX_DURATION_SECS: u64 = 7 * 24 * 60 * 60;

/// How a [`CircuitBreaker`](super::CircuitBreaker) decides to open, how long it stays
/// open and how it probes.
///
/// The first four fields are the seed's, with its names, types and production
/// defaults (5 failures within 300 s open it for 60 s; 2 probe successes close it).
/// The rest default to the seed's behaviour: two probes, fixed open duration, no
/// failure-rate policy.
///
/// ```
/// use governance::CircuitBreakerConfig;
///
/// let drill = CircuitBreakerConfig { timeout_secs: 5, ..Default::default() };
/// assert!(drill.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CircuitBreakerConfig {
    /// Failures inside the rolling window that open the breaker (the one that reaches
    /// it trips it). 1 ..= 2^32 - 1.
    pub failure_threshold: u64,
    /// Probe successes in half-open that close the breaker. 1 ..= 1023.
    pub success_threshold: u64,
    /// How long the breaker stays open before it lets a probe through (the first trip;
    /// backoff may lengthen later ones). 1 ..= one week.
    pub timeout_secs: u64,
    /// Length of the rolling failure window. 1 ..= one week.
    pub window_secs: u64,
    /// Probes allowed in flight at once while half-open. 1 ..= 1023.
    pub half_open_max_probes: u64,
    /// A probe not settled within this long frees its slot for another probe, so a lost
    /// probe cannot wedge the breaker half-open. 1 ..= one week.
    pub probe_deadline_secs: u64,
    /// Each consecutive trip (without closing in between) multiplies the open duration
    /// by this. 1.0 (the default) keeps it fixed at `timeout_secs`.
    pub backoff_multiplier: f64,
    /// Upper bound of the backed-off open duration (never below `timeout_secs`).
    pub backoff_max_secs: u64,
    /// Adds up to this fraction of the open duration at random, so that many breakers
    /// tripped together do not probe together. 0.0 ..= 1.0; default 0.
    pub backoff_jitter: f64,
    /// Also open when the failure rate inside the window reaches a threshold. Off by
    /// default; when on, successes are counted too (a shared write per call).
    pub failure_rate: Option<FailureRatePolicy>,
}

/// Open when at least `minimum_calls` settled calls are in the window and the share of
/// failures among them reaches `threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureRatePolicy {
    /// Failure share that opens the breaker, in (0, 1].
    pub threshold: f64,
    /// Calls the window must hold before the rate is trusted. At least 1.
    pub minimum_calls: u64,
}

impl Default for CircuitBreakerConfig {
    /// The production configuration: 5 failures in 300 s open it for 60 s; 2 of at most
    /// 2 concurrent probes close it; a probe is presumed lost after 30 s.
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            success_threshold: 2,
            timeout_secs: 60,
            window_secs: 300,
            half_open_max_probes: 2,
            probe_deadline_secs: 30,
            backoff_multiplier: 1.0,
            backoff_max_secs: 600,
            backoff_jitter: 0.0,
            failure_rate: None,
        }
    }
}

impl CircuitBreakerConfig {
    /// Checks every field, returning the first one out of range.
    pub fn validate(&self) -> Result<(), CircuitBreakerConfigError> {
        in_range(
            "failure_threshold",
            self.failure_threshold,
            1,
            MAX_BUCKET_COUNT,
        )?;
        in_range(
            "success_threshold",
            self.success_threshold,
            1,
            MAX_SUCCESSES,
        )?;
        in_range("timeout_secs", self.timeout_secs, 1, MAX_DURATION_SECS)?;
        in_range("window_secs", self.window_secs, 1, MAX_DURATION_SECS)?;
        in_range(
            "half_open_max_probes",
            self.half_open_max_probes,
            1,
            MAX_IN_FLIGHT,
        )?;
        in_range(
            "probe_deadline_secs",
            self.probe_deadline_secs,
            1,
            MAX_DURATION_SECS,
        )?;
        in_range(
            "backoff_max_secs",
            self.backoff_max_secs,
            1,
            MAX_DURATION_SECS,
        )?;
        real_in_range(
            "backoff_multiplier",
            self.backoff_multiplier,
            "between 1.0 and 1000000.0",
            |m| (1.0..=1.0e6).contains(&m),
        )?;
        real_in_range(
            "backoff_jitter",
            self.backoff_jitter,
            "between 0.0 and 1.0",
            |j| (0.0..=1.0).contains(&j),
        )?;
        if let Some(rate) = &self.failure_rate {
            real_in_range(
                "failure_rate.threshold",
                rate.threshold,
                "greater than 0.0 and at most 1.0",
                |t| t > 0.0 && t <= 1.0,
            )?;
            in_range(
                "failure_rate.minimum_calls",
                rate.minimum_calls,
                1,
                MAX_BUCKET_COUNT,
            )?;
        }
        Ok(())
    }
}

fn in_range(
    field: &'static str,
    value: u64,
    min: u64,
    max: u64,
) -> Result<(), CircuitBreakerConfigError> {
    if value < min {
        Err(CircuitBreakerConfigError::TooSmall { field, min, value })
    } else if value > max {
        Err(CircuitBreakerConfigError::TooLarge { field, max, value })
    } else {
        Ok(())
    }
}

fn real_in_range(
    field: &'static str,
    value: f64,
    expected: &'static str,
    ok: impl Fn(f64) -> bool,
) -> Result<(), CircuitBreakerConfigError> {
    // NaN fails every comparison, so `ok` refuses it without a special case.
    if ok(value) {
        Ok(())
    } else {
        Err(CircuitBreakerConfigError::OutOfRange {
            field,
            expected,
            value,
        })
    }
}
