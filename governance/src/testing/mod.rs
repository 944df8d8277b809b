//! A scriptable in-memory ledger for tests, with fault injection. Compiled only with the
//! `test-support` feature (this crate's tests turn it on; the node's tests may too).
//!
//! By default it behaves as the instant-mining chain the first tests were written for:
//! every accepted transaction is mined at once in a block of its own, there is no fee
//! market, and lookups see everything. Each real-chain fault can be switched on: manual
//! mining ([`set_auto_mine`](ScriptedLedger::set_auto_mine)), a base fee
//! ([`set_base_fee`](ScriptedLedger::set_base_fee)), mempool evictions
//! ([`drop_pool`](ScriptedLedger::drop_pool)), reorgs ([`reorg`](ScriptedLedger::reorg)),
//! lookups that lag ([`stale_lookups`](ScriptedLedger::stale_lookups)), another sender on
//! the key ([`consume_nonce`](ScriptedLedger::consume_nonce)). The model is in `chain.rs`.

mod chain;

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use crate::ledger::{
    AttemptKind, Fees, Head, Ledger, LedgerError, SignRequest, SignedTx, TxStatus,
};

use chain::{Body, Chain, GAS, Refusal, Tx, fnv_hex};

/// What the next submission meets instead of a healthy ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Nothing: the submission goes through (to place later faults).
    Pass,
    /// Refused before the ledger saw it.
    Fail(LedgerError),
    /// The ledger took it (as a healthy one would), but the answer was lost and this
    /// error came back instead (a timeout after acceptance, a dropped connection).
    AcceptThenFail(LedgerError),
}

/// One payment the chain made.
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
    /// Its block.
    pub block: u64,
}

/// One transaction the ledger took into its pool (or straight into a block).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// The disbursement it is for.
    pub id: u64,
    /// What it does.
    pub kind: AttemptKind,
    /// Its nonce.
    pub nonce: u64,
    /// Its hash.
    pub tx_hash: String,
}

#[derive(Debug)]
struct State {
    chain_id: String,
    epoch: u64,
    chain: Chain,
    auto_mine: bool,
    /// Fee caps of the signer (a replacement needing more is `FeeCapReached`).
    fee_cap: u128,
    tip_cap: u128,
    /// The tip a fresh quote offers.
    tip: u128,
    /// Lookups answer `Unknown` for transactions mined in the last this many blocks.
    lookup_lag: u64,
    /// Lookups answer `Unknown` for everything (a read backend far behind).
    stale_lookups: bool,
    /// `finalized` is the head less this.
    finality_lag: u64,
    taken: Vec<Taken>,
    faults: VecDeque<Fault>,
    down: Option<LedgerError>,
    reads_down: Option<LedgerError>,
    /// Reads left to answer before `reads_down` takes this error.
    reads_down_after: Option<(u64, LedgerError)>,
    /// Reads left before a block is mined, mid-tick.
    mine_after: Option<u64>,
    /// `submit_batch` answers every transaction (one exchange), not only up to the first
    /// that is not accepted.
    whole_batches: bool,
    reads: u64,
    signing_error: Option<String>,
    attempts: u64,
    foreign: u64,
    /// Token balances by symbol: the assets it pays besides the coin.
    tokens: std::collections::BTreeMap<String, u128>,
}

