//! The stored forms of the hot records (disbursements, intents, dependents), version 1:
//! postcard (a compact, non-self-describing binary serde format) after one format byte.
//!
//! The stored forms are their own types, not the domain types' serde: the API's JSON
//! shape (tagged enums, skipped fields) can change without changing the disk, and
//! postcard cannot read internally tagged enums anyway. A change to a stored form is a
//! new format byte and a new set of types here, with the old ones kept to read.
//!
//! Version 2 (a disbursement with approvals, see [`crate::policy`], or paying a token)
//! adds the approvals and the asset after version 1's fields. A disbursement is written in
//! the oldest form that holds it: native and without approvals, version 1, byte for byte
//! as before. `StatusV1` gained `AwaitingApproval` as
//! its last variant, so every record written before decodes unchanged (a binary that
//! predates the variant reads it as a corrupt record and halts: it cannot know the rule).

use serde::{Deserialize, Serialize};

use super::records::{Attempt, Inclusion, Intent};
use crate::ledger::{AttemptKind, Fees, SignedTx};
use crate::treasury::{Approval, Disbursement, DisbursementId, DisbursementStatus};

/// The first byte of a version-1 record.
pub const V1: u8 = 1;
/// The first byte of a version-2 disbursement (with approvals, or a token).
pub const V2: u8 = 2;

/// A record kept in the binary format (disbursements, intents, the ids waiting for a
/// disbursement). Public for tools that write records directly (benchmarks, fuzzing).
pub trait Stored: Sized {
    /// Its bytes: the format byte, then postcard.
    fn to_bytes(&self) -> Vec<u8>;
    /// Decodes `bytes`, or says why they are not a record of this type.
    fn from_bytes(bytes: &[u8]) -> Result<Self, String>;
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    encode_as(V1, value)
}

fn encode_as<T: Serialize>(format: u8, value: &T) -> Vec<u8> {
    let mut out = vec![format];
    // Serialising plain structs of integers, strings and vectors into a vector cannot
    // fail.
    out.extend(postcard::to_allocvec(value).unwrap_or_default());
    out
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    match bytes.split_first() {
        Some((&V1, body)) => decode_body(V1, body),
        Some((format, _)) => Err(format!("unknown record format {format}")),
        None => Err("empty record".into()),
    }
}

fn decode_body<'a, T: Deserialize<'a>>(format: u8, body: &'a [u8]) -> Result<T, String> {
    match postcard::take_from_bytes(body) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(format!("{} trailing bytes", rest.len())),
        Err(error) => Err(format!("not a version-{format} record: {error}")),
    }
}

#[derive(Serialize, Deserialize)]
struct DisbursementV1 {
    id: u64,
    destination: String,
    amount: u128,
    memo: String,
    activation_epoch: u64,
    depends_on: Vec<u64>,
    external_key: Option<String>,
    status: StatusV1,
    queued_at_ms: u64,
}

