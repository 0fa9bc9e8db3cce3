//! Chat: conversations between two accounts, the same ones SIP phones have by MESSAGE (RFC
//! 3428). A message written in the app is stored, then call control delivers it to the
//! recipient's phones as it does one that came by SIP; one that came by SIP shows in the app.
// utoipa's `params(...)` expands to paths this lint flags.
#![allow(unused_qualifications)]

use std::collections::HashSet;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use sambung_store::{Account, Message, NewMessage};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::api::{Paging, Params, id_cursor, page_limit, paged};
use super::auth::Caller;
use super::problem::Problem;
use super::{Body, WebState, unix_now};
use crate::presence::Notice;
use crate::transport::Event as CoreEvent;

/// Longest text message written in the app, in bytes (a SIP MESSAGE must fit a datagram).
pub const MAX_TEXT_BYTES: usize = 1300;

/// The content type of text written in the app.
const TEXT_PLAIN: &str = "text/plain;charset=UTF-8";

/// One message of a conversation.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ChatMessage {
    pub id: i64,
    /// The sender's username.
    pub from: String,
    /// The recipient's username.
    pub to: String,
    /// The text, for a text body; else empty (see `content_type`).
    pub text: String,
    pub content_type: String,
    /// Unix seconds.
    pub created_at: i64,
    /// It reached at least one device of the recipient (or was read in the app).
    pub delivered: bool,
    /// The recipient read it in the app.
    pub read: bool,
    /// A voice message's clip: its audio is at `/clips/{clip_id}`.
    pub clip_id: Option<i64>,
}

impl ChatMessage {
    /// `message` as the app shows it, between `from` and `to`.
    pub fn of(message: &Message, from: &str, to: &str, delivered: bool, read: bool) -> ChatMessage {
        let text = if message.content_type.to_ascii_lowercase().starts_with("text/") {
            String::from_utf8_lossy(&message.body).into_owned()
        } else {
            String::new()
        };
        ChatMessage {
            id: message.id,
            from: from.to_owned(),
            to: to.to_owned(),
            text,
            content_type: message.content_type.clone(),
            created_at: message.created_at,
            delivered,
            read,
            clip_id: message.clip_id,
        }
    }
}

/// One conversation in the list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationInfo {
    /// The other person's account id and username.
    pub peer_id: i64,
    pub peer: String,
    pub peer_display_name: String,
    pub last: ChatMessage,
    /// Messages from the peer not read yet.
    pub unread: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationPage {
    pub items: Vec<ConversationInfo>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessagePage {
    /// Newest first.
    pub items: Vec<ChatMessage>,
    /// Pass as `cursor` for older messages; absent at the start of the conversation.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewText {
    /// The text, 1 to 1300 bytes of UTF-8.
    pub text: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ReadUpTo {
    /// The id of the newest message read.
    pub up_to: i64,
}

/// The person's conversations, the one with the newest message first, with unread counts.
#[utoipa::path(get, path = "/me/conversations", tag = "chat", params(Paging), security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "A page of conversations", body = ConversationPage),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_conversations(
    State(state): State<WebState>,
    caller: Caller,
    Params(paging): Params<Paging>,
) -> Result<Json<ConversationPage>, Problem> {
    let limit = page_limit(paging.limit)?;
    let before = id_cursor(paging.cursor.as_deref())?;
    let me = &caller.account;
    let rows = state.store.conversations(me.id, before, limit + 1).await?;
    let more = rows.len() > limit as usize;
    let mut items = Vec::new();
    for summary in rows.into_iter().take(limit as usize) {
        let Some(peer) = state.store.account(summary.peer_id).await? else { continue };
        let last = summary.last;
        let (from, to) = if last.from_account == Some(me.id) { (me, &peer) } else { (&peer, me) };
        let delivered = !state.store.delivered_among(&[last.id]).await?.is_empty();
        let read = last.id <= state.store.read_up_to(to.id, from.id).await?;
        items.push(ConversationInfo {
            peer_id: peer.id,
            last: ChatMessage::of(&last, &from.username, &to.username, delivered || read, read),
            peer: peer.username,
            peer_display_name: peer.display_name,
            unread: summary.unread,
        });
    }
    let next_cursor = if more { items.last().map(|c| c.last.id.to_string()) } else { None };
    Ok(Json(ConversationPage { items, next_cursor }))
}

/// The messages of one conversation, newest first.
#[utoipa::path(get, path = "/me/conversations/{username}/messages", tag = "chat", params(Paging,
        ("username" = String, Path, description = "The other person's username")),
    security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "A page of messages", body = MessagePage),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_messages(
    State(state): State<WebState>,
    caller: Caller,
    Path(username): Path<String>,
    Params(paging): Params<Paging>,
) -> Result<Json<MessagePage>, Problem> {
    let limit = page_limit(paging.limit)?;
    let before = id_cursor(paging.cursor.as_deref())?;
    let me = &caller.account;
    let peer = peer(&state, &username).await?;
    let rows = state.store.conversation(me.id, peer.id, before, limit + 1).await?;
    let ids: Vec<i64> = rows.iter().map(|m| m.id).collect();
    let delivered: HashSet<i64> = state.store.delivered_among(&ids).await?;
    let peer_read = state.store.read_up_to(peer.id, me.id).await?;
    let my_read = state.store.read_up_to(me.id, peer.id).await?;
    let (items, next_cursor) = paged(
        rows,
        limit,
        |m| m.id.to_string(),
        |m| {
            let mine = m.from_account == Some(me.id);
            let (from, to, read) = if mine { (me, &peer, m.id <= peer_read) } else { (&peer, me, m.id <= my_read) };
            ChatMessage::of(&m, &from.username, &to.username, read || delivered.contains(&m.id), read)
        },
    );
    Ok(Json(MessagePage { items, next_cursor }))
}

