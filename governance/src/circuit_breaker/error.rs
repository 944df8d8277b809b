//! `CircuitBreakerConfigError`: why a configuration was refused, naming the field.

/// A [`CircuitBreakerConfig`](super::CircuitBreakerConfig) value the breaker cannot run
/// with. [`field`](Self::field) is the key as it appears in the `[circuit_breaker]`
/// table of the node's TOML configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CircuitBreakerConfigError {
    /// An integer below its minimum.
    #[error("{field} must be at least {min}, got {value}")]
    TooSmall {
        /// The offending field.
        field: &'static str,
        /// The smallest accepted value.
        min: u64,
        /// The value given.
        value: u64,
    },
    /// An integer above what the breaker can represent or sensibly wait.
    #[error("{field} must be at most {max}, got {value}")]
    TooLarge {
        /// The offending field.
        field: &'static str,
        /// The largest accepted value.
        max: u64,
        /// The value given.
        value: u64,
    },
    /// A real number outside its range (or not a number at all).
    #[error("{field} must be {expected}, got {value}")]
    OutOfRange {
        /// The offending field.
        field: &'static str,
        /// The accepted range, in words.
        expected: &'static str,
        /// The value given.
        value: f64,
    },
}

impl CircuitBreakerConfigError {
    /// The configuration key that holds the refused value.
    pub fn field(&self) -> &'static str {
        match self {
            Self::TooSmall { field, .. }
            | Self::TooLarge { field, .. }
            | Self::OutOfRange { field, .. } => field,
        }
    }
}
