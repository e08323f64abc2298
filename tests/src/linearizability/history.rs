//! The checker's input: a concurrent history of key-value operations, each
//! with its call time, its return time (or none: it never returned) and what
//! it observed, plus recorders that build such a history from test code.
//!
//! Times are plain `u64` in any monotone unit (the simulator uses virtual
//! microseconds). Operation `a` precedes `b` in real time iff
//! `a.ret < b.call` strictly: operations that touch at one instant count as
//! concurrent, which errs on the side of accepting.

use registers::{ClientId, ClientReply, ClientRequest, Key, RmwOp, RmwOutcome, Value};
use std::sync::{Arc, Mutex, PoisonError};
use thiserror::Error;

/// What an operation asked for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Input {
    Get,
    /// `None` deletes the key.
    Put(Option<Value>),
    Rmw(RmwOp),
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    Get(Option<Value>),
    Put,
    /// The checker compares the observed `old` value and the `applied` flag;
    /// `new` and `not_an_integer` are functions of `old` (PROTOCOL.md 4).
    Rmw(RmwOutcome),
}

/// How an operation ended, if it did.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Return {
    pub time: u64,
    pub output: Output,
}

/// One operation of a history.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Operation {
    pub client: ClientId,
    pub key: Key,
    pub call: u64,
    pub input: Input,
    /// `None`: never returned (timed out, crashed, or still running when the
    /// history was cut). Such an operation may or may not have taken effect.
    pub ret: Option<Return>,
}

impl Operation {
    /// The return time, `None` when the operation never returned.
    pub fn ret_time(&self) -> Option<u64> {
        self.ret.as_ref().map(|r| r.time)
    }

    /// The output, `None` when the operation never returned.
    pub fn output(&self) -> Option<&Output> {
        self.ret.as_ref().map(|r| &r.output)
    }
}

/// A history the checker cannot interpret: a recording bug, not a verdict.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum HistoryError {
    #[error("operation {index}: returned at {ret} before its call at {call}")]
    ReturnBeforeCall { index: usize, call: u64, ret: u64 },
    #[error("operation {index}: output {output:?} does not answer input {input:?}")]
    OutputMismatch {
        index: usize,
        input: Input,
        output: Output,
    },
    #[error("operation handle {0} is unknown or already completed")]
    BadHandle(usize),
}

/// Checks that every operation is well formed.
pub fn validate(history: &[Operation]) -> Result<(), HistoryError> {
    for (index, op) in history.iter().enumerate() {
        let Some(ret) = &op.ret else { continue };
        if ret.time < op.call {
            return Err(HistoryError::ReturnBeforeCall {
                index,
                call: op.call,
                ret: ret.time,
            });
        }
        let matches = matches!(
            (&op.input, &ret.output),
            (Input::Get, Output::Get(_))
                | (Input::Put(_), Output::Put)
                | (Input::Rmw(_), Output::Rmw(_))
        );
        if !matches {
            return Err(HistoryError::OutputMismatch {
                index,
                input: op.input.clone(),
                output: ret.output.clone(),
            });
        }
    }
    Ok(())
}

impl From<&ClientRequest> for Input {
    fn from(request: &ClientRequest) -> Input {
        match request {
            ClientRequest::Get { .. } => Input::Get,
            ClientRequest::Put { value, .. } => Input::Put(value.clone()),
            ClientRequest::Rmw { op, .. } => Input::Rmw(op.clone()),
        }
    }
}

impl From<&ClientReply> for Output {
    fn from(reply: &ClientReply) -> Output {
        match reply {
            ClientReply::Get { value, .. } => Output::Get(value.clone()),
            ClientReply::Put { .. } => Output::Put,
            ClientReply::Rmw { outcome, .. } => Output::Rmw(outcome.clone()),
        }
    }
}

/// Names an invoked operation until it completes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OpHandle(usize);

