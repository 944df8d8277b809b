//! After the crash phase: wait until the store has settled every disbursement (and the
//! executor holds for no operator), then read it back page by page and compare it with
//! the chain: no double payment, no disbursement Executed without a canonical transaction
//! at depth, the treasury's nonce exactly the transactions it paid with.

use std::collections::{HashMap, HashSet};
use std::thread;
use std::time::{Duration, Instant};

use super::faults::{Injected, Mined};
use super::json::Json;
use super::rpc::{batch, head, quantity};
use super::{Log, Options, PAGE, TOKEN, amount, destination, nonce};
use crate::anvil::{self, Anvil};
use crate::http;

/// A halt this long (faults stopped, nobody to resolve it) fails the drill before the
/// settling deadline.
const HALT_PATIENCE: Duration = Duration::from_secs(60);
/// No disbursement changing for this long (the chain making blocks all along) fails the
/// drill before the settling deadline: the node is stuck, waiting longer will not help.
const STALL: Duration = Duration::from_secs(120);
/// How often settling reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// A disbursement as the store shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Record {
    pub(super) id: u64,
    pub(super) destination: String,
    pub(super) amount: u128,
    /// `queued`, `staged`, `submitted`, `included`, `executed`, `cancelled`.
    pub(super) status: String,
    pub(super) tx_hash: Option<String>,
    pub(super) block: Option<u64>,
    pub(super) reason: Option<String>,
    /// An operator's resolution, if one resolved it (never in a drill).
    pub(super) resolution: Option<String>,
}

impl Record {
    fn settled(&self) -> bool {
        self.status == "executed" || self.status == "cancelled"
    }

    fn from_json(json: &Json) -> Result<Record, String> {
        let text = |value: Option<&Json>, what: &str| {
            value
                .and_then(Json::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("a disbursement without {what}: {json}"))
        };
        let status = json.get("status");
        let field = |name: &str| status.and_then(|s| s.get(name));
        Ok(Record {
            id: json
                .get("id")
                .and_then(Json::as_u64)
                .ok_or_else(|| format!("a disbursement without an id: {json}"))?,
            destination: text(json.get("destination"), "a destination")?.to_ascii_lowercase(),
            amount: text(json.get("amount"), "an amount")?
                .parse()
                .map_err(|e| format!("an amount that is not a number ({e}): {json}"))?,
            status: text(field("status"), "a status")?,
            tx_hash: field("tx_hash")
                .and_then(Json::as_str)
                .map(str::to_ascii_lowercase),
            block: field("block").and_then(Json::as_u64),
            reason: field("reason").and_then(Json::as_str).map(str::to_owned),
            resolution: field("resolution")
                .filter(|r| **r != Json::Null)
                .map(Json::to_string),
        })
    }
}

/// Every disbursement in the store, in id order, read `PAGE` at a time.
pub(super) fn list(address: &str) -> Result<Vec<Record>, String> {
    let mut records: Vec<Record> = vec![];
    loop {
        let path = match records.last() {
            Some(last) => format!("/admin/disbursements?after={}&limit={PAGE}", last.id),
            None => format!("/admin/disbursements?limit={PAGE}"),
        };
        let answer = http::request(address, "GET", &path, Some(TOKEN), None)?;
        if answer.status != 200 {
            return Err(format!(
                "GET {path}: HTTP {}: {}",
                answer.status, answer.body
            ));
        }
        let page = Json::parse(&answer.body)?;
        let items = page
            .get("disbursements")
            .and_then(Json::as_array)
            .ok_or_else(|| format!("GET {path}: no `disbursements` array"))?;
        let before = records.len();
        for item in items {
            let record = Record::from_json(item)?;
            if records.last().is_some_and(|last| last.id >= record.id) {
                return Err(format!("GET {path}: ids out of order at {}", record.id));
            }
            records.push(record);
        }
        if records.len() - before < PAGE {
            return Ok(records);
        }
    }
}

/// What `/status` says of the executor: `executor.halted` (a string, or null: absent
/// counts as null) and `executor.hold` (an object, or null).
#[derive(Debug, Default, PartialEq, Eq)]
struct Executor {
    halted: Option<String>,
    hold: Option<String>,
}

