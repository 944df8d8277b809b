//! `EvmLedger`: pays disbursements as EIP-1559 value transfers on an Ethereum JSON-RPC
//! endpoint, from a treasury key read from a file.
//!
//! | `Ledger` call          | JSON-RPC                                                        |
//! |------------------------|-----------------------------------------------------------------|
//! | `chain_id`             | `eth_chainId` (checked against `evm.chain_id` if set)           |
//! | `head`                 | `eth_getBlockByNumber("latest")`: number, hash, base fee; epoch = number / `epoch_blocks` |
//! | `finalized`            | `eth_getBlockByNumber("finalized")`                             |
//! | `block_hash`           | `eth_getBlockByNumber(n)`                                       |
//! | `next_nonce`           | `eth_getTransactionCount(treasury, "pending")`                  |
//! | `nonce_at`             | `eth_getTransactionCount(treasury, n)`                          |
//! | `treasury_transaction` | `eth_getBlockByNumber(n, true)`: the treasury's transaction with a nonce |
//! | `balance`              | `eth_getBalance(treasury, "latest")`                            |
//! | `sign`                 | `eth_chainId` (once), `eth_getBlockByNumber("latest")` and `eth_maxPriorityFeePerGas` (quoted at most once a second) |
//! | `submit`               | `eth_sendRawTransaction`                                        |
//! | `lookup`               | `eth_getTransactionReceipt`, then `eth_getTransactionByHash`    |
//!
//! Every call is one blocking HTTP(S) exchange with a deadline, on a [`ureq`] agent that
//! keeps the connection open between calls ([`rpc`]); the node runs them on its blocking
//! pool. How failures map to [`LedgerError`] is in [`rpc`]'s table. An `https://`
//! endpoint's certificate is checked against the system's trusted CAs, or against those
//! of `evm.ca_file` only, when set.
//!
//! `sign` is deterministic for a given fee quote: within the quote's second the same
//! disbursement and nonce give the same bytes; later, the fees (and so the hash) may
//! differ. The executor stores the signed bytes before submitting them and only ever
//! resubmits those, so that never makes two different transactions for one intent.
//!
//! A payment is an EIP-1559 value transfer to the destination; a cancellation (an
//! operator's, by replacement) a zero-value transfer to the treasury itself at the same
//! nonce. A replacement is priced on a fresh quote and offers at least the fees the
//! executor asks (its floor), the tip up to its cap, the max fee never past its cap
//! (`LedgerError::FeeCapReached`).
//!
//! The chain is checked before anything is signed: with `chain_id` configured, an
//! endpoint on another chain fails `chain_id` and `sign` with `LedgerError::Signing`,
//! which halts the executor rather than pay on the wrong chain. Signing always uses the
//! chain id read first; the executor compares every later reading with the one pinned in
//! its store.

mod address;
mod config;
mod fees;
mod key;
mod rpc;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use alloy_consensus::{SignableTransaction, TxEip1559};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Bytes, TxKind, U256, hex};
use governance::{AttemptKind, Head, Ledger, LedgerError, SignRequest, SignedTx, TxStatus};
use serde_json::{Value, json};
use zeroize::Zeroizing;

pub use config::{EvmConfigError, EvmLedgerConfig};

use fees::FeeQuote;
use key::TreasuryKey;
use rpc::{RpcClient, RpcSetupError};

/// How long a fee quote is reused, so that a batch of signatures costs two calls, not two
/// per transfer.
const FEE_QUOTE_TTL: Duration = Duration::from_secs(1);
/// The most bytes read from the key file.
const MAX_KEY_FILE_BYTES: usize = 1024;

/// Why an [`EvmLedger`] could not be made. No message holds key material or URL
/// credentials.
#[derive(Debug, thiserror::Error)]
pub enum EvmLedgerError {
    /// The `[evm]` settings are out of range.
    #[error("invalid configuration: evm.{field}: {0}", field = .0.field())]
    Config(#[from] EvmConfigError),
    /// The RPC URL is not one the client can use.
    #[error("invalid RPC URL {url:?}: {reason}")]
    Url {
        /// The URL, any credentials replaced by `***`.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `evm.ca_file` cannot be read or holds no usable CA certificate.
    #[error("cannot use {} as the CA file: {reason}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The key file cannot be read.
    #[error("cannot read the treasury key file {}: {source}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The key file does not hold a usable private key.
    #[error("the treasury key file {} does not hold a private key: {reason}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong with its contents (never the contents).
        reason: &'static str,
    },
}

/// The ledger of an EVM chain, reached over JSON-RPC.
pub struct EvmLedger {
    rpc: RpcClient,
    key: TreasuryKey,
    config: EvmLedgerConfig,
    /// The endpoint's chain id, once fetched (and, if configured, checked).
    chain_id: OnceLock<u64>,
    /// The last fee quote and when it was fetched.
    fees: Mutex<Option<(Instant, FeeQuote)>>,
}

impl fmt::Debug for EvmLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvmLedger")
            .field("rpc", &self.rpc)
            .field("key", &self.key)
            .field("config", &self.config)
            .field("chain_id", &self.chain_id.get())
            .finish_non_exhaustive()
    }
}

