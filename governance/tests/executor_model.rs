//! Property test: random queues, cancellations, ledger faults and outages, crashes at
//! random step boundaries, and the faults of a real chain (manual mining, mempool
//! evictions, reorgs shallower than the confirmations, base-fee spikes, lookups that lag
//! or see nothing, another sender on the key, a low balance), over the scripted ledger's
//! mempool-and-chain model.
//!
//! After every step: no disbursement was ever taken by the ledger at two nonces; every
//! Executed disbursement has exactly one payment in the chain, every other none (a
//! Cancelled or Queued one) or at most one (one in flight); no destination received
//! anything but its disbursement's amount. Once the faults stop, everything drains
//! (an operator answering the executor's holds from the chain's truth) to Executed or
//! Cancelled, each Executed one paid exactly once.
#![cfg(not(loom))]

mod common;

mod executor {
    mod model {
        use std::collections::HashMap;
        use std::sync::Arc;
        use std::time::Duration;

        use governance::testing::{Fault, ScriptedLedger};
        use governance::{
            Action, CircuitBreaker, CircuitBreakerConfig, CrashPoint, DisbursementId,
            DisbursementStatus, Finality, Hold, LedgerError, ManualClock, NewDisbursement,
            Resolution, TreasuryExecutor, TreasuryExecutorConfig, TreasuryExecutorError,
        };
        use proptest::prelude::*;

        use crate::common::{decide, open_store, request};

        /// Blocks a payment needs on top of it; reorgs are shallower.
        const CONFIRMATIONS: u64 = 3;

        #[derive(Debug, Clone)]
        enum Op {
            /// Queue a disbursement; `invalid` destinations are refused by the ledger;
            /// `dep` makes it depend on the disbursement queued that many before.
            Queue {
                amount: u8,
                invalid: bool,
                dep: Option<u8>,
            },
            /// An operator cancels the disbursement queued that many before.
            Cancel(u8),
            Tick,
            Fault(Fault),
            Down,
            Up,
            /// Every call but `submit` fails (the endpoint is down for reads too).
            ReadsDown,
            ReadsUp,
            Advance(u16),
            Crash(CrashPoint),
            AutoMine(bool),
            Mine(u8),
            DropPool,
            Reorg {
                depth: u8,
                lose: bool,
            },
            BaseFee(Option<u8>),
            StaleLookups(bool),
            LookupLag(u8),
            Stranger,
            LowBalance(bool),
        }

        fn fault() -> impl Strategy<Value = Fault> {
            let refusal = prop_oneof![
                Just(LedgerError::Timeout),
                Just(LedgerError::Http(503)),
                Just(LedgerError::Unreachable("refused".into())),
                Just(LedgerError::InsufficientBalance),
                Just(LedgerError::Rejected("rules".into())),
                Just(LedgerError::Underpriced("underpriced".into())),
                Just(LedgerError::AlreadyKnown),
                Just(LedgerError::NonceTooLow),
            ];
            // A lost answer: what comes back when the ledger took it is a transport
            // failure or "already known", never a refusal of that very hand-over.
            let lost = prop_oneof![
                Just(LedgerError::Timeout),
                Just(LedgerError::Http(502)),
                Just(LedgerError::Unreachable("reset".into())),
                Just(LedgerError::AlreadyKnown),
            ];
            prop_oneof![
                refusal.prop_map(Fault::Fail),
                lost.prop_map(Fault::AcceptThenFail),
            ]
        }

