//! The faults, in the order the drill injects them: a leader at start; then, each run,
//! kill -9 the leader (the handover measured) and SIGSTOP the next one past its lease
//! (it must stand by and broadcast nothing once resumed); then kill -9 one etcd member
//! (payments go on); last, every node stopped, the member and the nodes restarted.

use std::time::{Duration, Instant};

use super::cluster::{LEASE_TTL, MEMBERS, NODES, TICK};
use super::drill::{Deposed, Drill};
use super::node;

/// How long a phase waits for what it expects before failing the drill.
const PATIENCE: Duration = Duration::from_secs(60);
/// Within how long a resumed (deposed) node must report `standby`: a few campaign rounds.
pub(super) const STEP_DOWN_BOUND: Duration = Duration::from_secs(2);
/// How long a resumed node is watched, standing by, after it stepped down, before the
/// next fault (it keeps being checked until then).
const WATCH_DEPOSED: Duration = Duration::from_secs(1);
/// A fault comes this long (ms, at random) after the phase began queueing: the leader is
/// hit at different points of its tick.
const FAULT_AFTER_MS: (u64, u64) = (100, 600);

/// The bound on a handover (kill -9 of the leader → another node leads and has executed a
/// disbursement): the lease TTL + 2 ticks, plus slack for what that bound leaves
/// out:
/// - 500 ms: etcd revokes expired leases in a sweep every 500 ms, so the leader key may
///   outlive the TTL by that much;
/// - one campaign round (min(TTL / 4, tick) = 200 ms): the standby's next campaign after
///   the key is gone;
/// - 1 s: the new term's executor built on the blocking pool and its first store reads
///   over etcd, the scheduler of a loaded 2-core machine (debug builds), and this
///   drill's own polling (a round of `/status` reads on each node, then a 50 ms pause).
pub(super) fn handover_bound() -> Duration {
    LEASE_TTL + 2 * TICK + Duration::from_millis(500) + TICK + Duration::from_secs(1)
}

