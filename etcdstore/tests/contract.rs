//! The store's engine contract and the store's own cross-process tests, on a real etcd
//! (one member started on loopback ports in a temporary directory).

use std::sync::atomic::{AtomicU64, Ordering};

use etcdstore::{EtcdKeySpace, EtcdOptions};
use governance::store::engine::{Batch, KeySpace, Op, contract};

fn etcd() -> Option<etcdharness::Etcd> {
    etcdharness::single_for_test(module_path!())
}

/// A key space under a prefix no other test uses.
fn space(etcd: &etcdharness::Etcd) -> EtcdKeySpace {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = format!("/test/{}/", NEXT.fetch_add(1, Ordering::SeqCst));
    EtcdKeySpace::connect(EtcdOptions::new(etcd.endpoints(), prefix)).expect("connect")
}

/// etcd's election: the key created anew; its create revision is the token.
fn elect(space: &EtcdKeySpace, key: &[u8]) -> u64 {
    for op in [
        Op::Delete(key.to_vec()),
        Op::Put(key.to_vec(), b"me".to_vec()),
    ] {
        space
            .apply(&Batch {
                conditions: vec![],
                ops: vec![op],
                read_at: None,
            })
            .expect("write");
    }
    space.create_revision(key).expect("create revision")
}

#[test]
fn the_etcd_engine_keeps_the_contract() {
    let Some(etcd) = etcd() else { return };
    contract::all(|| space(&etcd), elect);
}

#[test]
fn prefixes_keep_stores_apart() {
    let Some(etcd) = etcd() else { return };
    let (a, b) = (space(&etcd), space(&etcd));
    a.apply(&Batch {
        conditions: vec![],
        ops: vec![Op::Put(b"k".to_vec(), b"a".to_vec())],
        read_at: None,
    })
    .expect("write");
    assert_eq!(b.get(b"k").expect("get"), None);
    assert_eq!(b.scan(b"", &[0xff], usize::MAX).expect("scan"), vec![]);
    assert!(b.is_empty().expect("empty"));
    assert!(!a.is_empty().expect("not empty"));
}
