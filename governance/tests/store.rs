//! The store: queueing rules, idempotency, operator cancels, the audit log, and corrupt
//! bytes in every tree (an error naming the tree and key, the executor halted, no panic).
#![cfg(not(loom))]

mod common;

mod store {
    use std::sync::Arc;

    use governance::testing::ScriptedLedger;
    use governance::{
        Cancellation, CircuitBreaker, CircuitBreakerConfig, DisbursementStatus, GovStore,
        NewDisbursement, QueueError, RequestError, StoreError, TreasuryExecutor,
        TreasuryExecutorConfig, TreasuryExecutorError,
    };

    use crate::common::request;

    /// The store on each engine: every test here runs on both.
    fn stores() -> Vec<GovStore> {
        vec![
            GovStore::open_temporary().expect("a store on sled"),
            GovStore::in_memory(),
        ]
    }

    fn executor(store: &GovStore) -> TreasuryExecutor {
        let breaker = Arc::new(CircuitBreaker::new(CircuitBreakerConfig::default()));
        let config = TreasuryExecutorConfig::new("test");
        TreasuryExecutor::new(
            config,
            breaker,
            store.clone(),
            Arc::new(ScriptedLedger::default()),
        )
        .expect("executor")
    }

    #[test]
    fn ids_are_allocated_in_order_and_records_round_trip() {
        for store in stores() {
            let a = store
                .queue(&request("a", 1), 5)
                .expect("queue")
                .disbursement;
            let b = store
                .queue(&request("b", u128::MAX), 6)
                .expect("queue")
                .disbursement;
            assert_eq!((a.id, b.id), (0, 1));
            assert_eq!(
                store.get(1).expect("get"),
                Some(b.clone()),
                "u128::MAX survives the round trip"
            );
            assert_eq!(
                store.list(None, 10).expect("list"),
                vec![a.clone(), b.clone()]
            );
            assert_eq!(store.list(Some(0), 10).expect("list"), vec![b]);
            assert_eq!(store.get(7).expect("get"), None);
        }
    }

    #[test]
    fn queueing_an_external_key_twice_returns_the_first() {
        for store in stores() {
            let keyed = NewDisbursement {
                external_key: Some("proposal-42".into()),
                asset: "native".into(),
                ..request("a", 1)
            };
            let first = store.queue(&keyed, 0).expect("queue");
            assert!(first.created);
            let again = store
                .queue(
                    &NewDisbursement {
                        amount: 99,
                        ..keyed
                    },
                    0,
                )
                .expect("queue");
            assert!(!again.created);
            assert_eq!(again.disbursement, first.disbursement);
            assert_eq!(store.list(None, 10).expect("list").len(), 1);
        }
    }

    #[test]
    fn invalid_requests_are_refused_with_the_reason_and_store_nothing() {
        for store in stores() {
            let refused = [
                (request("a", 0), QueueError::ZeroAmount),
                (
                    NewDisbursement {
                        depends_on: vec![3],
                        ..request("a", 1)
                    },
                    QueueError::UnknownDependency(3),
                ),
            ];
            for (new, reason) in refused {
                assert_eq!(store.queue(&new, 0), Err(RequestError::Invalid(reason)));
            }
            let parent = store
                .queue(&request("a", 1), 0)
                .expect("queue")
                .disbursement
                .id;
            store.cancel(parent, "changed our minds").expect("cancel");
            assert_eq!(
                store.queue(
                    &NewDisbursement {
                        depends_on: vec![parent],
                        ..request("b", 1)
                    },
                    0
                ),
                Err(RequestError::Invalid(QueueError::CancelledDependency(
                    parent
                )))
            );
            assert_eq!(
                store.list(None, 10).expect("list").len(),
                1,
                "nothing else stored"
            );
            let next = store
                .queue(&request("c", 1), 0)
                .expect("queue")
                .disbursement
                .id;
            assert_eq!(next, 1, "refusals consumed no id");
        }
    }

