//! Message waiting (RFC 3842 over RFC 6665): devices subscribe to their account's
//! `message-summary` and get a NOTIFY with the mailbox counts at once, whenever they change, and
//! when the subscription ends.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sambung_sip::dialog::{Dialog, DialogId};
use sambung_sip::transaction::{Peer, TxKey};
use sambung_sip::{HeaderName, Method, Request, SipStr, Uri};
use tracing::debug;

use super::{Core, MailboxCounts, Now, insert};
use crate::registrar::{AuthOutcome, Challenger};

/// The event package served.
pub const EVENT: &str = "message-summary";
/// Its body type (RFC 3842 §5).
pub const CONTENT_TYPE: &str = "application/simple-message-summary";
/// Subscription lengths granted, in seconds.
const MIN_EXPIRES: u32 = 60;
const MAX_EXPIRES: u32 = 3600;
const DEFAULT_EXPIRES: u32 = 3600;

type Key = (SipStr, SipStr);

/// One device's subscription to its account's mailbox.
#[derive(Debug)]
struct Subscription {
    account_id: i64,
    /// The account's address, for `Message-Account`.
    aor: String,
    dialog: Dialog,
    peer: Peer,
    expires_at: Instant,
    /// The SUBSCRIBE's Event value, parameters (`id`) included, echoed in each NOTIFY
    /// (RFC 6665 §8.2.1).
    event: SipStr,
}

/// Every subscription, by dialog, and our NOTIFY transactions.
#[derive(Debug, Default)]
pub(super) struct Subscriptions {
    by_dialog: HashMap<Key, Subscription>,
    notifies: HashMap<TxKey, Key>,
}

impl Subscriptions {
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        self.by_dialog.values().map(|s| s.expires_at).min()
    }
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

impl Core {
    /// SUBSCRIBE outside a dialog (RFC 6665 §4.2): only `message-summary`, only to one's own
    /// mailbox.
    pub(super) fn on_subscribe(&mut self, now: Now, key: TxKey, request: Request) {
        let account = match self.auth.authenticate(&request, &self.accounts, Challenger::Proxy, now.unix_secs) {
            AuthOutcome::Challenge(challenge) => return self.respond(key, challenge, now),
            AuthOutcome::Authenticated(account) => account,
        };
        if event_package(&request).as_deref() != Some(EVENT) {
            let mut response = request.reply(489, "Bad Event");
            insert(&mut response, HeaderName::AllowEvents, SipStr::from_static(EVENT));
            return self.respond(key, response, now);
        }
        let accepts = request.headers.get_all(HeaderName::Accept).collect::<Vec<_>>();
        if !accepts.is_empty() && !accepts.iter().any(|a| a.to_ascii_lowercase().contains(CONTENT_TYPE)) {
            let mut response = request.reply(406, "Not Acceptable");
            insert(&mut response, HeaderName::Accept, SipStr::from_static(CONTENT_TYPE));
            return self.respond(key, response, now);
        }
        // One's own address, or the voicemail number (some phones subscribe to that).
        let own = match &request.uri {
            Uri::Sip(uri) => uri.user_unescaped().and_then(|u| {
                let voicemail = u == super::OWN_MAILBOX || (!self.access_number.is_empty() && u == self.access_number);
                if voicemail { Some(account.id) } else { self.accounts.by_user_part(&u).map(|a| a.id) }
            }),
            Uri::Other { .. } => None,
        };
        if own != Some(account.id) {
            return self.respond(key, request.reply(403, "Forbidden"), now);
        }
        let Some(from) = self.transactions.peer(key).cloned() else { return };
        let expires = match expires_of(&request).unwrap_or(DEFAULT_EXPIRES) {
            0 => 0,
            e if e < MIN_EXPIRES => {
                let mut response = request.reply(423, "Interval Too Brief");
                insert(&mut response, HeaderName::MinExpires, SipStr::from(MIN_EXPIRES.to_string()));
                return self.respond(key, response, now);
            }
            e => e.min(MAX_EXPIRES),
        };
        let mut response = request.reply(200, "OK");
        insert(&mut response, HeaderName::Expires, SipStr::from(expires.to_string()));
        let contact = self.contact_for(&from);
        insert(&mut response, HeaderName::Contact, contact.clone());
        let Ok(mut dialog) = Dialog::new_uas(&request, &response) else {
            return self.respond(key, request.reply(400, "Missing Contact"), now);
        };
        dialog.set_local_contact(Some(contact));
        self.respond(key, response, now);
        let aor = format!("sip:{}@{}", account.username, super::host_of(&request.uri));
        let id = dialog.id().clone();
        let dialog_key = (id.call_id.clone(), id.local_tag.clone());
        debug!(account = account.username, expires, "message-summary subscription");
        let subscription = Subscription {
            account_id: account.id,
            aor,
            dialog,
            peer: from,
            expires_at: now.instant + Duration::from_secs(u64::from(expires)),
            event: request.headers.get(HeaderName::Event).cloned().unwrap_or(SipStr::from_static(EVENT)),
        };
        self.subscriptions.by_dialog.insert(dialog_key.clone(), subscription);
        // RFC 6665 §4.2.1.2: a NOTIFY at once, also for a fetch (Expires: 0), which it ends.
        self.send_notify(now, &dialog_key, expires == 0);
    }

