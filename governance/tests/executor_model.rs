//! Property test: random queues, ledger faults, outages (of submissions, and of every
//! other call), clock moves and crashes at random step boundaries; once the ledger is healthy again and the executor drains,
//! every disbursement is Executed or Cancelled, the ledger paid each executed one exactly
//! once with its amount and nothing else, and its nonces have no gap and no repeat.
#![cfg(not(loom))]

mod executor {
    mod model {
        use std::collections::HashMap;
        use std::sync::Arc;
        use std::time::Duration;

        use governance::testing::{Fault, ScriptedLedger};
        use governance::{
            CircuitBreaker, CircuitBreakerConfig, CrashPoint, DisbursementId, DisbursementStatus,
            GovStore, LedgerError, ManualClock, NewDisbursement, TreasuryExecutor,
            TreasuryExecutorConfig, TreasuryExecutorError,
        };
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            /// Queue a disbursement; `invalid` destinations are refused by the ledger;
            /// `dep` makes it depend on the disbursement queued that many before.
            Queue {
                amount: u8,
                invalid: bool,
                dep: Option<u8>,
            },
            Tick,
            Fault(Fault),
            Down,
            Up,
            /// Every call but `submit` fails (the endpoint is down for reads too).
            ReadsDown,
            ReadsUp,
            Advance(u16),
            Crash(CrashPoint),
        }

