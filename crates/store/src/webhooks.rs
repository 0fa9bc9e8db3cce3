//! Webhooks and their delivery outbox (issue 16).
//!
//! A [`Webhook`] names a URL, the event types it wants and whose events (its owner's account,
//! or every account when an administrator made it so). Each event for it becomes a
//! [`Delivery`], pending from [`Store::enqueue_deliveries`] until [`Store::delivery_done`], or
//! until [`Store::delivery_failed`] without a retry time gives it up. Deliveries stay in the table
//! afterwards: they are the delivery log, and a replay queues a copy of one.

use crate::error::StoreError;
use crate::rows::from_row;
use crate::{Store, on_pool};

/// Longest URL and description accepted.
const MAX_URL: usize = 2048;
const MAX_DESCRIPTION: usize = 200;

/// A webhook subscription.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: i64,
    /// The owner.
    pub account_id: i64,
    pub url: String,
    /// Space-separated event types.
    pub events: String,
    /// Events of every account (made by an administrator), not only the owner's.
    pub all_accounts: bool,
    /// `whsec_` and the base64 of the signing key.
    pub secret: String,
    pub description: String,
    pub created_at: i64,
}

from_row!(Webhook { id, account_id, url, events, all_accounts, secret, description, created_at });

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("all_accounts", &self.all_accounts)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// Whether it wants events of type `kind`.
    pub fn wants(&self, kind: &str) -> bool {
        self.events.split(' ').any(|e| e == kind)
    }
}

/// What [`Store::create_webhook`] needs.
#[derive(Clone, Debug)]
pub struct NewWebhook {
    pub account_id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub all_accounts: bool,
    pub secret: String,
    pub description: String,
    pub now: i64,
}

/// One event for one webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: i64,
    pub message_id: String,
    pub event_type: String,
    /// The JSON body.
    pub payload: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: Option<i64>,
    /// The receiver's last HTTP status.
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

from_row!(Delivery {
    id,
    webhook_id,
    message_id,
    event_type,
    payload,
    state,
    attempts,
    next_attempt_at,
    last_status,
    last_error,
    created_at,
    delivered_at
});

/// An event to queue for a webhook.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    pub webhook_id: i64,
    pub message_id: String,
    pub event_type: String,
    pub payload: String,
}

const WEBHOOK_COLUMNS: &str = "id, account_id, url, events, all_accounts, secret, description, created_at";
const DELIVERY_COLUMNS: &str = "id, webhook_id, message_id, event_type, payload, state, attempts, next_attempt_at, \
     last_status, last_error, created_at, delivered_at";

