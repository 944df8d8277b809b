//! What `node run` opens before it serves: the store (migrated from an earlier layout if
//! need be), the ledger, the breaker, the shared [`App`] and the executor.

use std::sync::Arc;

use anyhow::Context;
use serde_json::{Value, json};
use telemetry::TreasuryMetrics;

use crate::app::App;
use crate::config::NodeConfig;
use crate::governance::{CircuitBreaker, GovStore, Ledger, TreasuryExecutor};
use crate::ledger::dev::DevLedger;
use crate::ledger::evm::EvmLedger;

/// A node ready to serve and tick.
#[derive(Debug)]
pub struct Started {
    /// The state the HTTP handlers and the driver share.
    pub app: Arc<App>,
    /// The executor, for the driver.
    pub executor: TreasuryExecutor,
}

/// Opens everything `config` names; `evm` is the EVM ledger when configured (opened
/// earlier, so that its errors are configuration errors).
pub fn open(config: &NodeConfig, evm: Option<EvmLedger>) -> anyhow::Result<Started> {
    let store = open_store(config)?;
    let policy = config.policy.load()?;
    tracing::info!(%policy, "spending policy");
    let rejudged = store
        .set_policy(policy)
        .context("cannot re-judge the disbursements waiting on the spending policy")?;
    if rejudged != Default::default() {
        tracing::info!(
            released = rejudged.released,
            approved = rejudged.approved,
            "the spending policy released held disbursements or queued approved ones"
        );
    }
    let (ledger, details, evm) = open_ledger(config, &store, evm)?;
    let breaker = Arc::new(CircuitBreaker::try_new(config.circuit_breaker.clone())?);
    let mut app = App::new(
        config.clone(),
        Arc::clone(&breaker),
        store.clone(),
        Arc::clone(&ledger),
        details,
        TreasuryMetrics::new(),
    );
    if let Some(evm) = evm {
        app = app.with_evm(evm);
    }
    // The `asset` label of the submissions counter: the coin and the configured tokens.
    let mut assets = vec![crate::governance::policy::NATIVE];
    if config.ledger == crate::config::LedgerKind::Evm {
        assets.extend(config.evm.tokens.iter().map(|token| token.symbol.as_str()));
    }
    app.metrics.register_assets(&assets);
    let app = Arc::new(app);
    let weak = Arc::downgrade(&app);
    let _ = breaker.set_listener(move |transition| {
        if let Some(app) = weak.upgrade() {
            app.on_transition(transition);
        }
    });
    // Restores the breaker persisted at the last shutdown (a forced-open breaker stays so).
    #[cfg_attr(not(feature = "crash-points"), allow(unused_mut))] // mutated only with it
    let mut executor = TreasuryExecutor::new(config.executor(), breaker, store, ledger)?;
    #[cfg(feature = "crash-points")]
    if let Some(point) = crate::driver::crash_point()? {
        tracing::warn!(
            ?point,
            "TB_CRASH_AT: the executor stops at this step for a test to kill it"
        );
        executor.crash_at(Some(point));
    }
    app.publish_breaker();
    Ok(Started { app, executor })
}

/// The store at `db_path` (its directory created), with a line in the log if it was
/// migrated from an earlier layout.
fn open_store(config: &NodeConfig) -> anyhow::Result<GovStore> {
    if let Some(parent) = config.db_path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let store = GovStore::open(&config.db_path)
        .with_context(|| format!("cannot open the store at {}", config.db_path.display()))?;
    if let Some(migration) = store.migration() {
        tracing::info!(
            records = migration.records,
            trees = migration.trees,
            db = %config.db_path.display(),
            "store migrated in place from the tree-per-kind layout to one key space"
        );
    }
    Ok(store)
}

/// The ledger the executor pays on, what `/status` shows of it, and the EVM ledger (for
/// its endpoints' health) when that is the one.
#[allow(clippy::type_complexity)]
fn open_ledger(
    config: &NodeConfig,
    store: &GovStore,
    evm: Option<EvmLedger>,
) -> anyhow::Result<(Arc<dyn Ledger>, Value, Option<Arc<EvmLedger>>)> {
    let Some(evm) = evm else {
        let ledger = DevLedger::open(store.aux_tree("dev_ledger")?, config.dev_ledger.clone())
            .context("cannot open the dev ledger")?;
        return Ok((Arc::new(ledger), json!({ "kind": "dev" }), None));
    };
    if let Some(pinned) = store.chain_id()?
        && let Ok(id) = pinned.parse::<u64>()
    {
        evm.expect_chain(id);
    }
    let evm = Arc::new(evm);
    tracing::info!(endpoints = ?evm.endpoints(), treasury = %evm.address(), "EVM ledger");
    let details = json!({ "kind": "evm", "treasury": evm.address() });
    Ok((Arc::clone(&evm) as Arc<dyn Ledger>, details, Some(evm)))
}
