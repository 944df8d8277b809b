//! The comparison's verdict: every disbursement of the store judged against the chain,
//! each disagreement filed as a double payment, an executed disbursement without a
//! canonical transaction at depth, or another mismatch.

use std::collections::{HashMap, HashSet};

use super::checks::{canonical_receipt, overpaid};
use super::observe::Observed;
use crate::anvil;
use crate::chaos::store::Record;

/// The comparison's findings. Each list names what it found.
#[derive(Debug, Default)]
pub(super) struct Verdict {
    pub(super) executed: u64,
    pub(super) cancelled: u64,
    /// Destinations holding more than their amount.
    pub(super) double_payments: Vec<String>,
    /// Executed disbursements without a canonical, successful transaction in the block the
    /// store names, at least `confirmations` deep.
    pub(super) without_canonical_tx: Vec<String>,
    /// Every other disagreement between the store and the chain.
    pub(super) mismatches: Vec<String>,
    /// Executed disbursements whose transaction the chain holds as the store says
    /// (canonical, successful, in the block named, to its destination, from the treasury),
    /// deep enough or not: what the treasury's nonce must equal.
    pub(super) in_chain: u64,
    /// Of those, the ones short of the confirmations (also in `without_canonical_tx`).
    pub(super) shallow: u64,
}

impl Verdict {
    pub(super) fn clean(&self) -> bool {
        self.double_payments.is_empty()
            && self.without_canonical_tx.is_empty()
            && self.mismatches.is_empty()
    }
}

/// Compares the store with the chain. `expected`: every destination queued and its amount;
/// `confirmations`: the depth (the tip counted as 1) an executed payment must have.
pub(super) fn judge(
    expected: &[(String, u128)],
    records: &[Record],
    chain: &Observed,
    confirmations: u64,
) -> Verdict {
    let treasury = anvil::ACCOUNT_0.to_ascii_lowercase();
    let mut verdict = Verdict {
        executed: records.iter().filter(|r| r.status == "executed").count() as u64,
        cancelled: records.iter().filter(|r| r.status == "cancelled").count() as u64,
        double_payments: overpaid(expected, &chain.balances),
        ..Verdict::default()
    };
    let mut by_destination: HashMap<String, Vec<&Record>> = HashMap::new();
    for record in records {
        by_destination
            .entry(record.destination.to_ascii_lowercase())
            .or_default()
            .push(record);
    }
    let mut hashes = HashSet::new();
    for (to, amount) in expected {
        let to = to.to_ascii_lowercase();
        let found = by_destination.remove(&to).unwrap_or_default();
        let [record] = found.as_slice() else {
            verdict.mismatches.push(format!(
                "{to} is in the store {} times, expected once",
                found.len()
            ));
            continue;
        };
        let (id, status) = (record.id, record.status.as_str());
        if record.amount != *amount {
            verdict.mismatches.push(format!(
                "disbursement {id} ({to}): the store says {} wei, queued {amount}",
                record.amount
            ));
        }
        let Some(&balance) = chain.balances.get(&to) else {
            verdict
                .mismatches
                .push(format!("{to}: no balance read from the chain"));
            continue;
        };
        match status {
            "executed" => {
                if balance < *amount {
                    verdict.mismatches.push(format!(
                        "disbursement {id} ({to}) is executed but the destination holds \
                         {balance} wei of its {amount}"
                    ));
                }
                let (Some(hash), Some(block)) = (&record.tx_hash, record.block) else {
                    verdict.without_canonical_tx.push(format!(
                        "disbursement {id} ({to}): executed without a tx hash and a block"
                    ));
                    continue;
                };
                if !hashes.insert(hash.clone()) {
                    verdict
                        .mismatches
                        .push(format!("{hash} is the tx hash of two disbursements"));
                }
                match canonical_receipt(chain, hash, block, confirmations) {
                    Err(problem) => verdict
                        .without_canonical_tx
                        .push(format!("disbursement {id} ({to}): {problem}")),
                    Ok((receipt, shallow)) => {
                        if let Some(problem) = shallow {
                            verdict.shallow += 1;
                            verdict
                                .without_canonical_tx
                                .push(format!("disbursement {id} ({to}): {problem}"));
                        }
                        if receipt.to != to {
                            verdict.mismatches.push(format!(
                                "disbursement {id}: {hash} pays {}, not {to}",
                                receipt.to
                            ));
                        } else if receipt.from != treasury {
                            verdict.mismatches.push(format!(
                                "disbursement {id}: {hash} is from {}, not the treasury",
                                receipt.from
                            ));
                        } else {
                            verdict.in_chain += 1;
                        }
                    }
                }
            }
            "cancelled" => {
                if balance != 0 && balance <= *amount {
                    verdict.mismatches.push(format!(
                        "disbursement {id} ({to}) is cancelled but the destination holds \
                         {balance} wei: paid"
                    ));
                }
            }
            other => verdict.mismatches.push(format!(
                "disbursement {id} ({to}) is still {other}, neither executed nor cancelled"
            )),
        }
    }
    let mut strays: Vec<_> = by_destination.into_iter().collect();
    strays.sort_by(|a, b| a.0.cmp(&b.0));
    for (to, found) in strays {
        verdict.mismatches.push(format!(
            "{to} is in the store {} times but was never queued",
            found.len()
        ));
    }
    if chain.latest_nonce != verdict.in_chain {
        verdict.mismatches.push(format!(
            "the treasury's nonce is {} on chain, but {} executed disbursements have their \
             transaction there ({})",
            chain.latest_nonce,
            verdict.in_chain,
            if chain.latest_nonce > verdict.in_chain {
                "the treasury sent transactions that pay no executed disbursement"
            } else {
                "a gap"
            }
        ));
    }
    if chain.pending_nonce != chain.latest_nonce {
        verdict.mismatches.push(format!(
            "{} treasury transactions still pending on anvil (nonce {} pending, {} mined)",
            chain.pending_nonce.saturating_sub(chain.latest_nonce),
            chain.pending_nonce,
            chain.latest_nonce
        ));
    }
    verdict
}
