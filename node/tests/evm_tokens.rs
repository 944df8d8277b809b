//! ERC-20 payouts on a real chain (anvil 1.7.1, the contracts of `contracts/`): a token
//! payout is a `transfer` to the token's contract, paid only when its receipt shows
//! exactly `Transfer(treasury, destination, amount)`; a token that returns `false` is
//! refused before anything is signed (or, if it turns on after signing, the receipt that
//! moved nothing is a mismatch for an operator, not a payment); a token that takes a fee
//! is a mismatch; a payout the treasury's token balance does not cover is a shortfall.

mod common;

mod evm_tokens {
    use std::thread;
    use std::time::{Duration, Instant};

    use crate::common::{
        Anvil, DESTINATION, STARTUP, TREASURY_KEY, deploy_token, send_from_deployer, token_balance,
    };
    use node::governance::{
        Disbursement, DisbursementStatus, Ledger, LedgerError, SignRequest, SignedTx, TxStatus,
    };
    use node::ledger::evm::{EvmLedger, EvmLedgerConfig, RpcEndpoint, TokenConfig};

    const SUPPLY: u128 = 1_000_000;

    struct Rig {
        ledger: EvmLedger,
        anvil: Anvil,
        tokens: Vec<String>,
        _key: tempfile::NamedTempFile,
    }

    /// anvil with GRT (standard), NOPE (returns false when told to) and FEE (1% fee),
    /// each holding SUPPLY for the treasury; a ledger that pays all three.
    fn rig() -> Rig {
        let anvil = Anvil::start(&[]);
        let tokens = vec![
            deploy_token(&anvil, "StandardToken", "GRT", SUPPLY, None),
            deploy_token(&anvil, "FalseToken", "NOPE", SUPPLY, None),
            deploy_token(&anvil, "FeeToken", "FEE", SUPPLY, Some(100)),
        ];
        let config = EvmLedgerConfig {
            tokens: ["GRT", "NOPE", "FEE"]
                .iter()
                .zip(&tokens)
                .map(|(symbol, address)| TokenConfig {
                    symbol: (*symbol).into(),
                    address: address.clone(),
                    decimals: 18,
                })
                .collect(),
            ..EvmLedgerConfig::default()
        };
        let key = tempfile::NamedTempFile::new().expect("key file");
        std::fs::write(key.path(), TREASURY_KEY).expect("key written");
        let url = format!("http://{}", anvil.address);
        let ledger = EvmLedger::new(&[RpcEndpoint::Url(url)], key.path(), config).expect("ledger");
        Rig {
            ledger,
            anvil,
            tokens,
            _key: key,
        }
    }

    fn payout(asset: &str, amount: u128) -> Disbursement {
        Disbursement {
            id: 1,
            destination: DESTINATION.into(),
            amount,
            memo: String::new(),
            activation_epoch: 0,
            depends_on: vec![],
            external_key: None,
            asset: asset.into(),
            status: DisbursementStatus::Queued,
            queued_at_ms: 0,
            approvals: vec![],
        }
    }

    fn sign(rig: &Rig, asset: &str, amount: u128, nonce: u64) -> Result<SignedTx, LedgerError> {
        rig.ledger
            .sign(&SignRequest::payment(&payout(asset, amount), nonce))
    }

    fn mined(rig: &Rig, tx: &SignedTx) -> TxStatus {
        rig.ledger.submit(tx).expect("accepted");
        let deadline = Instant::now() + STARTUP;
        loop {
            match rig.ledger.lookup(&tx.tx_hash).expect("lookup") {
                TxStatus::Pending | TxStatus::Unknown => {}
                status => return status,
            }
            assert!(Instant::now() < deadline, "not mined");
            thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_standard_token_pays_exactly_and_is_found_included() {
        let rig = rig();
        assert_eq!(rig.ledger.asset_balance("GRT"), Ok(SUPPLY));
        assert_eq!(rig.ledger.validate_asset("GRT"), Ok(()));
        assert!(rig.ledger.validate_asset("DAI").is_err());
        let tx = sign(&rig, "GRT", 1_234, 0).expect("signed");
        assert!(
            tx.fees.gas_limit > 21_000,
            "a token transfer runs code: {tx:?}"
        );
        assert!(matches!(mined(&rig, &tx), TxStatus::Included { .. }));
        assert_eq!(
            token_balance(&rig.anvil, &rig.tokens[0], DESTINATION),
            1_234
        );
        assert_eq!(rig.ledger.asset_balance("GRT"), Ok(SUPPLY - 1_234));
        assert_eq!(rig.anvil.balance(DESTINATION), 0, "no ether moved");
    }

    #[test]
    fn a_token_that_returns_false_is_never_paid() {
        let rig = rig();
        let nope = &rig.tokens[1];
        // Signed while it still transfers; then it refuses: mined, status 1, nothing moved.
        let tx = sign(&rig, "NOPE", 500, 0).expect("signed");
        let set_refuse = format!("0x6072b1d0{:064x}", 1);
        send_from_deployer(&rig.anvil, nope, &set_refuse);
        assert!(
            matches!(mined(&rig, &tx), TxStatus::Mismatch { ref reason, .. } if reason.contains("no Transfer")),
            "a receipt that moved nothing is not a payment, nor a cancel on its word"
        );
        assert_eq!(token_balance(&rig.anvil, nope, DESTINATION), 0);
        // Refusing now, it is refused before anything is signed: no nonce spent.
        let refused = sign(&rig, "NOPE", 500, 1).expect_err("returns false");
        assert!(
            matches!(&refused, LedgerError::Rejected(m) if m.contains("returns false")),
            "{refused:?}"
        );
        assert_eq!(rig.anvil.tx_count("pending"), 1);
    }

    #[test]
    fn a_token_that_takes_a_fee_is_a_mismatch_not_a_payment() {
        let rig = rig();
        let tx = sign(&rig, "FEE", 10_000, 0).expect("signed");
        match mined(&rig, &tx) {
            TxStatus::Mismatch { reason, .. } => {
                assert!(
                    reason.contains("9900") && reason.contains("100 to"),
                    "{reason}"
                )
            }
            other => panic!("expected a mismatch, got {other:?}"),
        }
        assert_eq!(
            token_balance(&rig.anvil, &rig.tokens[2], DESTINATION),
            9_900
        );
    }

    #[test]
    fn more_than_the_treasury_holds_is_a_shortfall_not_a_refusal() {
        let rig = rig();
        let over = sign(&rig, "GRT", SUPPLY + 1, 0).expect_err("over the balance");
        assert_eq!(
            over,
            LedgerError::InsufficientBalance,
            "it waits, it is not cancelled"
        );
        // Returning false for want of balance is a shortfall too.
        let over = sign(&rig, "NOPE", SUPPLY + 1, 0).expect_err("over the balance");
        assert_eq!(over, LedgerError::InsufficientBalance);
    }
}
