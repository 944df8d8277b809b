//! The label values [`TreasuryMetrics`](crate::TreasuryMetrics) expects, defined once so that the
//! code, the alert rules and the dashboard agree on them.

/// Breaker state `0`, in `from` / `to` of the transitions counter.
pub const CLOSED: &str = "closed";
/// Breaker state `1`.
pub const OPEN: &str = "open";
/// Breaker state `2`.
pub const HALF_OPEN: &str = "half_open";
/// Every breaker state label, indexed by the state's `u8` value.
pub const BREAKER_STATES: [&str; 3] = [CLOSED, OPEN, HALF_OPEN];

/// The ledger accepted the submission.
pub const ACCEPTED: &str = "accepted";
/// An infrastructure failure (refused, timeout, 5xx, 429, malformed): counts against the breaker.
pub const FAILED: &str = "failed";
/// A business refusal (insufficient balance, invalid destination, …): the disbursement is cancelled.
pub const CANCELLED: &str = "cancelled";
/// "Already known" or "nonce too low": reconciled by transaction hash.
pub const AMBIGUOUS: &str = "ambiguous";
/// The ledger refused the fee ("underpriced", "max fee per gas less than block base fee",
/// "replacement transaction underpriced"): not an infrastructure failure, never counted against
/// the breaker; the executor bumps the fee.
pub const UNDERPRICED: &str = "underpriced";
/// The chain's own coin, as the `asset` label of `treasury_submissions_total` says it.
pub const NATIVE_ASSET: &str = "native";

/// Every `result` label of the submissions counter.
pub const SUBMISSION_RESULTS: [&str; 5] = [ACCEPTED, FAILED, CANCELLED, AMBIGUOUS, UNDERPRICED];

/// An admin API call without a bearer token.
pub const AUTH_MISSING: &str = "missing";
/// An admin API call whose token matches no configured one.
pub const AUTH_WRONG: &str = "wrong";
/// An admin API call without a valid token from a peer that failed too often lately (429).
pub const AUTH_LIMITED: &str = "limited";
/// Every `reason` label of the admin authentication failures counter.
pub const AUTH_FAILURES: [&str; 3] = [AUTH_MISSING, AUTH_WRONG, AUTH_LIMITED];

/// Queued, waiting for its activation epoch.
pub const SCHEDULED: &str = "scheduled";
/// Payable now, not yet signed.
pub const READY: &str = "ready";
/// Signed and stored, not yet accepted by the ledger.
pub const STAGED: &str = "staged";
/// Accepted by the ledger, not yet seen in a block.
pub const SUBMITTED: &str = "submitted";
/// In a block, waiting for confirmations (not yet confirmed at the configured depth).
pub const INCLUDED: &str = "included";
/// Every `status` label of the backlog gauge.
pub const BACKLOG_STATUSES: [&str; 5] = [SCHEDULED, READY, STAGED, SUBMITTED, INCLUDED];

/// A JSON-RPC request answered with a JSON-RPC result.
pub const OK: &str = "ok";
/// The endpoint answered with a JSON-RPC error object: it is up, and it refused the request
/// (e.g. "nonce too low").
pub const RPC_ERROR: &str = "rpc_error";
/// No whole answer within `request_timeout_ms`.
pub const TIMEOUT: &str = "timeout";
/// No answer at all: connection refused or reset, a DNS or a TLS failure.
pub const UNREACHABLE: &str = "unreachable";
/// An HTTP error status: 5xx, or 429 (rate limited).
pub const HTTP: &str = "http";
/// An answer that is not JSON-RPC.
pub const MALFORMED: &str = "malformed";
/// Every `result` label of the RPC requests counter (see [`rpc_result`] for any other value).
pub const RPC_RESULTS: [&str; 6] = [OK, RPC_ERROR, TIMEOUT, UNREACHABLE, HTTP, MALFORMED];

