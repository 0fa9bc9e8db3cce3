//! The runtime: binds every listener, drives call control, and shuts down cleanly.
//!
//! Transports, the store task and the applications push [`Event`]s into one channel; the
//! call-control task owns the [`Pbx`], the [`Sender`] (the connection table) and the media
//! sessions, so the per-message path takes no lock. It turns each event into an
//! [`Input`], then carries out every [`Output`]: SIP to send, media commands, application
//! requests, store writes, and domain events for the [`crate::events`] stream.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use sambung_pbx::{Input, MediaCommand, MediaEvent, Now, Output, Pbx, StoreWrite};

use crate::config::{Config, ListenConfig};
use crate::data::{self, DataError};
use crate::events::{EventBus, Publisher};
use crate::guard::SharedGate;
use crate::media::Leg;
use crate::persist;
use crate::shutdown::ShutdownController;
use crate::transport::stream::StreamContext;
use crate::transport::tls::{self, TlsError};
use crate::transport::{Event, Events, Outbound, Sender, TransportKind, tcp, udp, ws};

/// How many events may wait for the core.
const EVENT_QUEUE: usize = 8192;

/// How often each shard logs what it keeps (at debug level), to tell a leak from load.
const FOOTPRINT_REPORT: Duration = Duration::from_secs(10);