/// An in-memory chain and mempool with the rules of a real node and faults on demand.
/// Destinations starting with `invalid` are refused at submission, those starting with
/// `unsignable` already at signing; those starting with `reverting` are mined but revert
/// (the nonce is spent, nothing is paid).
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
                chain_id: "scripted-1".into(),
                epoch: 0,
                chain: Chain::new(balance),
                auto_mine: true,
                fee_cap: u128::MAX,
                tip_cap: u128::MAX,
                tip: 1,
                lookup_lag: 0,
                stale_lookups: false,
                finality_lag: 0,
                taken: vec![],
                faults: VecDeque::new(),
                down: None,
                reads_down: None,
                reads_down_after: None,
                mine_after: None,
                whole_batches: false,
                reads: 0,
                signing_error: None,
                attempts: 0,
                foreign: 0,
                tokens: std::collections::BTreeMap::new(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding it has failed already; carry on with the data.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Pays the token `symbol` too, the treasury holding `balance` of it. (Its payouts
    /// are signed and mined like the coin's; only the balance read before signing is the
    /// token's.)
    pub fn set_token_balance(&self, symbol: &str, balance: u128) {
        self.state().tokens.insert(symbol.to_owned(), balance);
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

    /// Sets the treasury's balance now (as a top-up or a withdrawal would).
    pub fn set_balance(&self, balance: u128) {
        let mut state = self.state();
        let paid = state.chain.paid();
        state.chain.initial_balance = balance.saturating_add(paid);
    }

    /// The treasury's balance at the head.
    pub fn treasury_balance(&self) -> u128 {
        self.state().chain.balance()
    }

    /// Another sender uses the treasury's key: its transaction takes the next nonce, in a
    /// block of its own, at once (ours at that nonce leaves the pool).
    pub fn consume_nonce(&self) {
        let mut state = self.state();
        let nonce = state.chain.nonce();
        state.foreign += 1;
        let body = Body {
            id: u64::MAX,
            kind: AttemptKind::Cancellation,
            destination: "stranger".into(),
            amount: 0,
            nonce,
            max_fee: u128::MAX,
            tip: u128::MAX,
            foreign: true,
        };
        let bytes = serde_json::to_vec(&(&body, state.foreign)).unwrap_or_default();
        let tx = Tx {
            hash: fnv_hex(&bytes),
            body,
        };
        state.chain.pool.insert(nonce, tx);
        state.chain.mine(true);
    }

    /// Every payment in the chain, in order.
    pub fn payments(&self) -> Vec<Payment> {
        let state = self.state();
        state
            .chain
            .blocks
            .iter()
            .flat_map(|block| block.txs.iter().map(move |tx| (block.number, tx)))
            .filter(|(_, (tx, reverted))| {
                !reverted && !tx.body.foreign && tx.body.kind == AttemptKind::Payment
            })
            .map(|(block, (tx, _))| Payment {
                id: tx.body.id,
                destination: tx.body.destination.clone(),
                amount: tx.body.amount,
                nonce: tx.body.nonce,
                tx_hash: tx.hash.clone(),
                block,
            })
            .collect()
    }

    /// Every transaction the ledger ever took (into its pool or a block), in order.
    pub fn taken(&self) -> Vec<Taken> {
        self.state().taken.clone()
    }

    /// Submissions attempted (including failed ones).
    pub fn attempts(&self) -> u64 {
        self.state().attempts
    }

    /// Makes every call but `submit` fail with `error`, as an endpoint that is down
    /// fails them; `None` heals them.
    pub fn reads_down(&self, error: Option<LedgerError>) {
        self.state().reads_down = error;
    }

    /// Lets the next `reads` calls other than `submit` through, then fails every later
    /// one with `error` (as [`reads_down`](Self::reads_down)), to fail one call mid-tick.
    pub fn reads_down_after(&self, reads: u64, error: LedgerError) {
        self.state().reads_down_after = Some((reads, error));
    }

    /// `true`: a batch of submissions is answered whole, as a JSON-RPC batch is (each
    /// transaction gets its answer, whatever the ones before it got); `false` (the
    /// default): one by one, stopping after the first not accepted.
    pub fn answer_whole_batches(&self, on: bool) {
        self.state().whole_batches = on;
    }

    /// Mines one block from the pool after the next `reads` calls other than `submit`: the
    /// chain moving on while a tick runs (a busy chain between the tick's head read and
    /// its lookups).
    pub fn mine_after_reads(&self, reads: u64) {
        self.state().mine_after = Some(reads);
    }

    /// Calls other than `submit` made so far, failed ones included.
    pub fn reads(&self) -> u64 {
        self.state().reads
    }

    /// `true`: every accepted transaction is mined at once (the default). `false`: only
    /// [`mine`](Self::mine) makes blocks.
    pub fn set_auto_mine(&self, on: bool) {
        self.state().auto_mine = on;
    }

    /// Mines one block (possibly empty) from the pool.
    pub fn mine(&self) {
        self.state().chain.mine(true);
    }

    /// The head's number.
    pub fn height(&self) -> u64 {
        self.state().chain.head().number
    }

    /// Drops the last `depth` blocks; their transactions go back to the pool, or are lost
    /// with `lose`.
    pub fn reorg(&self, depth: u64, lose: bool) {
        self.state().chain.reorg(depth, lose);
    }

    /// Empties the pool, as a node that evicts (or restarts) does.
    pub fn drop_pool(&self) {
        self.state().chain.pool.clear();
    }

    /// Transactions in the pool.
    pub fn pool_size(&self) -> usize {
        self.state().chain.pool.len()
    }

    /// Sets the base fee (`None`: no fee market; fees are then zero).
    pub fn set_base_fee(&self, base_fee: Option<u128>) {
        self.state().chain.base_fee = base_fee;
    }

    /// Miners skip transactions tipping less than `tip` (a congested chain); they stay
    /// pending.
    pub fn set_min_tip(&self, tip: u128) {
        self.state().chain.min_tip = tip;
    }

    /// Caps what the signer may offer (a replacement needing more is `FeeCapReached`).
    pub fn set_fee_caps(&self, max_fee: u128, tip: u128) {
        let mut state = self.state();
        state.fee_cap = max_fee;
        state.tip_cap = tip;
    }

    /// Lookups miss transactions mined in the last `blocks` blocks (a lagging read
    /// backend).
    pub fn set_lookup_lag(&self, blocks: u64) {
        self.state().lookup_lag = blocks;
    }

    /// `true`: every lookup answers `Unknown` (a read backend far behind).
    pub fn stale_lookups(&self, on: bool) {
        self.state().stale_lookups = on;
    }

    /// `finalized` trails the head by `blocks`.
    pub fn set_finality_lag(&self, blocks: u64) {
        self.state().finality_lag = blocks;
    }

    /// Reports another chain id (as an endpoint repointed at another network would).
    pub fn set_chain_id(&self, chain_id: &str) {
        self.state().chain_id = chain_id.to_owned();
    }
}

impl ScriptedLedger {
    /// Counts a call other than `submit`, and fails it while reads are down.
    fn read(&self) -> Result<MutexGuard<'_, State>, LedgerError> {
        let mut state = self.state();
        state.reads += 1;
        if let Some(left) = state.mine_after.take() {
            match left.checked_sub(1) {
                Some(left) => state.mine_after = Some(left),
                None => {
                    state.chain.mine(true);
                }
            }
        }
        if let Some((left, error)) = state.reads_down_after.take() {
            match left.checked_sub(1) {
                Some(left) => state.reads_down_after = Some((left, error)),
                None => state.reads_down = Some(error),
            }
        }
        match &state.reads_down {
            Some(error) => Err(error.clone()),
            None => Ok(state),
        }
    }
}

impl Ledger for ScriptedLedger {
    fn submit_batch(&self, txs: &[SignedTx]) -> Vec<Result<(), LedgerError>> {
        if !self.state().whole_batches {
            return crate::ledger::submit_one_by_one(self, txs);
        }
        txs.iter().map(|tx| self.submit(tx)).collect()
    }

    fn chain_id(&self) -> Result<String, LedgerError> {
        Ok(self.read()?.chain_id.clone())
    }

    fn head(&self) -> Result<Head, LedgerError> {
        let state = self.read()?;
        let head = state.chain.head();
        Ok(Head {
            number: head.number,
            hash: head.hash.clone(),
            base_fee: state.chain.base_fee,
            epoch: state.epoch,
        })
    }

    fn finalized(&self) -> Result<Option<u64>, LedgerError> {
        let state = self.read()?;
        // The genesis block is final from the start.
        Ok(Some(
            state.chain.head().number.saturating_sub(state.finality_lag),
        ))
    }

    fn block_hash(&self, number: u64) -> Result<Option<String>, LedgerError> {
        let state = self.read()?;
        Ok(usize::try_from(number)
            .ok()
            .and_then(|at| state.chain.blocks.get(at))
            .map(|block| block.hash.clone()))
    }

    fn next_nonce(&self) -> Result<u64, LedgerError> {
        Ok(self.read()?.chain.pending_nonce())
    }

    fn nonce_at(&self, block: u64) -> Result<u64, LedgerError> {
        Ok(self.read()?.chain.nonce_at(block))
    }

    fn balance(&self) -> Result<u128, LedgerError> {
        Ok(self.read()?.chain.balance())
    }

    fn validate_asset(&self, asset: &str) -> Result<(), String> {
        if asset == crate::policy::NATIVE || self.state().tokens.contains_key(asset) {
            Ok(())
        } else {
            Err(format!("unknown asset {asset:?}"))
        }
    }

    fn asset_balance(&self, asset: &str) -> Result<u128, LedgerError> {
        if asset == crate::policy::NATIVE {
            return self.balance();
        }
        let state = self.read()?;
        state
            .tokens
            .get(asset)
            .copied()
            .ok_or_else(|| LedgerError::Other(format!("no token {asset:?}")))
    }

    fn treasury_transaction(&self, block: u64, nonce: u64) -> Result<Option<String>, LedgerError> {
        let state = self.read()?;
        Ok(usize::try_from(block)
            .ok()
            .and_then(|at| state.chain.blocks.get(at))
            .and_then(|block| block.txs.iter().find(|(tx, _)| tx.body.nonce == nonce))
            .map(|(tx, _)| tx.hash.clone()))
    }

    fn sign(&self, request: &SignRequest<'_>) -> Result<SignedTx, LedgerError> {
        let state = self.read()?;
        if let Some(reason) = &state.signing_error {
            return Err(LedgerError::Signing(reason.clone()));
        }
        let disbursement = request.disbursement;
        if request.kind == AttemptKind::Payment
            && disbursement.destination.starts_with("unsignable")
        {
            return Err(LedgerError::InvalidDestination(
                disbursement.destination.clone(),
            ));
        }
        let (mut max_fee, mut tip) = match state.chain.base_fee {
            Some(base_fee) => (
                base_fee.saturating_mul(2).saturating_add(state.tip),
                state.tip,
            ),
            None => (0, 0),
        };
        if let Some(min) = request.min_fees {
            max_fee = max_fee.max(min.max_fee_per_gas);
            tip = tip.max(min.max_priority_fee_per_gas);
        }
        // As the EVM ledger does: neither fee may pass its cap.
        max_fee = max_fee.max(tip);
        if max_fee > state.fee_cap || tip > state.tip_cap {
            return Err(LedgerError::FeeCapReached(format!(
                "needs a max fee of {max_fee} and a tip of {tip}, above the caps ({} and {})",
                state.fee_cap, state.tip_cap
            )));
        }
        let (destination, amount) = match request.kind {
            AttemptKind::Payment => (disbursement.destination.clone(), disbursement.amount),
            AttemptKind::Cancellation => ("treasury".to_owned(), 0),
        };
        let body = Body {
            id: disbursement.id,
            kind: request.kind,
            destination,
            amount,
            nonce: request.nonce,
            max_fee,
            tip,
            foreign: false,
        };
        let bytes = serde_json::to_vec(&body).map_err(|e| LedgerError::Signing(e.to_string()))?;
        Ok(SignedTx {
            tx_hash: fnv_hex(&bytes),
            bytes,
            fees: Fees {
                max_fee_per_gas: max_fee,
                max_priority_fee_per_gas: tip,
                gas_limit: GAS,
            },
        })
    }

    fn submit(&self, tx: &SignedTx) -> Result<(), LedgerError> {
        let mut state = self.state();
        state.attempts += 1;
        let mut lose_answer = None;
        match state.faults.pop_front() {
            Some(Fault::Fail(error)) => return Err(error),
            Some(Fault::AcceptThenFail(error)) => lose_answer = Some(error),
            Some(Fault::Pass) | None => {}
        }
        if let Some(error) = &state.down {
            return Err(error.clone());
        }
        let body: Body =
            serde_json::from_slice(&tx.bytes).map_err(|e| LedgerError::Rejected(e.to_string()))?;
        if body.kind == AttemptKind::Payment && body.destination.starts_with("invalid") {
            return Err(LedgerError::InvalidDestination(body.destination));
        }
        let taken = Taken {
            id: body.id,
            kind: body.kind,
            nonce: body.nonce,
            tx_hash: tx.tx_hash.clone(),
        };
        let admitted = state.chain.admit(Tx {
            hash: tx.tx_hash.clone(),
            body,
        });
        match admitted {
            Ok(()) => state.taken.push(taken),
            Err(refusal) => {
                return Err(match refusal {
                    Refusal::NonceTooLow => LedgerError::NonceTooLow,
                    Refusal::AlreadyKnown => LedgerError::AlreadyKnown,
                    Refusal::Underpriced(reason) => LedgerError::Underpriced(reason.into()),
                    Refusal::InsufficientBalance => LedgerError::InsufficientBalance,
                });
            }
        }
        if state.auto_mine {
            state.chain.mine(false);
        }
        match lose_answer {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn lookup(&self, tx_hash: &str) -> Result<TxStatus, LedgerError> {
        let state = self.read()?;
        if state.stale_lookups {
            return Ok(TxStatus::Unknown);
        }
        let head = state.chain.head().number;
        if let Some((block, reverted)) = state.chain.find(tx_hash) {
            if block.number.saturating_add(state.lookup_lag) > head {
                return Ok(TxStatus::Unknown);
            }
            let (block, block_hash) = (block.number, block.hash.clone());
            return Ok(if reverted {
                TxStatus::Reverted { block, block_hash }
            } else {
                TxStatus::Included { block, block_hash }
            });
        }
        if state.chain.pool.values().any(|tx| tx.hash == tx_hash) {
            return Ok(TxStatus::Pending);
        }
        Ok(TxStatus::Unknown)
    }
}
