//! The bridge between the core (in-memory, synchronous) and the store (a database, async).
//!
//! At start the accounts and bindings are loaded into call control. While running, call control
//! queues [`StoreWrite`]s that one store task writes in order, and a watcher reloads the
//! accounts whenever their generation in the database moves (the CLI changed one), so a
//! request never waits on the database. Call records come from the event stream
//! ([`crate::events`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sambung_sip::transaction::Peer;
use sambung_sip::{Transport, Uri};
use sambung_store::{Ban, BindingOp, Lockout, LockoutKind, Store};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use sambung_pbx::registrar::{Account, Accounts, Binding, Routing, Target};
use sambung_pbx::{MailboxCounts, RoutingChange, StoreReply, StoreWrite, StoredMessage};

use crate::transport::{Event, Events, WeakEvents};

/// How often the account generation is polled.
pub const ACCOUNT_POLL: Duration = Duration::from_secs(1);

/// Every account with its call settings, as the core wants them.
pub async fn load_accounts(store: &Store) -> Result<Accounts, sambung_store::StoreError> {
    let mut settings: HashMap<i64, sambung_store::CallSettings> =
        store.all_call_settings().await?.into_iter().collect();
    let numbers = store.list_numbers().await?;
    let accounts = Accounts::new(store.list_accounts().await?.into_iter().map(|a| {
        let routing = settings.remove(&a.id).map(|s| routing(&s)).unwrap_or_default();
        account(a, routing)
    }));
    let groups: Vec<(String, String)> =
        numbers.iter().filter_map(|n| Some((n.number.clone(), n.group_name.clone()?))).collect();
    Ok(accounts
        .with_numbers(numbers.into_iter().filter_map(|n| Some((n.number, n.account_id?))))
        .with_group_numbers(groups))
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

/// How long a refresh that changed only a binding's expiry may wait before it is written
/// ([`StoreWrite::Refresh`]): a crash loses at most this much of the devices' refreshes (the
/// bindings themselves are written at once), and a clean shutdown loses none.
pub const REFRESH_DELAY: Duration = Duration::from_secs(15);

/// The most changes taken off the queue at once; the binding changes among them are written
/// in one transaction.
const WRITE_BATCH: usize = 1024;

/// The binding changes taken off the queue but not yet written.
#[derive(Debug, Default)]
struct BindingWrites {
    /// In order, for the next transaction.
    ops: Vec<BindingOp>,
    /// Refreshes that changed only the expiry, by account and contact: the latest of each,
    /// written at the next [`REFRESH_DELAY`] tick (or at shutdown).
    deferred: HashMap<(i64, String), sambung_store::Binding>,
}

impl BindingWrites {
    /// Takes a binding change; gives back any other change.
    fn take(&mut self, change: StoreWrite, now: u64) -> Option<StoreWrite> {
        match change {
            StoreWrite::Bind(b) => {
                let row = binding_row(&b, now);
                self.deferred.remove(&(row.account_id, row.contact.clone()));
                self.ops.push(BindingOp::Upsert(row));
            }
            StoreWrite::Unbind { account_id, contact } => {
                // what a deferred refresh would write is gone now
                self.deferred.remove(&(account_id, contact.clone()));
                self.ops.push(BindingOp::Remove { account_id, contact });
            }
            StoreWrite::Refresh(b) => {
                let row = binding_row(&b, now);
                self.deferred.insert((row.account_id, row.contact.clone()), row);
            }
            other => return Some(other),
        }
        None
    }

    /// Moves the deferred refreshes into the next transaction.
    fn due(&mut self) {
        self.ops.extend(self.deferred.drain().map(|(_, row)| BindingOp::Upsert(row)));
    }

    /// Writes what is pending, in one transaction.
    async fn write(&mut self, store: &Store) {
        if self.ops.is_empty() {
            return;
        }
        for (i, error) in store.apply_bindings(&self.ops).await {
            warn!(%error, change = ?self.ops.get(i), "could not persist a binding");
        }
        self.ops.clear();
    }
}

/// Writes call control's changes, in order, until the channel closes; then writes what it
/// still holds. Binding changes are written in one transaction per batch taken off the queue,
/// and a refresh that changed only a binding's expiry waits up to [`REFRESH_DELAY`], so that
/// a registration storm costs one commit per batch and a steady state of refreshes almost
/// none. Queries it asked for are answered as [`Event`]s. The writer holds the event channel
/// only weakly: call control stops when the transports are gone, and then the writer drains
/// what is left and stops too.
pub async fn run_writer(store: Store, mut changes: mpsc::UnboundedReceiver<StoreWrite>, events: WeakEvents) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    let mut bindings = BindingWrites::default();
    let mut tick = tokio::time::interval(REFRESH_DELAY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            taken = changes.recv_many(&mut batch, WRITE_BATCH) => {
                if taken == 0 {
                    break;
                }
                let now = unix_now();
                for change in batch.drain(..) {
                    if let Some(other) = bindings.take(change, now) {
                        // the bindings first, so that every change is written in order
                        bindings.write(&store).await;
                        write_one(&store, other, &events, now).await;
                    }
                }
                bindings.write(&store).await;
            }
            _ = tick.tick() => {
                bindings.due();
                bindings.write(&store).await;
            }
        }
    }
    bindings.due();
    bindings.write(&store).await;
    debug!("store writer stopped");
}

