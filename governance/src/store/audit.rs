//! The audit log: every operator action, who, why and when, in order. JSON, since people
//! read it.

use super::codec::decode_json;
use super::keys::{Kind, u64_key};
use super::records::AuditRecord;
use super::{GovStore, NEXT_AUDIT, StoreError};

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
        let record = self.transact(|txn| {
            let seq = txn.counter(NEXT_AUDIT)?.unwrap_or(0);
            txn.set_counter(NEXT_AUDIT, seq + 1);
            let record = AuditRecord {
                seq,
                at_ms,
                actor: actor.to_owned(),
                action: action.to_owned(),
                reason: reason.to_owned(),
                detail: detail.to_owned(),
            };
            txn.put_json(Kind::Audit, &u64_key(seq), &record);
            Ok(record)
        })?;
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
