//! Property test: random operation sequences on the breaker and on a small sequential
//! reference model agree on state, counts and admissions after every step.
//!
//! The model is written from brief §3, not from the implementation: plain fields, a list
//! of failure times, a vector of probe slots, and a generation counter.
#![cfg(not(loom))]

mod circuit_breaker {
    mod model {
        use std::time::Duration;

        use governance::{
            CircuitBreaker, CircuitBreakerConfig, CircuitState, ManualClock, Outcome, Permit,
            RejectReason,
        };
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Acquire,
            Settle(usize, Outcome),
            Advance(u64),
            ForceOpen,
            ForceClose,
            Reset,
            SnapshotRestore,
        }

        fn op() -> impl Strategy<Value = Op> {
            let outcome = prop_oneof![
                Just(Outcome::Success),
                Just(Outcome::Failure),
                Just(Outcome::Ignored)
            ];
            prop_oneof![
                5 => Just(Op::Acquire),
                5 => (any::<usize>(), outcome).prop_map(|(i, o)| Op::Settle(i, o)),
                3 => (0u64..4_000).prop_map(Op::Advance),
                1 => Just(Op::ForceOpen),
                1 => Just(Op::ForceClose),
                1 => Just(Op::Reset),
                1 => Just(Op::SnapshotRestore),
            ]
        }

        fn config() -> impl Strategy<Value = CircuitBreakerConfig> {
            (
                1u64..6,
                1u64..4,
                1u64..4,
                1u64..6,
                1u64..20,
                1u64..6,
                prop::bool::ANY,
            )
                .prop_map(
                    |(failures, successes, probes, timeout, window, deadline, backoff)| {
                        CircuitBreakerConfig {
                            failure_threshold: failures,
                            success_threshold: successes,
                            half_open_max_probes: probes,
                            timeout_secs: timeout,
                            window_secs: window,
                            probe_deadline_secs: deadline,
                            backoff_multiplier: if backoff { 2.0 } else { 1.0 },
                            backoff_max_secs: 20,
                            ..Default::default()
                        }
                    },
                )
        }

        /// What a permit was, as the model sees it.
        #[derive(Debug, Clone, Copy, PartialEq)]
        enum Kind {
            Closed,
            Probe { id: u64 },
        }

        #[derive(Debug, Clone, Copy, PartialEq)]
        struct Held {
            generation: u64,
            kind: Kind,
        }

        #[derive(Debug)]
        struct Model {
            config: CircuitBreakerConfig,
            now_ms: u64,
            state: CircuitState,
            forced: bool,
            generation: u64,
            trips: u64,
            /// Times (ms) of failures recorded in the current generation.
            failures: Vec<u64>,
            successes: u64,
            in_flight: u64,
            /// Per slot: the probe holding it and when it was admitted.
            slots: Vec<Option<(u64, u64)>>,
            open_until_ms: u64,
            opened_ms: u64,
            next_probe: u64,
        }

        impl Model {
            fn new(config: CircuitBreakerConfig) -> Model {
                Model {
                    slots: vec![None; config.half_open_max_probes as usize],
                    config,
                    now_ms: 0,
                    state: CircuitState::Closed,
                    forced: false,
                    generation: 0,
                    trips: 0,
                    failures: vec![],
                    successes: 0,
                    in_flight: 0,
                    open_until_ms: 0,
                    opened_ms: 0,
                    next_probe: 0,
                }
            }

            fn slot_ms(&self) -> u64 {
                self.config.window_secs * 100
            }

            /// Failures whose slot is the current one or one of the ten before.
            fn failure_count(&self) -> u64 {
                if self.state != CircuitState::Closed {
                    return 0;
                }
                let current = self.now_ms / self.slot_ms();
                self.failures
                    .iter()
                    .filter(|&&t| t / self.slot_ms() + 10 >= current)
                    .count() as u64
            }

