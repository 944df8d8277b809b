//! The executor loop on tokio: one tick at a time on the blocking pool (ledger calls
//! block), then a wait of the poll interval, until shutdown; with leader election, only
//! while this node leads, a new executor each term.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

use crate::app::App;
use crate::governance::store::engine::{Fence, LEADER_KEY};
use crate::governance::{
    CircuitBreaker, GovStore, Ledger, StoreError, TreasuryExecutor, TreasuryExecutorConfig,
    TreasuryExecutorError,
};
use crate::ha::Election;

/// With the `crash-points` feature (tests only): the executor reached the crash point
/// `TB_CRASH_AT` named. Say so on stdout and stop here, writing nothing more, until the
/// test kills the process (`kill -9`): a crash exactly at that step.
#[cfg(feature = "crash-points")]
fn wait_to_be_killed(
    result: &Result<crate::governance::TickReport, crate::governance::TreasuryExecutorError>,
) {
    use std::io::Write;
    if let Err(crate::governance::TreasuryExecutorError::Crashed(point)) = result {
        println!("crash point reached: {point:?}");
        let _ = std::io::stdout().flush();
        loop {
            std::thread::park();
        }
    }
}

/// Runs ticks until `shutdown` turns true. A tick in flight when it does is finished
/// first (its submission completes and is recorded). Returns the executor, or `None` if a
/// tick panicked (a bug: the node then stops submitting but keeps serving status).
pub async fn run(
    app: Arc<App>,
    mut executor: TreasuryExecutor,
    mut shutdown: watch::Receiver<bool>,
) -> Option<TreasuryExecutor> {
    let poll = executor.config().poll_interval;
    // The last failure logged: a halt or a hold fails every tick the same way, and is
    // logged once (and again when it changes), not once a second.
    let mut last_logged: Option<String> = None;
    loop {
        if *shutdown.borrow() {
            return Some(executor);
        }
        executor = tick(&app, executor, &mut last_logged).await?.0;
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Runs the executor while this node leads, until `shutdown` turns true.
///
/// Each term (a new fencing token) gets a new executor from `terms`, on the store fenced
/// by the token: the same path as a restart after a crash (the breaker restored from
/// the store, every intent in flight bound before anything is signed). A tick that finds
/// the node deposed (its gate closed, or its fenced write refused) or the store
/// unreachable drops the executor; the node stands by until it leads again. Returns the
/// executor of the term in force at shutdown, if any.
pub async fn run_elected(
    app: Arc<App>,
    election: Arc<dyn Election>,
    terms: Arc<Terms>,
    mut shutdown: watch::Receiver<bool>,
) -> Option<TreasuryExecutor> {
    let poll = terms.config.poll_interval;
    let mut last_logged: Option<String> = None;
    let mut current: Option<(u64, TreasuryExecutor)> = None;
    let mut last_role = None;
    loop {
        if *shutdown.borrow() {
            return current.map(|(_, executor)| executor);
        }
        let view = election.view();
        app.observe_election(&view);
        if last_role != Some(view.role) {
            tracing::info!(
                role = view.role.as_str(),
                term = view.term,
                leader = ?view.leader,
                error = ?view.error,
                "leader election"
            );
            last_role = Some(view.role);
        }
        let leading = view.token.filter(|&token| election.may_broadcast(token));
        match leading {
            Some(token) => {
                if current.as_ref().map(|(term, _)| *term) != Some(token) {
                    current = None;
                    let (terms, gate) = (Arc::clone(&terms), Arc::clone(&election));
                    let gate: crate::governance::BroadcastGate =
                        Arc::new(move || gate.may_broadcast(token));
                    match tokio::task::spawn_blocking(move || terms.executor(token, gate)).await {
                        Ok(Ok(executor)) => {
                            tracing::info!(token, "this node leads: its executor runs");
                            app.lead();
                            app.publish_breaker();
                            current = Some((token, executor));
                        }
                        Ok(Err(error)) => {
                            // Once per distinct error, not once a poll.
                            let message = format!("cannot start this term's executor: {error}");
                            if last_logged.as_deref() != Some(message.as_str()) {
                                tracing::error!(
                                    error = ?error.to_string(),
                                    "cannot start this term's executor; trying again each poll"
                                );
                                last_logged = Some(message);
                            }
                        }
                        Err(error) => {
                            tracing::error!(%error, "starting the executor panicked; submissions stop");
                            return None;
                        }
                    }
                }
                if let Some((token, executor)) = current.take() {
                    let (executor, stands) = tick(&app, executor, &mut last_logged).await?;
                    if stands {
                        current = Some((token, executor));
                    } else {
                        tracing::warn!(token, "this node's term is over: its executor stops");
                        app.stand_by();
                    }
                }
            }
            None => {
                if current.take().is_some() {
                    tracing::warn!("this node no longer leads: its executor stops");
                }
                app.stand_by();
                if view.role == crate::ha::RoleKind::Standby {
                    let app = Arc::clone(&app);
                    let _ = tokio::task::spawn_blocking(move || app.mirror_breaker()).await;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// One tick on the blocking pool, logged and observed. Returns the executor and whether
/// its term stands (not if the tick found the node deposed or the store unreachable), or
/// `None` if the tick panicked.
async fn tick(
    app: &Arc<App>,
    executor: TreasuryExecutor,
    last_logged: &mut Option<String>,
) -> Option<(TreasuryExecutor, bool)> {
    let started = Instant::now();
    let observer = Arc::clone(app);
    // The tick and what follows it (the backlog read for the gauges) on the blocking pool:
    // with the store on etcd, a read can wait out its timeout, and the async workers also
    // serve /healthz and /status.
    let joined = tokio::task::spawn_blocking(move || {
        let mut executor = executor;
        let result = executor.tick();
        #[cfg(feature = "crash-points")]
        wait_to_be_killed(&result);
        observer.observe_tick(
            executor.snapshot(),
            executor.last_report(),
            &result,
            started.elapsed(),
        );
        (executor, result)
    })
    .await;
    let (executor, result) = match joined {
        Ok(pair) => pair,
        Err(error) => {
            tracing::error!(%error, "executor tick panicked; submissions stop");
            return None;
        }
    };
    match &result {
        Err(error) => {
            let message = error.to_string();
            if last_logged.as_deref() != Some(message.as_str()) {
                // Debug-formatted: the message may carry a ledger's text (newlines
                // included).
                if error.halts() {
                    tracing::error!(error = ?message, "the executor is halted");
                } else {
                    tracing::warn!(error = ?message, "tick failed");
                }
                *last_logged = Some(message);
            }
        }
        Ok(_) => {
            if last_logged.take().is_some() {
                tracing::info!("the executor ticks again");
            }
        }
    }
    let stands = !matches!(
        result,
        Err(TreasuryExecutorError::NotLeader)
            | Err(TreasuryExecutorError::Storage(
                StoreError::Fenced { .. } | StoreError::Unavailable(_)
            ))
    );
    Some((executor, stands))
}

/// What each term's executor is built from.
#[derive(Debug)]
pub struct Terms {
    /// The executor's settings.
    pub config: TreasuryExecutorConfig,
    /// The node's breaker (restored from the store at each term).
    pub breaker: Arc<CircuitBreaker>,
    /// The store, unfenced (each term fences its own clone).
    pub store: GovStore,
    /// The ledger.
    pub ledger: Arc<dyn Ledger>,
    /// The EVM ledger, told the chain the store pays on at each term.
    pub evm: Option<Arc<crate::ledger::evm::EvmLedger>>,
}

impl Terms {
    /// The executor of the term with fencing token `token`.
    pub fn executor(
        &self,
        token: u64,
        gate: crate::governance::BroadcastGate,
    ) -> Result<TreasuryExecutor, StoreError> {
        let store = self.store.clone().fenced(Fence {
            key: LEADER_KEY.to_vec(),
            token,
        });
        if store.import_pending()? {
            return Err(StoreError::Database(
                "an import into this store did not finish (`node store import --force` \
                 starts it again): no executor runs on a partial copy"
                    .into(),
            ));
        }
        if let Some(evm) = &self.evm
            && let Some(pinned) = store.chain_id()?
            && let Ok(id) = pinned.parse::<u64>()
        {
            evm.expect_chain(id);
        }
        // Re-judges what waits on the policy in force now (SIGHUP may have changed it
        // since the node started; the policy is shared by every clone of the store).
        store.set_policy((*store.policy()).clone())?;
        Ok(TreasuryExecutor::new(
            self.config.clone(),
            Arc::clone(&self.breaker),
            store,
            Arc::clone(&self.ledger),
        )?
        .with_gate(gate))
    }
}

/// `TB_CRASH_AT` (`after-stage`, `after-submit`, `after-record`), with the `crash-points`
/// feature only: for crash tests.
#[cfg(feature = "crash-points")]
pub fn crash_point() -> anyhow::Result<Option<crate::governance::CrashPoint>> {
    use crate::governance::CrashPoint;
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
