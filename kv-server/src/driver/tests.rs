//! Driver tests with a scripted machine, a log whose completions the test
//! controls, and a captured outbound: the persist barrier, reply routing
//! and timers.

use super::*;
use crate::durability::DurabilityError;
use registers::{Carstamp, Key};
use std::collections::VecDeque;
use std::sync::Mutex;

type Fx = MachineEffect<Scripted>;

/// Emits the next scripted batch on every input, and records the inputs.
#[derive(Default)]
struct Scripted {
    script: Arc<Mutex<VecDeque<Vec<Fx>>>>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    fn next(&mut self, what: String, out: &mut Vec<Fx>) {
        self.seen.lock().unwrap().push(what);
        if let Some(batch) = self.script.lock().unwrap().pop_front() {
            out.extend(batch);
        }
    }
}

impl Machine for Scripted {
    type Msg = &'static str;
    type Record = &'static str;
    type Timer = &'static str;

    fn handle_client(&mut self, _: Time, op: OpId, _: ClientRequest, out: &mut Vec<Fx>) {
        self.next(format!("client {}", op.request.0), out);
    }
    fn handle_message(&mut self, _: Time, from: ReplicaId, msg: &'static str, out: &mut Vec<Fx>) {
        self.next(format!("msg {msg} from {}", from.0), out);
    }
    fn handle_timer(&mut self, _: Time, timer: &'static str, out: &mut Vec<Fx>) {
        self.next(format!("timer {timer}"), out);
    }
}

/// One submission: its records and the switch that completes it.
type Submission = (Vec<&'static str>, Option<oneshot::Sender<bool>>);

/// A log whose appends complete when the test says so.
#[derive(Clone, Default)]
struct ManualLog {
    submitted: Arc<Mutex<Vec<Submission>>>,
}

impl ManualLog {
    /// Completes submission `i` (0-based), successfully or not.
    fn complete(&self, i: usize, ok: bool) {
        let tx = self.submitted.lock().unwrap()[i].1.take().unwrap();
        tx.send(ok).unwrap();
    }

    fn groups(&self) -> Vec<Vec<&'static str>> {
        let s = self.submitted.lock().unwrap();
        s.iter().map(|(g, _)| g.clone()).collect()
    }
}

impl Durability<&'static str> for ManualLog {
    fn recover(&mut self) -> Result<Vec<&'static str>, DurabilityError> {
        Ok(Vec::new())
    }
    fn submit(&mut self, records: Vec<&'static str>) -> DurableFuture {
        let (tx, rx) = oneshot::channel();
        self.submitted.lock().unwrap().push((records, Some(tx)));
        Box::pin(async move {
            match rx.await {
                Ok(true) => Ok(()),
                _ => Err(DurabilityError::Append("disk on fire".into())),
            }
        })
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(u32, &'static str)>>>);

impl Outbound<&'static str> for Capture {
    fn send(&self, to: ReplicaId, msg: &'static str) -> bool {
        self.0.lock().unwrap().push((to.0, msg));
        true
    }
}

impl Capture {
    fn sent(&self) -> Vec<&'static str> {
        self.0.lock().unwrap().iter().map(|(_, m)| *m).collect()
    }
}

struct Rig {
    handle: DriverHandle<&'static str>,
    log: ManualLog,
    out: Capture,
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<Result<(), DriverError>>,
}

fn rig(script: Vec<Vec<Fx>>, initial: Vec<Fx>) -> Rig {
    let machine = Scripted::default();
    machine.script.lock().unwrap().extend(script);
    let seen = machine.seen.clone();
    let (log, out) = (ManualLog::default(), Capture::default());
    let (driver, handle) = Driver::new(
        machine,
        log.clone(),
        out.clone(),
        Clock::new(),
        Metrics::new(),
        16,
        16,
    );
    let task = tokio::spawn(driver.run(initial));
    Rig {
        handle,
        log,
        out,
        seen,
        task,
    }
}

fn op(n: u64) -> OpId {
    OpId {
        client: registers::ClientId(9),
        request: registers::RequestId(n),
    }
}

fn put_reply(ts: u64) -> ClientReply {
    ClientReply::Put {
        cs: Carstamp {
            ts,
            ..Carstamp::ZERO
        },
    }
}

fn send(to: u32, msg: &'static str) -> Fx {
    Effect::Send {
        to: ReplicaId(to),
        msg,
    }
}

async fn client(handle: &DriverHandle<&'static str>, n: u64) -> oneshot::Receiver<ClientReply> {
    let (tx, rx) = oneshot::channel();
    let req = ClientRequest::Get {
        key: Key::from("k"),
    };
    let input = ClientInput {
        op: op(n),
        req,
        reply: tx,
    };
    handle.clients.send(input).await.unwrap();
    rx
}

