//! Configuration: precedence, every variable, and errors that name their key.

use std::collections::HashMap;
use std::io::Write;

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(text.as_bytes()).expect("write");
    file
}

#[test]
fn defaults_run_with_no_setup() {
    let config = load(&Overrides::default(), &env(&[])).expect("defaults");
    assert_eq!(config.db_path, PathBuf::from("./data/governance.db"));
    assert_eq!(config.listen.to_string(), "127.0.0.1:9615");
    assert_eq!(config.ledger, LedgerKind::Dev);
    assert!(config.admin_tokens.is_empty(), "admin API off");
    assert_eq!(
        config.circuit_breaker,
        CircuitBreakerConfig::default(),
        "production breaker"
    );
}

#[test]
fn file_then_environment_then_flags() {
    let toml = file(
        r#"
        listen = "127.0.0.1:1000"
        db_path = "/from/file"
        poll_interval_ms = 250
        [circuit_breaker]
        timeout_secs = 5
        "#,
    );
    let path = toml.path().to_string_lossy().into_owned();
    let config = load(&Overrides::default(), &env(&[("TB_CONFIG", &path)])).expect("file");
    assert_eq!(config.listen.to_string(), "127.0.0.1:1000");
    assert_eq!(config.poll_interval, Duration::from_millis(250));
    assert_eq!(config.circuit_breaker.timeout_secs, 5);
    assert_eq!(
        config.circuit_breaker.failure_threshold, 5,
        "other breaker keys keep their defaults"
    );

    let vars = env(&[
        ("TB_CONFIG", &path),
        ("TB_LISTEN", "127.0.0.1:2000"),
        ("TB_GOVERNANCE_DB_PATH", "/from/env"),
    ]);
    let config = load(&Overrides::default(), &vars).expect("env");
    assert_eq!(
        config.listen.to_string(),
        "127.0.0.1:2000",
        "environment beats the file"
    );
    assert_eq!(config.db_path, PathBuf::from("/from/env"));

    let flags = Overrides {
        listen: Some("127.0.0.1:3000".into()),
        db_path: Some("/from/flag".into()),
        ..Overrides::default()
    };
    let config = load(&flags, &vars).expect("flags");
    assert_eq!(
        config.listen.to_string(),
        "127.0.0.1:3000",
        "flags beat the environment"
    );
    assert_eq!(config.db_path, PathBuf::from("/from/flag"));
}

#[test]
fn every_bad_value_names_its_key() {
    type Case<'a> = (Overrides, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            Overrides::default(),
            vec![("TB_LISTEN", "localhost")],
            "TB_LISTEN",
        ),
        (
            Overrides::default(),
            vec![("TB_LEDGER", "solana")],
            "TB_LEDGER",
        ),
        (
            Overrides::default(),
            vec![("TB_ADMIN_TOKEN", "short")],
            "TB_ADMIN_TOKEN",
        ),
        (
            Overrides {
                listen: Some("nope".into()),
                ..Overrides::default()
            },
            vec![],
            "--listen",
        ),
        (
            Overrides {
                ledger: Some("x".into()),
                ..Overrides::default()
            },
            vec![],
            "--ledger",
        ),
        (
            Overrides {
                config: Some("/does/not/exist.toml".into()),
                ..Overrides::default()
            },
            vec![],
            "--config",
        ),
    ];
    for (flags, vars, key) in cases {
        let error = load(&flags, &env(&vars)).expect_err(key);
        assert_eq!(error.key, key, "{error}");
        assert!(error.to_string().contains(key), "{error}");
    }
}

#[test]
fn bad_file_values_name_their_key() {
    for (text, key) in [
        (
            "[circuit_breaker]\nfailure_threshold = 0",
            "circuit_breaker.failure_threshold",
        ),
        (
            "[circuit_breaker]\ntimeout_secs = 0",
            "circuit_breaker.timeout_secs",
        ),
        ("poll_interval_ms = 1", "poll_interval_ms"),
        ("batch_size = 0", "batch_size"),
        ("listen = \"nowhere\"", "listen"),
        ("ledger = \"btc\"", "ledger"),
    ] {
        let toml = file(text);
        let overrides = Overrides {
            config: Some(toml.path().to_path_buf()),
            ..Overrides::default()
        };
        let error = load(&overrides, &env(&[])).expect_err(text);
        assert_eq!(error.key, key, "{error}");
    }
}

#[test]
fn unknown_and_mistyped_file_keys_are_refused_with_their_name() {
    for (text, named) in [
        ("[circuit_breaker]\ntimeout = 5", "timeout"),
        ("colour = \"blue\"", "colour"),
        ("[circuit_breaker]\ntimeout_secs = \"soon\"", "timeout_secs"),
    ] {
        let toml = file(text);
        let overrides = Overrides {
            config: Some(toml.path().to_path_buf()),
            ..Overrides::default()
        };
        let error = load(&overrides, &env(&[])).expect_err(text);
        assert!(error.key.starts_with("--config"), "{error}");
        assert!(error.message.contains(named), "{error}");
        assert!(!error.message.contains('\n'), "one line: {error}");
    }
}

