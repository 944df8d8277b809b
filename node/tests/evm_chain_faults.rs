//! Exactly once on a chain that misbehaves (issue 10): the real `node` binary on anvil,
//! driven through its TOML configuration and its admin API, one test per failure mode,
//! each checking the money on the chain, never only the store:
//!
//! 1. stale lookups by hash (a lagging read backend) must not make it pay twice;
//! 2. a reorg that drops the paying block must not leave it Executed: Executed only at
//!    `[evm] confirmations` depth;
//! 3. a base-fee spike above the signed fee is met by fee bumps at the same nonce;
//! 4. a restored database backup must not pay again what the chain already paid;
//! 5. an endpoint repointed at another network halts the executor, it cancels nothing;
//! 6. a treasury short of funds pauses, it cancels nothing.
//!
//! Each test starts its own anvil(s) and node(s) (killed on drop). The new `[evm]` keys of
//! issue 10 are written by `issue_10_evm_keys` (the one switch);
//! `CHAIN_FAULTS_LEGACY_CONFIG=1` leaves them out, so that a node that refuses unknown keys
//! (the one before issue 10) runs the same tests with the same assertions.
//! anvil 1.7.1 puts none of the transactions of a reorged or rolled-back block back in its
//! pool, and a block whose base fee is above a pooled transaction's max fee evicts it (and
//! the sender's later nonces): in each case the executor has to send again by itself.

mod common;

mod evm_chain_faults {
    use std::net::SocketAddr;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::thread::{self, JoinHandle};
    use std::time::{Duration, Instant};

    use faultproxy::{FaultProxy, Mode};
    use serde_json::{Value, json};

    use crate::common::{
        ANVIL_CHAIN_ID, Anvil, NodeProcess, TREASURY, TREASURY_KEY, http_request, json_rpc,
        quantity,
    };

    const TOKEN: &str = "evm-chain-faults-admin-token";
    /// Generous: a tick on a loaded 2-core machine running other tests can take seconds.
    const PATIENCE: Duration = Duration::from_secs(120);
    const POLL: Duration = Duration::from_millis(100);
    /// `[evm] confirmations` in these tests: executed only this deep (the tip included).
    const CONFIRMATIONS: u64 = 3;
    const BUMP_AFTER_BLOCKS: u64 = 2;
    const BUMP_PERCENT: u64 = 20;
    const GWEI: u128 = 1_000_000_000;
    const ETHER: u128 = 1_000_000_000_000_000_000;
    /// Set (to anything) to write the configuration without issue 10's keys.
    const LEGACY_SWITCH: &str = "CHAIN_FAULTS_LEGACY_CONFIG";

    /// The `[evm]` keys issue 10 adds (a node without them refuses them as unknown): the
    /// one switch between the node under construction and the node before it.
    fn issue_10_evm_keys() -> String {
        if std::env::var_os(LEGACY_SWITCH).is_some() {
            return String::new();
        }
        format!(
            "confirmations = {CONFIRMATIONS}\n\
             bump_after_blocks = {BUMP_AFTER_BLOCKS}\n\
             bump_percent = {BUMP_PERCENT}\n\
             wait_for_finalized = false\n"
        )
    }

    // ----- a node's files and process ----------------------------------------------------

    /// A node's directory: key, configuration, database; deleted on drop.
    struct Site {
        dir: tempfile::TempDir,
    }

    impl Site {
        fn new() -> Site {
            let dir = tempfile::tempdir().expect("tempdir");
            std::fs::write(dir.path().join("treasury.key"), format!("{TREASURY_KEY}\n"))
                .expect("key written");
            Site { dir }
        }

        fn config(&self) -> PathBuf {
            self.dir.path().join("node.toml")
        }

        fn db(&self) -> PathBuf {
            self.dir.path().join("governance.db")
        }

        /// (Re)writes the configuration: the EVM ledger on `rpc`, ticks every 100 ms, a
        /// breaker that reopens for probes after 2 s, `evm_extra` lines under `[evm]`, and
        /// issue 10's keys.
        fn configure(&self, rpc: SocketAddr, evm_extra: &str) {
            let text = format!(
                "ledger = \"evm\"\n\
                 rpc_url = \"http://{rpc}\"\n\
                 treasury_key_file = \"{key}\"\n\
                 admin_token = \"{TOKEN}\"\n\
                 poll_interval_ms = 100\n\
                 [circuit_breaker]\n\
                 timeout_secs = 2\n\
                 [evm]\n\
                 request_timeout_ms = 10000\n\
                 {evm_extra}{keys}",
                key = self.dir.path().join("treasury.key").display(),
                keys = issue_10_evm_keys(),
            );
            std::fs::write(self.config(), text).expect("config written");
        }

