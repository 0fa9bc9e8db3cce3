//! Conversations between two accounts: the text messages one sent the other (both ways), how
//! far each has read, and which messages reached a device.

use std::collections::HashSet;

use crate::error::StoreError;
use crate::messages::MESSAGE_COLUMNS;
use crate::{Message, NewMessage, Store, on_pool};

/// One conversation of a person, as a list shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationSummary {
    /// The other account.
    pub peer_id: i64,
    /// The newest message, either way.
    pub last: Message,
    /// Messages from the peer after the person's read marker.
    pub unread: i64,
}

/// The SQL of `account_id`'s conversations ($1), newest first, with their last message below $2,
/// at most $3: the peer, the newest message's id, the unread count.
const CONVERSATIONS: &str = "WITH conv AS ( \
       SELECT CASE WHEN from_account = $1 THEN to_account ELSE from_account END AS peer, MAX(id) AS last_id \
       FROM messages \
       WHERE (from_account = $1 AND to_account IS NOT NULL) OR (to_account = $1 AND from_account IS NOT NULL) \
       GROUP BY 1) \
     SELECT conv.peer AS peer_id, conv.last_id AS last_id, \
       (SELECT COUNT(*) FROM messages u WHERE u.to_account = $1 AND u.from_account = conv.peer AND u.id > \
          COALESCE((SELECT r.last_read_id FROM conversation_reads r WHERE r.account_id = $1 AND r.peer_id = conv.peer), 0)) \
       AS unread \
     FROM conv WHERE conv.last_id < $2 ORDER BY conv.last_id DESC LIMIT $3";

impl Store {
    /// One message by id.
    pub async fn message(&self, id: i64) -> Result<Option<Message>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1"));
        Ok(on_pool!(self, |pool| sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?)
    }

    /// The messages between `account_id` and `peer_id`, both ways, newest first: up to `limit`
    /// with an id below `before`.
    pub async fn conversation(
        &self,
        account_id: i64,
        peer_id: i64,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id < $3 AND \
             ((from_account = $1 AND to_account = $2) OR (from_account = $2 AND to_account = $1)) \
             ORDER BY id DESC LIMIT $4"
        ));
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(account_id)
            .bind(peer_id)
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?)
    }

    /// `account_id`'s conversations, the one with the newest message first: up to `limit`
    /// whose newest message has an id below `before`.
    pub async fn conversations(
        &self,
        account_id: i64,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let rows: Vec<(i64, i64, i64)> = on_pool!(self, |pool| sqlx::query_as(CONVERSATIONS)
            .bind(account_id)
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?;
        let mut out = Vec::with_capacity(rows.len());
        for (peer_id, last_id, unread) in rows {
            if let Some(last) = self.message(last_id).await? {
                out.push(ConversationSummary { peer_id, last, unread });
            }
        }
        Ok(out)
    }

    /// Moves `account_id`'s read marker in the conversation with `peer_id` to `up_to` (never
    /// back). Returns the marker now.
    pub async fn mark_read(&self, account_id: i64, peer_id: i64, up_to: i64, now: i64) -> Result<i64, StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO conversation_reads (account_id, peer_id, last_read_id, read_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (account_id, peer_id) DO UPDATE SET last_read_id = excluded.last_read_id, \
             read_at = excluded.read_at WHERE conversation_reads.last_read_id < excluded.last_read_id"
        )
        .bind(account_id)
        .bind(peer_id)
        .bind(up_to)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| match StoreError::from(e) {
            e if e.is_foreign_key_violation() => StoreError::UnknownAccount(peer_id),
            e => e,
        })?;
        self.read_up_to(account_id, peer_id).await
    }

    /// How far `account_id` has read the conversation with `peer_id` (0: nothing).
    pub async fn read_up_to(&self, account_id: i64, peer_id: i64) -> Result<i64, StoreError> {
        let marker: Option<i64> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT last_read_id FROM conversation_reads WHERE account_id = $1 AND peer_id = $2"
        )
        .bind(account_id)
        .bind(peer_id)
        .fetch_optional(pool)
        .await)?;
        Ok(marker.unwrap_or(0))
    }

    /// Which of `ids` reached at least one device (or were read in the app).
    pub async fn delivered_among(&self, ids: &[i64]) -> Result<HashSet<i64>, StoreError> {
        let mut found = HashSet::new();
        for chunk in ids.chunks(100) {
            let list = chunk.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
            let sql =
                sqlx::AssertSqlSafe(format!("SELECT DISTINCT message_id FROM deliveries WHERE message_id IN ({list})"));
            let rows: Vec<i64> = on_pool!(self, |pool| sqlx::query_scalar(sql).fetch_all(pool).await)?;
            found.extend(rows);
        }
        Ok(found)
    }
}

