//! [`EtcdKeySpace`]: the store's key space in an etcd cluster, under a prefix.
//!
//! Every store key `k` is the etcd key `prefix ++ k`. A batch is one etcd transaction:
//!
//! - `Unchanged { key, value }`: with the batch's `read_at` (a revision this engine had
//!   seen before the reads), the key exists and was last modified at or before it
//!   (`0 < mod_revision <= read_at`): whatever was read since is still its value. Without
//!   `read_at`, the value compared byte for byte.
//! - `Absent(key)`: `version == 0`.
//! - `Fence { key, token }`: the key's `create_revision == token`. A leader key deleted
//!   (its lease gone) and created again gets a new create revision, so a deposed writer
//!   never holds the new token, even if it is elected again.
//!
//! When the compares fail, the transaction's `else` branch reads every conditioned
//! key in the same step, so the error says which condition failed (the fence first).
//!
//! A write is answered once a quorum has it in its log, so [`flush`](KeySpace::flush)
//! has nothing to do. A write whose answer is lost (a timeout, a member dying under it)
//! is reported as [`StoreError::Unavailable`]: it may have applied, and the store's
//! callers read again before they act on it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use etcd_client::{Compare, CompareOp, GetOptions, KeyValue, Txn, TxnOp, TxnOpResponse};
use governance::store::StoreError;
use governance::store::engine::{ApplyError, Batch, Condition, Entry, KeySpace, Op};

use crate::connection::{CallKind, Connection, EngineErrors, EtcdOptions};

/// Entries per page of a scan (a page must stay under gRPC's 4 MiB answer).
const PAGE: usize = 256;

/// The store's key space in etcd. Cheap to clone: clones share the connection.
#[derive(Clone)]
pub struct EtcdKeySpace {
    pub(crate) conn: Arc<Connection>,
    /// The highest revision any answer has shown: the engine's version.
    seen: Arc<AtomicI64>,
}

impl fmt::Debug for EtcdKeySpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdKeySpace")
            .field("endpoints", &self.conn.options().endpoints)
            .field(
                "prefix",
                &String::from_utf8_lossy(&self.conn.options().prefix),
            )
            .field("seen", &self.seen.load(Ordering::Relaxed))
            .finish()
    }
}

impl EtcdKeySpace {
    /// The key space under `options.prefix`. Nothing is sent yet: an unreachable cluster
    /// fails the first call, not this one.
    pub fn connect(options: EtcdOptions) -> Result<EtcdKeySpace, StoreError> {
        Ok(EtcdKeySpace {
            conn: Arc::new(Connection::open(options)?),
            seen: Arc::default(),
        })
    }

    /// The etcd key of a store key: the prefix, then the key.
    pub(crate) fn full_key(&self, key: &[u8]) -> Vec<u8> {
        self.key(key)
    }

    fn key(&self, key: &[u8]) -> Vec<u8> {
        let mut full = self.conn.options().prefix.clone();
        full.extend_from_slice(key);
        full
    }

    fn saw(seen: &AtomicI64, header: Option<&etcd_client::ResponseHeader>) {
        if let Some(header) = header {
            seen.fetch_max(header.revision(), Ordering::SeqCst);
        }
    }

    /// Calls that failed for an infrastructure reason so far (the engine's and the
    /// lease's: they share the connection).
    pub fn errors(&self) -> EngineErrors {
        self.conn.errors()
    }

    /// The revision at which `key` was created (0 if it is absent): with a leader key,
    /// the leader's fencing token.
    pub fn create_revision(&self, key: &[u8]) -> Result<u64, StoreError> {
        Ok(self
            .get_kv(key)?
            .map_or(0, |kv| u64::try_from(kv.create_revision()).unwrap_or(0)))
    }

    /// The key's entry (its value and revisions), by a linearizable read.
    fn get_kv(&self, key: &[u8]) -> Result<Option<KeyValue>, StoreError> {
        let conn = Arc::clone(&self.conn);
        let seen = Arc::clone(&self.seen);
        let key = self.key(key);
        self.conn.block(async move {
            let answer = conn
                .call(CallKind::Get, true, |mut client| {
                    let key = key.clone();
                    async move { client.get(key, None).await }
                })
                .await?;
            EtcdKeySpace::saw(&seen, answer.header());
            Ok(answer.kvs().first().cloned())
        })
    }

