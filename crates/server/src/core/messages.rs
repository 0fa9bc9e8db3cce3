//! Text messages (RFC 3428): store and forward.
//!
//! A MESSAGE from a device is authenticated, answered 202 Accepted and handed to the store;
//! once stored (it is kept as history either way) it goes to every registered device of the
//! recipient. A device that answers 2xx has it; the store records that per device. A device
//! that comes online gets the messages no device has had yet (they were stored while the
//! account was offline); a device that failed to take a message gets it again at its next
//! REGISTER. A device that comes online later does not get what another device already has:
//! that is history, not mail.

use std::collections::HashMap;

use bytes::Bytes;
use sambung_sip::transaction::TxKey;
use sambung_sip::{HeaderName, Method, Request, SipStr, Uri};
use tracing::{debug, info};

use super::{Core, Now, Persist};
use crate::registrar::{AuthOutcome, Binding, Challenger};

/// A message to hand to devices, as the store has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    pub id: i64,
    pub from_uri: String,
    pub to_account: i64,
    pub content_type: String,
    pub body: Bytes,
}

/// A message waiting for its store id, by ticket.
#[derive(Debug)]
struct Pending {
    from_uri: String,
    to_account: i64,
    content_type: String,
    body: Bytes,
}

/// Messaging state of the core.
#[derive(Debug, Default)]
pub(crate) struct Messaging {
    next_ticket: u64,
    pending: HashMap<u64, Pending>,
    /// Our MESSAGE client transactions: which message to which device.
    in_flight: HashMap<TxKey, (StoredMessage, i64, String)>,
    /// Messages a device (account, binding key) failed to take: sent again at its next
    /// REGISTER. Kept in memory, at most [`MISSED_PER_DEVICE`] per device.
    missed: HashMap<(i64, String), Vec<StoredMessage>>,
}

/// How many failed messages are kept for one device.
const MISSED_PER_DEVICE: usize = 100;

impl Core {
    /// A MESSAGE outside any dialog (RFC 3428 §7).
    pub(super) fn on_message(&mut self, now: Now, key: TxKey, request: Request) {
        let sender = match self.auth.authenticate(&request, &self.accounts, Challenger::Proxy, now.unix_secs) {
            AuthOutcome::Authenticated(account) => account,
            AuthOutcome::Challenge(challenge) => return self.respond(key, challenge, now),
        };
        let recipient = match &request.uri {
            Uri::Sip(uri) => uri.user_unescaped().and_then(|u| self.accounts.by_user_part(&u).cloned()),
            Uri::Other { .. } => None,
        };
        let Some(recipient) = recipient.filter(|r| !r.disabled) else {
            return self.respond(key, request.reply(404, "Not Found"), now);
        };
        if request.body.is_empty() {
            return self.respond(key, request.reply(400, "Empty Message"), now);
        }
        let content_type =
            request.headers.get(HeaderName::ContentType).map_or_else(|| "text/plain".to_owned(), |v| v.to_string());
        let domain = request.uri.as_sip().map(|u| u.host.as_str().to_ascii_lowercase()).unwrap_or_default();
        let display = request.from().and_then(|f| f.display_name().map(|d| d.into_owned())).unwrap_or_default();
        let from_uri = if display.is_empty() {
            format!("<sip:{}@{domain}>", sender.username)
        } else {
            format!("{} <sip:{}@{domain}>", sambung_sip::text::quote(&display), sender.username)
        };
        let ticket = self.messaging.next_ticket;
        self.messaging.next_ticket += 1;
        self.messaging.pending.insert(
            ticket,
            Pending {
                from_uri: from_uri.clone(),
                to_account: recipient.id,
                content_type: content_type.clone(),
                body: request.body.clone(),
            },
        );
        self.persist.push_back(Persist::StoreMessage {
            ticket,
            from_uri,
            from_account: Some(sender.id),
            to_account: recipient.id,
            content_type,
            body: request.body.clone(),
            created_at: now.unix_secs,
        });
        info!(from = sender.username, to = recipient.username, bytes = request.body.len(), "message");
        // RFC 3428 §7: accepted for delivery (it is stored; devices get it as they can).
        self.respond(key, request.reply(202, "Accepted"), now);
    }

