//! Property test: transactions from two full runtimes, interleaved at
//! random with plain updates, checked against a serial reference model of
//! the log; a third runtime hosting only one object must agree on it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use log_backend::tango::{ObjectId, Runtime, RuntimeConfig, TangoMap, Transaction, TxOutcome};
use log_backend::{LogConfig, MemLog, Position, SharedLog, SyncMode};
use proptest::prelude::*;

const SLOTS: usize = 3;
const OBJECTS: [ObjectId; 2] = [ObjectId(1), ObjectId(2)];

#[derive(Clone, Debug)]
enum Op {
    Begin {
        slot: usize,
        rt: usize,
    },
    Read {
        slot: usize,
        obj: usize,
        key: u8,
    },
    Write {
        slot: usize,
        obj: usize,
        key: u8,
        val: u8,
    },
    Commit {
        slot: usize,
    },
    Put {
        rt: usize,
        obj: usize,
        key: u8,
        val: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    let obj = 0..2usize;
    let key = 0..3u8;
    prop_oneof![
        2 => (slot.clone(), 0..2usize).prop_map(|(slot, rt)| Op::Begin { slot, rt }),
        4 => (slot.clone(), obj.clone(), key.clone()).prop_map(|(slot, obj, key)| Op::Read { slot, obj, key }),
        3 => (slot.clone(), obj.clone(), key.clone(), any::<u8>())
            .prop_map(|(slot, obj, key, val)| Op::Write { slot, obj, key, val }),
        2 => slot.prop_map(|slot| Op::Commit { slot }),
        1 => (0..2usize, obj, key, any::<u8>()).prop_map(|(rt, obj, key, val)| Op::Put { rt, obj, key, val }),
    ]
}

type Key = (usize, u8);

/// The serial reference: every committed write, in log order.
#[derive(Default)]
struct Model {
    history: HashMap<Key, Vec<(Position, Vec<u8>)>>,
    outcomes: BTreeMap<Position, bool>,
}

impl Model {
    fn version(&self, k: Key) -> Option<Position> {
        self.history.get(&k).and_then(|h| h.last()).map(|(p, _)| *p)
    }
    fn current(&self, k: Key) -> Option<Vec<u8>> {
        self.history
            .get(&k)
            .and_then(|h| h.last())
            .map(|(_, v)| v.clone())
    }
    fn value_at(&self, k: Key, version: Option<Position>) -> Option<Vec<u8>> {
        let v = version?;
        self.history
            .get(&k)?
            .iter()
            // A transaction may write a key twice: the last write counts.
            .rfind(|(p, _)| *p == v)
            .map(|(_, val)| val.clone())
    }
    fn write(&mut self, k: Key, p: Position, v: Vec<u8>) {
        self.history.entry(k).or_default().push((p, v));
    }
    fn map(&self, obj: usize) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.history
            .iter()
            .filter(|((o, _), _)| *o == obj)
            .filter_map(|((_, key), h)| h.last().map(|(_, v)| (vec![*key], v.clone())))
            .collect()
    }
}

