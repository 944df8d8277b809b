//! The command line: `node run` (the default) and its flags, and the admin API's client
//! commands (`node breaker …`, `node disburse …`, `node intents …`, `node executor …`,
//! `node audit`). Every flag names the environment variable it overrides.

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
    /// Copy the store between engines: `node store export > dump` (the sled database at
    /// --db-path), `node store import < dump` (into the empty etcd prefix of [etcd]), or both
    /// at once with `node store migrate --to etcd`. All or nothing; stop the node first.
    #[command(after_help = STORE_AFTER_HELP)]
    Store(StoreArgs),
    /// The admin API's client commands (they talk to a running node).
    #[command(flatten)]
    Admin(AdminCommand),
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
    /// Where the executor keeps its state: sled (the local database at --db-path) or etcd (a
    /// cluster shared by several nodes, one leading; needs a node built with the `etcd`
    /// feature). etcd's settings: the config file's [etcd], or TB_ETCD_ENDPOINTS
    /// (comma-separated), TB_ETCD_PREFIX, TB_ETCD_LEASE_TTL_SECS, TB_ETCD_USERNAME,
    /// TB_ETCD_PASSWORD_FILE [env: TB_STORE] [default: sled]
    #[arg(long, value_name = "sled|etcd")]
    pub store: Option<String>,
    /// HTTP address for /metrics, /status, /healthz [env: TB_LISTEN] [default: 127.0.0.1:9615]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Ledger to pay on: dev (embedded) or evm [env: TB_LEDGER] [default: dev]
    #[arg(long, value_name = "dev|evm")]
    pub ledger: Option<String>,
    /// Ethereum JSON-RPC endpoint URL, http(s)://user:password@host:port/path (all but the
    /// host optional), for --ledger evm; repeat it for several endpoints, each behind its
    /// own breaker [env: TB_RPC_URLS, comma-separated, or TB_RPC_URL]
    #[arg(long = "rpc-url", value_name = "URL")]
    pub rpc_urls: Vec<String>,
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
            store: self.store.clone(),
            listen: self.listen.clone(),
            ledger: self.ledger.clone(),
            rpc_urls: self.rpc_urls.clone(),
            treasury_key_file: self.treasury_key_file.clone(),
        }
    }
}

/// `node store …`.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: StoreAction,
    /// The configuration (the sled database, and etcd's settings) as for `node run`.
    #[command(flatten)]
    pub config: RunArgs,
}

/// The store's commands.
#[derive(Debug, Clone, Subcommand)]
pub enum StoreAction {
    /// Write every record of the sled database at --db-path to stdout (a text dump with a
    /// checksum trailer).
    Export,
    /// Read a dump from stdin and write it into the empty etcd prefix ([etcd] endpoints and
    /// prefix). A damaged or truncated dump writes nothing.
    Import {
        /// Clear what an earlier import that did not finish wrote, then import.
        #[arg(long)]
        force: bool,
    },
    /// Export the sled database and import it into etcd, in one command.
    Migrate {
        /// The engine to move to (only `etcd`).
        #[arg(long, value_name = "etcd")]
        to: String,
        /// As for import.
        #[arg(long)]
        force: bool,
    },
}

const STORE_AFTER_HELP: &str = "\
Exit status: 0 done (the count of records on stderr); 1 the copy failed (an import that \
failed partway leaves a marker: the node refuses to run its executor on that prefix until \
`node store import --force` finishes); 2 a configuration or usage error.";

/// What the admin client commands (`node breaker`, `disburse`, `intents`, `executor`,
/// `audit`) print after their help.
const CLIENT_AFTER_HELP: &str = "\
Prints the node's JSON answer on stdout. Exit status: 0 done; 1 the node answered with an \
error (`error: HTTP <code>: <message>` on stderr) or could not be reached; 2 a usage error \
(a bad flag, a bad --url, no token). Every change made through the admin API is recorded \
in the audit log (`node audit`).";

/// The admin API's client commands: each is one HTTP call to a running node.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Show or override the circuit breaker (GET/POST /admin/breaker/...).
    #[command(after_help = CLIENT_AFTER_HELP)]
    Breaker(BreakerArgs),
    /// Queue, list, show, approve, cancel and mark paid disbursements
    /// (/admin/disbursements).
    #[command(after_help = CLIENT_AFTER_HELP)]
    Disburse(DisburseArgs),
    /// What is in flight (nonce, attempts, binding), and settling a nonce the chain spent
    /// without any of its transactions (/admin/intents).
    #[command(after_help = CLIENT_AFTER_HELP)]
    Intents(IntentsArgs),
    /// Decisions the executor waits for: adopting the ledger's nonce after a drift
    /// (/admin/executor/...).
    #[command(after_help = CLIENT_AFTER_HELP)]
    Executor(ExecutorArgs),
    /// Read the audit log of admin actions: who, what, why, when (GET /admin/audit).
    #[command(after_help = CLIENT_AFTER_HELP)]
    Audit(AuditArgs),
}

