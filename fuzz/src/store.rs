//! The store's kinds of record, by the names `GovStore` gives them, and what a store error
//! must look like: a record that does not decode is `Corrupt`, one that must exist is
//! `Missing`, and records that disagree are `Invariant`, each naming its kind and key,
//! never a panic.

use governance::{GovStore, StoreError};

/// Every kind of record of `GovStore` (see the table in `governance/src/store/keys.rs`).
pub const KINDS: [&str; 8] = [
    "disbursements",
    "dependents",
    "scheduled",
    "ready",
    "intents",
    "external_keys",
    "meta",
    "audit",
];

/// Empties the store, so that each input starts from the same (empty) store: a crash
/// then reproduces from its input alone.
pub fn clear(store: &GovStore) {
    store
        .raw_clear()
        .unwrap_or_else(|error| panic!("cannot clear the store: {error}"));
}

/// Asserts that `error` names a kind of record and a key, in its fields and its message.
pub fn check_error(error: &StoreError) {
    let (tree, key) = match error {
        StoreError::Corrupt { kind, key, .. }
        | StoreError::Missing { kind, key }
        | StoreError::Invariant { kind, key, .. } => (kind, key),
        // A temporary sled database on a healthy disk: an I/O error is not the input's.
        other => panic!("unexpected store error (not Corrupt or Missing): {other}"),
    };
    assert!(KINDS.contains(tree), "unknown kind {tree:?} in: {error}");
    assert!(!key.is_empty(), "no key in: {error}");
    let message = error.to_string();
    assert!(
        message.contains(tree) && message.contains(key.as_str()),
        "the message does not name kind {tree:?} and key {key:?}: {message}"
    );
}