            fn open_ms(&self, trips: u64) -> u64 {
                let timeout = self.config.timeout_secs * 1_000;
                let cap = (self.config.backoff_max_secs * 1_000).max(timeout);
                let mut ms = timeout as f64;
                for _ in 1..trips {
                    ms *= self.config.backoff_multiplier;
                }
                (ms.min(cap as f64) as u64).max(timeout)
            }

            fn transition(&mut self, state: CircuitState, forced: bool, trips: u64) {
                self.state = state;
                self.forced = forced;
                self.trips = trips.min(63);
                self.generation += 1;
                self.failures.clear();
                self.successes = 0;
                self.in_flight = 0;
                self.slots.iter_mut().for_each(|s| *s = None);
                if state == CircuitState::Open {
                    self.opened_ms = self.now_ms;
                    self.open_until_ms = if forced {
                        self.now_ms
                    } else {
                        self.now_ms + self.open_ms(self.trips)
                    };
                }
            }

            fn take_slot(&mut self, index: usize) -> Held {
                let id = self.next_probe;
                self.next_probe += 1;
                self.slots[index] = Some((id, self.now_ms));
                Held {
                    generation: self.generation,
                    kind: Kind::Probe { id },
                }
            }

            fn acquire(&mut self) -> Result<Held, RejectReason> {
                match self.state {
                    CircuitState::Closed => Ok(Held {
                        generation: self.generation,
                        kind: Kind::Closed,
                    }),
                    CircuitState::Open if self.forced => Err(RejectReason::ForcedOpen),
                    CircuitState::Open if self.now_ms < self.open_until_ms => {
                        Err(RejectReason::Open)
                    }
                    CircuitState::Open => {
                        self.transition(CircuitState::HalfOpen, false, self.trips);
                        self.in_flight = 1;
                        Ok(self.take_slot(0))
                    }
                    CircuitState::HalfOpen if self.in_flight < self.config.half_open_max_probes => {
                        self.in_flight += 1;
                        let free = self
                            .slots
                            .iter()
                            .position(Option::is_none)
                            .expect("a free slot");
                        Ok(self.take_slot(free))
                    }
                    CircuitState::HalfOpen => {
                        let deadline = self.config.probe_deadline_secs * 1_000;
                        let now = self.now_ms;
                        match self
                            .slots
                            .iter()
                            .position(|s| matches!(s, Some((_, at)) if at + deadline <= now))
                        {
                            Some(expired) => Ok(self.take_slot(expired)),
                            None => Err(RejectReason::HalfOpenFull),
                        }
                    }
                }
            }

            fn settle(&mut self, held: Held, outcome: Outcome) {
                match held.kind {
                    Kind::Closed => {
                        let current = held.generation == self.generation
                            && self.state == CircuitState::Closed;
                        if outcome == Outcome::Failure && current {
                            self.failures.push(self.now_ms);
                            if !self.forced && self.failure_count() >= self.config.failure_threshold
                            {
                                self.transition(CircuitState::Open, false, self.trips + 1);
                            }
                        }
                    }
                    Kind::Probe { id } => {
                        let Some(index) = self
                            .slots
                            .iter()
                            .position(|s| matches!(s, Some((p, _)) if *p == id))
                        else {
                            return; // taken over, or the cycle ended
                        };
                        self.slots[index] = None;
                        self.in_flight -= 1;
                        match outcome {
                            Outcome::Success
                                if self.successes + 1 >= self.config.success_threshold =>
                            {
                                self.transition(CircuitState::Closed, false, 0)
                            }
                            Outcome::Success => self.successes += 1,
                            Outcome::Failure => {
                                self.transition(CircuitState::Open, false, self.trips + 1)
                            }
                            Outcome::Ignored => {}
                        }
                    }
                }
            }