impl EvmLedger {
    /// Checks `config`, reads the key file (a hex private key, optionally `0x` first,
    /// whitespace around it ignored) and `config.ca_file` if set, and parses the URL
    /// (`http(s)://[user:password@]host[:port][/path]`). No network I/O: an endpoint that
    /// is down shows at the first call.
    pub fn new(
        rpc_url: &str,
        key_file: &Path,
        config: EvmLedgerConfig,
    ) -> Result<EvmLedger, EvmLedgerError> {
        config.validate()?;
        let timeout = Duration::from_millis(config.request_timeout_ms);
        let ca_file = config.ca_file.as_deref();
        let rpc = RpcClient::new(rpc_url, timeout, ca_file).map_err(|error| match error {
            RpcSetupError::Url(reason) => EvmLedgerError::Url {
                url: rpc::redact_url(rpc_url),
                reason,
            },
            RpcSetupError::CaFile(reason) => EvmLedgerError::CaFile {
                path: ca_file.map(Path::to_owned).unwrap_or_default(),
                reason,
            },
        })?;
        let text = read_key_file(key_file).map_err(|source| EvmLedgerError::KeyFile {
            path: key_file.to_owned(),
            source,
        })?;
        let key = TreasuryKey::parse(text).map_err(|reason| EvmLedgerError::Key {
            path: key_file.to_owned(),
            reason,
        })?;
        Ok(EvmLedger {
            rpc,
            key,
            config,
            chain_id: OnceLock::new(),
            fees: Mutex::new(None),
        })
    }

    /// The treasury's address: `0x` and 40 EIP-55 checksummed hex digits.
    pub fn address(&self) -> String {
        self.key.address().to_checksum(None)
    }

    /// The endpoint without credentials, path or query: `scheme://host:port`.
    pub fn endpoint(&self) -> String {
        self.rpc.endpoint()
    }

    /// The chain id to sign with: the first one read (and accepted).
    fn signing_chain_id(&self) -> Result<u64, LedgerError> {
        match self.chain_id.get() {
            Some(&id) => Ok(id),
            None => self.read_chain_id(),
        }
    }

    /// Reads the endpoint's chain id; refused if it is not the configured one. The first
    /// one read is kept for signing.
    fn read_chain_id(&self) -> Result<u64, LedgerError> {
        let id = rpc::quantity_u64(&self.rpc.call("eth_chainId", json!([]))?, "eth_chainId")?;
        if let Some(expected) = self.config.chain_id
            && expected != id
        {
            return Err(LedgerError::Signing(format!(
                "the endpoint is on chain {id}, but evm.chain_id is {expected}: refusing to sign"
            )));
        }
        let _ = self.chain_id.set(id);
        Ok(id)
    }

    /// A block by tag or number (`null` when the endpoint has none).
    fn block(&self, tag: &str) -> Result<Option<Value>, LedgerError> {
        let block = self.rpc.call("eth_getBlockByNumber", json!([tag, false]))?;
        match block {
            Value::Null => Ok(None),
            Value::Object(_) => Ok(Some(block)),
            other => Err(LedgerError::Malformed(format!(
                "eth_getBlockByNumber({tag}) answered {}, not a block",
                rpc::bounded(&other.to_string())
            ))),
        }
    }

    /// The current fee quote, fetched at most once per [`FEE_QUOTE_TTL`], or now if
    /// `fresh` (a replacement answers a fee market that just moved).
    fn fee_quote(&self, fresh: bool) -> Result<FeeQuote, LedgerError> {
        let cached = *self.fees.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, quote)) = cached
            && at.elapsed() < FEE_QUOTE_TTL
            && !fresh
        {
            return Ok(quote);
        }
        let block = self
            .block("latest")?
            .ok_or_else(|| LedgerError::Malformed("there is no latest block".into()))?;
        let Some(base_fee) = block.get("baseFeePerGas") else {
            return Err(LedgerError::Malformed(
                "the latest block has no baseFeePerGas (is the chain past London/EIP-1559?)".into(),
            ));
        };
        let base_fee = rpc::quantity(base_fee, "baseFeePerGas")?;
        let tip = rpc::quantity(
            &self.rpc.call("eth_maxPriorityFeePerGas", json!([]))?,
            "eth_maxPriorityFeePerGas",
        )?;
        let quote = FeeQuote { base_fee, tip };
        *self.fees.lock().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), quote));
        Ok(quote)
    }
}

