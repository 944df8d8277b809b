//! The EVM ledger against a real chain: `EvmLedger` → `faultproxy` → anvil 1.7.1, one
//! anvil per test (killed when the test ends), one test per way a call can fail; and
//! `EvmLedger` → a TLS-terminating proxy → anvil, for an `https://` endpoint.
//!
//! anvil comes from `common` (installed with npm if missing; a test never skips).

mod common;

mod evm_ledger {
    use std::thread;
    use std::time::{Duration, Instant};

    use faultproxy::{FaultProxy, Mode};

    use crate::common::tls::{self, TlsProxy};
    use crate::common::{
        ANVIL_CHAIN_ID, Anvil, DESTINATION, STARTUP, TREASURY, TREASURY_KEY, wait_until,
    };
    use node::governance::{
        Disbursement, DisbursementStatus, Ledger, LedgerError, SignRequest, SignedTx, TxStatus,
    };
    use node::ledger::evm::{EvmLedger, EvmLedgerConfig, RpcEndpoint};
    use serde_json::json;

    /// anvil behind a fault proxy, and a ledger talking through the proxy.
    struct Rig {
        ledger: EvmLedger,
        proxy: FaultProxy,
        anvil: Anvil,
        _key: tempfile::NamedTempFile,
    }

    fn rig_with(anvil_args: &[&str], config: EvmLedgerConfig) -> Rig {
        let anvil = Anvil::start(anvil_args);
        let proxy = FaultProxy::start(anvil.address).expect("proxy starts");
        let key = tempfile::NamedTempFile::new().expect("key file");
        // Written as an operator might: a trailing newline.
        std::fs::write(key.path(), format!("{TREASURY_KEY}\n")).expect("key written");
        let url = format!("http://{}", proxy.addr());
        let ledger = EvmLedger::new(&[RpcEndpoint::Url(url)], key.path(), config).expect("ledger");
        Rig {
            ledger,
            proxy,
            anvil,
            _key: key,
        }
    }

    impl Rig {
        /// The ledger signs disbursement `id`'s payment of `amount` to `destination` at
        /// `nonce`.
        fn sign(
            &self,
            id: u64,
            destination: &str,
            amount: u128,
            nonce: u64,
        ) -> Result<SignedTx, LedgerError> {
            let payment = disbursement(id, destination, amount);
            self.ledger.sign(&SignRequest::payment(&payment, nonce))
        }

        fn epoch(&self) -> Result<u64, LedgerError> {
            self.ledger.head().map(|head| head.epoch)
        }
    }

    fn rig() -> Rig {
        rig_with(&[], EvmLedgerConfig::default())
    }

