//! One database per test: a fresh SQLite file in a temporary directory, or a fresh schema in the
//! PostgreSQL database named by `SAMBUNG_TEST_POSTGRES_URL`.
#![allow(dead_code)] // each test file uses a part of it

use std::path::PathBuf;

use sambung_store::sqlx::{self, Connection as _};
use sambung_store::{OpenMode, Store};

/// The environment variable naming a PostgreSQL database to run the suite against.
pub const POSTGRES_ENV: &str = "SAMBUNG_TEST_POSTGRES_URL";

/// A test database, removed by [`TestDb::cleanup`].
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    /// SQLite: the temporary directory holding the file.
    pub dir: Option<PathBuf>,
    /// PostgreSQL: the base URL and the test's schema.
    pub postgres: Option<(String, String)>,
}

impl TestDb {
    /// A new SQLite database file (not created yet) in a fresh temporary directory.
    pub fn sqlite(name: &str) -> TestDb {
        let dir = std::env::temp_dir().join(format!("sambung-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TestDb { url: format!("sqlite://{}", dir.join("sambung.db").display()), dir: Some(dir), postgres: None }
    }

    /// A fresh schema in the PostgreSQL test database, or `None` when none is configured. In CI
    /// (`CI` set) a missing database is a failure, never a skip.
    pub async fn postgres(name: &str) -> Option<TestDb> {
        let Ok(base) = std::env::var(POSTGRES_ENV) else {
            let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
            assert!(!ci, "{POSTGRES_ENV} must be set in CI: the PostgreSQL tests may not be skipped");
            eprintln!("{POSTGRES_ENV} unset: skipping the PostgreSQL variant of {name}");
            return None;
        };
        let schema = format!("t_{name}_{}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(&base).await.expect("connect to the PostgreSQL test database");
        let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.expect("create schema");
        conn.close().await.ok();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options[search_path]={schema}");
        Some(TestDb { url, dir: None, postgres: Some((base, schema)) })
    }

    /// Opens (creating if needed) the store.
    pub async fn open(&self) -> Store {
        Store::open(&self.url).await.expect("open store")
    }

    /// Opens without creating a missing SQLite file.
    pub async fn open_existing(&self) -> Result<Store, sambung_store::StoreError> {
        Store::open_with(&self.url, OpenMode { create_if_missing: false, max_connections: 4 }).await
    }

    /// Removes the database.
    pub async fn cleanup(self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some((base, schema)) = &self.postgres
            && let Ok(mut conn) = sqlx::PgConnection::connect(base).await
        {
            let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await;
        }
    }
}

/// Runs each named `async fn(&TestDb)` of the parent module once on SQLite and once on
/// PostgreSQL, as tests `sqlite::NAME` and `postgres::NAME`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::common::TestDb::sqlite(stringify!($name));
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = $crate::common::TestDb::postgres(stringify!($name)).await else { return };
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
    };
}

impl TestDb {
    /// Runs a query returning one integer on a separate raw connection.
    pub async fn scalar(&self, sql: &'static str) -> i64 {
        if self.postgres.is_some() {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.expect("connect");
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.expect(sql)
        } else {
            let mut conn = sqlx::SqliteConnection::connect(&self.url).await.expect("connect");
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.expect(sql)
        }
    }
}
