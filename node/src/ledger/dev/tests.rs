//! The dev ledger's tests: chain time, the transfer rules, outages, durability,
//! corruption, configuration, and an executor paying through it.

mod dev_ledger {
    use std::sync::Arc;
    use std::time::Duration;

    use governance::{
        AttemptKind, CircuitBreaker, CircuitBreakerConfig, Clock, Disbursement, DisbursementStatus,
        Fees, GovStore, Ledger, LedgerError, ManualClock, NewDisbursement, SignRequest, SignedTx,
        TreasuryExecutor, TreasuryExecutorConfig, TxStatus,
    };

    use super::super::{
        DevClock, DevLedger, DevLedgerConfig, DevLedgerConfigError, DevLedgerError, Outage,
        OutageMode, fnv1a_hex,
    };

    const BLOCK: Duration = Duration::from_millis(1000);

    fn clock_of(clock: &ManualClock) -> DevClock {
        let clock = clock.clone();
        Arc::new(move || clock.now())
    }

    fn temporary_tree() -> sled::Tree {
        sled::Config::new()
            .temporary(true)
            .open()
            .expect("temporary sled")
            .open_tree("aux/dev_ledger")
            .expect("tree")
    }

    fn config(treasury: u128) -> DevLedgerConfig {
        DevLedgerConfig {
            treasury_balance: treasury,
            ..DevLedgerConfig::default()
        }
    }

