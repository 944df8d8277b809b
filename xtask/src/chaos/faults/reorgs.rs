//! `reorgs`: `anvil_reorg [depth, []]`, depth 1 or 2: the last blocks replaced by empty
//! ones, their transactions gone (anvil does not put them back in its pool). Never a
//! block that has already been [`CONFIRMATIONS`] deep ([`ReorgGuard`]).
//!
//! [`ReorgGuard`]: super::guard::ReorgGuard

use super::CONFIRMATIONS;
use super::action::{Action, Applied};
use super::chain::Chain;
use crate::chaos::log::Log;
use crate::chaos::rng::Rng;

/// A reorg's depth, asked for; [`ReorgGuard`](super::guard::ReorgGuard) may make it
/// shallower.
const REORG_DEPTH: (u64, u64) = (1, 2);

/// A reorg's depth, at random.
pub(super) fn draw(rng: &mut Rng) -> Action {
    Action::Reorg {
        depth: rng.between(REORG_DEPTH.0, REORG_DEPTH.1),
    }
}

/// Reorgs the last `depth` blocks, or fewer (or none) if the guard says so; decided on
/// the head it is applied to, under the chain's mutex.
pub(super) fn reorg(chain: &Chain<'_>, depth: u64, log: &Log) -> Result<Applied, String> {
    let mut state = chain.lock();
    let head = chain.anvil.head()?;
    let allowed = state.guard.allowed(head, depth);
    if allowed == 0 {
        log.event(&format!(
            "fault reorgs: depth {depth} at head {head} NOT made: it would drop block \
             {}, which has been {CONFIRMATIONS} deep",
            state.guard.protected()
        ));
        return Ok(Applied::Skipped);
    }
    chain
        .anvil
        .rpc("anvil_reorg", &format!("[{allowed}, []]"))?;
    log.event(&format!(
        "fault reorgs: anvil_reorg depth {allowed}{} at head {head}: blocks {}..={head} \
         replaced by empty ones",
        if allowed < depth {
            format!(" (asked {depth})")
        } else {
            String::new()
        },
        head + 1 - allowed
    ));
    Ok(if allowed < depth {
        Applied::Limited
    } else {
        Applied::Made
    })
}
