//! The model behind [`ScriptedLedger`](super::ScriptedLedger): a chain of blocks and a
//! mempool for the treasury's key, with the rules a real node applies.
//!
//! - **Nonces.** A transaction is mined only at the account's next nonce; later ones wait
//!   in the pool (queued). One transaction per nonce in the pool: a replacement must
//!   raise both fees by 10% or more ("replacement transaction underpriced").
//! - **Fees.** With a base fee set, a transaction offering less is refused at submission
//!   and never mined while the base fee stays above it; on a congested chain, miners skip
//!   transactions tipping less than a minimum.
//! - **Blocks.** Mining takes the pool's transactions from the next nonce on, in order,
//!   while each is payable; a `reverting…` destination is mined but reverts (nonce spent,
//!   nothing paid); a cancellation spends the nonce and pays nothing. Block hashes carry a
//!   fork number, so a block mined after a reorg at the same height has another hash.
//! - **Reorgs.** The last blocks are dropped; their transactions go back to the pool (or
//!   are lost, as a mempool may lose them).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::ledger::AttemptKind;

/// What the signed bytes of a scripted transaction say (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Body {
    pub(super) id: u64,
    pub(super) kind: AttemptKind,
    pub(super) destination: String,
    pub(super) amount: u128,
    pub(super) nonce: u64,
    pub(super) max_fee: u128,
    pub(super) tip: u128,
    /// Someone else's transaction on the treasury's key.
    #[serde(default)]
    pub(super) foreign: bool,
}

/// A transaction the model holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Tx {
    pub(super) hash: String,
    pub(super) body: Body,
}

/// A mined block.
#[derive(Debug, Clone)]
pub(super) struct Block {
    pub(super) number: u64,
    pub(super) hash: String,
    /// Its transactions, each with whether it reverted.
    pub(super) txs: Vec<(Tx, bool)>,
}

/// Why the pool refused a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    NonceTooLow,
    AlreadyKnown,
    Underpriced(&'static str),
    InsufficientBalance,
}

/// The chain and the pool. Indexed, so that a long chain costs a test (or a benchmark of
/// the executor) nothing per call: hashes to their block, a running count of the key's
/// transactions per block, and what the chain paid out.
#[derive(Debug)]
pub(super) struct Chain {
    pub(super) blocks: Vec<Block>,
    /// Every mined transaction's hash: its block and whether it reverted.
    by_hash: HashMap<String, (u64, bool)>,
    /// The key's transactions in blocks up to each block, by block number.
    counts: Vec<u64>,
    /// What the chain paid out.
    paid: u128,
    pub(super) pool: BTreeMap<u64, Tx>,
    /// Bumped by every reorg: blocks mined after it hash differently.
    forks: u64,
    /// Funds before any payment; the balance is this less what the chain paid.
    pub(super) initial_balance: u128,
    pub(super) base_fee: Option<u128>,
    /// Miners skip transactions tipping less (a congested chain).
    pub(super) min_tip: u128,
}

/// A deterministic 64-bit FNV-1a hash, hex.
pub(super) fn fnv_hex(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("0x{hash:016x}")
}

/// Gas every scripted transaction may use.
pub(super) const GAS: u64 = 21_000;

impl Chain {
    pub(super) fn new(initial_balance: u128) -> Chain {
        let mut chain = Chain {
            blocks: vec![],
            by_hash: HashMap::new(),
            counts: vec![],
            paid: 0,
            pool: BTreeMap::new(),
            forks: 0,
            initial_balance,
            base_fee: None,
            min_tip: 0,
        };
        chain.push_block(vec![]);
        chain
    }

    pub(super) fn head(&self) -> &Block {
        // The genesis block is never dropped.
        &self.blocks[self.blocks.len() - 1]
    }

    fn push_block(&mut self, txs: Vec<(Tx, bool)>) {
        let number = self.blocks.len() as u64;
        let hash = fnv_hex(format!("block {number} fork {}", self.forks).as_bytes());
        for (tx, reverted) in &txs {
            self.by_hash.insert(tx.hash.clone(), (number, *reverted));
            self.paid = self.paid.saturating_add(paid_by(tx, *reverted));
        }
        let before = self.counts.last().copied().unwrap_or(0);
        self.counts.push(before + txs.len() as u64);
        self.blocks.push(Block { number, hash, txs });
    }

    /// Takes the head block off (never the genesis), undoing its indexes.
    fn pop_block(&mut self) -> Option<Block> {
        if self.blocks.len() <= 1 {
            return None;
        }
        let block = self.blocks.pop()?;
        self.counts.pop();
        for (tx, reverted) in &block.txs {
            self.by_hash.remove(&tx.hash);
            self.paid = self.paid.saturating_sub(paid_by(tx, *reverted));
        }
        Some(block)
    }

