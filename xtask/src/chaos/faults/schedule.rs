//! The fault schedule: which fault comes next and after how long, in rounds (every
//! enabled kind once per round, in a seeded order), a function of the seed alone.

use std::time::Duration;

use super::FAULT_STREAM;
use super::action::Action;
use super::kinds::{Faults, Kind};
use super::{fees, reorgs, stale};
use crate::chaos::rng::Rng;

/// A fault every this many milliseconds, at random.
const FAULT_EVERY_MS: (u64, u64) = (1_000, 4_000);

/// The faults to inject, each with the wait before it: a function of the seed and the
/// enabled kinds only, so that `--seed` replays it.
pub(in crate::chaos) struct Schedule {
    rng: Rng,
    kinds: Vec<Kind>,
    /// What is left of this round, drawn from the end.
    round: Vec<Kind>,
}

impl Schedule {
    pub(in crate::chaos) fn new(seed: u64, faults: Faults) -> Schedule {
        Schedule {
            rng: Rng::new(seed ^ FAULT_STREAM),
            kinds: faults.kinds(),
            round: vec![],
        }
    }

    /// The next fault and how long to wait before it; `None` when no fault is enabled.
    pub(super) fn next_fault(&mut self) -> Option<(Duration, Action)> {
        if self.kinds.is_empty() {
            return None;
        }
        if self.round.is_empty() {
            // A new round: every enabled kind once, shuffled (Fisher–Yates).
            self.round.clone_from(&self.kinds);
            for i in (1..self.round.len()).rev() {
                let j = self.rng.between(0, i as u64) as usize;
                self.round.swap(i, j);
            }
        }
        let kind = self.round.pop()?;
        // The wait is drawn first, then the fault's parameters: `--seed` replays both.
        let wait = Duration::from_millis(self.rng.between(FAULT_EVERY_MS.0, FAULT_EVERY_MS.1));
        let rng = &mut self.rng;
        let action = match kind {
            Kind::Drops => Action::DropAll,
            Kind::Fees => fees::draw(rng),
            Kind::Reorgs => reorgs::draw(rng),
            Kind::Stale => stale::draw(rng),
        };
        Some((wait, action))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::faults::fees::GWEI;

    fn schedule(seed: u64, faults: Faults, n: usize) -> Vec<(Duration, Action)> {
        let mut schedule = Schedule::new(seed, faults);
        (0..n).map_while(|_| schedule.next_fault()).collect()
    }

    #[test]
    fn the_fault_schedule_is_a_function_of_the_seed() {
        assert_eq!(schedule(7, Faults::ALL, 400), schedule(7, Faults::ALL, 400));
        assert_ne!(schedule(7, Faults::ALL, 40), schedule(8, Faults::ALL, 40));
        assert!(schedule(7, Faults::NONE, 10).is_empty());
        let only = Faults::parse("reorgs,stale").expect("faults");
        let faults = schedule(3, only, 400);
        assert_eq!(faults.len(), 400);
        assert!(faults.iter().all(|(_, a)| only.kinds().contains(&a.kind())));
        for (wait, action) in schedule(11, Faults::ALL, 2_000) {
            assert!(
                (1_000..=4_000).contains(&(wait.as_millis() as u64)),
                "{wait:?}"
            );
            match action {
                Action::DropAll => {}
                Action::Spike { blocks, base_fee } => {
                    assert!((3..=8).contains(&blocks));
                    assert!((20 * GWEI..=80 * GWEI).contains(&base_fee));
                    assert_eq!(base_fee % GWEI, 0);
                }
                Action::Reorg { depth } => assert!((1..=2).contains(&depth)),
                Action::Stale { lasting } => {
                    assert!((2_000..=8_000).contains(&(lasting.as_millis() as u64)));
                }
            }
        }
    }

    #[test]
    fn every_round_holds_each_enabled_fault_once() {
        let faults = schedule(42, Faults::ALL, 400);
        for round in faults.chunks(4) {
            let mut kinds: Vec<usize> = round.iter().map(|(_, a)| a.kind().index()).collect();
            kinds.sort_unstable();
            assert_eq!(kinds, [0, 1, 2, 3], "{round:?}");
        }
        // And the order varies from round to round.
        let orders: std::collections::HashSet<Vec<usize>> = faults
            .chunks(4)
            .map(|r| r.iter().map(|(_, a)| a.kind().index()).collect())
            .collect();
        assert!(orders.len() > 5, "{orders:?}");
    }
}
