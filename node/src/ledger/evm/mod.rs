//! `EvmLedger`: pays disbursements as EIP-1559 value transfers through one or more Ethereum
//! JSON-RPC endpoints (the pool, `pool.rs`), from a treasury key read from a file.
//!
//! | `Ledger` call          | JSON-RPC                                                        |
//! |------------------------|-----------------------------------------------------------------|
//! | `chain_id`             | every endpoint's `eth_chainId` and latest block: the pool's refresh |
//! | `head`                 | `eth_getBlockByNumber("latest")`: number, hash, base fee; epoch = number / `epoch_blocks` |
//! | `finalized`            | `eth_getBlockByNumber("finalized")`                             |
//! | `block_hash`           | `eth_getBlockByNumber(n)`                                       |
//! | `next_nonce`           | `eth_getTransactionCount(treasury, "pending")`                  |
//! | `nonce_at`             | `eth_getTransactionCount(treasury, n)`                          |
//! | `treasury_transaction` | `eth_getBlockByNumber(n, true)`: the treasury's transaction with a nonce |
//! | `balance`              | `eth_getBalance(treasury, "latest")`                            |
//! | `sign`                 | `eth_estimateGas` (a first transaction; a replacement keeps its gas), `eth_chainId` (once), `eth_getBlockByNumber("latest")` and `eth_maxPriorityFeePerGas` (quoted at most once a second) |
//! | `submit`               | `eth_sendRawTransaction`                                        |
//! | `submit_batch`         | `eth_sendRawTransaction` ×n in JSON-RPC batches of at most 100  |
//! | `lookup`               | `eth_getTransactionReceipt`, then `eth_getTransactionByHash`    |
//! | `lookup_batch`         | the same, in JSON-RPC batches; blocks confirmed in one batch    |
//!
//! Every call is a blocking HTTP(S) exchange with a deadline (a single call or a batch), on
//! a [`ureq`] agent per endpoint that keeps the connection open between calls (`rpc.rs`);
//! the node runs them on its blocking pool. Which endpoint answers, and which answers a
//! second endpoint must confirm, is `pool.rs`'s. How failures map to [`LedgerError`] is in `rpc.rs`'s table. An `https://`
//! endpoint's certificate is checked against the system's trusted CAs, or against those
//! of `evm.ca_file` only, when set.
//!
//! `sign` is deterministic for a given fee quote and gas estimate: within the quote's
//! second the same disbursement and nonce give the same bytes (if the estimate has not
//! moved); later, the fees (and so the hash) may differ. The executor stores the signed bytes before submitting them and only ever
//! resubmits those, so that never makes two different transactions for one intent.
//!
//! A payment is an EIP-1559 value transfer to the destination, its gas estimated (see
//! `gas_for`: a destination that would revert is refused before anything is signed); a
//! cancellation (an operator's, by replacement) a zero-value transfer to the treasury
//! itself at the same nonce. A replacement is priced on a fresh quote and offers at least the fees the
//! executor asks (its floor), the tip up to its cap, the max fee never past its cap
//! (`LedgerError::FeeCapReached`).
//!
//! The chain is checked before anything is signed: an endpoint on another chain than the
//! expected one (`evm.chain_id`, else the one pinned in the store, else the first read) is
//! excluded until a restart, and with every endpoint excluded `chain_id` and `sign` fail
//! with `LedgerError::Signing`, which halts the executor rather than pay on the wrong chain.
//! Signing always uses the expected chain id; the executor also compares every reading with
//! the one pinned in its store.

mod address;
mod config;
mod fees;
mod key;
mod pool;
mod rpc;
#[cfg(test)]
mod tests;
mod token;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use alloy_consensus::{SignableTransaction, TxEip1559};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, TxKind, U256, hex};
use governance::{AttemptKind, Head, Ledger, LedgerError, SignRequest, SignedTx, TxStatus};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::config::{ConfigError, LedgerKind, NodeConfig};

pub use config::{
    EvmConfigError, EvmLedgerConfig, RpcEndpoint, TokenConfig, endpoint_breaker_defaults,
};
pub use pool::{EndpointStatus, RpcEvent, RpcObserver};

use fees::FeeQuote;
use key::TreasuryKey;
use pool::{Endpoint, Pool, Transport};
use rpc::{RpcClient, RpcSetupError};

/// The most transactions in one JSON-RPC batch (geth's default limit is 1,000 calls;
/// hosted providers often allow fewer).
const MAX_BATCH: usize = 100;
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
    /// No endpoint was given.
    #[error("no RPC endpoint: set rpc_url, rpc_urls, TB_RPC_URLS or --rpc-url")]
    NoEndpoint,
    /// Two endpoints would be shown by the same name.
    #[error(
        "two RPC endpoints are both called {0:?}: give them distinct names \
         (rpc_urls = [{{ url = \"…\", name = \"…\" }}, …])"
    )]
    DuplicateName(String),
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

/// The ledger of an EVM chain, reached over a pool of JSON-RPC endpoints.
pub struct EvmLedger {
    pool: Pool,
    key: TreasuryKey,
    config: EvmLedgerConfig,
    /// The last fee quote and when it was fetched.
    fees: Mutex<Option<(Instant, FeeQuote)>>,
}

