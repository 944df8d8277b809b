//! Treasury governance core: the circuit breaker, the treasury model, the store and the
//! executor tick.
//!
//! This crate knows nothing of an async runtime, HTTP or Prometheus: it reports through
//! listeners and callbacks, and the `node` crate wires those to the outside world.

pub mod circuit_breaker;
pub mod executor;
pub mod store;
mod sync;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod treasury;

pub use circuit_breaker::{
    CircuitBreaker, CircuitBreakerConfig, CircuitBreakerConfigError, CircuitBreakerSnapshot,
    CircuitState, Clock, FailureRatePolicy, InvalidCircuitState, ListenerAlreadySet, ManualClock,
    MonotonicClock, Outcome, Permit, RejectReason, Rejected, Transition, TransitionCause,
    TransitionListener,
};
pub use executor::{
    BreakerTelemetry, CrashPoint, Ledger, LedgerError, SignedTx, TickReport, TreasuryExecutor,
    TreasuryExecutorConfig, TreasuryExecutorError, TxStatus,
};
pub use store::{
    AuditRecord, Backlog, ExecutorSnapshot, GovStore, Intent, Queued, RequestError, StoreError,
};
pub use treasury::{Disbursement, DisbursementId, DisbursementStatus, NewDisbursement, QueueError};
