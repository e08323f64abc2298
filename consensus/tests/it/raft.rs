//! The raft engine on the deterministic test network: election at the
//! preferred replica, RMWs with the base's Read1 round and the
//! majority-executed reply, leader crash under load, catch-up of a
//! restarted replica, leadership returning to the preferred replica,
//! raft-all, refused input and reproducible runs.

use crate::raft_net::{LATENCY_US, RNet, op};
use consensus::BadInput;
use consensus::raft::{RaftConfig, RaftMsg, RaftPersist};
use protobuf::Message as _;
use raft::eraftpb::{Entry, Message, MessageType};
use registers::{ClientReply, ClientRequest, Key, Register, ReplicaId, RmwOp, Time, Value};
use std::collections::BTreeSet;

fn fadd(delta: i64) -> ClientRequest {
    ClientRequest::Rmw {
        key: Key::from("k"),
        op: RmwOp::FetchAdd { delta },
    }
}

fn preferred(r: u32) -> RaftConfig {
    RaftConfig {
        preferred_leader: Some(ReplicaId(r)),
        ..RNet::fast()
    }
}

fn old_of(reply: &ClientReply) -> i64 {
    match reply {
        ClientReply::Rmw { outcome, .. } => outcome.old.as_ref().map_or(0, |v| v.to_i64().unwrap()),
        other => panic!("not an RMW reply: {other:?}"),
    }
}

/// Every up replica holds the same register for "k" and the same
/// last_rmw, and none refused a message from an honest peer.
fn assert_converged(net: &RNet) {
    let k = Key::from("k");
    let up: Vec<usize> = (0..net.nodes.len())
        .filter(|&r| net.nodes[r].engine.is_some())
        .collect();
    let first = up[0];
    for &r in &up {
        assert_eq!(
            net.engine(r).stats().bad_input,
            0,
            "replica {r} refused honest input"
        );
        assert_eq!(
            net.nodes[r].store.get(&k),
            net.nodes[first].store.get(&k),
            "register at {r}"
        );
        assert_eq!(
            net.engine(r).last_rmw(&k),
            net.engine(first).last_rmw(&k),
            "last_rmw at {r}"
        );
    }
}

#[test]
fn the_preferred_replica_leads_and_rmws_from_every_replica_apply_once_each() {
    let mut net = RNet::new(3, preferred(1));
    assert!(net.run_until(1_000_000, |n| n.leader().is_some()));
    assert_eq!(net.leader(), Some(1));
    for r in 0..3 {
        net.client(r, op(r as u64 + 1, 1), fadd(1));
    }
    let ops: Vec<_> = (0..3).map(|r| op(r + 1, 1)).collect();
    assert!(net.run_until(2_000_000, |n| {
        ops.iter().all(|o| n.replied_anywhere(*o).is_some())
    }));
    let mut olds: Vec<i64> = ops
        .iter()
        .map(|o| old_of(net.replied_anywhere(*o).unwrap()))
        .collect();
    olds.sort();
    assert_eq!(olds, vec![0, 1, 2], "each RMW saw the previous one");
    net.run_for(500_000);
    assert_converged(&net);
    assert_eq!(
        net.nodes[0].store.get(&Key::from("k")).value,
        Some(Value::from_i64(3))
    );
}

#[test]
fn the_base_comes_from_a_quorum_and_wins_over_a_stale_local_register() {
    let mut net = RNet::new(3, preferred(0));
    net.run_until(1_000_000, |n| n.leader().is_some());
    // A write (by the register protocol) reached replicas 1 and 2 only.
    let w = Register::new(
        Some(Value::from_i64(100)),
        registers::Carstamp::for_write(4, registers::WriterId(9)),
    );
    for r in [1, 2] {
        net.nodes[r].store.apply(&Key::from("k"), &w);
    }
    net.client(0, op(1, 1), fadd(1));
    assert!(net.run_until(1_000_000, |n| n.reply(0, op(1, 1)).is_some()));
    let Some(ClientReply::Rmw { outcome, cs }) = net.reply(0, op(1, 1)) else {
        panic!()
    };
    assert_eq!(outcome.old, Some(Value::from_i64(100)));
    assert_eq!(*cs, w.cs.rmw_successor());
}

