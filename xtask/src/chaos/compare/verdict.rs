//! The comparison's verdict: every disbursement of the store judged against the chain in
//! its asset, each disagreement filed as a double payment (or one in the wrong asset), an
//! executed disbursement without a canonical transaction at depth, or another mismatch
//! (a transaction that does not pay what was queued among them).

use std::collections::{HashMap, HashSet};

use super::checks::{canonical_receipt, overpaid, pays};
use super::observe::Observed;
use crate::anvil;
use crate::chaos::disbursements::{Asset, Expected};
use crate::chaos::store::Record;

/// The comparison's findings. Each list names what it found.
#[derive(Debug, Default)]
pub(super) struct Verdict {
    pub(super) executed: u64,
    /// Of the executed, how many the store says pay ether, and the token.
    pub(super) executed_native: u64,
    pub(super) executed_token: u64,
    pub(super) cancelled: u64,
    /// Destinations holding more than their amount, or anything in the other asset.
    pub(super) double_payments: Vec<String>,
    /// Executed disbursements without a canonical, successful transaction in the block the
    /// store names, at least `confirmations` deep.
    pub(super) without_canonical_tx: Vec<String>,
    /// Every other disagreement between the store and the chain.
    pub(super) mismatches: Vec<String>,
    /// Executed disbursements whose transaction the chain holds as the store says
    /// (canonical, successful, in the block named, from the treasury, paying what was
    /// queued), deep enough or not: what the treasury's nonce must equal.
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

/// Compares the store with the chain. `expected`: every destination queued, its amount and
/// asset; `confirmations`: the depth (the tip counted as 1) an executed payment must have.
pub(super) fn judge(
    expected: &[Expected],
    records: &[Record],
    chain: &Observed,
    confirmations: u64,
) -> Verdict {
    let treasury = anvil::ACCOUNT_0.to_ascii_lowercase();
    let executed = |asset: Option<Asset>| {
        records
            .iter()
            .filter(|r| r.status == "executed")
            .filter(|r| asset.is_none_or(|a| r.asset == a.name()))
            .count() as u64
    };
    let mut verdict = Verdict {
        executed: executed(None),
        executed_native: executed(Some(Asset::Native)),
        executed_token: executed(Some(Asset::Token)),
        cancelled: records.iter().filter(|r| r.status == "cancelled").count() as u64,
        double_payments: overpaid(expected, &chain.holdings),
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
    for queued in expected {
        let (to, amount, asset) = (
            queued.destination.to_ascii_lowercase(),
            &queued.amount,
            queued.asset,
        );
        let unit = asset.unit();
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
                "disbursement {id} ({to}): the store says {} {unit}, queued {amount}",
                record.amount
            ));
        }
        if record.asset != asset.name() {
            verdict.mismatches.push(format!(
                "disbursement {id} ({to}): the store says asset {}, queued {}",
                record.asset,
                asset.name()
            ));
        }
        let Some(balance) = chain.holdings.get(&to).map(|held| held.of(asset)) else {
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
                         {balance} {unit} of its {amount}"
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
                        match pays(receipt, queued, &treasury, &chain.token) {
                            Ok(()) => verdict.in_chain += 1,
                            Err(problem) => verdict.mismatches.push(format!(
                                "disbursement {id} ({} to {to}): {hash} {problem}",
                                asset.name()
                            )),
                        }
                    }
                }
            }
            "cancelled" => {
                if balance != 0 && balance <= *amount {
                    verdict.mismatches.push(format!(
                        "disbursement {id} ({to}) is cancelled but the destination holds \
                         {balance} {unit}: paid"
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
