//! Handler tests: one replica, one message in, the exact effects out.

use crate::net::{cs, fadd, int, op};
use consensus::{
    Attrs, BadInput, Ballot, Command, Decision, Deps, Epaxos, EpaxosConfig, EpaxosEffect,
    EpaxosMsg, EpaxosPersist, EpaxosReply, EpaxosTimer, ExecResult, ExecutionRecord, InstanceId,
    InstanceRecord, RecoveredState, Status, choose,
};
use registers::{Effect, Key, Register, RegisterStore, ReplicaId, RmwOutcome, Time, Value};
use std::collections::BTreeMap;

const PHASE_US: u64 = 1_000;
const RECOVERY_US: u64 = 5_000;

fn machine(me: u32, n: u32) -> (Epaxos, RegisterStore) {
    let cfg = EpaxosConfig {
        phase_timeout_us: PHASE_US,
        recovery_timeout_us: RECOVERY_US,
        ..EpaxosConfig::new(ReplicaId(me), n)
    };
    (Epaxos::new(cfg).unwrap(), RegisterStore::new())
}

fn id(r: u32, s: u64) -> InstanceId {
    InstanceId::new(ReplicaId(r), s)
}

fn deps(ds: &[(u32, u64)]) -> Deps {
    let mut d = Deps::new();
    for &(r, s) in ds {
        d.include(ReplicaId(r), s);
    }
    d
}

fn attrs(client: u64, seq: u64, ds: &[(u32, u64)], base: Register) -> Attrs {
    Attrs {
        cmd: Command::Rmw {
            op: op(client, 1),
            key: Key::from("k"),
            rmw: fadd(1),
        },
        seq,
        deps: deps(ds),
        base,
    }
}

fn ballot(round: u64, r: u32) -> Ballot {
    Ballot {
        round,
        replica: ReplicaId(r),
    }
}

fn init(r: u32) -> Ballot {
    Ballot::initial(ReplicaId(r))
}

fn record(
    inst: InstanceId,
    promised: Ballot,
    accepted: Ballot,
    status: Status,
    a: &Attrs,
    unchanged: bool,
) -> EpaxosEffect {
    Effect::Persist(EpaxosPersist::Instance(InstanceRecord {
        inst,
        promised,
        accepted,
        status,
        attrs: Some(a.clone()),
        unchanged,
    }))
}

fn send(to: u32, msg: EpaxosMsg) -> EpaxosEffect {
    Effect::Send {
        to: ReplicaId(to),
        msg,
    }
}

fn recover_timer(at_us: u64, inst: InstanceId) -> EpaxosEffect {
    Effect::SetTimer {
        at: Time(at_us),
        timer: EpaxosTimer::Recover { inst },
    }
}

fn deliver(
    m: &mut Epaxos,
    store: &mut RegisterStore,
    from: u32,
    msg: EpaxosMsg,
) -> Vec<EpaxosEffect> {
    let mut out = Vec::new();
    m.handle_message(Time(0), ReplicaId(from), msg, store, &mut out)
        .expect("valid input");
    out
}

#[test]
fn pre_accept_with_a_conflict_raises_seq_and_deps_and_merges_base() {
    let (mut m, mut store) = machine(1, 3);
    let newer = Register::new(int(5), cs(3, 9, 0));
    store.apply(&Key::from("k"), &newer);
    let other = attrs(7, 3, &[], Register::default());
    deliver(
        &mut m,
        &mut store,
        2,
        EpaxosMsg::PreAccept {
            inst: id(2, 0),
            ballot: init(2),
            attrs: other,
        },
    );

    let proposal = attrs(1, 1, &[], Register::new(int(1), cs(1, 1, 0)));
    let out = deliver(
        &mut m,
        &mut store,
        0,
        EpaxosMsg::PreAccept {
            inst: id(0, 0),
            ballot: init(0),
            attrs: proposal.clone(),
        },
    );
    let updated = Attrs {
        seq: 4,
        deps: deps(&[(2, 0)]),
        base: newer.clone(),
        ..proposal
    };
    assert_eq!(
        out,
        vec![
            record(
                id(0, 0),
                init(0),
                init(0),
                Status::PreAccepted,
                &updated,
                false
            ),
            send(
                0,
                EpaxosMsg::PreAcceptOk {
                    inst: id(0, 0),
                    ballot: init(0),
                    seq: 4,
                    deps: deps(&[(2, 0)]),
                    base: newer,
                }
            ),
            // Replica 1 is first after leader 0: waits 2 x the timeout.
            recover_timer(2 * RECOVERY_US, id(0, 0)),
        ]
    );
}

