//! Errors of the HTTP API as RFC 9457 problem details (`application/problem+json`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sambung_store::StoreError;
use serde::Serialize;
use tracing::warn;
use utoipa::ToSchema;

/// A problem detail (RFC 9457): `type` is `about:blank` and `code` says which problem it is,
/// for programs; `title` and `detail` are for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the status and `code` identify the problem.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The status's reason phrase.
    pub title: &'static str,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong, in words.
    pub detail: String,
    /// A stable, machine-readable name of the problem, e.g. `weak_password`.
    pub code: &'static str,
    /// Seconds to wait before trying again (with status 429).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into(),
            code,
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
    }

    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, code, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn too_many(detail: impl Into<String>, retry_after: u64) -> Problem {
        Problem {
            retry_after: Some(retry_after.max(1)),
            ..Problem::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", detail)
        }
    }

    /// A failure of ours: logged, and answered without internals.
    pub fn internal(what: &str, error: impl std::fmt::Display) -> Problem {
        warn!(%error, "{what}");
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the server could not complete the request")
    }

    fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = self.retry_after;
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Problem {
        let unprocessable = |code, e: &StoreError| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string());
        match &e {
            StoreError::WeakPassword(_) => unprocessable("weak_password", &e),
            StoreError::InvalidUsername(_) => unprocessable("invalid_username", &e),
            StoreError::InvalidExtension(_) => unprocessable("invalid_extension", &e),
            StoreError::InvalidPin => unprocessable("invalid_pin", &e),
            StoreError::InvalidTarget(_) => unprocessable("invalid_target", &e),
            StoreError::Invalid { .. } => unprocessable("invalid_value", &e),
            StoreError::UserExists(_) => Problem::new(StatusCode::CONFLICT, "user_exists", e.to_string()),
            StoreError::ExtensionTaken(_) => Problem::new(StatusCode::CONFLICT, "extension_taken", e.to_string()),
            StoreError::InvalidInvitation => Problem::forbidden("invalid_invitation", e.to_string()),
            StoreError::UnknownUser(_)
            | StoreError::UnknownAccount(_)
            | StoreError::UnknownToken(_)
            | StoreError::UnknownMessage(_)
            | StoreError::UnknownVoicemail(_)
            | StoreError::UnknownMail(_) => Problem::not_found(e.to_string()),
            StoreError::Locked => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "the database is busy; try again")
            }
            _ => Problem::internal("database error in the HTTP API", &e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_and_headers() {
        let response = Problem::too_many("slow down", 30).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/problem+json");
        assert_eq!(response.headers()[header::RETRY_AFTER], "30");
        let problem = Problem::from(StoreError::UserExists("alice".into()));
        let json = serde_json::to_value(&problem).unwrap();
        assert_eq!(json["type"], "about:blank");
        assert_eq!(json["status"], 409);
        assert_eq!(json["title"], "Conflict");
        assert_eq!(json["code"], "user_exists");
        assert!(json.get("retry_after").is_none());
    }
}
