//! Fuzzes every stored-record decoder of `governance::store`: the input writes raw keys
//! and values into the store's trees, then every public reader runs, then the operator's
//! requests, then an executor ticks against a `ScriptedLedger` (at epoch 1000).
//!
//! Input: lines `KIND KEY VALUE`. `KIND` is a kind of record (`disbursements`,
//! `dependents`, `scheduled`, `ready`, `intents`, `external_keys`, `meta`, `audit`; a line
//! naming no kind is ignored). `KEY` is `N` (a u64, big-endian), `N,M` (two of them),
//! `#HEX` (raw bytes) or any other bytes as they are (`next_nonce`). `VALUE` is the rest
//! of the line: raw bytes, or `#HEX`. For the kinds stored in binary (disbursements,
//! dependents, intents), a value that reads as the record's JSON (as the API shows it) is
//! written in its binary form, so that the seeds stay readable and mutations reach both
//! the records' meaning and the binary decoder; any other value is written as it is.
//!
//! The store is the in-memory engine: the logic over it is the same as on sled.
//!
//! Invariant: no panic, and every error a store call returns is `Corrupt` or `Missing`
//! naming the tree and the key (see `treasury_fuzz::store::check_error`).

#![no_main]

use std::sync::{Arc, LazyLock};

use governance::testing::ScriptedLedger;
use governance::{
    CircuitBreaker, CircuitBreakerConfig, Disbursement, GovStore, Intent, ManualClock,
    NewDisbursement, RequestError, StoreError, Stored, TreasuryExecutor, TreasuryExecutorConfig,
    TreasuryExecutorError,
};
use libfuzzer_sys::fuzz_target;
use treasury_fuzz::store::{KINDS, check_error, clear};

/// Made once per process; emptied before each input.
static STORE: LazyLock<GovStore> = LazyLock::new(GovStore::in_memory);

fuzz_target!(|data: &[u8]| {
    let store = &*STORE;
    clear(store);
    for line in data.split(|&b| b == b'\n') {
        write_line(store, line);
    }
    read_everything(store);
    make_requests(store);
    run_executor(store);
});

fn write_line(store: &GovStore, line: &[u8]) {
    let mut fields = line.splitn(3, |&b| b == b' ');
    let (Some(tree), Some(key)) = (fields.next(), fields.next()) else {
        return;
    };
    let Some(name) = KINDS.iter().find(|name| name.as_bytes() == tree) else {
        return;
    };
    let value = bytes(fields.next().unwrap_or_default());
    let value = match *name {
        "disbursements" => binary::<Disbursement>(value),
        "dependents" => binary::<Vec<u64>>(value),
        "intents" => binary::<Intent>(value),
        _ => value,
    };
    store
        .raw_insert(name, &parse_key(key), &value)
        .expect("write a raw record");
}

/// `value` in the record's binary form if it reads as the record's JSON, else as it is.
fn binary<T: Stored + serde::de::DeserializeOwned>(value: Vec<u8>) -> Vec<u8> {
    match serde_json::from_slice::<T>(&value) {
        Ok(record) => record.to_bytes(),
        Err(_) => value,
    }
}

fn parse_key(token: &[u8]) -> Vec<u8> {
    let number = |digits: &[u8]| std::str::from_utf8(digits).ok()?.parse::<u64>().ok();
    if token.first() == Some(&b'#') {
        return bytes(token);
    }
    if let Some(comma) = token.iter().position(|&b| b == b',')
        && let (Some(a), Some(b)) = (number(&token[..comma]), number(&token[comma + 1..]))
    {
        return [a.to_be_bytes(), b.to_be_bytes()].concat();
    }
    match number(token) {
        Some(n) if token.iter().all(u8::is_ascii_digit) => n.to_be_bytes().to_vec(),
        _ => token.to_vec(),
    }
}

/// `#HEX` decoded, or the bytes as they are.
fn bytes(token: &[u8]) -> Vec<u8> {
    let hex = |digits: &[u8]| -> Option<Vec<u8>> {
        if !digits.len().is_multiple_of(2) {
            return None;
        }
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
            .collect()
    };
    match token.strip_prefix(b"#").and_then(hex) {
        Some(decoded) => decoded,
        None => token.to_vec(),
    }
}

fn check<T>(result: Result<T, StoreError>) {
    if let Err(error) = result {
        check_error(&error);
    }
}

fn check_request<T>(result: Result<T, RequestError>) {
    if let Err(RequestError::Storage(error)) = result {
        check_error(&error);
    }
}

fn read_everything(store: &GovStore) {
    check(store.get(0));
    check(store.get(1));
    check(store.list(None, 1_000));
    check(store.list(Some(0), 1_000));
    check(store.audit(None, 1_000));
    check(store.executor_snapshot());
    check(store.breaker_snapshot());
    check(store.intents());
    check(store.chain_id());
    check(store.next_nonce());
    check(store.backlog());
}

fn make_requests(store: &GovStore) {
    let new = |depends_on: Vec<u64>, external_key: Option<&str>| NewDisbursement {
        destination: "grantee".into(),
        amount: 1,
        memo: String::new(),
        activation_epoch: 0,
        depends_on,
        external_key: external_key.map(str::to_owned),
        asset: "native".into(),
    };
    check_request(store.queue(&new(vec![0], Some("k")), 0));
    check_request(store.queue_batch(&[new(vec![1], None), new(vec![], Some("k"))], 0));
    check_request(store.cancel(0, "fuzz"));
    check_request(store.cancel(1, "fuzz"));
    check(store.record_audit("fuzz", "fuzz.check", "reason", "detail", 0));
    check(store.audit(None, 1_000));
}

fn run_executor(store: &GovStore) {
    let breaker = Arc::new(CircuitBreaker::with_clock(
        CircuitBreakerConfig::default(),
        ManualClock::new(),
    ));
    let ledger = Arc::new(ScriptedLedger::default());
    ledger.set_epoch(1_000);
    let config = TreasuryExecutorConfig::new("fuzz");
    let mut executor = match TreasuryExecutor::new(config, breaker, store.clone(), ledger) {
        Ok(executor) => executor,
        Err(error) => return check_error(&error),
    };
    for _ in 0..4 {
        match executor.tick() {
            Err(TreasuryExecutorError::Storage(error)) => check_error(&error),
            Err(TreasuryExecutorError::Halted(_)) => break,
            _ => {}
        }
    }
}
