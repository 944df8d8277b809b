//! `cargo xtask ha`: high availability on etcd, drilled against real processes.
//!
//! A 3-member etcd cluster (`etcdharness`), anvil (auto-mining) and three nodes
//! (`store = "etcd"`, `ledger = "evm"`, one treasury key, distinct identities, a lease of
//! 3 s, a tick of 200 ms), each reaching anvil through a fault proxy of its own in
//! `CountSends` mode, which counts the node's `eth_sendRawTransaction` calls. The drill
//! queues M disbursements (200; 40 with `--short`) to fresh addresses through the nodes in
//! turn (standbys accept them too), a share in each phase, while it
//!
//! 1. waits for one node to lead and pay;
//! 2. N times (`--runs`, 3; 1 with `--short`): kills the leader with SIGKILL and measures
//!    the handover, from the kill until another node says it leads *and* the store counts
//!    a disbursement more executed, which must stay within the lease TTL + 2 ticks + slack
//!    ([`phases::handover_bound`], which says what the slack is for); restarts the killed
//!    node; then SIGSTOPs the new leader for TTL + 2 s (another node must lead meanwhile),
//!    SIGCONTs it, and requires it to say `standby` within 2 s, its leader gauge to read 0,
//!    and its proxy to count no broadcast from the moment it resumed (checked after 1 s
//!    of watching, and again before the next fault, unless it has led again since);
//! 3. kills one etcd member (by the seed; the raft leader or not): a disbursement must
//!    execute after it;
//! 4. stops every node (SIGTERM), restarts the member on its data and the nodes: one must
//!    lead and the rest be paid.
//!
//! Then [`checks`]: every disbursement executed in the store (`GET
//! /admin/disbursements/{id}`), with what was queued and a transaction of its own; every
//! destination holding exactly its amount on anvil (paid once); the treasury's nonce
//! equal to the disbursements executed (nothing else spent one); one `disbursement.queue`
//! audit record for each (the executor writes no audit record when it pays: the store's
//! status and the chain are what say a payment happened); some queued through every node,
//! and some through a standby. A summary follows (handover times min / median / max, the
//! faults, the wall time), and any violation fails the drill with what was seen.
//!
//! The nodes are killed on every way out ([`node::NodeProcess`] kills its process when
//! dropped, SIGSTOPped or not), and etcd and anvil too (their harnesses do). The files
//! (configurations, node logs with the drill's events in them, `drill.log`, and on failure
//! etcd's member logs) are in `xtask-ha` under the target directory.

mod checks;
mod cluster;
mod drill;
mod log;
mod node;
mod options;
mod phases;
mod summary;

use std::ffi::OsString;
use std::time::Instant;

use crate::Error;
use crate::cargo::fresh_dir;

use self::cluster::{Cluster, LEASE_TTL, TICK};
use self::drill::Drill;
use self::log::Log;
use self::options::{HEADER, Options, USAGE, parse_args};
use self::summary::{each, secs, spread};
use crate::chaos::rng::clock_seed;

pub fn about() -> String {
    let o = Options::short();
    format!(
        "3 etcd members + anvil + 3 nodes on etcd: {} disbursements while the leader is \
         killed -9 and SIGSTOPped and an etcd member killed; handover within the lease, \
         a deposed node sends nothing, each paid once (`ha --short`)",
        o.disbursements
    )
}

pub fn main(args: &[OsString]) -> Result<(), Error> {
    match parse_args(args)? {
        Some(options) => drill(&options).map_err(Error::Failed),
        None => {
            println!("cargo xtask ha: {HEADER}\n\n{USAGE}");
            Ok(())
        }
    }
}

/// The drill `validate` runs: `--short`.
pub fn run() -> Result<(), String> {
    drill(&Options::short())
}

