//! The breaker's behaviour through its public API: the seed's ten scenarios, one test per
//! rule of brief §3, and one per pitfall seen in the systems it replaces.
//!
//! Time is a `ManualClock` throughout: no test sleeps to wait for a timeout.
#![cfg(not(loom))]

mod circuit_breaker {
    use std::sync::{Arc, Barrier, Mutex};
    use std::thread;
    use std::time::Duration;

    use governance::{
        CircuitBreaker, CircuitBreakerConfig, CircuitBreakerConfigError, CircuitBreakerSnapshot,
        CircuitState, FailureRatePolicy, ManualClock, Outcome, RejectReason, Transition,
        TransitionCause,
    };

    const SEC: Duration = Duration::from_secs(1);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// A production-config breaker on a manual clock.
    fn breaker() -> (CircuitBreaker, ManualClock) {
        breaker_with(CircuitBreakerConfig::default())
    }

    fn breaker_with(config: CircuitBreakerConfig) -> (CircuitBreaker, ManualClock) {
        let clock = ManualClock::new();
        (CircuitBreaker::with_clock(config, clock.clone()), clock)
    }

    /// Records every transition the breaker reports.
    fn recorder(breaker: &CircuitBreaker) -> Arc<Mutex<Vec<Transition>>> {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        breaker
            .set_listener(move |t| sink.lock().expect("listener mutex").push(*t))
            .expect("first listener");
        events
    }

    fn taken(
        events: &Mutex<Vec<Transition>>,
    ) -> Vec<(CircuitState, CircuitState, TransitionCause)> {
        std::mem::take(&mut *events.lock().expect("events"))
            .into_iter()
            .map(|t| (t.from, t.to, t.cause))
            .collect()
    }

    fn fail(breaker: &CircuitBreaker, n: u64) {
        for _ in 0..n {
            breaker.try_acquire().expect("admitted").failure();
        }
    }

    /// Trips a production breaker (5 failures now).
    fn trip(breaker: &CircuitBreaker) {
        fail(breaker, 5);
        assert_eq!(breaker.state(), CircuitState::Open);
    }

    /// Keeps the permit's slot taken for the rest of the test: forgets it unsettled, as the
    /// seed API's `allow_request` does (dropping it would free the slot).
    fn hold(permit: governance::Permit<'_>) {
        std::mem::forget(permit);
    }

    use CircuitState::{Closed, HalfOpen, Open};

    /// The seed's ten scenarios, by their names.
    mod seed {
        use super::*;

        #[test]
        fn opens_after_failures() {
            let (breaker, _clock) = breaker();
            for i in 1..5 {
                breaker.try_acquire().expect("closed admits").failure();
                assert_eq!(breaker.state(), Closed, "after {i} failures");
                assert_eq!(breaker.failure_count(), i);
            }
            breaker.try_acquire().expect("closed admits").failure();
            assert_eq!(breaker.state(), Open, "the 5th failure trips it");
            let rejected = breaker.try_acquire().expect_err("open rejects");
            assert_eq!(rejected.reason(), RejectReason::Open);
            assert!(!breaker.allow_request());
        }

        #[test]
        fn half_open_after_timeout() {
            let (breaker, clock) = breaker();
            trip(&breaker);
            clock.advance(secs(59));
            assert!(breaker.try_acquire().is_err(), "still open at 59 s");
            assert_eq!(breaker.state(), Open);
            clock.advance(SEC);
            let probe = breaker
                .try_acquire()
                .expect("the first call after 60 s is a probe");
            assert!(probe.is_probe());
            assert_eq!(breaker.state(), HalfOpen);
            probe.ignore();
        }

        #[test]
        fn closes_after_successes() {
            let (breaker, clock) = breaker();
            trip(&breaker);
            clock.advance(secs(60));
            let first = breaker.try_acquire().expect("probe 1");
            let second = breaker.try_acquire().expect("probe 2");
            first.success();
            assert_eq!(breaker.state(), HalfOpen, "one success is not enough");
            assert_eq!(breaker.success_count(), 1);
            second.success();
            assert_eq!(breaker.state(), Closed);
            assert_eq!(breaker.failure_count(), 0, "closing clears the window");
            assert_eq!(breaker.success_count(), 0);
        }

        #[test]
        fn reopens_on_half_open_failure() {
            let (breaker, clock) = breaker();
            trip(&breaker);
            clock.advance(secs(60));
            let first = breaker.try_acquire().expect("probe 1");
            let second = breaker.try_acquire().expect("probe 2");
            first.success();
            second.failure();
            assert_eq!(breaker.state(), Open, "any probe failure reopens");
            assert!(breaker.try_acquire().is_err());
            clock.advance(secs(60));
            assert!(
                breaker.try_acquire().is_ok(),
                "and it probes again after another timeout"
            );
        }

