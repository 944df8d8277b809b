//! The executor on a chain that behaves like a real one (the scripted ledger's mempool
//! and chain model): lagging lookups, confirmations and reorgs, fee spikes and caps,
//! mempool evictions, another sender on the key, a restored backup, another network,
//! operators' cancellations and decisions. One test per rule of the binding rule's issue.
#![cfg(not(loom))]

mod common;

mod executor_chain {
    use std::sync::Arc;

    use governance::testing::{Fault, ScriptedLedger};
    use governance::{
        Action, AttemptKind, Cancellation, CrashPoint, DisbursementStatus, Finality, Hold,
        LedgerError, NewDisbursement, Resolution, TreasuryExecutorError,
    };

    use crate::common::{Harness, Settings, decide, harness, request, with};

    fn chain(finality: Finality) -> Harness {
        let ledger = Arc::new(ScriptedLedger::default());
        ledger.set_auto_mine(false);
        let settings = Settings {
            batch: 10,
            finality,
            bump_after_blocks: 3,
        };
        with(settings, ledger)
    }

    /// A tick that may hold for an operator; anything else is a failure.
    fn tick_or_hold(h: &mut Harness) -> Option<Hold> {
        match h.executor.tick() {
            Ok(_) => None,
            Err(TreasuryExecutorError::Held(hold)) => Some(hold),
            Err(other) => panic!("tick failed: {other}"),
        }
    }

    /// Failure mode 1: a read backend that answers "unknown" for mined transactions while
    /// sends reach an up-to-date node ("nonce too low"). The old executor re-signed each at
    /// a fresh nonce and paid it again; now each stays bound to its nonce and the executor
    /// waits: the block that spent each nonce holds its own transaction. Once the lookups
    /// catch up, each is Executed, paid once.
    #[test]
    fn stale_lookups_never_re_sign_at_another_nonce() {
        let ledger = Arc::new(ScriptedLedger::default());
        let mut h = with(Settings::batch(10), ledger);
        h.ledger.stale_lookups(true);
        let ids: Vec<_> = (0..6).map(|i| h.queue(&format!("d{i}"), 10 + i)).collect();
        for _ in 0..8 {
            assert_eq!(
                tick_or_hold(&mut h),
                None,
                "nothing to hold on: its own block"
            );
        }
        assert_eq!(h.ledger.payments().len(), 6, "each paid once, none again");
        h.assert_one_nonce_per_disbursement();
        h.ledger.stale_lookups(false);
        h.drain();
        let expected: Vec<_> = ids.iter().map(|&id| (id, 10 + u128::from(id))).collect();
        h.assert_paid_exactly_once(&expected);
    }

    /// An operator who answers "not paid" while the lookups lag is wrong (the payment is in
    /// the chain); the decision waits for the executor, which reads the chain again, finds
    /// no such question any more, and drops it: nothing is paid twice.
    #[test]
    fn a_decision_on_a_hold_that_lifted_is_dropped() {
        let mut h = chain(Finality::Confirmations(2));
        let id = h.queue("a", 3);
        h.tick();
        h.ledger.drop_pool();
        h.ledger.consume_nonce(); // a stranger takes nonce 0
        h.ledger.mine();
        assert!(matches!(
            tick_or_hold(&mut h),
            Some(Hold::ForeignNonce { nonce: 0, .. })
        ));
        decide(
            h.store(),
            Action::Resolve {
                resolution: Resolution::NotPaid,
            },
            "checked",
        )
        .expect("decide");
        // Before the executor applies it, the chain changes: a reorg drops the stranger's
        // block, the payment is handed over again and lands at nonce 0.
        h.ledger.reorg(2, true);
        h.tick();
        h.ledger.mine();
        h.ledger.mine();
        h.drain();
        h.assert_paid(&[(id, 3)]);
        assert_eq!(h.store().decision().expect("decision"), None);
        let audit = h.store().audit(None, 10).expect("audit");
        assert!(
            audit.iter().any(|r| r.action == "decision.dropped"),
            "{audit:?}"
        );
    }