/// The key file's text, wiped when dropped. At most [`MAX_KEY_FILE_BYTES`] are read (a
/// key takes 66 and a newline), so a wrong path such as `/dev/zero` fails at once; the
/// buffer is allocated once, so no copy of the key is left in a freed reallocation.
fn read_key_file(path: &Path) -> std::io::Result<Zeroizing<String>> {
    let mut text = Zeroizing::new(String::with_capacity(MAX_KEY_FILE_BYTES + 1));
    let mut file = std::fs::File::open(path)?.take(MAX_KEY_FILE_BYTES as u64 + 1);
    file.read_to_string(&mut text)?;
    if text.len() > MAX_KEY_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("longer than {MAX_KEY_FILE_BYTES} bytes: not a key file"),
        ));
    }
    Ok(text)
}

/// A block's `number`.
fn block_number(block: &Value) -> Result<u64, LedgerError> {
    rpc::quantity_u64(
        block.get("number").unwrap_or(&Value::Null),
        "the block's number",
    )
}

/// A block's `hash`, lowercase.
fn block_hash(block: &Value) -> Result<String, LedgerError> {
    match block.get("hash").and_then(Value::as_str) {
        Some(hash) if is_tx_hash(hash) => Ok(hash.to_ascii_lowercase()),
        _ => Err(LedgerError::Malformed(
            "the block's hash is not 0x and 64 hex digits".into(),
        )),
    }
}

