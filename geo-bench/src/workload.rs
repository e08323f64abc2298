//! Workloads of EVALUATION.md ("Workloads"): operation mixes, conflict
//! percentage, value size, and a seeded generator of client requests.

use rand::Rng;
use registers::{ClientRequest, Key, RmwOp, Value};
use serde::{Deserialize, Serialize};

/// An operation mix and how often operations collide on the hot key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    pub name: String,
    pub write_pct: f64,
    pub read_pct: f64,
    pub rmw_pct: f64,
    /// Chance (percent) that an operation targets the shared hot key
    /// instead of a key of its own.
    pub conflict_pct: f64,
    /// Bytes per written value (RMWs use 8-byte integers).
    pub value_size: usize,
}

/// A workload spec that makes no sense.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WorkloadError {
    #[error("unknown workload {0:?}; known: lat-a, lat-b, tail, tput, vary-<write%>, rmw-heavy")]
    Unknown(String),
    #[error("workload {name}: writes + reads + rmws = {sum}%, must be 100%")]
    BadMix { name: String, sum: f64 },
    #[error("workload {name}: {field} = {value} is outside 0..=100")]
    OutOfRange {
        name: String,
        field: &'static str,
        value: f64,
    },
}

impl Workload {
    /// A named workload of the paper with the given conflict percentage
    /// (`None` = the paper's default for it).
    pub fn named(name: &str, conflict_pct: Option<f64>) -> Result<Workload, WorkloadError> {
        let (w, r, m, c) = match name {
            "lat-a" | "tput" => (49.5, 49.5, 1.0, 25.0),
            "lat-b" => (4.5, 94.5, 1.0, 10.0),
            "tail" => (0.9, 99.0, 0.1, 25.0),
            // Not from the paper: a third RMWs, to stress the EPaxos path
            // and its interplay with writes in the simulation sweeps.
            "rmw-heavy" => (33.0, 34.0, 33.0, 50.0),
            other => match other
                .strip_prefix("vary-")
                .and_then(|w| w.parse::<f64>().ok())
            {
                Some(w) => (w, 99.0 - w, 1.0, 2.0),
                None => return Err(WorkloadError::Unknown(other.to_string())),
            },
        };
        let wl = Workload {
            name: name.to_string(),
            write_pct: w,
            read_pct: r,
            rmw_pct: m,
            conflict_pct: conflict_pct.unwrap_or(c),
            value_size: 8,
        };
        wl.validate()?;
        Ok(wl)
    }

    pub fn validate(&self) -> Result<(), WorkloadError> {
        let fields = [
            ("write_pct", self.write_pct),
            ("read_pct", self.read_pct),
            ("rmw_pct", self.rmw_pct),
            ("conflict_pct", self.conflict_pct),
        ];
        for (field, value) in fields {
            if !(0.0..=100.0).contains(&value) {
                return Err(WorkloadError::OutOfRange {
                    name: self.name.clone(),
                    field,
                    value,
                });
            }
        }
        let sum = self.write_pct + self.read_pct + self.rmw_pct;
        if (sum - 100.0).abs() > 1e-6 {
            return Err(WorkloadError::BadMix {
                name: self.name.clone(),
                sum,
            });
        }
        Ok(())
    }

    /// The next request of a client. `fresh` names a key no other client
    /// uses (the caller makes it unique); the hot key is shared by all.
    pub fn next_request(&self, rng: &mut impl Rng, fresh: impl FnOnce() -> Key) -> ClientRequest {
        let key = if rng.random::<f64>() * 100.0 < self.conflict_pct {
            Key::from("hot")
        } else {
            fresh()
        };
        let pick = rng.random::<f64>() * 100.0;
        if pick < self.write_pct {
            let mut bytes = vec![0u8; self.value_size.max(1)];
            rng.fill(&mut bytes[..]);
            ClientRequest::Put {
                key,
                value: Some(Value(bytes)),
            }
        } else if pick < self.write_pct + self.read_pct {
            ClientRequest::Get { key }
        } else {
            ClientRequest::Rmw {
                key,
                op: random_rmw(rng),
            }
        }
    }
}

/// A random RMW of one of the three kinds, with integer values so that
/// compare-and-swap and fetch-and-add interact.
fn random_rmw(rng: &mut impl Rng) -> RmwOp {
    match rng.random_range(0..4) {
        0 | 1 => RmwOp::FetchAdd {
            delta: rng.random_range(1..=5),
        },
        2 => RmwOp::CompareAndSwap {
            expected: Some(Value::from_i64(rng.random_range(0..8))),
            new: Some(Value::from_i64(rng.random_range(0..8))),
        },
        _ => RmwOp::PutIfAbsent {
            value: Value::from_i64(rng.random_range(0..8)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn named_workloads_have_the_paper_mixes() {
        let a = Workload::named("lat-a", None).unwrap();
        assert_eq!(
            (a.write_pct, a.read_pct, a.rmw_pct, a.conflict_pct),
            (49.5, 49.5, 1.0, 25.0)
        );
        let b = Workload::named("lat-b", Some(2.0)).unwrap();
        assert_eq!(b.conflict_pct, 2.0);
        let v = Workload::named("vary-29.5", None).unwrap();
        assert_eq!(v.read_pct, 69.5);
        assert!(matches!(
            Workload::named("nope", None),
            Err(WorkloadError::Unknown(_))
        ));
        assert!(matches!(
            Workload::named("lat-a", Some(101.0)),
            Err(WorkloadError::OutOfRange { .. })
        ));
    }

    #[test]
    fn generated_mix_follows_the_percentages() {
        let wl = Workload::named("lat-a", None).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (mut puts, mut gets, mut rmws, mut hot) = (0, 0, 0, 0);
        let mut next = 0u64;
        for _ in 0..20_000 {
            let req = wl.next_request(&mut rng, || {
                next += 1;
                Key(format!("k{next}").into_bytes())
            });
            if req.key() == &Key::from("hot") {
                hot += 1;
            }
            match req {
                ClientRequest::Put { .. } => puts += 1,
                ClientRequest::Get { .. } => gets += 1,
                ClientRequest::Rmw { .. } => rmws += 1,
            }
        }
        assert!((9_500..10_300).contains(&puts), "{puts}");
        assert!((9_500..10_300).contains(&gets), "{gets}");
        assert!((120..300).contains(&rmws), "{rmws}");
        assert!((4_600..5_400).contains(&hot), "{hot}");
    }
}
