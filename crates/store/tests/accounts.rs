//! Accounts on both backends: create, look up, change, delete, verify, and every refusal.

mod common;

use common::TestDb;
use sambung_sip::digest::{Algorithm, ha1};
use sambung_store::{NewAccount, PasswordError, StoreError};

const REALM: &str = "example.com";

on_both_backends!(account_lifecycle, account_refusals, generation_counts_changes);

async fn account_lifecycle(db: &TestDb) {
    let store = db.open().await;
    let alice = store
        .create_account(
            NewAccount::new("alice", "correct horse", REALM)
                .display_name("Alice A.")
                .email("alice@example.com")
                .extension("201"),
        )
        .await
        .unwrap();
    assert_eq!(alice.username, "alice");
    assert_eq!(alice.display_name, "Alice A.");
    assert_eq!(alice.email.as_deref(), Some("alice@example.com"));
    assert_eq!(alice.extension.as_deref(), Some("201"));
    assert_eq!(alice.realm, REALM);
    assert_eq!(alice.ha1_md5, ha1(Algorithm::Md5, "alice", REALM, "correct horse"));
    assert_eq!(alice.ha1_sha256, ha1(Algorithm::Sha256, "alice", REALM, "correct horse"));
    assert!(alice.password_hash.starts_with("$argon2id$"), "{}", alice.password_hash);
    assert!(!alice.disabled);
    assert!(alice.created_at > 1_700_000_000 && alice.updated_at == alice.created_at);

    let bob = store.create_account(NewAccount::new("bob.b_2-x", "another secret", REALM)).await.unwrap();
    assert_eq!(bob.display_name, "bob.b_2-x", "display name defaults to the username");
    assert_eq!((bob.email, bob.extension), (None, None));

    assert_eq!(store.account_by_username("alice").await.unwrap().as_ref(), Some(&alice));
    assert_eq!(store.account_by_extension("201").await.unwrap().as_ref(), Some(&alice));
    assert_eq!(store.account(alice.id).await.unwrap().as_ref(), Some(&alice));
    assert_eq!(store.account_by_username("carol").await.unwrap(), None);
    assert_eq!(store.account_by_extension("999").await.unwrap(), None);
    assert_eq!(store.account(alice.id + 1000).await.unwrap(), None);
    let names: Vec<_> = store.list_accounts().await.unwrap().into_iter().map(|a| a.username).collect();
    assert_eq!(names, ["alice", "bob.b_2-x"]);

    assert!(store.verify_password("alice", "correct horse").await.unwrap());
    assert!(!store.verify_password("alice", "wrong horse!").await.unwrap());
    assert!(!store.verify_password("nobody", "correct horse").await.unwrap());

    store.set_password("alice", "battery staple", "other.example").await.unwrap();
    let changed = store.account_by_username("alice").await.unwrap().unwrap();
    assert_eq!(changed.realm, "other.example");
    assert_eq!(changed.ha1_md5, ha1(Algorithm::Md5, "alice", "other.example", "battery staple"));
    assert_eq!(changed.ha1_sha256, ha1(Algorithm::Sha256, "alice", "other.example", "battery staple"));
    assert!(store.verify_password("alice", "battery staple").await.unwrap());
    assert!(!store.verify_password("alice", "correct horse").await.unwrap());

    store.set_disabled("alice", true).await.unwrap();
    assert!(store.account_by_username("alice").await.unwrap().unwrap().disabled);
    assert!(!store.verify_password("alice", "battery staple").await.unwrap(), "disabled accounts cannot sign in");
    store.set_disabled("alice", false).await.unwrap();
    assert!(!store.account_by_username("alice").await.unwrap().unwrap().disabled);

    store.delete_account("alice").await.unwrap();
    assert_eq!(store.account_by_username("alice").await.unwrap(), None);
    assert_eq!(store.account_by_extension("201").await.unwrap(), None);
    // The username and extension are free again.
    let again = store.create_account(NewAccount::new("alice", "fresh password", REALM).extension("201")).await.unwrap();
    assert_ne!(again.id, alice.id);
    store.close().await;
}