    /// Failure mode 2: a payment is Executed only at depth, Included before; a reorg that
    /// drops its block sends it back to Submitted (and rebroadcasts it), and dependents
    /// wait until it is final.
    #[test]
    fn executed_only_at_depth_and_a_reorg_sends_it_back() {
        let mut h = chain(Finality::Confirmations(3));
        let parent = h.queue("parent", 7);
        let child = h.queue_with(NewDisbursement {
            depends_on: vec![parent],
            ..request("child", 3)
        });
        h.tick();
        assert!(matches!(
            h.status(parent),
            DisbursementStatus::Submitted { .. }
        ));
        h.ledger.mine(); // block 1
        h.tick();
        let DisbursementStatus::Included {
            block,
            confirmations,
            ..
        } = h.status(parent)
        else {
            panic!("{:?}", h.status(parent));
        };
        assert_eq!((block, confirmations), (1, 1));
        h.ledger.mine(); // 2 confirmations
        h.tick();
        assert!(matches!(
            h.status(parent),
            DisbursementStatus::Included {
                confirmations: 2,
                ..
            }
        ));
        assert_eq!(
            h.status(child),
            DisbursementStatus::Queued,
            "waits for depth"
        );

        h.ledger.reorg(2, true); // blocks 1 and 2 gone, and the mempool lost the payment
        let report = h.tick();
        assert_eq!(report.reorgs, 1, "{report:?}");
        assert!(
            matches!(h.status(parent), DisbursementStatus::Submitted { .. }),
            "{:?}",
            h.status(parent)
        );
        assert_eq!(h.ledger.pool_size(), 1, "rebroadcast, same bytes");
        assert!(h.ledger.payments().is_empty());
        for _ in 0..3 {
            h.ledger.mine();
        }
        h.tick();
        assert!(matches!(
            h.status(parent),
            DisbursementStatus::Executed { .. }
        ));
        for _ in 0..4 {
            h.ledger.mine();
            h.tick();
        }
        h.assert_paid(&[(parent, 7), (child, 3)]);
        h.assert_one_nonce_per_disbursement();
        assert_eq!(h.executor.snapshot().reorgs, 1);
    }

    /// Failure mode 3: the base fee rises above what pending transactions offer. Each is
    /// replaced at its nonce with bumped fees (never counted against the breaker) and all
    /// are paid once; a replacement the caps forbid waits, saying so.
    #[test]
    fn a_fee_spike_is_met_by_fee_bumps_up_to_the_cap() {
        let mut h = chain(Finality::Confirmations(1));
        h.ledger.set_base_fee(Some(10));
        let ids: Vec<_> = (0..5).map(|i| h.queue(&format!("d{i}"), 100 + i)).collect();
        h.tick(); // signed at 2 x 10 + 1 = 21 per gas
        h.ledger.set_base_fee(Some(50)); // mining stalls
        h.ledger.mine();
        assert!(h.ledger.payments().is_empty(), "priced out");
        h.ledger.set_fee_caps(60, 1_000);
        let report = h.tick();
        assert!(
            report.fee_cap_reached,
            "2 x 50 + 1 is over the cap of 60: {report:?}"
        );
        assert!(h.executor.snapshot().fee_cap_reached);
        assert_eq!(report.fee_bumps, 0);
        h.ledger.set_fee_caps(1_000, 1_000);
        let report = h.tick();
        assert_eq!(report.fee_bumps, 5, "{report:?}");
        assert!(!report.fee_cap_reached);
        assert_eq!(
            h.breaker.failure_count(),
            0,
            "fees are not the RPC's failure"
        );
        for _ in 0..3 {
            h.ledger.mine();
            h.tick();
        }
        let expected: Vec<_> = ids.iter().map(|&id| (id, 100 + u128::from(id))).collect();
        h.assert_paid_exactly_once(&expected);
        h.assert_one_nonce_per_disbursement();
    }

