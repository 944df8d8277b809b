//! `cargo xtask chaos`: exactly once under `kill -9`, against a real chain, optionally
//! misbehaving.
//!
//! anvil ← node (EVM ledger, a fresh database). Before the node starts, an ERC-20 token
//! (GRT, `contracts/build/StandardToken.json`) is deployed from anvil's account 1 and its
//! supply moved to the treasury; the node's `[[evm.tokens]]` names it. A queueing thread
//! sends M disbursements to distinct fresh addresses with distinct amounts, every third
//! one (`i % 3 == 1`) in GRT (`"asset": "GRT"`: the token's `transfer`), the others in
//! ether, spread over the crash phase, each with an external key so that a request whose
//! answer a kill swallowed can be sent again without queueing twice. Meanwhile the node is
//! killed with SIGKILL at a random moment 50–1500 ms after each start and restarted on the
//! same database, N times; after each restart no destination may hold more than its
//! amount of its asset, nor anything of the other. Then it runs undisturbed until every
//! disbursement is executed or cancelled and the executor holds for no operator. Last, the
//! store (`GET /admin/disbursements`, page by page) is compared with the chain: each
//! destination queued once, in its asset, and holding exactly its amount of it and none
//! of the other (more is a double payment), each executed disbursement's transaction in
//! the canonical chain, successful, in the block the store names, at least
//! `confirmations` deep, and paying what was queued (ether: the amount as value to the
//! destination; GRT: `transfer(destination, amount)` to the token, no value, and exactly
//! the log `Transfer(treasury, destination, amount)`), and the treasury's nonce equal to
//! the transactions that paid them (no gap, nothing extra).
//!
//! Without `--faults` anvil auto-mines (or mines every `--block-time` seconds), the node
//! talks to it directly and counts a payment at its first block. With `--faults` (see
//! [`faults`]) anvil mines only when a miner thread says so (every 250–400 ms), the node
//! talks to it through a fault proxy, waits for 3 confirmations and bumps fees, and a
//! fault thread drops the mempool, spikes the base fee, reorgs the last blocks and makes
//! the proxy's reads stale; the faults stop after the last restart (the blocks go on)
//! and the node must then settle everything.
//!
//! The delays come from xorshift generators seeded from one seed, which is printed;
//! `--seed` replays the same kill delays, fault schedule and block jitter (the node's
//! timing still varies from run to run).
//!
//! The files, in the order a drill uses them: [`options`] (the command line), [`drill`]
//! (anvil, the proxy and the node set up; the last line), [`phases`] (the threads of the
//! crash phase, then settling, then the comparison), [`rig`] and [`log`] (the node's files,
//! the drill's log), [`rng`] (the seeded delays), [`disbursements`] (what is queued, in
//! which asset), [`token`] (the ERC-20 deployed for it), [`queue`] and [`kill`] (the crash phase's two sides), [`faults`] (the chain
//! misbehaving), [`status`] and [`store`] (the node's `/status` and its disbursements),
//! [`settle`], [`rpc`] (reading anvil in batches), [`compare`] (the store against the
//! chain, the result table and the summary line) and [`json`].

mod compare;
mod disbursements;
mod drill;
mod faults;
pub(crate) mod json;
mod kill;
mod log;
mod options;
mod phases;
mod queue;
mod rig;
pub(crate) mod rng;
mod rpc;
mod settle;
mod status;
mod store;
mod token;

use std::ffi::OsString;

use crate::Error;

use self::options::{HEADER, Options, USAGE, parse_args};

pub fn about() -> String {
    let o = Options::validate();
    format!(
        "anvil + fault proxy + node killed {} times while paying {} (ether and an ERC-20), \
         under drops, fee spikes, reorgs, stale reads: each paid once, at depth",
        o.runs, o.disbursements
    )
}

pub fn main(args: &[OsString]) -> Result<(), Error> {
    match parse_args(args)? {
        Some(options) => drill::drill(&options).map_err(Error::Failed),
        None => {
            println!("cargo xtask chaos: {HEADER}\n\n{USAGE}");
            Ok(())
        }
    }
}

/// The drill `validate` runs: short, every fault on ([`Options::validate`]).
pub fn run() -> Result<(), String> {
    drill::drill(&Options::validate())
}