/// Writes one change that is not a binding's.
async fn write_one(store: &Store, change: StoreWrite, events: &WeakEvents, now: u64) {
    let result = match &change {
        StoreWrite::Bind(b) | StoreWrite::Refresh(b) => store.upsert_binding(&binding_row(b, now)).await,
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
            send(events, Event::Store(StoreReply::MessageStored { ticket: *ticket, id })).await;
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
                    let reply = StoreReply::Undelivered { account_id: *account_id, device: device.clone(), messages };
                    send(events, Event::Store(reply)).await;
                }
                Ok(())
            }
            Err(e) => Err(e),
        },
        StoreWrite::Routing { account_id, change } => set_routing(store, *account_id, change).await,
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

async fn send(events: &WeakEvents, event: Event) {
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
async fn watch_guard(store: &Store, events: &Events, generation: &mut Option<i64>) -> bool {
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
/// the guard's lists whenever theirs does: checked every [`ACCOUNT_POLL`] (for the command
/// line, another process), and at once when `wake` is notified (the web app changed them).
pub async fn watch_accounts(store: Store, events: Events, mut generation: i64, wake: Arc<tokio::sync::Notify>) {
    let mut tick = tokio::time::interval(ACCOUNT_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut guard_generation = store.guard_generation().await.ok();
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => ticks += 1,
            () = wake.notified() => {}
        }
        // Ended bans and lockouts leave the database once a minute, not only at start.
        if ticks.is_multiple_of(60)
            && ticks > 0
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

#[cfg(test)]
mod writer_tests {
    use super::*;

    fn binding(account_id: i64, port: u16, expires_at: u64) -> Binding {
        let source = Peer { transport: Transport::Udp, addr: ([192, 0, 2, 1], port).into(), flow: None };
        Binding {
            account_id,
            aor: "sip:alice@example.com".into(),
            uri: Uri::parse(&format!("sip:alice@192.0.2.1:{port}")).unwrap(),
            instance: None,
            reg_id: None,
            q: 1000,
            call_id: "reg-1".into(),
            cseq: 1,
            expires_at,
            source,
            user_agent: None,
        }
    }

    /// Deferred refreshes are written by a clean shutdown; a refresh never brings back a
    /// binding removed after it; a change of more than the expiry is written with its batch.
    #[tokio::test]
    async fn refreshes_wait_but_are_never_lost_nor_resurrect() {
        let dir = std::env::temp_dir().join(format!("sambung-writer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.join("db.sqlite").display())).await.unwrap();
        let alice = store
            .create_account(sambung_store::NewAccount::new("alice", "correct horse", "example.com"))
            .await
            .unwrap()
            .id;
        let (tx, rx) = mpsc::unbounded_channel();
        let (events, _events_rx) = Events::channels(1, 8);
        let writer = tokio::spawn(run_writer(store.clone(), rx, events.downgrade()));
        tx.send(StoreWrite::Bind(Box::new(binding(alice, 5060, 1000)))).unwrap();
        tx.send(StoreWrite::Bind(Box::new(binding(alice, 5062, 1000)))).unwrap();
        tx.send(StoreWrite::Refresh(Box::new(binding(alice, 5060, 2000)))).unwrap();
        tx.send(StoreWrite::Refresh(Box::new(binding(alice, 5062, 2000)))).unwrap();
        tx.send(StoreWrite::Unbind { account_id: alice, contact: "sip:alice@192.0.2.1:5062".into() }).unwrap();
        // Written at once: the two bindings, then the removal; the refresh of the first waits.
        let mut stored = Vec::new();
        for _ in 0..200 {
            stored = store.bindings(alice).await.unwrap();
            if stored.len() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(stored.len(), 1);
        assert_eq!((stored[0].contact.as_str(), stored[0].expires_at), ("sip:alice@192.0.2.1:5060", 1000));
        drop(tx);
        writer.await.unwrap();
        let stored = store.bindings(alice).await.unwrap();
        assert_eq!(stored.len(), 1, "the removed binding stays removed");
        assert_eq!(stored[0].expires_at, 2000, "the refresh was written at shutdown");
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
