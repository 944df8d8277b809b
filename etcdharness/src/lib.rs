//! Real etcd members for tests and xtasks: started on free loopback ports with their data and
//! logs in a temporary directory, killed with SIGKILL (and the directory removed) on drop.
//!
//! ```no_run
//! let etcd = etcdharness::Etcd::single()?;
//! let endpoints = etcd.endpoints(); // ["http://127.0.0.1:PORT"]
//! # Ok::<(), String>(())
//! ```
//!
//! The binary is `$ETCD_BIN`, else `etcd` on `PATH` ([`etcd_binary`]); `cargo xtask validate`
//! installs it (Debian's `etcd-server`) when it is missing and sets `ETCD_BIN`.

use std::env;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

/// How long a member has to answer `/health` with `"health":"true"` after it is started.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(20);
/// How often `/health` is asked meanwhile.
const POLL: Duration = Duration::from_millis(50);
/// Connect, read and write timeout of one `/health` request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// How many lines of a member's log an error quotes.
const LOG_TAIL_LINES: usize = 12;

/// The etcd binary: $ETCD_BIN, else `etcd` on PATH.
pub fn etcd_binary() -> Option<PathBuf> {
    if let Some(path) = env::var_os("ETCD_BIN").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(path));
    }
    env::split_paths(&env::var_os("PATH")?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join("etcd"))
        .find(|candidate| candidate.is_file())
}

/// One etcd member: its name (`m0`, `m1`, ...), ports and process, if running.
#[derive(Debug)]
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

impl Member {
    fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }

    /// SIGKILL, then reaps it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // An error means it has exited already; `wait` reaps it either way.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Running etcd members forming one cluster, in a temporary directory (`mI/` the data
/// directory and `mI.log` the log of member `I`). Dropping it kills every member with SIGKILL,
/// waits for them, and removes the directory.
#[derive(Debug)]
pub struct Etcd {
    binary: PathBuf,
    /// `--initial-cluster-token`, unique to this cluster.
    token: String,
    members: Vec<Member>,
    dir: TempDir,
}

impl Etcd {
    /// One member, waited on until it answers /health (timeout 20 s), or an error naming its log file.
    pub fn single() -> Result<Etcd, String> {
        Self::cluster(1)
    }

    /// `n` members forming one cluster (--initial-cluster-state new, --experimental-enable-lease-checkpoint=true), waited on until healthy.
    ///
    /// Ports are picked by binding `127.0.0.1:0` and letting go, so another process may take
    /// one before etcd binds it: a start that fails is retried once, on new ports in a new
    /// directory. When the retry fails too, its directory is kept for its logs, and the error
    /// names the failing member's log file and quotes its last lines.
    pub fn cluster(n: usize) -> Result<Etcd, String> {
        if n == 0 {
            return Err("an etcd cluster needs at least one member".to_owned());
        }
        let binary = etcd_binary().ok_or_else(|| {
            "no etcd: set ETCD_BIN or put etcd on PATH (Debian/Ubuntu: `apt-get install etcd-server`)"
                .to_owned()
        })?;
        let mut etcd = Etcd::prepare(binary.clone(), n)?;
        let Err(first) = etcd.start_all() else {
            return Ok(etcd);
        };
        eprintln!("etcdharness: {first}\netcdharness: retrying once on new ports");
        drop(etcd);
        let mut etcd = Etcd::prepare(binary, n)?;
        match etcd.start_all() {
            Ok(()) => Ok(etcd),
            Err(second) => {
                etcd.kill_all();
                etcd.dir.disable_cleanup(true);
                Err(format!(
                    "{second}\n(retried once on new ports; the first attempt failed with: {first})"
                ))
            }
        }
    }

