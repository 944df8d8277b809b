//! The executor's leader lease: one node at a time holds the leader key, and the key's
//! create revision is its fencing token.
//!
//! Every node runs a [`Leadership`]: a task on the engine's runtime that holds a lease
//! (renewed every round) and campaigns for the leader key with one transaction: *if
//! the key does not exist, create it under my lease*. The key lives as long as the
//! lease: when the leader dies, stops (SIGSTOP) or is cut off, its lease expires, etcd
//! deletes the key, and the next campaign creates it again with a higher create revision.
//!
//! The executor's writes are fenced on that revision
//! ([`Fence`](governance::store::engine::Fence)), so a deposed leader cannot write,
//! even if it does not know yet that it is deposed. [`Leadership::may_broadcast`] is
//! the executor's check before each broadcast: the lease is held, by this node's own
//! clock, with a margin (the deadline is counted from when the renewal was *sent*, so it
//! never outlives the server's view of the lease).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp, TxnOpResponse};
use governance::store::StoreError;

use crate::connection::{CallKind, Connection, EngineErrors};
use crate::engine::EtcdKeySpace;

pub use governance::store::engine::LEADER_KEY;

/// What this node is, as of the last round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Not yet known (the first round has not finished).
    Starting,
    /// This node holds the leader key.
    Leader {
        /// The key's create revision: the executor's fencing token.
        token: u64,
    },
    /// Another node holds the key (or nobody does, between terms).
    Standby,
    /// etcd could not be reached: this node cannot lead.
    Unavailable {
        /// Why.
        error: String,
    },
}

/// The leadership as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// This node's role.
    pub role: Role,
    /// The leader key's value (the leader's own description of itself), if any.
    pub leader: Option<Vec<u8>>,
    /// The leader key's create revision, if any: changes with each term.
    pub term: u64,
    /// Since when (milliseconds since the epoch) the role has been what it is.
    pub since_ms: u64,
    /// Terms seen to begin, after the first one this node saw.
    pub changes: u64,
}

/// How to campaign.
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    /// The lease's time to live: how long after its last renewal a silent leader is
    /// deposed.
    pub ttl: Duration,
    /// Time between rounds (renewal, campaign, check): at most a third of the TTL.
    pub round: Duration,
    /// This node's description of itself, the leader key's value while it leads.
    pub value: Vec<u8>,
}

#[derive(Debug)]
struct Shared {
    status: Mutex<Status>,
    /// Until when (milliseconds on `epoch`) the lease is held: 0 if it is not.
    held_until: AtomicU64,
    epoch: Instant,
    /// Set to stop the task; it revokes the lease on its way out.
    stop: tokio::sync::Notify,
    stopping: std::sync::atomic::AtomicBool,
}

