//! Queueing, reading and cancelling disbursements: what governance and operators ask of
//! the store.

use super::audit::{Audit, write_audit};
use super::codec::{decode, decode_u64};
use super::keys::{Kind, u64_key};
use super::policy::read_spend;
use super::records::Intent;
use super::txn::Txn;
use super::{
    EPOCH, GovStore, NEXT_ID, RequestError, SPEND, StoreError, cancel_cascade, put_status, schedule,
};
use crate::policy::Policy;
use crate::treasury::{
    Approval, Disbursement, DisbursementId, DisbursementStatus, NewDisbursement, QueueError,
};
use std::collections::HashSet;

/// The outcome of [`GovStore::queue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// The disbursement, new or (for a repeated external key) the existing one.
    pub disbursement: Disbursement,
    /// `false` when the external key was already queued.
    pub created: bool,
}

/// The outcome of an operator's [`GovStore::cancel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancellation {
    /// It was queued: it is Cancelled now (its dependents too).
    Done(Disbursement),
    /// It is staged or submitted: a transaction for its nonce may be out there, so the
    /// executor will replace it with a cancellation at the same nonce. It becomes
    /// Cancelled only if that replacement is what lands (its status says `cancelling`).
    Replacing(Disbursement),
}

/// What [`GovStore::queue_batch`] decided for one item before writing anything.
enum Plan {
    /// Its external key is already queued: this is the first disbursement.
    Existing(Box<Disbursement>),
    /// New, waiting for these dependencies to execute.
    New(Vec<DisbursementId>),
}

impl GovStore {
    /// Queues a disbursement, allocating its id. Queueing an external key again returns
    /// the first disbursement (`created: false`). Call [`flush`](Self::flush) before
    /// acknowledging it to anyone.
    pub fn queue(&self, new: &NewDisbursement, now_ms: u64) -> Result<Queued, RequestError> {
        match self.queue_batch(std::slice::from_ref(new), now_ms) {
            Ok(mut queued) => queued
                .pop()
                .ok_or(RequestError::Storage(StoreError::Missing {
                    kind: Kind::Disbursements.name(),
                    key: "the queued disbursement".into(),
                })),
            Err(RequestError::InvalidItem { error, .. }) => Err(RequestError::Invalid(error)),
            Err(other) => Err(other),
        }
    }

    /// Queues a batch (a governance proposal's payouts) in one transaction: all of it or,
    /// if any item is invalid, none of it ([`RequestError::InvalidItem`] names the first).
    /// Ids are allocated in the batch's order; an item may depend on ids queued before
    /// the batch. An external key already queued (or repeated within the batch) yields
    /// the first disbursement with `created: false`. Call [`flush`](Self::flush) before
    /// acknowledging it to anyone.
    pub fn queue_batch(
        &self,
        batch: &[NewDisbursement],
        now_ms: u64,
    ) -> Result<Vec<Queued>, RequestError> {
        for (index, new) in batch.iter().enumerate() {
            new.validate()
                .map_err(|error| RequestError::InvalidItem { index, error })?;
        }
        let outcome = self.transact(|txn| queue_in(txn, batch, now_ms, &self.policy(), None));
        outcome?.map_err(|(index, error)| RequestError::InvalidItem { index, error })
    }

    /// [`queue`](Self::queue), audited in the same transaction: the audit record
    /// (`disbursement.queue`, the memo as its reason unless `audit` gives one) is written
    /// with the disbursement, or neither is. Nothing is audited for an external key
    /// already queued.
    pub fn queue_audited(
        &self,
        new: &NewDisbursement,
        now_ms: u64,
        audit: &Audit,
    ) -> Result<Queued, RequestError> {
        new.validate()?;
        let outcome = self.transact(|txn| {
            let queued = match queue_in(
                txn,
                std::slice::from_ref(new),
                now_ms,
                &self.policy(),
                Some(&audit.actor),
            )? {
                Ok(mut queued) => queued.pop(),
                Err((_, error)) => return Ok(Err(RequestError::Invalid(error))),
            };
            if let Some(Queued {
                disbursement,
                created: true,
            }) = &queued
            {
                let reason = if audit.reason.is_empty() {
                    &disbursement.memo
                } else {
                    &audit.reason
                };
                let detail = format!(
                    "disbursement {}: {} to {}",
                    disbursement.id, disbursement.amount, disbursement.destination
                );
                write_audit(txn, audit, "disbursement.queue", reason, &detail)?;
            }
            Ok(Ok(queued))
        });
        outcome??.ok_or(RequestError::Storage(StoreError::Missing {
            kind: Kind::Disbursements.name(),
            key: "the queued disbursement".into(),
        }))
    }

