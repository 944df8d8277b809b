//! What the drill queues: disbursement `i` pays a fresh address of its own an amount of
//! its own, so that a balance on the chain says which disbursement paid it and how often.

pub(super) fn destination(i: u64) -> String {
    format!("0x{:040x}", 0xc4a0_5000_0000_0000_u64 + i)
}

pub(super) fn amount(i: u64) -> u128 {
    1_000_000_000_000_000 + 7_919 * u128::from(i) + 1
}

/// The first `n` disbursements' destinations and amounts: what the chain is checked
/// against.
pub(super) fn expected(n: u64) -> Vec<(String, u128)> {
    (0..n).map(|i| (destination(i), amount(i))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_and_amounts_are_distinct() {
        let destinations: std::collections::HashSet<String> = (0..1000).map(destination).collect();
        let amounts: std::collections::HashSet<u128> = (0..1000).map(amount).collect();
        assert_eq!((destinations.len(), amounts.len()), (1000, 1000));
        assert!(destinations.iter().all(|d| d.len() == 42));
    }
}