#[test]
fn the_evm_ledger_needs_an_endpoint_and_a_key() {
    let error = load(&Overrides::default(), &env(&[("TB_LEDGER", "evm")])).expect_err("evm");
    assert_eq!(error.key, "rpc_urls");
    let error = load(
        &Overrides::default(),
        &env(&[
            ("TB_LEDGER", "evm"),
            ("TB_RPC_URL", "http://127.0.0.1:8545"),
        ]),
    )
    .expect_err("no key");
    assert_eq!(error.key, "treasury_key_file");
    let config = load(
        &Overrides::default(),
        &env(&[
            ("TB_LEDGER", "evm"),
            ("TB_RPC_URL", "http://127.0.0.1:8545"),
            ("TB_TREASURY_KEY_FILE", "/run/secrets/treasury.key"),
        ]),
    )
    .expect("evm");
    assert_eq!(config.ledger, LedgerKind::Evm);
    assert_eq!(config.evm, EvmLedgerConfig::default());
}

#[test]
fn the_evm_table_is_validated_naming_the_key() {
    let toml = file(
        r#"
        [evm]
        max_fee_per_gas = "50000000000"
        request_timeout_ms = 2000
        chain_id = 31337
        "#,
    );
    let overrides = Overrides {
        config: Some(toml.path().to_path_buf()),
        ..Overrides::default()
    };
    let config = load(&overrides, &env(&[])).expect("valid");
    assert_eq!(config.evm.max_fee_per_gas, 50_000_000_000);
    assert_eq!(config.evm.request_timeout_ms, 2000);
    assert_eq!(config.evm.chain_id, Some(31337));

    let toml = file("[evm]\nrequest_timeout_ms = 0\n");
    let overrides = Overrides {
        config: Some(toml.path().to_path_buf()),
        ..Overrides::default()
    };
    let error = load(&overrides, &env(&[])).expect_err("zero timeout");
    assert_eq!(error.key, "evm.request_timeout_ms");

    let toml = file("[evm]\nmax_fee = 1\n");
    let overrides = Overrides {
        config: Some(toml.path().to_path_buf()),
        ..Overrides::default()
    };
    let error = load(&overrides, &env(&[])).expect_err("unknown key");
    assert!(error.message.contains("max_fee"), "{error}");
}

#[test]
fn endpoints_come_as_a_list_from_every_layer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("node.toml");
    std::fs::write(
        &file,
        "rpc_urls = [\"http://a:1\", { url = \"https://u:p@b/v3/key\", name = \"b\" }]\n",
    )
    .expect("write");
    let from_file = Overrides {
        config: Some(file.clone()),
        ..Overrides::default()
    };
    let config = load(&from_file, &env(&[])).expect("file");
    let urls: Vec<(&str, Option<&str>)> = config
        .rpc_urls
        .iter()
        .map(|endpoint| (endpoint.url(), endpoint.name()))
        .collect();
    assert_eq!(
        urls,
        [("http://a:1", None), ("https://u:p@b/v3/key", Some("b"))]
    );
    let shown = format!("{:?}", config.rpc_urls);
    assert!(!shown.contains("u:p") && !shown.contains("key"), "{shown}");

    let config = load(
        &from_file,
        &env(&[("TB_RPC_URLS", "http://c:1, http://d:2")]),
    )
    .expect("env");
    assert_eq!(
        config.rpc_urls.len(),
        2,
        "the environment replaces the file's list"
    );
    assert_eq!(config.rpc_urls[1].url(), "http://d:2");
    let flags = Overrides {
        rpc_urls: vec!["http://e:1".into()],
        ..from_file.clone()
    };
    let config = load(&flags, &env(&[("TB_RPC_URLS", "http://c:1")])).expect("flags");
    assert_eq!(config.rpc_urls.len(), 1, "the flags replace everything");

    for (vars, key) in [
        (
            &[("TB_RPC_URL", "http://a"), ("TB_RPC_URLS", "http://b")][..],
            "TB_RPC_URLS",
        ),
        (&[("TB_RPC_URLS", "http://a,,http://b")][..], "TB_RPC_URLS"),
        (&[("TB_RPC_URL", "  ")][..], "TB_RPC_URL"),
    ] {
        let error = load(&Overrides::default(), &env(vars)).expect_err(key);
        assert_eq!(error.key, key, "{error}");
    }
    for (text, key) in [
        (
            "rpc_url = \"http://a\"\nrpc_urls = [\"http://b\"]\n",
            "rpc_urls",
        ),
        ("rpc_urls = []\n", "rpc_urls"),
        (
            "rpc_urls = [{ url = \"http://a\", name = \"has space\" }]\n",
            "rpc_urls[0].name",
        ),
        ("rpc_urls = [\"\"]\n", "rpc_urls[0]"),
    ] {
        std::fs::write(&file, text).expect("write");
        let error = load(&from_file, &env(&[])).expect_err(text);
        assert_eq!(error.key, key, "{text}: {error}");
    }
}