/// Send a text message: stored, then delivered to the recipient's phones (SIP MESSAGE) and
/// open apps; kept for a recipient who is offline.
#[utoipa::path(post, path = "/me/conversations/{username}/messages", tag = "chat", request_body = NewText,
    params(("username" = String, Path, description = "The recipient's username")),
    security(("session" = []), ("token" = [])),
    responses(
        (status = 201, description = "Stored, on its way", body = ChatMessage),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Empty or too long", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The server is stopping", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn send_message(
    State(state): State<WebState>,
    caller: Caller,
    Path(username): Path<String>,
    Body(body): Body<NewText>,
) -> Result<(StatusCode, Json<ChatMessage>), Problem> {
    let text = body.text.trim_end();
    if text.trim().is_empty() || text.len() > MAX_TEXT_BYTES {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
            format!("a message is 1 to {MAX_TEXT_BYTES} bytes of text"),
        ));
    }
    let me = &caller.account;
    let peer = peer(&state, &username).await?;
    let from_uri = format!("{} <sip:{}@{}>", sambung_sip::text::quote(&me.display_name), me.username, state.domain);
    let new = NewMessage {
        from_uri: from_uri.clone(),
        from_account: Some(me.id),
        to_account: peer.id,
        content_type: TEXT_PLAIN.to_owned(),
        body: text.as_bytes().to_vec(),
        created_at: unix_now(),
    };
    let stored = state.store.store_message(new).await?;
    // Call control delivers it to the phones and announces it (the live connections hear of it).
    deliver(&state, me, &peer, from_uri, &stored).await?;
    Ok((StatusCode::CREATED, Json(ChatMessage::of(&stored, &me.username, &peer.username, false, false))))
}

/// Mark a conversation read up to a message: the sender's apps show it read, and the
/// recipient's phones that come online later are not given it again.
#[utoipa::path(post, path = "/me/conversations/{username}/read", tag = "chat", request_body = ReadUpTo,
    params(("username" = String, Path, description = "The other person's username")),
    security(("session" = []), ("token" = [])),
    responses(
        (status = 204, description = "Marked"),
        (status = 404, description = "No such account, or no such message from them", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn mark_read(
    State(state): State<WebState>,
    caller: Caller,
    Path(username): Path<String>,
    Body(body): Body<ReadUpTo>,
) -> Result<StatusCode, Problem> {
    let me = &caller.account;
    let peer = peer(&state, &username).await?;
    let Some(message) = state.store.message(body.up_to).await? else {
        return Err(Problem::not_found("no such message"));
    };
    let ours = |a: Option<i64>, b: Option<i64>| a == Some(peer.id) && b == Some(me.id);
    if !ours(message.from_account, message.to_account) && !ours(message.to_account, message.from_account) {
        return Err(Problem::not_found("no such message in this conversation"));
    }
    let before = state.store.read_up_to(me.id, peer.id).await?;
    let now_read = state.store.mark_read(me.id, peer.id, body.up_to, unix_now()).await?;
    if now_read > before {
        // Read here counts as taken: phones that come online later are not given these.
        let unread = state.store.conversation(me.id, peer.id, Some(now_read + 1), 200).await?;
        for m in unread.iter().filter(|m| m.id > before && m.to_account == Some(me.id)) {
            state.store.mark_delivered(m.id, "web", unix_now()).await?;
        }
        state.hub.notify(Notice::Read { reader: me.id, peer: peer.id, up_to: now_read });
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn peer(state: &WebState, username: &str) -> Result<Account, Problem> {
    match state.store.account_by_username(username).await? {
        Some(account) if !account.disabled => Ok(account),
        _ => Err(Problem::not_found(format!("no account {username:?}"))),
    }
}

/// Largest voice message accepted, in bytes (about 8 minutes of Opus at 32 kb/s).
pub const MAX_CLIP_BYTES: usize = 2_000_000;
/// Longest voice message, in milliseconds.
pub const MAX_CLIP_MS: i64 = 5 * 60 * 1000;

/// What a voice message's upload says about itself.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClipParams {
    /// Its length in milliseconds (1 to 300000).
    pub duration_ms: i64,
}

/// The audio formats browsers record (MediaRecorder) and play, by their first bytes.
fn audio_type(content_type: &str, audio: &[u8]) -> Option<&'static str> {
    let base = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let looks = match base.as_str() {
        "audio/webm" => audio.starts_with(&[0x1a, 0x45, 0xdf, 0xa3]),
        "audio/ogg" => audio.starts_with(b"OggS"),
        "audio/wav" | "audio/x-wav" | "audio/wave" => audio.starts_with(b"RIFF") && audio.get(8..12) == Some(b"WAVE"),
        "audio/mp4" => audio.get(4..8) == Some(b"ftyp"),
        _ => false,
    };
    if !looks {
        return None;
    }
    Some(match base.as_str() {
        "audio/webm" => "audio/webm",
        "audio/ogg" => "audio/ogg",
        "audio/mp4" => "audio/mp4",
        _ => "audio/wav",
    })
}

/// The text that carries a voice message to SIP phones: its length and a link to it in the app.
fn voice_text(origin: &str, duration_ms: i64, clip_id: i64) -> String {
    let seconds = (duration_ms + 500) / 1000;
    format!("Voice message ({seconds} s): {origin}/#/clip?id={clip_id}")
}

/// The app's address as the sender reached it (for links in messages).
fn origin(state: &WebState, headers: &axum::http::HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)))
        .map_or_else(|| state.domain.to_string(), str::to_owned);
    format!("https://{host}")
}

