//! The `Client` handle and its one retry loop: every call has a deadline,
//! starts at the nearest healthy replica and fails over to the next on a
//! timeout or an unavailable replica (PROTOCOL.md 6). The typed operations
//! are in `ops.rs`.

use crate::config::ClientConfig;
use crate::error::{AttemptFailure, ClientError, classify};
use crate::proto::kv_client::KvClient;
use crate::replicas::{self, Replica, ReplicaInfo};
use registers::{ClientId, OpId, RequestId};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic::{Code, Response, Status};

/// First pause after every replica failed once; doubled per round, capped.
const ROUND_BACKOFF_FIRST: Duration = Duration::from_millis(20);
const ROUND_BACKOFF_MAX: Duration = Duration::from_millis(500);

/// An async client of the store. Cheap to clone: clones share the
/// connections, the client id and the request counter.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    /// This handle's deadline per call (see [`Client::with_timeout`]).
    call_timeout: Duration,
}

struct Shared {
    client_id: ClientId,
    /// The next RMW request id; ids start at 1 (0 is invalid on the wire).
    next_request: AtomicU64,
    /// Nearest first, as measured at connect time.
    replicas: Vec<Replica>,
    config: ClientConfig,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.shared.client_id)
            .field("replicas", &self.replicas())
            .field("call_timeout", &self.call_timeout)
            .finish()
    }
}

impl Client {
    /// Opens channels to every endpoint (`http://host:port` or `host:port`),
    /// times pings to each in parallel and orders the replicas nearest
    /// first. Replicas that do not answer are kept, last, for failover, so
    /// this succeeds even if none answers yet; it fails only on invalid
    /// input (no endpoints, a malformed endpoint, an invalid config).
    pub async fn connect<S: AsRef<str>>(
        endpoints: &[S],
        config: ClientConfig,
    ) -> Result<Client, ClientError> {
        config.validate()?;
        let replicas = replicas::connect_all(endpoints, &config).await?;
        let client_id = config.client_id.unwrap_or_else(random_client_id);
        let call_timeout = config.call_timeout;
        let shared = Shared {
            client_id,
            next_request: AtomicU64::new(1),
            replicas,
            config,
        };
        Ok(Client {
            shared: Arc::new(shared),
            call_timeout,
        })
    }

    /// A handle whose calls have deadline `timeout` instead of the
    /// configured `call_timeout`; it shares everything else with `self`.
    pub fn with_timeout(&self, timeout: Duration) -> Client {
        Client {
            shared: Arc::clone(&self.shared),
            call_timeout: timeout,
        }
    }

    /// The id this client's RMWs carry.
    pub fn client_id(&self) -> ClientId {
        self.shared.client_id
    }

    /// The replicas, nearest first, with what connect measured.
    pub fn replicas(&self) -> Vec<ReplicaInfo> {
        self.shared
            .replicas
            .iter()
            .map(|r| r.info.clone())
            .collect()
    }

    /// The deadline of this handle's calls.
    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// A fresh (client, request) id. Increasing per client; concurrent calls
    /// on clones may of course finish in any order.
    pub(crate) fn next_op_id(&self) -> OpId {
        let request = self.shared.next_request.fetch_add(1, Ordering::Relaxed);
        OpId {
            client: self.shared.client_id,
            request: RequestId(request),
        }
    }

