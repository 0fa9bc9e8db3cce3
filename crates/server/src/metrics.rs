//! Metrics for Prometheus, in its text exposition format (version 0.0.4), served at `/metrics`
//! by the web server.
//!
//! Counters come from the stream of domain events ([`run`] subscribes to it): registrations,
//! calls started, answered and ended (by result), messages, voicemail, failed authentications,
//! bans and lockouts. Gauges are read when scraped: devices registered, accounts online and calls
//! in progress (the presence board), the relay's sessions and free ports, the mail backlog, the
//! process's memory. The relay's packet and byte counters add up every session's since start.
//! Rates (calls per second) are Prometheus's `rate()` of the counters.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use sambung_pbx::{AuthFailure, BanReason, Event, Unregistration};
use tokio::sync::mpsc;

use crate::events::Shared;
use crate::media::{ChannelStats, MediaRelay};

/// The counters, and what the gauges are read from. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    counts: Mutex<Counts>,
    /// Unix seconds when the server started.
    started: f64,
    relay: Option<MediaRelay>,
}

/// Counters of domain events; labelled ones by their label's value.
#[derive(Debug, Default)]
struct Counts {
    registrations: u64,
    unregistrations: BTreeMap<&'static str, u64>,
    calls_started: u64,
    calls_ringing: u64,
    calls_answered: u64,
    calls_ended: BTreeMap<&'static str, u64>,
    call_seconds: u64,
    messages_stored: u64,
    messages_delivered: u64,
    voicemails: u64,
    recordings: u64,
    /// Click-to-call attempts over: `[connected, failed]`.
    originations: [u64; 2],
    /// Transfers asked through the API, over: `[connected, failed]`.
    transfers: [u64; 2],
    auth_failures: BTreeMap<&'static str, u64>,
    bans: BTreeMap<&'static str, u64>,
    account_lockouts: u64,
    pin_lockouts: u64,
    fraud_refused: u64,
    /// Per side (caller, callee): RTP packets received and lost, legs reported, jitter summed.
    rtp_received: [u64; 2],
    rtp_lost: [u64; 2],
    quality_reports: [u64; 2],
    jitter_us: [u64; 2],
    /// Each carrier registration: registered (1) or not (0).
    trunks: BTreeMap<String, u64>,
}

/// The values read when scraped, from the presence board and the store.
#[derive(Clone, Copy, Debug, Default)]
pub struct Gauges {
    /// Devices registered now.
    pub registrations: u64,
    /// Accounts with at least one device registered.
    pub accounts_online: u64,
    pub calls_in_progress: u64,
    /// Mails queued and not yet sent or given up.
    pub mail_backlog: u64,
    /// Webhook deliveries waiting for their receiver.
    pub webhook_backlog: u64,
}

/// How a call ended, for the `result` label: answered, busy, cancelled (by the caller before an
/// answer), no_answer (or unavailable), failed.
pub fn call_result(record: &sambung_pbx::CallRecord) -> &'static str {
    if record.answered_at.is_some() {
        return "answered";
    }
    match record.cause_code {
        486 | 600 => "busy",
        487 => "cancelled",
        408 | 480 => "no_answer",
        _ => "failed",
    }
}

