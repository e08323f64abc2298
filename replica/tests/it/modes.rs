//! The same client script in every mode (Gryff with EPaxos or raft for
//! RMWs, EPaxos-all, raft-all) on a timed network: events in time order,
//! a fixed latency, timers, and a restart from the persisted records.

use registers::{
    ClientId, ClientReply, ClientRequest, Effect, Key, OpId, ReplicaId, RequestId, RmwOp, Time,
    Value,
};
use replica::{
    Mode, PeerMsg, Record, Replica, ReplicaConfig, ReplicaEffect, ReplicaTimer, RmwEngine,
};
use std::collections::BTreeMap;

const LATENCY_US: u64 = 20_000;

enum Ev {
    Msg(usize, usize, PeerMsg),
    Timer(usize, u64, ReplicaTimer),
}

struct TimedNet {
    mode: Mode,
    replicas: Vec<Option<Replica>>,
    lives: Vec<u64>,
    disks: Vec<Vec<Record>>,
    replies: Vec<(OpId, ClientReply)>,
    queue: BTreeMap<(Time, u64), Ev>,
    seq: u64,
    now: Time,
}

fn config(mode: Mode, r: u32, n: u32) -> ReplicaConfig {
    let peers = (0..n).filter(|&p| p != r).map(ReplicaId).collect();
    let mut c = ReplicaConfig::new(ReplicaId(r), n, peers).with_mode(mode);
    c.raft.tick_us = 10_000;
    c.raft.retry_timeout_us = 300_000;
    c.epaxos.phase_timeout_us = 300_000;
    c.registers.phase_timeout_us = 300_000;
    c
}

impl TimedNet {
    fn new(mode: Mode, n: u32) -> TimedNet {
        let mut net = TimedNet {
            mode,
            replicas: Vec::new(),
            lives: vec![0; n as usize],
            disks: vec![Vec::new(); n as usize],
            replies: Vec::new(),
            queue: BTreeMap::new(),
            seq: 0,
            now: Time(0),
        };
        for r in 0..n {
            let mut out = Vec::new();
            let rep = Replica::start(config(mode, r, n), Time(0), &mut out).unwrap();
            net.replicas.push(Some(rep));
            net.carry(r as usize, out);
        }
        net
    }

    fn push(&mut self, at: Time, ev: Ev) {
        self.seq += 1;
        self.queue.insert((at, self.seq), ev);
    }

    fn carry(&mut self, from: usize, out: Vec<ReplicaEffect>) {
        for e in out {
            match e {
                Effect::Send { to, msg } => self.push(
                    self.now.plus_micros(LATENCY_US),
                    Ev::Msg(from, to.0 as usize, msg),
                ),
                Effect::Persist(rec) => self.disks[from].push(rec),
                Effect::Reply { op, reply } => self.replies.push((op, reply)),
                Effect::SetTimer { at, timer } => {
                    let life = self.lives[from];
                    self.push(at.max(self.now), Ev::Timer(from, life, timer))
                }
            }
        }
    }

    fn run_for(&mut self, micros: u64) {
        let until = self.now.plus_micros(micros);
        while let Some((&(at, s), _)) = self.queue.iter().next() {
            if at > until {
                break;
            }
            let ev = self.queue.remove(&(at, s)).unwrap();
            self.now = at;
            let mut out = Vec::new();
            let who = match ev {
                Ev::Msg(from, to, msg) => {
                    if let Some(r) = self.replicas[to].as_mut() {
                        r.handle_message(at, ReplicaId(from as u32), msg, &mut out);
                    }
                    to
                }
                Ev::Timer(node, life, t) => {
                    if let Some(r) = self.replicas[node]
                        .as_mut()
                        .filter(|_| self.lives[node] == life)
                    {
                        r.handle_timer(at, t, &mut out);
                    }
                    node
                }
            };
            self.carry(who, out);
        }
        self.now = until;
    }

    /// Runs one client op at replica `at` to completion.
    fn op(&mut self, at: usize, client: u64, request: u64, req: ClientRequest) -> ClientReply {
        let op = OpId {
            client: ClientId(client),
            request: RequestId(request),
        };
        let mut out = Vec::new();
        self.replicas[at]
            .as_mut()
            .unwrap()
            .handle_client(self.now, op, req, &mut out);
        self.carry(at, out);
        for _ in 0..400 {
            if let Some(i) = self.replies.iter().position(|(o, _)| *o == op) {
                return self.replies.remove(i).1;
            }
            self.run_for(10_000);
        }
        panic!("{}: no reply to {op:?}", self.mode.name());
    }