/// How long shutdown waits for connections to close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {transport} {addr}: {source}")]
    Bind { transport: TransportKind, addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("database: {0}")]
    Store(#[from] sambung_store::StoreError),
    #[error("media relay: {0}")]
    Media(#[from] crate::media::MediaError),
    #[error("WebRTC identity: {0}")]
    WebRtc(#[from] sambung_media::webrtc::WebRtcError),
    #[error("outgoing TLS: {0}")]
    Dial(#[from] crate::transport::dial::DialError),
    #[error("DNS resolver: {0}")]
    Resolver(std::io::Error),
    #[error("{0}")]
    Music(crate::media::MusicError),
}

/// Every socket the server listens on, bound but not yet served.
#[derive(Debug)]
pub struct Listeners {
    udp: Vec<(SocketAddr, Arc<UdpSocket>)>,
    stream: Vec<(TransportKind, TcpListener)>,
}

impl Listeners {
    /// Binds every configured address, so that a busy port fails the start, not later. The one
    /// exception: the `[::]` of a list left at its default is skipped where the machine has no
    /// IPv6.
    pub fn bind(config: &Config) -> Result<Listeners, ServerError> {
        let listen = &config.listen;
        let defaults = ListenConfig::default();
        let mut udp = Vec::new();
        for &addr in &listen.udp {
            match udp::bind(addr) {
                Ok(socket) => udp.push((socket.local_addr().unwrap_or(addr), Arc::new(socket))),
                Err(e) if skip_default_v6(TransportKind::Udp, addr, listen.udp == defaults.udp, &e) => {}
                Err(source) => return Err(ServerError::Bind { transport: TransportKind::Udp, addr, source }),
            }
        }
        let mut stream = Vec::new();
        for (transport, addrs, default) in [
            (TransportKind::Tcp, &listen.tcp, &defaults.tcp),
            (TransportKind::Tls, &listen.tls, &defaults.tls),
            (TransportKind::Ws, &listen.ws, &defaults.ws),
            (TransportKind::Wss, &listen.wss, &defaults.wss),
        ] {
            for &addr in addrs {
                match tcp::bind(addr) {
                    Ok(listener) => stream.push((transport, listener)),
                    Err(e) if skip_default_v6(transport, addr, addrs == default, &e) => {}
                    Err(source) => return Err(ServerError::Bind { transport, addr, source }),
                }
            }
        }
        Ok(Listeners { udp, stream })
    }

    /// The bound addresses (with real ports when port 0 was configured).
    pub fn addresses(&self) -> Vec<(TransportKind, SocketAddr)> {
        let udp = self.udp.iter().map(|(addr, _)| (TransportKind::Udp, *addr));
        let stream = self.stream.iter().filter_map(|(t, l)| Some((*t, l.local_addr().ok()?)));
        udp.chain(stream).collect()
    }
}

/// True (and logged) when `addr` is the IPv6 wildcard of a default listen list and `error` says
/// the machine has no IPv6: the address family is not supported, or `::` cannot be assigned.
fn skip_default_v6(transport: TransportKind, addr: SocketAddr, is_default: bool, error: &std::io::Error) -> bool {
    /// EAFNOSUPPORT, which std has no `ErrorKind` for.
    const EAFNOSUPPORT: i32 = if cfg!(target_os = "linux") { 97 } else { 47 };
    let no_ipv6 = error.kind() == std::io::ErrorKind::AddrNotAvailable || error.raw_os_error() == Some(EAFNOSUPPORT);
    let skip = is_default && no_ipv6 && addr.is_ipv6() && addr.ip().is_unspecified();
    if skip {
        warn!(%transport, %addr, %error, "no IPv6 on this machine: not listening on the default IPv6 address");
    }
    skip
}

#[cfg(test)]
mod skip_default_v6_tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn only_the_default_ipv6_wildcard_without_ipv6() {
        let any6: SocketAddr = "[::]:5060".parse().unwrap();
        let tcp = TransportKind::Tcp;
        let unsupported = Error::from_raw_os_error(if cfg!(target_os = "linux") { 97 } else { 47 });
        let unassignable = Error::from(ErrorKind::AddrNotAvailable);
        assert!(skip_default_v6(tcp, any6, true, &unsupported));
        assert!(skip_default_v6(tcp, any6, true, &unassignable));
        // Configured by hand, a busy port, or another address: the start fails.
        assert!(!skip_default_v6(tcp, any6, false, &unsupported));
        assert!(!skip_default_v6(tcp, any6, true, &Error::from(ErrorKind::AddrInUse)));
        assert!(!skip_default_v6(tcp, "[::1]:5060".parse().unwrap(), true, &unassignable));
        assert!(!skip_default_v6(tcp, "0.0.0.0:5060".parse().unwrap(), true, &unassignable));
    }
}

/// Runs the server with `config` until `signal` completes, then shuts down cleanly.
pub async fn serve(config: Config, signal: impl Future<Output = ()>) -> Result<(), ServerError> {
    data::ensure_dir(&config.data_dir)?;
    let secret = data::secret(&config.data_dir)?;
    let needs_tls = !config.listen.tls.is_empty() || !config.listen.wss.is_empty();
    let tls = if needs_tls { Some(tls::load(&config)?) } else { None };
    if let Some(tls) = &tls {
        info!(certificate = %tls.certificate.display(), "TLS certificate loaded");
    }
    let listeners = Listeners::bind(&config)?;
    let controller = ShutdownController::new();
    let shard_count = config.limits.shard_count();
    let (events_tx, events_rxs) = Events::channels(shard_count, EVENT_QUEUE);
    let mode = sambung_store::OpenMode { create_if_missing: true, max_connections: config.database.max_connections };
    let store = sambung_store::Store::open_with(&config.database_url(), mode).await?;
    let generation = store.accounts_generation().await?;
    // The relay's DTLS identity for browsers' WebRTC legs: made at each start (a browser
    // learns its fingerprint from each call's SDP).
    let identity = Arc::new(sambung_media::webrtc::WebRtcIdentity::generate(tokio::time::Instant::now().into_std())?);
    let mut pbx_config = config.pbx();
    pbx_config.webrtc_fingerprint = Some(identity.fingerprint().to_owned());
    let pbxs = Pbx::sharded(&pbx_config, &secret, rand::random(), shard_count);
    let accounts = persist::load_accounts(&store).await?;
    let bindings = persist::load_bindings(&store).await?;
    let mailboxes = persist::load_mailboxes(&store).await?;
    store.purge_guard(i64::try_from(persist::unix_now()).unwrap_or(i64::MAX)).await?;
    let guard = persist::load_guard(&store).await?;
    info!(
        accounts = accounts.len(),
        bindings = bindings.len(),
        mailboxes = mailboxes.len(),
        bans = guard.bans.len(),
        lockouts = guard.lockouts.len(),
        "database loaded"
    );
    let gate = SharedGate::new(config.guard.gate()).reporting_to(events_tx.downgrade());
    let relay = crate::media::MediaRelay::new((&config.media).into(), tokio::runtime::Handle::current())?;
    relay.set_webrtc_identity(identity.clone());
    if let Some(music) = config.media.music().map_err(ServerError::Music)? {
        relay.set_music(music);
    }
    // A keyframe the relay wants of a phone that takes them only by SIP INFO: the call's shard
    // sends the INFO. Sessions are named `call-<number>` (below).
    let keyframe_events = events_tx.downgrade();
    relay.set_keyframe_sink(crate::media::KeyframeSink::new(move |name, leg, stream| {
        let call = name.strip_prefix("call-").and_then(|n| n.parse::<u64>().ok());
        if let (Some(call), Some(events)) = (call, keyframe_events.upgrade()) {
            let side = if leg == Leg::A { sambung_pbx::Side::A } else { sambung_pbx::Side::B };
            let _ = events.try_send(Event::KeyframeWanted { call, side, stream });
        }
    }));
    info!(pairs = relay.capacity_pairs(), fingerprint = identity.fingerprint(), "RTP relay ready");

    // The domain events: the call records subscribe before anything is published.
    let mut bus = EventBus::new();
    let records = tokio::spawn(crate::events::run_call_records(store.clone(), bus.subscribe()));
    let trunk_states = tokio::spawn(crate::events::run_trunk_status(store.clone(), bus.subscribe()));
    let recording_rows = tokio::spawn(crate::events::run_recordings(store.clone(), bus.subscribe()));
    let started = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let metrics = crate::metrics::Metrics::new(started, Some(relay.clone()));
    let counting = tokio::spawn(crate::metrics::run(metrics.clone(), bus.subscribe()));
    let hooks = crate::webhooks::Hooks::load(store.clone()).await?;
    let hooks_queue = tokio::spawn(crate::webhooks::run_queue(hooks.clone(), bus.subscribe()));
    let hooks_sender = tokio::spawn(crate::webhooks::run_sender(hooks.clone()));
    let hub = crate::presence::Hub::new();
    hub.load(&bindings, &accounts);
    let presence =
        tokio::spawn(crate::presence::run(hub.clone(), store.clone(), bus.subscribe(), events_tx.downgrade()));
    let logged_out = store.agents_logged_out().await?;
    let music = config.media.music().map_err(ServerError::Music)?;
    let queues = crate::apps::queue::Queues::new(
        config.queues(),
        &logged_out,
        music.as_ref().map(crate::media::Music::samples),
        Instant::now(),
    );
    let queue_events = tokio::spawn(queues.clone().run(bus.subscribe()));
    let recordings_dir = config.data_dir.join(crate::media::record::DIR);
    let expiry =
        tokio::spawn(crate::media::record::expire(store.clone(), recordings_dir.clone(), config.recording.keep_days));
    let publisher = bus.publisher();

    let (persist_tx, persist_rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(persist::run_writer(store.clone(), persist_rx, events_tx.downgrade()));
    let reload = Arc::new(tokio::sync::Notify::new());
    let watcher = tokio::spawn(persist::watch_accounts(store.clone(), events_tx.clone(), generation, reload.clone()));
    let mail = crate::mail::spawn(store.clone(), config.email.clone());
    // The applications report through a channel of their own, forwarded to call control's
    // while it runs: that channel must close once the transports are gone, even while
    // application tasks still hold their sender.
    let (apps_tx, mut apps_rx) = mpsc::channel::<Event>(256);
    let core_events = events_tx.downgrade();
    tokio::spawn(async move {
        while let Some(event) = apps_rx.recv().await {
            let Some(events) = core_events.upgrade() else { break };
            if events.send(event).await.is_err() {
                break;
            }
        }
    });
    let apps =
        crate::apps::Apps::new(store.clone(), &config, apps_tx, mail.wake_handle(), publisher.clone(), queues.clone())
            .with_hub(hub.clone());
    let limit = Arc::new(Semaphore::new(config.limits.max_connections));
    let ctx = StreamContext {
        events: events_tx.clone(),
        gate: gate.clone(),
        max_message_size: config.limits.max_message_size,
        idle_timeout: config.limits.idle_timeout(),
        shutdown: controller.handle(),
    };
    // Outgoing connections (carriers, other domains) and the lookups that find them.
    let tls_names = crate::transport::dial::TlsNames::default();
    let tls_client = crate::transport::dial::client_config(config.tls.trusted_ca.as_deref())?;
    let lookups = crate::resolver::spawn(config.dns.server_addresses(), events_tx.downgrade(), tls_names.clone())
        .await
        .map_err(ServerError::Resolver)?;
    let dialer = crate::transport::dial::Dialer::new(&ctx, tls_client, tls_names);
    // Call control: one task per shard, each with its own driver (connection table, media
    // sessions of its calls, applications of its calls).
    let mut cores = Vec::with_capacity(shard_count);
    let mut bindings = Some(bindings);
    for (mut pbx, events_rx) in pbxs.into_iter().zip(events_rxs) {
        let mut driver = Driver {
            sender: Sender::new(listeners.udp.clone()).with_dialer(dialer.for_shard(pbx.shard_info().index)),
            lookups: lookups.clone(),
            weak_events: events_tx.downgrade(),
            persist: persist_tx.clone(),
            apps: apps.for_shard(),
            media: Media {
                relay: relay.clone(),
                sessions: HashMap::new(),
                recordings: config.data_dir.join(crate::media::record::DIR),
            },
            events: publisher.clone(),
            gate: gate.clone(),
            bans: 0,
        };
        let now = now();
        let first = pbx.shard_info().is_home();
        if first {
            // shared by the shards: given once
            driver.set_guard_lists(&mut pbx, guard.clone(), now, false);
        }
        let mut inputs =
            vec![Input::Accounts(accounts.clone()), Input::Mailboxes(mailboxes.clone()), Input::Presence(hub.all())];
        inputs.extend(bindings.take().map(Input::Bindings));
        for input in inputs {
            pbx.handle_input(input, now);
            driver.flush(&mut pbx, now);
        }
        cores.push(tokio::spawn(run_core(pbx, events_rx, driver)));
    }
    drop((persist_tx, apps, relay, publisher));
    info!(shards = shard_count, "call control ready");

    drop((dialer, lookups));
    let addresses = listeners.addresses();
    let mut tasks: Vec<JoinHandle<()>> = Vec::new();
    for (local, socket) in listeners.udp {
        let events = events_tx.clone();
        let gate = gate.clone();
        tasks.push(tokio::spawn(udp::serve(socket, local, events, gate, ctx.max_message_size, controller.handle())));
    }
    let sip_router = ws::router(ctx.clone());
    let plain_routes = ws::Routes { sip: sip_router.clone(), web: None };
    // The web app and its API are served over HTTPS only: the secure WebSocket listeners.
    let web = config.web.enabled.then(|| {
        let state = crate::web::WebState::new(store.clone(), &config, hub.clone())
            .with_core(events_tx.downgrade(), reload.clone())
            .with_mail(mail.wake_handle())
            .with_metrics(metrics.clone())
            .with_webhooks(hooks.clone())
            .with_sip(ctx.clone())
            .with_queues(queues.clone())
            .with_recordings(recordings_dir.clone());
        crate::web::router(state)
    });
    let secure_routes = ws::Routes { sip: sip_router, web };
    let web_purge = tokio::spawn(crate::web::purge(store.clone()));
    for (transport, listener) in listeners.stream {
        let ctx = ctx.clone();
        let limit = limit.clone();
        let task = match (transport, &tls) {
            (TransportKind::Tcp, _) => tokio::spawn(tcp::serve(listener, ctx, limit)),
            (TransportKind::Tls, Some(tls)) => tokio::spawn(tls::serve(listener, tls.sip.clone(), ctx, limit)),
            (TransportKind::Ws, _) => {
                tokio::spawn(ws::serve(listener, transport, None, plain_routes.clone(), ctx, limit))
            }
            (TransportKind::Wss, Some(tls)) => {
                tokio::spawn(ws::serve(listener, transport, Some(tls.https.clone()), secure_routes.clone(), ctx, limit))
            }
            // TLS is loaded whenever a TLS or WSS address is configured; UDP is not a stream.
            (TransportKind::Tls | TransportKind::Wss | TransportKind::Udp, _) => continue,
        };
        tasks.push(task);
    }
    drop((ctx, plain_routes, secure_routes, events_tx));
    for (transport, addr) in &addresses {
        info!(%transport, %addr, "listening");
    }
    if addresses.is_empty() {
        warn!("no transport is enabled: every [listen] list is empty");
    }
    info!(version = env!("CARGO_PKG_VERSION"), "Sambung is ready");

    signal.await;
    info!("shutting down");
    if !controller.shutdown(SHUTDOWN_GRACE).await {
        warn!("some connections did not close in time");
    }
    for task in tasks {
        let _ = task.await;
    }
    watcher.abort();
    web_purge.abort();
    // A send in progress may take up to [email] timeout_seconds: the grace period bounds it.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, mail.stop()).await;
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        for core in cores {
            let _ = core.await;
        }
    })
    .await;
    // Call control is gone, so the writer's channel closes once it has written everything, and
    // the call records end once the applications' publishers are gone too.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, writer).await;
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, records).await;
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, trunk_states).await;
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, recording_rows).await;
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, presence).await;
    counting.abort();
    queue_events.abort();
    expiry.abort();
    // Queued deliveries are in the store: the sender takes them up again at the next start.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, hooks_queue).await;
    hooks_sender.abort();
    store.close().await;
    info!("stopped");
    Ok(())
}

