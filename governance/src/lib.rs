//! Treasury governance core: the circuit breaker that protects the ledger's RPC.
//!
//! This crate knows nothing of an async runtime, HTTP or Prometheus: it reports through
//! listeners and callbacks, and the `node` crate wires those to the outside world.

pub mod circuit_breaker;
mod sync;

pub use circuit_breaker::{
    CircuitBreaker, CircuitBreakerConfig, CircuitBreakerConfigError, CircuitBreakerSnapshot,
    CircuitState, Clock, FailureRatePolicy, InvalidCircuitState, ListenerAlreadySet, ManualClock,
    MonotonicClock, Outcome, Permit, RejectReason, Rejected, Transition, TransitionCause,
    TransitionListener,
};
