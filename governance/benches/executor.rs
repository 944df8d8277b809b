//! The executor end to end on the store and the in-memory ledger:
//! `cargo bench -p governance --bench executor`.
//!
//! - `throughput/queue_to_executed_5000/sled`: queue 5,000 disbursements (`queue_batch`,
//!   500 per transaction, one flush), tick until all are Executed, on a durable sled
//!   store (the executor flushes before every hand-over). Criterion's time is per 5,000;
//!   its throughput line gives disbursements per second.
//! - `throughput/queue_to_executed_5000/memory`: the same on the in-memory engine: the
//!   ceiling of the store's own logic (and of the executor's), with no disk.
//! - `tick_100_ready/history_N`: one tick that stages, submits and records 100 ready
//!   disbursements, over a sled store already holding N executed ones (1k, 100k, 1M).

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use governance::testing::ScriptedLedger;
use governance::{
    CircuitBreaker, CircuitBreakerConfig, Disbursement, DisbursementStatus, GovStore,
    NewDisbursement, Stored, TreasuryExecutor, TreasuryExecutorConfig,
};
use tempfile::TempDir;

fn executor(store: &GovStore, batch: usize) -> TreasuryExecutor {
    let breaker = Arc::new(CircuitBreaker::new(CircuitBreakerConfig::default()));
    let mut config = TreasuryExecutorConfig::new("bench");
    config.batch_size = batch;
    TreasuryExecutor::new(
        config,
        breaker,
        store.clone(),
        Arc::new(ScriptedLedger::default()),
    )
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
        asset: "native".into(),
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
    for engine in ["sled", "memory"] {
        group.bench_function(BenchmarkId::new("queue_to_executed_5000", engine), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = TempDir::new().expect("tempdir");
                    let store = match engine {
                        "sled" => GovStore::open(dir.path()).expect("store"),
                        _ => GovStore::in_memory(),
                    };
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
    }
    group.finish();
}

/// Writes `n` executed disbursements straight into the records, as history.
fn history(store: &GovStore, n: u64) {
    let records = (0..n).map(|id| {
        let record = Disbursement {
            id,
            destination: format!("0x{id:040x}"),
            amount: 1_000,
            memo: "history".into(),
            activation_epoch: 0,
            depends_on: vec![],
            external_key: None,
            asset: "native".into(),
            status: DisbursementStatus::Executed {
                tx_hash: format!("0x{id:064x}"),
                block: id,
                resolution: None,
            },
            queued_at_ms: 0,
            approvals: vec![],
        };
        (id.to_be_bytes().to_vec(), record.to_bytes())
    });
    store
        .raw_insert_many("disbursements", records)
        .expect("history");
    store
        .raw_insert("meta", b"next_id", &n.to_be_bytes())
        .expect("next id");
    store.flush().expect("flush");
}

fn tick_over_history(c: &mut Criterion) {
    let mut group = c.benchmark_group("tick_100_ready");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for n in [1_000u64, 100_000, 1_000_000] {
        // Built on the benchmark's first run, so that a filter that leaves it out does
        // not pay for a million records of history.
        let mut state: Option<(TempDir, GovStore, TreasuryExecutor, u64)> = None;
        group.bench_with_input(BenchmarkId::new("history", n), &n, |b, &n| {
            let (_dir, store, executor, next) = state.get_or_insert_with(|| {
                let dir = TempDir::new().expect("tempdir");
                let store = GovStore::open(dir.path()).expect("store");
                history(&store, n);
                let executor = executor(&store, 100);
                (dir, store, executor, n)
            });
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    queue(store, *next, 100);
                    *next += 100;
                    let began = Instant::now();
                    let report = executor.tick().expect("tick");
                    total += began.elapsed();
                    assert_eq!(report.submitted, 100);
                    drain(executor); // records them executed, untimed
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, throughput, tick_over_history);
criterion_main!(benches);
