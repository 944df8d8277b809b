//! `NodeConfig`: built-in defaults, then the TOML file, then `TB_*` environment variables,
//! then command-line flags, each overriding the one before. A bad value is a
//! [`ConfigError`] naming its key; `main` prints it and exits 2.
//!
//! The environment is read through [`Env`], so tests never touch the process's.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub mod admin;
pub mod etcd;
pub mod policy;

pub use self::admin::{AdminToken, Role, Secret};
pub use self::etcd::EtcdConfig;
pub use self::policy::PolicyConfig;
use crate::governance::{CircuitBreakerConfig, TreasuryExecutorConfig};
use crate::ledger::dev::DevLedgerConfig;
use crate::ledger::evm::{EvmLedgerConfig, RpcEndpoint};

/// The default sled database path.
pub const DEFAULT_DB_PATH: &str = "./data/governance.db";
/// The default HTTP address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9615";

/// Which ledger the node pays on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LedgerKind {
    /// The embedded dev ledger (default).
    Dev,
    /// An Ethereum JSON-RPC endpoint.
    Evm,
}

impl LedgerKind {
    fn parse(key: &str, value: &str) -> Result<LedgerKind, ConfigError> {
        match value {
            "dev" => Ok(LedgerKind::Dev),
            "evm" => Ok(LedgerKind::Evm),
            other => Err(ConfigError::new(
                key,
                format!("expected `dev` or `evm`, got {other:?}"),
            )),
        }
    }

    /// `dev` or `evm`.
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Dev => "dev",
            LedgerKind::Evm => "evm",
        }
    }
}

/// Where the executor keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// The local sled database at `db_path` (default).
    Sled,
    /// An etcd cluster (`[etcd]`), shared by several nodes of which one leads. Needs a node
    /// built with the `etcd` feature.
    Etcd,
}

impl StoreKind {
    fn parse(key: &str, value: &str) -> Result<StoreKind, ConfigError> {
        match value {
            "sled" => Ok(StoreKind::Sled),
            "etcd" => Ok(StoreKind::Etcd),
            other => Err(ConfigError::new(
                key,
                format!("expected `sled` or `etcd`, got {other:?}"),
            )),
        }
    }

    /// `sled` or `etcd`.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Sled => "sled",
            StoreKind::Etcd => "etcd",
        }
    }
}

impl std::fmt::Display for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The executor's `identity` when none is configured.
pub const DEFAULT_IDENTITY: &str = "treasury-executor";

/// Everything the node runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// The sled database (`db_path`, `TB_GOVERNANCE_DB_PATH`, `--db-path`).
    pub db_path: PathBuf,
    /// Where the executor keeps its state (`store`, `TB_STORE`, `--store`).
    pub store: StoreKind,
    /// The etcd cluster, for `store = "etcd"` (`[etcd]`, `TB_ETCD_*`).
    pub etcd: EtcdConfig,
    /// The HTTP address (`listen`, `TB_LISTEN`, `--listen`).
    pub listen: SocketAddr,
    /// The admin API's credentials (`[[admin.tokens]]`; `admin_token` or `TB_ADMIN_TOKEN`
    /// for one named `admin`); none turns the admin API off.
    pub admin_tokens: Vec<AdminToken>,
    /// Failed admin authentications a peer address may make in a minute before it is
    /// answered 429 for the rest of it (a valid token still passes) (`admin.auth_failures_per_minute`; 0: no limit).
    pub admin_auth_failures_per_minute: u32,
    /// Which ledger (`ledger`, `TB_LEDGER`, `--ledger`).
    pub ledger: LedgerKind,
    /// The EVM ledger's JSON-RPC endpoints (`rpc_urls`, or `rpc_url` for one;
    /// `TB_RPC_URLS` comma-separated, or `TB_RPC_URL`; `--rpc-url`, repeatable). Each
    /// layer that sets them replaces the list.
    pub rpc_urls: Vec<RpcEndpoint>,
    /// The file holding the treasury's signing key (`treasury_key_file`, `TB_TREASURY_KEY_FILE`).
    pub treasury_key_file: Option<PathBuf>,
    /// Who this executor is, in logs and audit records (`identity`).
    pub identity: String,
    /// Time between ticks (`poll_interval_ms`).
    pub poll_interval: Duration,
    /// Submissions per tick at most (`batch_size`).
    pub batch_size: usize,
    /// The breaker (`[circuit_breaker]`, keys as `CircuitBreakerConfig`'s fields).
    pub circuit_breaker: CircuitBreakerConfig,
    /// The dev ledger (`[dev_ledger]`).
    pub dev_ledger: DevLedgerConfig,
    /// The EVM ledger's fee caps, timeouts and epochs (`[evm]`).
    pub evm: EvmLedgerConfig,
    /// The spending policy (`[policy]`).
    pub policy: PolicyConfig,
}

