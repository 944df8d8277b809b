//! `drops`: `anvil_dropAllTransactions`, the mempool forgets every pending transaction.

use super::action::Applied;
use super::chain::Chain;
use crate::chaos::log::Log;

/// Empties anvil's mempool, under the chain's mutex like every chain-changing call.
pub(super) fn drop_all(chain: &Chain<'_>, log: &Log) -> Result<Applied, String> {
    let _state = chain.lock();
    chain.anvil.rpc("anvil_dropAllTransactions", "[]")?;
    log.event("fault drops: anvil_dropAllTransactions (the mempool is emptied)");
    Ok(Applied::Made)
}
