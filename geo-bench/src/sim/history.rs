//! The client history a simulation records: one entry per operation, with
//! its call and (if it came) return time, for the linearizability checker
//! and the latency figures.

use registers::{ClientId, ClientReply, ClientRequest, OpId};

/// One client operation as its client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryOp {
    pub client: ClientId,
    /// The client's region (the replica it talks to first).
    pub region: usize,
    pub op: OpId,
    pub request: ClientRequest,
    /// Virtual time in µs when the client issued it.
    pub call_us: u64,
    /// When the reply reached the client; `None` if it never did (the client
    /// gave up, or the run ended first). Such an operation may or may not
    /// have taken effect.
    pub return_us: Option<u64>,
    pub reply: Option<ClientReply>,
    /// How many replicas the client sent it to (RMWs are retried under the
    /// same `OpId`; gets and puts are re-issued as new operations instead).
    pub attempts: u32,
}

impl HistoryOp {
    pub fn latency_us(&self) -> Option<u64> {
        self.return_us.map(|r| r - self.call_us)
    }

    /// "get", "put" or "rmw".
    pub fn kind(&self) -> &'static str {
        op_kind(&self.request)
    }
}

/// The short name of a request's type, as used in reports.
pub fn op_kind(req: &ClientRequest) -> &'static str {
    match req {
        ClientRequest::Get { .. } => "get",
        ClientRequest::Put { .. } => "put",
        ClientRequest::Rmw { .. } => "rmw",
    }
}