impl fmt::Debug for EvmLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvmLedger")
            .field("pool", &self.pool)
            .field("key", &self.key)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl EvmLedger {
    /// Checks `config`, reads the key file (a hex private key, optionally `0x` first,
    /// whitespace around it ignored) and `config.ca_file` if set, and parses each endpoint's
    /// URL (`http(s)://[user:password@]host[:port][/path]`). No network I/O: an endpoint that
    /// is down shows at the first call.
    pub fn new(
        endpoints: &[RpcEndpoint],
        key_file: &Path,
        config: EvmLedgerConfig,
    ) -> Result<EvmLedger, EvmLedgerError> {
        config.validate()?;
        if endpoints.is_empty() {
            return Err(EvmLedgerError::NoEndpoint);
        }
        let timeout = Duration::from_millis(config.request_timeout_ms);
        let ca_file = config.ca_file.as_deref();
        let mut transports: Vec<(String, Box<dyn Transport>)> = Vec::new();
        for endpoint in endpoints {
            let url = endpoint.url();
            let rpc = RpcClient::new(url, timeout, ca_file).map_err(|error| match error {
                RpcSetupError::Url(reason) => EvmLedgerError::Url {
                    url: rpc::redact_url(url),
                    reason,
                },
                RpcSetupError::CaFile(reason) => EvmLedgerError::CaFile {
                    path: ca_file.map(Path::to_owned).unwrap_or_default(),
                    reason,
                },
            })?;
            let label = endpoint
                .name()
                .map_or_else(|| rpc.endpoint(), str::to_owned);
            if transports.iter().any(|(taken, _)| *taken == label) {
                return Err(EvmLedgerError::DuplicateName(label));
            }
            transports.push((label, Box::new(rpc)));
        }
        let text = read_key_file(key_file).map_err(|source| EvmLedgerError::KeyFile {
            path: key_file.to_owned(),
            source,
        })?;
        let key = TreasuryKey::parse(text).map_err(|reason| EvmLedgerError::Key {
            path: key_file.to_owned(),
            reason,
        })?;
        Ok(EvmLedger::with_pool(
            Pool::new(
                transports,
                &config.endpoint_breaker,
                governance::MonotonicClock,
                config.max_head_lag_blocks,
                config.chain_id,
            ),
            key,
            config,
        ))
    }

    fn with_pool(pool: Pool, key: TreasuryKey, config: EvmLedgerConfig) -> EvmLedger {
        EvmLedger {
            pool,
            key,
            config,
            fees: Mutex::new(None),
        }
    }

    /// The treasury's address: `0x` and 40 EIP-55 checksummed hex digits.
    pub fn address(&self) -> String {
        self.key.address().to_checksum(None)
    }

    /// The endpoints' names (`scheme://host:port` where none is configured; never
    /// credentials), in configuration order.
    pub fn endpoints(&self) -> Vec<String> {
        self.pool
            .endpoints()
            .iter()
            .map(|endpoint| endpoint.label().to_owned())
            .collect()
    }

    /// Expects chain `id`, the one the store pinned at first contact (unless `evm.chain_id`
    /// is set, which wins): an endpoint on another chain is then excluded whichever
    /// endpoint answers first after a restart.
    pub fn expect_chain(&self, id: u64) {
        self.pool.expect_chain(id);
    }

    /// Each endpoint's state, head, lag, latency and last error, for `/status`.
    pub fn endpoint_status(&self) -> Vec<EndpointStatus> {
        self.pool.status()
    }

    /// Tells `observer` of every request and every endpoint breaker transition (once;
    /// later calls are ignored).
    pub fn observe(&self, observer: RpcObserver) {
        self.pool.observe(observer);
    }

    /// The chain id to sign with: the configured one, else the first one read; never
    /// before an endpoint's chain was checked.
    fn signing_chain_id(&self) -> Result<u64, LedgerError> {
        self.pool.checked_chain_id()
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
        let quote = self.pool.read(|endpoint| {
            let block = block(endpoint, "latest")?
                .ok_or_else(|| LedgerError::Malformed("there is no latest block".into()))?;
            let Some(base_fee) = block.get("baseFeePerGas") else {
                return Err(LedgerError::Malformed(
                    "the latest block has no baseFeePerGas (is the chain past London/EIP-1559?)"
                        .into(),
                ));
            };
            let base_fee = rpc::quantity(base_fee, "baseFeePerGas")?;
            let tip = rpc::quantity(
                &endpoint.call("eth_maxPriorityFeePerGas", json!([]))?,
                "eth_maxPriorityFeePerGas",
            )?;
            Ok(FeeQuote { base_fee, tip })
        })?;
        *self.fees.lock().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), quote));
        Ok(quote)
    }

    /// The contract of the token whose symbol is `asset`. One not configured (any more)
    /// is a signing error, which halts the executor: removing a token from the
    /// configuration must not cancel what was queued in it, nor pay it some other way.
    fn token_address(&self, asset: &str) -> Result<Address, LedgerError> {
        let token = self.config.token(asset).ok_or_else(|| {
            LedgerError::Signing(format!(
                "a disbursement pays {:?}, which [[evm.tokens]] does not configure: configure \
                 it again, or cancel its disbursements, and restart",
                rpc::bounded(asset)
            ))
        })?;
        address::parse_destination(&token.address).map_err(LedgerError::Signing)
    }

    /// If `receipt` is a successful call of one of our tokens, what it paid against what
    /// its transaction asked ([`token::verdict`]); `status` otherwise.
    fn judge_receipt(
        &self,
        endpoint: &Endpoint,
        receipt: &Value,
        status: TxStatus,
    ) -> Result<TxStatus, LedgerError> {
        let TxStatus::Included { block, block_hash } = status else {
            return Ok(status);
        };
        if self.config.tokens.is_empty() {
            return Ok(TxStatus::Included { block, block_hash }); // nothing but the coin
        }
        let Some(to) = receipt.get("to").and_then(Value::as_str) else {
            // Never a contract creation of ours: a receipt without it cannot be judged.
            return Err(LedgerError::Malformed(
                "a receipt without `to`: cannot tell a token payout from a transfer".into(),
            ));
        };
        let Some(token) = self
            .config
            .tokens
            .iter()
            .find(|token| token.address.eq_ignore_ascii_case(to))
        else {
            return Ok(TxStatus::Included { block, block_hash });
        };
        let token = address::parse_destination(&token.address).map_err(LedgerError::Signing)?;
        // The receipt does not hold the call: the transaction does. A backend that cannot
        // show it now is an endpoint failure (tried again), never a verdict.
        let hash = receipt
            .get("transactionHash")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let tx = endpoint.call("eth_getTransactionByHash", json!([hash]))?;
        let same = tx
            .get("hash")
            .and_then(Value::as_str)
            .is_some_and(|found| found.eq_ignore_ascii_case(&hash));
        let Some(input) = tx.get("input").and_then(Value::as_str).filter(|_| same) else {
            return Err(LedgerError::Malformed(format!(
                "eth_getTransactionByHash({}) does not show the transaction its receipt names",
                rpc::bounded(&hash)
            )));
        };
        let Some((recipient, amount)) = token::decode_transfer(input) else {
            return Ok(TxStatus::Mismatch {
                block,
                block_hash,
                reason: "the transaction to the token is not a transfer(address,uint256)".into(),
            });
        };
        Ok(
            match token::verdict(receipt, token, self.key.address(), recipient, amount) {
                token::Verdict::Paid => TxStatus::Included { block, block_hash },
                token::Verdict::Unreadable(why) => return Err(LedgerError::Malformed(why)),
                // Nothing seen moving out of the treasury: the token may have returned
                // false, or logged its transfer in a form this cannot read. Money may
                // have moved: an operator decides, never a cancel on this word.
                token::Verdict::NothingMoved => TxStatus::Mismatch {
                    block,
                    block_hash,
                    reason: format!(
                        "status 1, but no Transfer of {amount} to {recipient} out of the \
                         treasury in its logs (a token that returned false, or logs it \
                         another way): check the destination's balance"
                    ),
                },
                token::Verdict::Mismatch(reason) => TxStatus::Mismatch {
                    block,
                    block_hash,
                    reason,
                },
            },
        )
    }

    /// The gas limit of a first transaction sending `value` and `input` to `to`:
    /// `eth_estimateGas` from the treasury, plus `evm.gas_margin_percent`, at least the
    /// transaction's intrinsic gas, at most `evm.gas_limit` (the cap). A token payout
    /// (`payout`: the token and the amount) is also simulated with `eth_call`.
    ///
    /// A payment the chain would refuse (the call reverts, a token's transfer returns
    /// `false`, or it needs more gas than the cap) is [`LedgerError::Rejected`]: the
    /// executor cancels it before any nonce is spent on it. With several endpoints in
    /// sync, a refusal stands only if a second endpoint refuses too (a lagging backend may
    /// not know the destination's code yet); one that cannot be confirmed is an endpoint
    /// failure, tried again at the next tick. A token payout refused while the endpoint
    /// shows the treasury holding less than its amount is a shortfall
    /// ([`LedgerError::InsufficientBalance`]: it waits), never a refusal.
    fn gas_for(
        &self,
        to: Address,
        value: U256,
        input: &Bytes,
        payout: Option<u128>,
    ) -> Result<u64, LedgerError> {
        let call = json!({
            "from": self.address(),
            "to": to.to_string(),
            "value": format!("{value:#x}"),
            "data": format!("0x{}", hex::encode(input)),
        });
        let cap = self.config.gas_limit;
        let estimate = |endpoint: &Endpoint| -> Result<u64, LedgerError> {
            // A refusal, or a shortfall if the endpoint shows too little of the token.
            let refusal = |endpoint: &Endpoint, reason: String| -> LedgerError {
                match payout {
                    Some(amount) => match self.token_balance_on(endpoint, to) {
                        Ok(balance) if balance < amount => LedgerError::InsufficientBalance,
                        Ok(_) => LedgerError::Rejected(reason),
                        Err(error) => error,
                    },
                    None => LedgerError::Rejected(reason),
                }
            };
            // A token transfer is also called: one that returns `false` instead of
            // reverting would be mined, move nothing, and spend a nonce and its fee.
            if payout.is_some() {
                let answer = endpoint.call("eth_call", json!([call, "latest"]));
                let returned = match reverted_as_rejected(answer) {
                    Err(LedgerError::Rejected(reason)) => return Err(refusal(endpoint, reason)),
                    other => other?,
                };
                if let Err(reason) = token::check_returned(&returned) {
                    return Err(refusal(endpoint, reason));
                }
            }
            let gas = match reverted_as_rejected(endpoint.call("eth_estimateGas", json!([call]))) {
                Err(LedgerError::Rejected(reason)) => return Err(refusal(endpoint, reason)),
                other => rpc::quantity_u64(&other?, "eth_estimateGas")?,
            };
            if gas > cap {
                return Err(LedgerError::Rejected(format!(
                    "the payment needs {gas} gas (eth_estimateGas), more than evm.gas_limit = \
                     {cap}: raise the cap if this destination is trusted, and queue it again"
                )));
            }
            Ok(gas)
        };
        let route = self.pool.route()?;
        let reason = match first_answer(&route, estimate) {
            Ok((_, gas, _)) => return Ok(self.with_margin(gas, input)),
            Err(LedgerError::Rejected(reason)) => reason,
            Err(other) => return Err(other),
        };
        if route.len() == 1 {
            return Err(refused(&reason));
        }
        // Refused: asked of every endpoint in sync again. One that estimates it decides
        // (the refusal was a lagging backend's); two refusals stand.
        let mut refusals = 0;
        for &endpoint in &route {
            match estimate(endpoint) {
                Ok(gas) => return Ok(self.with_margin(gas, input)),
                Err(LedgerError::Rejected(_)) => refusals += 1,
                Err(LedgerError::InsufficientBalance) => {
                    return Err(LedgerError::InsufficientBalance);
                }
                Err(_) => {}
            }
        }
        if refusals >= 2 {
            Err(refused(&reason))
        } else {
            Err(LedgerError::Other(format!(
                "eth_estimateGas refused by one endpoint ({}), not confirmed by another",
                rpc::bounded(&reason)
            )))
        }
    }

    /// `gas` estimated (at most the cap), with the margin, at least the intrinsic gas of a
    /// transaction carrying `input`, at most the cap.
    fn with_margin(&self, gas: u64, input: &Bytes) -> u64 {
        let cap = self.config.gas_limit;
        let margin = u128::from(gas) * u128::from(self.config.gas_margin_percent);
        let limit = u128::from(gas) + margin.div_ceil(100);
        let limit = u64::try_from(limit).unwrap_or(u64::MAX);
        limit.max(intrinsic_gas(input)).min(cap)
    }

    /// The treasury's balance of the token at `token`, on one endpoint.
    fn token_balance_on(&self, endpoint: &Endpoint, token: Address) -> Result<u128, LedgerError> {
        let data = token::balance_of_call(self.key.address());
        let answer = endpoint.call(
            "eth_call",
            json!([{ "to": token.to_string(), "data": data }, "latest"]),
        )?;
        token::balance_word(&answer)
    }

    /// The transaction count of the treasury at `tag` on one endpoint.
    fn count(&self, endpoint: &Endpoint, tag: &str) -> Result<u64, LedgerError> {
        let count = endpoint.call("eth_getTransactionCount", json!([self.address(), tag]))?;
        rpc::quantity_u64(&count, "eth_getTransactionCount")
    }

    /// Where one endpoint says a transaction is.
    fn lookup_on(&self, endpoint: &Endpoint, tx_hash: &str) -> Result<TxStatus, LedgerError> {
        let receipt = endpoint.call("eth_getTransactionReceipt", json!([tx_hash]))?;
        if let Some(status) = receipt_status(&receipt)? {
            return self.judge_receipt(endpoint, &receipt, status);
        }
        pool_status(&endpoint.call("eth_getTransactionByHash", json!([tx_hash]))?)
    }

    /// [`lookup_on`](Self::lookup_on) of each hash, in JSON-RPC batches: the receipts,
    /// then the transactions of those without one.
    fn lookup_batch_on(
        &self,
        endpoint: &Endpoint,
        tx_hashes: &[String],
    ) -> Result<Vec<TxStatus>, LedgerError> {
        let mut statuses = Vec::with_capacity(tx_hashes.len());
        for chunk in tx_hashes.chunks(MAX_BATCH) {
            let calls: Vec<(&str, Value)> = chunk
                .iter()
                .map(|hash| ("eth_getTransactionReceipt", json!([hash])))
                .collect();
            let mut found = Vec::with_capacity(chunk.len());
            for receipt in endpoint.call_batch(&calls) {
                let receipt = receipt?;
                found.push(match receipt_status(&receipt)? {
                    Some(status) => Some(self.judge_receipt(endpoint, &receipt, status)?),
                    None => None,
                });
            }
            let missing: Vec<usize> = (0..chunk.len()).filter(|&i| found[i].is_none()).collect();
            let calls: Vec<(&str, Value)> = missing
                .iter()
                .map(|&i| ("eth_getTransactionByHash", json!([chunk[i]])))
                .collect();
            let mut pooled = endpoint.call_batch(&calls).into_iter();
            for status in found {
                statuses.push(match status {
                    Some(status) => status,
                    None => pool_status(&pooled.next().unwrap_or_else(|| {
                        Err(LedgerError::Malformed("a lookup went unanswered".into()))
                    })?)?,
                });
            }
        }
        Ok(statuses)
    }

    /// Whether `endpoint` has block `number` with hash `hash` on its chain. `None`: it
    /// could not say (it failed).
    fn has_block(&self, endpoint: &Endpoint, number: u64, hash: &str) -> Option<bool> {
        match block(endpoint, &format!("{number:#x}")) {
            Ok(Some(found)) => Some(block_hash(&found).is_ok_and(|found| found == hash)),
            Ok(None) => Some(false),
            Err(_) => None,
        }
    }
}

