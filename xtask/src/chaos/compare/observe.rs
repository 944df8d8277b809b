//! The chain as the comparison sees it: the head, the treasury's nonce, every expected
//! destination's balance, every executed disbursement's receipt, and the canonical hash
//! of every block either names; read from anvil directly, once nothing moves.

use std::collections::HashMap;

use crate::anvil::Anvil;
use crate::chaos::json::Json;
use crate::chaos::rpc::{balances, batch, quantity};
use crate::chaos::store::Record;

/// A receipt, as far as the comparison needs it (hashes and addresses in lower case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Receipt {
    pub(super) status: String,
    pub(super) block: u64,
    pub(super) block_hash: String,
    pub(super) from: String,
    pub(super) to: String,
}

/// The chain, read once everything settled (the miner stopped: nothing moves).
#[derive(Debug, Default)]
pub(super) struct Observed {
    pub(super) head: u64,
    /// The treasury's transaction count: mined, and with the pool.
    pub(super) latest_nonce: u64,
    pub(super) pending_nonce: u64,
    /// By destination (lower case).
    pub(super) balances: HashMap<String, u128>,
    /// By transaction hash; absent: no receipt.
    pub(super) receipts: HashMap<String, Receipt>,
    /// Block number → the canonical block's hash; absent: no such block.
    pub(super) canonical: HashMap<u64, String>,
}

/// Reads what [`judge`](super::verdict::judge) needs from anvil: every expected
/// destination's balance, every executed disbursement's receipt, and the canonical hash of
/// every block either names.
pub(super) fn observe(
    anvil: &Anvil,
    expected: &[(String, u128)],
    records: &[Record],
) -> Result<Observed, String> {
    let mut chain = Observed {
        head: anvil.head()?,
        latest_nonce: anvil.nonce("latest")?,
        pending_nonce: anvil.nonce("pending")?,
        balances: balances(anvil, expected)?,
        ..Observed::default()
    };
    let hashes: Vec<&str> = records
        .iter()
        .filter(|r| r.status == "executed")
        .filter_map(|r| r.tx_hash.as_deref())
        .collect();
    let calls: Vec<(&str, String)> = hashes
        .iter()
        .map(|hash| ("eth_getTransactionReceipt", format!(r#"["{hash}"]"#)))
        .collect();
    for (hash, receipt) in hashes.iter().zip(batch(anvil, &calls)?) {
        if receipt == Json::Null {
            continue;
        }
        let field = |name: &str| {
            receipt
                .get(name)
                .and_then(Json::as_str)
                .map(str::to_ascii_lowercase)
                .unwrap_or_default()
        };
        let block = receipt
            .get("blockNumber")
            .and_then(quantity)
            .and_then(|b| u64::try_from(b).ok())
            .ok_or_else(|| format!("a receipt without a block number: {receipt}"))?;
        chain.receipts.insert(
            (*hash).to_owned(),
            Receipt {
                status: field("status"),
                block,
                block_hash: field("blockHash"),
                from: field("from"),
                to: field("to"),
            },
        );
    }
    let mut blocks: Vec<u64> = records
        .iter()
        .filter_map(|r| r.block)
        .chain(chain.receipts.values().map(|r| r.block))
        .collect();
    blocks.sort_unstable();
    blocks.dedup();
    let calls: Vec<(&str, String)> = blocks
        .iter()
        .map(|b| ("eth_getBlockByNumber", format!(r#"["{b:#x}",false]"#)))
        .collect();
    for (number, block) in blocks.iter().zip(batch(anvil, &calls)?) {
        if let Some(hash) = block.get("hash").and_then(Json::as_str) {
            chain.canonical.insert(*number, hash.to_ascii_lowercase());
        }
    }
    Ok(chain)
}