#[test]
fn an_endpoint_breaker_keeps_the_endpoints_defaults_for_keys_left_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("node.toml");
    let from_file = Overrides {
        config: Some(file.clone()),
        ..Overrides::default()
    };
    std::fs::write(
        &file,
        "[evm]\nmax_head_lag_blocks = 2\n[evm.endpoint_breaker]\ntimeout_secs = 7\n",
    )
    .expect("write");
    let config = load(&from_file, &env(&[])).expect("valid");
    let breaker = &config.evm.endpoint_breaker;
    assert_eq!(
        (
            breaker.failure_threshold,
            breaker.success_threshold,
            breaker.timeout_secs,
            breaker.window_secs
        ),
        (3, 1, 7, 60),
        "the endpoints' defaults, not [circuit_breaker]'s"
    );
    assert_eq!(config.evm.max_head_lag_blocks, 2);
    for (text, key) in [
        (
            "[evm.endpoint_breaker]\nfailure_threshold = 0\n",
            "evm.endpoint_breaker.failure_threshold",
        ),
        (
            "[evm]\nmax_head_lag_blocks = 1001\n",
            "evm.max_head_lag_blocks",
        ),
    ] {
        std::fs::write(&file, text).expect("write");
        let error = load(&from_file, &env(&[])).expect_err(text);
        assert_eq!(error.key, key, "{text}: {error}");
    }
    std::fs::write(&file, "[evm.endpoint_breaker]\nno_such_key = 1\n").expect("write");
    let error = load(&from_file, &env(&[])).expect_err("unknown key");
    assert!(error.message.contains("no_such_key"), "{error}");
}

/// Named tokens from files, each with a role; the inline token is one named `admin`,
/// which the environment replaces; every mistake names its key and never the secret.
#[test]
fn admin_tokens_are_named_read_from_files_and_checked() {
    let alice = file("alice-0123456789-0123456789-0123456789\n");
    let bob = file("bob-0123456789-0123456789-0123456789-xx");
    let toml = file(&format!(
        "admin_token = \"inline-token-0123456789\"\n\
         [[admin.tokens]]\nname = \"alice\"\ntoken_file = {:?}\n\
         [[admin.tokens]]\nname = \"bob\"\ntoken_file = {:?}\nrole = \"viewer\"\n",
        alice.path(),
        bob.path()
    ));
    let path = toml.path().to_string_lossy().into_owned();
    let config = load(&Overrides::default(), &env(&[("TB_CONFIG", &path)])).expect("tokens");
    let named: Vec<(&str, Role)> = config
        .admin_tokens
        .iter()
        .map(|t| (t.name.as_str(), t.role))
        .collect();
    assert_eq!(
        named,
        [
            ("alice", Role::Operator),
            ("bob", Role::Viewer),
            ("admin", Role::Operator)
        ]
    );
    assert!(
        config.admin_tokens[0]
            .secret
            .matches(b"alice-0123456789-0123456789-0123456789")
    );
    let shown = format!("{config:?}");
    for secret in ["alice-0123456789", "bob-0123456789", "inline-token"] {
        assert!(!shown.contains(secret), "a secret in Debug: {shown}");
    }

    let vars = env(&[
        ("TB_CONFIG", &path),
        ("TB_ADMIN_TOKEN", "env-token-0123456789"),
    ]);
    let config = load(&Overrides::default(), &vars).expect("env replaces the inline token");
    assert_eq!(config.admin_tokens.len(), 3);
    assert!(
        config.admin_tokens[2]
            .secret
            .matches(b"env-token-0123456789")
    );

    let short = file("too-short");
    let cases = [
        (
            format!(
                "[[admin.tokens]]\nname = \"a\"\ntoken_file = {:?}\n",
                short.path()
            ),
            "admin.tokens[0].token_file",
        ),
        (
            format!(
                "[[admin.tokens]]\nname = \"a b\"\ntoken_file = {:?}\n",
                alice.path()
            ),
            "admin.tokens[0].name",
        ),
        (
            format!(
                "[[admin.tokens]]\nname = \"a\"\ntoken_file = {0:?}\n\
                 [[admin.tokens]]\nname = \"a\"\ntoken_file = {1:?}\n",
                alice.path(),
                bob.path()
            ),
            "admin.tokens[1].name",
        ),
        (
            format!(
                "[[admin.tokens]]\nname = \"a\"\ntoken_file = {0:?}\n\
                 [[admin.tokens]]\nname = \"b\"\ntoken_file = {0:?}\n",
                alice.path()
            ),
            "admin.tokens[1].token_file",
        ),
        (
            format!(
                "admin_token = \"inline-token-0123456789\"\n\
                 [[admin.tokens]]\nname = \"admin\"\ntoken_file = {:?}\n",
                alice.path()
            ),
            "admin_token",
        ),
        (
            "[[admin.tokens]]\nname = \"a\"\ntoken_file = \"/nonexistent/token\"\n".to_owned(),
            "admin.tokens[0].token_file",
        ),
        (
            format!(
                "[[admin.tokens]]\nname = \"a\"\ntoken_file = {:?}\nrole = \"root\"\n",
                alice.path()
            ),
            "TB_CONFIG",
        ),
    ];
    for (text, key) in cases {
        let toml = file(&text);
        let path = toml.path().to_string_lossy().into_owned();
        let error =
            load(&Overrides::default(), &env(&[("TB_CONFIG", &path)])).expect_err("refused");
        assert!(error.key.starts_with(key), "{key}: {error}");
        assert!(
            !error.to_string().contains("0123456789"),
            "a secret in: {error}"
        );
    }
}