/// A call's answer, with "the call would fail whatever its gas" as the payment's refusal:
/// anvil answers "execution reverted" (code 3, with the revert reason if any); geth "gas
/// required exceeds allowance". Only for `eth_estimateGas` and `eth_call` of a payment:
/// elsewhere an unknown message stays the endpoint's failure.
fn reverted_as_rejected(answer: Result<Value, LedgerError>) -> Result<Value, LedgerError> {
    match answer {
        Err(LedgerError::Other(message))
            if ["execution reverted", "gas required exceeds allowance"]
                .iter()
                .any(|needle| message.to_ascii_lowercase().contains(needle)) =>
        {
            Err(LedgerError::Rejected(message))
        }
        other => other,
    }
}

/// The intrinsic gas of a transaction carrying `input`: 21,000, and 16 per non-zero and
/// 4 per zero byte of data. No transaction is signed with less.
fn intrinsic_gas(input: &Bytes) -> u64 {
    let data: u64 = input.iter().map(|&b| if b == 0 { 4 } else { 16 }).sum();
    config::TRANSFER_GAS + data
}

/// An estimate's refusal, as the executor's cancel reason.
fn refused(reason: &str) -> LedgerError {
    LedgerError::Rejected(format!(
        "eth_estimateGas: the payment would fail on chain ({}); nothing was signed",
        rpc::bounded(reason)
    ))
}

