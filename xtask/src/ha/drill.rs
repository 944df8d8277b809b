//! The drill's state and its loop: what has been queued (and through which node), what
//! each node last said, and the wait that queues, polls and checks until a condition
//! holds. The phases are in [`super::phases`], the end checks in [`super::checks`].

use crate::chaos::rng::Rng;
use std::thread;
use std::time::{Duration, Instant};

use super::cluster::{Cluster, NODES, State};
use super::log::Log;
use super::node::{self, Queued, Status};
use super::options::Options;
use super::summary::Summary;

/// Between two rounds of the drill's loop.
const LOOP_PAUSE: Duration = Duration::from_millis(50);
/// How long one disbursement may go unqueued (every live node failing) before the drill
/// gives up.
const QUEUE_PATIENCE: Duration = Duration::from_secs(60);
/// Disbursements queued per round of the loop, at most.
const QUEUE_BURST: u64 = 2;
/// A leader whose `/status` says its executor is halted this long (15 ticks) fails the
/// drill.
const HALT_PATIENCE: Duration = Duration::from_secs(3);

/// Disbursement `i`'s destination: a fresh address.
pub(super) fn destination(i: u64) -> String {
    format!("0x4a{i:038x}")
}

/// Disbursement `i`'s amount in wei (distinct, so that a payment to the wrong one shows).
pub(super) fn amount(i: u64) -> u128 {
    1_000_000_000_000_000 + u128::from(i)
}

/// What has been queued.
#[derive(Debug, Default)]
pub(super) struct Queue {
    pub(super) total: u64,
    /// Disbursement `i`'s id, for each queued so far.
    pub(super) ids: Vec<u64>,
    /// How many more the current phase may queue.
    quota: u64,
    /// Queued through each node.
    pub(super) through: [u64; NODES],
    /// Queued through a node that did not lead (as last polled).
    pub(super) through_standby: u64,
    /// Requests that got no answer or a 5xx and were sent again (the same external key).
    pub(super) retries: u64,
    /// Since when the next one has been failing.
    failing_since: Option<Instant>,
    turn: usize,
}

impl Queue {
    pub(super) fn queued(&self) -> u64 {
        self.ids.len() as u64
    }

    pub(super) fn done(&self) -> bool {
        self.queued() == self.total
    }
}

/// A node that was deposed while frozen, resumed, and stood by: it must broadcast
/// nothing until it leads again.
#[derive(Debug)]
pub(super) struct Deposed {
    pub(super) slot: usize,
    /// Its proxy's send count when it was resumed.
    pub(super) sends: u64,
    /// Whether a poll has since seen it lead again (then its sends are legitimate).
    pub(super) led_again: bool,
}

/// Since when a leader's `/status` has said its executor is halted, and why.
///
/// A node whose term ended on a fenced write (it was deposed mid-tick) keeps that tick's
/// `halted` in its `/status` (and `treasury_executor_halted` at 1) while it stands by, and
/// when it leads again, until the new term's first tick replaces it: a leader briefly
/// "halted" is noted, one that stays so fails the drill.
#[derive(Debug)]
pub(super) struct Halted {
    since: Instant,
    reason: String,
}

/// The drill in progress.
pub(super) struct Drill<'a> {
    pub(super) cluster: Cluster,
    pub(super) log: &'a Log,
    pub(super) rng: Rng,
    pub(super) seed: u64,
    pub(super) queue: Queue,
    /// What each node's `/status` said at the last poll (`None`: not polled, or no
    /// answer).
    pub(super) seen: Vec<Option<Status>>,
    pub(super) deposed: Option<Deposed>,
    /// Each leader whose `/status` says its executor is halted.
    halted: Vec<Option<Halted>>,
    /// The terms whose leader key's `listen` has been looked at.
    listen_noted: std::collections::BTreeSet<u64>,
    pub(super) summary: Summary,
}

