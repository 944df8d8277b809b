//! The node's store as the drill reads it back: every disbursement, through
//! `GET /admin/disbursements`, page by page.

use super::json::Json;
use super::rig::TOKEN;
use crate::http;

/// Page size when reading the store back: small enough that paging is exercised.
const PAGE: usize = 100;

/// A disbursement as the store shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Record {
    pub(super) id: u64,
    pub(super) destination: String,
    pub(super) amount: u128,
    /// `native` (also when the store names none) or a token's symbol.
    pub(super) asset: String,
    /// `queued`, `staged`, `submitted`, `included`, `executed`, `cancelled`.
    pub(super) status: String,
    pub(super) tx_hash: Option<String>,
    pub(super) block: Option<u64>,
    pub(super) reason: Option<String>,
    /// An operator's resolution, if one resolved it (never in a drill).
    pub(super) resolution: Option<String>,
}

impl Record {
    pub(super) fn settled(&self) -> bool {
        self.status == "executed" || self.status == "cancelled"
    }

    fn from_json(json: &Json) -> Result<Record, String> {
        let text = |value: Option<&Json>, what: &str| {
            value
                .and_then(Json::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("a disbursement without {what}: {json}"))
        };
        let status = json.get("status");
        let field = |name: &str| status.and_then(|s| s.get(name));
        Ok(Record {
            id: json
                .get("id")
                .and_then(Json::as_u64)
                .ok_or_else(|| format!("a disbursement without an id: {json}"))?,
            destination: text(json.get("destination"), "a destination")?.to_ascii_lowercase(),
            amount: text(json.get("amount"), "an amount")?
                .parse()
                .map_err(|e| format!("an amount that is not a number ({e}): {json}"))?,
            asset: json
                .get("asset")
                .and_then(Json::as_str)
                .unwrap_or("native")
                .to_owned(),
            status: text(field("status"), "a status")?,
            tx_hash: field("tx_hash")
                .and_then(Json::as_str)
                .map(str::to_ascii_lowercase),
            block: field("block").and_then(Json::as_u64),
            reason: field("reason").and_then(Json::as_str).map(str::to_owned),
            resolution: field("resolution")
                .filter(|r| **r != Json::Null)
                .map(Json::to_string),
        })
    }
}

/// Every disbursement in the store, in id order, read `PAGE` at a time.
pub(super) fn list(address: &str) -> Result<Vec<Record>, String> {
    let mut records: Vec<Record> = vec![];
    loop {
        let path = match records.last() {
            Some(last) => format!("/admin/disbursements?after={}&limit={PAGE}", last.id),
            None => format!("/admin/disbursements?limit={PAGE}"),
        };
        let answer = http::request(address, "GET", &path, Some(TOKEN), None)?;
        if answer.status != 200 {
            return Err(format!(
                "GET {path}: HTTP {}: {}",
                answer.status, answer.body
            ));
        }
        let page = Json::parse(&answer.body)?;
        let items = page
            .get("disbursements")
            .and_then(Json::as_array)
            .ok_or_else(|| format!("GET {path}: no `disbursements` array"))?;
        let before = records.len();
        for item in items {
            let record = Record::from_json(item)?;
            if records.last().is_some_and(|last| last.id >= record.id) {
                return Err(format!("GET {path}: ids out of order at {}", record.id));
            }
            records.push(record);
        }
        if records.len() - before < PAGE {
            return Ok(records);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_from_a_page_of_the_list() {
        let page = r#"{"disbursements":[{"activation_epoch":0,"amount":"1000000000000000001",
            "depends_on":[],"destination":"0xC4a0","external_key":"k","id":3,"memo":"m",
            "queued_at_ms":1,"status":{"block":7,"status":"executed","tx_hash":"0xAB"}},
            {"amount":"5","asset":"GRT","destination":"0xc4a1","id":4,"status":{"status":"included",
            "nonce":2,"tx_hash":"0xcd","block":9,"block_hash":"0xee","confirmations":1}},
            {"amount":"6","destination":"0xc4a2","id":5,"status":{"status":"executed",
            "tx_hash":"0xef","block":10,"resolution":{"outcome":"paid","reason":"r"}}}]}"#;
        let json = Json::parse(page).expect("parses");
        let items = json
            .get("disbursements")
            .and_then(Json::as_array)
            .expect("array");
        let record = Record::from_json(&items[0]).expect("a record");
        assert_eq!(record.id, 3);
        assert_eq!(record.destination, "0xc4a0");
        assert_eq!(record.amount, 1_000_000_000_000_000_001);
        assert_eq!(record.status, "executed");
        assert_eq!(record.asset, "native", "none named: native");
        assert_eq!(record.block, Some(7));
        assert_eq!(record.tx_hash.as_deref(), Some("0xab"));
        assert_eq!(record.resolution, None);
        let included = Record::from_json(&items[1]).expect("a record");
        assert_eq!(
            (included.status.as_str(), included.block),
            ("included", Some(9))
        );
        assert!(!included.settled());
        assert_eq!(included.asset, "GRT");
        let resolved = Record::from_json(&items[2]).expect("a record");
        assert_eq!(
            resolved.resolution.as_deref(),
            Some(r#"{"outcome":"paid","reason":"r"}"#)
        );
    }
}
