//! The executor tick against the scriptable ledger and a sled store on disk: the error
//! classes, the breaker mid-batch, crashes at every step, nonces, dependencies.
#![cfg(not(loom))]

mod common;

mod executor {
    use std::sync::Arc;
    use std::time::Duration;

    use governance::testing::{Fault, ScriptedLedger};
    use governance::{
        Action, CircuitState, CrashPoint, DisbursementStatus, Finality, Hold, LedgerError,
        NewDisbursement, TickReport, TreasuryExecutorError,
    };

    use crate::common::{Settings, decide, harness, request, with};

    /// A closed broadcast gate (a node that lost its lease) stops the tick before any
    /// hand-over, counts nothing against the breaker and halts nothing; the stored intents
    /// are bound, so the executor built when the node leads again sends the same
    /// transactions (one payment each), whether the gate closed before or between
    /// batches.
    #[test]
    fn a_closed_gate_broadcasts_nothing_and_the_next_term_pays_once() {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        for batch in [1, 3] {
            let mut h = harness(batch);
            let ids: Vec<_> = (0..4).map(|i| h.queue(&format!("d{i}"), 10 + i)).collect();
            let open = Arc::new(AtomicBool::new(true));
            let asked = Arc::new(AtomicUsize::new(0));
            let gate = {
                let (open, asked) = (Arc::clone(&open), Arc::clone(&asked));
                Arc::new(move || {
                    asked.fetch_add(1, Ordering::SeqCst);
                    open.load(Ordering::SeqCst)
                })
            };
            h.executor = {
                let placeholder = governance::TreasuryExecutor::new(
                    h.executor.config().clone(),
                    Arc::clone(&h.breaker),
                    h.store().clone(),
                    Arc::clone(&h.ledger) as _,
                )
                .expect("executor");
                placeholder.with_gate(gate)
            };
            open.store(false, Ordering::SeqCst);
            let before = h.ledger.attempts();
            assert_eq!(h.executor.tick(), Err(TreasuryExecutorError::NotLeader));
            assert_eq!(
                h.ledger.attempts(),
                before,
                "batch {batch}: nothing broadcast"
            );
            assert!(asked.load(Ordering::SeqCst) > 0, "the gate was asked");
            assert_eq!(h.breaker.failure_count(), 0);
            assert!(!TreasuryExecutorError::NotLeader.halts());
            assert!(h.executor.snapshot().halted.is_none());
            // Signed and stored ahead: the next term binds them and pays each once.
            assert!(!h.store().intents().expect("intents").is_empty());
            let mut h = h.restart();
            h.drain();
            h.assert_paid_exactly_once(&[(ids[0], 10), (ids[1], 11), (ids[2], 12), (ids[3], 13)]);
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

    /// A business refusal of a transaction that never left the node cancels it (and the
    /// later intents are signed again from its nonce); the executor goes on.
    #[test]
    fn business_refusals_cancel_and_the_executor_goes_on() {
        for (error, reason) in [
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

    /// "Insufficient balance" pauses: the disbursement goes back to ready (its nonce is
    /// given back), nothing is cancelled, and it is paid once the refusal stops.
    #[test]
    fn an_insufficient_balance_refusal_pauses_instead_of_cancelling() {
        let mut h = harness(10);
        let a = h.queue("alice", 5);
        let b = h.queue("bob", 7);
        h.ledger.fail_next(1, LedgerError::InsufficientBalance);
        let report = h.tick();
        assert_eq!((report.cancelled, report.submitted), (0, 0), "{report:?}");
        assert_eq!(h.status(a), DisbursementStatus::Queued, "back to ready");
        assert_eq!(h.breaker.failure_count(), 0);
        h.drain();
        h.assert_paid_exactly_once(&[(a, 5), (b, 7)]);
    }

    /// The first failure mode, at its root: an attempt got out (its answer was
    /// lost), the mempool forgot it, and the hand-over again is refused ("insufficient
    /// balance", then "rejected"). The old executor cancelled it, freeing its nonce for
    /// another payment, or re-signed it at a fresh nonce, and paid twice. Now it is bound
    /// to its nonce: it waits, then holds for an operator (who alone may cancel it by
    /// replacement), and when the refusals stop it is paid once.
    #[test]
    fn a_refusal_after_a_lost_answer_neither_cancels_nor_re_signs() {
        let ledger = Arc::new(ScriptedLedger::default());
        ledger.set_auto_mine(false);
        let mut h = with(Settings::batch(10), ledger);
        let id = h.queue("alice", 4);
        h.ledger
            .push_faults([Fault::AcceptThenFail(LedgerError::Timeout)]);
        h.tick(); // in the pool; the answer was lost
        h.ledger.drop_pool();
        h.ledger
            .push_faults([Fault::Fail(LedgerError::InsufficientBalance)]);
        h.tick();
        assert!(
            matches!(h.status(id), DisbursementStatus::Submitted { .. }),
            "it waits: {:?}",
            h.status(id)
        );
        h.ledger
            .push_faults([Fault::Fail(LedgerError::Rejected("rules".into()))]);
        let error = h.executor.tick().expect_err("holds");
        assert!(
            matches!(&error, TreasuryExecutorError::Held(Hold::Refused { id: held, nonce: 0, .. }) if *held == id),
            "{error}"
        );
        assert!(!matches!(
            h.status(id),
            DisbursementStatus::Cancelled { .. }
        ));
        h.tick(); // handed over again, taken: the hold lifts
        assert_eq!(h.executor.snapshot().hold, None);
        h.ledger.mine();
        h.drain();
        h.assert_paid_exactly_once(&[(id, 4)]);
        h.assert_one_nonce_per_disbursement();
        let taken = h.ledger.taken();
        assert!(
            taken.iter().all(|t| t.tx_hash == taken[0].tx_hash),
            "one transaction, handed over again with the same bytes: {taken:?}"
        );
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

    /// Metrics count what a tick did from `last_report`, even a tick that halts; every
    /// later tick does nothing (halted), and must not report the halting tick's work
    /// again.
    #[test]
    fn a_halted_executor_reports_no_work_after_the_halting_tick() {
        let mut h = harness(10);
        h.queue("alice", 1);
        h.queue("bob", 2);
        // alice: a timeout, then accepted on the retry; bob: refused as signed for another
        // chain, which halts.
        h.ledger.push_faults([
            Fault::Fail(LedgerError::Timeout),
            Fault::Pass,
            Fault::Fail(LedgerError::Signing("invalid chain id for signer".into())),
        ]);
        let error = h.executor.tick().expect_err("halts");
        assert!(
            matches!(error, TreasuryExecutorError::Signing(_)),
            "{error}"
        );
        let report = h.executor.last_report();
        assert_eq!(
            (report.submitted, report.submission_failures),
            (1, 1),
            "the halting tick's work is reported: {report:?}"
        );
        assert!(matches!(
            h.executor.tick(),
            Err(TreasuryExecutorError::Halted(_))
        ));
        assert_eq!(
            h.executor.last_report(),
            &TickReport::default(),
            "a halted tick did nothing"
        );
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

        // Another sender used nonce 0 before the store knew any nonce: the store takes the
        // ledger's at first contact, so nothing is refused ("nonce too low") or ambiguous.
        let mut h = harness(10);
        let id = h.queue("alice", 3);
        h.ledger.consume_nonce();
        let report = h.tick();
        assert_eq!((report.ambiguous, report.submitted), (0, 1), "{report:?}");
        h.drain();
        assert_eq!(
            h.ledger.taken().len(),
            1,
            "signed once, at the ledger's nonce"
        );
        assert_eq!(h.breaker.failure_count(), 0);
        let payments = h.ledger.payments();
        assert_eq!(payments.len(), 1);
        assert_eq!(
            (payments[0].id, payments[0].nonce),
            (id, 1),
            "signed at the ledger's nonce"
        );
        assert!(matches!(h.status(id), DisbursementStatus::Executed { .. }));
    }

    /// With nothing in flight, a ledger nonce that is not the store's holds the executor
    /// (another sender, a restored backup, a reset chain) until an operator adopts one;
    /// it never adopts it silently. A store without a nonce takes the ledger's.
    #[test]
    fn nonce_drift_holds_until_an_operator_adopts_the_nonce() {
        let mut h = harness(10);
        h.ledger.consume_nonce(); // before the store knew any nonce: adopted at first contact
        let a = h.queue("a", 1);
        h.drain();
        assert_eq!(h.ledger.payments()[0].nonce, 1);
        let mut h = h.restart();
        h.ledger.consume_nonce(); // nonce 2 went to another sender
        let b = h.queue("b", 2);
        let adopt = || Action::AdoptNonce { nonce: None };
        assert!(
            matches!(
                decide(h.store(), adopt(), "checked"),
                Err(governance::RequestError::Conflict(_))
            ),
            "refused while the executor is not holding on a drift"
        );
        let error = h.executor.tick().expect_err("holds");
        assert_eq!(
            error,
            TreasuryExecutorError::Held(Hold::NonceDrift {
                store: 2,
                ledger: 3
            })
        );
        let halted = h.executor.snapshot().halted.clone().expect("halted");
        assert!(halted.contains('2') && halted.contains('3'), "{halted}");
        assert!(h.executor.tick().is_err(), "still holding");
        assert_eq!(h.status(b), DisbursementStatus::Queued, "nothing signed");
        decide(h.store(), adopt(), "the stranger was our test").expect("decide");
        assert_eq!(
            h.status(b),
            DisbursementStatus::Queued,
            "applied by the executor"
        );
        h.drain();
        let audit = h.store().audit(None, 10).expect("audit");
        assert_eq!(
            audit.last().map(|r| r.action.as_str()),
            Some("decision.applied")
        );
        assert!(h.executor.snapshot().halted.is_none());
        let paid: Vec<(u64, u128, u64)> = h
            .ledger
            .payments()
            .iter()
            .map(|p| (p.id, p.amount, p.nonce))
            .collect();
        assert_eq!(paid, vec![(a, 1, 1), (b, 2, 3)]);
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
        let refused = h.queue("b", 20);
        let third = h.queue("c", 30);
        let fourth = h.queue("invalid-dest", 1);
        let fifth = h.queue("e", 50);
        // `first` goes through, `refused` is refused; `fourth`'s destination is invalid.
        h.ledger.push_faults([
            Fault::Pass,
            Fault::Fail(LedgerError::Rejected("rules".into())),
        ]);
        let report = h.tick();
        assert_eq!(report.cancelled, 2, "{report:?}");
        h.drain();
        for id in [refused, fourth] {
            assert!(
                matches!(h.status(id), DisbursementStatus::Cancelled { .. }),
                "{id}: {:?}",
                h.status(id)
            );
        }
        h.assert_paid_exactly_once(&[(first, 10), (third, 30), (fifth, 50)]);
        assert_eq!(h.ledger.treasury_balance(), u128::MAX - 90);
    }

    /// The balance must cover each payment with the worst-case fees of everything in
    /// flight: what it does not cover waits (in id order), reported as a shortfall, and is
    /// paid once the treasury is topped up. Nothing is cancelled for want of funds.
    #[test]
    fn a_low_balance_pauses_payments_until_a_top_up() {
        let ledger = Arc::new(ScriptedLedger::new(100));
        let mut h = with(Settings::batch(10), ledger);
        let a = h.queue("a", 60);
        let b = h.queue("b", 60);
        let c = h.queue("c", 10);
        let report = h.tick();
        assert_eq!(report.submitted, 1, "{report:?}");
        assert_eq!(report.balance_shortfall, Some(20));
        assert_eq!(h.executor.snapshot().balance_shortfall, Some(20));
        h.tick();
        h.tick();
        assert_eq!(h.status(b), DisbursementStatus::Queued);
        assert_eq!(h.status(c), DisbursementStatus::Queued, "id order is kept");
        assert_eq!(h.ledger.payments().len(), 1);
        h.ledger.set_balance(70);
        h.drain();
        h.assert_paid_exactly_once(&[(a, 60), (b, 60), (c, 10)]);
        assert_eq!(h.executor.snapshot().balance_shortfall, None);
    }

    /// A token payout waits on the token's balance (less what is in flight in it), not on
    /// the coin's: a shortfall names the token, nothing is cancelled, and a top-up pays it.
    #[test]
    fn a_token_payout_waits_on_its_tokens_balance() {
        let ledger = Arc::new(ScriptedLedger::new(1_000));
        ledger.set_token_balance("GRT", 100);
        // Nothing is mined: what is signed stays in flight, committed against its asset.
        ledger.set_auto_mine(false);
        let mut h = with(Settings::batch(10), Arc::clone(&ledger));
        let grant = |amount| NewDisbursement {
            asset: "GRT".into(),
            ..request("grantee", amount)
        };
        let _a = h.queue_with(grant(60));
        // Token amounts are not the coin's: 950 of the coin's 1,000 fits beside 60 GRT
        // (it would not if the GRT were counted against the coin).
        let c = h.queue("native-grantee", 950);
        let b = h.queue_with(grant(60));
        let report = h.tick();
        assert_eq!(report.submitted, 2, "a and c fit, b does not: {report:?}");
        assert!(matches!(h.status(c), DisbursementStatus::Submitted { .. }));
        assert_eq!(report.balance_shortfall, Some(20), "60 GRT needed, 40 left");
        assert_eq!(report.shortfall_asset.as_deref(), Some("GRT"));
        assert_eq!(report.by_asset.get("GRT").map(|c| c.submitted), Some(1));
        assert_eq!(report.by_asset.get("native").map(|c| c.submitted), Some(1));
        let snapshot = h.executor.snapshot();
        assert_eq!(
            snapshot.balances.get("GRT").map(String::as_str),
            Some("100")
        );
        h.tick();
        assert_eq!(
            h.status(b),
            DisbursementStatus::Queued,
            "it waits, not cancelled"
        );
        // 20 more GRT: b fits beside a, still in flight.
        ledger.set_token_balance("GRT", 120);
        h.tick();
        assert!(
            matches!(h.status(b), DisbursementStatus::Submitted { .. }),
            "{:?}",
            h.status(b)
        );
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

    /// The drill that found it: every payment submitted, then the endpoint froze long
    /// enough to open the breaker, then came back. Nothing needs a submission any more,
    /// so only reads happen; the breaker must still close by itself (a head read probes
    /// it once a tick) within `timeout + success_threshold` ticks of the recovery,
    /// rather than stay half-open for good and page someone about a healthy node.
    #[test]
    fn a_breaker_recovers_without_payment_traffic() {
        let ledger = Arc::new(ScriptedLedger::default());
        ledger.set_auto_mine(false);
        let mut h = with(
            Settings {
                finality: Finality::Confirmations(3),
                ..Settings::batch(10)
            },
            ledger,
        );
        let a = h.queue("a", 1);
        let b = h.queue("b", 2);
        let report = h.tick();
        assert_eq!(report.submitted, 2, "everything submitted");
        h.ledger.reads_down(Some(LedgerError::Timeout));
        h.ledger.down(LedgerError::Timeout);
        let threshold = h.breaker.config().failure_threshold;
        for _ in 0..threshold {
            let report = h.tick();
            assert_eq!(report.attempts, 0, "nothing to submit");
        }
        assert_eq!(h.breaker.state(), CircuitState::Open);
        h.ledger.reads_down(None);
        h.ledger.up();
        let timeout = h.breaker.open_remaining().expect("open");
        h.clock.advance(timeout + Duration::from_millis(1));
        let success_threshold = h.breaker.config().success_threshold;
        let mut ticks = 0;
        while h.breaker.state() != CircuitState::Closed {
            ticks += 1;
            assert!(
                ticks <= success_threshold,
                "still {:?} after {ticks} ticks past the timeout",
                h.breaker.state()
            );
            let report = h.tick();
            assert_eq!(
                (report.attempts, report.probes),
                (0, 1),
                "one probe, no submission"
            );
        }
        assert_eq!(ticks, success_threshold, "one probe success per tick");
        let closed = h.tick();
        assert_eq!(closed.probes, 0, "a closed breaker is not probed");
        for _ in 0..3 {
            h.ledger.mine();
        }
        h.drain();
        h.assert_paid_exactly_once(&[(a, 1), (b, 2)]);
    }

    /// A failed probe opens the breaker again, and the next timeout brings it back.
    #[test]
    fn a_failed_probe_opens_the_breaker_again() {
        let mut h = harness(10);
        h.ledger.reads_down(Some(LedgerError::Timeout));
        for _ in 0..h.breaker.config().failure_threshold {
            h.tick();
        }
        assert_eq!(h.breaker.state(), CircuitState::Open);
        h.ledger.reads_down(None);
        h.clock
            .advance(h.breaker.open_remaining().expect("open") + Duration::from_millis(1));
        let before = h.ledger.reads();
        let report = h.tick();
        assert_eq!(report.probes, 1);
        assert_eq!(
            h.breaker.state(),
            CircuitState::HalfOpen,
            "one success of two"
        );
        let per_tick = h.ledger.reads() - before;
        // The tick's own reads pass; its last read, the probe, finds the endpoint down.
        h.ledger
            .reads_down_after(per_tick - 1, LedgerError::Timeout);
        let report = h.tick();
        assert_eq!((report.probes, report.read_failures), (1, 1));
        assert_eq!(
            h.breaker.state(),
            CircuitState::Open,
            "a failed probe re-opens it"
        );
        let report = h.tick();
        assert!(report.rejected_by_breaker);
        assert_eq!(report.probes, 0, "no probe of an open breaker");
        h.ledger.reads_down(None);
        h.clock
            .advance(h.breaker.open_remaining().expect("open") + Duration::from_millis(1));
        let a = h.queue("a", 1);
        h.drain();
        assert_eq!(h.breaker.state(), CircuitState::Closed);
        h.assert_paid_exactly_once(&[(a, 1)]);
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

    /// A ledger that answers a batch whole (a JSON-RPC batch) may take transactions past
    /// one it refused: the refused one's nonce must then be spent, so its disbursement is
    /// cancelled by replacement (a cancellation at its nonce), never given back for
    /// another payment to take.
    #[test]
    fn a_refusal_inside_a_whole_batch_is_cancelled_by_replacement() {
        let mut h = harness(10);
        h.ledger.answer_whole_batches(true);
        let a = h.queue("a", 1);
        let refused = h.queue("invalid-b", 2);
        let c = h.queue("c", 3);
        let report = h.tick();
        assert_eq!(report.submitted, 2, "{report:?}");
        assert!(
            matches!(
                h.status(refused),
                DisbursementStatus::Staged {
                    cancelling: Some(_),
                    ..
                }
            ),
            "{:?}",
            h.status(refused)
        );
        h.drain();
        match h.status(refused) {
            DisbursementStatus::Cancelled { reason } => {
                assert!(reason.contains("invalid destination"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        h.assert_paid(&[(a, 1), (c, 3)]);
        let paid: Vec<(u64, u64)> = h
            .ledger
            .payments()
            .iter()
            .map(|p| (p.id, p.nonce))
            .collect();
        assert_eq!(paid, [(a, 0), (c, 2)], "nonce 1 went to the cancellation");
        h.assert_one_nonce_per_disbursement();
    }

    /// A refusal at the end of a whole batch, nothing taken after it, is given back as
    /// one-by-one sends give it back: cancelled outright, its nonce taken by the next.
    #[test]
    fn a_refusal_ending_a_whole_batch_is_given_back() {
        let mut h = harness(10);
        h.ledger.answer_whole_batches(true);
        let a = h.queue("a", 1);
        let refused = h.queue("invalid-b", 2);
        h.tick();
        assert!(matches!(
            h.status(refused),
            DisbursementStatus::Cancelled { .. }
        ));
        let c = h.queue("c", 3);
        h.drain();
        h.assert_paid_exactly_once(&[(a, 1), (c, 3)]);
    }

    /// A failure inside a whole batch binds that one and hands it over again after the
    /// batch's answers are settled: each paid once.
    #[test]
    fn a_failure_inside_a_whole_batch_is_handed_over_again() {
        let mut h = harness(10);
        h.ledger.answer_whole_batches(true);
        let ids: Vec<_> = (0..4).map(|i| h.queue(&format!("d{i}"), 10 + i)).collect();
        h.ledger.push_faults([
            Fault::Pass,
            Fault::Fail(LedgerError::Timeout),
            Fault::AcceptThenFail(LedgerError::Timeout),
            Fault::Pass,
        ]);
        let report = h.tick();
        assert_eq!(report.submission_failures, 2, "{report:?}");
        h.drain();
        let expected: Vec<_> = ids
            .iter()
            .zip(10..)
            .map(|(&id, amount)| (id, amount))
            .collect();
        h.assert_paid_exactly_once(&expected);
        h.assert_one_nonce_per_disbursement();
    }
}
