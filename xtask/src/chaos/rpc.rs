//! Reading anvil directly (never through the fault proxy) in JSON-RPC batches, so that
//! checking every destination's holdings (ether and token) after each restart stays
//! cheap. (Single calls: [`call`], or [`Anvil`]'s own methods.)

use std::collections::HashMap;

use super::disbursements::{Asset, Expected};
use super::json::Json;
use super::token;
use crate::anvil::Anvil;
use crate::http;

/// Calls per batch request.
const BATCH: usize = 100;

/// A JSON-RPC quantity (`"0x1a"`) as a number.
pub(super) fn quantity(value: &Json) -> Option<u128> {
    let digits = value.as_str()?.strip_prefix("0x")?;
    if digits.is_empty() {
        return None;
    }
    u128::from_str_radix(digits, 16).ok()
}

/// Calls `(method, params)` in batches; the results in the calls' order. An error answer
/// to any call is an error.
pub(super) fn batch(anvil: &Anvil, calls: &[(&str, String)]) -> Result<Vec<Json>, String> {
    let mut results = Vec::with_capacity(calls.len());
    for chunk in calls.chunks(BATCH) {
        let body: Vec<String> = chunk
            .iter()
            .enumerate()
            .map(|(id, (method, params))| {
                format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#)
            })
            .collect();
        let body = format!("[{}]", body.join(","));
        let answer = http::request(&anvil.address, "POST", "/", None, Some(&body))?;
        if answer.status != 200 {
            return Err(format!(
                "a batch of {} calls: HTTP {}",
                chunk.len(),
                answer.status
            ));
        }
        results.extend(batch_results(&answer.body, chunk)?);
    }
    Ok(results)
}

/// One call; its result (an error answer is an error).
pub(super) fn call(anvil: &Anvil, method: &str, params: String) -> Result<Json, String> {
    batch(anvil, &[(method, params)])?
        .pop()
        .ok_or_else(|| format!("{method}: no answer"))
}

/// What a destination holds, per asset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Holding {
    /// Its balance in wei.
    pub(super) native: u128,
    /// Its `balanceOf` on the drill's token.
    pub(super) token: u128,
}

impl Holding {
    pub(super) fn of(&self, asset: Asset) -> u128 {
        match asset {
            Asset::Native => self.native,
            Asset::Token => self.token,
        }
    }
}

/// Every expected destination's holdings on anvil, by destination (lower case): its
/// balance, and its `balanceOf` on `token` (two calls each, one batch request per 50).
pub(super) fn holdings(
    anvil: &Anvil,
    token: &str,
    expected: &[Expected],
) -> Result<HashMap<String, Holding>, String> {
    let calls: Vec<(&str, String)> = expected
        .iter()
        .flat_map(|e| {
            let to = &e.destination;
            [
                ("eth_getBalance", format!(r#"["{to}","latest"]"#)),
                (
                    "eth_call",
                    format!(
                        r#"[{{"to":"{token}","data":"{}"}},"latest"]"#,
                        token::balance_of_call(to)
                    ),
                ),
            ]
        })
        .collect();
    let results = batch(anvil, &calls)?;
    expected
        .iter()
        .zip(results.chunks(2))
        .map(|(e, answers)| {
            let to = &e.destination;
            let [native, token] = answers else {
                return Err(format!("the holdings of {to}: {answers:?}"));
            };
            let read = |answer: &Json, what: &str| {
                quantity(answer).ok_or_else(|| format!("the {what} of {to}: {answer}"))
            };
            Ok((
                to.to_ascii_lowercase(),
                Holding {
                    native: read(native, "balance")?,
                    token: read(token, "token balance")?,
                },
            ))
        })
        .collect()
}

/// A batch answer's results, put back in the calls' order (an answer may come in any).
fn batch_results(body: &str, calls: &[(&str, String)]) -> Result<Vec<Json>, String> {
    let answer = Json::parse(body)?;
    let items = answer
        .as_array()
        .ok_or_else(|| format!("a batch answered with something else: {}", body.trim()))?;
    let mut results: Vec<Option<Json>> = vec![None; calls.len()];
    for item in items {
        let id = item
            .get("id")
            .and_then(Json::as_u64)
            .and_then(|id| usize::try_from(id).ok())
            .filter(|id| *id < calls.len())
            .ok_or_else(|| format!("a batch answer with an unknown id: {item:?}"))?;
        match item.get("result") {
            Some(result) => results[id] = Some(result.clone()),
            None => {
                let (method, params) = &calls[id];
                return Err(format!("{method} {params}: {item:?}"));
            }
        }
    }
    results
        .into_iter()
        .zip(calls)
        .map(|(result, (method, params))| {
            result.ok_or_else(|| format!("{method} {params}: no answer in the batch"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_and_batch_answers_in_any_order() {
        assert_eq!(quantity(&Json::String("0x1a".into())), Some(26));
        assert_eq!(quantity(&Json::String("0x".into())), None);
        assert_eq!(quantity(&Json::String("26".into())), None);
        assert_eq!(quantity(&Json::Null), None);
        let calls = [("a", "[]".to_owned()), ("b", "[]".to_owned())];
        let results = batch_results(
            r#"[{"jsonrpc":"2.0","id":1,"result":"0x2"},{"jsonrpc":"2.0","id":0,"result":null}]"#,
            &calls,
        )
        .expect("two results");
        assert_eq!(results, [Json::Null, Json::String("0x2".into())]);
        for bad in [
            r#"[{"id":0,"result":1}]"#,
            r#"[{"id":0,"result":1},{"id":1,"error":{"code":-1}}]"#,
            r#"[{"id":0,"result":1},{"id":7,"result":1}]"#,
            r#"{"id":0,"result":1}"#,
        ] {
            assert!(batch_results(bad, &calls).is_err(), "{bad}");
        }
    }
}
