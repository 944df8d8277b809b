//! The audit log: every operator action, who, why and when, in order. JSON, since people
//! read it.

use super::codec::decode_json;
use super::keys::{Kind, u64_key};
use super::records::AuditRecord;
use super::txn::Txn;
use super::{GovStore, NEXT_AUDIT, StoreError};

/// Who asks for an operator's change, why, and when. The `_audited` requests
/// ([`GovStore::cancel_audited`] and the others) write it to the audit log in the same
/// transaction as the change: both are stored, or neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    /// Who (an authenticated credential's name).
    pub actor: String,
    /// Why, as the operator said.
    pub reason: String,
    /// When (Unix milliseconds).
    pub at_ms: u64,
    /// Who the caller says they are, unchecked (the admin API's `X-Actor`): kept beside
    /// the actor as a note.
    pub unverified_actor: Option<String>,
}

/// Appends an audit record in `txn`.
pub(super) fn write_audit(
    txn: &mut Txn<'_>,
    audit: &Audit,
    action: &str,
    reason: &str,
    detail: &str,
) -> Result<AuditRecord, StoreError> {
    let seq = txn.counter(NEXT_AUDIT)?.unwrap_or(0);
    txn.set_counter(NEXT_AUDIT, seq + 1);
    let record = AuditRecord {
        seq,
        at_ms: audit.at_ms,
        actor: audit.actor.clone(),
        action: action.to_owned(),
        reason: reason.to_owned(),
        detail: detail.to_owned(),
        unverified_actor: audit.unverified_actor.clone(),
    };
    txn.put_json(Kind::Audit, &u64_key(seq), &record);
    Ok(record)
}

impl GovStore {
    /// Appends an operator action to the audit log and flushes it.
    pub fn record_audit(
        &self,
        actor: &str,
        action: &str,
        reason: &str,
        detail: &str,
        at_ms: u64,
    ) -> Result<AuditRecord, StoreError> {
        let audit = Audit {
            actor: actor.to_owned(),
            reason: reason.to_owned(),
            at_ms,
            unverified_actor: None,
        };
        let record = self.transact(|txn| write_audit(txn, &audit, action, reason, detail))?;
        self.flush()?;
        Ok(record)
    }

    /// Up to `limit` audit records after sequence number `after`, oldest first.
    pub fn audit(&self, after: Option<u64>, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let start = after.map_or(0, |seq| seq.saturating_add(1));
        self.scan(Kind::Audit, &u64_key(start), limit)?
            .into_iter()
            .map(|(key, value)| decode_json(Kind::Audit, &key, &value))
            .collect()
    }
}
