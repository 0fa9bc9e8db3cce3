//! The stream of domain events ([`sambung_pbx::Event`]): what call control and the applications
//! say happened, fanned out to every subscriber.
//!
//! Subscribers are chosen at start ([`EventBus::subscribe`]); then the bus becomes a
//! [`Publisher`], cheap to clone, that call control's task and the applications publish with.
//! Publishing never waits: each subscriber has its own unbounded queue, so a slow one delays
//! nobody (and costs only its own memory). Subscribers today: the call records
//! ([`run_call_records`]); next the REST API, the web app's live view, webhooks, metrics and
//! the abuse guard.

use std::sync::Arc;

use sambung_pbx::{CallRecord, Event};
use sambung_store::Store;
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// One event as subscribers get it (shared, not copied per subscriber).
pub type Shared = Arc<Event>;

/// The subscribers, while they are being chosen.
#[derive(Debug, Default)]
pub struct EventBus {
    subscribers: Vec<mpsc::UnboundedSender<Shared>>,
}

impl EventBus {
    pub fn new() -> EventBus {
        EventBus::default()
    }

    /// A new subscriber: every event published from now on, in order.
    pub fn subscribe(&mut self) -> mpsc::UnboundedReceiver<Shared> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers.push(tx);
        rx
    }

    /// The bus, ready to publish to the subscribers chosen so far.
    pub fn publisher(self) -> Publisher {
        Publisher(self.subscribers.into())
    }
}

/// Publishes to every subscriber. When every clone is dropped, the subscribers' streams end.
#[derive(Clone, Debug)]
pub struct Publisher(Arc<[mpsc::UnboundedSender<Shared>]>);

impl Publisher {
    pub fn publish(&self, event: Event) {
        let event = Arc::new(event);
        for subscriber in self.0.iter() {
            // A subscriber that has stopped just misses the rest.
            let _ = subscriber.send(event.clone());
        }
    }
}

/// Calls whose record and media figures are waiting for each other, at most.
const PENDING_CALLS: usize = 4096;

/// Most events taken off the queue for one round of writes.
const BATCH: usize = 512;

/// Writes the record of every call that ends, and its sides' media figures, until the stream
/// ends. The figures come once the call's media session has closed, usually just after the
/// record: each waits for the other by call number. What has queued up meanwhile is written
/// together: the records of a batch in one transaction, then their figures in another (one
/// commit each, not two per call: at 1,000 calls per second the per-call commits were a quarter
/// of the server's CPU).
pub async fn run_call_records(store: Store, mut events: mpsc::UnboundedReceiver<Shared>) {
    // call number -> its record's id, written; call number -> figures that came first.
    let mut written: std::collections::HashMap<u64, i64> = std::collections::HashMap::new();
    let mut order: std::collections::VecDeque<u64> = std::collections::VecDeque::new();
    let mut early: std::collections::HashMap<u64, Vec<sambung_pbx::LegReception>> = std::collections::HashMap::new();
    let mut batch: Vec<Shared> = Vec::with_capacity(BATCH);
    while let Some(event) = events.recv().await {
        batch.push(event);
        while batch.len() < BATCH {
            match events.try_recv() {
                Ok(event) => batch.push(event),
                Err(_) => break,
            }
        }
        let records: Vec<&CallRecord> = batch
            .iter()
            .filter_map(|e| match &**e {
                Event::CallEnded(record) => Some(record),
                _ => None,
            })
            .collect();
        let rows: Vec<sambung_store::NewCdr> = records.iter().map(|r| cdr_row(r)).collect();
        let mut legs: Vec<sambung_store::CdrLeg> = Vec::new();
        for (record, result) in records.iter().zip(store.insert_cdrs(&rows).await) {
            match result {
                Ok(cdr) => {
                    if let Some(figures) = early.remove(&record.call) {
                        legs.extend(leg_rows(cdr.id, &figures));
                    } else {
                        while order.len() >= PENDING_CALLS {
                            if let Some(old) = order.pop_front() {
                                written.remove(&old);
                            }
                        }
                        written.insert(record.call, cdr.id);
                        order.push_back(record.call);
                    }
                }
                Err(error) => warn!(%error, call_id = record.call_id, "could not write the call record"),
            }
        }
        for event in &batch {
            if let Event::CallQuality { call, legs: figures } = &**event {
                if let Some(id) = written.remove(call) {
                    legs.extend(leg_rows(id, figures));
                } else {
                    if early.len() >= PENDING_CALLS {
                        early.clear();
                    }
                    early.insert(*call, figures.clone());
                }
            }
        }
        if !legs.is_empty()
            && let Err(error) = store.insert_cdr_legs(&legs).await
        {
            warn!(%error, records = legs.len(), "could not write the calls' media figures");
        }
        batch.clear();
    }
    debug!("call records stopped");
}

