//! The spending policy, as the store enforces it (the rules are in [`crate::policy`]):
//! queueing checks the limits and decides who needs approvals (`queue.rs`); here,
//! approving, holding back at signing what the policy in force refuses, and re-judging
//! what waits when the policy changes.

use std::sync::{Arc, PoisonError, RwLock};

use super::audit::{Audit, write_audit};
use super::codec::{decode, key_u64};
use super::keys::{Kind, u64_key};
use super::txn::Txn;
use super::{EPOCH, GovStore, RequestError, SIGNED, SPEND, StoreError, put_status, schedule};
use crate::policy::{Policy, Refusal, Spend};
use crate::treasury::{Approval, Disbursement, DisbursementId, DisbursementStatus};

/// The policy a store enforces, shared by its clones.
pub(super) type Shared = Arc<RwLock<Arc<Policy>>>;

/// What [`GovStore::set_policy`] changed for the disbursements waiting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rejudged {
    /// Held ones the new policy allows: ready again.
    pub released: usize,
    /// Ones awaiting approval that have enough under the new policy: queued.
    pub approved: usize,
}

/// The most approvals one request may carry (a proposal's payouts).
pub const MAX_APPROVE_BATCH: usize = 1000;

impl GovStore {
    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Puts `policy` in force, then re-judges what waits on it: a held disbursement the
    /// new policy allows is ready again, one awaiting approval that has enough approvals
    /// under it is queued. (What the new policy refuses is found where it matters, when
    /// the executor is about to sign it.) Intents already signed are not touched.
    pub fn set_policy(&self, policy: Policy) -> Result<Rejudged, StoreError> {
        let policy = Arc::new(policy);
        {
            // Swapped between transactions, never during one: each transaction reads the
            // policy inside (under the same lock), so none checks the old policy and
            // commits after the new one is in force.
            let _writing = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            *self.policy.write().unwrap_or_else(PoisonError::into_inner) = policy.clone();
        }
        let mut rejudged = Rejudged::default();
        for (id, _) in self.held(usize::MAX)? {
            let released = self.transact(|txn| {
                let key = u64_key(id);
                if !txn.exists(Kind::Held, &key)? {
                    return Ok(false);
                }
                let record: Disbursement = txn.need(Kind::Disbursements, &key)?;
                let policy = self.policy();
                if record.status != DisbursementStatus::Queued || policy.check_sign(&record).is_ok()
                {
                    txn.delete(Kind::Held, &key);
                    if record.status == DisbursementStatus::Queued {
                        txn.put_raw(Kind::Ready, &key, vec![]);
                    }
                    return Ok(true);
                }
                Ok(false)
            })?;
            rejudged.released += usize::from(released);
        }
        let waiting: Vec<DisbursementId> = self
            .scan(Kind::Awaiting, &[], usize::MAX)?
            .iter()
            .map(|(key, _)| key_u64(Kind::Awaiting, key))
            .collect::<Result<_, _>>()?;
        for id in waiting {
            let approved = self.transact(|txn| {
                let Some(mut record) =
                    txn.get::<Disbursement>(Kind::Disbursements, &u64_key(id))?
                else {
                    return Ok(false);
                };
                if record.status != DisbursementStatus::AwaitingApproval
                    || self.policy().lacks_approvals(&record)
                {
                    return Ok(false);
                }
                make_queued(txn, &mut record)?;
                Ok(true)
            })?;
            rejudged.approved += usize::from(approved);
        }
        Ok(rejudged)
    }

    /// What the disbursements of `asset` queued in the rolling 24 hours to `now_ms`, not
    /// cancelled, pay in all.
    pub fn spent(&self, asset: &str, now_ms: u64) -> Result<u128, StoreError> {
        Ok(self.spend_record()?.spent(asset, now_ms))
    }

    fn spend_record(&self) -> Result<Spend, StoreError> {
        match self.read(Kind::Meta, SPEND)? {
            Some(bytes) => super::codec::decode_json(Kind::Meta, SPEND, &bytes),
            None => Ok(Spend::default()),
        }
    }

    /// Up to `limit` held disbursements (ready, refused by the policy in force at
    /// signing), with the refusal, lowest id first.
    pub fn held(&self, limit: usize) -> Result<Vec<(DisbursementId, String)>, StoreError> {
        self.scan(Kind::Held, &[], limit)?
            .into_iter()
            .map(|(key, value)| {
                let id = key_u64(Kind::Held, &key)?;
                Ok((id, String::from_utf8_lossy(&value).into_owned()))
            })
            .collect()
    }

