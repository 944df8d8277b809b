//! `Operator`: who may call the admin API, and as whom it is recorded.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::{ApiError, MAX_ACTOR_BYTES};
use crate::app::App;

/// An authenticated operator. Extracted before the body, so an unauthenticated call
/// is refused before anything is read or changed.
#[derive(Debug)]
pub struct Operator {
    pub(super) actor: String,
}

impl Operator {
    /// This operator's change, made now for `reason`, as the store audits it.
    pub(super) fn audit(&self, reason: &str) -> crate::governance::Audit {
        crate::governance::Audit {
            actor: self.actor.clone(),
            reason: reason.to_owned(),
            at_ms: super::audit::now_ms(),
        }
    }
}

impl FromRequestParts<Arc<App>> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        let Some(expected) = &app.config.admin_token else {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                "the admin API is off: no admin token is configured (set TB_ADMIN_TOKEN)".into(),
            ));
        };
        // The scheme is case-insensitive (RFC 9110 §11.1); the token is compared exactly.
        let presented = parts
            .headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token);
        match presented {
            Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => {}
            Some(_) => {
                return Err(ApiError(
                    StatusCode::UNAUTHORIZED,
                    "wrong admin token".into(),
                ));
            }
            None => {
                return Err(ApiError(
                    StatusCode::UNAUTHORIZED,
                    "missing `Authorization: Bearer <token>` header".into(),
                ));
            }
        }
        let actor = match parts.headers.get("x-actor") {
            None => "admin".to_owned(),
            // Printable ASCII only: an actor is written to the audit log and the log
            // lines, where a tab or other control character could forge a field.
            Some(value) => match value.to_str().map(str::trim) {
                Ok(actor)
                    if !actor.is_empty()
                        && actor.len() <= MAX_ACTOR_BYTES
                        && actor.bytes().all(|b| (0x20..0x7f).contains(&b)) =>
                {
                    actor.to_owned()
                }
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "X-Actor must be 1 to {MAX_ACTOR_BYTES} bytes of printable ASCII"
                    )));
                }
            },
        };
        Ok(Operator { actor })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abcdefghijklmnop", b"abcdefghijklmnop"));
        assert!(!constant_time_eq(b"abcdefghijklmnop", b"abcdefghijklmnoq"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
