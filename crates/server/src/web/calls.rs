//! Calls as operators and software see them: the server's status, registrations and calls in
//! progress, and call control through the API (end a call, transfer a party, click-to-call).
//! What it asks of call control goes as a [`CoreEvent`]; how it went comes back as domain events
//! (webhooks).
// utoipa's `params(...)` expands to paths this lint flags.
#![allow(unused_qualifications)]

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use sambung_pbx::presence::CallPresence;
use sambung_store::Account;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::account::settings_problem;
use super::api::{Paging, Params, id_cursor, page_limit, paged};
use super::auth::Caller;
use super::problem::Problem;
use super::{Body, WebState, unix_now};
use crate::cli::settings::check_target;
use crate::transport::Event as CoreEvent;

/// The server's state, for administrators.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerStatus {
    pub version: &'static str,
    /// Seconds since the server started.
    pub uptime_secs: u64,
    pub accounts: usize,
    /// Accounts with a registered device.
    pub accounts_online: usize,
    /// Registered devices (bindings in force).
    pub registrations: usize,
    pub calls_in_progress: usize,
    /// `sqlite` or `postgres`.
    pub database: &'static str,
}

/// One account's part in a live call.
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveParty {
    pub username: String,
    /// `caller` or `callee`.
    pub role: &'static str,
    pub answered: bool,
}

/// A call in progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveCall {
    /// The call's number within the server.
    pub call: u64,
    pub parties: Vec<LiveParty>,
}

/// A registration in force, for administrators.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registration {
    pub username: String,
    pub contact: String,
    pub user_agent: Option<String>,
    pub source: String,
    pub expires_at: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegistrationPage {
    pub items: Vec<Registration>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LiveCallPage {
    pub items: Vec<LiveCall>,
    pub next_cursor: Option<String>,
}

/// The server's state: uptime, accounts, registrations, calls in progress.
#[utoipa::path(get, path = "/status", tag = "admin", security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "The state", body = ServerStatus),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn status(State(state): State<WebState>, _admin: super::auth::Admin) -> Result<Json<ServerStatus>, Problem> {
    let now = unix_now();
    let accounts = state.store.list_accounts().await?.len();
    let registrations = state.store.all_bindings().await?.iter().filter(|b| b.expires_at > now).count();
    Ok(Json(ServerStatus {
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: state.started.elapsed().as_secs(),
        accounts,
        accounts_online: state.hub.online(),
        registrations,
        calls_in_progress: state.hub.calls().len(),
        database: match state.store.backend() {
            sambung_store::Backend::Sqlite => "sqlite",
            sambung_store::Backend::Postgres => "postgres",
        },
    }))
}

/// Every registration in force, by username and contact.
#[utoipa::path(get, path = "/registrations", tag = "admin", params(Paging), security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "A page of registrations", body = RegistrationPage),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn registrations(
    State(state): State<WebState>,
    _admin: super::auth::Admin,
    Params(paging): Params<Paging>,
) -> Result<Json<RegistrationPage>, Problem> {
    let limit = page_limit(paging.limit)?;
    let now = unix_now();
    let names: std::collections::HashMap<i64, String> =
        state.store.list_accounts().await?.into_iter().map(|a| (a.id, a.username)).collect();
    let mut rows: Vec<Registration> = state
        .store
        .all_bindings()
        .await?
        .into_iter()
        .filter(|b| b.expires_at > now)
        .map(|b| Registration {
            username: names.get(&b.account_id).cloned().unwrap_or_default(),
            contact: b.contact,
            user_agent: b.user_agent,
            source: b.received,
            expires_at: b.expires_at,
        })
        .collect();
    rows.sort_by(|a, b| (&a.username, &a.contact).cmp(&(&b.username, &b.contact)));
    let key = |r: &Registration| format!("{}\n{}", r.username, r.contact);
    let after = paging.cursor.unwrap_or_default();
    let rows: Vec<_> = rows.into_iter().filter(|r| key(r) > after).take(limit as usize + 1).collect();
    let (items, next_cursor) = paged(rows, limit, key, |r| r);
    Ok(Json(RegistrationPage { items, next_cursor }))
}

