//! The engine contract as tests any engine can run: the built-in engines run them in
//! `tests.rs`, and the etcd engine (crate `etcdstore`) against a real etcd. Each test
//! takes an empty key space; the fence test also takes how the engine elects a writer
//! (the built-in engines put the next token at the key; etcd creates the key anew and
//! its create revision is the token).

use super::*;

fn put(key: &[u8], value: &[u8]) -> Op {
    Op::Put(key.to_vec(), value.to_vec())
}

fn apply(space: &dyn KeySpace, conditions: Vec<Condition>, ops: Vec<Op>) -> Result<(), ApplyError> {
    space.apply(&Batch {
        conditions,
        ops,
        read_at: None,
    })
}

/// Every test of the contract, each on a fresh key space from `fresh`; `elect` makes
/// a new writer's token at a key, the engine's way.
pub fn all<S: KeySpace>(fresh: impl Fn() -> S, elect: impl Fn(&S, &[u8]) -> u64) {
    scans_are_ordered_bounded_and_limited(&fresh());
    a_failed_condition_writes_nothing_and_names_the_key(&fresh());
    let space = fresh();
    a_fence_stops_a_deposed_writer(&space, &|key| elect(&space, key));
    conditional_increments_from_many_threads_lose_nothing(&fresh());
    a_stale_read_version_checks_every_condition(&fresh());
    a_key_written_twice_in_a_batch_keeps_the_last_write(&fresh());
    a_large_batch_and_a_long_scan_are_whole(&fresh());
}

/// The built-in engines' election: the next token, as 8 big-endian bytes at the key.
pub fn elect_by_counter(space: &dyn KeySpace, key: &[u8]) -> u64 {
    let next = space
        .get(key)
        .expect("get")
        .map_or(0, |b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
        + 1;
    apply(space, vec![], vec![put(key, &next.to_be_bytes())]).expect("elect");
    next
}

pub fn scans_are_ordered_bounded_and_limited(space: &dyn KeySpace) {
    let ops = [b"b/2".as_slice(), b"a/1", b"b/1", b"c", b"b/\xff"]
        .iter()
        .map(|key| put(key, key))
        .collect();
    apply(space, vec![], ops).expect("apply");
    let keys = |entries: Vec<Entry>| entries.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    let end = prefix_end(b"b/");
    assert_eq!(
        keys(space.scan(b"b/", &end, usize::MAX).expect("scan")),
        vec![b"b/1".to_vec(), b"b/2".to_vec(), b"b/\xff".to_vec()],
        "{}",
        space.name()
    );
    assert_eq!(
        keys(space.scan(b"b/", &end, 1).expect("scan")),
        vec![b"b/1".to_vec()]
    );
    assert_eq!(keys(space.scan(b"b/2", &end, 9).expect("scan")).len(), 2);
    assert!(space.scan(b"z", b"a", 9).expect("empty range").is_empty());
    assert_eq!(space.count(b"b/", &end).expect("count"), 3);
    assert_eq!(space.count(b"", &prefix_end(b"c")).expect("count"), 5);
}

pub fn a_failed_condition_writes_nothing_and_names_the_key(space: &dyn KeySpace) {
    apply(space, vec![], vec![put(b"k", b"1")]).expect("seed");
    let changed = apply(
        space,
        vec![
            Condition::Absent(b"new".to_vec()),
            Condition::Unchanged {
                key: b"k".to_vec(),
                value: b"0".to_vec(),
            },
        ],
        vec![put(b"new", b"x"), Op::Delete(b"k".to_vec())],
    );
    assert_eq!(
        changed,
        Err(ApplyError::Conflict { key: b"k".to_vec() }),
        "{}",
        space.name()
    );
    assert_eq!(space.get(b"new").expect("get"), None, "nothing written");
    assert_eq!(space.get(b"k").expect("get"), Some(b"1".to_vec()));

    let present = apply(
        space,
        vec![Condition::Absent(b"k".to_vec())],
        vec![put(b"z", b"")],
    );
    assert_eq!(present, Err(ApplyError::Conflict { key: b"k".to_vec() }));
    assert_eq!(space.get(b"z").expect("get"), None);

    apply(
        space,
        vec![
            Condition::Absent(b"new".to_vec()),
            Condition::Unchanged {
                key: b"k".to_vec(),
                value: b"1".to_vec(),
            },
        ],
        vec![
            put(b"new", b"x"),
            put(b"k", b"2"),
            Op::Delete(b"gone".to_vec()),
        ],
    )
    .expect("conditions hold");
    assert_eq!(space.get(b"k").expect("get"), Some(b"2".to_vec()));
    assert_eq!(space.get(b"new").expect("get"), Some(b"x".to_vec()));
}

pub fn a_fence_stops_a_deposed_writer(space: &dyn KeySpace, elect: &dyn Fn(&[u8]) -> u64) {
    let fence = |token: u64| {
        Condition::Fence(Fence {
            key: b"leader".to_vec(),
            token,
        })
    };
    let missing = apply(space, vec![fence(1)], vec![put(b"a", b"1")]);
    assert!(
        matches!(missing, Err(ApplyError::Fenced { token: 1, .. })),
        "{missing:?}"
    );
    let first = elect(b"leader");
    apply(space, vec![fence(first)], vec![put(b"a", b"1")]).expect("the leader writes");
    let second = elect(b"leader");
    assert_ne!(first, second, "a new term has a new token");
    let deposed = apply(space, vec![fence(first)], vec![put(b"a", b"deposed")]);
    assert!(
        matches!(deposed, Err(ApplyError::Fenced { token, .. }) if token == first),
        "{deposed:?}"
    );
    // The fence is judged first: a deposed writer is told so even if its reads are stale too.
    let both = apply(
        space,
        vec![Condition::Absent(b"a".to_vec()), fence(first)],
        vec![put(b"b", b"deposed")],
    );
    assert!(matches!(both, Err(ApplyError::Fenced { .. })), "{both:?}");
    apply(space, vec![fence(second)], vec![put(b"a", b"2")]).expect("the new leader writes");
    assert_eq!(
        space.get(b"a").expect("get"),
        Some(b"2".to_vec()),
        "{}",
        space.name()
    );
    assert_eq!(space.get(b"b").expect("get"), None);
}

pub fn conditional_increments_from_many_threads_lose_nothing(space: &dyn KeySpace) {
    const THREADS: u64 = 4;
    const EACH: u64 = 200;
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(move || {
                for _ in 0..EACH {
                    loop {
                        let seen = space.get(b"n").expect("get");
                        let n = seen
                            .as_deref()
                            .map_or(0, |b| u64::from_be_bytes(b.try_into().expect("8")));
                        let condition = match seen {
                            Some(value) => Condition::Unchanged {
                                key: b"n".to_vec(),
                                value,
                            },
                            None => Condition::Absent(b"n".to_vec()),
                        };
                        match apply(
                            space,
                            vec![condition],
                            vec![put(b"n", &(n + 1).to_be_bytes())],
                        ) {
                            Ok(()) => break,
                            Err(ApplyError::Conflict { .. }) => continue,
                            Err(other) => panic!("{other}"),
                        }
                    }
                }
            });
        }
    });
    let n = space.get(b"n").expect("get").expect("written");
    assert_eq!(
        u64::from_be_bytes(n.try_into().expect("8")),
        THREADS * EACH,
        "{}",
        space.name()
    );
}

