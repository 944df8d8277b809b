//! The EVM ledger's unit tests: configuration, key and URL handling, destinations, fees,
//! signing, and every mapping of a failure to a `LedgerError`, against a scripted
//! JSON-RPC server on loopback. (`node/tests/evm_ledger.rs` runs the same ledger against
//! a real anvil.)

mod evm_ledger {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::path::Path;
    use std::sync::{Arc, Mutex};
    use std::thread;

    use alloy_consensus::{SignableTransaction, Signed, TxEip1559};
    use alloy_eips::eip2718::Decodable2718;
    use alloy_primitives::{Address, TxKind, U256, keccak256};
    use governance::{
        AttemptKind, Disbursement, DisbursementStatus, Fees as TxFees, Ledger, LedgerError,
        SignRequest, TxStatus,
    };
    use serde_json::{Value, json};

    use super::super::address::parse_destination;
    use super::super::fees::{FeeQuote, Fees};
    use super::super::rpc::{
        MAX_MESSAGE_BYTES, RpcClient, RpcSetupError, bounded, classify_rpc_error,
        parse_batch_response, parse_response, redact_url,
    };
    use super::super::{EvmConfigError, EvmLedger, EvmLedgerConfig, EvmLedgerError, RpcEndpoint};

    /// anvil's (and hardhat's) first dev key, and its address.
    const KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    const ADDRESS: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
    const DESTINATION: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    const GWEI: u128 = 1_000_000_000;

    // ---- a scripted JSON-RPC server ------------------------------------------------

    /// What the server does with one request.
    enum Reply {
        /// `{"jsonrpc": "2.0", "id": <the request's>, "result": …}`.
        Result(Value),
        /// A JSON-RPC error object with this code and message.
        Error(i64, String),
        /// This status and body.
        Http(u16, String),
        /// These bytes, as they are.
        Raw(Vec<u8>),
        /// No answer: hold the connection until the client gives up.
        Hang,
    }

    type Handler = dyn Fn(&str, &Value, &Value) -> Reply + Send + Sync;

    /// A one-thread JSON-RPC server answering each request through a handler, and the
    /// (method, params) it was called with.
    struct MockRpc {
        address: SocketAddr,
        calls: Arc<Mutex<Vec<(String, Value)>>>,
    }

