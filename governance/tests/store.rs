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
        let config = TreasuryExecutorConfig::new("test", breaker);
        TreasuryExecutor::new(config, store.clone(), Arc::new(ScriptedLedger::default()))
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
                TreasuryExecutorConfig::new("test", breaker),
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
}
