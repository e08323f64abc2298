//! The on-disk frame of one entry (LOGSTACK.md §1, "checksums on every
//! entry"). Both engines store exactly these bytes, so the checksum path is
//! the same in the simulator and on disk.
//!
//! Layout (integers big-endian, except the CRC):
//!
//! ```text
//! 0      magic 0xE7, format version 1
//! 2..6   CRC32 (little-endian) of bytes 14..end
//! 6..14  position
//! 14..22 client, 22..30 seq
//! 30..32 stream count n, then n stream ids (8 bytes each)
//! then   payload length (4 bytes), payload
//! ```
//!
//! The CRC is computed by the appending thread, before the position is
//! known, so the single group-commit thread does no hashing. The position
//! is outside the CRC but is checked against the key it is stored under,
//! which catches a flipped bit there as well as a misplaced value.

use crate::error::LogError;
use crate::types::{AppendId, ClientId, Entry, Position, StreamId};

const MAGIC: u8 = 0xE7;
const VERSION: u8 = 1;
const CRC_AT: usize = 2;
const POSITION_AT: usize = 6;
const BODY_AT: usize = 14;
/// Fixed bytes of a frame besides streams and payload.
pub const FRAME_OVERHEAD: usize = BODY_AT + 16 + 2 + 4;

/// Encodes an entry whose position is not known yet. `streams` must be
/// sorted and without duplicates (see `normalize_streams`).
pub fn encode(streams: &[StreamId], id: AppendId, payload: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(FRAME_OVERHEAD + 8 * streams.len() + payload.len());
    buf.extend_from_slice(&[MAGIC, VERSION, 0, 0, 0, 0]);
    buf.extend_from_slice(&[0; 8]);
    buf.extend_from_slice(&id.client.0.to_be_bytes());
    buf.extend_from_slice(&id.seq.to_be_bytes());
    // The caller bounds streams by `max_streams_per_entry` (<= u16::MAX).
    buf.extend_from_slice(&(streams.len() as u16).to_be_bytes());
    for s in streams {
        buf.extend_from_slice(&s.0.to_be_bytes());
    }
    // The caller bounds payloads by `max_entry_bytes` (< 2 GiB).
    buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buf.extend_from_slice(payload);
    let crc = crc32fast::hash(&buf[BODY_AT..]);
    buf[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    buf
}

/// Stamps the position into a frame made by `encode`.
pub fn set_position(frame: &mut [u8], position: Position) {
    frame[POSITION_AT..BODY_AT].copy_from_slice(&position.0.to_be_bytes());
}

/// Sorts and deduplicates a stream list, the form stored in frames.
pub fn normalize_streams(streams: &[StreamId]) -> Vec<StreamId> {
    let mut v = streams.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

/// Decodes and verifies the frame stored under `position`.
pub fn decode(position: Position, frame: &[u8]) -> Result<Entry, LogError> {
    let bad = |reason: &str| LogError::Corrupted {
        position,
        reason: reason.to_string(),
    };
    if frame.len() < FRAME_OVERHEAD {
        return Err(bad("frame shorter than its header"));
    }
    if frame[0] != MAGIC || frame[1] != VERSION {
        return Err(bad("bad magic or format version"));
    }
    let stored_crc = u32::from_le_bytes(take4(frame, CRC_AT));
    if crc32fast::hash(&frame[BODY_AT..]) != stored_crc {
        return Err(bad("checksum mismatch"));
    }
    let stored_position = u64::from_be_bytes(take8(frame, POSITION_AT));
    if stored_position != position.0 {
        return Err(bad("frame holds another position"));
    }
    let client = u64::from_be_bytes(take8(frame, BODY_AT));
    let seq = u64::from_be_bytes(take8(frame, BODY_AT + 8));
    let n = u16::from_be_bytes([frame[BODY_AT + 16], frame[BODY_AT + 17]]) as usize;
    let streams_at = BODY_AT + 18;
    let len_at = streams_at + 8 * n;
    if frame.len() < len_at + 4 {
        return Err(bad("stream list runs past the frame"));
    }
    let streams = (0..n)
        .map(|i| StreamId(u64::from_be_bytes(take8(frame, streams_at + 8 * i))))
        .collect::<Vec<_>>();
    let payload_len = u32::from_be_bytes(take4(frame, len_at)) as usize;
    if frame.len() != len_at + 4 + payload_len {
        return Err(bad("payload length does not match the frame"));
    }
    Ok(Entry {
        position,
        streams,
        id: AppendId::new(ClientId(client), seq),
        payload: frame[len_at + 4..].to_vec(),
    })
}

// Callers check the length first; these only turn slices into arrays.
fn take8(b: &[u8], at: usize) -> [u8; 8] {
    let mut a = [0; 8];
    a.copy_from_slice(&b[at..at + 8]);
    a
}

fn take4(b: &[u8], at: usize) -> [u8; 4] {
    let mut a = [0; 4];
    a.copy_from_slice(&b[at..at + 4]);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut f = encode(
            &[StreamId(1), StreamId(9)],
            AppendId::new(ClientId(7), 3),
            b"hello",
        );
        set_position(&mut f, Position(42));
        f
    }

    #[test]
    fn round_trip() {
        let e = decode(Position(42), &sample()).unwrap();
        assert_eq!(e.streams, vec![StreamId(1), StreamId(9)]);
        assert_eq!(e.id, AppendId::new(ClientId(7), 3));
        assert_eq!(e.payload, b"hello");
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let good = sample();
        for byte in 0..good.len() {
            for bit in 0..8 {
                let mut f = good.clone();
                f[byte] ^= 1 << bit;
                assert!(
                    matches!(decode(Position(42), &f), Err(LogError::Corrupted { .. })),
                    "flip of bit {bit} in byte {byte} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn truncation_is_detected() {
        let good = sample();
        for len in 0..good.len() {
            assert!(decode(Position(42), &good[..len]).is_err());
        }
    }

    #[test]
    fn wrong_position_is_detected() {
        assert!(decode(Position(41), &sample()).is_err());
    }
}
