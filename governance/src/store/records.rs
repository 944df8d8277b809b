//! The store's record types other than disbursements.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ledger::{AttemptKind, SignedTx};
use crate::treasury::{DisbursementId, DisbursementStatus};

/// Everything signed for one nonce, and what is known of it: the record of the binding
/// rule. Stored before any of its transactions may reach the ledger.
///
/// Once `bound`, the disbursement belongs to this nonce for good: only replacements at
/// the same nonce (fee bumps, a cancellation) are ever signed for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "IntentRecord")]
pub struct Intent {
    /// The disbursement it pays.
    pub id: DisbursementId,
    /// Its nonce (the key of the `intents` tree).
    pub nonce: u64,
    /// The disbursement's amount (what the balance check counts as in flight).
    #[serde(with = "crate::text::decimal")]
    pub amount: u128,
    /// Every transaction signed for this nonce, oldest first. Never empty.
    pub attempts: Vec<Attempt>,
    /// Whether one of them may have reached an endpoint: handed over, even if the answer
    /// was lost. A store opened after a crash binds every intent it holds.
    pub bound: bool,
    /// Whether an endpoint accepted one of them.
    pub submitted: bool,
    /// The block holding one of them, when last seen.
    pub inclusion: Option<Inclusion>,
    /// An operator asked to cancel it (by replacement, once bound): the reason.
    pub cancel: Option<String>,
}

/// One signed transaction for an intent's nonce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// A payment, or a cancellation by replacement.
    pub kind: AttemptKind,
    /// The signed bytes, resubmitted unchanged.
    pub tx: SignedTx,
    /// When it was signed (Unix milliseconds).
    pub signed_at_ms: u64,
    /// The head's number when it was signed: it is not replaced again before the next
    /// block (each block, fees get one more bump at most).
    #[serde(default)]
    pub signed_at_block: Option<u64>,
    /// The head's number when an endpoint first accepted it (fee bumps count from it).
    #[serde(default)]
    pub sent_at_block: Option<u64>,
    /// When an endpoint first accepted it (Unix milliseconds).
    #[serde(default)]
    pub sent_at_ms: Option<u64>,
}

/// Where an intent's transaction was seen in a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inclusion {
    /// The included transaction.
    pub tx_hash: String,
    /// What it does.
    pub kind: AttemptKind,
    /// The block's number.
    pub block: u64,
    /// The block's hash: if the chain later has another block at this height, it was
    /// reorganised away.
    pub block_hash: String,
    /// Mined but failed: the nonce is spent, nothing moved.
    pub reverted: bool,
    /// Blocks on top of it, itself included, when last seen.
    pub confirmations: u64,
}

impl Attempt {
    /// A transaction just signed, not yet handed over: at `signed_at_ms`, with the head at
    /// `signed_at_block` (unknown for a record written before it was kept).
    pub fn new(
        kind: AttemptKind,
        tx: SignedTx,
        signed_at_ms: u64,
        signed_at_block: Option<u64>,
    ) -> Attempt {
        Attempt {
            kind,
            tx,
            signed_at_ms,
            signed_at_block,
            sent_at_block: None,
            sent_at_ms: None,
        }
    }
}

impl Intent {
    /// A payment of `amount` staged at `nonce` with its first attempt: not yet handed
    /// over, so not bound.
    pub fn new(id: DisbursementId, nonce: u64, amount: u128, first: Attempt) -> Intent {
        Intent {
            id,
            nonce,
            amount,
            attempts: vec![first],
            bound: false,
            submitted: false,
            inclusion: None,
            cancel: None,
        }
    }

    /// The latest attempt: the one to rebroadcast, and the fee floor of the next bump.
    pub fn latest(&self) -> &Attempt {
        // `attempts` is never empty: an intent is created with its first attempt, and
        // attempts are only ever appended.
        &self.attempts[self.attempts.len() - 1]
    }

    /// Whether an attempt of this kind was signed.
    pub fn has_attempt(&self, kind: AttemptKind) -> bool {
        self.attempts.iter().any(|attempt| attempt.kind == kind)
    }

    /// The most fee this intent can still take from the treasury, in the chain's coin:
    /// the worst-case fee of its costliest attempt (a payment may still land even once a
    /// cancellation is signed). Its amount, in its disbursement's asset, comes on top.
    pub fn worst_case_fee(&self) -> u128 {
        self.attempts
            .iter()
            .map(|attempt| attempt.tx.fees.worst_case())
            .max()
            .unwrap_or(0)
    }

