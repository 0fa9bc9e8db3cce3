//! Bindings (RFC 3261 §10) on both backends.

mod common;

use common::TestDb;
use sambung_store::{Binding, BindingOp, NewAccount, Store, StoreError};

on_both_backends!(
    bindings_upsert_list_remove,
    bindings_expire,
    bindings_go_with_their_account,
    bindings_in_one_batch,
    a_bad_row_spoils_only_itself
);

async fn account(store: &Store, name: &str) -> i64 {
    store.create_account(NewAccount::new(name, "correct horse", "example.com")).await.unwrap().id
}

fn binding(account_id: i64, contact: &str, q: i32, expires_at: i64) -> Binding {
    Binding {
        account_id,
        aor: "sip:alice@example.com".into(),
        contact: contact.into(),
        instance: Some("<urn:uuid:00000000-0000-1000-8000-000a95a0e128>".into()),
        reg_id: Some(1),
        q,
        expires_at,
        call_id: "reg-1@host".into(),
        cseq: 1,
        received: "udp:192.0.2.1:5060".into(),
        path: None,
        user_agent: Some("Test/1.0".into()),
        updated_at: 1000,
    }
}

async fn bindings_upsert_list_remove(db: &TestDb) {
    let store = db.open().await;
    let alice = account(&store, "alice").await;
    let bob = account(&store, "bob").await;
    let a1 = binding(alice, "<sip:alice@192.0.2.1:5060>", 500, 5000);
    let mut a2 = binding(alice, "sip:alice@192.0.2.2:5062;transport=tcp", 1000, 5000);
    a2.instance = None;
    a2.reg_id = None;
    a2.path = Some("<sip:edge.example.com;lr>".into());
    a2.user_agent = None;
    let b1 = binding(bob, "<sip:alice@192.0.2.1:5060>", 1000, 5000);
    for b in [&a1, &a2, &b1] {
        store.upsert_binding(b).await.unwrap();
    }
    // Highest q first.
    assert_eq!(store.bindings(alice).await.unwrap(), [a2.clone(), a1.clone()]);
    assert_eq!(store.bindings(bob).await.unwrap(), std::slice::from_ref(&b1));
    assert_eq!(store.all_bindings().await.unwrap().len(), 3);

    // A refresh replaces the row with the same account and contact.
    let mut refreshed = a1.clone();
    refreshed.expires_at = 9000;
    refreshed.cseq = 2;
    refreshed.q = 1000;
    refreshed.updated_at = 2000;
    refreshed.received = "udp:192.0.2.1:6000".into();
    store.upsert_binding(&refreshed).await.unwrap();
    let now = store.bindings(alice).await.unwrap();
    assert_eq!(now.len(), 2);
    assert_eq!(now[0], refreshed, "same q: most recently refreshed first");

    assert!(store.remove_binding(alice, &a2.contact).await.unwrap());
    assert!(!store.remove_binding(alice, &a2.contact).await.unwrap());
    assert_eq!(store.bindings(alice).await.unwrap(), [refreshed]);
    assert_eq!(store.remove_bindings(alice).await.unwrap(), 1);
    assert_eq!(store.remove_bindings(alice).await.unwrap(), 0);
    assert!(store.bindings(alice).await.unwrap().is_empty());
    assert_eq!(store.all_bindings().await.unwrap(), [b1]);

    let err = store.upsert_binding(&binding(alice + bob + 100, "<sip:x@y>", 1000, 5000)).await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownUser(_)), "{err:?}");
    store.close().await;
}

async fn bindings_expire(db: &TestDb) {
    let store = db.open().await;
    let alice = account(&store, "alice").await;
    let early = binding(alice, "<sip:a@192.0.2.1>", 1000, 100);
    let edge = binding(alice, "<sip:a@192.0.2.2>", 1000, 200);
    let late = binding(alice, "<sip:a@192.0.2.3>", 1000, 300);
    for b in [&early, &edge, &late] {
        store.upsert_binding(b).await.unwrap();
    }
    assert!(store.remove_expired_bindings(99).await.unwrap().is_empty());
    let mut gone = store.remove_expired_bindings(200).await.unwrap();
    gone.sort_by_key(|b| b.expires_at);
    assert_eq!(gone, [early, edge], "expires_at <= now is expired");
    assert_eq!(store.all_bindings().await.unwrap(), [late]);
    store.close().await;
}

async fn bindings_go_with_their_account(db: &TestDb) {
    let store = db.open().await;
    let alice = account(&store, "alice").await;
    let bob = account(&store, "bob").await;
    store.upsert_binding(&binding(alice, "<sip:a@192.0.2.1>", 1000, 500)).await.unwrap();
    store.upsert_binding(&binding(alice, "<sip:a@192.0.2.2>", 1000, 500)).await.unwrap();
    store.upsert_binding(&binding(bob, "<sip:b@192.0.2.3>", 1000, 500)).await.unwrap();
    store.delete_account("alice").await.unwrap();
    assert!(store.bindings(alice).await.unwrap().is_empty());
    assert_eq!(store.all_bindings().await.unwrap().len(), 1);
    store.close().await;
}

/// A batch is applied in order: an upsert then a removal of the same row leaves nothing, a
/// later upsert of the same row wins.
async fn bindings_in_one_batch(db: &TestDb) {
    let store = db.open().await;
    let alice = account(&store, "alice").await;
    let a1 = binding(alice, "<sip:alice@192.0.2.1:5060>", 1000, 5000);
    let a2 = binding(alice, "<sip:alice@192.0.2.2:5060>", 1000, 5000);
    let mut a2_later = a2.clone();
    a2_later.expires_at = 7000;
    a2_later.cseq = 2;
    let ops = [
        BindingOp::Upsert(a1.clone()),
        BindingOp::Upsert(a2),
        BindingOp::Remove { account_id: alice, contact: a1.contact.clone() },
        BindingOp::Upsert(a2_later.clone()),
    ];
    assert!(store.apply_bindings(&ops).await.is_empty());
    assert_eq!(store.bindings(alice).await.unwrap(), [a2_later]);
    assert!(store.apply_bindings(&[]).await.is_empty());
}

/// A binding of an account deleted meanwhile fails the batch as a whole (a PostgreSQL
/// transaction is aborted by it): the others are still written, one by one, and the bad one is
/// reported by its position.
async fn a_bad_row_spoils_only_itself(db: &TestDb) {
    let store = db.open().await;
    let alice = account(&store, "alice").await;
    let good = binding(alice, "<sip:alice@192.0.2.1:5060>", 1000, 5000);
    let orphan = binding(alice + 1000, "<sip:ghost@192.0.2.9:5060>", 1000, 5000);
    let also_good = binding(alice, "<sip:alice@192.0.2.3:5060>", 500, 5000);
    let ops = [BindingOp::Upsert(good.clone()), BindingOp::Upsert(orphan), BindingOp::Upsert(also_good.clone())];
    let errors = store.apply_bindings(&ops).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, 1);
    assert!(matches!(errors[0].1, StoreError::UnknownUser(_)), "{:?}", errors[0].1);
    assert_eq!(store.bindings(alice).await.unwrap(), [good, also_good]);
}
