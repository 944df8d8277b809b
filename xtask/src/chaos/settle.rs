//! After the crash phase: waiting until the store has settled every disbursement and the
//! executor holds for no operator, or failing early when it cannot.

use std::thread;
use std::time::{Duration, Instant};

use super::log::Log;
use super::status::Executor;
use super::store::{Record, list};

/// How long the node may take to settle everything after the last restart.
pub(super) const SETTLE: Duration = Duration::from_secs(180);
/// The same under faults: fee bumps, confirmations and rebroadcasts take blocks.
pub(super) const SETTLE_UNDER_FAULTS: Duration = Duration::from_secs(300);
/// A halt this long (faults stopped, nobody to resolve it) fails the drill before the
/// settling deadline.
const HALT_PATIENCE: Duration = Duration::from_secs(60);
/// No disbursement changing for this long (the chain making blocks all along) fails the
/// drill before the settling deadline: the node is stuck, waiting longer will not help.
const STALL: Duration = Duration::from_secs(120);
/// How often settling reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// `executed 180, included 12, submitted 8`: the records counted by status.
fn by_status(records: &[Record]) -> String {
    let mut counts: Vec<(&str, usize)> = vec![];
    for r in records {
        match counts.iter_mut().find(|(s, _)| *s == r.status) {
            Some((_, n)) => *n += 1,
            None => counts.push((&r.status, 1)),
        }
    }
    let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
    if counts.is_empty() {
        "nothing".into()
    } else {
        counts.join(", ")
    }
}

/// Waits (at most `limit`) until the store holds every one of the `expected` disbursements,
/// each executed or cancelled, and `/status` says the executor is not halted. A halt that
/// lasts [`HALT_PATIENCE`] (or is still there at the deadline) fails with its text: the
/// node holds for an operator, and nobody will come. A store that does not change for
/// [`STALL`] fails too.
pub(super) fn settle(
    address: &str,
    expected: u64,
    limit: Duration,
    log: &Log,
) -> Result<Vec<Record>, String> {
    let began = Instant::now();
    let mut halted_since: Option<Instant> = None;
    let mut reported = Instant::now();
    // What the store said last, and since when.
    let mut last: (Vec<Record>, Instant) = (vec![], Instant::now());
    loop {
        let records = list(address)?;
        let executor = Executor::read(address)?;
        let settled = records.len() as u64 >= expected && records.iter().all(Record::settled);
        if records != last.0 {
            last = (records.clone(), Instant::now());
        }
        match &executor.halted {
            None if settled => return Ok(records),
            None => halted_since = None,
            Some(text) => {
                let since = *halted_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= HALT_PATIENCE || began.elapsed() > limit {
                    return Err(format!(
                        "the executor holds for an operator (halted for {:.0} s, the faults \
                         stopped): {text}{}; the store: {}",
                        since.elapsed().as_secs_f64(),
                        executor
                            .hold
                            .as_ref()
                            .map_or(String::new(), |hold| format!("; hold {hold}")),
                        by_status(&records)
                    ));
                }
            }
        }
        if began.elapsed() > limit || last.1.elapsed() > STALL {
            return Err(format!(
                "not settled {} after the last restart: {} in the store of {expected} \
                 queued: {}",
                if began.elapsed() > limit {
                    format!("within {limit:?}")
                } else {
                    format!(
                        "(stuck: no disbursement changed for {:.0} s, {:.0} s)",
                        last.1.elapsed().as_secs_f64(),
                        began.elapsed().as_secs_f64()
                    )
                },
                records.len(),
                by_status(&records)
            ));
        }
        if reported.elapsed() >= PROGRESS_EVERY {
            reported = Instant::now();
            log.event(&format!(
                "settling: {}{}",
                by_status(&records),
                executor
                    .halted
                    .as_ref()
                    .map_or(String::new(), |h| format!("; HALTED: {h}"))
            ));
        }
        thread::sleep(Duration::from_millis(250));
    }
}
