//! The crash phase's killing side: the node killed with SIGKILL at random moments and
//! restarted on the same database; after each restart, no destination may hold more than
//! its amount, nor anything in the other asset.

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::compare::overpaid;
use super::disbursements::expected;
use super::log::Log;
use super::queue::{Address, set_address};
use super::rig::Rig;
use super::rng::Rng;
use super::rpc::holdings;
use super::status::backlog;
use super::token::Token;
use crate::anvil::Anvil;
use crate::failover::Node;

/// A kill comes this long after the node listens, at random (milliseconds).
pub(super) const KILL_AFTER_MS: (u64, u64) = (50, 1500);

/// Kills the node `runs` times at random moments, restarting it each time; returns the
/// last node (running). After each restart, no destination of the `sent` disbursements
/// may hold more than its amount of its asset, nor any of the other (read on anvil, the
/// token's balances on `token`): a double payment fails the drill when it happens.
pub(super) fn kill_repeatedly(
    runs: u64,
    rng: &mut Rng,
    rig: &Rig,
    (anvil, token): (&Anvil, &Token),
    address: &Address,
    sent: &AtomicU64,
    log: &Log,
) -> Result<Node, String> {
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
        let on_chain = anvil.nonce("latest").map_or("?".into(), |n| n.to_string());
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
        no_double_payment(anvil, token, sent.load(Ordering::SeqCst))
            .map_err(|e| format!("after restart {run}: {e}"))?;
    }
    if runs > 0 {
        log.event(&format!("{busy} of {runs} kills found work in the backlog"));
    }
    Ok(node)
}

/// `Err` naming every destination of the first `sent` that holds more than its amount, or
/// anything in the other asset.
fn no_double_payment(anvil: &Anvil, token: &Token, sent: u64) -> Result<(), String> {
    let expected = expected(sent);
    let overpaid = overpaid(&expected, &holdings(anvil, &token.address, &expected)?);
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
