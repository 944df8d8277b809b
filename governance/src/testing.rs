//! A scriptable in-memory ledger for tests, with fault injection. Compiled only with the
//! `test-support` feature (this crate's tests turn it on; the node's tests may too).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::executor::{Ledger, LedgerError, SignedTx, TxStatus};
use crate::treasury::Disbursement;

/// What the next submission meets instead of a healthy ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Refused before the ledger saw it.
    Fail(LedgerError),
    /// The ledger accepted it, but the answer was lost (a timeout after acceptance).
    AcceptThenFail(LedgerError),
}

/// One payment the ledger made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// The disbursement it paid.
    pub id: u64,
    /// Where.
    pub destination: String,
    /// How much.
    pub amount: u128,
    /// Its nonce.
    pub nonce: u64,
    /// Its hash.
    pub tx_hash: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Body {
    id: u64,
    destination: String,
    amount: u128,
    nonce: u64,
}

#[derive(Debug)]
struct State {
    epoch: u64,
    balance: u128,
    next_nonce: u64,
    block: u64,
    included: HashMap<String, u64>,
    /// Included but failed: the nonce spent, nothing paid.
    reverted: HashMap<String, u64>,
    payments: Vec<Payment>,
    faults: VecDeque<Fault>,
    down: Option<LedgerError>,
    reads_down: Option<LedgerError>,
    reads: u64,
    signing_error: Option<String>,
    attempts: u64,
}

/// An in-memory ledger: a balance, strict nonces, dedupe by hash, one block per accepted
/// transaction, and faults on demand. Destinations starting with `invalid` are refused
/// at submission, those starting with `unsignable` already at signing; those starting
/// with `reverting` are mined but revert (the nonce is spent, nothing is paid).
#[derive(Debug)]
pub struct ScriptedLedger {
    state: Mutex<State>,
}

impl Default for ScriptedLedger {
    fn default() -> Self {
        Self::new(u128::MAX)
    }
}

