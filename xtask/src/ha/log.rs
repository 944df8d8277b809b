//! The drill's log: each event with its time since the drill began, on stderr, in
//! `drill.log`, and in every node's log (so that a node's lines can be read against the
//! faults around them).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub(super) struct Log {
    pub(super) began: Instant,
    drill: PathBuf,
    nodes: Vec<PathBuf>,
}

impl Log {
    pub(super) fn new(drill: PathBuf, nodes: Vec<PathBuf>) -> Log {
        Log {
            began: Instant::now(),
            drill,
            nodes,
        }
    }

    fn line(&self, what: &str) -> String {
        format!(
            "==> [ha] {:6.2}s  {what}",
            self.began.elapsed().as_secs_f64()
        )
    }

    pub(super) fn event(&self, what: &str) {
        let line = self.line(what);
        eprintln!("{line}");
        append(&self.drill, &line);
        for node in &self.nodes {
            append(node, &line);
        }
    }

    /// A line in one file only (a node's log).
    pub(super) fn file_only(&self, file: &Path, what: &str) {
        append(file, &self.line(what));
    }
}

/// Appends a line to the file (created if missing); a log line that cannot be written is
/// not worth failing the drill for.
fn append(path: &Path, line: &str) {
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(file, "{line}");
    }
}