    fn crash_and_restart(&mut self, r: usize) {
        self.replicas[r] = None;
        self.lives[r] += 1;
        let n = self.replicas.len() as u32;
        let mut out = Vec::new();
        let rep = Replica::recover(
            config(self.mode, r as u32, n),
            self.now,
            &self.disks[r],
            &mut out,
        )
        .unwrap();
        self.replicas[r] = Some(rep);
        self.carry(r, out);
    }
}

fn modes() -> [Mode; 4] {
    [
        Mode::Gryff {
            rmw: RmwEngine::Epaxos,
        },
        Mode::Gryff {
            rmw: RmwEngine::Raft,
        },
        Mode::EpaxosAll,
        Mode::RaftAll {
            leader: ReplicaId(1),
        },
    ]
}

fn k() -> Key {
    Key::from("k")
}

fn got(reply: ClientReply) -> Option<Value> {
    match reply {
        ClientReply::Get { value, .. } => value,
        other => panic!("not a get reply: {other:?}"),
    }
}

#[test]
fn every_mode_serves_the_same_script_with_the_same_answers() {
    for mode in modes() {
        let mut net = TimedNet::new(mode, 3);
        net.run_for(500_000);
        let name = mode.name();
        net.op(
            0,
            1,
            1,
            ClientRequest::Put {
                key: k(),
                value: Some(Value::from_i64(5)),
            },
        );
        assert_eq!(
            got(net.op(1, 2, 1, ClientRequest::Get { key: k() })),
            Some(Value::from_i64(5)),
            "{name}"
        );
        let rmw = net.op(
            2,
            3,
            1,
            ClientRequest::Rmw {
                key: k(),
                op: RmwOp::FetchAdd { delta: 2 },
            },
        );
        let ClientReply::Rmw { outcome, .. } = rmw else {
            panic!("{name}: {rmw:?}")
        };
        assert_eq!(outcome.old, Some(Value::from_i64(5)), "{name}");
        assert_eq!(
            got(net.op(0, 1, 2, ClientRequest::Get { key: k() })),
            Some(Value::from_i64(7)),
            "{name}"
        );
        net.op(
            1,
            2,
            2,
            ClientRequest::Put {
                key: k(),
                value: Some(Value::from("w")),
            },
        );
        assert_eq!(
            got(net.op(2, 3, 2, ClientRequest::Get { key: k() })),
            Some(Value::from("w")),
            "{name}"
        );
        // A restarted replica keeps everything and serves the next RMW.
        net.run_for(500_000);
        net.crash_and_restart(0);
        net.run_for(500_000);
        let r = net.replicas[0].as_ref().unwrap();
        assert_eq!(r.store().get(&k()).value, Some(Value::from("w")), "{name}");
        assert_eq!(r.last_rmw(&k()).value, Some(Value::from_i64(7)), "{name}");
        let rmw = net.op(
            0,
            1,
            3,
            ClientRequest::Rmw {
                key: k(),
                op: RmwOp::CompareAndSwap {
                    expected: Some(Value::from("w")),
                    new: Some(Value::from("x")),
                },
            },
        );
        let ClientReply::Rmw { outcome, .. } = rmw else {
            panic!("{name}: {rmw:?}")
        };
        assert!(outcome.applied, "{name}: {outcome:?}");
        net.run_for(500_000);
        let stores: Vec<_> = net
            .replicas
            .iter()
            .map(|r| r.as_ref().unwrap().store().get(&k()))
            .collect();
        assert!(
            stores.windows(2).all(|w| w[0] == w[1]),
            "{name}: {stores:?}"
        );
        assert_eq!(stores[0].value, Some(Value::from("x")), "{name}");
        // Only the mode's engine ever ran.
        let r = net.replicas[1].as_ref().unwrap();
        assert_eq!(r.epaxos().is_some(), mode.uses_epaxos(), "{name}");
        assert_eq!(r.raft().is_some(), mode.uses_raft(), "{name}");
        assert_eq!(r.stats().other_mode_input, 0, "{name}");
    }
}

#[test]
fn raft_all_places_its_leader_where_configured() {
    let mut net = TimedNet::new(
        Mode::RaftAll {
            leader: ReplicaId(2),
        },
        5,
    );
    net.run_for(300_000);
    let leaders: Vec<bool> = net
        .replicas
        .iter()
        .map(|r| r.as_ref().unwrap().is_leader())
        .collect();
    assert_eq!(leaders, vec![false, false, true, false, false]);
}

#[test]
fn messages_of_another_mode_are_ignored_and_counted() {
    let mut net = TimedNet::new(Mode::EpaxosAll, 3);
    let stray = PeerMsg::Raft(consensus::raft::RaftMsg::ExecutedQuery);
    let mut out = Vec::new();
    let r = net.replicas[0].as_mut().unwrap();
    r.handle_message(Time(0), ReplicaId(1), stray, &mut out);
    assert!(out.is_empty());
    assert_eq!(r.stats().other_mode_input, 1);
}