    /// Runs one call with failover: `send` is invoked with a client for the
    /// chosen replica and the request (the same request every attempt: an
    /// RMW keeps its id). Returns the reply and the endpoint that gave it.
    /// With [`Replay::OnlyUnsent`], an attempt that may have started the
    /// operation ends the call with [`ClientError::OutcomeUnknown`].
    pub(crate) async fn call<Req, Rep, F, Fut>(
        &self,
        request: Req,
        replay: Replay,
        send: F,
    ) -> Result<(Rep, String), ClientError>
    where
        Req: Clone,
        F: Fn(KvClient<Channel>, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<Response<Rep>, Status>>,
    {
        let shared = &*self.shared;
        let start = Instant::now();
        let deadline = start + self.call_timeout;
        let order = replicas::attempt_order(
            &shared.replicas,
            start,
            shared.config.failed_replica_penalty,
        );
        let max_attempts = shared.config.max_attempts;
        let mut failures = Failures::new(start);
        let mut backoff = ROUND_BACKOFF_FIRST;
        for attempt in 0..max_attempts {
            let position = attempt as usize % order.len();
            if attempt > 0 && position == 0 {
                // Every replica failed this round: give them a moment, unless
                // the deadline would pass during the pause anyway.
                if deadline.saturating_duration_since(Instant::now()) <= backoff {
                    return Err(failures.into_error(attempt));
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ROUND_BACKOFF_MAX);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(failures.into_error(attempt));
            }
            let remaining = deadline - now;
            // The last attempt may use all the time left; earlier ones are
            // cut short so a hanging replica leaves time for another.
            let budget = if attempt + 1 == max_attempts {
                remaining
            } else {
                remaining.min(shared.config.attempt_timeout)
            };
            let replica = &shared.replicas[order[position]];
            let endpoint = &replica.info.endpoint;
            failures.tried.push(endpoint.clone());
            let mut req = tonic::Request::new(request.clone());
            req.set_timeout(budget);
            let sent = send(KvClient::new(replica.channel.clone()), req);
            // tonic enforces the grpc-timeout it sends, too (as CANCELLED),
            // racing our timer: an attempt that used its budget timed out.
            let used_budget = || now.elapsed() >= budget;
            // A write that may have started is not tried again: it ends
            // here, as a Timeout if the call's own deadline cut it (this
            // attempt had all the time left), else as OutcomeUnknown.
            let may_have_started = |message: String| {
                replica.mark_failed(Instant::now());
                if budget == remaining {
                    ClientError::Timeout {
                        after: start.elapsed(),
                        attempts: attempt + 1,
                        last_error: Some(message),
                    }
                } else {
                    outcome_unknown(endpoint, message)
                }
            };
            let (failure, timed_out) = match tokio::time::timeout(budget, sent).await {
                Ok(Ok(reply)) => {
                    replica.mark_ok();
                    return Ok((reply.into_inner(), endpoint.clone()));
                }
                Ok(Err(status)) => match classify(&status, endpoint) {
                    AttemptFailure::Fatal(e) => return Err(e),
                    AttemptFailure::Retry { message, unsent } => {
                        if !unsent && replay == Replay::OnlyUnsent {
                            return Err(may_have_started(message));
                        }
                        (
                            message,
                            status.code() == Code::DeadlineExceeded || used_budget(),
                        )
                    }
                },
                Err(_) => {
                    let message = format!("{endpoint}: no reply within {budget:?}");
                    if replay == Replay::OnlyUnsent {
                        return Err(may_have_started(message));
                    }
                    (message, true)
                }
            };
            replica.mark_failed(Instant::now());
            failures.last_error = Some(failure);
            failures.last_timed_out = timed_out;
        }
        Err(failures.into_error(max_attempts))
    }
}

/// Which failed attempts a call may repeat at another replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Any: the operation has no effect (get) or runs at most once
    /// whatever the retries (an RMW keeps its id).
    Safe,
    /// Only attempts that certainly never started: a write retried under a
    /// new carstamp could take effect twice.
    OnlyUnsent,
}

fn outcome_unknown(endpoint: &str, last_error: String) -> ClientError {
    ClientError::OutcomeUnknown {
        endpoint: endpoint.to_string(),
        last_error,
    }
}

/// The failed attempts of one call, and the error they add up to.
struct Failures {
    start: Instant,
    /// The endpoint of every attempt, in order.
    tried: Vec<String>,
    last_error: Option<String>,
    /// Whether the last attempt ran out of time (rather than being refused).
    last_timed_out: bool,
}

impl Failures {
    fn new(start: Instant) -> Failures {
        Failures {
            start,
            tried: Vec::new(),
            last_error: None,
            last_timed_out: false,
        }
    }

    /// `Timeout` if time ran out during an attempt (or before any), else
    /// `Unavailable`: the replicas said no and retrying was cut off by the
    /// attempt budget or by a deadline shorter than the next pause.
    fn into_error(self, attempts: u32) -> ClientError {
        match self.last_error {
            Some(last_error) if !self.last_timed_out => ClientError::Unavailable {
                tried: self.tried,
                last_error,
            },
            last_error => ClientError::Timeout {
                after: self.start.elapsed(),
                attempts,
                last_error,
            },
        }
    }
}

/// A random non-zero client id (0 is invalid on the wire; mapping it to 1
/// costs one id in 2^64).
fn random_client_id() -> ClientId {
    ClientId(rand::random::<u64>().max(1))
}