/// Send a voice message: the body is the recording (`audio/webm`, `audio/ogg`, `audio/mp4` or
/// `audio/wav`, as the browser recorded it). The recipient's apps play it; their phones get a
/// text MESSAGE with a link that plays it in the app.
#[utoipa::path(post, path = "/me/conversations/{username}/voice", tag = "chat",
    params(ClipParams, ("username" = String, Path, description = "The recipient's username")),
    request_body(content = Vec<u8>, content_type = "audio/webm", description = "The recording"),
    security(("session" = []), ("token" = [])),
    responses(
        (status = 201, description = "Stored, on its way", body = ChatMessage),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not a recording in a known format", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Empty or too long", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn send_voice(
    State(state): State<WebState>,
    caller: Caller,
    Path(username): Path<String>,
    Params(params): Params<ClipParams>,
    headers: axum::http::HeaderMap,
    audio: axum::body::Bytes,
) -> Result<(StatusCode, Json<ChatMessage>), Problem> {
    let peer = peer(&state, &username).await?;
    let content_type = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let me = caller.account.clone();
    let message =
        voice_message(&state, &me, &peer, &origin(&state, &headers), content_type, params.duration_ms, &audio).await?;
    Ok((StatusCode::CREATED, Json(message)))
}

/// Checks, stores and delivers a voice message from `me` to `peer`.
async fn voice_message(
    state: &WebState,
    me: &Account,
    peer: &Account,
    origin: &str,
    content_type: &str,
    duration_ms: i64,
    audio: &[u8],
) -> Result<ChatMessage, Problem> {
    if audio.len() > MAX_CLIP_BYTES {
        return Err(Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "a voice message is at most 2 MB"));
    }
    let Some(content_type) = audio_type(content_type, audio) else {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not_audio",
            "send the recording as audio/webm, audio/ogg, audio/mp4 or audio/wav",
        ));
    };
    if !(1..=MAX_CLIP_MS).contains(&duration_ms) {
        return Err(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_value", "duration_ms must be 1 to 300000"));
    }
    let from_uri = format!("{} <sip:{}@{}>", sambung_sip::text::quote(&me.display_name), me.username, state.domain);
    let new = NewMessage {
        from_uri: from_uri.clone(),
        from_account: Some(me.id),
        to_account: peer.id,
        content_type: TEXT_PLAIN.to_owned(),
        body: Vec::new(),
        created_at: unix_now(),
    };
    let stored = state
        .store
        .store_voice_message(new, content_type, duration_ms, audio, |clip| voice_text(origin, duration_ms, clip))
        .await?;
    deliver(state, me, peer, from_uri, &stored).await?;
    if let Err(error) = mail_voice_message(state, me, peer, &stored, content_type, duration_ms, audio).await {
        // The message is stored and on its way; only the copy by mail is missing.
        tracing::warn!(to = peer.id, %error, "cannot queue the voice message's email");
    }
    Ok(ChatMessage::of(&stored, &me.username, &peer.username, false, false))
}

