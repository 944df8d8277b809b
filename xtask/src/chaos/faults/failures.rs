//! Calls of the miner or the fault thread that failed: counted, the first few kept for
//! the result.

use crate::chaos::log::Log;

/// Calls that failed, the first few kept.
#[derive(Debug, Default)]
pub(in crate::chaos) struct Failures {
    pub(in crate::chaos) count: u64,
    pub(in crate::chaos) first: Vec<String>,
}

impl Failures {
    pub(super) fn note(&mut self, error: String) {
        self.count += 1;
        if self.first.len() < 5 {
            self.first.push(error);
        }
    }

    /// Notes it, and logs the first one at once (the rest go to the result).
    pub(super) fn note_and_log(&mut self, what: &str, error: String, log: &Log) {
        if self.count == 0 {
            log.event(&format!(
                "{what} FAILED (later failures only counted): {error}"
            ));
        }
        self.note(error);
    }
}
