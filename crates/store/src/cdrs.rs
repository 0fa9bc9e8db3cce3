//! Call detail records: one row per finished call.

use crate::error::StoreError;
use crate::rows::from_row;
use crate::{Store, on_pool};

/// Which side ended a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HangupSide {
    Caller,
    Callee,
    /// The server: ring timeout, session timer expiry, shutdown, media failure.
    System,
}

impl HangupSide {
    /// The stored text: `"caller"`, `"callee"` or `"system"`.
    pub fn as_str(self) -> &'static str {
        match self {
            HangupSide::Caller => "caller",
            HangupSide::Callee => "callee",
            HangupSide::System => "system",
        }
    }

    fn parse(text: &str) -> Option<HangupSide> {
        match text {
            "caller" => Some(HangupSide::Caller),
            "callee" => Some(HangupSide::Callee),
            "system" => Some(HangupSide::System),
            _ => None,
        }
    }
}

/// A finished call.
///
/// `caller` and `callee` are usernames for local accounts and URIs for anyone else;
/// [`Store::cdrs_for`] finds the records naming a username on either side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cdr {
    pub id: i64,
    /// The Call-ID of the caller's leg.
    pub call_id: String,
    pub caller: String,
    pub callee: String,
    /// The caller's device (its `+sip.instance` or contact), when known.
    pub caller_device: Option<String>,
    /// The device that answered, when any.
    pub callee_device: Option<String>,
    /// Unix seconds when the INVITE arrived.
    pub started_at: i64,
    /// Unix seconds of the 200 OK, when answered.
    pub answered_at: Option<i64>,
    /// Unix seconds when the call ended.
    pub ended_at: i64,
    /// Seconds from answer to end; 0 when unanswered.
    pub duration_secs: i64,
    /// Final SIP status: 200 for an answered call, e.g. 486, 487 or 408 otherwise.
    pub cause_code: u16,
    /// Reason phrase or reason text of the end, e.g. `"Busy Here"` or `"BYE"`.
    pub cause_reason: String,
    pub hangup_side: HangupSide,
    /// Who answered: the account's username, or the application (`voicemail` ...); `None`
    /// unanswered, or answered by an outside URI (`callee_device` names it).
    pub answered_by: Option<String>,
    /// Where the call was forwarded on its way, in order.
    pub forwards: Vec<Forward>,
}

/// One forward of a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    /// The new target: a username, or an outside URI.
    pub to: String,
    /// Why (RFC 5806): `unconditional`, `user-busy`, `no-answer`, `unavailable`.
    pub reason: String,
}

/// The stored text of `forwards`: one line per forward, `reason to`.
fn forwards_text(forwards: &[Forward]) -> String {
    forwards.iter().map(|f| format!("{} {}", f.reason, f.to.replace(['\n', '\r'], " "))).collect::<Vec<_>>().join("\n")
}

fn forwards_of(text: &str) -> Vec<Forward> {
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(reason, to)| Forward { to: to.to_owned(), reason: reason.to_owned() })
        .collect()
}

/// One side's audio of a call as the relay received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CdrLeg {
    pub cdr_id: i64,
    /// `caller` or `callee`.
    pub side: String,
    pub packets: i64,
    pub lost: i64,
    /// Interarrival jitter in microseconds.
    pub jitter_us: i64,
    pub payload_type: Option<i32>,
    /// Round trip between the relay and the device, from RTCP, when measured.
    pub rtt_us: Option<i64>,
}

from_row!(CdrLeg { cdr_id, side, packets, lost, jitter_us, payload_type, rtt_us });

/// How a call ended, as call records are filtered by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallResult {
    Answered,
    /// 486 or 600.
    Busy,
    /// 487: the caller gave up.
    Cancelled,
    /// 408 or 480.
    NoAnswer,
    /// Any other end without an answer.
    Failed,
}

impl CallResult {
    pub const ALL: [CallResult; 5] =
        [CallResult::Answered, CallResult::Busy, CallResult::Cancelled, CallResult::NoAnswer, CallResult::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            CallResult::Answered => "answered",
            CallResult::Busy => "busy",
            CallResult::Cancelled => "cancelled",
            CallResult::NoAnswer => "no_answer",
            CallResult::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<CallResult> {
        CallResult::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The result of a record.
    pub fn of(cdr: &Cdr) -> CallResult {
        if cdr.answered_at.is_some() {
            return CallResult::Answered;
        }
        match cdr.cause_code {
            486 | 600 => CallResult::Busy,
            487 => CallResult::Cancelled,
            408 | 480 => CallResult::NoAnswer,
            _ => CallResult::Failed,
        }
    }
}

/// Which call records [`Store::query_cdrs`] returns; `None` fields do not filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CdrFilter {
    /// Calls with this username as caller or callee.
    pub user: Option<String>,
    /// Started at or after (Unix seconds).
    pub from: Option<i64>,
    /// Started before (Unix seconds).
    pub to: Option<i64>,
    pub result: Option<CallResult>,
}

/// What [`Store::insert_cdr`] needs; the duration is computed from the times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCdr {
    pub call_id: String,
    pub caller: String,
    pub callee: String,
    pub caller_device: Option<String>,
    pub callee_device: Option<String>,
    pub started_at: i64,
    pub answered_at: Option<i64>,
    pub ended_at: i64,
    pub cause_code: u16,
    pub cause_reason: String,
    pub hangup_side: HangupSide,
    pub answered_by: Option<String>,
    pub forwards: Vec<Forward>,
}

