//! The end checks: the store, the chain and the audit log agree that every disbursement
//! was paid exactly once.

use std::collections::{BTreeMap, BTreeSet};

use super::cluster::NODES;
use super::drill::{Drill, amount, destination};
use super::node;

/// What the checks found, for the summary.
#[derive(Debug, Default)]
pub(super) struct Checked {
    pub(super) nonce: u64,
    pub(super) audit_records: usize,
}

impl Drill<'_> {
    /// Every disbursement executed in the store (read through the nodes in turn) with
    /// what was queued and a transaction of its own; every destination holding exactly its
    /// amount on anvil; the treasury's nonce equal to the disbursements executed; one
    /// `disbursement.queue` audit record for each; and at least one disbursement queued
    /// through each node, some through a standby.
    pub(super) fn check_end(&self) -> Result<Checked, String> {
        let live = self.cluster.live();
        let address = |k: usize| -> Result<String, String> {
            let slot = live
                .get(k % live.len().max(1))
                .ok_or("no node is running")?;
            Ok(self.cluster.slots[*slot]
                .live()
                .ok_or("no node is running")?
                .to_owned())
        };
        let mut problems = vec![];
        let mut hashes: BTreeMap<String, u64> = BTreeMap::new();
        let mut executed = 0;
        for (i, &id) in self.queue.ids.iter().enumerate() {
            let i = i as u64;
            let shown = node::show(&address(i as usize)?, id)?;
            if shown.status == "executed" {
                executed += 1;
            } else {
                problems.push(format!(
                    "disbursement {id} is {}, not executed",
                    shown.status
                ));
            }
            if !shown.destination.eq_ignore_ascii_case(&destination(i))
                || shown.amount != amount(i).to_string()
            {
                problems.push(format!(
                    "disbursement {id}: {} to {} in the store, queued as {} to {}",
                    shown.amount,
                    shown.destination,
                    amount(i),
                    destination(i)
                ));
            }
            match shown.tx_hash {
                Some(hash) => {
                    if let Some(other) = hashes.insert(hash.to_ascii_lowercase(), id) {
                        problems.push(format!(
                            "disbursements {other} and {id} name one transaction, {hash}"
                        ));
                    }
                }
                None if shown.status == "executed" => {
                    problems.push(format!("disbursement {id} is executed without a tx_hash"));
                }
                None => {}
            }
            let paid = self.cluster.anvil.balance(&destination(i))?;
            if paid != amount(i) {
                problems.push(format!(
                    "{} (disbursement {id}) holds {paid} wei on anvil, expected {} (paid \
                     exactly once)",
                    destination(i),
                    amount(i)
                ));
            }
        }
        let distinct: BTreeSet<u64> = self.queue.ids.iter().copied().collect();
        if distinct.len() != self.queue.ids.len() {
            problems.push(format!(
                "{} distinct ids for {} disbursements: a request sent again was queued twice",
                distinct.len(),
                self.queue.ids.len()
            ));
        }
        let nonce = self.cluster.anvil.nonce("latest")?;
        if nonce != executed {
            problems.push(format!(
                "the treasury's nonce is {nonce}, but {executed} disbursements are executed: \
                 a nonce spent on something else, or a payment the store does not know"
            ));
        }
        // Nothing moves any more: every node's /status must count what the records say.
        for &i in &live {
            let slot = &self.cluster.slots[i];
            let status = node::Status::read(slot.live().unwrap_or_default())?;
            if status.executed != Some(executed) {
                problems.push(format!(
                    "{}'s /status counts {:?} executed, the disbursements say {executed}",
                    slot.name, status.executed
                ));
            }
        }

        let records = node::audit(&address(0)?)?;
        let mut queue_records: BTreeMap<u64, usize> = BTreeMap::new();
        for record in records.iter().filter(|r| r.action == "disbursement.queue") {
            let id = record
                .detail
                .strip_prefix("disbursement ")
                .and_then(|rest| rest.split(':').next())
                .and_then(|id| id.parse::<u64>().ok())
                .ok_or_else(|| format!("an audit record of a queue without an id: {record:?}"))?;
            *queue_records.entry(id).or_default() += 1;
        }
        for &id in &self.queue.ids {
            match queue_records.get(&id) {
                Some(1) => {}
                Some(n) => problems.push(format!("{n} audit records queue disbursement {id}")),
                None => problems.push(format!("no audit record queues disbursement {id}")),
            }
        }

        for i in 0..NODES {
            if self.queue.through[i] == 0 {
                problems.push(format!(
                    "nothing was queued through {}",
                    self.cluster.slots[i].name
                ));
            }
        }
        if self.queue.through_standby == 0 {
            problems.push("nothing was queued through a standby".into());
        }

        if problems.is_empty() {
            Ok(Checked {
                nonce,
                audit_records: queue_records.len(),
            })
        } else {
            let shown = problems.len().min(20);
            Err(format!(
                "{} problems at the end:\n  {}{}",
                problems.len(),
                problems[..shown].join("\n  "),
                if problems.len() > shown {
                    "\n  …"
                } else {
                    ""
                }
            ))
        }
    }
}
