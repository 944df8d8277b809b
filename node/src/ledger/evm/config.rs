//! `EvmLedgerConfig`: the `[evm]` table of the node's TOML config, and its checks.

use std::path::PathBuf;

use governance::CircuitBreakerConfig;
use serde::{Deserialize, Deserializer, Serialize};

/// The EVM ledger's settings. Every field has a default, so an empty (or absent) `[evm]`
/// table works against a local node. The endpoints and the key file are not here: they
/// come from `rpc_urls` (`TB_RPC_URLS`, `--rpc-url`) and `TB_TREASURY_KEY_FILE`.
///
/// ```toml
/// [evm]
/// max_fee_per_gas = "100000000000"          # wei; a decimal string (or an integer)
/// max_priority_fee_per_gas = "2000000000"   # wei
/// gas_limit = 500000                       # the cap; each payment's is estimated
/// gas_margin_percent = 20                   # added to each estimate
/// request_timeout_ms = 5000
/// epoch_blocks = 1
/// chain_id = 31337                          # leave out to take the endpoint's
/// confirmations = 12                        # a payment counts at this depth
/// wait_for_finalized = false                # or: once the chain finalizes its block
/// bump_after_blocks = 3                     # pending this long: replaced, fees raised
/// bump_percent = 20                         # by at least this much (10 or more)
/// max_head_lag_blocks = 5                   # an endpoint further behind is not used
/// ca_file = "/etc/treasury/rpc-ca.pem"      # https: trust these CAs, not the system's
///
/// [evm.endpoint_breaker]                    # each endpoint's own breaker
/// failure_threshold = 3                     # the [circuit_breaker] keys; these defaults
/// success_threshold = 1
/// timeout_secs = 30
/// window_secs = 60
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvmLedgerConfig {
    /// The most wei per gas a transfer may pay (base fee and tip together), at least 1.
    #[serde(with = "crate::ledger::decimal_u128")]
    pub max_fee_per_gas: u128,
    /// The most wei per gas the tip may be; at most `max_fee_per_gas`.
    #[serde(with = "crate::ledger::decimal_u128")]
    pub max_priority_fee_per_gas: u128,
    /// The most gas one transaction may be given, at least 21 000 (a plain value
    /// transfer's intrinsic gas): each payment's gas is `eth_estimateGas` plus
    /// `gas_margin_percent`, capped here; one whose estimate is over it is refused
    /// (cancelled before any nonce is spent).
    pub gas_limit: u64,
    /// Added to each estimate, in percent (0 to 1000): state can change between the
    /// estimate and the block (a contract wallet's storage, say).
    pub gas_margin_percent: u64,
    /// The deadline of each JSON-RPC call (connect, send, answer), 1 to 60 000 ms.
    pub request_timeout_ms: u64,
    /// Blocks per epoch (epoch = block number / `epoch_blocks`), at least 1.
    pub epoch_blocks: u64,
    /// The chain the treasury pays on. Set, a different `eth_chainId` halts the executor;
    /// unset, the endpoint's chain id is taken (and pinned in the store at first contact).
    pub chain_id: Option<u64>,
    /// Blocks a payment needs, its own included, before it is Executed and its dependents
    /// go (1: at first inclusion). At least 1.
    pub confirmations: u64,
    /// `true`: a payment is Executed once its block is at or below the chain's
    /// `finalized` block (`confirmations` is then not used).
    pub wait_for_finalized: bool,
    /// A transaction still pending this many blocks after an endpoint took it is replaced
    /// at its nonce with higher fees. At least 1.
    pub bump_after_blocks: u64,
    /// How much a replacement raises both fees, at least: from 10 (what nodes require of
    /// a replacement) to 1000.
    pub bump_percent: u64,
    /// An endpoint whose head is more than this many blocks behind the best endpoint's
    /// is out of sync: neither read from nor submitted to. 0 to 1000.
    pub max_head_lag_blocks: u64,
    /// Each endpoint's own breaker (`[evm.endpoint_breaker]`, the `[circuit_breaker]`
    /// keys). Keys left out take the endpoints' defaults: 3 failures within 60 s open it
    /// for 30 s, 1 success closes it.
    #[serde(deserialize_with = "endpoint_breaker")]
    pub endpoint_breaker: CircuitBreakerConfig,
    /// For an `https://` endpoint: a PEM file of the CA certificates its certificate must
    /// chain to, instead of the system's trusted CAs (a private CA, a self-signed
    /// certificate). Read at startup: missing, or without a usable certificate, is a
    /// configuration error. Unset: the system's trust store.
    pub ca_file: Option<PathBuf>,
    /// The ERC-20 tokens the treasury may pay (`[[evm.tokens]]`): a disbursement whose
    /// `asset` is one's symbol is a `transfer(destination, amount)` to its contract.
    pub tokens: Vec<TokenConfig>,
}

