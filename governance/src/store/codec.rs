//! Bytes to records and back, each failure a `StoreError::Corrupt` naming the record's
//! kind and key: binary records (`wire.rs`), JSON for the ones people read, big-endian
//! counters and keys.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::StoreError;
use super::keys::{Kind, show_key, u64_of};
use super::wire::Stored;

fn corrupt(kind: Kind, key: &[u8], reason: String) -> StoreError {
    StoreError::Corrupt {
        kind: kind.name(),
        key: show_key(key),
        reason,
    }
}

/// A binary record of `kind` at `key` (the key after the kind's prefix).
pub(crate) fn decode<T: Stored>(kind: Kind, key: &[u8], value: &[u8]) -> Result<T, StoreError> {
    T::from_bytes(value).map_err(|reason| corrupt(kind, key, reason))
}

pub(crate) fn encode_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Our records are plain structs of strings and integers: serialising cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

pub(crate) fn decode_json<T: DeserializeOwned>(
    kind: Kind,
    key: &[u8],
    value: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(value).map_err(|error| corrupt(kind, key, error.to_string()))
}

pub(crate) fn decode_u64(kind: Kind, key: &[u8], value: &[u8]) -> Result<u64, StoreError> {
    u64_of(value).ok_or_else(|| {
        corrupt(
            kind,
            key,
            format!("expected 8 bytes, found {}", value.len()),
        )
    })
}

pub(crate) fn key_u64(kind: Kind, key: &[u8]) -> Result<u64, StoreError> {
    u64_of(key).ok_or_else(|| corrupt(kind, key, "expected an 8-byte key".into()))
}

pub(crate) fn key_pair(kind: Kind, key: &[u8]) -> Result<(u64, u64), StoreError> {
    match (key.get(..8).and_then(u64_of), key.get(8..).and_then(u64_of)) {
        (Some(a), Some(b)) if key.len() == 16 => Ok((a, b)),
        _ => Err(corrupt(kind, key, "expected a 16-byte key".into())),
    }
}