        fn start(&self) -> NodeProcess {
            NodeProcess::start(&self.config(), &self.db())
        }
    }

    impl NodeProcess {
        /// One admin request: the status and the body as JSON (`Null` if it is not).
        fn exchange(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
            let auth = format!("Bearer {TOKEN}");
            let headers = [
                ("Authorization", auth.as_str()),
                ("X-Actor", "chain-faults"),
            ];
            let body = body.map(Value::to_string);
            let (code, text) = http_request(&self.address, method, path, &headers, body.as_deref());
            (code, serde_json::from_str(&text).unwrap_or(Value::Null))
        }

        /// Queues a disbursement (201 created, or 200 for an external key it already
        /// holds); its id.
        fn queue(&self, destination: &str, amount: u128, external_key: Option<&str>) -> u64 {
            let body = json!({
                "destination": destination,
                "amount": amount.to_string(),
                "memo": "chain faults",
                "external_key": external_key,
            });
            let (code, answer) = self.exchange("POST", "/admin/disbursements", Some(&body));
            assert!(code == 201 || code == 200, "queueing: {code} {answer}");
            answer["id"].as_u64().expect("an id")
        }

        fn record(&self, id: u64) -> Value {
            let (code, answer) = self.exchange("GET", &format!("/admin/disbursements/{id}"), None);
            assert_eq!(code, 200, "disbursement {id}: {answer}");
            answer
        }

        fn status(&self) -> Value {
            let (code, answer) = self.exchange("GET", "/status", None);
            assert_eq!(code, 200, "/status: {answer}");
            answer
        }

        fn ticks(&self) -> u64 {
            let status = self.status();
            status["executor"]["ticks"]
                .as_u64()
                .unwrap_or_else(|| panic!("no executor.ticks in /status: {status}"))
        }

        fn halted(&self) -> Option<String> {
            self.status()["executor"]["halted"]
                .as_str()
                .map(str::to_owned)
        }

        /// The last lines of its log, for failure messages.
        fn log_tail(&self) -> String {
            let log = self.stderr();
            let lines: Vec<&str> = log.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        }
    }

    /// `queued`, `staged`, `submitted`, `included`, `executed` or `cancelled`.
    fn status_of(record: &Value) -> &str {
        record["status"]["status"].as_str().unwrap_or("?")
    }

    fn is_final(record: &Value) -> bool {
        matches!(status_of(record), "executed" | "cancelled")
    }

    // ----- the chain ---------------------------------------------------------------------

    /// A JSON-RPC call to anvil at `address` (usable from any thread): its `result`.
    fn rpc(address: SocketAddr, method: &str, params: Value) -> Result<Value, String> {
        let answer = json_rpc(address, method, params)?;
        match answer.get("result") {
            Some(result) => Ok(result.clone()),
            None => Err(format!("{method}: {answer}")),
        }
    }

    fn hex(value: u128) -> String {
        format!("{value:#x}")
    }

    fn tip(anvil: &Anvil) -> u64 {
        quantity(&anvil.call("eth_blockNumber", json!([]))) as u64
    }

    fn receipt(anvil: &Anvil, tx_hash: &str) -> Option<Value> {
        let receipt = anvil.call("eth_getTransactionReceipt", json!([tx_hash]));
        (!receipt.is_null()).then_some(receipt)
    }

    fn mine(anvil: &Anvil, blocks: u64) {
        for _ in 0..blocks {
            anvil.call("evm_mine", json!([]));
        }
    }

    /// The only transaction of the latest block: its hash and the block's number.
    fn latest_block_tx(anvil: &Anvil) -> (String, u64) {
        let block = anvil.call("eth_getBlockByNumber", json!(["latest", false]));
        let txs = block["transactions"].as_array().expect("transactions");
        assert_eq!(txs.len(), 1, "one transaction in the block: {block}");
        let hash = txs[0].as_str().expect("a hash").to_owned();
        (hash, quantity(&block["number"]) as u64)
    }

    /// The treasury's transactions in anvil's pool: (nonce, maxFeePerGas).
    fn pooled_fees(anvil: &Anvil) -> Vec<(u64, u128)> {
        let content = anvil.call("txpool_content", json!([]));
        let by_sender = content["pending"].as_object().expect("pending");
        let mut fees: Vec<(u64, u128)> = by_sender
            .iter()
            .filter(|(sender, _)| sender.eq_ignore_ascii_case(TREASURY))
            .flat_map(|(_, txs)| txs.as_object().expect("by nonce").values())
            .map(|tx| (quantity(&tx["nonce"]) as u64, quantity(&tx["maxFeePerGas"])))
            .collect();
        fees.sort_unstable();
        fees
    }