/// One ERC-20 token the treasury pays: `[[evm.tokens]]`.
///
/// ```toml
/// [[evm.tokens]]
/// symbol = "USDC"                                          # a disbursement's `asset`
/// address = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"   # the token contract
/// decimals = 6                                             # for display only
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// What disbursements call it (1 to 32 letters, digits, `_`, `-`, `.`; not `native`).
    pub symbol: String,
    /// The token contract's address (`0x` and 40 hex digits).
    pub address: String,
    /// Decimals of its smallest unit, for display (amounts are always integers in it).
    #[serde(default)]
    pub decimals: u8,
}

/// An endpoint breaker's defaults: quicker to open and to close than the executor's, as
/// the pool has others to turn to.
pub fn endpoint_breaker_defaults() -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        failure_threshold: 3,
        success_threshold: 1,
        timeout_secs: 30,
        window_secs: 60,
        ..CircuitBreakerConfig::default()
    }
}

/// `[evm.endpoint_breaker]`: the keys given, over the endpoints' defaults (not the
/// executor breaker's).
fn endpoint_breaker<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<CircuitBreakerConfig, D::Error> {
    use serde::de::Error;
    let given = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
    let mut merged = serde_json::to_value(endpoint_breaker_defaults()).map_err(D::Error::custom)?;
    if let Some(fields) = merged.as_object_mut() {
        fields.extend(given);
    }
    serde_json::from_value(merged).map_err(D::Error::custom)
}

/// One JSON-RPC endpoint: where it is, and optionally the name it is shown by.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum RpcEndpoint {
    /// A URL alone (`http://…` or `https://…`, credentials and a path allowed).
    Url(String),
    /// A URL and a name.
    Named {
        /// The URL.
        url: String,
        /// What logs, `/status` and metric labels call it (else `scheme://host:port`).
        name: String,
    },
}

impl RpcEndpoint {
    /// The URL (it may hold credentials: never log it).
    pub fn url(&self) -> &str {
        match self {
            RpcEndpoint::Url(url) | RpcEndpoint::Named { url, .. } => url,
        }
    }

    /// The same with the URL's surrounding whitespace removed.
    pub fn trimmed(self) -> RpcEndpoint {
        match self {
            RpcEndpoint::Url(url) => RpcEndpoint::Url(url.trim().to_owned()),
            RpcEndpoint::Named { url, name } => RpcEndpoint::Named {
                url: url.trim().to_owned(),
                name,
            },
        }
    }

    /// The configured name, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            RpcEndpoint::Url(_) => None,
            RpcEndpoint::Named { name, .. } => Some(name),
        }
    }
}

impl std::fmt::Debug for RpcEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcEndpoint")
            .field("url", &super::rpc::redact_url(self.url()))
            .field("name", &self.name())
            .finish()
    }
}

/// 1 gwei in wei.
const GWEI: u128 = 1_000_000_000;
/// The intrinsic gas of a transaction with no data: less can never be included.
pub const TRANSFER_GAS: u64 = 21_000;
/// The default `gas_limit`: the cap of one transaction's gas (a token transfer takes
/// about 50,000; a contract wallet's receive can take more).
pub const DEFAULT_GAS_CAP: u64 = 500_000;
/// The most `gas_margin_percent` may be.
pub const MAX_GAS_MARGIN_PERCENT: u64 = 1_000;
/// The longest `request_timeout_ms` accepted.
pub const MAX_REQUEST_TIMEOUT_MS: u64 = 60_000;
/// The deepest `confirmations` accepted: nodes keep the state of about the last 128
/// blocks, and the executor reads the treasury's nonce at that depth.
pub const MAX_CONFIRMATIONS: u64 = 128;
/// The longest `bump_after_blocks` accepted.
pub const MAX_BUMP_AFTER_BLOCKS: u64 = 10_000;
/// The least `bump_percent` accepted: what geth and reth require of a replacement.
pub const MIN_BUMP_PERCENT: u64 = governance::MIN_BUMP_PERCENT;
/// The most `bump_percent` accepted.
pub const MAX_BUMP_PERCENT: u64 = 1_000;
/// The most `max_head_lag_blocks` accepted.
pub const MAX_HEAD_LAG_BLOCKS: u64 = 1_000;

