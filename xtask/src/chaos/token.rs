//! The drill's ERC-20 token: `contracts/build/StandardToken.json` (symbol GRT, 18 decimals)
//! deployed on anvil before the node first starts, from anvil's account 1 (so that the
//! treasury's nonces stay the executor's), its whole supply then moved to the treasury;
//! the node's `[[evm.tokens]]` entry for it; and the calls that pay and read it.
//!
//! The setup's blocks are buried [`CONFIRMATIONS`] deep before the node starts: under
//! `--faults` no reorg may then take the token away (the reorg guard spares every block
//! that deep).

use std::thread;
use std::time::{Duration, Instant};

use super::disbursements::{Asset, expected};
use super::faults::CONFIRMATIONS;
use super::json::Json;
use super::rpc::{call, quantity};
use crate::anvil::{self, Anvil};
use crate::cargo::workspace_root;

/// The token's symbol: the `asset` of the disbursements that pay it.
pub(super) const SYMBOL: &str = "GRT";
const NAME: &str = "Chaos Grant Token";
const DECIMALS: u8 = 18;
/// A billion GRT: far above what a drill pays in it (checked at deployment).
const SUPPLY: u128 = 1_000_000_000 * 10_u128.pow(DECIMALS as u32);

/// `transfer(address,uint256)` and `balanceOf(address)`.
const TRANSFER_SELECTOR: &str = "a9059cbb";
const BALANCE_OF_SELECTOR: &str = "70a08231";

/// Gas for the setup's transactions (the deployment takes about 600,000).
const SETUP_GAS: &str = "0x2dc6c0";
/// How long a setup transaction may take to be mined.
const MINED_WITHIN: Duration = Duration::from_secs(60);

/// The deployed token.
#[derive(Debug, Clone)]
pub(super) struct Token {
    /// The contract's address, lower case.
    pub(super) address: String,
}

impl Token {
    /// Deploys the token, moves its supply to the treasury and checks that the treasury
    /// holds it; `disbursements`: how many the drill queues (the token's share must be
    /// well within the supply). Each transaction is mined whatever anvil's mining mode
    /// (`evm_mine` while its receipt is missing), then [`CONFIRMATIONS`] empty blocks.
    pub(super) fn deploy(anvil: &Anvil, disbursements: u64) -> Result<Token, String> {
        let owed: u128 = expected(disbursements)
            .iter()
            .filter(|e| e.asset == Asset::Token)
            .map(|e| e.amount)
            .sum();
        if owed > SUPPLY / 2 {
            return Err(format!(
                "{disbursements} disbursements pay {owed} {SYMBOL} units: more than half the \
                 token's supply ({SUPPLY})"
            ));
        }
        let build = workspace_root().join("contracts/build/StandardToken.json");
        let text = std::fs::read_to_string(&build)
            .map_err(|e| format!("cannot read {}: {e}", build.display()))?;
        let json = Json::parse(&text).map_err(|e| format!("{}: {e}", build.display()))?;
        let bytecode = json
            .get("bytecode")
            .and_then(Json::as_str)
            .filter(|code| code.starts_with("0x"))
            .ok_or_else(|| format!("{}: no bytecode", build.display()))?;
        let code = format!(
            "{bytecode}{}",
            constructor_args(NAME, SYMBOL, DECIMALS, SUPPLY)
        );
        let receipt = send(anvil, None, &code)?;
        let address = receipt
            .get("contractAddress")
            .and_then(Json::as_str)
            .ok_or_else(|| format!("the token's deployment created no contract: {receipt}"))?
            .to_ascii_lowercase();
        send(
            anvil,
            Some(&address),
            &transfer_call(anvil::ACCOUNT_0, SUPPLY),
        )?;
        for _ in 0..CONFIRMATIONS {
            anvil.rpc("evm_mine", "[]")?;
        }
        let token = Token { address };
        let held = token.balance_of(anvil, anvil::ACCOUNT_0)?;
        if held != SUPPLY {
            return Err(format!(
                "the treasury holds {held} {SYMBOL} units after the setup, not the supply \
                 {SUPPLY}"
            ));
        }
        Ok(token)
    }

    /// The node's `[[evm.tokens]]` entry for it: the last lines of `[evm]`.
    pub(super) fn config_entry(&self) -> String {
        format!(
            "[[evm.tokens]]\nsymbol = \"{SYMBOL}\"\naddress = \"{}\"\ndecimals = {DECIMALS}\n",
            self.address
        )
    }

    /// `balanceOf(owner)`, read with `eth_call`.
    fn balance_of(&self, anvil: &Anvil, owner: &str) -> Result<u128, String> {
        let params = format!(
            r#"[{{"to":"{}","data":"{}"}},"latest"]"#,
            self.address,
            balance_of_call(owner)
        );
        let answer = call(anvil, "eth_call", params)?;
        quantity(&answer).ok_or_else(|| format!("balanceOf({owner}): {answer}"))
    }
}

