//! The routes of the HTTP API under `/api/v1`, each documented for the OpenAPI document.
// utoipa's `params(...)` expands to paths this lint flags.
#![allow(unused_qualifications)]

use std::net::{IpAddr, SocketAddr};

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use sambung_store::{Account, ApiToken, NewApiToken, NewWebSession};
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{self, Caller, TOKEN_PREFIX};
use super::problem::Problem;
use super::{Body, WebState, unix_now};

/// The OpenAPI document's frame; the paths come from the routes below.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sambung API",
        description = "Accounts, sign-in, API tokens and administration of a Sambung VoIP server. \
                       Errors are RFC 9457 problem details; lists are paged with `limit` and `cursor`."
    ),
    servers((url = "/api/v1")),
    modifiers(&Credentials),
    tags((name = "session", description = "Sign up, sign in and out"),
         (name = "account", description = "The signed-in account"),
         (name = "chat", description = "Conversations, the same as SIP MESSAGE"),
         (name = "admin", description = "Administration (admin role)"),
         (name = "webhooks", description = "Signed events POSTed to other software, and their delivery log"),
         (name = "calls", description = "Call records: queried and exported"))
)]
struct ApiDoc;

/// The two ways to authenticate, as security schemes.
struct Credentials;

impl Modify for Credentials {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                auth::SESSION_COOKIE,
                "The browser's session cookie from POST /session or POST /signup. Writes also need the \
                 session's CSRF token in the X-CSRF-Token header.",
            ))),
        );
        components.add_security_scheme("token", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// Every route of the API, with its documentation.
pub fn routes() -> OpenApiRouter<WebState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(super::session::sign_in, super::session::current_session, super::session::sign_out))
        .routes(routes!(super::session::signup_policy, super::session::sign_up))
        .routes(routes!(super::session::ask_password_reset))
        .routes(routes!(super::session::complete_password_reset))
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(directory))
        .routes(routes!(list_contacts))
        .routes(routes!(super::live::events))
        .routes(routes!(super::live::sip))
        .routes(routes!(super::chat::list_conversations))
        .routes(routes!(super::chat::list_messages, super::chat::send_message))
        .routes(routes!(super::chat::mark_read))
        .routes(routes!(super::chat::send_voice))
        .routes(routes!(super::chat::get_clip))
        .routes(routes!(super::chat::forward_voicemail))
        .routes(routes!(super::account::get_settings, super::account::put_settings))
        .routes(routes!(super::account::put_pin))
        .routes(routes!(super::account::get_greeting, super::account::put_greeting, super::account::delete_greeting))
        .routes(routes!(super::account::list_voicemail))
        .routes(routes!(super::account::voicemail_audio))
        .routes(routes!(super::account::patch_voicemail, super::account::delete_voicemail))
        .routes(routes!(super::account::list_devices))
        .routes(routes!(super::account::sign_out_device))
        .routes(routes!(super::account::list_calls))
        .routes(routes!(super::hooks::list_webhooks, super::hooks::create_webhook))
        .routes(routes!(super::hooks::get_webhook, super::hooks::delete_webhook))
        .routes(routes!(super::hooks::list_deliveries))
        .routes(routes!(super::hooks::replay_delivery))
        .routes(routes!(super::calls::end_call))
        .routes(routes!(super::calls::record_call))
        .routes(routes!(super::calls::originate))
        .routes(routes!(super::calls::transfer_call))
        .routes(routes!(super::records::list_records))
        .routes(routes!(super::records::export_records))
        .routes(routes!(put_contact, delete_contact))
        .routes(routes!(super::admin::list_users, super::admin::create_user))
        .routes(routes!(super::admin::list_invitations, super::admin::create_invitation))
        .routes(routes!(super::admin::update_user))
        .routes(routes!(super::admin::import_users))
        .routes(routes!(super::calls::status))
        .routes(routes!(super::calls::registrations))
        .routes(routes!(super::calls::live_calls))
        .routes(routes!(super::queues::list_queues))
        .routes(routes!(super::recordings::list_recordings))
        .routes(routes!(super::recordings::recording_audio))
        .routes(routes!(super::recordings::delete_recording))
        .routes(routes!(super::queues::get_login, super::queues::put_login))
}