        #[test]
        fn outcome_classification() {
            let (breaker, clock) = breaker();
            // Ignored outcomes never count as failures...
            for _ in 0..50 {
                breaker.try_acquire().expect("closed").ignore();
                drop(breaker.try_acquire().expect("closed")); // dropping = ignored
            }
            assert_eq!(breaker.failure_count(), 0);
            assert_eq!(breaker.state(), Closed);
            // ...nor as probe successes, but they do free the probe's slot.
            trip(&breaker);
            clock.advance(secs(60));
            breaker.try_acquire().expect("probe").ignore();
            drop(breaker.try_acquire().expect("probe"));
            assert_eq!(
                breaker.state(),
                HalfOpen,
                "ignored probes neither close nor reopen"
            );
            assert_eq!(breaker.success_count(), 0);
            assert_eq!(breaker.probes_in_flight(), 0, "the slots are free again");
            breaker
                .try_acquire()
                .expect("probe")
                .record(Outcome::Success);
            breaker
                .try_acquire()
                .expect("probe")
                .record(Outcome::Success);
            assert_eq!(breaker.state(), Closed);
        }

        /// 16 threads race their failures past the threshold, 200 rounds: every round
        /// reports exactly one transition to Open, and no state is lost.
        #[test]
        fn concurrent_access() {
            const THREADS: usize = 16;
            for round in 0..200 {
                let (breaker, clock) = breaker();
                let events = recorder(&breaker);
                let barrier = Barrier::new(THREADS);
                thread::scope(|s| {
                    for _ in 0..THREADS {
                        s.spawn(|| {
                            let permit = breaker.try_acquire();
                            barrier.wait();
                            if let Ok(permit) = permit {
                                permit.failure();
                            }
                        });
                    }
                });
                let trips: Vec<_> = taken(&events).into_iter().filter(|e| e.1 == Open).collect();
                assert_eq!(
                    trips.len(),
                    1,
                    "round {round}: exactly one transition to Open"
                );
                assert_eq!(breaker.state(), Open);

                // Then the same threads race the open → half-open edge: one transition,
                // and never more probes admitted than the cap.
                clock.advance(secs(60));
                let admitted = std::sync::atomic::AtomicUsize::new(0);
                let barrier = Barrier::new(THREADS);
                thread::scope(|s| {
                    for _ in 0..THREADS {
                        s.spawn(|| {
                            barrier.wait();
                            if let Ok(permit) = breaker.try_acquire() {
                                admitted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                hold(permit);
                            }
                        });
                    }
                });
                assert_eq!(
                    admitted.into_inner(),
                    2,
                    "round {round}: exactly the cap admitted"
                );
                let half_opens = taken(&events)
                    .into_iter()
                    .filter(|e| e.1 == HalfOpen)
                    .count();
                assert_eq!(
                    half_opens, 1,
                    "round {round}: exactly one caller half-opened it"
                );
            }
        }

        #[test]
        fn state_persistence() {
            let (breaker, clock) = breaker();
            trip(&breaker);
            clock.advance(secs(20));
            let snapshot = breaker.snapshot();
            assert_eq!(snapshot.state, Open);
            assert!(!snapshot.forced);
            assert_eq!(snapshot.consecutive_trips, 1);
            // Through JSON, as the store keeps it.
            let json = serde_json::to_string(&snapshot).expect("serialize");
            let snapshot: CircuitBreakerSnapshot =
                serde_json::from_str(&json).expect("deserialize");

            // "Restart" 10 s later: 30 s of the 60 s open duration remain.
            clock.advance(secs(10));
            let restarted =
                CircuitBreaker::with_clock(CircuitBreakerConfig::default(), clock.clone());
            restarted.restore(&snapshot);
            assert_eq!(restarted.state(), Open);
            assert_eq!(restarted.open_remaining(), Some(secs(30)));
            clock.advance(secs(29));
            assert!(restarted.try_acquire().is_err(), "open for the remainder");
            clock.advance(SEC);
            assert!(restarted.try_acquire().expect("probe").is_probe());

            // A forced-open breaker stays forced across a restart, however long it takes.
            breaker.force_open();
            let snapshot = breaker.snapshot();
            assert!(snapshot.forced);
            clock.advance(secs(86_400));
            let restarted =
                CircuitBreaker::with_clock(CircuitBreakerConfig::default(), clock.clone());
            restarted.restore(&snapshot);
            assert_eq!(restarted.state(), Open);
            assert!(restarted.is_forced());
            assert_eq!(
                restarted.try_acquire().expect_err("forced").reason(),
                RejectReason::ForcedOpen
            );

            // And a forced-closed one stays forced closed.
            breaker.force_close();
            let restarted =
                CircuitBreaker::with_clock(CircuitBreakerConfig::default(), clock.clone());
            restarted.restore(&breaker.snapshot());
            fail(&restarted, 10);
            assert_eq!(restarted.state(), Closed);
            assert!(restarted.is_forced());
        }