#[test]
fn a_gryff_rmw_is_answered_only_after_a_majority_executed_it() {
    let mut net = RNet::new(3, preferred(0));
    net.run_until(1_000_000, |n| n.leader().is_some());
    // Replica 2 is cut off; the leader's Executed notices to the
    // proposer (1) are lost.
    net.isolate(2);
    net.mute_notices.insert((0, 1));
    net.client(1, op(1, 1), fadd(1));
    net.run_for(150_000);
    let st = net.engine(1).status();
    assert!(st.applied >= 2 && st.commit >= 2, "{st:?}");
    assert_eq!(
        net.engine(1).stats().executed,
        1,
        "executed at the proposer"
    );
    assert_eq!(net.engine(0).stats().executed, 1, "and at the leader");
    assert!(
        net.reply(1, op(1, 1)).is_none(),
        "executed at a majority, but the proposer does not know it yet"
    );
    // The proposer's retry asks again; the leader's answer gets through.
    net.mute_notices.clear();
    assert!(net.run_until(1_000_000, |n| n.reply(1, op(1, 1)).is_some()));
}

#[test]
fn killing_the_leader_under_rmw_load_loses_and_duplicates_nothing() {
    let mut net = RNet::new(5, preferred(0));
    net.run_until(1_000_000, |n| n.leader().is_some());
    // 4 clients, one at each follower, 8 fetch-adds each; a client whose
    // replica does not answer in time retries the same op elsewhere.
    let mut done = 0;
    let mut next: Vec<u64> = vec![1; 4];
    let mut at: Vec<usize> = (1..5).collect();
    let mut sent_at: Vec<Time> = vec![Time(0); 4];
    for c in 0..4 {
        net.client(at[c], op(c as u64 + 1, 1), fadd(1));
        sent_at[c] = net.now;
    }
    let mut crashed = false;
    while done < 32 {
        assert!(
            net.now < Time::from_millis(60_000),
            "no progress: {done} done"
        );
        net.run_for(20_000);
        if !crashed && done >= 6 {
            let l = net.leader().expect("a leader");
            net.crash(l);
            crashed = true;
        }
        for c in 0..4 {
            if next[c] > 8 {
                continue;
            }
            let o = op(c as u64 + 1, next[c]);
            if net.reply(at[c], o).is_some() {
                done += 1;
                next[c] += 1;
                if next[c] <= 8 {
                    net.client(at[c], op(c as u64 + 1, next[c]), fadd(1));
                    sent_at[c] = net.now;
                }
            } else if net.now.as_micros() - sent_at[c].as_micros() > 1_500_000 {
                at[c] = if at[c] == 4 { 1 } else { at[c] + 1 };
                net.client(at[c], o, fadd(1));
                sent_at[c] = net.now;
            }
        }
    }
    assert!(crashed);
    let new_leader = net.leader().expect("a new leader");
    assert_ne!(new_leader, 0);
    // Exactly 32 increments, each RMW observed a distinct old value.
    let k = Key::from("k");
    let mut olds = BTreeSet::new();
    for c in 0..4u64 {
        for r in 1..=8 {
            let reply = (0..5)
                .find_map(|n| net.reply(n, op(c + 1, r)))
                .expect("answered");
            assert!(
                olds.insert(old_of(reply)),
                "two RMWs observed the same value"
            );
        }
    }
    assert_eq!(olds, (0..32).collect());
    net.run_for(1_000_000);
    let up = (1..5).find(|&r| net.nodes[r].engine.is_some()).unwrap();
    assert_eq!(net.nodes[up].store.get(&k).value, Some(Value::from_i64(32)));
    assert_converged(&net);
}

#[test]
fn a_restarted_replica_catches_up_from_its_records_and_the_leader() {
    let mut net = RNet::new(3, preferred(0));
    net.run_until(1_000_000, |n| n.leader().is_some());
    net.client(0, op(1, 1), fadd(5));
    net.run_until(1_000_000, |n| n.reply(0, op(1, 1)).is_some());
    net.run_for(200_000);
    net.crash(2);
    for i in 2..=6 {
        net.client(1, op(2, i), fadd(1));
        assert!(net.run_until(2_000_000, |n| n.reply(1, op(2, i)).is_some()));
    }
    net.restart(2);
    let executed_before = net.engine(2).stats().executed;
    assert_eq!(
        executed_before, 0,
        "recorded executions are replayed, not executed again"
    );
    assert_eq!(
        net.nodes[2].store.get(&Key::from("k")).value,
        Some(Value::from_i64(5))
    );
    assert!(
        net.run_until(2_000_000, |n| n.nodes[2].store.get(&Key::from("k")).value
            == Some(Value::from_i64(10)))
    );
    assert_eq!(
        net.engine(2).stats().executed,
        5,
        "only the missed entries ran"
    );
    assert_converged(&net);
}

