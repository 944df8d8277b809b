//! The comparison's tests: a clean run, then each kind of disagreement the verdict must
//! find (a double payment, one in the wrong asset, a transaction not canonical or not deep
//! enough, one that does not pay what was queued, the rest).

use super::checks::overpaid;
use super::observe::{Observed, Receipt, Transfer};
use super::verdict::judge;
use crate::chaos::disbursements::{Asset, Expected, asset};
use crate::chaos::store::Record;
use crate::chaos::token::transfer_call;

const TREASURY: &str = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";
const TOKEN: &str = "0x7070707070707070707070707070707070707070";

/// Sets what `to` holds of `asset` on the chain.
fn hold(chain: &mut Observed, to: &str, asset: Asset, amount: u128) {
    let held = chain.holdings.entry(to.to_owned()).or_default();
    match asset {
        Asset::Native => held.native = amount,
        Asset::Token => held.token = amount,
    }
}

/// Three destinations, each paid once in its own block (10, 11, 12) under a head of
/// 20: a clean run. The second (`0xd1`) is paid in the token, the others in ether. Tests
/// break one thing each.
fn clean() -> (Vec<Expected>, Vec<Record>, Observed) {
    let expected: Vec<Expected> = (0..3)
        .map(|i| Expected {
            destination: format!("0xd{i}"),
            amount: 100 + u128::from(i),
            asset: asset(i),
        })
        .collect();
    let mut chain = Observed {
        head: 20,
        latest_nonce: 3,
        pending_nonce: 3,
        token: TOKEN.into(),
        ..Observed::default()
    };
    let records = expected
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let (to, amount) = (&e.destination, e.amount);
            let (hash, block) = (format!("0xt{i}"), 10 + i as u64);
            hold(&mut chain, to, e.asset, amount);
            chain.canonical.insert(block, format!("0xb{block}"));
            let receipt = Receipt {
                status: "0x1".into(),
                block,
                block_hash: format!("0xb{block}"),
                from: TREASURY.into(),
                to: to.clone(),
                value: Some(amount),
                input: "0x".into(),
                transfers: vec![],
            };
            let receipt = match e.asset {
                Asset::Native => receipt,
                Asset::Token => Receipt {
                    to: TOKEN.into(),
                    value: Some(0),
                    input: transfer_call(to, amount),
                    transfers: vec![Transfer {
                        contract: TOKEN.into(),
                        from: TREASURY.into(),
                        to: to.clone(),
                        amount: Some(amount),
                    }],
                    ..receipt
                },
            };
            chain.receipts.insert(hash.clone(), receipt);
            Record {
                id: i as u64 + 1,
                destination: to.clone(),
                amount,
                asset: e.asset.name().into(),
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
    assert_eq!((verdict.executed_native, verdict.executed_token), (2, 1));

    // A cancelled one, never paid, and the nonce that goes with it: clean too.
    let (expected, mut records, mut chain) = clean();
    records[2].status = "cancelled".into();
    records[2].tx_hash = None;
    records[2].block = None;
    hold(&mut chain, "0xd2", Asset::Native, 0);
    chain.latest_nonce = 2;
    chain.pending_nonce = 2;
    let verdict = judge(&expected, &records, &chain, 3);
    assert!(verdict.clean(), "{verdict:?}");
    assert_eq!((verdict.executed, verdict.cancelled), (2, 1));
}

#[test]
fn a_double_payment_is_counted_and_named() {
    let (expected, records, mut chain) = clean();
    // The token payout paid twice: once at the store's transaction, once more at another
    // nonce.
    hold(&mut chain, "0xd1", Asset::Token, 2 * 101);
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
    assert_eq!(overpaid(&expected, &chain.holdings).len(), 1);

    // A cancelled disbursement that was paid twice is a double payment too.
    let (expected, mut records, mut chain) = clean();
    records[0].status = "cancelled".into();
    hold(&mut chain, "0xd0", Asset::Native, 3 * 100);
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
    hold(&mut chain, "0xd2", Asset::Native, 0);
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

#[test]
fn a_payment_in_the_wrong_asset_is_a_double_payment() {
    // A native destination that also received tokens.
    let (expected, records, mut chain) = clean();
    hold(&mut chain, "0xd0", Asset::Token, 5);
    let verdict = judge(&expected, &records, &chain, 3);
    assert_eq!(verdict.double_payments.len(), 1, "{verdict:?}");
    assert!(
        verdict.double_payments[0].contains("0xd0 holds 5 GRT units but was queued 100 in native"),
        "{verdict:?}"
    );
    assert_eq!(overpaid(&expected, &chain.holdings).len(), 1);

    // The token payout paid in ether instead: its transaction a value transfer.
    let (expected, records, mut chain) = clean();
    hold(&mut chain, "0xd1", Asset::Token, 0);
    hold(&mut chain, "0xd1", Asset::Native, 101);
    let receipt = chain.receipts.get_mut("0xt1").expect("a receipt");
    receipt.to = "0xd1".into();
    receipt.value = Some(101);
    receipt.input = "0x".into();
    receipt.transfers.clear();
    let verdict = judge(&expected, &records, &chain, 3);
    assert!(
        verdict.double_payments[0].contains("paid in the wrong asset"),
        "{verdict:?}"
    );
    let all = verdict.mismatches.join("\n");
    assert!(all.contains("holds 0 GRT units of its 101"), "{all}");
    assert!(
        all.contains("0xt1 goes to 0xd1, not the token's contract"),
        "{all}"
    );
    assert!(all.contains("nonce is 3 on chain, but 2 executed"), "{all}");
}

#[test]
fn a_token_transaction_must_be_the_transfer_with_its_log() {
    type Breaks = fn(&mut Receipt);
    let broken: [(&str, Breaks); 5] = [
        ("not exactly Transfer", |r| {
            // A fee taken on transfer: the destination got less, a collector the rest.
            r.transfers[0].amount = Some(99);
            r.transfers.push(Transfer {
                contract: TOKEN.into(),
                from: TREASURY.into(),
                to: "0xfee".into(),
                amount: Some(2),
            });
        }),
        ("logs [] from the token", |r| r.transfers.clear()),
        ("carries 1 wei", |r| r.value = Some(1)),
        ("not transfer(0xd1, 101)", |r| {
            r.input = transfer_call("0xd2", 101);
        }),
        ("not the treasury", |r| r.from = "0xdead".into()),
    ];
    for (expect, breaks) in broken {
        let (expected, records, mut chain) = clean();
        breaks(chain.receipts.get_mut("0xt1").expect("a receipt"));
        let verdict = judge(&expected, &records, &chain, 3);
        assert_eq!(verdict.in_chain, 2, "{expect}: {verdict:?}");
        assert!(
            verdict
                .mismatches
                .iter()
                .any(|m| m.starts_with("disbursement 2 (GRT to 0xd1): 0xt1") && m.contains(expect)),
            "{expect}: {verdict:?}"
        );
        assert!(verdict.double_payments.is_empty(), "{verdict:?}");
    }
}

#[test]
fn a_native_transaction_must_carry_the_amount_and_no_call() {
    let (expected, records, mut chain) = clean();
    chain.receipts.get_mut("0xt0").expect("a receipt").value = Some(99);
    let verdict = judge(&expected, &records, &chain, 3);
    assert!(
        verdict
            .mismatches
            .iter()
            .any(|m| m.contains("0xt0 carries 99 wei, not its amount 100")),
        "{verdict:?}"
    );
    let (expected, records, mut chain) = clean();
    chain.receipts.get_mut("0xt2").expect("a receipt").input = transfer_call("0xd2", 102);
    let verdict = judge(&expected, &records, &chain, 3);
    assert!(
        verdict
            .mismatches
            .iter()
            .any(|m| m.contains("0xt2 carries call data (68 bytes)")),
        "{verdict:?}"
    );
    // The transaction the chain cannot show.
    let (expected, records, mut chain) = clean();
    chain.receipts.get_mut("0xt2").expect("a receipt").value = None;
    assert_eq!(judge(&expected, &records, &chain, 3).in_chain, 2);
}

#[test]
fn the_store_must_keep_the_asset_queued() {
    let (expected, mut records, chain) = clean();
    records[1].asset = "native".into();
    let verdict = judge(&expected, &records, &chain, 3);
    assert!(
        verdict
            .mismatches
            .iter()
            .any(|m| m.contains("the store says asset native, queued GRT")),
        "{verdict:?}"
    );
    assert_eq!((verdict.executed_native, verdict.executed_token), (3, 0));
}
