//! `cargo xtask bench`: the governance crate's benchmarks (breaker, executor) in one run,
//! then one table of the figures that matter, read from criterion's estimates, each next
//! to its target.

use std::ffi::OsString;
use std::path::Path;

use crate::Error;
use crate::cargo::{CargoCommand, workspace_root};

pub fn main(args: &[OsString]) -> Result<(), Error> {
    let Some(extra) = crate::trailing_args("bench", args)? else {
        crate::print_help();
        return Ok(());
    };
    let mut command = CargoCommand::new("bench", &["bench", "-p", "governance"]);
    if !extra.is_empty() {
        command = command.args(["--"]).args(extra);
    }
    command.run().map_err(Error::Failed)?;
    let criterion = workspace_root().join("target").join("criterion");
    eprint!("{}", table(&criterion));
    Ok(())
}

/// One row: what, the figure, the target.
struct Row {
    what: &'static str,
    figure: Option<String>,
    target: &'static str,
}

/// The summary table, from the estimates criterion left under `dir` (a row whose bench did
/// not run says so).
fn table(dir: &Path) -> String {
    let ns = |bench: &str| mean_ns(dir, bench);
    let nanos = |bench: &str| ns(bench).map(|v| format!("{v:.2} ns"));
    let mut rows = vec![
        Row {
            what: "breaker: atomic load (floor)",
            figure: nanos("circuit_breaker/atomic_u8_load_floor"),
            target: "floor",
        },
        Row {
            what: "breaker: closed acquire + success",
            figure: nanos("circuit_breaker/closed_acquire_success"),
            target: "<= 2 ns",
        },
        Row {
            what: "breaker: same, 2 threads sharing it (per call)",
            figure: nanos("circuit_breaker/closed_acquire_success_2_threads"),
            target: "<= 2 ns",
        },
        Row {
            what: "breaker: same, 2 threads, one breaker each",
            figure: nanos("circuit_breaker/closed_acquire_success_2_threads_unshared"),
            target: "= shared",
        },
        Row {
            what: "breaker: open, rejected",
            figure: nanos("circuit_breaker/open_reject"),
            target: "<= 10 ns",
        },
        Row {
            what: "breaker: closed, 10% failures",
            figure: nanos("circuit_breaker/closed_10pct_failures"),
            target: "<= 12 ns",
        },
        Row {
            what: "executor: queue -> Executed, 5,000 on durable sled",
            figure: ns("throughput/queue_to_executed_5000")
                .map(|v| format!("{:.0} /s", 5_000.0 / (v / 1e9))),
            target: ">= 20,000 /s",
        },
    ];
    let tick = |n: &str| ns(&format!("tick_100_ready/history/{n}"));
    for (n, what) in [
        ("1000", "executor: tick of 100 ready, history 1k"),
        ("100000", "executor: tick of 100 ready, history 100k"),
        ("1000000", "executor: tick of 100 ready, history 1M"),
    ] {
        rows.push(Row {
            what,
            figure: tick(n).map(|v| format!("{:.2} ms", v / 1e6)),
            target: "",
        });
    }
    rows.push(Row {
        what: "executor: tick at 1M history / at 1k",
        figure: tick("1000000")
            .zip(tick("1000"))
            .map(|(big, small)| format!("{:.2}x", big / small)),
        target: "<= 2x",
    });
    let width = rows.iter().map(|r| r.what.len()).max().unwrap_or(0);
    let mut out = format!(
        "\n==> [bench] summary (criterion means, {})\n    {:<width$}  {:>14}  TARGET\n",
        dir.display(),
        "WHAT",
        "FIGURE"
    );
    for row in rows {
        out += &format!(
            "    {:<width$}  {:>14}  {}\n",
            row.what,
            row.figure.as_deref().unwrap_or("not run"),
            row.target
        );
    }
    out
}

/// The mean estimate (ns) criterion recorded for `bench` (`group/name[/param]`).
fn mean_ns(dir: &Path, bench: &str) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join(bench).join("new/estimates.json")).ok()?;
    let mean = &text[text.find("\"mean\":")?..];
    let at = mean.find("\"point_estimate\":")? + "\"point_estimate\":".len();
    let number: String = mean[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        .collect();
    number.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_mean_and_says_what_did_not_run() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        let bench = dir.join("throughput/queue_to_executed_5000/new");
        std::fs::create_dir_all(&bench).expect("dir");
        std::fs::write(
            bench.join("estimates.json"),
            r#"{"mean":{"confidence_interval":{"lower_bound":1.0},"point_estimate":250000000.0,"standard_error":1.0},"median":{"point_estimate":7.0}}"#,
        )
        .expect("write");
        assert_eq!(
            mean_ns(&dir, "throughput/queue_to_executed_5000"),
            Some(250_000_000.0)
        );
        let table = table(&dir);
        assert!(table.contains("20000 /s"), "{table}");
        assert!(table.contains("not run"), "{table}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
