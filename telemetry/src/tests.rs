//! Unit tests: what `render` shows after each call (feature on), and that the same calls compile
//! to nothing (feature off).

use crate::{ENABLED, TreasuryMetrics, labels};

fn assert_handle<T: Clone + Send + Sync + std::fmt::Debug + Default + 'static>() {}

#[test]
fn the_handle_is_clone_send_sync_debug() {
    assert_handle::<TreasuryMetrics>();
    let debug = format!("{:?}", TreasuryMetrics::new());
    assert!(debug.starts_with("TreasuryMetrics"), "{debug}");
    assert!(debug.contains(&format!("enabled: {ENABLED}")), "{debug}");
}

#[test]
fn breaker_state_labels_match_the_state_values() {
    for (value, label) in (0u8..).zip(labels::BREAKER_STATES) {
        assert_eq!(labels::breaker_state(value), Some(label));
    }
    assert_eq!(labels::breaker_state(3), None);
}

#[test]
fn backlog_statuses_and_submission_results_are_listed_in_order() {
    assert_eq!(
        labels::BACKLOG_STATUSES,
        ["scheduled", "ready", "staged", "submitted", "included"]
    );
    assert_eq!(
        labels::SUBMISSION_RESULTS,
        [
            "accepted",
            "failed",
            "cancelled",
            "ambiguous",
            "underpriced"
        ]
    );
}

/// Each list names a label once, and never the catch-all: a duplicate would be one
/// series counted under two names' worth of slots, `other` would hide what it stands for.
#[test]
fn rpc_results_and_methods_are_distinct_and_never_other() {
    for list in [&labels::RPC_RESULTS[..], &labels::RPC_METHODS[..]] {
        let mut sorted = list.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), list.len(), "a label listed twice: {list:?}");
        assert!(!list.contains(&labels::OTHER), "{list:?}");
    }
    assert!(labels::RPC_METHODS.contains(&labels::BATCH));
}

#[test]
fn a_method_or_result_outside_the_lists_is_labelled_other() {
    for method in labels::RPC_METHODS {
        assert_eq!(labels::rpc_method(method), method);
    }
    for result in labels::RPC_RESULTS {
        assert_eq!(labels::rpc_result(result), result);
    }
    for unknown in [
        "eth_blockNumber",
        "ETH_CHAINID",
        "eth_chainId ",
        "",
        "other",
    ] {
        assert_eq!(labels::rpc_method(unknown), labels::OTHER, "{unknown:?}");
    }
    for unknown in ["OK", "error", "nonce too low", "", "other"] {
        assert_eq!(labels::rpc_result(unknown), labels::OTHER, "{unknown:?}");
    }
}

#[test]
fn policy_refusal_reasons_are_listed_distinct_and_never_other() {
    assert_eq!(
        labels::POLICY_REFUSALS,
        ["max_amount", "daily_limit", "destination", "approvals"]
    );
    assert!(!labels::POLICY_REFUSALS.contains(&labels::OTHER));
}

#[test]
fn a_policy_refusal_reason_outside_the_list_is_labelled_other() {
    for reason in labels::POLICY_REFUSALS {
        assert_eq!(labels::policy_refusal(reason), reason);
    }
    for unknown in ["MAX_AMOUNT", "daily_limit ", "allow-list", "", "other"] {
        assert_eq!(
            labels::policy_refusal(unknown),
            labels::OTHER,
            "{unknown:?}"
        );
    }
}

#[test]
fn engine_ops_are_listed_distinct_and_never_other() {
    assert_eq!(labels::ENGINE_OPS, ["get", "scan", "apply", "lease"]);
    assert!(!labels::ENGINE_OPS.contains(&labels::OTHER));
}

#[test]
fn an_engine_op_outside_the_list_is_labelled_other() {
    for op in labels::ENGINE_OPS {
        assert_eq!(labels::engine_op(op), op);
    }
    for unknown in ["GET", "put", "txn", "scan ", "", "other"] {
        assert_eq!(labels::engine_op(unknown), labels::OTHER, "{unknown:?}");
    }
}

/// Every call, so that both configurations compile the whole API.
fn exercise(metrics: &TreasuryMetrics) {
    metrics.set_breaker(1, 5, 0);
    metrics.breaker_transition(labels::CLOSED, labels::OPEN);
    metrics.breaker_rejected();
    metrics.set_breaker_forced(true);
    metrics.submission(labels::FAILED, labels::NATIVE_ASSET);
    metrics.ledger_read_failures(2);
    metrics.observe_tick(0.02);
    metrics.tick_completed(1_700_000_000.0);
    metrics.set_backlog(labels::READY, 3);
    metrics.set_halted(true);
    metrics.set_awaiting_operator(true);
    metrics.reorgs(1);
    metrics.fee_bumps(2);
    metrics.set_oldest_pending_seconds(90.0);
    metrics.set_fee_cap_reached(true);
    metrics.set_balance_insufficient(Some(labels::NATIVE_ASSET));
    metrics.set_rpc_endpoint("https://rpc.example.org:443", 1, false, 19_000_000);
    metrics.rpc_request(
        "https://rpc.example.org:443",
        "eth_chainId",
        labels::TIMEOUT,
        5.0,
    );
    metrics.rpc_endpoint_transition("https://rpc.example.org:443", labels::CLOSED, labels::OPEN);
    metrics.policy_refusals(labels::POLICY_DAILY_LIMIT, 1);
    metrics.set_awaiting_approval(2);
    metrics.set_held_by_policy(1);
    metrics.set_daily_spend("native", 850.0, Some(1000.0));
    metrics.set_executor_leader(true);
    metrics.leader_changed();
    metrics.store_engine_error(labels::ENGINE_LEASE);
}