/// The calls in progress.
#[utoipa::path(get, path = "/calls/live", tag = "admin", params(Paging), security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "A page of calls", body = LiveCallPage),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn live_calls(
    State(state): State<WebState>,
    _admin: super::auth::Admin,
    Params(paging): Params<Paging>,
) -> Result<Json<LiveCallPage>, Problem> {
    let limit = page_limit(paging.limit)?;
    let after = id_cursor(paging.cursor.as_deref())?.unwrap_or(-1);
    let names: std::collections::HashMap<i64, String> =
        state.store.list_accounts().await?.into_iter().map(|a| (a.id, a.username)).collect();
    let rows: Vec<_> = state
        .hub
        .calls()
        .into_iter()
        .filter(|(call, _)| i64::try_from(*call).unwrap_or(i64::MAX) > after)
        .take(limit as usize + 1)
        .collect();
    let (items, next_cursor) = paged(
        rows,
        limit,
        |(call, _)| call.to_string(),
        |(call, parties)| LiveCall {
            call,
            parties: parties
                .into_iter()
                .map(|(id, p)| LiveParty {
                    username: names.get(&id).cloned().unwrap_or_default(),
                    role: if p.initiator { "caller" } else { "callee" },
                    answered: p.answered,
                })
                .collect(),
        },
    );
    Ok(Json(LiveCallPage { items, next_cursor }))
}

/// End a call in progress: both sides are hung up (BYE) once it is answered; before that the
/// caller hears 480 and the ringing phones stop. An administrator may end any call, anyone else
/// the calls they are in.
#[utoipa::path(delete, path = "/calls/live/{call}", tag = "calls",
    params(("call" = u64, Path, description = "The call's number (from /calls/live or the webhooks)")),
    security(("session" = []), ("token" = [])),
    responses(
        (status = 202, description = "Being ended"),
        (status = 404, description = "No such call in progress of the caller's", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn end_call(
    State(state): State<WebState>,
    caller: Caller,
    Path(call): Path<u64>,
) -> Result<StatusCode, Problem> {
    live_call_of(&state, &caller, call)?;
    state.to_core(CoreEvent::EndCall { call }).await?;
    tracing::info!(call, by = caller.account.id, "call ended through the API");
    Ok(StatusCode::ACCEPTED)
}

/// Record a call in progress from now on: the server writes what each party says on a
/// channel of its own (`<data_dir>/recordings`). An administrator may record any call, anyone
/// else the calls they are in. A call not answered between two phones is not recorded.
#[utoipa::path(post, path = "/calls/live/{call}/record", tag = "calls",
    params(("call" = u64, Path, description = "The call's number (from /calls/live or the webhooks)")),
    security(("session" = []), ("token" = [])),
    responses(
        (status = 202, description = "Being recorded"),
        (status = 404, description = "No such call in progress of the caller's", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn record_call(
    State(state): State<WebState>,
    caller: Caller,
    Path(call): Path<u64>,
) -> Result<StatusCode, Problem> {
    live_call_of(&state, &caller, call)?;
    state.to_core(CoreEvent::RecordCall { call }).await?;
    tracing::info!(call, by = caller.account.id, "call recording asked for through the API");
    Ok(StatusCode::ACCEPTED)
}

/// Where a party of a call is sent.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct NewTransfer {
    /// Who is called: a username or extension of this service, or a `sip:` URI.
    pub to: String,
    /// Which party is sent there and stays on: `caller` (the default) or `callee`. The other
    /// party's leg ends once the new call is answered.
    #[serde(default)]
    pub party: Option<String>,
}

/// Transfer a call in progress: the phone of `party` is asked (SIP REFER) to call `to` itself;
/// once that call is answered, this call ends for both sides. If the phone refuses, or its call
/// fails, this call goes on. How it went comes as a `transfer.ended` webhook. An administrator
/// may transfer any call, anyone else the calls they are in.
#[utoipa::path(post, path = "/calls/live/{call}/transfer", tag = "calls", request_body = NewTransfer,
    params(("call" = u64, Path, description = "The call's number (from /calls/live or the webhooks)")),
    security(("session" = []), ("token" = [])),
    responses(
        (status = 202, description = "The party's phone is being asked"),
        (status = 404, description = "No such call in progress of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The call is not answered yet", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a party, or not a user, extension or sip: URI that can be called", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn transfer_call(
    State(state): State<WebState>,
    caller: Caller,
    Path(call): Path<u64>,
    Body(body): Body<NewTransfer>,
) -> Result<StatusCode, Problem> {
    let parties = live_call_of(&state, &caller, call)?;
    let side = match body.party.as_deref().unwrap_or("caller") {
        "caller" => sambung_pbx::Side::A,
        "callee" => sambung_pbx::Side::B,
        other => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_value",
                format!("party {other:?}: `caller` or `callee`"),
            ));
        }
    };
    if !parties.iter().any(|(_, p)| p.answered) {
        return Err(Problem::new(StatusCode::CONFLICT, "not_answered", "the call is not answered yet"));
    }
    // The party who stays on may not be sent to themselves.
    let staying = parties.iter().find(|(_, p)| p.initiator == (side == sambung_pbx::Side::A)).map(|(id, _)| *id);
    let account = match staying {
        Some(id) => state.store.account(id).await?,
        None => None,
    };
    let to = callable_target(&state, account.as_ref().unwrap_or(&caller.account), &body.to).await?;
    state.to_core(CoreEvent::TransferCall { call, side, target: to.clone() }).await?;
    tracing::info!(call, to, by = caller.account.id, "call transfer through the API");
    Ok(StatusCode::ACCEPTED)
}

/// What click-to-call rings and calls.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct NewOrigination {
    /// Whose devices ring first: a username or extension; the signed-in user (or the token's)
    /// when absent. Only an administrator may name someone else.
    #[serde(default)]
    pub from: Option<String>,
    /// Who is then called: a username or extension of this service, or a `sip:` URI.
    pub to: String,
}

