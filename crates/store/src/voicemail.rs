//! Voicemail messages: the recording (a WAV file) with who left it and when, in the mailbox of
//! one account, new until listened to and saved.

use crate::error::StoreError;
use crate::rows::from_row;
use crate::{Store, on_pool};

/// Whether a message was listened to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VoicemailState {
    /// Not listened to yet (what the message-waiting indicator counts).
    New,
    /// Listened to and kept.
    Saved,
}

impl VoicemailState {
    /// The stored text: `"new"` or `"saved"`.
    pub fn as_str(self) -> &'static str {
        match self {
            VoicemailState::New => "new",
            VoicemailState::Saved => "saved",
        }
    }

    /// The state named `text` (`new` or `saved`).
    pub fn parse(text: &str) -> Option<VoicemailState> {
        match text {
            "new" => Some(VoicemailState::New),
            "saved" => Some(VoicemailState::Saved),
            _ => None,
        }
    }
}

/// What [`Store::store_voicemail`] needs.
#[derive(Clone, PartialEq, Eq)]
pub struct NewVoicemail {
    /// The mailbox's account.
    pub account_id: i64,
    /// The caller's URI, e.g. `sip:alice@example.com`.
    pub caller_uri: String,
    /// The caller's display name, or username.
    pub caller_name: String,
    /// The caller's extension (or user part) to read out and to call back.
    pub caller_number: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    pub duration_ms: i64,
    /// A complete WAV file.
    pub audio: Vec<u8>,
}

/// The audio is summarised by its length.
impl std::fmt::Debug for NewVoicemail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewVoicemail")
            .field("account_id", &self.account_id)
            .field("caller_uri", &self.caller_uri)
            .field("caller_name", &self.caller_name)
            .field("caller_number", &self.caller_number)
            .field("created_at", &self.created_at)
            .field("duration_ms", &self.duration_ms)
            .field("audio_bytes", &self.audio.len())
            .finish()
    }
}

/// A stored message, without its audio ([`Store::voicemail_audio`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Voicemail {
    pub id: i64,
    pub account_id: i64,
    pub caller_uri: String,
    pub caller_name: String,
    pub caller_number: Option<String>,
    /// Unix seconds when it was recorded (a copy keeps the original's time).
    pub created_at: i64,
    pub duration_ms: i64,
    pub state: VoicemailState,
}

/// The row as stored, before the state is checked.
struct VoicemailRow {
    id: i64,
    account_id: i64,
    caller_uri: String,
    caller_name: String,
    caller_number: Option<String>,
    created_at: i64,
    duration_ms: i64,
    state: String,
}

from_row!(VoicemailRow { id, account_id, caller_uri, caller_name, caller_number, created_at, duration_ms, state });

impl TryFrom<VoicemailRow> for Voicemail {
    type Error = StoreError;

    fn try_from(r: VoicemailRow) -> Result<Voicemail, StoreError> {
        Ok(Voicemail {
            id: r.id,
            account_id: r.account_id,
            caller_uri: r.caller_uri,
            caller_name: r.caller_name,
            caller_number: r.caller_number,
            created_at: r.created_at,
            duration_ms: r.duration_ms,
            state: VoicemailState::parse(&r.state)
                .ok_or(StoreError::Invalid { field: "voicemail", reason: "stored state unknown" })?,
        })
    }
}

const VOICEMAIL_COLUMNS: &str =
    "id, account_id, caller_uri, caller_name, caller_number, created_at, duration_ms, state";

