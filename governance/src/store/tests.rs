//! Store unit tests of the executor's steps and of the binding rule's guards.

use super::*;
use crate::ledger::{AttemptKind, Fees, SignedTx};
use crate::treasury::{Disbursement, NewDisbursement};

/// The store on each engine: every test here runs on both.
fn stores() -> Vec<GovStore> {
    vec![
        GovStore::open_temporary().expect("a store on sled"),
        GovStore::in_memory(),
    ]
}

fn request(destination: &str) -> NewDisbursement {
    NewDisbursement {
        destination: destination.into(),
        amount: 1,
        memo: String::new(),
        activation_epoch: 0,
        depends_on: vec![],
        external_key: None,
        asset: "native".into(),
    }
}

fn intent(id: DisbursementId, nonce: u64) -> Intent {
    let tx = SignedTx {
        tx_hash: format!("0x{nonce}"),
        bytes: vec![1, 2, 3],
        fees: Fees::default(),
    };
    Intent::new(
        id,
        nonce,
        1,
        Attempt::new(AttemptKind::Payment, tx, 0, None),
    )
}

fn queued(store: &GovStore, destination: &str) -> DisbursementId {
    queued_with(store, &request(destination))
}

fn queued_with(store: &GovStore, new: &NewDisbursement) -> DisbursementId {
    store.queue(new, 0).expect("queue").disbursement.id
}

fn status(store: &GovStore, id: DisbursementId) -> DisbursementStatus {
    store.get(id).expect("get").expect("exists").status
}

/// The ledger's nonce is taken only where the store has none: a first-contact write that
/// applies late (its answer lost) never moves back a nonce staging has since advanced.
#[test]
fn the_first_nonce_is_set_only_where_there_is_none() {
    for store in stores() {
        assert_eq!(store.set_next_nonce(3).expect("set"), 3);
        let a = queued(&store, "a");
        assert_eq!(store.activate(0).expect("activate"), 1);
        assert!(store.stage(&[intent(a, 3)], 4).expect("stage"));
        assert_eq!(
            store.set_next_nonce(3).expect("late"),
            4,
            "the store's stands"
        );
        assert_eq!(store.next_nonce().expect("nonce"), Some(4));
    }
}

/// An operator cancels a disbursement between the executor reading `ready` and staging:
/// staging refuses the whole batch and changes nothing (no nonce is consumed).
#[test]
fn staging_a_cancelled_disbursement_stages_nothing() {
    for store in stores() {
        let a = queued(&store, "a");
        let b = queued(&store, "b");
        assert_eq!(store.activate(0).expect("activate"), 2);
        store.cancel(b, "operator").expect("cancel");
        let staged = store
            .stage(&[intent(a, 0), intent(b, 1)], 2)
            .expect("stage");
        assert!(!staged);
        assert!(store.intents().expect("intents").is_empty());
        assert_eq!(store.next_nonce().expect("nonce"), None);
        assert_eq!(status(&store, a), DisbursementStatus::Queued);
        assert_eq!(store.ready(10).expect("ready").len(), 1, "a is still ready");

        assert!(store.stage(&[intent(a, 0)], 1).expect("stage"));
        assert_eq!(store.intents().expect("intents").len(), 1);
        assert_eq!(store.next_nonce().expect("nonce"), Some(1));
    }
}

#[test]
fn a_nonce_is_never_staged_twice() {
    for store in stores() {
        let a = queued(&store, "a");
        let b = queued(&store, "b");
        store.activate(0).expect("activate");
        assert!(store.stage(&[intent(a, 0)], 1).expect("stage"));
        let refused = store.stage(&[intent(b, 0)], 1).expect_err("refused");
        assert!(matches!(refused, StoreError::Invariant { .. }), "{refused}");
        assert_eq!(status(&store, b), DisbursementStatus::Queued);
    }
}