// --- shapes ----------------------------------------------------------------------------------

/// An account as its owner (or an administrator) sees it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Me {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub extension: Option<String>,
    pub admin: bool,
    pub disabled: bool,
    /// The account's SIP address, for phones.
    pub sip_uri: String,
    /// The digest realm phones authenticate in.
    pub realm: String,
}

impl Me {
    pub(super) fn of(account: &Account, state: &WebState) -> Me {
        Me {
            id: account.id,
            username: account.username.clone(),
            display_name: account.display_name.clone(),
            email: account.email.clone(),
            extension: account.extension.clone(),
            admin: account.admin,
            disabled: account.disabled,
            sip_uri: format!("sip:{}@{}", account.username, state.domain),
            realm: account.realm.clone(),
        }
    }
}

/// A signed-in browser's session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    pub account: Me,
    /// Send it in the X-CSRF-Token header of every write made with the session cookie.
    pub csrf_token: String,
    /// Unix seconds; each use extends it.
    pub expires_at: i64,
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordChange")
    }
}

/// A personal API token (its secret is shown only once, when it is made).
#[derive(Debug, Serialize, ToSchema)]
pub struct Token {
    pub id: i64,
    pub name: String,
    /// The token's first characters.
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
    /// The scopes of a token for software; `null` for a personal token.
    pub scopes: Option<Vec<String>>,
}

