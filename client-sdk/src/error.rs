//! The client's typed errors, and the one place where a gRPC `Status` is
//! sorted into "try another replica" or "give up" (PROTOCOL.md 6: a client
//! whose replica stops answering retries at another one).

use std::error::Error as _;
use std::time::Duration;
use tonic::{Code, Status};

/// Why a [`crate::Client`] call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The request is malformed: rejected by a server with INVALID_ARGUMENT,
    /// or by the client itself (bad endpoint, empty endpoint list, bad
    /// config). Never retried: it would fail the same way everywhere.
    #[error("invalid argument: {message}")]
    InvalidArgument { message: String },

    /// The call's deadline passed while an attempt was waiting for a reply
    /// (or before the first one). The operation may still take effect (an
    /// RMW at most once).
    #[error("timed out after {after:?} ({attempts} attempt(s)){}", last_error_suffix(.last_error))]
    Timeout {
        /// Time from the start of the call to giving up.
        after: Duration,
        /// Attempts started, over all replicas.
        attempts: u32,
        /// The failure of the last finished attempt, if any finished.
        last_error: Option<String>,
    },

    /// The replicas refused (unreachable, UNAVAILABLE, ...) and retrying
    /// stopped: the attempt budget (`ClientConfig::max_attempts`) ran out, or
    /// the deadline would pass before the next round. The operation may have
    /// taken effect if a refusal came after the request was sent.
    #[error("no replica available (tried {}): {last_error}", tried.join(", "))]
    Unavailable {
        /// The endpoint of each attempt, in order (an endpoint may repeat).
        tried: Vec<String>,
        /// The failure of the last attempt.
        last_error: String,
    },

    /// A write (put or delete) reached a replica, which then failed before
    /// answering: the write may or may not take effect. It is not retried
    /// at another replica, because a retry gets a new carstamp and could
    /// take effect a second time after a read or an RMW saw the first,
    /// which no linearizable history allows. Read the key, or write again
    /// if at-least-once is what you want. (Gets and RMWs are retried: a
    /// read has no effect of its own, an RMW keeps its id and runs once.)
    #[error(
        "the write may or may not have taken effect ({endpoint} failed after it was sent): {last_error}"
    )]
    OutcomeUnknown {
        endpoint: String,
        last_error: String,
    },

    /// A fetch-and-add found a value that is not an 8-byte integer; the value
    /// was left unchanged.
    #[error("the value is not an 8-byte integer (it has {len} bytes)")]
    NotAnInteger { len: usize },

    /// A replica answered with a reply that breaks the API contract (a
    /// required field missing, an impossible combination).
    #[error("malformed reply from {endpoint}: {message}")]
    Protocol { endpoint: String, message: String },

    /// A replica failed the call with a status that retrying cannot fix
    /// (INTERNAL, UNIMPLEMENTED, FAILED_PRECONDITION, ...).
    #[error("server error from {endpoint}: {code:?}: {message}")]
    Server {
        endpoint: String,
        code: Code,
        message: String,
    },
}

fn last_error_suffix(last_error: &Option<String>) -> String {
    match last_error {
        Some(e) => format!("; last error: {e}"),
        None => String::new(),
    }
}

impl ClientError {
    pub(crate) fn invalid(message: impl Into<String>) -> ClientError {
        ClientError::InvalidArgument {
            message: message.into(),
        }
    }

    pub(crate) fn protocol(endpoint: &str, message: impl Into<String>) -> ClientError {
        ClientError::Protocol {
            endpoint: endpoint.to_string(),
            message: message.into(),
        }
    }
}

/// What one failed attempt means for the call.
#[derive(Debug)]
pub(crate) enum AttemptFailure {
    /// The replica could not serve; another one may. Carries a description
    /// and whether the request certainly never started at the replica.
    Retry { message: String, unsent: bool },
    /// Final: no replica would answer differently.
    Fatal(ClientError),
}