/// A syntax error names where it is and never echoes the line, which may hold a secret.
#[test]
fn a_toml_error_does_not_echo_the_offending_line() {
    let toml = file("listen = \"127.0.0.1:1\"\nadmin_token = \"s3cret-s3cret-s3cret\" oops\n");
    let path = toml.path().to_string_lossy().into_owned();
    let error = load(&Overrides::default(), &env(&[("TB_CONFIG", &path)])).expect_err("syntax");
    let shown = error.to_string();
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("line 2"), "{shown}");
}

fn load_text(text: &str) -> Result<NodeConfig, ConfigError> {
    let toml = file(text);
    let path = toml.path().to_string_lossy().into_owned();
    load(&Overrides::default(), &env(&[("TB_CONFIG", &path)]))
}

const TWO_OPERATORS: &str = r#"
[[admin.tokens]]
name = "alice"
token_file = "ALICE"
[[admin.tokens]]
name = "bob"
token_file = "BOB"
"#;

fn with_operators(policy: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, token) in [("ALICE", "a".repeat(40)), ("BOB", "b".repeat(40))] {
        std::fs::write(dir.path().join(name), token).expect("token");
    }
    let text = TWO_OPERATORS
        .replace("\"ALICE\"", &format!("{:?}", dir.path().join("ALICE")))
        .replace("\"BOB\"", &format!("{:?}", dir.path().join("BOB")));
    (dir, format!("{text}\n{policy}"))
}

#[test]
fn the_policy_is_read_with_big_amounts_and_its_allow_list() {
    let list = file("0xAA00000000000000000000000000000000000001\n# a comment\nbob\n");
    let (_dir, text) = with_operators(&format!(
        "[policy]\napprovals_required = 2\ndestinations_file = {:?}\n\
         [policy.limits.native]\nmax_amount = \"100_000_000_000_000_000_000\"\n\
         daily_limit = 5000\napproval_threshold = 0\n",
        list.path()
    ));
    let config = load_text(&text).expect("policy");
    let limits = &config.policy.limits["native"];
    assert_eq!(limits.max_amount, Some(100_000_000_000_000_000_000));
    assert_eq!(
        (limits.daily_limit, limits.approval_threshold),
        (Some(5000), Some(0))
    );
    let policy = config.policy.load().expect("the list");
    assert_eq!(policy.approvals_required, 2);
    assert_eq!(policy.destinations.as_ref().map(|l| l.len()), Some(2));
    assert_eq!(
        load_text("").expect("defaults").policy,
        PolicyConfig::default()
    );
}

#[test]
fn bad_policy_values_name_their_key() {
    let missing = std::env::temp_dir().join("no-such-allow-list.txt");
    let empty = file("# nobody yet\n");
    let cases: Vec<(String, &str)> = vec![
        (
            "[policy]\napprovals_required = 0\n".into(),
            "policy.approvals_required",
        ),
        (
            "[policy]\napprovals_required = 3\n".into(),
            "policy.approvals_required",
        ),
        (
            "[policy.limits.USDC]\nmax_amount = 1\n".into(),
            "policy.limits.USDC",
        ),
        (
            "[policy.limits.native]\nmax_amount = 0\n".into(),
            "policy.limits.native.max_amount",
        ),
        (
            "[policy.limits.native]\ndaily_limit = -5\n".into(),
            "policy.limits.native.daily_limit",
        ),
        (
            "[policy.limits.native]\napproval_threshold = \"1e18\"\n".into(),
            "policy.limits.native.approval_threshold",
        ),
        (
            "[policy.limits.native]\nmax_amount = \"340282366920938463463374607431768211456\"\n"
                .into(),
            "policy.limits.native.max_amount",
        ),
        ("[policy.limits.native]\nmaximum = 1\n".into(), "maximum"),
        (
            format!("[policy]\ndestinations_file = {missing:?}\n"),
            "policy.destinations_file",
        ),
        (
            format!("[policy]\ndestinations_file = {:?}\n", empty.path()),
            "policy.destinations_file",
        ),
    ];
    for (policy, key) in cases {
        let (_dir, text) = with_operators(&policy);
        let error = load_text(&text).expect_err(&policy);
        assert!(error.to_string().contains(key), "{policy}: {error}");
    }
    // Two approvals with one operator token could never pay above the threshold.
    let error = load_text("admin_token = \"0123456789abcdef\"\n[policy]\napprovals_required = 2\n")
        .expect_err("one operator");
    assert!(
        error.to_string().contains("policy.approvals_required"),
        "{error}"
    );
}