/// A 32-byte ABI word of `n`, as hex.
fn word(n: u128) -> String {
    format!("{n:064x}")
}

/// An address as a 32-byte ABI word, as hex.
fn address_word(address: &str) -> String {
    format!(
        "{:0>64}",
        address.trim_start_matches("0x").to_ascii_lowercase()
    )
}

/// `(string name, string symbol, uint8 decimals, uint256 supply)` ABI-encoded, as hex: a
/// head of four words (each string's offset from the start, then the numbers), then each
/// string's length and its bytes padded to whole words.
fn constructor_args(name: &str, symbol: &str, decimals: u8, supply: u128) -> String {
    let text = |s: &str| {
        let mut bytes = s.as_bytes().to_vec();
        bytes.resize(s.len().div_ceil(32) * 32, 0);
        let padded: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}{padded}", word(s.len() as u128))
    };
    let (name, symbol) = (text(name), text(symbol));
    let head_bytes = 4 * 32;
    format!(
        "{}{}{}{}{name}{symbol}",
        word(head_bytes),
        word(head_bytes + name.len() as u128 / 2),
        word(u128::from(decimals)),
        word(supply)
    )
}

/// The call data of `transfer(to, amount)`: what a token payment's transaction carries.
pub(super) fn transfer_call(to: &str, amount: u128) -> String {
    format!("0x{TRANSFER_SELECTOR}{}{}", address_word(to), word(amount))
}

/// The call data of `balanceOf(owner)`.
pub(super) fn balance_of_call(owner: &str) -> String {
    format!("0x{BALANCE_OF_SELECTOR}{}", address_word(owner))
}

/// Sends `data` (to `to`, or a deployment) from anvil's account 1; its receipt once mined,
/// which must say status 1.
fn send(anvil: &Anvil, to: Option<&str>, data: &str) -> Result<Json, String> {
    let to = to.map_or(String::new(), |to| format!(r#","to":"{to}""#));
    let params = format!(
        r#"[{{"from":"{}"{to},"data":"{data}","gas":"{SETUP_GAS}"}}]"#,
        anvil::ACCOUNT_1
    );
    let hash = call(anvil, "eth_sendTransaction", params)?;
    let hash = hash
        .as_str()
        .ok_or_else(|| format!("eth_sendTransaction answered {hash}"))?;
    let began = Instant::now();
    loop {
        let receipt = call(anvil, "eth_getTransactionReceipt", format!(r#"["{hash}"]"#))?;
        if receipt != Json::Null {
            return match receipt.get("status").and_then(Json::as_str) {
                Some("0x1") => Ok(receipt),
                _ => Err(format!("the token's setup transaction failed: {receipt}")),
            };
        }
        if began.elapsed() > MINED_WITHIN {
            return Err(format!("{hash} not mined within {MINED_WITHIN:?}"));
        }
        // Under `--no-mining` (or `--block-time`) nothing else mines it now.
        anvil.rpc("evm_mine", "[]")?;
        thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructor_arguments_are_abi_encoded() {
        let args = constructor_args("Chaos Grant Token", "GRT", 18, 5);
        let words: Vec<&str> = (0..args.len() / 64)
            .map(|i| &args[i * 64..(i + 1) * 64])
            .collect();
        assert_eq!(args.len() % 64, 0);
        assert_eq!(words.len(), 4 + 2 + 2);
        assert_eq!(u128::from_str_radix(words[0], 16), Ok(0x80));
        assert_eq!(
            u128::from_str_radix(words[1], 16),
            Ok(0xc0),
            "0x80 + 2 words"
        );
        assert_eq!(u128::from_str_radix(words[2], 16), Ok(18));
        assert_eq!(u128::from_str_radix(words[3], 16), Ok(5));
        assert_eq!(u128::from_str_radix(words[4], 16), Ok(17));
        assert!(words[5].starts_with("4368616f73"), "\"Chaos\"");
        assert_eq!(u128::from_str_radix(words[6], 16), Ok(3));
        assert_eq!(&words[7][..6], "475254");
        assert!(words[7][6..].bytes().all(|b| b == b'0'));
    }

    #[test]
    fn calls_carry_the_selector_and_words() {
        let to = "0x00000000000000000000000000000000000000Ab";
        let call = transfer_call(to, 255);
        assert_eq!(call.len(), 2 + 8 + 128);
        assert!(call.starts_with("0xa9059cbb"));
        assert!(call[10..74].ends_with("ab"));
        assert!(call.ends_with("ff"));
        assert_eq!(
            balance_of_call(to),
            format!("0x70a08231{:0>64}", "ab"),
            "lower case, left-padded"
        );
        assert!(SUPPLY > 10_u128.pow(26));
    }
}
