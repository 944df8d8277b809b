//! `[etcd]`: the cluster the executor keeps its state in with `store = "etcd"`, shared by
//! several nodes of which one leads (it holds a lease, renewed as it ticks).
//!
//! ```toml
//! store = "etcd"
//!
//! [etcd]
//! endpoints = ["https://etcd-0:2379", "https://etcd-1:2379", "https://etcd-2:2379"]
//! prefix = "/treasury/"                     # every key the node writes starts with it
//! lease_ttl_secs = 10                       # the leader's lease (2 to 300)
//! request_timeout_ms = 2000                 # each request's deadline (100 to 60000)
//! username = "treasury"                     # with password_file: no secret inline
//! password_file = "/run/secrets/etcd-password"
//! ca_file = "/etc/treasury/etcd-ca.pem"     # required by https:// endpoints
//! cert_file = "/etc/treasury/etcd-client.pem"  # client certificate, with key_file
//! key_file = "/etc/treasury/etcd-client.key"
//! ```
//!
//! The environment overrides the file: `TB_ETCD_ENDPOINTS` (comma-separated, replaces the
//! list), `TB_ETCD_PREFIX`, `TB_ETCD_LEASE_TTL_SECS`, `TB_ETCD_USERNAME`,
//! `TB_ETCD_PASSWORD_FILE`. Each value is checked as it is read (the error names the key or
//! variable it came from); the rules between keys are checked once every layer is in
//! ([`EtcdConfig::check`]), naming the TOML key.

use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Env, Secret, StoreKind};

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "/treasury/";
/// The default lease of the leader, in seconds.
pub const DEFAULT_LEASE_TTL_SECS: u64 = 10;
/// The shortest lease, in seconds.
pub const MIN_LEASE_TTL_SECS: u64 = 2;
/// The longest lease, in seconds: a leader that dies holds the executor up this long.
pub const MAX_LEASE_TTL_SECS: u64 = 300;
/// The default deadline of one request to etcd, in milliseconds.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 2000;
/// The shortest request deadline, in milliseconds.
pub const MIN_REQUEST_TIMEOUT_MS: u64 = 100;
/// The longest request deadline, in milliseconds.
pub const MAX_REQUEST_TIMEOUT_MS: u64 = 60_000;

/// The etcd cluster (`[etcd]`), used with `store = "etcd"`.
#[derive(Debug, Clone, PartialEq)]
pub struct EtcdConfig {
    /// The cluster's client URLs, `http://host:port` or `https://host:port`
    /// (`etcd.endpoints`; `TB_ETCD_ENDPOINTS` comma-separated, replacing the file's list).
    /// Required with `store = "etcd"`.
    pub endpoints: Vec<String>,
    /// Every key the node reads or writes starts with it (`etcd.prefix`, `TB_ETCD_PREFIX`;
    /// default `/treasury/`).
    pub prefix: String,
    /// The leader's lease (`etcd.lease_ttl_secs`, `TB_ETCD_LEASE_TTL_SECS`; default 10 s,
    /// 2 to 300, at least two poll intervals).
    pub lease_ttl: Duration,
    /// Each request's deadline (`etcd.request_timeout_ms`; default 2000 ms, 100 to 60,000,
    /// shorter than the lease).
    pub request_timeout: Duration,
    /// The user to authenticate as (`etcd.username`, `TB_ETCD_USERNAME`), with
    /// `password_file`.
    pub username: Option<String>,
    /// The file holding `username`'s password (`etcd.password_file`,
    /// `TB_ETCD_PASSWORD_FILE`): its first line, surrounding whitespace ignored
    /// ([`EtcdConfig::password`]).
    pub password_file: Option<PathBuf>,
    /// PEM CA certificates the servers' certificates must chain to (`etcd.ca_file`);
    /// required by `https://` endpoints.
    pub ca_file: Option<PathBuf>,
    /// The client certificate, PEM (`etcd.cert_file`), with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key, PEM (`etcd.key_file`), with `cert_file`.
    pub key_file: Option<PathBuf>,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        EtcdConfig {
            endpoints: Vec::new(),
            prefix: DEFAULT_PREFIX.into(),
            lease_ttl: Duration::from_secs(DEFAULT_LEASE_TTL_SECS),
            request_timeout: Duration::from_millis(DEFAULT_REQUEST_TIMEOUT_MS),
            username: None,
            password_file: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
        }
    }
}