    /// A replacement must raise the tip too (nodes refuse one that raises the max fee
    /// alone): with the tip at its cap, the bump waits and says which cap stands in the
    /// way, instead of signing replacements that can never be taken.
    #[test]
    fn a_tip_at_its_cap_waits_at_the_cap() {
        let mut h = chain(Finality::Confirmations(1));
        h.ledger.set_base_fee(Some(10));
        h.ledger.set_fee_caps(1_000, 1); // the quote's tip is 1: at the cap already
        let id = h.queue("a", 1);
        h.tick();
        h.ledger.set_base_fee(Some(50));
        h.ledger.mine();
        let report = h.tick();
        assert!(report.fee_cap_reached, "{report:?}");
        assert_eq!(report.fee_bumps, 0);
        assert!(
            report
                .last_error
                .as_deref()
                .unwrap_or_default()
                .contains("tip"),
            "{report:?}"
        );
        assert_eq!(h.first_intent().attempts.len(), 1);
        h.ledger.set_fee_caps(1_000, 10);
        h.ledger.mine();
        let report = h.tick();
        assert_eq!(report.fee_bumps, 1, "{report:?}");
        h.ledger.mine();
        h.tick();
        h.assert_paid_exactly_once(&[(id, 1)]);
    }

    /// A transaction pending `bump_after_blocks` blocks after an endpoint took it (the
    /// chain is congested: miners skip its tip) is replaced with bumped fees.
    #[test]
    fn a_transaction_pending_too_long_is_bumped() {
        let mut h = chain(Finality::Confirmations(1));
        h.ledger.set_base_fee(Some(10));
        h.ledger.set_min_tip(2); // ours tips 1
        let id = h.queue("a", 1);
        h.tick();
        let first = h.first_intent().latest().tx.fees;
        for _ in 0..2 {
            h.ledger.mine();
            assert_eq!(h.tick().fee_bumps, 0, "not yet");
        }
        h.ledger.mine();
        let report = h.tick();
        assert_eq!(report.fee_bumps, 1, "three blocks: bumped {report:?}");
        let intent = h.first_intent();
        assert_eq!(intent.attempts.len(), 2);
        let second = intent.attempts[1].tx.fees;
        assert!(second.max_fee_per_gas >= first.bumped(20).max_fee_per_gas);
        assert!(second.max_priority_fee_per_gas >= first.bumped(20).max_priority_fee_per_gas);
        h.ledger.mine();
        h.tick();
        h.assert_paid_exactly_once(&[(id, 1)]);
        h.assert_one_nonce_per_disbursement();
        assert_eq!(
            h.ledger.taken().len(),
            2,
            "the original and its replacement"
        );
    }

    /// A refusal of the fee ("replacement transaction underpriced": something else holds
    /// the nonce in the pool at a higher fee) is bumped at the next look, and is never
    /// counted against the breaker.
    #[test]
    fn an_underpriced_refusal_is_bumped() {
        let mut h = chain(Finality::Confirmations(1));
        h.ledger.set_base_fee(Some(10));
        let id = h.queue("a", 1);
        let underpriced = || {
            Fault::Fail(LedgerError::Underpriced(
                "replacement transaction underpriced".into(),
            ))
        };
        h.ledger.push_faults([underpriced(), underpriced()]);
        let report = h.tick();
        assert_eq!((report.underpriced, report.submitted), (1, 0), "{report:?}");
        let report = h.tick();
        assert_eq!(
            (report.underpriced, report.fee_bumps),
            (1, 0),
            "handed over again, not bumped twice in a block: {report:?}"
        );
        h.ledger.mine();
        let report = h.tick();
        assert_eq!((report.fee_bumps, report.submitted), (1, 1), "{report:?}");
        assert_eq!(h.breaker.failure_count(), 0);
        h.ledger.mine();
        h.tick();
        h.assert_paid_exactly_once(&[(id, 1)]);
    }

    /// A mempool that forgets a transaction: the same bytes are broadcast again.
    #[test]
    fn an_evicted_transaction_is_rebroadcast_same_bytes() {
        let mut h = chain(Finality::Confirmations(1));
        let id = h.queue("a", 5);
        h.tick();
        let hash = h.first_intent().latest().tx.tx_hash.clone();
        h.ledger.drop_pool();
        let report = h.tick();
        assert_eq!(report.submitted, 1, "{report:?}");
        let taken = h.ledger.taken();
        assert_eq!(taken.len(), 2);
        assert!(taken.iter().all(|t| t.tx_hash == hash), "same bytes");
        h.ledger.mine();
        h.tick();
        h.assert_paid_exactly_once(&[(id, 5)]);
    }