    fn ledger(config: DevLedgerConfig) -> (DevLedger, ManualClock) {
        let clock = ManualClock::new();
        let ledger =
            DevLedger::with_clock(temporary_tree(), config, clock_of(&clock)).expect("open");
        (ledger, clock)
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

    fn signed(
        ledger: &DevLedger,
        id: u64,
        destination: &str,
        amount: u128,
        nonce: u64,
    ) -> SignedTx {
        ledger
            .sign(&SignRequest::payment(
                &disbursement(id, destination, amount),
                nonce,
            ))
            .expect("sign")
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<DevLedger>();
    }

    #[test]
    fn height_and_epochs_advance_with_the_clock() {
        let (ledger, clock) = ledger(DevLedgerConfig::default());
        assert_eq!(
            (ledger.height(), ledger.head().map(|head| head.epoch)),
            (0, Ok(0))
        );
        clock.advance(Duration::from_millis(999));
        assert_eq!(ledger.height(), 0);
        clock.advance(Duration::from_millis(1));
        assert_eq!(ledger.height(), 1);
        clock.advance(Duration::from_millis(9_000));
        assert_eq!(
            (ledger.height(), ledger.head().map(|head| head.epoch)),
            (10, Ok(1))
        );
        clock.advance(Duration::from_millis(15_500));
        assert_eq!((ledger.height(), ledger.epoch()), (25, 2));
    }

    #[test]
    fn block_time_and_epoch_length_come_from_the_config() {
        let (ledger, clock) = ledger(DevLedgerConfig {
            block_time_ms: 250,
            epoch_length: 4,
            ..DevLedgerConfig::default()
        });
        clock.advance(Duration::from_millis(2_100));
        assert_eq!((ledger.height(), ledger.epoch()), (8, 2));
    }

    #[test]
    fn signing_is_deterministic_and_hashes_the_bytes() {
        let (ledger, _clock) = ledger(DevLedgerConfig::default());
        let a = signed(&ledger, 7, "alice", 5, 3);
        assert_eq!(a, signed(&ledger, 7, "alice", 5, 3));
        assert_ne!(a.tx_hash, signed(&ledger, 7, "alice", 5, 4).tx_hash);
        assert_eq!(a.tx_hash, fnv1a_hex(&a.bytes));
        assert_eq!(a.tx_hash.len(), 18);
        assert!(a.tx_hash.starts_with("0x"));
        // An invalid destination signs: the refusal belongs to submission.
        assert!(
            ledger
                .sign(&SignRequest::payment(&disbursement(1, "not valid!", 1), 0))
                .is_ok()
        );
    }

    #[test]
    fn a_transfer_debits_credits_and_is_included_in_the_next_block() {
        let (ledger, clock) = ledger(config(1_000));
        clock.advance(Duration::from_millis(4_200)); // height 4
        let tx = signed(&ledger, 0, "alice", 300, 0);
        assert_eq!(ledger.lookup(&tx.tx_hash), Ok(TxStatus::Unknown));
        ledger.submit(&tx).expect("accepted");

        assert_eq!(ledger.treasury_balance().expect("treasury"), 700);
        assert_eq!(ledger.balance("alice").expect("alice"), 300);
        assert_eq!(ledger.balance("bob").expect("bob"), 0);
        assert_eq!(ledger.next_nonce(), Ok(1));
        assert_eq!(ledger.lookup(&tx.tx_hash), Ok(TxStatus::Pending));
        let record = ledger
            .transaction(&tx.tx_hash)
            .expect("read")
            .expect("recorded");
        assert_eq!((record.id, record.nonce, record.amount), (0, 0, 300));
        assert_eq!((record.destination.as_str(), record.block), ("alice", 5));

        clock.advance(Duration::from_millis(799)); // 4 999 ms: still height 4
        assert_eq!(ledger.lookup(&tx.tx_hash), Ok(TxStatus::Pending));
        clock.advance(Duration::from_millis(1)); // height 5
        assert_eq!(
            ledger.lookup(&tx.tx_hash),
            Ok(TxStatus::Included {
                block: 5,
                block_hash: ledger.block_hash_at(5)
            })
        );
        clock.advance(BLOCK * 3);
        assert_eq!(
            ledger.lookup(&tx.tx_hash),
            Ok(TxStatus::Included {
                block: 5,
                block_hash: ledger.block_hash_at(5)
            })
        );
    }

    /// The chain as the executor reads it: blocks with stable hashes, the treasury's nonce
    /// at each height, its balance; a cancellation spends its nonce and moves nothing.
    #[test]
    fn blocks_nonces_and_cancellations() {
        let (ledger, clock) = ledger(config(1_000));
        assert_eq!(ledger.chain_id(), Ok("treasury-dev-1".into()));
        clock.advance(Duration::from_millis(2_500)); // height 2
        let head = ledger.head().expect("head");
        assert_eq!((head.number, head.base_fee), (2, None));
        assert_eq!(head.hash, ledger.block_hash_at(2));
        assert_ne!(ledger.block_hash_at(1), ledger.block_hash_at(2));
        assert_eq!(ledger.block_hash(2), Ok(Some(head.hash.clone())));
        assert_eq!(ledger.block_hash(3), Ok(None), "not yet made");
        assert_eq!(ledger.finalized(), Ok(Some(2)), "final at once");

        ledger
            .submit(&signed(&ledger, 0, "alice", 100, 0))
            .expect("block 3");
        let payment = disbursement(1, "bob", 200);
        let cancel = ledger
            .sign(&SignRequest {
                disbursement: &payment,
                kind: AttemptKind::Cancellation,
                nonce: 1,
                min_fees: None,
            })
            .expect("signed");
        assert_ne!(cancel.tx_hash, signed(&ledger, 1, "bob", 200, 1).tx_hash);
        ledger.submit(&cancel).expect("block 3 too");
        clock.advance(BLOCK * 2); // height 4
        ledger
            .submit(&signed(&ledger, 2, "carol", 1, 2))
            .expect("block 5");
        assert_eq!(
            [2, 3, 4, 5].map(|block| ledger.nonce_at(block)),
            [Ok(0), Ok(2), Ok(2), Ok(3)]
        );
        assert_eq!(
            ledger.balance("bob").expect("bob"),
            0,
            "a cancellation pays nothing"
        );
        assert_eq!(Ledger::balance(&ledger), Ok(899));
        assert_eq!(ledger.next_nonce(), Ok(3));
    }

    #[test]
    fn a_duplicate_is_already_known_and_changes_nothing() {
        let (ledger, clock) = ledger(config(1_000));
        let tx = signed(&ledger, 0, "alice", 100, 0);
        ledger.submit(&tx).expect("accepted");
        assert_eq!(ledger.submit(&tx), Err(LedgerError::AlreadyKnown));
        clock.advance(BLOCK);
        assert_eq!(ledger.submit(&tx), Err(LedgerError::AlreadyKnown));
        assert_eq!(ledger.treasury_balance().expect("treasury"), 900);
        assert_eq!(ledger.balance("alice").expect("alice"), 100);
        assert_eq!(ledger.next_nonce(), Ok(1));
    }

    #[test]
    fn nonces_are_strict() {
        let (ledger, _clock) = ledger(config(1_000));
        ledger
            .submit(&signed(&ledger, 0, "alice", 1, 0))
            .expect("nonce 0");
        assert_eq!(
            ledger.submit(&signed(&ledger, 1, "bob", 1, 0)),
            Err(LedgerError::NonceTooLow)
        );
        assert_eq!(
            ledger.submit(&signed(&ledger, 1, "bob", 1, 3)),
            Err(LedgerError::Rejected("nonce gap: expected 1, got 3".into()))
        );
        assert_eq!(ledger.next_nonce(), Ok(1));
        assert_eq!(ledger.balance("bob").expect("bob"), 0);
        ledger
            .submit(&signed(&ledger, 1, "bob", 1, 1))
            .expect("nonce 1");
        assert_eq!(ledger.next_nonce(), Ok(2));
    }

    #[test]
    fn an_amount_above_the_treasury_is_insufficient_balance() {
        let (ledger, _clock) = ledger(config(100));
        assert_eq!(
            ledger.submit(&signed(&ledger, 0, "alice", 101, 0)),
            Err(LedgerError::InsufficientBalance)
        );
        assert_eq!(ledger.treasury_balance().expect("treasury"), 100);
        assert_eq!(ledger.next_nonce(), Ok(0), "a refusal consumes no nonce");
        ledger
            .submit(&signed(&ledger, 0, "alice", 100, 0))
            .expect("exactly the balance");
        assert_eq!(ledger.treasury_balance().expect("treasury"), 0);
    }

    #[test]
    fn destinations_follow_the_dev_address_rule() {
        let (ledger, _clock) = ledger(DevLedgerConfig::default());
        let sixty_four = "a".repeat(64);
        let hex_64 = format!("0x{}", "aB3".repeat(21) + "f");
        for good in [
            "alice",
            "A.b-c_9",
            sixty_four.as_str(),
            "0x0",
            "0xdeadBEEF",
            hex_64.as_str(),
        ] {
            assert_eq!(ledger.validate_destination(good), Ok(()), "{good}");
        }
        let cases = [
            ("", "cannot be empty"),
            ("bob smith", "found ' ' at position 3"),
            ("carol/x", "found '/' at position 5"),
            ("dävid", "found 'ä' at position 1"),
            ("0x", "needs hex digits"),
            ("0xabcg", "found 'g' at position 5"),
            ("0Xabc ", "found ' ' at position 5"),
        ];
        for (bad, says) in cases {
            let reason = ledger.validate_destination(bad).expect_err(bad);
            assert!(reason.contains(says), "{bad:?}: {reason}");
        }
        let too_long = "a".repeat(65);
        let reason = ledger.validate_destination(&too_long).expect_err("65");
        assert!(reason.contains("at most 64 characters"), "{reason}");
        let too_many_digits = format!("0x{}", "1".repeat(65));
        let reason = ledger
            .validate_destination(&too_many_digits)
            .expect_err("65 digits");
        assert!(reason.contains("at most 64 hex digits"), "{reason}");
    }

    #[test]
    fn submit_refuses_an_invalid_destination() {
        let (ledger, _clock) = ledger(config(1_000));
        let Err(LedgerError::InvalidDestination(reason)) =
            ledger.submit(&signed(&ledger, 0, "bob smith", 1, 0))
        else {
            panic!("expected InvalidDestination");
        };
        assert!(reason.contains("found ' '"), "{reason}");
        assert_eq!(ledger.next_nonce(), Ok(0));
        assert_eq!(ledger.treasury_balance().expect("treasury"), 1_000);
    }

    #[test]
    fn garbage_foreign_or_mislabelled_bytes_are_rejected() {
        let (ledger, _clock) = ledger(config(1_000));
        let garbage = SignedTx {
            tx_hash: fnv1a_hex(b"garbage"),
            bytes: b"garbage".to_vec(),
            fees: Fees::default(),
        };
        assert!(matches!(
            ledger.submit(&garbage),
            Err(LedgerError::Rejected(_))
        ));

        let foreign = br#"{"chain":"other","id":0,"destination":"a","amount":1,"nonce":0}"#;
        let foreign = SignedTx {
            tx_hash: fnv1a_hex(foreign),
            bytes: foreign.to_vec(),
            fees: Fees::default(),
        };
        let Err(LedgerError::Rejected(reason)) = ledger.submit(&foreign) else {
            panic!("expected a rejection");
        };
        assert!(reason.contains("\"other\""), "{reason}");

        let mut mislabelled = signed(&ledger, 0, "alice", 1, 0);
        mislabelled.tx_hash = "0x0000000000000000".into();
        assert!(matches!(
            ledger.submit(&mislabelled),
            Err(LedgerError::Rejected(_))
        ));
        assert_eq!(ledger.next_nonce(), Ok(0));
    }

    #[test]
    fn outages_refuse_or_time_out_exactly_within_their_window() {
        let clock = ManualClock::new();
        clock.advance(Duration::from_secs(100)); // outages count from open, not from 0
        let config = DevLedgerConfig {
            outages: vec![
                Outage {
                    after_secs: 10,
                    for_secs: 5,
                    mode: OutageMode::Refuse,
                },
                Outage {
                    after_secs: 20,
                    for_secs: 3,
                    mode: OutageMode::Timeout,
                },
            ],
            ..config(1_000)
        };
        let ledger =
            DevLedger::with_clock(temporary_tree(), config, clock_of(&clock)).expect("open");
        let refused = Err(LedgerError::Unreachable(
            "dev ledger outage: connection refused".into(),
        ));
        let mut nonce = 0;
        let mut submit_at = |since_open_ms: u64| {
            let now = Duration::from_secs(100) + Duration::from_millis(since_open_ms);
            clock.advance(now.saturating_sub(clock.now()));
            let result = ledger.submit(&signed(&ledger, nonce, "alice", 1, nonce));
            if result.is_ok() {
                nonce += 1;
            }
            (ledger.in_outage(), result)
        };
        assert_eq!(submit_at(0), (None, Ok(())));
        assert_eq!(submit_at(9_999), (None, Ok(())));
        assert_eq!(
            submit_at(10_000),
            (Some(OutageMode::Refuse), refused.clone())
        );
        assert_eq!(submit_at(14_999), (Some(OutageMode::Refuse), refused));
        assert_eq!(submit_at(15_000), (None, Ok(())));
        assert_eq!(submit_at(19_999), (None, Ok(())));
        let timeout = Err(LedgerError::Timeout);
        assert_eq!(
            submit_at(20_000),
            (Some(OutageMode::Timeout), timeout.clone())
        );
        assert_eq!(submit_at(22_999), (Some(OutageMode::Timeout), timeout));
        assert_eq!(submit_at(23_000), (None, Ok(())));
        assert_eq!(ledger.next_nonce(), Ok(5));
    }

    #[test]
    fn lookups_and_reads_work_during_an_outage() {
        let clock = ManualClock::new();
        let config = DevLedgerConfig {
            outages: vec![Outage {
                after_secs: 1,
                for_secs: 60,
                mode: OutageMode::Refuse,
            }],
            ..config(1_000)
        };
        let ledger =
            DevLedger::with_clock(temporary_tree(), config, clock_of(&clock)).expect("open");
        let tx = signed(&ledger, 0, "alice", 1, 0);
        ledger.submit(&tx).expect("before the outage");
        clock.advance(Duration::from_secs(2));
        assert_eq!(
            ledger.lookup(&tx.tx_hash),
            Ok(TxStatus::Included {
                block: 1,
                block_hash: ledger.block_hash_at(1)
            })
        );
        assert_eq!(ledger.next_nonce(), Ok(1));
        assert_eq!(ledger.head().map(|head| head.epoch), Ok(0));
    }

    /// The dev ledger's tree in the sled database at `path`. sled's flusher thread holds
    /// the lock of a database just dropped until its next wake-up: a reopen waits for it
    /// (up to 10 s).
    fn dev_ledger_tree(path: &std::path::Path) -> sled::Tree {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let db = loop {
            match sled::open(path) {
                Ok(db) => break db,
                Err(error)
                    if error.to_string().contains("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(error) => panic!("open db: {error}"),
            }
        };
        db.open_tree("aux/dev_ledger").expect("tree")
    }

    #[test]
    fn state_survives_reopening_the_tree() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let open_tree = || dev_ledger_tree(&path);
        let clock = ManualClock::new();
        let (genesis, tx) = {
            let ledger =
                DevLedger::with_clock(open_tree(), config(1_000), clock_of(&clock)).expect("open");
            let tx = signed(&ledger, 0, "alice", 250, 0);
            ledger.submit(&tx).expect("accepted");
            (ledger.genesis_ms(), tx)
        }; // ledger, tree and db dropped: the database is closed

        clock.advance(BLOCK * 2);
        // A different funding on reopen is ignored: the chain was funded at creation.
        let ledger =
            DevLedger::with_clock(open_tree(), config(5), clock_of(&clock)).expect("reopen");
        assert_eq!(ledger.genesis_ms(), genesis);
        assert_eq!(ledger.treasury_balance().expect("treasury"), 750);
        assert_eq!(ledger.balance("alice").expect("alice"), 250);
        assert_eq!(ledger.next_nonce(), Ok(1));
        assert_eq!(
            ledger.lookup(&tx.tx_hash),
            Ok(TxStatus::Included {
                block: 1,
                block_hash: ledger.block_hash_at(1)
            })
        );
        assert_eq!(ledger.submit(&tx), Err(LedgerError::AlreadyKnown));
    }

    #[test]
    fn the_production_clock_continues_from_the_persisted_genesis() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let open_tree = || dev_ledger_tree(&path);
        let genesis = {
            let ledger = DevLedger::open(open_tree(), DevLedgerConfig::default()).expect("open");
            assert!(ledger.height() < 5, "a new chain starts near block 0");
            ledger.genesis_ms()
        };
        assert!(genesis > 1_600_000_000_000, "genesis is wall-clock Unix ms");
        {
            // Pretend the chain was created an hour earlier.
            let tree = open_tree();
            let earlier = genesis - 3_600_000;
            tree.insert("genesis_ms", &earlier.to_be_bytes())
                .expect("rewrite genesis");
        }
        let ledger = DevLedger::open(open_tree(), DevLedgerConfig::default()).expect("reopen");
        assert_eq!(ledger.genesis_ms(), genesis - 3_600_000);
        let height = ledger.height();
        assert!((3_600..3_700).contains(&height), "height {height}");
        assert_eq!(ledger.head().map(|head| head.epoch), Ok(height / 10));
    }

