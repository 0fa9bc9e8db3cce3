//! Call queues in the API: each queue's callers, figures and agents for administrators, and an
//! agent logging in to its queues or out (as `*45` / `*46` do from a phone).
// utoipa's `params(...)` expands to paths this lint flags.
#![allow(unused_qualifications)]

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::problem::Problem;
use super::{Body, WebState};
use crate::apps::queue::QueueView;

/// An agent's login, as it asks for it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AgentLogin {
    pub logged_in: bool,
}

/// An agent's login, as it is now.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentLoginState {
    pub logged_in: bool,
    /// The queues the account is an agent of.
    pub queues: Vec<String>,
}

/// Every queue: callers waiting, figures since the server started, agents and their states.
#[utoipa::path(get, path = "/queues", tag = "admin", security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "The queues", body = Vec<QueueView>),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_queues(
    State(state): State<WebState>,
    _admin: super::auth::Admin,
) -> Result<Json<Vec<QueueView>>, Problem> {
    let views = state.queues.as_ref().map(|q| q.views(std::time::Instant::now())).unwrap_or_default();
    Ok(Json(views))
}

/// The signed-in agent's login to its queues.
#[utoipa::path(get, path = "/me/queue-login", tag = "account", security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "The login", body = AgentLoginState),
        (status = 404, description = "Not an agent of any queue", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_login(State(state): State<WebState>, caller: Caller) -> Result<Json<AgentLoginState>, Problem> {
    let queues = state.queues.as_ref().ok_or_else(not_agent)?;
    let names = queues.queues_of(&caller.account.username);
    let logged_in = queues.is_logged_in(&caller.account.username).ok_or_else(not_agent)?;
    Ok(Json(AgentLoginState { logged_in, queues: names }))
}

/// Logs the signed-in agent in to its queues, or out; kept across restarts.
#[utoipa::path(put, path = "/me/queue-login", tag = "account", request_body = AgentLogin,
    security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "The login", body = AgentLoginState),
        (status = 404, description = "Not an agent of any queue", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_login(
    State(state): State<WebState>,
    caller: Caller,
    Body(body): Body<AgentLogin>,
) -> Result<Json<AgentLoginState>, Problem> {
    let queues = state.queues.as_ref().ok_or_else(not_agent)?;
    let username = &caller.account.username;
    if !queues.set_login(username, body.logged_in, std::time::Instant::now()) {
        return Err(not_agent());
    }
    state.store.set_agent_login(caller.account.id, body.logged_in).await?;
    Ok(Json(AgentLoginState { logged_in: body.logged_in, queues: queues.queues_of(username) }))
}

fn not_agent() -> Problem {
    Problem::not_found("this account is no queue's agent")
}
