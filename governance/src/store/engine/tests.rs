//! The engine contract (`contract.rs`), on every built-in engine.

use super::contract::{self, elect_by_counter};
use super::*;

#[test]
fn every_built_in_engine_keeps_the_contract() {
    contract::all(MemoryKeySpace::new, |space, key| {
        elect_by_counter(space, key)
    });
    contract::all(
        || SledKeySpace::temporary().expect("sled"),
        |space, key| elect_by_counter(space, key),
    );
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
    let failed = space.apply(&Batch {
        conditions: vec![],
        ops: vec![Op::Put(b"a".to_vec(), b"1".to_vec())],
        read_at: None,
    });
    assert!(
        matches!(failed, Err(ApplyError::Store(StoreError::Database(_)))),
        "{failed:?}"
    );
    assert_eq!(space.get(b"a").expect("get"), None);
    space
        .apply(&Batch {
            conditions: vec![],
            ops: vec![Op::Put(b"a".to_vec(), b"1".to_vec())],
            read_at: None,
        })
        .expect("the next one succeeds");
}