/// Counts that do not fit a `u32` (they cannot, in practice) are capped.
fn count(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

impl Store {
    /// Stores a new message in `new.account_id`'s mailbox; fails with
    /// [`StoreError::UnknownAccount`] when that account does not exist.
    pub async fn store_voicemail(&self, new: NewVoicemail) -> Result<Voicemail, StoreError> {
        if new.duration_ms < 0 {
            return Err(StoreError::Invalid { field: "voicemail", reason: "duration must not be negative" });
        }
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO voicemails (account_id, caller_uri, caller_name, caller_number, created_at, duration_ms, \
             state, audio) SELECT id, $2, $3, $4, $5, $6, 'new', $7 FROM accounts WHERE id = $1 \
             RETURNING {VOICEMAIL_COLUMNS}"
        ));
        let row: Option<VoicemailRow> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(new.account_id)
            .bind(&new.caller_uri)
            .bind(&new.caller_name)
            .bind(&new.caller_number)
            .bind(new.created_at)
            .bind(new.duration_ms)
            .bind(&new.audio)
            .fetch_optional(pool)
            .await)?;
        row.ok_or(StoreError::UnknownAccount(new.account_id))?.try_into()
    }

    /// The messages of `account_id`'s mailbox, oldest first; only those in `state` unless it is
    /// `None`.
    pub async fn voicemails(
        &self,
        account_id: i64,
        state: Option<VoicemailState>,
    ) -> Result<Vec<Voicemail>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {VOICEMAIL_COLUMNS} FROM voicemails WHERE account_id = $1 AND ($2 IS NULL OR state = $2) \
             ORDER BY created_at, id"
        ));
        let state = state.map(VoicemailState::as_str);
        let rows: Vec<VoicemailRow> =
            on_pool!(self, |pool| sqlx::query_as(sql).bind(account_id).bind(state).fetch_all(pool).await)?;
        rows.into_iter().map(Voicemail::try_from).collect()
    }

    /// The recording (a WAV file) of message `id`, or `None` when there is no such message.
    pub async fn voicemail_audio(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar("SELECT audio FROM voicemails WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await)?)
    }

    /// Marks message `id` new or saved; [`StoreError::UnknownVoicemail`] when it does not exist.
    pub async fn set_voicemail_state(&self, id: i64, state: VoicemailState) -> Result<(), StoreError> {
        let done = on_pool!(self, |pool| sqlx::query("UPDATE voicemails SET state = $2 WHERE id = $1")
            .bind(id)
            .bind(state.as_str())
            .execute(pool)
            .await
            .map(|d| d.rows_affected()))?;
        if done == 1 { Ok(()) } else { Err(StoreError::UnknownVoicemail(id)) }
    }

    /// Deletes message `id`; false when there was none.
    pub async fn delete_voicemail(&self, id: i64) -> Result<bool, StoreError> {
        let done = on_pool!(self, |pool| sqlx::query("DELETE FROM voicemails WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|d| d.rows_affected()))?;
        Ok(done == 1)
    }

    /// `(new, saved)` message counts of `account_id`'s mailbox (RFC 3842 message summary).
    pub async fn voicemail_counts(&self, account_id: i64) -> Result<(u32, u32), StoreError> {
        let (new, saved): (i64, i64) = on_pool!(self, |pool| sqlx::query_as(
            "SELECT COUNT(CASE WHEN state = 'new' THEN 1 END), COUNT(CASE WHEN state = 'saved' THEN 1 END) \
             FROM voicemails WHERE account_id = $1"
        )
        .bind(account_id)
        .fetch_one(pool)
        .await)?;
        Ok((count(new), count(saved)))
    }

    /// `(account_id, new, saved)` for every account with at least one message, by account id.
    pub async fn all_voicemail_counts(&self) -> Result<Vec<(i64, u32, u32)>, StoreError> {
        let rows: Vec<(i64, i64, i64)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT account_id, COUNT(CASE WHEN state = 'new' THEN 1 END), \
             COUNT(CASE WHEN state = 'saved' THEN 1 END) FROM voicemails GROUP BY account_id ORDER BY account_id"
        )
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(|(account, new, saved)| (account, count(new), count(saved))).collect())
    }

    /// Copies message `id` (audio, caller and time included) into `to_account`'s mailbox as a
    /// new message; fails with [`StoreError::UnknownVoicemail`] or [`StoreError::UnknownAccount`].
    pub async fn copy_voicemail(&self, id: i64, to_account: i64) -> Result<Voicemail, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO voicemails (account_id, caller_uri, caller_name, caller_number, created_at, duration_ms, \
             state, audio) SELECT a.id, v.caller_uri, v.caller_name, v.caller_number, v.created_at, v.duration_ms, \
             'new', v.audio FROM voicemails v, accounts a WHERE v.id = $1 AND a.id = $2 \
             RETURNING {VOICEMAIL_COLUMNS}"
        ));
        let row: Option<VoicemailRow> =
            on_pool!(self, |pool| sqlx::query_as(sql).bind(id).bind(to_account).fetch_optional(pool).await)?;
        match row {
            Some(row) => row.try_into(),
            None if self.account(to_account).await?.is_none() => Err(StoreError::UnknownAccount(to_account)),
            None => Err(StoreError::UnknownVoicemail(id)),
        }
    }
}
