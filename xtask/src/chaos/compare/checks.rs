//! The checks on one payment: a destination holding more than its amount, or anything in
//! the other asset (a double payment, checked after every restart too); a transaction that
//! is not in the canonical chain as the store says, or not deep enough; and one that does
//! not pay what was queued (a value transfer of the amount to the destination, or the
//! token's `transfer(destination, amount)` with exactly its `Transfer` log).

use std::collections::HashMap;

use super::observe::{Observed, Receipt, Transfer};
use crate::chaos::disbursements::{Asset, Expected};
use crate::chaos::rpc::Holding;
use crate::chaos::token::transfer_call;

/// `3 x the amount` or `N wei, not a multiple of the amount`.
fn multiple(balance: u128, amount: u128, asset: Asset) -> String {
    if amount > 0 && balance.is_multiple_of(amount) {
        format!("{} x its amount", balance / amount)
    } else {
        format!("{balance} {}, not a multiple of its amount", asset.unit())
    }
}

/// The destinations that hold more than their amount of their asset (each one a double
/// payment: anvil's balance of a fresh address is what the treasury paid it), or anything
/// of the other asset (a payment in the wrong asset). Checked after every restart and at
/// the end.
pub(in crate::chaos) fn overpaid(
    expected: &[Expected],
    holdings: &HashMap<String, Holding>,
) -> Vec<String> {
    let mut found = vec![];
    for e in expected {
        let (to, amount, asset) = (&e.destination, e.amount, e.asset);
        let Some(held) = holdings.get(&to.to_ascii_lowercase()) else {
            continue;
        };
        let balance = held.of(asset);
        if balance > amount {
            found.push(format!(
                "{to} holds {} ({balance} {}; amount {amount} in {})",
                multiple(balance, amount, asset),
                asset.unit(),
                asset.name()
            ));
        }
        let other = asset.other();
        if held.of(other) > 0 {
            found.push(format!(
                "{to} holds {} {} but was queued {amount} in {}: paid in the wrong asset",
                held.of(other),
                other.unit(),
                asset.name()
            ));
        }
    }
    found
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

/// Whether the transaction of `receipt` pays `expected` from `treasury`: a native payment
/// is a value transfer of its amount to its destination, without call data; a token
/// payment is a call of `token`'s `transfer(destination, amount)` without value, whose
/// receipt carries exactly one `Transfer` log from the token, `Transfer(treasury,
/// destination, amount)`. `Err` says what it does instead.
pub(super) fn pays(
    receipt: &Receipt,
    expected: &Expected,
    treasury: &str,
    token: &str,
) -> Result<(), String> {
    let (to, amount) = (expected.destination.to_ascii_lowercase(), expected.amount);
    if receipt.from != treasury {
        return Err(format!("is from {}, not the treasury", receipt.from));
    }
    let value = receipt
        .value
        .ok_or("has a receipt but the chain cannot show its transaction")?;
    match expected.asset {
        Asset::Native => {
            if receipt.to != to {
                return Err(format!("pays {}, not {to}", receipt.to));
            }
            if value != amount {
                return Err(format!("carries {value} wei, not its amount {amount}"));
            }
            if !matches!(receipt.input.as_str(), "" | "0x") {
                return Err(format!(
                    "carries call data ({} bytes): not a plain transfer",
                    receipt.input.len().saturating_sub(2) / 2
                ));
            }
        }
        Asset::Token => {
            if receipt.to != token {
                return Err(format!(
                    "goes to {}, not the token's contract {token}",
                    receipt.to
                ));
            }
            if value != 0 {
                return Err(format!("carries {value} wei: a token payment carries none"));
            }
            if receipt.input != transfer_call(&to, amount) {
                return Err(format!(
                    "calls {}, not transfer({to}, {amount})",
                    receipt.input
                ));
            }
            let logged: Vec<&Transfer> = receipt
                .transfers
                .iter()
                .filter(|t| t.contract == token)
                .collect();
            let wanted = Transfer {
                contract: token.to_owned(),
                from: treasury.to_owned(),
                to: to.clone(),
                amount: Some(amount),
            };
            if logged != [&wanted] {
                return Err(format!(
                    "logs {logged:?} from the token, not exactly Transfer({treasury}, {to}, \
                     {amount})"
                ));
            }
        }
    }
    Ok(())
}
