//! `Client` against fake replicas: nearest selection, failover, deadlines,
//! RMW ids across retries, error mapping, and the typed RMW outcomes.

use crate::fake::{Backend, Fake, Running, closed_endpoint, serve};
use client_sdk::{Client, ClientConfig, ClientError, ClientId};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn config() -> ClientConfig {
    ClientConfig {
        client_id: Some(ClientId(42)),
        call_timeout: Duration::from_secs(2),
        attempt_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_millis(500),
        rtt_probes: 3,
        max_attempts: 4,
        failed_replica_penalty: Duration::from_secs(30),
    }
}

#[tokio::test]
async fn the_nearest_replica_is_ranked_first_and_used() {
    let backend = Arc::new(Backend::default());
    let far = Fake::new(0, &backend);
    *far.knobs.ping_delay.lock().unwrap() = Duration::from_millis(60);
    let near = Fake::new(1, &backend);
    let (far_srv, near_srv) = (serve(far.clone()).await, serve(near.clone()).await);
    // The far one is listed first: order must come from the RTTs.
    let endpoints = vec![far_srv.endpoint.clone(), near_srv.endpoint.clone()];
    let client = Client::connect(&endpoints, config()).await.unwrap();
    let replicas = client.replicas();
    assert_eq!(replicas[0].endpoint, near_srv.endpoint);
    assert_eq!(replicas[0].replica_id, Some(registers::ReplicaId(1)));
    assert_eq!(replicas[0].region.as_deref(), Some("region-1"));
    assert!(replicas[1].rtt.unwrap() >= Duration::from_millis(60));
    assert!(replicas[0].rtt.unwrap() < replicas[1].rtt.unwrap());
    client.put("k", "v").await.unwrap();
    assert_eq!(client.get("k").await.unwrap(), Some(b"v".to_vec()));
    assert_eq!((near.ops(), far.ops()), (2, 0));
}

#[tokio::test]
async fn unreachable_replicas_go_last() {
    let backend = Arc::new(Backend::default());
    let up = Fake::new(3, &backend);
    let srv = serve(up.clone()).await;
    let endpoints = vec![closed_endpoint().await, srv.endpoint.clone()];
    let client = Client::connect(&endpoints, config()).await.unwrap();
    let replicas = client.replicas();
    assert_eq!(replicas[0].endpoint, srv.endpoint);
    assert_eq!(replicas[1].endpoint, endpoints[0]);
    assert_eq!(replicas[1].rtt, None);
    assert_eq!(client.get("k").await.unwrap(), None);
    assert_eq!(up.ops(), 1);
}

#[tokio::test]
async fn an_unavailable_replica_fails_over_and_is_avoided_afterwards() {
    let backend = Arc::new(Backend::default());
    let refusing = Fake::new(0, &backend);
    refusing.knobs.refuse_ops.store(u32::MAX, Ordering::SeqCst);
    let good = Fake::new(1, &backend);
    *good.knobs.ping_delay.lock().unwrap() = Duration::from_millis(40);
    let (r_srv, g_srv) = (serve(refusing.clone()).await, serve(good.clone()).await);
    let endpoints = vec![r_srv.endpoint.clone(), g_srv.endpoint.clone()];
    let client = Client::connect(&endpoints, config()).await.unwrap();
    assert_eq!(client.replicas()[0].endpoint, r_srv.endpoint);
    client.put("k", "v").await.unwrap();
    assert_eq!((refusing.ops(), good.ops()), (1, 1));
    // The failed replica now goes last: the next call does not pay for it.
    assert_eq!(client.get("k").await.unwrap(), Some(b"v".to_vec()));
    assert_eq!((refusing.ops(), good.ops()), (1, 2));
}

#[tokio::test]
async fn a_replica_that_dies_after_connect_is_failed_over() {
    let backend = Arc::new(Backend::default());
    let first = Fake::new(0, &backend);
    let second = Fake::new(1, &backend);
    *second.knobs.ping_delay.lock().unwrap() = Duration::from_millis(40);
    let (f_srv, s_srv) = (serve(first.clone()).await, serve(second.clone()).await);
    let endpoints = vec![f_srv.endpoint.clone(), s_srv.endpoint.clone()];
    let client = Client::connect(&endpoints, config()).await.unwrap();
    assert_eq!(client.replicas()[0].endpoint, f_srv.endpoint);
    f_srv.stop().await;
    client.put("k", "after").await.unwrap();
    assert_eq!(second.ops(), 1);
    assert_eq!(client.get("k").await.unwrap(), Some(b"after".to_vec()));
}

