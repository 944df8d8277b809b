//! The rolling window: a fixed ring of atomic buckets counting events per time slot.
//!
//! Time is cut into slots of `window / 10`. The ring keeps the current slot and the ten
//! before it, so an event younger than the window always counts and one older than
//! 1.1 × the window never does (the resolution brief §3 allows). Buckets are reset
//! lazily: each carries a tag naming the slot it counts, and a bucket whose tag is not
//! one of the eleven live slots reads as empty.
//!
//! The tag also carries the breaker generation that recorded it, so a transition clears
//! the window without touching it, and a straggler from an earlier generation can
//! neither count nor overwrite a newer bucket.
//!
//! Bucket layout: `generation (12) | lap (20) | count (32)`, where `lap = slot / 11`
//! (the ring position is `slot % 11`, so the lap tells slots at one position apart).
//!
//! A tag names its slot modulo 2^20 laps: 2^20 × 11 slots is 11 years with the
//! production 300 s window and 13 days with a 1 s one. A writer treats a bucket as
//! newer than its own event (and drops the event rather than destroy newer counts)
//! only when the bucket is a few generations or laps ahead, which a delayed writer can
//! be; anything further away is old and is reset. So a bucket idle for a long time is
//! never mistaken for a newer one, except when idle for exactly 2^20 − 1 or 2^20 − 2
//! laps within one generation.

use crate::sync::{AtomicU64, Ordering, fence};

/// Slots in one window length.
pub(crate) const SLOTS_PER_WINDOW: u64 = 10;
/// Ring length: the window's slots plus the one being filled.
const BUCKETS: usize = SLOTS_PER_WINDOW as usize + 1;
const RING: u64 = BUCKETS as u64;

const COUNT_MASK: u64 = u32::MAX as u64;
const LAP_SHIFT: u32 = 32;
const LAP_MASK: u64 = (1 << 20) - 1;
const GEN_SHIFT: u32 = 52;
const GEN_MASK: u64 = (1 << 12) - 1;
/// How far ahead a bucket may be, in generations or laps, and still be taken for newer
/// than a delayed writer's event. A writer is delayed only between reading the word and
/// the clock and its CAS here: a transition or two, a lap or two at the very most.
const NEAR_GENERATIONS: u64 = 16;
const NEAR_LAPS: u64 = 2;
const TAG_MASK: u64 = !COUNT_MASK;

/// A bucket saturates here; thresholds are validated not to exceed it.
pub(crate) const MAX_BUCKET_COUNT: u64 = COUNT_MASK;

pub(crate) struct Window {
    buckets: [AtomicU64; BUCKETS],
}

const fn tag(generation: u64, slot: u64) -> u64 {
    ((generation & GEN_MASK) << GEN_SHIFT) | (((slot / RING) & LAP_MASK) << LAP_SHIFT)
}

/// Whether the bucket's tag is a little later than `ours`: a newer generation, or the
/// same one and a later lap, within the distances a delayed writer can fall behind.
fn is_newer(bucket: u64, ours: u64) -> bool {
    let generation = |t: u64| (t >> GEN_SHIFT) & GEN_MASK;
    let lap = |t: u64| (t >> LAP_SHIFT) & LAP_MASK;
    if generation(bucket) != generation(ours) {
        let ahead = generation(bucket).wrapping_sub(generation(ours)) & GEN_MASK;
        ahead <= NEAR_GENERATIONS
    } else {
        let ahead = lap(bucket).wrapping_sub(lap(ours)) & LAP_MASK;
        ahead != 0 && ahead <= NEAR_LAPS
    }
}

impl Window {
    pub(crate) fn new() -> Window {
        Window {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Counts one event of `generation` in `slot`.
    pub(crate) fn record(&self, generation: u64, slot: u64) {
        let bucket = &self.buckets[(slot % RING) as usize];
        let ours = tag(generation, slot);
        // Ordering: Acquire pairs with the Release of the last writer of this bucket,
        // so a reset (new tag) is never applied over a count it did not see.
        let mut current = bucket.load(Ordering::Acquire);
        loop {
            let next = if current & TAG_MASK == ours {
                if current & COUNT_MASK == COUNT_MASK {
                    return; // saturated
                }
                current + 1
            } else if current & COUNT_MASK != 0 && is_newer(current & TAG_MASK, ours) {
                // A newer generation or lap owns the bucket: ours is a straggler that
                // falls outside every window a reader will ask about.
                return;
            } else {
                ours | 1
            };
            // Ordering: AcqRel; the count a concurrent `sum` must see is ordered by the
            // SeqCst fence the caller issues between recording and summing.
            match bucket.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    /// Counts one event in `slot`, then returns the window's total as of `now_slot()`,
    /// read after the event is recorded, and that slot. Of two calls that run concurrently, at least
    /// one sees the other's event.
    ///
    /// Two failures landing in different buckets form the store-buffering pattern: each
    /// writes its bucket, then reads the other's. With acquire/release alone both may
    /// read the other's bucket as it was, and neither would see the threshold reached.
    /// A SeqCst fence between the write and the reads orders the two calls: the one
    /// whose fence comes second sees both events. It must also sum up to the *current*
    /// slot, not its own: a caller that read the clock before a concurrent failure in a
    /// later slot would otherwise never look at that slot. (On x86 the fence is one
    /// `mfence`, on the failure path only.)
    pub(crate) fn record_then_sum(
        &self,
        generation: u64,
        slot: u64,
        now_slot: impl FnOnce() -> u64,
    ) -> (u64, u64) {
        self.record(generation, slot);
        // Ordering: SeqCst fence, pairs with the same fence in every other concurrent
        // `record_then_sum` of this window; see above. It also orders the clock read
        // after it behind the other caller's.
        fence(Ordering::SeqCst);
        let now_slot = now_slot().max(slot);
        (self.sum(generation, now_slot), now_slot)
    }

    /// Events of `generation` in the window that ends with `slot`.
    pub(crate) fn sum(&self, generation: u64, slot: u64) -> u64 {
        let mut total = 0;
        for age in 0..RING.min(slot + 1) {
            let s = slot - age;
            // Ordering: Acquire pairs with the AcqRel RMW in `record`; see
            // `record_then_sum` for why that alone is not enough.
            let bucket = self.buckets[(s % RING) as usize].load(Ordering::Acquire);
            if bucket & TAG_MASK == tag(generation, s) {
                total += bucket & COUNT_MASK;
            }
        }
        total
    }
}

impl std::fmt::Debug for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Window").finish_non_exhaustive()
    }
}