impl EtcdConfig {
    /// Whether the connection uses TLS: some endpoint is `https://` or a TLS file is set
    /// (once [`check`](EtcdConfig::check)ed, both or neither).
    pub fn tls(&self) -> bool {
        self.endpoints.iter().any(|url| url.starts_with("https://"))
            || self.ca_file.is_some()
            || self.cert_file.is_some()
            || self.key_file.is_some()
    }

    /// The password, read from `password_file` now: its first line, surrounding whitespace
    /// ignored; `None` without a `password_file`. An unreadable file or an empty password
    /// is an error naming `etcd.password_file`; the password is never part of one.
    pub fn password(&self) -> Result<Option<Secret>, ConfigError> {
        const KEY: &str = "etcd.password_file";
        let Some(path) = &self.password_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|error| {
            ConfigError::new(KEY, format!("cannot read {}: {error}", path.display()))
        })?;
        let password = text.lines().next().unwrap_or_default().trim();
        if password.is_empty() {
            return Err(ConfigError::new(
                KEY,
                format!("{}: the first line (the password) is empty", path.display()),
            ));
        }
        Ok(Some(Secret::new(password)))
    }

    /// The rules between keys, once every layer is in. Always: `username` with
    /// `password_file`, `cert_file` with `key_file`, TLS files only with `https://`
    /// endpoints and `https://` endpoints only with `ca_file`. With `store = "etcd"` as
    /// well: at least one endpoint, a lease of at least two poll intervals and longer than
    /// a request's deadline, and every file readable (the password not empty).
    pub(super) fn check(
        &self,
        store: StoreKind,
        poll_interval: Duration,
    ) -> Result<(), ConfigError> {
        match (&self.username, &self.password_file) {
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "etcd.password_file",
                    "etcd.username is set without it: set the file holding the user's \
                     password (`password_file` or TB_ETCD_PASSWORD_FILE), or unset the username",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "etcd.username",
                    "etcd.password_file is set without it: set the user the password is for \
                     (`username` or TB_ETCD_USERNAME), or unset the password file",
                ));
            }
            _ => {}
        }
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "etcd.key_file",
                    "etcd.cert_file is set without it: a client certificate needs its private key",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "etcd.cert_file",
                    "etcd.key_file is set without it: a private key needs its client certificate",
                ));
            }
            _ => {}
        }
        let tls_file = [
            ("ca_file", &self.ca_file),
            ("cert_file", &self.cert_file),
            ("key_file", &self.key_file),
        ]
        .into_iter()
        .find_map(|(name, path)| path.as_ref().map(|_| name));
        let plain = self
            .endpoints
            .iter()
            .position(|url| url.starts_with("http://"));
        if let (Some(name), Some(index)) = (tls_file, plain) {
            return Err(ConfigError::new(
                "etcd.endpoints",
                format!(
                    "etcd.{name} is set, so every endpoint must be https://, and {} is \
                     http:// (endpoint {})",
                    self.endpoints[index],
                    index + 1
                ),
            ));
        }
        if self.ca_file.is_none() && self.endpoints.iter().any(|url| url.starts_with("https://")) {
            return Err(ConfigError::new(
                "etcd.ca_file",
                "https:// endpoints need it: the PEM file of the CA certificates that signed the \
                 etcd servers' certificates (the system's trusted CAs are not used for etcd)",
            ));
        }
        if store != StoreKind::Etcd {
            return Ok(());
        }
        if self.endpoints.is_empty() {
            return Err(ConfigError::new(
                "etcd.endpoints",
                "store = \"etcd\" needs at least one endpoint's URL (`endpoints` in [etcd] or \
                 TB_ETCD_ENDPOINTS)",
            ));
        }
        if self.lease_ttl < poll_interval * 2 {
            return Err(ConfigError::new(
                "etcd.lease_ttl_secs",
                format!(
                    "the lease ({} s) must be at least twice poll_interval_ms ({} ms): the \
                     leader renews it as it ticks, and a lease shorter than two ticks could \
                     lapse between them and hand the executor to another node",
                    self.lease_ttl.as_secs(),
                    poll_interval.as_millis()
                ),
            ));
        }
        if self.request_timeout * 3 > self.lease_ttl {
            return Err(ConfigError::new(
                "etcd.request_timeout_ms",
                format!(
                    "must be at most a third of the lease (etcd.lease_ttl_secs = {} s), got {} ms: \
                     a renewal that hangs must fail, and the next one be tried, while the lease \
                     still holds",
                    self.lease_ttl.as_secs(),
                    self.request_timeout.as_millis()
                ),
            ));
        }
        self.password()?;
        for (key, path) in [
            ("etcd.ca_file", &self.ca_file),
            ("etcd.cert_file", &self.cert_file),
            ("etcd.key_file", &self.key_file),
        ] {
            if let Some(path) = path {
                std::fs::File::open(path).map_err(|error| {
                    ConfigError::new(key, format!("cannot read {}: {error}", path.display()))
                })?;
            }
        }
        Ok(())
    }

    /// What is allowed but probably a mistake, for the log at start (with `store = "etcd"`).
    pub(super) fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if !self.prefix.ends_with('/') {
            warnings.push(format!(
                "etcd.prefix {:?} does not end with `/`: a deployment whose prefix starts with \
                 it (e.g. {:?}) would read and write this one's keys",
                self.prefix,
                format!("{}-b/", self.prefix)
            ));
        }
        if self.username.is_some() && self.endpoints.iter().any(|url| url.starts_with("http://")) {
            warnings.push(
                "etcd.username is set with http:// endpoints: the password crosses the network \
                 in clear; use https:// endpoints and etcd.ca_file"
                    .into(),
            );
        }
        warnings
    }
}

