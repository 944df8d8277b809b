//! `[policy]`: the spending policy (see `governance::policy` for the rules).
//!
//! ```toml
//! [policy]
//! approvals_required = 2                        # distinct operators at or above a threshold
//! destinations_file = "/etc/treasury/allow.txt" # optional; re-read on SIGHUP
//!
//! [policy.limits.native]                        # per asset, in its smallest unit
//! max_amount = "5000000000000000000"            # per disbursement
//! daily_limit = "20000000000000000000"          # queued in a rolling 24 hours
//! approval_threshold = "1000000000000000000"    # needs approvals_required from here on
//! ```
//!
//! Amounts are integers or decimal strings (wei overflow TOML's 64-bit integers).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::ConfigError;
use crate::governance::policy::{AssetLimits, Destinations, NATIVE, Policy};

/// The most approvals a policy may require.
pub const MAX_APPROVALS: u32 = 16;

/// The policy as configured: everything but the allow-list's contents, which are read
/// from `destinations_file` at start and on SIGHUP ([`PolicyConfig::load`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfig {
    /// `policy.approvals_required` (default 1).
    pub approvals_required: u32,
    /// `[policy.limits.<asset>]`.
    pub limits: BTreeMap<String, AssetLimits>,
    /// `policy.destinations_file`.
    pub destinations_file: Option<PathBuf>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            approvals_required: 1,
            limits: BTreeMap::new(),
            destinations_file: None,
        }
    }
}

impl PolicyConfig {
    /// Checks that every asset with limits is one the ledger pays: `native`, or one of
    /// `tokens` (the EVM ledger's configured symbols).
    pub(super) fn check_assets(&self, tokens: &[&str]) -> Result<(), ConfigError> {
        for asset in self.limits.keys() {
            if asset != NATIVE && !tokens.contains(&asset.as_str()) {
                return Err(ConfigError::new(
                    format!("policy.limits.{asset}"),
                    format!(
                        "unknown asset: the ledger pays `{NATIVE}` (its own coin){}",
                        if tokens.is_empty() {
                            " only; an EVM ledger's [[evm.tokens]] adds tokens".to_owned()
                        } else {
                            format!(" and {}", tokens.join(", "))
                        }
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The policy, with the allow-list read from its file now. An unreadable or malformed
    /// file is an error naming `policy.destinations_file` (and the line).
    pub fn load(&self) -> Result<Policy, ConfigError> {
        let destinations = match &self.destinations_file {
            Some(path) => Some(Arc::new(read_destinations(path)?)),
            None => None,
        };
        Ok(Policy {
            approvals_required: self.approvals_required,
            limits: self.limits.clone(),
            destinations,
        })
    }
}

fn read_destinations(path: &Path) -> Result<Destinations, ConfigError> {
    const KEY: &str = "policy.destinations_file";
    let text = std::fs::read_to_string(path).map_err(|error| {
        ConfigError::new(KEY, format!("cannot read {}: {error}", path.display()))
    })?;
    let list = Destinations::parse(&text)
        .map_err(|error| ConfigError::new(KEY, format!("{}: {error}", path.display())))?;
    if list.is_empty() {
        return Err(ConfigError::new(
            KEY,
            format!(
                "{} lists no destination: it would refuse every payment (to stop paying, \
                 pause the executor instead)",
                path.display()
            ),
        ));
    }
    Ok(list)
}

/// `[policy]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct PolicyFile {
    approvals_required: Option<i64>,
    destinations_file: Option<PathBuf>,
    limits: BTreeMap<String, LimitsFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct LimitsFile {
    max_amount: Option<Amount>,
    daily_limit: Option<Amount>,
    approval_threshold: Option<Amount>,
}

/// An amount: a TOML integer or a decimal string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Amount {
    Integer(i64),
    Text(String),
}

impl Amount {
    fn value(&self, key: &str) -> Result<u128, ConfigError> {
        match self {
            Amount::Integer(n) => u128::try_from(*n)
                .map_err(|_| ConfigError::new(key, format!("must not be negative, got {n}"))),
            Amount::Text(text) => {
                let digits = text.trim().replace('_', "");
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ConfigError::new(
                        key,
                        format!(
                            "must be an integer in the asset's smallest unit, got {:?}",
                            crate::governance::text::bounded(text, 64)
                        ),
                    ));
                }
                digits.parse().map_err(|_| {
                    ConfigError::new(key, "is larger than 2^128 - 1 (the largest amount)")
                })
            }
        }
    }
}

impl PolicyFile {
    /// The configured policy, every value checked (the allow-list file too).
    pub(super) fn into_config(self) -> Result<PolicyConfig, ConfigError> {
        let mut config = PolicyConfig::default();
        if let Some(n) = self.approvals_required {
            if !(1..=i64::from(MAX_APPROVALS)).contains(&n) {
                return Err(ConfigError::new(
                    "policy.approvals_required",
                    format!("must be 1 to {MAX_APPROVALS}, got {n}"),
                ));
            }
            config.approvals_required = n as u32;
        }
        for (asset, limits) in self.limits {
            let key = |field: &str| format!("policy.limits.{asset}.{field}");
            let positive = |amount: &Option<Amount>, field: &str| -> Result<_, ConfigError> {
                match amount {
                    None => Ok(None),
                    Some(amount) => match amount.value(&key(field))? {
                        0 => Err(ConfigError::new(
                            key(field),
                            "must be greater than 0 (to stop paying, pause the executor)",
                        )),
                        n => Ok(Some(n)),
                    },
                }
            };
            let parsed = AssetLimits {
                max_amount: positive(&limits.max_amount, "max_amount")?,
                daily_limit: positive(&limits.daily_limit, "daily_limit")?,
                approval_threshold: match &limits.approval_threshold {
                    Some(amount) => Some(amount.value(&key("approval_threshold"))?),
                    None => None,
                },
            };
            config.limits.insert(asset, parsed);
        }
        if let Some(path) = self.destinations_file {
            read_destinations(&path)?; // a bad file stops the start, not the first payment
            config.destinations_file = Some(path);
        }
        Ok(config)
    }
}