/// The `method` of one batch request (several JSON-RPC calls in one HTTP request), whatever
/// methods it holds.
pub const BATCH: &str = "batch";
/// Every `method` label of the RPC requests counter that names a method (see [`rpc_method`] for
/// any other value).
pub const RPC_METHODS: [&str; 11] = [
    "eth_chainId",
    "eth_getBlockByNumber",
    "eth_getTransactionCount",
    "eth_getBalance",
    "eth_maxPriorityFeePerGas",
    "eth_sendRawTransaction",
    "eth_getTransactionReceipt",
    "eth_getTransactionByHash",
    "eth_estimateGas",
    "eth_call",
    BATCH,
];
/// The `method` recorded for a method not in [`RPC_METHODS`], the `result` recorded for a
/// result not in [`RPC_RESULTS`], the `reason` recorded for a spending-policy refusal not in
/// [`POLICY_REFUSALS`], and the `op` recorded for a store engine operation not in
/// [`ENGINE_OPS`], so that no value from outside those lists makes a new series.
pub const OTHER: &str = "other";

/// A queue request refused (403), or a ready disbursement held back from signing, because it is
/// over its asset's `max_amount`.
pub const POLICY_MAX_AMOUNT: &str = "max_amount";
/// A queue request refused (403), or a ready disbursement held back from signing, because it
/// would take its asset's spend in the rolling 24 hours over `daily_limit`.
pub const POLICY_DAILY_LIMIT: &str = "daily_limit";
/// A queue request refused (403), or a ready disbursement held back from signing, because its
/// destination is not on the allow-list.
pub const POLICY_DESTINATION: &str = "destination";
/// A ready disbursement sent back to awaiting approval because the policy in force now needs
/// more approvals than it has.
pub const POLICY_APPROVALS: &str = "approvals";
/// Every `reason` label of the spending-policy refusals counter (see [`policy_refusal`] for any
/// other value).
pub const POLICY_REFUSALS: [&str; 4] = [
    POLICY_MAX_AMOUNT,
    POLICY_DAILY_LIMIT,
    POLICY_DESTINATION,
    POLICY_APPROVALS,
];

/// A point read of one key from the store's engine failed.
pub const ENGINE_GET: &str = "get";
/// A range scan of the store's engine failed.
pub const ENGINE_SCAN: &str = "scan";
/// An atomic conditional batch could not be applied by the store's engine (a failed condition,
/// a conflict or a fence, is not an engine error and is not counted).
pub const ENGINE_APPLY: &str = "apply";
/// Granting, renewing or revoking the leader's lease in the store's engine failed.
pub const ENGINE_LEASE: &str = "lease";
/// Every `op` label of the store engine errors counter (see [`engine_op`] for any other value).
pub const ENGINE_OPS: [&str; 4] = [ENGINE_GET, ENGINE_SCAN, ENGINE_APPLY, ENGINE_LEASE];

/// The label of a breaker state given as its `u8` value (`0` → `"closed"`), `None` if unknown.
pub const fn breaker_state(state: u8) -> Option<&'static str> {
    match state {
        0 => Some(CLOSED),
        1 => Some(OPEN),
        2 => Some(HALF_OPEN),
        _ => None,
    }
}

/// The `method` label recorded for a JSON-RPC method: itself if it is in [`RPC_METHODS`],
/// else [`OTHER`].
pub fn rpc_method(method: &str) -> &'static str {
    RPC_METHODS
        .into_iter()
        .find(|&known| known == method)
        .unwrap_or(OTHER)
}

/// The `result` label recorded for how a JSON-RPC request ended: itself if it is in
/// [`RPC_RESULTS`], else [`OTHER`] (a caller's mistake: every outcome has its label there).
pub fn rpc_result(result: &str) -> &'static str {
    RPC_RESULTS
        .into_iter()
        .find(|&known| known == result)
        .unwrap_or(OTHER)
}

/// The `reason` label recorded for a spending-policy refusal: itself if it is in
/// [`POLICY_REFUSALS`], else [`OTHER`] (a caller's mistake: every rule has its label there).
pub fn policy_refusal(reason: &str) -> &'static str {
    POLICY_REFUSALS
        .into_iter()
        .find(|&known| known == reason)
        .unwrap_or(OTHER)
}

/// The `op` label recorded for a failed store engine operation: itself if it is in
/// [`ENGINE_OPS`], else [`OTHER`] (a caller's mistake: every engine operation has its label there).
pub fn engine_op(op: &str) -> &'static str {
    ENGINE_OPS
        .into_iter()
        .find(|&known| known == op)
        .unwrap_or(OTHER)
}