impl<'a> Drill<'a> {
    pub(super) fn new(cluster: Cluster, options: &Options, seed: u64, log: &'a Log) -> Drill<'a> {
        Drill {
            cluster,
            log,
            rng: Rng::new(seed),
            seed,
            queue: Queue {
                total: options.disbursements,
                ..Queue::default()
            },
            seen: vec![None; NODES],
            deposed: None,
            halted: (0..NODES).map(|_| None).collect(),
            listen_noted: std::collections::BTreeSet::new(),
            summary: Summary::default(),
        }
    }

    /// Lets the current phase queue `count` more (what earlier phases left unqueued
    /// carries over).
    pub(super) fn allow(&mut self, count: u64) {
        let left = self.queue.total - self.queue.queued();
        self.queue.quota = (self.queue.quota + count).min(left);
    }

    /// Queues up to [`QUEUE_BURST`] of the quota, each through the next live node in
    /// turn. A request without an answer (or answered 5xx) is sent again, with the same
    /// external key, through the next node at the next round.
    fn queue_some(&mut self) -> Result<(), String> {
        for _ in 0..QUEUE_BURST {
            if self.queue.quota == 0 || self.queue.done() {
                return Ok(());
            }
            let live = self.cluster.live();
            if live.is_empty() {
                return Ok(());
            }
            let slot = live[self.queue.turn % live.len()];
            self.queue.turn += 1;
            let i = self.queue.queued();
            let address = self.cluster.slots[slot]
                .live()
                .ok_or("a live node without an address")?
                .to_owned();
            let key = format!("ha-{}-{i}", self.seed);
            match node::queue(&address, &destination(i), amount(i), &key)? {
                Queued::Id(id) => {
                    self.queue.ids.push(id);
                    self.queue.quota -= 1;
                    self.queue.through[slot] += 1;
                    let leads = self.seen[slot].as_ref().is_some_and(|s| s.role == "leader");
                    if !leads {
                        self.queue.through_standby += 1;
                    }
                    self.queue.failing_since = None;
                }
                Queued::Retry(why) => {
                    self.queue.retries += 1;
                    let since = *self.queue.failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > QUEUE_PATIENCE {
                        return Err(format!(
                            "disbursement {i} could not be queued through any node for \
                             {QUEUE_PATIENCE:?}; last, through {}: {why}",
                            self.cluster.slots[slot].name
                        ));
                    }
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Reads every live node's `/status`. A leader whose executor says it is halted for
    /// [`HALT_PATIENCE`] fails the drill; for less, it is noted (see [`Halted`]).
    pub(super) fn poll(&mut self) -> Result<(), String> {
        for i in 0..NODES {
            self.seen[i] = match self.cluster.slots[i].live() {
                Some(address) => Status::read(address).ok(),
                None => None,
            };
        }
        for i in 0..NODES {
            let halted = self.seen[i]
                .as_ref()
                .filter(|s| s.role == "leader")
                .and_then(|s| s.halted.clone());
            let name = &self.cluster.slots[i].name;
            match (halted, self.halted[i].take()) {
                (Some(reason), None) => {
                    self.halted[i] = Some(Halted {
                        since: Instant::now(),
                        reason,
                    });
                }
                (Some(_), Some(earlier)) => {
                    if earlier.since.elapsed() > HALT_PATIENCE {
                        return Err(format!(
                            "{name} leads, but its executor has said it is halted for {:.1} s: {}",
                            earlier.since.elapsed().as_secs_f64(),
                            earlier.reason
                        ));
                    }
                    self.halted[i] = Some(earlier);
                }
                (None, Some(earlier)) => self.summary.note(
                    "halted, briefly, on a leader",
                    format!(
                        "{name} led with /status executor.halted set for about {} ms, then \
                         cleared by a tick (a view kept from the tick before: an earlier \
                         term's last, or one the store failed): {}",
                        earlier.since.elapsed().as_millis() / 100 * 100,
                        earlier.reason
                    ),
                ),
                (None, None) => {}
            }
        }
        for i in 0..NODES {
            let name = &self.cluster.slots[i].name;
            // A standby reports no halt: what its last term's executor said is the
            // leader's to report now (and TreasuryExecutorHalted would page for it).
            if let Some(status) = self.seen[i].as_ref().filter(|s| s.role == "standby")
                && let Some(halted) = &status.halted
            {
                return Err(format!(
                    "{name} stands by, yet /status says its executor is halted: {halted}"
                ));
            }
            // The leader key says where the leader serves, so an operator can find it.
            if let Some(status) = self.seen[i].as_ref().filter(|s| s.role == "leader")
                && let Some(listen) = &status.leader_listen
                && let Some(address) = self.cluster.slots[i].live()
                && listen != address
                && self.listen_noted.insert(status.term)
            {
                return Err(format!(
                    "{name} leads, but the leader key's `listen` is {listen:?}, not the address \
                     it serves on ({address})"
                ));
            }
        }
        if let Some(deposed) = &mut self.deposed
            && self.seen[deposed.slot]
                .as_ref()
                .is_some_and(|s| s.role == "leader")
        {
            deposed.led_again = true;
        }
        Ok(())
    }

    /// The live nodes that said they lead at the last poll.
    pub(super) fn leaders(&self) -> Vec<usize> {
        (0..NODES)
            .filter(|&i| self.role(i) == Some("leader"))
            .collect()
    }

    pub(super) fn role(&self, i: usize) -> Option<&str> {
        self.seen[i].as_ref().map(|s| s.role.as_str())
    }

    /// Exactly one live node leads and every other live node stands by.
    pub(super) fn settled(&self) -> bool {
        let live = self.cluster.live();
        self.leaders().len() == 1
            && live
                .iter()
                .all(|&i| matches!(self.role(i), Some("leader" | "standby")))
    }

    /// Executed disbursements as the store says (the highest of the nodes' answers).
    pub(super) fn executed(&self) -> Option<u64> {
        self.seen.iter().flatten().filter_map(|s| s.executed).max()
    }

    /// Each node as last seen, for messages.
    pub(super) fn describe(&self) -> String {
        let nodes: Vec<String> = (0..NODES)
            .map(|i| {
                let slot = &self.cluster.slots[i];
                let what = match (slot.state, &self.seen[i]) {
                    (State::Down, _) => "down".to_owned(),
                    (State::Frozen, _) => "stopped (SIGSTOP)".to_owned(),
                    (State::Live, None) => "no answer".to_owned(),
                    (State::Live, Some(s)) => format!(
                        "{} (term {}, leader {}, executed {})",
                        s.role,
                        s.term,
                        s.leader.as_deref().unwrap_or("none"),
                        s.executed.map_or("?".into(), |e| e.to_string())
                    ),
                };
                format!("{} {what}", slot.name)
            })
            .collect();
        format!(
            "{}; {} of {} queued",
            nodes.join(", "),
            self.queue.queued(),
            self.queue.total
        )
    }

    /// Queues and polls, round after round, until `done` holds; the time from `since` to
    /// the poll that saw it. Fails after `patience` (counted from `since`), saying what
    /// each node said last.
    pub(super) fn wait_until(
        &mut self,
        since: Instant,
        patience: Duration,
        what: &str,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Result<Duration, String> {
        loop {
            self.queue_some()?;
            self.poll()?;
            let elapsed = since.elapsed();
            if done(self) {
                return Ok(elapsed);
            }
            if elapsed > patience {
                return Err(format!(
                    "{what}: not within {:.1} s; {}",
                    patience.as_secs_f64(),
                    self.describe()
                ));
            }
            thread::sleep(LOOP_PAUSE);
        }
    }

    /// Queues and polls for `duration`.
    pub(super) fn keep_going(&mut self, duration: Duration) -> Result<(), String> {
        let since = Instant::now();
        self.wait_until(since, duration + Duration::from_secs(1), "", |_| {
            since.elapsed() >= duration
        })
        .map(drop)
    }
}
