//! The spending policy as the store enforces it: limits at queue time, approvals from
//! distinct names, the policy in force at signing, and what a policy change re-judges.

use std::sync::Arc;

use super::*;
use crate::ledger::{AttemptKind, Fees, SignedTx};
use crate::policy::{AssetLimits, DAY_MS, Destinations, NATIVE, Policy, Refusal};
use crate::treasury::{Disbursement, NewDisbursement, QueueError};

fn stores() -> Vec<GovStore> {
    vec![
        GovStore::open_temporary().expect("a store on sled"),
        GovStore::in_memory(),
    ]
}

fn pay(destination: &str, amount: u128) -> NewDisbursement {
    NewDisbursement {
        destination: destination.into(),
        amount,
        memo: String::new(),
        activation_epoch: 0,
        depends_on: vec![],
        external_key: None,
        asset: "native".into(),
    }
}

fn by(actor: &str, at_ms: u64) -> Audit {
    Audit {
        actor: actor.into(),
        reason: "grant round 7".into(),
        at_ms,
        unverified_actor: None,
    }
}

/// Two approvals at or above 500; at most 1,000 per disbursement and 2,000 a day.
fn two_person() -> Policy {
    Policy {
        approvals_required: 2,
        limits: [(
            NATIVE.to_owned(),
            AssetLimits {
                max_amount: Some(1000),
                daily_limit: Some(2000),
                approval_threshold: Some(500),
            },
        )]
        .into(),
        destinations: None,
    }
}

fn refused(outcome: Result<Queued, RequestError>) -> Refusal {
    match outcome {
        Err(RequestError::Invalid(QueueError::Refused(refusal))) => refusal,
        other => panic!("expected a policy refusal, got {other:?}"),
    }
}

fn payable_ids(store: &GovStore) -> Vec<DisbursementId> {
    store.activate(0).expect("activate");
    let payable = store.payable(100).expect("payable");
    payable.ready.iter().map(|d| d.id).collect()
}

fn signed(id: DisbursementId, nonce: u64) -> Intent {
    let tx = SignedTx {
        tx_hash: format!("0x{nonce}"),
        bytes: vec![1],
        fees: Fees::default(),
    };
    Intent::new(
        id,
        nonce,
        1,
        Attempt::new(AttemptKind::Payment, tx, 0, None),
    )
}

#[test]
fn limits_refuse_at_their_boundary_and_store_nothing() {
    for store in stores() {
        store.set_policy(two_person()).expect("policy");
        let t = 10 * DAY_MS;
        assert!(
            store
                .queue_audited(&pay("a", 1000), t, &by("alice", t))
                .is_ok()
        );
        let before = (
            store.totals().expect("totals"),
            store.audit(None, 100).expect("audit"),
        );
        // max_amount: 1,000 is allowed (above), 1,001 is over it.
        assert_eq!(
            refused(store.queue_audited(&pay("a", 1001), t, &by("alice", t))).rule(),
            "max_amount"
        );
        let over = store.queue_batch_audited(&[pay("a", 600), pay("b", 401)], t, &by("alice", t));
        assert!(
            matches!(
                &over,
                Err(RequestError::InvalidItem {
                    index: 1,
                    error: QueueError::Refused(Refusal::DailyLimit {
                        spent: 1600,
                        limit: 2000,
                        ..
                    })
                })
            ),
            "the batch's earlier items count: {over:?}"
        );
        assert_eq!(
            (
                store.totals().expect("totals"),
                store.audit(None, 100).expect("audit")
            ),
            before,
            "a refused request changes nothing"
        );
        assert_eq!(store.spent(NATIVE, t).expect("spent"), 1000);
        assert!(
            store
                .queue_audited(&pay("a", 1000), t, &by("alice", t))
                .is_ok()
        );
        assert_eq!(store.spent(NATIVE, t).expect("spent"), 2000);
        assert_eq!(
            refused(store.queue_audited(&pay("a", 1), t, &by("alice", t))).rule(),
            "daily_limit"
        );
        // A day and an hour later the window is empty again.
        let later = t + DAY_MS + 60 * 60 * 1000;
        assert_eq!(store.spent(NATIVE, later).expect("spent"), 0);
        assert!(
            store
                .queue_audited(&pay("a", 1), later, &by("alice", later))
                .is_ok()
        );
    }
}