/// `eth_sendRawTransaction`'s answer: a transaction hash, or it is malformed.
fn sent_hash(answer: &Value) -> Result<(), LedgerError> {
    match answer.as_str() {
        Some(hash) if is_tx_hash(hash) => Ok(()),
        _ => Err(LedgerError::Malformed(format!(
            "eth_sendRawTransaction answered {}, not a transaction hash",
            rpc::bounded(&answer.to_string())
        ))),
    }
}

/// A block by tag or number on one endpoint (`null` when it has none).
fn block(endpoint: &Endpoint, tag: &str) -> Result<Option<Value>, LedgerError> {
    let block = endpoint.call("eth_getBlockByNumber", json!([tag, false]))?;
    match block {
        Value::Null => Ok(None),
        Value::Object(_) => Ok(Some(block)),
        other => Err(LedgerError::Malformed(format!(
            "eth_getBlockByNumber({tag}) answered {}, not a block",
            rpc::bounded(&other.to_string())
        ))),
    }
}

/// The hashes of `blocks` on one endpoint, in one batch (`None`: it has no such block).
fn block_hashes_on(
    endpoint: &Endpoint,
    blocks: &[u64],
) -> Result<std::collections::HashMap<u64, Option<String>>, LedgerError> {
    let mut hashes = std::collections::HashMap::new();
    for chunk in blocks.chunks(MAX_BATCH) {
        let calls: Vec<(&str, Value)> = chunk
            .iter()
            .map(|block| {
                (
                    "eth_getBlockByNumber",
                    json!([format!("{block:#x}"), false]),
                )
            })
            .collect();
        for (&number, answer) in chunk.iter().zip(endpoint.call_batch(&calls)) {
            let hash = match answer? {
                Value::Null => None,
                found @ Value::Object(_) => Some(block_hash(&found)?),
                other => {
                    return Err(LedgerError::Malformed(format!(
                        "eth_getBlockByNumber answered {}, not a block",
                        rpc::bounded(&other.to_string())
                    )));
                }
            };
            hashes.insert(number, hash);
        }
    }
    Ok(hashes)
}

