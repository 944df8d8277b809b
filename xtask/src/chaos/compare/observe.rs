//! The chain as the comparison sees it: the head, the treasury's nonce, every expected
//! destination's holdings (ether and token), every executed disbursement's receipt and
//! transaction, and the canonical hash of every block either names; read from anvil
//! directly, once nothing moves.

use std::collections::HashMap;

use crate::anvil::Anvil;
use crate::chaos::disbursements::Expected;
use crate::chaos::json::Json;
use crate::chaos::rpc::{Holding, batch, holdings, quantity};
use crate::chaos::store::Record;

/// `keccak256("Transfer(address,address,uint256)")`: an ERC-20 `Transfer` log's topic.
const TRANSFER_TOPIC: &str = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";

/// A transaction's receipt, with what its transaction carries, as far as the comparison
/// needs them (hashes and addresses in lower case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Receipt {
    pub(super) status: String,
    pub(super) block: u64,
    pub(super) block_hash: String,
    pub(super) from: String,
    /// Where the transaction goes: a native payment's destination, a token payment's
    /// token contract.
    pub(super) to: String,
    /// The transaction's value in wei; `None`: the transaction could not be read.
    pub(super) value: Option<u128>,
    /// The transaction's call data (`0x` for a plain transfer), lower case.
    pub(super) input: String,
    /// The receipt's ERC-20 `Transfer` logs, in order.
    pub(super) transfers: Vec<Transfer>,
}

/// An ERC-20 `Transfer(from, to, amount)` log (addresses in lower case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Transfer {
    /// The contract that logged it.
    pub(super) contract: String,
    pub(super) from: String,
    pub(super) to: String,
    /// `None`: not a number that fits in 128 bits.
    pub(super) amount: Option<u128>,
}

/// The chain, read once everything settled (the miner stopped: nothing moves).
#[derive(Debug, Default)]
pub(super) struct Observed {
    pub(super) head: u64,
    /// The treasury's transaction count: mined, and with the pool.
    pub(super) latest_nonce: u64,
    pub(super) pending_nonce: u64,
    /// The drill's token contract (lower case).
    pub(super) token: String,
    /// By destination (lower case): its ether and its token balance.
    pub(super) holdings: HashMap<String, Holding>,
    /// By transaction hash; absent: no receipt.
    pub(super) receipts: HashMap<String, Receipt>,
    /// Block number → the canonical block's hash; absent: no such block.
    pub(super) canonical: HashMap<u64, String>,
}

/// Reads what [`judge`](super::verdict::judge) needs from anvil: every expected
/// destination's holdings (`token`'s balances for the token), every executed
/// disbursement's receipt and transaction, and the canonical hash of every block either
/// names.
pub(super) fn observe(
    anvil: &Anvil,
    token: &str,
    expected: &[Expected],
    records: &[Record],
) -> Result<Observed, String> {
    let mut chain = Observed {
        head: anvil.head()?,
        latest_nonce: anvil.nonce("latest")?,
        pending_nonce: anvil.nonce("pending")?,
        token: token.to_ascii_lowercase(),
        holdings: holdings(anvil, token, expected)?,
        ..Observed::default()
    };
    let hashes: Vec<&str> = records
        .iter()
        .filter(|r| r.status == "executed")
        .filter_map(|r| r.tx_hash.as_deref())
        .collect();
    // Each hash's receipt, then its transaction.
    let calls: Vec<(&str, String)> = hashes
        .iter()
        .flat_map(|hash| {
            [
                ("eth_getTransactionReceipt", format!(r#"["{hash}"]"#)),
                ("eth_getTransactionByHash", format!(r#"["{hash}"]"#)),
            ]
        })
        .collect();
    let answers = batch(anvil, &calls)?;
    for (hash, answers) in hashes.iter().zip(answers.chunks(2)) {
        let [receipt, transaction] = answers else {
            return Err(format!("{hash}: {answers:?}"));
        };
        if *receipt == Json::Null {
            continue;
        }
        chain
            .receipts
            .insert((*hash).to_owned(), receipt_of(receipt, transaction)?);
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

/// A JSON field's text in lower case; empty if absent.
fn text(json: &Json, name: &str) -> String {
    json.get(name)
        .and_then(Json::as_str)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default()
}

/// A receipt (not null) and its transaction (null if unknown), as the comparison needs
/// them.
fn receipt_of(receipt: &Json, transaction: &Json) -> Result<Receipt, String> {
    let block = receipt
        .get("blockNumber")
        .and_then(quantity)
        .and_then(|b| u64::try_from(b).ok())
        .ok_or_else(|| format!("a receipt without a block number: {receipt}"))?;
    let transfers = receipt
        .get("logs")
        .and_then(Json::as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(transfer_of)
        .collect();
    Ok(Receipt {
        status: text(receipt, "status"),
        block,
        block_hash: text(receipt, "blockHash"),
        from: text(receipt, "from"),
        to: text(receipt, "to"),
        value: transaction.get("value").and_then(quantity),
        input: text(transaction, "input"),
        transfers,
    })
}

/// A log as an ERC-20 `Transfer`, if it is one (the topic and two indexed addresses).
fn transfer_of(log: &Json) -> Option<Transfer> {
    let topics: Vec<String> = log
        .get("topics")?
        .as_array()?
        .iter()
        .map(|t| t.as_str().unwrap_or_default().to_ascii_lowercase())
        .collect();
    let [topic, from, to] = topics.as_slice() else {
        return None;
    };
    if topic != TRANSFER_TOPIC {
        return None;
    }
    let address = |word: &str| format!("0x{}", &word[word.len().saturating_sub(40)..]);
    let data = text(log, "data");
    Some(Transfer {
        contract: text(log, "address"),
        from: address(from),
        to: address(to),
        amount: quantity(&Json::String(data)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_receipt_and_its_transaction() {
        let receipt = Json::parse(&format!(
            r#"{{"status":"0x1","blockNumber":"0xc","blockHash":"0xB1","from":"0xF3",
            "to":"0xT0KEN","logs":[{{"address":"0xT0KEN","topics":["{TRANSFER_TOPIC}",
            "0x000000000000000000000000f39fd6e51aad88f6f4ce6ab8827279cfffb92266",
            "0x000000000000000000000000C4A0500000000000000000000000000000000001"],
            "data":"0x00000000000000000000000000000000000000000000000000038d7ea4c68001"}},
            {{"address":"0xother","topics":["0xabc"],"data":"0x"}}]}}"#
        ))
        .expect("json");
        let transaction = Json::parse(r#"{"value":"0x0","input":"0xA9059CBB00"}"#).expect("json");
        let read = receipt_of(&receipt, &transaction).expect("a receipt");
        assert_eq!((read.block, read.to.as_str()), (12, "0xt0ken"));
        assert_eq!((read.value, read.input.as_str()), (Some(0), "0xa9059cbb00"));
        assert_eq!(
            read.transfers,
            [Transfer {
                contract: "0xt0ken".into(),
                from: "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266".into(),
                to: "0xc4a0500000000000000000000000000000000001".into(),
                amount: Some(1_000_000_000_000_001),
            }]
        );
        // The transaction unknown: no value.
        let read = receipt_of(&receipt, &Json::Null).expect("a receipt");
        assert_eq!((read.value, read.input.as_str()), (None, ""));
    }
}
