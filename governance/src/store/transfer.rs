//! Copying a store from one engine to another: `node store export | node store import`
//! (or `node store migrate --to etcd`), all or nothing.
//!
//! The dump is text: a header line, then one line per key (`hex(key) hex(value)`, in key
//! order), then a trailer with the count and a checksum (FNV-1a over every key and
//! value with their lengths), so a truncated or damaged dump is refused before anything
//! is written. Keys under `e/` (the leader key, the import marker) belong to one
//! deployment and are neither exported nor imported.
//!
//! An import goes into an empty store only, in batches: the first creates the import
//! marker `e/import` (absent before: two imports cannot interleave), every batch is
//! conditional on it, and the last removes it. A store holding the marker is an import
//! that did not finish: [`GovStore::import_pending`] says so (the node refuses to run its
//! executor on it), and `import --force` clears it and starts again.

use std::io::{BufRead, Write};

use super::engine::{Batch, Condition, Entry, Op};
use super::{GovStore, StoreError};

/// The dump's first line.
const HEADER: &str = "treasury-store-dump v1";
/// Keys that belong to a deployment, not to the treasury's records.
const DEPLOYMENT: &[u8] = b"e/";
/// The marker of an import in progress.
const MARKER: &[u8] = b"e/import";
/// Writes per batch: under etcd's default `--max-txn-ops` (128), so an import works
/// even on a cluster not yet started with the flags the executor needs.
const CHUNK: usize = 100;

/// Why an export or import failed; an import that fails partway leaves its marker.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading or writing the dump failed.
    #[error("dump: {0}")]
    Io(#[from] std::io::Error),
    /// The dump is not one, or is damaged; nothing was written.
    #[error("the dump is not valid (nothing was imported): line {line}: {reason}")]
    Malformed {
        /// 1-based.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The target holds records already; nothing was written.
    #[error("the target store is not empty ({0}): an import goes into an empty prefix only")]
    NotEmpty(String),
    /// A node leads on the target store (its leader key is there): stop every node first.
    #[error(
        "a node is running on the target store (it holds the leader key): stop every node \
         on it before importing"
    )]
    NodeRunning,
    /// An earlier import into the target did not finish.
    #[error(
        "an earlier import into the target did not finish: run the import again with --force \
         (it clears what that import wrote)"
    )]
    Interrupted,
}

/// FNV-1a, 64 bits.
#[derive(Debug, Clone, Copy)]
struct Checksum(u64);

impl Checksum {
    fn new() -> Checksum {
        Checksum(0xcbf2_9ce4_8422_2325)
    }

