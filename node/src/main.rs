//! The `node` binary: tracing → configuration (a bad value names its key, exit 2) →
//! runtime → executor loop and HTTP server → wait for SIGINT/SIGTERM → finish the tick in
//! flight, persist the breaker, flush the store, exit 0.

use std::future::IntoFuture;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use node::app::App;
use node::cli::{Cli, Command, RunArgs};
use node::config::{self, ConfigError, LedgerKind, NodeConfig, ProcessEnv};
use node::governance::{
    CircuitBreaker, GovStore, Ledger, TreasuryExecutor, TreasuryExecutorConfig,
};
use node::ledger::dev::DevLedger;
use node::ledger::evm::{EvmLedger, EvmLedgerError};
use node::{client, driver, http};
use serde_json::json;
use telemetry::TreasuryMetrics;
use tokio::sync::watch;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let args = match Cli::parse().command {
        Some(Command::Run(args)) => args,
        None => RunArgs::default(),
        Some(Command::Admin(command)) => return client::main(&command, &ProcessEnv),
    };
    let config = match config::load(&args.overrides(), &ProcessEnv) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    // The EVM ledger reads its key file and parses its URL now: a bad one is a
    // configuration error (exit 2), not a failure at run time.
    let evm = match open_evm(&config) {
        Ok(evm) => evm,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config, evm)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: NodeConfig, evm: Option<EvmLedger>) -> anyhow::Result<()> {
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
    if let Some(evm) = &evm
        && let Some(pinned) = store.chain_id()?
        && let Ok(id) = pinned.parse::<u64>()
    {
        evm.expect_chain(id);
    }
    let evm = evm.map(Arc::new);
    let (ledger, ledger_details): (Arc<dyn Ledger>, _) = match &evm {
        Some(ledger) => {
            let endpoints = ledger.endpoints();
            let details = json!({
                "kind": "evm",
                "treasury": ledger.address(),
            });
            tracing::info!(endpoints = ?endpoints, treasury = %ledger.address(), "EVM ledger");
            (Arc::clone(ledger) as Arc<dyn Ledger>, details)
        }
        None => {
            let ledger = DevLedger::open(store.aux_tree("dev_ledger")?, config.dev_ledger.clone())
                .context("cannot open the dev ledger")?;
            (Arc::new(ledger), json!({ "kind": "dev" }))
        }
    };
    let breaker = Arc::new(CircuitBreaker::try_new(config.circuit_breaker.clone())?);
    let mut app = App::new(
        config.clone(),
        Arc::clone(&breaker),
        store.clone(),
        Arc::clone(&ledger),
        ledger_details,
        TreasuryMetrics::new(),
    );
    if let Some(evm) = evm {
        app = app.with_evm(evm);
    }
    let app = Arc::new(app);
    let weak = Arc::downgrade(&app);
    let _ = breaker.set_listener(move |transition| {
        if let Some(app) = weak.upgrade() {
            app.on_transition(transition);
        }
    });

    let mut executor_config =
        TreasuryExecutorConfig::new(config.identity.clone(), Arc::clone(&breaker));
    executor_config.poll_interval = config.poll_interval;
    executor_config.batch_size = config.batch_size;
    if config.ledger == LedgerKind::Evm {
        // The dev ledger is final at once and has no fee market: the defaults (1
        // confirmation) fit it.
        executor_config.finality = config.evm.finality();
        executor_config.bump_after_blocks = config.evm.bump_after_blocks;
        executor_config.bump_percent = config.evm.bump_percent;
    }
    // Restores the breaker persisted at the last shutdown (a forced-open breaker stays so).
    #[cfg_attr(not(feature = "crash-points"), allow(unused_mut))] // mutated only with it
    let mut executor = TreasuryExecutor::new(executor_config, store.clone(), ledger)?;
    #[cfg(feature = "crash-points")]
    if let Some(point) = crash_point()? {
        tracing::warn!(
            ?point,
            "TB_CRASH_AT: the executor stops at this step for a test to kill it"
        );
        executor.crash_at(Some(point));
    }
    app.publish_breaker();

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    // A line for scripts and tests (the port may have been 0).
    println!("listening on {address}");
    let _ = std::io::stdout().flush();
    tracing::info!(%address, db = %config.db_path.display(), ledger = config.ledger.as_str(), "node started");
    if !config.admin_tokens.is_empty() && !address.ip().is_loopback() {
        tracing::warn!(
            %address,
            "the admin API listens on a non-loopback address over plain HTTP: its bearer \
             tokens cross the network in clear; bind to 127.0.0.1 or put a TLS proxy in front"
        );
    }

    let (stop, stopped) = watch::channel(false);
    let driver = tokio::spawn(driver::run(Arc::clone(&app), executor, stopped.clone()));
    let mut server_stopped = stopped.clone();
    let server = tokio::spawn(
        axum::serve(
            listener,
            http::router(Arc::clone(&app))
                .into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = server_stopped.wait_for(|stop| *stop).await;
        })
        .into_future(),
    );

    wait_for_signal().await?;
    tracing::info!("shutting down: finishing the tick in flight");
    let _ = stop.send(true);
    if driver.await.context("the executor task failed")?.is_none() {
        tracing::error!("the executor had stopped after a panic");
    }
    store.save_breaker(&breaker)?;
    store.flush()?;
    server.await.context("the HTTP server task failed")??;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// The EVM ledger, if configured. Its errors name the configuration key at fault.
fn open_evm(config: &NodeConfig) -> Result<Option<EvmLedger>, ConfigError> {
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

/// `TB_CRASH_AT` (`after-stage`, `after-submit`, `after-record`), with the `crash-points`
/// feature only: for crash tests.
#[cfg(feature = "crash-points")]
fn crash_point() -> anyhow::Result<Option<node::governance::CrashPoint>> {
    use node::governance::CrashPoint;
    Ok(match std::env::var("TB_CRASH_AT").ok().as_deref() {
        None | Some("") => None,
        Some("after-stage") => Some(CrashPoint::AfterStage),
        Some("after-submit") => Some(CrashPoint::AfterSubmit),
        Some("after-record") => Some(CrashPoint::AfterRecord),
        Some(other) => anyhow::bail!(
            "TB_CRASH_AT: expected after-stage, after-submit or after-record, got {other:?}"
        ),
    })
}

/// SIGINT or SIGTERM.
async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result?,
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}