impl NodeConfig {
    /// The executor's settings: the identity, poll interval and batch size, and with the
    /// EVM ledger its finality and fee bumps (the dev ledger is final at once and has no
    /// fee market: the defaults fit it).
    pub fn executor(&self) -> TreasuryExecutorConfig {
        let mut executor = TreasuryExecutorConfig::new(self.identity.clone());
        executor.poll_interval = self.poll_interval;
        executor.batch_size = self.batch_size;
        if self.ledger == LedgerKind::Evm {
            executor.finality = self.evm.finality();
            executor.bump_after_blocks = self.evm.bump_after_blocks;
            executor.bump_percent = self.evm.bump_percent;
        }
        executor
    }

    /// What the configuration allows but is probably a mistake, one sentence each, for the
    /// log at start (the node runs all the same). With `store = "etcd"`: the default
    /// `identity` (every node of a cluster needs its own, to tell in the logs and audit
    /// records which one led), an `etcd.prefix` without a trailing `/`, and a username
    /// sent over `http://`.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.store == StoreKind::Etcd {
            if self.identity == DEFAULT_IDENTITY {
                warnings.push(format!(
                    "identity is the default {DEFAULT_IDENTITY:?} with store = \"etcd\": every \
                     node sharing the cluster needs its own identity, or the logs and audit \
                     records cannot tell which node led"
                ));
            }
            warnings.extend(self.etcd.warnings());
        }
        warnings
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            db_path: PathBuf::from(DEFAULT_DB_PATH),
            store: StoreKind::Sled,
            etcd: EtcdConfig::default(),
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 9615))),
            admin_tokens: Vec::new(),
            admin_auth_failures_per_minute: admin::DEFAULT_AUTH_FAILURES_PER_MINUTE,
            ledger: LedgerKind::Dev,
            rpc_urls: Vec::new(),
            treasury_key_file: None,
            identity: DEFAULT_IDENTITY.into(),
            poll_interval: Duration::from_secs(1),
            batch_size: 100,
            circuit_breaker: CircuitBreakerConfig::default(),
            dev_ledger: DevLedgerConfig::default(),
            evm: EvmLedgerConfig::default(),
            policy: PolicyConfig::default(),
        }
    }
}

/// A configuration value the node cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {key}: {message}")]
pub struct ConfigError {
    /// The key: a TOML key (`circuit_breaker.timeout_secs`), a variable (`TB_LISTEN`) or a
    /// flag (`--listen`).
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Where environment variables come from.
pub trait Env {
    /// The variable's value, if set (empty counts as unset).
    fn var(&self, name: &str) -> Option<String>;
}

/// The process's environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty()).cloned()
    }
}

/// Values given as command-line flags (they override everything else).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--db-path`.
    pub db_path: Option<PathBuf>,
    /// `--store`.
    pub store: Option<String>,
    /// `--listen`.
    pub listen: Option<String>,
    /// `--ledger`.
    pub ledger: Option<String>,
    /// `--rpc-url`, once per endpoint.
    pub rpc_urls: Vec<String>,
    /// `--treasury-key-file`.
    pub treasury_key_file: Option<PathBuf>,
}