#[test]
fn leadership_returns_to_the_preferred_replica_after_it_restarts() {
    let mut net = RNet::new(3, preferred(2));
    net.run_until(1_000_000, |n| n.leader().is_some());
    assert_eq!(net.leader(), Some(2));
    net.crash(2);
    assert!(net.run_until(3_000_000, |n| n.leader().is_some()));
    let interim = net.leader().unwrap();
    assert_ne!(interim, 2);
    net.client(interim, op(1, 1), fadd(1));
    net.run_until(1_000_000, |n| n.reply(interim, op(1, 1)).is_some());
    net.restart(2);
    assert!(net.run_until(5_000_000, |n| n.leader() == Some(2)));
    assert!(net.engine(interim).stats().leader_transfers >= 1);
    net.client(0, op(1, 2), fadd(1));
    assert!(net.run_until(1_000_000, |n| n.reply(0, op(1, 2)).is_some()));
    assert_converged(&net);
}

#[test]
fn raft_all_orders_gets_and_puts_and_answers_after_local_execution() {
    let mut cfg = preferred(0);
    cfg.every_op = true;
    let mut net = RNet::new(3, cfg);
    net.run_until(1_000_000, |n| n.leader().is_some());
    let k = Key::from("k");
    net.client(
        1,
        op(1, 1),
        ClientRequest::Put {
            key: k.clone(),
            value: Some(Value::from("a")),
        },
    );
    assert!(net.run_until(1_000_000, |n| n.reply(1, op(1, 1)).is_some()));
    let Some(ClientReply::Put { cs }) = net.reply(1, op(1, 1)).cloned() else {
        panic!()
    };
    assert_eq!(cs.ts, 1);
    net.client(2, op(2, 1), ClientRequest::Get { key: k.clone() });
    assert!(net.run_until(1_000_000, |n| n.reply(2, op(2, 1)).is_some()));
    assert_eq!(
        net.reply(2, op(2, 1)),
        Some(&ClientReply::Get {
            value: Some(Value::from("a")),
            cs
        })
    );
    net.client(
        0,
        op(3, 1),
        ClientRequest::Rmw {
            key: k.clone(),
            op: RmwOp::PutIfAbsent {
                value: Value::from("b"),
            },
        },
    );
    assert!(net.run_until(1_000_000, |n| n.reply(0, op(3, 1)).is_some()));
    let Some(ClientReply::Rmw { outcome, cs: rcs }) = net.reply(0, op(3, 1)) else {
        panic!()
    };
    assert!(!outcome.applied);
    assert_eq!(*rcs, cs.rmw_successor());
    // No base reads and no Executed notices in raft-all.
    assert!(
        !net.trace
            .iter()
            .any(|t| t.contains("BaseRead") || t.contains("Executed { up_to"))
    );
    net.run_for(200_000);
    assert_converged(&net);
}

#[test]
fn gryff_raft_refuses_gets_and_puts() {
    let mut net = RNet::new(3, preferred(0));
    let node = &mut net.nodes[0];
    let mut out = Vec::new();
    let res = node.engine.as_mut().unwrap().propose(
        Time(0),
        op(1, 1),
        ClientRequest::Get {
            key: Key::from("k"),
        },
        &mut node.store,
        &mut out,
    );
    assert_eq!(res, Err(BadInput::BaselineOnly));
}

#[test]
fn proposals_before_any_leader_is_known_are_retried() {
    let mut net = RNet::new(3, RNet::fast());
    // No preferred leader: the first election takes election_ticks.
    net.client(2, op(1, 1), fadd(1));
    assert!(net.run_until(3_000_000, |n| n.reply(2, op(1, 1)).is_some()));
    assert!(net.engine(2).stats().proposals_dropped + net.engine(2).stats().reproposals >= 1);
}

fn raft_bytes(m: &Message) -> RaftMsg {
    RaftMsg::Raft(m.write_to_bytes().unwrap())
}