#[test]
fn cancelling_gives_back_its_share_of_the_day() {
    for store in stores() {
        store.set_policy(two_person()).expect("policy");
        let id = store
            .queue_audited(&pay("a", 400), 0, &by("alice", 0))
            .expect("queue")
            .disbursement
            .id;
        store
            .queue_audited(&pay("a", 1000), 0, &by("alice", 0))
            .expect("queue");
        assert_eq!(store.spent(NATIVE, 0).expect("spent"), 1400);
        store.cancel_audited(id, &by("alice", 0)).expect("cancel");
        assert_eq!(store.spent(NATIVE, 0).expect("spent"), 1000);
    }
}

#[test]
fn approvals_come_from_distinct_names_and_only_then_is_it_payable() {
    for store in stores() {
        store.set_policy(two_person()).expect("policy");
        let small = store
            .queue_audited(&pay("a", 499), 0, &by("alice", 0))
            .expect("queue")
            .disbursement;
        assert_eq!(
            small.status,
            DisbursementStatus::Queued,
            "under the threshold"
        );
        let big = store
            .queue_audited(&pay("b", 500), 0, &by("alice", 0))
            .expect("queue")
            .disbursement;
        assert_eq!(big.status, DisbursementStatus::AwaitingApproval);
        assert_eq!(
            big.approvers(),
            1,
            "the one who queued it counts as the first"
        );
        assert_eq!(payable_ids(&store), vec![small.id]);
        assert_eq!(store.totals().expect("totals").awaiting_approval, 1);

        // The same name again is refused, and writes nothing.
        let audit_before = store.audit(None, 100).expect("audit").len();
        let again = store.approve_audited(&[big.id], &by("alice", 1));
        assert!(
            matches!(again, Err(RequestError::Conflict(ref m)) if m.contains("already approved by alice")),
            "{again:?}"
        );
        assert_eq!(store.audit(None, 100).expect("audit").len(), audit_before);
        assert_eq!(payable_ids(&store), vec![small.id]);

        let approved = store
            .approve_audited(&[big.id], &by("bob", 2))
            .expect("approve");
        assert_eq!(approved[0].status, DisbursementStatus::Queued);
        assert_eq!(payable_ids(&store), vec![small.id, big.id]);
        let log = store.audit(None, 100).expect("audit");
        let last = log.last().expect("the approval's record");
        assert_eq!(
            (last.action.as_str(), last.actor.as_str()),
            ("disbursement.approve", "bob")
        );
        assert!(
            last.detail.contains("(alice, bob): queued"),
            "{}",
            last.detail
        );
        assert_eq!(store.totals().expect("totals").awaiting_approval, 0);

        // Approving what is not awaiting approval is refused.
        assert!(matches!(
            store.approve_audited(&[small.id], &by("bob", 3)),
            Err(RequestError::Conflict(_))
        ));
        assert!(matches!(
            store.approve_audited(&[999], &by("bob", 3)),
            Err(RequestError::NotFound(999))
        ));
    }
}

#[test]
fn a_batch_is_approved_as_one_or_not_at_all() {
    for store in stores() {
        store.set_policy(two_person()).expect("policy");
        let queued = store
            .queue_batch_audited(&[pay("a", 600), pay("b", 700)], 0, &by("alice", 0))
            .expect("queue");
        let ids: Vec<_> = queued.iter().map(|q| q.disbursement.id).collect();
        // One of them unknown: neither is approved.
        let mut with_unknown = ids.clone();
        with_unknown.push(99);
        assert!(store.approve_audited(&with_unknown, &by("bob", 1)).is_err());
        assert_eq!(store.totals().expect("totals").awaiting_approval, 2);
        let approved = store.approve_audited(&ids, &by("bob", 1)).expect("approve");
        assert!(
            approved
                .iter()
                .all(|d| d.status == DisbursementStatus::Queued)
        );
        assert_eq!(payable_ids(&store), ids);
    }
}