impl ScriptedLedger {
    /// A ledger whose treasury holds `balance`.
    pub fn new(balance: u128) -> ScriptedLedger {
        ScriptedLedger {
            state: Mutex::new(State {
                epoch: 0,
                balance,
                next_nonce: 0,
                block: 0,
                included: HashMap::new(),
                reverted: HashMap::new(),
                payments: vec![],
                faults: VecDeque::new(),
                down: None,
                reads_down: None,
                reads: 0,
                signing_error: None,
                attempts: 0,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding it has failed already; carry on with the data.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues faults for the next submissions, in order.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state().faults.extend(faults);
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    /// Makes the next `n` submissions fail with `error`.
    pub fn fail_next(&self, n: usize, error: LedgerError) {
        self.push_faults(std::iter::repeat_n(Fault::Fail(error), n));
    }

    /// Every submission fails with `error` until [`up`](Self::up).
    pub fn down(&self, error: LedgerError) {
        self.state().down = Some(error);
    }

    /// Ends an outage.
    pub fn up(&self) {
        self.state().down = None;
    }

    /// Makes signing fail (a bad key) until called with `None`.
    pub fn fail_signing(&self, reason: Option<&str>) {
        self.state().signing_error = reason.map(str::to_owned);
    }

    /// Sets the epoch.
    pub fn set_epoch(&self, epoch: u64) {
        self.state().epoch = epoch;
    }

    /// Sets the treasury's balance.
    pub fn set_balance(&self, balance: u128) {
        self.state().balance = balance;
    }

    /// Uses up a nonce with a transaction the executor did not make.
    pub fn consume_nonce(&self) {
        self.state().next_nonce += 1;
    }

    /// Every payment made, in order.
    pub fn payments(&self) -> Vec<Payment> {
        self.state().payments.clone()
    }

    /// Submissions attempted (including failed ones).
    pub fn attempts(&self) -> u64 {
        self.state().attempts
    }

    /// Makes every call but `submit` (epoch, nonce, lookup, sign) fail with `error`, as
    /// an endpoint that is down fails them; `None` heals them.
    pub fn reads_down(&self, error: Option<LedgerError>) {
        self.state().reads_down = error;
    }

    /// Calls other than `submit` made so far, failed ones included.
    pub fn reads(&self) -> u64 {
        self.state().reads
    }

    /// The treasury's balance.
    pub fn balance(&self) -> u128 {
        self.state().balance
    }
}

/// A deterministic 64-bit FNV-1a hash, hex: the "transaction hash".
fn fnv_hex(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("0x{hash:016x}")
}

impl ScriptedLedger {
    /// Counts a call other than `submit`, and fails it while reads are down.
    fn read(&self) -> Result<MutexGuard<'_, State>, LedgerError> {
        let mut state = self.state();
        state.reads += 1;
        match &state.reads_down {
            Some(error) => Err(error.clone()),
            None => Ok(state),
        }
    }
}

impl Ledger for ScriptedLedger {
    fn current_epoch(&self) -> Result<u64, LedgerError> {
        Ok(self.read()?.epoch)
    }

    fn next_nonce(&self) -> Result<u64, LedgerError> {
        Ok(self.read()?.next_nonce)
    }

    fn sign(&self, disbursement: &Disbursement, nonce: u64) -> Result<SignedTx, LedgerError> {
        if let Some(reason) = &self.read()?.signing_error {
            return Err(LedgerError::Signing(reason.clone()));
        }
        if disbursement.destination.starts_with("unsignable") {
            return Err(LedgerError::InvalidDestination(
                disbursement.destination.clone(),
            ));
        }
        let body = Body {
            id: disbursement.id,
            destination: disbursement.destination.clone(),
            amount: disbursement.amount,
            nonce,
        };
        let bytes = serde_json::to_vec(&body).map_err(|e| LedgerError::Signing(e.to_string()))?;
        Ok(SignedTx {
            tx_hash: fnv_hex(&bytes),
            bytes,
        })
    }

    fn submit(&self, tx: &SignedTx) -> Result<(), LedgerError> {
        let mut state = self.state();
        state.attempts += 1;
        let mut lose_answer = None;
        match state.faults.pop_front() {
            Some(Fault::Fail(error)) => return Err(error),
            Some(Fault::AcceptThenFail(error)) => lose_answer = Some(error),
            None => {}
        }
        if let Some(error) = &state.down {
            return Err(error.clone());
        }
        let body: Body =
            serde_json::from_slice(&tx.bytes).map_err(|e| LedgerError::Rejected(e.to_string()))?;
        if state.included.contains_key(&tx.tx_hash) || state.reverted.contains_key(&tx.tx_hash) {
            return Err(LedgerError::AlreadyKnown);
        }
        if body.nonce < state.next_nonce {
            return Err(LedgerError::NonceTooLow);
        }
        if body.nonce > state.next_nonce {
            return Err(LedgerError::Rejected(format!(
                "nonce gap: expected {}, got {}",
                state.next_nonce, body.nonce
            )));
        }
        if body.destination.starts_with("invalid") {
            return Err(LedgerError::InvalidDestination(body.destination));
        }
        if body.destination.starts_with("reverting") {
            // Mined, nonce spent, and failed: nothing moves.
            state.next_nonce += 1;
            state.block += 1;
            let block = state.block;
            state.reverted.insert(tx.tx_hash.clone(), block);
            return match lose_answer {
                Some(error) => Err(error),
                None => Ok(()),
            };
        }
        if body.amount > state.balance {
            return Err(LedgerError::InsufficientBalance);
        }
        state.balance -= body.amount;
        state.next_nonce += 1;
        state.block += 1;
        let block = state.block;
        state.included.insert(tx.tx_hash.clone(), block);
        state.payments.push(Payment {
            id: body.id,
            destination: body.destination,
            amount: body.amount,
            nonce: body.nonce,
            tx_hash: tx.tx_hash.clone(),
        });
        match lose_answer {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn lookup(&self, tx_hash: &str) -> Result<TxStatus, LedgerError> {
        let state = self.read()?;
        Ok(match state.included.get(tx_hash) {
            Some(&block) => TxStatus::Included { block },
            None => match state.reverted.get(tx_hash) {
                Some(&block) => TxStatus::Reverted { block },
                None => TxStatus::Unknown,
            },
        })
    }
}
