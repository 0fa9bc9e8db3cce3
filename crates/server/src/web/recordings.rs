//! Call recordings in the API: listed (a party's own, or every one for an administrator),
//! played or downloaded as WAV files (two channels: the caller left, the callee right), and
//! deleted.
// utoipa's `params(...)` expands to paths this lint flags.
#![allow(unused_qualifications)]

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::WebState;
use super::api::{Paging, Params, id_cursor, page_limit, paged};
use super::auth::Caller;
use super::problem::Problem;

/// A recorded call.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordingView {
    pub id: i64,
    /// The call's number (of the call records and webhooks).
    pub call: i64,
    pub caller: String,
    pub callee: String,
    /// Unix seconds when the recording started.
    pub started_at: i64,
    /// Seconds of audio.
    pub duration_secs: f64,
    /// Where the WAV file is fetched.
    pub audio_url: String,
}

/// A page of recordings, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordingPage {
    pub items: Vec<RecordingView>,
    pub next_cursor: Option<String>,
}

/// The recordings of the calls one took part in; every recording for an administrator.
#[utoipa::path(get, path = "/recordings", tag = "calls", params(Paging), security(("session" = []), ("token" = [])),
    responses((status = 200, description = "A page of recordings", body = RecordingPage)))]
pub async fn list_recordings(
    State(state): State<WebState>,
    caller: Caller,
    Params(paging): Params<Paging>,
) -> Result<Json<RecordingPage>, Problem> {
    let limit = page_limit(paging.limit)?;
    let before = id_cursor(paging.cursor.as_deref())?.unwrap_or(i64::MAX);
    let party = (!caller.account.admin).then_some(caller.account.username.as_str());
    let rows = state.store.list_recordings(party, before, i64::from(limit) + 1).await?;
    let dir = state.recordings.clone();
    let (items, next_cursor) = paged(
        rows,
        limit,
        |r| r.id.to_string(),
        |r| RecordingView {
            id: r.id,
            call: r.call_number,
            caller: r.caller,
            callee: r.callee,
            started_at: r.started_at,
            duration_secs: dir.as_ref().map_or(0.0, |d| seconds_of(&d.join(format!("{}.wav", r.name)))),
            audio_url: format!("/api/v1/recordings/{}/audio", r.id),
        },
    );
    Ok(Json(RecordingPage { items, next_cursor }))
}

/// One recording's audio: a WAV file, two channels at 16 kHz (the caller left, the callee right).
#[utoipa::path(get, path = "/recordings/{id}/audio", tag = "calls",
    params(("id" = i64, Path, description = "The recording's id")), security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "The recording", content_type = "audio/wav"),
        (status = 404, description = "No such recording of the caller's calls", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn recording_audio(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Response, Problem> {
    let recording = own_recording(&state, &caller, id).await?;
    let path = file_of(&state, &recording.name)?;
    let audio = tokio::fs::read(&path).await.map_err(|_| Problem::not_found("the recording's file is gone"))?;
    let disposition = format!("inline; filename=\"{}.wav\"", recording.name);
    Ok((
        [
            (header::CONTENT_TYPE, "audio/wav".to_owned()),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        audio,
    )
        .into_response())
}

/// Deletes a recording, its file and its row.
#[utoipa::path(delete, path = "/recordings/{id}", tag = "calls",
    params(("id" = i64, Path, description = "The recording's id")), security(("session" = []), ("token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such recording of the caller's calls", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_recording(
    State(state): State<WebState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, Problem> {
    let recording = own_recording(&state, &caller, id).await?;
    if let Ok(path) = file_of(&state, &recording.name) {
        let _ = tokio::fs::remove_file(path).await;
    }
    state.store.delete_recording(id).await?;
    tracing::info!(id, by = caller.account.id, "recording deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Recording `id`, if the caller took part in its call or is an administrator.
async fn own_recording(state: &WebState, caller: &Caller, id: i64) -> Result<sambung_store::Recording, Problem> {
    let recording = state.store.recording(id).await?;
    match recording {
        Some(r)
            if caller.account.admin || r.caller == caller.account.username || r.callee == caller.account.username =>
        {
            Ok(r)
        }
        _ => Err(Problem::not_found("no such recording")),
    }
}

fn file_of(state: &WebState, name: &str) -> Result<std::path::PathBuf, Problem> {
    // Names are made by call control (`<unix>-call-<number>`); anything else is not ours.
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(Problem::not_found("no such recording"));
    }
    let dir = state.recordings.as_ref().ok_or_else(|| Problem::not_found("recordings are not kept here"))?;
    Ok(dir.join(format!("{name}.wav")))
}

/// How long a two-channel 16-bit WAV file plays, from its size.
fn seconds_of(path: &std::path::Path) -> f64 {
    let bytes = std::fs::metadata(path).map_or(0, |m| m.len()).saturating_sub(44);
    bytes as f64 / f64::from(crate::media::record::RATE * 4)
}
