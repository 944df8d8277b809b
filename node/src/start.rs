//! What `node run` opens before it serves: the store (migrated from an earlier layout if
//! need be), the ledger, the breaker, the shared [`App`] and the executor.

use std::sync::Arc;

use anyhow::Context;
use serde_json::{Value, json};
use telemetry::TreasuryMetrics;

use crate::app::App;
use crate::config::NodeConfig;
use crate::governance::{CircuitBreaker, GovStore, Ledger, TreasuryExecutor};
use crate::ledger::dev::DevLedger;
use crate::ledger::evm::EvmLedger;

/// A node ready to serve and tick.
#[derive(Debug)]
pub struct Started {
    /// The state the HTTP handlers and the driver share.
    pub app: Arc<App>,
    /// How the executor runs.
    pub run: Run,
}

/// How the executor runs.
#[derive(Debug)]
pub enum Run {
    /// On sled: this node's executor, always active.
    Single(Box<TreasuryExecutor>),
    /// On etcd: an executor per term, while this node leads.
    Elected {
        /// The node's campaign.
        election: Arc<dyn crate::ha::Election>,
        /// What each term's executor is built from.
        terms: Arc<crate::driver::Terms>,
    },
}

/// Opens everything `config` names; `evm` is the EVM ledger when configured (opened
/// earlier, so that its errors are configuration errors).
pub fn open(config: &NodeConfig, evm: Option<EvmLedger>) -> anyhow::Result<Started> {
    let opened = open_store(config)?;
    let store = opened.store.clone();
    let policy = config.policy.load()?;
    tracing::info!(%policy, "spending policy");
    match store.set_policy(policy.clone()) {
        Ok(rejudged) if rejudged != Default::default() => tracing::info!(
            released = rejudged.released,
            approved = rejudged.approved,
            "the spending policy released held disbursements or queued approved ones"
        ),
        Ok(_) => {}
        // With etcd, the cluster may be out of reach now: the policy is in force in
        // memory, and each term re-judges what waits on it.
        Err(error) if opened.election.is_some() => tracing::warn!(
            %error,
            "cannot re-judge the disbursements waiting on the spending policy yet"
        ),
        Err(error) => {
            return Err(anyhow::Error::new(error)
                .context("cannot re-judge the disbursements waiting on the spending policy"));
        }
    }
    let (ledger, details, evm) = open_ledger(config, &opened, evm)?;
    let breaker = Arc::new(CircuitBreaker::try_new(config.circuit_breaker.clone())?);
    let mut app = App::new(
        config.clone(),
        Arc::clone(&breaker),
        store.clone(),
        Arc::clone(&ledger),
        details,
        TreasuryMetrics::new(),
    );
    if let Some(evm) = &evm {
        app = app.with_evm(Arc::clone(evm));
    }
    match &opened.election {
        Some(election) => app = app.with_election(Arc::clone(election)),
        None => app.metrics.set_executor_leader(true),
    }
    // The `asset` label of the submissions counter: the coin and the configured tokens.
    let mut assets = vec![crate::governance::policy::NATIVE];
    if config.ledger == crate::config::LedgerKind::Evm {
        assets.extend(config.evm.tokens.iter().map(|token| token.symbol.as_str()));
    }
    app.metrics.register_assets(&assets);
    let app = Arc::new(app);
    let weak = Arc::downgrade(&app);
    let _ = breaker.set_listener(move |transition| {
        if let Some(app) = weak.upgrade() {
            app.on_transition(transition);
        }
    });
    if let Some(election) = opened.election {
        let terms = crate::driver::Terms {
            config: config.executor(),
            breaker,
            store,
            ledger,
            evm,
        };
        app.publish_breaker();
        return Ok(Started {
            app,
            run: Run::Elected {
                election,
                terms: Arc::new(terms),
            },
        });
    }
    // Restores the breaker persisted at the last shutdown (a forced-open breaker stays so).
    #[cfg_attr(not(feature = "crash-points"), allow(unused_mut))] // mutated only with it
    let mut executor = TreasuryExecutor::new(config.executor(), breaker, store, ledger)?;
    #[cfg(feature = "crash-points")]
    if let Some(point) = crate::driver::crash_point()? {
        tracing::warn!(
            ?point,
            "TB_CRASH_AT: the executor stops at this step for a test to kill it"
        );
        executor.crash_at(Some(point));
    }
    app.publish_breaker();
    Ok(Started {
        app,
        run: Run::Single(Box::new(executor)),
    })
}

/// The store, and with etcd the election and the local sled database the dev ledger
/// keeps its chain in.
struct Opened {
    store: GovStore,
    election: Option<Arc<dyn crate::ha::Election>>,
    /// Where the dev ledger keeps its chain: the store's own sled database, or with
    /// etcd a local one at `db_path`.
    local: Option<sled::Db>,
}

fn open_store(config: &NodeConfig) -> anyhow::Result<Opened> {
    match config.store {
        crate::config::StoreKind::Sled => Ok(Opened {
            store: open_sled(config)?,
            election: None,
            local: None,
        }),
        crate::config::StoreKind::Etcd => open_etcd(config),
    }
}

