//! One node process of the drill (started, signalled, killed on drop) and what the drill
//! asks it over HTTP: `/status`, the admin API (queue, show, audit), `/metrics`.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::chaos::json::Json;
use crate::http;
use crate::scrape;

/// The admin token every node is configured with.
pub(super) const TOKEN: &str = "ha-drill-admin-token";

/// A `node run --config CONFIG` process listening on an ephemeral port, its stdout read
/// for `listening on ADDR` and its stderr appended to a log. Killed with SIGKILL on drop
/// if still running (stopped with SIGSTOP too: SIGKILL ends a stopped process).
#[derive(Debug)]
pub(super) struct NodeProcess {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub(super) address: String,
}

impl NodeProcess {
    /// Starts the node and waits (60 s at most) until it listens. The log is appended to:
    /// restarts keep every run's lines. Every `TB_*` variable of this environment is kept
    /// from it: the configuration file says everything.
    pub(super) fn start(binary: &Path, config: &Path, log: &Path) -> Result<NodeProcess, String> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("cannot open the node's log {}: {e}", log.display()))?;
        let mut command = Command::new(binary);
        for (key, _) in std::env::vars_os() {
            if key.as_encoded_bytes().starts_with(b"TB_") {
                command.env_remove(key);
            }
        }
        let mut child = command
            .args(["run", "--config"])
            .arg(config)
            .env("TB_LISTEN", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        match scrape::listening_address(&mut child) {
            Ok(address) => Ok(NodeProcess { child, address }),
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("{error} (log: {})", log.display()))
            }
        }
    }

    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`STOP`, `CONT`) with kill(1): no libc, no unsafe.
    pub(super) fn signal(&self, signal: &str) -> Result<(), String> {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .map_err(|e| format!("cannot run kill -{signal}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("kill -{signal} {} failed ({status})", self.pid()))
        }
    }

    /// SIGKILL, then reaps it: a crash, nothing drained.
    pub(super) fn kill_9(mut self) -> Result<(), String> {
        self.child
            .kill()
            .map_err(|e| format!("cannot kill node {}: {e}", self.pid()))?;
        self.child
            .wait()
            .map(drop)
            .map_err(|e| format!("cannot reap node {}: {e}", self.pid()))
    }

    /// SIGTERM (the node finishes its tick, resigns its lease and exits), then reaps it;
    /// SIGKILL if it is still there after 10 s. Whether it exited by itself.
    pub(super) fn terminate(mut self) -> bool {
        scrape::stop(&mut self.child);
        // `scrape::stop` kills it after 10 s: a killed process has no exit code.
        matches!(self.child.try_wait(), Ok(Some(status)) if status.code().is_some())
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a node's `/status` says of the election and the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Status {
    /// `leader`, `standby`, `unavailable`, `starting`.
    pub(super) role: String,
    /// The leader's identity as this node last saw it.
    pub(super) leader: Option<String>,
    /// The address the leader says it listens on.
    pub(super) leader_listen: Option<String>,
    pub(super) term: u64,
    pub(super) leader_changes: u64,
    /// Disbursements the store holds executed (`None` while the store is out of reach).
    pub(super) executed: Option<u64>,
    pub(super) running: bool,
    /// `executor.halted`, if set.
    pub(super) halted: Option<String>,
}

impl Status {
    pub(super) fn read(address: &str) -> Result<Status, String> {
        Status::parse(&http::get(address, "/status")?)
    }

    fn parse(text: &str) -> Result<Status, String> {
        let status = Json::parse(text)?;
        let ha = status.get("ha").ok_or("no `ha` in /status")?;
        let executor = status.get("executor");
        Ok(Status {
            role: ha
                .get("role")
                .and_then(Json::as_str)
                .ok_or("no ha.role in /status")?
                .to_owned(),
            leader: ha
                .get("leader")
                .and_then(|l| l.get("identity"))
                .and_then(Json::as_str)
                .map(str::to_owned),
            leader_listen: ha
                .get("leader")
                .and_then(|l| l.get("listen"))
                .and_then(Json::as_str)
                .map(str::to_owned),
            term: ha.get("term").and_then(Json::as_u64).unwrap_or(0),
            leader_changes: ha.get("leader_changes").and_then(Json::as_u64).unwrap_or(0),
            executed: executor
                .and_then(|e| e.get("totals"))
                .and_then(|t| t.get("executed"))
                .and_then(Json::as_u64),
            running: executor.and_then(|e| e.get("running")) == Some(&Json::Bool(true)),
            halted: executor
                .and_then(|e| e.get("halted"))
                .filter(|h| **h != Json::Null)
                .map(|h| h.as_str().map_or_else(|| h.to_string(), str::to_owned)),
        })
    }
}

/// The answer to a queue request.
#[derive(Debug)]
pub(super) enum Queued {
    /// 201, or 200 (the external key was queued already): the disbursement's id.
    Id(u64),
    /// Worth sending again, elsewhere (no answer, or a 5xx: the store out of reach).
    Retry(String),
}

/// `POST /admin/disbursements` with an external key, so that a request sent again is
/// not queued twice.
pub(super) fn queue(
    address: &str,
    destination: &str,
    amount: u128,
    key: &str,
) -> Result<Queued, String> {
    let body = format!(
        r#"{{"destination":"{destination}","amount":"{amount}","memo":"ha drill","external_key":"{key}"}}"#
    );
    let answer = match http::request(
        address,
        "POST",
        "/admin/disbursements",
        Some(TOKEN),
        Some(&body),
    ) {
        Ok(answer) => answer,
        Err(error) => return Ok(Queued::Retry(error)),
    };
    match answer.status {
        200 | 201 => Json::parse(&answer.body)?
            .get("id")
            .and_then(Json::as_u64)
            .map(Queued::Id)
            .ok_or_else(|| format!("queueing {destination}: no id in {}", answer.body.trim())),
        500.. => Ok(Queued::Retry(format!(
            "HTTP {}: {}",
            answer.status,
            answer.body.trim()
        ))),
        status => Err(format!(
            "queueing {destination} through {address}: HTTP {status}: {}",
            answer.body.trim()
        )),
    }
}

/// A disbursement as `GET /admin/disbursements/{id}` shows it.
#[derive(Debug)]
pub(super) struct Shown {
    pub(super) destination: String,
    pub(super) amount: String,
    pub(super) status: String,
    pub(super) tx_hash: Option<String>,
}

pub(super) fn show(address: &str, id: u64) -> Result<Shown, String> {
    let path = format!("/admin/disbursements/{id}");
    let answer = http::request(address, "GET", &path, Some(TOKEN), None)?;
    if answer.status != 200 {
        return Err(format!(
            "GET {path}: HTTP {}: {}",
            answer.status,
            answer.body.trim()
        ));
    }
    let json = Json::parse(&answer.body)?;
    let text = |value: Option<&Json>| value.and_then(Json::as_str).map(str::to_owned);
    let status = json.get("status");
    Ok(Shown {
        destination: text(json.get("destination")).unwrap_or_default(),
        amount: text(json.get("amount")).unwrap_or_default(),
        status: text(status.and_then(|s| s.get("status"))).unwrap_or_default(),
        tx_hash: text(status.and_then(|s| s.get("tx_hash"))),
    })
}

/// One record of the audit log: its action and what it touched.
#[derive(Debug)]
pub(super) struct AuditRecord {
    pub(super) action: String,
    pub(super) detail: String,
}

/// The whole audit log, `GET /admin/audit` page by page.
pub(super) fn audit(address: &str) -> Result<Vec<AuditRecord>, String> {
    const PAGE: usize = 500;
    let mut records = vec![];
    let mut after: Option<u64> = None;
    loop {
        let path = match after {
            Some(seq) => format!("/admin/audit?after={seq}&limit={PAGE}"),
            None => format!("/admin/audit?limit={PAGE}"),
        };
        let answer = http::request(address, "GET", &path, Some(TOKEN), None)?;
        if answer.status != 200 {
            return Err(format!(
                "GET {path}: HTTP {}: {}",
                answer.status, answer.body
            ));
        }
        let page = Json::parse(&answer.body)?;
        let items = page
            .get("records")
            .and_then(Json::as_array)
            .ok_or_else(|| format!("GET {path}: no `records` array"))?;
        for item in items {
            let seq = item
                .get("seq")
                .and_then(Json::as_u64)
                .ok_or_else(|| format!("an audit record without a seq: {item}"))?;
            if after.is_some_and(|last| seq <= last) {
                return Err(format!("GET {path}: seq {seq} out of order"));
            }
            after = Some(seq);
            let text = |name: &str| {
                item.get(name)
                    .and_then(Json::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            records.push(AuditRecord {
                action: text("action"),
                detail: text("detail"),
            });
        }
        if items.len() < PAGE {
            return Ok(records);
        }
    }
}

/// `treasury_executor_halted` in the node's `/metrics`.
pub(super) fn halted_gauge(address: &str) -> Result<u64, String> {
    crate::failover::metric(&http::get(address, "/metrics")?, "treasury_executor_halted")
}

/// `treasury_executor_leader` in the node's `/metrics`.
pub(super) fn leader_gauge(address: &str) -> Result<u64, String> {
    crate::failover::metric(&http::get(address, "/metrics")?, "treasury_executor_leader")
}

#[cfg(test)]
mod tests {
    use super::Status;

    #[test]
    fn status_of_a_leader_a_standby_and_a_node_cut_off() {
        let leader = Status::parse(
            r#"{"ha":{"store":"etcd","role":"leader","leader":{"identity":"ha-1","listen":"x",
            "pid":7,"since_ms":1},"since_ms":2,"term":42,"leader_changes":3,"error":null},
            "executor":{"running":true,"halted":null,"totals":{"executed":5,"cancelled":0}}}"#,
        )
        .expect("parses");
        assert_eq!(
            leader,
            Status {
                role: "leader".into(),
                leader: Some("ha-1".into()),
                leader_listen: Some("x".into()),
                term: 42,
                leader_changes: 3,
                executed: Some(5),
                running: true,
                halted: None,
            }
        );
        let cut_off = Status::parse(
            r#"{"ha":{"store":"etcd","role":"unavailable","leader":null,"since_ms":2,"term":0,
            "leader_changes":0,"error":"no etcd"},"executor":{"identity":"ha-0","running":false}}"#,
        )
        .expect("parses");
        assert_eq!(
            (cut_off.role.as_str(), cut_off.executed),
            ("unavailable", None)
        );
        let halted = Status::parse(
            r#"{"ha":{"role":"standby"},"executor":{"running":false,"halted":"nonce 4"}}"#,
        )
        .expect("parses");
        assert_eq!(halted.halted.as_deref(), Some("nonce 4"));
        assert!(Status::parse(r#"{"executor":{}}"#).is_err());
    }
}