    /// Up to `limit` disbursements awaiting approval, lowest id first.
    pub fn awaiting_approval(&self, limit: usize) -> Result<Vec<Disbursement>, StoreError> {
        let mut out = vec![];
        for (key, _) in self.scan(Kind::Awaiting, &[], limit)? {
            let id = key_u64(Kind::Awaiting, &key)?;
            let full = u64_key(id);
            match self.read(Kind::Disbursements, &full)? {
                Some(bytes) => out.push(decode(Kind::Disbursements, &full, &bytes)?),
                None => {
                    return Err(StoreError::Missing {
                        kind: Kind::Disbursements.name(),
                        key: id.to_string(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// An operator's approval of each of `ids` (a proposal's payouts approved as one), in
    /// one transaction with one audit record each (`disbursement.approve`): all of them or
    /// none. Each must be awaiting approval, and not yet approved by `audit.actor`
    /// ([`RequestError::Conflict`] otherwise). One with the approvals the policy in force
    /// needs is queued (ready once its epoch and dependencies allow).
    pub fn approve_audited(
        &self,
        ids: &[DisbursementId],
        audit: &Audit,
    ) -> Result<Vec<Disbursement>, RequestError> {
        check_approval_ids(ids).map_err(RequestError::Conflict)?;
        let outcome = self.transact(|txn| {
            let policy = self.policy();
            // Every check before any write: the transaction applies what it wrote when
            // it returns, refusal or not.
            let mut records = Vec::with_capacity(ids.len());
            for &id in ids {
                let Some(record) = txn.get::<Disbursement>(Kind::Disbursements, &u64_key(id))?
                else {
                    return Ok(Err(RequestError::NotFound(id)));
                };
                if record.status != DisbursementStatus::AwaitingApproval {
                    return Ok(Err(RequestError::Conflict(format!(
                        "disbursement {id} is {}: it is not awaiting approval",
                        record.status.name()
                    ))));
                }
                if record.approved_by(&audit.actor) {
                    return Ok(Err(RequestError::Conflict(format!(
                        "disbursement {id} is already approved by {}: a second approval \
                         must come from another name",
                        audit.actor
                    ))));
                }
                records.push(record);
            }
            let mut out = Vec::with_capacity(ids.len());
            for mut record in records {
                let id = record.id;
                record.approvals.push(Approval {
                    actor: audit.actor.clone(),
                    at_ms: audit.at_ms,
                });
                let have = record.approvers();
                let needed = policy.approvals_needed(record.asset(), record.amount);
                let names: Vec<&str> = record.approvals.iter().map(|a| a.actor.as_str()).collect();
                let mut detail = format!(
                    "disbursement {id}: {} to {}, approval {have} of {needed} ({})",
                    record.amount,
                    record.destination,
                    names.join(", ")
                );
                if !policy.lacks_approvals(&record) {
                    make_queued(txn, &mut record)?;
                    detail.push_str(": queued");
                } else {
                    txn.put(Kind::Disbursements, &u64_key(id), &record);
                }
                write_audit(txn, audit, "disbursement.approve", &audit.reason, &detail)?;
                out.push(record);
            }
            Ok(Ok(out))
        });
        outcome?
    }

    /// Up to `limit` ready disbursements the policy in force lets the executor sign now,
    /// lowest id first (see [`Payable`]). Each ready one it refuses is taken off the ready
    /// index first, in its own transaction: back to awaiting approval if it lacks
    /// approvals, else held (with the refusal) until a policy that allows it is in force
    /// ([`set_policy`](Self::set_policy)) or an operator cancels it. The list stops before
    /// the first that would take what was signed in the rolling 24 hours over its asset's
    /// daily limit: it waits, in id order, as for a balance shortfall.
    pub(crate) fn payable(&self, limit: usize) -> Result<Payable, StoreError> {
        let mut out = Payable::default();
        // Each pass takes at least one refused disbursement off the index (or finds it
        // gone, or allowed by a policy put in force since), so the passes are bounded by
        // what is ready; the bound only guards against an entry that cannot be taken off.
        for _ in 0..64 {
            let policy = self.policy();
            let ready = self.ready(limit)?;
            let mut held_any = false;
            out.ready.clear();
            for record in ready {
                match policy.check_sign(&record) {
                    Ok(()) => out.ready.push(record),
                    Err(refusal) => {
                        if self.hold(record.id)? {
                            out.refused.push((record.id, refusal));
                        }
                        held_any = true;
                    }
                }
            }
            if !held_any || out.ready.len() >= limit {
                out.ready.truncate(limit);
                break;
            }
        }
        // The daily limit on what is signed: the first that does not fit, and every one
        // after it, waits.
        let signed = self.signed_record()?;
        let policy = self.policy();
        let now = crate::text::unix_ms();
        let mut taken: std::collections::BTreeMap<String, u128> = Default::default();
        for (at, record) in out.ready.iter().enumerate() {
            let asset = record.asset();
            let so_far = taken
                .entry(asset.to_owned())
                .or_insert_with(|| signed.spent(asset, now));
            if let Err(refusal) = policy.check_outflow(asset, record.amount, *so_far) {
                out.waiting = Some((record.id, refusal));
                out.ready.truncate(at);
                break;
            }
            *so_far = so_far.saturating_add(record.amount);
        }
        Ok(out)
    }

    /// What was signed in each asset's rolling window.
    fn signed_record(&self) -> Result<Spend, StoreError> {
        match self.read(Kind::Meta, SIGNED)? {
            Some(bytes) => super::codec::decode_json(Kind::Meta, SIGNED, &bytes),
            None => Ok(Spend::default()),
        }
    }

    /// What `asset`'s payments signed in the rolling 24 hours to `now_ms` pay in all.
    pub fn signed_spend(&self, asset: &str, now_ms: u64) -> Result<u128, StoreError> {
        Ok(self.signed_record()?.spent(asset, now_ms))
    }

    /// Takes a ready disbursement the policy in force refuses off the ready index (see
    /// [`payable`](Self::payable)): `false` if it is no longer ready and queued, or the
    /// policy in force now allows it.
    fn hold(&self, id: DisbursementId) -> Result<bool, StoreError> {
        self.transact(|txn| {
            let key = u64_key(id);
            let mut record: Disbursement = txn.need(Kind::Disbursements, &key)?;
            if record.status != DisbursementStatus::Queued || !txn.exists(Kind::Ready, &key)? {
                return Ok(false);
            }
            let refusal = match self.policy().check_sign(&record) {
                Ok(()) => return Ok(false), // a policy put in force since allows it
                Err(refusal) => refusal,
            };
            txn.delete(Kind::Ready, &key);
            match refusal {
                Refusal::Approvals { .. } => {
                    put_status(txn, &mut record, DisbursementStatus::AwaitingApproval);
                    txn.put_raw(Kind::Awaiting, &key, vec![]);
                }
                other => txn.put_raw(Kind::Held, &key, other.to_string().into_bytes()),
            }
            Ok(true)
        })
    }
}

/// What the executor may sign now ([`GovStore::payable`]).
#[derive(Debug, Default)]
pub(crate) struct Payable {
    /// Ready and allowed, lowest id first.
    pub(crate) ready: Vec<Disbursement>,
    /// Ready ones the policy refused this time, taken off the ready index.
    pub(crate) refused: Vec<(DisbursementId, Refusal)>,
    /// The first allowed one that would take the day's signed spend over its limit: it
    /// and those after it wait.
    pub(crate) waiting: Option<(DisbursementId, Refusal)>,
}

/// Whether `ids` is a list one approval request may carry: 1 to [`MAX_APPROVE_BATCH`]
/// ids, none twice. `Err` says what is wrong.
pub fn check_approval_ids(ids: &[DisbursementId]) -> Result<(), String> {
    if ids.is_empty() || ids.len() > MAX_APPROVE_BATCH {
        return Err(format!(
            "approve 1 to {MAX_APPROVE_BATCH} disbursements at once, not {}",
            ids.len()
        ));
    }
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    match sorted.windows(2).find(|w| w[0] == w[1]) {
        Some(pair) => Err(format!("disbursement {} is listed twice", pair[0])),
        None => Ok(()),
    }
}

/// Queues a disbursement that was awaiting approval: indexed as payable if every
/// dependency is executed (else the last one to execute schedules it).
fn make_queued(txn: &mut Txn<'_>, record: &mut Disbursement) -> Result<(), StoreError> {
    let key = u64_key(record.id);
    txn.delete(Kind::Awaiting, &key);
    put_status(txn, record, DisbursementStatus::Queued);
    let mut all_executed = true;
    for dep in &record.depends_on {
        let parent: Disbursement = txn.need(Kind::Disbursements, &u64_key(*dep))?;
        all_executed &= matches!(parent.status, DisbursementStatus::Executed { .. });
    }
    if all_executed {
        let epoch_seen = txn.counter(EPOCH)?;
        schedule(txn, epoch_seen, record.activation_epoch, record.id);
    }
    Ok(())
}

/// Changes the spend record in `txn`, if there is one (none: nothing was counted yet).
pub(super) fn change_spend(
    txn: &mut Txn<'_>,
    change: impl FnOnce(&mut Spend),
) -> Result<(), StoreError> {
    let Some(mut spend) = txn.get_json::<Spend>(Kind::Meta, SPEND)? else {
        return Ok(());
    };
    change(&mut spend);
    txn.put_json(Kind::Meta, SPEND, &spend);
    Ok(())
}

/// Counts `records` as signed now in `txn` (see [`GovStore::payable`]), unless one would
/// take its asset's window over the daily limit of `policy`: then `false`, nothing
/// written.
pub(super) fn count_signed(
    txn: &mut Txn<'_>,
    policy: &Policy,
    records: &[Disbursement],
) -> Result<bool, StoreError> {
    let limited = |asset: &str| policy.has_daily_limit(asset);
    if !records.iter().any(|record| limited(record.asset())) {
        return Ok(true); // no daily limit to keep: nothing read or written
    }
    let mut signed: Spend = txn.get_json(Kind::Meta, SIGNED)?.unwrap_or_default();
    let now = crate::text::unix_ms();
    for record in records.iter().filter(|record| limited(record.asset())) {
        let asset = record.asset();
        if policy
            .check_outflow(asset, record.amount, signed.spent(asset, now))
            .is_err()
        {
            return Ok(false);
        }
        signed.add(asset, record.amount, now, now);
    }
    txn.put_json(Kind::Meta, SIGNED, &signed);
    Ok(true)
}

/// The spend record as `txn` sees it.
pub(super) fn read_spend(txn: &mut Txn<'_>) -> Result<Spend, StoreError> {
    Ok(txn.get_json(Kind::Meta, SPEND)?.unwrap_or_default())
}