/// An intent is stored in the binary form (format byte 1) and reads back as it was;
/// the API's JSON still shows its signed bytes as hex.
#[test]
fn intents_are_stored_binary_and_read_back() {
    for store in stores() {
        let a = queued(&store, "a");
        store.activate(0).expect("activate");
        let staged = intent(a, 0);
        store
            .stage(std::slice::from_ref(&staged), 1)
            .expect("stage");
        let raw = store
            .read(Kind::Intents, &u64_key(0))
            .expect("get")
            .expect("intent");
        assert_eq!(raw[0], wire::V1);
        assert_eq!(store.intents().expect("intents"), vec![staged.clone()]);
        let text = serde_json::to_string(&staged).expect("json");
        assert!(text.contains("\"bytes\":\"010203\""), "{text}");
    }
}

/// An intent written before attempts existed (one transaction, no binding flag) reads
/// as bound, with that transaction as its only attempt, when the old layout is migrated:
/// it may have been broadcast.
#[test]
fn intents_from_before_fee_bumping_migrate_as_bound() {
    let old = br#"{"id":2,"nonce":4,"tx":{"tx_hash":"0xab","bytes":"0102"},"submitted":true}"#;
    let bytes = migrate::convert(Kind::Intents, &u64_key(4), old).expect("converts");
    let intent: Intent = codec::decode(Kind::Intents, &u64_key(4), &bytes).expect("decodes");
    assert!(intent.bound && intent.submitted);
    assert_eq!(intent.hashes(), vec!["0xab".to_owned()]);
    assert_eq!(intent.latest().kind, AttemptKind::Payment);
}