/// The TOML file's shape: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    db_path: Option<PathBuf>,
    store: Option<String>,
    etcd: Option<etcd::EtcdFile>,
    listen: Option<String>,
    admin_token: Option<String>,
    admin: Option<admin::AdminFile>,
    ledger: Option<String>,
    rpc_url: Option<String>,
    rpc_urls: Option<Vec<RpcEndpoint>>,
    treasury_key_file: Option<PathBuf>,
    identity: Option<String>,
    poll_interval_ms: Option<u64>,
    batch_size: Option<u64>,
    circuit_breaker: Option<CircuitBreakerConfig>,
    dev_ledger: Option<DevLedgerConfig>,
    evm: Option<EvmLedgerConfig>,
    policy: Option<policy::PolicyFile>,
}

/// Builds the configuration: defaults, then the file (`--config` or `TB_CONFIG`), then
/// the environment, then the flags. Everything is validated before it is returned.
pub fn load(overrides: &Overrides, env: &dyn Env) -> Result<NodeConfig, ConfigError> {
    let mut config = NodeConfig::default();

    let file = match (&overrides.config, env.var("TB_CONFIG")) {
        (Some(path), _) => Some((path.clone(), "--config")),
        (None, Some(path)) => Some((PathBuf::from(path), "TB_CONFIG")),
        (None, None) => None,
    };
    if let Some((path, key)) = file {
        apply_file(&mut config, &path, key)?;
    }

    if let Some(path) = env.var("TB_GOVERNANCE_DB_PATH") {
        config.db_path = PathBuf::from(path);
    }
    if let Some(store) = env.var("TB_STORE") {
        config.store = StoreKind::parse("TB_STORE", &store)?;
    }
    etcd::apply_env(&mut config.etcd, env)?;
    if let Some(listen) = env.var("TB_LISTEN") {
        config.listen = parse_listen("TB_LISTEN", &listen)?;
    }
    if let Some(token) = env.var("TB_ADMIN_TOKEN") {
        admin::set_inline(&mut config.admin_tokens, "TB_ADMIN_TOKEN", token, true)?;
    }
    if let Some(ledger) = env.var("TB_LEDGER") {
        config.ledger = LedgerKind::parse("TB_LEDGER", &ledger)?;
    }
    match (env.var("TB_RPC_URL"), env.var("TB_RPC_URLS")) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                "TB_RPC_URLS",
                "set either TB_RPC_URL (one endpoint) or TB_RPC_URLS (a list), not both",
            ));
        }
        (Some(url), None) => {
            if url.trim().is_empty() {
                return Err(ConfigError::new("TB_RPC_URL", "must not be blank"));
            }
            config.rpc_urls = vec![RpcEndpoint::Url(url.trim().to_owned())];
        }
        (None, Some(urls)) => config.rpc_urls = url_list("TB_RPC_URLS", &urls)?,
        (None, None) => {}
    }
    if let Some(path) = env.var("TB_TREASURY_KEY_FILE") {
        config.treasury_key_file = Some(PathBuf::from(path));
    }

    if let Some(path) = &overrides.db_path {
        config.db_path = path.clone();
    }
    if let Some(store) = &overrides.store {
        config.store = StoreKind::parse("--store", store)?;
    }
    if let Some(listen) = &overrides.listen {
        config.listen = parse_listen("--listen", listen)?;
    }
    if let Some(ledger) = &overrides.ledger {
        config.ledger = LedgerKind::parse("--ledger", ledger)?;
    }
    if !overrides.rpc_urls.is_empty() {
        if overrides.rpc_urls.iter().any(|url| url.trim().is_empty()) {
            return Err(ConfigError::new("--rpc-url", "must not be empty"));
        }
        config.rpc_urls = overrides
            .rpc_urls
            .iter()
            .map(|url| RpcEndpoint::Url(url.trim().to_owned()))
            .collect();
    }
    if let Some(path) = &overrides.treasury_key_file {
        config.treasury_key_file = Some(path.clone());
    }

    let tokens: Vec<&str> = match config.ledger {
        LedgerKind::Evm => config
            .evm
            .tokens
            .iter()
            .map(|t| t.symbol.as_str())
            .collect(),
        LedgerKind::Dev => vec![],
    };
    config.policy.check_assets(&tokens)?;
    let operators = config
        .admin_tokens
        .iter()
        .filter(|token| token.role == Role::Operator)
        .count();
    if config.policy.approvals_required as usize > operators.max(1) {
        return Err(ConfigError::new(
            "policy.approvals_required",
            format!(
                "{} approvals need as many operator tokens (`[[admin.tokens]]` with role \
                 `operator`), and {operators} are configured: nothing at or above a threshold \
                 could ever be paid",
                config.policy.approvals_required
            ),
        ));
    }
    if config.ledger == LedgerKind::Evm {
        if config.rpc_urls.is_empty() {
            return Err(ConfigError::new(
                "rpc_urls",
                "the EVM ledger needs at least one endpoint's URL (`rpc_url`, `rpc_urls`, \
                 `TB_RPC_URL`, `TB_RPC_URLS` or `--rpc-url`)",
            ));
        }
        if config.treasury_key_file.is_none() {
            return Err(ConfigError::new(
                "treasury_key_file",
                "the EVM ledger needs the treasury key's file (`treasury_key_file`, \
                 `TB_TREASURY_KEY_FILE` or `--treasury-key-file`)",
            ));
        }
    }
    config.etcd.check(config.store, config.poll_interval)?;
    // Last: the whole configuration is checked first, so that a file refused only for
    // this is known good for a node built with etcd.
    if config.store == StoreKind::Etcd && !cfg!(feature = "etcd") {
        return Err(ConfigError::new(
            "store",
            "this node was built without etcd support: build it with the `etcd` feature \
             (`cargo build --release -p node --features etcd`), or use store = \"sled\"",
        ));
    }
    Ok(config)
}

