//! Conversions between the wire messages of `gryff.v1` and the protocol's own
//! vocabulary in `registers` (`ClientRequest`, `ClientReply`, `RmwOp`,
//! `RmwOutcome`, `Carstamp`). The server uses them at its gRPC edge, the
//! client to read replies; keeping both directions here keeps them inverse.

use crate::proto;
use registers::{
    Carstamp, ClientId, ClientReply, ClientRequest, Key, OpId, RequestId, RmwOp, RmwOutcome, Value,
    WriterId,
};

/// A message that does not carry what the API requires. At the server edge
/// it becomes INVALID_ARGUMENT (`From<ConvertError> for tonic::Status`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("missing field {0}")]
    MissingField(&'static str),
    #[error("{0} must not be 0")]
    ZeroId(&'static str),
    #[error("expected a {expected} reply, got {got:?}")]
    WrongReplyKind {
        expected: &'static str,
        got: Box<ClientReply>,
    },
}

impl From<ConvertError> for tonic::Status {
    fn from(e: ConvertError) -> tonic::Status {
        match e {
            // A reply of the wrong kind is the server's own bug, not the caller's.
            ConvertError::WrongReplyKind { .. } => tonic::Status::internal(e.to_string()),
            _ => tonic::Status::invalid_argument(e.to_string()),
        }
    }
}

impl From<Carstamp> for proto::Carstamp {
    fn from(cs: Carstamp) -> proto::Carstamp {
        proto::Carstamp {
            ts: cs.ts,
            writer: cs.writer.0,
            rmwc: cs.rmwc,
        }
    }
}

impl From<proto::Carstamp> for Carstamp {
    fn from(cs: proto::Carstamp) -> Carstamp {
        Carstamp {
            ts: cs.ts,
            writer: WriterId(cs.writer),
            rmwc: cs.rmwc,
        }
    }
}

fn carstamp(cs: Option<proto::Carstamp>) -> Result<Carstamp, ConvertError> {
    cs.map(Carstamp::from)
        .ok_or(ConvertError::MissingField("carstamp"))
}

impl From<proto::GetRequest> for ClientRequest {
    fn from(req: proto::GetRequest) -> ClientRequest {
        ClientRequest::Get { key: Key(req.key) }
    }
}

impl From<proto::PutRequest> for ClientRequest {
    fn from(req: proto::PutRequest) -> ClientRequest {
        ClientRequest::Put {
            key: Key(req.key),
            value: req.value.map(Value),
        }
    }
}

impl From<proto::DeleteRequest> for ClientRequest {
    fn from(req: proto::DeleteRequest) -> ClientRequest {
        ClientRequest::Put {
            key: Key(req.key),
            value: None,
        }
    }
}

impl From<RmwOp> for proto::rmw_request::Op {
    fn from(op: RmwOp) -> proto::rmw_request::Op {
        use proto::rmw_request::Op;
        match op {
            RmwOp::CompareAndSwap { expected, new } => Op::CompareAndSwap(proto::CompareAndSwap {
                expected: expected.map(|v| v.0),
                new: new.map(|v| v.0),
            }),
            RmwOp::FetchAdd { delta } => Op::FetchAdd(proto::FetchAdd { delta }),
            RmwOp::PutIfAbsent { value } => Op::PutIfAbsent(proto::PutIfAbsent { value: value.0 }),
        }
    }
}

impl From<proto::rmw_request::Op> for RmwOp {
    fn from(op: proto::rmw_request::Op) -> RmwOp {
        use proto::rmw_request::Op;
        match op {
            Op::CompareAndSwap(cas) => RmwOp::CompareAndSwap {
                expected: cas.expected.map(Value),
                new: cas.new.map(Value),
            },
            Op::FetchAdd(add) => RmwOp::FetchAdd { delta: add.delta },
            Op::PutIfAbsent(pia) => RmwOp::PutIfAbsent {
                value: Value(pia.value),
            },
        }
    }
}

impl proto::RmwRequest {
    /// The wire form of RMW `op` on `key`, named `id` for deduplication.
    pub fn from_op(key: Key, id: OpId, op: RmwOp) -> proto::RmwRequest {
        proto::RmwRequest {
            key: key.0,
            client_id: id.client.0,
            request_id: id.request.0,
            op: Some(op.into()),
        }
    }

    /// The operation and its deduplication id; rejects a request without an
    /// op or with a zero id (proto3 cannot tell 0 from "not sent").
    pub fn into_client_request(self) -> Result<(OpId, ClientRequest), ConvertError> {
        if self.client_id == 0 {
            return Err(ConvertError::ZeroId("client_id"));
        }
        if self.request_id == 0 {
            return Err(ConvertError::ZeroId("request_id"));
        }
        let op = self.op.ok_or(ConvertError::MissingField("op"))?;
        let id = OpId {
            client: ClientId(self.client_id),
            request: RequestId(self.request_id),
        };
        let request = ClientRequest::Rmw {
            key: Key(self.key),
            op: op.into(),
        };
        Ok((id, request))
    }
}

impl TryFrom<ClientReply> for proto::GetReply {
    type Error = ConvertError;
    fn try_from(reply: ClientReply) -> Result<proto::GetReply, ConvertError> {
        match reply {
            ClientReply::Get { value, cs } => Ok(proto::GetReply {
                value: value.map(|v| v.0),
                carstamp: Some(cs.into()),
            }),
            got => Err(ConvertError::WrongReplyKind {
                expected: "get",
                got: Box::new(got),
            }),
        }
    }
}

impl TryFrom<ClientReply> for proto::PutReply {
    type Error = ConvertError;
    fn try_from(reply: ClientReply) -> Result<proto::PutReply, ConvertError> {
        match reply {
            ClientReply::Put { cs } => Ok(proto::PutReply {
                carstamp: Some(cs.into()),
            }),
            got => Err(ConvertError::WrongReplyKind {
                expected: "put",
                got: Box::new(got),
            }),
        }
    }
}

impl TryFrom<ClientReply> for proto::RmwReply {
    type Error = ConvertError;
    fn try_from(reply: ClientReply) -> Result<proto::RmwReply, ConvertError> {
        match reply {
            ClientReply::Rmw { outcome, cs } => Ok(proto::RmwReply {
                old: outcome.old.map(|v| v.0),
                new: outcome.new.map(|v| v.0),
                applied: outcome.applied,
                not_an_integer: outcome.not_an_integer,
                carstamp: Some(cs.into()),
            }),
            got => Err(ConvertError::WrongReplyKind {
                expected: "rmw",
                got: Box::new(got),
            }),
        }
    }
}

impl proto::GetReply {
    /// The value read and its carstamp.
    pub fn into_parts(self) -> Result<(Option<Value>, Carstamp), ConvertError> {
        Ok((self.value.map(Value), carstamp(self.carstamp)?))
    }
}

impl proto::PutReply {
    /// The carstamp the write got.
    pub fn into_carstamp(self) -> Result<Carstamp, ConvertError> {
        carstamp(self.carstamp)
    }
}

impl proto::RmwReply {
    /// What the RMW did, and the carstamp it produced.
    pub fn into_outcome(self) -> Result<(RmwOutcome, Carstamp), ConvertError> {
        let cs = carstamp(self.carstamp)?;
        let outcome = RmwOutcome {
            old: self.old.map(Value),
            new: self.new.map(Value),
            applied: self.applied,
            not_an_integer: self.not_an_integer,
        };
        Ok((outcome, cs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cs(ts: u64, writer: u64, rmwc: u32) -> Carstamp {
        Carstamp {
            ts,
            writer: WriterId(writer),
            rmwc,
        }
    }

    #[test]
    fn rmw_requests_round_trip_every_op() {
        let id = OpId {
            client: ClientId(7),
            request: RequestId(9),
        };
        let ops = [
            RmwOp::CompareAndSwap {
                expected: None,
                new: Some(Value::from("")),
            },
            RmwOp::CompareAndSwap {
                expected: Some(Value::from("a")),
                new: None,
            },
            RmwOp::FetchAdd { delta: -3 },
            RmwOp::PutIfAbsent {
                value: Value::from("v"),
            },
        ];
        for op in ops {
            let wire = proto::RmwRequest::from_op(Key::from("k"), id, op.clone());
            let (got_id, request) = wire.into_client_request().unwrap();
            assert_eq!(got_id, id);
            assert_eq!(
                request,
                ClientRequest::Rmw {
                    key: Key::from("k"),
                    op
                }
            );
        }
    }

    #[test]
    fn rmw_requests_without_ids_or_op_are_rejected() {
        let ok = proto::RmwRequest {
            key: b"k".to_vec(),
            client_id: 1,
            request_id: 1,
            op: Some(proto::rmw_request::Op::FetchAdd(proto::FetchAdd {
                delta: 1,
            })),
        };
        let no_client = proto::RmwRequest {
            client_id: 0,
            ..ok.clone()
        };
        let no_request = proto::RmwRequest {
            request_id: 0,
            ..ok.clone()
        };
        let no_op = proto::RmwRequest { op: None, ..ok };
        assert_eq!(
            no_client.into_client_request(),
            Err(ConvertError::ZeroId("client_id"))
        );
        assert_eq!(
            no_request.into_client_request(),
            Err(ConvertError::ZeroId("request_id"))
        );
        let err = no_op.into_client_request().unwrap_err();
        assert_eq!(err, ConvertError::MissingField("op"));
        assert_eq!(
            tonic::Status::from(err).code(),
            tonic::Code::InvalidArgument
        );
    }

    #[test]
    fn empty_value_and_absent_value_stay_distinct() {
        let put = proto::PutRequest {
            key: b"k".to_vec(),
            value: Some(Vec::new()),
        };
        assert_eq!(
            ClientRequest::from(put),
            ClientRequest::Put {
                key: Key::from("k"),
                value: Some(Value(Vec::new()))
            }
        );
        let del = ClientRequest::from(proto::DeleteRequest { key: b"k".to_vec() });
        assert_eq!(
            del,
            ClientRequest::Put {
                key: Key::from("k"),
                value: None
            }
        );
        let reply = ClientReply::Get {
            value: None,
            cs: cs(0, 0, 0),
        };
        let wire = proto::GetReply::try_from(reply).unwrap();
        assert_eq!(wire.value, None);
        assert_eq!(wire.into_parts().unwrap(), (None, cs(0, 0, 0)));
    }

    #[test]
    fn replies_round_trip_and_wrong_kinds_are_refused() {
        let outcome = RmwOutcome {
            old: Some(Value::from_i64(1)),
            new: Some(Value::from_i64(3)),
            applied: true,
            not_an_integer: false,
        };
        let reply = ClientReply::Rmw {
            outcome: outcome.clone(),
            cs: cs(4, 5, 6),
        };
        let wire = proto::RmwReply::try_from(reply.clone()).unwrap();
        assert_eq!(wire.into_outcome().unwrap(), (outcome, cs(4, 5, 6)));
        let put = proto::PutReply::try_from(ClientReply::Put { cs: cs(1, 2, 0) }).unwrap();
        assert_eq!(put.into_carstamp().unwrap(), cs(1, 2, 0));
        assert!(matches!(
            proto::GetReply::try_from(reply),
            Err(ConvertError::WrongReplyKind {
                expected: "get",
                ..
            })
        ));
        let missing = proto::PutReply { carstamp: None };
        assert_eq!(
            missing.into_carstamp(),
            Err(ConvertError::MissingField("carstamp"))
        );
    }
}