/// Lets the driver task run until it is idle.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
}

#[tokio::test]
async fn sends_and_replies_after_a_persist_wait_until_it_is_durable() {
    let script = vec![vec![
        send(1, "before"),
        Effect::Persist("r1"),
        Effect::Persist("r2"),
        send(1, "after"),
        Effect::Reply {
            op: op(1),
            reply: put_reply(1),
        },
    ]];
    let r = rig(script, vec![]);
    let mut reply = client(&r.handle, 1).await;
    settle().await;
    // Consecutive persists are one submission; the send before them left.
    assert_eq!(r.log.groups(), vec![vec!["r1", "r2"]]);
    assert_eq!(r.out.sent(), vec!["before"]);
    assert!(reply.try_recv().is_err());
    r.log.complete(0, true);
    settle().await;
    assert_eq!(r.out.sent(), vec!["before", "after"]);
    assert_eq!(reply.await.unwrap(), put_reply(1));
}

#[tokio::test]
async fn a_later_batch_without_persists_still_waits_for_earlier_ones() {
    let script = vec![
        vec![Effect::Persist("w2"), send(2, "ack-1")],
        // A duplicate answered from memory: no new persist, but its answer
        // relies on the earlier one.
        vec![send(2, "ack-dup")],
    ];
    let r = rig(script, vec![]);
    let msgs = PeerInput {
        from: ReplicaId(2),
        msgs: vec!["write2", "write2-again"],
    };
    r.handle.peers.send(msgs).await.unwrap();
    settle().await;
    assert_eq!(
        *r.seen.lock().unwrap(),
        vec!["msg write2 from 2", "msg write2-again from 2"]
    );
    assert!(r.out.sent().is_empty());
    r.log.complete(0, true);
    settle().await;
    assert_eq!(r.out.sent(), vec!["ack-1", "ack-dup"]);
}

#[tokio::test]
async fn completions_are_taken_in_submission_order() {
    let script = vec![
        vec![Effect::Persist("a"), send(1, "after-a")],
        vec![Effect::Persist("b"), send(1, "after-b")],
    ];
    let r = rig(script, vec![]);
    let _r1 = client(&r.handle, 1).await;
    let _r2 = client(&r.handle, 2).await;
    settle().await;
    assert_eq!(r.log.groups().len(), 2);
    // The second group completing first releases nothing: the first is
    // not durable yet.
    r.log.complete(1, true);
    settle().await;
    assert!(r.out.sent().is_empty());
    r.log.complete(0, true);
    settle().await;
    assert_eq!(r.out.sent(), vec!["after-a", "after-b"]);
}

#[tokio::test]
async fn every_waiter_of_an_op_gets_the_reply() {
    let script = vec![
        vec![],
        vec![Effect::Reply {
            op: op(7),
            reply: put_reply(3),
        }],
    ];
    let r = rig(script, vec![]);
    // The same RMW id arriving twice (a client retry) waits twice.
    let first = client(&r.handle, 7).await;
    let second = client(&r.handle, 7).await;
    assert_eq!(first.await.unwrap(), put_reply(3));
    assert_eq!(second.await.unwrap(), put_reply(3));
}

#[tokio::test]
async fn timers_fire_in_deadline_order() {
    let initial = vec![
        Effect::SetTimer {
            at: Time(30_000),
            timer: "late",
        },
        Effect::SetTimer {
            at: Time(1_000),
            timer: "early",
        },
    ];
    let r = rig(vec![], initial);
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(*r.seen.lock().unwrap(), vec!["timer early", "timer late"]);
}

#[tokio::test]
async fn a_failed_append_stops_the_driver_without_releasing_anything() {
    let script = vec![vec![Effect::Persist("x"), send(1, "never")]];
    let r = rig(script, vec![]);
    let _reply = client(&r.handle, 1).await;
    settle().await;
    r.log.complete(0, false);
    let result = r.task.await.unwrap();
    assert!(matches!(result, Err(DriverError::Durability(_))));
    assert!(r.out.sent().is_empty());
}

#[tokio::test]
async fn the_driver_ends_when_its_handles_are_gone_and_persists_are_durable() {
    let script = vec![vec![Effect::Persist("x")]];
    let r = rig(script, vec![]);
    let _reply = client(&r.handle, 1).await;
    settle().await;
    drop(r.handle);
    settle().await;
    assert!(!r.task.is_finished());
    r.log.complete(0, true);
    assert!(r.task.await.unwrap().is_ok());
}