// ---- store and [etcd] ------------------------------------------------------------------

/// Loads `text` as the file (`TB_CONFIG`) with `vars` as the environment.
fn load_with(text: &str, vars: &[(&str, &str)]) -> Result<NodeConfig, ConfigError> {
    let toml = file(text);
    let path = toml.path().to_string_lossy().into_owned();
    let mut vars = env(vars);
    vars.insert("TB_CONFIG".into(), path);
    load(&Overrides::default(), &vars)
}

/// `load`'s answer to a valid configuration with `store = "etcd"`: the configuration in a
/// node built with the `etcd` feature; in one without, the refusal naming `store`, which
/// comes only after every other check has passed.
fn valid_with_etcd(result: Result<NodeConfig, ConfigError>) -> Option<NodeConfig> {
    match result {
        Ok(config) if cfg!(feature = "etcd") => Some(config),
        Ok(_) => panic!("store = \"etcd\" accepted without the etcd feature"),
        Err(error) if !cfg!(feature = "etcd") && error.key == "store" => None,
        Err(error) => panic!("refused: {error}"),
    }
}

#[test]
fn the_store_is_sled_and_etcd_has_defaults() {
    let config = load(&Overrides::default(), &env(&[])).expect("defaults");
    assert_eq!(config.store, StoreKind::Sled);
    assert_eq!(config.store.to_string(), "sled");
    assert_eq!(StoreKind::Etcd.to_string(), "etcd");
    let etcd = &config.etcd;
    assert_eq!(etcd, &EtcdConfig::default());
    assert!(etcd.endpoints.is_empty());
    assert_eq!(etcd.prefix, "/treasury/");
    assert_eq!(etcd.lease_ttl, Duration::from_secs(10));
    assert_eq!(etcd.request_timeout, Duration::from_millis(2000));
    assert_eq!(
        (
            &etcd.username,
            &etcd.password_file,
            &etcd.ca_file,
            &etcd.cert_file,
            &etcd.key_file
        ),
        (&None, &None, &None, &None, &None)
    );
    assert!(!etcd.tls());
    assert!(config.warnings().is_empty());
}

/// Every `[etcd]` key from the file; the variables replace what they set (the endpoints'
/// whole list), the flag beats `TB_STORE`, and the file's other keys stay.
#[test]
fn etcd_keys_come_from_the_file_then_the_environment() {
    let text = r#"
        store = "etcd"
        [etcd]
        endpoints = ["https://etcd-0:2379", "https://10.0.0.2:2379/", "https://[fd00::3]:2379"]
        prefix = "/prod/treasury/"
        lease_ttl_secs = 15
        request_timeout_ms = 500
        username = "treasury"
        password_file = "/run/secrets/etcd-password"
        ca_file = "/etc/treasury/etcd-ca.pem"
        cert_file = "/etc/treasury/etcd.pem"
        key_file = "/etc/treasury/etcd.key"
    "#;
    // sled: the files are not opened, the table is parsed and checked all the same.
    let config = load_with(text, &[("TB_STORE", "sled")]).expect("file");
    assert_eq!(
        config.store,
        StoreKind::Sled,
        "the environment beats the file"
    );
    let etcd = &config.etcd;
    assert_eq!(
        etcd.endpoints,
        [
            "https://etcd-0:2379",
            "https://10.0.0.2:2379",
            "https://[fd00::3]:2379"
        ]
    );
    assert_eq!(etcd.prefix, "/prod/treasury/");
    assert_eq!(etcd.lease_ttl, Duration::from_secs(15));
    assert_eq!(etcd.request_timeout, Duration::from_millis(500));
    assert_eq!(etcd.username.as_deref(), Some("treasury"));
    assert_eq!(
        etcd.password_file.as_deref(),
        Some(Path::new("/run/secrets/etcd-password"))
    );
    assert_eq!(
        etcd.ca_file.as_deref(),
        Some(Path::new("/etc/treasury/etcd-ca.pem"))
    );
    assert_eq!(
        etcd.cert_file.as_deref(),
        Some(Path::new("/etc/treasury/etcd.pem"))
    );
    assert_eq!(
        etcd.key_file.as_deref(),
        Some(Path::new("/etc/treasury/etcd.key"))
    );
    assert!(etcd.tls());

    let vars = [
        ("TB_STORE", "sled"),
        ("TB_ETCD_ENDPOINTS", " https://a:2379 ,https://b:2380"),
        ("TB_ETCD_PREFIX", "/staging/"),
        ("TB_ETCD_LEASE_TTL_SECS", "30"),
        ("TB_ETCD_USERNAME", "staging"),
        ("TB_ETCD_PASSWORD_FILE", "/run/secrets/staging"),
    ];
    let config = load_with(text, &vars).expect("env");
    let etcd = &config.etcd;
    assert_eq!(etcd.endpoints, ["https://a:2379", "https://b:2380"]);
    assert_eq!(etcd.prefix, "/staging/");
    assert_eq!(etcd.lease_ttl, Duration::from_secs(30));
    assert_eq!(etcd.username.as_deref(), Some("staging"));
    assert_eq!(
        etcd.password_file.as_deref(),
        Some(Path::new("/run/secrets/staging"))
    );
    assert_eq!(
        etcd.request_timeout,
        Duration::from_millis(500),
        "a key no variable sets keeps the file's value"
    );
    assert_eq!(
        etcd.ca_file.as_deref(),
        Some(Path::new("/etc/treasury/etcd-ca.pem"))
    );

    let toml = file("store = \"etcd\"\n");
    let flags = Overrides {
        config: Some(toml.path().to_path_buf()),
        store: Some("sled".into()),
        ..Overrides::default()
    };
    let config = load(&flags, &env(&[("TB_STORE", "etcd")])).expect("flag");
    assert_eq!(
        config.store,
        StoreKind::Sled,
        "the flag beats the environment"
    );
}