/// Version 1, the approvals and the asset (`None`: native).
#[derive(Serialize, Deserialize)]
struct DisbursementV2 {
    v1: DisbursementV1,
    approvals: Vec<ApprovalV2>,
    asset: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct ApprovalV2 {
    actor: String,
    at_ms: u64,
}

#[derive(Serialize, Deserialize)]
enum StatusV1 {
    Queued,
    Staged {
        nonce: u64,
        tx_hash: String,
        cancelling: Option<String>,
    },
    Submitted {
        nonce: u64,
        tx_hash: String,
        cancelling: Option<String>,
    },
    Included {
        nonce: u64,
        tx_hash: String,
        block: u64,
        block_hash: String,
        confirmations: u64,
        cancelling: Option<String>,
    },
    Executed {
        tx_hash: String,
        block: u64,
        resolution: Option<String>,
    },
    Cancelled {
        reason: String,
    },
    /// Added with version 2: last, so that the variants before keep their indexes.
    AwaitingApproval,
}

impl Stored for Disbursement {
    fn to_bytes(&self) -> Vec<u8> {
        use DisbursementStatus as S;
        let status = match self.status.clone() {
            S::AwaitingApproval => StatusV1::AwaitingApproval,
            S::Queued => StatusV1::Queued,
            S::Staged {
                nonce,
                tx_hash,
                cancelling,
            } => StatusV1::Staged {
                nonce,
                tx_hash,
                cancelling,
            },
            S::Submitted {
                nonce,
                tx_hash,
                cancelling,
            } => StatusV1::Submitted {
                nonce,
                tx_hash,
                cancelling,
            },
            S::Included {
                nonce,
                tx_hash,
                block,
                block_hash,
                confirmations,
                cancelling,
            } => StatusV1::Included {
                nonce,
                tx_hash,
                block,
                block_hash,
                confirmations,
                cancelling,
            },
            S::Executed {
                tx_hash,
                block,
                resolution,
            } => StatusV1::Executed {
                tx_hash,
                block,
                resolution,
            },
            S::Cancelled { reason } => StatusV1::Cancelled { reason },
        };
        let v1 = DisbursementV1 {
            id: self.id,
            destination: self.destination.clone(),
            amount: self.amount,
            memo: self.memo.clone(),
            activation_epoch: self.activation_epoch,
            depends_on: self.depends_on.clone(),
            external_key: self.external_key.clone(),
            status,
            queued_at_ms: self.queued_at_ms,
        };
        let native = self.asset == crate::policy::NATIVE;
        if self.approvals.is_empty() && native {
            return encode(&v1);
        }
        let approvals = self
            .approvals
            .iter()
            .map(|a| ApprovalV2 {
                actor: a.actor.clone(),
                at_ms: a.at_ms,
            })
            .collect();
        let asset = (!native).then(|| self.asset.clone());
        encode_as(
            V2,
            &DisbursementV2 {
                v1,
                approvals,
                asset,
            },
        )
    }