impl Executor {
    fn from_status(status: &Json) -> Executor {
        let field = |name: &str| {
            status
                .get("executor")
                .and_then(|e| e.get(name))
                .filter(|v| **v != Json::Null)
        };
        Executor {
            halted: field("halted").map(|h| match h.as_str() {
                Some(text) => text.to_owned(),
                None => h.to_string(),
            }),
            hold: field("hold").map(Json::to_string),
        }
    }

    fn read(address: &str) -> Result<Executor, String> {
        Ok(Executor::from_status(&Json::parse(&http::get(
            address, "/status",
        )?)?))
    }
}

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

/// A receipt, as far as the comparison needs it (hashes and addresses in lower case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Receipt {
    pub(super) status: String,
    pub(super) block: u64,
    pub(super) block_hash: String,
    pub(super) from: String,
    pub(super) to: String,
}

/// The chain, read once everything settled (the miner stopped: nothing moves).
#[derive(Debug, Default)]
pub(super) struct Observed {
    pub(super) head: u64,
    /// The treasury's transaction count: mined, and with the pool.
    pub(super) latest_nonce: u64,
    pub(super) pending_nonce: u64,
    /// By destination (lower case).
    pub(super) balances: HashMap<String, u128>,
    /// By transaction hash; absent: no receipt.
    pub(super) receipts: HashMap<String, Receipt>,
    /// Block number → the canonical block's hash; absent: no such block.
    pub(super) canonical: HashMap<u64, String>,
}

