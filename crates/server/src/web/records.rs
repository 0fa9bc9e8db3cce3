//! Call records for other software: queried with filters and pages, exported as CSV or JSON.
//! An administrator sees every call (or one user's with `user`); anyone else only the calls
//! they made or took. A token for software needs the `calls:read` scope.
// utoipa's `params(...)` expands to paths the lint calls needlessly qualified.
#![allow(unused_qualifications)]

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sambung_store::{CallResult, Cdr, CdrFilter, CdrLeg};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::api::{Params, id_cursor, page_limit, paged};
use super::auth::Caller;
use super::problem::Problem;
use crate::webhooks::rfc3339;

/// Most records in one export.
const MAX_EXPORT: u32 = 100_000;

/// The filters (and, for the list, the page).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordQuery {
    /// Calls of this username, as caller or callee (administrators; others always see only
    /// their own).
    pub user: Option<String>,
    /// Started at or after, Unix seconds.
    pub from: Option<i64>,
    /// Started before, Unix seconds.
    pub to: Option<i64>,
    /// `answered`, `busy`, `cancelled`, `no_answer` or `failed`.
    pub result: Option<String>,
    /// Items per page, 1 to 100 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// For the export: `csv` (the default) or `json`.
    pub format: Option<String>,
}

/// One call.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallRecordInfo {
    pub id: i64,
    /// The SIP Call-ID of the caller's leg.
    pub call_id: String,
    pub caller: String,
    /// Who was called (as dialled).
    pub callee: String,
    pub caller_device: Option<String>,
    /// The device that answered.
    pub callee_device: Option<String>,
    /// Unix seconds.
    pub started_at: i64,
    pub answered_at: Option<i64>,
    pub ended_at: i64,
    pub duration_secs: i64,
    /// `answered`, `busy`, `cancelled`, `no_answer` or `failed`.
    pub result: &'static str,
    /// The final SIP status (200 when answered).
    pub cause_code: u16,
    pub cause_reason: String,
    /// `caller`, `callee` or `system`.
    pub hangup_side: String,
    /// Who answered: the account's username, or the application (`voicemail`, `mailbox`,
    /// `feature code`); `null` unanswered, or answered by an outside URI (`callee_device`).
    pub answered_by: Option<String>,
    /// Where the call was forwarded on its way, in order.
    pub forwards: Vec<ForwardInfo>,
    /// What each side's audio looked like on arrival at the relay (none for a call without
    /// relayed media).
    pub legs: Vec<LegInfo>,
}

/// One forward of a call.
#[derive(Debug, Serialize, ToSchema)]
pub struct ForwardInfo {
    /// The new target: a username, or an outside URI.
    pub to: String,
    /// Why (RFC 5806): `unconditional`, `user-busy`, `no-answer` or `unavailable`.
    pub reason: String,
}

/// One side's audio, and its estimated quality.
#[derive(Debug, Serialize, ToSchema)]
pub struct LegInfo {
    /// `caller` or `callee`: whose audio this is.
    pub side: String,
    /// RTP packets the relay received from that side.
    pub packets: i64,
    /// Packets lost on the way.
    pub lost: i64,
    pub loss_percent: f64,
    /// Interarrival jitter (RFC 3550).
    pub jitter_ms: f64,
    /// Round trip between the relay and the device (RTCP), when measured.
    pub rtt_ms: Option<f64>,
    /// Estimated MOS (ITU-T G.107 E-model, as for G.711), 1 to 4.5; `null` without packets.
    pub mos: Option<f64>,
    /// The RTP payload type of its last packet.
    pub payload_type: Option<i32>,
}

