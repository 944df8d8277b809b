//! The pool's rules against scripted endpoints: selection, failover, exclusion,
//! confirmation of "unknown" and of receipts, broadcast classification, and recovery
//! without traffic. (`node/tests/evm_ledger.rs` and `cargo xtask failover --endpoints 3`
//! run the same rules against anvil.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governance::{
    CircuitState, Disbursement, DisbursementStatus, Ledger, LedgerError, ManualClock, SignRequest,
    TxStatus,
};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::super::key::TreasuryKey;
use super::super::{EvmLedger, EvmLedgerConfig};
use super::{Pool, Transport, combine_broadcast};

const KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const DESTINATION: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

/// What one scripted endpoint knows and how it misbehaves.
#[derive(Debug, Clone)]
struct Script {
    chain_id: u64,
    head: u64,
    /// Receipts by transaction hash: (block, block hash).
    receipts: HashMap<String, (u64, String)>,
    /// Blocks it holds, by number: their hash.
    blocks: HashMap<u64, String>,
    nonce: u64,
    /// Every call fails with this.
    down: Option<LedgerError>,
    /// Lookups answer null (a read backend behind its head).
    stale_lookups: bool,
    /// `eth_sendRawTransaction`'s answer.
    send: Result<(), LedgerError>,
    /// `eth_getBalance` fails so.
    balance_error: Option<LedgerError>,
    /// Raw transactions it was sent.
    sent: Vec<String>,
    calls: Vec<String>,
}

impl Script {
    fn new(head: u64) -> Script {
        Script {
            chain_id: 31337,
            head,
            receipts: HashMap::new(),
            blocks: (0..=head).map(|n| (n, block_hash(n))).collect(),
            nonce: 0,
            down: None,
            stale_lookups: false,
            send: Ok(()),
            balance_error: None,
            sent: Vec::new(),
            calls: Vec::new(),
        }
    }
}

fn block_hash(n: u64) -> String {
    format!("0x{n:064x}")
}

#[derive(Debug, Clone)]
struct Scripted(Arc<Mutex<Script>>);

impl Scripted {
    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.0.lock().expect("script")
    }
}

impl Transport for Scripted {
    fn call(&self, method: &str, params: Value) -> Result<Value, LedgerError> {
        let mut s = self.script();
        s.calls.push(method.to_owned());
        if let Some(error) = &s.down {
            return Err(error.clone());
        }
        let hash_param = || params[0].as_str().unwrap_or_default().to_owned();
        match method {
            "eth_chainId" => Ok(json!(format!("{:#x}", s.chain_id))),
            "eth_getBlockByNumber" => {
                let number = match params[0].as_str() {
                    Some("latest") => Some(s.head),
                    Some(tag) => u64::from_str_radix(tag.trim_start_matches("0x"), 16).ok(),
                    None => None,
                };
                Ok(
                    match number.and_then(|n| s.blocks.get(&n).map(|h| (n, h))) {
                        Some((n, hash)) => json!({
                            "number": format!("{n:#x}"),
                            "hash": hash,
                            "baseFeePerGas": "0x1",
                            "transactions": [],
                        }),
                        None => Value::Null,
                    },
                )
            }
            "eth_getTransactionCount" => match params[1].as_str() {
                Some(tag) if tag.starts_with("0x") => {
                    let block = u64::from_str_radix(&tag[2..], 16).unwrap_or(u64::MAX);
                    if block > s.head {
                        // geth: "header not found"; anvil: BlockOutOfRangeError.
                        return Err(LedgerError::Other("header not found".into()));
                    }
                    Ok(json!(format!("{:#x}", s.nonce)))
                }
                _ => Ok(json!(format!("{:#x}", s.nonce))),
            },
            "eth_getBalance" => match &s.balance_error {
                Some(error) => Err(error.clone()),
                None => Ok(json!("0x3e8")),
            },
            "eth_maxPriorityFeePerGas" => Ok(json!("0x1")),
            "eth_estimateGas" => Ok(json!("0x5208")),
            "eth_getTransactionReceipt" => {
                if s.stale_lookups {
                    return Ok(Value::Null);
                }
                Ok(match s.receipts.get(&hash_param()) {
                    Some((block, hash)) => json!({
                        "blockNumber": format!("{block:#x}"),
                        "blockHash": hash,
                        "status": "0x1",
                    }),
                    None => Value::Null,
                })
            }
            "eth_getTransactionByHash" => Ok(Value::Null),
            "eth_sendRawTransaction" => {
                let raw = hash_param();
                s.sent.push(raw);
                s.send
                    .clone()
                    .map(|()| json!(format!("0x{}", "ab".repeat(32))))
            }
            other => Err(LedgerError::Other(format!("{other} not scripted"))),
        }
    }
}