#[test]
fn pre_accept_without_conflict_is_unchanged() {
    let (mut m, mut store) = machine(2, 3);
    let proposal = attrs(1, 1, &[], Register::new(int(1), cs(1, 1, 0)));
    let out = deliver(
        &mut m,
        &mut store,
        0,
        EpaxosMsg::PreAccept {
            inst: id(0, 0),
            ballot: init(0),
            attrs: proposal.clone(),
        },
    );
    assert_eq!(
        out[0],
        record(
            id(0, 0),
            init(0),
            init(0),
            Status::PreAccepted,
            &proposal,
            true
        )
    );
    assert_eq!(
        out[1],
        send(
            0,
            EpaxosMsg::PreAcceptOk {
                inst: id(0, 0),
                ballot: init(0),
                seq: 1,
                deps: Deps::new(),
                base: proposal.base.clone(),
            }
        )
    );
}

#[test]
fn duplicate_pre_accept_repeats_the_first_answer_without_recomputing() {
    let (mut m, mut store) = machine(1, 3);
    let a = attrs(1, 1, &[], Register::default());
    let first = deliver(
        &mut m,
        &mut store,
        0,
        EpaxosMsg::PreAccept {
            inst: id(0, 0),
            ballot: init(0),
            attrs: a.clone(),
        },
    );
    // A conflicting instance arrives in between; recomputing would now
    // add it to the deps of (0, 0).
    deliver(
        &mut m,
        &mut store,
        2,
        EpaxosMsg::PreAccept {
            inst: id(2, 0),
            ballot: init(2),
            attrs: attrs(2, 1, &[], Register::default()),
        },
    );
    let again = deliver(
        &mut m,
        &mut store,
        0,
        EpaxosMsg::PreAccept {
            inst: id(0, 0),
            ballot: init(0),
            attrs: a,
        },
    );
    assert_eq!(again, vec![first[1].clone()]);
}

#[test]
fn accept_persists_status_and_accepted_ballot_before_replying() {
    let (mut m, mut store) = machine(2, 3);
    let a = attrs(1, 2, &[(1, 0)], Register::new(int(3), cs(2, 2, 0)));
    let b = ballot(1, 1);
    let out = deliver(
        &mut m,
        &mut store,
        1,
        EpaxosMsg::Accept {
            inst: id(0, 0),
            ballot: b,
            attrs: a.clone(),
        },
    );
    assert_eq!(
        out,
        vec![
            record(id(0, 0), b, b, Status::Accepted, &a, false),
            send(
                1,
                EpaxosMsg::AcceptOk {
                    inst: id(0, 0),
                    ballot: b
                }
            ),
            recover_timer(3 * RECOVERY_US, id(0, 0)),
        ]
    );
}

#[test]
fn prepare_with_a_lower_ballot_is_nacked_without_persisting() {
    let (mut m, mut store) = machine(2, 3);
    let high = ballot(2, 1);
    let out = deliver(
        &mut m,
        &mut store,
        1,
        EpaxosMsg::Prepare {
            inst: id(0, 0),
            ballot: high,
        },
    );
    assert!(
        matches!(out[0], Effect::Persist(_)),
        "promise is durable first: {out:?}"
    );
    assert!(matches!(
        out[1],
        Effect::Send {
            msg: EpaxosMsg::PrepareOk { .. },
            ..
        }
    ));
    let low = ballot(1, 0);
    let out = deliver(
        &mut m,
        &mut store,
        0,
        EpaxosMsg::Prepare {
            inst: id(0, 0),
            ballot: low,
        },
    );
    assert_eq!(
        out,
        vec![send(
            0,
            EpaxosMsg::Nack {
                inst: id(0, 0),
                ballot: low,
                promised: high
            }
        )]
    );
    assert_eq!(m.stats().nacks_sent, 1);
}