#[cfg(not(feature = "prometheus"))]
mod disabled {
    use super::*;

    #[test]
    fn every_call_is_a_no_op_and_nothing_renders() {
        const { assert!(!ENABLED) };
        let metrics = TreasuryMetrics::new();
        exercise(&metrics);
        exercise(&metrics.clone());
        assert_eq!(metrics.render(), None);
        assert_eq!(size_of::<TreasuryMetrics>(), 0);
    }
}

#[cfg(feature = "prometheus")]
mod enabled {
    use super::*;

    const GAUGES: [&str; 19] = [
        "treasury_circuit_breaker_state",
        "treasury_circuit_breaker_failures",
        "treasury_circuit_breaker_successes",
        "treasury_circuit_breaker_forced",
        "treasury_executor_last_tick_timestamp_seconds",
        "treasury_backlog",
        "treasury_executor_halted",
        "treasury_executor_awaiting_operator",
        "treasury_oldest_pending_seconds",
        "treasury_fee_cap_reached",
        "treasury_balance_insufficient",
        "treasury_rpc_endpoint_state",
        "treasury_rpc_endpoint_in_sync",
        "treasury_rpc_endpoint_head",
        "treasury_disbursements_awaiting_approval",
        "treasury_disbursements_held_by_policy",
        "treasury_policy_spent_24h",
        "treasury_policy_daily_limit",
        "treasury_executor_leader",
    ];
    const COUNTERS: [&str; 12] = [
        "treasury_admin_auth_failures_total",
        "treasury_circuit_breaker_transitions_total",
        "treasury_circuit_breaker_rejected_total",
        "treasury_submissions_total",
        "treasury_ledger_read_failures_total",
        "treasury_reorgs_total",
        "treasury_fee_bumps_total",
        "treasury_rpc_requests_total",
        "treasury_rpc_endpoint_transitions_total",
        "treasury_policy_refusals_total",
        "treasury_executor_leader_changes_total",
        "treasury_store_engine_errors_total",
    ];
    const HISTOGRAM: &str = "treasury_executor_tick_duration_seconds";
    const RPC_HISTOGRAM: &str = "treasury_rpc_request_duration_seconds";

    /// Two endpoints as the node labels them: a configured URL's `scheme://host:port`, and a
    /// configured name.
    const A: &str = "https://rpc.example.org:443";
    const B: &str = "backup";

    fn render(metrics: &TreasuryMetrics) -> String {
        metrics.render().expect("the prometheus feature is on")
    }

    /// Asserts that `text` has exactly the sample line `line`.
    #[track_caller]
    fn assert_sample(text: &str, line: &str) {
        assert!(
            text.lines().any(|l| l == line),
            "no sample line `{line}` in:\n{text}"
        );
    }

    #[test]
    fn every_metric_has_help_and_type() {
        const { assert!(ENABLED) };
        let metrics = TreasuryMetrics::new();
        exercise(&metrics);
        let text = render(&metrics);
        let typed = GAUGES
            .iter()
            .map(|name| (*name, "gauge"))
            .chain(COUNTERS.iter().map(|name| (*name, "counter")))
            .chain([HISTOGRAM, RPC_HISTOGRAM].map(|name| (name, "histogram")));
        for (name, kind) in typed {
            let help = format!("# HELP {name} ");
            assert!(
                text.lines()
                    .any(|l| l.len() > help.len() && l.starts_with(&help)),
                "no HELP for {name}:\n{text}"
            );
            assert_sample(&text, &format!("# TYPE {name} {kind}"));
        }
        let families = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        assert_eq!(families, GAUGES.len() + COUNTERS.len() + 2, "{text}");
    }

