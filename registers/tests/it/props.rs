//! Property tests: the store only grows; arbitrary input never panics; and
//! randomised delivery orders (with loss, duplication and timeouts) of
//! concurrent writes and a sequential reader on 3 and 5 replicas converge
//! to the largest carstamp while reads never go back in time.

use crate::net::{Net, key};
use proptest::prelude::*;
use registers::{
    Carstamp, Key, OpId, OpRef, Phase, Register, RegisterMachine, RegisterMsg, RegisterReply,
    RegisterStore, ReplicaId, Time, Value, WriterId,
};

fn cs(ts: u64, writer: u64, rmwc: u32) -> Carstamp {
    Carstamp {
        ts,
        writer: WriterId(writer),
        rmwc,
    }
}

fn arb_reg() -> impl Strategy<Value = Register> {
    (0u64..5, 0u64..3, 0u32..2, proptest::option::of(0u8..4))
        .prop_map(|(t, w, c, v)| Register::new(v.map(|v| Value(vec![v])), cs(t, w, c)))
}

fn arb_msg() -> impl Strategy<Value = RegisterMsg> {
    let phase = prop_oneof![
        Just(Phase::Read1),
        Just(Phase::Read2),
        Just(Phase::Write1),
        Just(Phase::Write2)
    ];
    (0u8..8, 0u64..4, phase, 0u8..3, arb_reg()).prop_map(|(kind, seq, phase, k, reg)| {
        let op_ref = OpRef { seq, phase };
        let key = Key(vec![k]);
        match kind {
            0 => RegisterMsg::Read1 { op_ref, key, reg },
            1 => RegisterMsg::Read1Reply { op_ref, reg },
            2 => RegisterMsg::Read2 { op_ref, key, reg },
            3 => RegisterMsg::Read2Reply { op_ref },
            4 => RegisterMsg::Write1 { op_ref, key },
            5 => RegisterMsg::Write1Reply { op_ref, cs: reg.cs },
            6 => RegisterMsg::Write2 { op_ref, key, reg },
            _ => RegisterMsg::Write2Reply { op_ref },
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn store_never_decreases_a_carstamp(applies in prop::collection::vec((0u8..3, arb_reg()), 0..60)) {
        let mut store = RegisterStore::new();
        for (k, reg) in applies {
            let key = Key(vec![k]);
            let before = store.get(&key);
            let changed = store.apply(&key, &reg);
            let after = store.get(&key);
            prop_assert!(after.cs >= before.cs);
            prop_assert_eq!(changed, reg.cs > before.cs);
            prop_assert_eq!(after, if changed { reg } else { before });
        }
    }

    /// Any sequence of messages from any sender, in the middle of real
    /// operations: no panic, and the store only grows.
    #[test]
    fn arbitrary_input_never_panics_and_the_store_only_grows(
        n in prop_oneof![Just(3u32), Just(5)],
        thrifty: bool,
        input in prop::collection::vec((0u32..7, arb_msg(), 0u8..10), 0..80),
    ) {
        let ids: Vec<ReplicaId> = (0..n).map(ReplicaId).collect();
        let mut config = registers::RegisterConfig::new(ReplicaId(0), ids);
        config.thrifty = thrifty;
        let mut m = RegisterMachine::new(config).unwrap();
        let mut store = RegisterStore::new();
        let mut out = Vec::new();
        for (i, (from, msg, action)) in input.into_iter().enumerate() {
            let now = Time(i as u64 * 100_000);
            let snapshot: Vec<Register> = (0..3).map(|k| store.get(&Key(vec![k]))).collect();
            let op = OpId { client: registers::ClientId(0), request: registers::RequestId(i as u64) };
            match action {
                0 => m.start_get(now, op, Key(vec![0]), &mut store, &mut out),
                1 => m.start_put(now, op, Key(vec![1]), Some(Value::from("x")), &mut store, &mut out),
                2 => {
                    let timer = registers::RegisterTimer::PhaseTimeout { op_ref: msg.op_ref() };
                    m.handle_timer(now, timer, &mut store, &mut out)
                }
                _ => m.handle_message(now, ReplicaId(from), msg, &mut store, &mut out),
            }
            for (k, before) in snapshot.iter().enumerate() {
                prop_assert!(store.get(&Key(vec![k as u8])).cs >= before.cs);
            }
        }
    }

    #[test]
    fn random_delivery_converges_and_a_sequential_reader_never_goes_back(
        n in prop_oneof![Just(3u32), Just(5)],
        thrifty: bool,
        writers in prop::collection::vec(0u32..5, 1..7),
        readers in prop::collection::vec(0u32..5, 1..6),
        steps in prop::collection::vec(any::<u16>(), 0..400),
    ) {
        run_schedule(n, thrifty, &writers, &readers, &steps)?;
    }
}

/// One operation of the history: what it was and when it started, as the
/// number of client replies that had been delivered by then.
struct Started {
    op: OpId,
    start_mark: usize,
}

struct Run {
    net: Net,
    n: u32,
    puts: Vec<Started>,
    /// The single sequential reader's reads, in order.
    reads: Vec<Started>,
    pending_writers: Vec<u32>,
    pending_readers: Vec<u32>,
    /// Whether any message was lost (then a replica outside the write
    /// quorums may legitimately stay behind).
    lossy: bool,
}

impl Run {
    fn put_cs(&self, op: OpId) -> Option<Carstamp> {
        match self.net.reply(op) {
            Some(RegisterReply::Put { cs }) => Some(*cs),
            _ => None,
        }
    }

    fn completed_put_max(&self) -> Carstamp {
        self.puts
            .iter()
            .filter_map(|p| self.put_cs(p.op))
            .max()
            .unwrap_or_default()
    }

    fn reader_idle(&self) -> bool {
        self.reads
            .last()
            .is_none_or(|r| self.net.reply(r.op).is_some())
    }

    /// Two writer clients take turns with the pending writes; each waits
    /// for its previous write, so writes are both concurrent (one per
    /// client) and ordered in real time (within a client).
    fn start_write(&mut self, client: usize) {
        let busy = self
            .puts
            .iter()
            .enumerate()
            .any(|(i, p)| i % 2 == client && self.net.reply(p.op).is_none());
        if busy || self.puts.len() % 2 != client {
            return;
        }
        if let Some(at) = self.pending_writers.pop() {
            let v = format!("w{}", self.puts.len());
            let start_mark = self.net.replies.len();
            let op = self.net.put(at % self.n, &v);
            self.puts.push(Started { op, start_mark });
        }
    }

    fn start_read(&mut self) {
        if self.reader_idle()
            && let Some(at) = self.pending_readers.pop()
        {
            let start_mark = self.net.replies.len();
            let op = self.net.get(at % self.n);
            self.reads.push(Started { op, start_mark });
        }
    }

    fn all_done(&self) -> bool {
        self.pending_writers.is_empty()
            && self.pending_readers.is_empty()
            && self.reader_idle()
            && self.puts.iter().all(|p| self.net.reply(p.op).is_some())
    }
}

fn run_schedule(
    n: u32,
    thrifty: bool,
    writers: &[u32],
    readers: &[u32],
    steps: &[u16],
) -> Result<(), TestCaseError> {
    let mut run = Run {
        net: Net::new(n, thrifty),
        n,
        puts: Vec::new(),
        reads: Vec::new(),
        pending_writers: writers.to_vec(),
        pending_readers: readers.to_vec(),
        lossy: false,
    };
    for step in steps {
        let arg = usize::from(step / 8);
        let queued = run.net.queue.len();
        match step % 8 {
            0 => run.start_write(arg % 2),
            1 => run.start_read(),
            2 if queued > 0 => {
                run.net.queue.remove(arg % queued);
                run.lossy = true;
            }
            3 if queued > 0 => {
                let dup = run.net.queue[arg % queued].clone();
                run.net.queue.push(dup);
            }
            4 => run.net.fire_timers(arg as u32 % n),
            _ if queued > 0 => run.net.deliver(arg % queued),
            _ => {}
        }
    }
    // Heal: no more loss; every operation must finish.
    for _round in 0..100 {
        if run.all_done() {
            break;
        }
        run.start_write(0);
        run.start_write(1);
        run.start_read();
        run.net.deliver_all();
        for r in 0..n {
            run.net.fire_timers(r);
        }
        run.net.deliver_all();
    }
    prop_assert!(run.all_done(), "operations still pending after healing");
    check_history(&run)?;
    let all_stores_converge = !thrifty && !run.lossy;
    check_convergence(&mut run, all_stores_converge)
}

/// The history is linearizable in carstamp order: writes have distinct
/// carstamps, reads return the value written under the carstamp they
/// report, and whenever one operation finished before another started the
/// later one's carstamp is not smaller (strictly larger if it is a write).
/// For the sequential reader this means its reads never go back in time.
fn check_history(run: &Run) -> Result<(), TestCaseError> {
    // (start mark, completion index, carstamp, is a write)
    let mut ops: Vec<(usize, usize, Carstamp, bool)> = Vec::new();
    let completion = |op: OpId| run.net.replies.iter().position(|(o, _)| *o == op).unwrap();
    let mut written: Vec<(Carstamp, Value)> = Vec::new();
    for (i, p) in run.puts.iter().enumerate() {
        let cs = run.put_cs(p.op).unwrap();
        written.push((cs, Value::from(format!("w{i}").as_str())));
        ops.push((p.start_mark, completion(p.op), cs, true));
    }
    let mut carstamps: Vec<Carstamp> = written.iter().map(|(cs, _)| *cs).collect();
    carstamps.sort();
    carstamps.dedup();
    prop_assert_eq!(
        carstamps.len(),
        written.len(),
        "two writes share a carstamp"
    );
    for r in &run.reads {
        let Some(RegisterReply::Get { value, cs }) = run.net.reply(r.op) else {
            return Err(TestCaseError::fail(
                "read did not complete with a get reply",
            ));
        };
        let expected = written
            .iter()
            .find(|(w, _)| w == cs)
            .map(|(_, v)| v.clone());
        if *cs == Carstamp::ZERO {
            prop_assert_eq!(value, &None);
        } else {
            prop_assert_eq!(value, &expected, "value does not match its carstamp");
        }
        ops.push((r.start_mark, completion(r.op), *cs, false));
    }
    for &(_, done_a, cs_a, _) in &ops {
        for &(start_b, _, cs_b, write_b) in &ops {
            if done_a < start_b {
                prop_assert!(
                    cs_b >= cs_a,
                    "{:?} after {:?}: went back in time",
                    cs_b,
                    cs_a
                );
                prop_assert!(
                    !write_b || cs_b > cs_a,
                    "a later write did not sort after {:?}",
                    cs_a
                );
            }
        }
    }
    Ok(())
}

/// Every replica's final read returns the newest write. Without thrifty
/// phases and without loss every Write2 reached every replica, so then all
/// stores hold it too.
fn check_convergence(run: &mut Run, all_stores: bool) -> Result<(), TestCaseError> {
    let newest = run.completed_put_max();
    if all_stores {
        for node in &run.net.nodes {
            prop_assert_eq!(node.store.get(&key()).cs, newest);
        }
    }
    for at in 0..run.n {
        let op = run.net.get(at);
        run.net.deliver_all();
        match run.net.reply(op) {
            Some(RegisterReply::Get { cs, .. }) => prop_assert_eq!(*cs, newest),
            other => return Err(TestCaseError::fail(format!("final read: {other:?}"))),
        }
    }
    Ok(())
}