    #[test]
    fn corrupt_records_are_errors_naming_the_key() {
        let tree = temporary_tree();
        let clock = ManualClock::new();
        let ledger =
            DevLedger::with_clock(tree.clone(), config(1_000), clock_of(&clock)).expect("open");
        let tx = signed(&ledger, 0, "alice", 1, 0);
        ledger.submit(&tx).expect("accepted");

        tree.insert("balance/alice", b"xyz".to_vec())
            .expect("damage");
        let error = ledger.balance("alice").expect_err("corrupt balance");
        assert!(
            matches!(&error, DevLedgerError::Corrupt { key, .. } if key == "balance/alice"),
            "{error}"
        );
        // The next transfer to alice reads it inside the transaction: an error, no panic.
        let Err(LedgerError::Other(message)) = ledger.submit(&signed(&ledger, 1, "alice", 1, 1))
        else {
            panic!("expected a storage failure");
        };
        assert!(message.contains("balance/alice"), "{message}");
        assert_eq!(ledger.next_nonce(), Ok(1), "nothing applied");

        let tx_key = format!("tx/{}", tx.tx_hash);
        tree.insert(tx_key.as_bytes(), b"{not json".to_vec())
            .expect("damage");
        let Err(LedgerError::Other(message)) = ledger.lookup(&tx.tx_hash) else {
            panic!("expected a storage failure");
        };
        assert!(message.contains(&tx_key), "{message}");

        tree.insert("treasury", b"12".to_vec()).expect("damage");
        let error = ledger.treasury_balance().expect_err("corrupt treasury");
        assert_eq!(
            error.to_string(),
            "dev ledger record \"treasury\" is corrupt: expected 16 bytes, found 2"
        );
        drop(ledger);
        let error = DevLedger::with_clock(tree.clone(), config(1_000), clock_of(&clock))
            .expect_err("reopening a corrupt chain");
        assert!(
            matches!(&error, DevLedgerError::Corrupt { key, .. } if key == "treasury"),
            "{error}"
        );

        tree.remove("treasury").expect("remove");
        let error = DevLedger::with_clock(tree.clone(), config(1_000), clock_of(&clock))
            .expect_err("a chain without its treasury");
        assert!(error.to_string().contains("\"treasury\""), "{error}");

        tree.insert("genesis_ms", b"".to_vec()).expect("damage");
        let error = DevLedger::with_clock(tree, config(1_000), clock_of(&clock))
            .expect_err("corrupt genesis");
        assert!(error.to_string().contains("\"genesis_ms\""), "{error}");
    }

