//! Text messages (RFC 3428): store and forward.
//!
//! A MESSAGE from a device is authenticated, answered 202 Accepted and handed to the store;
//! once stored (it is kept as history either way) it goes to every registered device of the
//! recipient. A device that answers 2xx has it; the store records that per device. A device
//! that comes online gets the messages no device has had yet (they were stored while the
//! account was offline); a device that failed to take a message gets it again at its next
//! REGISTER. A device that comes online later does not get what another device already has:
//! that is history, not mail.

use std::collections::{HashMap, HashSet, VecDeque};

use bytes::Bytes;
use sambung_sip::transaction::TxKey;
use sambung_sip::{HeaderName, Method, Request, SipStr, Uri};
use tracing::{debug, info};

use crate::events::Event;
use crate::io::StoreWrite;
use crate::pbx::Ctx;
use crate::registrar::{Account, Accounts, Binding, Location};
use crate::sip::Owner;

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
    from_account: i64,
    to_account: i64,
    content_type: String,
    body: Bytes,
}

/// Messaging: messages waiting for the store, messages on their way to devices.
#[derive(Debug, Default)]
pub(crate) struct Messages {
    next_ticket: u64,
    pending: HashMap<u64, Pending>,
    /// Our MESSAGE client transactions: which message to which device.
    in_flight: HashMap<TxKey, (StoredMessage, i64, String)>,
    /// Messages a device (account, binding key) failed to take: sent again at its next
    /// REGISTER. Kept in memory, at most [`MISSED_PER_DEVICE`] per device.
    missed: HashMap<(i64, String), Vec<StoredMessage>>,
    /// The last messages taken by each device (message id, binding key), so that a message
    /// reaching a device by two paths at once (stored while the device came online: delivered
    /// as stored, and again from the store's list of pending messages if that list was read
    /// before the delivery was written) is sent once.
    taken: HashSet<(i64, String)>,
    taken_order: VecDeque<(i64, String)>,
}

/// How many (message, device) pairs [`Messages::taken`] remembers.
const TAKEN_REMEMBERED: usize = 10_000;

/// How many failed messages are kept for one device.
const MISSED_PER_DEVICE: usize = 100;

impl Messages {
    /// Messages waiting for the store or for a device's answer (0 once every one is settled;
    /// what is kept for devices that missed a message, and the recently taken, are bounded).
    pub(crate) fn retained(&self) -> usize {
        self.pending.len() + self.in_flight.len()
    }