    #[test]
    fn a_batch_is_queued_whole_in_order_with_keys_deduplicated() {
        for store in stores() {
            let first = store
                .queue(&request("a", 1), 0)
                .expect("queue")
                .disbursement;
            let keyed = |key: &str, amount| NewDisbursement {
                external_key: Some(key.into()),
                asset: "native".into(),
                ..request("b", amount)
            };
            let dependent = NewDisbursement {
                depends_on: vec![first.id],
                ..request("c", 3)
            };
            let queued = store
                .queue_batch(&[keyed("k1", 2), dependent, keyed("k1", 9)], 0)
                .expect("batch");
            let ids: Vec<(u64, bool)> = queued
                .iter()
                .map(|q| (q.disbursement.id, q.created))
                .collect();
            assert_eq!(ids, vec![(1, true), (2, true), (1, false)]);
            assert_eq!(
                queued[2].disbursement.amount, 2,
                "the first of the key wins"
            );
            let again = store.queue(&keyed("k1", 5), 0).expect("queue");
            assert_eq!((again.disbursement.id, again.created), (1, false));
            assert_eq!(store.list(None, 10).expect("list").len(), 3);
            assert_eq!(
                store
                    .queue(&request("d", 1), 0)
                    .expect("queue")
                    .disbursement
                    .id,
                3
            );
        }
    }

    #[test]
    fn an_invalid_item_refuses_the_whole_batch_naming_it() {
        for store in stores() {
            let unknown_dep = NewDisbursement {
                depends_on: vec![7],
                ..request("b", 1)
            };
            let error = store
                .queue_batch(&[request("a", 1), unknown_dep], 0)
                .expect_err("unknown dependency");
            assert_eq!(
                error,
                RequestError::InvalidItem {
                    index: 1,
                    error: QueueError::UnknownDependency(7)
                }
            );
            let error = store
                .queue_batch(&[request("a", 1), request("b", 0)], 0)
                .expect_err("zero amount");
            assert_eq!(
                error.to_string(),
                "item 1: amount must be greater than zero"
            );
            assert!(
                store.list(None, 10).expect("list").is_empty(),
                "nothing stored"
            );
            assert_eq!(store.backlog().expect("backlog").scheduled, 0);
            assert_eq!(
                store
                    .queue(&request("a", 1), 0)
                    .expect("queue")
                    .disbursement
                    .id,
                0
            );
        }
    }

    #[test]
    fn operators_cancel_queued_disbursements_and_their_dependents() {
        for store in stores() {
            let parent = store
                .queue(&request("a", 1), 0)
                .expect("queue")
                .disbursement
                .id;
            let child = store
                .queue(
                    &NewDisbursement {
                        depends_on: vec![parent],
                        ..request("b", 1)
                    },
                    0,
                )
                .expect("queue")
                .disbursement
                .id;
            let Cancellation::Done(cancelled) =
                store.cancel(parent, "duplicate grant").expect("cancel")
            else {
                panic!("a queued disbursement is cancelled at once");
            };
            assert_eq!(
                cancelled.status,
                DisbursementStatus::Cancelled {
                    reason: "duplicate grant".into()
                }
            );
            assert!(matches!(
                store.get(child).expect("get").expect("child").status,
                DisbursementStatus::Cancelled { .. }
            ));
            assert_eq!(
                store.cancel(parent, "again"),
                Err(RequestError::NotCancellable {
                    id: parent,
                    status: "cancelled"
                })
            );
            assert_eq!(store.cancel(99, "?"), Err(RequestError::NotFound(99)));
            assert_eq!(
                store.backlog().expect("backlog").scheduled,
                0,
                "out of the indexes"
            );
        }
    }

    #[test]
    fn the_audit_log_keeps_who_what_why_when() {
        for store in stores() {
            store
                .record_audit(
                    "ops",
                    "breaker.force_open",
                    "rpc maintenance",
                    "closed -> open",
                    1_000,
                )
                .expect("audit");
            store
                .record_audit("ops", "breaker.reset", "done", "open -> closed", 2_000)
                .expect("audit");
            let log = store.audit(None, 10).expect("audit");
            assert_eq!(log.len(), 2);
            assert_eq!(
                (log[0].seq, log[0].actor.as_str(), log[0].reason.as_str()),
                (0, "ops", "rpc maintenance")
            );
            assert_eq!(
                store.audit(Some(0), 10).expect("audit")[0].action,
                "breaker.reset"
            );
        }
    }

