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

/// Every call, so that both configurations compile the whole API.
fn exercise(metrics: &TreasuryMetrics) {
    metrics.set_breaker(1, 5, 0);
    metrics.breaker_transition(labels::CLOSED, labels::OPEN);
    metrics.breaker_rejected();
    metrics.set_breaker_forced(true);
    metrics.submission(labels::FAILED);
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
    metrics.set_balance_insufficient(true);
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

    const GAUGES: [&str; 11] = [
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
    ];
    const COUNTERS: [&str; 6] = [
        "treasury_circuit_breaker_transitions_total",
        "treasury_circuit_breaker_rejected_total",
        "treasury_submissions_total",
        "treasury_ledger_read_failures_total",
        "treasury_reorgs_total",
        "treasury_fee_bumps_total",
    ];
    const HISTOGRAM: &str = "treasury_executor_tick_duration_seconds";

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
            .chain([(HISTOGRAM, "histogram")]);
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
        assert_eq!(families, GAUGES.len() + COUNTERS.len() + 1, "{text}");
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
        assert_sample(&text, "treasury_balance_insufficient 0");
        assert_sample(&text, "treasury_executor_tick_duration_seconds_count 0");
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
                &format!("treasury_submissions_total{{result=\"{result}\"}} 0"),
            );
        }
        for status in labels::BACKLOG_STATUSES {
            assert_sample(&text, &format!("treasury_backlog{{status=\"{status}\"}} 0"));
        }
        // Absent until the first tick: the stalled alert's "never ticked" case.
        assert!(
            !text.contains("treasury_executor_last_tick_timestamp_seconds"),
            "{text}"
        );
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
        metrics.submission(labels::ACCEPTED);
        metrics.submission(labels::ACCEPTED);
        metrics.submission(labels::FAILED);
        metrics.submission(labels::AMBIGUOUS);
        metrics.submissions(labels::UNDERPRICED, 3);
        let text = render(&metrics);
        assert_sample(&text, r#"treasury_submissions_total{result="accepted"} 2"#);
        assert_sample(&text, r#"treasury_submissions_total{result="failed"} 1"#);
        assert_sample(&text, r#"treasury_submissions_total{result="cancelled"} 0"#);
        assert_sample(&text, r#"treasury_submissions_total{result="ambiguous"} 1"#);
        assert_sample(
            &text,
            r#"treasury_submissions_total{result="underpriced"} 3"#,
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
        metrics.set_balance_insufficient(true);
        metrics.set_halted(true);
        metrics.set_awaiting_operator(true);
        let text = render(&metrics);
        assert_sample(&text, "treasury_fee_cap_reached 1");
        assert_sample(&text, "treasury_balance_insufficient 1");
        assert_sample(&text, "treasury_executor_halted 1");
        assert_sample(&text, "treasury_executor_awaiting_operator 1");

        metrics.set_fee_cap_reached(false);
        metrics.set_balance_insufficient(false);
        metrics.set_awaiting_operator(false);
        let text = render(&metrics);
        assert_sample(&text, "treasury_fee_cap_reached 0");
        assert_sample(&text, "treasury_balance_insufficient 0");
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
}