#[tokio::test]
async fn a_replica_that_never_answers_times_out_at_the_deadline() {
    let backend = Arc::new(Backend::default());
    let silent = Fake::new(0, &backend);
    silent.knobs.hang_ops.store(true, Ordering::SeqCst);
    let srv = serve(silent.clone()).await;
    let cfg = ClientConfig {
        call_timeout: Duration::from_millis(500),
        ..config()
    };
    let client = Client::connect(&[srv.endpoint.as_str()], cfg)
        .await
        .unwrap();
    let start = Instant::now();
    let err = client.get("k").await.unwrap_err();
    let elapsed = start.elapsed();
    match err {
        ClientError::Timeout {
            after, attempts, ..
        } => {
            assert!(after >= Duration::from_millis(500), "{after:?}");
            assert!(attempts >= 1);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
    // A per-call override shortens the deadline.
    let start = Instant::now();
    let err = client
        .with_timeout(Duration::from_millis(100))
        .put("k", "v")
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(100), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(450), "{elapsed:?}");
}

/// A client (attempt timeout 150 ms) whose nearest replica hangs on every
/// operation and whose other replica answers.
struct HangingFirst {
    client: Client,
    silent: Fake,
    good: Fake,
    silent_endpoint: String,
    _servers: (Running, Running),
}

async fn hanging_first() -> HangingFirst {
    let backend = Arc::new(Backend::default());
    let silent = Fake::new(0, &backend);
    silent.knobs.hang_ops.store(true, Ordering::SeqCst);
    let good = Fake::new(1, &backend);
    *good.knobs.ping_delay.lock().unwrap() = Duration::from_millis(40);
    let (s_srv, g_srv) = (serve(silent.clone()).await, serve(good.clone()).await);
    let cfg = ClientConfig {
        attempt_timeout: Duration::from_millis(150),
        ..config()
    };
    let endpoints = vec![s_srv.endpoint.clone(), g_srv.endpoint.clone()];
    let client = Client::connect(&endpoints, cfg).await.unwrap();
    HangingFirst {
        client,
        silent,
        good,
        silent_endpoint: s_srv.endpoint.clone(),
        _servers: (s_srv, g_srv),
    }
}

#[tokio::test]
async fn a_hanging_replica_is_abandoned_after_the_attempt_timeout() {
    let HangingFirst {
        client,
        silent,
        good,
        _servers: _alive, // a named binding keeps the servers running
        ..
    } = hanging_first().await;
    let start = Instant::now();
    client.get("k").await.unwrap();
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(150), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1000), "{elapsed:?}");
    assert_eq!((silent.ops(), good.ops()), (1, 1));
}

#[tokio::test]
async fn a_put_that_may_have_started_is_not_retried_elsewhere() {
    let HangingFirst {
        client,
        silent,
        good,
        silent_endpoint,
        _servers: _alive,
    } = hanging_first().await;
    // The hanging replica got the write: retrying it at the other one
    // could apply it twice under two carstamps.
    let err = client.put("k", "v").await.unwrap_err();
    match &err {
        ClientError::OutcomeUnknown { endpoint, .. } => assert_eq!(endpoint, &silent_endpoint),
        other => panic!("expected OutcomeUnknown, got {other:?}"),
    }
    assert_eq!((silent.ops(), good.ops()), (1, 0));
}

#[tokio::test]
async fn a_retried_rmw_keeps_its_id_and_applies_once() {
    let backend = Arc::new(Backend::default());
    let lossy = Fake::new(0, &backend);
    // Executes the RMW, then "loses" the reply: only dedup saves the count.
    lossy.knobs.lose_rmw_replies.store(1, Ordering::SeqCst);
    let other = Fake::new(1, &backend);
    *other.knobs.ping_delay.lock().unwrap() = Duration::from_millis(40);
    let (l_srv, o_srv) = (serve(lossy.clone()).await, serve(other.clone()).await);
    let endpoints = vec![l_srv.endpoint.clone(), o_srv.endpoint.clone()];
    let client = Client::connect(&endpoints, config()).await.unwrap();
    let out = client.fetch_add("n", 5).await.unwrap();
    assert_eq!((out.old, out.new), (0, 5));
    let ids = backend.rmw_ids();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[0].client, ClientId(42));
    assert_eq!(
        client.get("n").await.unwrap(),
        Some(5i64.to_le_bytes().to_vec())
    );
    // The next RMW is a new operation with a larger request id.
    client.fetch_add("n", 1).await.unwrap();
    let ids = backend.rmw_ids();
    assert_eq!(ids.len(), 3);
    assert!(ids[2].request > ids[1].request);
}

#[tokio::test]
async fn a_refused_rmw_is_retried_with_the_same_id() {
    let backend = Arc::new(Backend::default());
    let refusing = Fake::new(0, &backend);
    refusing.knobs.refuse_ops.store(1, Ordering::SeqCst);
    let srv = serve(refusing.clone()).await;
    let client = Client::connect(&[srv.endpoint.as_str()], config())
        .await
        .unwrap();
    let out = client.put_if_absent("k", "v").await.unwrap();
    assert!(out.applied);
    let ids = backend.rmw_ids();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
}