impl Metrics {
    /// Metrics of a server started at `started` (Unix seconds), whose relay is `relay`.
    pub fn new(started: f64, relay: Option<MediaRelay>) -> Metrics {
        Metrics { inner: Arc::new(Inner { counts: Mutex::default(), started, relay }) }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.inner.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one domain event.
    pub fn apply(&self, event: &Event) {
        let mut c = self.counts();
        match event {
            Event::Registered { .. } => c.registrations += 1,
            Event::Unregistered { cause, .. } => {
                let cause = match cause {
                    Unregistration::Removed => "removed",
                    Unregistration::Expired => "expired",
                    Unregistration::Replaced => "replaced",
                    Unregistration::FlowClosed => "connection_closed",
                };
                *c.unregistrations.entry(cause).or_default() += 1;
            }
            Event::CallStarted { .. } => c.calls_started += 1,
            Event::CallRinging { .. } => c.calls_ringing += 1,
            Event::CallAnswered { .. } => c.calls_answered += 1,
            Event::CallEnded(record) => {
                *c.calls_ended.entry(call_result(record)).or_default() += 1;
                c.call_seconds += record.duration_secs;
            }
            Event::MessageStored { .. } => c.messages_stored += 1,
            Event::MessageDelivered { .. } => c.messages_delivered += 1,
            Event::VoicemailLeft { .. } => c.voicemails += 1,
            Event::RecordingStarted { .. } => c.recordings += 1,
            Event::TransferEnded { status, .. } => c.transfers[usize::from(!(200..300).contains(status))] += 1,
            Event::OriginateEnded { status, .. } => c.originations[usize::from(!(200..300).contains(status))] += 1,
            Event::AuthFailed { reason, .. } => {
                let reason = match reason {
                    AuthFailure::UnknownUser => "unknown_user",
                    AuthFailure::WrongPassword => "wrong_password",
                    AuthFailure::BadNonce => "bad_nonce",
                    AuthFailure::Locked => "locked",
                };
                *c.auth_failures.entry(reason).or_default() += 1;
            }
            Event::SourceBanned { reason, .. } => {
                let reason = match reason {
                    BanReason::Flood => "flood",
                    BanReason::AuthFailures { .. } => "auth_failures",
                    BanReason::UnknownUsers { .. } => "sweep",
                    BanReason::Scanner { .. } => "scanner",
                    BanReason::Manual(_) => "manual",
                };
                *c.bans.entry(reason).or_default() += 1;
            }
            Event::AccountLocked { .. } => c.account_lockouts += 1,
            Event::VoicemailPinLocked { .. } => c.pin_lockouts += 1,
            Event::FraudRefused { .. } => c.fraud_refused += 1,
            Event::TrunkRegistration { trunk, state, .. } => {
                let up = u64::from(matches!(state, sambung_pbx::trunks::TrunkState::Registered { .. }));
                c.trunks.insert(trunk.clone(), up);
            }
            Event::CallQuality { legs, .. } => {
                for leg in legs {
                    let i = usize::from(leg.side != "caller");
                    c.rtp_received[i] += leg.packets;
                    c.rtp_lost[i] += leg.lost;
                    if leg.packets > 0 {
                        c.quality_reports[i] += 1;
                        c.jitter_us[i] += leg.jitter_us;
                    }
                }
            }
            Event::SettingsChanged { .. } | Event::SourceUnbanned { .. } | Event::SourceVerified { .. } => {}
        }
    }

    /// The exposition: every metric with its HELP and TYPE lines.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = Text::default();
        {
            let c = self.counts();
            out.counter(
                "sambung_registrations_total",
                "Devices that registered (new bindings, not refreshes).",
                c.registrations,
            );
            out.labelled(
                "sambung_unregistrations_total",
                "counter",
                "Bindings that went away, by cause.",
                "cause",
                ["removed", "expired", "replaced", "connection_closed"]
                    .map(|k| (k, c.unregistrations.get(k).copied().unwrap_or(0))),
            );
            out.counter(
                "sambung_calls_started_total",
                "Calls placed (authenticated INVITEs naming someone).",
                c.calls_started,
            );
            out.counter("sambung_calls_ringing_total", "Targets whose devices rang.", c.calls_ringing);
            out.counter(
                "sambung_calls_answered_total",
                "Calls answered by a device or an application.",
                c.calls_answered,
            );
            out.labelled(
                "sambung_calls_ended_total",
                "counter",
                "Calls over, by result.",
                "result",
                ["answered", "busy", "cancelled", "no_answer", "failed"]
                    .map(|k| (k, c.calls_ended.get(k).copied().unwrap_or(0))),
            );
            out.counter("sambung_call_seconds_total", "Talk time of the calls over, in seconds.", c.call_seconds);
            out.counter("sambung_messages_stored_total", "Text and voice messages stored.", c.messages_stored);
            out.counter("sambung_messages_delivered_total", "Messages a device took.", c.messages_delivered);
            out.counter("sambung_voicemails_total", "Voicemail messages left.", c.voicemails);
            out.counter("sambung_recordings_total", "Calls recorded.", c.recordings);
            out.labelled(
                "sambung_originations_total",
                "counter",
                "Click-to-call attempts over, by result.",
                "result",
                [("connected", c.originations[0]), ("failed", c.originations[1])],
            );
            out.labelled(
                "sambung_transfers_total",
                "counter",
                "Transfers asked through the API, over, by result.",
                "result",
                [("connected", c.transfers[0]), ("failed", c.transfers[1])],
            );
            out.labelled(
                "sambung_auth_failures_total",
                "counter",
                "Credentials that did not authenticate, by reason.",
                "reason",
                ["unknown_user", "wrong_password", "bad_nonce", "locked"]
                    .map(|k| (k, c.auth_failures.get(k).copied().unwrap_or(0))),
            );
            out.labelled(
                "sambung_bans_total",
                "counter",
                "Source addresses banned, by reason.",
                "reason",
                ["flood", "auth_failures", "sweep", "scanner", "manual"]
                    .map(|k| (k, c.bans.get(k).copied().unwrap_or(0))),
            );
            out.counter(
                "sambung_account_lockouts_total",
                "Accounts locked after failed authentications.",
                c.account_lockouts,
            );
            out.counter("sambung_pin_lockouts_total", "Mailboxes locked after wrong PINs.", c.pin_lockouts);
            out.counter("sambung_fraud_refused_total", "Calls refused by a toll-fraud limit.", c.fraud_refused);
            if !c.trunks.is_empty() {
                out.labelled(
                    "sambung_trunk_registered",
                    "gauge",
                    "Carrier registrations: 1 while registered, 0 while registering or failed.",
                    "trunk",
                    c.trunks.iter().map(|(name, up)| (name.as_str(), *up)),
                );
            }
            let sides = |v: [u64; 2]| [("caller", v[0]), ("callee", v[1])];
            out.labelled(
                "sambung_call_rtp_received_total",
                "counter",
                "RTP packets of ended calls received by the relay, by the side that sent them.",
                "side",
                sides(c.rtp_received),
            );
            out.labelled(
                "sambung_call_rtp_lost_total",
                "counter",
                "RTP packets of ended calls lost before the relay, by the side that sent them.",
                "side",
                sides(c.rtp_lost),
            );
            out.labelled(
                "sambung_call_jitter_microseconds_total",
                "counter",
                "Interarrival jitter of ended calls' legs, summed (divide by sambung_call_legs_measured_total).",
                "side",
                sides(c.jitter_us),
            );
            out.labelled(
                "sambung_call_legs_measured_total",
                "counter",
                "Legs of ended calls whose RTP the relay measured.",
                "side",
                sides(c.quality_reports),
            );
        }
        out.gauge("sambung_registrations", "Devices registered now.", gauges.registrations);
        out.gauge("sambung_accounts_online", "Accounts with a device registered now.", gauges.accounts_online);
        out.gauge("sambung_calls_in_progress", "Calls placed and not yet over.", gauges.calls_in_progress);
        out.gauge("sambung_mail_backlog", "Mails queued, not yet sent or given up.", gauges.mail_backlog);
        out.gauge("sambung_webhook_backlog", "Webhook deliveries waiting for their receiver.", gauges.webhook_backlog);
        if let Some(relay) = &self.inner.relay {
            out.gauge("sambung_media_sessions", "Relay sessions running.", relay.active_sessions() as u64);
            out.gauge("sambung_media_port_pairs_free", "RTP/RTCP port pairs free.", relay.available_pairs() as u64);
            out.gauge("sambung_media_port_pairs", "RTP/RTCP port pairs in the range.", relay.capacity_pairs() as u64);
            let (rtp, rtcp) = relay.totals();
            let rows = |f: fn(&ChannelStats) -> [(&'static str, u64); 4]| {
                f(&rtp)
                    .into_iter()
                    .map(|(k, v)| (("rtp", k), v))
                    .chain(f(&rtcp).into_iter().map(|(k, v)| (("rtcp", k), v)))
            };
            out.two_labels(
                "sambung_media_packets_total",
                "Packets through the relay: received, sent on, rejected (not from the leg's peer or not RTP), dropped (no destination yet, or a full socket).",
                ("channel", "kind"),
                rows(|s| {
                    [
                        ("received", s.received_packets),
                        ("sent", s.sent_packets),
                        ("rejected", s.rejected_packets),
                        ("dropped", s.dropped_packets),
                    ]
                }),
            );
            out.two_labels(
                "sambung_media_bytes_total",
                "Bytes through the relay, received and sent.",
                ("channel", "kind"),
                rows(|s| [("received", s.received_bytes), ("sent", s.sent_bytes), ("rejected", 0), ("dropped", 0)])
                    .filter(|((_, kind), _)| matches!(*kind, "received" | "sent")),
            );
        }
        out.float_gauge(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds.",
            self.inner.started,
        );
        if let Some(rss) = resident_bytes() {
            out.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", rss);
        }
        out.labelled(
            "sambung_build_info",
            "gauge",
            "The running version.",
            "version",
            [(env!("CARGO_PKG_VERSION"), 1)],
        );
        out.0
    }
}

/// The process's resident memory, from `/proc/self/status` (Linux).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The exposition being written.
#[derive(Default)]
struct Text(String);

impl Text {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.head(name, "counter", help);
        let _ = writeln!(self.0, "{name} {value}");
    }