struct Rig {
    ledger: EvmLedger,
    endpoints: Vec<Scripted>,
    clock: ManualClock,
}

/// An EVM ledger over scripted endpoints `a`, `b`, … at these heads.
fn rig(heads: &[u64]) -> Rig {
    rig_with(heads, EvmLedgerConfig::default())
}

fn rig_with(heads: &[u64], config: EvmLedgerConfig) -> Rig {
    let clock = ManualClock::new();
    let endpoints: Vec<Scripted> = heads
        .iter()
        .map(|&head| Scripted(Arc::new(Mutex::new(Script::new(head)))))
        .collect();
    let transports = endpoints
        .iter()
        .enumerate()
        .map(|(i, endpoint)| {
            let label = char::from(b'a' + i as u8).to_string();
            (label, Box::new(endpoint.clone()) as Box<dyn Transport>)
        })
        .collect();
    let pool = Pool::new(
        transports,
        &config.endpoint_breaker,
        clock.clone(),
        config.max_head_lag_blocks,
        config.chain_id,
    );
    let key = TreasuryKey::parse(Zeroizing::new(KEY.to_owned())).expect("key");
    Rig {
        ledger: EvmLedger::with_pool(pool, key, config),
        endpoints,
        clock,
    }
}

impl Rig {
    fn script(&self, i: usize) -> std::sync::MutexGuard<'_, Script> {
        self.endpoints[i].script()
    }

    fn calls(&self, i: usize, method: &str) -> usize {
        self.script(i).calls.iter().filter(|m| *m == method).count()
    }

    fn state(&self, i: usize) -> CircuitState {
        self.ledger.pool.breaker_state(i)
    }

    /// A transaction included in `block` on every endpoint listed.
    fn include(&self, tx: &str, block: u64, on: &[usize]) {
        for &i in on {
            let mut s = self.script(i);
            let hash = s.blocks.get(&block).cloned().expect("the block is there");
            s.receipts.insert(tx.to_owned(), (block, hash));
        }
    }
}

fn tx(n: u8) -> String {
    format!("0x{}", hex_byte(n).repeat(32))
}

fn hex_byte(n: u8) -> String {
    format!("{n:02x}")
}

fn disbursement() -> Disbursement {
    Disbursement {
        id: 1,
        destination: DESTINATION.into(),
        amount: 5,
        memo: String::new(),
        activation_epoch: 0,
        depends_on: vec![],
        status: DisbursementStatus::Queued,
        queued_at_ms: 0,
        approvals: vec![],
        external_key: None,
        asset: "native".into(),
    }
}

// ---- selection ------------------------------------------------------------------------

#[test]
fn reads_go_to_the_highest_head_and_skip_endpoints_out_of_sync() {
    let r = rig(&[100, 110, 104]);
    assert_eq!(r.ledger.chain_id(), Ok("31337".into()));
    assert_eq!(
        r.ledger.head().map(|h| h.number),
        Ok(110),
        "b has the best head"
    );
    let status = r.ledger.endpoint_status();
    let sync: Vec<(&str, bool, Option<u64>)> = status
        .iter()
        .map(|s| (s.name.as_str(), s.in_sync, s.lag))
        .collect();
    assert_eq!(
        sync,
        [
            ("a", false, Some(10)),
            ("b", true, Some(0)),
            ("c", true, Some(6))
        ][..2]
            .iter()
            .copied()
            .chain([("c", false, Some(6))])
            .collect::<Vec<_>>(),
        "lag 10 and 6 are past max_head_lag_blocks (5)"
    );
    r.ledger
        .submit(
            &r.ledger
                .sign(&SignRequest::payment(&disbursement(), 0))
                .expect("signed"),
        )
        .expect("submitted");
    assert_eq!(r.script(0).sent.len(), 0, "out of sync: not submitted to");
    assert_eq!(r.script(1).sent.len(), 1);
    assert_eq!(r.script(2).sent.len(), 0);
}

