//! The breaker's hot paths, measured in one run so their ratios are comparable:
//! `cargo bench -p governance --bench circuit_breaker` (or `cargo xtask bench`).
//!
//! Every breaker here runs on the production `MonotonicClock`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use governance::{CircuitBreaker, CircuitBreakerConfig};

/// Admits one call and records its success. A rejection cannot happen on these closed
/// breakers; each bench checks the state afterwards rather than branching to a panic
/// in the loop.
#[inline(always)]
fn closed_success(breaker: &CircuitBreaker) {
    if let Ok(permit) = breaker.try_acquire() {
        permit.success();
    }
}

/// Runs `f` `iters` times on this thread and on a second one at once; returns this
/// thread's time.
fn on_two_threads<T, F>(shared: &Arc<T>, iters: u64, f: F) -> Duration
where
    T: Send + Sync + 'static,
    F: Fn(&T) + Copy + Send + 'static,
{
    let start = Arc::new(Barrier::new(2));
    let other = {
        let (shared, start) = (Arc::clone(shared), Arc::clone(&start));
        thread::spawn(move || {
            start.wait();
            for _ in 0..iters {
                f(&shared);
            }
        })
    };
    start.wait();
    let began = Instant::now();
    for _ in 0..iters {
        f(shared);
    }
    let elapsed = began.elapsed();
    other.join().expect("second bench thread");
    elapsed
}

/// Like `on_two_threads`, but each thread gets its own element of `pair`.
fn on_two_threads_each<T, F>(pair: &Arc<[T; 2]>, iters: u64, f: F) -> Duration
where
    T: Send + Sync + 'static,
    F: Fn(&T) + Copy + Send + 'static,
{
    let start = Arc::new(Barrier::new(2));
    let other = {
        let (pair, start) = (Arc::clone(pair), Arc::clone(&start));
        thread::spawn(move || {
            start.wait();
            for _ in 0..iters {
                f(&pair[1]);
            }
        })
    };
    start.wait();
    let began = Instant::now();
    for _ in 0..iters {
        f(&pair[0]);
    }
    let elapsed = began.elapsed();
    other.join().expect("second bench thread");
    elapsed
}

// The closures around `closed_success` are deliberate: passed as a fn item, it reached
// the loops through an `Fn::call` shim that was not inlined (one call per iteration).
#[allow(clippy::redundant_closure)]
fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("circuit_breaker");

    // The floor: one atomic byte load, what a breaker that only reads its state costs.
    let floor = AtomicU8::new(0);
    group.bench_function("atomic_u8_load_floor", |b| {
        b.iter(|| floor.load(Ordering::Acquire))
    });

    let breaker = CircuitBreaker::new(CircuitBreakerConfig::default());
    group.bench_function("closed_acquire_success", |b| {
        b.iter(|| closed_success(&breaker))
    });

    // Two threads share one breaker; the figure is per call per thread. The floor is
    // measured the same way, so the ratio shows what sharing costs (nothing, if the
    // closed path writes nothing) apart from what two busy cores cost on this host.
    let shared_floor = Arc::new(AtomicU8::new(0));
    group.bench_function("atomic_u8_load_floor_2_threads", |b| {
        b.iter_custom(|iters| {
            on_two_threads(&shared_floor, iters, |floor| {
                black_box(floor.load(Ordering::Acquire));
            })
        })
    });
    let shared = Arc::new(CircuitBreaker::new(CircuitBreakerConfig::default()));
    group.bench_function("closed_acquire_success_2_threads", |b| {
        b.iter_custom(|iters| on_two_threads(&shared, iters, |b| closed_success(b)))
    });
    // The control: two threads, one breaker each. Equal to the shared figure when the
    // shared breaker costs nothing over two busy cores.
    let pair = Arc::new([
        CircuitBreaker::new(CircuitBreakerConfig::default()),
        CircuitBreaker::new(CircuitBreakerConfig::default()),
    ]);
    group.bench_function("closed_acquire_success_2_threads_unshared", |b| {
        b.iter_custom(|iters| on_two_threads_each(&pair, iters, |b| closed_success(b)))
    });

    let open = CircuitBreaker::new(CircuitBreakerConfig::default());
    for _ in 0..5 {
        open.try_acquire().expect("closed").failure();
    }
    group.bench_function("open_reject", |b| b.iter(|| open.try_acquire().is_err()));

    // Every tenth call fails; the threshold is out of reach so it never trips.
    let flaky = CircuitBreaker::new(CircuitBreakerConfig {
        failure_threshold: u64::from(u32::MAX),
        ..Default::default()
    });
    let mut call = 0u32;
    group.bench_function("closed_10pct_failures", |b| {
        b.iter(|| {
            call = call.wrapping_add(1);
            match flaky.try_acquire() {
                Ok(permit) if call.is_multiple_of(10) => permit.failure(),
                Ok(permit) => permit.success(),
                Err(rejected) => panic!("tripped: {rejected}"),
            }
        })
    });
    assert_eq!(flaky.state(), governance::CircuitState::Closed);

    group.finish();
}

/// Short but stable: the paths measured take nanoseconds.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! {
    name = circuit_breaker;
    config = config();
    targets = benches
}
criterion_main!(circuit_breaker);