impl Default for EvmLedgerConfig {
    fn default() -> Self {
        EvmLedgerConfig {
            max_fee_per_gas: 100 * GWEI,
            max_priority_fee_per_gas: 2 * GWEI,
            gas_limit: DEFAULT_GAS_CAP,
            gas_margin_percent: 20,
            request_timeout_ms: 5_000,
            epoch_blocks: 1,
            chain_id: None,
            confirmations: 12,
            wait_for_finalized: false,
            bump_after_blocks: 3,
            bump_percent: 20,
            max_head_lag_blocks: 5,
            endpoint_breaker: endpoint_breaker_defaults(),
            ca_file: None,
            tokens: Vec::new(),
        }
    }
}

/// An `[evm]` value out of range. The message names the key; [`field`](Self::field)
/// gives it alone.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvmConfigError {
    /// `max_fee_per_gas` is 0.
    #[error("must be at least 1 (wei)")]
    MaxFeePerGas,
    /// The tip cap exceeds the fee cap.
    #[error("{tip} must not exceed max_fee_per_gas ({cap})")]
    MaxPriorityFeePerGas {
        /// The tip cap given.
        tip: u128,
        /// The fee cap given.
        cap: u128,
    },
    /// `gas_limit` is below a transfer's intrinsic gas.
    #[error("must be at least {TRANSFER_GAS} (got {0})")]
    GasLimit(u64),
    /// A `[[evm.tokens]]` entry is invalid.
    #[error("tokens[{index}]: {reason}")]
    Token {
        /// Its position, from 0.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// `gas_margin_percent` is over its maximum.
    #[error("must be from 0 to {MAX_GAS_MARGIN_PERCENT} (got {0})")]
    GasMargin(u64),
    /// `request_timeout_ms` is 0 or above a minute.
    #[error("must be from 1 to {MAX_REQUEST_TIMEOUT_MS} (got {0})")]
    RequestTimeout(u64),
    /// `epoch_blocks` is 0.
    #[error("must be at least 1")]
    EpochBlocks,
    /// `chain_id` is 0 (no EIP-155 chain has it).
    #[error("must not be 0")]
    ChainId,
    /// `confirmations` is 0 or implausibly deep.
    #[error("must be from 1 to {MAX_CONFIRMATIONS} (got {0})")]
    Confirmations(u64),
    /// `bump_after_blocks` is 0 or implausibly long.
    #[error("must be from 1 to {MAX_BUMP_AFTER_BLOCKS} (got {0})")]
    BumpAfterBlocks(u64),
    /// `bump_percent` is below what a node requires of a replacement.
    #[error(
        "must be from {MIN_BUMP_PERCENT} to {MAX_BUMP_PERCENT} (got {0}): nodes refuse a \
         replacement that raises its fees by less than 10%"
    )]
    BumpPercent(u64),
    /// `max_head_lag_blocks` is implausibly large.
    #[error("must be from 0 to {MAX_HEAD_LAG_BLOCKS} (got {0})")]
    MaxHeadLagBlocks(u64),
    /// A key of `[evm.endpoint_breaker]` is out of range.
    #[error("{0}")]
    EndpointBreaker(governance::CircuitBreakerConfigError),
}

impl EvmConfigError {
    /// The offending key within `[evm]`, e.g. `max_fee_per_gas`.
    pub fn field(&self) -> String {
        let field = match self {
            EvmConfigError::MaxFeePerGas => "max_fee_per_gas",
            EvmConfigError::MaxPriorityFeePerGas { .. } => "max_priority_fee_per_gas",
            EvmConfigError::GasLimit(_) => "gas_limit",
            EvmConfigError::GasMargin(_) => "gas_margin_percent",
            EvmConfigError::Token { index, .. } => return format!("tokens[{index}]"),
            EvmConfigError::RequestTimeout(_) => "request_timeout_ms",
            EvmConfigError::EpochBlocks => "epoch_blocks",
            EvmConfigError::ChainId => "chain_id",
            EvmConfigError::Confirmations(_) => "confirmations",
            EvmConfigError::BumpAfterBlocks(_) => "bump_after_blocks",
            EvmConfigError::BumpPercent(_) => "bump_percent",
            EvmConfigError::MaxHeadLagBlocks(_) => "max_head_lag_blocks",
            EvmConfigError::EndpointBreaker(error) => {
                return format!("endpoint_breaker.{}", error.field());
            }
        };
        field.to_owned()
    }
}

