//! The outgoing mail queue (voicemail notifications): mail survives a restart or an
//! unreachable SMTP server, and is retried until sent or given up.
//!
//! A mail is pending from [`Store::enqueue_mail`] until [`Store::mail_sent`], or until
//! [`Store::mail_failed`] without a retry time gives it up. The sender sleeps until
//! [`Store::next_mail_due`], takes [`Store::due_mail`] and reports each attempt. Sent and
//! given-up mails stay in the table for the record.

use crate::error::StoreError;
use crate::rows::from_row;
use crate::{Store, on_pool};

/// What [`Store::enqueue_mail`] needs.
#[derive(Clone, PartialEq, Eq)]
pub struct NewMail {
    /// One address.
    pub to: String,
    pub subject: String,
    /// `text/plain`, UTF-8.
    pub body: String,
    /// `(file name, content type, bytes)`.
    pub attachment: Option<(String, String, Vec<u8>)>,
}

/// A queued mail, as given to the sender.
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    pub id: i64,
    pub to: String,
    pub subject: String,
    pub body: String,
    /// `(file name, content type, bytes)`.
    pub attachment: Option<(String, String, Vec<u8>)>,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Unix seconds when it was queued.
    pub created_at: i64,
}

/// An attachment for `Debug`: its name, type and size, not its bytes.
fn attachment_summary(attachment: &Option<(String, String, Vec<u8>)>) -> Option<(&str, &str, usize)> {
    attachment.as_ref().map(|(file, kind, bytes)| (file.as_str(), kind.as_str(), bytes.len()))
}

impl std::fmt::Debug for NewMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewMail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("attachment", &attachment_summary(&self.attachment))
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for OutgoingMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingMail")
            .field("id", &self.id)
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("attachment", &attachment_summary(&self.attachment))
            .field("attempts", &self.attempts)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// The row as stored: the attachment in three columns.
struct MailRow {
    id: i64,
    to_address: String,
    subject: String,
    body: String,
    attachment_name: Option<String>,
    attachment_type: Option<String>,
    attachment_data: Option<Vec<u8>>,
    attempts: i32,
    created_at: i64,
}

from_row!(MailRow {
    id,
    to_address,
    subject,
    body,
    attachment_name,
    attachment_type,
    attachment_data,
    attempts,
    created_at
});

impl From<MailRow> for OutgoingMail {
    fn from(r: MailRow) -> OutgoingMail {
        let attachment = match (r.attachment_name, r.attachment_type, r.attachment_data) {
            (Some(name), Some(kind), Some(data)) => Some((name, kind, data)),
            _ => None,
        };
        OutgoingMail {
            id: r.id,
            to: r.to_address,
            subject: r.subject,
            body: r.body,
            attachment,
            attempts: u32::try_from(r.attempts).unwrap_or(0),
            created_at: r.created_at,
        }
    }
}

const MAIL_COLUMNS: &str =
    "id, to_address, subject, body, attachment_name, attachment_type, attachment_data, attempts, created_at";

/// Refuses what could not go into a mail header: `to` must be one address (something on both
/// sides of an `@`, no spaces, commas or control characters), the subject and the attachment's
/// name and type a single line.
fn validate(mail: &NewMail) -> Result<(), StoreError> {
    let address_ok = mail.to.len() <= 254
        && !mail.to.contains(|c: char| c.is_whitespace() || c.is_control() || c == ',')
        && mail.to.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if !address_ok {
        return Err(StoreError::Invalid {
            field: "mail recipient",
            reason: "expected one address like name@example.com",
        });
    }
    let one_line = |text: &str| !text.contains(|c: char| c.is_control());
    if !one_line(&mail.subject) {
        return Err(StoreError::Invalid { field: "mail subject", reason: "must be one line" });
    }
    if let Some((name, kind, _)) = &mail.attachment
        && (name.is_empty() || kind.is_empty() || !one_line(name) || !one_line(kind))
    {
        return Err(StoreError::Invalid {
            field: "mail attachment",
            reason: "needs a one-line file name and content type",
        });
    }
    Ok(())
}

