//! Opening the store: migrations, reopening, concurrent writers, and SQLite's file handling.

mod common;

use std::time::Instant;

use common::TestDb;
use sambung_store::sqlx::{self, Connection as _};
use sambung_store::{Backend, HangupSide, NewAccount, NewCdr, NewMessage, OpenMode, Store, StoreError};

on_both_backends!(
    data_survives_reopen,
    migrations_are_idempotent,
    concurrent_writers_lose_nothing,
    version_one_database_upgrades
);

async fn data_survives_reopen(db: &TestDb) {
    let store = db.open().await;
    let alice = store.create_account(NewAccount::new("alice", "correct horse", "example.com")).await.unwrap();
    let generation = store.accounts_generation().await.unwrap();
    store.insert_cdr(&cdr(1)).await.unwrap();
    let message = NewMessage {
        from_uri: "sip:x@example.com".into(),
        from_account: None,
        to_account: alice.id,
        content_type: "text/plain".into(),
        body: b"persist".to_vec(),
        created_at: 5,
    };
    store.store_message(message).await.unwrap();
    store.close().await;

    let store = db.open_existing().await.expect("reopen");
    assert_eq!(store.account_by_username("alice").await.unwrap(), Some(alice.clone()));
    assert_eq!(store.accounts_generation().await.unwrap(), generation);
    assert_eq!(store.list_cdrs(10).await.unwrap().len(), 1);
    assert_eq!(store.message_history(alice.id, 10).await.unwrap()[0].body, b"persist");
    assert!(store.verify_password("alice", "correct horse").await.unwrap());
    store.close().await;
}

async fn migrations_are_idempotent(db: &TestDb) {
    let store = db.open().await;
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    store.create_account(NewAccount::new("alice", "correct horse", "example.com")).await.unwrap();
    store.close().await;
    for _ in 0..3 {
        let store = db.open().await;
        store.migrate().await.unwrap();
        store.close().await;
    }
    assert_eq!(db.scalar("SELECT COUNT(*) FROM _sqlx_migrations").await, 12);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM accounts").await, 1);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM guard_generation").await, 1);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM account_generation").await, 1);
}

/// A database made before the voicemail migration (only version 1 applied, accounts in it) gets
/// the new tables (voicemail, then the guard's, then the web's) on opening, its data kept.
async fn version_one_database_upgrades(db: &TestDb) {
    let store = db.open().await;
    let alice = store.create_account(NewAccount::new("alice", "correct horse", "example.com")).await.unwrap();
    store.close().await;
    let undo = "DROP TABLE recordings; DROP TABLE queue_agents; DROP TABLE trunk_status; DROP TABLE numbers; ALTER TABLE cdrs DROP COLUMN forwards; ALTER TABLE cdrs DROP COLUMN answered_by; DROP TABLE cdr_legs; ALTER TABLE api_tokens DROP COLUMN scopes; DROP TABLE webhook_deliveries; DROP TABLE webhooks; ALTER TABLE call_settings DROP COLUMN voice_messages_email; DROP TABLE password_resets; ALTER TABLE messages DROP COLUMN clip_id; DROP TABLE clips; DROP INDEX messages_conversation; DROP TABLE conversation_reads; DROP TABLE contacts; DROP TABLE invitations; DROP TABLE api_tokens; DROP TABLE web_sessions; \
                ALTER TABLE accounts DROP COLUMN role; DROP TABLE guard_generation; DROP TABLE lockouts; DROP TABLE bans; \
                DROP TABLE mail_outbox; DROP TABLE voicemails; DROP TABLE call_settings; \
                DELETE FROM _sqlx_migrations WHERE version >= 2";
    if db.postgres.is_some() {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::raw_sql(undo).execute(&mut conn).await.unwrap();
    } else {
        let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::raw_sql(undo).execute(&mut conn).await.unwrap();
    }
    assert_eq!(db.scalar("SELECT COUNT(*) FROM _sqlx_migrations").await, 1);

    let store = db.open().await;
    assert_eq!(db.scalar("SELECT COUNT(*) FROM _sqlx_migrations").await, 12);
    assert_eq!(store.account_by_username("alice").await.unwrap(), Some(alice.clone()));
    assert!(!alice.admin);
    assert!(store.web_session("none", 0, 1).await.unwrap().is_none());
    assert_eq!(store.guard_generation().await.unwrap(), 0);
    assert!(store.list_bans(0).await.unwrap().is_empty());
    assert_eq!(store.call_settings(alice.id).await.unwrap(), sambung_store::CallSettings::default());
    store.set_voicemail_pin(alice.id, "2468").await.unwrap();
    assert!(store.verify_voicemail_pin(alice.id, "2468").await.unwrap());
    assert_eq!(store.voicemail_counts(alice.id).await.unwrap(), (0, 0));
    assert_eq!(store.next_mail_due().await.unwrap(), None);
    store.close().await;
}

