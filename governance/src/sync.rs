//! The atomics the crate is allowed to use: `std`'s normally, loom's under `cfg(loom)`.
//!
//! Every atomic in the crate comes through here, so `RUSTFLAGS="--cfg loom"` swaps
//! all of them at once and loom can explore the breaker's interleavings (the same
//! arrangement as tokio's `src/loom/`).

#[cfg(loom)]
pub(crate) use loom::sync::Arc;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering, fence};

#[cfg(not(loom))]
pub(crate) use std::sync::Arc;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering, fence};

/// A busy-wait hint. Under loom it yields, so that a model with a spinning thread lets
/// the others run instead of exploring the spin forever.
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}
