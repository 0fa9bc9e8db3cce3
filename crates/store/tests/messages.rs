//! Text messages and call records on both backends.

mod common;

use common::TestDb;
use sambung_store::{HangupSide, NewAccount, NewCdr, NewMessage, Store, StoreError};

on_both_backends!(messages_store_and_forward, message_history_outlives_accounts, call_records);

async fn account(store: &Store, name: &str) -> i64 {
    store.create_account(NewAccount::new(name, "correct horse", "example.com")).await.unwrap().id
}

fn message(from: Option<i64>, to: i64, text: &str, at: i64) -> NewMessage {
    NewMessage {
        from_uri: "sip:alice@example.com".into(),
        from_account: from,
        to_account: to,
        content_type: "text/plain;charset=UTF-8".into(),
        body: text.as_bytes().to_vec(),
        created_at: at,
    }
}

async fn messages_store_and_forward(db: &TestDb) {
    let store = db.open().await;
    let alice = account(&store, "alice").await;
    let bob = account(&store, "bob").await;
    let m1 = store.store_message(message(Some(alice), bob, "hello", 100)).await.unwrap();
    let m2 = store.store_message(message(None, bob, "from outside \u{1F600}", 101)).await.unwrap();
    let binary = NewMessage {
        body: vec![0, 159, 255, 10],
        content_type: "application/octet-stream".into(),
        ..message(None, bob, "", 102)
    };
    let m3 = store.store_message(binary).await.unwrap();
    assert_eq!(m1.to_account, Some(bob));
    assert_eq!(m1.to_user, "bob");
    assert_eq!(m1.from_account, Some(alice));
    assert_eq!(m1.body, b"hello");
    assert_eq!(m3.body, [0, 159, 255, 10]);
    assert!(m1.id < m2.id && m2.id < m3.id);

    let phone = "<urn:uuid:phone>";
    let laptop = "<urn:uuid:laptop>";
    assert_eq!(store.undelivered_for(bob, phone).await.unwrap(), [m1.clone(), m2.clone(), m3.clone()]);
    store.mark_delivered(m1.id, phone, 110).await.unwrap();
    store.mark_delivered(m1.id, phone, 120).await.unwrap(); // repeated: no error
    store.mark_delivered(m3.id, phone, 110).await.unwrap();
    assert_eq!(store.undelivered_for(bob, phone).await.unwrap(), std::slice::from_ref(&m2));
    assert_eq!(store.undelivered_for(bob, laptop).await.unwrap(), [m1.clone(), m2.clone(), m3.clone()]);
    assert!(store.undelivered_for(alice, phone).await.unwrap().is_empty());
    // pending: what no device has had yet
    assert_eq!(store.pending_for(bob).await.unwrap(), std::slice::from_ref(&m2));
    store.mark_delivered(m2.id, laptop, 125).await.unwrap();
    assert!(store.pending_for(bob).await.unwrap().is_empty());

    let err = store.mark_delivered(m3.id + 100, phone, 130).await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownMessage(_)), "{err:?}");
    let err = store.store_message(message(None, bob + alice + 100, "to nobody", 130)).await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownUser(_)), "{err:?}");

    // History: to or from the account, newest first, limited.
    let reply = store.store_message(message(Some(bob), alice, "hi back", 140)).await.unwrap();
    assert_eq!(store.message_history(bob, 10).await.unwrap(), [reply.clone(), m3.clone(), m2.clone(), m1.clone()]);
    assert_eq!(store.message_history(bob, 2).await.unwrap(), [reply.clone(), m3]);
    assert_eq!(store.message_history(alice, 10).await.unwrap(), [reply, m1]);
    store.close().await;
}

async fn message_history_outlives_accounts(db: &TestDb) {
    let store = db.open().await;
    let alice = account(&store, "alice").await;
    let bob = account(&store, "bob").await;
    let m = store.store_message(message(Some(alice), bob, "kept", 100)).await.unwrap();
    store.mark_delivered(m.id, "<urn:uuid:phone>", 101).await.unwrap();
    store.delete_account("bob").await.unwrap();
    let kept = store.message_history(alice, 10).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].to_account, None);
    assert_eq!(kept[0].to_user, "bob", "the recipient stays named");
    assert_eq!(kept[0].body, b"kept");
    store.delete_account("alice").await.unwrap();
    // Both accounts gone: the row stays (no account to list it by).
    let bob2 = account(&store, "bob").await;
    assert!(store.message_history(bob2, 10).await.unwrap().is_empty(), "a new bob does not inherit history");
    store.close().await;
}