#[test]
fn a_failing_endpoint_is_skipped_and_its_breaker_opens_while_the_pool_answers() {
    let r = rig(&[100, 100]);
    r.script(0).down = Some(LedgerError::Unreachable("refused".into()));
    for _ in 0..3 {
        assert_eq!(r.ledger.chain_id(), Ok("31337".into()), "b answers");
        assert_eq!(
            r.ledger.next_nonce(),
            Ok(0),
            "one endpoint in sync: its word"
        );
    }
    assert_eq!(
        r.state(0),
        CircuitState::Open,
        "3 failed refreshes open a's breaker"
    );
    assert_eq!(r.state(1), CircuitState::Closed);
    let calls = r.script(0).calls.len();
    r.ledger.chain_id().expect("b");
    assert_eq!(
        r.script(0).calls.len(),
        calls,
        "no call to an open endpoint"
    );
    let status = &r.ledger.endpoint_status()[0];
    assert_eq!((status.state, status.in_sync), (CircuitState::Open, false));
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("refused"))
    );
}

#[test]
fn the_pool_fails_only_when_every_endpoint_does() {
    let r = rig(&[100, 100]);
    r.ledger.chain_id().expect("both up");
    r.script(0).down = Some(LedgerError::Timeout);
    assert_eq!(r.ledger.balance().map(|_| ()), Ok(()), "b answers");
    r.script(1).down = Some(LedgerError::Timeout);
    assert_eq!(r.ledger.balance(), Err(LedgerError::Timeout));
}

/// An endpoint's breaker closes by itself with no payment traffic: the refresh at the
/// start of every tick is its probe.
#[test]
fn an_endpoint_recovers_without_traffic() {
    let r = rig(&[100, 100]);
    r.script(0).down = Some(LedgerError::Timeout);
    for _ in 0..3 {
        r.ledger.chain_id().expect("b");
    }
    assert_eq!(r.state(0), CircuitState::Open);
    r.script(0).down = None;
    r.ledger.chain_id().expect("b");
    assert_eq!(r.state(0), CircuitState::Open, "not before its timeout");
    r.clock.advance(Duration::from_secs(31));
    r.ledger.chain_id().expect("both");
    assert_eq!(
        r.state(0),
        CircuitState::Closed,
        "one probe success closes it"
    );
    assert!(r.ledger.endpoint_status()[0].in_sync);
}

// ---- the chain ------------------------------------------------------------------------

#[test]
fn an_endpoint_on_another_chain_is_excluded_for_good() {
    let r = rig_with(
        &[100, 100],
        EvmLedgerConfig {
            chain_id: Some(31337),
            ..EvmLedgerConfig::default()
        },
    );
    r.script(1).chain_id = 5;
    assert_eq!(r.ledger.chain_id(), Ok("31337".into()));
    let excluded = r.ledger.endpoint_status()[1].excluded.clone();
    assert!(
        excluded
            .as_deref()
            .is_some_and(|why| why.contains("chain 5") && why.contains("evm.chain_id is 31337")),
        "{excluded:?}"
    );
    r.script(1).chain_id = 31337;
    r.ledger.chain_id().expect("a");
    assert_eq!(r.calls(1, "eth_chainId"), 1, "never asked again");
    r.script(0).chain_id = 5;
    let answer = r.ledger.chain_id();
    assert!(
        matches!(answer, Err(LedgerError::Signing(_))),
        "every endpoint on another chain halts: {answer:?}"
    );
}

// ---- confirmation ---------------------------------------------------------------------

#[test]
fn unknown_is_confirmed_by_a_second_endpoint() {
    let r = rig(&[101, 100]); // a first: the higher head
    r.ledger.chain_id().expect("refresh");
    assert_eq!(
        r.ledger.lookup(&tx(1)),
        Ok(TxStatus::Unknown),
        "unknown to both"
    );
    assert_eq!(r.calls(1, "eth_getTransactionReceipt"), 1, "b was asked");

    // a's reads lag behind its head: it holds block 98 but not the receipt in it.
    r.include(&tx(2), 98, &[1]);
    r.script(0).stale_lookups = true;
    let found = r.ledger.lookup(&tx(2));
    assert_eq!(
        found,
        Ok(TxStatus::Included {
            block: 98,
            block_hash: block_hash(98)
        }),
        "b has it, and a holds the same block"
    );
    assert!(
        r.ledger.endpoint_status()[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("lag")),
        "a is counted as wrong"
    );
    for _ in 0..2 {
        r.ledger.lookup(&tx(2)).expect("found");
    }
    assert_eq!(
        r.state(0),
        CircuitState::Open,
        "three wrong answers open a's breaker"
    );
}