        #[test]
        fn manual_intervention() {
            let (breaker, clock) = breaker();
            let events = recorder(&breaker);

            breaker.force_open();
            assert_eq!(breaker.state(), Open);
            assert!(breaker.is_forced());
            clock.advance(secs(3_600));
            assert_eq!(
                breaker.try_acquire().expect_err("forced").reason(),
                RejectReason::ForcedOpen
            );
            assert_eq!(breaker.state(), Open, "no automatic half-open while forced");

            breaker.force_close();
            fail(&breaker, 20);
            assert_eq!(breaker.state(), Closed, "forced closed never trips");
            assert_eq!(
                breaker.failure_count(),
                20,
                "but failures are still counted"
            );

            breaker.reset();
            assert!(!breaker.is_forced());
            assert_eq!(
                breaker.failure_count(),
                0,
                "reset returns to a clean Closed"
            );
            fail(&breaker, 5);
            assert_eq!(breaker.state(), Open, "and the thresholds apply again");

            assert_eq!(
                taken(&events),
                vec![
                    (Closed, Open, TransitionCause::ForcedOpen),
                    (Open, Closed, TransitionCause::ForcedClose),
                    (Closed, Closed, TransitionCause::Reset),
                    (Closed, Open, TransitionCause::FailureThreshold),
                ]
            );
        }

        #[test]
        fn production_config() {
            let config = CircuitBreakerConfig::default();
            assert_eq!(
                (
                    config.failure_threshold,
                    config.success_threshold,
                    config.timeout_secs,
                    config.window_secs
                ),
                (5, 2, 60, 300)
            );
            // Five failures inside 300 s trip it on the fifth.
            let (breaker, clock) = breaker();
            for _ in 0..4 {
                fail(&breaker, 1);
                clock.advance(secs(74));
            }
            assert_eq!(breaker.state(), Closed);
            fail(&breaker, 1); // at 296 s
            assert_eq!(breaker.state(), Open);

            // Five failures spread over more than the window (and its 10% resolution) do not.
            let (breaker, clock) = super::breaker();
            for _ in 0..4 {
                fail(&breaker, 1);
                clock.advance(secs(83));
            }
            fail(&breaker, 1); // at 332 s: the first has aged out
            assert_eq!(breaker.state(), Closed);
            assert_eq!(breaker.failure_count(), 4);
        }

        /// 4 threads × 40,000 mixed calls on a flapping breaker. Invariants checked at
        /// the end: transitions reported form a valid chain (each `from` is the previous
        /// `to`), generations strictly increase by one, the probe count never exceeded
        /// the cap, and the breaker ends consistent and usable.
        #[test]
        fn stress() {
            const THREADS: u64 = 4;
            const CALLS: u64 = 40_000;
            let config = CircuitBreakerConfig {
                failure_threshold: 20,
                success_threshold: 3,
                half_open_max_probes: 3,
                // No probe is ever presumed lost here (a descheduled thread would
                // otherwise have its probe taken over, by design, past the cap).
                probe_deadline_secs: governance::circuit_breaker::MAX_DURATION_SECS,
                ..Default::default()
            };
            let (breaker, clock) = breaker_with(config);
            let events = recorder(&breaker);
            // Probes admitted and not yet settled, counted by the callers themselves:
            // the cap must hold for what callers actually hold, not just the word.
            let outstanding = std::sync::atomic::AtomicU64::new(0);
            let max_outstanding = std::sync::atomic::AtomicU64::new(0);
            thread::scope(|s| {
                for t in 0..THREADS {
                    let breaker = &breaker;
                    let clock = &clock;
                    let (outstanding, max_outstanding) = (&outstanding, &max_outstanding);
                    s.spawn(move || {
                        use std::sync::atomic::Ordering::SeqCst;
                        let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                        for i in 0..CALLS {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            if t == 0 && i % 500 == 0 {
                                clock.advance(secs(7));
                            }
                            if let Ok(permit) = breaker.try_acquire() {
                                let probe = permit.is_probe();
                                if probe {
                                    let now = outstanding.fetch_add(1, SeqCst) + 1;
                                    max_outstanding.fetch_max(now, SeqCst);
                                }
                                let outcome = match x % 10 {
                                    0..=2 => Outcome::Failure,
                                    3 => Outcome::Ignored,
                                    _ => Outcome::Success,
                                };
                                // Counted out before settling: once settled, its slot may
                                // go to another thread at once.
                                if probe {
                                    outstanding.fetch_sub(1, SeqCst);
                                }
                                permit.record(outcome);
                            }
                        }
                    });
                }
            });
            let mut events = std::mem::take(&mut *events.lock().expect("events"));
            // Threads report their transitions at their own pace: order by generation.
            events.sort_by_key(|t| t.generation);
            assert!(
                events.len() > 10,
                "the breaker flapped: {} transitions",
                events.len()
            );
            let mut state = Closed;
            let mut generation = 0;
            for event in &events {
                assert_eq!(event.from, state, "chain broken at {event}");
                assert_eq!(
                    event.generation,
                    generation + 1,
                    "generation skipped at {event}"
                );
                state = event.to;
                generation = event.generation;
            }
            assert_eq!(breaker.state(), state);
            assert_eq!(breaker.generation(), generation);
            let max = max_outstanding.into_inner();
            assert!((1..=3).contains(&max), "probes held at once: {max} (cap 3)");
            breaker.reset();
            assert!(breaker.try_acquire().is_ok());
        }
    }

    /// One test per rule of brief §3.
    mod semantics {
        use super::*;

