//! Webhooks through the API: made, listed, removed; their delivery log; a replay.
//!
//! A user's webhook gets the events of their own account and may only reach public addresses;
//! an administrator's may ask for every account's events (`all_accounts`) and reach any address
//! (a CRM on the same network).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use sambung_store::{Delivery, NewWebhook, Webhook};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::api::{Paging, Params, id_cursor, page_limit, paged};
use super::auth::Caller;
use super::problem::Problem;
use super::{Body, WebState, unix_now};
use crate::webhooks::{EVENT_TYPES, sign};

/// A webhook as the API shows it (its secret only when made).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookInfo {
    pub id: i64,
    /// Where events are POSTed.
    pub url: String,
    /// The event types it gets.
    pub events: Vec<String>,
    /// Every account's events (administrators only), not only the owner's.
    pub all_accounts: bool,
    pub description: String,
    /// The owner's username.
    pub owner: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The signing secret (`whsec_...`), in the answer that made the webhook only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookPage {
    pub items: Vec<WebhookInfo>,
    pub next_cursor: Option<String>,
}

/// A webhook to make.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewWebhookBody {
    /// An `https://` (or `http://`) URL.
    pub url: String,
    /// Any of `call.started`, `call.ringing`, `call.answered`, `call.ended`, `voicemail.left`,
    /// `message.received`, `device.registered`, `device.unregistered`.
    pub events: Vec<String>,
    /// Every account's events: administrators only.
    #[serde(default)]
    pub all_accounts: bool,
    #[serde(default)]
    pub description: String,
}

/// One delivery of the log.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryInfo {
    pub id: i64,
    /// The `webhook-id` header: the same for every attempt and for a replay.
    pub message_id: String,
    pub event_type: String,
    /// The JSON body sent.
    pub payload: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i32,
    /// Unix seconds of the next attempt, while pending.
    pub next_attempt_at: Option<i64>,
    /// The receiver's last HTTP status.
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

impl From<Delivery> for DeliveryInfo {
    fn from(d: Delivery) -> DeliveryInfo {
        DeliveryInfo {
            id: d.id,
            message_id: d.message_id,
            event_type: d.event_type,
            payload: d.payload,
            state: d.state,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<DeliveryInfo>,
    pub next_cursor: Option<String>,
}

async fn info(state: &WebState, hook: Webhook, secret: bool) -> Result<WebhookInfo, Problem> {
    let owner = state.store.account(hook.account_id).await?.map(|a| a.username).unwrap_or_default();
    Ok(WebhookInfo {
        id: hook.id,
        url: hook.url,
        events: hook.events.split(' ').map(str::to_owned).collect(),
        all_accounts: hook.all_accounts,
        description: hook.description,
        owner,
        created_at: hook.created_at,
        secret: secret.then_some(hook.secret),
    })
}

/// The webhook `id` when the caller may see it (its owner, or an administrator).
async fn visible(state: &WebState, caller: &Caller, id: i64) -> Result<Webhook, Problem> {
    match state.store.webhook(id).await? {
        Some(hook) if hook.account_id == caller.account.id || caller.account.admin => Ok(hook),
        _ => Err(Problem::not_found("no such webhook")),
    }
}

async fn changed(state: &WebState) -> Result<(), Problem> {
    if let Some(hooks) = &state.webhooks {
        hooks.reload().await?;
    }
    Ok(())
}

/// The caller's webhooks (an administrator's list has everyone's), oldest first.
#[utoipa::path(get, path = "/webhooks", tag = "webhooks", params(Paging), security(("session" = []), ("token" = [])),
    responses((status = 200, description = "A page of webhooks", body = WebhookPage)))]
pub async fn list_webhooks(
    State(state): State<WebState>,
    caller: Caller,
    Params(paging): Params<Paging>,
) -> Result<Json<WebhookPage>, Problem> {
    let limit = page_limit(paging.limit)?;
    let after = id_cursor(paging.cursor.as_deref())?;
    let owner = (!caller.account.admin).then_some(caller.account.id);
    let rows = state.store.webhooks(owner, after, limit + 1).await?;
    let (hooks, next_cursor) = paged(rows, limit, |h| h.id.to_string(), |h| h);
    let mut items = Vec::with_capacity(hooks.len());
    for hook in hooks {
        items.push(info(&state, hook, false).await?);
    }
    Ok(Json(WebhookPage { items, next_cursor }))
}