/// Queues a copy of a voice message by email, the recording attached, when `[email]` is set and
/// the recipient asked for one (to their voicemail address, else their account's).
async fn mail_voice_message(
    state: &WebState,
    me: &Account,
    peer: &Account,
    stored: &Message,
    content_type: &str,
    duration_ms: i64,
    audio: &[u8],
) -> Result<(), sambung_store::StoreError> {
    if !state.email {
        return Ok(());
    }
    let settings = state.store.call_settings(peer.id).await?;
    if !settings.voice_messages_email {
        return Ok(());
    }
    let Some(to) = settings.voicemail_email.or_else(|| peer.email.clone()).filter(|to| !to.is_empty()) else {
        return Ok(());
    };
    let extension = match content_type {
        "audio/webm" => "webm",
        "audio/ogg" => "ogg",
        "audio/mp4" => "m4a",
        _ => "wav",
    };
    // "Alice Smith (alice)", or "alice" when the name is the username.
    let who = if me.display_name.is_empty() || me.display_name == me.username {
        me.username.clone()
    } else {
        format!("{} ({})", me.display_name, me.username)
    };
    let subject: String = format!("Voice message from {who}").chars().filter(|c| !c.is_control()).collect();
    let seconds = (duration_ms + 500) / 1000;
    let link = String::from_utf8_lossy(&stored.body);
    let body = format!(
        "{who} sent you a voice message of {seconds} s. The recording is attached.\n\n{link}\n\n\
         Reply in the app, or call {} back.\n",
        me.username
    );
    let file = format!("voice-message-{}.{extension}", stored.id);
    let mail =
        sambung_store::NewMail { to, subject, body, attachment: Some((file, content_type.to_owned(), audio.to_vec())) };
    let id = state.store.enqueue_mail(mail, stored.created_at).await?;
    tracing::info!(to = peer.id, mail = id, "voice message email queued");
    if let Some(wake) = &state.mail_wake {
        wake.notify_one();
    }
    Ok(())
}

/// Hands a stored message to call control, which delivers it to the phones and announces it.
async fn deliver(
    state: &WebState,
    me: &Account,
    peer: &Account,
    from_uri: String,
    stored: &Message,
) -> Result<(), Problem> {
    let outgoing = sambung_pbx::StoredMessage {
        id: stored.id,
        from_uri,
        to_account: peer.id,
        content_type: stored.content_type.clone(),
        body: bytes::Bytes::from(stored.body.clone()),
    };
    state.to_core(CoreEvent::Deliver { message: outgoing, from_account: me.id }).await
}

/// The audio of a voice message, for its sender and its recipient.
#[utoipa::path(get, path = "/clips/{id}", tag = "chat", params(("id" = i64, Path, description = "The clip's id")),
    security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "The recording", content_type = "audio/webm"),
        (status = 404, description = "No such clip for this account", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_clip(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::response::Response, Problem> {
    use axum::response::IntoResponse as _;
    if !state.store.clip_visible_to(id, caller.account.id).await? {
        return Err(Problem::not_found("no such voice message"));
    }
    let clip = state.store.clip(id).await?.ok_or_else(|| Problem::not_found("no such voice message"))?;
    let headers = [
        (axum::http::header::CONTENT_TYPE, clip.content_type),
        (axum::http::header::CACHE_CONTROL, "private, no-store".to_owned()),
    ];
    Ok((headers, clip.audio).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ForwardTo {
    /// The username to send it to.
    pub to: String,
}

/// Forward a voicemail message as a voice message.
#[utoipa::path(post, path = "/me/voicemail/{id}/forward", tag = "chat", request_body = ForwardTo,
    params(("id" = i64, Path, description = "The voicemail message's id")),
    security(("session" = []), ("token" = [])),
    responses(
        (status = 201, description = "Sent as a voice message", body = ChatMessage),
        (status = 404, description = "No such message or account", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn forward_voicemail(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<i64>,
    headers: axum::http::HeaderMap,
    Body(body): Body<ForwardTo>,
) -> Result<(StatusCode, Json<ChatMessage>), Problem> {
    let me = caller.account.clone();
    let voicemail = state.store.voicemails(me.id, None).await?.into_iter().find(|v| v.id == id);
    let Some(voicemail) = voicemail else {
        return Err(Problem::not_found(format!("no voicemail message {id} in your mailbox")));
    };
    let peer = peer(&state, &body.to).await?;
    let audio = state.store.voicemail_audio(id).await?.ok_or_else(|| Problem::not_found("no such message"))?;
    let duration = voicemail.duration_ms.max(1);
    let message = voice_message(&state, &me, &peer, &origin(&state, &headers), "audio/wav", duration, &audio).await?;
    Ok((StatusCode::CREATED, Json(message)))
}
