//! The client's configuration: identity, deadlines, probing and the retry
//! budget (PROTOCOL.md 6: retries go to another replica; RMWs keep their id).

use crate::error::ClientError;
use registers::ClientId;
use std::time::Duration;

/// How a [`crate::Client`] behaves. `Default` gives sane values for a
/// geo-replicated cluster (WAN round trips up to a few hundred ms).
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The client session id that RMWs carry, unique across the cluster.
    /// `None` = a random one per `Client::connect` (collisions among 2^64
    /// random ids are negligible). Must not be 0 (the API reserves it).
    pub client_id: Option<ClientId>,
    /// Deadline of every call, over all its attempts, unless a call uses
    /// `Client::with_timeout`.
    pub call_timeout: Duration,
    /// Longest one attempt at one replica may take before the call fails over
    /// to the next replica (capped by what is left of the call's deadline).
    /// Shorter than `call_timeout`, so a replica that hangs leaves time to
    /// try another.
    pub attempt_timeout: Duration,
    /// Bound on opening a connection (TCP and HTTP/2 handshake), and on the
    /// first ping to each replica in `Client::connect`.
    pub connect_timeout: Duration,
    /// Timed pings per replica in `Client::connect`; its RTT is their median.
    pub rtt_probes: u32,
    /// Attempts per call over all replicas, the first included. With fewer
    /// replicas than attempts the list is walked again after a back-off.
    pub max_attempts: u32,
    /// How long a replica that failed an attempt is moved to the end of the
    /// order, so that later calls do not each pay for its failure first.
    pub failed_replica_penalty: Duration,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            client_id: None,
            call_timeout: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            rtt_probes: 3,
            max_attempts: 6,
            failed_replica_penalty: Duration::from_secs(5),
        }
    }
}

impl ClientConfig {
    /// Rejects configurations that cannot work.
    pub fn validate(&self) -> Result<(), ClientError> {
        if self.client_id == Some(ClientId(0)) {
            return Err(ClientError::invalid("client_id 0 is reserved"));
        }
        let positive = [
            ("call_timeout", self.call_timeout),
            ("attempt_timeout", self.attempt_timeout),
            ("connect_timeout", self.connect_timeout),
        ];
        for (name, value) in positive {
            if value.is_zero() {
                return Err(ClientError::invalid(format!("{name} must be positive")));
            }
        }
        if self.rtt_probes == 0 {
            return Err(ClientError::invalid("rtt_probes must be at least 1"));
        }
        if self.max_attempts == 0 {
            return Err(ClientError::invalid("max_attempts must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_zeroes_are_rejected() {
        assert!(ClientConfig::default().validate().is_ok());
        let bad = [
            ClientConfig {
                client_id: Some(ClientId(0)),
                ..ClientConfig::default()
            },
            ClientConfig {
                call_timeout: Duration::ZERO,
                ..ClientConfig::default()
            },
            ClientConfig {
                max_attempts: 0,
                ..ClientConfig::default()
            },
            ClientConfig {
                rtt_probes: 0,
                ..ClientConfig::default()
            },
        ];
        for config in bad {
            assert!(matches!(
                config.validate(),
                Err(ClientError::InvalidArgument { .. })
            ));
        }
    }
}
