//! Explaining a violation: the smallest failing key history the checker can
//! find within a budget, its longest linearizable prefix and the operations
//! that could not be placed (Porcupine's partial linearizations).
//!
//! Shrinking is in `shrink`.

use super::CheckConfig;
use super::history::{Input, Operation, Output};
use super::model::{KeyModel, StateId};
use super::search::{self, Limits, Options, Outcome};
use super::shrink;
use registers::{Key, RmwOp, Value};
use std::collections::HashSet;
use std::fmt;
use std::time::{Duration, Instant};

/// Effort spent shrinking a violation.
#[derive(Clone, Debug)]
pub struct MinimizeConfig {
    /// Searches run while shrinking.
    pub max_checks: usize,
    /// Configurations one of those searches may explore; a search that hits
    /// it counts as "does not fail".
    pub max_states_per_check: u64,
    pub max_time: Duration,
}

impl Default for MinimizeConfig {
    fn default() -> MinimizeConfig {
        MinimizeConfig {
            max_checks: 5_000,
            max_states_per_check: 200_000,
            max_time: Duration::from_secs(20),
        }
    }
}

/// One operation of the explanation, with its index in the checked history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExplainedOp {
    pub history_index: usize,
    pub op: Operation,
}

/// One move of the longest linearizable prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixStep {
    /// Index into [`Violation::ops`].
    pub op: usize,
    /// The key's value after the operation.
    pub state_after: Option<Value>,
}

/// Why a history is not linearizable, shown on the smallest failing key
/// history found.
#[derive(Clone, Debug)]
pub struct Violation {
    pub key: Key,
    /// Every key without a linearization (`key` is one of them).
    pub failed_keys: Vec<Key>,
    /// Operations on `key` in the checked history.
    pub key_operations: usize,
    /// The shrunk failing history of `key`, by call time.
    pub ops: Vec<ExplainedOp>,
    /// True if no single allowed removal keeps it failing; false if the
    /// shrinking budget ran out first.
    pub minimal: bool,
    /// The longest linearizable prefix of `ops` the search found.
    pub prefix: Vec<PrefixStep>,
    /// Indices into `ops` of the operations not in `prefix`.
    pub unplaced: Vec<usize>,
    /// Index into `ops` of the operation whose return the deepest partial
    /// linearization reached without being able to place it.
    pub blocking: Option<usize>,
}

impl Violation {
    /// The history indices of the shrunk failing history.
    pub fn history_indices(&self) -> Vec<usize> {
        self.ops.iter().map(|o| o.history_index).collect()
    }
}

/// Builds the explanation of `key`'s failure from its relevant operations.
pub(crate) fn explain(
    history: &[Operation],
    key: &Key,
    relevant: Vec<usize>,
    key_operations: usize,
    failed_keys: Vec<Key>,
    config: &CheckConfig,
) -> Violation {
    let (shrunk, minimal) = shrink::shrink(history, relevant, &config.minimize);

    let mut model = KeyModel::compile(history, &shrunk);
    let deadline = config.max_time_per_key.map(|t| Instant::now() + t);
    // Plain WGL shows the longest prefix whose outputs all check out; if
    // the shrunk history is still too big for it, the pruned search at
    // least names a blocking operation.
    let mut partial = None;
    for plain in [true, false] {
        let options = Options {
            plain,
            record_partial: true,
        };
        let limits = Limits {
            max_states: if plain {
                config.minimize.max_states_per_check
            } else {
                config.max_states_per_key
            },
            deadline,
        };
        if let Outcome::Violation(f) = search::search(&mut model, limits, options).0 {
            partial = f.partial;
            break;
        }
    }
    let position = |model_op: usize| {
        let index = model.ops[model_op].history_index;
        shrunk
            .binary_search_by_key(&(history[index].call, index), |&i| (history[i].call, i))
            .expect("compiled ops come from the shrunk set")
    };
    let state_value = |s: StateId| model.values.get(s).cloned();
    let prefix: Vec<PrefixStep> = partial
        .as_ref()
        .map(|p| {
            p.steps
                .iter()
                .map(|&(op, s)| PrefixStep {
                    op: position(op),
                    state_after: state_value(s),
                })
                .collect()
        })
        .unwrap_or_default();
    let placed: HashSet<usize> = prefix.iter().map(|s| s.op).collect();
    Violation {
        key: key.clone(),
        failed_keys,
        key_operations,
        ops: shrunk
            .iter()
            .map(|&i| ExplainedOp {
                history_index: i,
                op: history[i].clone(),
            })
            .collect(),
        minimal,
        unplaced: (0..shrunk.len()).filter(|i| !placed.contains(i)).collect(),
        blocking: partial.as_ref().map(|p| position(p.blocking)),
        prefix,
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "linearizability violation on key {} ({} of its {} operations shown{}; failed keys: {})",
            show_key(&self.key),
            self.ops.len(),
            self.key_operations,
            if self.minimal {
                ", minimal"
            } else {
                ", shrinking budget ran out"
            },
            self.failed_keys
                .iter()
                .map(show_key)
                .collect::<Vec<_>>()
                .join(", "),
        )?;
        writeln!(
            f,
            "failing history (times in the history's unit, ∞ = never returned):"
        )?;
        for (i, e) in self.ops.iter().enumerate() {
            writeln!(f, "  #{i:<3} {}", ShowOp(&e.op))?;
        }
        writeln!(f, "longest linearizable prefix:")?;
        if self.prefix.is_empty() {
            writeln!(f, "  (none: no operation can go first)")?;
        }
        for step in &self.prefix {
            writeln!(
                f,
                "  #{:<3} {:<40} => {}",
                step.op,
                ShowCall(&self.ops[step.op].op),
                show_value(step.state_after.as_ref())
            )?;
        }
        writeln!(f, "could not be placed after it:")?;
        for &i in &self.unplaced {
            let mark = if self.blocking == Some(i) {
                "  <- must take effect before its return, but no order allows it"
            } else {
                ""
            };
            writeln!(f, "  #{i:<3} {}{mark}", ShowOp(&self.ops[i].op))?;
        }
        Ok(())
    }
}

