//! ERC-20 payouts: the `transfer(address,uint256)` call a token payment signs, what its
//! simulation must return, and what its receipt must show for it to count as paid.
//!
//! A token payout is Executed only when its receipt has status 1 **and** carries exactly
//! one `Transfer` log from the token's contract out of the treasury, and that one is
//! `Transfer(treasury, destination, amount)`:
//!
//! | the receipt (status 1)                                   | `TxStatus`  |
//! |----------------------------------------------------------|-------------|
//! | one `Transfer(treasury, destination, amount)` from the token, and no other out of the treasury | `Included` |
//! | anything else: no `Transfer` out of the treasury (a token that returned `false`), a fee taken, another amount or recipient, a `Transfer` it cannot read | `Mismatch`: money may have moved, or not; an operator decides |
//! | no logs at all (a backend serving receipts before their logs) | an endpoint failure: asked again |
//!
//! A token that would return `false` is refused before anything is signed (`eth_call`);
//! one that starts to after signing is a mismatch, never a silent cancel.

use alloy_primitives::{Address, Bytes, U256, hex};
use governance::LedgerError;
use serde_json::Value;

/// `transfer(address,uint256)`.
pub(super) const TRANSFER_SELECTOR: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];
/// `balanceOf(address)`.
pub(super) const BALANCE_OF_SELECTOR: [u8; 4] = [0x70, 0xa0, 0x82, 0x31];
/// `keccak256("Transfer(address,address,uint256)")`: the `Transfer` event's topic.
pub(super) const TRANSFER_TOPIC: &str =
    "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";

/// The call data of `transfer(to, amount)`.
pub(super) fn transfer_call(to: Address, amount: u128) -> Bytes {
    let mut data = Vec::with_capacity(68);
    data.extend_from_slice(&TRANSFER_SELECTOR);
    data.extend_from_slice(&word_of_address(to));
    data.extend_from_slice(&U256::from(amount).to_be_bytes::<32>());
    data.into()
}

/// The call data of `balanceOf(owner)`.
pub(super) fn balance_of_call(owner: Address) -> String {
    let mut data = Vec::with_capacity(36);
    data.extend_from_slice(&BALANCE_OF_SELECTOR);
    data.extend_from_slice(&word_of_address(owner));
    format!("0x{}", hex::encode(data))
}

fn word_of_address(address: Address) -> [u8; 32] {
    let mut word = [0_u8; 32];
    word[12..].copy_from_slice(address.as_slice());
    word
}

/// `transfer(to, amount)` decoded from a transaction's input, if that is what it is.
pub(super) fn decode_transfer(input: &str) -> Option<(Address, U256)> {
    let bytes = hex::decode(input.strip_prefix("0x").unwrap_or(input)).ok()?;
    if bytes.len() != 68 || bytes[..4] != TRANSFER_SELECTOR || bytes[4..16] != [0; 12] {
        return None;
    }
    let to = Address::from_slice(&bytes[16..36]);
    let amount = U256::from_be_slice(&bytes[36..68]);
    Some((to, amount))
}

/// What a simulated `transfer` returned (`eth_call`): nothing (tokens that predate the
/// standard's return value) or `true` is fine; `false`, or anything else, would move
/// nothing on chain.
pub(super) fn check_returned(returned: &Value) -> Result<(), String> {
    let text = returned.as_str().unwrap_or_default();
    let digits = text.strip_prefix("0x").unwrap_or(text);
    if digits.is_empty() {
        return Ok(());
    }
    let Ok(bytes) = hex::decode(digits) else {
        return Err(format!(
            "the token's transfer returned {}, not a boolean",
            super::rpc::bounded(text)
        ));
    };
    match bytes.as_slice() {
        [zeros @ .., 1] if bytes.len() == 32 && zeros.iter().all(|&b| b == 0) => Ok(()),
        all if all.len() == 32 && all.iter().all(|&b| b == 0) => Err(
            "the token's transfer returns false: it would move nothing (its balance, a \
             blocklist or a pause?)"
                .into(),
        ),
        _ => Err(format!(
            "the token's transfer returned {} bytes, not a boolean",
            bytes.len()
        )),
    }
}