    /// Every attempt's hash, oldest first.
    pub fn hashes(&self) -> Vec<String> {
        self.attempts.iter().map(|a| a.tx.tx_hash.clone()).collect()
    }

    /// Its disbursement's status while it is in flight: the one place that says how an
    /// intent reads as a status.
    pub fn status(&self) -> DisbursementStatus {
        if let Some(inclusion) = &self.inclusion {
            return DisbursementStatus::Included {
                nonce: self.nonce,
                tx_hash: inclusion.tx_hash.clone(),
                block: inclusion.block,
                block_hash: inclusion.block_hash.clone(),
                confirmations: inclusion.confirmations,
                cancelling: match inclusion.kind {
                    AttemptKind::Cancellation => Some(self.cancel.clone().unwrap_or_default()),
                    AttemptKind::Payment => None,
                },
            };
        }
        let nonce = self.nonce;
        let tx_hash = self.latest().tx.tx_hash.clone();
        let cancelling = self.cancel.clone();
        if self.submitted {
            DisbursementStatus::Submitted {
                nonce,
                tx_hash,
                cancelling,
            }
        } else {
            DisbursementStatus::Staged {
                nonce,
                tx_hash,
                cancelling,
            }
        }
    }
}

/// The intent record as any version of the store wrote it: before fee bumping, an intent
/// held one transaction (`tx`) and no attempts.
#[derive(Deserialize)]
struct IntentRecord {
    id: DisbursementId,
    nonce: u64,
    #[serde(default, with = "crate::text::decimal")]
    amount: u128,
    #[serde(default)]
    attempts: Vec<Attempt>,
    /// The earlier record's one transaction.
    #[serde(default)]
    tx: Option<SignedTx>,
    /// Absent in earlier records: those may have been broadcast, so they are bound.
    #[serde(default = "bound_by_default")]
    bound: bool,
    #[serde(default)]
    submitted: bool,
    #[serde(default)]
    inclusion: Option<Inclusion>,
    #[serde(default)]
    cancel: Option<String>,
}

/// Says what the executor holds on, as of its last tick, for a refusal's message.
pub fn describe_hold(hold: Option<&Hold>) -> String {
    match hold {
        None => "it holds on nothing".into(),
        Some(hold) => format!("it holds on: {hold}"),
    }
}

fn bound_by_default() -> bool {
    true
}

impl TryFrom<IntentRecord> for Intent {
    type Error = &'static str;

    /// An intent without any attempt is refused (decoded as corrupt): everything else
    /// relies on its latest one.
    fn try_from(record: IntentRecord) -> Result<Intent, &'static str> {
        let mut attempts = record.attempts;
        if let Some(tx) = record.tx {
            attempts.insert(0, Attempt::new(AttemptKind::Payment, tx, 0, None));
        }
        if attempts.is_empty() {
            return Err("an intent without any signed transaction");
        }
        Ok(Intent {
            id: record.id,
            nonce: record.nonce,
            amount: record.amount,
            attempts,
            bound: record.bound,
            submitted: record.submitted,
            inclusion: record.inclusion,
            cancel: record.cancel,
        })
    }
}