/// `[etcd]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct EtcdFile {
    endpoints: Option<Vec<String>>,
    prefix: Option<String>,
    lease_ttl_secs: Option<i64>,
    request_timeout_ms: Option<i64>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
}

impl EtcdFile {
    /// Sets the keys the file sets, each checked.
    pub(super) fn apply(self, config: &mut EtcdConfig) -> Result<(), ConfigError> {
        if let Some(urls) = self.endpoints {
            if urls.is_empty() {
                return Err(ConfigError::new(
                    "etcd.endpoints",
                    "must list at least one endpoint",
                ));
            }
            let mut endpoints: Vec<String> = Vec::with_capacity(urls.len());
            for (i, url) in urls.iter().enumerate() {
                let key = format!("etcd.endpoints[{i}]");
                let url = endpoint(&key, url)?;
                if endpoints.contains(&url) {
                    return Err(ConfigError::new(key, format!("{url} is listed twice")));
                }
                endpoints.push(url);
            }
            config.endpoints = endpoints;
        }
        if let Some(prefix) = self.prefix {
            config.prefix = prefix_value("etcd.prefix", prefix)?;
        }
        if let Some(secs) = self.lease_ttl_secs {
            config.lease_ttl = Duration::from_secs(lease_secs("etcd.lease_ttl_secs", secs)?);
        }
        if let Some(ms) = self.request_timeout_ms {
            if !(MIN_REQUEST_TIMEOUT_MS as i64..=MAX_REQUEST_TIMEOUT_MS as i64).contains(&ms) {
                return Err(ConfigError::new(
                    "etcd.request_timeout_ms",
                    format!(
                        "must be {MIN_REQUEST_TIMEOUT_MS} to {MAX_REQUEST_TIMEOUT_MS}, got {ms}"
                    ),
                ));
            }
            config.request_timeout = Duration::from_millis(ms as u64);
        }
        if let Some(username) = self.username {
            config.username = Some(username_value("etcd.username", username)?);
        }
        for (key, value, slot) in [
            (
                "etcd.password_file",
                self.password_file,
                &mut config.password_file,
            ),
            ("etcd.ca_file", self.ca_file, &mut config.ca_file),
            ("etcd.cert_file", self.cert_file, &mut config.cert_file),
            ("etcd.key_file", self.key_file, &mut config.key_file),
        ] {
            if let Some(path) = value {
                *slot = Some(path_value(key, path)?);
            }
        }
        Ok(())
    }
}

