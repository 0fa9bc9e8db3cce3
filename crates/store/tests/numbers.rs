//! Phone numbers and carrier registration states on both backends: assigned, moved, listed,
//! removed, refused when malformed or for an unknown account, kept unassigned when their
//! account goes; each
//! change bumps the account generation a running server polls.

mod common;

use common::TestDb;
use sambung_store::{NewAccount, StoreError, TrunkStatus};

on_both_backends!(
    numbers_are_assigned_moved_and_removed,
    trunk_states_are_kept,
    agents_log_in_and_out,
    recordings_are_listed_by_party
);

async fn numbers_are_assigned_moved_and_removed(db: &TestDb) {
    let store = db.open().await;
    let alice = store.create_account(NewAccount::new("alice", "correct horse", "example.com")).await.unwrap();
    store.create_account(NewAccount::new("bob", "correct horse", "example.com")).await.unwrap();
    let start = store.accounts_generation().await.unwrap();
    store.put_number("+442079460000", Some("alice")).await.unwrap();
    store.put_number("+442079460001", None).await.unwrap();
    assert_eq!(store.accounts_generation().await.unwrap(), start + 2);
    let listed = store.list_numbers().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].number, "+442079460000");
    assert_eq!(listed[0].account_id, Some(alice.id));
    assert_eq!(listed[0].username.as_deref(), Some("alice"));
    assert_eq!(listed[1].account_id, None);
    // Moved to bob.
    store.put_number("+442079460000", Some("bob")).await.unwrap();
    let listed = store.list_numbers().await.unwrap();
    assert_eq!(listed[0].username.as_deref(), Some("bob"));
    // Refusals leave what is stored alone.
    assert!(matches!(store.put_number("02079460000", Some("bob")).await, Err(StoreError::Invalid { .. })));
    assert!(matches!(store.put_number("+44", Some("bob")).await, Err(StoreError::Invalid { .. })));
    assert!(matches!(store.put_number("+442079460002", Some("nobody")).await, Err(StoreError::UnknownUser(_))));
    assert_eq!(store.list_numbers().await.unwrap().len(), 2);
    assert!(store.remove_number("+442079460001").await.unwrap());
    assert!(!store.remove_number("+442079460001").await.unwrap());
    // A number moved to a ring group, and back to an account.
    store.put_group_number("+442079460001", "sales").await.unwrap();
    let group = store.list_numbers().await.unwrap().into_iter().find(|n| n.number == "+442079460001").unwrap();
    assert_eq!((group.account_id, group.group_name.as_deref()), (None, Some("sales")));
    store.put_number("+442079460001", Some("alice")).await.unwrap();
    let back = store.list_numbers().await.unwrap().into_iter().find(|n| n.number == "+442079460001").unwrap();
    assert_eq!((back.username.as_deref(), back.group_name), (Some("alice"), None));
    assert!(store.remove_number("+442079460001").await.unwrap());
    // An account's numbers stay the service's, unassigned, when it goes.
    store.delete_account("bob").await.unwrap();
    let listed = store.list_numbers().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].account_id, listed[0].username.as_deref()), (None, None));
}

async fn trunk_states_are_kept(db: &TestDb) {
    let store = db.open().await;
    let state = |name: &str, state: &str, at| TrunkStatus {
        name: name.into(),
        state: state.into(),
        detail: format!("{state} detail"),
        updated_at: at,
    };
    store.put_trunk_status(&state("carrier-a", "registering", 1)).await.unwrap();
    store.put_trunk_status(&state("carrier-a", "registered", 2)).await.unwrap();
    store.put_trunk_status(&state("carrier-b", "failed", 3)).await.unwrap();
    assert_eq!(
        store.list_trunk_status().await.unwrap(),
        [state("carrier-a", "registered", 2), state("carrier-b", "failed", 3)]
    );
}

async fn agents_log_in_and_out(db: &TestDb) {
    let store = db.open().await;
    let bob = store.create_account(NewAccount::new("bob", "correct horse", "example.com")).await.unwrap();
    let carol = store.create_account(NewAccount::new("carol", "correct horse", "example.com")).await.unwrap();
    assert!(store.agents_logged_out().await.unwrap().is_empty(), "nobody logged out: everyone is in");
    store.set_agent_login(bob.id, false).await.unwrap();
    store.set_agent_login(carol.id, false).await.unwrap();
    assert_eq!(store.agents_logged_out().await.unwrap(), ["bob", "carol"]);
    store.set_agent_login(bob.id, true).await.unwrap();
    assert_eq!(store.agents_logged_out().await.unwrap(), ["carol"]);
    store.delete_account("carol").await.unwrap();
    assert!(store.agents_logged_out().await.unwrap().is_empty());
}

async fn recordings_are_listed_by_party(db: &TestDb) {
    let store = db.open().await;
    let new = |n: i64, caller: &str, callee: &str| sambung_store::NewRecording {
        name: format!("{n}-call-{n}"),
        call_number: n,
        caller: caller.into(),
        callee: callee.into(),
        started_at: 1_800_000_000 + n,
    };
    let first = store.add_recording(&new(1, "alice", "bob")).await.unwrap();
    store.add_recording(&new(2, "carol", "alice")).await.unwrap();
    store.add_recording(&new(3, "bob", "carol")).await.unwrap();
    let all = store.list_recordings(None, i64::MAX, 10).await.unwrap();
    assert_eq!(all.iter().map(|r| r.call_number).collect::<Vec<_>>(), [3, 2, 1], "newest first");
    let alices = store.list_recordings(Some("alice"), i64::MAX, 10).await.unwrap();
    assert_eq!(alices.iter().map(|r| r.call_number).collect::<Vec<_>>(), [2, 1]);
    let page = store.list_recordings(None, all[0].id, 1).await.unwrap();
    assert_eq!(page[0].call_number, 2, "the page after the newest");
    assert_eq!(store.recording(first).await.unwrap().unwrap().name, "1-call-1");
    assert!(store.add_recording(&new(1, "x", "y")).await.is_err(), "a name is one file");
    assert!(store.delete_recording(first).await.unwrap());
    assert!(!store.delete_recording(first).await.unwrap());
    assert_eq!(store.delete_recordings_before(1_800_000_003).await.unwrap(), 1);
    assert_eq!(store.list_recordings(None, i64::MAX, 10).await.unwrap().len(), 1);
}
