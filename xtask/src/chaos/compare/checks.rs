//! The two checks on one payment: a destination holding more than its amount (a double
//! payment, checked after every restart too), and a transaction that is not in the
//! canonical chain as the store says, or not deep enough.

use std::collections::HashMap;

use super::observe::{Observed, Receipt};

/// `3 x the amount` or `N wei, not a multiple of the amount`.
fn holdings(balance: u128, amount: u128) -> String {
    if amount > 0 && balance.is_multiple_of(amount) {
        format!("{} x its amount", balance / amount)
    } else {
        format!("{balance} wei, not a multiple of its amount")
    }
}

/// The destinations that hold more than their amount: each one a double payment (anvil's
/// balance of a fresh address is what the treasury paid it). Checked after every restart
/// and at the end.
pub(in crate::chaos) fn overpaid(
    expected: &[(String, u128)],
    balances: &HashMap<String, u128>,
) -> Vec<String> {
    expected
        .iter()
        .filter_map(|(to, amount)| {
            let balance = *balances.get(&to.to_ascii_lowercase())?;
            (balance > *amount).then(|| {
                format!(
                    "{to} holds {} ({balance} wei; amount {amount})",
                    holdings(balance, *amount)
                )
            })
        })
        .collect()
}

/// The receipt of the transaction `hash` if it is in the chain as the store says: status
/// 1, in `block`, whose hash is the canonical block's at that height (else `Err` says what
/// is wrong); with, if it is not at least `confirmations` deep (`head - block + 1`, the tip
/// counted), how deep it is.
pub(super) fn canonical_receipt<'a>(
    chain: &'a Observed,
    hash: &str,
    block: u64,
    confirmations: u64,
) -> Result<(&'a Receipt, Option<String>), String> {
    let Some(receipt) = chain.receipts.get(hash) else {
        return Err(format!("{hash} has no receipt on the chain"));
    };
    if receipt.status != "0x1" {
        return Err(format!(
            "{hash} failed on chain (status {})",
            receipt.status
        ));
    }
    if receipt.block != block {
        return Err(format!(
            "{hash} is in block {}, the store says {block}",
            receipt.block
        ));
    }
    match chain.canonical.get(&block) {
        None => {
            return Err(format!(
                "the chain has no block {block} (head {})",
                chain.head
            ));
        }
        Some(canonical) if *canonical != receipt.block_hash => {
            return Err(format!(
                "{hash}'s block {block} is {}, not canonical (the chain's block {block} is \
                 {canonical})",
                receipt.block_hash
            ));
        }
        Some(_) => {}
    }
    let depth = (chain.head + 1).saturating_sub(block);
    let shallow = (depth < confirmations).then(|| {
        format!(
            "{hash} in block {block} is {depth} deep (head {}), {confirmations} required",
            chain.head
        )
    });
    Ok((receipt, shallow))
}
