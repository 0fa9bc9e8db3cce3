//! Signing up, in and out, and password resets by email.
// utoipa's `params(...)` expands to paths this lint flags.
#![allow(unused_qualifications)]

use std::time::Instant;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use sambung_store::{NewAccount, check_password};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::api::*;
use super::auth::{self, Caller, Credential, LimitKey};
use super::problem::Problem;
use super::{Body, WebState, unix_now};
use crate::config::Signup;

#[derive(Deserialize, ToSchema)]
pub struct SignIn {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn").field("username", &self.username).finish_non_exhaustive()
    }
}

#[derive(Deserialize, ToSchema)]
pub struct SignUp {
    /// 1 to 64 characters of a-z, 0-9, '.', '_' and '-'.
    pub username: String,
    /// At least 8 characters, not containing the username, not a common password.
    pub password: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    /// The invitation code, where sign-up needs one.
    pub invitation: Option<String>,
}

impl std::fmt::Debug for SignUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignUp").field("username", &self.username).finish_non_exhaustive()
    }
}

/// Sign in with username and password: sets the session cookie.
#[utoipa::path(post, path = "/session", tag = "session", request_body = SignIn,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = SessionInfo),
        (status = 401, description = "Wrong username or password", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Sent from another site", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed sign-ins", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn sign_in(
    State(state): State<WebState>,
    client: Option<Extension<ClientAddr>>,
    headers: axum::http::HeaderMap,
    Body(body): Body<SignIn>,
) -> Result<Response, Problem> {
    if !auth::same_origin(&headers) {
        return Err(Problem::forbidden("csrf", "sign-in from another site is refused"));
    }
    let source = source(client);
    let limiter = &state.limits.sign_in_failures;
    let by_source = LimitKey::Source(source);
    let by_user = LimitKey::User(body.username.clone());
    let now = Instant::now();
    if let Err(wait) = limiter.check(&by_source, now).and_then(|()| limiter.check(&by_user, now)) {
        return Err(Problem::too_many("too many failed sign-ins: wait before trying again", wait));
    }
    let account = match state.store.account_by_username(&body.username).await? {
        Some(account) if !account.disabled => Some(account),
        _ => None,
    };
    let verified = match &account {
        Some(account) => sambung_store::verify_password_hash(&account.password_hash, &body.password).await,
        None => {
            // The same work as a real check, so that timing does not tell which usernames exist.
            sambung_store::verify_password_hash(sambung_store::dummy_password_hash(), &body.password).await;
            false
        }
    };
    let Some(account) = account.filter(|_| verified) else {
        limiter.record(by_source, now);
        limiter.record(by_user, now);
        return Err(Problem::new(StatusCode::UNAUTHORIZED, "wrong_credentials", "wrong username or password"));
    };
    limiter.clear(&by_user);
    start_session(&state, account, &headers, source, StatusCode::OK).await
}

/// The current browser session (for a page that was reloaded).
#[utoipa::path(get, path = "/session", tag = "session", security(("session" = [])),
    responses(
        (status = 200, description = "Signed in", body = SessionInfo),
        (status = 401, description = "Not signed in, or the session expired", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn current_session(State(state): State<WebState>, caller: Caller) -> Result<Json<SessionInfo>, Problem> {
    match &caller.credential {
        Credential::Session { session, .. } => Ok(Json(SessionInfo {
            account: Me::of(&caller.account, &state),
            csrf_token: session.csrf_token.clone(),
            expires_at: session.expires_at,
        })),
        Credential::Token(_) => Err(Problem::bad_request("not_a_session", "an API token is not a browser session")),
    }
}

/// Sign out: ends this browser's session and clears its cookie.
#[utoipa::path(delete, path = "/session", tag = "session", security(("session" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Without the CSRF token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn sign_out(State(state): State<WebState>, caller: Caller) -> Result<Response, Problem> {
    if let Some(hash) = caller.session_hash() {
        state.store.delete_web_session(hash).await?;
    }
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, auth::clear_cookie())]).into_response())
}

/// Who may sign up here.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignupPolicy {
    /// `open` (anyone), `invite` (with an invitation) or `closed`.
    pub mode: &'static str,
}

/// Whether this server lets people sign up, and how.
#[utoipa::path(get, path = "/signup", tag = "session",
    responses((status = 200, description = "The sign-up policy", body = SignupPolicy)))]
pub async fn signup_policy(State(state): State<WebState>) -> Json<SignupPolicy> {
    let mode = match state.config.signup {
        Signup::Open => "open",
        Signup::Invite => "invite",
        Signup::Closed => "closed",
    };
    Json(SignupPolicy { mode })
}