    /// The next nonce at the head: the key's transactions in the chain.
    pub(super) fn nonce(&self) -> u64 {
        self.nonce_at(u64::MAX)
    }

    /// The key's transactions in blocks up to `number`.
    pub(super) fn nonce_at(&self, number: u64) -> u64 {
        let at = usize::try_from(number)
            .unwrap_or(usize::MAX)
            .min(self.counts.len() - 1);
        self.counts[at]
    }

    /// The next nonce counting the pool's run of consecutive nonces.
    pub(super) fn pending_nonce(&self) -> u64 {
        let mut next = self.nonce();
        while self.pool.contains_key(&next) {
            next += 1;
        }
        next
    }

    /// What the chain paid out (reverted transactions and cancellations pay nothing).
    pub(super) fn paid(&self) -> u128 {
        self.paid
    }

    pub(super) fn balance(&self) -> u128 {
        self.initial_balance.saturating_sub(self.paid())
    }

    /// The block holding `hash`, and whether it reverted.
    pub(super) fn find(&self, hash: &str) -> Option<(&Block, bool)> {
        let &(number, reverted) = self.by_hash.get(hash)?;
        let block = self.blocks.get(usize::try_from(number).ok()?)?;
        Some((block, reverted))
    }

    /// A node's admission rules.
    pub(super) fn admit(&mut self, tx: Tx) -> Result<(), Refusal> {
        if self.find(&tx.hash).is_some() {
            return Err(Refusal::NonceTooLow); // what a node says of mined bytes
        }
        if self
            .pool
            .get(&tx.body.nonce)
            .is_some_and(|pooled| pooled.hash == tx.hash)
        {
            return Err(Refusal::AlreadyKnown);
        }
        if tx.body.nonce < self.nonce() {
            return Err(Refusal::NonceTooLow);
        }
        if self
            .base_fee
            .is_some_and(|base_fee| tx.body.max_fee < base_fee)
        {
            return Err(Refusal::Underpriced(
                "max fee per gas less than block base fee",
            ));
        }
        if let Some(pooled) = self.pool.get(&tx.body.nonce) {
            let enough = |new: u128, old: u128| new >= old.saturating_add(old.div_ceil(10));
            if !enough(tx.body.max_fee, pooled.body.max_fee)
                || !enough(tx.body.tip, pooled.body.tip)
            {
                return Err(Refusal::Underpriced("replacement transaction underpriced"));
            }
        }
        let cost = tx
            .body
            .amount
            .saturating_add(tx.body.max_fee.saturating_mul(u128::from(GAS)));
        if cost > self.balance() {
            return Err(Refusal::InsufficientBalance);
        }
        self.pool.insert(tx.body.nonce, tx);
        Ok(())
    }

    /// Mines one block from the pool. `always`: even an empty one. Returns whether a block
    /// was made.
    pub(super) fn mine(&mut self, always: bool) -> bool {
        let mut next = self.nonce();
        let mut balance = self.balance();
        let mut txs = vec![];
        while let Some(tx) = self.pool.get(&next) {
            if self
                .base_fee
                .is_some_and(|base_fee| tx.body.max_fee < base_fee)
                || tx.body.tip < self.min_tip
            {
                break;
            }
            let pays = tx.body.kind == AttemptKind::Payment
                && !tx.body.destination.starts_with("reverting");
            if pays && tx.body.amount > balance {
                break; // stays pending until the treasury is topped up
            }
            let Some(tx) = self.pool.remove(&next) else {
                break;
            };
            if pays {
                balance -= tx.body.amount;
            }
            let reverted = tx.body.kind == AttemptKind::Payment && !pays;
            txs.push((tx, reverted));
            next += 1;
        }
        if txs.is_empty() && !always {
            return false;
        }
        self.push_block(txs);
        true
    }

    /// Drops the last `depth` blocks (never the genesis). Their transactions go back to the
    /// pool, unless `lose` (a mempool that forgot them).
    pub(super) fn reorg(&mut self, depth: u64, lose: bool) {
        self.forks += 1;
        for _ in 0..depth {
            let Some(block) = self.pop_block() else {
                break;
            };
            if !lose {
                for (tx, _) in block.txs {
                    self.pool.insert(tx.body.nonce, tx);
                }
            }
        }
    }
}

/// What a mined transaction paid out.
fn paid_by(tx: &Tx, reverted: bool) -> u128 {
    if reverted || tx.body.kind != AttemptKind::Payment {
        0
    } else {
        tx.body.amount
    }
}
