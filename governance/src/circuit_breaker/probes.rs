//! Half-open probe slots: one lease per admitted probe, so a lost probe can expire.
//!
//! The state word counts probes in flight; these slots say *which* probes and since
//! when. A probe that is never settled keeps its count, but once its lease is older
//! than the probe deadline an admission attempt that finds every slot taken may take
//! the lease over. The lost probe's count passes to the new probe, and when the lost
//! probe settles at last its release fails (the lease is no longer its own), so it
//! frees nothing that a live probe holds and its outcome is ignored.
//!
//! Lease layout: `HELD (1) | generation (23) | admitted at, ms (40)`. A lease of another
//! generation is free: a transition releases every slot without touching them.

use crate::sync::{AtomicU64, Ordering};

const HELD: u64 = 1 << 63;
const GEN_SHIFT: u32 = 40;
const GEN_MASK: u64 = (1 << 23) - 1;
const MS_MASK: u64 = (1 << GEN_SHIFT) - 1;

/// A probe's claim on one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lease {
    pub(crate) slot: u32,
    pub(crate) value: u64,
}

pub(crate) struct ProbeSlots {
    slots: Box<[AtomicU64]>,
}

const fn lease_value(generation: u64, now_ms: u64) -> u64 {
    HELD | ((generation & GEN_MASK) << GEN_SHIFT) | (now_ms & MS_MASK)
}

const fn lease_generation(value: u64) -> u64 {
    (value >> GEN_SHIFT) & GEN_MASK
}

const fn is_held_by(value: u64, generation: u64) -> bool {
    value & HELD != 0 && lease_generation(value) == generation & GEN_MASK
}

/// Free for a claimer of `generation`: empty, or leased in an *earlier* generation
/// (compared with wrap-around). A lease of a later generation belongs to a live probe
/// and must survive a claimer that is itself a straggler.
const fn is_free_for(value: u64, generation: u64) -> bool {
    let behind = (generation & GEN_MASK).wrapping_sub(lease_generation(value)) & GEN_MASK;
    value & HELD == 0 || (behind != 0 && behind <= GEN_MASK / 2)
}

impl ProbeSlots {
    pub(crate) fn new(slots: u64) -> ProbeSlots {
        ProbeSlots {
            slots: (0..slots).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Claims a slot that no probe of `generation` holds. The caller has already counted
    /// itself in the state word, which guarantees one exists unless the generation has
    /// moved on; `None` means it has (or another claimer was faster: retry).
    pub(crate) fn claim_free(&self, generation: u64, now_ms: u64) -> Option<Lease> {
        let value = lease_value(generation, now_ms);
        for (slot, cell) in self.slots.iter().enumerate() {
            // Ordering: Acquire pairs with the AcqRel `release` of the previous holder,
            // so this probe is ordered after that probe's settlement.
            let current = cell.load(Ordering::Acquire);
            if !is_free_for(current, generation) {
                continue;
            }
            // Ordering: AcqRel. Acquire as above; Release publishes the lease to a
            // later `take_over_expired` that reads its admission time.
            if cell
                .compare_exchange(current, value, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Some(Lease {
                    slot: slot as u32,
                    value,
                });
            }
        }
        None
    }

    /// Takes over the lease of a probe of `generation` admitted at least `deadline_ms`
    /// before `now_ms`. The caller inherits that probe's place in the in-flight count.
    pub(crate) fn take_over_expired(
        &self,
        generation: u64,
        now_ms: u64,
        deadline_ms: u64,
    ) -> Option<Lease> {
        let value = lease_value(generation, now_ms);
        for (slot, cell) in self.slots.iter().enumerate() {
            // Ordering: Acquire pairs with the Release of the claim that wrote the lease.
            let current = cell.load(Ordering::Acquire);
            if !is_held_by(current, generation)
                || (current & MS_MASK) + deadline_ms > now_ms & MS_MASK
            {
                continue;
            }
            // Ordering: AcqRel; the CAS fails if the lost probe settled meanwhile (then
            // its slot is free and its count gone, and this caller retries admission).
            if cell
                .compare_exchange(current, value, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Some(Lease {
                    slot: slot as u32,
                    value,
                });
            }
        }
        None
    }

    /// Gives the slot back. `false` if the lease was taken over (or already released):
    /// the caller no longer owns a probe and must not touch the in-flight count.
    pub(crate) fn release(&self, lease: Lease) -> bool {
        // Ordering: AcqRel. Release orders this probe's work before the next claimer's
        // Acquire; Acquire makes a failed CAS see the taker's lease.
        self.slots[lease.slot as usize]
            .compare_exchange(lease.value, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Releases the oldest lease of `generation`, for the seed API, whose results carry
    /// no permit. `false` if no probe of that generation holds a slot.
    pub(crate) fn release_oldest(&self, generation: u64) -> bool {
        loop {
            let oldest = self
                .slots
                .iter()
                .enumerate()
                // Ordering: Acquire, as in `claim_free`.
                .map(|(slot, cell)| (slot, cell.load(Ordering::Acquire)))
                .filter(|&(_, value)| is_held_by(value, generation))
                .min_by_key(|&(_, value)| value & MS_MASK);
            let Some((slot, value)) = oldest else {
                return false;
            };
            if self.release(Lease {
                slot: slot as u32,
                value,
            }) {
                return true;
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }
}

impl std::fmt::Debug for ProbeSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeSlots")
            .field("slots", &self.slots.len())
            .finish()
    }
}
