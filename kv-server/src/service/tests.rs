//! The Kv service against a fake driver: limits, ids, overload, timeouts.

use super::*;
use client_sdk::proto::rmw_request::Op;
use client_sdk::proto::{CompareAndSwap, FetchAdd};
use registers::Carstamp;

/// A service whose driver answers every op (if `answer`) and records ids.
fn service(limits: Limits, answer: bool) -> (KvService, Arc<std::sync::Mutex<Vec<OpId>>>) {
    let (tx, mut rx) = mpsc::channel::<ClientInput>(16);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some(input) = rx.recv().await {
            log.lock().unwrap().push(input.op);
            let reply = match input.req {
                ClientRequest::Get { .. } => ClientReply::Get {
                    value: None,
                    cs: Carstamp::ZERO,
                },
                ClientRequest::Put { .. } => ClientReply::Put { cs: Carstamp::ZERO },
                ClientRequest::Rmw { op, .. } => ClientReply::Rmw {
                    outcome: op.apply(None),
                    cs: Carstamp::ZERO,
                },
            };
            if answer {
                let _ = input.reply.send(reply);
            } else {
                held.push(input.reply);
            }
        }
    });
    let svc = KvService::new(ReplicaId(2), "eu".into(), limits, tx, Metrics::new());
    (svc, seen)
}

fn small_limits() -> Limits {
    Limits {
        max_key_bytes: 8,
        max_value_bytes: 16,
        ..Limits::default()
    }
}

fn put(key: usize, value: usize) -> Request<PutRequest> {
    Request::new(PutRequest {
        key: vec![b'k'; key],
        value: Some(vec![b'v'; value]),
    })
}

fn rmw(client_id: u64, op: Op) -> Request<RmwRequest> {
    Request::new(RmwRequest {
        key: b"k".to_vec(),
        client_id,
        request_id: 1,
        op: Some(op),
    })
}

#[tokio::test]
async fn oversized_keys_and_values_are_invalid_arguments_naming_the_limit() {
    let (svc, seen) = service(small_limits(), true);
    assert!(svc.put(put(8, 16)).await.is_ok());
    let key = svc.put(put(9, 1)).await.unwrap_err();
    assert_eq!(key.code(), tonic::Code::InvalidArgument);
    assert!(
        key.message().contains("limits.max_key_bytes = 8"),
        "{}",
        key.message()
    );
    let value = svc.put(put(1, 17)).await.unwrap_err();
    assert_eq!(value.code(), tonic::Code::InvalidArgument);
    assert!(value.message().contains("limits.max_value_bytes = 16"));
    let get = svc
        .get(Request::new(GetRequest { key: vec![0; 100] }))
        .await
        .unwrap_err();
    assert_eq!(get.code(), tonic::Code::InvalidArgument);
    let cas = Op::CompareAndSwap(CompareAndSwap {
        expected: None,
        new: Some(vec![0; 17]),
    });
    let err = svc.rmw(rmw(5, cas)).await.unwrap_err();
    assert!(
        err.message().contains("new is 17 bytes"),
        "{}",
        err.message()
    );
    // Only the valid put reached the replica.
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn gets_and_puts_get_distinct_local_ids_and_rmws_keep_the_clients() {
    let (svc, seen) = service(Limits::default(), true);
    svc.get(Request::new(GetRequest { key: b"a".to_vec() }))
        .await
        .unwrap();
    svc.put(put(1, 1)).await.unwrap();
    svc.delete(Request::new(DeleteRequest { key: b"a".to_vec() }))
        .await
        .unwrap();
    let add = Op::FetchAdd(FetchAdd { delta: 2 });
    let reply = svc.rmw(rmw(77, add)).await.unwrap().into_inner();
    assert!(reply.applied);
    let ids = seen.lock().unwrap().clone();
    for (i, id) in ids[..3].iter().enumerate() {
        let n = i as u64 + 1;
        assert_eq!(id.client, ClientId(LOCAL_CLIENT_BASE | 2 << 24 | n));
        assert_eq!(id.request, RequestId(n));
    }
    assert_eq!(ids[3].client, ClientId(77));
}

#[tokio::test]
async fn reserved_and_zero_rmw_ids_are_refused() {
    let (svc, seen) = service(Limits::default(), true);
    let add = || Op::FetchAdd(FetchAdd { delta: 1 });
    let reserved = svc
        .rmw(rmw(LOCAL_CLIENT_BASE | 2, add()))
        .await
        .unwrap_err();
    assert_eq!(reserved.code(), tonic::Code::InvalidArgument);
    assert!(reserved.message().contains("reserved"));
    let zero = svc.rmw(rmw(0, add())).await.unwrap_err();
    assert_eq!(zero.code(), tonic::Code::InvalidArgument);
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn overload_and_silence_are_reported_not_hung() {
    let limits = Limits {
        max_inflight_ops: 1,
        request_timeout_ms: 100,
        ..Limits::default()
    };
    let (svc, _) = service(limits, false);
    let svc = Arc::new(svc);
    let first = tokio::spawn({
        let svc = svc.clone();
        async move { svc.put(put(1, 1)).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let busy = svc.put(put(1, 1)).await.unwrap_err();
    assert_eq!(busy.code(), tonic::Code::ResourceExhausted);
    assert!(busy.message().contains("limits.max_inflight_ops = 1"));
    let timed_out = first.await.unwrap().unwrap_err();
    assert_eq!(timed_out.code(), tonic::Code::DeadlineExceeded);
    assert!(
        timed_out
            .message()
            .contains("limits.request_timeout_ms = 100")
    );
}

#[tokio::test]
async fn ping_names_the_replica_and_region() {
    let (svc, _) = service(Limits::default(), true);
    let pong = svc
        .ping(Request::new(PingRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((pong.replica_id, pong.region.as_str()), (2, "eu"));
}
