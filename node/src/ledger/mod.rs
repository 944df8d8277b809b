//! The ledgers the node can talk to: the embedded dev ledger, and an EVM chain over
//! JSON-RPC.

pub mod dev;
pub mod evm;

/// A `u128` written as a decimal string, read from a string or a non-negative integer.
pub(crate) mod decimal_u128 {
    use std::fmt;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(value: &u128, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<u128, D::Error> {
        deserializer.deserialize_any(Decimal)
    }

    struct Decimal;

    impl Visitor<'_> for Decimal {
        type Value = u128;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer, as a decimal string such as \"1000000\"")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<u128, E> {
            // `u128::from_str` also takes a leading `+`; amounts and wei are digits only.
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(E::invalid_value(de::Unexpected::Str(text), &self));
            }
            text.parse()
                .map_err(|_| E::custom(format!("{text} does not fit in 128 bits")))
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<u128, E> {
            Ok(u128::from(value))
        }

        fn visit_u128<E: de::Error>(self, value: u128) -> Result<u128, E> {
            Ok(value)
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<u128, E> {
            u128::try_from(value)
                .map_err(|_| E::invalid_value(de::Unexpected::Signed(value), &self))
        }

        fn visit_i128<E: de::Error>(self, value: i128) -> Result<u128, E> {
            u128::try_from(value).map_err(|_| E::custom(format!("{value} is negative")))
        }
    }
}