    #[test]
    fn a_fresh_registry_shows_zeros_and_no_last_tick() {
        let text = render(&TreasuryMetrics::new());
        assert_sample(&text, "treasury_circuit_breaker_state 0");
        assert_sample(&text, "treasury_circuit_breaker_failures 0");
        assert_sample(&text, "treasury_circuit_breaker_successes 0");
        assert_sample(&text, "treasury_circuit_breaker_rejected_total 0");
        assert_sample(&text, "treasury_circuit_breaker_forced 0");
        assert_sample(&text, "treasury_executor_halted 0");
        assert_sample(&text, "treasury_executor_awaiting_operator 0");
        assert_sample(&text, "treasury_reorgs_total 0");
        assert_sample(&text, "treasury_fee_bumps_total 0");
        assert_sample(&text, "treasury_oldest_pending_seconds 0");
        assert_sample(&text, "treasury_fee_cap_reached 0");
        assert_sample(&text, r#"treasury_balance_insufficient{asset="native"} 0"#);
        assert_sample(&text, "treasury_executor_tick_duration_seconds_count 0");
        assert_sample(&text, "treasury_disbursements_awaiting_approval 0");
        assert_sample(&text, "treasury_disbursements_held_by_policy 0");
        assert_sample(&text, "treasury_executor_leader 0");
        assert_sample(&text, "treasury_executor_leader_changes_total 0");
        // Every expected labelled series exists at 0, so the first increment is seen by increase().
        for from in labels::BREAKER_STATES {
            for to in labels::BREAKER_STATES {
                let line = format!(
                    "treasury_circuit_breaker_transitions_total{{from=\"{from}\",to=\"{to}\"}} 0"
                );
                assert_eq!(text.lines().any(|l| l == line), from != to, "{line}");
            }
        }
        for result in labels::SUBMISSION_RESULTS {
            assert_sample(
                &text,
                &format!("treasury_submissions_total{{asset=\"native\",result=\"{result}\"}} 0"),
            );
        }
        for status in labels::BACKLOG_STATUSES {
            assert_sample(&text, &format!("treasury_backlog{{status=\"{status}\"}} 0"));
        }
        for reason in labels::POLICY_REFUSALS {
            assert_sample(
                &text,
                &format!("treasury_policy_refusals_total{{reason=\"{reason}\"}} 0"),
            );
        }
        for op in labels::ENGINE_OPS {
            assert_sample(
                &text,
                &format!("treasury_store_engine_errors_total{{op=\"{op}\"}} 0"),
            );
        }
        // Absent until the first tick: the stalled alert's "never ticked" case.
        assert!(
            !text.contains("treasury_executor_last_tick_timestamp_seconds"),
            "{text}"
        );
        // Absent until an endpoint is named: endpoints come from the configuration.
        assert!(!text.contains("treasury_rpc_"), "{text}");
        // Absent until an asset is named: assets come from the configuration too.
        assert!(!text.contains("treasury_policy_spent_24h"), "{text}");
        assert!(!text.contains("treasury_policy_daily_limit"), "{text}");
    }

    #[test]
    fn set_breaker_sets_the_three_seed_gauges() {
        let metrics = TreasuryMetrics::new();
        metrics.set_breaker(1, 5, 0);
        let text = render(&metrics);
        assert_sample(&text, "treasury_circuit_breaker_state 1");
        assert_sample(&text, "treasury_circuit_breaker_failures 5");
        assert_sample(&text, "treasury_circuit_breaker_successes 0");

        metrics.set_breaker(2, 0, 1);
        let text = render(&metrics);
        assert_sample(&text, "treasury_circuit_breaker_state 2");
        assert_sample(&text, "treasury_circuit_breaker_failures 0");
        assert_sample(&text, "treasury_circuit_breaker_successes 1");

        metrics.set_breaker(0, u64::MAX, 0);
        let text = render(&metrics);
        assert_sample(&text, "treasury_circuit_breaker_state 0");
        // Saturated at i64::MAX (exposed as a float), not wrapped negative.
        assert_sample(
            &text,
            "treasury_circuit_breaker_failures 9223372036854776000",
        );
    }

    #[test]
    fn transitions_are_counted_by_from_and_to() {
        let metrics = TreasuryMetrics::new();
        metrics.breaker_transition(labels::CLOSED, labels::OPEN);
        metrics.breaker_transition(labels::OPEN, labels::HALF_OPEN);
        metrics.breaker_transition(labels::HALF_OPEN, labels::OPEN);
        metrics.breaker_transition(labels::OPEN, labels::HALF_OPEN);
        metrics.breaker_transition(labels::HALF_OPEN, labels::CLOSED);
        metrics.breaker_transition(labels::CLOSED, labels::OPEN);
        let text = render(&metrics);
        let name = "treasury_circuit_breaker_transitions_total";
        assert_sample(&text, &format!(r#"{name}{{from="closed",to="open"}} 2"#));
        assert_sample(&text, &format!(r#"{name}{{from="open",to="half_open"}} 2"#));
        assert_sample(&text, &format!(r#"{name}{{from="half_open",to="open"}} 1"#));
        assert_sample(
            &text,
            &format!(r#"{name}{{from="half_open",to="closed"}} 1"#),
        );
        assert_sample(&text, &format!(r#"{name}{{from="open",to="closed"}} 0"#));
        assert_sample(
            &text,
            &format!(r#"{name}{{from="closed",to="half_open"}} 0"#),
        );
    }

    #[test]
    fn rejections_and_the_forced_flag() {
        let metrics = TreasuryMetrics::new();
        for _ in 0..3 {
            metrics.breaker_rejected();
        }
        metrics.set_breaker_forced(true);
        let text = render(&metrics);
        assert_sample(&text, "treasury_circuit_breaker_rejected_total 3");
        assert_sample(&text, "treasury_circuit_breaker_forced 1");

        metrics.set_breaker_forced(false);
        assert_sample(&render(&metrics), "treasury_circuit_breaker_forced 0");
    }

    #[test]
    fn read_failures_start_at_zero_and_count_by_n() {
        let metrics = TreasuryMetrics::new();
        assert_sample(&render(&metrics), "treasury_ledger_read_failures_total 0");
        metrics.ledger_read_failures(0);
        metrics.ledger_read_failures(3);
        assert_sample(&render(&metrics), "treasury_ledger_read_failures_total 3");
    }

    #[test]
    fn submissions_are_counted_by_result() {
        let metrics = TreasuryMetrics::new();
        metrics.submission(labels::ACCEPTED, labels::NATIVE_ASSET);
        metrics.submission(labels::ACCEPTED, labels::NATIVE_ASSET);
        metrics.submission(labels::FAILED, labels::NATIVE_ASSET);
        metrics.submission(labels::AMBIGUOUS, labels::NATIVE_ASSET);
        metrics.submissions(labels::UNDERPRICED, labels::NATIVE_ASSET, 3);
        metrics.register_assets(&["GRT"]);
        metrics.submissions(labels::ACCEPTED, "GRT", 4);
        let grt = metrics.render().unwrap_or_default();
        assert_sample(
            &grt,
            r#"treasury_submissions_total{asset="GRT",result="accepted"} 4"#,
        );
        assert_sample(
            &grt,
            r#"treasury_submissions_total{asset="GRT",result="failed"} 0"#,
        );
        let text = render(&metrics);
        assert_sample(
            &text,
            r#"treasury_submissions_total{asset="native",result="accepted"} 2"#,
        );
        assert_sample(
            &text,
            r#"treasury_submissions_total{asset="native",result="failed"} 1"#,
        );
        assert_sample(
            &text,
            r#"treasury_submissions_total{asset="native",result="cancelled"} 0"#,
        );
        assert_sample(
            &text,
            r#"treasury_submissions_total{asset="native",result="ambiguous"} 1"#,
        );
        assert_sample(
            &text,
            r#"treasury_submissions_total{asset="native",result="underpriced"} 3"#,
        );
    }

    #[test]
    fn tick_durations_land_in_buckets_from_1ms_to_10s() {
        let metrics = TreasuryMetrics::new();
        for seconds in [0.0005, 0.02, 3.0, 20.0] {
            metrics.observe_tick(seconds);
        }
        // Ignored: they would poison the sum.
        for seconds in [f64::NAN, f64::INFINITY, -1.0] {
            metrics.observe_tick(seconds);
        }
        let text = render(&metrics);
        let name = HISTOGRAM;
        let buckets = text
            .lines()
            .filter(|l| l.starts_with(&format!("{name}_bucket{{")))
            .count();
        assert_eq!(buckets, 14, "13 bounds and +Inf:\n{text}");
        assert_sample(&text, &format!(r#"{name}_bucket{{le="0.001"}} 1"#));
        assert_sample(&text, &format!(r#"{name}_bucket{{le="0.01"}} 1"#));
        assert_sample(&text, &format!(r#"{name}_bucket{{le="0.025"}} 2"#));
        assert_sample(&text, &format!(r#"{name}_bucket{{le="2.5"}} 2"#));
        assert_sample(&text, &format!(r#"{name}_bucket{{le="5"}} 3"#));
        assert_sample(&text, &format!(r#"{name}_bucket{{le="10"}} 3"#));
        assert_sample(&text, &format!(r#"{name}_bucket{{le="+Inf"}} 4"#));
        assert_sample(&text, &format!("{name}_sum 23.0205"));
        assert_sample(&text, &format!("{name}_count 4"));
    }

    #[test]
    fn the_last_tick_timestamp_appears_with_the_first_tick() {
        let metrics = TreasuryMetrics::new();
        metrics.tick_completed(f64::NAN);
        assert!(!render(&metrics).contains("treasury_executor_last_tick_timestamp_seconds"));

        metrics.tick_completed(1_700_000_000.5);
        let text = render(&metrics);
        assert_sample(
            &text,
            "treasury_executor_last_tick_timestamp_seconds 1700000000.5",
        );
        metrics.tick_completed(1_700_000_001.0);
        assert_sample(
            &render(&metrics),
            "treasury_executor_last_tick_timestamp_seconds 1700000001",
        );
    }

    #[test]
    fn backlog_by_status_and_halted() {
        let metrics = TreasuryMetrics::new();
        metrics.set_backlog(labels::SCHEDULED, 7);
        metrics.set_backlog(labels::READY, 3);
        metrics.set_backlog(labels::READY, 2);
        metrics.set_backlog(labels::INCLUDED, 4);
        metrics.set_halted(true);
        let text = render(&metrics);
        assert_sample(&text, r#"treasury_backlog{status="scheduled"} 7"#);
        assert_sample(&text, r#"treasury_backlog{status="ready"} 2"#);
        assert_sample(&text, r#"treasury_backlog{status="staged"} 0"#);
        assert_sample(&text, r#"treasury_backlog{status="submitted"} 0"#);
        assert_sample(&text, r#"treasury_backlog{status="included"} 4"#);
        assert_sample(&text, "treasury_executor_halted 1");

        metrics.set_halted(false);
        assert_sample(&render(&metrics), "treasury_executor_halted 0");
    }

    #[test]
    fn reorgs_and_fee_bumps_start_at_zero_and_count_by_n() {
        let metrics = TreasuryMetrics::new();
        metrics.reorgs(0);
        metrics.fee_bumps(0);
        let text = render(&metrics);
        assert_sample(&text, "treasury_reorgs_total 0");
        assert_sample(&text, "treasury_fee_bumps_total 0");

        metrics.reorgs(1);
        metrics.reorgs(2);
        metrics.fee_bumps(5);
        let text = render(&metrics);
        assert_sample(&text, "treasury_reorgs_total 3");
        assert_sample(&text, "treasury_fee_bumps_total 5");
    }

    #[test]
    fn admin_auth_failures_start_at_zero_by_reason_and_bound_unknown_reasons() {
        let metrics = TreasuryMetrics::new();
        let text = render(&metrics);
        for reason in labels::AUTH_FAILURES {
            assert_sample(
                &text,
                &format!("treasury_admin_auth_failures_total{{reason=\"{reason}\"}} 0"),
            );
        }
        metrics.admin_auth_failure(labels::AUTH_MISSING);
        metrics.admin_auth_failure(labels::AUTH_LIMITED);
        metrics.admin_auth_failure("made-up");
        let text = render(&metrics);
        assert_sample(
            &text,
            "treasury_admin_auth_failures_total{reason=\"missing\"} 1",
        );
        assert_sample(
            &text,
            "treasury_admin_auth_failures_total{reason=\"limited\"} 1",
        );
        assert_sample(
            &text,
            "treasury_admin_auth_failures_total{reason=\"wrong\"} 1",
        );
        assert!(!text.contains("made-up"), "{text}");
    }

    #[test]
    fn policy_refusals_are_counted_by_rule_and_bound_unknown_reasons() {
        let metrics = TreasuryMetrics::new();
        let name = "treasury_policy_refusals_total";
        metrics.policy_refusals(labels::POLICY_MAX_AMOUNT, 1);
        metrics.policy_refusals(labels::POLICY_MAX_AMOUNT, 2);
        metrics.policy_refusals(labels::POLICY_DESTINATION, 1);
        metrics.policy_refusals(labels::POLICY_APPROVALS, 4);
        metrics.policy_refusals(labels::POLICY_DAILY_LIMIT, 0);
        let text = render(&metrics);
        assert_sample(&text, &format!(r#"{name}{{reason="max_amount"}} 3"#));
        assert_sample(&text, &format!(r#"{name}{{reason="daily_limit"}} 0"#));
        assert_sample(&text, &format!(r#"{name}{{reason="destination"}} 1"#));
        assert_sample(&text, &format!(r#"{name}{{reason="approvals"}} 4"#));
        // The catch-all appears only with a caller's mistake, like the RPC result `other`.
        assert!(!text.contains(r#"reason="other""#), "{text}");

        for i in 0..50 {
            metrics.policy_refusals(&format!("rule {i}"), 1);
        }
        metrics.policy_refusals("", 2);
        let text = render(&metrics);
        assert_sample(&text, &format!(r#"{name}{{reason="other"}} 52"#));
        assert!(!text.contains("rule "), "{text}");
        let series = text
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .count();
        assert_eq!(series, 5, "the four rules and other:\n{text}");
    }

    #[test]
    fn the_leader_gauge_follows_each_call_and_changes_are_counted() {
        let metrics = TreasuryMetrics::new();
        metrics.set_executor_leader(true);
        let text = render(&metrics);
        assert_sample(&text, "treasury_executor_leader 1");
        assert_sample(&text, "treasury_executor_leader_changes_total 0");

        metrics.leader_changed();
        metrics.set_executor_leader(false);
        metrics.leader_changed();
        metrics.leader_changed();
        let text = render(&metrics);
        assert_sample(&text, "treasury_executor_leader 0");
        assert_sample(&text, "treasury_executor_leader_changes_total 3");

        // Setting the same value again changes nothing and counts nothing.
        metrics.set_executor_leader(true);
        metrics.set_executor_leader(true);
        let text = render(&metrics);
        assert_sample(&text, "treasury_executor_leader 1");
        assert_sample(&text, "treasury_executor_leader_changes_total 3");
    }

    #[test]
    fn store_engine_errors_are_counted_by_op_and_bound_unknown_ops() {
        let metrics = TreasuryMetrics::new();
        let name = "treasury_store_engine_errors_total";
        metrics.store_engine_error(labels::ENGINE_GET);
        metrics.store_engine_error(labels::ENGINE_APPLY);
        metrics.store_engine_error(labels::ENGINE_APPLY);
        metrics.store_engine_error(labels::ENGINE_LEASE);
        let text = render(&metrics);
        assert_sample(&text, &format!(r#"{name}{{op="get"}} 1"#));
        assert_sample(&text, &format!(r#"{name}{{op="scan"}} 0"#));
        assert_sample(&text, &format!(r#"{name}{{op="apply"}} 2"#));
        assert_sample(&text, &format!(r#"{name}{{op="lease"}} 1"#));
        // The catch-all appears only with a caller's mistake, like the policy's `other`.
        assert!(!text.contains(r#"op="other""#), "{text}");

        for i in 0..20 {
            metrics.store_engine_error(&format!("txn {i}"));
        }
        metrics.store_engine_error("");
        let text = render(&metrics);
        assert_sample(&text, &format!(r#"{name}{{op="other"}} 21"#));
        assert!(!text.contains("txn "), "{text}");
        let series = text
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .count();
        assert_eq!(series, 5, "the four ops and other:\n{text}");
    }

    #[test]
    fn awaiting_approval_and_held_by_policy_follow_each_call() {
        let metrics = TreasuryMetrics::new();
        metrics.set_awaiting_approval(3);
        metrics.set_held_by_policy(2);
        let text = render(&metrics);
        assert_sample(&text, "treasury_disbursements_awaiting_approval 3");
        assert_sample(&text, "treasury_disbursements_held_by_policy 2");

        metrics.set_awaiting_approval(0);
        metrics.set_held_by_policy(u64::MAX);
        let text = render(&metrics);
        assert_sample(&text, "treasury_disbursements_awaiting_approval 0");
        // Saturated at i64::MAX (exposed as a float), not wrapped negative.
        assert_sample(
            &text,
            "treasury_disbursements_held_by_policy 9223372036854776000",
        );
    }

    #[test]
    fn daily_spend_and_limit_per_asset_and_no_limit_is_no_series() {
        let metrics = TreasuryMetrics::new();
        let spent =
            |asset: &str, v: &str| format!(r#"treasury_policy_spent_24h{{asset="{asset}"}} {v}"#);
        let limit =
            |asset: &str, v: &str| format!(r#"treasury_policy_daily_limit{{asset="{asset}"}} {v}"#);
        metrics.set_daily_spend("native", 850.0, Some(1000.0));
        metrics.set_daily_spend("usdc", 0.0, None);
        let text = render(&metrics);
        assert_sample(&text, &spent("native", "850"));
        assert_sample(&text, &limit("native", "1000"));
        assert_sample(&text, &spent("usdc", "0"));
        assert!(
            !text.contains(r#"treasury_policy_daily_limit{asset="usdc"}"#),
            "{text}"
        );

        // An amount in wei: above 2^53 it is an approximation, which a ratio does not mind.
        metrics.set_daily_spend("native", 2.5e18, Some(1e19));
        let text = render(&metrics);
        assert_sample(&text, &spent("native", "2500000000000000000"));
        assert_sample(&text, &limit("native", "10000000000000000000"));

        // The limit removed from the policy: its series goes, the spend stays.
        metrics.set_daily_spend("native", 2.5e18, None);
        let text = render(&metrics);
        assert_sample(&text, &spent("native", "2500000000000000000"));
        assert!(!text.contains("treasury_policy_daily_limit{"), "{text}");
        // Removing what is not there is no error, and a limit set again comes back.
        metrics.set_daily_spend("native", 10.0, None);
        metrics.set_daily_spend("native", 10.0, Some(20.0));
        let text = render(&metrics);
        assert_sample(&text, &spent("native", "10"));
        assert_sample(&text, &limit("native", "20"));

        // Ignored: each gauge keeps its last good value.
        for bad in [-1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            metrics.set_daily_spend("native", bad, Some(bad));
            let text = render(&metrics);
            assert_sample(&text, &spent("native", "10"));
            assert_sample(&text, &limit("native", "20"));
        }
        metrics.set_daily_spend("native", -0.0, Some(-0.0));
        let text = render(&metrics);
        assert_sample(&text, &spent("native", "0"));
        assert_sample(&text, &limit("native", "0"));
    }

    #[test]
    fn oldest_pending_seconds_ignores_negative_and_non_finite_values() {
        let metrics = TreasuryMetrics::new();
        metrics.set_oldest_pending_seconds(125.5);
        assert_sample(&render(&metrics), "treasury_oldest_pending_seconds 125.5");

        // Ignored: the gauge keeps its last good value.
        for seconds in [-1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            metrics.set_oldest_pending_seconds(seconds);
            assert_sample(&render(&metrics), "treasury_oldest_pending_seconds 125.5");
        }

        metrics.set_oldest_pending_seconds(1801.0);
        assert_sample(&render(&metrics), "treasury_oldest_pending_seconds 1801");
        // Nothing pending any more.
        metrics.set_oldest_pending_seconds(0.0);
        assert_sample(&render(&metrics), "treasury_oldest_pending_seconds 0");
        metrics.set_oldest_pending_seconds(1.0);
        metrics.set_oldest_pending_seconds(-0.0);
        assert_sample(&render(&metrics), "treasury_oldest_pending_seconds 0");
    }

    #[test]
    fn fee_cap_balance_and_awaiting_operator_flags() {
        let metrics = TreasuryMetrics::new();
        metrics.set_fee_cap_reached(true);
        metrics.set_balance_insufficient(Some(labels::NATIVE_ASSET));
        metrics.set_halted(true);
        metrics.set_awaiting_operator(true);
        let text = render(&metrics);
        assert_sample(&text, "treasury_fee_cap_reached 1");
        assert_sample(&text, r#"treasury_balance_insufficient{asset="native"} 1"#);
        assert_sample(&text, "treasury_executor_halted 1");
        assert_sample(&text, "treasury_executor_awaiting_operator 1");

        metrics.register_assets(&["GRT"]);
        metrics.set_balance_insufficient(Some("GRT"));
        let text = render(&metrics);
        assert_sample(&text, r#"treasury_balance_insufficient{asset="GRT"} 1"#);
        assert_sample(&text, r#"treasury_balance_insufficient{asset="native"} 0"#);
        metrics.set_fee_cap_reached(false);
        metrics.set_balance_insufficient(None);
        metrics.set_awaiting_operator(false);
        let text = render(&metrics);
        assert_sample(&text, "treasury_fee_cap_reached 0");
        assert_sample(&text, r#"treasury_balance_insufficient{asset="native"} 0"#);
        assert_sample(&text, "treasury_executor_awaiting_operator 0");
        // Independent of the halted flag: the caller sets both.
        assert_sample(&text, "treasury_executor_halted 1");
    }

    #[test]
    fn clones_share_one_registry_and_instances_do_not() {
        let metrics = TreasuryMetrics::new();
        let clone = metrics.clone();
        clone.breaker_rejected();
        std::thread::spawn(move || clone.set_breaker(1, 5, 0))
            .join()
            .expect("recording thread");
        let text = render(&metrics);
        assert_sample(&text, "treasury_circuit_breaker_rejected_total 1");
        assert_sample(&text, "treasury_circuit_breaker_state 1");

        let other = render(&TreasuryMetrics::new());
        assert_sample(&other, "treasury_circuit_breaker_rejected_total 0");
        assert_sample(&other, "treasury_circuit_breaker_state 0");
    }

    /// The sample lines of the metric family `name` that carry `endpoint="{endpoint}"`.
    fn endpoint_samples<'t>(text: &'t str, name: &str, endpoint: &str) -> Vec<&'t str> {
        let prefix = format!("{name}{{endpoint=\"{endpoint}\"");
        text.lines().filter(|l| l.starts_with(&prefix)).collect()
    }

    #[test]
    fn an_endpoint_appears_with_its_first_call_with_its_counters_at_zero() {
        let metrics = TreasuryMetrics::new();
        metrics.set_rpc_endpoint(A, 0, true, 19_000_000);
        let text = render(&metrics);
        assert_sample(
            &text,
            &format!(r#"treasury_rpc_endpoint_state{{endpoint="{A}"}} 0"#),
        );
        assert_sample(
            &text,
            &format!(r#"treasury_rpc_endpoint_in_sync{{endpoint="{A}"}} 1"#),
        );
        assert_sample(
            &text,
            &format!(r#"treasury_rpc_endpoint_head{{endpoint="{A}"}} 19000000"#),
        );
        // Every counter series at 0, so that increase() sees the first request and transition.
        let name = "treasury_rpc_requests_total";
        for method in labels::RPC_METHODS.into_iter().chain([labels::OTHER]) {
            for result in labels::RPC_RESULTS {
                assert_sample(
                    &text,
                    &format!(r#"{name}{{endpoint="{A}",method="{method}",result="{result}"}} 0"#),
                );
            }
        }
        assert_eq!(endpoint_samples(&text, name, A).len(), 12 * 6, "{text}");
        let name = "treasury_rpc_endpoint_transitions_total";
        for from in labels::BREAKER_STATES {
            for to in labels::BREAKER_STATES {
                let line = format!(r#"{name}{{endpoint="{A}",from="{from}",to="{to}"}} 0"#);
                assert_eq!(text.lines().any(|l| l == line), from != to, "{line}");
            }
        }
        assert_sample(
            &text,
            &format!(r#"{RPC_HISTOGRAM}_count{{endpoint="{A}"}} 0"#),
        );
        // Only the endpoint named so far.
        assert!(!text.contains(&format!(r#"endpoint="{B}""#)), "{text}");
    }

    #[test]
    fn endpoint_gauges_follow_each_call_per_endpoint() {
        let metrics = TreasuryMetrics::new();
        metrics.set_rpc_endpoint(A, 0, true, 19_000_000);
        metrics.set_rpc_endpoint(B, 1, false, 18_999_990);
        let text = render(&metrics);
        assert_sample(
            &text,
            &format!(r#"treasury_rpc_endpoint_state{{endpoint="{B}"}} 1"#),
        );
        assert_sample(
            &text,
            &format!(r#"treasury_rpc_endpoint_in_sync{{endpoint="{B}"}} 0"#),
        );
        assert_sample(
            &text,
            &format!(r#"treasury_rpc_endpoint_head{{endpoint="{B}"}} 18999990"#),
        );
        assert_sample(
            &text,
            &format!(r#"treasury_rpc_endpoint_state{{endpoint="{A}"}} 0"#),
        );

        metrics.set_rpc_endpoint(A, 2, false, 19_000_001);
        metrics.set_rpc_endpoint(B, 0, true, u64::MAX);
        let text = render(&metrics);
        assert_sample(
            &text,
            &format!(r#"treasury_rpc_endpoint_state{{endpoint="{A}"}} 2"#),
        );
        assert_sample(
            &text,
            &format!(r#"treasury_rpc_endpoint_in_sync{{endpoint="{A}"}} 0"#),
        );
        assert_sample(
            &text,
            &format!(r#"treasury_rpc_endpoint_head{{endpoint="{A}"}} 19000001"#),
        );
        assert_sample(
            &text,
            &format!(r#"treasury_rpc_endpoint_state{{endpoint="{B}"}} 0"#),
        );
        assert_sample(
            &text,
            &format!(r#"treasury_rpc_endpoint_in_sync{{endpoint="{B}"}} 1"#),
        );
        // Saturated at i64::MAX (exposed as a float), not wrapped negative.
        assert_sample(
            &text,
            &format!(r#"treasury_rpc_endpoint_head{{endpoint="{B}"}} 9223372036854776000"#),
        );
    }

    #[test]
    fn rpc_requests_are_counted_by_endpoint_method_and_result() {
        let metrics = TreasuryMetrics::new();
        metrics.rpc_request(A, "eth_getTransactionCount", labels::OK, 0.02);
        metrics.rpc_request(A, "eth_getTransactionCount", labels::OK, 0.03);
        metrics.rpc_request(A, "eth_sendRawTransaction", labels::RPC_ERROR, 0.04);
        metrics.rpc_request(A, labels::BATCH, labels::OK, 0.2);
        metrics.rpc_request(B, "eth_getBlockByNumber", labels::TIMEOUT, 5.0);
        metrics.rpc_request(B, "eth_getBlockByNumber", labels::UNREACHABLE, 0.001);
        metrics.rpc_request(B, "eth_chainId", labels::HTTP, 0.1);
        metrics.rpc_request(B, "eth_chainId", labels::MALFORMED, 0.1);
        let text = render(&metrics);
        let name = "treasury_rpc_requests_total";
        for (endpoint, method, result, n) in [
            (A, "eth_getTransactionCount", "ok", 2),
            (A, "eth_sendRawTransaction", "rpc_error", 1),
            (A, "batch", "ok", 1),
            (A, "eth_getBlockByNumber", "timeout", 0),
            (B, "eth_getBlockByNumber", "timeout", 1),
            (B, "eth_getBlockByNumber", "unreachable", 1),
            (B, "eth_chainId", "http", 1),
            (B, "eth_chainId", "malformed", 1),
            (B, "eth_getTransactionCount", "ok", 0),
        ] {
            assert_sample(
                &text,
                &format!(
                    r#"{name}{{endpoint="{endpoint}",method="{method}",result="{result}"}} {n}"#
                ),
            );
        }
    }

    #[test]
    fn rpc_durations_land_in_buckets_from_5ms_to_30s_per_endpoint() {
        let metrics = TreasuryMetrics::new();
        for seconds in [0.001, 0.02, 0.3, 4.0, 45.0] {
            metrics.rpc_request(A, "eth_call", labels::OK, seconds);
        }
        metrics.rpc_request(B, "eth_call", labels::OK, 0.007);
        // Counted, but left out of the histogram: they would poison the sum.
        for seconds in [f64::NAN, f64::INFINITY, -1.0] {
            metrics.rpc_request(A, "eth_call", labels::TIMEOUT, seconds);
        }
        let text = render(&metrics);
        let name = RPC_HISTOGRAM;
        let buckets = endpoint_samples(&text, &format!("{name}_bucket"), A);
        assert_eq!(buckets.len(), 13, "12 bounds and +Inf:\n{text}");
        let bucket = |endpoint: &str, le: &str, n: u64| {
            format!(r#"{name}_bucket{{endpoint="{endpoint}",le="{le}"}} {n}"#)
        };
        assert_sample(&text, &bucket(A, "0.005", 1));
        assert_sample(&text, &bucket(A, "0.01", 1));
        assert_sample(&text, &bucket(A, "0.025", 2));
        assert_sample(&text, &bucket(A, "0.25", 2));
        assert_sample(&text, &bucket(A, "0.5", 3));
        assert_sample(&text, &bucket(A, "5", 4));
        assert_sample(&text, &bucket(A, "30", 4));
        assert_sample(&text, &bucket(A, "+Inf", 5));
        assert_sample(&text, &format!(r#"{name}_sum{{endpoint="{A}"}} 49.321"#));
        assert_sample(&text, &format!(r#"{name}_count{{endpoint="{A}"}} 5"#));
        assert_sample(&text, &bucket(B, "0.005", 0));
        assert_sample(&text, &bucket(B, "0.01", 1));
        assert_sample(&text, &format!(r#"{name}_count{{endpoint="{B}"}} 1"#));
        assert_sample(
            &text,
            &format!(
                r#"treasury_rpc_requests_total{{endpoint="{A}",method="eth_call",result="timeout"}} 3"#
            ),
        );
    }

    #[test]
    fn an_unknown_method_or_result_makes_no_new_series() {
        let metrics = TreasuryMetrics::new();
        metrics.rpc_request(A, "eth_getBlockByNumber", labels::OK, 0.01);
        let series = endpoint_samples(&render(&metrics), "treasury_rpc_requests_total", A).len();
        for i in 0..100 {
            metrics.rpc_request(A, &format!("eth_unknown_{i}"), labels::OK, 0.01);
        }
        metrics.rpc_request(A, "eth_blockNumber", labels::TIMEOUT, 0.01);
        metrics.rpc_request(A, "eth_chainId", "connection reset by peer", 0.01);
        metrics.rpc_request(A, "eth_feeHistory", "", 0.01);
        let text = render(&metrics);
        let name = "treasury_rpc_requests_total";
        assert_sample(
            &text,
            &format!(r#"{name}{{endpoint="{A}",method="other",result="ok"}} 100"#),
        );
        assert_sample(
            &text,
            &format!(r#"{name}{{endpoint="{A}",method="other",result="timeout"}} 1"#),
        );
        assert_sample(
            &text,
            &format!(r#"{name}{{endpoint="{A}",method="eth_chainId",result="other"}} 1"#),
        );
        assert_sample(
            &text,
            &format!(r#"{name}{{endpoint="{A}",method="other",result="other"}} 1"#),
        );
        // Two series more than before, whatever the number of unknown values: the result
        // `other` for two methods, created by the bad calls themselves.
        assert_eq!(endpoint_samples(&text, name, A).len(), series + 2, "{text}");
        assert!(!text.contains("eth_unknown"), "{text}");
        assert!(!text.contains("eth_blockNumber"), "{text}");
        // Every duration still counted.
        assert_sample(
            &text,
            &format!(r#"{RPC_HISTOGRAM}_count{{endpoint="{A}"}} 104"#),
        );
    }

    #[test]
    fn endpoint_transitions_are_counted_by_endpoint_from_and_to() {
        let metrics = TreasuryMetrics::new();
        metrics.rpc_endpoint_transition(A, labels::CLOSED, labels::OPEN);
        metrics.rpc_endpoint_transition(A, labels::OPEN, labels::HALF_OPEN);
        metrics.rpc_endpoint_transition(A, labels::HALF_OPEN, labels::CLOSED);
        metrics.rpc_endpoint_transition(A, labels::CLOSED, labels::OPEN);
        metrics.rpc_endpoint_transition(B, labels::CLOSED, labels::OPEN);
        let text = render(&metrics);
        let name = "treasury_rpc_endpoint_transitions_total";
        let line = |endpoint: &str, from: &str, to: &str, n: u64| {
            format!(r#"{name}{{endpoint="{endpoint}",from="{from}",to="{to}"}} {n}"#)
        };
        assert_sample(&text, &line(A, "closed", "open", 2));
        assert_sample(&text, &line(A, "open", "half_open", 1));
        assert_sample(&text, &line(A, "half_open", "closed", 1));
        assert_sample(&text, &line(A, "half_open", "open", 0));
        assert_sample(&text, &line(B, "closed", "open", 1));
        assert_sample(&text, &line(B, "open", "half_open", 0));
        assert_eq!(endpoint_samples(&text, name, B).len(), 6, "{text}");
        // The node-wide breaker's counter is another metric.
        assert_sample(
            &text,
            r#"treasury_circuit_breaker_transitions_total{from="closed",to="open"} 0"#,
        );
    }

    /// Every `treasury_…` name in the alert rules, their tests and the dashboard is a metric
    /// this crate exports (a histogram's `_bucket`, `_sum` and `_count` included): a misspelt
    /// name would make a rule that never fires, a test that proves nothing, or an empty panel.
    #[test]
    fn the_alerts_and_the_dashboard_name_only_exported_metrics() {
        let metrics = TreasuryMetrics::new();
        exercise(&metrics);
        let text = render(&metrics);
        let files = [
            ("alerts.yml", include_str!("../prometheus/alerts.yml")),
            (
                "alerts_test.yml",
                include_str!("../prometheus/alerts_test.yml"),
            ),
            ("treasury.json", include_str!("../grafana/treasury.json")),
        ];
        for (file, content) in files {
            let mut named = 0;
            for (start, _) in content.match_indices("treasury_") {
                if content[..start].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                    continue;
                }
                let name: String = content[start..]
                    .chars()
                    .take_while(|&c| c.is_ascii_alphanumeric() || c == '_')
                    .collect();
                let family = ["_bucket", "_sum", "_count"]
                    .into_iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .filter(|base| [HISTOGRAM, RPC_HISTOGRAM].contains(base))
                    .unwrap_or(&name);
                assert!(
                    text.contains(&format!("# TYPE {family} ")),
                    "{file} names {name}, which is not exported"
                );
                named += 1;
            }
            assert!(named > 0, "{file} names no metric");
        }
    }
}