        #[test]
        fn closed_admits_every_call() {
            let (breaker, _clock) = breaker();
            let permits: Vec<_> = (0..1_000)
                .map(|_| breaker.try_acquire().expect("closed admits"))
                .collect();
            assert_eq!(permits.len(), 1_000);
            permits.into_iter().for_each(|p| p.success());
        }

        #[test]
        fn the_failure_that_reaches_the_threshold_trips() {
            let (breaker, _clock) = breaker();
            let events = recorder(&breaker);
            let permits: Vec<_> = (0..5)
                .map(|_| breaker.try_acquire().expect("closed"))
                .collect();
            let mut permits = permits.into_iter();
            for _ in 0..4 {
                permits.next().expect("permit").failure();
            }
            assert!(taken(&events).is_empty());
            permits.next().expect("permit").failure();
            assert_eq!(
                taken(&events),
                vec![(Closed, Open, TransitionCause::FailureThreshold)]
            );
        }

        #[test]
        fn window_counts_younger_than_window_and_never_older_than_1_1_window() {
            // window 100 s: slots of 10 s
            let config = CircuitBreakerConfig {
                window_secs: 100,
                failure_threshold: 2,
                ..Default::default()
            };
            for (gap_ms, trips) in [
                (99_999, true),
                (90_001, true),
                (110_000, false),
                (150_000, false),
            ] {
                // at every offset inside a slot, so that bucket edges are exercised
                for offset_ms in [0, 1, 4_999, 9_999] {
                    let (breaker, clock) = breaker_with(config.clone());
                    clock.advance(Duration::from_millis(offset_ms));
                    fail(&breaker, 1);
                    clock.advance(Duration::from_millis(gap_ms));
                    fail(&breaker, 1);
                    assert_eq!(
                        breaker.state() == Open,
                        trips,
                        "failure {gap_ms} ms old at offset {offset_ms} ms"
                    );
                }
            }
        }

        #[test]
        fn open_rejects_until_the_open_duration_has_elapsed() {
            let (breaker, clock) = breaker();
            trip(&breaker);
            for _ in 0..59 {
                assert_eq!(
                    breaker.try_acquire().expect_err("open").reason(),
                    RejectReason::Open
                );
                clock.advance(SEC);
            }
            clock.advance(Duration::from_millis(999));
            assert!(breaker.try_acquire().is_err(), "59.999 s");
            assert_eq!(breaker.open_remaining(), Some(Duration::from_millis(1)));
            clock.advance(Duration::from_millis(1));
            assert!(breaker.try_acquire().is_ok(), "60 s");
        }

        #[test]
        fn is_rejecting_agrees_with_try_acquire_and_never_transitions() {
            let (breaker, clock) = breaker();
            assert!(!breaker.is_rejecting(), "closed");
            trip(&breaker);
            assert!(breaker.is_rejecting());
            clock.advance(secs(60));
            assert!(!breaker.is_rejecting(), "the open duration is over");
            assert_eq!(breaker.state(), Open, "and asking did not half-open it");
            breaker.force_open();
            clock.advance(secs(3_600));
            assert!(
                breaker.is_rejecting(),
                "forced open rejects whatever the time"
            );
            assert!(breaker.try_acquire().is_err());
            breaker.force_close();
            assert!(!breaker.is_rejecting());
        }

        #[test]
        fn open_to_half_open_is_one_reported_transition_and_admits_its_caller() {
            let config = CircuitBreakerConfig {
                half_open_max_probes: 1,
                ..Default::default()
            };
            let (breaker, clock) = breaker_with(config);
            let events = recorder(&breaker);
            trip(&breaker);
            clock.advance(secs(60));
            let probe = breaker
                .try_acquire()
                .expect("the transitioning caller is admitted");
            assert!(probe.is_probe());
            assert!(breaker.try_acquire().is_err(), "cap 1");
            assert_eq!(
                taken(&events),
                vec![
                    (Closed, Open, TransitionCause::FailureThreshold),
                    (Open, HalfOpen, TransitionCause::OpenTimeoutElapsed)
                ]
            );
            probe.success();
        }

        #[test]
        fn half_open_admits_at_most_the_probe_cap() {
            for cap in [1, 2, 5] {
                let config = CircuitBreakerConfig {
                    half_open_max_probes: cap,
                    success_threshold: 10,
                    ..Default::default()
                };
                let (breaker, clock) = breaker_with(config);
                trip(&breaker);
                clock.advance(secs(60));
                let probes: Vec<_> = (0..cap)
                    .map(|_| breaker.try_acquire().expect("within cap"))
                    .collect();
                let rejected = breaker.try_acquire().expect_err("over the cap");
                assert_eq!(rejected.reason(), RejectReason::HalfOpenFull);
                assert_eq!(rejected.state(), HalfOpen);
                assert_eq!(breaker.probes_in_flight(), cap);
                // Settling one frees exactly one slot.
                let mut probes = probes.into_iter();
                probes.next().expect("probe").success();
                let again = breaker.try_acquire().expect("a slot came free");
                assert!(breaker.try_acquire().is_err());
                drop(again);
                drop(probes);
            }
        }

