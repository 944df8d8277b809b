//! The engine contract, on every built-in engine.

use std::sync::Arc;

use super::*;

fn engines() -> Vec<Arc<dyn KeySpace>> {
    vec![
        Arc::new(MemoryKeySpace::new()),
        Arc::new(SledKeySpace::temporary().expect("sled")),
    ]
}

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

#[test]
fn scans_are_ordered_bounded_and_limited() {
    for space in engines() {
        let ops = [b"b/2".as_slice(), b"a/1", b"b/1", b"c", b"b/\xff"]
            .iter()
            .map(|key| put(key, key))
            .collect();
        apply(&*space, vec![], ops).expect("apply");
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
}

#[test]
fn a_failed_condition_writes_nothing_and_names_the_key() {
    for space in engines() {
        apply(&*space, vec![], vec![put(b"k", b"1")]).expect("seed");
        let changed = apply(
            &*space,
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
            &*space,
            vec![Condition::Absent(b"k".to_vec())],
            vec![put(b"z", b"")],
        );
        assert_eq!(present, Err(ApplyError::Conflict { key: b"k".to_vec() }));
        assert_eq!(space.get(b"z").expect("get"), None);

        apply(
            &*space,
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
}

#[test]
fn a_fence_stops_a_deposed_writer() {
    for space in engines() {
        let fence = |token: u64| {
            Condition::Fence(Fence {
                key: b"leader".to_vec(),
                token,
            })
        };
        let missing = apply(&*space, vec![fence(1)], vec![put(b"a", b"1")]);
        assert!(
            matches!(missing, Err(ApplyError::Fenced { token: 1, .. })),
            "{missing:?}"
        );
        apply(&*space, vec![], vec![put(b"leader", &1u64.to_be_bytes())]).expect("elect 1");
        apply(&*space, vec![fence(1)], vec![put(b"a", b"1")]).expect("the leader writes");
        apply(&*space, vec![], vec![put(b"leader", &2u64.to_be_bytes())]).expect("elect 2");
        let deposed = apply(&*space, vec![fence(1)], vec![put(b"a", b"deposed")]);
        assert!(
            matches!(deposed, Err(ApplyError::Fenced { token: 1, .. })),
            "{deposed:?}"
        );
        assert_eq!(
            space.get(b"a").expect("get"),
            Some(b"1".to_vec()),
            "{}",
            space.name()
        );
    }
}

/// Several threads increment one counter by read, then a batch conditional on the value
/// read, retrying on conflict: no increment is lost (the batch is atomic and isolated).
#[test]
fn conditional_increments_from_many_threads_lose_nothing() {
    const THREADS: u64 = 4;
    const EACH: u64 = 200;
    for space in engines() {
        std::thread::scope(|scope| {
            for _ in 0..THREADS {
                let space = &space;
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
                                &**space,
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
}

#[test]
fn prefix_end_is_the_first_key_after_the_prefix() {
    assert_eq!(prefix_end(b"d/"), b"d0".to_vec());
    assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
    assert_eq!(prefix_end(b"\xff\xff"), vec![0xff; 9]);
}

#[test]
fn an_injected_failure_writes_nothing() {
    let space = MemoryKeySpace::new();
    space.fail_applies(1);
    let failed = apply(&space, vec![], vec![put(b"a", b"1")]);
    assert!(
        matches!(failed, Err(ApplyError::Store(StoreError::Database(_)))),
        "{failed:?}"
    );
    assert_eq!(space.get(b"a").expect("get"), None);
    apply(&space, vec![], vec![put(b"a", b"1")]).expect("the next one succeeds");
}

/// A batch read at a version some other batch has moved past is checked in full: the
/// fast path (no condition read again) is taken only when nothing was applied since.
#[test]
fn a_stale_read_version_checks_every_condition() {
    for space in engines() {
        apply(&*space, vec![], vec![put(b"k", b"1")]).expect("seed");
        let read_at = space.version();
        assert!(read_at.is_some(), "{}", space.name());
        let seen = space.get(b"k").expect("get").expect("k");
        apply(&*space, vec![], vec![put(b"k", b"2")]).expect("a concurrent write");
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
}