/// A node's campaign for the leader key. Dropping it stops campaigning and gives up the
/// lease at once (the next leader need not wait for the TTL).
#[derive(Debug)]
pub struct Leadership {
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    lease: Arc<AtomicU64>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Leadership {
    /// Starts campaigning for `LEADER_KEY` in `space`'s prefix.
    pub fn start(space: &EtcdKeySpace, options: LeaseOptions) -> Leadership {
        let shared = Arc::new(Shared {
            status: Mutex::new(Status {
                role: Role::Starting,
                leader: None,
                term: 0,
                since_ms: now_ms(),
                changes: 0,
            }),
            held_until: AtomicU64::new(0),
            epoch: Instant::now(),
            stop: tokio::sync::Notify::new(),
            stopping: std::sync::atomic::AtomicBool::new(false),
        });
        let lease = Arc::new(AtomicU64::new(0));
        let campaign = Campaign {
            shared: Arc::clone(&shared),
            conn: Arc::clone(&space.conn),
            key: space.full_key(LEADER_KEY),
            options,
            lease: Arc::clone(&lease),
        };
        space.conn.bridge.handle().spawn(campaign.run());
        Leadership {
            shared,
            conn: Arc::clone(&space.conn),
            lease,
        }
    }

    /// This node's view of the leadership.
    pub fn status(&self) -> Status {
        self.shared
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether this node may broadcast now: it leads, and its lease is held by its own
    /// clock (renewed less than the TTL less a margin ago).
    pub fn may_broadcast(&self) -> bool {
        matches!(self.status().role, Role::Leader { .. }) && self.lease_held()
    }

    /// Whether this node may broadcast now for the term of `token`: it leads in that
    /// very term, and its lease is held by its own clock. A term's executor asks this.
    pub fn may_broadcast_as(&self, token: u64) -> bool {
        self.status().role == (Role::Leader { token }) && self.lease_held()
    }

    fn lease_held(&self) -> bool {
        let now = u64::try_from(self.shared.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        now < self.shared.held_until.load(Ordering::SeqCst)
    }

    /// Calls to etcd that failed so far, by kind (the store's and the lease's).
    pub fn engine_errors(&self) -> EngineErrors {
        self.conn.errors()
    }

    /// Stops campaigning and revokes the lease (the key goes with it), waiting up to the
    /// request timeout.
    pub fn resign(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.stop.notify_one();
        self.shared.held_until.store(0, Ordering::SeqCst);
        let id = self.lease.swap(0, Ordering::SeqCst);
        if id != 0 {
            let conn = Arc::clone(&self.conn);
            let _ = self.conn.block(async move {
                conn.call(CallKind::Lease, true, |client| async move {
                    client.lease_client().revoke(id as i64).await
                })
                .await
            });
        }
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.resign();
    }
}

struct Campaign {
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    /// The leader key, prefix included.
    key: Vec<u8>,
    options: LeaseOptions,
    lease: Arc<AtomicU64>,
}

impl Campaign {
    fn margin(&self) -> Duration {
        (self.options.ttl / 10).max(Duration::from_millis(500))
    }

    fn elapsed_ms(&self, at: Instant) -> u64 {
        u64::try_from(at.duration_since(self.shared.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    async fn run(self) {
        loop {
            if self.shared.stopping.load(Ordering::SeqCst) {
                break;
            }
            let started = Instant::now();
            let outcome = self.round().await;
            if self.shared.stopping.load(Ordering::SeqCst) {
                break;
            }
            self.settle(outcome);
            let rest = self.options.round.saturating_sub(started.elapsed());
            tokio::select! {
                () = tokio::time::sleep(rest) => {}
                () = self.shared.stop.notified() => break,
            }
        }
        // A lease granted while `resign` revoked the one before: give it up too.
        let id = self.lease.swap(0, Ordering::SeqCst) as i64;
        if id != 0 {
            let _ = self
                .conn
                .call(CallKind::Lease, true, |client| async move {
                    client.lease_client().revoke(id).await
                })
                .await;
        }
    }

    /// This node no longer leads (its lease is gone): the gate closes at once.
    fn stand_down(&self) {
        let mut status = self
            .shared
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if matches!(status.role, Role::Leader { .. }) {
            status.role = Role::Standby;
            status.since_ms = now_ms();
        }
    }

    /// One round: hold a lease (renew it, or grant a new one), then campaign.
    async fn round(&self) -> Result<Observed, StoreError> {
        let lease = self.hold_lease().await?;
        let txn = Txn::new()
            .when(vec![Compare::create_revision(
                self.key.clone(),
                CompareOp::Equal,
                0,
            )])
            .and_then(vec![
                TxnOp::put(
                    self.key.clone(),
                    self.options.value.clone(),
                    Some(PutOptions::new().with_lease(lease)),
                ),
                TxnOp::get(self.key.clone(), None),
            ])
            .or_else(vec![TxnOp::get(self.key.clone(), None)]);
        let answer = self
            .conn
            .call(CallKind::Lease, true, |mut client| {
                let txn = txn.clone();
                async move { client.txn(txn).await }
            })
            .await?;
        let kv = answer
            .op_responses()
            .into_iter()
            .find_map(|response| match response {
                TxnOpResponse::Get(got) => got.kvs().first().cloned(),
                _ => None,
            });
        Ok(match kv {
            Some(kv) => Observed {
                ours: kv.lease() == lease,
                term: u64::try_from(kv.create_revision()).unwrap_or(0),
                value: Some(kv.value().to_vec()),
            },
            None => Observed {
                ours: false,
                term: 0,
                value: None,
            },
        })
    }

    /// Renews this node's lease, or grants a new one if there is none or it expired.
    /// Sets the deadline the broadcast gate reads.
    async fn hold_lease(&self) -> Result<i64, StoreError> {
        let ttl = i64::try_from(self.options.ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        let held = self.lease.load(Ordering::SeqCst) as i64;
        let sent = Instant::now();
        if held != 0 {
            let renewed = self
                .conn
                .call(CallKind::Lease, true, |client| async move {
                    client.lease_client().keep_alive(held).await.map(|_| ())
                })
                .await;
            match renewed {
                Ok(()) => {
                    self.extend(sent);
                    return Ok(held);
                }
                // etcd says the lease is gone (it expired): a new one, and this node no
                // longer leads under the old one.
                Err(StoreError::Database(error)) if error.contains("lease not found") => {
                    self.shared.held_until.store(0, Ordering::SeqCst);
                    self.lease.store(0, Ordering::SeqCst);
                    self.stand_down();
                }
                // Anything else proves nothing about the lease: it may still be held, and
                // the gate's deadline runs out by itself if it is not renewed.
                Err(error) => return Err(error),
            }
        }
        if self.shared.stopping.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("stopping: no new lease".into()));
        }
        let granted = self
            .conn
            .call(CallKind::Lease, true, |client| async move {
                client.lease_client().grant(ttl, None).await
            })
            .await?;
        self.lease.store(granted.id() as u64, Ordering::SeqCst);
        self.extend(sent);
        Ok(granted.id())
    }

    fn extend(&self, sent: Instant) {
        let until = sent + self.options.ttl.saturating_sub(self.margin());
        self.shared
            .held_until
            .store(self.elapsed_ms(until), Ordering::SeqCst);
    }

    /// Publishes what the round saw.
    fn settle(&self, outcome: Result<Observed, StoreError>) {
        let mut status = self
            .shared
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let role = match &outcome {
            Ok(seen) if seen.ours => Role::Leader { token: seen.term },
            Ok(_) => Role::Standby,
            Err(error) => Role::Unavailable {
                error: error.to_string(),
            },
        };
        if let Ok(seen) = &outcome {
            if seen.term != 0 && seen.term != status.term {
                if status.term != 0 {
                    status.changes += 1;
                }
                status.term = seen.term;
            }
            status.leader = seen.value.clone();
        }
        if role != status.role {
            status.role = role;
            status.since_ms = now_ms();
        }
    }
}

/// The leader key as one round read it.
struct Observed {
    /// It is held under this node's lease.
    ours: bool,
    /// Its create revision (0: nobody holds it).
    term: u64,
    value: Option<Vec<u8>>,
}
