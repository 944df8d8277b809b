//! `DevLedger`: an embedded chain, durable and deterministic, so that the node runs (and
//! shows its circuit breaker at work) with no external chain.
//!
//! - **Time.** Block `h` is produced `h * block_time_ms` after genesis; epoch = height /
//!   `epoch_length`. Genesis is the wall-clock time of the first open, persisted, so the
//!   height keeps growing across restarts. Within a process, time comes from a clock
//!   (monotonic in production, injected in tests: [`DevLedger::with_clock`]).
//! - **Transfers.** [`sign`](Ledger::sign) encodes `{chain, id, destination, amount, nonce}`
//!   as JSON (a cancellation adds `"cancel": true` and moves nothing); the hash is 64-bit
//!   FNV-1a of those bytes, `0x` + 16 hex digits. It identifies, it does not authenticate:
//!   nothing here is cryptographic. There is no fee market: fees are zero.
//! - **Rules.** Strict nonces, dedupe by hash, [dev addresses](DevLedger::check_destination),
//!   the treasury's balance. An accepted transfer is included in the next block, whose
//!   hash is FNV-1a of the chain, the height and the genesis. Blocks never reorganise
//!   and are final at once: the executor's confirmations are 1 on this ledger.
//! - **Outages.** Configured windows during which submissions are refused or time out.
//!
//! Records, in the one sled tree the node gives it (`aux/dev_ledger`):
//!
//! | key               | value                                      |
//! |-------------------|--------------------------------------------|
//! | `genesis_ms`      | Unix milliseconds, u64 big-endian          |
//! | `treasury`        | the treasury's balance, u128 big-endian    |
//! | `next_nonce`      | u64 big-endian                             |
//! | `balance/<dest>`  | a destination's balance, u128 big-endian   |
//! | `tx/<hash>`       | [`DevTransaction`] (JSON)                  |
//! | `nonce/<nonce>`   | the block of the transfer with that nonce, u64 big-endian, then its hash (key: u64 big-endian) |
//!
//! An accepted submission is one sled transaction, flushed before it is acknowledged. A
//! record that does not decode is a [`DevLedgerError::Corrupt`] naming its key.

mod config;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governance::text::unix_ms;
use governance::{AttemptKind, Fees, Head, Ledger, LedgerError, SignRequest, SignedTx, TxStatus};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

pub use config::{DevLedgerConfig, DevLedgerConfigError, Outage, OutageMode};

/// The chain id every dev transfer carries; a transfer for another chain is rejected.
pub const CHAIN_ID: &str = "treasury-dev-1";

/// Time since an arbitrary fixed origin; it must never go backwards.
pub type DevClock = Arc<dyn Fn() -> Duration + Send + Sync>;

const GENESIS: &str = "genesis_ms";
const TREASURY: &str = "treasury";
const NEXT_NONCE: &str = "next_nonce";
const BALANCE_PREFIX: &str = "balance/";
const TX_PREFIX: &str = "tx/";
const NONCE_PREFIX: &str = "nonce/";
/// A plain transfer's gas, for the executor's worst-case fee (always zero here).
const TRANSFER_GAS: u64 = 21_000;

/// Longest plain dev address, in characters.
const MAX_NAME_CHARS: usize = 64;
/// Most hex digits after `0x`.
const MAX_HEX_DIGITS: usize = 64;

