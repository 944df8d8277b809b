//! The comparison's output: the result table and the summary line, on stderr, and the
//! error naming the first problem.

use super::Run;
use super::observe::Observed;
use super::verdict::Verdict;
use crate::chaos::disbursements::by_asset;
use crate::chaos::faults::Injected;
use crate::chaos::store::Record;
use crate::chaos::token::SYMBOL;

/// Prints the result table and the summary line; `Err` names the first problem (the
/// verdict's, or the drill's own: a fault or a block that failed).
pub(super) fn report(
    run: &Run<'_>,
    records: &[Record],
    chain: &Observed,
    verdict: &Verdict,
) -> Result<(), String> {
    let drill_problems = drill_problems(run);
    eprintln!("\n==> [chaos] result");
    eprintln!("    crashes (kill -9)        {}", run.options.runs);
    eprintln!("    faults                   {}", run.options.faults);
    if let Some(injected) = run.injected {
        eprintln!(
            "    faults made              {}{}",
            injected.by_kind(),
            if injected.reorgs_limited > 0 {
                format!(
                    " ({} reorgs made shallower or skipped: blocks {} deep stay)",
                    injected.reorgs_limited, run.confirmations
                )
            } else {
                String::new()
            }
        );
    }
    if let Some(mined) = run.mined {
        eprintln!(
            "    blocks mined             {} ({} at a spiked base fee); head {}",
            mined.blocks, mined.spiked, chain.head
        );
    }
    let (native, tokens) = by_asset(run.options.disbursements);
    eprintln!(
        "    disbursements            {} ({native} native, {tokens} {SYMBOL} at {})",
        run.options.disbursements, chain.token
    );
    eprintln!("    in the store             {}", records.len());
    eprintln!(
        "    executed / cancelled     {} ({} native, {} {SYMBOL}) / {}",
        verdict.executed, verdict.executed_native, verdict.executed_token, verdict.cancelled
    );
    eprintln!(
        "    treasury nonce on chain  {} (pending {}); {} executed with their tx in the chain, \
         {} of them short of {} confirmations",
        chain.latest_nonce,
        chain.pending_nonce,
        verdict.in_chain,
        verdict.shallow,
        run.confirmations
    );
    eprintln!(
        "    store vs chain           {}",
        if verdict.clean() {
            "agree: every destination paid its amount once in its asset (nothing in the other), \
             every executed tx canonical at depth and paying what was queued"
                .to_owned()
        } else {
            format!(
                "{} double payments, {} executed without a canonical tx at depth, {} other \
                 mismatches",
                verdict.double_payments.len(),
                verdict.without_canonical_tx.len(),
                verdict.mismatches.len()
            )
        }
    );
    for record in records.iter().filter(|r| r.status == "cancelled") {
        eprintln!(
            "    cancelled: {} ({}, {}): {}",
            record.id,
            record.destination,
            record.asset,
            record.reason.as_deref().unwrap_or("no reason")
        );
    }
    for record in records.iter().filter(|r| r.resolution.is_some()) {
        eprintln!(
            "    resolved by an operator: {} ({}): {}",
            record.id,
            record.destination,
            record.resolution.as_deref().unwrap_or_default()
        );
    }
    for problem in &verdict.double_payments {
        eprintln!("    DOUBLE PAYMENT: {problem}");
    }
    for problem in &verdict.without_canonical_tx {
        eprintln!("    EXECUTED WITHOUT A CANONICAL TX AT DEPTH: {problem}");
    }
    for problem in verdict.mismatches.iter().chain(&drill_problems) {
        eprintln!("    MISMATCH: {problem}");
    }
    eprintln!("\n{}", summary_line(run, records.len() as u64, verdict));

    let first = verdict
        .double_payments
        .iter()
        .map(|p| format!("a double payment: {p}"))
        .chain(
            verdict
                .without_canonical_tx
                .iter()
                .map(|p| format!("executed without a canonical tx at depth: {p}")),
        )
        .chain(verdict.mismatches.iter().cloned())
        .chain(drill_problems.iter().cloned())
        .next();
    match first {
        None => Ok(()),
        Some(first) => Err(format!(
            "{} double payments, {} executed without a canonical tx at depth, {} other \
             problems; the first: {first}",
            verdict.double_payments.len(),
            verdict.without_canonical_tx.len(),
            verdict.mismatches.len() + drill_problems.len()
        )),
    }
}

/// The drill's own problems: a fault or a block that failed means the chain did not do
/// what the result says it did.
fn drill_problems(run: &Run<'_>) -> Vec<String> {
    let mut problems = vec![];
    if let Some(injected) = run.injected.filter(|i| i.failures.count > 0) {
        problems.push(format!(
            "{} fault calls failed: {}",
            injected.failures.count,
            injected.failures.first.join("; ")
        ));
    }
    if let Some(mined) = run.mined.filter(|m| m.failures.count > 0) {
        problems.push(format!(
            "{} mining calls failed: {}",
            mined.failures.count,
            mined.failures.first.join("; ")
        ));
    }
    problems
}

/// The one line to quote: what was run, what it found, how long it took.
fn summary_line(run: &Run<'_>, in_store: u64, verdict: &Verdict) -> String {
    let (native, tokens) = by_asset(run.options.disbursements);
    format!(
        "==> [chaos] summary: {} disbursements ({native} native, {tokens} {SYMBOL}; {in_store} \
         in the store), {} executed ({} native, {} {SYMBOL}), {} cancelled, {} double \
         payments, {} executed without a canonical tx at depth, {} kills, faults: {}, {:.1} s",
        run.options.disbursements,
        verdict.executed,
        verdict.executed_native,
        verdict.executed_token,
        verdict.cancelled,
        verdict.double_payments.len(),
        verdict.without_canonical_tx.len(),
        run.options.runs,
        run.injected.map_or("none".to_owned(), Injected::by_kind),
        run.began.elapsed().as_secs_f64()
    )
}
