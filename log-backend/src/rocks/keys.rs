//! Column families and key encodings of the RocksDB engine (LOGSTACK.md
//! §1): big-endian integers, so RocksDB's bytewise order is log order.

use crate::error::LogError;
use crate::types::{AppendId, ClientId, Position, StreamId};

/// position -> entry frame.
pub const CF_ENTRIES: &str = "entries";
/// (stream, position) -> empty: the per-stream index.
pub const CF_STREAMS: &str = "streams";
/// (client, seq) -> position: the exactly-once table.
pub const CF_DEDUP: &str = "dedup";
/// Named cells: tail, trim point, sealed flag.
pub const CF_META: &str = "meta";

pub const META_TAIL: &[u8] = b"tail";
pub const META_TRIM: &[u8] = b"trim";
pub const META_SEALED: &[u8] = b"sealed";

pub fn entry_key(p: Position) -> [u8; 8] {
    p.0.to_be_bytes()
}

pub fn stream_key(s: StreamId, p: Position) -> [u8; 16] {
    pair(s.0, p.0)
}

pub fn dedup_key(id: AppendId) -> [u8; 16] {
    pair(id.client.0, id.seq)
}

fn pair(a: u64, b: u64) -> [u8; 16] {
    let mut k = [0; 16];
    k[..8].copy_from_slice(&a.to_be_bytes());
    k[8..].copy_from_slice(&b.to_be_bytes());
    k
}

pub fn u64_value(v: u64) -> [u8; 8] {
    v.to_be_bytes()
}

/// Decodes an 8-byte big-endian value; `what` names it in the error.
pub fn parse_u64(bytes: &[u8], what: &str) -> Result<u64, LogError> {
    let a: [u8; 8] = bytes.try_into().map_err(|_| {
        LogError::CorruptedStore(format!("{what}: expected 8 bytes, got {}", bytes.len()))
    })?;
    Ok(u64::from_be_bytes(a))
}

/// Splits a 16-byte pair key.
pub fn parse_pair(key: &[u8]) -> Option<(u64, u64)> {
    if key.len() != 16 {
        return None;
    }
    let mut a = [0; 8];
    let mut b = [0; 8];
    a.copy_from_slice(&key[..8]);
    b.copy_from_slice(&key[8..]);
    Some((u64::from_be_bytes(a), u64::from_be_bytes(b)))
}

pub fn parse_dedup(key: &[u8], value: &[u8]) -> Result<(AppendId, Position), LogError> {
    let (c, s) = parse_pair(key)
        .ok_or_else(|| LogError::CorruptedStore("dedup key is not 16 bytes".into()))?;
    let p = parse_u64(value, "dedup position")?;
    Ok((AppendId::new(ClientId(c), s), Position(p)))
}