impl Drill<'_> {
    /// Disbursements each phase queues: the total spread over the warm-up, the two faults
    /// of each run, the etcd member's and the restart's phases.
    fn share(&self, runs: u64) -> u64 {
        self.queue.total / (2 * runs + 3)
    }

    fn pause_before_fault(&mut self) -> Result<(), String> {
        let delay = self.rng.between(FAULT_AFTER_MS.0, FAULT_AFTER_MS.1);
        self.keep_going(Duration::from_millis(delay))
    }

    /// The nodes start: one leads, the others stand by, and the leader pays.
    pub(super) fn warm_up(&mut self, runs: u64) -> Result<(), String> {
        let began = Instant::now();
        self.allow(self.share(runs));
        let settled = self.wait_until(began, PATIENCE, "one node leading at start", |d| {
            d.settled()
        })?;
        let leader = self.leaders()[0];
        self.log.event(&format!(
            "{} leads after {:.2} s; the others stand by",
            self.cluster.slots[leader].name,
            settled.as_secs_f64()
        ));
        self.wait_until(began, PATIENCE, "the leader paying", |d| {
            d.executed().is_some_and(|e| e > 0)
        })?;
        self.log.event(&format!(
            "paying: {} executed, {} queued",
            self.executed().unwrap_or(0),
            self.queue.queued()
        ));
        Ok(())
    }

    /// The one leader, once the live nodes agree on it.
    fn sole_leader(&mut self, what: &str) -> Result<usize, String> {
        self.wait_until(Instant::now(), PATIENCE, what, |d| d.settled())?;
        Ok(self.leaders()[0])
    }

    /// Fails if a node deposed earlier broadcast while it did not lead again; forgets it.
    fn check_deposed(&mut self) -> Result<(), String> {
        let Some(deposed) = self.deposed.take() else {
            return Ok(());
        };
        let name = &self.cluster.slots[deposed.slot].name;
        let now = self.cluster.sends(deposed.slot);
        if deposed.led_again {
            self.log.event(&format!(
                "{name} led again later: its sends since are its own term's"
            ));
        } else if now != deposed.sends {
            return Err(format!(
                "{name}, deposed while stopped, broadcast {} eth_sendRawTransaction after it \
                 resumed, standing by (its proxy counted {} when it resumed, {now} now); \
                 see {}",
                now - deposed.sends,
                deposed.sends,
                self.cluster.slots[deposed.slot].log.display()
            ));
        }
        Ok(())
    }

    /// kill -9 the leader; another node must lead and execute a disbursement within
    /// [`handover_bound`]. The killed node is started again.
    pub(super) fn kill_leader(&mut self, run: u64, runs: u64) -> Result<(), String> {
        let leader = self.sole_leader("one leader before the kill")?;
        self.allow(self.share(runs));
        self.pause_before_fault()?;
        self.check_deposed()?;
        let name = self.cluster.slots[leader].name.clone();
        let killed = Instant::now();
        self.cluster.kill_node(leader)?;
        self.summary.leader_kills += 1;
        self.log.event(&format!(
            "run {run}: kill -9 {name} (the leader); {} executed, {} queued",
            self.seen[leader]
                .as_ref()
                .and_then(|s| s.executed)
                .map_or("?".into(), |e| e.to_string()),
            self.queue.queued()
        ));
        // Any write the dead leader had in flight has landed by now; no one else can
        // lead yet (the lease runs for seconds): the baseline.
        self.keep_going(Duration::from_millis(300))?;
        self.wait_until(
            Instant::now(),
            PATIENCE,
            "the store's executed count",
            |d| d.executed().is_some(),
        )?;
        let baseline = self.executed().unwrap_or(0);
        let mut leading: Option<Duration> = None;
        let handover = self.wait_until(
            killed,
            PATIENCE,
            &format!("another node leading and paying after {name}'s kill -9"),
            |d| {
                let leads = !d.leaders().is_empty();
                if leads && leading.is_none() {
                    leading = Some(killed.elapsed());
                }
                leads && d.executed().is_some_and(|e| e > baseline)
            },
        )?;
        let new = self.leaders()[0];
        let bound = handover_bound();
        self.summary.handovers.push(handover);
        self.summary
            .leads_after_kill
            .push(leading.unwrap_or(handover));
        self.log.event(&format!(
            "{} leads {:.2} s after the kill and has paid: handover {:.2} s (bound {:.2} s)",
            self.cluster.slots[new].name,
            leading.unwrap_or(handover).as_secs_f64(),
            handover.as_secs_f64(),
            bound.as_secs_f64()
        ));
        if handover > bound {
            return Err(format!(
                "handover after kill -9 of {name}: {:.2} s, over the bound of {:.2} s \
                 (lease TTL {} s + 2 ticks of {} ms + slack); another node led after {:.2} s",
                handover.as_secs_f64(),
                bound.as_secs_f64(),
                LEASE_TTL.as_secs(),
                TICK.as_millis(),
                leading.unwrap_or(handover).as_secs_f64()
            ));
        }
        self.cluster.start_node(leader, self.log)?;
        self.wait_until(
            Instant::now(),
            PATIENCE,
            &format!("{name} standing by after its restart"),
            |d| d.role(leader) == Some("standby"),
        )?;
        Ok(())
    }

    /// SIGSTOP the leader for the lease TTL + 2 s: another node must lead meanwhile. Then
    /// SIGCONT: the resumed node must stand by within [`STEP_DOWN_BOUND`] and broadcast
    /// nothing (its proxy counts) while it does.
    pub(super) fn freeze_leader(&mut self, run: u64, runs: u64) -> Result<(), String> {
        let leader = self.sole_leader("one leader before the SIGSTOP")?;
        self.allow(self.share(runs));
        self.pause_before_fault()?;
        self.check_deposed()?;
        let name = self.cluster.slots[leader].name.clone();
        let frozen_for = LEASE_TTL + Duration::from_secs(2);
        let stopped = Instant::now();
        self.cluster.signal(leader, "STOP")?;
        self.summary.leader_stops += 1;
        self.log.event(&format!(
            "run {run}: SIGSTOP {name} (the leader) for {} s",
            frozen_for.as_secs()
        ));
        let takeover = self.wait_until(
            stopped,
            frozen_for,
            &format!("another node leading while {name} is stopped"),
            |d| !d.leaders().is_empty(),
        )?;
        let other = self.leaders()[0];
        self.summary.takeovers.push(takeover);
        self.log.event(&format!(
            "{} leads {:.2} s after {name} stopped",
            self.cluster.slots[other].name,
            takeover.as_secs_f64()
        ));
        self.keep_going(frozen_for.saturating_sub(stopped.elapsed()))?;
        let sends = self.cluster.sends(leader);
        let resumed = Instant::now();
        self.cluster.signal(leader, "CONT")?;
        self.log.event(&format!(
            "SIGCONT {name} after {:.2} s; {sends} eth_sendRawTransaction through its proxy so far",
            stopped.elapsed().as_secs_f64()
        ));
        let step_down = self.wait_until(
            resumed,
            STEP_DOWN_BOUND,
            &format!("{name} standing by after SIGCONT"),
            |d| d.role(leader) == Some("standby"),
        )?;
        self.summary.step_downs.push(step_down);
        // Watched for a few rounds more: it stays a standby and sends nothing. (Then it is
        // checked again before the next fault.)
        self.deposed = Some(Deposed {
            slot: leader,
            sends,
            led_again: false,
        });
        let watched = Instant::now();
        self.wait_until(watched, WATCH_DEPOSED * 2, "", |_| {
            watched.elapsed() >= WATCH_DEPOSED
        })?;
        let led_again = self.deposed.as_ref().is_some_and(|d| d.led_again);
        if led_again || self.role(leader) != Some("standby") {
            return Err(format!(
                "{name}, resumed, stood by after {:.2} s, then led again or said {:?} \
                 within {} s, while another led: {}",
                step_down.as_secs_f64(),
                self.role(leader),
                WATCH_DEPOSED.as_secs(),
                self.describe()
            ));
        }
        let gauge = node::leader_gauge(self.cluster.slots[leader].live().unwrap_or_default())?;
        if gauge != 0 {
            return Err(format!(
                "{name} stands by but its treasury_executor_leader gauge is {gauge}"
            ));
        }
        if let Some(halted) = self.seen[leader].as_ref().and_then(|s| s.halted.clone()) {
            let gauge = node::halted_gauge(self.cluster.slots[leader].live().unwrap_or_default())
                .map_or_else(|e| e, |g| g.to_string());
            self.summary.note(
                "stale halted on a standby",
                format!(
                    "a deposed node standing by still says /status executor.halted = {halted:?} \
                 and treasury_executor_halted = {gauge} (its term's last tick hit the fence); \
                 seen on {name} in run {run}; TreasuryExecutorHalted (critical, for 1m) would \
                 fire on a healthy standby"
                ),
            );
        }
        let after = self.cluster.sends(leader);
        if after != sends {
            return Err(format!(
                "{name}, deposed while stopped, broadcast {} eth_sendRawTransaction after \
                 SIGCONT (its proxy counted {sends} when it resumed, {after} {:.2} s later); \
                 see {}",
                after - sends,
                resumed.elapsed().as_secs_f64(),
                self.cluster.slots[leader].log.display()
            ));
        }
        self.log.event(&format!(
            "{name} stood by {:.2} s after SIGCONT; leader gauge 0; no broadcast since",
            step_down.as_secs_f64()
        ));
        Ok(())
    }

    /// kill -9 one etcd member (chosen by the seed): a disbursement must still execute
    /// after it. The member's index.
    pub(super) fn kill_member(&mut self, runs: u64) -> Result<usize, String> {
        self.sole_leader("one leader before the etcd member's kill")?;
        self.allow(self.share(runs));
        let member = self.rng.between(0, MEMBERS as u64 - 1) as usize;
        let raft = match self.cluster.raft_leader(member) {
            Some(true) => " (the raft leader)",
            Some(false) => " (a raft follower)",
            None => "",
        };
        self.pause_before_fault()?;
        self.check_deposed()?;
        let killed = Instant::now();
        self.cluster.etcd.kill(member);
        self.summary.member_kills += 1;
        self.summary.member = Some(format!("m{member}{raft}"));
        self.log
            .event(&format!("kill -9 etcd member m{member}{raft}"));
        self.wait_until(
            Instant::now(),
            PATIENCE,
            "the store's executed count",
            |d| d.executed().is_some(),
        )?;
        let baseline = self.executed().unwrap_or(0);
        let paid = self.wait_until(
            killed,
            PATIENCE,
            &format!("a payment after etcd member m{member}'s kill -9"),
            |d| !d.leaders().is_empty() && d.executed().is_some_and(|e| e > baseline),
        )?;
        self.summary.paid_after_member_kill = Some(paid);
        self.log.event(&format!(
            "payments go on: executed {} → {} within {:.2} s of the member's kill; {} leads",
            baseline,
            self.executed().unwrap_or(0),
            paid.as_secs_f64(),
            self.cluster.slots[self.leaders()[0]].name
        ));
        Ok(member)
    }

    /// Every node stopped (SIGTERM), the member restarted on its data, every node
    /// started again: one must lead, and pay the rest.
    pub(super) fn restart_everything(&mut self, member: usize) -> Result<(), String> {
        self.check_deposed()?;
        let lingered = self.cluster.stop_nodes();
        self.summary.restarts += 1;
        self.log.event(&format!(
            "every node stopped (SIGTERM){}",
            if lingered.is_empty() {
                String::new()
            } else {
                format!("; killed after 10 s: {}", lingered.join(", "))
            }
        ));
        if !lingered.is_empty() {
            return Err(format!(
                "SIGTERM did not stop {} within 10 s",
                lingered.join(", ")
            ));
        }
        let restarted = Instant::now();
        self.cluster.etcd.restart(member)?;
        self.log.event(&format!(
            "etcd member m{member} restarted on its data ({:.2} s)",
            restarted.elapsed().as_secs_f64()
        ));
        for i in 0..NODES {
            self.cluster.start_node(i, self.log)?;
        }
        let back = self.wait_until(
            restarted,
            PATIENCE,
            "one node leading after the restart",
            |d| d.settled() && d.cluster.live().len() == NODES,
        )?;
        self.summary.back_after_restart = Some(back);
        let leader = self.leaders()[0];
        self.log.event(&format!(
            "all back: {} leads, {:.2} s after the restart began",
            self.cluster.slots[leader].name,
            back.as_secs_f64()
        ));
        let total = self.queue.total;
        self.allow(total);
        let began = Instant::now();
        self.wait_until(
            began,
            PATIENCE * 2,
            "every disbursement queued and executed",
            |d| d.queue.done() && d.executed() == Some(total),
        )?;
        self.log.event(&format!(
            "all {total} executed, {:.2} s after the restart",
            restarted.elapsed().as_secs_f64()
        ));
        Ok(())
    }
}
