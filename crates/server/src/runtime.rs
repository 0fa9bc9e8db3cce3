//! The runtime: binds every listener, runs the core task, and shuts down cleanly.
//!
//! Transports push [`Event`]s into one channel; the core task owns the [`Core`] and the
//! [`Sender`] (the connection table), so the per-message path takes no lock.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::core::{Core, Now};
use crate::data::{self, DataError};
use crate::persist;
use crate::shutdown::ShutdownController;
use crate::transport::stream::StreamContext;
use crate::transport::tls::{self, TlsError};
use crate::transport::{Event, Sender, TransportKind, tcp, udp, ws};

/// How many events may wait for the core.
const EVENT_QUEUE: usize = 8192;

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
}

/// Every socket the server listens on, bound but not yet served.
#[derive(Debug)]
pub struct Listeners {
    udp: Vec<(SocketAddr, Arc<UdpSocket>)>,
    stream: Vec<(TransportKind, TcpListener)>,
}

impl Listeners {
    /// Binds every configured address, so that a busy port fails the start, not later.
    pub fn bind(config: &Config) -> Result<Listeners, ServerError> {
        let mut udp = Vec::new();
        for &addr in &config.listen.udp {
            let socket =
                udp::bind(addr).map_err(|source| ServerError::Bind { transport: TransportKind::Udp, addr, source })?;
            let local = socket.local_addr().unwrap_or(addr);
            udp.push((local, Arc::new(socket)));
        }
        let mut stream = Vec::new();
        let listen = &config.listen;
        for (transport, addrs) in [
            (TransportKind::Tcp, &listen.tcp),
            (TransportKind::Tls, &listen.tls),
            (TransportKind::Ws, &listen.ws),
            (TransportKind::Wss, &listen.wss),
        ] {
            for &addr in addrs {
                let listener = tcp::bind(addr).map_err(|source| ServerError::Bind { transport, addr, source })?;
                stream.push((transport, listener));
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
    let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
    let mode = sambung_store::OpenMode { create_if_missing: true, max_connections: config.database.max_connections };
    let store = sambung_store::Store::open_with(&config.database_url(), mode).await?;
    let generation = store.accounts_generation().await?;
    let mut core = Core::new(&config, &secret);
    let accounts = persist::load_accounts(&store).await?;
    let bindings = persist::load_bindings(&store).await?;
    let mailboxes = persist::load_mailboxes(&store).await?;
    info!(accounts = accounts.len(), bindings = bindings.len(), mailboxes = mailboxes.len(), "database loaded");
    core.set_accounts(accounts);
    core.set_mailboxes(mailboxes);
    let relay = crate::media::MediaRelay::new((&config.media).into(), tokio::runtime::Handle::current())?;
    info!(pairs = relay.capacity_pairs(), "RTP relay ready");
    // Weak: the sink must not keep the core's channel open after every producer has gone.
    let key_events = events_tx.downgrade();
    relay.set_key_sink(crate::media::KeySink::new(move |event| {
        if let Some(events) = key_events.upgrade() {
            let _ = events.try_send(Event::Key(event));
        }
    }));
    core.set_media_relay(relay);
    core.restore_bindings(bindings, now());
    let (persist_tx, persist_rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(persist::run_writer(store.clone(), persist_rx, events_tx.downgrade()));
    let watcher = tokio::spawn(persist::watch_accounts(store.clone(), events_tx.clone(), generation));
    let mail = crate::mail::spawn(store.clone(), config.email.clone());
    // The applications report through a channel of their own, forwarded to the core's while it
    // runs: the core's channel must close once the transports are gone, even while
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
    let apps = crate::apps::Apps::new(store.clone(), &config, apps_tx, mail.wake_handle());
    let core_task = tokio::spawn(run_core(core, events_rx, Sender::new(listeners.udp.clone()), persist_tx, apps));

    let limit = Arc::new(Semaphore::new(config.limits.max_connections));
    let ctx = StreamContext {
        events: events_tx.clone(),
        max_message_size: config.limits.max_message_size,
        idle_timeout: config.limits.idle_timeout(),
        shutdown: controller.handle(),
    };
    let addresses = listeners.addresses();
    let mut tasks: Vec<JoinHandle<()>> = Vec::new();
    for (local, socket) in listeners.udp {
        let events = events_tx.clone();
        tasks.push(tokio::spawn(udp::serve(socket, local, events, ctx.max_message_size, controller.handle())));
    }
    let ws_router = ws::router(ctx.clone());
    for (transport, listener) in listeners.stream {
        let ctx = ctx.clone();
        let limit = limit.clone();
        let task = match (transport, &tls) {
            (TransportKind::Tcp, _) => tokio::spawn(tcp::serve(listener, ctx, limit)),
            (TransportKind::Tls, Some(tls)) => tokio::spawn(tls::serve(listener, tls.sip.clone(), ctx, limit)),
            (TransportKind::Ws, _) => tokio::spawn(ws::serve(listener, transport, None, ws_router.clone(), ctx, limit)),
            (TransportKind::Wss, Some(tls)) => {
                tokio::spawn(ws::serve(listener, transport, Some(tls.https.clone()), ws_router.clone(), ctx, limit))
            }
            // TLS is loaded whenever a TLS or WSS address is configured; UDP is not a stream.
            (TransportKind::Tls | TransportKind::Wss | TransportKind::Udp, _) => continue,
        };
        tasks.push(task);
    }
    drop((ctx, ws_router, events_tx));
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
    // A send in progress may take up to [email] timeout_seconds: the grace period bounds it.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, mail.stop()).await;
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, core_task).await;
    // The core is gone, so the writer's channel closes once it has written everything.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, writer).await;
    store.close().await;
    info!("stopped");
    Ok(())
}

/// The core task: feeds events and timer expiries to the core and sends what it answers.
async fn run_core(
    mut core: Core,
    mut events: mpsc::Receiver<Event>,
    mut sender: Sender,
    persist: mpsc::UnboundedSender<crate::core::Persist>,
    mut apps: crate::apps::Apps,
) {
    let mut batch = Vec::with_capacity(64);
    loop {
        let deadline = core.poll_timeout();
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
                    match event {
                        Event::Inbound(inbound) => core.handle_inbound(now, inbound),
                        Event::FramingError(inbound, error) => core.handle_framing_error(inbound, error),
                        Event::Connected(conn) => sender.connected(conn),
                        Event::Disconnected(id) => sender.disconnected(id),
                        Event::Accounts(accounts) => core.set_accounts(accounts),
                        Event::MessageStored { ticket, id } => core.message_stored(now, ticket, id),
                        Event::Undelivered { account_id, device, messages } => {
                            core.deliver_undelivered(now, account_id, &device, messages)
                        }
                        Event::Key(event) => core.on_key_event(event),
                        Event::AppAnswered { call, sdp } => core.app_answered(now, call, sdp),
                        Event::AppEnded { call, end } => core.app_ended(now, call, end),
                        Event::Mailbox { account_id, counts } => core.mailbox_changed(now, account_id, counts),
                    }
                    flush(&mut core, &mut sender, &persist, &mut apps);
                }
            }
            () = timer => {
                core.handle_timeout(now());
                flush(&mut core, &mut sender, &persist, &mut apps);
            }
        }
    }
    debug!(connections = sender.connections(), "core stopped");
}

/// The time of an input: the one place the server reads the clocks for the core.
fn now() -> Now {
    Now { instant: Instant::now(), unix_secs: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) }
}

fn flush(
    core: &mut Core,
    sender: &mut Sender,
    persist: &mpsc::UnboundedSender<crate::core::Persist>,
    apps: &mut crate::apps::Apps,
) {
    while let Some(out) = core.poll_transmit() {
        if let Err(e) = sender.send(out) {
            debug!(error = %e, "message not sent");
        }
    }
    while let Some(change) = core.poll_persist() {
        let _ = persist.send(change);
    }
    while let Some(request) = core.poll_app() {
        apps.handle(request);
    }
}

/// Completes on SIGINT or SIGTERM (on non-Unix systems, on Ctrl-C).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
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
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
