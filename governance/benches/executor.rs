//! The executor end to end on a durable sled store and the in-memory ledger:
//! `cargo bench -p governance --bench executor`.
//!
//! - `throughput/queue_to_executed_5000`: queue 5,000 disbursements (`queue_batch`, 500
//!   per transaction, one flush), tick
//!   until all are Executed. Criterion's time is per 5,000; its throughput line gives
//!   disbursements per second.
//! - `tick_100_ready/history_N`: one tick that stages, submits and records 100 ready
//!   disbursements, over a store already holding N executed ones (1k, 100k, 1M).

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use governance::testing::ScriptedLedger;
use governance::{
    CircuitBreaker, CircuitBreakerConfig, Disbursement, DisbursementStatus, GovStore,
    NewDisbursement, TreasuryExecutor, TreasuryExecutorConfig,
};
use tempfile::TempDir;

fn executor(store: &GovStore, batch: usize) -> TreasuryExecutor {
    let breaker = Arc::new(CircuitBreaker::new(CircuitBreakerConfig::default()));
    let mut config = TreasuryExecutorConfig::new("bench", breaker);
    config.batch_size = batch;
    TreasuryExecutor::new(config, store.clone(), Arc::new(ScriptedLedger::default()))
        .expect("executor")
}

fn request(i: u64) -> NewDisbursement {
    NewDisbursement {
        destination: format!("0x{i:040x}"),
        amount: 1_000 + u128::from(i),
        memo: "grant".into(),
        activation_epoch: 0,
        depends_on: vec![],
        external_key: None,
    }
}

/// Queues `n` disbursements in batches of up to 500 (one transaction each), then flushes.
fn queue(store: &GovStore, from: u64, n: u64) {
    let requests: Vec<NewDisbursement> = (from..from + n).map(request).collect();
    for batch in requests.chunks(500) {
        store.queue_batch(batch, 0).expect("queue");
    }
    store.flush().expect("flush");
}

/// Ticks until nothing is in flight.
fn drain(executor: &mut TreasuryExecutor) {
    loop {
        executor.tick().expect("tick");
        let b = executor.store().backlog().expect("backlog");
        if b.total() == 0 {
            return;
        }
    }
}

fn throughput(c: &mut Criterion) {
    const N: u64 = 5_000;
    let mut group = c.benchmark_group("throughput");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(N));
    group.bench_function("queue_to_executed_5000", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = TempDir::new().expect("tempdir");
                let store = GovStore::open(dir.path()).expect("store");
                let mut executor = executor(&store, 500);
                executor.tick().expect("idle tick"); // a running node has seen the epoch
                let began = Instant::now();
                queue(&store, 0, N);
                drain(&mut executor);
                total += began.elapsed();
            }
            total
        })
    });
    group.finish();
}

/// Writes `n` executed disbursements straight into the records tree, as history.
fn history(store: &GovStore, n: u64) {
    let tree = store.raw_tree("disbursements").expect("tree");
    let mut batch = sled::Batch::default();
    for id in 0..n {
        let record = Disbursement {
            id,
            destination: format!("0x{id:040x}"),
            amount: 1_000,
            memo: "history".into(),
            activation_epoch: 0,
            depends_on: vec![],
            external_key: None,
            status: DisbursementStatus::Executed {
                tx_hash: format!("0x{id:064x}"),
                block: id,
                resolution: None,
            },
            queued_at_ms: 0,
        };
        batch.insert(
            &id.to_be_bytes(),
            serde_json::to_vec(&record).expect("json"),
        );
        if id % 50_000 == 49_999 {
            tree.apply_batch(std::mem::take(&mut batch))
                .expect("history");
        }
    }
    tree.apply_batch(batch).expect("history");
    store
        .raw_tree("meta")
        .expect("meta")
        .insert(b"next_id", &n.to_be_bytes())
        .expect("next id");
    store.flush().expect("flush");
}

fn tick_over_history(c: &mut Criterion) {
    let mut group = c.benchmark_group("tick_100_ready");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for n in [1_000u64, 100_000, 1_000_000] {
        let dir = TempDir::new().expect("tempdir");
        let store = GovStore::open(dir.path()).expect("store");
        history(&store, n);
        let mut executor = executor(&store, 100);
        let mut next = n;
        group.bench_with_input(BenchmarkId::new("history", n), &n, |b, _| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    queue(&store, next, 100);
                    next += 100;
                    let began = Instant::now();
                    let report = executor.tick().expect("tick");
                    total += began.elapsed();
                    assert_eq!(report.submitted, 100);
                    drain(&mut executor); // records them executed, untimed
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, throughput, tick_over_history);
criterion_main!(benches);