#[cfg(not(feature = "etcd"))]
fn open_etcd(_: &NodeConfig) -> anyhow::Result<Opened> {
    anyhow::bail!("store = \"etcd\": this node was built without the `etcd` feature")
}

/// The etcd engine `config`'s `[etcd]` names (nothing is sent yet).
#[cfg(feature = "etcd")]
pub fn etcd_space(config: &NodeConfig) -> anyhow::Result<etcdstore::EtcdKeySpace> {
    use etcdstore::{EtcdKeySpace, EtcdOptions, TlsFiles};
    let etcd = &config.etcd;
    let mut options = EtcdOptions::new(etcd.endpoints.clone(), etcd.prefix.clone().into_bytes());
    options.request_timeout = etcd.request_timeout;
    if let (Some(user), Some(password)) = (&etcd.username, etcd.password()?) {
        options.user = Some((user.clone(), password.expose().to_owned()));
    }
    if etcd.ca_file.is_some() || etcd.cert_file.is_some() {
        options.tls = Some(TlsFiles {
            ca_file: etcd.ca_file.clone(),
            identity: etcd.cert_file.clone().zip(etcd.key_file.clone()),
        });
    }
    Ok(EtcdKeySpace::connect(options)?)
}

/// The store on etcd and this node's campaign. Nothing here needs etcd to answer: a
/// node that cannot reach it serves `/healthz` and `/status` saying so, and pays nothing.
#[cfg(feature = "etcd")]
fn open_etcd(config: &NodeConfig) -> anyhow::Result<Opened> {
    use etcdstore::{Leadership, LeaseOptions};
    let etcd = &config.etcd;
    let space = etcd_space(config)?;
    let round = (etcd.lease_ttl / 4)
        .min(config.poll_interval)
        .max(std::time::Duration::from_millis(50));
    let leadership = Leadership::start(
        &space,
        LeaseOptions {
            ttl: etcd.lease_ttl,
            round,
            value: crate::ha::describe(&config.identity, &config.listen.to_string()),
        },
    );
    tracing::info!(
        endpoints = ?etcd.endpoints,
        prefix = %etcd.prefix,
        lease_ttl = ?etcd.lease_ttl,
        identity = %config.identity,
        "store on etcd; campaigning for the executor's lease"
    );
    let local = if config.ledger == crate::config::LedgerKind::Dev {
        tracing::warn!(
            db = %config.db_path.display(),
            "the dev ledger keeps its chain in a local sled database: one node only"
        );
        if let Some(parent) = config.db_path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        Some(
            sled::open(&config.db_path)
                .with_context(|| format!("cannot open {}", config.db_path.display()))?,
        )
    } else {
        None
    };
    Ok(Opened {
        store: GovStore::with_space(Arc::new(space)),
        election: Some(Arc::new(crate::ha::etcd::EtcdElection(Arc::new(
            leadership,
        )))),
        local,
    })
}

/// The store at `db_path` (its directory created), with a line in the log if it was
/// migrated from an earlier layout.
fn open_sled(config: &NodeConfig) -> anyhow::Result<GovStore> {
    if let Some(parent) = config.db_path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let store = GovStore::open(&config.db_path)
        .with_context(|| format!("cannot open the store at {}", config.db_path.display()))?;
    if let Some(migration) = store.migration() {
        tracing::info!(
            records = migration.records,
            trees = migration.trees,
            db = %config.db_path.display(),
            "store migrated in place from the tree-per-kind layout to one key space"
        );
    }
    Ok(store)
}

/// The ledger the executor pays on, what `/status` shows of it, and the EVM ledger (for
/// its endpoints' health) when that is the one.
#[allow(clippy::type_complexity)]
fn open_ledger(
    config: &NodeConfig,
    opened: &Opened,
    evm: Option<EvmLedger>,
) -> anyhow::Result<(Arc<dyn Ledger>, Value, Option<Arc<EvmLedger>>)> {
    let store = &opened.store;
    let Some(evm) = evm else {
        let tree = match &opened.local {
            Some(db) => db.open_tree("aux/dev_ledger")?,
            None => store.aux_tree("dev_ledger")?,
        };
        let ledger = DevLedger::open(tree, config.dev_ledger.clone())
            .context("cannot open the dev ledger")?;
        return Ok((Arc::new(ledger), json!({ "kind": "dev" }), None));
    };
    // With etcd the store may be out of reach now: each term pins the chain again.
    match store.chain_id() {
        Ok(Some(pinned)) => {
            if let Ok(id) = pinned.parse::<u64>() {
                evm.expect_chain(id);
            }
        }
        Ok(None) => {}
        Err(error) if opened.election.is_some() => {
            tracing::warn!(%error, "cannot read the chain this store pays on yet");
        }
        Err(error) => return Err(error.into()),
    }
    let evm = Arc::new(evm);
    tracing::info!(endpoints = ?evm.endpoints(), treasury = %evm.address(), "EVM ledger");
    let details = json!({ "kind": "evm", "treasury": evm.address() });
    Ok((Arc::clone(&evm) as Arc<dyn Ledger>, details, Some(evm)))
}
