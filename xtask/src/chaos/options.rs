//! The command line of `cargo xtask chaos`: its options and their defaults, the drill
//! `validate` runs, the usage text, and the parser.

use std::ffi::OsString;

use super::faults::Faults;
use crate::{Error, flags};

/// The command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Options {
    pub(super) runs: u64,
    pub(super) disbursements: u64,
    pub(super) block_time: Option<u64>,
    pub(super) seed: Option<u64>,
    pub(super) faults: Faults,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            runs: 5,
            disbursements: 200,
            block_time: None,
            seed: None,
            faults: Faults::NONE,
        }
    }
}

impl Options {
    /// What `cargo xtask validate` runs: a short drill with every fault, so that CI
    /// exercises them (under a minute once the node is built). 20 kills make a crash phase
    /// of about 16 s, which holds 4 to 8 faults: in rounds, so that 4 cover every kind.
    pub(super) fn validate() -> Self {
        Self {
            runs: 20,
            disbursements: 30,
            faults: Faults::ALL,
            ..Self::default()
        }
    }
}

pub(super) const HEADER: &str = "exactly once under kill -9, against anvil, optionally misbehaving";

pub(super) const USAGE: &str = "\
cargo xtask chaos [--runs N] [--disbursements M] [--block-time SECS] [--faults LIST] [--seed S]

    --runs N            kill -9 and restart the node N times (default 5)
    --disbursements M   queue M disbursements to fresh addresses (default 200); every
                        third pays GRT, an ERC-20 the drill deploys, the others ether
    --block-time SECS   anvil mines a block every SECS seconds (default: one per transaction;
                        not with --faults, which mines by itself)
    --faults LIST       make the chain misbehave meanwhile (default: none); LIST is
                        comma-separated, or `all` (or `none`):
                          drops   anvil_dropAllTransactions (the mempool forgets)
                          fees    base fee 20-80 gwei for the next 3-8 blocks
                          reorgs  anvil_reorg of the last 1 or 2 blocks (never a block
                                  already 3 deep)
                          stale   lookups by hash answered null for 2-8 s (fault proxy)
                        One every 1-4 s; anvil then runs with --no-mining and a block comes
                        every 250-400 ms, the node waits for 3 confirmations and bumps fees.
                        The faults stop after the last restart; then everything must settle.
    --seed S            replay the kill delays (and faults, and block jitter) of an earlier
                        run (default: from the clock)

Checks, at the end: no destination paid twice or in the wrong asset (each holds exactly
its amount, ether or GRT, and none of the other), no disbursement executed without its
transaction in the canonical chain at depth paying what was queued, the treasury's nonce
exactly the payments, no executor halted; and after every restart, no destination
holding more than its amount, or any of the other asset.
`cargo xtask chaos --runs 200 --faults all` is issue 10's acceptance drill.";

/// Parses the options; `None` when help was asked for.
pub(super) fn parse_args(args: &[OsString]) -> Result<Option<Options>, Error> {
    let mut options = Options::default();
    let mut args = args.iter().map(|a| a.to_string_lossy());
    while let Some(arg) = args.next() {
        if matches!(arg.as_ref(), "-h" | "--help") {
            return Ok(None);
        }
        let (name, value) = flags::valued(
            &arg,
            &mut args,
            &[
                "--runs",
                "--disbursements",
                "--block-time",
                "--seed",
                "--faults",
            ],
            "chaos",
        )?;
        let number = |min, max| flags::integer(&name, &value, min, max);
        match name.as_str() {
            "--runs" => options.runs = number(0, 100_000)?,
            "--disbursements" => options.disbursements = number(1, 100_000)?,
            "--block-time" => options.block_time = Some(number(1, 60)?),
            "--faults" => {
                options.faults =
                    Faults::parse(&value).map_err(|e| Error::Usage(format!("`--faults`: {e}")))?;
            }
            _ => options.seed = Some(number(0, u64::MAX)?),
        }
    }
    if options.block_time.is_some() && !options.faults.is_empty() {
        return Err(Error::Usage(
            "`--block-time` is for the drill without faults: `--faults` mines a block every \
             250-400 ms by itself"
                .into(),
        ));
    }
    Ok(Some(options))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::about;

    fn parse(args: &[&str]) -> Result<Option<Options>, Error> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse_args(&args)
    }

    #[test]
    fn options_in_both_spellings_and_bad_ones_refused() {
        assert_eq!(parse(&[]), Ok(Some(Options::default())));
        assert_eq!(
            parse(&[
                "--runs",
                "200",
                "--disbursements=10",
                "--block-time",
                "1",
                "--seed=7"
            ]),
            Ok(Some(Options {
                runs: 200,
                disbursements: 10,
                block_time: Some(1),
                seed: Some(7),
                faults: Faults::NONE,
            }))
        );
        assert_eq!(parse(&["--help"]), Ok(None));
        for bad in [
            &["--runs"][..],
            &["--runs", "-1"],
            &["--disbursements", "0"],
            &["--block-time", "0"],
            &["--seed", "x"],
            &["--fast"],
            &["--faults"],
            &["--faults", ""],
            &["--faults", "drops,"],
            &["--faults=quakes"],
            &["--faults", "all", "--block-time", "2"],
        ] {
            assert!(matches!(parse(bad), Err(Error::Usage(_))), "{bad:?}");
        }
    }

    #[test]
    fn faults_are_off_by_default_and_named_or_all() {
        let faults = |args: &[&str]| parse(args).map(|o| o.map(|o| o.faults));
        assert_eq!(faults(&[]), Ok(Some(Faults::NONE)));
        assert_eq!(faults(&["--faults", "all"]), Ok(Some(Faults::ALL)));
        assert_eq!(faults(&["--faults=none"]), Ok(Some(Faults::NONE)));
        assert_eq!(
            faults(&["--faults", "reorgs,stale"]).map(|f| f.map(|f| f.to_string())),
            Ok(Some("reorgs,stale".to_owned()))
        );
        assert_eq!(
            parse(&["--runs", "200", "--faults", "all"]),
            Ok(Some(Options {
                runs: 200,
                faults: Faults::ALL,
                ..Options::default()
            }))
        );
        let validate = Options::validate();
        assert_eq!(
            validate.faults,
            Faults::ALL,
            "validate exercises every fault"
        );
        assert!(
            validate.runs <= 20 && validate.disbursements <= 30,
            "and stays short"
        );
        assert!(about().contains(&format!("killed {} times", validate.runs)));
    }
}
