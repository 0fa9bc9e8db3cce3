//! Subscriptions (RFC 6665) of devices: to their own account's `message-summary` (message
//! waiting, RFC 3842), and to any local account's `presence` (RFC 3856, PIDF) and `dialog`
//! (RFC 4235, busy lamps). Each gets a NOTIFY at once, whenever what it watches changes, and
//! when the subscription ends.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use sambung_sip::dialog::Dialog;
use sambung_sip::transaction::{Peer, TxKey};
use sambung_sip::{HeaderName, Method, Request, SipStr, Uri};
use tracing::debug;

use crate::apps::MailboxCounts;
use crate::features::OWN_MAILBOX;
use crate::pbx::Ctx;
use crate::presence::{Presence, dialog_info, pidf};
use crate::registrar::{Account, Accounts};
use crate::sip::{DialogKey, DialogOwner, Owner, Sip, host_of, insert};

/// The message-waiting event package.
pub const EVENT: &str = "message-summary";
/// Its body type (RFC 3842 §5).
pub const CONTENT_TYPE: &str = "application/simple-message-summary";
/// The event packages served, for `Allow-Events`.
const ALLOW_EVENTS: &str = "message-summary, presence, dialog";

/// An event package served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Package {
    MessageSummary,
    Presence,
    Dialog,
}

impl Package {
    fn named(name: &str) -> Option<Package> {
        match name {
            EVENT => Some(Package::MessageSummary),
            "presence" => Some(Package::Presence),
            "dialog" => Some(Package::Dialog),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Package::MessageSummary => EVENT,
            Package::Presence => "presence",
            Package::Dialog => "dialog",
        }
    }

    /// The body type of its NOTIFYs.
    fn content_type(self) -> &'static str {
        match self {
            Package::MessageSummary => CONTENT_TYPE,
            Package::Presence => "application/pidf+xml",
            Package::Dialog => "application/dialog-info+xml",
        }
    }
}
/// Subscription lengths granted, in seconds.
const MIN_EXPIRES: u32 = 60;
const MAX_EXPIRES: u32 = 3600;
const DEFAULT_EXPIRES: u32 = 3600;

/// One device's subscription.
#[derive(Debug)]
struct Subscription {
    package: Package,
    /// The account watched (the subscriber's own, for message-summary).
    account_id: i64,
    /// The watched account's address: `Message-Account`, or the documents' `entity`.
    aor: String,
    /// The dialog-info document's version: 0 for the first NOTIFY, one more each time.
    version: u32,
    dialog: Dialog,
    peer: Peer,
    expires_at: Instant,
    /// The SUBSCRIBE's Event value, parameters (`id`) included, echoed in each NOTIFY
    /// (RFC 6665 §8.2.1).
    event: SipStr,
}

/// Every subscription by dialog, our NOTIFY transactions, and what they watch: the counts of
/// every mailbox and the presence of every account.
#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    /// `[voicemail] access_number`: some phones subscribe to the voicemail number.
    access_number: String,
    subscriptions: HashMap<DialogKey, Subscription>,
    /// When each subscription runs out, in order (asked for after every input).
    expiries: BTreeSet<(Instant, DialogKey)>,
    notifies: HashMap<TxKey, DialogKey>,
    mailboxes: HashMap<i64, MailboxCounts>,
    presence: HashMap<i64, Presence>,
}

/// The `message-summary` body (RFC 3842 §5.2): waiting or not, the account, new/old counts.
pub fn summary(aor: &str, counts: MailboxCounts) -> String {
    format!(
        "Messages-Waiting: {}\r\nMessage-Account: {aor}\r\nVoice-Message: {}/{} (0/0)\r\n",
        if counts.new > 0 { "yes" } else { "no" },
        counts.new,
        counts.saved
    )
}

