//! The spending policy: limits per asset, a destination allow-list and an M-of-N rule for
//! large disbursements, enforced by the store where disbursements are queued and made
//! payable, and again where the executor signs.
//!
//! - **At queue time** ([`Policy::check_queue`]): a disbursement over `max_amount`, one
//!   that would take the rolling 24 hours' spend of its asset over `daily_limit`, or one
//!   to a destination not on the allow-list is refused; nothing is stored.
//! - **Approvals** ([`Policy::approvals_needed`]): one at or above its asset's
//!   `approval_threshold` needs `approvals_required` approvals from distinct names (the
//!   operator who queued it gives the first). Until it has them it is `awaiting_approval`
//!   and is never indexed as payable.
//! - **At signing** ([`Policy::check_sign`]): the policy in force now, not the one it was
//!   queued under, decides. A ready disbursement that fails it is not signed: it goes back
//!   to `awaiting_approval` if it lacks approvals, or is held (still queued, off the ready
//!   index) if it is over `max_amount` or its destination is not allowed, until a policy
//!   that allows it is in force or an operator cancels it. An intent already signed is
//!   never unsigned: the binding rule comes first.
//!
//! The default policy allows everything and needs one approval: a store without one
//! behaves as before.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::treasury::Disbursement;

/// The ledger's own coin, as an asset: what a disbursement pays unless it names a token.
pub const NATIVE: &str = "native";

/// The span of the daily limit.
pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// The spend window's granularity: spends are counted per hour, and an hour's spend stops
/// counting when the whole hour is more than 24 hours old. The window is therefore
/// between 24 and 25 hours long: never shorter than a day, so it never lets more than the
/// limit through in any 24 hours.
pub const SPEND_BUCKET_MS: u64 = 60 * 60 * 1000;

/// Limits for one asset, in its smallest unit. `None`: no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AssetLimits {
    /// The most one disbursement may pay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_amount: Option<u128>,
    /// The most the disbursements queued in a rolling 24 hours (not cancelled) may pay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_limit: Option<u128>,
    /// Disbursements at or above this need [`Policy::approvals_required`] approvals.
    /// `None`: every disbursement of the asset does (when more than one is required).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_threshold: Option<u128>,
}

/// An allow-list of destinations, and where it was read from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Destinations {
    set: BTreeSet<String>,
}

impl Destinations {
    /// An allow-list of these destinations.
    pub fn new<I, S>(destinations: I) -> Destinations
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Destinations {
            set: destinations
                .into_iter()
                .map(|d| normalize(d.as_ref()))
                .collect(),
        }
    }

    /// Parses an allow-list file: one destination per line; blank lines and lines
    /// starting with `#` are ignored, as is whatever follows a `#` on a line. An error
    /// names the line.
    pub fn parse(text: &str) -> Result<Destinations, String> {
        let mut set = BTreeSet::new();
        for (number, line) in text.lines().enumerate() {
            let entry = line.split('#').next().unwrap_or_default().trim();
            if entry.is_empty() {
                continue;
            }
            if entry.split_whitespace().nth(1).is_some() {
                return Err(format!(
                    "line {}: one destination per line, found `{}`",
                    number + 1,
                    crate::text::bounded(entry, 80)
                ));
            }
            if entry.len() > crate::treasury::MAX_DESTINATION_BYTES {
                return Err(format!(
                    "line {}: a destination of {} bytes, more than {}",
                    number + 1,
                    entry.len(),
                    crate::treasury::MAX_DESTINATION_BYTES
                ));
            }
            set.insert(normalize(entry));
        }
        Ok(Destinations { set })
    }

    /// Whether `destination` is on the list.
    pub fn allows(&self, destination: &str) -> bool {
        self.set.contains(&normalize(destination))
    }

    /// How many destinations the list holds.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether the list is empty (it then allows nothing).
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

/// Hex addresses (`0x…`) compare without regard to case (an EIP-55 checksum is case);
/// anything else exactly.
fn normalize(destination: &str) -> String {
    let destination = destination.trim();
    match destination
        .strip_prefix("0x")
        .or(destination.strip_prefix("0X"))
    {
        Some(hex) if hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            format!("0x{}", hex.to_ascii_lowercase())
        }
        _ => destination.to_owned(),
    }
}

