//! The crash phase's queueing side: a thread sending every disbursement (a token payout
//! with `"asset": "GRT"`) through whichever node is up, each with an external key, so that
//! a request whose answer a kill swallowed can be sent again without queueing twice.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::disbursements::{Asset, amount, asset, destination};
use super::rig::TOKEN;
use crate::http;

/// How long a queue request may keep failing (node down, restarting) before giving up.
const QUEUE_PATIENCE: Duration = Duration::from_secs(120);

/// Where the node listens now; `None` while it is down.
pub(super) type Address = Mutex<Option<String>>;

fn address_of(address: &Address) -> Option<String> {
    address
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

pub(super) fn set_address(address: &Address, to: Option<String>) {
    *address.lock().unwrap_or_else(PoisonError::into_inner) = to;
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
        // A token payout names its asset; a native one names none (the default).
        let asset = match asset(i) {
            Asset::Native => String::new(),
            token => format!(r#","asset":"{}""#, token.name()),
        };
        let body = format!(
            r#"{{"destination":"{}","amount":"{}"{asset},"memo":"chaos {i}","external_key":"chaos-{seed}-{i}"}}"#,
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
