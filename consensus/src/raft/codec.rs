//! The bytes of a raft log entry: one client command with the replica
//! that proposed it and, for a Gryff RMW, the base collected by its Read1
//! round (PROTOCOL.md 4, "Raft path"). raft-rs stores entry data as
//! opaque bytes; the cores have no serialisation crate, so this is a
//! small explicit format: little-endian integers, length-prefixed byte
//! strings, one tag byte per enum. Decoding checks every length and tag
//! and rejects trailing bytes, so a malformed entry is an error, never a
//! panic.

use crate::instance::Command;
use registers::{
    Carstamp, ClientId, Key, OpId, Register, ReplicaId, RequestId, RmwOp, Value, WriterId,
};

/// Format version, the first byte of every entry.
const VERSION: u8 = 1;

/// What one log entry carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// The replica whose client waits for this entry.
    pub proposer: ReplicaId,
    pub cmd: Command,
    /// Gryff: the largest register a quorum reported for the key before
    /// the proposal. The baselines execute on the store and send zero.
    pub base: Register,
}

/// Why entry bytes could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("entry ends early")]
    Truncated,
    #[error("unknown format version {0}")]
    Version(u8),
    #[error("unknown {what} tag {tag}")]
    Tag { what: &'static str, tag: u8 },
    #[error("{0} bytes left after the entry")]
    Trailing(usize),
}

impl Proposal {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(64);
        w.push(VERSION);
        w.extend_from_slice(&self.proposer.0.to_le_bytes());
        put_command(&mut w, &self.cmd);
        put_value(&mut w, self.base.value.as_ref());
        put_u64(&mut w, self.base.cs.ts);
        put_u64(&mut w, self.base.cs.writer.0);
        w.extend_from_slice(&self.base.cs.rmwc.to_le_bytes());
        w
    }

    pub fn decode(bytes: &[u8]) -> Result<Proposal, CodecError> {
        let mut r = Reader { bytes, at: 0 };
        let version = r.u8()?;
        if version != VERSION {
            return Err(CodecError::Version(version));
        }
        let proposer = ReplicaId(r.u32()?);
        let cmd = r.command()?;
        let value = r.value()?;
        let cs = Carstamp {
            ts: r.u64()?,
            writer: WriterId(r.u64()?),
            rmwc: r.u32()?,
        };
        let left = bytes.len() - r.at;
        if left != 0 {
            return Err(CodecError::Trailing(left));
        }
        Ok(Proposal {
            proposer,
            cmd,
            base: Register::new(value, cs),
        })
    }
}

fn put_u64(w: &mut Vec<u8>, n: u64) {
    w.extend_from_slice(&n.to_le_bytes());
}

fn put_bytes(w: &mut Vec<u8>, b: &[u8]) {
    put_u64(w, b.len() as u64);
    w.extend_from_slice(b);
}

fn put_value(w: &mut Vec<u8>, v: Option<&Value>) {
    match v {
        None => w.push(0),
        Some(v) => {
            w.push(1);
            put_bytes(w, v.as_bytes());
        }
    }
}

fn put_head(w: &mut Vec<u8>, tag: u8, op: &OpId, key: &Key) {
    w.push(tag);
    put_u64(w, op.client.0);
    put_u64(w, op.request.0);
    put_bytes(w, key.as_bytes());
}