impl AdminCommand {
    /// Where to reach the node and who is asking.
    pub fn connection(&self) -> &ConnectionArgs {
        match self {
            AdminCommand::Breaker(args) => &args.connection,
            AdminCommand::Disburse(args) => &args.connection,
            AdminCommand::Intents(args) => &args.connection,
            AdminCommand::Executor(args) => &args.connection,
            AdminCommand::Audit(args) => &args.connection,
        }
    }
}

/// Where the admin API is and who calls it. Accepted before or after the subcommand.
/// Precedence: flag > environment variable > default. Its `Debug` leaves the token out.
#[derive(Clone, Default, clap::Args)]
pub struct ConnectionArgs {
    /// The node's address, http(s)://host:port [env: TB_ADMIN_URL] [default: http://127.0.0.1:9615]
    #[arg(long, value_name = "URL", global = true, help_heading = "Connection")]
    pub url: Option<String>,
    /// The admin API's bearer token (required; prefer the variable: flags show in `ps`)
    /// [env: TB_ADMIN_TOKEN]
    #[arg(long, value_name = "TOKEN", global = true, help_heading = "Connection")]
    pub token: Option<String>,
    /// Who you are: recorded in the audit log as an unverified note beside the token's name
    /// [env: USER] [default: cli]
    #[arg(long, value_name = "NAME", global = true, help_heading = "Connection")]
    pub actor: Option<String>,
}

impl std::fmt::Debug for ConnectionArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionArgs")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("actor", &self.actor)
            .finish()
    }
}

/// `node breaker …`.
#[derive(Debug, clap::Args)]
pub struct BreakerArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: BreakerAction,
    /// Where and who.
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// The breaker commands.
#[derive(Debug, Subcommand)]
pub enum BreakerAction {
    /// The breaker's state, forced flag and counts (GET /admin/breaker).
    #[command(after_help = CLIENT_AFTER_HELP)]
    Status,
    /// Open the breaker and keep it open: nothing is submitted until `reset`
    /// (POST /admin/breaker/force-open).
    #[command(after_help = CLIENT_AFTER_HELP)]
    ForceOpen(ReasonArgs),
    /// Close the breaker and keep it closed: failures no longer trip it until `reset`
    /// (POST /admin/breaker/force-close).
    #[command(after_help = CLIENT_AFTER_HELP)]
    ForceClose(ReasonArgs),
    /// Return to automatic operation: closed, not forced, failure window and backoff cleared
    /// (POST /admin/breaker/reset).
    #[command(after_help = CLIENT_AFTER_HELP)]
    Reset(ReasonArgs),
}

