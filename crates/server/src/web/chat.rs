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
    let outgoing = sambung_pbx::StoredMessage {
        id: stored.id,
        from_uri,
        to_account: peer.id,
        content_type: stored.content_type.clone(),
        body: bytes::Bytes::from(stored.body.clone()),
    };
    // Call control delivers it to the phones and announces it (the live connections hear of it).
    let core = state.core.as_ref().and_then(|c| c.upgrade());
    let Some(core) = core else {
        return Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE, "stopping", "the server is stopping"));
    };
    if core.send(CoreEvent::Deliver { message: outgoing, from_account: me.id }).await.is_err() {
        return Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE, "stopping", "the server is stopping"));
    }
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
