//! The command line: `node run` (the default) and its flags. Every flag names the
//! environment variable it overrides.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Overrides;

/// The treasury node: pays governance-approved disbursements exactly once, behind a
/// circuit breaker, and serves /metrics, /status and /healthz.
#[derive(Debug, Parser)]
#[command(name = "node", version, about, long_about = None)]
pub struct Cli {
    /// What to do (default: run).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the node: the executor loop and the HTTP server (the default).
    Run(RunArgs),
}

/// Flags of `node run`. Precedence: flag > environment variable > TOML file > default.
#[derive(Debug, Default, clap::Args)]
pub struct RunArgs {
    /// TOML configuration file [env: TB_CONFIG]
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// sled database directory [env: TB_GOVERNANCE_DB_PATH] [default: ./data/governance.db]
    #[arg(long, value_name = "PATH")]
    pub db_path: Option<PathBuf>,
    /// HTTP address for /metrics, /status, /healthz [env: TB_LISTEN] [default: 127.0.0.1:9615]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Ledger to pay on: dev (embedded) or evm [env: TB_LEDGER] [default: dev]
    #[arg(long, value_name = "dev|evm")]
    pub ledger: Option<String>,
    /// Ethereum JSON-RPC URL, for --ledger evm [env: TB_RPC_URL]
    #[arg(long, value_name = "URL")]
    pub rpc_url: Option<String>,
    /// File holding the treasury's signing key, for --ledger evm [env: TB_TREASURY_KEY_FILE]
    #[arg(long, value_name = "PATH")]
    pub treasury_key_file: Option<PathBuf>,
}

impl RunArgs {
    /// The flags as configuration overrides.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config: self.config.clone(),
            db_path: self.db_path.clone(),
            listen: self.listen.clone(),
            ledger: self.ledger.clone(),
            rpc_url: self.rpc_url.clone(),
            treasury_key_file: self.treasury_key_file.clone(),
        }
    }
}
