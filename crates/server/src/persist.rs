//! The bridge between the core (in-memory, synchronous) and the store (a database, async).
//!
//! At start the accounts and bindings are loaded into call control. While running, call control
//! queues [`StoreWrite`]s that one store task writes in order, and a watcher reloads the
//! accounts whenever their generation in the database moves (the CLI changed one), so a
//! request never waits on the database. Call records come from the event stream
//! ([`crate::events`]).

use std::time::Duration;

use sambung_sip::transaction::Peer;
use sambung_sip::{Transport, Uri};
use sambung_store::{Ban, Lockout, LockoutKind, Store};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use sambung_pbx::registrar::{Account, Accounts, Binding, Routing, Target};
use sambung_pbx::{MailboxCounts, RoutingChange, StoreReply, StoreWrite, StoredMessage};

use crate::transport::Event;

/// How often the account generation is polled.
pub const ACCOUNT_POLL: Duration = Duration::from_secs(1);

/// Every account with its call settings, as the core wants them.
pub async fn load_accounts(store: &Store) -> Result<Accounts, sambung_store::StoreError> {
    let mut settings: std::collections::HashMap<i64, sambung_store::CallSettings> =
        store.all_call_settings().await?.into_iter().collect();
    Ok(Accounts::new(store.list_accounts().await?.into_iter().map(|a| {
        let routing = settings.remove(&a.id).map(|s| routing(&s)).unwrap_or_default();
        account(a, routing)
    })))
}

/// The message counts of every mailbox, for message-waiting.
pub async fn load_mailboxes(store: &Store) -> Result<Vec<(i64, MailboxCounts)>, sambung_store::StoreError> {
    Ok(store
        .all_voicemail_counts()
        .await?
        .into_iter()
        .map(|(account, new, saved)| (account, MailboxCounts { new, saved }))
        .collect())
}

/// The stored settings as routing reads them; a target that no longer parses is dropped
/// with a warning rather than failing the load.
fn routing(settings: &sambung_store::CallSettings) -> Routing {
    let target = |t: &Option<String>| {
        t.as_deref().and_then(|text| {
            let parsed = Target::parse(text);
            if parsed.is_none() {
                warn!(target = text, "stored forwarding target unreadable; ignored");
            }
            parsed
        })
    };
    Routing {
        forward_always: target(&settings.forward_always),
        forward_busy: target(&settings.forward_busy),
        forward_no_answer: target(&settings.forward_no_answer),
        forward_offline: target(&settings.forward_offline),
        no_answer_secs: settings.no_answer_secs,
        dnd: settings.dnd,
        voicemail: settings.voicemail,
    }
}

fn account(a: sambung_store::Account, routing: Routing) -> Account {
    Account {
        id: a.id,
        username: a.username,
        display_name: a.display_name,
        extension: a.extension,
        realm: a.realm,
        ha1_md5: a.ha1_md5,
        ha1_sha256: a.ha1_sha256,
        disabled: a.disabled,
        routing,
    }
}

/// Every persisted binding that can still be used.
pub async fn load_bindings(store: &Store) -> Result<Vec<Binding>, sambung_store::StoreError> {
    let rows = store.all_bindings().await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        match binding_from_row(&row) {
            Some(b) => out.push(b),
            None => warn!(contact = row.contact, "stored binding unreadable; ignored"),
        }
    }
    Ok(out)
}

fn binding_from_row(row: &sambung_store::Binding) -> Option<Binding> {
    let (transport, addr) = parse_received(&row.received)?;
    Some(Binding {
        account_id: row.account_id,
        aor: row.aor.clone(),
        uri: Uri::parse(&row.contact).ok()?,
        instance: row.instance.clone(),
        reg_id: row.reg_id.and_then(|r| u32::try_from(r).ok()),
        q: u16::try_from(row.q).unwrap_or(1000),
        call_id: row.call_id.clone(),
        cseq: u32::try_from(row.cseq).unwrap_or(0),
        expires_at: u64::try_from(row.expires_at).unwrap_or(0),
        // The connection a stream device used is gone after a restart; UDP devices are
        // reached at the address again.
        source: Peer { transport, addr, flow: None },
        user_agent: row.user_agent.clone(),
    })
}

