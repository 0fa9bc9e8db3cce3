//! The live connection of a signed-in tab: a WebSocket at `/api/v1/events` that carries what
//! changes while the page is open, as JSON text frames:
//!
//! - `{"type":"presence","id":ID,"presence":{"status":...,"devices":N,"dnd":false}}` for the
//!   person's own account and each of their contacts;
//! - `{"type":"contacts_changed"}` when their contact list changed elsewhere (another tab);
//! - `{"type":"message","message":{...}}` for a text message they sent or got (from the app or
//!   a phone), as `GET /me/conversations/{username}/messages` lists it;
//! - `{"type":"delivered","id":ID}` when a message they sent reached a device;
//! - `{"type":"read","reader":ID,"peer":ID,"up_to":ID}` when they or the other side read a
//!   conversation;
//! - `{"type":"resync"}` when the connection fell behind and missed notices: reload.
//!
//! It is authenticated like any API request (the session cookie, which a same-site WebSocket
//! carries, or a token), and a browser's `Origin` must be the server's own (no cross-site
//! WebSocket hijacking). A connection whose session ends is closed (code 4001).

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tracing::debug;

use super::api::PresenceInfo;
use super::auth::{self, Caller, Credential};
use super::chat::ChatMessage;
use super::problem::Problem;
use super::{WebState, unix_now};
use crate::presence::Notice;

/// How often a live connection checks that its session still stands, and pings.
const CHECK_EVERY: Duration = Duration::from_secs(30);
/// The close code of a connection whose session ended.
pub const SESSION_ENDED: u16 = 4001;

/// The live connection: presence of the person and their contacts, and other changes, while
/// the page is open (a WebSocket; see the module documentation for its messages).
#[utoipa::path(get, path = "/events", tag = "account", security(("session" = []), ("token" = [])),
    responses(
        (status = 101, description = "Switched to the WebSocket of live changes"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "From another site", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn events(
    State(state): State<WebState>,
    caller: Caller,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, Problem> {
    if !auth::same_origin(&headers) {
        return Err(Problem::forbidden("csrf", "a live connection from another site is refused"));
    }
    Ok(upgrade.on_upgrade(move |socket| live(socket, state, caller)))
}

/// The app's phone line: SIP over WebSocket (RFC 7118, subprotocol `sip`), signed in by the
/// app's session rather than by digest. Every request on it acts as the signed-in person (a
/// REGISTER of their own address, calls and messages from it); the browser is then a device
/// of their account like any phone.
#[utoipa::path(get, path = "/sip", tag = "account", security(("session" = [])),
    responses(
        (status = 101, description = "Switched to SIP over WebSocket"),
        (status = 400, description = "No `sip` subprotocol offered", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "From another site, or signed in by a token", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "SIP is not served here", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn sip(
    State(state): State<WebState>,
    caller: Caller,
    headers: HeaderMap,
    http_peer: Option<axum::extract::Extension<crate::transport::ws::HttpPeer>>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, Problem> {
    if !auth::same_origin(&headers) {
        return Err(Problem::forbidden("csrf", "a SIP connection from another site is refused"));
    }
    if !matches!(caller.credential, Credential::Session { .. }) {
        return Err(Problem::forbidden("session", "the SIP WebSocket is for the app's session, not for tokens"));
    }
    let (Some(ctx), Some(axum::extract::Extension(http_peer))) = (state.sip.clone(), http_peer) else {
        return Err(Problem::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "sip",
            "SIP over WebSocket is not served here",
        ));
    };
    let upgrade = upgrade.protocols([crate::transport::ws::SUBPROTOCOL]);
    if upgrade.selected_protocol().is_none() {
        return Err(Problem::bad_request("subprotocol", "the WebSocket subprotocol \"sip\" is required (RFC 7118)"));
    }
    let account = caller.account.id;
    debug!(account, remote = %http_peer.peer.remote, "the app's SIP WebSocket opens");
    Ok(upgrade
        .max_message_size(ctx.max_message_size)
        .on_upgrade(move |socket| crate::transport::ws::session(socket, http_peer, ctx, Some(account))))
}

async fn live(mut socket: WebSocket, state: WebState, caller: Caller) {
    let me = caller.account.id;
    let mut notices = state.hub.subscribe();
    let mut watched = match watched(&state, me).await {
        Some(ids) => ids,
        None => return,
    };
    // What stands now, so that a page that loaded a moment ago misses nothing.
    for id in &watched {
        let presence = state.hub.get(*id);
        if send(&mut socket, presence_message(*id, &presence)).await.is_err() {
            return;
        }
    }
    let mut check = tokio::time::interval(CHECK_EVERY);
    check.tick().await;
    debug!(account = caller.account.username, "live connection opened");
    loop {
        tokio::select! {
            notice = notices.recv() => {
                let message = match notice {
                    Ok(Notice::Presence { account_id, presence }) if watched.contains(&account_id) => {
                        presence_message(account_id, &presence)
                    }
                    Ok(Notice::ContactsChanged { account_id }) if account_id == me => {
                        match self::watched(&state, me).await {
                            Some(ids) => watched = ids,
                            None => break,
                        }
                        json!({ "type": "contacts_changed" }).to_string()
                    }
                    Ok(Notice::Message { message, from_account, from, to })
                        if from_account == me || message.to_account == Some(me) =>
                    {
                        let message = ChatMessage::of(&message, &from, &to, false, false);
                        json!({ "type": "message", "message": message }).to_string()
                    }
                    Ok(Notice::Delivered { message_id, from_account }) if from_account == me => {
                        json!({ "type": "delivered", "id": message_id }).to_string()
                    }
                    Ok(Notice::Read { reader, peer, up_to }) if reader == me || peer == me => {
                        json!({ "type": "read", "reader": reader, "peer": peer, "up_to": up_to }).to_string()
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => json!({ "type": "resync" }).to_string(),
                    Err(RecvError::Closed) => break,
                };
                if send(&mut socket, message).await.is_err() {
                    break;
                }
            }
            received = socket.recv() => match received {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = check.tick() => {
                if !still_signed_in(&state, &caller).await {
                    let frame = CloseFrame { code: SESSION_ENDED, reason: "the session has ended".into() };
                    let _ = socket.send(Message::Close(Some(frame))).await;
                    break;
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
        }
    }
    debug!(account = caller.account.username, "live connection closed");
}

/// The accounts whose presence this person sees: their own and their contacts'.
async fn watched(state: &WebState, me: i64) -> Option<HashSet<i64>> {
    let mut ids: HashSet<i64> = state.store.contact_ids(me).await.ok()?.into_iter().collect();
    ids.insert(me);
    Some(ids)
}

async fn still_signed_in(state: &WebState, caller: &Caller) -> bool {
    let now = unix_now();
    match &caller.credential {
        Credential::Session { secret_hash, .. } => {
            matches!(state.store.web_session(secret_hash, now, now + state.session_seconds()).await, Ok(Some(_)))
        }
        Credential::Token(token) => {
            let found = state.store.api_tokens(caller.account.id, Some(token.id + 1), 1).await;
            matches!(found, Ok(t) if t.first().is_some_and(|t| t.id == token.id && t.expires_at.is_none_or(|e| e > now)))
        }
    }
}

fn presence_message(id: i64, presence: &sambung_pbx::presence::Presence) -> String {
    json!({ "type": "presence", "id": id, "presence": PresenceInfo::from(presence) }).to_string()
}

async fn send(socket: &mut WebSocket, text: String) -> Result<(), axum::Error> {
    socket.send(Message::Text(text.into())).await
}
