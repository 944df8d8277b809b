//! A database written in the store's first layout (a sled tree per kind of record, JSON;
//! `tests/fixtures/store-v1`, written by the code of commit 32f42a4) is migrated in place
//! on open, all or nothing, and its backlog is paid exactly once.
#![cfg(not(loom))]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::retry_locked;
use governance::testing::ScriptedLedger;
use governance::{
    CircuitBreaker, CircuitBreakerConfig, Disbursement, DisbursementStatus, Fees, GovStore, Ledger,
    ManualClock, Migration, SignedTx, StoreError, TreasuryExecutor, TreasuryExecutorConfig,
};
use serde_json::Value;
use tempfile::TempDir;

fn open(path: &Path) -> Result<GovStore, StoreError> {
    retry_locked(|| GovStore::open(path))
}

fn sled_open(path: &Path) -> Result<sled::Db, sled::Error> {
    retry_locked(|| sled::open(path))
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1")
}

fn manifest() -> Value {
    let text = std::fs::read(fixture().join("manifest.json")).expect("manifest");
    serde_json::from_slice(&text).expect("manifest json")
}

/// A copy of the fixture database (sled rewrites a database it opens).
fn copy() -> (TempDir, PathBuf) {
    let scratch = TempDir::new().expect("tempdir");
    let db = scratch.path().join("governance.db");
    std::fs::create_dir_all(&db).expect("mkdir");
    for name in ["conf", "db"] {
        std::fs::copy(fixture().join(name), db.join(name)).expect("copy");
    }
    (scratch, db)
}

/// Every record in the fixture, by kind (see the manifest's `trees`).
const RECORDS: u64 = 13 + 1 + 1 + 3 + 1 + 7 + 7 + 3;

/// What the manifest says of disbursement `id`, against the migrated record.
fn assert_same(expected: &Value, record: &Disbursement) {
    let id = record.id;
    assert_eq!(expected["id"].as_u64(), Some(id));
    assert_eq!(
        expected["destination"].as_str(),
        Some(record.destination.as_str()),
        "{id}"
    );
    assert_eq!(
        expected["amount"].as_u64().map(u128::from),
        Some(record.amount),
        "{id}"
    );
    assert_eq!(
        expected["memo"].as_str(),
        Some(record.memo.as_str()),
        "{id}"
    );
    assert_eq!(
        expected["activation_epoch"].as_u64(),
        Some(record.activation_epoch),
        "{id}"
    );
    assert_eq!(
        expected["queued_at_ms"].as_u64(),
        Some(record.queued_at_ms),
        "{id}"
    );
    assert_eq!(
        expected["external_key"].as_str(),
        record.external_key.as_deref(),
        "{id}"
    );
    let depends_on: Vec<u64> = expected["depends_on"]
        .as_array()
        .expect("depends_on")
        .iter()
        .map(|dep| dep.as_u64().expect("id"))
        .collect();
    assert_eq!(depends_on, record.depends_on, "{id}");
    assert_eq!(
        expected["status"].as_str(),
        Some(record.status.name()),
        "{id}"
    );
}

