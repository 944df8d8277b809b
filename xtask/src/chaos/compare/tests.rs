//! The comparison's tests: a clean run, then each kind of disagreement the verdict must
//! find (a double payment, a transaction not canonical or not deep enough, the rest).

use super::checks::overpaid;
use super::observe::{Observed, Receipt};
use super::verdict::judge;
use crate::chaos::store::Record;

const TREASURY: &str = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";

/// Three destinations, each paid once in its own block (10, 11, 12) under a head of
/// 20: a clean run. Tests break one thing each.
fn clean() -> (Vec<(String, u128)>, Vec<Record>, Observed) {
    let expected: Vec<(String, u128)> = (0..3)
        .map(|i| (format!("0xd{i}"), 100 + i as u128))
        .collect();
    let mut chain = Observed {
        head: 20,
        latest_nonce: 3,
        pending_nonce: 3,
        ..Observed::default()
    };
    let records = expected
        .iter()
        .enumerate()
        .map(|(i, (to, amount))| {
            let (hash, block) = (format!("0xt{i}"), 10 + i as u64);
            chain.balances.insert(to.clone(), *amount);
            chain.canonical.insert(block, format!("0xb{block}"));
            chain.receipts.insert(
                hash.clone(),
                Receipt {
                    status: "0x1".into(),
                    block,
                    block_hash: format!("0xb{block}"),
                    from: TREASURY.into(),
                    to: to.clone(),
                },
            );
            Record {
                id: i as u64 + 1,
                destination: to.clone(),
                amount: *amount,
                status: "executed".into(),
                tx_hash: Some(hash),
                block: Some(block),
                reason: None,
                resolution: None,
            }
        })
        .collect();
    (expected, records, chain)
}

#[test]
fn a_clean_run_is_clean() {
    let (expected, records, chain) = clean();
    let verdict = judge(&expected, &records, &chain, 3);
    assert!(verdict.clean(), "{verdict:?}");
    assert_eq!((verdict.executed, verdict.in_chain), (3, 3));

    // A cancelled one, never paid, and the nonce that goes with it: clean too.
    let (expected, mut records, mut chain) = clean();
    records[2].status = "cancelled".into();
    records[2].tx_hash = None;
    records[2].block = None;
    chain.balances.insert("0xd2".into(), 0);
    chain.latest_nonce = 2;
    chain.pending_nonce = 2;
    let verdict = judge(&expected, &records, &chain, 3);
    assert!(verdict.clean(), "{verdict:?}");
    assert_eq!((verdict.executed, verdict.cancelled), (2, 1));
}

#[test]
fn a_double_payment_is_counted_and_named() {
    let (expected, records, mut chain) = clean();
    // Paid twice: once at the store's transaction, once more at another nonce.
    chain.balances.insert("0xd1".into(), 2 * 101);
    chain.latest_nonce = 4;
    chain.pending_nonce = 4;
    let verdict = judge(&expected, &records, &chain, 3);
    assert_eq!(verdict.double_payments.len(), 1, "{verdict:?}");
    assert!(
        verdict.double_payments[0].contains("0xd1 holds 2 x its amount"),
        "{verdict:?}"
    );
    assert!(verdict.without_canonical_tx.is_empty(), "{verdict:?}");
    assert!(
        verdict.mismatches.iter().any(|m| m.contains("nonce is 4")),
        "the extra transaction shows in the nonce: {verdict:?}"
    );
    assert_eq!(overpaid(&expected, &chain.balances).len(), 1);

    // A cancelled disbursement that was paid twice is a double payment too.
    let (expected, mut records, mut chain) = clean();
    records[0].status = "cancelled".into();
    chain.balances.insert("0xd0".into(), 3 * 100);
    let verdict = judge(&expected, &records, &chain, 3);
    assert_eq!(verdict.double_payments.len(), 1, "{verdict:?}");
}

