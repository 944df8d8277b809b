//! The executor tick against the scriptable ledger and a sled store on disk: the error
//! classes, the breaker mid-batch, crashes at every step, nonces, dependencies.
#![cfg(not(loom))]

mod executor {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::time::Duration;

    use governance::testing::{Fault, ScriptedLedger};
    use governance::{
        CircuitBreaker, CircuitBreakerConfig, CircuitState, CrashPoint, DisbursementId,
        DisbursementStatus, GovStore, LedgerError, ManualClock, NewDisbursement, TreasuryExecutor,
        TreasuryExecutorConfig, TreasuryExecutorError,
    };
    use tempfile::TempDir;

    /// A disbursement request with no memo, epoch 0 and no dependencies.
    fn request(destination: &str, amount: u128) -> NewDisbursement {
        NewDisbursement {
            destination: destination.into(),
            amount,
            memo: String::new(),
            activation_epoch: 0,
            depends_on: vec![],
            external_key: None,
        }
    }

    struct Harness {
        dir: TempDir,
        clock: ManualClock,
        ledger: Arc<ScriptedLedger>,
        breaker: Arc<CircuitBreaker>,
        executor: TreasuryExecutor,
        batch: usize,
    }

    fn harness(batch: usize) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = Arc::new(ScriptedLedger::default());
        build(dir, ManualClock::new(), ledger, batch)
    }

    fn build(
        dir: TempDir,
        clock: ManualClock,
        ledger: Arc<ScriptedLedger>,
        batch: usize,
    ) -> Harness {
        let store = GovStore::open(dir.path().join("db")).expect("open store");
        let breaker = Arc::new(CircuitBreaker::with_clock(
            CircuitBreakerConfig::default(),
            clock.clone(),
        ));
        let mut config = TreasuryExecutorConfig::new("test", Arc::clone(&breaker));
        config.batch_size = batch;
        let executor =
            TreasuryExecutor::new(config, store, Arc::clone(&ledger) as _).expect("executor");
        Harness {
            dir,
            clock,
            ledger,
            breaker,
            executor,
            batch,
        }
    }

    impl Harness {
        /// Drops the executor and the store as a crash would, and opens them again from
        /// disk with a new breaker (restored from the store).
        fn restart(self) -> Harness {
            let Harness {
                dir,
                clock,
                ledger,
                executor,
                batch,
                ..
            } = self;
            drop(executor);
            build(dir, clock, ledger, batch)
        }

        fn store(&self) -> &GovStore {
            self.executor.store()
        }

        fn queue(&self, destination: &str, amount: u128) -> DisbursementId {
            self.queue_with(NewDisbursement {
                destination: destination.into(),
                amount,
                memo: String::new(),
                activation_epoch: 0,
                depends_on: vec![],
                external_key: None,
            })
        }

        fn queue_with(&self, new: NewDisbursement) -> DisbursementId {
            let queued = self.store().queue(&new, 0).expect("queue");
            self.store().flush().expect("flush");
            queued.disbursement.id
        }

        fn status(&self, id: DisbursementId) -> DisbursementStatus {
            self.store().get(id).expect("get").expect("exists").status
        }

        fn tick(&mut self) -> governance::TickReport {
            self.executor.tick().expect("tick")
        }

        /// Ticks until nothing is left in flight (at most 50 ticks).
        fn drain(&mut self) {
            for _ in 0..50 {
                self.tick();
                let backlog = self.store().backlog().expect("backlog");
                if backlog.ready + backlog.scheduled + backlog.staged + backlog.submitted == 0 {
                    return;
                }
            }
            panic!("did not drain: {:?}", self.store().backlog());
        }

        /// Each disbursement paid exactly once, with its amount, and nonces 0..n gapless.
        fn assert_paid_exactly_once(&self, expected: &[(DisbursementId, u128)]) {
            let payments = self.ledger.payments();
            let mut by_id: HashMap<DisbursementId, Vec<u128>> = HashMap::new();
            for payment in &payments {
                by_id.entry(payment.id).or_default().push(payment.amount);
            }
            for &(id, amount) in expected {
                assert_eq!(
                    by_id.get(&id),
                    Some(&vec![amount]),
                    "disbursement {id} paid exactly once"
                );
                assert!(
                    matches!(self.status(id), DisbursementStatus::Executed { .. }),
                    "{id} executed"
                );
            }
            assert_eq!(payments.len(), expected.len(), "no other payment");
            let nonces: Vec<u64> = payments.iter().map(|p| p.nonce).collect();
            assert_eq!(
                nonces,
                (0..payments.len() as u64).collect::<Vec<_>>(),
                "gapless, unique nonces"
            );
        }
    }

    /// One row of the error table per test: submission failures count, keep the intent
    /// staged, and are retried.
    #[test]
    fn submission_errors_count_against_the_breaker_and_retry() {
        for error in [
            LedgerError::Unreachable("connection refused".into()),
            LedgerError::Timeout,
            LedgerError::Http(503),
            LedgerError::Http(429),
            LedgerError::Malformed("not json".into()),
        ] {
            let mut h = harness(1);
            let id = h.queue("alice", 10);
            h.ledger.fail_next(1, error.clone());
            let report = h.tick();
            assert_eq!(report.submission_failures, 1, "{error}");
            assert_eq!(h.breaker.failure_count(), 1, "{error} counts");
            assert!(
                matches!(h.status(id), DisbursementStatus::Staged { .. }),
                "{error}: stays staged"
            );
            assert!(
                h.executor
                    .snapshot()
                    .last_error
                    .as_deref()
                    .is_some_and(|e| e.contains(&error.to_string()))
            );
            h.drain();
            h.assert_paid_exactly_once(&[(id, 10)]);
        }
    }

    #[test]
    fn business_refusals_cancel_and_the_executor_goes_on() {
        for (error, reason) in [
            (LedgerError::InsufficientBalance, "insufficient balance"),
            (
                LedgerError::InvalidDestination("bob".into()),
                "invalid destination",
            ),
            (
                LedgerError::Rejected("gas".into()),
                "rejected by the ledger",
            ),
        ] {
            let mut h = harness(10);
            let refused = h.queue("bob", 5);
            let next = h.queue("carol", 7);
            h.ledger.fail_next(1, error);
            h.tick();
            match h.status(refused) {
                DisbursementStatus::Cancelled { reason: why } => {
                    assert!(why.contains(reason), "{why}")
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(h.breaker.failure_count(), 0, "business errors do not count");
            h.drain();
            h.assert_paid_exactly_once(&[(next, 7)]);
        }
    }

    /// Found by the executor property test: the ledger applied the transaction but the
    /// answer that came back was a refusal. Cancelling would free a nonce that is used.
    #[test]
    fn a_refusal_for_a_transaction_that_landed_is_not_a_cancellation() {
        let mut h = harness(10);
        let id = h.queue("alice", 4);
        h.ledger
            .push_faults([Fault::AcceptThenFail(LedgerError::InsufficientBalance)]);
        let next = h.queue("bob", 5);
        h.drain();
        h.assert_paid_exactly_once(&[(id, 4), (next, 5)]);
    }

    #[test]
    fn a_signing_error_halts_the_executor() {
        let mut h = harness(10);
        h.queue("alice", 1);
        h.ledger.fail_signing(Some("no key"));
        let error = h.executor.tick().expect_err("halts");
        assert!(
            matches!(error, TreasuryExecutorError::Signing(_)),
            "{error}"
        );
        assert!(
            h.executor
                .snapshot()
                .halted
                .as_deref()
                .is_some_and(|r| r.contains("no key"))
        );
        h.ledger.fail_signing(None);
        assert!(
            matches!(h.executor.tick(), Err(TreasuryExecutorError::Halted(_))),
            "stays halted"
        );
        assert_eq!(h.breaker.failure_count(), 0);
        assert!(h.ledger.payments().is_empty());
    }

    #[test]
    fn ambiguous_answers_are_reconciled_by_hash() {
        // The ledger took it but the answer was lost; the retry says "already known".
        let mut h = harness(10);
        let id = h.queue("alice", 3);
        h.ledger
            .push_faults([Fault::AcceptThenFail(LedgerError::Timeout)]);
        let report = h.tick();
        assert_eq!(h.breaker.failure_count(), 1, "the timeout itself counted");
        assert_eq!(report.ambiguous, 1, "the retry was told \"already known\"");
        h.ledger
            .push_faults([Fault::Fail(LedgerError::AlreadyKnown)]);
        h.drain();
        h.assert_paid_exactly_once(&[(id, 3)]);
        assert_eq!(
            h.breaker.failure_count(),
            1,
            "the ambiguous answer did not count"
        );

        // "Nonce too low" for a transaction the ledger does not know: re-signed afresh.
        let mut h = harness(10);
        let id = h.queue("alice", 3);
        h.ledger.consume_nonce();
        h.executor.tick().expect("tick");
        h.drain();
        assert_eq!(h.breaker.failure_count(), 0);
        let payments = h.ledger.payments();
        assert_eq!(payments.len(), 1);
        assert_eq!(
            (payments[0].id, payments[0].nonce),
            (id, 1),
            "signed again with the ledger's nonce"
        );
        assert!(matches!(h.status(id), DisbursementStatus::Executed { .. }));
    }

    /// At start, with nothing in flight, the store's nonce is reconciled with the
    /// ledger's: a nonce used by another sender meanwhile is skipped without a refusal,
    /// and a ledger behind the store (a reset chain) is followed instead of leaving a gap.
    #[test]
    fn the_nonce_is_reconciled_with_the_ledger_at_start() {
        let mut h = harness(10);
        let a = h.queue("a", 1);
        h.drain();
        let mut h = h.restart();
        h.ledger.consume_nonce(); // nonce 1 went to another sender
        let b = h.queue("b", 2);
        let report = h.tick();
        assert_eq!((report.submitted, report.ambiguous), (1, 0), "{report:?}");
        h.drain();
        let paid: Vec<(u64, u128, u64)> = h
            .ledger
            .payments()
            .iter()
            .map(|p| (p.id, p.amount, p.nonce))
            .collect();
        assert_eq!(
            paid,
            vec![(a, 1, 0), (b, 2, 2)],
            "nonce 1 is the other sender's"
        );
    }

    /// 10 ready, ledger down: exactly 5 submissions, then the batch stops; nothing while
    /// open; after the timeout only a probe; after 2 successes the backlog drains.
    #[test]
    fn the_breaker_stops_a_batch_mid_way_and_recovers() {
        let mut h = harness(10);
        let ids: Vec<_> = (0..10)
            .map(|i| h.queue(&format!("d{i}"), 100 + i))
            .collect();
        h.ledger.down(LedgerError::Timeout);
        let report = h.tick();
        assert_eq!(report.attempts, 5);
        assert_eq!(h.ledger.attempts(), 5);
        assert!(report.rejected_by_breaker);
        assert_eq!(h.breaker.state(), CircuitState::Open);

        let report = h.tick();
        assert_eq!(
            (report.attempts, h.ledger.attempts()),
            (0, 5),
            "nothing while open"
        );

        h.clock.advance(Duration::from_secs(60));
        let report = h.tick();
        assert_eq!(report.attempts, 1, "one probe, which fails and reopens");
        assert_eq!(h.breaker.state(), CircuitState::Open);

        h.clock.advance(Duration::from_secs(60));
        h.ledger.up();
        let report = h.tick();
        assert_eq!(
            h.breaker.state(),
            CircuitState::Closed,
            "two probe successes closed it"
        );
        assert_eq!(report.submitted, 10, "and the batch went on");
        h.drain();
        let expected: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| (id, 100 + i as u128))
            .collect();
        h.assert_paid_exactly_once(&expected);
    }

    /// Crash at every step boundary, restart from disk: each disbursement paid once.
    #[test]
    fn crashes_at_every_step_pay_exactly_once() {
        for point in [
            CrashPoint::AfterStage,
            CrashPoint::AfterSubmit,
            CrashPoint::AfterRecord,
        ] {
            let mut h = harness(10);
            let ids: Vec<_> = (0..4).map(|i| h.queue(&format!("d{i}"), 10 + i)).collect();
            h.executor.crash_at(Some(point));
            let error = h.executor.tick().expect_err("crashes");
            assert_eq!(error, TreasuryExecutorError::Crashed(point));
            let mut h = h.restart();
            h.drain();
            let expected: Vec<_> = ids
                .iter()
                .enumerate()
                .map(|(i, &id)| (id, 10 + i as u128))
                .collect();
            h.assert_paid_exactly_once(&expected);
        }
    }

    #[test]
    fn a_cancellation_mid_sequence_leaves_no_nonce_gap() {
        let mut h = harness(10);
        let first = h.queue("a", 10);
        let poor = h.queue("b", 1_000);
        let third = h.queue("c", 30);
        let fourth = h.queue("invalid-dest", 1);
        let fifth = h.queue("e", 50);
        h.ledger.set_balance(100);
        h.drain();
        assert!(matches!(
            h.status(poor),
            DisbursementStatus::Cancelled { .. }
        ));
        assert!(matches!(
            h.status(fourth),
            DisbursementStatus::Cancelled { .. }
        ));
        h.assert_paid_exactly_once(&[(first, 10), (third, 30), (fifth, 50)]);
        assert_eq!(h.ledger.balance(), 10);
    }

    #[test]
    fn dependencies_wait_for_execution_and_cancellations_cascade() {
        let mut h = harness(10);
        let parent = h.queue("a", 1);
        let child = h.queue_with(NewDisbursement {
            depends_on: vec![parent],
            ..request("b", 2)
        });
        h.tick(); // parent submitted (and included by this ledger)
        assert_eq!(
            h.status(child),
            DisbursementStatus::Queued,
            "waits for the parent's execution"
        );
        h.drain();
        h.assert_paid_exactly_once(&[(parent, 1), (child, 2)]);

        let mut h = harness(10);
        let doomed = h.queue("invalid-x", 1);
        let child = h.queue_with(NewDisbursement {
            depends_on: vec![doomed],
            ..request("b", 2)
        });
        let grandchild = h.queue_with(NewDisbursement {
            depends_on: vec![child],
            ..request("c", 3)
        });
        h.drain();
        for id in [child, grandchild] {
            match h.status(id) {
                DisbursementStatus::Cancelled { reason } => {
                    assert!(reason.contains("dependency"), "{reason}")
                }
                other => panic!("{id}: {other:?}"),
            }
        }
        assert!(h.ledger.payments().is_empty());
    }

    #[test]
    fn activation_epochs_are_respected() {
        let mut h = harness(10);
        let later = h.queue_with(NewDisbursement {
            activation_epoch: 5,
            ..request("a", 1)
        });
        h.ledger.set_epoch(4);
        for _ in 0..3 {
            assert_eq!(h.tick().attempts, 0);
        }
        assert_eq!(h.status(later), DisbursementStatus::Queued);
        assert_eq!(h.store().backlog().expect("backlog").scheduled, 1);
        // Once the executor has seen epoch 4, one due by then is indexed ready at once;
        // one due later still waits in `scheduled`.
        let due = h.queue_with(NewDisbursement {
            activation_epoch: 4,
            ..request("b", 2)
        });
        let backlog = h.store().backlog().expect("backlog");
        assert_eq!((backlog.ready, backlog.scheduled), (1, 1));
        assert_eq!(h.tick().submitted, 1);
        h.ledger.set_epoch(5);
        h.drain();
        h.assert_paid_exactly_once(&[(due, 2), (later, 1)]);
    }

    /// The 10th disbursement queued after 10,000 executed ones is paid in the next tick.
    #[test]
    fn no_starvation_behind_a_long_history() {
        let mut h = harness(500);
        for i in 0..10_000u32 {
            h.store()
                .queue(&request(&format!("h{i}"), 1), 0)
                .expect("queue");
        }
        h.drain();
        assert_eq!(h.ledger.payments().len(), 10_000);
        let new: Vec<_> = (0..10).map(|i| h.queue(&format!("n{i}"), 2)).collect();
        let report = h.tick();
        assert_eq!(report.submitted, 10, "all ten in the next tick");
        assert!(matches!(
            h.status(new[9]),
            DisbursementStatus::Submitted { .. }
        ));
    }

    /// An endpoint that is down fails every call, not only submissions. With a payment in
    /// flight, the tick's first call is a lookup: it must count against the breaker too,
    /// or the breaker would never open while the tick retried it forever.
    #[test]
    fn a_dead_endpoint_opens_the_breaker_whichever_call_finds_it() {
        let mut h = harness(10);
        let a = h.queue("a", 1);
        h.ledger
            .push_faults([Fault::AcceptThenFail(LedgerError::Timeout)]);
        h.tick(); // accepted, answer lost: in flight, staged
        let b = h.queue("b", 2);
        h.ledger
            .reads_down(Some(LedgerError::Unreachable("refused".into())));
        h.ledger.down(LedgerError::Unreachable("refused".into()));
        let failures_before = h.breaker.failure_count();
        for round in 1..=5 - failures_before {
            assert_eq!(h.breaker.state(), CircuitState::Closed, "round {round}");
            let report = h.tick();
            assert_eq!(
                (report.read_failures, report.attempts),
                (1, 0),
                "one failed lookup, no submission"
            );
        }
        assert_eq!(h.breaker.state(), CircuitState::Open);
        let reads = h.ledger.reads();
        let report = h.tick();
        assert!(report.rejected_by_breaker);
        assert_eq!(h.ledger.reads(), reads, "no call while open");
        h.ledger.reads_down(None);
        h.ledger.up();
        h.clock.advance(Duration::from_secs(61));
        let c = h.queue("c", 3); // `a` reconciles by lookup: two submissions close it
        h.drain();
        assert_eq!(h.breaker.state(), CircuitState::Closed);
        h.assert_paid_exactly_once(&[(a, 1), (b, 2), (c, 3)]);
    }

    /// Successful reads neither close a half-open breaker nor keep a probe slot: only
    /// accepted submissions prove the endpoint is back.
    #[test]
    fn reads_do_not_count_as_probe_successes() {
        let mut h = harness(10);
        h.ledger.reads_down(Some(LedgerError::Timeout));
        for _ in 0..5 {
            h.tick();
        }
        assert_eq!(h.breaker.state(), CircuitState::Open);
        h.ledger.reads_down(None);
        h.clock.advance(Duration::from_secs(61));
        let report = h.tick(); // nothing queued: only reads
        assert_eq!(report.attempts, 0);
        assert_eq!(h.breaker.state(), CircuitState::HalfOpen);
        assert_eq!(h.breaker.success_count(), 0);
        let a = h.queue("a", 1);
        let c = h.queue("c", 3);
        h.drain();
        assert_eq!(h.breaker.state(), CircuitState::Closed);
        h.assert_paid_exactly_once(&[(a, 1), (c, 3)]);
    }

    /// A disbursement the ledger cannot even sign for (a destination it cannot pay) is
    /// cancelled without using a nonce; the rest of the batch goes on.
    #[test]
    fn unsignable_disbursements_are_cancelled_without_a_nonce() {
        let mut h = harness(10);
        let bad = h.queue("unsignable-x", 1);
        let good = h.queue("b", 2);
        let report = h.tick();
        assert_eq!((report.cancelled, report.submitted), (1, 1));
        assert!(matches!(
            h.status(bad),
            DisbursementStatus::Cancelled { .. }
        ));
        h.drain();
        h.assert_paid_exactly_once(&[(good, 2)]);
        assert_eq!(h.ledger.payments()[0].nonce, 0);
    }

    /// A transaction mined but reverted paid nothing: its disbursement is Cancelled with
    /// the block in the reason (never Executed), its dependents too, and the spent nonce
    /// is not reused: the next payment takes the one after it.
    #[test]
    fn a_reverted_transaction_cancels_its_disbursement_and_spends_its_nonce() {
        let mut h = harness(10);
        let reverting = h.queue("reverting-contract", 1);
        let child = h.queue_with(NewDisbursement {
            depends_on: vec![reverting],
            ..request("c", 3)
        });
        let good = h.queue("b", 2);
        h.drain();
        match h.status(reverting) {
            DisbursementStatus::Cancelled { reason } => {
                assert!(reason.contains("reverted on chain in block 1"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            h.status(child),
            DisbursementStatus::Cancelled { .. }
        ));
        let payments = h.ledger.payments();
        assert_eq!(payments.len(), 1, "{payments:?}");
        assert_eq!((payments[0].id, payments[0].nonce), (good, 1));
        let later = h.queue("d", 4);
        h.drain();
        assert_eq!(h.ledger.payments()[1].nonce, 2);
        assert!(matches!(
            h.status(later),
            DisbursementStatus::Executed { .. }
        ));
    }

    #[test]
    fn the_breaker_survives_a_restart() {
        let mut h = harness(10);
        h.queue("a", 1);
        h.ledger.down(LedgerError::Timeout);
        h.tick();
        assert_eq!(h.breaker.state(), CircuitState::Open);
        let h = h.restart();
        assert_eq!(
            h.breaker.state(),
            CircuitState::Open,
            "restored open from the store"
        );
        assert!(
            h.breaker
                .open_remaining()
                .is_some_and(|left| left > Duration::ZERO)
        );
    }

    #[test]
    fn telemetry_hears_every_tick_and_every_transition() {
        use std::sync::Mutex;
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new();
        let ledger = Arc::new(ScriptedLedger::default());
        let store = GovStore::open(dir.path().join("db")).expect("store");
        let breaker = Arc::new(CircuitBreaker::with_clock(
            CircuitBreakerConfig::default(),
            clock.clone(),
        ));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let mut config = TreasuryExecutorConfig::new("test", Arc::clone(&breaker));
        config.circuit_breaker_telemetry = Some(Arc::new(move |state, failures, successes| {
            sink.lock()
                .expect("sink")
                .push((state, failures, successes));
        }));
        let mut executor =
            TreasuryExecutor::new(config, store, Arc::clone(&ledger) as _).expect("executor");
        executor.store().queue(&request("a", 1), 0).expect("queue");
        executor.tick().expect("tick");
        assert_eq!(
            *seen.lock().expect("seen"),
            vec![(0, 0, 0)],
            "after the tick"
        );
        seen.lock().expect("seen").clear();

        ledger.down(LedgerError::Timeout);
        executor.store().queue(&request("b", 1), 0).expect("queue");
        executor.tick().expect("tick");
        let calls = seen.lock().expect("seen").clone();
        assert_eq!(
            calls.len(),
            2,
            "the trip, then the end of the tick: {calls:?}"
        );
        assert_eq!(calls[0].0, 1, "reported open at the transition");
        assert_eq!(calls[1], (1, 0, 0), "and after the tick");
    }
}
