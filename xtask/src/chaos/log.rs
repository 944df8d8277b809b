//! The drill's log ([`Log`]), and appending a line to a file.

use std::path::{Path, PathBuf};
use std::time::Instant;

/// The drill's log: each event with its time since the drill began, on stderr, in
/// `drill.log`, and in the node's log (so that its lines can be read against the faults
/// and kills around them).
pub(super) struct Log {
    pub(super) began: Instant,
    files: Vec<PathBuf>,
}

impl Log {
    /// A log into `files` whose clock starts now.
    pub(super) fn new(files: Vec<PathBuf>) -> Log {
        Log {
            began: Instant::now(),
            files,
        }
    }

    pub(super) fn event(&self, what: &str) {
        let line = format!(
            "==> [chaos] {:6.2}s  {what}",
            self.began.elapsed().as_secs_f64()
        );
        eprintln!("{line}");
        for file in &self.files {
            append(file, &format!("{line}\n"));
        }
    }
}

/// Appends `text` to the file at `path` (created if missing); a log line that cannot be
/// written is not worth failing the drill for.
pub(super) fn append(path: &Path, text: &str) {
    use std::io::Write as _;
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = file.write_all(text.as_bytes());
    }
}