#[test]
fn an_executed_disbursement_in_a_block_that_is_not_canonical() {
    let (expected, records, mut chain) = clean();
    // A reorg replaced block 11 after the receipt was read: another hash there now.
    chain.canonical.insert(11, "0xreorged".into());
    let verdict = judge(&expected, &records, &chain, 3);
    assert_eq!(verdict.without_canonical_tx.len(), 1, "{verdict:?}");
    assert!(
        verdict.without_canonical_tx[0].contains("not canonical"),
        "{verdict:?}"
    );
    assert!(verdict.double_payments.is_empty());

    // The transaction gone altogether: no receipt, the money back with the treasury.
    let (expected, records, mut chain) = clean();
    chain.receipts.remove("0xt2");
    chain.balances.insert("0xd2".into(), 0);
    chain.latest_nonce = 2;
    chain.pending_nonce = 2;
    let verdict = judge(&expected, &records, &chain, 3);
    assert_eq!(verdict.without_canonical_tx.len(), 1, "{verdict:?}");
    assert!(verdict.without_canonical_tx[0].contains("no receipt"));

    // The receipt in another block than the store says; or a failed transaction.
    let (expected, mut records, chain) = clean();
    records[0].block = Some(11);
    let verdict = judge(&expected, &records, &chain, 3);
    assert!(
        verdict.without_canonical_tx[0].contains("the store says 11"),
        "{verdict:?}"
    );
    let (expected, records, mut chain) = clean();
    chain.receipts.get_mut("0xt0").expect("a receipt").status = "0x0".into();
    let verdict = judge(&expected, &records, &chain, 3);
    assert!(
        verdict.without_canonical_tx[0].contains("failed"),
        "{verdict:?}"
    );
}

#[test]
fn an_executed_disbursement_too_shallow() {
    let (expected, records, mut chain) = clean();
    // Block 12 under head 13 is 2 deep: short of 3.
    chain.head = 13;
    let verdict = judge(&expected, &records, &chain, 3);
    assert_eq!(verdict.without_canonical_tx.len(), 1, "{verdict:?}");
    assert!(
        verdict.without_canonical_tx[0].contains("is 2 deep (head 13), 3 required"),
        "{verdict:?}"
    );
    assert_eq!((verdict.shallow, verdict.in_chain), (1, 3));
    assert!(
        verdict.mismatches.is_empty(),
        "in the chain: the nonce agrees"
    );
    // At 1 confirmation (an auto-mining anvil), the tip itself is deep enough.
    chain.head = 12;
    assert!(judge(&expected, &records, &chain, 1).clean());
    assert_eq!(
        judge(&expected, &records, &chain, 3)
            .without_canonical_tx
            .len(),
        2
    );
}

#[test]
fn other_disagreements_are_mismatches() {
    // Executed without a transaction; still in flight; so the treasury's nonce (3) is
    // above the one executed disbursement whose transaction is in the chain.
    let (expected, mut records, chain) = clean();
    records[0].tx_hash = None;
    records[1].status = "included".into();
    let verdict = judge(&expected, &records, &chain, 3);
    assert_eq!(verdict.without_canonical_tx.len(), 1, "{verdict:?}");
    assert!(
        verdict
            .mismatches
            .iter()
            .any(|m| m.contains("still included"))
    );
    assert!(
        verdict
            .mismatches
            .iter()
            .any(|m| m.contains("nonce is 3 on chain, but 1 executed")),
        "{verdict:?}"
    );

    // Queued twice; something pending in the pool; a stranger in the store.
    let (expected, mut records, mut chain) = clean();
    let mut twice = records[0].clone();
    twice.id = 9;
    records.push(twice);
    let mut stranger = records[1].clone();
    stranger.destination = "0xee".into();
    stranger.id = 10;
    records.push(stranger);
    chain.pending_nonce = 4;
    let verdict = judge(&expected, &records, &chain, 3);
    let all = verdict.mismatches.join("\n");
    assert!(all.contains("0xd0 is in the store 2 times"), "{all}");
    assert!(
        all.contains("0xee is in the store 1 times but was never queued"),
        "{all}"
    );
    assert!(
        all.contains("1 treasury transactions still pending"),
        "{all}"
    );
}
