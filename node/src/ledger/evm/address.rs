//! What a destination is on an EVM chain: `0x` and 40 hex digits, EIP-55 checksummed
//! when written in mixed case.

use alloy_primitives::Address;

/// Parses a destination, or says in words what is wrong with it.
pub(super) fn parse_destination(text: &str) -> Result<Address, String> {
    let Some(digits) = text.strip_prefix("0x") else {
        return Err(format!(
            "an EVM address starts with 0x and has 40 hex digits; {} does not start with 0x",
            quoted(text)
        ));
    };
    if let Some(bad) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "an EVM address has hex digits only after 0x; {} has {bad:?}",
            quoted(text)
        ));
    }
    if digits.len() != 40 {
        return Err(format!(
            "an EVM address has 40 hex digits after 0x; {} has {}",
            quoted(text),
            digits.len()
        ));
    }
    let address: Address = text
        .parse()
        .map_err(|error| format!("{} is not an address: {error}", quoted(text)))?;
    let upper = digits.bytes().any(|b| b.is_ascii_uppercase());
    let lower = digits.bytes().any(|b| b.is_ascii_lowercase());
    // All one case carries no checksum (EIP-55); mixed case must be exactly it.
    if upper && lower && address.to_checksum(None) != text {
        return Err(format!(
            "{} fails its EIP-55 checksum (mixed case must match it exactly: a typo?)",
            quoted(text)
        ));
    }
    if address.is_zero() {
        return Err("the zero address burns what it is sent".into());
    }
    Ok(address)
}

/// The destination as given, shortened if long (it is user input).
fn quoted(text: &str) -> String {
    const MAX: usize = 60;
    if text.chars().count() <= MAX {
        format!("{text:?}")
    } else {
        let short: String = text.chars().take(MAX).collect();
        format!("{short:?}…")
    }
}