/// Why the dev ledger could not open or read its records.
#[derive(Debug, thiserror::Error)]
pub enum DevLedgerError {
    /// The configuration is out of range.
    #[error(transparent)]
    Config(#[from] DevLedgerConfigError),
    /// sled failed.
    #[error("dev ledger storage: {0}")]
    Storage(#[from] sled::Error),
    /// A record is missing or does not decode.
    #[error("dev ledger record {key:?} is corrupt: {reason}")]
    Corrupt {
        /// The record's key, e.g. `treasury` or `tx/0x…`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// An accepted transfer, as the chain records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevTransaction {
    /// The disbursement it pays.
    pub id: u64,
    /// The treasury nonce it used.
    pub nonce: u64,
    /// Where the money went.
    pub destination: String,
    /// How much.
    pub amount: u128,
    /// The block that includes it (the one after the height at acceptance).
    pub block: u64,
}

/// The signed bytes' content. Field order is the encoding's order: keep it (a
/// payment's bytes, and so its hash, are what they were before cancellations existed).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Transfer {
    chain: String,
    id: u64,
    destination: String,
    amount: u128,
    nonce: u64,
    /// A cancellation: it spends the nonce and moves nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    cancel: bool,
}

/// The embedded chain. Cheap to share behind an `Arc`; `Send + Sync`.
pub struct DevLedger {
    tree: sled::Tree,
    config: DevLedgerConfig,
    clock: DevClock,
    /// The clock's reading at open: outages count from it.
    opened_at: Duration,
    /// Chain time at the clock's origin: the wall time from genesis to open in
    /// production, zero with an injected clock.
    chain_offset: Duration,
    genesis_ms: u64,
}

impl fmt::Debug for DevLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevLedger")
            .field("chain", &CHAIN_ID)
            .field("genesis_ms", &self.genesis_ms)
            .field("block_time_ms", &self.config.block_time_ms)
            .field("epoch_length", &self.config.epoch_length)
            .field("outages", &self.config.outages.len())
            .finish_non_exhaustive()
    }
}

impl DevLedger {
    /// Opens the chain kept in `tree`, creating it (genesis now, the treasury funded with
    /// `config.treasury_balance`) if the tree holds none. Chain time runs on the wall
    /// clock from the persisted genesis; a wall clock set before genesis reads as genesis.
    pub fn open(tree: sled::Tree, config: DevLedgerConfig) -> Result<DevLedger, DevLedgerError> {
        let origin = Instant::now();
        let mut ledger = Self::with_clock(tree, config, Arc::new(move || origin.elapsed()))?;
        ledger.chain_offset = Duration::from_millis(unix_ms().saturating_sub(ledger.genesis_ms));
        Ok(ledger)
    }

