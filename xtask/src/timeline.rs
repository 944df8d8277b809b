//! A drill's timeline: samples of the node's state taken as the drill waits, the events
//! the drill logs between them, printed (changes only) and written as CSV. The failover
//! drills (one endpoint, and a pool) each define their sample as a [`Row`].

use std::fmt::Write as _;
use std::thread;
use std::time::{Duration, Instant};

/// One sample of a drill.
pub(crate) trait Row: Copy + std::fmt::Debug {
    /// The CSV header line (no newline).
    const CSV_HEADER: &'static str;
    /// The printed header's columns after `seconds`.
    const COLUMNS: &'static str;
    /// Seconds since the drill began.
    fn seconds(&self) -> f64;
    /// The CSV line (no newline).
    fn csv(&self) -> String;
    /// The printed columns after `seconds`.
    fn columns(&self) -> String;
    /// What the printed timeline compares to show changes only.
    fn key(&self) -> String;
}

/// The samples and events of one drill, `tag` in its log lines.
pub(crate) struct Timeline<'a, S: Row> {
    tag: &'static str,
    began: Instant,
    take: Box<dyn FnMut(Instant) -> Result<S, String> + 'a>,
    /// Every sample so far.
    pub(crate) samples: Vec<S>,
    events: Vec<(f64, String)>,
}

impl<'a, S: Row> Timeline<'a, S> {
    /// A timeline whose samples `take` takes (given when the drill began).
    pub(crate) fn new(
        tag: &'static str,
        take: impl FnMut(Instant) -> Result<S, String> + 'a,
    ) -> Self {
        Timeline {
            tag,
            began: Instant::now(),
            take: Box::new(take),
            samples: vec![],
            events: vec![],
        }
    }

    /// Takes a sample now.
    pub(crate) fn sample(&mut self) -> Result<S, String> {
        let sample = (self.take)(self.began)?;
        self.samples.push(sample);
        Ok(sample)
    }

    /// Logs an event.
    pub(crate) fn event(&mut self, what: &str) {
        let at = self.began.elapsed().as_secs_f64();
        eprintln!("==> [{}] {at:6.2}s  {what}", self.tag);
        self.events.push((at, what.to_owned()));
    }

    /// Samples every 100 ms until `done` holds, for at most `limit`; `each` checks every
    /// sample on the way (an invariant of the phase).
    pub(crate) fn until(
        &mut self,
        what: &str,
        limit: Duration,
        done: impl Fn(&S) -> bool,
        each: impl Fn(&S) -> Result<(), String>,
    ) -> Result<S, String> {
        let began = Instant::now();
        loop {
            let sample = self.sample()?;
            each(&sample)?;
            if done(&sample) {
                return Ok(sample);
            }
            if began.elapsed() > limit {
                return Err(format!(
                    "timed out after {limit:?} waiting for {what}; last sample {sample:?}"
                ));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every sample as CSV, with its header.
    pub(crate) fn csv(&self) -> String {
        let mut out = format!("{}\n", S::CSV_HEADER);
        for sample in &self.samples {
            let _ = writeln!(out, "{}", sample.csv());
        }
        out
    }

    /// Prints the samples where something changed, with the events between them.
    pub(crate) fn print(&self) {
        eprintln!("\n==> [{}] timeline (changes only)", self.tag);
        eprintln!("    {:>7}  {}", "seconds", S::COLUMNS);
        let mut last = None;
        let mut events = self.events.iter().peekable();
        for sample in &self.samples {
            while let Some((at, what)) = events.next_if(|(at, _)| *at <= sample.seconds()) {
                eprintln!("    {at:7.2}  -- {what}");
            }
            let key = sample.key();
            if last.as_ref() != Some(&key) {
                eprintln!("    {:7.2}  {}", sample.seconds(), sample.columns());
                last = Some(key);
            }
        }
        for (at, what) in events {
            eprintln!("    {at:7.2}  -- {what}");
        }
    }
}

/// A `Row` check that always passes, for `until` without an invariant.
pub(crate) fn any<S>(_: &S) -> Result<(), String> {
    Ok(())
}
