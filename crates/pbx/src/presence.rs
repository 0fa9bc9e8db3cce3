//! What others see of an account: its presence (RFC 3856, as a PIDF document, RFC 3863, with
//! RPID activities, RFC 4480) and its dialogs (RFC 4235, for busy lamps). The server computes
//! it from the domain events (devices registered, calls ringing and answered, do-not-disturb) and
//! hands it to every shard ([`crate::Input::Presence`]); the web app shows the same state.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use crate::events::{Event, SettingsChange};
use crate::io::RoutingChange;
use crate::registrar::{Accounts, Binding};

/// An account's presence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Presence {
    /// Registered devices.
    pub devices: u32,
    /// Do-not-disturb is on.
    pub dnd: bool,
    /// Its calls: ringing, or answered.
    pub calls: Vec<CallPresence>,
}

/// One call of an account, as the dialog package shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallPresence {
    /// The call's number within the server.
    pub call: u64,
    /// Whether the account placed the call (`initiator`) or is called (`recipient`).
    pub initiator: bool,
    /// Answered (`confirmed`), else trying (the caller's side) or ringing (`early`).
    pub answered: bool,
}

/// The one-word summary of a presence, as the app shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// No device registered.
    Offline,
    /// Devices registered, nothing else going on.
    Available,
    /// Devices registered, and one of its devices is ringing.
    Ringing,
    /// In an answered call.
    InCall,
    /// Do-not-disturb is on.
    DoNotDisturb,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Offline => "offline",
            Status::Available => "available",
            Status::Ringing => "ringing",
            Status::InCall => "in_call",
            Status::DoNotDisturb => "dnd",
        }
    }
}

impl Presence {
    /// The summary: in a call first (even without a registered device: a call from a device
    /// whose binding expired still counts), then do-not-disturb, ringing, available, offline.
    pub fn status(&self) -> Status {
        if self.calls.iter().any(|c| c.answered) {
            Status::InCall
        } else if self.dnd {
            Status::DoNotDisturb
        } else if self.devices == 0 {
            Status::Offline
        } else if self.calls.iter().any(|c| !c.initiator) {
            Status::Ringing
        } else {
            Status::Available
        }
    }
}

/// Every account's presence, kept up to date from the domain events: what the server hands to
/// call control's shards and to the web app. Each change returns the accounts whose presence
/// changed, with their new presence.
#[derive(Debug, Default)]
pub struct Board {
    presence: HashMap<i64, Presence>,
    /// Each account's registered devices (binding keys).
    devices: HashMap<i64, HashSet<String>>,
    /// The accounts taking part in each call in progress.
    calls: HashMap<u64, Vec<i64>>,
}

impl Board {
    pub fn new() -> Board {
        Board::default()
    }

    /// An account's presence now.
    pub fn get(&self, account_id: i64) -> Presence {
        self.presence.get(&account_id).cloned().unwrap_or_default()
    }

    /// Every account with anything to show (a device, a call, do-not-disturb).
    pub fn all(&self) -> Vec<(i64, Presence)> {
        self.presence.iter().map(|(id, p)| (*id, p.clone())).collect()
    }

    /// The calls in progress: each call's number and the accounts in it (the caller first),
    /// with how each takes part.
    pub fn calls(&self) -> Vec<(u64, Vec<(i64, CallPresence)>)> {
        let mut out: Vec<_> = self
            .calls
            .iter()
            .map(|(call, members)| {
                let parts = members
                    .iter()
                    .filter_map(|id| {
                        let p = self.presence.get(id)?;
                        p.calls.iter().find(|c| c.call == *call).map(|c| (*id, c.clone()))
                    })
                    .collect();
                (*call, parts)
            })
            .collect();
        out.sort_by_key(|(call, _)| *call);
        out
    }

    /// Accounts with at least one registered device.
    pub fn online(&self) -> usize {
        self.devices.len()
    }

    /// The bindings at start.
    pub fn set_bindings(&mut self, bindings: &[Binding]) -> Vec<(i64, Presence)> {
        let mut touched = HashSet::new();
        for binding in bindings {
            self.devices.entry(binding.account_id).or_default().insert(binding.key());
            touched.insert(binding.account_id);
        }
        touched.into_iter().filter_map(|id| self.update(id, |p, devices| p.devices = devices)).collect()
    }

    /// Do-not-disturb as the account table says (at start, and when the store's accounts
    /// changed).
    pub fn set_accounts(&mut self, accounts: &Accounts) -> Vec<(i64, Presence)> {
        accounts.iter().filter_map(|a| self.set_dnd(a.id, a.routing.dnd)).collect()
    }

    /// Sets an account's do-not-disturb.
    pub fn set_dnd(&mut self, account_id: i64, dnd: bool) -> Option<(i64, Presence)> {
        self.update(account_id, |p, _| p.dnd = dnd)
    }