    #[test]
    fn open_refuses_an_invalid_config() {
        let error = DevLedger::with_clock(
            temporary_tree(),
            DevLedgerConfig {
                block_time_ms: 0,
                ..DevLedgerConfig::default()
            },
            clock_of(&ManualClock::new()),
        )
        .expect_err("block time 0");
        assert!(matches!(
            error,
            DevLedgerError::Config(DevLedgerConfigError::BlockTime)
        ));
    }

    #[test]
    fn config_defaults_and_validation_messages() {
        let defaults = DevLedgerConfig::default();
        assert_eq!(defaults.block_time_ms, 1000);
        assert_eq!(defaults.epoch_length, 10);
        assert_eq!(defaults.treasury_balance, 10u128.pow(24));
        assert!(defaults.outages.is_empty());
        assert_eq!(defaults.validate(), Ok(()));

        let message = |config: DevLedgerConfig| config.validate().expect_err("invalid").to_string();
        assert_eq!(
            message(DevLedgerConfig {
                block_time_ms: 0,
                ..DevLedgerConfig::default()
            }),
            "dev_ledger.block_time_ms must be at least 1"
        );
        assert_eq!(
            message(DevLedgerConfig {
                epoch_length: 0,
                ..DevLedgerConfig::default()
            }),
            "dev_ledger.epoch_length must be at least 1"
        );
        let outage = |for_secs| Outage {
            after_secs: 5,
            for_secs,
            mode: OutageMode::Timeout,
        };
        let error = DevLedgerConfig {
            outages: vec![outage(1), outage(0)],
            ..DevLedgerConfig::default()
        }
        .validate()
        .expect_err("empty outage");
        assert_eq!(
            error.to_string(),
            "dev_ledger.outages[1].for_secs must be at least 1"
        );
        assert_eq!(error.key(), "dev_ledger.outages[1].for_secs");
    }

