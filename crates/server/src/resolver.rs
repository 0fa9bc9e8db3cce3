//! The DNS lookups call control asks for (RFC 3263), on one task: the sans-IO resolver of
//! `sambung-dns` over one UDP socket, its answers cached there for their TTL. Each answer goes
//! back to the shard that asked ([`sambung_pbx::Lookup::shard`]); the TLS names of what it
//! found are recorded for the dialer ([`TlsNames`]).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use sambung_dns::{Query, Resolver};
use sambung_pbx::Lookup;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::transport::dial::TlsNames;
use crate::transport::{Event, WeakEvents};

/// How many lookups may wait for the task.
const QUEUE: usize = 1024;

/// Asks the resolver task for lookups.
#[derive(Clone, Debug)]
pub struct Lookups(mpsc::Sender<(Lookup, Query)>);

impl Lookups {
    /// Queues a lookup; when the queue is full it fails at once (the caller hears of it as a
    /// failed lookup).
    pub fn ask(&self, lookup: Lookup, query: Query, events: &WeakEvents) {
        if self.0.try_send((lookup, query)).is_err()
            && let Some(events) = events.upgrade()
        {
            let _ = events.try_send(Event::Resolved { lookup, result: Err("the resolver is overloaded".into()) });
        }
    }
}

/// Starts the resolver task for these name servers.
pub async fn spawn(servers: Vec<SocketAddr>, events: WeakEvents, names: TlsNames) -> std::io::Result<Lookups> {
    let v4 = UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))).await?;
    let v6 = if servers.iter().any(SocketAddr::is_ipv6) {
        match UdpSocket::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))).await {
            Ok(socket) => Some(socket),
            Err(error) => {
                warn!(%error, "no IPv6 socket: the IPv6 name servers are not asked");
                None
            }
        }
    } else {
        None
    };
    if servers.is_empty() {
        warn!("no DNS server known ([dns] servers, /etc/resolv.conf): host names cannot be looked up");
    }
    let (tx, rx) = mpsc::channel(QUEUE);
    let resolver = Resolver::new(servers, rand::random());
    tokio::spawn(run(resolver, v4, v6, rx, events, names));
    Ok(Lookups(tx))
}

async fn run(
    mut resolver: Resolver,
    v4: UdpSocket,
    v6: Option<UdpSocket>,
    mut asks: mpsc::Receiver<(Lookup, Query)>,
    events: WeakEvents,
    names: TlsNames,
) {
    let mut waiting: std::collections::HashMap<sambung_dns::LookupId, Lookup> = std::collections::HashMap::new();
    let mut buf4 = vec![0u8; 4096];
    let mut buf6 = vec![0u8; 4096];
    loop {
        // What the resolver wants done: datagrams out, answers back.
        while let Some((to, bytes)) = resolver.poll_transmit() {
            let socket = if to.is_ipv6() { v6.as_ref().unwrap_or(&v4) } else { &v4 };
            if let Err(error) = socket.send_to(&bytes, to).await {
                debug!(%to, %error, "DNS query not sent");
            }
        }
        while let Some((id, result)) = resolver.poll_answer() {
            let Some(lookup) = waiting.remove(&id) else { continue };
            if let Ok(targets) = &result {
                for target in targets.iter().filter(|t| t.transport == sambung_dns::Transport::Tls) {
                    names.insert(target.addr, target.server_name.clone());
                }
            }
            let result = result.map_err(|e| e.to_string());
            debug!(?lookup, ?result, "looked up");
            let Some(events) = events.upgrade() else { return };
            if events.send(Event::Resolved { lookup, result }).await.is_err() {
                return;
            }
        }
        let timer = resolver.poll_timeout();
        let sleep = async {
            match timer {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let v6_recv = async {
            match &v6 {
                Some(socket) => socket.recv_from(&mut buf6).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ask = asks.recv() => match ask {
                Some((lookup, query)) => {
                    let id = resolver.lookup(query, Instant::now());
                    waiting.insert(id, lookup);
                }
                None => return,
            },
            received = v4.recv_from(&mut buf4) => {
                if let Ok((n, from)) = received {
                    resolver.handle_datagram(from, &buf4[..n], Instant::now());
                }
            }
            received = v6_recv => {
                if let Ok((n, from)) = received {
                    resolver.handle_datagram(from, &buf6[..n], Instant::now());
                }
            }
            () = sleep => resolver.handle_timeout(Instant::now()),
        }
    }
}
