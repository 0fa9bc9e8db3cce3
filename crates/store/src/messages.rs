//! Text messages (RFC 3428 MESSAGE): history, and store-and-forward to each device of the
//! recipient.

use crate::error::StoreError;
use crate::rows::from_row;
use crate::{Store, on_pool};

/// One stored message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub id: i64,
    /// The From URI as received.
    pub from_uri: String,
    /// The sending account, when local; `None` also after that account was deleted.
    pub from_account: Option<i64>,
    /// The receiving account; `None` after it was deleted.
    pub to_account: Option<i64>,
    /// The receiving account's username, kept after the account is deleted.
    pub to_user: String,
    /// Content-Type of the body, e.g. `text/plain;charset=UTF-8`.
    pub content_type: String,
    pub body: Vec<u8>,
    /// Unix seconds when the message arrived.
    pub created_at: i64,
    /// A voice message's clip ([`Store::clip`]); its text carries a link to it.
    pub clip_id: Option<i64>,
}

from_row!(Message { id, from_uri, from_account, to_account, to_user, content_type, body, created_at, clip_id });

/// What [`Store::store_message`] needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMessage {
    pub from_uri: String,
    pub from_account: Option<i64>,
    pub to_account: i64,
    pub content_type: String,
    pub body: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
}

pub(crate) const MESSAGE_COLUMNS: &str =
    "id, from_uri, from_account, to_account, to_user, content_type, body, created_at, clip_id";

impl Store {
    /// Stores a message for `to_account`; fails with [`StoreError::UnknownUser`] when that
    /// account does not exist.
    pub async fn store_message(&self, new: NewMessage) -> Result<Message, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO messages (from_uri, from_account, to_account, to_user, content_type, body, created_at) \
             SELECT $1, $2, id, username, $4, $5, $6 FROM accounts WHERE id = $3 RETURNING {MESSAGE_COLUMNS}"
        ));
        let stored: Option<Message> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(&new.from_uri)
            .bind(new.from_account)
            .bind(new.to_account)
            .bind(&new.content_type)
            .bind(&new.body)
            .bind(new.created_at)
            .fetch_optional(pool)
            .await)
        .map_err(|e| match StoreError::from(e) {
            e if e.is_foreign_key_violation() => {
                StoreError::UnknownUser(new.from_account.unwrap_or_default().to_string())
            }
            e => e,
        })?;
        stored.ok_or_else(|| StoreError::UnknownUser(new.to_account.to_string()))
    }

    /// The messages to `account_id` not yet delivered to the device `device_key` (its
    /// `+sip.instance`, or its contact URI), oldest first.
    pub async fn undelivered_for(&self, account_id: i64, device_key: &str) -> Result<Vec<Message>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE to_account = $1 AND NOT EXISTS \
             (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.device_key = $2) ORDER BY id"
        ));
        Ok(on_pool!(self, |pool| sqlx::query_as(sql).bind(account_id).bind(device_key).fetch_all(pool).await)?)
    }

    /// The messages to `account_id` that no device has had yet (stored while the account was
    /// offline), oldest first: what a device that comes online is given.
    pub async fn pending_for(&self, account_id: i64) -> Result<Vec<Message>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE to_account = $1 AND NOT EXISTS \
             (SELECT 1 FROM deliveries d WHERE d.message_id = m.id) ORDER BY id"
        ));
        Ok(on_pool!(self, |pool| sqlx::query_as(sql).bind(account_id).fetch_all(pool).await)?)
    }

    /// Records that message `message_id` reached device `device_key` at `at`; repeating it
    /// keeps the first time.
    pub async fn mark_delivered(&self, message_id: i64, device_key: &str, at: i64) -> Result<(), StoreError> {
        let done = on_pool!(self, |pool| sqlx::query(
            "INSERT INTO deliveries (message_id, account_id, device_key, delivered_at) \
             SELECT id, to_account, $2, $3 FROM messages WHERE id = $1 AND to_account IS NOT NULL \
             ON CONFLICT (message_id, device_key) DO NOTHING"
        )
        .bind(message_id)
        .bind(device_key)
        .bind(at)
        .execute(pool)
        .await
        .map(|d| d.rows_affected()))?;
        if done == 0 && !self.message_exists(message_id).await? {
            return Err(StoreError::UnknownMessage(message_id));
        }
        Ok(())
    }

    async fn message_exists(&self, message_id: i64) -> Result<bool, StoreError> {
        let found: Option<i64> = on_pool!(self, |pool| sqlx::query_scalar("SELECT id FROM messages WHERE id = $1")
            .bind(message_id)
            .fetch_optional(pool)
            .await)?;
        Ok(found.is_some())
    }

    /// The newest `limit` messages sent to or by `account_id`, newest first.
    pub async fn message_history(&self, account_id: i64, limit: u32) -> Result<Vec<Message>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE to_account = $1 OR from_account = $1 ORDER BY id DESC LIMIT $2"
        ));
        Ok(on_pool!(self, |pool| sqlx::query_as(sql).bind(account_id).bind(i64::from(limit)).fetch_all(pool).await)?)
    }
}