fn cdr(n: i64) -> NewCdr {
    NewCdr {
        call_id: format!("call-{n}"),
        caller: "alice".into(),
        callee: "bob".into(),
        caller_device: None,
        callee_device: None,
        started_at: n,
        answered_at: None,
        ended_at: n + 1,
        cause_code: 486,
        cause_reason: "Busy Here".into(),
        hangup_side: HangupSide::Callee,
        answered_by: None,
        forwards: Vec::new(),
    }
}

/// Two pools (as two processes would have) write at once: every row arrives, and the account
/// generation counts every account change.
async fn concurrent_writers_lose_nothing(db: &TestDb) {
    const TASKS: i64 = 4;
    const ROWS: i64 = 25;
    let first = db.open().await;
    let second = db.open().await;
    let base = first.accounts_generation().await.unwrap();
    let target = first.create_account(NewAccount::new("target", "correct horse", "example.com")).await.unwrap();
    let mut tasks = Vec::new();
    for (s, store) in [&first, &second].into_iter().enumerate() {
        for t in 0..TASKS {
            let store = store.clone();
            let tag = s as i64 * 1000 + t * 100;
            tasks.push(tokio::spawn(async move {
                for i in 0..ROWS {
                    store.insert_cdr(&cdr(tag + i)).await.expect("insert cdr");
                    let message = NewMessage {
                        from_uri: "sip:x@example.com".into(),
                        from_account: None,
                        to_account: target.id,
                        content_type: "text/plain".into(),
                        body: format!("{tag}-{i}").into_bytes(),
                        created_at: i,
                    };
                    let m = store.store_message(message).await.expect("store message");
                    store.mark_delivered(m.id, "dev", i).await.expect("mark delivered");
                }
            }));
        }
        for a in 0..3 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let name = format!("user{s}x{a}");
                store.create_account(NewAccount::new(name.clone(), "correct horse", "example.com")).await.expect("add");
                store.set_disabled(&name, true).await.expect("disable");
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total = 2 * TASKS * ROWS;
    assert_eq!(first.list_cdrs(10_000).await.unwrap().len() as i64, total);
    assert_eq!(second.message_history(target.id, 10_000).await.unwrap().len() as i64, total);
    assert!(first.undelivered_for(target.id, "dev").await.unwrap().is_empty());
    assert_eq!(first.list_accounts().await.unwrap().len(), 7);
    // 1 target + 6 accounts, each created and disabled.
    assert_eq!(second.accounts_generation().await.unwrap(), base + 1 + 6 * 2);
    first.close().await;
    second.close().await;
}

#[tokio::test]
async fn sqlite_missing_file_is_created_only_when_asked() {
    let db = TestDb::sqlite("missing");
    let nested = db.dir.as_ref().unwrap().join("a/b/sambung.db");
    let url = format!("sqlite://{}", nested.display());
    let err = Store::open_with(&url, OpenMode { create_if_missing: false, max_connections: 1 }).await.unwrap_err();
    assert!(matches!(&err, StoreError::Missing(p) if *p == nested), "{err:?}");
    assert!(err.to_string().starts_with(&format!("database {} does not exist", nested.display())), "{err}");
    assert!(!nested.exists());

    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    store.close().await;
    assert!(nested.exists(), "file and directories created");
    Store::open_with(&url, OpenMode { create_if_missing: false, max_connections: 1 }).await.unwrap().close().await;
    db.cleanup().await;
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode_with_foreign_keys() {
    let db = TestDb::sqlite("pragmas");
    db.open().await.close().await;
    let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut conn).await.unwrap();
    assert_eq!(mode, "wal");
    conn.close().await.unwrap();
    db.cleanup().await;
}

#[tokio::test]
async fn sqlite_locked_by_another_writer() {
    let db = TestDb::sqlite("locked");
    let store = db.open().await;
    store.create_account(NewAccount::new("alice", "correct horse", "example.com")).await.unwrap();
    let mut holder = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE; UPDATE account_generation SET value = value + 1")
        .execute(&mut holder)
        .await
        .unwrap();
    let started = Instant::now();
    let err = store.set_disabled("alice", true).await.unwrap_err();
    assert!(matches!(err, StoreError::Locked), "{err:?}");
    assert!(started.elapsed() >= sambung_store::BUSY_TIMEOUT / 2, "waited for the busy timeout");
    assert_eq!(err.to_string(), "database is locked by another process (still busy after 5 seconds)");
    // Readers are not blocked (WAL), and the write succeeds once the lock is gone.
    assert!(store.account_by_username("alice").await.unwrap().is_some());
    sqlx::raw_sql("ROLLBACK").execute(&mut holder).await.unwrap();
    store.set_disabled("alice", true).await.unwrap();
    store.close().await;
    db.cleanup().await;
}

#[tokio::test]
async fn unreachable_postgres_is_a_database_error() {
    let err = Store::open("postgres://nobody@127.0.0.1:1/none").await.unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
}