/// The package named by an Event header, without its parameters.
fn event_package(request: &Request) -> Option<String> {
    let event = request.headers.get(HeaderName::Event)?;
    Some(event.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
}

fn expires_of(request: &Request) -> Option<u32> {
    request.headers.get(HeaderName::Expires).and_then(|v| v.trim().parse().ok())
}

impl Subscriptions {
    pub(crate) fn new(access_number: String) -> Subscriptions {
        Subscriptions { access_number, ..Subscriptions::default() }
    }

    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.expiries.first().map(|(at, _)| *at)
    }

    /// Files `subscription` under `key`, replacing (and unfiling) any before it.
    fn insert(&mut self, key: DialogKey, subscription: Subscription) {
        self.remove(&key);
        self.expiries.insert((subscription.expires_at, key.clone()));
        self.subscriptions.insert(key, subscription);
    }

    /// Moves subscription `key`'s end to `at`.
    fn renew(&mut self, key: &DialogKey, at: Instant) {
        if let Some(subscription) = self.subscriptions.get_mut(key) {
            self.expiries.remove(&(subscription.expires_at, key.clone()));
            subscription.expires_at = at;
            self.expiries.insert((at, key.clone()));
        }
    }

    fn remove(&mut self, key: &DialogKey) -> Option<Subscription> {
        let subscription = self.subscriptions.remove(key)?;
        self.expiries.remove(&(subscription.expires_at, key.clone()));
        Some(subscription)
    }

    /// A mailbox's counts changed (or are known at start): subscribed devices are told.
    pub(crate) fn mailbox_changed(&mut self, ctx: &mut Ctx<'_>, account_id: i64, counts: MailboxCounts) {
        self.mailboxes.insert(account_id, counts);
        self.notify_account(ctx, Package::MessageSummary, account_id);
    }

    /// True when account `account_id` is in an answered call (as its presence says).
    pub(crate) fn in_call(&self, account_id: i64) -> bool {
        self.presence.get(&account_id).is_some_and(|p| p.status() == crate::presence::Status::InCall)
    }

    /// An account's presence changed (or is known at start): its watchers are told.
    pub(crate) fn presence_changed(&mut self, ctx: &mut Ctx<'_>, account_id: i64, presence: Presence) {
        if self.presence.get(&account_id) == Some(&presence) {
            return;
        }
        let old = self.presence.get(&account_id).cloned().unwrap_or_default();
        let dialogs_changed = old.calls != presence.calls;
        let status_changed = pidf("", &old) != pidf("", &presence);
        if presence == Presence::default() {
            self.presence.remove(&account_id);
        } else {
            self.presence.insert(account_id, presence);
        }
        if status_changed {
            self.notify_account(ctx, Package::Presence, account_id);
        }
        if dialogs_changed {
            self.notify_account(ctx, Package::Dialog, account_id);
        }
    }

    /// SUBSCRIBE outside a dialog from an authenticated `account` (RFC 6665 §4.2):
    /// `message-summary` to one's own mailbox; `presence` and `dialog` to any local account.
    pub(crate) fn on_subscribe(
        &mut self,
        ctx: &mut Ctx<'_>,
        accounts: &Accounts,
        account: &Account,
        key: TxKey,
        request: &Request,
        from: Peer,
    ) {
        let Some(package) = event_package(request).as_deref().and_then(Package::named) else {
            let mut response = request.reply(489, "Bad Event");
            insert(&mut response, HeaderName::AllowEvents, SipStr::from_static(ALLOW_EVENTS));
            return ctx.respond(key, response);
        };
        let content_type = package.content_type();
        let accepts = request.headers.get_all(HeaderName::Accept).collect::<Vec<_>>();
        if !accepts.is_empty() && !accepts.iter().any(|a| a.to_ascii_lowercase().contains(content_type)) {
            let mut response = request.reply(406, "Not Acceptable");
            insert(&mut response, HeaderName::Accept, SipStr::from_static(content_type));
            return ctx.respond(key, response);
        }
        let user = match &request.uri {
            Uri::Sip(uri) => uri.user_unescaped(),
            Uri::Other { .. } => None,
        };
        let watched = match package {
            // One's own address, or the voicemail number (some phones subscribe to that).
            Package::MessageSummary => {
                let own = user.and_then(|u| {
                    let voicemail = u == OWN_MAILBOX || (!self.access_number.is_empty() && u == self.access_number);
                    if voicemail { Some(account.id) } else { accounts.by_user_part(&u).map(|a| a.id) }
                });
                if own != Some(account.id) {
                    return ctx.respond(key, request.reply(403, "Forbidden"));
                }
                account.clone()
            }
            // Any local account, by username or extension, seen by every account of the server
            // (as its people search shows them).
            Package::Presence | Package::Dialog => {
                match user.and_then(|u| accounts.by_user_part(&u)).filter(|a| !a.disabled) {
                    Some(watched) => Account::clone(watched),
                    None => return ctx.respond(key, request.reply(404, "Not Found")),
                }
            }
        };
        let expires = match expires_of(request).unwrap_or(DEFAULT_EXPIRES) {
            0 => 0,
            e if e < MIN_EXPIRES => {
                let mut response = request.reply(423, "Interval Too Brief");
                insert(&mut response, HeaderName::MinExpires, SipStr::from(MIN_EXPIRES.to_string()));
                return ctx.respond(key, response);
            }
            e => e.min(MAX_EXPIRES),
        };
        let mut response = request.reply(200, "OK");
        insert(&mut response, HeaderName::Expires, SipStr::from(expires.to_string()));
        let contact = ctx.sip.contact_for(&from);
        insert(&mut response, HeaderName::Contact, contact.clone());
        let Ok(mut dialog) = Dialog::new_uas(request, &response) else {
            return ctx.respond(key, request.reply(400, "Missing Contact"));
        };
        dialog.set_local_contact(Some(contact));
        ctx.respond(key, response);
        let aor = format!("sip:{}@{}", watched.username, host_of(&request.uri));
        let id = dialog.id().clone();
        let dialog_key = (id.call_id.clone(), id.local_tag.clone());
        debug!(account = account.username, watched = watched.username, expires, "{} subscription", package.name());
        let subscription = Subscription {
            package,
            account_id: watched.id,
            aor,
            version: 0,
            dialog,
            peer: from,
            expires_at: ctx.now.instant + Duration::from_secs(u64::from(expires)),
            event: request.headers.get(HeaderName::Event).cloned().unwrap_or(SipStr::from_static(package.name())),
        };
        self.insert(dialog_key.clone(), subscription);
        ctx.sip.add_dialog(dialog_key.clone(), DialogOwner::Subscription);
        // RFC 6665 §4.2.1.2: a NOTIFY at once, also for a fetch (Expires: 0), which it ends.
        self.send_notify(ctx, &dialog_key, expires == 0);
    }

    /// A request inside a subscription's dialog: a refresh, or an unsubscribe (`Expires: 0`).
    pub(crate) fn on_request(&mut self, ctx: &mut Ctx<'_>, dialog_key: &DialogKey, key: TxKey, request: &Request) {
        let Some(subscription) = self.subscriptions.get_mut(dialog_key) else {
            return ctx.respond(key, request.reply(481, "Subscription Does Not Exist"));
        };
        if let Err(error) = subscription.dialog.handle_request(request) {
            return ctx.respond(key, request.reply(error.status(), ""));
        }
        if request.method != Method::Subscribe {
            return ctx.respond(key, request.reply(405, "Method Not Allowed"));
        }
        let expires = expires_of(request).unwrap_or(DEFAULT_EXPIRES).min(MAX_EXPIRES);
        if expires != 0 && expires < MIN_EXPIRES {
            let mut response = request.reply(423, "Interval Too Brief");
            insert(&mut response, HeaderName::MinExpires, SipStr::from(MIN_EXPIRES.to_string()));
            return ctx.respond(key, response);
        }
        let ends = ctx.now.instant + Duration::from_secs(u64::from(expires));
        self.renew(dialog_key, ends);
        let mut response = request.reply(200, "OK");
        insert(&mut response, HeaderName::Expires, SipStr::from(expires.to_string()));
        ctx.respond(key, response);
        self.send_notify(ctx, dialog_key, expires == 0);
    }

    /// Tells every device subscribed to `package` of `account_id` the news.
    fn notify_account(&mut self, ctx: &mut Ctx<'_>, package: Package, account_id: i64) {
        let keys: Vec<DialogKey> = self
            .subscriptions
            .iter()
            .filter(|(_, s)| s.account_id == account_id && s.package == package)
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            self.send_notify(ctx, &key, false);
        }
    }

    /// Ends the subscriptions whose time is up, with a last NOTIFY (RFC 6665 §4.2.2).
    pub(crate) fn expire(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now.instant;
        let due: Vec<DialogKey> =
            self.expiries.iter().take_while(|(at, _)| *at <= now).map(|(_, key)| key.clone()).collect();
        for key in due {
            self.send_notify(ctx, &key, true);
        }
    }

    /// A NOTIFY with the watched state on subscription `key`; `last` ends the subscription.
    fn send_notify(&mut self, ctx: &mut Ctx<'_>, key: &DialogKey, last: bool) {
        let Some(subscription) = self.subscriptions.get_mut(key) else { return };
        let none = Presence::default();
        let presence = self.presence.get(&subscription.account_id).unwrap_or(&none);
        let body = match subscription.package {
            Package::MessageSummary => {
                summary(&subscription.aor, self.mailboxes.get(&subscription.account_id).copied().unwrap_or_default())
            }
            Package::Presence => pidf(&subscription.aor, presence),
            Package::Dialog => {
                let version = subscription.version;
                subscription.version += 1;
                dialog_info(&subscription.aor, version, presence)
            }
        };
        let mut notify = subscription.dialog.create_request(Method::Notify);
        let left = subscription.expires_at.saturating_duration_since(ctx.now.instant).as_secs();
        let state = if last { "terminated;reason=timeout".to_owned() } else { format!("active;expires={left}") };
        notify.headers.push(HeaderName::Event, subscription.event.clone());
        notify.headers.push(HeaderName::SubscriptionState, SipStr::from(state));
        notify.set_body(subscription.package.content_type(), bytes::Bytes::from(body));
        let peer = subscription.peer.clone();
        if last {
            self.remove(key);
            ctx.sip.dialogs.remove(key);
        }
        match ctx.sip.send_request(notify, peer, Owner::Notify, ctx.random, ctx.now.instant) {
            Ok(tx) => {
                self.notifies.insert(tx, key.clone());
            }
            Err(error) => debug!(%error, "NOTIFY not sent"),
        }
    }

    /// The answer to one of our NOTIFYs; a device that no longer knows the subscription (481)
    /// or cannot be reached ends it (RFC 6665 §4.2.2).
    pub(crate) fn on_response(&mut self, sip: &mut Sip, key: TxKey, status: u16) {
        if status < 200 {
            return;
        }
        let Some(dialog_key) = self.notifies.remove(&key) else { return };
        if matches!(status, 408 | 481 | 503) || status >= 600 {
            debug!(status, "subscription ended by the device");
            self.remove(&dialog_key);
            sip.dialogs.remove(&dialog_key);
        }
    }
}