    /// [`queue_batch`](Self::queue_batch), audited in the same transaction: one record
    /// (`disbursement.queue_batch`) for the batch if it created any disbursement.
    pub fn queue_batch_audited(
        &self,
        batch: &[NewDisbursement],
        now_ms: u64,
        audit: &Audit,
    ) -> Result<Vec<Queued>, RequestError> {
        for (index, new) in batch.iter().enumerate() {
            new.validate()
                .map_err(|error| RequestError::InvalidItem { index, error })?;
        }
        let outcome = self.transact(|txn| {
            let queued = match queue_in(txn, batch, now_ms, &self.policy(), Some(&audit.actor))? {
                Ok(queued) => queued,
                Err(invalid) => return Ok(Err(invalid)),
            };
            let created: Vec<&Disbursement> = queued
                .iter()
                .filter(|q| q.created)
                .map(|q| &q.disbursement)
                .collect();
            if let (Some(first), Some(last)) = (created.first(), created.last()) {
                // Totals per asset: amounts in different assets do not add up.
                let mut totals: std::collections::BTreeMap<&str, u128> = Default::default();
                for d in &created {
                    let total = totals.entry(d.asset.as_str()).or_default();
                    *total = total.saturating_add(d.amount);
                }
                let totals: Vec<String> = totals
                    .iter()
                    .map(|(asset, total)| format!("{total} {asset}"))
                    .collect();
                let detail = format!(
                    "disbursements {}..={} ({} created, {} already queued), {} in all",
                    first.id,
                    last.id,
                    created.len(),
                    queued.len() - created.len(),
                    totals.join(", ")
                );
                write_audit(
                    txn,
                    audit,
                    "disbursement.queue_batch",
                    &audit.reason,
                    &detail,
                )?;
            }
            Ok(Ok(queued))
        });
        outcome?.map_err(|(index, error)| RequestError::InvalidItem { index, error })
    }

