//! The registrar (RFC 3261 §10.3): REGISTER binds an account's address-of-record to the
//! contacts of its devices.

pub mod accounts;
pub mod auth;
pub mod location;

use crate::shard::Shared;
use sambung_sip::transaction::Peer;
use sambung_sip::{HeaderName, NameAddr, Request, Response, SipStr, Uri, text};

pub use accounts::{Account, Accounts, Routing, Target};
pub use auth::{AuthOutcome, Authenticator, Challenger};
pub use location::{Binding, Location};

/// Expiry bounds (RFC 3261 §10.2.1, §10.3 step 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistrarConfig {
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig { min_expires: 60, max_expires: 3600, default_expires: 3600 }
    }
}

/// What one accepted REGISTER changed.
#[derive(Debug, Default)]
pub struct Changes {
    /// Bindings added or refreshed.
    pub upserted: Vec<Binding>,
    /// Bindings removed.
    pub removed: Vec<Binding>,
    /// Keys of bindings that did not exist before (a device came online).
    pub new_devices: Vec<String>,
    /// Keys of upserted bindings whose refresh changed only what a restart can do without:
    /// the expiry, and the Call-ID and CSeq of the REGISTER (RFC 3261 §10.3 step 7 orders the
    /// requests of one registration; after a restart a device's next REGISTER is newer anyway).
    pub expiry_only: Vec<String>,
}

/// The registrar: expiry policy over the location service.
#[derive(Debug, Default)]
pub struct Registrar {
    pub config: RegistrarConfig,
    /// Shared by every shard ([`crate::shard`]).
    pub location: Shared<Location>,
}

impl Registrar {
    pub fn new(config: RegistrarConfig) -> Registrar {
        Registrar { config, location: Shared::default() }
    }

    /// Processes a REGISTER from an authenticated `account` (RFC 3261 §10.3 steps 5 to 8).
    /// Returns the answer and what changed; the caller persists the changes.
    pub fn register(
        &mut self,
        request: &Request,
        account: &Account,
        accounts: &Accounts,
        source: &Peer,
        now_secs: u64,
    ) -> (Response, Changes) {
        let mut location = self.location.write();
        match self.apply(&mut location, request, account, accounts, source, now_secs) {
            Ok(changes) => (Self::ok(&location, request, account, now_secs), changes),
            Err(response) => (response, Changes::default()),
        }
    }

