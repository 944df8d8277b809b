//! Fuzzes the node's TOML configuration file: the input is the file's bytes, loaded with
//! `node::config::load` (`--config PATH`, an empty environment) as `node run` loads it.
//!
//! Invariants: no panic; a refusal names a key; an accepted configuration is one the
//! node can start with (its breaker builds, every section validates, every bound holds),
//! and its breaker survives the extreme settings it allows.

#![no_main]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use governance::{
    CircuitBreaker, CircuitBreakerConfig, CircuitBreakerSnapshot, CircuitState, ManualClock,
};
use libfuzzer_sys::fuzz_target;
use node::config::{self, MIN_TOKEN_LEN, Overrides};

/// One file per process, overwritten by each input (kept alive with its directory).
static FILE: LazyLock<(tempfile::TempDir, PathBuf)> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("node.toml");
    (dir, path)
});

fuzz_target!(|data: &[u8]| {
    let path = &FILE.1;
    std::fs::write(path, data).expect("write the config file");
    let overrides = Overrides {
        config: Some(path.clone()),
        ..Overrides::default()
    };
    let config = match config::load(&overrides, &HashMap::<String, String>::new()) {
        Ok(config) => config,
        Err(error) => {
            assert!(!error.key.is_empty(), "a refusal without a key: {error}");
            return;
        }
    };
    assert!((1..=10_000).contains(&config.batch_size));
    let interval = config.poll_interval;
    assert!(Duration::from_millis(10) <= interval && interval <= Duration::from_secs(3_600));
    for token in &config.admin_tokens {
        assert!(
            token.secret.len() >= MIN_TOKEN_LEN,
            "a short admin token was accepted"
        );
    }
    assert!(
        !config.identity.trim().is_empty(),
        "an empty identity was accepted"
    );
    if let Err(error) = config.evm.validate() {
        panic!("an accepted [evm] table does not validate: {error}");
    }
    if let Err(error) = config.dev_ledger.validate() {
        panic!("an accepted [dev_ledger] table does not validate: {error}");
    }
    exercise_breaker(config.circuit_breaker);
});

/// Builds the breaker as `main` does and runs it through its states, including a restore
/// with the longest backoff its settings allow.
fn exercise_breaker(config: CircuitBreakerConfig) {
    let clock = ManualClock::new();
    let threshold = config.failure_threshold;
    let timeout = Duration::from_secs(config.timeout_secs);
    let breaker = match CircuitBreaker::try_with_clock(config, clock.clone()) {
        Ok(breaker) => Arc::new(breaker),
        Err(error) => panic!("load accepted a breaker configuration that try_new refuses: {error}"),
    };
    for _ in 0..threshold.min(16) {
        if let Ok(permit) = breaker.try_acquire() {
            permit.failure();
        }
    }
    let _ = breaker.open_remaining();
    clock.advance(timeout);
    for _ in 0..4 {
        if let Ok(permit) = breaker.try_acquire() {
            permit.success();
        }
    }
    breaker.force_open();
    let mut snapshot = breaker.snapshot();
    breaker.reset();
    snapshot.state = CircuitState::Open;
    snapshot.forced = false;
    snapshot.consecutive_trips = u32::MAX;
    snapshot.open_duration_ms = None;
    breaker.restore(&snapshot);
    let _ = breaker.open_remaining();
    clock.advance(Duration::from_secs(2 * 7 * 24 * 3_600 + 1));
    let _ = breaker.try_acquire().map(|permit| permit.failure());
    breaker.restore(&CircuitBreakerSnapshot {
        state: CircuitState::HalfOpen,
        forced: true,
        opened_at: None,
        consecutive_trips: 0,
        open_duration_ms: Some(u64::MAX),
    });
    let _ = breaker.snapshot();
}