/// A click-to-call attempt under way.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Origination {
    /// The attempt's number, as `originate.ended` webhooks name it.
    pub id: u64,
    /// The user whose devices ring.
    pub from: String,
    /// What the answering device calls.
    pub to: String,
}

/// Click-to-call: every registered device of `from` rings; the one that answers is asked
/// (SIP REFER) to call `to`, so the call that follows is `from`'s own call, with its record,
/// its webhooks and its quality figures. How the attempt ends (connected, no answer, busy, the
/// call failed) comes as an `originate.ended` webhook.
#[utoipa::path(post, path = "/calls/originate", tag = "calls", request_body = NewOrigination,
    security(("session" = []), ("token" = [])),
    responses(
        (status = 202, description = "The devices are being rung", body = Origination),
        (status = 403, description = "Someone else's devices, and not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The user has no device registered", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a user, extension or sip: URI that can be called", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn originate(
    State(state): State<WebState>,
    caller: Caller,
    Body(body): Body<NewOrigination>,
) -> Result<(StatusCode, Json<Origination>), Problem> {
    let from = match body.from.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
        None => caller.account.clone(),
        Some(name) if name.eq_ignore_ascii_case(&caller.account.username) => caller.account.clone(),
        Some(name) => {
            if !caller.account.admin {
                return Err(Problem::forbidden("not_admin", "only an administrator may ring someone else's devices"));
            }
            let found = match state.store.account_by_username(&name.to_ascii_lowercase()).await? {
                Some(account) => Some(account),
                None => state.store.account_by_extension(name).await?,
            };
            found.ok_or_else(|| Problem::not_found(format!("no user {name:?}")))?
        }
    };
    if from.disabled {
        return Err(Problem::not_found(format!("no user {:?}", from.username)));
    }
    let to = callable_target(&state, &from, &body.to).await?;
    let now = unix_now();
    if !state.store.bindings(from.id).await?.iter().any(|b| b.expires_at > now) {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "no_device",
            format!("{} has no device registered to ring", from.username),
        ));
    }
    let id = next_origination(u64::try_from(now).unwrap_or(0));
    state.to_core(CoreEvent::Originate { id, account_id: from.id, target: to.clone() }).await?;
    tracing::info!(id, from = from.username, to, by = caller.account.id, "click-to-call through the API");
    Ok((StatusCode::ACCEPTED, Json(Origination { id, from: from.username, to })))
}

/// A number for a new click-to-call attempt: the second it was made in the high bits, so that
/// numbers are not reused across restarts, and a counter below.
fn next_origination(now: u64) -> u64 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    (now << 20) | (count & 0xF_FFFF)
}

/// The parties of live call `call`, when `caller` may act on it (an administrator, or one of
/// them); 404 otherwise, so that nobody learns of others' calls.
fn live_call_of(state: &WebState, caller: &Caller, call: u64) -> Result<Vec<(i64, CallPresence)>, Problem> {
    let parties = state.hub.calls().into_iter().find(|(id, _)| *id == call).map(|(_, parties)| parties);
    match parties {
        Some(parties) if caller.account.admin || parties.iter().any(|(id, _)| *id == caller.account.id) => Ok(parties),
        _ => Err(Problem::not_found("no such call in progress")),
    }
}

/// `to` as someone `account` can be put through to: a username, an extension or a `sip:` URI
/// (the forwarding targets' rules); 422 otherwise.
async fn callable_target(state: &WebState, account: &Account, to: &str) -> Result<String, Problem> {
    let to = to.trim();
    if to.is_empty() || to == "none" {
        return Err(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_target", "`to` names no one to call"));
    }
    let checked = check_target(&state.store, account, "to", to.to_owned()).await.map_err(settings_problem)?;
    Ok(checked.unwrap_or_default())
}