#[test]
fn queued_without_a_name_it_needs_every_approval() {
    for store in stores() {
        store.set_policy(two_person()).expect("policy");
        let id = store
            .queue(&pay("a", 800), 0)
            .expect("queue")
            .disbursement
            .id;
        assert_eq!(status(&store, id), DisbursementStatus::AwaitingApproval);
        store
            .approve_audited(&[id], &by("alice", 1))
            .expect("approve");
        assert_eq!(status(&store, id), DisbursementStatus::AwaitingApproval);
        store
            .approve_audited(&[id], &by("bob", 2))
            .expect("approve");
        assert_eq!(status(&store, id), DisbursementStatus::Queued);
    }
}

#[test]
fn an_approved_dependent_waits_for_its_dependency() {
    for store in stores() {
        store.set_policy(two_person()).expect("policy");
        let parent = store
            .queue_audited(&pay("a", 1), 0, &by("alice", 0))
            .expect("queue")
            .disbursement
            .id;
        let mut child = pay("b", 900);
        child.depends_on = vec![parent];
        let child = store
            .queue_audited(&child, 0, &by("alice", 0))
            .expect("queue")
            .disbursement
            .id;
        store
            .approve_audited(&[child], &by("bob", 1))
            .expect("approve");
        assert_eq!(status(&store, child), DisbursementStatus::Queued);
        assert_eq!(
            payable_ids(&store),
            vec![parent],
            "the child waits for its dependency"
        );
        // A cancelled dependency cancels a child still awaiting approval too.
        let other = store
            .queue_audited(&pay("c", 1), 0, &by("alice", 0))
            .expect("queue")
            .disbursement
            .id;
        let mut waiting = pay("d", 900);
        waiting.depends_on = vec![other];
        let waiting = store
            .queue_audited(&waiting, 0, &by("alice", 0))
            .expect("queue")
            .disbursement
            .id;
        store
            .cancel_audited(other, &by("alice", 1))
            .expect("cancel");
        assert!(matches!(
            status(&store, waiting),
            DisbursementStatus::Cancelled { .. }
        ));
        assert_eq!(store.backlog().expect("backlog").awaiting_approval, 0);
    }
}

#[test]
fn a_policy_tightened_while_disbursements_wait_stops_their_signing() {
    for store in stores() {
        store.set_policy(two_person()).expect("policy");
        let approved = store
            .queue_audited(&pay("a", 900), 0, &by("alice", 0))
            .expect("queue")
            .disbursement
            .id;
        store
            .approve_audited(&[approved], &by("bob", 1))
            .expect("approve");
        let small = store
            .queue_audited(&pay("b", 100), 0, &by("alice", 0))
            .expect("queue")
            .disbursement
            .id;
        let elsewhere = store
            .queue_audited(&pay("c", 100), 0, &by("alice", 0))
            .expect("queue")
            .disbursement
            .id;
        store.activate(0).expect("activate");

        // Three approvals now, a lower max_amount, and an allow-list without `c`.
        let mut tighter = two_person();
        tighter.approvals_required = 3;
        tighter.destinations = Some(Arc::new(Destinations::new(["a", "b"])));
        store.set_policy(tighter.clone()).expect("policy");
        let payable = store.payable(100).expect("payable");
        assert_eq!(
            payable.ready.iter().map(|d| d.id).collect::<Vec<_>>(),
            vec![small]
        );
        let rules: Vec<_> = payable
            .refused
            .iter()
            .map(|(id, r)| (*id, r.rule()))
            .collect();
        assert_eq!(
            rules,
            vec![(approved, "approvals"), (elsewhere, "destination")]
        );
        assert_eq!(
            status(&store, approved),
            DisbursementStatus::AwaitingApproval
        );
        assert_eq!(status(&store, elsewhere), DisbursementStatus::Queued);
        let held = store.held(10).expect("held");
        assert_eq!(held.len(), 1);
        assert!(held[0].1.contains("not on the allow-list"), "{}", held[0].1);
        assert_eq!(store.backlog().expect("backlog").held, 1);

        // A third name approves; loosening the list releases the held one.
        store
            .approve_audited(&[approved], &by("carol", 2))
            .expect("approve");
        let mut looser = tighter;
        looser.destinations = None;
        let rejudged = store.set_policy(looser).expect("policy");
        assert_eq!(rejudged.released, 1);
        assert_eq!(payable_ids(&store), vec![approved, small, elsewhere]);
    }
}