#[test]
fn malformed_or_misaddressed_raft_messages_are_refused_without_panic() {
    let mut net = RNet::new(3, preferred(0));
    net.run_until(1_000_000, |n| {
        n.leader() == Some(0) && n.engine(1).status().commit >= 1
    });
    let mut msg = |m: RaftMsg, from: u32| net.message(1, from, m);
    assert!(matches!(
        msg(RaftMsg::Raft(vec![0xff, 0xff, 0xff]), 0),
        Err(BadInput::Malformed(_))
    ));
    let base = |t: MessageType| {
        let mut m = Message::default();
        m.set_msg_type(t);
        m.from = 1;
        m.to = 2;
        m.term = 1;
        m
    };
    let mut wrong_to = base(MessageType::MsgHeartbeat);
    wrong_to.to = 3;
    assert!(matches!(
        msg(raft_bytes(&wrong_to), 0),
        Err(BadInput::WrongRecipient(_))
    ));
    let spoofed = base(MessageType::MsgHeartbeat);
    assert!(matches!(
        msg(raft_bytes(&spoofed), 2),
        Err(BadInput::Malformed("raft sender"))
    ));
    assert!(matches!(
        msg(raft_bytes(&base(MessageType::MsgSnapshot)), 0),
        Err(BadInput::Malformed(_))
    ));
    assert!(matches!(
        msg(raft_bytes(&base(MessageType::MsgPropose)), 0),
        Err(BadInput::Malformed(_))
    ));
    let mut beyond = base(MessageType::MsgHeartbeat);
    beyond.commit = 1_000;
    assert!(matches!(
        msg(raft_bytes(&beyond), 0),
        Err(BadInput::Malformed(_))
    ));
    let mut gap = base(MessageType::MsgAppend);
    gap.index = 1;
    let e = Entry {
        index: 5,
        term: 1,
        ..Entry::default()
    };
    gap.entries = vec![e].into();
    assert!(matches!(
        msg(raft_bytes(&gap), 0),
        Err(BadInput::Malformed(_))
    ));
    let mut rewrite = base(MessageType::MsgAppend);
    rewrite.index = 0;
    let e = Entry {
        index: 1,
        term: 7,
        ..Entry::default()
    };
    rewrite.entries = vec![e].into();
    assert!(matches!(
        msg(raft_bytes(&rewrite), 0),
        Err(BadInput::Malformed(_))
    ));
    let mut acked_beyond = base(MessageType::MsgAppendResponse);
    acked_beyond.index = 1_000;
    assert!(matches!(
        msg(raft_bytes(&acked_beyond), 0),
        Err(BadInput::Malformed(_))
    ));
    assert!(matches!(
        msg(RaftMsg::Executed { up_to: 3 }, 9),
        Err(BadInput::ReplicaOutOfRange(_))
    ));
    assert!(matches!(
        msg(RaftMsg::ExecutedQuery, 1),
        Err(BadInput::FromSelf)
    ));
    assert_eq!(net.engine(1).stats().bad_input, 11);
    // The cluster still works.
    net.client(1, op(1, 1), fadd(1));
    assert!(net.run_until(1_000_000, |n| n.reply(1, op(1, 1)).is_some()));
}

#[test]
fn a_garbage_entry_is_skipped_by_every_replica_alike() {
    let mut net = RNet::new(3, preferred(0));
    net.run_until(1_000_000, |n| n.leader() == Some(0));
    // A follower forwards a proposal whose bytes are not a command.
    let mut m = Message::default();
    m.set_msg_type(MessageType::MsgPropose);
    m.from = 2;
    m.to = 1;
    let e = Entry {
        data: vec![1, 2, 3].into(),
        ..Entry::default()
    };
    m.entries = vec![e].into();
    net.message(0, 1, raft_bytes(&m)).unwrap();
    net.run_for(10 * LATENCY_US);
    // The entry commits (with the next real one) and is skipped everywhere.
    net.client(1, op(1, 1), fadd(1));
    assert!(net.run_until(1_000_000, |n| n.reply(1, op(1, 1)).is_some()));
    net.run_for(200_000);
    assert!(
        (0..3).all(|r| net.engine(r).stats().bad_entries == 1),
        "{:?}",
        (0..3)
            .map(|r| net.engine(r).stats().bad_entries)
            .collect::<Vec<_>>()
    );
    assert_converged(&net);
}

#[test]
fn runs_are_reproducible_effect_for_effect() {
    let run = || {
        let mut net = RNet::new(5, RNet::fast());
        for c in 0..5u64 {
            net.client(c as usize, op(c + 1, 1), fadd(1));
        }
        net.run_for(500_000);
        net.crash(net.leader().unwrap_or(0));
        net.run_for(2_000_000);
        net.trace
    };
    let (a, b) = (run(), run());
    assert!(a.len() > 100);
    assert_eq!(a, b);
}

#[test]
fn records_are_the_durable_raft_state() {
    let mut net = RNet::new(3, preferred(0));
    net.client(0, op(1, 1), fadd(1));
    net.run_until(2_000_000, |n| n.reply(0, op(1, 1)).is_some());
    let disk = &net.nodes[1].disk;
    assert!(disk.iter().any(|r| matches!(r, RaftPersist::Entries(_))));
    assert!(
        disk.iter()
            .any(|r| matches!(r, RaftPersist::HardState(h) if h.commit >= 2))
    );
    assert!(
        disk.iter()
            .any(|r| matches!(r, RaftPersist::Executed { .. }))
    );
    assert!(
        net.nodes[0]
            .disk
            .iter()
            .any(|r| matches!(r, RaftPersist::Incarnation(1)))
    );
}