    /// Mines a block every `every` on a thread (setting the next block's base fee first,
    /// if given: anvil does not keep it), until dropped.
    struct Miner {
        stop: Arc<AtomicBool>,
        mined: Arc<AtomicU64>,
        thread: Option<JoinHandle<()>>,
    }

    impl Miner {
        fn start(anvil: &Anvil, every: Duration, base_fee: Option<u128>) -> Miner {
            let stop = Arc::new(AtomicBool::new(false));
            let mined = Arc::new(AtomicU64::new(0));
            let address = anvil.address;
            let thread = thread::spawn({
                let (stop, mined) = (Arc::clone(&stop), Arc::clone(&mined));
                move || {
                    while !stop.load(Ordering::SeqCst) {
                        if let Some(fee) = base_fee {
                            let _ = rpc(
                                address,
                                "anvil_setNextBlockBaseFeePerGas",
                                json!([hex(fee)]),
                            );
                        }
                        if rpc(address, "evm_mine", json!([])).is_ok() {
                            mined.fetch_add(1, Ordering::SeqCst);
                        }
                        thread::sleep(every);
                    }
                }
            });
            Miner {
                stop,
                mined,
                thread: Some(thread),
            }
        }

        fn mined(&self) -> u64 {
            self.mined.load(Ordering::SeqCst)
        }
    }

    impl Drop for Miner {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    // ----- checks --------------------------------------------------------------------------

    /// Polls `check` every 100 ms until it gives a value, for at most `limit`.
    fn poll<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(value) = check() {
                return Some(value);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(POLL);
        }
    }

    /// Distinct fresh destinations, each with a distinct amount (so that a balance that is
    /// a multiple of it says how many times it was paid).
    fn payments(tag: u64, count: u64, base: u128) -> Vec<(String, u128)> {
        (1..=count)
            .map(|i| {
                let destination = format!("0x{:040x}", (u128::from(tag) << 64) | u128::from(i));
                (destination, base + u128::from(i))
            })
            .collect()
    }

    fn holdings(balance: u128, amount: u128) -> String {
        if balance.is_multiple_of(amount) {
            format!("{} x the amount", balance / amount)
        } else {
            format!("{balance} wei, not a multiple of the amount")
        }
    }

    /// The money: each destination holds exactly its amount (paid once, not zero, not
    /// twice). Every wrong one is named.
    fn assert_paid_once(anvil: &Anvil, payments: &[(String, u128)], context: &str) {
        let wrong: Vec<String> = payments
            .iter()
            .filter_map(|(destination, amount)| {
                let balance = anvil.balance(destination);
                (balance != *amount).then(|| {
                    format!(
                        "{destination} holds {} (amount {amount})",
                        holdings(balance, *amount)
                    )
                })
            })
            .collect();
        assert!(
            wrong.is_empty(),
            "{context}: every destination must hold its amount exactly once; {}",
            wrong.join("; ")
        );
    }

    /// A record that says `executed` must name a transaction that the chain holds, with
    /// status 1, in the block it names, at least [`CONFIRMATIONS`] deep. Read the record
    /// first, then the chain (a chain that only grows meanwhile can only help it).
    fn executed_at_depth(anvil: &Anvil, record: &Value) -> Result<(), String> {
        if status_of(record) != "executed" {
            return Ok(());
        }
        let Some(tx_hash) = record["status"]["tx_hash"].as_str() else {
            return Err(format!("an executed record without a tx hash: {record}"));
        };
        let Some(receipt) = receipt(anvil, tx_hash) else {
            return Err(format!(
                "the store says executed ({record}) but the chain holds no transaction {tx_hash}"
            ));
        };
        let block = quantity(&receipt["blockNumber"]) as u64;
        let tip = tip(anvil);
        let depth = (tip + 1).saturating_sub(block);
        if receipt["status"] != "0x1" {
            return Err(format!(
                "the store says executed but {tx_hash} reverted: {receipt}"
            ));
        }
        if record["status"]["block"].as_u64() != Some(block) {
            return Err(format!(
                "the store says executed in another block than the chain ({block}): {record}"
            ));
        }
        if depth < CONFIRMATIONS {
            return Err(format!(
                "the store says executed ({record}) but {tx_hash} has {depth} confirmation(s) \
                 (block {block}, tip {tip}); {CONFIRMATIONS} required"
            ));
        }
        Ok(())
    }