    /// The disbursement with this id.
    pub fn get(&self, id: DisbursementId) -> Result<Option<Disbursement>, StoreError> {
        let key = u64_key(id);
        match self.read(Kind::Disbursements, &key)? {
            Some(bytes) => decode(Kind::Disbursements, &key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Up to `limit` disbursements with ids after `after`, in id order.
    pub fn list(
        &self,
        after: Option<DisbursementId>,
        limit: usize,
    ) -> Result<Vec<Disbursement>, StoreError> {
        let start = after.map_or(0, |id| id.saturating_add(1));
        self.scan(Kind::Disbursements, &u64_key(start), limit)?
            .into_iter()
            .map(|(key, value)| decode(Kind::Disbursements, &key, &value))
            .collect()
    }

    /// An operator's cancel. A queued disbursement is cancelled at once, its dependents
    /// too. A staged or submitted one is bound to its nonce (a transaction may already be
    /// on its way), so the request is recorded on its intent and the executor cancels it
    /// by replacement ([`Cancellation::Replacing`]; asking again changes nothing). One
    /// already in a block, executed or cancelled can no longer be cancelled.
    pub fn cancel(&self, id: DisbursementId, reason: &str) -> Result<Cancellation, RequestError> {
        let outcome = self.transact(|txn| cancel_in(txn, id, reason));
        outcome?
    }

    /// [`cancel`](Self::cancel), audited in the same transaction
    /// (`disbursement.cancel`, or `disbursement.cancel_by_replacement`): both or neither.
    /// A refused cancel is not audited.
    pub fn cancel_audited(
        &self,
        id: DisbursementId,
        audit: &Audit,
    ) -> Result<Cancellation, RequestError> {
        let outcome = self.transact(|txn| {
            let outcome = cancel_in(txn, id, &audit.reason)?;
            let action = match &outcome {
                Ok(Cancellation::Done(_)) => "disbursement.cancel",
                Ok(Cancellation::Replacing(_)) => "disbursement.cancel_by_replacement",
                Err(_) => return Ok(outcome),
            };
            write_audit(
                txn,
                audit,
                action,
                &audit.reason,
                &format!("disbursement {id}"),
            )?;
            Ok(outcome)
        });
        outcome?
    }
}

/// The transaction of [`GovStore::queue_batch`]: the disbursements queued, or the first
/// invalid item (nothing written then).
#[allow(clippy::type_complexity)]
fn queue_in(
    txn: &mut Txn<'_>,
    batch: &[NewDisbursement],
    now_ms: u64,
    policy: &Policy,
    actor: Option<&str>,
) -> Result<Result<Vec<Queued>, (usize, QueueError)>, StoreError> {
    // Decide everything first, so that an invalid item leaves nothing written.
    let mut plans = Vec::with_capacity(batch.len());
    // The window is kept for the assets with a daily limit only (all /status and the
    // metrics show): queueing without one costs no read or write of it.
    let limited = |asset: &str| policy.has_daily_limit(asset);
    let mut spend = if batch.iter().any(|new| limited(&new.asset)) {
        read_spend(txn)?
    } else {
        Default::default()
    };
    let mut spend_changed = false;
    let mut keys_seen: HashSet<&str> = HashSet::new();
    for (index, new) in batch.iter().enumerate() {
        if let Some(key) = &new.external_key
            && let Some(id) = txn.get_raw(Kind::ExternalKeys, key.as_bytes())?
        {
            let id = decode_u64(Kind::ExternalKeys, key.as_bytes(), &id)?;
            plans.push(Plan::Existing(Box::new(
                txn.need(Kind::Disbursements, &u64_key(id))?,
            )));
            continue;
        }
        let repeated = new
            .external_key
            .as_deref()
            .is_some_and(|key| !keys_seen.insert(key));
        if !repeated {
            // The batch's earlier items count towards the limit too.
            let spent = spend.spent(&new.asset, now_ms);
            if let Err(refusal) =
                policy.check_queue(&new.asset, new.amount, &new.destination, spent)
            {
                return Ok(Err((index, QueueError::Refused(refusal))));
            }
            if limited(&new.asset) {
                spend.add(&new.asset, new.amount, now_ms, now_ms);
                spend_changed = true;
            }
        }
        let mut waiting_for = vec![];
        for &dep in &new.depends_on {
            let Some(record) = txn.get::<Disbursement>(Kind::Disbursements, &u64_key(dep))? else {
                return Ok(Err((index, QueueError::UnknownDependency(dep))));
            };
            match record.status {
                DisbursementStatus::Executed { .. } => {}
                DisbursementStatus::Cancelled { .. } => {
                    return Ok(Err((index, QueueError::CancelledDependency(dep))));
                }
                _ => waiting_for.push(dep),
            }
        }
        plans.push(Plan::New(waiting_for));
    }
    let first_id = txn.counter(NEXT_ID)?.unwrap_or(0);
    let epoch_seen = txn.counter(EPOCH)?;
    let mut next_id = first_id;
    let mut out: Vec<Queued> = Vec::with_capacity(batch.len());
    let mut keys_in_batch: Vec<(&str, usize)> = vec![];
    for (new, plan) in batch.iter().zip(plans) {
        let waiting_for = match plan {
            Plan::Existing(disbursement) => {
                out.push(Queued {
                    disbursement: *disbursement,
                    created: false,
                });
                continue;
            }
            Plan::New(waiting_for) => waiting_for,
        };
        if let Some(key) = &new.external_key
            && let Some(&(_, first)) = keys_in_batch.iter().find(|(seen, _)| *seen == key.as_str())
        {
            let disbursement = out[first].disbursement.clone();
            out.push(Queued {
                disbursement,
                created: false,
            });
            continue;
        }
        let id = next_id;
        next_id += 1;
        let approvals: Vec<Approval> = actor
            .map(|actor| Approval {
                actor: actor.to_owned(),
                at_ms: now_ms,
            })
            .into_iter()
            .collect();
        let mut disbursement = Disbursement {
            id,
            destination: new.destination.clone(),
            amount: new.amount,
            memo: new.memo.clone(),
            activation_epoch: new.activation_epoch,
            depends_on: new.depends_on.clone(),
            external_key: new.external_key.clone(),
            asset: new.asset.clone(),
            status: DisbursementStatus::Queued,
            queued_at_ms: now_ms,
            approvals,
        };
        // Named, its queuer is its first approval; unnamed (a library caller), it has none.
        let awaiting = policy.lacks_approvals(&disbursement);
        if awaiting {
            disbursement.status = DisbursementStatus::AwaitingApproval;
        }
        txn.count_move(None, &disbursement.status);
        txn.put(Kind::Disbursements, &u64_key(id), &disbursement);
        for &dep in &waiting_for {
            let mut list: Vec<DisbursementId> = txn
                .get(Kind::Dependents, &u64_key(dep))?
                .unwrap_or_default();
            list.push(id);
            txn.put(Kind::Dependents, &u64_key(dep), &list);
        }
        if awaiting {
            txn.put_raw(Kind::Awaiting, &u64_key(id), vec![]);
        } else if waiting_for.is_empty() {
            schedule(txn, epoch_seen, new.activation_epoch, id);
        }
        if let Some(key) = &new.external_key {
            txn.put_raw(Kind::ExternalKeys, key.as_bytes(), u64_key(id).to_vec());
            keys_in_batch.push((key.as_str(), out.len()));
        }
        out.push(Queued {
            disbursement,
            created: true,
        });
    }
    if next_id != first_id {
        txn.set_counter(NEXT_ID, next_id);
        if spend_changed {
            txn.put_json(Kind::Meta, SPEND, &spend);
        }
    }
    Ok(Ok(out))
}

/// The transaction of [`GovStore::cancel`].
fn cancel_in(
    txn: &mut Txn<'_>,
    id: DisbursementId,
    reason: &str,
) -> Result<Result<Cancellation, RequestError>, StoreError> {
    let Some(mut record) = txn.get::<Disbursement>(Kind::Disbursements, &u64_key(id))? else {
        return Ok(Err(RequestError::NotFound(id)));
    };
    let nonce = match &record.status {
        DisbursementStatus::Queued | DisbursementStatus::AwaitingApproval => {
            let cancelled = cancel_cascade(txn, id, reason.to_owned())?;
            return Ok(Ok(Cancellation::Done(cancelled)));
        }
        DisbursementStatus::Staged { nonce, .. } | DisbursementStatus::Submitted { nonce, .. } => {
            *nonce
        }
        other => {
            return Ok(Err(RequestError::NotCancellable {
                id,
                status: other.name(),
            }));
        }
    };
    let mut intent: Intent = txn.need(Kind::Intents, &u64_key(nonce))?;
    if intent.id != id {
        return Err(StoreError::Invariant {
            kind: Kind::Intents.name(),
            key: nonce.to_string(),
            reason: format!(
                "disbursement {id} says this nonce, whose intent pays {}",
                intent.id
            ),
        });
    }
    if intent.cancel.is_none() {
        intent.cancel = Some(reason.to_owned());
        txn.put(Kind::Intents, &u64_key(nonce), &intent);
        put_status(txn, &mut record, intent.status());
    }
    Ok(Ok(Cancellation::Replacing(record)))
}