    /// The store has the message under `id`: deliver it to every device of the recipient.
    pub fn message_stored(&mut self, now: Now, ticket: u64, id: Option<i64>) {
        let Some(p) = self.messaging.pending.remove(&ticket) else { return };
        let Some(id) = id else {
            debug!(ticket, "message could not be stored");
            return;
        };
        let message = StoredMessage {
            id,
            from_uri: p.from_uri,
            to_account: p.to_account,
            content_type: p.content_type,
            body: p.body,
        };
        let bindings: Vec<Binding> = self.registrar.location.bindings(message.to_account).to_vec();
        for binding in &bindings {
            self.send_message(now, &message, binding);
        }
        self.drain(now, None);
    }

    /// Messages a device has not had yet (fetched from the store when it came online).
    pub fn deliver_undelivered(&mut self, now: Now, account_id: i64, device: &str, messages: Vec<StoredMessage>) {
        let Some(binding) = self.registrar.location.get(account_id, device).cloned() else { return };
        for message in &messages {
            self.send_message(now, message, &binding);
        }
        self.drain(now, None);
    }

    /// After a REGISTER: new devices ask the store for what is pending; devices that failed
    /// to take messages get those again.
    pub(super) fn catch_up(&mut self, now: Now, account_id: i64, new_devices: Vec<String>, refreshed: Vec<String>) {
        for device in new_devices {
            self.persist.push_back(Persist::FetchPending { account_id, device });
        }
        for device in refreshed {
            let Some(missed) = self.messaging.missed.remove(&(account_id, device.clone())) else { continue };
            let Some(binding) = self.registrar.location.get(account_id, &device).cloned() else { continue };
            for message in &missed {
                self.send_message(now, message, &binding);
            }
        }
    }

    fn send_message(&mut self, now: Now, message: &StoredMessage, binding: &Binding) {
        let Some(recipient) = self.accounts.by_id(message.to_account).cloned() else { return };
        let mut headers = sambung_sip::Headers::new();
        headers.push(HeaderName::MaxForwards, SipStr::from_static("70"));
        headers.push(HeaderName::From, SipStr::from(format!("{};tag={}", message.from_uri, super::calls::token(8))));
        headers.push(HeaderName::To, SipStr::from(format!("<{}>", binding.aor)));
        headers.push(HeaderName::CallId, SipStr::from(super::calls::token(16)));
        headers.push(HeaderName::CSeq, SipStr::from_static("1 MESSAGE"));
        let mut request = Request { method: Method::Message, uri: binding.uri.clone(), headers, body: Bytes::new() };
        request.set_body(&message.content_type, message.body.clone());
        let target = binding.target();
        self.push_our_via(&mut request, &target);
        match self.transactions.send_request(request, target, now.instant) {
            Ok(key) => {
                debug!(message = message.id, to = recipient.username, device = %binding.uri, "delivering");
                self.messaging.in_flight.insert(key, (message.clone(), binding.account_id, binding.key()));
            }
            Err(error) => debug!(%error, "message not sent"),
        }
    }

    /// The answer of a device to a MESSAGE we sent. Returns false when it was not ours.
    pub(super) fn on_message_response(&mut self, now: Now, key: TxKey, status: u16) -> bool {
        if status < 200 {
            return self.messaging.in_flight.contains_key(&key);
        }
        let Some((message, account_id, device)) = self.messaging.in_flight.remove(&key) else { return false };
        if (200..300).contains(&status) {
            self.persist.push_back(Persist::Delivered { message_id: message.id, device, at: now.unix_secs });
        } else {
            debug!(message = message.id, status, device, "device did not take the message");
            let missed = self.messaging.missed.entry((account_id, device)).or_default();
            if missed.len() < MISSED_PER_DEVICE {
                missed.push(message);
            }
        }
        true
    }
}
