//! The store compared with the chain, once everything settled: no double payment (nor a
//! payment in the wrong asset), no disbursement Executed without a canonical transaction
//! at depth that pays it (a value transfer to its destination, or the token's
//! `transfer(destination, amount)` with its `Transfer` log), the treasury's nonce exactly
//! the transactions it paid with.
//!
//! [`observe`] reads the chain (the miner stopped: nothing moves), [`verdict`] judges each
//! disbursement against it with the per-payment [`checks`], and [`report`] prints the
//! result table and the summary line and names the first problem.

mod checks;
mod observe;
mod report;
#[cfg(test)]
mod tests;
mod verdict;

use std::time::Instant;

use super::disbursements::expected;
use super::faults::{Injected, Mined};
use super::options::Options;
use super::store::Record;
use super::token::Token;
use crate::anvil::Anvil;

pub(super) use self::checks::overpaid;

/// How the drill went, for the result and the summary line.
pub(super) struct Run<'a> {
    /// The command line: a compared run made all `options.runs` kills.
    pub(super) options: &'a Options,
    /// The depth an executed payment must have.
    pub(super) confirmations: u64,
    /// With `--faults`: what the fault thread and the miner did.
    pub(super) injected: Option<&'a Injected>,
    pub(super) mined: Option<&'a Mined>,
    pub(super) began: Instant,
}

/// Compares the settled store with the chain, prints the result and the summary line;
/// `Err` names the first problem.
pub(super) fn compare(
    run: &Run<'_>,
    anvil: &Anvil,
    token: &Token,
    records: &[Record],
) -> Result<(), String> {
    let expected = expected(run.options.disbursements);
    let chain = observe::observe(anvil, &token.address, &expected, records)?;
    let verdict = verdict::judge(&expected, records, &chain, run.confirmations);
    report::report(run, records, &chain, &verdict)
}
