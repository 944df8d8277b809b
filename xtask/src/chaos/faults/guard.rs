//! The reorg-depth guard: no reorg ever drops a block that has already been
//! `confirmations` deep, however the head moved before.

/// Keeps reorgs from dropping a block that has already been `confirmations` deep (the tip
/// counted as 1), whatever happened before: it remembers the highest head it has seen, so
/// the protection is cumulative over every block mined and every reorg made, and it would
/// hold even if the head went down. A reorg is also never deeper than `confirmations - 1`.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReorgGuard {
    confirmations: u64,
    highest_head: u64,
}

impl ReorgGuard {
    pub(super) fn new(confirmations: u64) -> ReorgGuard {
        ReorgGuard {
            confirmations: confirmations.max(1),
            highest_head: 0,
        }
    }

    /// The chain's head was seen at `head`.
    pub(super) fn observe(&mut self, head: u64) {
        self.highest_head = self.highest_head.max(head);
    }

    /// The highest block that has ever been `confirmations` deep: it and every block below
    /// stay. (Block 0 always stays: before anything is that deep, this is 0.)
    pub(super) fn protected(&self) -> u64 {
        self.highest_head.saturating_sub(self.confirmations - 1)
    }

    /// How deep a reorg asked to be `requested` deep at `head` may go: it replaces blocks
    /// `head - depth + 1 ..= head`, all above [`protected`](Self::protected). 0: none.
    pub(super) fn allowed(&mut self, head: u64, requested: u64) -> u64 {
        self.observe(head);
        requested
            .min(self.confirmations - 1)
            .min(head.saturating_sub(self.protected()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::faults::CONFIRMATIONS;
    use crate::chaos::rng::Rng;

    #[test]
    fn the_guard_limits_depth_and_keeps_deep_blocks() {
        let mut guard = ReorgGuard::new(3);
        assert_eq!(guard.allowed(0, 2), 0, "genesis stays");
        assert_eq!(guard.allowed(1, 2), 1, "only block 1 can go");
        assert_eq!(guard.allowed(2, 2), 2);
        assert_eq!(
            guard.allowed(10, 5),
            2,
            "never deeper than confirmations - 1"
        );
        assert_eq!(guard.protected(), 8, "block 8 was 3 deep at head 10");
        // Had the head gone down, the blocks that were deep stay.
        assert_eq!(guard.allowed(9, 2), 1);
        assert_eq!(guard.allowed(8, 2), 0);
        assert_eq!(
            ReorgGuard::new(1).allowed(10, 2),
            0,
            "1 confirmation: no reorg at all"
        );
    }

    /// A model chain: blocks by id; random mining, reorgs (and, to test the cumulative
    /// rule, rollbacks that lower the head) through the guard. No block that has ever been
    /// 3 deep is ever dropped, and reorgs do happen.
    #[test]
    fn no_block_that_was_three_deep_is_ever_dropped() {
        for seed in 0..200 {
            let mut rng = Rng::new(seed);
            let mut guard = ReorgGuard::new(CONFIRMATIONS);
            // chain[height] = block id; deepest[id] = the most confirmations it ever had.
            let mut chain: Vec<usize> = vec![0];
            let mut deepest: Vec<u64> = vec![1];
            let mut reorgs = 0;
            let record = |chain: &[usize], deepest: &mut Vec<u64>| {
                let head = chain.len() - 1;
                for (height, &id) in chain.iter().enumerate() {
                    deepest[id] = deepest[id].max((head - height + 1) as u64);
                }
            };
            for _ in 0..300 {
                let head = (chain.len() - 1) as u64;
                match rng.between(0, 9) {
                    0..=4 => {
                        deepest.push(0);
                        chain.push(deepest.len() - 1);
                        guard.observe(chain.len() as u64 - 1);
                    }
                    5..=8 => {
                        let depth = guard.allowed(head, rng.between(1, 4));
                        assert!(depth < CONFIRMATIONS);
                        let from = chain.len() - depth as usize;
                        for (height, block) in chain.iter_mut().enumerate().skip(from) {
                            assert!(
                                deepest[*block] < CONFIRMATIONS,
                                "seed {seed}: block {block} at height {height} was {} deep",
                                deepest[*block]
                            );
                            deepest.push(0);
                            *block = deepest.len() - 1;
                        }
                        reorgs += u64::from(depth > 0);
                    }
                    _ => {
                        // A rollback that the drill never makes: the guard must hold anyway.
                        if chain.len() > 1 {
                            let depth = guard.allowed(head, 1) as usize;
                            for &id in &chain[chain.len() - depth..] {
                                assert!(deepest[id] < CONFIRMATIONS, "seed {seed}: rollback");
                            }
                            chain.truncate(chain.len() - depth);
                        }
                    }
                }
                record(&chain, &mut deepest);
            }
            assert!(reorgs > 10, "seed {seed}: {reorgs} reorgs");
        }
    }
}
