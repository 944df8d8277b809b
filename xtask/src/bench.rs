//! `cargo xtask bench`: the governance crate's benchmarks (breaker, executor) and the
//! executor on etcd (`etcdstore`, a 3-member cluster) in one run,
//! then the node end to end (release build: queue through the admin API's batch endpoint
//! → every disbursement Executed, against the dev ledger and against anvil), then one
//! table of the figures that matter, each next to its target. With benchmark ARGS (a
//! filter) only criterion runs.

use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::Error;
use crate::anvil::Anvil;
use crate::cargo::{CargoCommand, fresh_dir};
use crate::failover::Node;
use crate::http;

const TOKEN: &str = "bench-admin-token-0123456789";

pub fn main(args: &[OsString]) -> Result<(), Error> {
    if args.first().and_then(|arg| arg.to_str()) == Some("--node") {
        if let Some(extra) = args.get(1) {
            return Err(Error::Usage(format!(
                "unexpected argument `{}` after `bench --node`",
                extra.to_string_lossy()
            )));
        }
        eprint!("{}", node_table().map_err(Error::Failed)?);
        return Ok(());
    }
    let Some(extra) = crate::trailing_args("bench", args)? else {
        crate::print_help();
        return Ok(());
    };
    // The etcd row runs against a 3-member cluster: etcd installed first if missing.
    let etcd = crate::etcd::ensure_etcd().map_err(Error::Failed)?;
    let mut command = CargoCommand::new("bench", &["bench", "-p", "governance", "-p", "etcdstore"])
        .env("ETCD_BIN", etcd);
    if !extra.is_empty() {
        command = command.args(["--"]).args(extra);
    }
    command.run().map_err(Error::Failed)?;
    let criterion = crate::cargo::target_dir().join("criterion");
    let mut out = table(&criterion);
    if extra.is_empty() {
        out += &node_table().map_err(Error::Failed)?;
    }
    eprint!("{out}");
    Ok(())
}

/// The node end to end, against the dev ledger and against anvil.
fn node_table() -> Result<String, String> {
    CargoCommand::new(
        "bench",
        &[
            "build",
            "--release",
            "--quiet",
            "-p",
            "node",
            "--bin",
            "node",
        ],
    )
    .run()?;
    let target = crate::cargo::target_dir();
    let binary = target.join("release").join("node");
    let scratch = target.join("xtask-bench-node");
    let dev = node_throughput(&binary, &scratch.join("dev"), None, 5_000)?;
    // A block a second, as a chain makes them: an auto-mining anvil mines a block per
    // transaction as it arrives and leaves those that come in while it mines pending until
    // the next one arrives, so that a large batch stalls on it (and its blocks run past
    // `bump_after_blocks` in milliseconds, bumping fees for nothing). Blocks of 300M gas
    // (14,285 transfers) rather than 30M (1,428), so that the chain's capacity is not what
    // is measured: 5,000 transfers would need four 30M blocks, a ceiling near 1,250 /s.
    let chain = ["--block-time", "1", "--gas-limit", "300000000"];
    let anvil = Anvil::start(&chain)?;
    let evm = node_throughput(&binary, &scratch.join("evm"), Some((&anvil, 1)), 5_000)?;
    let anvil = Anvil::start(&chain)?;
    let pool = node_throughput(&binary, &scratch.join("evm-pool"), Some((&anvil, 3)), 5_000)?;
    Ok(format!(
        "\n==> [bench] the node end to end (release; queue in batches of 500 -> all Executed)\n\
         \x20   {:<52}  {:>10}\n    {:<52}  {:>10}\n    {:<52}  {:>10}\n",
        "dev ledger, 5,000 disbursements",
        format!("{dev:.0} /s"),
        "anvil (1 s blocks of 300M gas), 5,000, one endpoint",
        format!("{evm:.0} /s"),
        "anvil (1 s blocks of 300M gas), 5,000, 3 endpoints",
        format!("{pool:.0} /s"),
    ))
}