/// What a receipt says: `None` for no receipt (`null`); a receipt without a block is a
/// transaction still pending (some nodes answer so).
fn receipt_status(receipt: &Value) -> Result<Option<TxStatus>, LedgerError> {
    if receipt.is_null() {
        return Ok(None);
    }
    let block = match receipt.get("blockNumber") {
        Some(Value::Null) | None => return Ok(Some(TxStatus::Pending)),
        Some(block) => rpc::quantity_u64(block, "the receipt's blockNumber")?,
    };
    let block_hash = match receipt.get("blockHash").and_then(Value::as_str) {
        Some(hash) if is_tx_hash(hash) => hash.to_ascii_lowercase(),
        _ => {
            return Err(LedgerError::Malformed(
                "the receipt's blockHash is not 0x and 64 hex digits".into(),
            ));
        }
    };
    // Status 0: mined (the nonce is spent) but reverted, so no value moved (a contract
    // destination that refuses plain transfers, or out of gas). The executor cancels the
    // disbursement, saying so.
    if receipt.get("status").and_then(Value::as_str) == Some("0x0") {
        return Ok(Some(TxStatus::Reverted { block, block_hash }));
    }
    Ok(Some(TxStatus::Included { block, block_hash }))
}

/// What `eth_getTransactionByHash` says of a transaction without a receipt.
fn pool_status(tx: &Value) -> Result<TxStatus, LedgerError> {
    match tx {
        Value::Null => Ok(TxStatus::Unknown),
        Value::Object(_) => Ok(TxStatus::Pending),
        other => Err(LedgerError::Malformed(format!(
            "eth_getTransactionByHash answered {}, not an object or null",
            rpc::bounded(&other.to_string())
        ))),
    }
}

