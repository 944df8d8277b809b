//! Unit tests of disbursement validation.

use super::*;

fn valid() -> NewDisbursement {
    NewDisbursement {
        destination: "0xabc".into(),
        amount: 1,
        memo: String::new(),
        activation_epoch: 0,
        depends_on: vec![],
        external_key: None,
        asset: "native".into(),
    }
}

#[test]
fn a_valid_disbursement_passes() {
    assert_eq!(valid().validate(), Ok(()));
}

#[test]
fn each_invalid_field_is_named() {
    let cases = [
        (
            NewDisbursement {
                amount: 0,
                ..valid()
            },
            QueueError::ZeroAmount,
        ),
        (
            NewDisbursement {
                destination: " ".into(),
                ..valid()
            },
            QueueError::EmptyDestination,
        ),
        (
            NewDisbursement {
                memo: "x".repeat(MAX_MEMO_BYTES + 1),
                ..valid()
            },
            QueueError::MemoTooLong {
                len: MAX_MEMO_BYTES + 1,
                max: MAX_MEMO_BYTES,
            },
        ),
        (
            NewDisbursement {
                external_key: Some(String::new()),
                asset: "native".into(),
                ..valid()
            },
            QueueError::InvalidExternalKey {
                len: 0,
                max: MAX_EXTERNAL_KEY_BYTES,
            },
        ),
        (
            NewDisbursement {
                depends_on: vec![3, 1, 3],
                ..valid()
            },
            QueueError::DuplicateDependency(3),
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(input.validate(), Err(expected));
    }
    assert_eq!(
        NewDisbursement {
            memo: "x".repeat(MAX_MEMO_BYTES),
            ..valid()
        }
        .validate(),
        Ok(())
    );
}

#[test]
fn statuses_serialize_with_their_name() {
    let status = DisbursementStatus::Executed {
        tx_hash: "0x1".into(),
        block: 7,
        resolution: None,
    };
    let json = serde_json::to_string(&status).expect("json");
    assert_eq!(json, r#"{"status":"executed","tx_hash":"0x1","block":7}"#);
    assert_eq!(status.name(), "executed");
    assert!(status.is_final());
    let included = DisbursementStatus::Included {
        nonce: 3,
        tx_hash: "0x2".into(),
        block: 9,
        block_hash: "0xb".into(),
        confirmations: 2,
        cancelling: None,
    };
    assert_eq!(included.name(), "included");
    assert!(!included.is_final());
    let json = serde_json::to_string(&included).expect("json");
    assert!(
        json.starts_with(r#"{"status":"included","nonce":3"#),
        "{json}"
    );
    assert!(!json.contains("cancelling"), "left out when none: {json}");
}

/// Records written before confirmations, resolutions and cancellations by replacement
/// still decode.
#[test]
fn statuses_from_earlier_versions_decode() {
    let status: DisbursementStatus =
        serde_json::from_str(r#"{"status":"submitted","nonce":4,"tx_hash":"0x1"}"#)
            .expect("decodes");
    assert_eq!(
        status,
        DisbursementStatus::Submitted {
            nonce: 4,
            tx_hash: "0x1".into(),
            cancelling: None
        }
    );
    let status: DisbursementStatus =
        serde_json::from_str(r#"{"status":"executed","tx_hash":"0x1","block":7}"#)
            .expect("decodes");
    assert!(matches!(
        status,
        DisbursementStatus::Executed {
            resolution: None,
            ..
        }
    ));
}
