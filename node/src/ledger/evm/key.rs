//! `TreasuryKey`: the treasury's secp256k1 private key, read from a file and never shown.
//! The file's text and the decoded bytes are wiped once parsed; `k256` wipes the key
//! itself when it is dropped.

use std::fmt;

use alloy_primitives::{Address, B256, Signature, hex};
use governance::LedgerError;
use k256::ecdsa::SigningKey;
use zeroize::Zeroizing;

/// The treasury's signing key and the address it controls.
pub(super) struct TreasuryKey {
    signing: SigningKey,
    address: Address,
}

impl fmt::Debug for TreasuryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TreasuryKey")
            .field("address", &self.address.to_checksum(None))
            .field("key", &"<redacted>")
            .finish()
    }
}

impl TreasuryKey {
    /// Reads a key file's text: 64 hex digits, optionally `0x` first, whitespace around.
    /// The reason for a refusal never quotes the text.
    pub(super) fn parse(text: Zeroizing<String>) -> Result<TreasuryKey, &'static str> {
        let text = text.trim();
        let digits = text
            .strip_prefix("0x")
            .or_else(|| text.strip_prefix("0X"))
            .unwrap_or(text);
        if digits.len() != 64 {
            return Err("expected 64 hex digits (optionally after 0x)");
        }
        let mut bytes = Zeroizing::new([0_u8; 32]);
        hex::decode_to_slice(digits, bytes.as_mut_slice())
            .map_err(|_| "expected 64 hex digits (optionally after 0x), found another character")?;
        let signing = SigningKey::from_slice(bytes.as_slice())
            .map_err(|_| "not a secp256k1 private key (zero, or not below the curve order)")?;
        let address = Address::from_private_key(&signing);
        Ok(TreasuryKey { signing, address })
    }

    /// The address the key controls.
    pub(super) fn address(&self) -> Address {
        self.address
    }

    /// Signs a 32-byte hash (a transaction's signing hash), low-s normalised.
    pub(super) fn sign_hash(&self, hash: &B256) -> Result<Signature, LedgerError> {
        let (signature, recovery) = self
            .signing
            .sign_prehash_recoverable(hash.as_slice())
            .map_err(|error| {
                LedgerError::Signing(format!("the treasury key cannot sign: {error}"))
            })?;
        Ok(Signature::from((signature, recovery)))
    }
}