        #[test]
        fn closing_clears_the_window_and_resets_backoff() {
            let config = CircuitBreakerConfig {
                backoff_multiplier: 2.0,
                ..Default::default()
            };
            let (breaker, clock) = breaker_with(config);
            trip(&breaker);
            assert_eq!(breaker.open_remaining(), Some(secs(60)));
            clock.advance(secs(60));
            breaker.try_acquire().expect("probe").failure();
            assert_eq!(
                breaker.open_remaining(),
                Some(secs(120)),
                "second trip: doubled"
            );
            clock.advance(secs(120));
            breaker.try_acquire().expect("probe").success();
            breaker.try_acquire().expect("probe").success();
            assert_eq!(breaker.state(), Closed);
            assert_eq!(
                breaker.failure_count(),
                0,
                "the 5 failures that tripped it are gone"
            );
            fail(&breaker, 4);
            assert_eq!(breaker.state(), Closed, "4 new failures do not trip");
            fail(&breaker, 1);
            assert_eq!(
                breaker.open_remaining(),
                Some(secs(60)),
                "backoff started over"
            );
        }

        #[test]
        fn backoff_grows_to_its_cap_and_jitter_stays_in_bounds() {
            let config = CircuitBreakerConfig {
                backoff_multiplier: 3.0,
                backoff_max_secs: 1_000,
                ..Default::default()
            };
            let (breaker, clock) = breaker_with(config);
            trip(&breaker);
            let mut seen = vec![];
            for _ in 0..5 {
                let remaining = breaker.open_remaining().expect("open");
                seen.push(remaining.as_secs());
                clock.advance(remaining);
                breaker.try_acquire().expect("probe").failure();
            }
            assert_eq!(seen, vec![60, 180, 540, 1_000, 1_000]);

            let config = CircuitBreakerConfig {
                backoff_jitter: 0.5,
                ..Default::default()
            };
            let (breaker, clock) = breaker_with(config);
            trip(&breaker);
            let mut distinct = std::collections::BTreeSet::new();
            for _ in 0..20 {
                let remaining = breaker.open_remaining().expect("open");
                assert!((secs(60)..=secs(90)).contains(&remaining), "{remaining:?}");
                distinct.insert(remaining);
                clock.advance(remaining);
                breaker.try_acquire().expect("probe").failure();
            }
            assert!(distinct.len() > 5, "jitter varies: {distinct:?}");
        }

        #[test]
        fn lost_probe_frees_its_slot_at_the_probe_deadline() {
            let config = CircuitBreakerConfig {
                half_open_max_probes: 1,
                ..Default::default()
            };
            let (breaker, clock) = breaker_with(config);
            trip(&breaker);
            clock.advance(secs(60));
            let lost = breaker.try_acquire().expect("probe");
            clock.advance(secs(29));
            assert!(
                breaker.try_acquire().is_err(),
                "the probe is still presumed alive"
            );
            clock.advance(SEC);
            let replacement = breaker
                .try_acquire()
                .expect("the lost probe's slot is free at 30 s");
            assert_eq!(
                breaker.probes_in_flight(),
                1,
                "the replacement inherits the slot"
            );
            // The lost probe settles at last: it must not free the live probe's slot...
            lost.success();
            assert_eq!(breaker.success_count(), 0, "...and its result is ignored");
            assert!(
                breaker.try_acquire().is_err(),
                "the replacement still holds the only slot"
            );
            replacement.success();
            assert_eq!(breaker.success_count(), 1);
        }

        #[test]
        fn results_of_an_earlier_generation_are_ignored() {
            let (breaker, clock) = breaker();
            let slow_success = breaker.try_acquire().expect("closed");
            let slow_failure = breaker.try_acquire().expect("closed");
            trip(&breaker);
            clock.advance(secs(60));
            let probe = breaker.try_acquire().expect("probe");
            slow_failure.failure();
            assert_eq!(
                breaker.state(),
                HalfOpen,
                "a closed-era failure does not reopen"
            );
            slow_success.success();
            assert_eq!(
                breaker.success_count(),
                0,
                "a closed-era success does not count"
            );
            probe.success();
            assert_eq!(breaker.success_count(), 1);
        }

        #[test]
        fn manual_transitions_start_a_new_generation() {
            let (breaker, _clock) = breaker();
            let generation = breaker.generation();
            let before = breaker.try_acquire().expect("closed");
            let t = breaker.force_close();
            assert_eq!(t.generation, generation + 1);
            before.failure();
            assert_eq!(
                breaker.failure_count(),
                0,
                "a permit from before force_close is stale"
            );
            assert_eq!(breaker.reset().generation, generation + 2);
            assert_eq!(breaker.force_open().generation, generation + 3);
        }

        #[test]
        fn force_open_and_force_close_are_sticky_until_reset() {
            let (breaker, clock) = breaker();
            breaker.force_close();
            clock.advance(secs(10_000));
            fail(&breaker, 100);
            assert_eq!((breaker.state(), breaker.is_forced()), (Closed, true));
            breaker.force_open();
            clock.advance(secs(10_000));
            assert!(!breaker.allow_request());
            assert_eq!((breaker.state(), breaker.is_forced()), (Open, true));
            breaker.reset();
            assert_eq!((breaker.state(), breaker.is_forced()), (Closed, false));
        }

