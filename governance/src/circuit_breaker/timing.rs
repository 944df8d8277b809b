//! `Timing`: the configuration turned into the integers the hot paths compare against.

use super::config::CircuitBreakerConfig;

pub(crate) const NANOS_PER_MS: u64 = 1_000_000;
const MS_PER_SEC: u64 = 1_000;

#[derive(Debug, Clone)]
pub(crate) struct Timing {
    pub(crate) failure_threshold: u64,
    pub(crate) success_threshold: u64,
    pub(crate) max_probes: u64,
    pub(crate) probe_deadline_ms: u64,
    /// Width of one window slot.
    pub(crate) slot_nanos: u64,
    /// `(threshold, minimum_calls)` of the failure-rate policy.
    pub(crate) failure_rate: Option<(f64, u64)>,
    timeout_ms: u64,
    backoff_max_ms: u64,
    backoff_multiplier: f64,
    backoff_jitter: f64,
    /// Mixed into the jitter's seed, so that breakers with one history (processes
    /// tripped by one outage) do not draw one "random" open duration.
    jitter_salt: u64,
}

impl Timing {
    /// From a validated configuration.
    pub(crate) fn new(config: &CircuitBreakerConfig) -> Timing {
        let timeout_ms = config.timeout_secs * MS_PER_SEC;
        Timing {
            failure_threshold: config.failure_threshold,
            success_threshold: config.success_threshold,
            max_probes: config.half_open_max_probes,
            probe_deadline_ms: config.probe_deadline_secs * MS_PER_SEC,
            slot_nanos: config.window_secs * 1_000_000_000 / super::window::SLOTS_PER_WINDOW,
            failure_rate: config.failure_rate.map(|r| (r.threshold, r.minimum_calls)),
            timeout_ms,
            backoff_max_ms: (config.backoff_max_secs * MS_PER_SEC).max(timeout_ms),
            backoff_multiplier: config.backoff_multiplier,
            backoff_jitter: config.backoff_jitter,
            jitter_salt: random_salt(),
        }
    }

    /// How long the breaker stays open after its `trips`-th consecutive trip. The jitter
    /// is drawn from the generation, so it is deterministic for a given transition.
    pub(crate) fn open_ms(&self, trips: u64, generation: u64) -> u64 {
        let exponent = trips.saturating_sub(1).min(i32::MAX as u64) as i32;
        let backed_off = (self.timeout_ms as f64 * self.backoff_multiplier.powi(exponent))
            .min(self.backoff_max_ms as f64);
        let jittered =
            backed_off * (1.0 + self.backoff_jitter * unit_interval(generation ^ self.jitter_salt));
        // Both factors are validated finite and >= 1, so this is in [timeout, 2 * max].
        (jittered as u64).max(self.timeout_ms)
    }

    /// Whether `failures` out of `calls` trip the failure-rate policy.
    pub(crate) fn rate_trips(&self, failures: u64, calls: u64) -> bool {
        match self.failure_rate {
            Some((threshold, minimum_calls)) => {
                calls >= minimum_calls && failures as f64 >= threshold * calls as f64
            }
            None => false,
        }
    }
}

/// A per-process random number: std's hasher keys are drawn from the OS.
fn random_salt() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// A number in [0, 1) from `seed` (splitmix64's finaliser).
fn unit_interval(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}
