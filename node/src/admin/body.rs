//! The request bodies and their checks (a malformed one is a 400 with the reason), and
//! how a disbursement is shown.

use axum::body::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{ApiError, MAX_REASON_BYTES};
use crate::app::App;
use crate::governance::{Disbursement, NewDisbursement, Resolution};

/// Parses a JSON body; anything malformed is a 400 with serde's reason.
pub(super) fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request(format!("malformed request body: {error}")))
}

/// `{"reason": …}`: the body of overrides and cancellations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReasonBody {
    reason: String,
}

impl ReasonBody {
    pub(super) fn reason(body: &Bytes) -> Result<String, ApiError> {
        let ReasonBody { reason } = parse(body)?;
        checked_reason(&reason)
    }
}

/// A reason trimmed, and refused if empty or too long.
fn checked_reason(reason: &str) -> Result<String, ApiError> {
    let reason = reason.trim().to_owned();
    if reason.is_empty() {
        return Err(ApiError::bad_request("reason must not be empty"));
    }
    if reason.len() > MAX_REASON_BYTES {
        return Err(ApiError::bad_request(format!(
            "reason is over {MAX_REASON_BYTES} bytes"
        )));
    }
    Ok(reason)
}

/// `POST /admin/disbursements`'s body (and each item of a batch's).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct QueueBody {
    destination: String,
    amount: String,
    #[serde(default)]
    memo: String,
    #[serde(default)]
    activation_epoch: u64,
    #[serde(default)]
    depends_on: Vec<u64>,
    #[serde(default)]
    external_key: Option<String>,
    /// `native` (the default) or a configured token's symbol.
    #[serde(default)]
    asset: Option<String>,
}

fn parse_amount(text: &str) -> Result<u128, ApiError> {
    let invalid = || {
        ApiError::bad_request(format!(
            "amount must be a positive integer as a decimal string, got {text:?}"
        ))
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match text.parse::<u128>() {
        Ok(0) => Err(ApiError::bad_request("amount must be greater than zero")),
        Ok(amount) => Ok(amount),
        Err(_) => Err(invalid()),
    }
}

/// A disbursement as the API shows it: the amount as a decimal string (JSON numbers lose
/// precision past 2^53, and serde_json cannot hold a u128 past 2^64 at all).
#[derive(serde::Serialize)]
struct View<'a> {
    id: u64,
    destination: &'a str,
    amount: String,
    memo: &'a str,
    activation_epoch: u64,
    depends_on: &'a [u64],
    external_key: Option<&'a str>,
    asset: &'a str,
    status: &'a crate::governance::DisbursementStatus,
    queued_at_ms: u64,
    approvals: &'a [crate::governance::Approval],
}

pub(super) fn view(d: &Disbursement) -> Value {
    let view = View {
        id: d.id,
        destination: &d.destination,
        amount: d.amount.to_string(),
        memo: &d.memo,
        activation_epoch: d.activation_epoch,
        depends_on: &d.depends_on,
        external_key: d.external_key.as_deref(),
        asset: &d.asset,
        status: &d.status,
        queued_at_ms: d.queued_at_ms,
        approvals: &d.approvals,
    };
    // Strings, integers below 2^64 and a tagged enum of them: cannot fail.
    serde_json::to_value(view).unwrap_or(Value::Null)
}

impl QueueBody {
    /// The request, once the amount parses and the ledger accepts the destination.
    pub(super) fn request(self, app: &App) -> Result<NewDisbursement, ApiError> {
        let amount = parse_amount(&self.amount)?;
        app.ledger
            .validate_destination(&self.destination)
            .map_err(|reason| ApiError::bad_request(format!("invalid destination: {reason}")))?;
        let asset = self
            .asset
            .unwrap_or_else(|| crate::governance::policy::NATIVE.to_owned());
        app.ledger
            .validate_asset(&asset)
            .map_err(ApiError::bad_request)?;
        Ok(NewDisbursement {
            destination: self.destination,
            amount,
            memo: self.memo,
            activation_epoch: self.activation_epoch,
            depends_on: self.depends_on,
            external_key: self.external_key,
            asset,
        })
    }
}

/// `POST /admin/disbursements/batch`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BatchBody {
    pub(super) disbursements: Vec<QueueBody>,
    /// Why, for the audit log (e.g. the proposal).
    #[serde(default)]
    pub(super) reason: String,
}

/// `POST /admin/disbursements/approve`'s body: a proposal's payouts approved as one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ApproveBody {
    pub(super) ids: Vec<u64>,
    pub(super) reason: String,
}