#[test]
fn loosening_the_rule_queues_what_now_has_enough_approvals() {
    for store in stores() {
        store.set_policy(two_person()).expect("policy");
        let id = store
            .queue_audited(&pay("a", 900), 0, &by("alice", 0))
            .expect("queue")
            .disbursement
            .id;
        assert_eq!(payable_ids(&store), Vec::<DisbursementId>::new());
        let rejudged = store.set_policy(Policy::default()).expect("policy");
        assert_eq!(rejudged.approved, 1);
        assert_eq!(payable_ids(&store), vec![id]);
    }
}

#[test]
fn staging_refuses_what_the_policy_in_force_refuses() {
    for store in stores() {
        let id = store
            .queue(&pay("a", 900), 0)
            .expect("queue")
            .disbursement
            .id;
        store.activate(0).expect("activate");
        let payable = store.payable(10).expect("payable");
        assert_eq!(payable.ready.len(), 1);
        // The policy changes between reading `ready` and staging.
        store.set_policy(two_person()).expect("policy");
        assert!(!store.stage(&[signed(id, 0)], 1).expect("stage"));
        assert!(store.intents().expect("intents").is_empty());
        assert_eq!(
            store.next_nonce().expect("nonce"),
            None,
            "no nonce consumed"
        );
    }
}

#[test]
fn an_operators_cancel_clears_the_policy_indexes() {
    for store in stores() {
        store.set_policy(two_person()).expect("policy");
        let waiting = store
            .queue_audited(&pay("a", 900), 0, &by("alice", 0))
            .expect("queue")
            .disbursement
            .id;
        let held = store
            .queue_audited(&pay("c", 1), 0, &by("alice", 0))
            .expect("queue")
            .disbursement
            .id;
        let mut listed = two_person();
        listed.destinations = Some(Arc::new(Destinations::new(["a"])));
        store.set_policy(listed).expect("policy");
        payable_ids(&store);
        assert_eq!(store.held(10).expect("held").len(), 1);
        store
            .cancel_audited(waiting, &by("alice", 1))
            .expect("cancel");
        store.cancel_audited(held, &by("alice", 1)).expect("cancel");
        let backlog = store.backlog().expect("backlog");
        assert_eq!((backlog.awaiting_approval, backlog.held), (0, 0));
        assert_eq!(
            store.totals().expect("totals"),
            store.count_by_status().expect("recount")
        );
    }
}

#[test]
fn approvals_survive_the_binary_record() {
    let store = GovStore::open_temporary().expect("store");
    store.set_policy(two_person()).expect("policy");
    let id = store
        .queue_audited(&pay("a", 900), 7, &by("alice", 7))
        .expect("queue")
        .disbursement
        .id;
    store
        .approve_audited(&[id], &by("bob", 8))
        .expect("approve");
    let record: Disbursement = store.get(id).expect("get").expect("exists");
    let names: Vec<_> = record
        .approvals
        .iter()
        .map(|a| (a.actor.as_str(), a.at_ms))
        .collect();
    assert_eq!(names, vec![("alice", 7), ("bob", 8)]);
    // Without approvals, the record is version 1, byte for byte.
    let plain = store.queue(&pay("a", 1), 0).expect("queue").disbursement;
    assert_eq!(plain.to_bytes()[0], super::wire::V1);
    assert_eq!(record.to_bytes()[0], super::wire::V2);
    assert_eq!(Disbursement::from_bytes(&record.to_bytes()), Ok(record));
}

fn status(store: &GovStore, id: DisbursementId) -> DisbursementStatus {
    store.get(id).expect("get").expect("exists").status
}

