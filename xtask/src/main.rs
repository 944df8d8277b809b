//! `cargo xtask` entry point: command-line dispatch, help text, and exit codes.
//!
//! Exit codes: 0 success, 1 a step or command failed, 2 usage error.

mod anvil;
mod bench;
mod cargo;
mod chaos;
mod etcd;
mod failover;
mod failover_pool;
mod flags;
mod fuzz;
mod ha;
mod http;
mod loom;
mod promtool;
mod scrape;
mod steps;
mod timeline;
mod tool;
mod validate;

use std::env;
use std::ffi::{OsStr, OsString};
use std::process::ExitCode;

/// Why a subcommand did not succeed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Error {
    /// Bad command line: unknown command, option or step name. Exit code 2.
    Usage(String),
    /// The command ran but something failed. Exit code 1.
    Failed(String),
}

fn main() -> ExitCode {
    let mut args = env::args_os().skip(1);
    let command = args.next();
    let rest: Vec<OsString> = args.collect();
    match dispatch(command.as_deref(), &rest) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::Usage(msg)) => {
            eprintln!("error: {msg}");
            eprintln!("Run `cargo xtask help` for usage.");
            ExitCode::from(2)
        }
        Err(Error::Failed(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Option<&OsStr>, rest: &[OsString]) -> Result<(), Error> {
    let Some(command) = command else {
        print_help();
        return Ok(());
    };
    match command.to_str() {
        Some("help" | "-h" | "--help") => {
            print_help();
            Ok(())
        }
        Some("validate") => validate::main(rest),
        Some("loom") => loom::main(rest),
        Some("bench") => bench::main(rest),
        Some("failover") => failover::main(rest),
        Some("chaos") => chaos::main(rest),
        Some("ha") => ha::main(rest),
        Some("fuzz") => fuzz::main(rest),
        _ => Err(Error::Usage(format!(
            "unknown command `{}`",
            command.to_string_lossy()
        ))),
    }
}

/// Parses `[-h | --help] [-- ARGS...]` for commands that forward arguments.
///
/// Returns the forwarded `ARGS`, or `None` when help was asked for.
pub(crate) fn trailing_args<'a>(
    command: &str,
    args: &'a [OsString],
) -> Result<Option<&'a [OsString]>, Error> {
    let Some((first, rest)) = args.split_first() else {
        return Ok(Some(&[]));
    };
    match first.to_str() {
        Some("--") => Ok(Some(rest)),
        Some("-h" | "--help") => Ok(None),
        _ => Err(Error::Usage(format!(
            "unexpected argument `{}` for `{command}` (put arguments for the binary after `--`)",
            first.to_string_lossy()
        ))),
    }
}