        #[test]
        fn seed_api_runs_on_the_same_core() {
            let (breaker, clock) = breaker();
            for _ in 0..5 {
                assert!(breaker.allow_request());
                breaker.record_failure();
            }
            assert_eq!(breaker.state(), Open);
            assert!(!breaker.allow_request());
            clock.advance(secs(60));
            assert!(breaker.allow_request());
            assert!(breaker.allow_request());
            assert!(!breaker.allow_request(), "two probes at most");
            breaker.record_success();
            assert_eq!(breaker.success_count(), 1);
            assert_eq!(breaker.probes_in_flight(), 1);
            breaker.record_success();
            assert_eq!(breaker.state(), Closed);
            // record_* without allow_request: counted against the current state
            breaker.record_failure();
            assert_eq!(breaker.failure_count(), 1);
        }

        #[test]
        fn every_transition_is_reported_once_in_order() {
            let (breaker, clock) = breaker();
            let events = recorder(&breaker);
            trip(&breaker);
            clock.advance(secs(60));
            breaker.try_acquire().expect("probe").failure();
            clock.advance(secs(60));
            breaker.try_acquire().expect("probe").success();
            breaker.try_acquire().expect("probe").success();
            breaker.force_open();
            breaker.reset();
            let snapshot = breaker.snapshot();
            breaker.restore(&snapshot);
            assert_eq!(
                taken(&events),
                vec![
                    (Closed, Open, TransitionCause::FailureThreshold),
                    (Open, HalfOpen, TransitionCause::OpenTimeoutElapsed),
                    (HalfOpen, Open, TransitionCause::ProbeFailed),
                    (Open, HalfOpen, TransitionCause::OpenTimeoutElapsed),
                    (HalfOpen, Closed, TransitionCause::ProbesSucceeded),
                    (Closed, Open, TransitionCause::ForcedOpen),
                    (Open, Closed, TransitionCause::Reset),
                    (Closed, Closed, TransitionCause::Restored),
                ]
            );
        }

        #[test]
        fn failure_rate_policy_trips_at_the_rate_once_enough_calls() {
            let config = CircuitBreakerConfig {
                failure_threshold: 1_000,
                failure_rate: Some(FailureRatePolicy {
                    threshold: 0.5,
                    minimum_calls: 10,
                }),
                ..Default::default()
            };
            let (breaker, _clock) = breaker_with(config.clone());
            let events = recorder(&breaker);
            fail(&breaker, 5);
            assert_eq!(breaker.state(), Closed, "5 calls are below the minimum");
            for _ in 0..4 {
                breaker.try_acquire().expect("closed").success();
            }
            assert_eq!(breaker.state(), Closed, "9 calls");
            breaker.try_acquire().expect("closed").success();
            assert_eq!(breaker.state(), Closed, "a success never trips: 5/10");
            fail(&breaker, 1);
            assert_eq!(breaker.state(), Open, "6/11 ≥ 50%");
            assert_eq!(
                taken(&events),
                vec![(Closed, Open, TransitionCause::FailureRate)]
            );

            let (breaker, _clock) = breaker_with(config);
            for _ in 0..30 {
                breaker.try_acquire().expect("closed").success();
            }
            fail(&breaker, 29);
            assert_eq!(breaker.state(), Closed, "29/59 < 50%");
            fail(&breaker, 1);
            assert_eq!(breaker.state(), Open, "30/60");
        }

        #[test]
        fn snapshot_of_a_closed_breaker_has_no_opened_at() {
            let (breaker, _clock) = breaker();
            let snapshot = breaker.snapshot();
            assert_eq!(
                snapshot,
                CircuitBreakerSnapshot {
                    state: Closed,
                    forced: false,
                    opened_at: None,
                    consecutive_trips: 0,
                    open_duration_ms: None,
                }
            );
        }

        #[test]
        fn restore_keeps_a_jittered_open_duration() {
            let config = CircuitBreakerConfig {
                backoff_jitter: 1.0,
                ..Default::default()
            };
            for _ in 0..20 {
                let (breaker, clock) = breaker_with(config.clone());
                trip(&breaker);
                clock.advance(secs(10));
                let remaining = breaker.open_remaining().expect("open");
                let snapshot = breaker.snapshot();
                let restarted = CircuitBreaker::with_clock(config.clone(), clock.clone());
                restarted.restore(&snapshot);
                assert_eq!(restarted.open_remaining(), Some(remaining));
            }
        }

        #[test]
        fn a_forced_half_open_snapshot_restores_unforced() {
            let (breaker, _clock) = breaker();
            breaker.restore(&CircuitBreakerSnapshot {
                state: HalfOpen,
                forced: true,
                opened_at: None,
                consecutive_trips: 1,
                open_duration_ms: None,
            });
            assert_eq!((breaker.state(), breaker.is_forced()), (HalfOpen, false));
            breaker.try_acquire().expect("probe").success();
            breaker.try_acquire().expect("probe").success();
            assert_eq!(breaker.state(), Closed);
        }