struct ShowOp<'a>(&'a Operation);

impl fmt::Display for ShowOp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = self.0;
        let ret = op.ret_time().map_or("∞".to_string(), |t| t.to_string());
        write!(
            f,
            "[{:>8}, {:>8}] client {:<4} {}",
            op.call,
            ret,
            op.client.0,
            ShowCall(op)
        )
    }
}

/// An operation's input and output, e.g. `get -> "a"`.
struct ShowCall<'a>(&'a Operation);

impl fmt::Display for ShowCall<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = self.0;
        let input = match &op.input {
            Input::Get => "get".to_string(),
            Input::Put(Some(v)) => format!("put {}", show_value(Some(v))),
            Input::Put(None) => "delete".to_string(),
            Input::Rmw(RmwOp::CompareAndSwap { expected, new }) => format!(
                "cas {} -> {}",
                show_value(expected.as_ref()),
                show_value(new.as_ref())
            ),
            Input::Rmw(RmwOp::FetchAdd { delta }) => format!("fetch_add {delta:+}"),
            Input::Rmw(RmwOp::PutIfAbsent { value }) => {
                format!("put_if_absent {}", show_value(Some(value)))
            }
        };
        let output = match op.output() {
            None => "(no reply)".to_string(),
            Some(Output::Get(v)) => show_value(v.as_ref()),
            Some(Output::Put) => "ok".to_string(),
            Some(Output::Rmw(out)) => format!(
                "old {}, {}",
                show_value(out.old.as_ref()),
                if out.applied {
                    "applied"
                } else {
                    "not applied"
                }
            ),
        };
        let text = format!("{input} -> {output}");
        f.pad(&text)
    }
}

fn show_key(key: &Key) -> String {
    match std::str::from_utf8(key.as_bytes()) {
        Ok(s) if s.bytes().all(|b| (0x20..0x7f).contains(&b)) => format!("{s:?}"),
        _ => format!("0x{}", hex(key.as_bytes())),
    }
}

/// Printable text in quotes, an 8-byte binary value as the integer
/// fetch-and-add reads it, anything else as hex.
fn show_value(value: Option<&Value>) -> String {
    let Some(value) = value else {
        return "absent".to_string();
    };
    let bytes = value.as_bytes();
    if !bytes.is_empty() && bytes.iter().all(|b| (0x20..0x7f).contains(b)) {
        format!("{:?}", String::from_utf8_lossy(bytes))
    } else if let Some(n) = value.to_i64() {
        format!("int {n}")
    } else if bytes.len() <= 16 {
        format!("0x{}", hex(bytes))
    } else {
        format!("0x{}.. ({} bytes)", hex(&bytes[..16]), bytes.len())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
