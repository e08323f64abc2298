//! The history recorders.

use crate::support::*;
use registers::{ClientId, ClientReply, ClientRequest, Key};
use std::thread;
use tests::linearizability::{
    CheckConfig, HistoryError, HistoryRecorder, Input, Output, SharedRecorder, check,
};

#[test]
fn recorder_builds_the_history_and_rejects_bad_completions() {
    let mut r = HistoryRecorder::new();
    let a = r.invoke(ClientId(1), Key::from("k"), 10, Input::Put(Some(v("a"))));
    let b = r.invoke(ClientId(2), Key::from("k"), 12, Input::Get);
    let _pending = r.invoke(ClientId(3), Key::from("k"), 13, Input::Get);
    r.complete(a, 20, Output::Put).unwrap();
    assert!(matches!(
        r.complete(a, 21, Output::Put),
        Err(HistoryError::BadHandle(_))
    ));
    assert!(matches!(
        r.complete(b, 30, Output::Put),
        Err(HistoryError::OutputMismatch { index: 1, .. })
    ));
    assert!(matches!(
        r.complete(b, 5, Output::Get(None)),
        Err(HistoryError::ReturnBeforeCall { index: 1, .. })
    ));
    r.complete(b, 30, Output::Get(Some(v("a")))).unwrap();
    let ops = r.into_operations();
    assert_eq!(ops.len(), 3);
    assert_eq!(ops[1].ret_time(), Some(30));
    assert!(ops[2].ret.is_none());
    let report = check(&ops, &CheckConfig::default()).unwrap();
    assert!(report.is_linearizable());
}

#[test]
fn shared_recorder_from_many_threads() {
    let r = SharedRecorder::new();
    thread::scope(|s| {
        for t in 0..8u64 {
            let r = r.clone();
            s.spawn(move || {
                for i in 0..50u64 {
                    let key = format!("t{t}");
                    let now = i * 10;
                    let request = ClientRequest::Put {
                        key: Key(key.clone().into_bytes()),
                        value: Some(int(i as i64)),
                    };
                    let h = r.invoke_request(ClientId(t), now, &request);
                    let reply = ClientReply::Put {
                        cs: registers::Carstamp::default(),
                    };
                    r.complete_reply(h, now + 5, &reply).unwrap();
                    let h = r.invoke(ClientId(t), Key(key.into_bytes()), now + 6, Input::Get);
                    r.complete(h, now + 9, Output::Get(Some(int(i as i64))))
                        .unwrap();
                }
            });
        }
    });
    let ops = r.snapshot();
    assert_eq!(ops.len(), 800);
    assert!(
        check(&ops, &CheckConfig::default())
            .unwrap()
            .is_linearizable()
    );
}

#[test]
fn malformed_histories_are_errors_not_verdicts() {
    let mut bad = get(1, "k", 10, 20, None);
    bad.ret.as_mut().unwrap().time = 5;
    assert!(matches!(
        check(&[bad], &CheckConfig::default()),
        Err(HistoryError::ReturnBeforeCall { index: 0, .. })
    ));
}