#[test]
fn bad_etcd_values_name_their_key() {
    for (text, key) in [
        ("store = \"zookeeper\"", "store"),
        ("[etcd]\nendpoints = []", "etcd.endpoints"),
        ("[etcd]\nendpoints = [\"etcd-0:2379\"]", "etcd.endpoints[0]"),
        (
            "[etcd]\nendpoints = [\"http://a:2379\", \"ftp://b:2379\"]",
            "etcd.endpoints[1]",
        ),
        ("[etcd]\nendpoints = [\"http://a\"]", "etcd.endpoints[0]"),
        (
            "[etcd]\nendpoints = [\"http://a:2379/v3\"]",
            "etcd.endpoints[0]",
        ),
        (
            "[etcd]\nendpoints = [\"http://a:2379\", \"http://a:2379/\"]",
            "etcd.endpoints[1]",
        ),
        ("[etcd]\nprefix = \"\"", "etcd.prefix"),
        ("[etcd]\nprefix = \"/t\\u0000/\"", "etcd.prefix"),
        ("[etcd]\nlease_ttl_secs = 1", "etcd.lease_ttl_secs"),
        ("[etcd]\nlease_ttl_secs = 301", "etcd.lease_ttl_secs"),
        ("[etcd]\nlease_ttl_secs = -10", "etcd.lease_ttl_secs"),
        ("[etcd]\nrequest_timeout_ms = 99", "etcd.request_timeout_ms"),
        (
            "[etcd]\nrequest_timeout_ms = 60001",
            "etcd.request_timeout_ms",
        ),
        ("[etcd]\nusername = \" \"", "etcd.username"),
        ("[etcd]\nusername = \"a\\nb\"", "etcd.username"),
        ("[etcd]\npassword_file = \"\"", "etcd.password_file"),
        ("[etcd]\nca_file = \"\"", "etcd.ca_file"),
        ("[etcd]\ncert_file = \"\"", "etcd.cert_file"),
        ("[etcd]\nkey_file = \"\"", "etcd.key_file"),
    ] {
        let error = load_with(text, &[]).expect_err(text);
        assert_eq!(error.key, key, "{text}: {error}");
        assert!(error.to_string().contains(key), "{error}");
    }

    for (vars, key) in [
        (&[("TB_STORE", "etc")][..], "TB_STORE"),
        (
            &[("TB_ETCD_ENDPOINTS", "http://a:2379,,http://b:2379")][..],
            "TB_ETCD_ENDPOINTS",
        ),
        (
            &[("TB_ETCD_ENDPOINTS", "http://a:2379,unix:///run/etcd.sock")][..],
            "TB_ETCD_ENDPOINTS",
        ),
        (
            &[("TB_ETCD_ENDPOINTS", "http://a:2379,http://a:2379")][..],
            "TB_ETCD_ENDPOINTS",
        ),
        (&[("TB_ETCD_PREFIX", "/t\0/")][..], "TB_ETCD_PREFIX"),
        (
            &[("TB_ETCD_LEASE_TTL_SECS", "ten")][..],
            "TB_ETCD_LEASE_TTL_SECS",
        ),
        (
            &[("TB_ETCD_LEASE_TTL_SECS", "1")][..],
            "TB_ETCD_LEASE_TTL_SECS",
        ),
        (&[("TB_ETCD_USERNAME", "  ")][..], "TB_ETCD_USERNAME"),
    ] {
        let error = load(&Overrides::default(), &env(vars)).expect_err(key);
        assert_eq!(error.key, key, "{error}");
        assert!(error.to_string().contains(key), "{error}");
    }
    let error = load(
        &Overrides::default(),
        &env(&[("TB_ETCD_ENDPOINTS", "http://a:2379, etcd-1:2379")]),
    )
    .expect_err("no scheme");
    assert!(error.message.contains("entry 2"), "{error}");

    let flags = Overrides {
        store: Some("memory".into()),
        ..Overrides::default()
    };
    let error = load(&flags, &env(&[])).expect_err("--store");
    assert_eq!(error.key, "--store");

    // A password in an endpoint's URL is refused, and never echoed.
    let error = load_with("[etcd]\nendpoints = [\"https://root:s3cret@a:2379\"]", &[])
        .expect_err("user info");
    assert_eq!(error.key, "etcd.endpoints[0]");
    assert!(!error.to_string().contains("s3cret"), "{error}");
    assert!(error.message.contains("password_file"), "{error}");

    for (text, named) in [
        ("[etcd]\nendpoint = [\"http://a:2379\"]", "endpoint"),
        ("[etcd]\npassword = \"s3cret\"", "password"),
        ("[etcd]\nlease_ttl_secs = \"10\"", "lease_ttl_secs"),
    ] {
        let error = load_with(text, &[]).expect_err(text);
        assert!(error.key.starts_with("TB_CONFIG"), "{error}");
        assert!(error.message.contains(named), "{error}");
        assert!(!error.to_string().contains("s3cret"), "{error}");
    }
}