#[test]
fn prepare_ok_reports_the_accepted_ballot_apart_from_the_promise() {
    let (mut m, mut store) = machine(2, 3);
    let a = attrs(1, 2, &[], Register::default());
    let b1 = ballot(1, 1);
    deliver(
        &mut m,
        &mut store,
        1,
        EpaxosMsg::Accept {
            inst: id(0, 0),
            ballot: b1,
            attrs: a.clone(),
        },
    );
    let b2 = ballot(2, 0);
    let out = deliver(
        &mut m,
        &mut store,
        0,
        EpaxosMsg::Prepare {
            inst: id(0, 0),
            ballot: b2,
        },
    );
    assert_eq!(
        out,
        vec![
            record(id(0, 0), b2, b1, Status::Accepted, &a, false),
            send(
                0,
                EpaxosMsg::PrepareOk {
                    inst: id(0, 0),
                    ballot: b2,
                    state: RecoveredState {
                        status: Status::Accepted,
                        accepted: b1,
                        attrs: Some(a),
                        unchanged: false,
                    },
                }
            ),
        ]
    );
}

#[test]
fn late_pre_accept_never_erases_an_accept_of_its_ballot() {
    let (mut m, mut store) = machine(2, 3);
    let a = attrs(1, 2, &[], Register::default());
    let b = ballot(1, 1);
    deliver(
        &mut m,
        &mut store,
        1,
        EpaxosMsg::Accept {
            inst: id(0, 0),
            ballot: b,
            attrs: a.clone(),
        },
    );
    let out = deliver(
        &mut m,
        &mut store,
        1,
        EpaxosMsg::PreAccept {
            inst: id(0, 0),
            ballot: b,
            attrs: a,
        },
    );
    assert!(out.is_empty());
    assert_eq!(m.status(id(0, 0)), Some((Status::Accepted, false)));
}

#[test]
fn fast_path_persists_the_commit_then_broadcasts_then_executes_then_replies_after_a_majority() {
    let (mut m, mut store) = machine(0, 3);
    let mut out = Vec::new();
    m.propose(
        Time(0),
        op(1, 1),
        Key::from("k"),
        fadd(5),
        &mut store,
        &mut out,
    );
    let a = Attrs {
        cmd: Command::Rmw {
            op: op(1, 1),
            key: Key::from("k"),
            rmw: fadd(5),
        },
        seq: 1,
        deps: Deps::new(),
        base: Register::default(),
    };
    let pre = EpaxosMsg::PreAccept {
        inst: id(0, 0),
        ballot: init(0),
        attrs: a.clone(),
    };
    assert_eq!(
        out,
        vec![
            record(id(0, 0), init(0), init(0), Status::PreAccepted, &a, true),
            send(1, pre.clone()),
            send(2, pre),
            Effect::SetTimer {
                at: Time(PHASE_US),
                timer: EpaxosTimer::Phase {
                    inst: id(0, 0),
                    ballot: init(0)
                }
            },
        ]
    );
    let out = deliver(
        &mut m,
        &mut store,
        1,
        EpaxosMsg::PreAcceptOk {
            inst: id(0, 0),
            ballot: init(0),
            seq: 1,
            deps: Deps::new(),
            base: Register::default(),
        },
    );
    let commit = EpaxosMsg::Commit {
        inst: id(0, 0),
        attrs: a.clone(),
    };
    let outcome = RmwOutcome {
        old: None,
        new: int(5),
        applied: true,
        not_an_integer: false,
    };
    let rmw_reg = Register::new(int(5), cs(0, 0, 1));
    assert_eq!(
        out,
        vec![
            record(id(0, 0), init(0), init(0), Status::Committed, &a, false),
            // Asks the silent replicas again if their notices get lost.
            Effect::SetTimer {
                at: Time(PHASE_US),
                timer: EpaxosTimer::Reply { inst: id(0, 0) }
            },
            send(1, commit.clone()),
            send(2, commit.clone()),
            Effect::Persist(EpaxosPersist::Executed(ExecutionRecord {
                inst: id(0, 0),
                result: ExecResult::Applied {
                    key: Key::from("k"),
                    last_rmw: rmw_reg.clone(),
                    register: rmw_reg,
                    entry: consensus::DedupEntry {
                        op: op(1, 1),
                        outcome: outcome.clone(),
                        cs: cs(0, 0, 1)
                    },
                },
            })),
        ]
    );
    assert_eq!(m.stats().fast_commits, 1);
    // Only the leader executed so far: no reply until a second replica.
    // The notices are late: the retry re-sends the Commit, doubling its wait.
    let mut out = Vec::new();
    m.handle_timer(
        Time(PHASE_US),
        EpaxosTimer::Reply { inst: id(0, 0) },
        &mut store,
        &mut out,
    );
    assert_eq!(
        out,
        vec![
            send(1, commit.clone()),
            send(2, commit.clone()),
            Effect::SetTimer {
                at: Time(3 * PHASE_US),
                timer: EpaxosTimer::Reply { inst: id(0, 0) }
            },
        ]
    );
    let out = deliver(
        &mut m,
        &mut store,
        2,
        EpaxosMsg::Executed { inst: id(0, 0) },
    );
    assert_eq!(
        out,
        vec![Effect::Reply {
            op: op(1, 1),
            reply: EpaxosReply::Rmw {
                outcome,
                cs: cs(0, 0, 1)
            }
        }]
    );
    assert_eq!(m.pending_replies(), 0);
}