/// `0x` and 64 hex digits.
fn is_tx_hash(text: &str) -> bool {
    text.strip_prefix("0x")
        .is_some_and(|digits| digits.len() == 64 && digits.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl Ledger for EvmLedger {
    fn chain_id(&self) -> Result<String, LedgerError> {
        self.read_chain_id().map(|id| id.to_string())
    }

    fn head(&self) -> Result<Head, LedgerError> {
        let block = self
            .block("latest")?
            .ok_or_else(|| LedgerError::Malformed("there is no latest block".into()))?;
        let number = block_number(&block)?;
        let base_fee = match block.get("baseFeePerGas") {
            None | Some(Value::Null) => None,
            Some(fee) => Some(rpc::quantity(fee, "baseFeePerGas")?),
        };
        Ok(Head {
            number,
            hash: block_hash(&block)?,
            base_fee,
            // `validate` keeps `epoch_blocks` at least 1.
            epoch: number / self.config.epoch_blocks.max(1),
        })
    }

    fn finalized(&self) -> Result<Option<u64>, LedgerError> {
        self.block("finalized")?
            .map(|block| block_number(&block))
            .transpose()
    }

    fn block_hash(&self, number: u64) -> Result<Option<String>, LedgerError> {
        self.block(&format!("{number:#x}"))?
            .map(|block| block_hash(&block))
            .transpose()
    }

    fn next_nonce(&self) -> Result<u64, LedgerError> {
        let count = self.rpc.call(
            "eth_getTransactionCount",
            json!([self.address(), "pending"]),
        )?;
        rpc::quantity_u64(&count, "eth_getTransactionCount")
    }

    fn nonce_at(&self, block: u64) -> Result<u64, LedgerError> {
        let count = self.rpc.call(
            "eth_getTransactionCount",
            json!([self.address(), format!("{block:#x}")]),
        )?;
        rpc::quantity_u64(&count, "eth_getTransactionCount")
    }

    fn treasury_transaction(&self, block: u64, nonce: u64) -> Result<Option<String>, LedgerError> {
        let block = self
            .rpc
            .call("eth_getBlockByNumber", json!([format!("{block:#x}"), true]))?;
        let Some(transactions) = block.get("transactions").and_then(Value::as_array) else {
            return Ok(None); // no such block (null) on this endpoint
        };
        let treasury = self.key.address().to_string();
        for tx in transactions {
            let from = tx.get("from").and_then(Value::as_str).unwrap_or_default();
            if !from.eq_ignore_ascii_case(&treasury) {
                continue;
            }
            let tx_nonce = rpc::quantity_u64(tx.get("nonce").unwrap_or(&Value::Null), "a nonce")?;
            if tx_nonce == nonce {
                return match tx.get("hash").and_then(Value::as_str) {
                    Some(hash) if is_tx_hash(hash) => Ok(Some(hash.to_ascii_lowercase())),
                    _ => Err(LedgerError::Malformed(
                        "a block's transaction has no hash".into(),
                    )),
                };
            }
        }
        Ok(None)
    }

    fn balance(&self) -> Result<u128, LedgerError> {
        let balance = self
            .rpc
            .call("eth_getBalance", json!([self.address(), "latest"]))?;
        rpc::quantity(&balance, "eth_getBalance")
    }

    fn sign(&self, request: &SignRequest<'_>) -> Result<SignedTx, LedgerError> {
        let (to, value) = match request.kind {
            AttemptKind::Payment => (
                address::parse_destination(&request.disbursement.destination)
                    .map_err(LedgerError::InvalidDestination)?,
                U256::from(request.disbursement.amount),
            ),
            AttemptKind::Cancellation => (self.key.address(), U256::ZERO),
        };
        let chain_id = self.signing_chain_id()?;
        let fees = self
            .fee_quote(request.min_fees.is_some())?
            .capped(&self.config)
            .at_least(request.min_fees, &self.config)
            .map_err(LedgerError::FeeCapReached)?;
        let tx = TxEip1559 {
            chain_id,
            nonce: request.nonce,
            gas_limit: self.config.gas_limit,
            max_fee_per_gas: fees.max_fee_per_gas,
            max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
            to: TxKind::Call(to),
            value,
            access_list: Default::default(),
            input: Bytes::new(),
        };
        let signature = self.key.sign_hash(&tx.signature_hash())?;
        let signed = tx.into_signed(signature);
        Ok(SignedTx {
            tx_hash: format!("0x{}", hex::encode(signed.hash())),
            bytes: signed.encoded_2718(),
            fees: governance::Fees {
                max_fee_per_gas: fees.max_fee_per_gas,
                max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
                gas_limit: self.config.gas_limit,
            },
        })
    }

    fn submit(&self, tx: &SignedTx) -> Result<(), LedgerError> {
        let raw = format!("0x{}", hex::encode(&tx.bytes));
        let answer = self.rpc.call("eth_sendRawTransaction", json!([raw]))?;
        match answer.as_str() {
            Some(hash) if is_tx_hash(hash) => Ok(()),
            _ => Err(LedgerError::Malformed(format!(
                "eth_sendRawTransaction answered {}, not a transaction hash",
                rpc::bounded(&answer.to_string())
            ))),
        }
    }

    fn lookup(&self, tx_hash: &str) -> Result<TxStatus, LedgerError> {
        if !is_tx_hash(tx_hash) {
            return Err(LedgerError::Other(format!(
                "{:?} is not a transaction hash (0x and 64 hex digits)",
                rpc::bounded(tx_hash)
            )));
        }
        let receipt = self
            .rpc
            .call("eth_getTransactionReceipt", json!([tx_hash]))?;
        if !receipt.is_null() {
            // Some nodes answer a receipt for a pending transaction, without a block.
            return match receipt.get("blockNumber") {
                Some(Value::Null) | None => Ok(TxStatus::Pending),
                Some(block) => {
                    let block = rpc::quantity_u64(block, "the receipt's blockNumber")?;
                    let block_hash = match receipt.get("blockHash").and_then(Value::as_str) {
                        Some(hash) if is_tx_hash(hash) => hash.to_ascii_lowercase(),
                        _ => {
                            return Err(LedgerError::Malformed(
                                "the receipt's blockHash is not 0x and 64 hex digits".into(),
                            ));
                        }
                    };
                    // Status 0: mined (the nonce is spent) but reverted, so no value
                    // moved (a contract destination that refuses plain transfers, or
                    // out of gas). The executor cancels the disbursement, saying so.
                    if receipt.get("status").and_then(Value::as_str) == Some("0x0") {
                        tracing::warn!(
                            tx_hash,
                            block,
                            "the transfer was included but reverted (receipt status 0): nothing was paid"
                        );
                        return Ok(TxStatus::Reverted { block, block_hash });
                    }
                    Ok(TxStatus::Included { block, block_hash })
                }
            };
        }
        let tx = self
            .rpc
            .call("eth_getTransactionByHash", json!([tx_hash]))?;
        match tx {
            Value::Null => Ok(TxStatus::Unknown),
            Value::Object(_) => Ok(TxStatus::Pending),
            other => Err(LedgerError::Malformed(format!(
                "eth_getTransactionByHash answered {}, not an object or null",
                rpc::bounded(&other.to_string())
            ))),
        }
    }

    fn validate_destination(&self, destination: &str) -> Result<(), String> {
        address::parse_destination(destination).map(|_| ())
    }
}
