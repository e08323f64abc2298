//! The combined replica on a tiny lossless network: every effect is carried
//! out at once, messages are delivered in FIFO order, and the test checks
//! what clients see and what the replicas hold.

use registers::{
    ClientId, ClientReply, ClientRequest, Effect, Key, OpId, ReplicaId, RequestId, RmwOp, Time,
    Value,
};
use replica::{PeerMsg, Record, Replica, ReplicaConfig, ReplicaEffect, ReplicaTimer};
use std::collections::VecDeque;

mod modes;

struct Net {
    replicas: Vec<Replica>,
    disks: Vec<Vec<Record>>,
    queue: VecDeque<(usize, usize, PeerMsg)>,
    replies: Vec<(OpId, ClientReply)>,
    timers: Vec<(usize, ReplicaTimer)>,
}

impl Net {
    fn new(n: u32) -> Net {
        let replicas = (0..n)
            .map(|i| {
                let peers = (0..n).filter(|&p| p != i).map(ReplicaId).collect();
                Replica::new(ReplicaConfig::new(ReplicaId(i), n, peers)).unwrap()
            })
            .collect();
        Net {
            replicas,
            disks: vec![Vec::new(); n as usize],
            queue: VecDeque::new(),
            replies: Vec::new(),
            timers: Vec::new(),
        }
    }

    fn carry(&mut self, from: usize, out: Vec<ReplicaEffect>) {
        for e in out {
            match e {
                Effect::Send { to, msg } => self.queue.push_back((from, to.0 as usize, msg)),
                Effect::Persist(r) => self.disks[from].push(r),
                Effect::Reply { op, reply } => self.replies.push((op, reply)),
                Effect::SetTimer { timer, .. } => self.timers.push((from, timer)),
            }
        }
    }

    fn client(&mut self, at: usize, request: u64, req: ClientRequest) -> ClientReply {
        let op = OpId {
            client: ClientId(at as u64 + 1),
            request: RequestId(request),
        };
        let mut out = Vec::new();
        self.replicas[at].handle_client(Time(0), op, req, &mut out);
        self.carry(at, out);
        for _ in 0..10_000 {
            if let Some(pos) = self.replies.iter().position(|(o, _)| *o == op) {
                return self.replies.remove(pos).1;
            }
            let Some((from, to, msg)) = self.queue.pop_front() else {
                break;
            };
            let mut out = Vec::new();
            self.replicas[to].handle_message(Time(0), ReplicaId(from as u32), msg, &mut out);
            self.carry(to, out);
        }
        panic!("no reply to {op:?}");
    }

    /// Delivers everything still in flight.
    fn drain(&mut self) {
        while let Some((from, to, msg)) = self.queue.pop_front() {
            let mut out = Vec::new();
            self.replicas[to].handle_message(Time(0), ReplicaId(from as u32), msg, &mut out);
            self.carry(to, out);
        }
    }
}

fn key() -> Key {
    Key::from("k")
}

#[test]
fn put_get_and_rmws_share_one_register() {
    let mut net = Net::new(3);
    let put = net.client(
        0,
        1,
        ClientRequest::Put {
            key: key(),
            value: Some(Value::from_i64(5)),
        },
    );
    let ClientReply::Put { cs: put_cs } = put else {
        panic!("{put:?}")
    };
    let got = net.client(1, 1, ClientRequest::Get { key: key() });
    assert_eq!(
        got,
        ClientReply::Get {
            value: Some(Value::from_i64(5)),
            cs: put_cs
        }
    );
    // The RMW builds on the put (its base) and sorts right after it.
    let rmw = net.client(
        2,
        1,
        ClientRequest::Rmw {
            key: key(),
            op: RmwOp::FetchAdd { delta: 2 },
        },
    );
    let ClientReply::Rmw { outcome, cs } = rmw else {
        panic!("{rmw:?}")
    };
    assert_eq!(outcome.old, Some(Value::from_i64(5)));
    assert_eq!(outcome.new, Some(Value::from_i64(7)));
    assert_eq!(cs, put_cs.rmw_successor());
    let got = net.client(0, 2, ClientRequest::Get { key: key() });
    assert_eq!(
        got,
        ClientReply::Get {
            value: Some(Value::from_i64(7)),
            cs
        }
    );
    // A later write wins over the RMW everywhere.
    net.client(
        1,
        2,
        ClientRequest::Put {
            key: key(),
            value: Some(Value::from("w")),
        },
    );
    let got = net.client(2, 2, ClientRequest::Get { key: key() });
    assert!(matches!(got, ClientReply::Get { value: Some(v), .. } if v == Value::from("w")));
    net.drain();
    assert!(net.timers.iter().all(|(r, _)| *r < 3));
}

#[test]
fn a_restarted_replica_keeps_what_it_acknowledged() {
    let mut net = Net::new(3);
    net.client(
        0,
        1,
        ClientRequest::Put {
            key: key(),
            value: Some(Value::from_i64(1)),
        },
    );
    net.client(
        0,
        2,
        ClientRequest::Rmw {
            key: key(),
            op: RmwOp::FetchAdd { delta: 10 },
        },
    );
    net.drain();
    let before = net.replicas[0].store().get(&key());
    assert_eq!(before.value, Some(Value::from_i64(11)));
    let peers = vec![ReplicaId(1), ReplicaId(2)];
    let mut out = Vec::new();
    let restarted = Replica::recover(
        ReplicaConfig::new(ReplicaId(0), 3, peers),
        Time(5),
        &net.disks[0],
        &mut out,
    )
    .unwrap();
    assert_eq!(restarted.store().get(&key()), before);
    assert_eq!(restarted.last_rmw(&key()).value, Some(Value::from_i64(11)));
    net.replicas[0] = restarted;
    // The restarted replica coordinates again; its RMW continues the chain.
    let rmw = net.client(
        0,
        3,
        ClientRequest::Rmw {
            key: key(),
            op: RmwOp::FetchAdd { delta: 1 },
        },
    );
    let ClientReply::Rmw { outcome, .. } = rmw else {
        panic!("{rmw:?}")
    };
    assert_eq!(outcome.old, Some(Value::from_i64(11)));
}
