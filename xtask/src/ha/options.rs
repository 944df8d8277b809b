//! The command line of `cargo xtask ha`: its options and their defaults, the short drill
//! `validate` runs, the usage text, and the parser.

use std::ffi::OsString;

use crate::{Error, flags};

/// The command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Options {
    /// Kill -9 / SIGSTOP cycles.
    pub(super) runs: u64,
    /// Disbursements queued, each to a fresh address.
    pub(super) disbursements: u64,
    pub(super) seed: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            runs: 3,
            disbursements: 200,
            seed: None,
        }
    }
}

impl Options {
    /// `--short`, what `cargo xtask validate` runs: 40 disbursements, one kill -9 of the
    /// leader, one SIGSTOP, one etcd member killed, everything restarted.
    pub(super) fn short() -> Self {
        Self {
            runs: 1,
            disbursements: 40,
            seed: None,
        }
    }
}

pub(super) const HEADER: &str =
    "high availability on etcd: 3 etcd members, anvil, 3 nodes; the leader killed and frozen";

pub(super) const USAGE: &str = "\
cargo xtask ha [--short] [--runs N] [--seed S]

    --short      the short drill `cargo xtask validate` runs: 40 disbursements, one kill -9
                 and one SIGSTOP (--runs may still set the cycles)
    --runs N     the kill -9 / SIGSTOP cycle, N times (default 3; 1 with --short)
    --seed S     replay the delays of an earlier run and the etcd member it killed
                 (default: from the clock)

A 3-member etcd cluster (etcd from PATH or ETCD_BIN), anvil (auto-mining) and three nodes
(store = \"etcd\", ledger = \"evm\", one treasury key, lease_ttl_secs = 3,
poll_interval_ms = 200), each talking to anvil through its own fault proxy that counts
its eth_sendRawTransaction calls. It queues 200 disbursements (40 with --short) to fresh
addresses through the nodes in turn, standbys included, while, N times:
  kill -9 the leader: another node must lead and pay within the lease TTL + 2 ticks +
    slack (the handover, printed); the killed node is started again;
  SIGSTOP the new leader for TTL + 2 s: another node must lead meanwhile; SIGCONT: the
    resumed node must stand by within 2 s and broadcast nothing after it resumed;
then kill -9 one etcd member (payments must go on), and last stop every node (SIGTERM),
restart the member and the nodes: one must lead, and pay the rest.
Checks at the end: every destination holds exactly its amount on anvil (paid once), the
treasury's nonce equals the disbursements executed, every disbursement is executed in the
store, and the audit log holds one queue record for each. Prints the handover times
(min / median / max) and the faults injected. `--runs 20` is the long run.";

/// Parses the options; `None` when help was asked for.
pub(super) fn parse_args(args: &[OsString]) -> Result<Option<Options>, Error> {
    let mut short = false;
    let mut runs = None;
    let mut seed = None;
    let mut args = args.iter().map(|a| a.to_string_lossy());
    while let Some(arg) = args.next() {
        match arg.as_ref() {
            "-h" | "--help" => return Ok(None),
            "--short" => {
                short = true;
                continue;
            }
            _ => {}
        }
        let (name, value) = flags::valued(&arg, &mut args, &["--runs", "--seed"], "ha")?;
        let number = |min, max| flags::integer(&name, &value, min, max);
        if name == "--runs" {
            runs = Some(number(1, 1_000)?);
        } else {
            seed = Some(number(0, u64::MAX)?);
        }
    }
    let mut options = if short {
        Options::short()
    } else {
        Options::default()
    };
    if let Some(runs) = runs {
        options.runs = runs;
    }
    options.seed = seed;
    Ok(Some(options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Options>, Error> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse_args(&args)
    }

    #[test]
    fn options_in_both_spellings_and_bad_ones_refused() {
        assert_eq!(parse(&[]), Ok(Some(Options::default())));
        assert_eq!(parse(&["--short"]), Ok(Some(Options::short())));
        assert_eq!(
            parse(&["--runs", "20", "--seed=7"]),
            Ok(Some(Options {
                runs: 20,
                disbursements: 200,
                seed: Some(7),
            }))
        );
        assert_eq!(
            parse(&["--runs=2", "--short"]),
            Ok(Some(Options {
                runs: 2,
                disbursements: 40,
                seed: None,
            }))
        );
        assert_eq!(parse(&["--help"]), Ok(None));
        for bad in [
            &["--runs"][..],
            &["--runs", "0"],
            &["--runs", "-1"],
            &["--seed", "x"],
            &["--short=1"],
            &["--fast"],
        ] {
            assert!(matches!(parse(bad), Err(Error::Usage(_))), "{bad:?}");
        }
    }

    #[test]
    fn the_short_drill_is_short() {
        let short = Options::short();
        assert_eq!((short.runs, short.disbursements), (1, 40));
        assert_eq!(Options::default().disbursements, 200);
    }
}
