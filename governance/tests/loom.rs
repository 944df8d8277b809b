//! Loom models of the breaker's races: every interleaving of the threads below is run
//! (bounded by `LOOM_MAX_PREEMPTIONS`). Run with `cargo xtask loom`.
//!
//! Time is passed in as a value: the `ManualClock` is set before the threads start and
//! never moves during a model.
#![cfg(loom)]

mod circuit_breaker {
    use std::time::Duration;

    use governance::{CircuitBreaker, CircuitBreakerConfig, CircuitState, ManualClock, Transition};
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::{Arc, Mutex};
    use loom::thread;

    /// A breaker with a listener that records its transitions.
    fn breaker(
        config: CircuitBreakerConfig,
    ) -> (
        Arc<CircuitBreaker>,
        ManualClock,
        Arc<Mutex<Vec<Transition>>>,
    ) {
        let clock = ManualClock::new();
        let breaker = CircuitBreaker::with_clock(config, clock.clone());
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        breaker
            .set_listener(move |t| sink.lock().expect("events").push(*t))
            .expect("listener");
        (Arc::new(breaker), clock, events)
    }

    fn events_to(events: &Mutex<Vec<Transition>>, state: CircuitState) -> usize {
        events
            .lock()
            .expect("events")
            .iter()
            .filter(|t| t.to == state)
            .count()
    }