#[test]
fn a_receipt_stands_only_if_a_second_endpoint_holds_its_block() {
    let r = rig(&[100, 100]);
    r.ledger.chain_id().expect("refresh");
    r.include(&tx(3), 100, &[0, 1]);
    assert_eq!(
        r.ledger.lookup(&tx(3)),
        Ok(TxStatus::Included {
            block: 100,
            block_hash: block_hash(100)
        })
    );
    // b is on a fork at block 100, with the transaction in its own block 100: whichever
    // endpoint answers first, the other does not hold that block.
    r.script(1).blocks.insert(100, block_hash(9999));
    r.include(&tx(3), 100, &[1]);
    assert_eq!(
        r.ledger.lookup(&tx(3)),
        Ok(TxStatus::Pending),
        "not confirmed: wait"
    );
    // b lacks block 100 altogether (a moment behind), and the receipt.
    r.script(1).blocks.remove(&100);
    r.script(1).receipts.clear();
    assert_eq!(r.ledger.lookup(&tx(3)), Ok(TxStatus::Pending));
}

#[test]
fn one_endpoint_in_sync_is_taken_at_its_word() {
    let r = rig(&[100]);
    assert_eq!(r.ledger.lookup(&tx(4)), Ok(TxStatus::Unknown));
    r.include(&tx(4), 99, &[0]);
    assert_eq!(
        r.ledger.lookup(&tx(4)),
        Ok(TxStatus::Included {
            block: 99,
            block_hash: block_hash(99)
        })
    );
}

#[test]
fn unknown_with_no_second_answer_is_not_trusted() {
    let r = rig(&[100, 100]);
    r.ledger.chain_id().expect("refresh");
    r.script(1).down = Some(LedgerError::Timeout);
    assert_eq!(
        r.ledger.lookup(&tx(5)),
        Err(LedgerError::Timeout),
        "cannot know"
    );
}

#[test]
fn nonces_are_confirmed_by_a_second_endpoint() {
    let r = rig(&[100, 100]);
    r.ledger.chain_id().expect("refresh");
    r.script(0).nonce = 7;
    r.script(1).nonce = 7;
    assert_eq!(r.ledger.next_nonce(), Ok(7));
    assert_eq!(r.ledger.nonce_at(90), Ok(7));
    r.script(1).nonce = 6;
    let answer = r.ledger.next_nonce();
    assert!(
        matches!(&answer, Err(LedgerError::Other(why)) if why.contains("disagree") && why.contains("a says 7") && why.contains("b says 6")),
        "{answer:?}"
    );
}

/// A second endpoint a block behind has not got the block yet: it is not asked about it
/// (it would answer "header not found", and the executor's breaker would count it).
#[test]
fn a_nonce_at_a_block_is_confirmed_only_by_an_endpoint_that_has_it() {
    let r = rig(&[100, 99]);
    r.ledger.chain_id().expect("refresh");
    r.script(0).nonce = 7;
    r.script(1).nonce = 7;
    let asked = r.calls(1, "eth_getTransactionCount");
    assert_eq!(r.ledger.nonce_at(100), Ok(7), "a alone has block 100");
    assert_eq!(
        r.calls(1, "eth_getTransactionCount"),
        asked,
        "b was not asked"
    );
    assert_eq!(r.ledger.nonce_at(99), Ok(7));
    assert_eq!(
        r.calls(1, "eth_getTransactionCount"),
        asked + 1,
        "b confirmed block 99"
    );
}

/// An error only one endpoint gives (a pruned node, a rate limit sent as a JSON-RPC error)
/// is not the pool's answer while another endpoint answers.
#[test]
fn an_endpoints_own_error_moves_on_to_the_next() {
    let r = rig(&[100, 100]);
    r.ledger.chain_id().expect("refresh");
    for i in 0..2 {
        r.script(i).balance_error = Some(LedgerError::Other("missing trie node".into()));
    }
    assert_eq!(
        r.ledger.balance(),
        Err(LedgerError::Other("missing trie node".into())),
        "every endpoint failed so"
    );
    r.script(1).balance_error = None;
    r.script(0).balance_error = Some(LedgerError::Other("missing trie node".into()));
    assert_eq!(r.ledger.balance(), Ok(1000));
    r.script(0).balance_error = None;
    r.script(1).balance_error = Some(LedgerError::Other("missing trie node".into()));
    assert_eq!(r.ledger.balance(), Ok(1000));
}