        fn fault() -> impl Strategy<Value = Fault> {
            let error = prop_oneof![
                Just(LedgerError::Timeout),
                Just(LedgerError::Http(503)),
                Just(LedgerError::Unreachable("refused".into())),
                Just(LedgerError::InsufficientBalance),
                Just(LedgerError::Rejected("rules".into())),
                Just(LedgerError::AlreadyKnown),
                Just(LedgerError::NonceTooLow),
            ];
            prop_oneof![
                error.clone().prop_map(Fault::Fail),
                error.prop_map(Fault::AcceptThenFail),
            ]
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (1u8..50, prop::bool::weighted(0.1), prop::option::weighted(0.2, 1u8..4))
                    .prop_map(|(amount, invalid, dep)| Op::Queue { amount, invalid, dep }),
                4 => Just(Op::Tick),
                2 => fault().prop_map(Op::Fault),
                1 => Just(Op::Down),
                1 => Just(Op::Up),
                1 => Just(Op::ReadsDown),
                1 => Just(Op::ReadsUp),
                1 => (0u16..120).prop_map(Op::Advance),
                1 => prop_oneof![
                    Just(CrashPoint::AfterStage),
                    Just(CrashPoint::AfterSubmit),
                    Just(CrashPoint::AfterRecord)
                ]
                .prop_map(Op::Crash),
            ]
        }

        struct World {
            dir: tempfile::TempDir,
            clock: ManualClock,
            ledger: Arc<ScriptedLedger>,
            executor: TreasuryExecutor,
        }

        fn open(dir: tempfile::TempDir, clock: ManualClock, ledger: Arc<ScriptedLedger>) -> World {
            let store = GovStore::open(dir.path().join("db")).expect("store");
            let config = CircuitBreakerConfig {
                timeout_secs: 10,
                ..Default::default()
            };
            let breaker = Arc::new(CircuitBreaker::with_clock(config, clock.clone()));
            let mut executor_config = TreasuryExecutorConfig::new("model", breaker);
            executor_config.batch_size = 4;
            let executor = TreasuryExecutor::new(executor_config, store, Arc::clone(&ledger) as _)
                .expect("executor");
            World {
                dir,
                clock,
                ledger,
                executor,
            }
        }

        fn run(ops: &[Op]) -> Result<(), TestCaseError> {
            let dir = tempfile::tempdir().expect("tempdir");
            let ledger = Arc::new(ScriptedLedger::default());
            let mut world = open(dir, ManualClock::new(), ledger);
            let mut queued: Vec<(DisbursementId, u128)> = vec![];
            for op in ops {
                match op {
                    Op::Queue {
                        amount,
                        invalid,
                        dep,
                    } => {
                        let depends_on = dep
                            .and_then(|back| queued.len().checked_sub(usize::from(back)))
                            .map(|i| vec![queued[i].0])
                            .unwrap_or_default();
                        let request = NewDisbursement {
                            destination: if *invalid {
                                "invalid".into()
                            } else {
                                format!("d{}", queued.len())
                            },
                            amount: u128::from(*amount),
                            memo: String::new(),
                            activation_epoch: 0,
                            depends_on,
                            external_key: None,
                        };
                        // A dependency may be cancelled already: then the queue refuses it.
                        if let Ok(q) = world.executor.store().queue(&request, 0) {
                            world.executor.store().flush().expect("flush");
                            queued.push((q.disbursement.id, request.amount));
                        }
                    }
                    Op::Tick => match world.executor.tick() {
                        Ok(_) => {}
                        Err(TreasuryExecutorError::Submission(_)) => {}
                        Err(other) => prop_assert!(false, "tick failed: {other}"),
                    },
                    Op::Fault(fault) => world.ledger.push_faults([fault.clone()]),
                    Op::Down => world.ledger.down(LedgerError::Timeout),
                    Op::Up => world.ledger.up(),
                    Op::ReadsDown => world.ledger.reads_down(Some(LedgerError::Timeout)),
                    Op::ReadsUp => world.ledger.reads_down(None),
                    Op::Advance(secs) => world.clock.advance(Duration::from_secs(u64::from(*secs))),
                    Op::Crash(point) => {
                        world.executor.crash_at(Some(*point));
                        match world.executor.tick() {
                            Ok(_)
                            | Err(TreasuryExecutorError::Crashed(_))
                            | Err(TreasuryExecutorError::Submission(_)) => {}
                            Err(other) => prop_assert!(false, "tick failed: {other}"),
                        }
                        let World {
                            dir,
                            clock,
                            ledger,
                            executor,
                        } = world;
                        drop(executor);
                        world = open(dir, clock, ledger);
                    }
                }
            }

            // Heal and drain.
            world.ledger.up();
            world.ledger.reads_down(None);
            world.ledger.clear_faults();
            for _ in 0..200 {
                world.clock.advance(Duration::from_secs(60));
                world
                    .executor
                    .tick()
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let b = world.executor.store().backlog().expect("backlog");
                if b.ready + b.scheduled + b.staged + b.submitted == 0 {
                    break;
                }
            }

            let payments = world.ledger.payments();
            let mut paid: HashMap<DisbursementId, Vec<u128>> = HashMap::new();
            for p in &payments {
                paid.entry(p.id).or_default().push(p.amount);
            }
            let nonces: Vec<u64> = payments.iter().map(|p| p.nonce).collect();
            prop_assert_eq!(
                nonces,
                (0..payments.len() as u64).collect::<Vec<_>>(),
                "gapless, unique nonces"
            );
            for (id, amount) in &queued {
                let status = world
                    .executor
                    .store()
                    .get(*id)
                    .expect("get")
                    .expect("exists")
                    .status;
                match status {
                    DisbursementStatus::Executed { .. } => {
                        prop_assert_eq!(
                            paid.get(id),
                            Some(&vec![*amount]),
                            "{} paid exactly once",
                            id
                        );
                    }
                    DisbursementStatus::Cancelled { .. } => {
                        prop_assert!(!paid.contains_key(id), "cancelled {} was paid", id);
                    }
                    other => prop_assert!(false, "{} left {:?}", id, other),
                }
            }
            prop_assert_eq!(paid.len(), payments.len(), "no id paid twice");
            prop_assert!(
                paid.keys().all(|id| queued.iter().any(|(q, _)| q == id)),
                "nothing unknown paid"
            );
            drop(world.dir);
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

            #[test]
            fn every_disbursement_is_paid_once_or_cancelled(ops in prop::collection::vec(op(), 1..60)) {
                run(&ops)?;
            }
        }
    }
}