pub(crate) fn print_help() {
    let steps = validate::steps();
    let width = steps.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let step_lines: String = steps
        .iter()
        .map(|s| format!("    {:<width$}  {}\n", s.name, s.about))
        .collect();
    print!(
        "\
cargo xtask: project automation for this workspace

USAGE:
    cargo xtask <COMMAND> [OPTIONS]

COMMANDS:
    validate [--skip STEP]...  Run every validation step in order, continuing after
                               failures; print a summary table. Fails if any step failed.
                               Installs promtool (Debian's prometheus) if it is missing,
                               and before any step protoc (Debian's protobuf-compiler),
                               which building the etcd client needs: validate fails at
                               once if it cannot. The test step installs etcd (Debian's
                               etcd-server) if it is missing.
    loom [-- ARGS...]          Run the loom model-checking tests (release build,
                               RUSTFLAGS+=--cfg loom, built in loom/ under the target
                               directory: target/loom unless CARGO_TARGET_DIR is set).
                               ARGS are passed to the test binary.
    bench [-- ARGS...]         Run the governance benchmarks (circuit_breaker, executor)
                               and the executor on etcd (3 local members, beside sled),
                               then the node end to end (release build; dev ledger, and
                               anvil through one endpoint and through a pool of three),
                               and print one table of figures and targets.
                               ARGS go to the benches (e.g. a name filter); with ARGS
                               the node part is skipped.
    bench --node               Only the node end to end.
    failover [--endpoints 1|3] The failover drills against a real chain: anvil (installed
                               from npm into .tools/ if missing), fault proxies and the
                               node. One endpoint: cuts and restores it, checks the
                               breaker through /metrics and every payment on anvil
                               (failover-timeline.csv in the target directory). Three:
                               cuts one (the pool pays on, the executor's breaker sees
                               nothing), makes one serve stale reads, cuts all (the
                               breaker opens after 5 failed calls and closes with no
                               payment traffic once one is back)
                               (failover-endpoints-timeline.csv there). Both without
                               --endpoints.
    chaos [--runs N] [--disbursements M] [--block-time SECS] [--faults LIST] [--seed S]
                               Exactly once under kill -9: queues M (200) disbursements,
                               every third in an ERC-20 (GRT) it deploys, the rest in
                               ether, to anvil through the node while killing it with
                               SIGKILL at random moments and restarting it, N (5) times;
                               then checks every payment on anvil against the store.
                               anvil auto-mines unless --block-time. --faults
                               drops,fees,reorgs,stale (or all) makes the chain
                               misbehave meanwhile: blocks every 250-400 ms, mempool
                               drops, base-fee spikes, reorgs of 1-2 blocks, stale reads
                               through a fault proxy; the node waits for 3 confirmations
                               and bumps fees. Fails on a double payment or one in the
                               wrong asset (checked after every restart too), a
                               disbursement executed without its transaction canonical
                               at depth or not paying what was queued, a nonce gap or an
                               executor left halted. Prints the seed; --seed S replays
                               its kill delays and faults.
                               `--runs 200 --faults all` is the acceptance drill; validate
                               runs a short one (20 kills, 30 disbursements, all faults).
    ha [--short] [--runs N] [--seed S]
                               High availability on etcd: a 3-member etcd cluster (etcd
                               from PATH or ETCD_BIN), anvil and 3 nodes with store =
                               etcd (lease 3 s, tick 200 ms), each behind a fault proxy
                               counting its eth_sendRawTransaction calls. Queues 200 (40
                               with --short) disbursements through the nodes in turn,
                               standbys included, while, N (3; 1 with --short) times, it
                               kills the leader with SIGKILL (another node must lead and
                               pay within lease + 2 ticks + slack: the handover, printed)
                               and SIGSTOPs the next leader for lease + 2 s (another must
                               lead; resumed, it must stand by within 2 s and broadcast
                               nothing); then kills one etcd member (payments go on) and
                               restarts everything (one node leads, pays the rest). Fails
                               unless every destination holds exactly its amount, the
                               treasury's nonce equals the disbursements executed, each is
                               executed in the store and has its queue audit record.
                               Prints handover times (min / median / max) and the wall time.
                               Installs etcd (Debian's etcd-server) if it is missing.
                               validate runs --short; `--runs 20` is the long run.
    fuzz [--seconds S] [TARGET...]
                               Run the fuzz targets in fuzz/ (cargo-fuzz, installed if
                               missing; no sanitizer, stable toolchain), each for S (10)
                               seconds; all of them unless TARGETs are named. Fails with
                               the crashing input's path and the command to reproduce it.
    help                       Print this help (also: -h, --help, no command).

Building the etcd client (its build script) needs protoc on PATH or in PROTOC. Only validate
installs it, into /usr/bin, where later bench, failover, chaos, ha and fuzz builds find it.

OPTIONS (validate):
    --skip STEP, --skip=STEP   Do not run STEP. May be repeated.

VALIDATE STEPS (in order):
{step_lines}
ENVIRONMENT:
    CARGO                  cargo binary to run (set by cargo; default: `cargo`)
    RUSTFLAGS              loom appends `--cfg loom` to it
    LOOM_MAX_PREEMPTIONS   loom preemption bound (default: 3)
    CARGO_TARGET_DIR       where cargo builds (default: target/, or build.target-dir in a
                           cargo config; the xtasks ask `cargo metadata`); the failover,
                           chaos, ha and bench xtasks run the node binary from there and
                           write their scratch directories and timelines there
    ANVIL_BIN              anvil binary for the failover, chaos and ha steps and the node's EVM tests
                           (default: .tools/npm/.../bin/anvil, installed with npm if missing)
    ETCD_BIN               etcd binary for the etcd tests, the ha drill and the etcd bench (default: `etcd` on
                           PATH; when it is missing, the test and ha steps and bench run `apt-get
                           install etcd-server`, which needs root)
    PROTOC                 protoc binary for building the etcd client (default: `protoc` on
                           PATH; when it is missing, validate runs `apt-get install
                           protobuf-compiler` first, which needs root)
    PROMTOOL               promtool binary for the promtool step (default: `promtool` on
                           PATH; when it is missing, `apt-get install prometheus` installs it,
                           which needs root and also installs the Prometheus server)

EXIT STATUS:
    0 success, 1 a step or command failed, 2 usage error
"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn trailing_args_forwards_after_double_dash() {
        let args = os(&["--", "--nocapture", "x"]);
        assert_eq!(trailing_args("loom", &args), Ok(Some(&args[1..])));
        assert_eq!(trailing_args("loom", &[]), Ok(Some(&[][..])));
        assert_eq!(trailing_args("loom", &os(&["--help"])), Ok(None));
        assert!(matches!(
            trailing_args("loom", &os(&["--nocapture"])),
            Err(Error::Usage(_))
        ));
    }

    #[test]
    fn unknown_command_is_a_usage_error() {
        assert!(matches!(
            dispatch(Some(OsStr::new("frobnicate")), &[]),
            Err(Error::Usage(_))
        ));
    }
}