    /// Takes in one domain event.
    pub fn apply(&mut self, event: &Event) -> Vec<(i64, Presence)> {
        match event {
            Event::Registered { account_id, device, .. } => {
                self.devices.entry(*account_id).or_default().insert(device.clone());
                self.update(*account_id, |p, devices| p.devices = devices).into_iter().collect()
            }
            Event::Unregistered { account_id, device, .. } => {
                if let Some(devices) = self.devices.get_mut(account_id) {
                    devices.remove(device);
                    if devices.is_empty() {
                        self.devices.remove(account_id);
                    }
                }
                self.update(*account_id, |p, devices| p.devices = devices).into_iter().collect()
            }
            Event::CallStarted { call, caller_id, .. } => {
                self.calls.insert(*call, vec![*caller_id]);
                let entry = CallPresence { call: *call, initiator: true, answered: false };
                self.update(*caller_id, |p, _| p.calls.push(entry)).into_iter().collect()
            }
            Event::CallRinging { call, target_id, .. } => {
                let Some(members) = self.calls.get_mut(call) else { return Vec::new() };
                // A forwarded call rings someone else now: the earlier target stops ringing.
                let caller = members.first().copied();
                let earlier: Vec<i64> = members.drain(1..).filter(|id| id != target_id).collect();
                members.push(*target_id);
                let mut changes = self.leave(*call, &earlier, caller);
                if caller != Some(*target_id) {
                    let entry = CallPresence { call: *call, initiator: false, answered: false };
                    changes.extend(self.update(*target_id, |p, _| {
                        if !p.calls.iter().any(|c| c.call == entry.call && !c.initiator) {
                            p.calls.push(entry);
                        }
                    }));
                }
                changes
            }
            Event::CallAnswered { call, account_id, .. } => {
                let Some(members) = self.calls.get_mut(call) else { return Vec::new() };
                let caller = members.first().copied();
                let others: Vec<i64> = members.drain(1..).filter(|id| Some(*id) != *account_id).collect();
                members.extend(*account_id);
                let mut changes = self.leave(*call, &others, caller);
                let answered = |p: &mut Presence, initiator: bool| match p
                    .calls
                    .iter_mut()
                    .find(|c| c.call == *call && c.initiator == initiator)
                {
                    Some(c) => c.answered = true,
                    None => p.calls.push(CallPresence { call: *call, initiator, answered: true }),
                };
                if let Some(caller) = caller {
                    changes.extend(self.update(caller, |p, _| answered(p, true)));
                }
                if let Some(callee) = account_id {
                    changes.extend(self.update(*callee, |p, _| answered(p, false)));
                }
                changes
            }
            Event::CallEnded(record) => {
                let members = self.calls.remove(&record.call).unwrap_or_default();
                self.leave(record.call, &members, None)
            }
            Event::SettingsChanged { account_id, change: SettingsChange::FeatureCode(RoutingChange::Dnd(dnd)) } => {
                self.set_dnd(*account_id, *dnd).into_iter().collect()
            }
            _ => Vec::new(),
        }
    }

    /// `accounts` take no more part in `call` (the caller `keep` stays).
    fn leave(&mut self, call: u64, accounts: &[i64], keep: Option<i64>) -> Vec<(i64, Presence)> {
        accounts
            .iter()
            .filter(|id| Some(**id) != keep)
            .filter_map(|id| self.update(*id, |p, _| p.calls.retain(|c| c.call != call)))
            .collect()
    }

    /// Changes an account's presence with `f` (given its device count); the new presence
    /// when it changed.
    fn update(&mut self, account_id: i64, f: impl FnOnce(&mut Presence, u32)) -> Option<(i64, Presence)> {
        // A party that is no account (an outside caller, a number called out, a ring group)
        // has no presence.
        if account_id <= 0 {
            return None;
        }
        let devices = self.devices.get(&account_id).map_or(0, |d| u32::try_from(d.len()).unwrap_or(u32::MAX));
        let old = self.presence.get(&account_id).cloned().unwrap_or_default();
        let mut new = old.clone();
        f(&mut new, devices);
        if new == old {
            return None;
        }
        if new == Presence::default() {
            self.presence.remove(&account_id);
        } else {
            self.presence.insert(account_id, new.clone());
        }
        Some((account_id, new))
    }
}

