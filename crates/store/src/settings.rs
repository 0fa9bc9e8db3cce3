//! Call settings of an account: call forwarding, do-not-disturb, voicemail (PIN, greeting, mail
//! notification).
//!
//! An account without a `call_settings` row has [`CallSettings::default`]; the first change
//! writes the row. Changes bump the account generation, so a running server that polls
//! [`Store::accounts_generation`] reloads them along with the accounts.

use std::ops::RangeInclusive;

use crate::accounts::BUMP_GENERATION;
use crate::error::StoreError;
use crate::password;
use crate::rows::from_row;
use crate::{Store, on_pool, unix_now};

/// Seconds a call may ring before no-answer forwarding or voicemail takes it.
pub const NO_ANSWER_SECS: RangeInclusive<u32> = 5..=300;
/// The ring time of an account that did not choose one.
pub const DEFAULT_NO_ANSWER_SECS: u32 = 20;
/// Digits of a voicemail PIN.
pub const PIN_DIGITS: RangeInclusive<usize> = 4..=12;
/// Longest forwarding target or voicemail email, in bytes.
const MAX_TEXT: usize = 254;

/// An account's call settings.
///
/// The default: no forwarding, no do-not-disturb, voicemail on, no PIN, no voicemail email (the
/// account's own email is used), audio attached to the mail, voice messages not mailed, 20 seconds of ringing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallSettings {
    /// Every call goes here at once. A target is a username, an extension, or a `sip:`/`sips:`
    /// URI; the store checks only its shape ([`validate_target`]), the caller whether it exists.
    pub forward_always: Option<String>,
    /// Calls that find every device busy (486/600) go here.
    pub forward_busy: Option<String>,
    /// Calls not answered within `no_answer_secs` go here.
    pub forward_no_answer: Option<String>,
    /// Calls while no device is registered go here.
    pub forward_offline: Option<String>,
    /// Ring time before no-answer forwarding or voicemail, within [`NO_ANSWER_SECS`].
    pub no_answer_secs: u32,
    /// Do not disturb: calls are not offered to the devices (they forward or go to voicemail).
    pub dnd: bool,
    /// Whether unanswered calls may leave a voicemail message.
    pub voicemail: bool,
    /// Where new voicemail is mailed; `None` = the account's own email.
    pub voicemail_email: Option<String>,
    /// Whether the mail carries the recording as a WAV attachment.
    pub voicemail_attach: bool,
    /// Whether voice messages sent from the app are also mailed (to `voicemail_email`, else the
    /// account's email), the recording attached.
    pub voice_messages_email: bool,
    /// Read-only: a PIN is stored ([`Store::set_voicemail_pin`]); ignored by
    /// [`Store::set_call_settings`].
    pub pin_set: bool,
}

impl Default for CallSettings {
    fn default() -> Self {
        CallSettings {
            forward_always: None,
            forward_busy: None,
            forward_no_answer: None,
            forward_offline: None,
            no_answer_secs: DEFAULT_NO_ANSWER_SECS,
            dnd: false,
            voicemail: true,
            voicemail_email: None,
            voicemail_attach: true,
            voice_messages_email: false,
            pin_set: false,
        }
    }
}

impl CallSettings {
    /// Checks every field as [`Store::set_call_settings`] does: targets by [`validate_target`],
    /// the ring time within [`NO_ANSWER_SECS`], the email an address with an `@`.
    pub fn validate(&self) -> Result<(), StoreError> {
        for target in [&self.forward_always, &self.forward_busy, &self.forward_no_answer, &self.forward_offline]
            .into_iter()
            .flatten()
        {
            validate_target(target)?;
        }
        if !NO_ANSWER_SECS.contains(&self.no_answer_secs) {
            return Err(StoreError::Invalid { field: "no-answer seconds", reason: "use 5 to 300 seconds" });
        }
        if let Some(email) = &self.voicemail_email {
            validate_voicemail_email(email)?;
        }
        Ok(())
    }
}

/// Checks the shape of a forwarding target: 1 to 254 bytes without spaces or control
/// characters. Whether it names an account or parses as a URI is for the caller to check.
pub fn validate_target(target: &str) -> Result<(), StoreError> {
    if target.is_empty() || target.len() > MAX_TEXT || target.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(StoreError::InvalidTarget(target.to_owned()));
    }
    Ok(())
}

/// Checks a voicemail PIN: 4 to 12 ASCII digits (entered on a phone's keypad).
pub fn validate_pin(pin: &str) -> Result<(), StoreError> {
    if PIN_DIGITS.contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(StoreError::InvalidPin)
    }
}

/// One address: something on both sides of an `@`, no spaces or control characters (it goes
/// into a mail header).
fn validate_voicemail_email(email: &str) -> Result<(), StoreError> {
    let ok = email.len() <= MAX_TEXT
        && !email.contains(|c: char| c.is_whitespace() || c.is_control() || c == ',')
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid { field: "voicemail email", reason: "expected one address like name@example.com" })
    }
}