fn binding_row(b: &Binding, now_secs: u64) -> sambung_store::Binding {
    sambung_store::Binding {
        account_id: b.account_id,
        aor: b.aor.clone(),
        contact: b.uri.to_string(),
        instance: b.instance.clone(),
        reg_id: b.reg_id.and_then(|r| i32::try_from(r).ok()),
        q: i32::from(b.q),
        expires_at: i64::try_from(b.expires_at).unwrap_or(i64::MAX),
        call_id: b.call_id.clone(),
        cseq: i64::from(b.cseq),
        received: format!("{}:{}", b.source.transport.as_str().to_ascii_lowercase(), b.source.addr),
        path: None,
        user_agent: b.user_agent.clone(),
        updated_at: i64::try_from(now_secs).unwrap_or(i64::MAX),
    }
}

/// `"udp:192.0.2.1:5060"` → transport and address.
fn parse_received(text: &str) -> Option<(Transport, std::net::SocketAddr)> {
    let (transport, addr) = text.split_once(':')?;
    Some((Transport::parse(transport), addr.parse().ok()?))
}

/// A feature code's change, over the account's other stored settings.
async fn set_routing(store: &Store, account_id: i64, change: &RoutingChange) -> Result<(), sambung_store::StoreError> {
    let mut settings = store.call_settings(account_id).await?;
    match change {
        RoutingChange::ForwardAlways(target) => settings.forward_always = target.clone(),
        RoutingChange::Dnd(on) => settings.dnd = *on,
    }
    store.set_call_settings(account_id, &settings).await
}

/// Writes call control's changes, in order, until the channel closes.
/// Queries it asked for are answered as [`Event`]s. The writer holds the event channel only
/// weakly: call control stops when the transports are gone, and then the writer drains what is
/// left and stops too.
pub async fn run_writer(
    store: Store,
    mut changes: mpsc::UnboundedReceiver<StoreWrite>,
    events: mpsc::WeakSender<Event>,
) {
    while let Some(change) = changes.recv().await {
        let now = unix_now();
        let result = match &change {
            StoreWrite::Bind(b) => store.upsert_binding(&binding_row(b, now)).await,
            StoreWrite::Unbind { account_id, contact } => store.remove_binding(*account_id, contact).await.map(|_| ()),
            StoreWrite::StoreMessage { ticket, from_uri, from_account, to_account, content_type, body, created_at } => {
                let new = sambung_store::NewMessage {
                    from_uri: from_uri.clone(),
                    from_account: *from_account,
                    to_account: *to_account,
                    content_type: content_type.clone(),
                    body: body.to_vec(),
                    created_at: i64::try_from(*created_at).unwrap_or(i64::MAX),
                };
                let stored = store.store_message(new).await;
                let id = stored.as_ref().ok().map(|m| m.id);
                send(&events, Event::Store(StoreReply::MessageStored { ticket: *ticket, id })).await;
                stored.map(|_| ())
            }
            StoreWrite::Delivered { message_id, device, at } => {
                store.mark_delivered(*message_id, device, i64::try_from(*at).unwrap_or(i64::MAX)).await
            }
            StoreWrite::FetchPending { account_id, device } => match store.pending_for(*account_id).await {
                Ok(rows) => {
                    let messages = rows
                        .into_iter()
                        .map(|m| StoredMessage {
                            id: m.id,
                            from_uri: m.from_uri,
                            to_account: *account_id,
                            content_type: m.content_type,
                            body: m.body.into(),
                        })
                        .collect::<Vec<_>>();
                    if !messages.is_empty() {
                        let reply =
                            StoreReply::Undelivered { account_id: *account_id, device: device.clone(), messages };
                        send(&events, Event::Store(reply)).await;
                    }
                    Ok(())
                }
                Err(e) => Err(e),
            },
            StoreWrite::Routing { account_id, change } => set_routing(&store, *account_id, change).await,
            StoreWrite::Lockout { username, until } => {
                let until_at = i64::try_from(*until).unwrap_or(i64::MAX);
                store.put_lockout(&Lockout { kind: LockoutKind::Account, subject: username.clone(), until_at }).await
            }
            StoreWrite::Ban { source, until, reason } => {
                let ban = Ban {
                    address: source.to_string(),
                    until_at: until.map(|u| i64::try_from(u).unwrap_or(i64::MAX)),
                    reason: reason.clone(),
                    manual: false,
                    created_at: i64::try_from(now).unwrap_or(i64::MAX),
                };
                store.put_ban(&ban).await
            }
        };
        if let Err(error) = result {
            warn!(%error, ?change, "could not persist");
        }
    }
    debug!("store writer stopped");
}

