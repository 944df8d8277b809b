//! What the executor's tests share: an executor on a sled store on disk and the scripted
//! ledger, restartable as after a crash, and the checks of what the chain paid.
#![allow(dead_code)] // each test crate uses its own part of it

use std::collections::HashMap;
use std::sync::Arc;

use governance::testing::ScriptedLedger;
use governance::{
    Action, CircuitBreaker, CircuitBreakerConfig, Decision, DisbursementId, DisbursementStatus,
    Finality, GovStore, Intent, ManualClock, NewDisbursement, RequestError, TickReport,
    TreasuryExecutor, TreasuryExecutorConfig,
};
use tempfile::TempDir;

/// A disbursement request with no memo, epoch 0 and no dependencies.
pub fn request(destination: &str, amount: u128) -> NewDisbursement {
    NewDisbursement {
        destination: destination.into(),
        amount,
        memo: String::new(),
        activation_epoch: 0,
        depends_on: vec![],
        external_key: None,
        asset: "native".into(),
    }
}

/// Runs `open` again while what it opens is still locked by a handle just dropped
/// (sled's flusher thread holds the file until its next wake-up), for up to 10 s.
pub fn retry_locked<T, E: std::fmt::Display>(
    mut open: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match open() {
            Err(error)
                if error.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Opens the store at `path`, waiting for a store just dropped there to let go of its
/// lock (see [`retry_locked`]).
pub fn open_store(path: &std::path::Path) -> GovStore {
    retry_locked(|| GovStore::open(path))
        .unwrap_or_else(|error| panic!("cannot open the store at {}: {error}", path.display()))
}

/// An operator's decision on the hold the executor's last tick persisted (as the admin
/// API records one): the executor applies it at its next tick if it finds the same hold.
pub fn decide(store: &GovStore, action: Action, reason: &str) -> Result<(), RequestError> {
    let Some(hold) = store
        .executor_snapshot()
        .expect("snapshot")
        .and_then(|snapshot| snapshot.hold)
    else {
        return Err(RequestError::Conflict("no hold".into()));
    };
    store.decide(&Decision {
        hold,
        action,
        reason: reason.into(),
        actor: "operator".into(),
        at_ms: 0,
    })
}

/// How the executor is configured, kept across restarts.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub batch: usize,
    pub finality: Finality,
    pub bump_after_blocks: u64,
}

impl Settings {
    pub fn batch(batch: usize) -> Settings {
        Settings {
            batch,
            finality: Finality::Confirmations(1),
            bump_after_blocks: 3,
        }
    }
}

pub struct Harness {
    pub dir: TempDir,
    pub clock: ManualClock,
    pub ledger: Arc<ScriptedLedger>,
    pub breaker: Arc<CircuitBreaker>,
    pub executor: TreasuryExecutor,
    pub settings: Settings,
}

pub fn harness(batch: usize) -> Harness {
    with(Settings::batch(batch), Arc::new(ScriptedLedger::default()))
}

pub fn with(settings: Settings, ledger: Arc<ScriptedLedger>) -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    build(dir, ManualClock::new(), ledger, settings)
}

fn build(
    dir: TempDir,
    clock: ManualClock,
    ledger: Arc<ScriptedLedger>,
    settings: Settings,
) -> Harness {
    let store = open_store(&dir.path().join("db"));
    let breaker = Arc::new(CircuitBreaker::with_clock(
        CircuitBreakerConfig::default(),
        clock.clone(),
    ));
    let mut config = TreasuryExecutorConfig::new("test");
    config.batch_size = settings.batch;
    config.finality = settings.finality;
    config.bump_after_blocks = settings.bump_after_blocks;
    let executor = TreasuryExecutor::new(
        config,
        Arc::clone(&breaker),
        store,
        Arc::clone(&ledger) as _,
    )
    .expect("executor");
    Harness {
        dir,
        clock,
        ledger,
        breaker,
        executor,
        settings,
    }
}

impl Harness {
    /// An executor on the store in `dir` (as a restart after the store was replaced).
    pub fn reopen(dir: TempDir, ledger: Arc<ScriptedLedger>, settings: Settings) -> Harness {
        build(dir, ManualClock::new(), ledger, settings)
    }

    /// Drops the executor and the store as a crash would, and opens them again from
    /// disk with a new breaker (restored from the store).
    pub fn restart(self) -> Harness {
        let Harness {
            dir,
            clock,
            ledger,
            executor,
            settings,
            ..
        } = self;
        drop(executor);
        build(dir, clock, ledger, settings)
    }

    pub fn store(&self) -> &GovStore {
        self.executor.store()
    }

    pub fn queue(&self, destination: &str, amount: u128) -> DisbursementId {
        self.queue_with(request(destination, amount))
    }

    pub fn queue_with(&self, new: NewDisbursement) -> DisbursementId {
        let queued = self.store().queue(&new, 0).expect("queue");
        self.store().flush().expect("flush");
        queued.disbursement.id
    }

    /// The lowest intent in flight.
    pub fn first_intent(&self) -> Intent {
        self.store()
            .intents()
            .expect("intents")
            .into_iter()
            .next()
            .expect("an intent in flight")
    }

    pub fn status(&self, id: DisbursementId) -> DisbursementStatus {
        self.store().get(id).expect("get").expect("exists").status
    }

    pub fn tick(&mut self) -> TickReport {
        self.executor.tick().expect("tick")
    }

    /// Ticks until nothing is left in flight (at most 50 ticks).
    pub fn drain(&mut self) {
        for _ in 0..50 {
            self.tick();
            let backlog = self.store().backlog().expect("backlog");
            if backlog.total() == 0 {
                return;
            }
        }
        panic!("did not drain: {:?}", self.store().backlog());
    }

    /// [`assert_paid`](Self::assert_paid), and the payments' nonces are 0..n: no gap, no
    /// repeat (no nonce went to anything else).
    pub fn assert_paid_exactly_once(&self, expected: &[(DisbursementId, u128)]) {
        self.assert_paid(expected);
        let nonces: Vec<u64> = self.ledger.payments().iter().map(|p| p.nonce).collect();
        assert_eq!(
            nonces,
            (0..nonces.len() as u64).collect::<Vec<_>>(),
            "gapless, unique nonces"
        );
    }

    /// Each disbursement paid exactly once, with its amount, Executed, and nothing else
    /// paid.
    pub fn assert_paid(&self, expected: &[(DisbursementId, u128)]) {
        let payments = self.ledger.payments();
        let mut by_id: HashMap<DisbursementId, Vec<u128>> = HashMap::new();
        for payment in &payments {
            by_id.entry(payment.id).or_default().push(payment.amount);
        }
        for &(id, amount) in expected {
            assert_eq!(
                by_id.get(&id),
                Some(&vec![amount]),
                "disbursement {id} paid exactly once"
            );
            assert!(
                matches!(self.status(id), DisbursementStatus::Executed { .. }),
                "{id} executed: {:?}",
                self.status(id)
            );
        }
        assert_eq!(payments.len(), expected.len(), "no other payment");
    }

    /// Every transaction the ledger ever took for a disbursement carries one nonce: the
    /// binding rule, seen from the chain's side.
    pub fn assert_one_nonce_per_disbursement(&self) {
        let mut nonces: HashMap<DisbursementId, u64> = HashMap::new();
        for taken in self.ledger.taken() {
            let nonce = *nonces.entry(taken.id).or_insert(taken.nonce);
            assert_eq!(
                nonce, taken.nonce,
                "disbursement {} was taken at nonces {nonce} and {}",
                taken.id, taken.nonce
            );
        }
    }
}