#[test]
fn store_etcd_needs_endpoints() {
    let error = load(&Overrides::default(), &env(&[("TB_STORE", "etcd")])).expect_err("etcd");
    assert_eq!(error.key, "etcd.endpoints");
    assert!(error.message.contains("TB_ETCD_ENDPOINTS"), "{error}");
    let error = load_with("store = \"etcd\"\n[etcd]\nprefix = \"/t/\"\n", &[]).expect_err("etcd");
    assert_eq!(error.key, "etcd.endpoints");
    // sled does not need them.
    load_with("[etcd]\nprefix = \"/t/\"\n", &[]).expect("sled");
    let config = valid_with_etcd(load(
        &Overrides::default(),
        &env(&[
            ("TB_STORE", "etcd"),
            ("TB_ETCD_ENDPOINTS", "http://127.0.0.1:2379"),
        ]),
    ));
    if let Some(config) = config {
        assert_eq!(config.store, StoreKind::Etcd);
        assert_eq!(config.etcd.endpoints, ["http://127.0.0.1:2379"]);
    }
}

#[test]
fn username_and_password_file_go_together() {
    let error = load(
        &Overrides::default(),
        &env(&[("TB_ETCD_USERNAME", "treasury")]),
    )
    .expect_err("no password");
    assert_eq!(error.key, "etcd.password_file");
    let error =
        load_with("[etcd]\npassword_file = \"/run/secrets/p\"\n", &[]).expect_err("no username");
    assert_eq!(error.key, "etcd.username");
    // One from the file, the other from the environment: a pair.
    let config = load_with(
        "[etcd]\nusername = \"treasury\"\n",
        &[("TB_ETCD_PASSWORD_FILE", "/run/secrets/p")],
    )
    .expect("a pair");
    assert_eq!(config.etcd.username.as_deref(), Some("treasury"));

    // With store = "etcd" the file is read: missing or empty is refused, and the password
    // never shows.
    let dir = tempfile::tempdir().expect("tempdir");
    let password = dir.path().join("password");
    let text = format!(
        "store = \"etcd\"\n[etcd]\nendpoints = [\"http://127.0.0.1:2379\"]\n\
         username = \"treasury\"\npassword_file = {password:?}\n"
    );
    let error = load_with(&text, &[]).expect_err("missing");
    assert_eq!(error.key, "etcd.password_file");
    assert!(error.message.contains("cannot read"), "{error}");
    std::fs::write(&password, "\n").expect("write");
    let error = load_with(&text, &[]).expect_err("empty");
    assert_eq!(error.key, "etcd.password_file");
    std::fs::write(&password, "s3cret\n").expect("write");
    if let Some(config) = valid_with_etcd(load_with(&text, &[])) {
        let secret = config.etcd.password().expect("read").expect("set");
        assert!(secret.matches(b"s3cret"));
        assert!(!format!("{config:?}").contains("s3cret"));
    }
}

