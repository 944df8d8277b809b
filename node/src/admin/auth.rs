//! `Operator`: who may call the admin API (a named token, compared in constant time),
//! what it may do (its role), and as whom it is recorded (the token's name; `X-Actor`
//! only as an unverified note).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use telemetry::labels;

use super::{ApiError, MAX_ACTOR_BYTES};
use crate::app::App;
use crate::config::Role;

/// An authenticated operator. Extracted before the body, so an unauthenticated call
/// is refused before anything is read or changed.
#[derive(Debug)]
pub struct Operator {
    /// The name of the token it presented: the actor of its audit records.
    pub(super) actor: String,
    /// What `X-Actor` said, if sent: recorded as a note, unverified.
    pub(super) note: Option<String>,
}

impl Operator {
    /// This operator's change, made now for `reason`, as the store audits it.
    pub(super) fn audit(&self, reason: &str) -> crate::governance::Audit {
        crate::governance::Audit {
            actor: self.actor.clone(),
            reason: reason.to_owned(),
            at_ms: super::audit::now_ms(),
            unverified_actor: self.note.clone(),
        }
    }
}

/// The refusal of a call without a valid token: 429 while its peer is over the limit of
/// failed authentications (which is counted), else 401.
fn refuse(app: &App, peer: Option<IpAddr>, presented: bool) -> ApiError {
    let now = Instant::now();
    if let Some(peer) = peer
        && let Err(retry) = app.auth_limiter.check(peer, now)
    {
        app.metrics.admin_auth_failure(labels::AUTH_LIMITED);
        return ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many failed authentications from {peer}: try again in {} s",
                retry.as_secs().max(1)
            ),
        );
    }
    if let Some(peer) = peer {
        app.auth_limiter.failed(peer, now);
    }
    if presented {
        app.metrics.admin_auth_failure(labels::AUTH_WRONG);
        ApiError(StatusCode::UNAUTHORIZED, "wrong admin token".into())
    } else {
        app.metrics.admin_auth_failure(labels::AUTH_MISSING);
        ApiError(
            StatusCode::UNAUTHORIZED,
            "missing `Authorization: Bearer <token>` header".into(),
        )
    }
}

impl FromRequestParts<Arc<App>> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        let tokens = &app.config.admin_tokens;
        if tokens.is_empty() {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                "the admin API is off: no admin token is configured (set TB_ADMIN_TOKEN or \
                 [[admin.tokens]])"
                    .into(),
            ));
        }
        // Without the peer's address (a router driven in-process), nothing is limited.
        let peer: Option<IpAddr> = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        // The scheme is case-insensitive (RFC 9110 §11.1); the token is compared exactly.
        let presented = parts
            .headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token);
        // Every token is compared, whichever matches: the time says nothing of which.
        let mut matched = None;
        for token in tokens {
            if presented.is_some_and(|presented| token.secret.matches(presented.as_bytes())) {
                matched = Some(token);
            }
        }
        // A valid token always passes: a peer address shared by many (a proxy, a NAT)
        // that someone fills with failures must not lock the operators out.
        let Some(token) = matched else {
            return Err(refuse(app, peer, presented.is_some()));
        };
        if token.role == Role::Viewer && parts.method != Method::GET {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                format!(
                    "token {:?} is a viewer: it may read /admin/..., not change anything",
                    token.name
                ),
            ));
        }
        let note = match parts.headers.get("x-actor") {
            None => None,
            // Printable ASCII only: a note is written to the audit log and the log
            // lines, where a tab or other control character could forge a field.
            Some(value) => match value.to_str().map(str::trim) {
                Ok(note)
                    if !note.is_empty()
                        && note.len() <= MAX_ACTOR_BYTES
                        && note.bytes().all(|b| (0x20..0x7f).contains(&b)) =>
                {
                    Some(note.to_owned())
                }
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "X-Actor must be 1 to {MAX_ACTOR_BYTES} bytes of printable ASCII"
                    )));
                }
            },
        };
        Ok(Operator {
            actor: token.name.clone(),
            note,
        })
    }
}