impl From<ApiToken> for Token {
    fn from(t: ApiToken) -> Token {
        Token {
            id: t.id,
            name: t.name,
            prefix: t.prefix,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            expires_at: t.expires_at,
            scopes: t.scopes.map(|s| s.split(' ').map(str::to_owned).collect()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewToken {
    /// What the token is for, 1 to 64 characters.
    pub name: String,
    /// Days until it expires; without it, never.
    pub expires_in_days: Option<u32>,
    /// A token for software gets only these: `calls:read` (call records, live calls and
    /// registrations), `calls:control`, `messages:send`, `users:manage` (administrators only),
    /// `webhooks`. Without scopes, a personal token with the account's full access.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    pub token: Token,
    /// The token itself: `Authorization: Bearer <secret>`. Shown only now.
    pub secret: String,
}

/// Someone a signed-in user can find and add as a contact.
#[derive(Debug, Serialize, ToSchema)]
pub struct Person {
    pub username: String,
    pub display_name: String,
    pub extension: Option<String>,
    pub sip_uri: String,
}

/// One page of a list; `next_cursor` continues it.
macro_rules! page {
    ($name:ident, $item:ty) => {
        #[derive(Debug, Serialize, ToSchema)]
        pub struct $name {
            pub items: Vec<$item>,
            /// Pass as `cursor` for the next page; absent on the last page.
            pub next_cursor: Option<String>,
        }
    };
}
/// What others see of an account.
#[derive(Debug, Serialize, ToSchema)]
pub struct PresenceInfo {
    /// `offline`, `available`, `ringing`, `in_call` or `dnd`.
    pub status: &'static str,
    /// Registered devices.
    pub devices: u32,
    pub dnd: bool,
}

impl From<&sambung_pbx::presence::Presence> for PresenceInfo {
    fn from(p: &sambung_pbx::presence::Presence) -> PresenceInfo {
        PresenceInfo { status: p.status().as_str(), devices: p.devices, dnd: p.dnd }
    }
}

/// One of the signed-in person's contacts, with its presence now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactInfo {
    /// The account's id (live presence names it).
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub nickname: Option<String>,
    pub extension: Option<String>,
    pub sip_uri: String,
    pub presence: PresenceInfo,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ContactChange {
    /// What to call the contact (up to 64 characters); without it, its display name.
    pub nickname: Option<String>,
}

page!(TokenPage, Token);
page!(ContactPage, ContactInfo);
page!(UserPage, Me);
page!(PersonPage, Person);

/// Paging of a list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Items per page, 1 to 100 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Search {
    /// Part of a username, display name or extension.
    pub q: String,
    /// Items per page, 1 to 100 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Query parameters whose refusals are problem details.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Params<T>, Problem> {
        axum::extract::Query::try_from_uri(&parts.uri)
            .map(|q| Params(q.0))
            .map_err(|e| Problem::bad_request("invalid_query", e.body_text()))
    }
}

pub(crate) fn page_limit(limit: Option<u32>) -> Result<u32, Problem> {
    match limit.unwrap_or(50) {
        n @ 1..=100 => Ok(n),
        _ => Err(Problem::bad_request("invalid_query", "limit must be between 1 and 100")),
    }
}

pub(crate) fn id_cursor(cursor: Option<&str>) -> Result<Option<i64>, Problem> {
    cursor
        .map(|c| {
            c.parse::<i64>().map_err(|_| Problem::bad_request("invalid_query", "cursor is not one this list gave"))
        })
        .transpose()
}

/// Cuts a list fetched with one item more than `limit` into a page and its cursor.
pub(crate) fn paged<T, I>(
    mut rows: Vec<T>,
    limit: u32,
    cursor: impl Fn(&T) -> String,
    item: impl Fn(T) -> I,
) -> (Vec<I>, Option<String>) {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = if more { rows.last().map(&cursor) } else { None };
    (rows.into_iter().map(item).collect(), next)
}

/// The address a request came from (set by the HTTP server for every connection).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

pub(super) fn source(client: Option<Extension<ClientAddr>>) -> IpAddr {
    client.map_or(IpAddr::from([0, 0, 0, 0]), |Extension(ClientAddr(addr))| addr.ip())
}

pub(super) fn user_agent(headers: &axum::http::HeaderMap) -> Option<String> {
    headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|v| v.chars().take(256).collect())
}

/// Signs a browser in as `account`: stores a session and answers with its cookie.
pub(super) async fn start_session(
    state: &WebState,
    account: Account,
    headers: &axum::http::HeaderMap,
    source: IpAddr,
    status: StatusCode,
) -> Result<Response, Problem> {
    let now = unix_now();
    let secret = auth::new_secret();
    let csrf_token = auth::new_secret();
    let expires_at = now + state.session_seconds();
    state
        .store
        .create_web_session(&NewWebSession {
            secret_hash: auth::hash_secret(&secret),
            account_id: account.id,
            csrf_token: csrf_token.clone(),
            now,
            expires_at,
            user_agent: user_agent(headers),
            source: Some(source.to_string()),
        })
        .await?;
    let max_age = u64::try_from(state.session_seconds()).unwrap_or(0);
    let info = SessionInfo { account: Me::of(&account, state), csrf_token, expires_at };
    Ok((status, [(header::SET_COOKIE, auth::session_cookie(&secret, max_age))], Json(info)).into_response())
}

// --- account ---------------------------------------------------------------------------------

/// The signed-in account.
#[utoipa::path(get, path = "/me", tag = "account", security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "The account", body = Me),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    ))]
async fn me(State(state): State<WebState>, caller: Caller) -> Json<Me> {
    Json(Me::of(&caller.account, &state))
}

/// Change the password (for the app and for SIP phones). Every other browser session of the
/// account is signed out.
#[utoipa::path(put, path = "/me/password", tag = "account", request_body = PasswordChange,
    security(("session" = []), ("token" = [])),
    responses(
        (status = 204, description = "Changed"),
        (status = 403, description = "The current password is wrong, or no CSRF token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The new password is refused by the policy", body = Problem, content_type = "application/problem+json"),
    ))]