    /// Whether the prefix holds no key at all (for an import into it).
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.count(b"", &[0xff; 9])? == 0 && self.get(b"")?.is_none())
    }

    /// One page of `[start, end)`, at `revision` if not 0; the answer's revision.
    fn page(
        &self,
        start: Vec<u8>,
        end: Vec<u8>,
        limit: usize,
        revision: i64,
    ) -> Result<(Vec<Entry>, bool, i64), StoreError> {
        let conn = Arc::clone(&self.conn);
        let seen = Arc::clone(&self.seen);
        let prefix_len = self.conn.options().prefix.len();
        self.conn.block(async move {
            conn.call(CallKind::Scan, true, |mut client| {
                let (start, end) = (start.clone(), end.clone());
                let mut options = GetOptions::new()
                    .with_range(end)
                    .with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
                if revision > 0 {
                    options = options.with_revision(revision);
                }
                async move { client.get(start, Some(options)).await }
            })
            .await
            .map(|answer| {
                EtcdKeySpace::saw(&seen, answer.header());
                let revision = answer.header().map_or(0, |h| h.revision());
                let entries = answer
                    .kvs()
                    .iter()
                    .map(|kv| (kv.key()[prefix_len..].to_vec(), kv.value().to_vec()))
                    .collect();
                (entries, answer.more(), revision)
            })
        })
    }
}

/// A failed condition, judged against the key as the transaction's `else` branch read it.
fn fails(condition: &Condition, kv: Option<&KeyValue>, read_at: Option<i64>) -> bool {
    match condition {
        Condition::Fence(fence) => {
            kv.is_none_or(|kv| u64::try_from(kv.create_revision()) != Ok(fence.token))
        }
        Condition::Absent(_) => kv.is_some(),
        Condition::Unchanged { value, .. } => match (kv, read_at) {
            (None, _) => true,
            (Some(kv), Some(at)) => kv.mod_revision() > at,
            (Some(kv), None) => kv.value() != value.as_slice(),
        },
    }
}

