//! The encoding of protocol messages inside `PeerBatch.messages`: postcard
//! (compact serde) of the replica's `PeerMsg`. Decoding is bounded and
//! strict: an oversized message, undecodable bytes, an unknown variant or
//! trailing bytes are rejected (the caller counts them), never a panic.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a peer message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message of {size} bytes is over peer.max_message_bytes = {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("undecodable message: {0}")]
    Malformed(String),
    #[error("{0} trailing bytes after the message")]
    Trailing(usize),
}

pub fn encode<M: Serialize>(msg: &M) -> Result<Vec<u8>, String> {
    postcard::to_stdvec(msg).map_err(|e| e.to_string())
}

pub fn decode<M: DeserializeOwned>(bytes: &[u8], max_bytes: usize) -> Result<M, DecodeError> {
    if bytes.len() > max_bytes {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit: max_bytes,
        });
    }
    let (msg, rest) =
        postcard::take_from_bytes(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DecodeError::Trailing(rest.len()));
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use registers::{Key, OpRef, Phase, RegisterMsg};
    use replica::PeerMsg;

    fn sample() -> PeerMsg {
        PeerMsg::Register(RegisterMsg::Write1 {
            op_ref: OpRef {
                seq: 3,
                phase: Phase::Write1,
            },
            key: Key::from("k"),
        })
    }

    #[test]
    fn peer_messages_round_trip() {
        let bytes = encode(&sample()).unwrap();
        assert_eq!(decode::<PeerMsg>(&bytes, 1 << 20), Ok(sample()));
    }

    #[test]
    fn malformed_oversized_unknown_and_trailing_input_is_rejected() {
        let bytes = encode(&sample()).unwrap();
        assert!(matches!(
            decode::<PeerMsg>(&bytes, 2),
            Err(DecodeError::TooLarge { .. })
        ));
        assert!(matches!(
            decode::<PeerMsg>(&bytes[..bytes.len() - 1], 1 << 20),
            Err(DecodeError::Malformed(_))
        ));
        // Variant 9 of PeerMsg does not exist.
        assert!(matches!(
            decode::<PeerMsg>(&[9, 0, 0], 1 << 20),
            Err(DecodeError::Malformed(_))
        ));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            decode::<PeerMsg>(&longer, 1 << 20),
            Err(DecodeError::Trailing(1))
        );
        assert!(decode::<PeerMsg>(&[], 1 << 20).is_err());
    }
}
