//! After the crash phase: wait until the store has settled every disbursement, then read
//! it back page by page and compare it with the chain.

use std::collections::{HashMap, HashSet};
use std::thread;
use std::time::{Duration, Instant};

use super::json::Json;
use super::{Options, PAGE, SETTLE, TOKEN, amount, destination, nonce};
use crate::anvil::{self, Anvil};
use crate::failover::Node;
use crate::http;

/// A disbursement as the store shows it.
#[derive(Debug)]
struct Record {
    id: u64,
    destination: String,
    amount: u128,
    /// `queued`, `staged`, `submitted`, `executed`, `cancelled`.
    status: String,
    tx_hash: Option<String>,
    block: Option<u64>,
    reason: Option<String>,
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
                .ok_or_else(|| format!("a disbursement without {what}: {json:?}"))
        };
        let status = json.get("status");
        Ok(Record {
            id: json
                .get("id")
                .and_then(Json::as_u64)
                .ok_or_else(|| format!("a disbursement without an id: {json:?}"))?,
            destination: text(json.get("destination"), "a destination")?.to_ascii_lowercase(),
            amount: text(json.get("amount"), "an amount")?
                .parse()
                .map_err(|e| format!("an amount that is not a number ({e}): {json:?}"))?,
            status: text(status.and_then(|s| s.get("status")), "a status")?,
            tx_hash: status
                .and_then(|s| s.get("tx_hash"))
                .and_then(Json::as_str)
                .map(str::to_owned),
            block: status.and_then(|s| s.get("block")).and_then(Json::as_u64),
            reason: status
                .and_then(|s| s.get("reason"))
                .and_then(Json::as_str)
                .map(str::to_owned),
        })
    }
}

