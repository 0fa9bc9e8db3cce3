//! Presence for the whole server: one [`Board`] fed by the domain events, whose changes go to
//! call control's shards (for SIP `presence` and `dialog` subscriptions) and to the web app's
//! live connections, as [`Notice`]s. The same state answers both, so a phone's busy lamp and the
//! app's contact list never disagree. The live connections also hear here of text messages
//! (stored, delivered to a device, read), whichever way they came.

use std::sync::{Arc, Mutex};

use sambung_pbx::presence::{Board, Presence};
use sambung_pbx::registrar::{Accounts, Binding};
use sambung_pbx::{Event, SettingsChange};
use sambung_store::Store;
use tokio::sync::{broadcast, mpsc};
use tracing::{debug, warn};

use crate::events::Shared;
use crate::transport::{Event as CoreEvent, WeakEvents};

/// What the web app's live connections are told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// An account's presence changed.
    Presence { account_id: i64, presence: Presence },
    /// An account's contact list changed (in another tab, or through the API).
    ContactsChanged { account_id: i64 },
    /// A text message was stored (from a phone or the app), between two accounts.
    Message { message: Arc<sambung_store::Message>, from_account: i64, from: String, to: String },
    /// A message from `from_account` reached a device of its recipient.
    Delivered { message_id: i64, from_account: i64 },
    /// `reader` read the conversation with `peer` up to message `up_to`.
    Read { reader: i64, peer: i64, up_to: i64 },
}

/// How many notices a slow live connection may fall behind before it misses some (it then
/// reloads what it shows).
const NOTICE_BACKLOG: usize = 1024;

/// The presence of every account, and the notices about it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Hub {
    board: Arc<Mutex<Board>>,
    notices: broadcast::Sender<Notice>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

impl Hub {
    pub fn new() -> Hub {
        Hub { board: Arc::new(Mutex::new(Board::new())), notices: broadcast::channel(NOTICE_BACKLOG).0 }
    }

    fn board(&self) -> std::sync::MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An account's presence now.
    pub fn get(&self, account_id: i64) -> Presence {
        self.board().get(account_id)
    }

    /// Every account with something to show, for call control at start.
    pub fn all(&self) -> Vec<(i64, Presence)> {
        self.board().all()
    }

    /// The calls in progress (see [`Board::calls`]).
    pub fn calls(&self) -> Vec<(u64, Vec<(i64, sambung_pbx::presence::CallPresence)>)> {
        self.board().calls()
    }

    /// Accounts with a registered device.
    pub fn online(&self) -> usize {
        self.board().online()
    }

    /// The notices from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    /// Says that an account's contacts changed.
    pub fn contacts_changed(&self, account_id: i64) {
        let _ = self.notices.send(Notice::ContactsChanged { account_id });
    }

    /// Passes a notice on to the live connections.
    pub fn notify(&self, notice: Notice) {
        let _ = self.notices.send(notice);
    }

    /// The bindings and settings at start.
    pub fn load(&self, bindings: &[Binding], accounts: &Accounts) {
        let mut board = self.board();
        board.set_bindings(bindings);
        board.set_accounts(accounts);
    }

    /// Takes in one domain event; returns the changes.
    pub fn apply(&self, event: &Event) -> Vec<(i64, Presence)> {
        let changes = self.board().apply(event);
        self.announce(&changes);
        changes
    }

    /// Sets an account's do-not-disturb; returns the change.
    pub fn set_dnd(&self, account_id: i64, dnd: bool) -> Vec<(i64, Presence)> {
        let changes: Vec<_> = self.board().set_dnd(account_id, dnd).into_iter().collect();
        self.announce(&changes);
        changes
    }

    fn announce(&self, changes: &[(i64, Presence)]) {
        for (account_id, presence) in changes {
            // Nobody listening is fine.
            let _ = self.notices.send(Notice::Presence { account_id: *account_id, presence: presence.clone() });
        }
    }
}

/// The notice of a message event, with what the live connections need (read back from the
/// store).
async fn message_notice(hub: &Hub, store: &Store, event: &Event) -> Result<(), sambung_store::StoreError> {
    match event {
        Event::MessageStored { message_id, from_account: Some(from_account), .. } => {
            let Some(message) = store.message(*message_id).await? else { return Ok(()) };
            let Some(sender) = store.account(*from_account).await? else { return Ok(()) };
            let to = message.to_user.clone();
            hub.notify(Notice::Message {
                message: Arc::new(message),
                from_account: *from_account,
                from: sender.username,
                to,
            });
        }
        Event::MessageDelivered { message_id, .. } => {
            let from = store.message(*message_id).await?.and_then(|m| m.from_account);
            if let Some(from_account) = from {
                hub.notify(Notice::Delivered { message_id: *message_id, from_account });
            }
        }
        _ => {}
    }
    Ok(())
}

/// Follows the domain events until they end: the board changes, the shards and the web are told.
/// A settings change made in the store is read back for its do-not-disturb.
pub async fn run(hub: Hub, store: Store, mut events: mpsc::UnboundedReceiver<Shared>, core: WeakEvents) {
    while let Some(event) = events.recv().await {
        if let Err(error) = message_notice(&hub, &store, &event).await {
            warn!(%error, "could not read a message for the live connections");
        }
        let mut changes = hub.apply(&event);
        if let Event::SettingsChanged { account_id, change: SettingsChange::Stored } = &*event {
            match store.call_settings(*account_id).await {
                Ok(settings) => changes.extend(hub.set_dnd(*account_id, settings.dnd)),
                Err(error) => warn!(%error, account_id, "could not read the settings for presence"),
            }
        }
        if changes.is_empty() {
            continue;
        }
        let Some(core) = core.upgrade() else { continue };
        if core.send(CoreEvent::Presence(changes)).await.is_err() {
            break;
        }
    }
    debug!("presence stopped");
}