impl From<&CdrLeg> for LegInfo {
    fn from(l: &CdrLeg) -> LegInfo {
        let expected = l.packets + l.lost;
        let loss_percent =
            if expected > 0 { (l.lost as f64 * 10_000.0 / expected as f64).round() / 100.0 } else { 0.0 };
        let jitter_ms = (l.jitter_us as f64 / 10.0).round() / 100.0;
        let rtt_ms = l.rtt_us.map(|r| (r as f64 / 10.0).round() / 100.0);
        LegInfo {
            side: l.side.clone(),
            packets: l.packets,
            lost: l.lost,
            loss_percent,
            jitter_ms,
            rtt_ms,
            mos: (l.packets > 0).then(|| crate::emodel::mos(loss_percent, jitter_ms, rtt_ms)),
            payload_type: l.payload_type,
        }
    }
}

/// The records of `rows` with their legs.
async fn with_legs(state: &super::WebState, rows: Vec<Cdr>) -> Result<Vec<CallRecordInfo>, Problem> {
    let ids: Vec<i64> = rows.iter().map(|c| c.id).collect();
    let mut legs = std::collections::HashMap::<i64, Vec<LegInfo>>::new();
    for chunk in ids.chunks(500) {
        for leg in state.store.cdr_legs(chunk).await? {
            legs.entry(leg.cdr_id).or_default().push(LegInfo::from(&leg));
        }
    }
    Ok(rows
        .into_iter()
        .map(|c| {
            let id = c.id;
            let mut info = CallRecordInfo::from(c);
            let mut found = legs.remove(&id).unwrap_or_default();
            found.sort_by_key(|l| l.side != "caller");
            info.legs = found;
            info
        })
        .collect())
}