/// The spending policy in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Approvals from distinct names a disbursement at or above its asset's threshold
    /// needs (at least 1; 1 means the one who queued it is enough).
    pub approvals_required: u32,
    /// Limits per asset ([`NATIVE`], or a token's symbol).
    pub limits: BTreeMap<String, AssetLimits>,
    /// Only these destinations may be paid, when set.
    pub destinations: Option<Arc<Destinations>>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            approvals_required: 1,
            limits: BTreeMap::new(),
            destinations: None,
        }
    }
}

/// Why the policy refuses a disbursement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Over the asset's `max_amount`.
    #[error("amount {amount} is over the {asset} max_amount of {max}")]
    MaxAmount {
        /// The asset.
        asset: String,
        /// The disbursement's amount.
        amount: u128,
        /// The limit.
        max: u128,
    },
    /// It would take what the rolling 24 hours queued (or signed) over the asset's
    /// `daily_limit`.
    #[error(
        "amount {amount} would take the {asset} {window} in the last 24 hours from {spent} to \
         {}, over the daily_limit of {limit}",
        spent.saturating_add(*amount)
    )]
    DailyLimit {
        /// The asset.
        asset: String,
        /// `queued` (checked at queue time) or `signed` (checked before signing).
        window: &'static str,
        /// The disbursement's amount.
        amount: u128,
        /// What the window already holds (earlier items of the same batch included).
        spent: u128,
        /// The limit.
        limit: u128,
    },
    /// The destination is not on the allow-list.
    #[error("destination {destination} is not on the allow-list (policy.destinations_file)")]
    Destination {
        /// The destination.
        destination: String,
    },
    /// It has fewer approvals than the policy in force needs for its amount.
    #[error("it has {have} of the {needed} approvals its amount needs")]
    Approvals {
        /// Approvals from distinct names it has.
        have: u32,
        /// Approvals it needs.
        needed: u32,
    },
}

impl Refusal {
    /// The rule, as the `reason` label of `treasury_policy_refusals_total` says it.
    pub fn rule(&self) -> &'static str {
        match self {
            Refusal::MaxAmount { .. } => "max_amount",
            Refusal::DailyLimit { .. } => "daily_limit",
            Refusal::Destination { .. } => "destination",
            Refusal::Approvals { .. } => "approvals",
        }
    }
}

impl Policy {
    /// The limits of `asset` (none if it has no entry).
    pub fn limits(&self, asset: &str) -> Option<&AssetLimits> {
        self.limits.get(asset)
    }

    /// Whether `asset` has a daily limit: only then are its rolling windows kept.
    pub fn has_daily_limit(&self, asset: &str) -> bool {
        self.limits(asset).is_some_and(|l| l.daily_limit.is_some())
    }

    /// How many approvals from distinct names a disbursement of `amount` in `asset`
    /// needs. 1 means none beyond queueing it: whoever (or whatever) queued it is enough,
    /// named or not.
    pub fn approvals_needed(&self, asset: &str, amount: u128) -> u32 {
        let required = self.approvals_required.max(1);
        let threshold = self.limits(asset).and_then(|l| l.approval_threshold);
        match threshold {
            Some(threshold) if amount < threshold => 1,
            _ => required,
        }
    }

    /// The checks of one disbursement that hold at any time: `max_amount` and the
    /// allow-list.
    fn check_payment(&self, asset: &str, amount: u128, destination: &str) -> Result<(), Refusal> {
        if let Some(max) = self.limits(asset).and_then(|l| l.max_amount)
            && amount > max
        {
            return Err(Refusal::MaxAmount {
                asset: asset.to_owned(),
                amount,
                max,
            });
        }
        if let Some(list) = &self.destinations
            && !list.allows(destination)
        {
            return Err(Refusal::Destination {
                destination: crate::text::bounded(destination, 128),
            });
        }
        Ok(())
    }

