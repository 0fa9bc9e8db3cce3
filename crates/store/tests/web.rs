//! The web app's tables on both backends: sessions (expiry, sliding, disabled accounts, sign-out
//! elsewhere), API tokens (names, listing in pages, revocation by their owner only), invitations
//! (used once, given back when the account cannot be made), the admin role and account search.

mod common;

use common::TestDb;
use sambung_store::{NewAccount, NewApiToken, NewMessage, NewWebSession, Store, StoreError};

on_both_backends!(sessions, tokens, invitations, admin_role_and_search, contacts, conversations);

async fn account(store: &Store, name: &str) -> i64 {
    store.create_account(NewAccount::new(name, "correct horse", "example.com")).await.unwrap().id
}

fn session(hash: &str, account_id: i64, now: i64) -> NewWebSession {
    NewWebSession {
        secret_hash: hash.into(),
        account_id,
        csrf_token: format!("csrf-{hash}"),
        now,
        expires_at: now + 100,
        user_agent: Some("test".into()),
        source: Some("127.0.0.1".into()),
    }
}

async fn sessions(db: &TestDb) {
    let store = db.open().await;
    let alice = account(&store, "alice").await;
    store.create_web_session(&session("s1", alice, 1000)).await.unwrap();
    store.create_web_session(&session("s2", alice, 1000)).await.unwrap();
    assert!(matches!(store.create_web_session(&session("s3", 999, 1000)).await, Err(StoreError::UnknownAccount(999))));

    let (found, who) = store.web_session("s1", 1010, 1200).await.unwrap().expect("session");
    assert_eq!((found.account_id, found.csrf_token.as_str(), who.username.as_str()), (alice, "csrf-s1", "alice"));
    // Used within a minute: not extended yet.
    assert_eq!(found.expires_at, 1100);
    // Used a minute later: extended.
    let (found, _) = store.web_session("s1", 1061, 1161).await.unwrap().expect("session");
    assert_eq!((found.last_seen_at, found.expires_at), (1061, 1161));
    assert!(store.web_session("unknown", 1061, 1161).await.unwrap().is_none());
    // s2 was never extended: gone at its expiry.
    assert!(store.web_session("s2", 1100, 1200).await.unwrap().is_none());
    assert!(store.web_session("s1", 1100, 1200).await.unwrap().is_some());

    store.set_disabled("alice", true).await.unwrap();
    assert!(store.web_session("s1", 1101, 1200).await.unwrap().is_none(), "a disabled account is signed out");
    store.set_disabled("alice", false).await.unwrap();

    store.create_web_session(&session("s4", alice, 1100)).await.unwrap();
    assert_eq!(store.delete_web_sessions_of(alice, Some("s4")).await.unwrap(), 2);
    assert!(store.web_session("s4", 1101, 1200).await.unwrap().is_some());
    assert!(store.delete_web_session("s4").await.unwrap());
    assert!(!store.delete_web_session("s4").await.unwrap());

    store.create_web_session(&session("s5", alice, 2000)).await.unwrap();
    assert_eq!(store.purge_web(2100).await.unwrap(), 1);
    store.create_web_session(&session("s6", alice, 2000)).await.unwrap();
    store.delete_account("alice").await.unwrap();
    assert!(store.web_session("s6", 2001, 2100).await.unwrap().is_none());
    store.close().await;
}

fn token(account_id: i64, name: &str, hash: &str) -> NewApiToken {
    NewApiToken {
        account_id,
        name: name.into(),
        secret_hash: hash.into(),
        prefix: hash.chars().take(4).collect(),
        now: 500,
        expires_at: None,
        scopes: None,
    }
}

async fn tokens(db: &TestDb) {
    let store = db.open().await;
    let alice = account(&store, "alice").await;
    let bob = account(&store, "bob").await;
    for name in ["", "   ", &"x".repeat(65), "tab\there"] {
        let refused = store.create_api_token(&token(alice, name, "h0")).await;
        assert!(matches!(refused, Err(StoreError::Invalid { field: "token name", .. })), "{name:?}: {refused:?}");
    }
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(store.create_api_token(&token(alice, &format!("script {i}"), &format!("hash{i}"))).await.unwrap().id);
    }
    let bobs = store.create_api_token(&token(bob, "bob's", "bobhash")).await.unwrap();

    let first = store.api_tokens(alice, None, 2).await.unwrap();
    assert_eq!(first.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["script 4", "script 3"]);
    let rest = store.api_tokens(alice, Some(first[1].id), 10).await.unwrap();
    assert_eq!(rest.len(), 3);
    assert!(rest.iter().all(|t| t.account_id == alice));

    let (used, who) = store.api_token_by_secret("hash2", 600).await.unwrap().expect("token");
    assert_eq!((used.id, used.last_used_at, who.username.as_str()), (ids[2], Some(600), "alice"));
    assert!(store.api_token_by_secret("nohash", 600).await.unwrap().is_none());

    // Only its owner revokes a token.
    assert!(matches!(store.revoke_api_token(alice, bobs.id).await, Err(StoreError::UnknownToken(_))));
    store.revoke_api_token(alice, ids[2]).await.unwrap();
    assert!(store.api_token_by_secret("hash2", 601).await.unwrap().is_none());
    assert!(matches!(store.revoke_api_token(alice, ids[2]).await, Err(StoreError::UnknownToken(_))));

    let mut expiring = token(bob, "short", "shorthash");
    expiring.expires_at = Some(700);
    store.create_api_token(&expiring).await.unwrap();
    assert!(store.api_token_by_secret("shorthash", 699).await.unwrap().is_some());
    assert!(store.api_token_by_secret("shorthash", 700).await.unwrap().is_none());
    store.close().await;
}