impl KeySpace for EtcdKeySpace {
    fn name(&self) -> &'static str {
        "etcd"
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get_kv(key)?.map(|kv| kv.value().to_vec()))
    }

    /// Pages through the range, every page after the first at the first one's revision:
    /// the scan is one consistent view.
    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        let mut entries: Vec<Entry> = Vec::new();
        if start >= end || limit == 0 {
            return Ok(entries);
        }
        let end = self.key(end);
        let mut from = self.key(start);
        let mut revision = 0;
        loop {
            let want = (limit - entries.len()).min(PAGE);
            let (page, more, at) = self.page(from, end.clone(), want, revision)?;
            revision = at;
            let last = page.last().map(|(key, _)| key.clone());
            entries.extend(page);
            match last {
                Some(last) if more && entries.len() < limit => {
                    from = self.key(&last);
                    from.push(0);
                }
                _ => return Ok(entries),
            }
        }
    }

    fn count(&self, start: &[u8], end: &[u8]) -> Result<u64, StoreError> {
        if start >= end {
            return Ok(0);
        }
        let conn = Arc::clone(&self.conn);
        let seen = Arc::clone(&self.seen);
        let (start, end) = (self.key(start), self.key(end));
        self.conn.block(async move {
            let answer = conn
                .call(CallKind::Scan, true, |mut client| {
                    let (start, end) = (start.clone(), end.clone());
                    let options = GetOptions::new().with_range(end).with_count_only();
                    async move { client.get(start, Some(options)).await }
                })
                .await?;
            EtcdKeySpace::saw(&seen, answer.header());
            Ok(u64::try_from(answer.count()).unwrap_or(0))
        })
    }

    fn apply(&self, batch: &Batch) -> Result<(), ApplyError> {
        let read_at = batch
            .read_at
            .and_then(|at| i64::try_from(at).ok())
            .filter(|&at| at > 0);
        let mut compares = Vec::new();
        // The keys to read back if a compare fails, each once.
        let mut checked: BTreeMap<Vec<u8>, ()> = BTreeMap::new();
        for condition in &batch.conditions {
            let (key, compare) = match condition {
                Condition::Unchanged { key, value } => {
                    let full = self.key(key);
                    match read_at {
                        Some(at) => {
                            compares.push(Compare::mod_revision(
                                full.clone(),
                                CompareOp::Greater,
                                0,
                            ));
                            (key, Compare::mod_revision(full, CompareOp::Less, at + 1))
                        }
                        None => (key, Compare::value(full, CompareOp::Equal, value.clone())),
                    }
                }
                Condition::Absent(key) => {
                    (key, Compare::version(self.key(key), CompareOp::Equal, 0))
                }
                Condition::Fence(fence) => {
                    let token = i64::try_from(fence.token).unwrap_or(i64::MAX);
                    (
                        &fence.key,
                        Compare::create_revision(self.key(&fence.key), CompareOp::Equal, token),
                    )
                }
            };
            compares.push(compare);
            checked.insert(key.clone(), ());
        }
        // A later operation on a key wins (etcd refuses a key written twice in one txn).
        let mut writes: BTreeMap<&[u8], &Op> = BTreeMap::new();
        for op in &batch.ops {
            let key = match op {
                Op::Put(key, _) | Op::Delete(key) => key.as_slice(),
            };
            writes.insert(key, op);
        }
        let then: Vec<TxnOp> = writes
            .values()
            .map(|op| match op {
                Op::Put(key, value) => TxnOp::put(self.key(key), value.clone(), None),
                Op::Delete(key) => TxnOp::delete(self.key(key), None),
            })
            .collect();
        let keys: Vec<Vec<u8>> = checked.into_keys().collect();
        let otherwise: Vec<TxnOp> = keys
            .iter()
            .map(|key| TxnOp::get(self.key(key), None))
            .collect();
        let txn = Txn::new().when(compares).and_then(then).or_else(otherwise);

        let conn = Arc::clone(&self.conn);
        let seen = Arc::clone(&self.seen);
        let answer = self.conn.block(async move {
            let answer = conn
                .call(CallKind::Apply, false, |mut client| {
                    let txn = txn.clone();
                    async move { client.txn(txn).await }
                })
                .await?;
            EtcdKeySpace::saw(&seen, answer.header());
            Ok(answer)
        })?;
        if answer.succeeded() {
            return Ok(());
        }
        // The else branch's reads, in `keys`' order.
        let mut read: BTreeMap<&[u8], Option<KeyValue>> = BTreeMap::new();
        for (key, response) in keys.iter().zip(answer.op_responses()) {
            if let TxnOpResponse::Get(got) = response {
                read.insert(key.as_slice(), got.kvs().first().cloned());
            }
        }
        let state = |key: &[u8]| read.get(key).and_then(Option::as_ref);
        let fenced = batch
            .conditions
            .iter()
            .find_map(|condition| match condition {
                Condition::Fence(fence) if fails(condition, state(&fence.key), read_at) => {
                    Some(fence.clone())
                }
                _ => None,
            });
        if let Some(fence) = fenced {
            return Err(ApplyError::Fenced {
                key: fence.key,
                token: fence.token,
            });
        }
        let key = batch
            .conditions
            .iter()
            .find_map(|condition| match condition {
                Condition::Unchanged { key, .. } | Condition::Absent(key)
                    if fails(condition, state(key), read_at) =>
                {
                    Some(key.clone())
                }
                _ => None,
            })
            // Every condition held when read back, yet the compares failed: cannot be,
            // but a retry reads afresh either way.
            .or_else(|| keys.first().cloned())
            .unwrap_or_default();
        Err(ApplyError::Conflict { key })
    }

    fn version(&self) -> Option<u64> {
        u64::try_from(self.seen.load(Ordering::SeqCst))
            .ok()
            .filter(|&seen| seen > 0)
    }

    /// Nothing to do: etcd answers a write once a quorum has it in its log.
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
