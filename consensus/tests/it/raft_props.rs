//! Property tests of the raft engine: (1) forged raft messages with
//! arbitrary fields, correctly addressed, never panic a replica and
//! leave the cluster working; (2) random RMW load with drops, link cuts
//! and crash/restarts ends, once healed, with every RMW applied exactly
//! once and the replicas agreeing.

use crate::raft_net::{RNet, op};
use consensus::raft::{RaftConfig, RaftMsg};
use proptest::prelude::*;
use protobuf::Message as _;
use raft::eraftpb::{Entry, Message, MessageType};
use registers::{ClientRequest, Key, ReplicaId, RmwOp, Value};
use std::collections::BTreeSet;

const TYPES: [MessageType; 12] = [
    MessageType::MsgPropose,
    MessageType::MsgAppend,
    MessageType::MsgAppendResponse,
    MessageType::MsgRequestVote,
    MessageType::MsgRequestVoteResponse,
    MessageType::MsgHeartbeat,
    MessageType::MsgHeartbeatResponse,
    MessageType::MsgTransferLeader,
    MessageType::MsgTimeoutNow,
    MessageType::MsgRequestPreVote,
    MessageType::MsgRequestPreVoteResponse,
    MessageType::MsgReadIndex,
];

#[derive(Clone, Debug)]
struct Forged {
    to: u8,
    from: u8,
    kind: u8,
    term: u8,
    log_term: u8,
    index: u8,
    commit: u8,
    reject: bool,
    hint: u8,
    entries: Vec<(u8, u8, bool)>,
}

fn forged() -> impl Strategy<Value = Forged> {
    (
        (0u8..3, 0u8..3, 0u8..12, 0u8..6, 0u8..6),
        (0u8..12, 0u8..12, any::<bool>(), 0u8..12),
        prop::collection::vec((0u8..12, 0u8..6, any::<bool>()), 0..4),
    )
        .prop_map(
            |((to, from, kind, term, log_term), (index, commit, reject, hint), entries)| Forged {
                to,
                from,
                kind,
                term,
                log_term,
                index,
                commit,
                reject,
                hint,
                entries,
            },
        )
}

fn to_message(f: &Forged) -> Message {
    let mut m = Message::default();
    m.set_msg_type(TYPES[f.kind as usize]);
    m.to = u64::from(f.to) + 1;
    m.from = u64::from(f.from) + 1;
    m.term = u64::from(f.term);
    m.log_term = u64::from(f.log_term);
    m.index = u64::from(f.index);
    m.commit = u64::from(f.commit);
    m.reject = f.reject;
    m.reject_hint = u64::from(f.hint);
    m.entries = f
        .entries
        .iter()
        .map(|&(index, term, data)| Entry {
            index: u64::from(index),
            term: u64::from(term),
            data: if data {
                vec![7, 7].into()
            } else {
                Default::default()
            },
            ..Entry::default()
        })
        .collect::<Vec<_>>()
        .into();
    m
}

fn fadd() -> ClientRequest {
    ClientRequest::Rmw {
        key: Key::from("k"),
        op: RmwOp::FetchAdd { delta: 1 },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn forged_raft_messages_never_panic_a_replica(msgs in prop::collection::vec(forged(), 1..40)) {
        let mut net = RNet::new(3, RaftConfig {
            preferred_leader: Some(ReplicaId(0)),
            ..RNet::fast()
        });
        net.client(1, op(1, 1), fadd());
        net.run_for(100_000);
        for f in &msgs {
            // Messages claim to come from their real sender (the driver
            // knows who is at the other end of a connection).
            let to = f.to as usize;
            if f.from == f.to {
                continue;
            }
            let bytes = RaftMsg::Raft(to_message(f).write_to_bytes().unwrap());
            let _ = net.message(to, u32::from(f.from), bytes);
            net.run_for(5_000);
        }
        // Whatever happened, the replicas stay consistent with each other.
        net.run_for(2_000_000);
        let k = Key::from("k");
        let stores: Vec<_> = (0..3).map(|r| net.nodes[r].store.get(&k)).collect();
        prop_assert!(stores.windows(2).all(|w| w[0].cs != w[1].cs || w[0] == w[1]), "{stores:?}");
    }

    #[test]
    fn rmws_apply_exactly_once_despite_drops_cuts_and_crashes(
        events in prop::collection::vec((0u8..6, 0u8..5, 0u8..5), 5..40),
    ) {
        let mut net = RNet::new(5, RNet::fast());
        let mut issued: Vec<(u64, usize)> = Vec::new();
        let mut down: BTreeSet<usize> = BTreeSet::new();
        for (kind, a, b) in events {
            let (a, b) = (a as usize, b as usize);
            match kind {
                0 | 1 => {
                    let c = issued.len() as u64 + 1;
                    if !down.contains(&a) {
                        net.client(a, op(c, 1), fadd());
                        issued.push((c, a));
                    }
                }
                2 if a != b => {
                    net.cut.insert((a, b));
                }
                3 => net.cut.clear(),
                4 if down.len() < 2 && !down.contains(&a) => {
                    net.crash(a);
                    down.insert(a);
                }
                5 if down.contains(&a) => {
                    net.restart(a);
                    down.remove(&a);
                }
                _ => {}
            }
            net.run_for(b as u64 * 60_000);
        }
        // Heal; clients whose replica is unanswered retry at a live one.
        net.cut.clear();
        for r in down.clone() {
            net.restart(r);
        }
        for round in 0..20 {
            let open: Vec<(u64, usize)> = issued
                .iter()
                .copied()
                .filter(|(c, _)| net.replied_anywhere(op(*c, 1)).is_none())
                .collect();
            if open.is_empty() {
                break;
            }
            for (c, at) in open {
                net.client((at + round + 1) % 5, op(c, 1), fadd());
            }
            net.run_for(1_000_000);
        }
        let olds: BTreeSet<i64> = issued
            .iter()
            .map(|(c, _)| match net.replied_anywhere(op(*c, 1)) {
                Some(registers::ClientReply::Rmw { outcome, .. }) => {
                    outcome.old.as_ref().map_or(0, |v| v.to_i64().unwrap())
                }
                other => panic!("client {c}: {other:?}"),
            })
            .collect();
        prop_assert_eq!(olds.len(), issued.len(), "two RMWs saw the same value");
        net.run_for(1_000_000);
        let k = Key::from("k");
        for r in 0..5 {
            prop_assert_eq!(
                net.nodes[r].store.get(&k).value,
                if issued.is_empty() { None } else { Some(Value::from_i64(issued.len() as i64)) },
                "replica {}", r
            );
        }
    }
}
