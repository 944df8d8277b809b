//! The leader lease on a real etcd: one leader at a time, a handover when it goes, and a
//! deposed leader's fenced writes refused.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use etcdstore::{EtcdKeySpace, EtcdOptions, LEADER_KEY, Leadership, LeaseOptions, Role};
use governance::store::engine::{ApplyError, Batch, Condition, Fence, KeySpace, Op};

fn etcd() -> Option<etcdharness::Etcd> {
    etcdharness::single_for_test(module_path!())
}

fn prefix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("/leader-test/{}/", NEXT.fetch_add(1, Ordering::SeqCst))
}

fn node(etcd: &etcdharness::Etcd, prefix: &str, name: &str) -> (EtcdKeySpace, Leadership) {
    let space = EtcdKeySpace::connect(EtcdOptions::new(etcd.endpoints(), prefix)).expect("connect");
    let leadership = Leadership::start(
        &space,
        LeaseOptions {
            ttl: Duration::from_secs(2),
            round: Duration::from_millis(100),
            value: name.as_bytes().to_vec(),
        },
    );
    (space, leadership)
}

/// Polls `done` every 20 ms until it holds; fails after `limit`.
fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

fn token(leadership: &Leadership) -> Option<u64> {
    match leadership.status().role {
        Role::Leader { token } => Some(token),
        _ => None,
    }
}

fn fenced_write(space: &EtcdKeySpace, token: u64, value: &[u8]) -> Result<(), ApplyError> {
    space.apply(&Batch {
        conditions: vec![Condition::Fence(Fence {
            key: LEADER_KEY.to_vec(),
            token,
        })],
        ops: vec![Op::Put(b"d/1".to_vec(), value.to_vec())],
        read_at: None,
    })
}

#[test]
fn one_node_leads_and_a_standby_takes_over_when_it_resigns() {
    let Some(etcd) = etcd() else { return };
    let prefix = prefix();
    let (space_a, a) = node(&etcd, &prefix, "a");
    let (space_b, b) = node(&etcd, &prefix, "b");
    let settled = || {
        let roles = [a.status().role, b.status().role];
        roles
            .iter()
            .all(|r| matches!(r, Role::Leader { .. } | Role::Standby))
            && roles
                .iter()
                .filter(|r| matches!(r, Role::Leader { .. }))
                .count()
                == 1
    };
    wait_for(Duration::from_secs(10), "one leader", settled);
    // Exactly one leads, both see the same term and the same leader's value.
    let (leader, leader_space, standby, standby_space) = if token(&a).is_some() {
        (a, space_a, b, space_b)
    } else {
        (b, space_b, a, space_a)
    };
    let term = token(&leader).expect("leads");
    wait_for(Duration::from_secs(5), "the standby sees the term", || {
        standby.status().term == term
    });
    assert_eq!(standby.status().leader, leader.status().leader);
    assert!(leader.may_broadcast());
    assert!(!standby.may_broadcast());
    fenced_write(&leader_space, term, b"from the leader").expect("the leader writes");
    assert!(matches!(
        fenced_write(&standby_space, term + 1, b"a guess"),
        Err(ApplyError::Fenced { .. })
    ));

    // The leader resigns: the standby leads within a few rounds, with a new token, and
    // the old token writes nothing.
    leader.resign();
    assert!(!leader.may_broadcast(), "a resigned node never broadcasts");
    let handover = wait_for(Duration::from_secs(5), "the standby to lead", || {
        token(&standby).is_some()
    });
    let new_term = token(&standby).expect("leads");
    assert!(new_term > term, "{new_term} > {term}");
    // A term's gate opens for that term only.
    assert!(standby.may_broadcast_as(new_term));
    assert!(
        !standby.may_broadcast_as(term),
        "an earlier term's executor is shut out"
    );
    assert!(!leader.may_broadcast_as(term));
    assert!(
        handover < Duration::from_secs(2),
        "handover took {handover:?}"
    );
    assert!(matches!(
        fenced_write(&leader_space, term, b"deposed"),
        Err(ApplyError::Fenced { token, .. }) if token == term
    ));
    fenced_write(&standby_space, new_term, b"from the new leader").expect("writes");
    assert_eq!(
        standby_space.get(b"d/1").expect("get"),
        Some(b"from the new leader".to_vec())
    );
    assert_eq!(standby.status().changes, 1, "{:?}", standby.status());
}

/// A leader that cannot renew its lease (etcd is gone) stops passing the broadcast gate
/// within the TTL, by its own clock, and says etcd is unavailable.
#[test]
fn a_leader_cut_off_from_etcd_closes_its_gate_within_the_ttl() {
    let Some(mut etcd) = etcd() else { return };
    let prefix = prefix();
    let (_space, a) = node(&etcd, &prefix, "a");
    wait_for(Duration::from_secs(10), "a leads", || token(&a).is_some());
    assert!(a.may_broadcast());
    etcd.kill(0);
    let closed = wait_for(Duration::from_secs(6), "the gate to close", || {
        !a.may_broadcast()
    });
    assert!(closed < Duration::from_secs(2), "closed after {closed:?}");
    wait_for(Duration::from_secs(10), "unavailable", || {
        matches!(a.status().role, Role::Unavailable { .. })
    });
}
