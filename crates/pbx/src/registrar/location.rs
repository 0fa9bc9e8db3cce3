//! The location service (RFC 3261 §10.3): the contacts each account is registered at, with
//! their expiry. Held in memory by the core; every change is also persisted by the store task,
//! and the table is reloaded from the store at start, so a restart keeps the bindings.

use std::collections::{BTreeSet, HashMap};

use sambung_sip::Uri;
use sambung_sip::transaction::Peer;

/// One registered device of an account.
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    pub account_id: i64,
    /// The address-of-record, `sip:user@domain`.
    pub aor: String,
    /// The contact URI as registered: where requests for the device go.
    pub uri: Uri,
    /// RFC 5626 `+sip.instance`, when the device sent one.
    pub instance: Option<String>,
    /// RFC 5626 `reg-id`.
    pub reg_id: Option<u32>,
    /// Preference in thousandths (q=0.5 is 500), RFC 3261 §10.2.1.2.
    pub q: u16,
    pub call_id: String,
    pub cseq: u32,
    /// Unix seconds.
    pub expires_at: u64,
    /// Where the REGISTER came from: requests to the device go back this way (RFC 3581,
    /// RFC 5626 flows), so devices behind NAT stay reachable.
    pub source: Peer,
    pub user_agent: Option<String>,
}

impl Binding {
    /// What identifies the binding within its account: the instance and reg-id when the device
    /// is RFC 5626 aware, else the contact URI (RFC 3261 §10.3 step 6 compares URIs).
    pub fn key(&self) -> String {
        match (&self.instance, self.reg_id) {
            (Some(instance), Some(reg_id)) => format!("{instance};reg-id={reg_id}"),
            (Some(instance), None) => instance.clone(),
            _ => self.uri.to_string(),
        }
    }

    /// Where requests for the device go (RFC 3261 §10, RFC 3581, RFC 5626): over its own
    /// connection for stream transports (a device behind NAT or in a browser cannot take a
    /// new one); over UDP to the registered Contact when it names the address the REGISTER
    /// came from, and to that source address otherwise (the device is behind a NAT and its
    /// Contact is an address we cannot reach).
    pub fn target(&self) -> Peer {
        if self.source.transport.is_reliable() {
            return self.source.clone();
        }
        let Some(uri) = self.uri.as_sip() else { return self.source.clone() };
        match uri.host.ip() {
            Some(ip) if ip == self.source.addr.ip() => {
                let port = uri.port.unwrap_or(5060);
                Peer { addr: std::net::SocketAddr::new(ip, port), ..self.source.clone() }
            }
            _ => self.source.clone(),
        }
    }

    /// Seconds left before the binding expires.
    pub fn remaining(&self, now_secs: u64) -> u64 {
        self.expires_at.saturating_sub(now_secs)
    }
}

/// Bindings by account, with an expiry index.
#[derive(Debug, Default)]
pub struct Location {
    by_account: HashMap<i64, Vec<Binding>>,
    expiries: BTreeSet<(u64, i64, String)>,
}

impl Location {
    /// The live bindings of an account, highest q first.
    pub fn bindings(&self, account_id: i64) -> &[Binding] {
        self.by_account.get(&account_id).map_or(&[], Vec::as_slice)
    }

    /// The binding of `account_id` with `key`, if any.
    pub fn get(&self, account_id: i64, key: &str) -> Option<&Binding> {
        self.bindings(account_id).iter().find(|b| b.key() == key)
    }

    /// Adds or replaces a binding; returns the one it replaced.
    pub fn upsert(&mut self, binding: Binding) -> Option<Binding> {
        let key = binding.key();
        let old = self.remove(binding.account_id, &key);
        self.expiries.insert((binding.expires_at, binding.account_id, key));
        let list = self.by_account.entry(binding.account_id).or_default();
        let at = list.iter().position(|b| b.q < binding.q).unwrap_or(list.len());
        list.insert(at, binding);
        old
    }

    /// Removes one binding.
    pub fn remove(&mut self, account_id: i64, key: &str) -> Option<Binding> {
        let list = self.by_account.get_mut(&account_id)?;
        let i = list.iter().position(|b| b.key() == key)?;
        let removed = list.remove(i);
        if list.is_empty() {
            self.by_account.remove(&account_id);
        }
        self.expiries.remove(&(removed.expires_at, account_id, key.to_owned()));
        Some(removed)
    }

    /// Removes every binding of an account.
    pub fn remove_account(&mut self, account_id: i64) -> Vec<Binding> {
        let list = self.by_account.remove(&account_id).unwrap_or_default();
        for b in &list {
            self.expiries.remove(&(b.expires_at, account_id, b.key()));
        }
        list
    }

    /// Removes and returns the bindings that have expired at `now_secs`.
    pub fn expire(&mut self, now_secs: u64) -> Vec<Binding> {
        let mut gone = Vec::new();
        while let Some((at, account, key)) = self.expiries.first().cloned() {
            if at > now_secs {
                break;
            }
            match self.remove(account, &key) {
                Some(b) => gone.push(b),
                None => {
                    self.expiries.pop_first();
                }
            }
        }
        gone
    }

    /// When the next binding expires (Unix seconds).
    pub fn next_expiry(&self) -> Option<u64> {
        self.expiries.first().map(|(at, _, _)| *at)
    }

    /// How many bindings there are in all.
    pub fn len(&self) -> usize {
        self.expiries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.expiries.is_empty()
    }
}
