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
use node::config::{self, NodeConfig, ProcessEnv};
use node::governance::{
    CircuitBreaker, GovStore, Ledger, TreasuryExecutor, TreasuryExecutorConfig,
};
use node::ledger::dev::DevLedger;
use node::{client, driver, http};
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
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: NodeConfig) -> anyhow::Result<()> {
    if let Some(parent) = config.db_path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let store = GovStore::open(&config.db_path)
        .with_context(|| format!("cannot open the store at {}", config.db_path.display()))?;
    let ledger = Arc::new(
        DevLedger::open(store.aux_tree("dev_ledger")?, config.dev_ledger.clone())
            .context("cannot open the dev ledger")?,
    );
    let breaker = Arc::new(CircuitBreaker::try_new(config.circuit_breaker.clone())?);
    let app = Arc::new(App::new(
        config.clone(),
        Arc::clone(&breaker),
        store.clone(),
        Arc::clone(&ledger),
        TreasuryMetrics::new(),
    ));
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
    // Restores the breaker persisted at the last shutdown (a forced-open breaker stays so).
    let executor = TreasuryExecutor::new(
        executor_config,
        store.clone(),
        Arc::clone(&ledger) as Arc<dyn Ledger>,
    )?;
    app.publish_breaker();

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    // A line for scripts and tests (the port may have been 0).
    println!("listening on {address}");
    let _ = std::io::stdout().flush();
    tracing::info!(%address, db = %config.db_path.display(), ledger = config.ledger.as_str(), "node started");

    let (stop, stopped) = watch::channel(false);
    let driver = tokio::spawn(driver::run(Arc::clone(&app), executor, stopped.clone()));
    let mut server_stopped = stopped.clone();
    let server = tokio::spawn(
        axum::serve(listener, http::router(Arc::clone(&app)))
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
    store.save_breaker_snapshot(&breaker.snapshot())?;
    store.flush()?;
    server.await.context("the HTTP server task failed")??;
    tracing::info!("stopped cleanly");
    Ok(())
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