    /// A MESSAGE outside any dialog from an authenticated `sender` (RFC 3428 §7).
    pub(crate) fn on_message(
        &mut self,
        ctx: &mut Ctx<'_>,
        accounts: &Accounts,
        sender: &Account,
        key: TxKey,
        request: &Request,
    ) {
        let recipient = match &request.uri {
            Uri::Sip(uri) => uri.user_unescaped().and_then(|u| accounts.by_user_part(&u).cloned()),
            Uri::Other { .. } => None,
        };
        let Some(recipient) = recipient.filter(|r| !r.disabled) else {
            return ctx.respond(key, request.reply(404, "Not Found"));
        };
        if request.body.is_empty() {
            return ctx.respond(key, request.reply(400, "Empty Message"));
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
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.pending.insert(
            ticket,
            Pending {
                from_uri: from_uri.clone(),
                from_account: sender.id,
                to_account: recipient.id,
                content_type: content_type.clone(),
                body: request.body.clone(),
            },
        );
        ctx.out.store(StoreWrite::StoreMessage {
            ticket,
            from_uri,
            from_account: Some(sender.id),
            to_account: recipient.id,
            content_type,
            body: request.body.clone(),
            created_at: ctx.now.unix_secs,
        });
        info!(from = sender.username, to = recipient.username, bytes = request.body.len(), "message");
        // RFC 3428 §7: accepted for delivery (it is stored; devices get it as they can).
        ctx.respond(key, request.reply(202, "Accepted"));
    }

    /// The store has the message under `id`: deliver it to every device of the recipient.
    pub(crate) fn stored(
        &mut self,
        ctx: &mut Ctx<'_>,
        location: &Location,
        accounts: &Accounts,
        ticket: u64,
        id: Option<i64>,
    ) {
        let Some(p) = self.pending.remove(&ticket) else { return };
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
        self.deliver(ctx, location, accounts, p.from_account, message);
    }

    /// A stored message from `from_account` (by SIP, or written in the web app) goes to every
    /// device of its recipient.
    pub(crate) fn deliver(
        &mut self,
        ctx: &mut Ctx<'_>,
        location: &Location,
        accounts: &Accounts,
        from_account: i64,
        message: StoredMessage,
    ) {
        ctx.out.event(Event::MessageStored {
            message_id: message.id,
            from_account: Some(from_account),
            to_account: message.to_account,
        });
        for binding in location.bindings(message.to_account) {
            self.send(ctx, accounts, &message, binding);
        }
    }

    /// Messages a device has not had yet (fetched from the store when it came online).
    pub(crate) fn deliver_undelivered(
        &mut self,
        ctx: &mut Ctx<'_>,
        location: &Location,
        accounts: &Accounts,
        account_id: i64,
        device: &str,
        messages: Vec<StoredMessage>,
    ) {
        let Some(binding) = location.get(account_id, device) else { return };
        for message in &messages {
            self.send(ctx, accounts, message, binding);
        }
    }

    /// After a REGISTER: new devices ask the store for what is pending; devices that failed
    /// to take messages get those again.
    pub(crate) fn catch_up(
        &mut self,
        ctx: &mut Ctx<'_>,
        location: &Location,
        accounts: &Accounts,
        account_id: i64,
        new_devices: Vec<String>,
        refreshed: Vec<String>,
    ) {
        for device in new_devices {
            ctx.out.store(StoreWrite::FetchPending { account_id, device });
        }
        for device in refreshed {
            let Some(missed) = self.missed.remove(&(account_id, device.clone())) else { continue };
            let Some(binding) = location.get(account_id, &device) else { continue };
            for message in &missed {
                self.send(ctx, accounts, message, binding);
            }
        }
    }

    fn send(&mut self, ctx: &mut Ctx<'_>, accounts: &Accounts, message: &StoredMessage, binding: &Binding) {
        let Some(recipient) = accounts.by_id(message.to_account) else { return };
        let device = binding.key();
        let on_its_way = self.in_flight.values().any(|(m, _, d)| m.id == message.id && *d == device);
        if on_its_way || self.taken.contains(&(message.id, device.clone())) {
            return debug!(message = message.id, device, "already delivered or on its way");
        }
        let mut headers = sambung_sip::Headers::new();
        headers.push(HeaderName::MaxForwards, SipStr::from_static("70"));
        headers.push(HeaderName::From, SipStr::from(format!("{};tag={}", message.from_uri, ctx.random.token(8))));
        headers.push(HeaderName::To, SipStr::from(format!("<{}>", binding.aor)));
        headers.push(HeaderName::CallId, SipStr::from(ctx.random.call_id()));
        headers.push(HeaderName::CSeq, SipStr::from_static("1 MESSAGE"));
        let mut request = Request { method: Method::Message, uri: binding.uri.clone(), headers, body: Bytes::new() };
        request.set_body(&message.content_type, message.body.clone());
        match ctx.sip.send_request(request, binding.target(), Owner::Message, ctx.random, ctx.now.instant) {
            Ok(key) => {
                debug!(message = message.id, to = recipient.username, device = %binding.uri, "delivering");
                self.in_flight.insert(key, (message.clone(), binding.account_id, binding.key()));
            }
            Err(error) => debug!(%error, "message not sent"),
        }
    }

    /// The answer of a device to a MESSAGE we sent.
    pub(crate) fn on_response(&mut self, ctx: &mut Ctx<'_>, key: TxKey, status: u16) {
        if status < 200 {
            return;
        }
        let Some((message, account_id, device)) = self.in_flight.remove(&key) else { return };
        if (200..300).contains(&status) {
            if self.taken.insert((message.id, device.clone())) {
                self.taken_order.push_back((message.id, device.clone()));
                if self.taken_order.len() > TAKEN_REMEMBERED
                    && let Some(old) = self.taken_order.pop_front()
                {
                    self.taken.remove(&old);
                }
            }
            ctx.out.store(StoreWrite::Delivered {
                message_id: message.id,
                device: device.clone(),
                at: ctx.now.unix_secs,
            });
            ctx.out.event(Event::MessageDelivered { message_id: message.id, account_id, device });
        } else {
            debug!(message = message.id, status, device, "device did not take the message");
            let missed = self.missed.entry((account_id, device)).or_default();
            if missed.len() < MISSED_PER_DEVICE {
                missed.push(message);
            }
        }
    }
}
