//! A tiny in-memory store answering call control's writes: bindings, text messages with their
//! ids, what each account has pending, and which device took what.

use std::collections::BTreeMap;

use sambung_pbx::registrar::Binding;
use sambung_pbx::{RoutingChange, StoreReply, StoreWrite, StoredMessage};

/// A text message as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptMessage {
    pub message: StoredMessage,
    pub from_account: Option<i64>,
    pub created_at: u64,
    /// The devices that took it, with when (Unix seconds).
    pub delivered: Vec<(String, u64)>,
}

/// The simulated store. See the [module docs](self).
#[derive(Debug, Default)]
pub struct Store {
    next_id: i64,
    messages: BTreeMap<i64, KeptMessage>,
    bindings: BTreeMap<(i64, String), Binding>,
    routing: Vec<(i64, RoutingChange)>,
    /// Bans (source, until) and lockouts (username, until), in the order made.
    bans: Vec<(std::net::IpAddr, Option<u64>)>,
    lockouts: Vec<(String, u64)>,
    writes: u64,
}

impl Store {
    /// Applies `write`; the answer call control waits for, if it asks for one.
    pub fn apply(&mut self, write: StoreWrite) -> Option<StoreReply> {
        self.writes += 1;
        match write {
            StoreWrite::Bind(binding) | StoreWrite::Refresh(binding) => {
                self.bindings.insert((binding.account_id, binding.uri.to_string()), *binding);
                None
            }
            StoreWrite::Unbind { account_id, contact } => {
                self.bindings.remove(&(account_id, contact));
                None
            }
            StoreWrite::StoreMessage { ticket, from_uri, from_account, to_account, content_type, body, created_at } => {
                self.next_id += 1;
                let id = self.next_id;
                let message = StoredMessage { id, from_uri, to_account, content_type, body };
                self.messages.insert(id, KeptMessage { message, from_account, created_at, delivered: Vec::new() });
                Some(StoreReply::MessageStored { ticket, id: Some(id) })
            }
            StoreWrite::Delivered { message_id, device, at } => {
                if let Some(kept) = self.messages.get_mut(&message_id) {
                    kept.delivered.push((device, at));
                }
                None
            }
            StoreWrite::FetchPending { account_id, device } => {
                let messages = self.pending(account_id).into_iter().map(|k| k.message.clone()).collect();
                Some(StoreReply::Undelivered { account_id, device, messages })
            }
            StoreWrite::Routing { account_id, change } => {
                self.routing.push((account_id, change));
                None
            }
            StoreWrite::Ban { source, until, .. } => {
                self.bans.push((source, until));
                None
            }
            StoreWrite::Lockout { username, until } => {
                self.lockouts.push((username, until));
                None
            }
        }
    }

    /// The bans call control made, in order.
    pub fn bans(&self) -> &[(std::net::IpAddr, Option<u64>)] {
        &self.bans
    }

    /// The account lockouts call control made, in order.
    pub fn lockouts(&self) -> &[(String, u64)] {
        &self.lockouts
    }

    /// The messages of `account_id` no device has taken yet, oldest first.
    pub fn pending(&self, account_id: i64) -> Vec<&KeptMessage> {
        self.messages.values().filter(|k| k.message.to_account == account_id && k.delivered.is_empty()).collect()
    }

    /// Every message kept, by id.
    pub fn messages(&self) -> &BTreeMap<i64, KeptMessage> {
        &self.messages
    }

    /// The bindings the store has, by account and contact.
    pub fn bindings(&self) -> impl Iterator<Item = &Binding> {
        self.bindings.values()
    }

    /// Routing changes made by feature codes, in order.
    pub fn routing_changes(&self) -> &[(i64, RoutingChange)] {
        &self.routing
    }

    /// How many writes it took.
    pub fn writes(&self) -> u64 {
        self.writes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn message(ticket: u64, to_account: i64) -> StoreWrite {
        StoreWrite::StoreMessage {
            ticket,
            from_uri: "<sip:alice@example.com>".into(),
            from_account: Some(1),
            to_account,
            content_type: "text/plain".into(),
            body: Bytes::from_static(b"hi"),
            created_at: 7,
        }
    }

    #[test]
    fn messages_get_ids_wait_for_their_account_and_are_marked_delivered() {
        let mut store = Store::default();
        assert_eq!(store.apply(message(5, 2)), Some(StoreReply::MessageStored { ticket: 5, id: Some(1) }));
        assert_eq!(store.apply(message(6, 3)), Some(StoreReply::MessageStored { ticket: 6, id: Some(2) }));
        let Some(StoreReply::Undelivered { messages, .. }) =
            store.apply(StoreWrite::FetchPending { account_id: 2, device: "d".into() })
        else {
            panic!("pending messages are answered")
        };
        assert_eq!(messages.iter().map(|m| m.id).collect::<Vec<_>>(), [1]);
        assert_eq!(store.apply(StoreWrite::Delivered { message_id: 1, device: "d".into(), at: 9 }), None);
        assert!(store.pending(2).is_empty());
        assert_eq!(store.messages()[&1].delivered, [("d".to_owned(), 9)]);
        assert_eq!(store.pending(3).len(), 1);
    }
}
