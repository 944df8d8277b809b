//! What the node's `/status` says that the drill watches: the backlog (logged at each
//! kill) and whether the executor is halted or holds for an operator (while settling).

use super::json::Json;
use crate::http;

/// `/status`, parsed.
fn read(address: &str) -> Result<Json, String> {
    Json::parse(&http::get(address, "/status")?)
}

/// `/status` → backlog (`included` only from a node that has that status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Backlog {
    ready: u64,
    staged: u64,
    submitted: u64,
    included: Option<u64>,
}

impl Backlog {
    pub(super) fn total(&self) -> u64 {
        self.ready + self.staged + self.submitted + self.included.unwrap_or(0)
    }
}

impl std::fmt::Display for Backlog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ready, {} staged, {} submitted",
            self.ready, self.staged, self.submitted
        )?;
        match self.included {
            Some(included) => write!(f, ", {included} included"),
            None => Ok(()),
        }
    }
}

pub(super) fn backlog(address: &str) -> Result<Backlog, String> {
    backlog_of(&read(address)?)
}

fn backlog_of(status: &Json) -> Result<Backlog, String> {
    let count = |name: &str| {
        status
            .get("backlog")
            .and_then(|b| b.get(name))
            .and_then(Json::as_u64)
    };
    let field = |name: &str| count(name).ok_or_else(|| format!("no backlog.{name} in /status"));
    Ok(Backlog {
        ready: field("ready")?,
        staged: field("staged")?,
        submitted: field("submitted")?,
        included: count("included"),
    })
}

/// What `/status` says of the executor: `executor.halted` (a string, or null: absent
/// counts as null) and `executor.hold` (an object, or null).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Executor {
    pub(super) halted: Option<String>,
    pub(super) hold: Option<String>,
}

impl Executor {
    fn from_status(status: &Json) -> Executor {
        let field = |name: &str| {
            status
                .get("executor")
                .and_then(|e| e.get(name))
                .filter(|v| **v != Json::Null)
        };
        Executor {
            halted: field("halted").map(|h| match h.as_str() {
                Some(text) => text.to_owned(),
                None => h.to_string(),
            }),
            hold: field("hold").map(Json::to_string),
        }
    }

    pub(super) fn read(address: &str) -> Result<Executor, String> {
        Ok(Executor::from_status(&read(address)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backlog_with_and_without_included() {
        let read = |text: &str| backlog_of(&Json::parse(text).expect("parses"));
        let today = read(r#"{"backlog":{"scheduled":0,"ready":1,"staged":2,"submitted":3}}"#)
            .expect("a backlog");
        assert_eq!(
            (today.total(), today.to_string().as_str()),
            (6, "1 ready, 2 staged, 3 submitted")
        );
        let new = read(r#"{"backlog":{"ready":0,"staged":0,"submitted":1,"included":4}}"#)
            .expect("a backlog");
        assert_eq!(new.total(), 5);
        assert!(new.to_string().ends_with(", 4 included"));
        assert!(read(r#"{"backlog":{"error":"x"}}"#).is_err());
    }

    #[test]
    fn halted_and_hold_read_from_status() {
        let status = |text: &str| Executor::from_status(&Json::parse(text).expect("parses"));
        assert_eq!(
            status(r#"{"executor":{"halted":null,"hold":null}}"#),
            Executor::default()
        );
        assert_eq!(status(r#"{"executor":{"ticks":3}}"#), Executor::default());
        assert_eq!(
            status(r#"{"executor":{"halted":"nonce 4 consumed","hold":{"nonce":4}}}"#),
            Executor {
                halted: Some("nonce 4 consumed".into()),
                hold: Some(r#"{"nonce":4}"#.into()),
            }
        );
    }
}