#[test]
fn tls_files_go_with_https_endpoints() {
    let https = "endpoints = [\"https://a:2379\"]\nca_file = \"/ca.pem\"\n";
    for (text, key, says) in [
        (
            format!("[etcd]\n{https}cert_file = \"/c.pem\"\n"),
            "etcd.key_file",
            "cert_file",
        ),
        (
            format!("[etcd]\n{https}key_file = \"/c.key\"\n"),
            "etcd.cert_file",
            "key_file",
        ),
        (
            "[etcd]\nendpoints = [\"https://a:2379\"]\n".into(),
            "etcd.ca_file",
            "https://",
        ),
        (
            "[etcd]\nendpoints = [\"http://a:2379\"]\nca_file = \"/ca.pem\"\n".into(),
            "etcd.endpoints",
            "https://",
        ),
        (
            "[etcd]\nendpoints = [\"http://a:2379\"]\ncert_file = \"/c.pem\"\n\
             key_file = \"/c.key\"\n"
                .into(),
            "etcd.endpoints",
            "https://",
        ),
        (
            "[etcd]\nendpoints = [\"https://a:2379\", \"http://b:2379\"]\n\
             ca_file = \"/ca.pem\"\n"
                .into(),
            "etcd.endpoints",
            "http://b:2379",
        ),
    ] {
        let error = load_with(&text, &[]).expect_err(&text);
        assert_eq!(error.key, key, "{text}: {error}");
        assert!(error.message.contains(says), "{text}: {error}");
    }
    load_with(&format!("[etcd]\n{https}"), &[]).expect("https with a CA");
    load_with(
        &format!("[etcd]\n{https}cert_file = \"/c.pem\"\nkey_file = \"/c.key\"\n"),
        &[],
    )
    .expect("and a client certificate");

    // With store = "etcd" each file must be readable.
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    let cert = dir.path().join("client.pem");
    let key = dir.path().join("client.key");
    let text = format!(
        "store = \"etcd\"\n[etcd]\nendpoints = [\"https://a:2379\"]\nca_file = {ca:?}\n\
         cert_file = {cert:?}\nkey_file = {key:?}\n"
    );
    for (path, named) in [
        (&ca, "etcd.ca_file"),
        (&cert, "etcd.cert_file"),
        (&key, "etcd.key_file"),
    ] {
        let error = load_with(&text, &[]).expect_err(named);
        assert_eq!(error.key, named, "{error}");
        std::fs::write(path, "PEM").expect("write");
    }
    valid_with_etcd(load_with(&text, &[]));
}

/// The leader renews its lease as it ticks: the lease must span two ticks, and outlast a
/// request's deadline. Only with store = "etcd".
#[test]
fn the_lease_spans_two_ticks_and_three_requests() {
    let etcd = "[etcd]\nendpoints = [\"http://127.0.0.1:2379\"]\nlease_ttl_secs = 10\n";
    for (top, more, key) in [
        ("poll_interval_ms = 5001\n", "", "etcd.lease_ttl_secs"),
        (
            "poll_interval_ms = 200\n",
            "request_timeout_ms = 3334\n",
            "etcd.request_timeout_ms",
        ),
    ] {
        let text = format!("store = \"etcd\"\n{top}{etcd}{more}");
        let error = load_with(&text, &[]).expect_err(&text);
        assert_eq!(error.key, key, "{text}: {error}");
        load_with(&text, &[("TB_STORE", "sled")]).expect("sled does not lease");
    }
    let error = load_with(
        &format!("store = \"etcd\"\npoll_interval_ms = 5001\n{etcd}"),
        &[("TB_ETCD_LEASE_TTL_SECS", "11")],
    );
    valid_with_etcd(error);
    valid_with_etcd(load_with(
        &format!("store = \"etcd\"\npoll_interval_ms = 5000\n{etcd}request_timeout_ms = 3333\n"),
        &[],
    ));
}

#[cfg(not(feature = "etcd"))]
#[test]
fn store_etcd_without_the_feature_says_so() {
    let vars = env(&[
        ("TB_STORE", "etcd"),
        ("TB_ETCD_ENDPOINTS", "http://127.0.0.1:2379"),
    ]);
    let error = load(&Overrides::default(), &vars).expect_err("no etcd");
    assert_eq!(error.key, "store", "{error}");
    assert!(
        error.message.contains("built without etcd support"),
        "{error}"
    );
    let error = load_with(
        "store = \"etcd\"\n[etcd]\nendpoints = [\"http://127.0.0.1:2379\"]\n",
        &[],
    )
    .expect_err("no etcd");
    assert_eq!(error.key, "store", "{error}");
    assert!(error.message.contains("--features etcd"), "{error}");
}

#[cfg(feature = "etcd")]
#[test]
fn store_etcd_loads_with_the_feature() {
    let config = load_with(
        "store = \"etcd\"\nidentity = \"node-a\"\n\
         [etcd]\nendpoints = [\"http://127.0.0.1:2379\"]\n",
        &[],
    )
    .expect("etcd");
    assert_eq!(config.store, StoreKind::Etcd);
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());
}

#[test]
fn etcd_warns_of_a_shared_identity_a_loose_prefix_and_a_password_in_clear() {
    let mut config = NodeConfig {
        store: StoreKind::Etcd,
        ..NodeConfig::default()
    };
    config.etcd.endpoints = vec!["https://a:2379".into()];
    let warnings = config.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("identity"), "{warnings:?}");

    config.identity = "node-a".into();
    assert!(config.warnings().is_empty());
    config.etcd.prefix = "/treasury".into();
    config.etcd.endpoints = vec!["http://a:2379".into()];
    config.etcd.username = Some("treasury".into());
    let warnings = config.warnings();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("etcd.prefix"), "{warnings:?}");
    assert!(warnings[1].contains("in clear"), "{warnings:?}");

    config.store = StoreKind::Sled;
    config.identity = DEFAULT_IDENTITY.into();
    assert!(config.warnings().is_empty(), "sled: [etcd] is not used");
}
