//! The earlier layout, migrated in place on first open.
//!
//! Until this layout, the store kept one sled tree per kind of record, named as
//! [`Kind::name`] says, with JSON records. On open, if any of those trees exists:
//!
//! 1. unless the layout marker (`meta/layout`) is already written: whatever an
//!    interrupted earlier copy left in the new layout is cleared, then every record is
//!    copied into the one key space under its kind's prefix, re-encoded (binary for
//!    disbursements, dependents and intents; the rest as it was), in batches;
//! 2. the layout marker is written, with a fingerprint of each old tree, and flushed;
//! 3. the old trees are dropped, and a poisoned `meta` tree is left in their place: its
//!    `next_id` and `next_nonce` are not 8 bytes, so a node of the earlier layout, run on
//!    this database by mistake, halts on a corrupt record instead of paying from what it
//!    would take for an empty store.
//!
//! A crash during 1 leaves the old trees untouched and the marker unwritten: the next
//! open clears and copies again. A crash during 3 leaves the marker: the next open drops
//! what is left, each tree only if it still has the fingerprint recorded; a tree written
//! since (a node of the earlier layout ran here after all) stops the open with an error,
//! and nothing is dropped. A record that does not decode stops the migration with an
//! error naming its kind and key, and nothing of the old layout is lost.

use std::collections::BTreeMap;

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
/// The fingerprints of the old trees, by name, written with the marker (in `meta`).
const DROPPED_KEY: &[u8] = b"layout_dropped";
/// Records copied per batch.
const CHUNK: usize = 10_000;
/// What the poisoned `meta` tree holds: counters a node of the earlier layout cannot
/// read (not 8 bytes), and a word for whoever looks.
const POISON: [(&[u8], &[u8]); 3] = [
    (b"next_id", b"\xff"),
    (b"next_nonce", b"\xff"),
    (
        b"moved",
        b"this database is in layout 2: every record is in the default tree",
    ),
];

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
    if old.is_empty() {
        if layout.is_none() {
            apply(space, vec![Op::Put(marker, LAYOUT.to_be_bytes().to_vec())])?;
        }
        return Ok(None);
    }
    let mut records = 0;
    let prints: BTreeMap<String, u64> = match layout {
        None => {
            clear_new_layout(space)?;
            let mut prints = BTreeMap::new();
            for &kind in &old {
                let (copied, print) = copy_tree(space, kind)?;
                records += copied;
                prints.insert(kind.name().to_owned(), print);
            }
            apply(
                space,
                vec![
                    Op::Put(marker, LAYOUT.to_be_bytes().to_vec()),
                    Op::Put(Kind::Meta.key(DROPPED_KEY), codec::encode_json(&prints)),
                ],
            )?;
            space.flush()?;
            prints
        }
        Some(_) => match space.get(&Kind::Meta.key(DROPPED_KEY))? {
            Some(bytes) => codec::decode_json(Kind::Meta, DROPPED_KEY, &bytes)?,
            None => BTreeMap::new(),
        },
    };
    let mut dropped = 0;
    for &kind in &old {
        let tree = db.open_tree(kind.name())?;
        if kind == Kind::Meta && still_poisoned(&tree)? {
            // A node of the earlier layout may have run and written a snapshot or two,
            // but could neither queue nor sign (it cannot read these counters).
            tree.clear()?;
            continue;
        }
        // Empty: created by a node of the earlier layout that opened the database and
        // could write nothing; or a tree of a copy now done. Nothing to lose either way.
        let stale = !tree.is_empty() && prints.get(kind.name()) != Some(&fingerprint(&tree)?);
        if stale {
            return Err(StoreError::Invariant {
                kind: kind.name(),
                key: "(the whole tree)".into(),
                reason: "a tree of the earlier layout holds records written after this \
                         database was migrated (a node of the earlier layout ran on it): \
                         nothing was dropped; stop every node, copy the database aside and \
                         compare its payments with the chain before going on"
                    .into(),
            });
        }
        let empty = tree.is_empty();
        drop(tree);
        db.drop_tree(kind.name())?;
        if !empty {
            dropped += 1;
        }
    }
    let poison = db.open_tree(Kind::Meta.name())?;
    for (key, value) in POISON {
        poison.insert(key, value)?;
    }
    space.flush()?;
    if dropped == 0 && records == 0 {
        return Ok(None); // only the poison was there
    }
    Ok(Some(Migration {
        records,
        trees: dropped,
    }))
}

/// Removes every key of the store's kinds from the new layout (what an interrupted copy
/// left), in batches.
fn clear_new_layout(space: &SledKeySpace) -> Result<(), StoreError> {
    for kind in Kind::ALL {
        let (start, end) = kind.all();
        loop {
            let keys = space.scan(&start, &end, CHUNK)?;
            if keys.is_empty() {
                break;
            }
            apply(
                space,
                keys.into_iter().map(|(key, _)| Op::Delete(key)).collect(),
            )?;
        }
    }
    Ok(())
}

/// A fingerprint of a tree's records (FNV-1a over every key and value, lengths
/// included): a tree changed since it was taken has another one.
fn fingerprint(tree: &sled::Tree) -> Result<u64, StoreError> {
    let mut print = Fnv::default();
    for entry in tree.iter() {
        let (key, value) = entry?;
        print.add(&key);
        print.add(&value);
    }
    Ok(print.0)
}

/// Whether `tree` still holds the poisoned counters (whatever else a node of the earlier
/// layout added beside them).
fn still_poisoned(tree: &sled::Tree) -> Result<bool, StoreError> {
    for (key, value) in &POISON[..2] {
        if tree.get(key)?.as_deref() != Some(*value) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// FNV-1a, 64 bits, over length-prefixed fields.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn add(&mut self, bytes: &[u8]) {
        for byte in (bytes.len() as u64).to_be_bytes().iter().chain(bytes) {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Copies every record of the old tree of `kind`, re-encoded, in batches; returns how
/// many and the tree's fingerprint.
fn copy_tree(space: &SledKeySpace, kind: Kind) -> Result<(u64, u64), StoreError> {
    let tree = space.db().open_tree(kind.name())?;
    let mut ops = Vec::with_capacity(CHUNK);
    let mut copied = 0;
    let mut print = Fnv::default();
    for entry in tree.iter() {
        let (key, value) = entry?;
        print.add(&key);
        print.add(&value);
        ops.push(Op::Put(kind.key(&key), convert(kind, &key, &value)?));
        copied += 1;
        if ops.len() == CHUNK {
            apply(space, std::mem::take(&mut ops))?;
        }
    }
    apply(space, ops)?;
    Ok((copied, print.0))
}

/// An old record's bytes in the new layout.
pub(super) fn convert(kind: Kind, key: &[u8], value: &[u8]) -> Result<Vec<u8>, StoreError> {
    Ok(match kind {
        Kind::Disbursements => codec::decode_json::<Disbursement>(kind, key, value)?.to_bytes(),
        Kind::Dependents => codec::decode_json::<Vec<DisbursementId>>(kind, key, value)?.to_bytes(),
        Kind::Intents => codec::decode_json::<Intent>(kind, key, value)?.to_bytes(),
        // Empty index entries, big-endian ids, counters and JSON the new layout keeps.
        // (The earlier layout had no `awaiting` or `held` tree: those kinds came later.)
        Kind::Scheduled
        | Kind::Ready
        | Kind::Awaiting
        | Kind::Held
        | Kind::ExternalKeys
        | Kind::Meta
        | Kind::Audit => value.to_vec(),
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
