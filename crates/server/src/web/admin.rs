//! Administration (the admin role): accounts, invitations, bulk import.
// utoipa's `params(...)` expands to paths this lint flags.
#![allow(unused_qualifications)]

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use sambung_store::{Invitation, NewAccount};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::api::*;
use super::auth::{self, Admin};
use super::problem::Problem;
use super::{Body, WebState, unix_now};

#[derive(Deserialize, ToSchema)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub extension: Option<String>,
    #[serde(default)]
    pub admin: bool,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser").field("username", &self.username).finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewInvitation {
    /// Whom it is for (kept as a note).
    pub email: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationInfo {
    pub id: i64,
    pub email: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub used_by: Option<i64>,
}

impl From<Invitation> for InvitationInfo {
    fn from(i: Invitation) -> InvitationInfo {
        InvitationInfo {
            id: i.id,
            email: i.email,
            created_at: i.created_at,
            expires_at: i.expires_at,
            used_at: i.used_at,
            used_by: i.used_by,
        }
    }
}

/// One page of invitations; `next_cursor` continues it.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationPage {
    pub items: Vec<InvitationInfo>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedInvitation {
    pub invitation: InvitationInfo,
    /// The code to give the invited person (shown only now).
    pub code: String,
    /// The app's sign-up page with the code filled in (relative to the server).
    pub link: String,
}

/// Every account, by username.
#[utoipa::path(get, path = "/users", tag = "admin", params(Paging), security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "A page of accounts", body = UserPage),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_users(
    State(state): State<WebState>,
    _admin: Admin,
    Params(paging): Params<Paging>,
) -> Result<Json<UserPage>, Problem> {
    let limit = page_limit(paging.limit)?;
    let rows = state.store.accounts_page(paging.cursor.as_deref(), limit + 1).await?;
    let (items, next_cursor) = paged(rows, limit, |a| a.username.clone(), |a| Me::of(&a, &state));
    Ok(Json(UserPage { items, next_cursor }))
}

/// Make an account (whatever `[web] signup` says).
#[utoipa::path(post, path = "/users", tag = "admin", request_body = NewUser, security(("session" = []), ("token" = [])),
    responses(
        (status = 201, description = "Made", body = Me),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Username or extension taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is refused", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_user(
    State(state): State<WebState>,
    Admin(admin): Admin,
    Body(body): Body<NewUser>,
) -> Result<(StatusCode, Json<Me>), Problem> {
    let new = NewAccount {
        username: body.username,
        password: body.password,
        realm: state.realm.to_string(),
        display_name: body.display_name.filter(|n| !n.trim().is_empty()),
        email: body.email.filter(|e| !e.trim().is_empty()),
        extension: body.extension.filter(|e| !e.trim().is_empty()),
        admin: body.admin,
    };
    let account = state.store.create_account(new).await?;
    state.accounts_changed();
    tracing::info!(username = account.username, by = admin.account.username, "account made by an administrator");
    Ok((StatusCode::CREATED, Json(Me::of(&account, &state))))
}

/// Invitations to sign up, newest first.
#[utoipa::path(get, path = "/invitations", tag = "admin", params(Paging), security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "A page of invitations", body = InvitationPage),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_invitations(
    State(state): State<WebState>,
    _admin: Admin,
    Params(paging): Params<Paging>,
) -> Result<Json<InvitationPage>, Problem> {
    let limit = page_limit(paging.limit)?;
    let before = id_cursor(paging.cursor.as_deref())?;
    let rows = state.store.invitations(before, limit + 1).await?;
    let (items, next_cursor) = paged(rows, limit, |i| i.id.to_string(), InvitationInfo::from);
    Ok(Json(InvitationPage { items, next_cursor }))
}

