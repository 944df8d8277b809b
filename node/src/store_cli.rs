//! `node store export | import | migrate`: copying the store from sled into etcd.

use std::io::{BufReader, Write};
use std::process::ExitCode;

use crate::cli::StoreAction;
use crate::config::NodeConfig;
use crate::governance::GovStore;

/// Runs `action` with `config`; the exit code.
pub fn main(action: &StoreAction, config: &NodeConfig) -> ExitCode {
    match run(action, config) {
        Ok(message) => {
            eprintln!("{message}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(action: &StoreAction, config: &NodeConfig) -> anyhow::Result<String> {
    match action {
        StoreAction::Export => {
            let store = sled_store(config)?;
            let mut out = std::io::stdout().lock();
            let count = store.export(&mut out)?;
            out.flush()?;
            Ok(format!(
                "exported {count} records from {}",
                config.db_path.display()
            ))
        }
        StoreAction::Import { force } => {
            let store = etcd_store(config)?;
            let mut input = BufReader::new(std::io::stdin().lock());
            let count = store.import(&mut input, *force)?;
            Ok(format!(
                "imported {count} records into {}",
                where_in_etcd(config)
            ))
        }
        StoreAction::Migrate { to, force } => {
            if to != "etcd" {
                anyhow::bail!("--to: the only engine to migrate to is etcd, got {to:?}");
            }
            let source = sled_store(config)?;
            let mut dump = Vec::new();
            let exported = source.export(&mut dump)?;
            drop(source);
            let target = etcd_store(config)?;
            let imported = target.import(&mut dump.as_slice(), *force)?;
            Ok(format!(
                "migrated {imported} of {exported} records from {} into {}",
                config.db_path.display(),
                where_in_etcd(config)
            ))
        }
    }
}

fn where_in_etcd(config: &NodeConfig) -> String {
    format!(
        "etcd {} under {}",
        config.etcd.endpoints.join(","),
        config.etcd.prefix
    )
}

fn sled_store(config: &NodeConfig) -> anyhow::Result<GovStore> {
    if !config.db_path.exists() {
        anyhow::bail!("no sled database at {}", config.db_path.display());
    }
    Ok(GovStore::open(&config.db_path)?)
}

#[cfg(feature = "etcd")]
fn etcd_store(config: &NodeConfig) -> anyhow::Result<GovStore> {
    if config.etcd.endpoints.is_empty() {
        anyhow::bail!(
            "etcd.endpoints: no endpoint to import into (set [etcd] or TB_ETCD_ENDPOINTS)"
        );
    }
    let space = crate::start::etcd_space(config)?;
    Ok(GovStore::with_space(std::sync::Arc::new(space)))
}

#[cfg(not(feature = "etcd"))]
fn etcd_store(_: &NodeConfig) -> anyhow::Result<GovStore> {
    anyhow::bail!("this node was built without the `etcd` feature")
}