            fn restore_same_moment(&mut self) {
                let (state, forced, trips, opened, until) = (
                    self.state,
                    self.forced,
                    self.trips,
                    self.opened_ms,
                    self.open_until_ms,
                );
                self.transition(state, forced, trips);
                if state == CircuitState::Open {
                    // Restored at the moment of the snapshot: the open period goes on.
                    self.opened_ms = opened;
                    self.open_until_ms = if forced {
                        self.now_ms
                    } else {
                        until.max(self.now_ms)
                    };
                }
            }
        }

        fn check(
            breaker: &CircuitBreaker,
            model: &Model,
            step: usize,
            op: &Op,
        ) -> Result<(), TestCaseError> {
            let context = format!("after step {step} ({op:?}); model: {model:?}");
            prop_assert_eq!(breaker.state(), model.state, "state {}", context);
            prop_assert_eq!(breaker.is_forced(), model.forced, "forced {}", context);
            prop_assert_eq!(
                breaker.generation(),
                model.generation,
                "generation {}",
                context
            );
            prop_assert_eq!(
                breaker.failure_count(),
                model.failure_count(),
                "failures {}",
                context
            );
            prop_assert_eq!(
                breaker.success_count(),
                model.successes,
                "successes {}",
                context
            );
            prop_assert_eq!(
                breaker.probes_in_flight(),
                model.in_flight,
                "in flight {}",
                context
            );
            prop_assert_eq!(
                breaker.consecutive_trips(),
                model.trips,
                "trips {}",
                context
            );
            let remaining = (model.state == CircuitState::Open && !model.forced)
                .then(|| Duration::from_millis(model.open_until_ms.saturating_sub(model.now_ms)));
            prop_assert_eq!(
                breaker.open_remaining(),
                remaining,
                "open remaining {}",
                context
            );
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            #[test]
            fn breaker_agrees_with_the_reference_model(config in config(), ops in prop::collection::vec(op(), 1..200)) {
                let clock = ManualClock::new();
                let breaker = CircuitBreaker::with_clock(config.clone(), clock.clone());
                let mut model = Model::new(config);
                let mut permits: Vec<(Permit<'_>, Held)> = vec![];
                for (step, op) in ops.iter().enumerate() {
                    match op {
                        Op::Acquire => {
                            let real = breaker.try_acquire();
                            let expected = model.acquire();
                            match (real, expected) {
                                (Ok(permit), Ok(held)) => {
                                    prop_assert_eq!(permit.is_probe(), matches!(held.kind, Kind::Probe { .. }), "step {}", step);
                                    permits.push((permit, held));
                                }
                                (Err(rejected), Err(reason)) => prop_assert_eq!(rejected.reason(), reason, "step {}", step),
                                (real, expected) => prop_assert!(false, "step {}: breaker {:?}, model {:?}", step, real.map(|p| p.is_probe()), expected),
                            }
                        }
                        Op::Settle(index, outcome) => {
                            if !permits.is_empty() {
                                let (permit, held) = permits.swap_remove(index % permits.len());
                                permit.record(*outcome);
                                model.settle(held, *outcome);
                            }
                        }
                        Op::Advance(ms) => {
                            clock.advance(Duration::from_millis(*ms));
                            model.now_ms += ms;
                        }
                        Op::ForceOpen => {
                            breaker.force_open();
                            model.transition(CircuitState::Open, true, model.trips);
                        }
                        Op::ForceClose => {
                            breaker.force_close();
                            model.transition(CircuitState::Closed, true, 0);
                        }
                        Op::Reset => {
                            breaker.reset();
                            model.transition(CircuitState::Closed, false, 0);
                        }
                        Op::SnapshotRestore => {
                            let snapshot = breaker.snapshot();
                            breaker.restore(&snapshot);
                            model.restore_same_moment();
                        }
                    }
                    check(&breaker, &model, step, op)?;
                }
                for (permit, held) in permits {
                    permit.ignore();
                    model.settle(held, Outcome::Ignored);
                }
                check(&breaker, &model, ops.len(), &Op::Acquire)?;
            }
        }
    }
}