/// Why the executor waits for an operator: a fact it cannot settle alone without
/// guessing. Re-checked every tick (it lifts when the fact changes), and settled for good
/// by an audited admin call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Hold {
    /// With nothing in flight, the ledger's next nonce is not the store's.
    NonceDrift {
        /// The store's next nonce.
        store: u64,
        /// The ledger's.
        ledger: u64,
    },
    /// The chain's next nonce is below the lowest intent's: the nonces between belong to
    /// no payment of ours (another sender's transactions, pending or dropped), and nothing
    /// of ours can be mined until they are filled. Lifts by itself once they are.
    NonceGap {
        /// The disbursement of the lowest intent.
        id: DisbursementId,
        /// Its nonce.
        nonce: u64,
        /// The chain's next nonce at its head.
        chain_nonce: u64,
    },
    /// The ledger refuses, for a business reason, a transaction that may already be out
    /// there (an earlier hand-over of the intent was not refused): it cannot be cancelled
    /// outright, and the executor will not cancel it by replacement on its own.
    Refused {
        /// The disbursement.
        id: DisbursementId,
        /// Its nonce.
        nonce: u64,
        /// The ledger's refusal.
        reason: String,
    },
    /// One of the intent's own transactions is in a block at depth and succeeded, but did
    /// not pay what it was signed to pay (a token that took a fee, or moved another
    /// amount): money may have moved, so the executor neither counts it paid nor pays
    /// again on its own.
    Mismatch {
        /// The disbursement.
        id: DisbursementId,
        /// Its nonce.
        nonce: u64,
        /// The transaction in the block.
        tx_hash: String,
        /// The block.
        block: u64,
        /// What the chain shows, against what was signed.
        reason: String,
    },
    /// The chain spent an intent's nonce (at depth) and none of its transactions is
    /// there.
    ForeignNonce {
        /// The disbursement bound to the nonce.
        id: DisbursementId,
        /// The nonce.
        nonce: u64,
        /// The treasury's nonce at the depth checked.
        chain_nonce: u64,
        /// Every transaction signed for it.
        attempts: Vec<String>,
        /// The transaction that spent the nonce, read from its block, when found.
        #[serde(default)]
        spent_by: Option<String>,
    },
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hold::NonceDrift { store, ledger } => write!(
                f,
                "nonce drift: the store's next nonce is {store} but the ledger's is {ledger}, \
                 with nothing of ours in flight (another sender used the treasury key, the \
                 database was restored from a backup, or the chain was reset); nothing is paid \
                 until an operator checks the treasury's transactions and calls \
                 POST /admin/executor/adopt-nonce"
            ),
            Hold::NonceGap {
                id,
                nonce,
                chain_nonce,
            } => write!(
                f,
                "nonce gap: the chain's next nonce is {chain_nonce} but the lowest payment in \
                 flight is at nonce {nonce} (disbursement {id}); nonces {chain_nonce} to {} \
                 belong to no payment of ours (another sender's transactions, not mined or \
                 dropped) and nothing of ours can be mined until they are: have them sent \
                 again, or send no-op transactions from the treasury key at those nonces; \
                 the executor goes on by itself",
                nonce.saturating_sub(1)
            ),
            Hold::Refused { id, nonce, reason } => write!(
                f,
                "the ledger refuses disbursement {id}'s transaction at nonce {nonce} ({reason}), \
                 and an earlier one may already be out there: it is bound to its nonce and \
                 cannot be cancelled outright; nothing is paid until the refusal stops or an \
                 operator cancels it by replacement (POST /admin/disbursements/{id}/cancel)"
            ),
            Hold::Mismatch {
                id,
                nonce,
                tx_hash,
                block,
                reason,
            } => write!(
                f,
                "disbursement {id}'s transaction {tx_hash} (nonce {nonce}) is final in block \
                 {block} but did not pay what it was signed to pay: {reason}; nothing is paid \
                 until an operator decides (POST /admin/intents/{nonce}/resolve with outcome \
                 paid: it stands as the payment; not_paid: the disbursement is queued again, \
                 or cancelled if a cancel was asked first)"
            ),
            Hold::ForeignNonce {
                id,
                nonce,
                chain_nonce,
                attempts,
                spent_by,
            } => write!(
                f,
                "nonce {nonce} of disbursement {id} is spent on chain (the treasury's nonce \
                 there is {chain_nonce}) by {}, which is none of its transactions ({}); \
                 nothing is paid until an operator finds out whether it was paid and calls \
                 POST /admin/intents/{nonce}/resolve with outcome paid or not_paid",
                spent_by.as_deref().map_or_else(
                    || "a transaction not found in the last blocks".to_owned(),
                    |hash| format!("transaction {hash}")
                ),
                attempts.join(", ")
            ),
        }
    }
}

/// One operator action: who, what, why, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Its position in the log.
    pub seq: u64,
    /// When (Unix milliseconds).
    pub at_ms: u64,
    /// Who.
    pub actor: String,
    /// What, e.g. `breaker.force_open`.
    pub action: String,
    /// Why, as the operator said.
    pub reason: String,
    /// What it touched, e.g. a disbursement id or the transition made.
    pub detail: String,
    /// Who the caller said they were, unchecked (the admin API's `X-Actor`), if they
    /// said: a note beside `actor`, which is the authenticated credential's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unverified_actor: Option<String>,
}