    /// Like [`open`](Self::open), on an injected clock whose reading *is* the chain time:
    /// height = `clock() / block_time_ms`, whatever the persisted genesis (which is still
    /// written). Outages count from the clock's reading at this call.
    pub fn with_clock(
        tree: sled::Tree,
        config: DevLedgerConfig,
        clock: DevClock,
    ) -> Result<DevLedger, DevLedgerError> {
        config.validate()?;
        let genesis_ms = init(&tree, &config)?;
        let opened_at = clock();
        Ok(DevLedger {
            tree,
            config,
            clock,
            opened_at,
            chain_offset: Duration::ZERO,
            genesis_ms,
        })
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &DevLedgerConfig {
        &self.config
    }

    /// When the chain was created (Unix milliseconds).
    pub fn genesis_ms(&self) -> u64 {
        self.genesis_ms
    }

    /// The latest block's number.
    pub fn height(&self) -> u64 {
        let chain_ms = self.chain_offset.saturating_add((self.clock)()).as_millis();
        let height = chain_ms / u128::from(self.config.block_time_ms);
        u64::try_from(height).unwrap_or(u64::MAX)
    }

    /// The current epoch: height / `epoch_length`.
    pub fn epoch(&self) -> u64 {
        self.height() / self.config.epoch_length
    }

    /// The hash of block `number`: FNV-1a of the chain, the height and the genesis.
    pub fn block_hash_at(&self, number: u64) -> String {
        fnv1a_hex(format!("{CHAIN_ID} block {number} genesis {}", self.genesis_ms).as_bytes())
    }

    /// How many transfers are in blocks up to `block`: nonces are accepted in order and
    /// each goes into the block after the height at acceptance, so their blocks never
    /// decrease with the nonce, and a binary search over `nonce/` finds the count.
    pub fn nonce_at_block(&self, block: u64) -> Result<u64, DevLedgerError> {
        let (mut low, mut high) = (0, self.nonce()?);
        while low < high {
            let middle = low + (high - low) / 2;
            let key = nonce_key(middle);
            let (mined, _) = need(&show_nonce_key(middle), self.tree.get(key)?, decode_nonce)?;
            if mined <= block {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        Ok(low)
    }

    /// The hash of the transfer with `nonce`, if it is in block `block`.
    pub fn transfer_at(&self, block: u64, nonce: u64) -> Result<Option<String>, DevLedgerError> {
        let key = nonce_key(nonce);
        Ok(
            read(&show_nonce_key(nonce), self.tree.get(key)?, decode_nonce)?
                .filter(|(mined, _)| *mined == block)
                .map(|(_, hash)| hash),
        )
    }

    /// The configured outage in force now, if any: the first whose window
    /// `[after_secs, after_secs + for_secs)` since open contains now.
    pub fn in_outage(&self) -> Option<OutageMode> {
        let since_open = (self.clock)().saturating_sub(self.opened_at);
        self.config
            .outages
            .iter()
            .find(|outage| {
                let start = Duration::from_secs(outage.after_secs);
                let end = start.saturating_add(Duration::from_secs(outage.for_secs));
                start <= since_open && since_open < end
            })
            .map(|outage| outage.mode)
    }

    /// The treasury's balance.
    pub fn treasury_balance(&self) -> Result<u128, DevLedgerError> {
        need(TREASURY, self.tree.get(TREASURY)?, decode_u128)
    }

    /// What `destination` has received (0 for an account never paid).
    pub fn balance(&self, destination: &str) -> Result<u128, DevLedgerError> {
        let key = balance_key(destination);
        Ok(read(&key, self.tree.get(&key)?, decode_u128)?.unwrap_or(0))
    }

    /// The nonce the next transfer must carry.
    pub fn nonce(&self) -> Result<u64, DevLedgerError> {
        need(NEXT_NONCE, self.tree.get(NEXT_NONCE)?, decode_u64)
    }

    /// The accepted transfer with this hash, if any.
    pub fn transaction(&self, tx_hash: &str) -> Result<Option<DevTransaction>, DevLedgerError> {
        let key = tx_key(tx_hash);
        read(&key, self.tree.get(&key)?, decode_json)
    }

    /// The dev address rule: 1 to 64 characters of `A-Z a-z 0-9 _ . -`, or `0x` followed
    /// by 1 to 64 hex digits (anything starting with `0x` must be hex). Addresses are
    /// compared exactly, case included. `Err` says what is wrong.
    pub fn check_destination(destination: &str) -> Result<(), String> {
        if let Some(digits) = destination.strip_prefix("0x") {
            if digits.is_empty() {
                return Err("a 0x address needs hex digits after the 0x".into());
            }
            if let Some((i, c)) = digits
                .chars()
                .enumerate()
                .find(|(_, c)| !c.is_ascii_hexdigit())
            {
                return Err(format!(
                    "a 0x address has only hex digits after the 0x; found {c:?} at position {}",
                    i + 2
                ));
            }
            if digits.len() > MAX_HEX_DIGITS {
                return Err(format!(
                    "a 0x address has at most {MAX_HEX_DIGITS} hex digits; this one has {}",
                    digits.len()
                ));
            }
            return Ok(());
        }
        if destination.is_empty() {
            return Err("a dev address cannot be empty".into());
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        if let Some((i, c)) = destination.chars().enumerate().find(|&(_, c)| !allowed(c)) {
            return Err(format!(
                "a dev address has only letters, digits, '_', '.' and '-' \
                 (or is 0x and hex digits); found {c:?} at position {i}"
            ));
        }
        if destination.len() > MAX_NAME_CHARS {
            return Err(format!(
                "a dev address has at most {MAX_NAME_CHARS} characters; this one has {}",
                destination.len()
            ));
        }
        Ok(())
    }

    /// Applies an accepted-to-be transfer in one sled transaction: every rule is checked
    /// against the records read inside it, so concurrent submissions cannot both pass.
    fn apply(
        &self,
        tx_hash: &str,
        transfer: &Transfer,
        block: u64,
    ) -> Result<Result<(), LedgerError>, DevLedgerError> {
        let tx_key = tx_key(tx_hash);
        let balance_key = balance_key(&transfer.destination);
        let record = DevTransaction {
            id: transfer.id,
            nonce: transfer.nonce,
            destination: transfer.destination.clone(),
            amount: transfer.amount,
            block,
        };
        let outcome = self.tree.transaction(|t| {
            if t.get(&tx_key)?.is_some() {
                return Ok(Err(LedgerError::AlreadyKnown));
            }
            let next = tx_need(t, NEXT_NONCE, decode_u64)?;
            if transfer.nonce < next {
                return Ok(Err(LedgerError::NonceTooLow));
            }
            if transfer.nonce > next {
                return Ok(Err(LedgerError::Rejected(format!(
                    "nonce gap: expected {next}, got {}",
                    transfer.nonce
                ))));
            }
            if transfer.cancel {
                t.insert(nonce_key(transfer.nonce), nonce_entry(block, tx_hash))?;
                t.insert(NEXT_NONCE, &(next + 1).to_be_bytes())?;
                t.insert(tx_key.as_bytes(), encode_json(&record))?;
                return Ok(Ok(()));
            }
            if let Err(reason) = Self::check_destination(&transfer.destination) {
                return Ok(Err(LedgerError::InvalidDestination(reason)));
            }
            let treasury = tx_need(t, TREASURY, decode_u128)?;
            let Some(left) = treasury.checked_sub(transfer.amount) else {
                return Ok(Err(LedgerError::InsufficientBalance));
            };
            let received = tx_read(t, &balance_key, decode_u128)?.unwrap_or(0);
            // Unreachable while balances sum to the initial funding; refuse, never wrap.
            let Some(received) = received.checked_add(transfer.amount) else {
                return Ok(Err(LedgerError::Rejected(
                    "the destination's balance would overflow".into(),
                )));
            };
            t.insert(TREASURY, &left.to_be_bytes())?;
            t.insert(balance_key.as_bytes(), &received.to_be_bytes())?;
            t.insert(NEXT_NONCE, &(next + 1).to_be_bytes())?;
            t.insert(tx_key.as_bytes(), encode_json(&record))?;
            t.insert(nonce_key(transfer.nonce), nonce_entry(block, tx_hash))?;
            Ok(Ok(()))
        });
        flatten(outcome)
    }
}

impl Ledger for DevLedger {
    fn chain_id(&self) -> Result<String, LedgerError> {
        Ok(CHAIN_ID.to_owned())
    }

    fn head(&self) -> Result<Head, LedgerError> {
        let number = self.height();
        Ok(Head {
            number,
            hash: self.block_hash_at(number),
            base_fee: None,
            epoch: number / self.config.epoch_length,
        })
    }

    fn finalized(&self) -> Result<Option<u64>, LedgerError> {
        Ok(Some(self.height()))
    }

    fn block_hash(&self, number: u64) -> Result<Option<String>, LedgerError> {
        Ok((number <= self.height()).then(|| self.block_hash_at(number)))
    }

    fn next_nonce(&self) -> Result<u64, LedgerError> {
        self.nonce().map_err(storage_failure)
    }

    fn nonce_at(&self, block: u64) -> Result<u64, LedgerError> {
        self.nonce_at_block(block).map_err(storage_failure)
    }

    fn balance(&self) -> Result<u128, LedgerError> {
        self.treasury_balance().map_err(storage_failure)
    }

    fn treasury_transaction(&self, block: u64, nonce: u64) -> Result<Option<String>, LedgerError> {
        self.transfer_at(block, nonce).map_err(storage_failure)
    }

    fn sign(&self, request: &SignRequest<'_>) -> Result<SignedTx, LedgerError> {
        let disbursement = request.disbursement;
        let cancel = request.kind == AttemptKind::Cancellation;
        let transfer = Transfer {
            chain: CHAIN_ID.to_owned(),
            id: disbursement.id,
            destination: if cancel {
                "treasury".to_owned()
            } else {
                disbursement.destination.clone()
            },
            amount: if cancel { 0 } else { disbursement.amount },
            nonce: request.nonce,
            cancel,
        };
        // An invalid destination still signs: the chain refuses it at submission, which
        // cancels the disbursement, whereas a signing error would halt the executor.
        let bytes = serde_json::to_vec(&transfer).map_err(|error| {
            LedgerError::Signing(format!("cannot encode the transfer: {error}"))
        })?;
        Ok(SignedTx {
            tx_hash: fnv1a_hex(&bytes),
            bytes,
            fees: Fees {
                max_fee_per_gas: 0,
                max_priority_fee_per_gas: 0,
                gas_limit: TRANSFER_GAS,
            },
        })
    }

    fn submit(&self, tx: &SignedTx) -> Result<(), LedgerError> {
        match self.in_outage() {
            Some(OutageMode::Refuse) => {
                return Err(LedgerError::Unreachable(
                    "dev ledger outage: connection refused".into(),
                ));
            }
            Some(OutageMode::Timeout) => return Err(LedgerError::Timeout),
            None => {}
        }
        let transfer = decode_transfer(tx)?;
        let block = self.height().saturating_add(1);
        self.apply(&tx.tx_hash, &transfer, block)
            .map_err(storage_failure)??;
        // Acknowledged means durable, as on a real chain.
        self.tree
            .flush()
            .map_err(|error| storage_failure(error.into()))?;
        tracing::debug!(
            tx_hash = %tx.tx_hash,
            nonce = transfer.nonce,
            destination = %transfer.destination,
            amount = %transfer.amount,
            block,
            "dev ledger accepted a transfer"
        );
        Ok(())
    }

    fn lookup(&self, tx_hash: &str) -> Result<TxStatus, LedgerError> {
        Ok(match self.transaction(tx_hash).map_err(storage_failure)? {
            None => TxStatus::Unknown,
            Some(tx) if self.height() < tx.block => TxStatus::Pending,
            Some(tx) => TxStatus::Included {
                block: tx.block,
                block_hash: self.block_hash_at(tx.block),
            },
        })
    }

    fn validate_destination(&self, destination: &str) -> Result<(), String> {
        Self::check_destination(destination)
    }
}

/// Creates the chain on first open, in one transaction; on a later open, checks that the
/// chain's records decode. Returns the genesis.
fn init(tree: &sled::Tree, config: &DevLedgerConfig) -> Result<u64, DevLedgerError> {
    let now_ms = unix_ms();
    let outcome = tree.transaction(|t| {
        if let Some(genesis) = tx_read(t, GENESIS, decode_u64)? {
            tx_need(t, TREASURY, decode_u128)?;
            tx_need(t, NEXT_NONCE, decode_u64)?;
            return Ok((genesis, false));
        }
        t.insert(GENESIS, &now_ms.to_be_bytes())?;
        t.insert(TREASURY, &config.treasury_balance.to_be_bytes())?;
        t.insert(NEXT_NONCE, &0u64.to_be_bytes())?;
        Ok((now_ms, true))
    });
    let (genesis, created) = flatten(outcome)?;
    if created {
        tree.flush()?;
        tracing::info!(
            genesis_ms = genesis,
            treasury = %config.treasury_balance,
            "dev ledger created"
        );
    } else {
        index_nonces(tree)?;
    }
    Ok(genesis)
}

/// A chain written before the `nonce/` index existed gets it from its transfers.
fn index_nonces(tree: &sled::Tree) -> Result<(), DevLedgerError> {
    let next = need(NEXT_NONCE, tree.get(NEXT_NONCE)?, decode_u64)?;
    let Some(last) = next.checked_sub(1) else {
        return Ok(());
    };
    if tree.get(nonce_key(last))?.is_some() {
        return Ok(());
    }
    let mut batch = sled::Batch::default();
    for entry in tree.scan_prefix(TX_PREFIX) {
        let (key, value) = entry?;
        let key = String::from_utf8_lossy(&key).into_owned();
        let tx = decode_json(&key, &value)?;
        let hash = key.strip_prefix(TX_PREFIX).unwrap_or_default();
        batch.insert(nonce_key(tx.nonce), nonce_entry(tx.block, hash));
    }
    tree.apply_batch(batch)?;
    tree.flush()?;
    Ok(())
}

/// Decodes signed bytes and checks that they belong to this chain and to their hash.
fn decode_transfer(tx: &SignedTx) -> Result<Transfer, LedgerError> {
    let transfer: Transfer = serde_json::from_slice(&tx.bytes)
        .map_err(|error| LedgerError::Rejected(format!("not a dev transfer: {error}")))?;
    if transfer.chain != CHAIN_ID {
        return Err(LedgerError::Rejected(format!(
            "transfer for chain {:?}, this is {CHAIN_ID:?}",
            transfer.chain
        )));
    }
    let hash = fnv1a_hex(&tx.bytes);
    if tx.tx_hash != hash {
        return Err(LedgerError::Rejected(format!(
            "hash {} does not match the transfer's bytes ({hash})",
            tx.tx_hash
        )));
    }
    Ok(transfer)
}

/// 64-bit FNV-1a, as `0x` + 16 lowercase hex digits. Deterministic, not cryptographic.
fn fnv1a_hex(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("0x{hash:016x}")
}

/// A failure of the dev ledger's own storage, as the executor sees it: an infrastructure
/// failure (it retries, and the breaker counts it), logged here with its cause.
fn storage_failure(error: DevLedgerError) -> LedgerError {
    tracing::error!(%error, "dev ledger storage failure");
    LedgerError::Other(error.to_string())
}

fn balance_key(destination: &str) -> String {
    format!("{BALANCE_PREFIX}{destination}")
}

fn tx_key(tx_hash: &str) -> String {
    format!("{TX_PREFIX}{tx_hash}")
}

fn nonce_key(nonce: u64) -> Vec<u8> {
    [NONCE_PREFIX.as_bytes(), &nonce.to_be_bytes()].concat()
}

/// `nonce_key` as an operator reads it in an error.
fn show_nonce_key(nonce: u64) -> String {
    format!("{NONCE_PREFIX}{nonce}")
}

// ----- records ----------------------------------------------------------------------

type Decode<T> = fn(&str, &[u8]) -> Result<T, DevLedgerError>;
type TxResult<T> = Result<T, ConflictableTransactionError<DevLedgerError>>;

fn corrupt(key: &str, reason: impl Into<String>) -> DevLedgerError {
    DevLedgerError::Corrupt {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

fn decode_u64(key: &str, bytes: &[u8]) -> Result<u64, DevLedgerError> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| corrupt(key, format!("expected 8 bytes, found {}", bytes.len())))
}

/// A `nonce/` entry: the block (u64 big-endian), then the transfer's hash.
fn nonce_entry(block: u64, tx_hash: &str) -> Vec<u8> {
    [&block.to_be_bytes()[..], tx_hash.as_bytes()].concat()
}

fn decode_nonce(key: &str, bytes: &[u8]) -> Result<(u64, String), DevLedgerError> {
    let (block, hash) = bytes.split_at_checked(8).ok_or_else(|| {
        corrupt(
            key,
            format!("expected 8 bytes and a hash, found {}", bytes.len()),
        )
    })?;
    let block = decode_u64(key, block)?;
    let hash = std::str::from_utf8(hash)
        .map_err(|_| corrupt(key, "the hash is not UTF-8"))?
        .to_owned();
    Ok((block, hash))
}

fn decode_u128(key: &str, bytes: &[u8]) -> Result<u128, DevLedgerError> {
    <[u8; 16]>::try_from(bytes)
        .map(u128::from_be_bytes)
        .map_err(|_| corrupt(key, format!("expected 16 bytes, found {}", bytes.len())))
}

fn decode_json(key: &str, bytes: &[u8]) -> Result<DevTransaction, DevLedgerError> {
    serde_json::from_slice(bytes).map_err(|error| corrupt(key, error.to_string()))
}

fn encode_json(record: &DevTransaction) -> Vec<u8> {
    // A struct of integers and a string: serialising it cannot fail.
    serde_json::to_vec(record).expect("a DevTransaction always serialises")
}

fn read<T>(
    key: &str,
    value: Option<sled::IVec>,
    decode: Decode<T>,
) -> Result<Option<T>, DevLedgerError> {
    value.map(|bytes| decode(key, &bytes)).transpose()
}

fn need<T>(key: &str, value: Option<sled::IVec>, decode: Decode<T>) -> Result<T, DevLedgerError> {
    read(key, value, decode)?.ok_or_else(|| corrupt(key, "missing, though the chain exists"))
}

fn tx_read<T>(t: &TransactionalTree, key: &str, decode: Decode<T>) -> TxResult<Option<T>> {
    read(key, t.get(key)?, decode).map_err(ConflictableTransactionError::Abort)
}

fn tx_need<T>(t: &TransactionalTree, key: &str, decode: Decode<T>) -> TxResult<T> {
    need(key, t.get(key)?, decode).map_err(ConflictableTransactionError::Abort)
}

fn flatten<T>(outcome: Result<T, TransactionError<DevLedgerError>>) -> Result<T, DevLedgerError> {
    outcome.map_err(|error| match error {
        TransactionError::Abort(error) => error,
        TransactionError::Storage(error) => DevLedgerError::Storage(error),
    })
}