    /// Whether a disbursement of `amount` in `asset` to `destination` may be queued, the
    /// asset's window already holding `spent`.
    pub fn check_queue(
        &self,
        asset: &str,
        amount: u128,
        destination: &str,
        spent: u128,
    ) -> Result<(), Refusal> {
        self.check_payment(asset, amount, destination)?;
        self.check_window(asset, amount, spent, "queued")
    }

    /// Whether signing a payment of `amount` in `asset` keeps what was signed in the
    /// rolling 24 hours (`signed`) within the daily limit: the limit bounds what is paid
    /// in a day, not only what is queued (disbursements queued over several days with one
    /// activation epoch, or approved together, would otherwise all be paid at once).
    pub fn check_outflow(&self, asset: &str, amount: u128, signed: u128) -> Result<(), Refusal> {
        self.check_window(asset, amount, signed, "signed")
    }

    fn check_window(
        &self,
        asset: &str,
        amount: u128,
        spent: u128,
        window: &'static str,
    ) -> Result<(), Refusal> {
        if let Some(limit) = self.limits(asset).and_then(|l| l.daily_limit)
            && spent.saturating_add(amount) > limit
        {
            return Err(Refusal::DailyLimit {
                asset: asset.to_owned(),
                window,
                amount,
                spent,
                limit,
            });
        }
        Ok(())
    }

    /// Whether `disbursement` has fewer approvals than its amount needs under this
    /// policy (the one rule for queueing, approving, signing and re-judging).
    pub fn lacks_approvals(&self, disbursement: &Disbursement) -> bool {
        let needed = self.approvals_needed(disbursement.asset(), disbursement.amount);
        needed > 1 && disbursement.approvers() < needed
    }

    /// Whether `disbursement` may be signed now: within `max_amount`, to an allowed
    /// destination, with the approvals its amount needs. (The daily limit counts what is
    /// queued, and was checked then.)
    pub fn check_sign(&self, disbursement: &Disbursement) -> Result<(), Refusal> {
        let asset = disbursement.asset();
        self.check_payment(asset, disbursement.amount, &disbursement.destination)?;
        if self.lacks_approvals(disbursement) {
            return Err(Refusal::Approvals {
                have: disbursement.approvers(),
                needed: self.approvals_needed(asset, disbursement.amount),
            });
        }
        Ok(())
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "approvals_required={}", self.approvals_required)?;
        for (asset, limits) in &self.limits {
            write!(f, " {asset}(")?;
            let mut sep = "";
            for (name, value) in [
                ("max_amount", limits.max_amount),
                ("daily_limit", limits.daily_limit),
                ("approval_threshold", limits.approval_threshold),
            ] {
                if let Some(value) = value {
                    write!(f, "{sep}{name}={value}")?;
                    sep = " ";
                }
            }
            write!(f, ")")?;
        }
        if let Some(list) = &self.destinations {
            write!(f, " destinations={}", list.len())?;
        }
        Ok(())
    }
}

/// The spend of each asset in the rolling window: amounts by hour (Unix ms / 1 h), kept
/// by the store as disbursements are queued and cancelled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Spend {
    /// By asset: (hour, amount queued in it and not cancelled), oldest first.
    pub assets: BTreeMap<String, Vec<(u64, u128)>>,
    /// When the record began (Unix ms): a disbursement queued before it was never counted,
    /// so cancelling it takes nothing back.
    #[serde(default)]
    pub since_ms: Option<u64>,
}

impl Spend {
    /// The first hour still in the window at `now_ms`.
    fn first_hour(now_ms: u64) -> u64 {
        (now_ms.saturating_sub(DAY_MS)) / SPEND_BUCKET_MS
    }

    /// What `asset`'s window holds at `now_ms`.
    pub fn spent(&self, asset: &str, now_ms: u64) -> u128 {
        let first = Self::first_hour(now_ms);
        self.assets.get(asset).map_or(0, |hours| {
            hours
                .iter()
                .filter(|(hour, _)| *hour >= first)
                .map(|(_, amount)| *amount)
                .fold(0, u128::saturating_add)
        })
    }

