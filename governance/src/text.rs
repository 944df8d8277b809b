//! Text helpers: messages bounded for operators, and serde helpers for values stored as
//! text (`u128` as a decimal string, bytes as hex).

/// `text` cut to at most `max_bytes` bytes, on a character boundary, `…` marking a cut
/// (and counted in the budget). For messages from elsewhere (a ledger's error, an
/// endpoint's answer) kept for operators: in logs, `/status` and records.
pub fn bounded(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let mut end = max_bytes.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Now, in Unix milliseconds (0 before 1970, `u64::MAX` past 584 million years): the
/// time the store's records and the audit log carry.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

/// A `u128` as a decimal string in records: JSON readers (and people) lose precision on
/// numbers past 2^53.
pub(crate) mod decimal {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(crate) fn serialize<S: Serializer>(value: &u128, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<u128, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(D::Error::custom("expected a decimal integer"));
        }
        text.parse().map_err(D::Error::custom)
    }
}

/// Bytes as a lowercase hex string in serialised records: half the size of a JSON array
/// of numbers, and readable.
pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(bytes.len() * 2);
        for &b in bytes {
            text.push(char::from(DIGITS[usize::from(b >> 4)]));
            text.push(char::from(DIGITS[usize::from(b & 0xf)]));
        }
        serializer.serialize_str(&text)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        if text.len() % 2 != 0 {
            return Err(D::Error::custom("odd number of hex digits"));
        }
        let digit = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(D::Error::custom("not a hex digit")),
        };
        text.as_bytes()
            .chunks(2)
            .map(|pair| Ok(digit(pair[0])? << 4 | digit(pair[1])?))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::bounded;

    #[test]
    fn bounded_cuts_on_a_character_boundary_within_the_budget() {
        assert_eq!(bounded("short", 16), "short");
        let cut = bounded(&"é".repeat(20), 16);
        assert!(cut.len() <= 16, "{cut}");
        assert!(cut.ends_with('…'), "{cut}");
        assert_eq!(bounded("abcdefgh", 8), "abcdefgh");
        assert_eq!(bounded("abcdefghi", 8), "abcde…");
    }
}