#[test]
fn a_changed_reply_sends_the_merge_to_accept_then_commits_with_the_newer_base() {
    let (mut m, mut store) = machine(0, 3);
    let mut out = Vec::new();
    m.propose(
        Time(0),
        op(1, 1),
        Key::from("k"),
        fadd(1),
        &mut store,
        &mut out,
    );
    let newer = Register::new(int(41), cs(4, 2, 0));
    let out = deliver(
        &mut m,
        &mut store,
        2,
        EpaxosMsg::PreAcceptOk {
            inst: id(0, 0),
            ballot: init(0),
            seq: 3,
            deps: deps(&[(2, 6)]),
            base: newer.clone(),
        },
    );
    let merged = Attrs {
        cmd: Command::Rmw {
            op: op(1, 1),
            key: Key::from("k"),
            rmw: fadd(1),
        },
        seq: 3,
        deps: deps(&[(2, 6)]),
        base: newer,
    };
    let acc = EpaxosMsg::Accept {
        inst: id(0, 0),
        ballot: init(0),
        attrs: merged.clone(),
    };
    assert_eq!(
        out,
        vec![
            record(id(0, 0), init(0), init(0), Status::Accepted, &merged, false),
            send(1, acc.clone()),
            send(2, acc),
            Effect::SetTimer {
                at: Time(PHASE_US),
                timer: EpaxosTimer::Phase {
                    inst: id(0, 0),
                    ballot: init(0)
                }
            },
        ]
    );
    let out = deliver(
        &mut m,
        &mut store,
        1,
        EpaxosMsg::AcceptOk {
            inst: id(0, 0),
            ballot: init(0),
        },
    );
    assert_eq!(
        out[0],
        record(
            id(0, 0),
            init(0),
            init(0),
            Status::Committed,
            &merged,
            false
        )
    );
    assert_eq!(m.stats().slow_commits, 1);
    // Its dependency (2, 0..=6) is unknown here: execution waits, with a
    // bounded wait armed for the first missing slots.
    assert_eq!(m.status(id(0, 0)), Some((Status::Committed, false)));
    assert!(
        out.contains(&recover_timer(2 * RECOVERY_US, id(2, 0))),
        "{out:?}"
    );
}

