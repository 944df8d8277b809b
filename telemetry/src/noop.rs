//! The `prometheus` feature is off: every call does nothing and `render` has nothing to render.

/// Zero-sized: a `TreasuryMetrics` costs nothing to hold or clone.
#[derive(Clone, Copy, Default)]
pub(crate) struct Metrics;

impl Metrics {
    #[inline]
    pub(crate) fn set_breaker(&self, _state: u8, _failures: u64, _successes: u64) {}

    #[inline]
    pub(crate) fn breaker_transition(&self, _from: &str, _to: &str) {}

    #[inline]
    pub(crate) fn breaker_rejected(&self) {}

    #[inline]
    pub(crate) fn set_breaker_forced(&self, _forced: bool) {}

    #[inline]
    pub(crate) fn submissions(&self, _result: &str, _asset: &str, _n: u64) {}

    pub(crate) fn register_assets(&self, _assets: &[&str]) {}

    #[inline]
    pub(crate) fn ledger_read_failures(&self, _n: u64) {}

    #[inline]
    pub(crate) fn observe_tick(&self, _seconds: f64) {}

    #[inline]
    pub(crate) fn tick_completed(&self, _unix_seconds: f64) {}

    #[inline]
    pub(crate) fn set_backlog(&self, _status: &str, _n: u64) {}

    #[inline]
    pub(crate) fn set_halted(&self, _halted: bool) {}

    #[inline]
    pub(crate) fn set_awaiting_operator(&self, _awaiting: bool) {}

    #[inline]
    pub(crate) fn reorgs(&self, _n: u64) {}

    #[inline]
    pub(crate) fn fee_bumps(&self, _n: u64) {}

    #[inline]
    pub(crate) fn admin_auth_failure(&self, _reason: &str) {}

    #[inline]
    pub(crate) fn set_oldest_pending_seconds(&self, _seconds: f64) {}

    #[inline]
    pub(crate) fn set_fee_cap_reached(&self, _reached: bool) {}

    #[inline]
    pub(crate) fn set_balance_insufficient(&self, _short: Option<&str>) {}

    #[inline]
    pub(crate) fn set_rpc_endpoint(&self, _endpoint: &str, _state: u8, _in_sync: bool, _head: u64) {
    }

    #[inline]
    pub(crate) fn rpc_request(&self, _endpoint: &str, _method: &str, _result: &str, _seconds: f64) {
    }

    #[inline]
    pub(crate) fn rpc_endpoint_transition(&self, _endpoint: &str, _from: &str, _to: &str) {}

    #[inline]
    pub(crate) fn policy_refusals(&self, _reason: &str, _n: u64) {}

    #[inline]
    pub(crate) fn set_awaiting_approval(&self, _n: u64) {}

    #[inline]
    pub(crate) fn set_held_by_policy(&self, _n: u64) {}

    #[inline]
    pub(crate) fn set_daily_spend(&self, _asset: &str, _spent: f64, _limit: Option<f64>) {}

    #[inline]
    pub(crate) fn set_executor_leader(&self, _leader: bool) {}

    #[inline]
    pub(crate) fn leader_changed(&self) {}

    #[inline]
    pub(crate) fn store_engine_error(&self, _op: &str) {}

    #[inline]
    pub(crate) fn render(&self) -> Option<String> {
        None
    }
}
