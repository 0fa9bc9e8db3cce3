//! Call settings on both backends: defaults, round trip, validation, the PIN, the greeting,
//! the account generation, and removal with the account.

mod common;

use common::TestDb;
use sambung_store::sqlx::{self, Connection as _};
use sambung_store::{CallSettings, NewAccount, Store, StoreError};

on_both_backends!(
    settings_defaults_and_round_trip,
    settings_refusals,
    voicemail_pin,
    greeting,
    settings_go_with_account
);

async fn account(store: &Store, name: &str) -> i64 {
    store.create_account(NewAccount::new(name, "correct horse", "example.com")).await.unwrap().id
}

fn custom() -> CallSettings {
    CallSettings {
        forward_always: None,
        forward_busy: Some("bob".into()),
        forward_no_answer: Some("sips:+4930123@gw.example;user=phone".into()),
        forward_offline: Some("1002".into()),
        no_answer_secs: 35,
        dnd: true,
        voicemail: false,
        voicemail_email: Some("alice@example.com".into()),
        voicemail_attach: false,
        voice_messages_email: true,
        pin_set: false,
    }
}

async fn settings_defaults_and_round_trip(db: &TestDb) {
    let store = db.open().await;
    let alice = account(&store, "alice").await;
    let bob = account(&store, "bob").await;

    let defaults = store.call_settings(alice).await.unwrap();
    assert_eq!(defaults, CallSettings::default());
    assert_eq!(
        (defaults.no_answer_secs, defaults.voicemail, defaults.voicemail_attach, defaults.dnd, defaults.pin_set),
        (20, true, true, false, false)
    );
    assert_eq!(defaults.forward_always, None);
    assert!(store.all_call_settings().await.unwrap().is_empty(), "no rows yet");

    let generation = store.accounts_generation().await.unwrap();
    store.set_call_settings(alice, &custom()).await.unwrap();
    assert!(store.accounts_generation().await.unwrap() > generation, "a running server must notice the change");
    assert_eq!(store.call_settings(alice).await.unwrap(), custom());
    assert_eq!(store.call_settings(bob).await.unwrap(), CallSettings::default(), "bob untouched");
    assert_eq!(store.all_call_settings().await.unwrap(), [(alice, custom())]);

    // A second write replaces every field, back to None/defaults included; pin_set is ignored.
    let changed =
        CallSettings { forward_always: Some("sip:carol@example.net".into()), pin_set: true, ..CallSettings::default() };
    store.set_call_settings(alice, &changed).await.unwrap();
    let read = store.call_settings(alice).await.unwrap();
    assert_eq!(read, CallSettings { pin_set: false, ..changed.clone() });
    store.set_call_settings(bob, &CallSettings { no_answer_secs: 300, ..CallSettings::default() }).await.unwrap();
    let all = store.all_call_settings().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0], (alice, read));
    assert_eq!(all[1].0, bob);
    assert_eq!(all[1].1.no_answer_secs, 300);
    store.close().await;
}

async fn settings_refusals(db: &TestDb) {
    let store = db.open().await;
    let alice = account(&store, "alice").await;
    store.set_call_settings(alice, &custom()).await.unwrap();
    let generation = store.accounts_generation().await.unwrap();

    let refused = [
        CallSettings { no_answer_secs: 4, ..custom() },
        CallSettings { no_answer_secs: 301, ..custom() },
        CallSettings { voicemail_email: Some("alice.example.com".into()), ..custom() },
        CallSettings { voicemail_email: Some("alice@".into()), ..custom() },
    ];
    for bad in &refused {
        let err = store.set_call_settings(alice, bad).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{bad:?}: {err:?}");
    }
    for target in ["", "bob smith", "bob\n", "sip:a@b\u{7}"] {
        let bad = CallSettings { forward_busy: Some(target.into()), ..custom() };
        let err = store.set_call_settings(alice, &bad).await.unwrap_err();
        assert!(matches!(&err, StoreError::InvalidTarget(t) if t == target), "{target:?}: {err:?}");
    }
    assert_eq!(
        StoreError::InvalidTarget("a b".into()).to_string(),
        "invalid forwarding target \"a b\": use a username, an extension or a sip:/sips: URI, without spaces"
    );
    assert_eq!(store.call_settings(alice).await.unwrap(), custom(), "a refused change keeps what was stored");
    assert_eq!(store.accounts_generation().await.unwrap(), generation, "nor bumps the generation");

    let nobody = alice + 1000;
    let err = store.set_call_settings(nobody, &custom()).await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownAccount(id) if id == nobody), "{err:?}");
    let err = store.call_settings(nobody).await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownAccount(_)), "{err:?}");
    assert_eq!(store.accounts_generation().await.unwrap(), generation, "a failed write is rolled back");
    assert_eq!(store.all_call_settings().await.unwrap().len(), 1);
    store.close().await;
}

