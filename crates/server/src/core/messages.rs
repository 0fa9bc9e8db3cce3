//! Text messages (RFC 3428): store and forward.
//!
//! A MESSAGE from a device is authenticated, answered 202 Accepted and handed to the store;
//! once stored (it is kept as history either way) it goes to every registered device of the
//! recipient. A device that answers 2xx has it; the store records that per device. A device
//! that registers afresh, or that failed to take a message, gets what it has not had yet.

use std::collections::{HashMap, HashSet};

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
    in_flight: HashMap<TxKey, (i64, i64, String)>,
    /// Devices (account, binding key) that failed to take a message: they get what they
    /// missed at their next REGISTER.
    missed: HashSet<(i64, String)>,
}

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

    /// Messages a device has not had yet (fetched from the store when it registered).
    pub fn deliver_undelivered(&mut self, now: Now, account_id: i64, device: &str, messages: Vec<StoredMessage>) {
        let Some(binding) = self.registrar.location.get(account_id, device).cloned() else { return };
        for message in &messages {
            self.send_message(now, message, &binding);
        }
        self.drain(now, None);
    }

    /// Asks the store for what new or previously failing devices missed.
    pub(super) fn fetch_missed(&mut self, account_id: i64, devices: Vec<String>) {
        for device in devices {
            self.messaging.missed.remove(&(account_id, device.clone()));
            self.persist.push_back(Persist::FetchUndelivered { account_id, device });
        }
    }

    /// True when this device failed to take a message and should be asked again.
    pub(super) fn has_missed(&self, account_id: i64, device: &str) -> bool {
        self.messaging.missed.contains(&(account_id, device.to_owned()))
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
        self.push_our_via(&mut request, &binding.source);
        match self.transactions.send_request(request, binding.source.clone(), now.instant) {
            Ok(key) => {
                debug!(message = message.id, to = recipient.username, device = %binding.uri, "delivering");
                self.messaging.in_flight.insert(key, (message.id, binding.account_id, binding.key()));
            }
            Err(error) => debug!(%error, "message not sent"),
        }
    }

    /// The answer of a device to a MESSAGE we sent. Returns false when it was not ours.
    pub(super) fn on_message_response(&mut self, now: Now, key: TxKey, status: u16) -> bool {
        if status < 200 {
            return self.messaging.in_flight.contains_key(&key);
        }
        let Some((id, account_id, device)) = self.messaging.in_flight.remove(&key) else { return false };
        if (200..300).contains(&status) {
            self.persist.push_back(Persist::Delivered { message_id: id, device, at: now.unix_secs });
        } else {
            debug!(message = id, status, device, "device did not take the message");
            self.messaging.missed.insert((account_id, device));
        }
        true
    }
}
