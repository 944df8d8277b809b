//! An operator's decisions on what the executor will not guess: what spent a nonce that
//! none of our transactions holds, and which nonce to go on from after a drift. Each is
//! accepted only while the executor is holding for exactly that question (its snapshot's
//! [`Hold`]), in one transaction with the change it makes.

use sled::Transactional;

use super::codec::u64_key;
use super::records::{ExecutorSnapshot, Hold, Intent};
use super::{
    DISBURSEMENTS, EPOCH, EXECUTOR, GovStore, INTENTS, META, NEXT_NONCE, RequestError, execute,
    flatten, tx_counter, tx_get, tx_need, tx_put,
};
use crate::treasury::{Disbursement, DisbursementStatus};

/// An operator's finding about a disbursement whose nonce the chain spent without any
/// of its transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// It was paid (the operator found the payment): Executed, its dependents released.
    Paid {
        /// The transaction that paid it, if the operator names one.
        tx_hash: Option<String>,
    },
    /// It was not paid: queued again, to be signed at a fresh nonce.
    NotPaid,
}

impl GovStore {
    /// Settles the intent at `nonce` as the operator found it ([`Resolution`]). Refused
    /// ([`RequestError::Conflict`]) unless the executor is holding on this nonce.
    pub fn resolve_intent(
        &self,
        nonce: u64,
        resolution: &Resolution,
        reason: &str,
    ) -> Result<Disbursement, RequestError> {
        let outcome = self.lifecycle_trees().transaction(
            |(disbursements, dependents, scheduled, ready, intents, meta)| {
                let held = tx_get::<ExecutorSnapshot>(meta, META, EXECUTOR)?
                    .and_then(|snapshot| snapshot.hold);
                match held {
                    Some(Hold::ForeignNonce { nonce: held, .. }) if held == nonce => {}
                    other => {
                        return Ok(Err(RequestError::Conflict(format!(
                            "the executor is not waiting for a decision on nonce {nonce} ({})",
                            describe(other.as_ref())
                        ))));
                    }
                }
                let key = u64_key(nonce);
                let intent: Intent = tx_need(intents, INTENTS, &key)?;
                intents.remove(&key)?;
                let record = match resolution {
                    Resolution::Paid { tx_hash } => execute(
                        disbursements,
                        dependents,
                        scheduled,
                        ready,
                        tx_counter(meta, EPOCH)?,
                        intent.id,
                        DisbursementStatus::Executed {
                            tx_hash: tx_hash.clone().unwrap_or_default(),
                            block: 0,
                            resolution: Some(format!("paid, as an operator found: {reason}")),
                        },
                    )?,
                    Resolution::NotPaid => {
                        let id = u64_key(intent.id);
                        let mut record: Disbursement = tx_need(disbursements, DISBURSEMENTS, &id)?;
                        record.status = DisbursementStatus::Queued;
                        tx_put(disbursements, &id, &record)?;
                        // It was ready when it was staged: its epoch and dependencies
                        // have not changed since.
                        ready.insert(&id, &[])?;
                        record
                    }
                };
                Ok(Ok(record))
            },
        );
        flatten(outcome)?
    }

    /// Sets the store's next nonce to `nonce`, or to the ledger's nonce the executor saw,
    /// after a nonce drift. Refused ([`RequestError::Conflict`]) unless the executor is
    /// holding on a drift with nothing in flight. Returns the nonce before and after.
    pub fn adopt_nonce(&self, nonce: Option<u64>) -> Result<(u64, u64), RequestError> {
        // sled transactions cannot scan: read before. The executor stages nothing while
        // it holds on a drift, so nothing can be staged in between.
        if self.intents.iter().next().is_some() {
            return Err(RequestError::Conflict(
                "intents are in flight: their reconciliation settles the nonce".into(),
            ));
        }
        let outcome = self.meta.transaction(|meta| {
            let held = tx_get::<ExecutorSnapshot>(meta, META, EXECUTOR)?
                .and_then(|snapshot| snapshot.hold);
            let Some(Hold::NonceDrift { store, ledger }) = held else {
                return Ok(Err(RequestError::Conflict(format!(
                    "the executor is not holding on a nonce drift ({})",
                    describe(held.as_ref())
                ))));
            };
            let adopted = nonce.unwrap_or(ledger);
            meta.insert(NEXT_NONCE, &u64_key(adopted))?;
            Ok(Ok((store, adopted)))
        });
        flatten(outcome)?
    }
}

fn describe(hold: Option<&Hold>) -> String {
    match hold {
        None => "it is not holding".into(),
        Some(hold) => format!("it holds on: {hold}"),
    }
}
