//! The crash phase: a thread queueing through whichever node is up, and the node killed
//! with SIGKILL at random moments and restarted; after each restart, no destination may
//! hold more than its amount.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::compare::{balances, overpaid};
use super::json::Json;
use super::{KILL_AFTER_MS, Log, QUEUE_PATIENCE, Rig, Rng, TOKEN, amount, destination, nonce};
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

/// Queues every disbursement, `spacing` apart, through whichever node is up; `sent` is
/// how many have been sent (the one in flight included).
pub(super) fn queue_all(
    address: &Address,
    abort: &AtomicBool,
    count: u64,
    spacing: Duration,
    seed: u64,
    sent: &AtomicU64,
) -> Result<Queued, String> {
    let mut queued = Queued::default();
    for i in 0..count {
        sent.store(i + 1, Ordering::SeqCst);
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
/// last node (running) and the kills made. After each restart, no destination of the
/// `sent` disbursements may hold more than its amount: a double payment fails the drill
/// when it happens.
pub(super) fn kill_repeatedly(
    runs: u64,
    rng: &mut Rng,
    rig: &Rig,
    anvil: &Anvil,
    address: &Address,
    sent: &AtomicU64,
    log: &Log,
) -> Result<(Node, u64), String> {
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
        if backlog.as_ref().is_ok_and(|b| b.total() > 0) {
            busy += 1;
        }
        log.event(&format!(
            "kill -9 #{run} at +{} ms: backlog {}; {on_chain} paid on chain",
            delay.as_millis(),
            match &backlog {
                Ok(backlog) => backlog.to_string(),
                Err(error) => format!("unknown ({error})"),
            }
        ));
        node = rig.start(run)?;
        set_address(address, Some(node.address.clone()));
        no_double_payment(anvil, sent.load(Ordering::SeqCst))
            .map_err(|e| format!("after restart {run}: {e}"))?;
    }
    if runs > 0 {
        log.event(&format!("{busy} of {runs} kills found work in the backlog"));
    }
    Ok((node, runs))
}

/// `Err` naming every destination of the first `sent` that holds more than its amount.
fn no_double_payment(anvil: &Anvil, sent: u64) -> Result<(), String> {
    let expected: Vec<(String, u128)> = (0..sent).map(|i| (destination(i), amount(i))).collect();
    let overpaid = overpaid(&expected, &balances(anvil, &expected)?);
    if overpaid.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} double payments on the chain: {}",
            overpaid.len(),
            overpaid.join("; ")
        ))
    }
}

/// `/status` → backlog (`included` only from a node that has that status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Backlog {
    ready: u64,
    staged: u64,
    submitted: u64,
    included: Option<u64>,
}

impl Backlog {
    fn total(&self) -> u64 {
        self.ready + self.staged + self.submitted + self.included.unwrap_or(0)
    }
}

impl std::fmt::Display for Backlog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ready, {} staged, {} submitted",
            self.ready, self.staged, self.submitted
        )?;
        match self.included {
            Some(included) => write!(f, ", {included} included"),
            None => Ok(()),
        }
    }
}

fn backlog(address: &str) -> Result<Backlog, String> {
    backlog_of(&Json::parse(&http::get(address, "/status")?)?)
}

fn backlog_of(status: &Json) -> Result<Backlog, String> {
    let count = |name: &str| {
        status
            .get("backlog")
            .and_then(|b| b.get(name))
            .and_then(Json::as_u64)
    };
    let field = |name: &str| count(name).ok_or_else(|| format!("no backlog.{name} in /status"));
    Ok(Backlog {
        ready: field("ready")?,
        staged: field("staged")?,
        submitted: field("submitted")?,
        included: count("included"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backlog_with_and_without_included() {
        let read = |text: &str| backlog_of(&Json::parse(text).expect("parses"));
        let today = read(r#"{"backlog":{"scheduled":0,"ready":1,"staged":2,"submitted":3}}"#)
            .expect("a backlog");
        assert_eq!(
            (today.total(), today.to_string().as_str()),
            (6, "1 ready, 2 staged, 3 submitted")
        );
        let new = read(r#"{"backlog":{"ready":0,"staged":0,"submitted":1,"included":4}}"#)
            .expect("a backlog");
        assert_eq!(new.total(), 5);
        assert!(new.to_string().ends_with(", 4 included"));
        assert!(read(r#"{"backlog":{"error":"x"}}"#).is_err());
    }
}