async fn voicemail_pin(db: &TestDb) {
    let store = db.open().await;
    let alice = account(&store, "alice").await;
    let bob = account(&store, "bob").await;
    assert!(!store.verify_voicemail_pin(alice, "1234").await.unwrap(), "no PIN set");

    for bad in ["123", "1234567890123", "12a4", "", "12 34"] {
        let err = store.set_voicemail_pin(alice, bad).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidPin), "{bad:?}: {err:?}");
    }
    assert_eq!(StoreError::InvalidPin.to_string(), "invalid PIN: use 4 to 12 digits");
    assert!(!store.call_settings(alice).await.unwrap().pin_set);

    let generation = store.accounts_generation().await.unwrap();
    store.set_voicemail_pin(alice, "0042").await.unwrap();
    assert!(store.accounts_generation().await.unwrap() > generation);
    let settings = store.call_settings(alice).await.unwrap();
    assert_eq!(settings, CallSettings { pin_set: true, ..CallSettings::default() }, "the row has the defaults");
    assert!(store.verify_voicemail_pin(alice, "0042").await.unwrap());
    assert!(!store.verify_voicemail_pin(alice, "42").await.unwrap());
    assert!(!store.verify_voicemail_pin(alice, "0043").await.unwrap());
    assert!(!store.verify_voicemail_pin(bob, "0042").await.unwrap());

    // Stored as an Argon2id hash, never in clear.
    let sql = "SELECT pin_hash FROM call_settings";
    let hash: String = if db.postgres.is_some() {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
    } else {
        let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
    };
    assert!(hash.starts_with("$argon2id$") && !hash.contains("0042"), "{hash}");

    // Settings and PIN are written independently of each other.
    store.set_call_settings(alice, &custom()).await.unwrap();
    assert!(store.verify_voicemail_pin(alice, "0042").await.unwrap(), "settings keep the PIN");
    store.set_voicemail_pin(alice, "987654321012").await.unwrap();
    assert_eq!(store.call_settings(alice).await.unwrap(), CallSettings { pin_set: true, ..custom() });
    assert!(store.verify_voicemail_pin(alice, "987654321012").await.unwrap());
    assert!(!store.verify_voicemail_pin(alice, "0042").await.unwrap());

    let err = store.set_voicemail_pin(alice + bob, "1234").await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownAccount(_)), "{err:?}");
    store.close().await;
}

async fn greeting(db: &TestDb) {
    let store = db.open().await;
    let alice = account(&store, "alice").await;
    let bob = account(&store, "bob").await;
    assert_eq!(store.greeting(alice).await.unwrap(), None);
    let wav: Vec<u8> = b"RIFF\x24\0\0\0WAVEfmt ".iter().copied().chain((0..=255).cycle().take(70_000)).collect();
    store.set_greeting(alice, Some(&wav)).await.unwrap();
    assert_eq!(store.greeting(alice).await.unwrap().as_deref(), Some(&wav[..]));
    assert_eq!(store.greeting(bob).await.unwrap(), None);
    assert_eq!(store.call_settings(alice).await.unwrap(), CallSettings::default(), "a greeting changes no setting");

    store.set_call_settings(alice, &custom()).await.unwrap();
    assert_eq!(store.greeting(alice).await.unwrap().as_deref(), Some(&wav[..]), "settings keep the greeting");
    store.set_greeting(alice, Some(b"RIFF-other")).await.unwrap();
    assert_eq!(store.greeting(alice).await.unwrap().as_deref(), Some(&b"RIFF-other"[..]));
    store.set_greeting(alice, None).await.unwrap();
    assert_eq!(store.greeting(alice).await.unwrap(), None);
    assert_eq!(store.call_settings(alice).await.unwrap(), custom(), "removing the greeting keeps the settings");

    let err = store.set_greeting(alice + bob, Some(&wav)).await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownAccount(_)), "{err:?}");
    store.close().await;
}

async fn settings_go_with_account(db: &TestDb) {
    let store = db.open().await;
    let alice = account(&store, "alice").await;
    let bob = account(&store, "bob").await;
    store.set_call_settings(alice, &custom()).await.unwrap();
    store.set_voicemail_pin(alice, "1234").await.unwrap();
    store.set_greeting(alice, Some(b"RIFF....WAVE")).await.unwrap();
    store.set_call_settings(bob, &custom()).await.unwrap();
    store.delete_account("alice").await.unwrap();
    assert_eq!(db.scalar("SELECT COUNT(*) FROM call_settings").await, 1, "alice's row is gone");
    assert_eq!(store.all_call_settings().await.unwrap(), [(bob, custom())]);
    let alice2 = account(&store, "alice").await;
    assert_eq!(store.call_settings(alice2).await.unwrap(), CallSettings::default(), "a new alice starts afresh");
    assert!(!store.verify_voicemail_pin(alice2, "1234").await.unwrap());
    assert_eq!(store.greeting(alice2).await.unwrap(), None);
    store.close().await;
}