async fn invitations(db: &TestDb) {
    let store = db.open().await;
    let admin = account(&store, "admin").await;
    store.create_invitation("inv1", Some(admin), Some("carol@example.com"), 100, 200).await.unwrap();
    store.create_invitation("inv2", Some(admin), None, 100, 150).await.unwrap();
    assert!(matches!(
        store.create_invitation("inv3", Some(admin), Some("not an address"), 100, 200).await,
        Err(StoreError::Invalid { field: "email", .. })
    ));

    // A weak password fails the account, and the invitation stays usable.
    let weak = store.create_account_invited(NewAccount::new("carol", "password", "example.com"), "inv1", 120).await;
    assert!(matches!(weak, Err(StoreError::WeakPassword(_))), "{weak:?}");
    let carol = store
        .create_account_invited(NewAccount::new("carol", "correct horse", "example.com"), "inv1", 121)
        .await
        .unwrap();
    let again =
        store.create_account_invited(NewAccount::new("dave", "correct horse", "example.com"), "inv1", 122).await;
    assert!(matches!(again, Err(StoreError::InvalidInvitation)), "used once: {again:?}");
    let expired =
        store.create_account_invited(NewAccount::new("dave", "correct horse", "example.com"), "inv2", 150).await;
    assert!(matches!(expired, Err(StoreError::InvalidInvitation)), "{expired:?}");
    let unknown =
        store.create_account_invited(NewAccount::new("dave", "correct horse", "example.com"), "nope", 100).await;
    assert!(matches!(unknown, Err(StoreError::InvalidInvitation)));
    assert!(store.account_by_username("dave").await.unwrap().is_none());

    let listed = store.invitations(None, 10).await.unwrap();
    assert_eq!(listed.len(), 2);
    let used = listed.iter().find(|i| i.email.as_deref() == Some("carol@example.com")).unwrap();
    assert_eq!((used.used_at, used.used_by), (Some(121), Some(carol.id)));
    // The unused, expired one is purged; the used one stays as a record.
    assert_eq!(store.purge_web(300).await.unwrap(), 1);
    assert_eq!(store.invitations(None, 10).await.unwrap().len(), 1);
    store.close().await;
}

async fn admin_role_and_search(db: &TestDb) {
    let store = db.open().await;
    let root = store.create_account(NewAccount::new("root", "correct horse", "example.com").admin()).await.unwrap();
    assert!(root.admin);
    let alice = store
        .create_account(
            NewAccount::new("alice", "correct horse", "example.com").display_name("Alice Liddell").extension("201"),
        )
        .await
        .unwrap();
    assert!(!alice.admin);
    store.set_admin("alice", true).await.unwrap();
    assert!(store.account_by_username("alice").await.unwrap().unwrap().admin);
    store.set_admin("alice", false).await.unwrap();
    assert!(!store.account_by_username("alice").await.unwrap().unwrap().admin);
    assert!(matches!(store.set_admin("nobody", true).await, Err(StoreError::UnknownUser(_))));
    for name in ["bob", "bobby", "carol"] {
        account(&store, name).await;
    }
    store.set_disabled("bobby", true).await.unwrap();

    let names = |v: Vec<sambung_store::Account>| v.into_iter().map(|a| a.username).collect::<Vec<_>>();
    assert_eq!(names(store.search_accounts("bob", None, 10).await.unwrap()), ["bob"], "disabled accounts hidden");
    assert_eq!(names(store.search_accounts("LIDDELL", None, 10).await.unwrap()), ["alice"]);
    assert_eq!(names(store.search_accounts("20", None, 10).await.unwrap()), ["alice"]);
    assert!(store.search_accounts("%", None, 10).await.unwrap().is_empty(), "wildcards are literal");
    assert!(store.search_accounts("_", None, 10).await.unwrap().is_empty());

    let page = names(store.accounts_page(None, 2).await.unwrap());
    assert_eq!(page, ["alice", "bob"]);
    let next = names(store.accounts_page(Some("bob"), 10).await.unwrap());
    assert_eq!(next, ["bobby", "carol", "root"]);
    store.close().await;
}