async fn account_refusals(db: &TestDb) {
    let store = db.open().await;
    store.create_account(NewAccount::new("alice", "correct horse", REALM).extension("201")).await.unwrap();
    store.create_account(NewAccount::new("300", "correct horse", REALM)).await.unwrap();

    let err = store.create_account(NewAccount::new("alice", "other password", REALM)).await.unwrap_err();
    assert!(matches!(&err, StoreError::UserExists(u) if u == "alice"), "{err:?}");
    assert_eq!(err.to_string(), "user \"alice\" already exists");
    let err = store.create_account(NewAccount::new("bob", "other password", REALM).extension("201")).await.unwrap_err();
    assert!(matches!(&err, StoreError::ExtensionTaken(x) if x == "201"), "{err:?}");
    assert_eq!(err.to_string(), "extension \"201\" is already taken");
    // A username equal to another's extension, and an extension equal to another's username.
    let err = store.create_account(NewAccount::new("201", "other password", REALM)).await.unwrap_err();
    assert!(matches!(err, StoreError::UserExists(_)), "{err:?}");
    let err = store.create_account(NewAccount::new("bob", "other password", REALM).extension("300")).await.unwrap_err();
    assert!(matches!(err, StoreError::ExtensionTaken(_)), "{err:?}");

    for bad in ["", "Alice", "al ice", "al@ice", "ali:ce", &"a".repeat(65), "ålice"] {
        let err = store.create_account(NewAccount::new(bad, "correct horse", REALM)).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidUsername(_)), "{bad:?}: {err:?}");
    }
    assert!(store.create_account(NewAccount::new("a".repeat(64), "correct horse", REALM)).await.is_ok());
    for bad in ["1", "12a", "12345678901", "+4912", " 12"] {
        let err =
            store.create_account(NewAccount::new("carol", "correct horse", REALM).extension(bad)).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidExtension(_)), "{bad:?}: {err:?}");
    }
    let err = store.create_account(NewAccount::new("carol", "correct horse", REALM).email("nope")).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid { field: "email", .. }), "{err:?}");
    let err =
        store.create_account(NewAccount::new("carol", "correct horse", REALM).display_name("a\nb")).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid { field: "display name", .. }), "{err:?}");

    for (password, why) in [
        ("short1", PasswordError::TooShort),
        ("my-carol-pass", PasswordError::ContainsUsername),
        ("CAROL2024!", PasswordError::ContainsUsername),
        ("aaaaaaaaaa", PasswordError::OneCharacter),
        ("Password1", PasswordError::Common),
        ("qwertyuiop", PasswordError::Common),
    ] {
        let err = store.create_account(NewAccount::new("carol", password, REALM)).await.unwrap_err();
        assert!(matches!(err, StoreError::WeakPassword(w) if w == why), "{password:?}");
    }
    let err = store.create_account(NewAccount::new("carol", "short1", REALM)).await.unwrap_err();
    assert_eq!(err.to_string(), "weak password: it has fewer than 8 characters");
    let err = store.set_password("alice", "alice-rocks", REALM).await.unwrap_err();
    assert_eq!(err.to_string(), "weak password: it contains the username");

    for err in [
        store.set_password("nobody", "correct horse", REALM).await.unwrap_err(),
        store.set_disabled("nobody", true).await.unwrap_err(),
        store.delete_account("nobody").await.unwrap_err(),
    ] {
        assert!(matches!(&err, StoreError::UnknownUser(u) if u == "nobody"), "{err:?}");
        assert_eq!(err.to_string(), "unknown user \"nobody\"");
    }
    assert_eq!(store.list_accounts().await.unwrap().len(), 3);
    store.close().await;
}

async fn generation_counts_changes(db: &TestDb) {
    let store = db.open().await;
    let g0 = store.accounts_generation().await.unwrap();
    store.create_account(NewAccount::new("alice", "correct horse", REALM)).await.unwrap();
    let g1 = store.accounts_generation().await.unwrap();
    assert!(g1 > g0);
    store.set_password("alice", "battery staple", REALM).await.unwrap();
    let g2 = store.accounts_generation().await.unwrap();
    assert!(g2 > g1);
    store.set_disabled("alice", true).await.unwrap();
    let g3 = store.accounts_generation().await.unwrap();
    assert!(g3 > g2);
    // Refused changes leave it alone.
    let _ = store.create_account(NewAccount::new("alice", "correct horse", REALM)).await.unwrap_err();
    let _ = store.set_disabled("nobody", true).await.unwrap_err();
    let _ = store.delete_account("nobody").await.unwrap_err();
    assert_eq!(store.accounts_generation().await.unwrap(), g3);
    // Reads leave it alone.
    store.list_accounts().await.unwrap();
    assert_eq!(store.accounts_generation().await.unwrap(), g3);
    store.delete_account("alice").await.unwrap();
    assert!(store.accounts_generation().await.unwrap() > g3);
    store.close().await;
}