    fn add(&mut self, bytes: &[u8]) {
        for byte in (bytes.len() as u64).to_be_bytes().iter().chain(bytes) {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl GovStore {
    /// Every record, in key order, as the dump's lines; the count.
    pub fn export(&self, out: &mut dyn Write) -> Result<u64, TransferError> {
        writeln!(out, "{HEADER}")?;
        let mut sum = Checksum::new();
        let mut count = 0u64;
        let mut from: Vec<u8> = Vec::new();
        let end = vec![0xff; 9];
        loop {
            let page = self.space.scan(&from, &end, 1000)?;
            let Some((last, _)) = page.last() else { break };
            from = last.clone();
            from.push(0);
            for (key, value) in &page {
                if key.starts_with(DEPLOYMENT) {
                    continue;
                }
                sum.add(key);
                sum.add(value);
                count += 1;
                writeln!(out, "{} {}", hex(key), hex(value))?;
            }
        }
        writeln!(out, "end {count} {:016x}", sum.0)?;
        out.flush()?;
        Ok(count)
    }

    /// Reads a whole dump (checking it) and writes it into this store, which must be
    /// empty (or hold an interrupted import, with `force`), with no node leading on it
    /// (no leader key). Returns the count.
    pub fn import(&self, input: &mut dyn BufRead, force: bool) -> Result<u64, TransferError> {
        let entries = read_dump(input)?;
        let token = format!("{}:{}", std::process::id(), crate::text::unix_ms()).into_bytes();
        let marker = Condition::Unchanged {
            key: MARKER.to_vec(),
            value: token.clone(),
        };
        self.claim_marker(force, &token)?;
        // From here the marker is ours and never absent: no node starts an executor on
        // the store (it checks the marker at every term), and every write below is
        // conditional on it.
        self.clear_records(&marker)?;
        for chunk in entries.chunks(CHUNK) {
            self.space
                .apply(&Batch {
                    conditions: vec![marker.clone()],
                    ops: chunk
                        .iter()
                        .map(|(key, value)| Op::Put(key.clone(), value.clone()))
                        .collect(),
                    read_at: None,
                })
                .map_err(apply_error)?;
        }
        self.space
            .apply(&Batch {
                conditions: vec![marker],
                ops: vec![Op::Delete(MARKER.to_vec())],
                read_at: None,
            })
            .map_err(apply_error)?;
        self.space.flush()?;
        self.count_totals()?;
        Ok(entries.len() as u64)
    }

    /// Whether an import into this store did not finish (its marker is there).
    pub fn import_pending(&self) -> Result<bool, StoreError> {
        Ok(self.space.get(MARKER)?.is_some())
    }

    /// Puts this import's marker in place, in one step with the checks: no leader key
    /// (no node runs an executor on the store), and either no marker and no record, or
    /// (with `force`) the interrupted import's marker, taken over.
    fn claim_marker(&self, force: bool, token: &[u8]) -> Result<(), TransferError> {
        let no_leader = Condition::Absent(super::engine::LEADER_KEY.to_vec());
        let previous = self.space.get(MARKER)?;
        let condition = match previous {
            Some(_) if !force => return Err(TransferError::Interrupted),
            Some(value) => Condition::Unchanged {
                key: MARKER.to_vec(),
                value,
            },
            None => {
                if let Some(first) = self.records_after(&[])?.first() {
                    return Err(TransferError::NotEmpty(format!(
                        "it holds {}",
                        super::keys::show_key(first)
                    )));
                }
                Condition::Absent(MARKER.to_vec())
            }
        };
        match self.space.apply(&Batch {
            conditions: vec![condition, no_leader],
            ops: vec![Op::Put(MARKER.to_vec(), token.to_vec())],
            read_at: None,
        }) {
            Ok(()) => Ok(()),
            Err(super::engine::ApplyError::Conflict { key })
                if key == super::engine::LEADER_KEY =>
            {
                Err(TransferError::NodeRunning)
            }
            Err(error) => Err(apply_error(error)),
        }
    }

    /// Removes every record (what an interrupted import wrote), under this import's
    /// marker.
    fn clear_records(&self, marker: &Condition) -> Result<(), TransferError> {
        loop {
            let keys = self.records_after(&[])?;
            if keys.is_empty() {
                return Ok(());
            }
            for chunk in keys.chunks(CHUNK) {
                self.space
                    .apply(&Batch {
                        conditions: vec![marker.clone()],
                        ops: chunk.iter().map(|key| Op::Delete(key.clone())).collect(),
                        read_at: None,
                    })
                    .map_err(apply_error)?;
            }
        }
    }

    /// Up to 1000 record keys (not deployment keys) at or after `from`.
    fn records_after(&self, from: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut keys = Vec::new();
        let mut from = from.to_vec();
        let end = vec![0xff; 9];
        loop {
            let page = self.space.scan(&from, &end, 1000)?;
            let Some((last, _)) = page.last() else {
                return Ok(keys);
            };
            from = last.clone();
            from.push(0);
            keys.extend(
                page.into_iter()
                    .map(|(key, _)| key)
                    .filter(|key| !key.starts_with(DEPLOYMENT)),
            );
            if keys.len() >= 1000 {
                return Ok(keys);
            }
        }
    }
}

fn apply_error(error: super::engine::ApplyError) -> TransferError {
    match error {
        super::engine::ApplyError::Store(error) => TransferError::Store(error),
        other => TransferError::Store(StoreError::Database(format!(
            "import: {other} (another import or writer touched the target)"
        ))),
    }
}

/// The dump's entries, checked against its trailer.
fn read_dump(input: &mut dyn BufRead) -> Result<Vec<Entry>, TransferError> {
    let malformed = |line: usize, reason: &str| TransferError::Malformed {
        line,
        reason: reason.to_owned(),
    };
    let mut lines = input.lines();
    match lines.next().transpose()? {
        Some(header) if header.trim_end() == HEADER => {}
        _ => return Err(malformed(1, &format!("expected `{HEADER}`"))),
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut sum = Checksum::new();
    let mut number = 1;
    for line in lines {
        let line = line?;
        number += 1;
        if let Some(trailer) = line.strip_prefix("end ") {
            let mut parts = trailer.split_whitespace();
            let count: Option<u64> = parts.next().and_then(|c| c.parse().ok());
            let checksum = parts.next().and_then(|c| u64::from_str_radix(c, 16).ok());
            if count != Some(entries.len() as u64) {
                return Err(malformed(number, "the count does not match the lines read"));
            }
            if checksum != Some(sum.0) {
                return Err(malformed(number, "the checksum does not match"));
            }
            return Ok(entries);
        }
        let (key, value) = line
            .split_once(' ')
            .and_then(|(k, v)| Some((unhex(k)?, unhex(v)?)))
            .ok_or_else(|| malformed(number, "expected `hex(key) hex(value)`"))?;
        if key.starts_with(DEPLOYMENT) {
            return Err(malformed(
                number,
                "a deployment key (e/...) is not a record",
            ));
        }
        if entries.last().is_some_and(|(last, _)| *last >= key) {
            return Err(malformed(number, "keys are not in order"));
        }
        sum.add(&key);
        sum.add(&value);
        entries.push((key, value));
    }
    Err(malformed(number, "no `end` trailer: the dump is truncated"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(store: &GovStore, n: u32) {
        for i in 0..n {
            let new = crate::treasury::NewDisbursement {
                destination: format!("dest-{i}"),
                amount: u128::from(i) + 1,
                memo: String::new(),
                activation_epoch: 0,
                depends_on: vec![],
                external_key: None,
                asset: "native".into(),
            };
            store.queue(&new, 0).expect("queue");
        }
    }

    #[test]
    fn a_dump_round_trips_into_an_empty_store_and_keeps_the_totals() {
        let source = GovStore::in_memory();
        queued(&source, 250);
        let mut dump = Vec::new();
        let exported = source.export(&mut dump).expect("export");
        let target = GovStore::in_memory();
        let imported = target.import(&mut dump.as_slice(), false).expect("import");
        assert_eq!(exported, imported);
        assert_eq!(
            target.totals().expect("totals"),
            source.totals().expect("totals")
        );
        assert!(!target.import_pending().expect("marker"));
        let mut again = Vec::new();
        target.export(&mut again).expect("export");
        assert_eq!(again, dump, "the same records, byte for byte");
        // Into a store that is not empty: refused, nothing written.
        assert!(matches!(
            target.import(&mut dump.as_slice(), false),
            Err(TransferError::NotEmpty(_))
        ));
    }

    #[test]
    fn a_damaged_or_truncated_dump_writes_nothing() {
        let source = GovStore::in_memory();
        queued(&source, 3);
        let mut dump = Vec::new();
        source.export(&mut dump).expect("export");
        let text = String::from_utf8(dump).expect("text");
        let truncated = text.lines().take(3).collect::<Vec<_>>().join("\n");
        let flipped = text.replacen("0", "1", 1);
        for bad in [truncated.as_str(), flipped.as_str(), "nonsense\n", ""] {
            let target = GovStore::in_memory();
            let outcome = target.import(&mut bad.as_bytes(), false);
            assert!(
                matches!(outcome, Err(TransferError::Malformed { .. })),
                "{outcome:?}"
            );
            assert!(target.records_after(&[]).expect("scan").is_empty());
            assert!(!target.import_pending().expect("marker"));
        }
    }

    #[test]
    fn an_import_is_refused_while_a_node_leads_on_the_store() {
        let source = GovStore::in_memory();
        queued(&source, 2);
        let mut dump = Vec::new();
        source.export(&mut dump).expect("export");
        let target = GovStore::in_memory();
        target
            .write(vec![Op::Put(
                super::super::engine::LEADER_KEY.to_vec(),
                1u64.to_be_bytes().to_vec(),
            )])
            .expect("a leader");
        assert!(matches!(
            target.import(&mut dump.as_slice(), false),
            Err(TransferError::NodeRunning)
        ));
        assert!(!target.import_pending().expect("marker"));
        assert!(target.records_after(&[]).expect("scan").is_empty());
    }

    #[test]
    fn an_interrupted_import_is_refused_until_forced() {
        let source = GovStore::in_memory();
        queued(&source, 5);
        let mut dump = Vec::new();
        source.export(&mut dump).expect("export");
        let target = GovStore::in_memory();
        // An import that died after its marker and one record.
        target
            .write(vec![
                Op::Put(MARKER.to_vec(), b"dead".to_vec()),
                Op::Put(b"d/stray".to_vec(), b"x".to_vec()),
            ])
            .expect("write");
        assert!(target.import_pending().expect("marker"));
        assert!(matches!(
            target.import(&mut dump.as_slice(), false),
            Err(TransferError::Interrupted)
        ));
        target.import(&mut dump.as_slice(), true).expect("forced");
        assert!(!target.import_pending().expect("marker"));
        assert_eq!(
            target.totals().expect("totals"),
            source.totals().expect("totals")
        );
        assert_eq!(target.space.get(b"d/stray").expect("get"), None);
    }
}
