//! The web app and its HTTP API, served over HTTPS on the secure WebSocket listeners (which
//! keep serving SIP over WebSocket to upgrade requests).
//!
//! - `/api/v1/...`: the API ([`api`]), JSON in and out, errors as RFC 9457 problem details
//!   ([`problem`]), every list paged; described by the OpenAPI 3.1 document at
//!   `/api/v1/openapi.json`, generated from the handlers.
//! - `/` and `/app/...`: the app ([`app`]), plain HTML, CSS and JS modules embedded in the binary.
//!
//! A browser signs in with its username and password and gets an HttpOnly, Secure,
//! SameSite=Strict session cookie plus a CSRF token that its writes send back; a script uses a
//! personal API token ([`auth`]).

pub mod account;
pub mod admin;
pub mod api;
pub mod app;
pub mod auth;
pub mod calls;
pub mod chat;
pub mod hooks;
pub mod live;
pub mod ops;
pub mod problem;
pub mod queues;
pub mod recordings;
pub mod records;
pub mod session;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;
use sambung_store::Store;
use serde::de::DeserializeOwned;

use crate::config::{Config, WebConfig};
use auth::Limiter;
use problem::Problem;

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct WebState {
    pub store: Store,
    pub config: Arc<WebConfig>,
    /// The digest realm new passwords' HA1 values are computed for.
    pub realm: Arc<str>,
    /// The domain shown in SIP addresses (`sip:alice@DOMAIN`).
    pub domain: Arc<str>,
    pub limits: Arc<Limits>,
    /// Presence, and the notices the live connections pass on.
    pub hub: crate::presence::Hub,
    /// Call control, for messages written in the app (`None`: the API runs without it).
    pub core: Option<crate::transport::WeakEvents>,
    /// Wakes the account watcher, so that call control follows an account or settings change at
    /// once (`None`: it polls).
    pub reload: Option<Arc<tokio::sync::Notify>>,
    /// `[voicemail] max_greeting_seconds`.
    pub max_greeting_seconds: u32,
    /// When the server started (for its status).
    pub started: std::time::Instant,
    /// Whether `[email]` names a server (password resets by email are offered).
    pub email: bool,
    /// Wakes the mail worker after a mail is queued.
    pub mail_wake: Option<Arc<tokio::sync::Notify>>,
    /// The counters `/metrics` shows (`None`: it answers 404).
    pub metrics: Option<crate::metrics::Metrics>,
    /// The webhooks' cache and sender, told when one is made or removed.
    pub webhooks: Option<crate::webhooks::Hooks>,
    /// The SIP transports' context, for the app's SIP WebSocket (`None`: not offered).
    pub sip: Option<crate::transport::stream::StreamContext>,
    /// The call queues (`None`: the API runs without them).
    pub queues: Option<crate::apps::queue::Queues>,
    /// Where call recordings are (`None`: none are kept).
    pub recordings: Option<std::path::PathBuf>,
}

/// The web's rate limits.
#[derive(Debug)]
pub struct Limits {
    pub signups: Limiter,
    pub sign_in_failures: Limiter,
    /// Password resets asked for, per source and per account.
    pub resets: Limiter,
    /// Requests per API token and minute.
    pub token_requests: Limiter,
}

/// Password resets one source address, or one account, may ask for per hour.
const RESETS_PER_HOUR: u32 = 5;

impl WebState {
    pub fn new(store: Store, config: &Config, hub: crate::presence::Hub) -> WebState {
        let web = &config.web;
        let domain = config.domains.first().cloned().unwrap_or_else(|| config.realm().to_owned());
        WebState {
            store,
            config: Arc::new(web.clone()),
            realm: config.realm().into(),
            domain: domain.into(),
            limits: Arc::new(Limits {
                signups: Limiter::new(Duration::from_secs(3600), web.signups_per_hour),
                sign_in_failures: Limiter::new(Duration::from_secs(600), web.sign_in_failures),
                resets: Limiter::new(Duration::from_secs(3600), RESETS_PER_HOUR),
                token_requests: Limiter::new(Duration::from_secs(60), web.token_requests_per_minute),
            }),
            hub,
            core: None,
            reload: None,
            max_greeting_seconds: config.voicemail.max_greeting_seconds,
            started: std::time::Instant::now(),
            email: config.email.server.is_some(),
            mail_wake: None,
            metrics: None,
            webhooks: None,
            sip: None,
            queues: None,
            recordings: None,
        }
    }