    /// Two failures race at the threshold: exactly one of them trips the breaker.
    #[test]
    fn racing_failures_at_the_threshold_trip_once() {
        loom::model(|| {
            let config = CircuitBreakerConfig {
                failure_threshold: 2,
                ..Default::default()
            };
            let (breaker, _clock, events) = breaker(config);
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let breaker = Arc::clone(&breaker);
                    thread::spawn(move || breaker.try_acquire().expect("closed").failure())
                })
                .collect();
            threads.into_iter().for_each(|t| t.join().expect("thread"));
            assert_eq!(breaker.state(), CircuitState::Open);
            assert_eq!(events_to(&events, CircuitState::Open), 1);
            assert_eq!(events.lock().expect("events").len(), 1);
        });
    }

    /// Two callers race at open → half-open with one probe slot: one transition, one probe.
    #[test]
    fn racing_callers_at_open_to_half_open() {
        loom::model(|| {
            let config = CircuitBreakerConfig {
                failure_threshold: 1,
                half_open_max_probes: 1,
                ..Default::default()
            };
            let (breaker, clock, events) = breaker(config);
            breaker.try_acquire().expect("closed").failure();
            clock.advance(Duration::from_secs(60));
            let admitted = Arc::new(AtomicUsize::new(0));
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let breaker = Arc::clone(&breaker);
                    let admitted = Arc::clone(&admitted);
                    thread::spawn(move || {
                        if let Ok(permit) = breaker.try_acquire() {
                            admitted.fetch_add(1, Ordering::SeqCst);
                            std::mem::forget(permit); // keep the slot taken
                        }
                    })
                })
                .collect();
            threads.into_iter().for_each(|t| t.join().expect("thread"));
            assert_eq!(
                admitted.load(Ordering::SeqCst),
                1,
                "probes never exceed the cap"
            );
            assert_eq!(
                events_to(&events, CircuitState::HalfOpen),
                1,
                "exactly one caller half-opened it"
            );
            assert_eq!(breaker.state(), CircuitState::HalfOpen);
            assert_eq!(breaker.probes_in_flight(), 1);
        });
    }

    /// A probe success races a probe failure (one success closes, one failure reopens):
    /// exactly one of them decides, and the end state is the one it reported.
    #[test]
    fn probe_success_racing_probe_failure() {
        loom::model(|| {
            let config = CircuitBreakerConfig {
                failure_threshold: 2,
                success_threshold: 1,
                half_open_max_probes: 2,
                ..Default::default()
            };
            let (breaker, clock, events) = breaker(config);
            breaker.try_acquire().expect("closed").failure();
            breaker.try_acquire().expect("closed").failure();
            clock.advance(Duration::from_secs(60));
            breaker.try_acquire().expect("first probe").ignore(); // half-open, no probe in flight
            events.lock().expect("events").clear();
            let generation = breaker.generation();

            let success = {
                let breaker = Arc::clone(&breaker);
                thread::spawn(move || {
                    if let Ok(permit) = breaker.try_acquire() {
                        permit.success();
                    }
                })
            };
            let failure = {
                let breaker = Arc::clone(&breaker);
                thread::spawn(move || {
                    if let Ok(permit) = breaker.try_acquire() {
                        permit.failure();
                    }
                })
            };
            success.join().expect("thread");
            failure.join().expect("thread");

            let events = events.lock().expect("events");
            // If the success closed it before the failing call was admitted, that call
            // was an ordinary closed-state failure: counted, below the threshold.
            assert_eq!(events.len(), 1, "one decision: {events:?}");
            let decided = events[0];
            assert_eq!(decided.from, CircuitState::HalfOpen);
            assert_eq!(decided.generation, generation + 1);
            assert_eq!(breaker.state(), decided.to);
            assert_eq!(breaker.generation(), generation + 1);
            assert_eq!(breaker.probes_in_flight(), 0);
            assert!(matches!(
                decided.to,
                CircuitState::Closed | CircuitState::Open
            ));
        });
    }

    /// Two failures reach the threshold in different window buckets (time moves on to
    /// the next slot between them): the store-buffering pattern. One of them still
    /// trips the breaker, exactly once.
    #[test]
    fn racing_failures_across_a_slot_boundary_trip_once() {
        loom::model(|| {
            let config = CircuitBreakerConfig {
                failure_threshold: 2,
                window_secs: 10, // slots of 1 s
                ..Default::default()
            };
            let (breaker, clock, events) = breaker(config);
            let early = {
                let breaker = Arc::clone(&breaker);
                thread::spawn(move || breaker.try_acquire().expect("closed").failure())
            };
            let late = {
                let breaker = Arc::clone(&breaker);
                thread::spawn(move || {
                    let permit = breaker.try_acquire().expect("closed");
                    clock.advance(Duration::from_secs(1));
                    permit.failure();
                })
            };
            early.join().expect("thread");
            late.join().expect("thread");
            assert_eq!(
                breaker.state(),
                CircuitState::Open,
                "the second failure must trip it"
            );
            assert_eq!(events.lock().expect("events").len(), 1);
        });
    }

    /// A probe settles late, past its deadline, while a new caller takes its slot over:
    /// either the late result lands first (and the slot is free for the newcomer) or the
    /// take-over does (and the late result frees nothing and counts for nothing).
    #[test]
    fn late_settle_racing_a_take_over() {
        loom::model(|| {
            let config = CircuitBreakerConfig {
                failure_threshold: 1,
                half_open_max_probes: 1,
                success_threshold: 2,
                ..Default::default()
            };
            let (breaker, clock, _events) = breaker(config);
            breaker.try_acquire().expect("closed").failure();
            clock.advance(Duration::from_secs(60));

            let late = {
                let breaker = Arc::clone(&breaker);
                thread::spawn(move || {
                    if let Ok(permit) = breaker.try_acquire() {
                        clock.advance(Duration::from_secs(30)); // it is presumed lost now
                        permit.success();
                    }
                })
            };
            let newcomer = {
                let breaker = Arc::clone(&breaker);
                thread::spawn(move || match breaker.try_acquire() {
                    Ok(permit) => {
                        std::mem::forget(permit); // keep the slot
                        true
                    }
                    Err(_) => false,
                })
            };
            late.join().expect("thread");
            let admitted = newcomer.join().expect("thread");
            assert_eq!(breaker.state(), CircuitState::HalfOpen);
            assert_eq!(
                breaker.probes_in_flight(),
                u64::from(admitted),
                "exactly the probes still held are counted"
            );
            assert!(breaker.success_count() <= 1);
        });
    }

    /// A trip's transitioner publishes its deadline late, after an operator reset the
    /// breaker and another trip published its own: the later deadline stands.
    #[test]
    fn a_late_deadline_never_overwrites_a_later_trip() {
        loom::model(|| {
            let config = CircuitBreakerConfig {
                failure_threshold: 1,
                ..Default::default()
            };
            let (breaker, clock, _events) = breaker(config);
            let tripper = {
                let breaker = Arc::clone(&breaker);
                thread::spawn(move || {
                    // Closed, unless the operator's thread already tripped it.
                    if let Ok(permit) = breaker.try_acquire() {
                        permit.failure();
                    }
                })
            };
            let operator = {
                let breaker = Arc::clone(&breaker);
                thread::spawn(move || {
                    breaker.reset();
                    if let Ok(permit) = breaker.try_acquire() {
                        permit.failure();
                    }
                })
            };
            tripper.join().expect("thread");
            operator.join().expect("thread");
            if breaker.state() == CircuitState::Open {
                assert_eq!(
                    breaker.open_remaining(),
                    Some(Duration::from_secs(60)),
                    "the open period in force has its own deadline"
                );
                clock.advance(Duration::from_secs(60));
                assert!(breaker.try_acquire().is_ok(), "and it half-opens on time");
            }
        });
    }
}
