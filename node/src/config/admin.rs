//! The admin API's credentials: named bearer tokens, each with a role.
//!
//! ```toml
//! [[admin.tokens]]
//! name = "alice"                          # what the audit log records as the actor
//! token_file = "/etc/treasury/alice.token" # read once at start; >= 32 bytes
//! role = "operator"                       # or "viewer" (reads /admin/..., changes nothing)
//! ```
//!
//! `admin_token` (TOML) and `TB_ADMIN_TOKEN` stay: one operator token named `admin`.
//! `[admin] auth_failures_per_minute` (default 10, 0 off): a peer address that fails to
//! authenticate that often gets 429 for the rest of the minute (a valid token passes).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;

/// Tokens given inline (`admin_token`, `TB_ADMIN_TOKEN`) shorter than this are refused.
pub const MIN_TOKEN_LEN: usize = 16;
/// Tokens read from a `token_file` shorter than this are refused.
pub const MIN_FILE_TOKEN_LEN: usize = 32;
/// The name the inline token is recorded under.
pub const INLINE_TOKEN_NAME: &str = "admin";
/// The longest token name: it goes into audit records and log lines.
pub const MAX_NAME_BYTES: usize = 64;

/// What a token may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read and change (the default).
    #[default]
    Operator,
    /// Read `/admin/...` only.
    Viewer,
}

impl Role {
    /// `operator` or `viewer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }
}

/// A secret that never prints: its `Debug` says `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `secret`.
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty (never, once configured).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The secret itself, for a client that must send it (the etcd password).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this secret, in time that depends only on the lengths.
    pub fn matches(&self, presented: &[u8]) -> bool {
        constant_time_eq(self.0.as_bytes(), presented)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Compares in time that depends only on the lengths, not on where the bytes differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// One admin credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminToken {
    /// Its name: the actor of every audit record made with it.
    pub name: String,
    /// The bearer token.
    pub secret: Secret,
    /// What it may do.
    pub role: Role,
}

impl AdminToken {
    /// The inline token (`admin_token`, `TB_ADMIN_TOKEN`): an operator named `admin`.
    pub fn inline(key: &str, token: String) -> Result<AdminToken, ConfigError> {
        if token.len() < MIN_TOKEN_LEN {
            return Err(ConfigError::new(
                key,
                format!("must be at least {MIN_TOKEN_LEN} characters"),
            ));
        }
        Ok(AdminToken {
            name: INLINE_TOKEN_NAME.into(),
            secret: Secret::new(token),
            role: Role::Operator,
        })
    }
}

/// Failed authentications a peer may make in a minute before it is refused (429) for
/// the rest of it, by default.
pub const DEFAULT_AUTH_FAILURES_PER_MINUTE: u32 = 10;

/// `[admin]` in the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct AdminFile {
    tokens: Vec<TokenEntry>,
    /// `admin.auth_failures_per_minute`: 0 turns the limit off.
    pub(super) auth_failures_per_minute: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    token_file: PathBuf,
    #[serde(default)]
    role: Role,
}

impl AdminFile {
    /// The tokens, each file read once, checked: names valid and distinct, secrets long
    /// enough and distinct (two names sharing a secret would make the audit log guess).
    pub(super) fn tokens(&mut self) -> Result<Vec<AdminToken>, ConfigError> {
        let mut tokens: Vec<AdminToken> = Vec::with_capacity(self.tokens.len());
        for (index, entry) in std::mem::take(&mut self.tokens).into_iter().enumerate() {
            let key = |field: &str| format!("admin.tokens[{index}].{field}");
            check_name(&key("name"), &entry.name)?;
            if tokens.iter().any(|token| token.name == entry.name) {
                return Err(ConfigError::new(
                    key("name"),
                    format!("{:?} is named twice", entry.name),
                ));
            }
            let secret = read_token(&key("token_file"), &entry.token_file)?;
            if tokens.iter().any(|token| token.secret == secret) {
                return Err(ConfigError::new(
                    key("token_file"),
                    "holds the same token as another name: give each name its own",
                ));
            }
            tokens.push(AdminToken {
                name: entry.name,
                secret,
                role: entry.role,
            });
        }
        Ok(tokens)
    }
}

fn check_name(key: &str, name: &str) -> Result<(), ConfigError> {
    let printable = name.bytes().all(|b| b.is_ascii_graphic());
    if name.is_empty() || name.len() > MAX_NAME_BYTES || !printable {
        return Err(ConfigError::new(
            key,
            format!("must be 1 to {MAX_NAME_BYTES} printable ASCII characters without spaces"),
        ));
    }
    Ok(())
}

/// The token in `path`: its first line, trimmed; never part of an error message.
fn read_token(key: &str, path: &Path) -> Result<Secret, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        ConfigError::new(key, format!("cannot read {}: {error}", path.display()))
    })?;
    let token = text.lines().next().unwrap_or_default().trim();
    if token.len() < MIN_FILE_TOKEN_LEN {
        return Err(ConfigError::new(
            key,
            format!(
                "{}: the token must be at least {MIN_FILE_TOKEN_LEN} bytes",
                path.display()
            ),
        ));
    }
    Ok(Secret::new(token))
}

/// Sets the inline token (named `admin`) in `tokens`. With `replace` (a later layer: the
/// environment over the file), it replaces a token named `admin`; without, one already
/// there is an error (the file names `admin` twice).
pub(super) fn set_inline(
    tokens: &mut Vec<AdminToken>,
    key: &str,
    token: String,
    replace: bool,
) -> Result<(), ConfigError> {
    let inline = AdminToken::inline(key, token)?;
    match tokens.iter_mut().find(|t| t.name == INLINE_TOKEN_NAME) {
        Some(existing) if replace => *existing = inline,
        Some(_) => {
            return Err(ConfigError::new(
                key,
                "a token in [[admin.tokens]] is already named `admin`",
            ));
        }
        None => tokens.push(inline),
    }
    let shared = tokens
        .iter()
        .enumerate()
        .any(|(i, a)| tokens[i + 1..].iter().any(|b| a.secret == b.secret));
    if shared {
        return Err(ConfigError::new(key, "is the same token as a named one"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let token = AdminToken::inline("admin_token", "s3cret-s3cret-s3cret".into()).expect("ok");
        let shown = format!("{token:?} {:?}", token.secret);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abcdefghijklmnop", b"abcdefghijklmnop"));
        assert!(!constant_time_eq(b"abcdefghijklmnop", b"abcdefghijklmnoq"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
