//! Time for the breaker: `Clock`, the production `MonotonicClock` and the test `ManualClock`.

use std::any::Any;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::sync::{Arc, AtomicU64, Ordering};

/// A source of time for a [`CircuitBreaker`](super::CircuitBreaker).
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Time since an arbitrary fixed origin. Must never go backwards.
    fn now(&self) -> Duration;

    /// Wall-clock time, used only to persist when the breaker opened (a monotonic
    /// reading means nothing after a restart).
    fn wall_now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The production clock: the system's monotonic clock.
///
/// On Linux it reads `CLOCK_MONOTONIC_COARSE`, which the vDSO serves from memory in a
/// few nanoseconds (`Instant::now()` costs ~40 ns on the CI machine) at the price of
/// the scheduler tick's resolution (1–4 ms), far finer than any breaker timeout. That
/// lets a rejection while open check the deadline on every call and stay exact.
#[derive(Debug, Clone, Copy, Default)]
pub struct MonotonicClock;

impl Clock for MonotonicClock {
    #[inline]
    fn now(&self) -> Duration {
        Duration::from_nanos(monotonic_nanos())
    }
}

#[cfg(target_os = "linux")]
#[inline]
#[allow(unsafe_code)]
fn monotonic_nanos() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC_COARSE exists on every
    // Linux since 2.6.32 and clock_gettime cannot fail for it with a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    debug_assert_eq!(rc, 0);
    // Both fields are non-negative for a monotonic clock; 2^64 ns is 584 years of uptime.
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

#[cfg(not(target_os = "linux"))]
fn monotonic_nanos() -> u64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    u64::try_from(ORIGIN.get_or_init(Instant::now).elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// A clock that moves only when told to. Clones share one time, so a test keeps a
/// handle and advances the breaker's clock from outside.
///
/// Its wall clock starts at 2023-11-14T22:13:20Z and advances with it.
///
/// ```
/// use std::time::Duration;
/// use governance::{CircuitBreaker, CircuitBreakerConfig, CircuitState, ManualClock};
///
/// let clock = ManualClock::new();
/// let breaker = CircuitBreaker::with_clock(CircuitBreakerConfig::default(), clock.clone());
/// for _ in 0..5 {
///     breaker.record_failure();
/// }
/// assert_eq!(breaker.state(), CircuitState::Open);
/// clock.advance(Duration::from_secs(60));
/// assert!(breaker.allow_request()); // the first call after the timeout is a probe
/// assert_eq!(breaker.state(), CircuitState::HalfOpen);
/// ```
#[derive(Clone)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

const MANUAL_WALL_ORIGIN: Duration = Duration::from_secs(1_700_000_000);

impl ManualClock {
    /// A clock at time zero.
    pub fn new() -> ManualClock {
        ManualClock {
            nanos: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Moves every clone of this clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // Ordering: Release pairs with the Acquire in `now`: a breaker that reads the new
        // time also sees what the test did before advancing it. Saturates rather than
        // wrapping, so time never goes backwards.
        let _ = self
            .nanos
            .fetch_update(Ordering::Release, Ordering::Relaxed, |t| {
                Some(t.saturating_add(by))
            });
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualClock").field(&self.now()).finish()
    }
}

impl Clock for ManualClock {
    #[inline]
    fn now(&self) -> Duration {
        // Ordering: Acquire, pairs with the Release in `advance`.
        Duration::from_nanos(self.nanos.load(Ordering::Acquire))
    }

    fn wall_now(&self) -> SystemTime {
        UNIX_EPOCH + MANUAL_WALL_ORIGIN + self.now()
    }
}

/// The clock a breaker holds: the two built-in clocks are called directly (the open
/// state's rejection reads the clock on every call), any other through a vtable.
pub(crate) enum ClockHandle {
    Monotonic,
    Manual(ManualClock),
    Other(Box<dyn Clock>),
}

impl ClockHandle {
    pub(crate) fn new<C: Clock>(clock: C) -> ClockHandle {
        let any: &dyn Any = &clock;
        if any.is::<MonotonicClock>() {
            ClockHandle::Monotonic
        } else if let Some(manual) = any.downcast_ref::<ManualClock>() {
            ClockHandle::Manual(manual.clone())
        } else {
            ClockHandle::Other(Box::new(clock))
        }
    }

    /// Nanoseconds since the clock's origin.
    #[inline]
    pub(crate) fn now_nanos(&self) -> u64 {
        match self {
            ClockHandle::Monotonic => monotonic_nanos(),
            // Ordering: Acquire, pairs with the Release in `ManualClock::advance`.
            ClockHandle::Manual(clock) => clock.nanos.load(Ordering::Acquire),
            ClockHandle::Other(clock) => u64::try_from(clock.now().as_nanos()).unwrap_or(u64::MAX),
        }
    }

    pub(crate) fn wall_now(&self) -> SystemTime {
        match self {
            ClockHandle::Monotonic => MonotonicClock.wall_now(),
            ClockHandle::Manual(clock) => clock.wall_now(),
            ClockHandle::Other(clock) => clock.wall_now(),
        }
    }
}

impl fmt::Debug for ClockHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClockHandle::Monotonic => MonotonicClock.fmt(f),
            ClockHandle::Manual(clock) => clock.fmt(f),
            ClockHandle::Other(clock) => clock.fmt(f),
        }
    }
}