/// Sets what the `TB_ETCD_*` variables set, each checked.
pub(super) fn apply_env(config: &mut EtcdConfig, env: &dyn Env) -> Result<(), ConfigError> {
    const ENDPOINTS: &str = "TB_ETCD_ENDPOINTS";
    if let Some(list) = env.var(ENDPOINTS) {
        let mut endpoints: Vec<String> = Vec::new();
        for (i, url) in list.split(',').enumerate() {
            if url.trim().is_empty() {
                return Err(ConfigError::new(ENDPOINTS, "an empty URL in the list"));
            }
            let url = endpoint(ENDPOINTS, url).map_err(|error| {
                ConfigError::new(ENDPOINTS, format!("entry {}: {}", i + 1, error.message))
            })?;
            if endpoints.contains(&url) {
                return Err(ConfigError::new(
                    ENDPOINTS,
                    format!("{url} is listed twice"),
                ));
            }
            endpoints.push(url);
        }
        config.endpoints = endpoints;
    }
    if let Some(prefix) = env.var("TB_ETCD_PREFIX") {
        config.prefix = prefix_value("TB_ETCD_PREFIX", prefix)?;
    }
    if let Some(text) = env.var("TB_ETCD_LEASE_TTL_SECS") {
        const KEY: &str = "TB_ETCD_LEASE_TTL_SECS";
        let secs: i64 = text.trim().parse().map_err(|_| {
            ConfigError::new(
                KEY,
                format!(
                    "expected a whole number of seconds, got {:?}",
                    crate::governance::text::bounded(&text, 32)
                ),
            )
        })?;
        config.lease_ttl = Duration::from_secs(lease_secs(KEY, secs)?);
    }
    if let Some(username) = env.var("TB_ETCD_USERNAME") {
        config.username = Some(username_value("TB_ETCD_USERNAME", username)?);
    }
    if let Some(path) = env.var("TB_ETCD_PASSWORD_FILE") {
        config.password_file = Some(PathBuf::from(path));
    }
    Ok(())
}

/// An endpoint: `http://host:port` or `https://host:port` (a trailing `/` dropped), host a
/// name, an IPv4 address or a bracketed IPv6 address, port 1 to 65535. No user info (it
/// would put a password inline: that is `username` and `password_file`), no path.
fn endpoint(key: &str, url: &str) -> Result<String, ConfigError> {
    const SHAPE: &str = "expected http://host:port or https://host:port";
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(ConfigError::new(
            key,
            format!("{SHAPE}, got {:?}", shown(url)),
        ));
    };
    if scheme != "http" && scheme != "https" {
        return Err(ConfigError::new(
            key,
            format!(
                "{SHAPE}: the scheme must be http or https, got {:?}",
                shown(url)
            ),
        ));
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('@') {
        return Err(ConfigError::new(
            key,
            "user info in an endpoint's URL is refused (it would put the password inline): \
             set etcd.username and etcd.password_file",
        ));
    }
    if authority.contains(['/', '?', '#']) {
        return Err(ConfigError::new(
            key,
            format!("{SHAPE}, without a path, got {:?}", shown(url)),
        ));
    }
    let Some((host, port)) = authority.rsplit_once(':') else {
        return Err(ConfigError::new(
            key,
            format!(
                "{SHAPE}: the port is missing (etcd's is usually 2379), got {:?}",
                shown(url)
            ),
        ));
    };
    let valid_host = match host.strip_prefix('[') {
        Some(inner) => inner
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<Ipv6Addr>().is_ok()),
        None => {
            !host.is_empty()
                && host.len() <= 253
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        }
    };
    if !valid_host {
        return Err(ConfigError::new(
            key,
            format!(
                "{SHAPE}: the host must be a name, an IPv4 address or an IPv6 address in \
                 brackets, got {:?}",
                shown(url)
            ),
        ));
    }
    if !matches!(port.parse::<u16>(), Ok(1..)) {
        return Err(ConfigError::new(
            key,
            format!("{SHAPE}: the port must be 1 to 65535, got {:?}", shown(url)),
        ));
    }
    Ok(format!("{scheme}://{authority}"))
}

