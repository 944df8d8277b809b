//! Store unit tests of the executor's steps and of the binding rule's guards.

use super::*;
use crate::ledger::{AttemptKind, Fees, SignedTx};
use crate::treasury::{Disbursement, NewDisbursement};

fn request(destination: &str) -> NewDisbursement {
    NewDisbursement {
        destination: destination.into(),
        amount: 1,
        memo: String::new(),
        activation_epoch: 0,
        depends_on: vec![],
        external_key: None,
    }
}

fn intent(id: DisbursementId, nonce: u64) -> Intent {
    Intent {
        id,
        nonce,
        amount: 1,
        attempts: vec![Attempt {
            kind: AttemptKind::Payment,
            tx: SignedTx {
                tx_hash: format!("0x{nonce}"),
                bytes: vec![1, 2, 3],
                fees: Fees::default(),
            },
            signed_at_ms: 0,
            signed_at_block: None,
            sent_at_block: None,
            sent_at_ms: None,
        }],
        bound: false,
        submitted: false,
        inclusion: None,
        cancel: None,
    }
}

fn queued(store: &GovStore, destination: &str) -> DisbursementId {
    store
        .queue(&request(destination), 0)
        .expect("queue")
        .disbursement
        .id
}

fn status(store: &GovStore, id: DisbursementId) -> DisbursementStatus {
    store.get(id).expect("get").expect("exists").status
}

/// An operator cancels a disbursement between the executor reading `ready` and staging:
/// staging refuses the whole batch and changes nothing (no nonce is consumed).
#[test]
fn staging_a_cancelled_disbursement_stages_nothing() {
    let store = GovStore::open_temporary().expect("store");
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

#[test]
fn a_nonce_is_never_staged_twice() {
    let store = GovStore::open_temporary().expect("store");
    let a = queued(&store, "a");
    let b = queued(&store, "b");
    store.activate(0).expect("activate");
    assert!(store.stage(&[intent(a, 0)], 1).expect("stage"));
    let refused = store.stage(&[intent(b, 0)], 1).expect_err("refused");
    assert!(matches!(refused, StoreError::Invariant { .. }), "{refused}");
    assert_eq!(status(&store, b), DisbursementStatus::Queued);
}

#[test]
fn signed_bytes_are_stored_as_hex() {
    let store = GovStore::open_temporary().expect("store");
    let a = queued(&store, "a");
    store.activate(0).expect("activate");
    store.stage(&[intent(a, 0)], 1).expect("stage");
    let raw = store.intents.get(u64_key(0)).expect("get").expect("intent");
    let text = String::from_utf8(raw.to_vec()).expect("json");
    assert!(text.contains("\"bytes\":\"010203\""), "{text}");
    assert_eq!(
        store.intents().expect("intents")[0].attempts[0].tx.bytes,
        vec![1, 2, 3]
    );
}

/// An intent written before attempts existed (one transaction, no binding flag) reads
/// as bound, with that transaction as its only attempt: it may have been broadcast.
#[test]
fn intents_from_before_fee_bumping_read_as_bound() {
    let store = GovStore::open_temporary().expect("store");
    store
        .intents
        .insert(
            u64_key(4),
            br#"{"id":2,"nonce":4,"tx":{"tx_hash":"0xab","bytes":"0102"},"submitted":true}"#
                .as_slice(),
        )
        .expect("insert");
    let intents = store.intents().expect("intents");
    assert_eq!(intents.len(), 1);
    let intent = &intents[0];
    assert!(intent.bound && intent.submitted);
    assert_eq!(intent.hashes(), vec!["0xab".to_owned()]);
    assert_eq!(intent.latest().kind, AttemptKind::Payment);
}

/// The store keeps the binding rule too: an intent that may have been broadcast is
/// never given back, whoever asks, and nothing changes when it refuses.
#[test]
fn a_bound_intent_is_never_given_back() {
    let store = GovStore::open_temporary().expect("store");
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

/// Giving back an intent that never left the node returns the later ones to ready and
/// rewinds the nonce; one an operator asked to cancel meanwhile is cancelled instead of
/// being signed again.
#[test]
fn giving_back_honours_a_pending_cancellation() {
    let store = GovStore::open_temporary().expect("store");
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

/// The executor read `scheduled` (the due list) before an operator cancelled one of
/// them: activating must not put it back into `ready` (where it would stop every later
/// batch from staging).
#[test]
fn activation_leaves_a_concurrently_cancelled_disbursement_alone() {
    let store = GovStore::open_temporary().expect("store");
    let id = store
        .queue(
            &NewDisbursement {
                activation_epoch: 5,
                ..request("a")
            },
            0,
        )
        .expect("queue")
        .disbursement
        .id;
    let stale_due = vec![(5, id)];
    store.cancel(id, "operator").expect("cancel");
    assert_eq!(store.make_ready(&stale_due, Some(5)).expect("activate"), 0);
    assert!(store.ready(10).expect("ready").is_empty());
    assert!(matches!(
        status(&store, id),
        DisbursementStatus::Cancelled { .. }
    ));
}

/// An operator's decision is taken only while the executor holds on that very question.
#[test]
fn decisions_need_the_executors_hold() {
    let store = GovStore::open_temporary().expect("store");
    let a = queued(&store, "a");
    store.activate(0).expect("activate");
    store.stage(&[intent(a, 0)], 1).expect("stage");
    let refused = store.resolve_intent(0, &Resolution::NotPaid, "x");
    assert!(
        matches!(refused, Err(RequestError::Conflict(_))),
        "{refused:?}"
    );
    let hold = Hold::ForeignNonce {
        id: a,
        nonce: 0,
        chain_nonce: 1,
        attempts: vec!["0x0".into()],
    };
    store
        .save_executor_snapshot(&ExecutorSnapshot {
            hold: Some(hold),
            ..ExecutorSnapshot::default()
        })
        .expect("save");
    assert!(matches!(
        store.adopt_nonce(None),
        Err(RequestError::Conflict(_))
    ));
    let record = store
        .resolve_intent(0, &Resolution::NotPaid, "a stranger spent it")
        .expect("resolve");
    assert_eq!(record.status, DisbursementStatus::Queued);
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