/// A record that decodes but holds no transaction is corrupt, named by its key, in
/// either layout: every step of the executor relies on an intent's latest attempt.
#[test]
fn an_intent_without_attempts_is_corrupt() {
    let check = |error: StoreError| match error {
        StoreError::Corrupt { kind, key, reason } => {
            assert_eq!((kind, key.as_str()), ("intents", "3"));
            assert!(
                reason.contains("without any signed transaction"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    };
    let old = br#"{"id":0,"nonce":3}"#;
    check(migrate::convert(Kind::Intents, &u64_key(3), old).expect_err("corrupt"));
    let mut empty = intent(0, 3);
    empty.attempts.clear();
    for store in stores() {
        store
            .raw_insert("intents", &u64_key(3), &wire::Stored::to_bytes(&empty))
            .expect("insert");
        check(store.intents().expect_err("corrupt"));
    }
}

/// The store keeps the binding rule too: an intent that may have been broadcast is
/// never given back, whoever asks, and nothing changes when it refuses.
#[test]
fn a_bound_intent_is_never_given_back() {
    for store in stores() {
        let a = queued(&store, "a");
        let b = queued(&store, "b");
        store.activate(0).expect("activate");
        store
            .stage(&[intent(a, 0), intent(b, 1)], 2)
            .expect("stage");
        assert_eq!(store.bind_all().expect("bind"), 2);
        for refused in [
            store.cancel_unbound(0, "refused").map(|_| ()),
            store.unstage_from(1),
        ] {
            assert!(
                matches!(refused, Err(StoreError::Invariant { .. })),
                "{refused:?}"
            );
        }
        assert!(matches!(
            status(&store, a),
            DisbursementStatus::Staged { .. }
        ));
        assert_eq!(store.next_nonce().expect("nonce"), Some(2));
        assert_eq!(store.intents().expect("intents").len(), 2);
    }
}

/// Giving back an intent that never left the node returns the later ones to ready and
/// rewinds the nonce; one an operator asked to cancel meanwhile is cancelled instead of
/// being signed again.
#[test]
fn giving_back_honours_a_pending_cancellation() {
    for store in stores() {
        let a = queued(&store, "a");
        let b = queued(&store, "b");
        let c = queued(&store, "c");
        store.activate(0).expect("activate");
        store
            .stage(&[intent(a, 0), intent(b, 1), intent(c, 2)], 3)
            .expect("stage");
        assert!(matches!(
            store.cancel(c, "operator"),
            Ok(Cancellation::Replacing(_))
        ));
        store.cancel_unbound(0, "refused").expect("cancel");
        assert!(matches!(
            status(&store, a),
            DisbursementStatus::Cancelled { .. }
        ));
        assert_eq!(status(&store, b), DisbursementStatus::Queued);
        match status(&store, c) {
            DisbursementStatus::Cancelled { reason } => assert_eq!(reason, "operator"),
            other => panic!("{other:?}"),
        }
        assert_eq!(store.next_nonce().expect("nonce"), Some(0));
        assert!(store.intents().expect("intents").is_empty());
        let ready: Vec<u64> = store
            .ready(10)
            .expect("ready")
            .iter()
            .map(|d: &Disbursement| d.id)
            .collect();
        assert_eq!(ready, vec![b]);
    }
}

/// The executor read `scheduled` (the due list) before an operator cancelled one of
/// them: activating must not put it back into `ready` (where it would stop every later
/// batch from staging).
#[test]
fn activation_leaves_a_concurrently_cancelled_disbursement_alone() {
    for store in stores() {
        let id = queued_with(
            &store,
            &NewDisbursement {
                activation_epoch: 5,
                ..request("a")
            },
        );
        let stale_due = vec![(5, id)];
        store.cancel(id, "operator").expect("cancel");
        assert_eq!(store.make_ready(&stale_due, Some(5)).expect("activate"), 0);
        assert!(store.ready(10).expect("ready").is_empty());
        assert!(matches!(
            status(&store, id),
            DisbursementStatus::Cancelled { .. }
        ));
    }
}

/// An operator's decision is recorded only while the executor holds on that very
/// question, and applying it settles the intent in one transaction.
#[test]
fn decisions_need_the_executors_hold() {
    for store in stores() {
        let a = queued(&store, "a");
        store.activate(0).expect("activate");
        store.stage(&[intent(a, 0)], 1).expect("stage");
        let hold = Hold::ForeignNonce {
            id: a,
            nonce: 0,
            chain_nonce: 1,
            attempts: vec!["0x0".into()],
            spent_by: Some("0xstranger".into()),
        };
        let decision = |hold: Hold, action: Action| Decision {
            hold,
            action,
            reason: "checked".into(),
            actor: "carol".into(),
            at_ms: 0,
        };
        let not_paid = || Action::Resolve {
            resolution: Resolution::NotPaid,
        };
        let refused = store.decide(&decision(hold.clone(), not_paid()));
        assert!(
            matches!(refused, Err(RequestError::Conflict(_))),
            "{refused:?}"
        );
        store
            .save_executor_snapshot(&ExecutorSnapshot {
                hold: Some(hold.clone()),
                ..ExecutorSnapshot::default()
            })
            .expect("save");
        let drift = Hold::NonceDrift {
            store: 1,
            ledger: 2,
        };
        let adopt = Action::AdoptNonce { nonce: None };
        assert!(matches!(
            store.decide(&decision(drift, adopt)),
            Err(RequestError::Conflict(_))
        ));
        let resolve = decision(hold.clone(), not_paid());
        store.decide(&resolve).expect("recorded");
        assert_eq!(store.decision().expect("decision"), Some(resolve.clone()));
        assert!(
            matches!(status(&store, a), DisbursementStatus::Staged { .. }),
            "nothing changes until the executor applies it"
        );
        // Replaced by another decision since read: applying the old one does nothing.
        let paid = decision(
            hold.clone(),
            Action::Resolve {
                resolution: Resolution::Paid { tx_hash: None },
            },
        );
        store.decide(&paid).expect("replaced");
        assert_eq!(
            store.apply_decision(&resolve, "executor:test", |_| String::new()),
            Ok(Settled::Superseded)
        );
        assert_eq!(
            store.drop_decision(&resolve, "executor:test", "dropped"),
            Ok(false)
        );
        assert_eq!(store.decision().expect("decision"), Some(paid.clone()));
        assert!(matches!(
            status(&store, a),
            DisbursementStatus::Staged { .. }
        ));
        assert!(store.audit(None, 10).expect("audit").is_empty());

        store.decide(&resolve).expect("recorded again");
        let Settled::Applied(Some(record)) = store
            .apply_decision(&resolve, "executor:test", |_| "applied".into())
            .expect("apply")
        else {
            panic!("not applied");
        };
        assert_eq!(record.status, DisbursementStatus::Queued);
        assert_eq!(store.decision().expect("decision"), None);
        let log = store.audit(None, 10).expect("audit");
        assert_eq!(
            (
                log[0].action.as_str(),
                log[0].actor.as_str(),
                log[0].detail.as_str()
            ),
            ("decision.applied", "executor:test", "applied"),
            "audited with the change"
        );
        assert_eq!(
            store.ready(10).expect("ready").len(),
            1,
            "ready for a fresh nonce"
        );
        assert_eq!(
            store.next_nonce().expect("nonce"),
            Some(1),
            "nonce 0 stays spent"
        );
    }
}

/// `not_paid` for a disbursement an operator asked to cancel cancels it, outright.
#[test]
fn not_paid_honours_a_pending_cancellation() {
    for store in stores() {
        let a = queued(&store, "a");
        store.activate(0).expect("activate");
        store.stage(&[intent(a, 0)], 1).expect("stage");
        store.bind_all().expect("bind");
        assert!(matches!(
            store.cancel(a, "wrong grantee"),
            Ok(Cancellation::Replacing(_))
        ));
        let hold = Hold::ForeignNonce {
            id: a,
            nonce: 0,
            chain_nonce: 1,
            attempts: vec![],
            spent_by: None,
        };
        let not_paid = Decision {
            hold,
            action: Action::Resolve {
                resolution: Resolution::NotPaid,
            },
            reason: "a stranger".into(),
            actor: "carol".into(),
            at_ms: 0,
        };
        let json = serde_json::to_vec(&not_paid).expect("json");
        store
            .raw_insert("meta", b"decision", &json)
            .expect("recorded");
        let Settled::Applied(Some(record)) = store
            .apply_decision(&not_paid, "executor:test", |_| String::new())
            .expect("apply")
        else {
            panic!("not applied");
        };
        assert_eq!(
            record.status,
            DisbursementStatus::Cancelled {
                reason: "wrong grantee".into()
            }
        );
        assert!(store.ready(10).expect("ready").is_empty());
    }
}

/// After a restored backup, a queued disbursement the chain shows paid is marked paid
/// (only while the executor holds on the drift), and its dependents are released.
#[test]
fn marking_paid_what_a_backup_forgot() {
    for store in stores() {
        let a = queued(&store, "a");
        let child = queued_with(
            &store,
            &NewDisbursement {
                depends_on: vec![a],
                ..request("b")
            },
        );
        store.activate(0).expect("activate");
        assert!(matches!(
            store.mark_paid(a, "0xabc", "paid before the restore"),
            Err(RequestError::Conflict(_))
        ));
        store
            .save_executor_snapshot(&ExecutorSnapshot {
                hold: Some(Hold::NonceDrift {
                    store: 0,
                    ledger: 1,
                }),
                ..ExecutorSnapshot::default()
            })
            .expect("save");
        let record = store
            .mark_paid(a, "0xabc", "paid before the restore")
            .expect("marked");
        assert!(matches!(
            record.status,
            DisbursementStatus::Executed { ref tx_hash, resolution: Some(_), .. } if tx_hash == "0xabc"
        ));
        let ready: Vec<u64> = store
            .ready(10)
            .expect("ready")
            .iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(ready, vec![child], "a out of ready, its dependent in");
        assert!(matches!(
            store.mark_paid(a, "0xabc", "again"),
            Err(RequestError::Conflict(_))
        ));
    }
}