    #[test]
    fn config_serde_writes_the_treasury_as_a_decimal_string() {
        let config = DevLedgerConfig {
            outages: vec![Outage {
                after_secs: 30,
                for_secs: 60,
                mode: OutageMode::Timeout,
            }],
            ..DevLedgerConfig::default()
        };
        let json = serde_json::to_value(&config).expect("serialise");
        assert_eq!(json["treasury_balance"], "1000000000000000000000000");
        assert_eq!(json["outages"][0]["mode"], "timeout");
        let back: DevLedgerConfig = serde_json::from_value(json).expect("deserialise");
        assert_eq!(back, config);

        let max: DevLedgerConfig =
            serde_json::from_str(&format!(r#"{{"treasury_balance": "{}"}}"#, u128::MAX))
                .expect("u128::MAX as a string");
        assert_eq!(max.treasury_balance, u128::MAX);
        let integer: DevLedgerConfig =
            serde_json::from_str(r#"{"treasury_balance": 42}"#).expect("an integer");
        assert_eq!(integer.treasury_balance, 42);
        for bad in [
            r#"{"treasury_balance": -1}"#,
            r#"{"treasury_balance": "-1"}"#,
            r#"{"treasury_balance": "+1"}"#,
            r#"{"treasury_balance": "1e6"}"#,
            r#"{"treasury_balance": ""}"#,
            r#"{"treasury_balance": 1.5}"#,
            r#"{"block_time": 5}"#,
        ] {
            assert!(
                serde_json::from_str::<DevLedgerConfig>(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn config_reads_from_toml() {
        let config: DevLedgerConfig = toml::from_str(
            r#"
            block_time_ms = 500
            treasury_balance = "340282366920938463463374607431768211455"

            [[outages]]
            after_secs = 60
            for_secs = 30

            [[outages]]
            after_secs = 120
            for_secs = 10
            mode = "timeout"
            "#,
        )
        .expect("toml");
        assert_eq!(config.block_time_ms, 500);
        assert_eq!(config.epoch_length, 10, "defaulted");
        assert_eq!(config.treasury_balance, u128::MAX);
        assert_eq!(config.outages[0].mode, OutageMode::Refuse, "defaulted");
        assert_eq!(config.outages[1].mode, OutageMode::Timeout);

        let integer: DevLedgerConfig =
            toml::from_str("treasury_balance = 9223372036854775807").expect("an i64");
        assert_eq!(
            integer.treasury_balance,
            u128::from(i64::MAX.unsigned_abs())
        );
        assert_eq!(
            toml::from_str::<DevLedgerConfig>("").expect("empty"),
            DevLedgerConfig::default()
        );
        for bad in [
            "treasury_balance = -5",
            "blocktime_ms = 5",
            "[[outages]]\nafter_secs = 1\nfor_secs = 1\nmode = \"slow\"",
            "[[outages]]\nafter_secs = 1",
        ] {
            assert!(toml::from_str::<DevLedgerConfig>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_executor_pays_through_the_dev_ledger() {
        let store = GovStore::open_temporary().expect("store");
        let clock = ManualClock::new();
        let ledger = Arc::new(
            DevLedger::with_clock(
                store.aux_tree("dev_ledger").expect("aux tree"),
                config(1_000),
                clock_of(&clock),
            )
            .expect("open"),
        );
        let breaker = Arc::new(CircuitBreaker::with_clock(
            CircuitBreakerConfig::default(),
            clock.clone(),
        ));
        let mut executor = TreasuryExecutor::new(
            TreasuryExecutorConfig::new("dev-ledger-test"),
            breaker,
            store.clone(),
            Arc::clone(&ledger) as Arc<dyn Ledger>,
        )
        .expect("executor");

        let payees = [("alice", 100), ("bob", 200), ("0xc0ffee", 300)];
        let mut ids = vec![];
        for (destination, amount) in payees {
            let new = NewDisbursement {
                destination: destination.into(),
                amount,
                memo: format!("pay {destination}"),
                activation_epoch: 0,
                depends_on: vec![],
                external_key: None,
                asset: "native".into(),
            };
            ids.push(store.queue(&new, 0).expect("queue").disbursement.id);
        }

        let executed = |id| {
            matches!(
                store.get(id).expect("get").expect("exists").status,
                DisbursementStatus::Executed { .. }
            )
        };
        let mut ticks = 0;
        while !ids.iter().all(|&id| executed(id)) {
            assert!(ticks < 10, "not executed after {ticks} ticks");
            executor.tick().expect("tick");
            clock.advance(BLOCK);
            ticks += 1;
        }
        assert_eq!(ticks, 2, "submitted in one tick, confirmed in the next");

        for ((destination, amount), id) in payees.iter().zip(&ids) {
            assert_eq!(ledger.balance(destination).expect("balance"), *amount);
            let Some(DisbursementStatus::Executed { tx_hash, block, .. }) =
                store.get(*id).expect("get").map(|d| d.status)
            else {
                panic!("{id} not executed");
            };
            assert_eq!(block, 1);
            let record = ledger
                .transaction(&tx_hash)
                .expect("read")
                .expect("on chain");
            assert_eq!((record.id, record.amount), (*id, *amount));
        }
        assert_eq!(ledger.treasury_balance().expect("treasury"), 400);
        assert_eq!(ledger.next_nonce(), Ok(3));
    }
}
