//! Step runner: runs named steps in order, times each, keeps going after failures, prints the summary.

use std::fmt;
use std::time::{Duration, Instant};

/// What a step returns: `Err` carries a one-line reason.
pub type StepResult = Result<(), String>;

/// One named unit of work, e.g. `clippy`.
pub struct Step {
    pub name: &'static str,
    /// One line for the help text, usually the command run.
    pub about: String,
    run: Box<dyn Fn() -> StepResult>,
}

impl Step {
    pub fn new(
        name: &'static str,
        about: impl Into<String>,
        run: impl Fn() -> StepResult + 'static,
    ) -> Self {
        Self {
            name,
            about: about.into(),
            run: Box::new(run),
        }
    }
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Step")
            .field("name", &self.name)
            .field("about", &self.about)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        })
    }
}

/// The outcome of one step; `elapsed` is `None` for skipped steps.
#[derive(Debug)]
pub struct Report {
    pub name: &'static str,
    pub status: Status,
    pub elapsed: Option<Duration>,
}

/// Runs `steps` in order, skipping those named in `skip`; never stops early.
pub fn run_all(steps: &[Step], skip: &[&str]) -> Vec<Report> {
    steps
        .iter()
        .map(|step| {
            if skip.contains(&step.name) {
                eprintln!("==> [{}] skipped", step.name);
                return Report {
                    name: step.name,
                    status: Status::Skip,
                    elapsed: None,
                };
            }
            let start = Instant::now();
            let result = (step.run)();
            let elapsed = start.elapsed();
            let status = match result {
                Ok(()) => {
                    eprintln!("==> [{}] PASS ({:.1}s)", step.name, elapsed.as_secs_f64());
                    Status::Pass
                }
                Err(reason) => {
                    eprintln!(
                        "==> [{}] FAIL ({:.1}s): {reason}",
                        step.name,
                        elapsed.as_secs_f64()
                    );
                    Status::Fail
                }
            };
            Report {
                name: step.name,
                status,
                elapsed: Some(elapsed),
            }
        })
        .collect()
}

/// Prints the summary table (step, result, seconds) to stderr.
pub fn print_summary(reports: &[Report]) {
    eprint!("{}", summary(reports));
}

fn summary(reports: &[Report]) -> String {
    let width = reports
        .iter()
        .map(|r| r.name.len())
        .chain(["total".len()])
        .max()
        .unwrap_or(0);
    let secs = |d: Option<Duration>| {
        d.map_or_else(|| "-".to_owned(), |d| format!("{:.1}s", d.as_secs_f64()))
    };
    let mut out = format!(
        "\n==> summary\n    {:<width$}  RESULT  {:>8}\n",
        "STEP", "TIME"
    );
    for r in reports {
        out += &format!(
            "    {:<width$}  {:<6}  {:>8}\n",
            r.name,
            r.status,
            secs(r.elapsed)
        );
    }
    let total = reports.iter().filter_map(|r| r.elapsed).sum::<Duration>();
    out += &format!(
        "    {:<width$}  {:<6}  {:>8}\n",
        "total",
        "",
        secs(Some(total))
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_every_step_and_records_status() {
        let steps = [
            Step::new("a", "ok", || Ok(())),
            Step::new("b", "fails", || Err("boom".to_owned())),
            Step::new("c", "skipped", || Err("must not run".to_owned())),
            Step::new("d", "runs after a failure", || Ok(())),
        ];
        let reports = run_all(&steps, &["c"]);
        let statuses: Vec<_> = reports.iter().map(|r| (r.name, r.status)).collect();
        assert_eq!(
            statuses,
            [
                ("a", Status::Pass),
                ("b", Status::Fail),
                ("c", Status::Skip),
                ("d", Status::Pass)
            ]
        );
        assert!(reports[2].elapsed.is_none());
        let table = summary(&reports);
        assert!(table.contains("b      FAIL"), "{table}");
        assert!(table.contains("c      SKIP           -"), "{table}");
    }
}
