//! Operations: `/healthz` (the process answers), `/readyz` (the database answers and call
//! control runs) and `/metrics` (Prometheus, see [`crate::metrics`]).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::WebState;
use super::auth::Admin;
use super::problem::Problem;
use crate::metrics::Gauges;

/// Alive: the process serves HTTP.
pub async fn healthz() -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ok\n").into_response()
}

/// Ready for traffic: the database answers and call control is running.
pub async fn readyz(State(state): State<WebState>) -> Response {
    if let Err(error) = state.store.accounts_generation().await {
        tracing::warn!(%error, "not ready: the database does not answer");
        return Problem::new(StatusCode::SERVICE_UNAVAILABLE, "database", "the database does not answer")
            .into_response();
    }
    if state.core.as_ref().is_some_and(|core| core.upgrade().is_none()) {
        return Problem::new(StatusCode::SERVICE_UNAVAILABLE, "stopping", "call control is not running")
            .into_response();
    }
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ready\n").into_response()
}

/// The metrics, for administrators (or anyone with `[web] public_metrics`).
pub async fn metrics(State(state): State<WebState>, parts: axum::http::request::Parts) -> Result<Response, Problem> {
    if !state.config.public_metrics {
        let mut parts = parts;
        <Admin as axum::extract::FromRequestParts<WebState>>::from_request_parts(&mut parts, &state).await?;
    }
    let Some(metrics) = &state.metrics else { return Err(Problem::not_found("metrics are not collected here")) };
    let presence = state.hub.all();
    let gauges = Gauges {
        registrations: presence.iter().map(|(_, p)| u64::from(p.devices)).sum(),
        accounts_online: state.hub.online() as u64,
        calls_in_progress: state.hub.calls().len() as u64,
        mail_backlog: state.store.pending_mail_count().await?,
        webhook_backlog: state.store.pending_delivery_count().await?,
    };
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], metrics.render(&gauges)).into_response())
}