struct Open<'a> {
    rt: usize,
    tx: Transaction<'a>,
    /// First read of each key: (observed value, version).
    reads: BTreeMap<Key, (Option<Vec<u8>>, Option<Position>)>,
    writes: Vec<(Key, Vec<u8>)>,
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let log: SharedLog = Arc::new(MemLog::new(LogConfig::default(), SyncMode::Immediate).unwrap());
    let rts: Vec<Arc<Runtime>> = (1..=3)
        .map(|c| Runtime::new(log.clone(), RuntimeConfig::with_client(c)).unwrap())
        .collect();
    let maps: Vec<Vec<TangoMap>> = rts[..2]
        .iter()
        .map(|r| {
            OBJECTS
                .iter()
                .map(|o| TangoMap::open(r, *o).unwrap())
                .collect()
        })
        .collect();
    let partial_b = TangoMap::open(&rts[2], OBJECTS[1]).unwrap();
    let mut model = Model::default();
    let mut slots: Vec<Option<Open<'_>>> = (0..SLOTS).map(|_| None).collect();

    for op in ops {
        match op {
            Op::Begin { slot, rt } => {
                if slots[slot].is_none() {
                    let tx = rts[rt].begin().unwrap();
                    slots[slot] = Some(Open {
                        rt,
                        tx,
                        reads: BTreeMap::new(),
                        writes: vec![],
                    });
                }
            }
            Op::Read { slot, obj, key } => {
                let Some(o) = slots[slot].as_mut() else {
                    continue;
                };
                let got = maps[o.rt][obj].get_in(&mut o.tx, &[key]).unwrap();
                let k = (obj, key);
                if let Some((_, v)) = o.writes.iter().rev().find(|(wk, _)| *wk == k) {
                    prop_assert_eq!(got, Some(v.clone()), "read-your-writes");
                } else if !o.reads.contains_key(&k) {
                    let version = rts[o.rt].version(OBJECTS[obj], &[key]).unwrap();
                    // The view's value is the one the model had at that version.
                    prop_assert_eq!(&got, &model.value_at(k, version));
                    o.reads.insert(k, (got, version));
                }
            }
            Op::Write {
                slot,
                obj,
                key,
                val,
            } => {
                let Some(o) = slots[slot].as_mut() else {
                    continue;
                };
                maps[o.rt][obj].put_in(&mut o.tx, &[key], &[val]).unwrap();
                o.writes.push(((obj, key), vec![val]));
            }
            Op::Commit { slot } => {
                let Some(o) = slots[slot].take() else {
                    continue;
                };
                let outcome = o.tx.commit().unwrap();
                if o.writes.is_empty() {
                    prop_assert_eq!(outcome, TxOutcome::ReadOnly);
                    continue;
                }
                let valid = o
                    .reads
                    .iter()
                    .all(|(k, (_, ver))| model.version(*k) == *ver);
                let p = match outcome {
                    TxOutcome::Committed(p) => {
                        prop_assert!(valid, "committed although a read was stale");
                        // Serializable at its commit point: what it read is current.
                        for (k, (val, _)) in &o.reads {
                            prop_assert_eq!(&model.current(*k), val);
                        }
                        for (k, v) in &o.writes {
                            model.write(*k, p, v.clone());
                        }
                        p
                    }
                    TxOutcome::Aborted(p) => {
                        prop_assert!(!valid, "aborted without a conflict");
                        p
                    }
                    TxOutcome::ReadOnly => return Err(TestCaseError::fail("writes but ReadOnly")),
                };
                model.outcomes.insert(p, valid);
            }
            Op::Put { rt, obj, key, val } => {
                let p = maps[rt][obj].put(&[key], &[val]).unwrap();
                model.write((obj, key), p, vec![val]);
            }
        }
    }
    drop(slots);
    for (r, m) in maps.iter().enumerate() {
        for (obj, map) in m.iter().enumerate() {
            prop_assert_eq!(
                map.snapshot().unwrap(),
                model.map(obj),
                "runtime {} object {}",
                r,
                obj
            );
        }
    }
    prop_assert_eq!(
        partial_b.snapshot().unwrap(),
        model.map(1),
        "partial view of B"
    );
    let d1: BTreeMap<Position, bool> = rts[0].recent_decisions().into_iter().collect();
    let d2: BTreeMap<Position, bool> = rts[1].recent_decisions().into_iter().collect();
    prop_assert_eq!(&d1, &d2, "the two full views decided differently");
    prop_assert_eq!(&d1, &model.outcomes, "views and the reference disagree");
    for (p, d) in rts[2].recent_decisions() {
        prop_assert_eq!(
            d1.get(&p),
            Some(&d),
            "partial view decided {:?} differently",
            p
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn transactions_match_a_serial_model(ops in prop::collection::vec(op(), 1..80)) {
        run(ops)?;
    }
}