fn apply_file(config: &mut NodeConfig, path: &Path, key: &str) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        ConfigError::new(key, format!("cannot read {}: {error}", path.display()))
    })?;
    let file: FileConfig = toml::from_str(&text).map_err(|error| {
        ConfigError::new(
            format!("{} ({})", key, path.display()),
            describe(&error, &text),
        )
    })?;
    if let Some(db_path) = file.db_path {
        config.db_path = db_path;
    }
    if let Some(store) = file.store {
        config.store = StoreKind::parse("store", &store)?;
    }
    if let Some(etcd) = file.etcd {
        etcd.apply(&mut config.etcd)?;
    }
    if let Some(listen) = file.listen {
        config.listen = parse_listen("listen", &listen)?;
    }
    if let Some(mut admin) = file.admin {
        config.admin_tokens = admin.tokens()?;
        if let Some(limit) = admin.auth_failures_per_minute {
            config.admin_auth_failures_per_minute = limit;
        }
    }
    if let Some(token) = file.admin_token {
        admin::set_inline(&mut config.admin_tokens, "admin_token", token, false)?;
    }
    if let Some(ledger) = file.ledger {
        config.ledger = LedgerKind::parse("ledger", &ledger)?;
    }
    match (file.rpc_url, file.rpc_urls) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                "rpc_urls",
                "set either rpc_url (one endpoint) or rpc_urls (a list), not both",
            ));
        }
        (Some(url), None) => {
            if url.trim().is_empty() {
                return Err(ConfigError::new("rpc_url", "must not be blank"));
            }
            config.rpc_urls = vec![RpcEndpoint::Url(url.trim().to_owned())];
        }
        (None, Some(urls)) => {
            if urls.is_empty() {
                return Err(ConfigError::new(
                    "rpc_urls",
                    "must list at least one endpoint",
                ));
            }
            for (i, endpoint) in urls.iter().enumerate() {
                if endpoint.url().trim().is_empty() {
                    return Err(ConfigError::new(
                        format!("rpc_urls[{i}]"),
                        "the URL is empty",
                    ));
                }
                if endpoint.name().is_some_and(|name| !valid_name(name)) {
                    return Err(ConfigError::new(
                        format!("rpc_urls[{i}].name"),
                        "must be 1 to 64 characters: letters, digits, `.`, `-`, `_`, `:` or `/`",
                    ));
                }
            }
            config.rpc_urls = urls.into_iter().map(RpcEndpoint::trimmed).collect();
        }
        (None, None) => {}
    }
    config.treasury_key_file = file.treasury_key_file.or(config.treasury_key_file.take());
    if let Some(identity) = file.identity {
        if identity.trim().is_empty() {
            return Err(ConfigError::new("identity", "must not be empty"));
        }
        config.identity = identity;
    }
    if let Some(ms) = file.poll_interval_ms {
        if !(10..=3_600_000).contains(&ms) {
            return Err(ConfigError::new(
                "poll_interval_ms",
                format!("must be 10 to 3600000, got {ms}"),
            ));
        }
        config.poll_interval = Duration::from_millis(ms);
    }
    if let Some(batch) = file.batch_size {
        if !(1..=10_000).contains(&batch) {
            return Err(ConfigError::new(
                "batch_size",
                format!("must be 1 to 10000, got {batch}"),
            ));
        }
        config.batch_size = batch as usize;
    }
    if let Some(breaker) = file.circuit_breaker {
        breaker.validate().map_err(|error| {
            ConfigError::new(
                format!("circuit_breaker.{}", error.field()),
                error.to_string(),
            )
        })?;
        config.circuit_breaker = breaker;
    }
    if let Some(evm) = file.evm {
        evm.validate().map_err(|error| {
            ConfigError::new(format!("evm.{}", error.field()), error.to_string())
        })?;
        config.evm = evm;
    }
    if let Some(policy) = file.policy {
        config.policy = policy.into_config()?;
    }
    if let Some(dev) = file.dev_ledger {
        dev.validate()
            .map_err(|error| ConfigError::new("dev_ledger", error.to_string()))?;
        config.dev_ledger = dev;
    }
    Ok(())
}