impl ApproveBody {
    /// The ids (1 to `MAX_APPROVE_BATCH`, none twice) and the reason.
    pub(super) fn parse(body: &Bytes) -> Result<(Vec<u64>, String), ApiError> {
        let ApproveBody { ids, reason } = parse(body)?;
        crate::governance::store::check_approval_ids(&ids)
            .map_err(|problem| ApiError::bad_request(format!("ids: {problem}")))?;
        Ok((ids, checked_reason(&reason)?))
    }
}

/// `?after=…&limit=…`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Page {
    pub(super) after: Option<u64>,
    limit: Option<usize>,
}

impl Page {
    pub(super) fn limit(&self) -> usize {
        self.limit.unwrap_or(100).clamp(1, 1_000)
    }
}

/// `POST /admin/intents/{nonce}/resolve`'s body: what the operator found on chain.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ResolveBody {
    /// `paid` or `not_paid`.
    outcome: String,
    reason: String,
    /// For `paid`: the transaction that paid it, if known.
    #[serde(default)]
    tx_hash: Option<String>,
}

impl ResolveBody {
    /// The resolution and its reason.
    pub(super) fn parse(body: &Bytes) -> Result<(Resolution, String), ApiError> {
        let ResolveBody {
            outcome,
            reason,
            tx_hash,
        } = parse(body)?;
        let reason = checked_reason(&reason)?;
        if let Some(hash) = &tx_hash {
            check_tx_hash(hash)?;
        }
        let resolution = match outcome.as_str() {
            "paid" => Resolution::Paid { tx_hash },
            "not_paid" if tx_hash.is_some() => {
                return Err(ApiError::bad_request(
                    "tx_hash is for outcome paid: a disbursement not paid has no transaction",
                ));
            }
            "not_paid" => Resolution::NotPaid,
            other => {
                return Err(ApiError::bad_request(format!(
                    "outcome must be \"paid\" or \"not_paid\", got {other:?}"
                )));
            }
        };
        Ok((resolution, reason))
    }
}

/// `POST /admin/disbursements/{id}/mark-paid`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MarkPaidBody {
    tx_hash: String,
    reason: String,
}

impl MarkPaidBody {
    /// The transaction and the reason.
    pub(super) fn parse(body: &Bytes) -> Result<(String, String), ApiError> {
        let MarkPaidBody { tx_hash, reason } = parse(body)?;
        check_tx_hash(&tx_hash)?;
        Ok((tx_hash, checked_reason(&reason)?))
    }
}

/// A transaction hash: letters and digits, at most 130.
fn check_tx_hash(hash: &str) -> Result<(), ApiError> {
    if hash.is_empty() || hash.len() > 130 || !hash.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiError::bad_request(
            "tx_hash must be a transaction hash (letters and digits, at most 130)",
        ));
    }
    Ok(())
}

/// `POST /admin/executor/adopt-nonce`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AdoptBody {
    reason: String,
    /// The nonce to go on from; by default the ledger's, as the executor saw it.
    #[serde(default)]
    nonce: Option<u64>,
}

impl AdoptBody {
    /// The nonce (if given) and the reason.
    pub(super) fn parse(body: &Bytes) -> Result<(Option<u64>, String), ApiError> {
        let AdoptBody { reason, nonce } = parse(body)?;
        Ok((nonce, checked_reason(&reason)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_positive_decimal_strings() {
        assert_eq!(parse_amount("1").ok(), Some(1));
        assert_eq!(parse_amount(&u128::MAX.to_string()).ok(), Some(u128::MAX));
        for bad in [
            "",
            "0",
            "-1",
            "1.5",
            "1e3",
            " 1",
            "340282366920938463463374607431768211456",
        ] {
            assert!(parse_amount(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn resolutions_are_paid_or_not_paid_with_a_reason() {
        let parse = |text: &str| ResolveBody::parse(&Bytes::from(text.to_owned()));
        assert_eq!(
            parse(r#"{"outcome": "not_paid", "reason": " gone "}"#).ok(),
            Some((Resolution::NotPaid, "gone".into()))
        );
        assert_eq!(
            parse(r#"{"outcome": "paid", "reason": "found", "tx_hash": "0xab"}"#).ok(),
            Some((
                Resolution::Paid {
                    tx_hash: Some("0xab".into())
                },
                "found".into()
            ))
        );
        for bad in [
            r#"{"outcome": "maybe", "reason": "x"}"#,
            r#"{"outcome": "paid", "reason": ""}"#,
            r#"{"outcome": "paid"}"#,
            r#"{"outcome": "not_paid", "reason": "x", "tx_hash": "0x1"}"#,
            r#"{"outcome": "paid", "reason": "x", "tx_hash": "0x1\n"}"#,
            r#"{"outcome": "paid", "reason": "x", "extra": 1}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