// ---- broadcast ------------------------------------------------------------------------

#[test]
fn a_submission_goes_to_every_endpoint_in_sync_as_the_same_bytes() {
    let r = rig(&[100, 100, 100]);
    r.ledger.chain_id().expect("refresh");
    let signed = r
        .ledger
        .sign(&SignRequest::payment(&disbursement(), 0))
        .expect("signed");
    r.script(0).send = Err(LedgerError::Timeout);
    r.script(1).send = Err(LedgerError::Rejected("no".into()));
    assert_eq!(r.ledger.submit(&signed), Ok(()), "c accepted");
    let sent: Vec<Vec<String>> = (0..3).map(|i| r.script(i).sent.clone()).collect();
    assert!(
        sent.iter().all(|s| s.len() == 1 && s[0] == sent[0][0]),
        "{sent:?}"
    );
}

/// A batch of submissions goes to every endpoint in sync, the same bytes in the same
/// order, and each transaction's answers are combined as one submission's are.
#[test]
fn a_batch_of_submissions_is_combined_transaction_by_transaction() {
    let r = rig(&[100, 100]);
    r.ledger.chain_id().expect("refresh");
    let txs: Vec<_> = (0..3)
        .map(|nonce| {
            r.ledger
                .sign(&SignRequest::payment(&disbursement(), nonce))
                .expect("signed")
        })
        .collect();
    r.script(0).send = Err(LedgerError::Timeout);
    let answers = r.ledger.submit_batch(&txs);
    assert_eq!(answers, vec![Ok(()), Ok(()), Ok(())], "b took each");
    let sent: Vec<Vec<String>> = (0..2).map(|i| r.script(i).sent.clone()).collect();
    assert_eq!(
        sent[0], sent[1],
        "the same bytes, in the same order, to both"
    );
    assert_eq!(sent[0].len(), 3);
    r.script(1).send = Err(LedgerError::Rejected("no".into()));
    let answers = r.ledger.submit_batch(&txs);
    assert_eq!(
        answers,
        vec![Err(LedgerError::Timeout); 3],
        "a refusal from one and a failure from the other: it may have arrived"
    );
}

#[test]
fn broadcast_answers_combine_by_what_they_prove() {
    use LedgerError::*;
    let rejected = || Rejected("intrinsic gas too low".into());
    type Answer = Result<(), LedgerError>;
    let cases: Vec<(Vec<Answer>, Answer)> = vec![
        (vec![Err(Timeout), Ok(()), Err(rejected())], Ok(())),
        (vec![Err(rejected()), Err(rejected())], Err(rejected())),
        (vec![Err(rejected()), Err(Timeout)], Err(Timeout)),
        (vec![Err(rejected()), Err(NonceTooLow)], Err(NonceTooLow)),
        (vec![Err(Timeout), Err(AlreadyKnown)], Err(AlreadyKnown)),
        (
            vec![Err(rejected()), Err(Underpriced("u".into()))],
            Err(Underpriced("u".into())),
        ),
        (
            vec![Err(Underpriced("u".into())), Err(Http(502))],
            Err(Http(502)),
        ),
        (
            vec![Err(InsufficientBalance), Err(rejected())],
            Err(InsufficientBalance),
        ),
        (
            vec![Err(Timeout), Err(Signing("chain".into()))],
            Err(Signing("chain".into())),
        ),
    ];
    for (answers, expected) in cases {
        let shown = format!("{answers:?}");
        assert_eq!(combine_broadcast(answers), expected, "{shown}");
    }
}

/// With every endpoint's breaker open the pool would never call again by itself: each
/// refresh then probes them all (the executor's breaker paces the ticks), and the first
/// to answer is back at once.
#[test]
fn with_every_endpoint_open_each_refresh_probes_them_all() {
    let r = rig(&[100, 100]);
    for i in 0..2 {
        r.script(i).down = Some(LedgerError::Unreachable("refused".into()));
    }
    for _ in 0..3 {
        assert!(r.ledger.chain_id().is_err());
    }
    assert_eq!(
        (r.state(0), r.state(1)),
        (CircuitState::Open, CircuitState::Open)
    );
    let calls = r.script(1).calls.len();
    assert!(r.ledger.chain_id().is_err());
    assert!(r.script(1).calls.len() > calls, "probed although open");
    r.script(1).down = None;
    assert_eq!(
        r.ledger.chain_id(),
        Ok("31337".into()),
        "b answers: usable at once"
    );
    assert_eq!(
        (r.state(0), r.state(1)),
        (CircuitState::Open, CircuitState::Closed)
    );
    assert_eq!(r.ledger.head().map(|h| h.number), Ok(100));
}