/// Builds a history from invocations and completions with explicit times.
/// Operations never completed stay pending (`ret: None`).
#[derive(Clone, Debug, Default)]
pub struct HistoryRecorder {
    ops: Vec<Operation>,
}

impl HistoryRecorder {
    pub fn new() -> HistoryRecorder {
        HistoryRecorder::default()
    }

    /// Records the call of an operation at `call_time`.
    pub fn invoke(&mut self, client: ClientId, key: Key, call_time: u64, input: Input) -> OpHandle {
        self.ops.push(Operation {
            client,
            key,
            call: call_time,
            input,
            ret: None,
        });
        OpHandle(self.ops.len() - 1)
    }

    /// Records an operation's call from the request the client sends.
    pub fn invoke_request(
        &mut self,
        client: ClientId,
        call_time: u64,
        request: &ClientRequest,
    ) -> OpHandle {
        self.invoke(client, request.key().clone(), call_time, request.into())
    }

    /// Records the return of `handle` at `ret_time` with `output`. The
    /// output kind must answer the input and the return must not precede
    /// the call: a malformed completion is a bug in the test, reported here
    /// rather than as a false violation later.
    pub fn complete(
        &mut self,
        handle: OpHandle,
        ret_time: u64,
        output: Output,
    ) -> Result<(), HistoryError> {
        let op = match self.ops.get_mut(handle.0) {
            Some(op) if op.ret.is_none() => op,
            _ => return Err(HistoryError::BadHandle(handle.0)),
        };
        op.ret = Some(Return {
            time: ret_time,
            output,
        });
        let result = validate(std::slice::from_ref(op)).map_err(|e| match e {
            HistoryError::ReturnBeforeCall { call, ret, .. } => HistoryError::ReturnBeforeCall {
                index: handle.0,
                call,
                ret,
            },
            HistoryError::OutputMismatch { input, output, .. } => HistoryError::OutputMismatch {
                index: handle.0,
                input,
                output,
            },
            other => other,
        });
        if result.is_err() {
            op.ret = None;
        }
        result
    }

    /// Records the return of `handle` from the reply the client received.
    pub fn complete_reply(
        &mut self,
        handle: OpHandle,
        ret_time: u64,
        reply: &ClientReply,
    ) -> Result<(), HistoryError> {
        self.complete(handle, ret_time, reply.into())
    }

    /// The operations recorded so far, in invocation order.
    pub fn operations(&self) -> &[Operation] {
        &self.ops
    }

    pub fn into_operations(self) -> Vec<Operation> {
        self.ops
    }
}

/// A [`HistoryRecorder`] shared between tasks or threads. Each call holds
/// the lock only to push or update one record.
#[derive(Clone, Debug, Default)]
pub struct SharedRecorder {
    inner: Arc<Mutex<HistoryRecorder>>,
}

impl SharedRecorder {
    pub fn new() -> SharedRecorder {
        SharedRecorder::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut HistoryRecorder) -> R) -> R {
        // A panicking test task must not hide the history of the others.
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    pub fn invoke(&self, client: ClientId, key: Key, call_time: u64, input: Input) -> OpHandle {
        self.with(|r| r.invoke(client, key, call_time, input))
    }

    pub fn invoke_request(
        &self,
        client: ClientId,
        call_time: u64,
        request: &ClientRequest,
    ) -> OpHandle {
        self.with(|r| r.invoke_request(client, call_time, request))
    }

    pub fn complete(
        &self,
        handle: OpHandle,
        ret_time: u64,
        output: Output,
    ) -> Result<(), HistoryError> {
        self.with(|r| r.complete(handle, ret_time, output))
    }

    pub fn complete_reply(
        &self,
        handle: OpHandle,
        ret_time: u64,
        reply: &ClientReply,
    ) -> Result<(), HistoryError> {
        self.with(|r| r.complete_reply(handle, ret_time, reply))
    }

    /// A copy of the history recorded so far.
    pub fn snapshot(&self) -> Vec<Operation> {
        self.with(|r| r.operations().to_vec())
    }
}