        #[test]
        fn restore_after_the_open_duration_probes_at_once() {
            let (breaker, clock) = breaker();
            trip(&breaker);
            let snapshot = breaker.snapshot();
            clock.advance(secs(600));
            let restarted =
                CircuitBreaker::with_clock(CircuitBreakerConfig::default(), clock.clone());
            restarted.restore(&snapshot);
            assert_eq!(restarted.state(), Open);
            assert_eq!(restarted.open_remaining(), Some(Duration::ZERO));
            assert!(restarted.try_acquire().expect("probe").is_probe());
        }

        #[test]
        fn circuit_state_numbers() {
            for state in [Closed, Open, HalfOpen] {
                assert_eq!(CircuitState::try_from(state.as_u8()), Ok(state));
            }
            assert_eq!((Closed.as_u8(), Open.as_u8(), HalfOpen.as_u8()), (0, 1, 2));
            let error = CircuitState::try_from(3).expect_err("3 is no state");
            assert!(error.to_string().contains('3'));
            assert_eq!(
                serde_json::to_string(&HalfOpen).expect("json"),
                "\"half_open\""
            );
        }

        #[test]
        fn invalid_config_names_the_field() {
            let cases: Vec<(CircuitBreakerConfig, &str)> = vec![
                (
                    CircuitBreakerConfig {
                        failure_threshold: 0,
                        ..Default::default()
                    },
                    "failure_threshold",
                ),
                (
                    CircuitBreakerConfig {
                        success_threshold: 0,
                        ..Default::default()
                    },
                    "success_threshold",
                ),
                (
                    CircuitBreakerConfig {
                        success_threshold: 5_000,
                        ..Default::default()
                    },
                    "success_threshold",
                ),
                (
                    CircuitBreakerConfig {
                        timeout_secs: 0,
                        ..Default::default()
                    },
                    "timeout_secs",
                ),
                (
                    CircuitBreakerConfig {
                        window_secs: 0,
                        ..Default::default()
                    },
                    "window_secs",
                ),
                (
                    CircuitBreakerConfig {
                        half_open_max_probes: 0,
                        ..Default::default()
                    },
                    "half_open_max_probes",
                ),
                (
                    CircuitBreakerConfig {
                        probe_deadline_secs: 0,
                        ..Default::default()
                    },
                    "probe_deadline_secs",
                ),
                (
                    CircuitBreakerConfig {
                        backoff_multiplier: 0.5,
                        ..Default::default()
                    },
                    "backoff_multiplier",
                ),
                (
                    CircuitBreakerConfig {
                        backoff_multiplier: f64::NAN,
                        ..Default::default()
                    },
                    "backoff_multiplier",
                ),
                (
                    CircuitBreakerConfig {
                        backoff_jitter: 1.5,
                        ..Default::default()
                    },
                    "backoff_jitter",
                ),
                (
                    CircuitBreakerConfig {
                        failure_rate: Some(FailureRatePolicy {
                            threshold: 0.0,
                            minimum_calls: 1,
                        }),
                        ..Default::default()
                    },
                    "failure_rate.threshold",
                ),
                (
                    CircuitBreakerConfig {
                        failure_rate: Some(FailureRatePolicy {
                            threshold: 0.5,
                            minimum_calls: 0,
                        }),
                        ..Default::default()
                    },
                    "failure_rate.minimum_calls",
                ),
            ];
            for (config, field) in cases {
                let error: CircuitBreakerConfigError =
                    CircuitBreaker::try_new(config).expect_err(field);
                assert_eq!(error.field(), field);
                assert!(error.to_string().starts_with(field), "{error}");
            }
            assert!(CircuitBreakerConfig::default().validate().is_ok());
        }

        #[test]
        #[should_panic(expected = "failure_threshold must be at least 1")]
        fn new_panics_on_an_invalid_config() {
            let _ = CircuitBreaker::new(CircuitBreakerConfig {
                failure_threshold: 0,
                ..Default::default()
            });
        }

        #[test]
        fn config_reads_from_toml_shaped_data_and_refuses_unknown_keys() {
            let config: CircuitBreakerConfig = serde_json::from_str(
                r#"{"timeout_secs": 5, "failure_rate": {"threshold": 0.5, "minimum_calls": 20}}"#,
            )
            .expect("partial config");
            assert_eq!(config.timeout_secs, 5);
            assert_eq!(config.failure_threshold, 5, "the rest defaults");
            let error = serde_json::from_str::<CircuitBreakerConfig>(r#"{"timeout": 5}"#)
                .expect_err("typo");
            assert!(error.to_string().contains("timeout"), "{error}");
        }

        #[test]
        fn manual_clock_clones_share_one_time() {
            use governance::Clock;
            let clock = ManualClock::new();
            let other = clock.clone();
            other.advance(secs(5));
            assert_eq!(clock.now(), secs(5));
            assert_eq!(clock.wall_now(), other.wall_now());
        }

        #[test]
        fn a_breaker_is_shared_across_threads() {
            fn assert_send_sync<T: Send + Sync + 'static>() {}
            assert_send_sync::<CircuitBreaker>();
            fn assert_error<T: std::error::Error + Send + Sync + Copy + 'static>() {}
            assert_error::<governance::Rejected>();
            let breaker = Arc::new(CircuitBreaker::new(CircuitBreakerConfig::default()));
            let other = Arc::clone(&breaker);
            thread::spawn(move || other.force_open())
                .join()
                .expect("thread");
            assert_eq!(breaker.state(), Open);
            assert_eq!(
                breaker.try_acquire().expect_err("forced").to_string(),
                "circuit breaker is forced open by an operator"
            );
        }
    }

