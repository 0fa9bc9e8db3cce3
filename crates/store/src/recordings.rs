//! Call recordings: which call each file in the recordings directory is of, and whose.
//!
//! The audio itself is a file the server writes (`<name>.wav`); a row is added when a call's
//! recording starts, so that its parties and the administrators find it.

use crate::error::StoreError;
use crate::rows::from_row;
use crate::{Store, on_pool};

/// One recorded call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recording {
    pub id: i64,
    /// The file's name, without `.wav`.
    pub name: String,
    /// The call's number (of the call records and webhooks).
    pub call_number: i64,
    /// The caller's username (or number, for a call from outside).
    pub caller: String,
    /// Who answered: an account's username, or an outside party.
    pub callee: String,
    pub started_at: i64,
}
from_row!(Recording { id, name, call_number, caller, callee, started_at });

/// A recording to keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRecording {
    pub name: String,
    pub call_number: i64,
    pub caller: String,
    pub callee: String,
    pub started_at: i64,
}

impl Store {
    /// Records that call `new.call_number`'s recording is the file `new.name`.
    pub async fn add_recording(&self, new: &NewRecording) -> Result<i64, StoreError> {
        let id: (i64,) = on_pool!(self, |pool| sqlx::query_as(
            "INSERT INTO recordings (name, call_number, caller, callee, started_at) VALUES ($1, $2, $3, $4, $5) \
             RETURNING id"
        )
        .bind(&new.name)
        .bind(new.call_number)
        .bind(&new.caller)
        .bind(&new.callee)
        .bind(new.started_at)
        .fetch_one(pool)
        .await)?;
        Ok(id.0)
    }

    /// The recordings, newest first, `limit` of them before id `before`: every one, or those of
    /// calls `party` (a username) made or took.
    pub async fn list_recordings(
        &self,
        party: Option<&str>,
        before: i64,
        limit: i64,
    ) -> Result<Vec<Recording>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT id, name, call_number, caller, callee, started_at FROM recordings \
             WHERE id < $1 AND ($2 IS NULL OR caller = $2 OR callee = $2) ORDER BY id DESC LIMIT $3"
        )
        .bind(before)
        .bind(party)
        .bind(limit)
        .fetch_all(pool)
        .await)?)
    }

    /// Recording `id`, if it exists.
    pub async fn recording(&self, id: i64) -> Result<Option<Recording>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT id, name, call_number, caller, callee, started_at FROM recordings WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(pool)
        .await)?)
    }

    /// Forgets recording `id`; false when there was none.
    pub async fn delete_recording(&self, id: i64) -> Result<bool, StoreError> {
        let done = on_pool!(self, |pool| sqlx::query("DELETE FROM recordings WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|d| d.rows_affected()))?;
        Ok(done > 0)
    }

    /// Forgets the recordings started before `before` (Unix seconds), whose files are deleted;
    /// how many.
    pub async fn delete_recordings_before(&self, before: i64) -> Result<u64, StoreError> {
        let done = on_pool!(self, |pool| sqlx::query("DELETE FROM recordings WHERE started_at < $1")
            .bind(before)
            .execute(pool)
            .await
            .map(|d| d.rows_affected()))?;
        Ok(done)
    }
}
