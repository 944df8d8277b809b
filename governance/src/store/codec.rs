//! Keys and values as bytes: big-endian integers (so sled orders them numerically) and
//! JSON records, decoded into `StoreError::Corrupt` naming the tree and key.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::StoreError;

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

fn u64_of(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

pub(crate) fn decode_u64(tree: &'static str, key: &[u8], value: &[u8]) -> Result<u64, StoreError> {
    u64_of(value).ok_or_else(|| StoreError::Corrupt {
        tree,
        key: show_key(key),
        reason: format!("expected 8 bytes, found {}", value.len()),
    })
}

pub(crate) fn key_u64(tree: &'static str, key: &[u8]) -> Result<u64, StoreError> {
    u64_of(key).ok_or_else(|| StoreError::Corrupt {
        tree,
        key: show_key(key),
        reason: "expected an 8-byte key".into(),
    })
}

pub(crate) fn key_pair(tree: &'static str, key: &[u8]) -> Result<(u64, u64), StoreError> {
    match (key.get(..8).and_then(u64_of), key.get(8..).and_then(u64_of)) {
        (Some(a), Some(b)) if key.len() == 16 => Ok((a, b)),
        _ => Err(StoreError::Corrupt {
            tree,
            key: show_key(key),
            reason: "expected a 16-byte key".into(),
        }),
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Our records are plain structs of strings and integers: serialising cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

pub(crate) fn decode<T: DeserializeOwned>(
    tree: &'static str,
    key: &[u8],
    value: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(value).map_err(|error| StoreError::Corrupt {
        tree,
        key: show_key(key),
        reason: error.to_string(),
    })
}