    /// One test per defect found in the systems this replaces (brief §3, "Pitfalls").
    mod pitfalls {
        use super::*;

        /// The old breaker declared a 5-minute window and never read it.
        #[test]
        fn window_declared_but_never_read() {
            let (breaker, clock) = breaker();
            for _ in 0..100 {
                fail(&breaker, 1);
                clock.advance(secs(100)); // one failure per 100 s: 3 per window at most
            }
            assert_eq!(breaker.state(), Closed);
            assert!(breaker.failure_count() <= 4);
        }

        #[test]
        fn unlimited_half_open_probes() {
            let (breaker, clock) = breaker();
            trip(&breaker);
            clock.advance(secs(60));
            let admitted = (0..100).filter(|_| breaker.allow_request()).count();
            assert_eq!(admitted, 2);
        }

        /// With a plain store, two callers racing the open → half-open edge both
        /// "transition" (and both report it). With the CAS exactly one does.
        #[test]
        fn transitions_by_plain_store() {
            const THREADS: usize = 8;
            for round in 0..300 {
                let config = CircuitBreakerConfig {
                    half_open_max_probes: 1,
                    ..Default::default()
                };
                let (breaker, clock) = breaker_with(config);
                trip(&breaker);
                let events = recorder(&breaker);
                clock.advance(secs(60));
                let barrier = Barrier::new(THREADS);
                let admitted: usize = thread::scope(|s| {
                    let handles: Vec<_> = (0..THREADS)
                        .map(|_| {
                            s.spawn(|| {
                                barrier.wait();
                                breaker.try_acquire().map(hold).is_ok() as usize
                            })
                        })
                        .collect();
                    handles.into_iter().map(|h| h.join().expect("thread")).sum()
                });
                assert_eq!(admitted, 1, "round {round}");
                assert_eq!(
                    taken(&events).len(),
                    1,
                    "round {round}: one transition reported"
                );
            }
        }

        #[test]
        fn stale_results_from_an_earlier_generation() {
            let (breaker, clock) = breaker();
            let slow = breaker.try_acquire().expect("admitted while closed");
            trip(&breaker);
            clock.advance(secs(60));
            let probe = breaker.try_acquire().expect("probe");
            probe.success();
            slow.success(); // would be the second success that closes it
            assert_eq!(
                breaker.state(),
                HalfOpen,
                "the slow closed-era success must not close it"
            );
        }

        #[test]
        fn lost_probe_wedges_half_open_forever() {
            let (breaker, clock) = breaker();
            trip(&breaker);
            clock.advance(secs(60));
            // Two probes admitted through the seed API and never settled.
            assert!(breaker.allow_request());
            assert!(breaker.allow_request());
            assert!(!breaker.allow_request());
            clock.advance(secs(30));
            let probe = breaker
                .try_acquire()
                .expect("not wedged after the probe deadline");
            probe.success();
            breaker
                .try_acquire()
                .expect("the other lost slot too")
                .success();
            assert_eq!(breaker.state(), Closed);
        }

        /// A listener that calls back into the breaker would deadlock if the breaker held
        /// a lock while reporting.
        #[test]
        fn callbacks_invoked_under_a_lock() {
            let (breaker, _clock) = breaker();
            let breaker = Arc::new(breaker);
            let weak = Arc::downgrade(&breaker);
            let seen = Arc::new(Mutex::new(Vec::new()));
            let sink = Arc::clone(&seen);
            breaker
                .set_listener(move |t| {
                    let breaker = weak.upgrade().expect("alive");
                    // Re-enter: read state, take a snapshot, and even transition again.
                    sink.lock().expect("sink").push((
                        t.to,
                        breaker.state(),
                        breaker.snapshot().state,
                    ));
                    if t.to == Open && !t.forced {
                        breaker.force_open();
                    }
                })
                .expect("listener");
            trip(&breaker);
            assert_eq!(
                *seen.lock().expect("seen"),
                vec![(Open, Open, Open), (Open, Open, Open)]
            );
            assert!(breaker.is_forced());
        }

        #[test]
        fn success_erases_the_failure_count() {
            let (breaker, _clock) = breaker();
            for _ in 0..4 {
                fail(&breaker, 1);
                breaker.try_acquire().expect("closed").success();
                breaker.record_success();
            }
            assert_eq!(
                breaker.failure_count(),
                4,
                "successes do not erase failures"
            );
            fail(&breaker, 1);
            assert_eq!(breaker.state(), Open);
        }
    }
}