        /// Every kind of step; `chain` weighs mining, reorgs and fee spikes up (and leaves
        /// strangers and ledger faults rarer), so that reorgs meet payments already seen
        /// in a block and spikes meet pending ones.
        fn op(chain: bool) -> impl Strategy<Value = Op> {
            let (faults, blocks) = if chain { (1, 4) } else { (2, 1) };
            prop_oneof![
                4 => (1u8..50, prop::bool::weighted(0.1), prop::option::weighted(0.2, 1u8..4))
                    .prop_map(|(amount, invalid, dep)| Op::Queue { amount, invalid, dep }),
                1 => (1u8..6).prop_map(Op::Cancel),
                5 => Just(Op::Tick),
                faults => fault().prop_map(Op::Fault),
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
                2 => any::<bool>().prop_map(Op::AutoMine),
                3 * blocks => (1u8..4).prop_map(Op::Mine),
                blocks => Just(Op::DropPool),
                2 * blocks => (1u8..CONFIRMATIONS as u8, any::<bool>())
                    .prop_map(|(depth, lose)| Op::Reorg { depth, lose }),
                2 * blocks => prop::option::of(1u8..100).prop_map(Op::BaseFee),
                1 => any::<bool>().prop_map(Op::StaleLookups),
                1 => (0u8..3).prop_map(Op::LookupLag),
                faults => Just(Op::Stranger),
                1 => any::<bool>().prop_map(Op::LowBalance),
            ]
        }

        struct World {
            dir: tempfile::TempDir,
            clock: ManualClock,
            ledger: Arc<ScriptedLedger>,
            executor: TreasuryExecutor,
        }

        fn open(dir: tempfile::TempDir, clock: ManualClock, ledger: Arc<ScriptedLedger>) -> World {
            let store = open_store(&dir.path().join("db"));
            let config = CircuitBreakerConfig {
                timeout_secs: 10,
                ..Default::default()
            };
            let breaker = Arc::new(CircuitBreaker::with_clock(config, clock.clone()));
            let mut executor_config = TreasuryExecutorConfig::new("model");
            executor_config.batch_size = 4;
            executor_config.finality = Finality::Confirmations(CONFIRMATIONS);
            executor_config.bump_after_blocks = 2;
            let executor =
                TreasuryExecutor::new(executor_config, breaker, store, Arc::clone(&ledger) as _)
                    .expect("executor");
            World {
                dir,
                clock,
                ledger,
                executor,
            }
        }

        /// A tick's error that a fault can cause without anything being wrong.
        fn expected(error: &TreasuryExecutorError) -> bool {
            matches!(
                error,
                TreasuryExecutorError::Held(_) | TreasuryExecutorError::Crashed(_)
            )
        }

        /// What the world's operator did: for each disbursement resolved `not_paid`, how
        /// many transactions the ledger had taken by then (it may then be signed at a
        /// fresh nonce: that is what the operator asked).
        type Resolved = HashMap<DisbursementId, usize>;

        /// The invariants that hold after every step.
        fn check(
            world: &World,
            queued: &[(DisbursementId, u128)],
            resolved: &Resolved,
        ) -> Result<(), TestCaseError> {
            let mut nonces: HashMap<DisbursementId, u64> = HashMap::new();
            for (index, taken) in world.ledger.taken().iter().enumerate() {
                if resolved.get(&taken.id).is_some_and(|&from| index < from) {
                    continue;
                }
                let nonce = *nonces.entry(taken.id).or_insert(taken.nonce);
                prop_assert_eq!(
                    nonce,
                    taken.nonce,
                    "disbursement {} taken at two nonces",
                    taken.id
                );
            }
            let mut paid: HashMap<DisbursementId, Vec<u128>> = HashMap::new();
            for payment in world.ledger.payments() {
                paid.entry(payment.id).or_default().push(payment.amount);
            }
            for (id, amount) in queued {
                let payments = paid.remove(id).unwrap_or_default();
                prop_assert!(
                    payments.iter().all(|paid| paid == amount),
                    "{} paid {:?}, not {}",
                    id,
                    payments,
                    amount
                );
                let status = world
                    .executor
                    .store()
                    .get(*id)
                    .expect("get")
                    .expect("exists")
                    .status;
                let allowed = match status {
                    // The model's operator never marks anything paid (see `settle`): every
                    // Executed one was paid by the executor, in the chain.
                    DisbursementStatus::Executed { .. } => 1..=1,
                    DisbursementStatus::Cancelled { .. } | DisbursementStatus::Queued => 0..=0,
                    _ => 0..=1,
                };
                prop_assert!(
                    allowed.contains(&payments.len()),
                    "{} is {:?} with {} payments in the chain",
                    id,
                    world.executor.store().get(*id).expect("get"),
                    payments.len()
                );
            }
            prop_assert!(paid.is_empty(), "unknown disbursements paid: {:?}", paid);
            let store = world.executor.store();
            prop_assert_eq!(
                store.totals().expect("totals"),
                store.count_by_status().expect("count"),
                "the totals the store keeps are the records' counts"
            );
            Ok(())
        }

