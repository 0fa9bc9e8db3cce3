//! Webhooks and their delivery outbox on both backends: made (bad URLs and descriptions
//! refused), listed per owner in pages, removed with their log; deliveries queued, taken when due,
//! retried, delivered or given up, counted while pending, and replayed as a copy.

mod common;

use common::TestDb;
use sambung_store::{NewAccount, NewDelivery, NewWebhook, Store, StoreError};

on_both_backends!(webhooks_per_owner, deliveries_retried_delivered_and_replayed);

async fn account(store: &Store, name: &str) -> i64 {
    store.create_account(NewAccount::new(name, "correct horse", "example.com")).await.unwrap().id
}

fn hook(account_id: i64, url: &str) -> NewWebhook {
    NewWebhook {
        account_id,
        url: url.into(),
        events: vec!["call.started".into(), "call.ended".into()],
        all_accounts: false,
        secret: "whsec_c2VjcmV0".into(),
        description: "crm".into(),
        now: 100,
    }
}

async fn webhooks_per_owner(db: &TestDb) {
    let store = db.open().await;
    let alice = account(&store, "alice").await;
    let bob = account(&store, "bob").await;
    let made = store.create_webhook(&hook(alice, " https://crm.example/hook ")).await.unwrap();
    assert_eq!((made.url.as_str(), made.events.as_str()), ("https://crm.example/hook", "call.started call.ended"));
    assert!(made.wants("call.ended") && !made.wants("call.ringing") && !made.wants("call"));
    for bad in ["ftp://crm.example/", "crm.example", "https://crm.example/a b"] {
        let refused = store.create_webhook(&hook(alice, bad)).await;
        assert!(matches!(refused, Err(StoreError::Invalid { field: "url", .. })), "{bad}: {refused:?}");
    }
    let mut no_events = hook(alice, "https://crm.example/");
    no_events.events.clear();
    assert!(matches!(store.create_webhook(&no_events).await, Err(StoreError::Invalid { field: "events", .. })));
    let mut long = hook(alice, "https://crm.example/");
    long.description = "x".repeat(201);
    assert!(matches!(store.create_webhook(&long).await, Err(StoreError::Invalid { field: "description", .. })));
    assert!(matches!(
        store.create_webhook(&hook(999, "https://crm.example/")).await,
        Err(StoreError::UnknownAccount(999))
    ));

    let second = store.create_webhook(&hook(alice, "https://crm.example/2")).await.unwrap();
    let bobs = store.create_webhook(&hook(bob, "https://bob.example/")).await.unwrap();
    let page = store.webhooks(Some(alice), None, 1).await.unwrap();
    assert_eq!(page.iter().map(|h| h.id).collect::<Vec<_>>(), [made.id]);
    let next = store.webhooks(Some(alice), Some(made.id), 10).await.unwrap();
    assert_eq!(next.iter().map(|h| h.id).collect::<Vec<_>>(), [second.id]);
    assert_eq!(store.webhooks(None, None, 10).await.unwrap().len(), 3);
    assert_eq!(store.all_webhooks().await.unwrap().len(), 3);
    assert!(store.delete_webhook(bobs.id).await.unwrap());
    assert!(!store.delete_webhook(bobs.id).await.unwrap());
    assert_eq!(store.webhook(bobs.id).await.unwrap(), None);
    store.close().await;
}

async fn deliveries_retried_delivered_and_replayed(db: &TestDb) {
    let store = db.open().await;
    let alice = account(&store, "alice").await;
    let crm = store.create_webhook(&hook(alice, "https://crm.example/")).await.unwrap();
    let other = store.create_webhook(&hook(alice, "https://other.example/")).await.unwrap();
    let new = |webhook_id, kind: &str| NewDelivery {
        webhook_id,
        message_id: format!("msg_{kind}"),
        event_type: kind.into(),
        payload: format!("{{\"type\":\"{kind}\"}}"),
    };
    store.enqueue_deliveries(&[new(crm.id, "call.started"), new(other.id, "call.started")], 1000).await.unwrap();
    store.enqueue_deliveries(&[new(crm.id, "call.ended")], 1005).await.unwrap();
    store.enqueue_deliveries(&[], 1005).await.unwrap();
    assert_eq!(store.pending_delivery_count().await.unwrap(), 3);
    assert_eq!(store.next_delivery_due().await.unwrap(), Some(1000));
    let due = store.due_deliveries(1000, 10).await.unwrap();
    assert_eq!(due.len(), 2, "{due:?}");
    let first = &due[0];
    assert_eq!((first.state.as_str(), first.attempts, first.next_attempt_at), ("pending", 0, Some(1000)));

    // A refusal, then a retry that works.
    store.delivery_failed(first.id, Some(503), "answered 503", Some(1010)).await.unwrap();
    assert!(store.due_deliveries(1009, 10).await.unwrap().iter().all(|d| d.id != first.id));
    let again = store.due_deliveries(1010, 10).await.unwrap().into_iter().find(|d| d.id == first.id).unwrap();
    assert_eq!((again.attempts, again.last_status, again.last_error.as_deref()), (1, Some(503), Some("answered 503")));
    store.delivery_done(first.id, 204, 1011).await.unwrap();
    // Given up.
    store.delivery_failed(due[1].id, None, &"e".repeat(900), None).await.unwrap();
    assert_eq!(store.pending_delivery_count().await.unwrap(), 1);

    let log = store.deliveries(crm.id, None, 10).await.unwrap();
    assert_eq!(log.iter().map(|d| d.event_type.as_str()).collect::<Vec<_>>(), ["call.ended", "call.started"]);
    let done = &log[1];
    assert_eq!(
        (done.state.as_str(), done.attempts, done.last_status, done.delivered_at),
        ("delivered", 2, Some(204), Some(1011))
    );
    assert_eq!((done.last_error.as_deref(), done.next_attempt_at), (None, None));
    let given_up = &store.deliveries(other.id, None, 10).await.unwrap()[0];
    assert_eq!((given_up.state.as_str(), given_up.last_error.as_ref().map(String::len)), ("failed", Some(500)));
    assert_eq!(store.deliveries(crm.id, Some(log[0].id), 10).await.unwrap().len(), 1, "paged by id");

    // A replay is a copy: the same message, pending now.
    let copy = store.replay_delivery(crm.id, done.id, 2000).await.unwrap().expect("a copy");
    assert_ne!(copy.id, done.id);
    assert_eq!((copy.message_id.as_str(), copy.payload.as_str()), (done.message_id.as_str(), done.payload.as_str()));
    assert_eq!((copy.state.as_str(), copy.attempts, copy.next_attempt_at), ("pending", 0, Some(2000)));
    assert_eq!(store.replay_delivery(other.id, done.id, 2000).await.unwrap(), None, "another webhook's delivery");
    // Removing a webhook removes its log.
    assert!(store.delete_webhook(crm.id).await.unwrap());
    assert!(store.deliveries(crm.id, None, 10).await.unwrap().is_empty());
    assert_eq!(store.pending_delivery_count().await.unwrap(), 0);
    store.close().await;
}
