//! High availability: which node's executor is active.
//!
//! On sled there is one node and it always leads ([`Election`] is `None` in [`App`]).
//! On etcd every node campaigns for the leader key (`etcdstore::Leadership`); the leader
//! builds an executor on the store fenced by its term's token, and a standby serves
//! `/status`, `/metrics` and the admin API (queue, cancel, approve) without ticking.
//!
//! [`App`]: crate::app::App

use serde_json::{Value, json};

/// What a node is in the election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleKind {
    /// Its executor is the active one.
    Leader,
    /// Another node's executor is (or none, between terms).
    Standby,
    /// It cannot reach the store: it pays nothing.
    Unavailable,
    /// It has not finished its first round yet.
    Starting,
}

impl RoleKind {
    /// The name in `/status`.
    pub fn as_str(self) -> &'static str {
        match self {
            RoleKind::Leader => "leader",
            RoleKind::Standby => "standby",
            RoleKind::Unavailable => "unavailable",
            RoleKind::Starting => "starting",
        }
    }
}

/// The election as this node sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct HaView {
    /// This node's role.
    pub role: RoleKind,
    /// The fencing token, while it leads.
    pub token: Option<u64>,
    /// Why it is unavailable.
    pub error: Option<String>,
    /// The leader's own description (identity, listen address, pid), if any holds the key.
    pub leader: Option<Value>,
    /// The current term (the leader key's create revision; 0: none seen).
    pub term: u64,
    /// Since when the role has been what it is (ms since the epoch).
    pub since_ms: u64,
    /// Terms seen to begin after the first one this node saw.
    pub changes: u64,
}

impl HaView {
    /// `/status`'s `ha`.
    pub fn to_json(&self, store: &str) -> Value {
        json!({
            "store": store,
            "role": self.role.as_str(),
            "leader": self.leader,
            "since_ms": self.since_ms,
            "term": self.term,
            "leader_changes": self.changes,
            "error": self.error,
        })
    }
}

/// A node's campaign for the executor's lease.
pub trait Election: Send + Sync + std::fmt::Debug {
    /// The election as of the last round.
    fn view(&self) -> HaView;
    /// Whether this node may broadcast now for the term of `token` (it leads in that
    /// term, and its lease is held by its own clock).
    fn may_broadcast(&self, token: u64) -> bool;
    /// Gives the lease up (at shutdown: the next leader need not wait for it to expire).
    fn resign(&self);
    /// Calls to the store's engine that failed so far for an infrastructure reason:
    /// point reads, range reads, transactions, the lease (in that order).
    fn engine_errors(&self) -> [u64; 4];
}

/// This node's description of itself, the leader key's value while it leads.
pub fn describe(identity: &str, listen: &str) -> Vec<u8> {
    json!({
        "identity": identity,
        "listen": listen,
        "pid": std::process::id(),
        "since_ms": crate::governance::text::unix_ms(),
    })
    .to_string()
    .into_bytes()
}

#[cfg(feature = "etcd")]
pub mod etcd {
    //! The election on etcd.

    use std::sync::Arc;

    use etcdstore::{Leadership, Role};

    use super::{Election, HaView, RoleKind};

    /// [`Election`] by `etcdstore::Leadership`.
    #[derive(Debug)]
    pub struct EtcdElection(pub Arc<Leadership>);

    impl Election for EtcdElection {
        fn view(&self) -> HaView {
            let status = self.0.status();
            let (role, token, error) = match status.role {
                // A lease its own clock says may have lapsed is not leading any more,
                // whatever the last round saw.
                Role::Leader { .. } if !self.0.may_broadcast() => (RoleKind::Standby, None, None),
                Role::Leader { token } => (RoleKind::Leader, Some(token), None),
                Role::Standby => (RoleKind::Standby, None, None),
                Role::Unavailable { error } => (RoleKind::Unavailable, None, Some(error)),
                Role::Starting => (RoleKind::Starting, None, None),
            };
            HaView {
                role,
                token,
                error,
                leader: status
                    .leader
                    .as_deref()
                    .and_then(|bytes| serde_json::from_slice(bytes).ok()),
                term: status.term,
                since_ms: status.since_ms,
                changes: status.changes,
            }
        }

        fn may_broadcast(&self, token: u64) -> bool {
            self.0.may_broadcast_as(token)
        }

        fn resign(&self) {
            self.0.resign();
        }

        fn engine_errors(&self) -> [u64; 4] {
            let errors = self.0.engine_errors();
            [errors.get, errors.scan, errors.apply, errors.lease]
        }
    }
}
