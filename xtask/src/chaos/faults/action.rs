//! One fault to inject, with its parameters, and what injecting it did.

use std::time::Duration;

use super::kinds::Kind;

/// One fault, with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// `anvil_dropAllTransactions`.
    DropAll,
    /// The next `blocks` blocks mined at this base fee (wei).
    Spike { blocks: u64, base_fee: u128 },
    /// `anvil_reorg [depth, []]`, if [`ReorgGuard`](super::guard::ReorgGuard) allows that
    /// deep.
    Reorg { depth: u64 },
    /// The proxy in `StaleReads` this long.
    Stale { lasting: Duration },
}

impl Action {
    pub(super) fn kind(self) -> Kind {
        match self {
            Action::DropAll => Kind::Drops,
            Action::Spike { .. } => Kind::Fees,
            Action::Reorg { .. } => Kind::Reorgs,
            Action::Stale { .. } => Kind::Stale,
        }
    }
}

/// What injecting an [`Action`] did.
pub(super) enum Applied {
    Made,
    /// A reorg, shallower than asked.
    Limited,
    /// A reorg not made: it would have dropped a block already deep enough.
    Skipped,
}