/// Every disbursement in the store, in id order, read `PAGE` at a time.
fn list(address: &str) -> Result<Vec<Record>, String> {
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

pub(super) fn settle_and_compare(
    options: &Options,
    anvil: &Anvil,
    node: &Node,
    began: Instant,
    crashes: u64,
) -> Result<(), String> {
    let deadline = Instant::now() + SETTLE;
    let records = loop {
        let records = list(&node.address)?;
        let settled = records.iter().filter(|r| r.settled()).count() as u64;
        if records.len() as u64 >= options.disbursements && settled == records.len() as u64 {
            break records;
        }
        if Instant::now() > deadline {
            let mut counts: Vec<(String, usize)> = vec![];
            for r in &records {
                match counts.iter_mut().find(|(s, _)| *s == r.status) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((r.status.clone(), 1)),
                }
            }
            return Err(format!(
                "not settled within {SETTLE:?} after the last restart: {} in the store of {} \
                 queued, by status {counts:?}",
                records.len(),
                options.disbursements
            ));
        }
        thread::sleep(Duration::from_millis(250));
    };
    let executed = records.iter().filter(|r| r.status == "executed").count() as u64;
    let cancelled = records.iter().filter(|r| r.status == "cancelled").count() as u64;
    eprintln!(
        "==> [chaos] {:6.2}s  settled: {executed} executed, {cancelled} cancelled",
        began.elapsed().as_secs_f64()
    );

    let mut problems = compare(options, anvil, &records)?;
    let latest = nonce(anvil, "latest")?;
    let pending = nonce(anvil, "pending")?;
    if latest != executed {
        problems.push(format!(
            "the treasury's nonce is {latest} on chain, but {executed} disbursements are executed"
        ));
    }
    if pending != latest {
        problems.push(format!(
            "{} treasury transactions still pending on anvil (nonce {pending} pending, {latest} mined)",
            pending.saturating_sub(latest)
        ));
    }
    eprintln!("\n==> [chaos] result");
    eprintln!("    crashes (kill -9)        {crashes}");
    eprintln!("    disbursements            {}", options.disbursements);
    eprintln!("    in the store             {}", records.len());
    eprintln!("    executed / cancelled     {executed} / {cancelled}");
    eprintln!("    treasury nonce on chain  {latest} (pending {pending})");
    eprintln!(
        "    store vs chain           {}",
        if problems.is_empty() {
            "agree: every destination paid its amount once, every tx hash has its receipt"
                .to_owned()
        } else {
            format!("{} mismatches", problems.len())
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
    if problems.is_empty() {
        Ok(())
    } else {
        for problem in &problems {
            eprintln!("    MISMATCH: {problem}");
        }
        Err(format!(
            "{} mismatches between the store and the chain; the first: {}",
            problems.len(),
            problems[0]
        ))
    }
}

/// Each queued destination once, with its amount, executed, paid exactly that on chain,
/// its transaction's receipt in the block the store names. Returns the mismatches.
fn compare(options: &Options, anvil: &Anvil, records: &[Record]) -> Result<Vec<String>, String> {
    let mut problems = vec![];
    let mut by_destination: HashMap<&str, Vec<&Record>> = Default::default();
    for record in records {
        by_destination
            .entry(record.destination.as_str())
            .or_default()
            .push(record);
    }
    let mut hashes = HashSet::new();
    for i in 0..options.disbursements {
        let (to, expected) = (destination(i), amount(i));
        let found = by_destination.remove(to.as_str()).unwrap_or_default();
        let [record] = found.as_slice() else {
            problems.push(format!(
                "{to} is in the store {} times, expected once",
                found.len()
            ));
            continue;
        };
        if record.amount != expected {
            problems.push(format!(
                "{to}: the store says {} wei, queued {expected}",
                record.amount
            ));
        }
        let balance = anvil.balance(&to)?;
        match record.status.as_str() {
            "executed" => {
                if balance != expected {
                    problems.push(format!(
                        "{to} holds {balance} wei on chain, expected {expected} (paid exactly once)"
                    ));
                }
                match (&record.tx_hash, record.block) {
                    (Some(hash), Some(block)) => {
                        if !hashes.insert(hash.clone()) {
                            problems.push(format!("{hash} is the tx hash of two disbursements"));
                        }
                        if let Some(problem) = receipt_problem(anvil, hash, block, &to)? {
                            problems.push(format!("disbursement {} ({to}): {problem}", record.id));
                        }
                    }
                    _ => problems.push(format!("{to} executed without a tx hash and block")),
                }
            }
            _ => {
                if balance != 0 {
                    problems.push(format!("{to} is {} but holds {balance} wei", record.status));
                }
            }
        }
    }
    for (to, found) in by_destination {
        problems.push(format!(
            "{to} is in the store {} times but was never queued",
            found.len()
        ));
    }
    Ok(problems)
}

/// What is wrong with the receipt of `hash`, if anything.
fn receipt_problem(
    anvil: &Anvil,
    hash: &str,
    block: u64,
    to: &str,
) -> Result<Option<String>, String> {
    let answer = anvil.rpc_answer("eth_getTransactionReceipt", &format!(r#"["{hash}"]"#))?;
    let answer = Json::parse(&answer)?;
    let Some(receipt) = answer.get("result") else {
        return Err(format!("eth_getTransactionReceipt {hash}: {answer:?}"));
    };
    if *receipt == Json::Null {
        return Ok(Some(format!("{hash} has no receipt on anvil")));
    }
    let field = |name: &str| {
        receipt
            .get(name)
            .and_then(Json::as_str)
            .map(str::to_ascii_lowercase)
    };
    let mined =
        field("blockNumber").and_then(|b| u64::from_str_radix(b.trim_start_matches("0x"), 16).ok());
    Ok(if field("status").as_deref() != Some("0x1") {
        Some(format!("{hash} failed on chain: {receipt:?}"))
    } else if mined != Some(block) {
        Some(format!(
            "{hash} mined in block {mined:?}, the store says {block}"
        ))
    } else if field("to").as_deref() != Some(to) {
        Some(format!("{hash} pays {:?}, not {to}", field("to")))
    } else if field("from") != Some(anvil::ACCOUNT_0.to_ascii_lowercase()) {
        Some(format!(
            "{hash} is from {:?}, not the treasury",
            field("from")
        ))
    } else {
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_from_a_page_of_the_list() {
        let page = r#"{"disbursements":[{"activation_epoch":0,"amount":"1000000000000000001",
            "depends_on":[],"destination":"0xc4a0","external_key":"k","id":3,"memo":"m",
            "queued_at_ms":1,"status":{"block":7,"status":"executed","tx_hash":"0xab"}}]}"#;
        let json = Json::parse(page).expect("parses");
        let items = json
            .get("disbursements")
            .and_then(Json::as_array)
            .expect("array");
        let record = Record::from_json(&items[0]).expect("a record");
        assert_eq!(record.id, 3);
        assert_eq!(record.amount, 1_000_000_000_000_000_001);
        assert_eq!(record.status, "executed");
        assert_eq!(record.block, Some(7));
        assert_eq!(record.tx_hash.as_deref(), Some("0xab"));
    }
}