#[test]
fn a_tightened_policy_never_unsigns_what_is_staged() {
    for store in stores() {
        let id = store
            .queue(&pay("a", 900), 0)
            .expect("queue")
            .disbursement
            .id;
        store.activate(0).expect("activate");
        assert!(store.stage(&[signed(id, 0)], 1).expect("stage"));
        let mut listed = two_person();
        listed.destinations = Some(Arc::new(Destinations::new(["b"])));
        let rejudged = store.set_policy(listed).expect("policy");
        assert_eq!(rejudged, Rejudged::default());
        assert_eq!(
            store.intents().expect("intents").len(),
            1,
            "the intent stays"
        );
        assert!(matches!(
            status(&store, id),
            DisbursementStatus::Staged { .. }
        ));
        let payable = store.payable(10).expect("payable");
        assert!(payable.ready.is_empty() && payable.refused.is_empty());
    }
}

#[test]
fn the_daily_limit_bounds_what_is_signed_as_well_as_what_is_queued() {
    for store in stores() {
        store.set_policy(two_person()).expect("policy");
        // Queued two days apart, each within its day, both due at epoch 5.
        let mut first = pay("a", 400);
        first.activation_epoch = 5;
        let a = store
            .queue_audited(&first, 0, &by("alice", 0))
            .expect("queue")
            .disbursement
            .id;
        let b = store
            .queue_audited(&first, 2 * DAY_MS, &by("alice", 2 * DAY_MS))
            .expect("queue")
            .disbursement
            .id;
        let c = store
            .queue_audited(&first, 4 * DAY_MS, &by("alice", 4 * DAY_MS))
            .expect("queue")
            .disbursement
            .id;
        let d = store
            .queue_audited(&first, 6 * DAY_MS, &by("alice", 6 * DAY_MS))
            .expect("queue")
            .disbursement
            .id;
        store
            .set_policy(Policy {
                limits: [(
                    NATIVE.to_owned(),
                    AssetLimits {
                        daily_limit: Some(1000),
                        ..AssetLimits::default()
                    },
                )]
                .into(),
                ..Policy::default()
            })
            .expect("policy");
        store.activate(5).expect("activate");
        let payable = store.payable(10).expect("payable");
        assert_eq!(
            payable.ready.iter().map(|d| d.id).collect::<Vec<_>>(),
            vec![a, b],
            "800 fits, 1,200 does not"
        );
        let (waits, refusal) = payable.waiting.expect("c waits");
        assert_eq!((waits, refusal.rule()), (c, "daily_limit"));
        assert!(
            refusal.to_string().contains("signed in the last 24 hours"),
            "{refusal}"
        );
        assert!(
            store
                .stage(&[signed(a, 0), signed(b, 1)], 2)
                .expect("stage")
        );
        assert_eq!(
            store
                .signed_spend(NATIVE, crate::text::unix_ms())
                .expect("signed"),
            800
        );
        // What is signed counts: c and d wait, and staging one anyway is refused.
        let payable = store.payable(10).expect("payable");
        assert!(payable.ready.is_empty());
        assert_eq!(payable.waiting.map(|(id, _)| id), Some(c));
        assert!(!store.stage(&[signed(c, 2)], 3).expect("stage"));
        assert!(
            matches!(status(&store, d), DisbursementStatus::Queued),
            "waiting, not held"
        );
    }
}

#[test]
fn loosening_queues_what_an_unnamed_caller_queued_as_queueing_would() {
    for store in stores() {
        store.set_policy(two_person()).expect("policy");
        let id = store
            .queue(&pay("a", 800), 0)
            .expect("queue")
            .disbursement
            .id;
        assert_eq!(status(&store, id), DisbursementStatus::AwaitingApproval);
        // One approval needed now: queueing it unnamed would have queued it at once.
        let rejudged = store.set_policy(Policy::default()).expect("policy");
        assert_eq!(rejudged.approved, 1);
        assert_eq!(status(&store, id), DisbursementStatus::Queued);
    }
}