    /// Client URLs, e.g. "http://127.0.0.1:23790", one per member (including stopped ones).
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::client_url).collect()
    }

    /// kill -9 member i (waits for it to exit).
    ///
    /// Does nothing if it is not running. Panics if there is no member `i`.
    pub fn kill(&mut self, i: usize) {
        self.members[i].kill();
    }

    /// Starts member i again with the same data dir and ports (--initial-cluster-state existing), waits until healthy.
    ///
    /// A member still running is killed first. If it does not become healthy it is killed
    /// again, and the error names its log file. Panics if there is no member `i`.
    pub fn restart(&mut self, i: usize) -> Result<(), String> {
        self.kill(i);
        let result = self
            .spawn(i, "existing")
            .and_then(|()| self.wait_healthy(&[i]));
        if result.is_err() {
            self.kill(i);
        }
        result
    }

    /// The process id of member `i`, `None` once it has been killed (until it is restarted).
    ///
    /// Panics if there is no member `i`.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members[i].child.as_ref().map(Child::id)
    }

    /// The temporary directory: `mI/` is member `I`'s data directory, `mI.log` its log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A temporary directory and `n` members on free ports, none started.
    fn prepare(binary: PathBuf, n: usize) -> Result<Etcd, String> {
        static CLUSTERS: AtomicU64 = AtomicU64::new(0);
        let dir = tempfile::Builder::new()
            .prefix("etcdharness-")
            .tempdir()
            .map_err(|e| format!("could not create a temporary directory for etcd: {e}"))?;
        let ports = free_ports(2 * n)
            .map_err(|e| format!("could not find free loopback ports for etcd: {e}"))?;
        let members = ports
            .chunks_exact(2)
            .enumerate()
            .map(|(i, ports)| Member {
                name: format!("m{i}"),
                client_port: ports[0],
                peer_port: ports[1],
                child: None,
            })
            .collect();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let token = format!(
            "etcdharness-{}-{}-{nanos}",
            std::process::id(),
            CLUSTERS.fetch_add(1, Ordering::Relaxed)
        );
        Ok(Etcd {
            binary,
            token,
            members,
            dir,
        })
    }

    /// Starts every member as a new cluster and waits until all are healthy; on failure every
    /// member is killed.
    fn start_all(&mut self) -> Result<(), String> {
        let all: Vec<usize> = (0..self.members.len()).collect();
        let result = all
            .iter()
            .try_for_each(|&i| self.spawn(i, "new"))
            .and_then(|()| self.wait_healthy(&all));
        if result.is_err() {
            self.kill_all();
        }
        result
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir().join(format!("{}.log", self.members[i].name))
    }

    /// Starts member `i` with `--initial-cluster-state state` (`new` or `existing`).
    fn spawn(&mut self, i: usize, state: &str) -> Result<(), String> {
        let log_path = self.log_path(i);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("could not open {}: {e}", log_path.display()))?;
        // etcd logs to the file itself (--log-outputs); what it prints before that (a bad
        // flag, say) goes to the same file.
        let stdout = log
            .try_clone()
            .map_err(|e| format!("could not open {}: {e}", log_path.display()))?;
        let initial_cluster = self
            .members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        let member = &self.members[i];
        let client_url = member.client_url();
        let peer_url = member.peer_url();
        let mut command = Command::new(&self.binary);
        // etcd reads every ETCD_* variable as a flag (ETCD_BIN included: it warns about it).
        for (key, _) in env::vars_os() {
            if key.as_encoded_bytes().starts_with(b"ETCD_") {
                command.env_remove(key);
            }
        }
        command
            .arg("--name")
            .arg(&member.name)
            .arg("--data-dir")
            .arg(self.dir.path().join(&member.name))
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &initial_cluster])
            .args(["--initial-cluster-token", &self.token])
            .args(["--initial-cluster-state", state])
            // A Go boolean flag: `--flag true` would leave `true` as a stray argument.
            .arg("--experimental-enable-lease-checkpoint=true")
            .args(["--max-txn-ops", "10000"])
            .args(["--max-request-bytes", "10485760"])
            .args(["--heartbeat-interval", "100"])
            .args(["--election-timeout", "1000"])
            .args(["--logger", "zap"])
            .arg("--log-outputs")
            .arg(&log_path)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log);
        let child = command.spawn().map_err(|e| {
            format!(
                "could not start etcd member {} ({}): {e}",
                member.name,
                self.binary.display()
            )
        })?;
        self.members[i].child = Some(child);
        Ok(())
    }

    /// Waits until each of `members` answers `/health` with `"health":"true"`, for at most
    /// [`HEALTH_TIMEOUT`]; fails at once if one exits.
    fn wait_healthy(&mut self, members: &[usize]) -> Result<(), String> {
        let deadline = Instant::now() + HEALTH_TIMEOUT;
        let mut pending = members.to_vec();
        loop {
            for &i in &pending {
                let member = &mut self.members[i];
                let exited = match member.child.as_mut().map(Child::try_wait) {
                    None => Some("is not running".to_owned()),
                    Some(Ok(Some(status))) => Some(format!("exited ({status})")),
                    Some(Ok(None)) => None,
                    Some(Err(e)) => Some(format!("could not be waited on: {e}")),
                };
                if let Some(why) = exited {
                    let name = member.name.clone();
                    return Err(self.failure(i, &format!("etcd member {name} {why}")));
                }
            }
            pending.retain(|&i| !healthy(self.members[i].client_port));
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let i = pending[0];
                let member = &self.members[i];
                let what = format!(
                    "etcd member {} did not answer {}/health with \"health\":\"true\" within {} s",
                    member.name,
                    member.client_url(),
                    HEALTH_TIMEOUT.as_secs()
                );
                return Err(self.failure(i, &what));
            }
            thread::sleep(POLL);
        }
    }

    /// `what`, the log file of member `i` and its last lines.
    fn failure(&self, i: usize, what: &str) -> String {
        let path = self.log_path(i);
        match fs::read_to_string(&path) {
            Ok(text) if text.trim().is_empty() => {
                format!("{what}; log: {} (empty)", path.display())
            }
            Ok(text) => {
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
                format!("{what}; log: {}, which ends:\n{tail}", path.display())
            }
            Err(e) => format!("{what}; log: {} (unreadable: {e})", path.display()),
        }
    }

    fn kill_all(&mut self) {
        for member in &mut self.members {
            member.kill();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// `count` distinct free loopback ports: all bound at once (so none repeats), then let go.
fn free_ports(count: usize) -> io::Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

/// Whether etcd on `127.0.0.1:port` answers `GET /health` with `"health":"true"`.
fn healthy(port: u16) -> bool {
    get(port, "/health").is_ok_and(|body| body.contains(r#""health":"true""#))
}

/// The body of a `200 OK` answer to `GET path` on `127.0.0.1:port` (HTTP/1.0: the server
/// closes the connection after the answer).
fn get(port: u16, path: &str) -> Result<String, String> {
    let response = request(port, &format!("GET {path} HTTP/1.0\r\n\r\n"))
        .map_err(|e| format!("GET {path} on port {port}: {e}"))?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("GET {path} on port {port}: no end of headers in {response:?}"))?;
    let status_line = head.lines().next().unwrap_or_default();
    if status_line.split_whitespace().nth(1) == Some("200") {
        Ok(body.to_owned())
    } else {
        Err(format!("GET {path} on port {port}: {status_line}"))
    }
}

/// Sends `request` to `127.0.0.1:port` and reads the whole response.
fn request(port: u16, request: &str) -> io::Result<String> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&address, REQUEST_TIMEOUT)?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    stream.write_all(
        request
            .replacen("\r\n", &format!("\r\nHost: 127.0.0.1:{port}\r\n"), 1)
            .as_bytes(),
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// Whether etcd is here, for a test that needs it. Without it: a loud skip (`false`),
/// except under `CI=true`, where a test that cannot run must fail (CI never goes green
/// by skipping).
pub fn have_etcd(test: &str) -> bool {
    if etcd_binary().is_some() {
        return true;
    }
    let hint = "set ETCD_BIN or put etcd on PATH (Debian: etcd-server; \
                `cargo xtask validate` installs it)";
    assert!(
        env::var("CI").as_deref() != Ok("true"),
        "{test}: CI=true and there is no etcd: {hint}"
    );
    // Straight to stderr: the test harness captures `eprintln!` of passing tests.
    let banner = format!("\n**********\n*** SKIPPED {test}: no etcd: {hint}\n**********\n");
    let _ = io::stderr().write_all(banner.as_bytes());
    false
}

/// One member for a test, or `None` (a loud skip) where there is no etcd: see
/// [`have_etcd`].
pub fn single_for_test(test: &str) -> Option<Etcd> {
    have_etcd(test).then(|| Etcd::single().expect("etcd starts"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn have_etcd(test: &str) -> bool {
        super::have_etcd(test)
    }

    fn port_of(endpoint: &str) -> u16 {
        endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {endpoint}"))
    }

    /// The body of the answer to `POST path` with the JSON `body`, which must be 200 OK.
    fn post(port: u16, path: &str, body: &str) -> String {
        let response = request(
            port,
            &format!(
                "POST {path} HTTP/1.0\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        )
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or_default();
        assert!(
            head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
            "{response}"
        );
        body.to_owned()
    }

    fn alive(pid: u32) -> bool {
        Path::new(&format!("/proc/{pid}")).exists()
    }

    /// Waits (as the harness does) until etcd on `port` is healthy; a killed member's peers
    /// may need an election first.
    fn assert_becomes_healthy(port: u16) {
        let deadline = Instant::now() + HEALTH_TIMEOUT;
        while !healthy(port) {
            assert!(
                Instant::now() < deadline,
                "port {port} never became healthy"
            );
            thread::sleep(POLL);
        }
    }

    #[test]
    fn single_starts_and_answers() {
        if !have_etcd("single_starts_and_answers") {
            return;
        }
        let etcd = Etcd::single().expect("etcd starts");
        let endpoints = etcd.endpoints();
        assert_eq!(endpoints.len(), 1);
        assert!(
            endpoints[0].starts_with("http://127.0.0.1:"),
            "{endpoints:?}"
        );
        let port = port_of(&endpoints[0]);
        let health = get(port, "/health").expect("answers /health");
        assert!(health.contains(r#""health":"true""#), "{health}");
        // It serves keys too, through its JSON gateway ("Zm9v" is "foo", "YmFy" "bar").
        post(port, "/v3/kv/put", r#"{"key":"Zm9v","value":"YmFy"}"#);
        let range = post(port, "/v3/kv/range", r#"{"key":"Zm9v"}"#);
        assert!(range.contains(r#""value":"YmFy""#), "{range}");
        let pid = etcd.pid(0).expect("running");
        assert!(alive(pid));
        assert!(etcd.dir().join("m0").is_dir(), "data directory");
        assert!(etcd.dir().join("m0.log").is_file(), "log file");
        // No ETCD_* variable reaches it (under validate, ETCD_BIN is set in ours).
        let environ = fs::read(format!("/proc/{pid}/environ")).expect("its environment");
        for var in environ.split(|&b| b == 0) {
            assert!(
                !var.starts_with(b"ETCD_"),
                "{}",
                String::from_utf8_lossy(var)
            );
        }
    }

    #[test]
    fn cluster_members_can_be_killed_and_restarted() {
        if !have_etcd("cluster_members_can_be_killed_and_restarted") {
            return;
        }
        let mut etcd = Etcd::cluster(3).expect("cluster starts");
        let endpoints = etcd.endpoints();
        assert_eq!(endpoints.len(), 3);
        for endpoint in &endpoints {
            assert!(healthy(port_of(endpoint)), "{endpoint}");
        }
        let pid = etcd.pid(1).expect("running");
        etcd.kill(1);
        assert_eq!(etcd.pid(1), None);
        assert!(!alive(pid), "member 1 ({pid}) still exists after kill");
        assert!(!healthy(port_of(&endpoints[1])));
        assert_eq!(
            etcd.endpoints(),
            endpoints,
            "a stopped member keeps its endpoint"
        );
        // The other two keep a quorum.
        assert_becomes_healthy(port_of(&endpoints[0]));
        assert_becomes_healthy(port_of(&endpoints[2]));

        etcd.restart(1).expect("member 1 restarts");
        assert_eq!(etcd.endpoints(), endpoints, "same ports after a restart");
        let new_pid = etcd.pid(1).expect("running again");
        assert_ne!(new_pid, pid);
        for endpoint in &endpoints {
            assert!(healthy(port_of(endpoint)), "{endpoint}");
        }
    }

    #[test]
    fn drop_kills_every_member_and_removes_the_directory() {
        if !have_etcd("drop_kills_every_member_and_removes_the_directory") {
            return;
        }
        let etcd = Etcd::cluster(2).expect("cluster starts");
        let pids: Vec<u32> = (0..2).map(|i| etcd.pid(i).expect("running")).collect();
        let dir = etcd.dir().to_path_buf();
        assert!(pids.iter().all(|&pid| alive(pid)));
        drop(etcd);
        for pid in pids {
            assert!(!alive(pid), "etcd {pid} still exists after drop");
        }
        assert!(!dir.exists(), "{} still exists after drop", dir.display());
    }

    #[test]
    fn free_ports_are_distinct() {
        let ports = free_ports(8).expect("free ports");
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 8, "{ports:?}");
    }

    #[test]
    fn nothing_listening_is_not_healthy() {
        let port = free_ports(1).expect("a free port")[0];
        assert!(!healthy(port));
    }
}
