//! The earlier layout, migrated in place on first open.
//!
//! Until this layout, the store kept one sled tree per kind of record, named as
//! [`Kind::name`] says, with JSON records. On open, if any of those trees exists:
//!
//! 1. unless the layout marker (`meta/layout`) is already written, every record is
//!    copied into the one key space under its kind's prefix, re-encoded (binary for
//!    disbursements, dependents and intents; the rest as it was), in batches;
//! 2. the layout marker is written and flushed;
//! 3. the old trees are dropped.
//!
//! A crash during 1 leaves the old trees untouched and the marker unwritten: the next
//! open copies again from the start (every write is an overwrite of the same key with
//! the same bytes). A crash during 3 leaves the marker: the next open only drops what
//! is left. A record that does not decode stops the migration with an error naming its
//! kind and key, and nothing of the old layout is lost.

use super::engine::{Batch, KeySpace, Op, SledKeySpace};
use super::keys::{Kind, show_key};
use super::records::Intent;
use super::wire::Stored;
use super::{StoreError, codec};
use crate::treasury::{Disbursement, DisbursementId};

/// The layout this code writes: one key space, prefixes, binary records.
pub(super) const LAYOUT: u64 = 2;
/// Where the layout's version is kept (in `meta`).
pub(super) const LAYOUT_KEY: &[u8] = b"layout";
/// Records copied per batch.
const CHUNK: usize = 10_000;

/// What a migration did, for the node's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Records copied into the new layout.
    pub records: u64,
    /// Old trees dropped.
    pub trees: usize,
}

/// Migrates the sled database behind `space` from the tree-per-kind layout, if it holds
/// one; checks (or writes, on a new database) the layout marker.
pub(super) fn from_trees(space: &SledKeySpace) -> Result<Option<Migration>, StoreError> {
    let db = space.db();
    let old: Vec<Kind> = db
        .tree_names()
        .iter()
        .filter_map(|name| {
            Kind::ALL
                .into_iter()
                .find(|kind| kind.name().as_bytes() == &name[..])
        })
        .collect();
    let marker = Kind::Meta.key(LAYOUT_KEY);
    let layout = match space.get(&marker)? {
        Some(bytes) => Some(codec::decode_u64(Kind::Meta, LAYOUT_KEY, &bytes)?),
        None => None,
    };
    if let Some(layout) = layout
        && layout > LAYOUT
    {
        return Err(StoreError::Invariant {
            kind: Kind::Meta.name(),
            key: show_key(LAYOUT_KEY),
            reason: format!(
                "the database has layout {layout}, written by a newer version; this one \
                 reads layout {LAYOUT} and will not touch it"
            ),
        });
    }
    let mut records = 0;
    if layout.is_none() {
        for &kind in &old {
            records += copy_tree(space, kind)?;
        }
        apply(space, vec![Op::Put(marker, LAYOUT.to_be_bytes().to_vec())])?;
        space.flush()?;
    }
    for &kind in &old {
        db.drop_tree(kind.name())?;
    }
    if old.is_empty() {
        return Ok(None);
    }
    space.flush()?;
    Ok(Some(Migration {
        records,
        trees: old.len(),
    }))
}

/// Copies every record of the old tree of `kind`, re-encoded, in batches.
fn copy_tree(space: &SledKeySpace, kind: Kind) -> Result<u64, StoreError> {
    let tree = space.db().open_tree(kind.name())?;
    let mut ops = Vec::with_capacity(CHUNK);
    let mut copied = 0;
    for entry in tree.iter() {
        let (key, value) = entry?;
        ops.push(Op::Put(kind.key(&key), convert(kind, &key, &value)?));
        copied += 1;
        if ops.len() == CHUNK {
            apply(space, std::mem::take(&mut ops))?;
        }
    }
    apply(space, ops)?;
    Ok(copied)
}

/// An old record's bytes in the new layout.
pub(super) fn convert(kind: Kind, key: &[u8], value: &[u8]) -> Result<Vec<u8>, StoreError> {
    Ok(match kind {
        Kind::Disbursements => codec::decode_json::<Disbursement>(kind, key, value)?.to_bytes(),
        Kind::Dependents => codec::decode_json::<Vec<DisbursementId>>(kind, key, value)?.to_bytes(),
        Kind::Intents => codec::decode_json::<Intent>(kind, key, value)?.to_bytes(),
        // Empty index entries, big-endian ids, counters and JSON the new layout keeps.
        Kind::Scheduled | Kind::Ready | Kind::ExternalKeys | Kind::Meta | Kind::Audit => {
            value.to_vec()
        }
    })
}

fn apply(space: &SledKeySpace, ops: Vec<Op>) -> Result<(), StoreError> {
    if ops.is_empty() {
        return Ok(());
    }
    space
        .apply(&Batch {
            ops,
            ..Batch::default()
        })
        .map_err(|error| StoreError::Database(error.to_string()))
}