/// Starts the node on a fresh database, queues `n` disbursements and returns how many per
/// second reached Executed, from the first queue call to the last one executed.
/// On anvil, through `endpoints` names for it (3: a pool, each submission sent thrice).
fn node_throughput(
    binary: &Path,
    scratch: &Path,
    anvil: Option<(&Anvil, usize)>,
    n: u64,
) -> Result<f64, String> {
    fresh_dir(scratch)?;
    // The whole proposal in one tick's batch.
    let tuning = "poll_interval_ms = 10\nbatch_size = 5000\n";
    let config_path = match anvil {
        Some((anvil, endpoints)) => {
            let rpc = vec![anvil.address.as_str(); endpoints];
            crate::failover::write_evm_config(scratch, &rpc, TOKEN, tuning, "")?
        }
        None => {
            let path = scratch.join("node.toml");
            let text = format!(
                "db_path = \"{}\"\nadmin_token = \"{TOKEN}\"\n{tuning}[dev_ledger]\nblock_time_ms = 10\n",
                scratch.join("governance.db").display()
            );
            std::fs::write(&path, text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            path
        }
    };
    let mut node = Node::start(binary, &config_path, &scratch.join("node.log"))?;
    let result = drive(&node, anvil.is_some(), n);
    node.stop();
    result
}

fn drive(node: &Node, evm: bool, n: u64) -> Result<f64, String> {
    let destination = |i: u64| {
        if evm {
            format!("0x{:040x}", 0xbe_0000_u64 + i)
        } else {
            format!("bench-{i}")
        }
    };
    let began = Instant::now();
    for first in (0..n).step_by(500) {
        let items: Vec<String> = (first..(first + 500).min(n))
            .map(|i| {
                format!(
                    r#"{{"destination":"{}","amount":"{}"}}"#,
                    destination(i),
                    1 + i
                )
            })
            .collect();
        let body = format!(
            r#"{{"reason":"bench","disbursements":[{}]}}"#,
            items.join(",")
        );
        let answer = http::request(
            &node.address,
            "POST",
            "/admin/disbursements/batch",
            Some(TOKEN),
            Some(&body),
        )?;
        if answer.status != 201 {
            return Err(format!(
                "queueing a batch: HTTP {}: {}",
                answer.status, answer.body
            ));
        }
    }
    loop {
        let status = http::get(&node.address, "/status")?;
        let executed: u64 = crate::http::executed_total(&status)?;
        if executed >= n {
            return Ok(n as f64 / began.elapsed().as_secs_f64());
        }
        if began.elapsed() > Duration::from_secs(600) {
            return Err(format!("{executed} of {n} executed after 10 minutes"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
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
            figure: ns("throughput/queue_to_executed_5000/sled")
                .map(|v| format!("{:.0} /s", 5_000.0 / (v / 1e9))),
            target: ">= 20,000 /s",
        },
        Row {
            what: "executor: same, in-memory engine (the ceiling)",
            figure: ns("throughput/queue_to_executed_5000/memory")
                .map(|v| format!("{:.0} /s", 5_000.0 / (v / 1e9))),
            target: "",
        },
    ];
    let per_second = |bench: &str, n: f64| ns(bench).map(|v| n / (v / 1e9));
    let etcd = per_second("etcd_throughput/queue_to_executed_500/etcd", 500.0);
    let sled = per_second("etcd_throughput/queue_to_executed_500/sled", 500.0);
    rows.push(Row {
        what: "executor: queue -> Executed, 500 on etcd (3 local members)",
        figure: etcd.map(|v| format!("{v:.0} /s")),
        target: "",
    });
    rows.push(Row {
        what: "executor: same, 500 on sled, in the same run",
        figure: sled.map(|v| format!("{v:.0} /s")),
        target: "",
    });
    rows.push(Row {
        what: "executor: etcd / sled",
        figure: etcd.zip(sled).map(|(e, s)| format!("{:.3}x", e / s)),
        target: "",
    });
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
        target: "<= 1.5x",
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
        let bench = dir.join("throughput/queue_to_executed_5000/sled/new");
        std::fs::create_dir_all(&bench).expect("dir");
        std::fs::write(
            bench.join("estimates.json"),
            r#"{"mean":{"confidence_interval":{"lower_bound":1.0},"point_estimate":250000000.0,"standard_error":1.0},"median":{"point_estimate":7.0}}"#,
        )
        .expect("write");
        assert_eq!(
            mean_ns(&dir, "throughput/queue_to_executed_5000/sled"),
            Some(250_000_000.0)
        );
        let table = table(&dir);
        assert!(table.contains("20000 /s"), "{table}");
        assert!(table.contains("not run"), "{table}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