/// A comma-separated list of URLs (`TB_RPC_URLS`), none empty.
fn url_list(key: &str, value: &str) -> Result<Vec<RpcEndpoint>, ConfigError> {
    value
        .split(',')
        .map(str::trim)
        .map(|url| {
            if url.is_empty() {
                Err(ConfigError::new(key, "an empty URL in the list"))
            } else {
                Ok(RpcEndpoint::Url(url.to_owned()))
            }
        })
        .collect()
}

/// An endpoint's name is a metric label and a log field: short, printable, no quotes.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:/".contains(&b))
}

fn parse_listen(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        ConfigError::new(
            key,
            format!("expected an address like 127.0.0.1:9615, got {value:?}"),
        )
    })
}

pub use self::admin::MIN_TOKEN_LEN;

/// A TOML error on one line of a log: where (line, column, and the key the line sets,
/// under its table) and what, never the value on the offending line, which may be a
/// secret (`admin_token = "…"`).
fn describe(error: &toml::de::Error, text: &str) -> String {
    let message = error
        .message()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let Some(span) = error.span() else {
        return message;
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |at| at + 1) + 1;
    let source = text.lines().nth(line - 1).unwrap_or_default();
    let table = text
        .lines()
        .take(line - 1)
        .filter_map(|l| l.trim().strip_prefix('[')?.split(']').next())
        .last()
        .map(|t| t.trim_matches('[').trim())
        .filter(|t| !t.is_empty());
    let key = source
        .split_once('=')
        .map(|(key, _)| key.trim())
        .filter(|key| {
            !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.\"".contains(&b))
        });
    match (table, key) {
        (Some(table), Some(key)) => {
            format!("line {line}, column {column} ({table}.{key}): {message}")
        }
        (None, Some(key)) => format!("line {line}, column {column} ({key}): {message}"),
        _ => format!("line {line}, column {column}: {message}"),
    }
}

#[cfg(test)]
mod tests;
