//! No breaker call allocates: a counting global allocator watches every public call
//! after construction, in every state.
#![cfg(not(loom))]
// A global allocator is an `unsafe impl`; it only forwards to `System` and counts.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

thread_local! {
    /// Counts only on the thread that armed it, so the test harness's own threads
    /// cannot disturb the figure.
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every method forwards to `System` unchanged; the counting touches only
// const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations_in(f: impl FnOnce()) -> usize {
    COUNT.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    f();
    ARMED.with(|a| a.set(false));
    COUNT.with(Cell::get)
}

mod circuit_breaker {
    use std::time::Duration;

    use governance::{CircuitBreaker, CircuitBreakerConfig, FailureRatePolicy, ManualClock};

    use super::*;

    fn exercise(breaker: &CircuitBreaker, clock: &ManualClock) {
        for _ in 0..3 {
            // closed: successes, ignores, failures up to a trip
            for _ in 0..100 {
                breaker.try_acquire().expect("closed").success();
                breaker.try_acquire().expect("closed").ignore();
                drop(breaker.try_acquire().expect("closed"));
            }
            for _ in 0..5 {
                breaker.try_acquire().expect("closed").failure();
            }
            // open: rejections, status reads, a snapshot and a restore
            for _ in 0..100 {
                assert!(breaker.try_acquire().is_err());
            }
            let _ = (
                breaker.state(),
                breaker.failure_count(),
                breaker.open_remaining(),
            );
            let snapshot = breaker.snapshot();
            breaker.restore(&snapshot);
            // half-open: probes up to the cap, a rejection, a lost probe taken over
            clock.advance(breaker.open_remaining().expect("open"));
            let first = breaker.try_acquire().expect("probe");
            assert!(breaker.allow_request());
            assert!(breaker.try_acquire().is_err());
            clock.advance(Duration::from_secs(30));
            let replacement = breaker.try_acquire().expect("takes over the lost probe");
            first.success();
            replacement.success();
            breaker.record_success(); // the second success: closed again
            for _ in 0..5 {
                breaker.record_failure();
            }
            clock.advance(breaker.open_remaining().expect("reopened"));
            assert!(breaker.allow_request());
            breaker.record_success();
            breaker.record_success();
            // operators
            breaker.force_open();
            breaker.force_close();
            breaker.record_failure();
            breaker.reset();
        }
    }

    #[test]
    fn no_call_allocates() {
        for config in [
            CircuitBreakerConfig::default(),
            CircuitBreakerConfig {
                failure_rate: Some(FailureRatePolicy {
                    threshold: 0.9,
                    minimum_calls: 1_000,
                }),
                backoff_multiplier: 2.0,
                backoff_jitter: 0.1,
                ..Default::default()
            },
        ] {
            let clock = ManualClock::new();
            let breaker = CircuitBreaker::with_clock(config, clock.clone());
            let transitions = std::sync::Arc::new(AtomicUsize::new(0));
            let counter = std::sync::Arc::clone(&transitions);
            breaker
                .set_listener(move |_| {
                    counter.fetch_add(1, Ordering::Relaxed);
                })
                .expect("listener");
            let allocations = allocations_in(|| exercise(&breaker, &clock));
            assert_eq!(allocations, 0);
            assert!(
                transitions.load(Ordering::Relaxed) >= 20,
                "the exercise did transition"
            );
        }
    }

    /// The counter itself works: otherwise the test above could not fail.
    #[test]
    fn the_counter_sees_allocations() {
        assert!(allocations_in(|| drop(std::hint::black_box(vec![1u8; 64]))) >= 1);
    }
}