/// The row as stored, before the typed fields are checked.
struct CdrRow {
    id: i64,
    call_id: String,
    caller: String,
    callee: String,
    caller_device: Option<String>,
    callee_device: Option<String>,
    started_at: i64,
    answered_at: Option<i64>,
    ended_at: i64,
    duration_secs: i64,
    cause_code: i32,
    cause_reason: String,
    hangup_side: String,
    answered_by: Option<String>,
    forwards: String,
}

from_row!(CdrRow {
    id,
    call_id,
    caller,
    callee,
    caller_device,
    callee_device,
    started_at,
    answered_at,
    ended_at,
    duration_secs,
    cause_code,
    cause_reason,
    hangup_side,
    answered_by,
    forwards
});

impl TryFrom<CdrRow> for Cdr {
    type Error = StoreError;

    fn try_from(r: CdrRow) -> Result<Cdr, StoreError> {
        let invalid = |reason| StoreError::Invalid { field: "call record", reason };
        Ok(Cdr {
            id: r.id,
            call_id: r.call_id,
            caller: r.caller,
            callee: r.callee,
            caller_device: r.caller_device,
            callee_device: r.callee_device,
            started_at: r.started_at,
            answered_at: r.answered_at,
            ended_at: r.ended_at,
            duration_secs: r.duration_secs,
            cause_code: u16::try_from(r.cause_code).map_err(|_| invalid("stored cause code out of range"))?,
            cause_reason: r.cause_reason,
            hangup_side: HangupSide::parse(&r.hangup_side).ok_or(invalid("stored hangup side unknown"))?,
            answered_by: r.answered_by,
            forwards: forwards_of(&r.forwards),
        })
    }
}

const CDR_COLUMNS: &str = "id, call_id, caller, callee, caller_device, callee_device, started_at, answered_at, \
     ended_at, duration_secs, cause_code, cause_reason, hangup_side, answered_by, forwards";

const INSERT_CDR: &str = "INSERT INTO cdrs (call_id, caller, callee, caller_device, callee_device, started_at, \
     answered_at, ended_at, duration_secs, cause_code, cause_reason, hangup_side, answered_by, forwards) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id, call_id, caller, callee, \
     caller_device, callee_device, started_at, answered_at, ended_at, duration_secs, cause_code, cause_reason, \
     hangup_side, answered_by, forwards";

/// The INSERT of one call record, bound (for any backend); `duration_secs` is computed.
macro_rules! insert_cdr_query {
    ($new:expr) => {{
        let new: &NewCdr = $new;
        sqlx::query_as::<_, CdrRow>(INSERT_CDR)
            .bind(&new.call_id)
            .bind(&new.caller)
            .bind(&new.callee)
            .bind(&new.caller_device)
            .bind(&new.callee_device)
            .bind(new.started_at)
            .bind(new.answered_at)
            .bind(new.ended_at)
            .bind(new.answered_at.map_or(0, |a| new.ended_at - a))
            .bind(i32::from(new.cause_code))
            .bind(&new.cause_reason)
            .bind(new.hangup_side.as_str())
            .bind(&new.answered_by)
            .bind(forwards_text(&new.forwards))
    }};
}

/// A record the store refuses: a cause that is no SIP status, or times out of order.
fn check_cdr(new: &NewCdr) -> Result<(), StoreError> {
    if !(100..=699).contains(&new.cause_code) {
        return Err(StoreError::Invalid { field: "call record", reason: "cause code must be a SIP status" });
    }
    if new.ended_at < new.started_at || new.answered_at.is_some_and(|a| a < new.started_at || a > new.ended_at) {
        return Err(StoreError::Invalid { field: "call record", reason: "times must be started <= answered <= ended" });
    }
    Ok(())
}

impl Store {
    /// Stores a call record; `duration_secs` is `ended_at - answered_at` (0 when unanswered).
    pub async fn insert_cdr(&self, new: &NewCdr) -> Result<Cdr, StoreError> {
        check_cdr(new)?;
        let row: CdrRow = on_pool!(self, |pool| insert_cdr_query!(new).fetch_one(pool).await)?;
        row.try_into()
    }