async fn send(events: &mpsc::WeakSender<Event>, event: Event) {
    if let Some(events) = events.upgrade() {
        let _ = events.send(event).await;
    }
}

/// The guard's lists as the store keeps them: bans (address, until in Unix seconds, reason)
/// and account lockouts (lower-case username, until).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuardLists {
    pub bans: Vec<(std::net::IpAddr, Option<u64>, String)>,
    pub lockouts: Vec<(String, u64)>,
}

/// The bans and account lockouts in force; rows that no longer parse are skipped with a warning.
pub async fn load_guard(store: &Store) -> Result<GuardLists, sambung_store::StoreError> {
    let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
    let mut lists = GuardLists::default();
    for ban in store.list_bans(now).await? {
        match ban.address.parse() {
            Ok(ip) => lists.bans.push((ip, ban.until_at.map(|u| u64::try_from(u).unwrap_or(0)), ban.reason)),
            Err(_) => warn!(address = ban.address, "stored ban unreadable; ignored"),
        }
    }
    for lockout in store.list_lockouts(now).await? {
        if lockout.kind == LockoutKind::Account {
            lists.lockouts.push((lockout.subject.to_lowercase(), u64::try_from(lockout.until_at).unwrap_or(0)));
        }
    }
    Ok(lists)
}

/// Reloads the bans and lockouts into the server whenever an operator changed them.
async fn watch_guard(store: &Store, events: &mpsc::Sender<Event>, generation: &mut Option<i64>) -> bool {
    let Ok(current) = store.guard_generation().await else { return true };
    if *generation == Some(current) {
        return true;
    }
    match load_guard(store).await {
        Ok(lists) => {
            debug!(bans = lists.bans.len(), lockouts = lists.lockouts.len(), "bans and lockouts reloaded");
            *generation = Some(current);
            events.send(Event::Guard(lists)).await.is_ok()
        }
        Err(error) => {
            warn!(%error, "could not reload bans and lockouts");
            true
        }
    }
}

/// Reloads the accounts into call control whenever the store's account generation moves, and
/// the guard's lists whenever theirs does.
pub async fn watch_accounts(store: Store, events: mpsc::Sender<Event>, mut generation: i64) {
    let mut tick = tokio::time::interval(ACCOUNT_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut guard_generation = store.guard_generation().await.ok();
    let mut ticks = 0u64;
    loop {
        tick.tick().await;
        ticks += 1;
        // Ended bans and lockouts leave the database once a minute, not only at start.
        if ticks.is_multiple_of(60)
            && let Err(error) = store.purge_guard(i64::try_from(unix_now()).unwrap_or(i64::MAX)).await
        {
            debug!(%error, "could not purge ended bans");
        }
        if !watch_guard(&store, &events, &mut guard_generation).await {
            return;
        }
        let current = match store.accounts_generation().await {
            Ok(g) => g,
            Err(error) => {
                debug!(%error, "account generation unavailable");
                continue;
            }
        };
        if current == generation {
            continue;
        }
        match load_accounts(&store).await {
            Ok(accounts) => {
                debug!(accounts = accounts.len(), "accounts reloaded");
                generation = current;
                if events.send(Event::Accounts(accounts)).await.is_err() {
                    return;
                }
            }
            Err(error) => warn!(%error, "could not reload accounts"),
        }
    }
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