/// Make an account and sign in with it. Open to anyone, to holders of an invitation, or to
/// nobody, as `[web] signup` says; the account works on SIP phones at once.
#[utoipa::path(post, path = "/signup", tag = "session", request_body = SignUp,
    responses(
        (status = 201, description = "Account made and signed in", body = SessionInfo),
        (status = 403, description = "Sign-up is closed, or the invitation is missing or invalid", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The username is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Username, password or email refused", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many sign-ups from this address", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn sign_up(
    State(state): State<WebState>,
    client: Option<Extension<ClientAddr>>,
    headers: axum::http::HeaderMap,
    Body(body): Body<SignUp>,
) -> Result<Response, Problem> {
    if state.config.signup == Signup::Closed {
        return Err(Problem::forbidden("signup_closed", "sign-up is closed on this server: ask its administrator"));
    }
    if !auth::same_origin(&headers) {
        return Err(Problem::forbidden("csrf", "sign-up from another site is refused"));
    }
    let source = source(client);
    let now = Instant::now();
    let by_source = LimitKey::Source(source);
    if let Err(wait) = state.limits.signups.check(&by_source, now) {
        return Err(Problem::too_many("too many sign-ups from this address", wait));
    }
    let invitation = body.invitation.as_deref().map(str::trim).filter(|c| !c.is_empty());
    if state.config.signup == Signup::Invite && invitation.is_none() {
        return Err(Problem::forbidden("invitation_required", "sign-up on this server needs an invitation"));
    }
    sambung_store::validate_username(&body.username)?;
    check_password(&body.username, &body.password).map_err(sambung_store::StoreError::from)?;
    let email = body.email.filter(|e| !e.trim().is_empty());
    let display_name = body.display_name.filter(|n| !n.trim().is_empty());
    let new = NewAccount {
        username: body.username,
        password: body.password,
        realm: state.realm.to_string(),
        display_name,
        email,
        extension: None,
        admin: false,
    };
    let account = match (state.config.signup, invitation) {
        (Signup::Invite, Some(code)) => {
            state.store.create_account_invited(new, &auth::hash_secret(code), unix_now()).await?
        }
        _ => state.store.create_account(new).await?,
    };
    state.limits.signups.record(by_source, now);
    state.accounts_changed();
    tracing::info!(username = account.username, %source, "account made by sign-up");
    start_session(&state, account, &headers, source, StatusCode::CREATED).await
}

/// How long a password reset link works, in seconds.
const RESET_SECONDS: i64 = 3600;

#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetAsk {
    /// The account's username or email address.
    pub who: String,
}

/// Ask for a password reset: a link is mailed to the account's email (when it has one). The
/// answer is the same whether or not the account exists, so it tells nobody which do.
#[utoipa::path(post, path = "/password-reset", tag = "session", request_body = ResetAsk,
    responses(
        (status = 202, description = "If the account has an email address, a link is on its way"),
        (status = 429, description = "Too many resets asked for", body = Problem, content_type = "application/problem+json"),
        (status = 501, description = "This server sends no email", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn ask_password_reset(
    State(state): State<WebState>,
    client: Option<Extension<ClientAddr>>,
    headers: axum::http::HeaderMap,
    Body(body): Body<ResetAsk>,
) -> Result<StatusCode, Problem> {
    if !state.email {
        return Err(Problem::new(
            StatusCode::NOT_IMPLEMENTED,
            "email_disabled",
            "this server sends no email: ask its administrator to reset your password",
        ));
    }
    if !auth::same_origin(&headers) {
        return Err(Problem::forbidden("csrf", "a reset from another site is refused"));
    }
    let who = body.who.trim().to_lowercase();
    let now = Instant::now();
    let by_source = LimitKey::Source(source(client));
    let by_user = LimitKey::User(format!("reset:{who}"));
    let limiter = &state.limits.resets;
    if let Err(wait) = limiter.check(&by_source, now).and_then(|()| limiter.check(&by_user, now)) {
        return Err(Problem::too_many("too many password resets asked for: wait before trying again", wait));
    }
    limiter.record(by_source, now);
    limiter.record(by_user, now);
    let account = if who.contains('@') {
        state.store.account_by_email(&who).await?
    } else {
        state.store.account_by_username(&who).await?
    };
    let Some((account, to)) = account.filter(|a| !a.disabled).and_then(|a| a.email.clone().map(|e| (a, e))) else {
        return Ok(StatusCode::ACCEPTED);
    };
    let secret = auth::new_secret();
    let unix = unix_now();
    state.store.create_password_reset(&auth::hash_secret(&secret), account.id, unix, unix + RESET_SECONDS).await?;
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or(&state.domain);
    let link = format!("https://{host}/#/reset?code={secret}");
    let mail = sambung_store::NewMail {
        to,
        subject: "Reset your Sambung password".to_owned(),
        body: format!(
            "Someone (hopefully you) asked to reset the password of {} on this server.\n\n\
             Open this link within an hour to choose a new one:\n\n{link}\n\n\
             If you did not ask for this, ignore this mail: your password stays as it is.\n",
            account.username
        ),
        attachment: None,
    };
    state.store.enqueue_mail(mail, unix).await?;
    if let Some(wake) = &state.mail_wake {
        wake.notify_one();
    }
    tracing::info!(username = account.username, "password reset mailed");
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, ToSchema)]
pub struct ResetDone {
    /// The code from the mailed link.
    pub code: String,
    pub new_password: String,
}

impl std::fmt::Debug for ResetDone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResetDone")
    }
}

/// Choose a new password with the code of a mailed link; every session of the account ends.
#[utoipa::path(post, path = "/password-reset/complete", tag = "session", request_body = ResetDone,
    responses(
        (status = 204, description = "Changed: sign in with the new password"),
        (status = 403, description = "The code is unknown, used or expired", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The new password is refused", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn complete_password_reset(
    State(state): State<WebState>,
    Body(body): Body<ResetDone>,
) -> Result<StatusCode, Problem> {
    let hash = auth::hash_secret(body.code.trim());
    let expired = || Problem::forbidden("invalid_reset", "the link is unknown, used or expired: ask for a new one");
    // The policy first, so that a weak password does not use the link up.
    let account_of = state.store.password_reset_account(&hash, unix_now()).await?.ok_or_else(expired)?;
    let account = state.store.account(account_of).await?.ok_or_else(expired)?;
    check_password(&account.username, &body.new_password).map_err(sambung_store::StoreError::from)?;
    if state.store.take_password_reset(&hash, unix_now()).await? != Some(account.id) {
        return Err(expired());
    }
    state.store.set_password(&account.username, &body.new_password, &state.realm).await?;
    state.store.delete_web_sessions_of(account.id, None).await?;
    state.accounts_changed();
    tracing::info!(username = account.username, "password reset");
    Ok(StatusCode::NO_CONTENT)
}