    /// Hands messages written in the app to call control through `core`, and wakes `reload`
    /// after account changes.
    pub fn with_core(mut self, core: crate::transport::WeakEvents, reload: Arc<tokio::sync::Notify>) -> WebState {
        self.core = Some(core);
        self.reload = Some(reload);
        self
    }

    /// Hands `event` to call control; 503 when the server is stopping (call control is gone).
    pub async fn to_core(&self, event: crate::transport::Event) -> Result<(), Problem> {
        let stopping =
            || Problem::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "stopping", "the server is stopping");
        let core = self.core.as_ref().and_then(|c| c.upgrade()).ok_or_else(stopping)?;
        core.send(event).await.map_err(|_| stopping())
    }

    /// Wakes `wake` after queueing a mail.
    pub fn with_mail(mut self, wake: Arc<tokio::sync::Notify>) -> WebState {
        self.mail_wake = Some(wake);
        self
    }

    /// Shows `metrics` at `/metrics`.
    pub fn with_metrics(mut self, metrics: crate::metrics::Metrics) -> WebState {
        self.metrics = Some(metrics);
        self
    }

    /// Tells `hooks` when a webhook is made or removed.
    pub fn with_webhooks(mut self, hooks: crate::webhooks::Hooks) -> WebState {
        self.webhooks = Some(hooks);
        self
    }

    /// Offers the app's SIP WebSocket (`/api/v1/sip`) on the SIP transports of `ctx`.
    pub fn with_sip(mut self, ctx: crate::transport::stream::StreamContext) -> WebState {
        self.sip = Some(ctx);
        self
    }

    /// Shows and changes `queues` through the API.
    pub fn with_queues(mut self, queues: crate::apps::queue::Queues) -> WebState {
        self.queues = Some(queues);
        self
    }

    /// Serves the call recordings in `dir`.
    pub fn with_recordings(mut self, dir: std::path::PathBuf) -> WebState {
        self.recordings = Some(dir);
        self
    }

    /// Call control should reload the accounts now.
    pub fn accounts_changed(&self) {
        if let Some(reload) = &self.reload {
            reload.notify_one();
        }
    }

    /// How long a session lasts unused, in seconds.
    pub fn session_seconds(&self) -> i64 {
        i64::from(self.config.session_days) * 86_400
    }
}

/// The app and the API.
pub fn router(state: WebState) -> Router {
    let (api, doc) = api::routes().split_for_parts();
    let openapi: Arc<str> = doc.to_pretty_json().unwrap_or_default().into();
    let api = api.route(
        "/openapi.json",
        axum::routing::get(move || {
            let openapi = openapi.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], openapi.to_string()) }
        }),
    );
    Router::new()
        .nest("/api/v1", api.fallback(api_not_found))
        .route("/healthz", axum::routing::get(ops::healthz))
        .route("/readyz", axum::routing::get(ops::readyz))
        .route("/metrics", axum::routing::get(ops::metrics))
        .merge(app::routes())
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

async fn api_not_found() -> Problem {
    Problem::not_found("no such API route")
}

/// Headers on every answer of the web: a content security policy that allows only this
/// server's own scripts, styles and connections; HSTS (only HTTPS serves the web); no sniffing,
/// no framing, no referrer; API answers never cached.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
         media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'",
    );
    set(headers, header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::CACHE_CONTROL, "no-store");
    response
}

/// A JSON request body whose refusals are problem details (400 for bad JSON, 415 without a
/// JSON content type, 422 for missing or mistyped fields).
#[derive(Debug, Clone, Copy, Default)]
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Body<T>, Problem> {
        use axum::extract::rejection::JsonRejection;
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Body(value)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(Problem::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "not_json",
                "send the body as application/json",
            )),
            Err(JsonRejection::JsonDataError(e)) => {
                Err(Problem::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", e.body_text()))
            }
            Err(e) => Err(Problem::bad_request("invalid_body", e.body_text())),
        }
    }
}

/// Removes expired sessions and unused expired invitations, hourly, until aborted.
pub async fn purge(store: Store) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        match store.purge_web(unix_now()).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "expired web sessions and invitations removed"),
            Err(error) => tracing::warn!(%error, "could not remove expired web sessions"),
        }
    }
}

/// The current time in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
