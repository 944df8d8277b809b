//! The store's trees, by the names `GovStore` gives them, and what a store error must look
//! like: a record that does not decode is `Corrupt`, one that must exist is `Missing`, and
//! records that disagree are `Invariant`, each naming its tree and key, never a panic.

use governance::{GovStore, StoreError};

/// Every tree of `GovStore` (see the table in `governance/src/store/mod.rs`).
pub const TREES: [&str; 8] = [
    "disbursements",
    "dependents",
    "scheduled",
    "ready",
    "intents",
    "external_keys",
    "meta",
    "audit",
];

/// Empties every tree, so that each input starts from the same (empty) store: a crash
/// then reproduces from its input alone.
pub fn clear(store: &GovStore) {
    for name in TREES {
        store
            .raw_tree(name)
            .and_then(|tree| tree.clear().map_err(StoreError::from))
            .unwrap_or_else(|error| panic!("cannot clear tree {name}: {error}"));
    }
}

/// Asserts that `error` names a tree of the store and a key, in its fields and its message.
pub fn check_error(error: &StoreError) {
    let (tree, key) = match error {
        StoreError::Corrupt { tree, key, .. }
        | StoreError::Missing { tree, key }
        | StoreError::Invariant { tree, key, .. } => (tree, key),
        // A temporary sled database on a healthy disk: an I/O error is not the input's.
        other => panic!("unexpected store error (not Corrupt or Missing): {other}"),
    };
    assert!(TREES.contains(tree), "unknown tree {tree:?} in: {error}");
    assert!(!key.is_empty(), "no key in: {error}");
    let message = error.to_string();
    assert!(
        message.contains(tree) && message.contains(key.as_str()),
        "the message does not name tree {tree:?} and key {key:?}: {message}"
    );
}
