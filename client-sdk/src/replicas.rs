//! The replicas a client knows: their channels, measured round trips and
//! recent failures, and the order in which a call tries them (Gryff, NSDI
//! 2020, section 3: clients send to their nearest replica; PROTOCOL.md 6:
//! when it stops answering they go to another).

use crate::config::ClientConfig;
use crate::error::ClientError;
use crate::proto::{PingReply, PingRequest, kv_client::KvClient};
use registers::ReplicaId;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tonic::transport::{Channel, Endpoint};

/// What `Client::connect` learned about one replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaInfo {
    /// The endpoint as used (`http://host:port`).
    pub endpoint: String,
    /// Median of the timed pings; `None` = it did not answer at connect time
    /// (it stays in the list, last, for failover).
    pub rtt: Option<Duration>,
    /// The replica's id and region from its ping reply.
    pub replica_id: Option<ReplicaId>,
    pub region: Option<String>,
}

/// One replica as a call sees it.
pub(crate) struct Replica {
    pub info: ReplicaInfo,
    pub channel: Channel,
    /// When it last failed an attempt, cleared by its next success.
    failed_at: Mutex<Option<Instant>>,
}

impl Replica {
    pub fn mark_failed(&self, now: Instant) {
        *self.failed_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
    }

    pub fn mark_ok(&self) {
        *self.failed_at.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn penalised(&self, now: Instant, penalty: Duration) -> bool {
        let failed_at = *self.failed_at.lock().unwrap_or_else(|p| p.into_inner());
        failed_at.is_some_and(|t| now.saturating_duration_since(t) < penalty)
    }
}

/// `host:port` gets `http://` in front; anything else must parse as a URI.
pub(crate) fn normalize_endpoint(raw: &str) -> Result<String, ClientError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(ClientError::invalid("empty endpoint"));
    }
    let endpoint = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("http://{raw}")
    };
    Endpoint::from_shared(endpoint.clone())
        .map_err(|e| ClientError::invalid(format!("bad endpoint {raw:?}: {e}")))?;
    Ok(endpoint)
}

/// A lazily connecting channel: a replica that is down now can still be
/// reached later, and reconnects happen on the next call after a failure.
fn channel(endpoint: &str, config: &ClientConfig) -> Result<Channel, ClientError> {
    let endpoint = Endpoint::from_shared(endpoint.to_string())
        .map_err(|e| ClientError::invalid(format!("bad endpoint {endpoint:?}: {e}")))?
        .connect_timeout(config.connect_timeout)
        .tcp_nodelay(true)
        // Detects a silently dead connection (a partition) under a long
        // call; generous, since a WAN round trip can take 300 ms.
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5));
    Ok(endpoint.connect_lazy())
}

async fn ping(channel: Channel, timeout: Duration) -> Option<(PingReply, Duration)> {
    let mut request = tonic::Request::new(PingRequest {});
    request.set_timeout(timeout);
    let start = Instant::now();
    let mut kv = KvClient::new(channel);
    match tokio::time::timeout(timeout, kv.ping(request)).await {
        Ok(Ok(reply)) => Some((reply.into_inner(), start.elapsed())),
        _ => None,
    }
}

/// One untimed ping that opens the connection (its handshake would distort
/// the RTT), then `rtt_probes` timed ones; the median resists one outlier.
async fn probe(channel: Channel, config: ClientConfig) -> (Option<PingReply>, Option<Duration>) {
    let Some((first, _)) = ping(channel.clone(), config.connect_timeout).await else {
        return (None, None);
    };
    let mut rtts = Vec::with_capacity(config.rtt_probes as usize);
    for _ in 0..config.rtt_probes {
        if let Some((_, rtt)) = ping(channel.clone(), config.attempt_timeout).await {
            rtts.push(rtt);
        }
    }
    rtts.sort();
    let median = rtts.get(rtts.len().saturating_sub(1) / 2).copied();
    (Some(first), median)
}

/// Opens a channel to every endpoint, probes them all in parallel and
/// returns them nearest first; unreachable ones last, in the given order.
pub(crate) async fn connect_all<S: AsRef<str>>(
    endpoints: &[S],
    config: &ClientConfig,
) -> Result<Vec<Replica>, ClientError> {
    if endpoints.is_empty() {
        return Err(ClientError::invalid("no endpoints given"));
    }
    let mut replicas = Vec::with_capacity(endpoints.len());
    for raw in endpoints {
        let endpoint = normalize_endpoint(raw.as_ref())?;
        replicas.push(Replica {
            channel: channel(&endpoint, config)?,
            info: ReplicaInfo {
                endpoint,
                rtt: None,
                replica_id: None,
                region: None,
            },
            failed_at: Mutex::new(None),
        });
    }
    let mut probes = JoinSet::new();
    for (index, replica) in replicas.iter().enumerate() {
        let (channel, config) = (replica.channel.clone(), config.clone());
        probes.spawn(async move { (index, probe(channel, config).await) });
    }
    // Each probe is bounded by its ping timeouts, so this loop ends.
    while let Some(joined) = probes.join_next().await {
        let Ok((index, (reply, rtt))) = joined else {
            continue; // a panicked probe leaves its replica "unreachable"
        };
        let info = &mut replicas[index].info;
        info.rtt = rtt;
        info.replica_id = reply.as_ref().map(|r| ReplicaId(r.replica_id));
        info.region = reply.map(|r| r.region);
    }
    // Stable: equal RTTs and unreachable replicas keep the caller's order.
    replicas.sort_by_key(|r| r.info.rtt.unwrap_or(Duration::MAX));
    Ok(replicas)
}

/// The order one call tries the replicas in: nearest first, except that
/// replicas that failed within `penalty` go after all the others.
pub(crate) fn attempt_order(replicas: &[Replica], now: Instant, penalty: Duration) -> Vec<usize> {
    let (mut healthy, penalised): (Vec<usize>, Vec<usize>) =
        (0..replicas.len()).partition(|&i| !replicas[i].penalised(now, penalty));
    healthy.extend(penalised);
    healthy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_get_a_scheme_and_garbage_is_refused() {
        assert_eq!(
            normalize_endpoint(" 127.0.0.1:7101 ").unwrap(),
            "http://127.0.0.1:7101"
        );
        assert_eq!(
            normalize_endpoint("http://[::1]:7101").unwrap(),
            "http://[::1]:7101"
        );
        assert!(normalize_endpoint("").is_err());
        assert!(normalize_endpoint("http://bad host:1").is_err());
    }

    #[tokio::test]
    async fn failed_replicas_go_last_until_the_penalty_expires() {
        let config = ClientConfig::default();
        let replicas: Vec<Replica> = ["a:1", "b:1", "c:1"]
            .iter()
            .map(|e| {
                let endpoint = normalize_endpoint(e).unwrap();
                Replica {
                    channel: channel(&endpoint, &config).unwrap(),
                    info: ReplicaInfo {
                        endpoint,
                        rtt: None,
                        replica_id: None,
                        region: None,
                    },
                    failed_at: Mutex::new(None),
                }
            })
            .collect();
        let now = Instant::now();
        let penalty = Duration::from_secs(5);
        assert_eq!(attempt_order(&replicas, now, penalty), vec![0, 1, 2]);
        replicas[0].mark_failed(now);
        assert_eq!(attempt_order(&replicas, now, penalty), vec![1, 2, 0]);
        let later = now + penalty;
        assert_eq!(attempt_order(&replicas, later, penalty), vec![0, 1, 2]);
        replicas[0].mark_ok();
        assert_eq!(attempt_order(&replicas, now, penalty), vec![0, 1, 2]);
    }
}