    fn apply(
        &self,
        location: &mut Location,
        request: &Request,
        account: &Account,
        accounts: &Accounts,
        source: &Peer,
        now_secs: u64,
    ) -> Result<Changes, Response> {
        // Step 5/6 of §10.3: the address-of-record is the To URI, and an authenticated user
        // may only bind their own address.
        let to = request.to().ok_or_else(|| request.reply(400, "Bad To Header"))?;
        let owner = match &to.uri {
            Uri::Sip(uri) => uri.user_unescaped().and_then(|u| accounts.by_user_part(&u).map(|a| a.id)),
            Uri::Other { .. } => None,
        };
        if owner != Some(account.id) {
            return Err(request.reply(403, "Not Your Address-of-Record"));
        }
        let call_id = request.call_id().unwrap_or_default().to_owned();
        let cseq = request.cseq().map_or(0, |c| c.seq);
        let header_expires =
            request.headers.get(HeaderName::Expires).and_then(|v| text::trim_lws(v).parse::<u32>().ok());
        let values: Vec<&str> = request.headers.values(HeaderName::Contact).collect();
        let mut changes = Changes::default();

        // Contact: * removes every binding, and only with Expires: 0 (§10.3 step 6).
        if values.iter().any(|v| text::trim_lws(v) == "*") {
            if values.len() != 1 || header_expires != Some(0) {
                return Err(request.reply(400, "Wildcard Contact Needs Expires 0"));
            }
            for b in location.bindings(account.id).to_vec() {
                if b.call_id == call_id && cseq <= b.cseq {
                    continue;
                }
                if let Some(removed) = location.remove(account.id, &b.key()) {
                    changes.removed.push(removed);
                }
            }
            return Ok(changes);
        }

        let mut parsed = Vec::with_capacity(values.len());
        for value in &values {
            let contact = NameAddr::parse(&SipStr::from(*value)).map_err(|_| request.reply(400, "Bad Contact"))?;
            let expires = contact
                .params
                .value("expires")
                .and_then(|e| e.parse::<u32>().ok())
                .or(header_expires)
                .unwrap_or(self.config.default_expires);
            // §10.3 step 7: too short is refused with the shortest we accept.
            if expires != 0 && expires < self.config.min_expires {
                let mut r = request.reply(423, "Interval Too Brief");
                crate::sip::insert(&mut r, HeaderName::MinExpires, SipStr::from(self.config.min_expires.to_string()));
                return Err(r);
            }
            parsed.push((contact, expires.min(self.config.max_expires)));
        }

        let aor = format!("sip:{}@{}", account.username, aor_host(&to.uri));
        let user_agent = request.headers.get(HeaderName::UserAgent).map(|v| v.to_string());
        for (contact, expires) in parsed {
            let q = contact.params.value("q").and_then(parse_q).unwrap_or(1000);
            let binding = Binding {
                account_id: account.id,
                aor: aor.clone(),
                uri: contact.uri.clone(),
                instance: contact
                    .params
                    .value("+sip.instance")
                    .map(|i| text::unquote(i.trim_matches('"')).into_owned()),
                reg_id: contact.params.value("reg-id").and_then(|r| r.parse().ok()),
                q,
                call_id: call_id.clone(),
                cseq,
                expires_at: now_secs + u64::from(expires),
                source: source.clone(),
                user_agent: user_agent.clone(),
            };
            let key = binding.key();
            let existing = location.get(account.id, &key);
            // §10.3 step 7: an older or repeated request of the same registration changes nothing.
            if existing.is_some_and(|b| b.call_id == call_id && cseq <= b.cseq) {
                return Err(request.reply(500, "Out Of Order Registration"));
            }
            let is_new = existing.is_none();
            let expiry_only = existing.is_some_and(|b| {
                b.uri == binding.uri
                    && b.source == binding.source
                    && b.instance == binding.instance
                    && b.reg_id == binding.reg_id
                    && b.q == binding.q
                    && b.aor == binding.aor
                    && b.user_agent == binding.user_agent
            });
            if expires == 0 {
                if let Some(removed) = location.remove(account.id, &key) {
                    changes.removed.push(removed);
                }
                continue;
            }
            if let Some(old) = location.upsert(binding.clone()).filter(|old| old.uri != binding.uri) {
                // the same device (RFC 5626 instance) at a new contact: the old row goes
                changes.removed.push(old);
            }
            if is_new {
                changes.new_devices.push(key);
            } else if expiry_only {
                changes.expiry_only.push(key);
            }
            changes.upserted.push(binding);
        }
        Ok(changes)
    }

    /// §10.3 step 8: 200 with every current binding and its remaining time.
    fn ok(location: &Location, request: &Request, account: &Account, now_secs: u64) -> Response {
        let mut response = request.reply(200, "OK");
        for b in location.bindings(account.id) {
            let mut value = format!("<{}>;expires={}", b.uri, b.remaining(now_secs));
            if b.q != 1000 {
                value.push_str(&format!(";q={}", format_q(b.q)));
            }
            if let Some(instance) = &b.instance {
                value.push_str(&format!(";+sip.instance=\"{instance}\""));
            }
            if let Some(reg_id) = b.reg_id {
                value.push_str(&format!(";reg-id={reg_id}"));
            }
            crate::sip::insert(&mut response, HeaderName::Contact, SipStr::from(value));
        }
        response
    }
}

fn aor_host(uri: &Uri) -> String {
    match uri {
        Uri::Sip(u) => u.host.as_str().to_ascii_lowercase(),
        Uri::Other { .. } => String::new(),
    }
}

/// `q` values: 0 to 1 with up to three decimals (RFC 3261 §20.10).
fn parse_q(s: &str) -> Option<u16> {
    let v: f32 = s.parse().ok()?;
    (0.0..=1.0).contains(&v).then(|| (v * 1000.0).round() as u16)
}

fn format_q(q: u16) -> String {
    let s = format!("{}.{:03}", q / 1000, q % 1000);
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests;