/// Why: recorded in the audit log.
#[derive(Debug, Clone, clap::Args)]
pub struct ReasonArgs {
    /// Why you do this, for the audit log (required, not empty)
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

/// `node disburse …`.
#[derive(Debug, clap::Args)]
pub struct DisburseArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: DisburseAction,
    /// Where and who.
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// The disbursement commands.
#[derive(Debug, Subcommand)]
pub enum DisburseAction {
    /// Queue a disbursement for payment (POST /admin/disbursements).
    #[command(after_help = CLIENT_AFTER_HELP)]
    Queue(QueueArgs),
    /// List disbursements in id order, a page at a time (GET /admin/disbursements).
    #[command(after_help = CLIENT_AFTER_HELP)]
    List(ListArgs),
    /// Show one disbursement and its status (GET /admin/disbursements/{id}).
    #[command(after_help = CLIENT_AFTER_HELP)]
    Show(ShowArgs),
    /// Cancel a disbursement and those that depend on it: at once if queued; if staged or
    /// submitted, by a zero-value replacement at its nonce, cancelled only if that lands
    /// (POST /admin/disbursements/{id}/cancel).
    #[command(after_help = CLIENT_AFTER_HELP)]
    Cancel(CancelArgs),
    /// Approve disbursements awaiting approval, as your token's name: one id
    /// (POST /admin/disbursements/{id}/approve) or several at once, all or none (a
    /// proposal's payouts; POST /admin/disbursements/approve). Each needs approvals from as
    /// many distinct names as `policy.approvals_required`; whoever queued it gave the
    /// first.
    #[command(after_help = CLIENT_AFTER_HELP)]
    Approve(ApproveArgs),
    /// Mark a queued disbursement paid by a transaction the chain holds (after a restored
    /// backup forgot it); only while the executor holds on a nonce drift
    /// (POST /admin/disbursements/{id}/mark-paid).
    #[command(after_help = CLIENT_AFTER_HELP)]
    MarkPaid(MarkPaidArgs),
}

/// `node disburse mark-paid`.
#[derive(Debug, Clone, clap::Args)]
pub struct MarkPaidArgs {
    /// The disbursement's id (queued)
    #[arg(value_name = "ID")]
    pub id: u64,
    /// The transaction that paid it
    #[arg(long, value_name = "HASH")]
    pub tx_hash: String,
    /// Why (what you checked), for the audit log (required, not empty)
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

/// `node disburse queue`.
#[derive(Debug, Clone, clap::Args)]
pub struct QueueArgs {
    /// Where the money goes, in the ledger's address format
    #[arg(long, value_name = "ADDRESS")]
    pub destination: String,
    /// How much, a decimal integer in the ledger's smallest unit (e.g. wei)
    #[arg(long, value_name = "AMOUNT")]
    pub amount: String,
    /// Free text kept with the disbursement (at most 8 KiB) [default: empty]
    #[arg(long, value_name = "TEXT")]
    pub memo: Option<String>,
    /// The first epoch at which it may be paid (a timelock) [default: 0: at once]
    #[arg(long, value_name = "EPOCH")]
    pub activation_epoch: Option<u64>,
    /// A disbursement that must be executed first; repeat it or separate ids with commas
    #[arg(long, value_name = "ID", value_delimiter = ',')]
    pub depends_on: Vec<u64>,
    /// An idempotency key: queueing the same key again returns the first disbursement
    /// instead of paying twice
    #[arg(long, value_name = "KEY")]
    pub external_key: Option<String>,
    /// What it pays: `native` (the chain's coin) or a token's symbol from
    /// `[[evm.tokens]]`; the amount is in that asset's smallest unit [default: native]
    #[arg(long, value_name = "ASSET")]
    pub asset: Option<String>,
}

/// `node disburse list`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ListArgs {
    /// Only disbursements with a greater id (the last id of the previous page)
    /// [default: from the first]
    #[arg(long, value_name = "ID")]
    pub after: Option<u64>,
    /// At most this many disbursements [default: the node's page size]
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
}

/// `node disburse show`.
#[derive(Debug, Clone, clap::Args)]
pub struct ShowArgs {
    /// The disbursement's id
    #[arg(value_name = "ID")]
    pub id: u64,
}

/// `node disburse cancel`.
#[derive(Debug, Clone, clap::Args)]
pub struct CancelArgs {
    /// The disbursement's id (queued, staged or submitted)
    #[arg(value_name = "ID")]
    pub id: u64,
    /// Why you cancel it, for the audit log (required, not empty)
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

/// `node disburse approve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ApproveArgs {
    /// The disbursements' ids (awaiting approval); several are approved all or none
    #[arg(value_name = "ID", required = true, num_args = 1..)]
    pub ids: Vec<u64>,
    /// Why you approve them (what you checked), for the audit log (required, not empty)
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

/// `node intents …`.
#[derive(Debug, clap::Args)]
pub struct IntentsArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: IntentsAction,
    /// Where and who.
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// The intents commands.
#[derive(Debug, Subcommand)]
pub enum IntentsAction {
    /// Every intent in flight, lowest nonce first, with its attempts (GET /admin/intents).
    #[command(after_help = CLIENT_AFTER_HELP)]
    List,
    /// Settle a nonce the chain spent without any of its transactions, or with a token
    /// transfer that did not pay what it was signed to pay, as you found it: paid (the
    /// disbursement is Executed) or not paid (queued again for a fresh nonce, or cancelled
    /// if you asked to cancel it). Accepted only while the executor holds on this
    /// nonce; the executor applies it at its next tick if it still finds the same question
    /// (POST /admin/intents/{nonce}/resolve).
    #[command(after_help = CLIENT_AFTER_HELP)]
    Resolve(ResolveArgs),
}

/// What an operator found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Outcome {
    /// The disbursement was paid (by a transaction you found).
    Paid,
    /// It was not paid.
    NotPaid,
}

/// `node intents resolve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ResolveArgs {
    /// The nonce the executor holds on
    #[arg(value_name = "NONCE")]
    pub nonce: u64,
    /// What you found on chain
    #[arg(long, value_enum)]
    pub outcome: Outcome,
    /// For --outcome paid: the transaction that paid it
    #[arg(long, value_name = "HASH")]
    pub tx_hash: Option<String>,
    /// Why (what you checked), for the audit log (required, not empty)
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

/// `node executor …`.
#[derive(Debug, clap::Args)]
pub struct ExecutorArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: ExecutorAction,
    /// Where and who.
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// The executor commands.
#[derive(Debug, Subcommand)]
pub enum ExecutorAction {
    /// After a nonce drift, go on from the ledger's nonce (or --nonce). Accepted only while
    /// the executor holds on a drift; the executor applies it at its next tick if it still
    /// finds the same drift (POST /admin/executor/adopt-nonce).
    #[command(after_help = CLIENT_AFTER_HELP)]
    AdoptNonce(AdoptArgs),
}

/// `node executor adopt-nonce`.
#[derive(Debug, Clone, clap::Args)]
pub struct AdoptArgs {
    /// The nonce to go on from [default: the ledger's, as the executor saw it]
    #[arg(long, value_name = "NONCE")]
    pub nonce: Option<u64>,
    /// Why (what you checked), for the audit log (required, not empty)
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

/// `node audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Only records with a greater sequence number (the last seq of the previous page)
    /// [default: from the first]
    #[arg(long, value_name = "SEQ")]
    pub after: Option<u64>,
    /// At most this many records [default: the node's page size]
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Where and who.
    #[command(flatten)]
    pub connection: ConnectionArgs,
}
