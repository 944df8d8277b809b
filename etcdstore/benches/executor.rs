//! The executor end to end on the etcd engine, against a 3-member etcd cluster on
//! loopback, next to sled in the same run: `cargo bench -p etcdstore --bench executor`.
//!
//! - `etcd_throughput/queue_to_executed_500/etcd`: queue 500 disbursements
//!   (`queue_batch`, 100 per transaction), tick until all are Executed, on the store in
//!   etcd (a fresh prefix each time). Every store read is a round trip to the cluster.
//! - `etcd_throughput/queue_to_executed_500/sled`: the same on a durable sled store, for
//!   the ratio (both measured in this one run).
//!
//! Needs an etcd binary (`ETCD_BIN`, or `etcd` on `PATH`: `cargo xtask bench` installs
//! Debian's etcd-server when it is missing).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use etcdstore::{EtcdKeySpace, EtcdOptions};
use governance::testing::ScriptedLedger;
use governance::{
    CircuitBreaker, CircuitBreakerConfig, GovStore, NewDisbursement, TreasuryExecutor,
    TreasuryExecutorConfig,
};

const N: u64 = 500;

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

/// Queues, ticks until nothing is in flight; the time it took.
fn run(store: &GovStore) -> Duration {
    let breaker = Arc::new(CircuitBreaker::new(CircuitBreakerConfig::default()));
    let mut config = TreasuryExecutorConfig::new("bench");
    config.batch_size = 100;
    let mut executor = TreasuryExecutor::new(
        config,
        breaker,
        store.clone(),
        Arc::new(ScriptedLedger::default()),
    )
    .expect("executor");
    executor.tick().expect("idle tick");
    let began = Instant::now();
    let requests: Vec<NewDisbursement> = (0..N).map(request).collect();
    for batch in requests.chunks(100) {
        store.queue_batch(batch, 0).expect("queue");
    }
    store.flush().expect("flush");
    loop {
        executor.tick().expect("tick");
        if store.backlog().expect("backlog").total() == 0 {
            return began.elapsed();
        }
    }
}

fn throughput(c: &mut Criterion) {
    let etcd = etcdharness::Etcd::cluster(3).expect(
        "a 3-member etcd cluster (set ETCD_BIN or install Debian's etcd-server; `cargo xtask \
         bench` does)",
    );
    let next = AtomicU64::new(0);
    let mut group = c.benchmark_group("etcd_throughput");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30))
        .throughput(Throughput::Elements(N));
    for engine in ["etcd", "sled"] {
        group.bench_function(BenchmarkId::new("queue_to_executed_500", engine), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::TempDir::new().expect("tempdir");
                    let store = match engine {
                        "etcd" => {
                            let prefix = format!("/bench/{}/", next.fetch_add(1, Ordering::SeqCst));
                            let space =
                                EtcdKeySpace::connect(EtcdOptions::new(etcd.endpoints(), prefix))
                                    .expect("connect");
                            GovStore::with_space(Arc::new(space))
                        }
                        _ => GovStore::open(dir.path()).expect("sled"),
                    };
                    total += run(&store);
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
