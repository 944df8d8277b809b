//! The executor loop on tokio: one tick at a time on the blocking pool (ledger calls
//! block), then a wait of the poll interval, until shutdown.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

use crate::app::App;
use crate::governance::TreasuryExecutor;

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
        let started = Instant::now();
        let joined = tokio::task::spawn_blocking(move || {
            let result = executor.tick();
            #[cfg(feature = "crash-points")]
            wait_to_be_killed(&result);
            (executor, result)
        })
        .await;
        let (returned, result) = match joined {
            Ok(pair) => pair,
            Err(error) => {
                tracing::error!(%error, "executor tick panicked; submissions stop");
                return None;
            }
        };
        executor = returned;
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
                    last_logged = Some(message);
                }
            }
            Ok(_) => {
                if last_logged.take().is_some() {
                    tracing::info!("the executor ticks again");
                }
            }
        }
        app.observe_tick(
            executor.snapshot(),
            executor.last_report(),
            &result,
            started.elapsed(),
        );
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => {}
        }
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