    impl MockRpc {
        fn start(handler: impl Fn(&str, &Value, &Value) -> Reply + Send + Sync + 'static) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let address = listener.local_addr().expect("address");
            let calls = Arc::new(Mutex::new(Vec::new()));
            let seen = Arc::clone(&calls);
            let handler: Box<Handler> = Box::new(handler);
            // Left running when the test ends: it only ever blocks in accept.
            thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    serve(stream, &*handler, &seen);
                }
            });
            MockRpc { address, calls }
        }

        fn url(&self) -> String {
            format!("http://{}", self.address)
        }

        fn methods(&self) -> Vec<String> {
            let calls = self.calls.lock().expect("calls");
            calls.iter().map(|(method, _)| method.clone()).collect()
        }

        fn count(&self, method: &str) -> usize {
            self.methods().iter().filter(|m| *m == method).count()
        }
    }

    fn serve(mut stream: TcpStream, handler: &Handler, calls: &Mutex<Vec<(String, Value)>>) {
        let Some(body) = read_request(&mut stream) else {
            return;
        };
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let method = request["method"].as_str().unwrap_or_default().to_owned();
        let params = request["params"].clone();
        calls
            .lock()
            .expect("calls")
            .push((method.clone(), params.clone()));
        let id = &request["id"];
        let (status, body) = match handler(&method, &params, id) {
            Reply::Result(result) => (200, json!({"jsonrpc": "2.0", "id": id, "result": result})),
            Reply::Error(code, message) => (
                200,
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}),
            ),
            Reply::Http(status, body) => {
                let _ = stream.write_all(http_response(status, body.as_bytes()).as_slice());
                return;
            }
            Reply::Raw(bytes) => {
                let _ = stream.write_all(&bytes);
                return;
            }
            Reply::Hang => {
                let mut sink = [0_u8; 256];
                while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
                return;
            }
        };
        let _ = stream.write_all(&http_response(status, body.to_string().as_bytes()));
    }

    fn http_response(status: u16, body: &[u8]) -> Vec<u8> {
        let mut bytes = format!(
            "HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        bytes.extend_from_slice(body);
        bytes
    }

    /// The body of one HTTP request (sized by Content-Length).
    fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
        let mut buffer = Vec::new();
        let mut chunk = [0_u8; 4096];
        loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .and_then(|value| value.trim().parse().ok())
                    .unwrap_or(0);
                while buffer.len() < end + 4 + length {
                    let n = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
                    buffer.extend_from_slice(&chunk[..n]);
                }
                return Some(buffer[end + 4..end + 4 + length].to_vec());
            }
            let n = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
            buffer.extend_from_slice(&chunk[..n]);
        }
    }

    /// A chain at block 100 with a 10-gwei base fee, suggesting a 1-gwei tip.
    fn chain(method: &str, _params: &Value, _id: &Value) -> Reply {
        match method {
            "eth_chainId" => Reply::Result(json!("0x7a69")),
            "eth_blockNumber" => Reply::Result(json!("0x64")),
            "eth_getBlockByNumber" => Reply::Result(json!({
                "number": "0x64",
                "hash": format!("0x{}", "ee".repeat(32)),
                "baseFeePerGas": "0x2540be400"
            })),
            "eth_maxPriorityFeePerGas" => Reply::Result(json!("0x3b9aca00")),
            "eth_getTransactionCount" => Reply::Result(json!("0x7")),
            "eth_estimateGas" => Reply::Result(json!("0x5208")),
            _ => Reply::Error(-32601, format!("method {method} not found")),
        }
    }

    // ---- helpers ---------------------------------------------------------------------

    fn key_file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("key file");
        std::fs::write(file.path(), text).expect("write key");
        file
    }

    /// An EVM ledger on one endpoint.
    fn new_ledger(
        url: &str,
        key: &Path,
        config: EvmLedgerConfig,
    ) -> Result<EvmLedger, EvmLedgerError> {
        EvmLedger::new(&[RpcEndpoint::Url(url.to_owned())], key, config)
    }

    fn ledger_with(url: &str, config: EvmLedgerConfig) -> EvmLedger {
        let key = key_file(KEY);
        new_ledger(url, key.path(), config).expect("ledger")
    }

    fn ledger(url: &str) -> EvmLedger {
        ledger_with(url, EvmLedgerConfig::default())
    }

    fn disbursement(destination: &str, amount: u128) -> Disbursement {
        Disbursement {
            id: 1,
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

    /// `next_nonce` (one call, a quantity back) against a server that always replies
    /// `reply`.
    fn call_with(reply: fn() -> Reply) -> Result<u64, LedgerError> {
        let server = MockRpc::start(move |_, _, _| reply());
        ledger(&server.url()).next_nonce()
    }

    // ---- configuration ---------------------------------------------------------------

    #[test]
    fn config_defaults_are_the_documented_ones() {
        let config = EvmLedgerConfig::default();
        assert_eq!(config.max_fee_per_gas, 100 * GWEI);
        assert_eq!(config.max_priority_fee_per_gas, 2 * GWEI);
        assert_eq!((config.gas_limit, config.gas_margin_percent), (500_000, 20));
        assert_eq!(config.request_timeout_ms, 5_000);
        assert_eq!(config.epoch_blocks, 1);
        assert_eq!(config.chain_id, None);
        assert_eq!(config.confirmations, 12);
        assert!(!config.wait_for_finalized);
        assert_eq!((config.bump_after_blocks, config.bump_percent), (3, 20));
        assert_eq!(config.ca_file, None, "the system's trusted CAs");
        assert_eq!(config.finality(), governance::Finality::Confirmations(12));
        assert_eq!(config.validate(), Ok(()));
        let empty: EvmLedgerConfig = toml::from_str("").expect("empty table");
        assert_eq!(empty, config);
    }

    #[test]
    fn config_reads_wei_as_strings_or_integers_and_refuses_unknown_keys() {
        let config: EvmLedgerConfig = toml::from_str(
            "max_fee_per_gas = \"340282366920938463463374607431768211455\"\nmax_priority_fee_per_gas = 5\nchain_id = 1\nca_file = \"/etc/treasury/rpc-ca.pem\"",
        )
        .expect("parses");
        assert_eq!(config.max_fee_per_gas, u128::MAX);
        assert_eq!(config.max_priority_fee_per_gas, 5);
        assert_eq!(config.chain_id, Some(1));
        assert_eq!(
            config.ca_file.as_deref(),
            Some(Path::new("/etc/treasury/rpc-ca.pem"))
        );
        for bad in [
            "max_fee_per_gas = -1",
            "max_fee_per_gas = \"+5\"",
            "max_fee_per_gas = \"1e9\"",
            "max_fee_per_gas = \"340282366920938463463374607431768211456\"",
            "gas_price = 1",
        ] {
            assert!(toml::from_str::<EvmLedgerConfig>(bad).is_err(), "{bad}");
        }
        // Serialised, wei are decimal strings (a TOML integer stops at i64::MAX).
        let json = serde_json::to_value(&config).expect("serialises");
        assert_eq!(json["max_fee_per_gas"], json!(u128::MAX.to_string()));
        let round_trip: EvmLedgerConfig = serde_json::from_value(json).expect("parses");
        assert_eq!(round_trip, config);
    }

    #[test]
    fn config_validation_names_the_key() {
        type Change = fn(&mut EvmLedgerConfig);
        let cases: [(Change, &str); 14] = [
            (|c| c.max_fee_per_gas = 0, "max_fee_per_gas"),
            (
                |c| c.max_priority_fee_per_gas = c.max_fee_per_gas + 1,
                "max_priority_fee_per_gas",
            ),
            (|c| c.gas_limit = 20_999, "gas_limit"),
            (|c| c.gas_margin_percent = 1_001, "gas_margin_percent"),
            (|c| c.request_timeout_ms = 0, "request_timeout_ms"),
            (|c| c.request_timeout_ms = 60_001, "request_timeout_ms"),
            (|c| c.epoch_blocks = 0, "epoch_blocks"),
            (|c| c.chain_id = Some(0), "chain_id"),
            (
                |c| c.max_priority_fee_per_gas = u128::MAX,
                "max_priority_fee_per_gas",
            ),
            (|c| c.confirmations = 0, "confirmations"),
            (|c| c.confirmations = 129, "confirmations"),
            (|c| c.bump_after_blocks = 0, "bump_after_blocks"),
            // Nodes refuse a replacement raising its fees by less than 10%.
            (|c| c.bump_percent = 9, "bump_percent"),
            (|c| c.bump_percent = 1_001, "bump_percent"),
        ];
        for (change, field) in cases {
            let mut config = EvmLedgerConfig::default();
            change(&mut config);
            let error = config.validate().expect_err(field);
            assert_eq!(error.field(), field);
            let error = EvmLedgerError::from(error).to_string();
            assert!(error.contains(&format!("evm.{field}: ")), "{error}");
        }
        let edge = EvmLedgerConfig {
            max_fee_per_gas: 1,
            max_priority_fee_per_gas: 1,
            request_timeout_ms: 60_000,
            ..EvmLedgerConfig::default()
        };
        assert_eq!(edge.validate(), Ok(()));
        let key = key_file(KEY);
        let bad = EvmLedgerConfig {
            epoch_blocks: 0,
            ..EvmLedgerConfig::default()
        };
        let error = new_ledger("http://127.0.0.1:8545", key.path(), bad).expect_err("bad");
        assert!(matches!(
            error,
            EvmLedgerError::Config(EvmConfigError::EpochBlocks)
        ));
    }

    // ---- the key -----------------------------------------------------------------------

    #[test]
    fn the_key_file_may_have_0x_and_whitespace() {
        for text in [
            KEY.to_owned(),
            format!("0x{KEY}\n"),
            format!("  0X{KEY}\r\n\n"),
        ] {
            let file = key_file(&text);
            let ledger = new_ledger("http://127.0.0.1:8545", file.path(), Default::default())
                .expect("ledger");
            assert_eq!(ledger.address(), ADDRESS);
        }
    }

    #[test]
    fn a_bad_key_file_is_refused_without_quoting_it() {
        let secretish = "5ec7e7".repeat(10); // 60 hex digits: too short
        let uppercase_zero = "0".repeat(64);
        let order = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
        let not_hex = format!("{}zz", &KEY[..62]);
        for text in [
            secretish.as_str(),
            &uppercase_zero,
            order,
            &not_hex,
            "",
            "0x",
        ] {
            let file = key_file(text);
            let error = new_ledger("http://127.0.0.1:8545", file.path(), Default::default())
                .expect_err(text);
            assert!(matches!(error, EvmLedgerError::Key { .. }), "{error:?}");
            let shown = format!("{error} {error:?}");
            assert!(text.len() < 8 || !shown.contains(&text[..8]), "{shown}");
        }
        let missing = Path::new("/nonexistent/treasury.key");
        let error =
            new_ledger("http://127.0.0.1:8545", missing, Default::default()).expect_err("missing");
        assert!(matches!(error, EvmLedgerError::KeyFile { .. }), "{error:?}");
        assert!(
            error.to_string().contains("/nonexistent/treasury.key"),
            "{error}"
        );
        // A key followed by a page of anything is not a key file; nor is /dev/zero.
        let padded = key_file(&format!("{KEY}\n{}", " ".repeat(2_000)));
        for path in [padded.path(), Path::new("/dev/zero")] {
            let error = new_ledger("http://127.0.0.1:8545", path, Default::default())
                .expect_err("too long");
            assert!(matches!(error, EvmLedgerError::KeyFile { .. }), "{error:?}");
            assert!(!error.to_string().contains(&KEY[..8]), "{error}");
        }
    }

    #[test]
    fn debug_never_shows_the_key_or_credentials() {
        let key = key_file(KEY);
        let ledger = new_ledger(
            "http://alice:hunter2@127.0.0.1:8545",
            key.path(),
            Default::default(),
        )
        .expect("ledger");
        let shown = format!("{ledger:?} {ledger:#?}");
        assert!(!shown.contains(&KEY[..16]), "{shown}");
        assert!(!shown.to_ascii_lowercase().contains(&KEY[48..]), "{shown}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("YWxpY2U6aHVudGVyMg"),
            "{shown}"
        );
        assert!(
            shown.contains("<redacted>") && shown.contains(ADDRESS),
            "{shown}"
        );
    }

    // ---- the URL -----------------------------------------------------------------------

    #[test]
    fn credentials_in_the_url_become_basic_auth_and_are_never_shown() {
        let server = MockRpc::start(chain);
        let url = format!("http://alice:p%40ss@{}", server.address);
        let ledger = ledger(&url);
        assert_eq!(ledger.endpoints()[0], server.url());
        assert_eq!(ledger.next_nonce(), Ok(7));

        // https, user info and an API-key path: accepted, and shown as scheme://host:port.
        let ledger = self::ledger(
            "https://alice:hunter2@RPC.example:8545/v3/0123456789abcdef0123456789abcdef?k=v",
        );
        assert_eq!(ledger.endpoints()[0], "https://rpc.example:8545");
        let shown = format!("{ledger:?} {ledger:#?}");
        for secret in ["hunter2", "alice", "0123456789abcdef", "k=v", "v3"] {
            assert!(!shown.contains(secret), "{secret}: {shown}");
        }
        assert_eq!(
            self::ledger("https://rpc.example").endpoints()[0],
            "https://rpc.example:443"
        );

        let error = new_ledger(
            "ftp://alice:hunter2@rpc.example:8545/v3/0123456789abcdef",
            key_file(KEY).path(),
            Default::default(),
        )
        .expect_err("ftp");
        let shown = format!("{error} {error:?}");
        assert!(
            !shown.contains("hunter2")
                && !shown.contains("0123456789abcdef")
                && shown.contains("***@rpc.example:8545/***"),
            "{shown}"
        );
        assert!(matches!(error, EvmLedgerError::Url { .. }));
        for bad in [
            "https://rpc.example/v3/a key",
            "https://rpc.example/v3/%zz",
            "https://rpc.example/#fragment",
        ] {
            let error = new_ledger(bad, key_file(KEY).path(), Default::default()).expect_err(bad);
            assert!(matches!(error, EvmLedgerError::Url { .. }), "{error:?}");
            assert!(!error.to_string().contains("/v3/"), "{error}");
        }

        assert_eq!(redact_url("http://a:b@h:1/x@y"), "http://***@h:1/***");
        assert_eq!(redact_url("a:b@h:1"), "***@h:1");
        assert_eq!(redact_url("http://h:1"), "http://h:1");
        assert_eq!(redact_url("http://h:1/"), "http://h:1/");
        assert_eq!(redact_url("https://h/v3/KEY"), "https://h/***");
        assert_eq!(redact_url("https://h?key=KEY"), "https://h/***");
    }

    /// What a server got as one request's head and body; it answers `answer` and closes.
    fn one_exchange(answer: Vec<u8>) -> (SocketAddr, thread::JoinHandle<(String, Vec<u8>)>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let handle = thread::spawn(move || {
            let Ok((mut stream, _)) = listener.accept() else {
                return (String::new(), Vec::new());
            };
            let mut buffer = Vec::new();
            let mut chunk = [0_u8; 4096];
            let (head, body) = loop {
                if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
                    let length: usize = head
                        .to_ascii_lowercase()
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length:"))
                        .and_then(|value| value.trim().parse().ok())
                        .unwrap_or(0);
                    while buffer.len() < end + 4 + length {
                        match stream.read(&mut chunk) {
                            Ok(n) if n > 0 => buffer.extend_from_slice(&chunk[..n]),
                            _ => break,
                        }
                    }
                    break (head, buffer[end + 4..].to_vec());
                }
                match stream.read(&mut chunk) {
                    Ok(n) if n > 0 => buffer.extend_from_slice(&chunk[..n]),
                    _ => break (String::from_utf8_lossy(&buffer).into_owned(), Vec::new()),
                }
            };
            let _ = stream.write_all(&answer);
            (head, body)
        });
        (address, handle)
    }

    #[test]
    fn an_api_key_path_is_sent_and_never_shown() {
        const KEY_PATH: &str = "/v3/5ecre7a9i0key";
        // A 200 that is no JSON-RPC answer: the error names the endpoint, not the path.
        let (address, server) = one_exchange(http_response(200, b"<html>nope</html>"));
        let ledger = ledger(&format!("http://{address}{KEY_PATH}?tag=5ecre7"));
        let answer = ledger.next_nonce();
        let (head, _) = server.join().expect("the server");
        assert!(
            head.starts_with(&format!("POST {KEY_PATH}?tag=5ecre7 HTTP/1.1\r\n")),
            "{head}"
        );
        let Err(LedgerError::Malformed(message)) = answer else {
            panic!("{answer:?}");
        };
        assert!(!message.contains("5ecre7"), "{message}");

        // An endpoint that is not there: Unreachable, naming scheme://host:port only.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        let url = format!("http://user:pa55word@{address}{KEY_PATH}");
        let answer = self::ledger(&url).next_nonce();
        let Err(LedgerError::Unreachable(message)) = answer else {
            panic!("{answer:?}");
        };
        assert!(
            message.starts_with(&format!("http://{address}: ")),
            "{message}"
        );
        for secret in ["5ecre7", "pa55word", "user"] {
            assert!(!message.contains(secret), "{secret}: {message}");
        }
    }

    // ---- batches -----------------------------------------------------------------------

    fn client(address: SocketAddr) -> RpcClient {
        RpcClient::new(
            &format!("http://{address}"),
            std::time::Duration::from_secs(10),
            None,
        )
        .expect("client")
    }

    #[test]
    fn a_batch_is_one_request_and_its_answers_are_matched_by_id() {
        // A fresh client numbers its requests from 1. Answered out of order, with an
        // answer to an id never asked (ignored) and two to id 3 (the first counts).
        let answer = br#"[
            {"jsonrpc":"2.0","id":3,"result":"0x3"},
            {"jsonrpc":"2.0","id":99,"result":"0x63"},
            {"jsonrpc":"2.0","id":1,"result":{"number":"0x1"}},
            {"jsonrpc":"2.0","id":2,"error":{"code":-32000,"message":"nonce too low"}},
            {"jsonrpc":"2.0","id":3,"result":"0xdead"}
        ]"#;
        let (address, server) = one_exchange(http_response(200, answer));
        let answers = client(address)
            .batch(&[
                ("eth_getBlockByNumber", json!(["latest", false])),
                ("eth_sendRawTransaction", json!(["0x02"])),
                ("eth_chainId", json!([])),
            ])
            .expect("a batch answer");
        assert_eq!(
            answers,
            vec![
                Ok(json!({"number": "0x1"})),
                Err(LedgerError::NonceTooLow),
                Ok(json!("0x3")),
            ]
        );
        let (head, body) = server.join().expect("the server");
        assert!(head.starts_with("POST / HTTP/1.1\r\n"), "{head}");
        let sent: Value = serde_json::from_slice(&body).expect("a JSON body");
        assert_eq!(
            sent,
            json!([
                {"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["latest", false]},
                {"jsonrpc": "2.0", "id": 2, "method": "eth_sendRawTransaction", "params": ["0x02"]},
                {"jsonrpc": "2.0", "id": 3, "method": "eth_chainId", "params": []},
            ])
        );
    }

    #[test]
    fn a_call_the_batch_answer_leaves_out_is_malformed() {
        let answer = br#"[{"jsonrpc":"2.0","id":2,"result":"0x2"}, 7, {"id":1,"result":"0x1"}]"#;
        let (address, server) = one_exchange(http_response(200, answer));
        let answers = client(address)
            .batch(&[("eth_chainId", json!([])), ("eth_blockNumber", json!([]))])
            .expect("a batch answer");
        let _ = server.join();
        assert_eq!(answers[1], Ok(json!("0x2")));
        // Answered, but not in JSON-RPC 2.0.
        assert!(
            matches!(&answers[0], Err(LedgerError::Malformed(m)) if m.contains("jsonrpc")),
            "{answers:?}"
        );
        assert_eq!(
            parse_batch_response(200, b"[]", &[4]),
            Ok(vec![Err(LedgerError::Malformed(
                "the batch's answer has no answer to request id 4".into()
            ))])
        );
    }

    #[test]
    fn one_error_for_a_whole_batch_is_every_calls_error() {
        let answer = br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"batch requests are not supported"}}"#;
        let (address, server) = one_exchange(http_response(200, answer));
        let answers = client(address)
            .batch(&[("eth_chainId", json!([])), ("eth_blockNumber", json!([]))])
            .expect("a batch answer");
        let _ = server.join();
        assert_eq!(answers.len(), 2);
        for answer in &answers {
            assert!(
                matches!(answer, Err(LedgerError::Other(m)) if m.contains("batch requests are not supported")),
                "{answers:?}"
            );
        }
        // Also with an error status (some servers send one with it).
        let answers = parse_batch_response(400, answer, &[1, 2, 3]).expect("an answer");
        assert_eq!(answers.len(), 3);
        assert!(answers.iter().all(Result::is_err), "{answers:?}");
    }

    #[test]
    fn a_batch_that_fails_as_a_whole_is_one_error() {
        assert_eq!(
            parse_batch_response(503, b"[]", &[1]),
            Err(LedgerError::Http(503))
        );
        assert_eq!(
            parse_batch_response(429, b"", &[1]),
            Err(LedgerError::Http(429))
        );
        assert_eq!(
            parse_batch_response(404, b"not found", &[1]),
            Err(LedgerError::Http(404))
        );
        assert_eq!(
            parse_batch_response(403, b"[]", &[1]),
            Err(LedgerError::Http(403))
        );
        for body in [
            &b"<html>"[..],
            b"",
            b"12",
            br#"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#,
            br#"{"id":null,"error":{"code":1,"message":"no jsonrpc"}}"#,
        ] {
            let answer = parse_batch_response(200, body, &[1, 2]);
            assert!(
                matches!(answer, Err(LedgerError::Malformed(_))),
                "{:?}: {answer:?}",
                String::from_utf8_lossy(body)
            );
        }
        // Through the transport: an endpoint that is not there, and no calls at all.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        let answer = client(address).batch(&[("eth_chainId", json!([]))]);
        assert!(
            matches!(answer, Err(LedgerError::Unreachable(_))),
            "{answer:?}"
        );
        assert_eq!(client(address).batch(&[]), Ok(Vec::new()));
    }

    // ---- https and evm.ca_file ---------------------------------------------------------

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tls")
            .join(name)
    }

    #[test]
    fn a_ca_file_must_hold_a_usable_certificate() {
        let with = |path: &Path| EvmLedgerConfig {
            ca_file: Some(path.to_owned()),
            ..EvmLedgerConfig::default()
        };
        let key = key_file(KEY);
        let ledger = new_ledger(
            "https://127.0.0.1:8545",
            key.path(),
            with(&fixture("cert.pem")),
        )
        .expect("the fixture's certificate is a CA file");
        assert!(
            format!("{ledger:?}").contains("ca_file: Some("),
            "{ledger:?}"
        );

        let empty = key_file("");
        let no_pem = key_file("not PEM at all\n");
        let garbled =
            key_file("-----BEGIN CERTIFICATE-----\nMIIBnotbase64!!\n-----END CERTIFICATE-----\n");
        let not_x509 =
            key_file("-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n");
        let missing = Path::new("/nonexistent/rpc-ca.pem");
        for (path, why) in [
            (missing, "cannot read it"),
            (empty.path(), "holds no certificate"),
            (no_pem.path(), "holds no certificate"),
            (fixture("key.pem").as_path(), "holds no certificate"),
            (garbled.path(), "PEM"),
            (not_x509.path(), "not a usable CA certificate"),
        ] {
            let error =
                new_ledger("https://127.0.0.1:8545", key.path(), with(path)).expect_err(why);
            let EvmLedgerError::CaFile {
                path: named,
                reason,
            } = &error
            else {
                panic!("{path:?}: {error:?}");
            };
            assert_eq!(named, path);
            assert!(reason.contains(why), "{path:?}: {reason}");
            assert!(
                error.to_string().contains(&path.display().to_string()),
                "{error}"
            );
        }
        // Checked at startup whatever the scheme: a bad file is a bad configuration.
        let error =
            new_ledger("http://127.0.0.1:8545", key.path(), with(missing)).expect_err("missing");
        assert!(matches!(error, EvmLedgerError::CaFile { .. }), "{error:?}");
        let error = RpcClient::new(
            "http://127.0.0.1:8545",
            std::time::Duration::from_secs(1),
            Some(missing),
        )
        .expect_err("missing");
        assert!(matches!(error, RpcSetupError::CaFile(_)), "{error:?}");
    }

    #[test]
    fn https_to_a_server_that_does_not_speak_tls_is_a_tls_failure() {
        // A plain HTTP server answers the ClientHello with HTTP: the handshake fails.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let server = thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut hello = [0_u8; 512];
                let _ = stream.read(&mut hello);
                let _ = stream.write_all(&http_response(400, b"plain HTTP"));
            }
        });
        let answer = ledger(&format!("https://{address}/v3/5ecre7")).next_nonce();
        server.join().expect("the server");
        let Err(LedgerError::Unreachable(message)) = answer else {
            panic!("{answer:?}");
        };
        assert!(message.contains("TLS"), "{message}");
        assert!(!message.contains("5ecre7"), "{message}");
    }

    #[test]
    fn the_authorization_header_is_standard_base64() {
        let (address, server) = one_exchange(http_response(
            200,
            br#"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#,
        ));
        // RFC 7617's example.
        let ledger = ledger(&format!("http://Aladdin:open%20sesame@{address}"));
        assert_eq!(ledger.next_nonce(), Ok(1));
        let (head, _) = server.join().expect("the server");
        let authorization: Vec<&str> = head
            .split("\r\n")
            .filter_map(|line| line.split_once(':'))
            .filter(|(name, _)| name.eq_ignore_ascii_case("authorization"))
            .map(|(_, value)| value.trim())
            .collect();
        assert_eq!(
            authorization,
            ["Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="],
            "{head}"
        );
        assert!(
            !head.contains("Aladdin"),
            "no user info in the request line: {head}"
        );
    }

    // ---- destinations --------------------------------------------------------------------

    #[test]
    fn destinations_are_0x_and_40_hex_digits_checksummed_when_mixed_case() {
        let lower = DESTINATION.to_ascii_lowercase();
        let upper = format!("0x{}", DESTINATION[2..].to_ascii_uppercase());
        for good in [DESTINATION, lower.as_str(), upper.as_str()] {
            let address = parse_destination(good).expect(good);
            assert_eq!(address.to_checksum(None), DESTINATION);
        }
        let wrong_checksum = DESTINATION.replacen("C51", "c51", 1);
        let cases = [
            ("grantee-1", "start with 0x"),
            ("70997970C51812dc3A010C7d01b50e0d17dc79C8", "start with 0x"),
            ("0x70997970C51812dc3A010C7d01b50e0d17dc79C", "40 hex digits"),
            (
                "0x70997970C51812dc3A010C7d01b50e0d17dc79C8aa",
                "40 hex digits",
            ),
            (
                "0x70997970C51812dc3A010C7d01b50e0d17dc79Cg",
                "hex digits only",
            ),
            (wrong_checksum.as_str(), "EIP-55"),
            ("0x0000000000000000000000000000000000000000", "zero address"),
        ];
        for (bad, reason) in cases {
            let error = parse_destination(bad).expect_err(bad);
            assert!(error.contains(reason), "{bad}: {error}");
        }
        let long = "x".repeat(10_000);
        assert!(parse_destination(&long).expect_err("long").len() < 200);
    }

    // ---- fees ----------------------------------------------------------------------------

    #[test]
    fn fees_are_the_quote_capped() {
        let config = EvmLedgerConfig::default(); // caps: 100 gwei, tip 2 gwei
        let fees = |base_fee, tip| FeeQuote { base_fee, tip }.capped(&config);
        let expect = |max_fee_per_gas, max_priority_fee_per_gas| Fees {
            max_fee_per_gas,
            max_priority_fee_per_gas,
        };
        assert_eq!(fees(10 * GWEI, GWEI), expect(21 * GWEI, GWEI));
        assert_eq!(
            fees(10 * GWEI, 5 * GWEI),
            expect(22 * GWEI, 2 * GWEI),
            "tip capped"
        );
        assert_eq!(
            fees(60 * GWEI, GWEI),
            expect(100 * GWEI, GWEI),
            "fee capped"
        );
        assert_eq!(
            fees(u128::MAX, u128::MAX),
            expect(100 * GWEI, 2 * GWEI),
            "no overflow"
        );
        let tight = EvmLedgerConfig {
            max_fee_per_gas: 3,
            max_priority_fee_per_gas: 3,
            ..EvmLedgerConfig::default()
        };
        let capped = FeeQuote {
            base_fee: 0,
            tip: 2,
        }
        .capped(&tight);
        assert_eq!(capped, expect(2, 2), "2 × 0 + 2");
        let capped = FeeQuote {
            base_fee: 50,
            tip: 9,
        }
        .capped(&tight);
        assert_eq!(capped, expect(3, 3), "the tip never exceeds the max fee");
    }

    // ---- signing -------------------------------------------------------------------------

    /// A chain whose `eth_estimateGas` answers `estimate` (a hex quantity, or an error
    /// message).
    fn estimating(estimate: Result<&'static str, &'static str>) -> MockRpc {
        MockRpc::start(move |method, params, id| match method {
            "eth_estimateGas" => match estimate {
                Ok(gas) => Reply::Result(json!(gas)),
                Err(message) => Reply::Error(3, message.to_owned()),
            },
            _ => chain(method, params, id),
        })
    }

    #[test]
    fn a_payments_gas_is_its_estimate_with_the_margin_within_the_cap() {
        let request = |ledger: &EvmLedger| {
            ledger.sign(&SignRequest::payment(&disbursement(DESTINATION, 5), 1))
        };
        // A contract wallet's receive: 111,550 gas, 20% more.
        let server = estimating(Ok("0x1b3be"));
        let tx = request(&ledger(&server.url())).expect("signed");
        assert_eq!(tx.fees.gas_limit, 133_860);
        let calls = server.calls.lock().expect("calls").clone();
        let (_, params) = calls
            .iter()
            .find(|(m, _)| m == "eth_estimateGas")
            .expect("estimated");
        assert_eq!(
            params[0]["to"].as_str().map(str::to_ascii_lowercase),
            Some(DESTINATION.to_ascii_lowercase())
        );
        assert_eq!(params[0]["value"], "0x5");
        // The margin never takes it past the cap; an estimate over the cap is refused.
        let capped = EvmLedgerConfig {
            gas_limit: 120_000,
            ..EvmLedgerConfig::default()
        };
        assert_eq!(
            request(&ledger_with(&server.url(), capped.clone()))
                .expect("signed")
                .fees
                .gas_limit,
            120_000
        );
        let tight = EvmLedgerConfig {
            gas_limit: 100_000,
            ..capped
        };
        let over = request(&ledger_with(&server.url(), tight)).expect_err("over the cap");
        assert!(
            matches!(&over, LedgerError::Rejected(m) if m.contains("111550 gas") && m.contains("evm.gas_limit = 100000")),
            "{over}"
        );
    }

    #[test]
    fn an_estimate_below_the_intrinsic_gas_is_raised_to_it() {
        // A backend that answers nonsense (or does not see a contract yet) cannot make the
        // payment one that every node refuses ("intrinsic gas too low").
        let server = estimating(Ok("0x1"));
        let tx = ledger(&server.url())
            .sign(&SignRequest::payment(&disbursement(DESTINATION, 5), 1))
            .expect("signed");
        assert_eq!(tx.fees.gas_limit, 21_000);
    }

    #[test]
    fn a_payment_that_would_revert_is_refused_before_it_is_signed() {
        let server = estimating(Err("execution reverted"));
        let refused = ledger(&server.url())
            .sign(&SignRequest::payment(&disbursement(DESTINATION, 5), 1))
            .expect_err("refused");
        assert!(
            matches!(&refused, LedgerError::Rejected(m) if m.contains("would fail on chain")),
            "{refused}"
        );
        assert!(
            matches!(
                governance::TreasuryExecutorError::classify(refused),
                governance::TreasuryExecutorError::Cancelled(_)
            ),
            "the executor cancels it before a nonce is spent"
        );
        // An endpoint failure is not a refusal: the breaker's business, nothing cancelled.
        let down = MockRpc::start(|method, params, id| match method {
            "eth_estimateGas" => Reply::Error(-32000, "header not found".into()),
            _ => chain(method, params, id),
        });
        let failed = ledger(&down.url())
            .sign(&SignRequest::payment(&disbursement(DESTINATION, 5), 1))
            .expect_err("failed");
        assert!(!matches!(failed, LedgerError::Rejected(_)), "{failed}");
    }

    #[test]
    fn a_replacement_keeps_the_gas_of_what_it_replaces() {
        let server = estimating(Err("execution reverted"));
        let floor = governance::Fees {
            max_fee_per_gas: GWEI,
            max_priority_fee_per_gas: GWEI,
            gas_limit: 77_000,
        };
        let paid = disbursement(DESTINATION, 5);
        let request = SignRequest {
            min_fees: Some(floor),
            ..SignRequest::payment(&paid, 1)
        };
        let tx = ledger(&server.url())
            .sign(&request)
            .expect("a replacement is not estimated");
        assert_eq!(tx.fees.gas_limit, 77_000);
        assert_eq!(server.count("eth_estimateGas"), 0);
    }

    #[test]
    fn sign_makes_an_eip1559_transfer_signed_by_the_treasury() {
        let server = MockRpc::start(chain);
        let ledger = ledger(&server.url());
        let amount = u128::MAX;
        let tx = ledger
            .sign(&SignRequest::payment(
                &disbursement(DESTINATION, amount),
                42,
            ))
            .expect("signed");

        assert_eq!(tx.bytes.first(), Some(&2), "type 2");
        assert_eq!(tx.tx_hash, format!("{:#x}", keccak256(&tx.bytes)));
        assert_eq!(tx.tx_hash.len(), 66);
        assert_eq!(tx.tx_hash, tx.tx_hash.to_ascii_lowercase());
        let signed = Signed::<TxEip1559>::decode_2718(&mut tx.bytes.as_slice()).expect("decodes");
        let fields = signed.tx();
        assert_eq!(fields.chain_id, 31_337);
        assert_eq!(fields.nonce, 42);
        assert_eq!(fields.gas_limit, 25_200, "the estimate (21,000) and 20%");
        assert_eq!(tx.fees.gas_limit, 25_200);
        assert_eq!(fields.max_fee_per_gas, 21 * GWEI, "2 × 10 gwei + 1 gwei");
        assert_eq!(fields.max_priority_fee_per_gas, GWEI);
        assert_eq!(
            fields.to,
            TxKind::Call(DESTINATION.parse::<Address>().expect("address"))
        );
        assert_eq!(fields.value, U256::from(amount));
        assert!(fields.input.is_empty() && fields.access_list.is_empty());
        let signer = signed
            .signature()
            .recover_address_from_prehash(&fields.signature_hash())
            .expect("recovers");
        assert_eq!(signer.to_checksum(None), ADDRESS);
    }

    #[test]
    fn sign_fetches_the_chain_id_once_and_the_fees_once_a_second() {
        let server = MockRpc::start(chain);
        let ledger = ledger(&server.url());
        let first = ledger
            .sign(&SignRequest::payment(&disbursement(DESTINATION, 1), 0))
            .expect("signed");
        for nonce in 1..50 {
            ledger
                .sign(&SignRequest::payment(&disbursement(DESTINATION, 1), nonce))
                .expect("signed");
        }
        assert_eq!(server.count("eth_chainId"), 1);
        // 50 signatures well within a second on any machine share one quote; on a very
        // slow one, at most a few. (One more block: the refresh that read the chain id
        // also read the head.)
        assert!(
            (1..=5).contains(&server.count("eth_maxPriorityFeePerGas")),
            "{:?}",
            server.methods()
        );
        assert_eq!(
            server.count("eth_getBlockByNumber"),
            server.count("eth_maxPriorityFeePerGas") + 1
        );
        let again = ledger
            .sign(&SignRequest::payment(&disbursement(DESTINATION, 1), 0))
            .expect("signed");
        assert_eq!(again.tx_hash, first.tx_hash, "same quote, same transaction");
    }

    #[test]
    fn another_chain_than_configured_is_a_signing_error_before_any_fee_call() {
        let server = MockRpc::start(chain);
        let config = EvmLedgerConfig {
            chain_id: Some(1),
            ..EvmLedgerConfig::default()
        };
        let ledger = ledger_with(&server.url(), config);
        for _ in 0..2 {
            let answer = ledger.sign(&SignRequest::payment(&disbursement(DESTINATION, 1), 0));
            let Err(LedgerError::Signing(reason)) = answer else {
                panic!("{answer:?}");
            };
            assert!(
                reason.contains("chain 31337") && reason.contains("chain_id is 1"),
                "{reason}"
            );
        }
        assert_eq!(
            server.methods(),
            ["eth_chainId"],
            "excluded for good at the first answer, no fees"
        );
    }

    #[test]
    fn sign_refuses_a_bad_destination_before_any_call() {
        let server = MockRpc::start(chain);
        let ledger = ledger(&server.url());
        let answer = ledger.sign(&SignRequest::payment(&disbursement("0x1234", 1), 0));
        assert!(
            matches!(answer, Err(LedgerError::InvalidDestination(_))),
            "{answer:?}"
        );
        assert_eq!(
            ledger.validate_destination("0x1234").map_err(|_| ()),
            Err(())
        );
        assert_eq!(ledger.validate_destination(DESTINATION), Ok(()));
        assert!(server.methods().is_empty());
    }

    #[test]
    fn a_block_without_a_base_fee_is_malformed() {
        let server = MockRpc::start(|method, params, id| match method {
            "eth_getBlockByNumber" => Reply::Result(json!({"number": "0x1"})),
            _ => chain(method, params, id),
        });
        let answer =
            ledger(&server.url()).sign(&SignRequest::payment(&disbursement(DESTINATION, 1), 0));
        assert!(
            matches!(answer, Err(LedgerError::Malformed(ref m)) if m.contains("baseFeePerGas")),
            "{answer:?}"
        );
    }

    // ---- the other calls ---------------------------------------------------------------------

    #[test]
    fn epoch_and_nonce_come_from_the_chain() {
        let server = MockRpc::start(chain);
        let config = EvmLedgerConfig {
            epoch_blocks: 7,
            ..EvmLedgerConfig::default()
        };
        let ledger = ledger_with(&server.url(), config);
        assert_eq!(
            ledger
                .head()
                .map(|head| (head.number, head.epoch, head.base_fee)),
            Ok((100, 14, Some(10 * GWEI))),
            "block 100 / 7"
        );
        assert_eq!(ledger.next_nonce(), Ok(7));
        let calls = server.calls.lock().expect("calls").clone();
        let counts: Vec<&Value> = calls
            .iter()
            .filter(|(method, _)| method == "eth_getTransactionCount")
            .map(|(_, params)| params)
            .collect();
        assert_eq!(counts, [&json!([ADDRESS, "pending"])]);
    }

    #[test]
    fn submit_sends_the_bytes_and_wants_a_hash_back() {
        let hash = format!("0x{}", "ab".repeat(32));
        let answer = hash.clone();
        let server = MockRpc::start(move |_, _, _| Reply::Result(json!(answer)));
        let ledger = ledger(&server.url());
        let tx = governance::SignedTx {
            tx_hash: hash,
            bytes: vec![0x02, 0xf8, 0x01],
            fees: TxFees::default(),
        };
        assert_eq!(ledger.submit(&tx), Ok(()));
        let calls = server.calls.lock().expect("calls").clone();
        assert_eq!(
            calls[0],
            ("eth_sendRawTransaction".into(), json!(["0x02f801"]))
        );

        let server = MockRpc::start(|_, _, _| Reply::Result(json!(true)));
        let answer = ledger_with(&server.url(), Default::default()).submit(&tx);
        assert!(
            matches!(answer, Err(LedgerError::Malformed(_))),
            "{answer:?}"
        );
    }

    #[test]
    fn lookup_reads_the_receipt_then_the_pool() {
        let hash = format!("0x{}", "cd".repeat(32));
        let status = |receipt: Value, tx: Value| {
            let server = MockRpc::start(move |method, params, id| match method {
                "eth_getTransactionReceipt" => Reply::Result(receipt.clone()),
                "eth_getTransactionByHash" => Reply::Result(tx.clone()),
                _ => chain(method, params, id),
            });
            ledger(&server.url()).lookup(&hash)
        };
        let block_hash = format!("0x{}", "AA".repeat(32));
        let receipt = json!({"blockNumber": "0x1b", "blockHash": block_hash, "status": "0x1"});
        assert_eq!(
            status(receipt, Value::Null),
            Ok(TxStatus::Included {
                block: 27,
                block_hash: block_hash.to_ascii_lowercase()
            })
        );
        let reverted = json!({"blockNumber": "0x1c", "blockHash": block_hash, "status": "0x0"});
        assert_eq!(
            status(reverted, Value::Null),
            Ok(TxStatus::Reverted {
                block: 28,
                block_hash: block_hash.to_ascii_lowercase()
            })
        );
        let no_hash = status(json!({"blockNumber": "0x1b", "status": "0x1"}), Value::Null);
        assert!(
            matches!(no_hash, Err(LedgerError::Malformed(_))),
            "{no_hash:?}"
        );
        let pending_receipt = json!({"blockNumber": null});
        assert_eq!(status(pending_receipt, Value::Null), Ok(TxStatus::Pending));
        assert_eq!(
            status(Value::Null, json!({"hash": "0x"})),
            Ok(TxStatus::Pending)
        );
        assert_eq!(status(Value::Null, Value::Null), Ok(TxStatus::Unknown));
        let odd = status(Value::Null, json!(7));
        assert!(matches!(odd, Err(LedgerError::Malformed(_))), "{odd:?}");
        let bad_block = status(json!({"blockNumber": "27"}), Value::Null);
        assert!(
            matches!(bad_block, Err(LedgerError::Malformed(_))),
            "{bad_block:?}"
        );

        let server = MockRpc::start(chain);
        let answer = ledger(&server.url()).lookup("0x12");
        assert!(matches!(answer, Err(LedgerError::Other(_))), "{answer:?}");
        assert!(server.methods().is_empty());
    }

    /// The head, a block by number, the finalized block, the nonce at a block and the
    /// balance: one call each, read as the chain says.
    #[test]
    fn the_chains_state_comes_from_its_blocks() {
        let hash = |byte: &str| format!("0x{}", byte.repeat(32));
        let server = MockRpc::start(move |method, params, id| match method {
            "eth_getBlockByNumber" => match params[0].as_str() {
                Some("finalized") => Reply::Result(json!({"number": "0x5a", "hash": hash("5a")})),
                Some("0x63") => Reply::Result(json!({"number": "0x63", "hash": hash("63")})),
                Some("0x65") => Reply::Result(Value::Null),
                _ => chain(method, params, id),
            },
            "eth_getBalance" => Reply::Result(json!("0xde0b6b3a7640000")),
            _ => chain(method, params, id),
        });
        let ledger = ledger(&server.url());
        let head = ledger.head().expect("head");
        assert_eq!((head.number, head.epoch), (100, 100));
        assert_eq!(head.hash, hash("ee"));
        assert_eq!(ledger.finalized(), Ok(Some(90)));
        assert_eq!(ledger.block_hash(99), Ok(Some(hash("63"))));
        assert_eq!(ledger.block_hash(101), Ok(None), "no such block yet");
        assert_eq!(ledger.nonce_at(99), Ok(7));
        assert_eq!(ledger.balance(), Ok(1_000_000_000_000_000_000));
        let calls = server.calls.lock().expect("calls").clone();
        assert!(calls.contains(&("eth_getTransactionCount".into(), json!([ADDRESS, "0x63"]))));
        assert!(calls.contains(&("eth_getBalance".into(), json!([ADDRESS, "latest"]))));
        assert_eq!(ledger.chain_id(), Ok("31337".into()));
    }

    /// A replacement offers at least the floor the executor asks (the quote's fees when
    /// they are higher), and never more than the caps: past them it is refused as
    /// `FeeCapReached`, before anything is signed.
    #[test]
    fn a_replacement_outbids_its_floor_within_the_caps() {
        let server = MockRpc::start(chain);
        let ledger = ledger(&server.url());
        let payment = disbursement(DESTINATION, 5);
        let floor = |max_fee: u128, tip: u128| TxFees {
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: tip,
            gas_limit: 21_000,
        };
        let replace = |min_fees| SignRequest {
            disbursement: &payment,
            kind: AttemptKind::Payment,
            nonce: 3,
            min_fees: Some(min_fees),
        };
        let low = ledger.sign(&replace(floor(GWEI, 1))).expect("signed");
        assert_eq!(
            (low.fees.max_fee_per_gas, low.fees.max_priority_fee_per_gas),
            (21 * GWEI, GWEI),
            "the quote is above a low floor"
        );
        let high = ledger
            .sign(&replace(floor(30 * GWEI, 2 * GWEI)))
            .expect("signed");
        assert_eq!(
            (
                high.fees.max_fee_per_gas,
                high.fees.max_priority_fee_per_gas
            ),
            (30 * GWEI, 2 * GWEI)
        );
        let signed = Signed::<TxEip1559>::decode_2718(&mut high.bytes.as_slice()).expect("decodes");
        assert_eq!(signed.tx().max_fee_per_gas, 30 * GWEI);
        assert_eq!(signed.tx().nonce, 3);
        let over = ledger.sign(&replace(floor(101 * GWEI, GWEI)));
        assert!(
            matches!(&over, Err(LedgerError::FeeCapReached(reason)) if reason.contains("evm.max_fee_per_gas")),
            "{over:?}"
        );
        // A node refuses a replacement that does not raise the tip too: past the tip's
        // cap, the replacement waits, naming that cap.
        let tip_over = ledger.sign(&replace(floor(30 * GWEI, 3 * GWEI)));
        assert!(
            matches!(&tip_over, Err(LedgerError::FeeCapReached(reason)) if reason.contains("evm.max_priority_fee_per_gas")),
            "{tip_over:?}"
        );
        let quotes = server.count("eth_maxPriorityFeePerGas");
        ledger.sign(&replace(floor(GWEI, 1))).expect("signed");
        assert_eq!(
            server.count("eth_maxPriorityFeePerGas"),
            quotes + 1,
            "a replacement is priced on a fresh quote"
        );
    }

    /// A cancellation is a zero-value transfer from the treasury to itself at the nonce.
    #[test]
    fn a_cancellation_is_a_zero_value_transfer_to_the_treasury() {
        let server = MockRpc::start(chain);
        let ledger = ledger(&server.url());
        let payment = disbursement(DESTINATION, 5);
        let tx = ledger
            .sign(&SignRequest {
                disbursement: &payment,
                kind: AttemptKind::Cancellation,
                nonce: 9,
                min_fees: None,
            })
            .expect("signed");
        let signed = Signed::<TxEip1559>::decode_2718(&mut tx.bytes.as_slice()).expect("decodes");
        let fields = signed.tx();
        assert_eq!(fields.nonce, 9);
        assert_eq!(fields.value, U256::ZERO);
        assert_eq!(
            fields.to,
            TxKind::Call(ADDRESS.parse::<Address>().expect("address"))
        );
    }

    // ---- transport failures ---------------------------------------------------------------

    #[test]
    fn a_refused_connection_is_unreachable() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        let answer = ledger(&format!("http://{address}")).next_nonce();
        assert!(
            matches!(answer, Err(LedgerError::Unreachable(_))),
            "{answer:?}"
        );
    }

    #[test]
    fn a_reset_connection_is_unreachable() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        thread::spawn(move || {
            if let Ok((stream, _)) = listener.accept() {
                // Closing with the request unread makes the kernel answer RST.
                let mut peek = [0_u8; 1];
                let _ = stream.peek(&mut peek);
                drop(stream);
            }
        });
        let answer = ledger(&format!("http://{address}")).next_nonce();
        assert!(
            matches!(answer, Err(LedgerError::Unreachable(_))),
            "{answer:?}"
        );
    }

    #[test]
    fn a_kept_alive_connection_closed_by_the_endpoint_is_replaced_once() {
        // Connection 1 answers a call and stays open; at the next call's request it closes
        // without answering (an idle timeout racing the call). Connection 2 answers.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let answer = |id: u64| {
            let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":"0x{id}"}}"#);
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let server = thread::spawn(move || {
            let (mut first, _) = listener.accept().expect("connection 1");
            read_request(&mut first).expect("request 1");
            first.write_all(answer(1).as_bytes()).expect("answer 1");
            read_request(&mut first).expect("request 2, on connection 1");
            drop(first);
            let (mut second, _) = listener.accept().expect("connection 2");
            read_request(&mut second).expect("request 2, again");
            second.write_all(answer(2).as_bytes()).expect("answer 2");
        });
        let ledger = ledger(&format!("http://{address}"));
        assert_eq!(ledger.next_nonce(), Ok(1));
        assert_eq!(ledger.next_nonce(), Ok(2));
        server.join().expect("the server");
    }

    #[test]
    fn no_answer_within_the_request_timeout_is_a_timeout() {
        let server = MockRpc::start(|_, _, _| Reply::Hang);
        let config = EvmLedgerConfig {
            request_timeout_ms: 100,
            ..EvmLedgerConfig::default()
        };
        assert_eq!(
            ledger_with(&server.url(), config).next_nonce(),
            Err(LedgerError::Timeout)
        );
    }

    #[test]
    fn server_errors_and_rate_limits_are_http_errors() {
        assert_eq!(
            call_with(|| Reply::Http(500, "oops".into())),
            Err(LedgerError::Http(500))
        );
        assert_eq!(
            call_with(|| Reply::Http(503, String::new())),
            Err(LedgerError::Http(503))
        );
        assert_eq!(
            call_with(|| Reply::Http(429, "slow down".into())),
            Err(LedgerError::Http(429))
        );
        // A JSON-RPC error object inside a 5xx is still the 5xx.
        let body = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"nonce too low"}}"#;
        assert_eq!(
            parse_response(502, body.as_bytes(), 1),
            Err(LedgerError::Http(502))
        );
        // Another status without a JSON-RPC answer is that status.
        assert_eq!(
            call_with(|| Reply::Http(404, "no".into())),
            Err(LedgerError::Http(404))
        );
    }

    #[test]
    fn what_is_not_a_json_rpc_answer_is_malformed() {
        let malformed = |reply: fn() -> Reply| {
            let answer = call_with(reply);
            assert!(
                matches!(answer, Err(LedgerError::Malformed(_))),
                "{answer:?}"
            );
        };
        malformed(|| Reply::Raw(b"\x00\xffthis is not HTTP\r\n\x7f\x00".to_vec()));
        malformed(|| Reply::Http(200, "<html>hello</html>".into()));
        malformed(|| Reply::Http(200, String::new()));
        malformed(|| Reply::Http(200, "[1, 2]".into()));
        malformed(|| Reply::Http(200, r#"{"jsonrpc":"2.0","id":999,"result":"0x1"}"#.into()));
        malformed(|| Reply::Http(200, r#"{"jsonrpc":"2.0","id":1}"#.into()));
        malformed(|| Reply::Http(200, r#"{"id":1,"result":"0x1"}"#.into()));
        malformed(|| Reply::Http(200, r#"{"jsonrpc":"2.0","id":1,"error":{"code":1}}"#.into()));
        malformed(|| Reply::Result(json!(12)));
        malformed(|| Reply::Result(json!("0x")));
        malformed(|| Reply::Result(json!("12")));
        malformed(|| Reply::Result(json!("0x10000000000000000")));
        malformed(|| Reply::Result(Value::Null));
        // The mock echoes the request's id; a correct one with a null result parses.
        assert_eq!(
            parse_response(200, br#"{"jsonrpc":"2.0","id":3,"result":null}"#, 3),
            Ok(Value::Null)
        );
    }

    // ---- JSON-RPC errors ------------------------------------------------------------------

    #[test]
    fn json_rpc_errors_are_classified_by_message() {
        let cases = [
            (
                "Insufficient funds for gas * price + value",
                LedgerError::InsufficientBalance,
            ),
            (
                "insufficient funds for transfer",
                LedgerError::InsufficientBalance,
            ),
            ("transaction already imported", LedgerError::AlreadyKnown),
            ("already known", LedgerError::AlreadyKnown),
            ("Known transaction: 0xabc", LedgerError::AlreadyKnown),
            ("nonce too low", LedgerError::NonceTooLow),
            (
                "Nonce too low: next nonce 5, tx nonce 4",
                LedgerError::NonceTooLow,
            ),
        ];
        for (message, expected) in cases {
            assert_eq!(
                classify_rpc_error(Some(-32003), message),
                expected,
                "{message}"
            );
        }
        for message in [
            "intrinsic gas too low",
            "intrinsic gas too high -- tx.gas_limit > env.block.gas_limit",
            "invalid transaction: something",
            "Invalid sender",
            "invalid signature",
            "max priority fee per gas higher than max fee per gas",
            "exceeds block gas limit",
            "transaction type not supported",
            "Failed to decode transaction",
        ] {
            let answer = classify_rpc_error(Some(-32000), message);
            assert!(
                matches!(answer, LedgerError::Rejected(ref m) if m.contains(message)),
                "{answer:?}"
            );
        }
        let answer = classify_rpc_error(Some(-32003), "invalid chain id for signer");
        assert!(
            matches!(&answer, LedgerError::Signing(m) if m.contains("another chain")),
            "another chain halts, it cancels nothing: {answer:?}"
        );
        // The fee market: its own class (bumped, never cancelled, never the endpoint's
        // failure), whatever wraps it.
        for message in [
            "max fee per gas less than block base fee",
            "invalid transaction: max fee per gas less than block base fee",
            "replacement transaction underpriced",
            "transaction underpriced",
            "max fee per gas less than block base fee: maxFeePerGas: 1, baseFee: 2",
            "fee cap less than block base fee",
        ] {
            let answer = classify_rpc_error(Some(-32003), message);
            assert!(
                matches!(answer, LedgerError::Underpriced(ref m) if m.contains(message) && m.contains("-32003")),
                "{answer:?}"
            );
        }
        // Anything else unknown is retried as the endpoint's failure.
        for message in ["nonce too high", "execution reverted"] {
            let answer = classify_rpc_error(Some(-32003), message);
            assert!(
                matches!(answer, LedgerError::Other(ref m) if m.contains(message) && m.contains("-32003")),
                "{answer:?}"
            );
        }
    }

    #[test]
    fn json_rpc_errors_arrive_through_the_transport() {
        let server = MockRpc::start(|_, _, _| {
            Reply::Error(-32003, "Insufficient funds for gas * price + value".into())
        });
        let tx = governance::SignedTx {
            tx_hash: format!("0x{}", "00".repeat(32)),
            bytes: vec![2],
            fees: TxFees::default(),
        };
        assert_eq!(
            ledger(&server.url()).submit(&tx),
            Err(LedgerError::InsufficientBalance)
        );
        // Some servers answer an error object with HTTP 400, and a parse error with id null.
        let body =
            br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}"#;
        let answer = parse_response(400, body, 5);
        assert!(
            matches!(answer, Err(LedgerError::Other(ref m)) if m.contains("parse error")),
            "{answer:?}"
        );
        let body = br#"{"jsonrpc":"2.0","id":8,"error":{"code":-32000,"message":"nonce too low"}}"#;
        assert_eq!(
            parse_response(200, body, 9),
            Err(LedgerError::Malformed(
                "the answer is to request id 8, not 9".into()
            ))
        );
    }

    #[test]
    fn an_endpoints_message_is_kept_bounded() {
        let long = "é".repeat(2_000);
        let LedgerError::Other(kept) = classify_rpc_error(Some(-1), &long) else {
            panic!("not Other");
        };
        assert!(kept.len() <= MAX_MESSAGE_BYTES, "{}", kept.len());
        assert!(kept.len() > MAX_MESSAGE_BYTES - 8 && kept.ends_with('…'));
        assert_eq!(bounded("short"), "short");
        let exact = "a".repeat(MAX_MESSAGE_BYTES);
        assert_eq!(bounded(&exact), exact);
    }
}