/// The executor's state as an operator sees it, persisted after every tick.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorSnapshot {
    /// Ticks run since the store was created.
    pub ticks: u64,
    /// When the last tick ended (Unix milliseconds).
    pub last_tick_ms: u64,
    /// The last error, if the last tick had one.
    pub last_error: Option<String>,
    /// Set while the executor is halted, with the reason: a storage or signing error or
    /// another chain (until a restart), or a [`Hold`] (until an operator settles it).
    pub halted: Option<String>,
    /// Set while the executor waits for an operator's decision.
    #[serde(default)]
    pub hold: Option<Hold>,
    /// Submissions the ledger accepted.
    pub submitted: u64,
    /// Submissions that failed for infrastructure reasons.
    pub submission_failures: u64,
    /// Other ledger calls that failed for infrastructure reasons (see
    /// [`TickReport::read_failures`](crate::TickReport::read_failures)).
    #[serde(default)]
    pub read_failures: u64,
    /// Disbursements seen executed.
    pub executed: u64,
    /// Disbursements cancelled.
    pub cancelled: u64,
    /// Submissions not attempted because the breaker refused.
    pub rejected_by_breaker: u64,
    /// Submissions whose fee the ledger refused.
    #[serde(default)]
    pub underpriced: u64,
    /// Replacements signed with higher fees.
    #[serde(default)]
    pub fee_bumps: u64,
    /// Included transactions whose block left the chain.
    #[serde(default)]
    pub reorgs: u64,
    /// Whether a transaction waits because the fee caps forbid the bump it needs.
    #[serde(default)]
    pub fee_cap_reached: bool,
    /// How much the treasury lacks to pay the next disbursement (with the worst-case
    /// fees of everything in flight); `None` when it is not short.
    #[serde(default)]
    pub balance_shortfall: Option<u128>,
    /// The asset the shortfall is in ([`NATIVE`](crate::policy::NATIVE): the coin, which
    /// also pays every fee; or a token's symbol).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shortfall_asset: Option<String>,
    /// The treasury's balances as last read before paying (by asset, the full balance,
    /// decimal), and when (Unix ms): read only when something is ready to pay.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub balances: std::collections::BTreeMap<String, String>,
    /// When [`balances`](Self::balances) were last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balances_at_ms: Option<u64>,
    /// When the oldest transaction still waiting for its confirmations was first
    /// accepted (Unix milliseconds).
    #[serde(default)]
    pub oldest_pending_ms: Option<u64>,
}

/// How many disbursements the store holds in each status. Kept by every transaction that
/// moves one (so it costs one read, and survives restarts); counted from the records
/// once, when a store without it is opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Waiting for approvals.
    #[serde(default)]
    pub awaiting_approval: u64,
    /// Queued (waiting for their epoch, dependencies or the executor).
    pub queued: u64,
    /// Signed and stored, not yet accepted by the ledger.
    pub staged: u64,
    /// Accepted by the ledger, not yet seen in a block.
    pub submitted: u64,
    /// In a block, waiting for their confirmations.
    pub included: u64,
    /// Paid.
    pub executed: u64,
    /// Will never be paid.
    pub cancelled: u64,
}

impl Totals {
    /// Every disbursement the store holds.
    pub fn total(&self) -> u64 {
        self.awaiting_approval
            + self.queued
            + self.staged
            + self.submitted
            + self.included
            + self.executed
            + self.cancelled
    }

    /// The counter of `status`.
    pub(crate) fn of(&mut self, status: &DisbursementStatus) -> &mut u64 {
        match status {
            DisbursementStatus::AwaitingApproval => &mut self.awaiting_approval,
            DisbursementStatus::Queued => &mut self.queued,
            DisbursementStatus::Staged { .. } => &mut self.staged,
            DisbursementStatus::Submitted { .. } => &mut self.submitted,
            DisbursementStatus::Included { .. } => &mut self.included,
            DisbursementStatus::Executed { .. } => &mut self.executed,
            DisbursementStatus::Cancelled { .. } => &mut self.cancelled,
        }
    }
}

/// Work waiting in the indexes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backlog {
    /// Queued, dependencies executed, activation epoch not yet reached (or not yet seen).
    pub scheduled: u64,
    /// Queued and payable now.
    pub ready: u64,
    /// Waiting for approvals.
    #[serde(default)]
    pub awaiting_approval: u64,
    /// Ready, but refused by the policy in force at signing.
    #[serde(default)]
    pub held: u64,
    /// Signed and stored, not yet accepted by the ledger.
    pub staged: u64,
    /// Accepted by the ledger, not yet seen in a block.
    pub submitted: u64,
    /// In a block, waiting for its confirmations.
    #[serde(default)]
    pub included: u64,
}

impl Backlog {
    /// Everything not yet final.
    pub fn total(&self) -> u64 {
        self.scheduled
            + self.ready
            + self.awaiting_approval
            + self.held
            + self.staged
            + self.submitted
            + self.included
    }
}
