//! Fuzzes the node's environment variables and flags: the input, split at NUL bytes
//! (which no variable can hold), gives in turn `TB_GOVERNANCE_DB_PATH`, `TB_LISTEN`,
//! `TB_ADMIN_TOKEN`, `TB_LEDGER`, `TB_RPC_URL`, `TB_RPC_URLS`, `TB_TREASURY_KEY_FILE`, then
//! the flags `--listen`, `--ledger` and `--rpc-url` (twice); a missing or empty part is
//! unset. `TB_CONFIG`
//! stays unset: `config_file` fuzzes the file.
//!
//! Invariants: no panic; a refusal names the variable or flag at fault (or, for the EVM
//! ledger's requirements, the key); an accepted EVM configuration has an endpoint, none of
//! them empty, and its key file.

#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use node::config::{self, LedgerKind, MIN_TOKEN_LEN, Overrides};

const VARIABLES: [&str; 7] = [
    "TB_GOVERNANCE_DB_PATH",
    "TB_LISTEN",
    "TB_ADMIN_TOKEN",
    "TB_LEDGER",
    "TB_RPC_URL",
    "TB_RPC_URLS",
    "TB_TREASURY_KEY_FILE",
];

/// The keys a refusal may name.
const KEYS: [&str; 10] = [
    "TB_LISTEN",
    "TB_ADMIN_TOKEN",
    "TB_LEDGER",
    "TB_RPC_URL",
    "TB_RPC_URLS",
    "--listen",
    "--ledger",
    "--rpc-url",
    "rpc_urls",
    "treasury_key_file",
];

fuzz_target!(|data: &[u8]| {
    let mut parts = data
        .split(|&b| b == 0)
        .map(|part| String::from_utf8_lossy(part).into_owned());
    let env: HashMap<String, String> = VARIABLES
        .iter()
        .zip(parts.by_ref())
        .map(|(name, value)| ((*name).to_owned(), value))
        .collect();
    let mut flag = || parts.next().filter(|value| !value.is_empty());
    let listen = flag();
    let ledger = flag();
    let rpc_urls = [flag(), flag()].into_iter().flatten().collect();
    let overrides = Overrides {
        listen,
        ledger,
        rpc_urls,
        ..Overrides::default()
    };
    match config::load(&overrides, &env) {
        Ok(config) => {
            for token in &config.admin_tokens {
                assert!(
                    token.secret.len() >= MIN_TOKEN_LEN,
                    "a short admin token was accepted"
                );
            }
            if config.ledger == LedgerKind::Evm {
                assert!(!config.rpc_urls.is_empty() && config.treasury_key_file.is_some());
                assert!(
                    config.rpc_urls.iter().all(|url| !url.url().trim().is_empty()),
                    "an empty endpoint URL was accepted"
                );
            }
        }
        Err(error) => assert!(
            KEYS.contains(&error.key.as_str()),
            "the refusal names no variable or flag: {error}"
        ),
    }
});