fn leg_rows(cdr_id: i64, legs: &[sambung_pbx::LegReception]) -> Vec<sambung_store::CdrLeg> {
    legs.iter()
        .map(|l| sambung_store::CdrLeg {
            cdr_id,
            side: l.side.to_owned(),
            packets: i64::try_from(l.packets).unwrap_or(i64::MAX),
            lost: i64::try_from(l.lost).unwrap_or(i64::MAX),
            jitter_us: i64::try_from(l.jitter_us).unwrap_or(i64::MAX),
            payload_type: l.payload_type.map(i32::from),
            rtt_us: l.rtt_us.and_then(|r| i64::try_from(r).ok()),
        })
        .collect()
}

fn cdr_row(r: &CallRecord) -> sambung_store::NewCdr {
    let secs = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    sambung_store::NewCdr {
        call_id: r.call_id.clone(),
        caller: r.caller.clone(),
        callee: r.callee.clone(),
        caller_device: r.caller_device.clone(),
        callee_device: r.callee_device.clone(),
        started_at: secs(r.started_at),
        answered_at: r.answered_at.map(secs),
        ended_at: secs(r.ended_at),
        cause_code: r.cause_code,
        cause_reason: r.cause_reason.clone(),
        hangup_side: match r.hangup_side {
            "caller" => sambung_store::HangupSide::Caller,
            "callee" => sambung_store::HangupSide::Callee,
            _ => sambung_store::HangupSide::System,
        },
        answered_by: r.answered_by.clone(),
        forwards: r
            .forwards
            .iter()
            .map(|(to, reason)| sambung_store::Forward { to: to.clone(), reason: (*reason).to_owned() })
            .collect(),
    }
}

/// Keeps each carrier registration's latest state in the store, for `sambung trunk list`.
pub async fn run_trunk_status(store: Store, mut events: mpsc::UnboundedReceiver<Shared>) {
    while let Some(event) = events.recv().await {
        let Event::TrunkRegistration { trunk, state, at } = &*event else { continue };
        let detail = match state {
            sambung_pbx::trunks::TrunkState::Registered { until } => {
                format!("until {}", crate::cli::table::utc(*until as i64))
            }
            sambung_pbx::trunks::TrunkState::Failed { reason } => reason.clone(),
            sambung_pbx::trunks::TrunkState::Registering => String::new(),
        };
        let status = sambung_store::TrunkStatus {
            name: trunk.clone(),
            state: state.as_str().to_owned(),
            detail,
            updated_at: i64::try_from(*at).unwrap_or(i64::MAX),
        };
        if let Err(error) = store.put_trunk_status(&status).await {
            tracing::warn!(trunk, %error, "trunk state not recorded");
        }
    }
}

/// Keeps a row for each call recording started, so that its parties find it in the API.
pub async fn run_recordings(store: Store, mut events: mpsc::UnboundedReceiver<Shared>) {
    while let Some(event) = events.recv().await {
        let Event::RecordingStarted { call, name, caller, callee, at } = &*event else { continue };
        let new = sambung_store::NewRecording {
            name: name.clone(),
            call_number: i64::try_from(*call).unwrap_or(i64::MAX),
            caller: caller.clone(),
            callee: callee.clone(),
            started_at: i64::try_from(*at).unwrap_or(i64::MAX),
        };
        if let Err(error) = store.add_recording(&new).await {
            warn!(call, name, %error, "recording not listed");
        }
    }
}