    fn assert_executed_at_depth(anvil: &Anvil, node: &NodeProcess, ids: &[u64]) {
        for &id in ids {
            let record = node.record(id);
            assert_eq!(
                status_of(&record),
                "executed",
                "disbursement {id}: {record}"
            );
            if let Err(error) = executed_at_depth(anvil, &record) {
                panic!("disbursement {id}: {error}");
            }
        }
    }

    /// Whether `text` names `number` as a whole word (not as a digit of another number).
    fn mentions(text: &str, number: u64) -> bool {
        let number = number.to_string();
        text.split(|c: char| !c.is_ascii_alphanumeric())
            .any(|word| word == number)
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("target directory");
        for entry in std::fs::read_dir(from).expect("readable directory") {
            let entry = entry.expect("directory entry");
            let target = to.join(entry.file_name());
            if entry.file_type().expect("file type").is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).expect("file copied");
            }
        }
    }

    // ----- the failure modes -------------------------------------------------------------

    /// 1. A load-balanced provider's read backend lags: lookups by hash answer `null` for
    ///    8 s while sends reach an up-to-date node. "Unknown" plus "nonce too low" must not
    ///    make the executor sign a payment again at another nonce.
    #[test]
    fn stale_lookups_never_pay_twice() {
        const STALE_FOR: Duration = Duration::from_secs(8);
        let anvil = Anvil::start(&[]);
        let proxy = FaultProxy::start(anvil.address).expect("the proxy starts");
        let _miner = Miner::start(&anvil, Duration::from_millis(500), None);
        let site = Site::new();
        site.configure(proxy.addr(), "");
        let node = site.start();
        let payments = payments(0x57a1e, 6, 1_000_000_000_000_000);

        proxy
            .set_mode(Mode::StaleReads)
            .expect("stale reads switched on");
        let stale_since = Instant::now();
        let ids: Vec<u64> = payments
            .iter()
            .map(|(destination, amount)| node.queue(destination, *amount, None))
            .collect();
        // The fault lasts this long whatever the node does (it is the scenario, not a wait).
        thread::sleep(STALE_FOR.saturating_sub(stale_since.elapsed()));
        proxy.set_mode(Mode::Pass).expect("the proxy passes again");
        let stale = proxy.stale_answers();
        eprintln!(
            "stale reads: {stale} lookups answered null in {STALE_FOR:?}; the treasury sent {} \
             transactions meanwhile",
            anvil.tx_count("latest")
        );
        assert!(stale > 0, "the node made no lookup while reads were stale");

        let settled = poll(PATIENCE, || {
            ids.iter()
                .all(|&id| is_final(&node.record(id)))
                .then_some(())
        });
        assert_paid_once(&anvil, &payments, "after 8 s of stale lookups");
        assert_eq!(
            anvil.tx_count("latest"),
            payments.len() as u64,
            "the treasury sent one transaction per payment"
        );
        let records: Vec<Value> = ids.iter().map(|&id| node.record(id)).collect();
        assert!(
            settled.is_some(),
            "not all executed within {PATIENCE:?} after the reads caught up: {records:?}; log:\n{}",
            node.log_tail()
        );
        assert_executed_at_depth(&anvil, &node, &ids);
    }

    /// 2. A reorg drops the block that paid: the store must not say executed before the
    ///    transaction is [`CONFIRMATIONS`] deep, and must pay it (again, same nonce) once the
    ///    chain lost it. Dropped twice: by `anvil_reorg` (same height, new hash) at one
    ///    confirmation, then by `anvil_rollback` (lower height) at two. anvil puts neither
    ///    back in its pool: the executor has to rebroadcast.
    #[test]
    fn a_reorged_payment_is_not_executed_until_it_is_back_at_depth() {
        let anvil = Anvil::start(&["--no-mining"]);
        let site = Site::new();
        site.configure(anvil.address, "");
        let node = site.start();
        let destination = "0x00000000000000000000000000000000000e0a61";
        let amount = 1_000_000_000_000_000_321;
        let id = node.queue(destination, amount, None);

        // Every look at the store checks it: executed only at depth.
        let look = || {
            let record = node.record(id);
            if let Err(error) = executed_at_depth(&anvil, &record) {
                panic!("{error}; log:\n{}", node.log_tail());
            }
            record
        };
        let in_pool = |what: &str| {
            poll(PATIENCE, || (anvil.tx_count("pending") == 1).then(&look)).unwrap_or_else(|| {
                panic!(
                    "{what}: no transaction of the treasury in anvil's pool within \
                         {PATIENCE:?}: {}; log:\n{}",
                    look(),
                    node.log_tail()
                )
            });
        };
        // The node has seen its payment in `block`: included (or executed, which `look`
        // refuses below depth).
        let seen_in = |block: u64| {
            poll(PATIENCE, || {
                let record = look();
                let past_submitted =
                    !matches!(status_of(&record), "queued" | "staged" | "submitted");
                (past_submitted && record["status"]["block"].as_u64() == Some(block))
                    .then_some(record)
            })
            .unwrap_or_else(|| {
                panic!(
                    "the store never showed the payment in block {block} within {PATIENCE:?}: {}; \
                     log:\n{}",
                    look(),
                    node.log_tail()
                )
            })
        };

        // Included at height 1, seen, then reorged out at one confirmation.
        in_pool("the first broadcast");
        mine(&anvil, 1);
        let (first_hash, first_block) = latest_block_tx(&anvil);
        seen_in(first_block);
        anvil.call("anvil_reorg", json!([1, []]));
        assert!(
            receipt(&anvil, &first_hash).is_none(),
            "anvil_reorg dropped {first_hash}"
        );
        assert_eq!(
            anvil.balance(destination),
            0,
            "the reorg took the payment back"
        );
        look();

        // Rebroadcast, included again, two confirmations, then rolled back.
        in_pool("after the reorg");
        mine(&anvil, 1);
        let (second_hash, second_block) = latest_block_tx(&anvil);
        seen_in(second_block);
        mine(&anvil, 1);
        let ticks = node.ticks();
        poll(PATIENCE, || (node.ticks() >= ticks + 3).then(look))
            .expect("three ticks with two confirmations");
        anvil.call("anvil_rollback", json!([2]));
        assert!(
            receipt(&anvil, &second_hash).is_none(),
            "anvil_rollback dropped {second_hash}"
        );
        assert_eq!(anvil.balance(destination), 0, "the rollback took it back");
        look();

        // Rebroadcast again; blocks until it is deep enough.
        in_pool("after the rollback");
        let miner = Miner::start(&anvil, Duration::from_millis(500), None);
        let record = poll(PATIENCE, || {
            let record = look();
            (status_of(&record) == "executed").then_some(record)
        })
        .unwrap_or_else(|| {
            panic!(
                "not executed within {PATIENCE:?} of blocks: {}; log:\n{}",
                look(),
                node.log_tail()
            )
        });
        drop(miner);
        assert_paid_once(
            &anvil,
            &[(destination.to_owned(), amount)],
            "after a reorg and a rollback",
        );
        assert_eq!(anvil.tx_count("latest"), 1, "one transaction: {record}");
        assert_executed_at_depth(&anvil, &node, &[id]);
    }

    /// 3. The base fee jumps to 50 gwei (held there: anvil would let it decay) after five
    ///    payments were broadcast at ~2 gwei; anvil evicts them at the first such block.
    ///    With a 200 gwei cap, replacements at the same nonces must pay each once.
    #[test]
    fn a_fee_spike_is_met_by_fee_bumps() {
        const SPIKE: u128 = 50 * GWEI;
        const CAP: u128 = 200 * GWEI;
        const BLOCKS: u64 = 90;
        let anvil = Anvil::start(&["--no-mining"]);
        let site = Site::new();
        site.configure(anvil.address, &format!("max_fee_per_gas = \"{CAP}\"\n"));
        let node = site.start();
        let payments = payments(0xfee5, 5, 1_000_000_000_000_000);
        let ids: Vec<u64> = payments
            .iter()
            .map(|(destination, amount)| node.queue(destination, *amount, None))
            .collect();

        // Broadcast at the normal fee: anvil's pool holds nonces 0..5.
        poll(PATIENCE, || {
            (anvil.tx_count("pending") == payments.len() as u64).then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "the five payments were not broadcast within {PATIENCE:?}: pool {:?}; log:\n{}",
                pooled_fees(&anvil),
                node.log_tail()
            )
        });
        let signed = pooled_fees(&anvil);
        assert!(
            signed.iter().all(|&(_, fee)| fee < SPIKE),
            "the scenario needs fees below the spike: {signed:?}"
        );

        let miner = Miner::start(&anvil, Duration::from_secs(1), Some(SPIKE));
        // 90 blocks; the wall clock bounds it too, should anvil stop mining.
        let wall = Instant::now() + PATIENCE * 2;
        let settled = loop {
            let all = ids
                .iter()
                .all(|&id| status_of(&node.record(id)) == "executed");
            if all || miner.mined() >= BLOCKS || Instant::now() > wall {
                break all;
            }
            thread::sleep(POLL);
        };
        let blocks = miner.mined();
        drop(miner);
        assert_paid_once(
            &anvil,
            &payments,
            &format!(
                "after {blocks} blocks at a {SPIKE} wei base fee (settled: {settled}); status {}; log:\n{}",
                node.status(),
                node.log_tail()
            ),
        );
        assert_eq!(anvil.tx_count("latest"), payments.len() as u64);
        let records: Vec<Value> = ids.iter().map(|&id| node.record(id)).collect();
        assert!(
            settled,
            "not all executed within {blocks} blocks: {records:?}; log:\n{}",
            node.log_tail()
        );
        assert_executed_at_depth(&anvil, &node, &ids);
        for record in &records {
            let tx_hash = record["status"]["tx_hash"].as_str().expect("a hash");
            let tx = anvil.call("eth_getTransactionByHash", json!([tx_hash]));
            let fee = quantity(&tx["maxFeePerGas"]);
            assert!(
                (SPIKE..=CAP).contains(&fee),
                "paid with a max fee of {fee} wei, between the base fee and the cap: {tx}"
            );
        }
    }

    /// 4. An operator restores a backup of the database taken before two payments that the
    ///    chain holds, and governance sends those two again: the ledger's nonce (4) is not
    ///    the store's (2); the executor halts naming both instead of paying them twice.
    #[test]
    fn a_restored_backup_does_not_pay_twice() {
        let anvil = Anvil::start(&[]);
        let _miner = Miner::start(&anvil, Duration::from_millis(500), None);
        let site = Site::new();
        site.configure(anvil.address, "");
        let payments = payments(0xbac0, 4, 2_000_000_000_000_000);
        let keys = ["restore-k1", "restore-k2", "restore-k3", "restore-k4"];
        let queue = |node: &NodeProcess, range: std::ops::Range<usize>| -> Vec<u64> {
            range
                .map(|i| node.queue(&payments[i].0, payments[i].1, Some(keys[i])))
                .collect()
        };
        let paid = |node: &NodeProcess, ids: &[u64]| {
            for &id in ids {
                poll(PATIENCE, || {
                    let record = node.record(id);
                    match status_of(&record) {
                        "executed" => Some(()),
                        "cancelled" => panic!("disbursement {id} cancelled: {record}"),
                        _ => None,
                    }
                })
                .unwrap_or_else(|| {
                    panic!(
                        "disbursement {id} not executed within {PATIENCE:?}: {}; log:\n{}",
                        node.record(id),
                        node.log_tail()
                    )
                });
            }
        };

        // k1, k2; stop; the backup.
        let mut node = site.start();
        let first = queue(&node, 0..2);
        paid(&node, &first);
        node.stop_cleanly();
        let backup = site.dir.path().join("backup.db");
        copy_dir(&site.db(), &backup);

        // k3, k4; stop.
        let mut node = site.start();
        let second = queue(&node, 2..4);
        paid(&node, &second);
        let paid_by: Vec<String> = second
            .iter()
            .map(|&id| {
                node.record(id)["status"]["tx_hash"]
                    .as_str()
                    .expect("an executed record names its transaction")
                    .to_owned()
            })
            .collect();
        node.stop_cleanly();
        assert_paid_once(&anvil, &payments, "before the restore");
        assert_eq!(anvil.tx_count("latest"), 4);

        // The restore, and k3, k4 sent again.
        std::fs::remove_dir_all(site.db()).expect("database removed");
        copy_dir(&backup, &site.db());
        let node = site.start();
        let again = queue(&node, 2..4);
        poll(PATIENCE, || {
            let halted = node.halted().is_some();
            let over = again.iter().all(|&id| is_final(&node.record(id)));
            (halted || over).then_some(())
        });
        // Held: it stays so for 20 more ticks (each checks the drift again), paying nothing.
        if node.halted().is_some() {
            let ticks = node.ticks();
            poll(PATIENCE, || {
                assert!(node.halted().is_some(), "the halt lifted by itself");
                (node.ticks() >= ticks + 20).then_some(())
            })
            .unwrap_or_else(|| panic!("no 20 ticks within {PATIENCE:?}: {}", node.status()));
        }

        assert_paid_once(&anvil, &payments, "after restoring the backup");
        assert_eq!(
            anvil.tx_count("latest"),
            4,
            "the treasury sent nothing after the restore"
        );
        for &id in &again {
            let record = node.record(id);
            assert_eq!(
                status_of(&record),
                "queued",
                "a payment the chain already made waits: {record}"
            );
        }
        let halted = node.halted();
        assert!(
            halted
                .as_deref()
                .is_some_and(|reason| mentions(reason, 2) && mentions(reason, 4)),
            "/status executor.halted names the store's nonce 2 and the ledger's 4: {halted:?}; \
             log:\n{}",
            node.log_tail()
        );

        // The runbook: pause the executor (force the breaker open: a decision recorded now
        // is not applied before the next one replaces it), mark paid what the chain shows
        // paid, adopt the ledger's nonce, and let it go on (it applies the last decision at
        // its next tick); nothing more is paid.
        let (code, answer) = node.exchange(
            "POST",
            "/admin/breaker/force-open",
            Some(&json!({"reason": "deciding on the nonce drift"})),
        );
        assert_eq!(code, 200, "{answer}");
        let (code, answer) = node.exchange(
            "POST",
            "/admin/executor/adopt-nonce",
            Some(&json!({"reason": "too early", "nonce": 7})),
        );
        assert_eq!(code, 202, "{answer}");
        for (&id, hash) in again.iter().zip(&paid_by) {
            let body = json!({"tx_hash": hash, "reason": "paid before the restore"});
            let (code, answer) = node.exchange(
                "POST",
                &format!("/admin/disbursements/{id}/mark-paid"),
                Some(&body),
            );
            assert_eq!(code, 200, "{answer}");
            assert_eq!(status_of(&answer), "executed", "{answer}");
        }
        let (code, answer) = node.exchange(
            "POST",
            "/admin/executor/adopt-nonce",
            Some(&json!({"reason": "k3 and k4 were paid before the restore"})),
        );
        assert_eq!(code, 202, "a later decision replaces the earlier: {answer}");
        let (code, answer) = node.exchange(
            "POST",
            "/admin/breaker/reset",
            Some(&json!({"reason": "decided"})),
        );
        assert_eq!(code, 200, "{answer}");
        poll(PATIENCE, || node.halted().is_none().then_some(()))
            .unwrap_or_else(|| panic!("the hold did not lift: {}", node.status()));
        assert_eq!(node.status()["executor"]["decision"], Value::Null);
        assert_paid_once(&anvil, &payments, "after the operator's decisions");
        assert_eq!(anvil.tx_count("latest"), 4);
        // And it pays again: a fifth, at nonce 4.
        let fifth = node.queue("0x00000000000000000000000000000000000fee55", 5, Some("k5"));
        paid(&node, &[fifth]);
        assert_eq!(anvil.tx_count("latest"), 5);
        let (_, audit) = node.exchange("GET", "/admin/audit", None);
        let actions: Vec<&str> = audit["records"]
            .as_array()
            .expect("records")
            .iter()
            .filter_map(|record| record["action"].as_str())
            .collect();
        assert!(
            actions.ends_with(&[
                "breaker.force_open",
                "executor.adopt_nonce",
                "disbursement.mark_paid",
                "disbursement.mark_paid",
                "executor.adopt_nonce",
                "breaker.reset",
                "decision.applied",
                "disbursement.queue",
            ]),
            "{actions:?}"
        );
    }

    /// 5. The endpoint is repointed at another network (chain 999) while a payment is
    ///    pending on the real one (31337): the executor halts naming both chain ids; it does
    ///    not cancel a payment the real chain may still take. Back on the real chain, it is
    ///    paid once.
    #[test]
    fn another_network_halts_instead_of_cancelling() {
        const OTHER_CHAIN: u64 = 999;
        let chain_a = Anvil::start(&["--no-mining"]);
        let chain_b = Anvil::start(&["--chain-id", "999"]);
        let site = Site::new();
        site.configure(chain_a.address, "");
        let destination = "0x00000000000000000000000000000000000c4a1d";
        let amount = 3_000_000_000_000_000_005;

        let mut node = site.start();
        let id = node.queue(destination, amount, None);
        poll(PATIENCE, || {
            let pending = chain_a.tx_count("pending") == 1;
            (pending && status_of(&node.record(id)) == "submitted").then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "not pending on chain A within {PATIENCE:?}: {}; log:\n{}",
                node.record(id),
                node.log_tail()
            )
        });
        node.stop_cleanly();

        // On chain B.
        site.configure(chain_b.address, "");
        let mut node = site.start();
        let ticks = node.ticks();
        poll(PATIENCE, || {
            let halted = node.halted().is_some();
            let cancelled = status_of(&node.record(id)) == "cancelled";
            (halted || cancelled || node.ticks() >= ticks + 10).then_some(())
        });
        let record = node.record(id);
        assert_ne!(
            status_of(&record),
            "cancelled",
            "a payment pending on chain {ANVIL_CHAIN_ID} was cancelled through an endpoint on \
             chain {OTHER_CHAIN}: {record}"
        );
        assert_eq!(chain_b.tx_count("latest"), 0, "nothing sent on chain B");
        assert_eq!(chain_b.balance(destination), 0, "nothing paid on chain B");
        let halted = poll(PATIENCE, || {
            node.halted()
                .filter(|reason| mentions(reason, ANVIL_CHAIN_ID) && mentions(reason, OTHER_CHAIN))
        });
        assert!(
            halted.is_some(),
            "/status executor.halted names chains {ANVIL_CHAIN_ID} and {OTHER_CHAIN}: {:?}; \
             log:\n{}",
            node.halted(),
            node.log_tail()
        );
        node.stop_cleanly();

        // Back on chain A, with blocks.
        site.configure(chain_a.address, "");
        let node = site.start();
        let _miner = Miner::start(&chain_a, Duration::from_millis(500), None);
        poll(PATIENCE, || {
            (status_of(&node.record(id)) == "executed").then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "not executed on chain A within {PATIENCE:?}: {}; log:\n{}",
                node.record(id),
                node.log_tail()
            )
        });
        assert_paid_once(
            &chain_a,
            &[(destination.to_owned(), amount)],
            "back on chain A",
        );
        assert_eq!(chain_a.tx_count("latest"), 1);
        assert_executed_at_depth(&chain_a, &node, &[id]);
    }

    /// 6. The treasury holds enough for one of three payments: the other two wait (queued,
    ///    not cancelled), `/status` says how much is missing, and a top-up pays them.
    #[test]
    fn low_balance_pauses_instead_of_cancelling() {
        let anvil = Anvil::start(&[]);
        let _miner = Miner::start(&anvil, Duration::from_millis(500), None);
        anvil.call("anvil_setBalance", json!([TREASURY, hex(ETHER)]));
        let site = Site::new();
        site.configure(anvil.address, "");
        let node = site.start();
        // 0.6 ETH each: one fits in 1 ETH with its fee, a second does not.
        let payments = payments(0x10ba1, 3, 6 * ETHER / 10);
        let ids: Vec<u64> = payments
            .iter()
            .map(|(destination, amount)| node.queue(destination, *amount, None))
            .collect();

        poll(PATIENCE, || {
            ids.iter()
                .any(|&id| status_of(&node.record(id)) == "executed")
                .then_some(())
        })
        .unwrap_or_else(|| panic!("none paid within {PATIENCE:?}; log:\n{}", node.log_tail()));
        let ticks = node.ticks();
        poll(PATIENCE, || {
            let cancelled = ids
                .iter()
                .any(|&id| status_of(&node.record(id)) == "cancelled");
            (cancelled || node.ticks() >= ticks + 20).then_some(())
        });
        let records: Vec<Value> = ids.iter().map(|&id| node.record(id)).collect();
        let executed = records
            .iter()
            .filter(|record| status_of(record) == "executed")
            .count();
        assert_eq!(executed, 1, "one payment fits: {records:?}");
        for record in &records {
            assert!(
                matches!(status_of(record), "executed" | "queued"),
                "an unpayable disbursement waits (queued) for a top-up: {record}"
            );
        }
        assert_eq!(anvil.tx_count("latest"), 1, "one transaction sent");

        let balance = poll(PATIENCE, || {
            let status = node.status();
            (status["balance"]["insufficient"] == true).then(|| status["balance"].clone())
        })
        .unwrap_or_else(|| panic!("/status never reported the shortfall: {}", node.status()));
        let missing: u128 = balance["missing"]
            .as_str()
            .and_then(|text| text.parse().ok())
            .unwrap_or_else(|| panic!("balance.missing is a decimal string: {balance}"));
        let treasury = anvil.balance(TREASURY);
        let waiting: Vec<u128> = payments
            .iter()
            .zip(&records)
            .filter(|(_, record)| status_of(record) == "queued")
            .map(|((_, amount), _)| *amount)
            .collect();
        let smallest = waiting.iter().copied().min().expect("two wait");
        // At least what the next payment lacks; at most all that waits plus generous fees.
        let most = waiting.iter().sum::<u128>() + ETHER / 100;
        assert!(
            missing >= smallest.saturating_sub(treasury) && missing <= most,
            "missing {missing} wei: the treasury holds {treasury}, {waiting:?} wait"
        );

        anvil.call("anvil_setBalance", json!([TREASURY, hex(100 * ETHER)]));
        poll(PATIENCE, || {
            ids.iter()
                .all(|&id| is_final(&node.record(id)))
                .then_some(())
        });
        assert_paid_once(&anvil, &payments, "after the top-up");
        assert_eq!(anvil.tx_count("latest"), 3);
        assert_executed_at_depth(&anvil, &node, &ids);
        let status = node.status();
        assert_eq!(
            status["balance"]["insufficient"], false,
            "no shortfall after the top-up: {status}"
        );
    }
}