/// How far a transaction has got, to compare two endpoints' answers.
fn progress(status: &TxStatus) -> u8 {
    match status {
        TxStatus::Unknown => 0,
        TxStatus::Pending => 1,
        TxStatus::Included { .. } | TxStatus::Reverted { .. } | TxStatus::Mismatch { .. } => 2,
    }
}

/// A receipt's block.
fn receipt_block(status: &TxStatus) -> Option<(u64, &str)> {
    match status {
        TxStatus::Included { block, block_hash }
        | TxStatus::Reverted { block, block_hash }
        | TxStatus::Mismatch {
            block, block_hash, ..
        } => Some((*block, block_hash)),
        TxStatus::Unknown | TxStatus::Pending => None,
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
    /// Refreshes the pool (every endpoint's chain id and head: the tick's first call) and
    /// returns the treasury's chain id.
    fn chain_id(&self) -> Result<String, LedgerError> {
        self.pool.refresh().map(|id| id.to_string())
    }

    fn head(&self) -> Result<Head, LedgerError> {
        let block = self.pool.read(|endpoint| {
            block(endpoint, "latest")?
                .ok_or_else(|| LedgerError::Malformed("there is no latest block".into()))
        })?;
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
        self.pool.read(|endpoint| {
            block(endpoint, "finalized")?
                .map(|block| block_number(&block))
                .transpose()
        })
    }

    fn block_hash(&self, number: u64) -> Result<Option<String>, LedgerError> {
        self.pool.read(|endpoint| {
            block(endpoint, &format!("{number:#x}"))?
                .map(|block| block_hash(&block))
                .transpose()
        })
    }

    /// Confirmed by a second endpoint in sync: a nonce that differs from the store's
    /// holds the executor.
    fn next_nonce(&self) -> Result<u64, LedgerError> {
        self.pool
            .confirmed("the treasury's pending nonce", None, |endpoint| {
                self.count(endpoint, "pending")
            })
    }

    /// Confirmed by a second endpoint in sync: a nonce spent at depth by a stranger holds
    /// the executor.
    fn nonce_at(&self, block: u64) -> Result<u64, LedgerError> {
        self.pool.confirmed(
            &format!("the treasury's nonce at block {block}"),
            Some(block),
            |endpoint| self.count(endpoint, &format!("{block:#x}")),
        )
    }

    /// Confirmed by a second endpoint in sync: it names what spent a nonce.
    fn treasury_transaction(&self, block: u64, nonce: u64) -> Result<Option<String>, LedgerError> {
        let treasury = self.key.address().to_string();
        self.pool.confirmed(
            &format!("the treasury's transaction at nonce {nonce} in block {block}"),
            Some(block),
            |endpoint| {
                let block =
                    endpoint.call("eth_getBlockByNumber", json!([format!("{block:#x}"), true]))?;
                let Some(transactions) = block.get("transactions").and_then(Value::as_array) else {
                    return Ok(None); // no such block (null) on this endpoint
                };
                for tx in transactions {
                    let from = tx.get("from").and_then(Value::as_str).unwrap_or_default();
                    if !from.eq_ignore_ascii_case(&treasury) {
                        continue;
                    }
                    let tx_nonce =
                        rpc::quantity_u64(tx.get("nonce").unwrap_or(&Value::Null), "a nonce")?;
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
            },
        )
    }

    fn balance(&self) -> Result<u128, LedgerError> {
        self.pool.read(|endpoint| {
            let balance = endpoint.call("eth_getBalance", json!([self.address(), "latest"]))?;
            rpc::quantity(&balance, "eth_getBalance")
        })
    }

    fn sign(&self, request: &SignRequest<'_>) -> Result<SignedTx, LedgerError> {
        let (to, value, input): (Address, U256, Bytes) = match request.kind {
            AttemptKind::Payment => {
                let payment = request.disbursement;
                let destination = address::parse_destination(&payment.destination)
                    .map_err(LedgerError::InvalidDestination)?;
                match payment.asset() {
                    governance::policy::NATIVE => {
                        (destination, U256::from(payment.amount), Bytes::new())
                    }
                    asset => (
                        self.token_address(asset)?,
                        U256::ZERO,
                        token::transfer_call(destination, payment.amount),
                    ),
                }
            }
            AttemptKind::Cancellation => (self.key.address(), U256::ZERO, Bytes::new()),
        };
        let chain_id = self.signing_chain_id()?;
        // A replacement keeps the gas of the transaction it replaces (enough then, and
        // never re-estimated into a refusal of a payment that may be out there).
        let gas_limit = match request.min_fees {
            Some(floor) => floor.gas_limit.max(config::TRANSFER_GAS),
            None => {
                let payout = (!input.is_empty()).then_some(request.disbursement.amount);
                self.gas_for(to, value, &input, payout)?
            }
        };
        let fees = self
            .fee_quote(request.min_fees.is_some())?
            .capped(&self.config)
            .at_least(request.min_fees, &self.config)
            .map_err(LedgerError::FeeCapReached)?;
        let tx = TxEip1559 {
            chain_id,
            nonce: request.nonce,
            gas_limit,
            max_fee_per_gas: fees.max_fee_per_gas,
            max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
            to: TxKind::Call(to),
            value,
            access_list: Default::default(),
            input,
        };
        let signature = self.key.sign_hash(&tx.signature_hash())?;
        let signed = tx.into_signed(signature);
        Ok(SignedTx {
            tx_hash: format!("0x{}", hex::encode(signed.hash())),
            bytes: signed.encoded_2718(),
            fees: governance::Fees {
                max_fee_per_gas: fees.max_fee_per_gas,
                max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
                gas_limit,
            },
        })
    }

    /// The same bytes to every endpoint in sync, at once: accepted if one accepts (see
    /// `pool::combine_broadcast` for the rest).
    fn submit(&self, tx: &SignedTx) -> Result<(), LedgerError> {
        let raw = format!("0x{}", hex::encode(&tx.bytes));
        self.pool.broadcast(|endpoint| {
            sent_hash(&endpoint.call("eth_sendRawTransaction", json!([raw]))?)
        })
    }

    /// The same bytes to every endpoint in sync, as JSON-RPC batches of at most
    /// `MAX_BATCH` (100) transactions (one exchange each), every transaction answered: the
    /// executor settles each answer as `submit`'s.
    fn submit_batch(&self, txs: &[SignedTx]) -> Vec<Result<(), LedgerError>> {
        if let [only] = txs {
            return vec![self.submit(only)];
        }
        let mut answers = Vec::with_capacity(txs.len());
        for chunk in txs.chunks(MAX_BATCH) {
            let calls: Vec<(&str, Value)> = chunk
                .iter()
                .map(|tx| {
                    let raw = format!("0x{}", hex::encode(&tx.bytes));
                    ("eth_sendRawTransaction", json!([raw]))
                })
                .collect();
            answers.extend(self.pool.broadcast_batch(chunk.len(), |endpoint| {
                endpoint
                    .call_batch(&calls)
                    .into_iter()
                    .map(|answer| answer.and_then(|value| sent_hash(&value)))
                    .collect()
            }));
        }
        answers
    }

    /// Where a transaction is, never on one endpoint's word where two are in sync:
    ///
    /// - "unknown" is asked again of the other endpoints in sync, and stands only if every
    ///   one that answers says so; if one has it in a block, the first must hold the same
    ///   block (by hash) for that answer to stand, and is then counted as wrong (its reads
    ///   lag behind its head); else it is still pending.
    /// - in a block: the second endpoint must hold the same block (by hash), else it is
    ///   still pending (the block may be on its way, or on a fork).
    /// - pending: taken as it is (nothing the executor does turns on it).
    ///
    /// With one endpoint in sync its answer stands; with several of which only the first
    /// answered, "unknown" fails (the executor cannot know) and a block is pending.
    fn lookup(&self, tx_hash: &str) -> Result<TxStatus, LedgerError> {
        if !is_tx_hash(tx_hash) {
            return Err(LedgerError::Other(format!(
                "{:?} is not a transaction hash (0x and 64 hex digits)",
                rpc::bounded(tx_hash)
            )));
        }
        let route = self.pool.route()?;
        let (at, status, mut last_failure) =
            first_answer(&route, |endpoint| self.lookup_on(endpoint, tx_hash))?;
        let first = route[at];
        // Those before it failed just now: not asked again.
        let others: Vec<&Endpoint> = route[at + 1..].to_vec();
        if route.len() == 1 || matches!(status, TxStatus::Pending) {
            return Ok(status);
        }
        if let Some((block, hash)) = receipt_block(&status) {
            let confirmed = others
                .iter()
                .find_map(|second| self.has_block(second, block, hash))
                .unwrap_or(false);
            return Ok(if confirmed { status } else { TxStatus::Pending });
        }
        // "Unknown" from the first: it stands only if every other endpoint in sync that
        // answers says so too.
        let mut answered_unknown = false;
        for &second in &others {
            let check = match self.lookup_on(second, tx_hash) {
                Ok(check) => check,
                Err(error) if pool::can_try_another(&error) => {
                    last_failure = Some(error);
                    continue;
                }
                Err(error) => return Err(error),
            };
            if progress(&check) <= progress(&status) {
                answered_unknown = true;
                continue;
            }
            let Some((block, hash)) = receipt_block(&check) else {
                return Ok(TxStatus::Pending); // in this one's pool
            };
            return Ok(match self.has_block(first, block, hash) {
                Some(true) => {
                    first.penalize(format!(
                        "it does not know {tx_hash}, included in block {block} it holds: \
                         its reads lag behind its head"
                    ));
                    check
                }
                _ => TxStatus::Pending,
            });
        }
        if answered_unknown {
            return Ok(TxStatus::Unknown);
        }
        Err(last_failure.unwrap_or_else(|| {
            LedgerError::Unreachable("no second RPC endpoint to confirm a lookup".into())
        }))
    }

    /// In JSON-RPC batches on the best endpoint in sync; with several in sync, each answer
    /// is confirmed as [`lookup`](Self::lookup) confirms one: a block stands only if the
    /// next endpoint holds it (one batch of block reads), and "unknown" is asked again as a
    /// single lookup asks it.
    fn lookup_batch(&self, tx_hashes: &[String]) -> Result<Vec<TxStatus>, LedgerError> {
        if let Some(bad) = tx_hashes.iter().find(|hash| !is_tx_hash(hash)) {
            return Err(LedgerError::Other(format!(
                "{:?} is not a transaction hash (0x and 64 hex digits)",
                rpc::bounded(bad)
            )));
        }
        let route = self.pool.route()?;
        if route.len() == 1 {
            return self
                .pool
                .read(|endpoint| self.lookup_batch_on(endpoint, tx_hashes));
        }
        // The best endpoint's answers in batches, then what needs a second word.
        let (at, mut statuses, _) =
            first_answer(&route, |endpoint| self.lookup_batch_on(endpoint, tx_hashes))?;
        // In a block: it stands only if a second endpoint holds that block (by hash).
        let blocks: Vec<u64> = {
            let mut blocks: Vec<u64> = statuses
                .iter()
                .filter_map(|status| receipt_block(status).map(|(block, _)| block))
                .collect();
            blocks.sort_unstable();
            blocks.dedup();
            blocks
        };
        if !blocks.is_empty() {
            let held = route[at + 1..]
                .iter()
                .find_map(|second| block_hashes_on(second, &blocks).ok())
                .unwrap_or_default();
            for status in &mut statuses {
                if let Some((block, hash)) = receipt_block(status)
                    && held.get(&block).and_then(Option::as_deref) != Some(hash)
                {
                    *status = TxStatus::Pending;
                }
            }
        }
        // "Unknown": asked again the way a single lookup asks (rare: a dropped transaction).
        for (status, hash) in statuses.iter_mut().zip(tx_hashes) {
            if matches!(status, TxStatus::Unknown) {
                *status = self.lookup(hash)?;
            }
        }
        Ok(statuses)
    }

    fn validate_destination(&self, destination: &str) -> Result<(), String> {
        address::parse_destination(destination).map(|_| ())
    }

    fn validate_asset(&self, asset: &str) -> Result<(), String> {
        if asset == governance::policy::NATIVE || self.config.token(asset).is_some() {
            return Ok(());
        }
        let known: Vec<&str> = self
            .config
            .tokens
            .iter()
            .map(|t| t.symbol.as_str())
            .collect();
        Err(format!(
            "unknown asset {:?}: this ledger pays `native`{}",
            rpc::bounded(asset),
            if known.is_empty() {
                " only ([[evm.tokens]] configures tokens)".to_owned()
            } else {
                format!(" and {}", known.join(", "))
            }
        ))
    }

    fn asset_balance(&self, asset: &str) -> Result<u128, LedgerError> {
        if asset == governance::policy::NATIVE {
            return self.balance();
        }
        let token = self.token_address(asset)?;
        self.pool
            .read(|endpoint| self.token_balance_on(endpoint, token))
    }
}

/// The EVM ledger `config` names, if any: its key file read and its URLs parsed now, so
/// that a bad one is a configuration error naming its key (exit 2), not a failure at
/// run time.
pub fn open(config: &NodeConfig) -> Result<Option<EvmLedger>, ConfigError> {
    if config.ledger != LedgerKind::Evm {
        return Ok(None);
    }
    // `load` refuses an EVM configuration without a key file or an endpoint.
    let Some(key_file) = &config.treasury_key_file else {
        return Err(ConfigError {
            key: "treasury_key_file".into(),
            message: "the EVM ledger needs treasury_key_file".into(),
        });
    };
    EvmLedger::new(&config.rpc_urls, key_file, config.evm.clone())
        .map(Some)
        .map_err(|error| {
            let key = match &error {
                EvmLedgerError::Config(invalid) => format!("evm.{}", invalid.field()),
                EvmLedgerError::Url { .. }
                | EvmLedgerError::NoEndpoint
                | EvmLedgerError::DuplicateName(_) => "rpc_urls".into(),
                EvmLedgerError::CaFile { .. } => "evm.ca_file".into(),
                EvmLedgerError::KeyFile { .. } | EvmLedgerError::Key { .. } => {
                    "treasury_key_file".into()
                }
            };
            let message = match error {
                EvmLedgerError::Config(invalid) => invalid.to_string(),
                other => other.to_string(),
            };
            ConfigError { key, message }
        })
}

/// The first answer along `route`: its position, the answer, and the last failure met
/// before it. A failure another endpoint may not share moves on to the next; any other
/// failure is returned at once; none answering is the last such failure.
fn first_answer<T>(
    route: &[&Endpoint],
    mut call: impl FnMut(&Endpoint) -> Result<T, LedgerError>,
) -> Result<(usize, T, Option<LedgerError>), LedgerError> {
    let mut last_failure = None;
    for (at, &endpoint) in route.iter().enumerate() {
        match call(endpoint) {
            Ok(answer) => return Ok((at, answer, last_failure)),
            Err(error) if pool::can_try_another(&error) => last_failure = Some(error),
            Err(error) => return Err(error),
        }
    }
    Err(last_failure.unwrap_or_else(|| LedgerError::Unreachable("no RPC endpoint in sync".into())))
}