// ---- the model ------------------------------------------------------------------------

/// How one endpoint of the model misbehaves.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Healthy,
    /// Holds every block, but its lookups answer null.
    Stale,
    /// Two blocks behind: lacks the newest blocks and their receipts.
    Lagging,
    /// Another block at the transaction's height, without it.
    Forked,
    /// Every call fails.
    Down,
}

const KINDS: [Kind; 5] = [
    Kind::Healthy,
    Kind::Stale,
    Kind::Lagging,
    Kind::Forked,
    Kind::Down,
];

/// xorshift64*: a few thousand reproducible cases without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random pools of 1 to 4 endpoints, each of a random kind, and a transaction either
/// included at a random height or nowhere. Whatever the pool, a lookup reports a block
/// only at the transaction's height and only if two endpoints hold it (or the only one
/// up), and says "unknown" only if no endpoint that knows the transaction answered.
#[test]
fn lookups_never_report_what_the_chain_does_not_hold() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let head = 100;
    for case in 0..2_000 {
        let n = 1 + rng.below(4) as usize;
        let kinds: Vec<Kind> = (0..n).map(|_| KINDS[rng.below(5) as usize]).collect();
        let included = (rng.below(3) > 0).then(|| head - rng.below(4));
        let r = rig(&vec![head; n]);
        let hash = tx(7);
        for (i, kind) in kinds.iter().enumerate() {
            let mut s = r.script(i);
            if let Some(block) = included {
                let canonical = s.blocks[&block].clone();
                s.receipts.insert(hash.clone(), (block, canonical));
            }
            match kind {
                Kind::Healthy => {}
                Kind::Stale => s.stale_lookups = true,
                Kind::Lagging => {
                    for gone in head - 1..=head {
                        s.blocks.remove(&gone);
                        s.receipts.retain(|_, (block, _)| *block != gone);
                    }
                    s.head = head - 2;
                }
                Kind::Forked => {
                    // Another block at that height, holding the transaction too.
                    if let Some(block) = included {
                        let fork = block_hash(10_000 + block);
                        s.blocks.insert(block, fork.clone());
                        s.receipts.insert(hash.clone(), (block, fork));
                    }
                }
                Kind::Down => s.down = Some(LedgerError::Timeout),
            }
        }
        let _ = r.ledger.chain_id();
        // One lookup, then a batch of it and a transaction nobody has: the same rules.
        let single = r.ledger.lookup(&hash);
        let batch = r.ledger.lookup_batch(&[hash.clone(), tx(9)]);
        let (batched, nobody) = match &batch {
            Ok(statuses) => (Ok(statuses[0].clone()), Some(statuses[1].clone())),
            Err(error) => (Err(error.clone()), None),
        };
        assert!(
            !matches!(
                nobody,
                Some(TxStatus::Included { .. } | TxStatus::Reverted { .. })
            ),
            "case {case}: a transaction nobody has, found: {nobody:?}"
        );
        for answer in [single, batched] {
            let shown = format!("case {case}: {kinds:?}, included {included:?}: {answer:?}");
            match &answer {
                Ok(TxStatus::Included {
                    block,
                    block_hash: found,
                }) => {
                    assert_eq!(Some(*block), included, "{shown}");
                    // A block two endpoints hold (or the only one that answers): never one
                    // endpoint's word where another could have checked it.
                    let up = kinds.iter().filter(|kind| **kind != Kind::Down).count();
                    let holders = (0..n)
                        .filter(|&i| kinds[i] != Kind::Down)
                        .filter(|&i| r.script(i).blocks.get(block) == Some(found))
                        .count();
                    assert!(holders >= up.min(2), "held by {holders} of {up}: {shown}");
                }
                Ok(TxStatus::Unknown) => {
                    let knows = kinds.iter().any(|kind| {
                        matches!(kind, Kind::Healthy | Kind::Forked) && included.is_some()
                    });
                    assert!(!knows, "a healthy endpoint in sync knew it: {shown}");
                }
                Ok(TxStatus::Pending) | Err(_) => {}
                Ok(TxStatus::Reverted { .. }) => panic!("nothing reverted: {shown}"),
                Ok(TxStatus::Mismatch { .. }) => panic!("no token, no mismatch: {shown}"),
            }
        }
    }
}