impl EvmLedgerConfig {
    /// When a payment counts, as the executor takes it.
    pub fn finality(&self) -> governance::Finality {
        if self.wait_for_finalized {
            governance::Finality::Finalized
        } else {
            governance::Finality::Confirmations(self.confirmations)
        }
    }

    /// Checks the values serde cannot.
    pub fn validate(&self) -> Result<(), EvmConfigError> {
        if self.max_fee_per_gas == 0 {
            return Err(EvmConfigError::MaxFeePerGas);
        }
        if self.max_priority_fee_per_gas > self.max_fee_per_gas {
            return Err(EvmConfigError::MaxPriorityFeePerGas {
                tip: self.max_priority_fee_per_gas,
                cap: self.max_fee_per_gas,
            });
        }
        if self.gas_limit < TRANSFER_GAS {
            return Err(EvmConfigError::GasLimit(self.gas_limit));
        }
        if self.gas_margin_percent > MAX_GAS_MARGIN_PERCENT {
            return Err(EvmConfigError::GasMargin(self.gas_margin_percent));
        }
        if !(1..=MAX_REQUEST_TIMEOUT_MS).contains(&self.request_timeout_ms) {
            return Err(EvmConfigError::RequestTimeout(self.request_timeout_ms));
        }
        if self.epoch_blocks == 0 {
            return Err(EvmConfigError::EpochBlocks);
        }
        if self.chain_id == Some(0) {
            return Err(EvmConfigError::ChainId);
        }
        if !(1..=MAX_CONFIRMATIONS).contains(&self.confirmations) {
            return Err(EvmConfigError::Confirmations(self.confirmations));
        }
        if !(1..=MAX_BUMP_AFTER_BLOCKS).contains(&self.bump_after_blocks) {
            return Err(EvmConfigError::BumpAfterBlocks(self.bump_after_blocks));
        }
        if !(MIN_BUMP_PERCENT..=MAX_BUMP_PERCENT).contains(&self.bump_percent) {
            return Err(EvmConfigError::BumpPercent(self.bump_percent));
        }
        if self.max_head_lag_blocks > MAX_HEAD_LAG_BLOCKS {
            return Err(EvmConfigError::MaxHeadLagBlocks(self.max_head_lag_blocks));
        }
        self.endpoint_breaker
            .validate()
            .map_err(EvmConfigError::EndpointBreaker)?;
        for (index, token) in self.tokens.iter().enumerate() {
            let invalid = |reason: String| EvmConfigError::Token { index, reason };
            let symbol = &token.symbol;
            let shaped = !symbol.is_empty()
                && symbol.len() <= governance::treasury::MAX_ASSET_BYTES
                && symbol
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
            if !shaped {
                return Err(invalid(format!(
                    "symbol {symbol:?} must be 1 to 32 letters, digits, `_`, `-` or `.`"
                )));
            }
            if symbol.eq_ignore_ascii_case(governance::policy::NATIVE) {
                return Err(invalid(
                    "symbol `native` is the chain's own coin: give the token another".into(),
                ));
            }
            if self.tokens[..index]
                .iter()
                .any(|t| t.symbol.eq_ignore_ascii_case(symbol))
            {
                return Err(invalid(format!(
                    "symbol {symbol:?} is configured twice (symbols compare without case)"
                )));
            }
            super::address::parse_destination(&token.address)
                .map_err(|reason| invalid(format!("address: {reason}")))?;
            if self.tokens[..index]
                .iter()
                .any(|t| t.address.eq_ignore_ascii_case(&token.address))
            {
                return Err(invalid(format!(
                    "address {} is configured twice",
                    token.address
                )));
            }
            if token.decimals > 36 {
                return Err(invalid(format!(
                    "decimals must be at most 36, got {}",
                    token.decimals
                )));
            }
        }
        Ok(())
    }

    /// The token whose symbol is `asset`, if one is configured.
    pub fn token(&self, asset: &str) -> Option<&TokenConfig> {
        self.tokens.iter().find(|token| token.symbol == asset)
    }
}