/// A value for an error message: at most 64 characters of it.
fn shown(value: &str) -> String {
    crate::governance::text::bounded(value, 64)
}

fn prefix_value(key: &str, prefix: String) -> Result<String, ConfigError> {
    if prefix.is_empty() {
        return Err(ConfigError::new(
            key,
            "must not be empty: every key the node writes starts with it (the default is \
             \"/treasury/\")",
        ));
    }
    if prefix.contains('\0') {
        return Err(ConfigError::new(key, "must not contain a NUL character"));
    }
    Ok(prefix)
}

fn lease_secs(key: &str, secs: i64) -> Result<u64, ConfigError> {
    if !(MIN_LEASE_TTL_SECS as i64..=MAX_LEASE_TTL_SECS as i64).contains(&secs) {
        return Err(ConfigError::new(
            key,
            format!("must be {MIN_LEASE_TTL_SECS} to {MAX_LEASE_TTL_SECS} seconds, got {secs}"),
        ));
    }
    Ok(secs as u64)
}

fn username_value(key: &str, username: String) -> Result<String, ConfigError> {
    if username.trim().is_empty() || username.chars().any(char::is_control) {
        return Err(ConfigError::new(
            key,
            "must not be empty, blank or hold control characters",
        ));
    }
    Ok(username)
}

fn path_value(key: &str, path: PathBuf) -> Result<PathBuf, ConfigError> {
    if path.as_os_str().is_empty() {
        return Err(ConfigError::new(
            key,
            "must not be empty (leave the key out)",
        ));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_http_or_https_host_and_port() {
        for (url, expected) in [
            ("http://127.0.0.1:2379", "http://127.0.0.1:2379"),
            (
                "https://etcd-0.etcd.svc:2379/",
                "https://etcd-0.etcd.svc:2379",
            ),
            (" http://[::1]:2379 ", "http://[::1]:2379"),
        ] {
            assert_eq!(endpoint("k", url).expect(url), expected);
        }
        for url in [
            "127.0.0.1:2379",
            "etcd://a:2379",
            "HTTP://a:2379",
            "http://a",
            "http://a:0",
            "http://a:65536",
            "http://a:x",
            "http://:2379",
            "http://a b:2379",
            "http://a:2379/v3",
            "http://a:2379?x=1",
            "http://[::1:2379",
            "http://::1:2379",
        ] {
            let error = endpoint("k", url).expect_err(url);
            assert_eq!(error.key, "k");
        }
        let error = endpoint("k", "https://root:s3cret@a:2379").expect_err("user info");
        assert!(!error.to_string().contains("s3cret"), "{error}");
    }

    #[test]
    fn the_password_is_the_first_line_and_never_shown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("password");
        std::fs::write(&path, "  s3cret \nsecond line\n").expect("write");
        let config = EtcdConfig {
            username: Some("treasury".into()),
            password_file: Some(path.clone()),
            ..EtcdConfig::default()
        };
        let password = config.password().expect("read").expect("set");
        assert!(password.matches(b"s3cret"));
        assert!(!format!("{password:?}").contains("s3cret"));
        std::fs::write(&path, "\n").expect("write");
        let error = config.password().expect_err("empty");
        assert_eq!(error.key, "etcd.password_file");
        assert_eq!(EtcdConfig::default().password(), Ok(None));
    }
}
