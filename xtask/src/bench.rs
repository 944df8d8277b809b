//! `cargo xtask bench`: the governance crate's benchmarks (breaker, executor), in one run.

use std::ffi::OsString;

use crate::Error;
use crate::cargo::CargoCommand;

pub fn main(args: &[OsString]) -> Result<(), Error> {
    let Some(extra) = crate::trailing_args("bench", args)? else {
        crate::print_help();
        return Ok(());
    };
    let mut command = CargoCommand::new("bench", &["bench", "-p", "governance"]);
    if !extra.is_empty() {
        command = command.args(["--"]).args(extra);
    }
    command.run().map_err(Error::Failed)
}