    /// Failure mode 4: a database restored from a backup forgets payments made since. The
    /// old executor adopted the ledger's nonce at start and paid them again; now it holds
    /// on the drift, naming both nonces, and pays nothing until an operator decides.
    #[test]
    fn a_restored_backup_holds_instead_of_paying_again() {
        let mut h = harness(10);
        let keyed = |key: &str, amount| NewDisbursement {
            external_key: Some(key.into()),
            asset: "native".into(),
            ..request(key, amount)
        };
        h.queue_with(keyed("k1", 1));
        h.queue_with(keyed("k2", 2));
        h.drain();
        let h = h.restart();
        let backup = tempfile::tempdir().expect("backup dir");
        copy_dir(&h.dir.path().join("db"), &backup.path().join("db"));
        let mut h = h.restart();
        h.queue_with(keyed("k3", 3));
        h.queue_with(keyed("k4", 4));
        h.drain();
        assert_eq!(h.ledger.payments().len(), 4);
        let Harness {
            dir,
            ledger,
            executor,
            ..
        } = h;
        drop(executor);
        std::fs::remove_dir_all(dir.path().join("db")).expect("remove");
        copy_dir(&backup.path().join("db"), &dir.path().join("db"));
        let mut h = Harness::reopen(dir, ledger, Settings::batch(10));
        h.queue_with(keyed("k3", 3)); // governance sends them again
        h.queue_with(keyed("k4", 4));
        let hold = tick_or_hold(&mut h);
        assert_eq!(
            hold,
            Some(Hold::NonceDrift {
                store: 2,
                ledger: 4
            })
        );
        for _ in 0..3 {
            assert!(
                tick_or_hold(&mut h).is_some(),
                "holds until an operator decides"
            );
        }
        assert_eq!(h.ledger.payments().len(), 4, "nothing paid twice");
    }

    /// Failure mode 5: the chain id is pinned in the store at first contact and compared
    /// again after every failure (the next call may reach another endpoint). An endpoint
    /// on another network halts the executor before it looks anything up, so nothing is
    /// cancelled or re-signed there; a restart against the right chain goes on.
    #[test]
    fn another_network_halts_before_any_lookup() {
        let mut h = chain(Finality::Confirmations(1));
        let id = h.queue("a", 3);
        h.tick();
        assert_eq!(
            h.store().chain_id().expect("chain id"),
            Some("scripted-1".into())
        );
        h.ledger.set_chain_id("31337");
        h.ledger.reads_down(Some(LedgerError::Timeout));
        h.tick(); // a failure: the next call may reach another endpoint
        h.ledger.reads_down(None);
        let reads = h.ledger.reads();
        let error = h.executor.tick().expect_err("halts");
        assert_eq!(
            error,
            TreasuryExecutorError::ChainMismatch {
                pinned: "scripted-1".into(),
                endpoint: "31337".into()
            }
        );
        assert_eq!(h.ledger.reads(), reads + 1, "only the chain id was read");
        assert!(matches!(
            h.executor.tick(),
            Err(TreasuryExecutorError::Halted(_))
        ));
        assert!(matches!(h.status(id), DisbursementStatus::Submitted { .. }));
        h.ledger.set_chain_id("scripted-1");
        let mut h = h.restart();
        h.ledger.mine();
        h.drain();
        h.assert_paid_exactly_once(&[(id, 3)]);
    }