    /// Stores call records in one transaction (one commit for a batch of calls), each answered
    /// in order as [`Self::insert_cdr`] would. When the batch fails as a whole, each record is
    /// tried on its own, so that one bad record costs only itself.
    pub async fn insert_cdrs(&self, news: &[NewCdr]) -> Vec<Result<Cdr, StoreError>> {
        let valid: Vec<&NewCdr> = news.iter().filter(|n| check_cdr(n).is_ok()).collect();
        let batch: Result<Vec<CdrRow>, StoreError> = on_pool!(self, |pool| async {
            let mut tx = pool.begin().await?;
            let mut rows = Vec::with_capacity(valid.len());
            for new in &valid {
                rows.push(insert_cdr_query!(new).fetch_one(&mut *tx).await?);
            }
            tx.commit().await?;
            Ok(rows)
        }
        .await);
        match batch {
            Ok(rows) => {
                let mut rows = rows.into_iter();
                news.iter()
                    .map(|new| {
                        check_cdr(new)?;
                        rows.next()
                            .ok_or(StoreError::Invalid {
                                field: "call record",
                                reason: "a batched record went missing",
                            })?
                            .try_into()
                    })
                    .collect()
            }
            Err(_) => {
                let mut results = Vec::with_capacity(news.len());
                for new in news {
                    results.push(self.insert_cdr(new).await);
                }
                results
            }
        }
    }

    /// The newest `limit` call records, newest first.
    pub async fn list_cdrs(&self, limit: u32) -> Result<Vec<Cdr>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {CDR_COLUMNS} FROM cdrs ORDER BY id DESC LIMIT $1"));
        let rows: Vec<CdrRow> =
            on_pool!(self, |pool| sqlx::query_as(sql).bind(i64::from(limit)).fetch_all(pool).await)?;
        rows.into_iter().map(Cdr::try_from).collect()
    }

    /// Up to `limit` call records with `username` as caller or callee and an id below
    /// `before`, newest first (a page of the account's call history).
    pub async fn cdrs_page(&self, username: &str, before: Option<i64>, limit: u32) -> Result<Vec<Cdr>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {CDR_COLUMNS} FROM cdrs WHERE (caller = $1 OR callee = $1) AND id < $2 ORDER BY id DESC LIMIT $3"
        ));
        let rows: Vec<CdrRow> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(username)
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(Cdr::try_from).collect()
    }

    /// Up to `limit` call records matching `filter` with an id below `before`, newest first.
    pub async fn query_cdrs(
        &self,
        filter: &CdrFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Cdr>, StoreError> {
        // The result's condition is one of a fixed set: no caller text goes into the SQL.
        let result = match filter.result {
            None => "TRUE",
            Some(CallResult::Answered) => "answered_at IS NOT NULL",
            Some(CallResult::Busy) => "answered_at IS NULL AND cause_code IN (486, 600)",
            Some(CallResult::Cancelled) => "answered_at IS NULL AND cause_code = 487",
            Some(CallResult::NoAnswer) => "answered_at IS NULL AND cause_code IN (408, 480)",
            Some(CallResult::Failed) => "answered_at IS NULL AND cause_code NOT IN (486, 600, 487, 408, 480)",
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {CDR_COLUMNS} FROM cdrs WHERE ($1 IS NULL OR caller = $1 OR callee = $1) \
             AND ($2 IS NULL OR started_at >= $2) AND ($3 IS NULL OR started_at < $3) AND id < $4 AND {result} \
             ORDER BY id DESC LIMIT $5"
        ));
        let rows: Vec<CdrRow> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(&filter.user)
            .bind(filter.from)
            .bind(filter.to)
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(Cdr::try_from).collect()
    }

    /// Records the sides' reception figures of call record `cdr_id` (a side given again
    /// replaces its figures).
    pub async fn insert_cdr_legs(&self, legs: &[CdrLeg]) -> Result<(), StoreError> {
        on_pool!(self, |pool| async {
            let mut tx = pool.begin().await?;
            for leg in legs {
                sqlx::query(
                    "INSERT INTO cdr_legs (cdr_id, side, packets, lost, jitter_us, payload_type, rtt_us) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (cdr_id, side) DO UPDATE SET \
                     packets = excluded.packets, lost = excluded.lost, jitter_us = excluded.jitter_us, \
                     payload_type = excluded.payload_type, rtt_us = excluded.rtt_us",
                )
                .bind(leg.cdr_id)
                .bind(&leg.side)
                .bind(leg.packets)
                .bind(leg.lost)
                .bind(leg.jitter_us)
                .bind(leg.payload_type)
                .bind(leg.rtt_us)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        }
        .await)?;
        Ok(())
    }

    /// The sides' reception figures of the call records `ids`, by record then side.
    pub async fn cdr_legs(&self, ids: &[i64]) -> Result<Vec<CdrLeg>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // The ids are numbers: written into the statement, they cannot change its meaning.
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT cdr_id, side, packets, lost, jitter_us, payload_type, rtt_us FROM cdr_legs \
             WHERE cdr_id IN ({list}) ORDER BY cdr_id, side"
        ));
        Ok(on_pool!(self, |pool| sqlx::query_as(sql).fetch_all(pool).await)?)
    }

    /// The newest `limit` call records with `username` as caller or callee, newest first.
    pub async fn cdrs_for(&self, username: &str, limit: u32) -> Result<Vec<Cdr>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {CDR_COLUMNS} FROM cdrs WHERE caller = $1 OR callee = $1 ORDER BY id DESC LIMIT $2"
        ));
        let rows: Vec<CdrRow> =
            on_pool!(self, |pool| sqlx::query_as(sql).bind(username).bind(i64::from(limit)).fetch_all(pool).await)?;
        rows.into_iter().map(Cdr::try_from).collect()
    }
}