async fn contacts(db: &TestDb) {
    let store = db.open().await;
    let alice = account(&store, "alice").await;
    let bob = account(&store, "bob").await;
    let carol = account(&store, "carol").await;
    assert!(store.put_contact(alice, bob, Some("  Bobby "), 10).await.unwrap());
    assert!(store.put_contact(alice, carol, None, 11).await.unwrap());
    assert!(!store.put_contact(alice, bob, Some("Robert"), 12).await.unwrap(), "a rename");
    assert!(matches!(
        store.put_contact(alice, alice, None, 12).await,
        Err(StoreError::Invalid { field: "contact", .. })
    ));
    assert!(matches!(store.put_contact(alice, 999, None, 12).await, Err(StoreError::UnknownAccount(999))));
    let long = "n".repeat(65);
    assert!(matches!(
        store.put_contact(alice, carol, Some(&long), 12).await,
        Err(StoreError::Invalid { field: "nickname", .. })
    ));

    let list = store.contacts(alice, None, 10).await.unwrap();
    let names: Vec<_> = list.iter().map(|c| (c.account.username.as_str(), c.nickname.as_deref())).collect();
    assert_eq!(names, [("bob", Some("Robert")), ("carol", None)]);
    assert_eq!(list[0].created_at, 10);
    assert!(!list[0].account.admin);
    assert_eq!(store.contacts(alice, Some("bob"), 10).await.unwrap().len(), 1);
    assert!(store.contacts(bob, None, 10).await.unwrap().is_empty(), "contacts are one-way");
    let mut ids = store.contact_ids(alice).await.unwrap();
    ids.sort_unstable();
    assert_eq!(ids, [bob, carol]);

    assert!(store.delete_contact(alice, carol).await.unwrap());
    assert!(!store.delete_contact(alice, carol).await.unwrap());
    store.delete_account("bob").await.unwrap();
    assert!(store.contacts(alice, None, 10).await.unwrap().is_empty(), "a deleted account leaves the lists");
    store.close().await;
}

async fn conversations(db: &TestDb) {
    let store = db.open().await;
    let alice = account(&store, "alice").await;
    let bob = account(&store, "bob").await;
    let carol = account(&store, "carol").await;
    let send = |from: i64, to: i64, text: &str, at: i64| NewMessage {
        from_uri: format!("<sip:{from}@example.com>"),
        from_account: Some(from),
        to_account: to,
        content_type: "text/plain".into(),
        body: text.as_bytes().to_vec(),
        created_at: at,
    };
    let m1 = store.store_message(send(bob, alice, "hi alice", 1)).await.unwrap().id;
    let m2 = store.store_message(send(alice, bob, "hi bob", 2)).await.unwrap().id;
    let m3 = store.store_message(send(bob, alice, "how are you?", 3)).await.unwrap().id;
    let m4 = store.store_message(send(carol, alice, "lunch?", 4)).await.unwrap().id;
    store.store_message(send(carol, bob, "not for alice", 5)).await.unwrap();

    // alice's list: carol's conversation is newest; two unread from bob, one from carol
    let list = store.conversations(alice, None, 10).await.unwrap();
    let summary: Vec<_> = list.iter().map(|c| (c.peer_id, c.last.id, c.unread)).collect();
    assert_eq!(summary, [(carol, m4, 1), (bob, m3, 2)]);
    assert_eq!(store.conversations(alice, Some(m4), 10).await.unwrap().len(), 1, "a page after carol's");

    let history: Vec<i64> = store.conversation(alice, bob, None, 10).await.unwrap().iter().map(|m| m.id).collect();
    assert_eq!(history, [m3, m2, m1]);
    let older: Vec<i64> = store.conversation(alice, bob, Some(m3), 1).await.unwrap().iter().map(|m| m.id).collect();
    assert_eq!(older, [m2]);
    assert_eq!(store.conversation(bob, alice, None, 10).await.unwrap().len(), 3, "the same both ways");

    assert_eq!(store.mark_read(alice, bob, m1, 10).await.unwrap(), m1);
    assert_eq!(store.conversations(alice, None, 10).await.unwrap()[1].unread, 1);
    assert_eq!(store.mark_read(alice, bob, m3, 11).await.unwrap(), m3);
    assert_eq!(store.mark_read(alice, bob, m1, 12).await.unwrap(), m3, "never back");
    assert_eq!(store.read_up_to(alice, bob).await.unwrap(), m3);
    assert_eq!(store.read_up_to(bob, alice).await.unwrap(), 0);
    assert_eq!(store.conversations(alice, None, 10).await.unwrap()[1].unread, 0);

    store.mark_delivered(m2, "bob-desk", 20).await.unwrap();
    let delivered = store.delivered_among(&[m1, m2, m3]).await.unwrap();
    assert_eq!(delivered.into_iter().collect::<Vec<_>>(), [m2]);
    assert_eq!(store.message(m2).await.unwrap().unwrap().body, b"hi bob");
    assert!(store.message(9999).await.unwrap().is_none());
    store.close().await;
}