/// Codes a replica (or the local transport) uses for "not now, not here".
/// DEADLINE_EXCEEDED comes from the per-attempt deadline; ABORTED and
/// RESOURCE_EXHAUSTED are transient server conditions; UNKNOWN and
/// CANCELLED are what a connection dropped mid-call turns into.
fn is_retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::ResourceExhausted
            | Code::Unknown
            | Code::Cancelled
    )
}

/// Whether a failed attempt certainly did not start the operation: the
/// connection was refused, or the replica refused it up front (the server
/// answers UNAVAILABLE or RESOURCE_EXHAUSTED only before it hands the
/// operation to the protocol; once started, a failure is DEADLINE_EXCEEDED
/// or ABORTED). Everything else (a reset connection, a timeout) may have
/// come after the operation started.
fn never_started(status: &Status) -> bool {
    let Some(mut cause) = status.source() else {
        return matches!(status.code(), Code::Unavailable | Code::ResourceExhausted);
    };
    loop {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        match cause.source() {
            Some(next) => cause = next,
            None => return false,
        }
    }
}

/// Sorts a failed call's status. A status with a `source` was made locally
/// from a transport error (the replica never answered), so it is retried
/// whatever code tonic gave it (a broken pipe becomes INTERNAL, for one).
pub(crate) fn classify(status: &Status, endpoint: &str) -> AttemptFailure {
    let code = status.code();
    if code == Code::InvalidArgument && status.source().is_none() {
        return AttemptFailure::Fatal(ClientError::invalid(status.message()));
    }
    if is_retryable(code) || status.source().is_some() {
        return AttemptFailure::Retry {
            message: format!("{endpoint}: {code:?}: {}", status.message()),
            unsent: never_started(status),
        };
    }
    AttemptFailure::Fatal(ClientError::Server {
        endpoint: endpoint.to_string(),
        code,
        message: status.message().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_is_final_and_keeps_the_message() {
        match classify(&Status::invalid_argument("key too long"), "e") {
            AttemptFailure::Fatal(ClientError::InvalidArgument { message }) => {
                assert_eq!(message, "key too long")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unavailable_and_deadline_are_retried_internal_is_not() {
        assert!(matches!(
            classify(&Status::unavailable("down"), "e"),
            AttemptFailure::Retry { unsent: true, .. }
        ));
        assert!(matches!(
            classify(&Status::deadline_exceeded("slow"), "e"),
            AttemptFailure::Retry { unsent: false, .. }
        ));
        assert!(matches!(
            classify(&Status::aborted("replica stopped"), "e"),
            AttemptFailure::Retry { unsent: false, .. }
        ));
        assert!(matches!(
            classify(&Status::internal("bug"), "e"),
            AttemptFailure::Fatal(ClientError::Server {
                code: Code::Internal,
                ..
            })
        ));
    }

    /// A transport error wrapping a status, as the channel produces them.
    #[derive(Debug)]
    struct Transport(Status);

    impl std::fmt::Display for Transport {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "transport: {}", self.0)
        }
    }

    impl std::error::Error for Transport {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn local_transport_failures_are_retried_whatever_their_code() {
        let status = Status::from_error(Box::new(Transport(Status::internal("broken pipe"))));
        assert_eq!(status.code(), Code::Internal);
        assert!(matches!(
            classify(&status, "e"),
            AttemptFailure::Retry { unsent: false, .. }
        ));
    }

    /// A transport error caused by an I/O error.
    #[derive(Debug)]
    struct Io(std::io::Error);

    impl std::fmt::Display for Io {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "tcp: {}", self.0)
        }
    }

    impl std::error::Error for Io {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn only_a_refused_connection_or_an_up_front_refusal_means_never_started() {
        let io = |kind| Status::from_error(Box::new(Io(std::io::Error::from(kind))));
        let refused = io(std::io::ErrorKind::ConnectionRefused);
        let reset = io(std::io::ErrorKind::ConnectionReset);
        assert!(never_started(&refused));
        assert!(!never_started(&reset));
        assert!(never_started(&Status::resource_exhausted("over limits")));
        assert!(!never_started(&Status::unknown("h2 stream reset")));
        assert!(!never_started(&Status::cancelled("dropped")));
    }
}