    fn disbursement(id: u64, destination: &str, amount: u128) -> Disbursement {
        Disbursement {
            id,
            destination: destination.into(),
            amount,
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

    fn config(change: impl FnOnce(&mut EvmLedgerConfig)) -> EvmLedgerConfig {
        let mut config = EvmLedgerConfig::default();
        change(&mut config);
        config
    }

    /// Waits until the lookup of the transaction is no longer pending (anvil mines each one
    /// as it arrives, but answers `eth_sendRawTransaction` before the block is made); that
    /// lookup.
    fn mined(ledger: &EvmLedger, tx_hash: &str) -> Result<TxStatus, LedgerError> {
        let deadline = Instant::now() + STARTUP;
        loop {
            match ledger.lookup(tx_hash) {
                Ok(TxStatus::Pending) => {}
                other => return other,
            }
            assert!(
                Instant::now() < deadline,
                "{tx_hash} not mined within {STARTUP:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the transaction is in a block; its block number.
    fn included(ledger: &EvmLedger, tx_hash: &str) -> u64 {
        match mined(ledger, tx_hash) {
            Ok(TxStatus::Included { block, .. }) => block,
            other => panic!("{tx_hash} is not pending nor included: {other:?}"),
        }
    }

    /// A contract wallet whose `receive()` needs more than 21,000 gas is paid with its
    /// estimate and the margin; a contract that refuses plain transfers (a token has no
    /// `receive`) is refused before anything is signed, and no nonce is spent.
    #[test]
    fn contract_destinations_get_estimated_gas_or_are_refused_before_signing() {
        let rig = rig();
        let wallet = rig.anvil.deploy("Wallet", &[]);
        let amount = 10_u128.pow(18);
        let tx = rig.sign(1, &wallet, amount, 0).expect("signed");
        // anvil estimates 111,550 for a first deposit; 20% more.
        assert_eq!(tx.fees.gas_limit, 133_860, "{tx:?}");
        rig.ledger.submit(&tx).expect("accepted");
        included(&rig.ledger, &tx.tx_hash);
        let received = rig.anvil.eth_call(&wallet, "0x83a6deb5"); // received()
        assert_eq!(
            u128::from_str_radix(received.trim_start_matches("0x"), 16),
            Ok(amount)
        );

        let token = rig.anvil.deploy(
            "StandardToken",
            &crate::common::abi_encode(&[
                crate::common::Arg::Text("Grant"),
                crate::common::Arg::Text("GRT"),
                crate::common::Arg::Word(18),
                crate::common::Arg::Word(1_000),
            ]),
        );
        let refused = rig
            .sign(2, &token, 1, 1)
            .expect_err("a token takes no ether");
        assert!(
            matches!(&refused, LedgerError::Rejected(m) if m.contains("would fail on chain")),
            "{refused:?}"
        );
        assert_eq!(rig.anvil.tx_count("pending"), 1, "nothing sent at nonce 1");
    }

    #[test]
    fn pays_and_finds_the_transfer_included() {
        let rig = rig();
        assert_eq!(rig.ledger.address(), TREASURY);
        assert_eq!(
            rig.ledger.endpoints(),
            [format!("http://{}", rig.proxy.addr())]
        );
        assert_eq!(rig.ledger.next_nonce(), Ok(0));

        let amount = 1_234_567_890_123_456_789;
        let tx = rig.sign(1, DESTINATION, amount, 0).expect("signed");
        assert_eq!(tx.bytes.first(), Some(&2), "an EIP-2718 type-2 envelope");
        assert_eq!(rig.ledger.lookup(&tx.tx_hash), Ok(TxStatus::Unknown));
        rig.ledger.submit(&tx).expect("accepted");

        let block = included(&rig.ledger, &tx.tx_hash);
        assert!(block >= 1, "included in block {block}");
        assert_eq!(rig.anvil.balance(DESTINATION), amount);
        assert_eq!(rig.ledger.next_nonce(), Ok(1));
        // anvil computes the same hash from the bytes, and the same sender and fields.
        let seen = rig
            .anvil
            .call("eth_getTransactionByHash", json!([tx.tx_hash]));
        assert_eq!(seen["hash"], json!(tx.tx_hash));
        assert_eq!(
            seen["from"].as_str().map(str::to_ascii_lowercase),
            Some(TREASURY.to_ascii_lowercase())
        );
        assert_eq!(seen["to"], json!(DESTINATION));
        assert_eq!(seen["chainId"], json!(format!("{ANVIL_CHAIN_ID:#x}")));
        // 21,000 estimated, and the 20% margin.
        assert_eq!(seen["gas"], json!("0x6270"));
    }

    /// An `https://` endpoint with a self-signed certificate: trusted through `ca_file`, it
    /// pays; without it (the system's CAs), every call fails as Unreachable, saying that
    /// the certificate is not trusted and how to trust it.
    #[test]
    fn pays_over_https_trusting_the_ca_file_and_only_then() {
        let anvil = Anvil::start(&[]);
        let proxy = TlsProxy::start(anvil.address);
        let key = tempfile::NamedTempFile::new().expect("key file");
        std::fs::write(key.path(), TREASURY_KEY).expect("key written");
        let url = format!("https://{}", proxy.address);

        let untrusted = EvmLedger::new(
            &[RpcEndpoint::Url(url.clone())],
            key.path(),
            EvmLedgerConfig::default(),
        )
        .expect("ledger");
        let answer = untrusted.next_nonce();
        let Err(LedgerError::Unreachable(message)) = answer else {
            panic!("expected Unreachable, got {answer:?}");
        };
        assert!(
            message.starts_with(&format!("{url}: TLS handshake failed: ")),
            "{message}"
        );
        assert!(
            message.contains("certificate is not trusted") && message.contains("evm.ca_file"),
            "{message}"
        );
        let tx = untrusted.sign(&SignRequest::payment(&disbursement(1, DESTINATION, 1), 0));
        assert!(matches!(tx, Err(LedgerError::Unreachable(_))), "{tx:?}");
        // Two calls, two connections the client gave up during the handshake.
        wait_until("the proxy to see two handshakes fail", STARTUP, || {
            proxy.handshake_failures().len() == 2
        });
        let failures = proxy.handshake_failures();

        let config = config(|c| c.ca_file = Some(tls::ca_file()));
        let ledger =
            EvmLedger::new(&[RpcEndpoint::Url(url.clone())], key.path(), config).expect("ledger");
        assert_eq!(ledger.endpoints(), [url]);
        assert_eq!(ledger.chain_id(), Ok(ANVIL_CHAIN_ID.to_string()));
        assert_eq!(ledger.next_nonce(), Ok(0));
        let amount = 7_000_000_000_000_000;
        let payment = disbursement(1, DESTINATION, amount);
        let tx = ledger
            .sign(&SignRequest::payment(&payment, 0))
            .expect("signed");
        ledger.submit(&tx).expect("accepted");
        let block = included(&ledger, &tx.tx_hash);
        assert!(block >= 1, "included in block {block}");
        assert_eq!(anvil.balance(DESTINATION), amount);
        assert_eq!(ledger.next_nonce(), Ok(1));
        assert_eq!(proxy.handshake_failures(), failures, "no new failure");
    }

    /// A destination whose code reverts every call (`PUSH1 0 PUSH1 0 REVERT`, set with
    /// anvil_setCode): the transfer is mined with receipt status 0, its nonce spent and
    /// nothing paid, and the ledger says Reverted, not Included. (The code is set after
    /// signing: with it, the gas estimate refuses the payment before anything is signed.
    /// This is the destination that changes between the estimate and the block.)
    #[test]
    fn a_reverted_transfer_is_reverted_not_included() {
        let rig = rig();
        let contract = "0x2222222222222222222222222222222222222222";
        let tx = rig.sign(1, contract, 1_000, 0).expect("signed");
        rig.anvil
            .call("anvil_setCode", json!([contract, "0x60006000fd"]));
        assert!(
            matches!(
                rig.sign(2, contract, 1_000, 1),
                Err(LedgerError::Rejected(_))
            ),
            "estimated now, it is refused"
        );
        rig.ledger.submit(&tx).expect("accepted");
        let status = mined(&rig.ledger, &tx.tx_hash);
        assert!(
            matches!(status, Ok(TxStatus::Reverted { .. })),
            "{status:?}"
        );
        assert_eq!(rig.anvil.balance(contract), 0, "nothing was paid");
        assert_eq!(rig.ledger.next_nonce(), Ok(1), "the nonce is spent");
    }

    #[test]
    fn a_refused_connection_is_unreachable_until_it_is_back() {
        let rig = rig();
        rig.proxy.set_mode(Mode::Refuse).expect("refuse");
        assert!(
            matches!(rig.epoch(), Err(LedgerError::Unreachable(_))),
            "{:?}",
            rig.epoch()
        );
        let tx = rig.sign(1, DESTINATION, 1, 0);
        assert!(matches!(tx, Err(LedgerError::Unreachable(_))), "{tx:?}");
        rig.proxy.set_mode(Mode::Pass).expect("pass");
        assert_eq!(rig.ledger.next_nonce(), Ok(0));
    }

    #[test]
    fn no_answer_is_a_timeout() {
        let rig = rig_with(&[], config(|c| c.request_timeout_ms = 300));
        rig.proxy.set_mode(Mode::Blackhole).expect("blackhole");
        let started = Instant::now();
        assert_eq!(rig.ledger.next_nonce(), Err(LedgerError::Timeout));
        // The deadline holds (with room for a loaded machine), not the proxy's patience.
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn http_500_is_http_500() {
        let rig = rig();
        let tx = rig.sign(1, DESTINATION, 1, 0).expect("signed");
        rig.proxy.set_mode(Mode::Http500).expect("500");
        assert_eq!(rig.ledger.submit(&tx), Err(LedgerError::Http(500)));
        assert_eq!(rig.epoch(), Err(LedgerError::Http(500)));
    }

    #[test]
    fn garbage_is_malformed() {
        let rig = rig();
        rig.proxy.set_mode(Mode::Garbage).expect("garbage");
        let answer = rig.ledger.lookup(&format!("0x{}", "ab".repeat(32)));
        assert!(
            matches!(answer, Err(LedgerError::Malformed(_))),
            "{answer:?}"
        );
    }

    #[test]
    fn more_than_the_balance_is_insufficient_balance() {
        let rig = rig();
        // anvil funds the treasury with 10 000 ETH = 10^22 wei.
        let tx = rig
            .sign(1, DESTINATION, 10_u128.pow(23), 0)
            .expect("signed");
        assert_eq!(
            rig.ledger.submit(&tx),
            Err(LedgerError::InsufficientBalance)
        );
        assert_eq!(rig.ledger.lookup(&tx.tx_hash), Ok(TxStatus::Unknown));
    }

    #[test]
    fn the_same_bytes_while_pending_are_already_known() {
        let rig = rig_with(&["--no-mining"], EvmLedgerConfig::default());
        let tx = rig.sign(1, DESTINATION, 5, 0).expect("signed");
        rig.ledger.submit(&tx).expect("accepted");
        assert_eq!(rig.ledger.lookup(&tx.tx_hash), Ok(TxStatus::Pending));
        assert_eq!(rig.ledger.next_nonce(), Ok(1), "the pending nonce counts");
        // anvil: "transaction already imported".
        assert_eq!(rig.ledger.submit(&tx), Err(LedgerError::AlreadyKnown));

        rig.anvil.call("evm_mine", json!([]));
        assert_eq!(included(&rig.ledger, &tx.tx_hash), 1);
        assert_eq!(rig.anvil.balance(DESTINATION), 5);
    }

    #[test]
    fn the_same_bytes_once_included_are_nonce_too_low() {
        let rig = rig();
        let tx = rig.sign(1, DESTINATION, 5, 0).expect("signed");
        rig.ledger.submit(&tx).expect("accepted");
        included(&rig.ledger, &tx.tx_hash);
        // anvil answers a duplicate of an included transaction by its nonce; the executor
        // then finds it by hash (ambiguous → lookup).
        assert_eq!(rig.ledger.submit(&tx), Err(LedgerError::NonceTooLow));
        assert!(matches!(
            rig.ledger.lookup(&tx.tx_hash),
            Ok(TxStatus::Included { .. })
        ));
        assert_eq!(rig.anvil.balance(DESTINATION), 5, "paid once");
    }

    #[test]
    fn a_stale_nonce_is_nonce_too_low() {
        let rig = rig();
        let first = rig.sign(1, DESTINATION, 7, 0).expect("signed");
        rig.ledger.submit(&first).expect("accepted");
        included(&rig.ledger, &first.tx_hash);
        let second = rig.sign(2, DESTINATION, 8, 0).expect("signed");
        assert_ne!(first.tx_hash, second.tx_hash);
        assert_eq!(rig.ledger.submit(&second), Err(LedgerError::NonceTooLow));
        assert_eq!(rig.anvil.balance(DESTINATION), 7);
    }

    #[test]
    fn epoch_and_nonce_follow_the_chain() {
        let rig = rig_with(&[], config(|c| c.epoch_blocks = 4));
        assert_eq!(rig.epoch(), Ok(0));
        rig.anvil.call("anvil_mine", json!(["0x9"]));
        assert_eq!(rig.epoch(), Ok(2), "block 9 / 4");
        for nonce in 0..3 {
            assert_eq!(rig.ledger.next_nonce(), Ok(nonce));
            let tx = rig.sign(nonce, DESTINATION, 1, nonce).expect("signed");
            rig.ledger.submit(&tx).expect("accepted");
            // One block each: blocks 10, 11 and 12.
            assert_eq!(included(&rig.ledger, &tx.tx_hash), 10 + nonce);
        }
        assert_eq!(rig.ledger.next_nonce(), Ok(3));
        assert_eq!(rig.epoch(), Ok(3), "block 12 / 4");
    }

    #[test]
    fn another_chain_than_configured_halts_signing() {
        let rig = rig_with(&[], config(|c| c.chain_id = Some(1)));
        let answer = rig.sign(1, DESTINATION, 1, 0);
        let Err(LedgerError::Signing(reason)) = answer else {
            panic!("expected a signing error, got {answer:?}");
        };
        assert!(
            reason.contains("31337") && reason.contains("is 1"),
            "{reason}"
        );
        assert_eq!(rig.anvil.balance(DESTINATION), 0);

        let rig = rig_with(&[], config(|c| c.chain_id = Some(ANVIL_CHAIN_ID)));
        let tx = rig.sign(1, DESTINATION, 1, 0).expect("signed");
        rig.ledger.submit(&tx).expect("accepted");
    }

    #[test]
    fn a_fee_cap_below_the_base_fee_is_underpriced_not_cancelled() {
        // anvil's base fee starts at 1 gwei; a 1-wei cap cannot pay it.
        let rig = rig_with(
            &[],
            config(|c| {
                c.max_fee_per_gas = 1;
                c.max_priority_fee_per_gas = 1;
            }),
        );
        let tx = rig.sign(1, DESTINATION, 1, 0).expect("signed");
        let answer = rig.ledger.submit(&tx);
        let Err(LedgerError::Underpriced(message)) = answer else {
            panic!("expected Underpriced, got {answer:?}");
        };
        assert!(
            message.contains("max fee per gas less than block base fee"),
            "{message}"
        );
    }

    #[test]
    fn a_bad_destination_is_refused_before_any_call() {
        let rig = rig();
        rig.proxy.set_mode(Mode::Refuse).expect("refuse");
        let answer = rig.sign(1, "grantee-1", 1, 0);
        assert!(
            matches!(answer, Err(LedgerError::InvalidDestination(_))),
            "{answer:?}"
        );
        assert!(rig.ledger.validate_destination("0x1111").is_err());
        assert_eq!(rig.ledger.validate_destination(DESTINATION), Ok(()));
    }
}
