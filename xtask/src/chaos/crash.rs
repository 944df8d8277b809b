//! The crash phase: a thread queueing through whichever node is up, and the node killed
//! with SIGKILL at random moments and restarted.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::json::Json;
use super::{KILL_AFTER_MS, QUEUE_PATIENCE, Rig, Rng, TOKEN, amount, destination, nonce};
use crate::anvil::Anvil;
use crate::failover::Node;
use crate::http;

/// Where the node listens now; `None` while it is down.
pub(super) type Address = Mutex<Option<String>>;

fn address_of(address: &Address) -> Option<String> {
    address
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

fn set_address(address: &Address, to: Option<String>) {
    *address
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = to;
}

/// What the queueing thread saw.
#[derive(Debug, Default)]
pub(super) struct Queued {
    /// Requests that failed (node down or killed mid-request) and were sent again.
    pub(super) retries: u64,
    /// Of those, the ones the node answered "already queued" (200): the lost answer's
    /// request had been durable.
    pub(super) already_queued: u64,
}

/// Queues every disbursement, `spacing` apart, through whichever node is up.
pub(super) fn queue_all(
    address: &Address,
    abort: &AtomicBool,
    count: u64,
    spacing: Duration,
    seed: u64,
) -> Result<Queued, String> {
    let mut queued = Queued::default();
    for i in 0..count {
        let body = format!(
            r#"{{"destination":"{}","amount":"{}","memo":"chaos {i}","external_key":"chaos-{seed}-{i}"}}"#,
            destination(i),
            amount(i)
        );
        let mut failed_since: Option<Instant> = None;
        loop {
            if abort.load(Ordering::Relaxed) {
                return Err("aborted".into());
            }
            let answer = match address_of(address) {
                Some(at) => http::request(
                    &at,
                    "POST",
                    "/admin/disbursements",
                    Some(TOKEN),
                    Some(&body),
                ),
                None => Err("the node is down".into()),
            };
            match answer {
                Ok(answer) if answer.status == 201 || answer.status == 200 => {
                    if failed_since.is_some() && answer.status == 200 {
                        queued.already_queued += 1;
                    }
                    break;
                }
                Ok(answer) => {
                    return Err(format!(
                        "queueing {}: HTTP {}: {}",
                        destination(i),
                        answer.status,
                        answer.body.trim()
                    ));
                }
                Err(error) => {
                    let since = *failed_since.get_or_insert_with(|| {
                        queued.retries += 1;
                        Instant::now()
                    });
                    if since.elapsed() > QUEUE_PATIENCE {
                        return Err(format!(
                            "queueing {}: no node answered for {QUEUE_PATIENCE:?}: {error}",
                            destination(i)
                        ));
                    }
                    thread::sleep(Duration::from_millis(20));
                }
            }
        }
        thread::sleep(spacing);
    }
    Ok(queued)
}

/// Kills the node `runs` times at random moments, restarting it each time; returns the
/// last node (running) and the kills made.
pub(super) fn kill_repeatedly(
    runs: u64,
    rng: &mut Rng,
    rig: &Rig,
    anvil: &Anvil,
    address: &Address,
) -> Result<(Node, u64), String> {
    let began = Instant::now();
    let mut node = rig.start(0)?;
    set_address(address, Some(node.address.clone()));
    let mut busy = 0;
    for run in 1..=runs {
        let started = Instant::now();
        let delay = Duration::from_millis(rng.between(KILL_AFTER_MS.0, KILL_AFTER_MS.1));
        thread::sleep(delay.saturating_sub(started.elapsed()));
        let backlog = backlog(&node.address);
        set_address(address, None);
        node.kill_9()?;
        let on_chain = nonce(anvil, "latest").map_or("?".into(), |n| n.to_string());
        if backlog.as_ref().is_ok_and(|b| b.iter().sum::<u64>() > 0) {
            busy += 1;
        }
        eprintln!(
            "==> [chaos] {:6.2}s  kill -9 #{run} at +{} ms: backlog {}; {on_chain} paid on chain",
            began.elapsed().as_secs_f64(),
            delay.as_millis(),
            match &backlog {
                Ok([ready, staged, submitted]) =>
                    format!("{ready} ready, {staged} staged, {submitted} submitted"),
                Err(error) => format!("unknown ({error})"),
            }
        );
        node = rig.start(run)?;
        set_address(address, Some(node.address.clone()));
    }
    if runs > 0 {
        eprintln!("==> [chaos] {busy} of {runs} kills found work in the backlog");
    }
    Ok((node, runs))
}

/// `/status` → backlog: ready, staged, submitted.
fn backlog(address: &str) -> Result<[u64; 3], String> {
    let status = Json::parse(&http::get(address, "/status")?)?;
    let field = |name: &str| {
        status
            .get("backlog")
            .and_then(|b| b.get(name))
            .and_then(Json::as_u64)
            .ok_or_else(|| format!("no backlog.{name} in /status"))
    };
    Ok([field("ready")?, field("staged")?, field("submitted")?])
}