/// What carries out call control's outputs.
#[derive(Debug)]
struct Driver {
    /// The UDP sockets and the stream connections.
    sender: Sender,
    /// DNS lookups (RFC 3263), answered as [`Event::Resolved`].
    lookups: crate::resolver::Lookups,
    weak_events: crate::transport::WeakEvents,
    persist: mpsc::UnboundedSender<StoreWrite>,
    apps: crate::apps::Apps,
    media: Media,
    events: Publisher,
    /// The guard's gate: bans made by call control reach it here.
    gate: SharedGate,
    /// Bans made since start, for the log.
    bans: u64,
}

/// The media sessions of the calls, by call.
#[derive(Debug)]
struct Media {
    relay: crate::media::MediaRelay,
    sessions: HashMap<u64, crate::media::RelaySession>,
    /// Where call recordings are written (`<data_dir>/recordings`).
    recordings: std::path::PathBuf,
}

impl Media {
    /// Carries out a command; the answer, for the commands that have one.
    fn command(
        &mut self,
        command: MediaCommand,
        apps: &mut crate::apps::Apps,
        events: &Publisher,
    ) -> Option<MediaEvent> {
        match command {
            MediaCommand::Open { session, streams, address } => {
                Some(match self.relay.allocate(&format!("call-{session}"), streams, address) {
                    Ok(relayed) => {
                        let ports = [relayed.leg_ports(Leg::A).to_vec(), relayed.leg_ports(Leg::B).to_vec()];
                        self.sessions.insert(session, relayed);
                        MediaEvent::Opened { session, ports: Box::new(ports) }
                    }
                    Err(error) => {
                        warn!(call = session, %error, "no media session");
                        MediaEvent::Failed { session, reason: error.to_string() }
                    }
                })
            }
            MediaCommand::SetPeer { session, side, stream, peer } => {
                if let Some(relayed) = self.sessions.get(&session) {
                    let _ = relayed.set_peer(leg(side), stream, peer);
                }
                None
            }
            MediaCommand::Configure { session, stream, legs } => {
                if let Some(relayed) = self.sessions.get(&session) {
                    let [a, b] = *legs;
                    let transcode = a.format.is_some() && b.format.is_some();
                    let _ = relayed.configure(stream, crate::media::StreamConfig { legs: [a, b], transcode });
                }
                None
            }
            MediaCommand::AttachApp { session, format, rate } => {
                let (port, audio) = crate::media::app_port(rate);
                match self.sessions.get(&session).map(|relayed| relayed.attach_app(port, format)) {
                    Some(Ok(())) => apps.attach(session, audio),
                    Some(Err(error)) => warn!(call = session, %error, "the application's media could not be attached"),
                    None => warn!(call = session, "no media session for the application"),
                }
                None
            }
            MediaCommand::Record { session, formats, name, notice } => {
                let relayed = self.sessions.get(&session)?;
                let path = self.recordings.join(format!("{name}.wav"));
                match crate::media::record::start(&path) {
                    Ok(sink) => {
                        info!(call = session, path = %path.display(), "recording the call");
                        let _ = relayed.record(*formats, sink, notice);
                    }
                    Err(error) => warn!(call = session, path = %path.display(), %error, "cannot record the call"),
                }
                None
            }
            MediaCommand::DetachApp { session } => {
                if let Some(relayed) = self.sessions.get(&session) {
                    let _ = relayed.detach_app();
                }
                None
            }
            MediaCommand::WebRtc { session, side, plan, remote } => {
                if let Some(relayed) = self.sessions.get(&session) {
                    let _ = relayed.attach_webrtc(leg(side), *plan, *remote);
                }
                None
            }
            MediaCommand::Hold { session, side, format } => {
                if let Some(relayed) = self.sessions.get(&session) {
                    let _ = relayed.hold(leg(side), format);
                }
                None
            }
            MediaCommand::Resume { session } => {
                if let Some(relayed) = self.sessions.get(&session) {
                    let _ = relayed.resume();
                }
                None
            }
            MediaCommand::Keyframe { session, side } => {
                if let Some(relayed) = self.sessions.get(&session) {
                    let _ = relayed.request_keyframe(leg(side));
                }
                None
            }
            MediaCommand::Close { session } => {
                if let Some(relayed) = self.sessions.remove(&session) {
                    // The final figures once the task has stopped; the call's record is already
                    // on its way, and the records task joins the two by call number.
                    let events = events.clone();
                    tokio::spawn(async move {
                        let (_, [a, b]) = relayed.release_with_quality().await;
                        let leg = |side, q: crate::media::LegQuality| sambung_pbx::LegReception {
                            side,
                            packets: q.packets,
                            lost: q.lost,
                            jitter_us: (q.jitter_ms * 1000.0).round() as u64,
                            payload_type: q.payload_type,
                            rtt_us: q.rtt_ms.map(|r| (r * 1000.0).round() as u64),
                        };
                        let legs = vec![leg("caller", a), leg("callee", b)];
                        events.publish(sambung_pbx::Event::CallQuality { call: session, legs });
                    });
                }
                None
            }
        }
    }
}