async fn change_password(
    State(state): State<WebState>,
    caller: Caller,
    Body(body): Body<PasswordChange>,
) -> Result<StatusCode, Problem> {
    let account = &caller.account;
    if !sambung_store::verify_password_hash(&account.password_hash, &body.current_password).await {
        return Err(Problem::forbidden("wrong_credentials", "the current password is wrong"));
    }
    state.store.set_password(&account.username, &body.new_password, &state.realm).await?;
    state.accounts_changed();
    state.store.delete_web_sessions_of(account.id, caller.session_hash()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The account's personal API tokens, newest first.
#[utoipa::path(get, path = "/me/tokens", tag = "account", params(Paging), security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "A page of tokens", body = TokenPage),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_tokens(
    State(state): State<WebState>,
    caller: Caller,
    Params(paging): Params<Paging>,
) -> Result<Json<TokenPage>, Problem> {
    let limit = page_limit(paging.limit)?;
    let before = id_cursor(paging.cursor.as_deref())?;
    let rows = state.store.api_tokens(caller.account.id, before, limit + 1).await?;
    let (items, next_cursor) = paged(rows, limit, |t| t.id.to_string(), Token::from);
    Ok(Json(TokenPage { items, next_cursor }))
}

/// Make a personal API token; its secret is in this answer only.
#[utoipa::path(post, path = "/me/tokens", tag = "account", request_body = NewToken,
    security(("session" = []), ("token" = [])),
    responses(
        (status = 201, description = "Made", body = CreatedToken),
        (status = 422, description = "Bad name or lifetime", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_token(
    State(state): State<WebState>,
    caller: Caller,
    Body(body): Body<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), Problem> {
    let now = unix_now();
    let expires_at = match body.expires_in_days {
        None => None,
        Some(days @ 1..=3650) => Some(now + i64::from(days) * 86_400),
        Some(_) => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_value",
                "expires_in_days must be between 1 and 3650",
            ));
        }
    };
    let scopes = match body.scopes {
        None => None,
        Some(list) => {
            let mut scopes: Vec<String> = Vec::new();
            for scope in list {
                if !auth::SCOPES.contains(&scope.as_str()) {
                    return Err(Problem::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid_value",
                        format!("unknown scope {scope:?}; known: {}", auth::SCOPES.join(", ")),
                    ));
                }
                if scope == "users:manage" && !caller.account.admin {
                    return Err(Problem::forbidden("not_admin", "only administrators may give users:manage"));
                }
                if !scopes.contains(&scope) {
                    scopes.push(scope);
                }
            }
            if scopes.is_empty() {
                return Err(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_value", "give at least one scope"));
            }
            Some(scopes.join(" "))
        }
    };
    let secret = format!("{TOKEN_PREFIX}{}", auth::new_secret());
    let token = state
        .store
        .create_api_token(&NewApiToken {
            account_id: caller.account.id,
            name: body.name,
            secret_hash: auth::hash_secret(&secret),
            prefix: secret.chars().take(TOKEN_PREFIX.len() + 6).collect(),
            now,
            expires_at,
            scopes,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { token: token.into(), secret })))
}

/// Revoke one of the account's API tokens.
#[utoipa::path(delete, path = "/me/tokens/{id}", tag = "account", params(("id" = i64, Path, description = "The token's id")),
    security(("session" = []), ("token" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "The account has no such token", body = Problem, content_type = "application/problem+json"),
    ))]
async fn revoke_token(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, Problem> {
    state.store.revoke_api_token(caller.account.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Find people by username, display name or extension (to add them as contacts).
#[utoipa::path(get, path = "/directory", tag = "account", params(Search), security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "A page of people, by username", body = PersonPage),
        (status = 400, description = "No search text", body = Problem, content_type = "application/problem+json"),
    ))]
