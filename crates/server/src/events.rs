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

/// Writes the record of every call that ends, and its sides' media figures, until the stream
/// ends. The figures come once the call's media session has closed, usually just after the
/// record: each waits for the other by call number.
pub async fn run_call_records(store: Store, mut events: mpsc::UnboundedReceiver<Shared>) {
    // call number -> its record's id, written; call number -> figures that came first.
    let mut written: std::collections::HashMap<u64, i64> = std::collections::HashMap::new();
    let mut order: std::collections::VecDeque<u64> = std::collections::VecDeque::new();
    let mut early: std::collections::HashMap<u64, Vec<sambung_pbx::LegReception>> = std::collections::HashMap::new();
    while let Some(event) = events.recv().await {
        match &*event {
            Event::CallEnded(record) => match store.insert_cdr(&cdr_row(record)).await {
                Ok(cdr) => {
                    if let Some(legs) = early.remove(&record.call) {
                        write_legs(&store, cdr.id, &legs).await;
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
            },
            Event::CallQuality { call, legs } => {
                if let Some(id) = written.remove(call) {
                    write_legs(&store, id, legs).await;
                } else {
                    if early.len() >= PENDING_CALLS {
                        early.clear();
                    }
                    early.insert(*call, legs.clone());
                }
            }
            _ => {}
        }
    }
    debug!("call records stopped");
}

async fn write_legs(store: &Store, cdr_id: i64, legs: &[sambung_pbx::LegReception]) {
    let rows: Vec<sambung_store::CdrLeg> = legs
        .iter()
        .map(|l| sambung_store::CdrLeg {
            cdr_id,
            side: l.side.to_owned(),
            packets: i64::try_from(l.packets).unwrap_or(i64::MAX),
            lost: i64::try_from(l.lost).unwrap_or(i64::MAX),
            jitter_us: i64::try_from(l.jitter_us).unwrap_or(i64::MAX),
            payload_type: l.payload_type.map(i32::from),
            rtt_us: l.rtt_us.and_then(|r| i64::try_from(r).ok()),
        })
        .collect();
    if let Err(error) = store.insert_cdr_legs(&rows).await {
        warn!(%error, cdr_id, "could not write the call's media figures");
    }
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