    /// An operator cancels a submitted payment: it is bound to its nonce, so a zero-value
    /// cancellation replaces it there, and it becomes Cancelled only when that lands.
    #[test]
    fn an_operator_cancels_by_replacement() {
        let mut h = chain(Finality::Confirmations(2));
        h.ledger.set_base_fee(Some(10));
        let id = h.queue("a", 3);
        let child = h.queue_with(NewDisbursement {
            depends_on: vec![id],
            ..request("b", 1)
        });
        h.tick();
        let outcome = h.store().cancel(id, "wrong grantee").expect("cancel");
        let Cancellation::Replacing(record) = outcome else {
            panic!("{outcome:?}");
        };
        assert!(
            matches!(&record.status, DisbursementStatus::Submitted { cancelling: Some(why), .. } if why == "wrong grantee"),
            "{:?}",
            record.status
        );
        h.tick();
        let intent = h.first_intent();
        assert_eq!(intent.latest().kind, AttemptKind::Cancellation);
        assert!(
            intent.latest().tx.fees.max_fee_per_gas
                >= intent.attempts[0].tx.fees.bumped(20).max_fee_per_gas,
            "a replacement must outbid the payment"
        );
        h.ledger.mine();
        h.tick();
        assert!(
            matches!(
                &h.status(id),
                DisbursementStatus::Included {
                    cancelling: Some(_),
                    ..
                }
            ),
            "{:?}",
            h.status(id)
        );
        h.ledger.mine();
        h.tick();
        match h.status(id) {
            DisbursementStatus::Cancelled { reason } => {
                assert!(reason.contains("cancelled by replacement"), "{reason}");
                assert!(reason.contains("wrong grantee"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            h.status(child),
            DisbursementStatus::Cancelled { .. }
        ));
        assert!(h.ledger.payments().is_empty(), "nothing was paid");
        assert_eq!(h.ledger.height(), 2);
        // The nonce is spent: the next payment takes the one after it.
        let next = h.queue("c", 5);
        h.tick();
        h.ledger.mine();
        h.ledger.mine();
        h.tick();
        assert_eq!(h.ledger.payments()[0].nonce, 1);
        h.assert_paid(&[(next, 5)]);
    }

    /// If the payment lands before its cancellation, it is paid (Executed), once.
    #[test]
    fn a_payment_that_lands_before_its_cancellation_is_executed() {
        let mut h = chain(Finality::Confirmations(1));
        let id = h.queue("a", 3);
        h.tick();
        h.ledger.mine(); // the payment is in
        assert!(matches!(
            h.store().cancel(id, "too late"),
            Ok(Cancellation::Replacing(_))
        ));
        h.tick();
        h.assert_paid_exactly_once(&[(id, 3)]);
        assert!(
            h.ledger
                .taken()
                .iter()
                .all(|t| t.kind == AttemptKind::Payment),
            "no cancellation was signed for a payment already in a block"
        );
    }

    /// An operator cancels a staged payment that never left the node: cancelled at once,
    /// its nonce reused, no replacement signed.
    #[test]
    fn a_staged_payment_that_never_left_is_cancelled_outright() {
        let mut h = chain(Finality::Confirmations(1));
        let a = h.queue("a", 1);
        let b = h.queue("b", 2);
        h.ledger.down(LedgerError::Unreachable("refused".into()));
        h.breaker.force_open();
        h.tick(); // the breaker refuses: nothing is staged
        h.breaker.reset();
        h.ledger.up();
        h.executor.crash_at(Some(CrashPoint::AfterStage));
        assert!(h.executor.tick().is_err());
        h.executor.crash_at(None);
        // Staged in this process, never handed over. (A restart would bind them.)
        assert!(matches!(h.status(a), DisbursementStatus::Staged { .. }));
        assert!(matches!(
            h.store().cancel(a, "duplicate"),
            Ok(Cancellation::Replacing(_))
        ));
        h.tick();
        h.ledger.mine();
        h.tick();
        assert!(
            matches!(h.status(a), DisbursementStatus::Cancelled { .. }),
            "{:?}",
            h.status(a)
        );
        let taken = h.ledger.taken();
        assert_eq!(taken.len(), 1, "{taken:?}");
        assert_eq!(
            (taken[0].id, taken[0].nonce),
            (b, 0),
            "b took the nonce back"
        );
        h.assert_paid_exactly_once(&[(b, 2)]);
    }

    /// "Nonce too low" on a payment's first hand-over is what a node says of bytes
    /// already mined: a proxy or load balancer that retried the hand-over (or a second
    /// endpoint) may have put this very transaction in a block. The intent stays bound to
    /// its nonce, the lookups find the payment, and nothing is signed again. (Given back,
    /// its hash would be forgotten: re-signed, refused again, and the nonce drift that
    /// follows would invite an operator to pay it a second time.)
    #[test]
    fn nonce_too_low_on_a_first_hand_over_binds_the_payment() {
        let ledger = Arc::new(ScriptedLedger::default());
        let mut h = with(Settings::batch(10), ledger);
        let id = h.queue("a", 3);
        h.ledger
            .push_faults([Fault::AcceptThenFail(LedgerError::NonceTooLow)]);
        let report = h.tick(); // mined; the answer: "nonce too low"
        assert_eq!(report.ambiguous, 1, "{report:?}");
        let intent = h.first_intent();
        assert!(
            intent.bound && intent.attempts.len() == 1,
            "bound, one attempt: {intent:?}"
        );
        h.drain();
        h.assert_paid_exactly_once(&[(id, 3)]);
        assert_eq!(h.ledger.taken().len(), 1, "signed and taken once");
        assert!(h.executor.snapshot().hold.is_none());
    }

    /// A "nonce too low" that is true: a stranger spent the nonce before the payment's
    /// first hand-over. The executor does not take the refusal's word for whose it was:
    /// the block that spent the nonce names a stranger's transaction, so it holds until
    /// an operator resolves it; `not_paid` then pays it once, at the next nonce.
    #[test]
    fn a_nonce_a_stranger_spent_before_the_first_hand_over_holds() {
        let mut h = chain(Finality::Confirmations(1));
        let id = h.queue("a", 3);
        h.ledger
            .push_faults([Fault::Fail(LedgerError::NonceTooLow)]);
        h.tick(); // refused: "nonce too low"
        h.ledger.consume_nonce(); // the stranger's transaction at nonce 0, mined
        let hold = tick_or_hold(&mut h).expect("holds");
        assert!(
            matches!(
                &hold,
                Hold::ForeignNonce { id: held, nonce: 0, spent_by: Some(_), .. } if *held == id
            ),
            "{hold:?}"
        );
        let not_paid = Action::Resolve {
            resolution: Resolution::NotPaid,
        };
        decide(h.store(), not_paid, "the stranger was a test").expect("decide");
        h.tick(); // applies it: queued again
        h.tick(); // signed at nonce 1
        h.ledger.mine();
        h.tick();
        h.assert_paid(&[(id, 3)]);
        assert_eq!(h.ledger.payments()[0].nonce, 1, "nonce 0 is the stranger's");
    }

    /// A stranger spends a payment's nonce (another sender on the key) while the payment
    /// sits in the pool: none of ours is in the block at depth, so the executor holds,
    /// naming the disbursement, the nonce and the hashes, until an operator resolves it.
    /// `not_paid` queues it again for a fresh nonce; it is then paid once.
    #[test]
    fn a_nonce_spent_by_a_stranger_holds_until_resolved() {
        let mut h = chain(Finality::Confirmations(2));
        let id = h.queue("a", 3);
        h.tick();
        let hash = h.first_intent().latest().tx.tx_hash.clone();
        h.ledger.consume_nonce(); // block 1: a stranger's transaction at nonce 0
        assert_eq!(tick_or_hold(&mut h), None, "not at depth yet: it waits");
        h.ledger.mine();
        let hold = tick_or_hold(&mut h).expect("holds");
        let Hold::ForeignNonce {
            id: held,
            nonce: 0,
            chain_nonce: 1,
            attempts,
            spent_by: Some(stranger),
        } = &hold
        else {
            panic!("{hold:?}");
        };
        assert_eq!((*held, attempts), (id, &vec![hash.clone()]));
        assert_ne!(
            stranger, &hash,
            "the block names the stranger's transaction"
        );
        let halted = h.executor.snapshot().halted.clone().expect("halted");
        assert!(
            halted.contains(&hash)
                && halted.contains("nonce 0")
                && halted.contains(stranger.as_str()),
            "{halted}"
        );
        let not_paid = || Action::Resolve {
            resolution: Resolution::NotPaid,
        };
        decide(h.store(), not_paid(), "the stranger was a test").expect("decide");
        assert!(h.store().decision().expect("decision").is_some(), "waiting");
        assert!(
            matches!(h.status(id), DisbursementStatus::Submitted { .. }),
            "nothing changes before the executor's tick"
        );
        h.tick(); // applies it: queued again (signed at a fresh nonce by the next tick)
        assert_eq!(h.store().decision().expect("decision"), None);
        assert_eq!(h.status(id), DisbursementStatus::Queued);
        h.tick();
        for _ in 0..2 {
            h.ledger.mine();
            h.tick();
        }
        h.assert_paid(&[(id, 3)]);
        assert_eq!(h.ledger.payments()[0].nonce, 1);
        assert!(h.executor.snapshot().hold.is_none());
    }

    /// `paid`: the operator found the payment; it is Executed with their reason, and its
    /// dependents go on.
    #[test]
    fn a_nonce_resolved_as_paid_is_executed() {
        let mut h = chain(Finality::Confirmations(1));
        let id = h.queue("a", 3);
        let child = h.queue_with(NewDisbursement {
            depends_on: vec![id],
            ..request("b", 1)
        });
        h.tick();
        h.ledger.drop_pool();
        h.ledger.consume_nonce();
        assert!(tick_or_hold(&mut h).is_some());
        decide(
            h.store(),
            Action::Resolve {
                resolution: Resolution::Paid {
                    tx_hash: Some("0xfound".into()),
                },
            },
            "paid from the cold wallet",
        )
        .expect("decide");
        h.tick(); // applied
        let record = h.store().get(id).expect("get").expect("record");
        assert!(
            matches!(&record.status, DisbursementStatus::Executed { tx_hash, resolution: Some(why), .. }
                if tx_hash == "0xfound" && why.contains("cold wallet")),
            "{:?}",
            record.status
        );
        h.tick();
        h.ledger.mine();
        h.tick();
        h.assert_paid(&[(child, 1)]);
    }

    /// A business refusal of a transaction that may already be out there (its first
    /// answer was lost) cannot cancel it: the executor holds for an operator, whose cancel
    /// goes out as a cancellation at its nonce.
    #[test]
    fn a_refused_bound_payment_holds_until_an_operator_cancels_it() {
        let mut h = chain(Finality::Confirmations(1));
        let id = h.queue("a", 3);
        h.ledger
            .push_faults([Fault::AcceptThenFail(LedgerError::Timeout)]);
        h.tick(); // in the pool; the answer was lost
        h.ledger.drop_pool();
        h.ledger
            .push_faults([Fault::Fail(LedgerError::Rejected("rules".into()))]);
        let hold = tick_or_hold(&mut h).expect("holds");
        assert!(
            matches!(&hold, Hold::Refused { id: held, nonce: 0, reason } if *held == id && reason.contains("rules")),
            "{hold:?}"
        );
        assert!(matches!(h.status(id), DisbursementStatus::Submitted { .. }));
        assert!(matches!(
            h.store().cancel(id, "refused by the rules"),
            Ok(Cancellation::Replacing(_))
        ));
        h.tick(); // the cancellation goes out: no refusal, the hold lifts
        assert_eq!(h.executor.snapshot().hold, None);
        h.ledger.mine();
        h.tick();
        assert!(matches!(h.status(id), DisbursementStatus::Cancelled { .. }));
        assert!(h.ledger.payments().is_empty());
        h.assert_one_nonce_per_disbursement();
    }

    /// A store opened after a crash binds every intent: the process may have handed any
    /// over before it died. A refusal then never gives the nonce back.
    #[test]
    fn after_a_crash_staged_intents_are_bound() {
        let mut h = chain(Finality::Confirmations(1));
        let a = h.queue("a", 1);
        let b = h.queue("b", 2);
        h.executor.crash_at(Some(CrashPoint::AfterStage));
        assert!(h.executor.tick().is_err());
        let mut h = h.restart();
        h.ledger
            .push_faults([Fault::Fail(LedgerError::InvalidDestination("a".into()))]);
        let hold = tick_or_hold(&mut h);
        assert!(
            h.store()
                .intents()
                .expect("intents")
                .iter()
                .all(|i| i.bound),
            "the first tick binds them before it hands anything over"
        );
        assert!(
            matches!(hold, Some(Hold::Refused { nonce: 0, .. })),
            "not given back: {hold:?}"
        );
        assert!(matches!(
            h.status(a),
            DisbursementStatus::Staged { nonce: 0, .. }
        ));
        h.store().cancel(a, "invalid").expect("cancel");
        for _ in 0..3 {
            h.tick();
            h.ledger.mine();
        }
        h.tick();
        assert!(matches!(h.status(a), DisbursementStatus::Cancelled { .. }));
        h.assert_paid(&[(b, 2)]);
        h.assert_one_nonce_per_disbursement();
    }

    /// With `wait_for_finalized`, a payment is Executed once the chain finalizes its block.
    #[test]
    fn finality_by_the_chains_finalized_block() {
        let mut h = chain(Finality::Finalized);
        h.ledger.set_finality_lag(3);
        let id = h.queue("a", 1);
        h.tick();
        for _ in 0..3 {
            h.ledger.mine();
            h.tick();
            assert!(
                matches!(h.status(id), DisbursementStatus::Included { .. }),
                "{:?}",
                h.status(id)
            );
        }
        h.ledger.mine();
        h.tick();
        h.assert_paid_exactly_once(&[(id, 1)]);
    }

    fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read dir") {
            let entry = entry.expect("entry");
            let target = to.join(entry.file_name());
            if entry.file_type().expect("type").is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).expect("copy");
            }
        }
    }

    /// A busy chain moves while a tick runs: the tick reads the head, then finds its
    /// lowest payment in a block mined after that head, and the next payment not in a
    /// block at all. The chain's next nonce at the head it read is below that next
    /// payment's, but the nonces between are ours (just mined): no gap, no hold. (Found
    /// by the node bench paying 5,000 on anvil: a false nonce-gap hold on every few
    /// ticks.)
    #[test]
    fn a_payment_mined_after_the_ticks_head_is_no_nonce_gap() {
        let mut h = chain(Finality::Confirmations(1));
        // `a` is signed while fees are high, `b` once they fell: both wait in the pool.
        h.ledger.set_base_fee(Some(1_000));
        let a = h.queue("a", 1);
        h.tick();
        h.ledger.set_base_fee(Some(1));
        let b = h.queue("b", 2);
        h.tick();
        assert_eq!(h.ledger.pool_size(), 2);
        // An empty block (fees above both), so that the next tick looks everything up.
        h.ledger.set_base_fee(Some(1_000_000));
        h.ledger.mine();
        // Fees fall between the two: a block would take `a` and leave `b`. The next tick
        // reads the head, then that block is mined before its lookups.
        h.ledger.set_base_fee(Some(500));
        h.ledger.mine_after_reads(2);
        let hold = tick_or_hold(&mut h);
        assert_eq!(
            hold, None,
            "nonce 0 is ours, mined after the head the tick read"
        );
        assert!(
            matches!(
                h.status(a),
                DisbursementStatus::Executed { .. } | DisbursementStatus::Included { .. }
            ),
            "{:?}",
            h.status(a)
        );
        h.ledger.set_base_fee(None);
        h.ledger.set_auto_mine(true);
        h.ledger.mine();
        h.drain();
        h.assert_paid_exactly_once(&[(a, 1), (b, 2)]);
    }

    /// Under an unchanged head, payments waiting in the pool are not looked up again:
    /// nothing about them can change until a block comes. A new block looks again.
    #[test]
    fn a_waiting_payment_is_looked_up_once_per_head() {
        let mut h = chain(Finality::Confirmations(2));
        let ids: Vec<_> = (0..5).map(|i| h.queue(&format!("d{i}"), 1 + i)).collect();
        h.tick(); // handed over: in the pool
        let reads = |h: &mut Harness| {
            let before = h.ledger.reads();
            h.tick();
            h.ledger.reads() - before
        };
        let looked = reads(&mut h);
        let quiet = reads(&mut h);
        assert!(
            quiet + 5 <= looked,
            "the second tick under one head skips the 5 lookups: {looked} then {quiet}"
        );
        assert_eq!(reads(&mut h), quiet, "and so does every later one");
        h.ledger.mine(); // in a block, 1 confirmation of 2
        let included = reads(&mut h);
        assert!(
            included >= quiet + 5,
            "a new head: looked at again ({included})"
        );
        // Their block's hash, read once for the five (they share the block).
        let confirming = reads(&mut h);
        assert!(
            reads(&mut h) < confirming,
            "in a block, not deep enough: quiet too ({confirming} before)"
        );
        h.ledger.mine();
        h.tick();
        let expected: Vec<_> = ids
            .iter()
            .zip(1..)
            .map(|(&id, amount)| (id, amount))
            .collect();
        h.assert_paid_exactly_once(&expected);
    }
}