fn put_command(w: &mut Vec<u8>, cmd: &Command) {
    match cmd {
        Command::Noop => w.push(0),
        Command::Rmw { op, key, rmw } => {
            put_head(w, 1, op, key);
            match rmw {
                RmwOp::CompareAndSwap { expected, new } => {
                    w.push(0);
                    put_value(w, expected.as_ref());
                    put_value(w, new.as_ref());
                }
                RmwOp::FetchAdd { delta } => {
                    w.push(1);
                    w.extend_from_slice(&delta.to_le_bytes());
                }
                RmwOp::PutIfAbsent { value } => {
                    w.push(2);
                    put_bytes(w, value.as_bytes());
                }
            }
        }
        Command::Get { op, key } => put_head(w, 2, op, key),
        Command::Put { op, key, value } => {
            put_head(w, 3, op, key);
            put_value(w, value.as_ref());
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], CodecError> {
        let end = self.at.checked_add(n).ok_or(CodecError::Truncated)?;
        let slice = self.bytes.get(self.at..end).ok_or(CodecError::Truncated)?;
        self.at = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn bytes(&mut self) -> Result<Vec<u8>, CodecError> {
        let len = usize::try_from(self.u64()?).map_err(|_| CodecError::Truncated)?;
        Ok(self.take(len)?.to_vec())
    }

    fn value(&mut self) -> Result<Option<Value>, CodecError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(Value(self.bytes()?))),
            tag => Err(CodecError::Tag { what: "value", tag }),
        }
    }

    fn head(&mut self) -> Result<(OpId, Key), CodecError> {
        let op = OpId {
            client: ClientId(self.u64()?),
            request: RequestId(self.u64()?),
        };
        Ok((op, Key(self.bytes()?)))
    }

    fn command(&mut self) -> Result<Command, CodecError> {
        match self.u8()? {
            0 => Ok(Command::Noop),
            1 => {
                let (op, key) = self.head()?;
                let rmw = match self.u8()? {
                    0 => RmwOp::CompareAndSwap {
                        expected: self.value()?,
                        new: self.value()?,
                    },
                    1 => RmwOp::FetchAdd {
                        delta: i64::from_le_bytes(self.array()?),
                    },
                    2 => RmwOp::PutIfAbsent {
                        value: Value(self.bytes()?),
                    },
                    tag => return Err(CodecError::Tag { what: "rmw", tag }),
                };
                Ok(Command::Rmw { op, key, rmw })
            }
            2 => {
                let (op, key) = self.head()?;
                Ok(Command::Get { op, key })
            }
            3 => {
                let (op, key) = self.head()?;
                Ok(Command::Put {
                    op,
                    key,
                    value: self.value()?,
                })
            }
            tag => Err(CodecError::Tag {
                what: "command",
                tag,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op() -> OpId {
        OpId {
            client: ClientId(u64::MAX),
            request: RequestId(7),
        }
    }

    fn samples() -> Vec<Proposal> {
        let base = Register::new(
            Some(Value::from("base")),
            Carstamp {
                ts: 9,
                writer: WriterId(1 << 41),
                rmwc: 3,
            },
        );
        let cmds = vec![
            Command::Noop,
            Command::Get {
                op: op(),
                key: Key::from(""),
            },
            Command::Put {
                op: op(),
                key: Key::from("k"),
                value: None,
            },
            Command::Put {
                op: op(),
                key: Key::from("k"),
                value: Some(Value(vec![0, 255, 1])),
            },
            Command::Rmw {
                op: op(),
                key: Key::from("k"),
                rmw: RmwOp::CompareAndSwap {
                    expected: None,
                    new: Some(Value::from("n")),
                },
            },
            Command::Rmw {
                op: op(),
                key: Key::from("k"),
                rmw: RmwOp::FetchAdd { delta: -5 },
            },
            Command::Rmw {
                op: op(),
                key: Key::from("k"),
                rmw: RmwOp::PutIfAbsent {
                    value: Value::from("v"),
                },
            },
        ];
        cmds.into_iter()
            .map(|cmd| Proposal {
                proposer: ReplicaId(4),
                cmd,
                base: base.clone(),
            })
            .collect()
    }

    #[test]
    fn every_command_round_trips() {
        for p in samples() {
            assert_eq!(Proposal::decode(&p.encode()), Ok(p));
        }
    }

    #[test]
    fn every_truncation_and_any_trailing_byte_is_an_error() {
        for p in samples() {
            let bytes = p.encode();
            for cut in 0..bytes.len() {
                assert!(Proposal::decode(&bytes[..cut]).is_err(), "cut at {cut}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(Proposal::decode(&longer), Err(CodecError::Trailing(1)));
        }
    }

    #[test]
    fn bad_tags_versions_and_huge_lengths_are_errors() {
        let mut bytes = samples()[1].encode();
        bytes[0] = 9;
        assert_eq!(Proposal::decode(&bytes), Err(CodecError::Version(9)));
        let mut bytes = samples()[1].encode();
        bytes[5] = 77;
        assert_eq!(
            Proposal::decode(&bytes),
            Err(CodecError::Tag {
                what: "command",
                tag: 77
            })
        );
        // A key length of 2^64 - 1 must not allocate or panic.
        let mut bytes = samples()[1].encode();
        bytes[22..30].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(Proposal::decode(&bytes), Err(CodecError::Truncated));
    }
}