pub fn a_stale_read_version_checks_every_condition(space: &dyn KeySpace) {
    apply(space, vec![], vec![put(b"k", b"1")]).expect("seed");
    let read_at = space.version();
    assert!(read_at.is_some(), "{}", space.name());
    let seen = space.get(b"k").expect("get").expect("k");
    apply(space, vec![], vec![put(b"k", b"2")]).expect("a concurrent write");
    let stale = space.apply(&Batch {
        conditions: vec![Condition::Unchanged {
            key: b"k".to_vec(),
            value: seen,
        }],
        ops: vec![put(b"k", b"from a stale read")],
        read_at,
    });
    assert_eq!(
        stale,
        Err(ApplyError::Conflict { key: b"k".to_vec() }),
        "{}",
        space.name()
    );
    assert_eq!(space.get(b"k").expect("get"), Some(b"2".to_vec()));
    assert_ne!(
        space.version(),
        read_at,
        "every applied batch moves the version"
    );

    // Read at the current version: it applies.
    let read_at = space.version();
    let seen = space.get(b"k").expect("get").expect("k");
    space
        .apply(&Batch {
            conditions: vec![Condition::Unchanged {
                key: b"k".to_vec(),
                value: seen,
            }],
            ops: vec![put(b"k", b"3")],
            read_at,
        })
        .expect("nothing changed since the read");
    assert_eq!(space.get(b"k").expect("get"), Some(b"3".to_vec()));
}

/// A batch may write a key more than once (the store's transactions do not, but the
/// contract allows it): the last operation wins, and the batch is still one step.
pub fn a_key_written_twice_in_a_batch_keeps_the_last_write(space: &dyn KeySpace) {
    apply(space, vec![], vec![put(b"k", b"1"), put(b"k", b"2")]).expect("apply");
    assert_eq!(
        space.get(b"k").expect("get"),
        Some(b"2".to_vec()),
        "{}",
        space.name()
    );
    apply(
        space,
        vec![],
        vec![put(b"k", b"3"), Op::Delete(b"k".to_vec())],
    )
    .expect("apply");
    assert_eq!(space.get(b"k").expect("get"), None, "{}", space.name());
    apply(
        space,
        vec![],
        vec![Op::Delete(b"k".to_vec()), put(b"k", b"4")],
    )
    .expect("apply");
    assert_eq!(
        space.get(b"k").expect("get"),
        Some(b"4".to_vec()),
        "{}",
        space.name()
    );
}

/// A batch of a few hundred writes (the store stages a hundred intents in one) applies
/// whole, and a scan longer than any engine's page returns every key, in order.
pub fn a_large_batch_and_a_long_scan_are_whole(space: &dyn KeySpace) {
    const KEYS: usize = 700;
    let key = |i: usize| format!("r/{i:05}").into_bytes();
    let conditions = (0..KEYS).map(|i| Condition::Absent(key(i))).collect();
    let ops = (0..KEYS).map(|i| put(&key(i), &[7; 100])).collect();
    apply(space, conditions, ops).expect("a large batch");
    let end = prefix_end(b"r/");
    let all = space.scan(b"r/", &end, usize::MAX).expect("scan");
    assert_eq!(all.len(), KEYS, "{}", space.name());
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "in key order");
    assert_eq!(all[KEYS - 1].0, key(KEYS - 1));
    let some = space.scan(&key(100), &end, 450).expect("scan");
    assert_eq!(some.len(), 450);
    assert_eq!(some[0].0, key(100));
    assert_eq!(some[449].0, key(549));
    assert_eq!(space.count(b"r/", &end).expect("count"), KEYS as u64);
}