fn cdr(caller: &str, callee: &str, answered: Option<i64>, code: u16, side: HangupSide) -> NewCdr {
    NewCdr {
        call_id: format!("{caller}-{callee}@host"),
        caller: caller.into(),
        callee: callee.into(),
        caller_device: Some("<urn:uuid:a>".into()),
        callee_device: answered.map(|_| "<urn:uuid:b>".to_owned()),
        started_at: 1000,
        answered_at: answered,
        ended_at: 1100,
        cause_code: code,
        cause_reason: if code == 200 { "BYE".into() } else { "Request Terminated".into() },
        hangup_side: side,
        answered_by: None,
        forwards: Vec::new(),
    }
}

async fn call_records(db: &TestDb) {
    let store = db.open().await;
    account(&store, "alice").await;
    let answered = store.insert_cdr(&cdr("alice", "bob", Some(1010), 200, HangupSide::Callee)).await.unwrap();
    assert_eq!(answered.duration_secs, 90);
    assert_eq!(answered.cause_code, 200);
    assert_eq!(answered.hangup_side, HangupSide::Callee);
    assert_eq!(answered.callee_device.as_deref(), Some("<urn:uuid:b>"));
    let missed = store.insert_cdr(&cdr("bob", "alice", None, 487, HangupSide::Caller)).await.unwrap();
    assert_eq!(missed.duration_secs, 0);
    assert_eq!(missed.answered_at, None);
    let external =
        store.insert_cdr(&cdr("carol", "sip:+4930123@gw.example", None, 408, HangupSide::System)).await.unwrap();
    assert_eq!(external.hangup_side, HangupSide::System);

    assert_eq!(store.list_cdrs(10).await.unwrap(), [external.clone(), missed.clone(), answered.clone()]);
    assert_eq!(store.list_cdrs(1).await.unwrap(), std::slice::from_ref(&external));
    assert_eq!(store.cdrs_for("alice", 10).await.unwrap(), [missed.clone(), answered.clone()]);
    assert_eq!(store.cdrs_for("alice", 1).await.unwrap(), std::slice::from_ref(&missed));
    assert!(store.cdrs_for("dave", 10).await.unwrap().is_empty());

    // Deleting the account keeps its call records.
    store.delete_account("alice").await.unwrap();
    assert_eq!(store.cdrs_for("alice", 10).await.unwrap(), [missed, answered]);

    // Who answered and the forwards on the way are kept, in order.
    let forwards = vec![
        sambung_store::Forward { to: "carol".into(), reason: "no-answer".into() },
        sambung_store::Forward { to: "sip:desk@192.0.2.9:5060".into(), reason: "user-busy".into() },
    ];
    let forwarded = NewCdr {
        answered_by: Some("voicemail".into()),
        forwards: forwards.clone(),
        ..cdr("alice", "bob", Some(1010), 200, HangupSide::Caller)
    };
    let stored = store.insert_cdr(&forwarded).await.unwrap();
    assert_eq!((stored.answered_by.as_deref(), &stored.forwards), (Some("voicemail"), &forwards));
    let listed = store.list_cdrs(10).await.unwrap();
    let again = listed.iter().find(|c| c.id == stored.id).unwrap();
    assert_eq!((again.answered_by.as_deref(), &again.forwards), (Some("voicemail"), &forwards));
    assert!(listed.iter().find(|c| c.id == external.id).unwrap().forwards.is_empty());
    // A batch: one transaction, each answered in order; a bad record costs only itself.
    let batch = [
        cdr("erin", "frank", Some(1010), 200, HangupSide::Caller),
        cdr("erin", "frank", None, 42, HangupSide::System),
        NewCdr { forwards: forwards.clone(), ..cdr("frank", "erin", None, 486, HangupSide::Callee) },
    ];
    let results = store.insert_cdrs(&batch).await;
    assert_eq!(results.len(), 3);
    let first = results[0].as_ref().unwrap();
    assert_eq!((first.caller.as_str(), first.duration_secs), ("erin", 90));
    assert!(matches!(results[1], Err(StoreError::Invalid { .. })), "{:?}", results[1]);
    assert_eq!(results[2].as_ref().unwrap().forwards, forwards);
    assert!(results[2].as_ref().unwrap().id > first.id, "in order");
    assert_eq!(store.cdrs_for("frank", 10).await.unwrap().len(), 2);
    assert!(store.insert_cdrs(&[]).await.is_empty());
    let err = store.insert_cdr(&cdr("a", "b", None, 42, HangupSide::System)).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    let err = store
        .insert_cdr(&NewCdr { answered_at: Some(2000), ..cdr("a", "b", None, 200, HangupSide::Caller) })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    store.close().await;
}