/// A voice message's audio.
#[derive(Clone, PartialEq, Eq)]
pub struct Clip {
    pub id: i64,
    /// Who recorded it (`None` once that account is gone).
    pub owner_id: Option<i64>,
    /// `audio/webm`, `audio/ogg`, `audio/mp4` or `audio/wav`.
    pub content_type: String,
    pub duration_ms: i64,
    pub audio: Vec<u8>,
    pub created_at: i64,
}

crate::rows::from_row!(Clip { id, owner_id, content_type, duration_ms, audio, created_at });

impl std::fmt::Debug for Clip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clip")
            .field("id", &self.id)
            .field("owner_id", &self.owner_id)
            .field("content_type", &self.content_type)
            .field("duration_ms", &self.duration_ms)
            .field("audio_bytes", &self.audio.len())
            .finish()
    }
}

impl Store {
    /// Stores a voice message: its clip, then the message (whose text `text(clip id)` makes,
    /// with the link to it) from `message.from_account` to `message.to_account`.
    pub async fn store_voice_message(
        &self,
        message: NewMessage,
        content_type: &str,
        duration_ms: i64,
        audio: &[u8],
        text: impl Fn(i64) -> String,
    ) -> Result<Message, StoreError> {
        if duration_ms <= 0 || audio.is_empty() {
            return Err(StoreError::Invalid { field: "voice message", reason: "an empty recording" });
        }
        let clip_id: i64 = on_pool!(self, |pool| {
            sqlx::query_scalar(
            "INSERT INTO clips (owner_id, content_type, duration_ms, audio, created_at) VALUES ($1, $2, $3, $4, $5) \
             RETURNING id"
        )
        .bind(message.from_account)
        .bind(content_type)
        .bind(duration_ms)
        .bind(audio)
        .bind(message.created_at)
        .fetch_one(pool)
        .await
        })?;
        let body = text(clip_id).into_bytes();
        let stored = self.store_message(NewMessage { body, ..message }).await;
        let stored = match stored {
            Ok(stored) => stored,
            Err(e) => {
                on_pool!(self, |pool| sqlx::query("DELETE FROM clips WHERE id = $1")
                    .bind(clip_id)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected()))?;
                return Err(e);
            }
        };
        on_pool!(self, |pool| sqlx::query("UPDATE messages SET clip_id = $2 WHERE id = $1")
            .bind(stored.id)
            .bind(clip_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(Message { clip_id: Some(clip_id), ..stored })
    }

    /// A clip by id.
    pub async fn clip(&self, id: i64) -> Result<Option<Clip>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT id, owner_id, content_type, duration_ms, audio, created_at FROM clips WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(pool)
        .await)?)
    }

    /// Whether `account_id` sent or got a message with clip `clip_id` (who may play it).
    pub async fn clip_visible_to(&self, clip_id: i64, account_id: i64) -> Result<bool, StoreError> {
        let found: Option<i64> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT id FROM messages WHERE clip_id = $1 AND (from_account = $2 OR to_account = $2) LIMIT 1"
        )
        .bind(clip_id)
        .bind(account_id)
        .fetch_optional(pool)
        .await)?;
        Ok(found.is_some())
    }
}