    fn gauge(&mut self, name: &str, help: &str, value: u64) {
        self.head(name, "gauge", help);
        let _ = writeln!(self.0, "{name} {value}");
    }

    fn float_gauge(&mut self, name: &str, help: &str, value: f64) {
        self.head(name, "gauge", help);
        let _ = writeln!(self.0, "{name} {value}");
    }

    /// One sample per value of `label` (the values are ours: no escaping needed).
    fn labelled<'a>(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        label: &str,
        rows: impl IntoIterator<Item = (&'a str, u64)>,
    ) {
        self.head(name, kind, help);
        for (value, n) in rows {
            let _ = writeln!(self.0, "{name}{{{label}=\"{value}\"}} {n}");
        }
    }

    fn two_labels<'a>(
        &mut self,
        name: &str,
        help: &str,
        labels: (&str, &str),
        rows: impl IntoIterator<Item = ((&'a str, &'a str), u64)>,
    ) {
        self.head(name, "counter", help);
        for ((a, b), n) in rows {
            let _ = writeln!(self.0, "{name}{{{}=\"{a}\",{}=\"{b}\"}} {n}", labels.0, labels.1);
        }
    }
}

/// Counts every event until the stream ends.
pub async fn run(metrics: Metrics, mut events: mpsc::UnboundedReceiver<Shared>) {
    while let Some(event) = events.recv().await {
        metrics.apply(&event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(answered: bool, cause_code: u16, duration_secs: u64) -> sambung_pbx::CallRecord {
        sambung_pbx::CallRecord {
            call: 1,
            call_id: "c".into(),
            caller: "alice".into(),
            callee: "bob".into(),
            caller_device: None,
            callee_device: None,
            started_at: 0,
            answered_at: answered.then_some(1),
            ended_at: 2,
            duration_secs,
            cause_code,
            cause_reason: String::new(),
            hangup_side: "caller",
            answered_by: None,
            forwards: Vec::new(),
        }
    }

    #[test]
    fn events_are_counted_by_label() {
        let metrics = Metrics::new(1_700_000_000.5, None);
        for event in [
            Event::CallEnded(record(true, 200, 30)),
            Event::CallEnded(record(false, 486, 0)),
            Event::CallEnded(record(false, 487, 0)),
            Event::CallEnded(record(true, 200, 12)),
            Event::SourceBanned { source: "192.0.2.1".parse().unwrap(), until: None, reason: BanReason::Flood },
        ] {
            metrics.apply(&event);
        }
        let text = metrics.render(&Gauges { registrations: 3, calls_in_progress: 2, ..Gauges::default() });
        for line in [
            "sambung_calls_ended_total{result=\"answered\"} 2",
            "sambung_calls_ended_total{result=\"busy\"} 1",
            "sambung_calls_ended_total{result=\"cancelled\"} 1",
            "sambung_calls_ended_total{result=\"failed\"} 0",
            "sambung_call_seconds_total 42",
            "sambung_bans_total{reason=\"flood\"} 1",
            "sambung_registrations 3",
            "sambung_calls_in_progress 2",
            "process_start_time_seconds 1700000000.5",
            "# TYPE sambung_calls_ended_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        // Every sample's family has its HELP and TYPE before it.
        let mut typed = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                assert!(typed.insert(rest.split(' ').next().unwrap().to_owned()), "TYPE twice: {line}");
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(typed.contains(name), "{name} has no TYPE line");
            }
        }
    }

    #[test]
    fn the_grafana_dashboard_uses_only_exported_metrics() {
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../../../docs/grafana/sambung-dashboard.json")).expect("valid JSON");
        let relay = MediaRelay::new(crate::media::RelayConfig::new(41000, 41010), tokio_handle()).expect("a relay");
        let text = Metrics::new(0.0, Some(relay)).render(&Gauges::default());
        let exported: std::collections::HashSet<&str> =
            text.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split(['{', ' ']).next()).collect();
        let mut used = 0;
        for panel in dashboard["panels"].as_array().expect("panels") {
            for target in panel["targets"].as_array().expect("targets") {
                let expr = target["expr"].as_str().expect("an expression");
                for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                    if word.starts_with("sambung_") || word.starts_with("process_") {
                        assert!(exported.contains(word), "the dashboard uses {word}, which /metrics does not export");
                        used += 1;
                    }
                }
            }
        }
        assert!(used >= 20, "{used}");
    }

    fn tokio_handle() -> tokio::runtime::Handle {
        static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
        RUNTIME
            .get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime"))
            .handle()
            .clone()
    }
}
