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
