//! The node's view of governance: a thin re-export, never a second copy of the logic.
//! (The system this replaces kept two drifting copies of the executor; here there is one.)

pub use ::governance::*;