fn leg(side: sambung_pbx::Side) -> Leg {
    match side {
        sambung_pbx::Side::A => Leg::A,
        sambung_pbx::Side::B => Leg::B,
    }
}

impl Driver {
    /// Carries out everything call control asks for, feeding back what answers at once (the
    /// media sessions it opens); returns when it next wants [`Input::Timeout`].
    fn flush(&mut self, pbx: &mut Pbx, now: Now) -> Option<Instant> {
        loop {
            match pbx.poll_output() {
                Output::Timeout(at) => return at,
                Output::Transmit(transmit) => {
                    if let Some(out) = Outbound::from_pbx(transmit)
                        && let Err(e) = self.sender.send(out)
                    {
                        debug!(error = %e, "message not sent");
                    }
                }
                Output::Media(command) => {
                    if let Some(answer) = self.media.command(command, &mut self.apps, &self.events) {
                        pbx.handle_input(Input::Media(answer), now);
                    }
                }
                Output::App(request) => self.apps.handle(request),
                Output::Resolve { lookup, query } => self.lookups.ask(lookup, query, &self.weak_events),
                Output::Store(write) => {
                    let _ = self.persist.send(write);
                }
                Output::Event(event) => self.event(event, now),
            }
        }
    }

    /// Publishes a domain event; a ban also closes the gate on its source at once.
    fn event(&mut self, event: sambung_pbx::Event, now: Now) {
        debug!(target: "sambung::event", ?event);
        if let sambung_pbx::Event::SourceVerified { source } = &event {
            self.gate.lock().vouch(*source, now.instant);
        }
        if let sambung_pbx::Event::SourceBanned { source, until, reason } = &event {
            let at = until.map(|u| now.instant + Duration::from_secs(u.saturating_sub(now.unix_secs)));
            let mut gate = self.gate.lock();
            if gate.ban(*source, at, now.instant) {
                self.bans += 1;
                let counters = gate.counters();
                drop(gate);
                let until = until.map_or_else(|| "removed by hand".to_owned(), |u| u.to_string());
                warn!(
                    %source,
                    %reason,
                    until,
                    bans = self.bans,
                    dropped = counters.dropped_banned,
                    "source banned"
                );
            }
        }
        self.events.publish(event);
    }