#[test]
fn five_replicas_fast_path_needs_three_unchanged_peers_and_a_change_goes_slow_at_a_majority() {
    let (mut m, mut store) = machine(0, 5);
    let mut out = Vec::new();
    m.propose(
        Time(0),
        op(1, 1),
        Key::from("k"),
        fadd(1),
        &mut store,
        &mut out,
    );
    let ok = || EpaxosMsg::PreAcceptOk {
        inst: id(0, 0),
        ballot: init(0),
        seq: 1,
        deps: Deps::new(),
        base: Register::default(),
    };
    assert!(deliver(&mut m, &mut store, 1, ok()).is_empty());
    assert!(deliver(&mut m, &mut store, 2, ok()).is_empty());
    let mut out = deliver(&mut m, &mut store, 3, ok());
    assert!(
        matches!(&out[0], Effect::Persist(EpaxosPersist::Instance(r)) if r.status == Status::Committed)
    );
    assert_eq!(m.stats().fast_commits, 1);

    let (mut m, mut store) = machine(0, 5);
    m.propose(
        Time(0),
        op(1, 1),
        Key::from("k"),
        fadd(1),
        &mut store,
        &mut out,
    );
    assert!(deliver(&mut m, &mut store, 1, ok()).is_empty());
    let changed = EpaxosMsg::PreAcceptOk {
        inst: id(0, 0),
        ballot: init(0),
        seq: 2,
        deps: deps(&[(3, 0)]),
        base: Register::default(),
    };
    let out = deliver(&mut m, &mut store, 2, changed);
    assert!(
        matches!(&out[0], Effect::Persist(EpaxosPersist::Instance(r)) if r.status == Status::Accepted)
    );
    assert_eq!(m.stats().fast_commits, 0);
}

#[test]
fn a_leader_that_promised_a_recovery_ballot_does_not_fast_commit() {
    let (mut m, mut store) = machine(0, 3);
    let mut out = Vec::new();
    m.propose(
        Time(0),
        op(1, 1),
        Key::from("k"),
        fadd(1),
        &mut store,
        &mut out,
    );
    deliver(
        &mut m,
        &mut store,
        2,
        EpaxosMsg::Prepare {
            inst: id(0, 0),
            ballot: ballot(1, 2),
        },
    );
    let out = deliver(
        &mut m,
        &mut store,
        1,
        EpaxosMsg::PreAcceptOk {
            inst: id(0, 0),
            ballot: init(0),
            seq: 1,
            deps: Deps::new(),
            base: Register::default(),
        },
    );
    assert!(out.is_empty());
    assert_eq!(m.stats().fast_commits, 0);
    assert_eq!(m.stats().stale_messages, 1);
}

#[test]
fn bad_input_is_refused_and_counted() {
    let (mut m, mut store) = machine(0, 3);
    let mut out = Vec::new();
    let msg = EpaxosMsg::Executed { inst: id(1, 0) };
    assert_eq!(
        m.handle_message(Time(0), ReplicaId(7), msg.clone(), &mut store, &mut out),
        Err(BadInput::ReplicaOutOfRange(ReplicaId(7)))
    );
    assert_eq!(
        m.handle_message(Time(0), ReplicaId(0), msg, &mut store, &mut out),
        Err(BadInput::FromSelf)
    );
    let bad_deps = EpaxosMsg::PreAccept {
        inst: id(1, 0),
        ballot: init(1),
        attrs: attrs(1, 1, &[(9, 0)], Register::default()),
    };
    assert_eq!(
        m.handle_message(Time(0), ReplicaId(1), bad_deps, &mut store, &mut out),
        Err(BadInput::ReplicaOutOfRange(ReplicaId(9)))
    );
    // Replies about instances this replica does not lead: counted, ignored.
    let unknown = EpaxosMsg::AcceptOk {
        inst: id(0, 42),
        ballot: init(0),
    };
    assert_eq!(
        m.handle_message(Time(0), ReplicaId(1), unknown, &mut store, &mut out),
        Ok(())
    );
    assert!(out.is_empty());
    assert_eq!(m.stats().bad_input, 3);
    assert_eq!(m.stats().stale_messages, 1);
}

#[test]
fn a_conflicting_commit_is_counted_and_ignored() {
    let (mut m, mut store) = machine(1, 3);
    let a = attrs(1, 1, &[], Register::default());
    let out = deliver(
        &mut m,
        &mut store,
        0,
        EpaxosMsg::Commit {
            inst: id(0, 0),
            attrs: a.clone(),
        },
    );
    assert!(!out.is_empty());
    let b = attrs(1, 9, &[], Register::default());
    let out = deliver(
        &mut m,
        &mut store,
        2,
        EpaxosMsg::Commit {
            inst: id(0, 0),
            attrs: b,
        },
    );
    assert!(out.is_empty());
    assert_eq!(m.stats().conflicting_values, 1);
    assert_eq!(m.committed(id(0, 0)), Some(&a));
    // The value executed once: fetch-add 1 on absent.
    assert_eq!(store.get(&Key::from("k")).value, Some(Value::from_i64(1)));
}