    fn assert_corrupt(error: &StoreError, tree: &str, key: &str) {
        match error {
            StoreError::Corrupt {
                kind: t, key: k, ..
            } => {
                assert_eq!((*t, k.as_str()), (tree, key), "{error}");
                assert!(
                    error.to_string().contains(tree) && error.to_string().contains(key),
                    "{error}"
                );
            }
            other => panic!("expected corruption in {tree} at {key}, got {other}"),
        }
    }

    fn assert_halts_on(executor: &mut TreasuryExecutor, tree: &str, key: &str) {
        let mut ticks = 0;
        let error = loop {
            match executor.tick() {
                Err(error) => break error,
                Ok(_) if ticks < 5 => ticks += 1,
                Ok(report) => panic!("never halted: {report:?}"),
            }
        };
        match &error {
            TreasuryExecutorError::Storage(error) => assert_corrupt(error, tree, key),
            other => panic!("{other}"),
        }
        let halted = executor.snapshot().halted.clone().expect("halted");
        assert!(halted.contains(key), "{halted}");
        assert!(matches!(
            executor.tick(),
            Err(TreasuryExecutorError::Halted(_))
        ));
    }

    const GARBAGE: &[u8] = b"\xff{not json";

    #[test]
    fn corrupt_disbursement_halts_the_executor_naming_the_key() {
        for store in stores() {
            store.queue(&request("a", 1), 0).expect("queue");
            store
                .raw_insert("disbursements", &0u64.to_be_bytes(), GARBAGE)
                .expect("damage");
            assert_corrupt(&store.get(0).expect_err("corrupt"), "disbursements", "0");
            assert_halts_on(&mut executor(&store), "disbursements", "0");
        }
    }

    #[test]
    fn corrupt_dependents_halts_the_executor_naming_the_key() {
        for store in stores() {
            let parent = store
                .queue(&request("a", 1), 0)
                .expect("queue")
                .disbursement
                .id;
            store
                .queue(
                    &NewDisbursement {
                        depends_on: vec![parent],
                        ..request("b", 1)
                    },
                    0,
                )
                .expect("queue");
            store
                .raw_insert("dependents", &parent.to_be_bytes(), GARBAGE)
                .expect("damage");
            assert_halts_on(&mut executor(&store), "dependents", "0");
        }
    }

    #[test]
    fn corrupt_index_keys_halt_the_executor_naming_the_key() {
        for tree in ["scheduled", "ready"] {
            for store in stores() {
                // Sorts first, so that every scan meets it.
                store.raw_insert(tree, b"\0\0\0", b"").expect("damage");
                assert_halts_on(&mut executor(&store), tree, &format!("{:?}", "\0\0\0"));
            }
        }
    }

    #[test]
    fn corrupt_intent_halts_the_executor_naming_the_key() {
        for store in stores() {
            store
                .raw_insert("intents", &7u64.to_be_bytes(), GARBAGE)
                .expect("damage");
            assert_halts_on(&mut executor(&store), "intents", "7");
        }
    }

    #[test]
    fn corrupt_meta_records_are_named() {
        for store in stores() {
            store
                .raw_insert("meta", b"next_nonce", b"xyz")
                .expect("damage");
            assert_halts_on(&mut executor(&store), "meta", "\"next_nonce\"");
        }

        for store in stores() {
            store
                .raw_insert("meta", b"breaker", GARBAGE)
                .expect("damage");
            let breaker = Arc::new(CircuitBreaker::new(CircuitBreakerConfig::default()));
            let error = TreasuryExecutor::new(
                TreasuryExecutorConfig::new("test"),
                breaker,
                store.clone(),
                Arc::new(ScriptedLedger::default()),
            )
            .expect_err("a corrupt breaker snapshot stops the start");
            assert_corrupt(&error, "meta", "\"breaker\"");
        }
    }

    #[test]
    fn corrupt_external_key_and_audit_records_are_named() {
        for store in stores() {
            let keyed = NewDisbursement {
                external_key: Some("k".into()),
                asset: "native".into(),
                ..request("a", 1)
            };
            store.queue(&keyed, 0).expect("queue");
            store
                .raw_insert("external_keys", b"k", b"123")
                .expect("damage");
            match store.queue(&keyed, 0) {
                Err(RequestError::Storage(error)) => {
                    assert_corrupt(&error, "external_keys", "\"k\"")
                }
                other => panic!("{other:?}"),
            }
            store
                .raw_insert("audit", &0u64.to_be_bytes(), GARBAGE)
                .expect("damage");
            assert_corrupt(&store.audit(None, 10).expect_err("corrupt"), "audit", "0");
        }
    }

