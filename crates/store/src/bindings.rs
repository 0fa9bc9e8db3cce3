//! Registrations: the location service's bindings of an address-of-record to contacts
//! (RFC 3261 §10), with the RFC 5626 instance and reg-id.

use crate::error::StoreError;
use crate::rows::from_row;
use crate::{Store, on_pool};

/// One binding, keyed by `(account_id, contact)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub account_id: i64,
    /// The address-of-record (the To URI of the REGISTER), as text.
    pub aor: String,
    /// The Contact URI as received.
    pub contact: String,
    /// `+sip.instance` (RFC 5626 §4.1), e.g. `<urn:uuid:...>`.
    pub instance: Option<String>,
    /// `reg-id` (RFC 5626 §4.2).
    pub reg_id: Option<i32>,
    /// `q` in thousandths (RFC 3261 §20.10): 1000 for `q=1.0`.
    pub q: i32,
    /// Unix seconds when the binding lapses.
    pub expires_at: i64,
    /// Call-ID of the REGISTER that made or refreshed it (RFC 3261 §10.3 step 7).
    pub call_id: String,
    /// CSeq number of that REGISTER.
    pub cseq: i64,
    /// Where the REGISTER came from, `"transport:ip:port"` (e.g. `"udp:192.0.2.1:5060"`).
    pub received: String,
    /// The Path header values (RFC 3327), as text.
    pub path: Option<String>,
    pub user_agent: Option<String>,
    /// Unix seconds of the last refresh.
    pub updated_at: i64,
}

from_row!(Binding {
    account_id,
    aor,
    contact,
    instance,
    reg_id,
    q,
    expires_at,
    call_id,
    cseq,
    received,
    path,
    user_agent,
    updated_at
});

const BINDING_COLUMNS: &str =
    "account_id, aor, contact, instance, reg_id, q, expires_at, call_id, cseq, received, path, user_agent, updated_at";

/// One change of the bindings table, for [`Store::apply_bindings`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindingOp {
    /// Add the binding, or replace the one with the same account and contact.
    Upsert(Binding),
    /// Remove the binding of this account with this contact.
    Remove { account_id: i64, contact: String },
}

const UPSERT_BINDING: &str = "INSERT INTO bindings (account_id, aor, contact, instance, reg_id, q, expires_at, call_id, \
     cseq, received, path, user_agent, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
     ON CONFLICT (account_id, contact) DO UPDATE SET aor = excluded.aor, instance = excluded.instance, \
     reg_id = excluded.reg_id, q = excluded.q, expires_at = excluded.expires_at, call_id = excluded.call_id, \
     cseq = excluded.cseq, received = excluded.received, path = excluded.path, \
     user_agent = excluded.user_agent, updated_at = excluded.updated_at";

/// The upsert of binding `$b`, its values bound (a macro: the query's type differs per backend).
macro_rules! upsert_query {
    ($b:expr) => {{
        let b = $b;
        sqlx::query(UPSERT_BINDING)
            .bind(b.account_id)
            .bind(&b.aor)
            .bind(&b.contact)
            .bind(&b.instance)
            .bind(b.reg_id)
            .bind(b.q)
            .bind(b.expires_at)
            .bind(&b.call_id)
            .bind(b.cseq)
            .bind(&b.received)
            .bind(&b.path)
            .bind(&b.user_agent)
            .bind(b.updated_at)
    }};
}

const REMOVE_BINDING: &str = "DELETE FROM bindings WHERE account_id = $1 AND contact = $2";

impl Store {
    /// Applies `ops` in order, in one transaction: one commit (one WAL sync) for a whole batch
    /// of registrations. When the batch fails as a whole (an account deleted meanwhile makes
    /// its binding a foreign key violation, which aborts a PostgreSQL transaction), each change
    /// is tried on its own instead, so that one bad row costs only itself; the errors of those
    /// that still fail are returned with their position.
    pub async fn apply_bindings(&self, ops: &[BindingOp]) -> Vec<(usize, StoreError)> {
        if ops.is_empty() {
            return Vec::new();
        }
        let batch: Result<(), StoreError> = on_pool!(self, |pool| async {
            let mut tx = pool.begin().await?;
            for op in ops {
                match op {
                    BindingOp::Upsert(b) => {
                        upsert_query!(b).execute(&mut *tx).await?;
                    }
                    BindingOp::Remove { account_id, contact } => {
                        sqlx::query(REMOVE_BINDING).bind(account_id).bind(contact).execute(&mut *tx).await?;
                    }
                }
            }
            tx.commit().await?;
            Ok(())
        }
        .await);
        if batch.is_ok() {
            return Vec::new();
        }
        let mut errors = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let result = match op {
                BindingOp::Upsert(b) => self.upsert_binding(b).await,
                BindingOp::Remove { account_id, contact } => self.remove_binding(*account_id, contact).await.map(drop),
            };
            if let Err(e) = result {
                errors.push((i, e));
            }
        }
        errors
    }

    /// Adds a binding or replaces the one with the same account and contact.
    pub async fn upsert_binding(&self, b: &Binding) -> Result<(), StoreError> {
        let result: Result<(), StoreError> =
            on_pool!(self, |pool| { upsert_query!(b).execute(pool).await.map(drop).map_err(StoreError::from) });
        result.map_err(
            |e| if e.is_foreign_key_violation() { StoreError::UnknownUser(b.account_id.to_string()) } else { e },
        )
    }

    /// Removes one binding; true when it existed.
    pub async fn remove_binding(&self, account_id: i64, contact: &str) -> Result<bool, StoreError> {
        let done = on_pool!(self, |pool| sqlx::query(REMOVE_BINDING)
            .bind(account_id)
            .bind(contact)
            .execute(pool)
            .await
            .map(|d| d.rows_affected()))?;
        Ok(done > 0)
    }

    /// Removes every binding of an account (`Contact: *`, RFC 3261 §10.2.2); returns how many.
    pub async fn remove_bindings(&self, account_id: i64) -> Result<u64, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query("DELETE FROM bindings WHERE account_id = $1")
            .bind(account_id)
            .execute(pool)
            .await
            .map(|d| d.rows_affected()))?)
    }

    /// The bindings of an account, highest `q` first, then most recently refreshed.
    pub async fn bindings(&self, account_id: i64) -> Result<Vec<Binding>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {BINDING_COLUMNS} FROM bindings WHERE account_id = $1 ORDER BY q DESC, updated_at DESC, contact"
        ));
        Ok(on_pool!(self, |pool| sqlx::query_as(sql).bind(account_id).fetch_all(pool).await)?)
    }

    /// Every binding, e.g. to load the location service at start.
    pub async fn all_bindings(&self) -> Result<Vec<Binding>, StoreError> {
        let sql =
            sqlx::AssertSqlSafe(format!("SELECT {BINDING_COLUMNS} FROM bindings ORDER BY account_id, q DESC, contact"));
        Ok(on_pool!(self, |pool| sqlx::query_as(sql).fetch_all(pool).await)?)
    }

    /// Removes the bindings with `expires_at <= now` and returns them.
    pub async fn remove_expired_bindings(&self, now: i64) -> Result<Vec<Binding>, StoreError> {
        let sql =
            sqlx::AssertSqlSafe(format!("DELETE FROM bindings WHERE expires_at <= $1 RETURNING {BINDING_COLUMNS}"));
        Ok(on_pool!(self, |pool| sqlx::query_as(sql).bind(now).fetch_all(pool).await)?)
    }
}