    fn from_bytes(bytes: &[u8]) -> Result<Disbursement, String> {
        let (record, approvals, asset) = match bytes.split_first() {
            Some((&V2, body)) => {
                let record: DisbursementV2 = decode_body(V2, body)?;
                (record.v1, record.approvals, record.asset)
            }
            _ => (decode::<DisbursementV1>(bytes)?, vec![], None),
        };
        let status = match record.status {
            StatusV1::AwaitingApproval => DisbursementStatus::AwaitingApproval,
            StatusV1::Queued => DisbursementStatus::Queued,
            StatusV1::Staged {
                nonce,
                tx_hash,
                cancelling,
            } => DisbursementStatus::Staged {
                nonce,
                tx_hash,
                cancelling,
            },
            StatusV1::Submitted {
                nonce,
                tx_hash,
                cancelling,
            } => DisbursementStatus::Submitted {
                nonce,
                tx_hash,
                cancelling,
            },
            StatusV1::Included {
                nonce,
                tx_hash,
                block,
                block_hash,
                confirmations,
                cancelling,
            } => DisbursementStatus::Included {
                nonce,
                tx_hash,
                block,
                block_hash,
                confirmations,
                cancelling,
            },
            StatusV1::Executed {
                tx_hash,
                block,
                resolution,
            } => DisbursementStatus::Executed {
                tx_hash,
                block,
                resolution,
            },
            StatusV1::Cancelled { reason } => DisbursementStatus::Cancelled { reason },
        };
        Ok(Disbursement {
            id: record.id,
            destination: record.destination,
            amount: record.amount,
            memo: record.memo,
            activation_epoch: record.activation_epoch,
            depends_on: record.depends_on,
            external_key: record.external_key,
            asset: asset.unwrap_or_else(|| crate::policy::NATIVE.to_owned()),
            status,
            queued_at_ms: record.queued_at_ms,
            approvals: approvals
                .into_iter()
                .map(|a| Approval {
                    actor: a.actor,
                    at_ms: a.at_ms,
                })
                .collect(),
        })
    }
}

#[derive(Serialize, Deserialize)]
struct IntentV1 {
    id: u64,
    nonce: u64,
    amount: u128,
    attempts: Vec<AttemptV1>,
    bound: bool,
    submitted: bool,
    inclusion: Option<InclusionV1>,
    cancel: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct AttemptV1 {
    /// `false`: a payment; `true`: a cancellation by replacement.
    cancellation: bool,
    tx_hash: String,
    bytes: Vec<u8>,
    max_fee_per_gas: u128,
    max_priority_fee_per_gas: u128,
    gas_limit: u64,
    signed_at_ms: u64,
    signed_at_block: Option<u64>,
    sent_at_block: Option<u64>,
    sent_at_ms: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct InclusionV1 {
    tx_hash: String,
    cancellation: bool,
    block: u64,
    block_hash: String,
    reverted: bool,
    confirmations: u64,
}

fn is_cancellation(kind: AttemptKind) -> bool {
    kind == AttemptKind::Cancellation
}

fn kind_of(cancellation: bool) -> AttemptKind {
    if cancellation {
        AttemptKind::Cancellation
    } else {
        AttemptKind::Payment
    }
}

impl Stored for Intent {
    fn to_bytes(&self) -> Vec<u8> {
        encode(&IntentV1 {
            id: self.id,
            nonce: self.nonce,
            amount: self.amount,
            attempts: self
                .attempts
                .iter()
                .map(|attempt| AttemptV1 {
                    cancellation: is_cancellation(attempt.kind),
                    tx_hash: attempt.tx.tx_hash.clone(),
                    bytes: attempt.tx.bytes.clone(),
                    max_fee_per_gas: attempt.tx.fees.max_fee_per_gas,
                    max_priority_fee_per_gas: attempt.tx.fees.max_priority_fee_per_gas,
                    gas_limit: attempt.tx.fees.gas_limit,
                    signed_at_ms: attempt.signed_at_ms,
                    signed_at_block: attempt.signed_at_block,
                    sent_at_block: attempt.sent_at_block,
                    sent_at_ms: attempt.sent_at_ms,
                })
                .collect(),
            bound: self.bound,
            submitted: self.submitted,
            inclusion: self.inclusion.as_ref().map(|inclusion| InclusionV1 {
                tx_hash: inclusion.tx_hash.clone(),
                cancellation: is_cancellation(inclusion.kind),
                block: inclusion.block,
                block_hash: inclusion.block_hash.clone(),
                reverted: inclusion.reverted,
                confirmations: inclusion.confirmations,
            }),
            cancel: self.cancel.clone(),
        })
    }

    fn from_bytes(bytes: &[u8]) -> Result<Intent, String> {
        let record: IntentV1 = decode(bytes)?;
        if record.attempts.is_empty() {
            return Err("an intent without any signed transaction".into());
        }
        Ok(Intent {
            id: record.id,
            nonce: record.nonce,
            amount: record.amount,
            attempts: record
                .attempts
                .into_iter()
                .map(|attempt| Attempt {
                    kind: kind_of(attempt.cancellation),
                    tx: SignedTx {
                        tx_hash: attempt.tx_hash,
                        bytes: attempt.bytes,
                        fees: Fees {
                            max_fee_per_gas: attempt.max_fee_per_gas,
                            max_priority_fee_per_gas: attempt.max_priority_fee_per_gas,
                            gas_limit: attempt.gas_limit,
                        },
                    },
                    signed_at_ms: attempt.signed_at_ms,
                    signed_at_block: attempt.signed_at_block,
                    sent_at_block: attempt.sent_at_block,
                    sent_at_ms: attempt.sent_at_ms,
                })
                .collect(),
            bound: record.bound,
            submitted: record.submitted,
            inclusion: record.inclusion.map(|inclusion| Inclusion {
                tx_hash: inclusion.tx_hash,
                kind: kind_of(inclusion.cancellation),
                block: inclusion.block,
                block_hash: inclusion.block_hash,
                reverted: inclusion.reverted,
                confirmations: inclusion.confirmations,
            }),
            cancel: record.cancel,
        })
    }
}

/// The ids waiting for a disbursement.
impl Stored for Vec<DisbursementId> {
    fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Vec<DisbursementId>, String> {
        decode(bytes)
    }
}