    /// Operators queue (with overlapping external keys) and cancel from several threads
    /// while the executor ticks, each through its own `GovStore` over one engine (as
    /// processes sharing a replicated store would: nothing serialises their transactions
    /// but the engine's conditions). Ids are allocated once each with no gap, an external
    /// key names one disbursement whoever queued it, every disbursement is paid exactly
    /// once or cancelled, never both, and the totals are the records' counts.
    #[test]
    fn concurrent_requests_and_ticks_keep_every_invariant() {
        use governance::store::engine::{KeySpace, MemoryKeySpace, SledKeySpace};
        const THREADS: usize = 3;
        const BATCHES: usize = 20;
        let spaces: Vec<Arc<dyn KeySpace>> = vec![
            Arc::new(SledKeySpace::temporary().expect("sled")),
            Arc::new(MemoryKeySpace::new()),
        ];
        for space in spaces {
            let store = GovStore::with_space(Arc::clone(&space));
            let own_store = || GovStore::with_space(Arc::clone(&space));
            let ledger = Arc::new(ScriptedLedger::new(u128::MAX / 2));
            let breaker = Arc::new(CircuitBreaker::new(CircuitBreakerConfig::default()));
            let mut config = TreasuryExecutorConfig::new("race");
            config.batch_size = 7;
            let mut executor =
                TreasuryExecutor::new(config, breaker, store.clone(), Arc::clone(&ledger) as _)
                    .expect("executor");
            let done = std::sync::atomic::AtomicBool::new(false);
            let queued: Vec<Vec<(String, u64)>> = std::thread::scope(|scope| {
                let queuers: Vec<_> = (0..THREADS)
                    .map(|thread| {
                        let store = own_store();
                        scope.spawn(move || {
                            let mut keys = vec![];
                            for batch in 0..BATCHES {
                                // Key `k{batch}-{n}` is queued by every thread.
                                let items: Vec<NewDisbursement> = (0..5)
                                    .map(|n| NewDisbursement {
                                        external_key: Some(format!("k{batch}-{n}")),
                                        asset: "native".into(),
                                        ..request(&format!("t{thread}"), 1)
                                    })
                                    .collect();
                                for queued in store.queue_batch(&items, 0).expect("queue") {
                                    let d = queued.disbursement;
                                    keys.push((d.external_key.expect("key"), d.id));
                                }
                            }
                            keys
                        })
                    })
                    .collect();
                let cancelling = own_store();
                let done = &done;
                let canceller = scope.spawn(move || {
                    let store = cancelling;
                    let mut id = 0;
                    while !done.load(std::sync::atomic::Ordering::SeqCst) {
                        match store.cancel(id, "race") {
                            Ok(_)
                            | Err(RequestError::NotFound(_))
                            | Err(RequestError::NotCancellable { .. }) => {}
                            Err(other) => panic!("cancel: {other}"),
                        }
                        id = (id + 7) % 100;
                    }
                });
                let ticker = scope.spawn(|| {
                    while !done.load(std::sync::atomic::Ordering::SeqCst) {
                        executor.tick().expect("tick");
                    }
                });
                let keys = queuers
                    .into_iter()
                    .map(|thread| thread.join().expect("queuer"))
                    .collect();
                done.store(true, std::sync::atomic::Ordering::SeqCst);
                canceller.join().expect("canceller");
                ticker.join().expect("ticker");
                keys
            });
            for _ in 0..100 {
                if store.backlog().expect("backlog").total() == 0 {
                    break;
                }
                executor.tick().expect("tick");
            }
            assert_eq!(store.backlog().expect("backlog").total(), 0, "drained");

            // One id per key, whoever queued it; ids 0..n with no gap.
            let mut by_key = std::collections::BTreeMap::new();
            for (key, id) in queued.into_iter().flatten() {
                assert_eq!(*by_key.entry(key.clone()).or_insert(id), id, "{key}");
            }
            let all = store.list(None, 10_000).expect("list");
            assert_eq!(all.len(), BATCHES * 5, "{}", store.engine());
            assert!(all.iter().enumerate().all(|(i, d)| d.id == i as u64));
            assert_eq!(
                store.totals().expect("totals"),
                store.count_by_status().expect("count"),
                "the totals kept under racing writers are the records' counts"
            );
            let payments = ledger.payments();
            for record in &all {
                let paid = payments.iter().filter(|p| p.id == record.id).count();
                match &record.status {
                    DisbursementStatus::Executed { .. } => assert_eq!(paid, 1, "{}", record.id),
                    DisbursementStatus::Cancelled { .. } => assert_eq!(paid, 0, "{}", record.id),
                    other => panic!("{} left {other:?}", record.id),
                }
            }
        }
    }

