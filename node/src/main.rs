//! The `node` binary: tracing → configuration (a bad value names its key, exit 2) →
//! runtime → executor loop and HTTP server → wait for SIGINT/SIGTERM (SIGHUP re-reads the
//! policy's allow-list) → finish the tick in flight, persist the breaker, flush the
//! store, exit 0. Only wiring: what it opens is in
//! `start.rs`, the loop in `driver.rs`, the routes in `http.rs`.

use std::future::IntoFuture;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use node::cli::{Cli, Command, RunArgs};
use node::config::{self, NodeConfig, ProcessEnv};
use node::ledger::evm::{self, EvmLedger};
use node::{client, driver, http, start};
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
        Some(Command::Store(store)) => {
            return match config::load(&store.config.overrides(), &ProcessEnv) {
                Ok(config) => node::store_cli::main(&store.action, &config),
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::from(2)
                }
            };
        }
    };
    // The EVM ledger reads its key file and parses its URLs now: a bad one is a
    // configuration error (exit 2), not a failure at run time.
    let opened = config::load(&args.overrides(), &ProcessEnv)
        .and_then(|config| evm::open(&config).map(|evm| (config, evm)));
    let (config, evm) = match opened {
        Ok(opened) => opened,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
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
    // Listened for before the node says it listens: a SIGTERM right after that line must
    // stop it cleanly, not kill it.
    let signals = Signals::new()?;
    // Bound first: with leader election, the address this node serves on is part of how
    // it describes itself in the leader key (the configured port may be 0).
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    let mut config = config;
    config.listen = address;
    let start::Started { app, run } = start::open(&config, evm)?;
    // A line for scripts and tests (the port may have been 0).
    println!("listening on {address}");
    let _ = std::io::stdout().flush();
    tracing::info!(%address, store = app.store.engine(), db = %config.db_path.display(), ledger = config.ledger.as_str(), "node started");
    if !config.admin_tokens.is_empty() && !address.ip().is_loopback() {
        tracing::warn!(
            %address,
            "the admin API listens on a non-loopback address over plain HTTP: its bearer \
             tokens cross the network in clear; bind to 127.0.0.1 or put a TLS proxy in front"
        );
    }

    let (stop, stopped) = watch::channel(false);
    let election = match &run {
        start::Run::Elected { election, .. } => Some(Arc::clone(election)),
        start::Run::Single(_) => None,
    };
    let driver = match run {
        start::Run::Single(executor) => {
            tokio::spawn(driver::run(Arc::clone(&app), *executor, stopped.clone()))
        }
        start::Run::Elected { election, terms } => tokio::spawn(driver::run_elected(
            Arc::clone(&app),
            election,
            terms,
            stopped.clone(),
        )),
    };
    let mut server_stopped = stopped.clone();
    let routes = http::router(Arc::clone(&app)).into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(
        axum::serve(listener, routes)
            .with_graceful_shutdown(async move {
                let _ = server_stopped.wait_for(|stop| *stop).await;
            })
            .into_future(),
    );

    signals.wait(|| app.reload_policy()).await?;
    tracing::info!("shutting down: finishing the tick in flight");
    let _ = stop.send(true);
    let executor = driver.await.context("the executor task failed")?;
    match (&executor, &election) {
        // The leader saves under its fence (refused if it was deposed meanwhile); a
        // standby's breaker is not the one in force. Either way the lease is given up.
        (Some(executor), Some(_)) => {
            if let Err(error) = executor.store().save_breaker(&app.breaker) {
                tracing::warn!(%error, "the breaker was not saved at shutdown");
            }
        }
        (_, Some(_)) => {}
        (None, None) => {
            tracing::error!("the executor had stopped after a panic");
            app.store.save_breaker(&app.breaker)?;
        }
        (Some(_), None) => app.store.save_breaker(&app.breaker)?,
    }
    if let Some(election) = &election {
        // The next leader need not wait for the lease to expire.
        election.resign();
    }
    app.store.flush()?;
    server.await.context("the HTTP server task failed")??;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// SIGINT or SIGTERM (stop), and SIGHUP (re-read the policy's allow-list), listened for
/// from creation.
struct Signals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        #[cfg(unix)]
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            #[cfg(unix)]
            terminate: signal(SignalKind::terminate())?,
            #[cfg(unix)]
            interrupt: signal(SignalKind::interrupt())?,
            #[cfg(unix)]
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// Returns at SIGINT or SIGTERM, calling `on_hangup` at each SIGHUP meanwhile.
    async fn wait(mut self, on_hangup: impl Fn()) -> anyhow::Result<()> {
        #[cfg(unix)]
        loop {
            tokio::select! {
                _ = self.interrupt.recv() => break,
                _ = self.terminate.recv() => break,
                _ = self.hangup.recv() => on_hangup(),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = on_hangup;
            tokio::signal::ctrl_c().await?;
        }
        Ok(())
    }
}