    /// The bans the gate made itself (floods): made durable and announced like every other
    /// ban. Taken after every batch of events, so none is lost when the gate's wake-up
    /// ([`Event::Flooded`]) could not be queued.
    fn drain_gate(&mut self, now: Now) {
        let new_bans = self.gate.lock().take_new_bans();
        for (source, until) in new_bans {
            let until = now.unix_secs + until.saturating_duration_since(now.instant).as_secs();
            let reason = sambung_pbx::BanReason::Flood;
            let _ = self.persist.send(StoreWrite::Ban { source, until: Some(until), reason: reason.to_string() });
            self.event(sambung_pbx::Event::SourceBanned { source, until: Some(until), reason }, now);
        }
    }

    /// The bans and lockouts from the store replace those in force (bans the gate made in the
    /// last seconds stay: the store may not hold them yet); what an operator added or lifted
    /// is announced.
    fn set_guard_lists(&mut self, pbx: &mut Pbx, lists: persist::GuardLists, now: Now, announce: bool) {
        let at = |until: Option<u64>| until.map(|u| now.instant + Duration::from_secs(u.saturating_sub(now.unix_secs)));
        let (before, after) =
            self.gate.lock().replace_bans(lists.bans.iter().map(|ban| (ban.0, at(ban.1))), now.instant);
        for ban in lists.bans.iter().filter(|_| announce) {
            let source = sambung_pbx::guard::source_key(ban.0);
            if after.contains(&source) && !before.contains(&source) {
                let reason = sambung_pbx::BanReason::Manual(ban.2.clone());
                warn!(%source, %reason, "source banned");
                self.events.publish(sambung_pbx::Event::SourceBanned { source, until: ban.1, reason });
            }
        }
        for source in before.iter().filter(|s| announce && !after.contains(s)) {
            info!(%source, "ban lifted");
            self.events.publish(sambung_pbx::Event::SourceUnbanned { source: *source });
        }
        let bans = lists.bans.iter().map(|ban| (ban.0, ban.1)).collect();
        pbx.handle_input(Input::Guard { bans, lockouts: lists.lockouts }, now);
        self.flush(pbx, now);
    }
}