fn drill(options: &Options) -> Result<(), String> {
    // etcdharness runs $ETCD_BIN, else etcd on PATH, where apt-get puts it.
    crate::etcd::ensure_etcd()?;
    let binary = crate::cargo::build_node("ha")?;
    let scratch = crate::cargo::target_dir().join("xtask-ha");
    fresh_dir(&scratch)?;
    let seed = options.seed.unwrap_or_else(clock_seed);
    let log = Log::new(
        scratch.join("drill.log"),
        (0..cluster::NODES)
            .map(|i| scratch.join(format!("ha-{i}.log")))
            .collect(),
    );
    log.event(&format!(
        "seed {seed} (`--seed {seed}` replays the delays and the etcd member); {} \
         disbursements, {} run(s) of kill -9 + SIGSTOP; lease {} s, tick {} ms",
        options.disbursements,
        options.runs,
        LEASE_TTL.as_secs(),
        TICK.as_millis()
    ));
    let began = Instant::now();
    let cluster = Cluster::start(binary, &scratch, &log)?;
    let mut drill = Drill::new(cluster, options, seed, &log);
    let result = phases(&mut drill, options.runs).and_then(|()| drill.check_end());
    let wall = began.elapsed();
    let outcome = match result {
        Ok(checked) => {
            print_summary(&drill, options, &checked, wall, seed);
            Ok(())
        }
        Err(error) => {
            drill.cluster.keep_etcd_logs(&scratch);
            print_notes(&drill);
            Err(format!(
                "ha drill (seed {seed}) failed after {:.1} s: {error}\n  files: {}",
                wall.as_secs_f64(),
                scratch.display()
            ))
        }
    };
    // Dropped here: every node killed, then etcd and anvil.
    drop(drill);
    outcome
}

fn phases(drill: &mut Drill<'_>, runs: u64) -> Result<(), String> {
    drill.warm_up(runs)?;
    for run in 1..=runs {
        drill.kill_leader(run, runs)?;
        drill.freeze_leader(run, runs)?;
    }
    let member = drill.kill_member(runs)?;
    drill.restart_everything(member)
}

fn print_summary(
    drill: &Drill<'_>,
    options: &Options,
    checked: &checks::Checked,
    wall: std::time::Duration,
    seed: u64,
) {
    let s = &drill.summary;
    let q = &drill.queue;
    let through: Vec<String> = drill
        .cluster
        .slots
        .iter()
        .zip(q.through)
        .map(|(slot, n)| format!("{} {n}", slot.name))
        .collect();
    let sends: Vec<String> = (0..cluster::NODES)
        .map(|i| format!("{} {}", drill.cluster.slots[i].name, drill.cluster.sends(i)))
        .collect();
    let lines = [
        format!(
            "PASS: {} disbursements, each executed in the store and paid exactly once on anvil; \
             treasury nonce {}; {} queue records in the audit log",
            q.total, checked.nonce, checked.audit_records
        ),
        format!(
            "queued through {} ({} through a standby, {} requests sent again)",
            through.join(", "),
            q.through_standby,
            q.retries
        ),
        format!(
            "faults: {} kill -9 of the leader, {} SIGSTOP of the leader, {} etcd member killed \
             ({}), {} restart of everything",
            s.leader_kills,
            s.leader_stops,
            s.member_kills,
            s.member.as_deref().unwrap_or("-"),
            s.restarts
        ),
        format!(
            "handover after kill -9 (another node leads and pays), min / median / max: {} \
             (bound {:.2} s); each: {}",
            spread(&s.handovers),
            phases::handover_bound().as_secs_f64(),
            each(&s.handovers)
        ),
        format!(
            "  of which until another node said it leads: {}",
            spread(&s.leads_after_kill)
        ),
        format!(
            "SIGSTOP of the leader: another led after {}; resumed, it stood by after {} \
             (bound {:.1} s) and broadcast nothing",
            spread(&s.takeovers),
            spread(&s.step_downs),
            phases::STEP_DOWN_BOUND.as_secs_f64()
        ),
        format!(
            "etcd member killed: a payment {} later; restart: one led after {}",
            secs(s.paid_after_member_kill),
            secs(s.back_after_restart)
        ),
        format!(
            "eth_sendRawTransaction per node's proxy: {}",
            sends.join(", ")
        ),
        format!(
            "wall time {:.1} s after the build ({} runs, seed {seed})",
            wall.as_secs_f64(),
            options.runs
        ),
    ];
    for line in lines {
        drill.log.event(&line);
    }
    print_notes(drill);
}

/// What the nodes did wrong that breaks none of the drill's checks.
fn print_notes(drill: &Drill<'_>) {
    let notes = &drill.summary.notes;
    if !notes.is_empty() {
        drill.log.event(&format!(
            "{} node issue(s) seen that fail no check of this drill:",
            notes.len()
        ));
        for note in notes {
            drill
                .log
                .event(&format!("  - {} ({} times)", note.first, note.times));
        }
    }
}
