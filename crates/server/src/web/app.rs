//! The web app's files: plain HTML, CSS and JS modules, embedded in the binary (no build step).

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::WebState;

/// One embedded file: its path, its media type and its content.
struct Asset {
    path: &'static str,
    media_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset { path: "/", media_type: "text/html; charset=utf-8", body: include_str!("app/index.html") },
    Asset { path: "/app/app.js", media_type: "text/javascript; charset=utf-8", body: include_str!("app/app.js") },
    Asset { path: "/app/api.js", media_type: "text/javascript; charset=utf-8", body: include_str!("app/api.js") },
    Asset { path: "/app/dom.js", media_type: "text/javascript; charset=utf-8", body: include_str!("app/dom.js") },
    Asset { path: "/app/phone.js", media_type: "text/javascript; charset=utf-8", body: include_str!("app/phone.js") },
    Asset { path: "/app/calls.js", media_type: "text/javascript; charset=utf-8", body: include_str!("app/calls.js") },
    Asset { path: "/app/style.css", media_type: "text/css; charset=utf-8", body: include_str!("app/style.css") },
    Asset { path: "/app/icon.svg", media_type: "image/svg+xml", body: include_str!("app/icon.svg") },
    Asset {
        path: "/manifest.webmanifest",
        media_type: "application/manifest+json",
        body: include_str!("app/manifest.webmanifest"),
    },
    // At the root, so that it may control every page of the app.
    Asset { path: "/sw.js", media_type: "text/javascript; charset=utf-8", body: include_str!("app/sw.js") },
];

/// The routes of the app's files.
pub fn routes() -> Router<WebState> {
    let mut router = Router::new();
    for asset in ASSETS {
        router = router.route(asset.path, get(move || async move { serve(asset) }));
    }
    router
}

fn serve(asset: &Asset) -> Response {
    let mut response = (StatusCode::OK, asset.body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.media_type));
    // Revalidated on every load: an upgraded server serves the new app at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