impl Store {
    /// Makes a webhook. The URL must be `http://` or `https://`; the event list must not be
    /// empty. The caller checks the event names.
    pub async fn create_webhook(&self, new: &NewWebhook) -> Result<Webhook, StoreError> {
        let url = new.url.trim();
        if url.len() > MAX_URL
            || !(url.starts_with("https://") || url.starts_with("http://"))
            || url.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(StoreError::Invalid { field: "url", reason: "an http:// or https:// URL" });
        }
        if new.events.is_empty() || new.events.iter().any(|e| e.is_empty() || e.contains(' ')) {
            return Err(StoreError::Invalid { field: "events", reason: "at least one event type" });
        }
        let description = new.description.trim();
        if description.chars().count() > MAX_DESCRIPTION || description.chars().any(char::is_control) {
            return Err(StoreError::Invalid {
                field: "description",
                reason: "at most 200 characters without control characters",
            });
        }
        let events = new.events.join(" ");
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO webhooks (account_id, url, events, all_accounts, secret, description, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {WEBHOOK_COLUMNS}"
        ));
        on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(new.account_id)
            .bind(url)
            .bind(&events)
            .bind(new.all_accounts)
            .bind(&new.secret)
            .bind(description)
            .bind(new.now)
            .fetch_one(pool)
            .await)
        .map_err(|e| match StoreError::from(e) {
            e if e.is_foreign_key_violation() => StoreError::UnknownAccount(new.account_id),
            e => e,
        })
    }

    /// Every webhook, by id (for the deliverer's cache).
    pub async fn all_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY id"));
        Ok(on_pool!(self, |pool| sqlx::query_as(sql).fetch_all(pool).await)?)
    }

    /// A page of webhooks: those of `account_id`, or every one when it is `None`; ids after
    /// `after`, by id.
    pub async fn webhooks(
        &self,
        account_id: Option<i64>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Webhook>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE ($1 IS NULL OR account_id = $1) AND id > $2 \
             ORDER BY id LIMIT $3"
        ));
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(account_id)
            .bind(after.unwrap_or(0))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?)
    }

    pub async fn webhook(&self, id: i64) -> Result<Option<Webhook>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1"));
        Ok(on_pool!(self, |pool| sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?)
    }

    /// Removes a webhook and its delivery log; `false` when there was none.
    pub async fn delete_webhook(&self, id: i64) -> Result<bool, StoreError> {
        let done: Result<u64, StoreError> = on_pool!(self, |pool| async {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1").bind(id).execute(&mut *tx).await?;
            let gone = sqlx::query("DELETE FROM webhooks WHERE id = $1").bind(id).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(gone.rows_affected())
        }
        .await);
        Ok(done? == 1)
    }

    /// Queues deliveries, due at `now`, in one transaction.
    pub async fn enqueue_deliveries(&self, deliveries: &[NewDelivery], now: i64) -> Result<(), StoreError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        on_pool!(self, |pool| async {
            let mut tx = pool.begin().await?;
            for d in deliveries {
                sqlx::query(
                    "INSERT INTO webhook_deliveries (webhook_id, message_id, event_type, payload, state, \
                     next_attempt_at, created_at) VALUES ($1, $2, $3, $4, 'pending', $5, $5)",
                )
                .bind(d.webhook_id)
                .bind(&d.message_id)
                .bind(&d.event_type)
                .bind(&d.payload)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        }
        .await)?;
        Ok(())
    }

    /// At most `limit` pending deliveries due at `now`, oldest first.
    pub async fn due_deliveries(&self, now: i64, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT $2"
        ));
        Ok(on_pool!(self, |pool| sqlx::query_as(sql).bind(now).bind(i64::from(limit)).fetch_all(pool).await)?)
    }

    /// The earliest next attempt among pending deliveries.
    pub async fn next_delivery_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE state = 'pending'"
        )
        .fetch_one(pool)
        .await)?)
    }

    /// How many deliveries are pending.
    pub async fn pending_delivery_count(&self) -> Result<u64, StoreError> {
        let n: i64 = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'pending'"
        )
        .fetch_one(pool)
        .await)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Records an attempt that the receiver accepted (a 2xx `status`).
    pub async fn delivery_done(&self, id: i64, status: u16, now: i64) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1, next_attempt_at = NULL, \
             last_status = $2, last_error = NULL, delivered_at = $3 WHERE id = $1"
        )
        .bind(id)
        .bind(i32::from(status))
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Records a failed attempt: tried again at `retry_at`, or given up when it is `None`.
    pub async fn delivery_failed(
        &self,
        id: i64,
        status: Option<u16>,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<(), StoreError> {
        let state = if retry_at.is_some() { "pending" } else { "failed" };
        let error: String = error.chars().take(500).collect();
        on_pool!(self, |pool| sqlx::query(
            "UPDATE webhook_deliveries SET state = $2, attempts = attempts + 1, next_attempt_at = $3, \
             last_status = $4, last_error = $5 WHERE id = $1"
        )
        .bind(id)
        .bind(state)
        .bind(retry_at)
        .bind(status.map(i32::from))
        .bind(error)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// The delivery log of a webhook: newest first, ids before `before`.
    pub async fn deliveries(
        &self,
        webhook_id: i64,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1 AND id < $2 \
             ORDER BY id DESC LIMIT $3"
        ));
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(webhook_id)
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?)
    }

    /// Queues a copy of delivery `id` of webhook `webhook_id` (same message id and payload), due
    /// at `now`; `None` when there is no such delivery.
    pub async fn replay_delivery(&self, webhook_id: i64, id: i64, now: i64) -> Result<Option<Delivery>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO webhook_deliveries (webhook_id, message_id, event_type, payload, state, next_attempt_at, \
             created_at) SELECT webhook_id, message_id, event_type, payload, 'pending', $3, $3 \
             FROM webhook_deliveries WHERE id = $1 AND webhook_id = $2 RETURNING {DELIVERY_COLUMNS}"
        ));
        Ok(on_pool!(self, |pool| sqlx::query_as(sql).bind(id).bind(webhook_id).bind(now).fetch_optional(pool).await)?)
    }
}
