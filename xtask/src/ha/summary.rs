//! What the drill measured and injected, and the summary it prints.

use std::time::Duration;

/// Measurements and fault counts.
#[derive(Debug, Default)]
pub(super) struct Summary {
    /// kill -9 of the leader → another node leads and has executed a disbursement.
    pub(super) handovers: Vec<Duration>,
    /// kill -9 of the leader → another node says it leads.
    pub(super) leads_after_kill: Vec<Duration>,
    /// SIGSTOP of the leader → another node says it leads.
    pub(super) takeovers: Vec<Duration>,
    /// SIGCONT → the resumed node says it stands by.
    pub(super) step_downs: Vec<Duration>,
    pub(super) leader_kills: u64,
    pub(super) leader_stops: u64,
    pub(super) member_kills: u64,
    /// Which member, and its raft role.
    pub(super) member: Option<String>,
    /// The member's kill → a disbursement executed.
    pub(super) paid_after_member_kill: Option<Duration>,
    pub(super) restarts: u64,
    /// Restart began → one node leads, the others stand by.
    pub(super) back_after_restart: Option<Duration>,
    /// What the nodes did that is wrong but breaks no guarantee the drill checks: by
    /// kind, how often, and the first time's words.
    pub(super) notes: Vec<Note>,
}

/// A kind of node issue the drill saw.
#[derive(Debug)]
pub(super) struct Note {
    pub(super) kind: &'static str,
    pub(super) times: u64,
    pub(super) first: String,
}

impl Summary {
    pub(super) fn note(&mut self, kind: &'static str, what: String) {
        match self.notes.iter_mut().find(|n| n.kind == kind) {
            Some(note) => note.times += 1,
            None => self.notes.push(Note {
                kind,
                times: 1,
                first: what,
            }),
        }
    }
}

/// `min / median / max` in seconds, or `-`.
pub(super) fn spread(times: &[Duration]) -> String {
    if times.is_empty() {
        return "-".into();
    }
    let mut sorted = times.to_vec();
    sorted.sort();
    let median = if sorted.len() % 2 == 1 {
        sorted[sorted.len() / 2]
    } else {
        (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]) / 2
    };
    format!(
        "{:.2} / {:.2} / {:.2} s",
        sorted[0].as_secs_f64(),
        median.as_secs_f64(),
        sorted[sorted.len() - 1].as_secs_f64()
    )
}

/// Seconds with two decimals, or `-`.
pub(super) fn secs(time: Option<Duration>) -> String {
    time.map_or("-".into(), |t| format!("{:.2} s", t.as_secs_f64()))
}

/// Each time, in seconds, in the order measured.
pub(super) fn each(times: &[Duration]) -> String {
    let all: Vec<String> = times
        .iter()
        .map(|t| format!("{:.2}", t.as_secs_f64()))
        .collect();
    all.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_min_median_max() {
        let ms =
            |v: &[u64]| -> Vec<Duration> { v.iter().map(|&m| Duration::from_millis(m)).collect() };
        assert_eq!(spread(&[]), "-");
        assert_eq!(spread(&ms(&[3000])), "3.00 / 3.00 / 3.00 s");
        assert_eq!(spread(&ms(&[4000, 3000, 3500])), "3.00 / 3.50 / 4.00 s");
        assert_eq!(spread(&ms(&[4000, 3000])), "3.00 / 3.50 / 4.00 s");
        assert_eq!(each(&ms(&[1250, 3000])), "1.25 3.00");
        assert_eq!(secs(None), "-");
    }
}