/// The PIDF document (RFC 3863) of `entity` (`sip:user@domain`): `open` while a device is
/// registered, with an RPID activity (`on-the-phone`, `busy`) and a note people can read. The
/// same presence gives the same document, so a change that shows nothing here (a second device,
/// a ringing phone) need not be sent.
pub fn pidf(entity: &str, presence: &Presence) -> String {
    let status = presence.status();
    let basic = if presence.devices > 0 || status == Status::InCall { "open" } else { "closed" };
    let (activity, note) = match status {
        Status::Offline => (None, "Offline"),
        Status::Available => (None, "Available"),
        // A ringing phone is a matter for the dialog package (busy lamps, pickup); presence
        // watchers see the person as available.
        Status::Ringing => (None, "Available"),
        Status::InCall => (Some("on-the-phone"), "On the phone"),
        Status::DoNotDisturb => (Some("busy"), "Do not disturb"),
    };
    let entity = xml_escape(entity);
    let mut xml = String::with_capacity(512);
    xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n");
    let _ = write!(
        xml,
        "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" \
         xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"{entity}\">\r\n\
         <tuple id=\"sambung\"><status><basic>{basic}</basic></status><contact>{entity}</contact>\
         <note>{note}</note></tuple>\r\n<dm:person id=\"person\">"
    );
    if let Some(activity) = activity {
        let _ = write!(xml, "<rpid:activities><rpid:{activity}/></rpid:activities>");
    }
    let _ = write!(xml, "<dm:note>{note}</dm:note></dm:person>\r\n</presence>\r\n");
    xml
}

/// The dialog-info document (RFC 4235, full state) of `entity`, version `version`.
pub fn dialog_info(entity: &str, version: u32, presence: &Presence) -> String {
    let entity = xml_escape(entity);
    let mut xml = String::with_capacity(256 + 128 * presence.calls.len());
    xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n");
    let _ = write!(
        xml,
        "<dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"{version}\" state=\"full\" \
         entity=\"{entity}\">\r\n"
    );
    for call in &presence.calls {
        let direction = if call.initiator { "initiator" } else { "recipient" };
        let state = match (call.answered, call.initiator) {
            (true, _) => "confirmed",
            (false, true) => "trying",
            (false, false) => "early",
        };
        let _ = write!(
            xml,
            "<dialog id=\"call-{}\" direction=\"{direction}\"><state>{state}</state></dialog>\r\n",
            call.call
        );
    }
    xml.push_str("</dialog-info>\r\n");
    xml
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(call: u64, initiator: bool, answered: bool) -> CallPresence {
        CallPresence { call, initiator, answered }
    }

    #[test]
    fn status_order() {
        let mut p = Presence::default();
        assert_eq!(p.status(), Status::Offline);
        p.devices = 2;
        assert_eq!(p.status(), Status::Available);
        p.calls.push(call(7, false, false));
        assert_eq!(p.status(), Status::Ringing);
        p.dnd = true;
        assert_eq!(p.status(), Status::DoNotDisturb);
        p.calls.push(call(8, true, true));
        assert_eq!(p.status(), Status::InCall);
    }

    #[test]
    fn outside_parties_have_no_presence() {
        let mut board = Board::new();
        // A carrier's caller (no account) calls account 5, which answers.
        let started = Event::CallStarted {
            call: 1,
            call_id: "c".into(),
            caller: "+14155550100".into(),
            callee: "bob".into(),
            caller_id: 0,
            callee_id: 5,
            at: 0,
        };
        assert!(board.apply(&started).is_empty());
        let ringing = board.apply(&Event::CallRinging { call: 1, target: "bob".into(), target_id: 5 });
        assert_eq!(ringing.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [5]);
        let answered = Event::CallAnswered { call: 1, by: "d".into(), account_id: Some(5), at: 1 };
        assert!(board.apply(&answered).iter().all(|(id, _)| *id == 5));
        assert!(board.all().iter().all(|(id, _)| *id > 0));
    }

    #[test]
    fn documents() {
        let mut p = Presence { devices: 1, ..Presence::default() };
        let xml = pidf("sip:bob@example.com", &p);
        assert!(xml.contains("entity=\"sip:bob@example.com\"") && xml.contains("<basic>open</basic>"), "{xml}");
        assert!(!xml.contains("rpid:activities"));
        p.calls.push(call(3, true, true));
        let xml = pidf("sip:bob@example.com", &p);
        assert!(xml.contains("<rpid:on-the-phone/>") && xml.contains("On the phone"), "{xml}");
        let xml = pidf("sip:a&b@x", &Presence::default());
        assert!(xml.contains("sip:a&amp;b@x") && xml.contains("<basic>closed</basic>"), "{xml}");

        p.calls.push(call(4, false, false));
        let xml = dialog_info("sip:bob@example.com", 5, &p);
        assert!(xml.contains("version=\"5\" state=\"full\""), "{xml}");
        assert!(xml.contains("<dialog id=\"call-3\" direction=\"initiator\"><state>confirmed</state>"), "{xml}");
        assert!(xml.contains("<dialog id=\"call-4\" direction=\"recipient\"><state>early</state>"), "{xml}");
        let idle = dialog_info("sip:bob@example.com", 0, &Presence::default());
        assert!(!idle.contains("<dialog "), "{idle}");
    }
}