#[test]
fn the_first_layout_is_migrated_with_every_record() {
    let manifest = manifest();
    let (_scratch, path) = copy();
    let store = open(&path).expect("the old database opens");
    assert_eq!(
        store.migration(),
        Some(Migration {
            records: RECORDS,
            trees: 8
        })
    );
    let all = store.list(None, 100).expect("list");
    let expected = manifest["disbursements"].as_array().expect("disbursements");
    assert_eq!(all.len(), expected.len());
    for (expected, record) in expected.iter().zip(&all) {
        assert_same(expected, record);
    }
    assert_eq!(
        store.chain_id().expect("chain"),
        manifest["chain_id"].as_str().map(str::to_owned)
    );
    assert_eq!(
        store.next_nonce().expect("nonce"),
        manifest["next_nonce"].as_u64()
    );
    let intents = store.intents().expect("intents");
    assert_eq!(intents.len(), 1);
    let intent = &manifest["intents"][0];
    assert_eq!((intents[0].id, intents[0].nonce), (7, 5));
    assert!(intents[0].bound && !intents[0].submitted);
    assert_eq!(
        intents[0].attempts[0].tx.bytes,
        intent["attempts"][0]["signed_bytes"]
            .as_str()
            .expect("bytes")
            .as_bytes(),
        "the signed bytes survive byte for byte"
    );
    let audit = store.audit(None, 10).expect("audit");
    assert_eq!(
        audit.iter().map(|a| a.seq).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert!(store.breaker_snapshot().expect("breaker").is_some());
    assert!(store.executor_snapshot().expect("executor").is_some());
    assert_eq!(
        store.totals().expect("totals"),
        governance::Totals {
            queued: 5,
            staged: 1,
            executed: 5,
            cancelled: 2,
            ..Default::default()
        },
        "counted once, at the first open"
    );
    let backlog = store.backlog().expect("backlog");
    assert_eq!(
        (backlog.ready, backlog.scheduled, backlog.staged),
        (3, 1, 1)
    );
    // The external keys still deduplicate: queueing one again returns the first.
    let again = store
        .queue(
            &governance::NewDisbursement {
                destination: "anyone".into(),
                amount: 1,
                memo: String::new(),
                activation_epoch: 0,
                depends_on: vec![],
                external_key: Some("grant-2024-007".into()),
                asset: "native".into(),
            },
            0,
        )
        .expect("queue");
    assert!(!again.created);
    assert_eq!(again.disbursement.id, 7);
    drop(store);

    let reopened = open(&path).expect("reopens");
    assert_eq!(reopened.migration(), None, "migrated once");
    assert_eq!(reopened.list(None, 100).expect("list"), all);
}

#[test]
fn the_migrated_backlog_is_paid_exactly_once() {
    let manifest = manifest();
    let (_scratch, path) = copy();
    let store = open(&path).expect("open");

    // The ledger the fixture was paid on: its five payments replayed byte for byte.
    let settings = &manifest["ledger"];
    let balance = settings["treasury_balance"].as_u64().expect("balance");
    let ledger = Arc::new(ScriptedLedger::new(u128::from(balance)));
    for entry in settings["chain"].as_array().expect("chain") {
        let tx = SignedTx {
            tx_hash: entry["tx_hash"].as_str().expect("hash").to_owned(),
            bytes: entry["signed_bytes"]
                .as_str()
                .expect("bytes")
                .as_bytes()
                .to_vec(),
            fees: Fees {
                max_fee_per_gas: 0,
                max_priority_fee_per_gas: 0,
                gas_limit: 21_000,
            },
        };
        ledger.submit(&tx).expect("a replayed payment");
    }
    assert_eq!(ledger.payments().len(), 5);

    let breaker = Arc::new(CircuitBreaker::with_clock(
        CircuitBreakerConfig::default(),
        ManualClock::new(),
    ));
    let config = TreasuryExecutorConfig::new("migrated");
    let mut executor =
        TreasuryExecutor::new(config, breaker, store.clone(), Arc::clone(&ledger) as _)
            .expect("executor");
    let drain = |executor: &mut TreasuryExecutor, left: u64| {
        for _ in 0..20 {
            executor.tick().expect("tick");
            if store.backlog().expect("backlog").total() == left {
                return;
            }
        }
        panic!("not drained: {:?}", store.backlog());
    };
    let counted = |store: &GovStore| {
        assert_eq!(
            store.totals().expect("totals"),
            store.count_by_status().expect("count")
        );
    };
    drain(&mut executor, 1); // all but the one scheduled for epoch 100
    ledger.set_epoch(100);
    drain(&mut executor, 0);
    counted(&store);

    let payments = ledger.payments();
    let nonces: Vec<u64> = payments.iter().map(|p| p.nonce).collect();
    assert_eq!(
        nonces,
        (0..payments.len() as u64).collect::<Vec<_>>(),
        "no nonce twice, no gap"
    );
    assert_eq!(
        (
            payments[5].id,
            payments[5].nonce,
            payments[5].tx_hash.as_str()
        ),
        (
            7,
            5,
            manifest["intents"][0]["tx_hashes"][0]
                .as_str()
                .expect("hash")
        ),
        "the intent in flight is paid by the bytes signed before the migration"
    );
    for record in store.list(None, 100).expect("list") {
        let times = payments.iter().filter(|p| p.id == record.id).count();
        match record.status {
            DisbursementStatus::Executed { .. } => assert_eq!(times, 1, "{} paid once", record.id),
            DisbursementStatus::Cancelled { .. } => {
                assert_eq!(times, 0, "{} never paid", record.id)
            }
            other => panic!("{} still {other:?}", record.id),
        }
    }
}

/// A crash in the middle of the copy (some records already in the new layout, the marker
/// not written) is redone from the old trees on the next open.
#[test]
fn a_migration_interrupted_mid_copy_is_redone() {
    let (_scratch, path) = copy();
    let clean = {
        let (_other, other_path) = copy();
        let store = open(&other_path).expect("open");
        store.list(None, 100).expect("list")
    };
    {
        // What a crash after part of the copy leaves, then a node of the earlier layout
        // running on: new keys gone stale (disbursement 0 is no longer ready), no marker.
        let db = sled_open(&path).expect("sled");
        db.insert(b"d/\0\0\0\0\0\0\0\x03", b"\x01 stale".as_slice())
            .expect("partial");
        db.insert(b"r/\0\0\0\0\0\0\0\0", b"".as_slice())
            .expect("partial");
        db.flush().expect("flush");
    }
    let store = open(&path).expect("the migration is redone");
    assert_eq!(store.migration().map(|m| m.records), Some(RECORDS));
    assert_eq!(store.list(None, 100).expect("list"), clean);
    let backlog = store.backlog().expect("backlog");
    assert_eq!(
        (backlog.ready, backlog.scheduled, backlog.staged),
        (3, 1, 1),
        "what the interrupted copy left is gone, not added to"
    );
}

/// After the migration, a node of the earlier layout run on the database by mistake
/// finds counters it cannot read (it halts instead of paying from an empty store); what
/// it may leave (empty trees, snapshots beside the poison) is cleared at the next open;
/// a tree of the earlier layout holding records again stops the open, dropping nothing.
#[test]
fn a_node_of_the_earlier_layout_cannot_pay_from_a_migrated_database() {
    let (_scratch, path) = copy();
    let migrated = open(&path)
        .expect("migrates")
        .list(None, 100)
        .expect("list");
    {
        let db = sled_open(&path).expect("sled");
        let meta = db.open_tree("meta").expect("meta");
        let next_id = meta.get(b"next_id").expect("get").expect("poisoned");
        assert_ne!(
            next_id.len(),
            8,
            "not a counter the earlier layout can read"
        );
        // What that node could do before halting: open every tree, write a snapshot.
        for name in ["disbursements", "ready", "intents", "audit"] {
            db.open_tree(name).expect("tree");
        }
        meta.insert(b"executor", b"{}".as_slice())
            .expect("snapshot");
        db.flush().expect("flush");
    }
    let store = open(&path).expect("reopens: nothing could have been paid");
    assert_eq!(store.migration(), None);
    assert_eq!(store.list(None, 100).expect("list"), migrated);
    drop(store);
    {
        let db = sled_open(&path).expect("sled");
        let tree = db.open_tree("disbursements").expect("tree");
        tree.insert(99u64.to_be_bytes(), b"{}".as_slice())
            .expect("a record");
        db.flush().expect("flush");
    }
    match open(&path) {
        Err(StoreError::Invariant { kind, .. }) => assert_eq!(kind, "disbursements"),
        other => panic!("expected a refusal naming the tree, got {other:?}"),
    }
    let db = sled_open(&path).expect("sled");
    let kept = db.open_tree("disbursements").expect("tree");
    assert!(
        kept.get(99u64.to_be_bytes()).expect("get").is_some(),
        "nothing dropped"
    );
}

/// A record of the old layout that does not decode stops the open, naming its kind and
/// key, and leaves the old layout as it was: nothing is lost.
#[test]
fn a_corrupt_old_record_stops_the_migration_and_loses_nothing() {
    let (_scratch, path) = copy();
    let original = {
        let db = sled_open(&path).expect("sled");
        let tree = db.open_tree("disbursements").expect("tree");
        let original = tree
            .get(3u64.to_be_bytes())
            .expect("get")
            .expect("record 3");
        tree.insert(3u64.to_be_bytes(), b"{not json".as_slice())
            .expect("damage");
        db.flush().expect("flush");
        original
    };
    match open(&path) {
        Err(StoreError::Corrupt { kind, key, .. }) => {
            assert_eq!((kind, key.as_str()), ("disbursements", "3"));
        }
        other => panic!("expected the corrupt record named, got {other:?}"),
    }
    let db = sled_open(&path).expect("sled");
    let names = db.tree_names();
    for kind in ["disbursements", "intents", "audit", "meta"] {
        assert!(
            names.iter().any(|name| &name[..] == kind.as_bytes()),
            "{kind} kept"
        );
    }
    assert!(db.get(b"m/layout").expect("get").is_none(), "no marker");
    // Repaired, it migrates.
    db.open_tree("disbursements")
        .expect("tree")
        .insert(3u64.to_be_bytes(), original)
        .expect("repair");
    db.flush().expect("flush");
    drop(db);
    let store = open(&path).expect("migrates once repaired");
    assert_eq!(store.list(None, 100).expect("list").len(), 13);
}

/// A database whose layout is newer than this code's is refused, untouched.
#[test]
fn a_newer_layout_is_refused() {
    let scratch = TempDir::new().expect("tempdir");
    let path = scratch.path().join("governance.db");
    {
        let db = sled_open(&path).expect("sled");
        db.insert(b"m/layout", &99u64.to_be_bytes())
            .expect("marker");
        db.flush().expect("flush");
    }
    let refused = open(&path).expect_err("refused");
    assert!(refused.to_string().contains("layout 99"), "{refused}");
}
