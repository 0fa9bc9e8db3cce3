//! The rest of a person's account in the API: call settings (forwarding, do-not-disturb,
//! voicemail), the voicemail PIN, the mailbox (list, play, save, delete), registered devices and
//! call history. Changes reach running calls as the command line's do: the settings through the
//! account table call control reloads, the mailbox counts to the message lamps at once.
// utoipa's `params(...)` expands to paths this lint flags.
#![allow(unused_qualifications)]

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sambung_store::{Account, CallSettings, VoicemailState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::api::{Paging, Params, id_cursor, page_limit, paged};
use super::auth::Caller;
use super::problem::Problem;
use super::{Body, WebState, unix_now};
use crate::cli::settings::{SettingsError, check_target};
use crate::transport::Event as CoreEvent;

/// Call settings as the API shows and takes them. A target is an existing username or
/// extension, or a `sip:` URI; `null` for none.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Settings {
    pub forward_always: Option<String>,
    pub forward_busy: Option<String>,
    pub forward_no_answer: Option<String>,
    pub forward_offline: Option<String>,
    /// Seconds the devices ring before no-answer forwarding or voicemail (5 to 300).
    pub no_answer_secs: u32,
    pub dnd: bool,
    pub voicemail: bool,
    /// Where new voicemail is mailed; `null`: the account's own email.
    pub voicemail_email: Option<String>,
    /// Attach the recording to the mail.
    pub voicemail_attach: bool,
    /// Mail voice messages sent from the app too (to the voicemail email, else the account's),
    /// the recording attached.
    #[serde(default)]
    pub voice_messages_email: bool,
    /// Read-only: a voicemail PIN is set.
    #[serde(default)]
    pub pin_set: bool,
}