impl From<Cdr> for CallRecordInfo {
    fn from(c: Cdr) -> CallRecordInfo {
        CallRecordInfo {
            id: c.id,
            result: CallResult::of(&c).as_str(),
            call_id: c.call_id,
            caller: c.caller,
            callee: c.callee,
            caller_device: c.caller_device,
            callee_device: c.callee_device,
            started_at: c.started_at,
            answered_at: c.answered_at,
            ended_at: c.ended_at,
            duration_secs: c.duration_secs,
            cause_code: c.cause_code,
            cause_reason: c.cause_reason,
            hangup_side: c.hangup_side.as_str().to_owned(),
            answered_by: c.answered_by,
            forwards: c.forwards.into_iter().map(|f| ForwardInfo { to: f.to, reason: f.reason }).collect(),
            legs: Vec::new(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallRecordPage {
    pub items: Vec<CallRecordInfo>,
    pub next_cursor: Option<String>,
}

/// The store's filter for `query` asked by `caller`.
fn filter(caller: &Caller, query: &RecordQuery) -> Result<CdrFilter, Problem> {
    let user = if caller.account.admin {
        query.user.as_ref().map(|u| u.trim().to_lowercase()).filter(|u| !u.is_empty())
    } else {
        match &query.user {
            Some(u) if !u.trim().eq_ignore_ascii_case(&caller.account.username) => {
                return Err(Problem::forbidden("not_admin", "only administrators may read other users' calls"));
            }
            _ => Some(caller.account.username.clone()),
        }
    };
    let result = match query.result.as_deref() {
        None | Some("") => None,
        Some(r) => Some(CallResult::parse(r).ok_or_else(|| {
            Problem::bad_request("invalid_query", "result is one of answered, busy, cancelled, no_answer, failed")
        })?),
    };
    if let (Some(from), Some(to)) = (query.from, query.to)
        && from >= to
    {
        return Err(Problem::bad_request("invalid_query", "from must be before to"));
    }
    Ok(CdrFilter { user, from: query.from, to: query.to, result })
}

/// Call records, newest first.
#[utoipa::path(get, path = "/calls", tag = "calls", params(RecordQuery), security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "A page of call records", body = CallRecordPage),
        (status = 400, description = "A bad filter", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Another user's calls", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_records(
    State(state): State<super::WebState>,
    caller: Caller,
    Params(query): Params<RecordQuery>,
) -> Result<Json<CallRecordPage>, Problem> {
    let filter = filter(&caller, &query)?;
    let limit = page_limit(query.limit)?;
    let before = id_cursor(query.cursor.as_deref())?;
    let rows = state.store.query_cdrs(&filter, before, limit + 1).await?;
    let (rows, next_cursor) = paged(rows, limit, |c| c.id.to_string(), |c| c);
    let items = with_legs(&state, rows).await?;
    Ok(Json(CallRecordPage { items, next_cursor }))
}

/// Every matching call record at once (up to 100,000, newest first), as CSV (RFC 4180, a header
/// row, times in RFC 3339, each side's packets, loss, jitter, round trip and estimated MOS) or as
/// a JSON array.
#[utoipa::path(get, path = "/calls/export", tag = "calls", params(RecordQuery), security(("session" = []), ("token" = [])),
    responses(
        (status = 200, description = "The records", content_type = "text/csv"),
        (status = 400, description = "A bad filter or format", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn export_records(
    State(state): State<super::WebState>,
    caller: Caller,
    Params(query): Params<RecordQuery>,
) -> Result<Response, Problem> {
    let filter = filter(&caller, &query)?;
    let json = match query.format.as_deref() {
        None | Some("csv") => false,
        Some("json") => true,
        Some(_) => return Err(Problem::bad_request("invalid_query", "format is csv or json")),
    };
    let rows = state.store.query_cdrs(&filter, None, MAX_EXPORT).await?;
    let records = with_legs(&state, rows).await?;
    if json {
        let body = serde_json::to_string(&records)
            .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
        let disposition = "attachment; filename=\"calls.json\"";
        return Ok(([(header::CONTENT_TYPE, "application/json"), (header::CONTENT_DISPOSITION, disposition)], body)
            .into_response());
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"calls.csv\""),
        ],
        csv(&records),
    )
        .into_response())
}

/// The records as CSV: a header row, then one row each.
fn csv(records: &[CallRecordInfo]) -> String {
    let mut out = String::from(
        "id,call_id,caller,callee,caller_device,callee_device,started_at,answered_at,ended_at,duration_secs,result,cause_code,cause_reason,hangup_side,answered_by,forwards,\
         caller_packets,caller_loss_percent,caller_jitter_ms,caller_rtt_ms,caller_mos,\
         callee_packets,callee_loss_percent,callee_jitter_ms,callee_rtt_ms,callee_mos\r\n",
    );
    let time = |t: i64| rfc3339(u64::try_from(t).unwrap_or(0));
    for r in records {
        let fields = [
            r.id.to_string(),
            r.call_id.clone(),
            r.caller.clone(),
            r.callee.clone(),
            r.caller_device.clone().unwrap_or_default(),
            r.callee_device.clone().unwrap_or_default(),
            time(r.started_at),
            r.answered_at.map(time).unwrap_or_default(),
            time(r.ended_at),
            r.duration_secs.to_string(),
            r.result.to_owned(),
            r.cause_code.to_string(),
            r.cause_reason.clone(),
            r.hangup_side.clone(),
            r.answered_by.clone().unwrap_or_default(),
            r.forwards.iter().map(|f| format!("{} {}", f.reason, f.to)).collect::<Vec<_>>().join("; "),
        ];
        let mut row: Vec<String> = fields.iter().map(|f| field(f)).collect();
        for side in ["caller", "callee"] {
            match r.legs.iter().find(|l| l.side == side) {
                Some(l) => row.extend([
                    l.packets.to_string(),
                    l.loss_percent.to_string(),
                    l.jitter_ms.to_string(),
                    l.rtt_ms.map(|r| r.to_string()).unwrap_or_default(),
                    l.mos.map(|m| m.to_string()).unwrap_or_default(),
                ]),
                None => row.extend(std::iter::repeat_n(String::new(), 5)),
            }
        }
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

/// One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break. A field that
/// a spreadsheet would take for a formula gets a leading quote mark (OWASP's CSV injection advice).
fn field(value: &str) -> String {
    let value =
        if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_owned() };
    if value.contains([',', '"', '\n', '\r']) { format!("\"{}\"", value.replace('"', "\"\"")) } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(field("-1,2"), "\"'-1,2\"");
    }
}