        fn run(ops: &[Op], whole_batches: bool) -> Result<(), TestCaseError> {
            let dir = tempfile::tempdir().expect("tempdir");
            let ledger = Arc::new(ScriptedLedger::default());
            // A JSON-RPC endpoint answers a batch of hand-overs whole.
            ledger.answer_whole_batches(whole_batches);
            let mut world = open(dir, ManualClock::new(), ledger);
            let mut queued: Vec<(DisbursementId, u128)> = vec![];
            // The highest the chain has been.
            let mut high_water = 0;
            for op in ops {
                high_water = high_water.max(world.ledger.height());
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
                        let destination = if *invalid {
                            "invalid".into()
                        } else {
                            format!("d{}", queued.len())
                        };
                        let new = NewDisbursement {
                            depends_on,
                            ..request(&destination, u128::from(*amount))
                        };
                        // A dependency may be cancelled already: then the queue refuses it.
                        if let Ok(q) = world.executor.store().queue(&new, 0) {
                            world.executor.store().flush().expect("flush");
                            queued.push((q.disbursement.id, new.amount));
                        }
                    }
                    Op::Cancel(back) => {
                        if let Some(i) = queued.len().checked_sub(usize::from(*back)) {
                            let _ = world.executor.store().cancel(queued[i].0, "operator");
                        }
                    }
                    Op::Tick => match world.executor.tick() {
                        Ok(_) => {}
                        Err(error) if expected(&error) => {}
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
                            Ok(_) => {}
                            Err(error) if expected(&error) => {}
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
                    Op::AutoMine(on) => world.ledger.set_auto_mine(*on),
                    Op::Mine(blocks) => {
                        for _ in 0..*blocks {
                            world.ledger.mine();
                        }
                    }
                    Op::DropPool => world.ledger.drop_pool(),
                    Op::Reorg { depth, lose } => {
                        // Never deeper than the confirmations, counting earlier reorgs: a
                        // block that was once `CONFIRMATIONS` deep stays.
                        let height = world.ledger.height();
                        let frontier = (high_water + 1).saturating_sub(CONFIRMATIONS);
                        let depth = u64::from(*depth).min(height.saturating_sub(frontier));
                        world.ledger.reorg(depth, *lose);
                    }
                    Op::BaseFee(fee) => world.ledger.set_base_fee(fee.map(u128::from)),
                    Op::StaleLookups(on) => world.ledger.stale_lookups(*on),
                    Op::LookupLag(blocks) => world.ledger.set_lookup_lag(u64::from(*blocks)),
                    Op::Stranger => world.ledger.consume_nonce(),
                    Op::LowBalance(low) => {
                        world
                            .ledger
                            .set_balance(if *low { 30 } else { u128::MAX / 2 })
                    }
                }
                check(&world, &queued, &Resolved::new())?;
            }
            drain(&mut world, &queued)?;
            drop(world.dir);
            Ok(())
        }