impl Store {
    /// Queues a mail, due at once (`now`); returns its id.
    pub async fn enqueue_mail(&self, mail: NewMail, now: i64) -> Result<i64, StoreError> {
        validate(&mail)?;
        let (name, kind, data) = match mail.attachment {
            Some((name, kind, data)) => (Some(name), Some(kind), Some(data)),
            None => (None, None, None),
        };
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "INSERT INTO mail_outbox (to_address, subject, body, attachment_name, attachment_type, attachment_data, \
             state, attempts, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7) \
             RETURNING id"
        )
        .bind(&mail.to)
        .bind(&mail.subject)
        .bind(&mail.body)
        .bind(&name)
        .bind(&kind)
        .bind(&data)
        .bind(now)
        .fetch_one(pool)
        .await)?)
    }

    /// At most `limit` pending mails whose next attempt is due at `now`, oldest first.
    pub async fn due_mail(&self, now: i64, limit: u32) -> Result<Vec<OutgoingMail>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {MAIL_COLUMNS} FROM mail_outbox WHERE state = 'pending' AND next_attempt_at <= $1 \
             ORDER BY id LIMIT $2"
        ));
        let rows: Vec<MailRow> =
            on_pool!(self, |pool| sqlx::query_as(sql).bind(now).bind(i64::from(limit)).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(OutgoingMail::from).collect())
    }

    /// How many mails are pending (queued, not yet sent or given up).
    pub async fn pending_mail_count(&self) -> Result<u64, StoreError> {
        let n: i64 =
            on_pool!(self, |pool| sqlx::query_scalar("SELECT COUNT(*) FROM mail_outbox WHERE state = 'pending'")
                .fetch_one(pool)
                .await)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The earliest next attempt among pending mails (to sleep until then), `None` when none is
    /// pending.
    pub async fn next_mail_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM mail_outbox WHERE state = 'pending'"
        )
        .fetch_one(pool)
        .await)?)
    }

    /// Records that mail `id` was sent at `now`; it is never tried again.
    pub async fn mail_sent(&self, id: i64, now: i64) -> Result<(), StoreError> {
        let done = on_pool!(self, |pool| sqlx::query(
            "UPDATE mail_outbox SET state = 'sent', sent_at = $2, next_attempt_at = NULL WHERE id = $1"
        )
        .bind(id)
        .bind(now)
        .execute(pool)
        .await
        .map(|d| d.rows_affected()))?;
        if done == 1 { Ok(()) } else { Err(StoreError::UnknownMail(id)) }
    }

    /// Records a failed attempt at pending mail `id`: one more attempt, `error` kept, tried
    /// again at `retry_at`, or given up for good when `retry_at` is `None`. A mail already sent
    /// or given up is left as it is.
    pub async fn mail_failed(&self, id: i64, error: &str, retry_at: Option<i64>) -> Result<(), StoreError> {
        let state = if retry_at.is_some() { "pending" } else { "failed" };
        let done = on_pool!(self, |pool| sqlx::query(
            "UPDATE mail_outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3, state = $4 \
             WHERE id = $1 AND state = 'pending'"
        )
        .bind(id)
        .bind(error)
        .bind(retry_at)
        .bind(state)
        .execute(pool)
        .await
        .map(|d| d.rows_affected()))?;
        if done == 0 && !self.mail_exists(id).await? {
            return Err(StoreError::UnknownMail(id));
        }
        Ok(())
    }

    async fn mail_exists(&self, id: i64) -> Result<bool, StoreError> {
        let found: Option<i64> = on_pool!(self, |pool| sqlx::query_scalar("SELECT id FROM mail_outbox WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await)?;
        Ok(found.is_some())
    }
}