async fn directory(
    State(state): State<WebState>,
    _caller: Caller,
    Params(search): Params<Search>,
) -> Result<Json<PersonPage>, Problem> {
    let text = search.q.trim();
    if text.is_empty() || text.chars().count() > 64 {
        return Err(Problem::bad_request("invalid_query", "q must be 1 to 64 characters"));
    }
    let limit = page_limit(search.limit)?;
    let rows = state.store.search_accounts(text, search.cursor.as_deref(), limit + 1).await?;
    let (items, next_cursor) = paged(
        rows,
        limit,
        |a| a.username.clone(),
        |a| Person {
            sip_uri: format!("sip:{}@{}", a.username, state.domain),
            username: a.username,
            display_name: a.display_name,
            extension: a.extension,
        },
    );
    Ok(Json(PersonPage { items, next_cursor }))
}

/// The signed-in person's contacts, by username, each with its presence.
#[utoipa::path(get, path = "/me/contacts", tag = "account", params(Paging), security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "A page of contacts", body = ContactPage),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_contacts(
    State(state): State<WebState>,
    caller: Caller,
    Params(paging): Params<Paging>,
) -> Result<Json<ContactPage>, Problem> {
    let limit = page_limit(paging.limit)?;
    let rows = state.store.contacts(caller.account.id, paging.cursor.as_deref(), limit + 1).await?;
    let (items, next_cursor) = paged(rows, limit, |c| c.account.username.clone(), |c| contact_info(&state, c));
    Ok(Json(ContactPage { items, next_cursor }))
}

fn contact_info(state: &WebState, contact: sambung_store::Contact) -> ContactInfo {
    let a = contact.account;
    ContactInfo {
        id: a.id,
        presence: PresenceInfo::from(&state.hub.get(a.id)),
        sip_uri: format!("sip:{}@{}", a.username, state.domain),
        username: a.username,
        display_name: a.display_name,
        nickname: contact.nickname,
        extension: a.extension,
    }
}

/// Add someone to the contacts (or change their nickname).
#[utoipa::path(put, path = "/me/contacts/{username}", tag = "account", request_body = ContactChange,
    params(("username" = String, Path, description = "The contact's username")),
    security(("session" = []), ("token" = [])),
    responses(
        (status = 201, description = "Added", body = ContactInfo),
        (status = 200, description = "Nickname changed", body = ContactInfo),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Oneself, or a bad nickname", body = Problem, content_type = "application/problem+json"),
    ))]
async fn put_contact(
    State(state): State<WebState>,
    caller: Caller,
    Path(username): Path<String>,
    Body(body): Body<ContactChange>,
) -> Result<(StatusCode, Json<ContactInfo>), Problem> {
    let account = visible_account(&state, &username).await?;
    let new = state.store.put_contact(caller.account.id, account.id, body.nickname.as_deref(), unix_now()).await?;
    state.hub.contacts_changed(caller.account.id);
    let nickname = body.nickname.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    let info = contact_info(&state, sambung_store::Contact { account, nickname, created_at: unix_now() });
    Ok((if new { StatusCode::CREATED } else { StatusCode::OK }, Json(info)))
}

/// Remove someone from the contacts.
#[utoipa::path(delete, path = "/me/contacts/{username}", tag = "account",
    params(("username" = String, Path, description = "The contact's username")),
    security(("session" = []), ("token" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "Not a contact", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_contact(
    State(state): State<WebState>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<StatusCode, Problem> {
    let account = visible_account(&state, &username).await?;
    if !state.store.delete_contact(caller.account.id, account.id).await? {
        return Err(Problem::not_found(format!("{username} is not a contact")));
    }
    state.hub.contacts_changed(caller.account.id);
    Ok(StatusCode::NO_CONTENT)
}

/// An enabled account by username, as the people search shows it.
async fn visible_account(state: &WebState, username: &str) -> Result<Account, Problem> {
    match state.store.account_by_username(username).await? {
        Some(account) if !account.disabled => Ok(account),
        _ => Err(Problem::not_found(format!("no account {username:?}"))),
    }
}