        /// Heals the ledger, then ticks (mining a block each round) until nothing is in
        /// flight, answering holds as an operator who reads the chain would.
        fn drain(
            world: &mut World,
            queued: &[(DisbursementId, u128)],
        ) -> Result<(), TestCaseError> {
            let ledger = &world.ledger;
            ledger.up();
            ledger.reads_down(None);
            ledger.clear_faults();
            ledger.stale_lookups(false);
            ledger.set_lookup_lag(0);
            ledger.set_base_fee(None);
            ledger.set_balance(u128::MAX / 2);
            let mut last = None;
            let mut resolved = Resolved::new();
            for _ in 0..300 {
                world.clock.advance(Duration::from_secs(60));
                world.ledger.mine();
                match world.executor.tick() {
                    Ok(_) => {}
                    Err(TreasuryExecutorError::Held(hold)) => {
                        settle(world, &hold, &mut resolved)?;
                        last = Some(hold);
                    }
                    Err(other) => prop_assert!(false, "tick failed: {other}"),
                }
                check(world, queued, &resolved)?;
                let backlog = world.executor.store().backlog().expect("backlog");
                if backlog.total() == 0 && world.executor.snapshot().halted.is_none() {
                    break;
                }
            }
            for (id, amount) in queued {
                let status = world
                    .executor
                    .store()
                    .get(*id)
                    .expect("get")
                    .expect("exists")
                    .status;
                let paid: Vec<u128> = world
                    .ledger
                    .payments()
                    .iter()
                    .filter(|p| p.id == *id)
                    .map(|p| p.amount)
                    .collect();
                match status {
                    DisbursementStatus::Executed { .. } => {
                        prop_assert_eq!(paid, vec![*amount], "{} paid exactly once", id)
                    }
                    DisbursementStatus::Cancelled { .. } => {
                        prop_assert!(paid.is_empty(), "{} paid {:?}", id, paid)
                    }
                    other => prop_assert!(
                        false,
                        "{} left {:?} (last hold: {:?}, snapshot {:?})",
                        id,
                        other,
                        last,
                        world.executor.snapshot()
                    ),
                }
            }
            Ok(())
        }

        /// What a careful operator answers a hold with, reading the chain: a nonce spent
        /// by none of our transactions was not paid; a drift is the stranger's doing.
        fn settle(
            world: &World,
            hold: &Hold,
            resolved: &mut Resolved,
        ) -> Result<(), TestCaseError> {
            let store = world.executor.store();
            match hold {
                Hold::ForeignNonce {
                    id,
                    nonce,
                    attempts,
                    ..
                } => {
                    let taken_and_paid = world
                        .ledger
                        .payments()
                        .iter()
                        .any(|p| attempts.contains(&p.tx_hash));
                    prop_assert!(
                        !taken_and_paid,
                        "held on nonce {} though its payment is in the chain (lookups are fresh)",
                        nonce
                    );
                    decide(
                        store,
                        Action::Resolve {
                            resolution: Resolution::NotPaid,
                        },
                        "a stranger spent it",
                    )
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    resolved.insert(*id, world.ledger.taken().len());
                }
                Hold::NonceGap {
                    nonce, chain_nonce, ..
                } => {
                    // Sends no-op transactions from the treasury key to fill the gap.
                    for _ in *chain_nonce..*nonce {
                        world.ledger.consume_nonce();
                    }
                }
                Hold::NonceDrift { .. } => {
                    decide(store, Action::AdoptNonce { nonce: None }, "a stranger's")
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                }
                // The ledger refuses it (a one-off fault): cancel it by replacement.
                Hold::Refused { id, .. } => {
                    store
                        .cancel(*id, "refused")
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                }
                // The simulated ledger pays the coin only: it never reports a mismatch.
                Hold::Mismatch { .. } => {
                    prop_assert!(false, "a mismatch from a ledger that pays no token: {hold}");
                }
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            #[test]
            fn every_disbursement_is_paid_once_or_cancelled(ops in prop::collection::vec(op(false), 1..80), whole in any::<bool>()) {
                run(&ops, whole)?;
            }

            #[test]
            fn through_reorgs_and_fee_spikes(ops in prop::collection::vec(op(true), 1..120), whole in any::<bool>()) {
                run(&ops, whole)?;
            }
        }
    }
}