/// The row of an account joined with its (maybe missing) settings row: every settings column
/// is NULL when the account has none.
struct SettingsRow {
    account_id: i64,
    forward_always: Option<String>,
    forward_busy: Option<String>,
    forward_no_answer: Option<String>,
    forward_offline: Option<String>,
    no_answer_secs: Option<i32>,
    dnd: Option<bool>,
    voicemail: Option<bool>,
    voicemail_email: Option<String>,
    voicemail_attach: Option<bool>,
    voice_messages_email: Option<bool>,
    pin_set: bool,
}

from_row!(SettingsRow {
    account_id,
    forward_always,
    forward_busy,
    forward_no_answer,
    forward_offline,
    no_answer_secs,
    dnd,
    voicemail,
    voicemail_email,
    voicemail_attach,
    voice_messages_email,
    pin_set
});

impl From<SettingsRow> for CallSettings {
    fn from(r: SettingsRow) -> CallSettings {
        let d = CallSettings::default();
        CallSettings {
            forward_always: r.forward_always,
            forward_busy: r.forward_busy,
            forward_no_answer: r.forward_no_answer,
            forward_offline: r.forward_offline,
            // The CHECK constraint keeps the stored value in range.
            no_answer_secs: r.no_answer_secs.and_then(|s| u32::try_from(s).ok()).unwrap_or(d.no_answer_secs),
            dnd: r.dnd.unwrap_or(d.dnd),
            voicemail: r.voicemail.unwrap_or(d.voicemail),
            voicemail_email: r.voicemail_email,
            voicemail_attach: r.voicemail_attach.unwrap_or(d.voicemail_attach),
            voice_messages_email: r.voice_messages_email.unwrap_or(d.voice_messages_email),
            pin_set: r.pin_set,
        }
    }
}

/// Selects a [`SettingsRow`] from `accounts a LEFT JOIN call_settings s`.
const SETTINGS_COLUMNS: &str = "a.id AS account_id, s.forward_always, s.forward_busy, \
     s.forward_no_answer, s.forward_offline, s.no_answer_secs, s.dnd, s.voicemail, \
     s.voicemail_email, s.voicemail_attach, s.voice_messages_email, (s.pin_hash IS NOT NULL) AS pin_set";

