//! Unit tests of the breaker internals.