    /// A store fenced by a writer's token writes nothing once another writer holds the
    /// fence: every write fails with `Fenced`, and the records are as they were.
    #[test]
    fn a_fenced_store_stops_writing_when_the_fence_moves() {
        use governance::store::engine::{Fence, KeySpace, MemoryKeySpace, Op};
        let space = Arc::new(MemoryKeySpace::new());
        let elect = |token: u64| {
            let batch = governance::store::engine::Batch {
                ops: vec![Op::Put(b"leader".to_vec(), token.to_be_bytes().to_vec())],
                ..Default::default()
            };
            space.apply(&batch).expect("elect");
        };
        elect(1);
        let store = GovStore::with_space(space.clone()).fenced(Fence {
            key: b"leader".to_vec(),
            token: 1,
        });
        let first = store.queue(&request("a", 1), 0).expect("the leader queues");
        elect(2);
        match store.queue(&request("b", 1), 0) {
            Err(RequestError::Storage(StoreError::Fenced { token: 1, .. })) => {}
            other => panic!("expected Fenced, got {other:?}"),
        }
        match store.cancel(first.disbursement.id, "deposed") {
            Err(RequestError::Storage(StoreError::Fenced { .. })) => {}
            other => panic!("expected Fenced, got {other:?}"),
        }
        assert!(matches!(
            store.record_audit("ops", "x", "y", "z", 0),
            Err(StoreError::Fenced { .. })
        ));
        let unfenced = GovStore::with_space(space);
        assert_eq!(
            unfenced.list(None, 10).expect("list"),
            vec![first.disbursement],
            "nothing written after the fence moved"
        );
        assert!(unfenced.audit(None, 10).expect("audit").is_empty());
    }

    /// An audited request writes its change and its audit record together; a refused
    /// or invalid one writes neither.
    #[test]
    fn audited_requests_write_the_change_and_its_record_together() {
        use governance::Audit;
        for store in stores() {
            let ops = Audit {
                actor: "ops".into(),
                reason: String::new(),
                at_ms: 7,
                unverified_actor: None,
            };
            let too_long = NewDisbursement {
                memo: "m".repeat(governance::treasury::MAX_MEMO_BYTES + 1),
                ..request("a", 1)
            };
            assert!(matches!(
                store.queue_audited(&too_long, 0, &ops),
                Err(RequestError::Invalid(_))
            ));
            assert!(store.audit(None, 10).expect("audit").is_empty());

            let queued = store
                .queue_audited(&request("a", 1), 0, &ops)
                .expect("queue");
            let id = queued.disbursement.id;
            let again = NewDisbursement {
                external_key: Some("k".into()),
                asset: "native".into(),
                ..request("b", 2)
            };
            store.queue_audited(&again, 0, &ops).expect("queue");
            store.queue_audited(&again, 0, &ops).expect("known key");
            let cancel = Audit {
                reason: "duplicate".into(),
                ..ops.clone()
            };
            store.cancel_audited(id, &cancel).expect("cancel");
            assert!(matches!(
                store.cancel_audited(id, &cancel),
                Err(RequestError::NotCancellable { .. })
            ));
            let log = store.audit(None, 10).expect("audit");
            let actions: Vec<(&str, &str)> = log
                .iter()
                .map(|r| (r.action.as_str(), r.reason.as_str()))
                .collect();
            assert_eq!(
                actions,
                [
                    ("disbursement.queue", ""),
                    ("disbursement.queue", ""),
                    ("disbursement.cancel", "duplicate")
                ],
                "one record per change, none for a known key or a refusal ({})",
                store.engine()
            );
            assert!(log.iter().all(|r| r.actor == "ops" && r.at_ms == 7));
        }
    }
}