impl From<CallSettings> for Settings {
    fn from(s: CallSettings) -> Settings {
        Settings {
            forward_always: s.forward_always,
            forward_busy: s.forward_busy,
            forward_no_answer: s.forward_no_answer,
            forward_offline: s.forward_offline,
            no_answer_secs: s.no_answer_secs,
            dnd: s.dnd,
            voicemail: s.voicemail,
            voicemail_email: s.voicemail_email,
            voicemail_attach: s.voicemail_attach,
            voice_messages_email: s.voice_messages_email,
            pin_set: s.pin_set,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct NewPin {
    /// 4 to 12 digits.
    pub pin: String,
}

impl std::fmt::Debug for NewPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPin")
    }
}

/// A voicemail message (its audio at `/me/voicemail/{id}/audio`).
#[derive(Debug, Serialize, ToSchema)]
pub struct VoicemailInfo {
    pub id: i64,
    pub caller_uri: String,
    pub caller_name: String,
    pub caller_number: Option<String>,
    pub created_at: i64,
    pub duration_ms: i64,
    /// `new` or `saved`.
    pub state: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VoicemailPage {
    /// Newest first.
    pub items: Vec<VoicemailInfo>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct VoicemailChange {
    /// `new` or `saved`.
    pub state: String,
}

/// A registered device.
#[derive(Debug, Serialize, ToSchema)]
pub struct Device {
    /// What names the device for sign-out: its `+sip.instance` (and `reg-id`) when it sends
    /// one (RFC 5626), else its contact.
    pub device: String,
    pub contact: String,
    pub user_agent: Option<String>,
    /// The address it registered from.
    pub source: String,
    /// Unix seconds.
    pub expires_at: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DevicePage {
    pub items: Vec<Device>,
    pub next_cursor: Option<String>,
}

/// One call of the history.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallInfo {
    pub id: i64,
    /// `outgoing` or `incoming`.
    pub direction: &'static str,
    /// The other side (username or URI).
    pub other: String,
    pub started_at: i64,
    pub answered_at: Option<i64>,
    pub duration_secs: i64,
    /// The final SIP status (200 when answered).
    pub status: u16,
    pub reason: String,
    /// The lower estimated MOS of the two sides' audio (1 to 4.5), when the relay measured it.
    pub mos: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallPage {
    pub items: Vec<CallInfo>,
    pub next_cursor: Option<String>,
}

/// The call settings.
#[utoipa::path(get, path = "/me/settings", tag = "account", security(("session" = []), ("token" = [])),
    responses((status = 200, description = "The settings", body = Settings)))]
pub async fn get_settings(State(state): State<WebState>, caller: Caller) -> Result<Json<Settings>, Problem> {
    Ok(Json(state.store.call_settings(caller.account.id).await?.into()))
}

/// Replace the call settings (the next call follows them).
#[utoipa::path(put, path = "/me/settings", tag = "account", request_body = Settings,
    security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "Changed", body = Settings),
        (status = 422, description = "A target, the ring time or the email is refused", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_settings(
    State(state): State<WebState>,
    caller: Caller,
    Body(body): Body<Settings>,
) -> Result<Json<Settings>, Problem> {
    let account = &caller.account;
    let current = state.store.call_settings(account.id).await?;
    let target = |t: Option<String>| t.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    let mut new = CallSettings {
        forward_always: None,
        forward_busy: None,
        forward_no_answer: None,
        forward_offline: None,
        no_answer_secs: body.no_answer_secs,
        dnd: body.dnd,
        voicemail: body.voicemail,
        voicemail_email: body.voicemail_email.map(|e| e.trim().to_owned()).filter(|e| !e.is_empty()),
        voicemail_attach: body.voicemail_attach,
        voice_messages_email: body.voice_messages_email,
        pin_set: current.pin_set,
    };
    let fields = [
        ("forward_always", target(body.forward_always), &mut new.forward_always),
        ("forward_busy", target(body.forward_busy), &mut new.forward_busy),
        ("forward_no_answer", target(body.forward_no_answer), &mut new.forward_no_answer),
        ("forward_offline", target(body.forward_offline), &mut new.forward_offline),
    ];
    for (name, given, field) in fields {
        if let Some(given) = given {
            *field = check_target(&state.store, account, name, given).await.map_err(settings_problem)?;
        }
    }
    new.validate()?;
    if new != current {
        state.store.set_call_settings(account.id, &new).await?;
        state.accounts_changed();
    }
    Ok(Json(new.into()))
}

pub(super) fn settings_problem(e: SettingsError) -> Problem {
    match e {
        SettingsError::Store(e) => e.into(),
        e => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_target", e.to_string()),
    }
}

/// Set the voicemail PIN (for the mailbox from another phone, and the access number).
#[utoipa::path(put, path = "/me/pin", tag = "account", request_body = NewPin, security(("session" = []), ("token" = [])),
    responses(
        (status = 204, description = "Set"),
        (status = 422, description = "Not 4 to 12 digits", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_pin(
    State(state): State<WebState>,
    caller: Caller,
    Body(body): Body<NewPin>,
) -> Result<StatusCode, Problem> {
    state.store.set_voicemail_pin(caller.account.id, &body.pin).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The mailbox, newest first.
#[utoipa::path(get, path = "/me/voicemail", tag = "account", params(Paging), security(("session" = []), ("token" = [])),
    responses((status = 200, description = "A page of messages", body = VoicemailPage)))]
pub async fn list_voicemail(
    State(state): State<WebState>,
    caller: Caller,
    Params(paging): Params<Paging>,
) -> Result<Json<VoicemailPage>, Problem> {
    let limit = page_limit(paging.limit)?;
    let before = id_cursor(paging.cursor.as_deref())?.unwrap_or(i64::MAX);
    let mut all = state.store.voicemails(caller.account.id, None).await?;
    all.sort_by_key(|b| std::cmp::Reverse(b.id));
    let rows: Vec<_> = all.into_iter().filter(|v| v.id < before).take(limit as usize + 1).collect();
    let (items, next_cursor) = paged(
        rows,
        limit,
        |v| v.id.to_string(),
        |v| VoicemailInfo {
            id: v.id,
            caller_uri: v.caller_uri,
            caller_name: v.caller_name,
            caller_number: v.caller_number,
            created_at: v.created_at,
            duration_ms: v.duration_ms,
            state: v.state.as_str(),
        },
    );
    Ok(Json(VoicemailPage { items, next_cursor }))
}

/// The recording of one message, as a WAV file.
#[utoipa::path(get, path = "/me/voicemail/{id}/audio", tag = "account",
    params(("id" = i64, Path, description = "The message's id")), security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "The recording", content_type = "audio/wav"),
        (status = 404, description = "No such message in the mailbox", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn voicemail_audio(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Response, Problem> {
    own_voicemail(&state, &caller.account, id).await?;
    let audio = state.store.voicemail_audio(id).await?.ok_or_else(|| Problem::not_found("no such message"))?;
    Ok(([(header::CONTENT_TYPE, "audio/wav"), (header::CACHE_CONTROL, "private, no-store")], audio).into_response())
}

/// Mark a message new or saved (the message lamps follow).
#[utoipa::path(patch, path = "/me/voicemail/{id}", tag = "account", request_body = VoicemailChange,
    params(("id" = i64, Path, description = "The message's id")), security(("session" = []), ("token" = [])),
    responses(
        (status = 204, description = "Changed"),
        (status = 404, description = "No such message in the mailbox", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Neither new nor saved", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn patch_voicemail(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(body): Body<VoicemailChange>,
) -> Result<StatusCode, Problem> {
    let Some(new_state) = VoicemailState::parse(&body.state) else {
        return Err(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_value", "state is \"new\" or \"saved\""));
    };
    own_voicemail(&state, &caller.account, id).await?;
    state.store.set_voicemail_state(id, new_state).await?;
    mailbox_changed(&state, caller.account.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a message (the message lamps follow).
#[utoipa::path(delete, path = "/me/voicemail/{id}", tag = "account",
    params(("id" = i64, Path, description = "The message's id")), security(("session" = []), ("token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such message in the mailbox", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_voicemail(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, Problem> {
    own_voicemail(&state, &caller.account, id).await?;
    state.store.delete_voicemail(id).await?;
    mailbox_changed(&state, caller.account.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The account's registered devices.
#[utoipa::path(get, path = "/me/devices", tag = "account", params(Paging), security(("session" = []), ("token" = [])),
    responses((status = 200, description = "The devices", body = DevicePage)))]
pub async fn list_devices(
    State(state): State<WebState>,
    caller: Caller,
    Params(paging): Params<Paging>,
) -> Result<Json<DevicePage>, Problem> {
    let limit = page_limit(paging.limit)?;
    let now = unix_now();
    let mut bindings: Vec<_> =
        state.store.bindings(caller.account.id).await?.into_iter().filter(|b| b.expires_at > now).collect();
    bindings.sort_by(|a, b| a.contact.cmp(&b.contact));
    let after = paging.cursor.unwrap_or_default();
    let rows: Vec<_> = bindings.into_iter().filter(|b| b.contact > after).take(limit as usize + 1).collect();
    let (items, next_cursor) = paged(
        rows,
        limit,
        |b| b.contact.clone(),
        |b| Device {
            device: device_key(&b),
            contact: b.contact,
            user_agent: b.user_agent,
            source: b.received,
            expires_at: b.expires_at,
        },
    );
    Ok(Json(DevicePage { items, next_cursor }))
}

/// The key call control knows a binding by (`Binding::key` in the registrar).
fn device_key(b: &sambung_store::Binding) -> String {
    match (&b.instance, b.reg_id) {
        (Some(instance), Some(reg_id)) => format!("{instance};reg-id={reg_id}"),
        (Some(instance), None) => instance.clone(),
        _ => b.contact.clone(),
    }
}

/// Signs a device out: its registration ends at once, calls no longer ring it, and it shows
/// offline. A SIP phone that still has the password registers again at its next refresh;
/// change the password to keep it out.
#[utoipa::path(delete, path = "/me/devices/{device}", tag = "account",
    params(("device" = String, Path, description = "The device's `device` value, percent-encoded")),
    security(("session" = []), ("token" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 404, description = "No such device registered", body = Problem),
    ))]
pub async fn sign_out_device(
    State(state): State<WebState>,
    caller: Caller,
    Path(device): Path<String>,
) -> Result<StatusCode, Problem> {
    let now = unix_now();
    let known =
        state.store.bindings(caller.account.id).await?.iter().any(|b| b.expires_at > now && device_key(b) == device);
    if !known {
        return Err(Problem::new(StatusCode::NOT_FOUND, "not_found", "no such device is registered"));
    }
    state.to_core(crate::transport::Event::Unregister { account_id: caller.account.id, device }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The call history, newest first.
#[utoipa::path(get, path = "/me/calls", tag = "account", params(Paging), security(("session" = []), ("token" = [])),
    responses((status = 200, description = "A page of calls", body = CallPage)))]
pub async fn list_calls(
    State(state): State<WebState>,
    caller: Caller,
    Params(paging): Params<Paging>,
) -> Result<Json<CallPage>, Problem> {
    let limit = page_limit(paging.limit)?;
    let before = id_cursor(paging.cursor.as_deref())?;
    let me = &caller.account.username;
    let rows = state.store.cdrs_page(me, before, limit + 1).await?;
    let ids: Vec<i64> = rows.iter().map(|c| c.id).collect();
    let mut worst = std::collections::HashMap::<i64, f64>::new();
    for leg in state.store.cdr_legs(&ids).await? {
        if let Some(mos) = super::records::LegInfo::from(&leg).mos {
            let entry = worst.entry(leg.cdr_id).or_insert(mos);
            *entry = entry.min(mos);
        }
    }
    let (items, next_cursor) = paged(
        rows,
        limit,
        |c| c.id.to_string(),
        |c| {
            let outgoing = &c.caller == me;
            CallInfo {
                id: c.id,
                direction: if outgoing { "outgoing" } else { "incoming" },
                other: if outgoing { c.callee } else { c.caller },
                started_at: c.started_at,
                answered_at: c.answered_at,
                duration_secs: c.duration_secs,
                status: c.cause_code,
                reason: c.cause_reason,
                mos: worst.get(&c.id).copied(),
            }
        },
    );
    Ok(Json(CallPage { items, next_cursor }))
}

/// 404 unless message `id` is in `account`'s mailbox.
async fn own_voicemail(state: &WebState, account: &Account, id: i64) -> Result<(), Problem> {
    let mine = state.store.voicemails(account.id, None).await?.iter().any(|v| v.id == id);
    if mine { Ok(()) } else { Err(Problem::not_found(format!("no voicemail message {id} in your mailbox"))) }
}

/// Tells call control the mailbox's counts, for the message lamps.
async fn mailbox_changed(state: &WebState, account_id: i64) -> Result<(), Problem> {
    let (new, saved) = state.store.voicemail_counts(account_id).await?;
    if let Some(core) = state.core.as_ref().and_then(|c| c.upgrade()) {
        let counts = sambung_pbx::MailboxCounts { new, saved };
        let _ = core.send(CoreEvent::Mailbox { account_id, counts }).await;
    }
    Ok(())
}

/// The voicemail greeting, as a WAV file.
#[utoipa::path(get, path = "/me/greeting", tag = "account", security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "The greeting", content_type = "audio/wav"),
        (status = 404, description = "None recorded: callers hear the default one", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_greeting(State(state): State<WebState>, caller: Caller) -> Result<Response, Problem> {
    let wav =
        state.store.greeting(caller.account.id).await?.ok_or_else(|| Problem::not_found("no greeting recorded"))?;
    Ok(([(header::CONTENT_TYPE, "audio/wav"), (header::CACHE_CONTROL, "private, no-store")], wav).into_response())
}

/// Set the voicemail greeting: a PCM WAV file at 8, 16 or 48 kHz, mono or stereo (the app
/// converts what it records or is given), up to `[voicemail] max_greeting_seconds`.
#[utoipa::path(put, path = "/me/greeting", tag = "account",
    request_body(content = Vec<u8>, content_type = "audio/wav", description = "The greeting"),
    security(("session" = []), ("token" = [])),
    responses(
        (status = 204, description = "Set: callers hear it from the next call"),
        (status = 415, description = "Not a WAV file that can be played", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Too long or too short", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_greeting(
    State(state): State<WebState>,
    caller: Caller,
    wav: axum::body::Bytes,
) -> Result<StatusCode, Problem> {
    let player = sambung_media::wav::WavPlayer::new(std::io::Cursor::new(&wav[..]), 16_000).map_err(|e| {
        Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "not_wav", format!("send a PCM WAV file ({e})"))
    })?;
    let length = player.duration();
    let max = std::time::Duration::from_secs(u64::from(state.max_greeting_seconds));
    if length < std::time::Duration::from_millis(500) || length > max {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
            format!(
                "a greeting lasts from half a second to {} seconds; this one {:.1} s",
                max.as_secs(),
                length.as_secs_f64()
            ),
        ));
    }
    state.store.set_greeting(caller.account.id, Some(&wav)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove the greeting: callers hear the default one again.
#[utoipa::path(delete, path = "/me/greeting", tag = "account", security(("session" = []), ("token" = [])),
    responses((status = 204, description = "Removed")))]
pub async fn delete_greeting(State(state): State<WebState>, caller: Caller) -> Result<StatusCode, Problem> {
    state.store.set_greeting(caller.account.id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