/// What a token's receipt (status 1) shows, against the transfer its transaction asked
/// for (see the module's table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Exactly the transfer asked for.
    Paid,
    /// No `Transfer` out of the treasury in its logs.
    NothingMoved,
    /// Something else moved, or a `Transfer` from the token cannot be read: why.
    Mismatch(String),
    /// The receipt has no logs to judge (a backend that serves receipts before their
    /// logs): not a verdict, ask again.
    Unreadable(String),
}

/// The treasury's balance from a `balanceOf` answer (32 bytes). `0x` (no contract at the
/// token's address, or no return value) is no balance at all: an error, never 0.
pub(super) fn balance_word(answer: &Value) -> Result<u128, LedgerError> {
    let text = answer.as_str().unwrap_or_default();
    let bytes = hex::decode(text.strip_prefix("0x").unwrap_or(text)).unwrap_or_default();
    if bytes.len() != 32 {
        return Err(LedgerError::Malformed(format!(
            "balanceOf answered {} bytes, not 32 (is the token's address a contract?)",
            bytes.len()
        )));
    }
    if bytes[..16].iter().any(|&b| b != 0) {
        return Err(LedgerError::Malformed(
            "balanceOf answered more than 2^128 - 1".into(),
        ));
    }
    Ok(u128::from_be_bytes(
        bytes[16..].try_into().unwrap_or_default(),
    ))
}