/// Make a webhook. The answer holds its signing secret, which is not shown again: each delivery
/// carries `webhook-id`, `webhook-timestamp` and `webhook-signature` as Standard Webhooks has
/// them.
#[utoipa::path(post, path = "/webhooks", tag = "webhooks", request_body = NewWebhookBody,
    security(("session" = []), ("token" = [])),
    responses(
        (status = 201, description = "Made; the secret is in this answer only", body = WebhookInfo),
        (status = 403, description = "all_accounts without being an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad URL or event type", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_webhook(
    State(state): State<WebState>,
    caller: Caller,
    Body(body): Body<NewWebhookBody>,
) -> Result<(StatusCode, Json<WebhookInfo>), Problem> {
    if body.all_accounts && !caller.account.admin {
        return Err(Problem::forbidden("not_admin", "only administrators may get every account's events"));
    }
    let mut events = Vec::new();
    for event in body.events {
        if !EVENT_TYPES.contains(&event.as_str()) {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_value",
                format!("unknown event type {event:?}; known: {}", EVENT_TYPES.join(", ")),
            ));
        }
        if !events.contains(&event) {
            events.push(event);
        }
    }
    if url::Url::parse(body.url.trim()).map_or(true, |u| u.host_str().is_none_or(str::is_empty)) {
        return Err(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_value", "url is not a URL with a host"));
    }
    let new = NewWebhook {
        account_id: caller.account.id,
        url: body.url,
        events,
        all_accounts: body.all_accounts,
        secret: sign::new_secret(),
        description: body.description,
        now: unix_now(),
    };
    let hook = state.store.create_webhook(&new).await?;
    changed(&state).await?;
    tracing::info!(webhook = hook.id, account_id = caller.account.id, url = %hook.url, "webhook made");
    Ok((StatusCode::CREATED, Json(info(&state, hook, true).await?)))
}

/// One webhook.
#[utoipa::path(get, path = "/webhooks/{id}", tag = "webhooks", params(("id" = i64, Path, description = "The webhook's id")),
    security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "The webhook", body = WebhookInfo),
        (status = 404, description = "No such webhook of the caller's", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_webhook(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<WebhookInfo>, Problem> {
    let hook = visible(&state, &caller, id).await?;
    Ok(Json(info(&state, hook, false).await?))
}

/// Remove a webhook and its delivery log; what is still pending is not sent.
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks", params(("id" = i64, Path, description = "The webhook's id")),
    security(("session" = []), ("token" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such webhook of the caller's", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_webhook(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, Problem> {
    visible(&state, &caller, id).await?;
    state.store.delete_webhook(id).await?;
    changed(&state).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The delivery log of a webhook, newest first.
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = i64, Path, description = "The webhook's id"), Paging),
    security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPage),
        (status = 404, description = "No such webhook of the caller's", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_deliveries(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<i64>,
    Params(paging): Params<Paging>,
) -> Result<Json<DeliveryPage>, Problem> {
    visible(&state, &caller, id).await?;
    let limit = page_limit(paging.limit)?;
    let before = id_cursor(paging.cursor.as_deref())?;
    let rows = state.store.deliveries(id, before, limit + 1).await?;
    let (items, next_cursor) = paged(rows, limit, |d| d.id.to_string(), DeliveryInfo::from);
    Ok(Json(DeliveryPage { items, next_cursor }))
}

/// Send a delivery again, now: the same message (its `webhook-id` and body), newly signed.
#[utoipa::path(post, path = "/webhooks/{id}/deliveries/{delivery}/replay", tag = "webhooks",
    params(("id" = i64, Path, description = "The webhook's id"), ("delivery" = i64, Path, description = "The delivery's id")),
    security(("session" = []), ("token" = [])),
    responses(
        (status = 202, description = "Queued", body = DeliveryInfo),
        (status = 404, description = "No such webhook or delivery of the caller's", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn replay_delivery(
    State(state): State<WebState>,
    caller: Caller,
    Path((id, delivery)): Path<(i64, i64)>,
) -> Result<(StatusCode, Json<DeliveryInfo>), Problem> {
    visible(&state, &caller, id).await?;
    let copy = state.store.replay_delivery(id, delivery, unix_now()).await?;
    let copy = copy.ok_or_else(|| Problem::not_found("no such delivery"))?;
    if let Some(hooks) = &state.webhooks {
        hooks.wake();
    }
    Ok((StatusCode::ACCEPTED, Json(copy.into())))
}
