//! Half-open probe slots: one lease per admitted probe, so a lost probe can expire.
//!
//! The state word counts probes in flight; these slots say *which* probes and since
//! when. A probe that is never settled keeps its count, but once it is older than the
//! probe deadline an admission attempt that finds every slot taken may take its lease
//! over. The lost probe's count passes to the new probe, and when the lost probe
//! settles at last its release fails (the lease is no longer its own), so it frees
//! nothing that a live probe holds and its outcome is ignored.
//!
//! Each slot is two words. The lease: `HELD (1) | generation (23) | ticket (17)`, where
//! the ticket counts the slot's claims, so successive holders of one slot in one
//! generation have different leases. (Tickets wrap after 2^17 claims of one slot in one
//! half-open cycle; a probe lost across that many claims could then release a live
//! lease. A cycle ends after `success_threshold` successes or one failure, so only
//! some 131,072 ignored probes in one cycle could get there.) A lease of an earlier generation is free: a
//! transition releases every slot without touching them. And the admission time (ms),
//! which only ever moves forward and is written before the lease is claimed, so an
//! expiry check never sees a live probe as old.

use crate::sync::{AtomicU64, Ordering};

const HELD: u64 = 1 << 63;
const GEN_SHIFT: u32 = TICKET_BITS;
const GEN_MASK: u64 = (1 << 23) - 1;
/// Bits of the claim counter carried in a permit.
pub(crate) const TICKET_BITS: u32 = 17;
pub(crate) const TICKET_MASK: u64 = (1 << TICKET_BITS) - 1;

/// A probe's claim on one slot: enough, with the permit's generation, to rebuild the
/// exact lease value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lease {
    pub(crate) slot: u64,
    pub(crate) ticket: u64,
}

struct Slot {
    lease: AtomicU64,
    admitted_ms: AtomicU64,
}

pub(crate) struct ProbeSlots {
    slots: Box<[Slot]>,
}

const fn lease_value(generation: u64, ticket: u64) -> u64 {
    HELD | ((generation & GEN_MASK) << GEN_SHIFT) | (ticket & TICKET_MASK)
}

const fn lease_generation(value: u64) -> u64 {
    (value >> GEN_SHIFT) & GEN_MASK
}

const fn is_held_by(value: u64, generation: u64) -> bool {
    value & HELD != 0 && lease_generation(value) == generation & GEN_MASK
}

/// Free for a claimer of `generation`: released, or leased in an *earlier* generation
/// (compared with wrap-around). A lease of a later generation belongs to a live probe
/// and must survive a claimer that is itself a straggler.
const fn is_free_for(value: u64, generation: u64) -> bool {
    let behind = (generation & GEN_MASK).wrapping_sub(lease_generation(value)) & GEN_MASK;
    value & HELD == 0 || (behind != 0 && behind <= GEN_MASK / 2)
}

impl ProbeSlots {
    pub(crate) fn new(slots: u64) -> ProbeSlots {
        ProbeSlots {
            slots: (0..slots)
                .map(|_| Slot {
                    lease: AtomicU64::new(0),
                    admitted_ms: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    /// Claims `slot` from `current` for a probe of `generation` admitted at `now_ms`.
    pub(crate) fn claim(
        &self,
        slot: usize,
        current: u64,
        generation: u64,
        now_ms: u64,
    ) -> Option<Lease> {
        let cell = &self.slots[slot];
        let ticket = (current + 1) & TICKET_MASK;
        // Ordering: AcqRel, and before the claim: a concurrent expiry check that reads
        // the new lease (Acquire) then sees this time or a later one. `fetch_max` keeps
        // a straggling claimer from writing an older time over a live probe's.
        cell.admitted_ms.fetch_max(now_ms, Ordering::AcqRel);
        // Ordering: AcqRel. Acquire pairs with the previous holder's release; Release
        // publishes the admission time written above with the lease.
        cell.lease
            .compare_exchange(
                current,
                lease_value(generation, ticket),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .ok()
            .map(|_| Lease {
                slot: slot as u64,
                ticket,
            })
    }

    /// Claims a slot that no probe of `generation` holds. The caller has already counted
    /// itself in the state word, which guarantees one exists unless the generation has
    /// moved on; `None` means it has (or another claimer was faster: retry).
    pub(crate) fn claim_free(&self, generation: u64, now_ms: u64) -> Option<Lease> {
        (0..self.slots.len()).find_map(|slot| {
            // Ordering: Acquire pairs with the AcqRel release of the previous holder.
            let current = self.slots[slot].lease.load(Ordering::Acquire);
            if is_free_for(current, generation) {
                self.claim(slot, current, generation, now_ms)
            } else {
                None
            }
        })
    }

    /// Takes over the lease of a probe of `generation` admitted at least `deadline_ms`
    /// before `now_ms`. The caller inherits that probe's place in the in-flight count.
    pub(crate) fn take_over_expired(
        &self,
        generation: u64,
        now_ms: u64,
        deadline_ms: u64,
    ) -> Option<Lease> {
        (0..self.slots.len()).find_map(|slot| {
            let cell = &self.slots[slot];
            // Ordering: Acquire pairs with the claim's Release, so the admission time
            // read next is the holder's or later.
            let current = cell.lease.load(Ordering::Acquire);
            // Ordering: Acquire, pairs with the `fetch_max` in `claim`.
            let admitted_ms = cell.admitted_ms.load(Ordering::Acquire);
            if is_held_by(current, generation) && admitted_ms.saturating_add(deadline_ms) <= now_ms
            {
                // Fails if the lost probe settled or another caller took over first.
                self.claim(slot, current, generation, now_ms)
            } else {
                None
            }
        })
    }

    /// Gives the slot back. `false` if the lease was taken over (or already released):
    /// the caller no longer owns a probe and must not touch the in-flight count.
    pub(crate) fn release(&self, generation: u64, lease: Lease) -> bool {
        let held = lease_value(generation, lease.ticket);
        // Ordering: AcqRel. Release orders this probe's work before the next claimer's
        // Acquire; Acquire makes a failed CAS see the taker's lease. The ticket stays,
        // so the next claim of this slot gets a new one.
        self.slots[lease.slot as usize]
            .lease
            .compare_exchange(
                held,
                held & TICKET_MASK,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
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
                .filter_map(|(slot, cell)| {
                    // Ordering: Acquire, as in `take_over_expired`.
                    let lease = cell.lease.load(Ordering::Acquire);
                    let admitted_ms = cell.admitted_ms.load(Ordering::Acquire);
                    is_held_by(lease, generation).then_some((slot, lease, admitted_ms))
                })
                .min_by_key(|&(_, _, admitted_ms)| admitted_ms);
            let Some((slot, lease, _)) = oldest else {
                return false;
            };
            let lease = Lease {
                slot: slot as u64,
                ticket: lease & TICKET_MASK,
            };
            if self.release(generation, lease) {
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