/// Reads what [`judge`] needs from anvil: every expected destination's balance, every
/// executed disbursement's receipt, and the canonical hash of every block either names.
fn observe(
    anvil: &Anvil,
    expected: &[(String, u128)],
    records: &[Record],
) -> Result<Observed, String> {
    let mut chain = Observed {
        head: head(anvil)?,
        latest_nonce: nonce(anvil, "latest")?,
        pending_nonce: nonce(anvil, "pending")?,
        balances: balances(anvil, expected)?,
        ..Observed::default()
    };
    let hashes: Vec<&str> = records
        .iter()
        .filter(|r| r.status == "executed")
        .filter_map(|r| r.tx_hash.as_deref())
        .collect();
    let calls: Vec<(&str, String)> = hashes
        .iter()
        .map(|hash| ("eth_getTransactionReceipt", format!(r#"["{hash}"]"#)))
        .collect();
    for (hash, receipt) in hashes.iter().zip(batch(anvil, &calls)?) {
        if receipt == Json::Null {
            continue;
        }
        let field = |name: &str| {
            receipt
                .get(name)
                .and_then(Json::as_str)
                .map(str::to_ascii_lowercase)
                .unwrap_or_default()
        };
        let block = receipt
            .get("blockNumber")
            .and_then(quantity)
            .and_then(|b| u64::try_from(b).ok())
            .ok_or_else(|| format!("a receipt without a block number: {receipt}"))?;
        chain.receipts.insert(
            (*hash).to_owned(),
            Receipt {
                status: field("status"),
                block,
                block_hash: field("blockHash"),
                from: field("from"),
                to: field("to"),
            },
        );
    }
    let mut blocks: Vec<u64> = records
        .iter()
        .filter_map(|r| r.block)
        .chain(chain.receipts.values().map(|r| r.block))
        .collect();
    blocks.sort_unstable();
    blocks.dedup();
    let calls: Vec<(&str, String)> = blocks
        .iter()
        .map(|b| ("eth_getBlockByNumber", format!(r#"["{b:#x}",false]"#)))
        .collect();
    for (number, block) in blocks.iter().zip(batch(anvil, &calls)?) {
        if let Some(hash) = block.get("hash").and_then(Json::as_str) {
            chain.canonical.insert(*number, hash.to_ascii_lowercase());
        }
    }
    Ok(chain)
}

/// Every expected destination's balance on anvil (one batch request per 100).
pub(super) fn balances(
    anvil: &Anvil,
    expected: &[(String, u128)],
) -> Result<HashMap<String, u128>, String> {
    let calls: Vec<(&str, String)> = expected
        .iter()
        .map(|(to, _)| ("eth_getBalance", format!(r#"["{to}","latest"]"#)))
        .collect();
    let results = batch(anvil, &calls)?;
    expected
        .iter()
        .zip(results)
        .map(|((to, _), balance)| {
            quantity(&balance)
                .map(|b| (to.to_ascii_lowercase(), b))
                .ok_or_else(|| format!("the balance of {to}: {balance}"))
        })
        .collect()
}

/// `3 x the amount` or `N wei, not a multiple of the amount`.
fn holdings(balance: u128, amount: u128) -> String {
    if amount > 0 && balance.is_multiple_of(amount) {
        format!("{} x its amount", balance / amount)
    } else {
        format!("{balance} wei, not a multiple of its amount")
    }
}

/// The destinations that hold more than their amount: each one a double payment (anvil's
/// balance of a fresh address is what the treasury paid it). Checked after every restart
/// and at the end.
pub(super) fn overpaid(
    expected: &[(String, u128)],
    balances: &HashMap<String, u128>,
) -> Vec<String> {
    expected
        .iter()
        .filter_map(|(to, amount)| {
            let balance = *balances.get(&to.to_ascii_lowercase())?;
            (balance > *amount).then(|| {
                format!(
                    "{to} holds {} ({balance} wei; amount {amount})",
                    holdings(balance, *amount)
                )
            })
        })
        .collect()
}

/// The comparison's findings. Each list names what it found.
#[derive(Debug, Default)]
pub(super) struct Verdict {
    pub(super) executed: u64,
    pub(super) cancelled: u64,
    /// Destinations holding more than their amount.
    pub(super) double_payments: Vec<String>,
    /// Executed disbursements without a canonical, successful transaction in the block the
    /// store names, at least `confirmations` deep.
    pub(super) without_canonical_tx: Vec<String>,
    /// Every other disagreement between the store and the chain.
    pub(super) mismatches: Vec<String>,
    /// Executed disbursements whose transaction the chain holds as the store says
    /// (canonical, successful, in the block named, to its destination, from the treasury),
    /// deep enough or not: what the treasury's nonce must equal.
    pub(super) in_chain: u64,
    /// Of those, the ones short of the confirmations (also in `without_canonical_tx`).
    pub(super) shallow: u64,
}

impl Verdict {
    pub(super) fn clean(&self) -> bool {
        self.double_payments.is_empty()
            && self.without_canonical_tx.is_empty()
            && self.mismatches.is_empty()
    }
}

/// Compares the store with the chain. `expected`: every destination queued and its amount;
/// `confirmations`: the depth (the tip counted as 1) an executed payment must have.
pub(super) fn judge(
    expected: &[(String, u128)],
    records: &[Record],
    chain: &Observed,
    confirmations: u64,
) -> Verdict {
    let treasury = anvil::ACCOUNT_0.to_ascii_lowercase();
    let mut verdict = Verdict {
        executed: records.iter().filter(|r| r.status == "executed").count() as u64,
        cancelled: records.iter().filter(|r| r.status == "cancelled").count() as u64,
        double_payments: overpaid(expected, &chain.balances),
        ..Verdict::default()
    };
    let mut by_destination: HashMap<String, Vec<&Record>> = HashMap::new();
    for record in records {
        by_destination
            .entry(record.destination.to_ascii_lowercase())
            .or_default()
            .push(record);
    }
    let mut hashes = HashSet::new();
    for (to, amount) in expected {
        let to = to.to_ascii_lowercase();
        let found = by_destination.remove(&to).unwrap_or_default();
        let [record] = found.as_slice() else {
            verdict.mismatches.push(format!(
                "{to} is in the store {} times, expected once",
                found.len()
            ));
            continue;
        };
        let (id, status) = (record.id, record.status.as_str());
        if record.amount != *amount {
            verdict.mismatches.push(format!(
                "disbursement {id} ({to}): the store says {} wei, queued {amount}",
                record.amount
            ));
        }
        let Some(&balance) = chain.balances.get(&to) else {
            verdict
                .mismatches
                .push(format!("{to}: no balance read from the chain"));
            continue;
        };
        match status {
            "executed" => {
                if balance < *amount {
                    verdict.mismatches.push(format!(
                        "disbursement {id} ({to}) is executed but the destination holds \
                         {balance} wei of its {amount}"
                    ));
                }
                let (Some(hash), Some(block)) = (&record.tx_hash, record.block) else {
                    verdict.without_canonical_tx.push(format!(
                        "disbursement {id} ({to}): executed without a tx hash and a block"
                    ));
                    continue;
                };
                if !hashes.insert(hash.clone()) {
                    verdict
                        .mismatches
                        .push(format!("{hash} is the tx hash of two disbursements"));
                }
                match canonical_problem(chain, hash, block, confirmations) {
                    Err(problem) => verdict
                        .without_canonical_tx
                        .push(format!("disbursement {id} ({to}): {problem}")),
                    Ok(shallow) => {
                        if let Some(problem) = shallow {
                            verdict.shallow += 1;
                            verdict
                                .without_canonical_tx
                                .push(format!("disbursement {id} ({to}): {problem}"));
                        }
                        let receipt = &chain.receipts[hash];
                        if receipt.to != to {
                            verdict.mismatches.push(format!(
                                "disbursement {id}: {hash} pays {}, not {to}",
                                receipt.to
                            ));
                        } else if receipt.from != treasury {
                            verdict.mismatches.push(format!(
                                "disbursement {id}: {hash} is from {}, not the treasury",
                                receipt.from
                            ));
                        } else {
                            verdict.in_chain += 1;
                        }
                    }
                }
            }
            "cancelled" => {
                if balance != 0 && balance <= *amount {
                    verdict.mismatches.push(format!(
                        "disbursement {id} ({to}) is cancelled but the destination holds \
                         {balance} wei: paid"
                    ));
                }
            }
            other => verdict.mismatches.push(format!(
                "disbursement {id} ({to}) is still {other}, neither executed nor cancelled"
            )),
        }
    }
    let mut strays: Vec<_> = by_destination.into_iter().collect();
    strays.sort_by(|a, b| a.0.cmp(&b.0));
    for (to, found) in strays {
        verdict.mismatches.push(format!(
            "{to} is in the store {} times but was never queued",
            found.len()
        ));
    }
    if chain.latest_nonce != verdict.in_chain {
        verdict.mismatches.push(format!(
            "the treasury's nonce is {} on chain, but {} executed disbursements have their \
             transaction there ({})",
            chain.latest_nonce,
            verdict.in_chain,
            if chain.latest_nonce > verdict.in_chain {
                "the treasury sent transactions that pay no executed disbursement"
            } else {
                "a gap"
            }
        ));
    }
    if chain.pending_nonce != chain.latest_nonce {
        verdict.mismatches.push(format!(
            "{} treasury transactions still pending on anvil (nonce {} pending, {} mined)",
            chain.pending_nonce.saturating_sub(chain.latest_nonce),
            chain.pending_nonce,
            chain.latest_nonce
        ));
    }
    verdict
}

/// Whether the transaction `hash` is in the chain as the store says: a receipt with
/// status 1, in `block`, whose hash is the canonical block's at that height (else `Err`
/// says what is wrong); and at least `confirmations` deep, `head - block + 1`, the tip
/// counted (else `Ok(Some)` says how deep it is).
fn canonical_problem(
    chain: &Observed,
    hash: &str,
    block: u64,
    confirmations: u64,
) -> Result<Option<String>, String> {
    let Some(receipt) = chain.receipts.get(hash) else {
        return Err(format!("{hash} has no receipt on the chain"));
    };
    if receipt.status != "0x1" {
        return Err(format!(
            "{hash} failed on chain (status {})",
            receipt.status
        ));
    }
    if receipt.block != block {
        return Err(format!(
            "{hash} is in block {}, the store says {block}",
            receipt.block
        ));
    }
    match chain.canonical.get(&block) {
        None => {
            return Err(format!(
                "the chain has no block {block} (head {})",
                chain.head
            ));
        }
        Some(canonical) if *canonical != receipt.block_hash => {
            return Err(format!(
                "{hash}'s block {block} is {}, not canonical (the chain's block {block} is \
                 {canonical})",
                receipt.block_hash
            ));
        }
        Some(_) => {}
    }
    let depth = (chain.head + 1).saturating_sub(block);
    Ok((depth < confirmations).then(|| {
        format!(
            "{hash} in block {block} is {depth} deep (head {}), {confirmations} required",
            chain.head
        )
    }))
}

/// How the drill went, for the result and the summary line.
pub(super) struct Run<'a> {
    pub(super) options: &'a Options,
    pub(super) kills: u64,
    /// The depth an executed payment must have.
    pub(super) confirmations: u64,
    /// With `--faults`: what the fault thread and the miner did.
    pub(super) injected: Option<&'a Injected>,
    pub(super) mined: Option<&'a Mined>,
    pub(super) began: Instant,
}

/// Compares the settled store with the chain, prints the result and the summary line;
/// `Err` names the first problem.
pub(super) fn compare(run: &Run<'_>, anvil: &Anvil, records: &[Record]) -> Result<(), String> {
    let expected: Vec<(String, u128)> = (0..run.options.disbursements)
        .map(|i| (destination(i), amount(i)))
        .collect();
    let chain = observe(anvil, &expected, records)?;
    let verdict = judge(&expected, records, &chain, run.confirmations);
    // The drill itself: a fault or a block that failed means the chain did not do what the
    // result says it did.
    let mut drill_problems = vec![];
    if let Some(injected) = run.injected.filter(|i| i.failures.count > 0) {
        drill_problems.push(format!(
            "{} fault calls failed: {}",
            injected.failures.count,
            injected.failures.first.join("; ")
        ));
    }
    if let Some(mined) = run.mined.filter(|m| m.failures.count > 0) {
        drill_problems.push(format!(
            "{} mining calls failed: {}",
            mined.failures.count,
            mined.failures.first.join("; ")
        ));
    }

    eprintln!("\n==> [chaos] result");
    eprintln!("    crashes (kill -9)        {}", run.kills);
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
    eprintln!("    disbursements            {}", run.options.disbursements);
    eprintln!("    in the store             {}", records.len());
    eprintln!(
        "    executed / cancelled     {} / {}",
        verdict.executed, verdict.cancelled
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
            "agree: every destination paid its amount once, every executed tx canonical at depth"
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
            "    cancelled: {} ({}): {}",
            record.id,
            record.destination,
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
    eprintln!("\n{}", summary_line(run, records.len() as u64, &verdict));

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

/// The one line to quote: what was run, what it found, how long it took.
fn summary_line(run: &Run<'_>, in_store: u64, verdict: &Verdict) -> String {
    format!(
        "==> [chaos] summary: {} disbursements ({in_store} in the store), {} executed, {} \
         cancelled, {} double payments, {} executed without a canonical tx at depth, {} kills, \
         faults: {}, {:.1} s",
        run.options.disbursements,
        verdict.executed,
        verdict.cancelled,
        verdict.double_payments.len(),
        verdict.without_canonical_tx.len(),
        run.kills,
        run.injected.map_or("none".to_owned(), Injected::by_kind),
        run.began.elapsed().as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_from_a_page_of_the_list() {
        let page = r#"{"disbursements":[{"activation_epoch":0,"amount":"1000000000000000001",
            "depends_on":[],"destination":"0xC4a0","external_key":"k","id":3,"memo":"m",
            "queued_at_ms":1,"status":{"block":7,"status":"executed","tx_hash":"0xAB"}},
            {"amount":"5","destination":"0xc4a1","id":4,"status":{"status":"included",
            "nonce":2,"tx_hash":"0xcd","block":9,"block_hash":"0xee","confirmations":1}},
            {"amount":"6","destination":"0xc4a2","id":5,"status":{"status":"executed",
            "tx_hash":"0xef","block":10,"resolution":{"outcome":"paid","reason":"r"}}}]}"#;
        let json = Json::parse(page).expect("parses");
        let items = json
            .get("disbursements")
            .and_then(Json::as_array)
            .expect("array");
        let record = Record::from_json(&items[0]).expect("a record");
        assert_eq!(record.id, 3);
        assert_eq!(record.destination, "0xc4a0");
        assert_eq!(record.amount, 1_000_000_000_000_000_001);
        assert_eq!(record.status, "executed");
        assert_eq!(record.block, Some(7));
        assert_eq!(record.tx_hash.as_deref(), Some("0xab"));
        assert_eq!(record.resolution, None);
        let included = Record::from_json(&items[1]).expect("a record");
        assert_eq!(
            (included.status.as_str(), included.block),
            ("included", Some(9))
        );
        assert!(!included.settled());
        let resolved = Record::from_json(&items[2]).expect("a record");
        assert_eq!(
            resolved.resolution.as_deref(),
            Some(r#"{"outcome":"paid","reason":"r"}"#)
        );
    }

    #[test]
    fn halted_and_hold_read_from_status() {
        let status = |text: &str| Executor::from_status(&Json::parse(text).expect("parses"));
        assert_eq!(
            status(r#"{"executor":{"halted":null,"hold":null}}"#),
            Executor::default()
        );
        assert_eq!(status(r#"{"executor":{"ticks":3}}"#), Executor::default());
        assert_eq!(
            status(r#"{"executor":{"halted":"nonce 4 consumed","hold":{"nonce":4}}}"#),
            Executor {
                halted: Some("nonce 4 consumed".into()),
                hold: Some(r#"{"nonce":4}"#.into()),
            }
        );
    }

    const TREASURY: &str = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";

    /// Three destinations, each paid once in its own block (10, 11, 12) under a head of
    /// 20: a clean run. Tests break one thing each.
    fn clean() -> (Vec<(String, u128)>, Vec<Record>, Observed) {
        let expected: Vec<(String, u128)> = (0..3)
            .map(|i| (format!("0xd{i}"), 100 + i as u128))
            .collect();
        let mut chain = Observed {
            head: 20,
            latest_nonce: 3,
            pending_nonce: 3,
            ..Observed::default()
        };
        let records = expected
            .iter()
            .enumerate()
            .map(|(i, (to, amount))| {
                let (hash, block) = (format!("0xt{i}"), 10 + i as u64);
                chain.balances.insert(to.clone(), *amount);
                chain.canonical.insert(block, format!("0xb{block}"));
                chain.receipts.insert(
                    hash.clone(),
                    Receipt {
                        status: "0x1".into(),
                        block,
                        block_hash: format!("0xb{block}"),
                        from: TREASURY.into(),
                        to: to.clone(),
                    },
                );
                Record {
                    id: i as u64 + 1,
                    destination: to.clone(),
                    amount: *amount,
                    status: "executed".into(),
                    tx_hash: Some(hash),
                    block: Some(block),
                    reason: None,
                    resolution: None,
                }
            })
            .collect();
        (expected, records, chain)
    }

    #[test]
    fn a_clean_run_is_clean() {
        let (expected, records, chain) = clean();
        let verdict = judge(&expected, &records, &chain, 3);
        assert!(verdict.clean(), "{verdict:?}");
        assert_eq!((verdict.executed, verdict.in_chain), (3, 3));

        // A cancelled one, never paid, and the nonce that goes with it: clean too.
        let (expected, mut records, mut chain) = clean();
        records[2].status = "cancelled".into();
        records[2].tx_hash = None;
        records[2].block = None;
        chain.balances.insert("0xd2".into(), 0);
        chain.latest_nonce = 2;
        chain.pending_nonce = 2;
        let verdict = judge(&expected, &records, &chain, 3);
        assert!(verdict.clean(), "{verdict:?}");
        assert_eq!((verdict.executed, verdict.cancelled), (2, 1));
    }

    #[test]
    fn a_double_payment_is_counted_and_named() {
        let (expected, records, mut chain) = clean();
        // Paid twice: once at the store's transaction, once more at another nonce.
        chain.balances.insert("0xd1".into(), 2 * 101);
        chain.latest_nonce = 4;
        chain.pending_nonce = 4;
        let verdict = judge(&expected, &records, &chain, 3);
        assert_eq!(verdict.double_payments.len(), 1, "{verdict:?}");
        assert!(
            verdict.double_payments[0].contains("0xd1 holds 2 x its amount"),
            "{verdict:?}"
        );
        assert!(verdict.without_canonical_tx.is_empty(), "{verdict:?}");
        assert!(
            verdict.mismatches.iter().any(|m| m.contains("nonce is 4")),
            "the extra transaction shows in the nonce: {verdict:?}"
        );
        assert_eq!(overpaid(&expected, &chain.balances).len(), 1);

        // A cancelled disbursement that was paid twice is a double payment too.
        let (expected, mut records, mut chain) = clean();
        records[0].status = "cancelled".into();
        chain.balances.insert("0xd0".into(), 3 * 100);
        let verdict = judge(&expected, &records, &chain, 3);
        assert_eq!(verdict.double_payments.len(), 1, "{verdict:?}");
    }

    #[test]
    fn an_executed_disbursement_in_a_block_that_is_not_canonical() {
        let (expected, records, mut chain) = clean();
        // A reorg replaced block 11 after the receipt was read: another hash there now.
        chain.canonical.insert(11, "0xreorged".into());
        let verdict = judge(&expected, &records, &chain, 3);
        assert_eq!(verdict.without_canonical_tx.len(), 1, "{verdict:?}");
        assert!(
            verdict.without_canonical_tx[0].contains("not canonical"),
            "{verdict:?}"
        );
        assert!(verdict.double_payments.is_empty());

        // The transaction gone altogether: no receipt, the money back with the treasury.
        let (expected, records, mut chain) = clean();
        chain.receipts.remove("0xt2");
        chain.balances.insert("0xd2".into(), 0);
        chain.latest_nonce = 2;
        chain.pending_nonce = 2;
        let verdict = judge(&expected, &records, &chain, 3);
        assert_eq!(verdict.without_canonical_tx.len(), 1, "{verdict:?}");
        assert!(verdict.without_canonical_tx[0].contains("no receipt"));

        // The receipt in another block than the store says; or a failed transaction.
        let (expected, mut records, chain) = clean();
        records[0].block = Some(11);
        let verdict = judge(&expected, &records, &chain, 3);
        assert!(
            verdict.without_canonical_tx[0].contains("the store says 11"),
            "{verdict:?}"
        );
        let (expected, records, mut chain) = clean();
        chain.receipts.get_mut("0xt0").expect("a receipt").status = "0x0".into();
        let verdict = judge(&expected, &records, &chain, 3);
        assert!(
            verdict.without_canonical_tx[0].contains("failed"),
            "{verdict:?}"
        );
    }

    #[test]
    fn an_executed_disbursement_too_shallow() {
        let (expected, records, mut chain) = clean();
        // Block 12 under head 13 is 2 deep: short of 3.
        chain.head = 13;
        let verdict = judge(&expected, &records, &chain, 3);
        assert_eq!(verdict.without_canonical_tx.len(), 1, "{verdict:?}");
        assert!(
            verdict.without_canonical_tx[0].contains("is 2 deep (head 13), 3 required"),
            "{verdict:?}"
        );
        assert_eq!((verdict.shallow, verdict.in_chain), (1, 3));
        assert!(
            verdict.mismatches.is_empty(),
            "in the chain: the nonce agrees"
        );
        // At 1 confirmation (an auto-mining anvil), the tip itself is deep enough.
        chain.head = 12;
        assert!(judge(&expected, &records, &chain, 1).clean());
        assert_eq!(
            judge(&expected, &records, &chain, 3)
                .without_canonical_tx
                .len(),
            2
        );
    }

    #[test]
    fn other_disagreements_are_mismatches() {
        // Executed without a transaction; still in flight; a gap in the nonce.
        let (expected, mut records, chain) = clean();
        records[0].tx_hash = None;
        records[1].status = "included".into();
        let verdict = judge(&expected, &records, &chain, 3);
        assert_eq!(verdict.without_canonical_tx.len(), 1, "{verdict:?}");
        assert!(
            verdict
                .mismatches
                .iter()
                .any(|m| m.contains("still included"))
        );
        assert!(verdict.mismatches.iter().any(|m| m.contains("nonce is 3")));

        // Queued twice; something pending in the pool; a stranger in the store.
        let (expected, mut records, mut chain) = clean();
        let mut twice = records[0].clone();
        twice.id = 9;
        records.push(twice);
        let mut stranger = records[1].clone();
        stranger.destination = "0xee".into();
        stranger.id = 10;
        records.push(stranger);
        chain.pending_nonce = 4;
        let verdict = judge(&expected, &records, &chain, 3);
        let all = verdict.mismatches.join("\n");
        assert!(all.contains("0xd0 is in the store 2 times"), "{all}");
        assert!(
            all.contains("0xee is in the store 1 times but was never queued"),
            "{all}"
        );
        assert!(
            all.contains("1 treasury transactions still pending"),
            "{all}"
        );
    }
}