/// Judges `receipt`'s logs for a `transfer(to, amount)` from `treasury` on `token`.
pub(super) fn verdict(
    receipt: &Value,
    token: Address,
    treasury: Address,
    to: Address,
    amount: U256,
) -> Verdict {
    let Some(logs) = receipt.get("logs").and_then(Value::as_array).cloned() else {
        return Verdict::Unreadable("a token payout's receipt without logs".into());
    };
    // Every Transfer the token emitted must be readable (three topics, a 32-byte amount):
    // one logged another way (non-indexed parameters) could be the payment.
    let from_token = |log: &&Value| {
        log.get("address")
            .and_then(Value::as_str)
            .and_then(|a| a.parse::<Address>().ok())
            == Some(token)
    };
    let unreadable = logs
        .iter()
        .filter(from_token)
        .filter(|log| topic(log, 0).as_deref() == Some(TRANSFER_TOPIC))
        .any(|log| {
            let topics = log
                .get("topics")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let data = log
                .get("data")
                .and_then(Value::as_str)
                .map_or(0, |d| d.trim_start_matches("0x").len());
            topics != 3 || data != 64
        });
    if unreadable {
        return Verdict::Mismatch(
            "the token logged a Transfer this cannot read (not three topics and a 32-byte \
             amount): check the destination's balance"
                .into(),
        );
    }
    let out_of_treasury: Vec<(Address, Option<Address>, Option<U256>)> = logs
        .iter()
        .filter(|log| topic(log, 0).as_deref() == Some(TRANSFER_TOPIC))
        .filter(|log| topic(log, 1).and_then(|t| address_of(&t)) == Some(treasury))
        .map(|log| {
            let emitter = log
                .get("address")
                .and_then(Value::as_str)
                .and_then(|a| a.parse::<Address>().ok())
                .unwrap_or_default();
            let recipient = topic(log, 2).and_then(|t| address_of(&t));
            let value = log
                .get("data")
                .and_then(Value::as_str)
                .and_then(|d| hex::decode(d.strip_prefix("0x").unwrap_or(d)).ok())
                .filter(|d| d.len() == 32)
                .map(|d| U256::from_be_slice(&d));
            (emitter, recipient, value)
        })
        .collect();
    match out_of_treasury.as_slice() {
        [] => Verdict::NothingMoved,
        [(emitter, Some(recipient), Some(value))]
            if *emitter == token && *recipient == to && *value == amount =>
        {
            Verdict::Paid
        }
        moved => Verdict::Mismatch(format!(
            "it asked {token} to transfer {amount} to {to}; the receipt shows {}",
            moved
                .iter()
                .map(|(emitter, recipient, value)| format!(
                    "{} to {} on {emitter}",
                    value.map_or_else(|| "an unreadable amount".to_owned(), |v| v.to_string()),
                    recipient
                        .map_or_else(|| "an unreadable recipient".to_owned(), |r| r.to_string()),
                ))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn topic(log: &Value, index: usize) -> Option<String> {
    log.get("topics")?
        .as_array()?
        .get(index)?
        .as_str()
        .map(str::to_ascii_lowercase)
}

/// The address in a 32-byte topic (its last 20 bytes; the first 12 must be zero).
fn address_of(topic: &str) -> Option<Address> {
    let bytes = hex::decode(topic.strip_prefix("0x").unwrap_or(topic)).ok()?;
    (bytes.len() == 32 && bytes[..12] == [0; 12]).then(|| Address::from_slice(&bytes[12..]))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const TOKEN: Address = Address::repeat_byte(0x70);
    const TREASURY: Address = Address::repeat_byte(0x11);
    const TO: Address = Address::repeat_byte(0x22);

    fn word(address: Address) -> String {
        format!("0x{}", hex::encode(word_of_address(address)))
    }

    fn log(emitter: Address, from: Address, to: Address, amount: u128) -> Value {
        json!({
            "address": emitter.to_string(),
            "topics": [TRANSFER_TOPIC, word(from), word(to)],
            "data": format!("0x{}", hex::encode(U256::from(amount).to_be_bytes::<32>())),
        })
    }

    fn judge(logs: Vec<Value>) -> Verdict {
        verdict(
            &json!({ "logs": logs }),
            TOKEN,
            TREASURY,
            TO,
            U256::from(1000),
        )
    }

    #[test]
    fn only_the_exact_transfer_counts_as_paid() {
        assert_eq!(judge(vec![log(TOKEN, TREASURY, TO, 1000)]), Verdict::Paid);
        assert_eq!(
            judge(vec![]),
            Verdict::NothingMoved,
            "a token that returned false"
        );
        // A fee on transfer: less to the destination, the rest elsewhere.
        let fee = judge(vec![
            log(TOKEN, TREASURY, TO, 990),
            log(TOKEN, TREASURY, Address::repeat_byte(0x33), 10),
        ]);
        assert!(
            matches!(&fee, Verdict::Mismatch(m) if m.contains("990") && m.contains("10 to")),
            "{fee:?}"
        );
        assert!(matches!(
            judge(vec![log(TOKEN, TREASURY, TO, 999)]),
            Verdict::Mismatch(_)
        ));
        assert!(
            matches!(
                judge(vec![log(Address::repeat_byte(0x44), TREASURY, TO, 1000)]),
                Verdict::Mismatch(_)
            ),
            "another contract's log"
        );
        // Logs that move nothing out of the treasury are not its business.
        assert_eq!(
            judge(vec![
                log(TOKEN, Address::repeat_byte(0x55), TO, 5),
                log(TOKEN, TREASURY, TO, 1000)
            ]),
            Verdict::Paid
        );
    }

    #[test]
    fn the_transfer_call_round_trips_and_its_result_is_read() {
        let data = transfer_call(TO, u128::MAX);
        assert_eq!(&data[..4], &TRANSFER_SELECTOR);
        assert_eq!(
            decode_transfer(&format!("0x{}", hex::encode(&data))),
            Some((TO, U256::from(u128::MAX)))
        );
        assert_eq!(decode_transfer("0x"), None);
        let word = |b: u8| json!(format!("0x{}{:02x}", "00".repeat(31), b));
        assert_eq!(check_returned(&word(1)), Ok(()));
        assert_eq!(
            check_returned(&json!("0x")),
            Ok(()),
            "no return value (USDT)"
        );
        assert!(
            check_returned(&word(0))
                .expect_err("false")
                .contains("returns false")
        );
        assert!(check_returned(&word(2)).is_err());
        assert_eq!(balance_word(&word(7)).ok(), Some(7));
        assert!(
            balance_word(&json!("0x")).is_err(),
            "no contract: no balance"
        );
    }
}
