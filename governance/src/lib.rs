//! Treasury governance core: the circuit breaker, the treasury model, the store and the
//! executor tick.
//!
//! This crate knows nothing of an async runtime, HTTP or Prometheus: it reports through
//! listeners and callbacks, and the `node` crate wires those to the outside world.

pub mod circuit_breaker;
pub mod executor;
pub mod ledger;
pub mod policy;
pub mod store;
mod sync;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod text;
pub mod treasury;

pub use circuit_breaker::{
    CircuitBreaker, CircuitBreakerConfig, CircuitBreakerConfigError, CircuitBreakerSnapshot,
    CircuitState, Clock, FailureRatePolicy, InvalidCircuitState, ListenerAlreadySet, ManualClock,
    MonotonicClock, Outcome, Permit, RejectReason, Rejected, Transition, TransitionCause,
    TransitionListener,
};
pub use executor::{
    BroadcastGate, CrashPoint, Finality, MIN_BUMP_PERCENT, TickReport, TreasuryExecutor,
    TreasuryExecutorConfig, TreasuryExecutorError,
};
pub use ledger::{AttemptKind, Fees, Head, Ledger, LedgerError, SignRequest, SignedTx, TxStatus};
pub use policy::{Policy, Refusal};
pub use store::{
    Action, Attempt, Audit, AuditRecord, Backlog, Cancellation, Decision, ExecutorSnapshot,
    GovStore, Hold, Inclusion, Intent, Migration, OverrideError, Queued, RequestError, Resolution,
    StoreError, Stored, Totals,
};
pub use treasury::{
    Approval, Disbursement, DisbursementId, DisbursementStatus, NewDisbursement, QueueError,
};
