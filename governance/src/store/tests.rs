//! Store unit tests of the executor's steps.

use super::*;
use crate::executor::SignedTx;

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
        tx: SignedTx {
            tx_hash: format!("0x{nonce}"),
            bytes: vec![1, 2, 3],
        },
        submitted: false,
    }
}

/// An operator cancels a disbursement between the executor reading `ready` and staging:
/// staging refuses the whole batch and changes nothing (no nonce is consumed).
#[test]
fn staging_a_cancelled_disbursement_stages_nothing() {
    let store = GovStore::open_temporary().expect("store");
    let a = store
        .queue(&request("a"), 0)
        .expect("queue")
        .disbursement
        .id;
    let b = store
        .queue(&request("b"), 0)
        .expect("queue")
        .disbursement
        .id;
    assert_eq!(store.activate(0).expect("activate"), 2);
    store.cancel(b, "operator").expect("cancel");
    let staged = store
        .stage(&[intent(a, 0), intent(b, 1)], 2)
        .expect("stage");
    assert!(!staged);
    assert!(store.intents().expect("intents").is_empty());
    assert_eq!(store.next_nonce().expect("nonce"), None);
    assert_eq!(
        store.get(a).expect("get").expect("a").status,
        DisbursementStatus::Queued
    );
    assert_eq!(store.ready(10).expect("ready").len(), 1, "a is still ready");

    assert!(store.stage(&[intent(a, 0)], 1).expect("stage"));
    assert_eq!(store.intents().expect("intents").len(), 1);
    assert_eq!(store.next_nonce().expect("nonce"), Some(1));
}

#[test]
fn signed_bytes_are_stored_as_hex() {
    let store = GovStore::open_temporary().expect("store");
    let a = store
        .queue(&request("a"), 0)
        .expect("queue")
        .disbursement
        .id;
    store.activate(0).expect("activate");
    store.stage(&[intent(a, 0)], 1).expect("stage");
    let raw = store.intents.get(u64_key(0)).expect("get").expect("intent");
    let text = String::from_utf8(raw.to_vec()).expect("json");
    assert!(text.contains("\"bytes\":\"010203\""), "{text}");
    assert_eq!(store.intents().expect("intents")[0].tx.bytes, vec![1, 2, 3]);
}