/// The call-control task: feeds events and timer expiries to call control and carries out what
/// it asks.
async fn run_core(mut pbx: Pbx, mut events: mpsc::Receiver<Event>, mut driver: Driver) {
    let mut batch = Vec::with_capacity(64);
    let mut deadline = driver.flush(&mut pbx, now());
    let mut report = tokio::time::interval(FOOTPRINT_REPORT);
    report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let timer = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = events.recv_many(&mut batch, 64) => {
                if received == 0 {
                    break;
                }
                let now = now();
                for event in batch.drain(..) {
                    let input = match event {
                        Event::Inbound(inbound) => Input::Message(inbound.to_pbx()),
                        Event::FramingError(inbound, error) => Input::FramingError(inbound.to_pbx(), error),
                        Event::Connected(conn) => {
                            driver.sender.connected(conn);
                            continue;
                        }
                        Event::Disconnected(id) => {
                            driver.sender.disconnected(id);
                            Input::Disconnected { conn: id.raw() }
                        }
                        Event::Accounts(accounts) => Input::Accounts(accounts),
                        Event::Store(reply) => Input::Store(reply),
                        Event::AppEnded { call, end } => Input::AppEnded { call, end },
                        Event::AppConnect { call, target } => Input::AppConnect { call, target },
                        Event::PickUp { call, partner } => Input::PickUp { call, partner },
                        Event::RecordCall { call } => Input::RecordCall { call },
                        Event::Mailbox { account_id, counts } => Input::Mailboxes(vec![(account_id, counts)]),
                        Event::Presence(changes) => Input::Presence(changes),
                        Event::Deliver { message, from_account } => Input::Deliver { message, from_account },
                        Event::Unregister { account_id, device } => Input::Unregister { account_id, device },
                        Event::EndCall { call } => Input::EndCall { call },
                        Event::KeyframeWanted { call, side, stream } => Input::KeyframeWanted { call, side, stream },
                        Event::Originate { id, account_id, target } => Input::Originate { id, account_id, target },
                        Event::TransferCall { call, side, target } => Input::TransferCall { call, side, target },
                        Event::Resolved { lookup, result } => Input::Resolved { lookup, result },
                        Event::Unreachable { transport, remote, .. } => {
                            Input::Unreachable { transport: transport.sip(), remote }
                        }
                        Event::Flooded => {
                            driver.drain_gate(now);
                            continue;
                        }
                        Event::Guard(lists) => {
                            driver.set_guard_lists(&mut pbx, lists, now, true);
                            continue;
                        }
                    };
                    pbx.handle_input(input, now);
                    deadline = driver.flush(&mut pbx, now);
                }
                driver.drain_gate(now);
            }
            _ = report.tick() => {
                let shard = pbx.shard_info().index;
                let footprint = pbx.footprint();
                debug!(shard, ?footprint, media_sessions = driver.media.sessions.len(), "call control footprint");
            }
            () = timer => {
                let now = now();
                pbx.handle_input(Input::Timeout, now);
                deadline = driver.flush(&mut pbx, now);
            }
        }
    }
    debug!(connections = driver.sender.connections(), "call control stopped");
}

/// The time of an input: the one place the server reads the clocks for call control.
fn now() -> Now {
    Now { instant: Instant::now(), unix_secs: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) }
}

/// Completes on SIGINT or SIGTERM (on non-Unix systems, on Ctrl-C). The handlers are
/// installed when this is called, not when the future is first polled: call it before the
/// server binds anything, inside the runtime, so that a signal sent as soon as the server
/// answers stops it cleanly instead of killing it.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    };
    async move {
        #[cfg(unix)]
        match handlers {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => info!("SIGINT received"),
                    _ = term.recv() => info!("SIGTERM received"),
                }
            }
            _ => {
                warn!("cannot install signal handlers; waiting for Ctrl-C");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
