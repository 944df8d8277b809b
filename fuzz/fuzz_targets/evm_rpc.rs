//! Fuzzes the EVM ledger's handling of JSON-RPC answers, through its real network path: a
//! loopback server (`treasury_fuzz::rpc_server`) answers each HTTP request with the next
//! response of the input, and a fresh `EvmLedger` (chain id 31337 configured) makes one
//! `Ledger` call against it.
//!
//! Input: the first line names the call: `head` (or `current_epoch`, its name before),
//! `chain_id`, `finalized`, `block_hash`, `next_nonce`, `nonce_at`, `balance`, `lookup`,
//! `submit`, `sign` or `replace` (a replacement with a fee floor; anything else does
//! nothing). The rest is the responses, separated
//! by lines `---`. A response is a JSON body (sent as `200 OK`) or, starting with `HTTP/`,
//! a whole HTTP response; `$ID` stands for the request's id.
//!
//! Invariants: no panic; the call returns a value or a `LedgerError` whose message stays
//! short (an endpoint cannot flood the log); a signed transaction has a `0x` hash of 64 hex
//! digits.

#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use governance::{
    AttemptKind, Disbursement, DisbursementStatus, Fees, Ledger, SignRequest, SignedTx,
};
use libfuzzer_sys::fuzz_target;
use node::ledger::evm::{EvmLedger, EvmLedgerConfig, RpcEndpoint};
use treasury_fuzz::rpc_server::RpcServer;

/// anvil's first development key: any valid key does.
const KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// A `LedgerError`'s message at most: `rpc.rs` keeps an endpoint's text to 512 bytes.
const MAX_ERROR_BYTES: usize = 1024;

struct Endpoint {
    server: RpcServer,
    key_file: PathBuf,
    _dir: tempfile::TempDir,
}

static ENDPOINT: LazyLock<Endpoint> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("temporary directory");
    let key_file = dir.path().join("treasury.key");
    std::fs::write(&key_file, KEY).expect("write the key file");
    Endpoint {
        server: RpcServer::start(),
        key_file,
        _dir: dir,
    }
});

fuzz_target!(|data: &[u8]| {
    let endpoint = &*ENDPOINT;
    let mut parts = data.splitn(2, |&b| b == b'\n');
    let call = parts.next().unwrap_or_default();
    let responses = parts.next().unwrap_or_default();
    endpoint.server.script(split(responses, b"\n---\n"));
    let config = EvmLedgerConfig {
        request_timeout_ms: 2_000,
        chain_id: Some(31_337),
        ..EvmLedgerConfig::default()
    };
    let ledger =
        EvmLedger::new(
            &[RpcEndpoint::Url(endpoint.server.url())],
            &endpoint.key_file,
            config,
        ).expect("the EVM ledger");
    let disbursement = disbursement();
    let request = |min_fees| SignRequest {
        disbursement: &disbursement,
        kind: AttemptKind::Payment,
        nonce: 7,
        min_fees,
    };
    let check_signed = |tx: SignedTx| {
        let hash = tx.tx_hash.strip_prefix("0x").unwrap_or_default();
        assert!(
            hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
            "a signed transaction's hash is not 0x and 64 hex digits: {:?}",
            tx.tx_hash
        );
        assert!(!tx.bytes.is_empty(), "a signed transaction without bytes");
        assert!(
            tx.fees.max_priority_fee_per_gas <= tx.fees.max_fee_per_gas,
            "a tip above the max fee: {:?}",
            tx.fees
        );
    };
    let floor = Fees {
        max_fee_per_gas: 30_000_000_000,
        max_priority_fee_per_gas: 1_500_000_000,
        gas_limit: 21_000,
    };
    let result = match call {
        b"head" | b"current_epoch" => ledger.head().map(|_| ()),
        b"chain_id" => ledger.chain_id().map(|_| ()),
        b"finalized" => ledger.finalized().map(|_| ()),
        b"block_hash" => ledger.block_hash(99).map(|_| ()),
        b"next_nonce" => ledger.next_nonce().map(|_| ()),
        b"nonce_at" => ledger.nonce_at(99).map(|_| ()),
        b"balance" => ledger.balance().map(|_| ()),
        b"lookup" => ledger.lookup(&format!("0x{}", "ab".repeat(32))).map(|_| ()),
        b"submit" => ledger.submit(&signed()).map(|_| ()),
        b"sign" => ledger.sign(&request(None)).map(check_signed),
        b"replace" => ledger.sign(&request(Some(floor))).map(|tx| {
            assert!(
                tx.fees.max_fee_per_gas >= floor.max_fee_per_gas,
                "a replacement below its floor: {:?}",
                tx.fees
            );
            check_signed(tx)
        }),
        _ => return,
    };
    if let Err(error) = result {
        let message = error.to_string();
        assert!(
            message.len() <= MAX_ERROR_BYTES,
            "a {}-byte error message: {message}",
            message.len()
        );
    }
});

fn split<'a>(bytes: &'a [u8], separator: &'a [u8]) -> Vec<Vec<u8>> {
    let mut parts = Vec::new();
    let mut rest = bytes;
    while let Some(at) = rest
        .windows(separator.len())
        .position(|window| window == separator)
    {
        parts.push(rest[..at].to_vec());
        rest = &rest[at + separator.len()..];
    }
    parts.push(rest.to_vec());
    parts
}

fn signed() -> SignedTx {
    SignedTx {
        tx_hash: format!("0x{}", "cd".repeat(32)),
        bytes: vec![0x02, 0xf8, 0x6f, 0x82, 0x7a, 0x69],
        fees: Fees::default(),
    }
}

fn disbursement() -> Disbursement {
    Disbursement {
        id: 3,
        destination: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8".into(),
        amount: 1_000,
        memo: String::new(),
        activation_epoch: 0,
        depends_on: vec![],
        external_key: None,
        asset: "native".into(),
        status: DisbursementStatus::Queued,
        queued_at_ms: 0,
        approvals: vec![],
    }
}