    /// A SUBSCRIBE inside a subscription's dialog: a refresh, or an unsubscribe (`Expires: 0`).
    /// False when the dialog is not a subscription.
    pub(super) fn on_subscription_request(&mut self, now: Now, key: TxKey, request: &Request) -> bool {
        let Some(id) = DialogId::of_request(request) else { return false };
        let dialog_key = (id.call_id, id.local_tag);
        let Some(subscription) = self.subscriptions.by_dialog.get_mut(&dialog_key) else { return false };
        if let Err(error) = subscription.dialog.handle_request(request) {
            let response = request.reply(error.status(), "");
            self.respond(key, response, now);
            return true;
        }
        if request.method != Method::Subscribe {
            self.respond(key, request.reply(405, "Method Not Allowed"), now);
            return true;
        }
        let expires = expires_of(request).unwrap_or(DEFAULT_EXPIRES).min(MAX_EXPIRES);
        if expires != 0 && expires < MIN_EXPIRES {
            let mut response = request.reply(423, "Interval Too Brief");
            insert(&mut response, HeaderName::MinExpires, SipStr::from(MIN_EXPIRES.to_string()));
            self.respond(key, response, now);
            return true;
        }
        subscription.expires_at = now.instant + Duration::from_secs(u64::from(expires));
        let mut response = request.reply(200, "OK");
        insert(&mut response, HeaderName::Expires, SipStr::from(expires.to_string()));
        self.respond(key, response, now);
        self.send_notify(now, &dialog_key, expires == 0);
        true
    }

    /// Tells every device subscribed to `account_id`'s mailbox its counts.
    pub(super) fn notify_mailbox(&mut self, now: Now, account_id: i64) {
        let keys: Vec<Key> = self
            .subscriptions
            .by_dialog
            .iter()
            .filter(|(_, s)| s.account_id == account_id)
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            self.send_notify(now, &key, false);
        }
    }

    /// Ends the subscriptions whose time is up, with a last NOTIFY (RFC 6665 §4.2.2).
    pub(super) fn expire_subscriptions(&mut self, now: Now) {
        let due: Vec<Key> = self
            .subscriptions
            .by_dialog
            .iter()
            .filter(|(_, s)| s.expires_at <= now.instant)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            self.send_notify(now, &key, true);
        }
    }

    /// A NOTIFY with the counts on subscription `key`; `last` ends the subscription.
    fn send_notify(&mut self, now: Now, key: &Key, last: bool) {
        let counts = match self.subscriptions.by_dialog.get(key) {
            Some(s) => self.mailboxes.get(&s.account_id).copied().unwrap_or_default(),
            None => return,
        };
        let Some(subscription) = self.subscriptions.by_dialog.get_mut(key) else { return };
        let mut notify = subscription.dialog.create_request(Method::Notify);
        let left = subscription.expires_at.saturating_duration_since(now.instant).as_secs();
        let state = if last { "terminated;reason=timeout".to_owned() } else { format!("active;expires={left}") };
        notify.headers.push(HeaderName::Event, subscription.event.clone());
        notify.headers.push(HeaderName::SubscriptionState, SipStr::from(state));
        notify.set_body(CONTENT_TYPE, bytes::Bytes::from(summary(&subscription.aor, counts)));
        let peer = subscription.peer.clone();
        if last {
            self.subscriptions.by_dialog.remove(key);
        }
        self.push_our_via(&mut notify, &peer);
        match self.transactions.send_request(notify, peer, now.instant) {
            Ok(tx) => {
                self.subscriptions.notifies.insert(tx, key.clone());
            }
            Err(error) => debug!(%error, "NOTIFY not sent"),
        }
    }

    /// The answer to one of our NOTIFYs; a device that no longer knows the subscription (481)
    /// or cannot be reached ends it (RFC 6665 §4.2.2). False when the transaction is not ours.
    pub(super) fn on_notify_response(&mut self, key: TxKey, status: u16) -> bool {
        if status < 200 {
            return self.subscriptions.notifies.contains_key(&key);
        }
        let Some(dialog_key) = self.subscriptions.notifies.remove(&key) else { return false };
        if matches!(status, 408 | 481 | 503) || status >= 600 {
            debug!(status, "message-summary subscription ended by the device");
            self.subscriptions.by_dialog.remove(&dialog_key);
        }
        true
    }
}
