//! Where each record lives in the key space: one prefix per kind of record, then the
//! record's own key (big-endian integers, so that keys sort numerically).
//!
//! | kind            | key after the prefix     | value                                    |
//! |-----------------|--------------------------|------------------------------------------|
//! | `disbursements` | id                       | `Disbursement` (binary, `wire.rs`)       |
//! | `dependents`    | id                       | ids still waiting for it (binary)        |
//! | `scheduled`     | (activation epoch, id)   | empty: queued, dependencies executed     |
//! | `ready`         | id                       | empty: scheduled and its epoch reached   |
//! | `awaiting`      | id                       | empty: awaiting approval                 |
//! | `held`          | id                       | the policy's refusal (text): ready, but not signable under the policy in force |
//! | `intents`       | nonce                    | `Intent` (binary): every attempt at the nonce, binding, inclusion |
//! | `external_keys` | key                      | id                                       |
//! | `meta`          | name                     | counters (8 bytes), the pinned chain id, snapshots and the decision (JSON) |
//! | `audit`         | sequence                 | `AuditRecord` (JSON: people read it)     |

use super::engine::prefix_end;

/// A kind of record: a prefix of the key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Every disbursement, by id: the history.
    Disbursements,
    /// By id: the queued disbursements waiting for it to execute.
    Dependents,
    /// (activation epoch, id): queued, dependencies executed, epoch not yet seen.
    Scheduled,
    /// id: payable now.
    Ready,
    /// id: awaiting approval.
    Awaiting,
    /// id: was ready, refused by the policy in force at signing (the reason).
    Held,
    /// nonce: the intents in flight.
    Intents,
    /// An external (idempotency) key: the id it was queued as.
    ExternalKeys,
    /// Named singletons: counters, the chain id, snapshots.
    Meta,
    /// The audit log, by sequence number.
    Audit,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 10] = [
        Kind::Disbursements,
        Kind::Dependents,
        Kind::Scheduled,
        Kind::Ready,
        Kind::Awaiting,
        Kind::Held,
        Kind::Intents,
        Kind::ExternalKeys,
        Kind::Meta,
        Kind::Audit,
    ];

    /// Its name, as errors say it (and as the earlier layout named its sled tree).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Disbursements => "disbursements",
            Kind::Dependents => "dependents",
            Kind::Scheduled => "scheduled",
            Kind::Ready => "ready",
            Kind::Awaiting => "awaiting",
            Kind::Held => "held",
            Kind::Intents => "intents",
            Kind::ExternalKeys => "external_keys",
            Kind::Meta => "meta",
            Kind::Audit => "audit",
        }
    }

    /// The kind named `name`.
    #[cfg(any(test, feature = "test-support"))]
    pub fn named(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    fn prefix(self) -> &'static [u8] {
        match self {
            Kind::Disbursements => b"d/",
            Kind::Dependents => b"w/",
            Kind::Scheduled => b"s/",
            Kind::Ready => b"r/",
            Kind::Awaiting => b"p/",
            Kind::Held => b"h/",
            Kind::Intents => b"i/",
            Kind::ExternalKeys => b"x/",
            Kind::Meta => b"m/",
            Kind::Audit => b"a/",
        }
    }

    /// The full key of this kind's record at `key`.
    pub fn key(self, key: &[u8]) -> Vec<u8> {
        let prefix = self.prefix();
        let mut full = Vec::with_capacity(prefix.len() + key.len());
        full.extend_from_slice(prefix);
        full.extend_from_slice(key);
        full
    }

    /// The range holding every record of this kind from `start` (a key after the
    /// prefix) on: `(first, end)`, end exclusive.
    pub fn from(self, start: &[u8]) -> (Vec<u8>, Vec<u8>) {
        (self.key(start), prefix_end(self.prefix()))
    }

    /// Every record of this kind.
    pub fn all(self) -> (Vec<u8>, Vec<u8>) {
        self.from(&[])
    }

    /// A full key without this kind's prefix.
    pub fn strip(self, full: &[u8]) -> &[u8] {
        full.strip_prefix(self.prefix()).unwrap_or(full)
    }
}

pub(crate) fn u64_key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

pub(crate) fn pair_key(a: u64, b: u64) -> [u8; 16] {
    let mut key = [0; 16];
    key[..8].copy_from_slice(&a.to_be_bytes());
    key[8..].copy_from_slice(&b.to_be_bytes());
    key
}

/// A key as an operator would read it in an error: numbers for numeric keys.
pub(crate) fn show_key(key: &[u8]) -> String {
    if key.starts_with(b"e/") {
        // A deployment key (the leader key is 8 bytes, and no number).
        return format!("{:?}", String::from_utf8_lossy(key));
    }
    match key.len() {
        8 => u64_of(key).map_or_else(|| format!("{key:?}"), |n| n.to_string()),
        16 => match (u64_of(&key[..8]), u64_of(&key[8..])) {
            (Some(a), Some(b)) => format!("({a}, {b})"),
            _ => format!("{key:?}"),
        },
        _ => match std::str::from_utf8(key) {
            Ok(text) => format!("{text:?}"),
            Err(_) => format!("{key:?}"),
        },
    }
}

pub(crate) fn u64_of(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}