    /// Counts `amount` of `asset` queued at `at_ms`, dropping hours out of the window at
    /// `now_ms`.
    pub fn add(&mut self, asset: &str, amount: u128, at_ms: u64, now_ms: u64) {
        self.since_ms.get_or_insert(at_ms.min(now_ms));
        let hour = at_ms / SPEND_BUCKET_MS;
        let first = Self::first_hour(now_ms);
        let hours = self.assets.entry(asset.to_owned()).or_default();
        hours.retain(|(h, _)| *h >= first);
        match hours.iter_mut().find(|(h, _)| *h == hour) {
            Some((_, total)) => *total = total.saturating_add(amount),
            None => {
                hours.push((hour, amount));
                hours.sort_unstable_by_key(|(h, _)| *h);
            }
        }
    }

    /// Takes back `amount` of `asset` queued at `at_ms` (cancelled): nothing if its hour
    /// has left the window.
    pub fn remove(&mut self, asset: &str, amount: u128, at_ms: u64) {
        if self.since_ms.is_none_or(|since| at_ms < since) {
            return; // queued before the record began: never counted
        }
        let hour = at_ms / SPEND_BUCKET_MS;
        if let Some(hours) = self.assets.get_mut(asset)
            && let Some((_, total)) = hours.iter_mut().find(|(h, _)| *h == hour)
        {
            *total = total.saturating_sub(amount);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::treasury::{Approval, DisbursementStatus};

    fn limits(max: Option<u128>, daily: Option<u128>, threshold: Option<u128>) -> Policy {
        Policy {
            approvals_required: 2,
            limits: [(
                NATIVE.to_owned(),
                AssetLimits {
                    max_amount: max,
                    daily_limit: daily,
                    approval_threshold: threshold,
                },
            )]
            .into(),
            destinations: None,
        }
    }

    fn disbursement(amount: u128, approvers: &[&str]) -> Disbursement {
        Disbursement {
            id: 1,
            destination: "dest".into(),
            amount,
            memo: String::new(),
            activation_epoch: 0,
            depends_on: vec![],
            external_key: None,
            asset: "native".into(),
            status: DisbursementStatus::Queued,
            queued_at_ms: 0,
            approvals: approvers
                .iter()
                .map(|name| Approval {
                    actor: (*name).into(),
                    at_ms: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn max_amount_allows_its_boundary_and_refuses_one_more() {
        let policy = limits(Some(100), None, None);
        assert_eq!(policy.check_queue(NATIVE, 100, "d", 0), Ok(()));
        assert_eq!(
            policy.check_queue(NATIVE, 101, "d", 0),
            Err(Refusal::MaxAmount {
                asset: NATIVE.into(),
                amount: 101,
                max: 100
            })
        );
        // Another asset has no limit.
        assert_eq!(policy.check_queue("USDC", 101, "d", 0), Ok(()));
    }

    #[test]
    fn daily_limit_allows_its_boundary_and_refuses_one_more() {
        let policy = limits(None, Some(1000), None);
        assert_eq!(policy.check_queue(NATIVE, 400, "d", 600), Ok(()));
        let refused = policy
            .check_queue(NATIVE, 401, "d", 600)
            .expect_err("refused");
        assert_eq!(refused.rule(), "daily_limit");
        assert_eq!(
            refused.to_string(),
            "amount 401 would take the native queued in the last 24 hours from 600 to 1001, \
             over the daily_limit of 1000"
        );
        assert_eq!(policy.check_outflow(NATIVE, 400, 600), Ok(()));
        assert!(matches!(
            policy.check_outflow(NATIVE, 401, 600),
            Err(Refusal::DailyLimit {
                window: "signed",
                ..
            })
        ));
        assert!(
            policy
                .check_queue(NATIVE, u128::MAX, "d", u128::MAX)
                .is_err()
        );
    }

    #[test]
    fn the_threshold_and_its_boundary_decide_who_needs_approvals() {
        let policy = limits(None, None, Some(500));
        assert_eq!(policy.approvals_needed(NATIVE, 499), 1);
        assert_eq!(policy.approvals_needed(NATIVE, 500), 2);
        // No threshold for the asset: every disbursement needs them.
        assert_eq!(policy.approvals_needed("USDC", 1), 2);
        assert_eq!(Policy::default().approvals_needed(NATIVE, u128::MAX), 1);
    }

    #[test]
    fn signing_counts_distinct_approvers_under_the_policy_in_force() {
        let policy = limits(None, None, Some(500));
        assert_eq!(policy.check_sign(&disbursement(499, &[])), Ok(()));
        assert_eq!(
            policy.check_sign(&disbursement(500, &["alice"])),
            Err(Refusal::Approvals { have: 1, needed: 2 })
        );
        assert_eq!(
            policy.check_sign(&disbursement(500, &["alice", "alice"])),
            Err(Refusal::Approvals { have: 1, needed: 2 }),
            "the same name twice is one approval"
        );
        assert_eq!(
            policy.check_sign(&disbursement(500, &["alice", "bob"])),
            Ok(())
        );
        // Tightened: three are needed now.
        let tighter = Policy {
            approvals_required: 3,
            ..policy.clone()
        };
        assert_eq!(
            tighter.check_sign(&disbursement(500, &["alice", "bob"])),
            Err(Refusal::Approvals { have: 2, needed: 3 })
        );
        // max_amount lowered below it after it was approved.
        let lower = limits(Some(400), None, Some(500));
        assert_eq!(
            lower
                .check_sign(&disbursement(500, &["alice", "bob"]))
                .expect_err("refused")
                .rule(),
            "max_amount"
        );
    }

    #[test]
    fn the_allow_list_parses_comments_and_compares_hex_without_case() {
        let list = Destinations::parse(
            "# grants\n0xAbCdEf0000000000000000000000000000000001  # alice\n\n  bob-wallet\n",
        )
        .expect("parses");
        assert_eq!(list.len(), 2);
        assert!(list.allows("0xabcdef0000000000000000000000000000000001"));
        assert!(list.allows("0xABCDEF0000000000000000000000000000000001"));
        assert!(list.allows("bob-wallet"));
        assert!(!list.allows("Bob-wallet"), "non-hex compares exactly");
        assert!(!list.allows("0xabcdef0000000000000000000000000000000002"));
        let error = Destinations::parse("ok\ntwo words\n").expect_err("refused");
        assert!(error.starts_with("line 2:"), "{error}");
        let policy = Policy {
            destinations: Some(Arc::new(list)),
            ..Policy::default()
        };
        assert_eq!(
            policy
                .check_queue(NATIVE, 1, "mallory", 0)
                .expect_err("refused")
                .rule(),
            "destination"
        );
        assert_eq!(policy.check_queue(NATIVE, 1, "bob-wallet", 0), Ok(()));
    }

    #[test]
    fn the_window_counts_an_hour_for_at_least_a_day_and_forgets_it_after() {
        let mut spend = Spend::default();
        let t0 = 1_000 * DAY_MS + 30 * 60 * 1000; // half past an hour
        spend.add(NATIVE, 100, t0, t0);
        assert_eq!(spend.spent(NATIVE, t0), 100);
        assert_eq!(
            spend.spent(NATIVE, t0 + DAY_MS),
            100,
            "still within 24 h of its hour's end"
        );
        let hour_end = (t0 / SPEND_BUCKET_MS + 1) * SPEND_BUCKET_MS;
        assert_eq!(spend.spent(NATIVE, hour_end + DAY_MS - 1), 100);
        assert_eq!(spend.spent(NATIVE, hour_end + DAY_MS), 0);
        // Adding later drops the stale hour; cancelling takes an amount back.
        spend.add(NATIVE, 7, t0 + 2 * DAY_MS, t0 + 2 * DAY_MS);
        assert_eq!(spend.assets[NATIVE].len(), 1);
        spend.remove(NATIVE, 5, t0 + 2 * DAY_MS);
        assert_eq!(spend.spent(NATIVE, t0 + 2 * DAY_MS), 2);
        spend.remove(NATIVE, 5, t0); // its hour is gone: nothing to take back
        assert_eq!(spend.spent(NATIVE, t0 + 2 * DAY_MS), 2);
        // Queued before the record began (an upgrade): never counted, nothing taken back.
        let mut fresh = Spend::default();
        fresh.add(NATIVE, 900, t0, t0);
        fresh.remove(NATIVE, 900, t0 - 1);
        assert_eq!(fresh.spent(NATIVE, t0), 900);
    }
}
