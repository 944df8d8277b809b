//! The ledger port: what the executor needs from a chain, and nothing else. It sits below
//! both the store (which keeps signed transactions) and the executor (which drives the
//! calls), so neither imports the other for it. Implementations live in `node` (the dev
//! ledger, the EVM ledger) and, for tests, in `testing`.
//!
//! | call            | EVM JSON-RPC (see `node/src/ledger/evm`)                        |
//! |-----------------|-----------------------------------------------------------------|
//! | `chain_id`      | `eth_chainId`                                                   |
//! | `head`          | `eth_getBlockByNumber("latest")`: number, hash, base fee        |
//! | `finalized`     | `eth_getBlockByNumber("finalized")`                             |
//! | `block_hash`    | `eth_getBlockByNumber(n)`                                       |
//! | `next_nonce`    | `eth_getTransactionCount(treasury, "pending")`                  |
//! | `nonce_at`      | `eth_getTransactionCount(treasury, n)`                          |
//! | `treasury_transaction` | `eth_getBlockByNumber(n, true)`: the treasury's transaction with a nonce |
//! | `balance`       | `eth_getBalance(treasury, "latest")`                            |
//! | `asset_balance` | a token's `balanceOf(treasury)` (`eth_call`), or `balance`      |
//! | `sign`          | local, after a fee quote                                        |
//! | `submit`        | `eth_sendRawTransaction`                                        |
//! | `lookup`        | `eth_getTransactionReceipt`, then `eth_getTransactionByHash`    |
//!
//! A lookup's `Unknown` is what one endpoint knows now; it is never proof that a
//! transaction did not land (a read backend may lag, a mempool may drop and re-add).

mod error;
mod tx;

use std::fmt;

pub use error::LedgerError;
pub use tx::{AttemptKind, Fees, Head, SignRequest, SignedTx, TxStatus};

/// The chain, as the executor sees it. Calls block; the node runs them off its async
/// runtime's worker threads.
pub trait Ledger: Send + Sync + fmt::Debug {
    /// The chain's identity (an EVM chain id in decimal, or a dev chain's name). The
    /// executor pins it in its store on first contact and halts on any other.
    fn chain_id(&self) -> Result<String, LedgerError>;

    /// The latest block: its number, hash, base fee and epoch.
    fn head(&self) -> Result<Head, LedgerError>;

    /// The number of the latest finalized block, if the chain has such a notion.
    fn finalized(&self) -> Result<Option<u64>, LedgerError>;

    /// The hash of the canonical block at `number`, `None` if this endpoint has no such
    /// block (yet, or any more).
    fn block_hash(&self, number: u64) -> Result<Option<String>, LedgerError>;

    /// The next nonce the ledger expects from the treasury, counting pending transactions.
    fn next_nonce(&self) -> Result<u64, LedgerError>;

    /// How many transactions the treasury has in blocks up to and including `block`: the
    /// nonces below this one are spent at that height.
    fn nonce_at(&self, block: u64) -> Result<u64, LedgerError>;

    /// The hash of the treasury's transaction with `nonce` in block `block`, if the block
    /// holds one: what spent a nonce, read from the block itself rather than by hash.
    fn treasury_transaction(&self, block: u64, nonce: u64) -> Result<Option<String>, LedgerError>;

    /// The treasury's balance at the latest block, in the ledger's smallest unit.
    fn balance(&self) -> Result<u128, LedgerError>;

    /// Signs a transaction for `request`. No network side effect: nothing is sent.
    /// Fails with [`LedgerError::FeeCapReached`] if the configured caps do not allow
    /// `request.min_fees`.
    fn sign(&self, request: &SignRequest<'_>) -> Result<SignedTx, LedgerError>;

    /// Hands signed bytes to the ledger. `Ok` means it accepted them.
    fn submit(&self, tx: &SignedTx) -> Result<(), LedgerError>;

    /// Hands several signed transactions over (a tick's first hand-overs, in nonce order)
    /// and answers the first n of them, in order, each as [`submit`](Self::submit) would
    /// (n is at least 1 when `txs` is not empty). The default hands them over one by one
    /// and stops after the first that is not accepted, as one-by-one sends do; a ledger
    /// that sends them in one exchange (a JSON-RPC batch) answers every one.
    fn submit_batch(&self, txs: &[SignedTx]) -> Vec<Result<(), LedgerError>> {
        submit_one_by_one(self, txs)
    }

    /// What this endpoint knows now of the transaction with this hash.
    fn lookup(&self, tx_hash: &str) -> Result<TxStatus, LedgerError>;

    /// [`lookup`](Self::lookup) of each hash, in order; fails as a whole if any lookup
    /// fails. The default looks them up one by one; a ledger that can (a JSON-RPC batch)
    /// does it in one exchange.
    fn lookup_batch(&self, tx_hashes: &[String]) -> Result<Vec<TxStatus>, LedgerError> {
        tx_hashes.iter().map(|hash| self.lookup(hash)).collect()
    }

    /// Whether `destination` is an address this ledger can pay, checked at queue time.
    fn validate_destination(&self, destination: &str) -> Result<(), String> {
        let _ = destination;
        Ok(())
    }

    /// Whether this ledger pays `asset`, checked at queue time. The default pays
    /// [`NATIVE`](crate::policy::NATIVE) only.
    fn validate_asset(&self, asset: &str) -> Result<(), String> {
        if asset == crate::policy::NATIVE {
            Ok(())
        } else {
            Err(format!(
                "unknown asset {:?}: this ledger pays `native` only",
                crate::text::bounded(asset, 64)
            ))
        }
    }

    /// The treasury's balance of `asset` at the latest block. The default knows
    /// [`NATIVE`](crate::policy::NATIVE) only ([`balance`](Self::balance)).
    fn asset_balance(&self, asset: &str) -> Result<u128, LedgerError> {
        if asset == crate::policy::NATIVE {
            self.balance()
        } else {
            Err(LedgerError::Other(format!(
                "this ledger keeps no balance of {:?}",
                crate::text::bounded(asset, 64)
            )))
        }
    }
}

/// [`Ledger::submit_batch`] the one-by-one way: each transaction in turn, stopping after
/// the first that is not accepted.
pub fn submit_one_by_one<L: Ledger + ?Sized>(
    ledger: &L,
    txs: &[SignedTx],
) -> Vec<Result<(), LedgerError>> {
    let mut answers = Vec::with_capacity(txs.len());
    for tx in txs {
        let answer = ledger.submit(tx);
        let stop = answer.is_err();
        answers.push(answer);
        if stop {
            break;
        }
    }
    answers
}
