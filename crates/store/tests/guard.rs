//! The guard's bans and lockouts: kept, listed while in force, removed, purged, and every
//! operator change bumps the generation a running server polls.

mod common;

use common::TestDb;
use sambung_store::{Ban, Lockout, LockoutKind};

on_both_backends!(bans_are_kept_listed_and_removed, lockouts_are_kept_and_lifted);

fn ban(address: &str, until_at: Option<i64>, manual: bool) -> Ban {
    Ban { address: address.into(), until_at, reason: format!("test {address}"), manual, created_at: 100 }
}

async fn bans_are_kept_listed_and_removed(db: &TestDb) {
    let store = db.open().await;
    let start = store.guard_generation().await.unwrap();
    // The guard's own bans do not move the generation (the server that made them knows them).
    store.put_ban(&ban("192.0.2.1", Some(1_000), false)).await.unwrap();
    assert_eq!(store.guard_generation().await.unwrap(), start);
    // An operator's do.
    store.put_ban(&ban("192.0.2.2", None, true)).await.unwrap();
    store.put_ban(&ban("2001:db8:1:2::", Some(2_000), true)).await.unwrap();
    assert_eq!(store.guard_generation().await.unwrap(), start + 2);
    let listed = store.list_bans(500).await.unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed.contains(&ban("192.0.2.2", None, true)));
    // At 1,500 the first has ended; a ban without an end never does.
    let listed: Vec<String> = store.list_bans(1_500).await.unwrap().into_iter().map(|b| b.address).collect();
    assert_eq!(listed, ["192.0.2.2", "2001:db8:1:2::"]);
    // Renewing a ban extends it, never shortens it, and never makes an operator's the guard's.
    store.put_ban(&ban("192.0.2.1", Some(5_000), false)).await.unwrap();
    assert_eq!(store.list_bans(1_500).await.unwrap().len(), 3);
    store.put_ban(&ban("192.0.2.1", Some(900), false)).await.unwrap();
    assert_eq!(store.list_bans(1_500).await.unwrap().len(), 3, "not shortened");
    store.put_ban(&ban("192.0.2.2", Some(1_000), false)).await.unwrap();
    let kept = store.list_bans(0).await.unwrap().into_iter().find(|b| b.address == "192.0.2.2").unwrap();
    assert_eq!((kept.until_at, kept.manual, kept.reason.as_str()), (None, true, "test 192.0.2.2"));
    assert!(store.remove_ban("192.0.2.2").await.unwrap());
    assert!(!store.remove_ban("192.0.2.2").await.unwrap(), "already gone");
    assert_eq!(store.guard_generation().await.unwrap(), start + 4);
    store.purge_guard(3_000).await.unwrap();
    let left: Vec<String> = store.list_bans(0).await.unwrap().into_iter().map(|b| b.address).collect();
    assert_eq!(left, ["192.0.2.1"]);
    store.close().await;
}

async fn lockouts_are_kept_and_lifted(db: &TestDb) {
    let store = db.open().await;
    let lock = |kind, subject: &str, until_at| Lockout { kind, subject: subject.into(), until_at };
    store.put_lockout(&lock(LockoutKind::Account, "alice", 1_000)).await.unwrap();
    store.put_lockout(&lock(LockoutKind::Pin, "7", 2_000)).await.unwrap();
    assert_eq!(store.list_lockouts(500).await.unwrap().len(), 2);
    assert_eq!(store.list_lockouts(1_500).await.unwrap(), [lock(LockoutKind::Pin, "7", 2_000)]);
    assert_eq!(store.lockout_until(LockoutKind::Account, "alice").await.unwrap(), Some(1_000));
    assert_eq!(store.lockout_until(LockoutKind::Account, "bob").await.unwrap(), None);
    // Renewed, then lifted by an operator (which bumps the generation).
    store.put_lockout(&lock(LockoutKind::Account, "alice", 3_000)).await.unwrap();
    assert_eq!(store.lockout_until(LockoutKind::Account, "alice").await.unwrap(), Some(3_000));
    let generation = store.guard_generation().await.unwrap();
    assert!(store.remove_lockout(LockoutKind::Account, "alice").await.unwrap());
    assert!(!store.remove_lockout(LockoutKind::Account, "alice").await.unwrap());
    assert_eq!(store.guard_generation().await.unwrap(), generation + 2);
    store.purge_guard(2_500).await.unwrap();
    assert!(store.list_lockouts(0).await.unwrap().is_empty());
    store.close().await;
}