fn state(status: Status, accepted: Ballot, a: Option<&Attrs>, unchanged: bool) -> RecoveredState {
    RecoveredState {
        status,
        accepted,
        attrs: a.cloned(),
        unchanged,
    }
}

#[test]
fn recovery_rule_keeps_whatever_may_have_been_chosen() {
    let inst = id(0, 0);
    let proposal = attrs(1, 1, &[], Register::default());
    let other = attrs(1, 5, &[(3, 2)], Register::new(int(2), cs(2, 1, 0)));
    let empty = state(Status::Empty, Ballot::ZERO, None, false);
    let unchanged = state(Status::PreAccepted, init(0), Some(&proposal), true);
    let changed = state(Status::PreAccepted, init(0), Some(&other), false);
    let q = |rs: &[(u32, &RecoveredState)]| -> BTreeMap<ReplicaId, RecoveredState> {
        rs.iter()
            .map(|(r, s)| (ReplicaId(*r), (*s).clone()))
            .collect()
    };
    // n = 5, leader 0 absent, all but one unchanged: may be fast-committed.
    assert_eq!(
        choose(inst, &q(&[(1, &unchanged), (2, &unchanged), (3, &empty)])),
        Decision::Accept(proposal.clone())
    );
    // n = 3, the same rule with one unchanged of two.
    assert_eq!(
        choose(inst, &q(&[(1, &unchanged), (2, &empty)])),
        Decision::Accept(proposal.clone())
    );
    // Two members moved away from the proposal: no fast commit; start over.
    let start_over = choose(inst, &q(&[(1, &unchanged), (2, &changed), (3, &empty)]));
    let Decision::PreAccept(a) = start_over else {
        panic!("{start_over:?}")
    };
    assert_eq!(
        (a.seq, a.deps, a.base),
        (5, deps(&[(3, 2)]), other.base.clone())
    );
    // The leader replied: it never fast-commits after promising, so the
    // unchanged replies prove nothing.
    assert!(matches!(
        choose(
            inst,
            &q(&[(0, &unchanged), (1, &unchanged), (2, &unchanged)])
        ),
        Decision::PreAccept(_)
    ));
    // Accepted values: the highest ACCEPTED ballot wins.
    let acc_low = state(Status::Accepted, ballot(1, 2), Some(&proposal), false);
    let acc_high = state(Status::Accepted, ballot(2, 3), Some(&other), false);
    assert_eq!(
        choose(inst, &q(&[(1, &acc_high), (2, &acc_low), (3, &unchanged)])),
        Decision::Accept(other.clone())
    );
    let committed = state(Status::Committed, ballot(1, 1), Some(&proposal), false);
    assert_eq!(
        choose(inst, &q(&[(1, &acc_high), (2, &committed)])),
        Decision::Commit(proposal)
    );
    assert_eq!(
        choose(inst, &q(&[(1, &empty), (2, &empty)])),
        Decision::Noop
    );
}

#[test]
fn a_repeated_commit_from_the_leader_of_an_executed_instance_gets_the_notice_again() {
    let (mut m, mut store) = machine(1, 3);
    let a = attrs(1, 1, &[], Register::default());
    let commit = EpaxosMsg::Commit {
        inst: id(0, 0),
        attrs: a,
    };
    let first = deliver(&mut m, &mut store, 0, commit.clone());
    assert_eq!(
        first.last(),
        Some(&send(0, EpaxosMsg::Executed { inst: id(0, 0) }))
    );
    let again = deliver(&mut m, &mut store, 0, commit.clone());
    assert_eq!(again, vec![send(0, EpaxosMsg::Executed { inst: id(0, 0) })]);
    // The same Commit relayed by another replica asks for nothing.
    assert!(deliver(&mut m, &mut store, 2, commit).is_empty());
}