/// Make an invitation to sign up; its code is in this answer only.
#[utoipa::path(post, path = "/invitations", tag = "admin", request_body = NewInvitation,
    security(("session" = []), ("token" = [])),
    responses(
        (status = 201, description = "Made", body = CreatedInvitation),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_invitation(
    State(state): State<WebState>,
    Admin(admin): Admin,
    Body(body): Body<NewInvitation>,
) -> Result<(StatusCode, Json<CreatedInvitation>), Problem> {
    let now = unix_now();
    let code = auth::new_secret();
    let expires_at = now + i64::from(state.config.invitation_days) * 86_400;
    let email = body.email.as_deref().map(str::trim).filter(|e| !e.is_empty());
    let invitation = state
        .store
        .create_invitation(&auth::hash_secret(&code), Some(admin.account.id), email, now, expires_at)
        .await?;
    // The code travels in the fragment, which browsers never send to a server.
    let link = format!("/#/signup?invitation={code}");
    Ok((StatusCode::CREATED, Json(CreatedInvitation { invitation: invitation.into(), code, link })))
}

/// What an administrator changes in an account; absent fields stay.
#[derive(Deserialize, ToSchema)]
pub struct UserChange {
    /// A disabled account can neither sign in nor register, call or be called.
    pub disabled: Option<bool>,
    pub admin: Option<bool>,
    /// A new password (the account's sessions end).
    pub password: Option<String>,
}

impl std::fmt::Debug for UserChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserChange")
            .field("disabled", &self.disabled)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

/// Disable or enable an account, make it an administrator or not, or reset its password.
#[utoipa::path(patch, path = "/users/{username}", tag = "admin", request_body = UserChange,
    params(("username" = String, Path, description = "The account's username")),
    security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "Changed", body = Me),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such account", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The password is refused, or an administrator would lock themselves out", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_user(
    State(state): State<WebState>,
    Admin(admin): Admin,
    Path(username): Path<String>,
    Body(body): Body<UserChange>,
) -> Result<Json<Me>, Problem> {
    let account = state
        .store
        .account_by_username(&username)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no account {username:?}")))?;
    if account.id == admin.account.id && (body.disabled == Some(true) || body.admin == Some(false)) {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "self_lockout",
            "an administrator cannot disable themselves or take their own role",
        ));
    }
    if let Some(password) = &body.password {
        state.store.set_password(&username, password, &state.realm).await?;
        state.store.delete_web_sessions_of(account.id, None).await?;
    }
    if let Some(disabled) = body.disabled {
        state.store.set_disabled(&username, disabled).await?;
    }
    if let Some(admin_role) = body.admin {
        state.store.set_admin(&username, admin_role).await?;
    }
    state.accounts_changed();
    tracing::info!(username, by = admin.account.username, "account changed by an administrator");
    let account = state.store.account_by_username(&username).await?.ok_or_else(|| Problem::not_found("gone"))?;
    Ok(Json(Me::of(&account, &state)))
}

/// How an import went.
#[derive(Debug, Serialize, ToSchema)]
pub struct Imported {
    /// Accounts made.
    pub imported: usize,
}

/// Import accounts from CSV (as `sambung user import`): a header line (username and password
/// required; display_name, email, extension, admin optional), one account per line. Every line
/// is checked first; if any is refused, none is made and the problem's `detail` lists them.
#[utoipa::path(post, path = "/users/import", tag = "admin",
    request_body(content = String, content_type = "text/csv", description = "The accounts"),
    security(("session" = []), ("token" = [])),
    responses(
        (status = 201, description = "Every account made", body = Imported),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Lines refused; nothing made", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn import_users(
    State(state): State<WebState>,
    Admin(admin): Admin,
    body: String,
) -> Result<(StatusCode, Json<Imported>), Problem> {
    let refused = |lines: Vec<String>| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "import_refused",
            format!("nothing imported: {}", lines.join("; ")),
        )
    };
    let accounts = crate::cli::import::parse(&body, &state.realm).map_err(refused)?;
    let imported = match state.store.import_accounts(accounts).await? {
        Ok(n) => n,
        Err(rows) => {
            return Err(refused(
                rows.into_iter().map(|r| format!("row {} ({}): {}", r.row, r.username, r.error)).collect(),
            ));
        }
    };
    state.accounts_changed();
    tracing::info!(imported, by = admin.account.username, "accounts imported");
    Ok((StatusCode::CREATED, Json(Imported { imported })))
}