impl Store {
    /// The call settings of `account_id`: the defaults when it never changed them. Fails with
    /// [`StoreError::UnknownAccount`] when the account does not exist.
    pub async fn call_settings(&self, account_id: i64) -> Result<CallSettings, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {SETTINGS_COLUMNS} FROM accounts a LEFT JOIN call_settings s ON s.account_id = a.id WHERE a.id = $1"
        ));
        let row: Option<SettingsRow> =
            on_pool!(self, |pool| sqlx::query_as(sql).bind(account_id).fetch_optional(pool).await)?;
        row.map(CallSettings::from).ok_or(StoreError::UnknownAccount(account_id))
    }

    /// The settings of every account that has changed any (accounts without a row have the
    /// defaults), ordered by account id.
    pub async fn all_call_settings(&self) -> Result<Vec<(i64, CallSettings)>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {SETTINGS_COLUMNS} FROM accounts a JOIN call_settings s ON s.account_id = a.id ORDER BY a.id"
        ));
        let rows: Vec<SettingsRow> = on_pool!(self, |pool| sqlx::query_as(sql).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(|r| (r.account_id, CallSettings::from(r))).collect())
    }

    /// Writes every setting but the PIN (`pin_set` is ignored) after [`CallSettings::validate`],
    /// and bumps the account generation so that a running server reloads them.
    pub async fn set_call_settings(&self, account_id: i64, settings: &CallSettings) -> Result<(), StoreError> {
        settings.validate()?;
        let secs = i32::try_from(settings.no_answer_secs).unwrap_or(i32::MAX);
        let now = unix_now();
        let changed: Result<u64, StoreError> = on_pool!(self, |pool| {
            async {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP_GENERATION).execute(&mut *tx).await?;
            let done = sqlx::query(
                "INSERT INTO call_settings (account_id, forward_always, forward_busy, forward_no_answer, \
                 forward_offline, no_answer_secs, dnd, voicemail, voicemail_email, voicemail_attach, voice_messages_email, \
                 updated_at) SELECT id, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 FROM accounts WHERE id = $1 \
                 ON CONFLICT (account_id) DO UPDATE SET forward_always = excluded.forward_always, \
                 forward_busy = excluded.forward_busy, forward_no_answer = excluded.forward_no_answer, \
                 forward_offline = excluded.forward_offline, no_answer_secs = excluded.no_answer_secs, \
                 dnd = excluded.dnd, voicemail = excluded.voicemail, voicemail_email = excluded.voicemail_email, \
                 voicemail_attach = excluded.voicemail_attach, voice_messages_email = excluded.voice_messages_email, \
                 updated_at = excluded.updated_at",
            )
            .bind(account_id)
            .bind(&settings.forward_always)
            .bind(&settings.forward_busy)
            .bind(&settings.forward_no_answer)
            .bind(&settings.forward_offline)
            .bind(secs)
            .bind(settings.dnd)
            .bind(settings.voicemail)
            .bind(&settings.voicemail_email)
            .bind(settings.voicemail_attach)
            .bind(settings.voice_messages_email)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                tx.commit().await?;
            }
            Ok(done.rows_affected())
        }
        .await
        });
        match changed? {
            1 => Ok(()),
            _ => Err(StoreError::UnknownAccount(account_id)),
        }
    }

    /// Sets the mailbox PIN: 4 to 12 ASCII digits ([`StoreError::InvalidPin`] otherwise), stored
    /// as an Argon2id hash. Bumps the account generation (`pin_set` is part of the settings).
    pub async fn set_voicemail_pin(&self, account_id: i64, pin: &str) -> Result<(), StoreError> {
        validate_pin(pin)?;
        let hash = password::hash(pin).await?;
        let now = unix_now();
        let changed: Result<u64, StoreError> = on_pool!(self, |pool| async {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP_GENERATION).execute(&mut *tx).await?;
            let done = sqlx::query(
                "INSERT INTO call_settings (account_id, pin_hash, updated_at) \
                 SELECT id, $2, $3 FROM accounts WHERE id = $1 \
                 ON CONFLICT (account_id) DO UPDATE SET pin_hash = excluded.pin_hash, updated_at = excluded.updated_at",
            )
            .bind(account_id)
            .bind(&hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                tx.commit().await?;
            }
            Ok(done.rows_affected())
        }
        .await);
        match changed? {
            1 => Ok(()),
            _ => Err(StoreError::UnknownAccount(account_id)),
        }
    }

    /// Whether `pin` is the account's mailbox PIN. False when no PIN is set, the account does
    /// not exist, or `pin` is not a well-formed PIN (no hash is computed for those).
    pub async fn verify_voicemail_pin(&self, account_id: i64, pin: &str) -> Result<bool, StoreError> {
        if validate_pin(pin).is_err() {
            return Ok(false);
        }
        let hash: Option<Option<String>> =
            on_pool!(self, |pool| sqlx::query_scalar("SELECT pin_hash FROM call_settings WHERE account_id = $1")
                .bind(account_id)
                .fetch_optional(pool)
                .await)?;
        match hash.flatten() {
            Some(hash) => Ok(password::verify(hash, pin).await),
            None => Ok(false),
        }
    }

    /// The account's recorded greeting (a WAV file's bytes), or `None` for the default one.
    pub async fn greeting(&self, account_id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let greeting: Option<Option<Vec<u8>>> =
            on_pool!(self, |pool| sqlx::query_scalar("SELECT greeting FROM call_settings WHERE account_id = $1")
                .bind(account_id)
                .fetch_optional(pool)
                .await)?;
        Ok(greeting.flatten())
    }

    /// Stores the account's greeting (a WAV file's bytes), or removes it with `None`. Does not
    /// bump the account generation: the greeting is read from the store when played.
    pub async fn set_greeting(&self, account_id: i64, wav: Option<&[u8]>) -> Result<(), StoreError> {
        let now = unix_now();
        let done = on_pool!(self, |pool| sqlx::query(
            "INSERT INTO call_settings (account_id, greeting, updated_at) \
             SELECT id, $2, $3 FROM accounts WHERE id = $1 \
             ON CONFLICT (account_id) DO UPDATE SET greeting = excluded.greeting, updated_at = excluded.updated_at"
        )
        .bind(account_id)
        .bind(wav)
        .bind(now)
        .execute(pool)
        .await
        .map(|d| d.rows_affected()))?;
        if done == 1 { Ok(()) } else { Err(StoreError::UnknownAccount(account_id)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        assert!(validate_pin("1234").is_ok());
        assert!(validate_pin("123456789012").is_ok());
        for bad in ["", "123", "1234567890123", "12a4", "１２３４", " 1234"] {
            assert!(matches!(validate_pin(bad), Err(StoreError::InvalidPin)), "{bad:?}");
        }
        for good in ["bob", "201", "sip:carol@example.com", "sips:+4930123@gw.example;user=phone"] {
            assert!(validate_target(good).is_ok(), "{good}");
        }
        for bad in ["", "bob smith", "bob\t", "a\u{0}b", &"x".repeat(255)] {
            assert!(matches!(validate_target(bad), Err(StoreError::InvalidTarget(_))), "{bad:?}");
        }
        let ok = CallSettings { voicemail_email: Some("root@localhost".into()), ..CallSettings::default() };
        assert!(ok.validate().is_ok());
        for email in ["nobody", "@example.com", "a@", "a b@example.com", "a@example.com,b@example.com"] {
            let bad = CallSettings { voicemail_email: Some(email.into()), ..CallSettings::default() };
            assert!(matches!(bad.validate(), Err(StoreError::Invalid { .. })), "{email}");
        }
        for secs in [0, 4, 301, u32::MAX] {
            let bad = CallSettings { no_answer_secs: secs, ..CallSettings::default() };
            assert!(matches!(bad.validate(), Err(StoreError::Invalid { .. })), "{secs}");
        }
        let edges = [5, 300].map(|secs| CallSettings { no_answer_secs: secs, ..CallSettings::default() });
        assert!(edges.iter().all(|s| s.validate().is_ok()));
    }
}