#[tokio::test]
async fn invalid_argument_is_typed_and_not_retried() {
    let backend = Arc::new(Backend::default());
    let a = Fake::new(0, &backend);
    let b = Fake::new(1, &backend);
    let (a_srv, b_srv) = (serve(a.clone()).await, serve(b.clone()).await);
    let endpoints = vec![a_srv.endpoint.clone(), b_srv.endpoint.clone()];
    let client = Client::connect(&endpoints, config()).await.unwrap();
    let err = client.put("bad-key", "v").await.unwrap_err();
    match err {
        ClientError::InvalidArgument { message } => assert!(message.contains("bad")),
        other => panic!("{other:?}"),
    }
    assert_eq!(a.ops() + b.ops(), 1);
}

#[tokio::test]
async fn all_replicas_refusing_is_unavailable_with_every_attempt_listed() {
    let backend = Arc::new(Backend::default());
    let a = Fake::new(0, &backend);
    a.knobs.refuse_ops.store(u32::MAX, Ordering::SeqCst);
    let a_srv = serve(a.clone()).await;
    let closed = closed_endpoint().await;
    let cfg = ClientConfig {
        max_attempts: 3,
        ..config()
    };
    let endpoints = vec![a_srv.endpoint.clone(), closed.clone()];
    let client = Client::connect(&endpoints, cfg).await.unwrap();
    match client.get("k").await.unwrap_err() {
        ClientError::Unavailable { tried, last_error } => {
            assert_eq!(
                tried,
                vec![a_srv.endpoint.clone(), closed, a_srv.endpoint.clone()]
            );
            assert!(last_error.contains("fake refuses"), "{last_error}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(a.ops(), 2);
}

#[tokio::test]
async fn a_reply_without_carstamp_is_a_protocol_error() {
    let backend = Arc::new(Backend::default());
    let broken = Fake::new(0, &backend);
    broken.knobs.omit_carstamp.store(true, Ordering::SeqCst);
    let srv = serve(broken).await;
    let client = Client::connect(&[srv.endpoint.as_str()], config())
        .await
        .unwrap();
    let err = client.get("k").await.unwrap_err();
    assert!(matches!(err, ClientError::Protocol { .. }), "{err:?}");
}

#[tokio::test]
async fn rmw_outcomes_are_typed() {
    let backend = Arc::new(Backend::default());
    let srv = serve(Fake::new(0, &backend)).await;
    let client = Client::connect(&[srv.endpoint.as_str()], config())
        .await
        .unwrap();
    let cas = client
        .compare_and_swap("k", None, Some(b"a"))
        .await
        .unwrap();
    assert!(cas.applied && cas.old.is_none() && cas.new.as_deref() == Some(&b"a"[..]));
    let miss = client
        .compare_and_swap("k", Some(b"x"), Some(b"b"))
        .await
        .unwrap();
    assert!(!miss.applied);
    assert_eq!(miss.old.as_deref(), Some(&b"a"[..]));
    let pia = client.put_if_absent("k", "z").await.unwrap();
    assert!(!pia.applied);
    assert_eq!(pia.value, b"a".to_vec());
    assert!(cas.carstamp < pia.carstamp);
    let err = client.fetch_add("k", 1).await.unwrap_err();
    assert_eq!(err, ClientError::NotAnInteger { len: 1 });
    let del = client
        .compare_and_swap("k", Some(b"a"), None)
        .await
        .unwrap();
    assert!(del.applied && del.new.is_none());
    assert_eq!(client.get("k").await.unwrap(), None);
    let add = client.fetch_add("c", -7).await.unwrap();
    assert_eq!((add.old, add.new), (0, -7));
    client.put("e", "").await.unwrap();
    assert_eq!(client.get("e").await.unwrap(), Some(Vec::new()));
    client.delete("e").await.unwrap();
    assert_eq!(client.get_detailed("e").await.unwrap().value, None);
}

#[tokio::test]
async fn bad_input_to_connect_is_invalid_argument() {
    let err = Client::connect::<&str>(&[], config()).await.unwrap_err();
    assert!(matches!(err, ClientError::InvalidArgument { .. }));
    let err = Client::connect(&["http://bad host:1"], config())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidArgument { .. }));
    let cfg = ClientConfig {
        client_id: Some(ClientId(0)),
        ..config()
    };
    let err = Client::connect(&["127.0.0.1:1"], cfg).await.unwrap_err();
    assert!(matches!(err, ClientError::InvalidArgument { .. }));
}

#[tokio::test]
async fn clones_share_the_request_counter() {
    let backend = Arc::new(Backend::default());
    let srv = serve(Fake::new(0, &backend)).await;
    let cfg = ClientConfig {
        client_id: None,
        ..config()
    };
    let client = Client::connect(&[srv.endpoint.as_str()], cfg)
        .await
        .unwrap();
    assert_ne!(client.client_id(), ClientId(0));
    let other = client.clone();
    client.fetch_add("n", 1).await.unwrap();
    other.fetch_add("n", 1).await.unwrap();
    let ids = backend.rmw_ids();
    assert_eq!(ids[0].client, ids[1].client);
    assert!(ids[1].request > ids[0].request);
}
