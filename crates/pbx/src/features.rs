//! Feature codes: numbers a phone dials to change its account's settings or reach a service.
//!
//! | dial | does |
//! |---|---|
//! | `*72` + number | forward every call to that local user or extension |
//! | `*73` | stop forwarding every call |
//! | `*78` / `*79` | do-not-disturb on / off |
//! | `*97` | one's own mailbox |
//! | `*45` / `*46` | a queue agent logs in to its queues / out (docs/queues.md) |
//! | `*8` | pick up a call ringing for a member of one's ring groups |
//! | `**` + extension | pick up a call ringing for that account (directed pickup) |
//! | `[voicemail] access_number` | any mailbox, by its number and PIN |
//!
//! A code is answered by an application that says what it did ([`App::Confirm`]); the change
//! is made at once in the account table, queued for the store and announced as an event.

use tracing::info;

use crate::apps::{App, Confirmation};
use crate::config::PbxConfig;
use crate::events::{Event, SettingsChange};
use crate::io::{Outputs, RoutingChange, StoreWrite};
use crate::registrar::{Account, Accounts, Target};

/// `*97`: one's own mailbox, from one's own device.
pub const OWN_MAILBOX: &str = "*97";
/// `*72<target>`: forward every call to the target; `*73`: stop.
pub const FORWARD_ON: &str = "*72";
pub const FORWARD_OFF: &str = "*73";
/// `*78`: do-not-disturb on; `*79`: off.
pub const DND_ON: &str = "*78";
pub const DND_OFF: &str = "*79";
/// `*8`: pick up a call ringing in one's groups; `**EXT`: for that account.
pub const GROUP_PICKUP: &str = "*8";
pub const DIRECTED_PICKUP: &str = "**";
/// `*45`: a queue agent logs in to its queues; `*46`: out.
pub const AGENT_LOGIN: &str = "*45";
pub const AGENT_LOGOUT: &str = "*46";

/// The application a dialled number names, if it is a service code: the mailbox numbers and
/// feature codes. A feature code's change is made here.
pub(crate) fn service_code(
    accounts: &mut Accounts,
    out: &mut Outputs,
    config: &PbxConfig,
    caller: &Account,
    dialled: &str,
) -> Option<App> {
    if dialled == OWN_MAILBOX {
        return Some(App::Mailbox { account_id: Some(caller.id) });
    }
    if let Some(extension) = dialled.strip_prefix(DIRECTED_PICKUP) {
        return Some(match accounts.by_user_part(extension).filter(|a| !extension.is_empty() && a.id != caller.id) {
            Some(account) => App::Pickup { accounts: vec![account.id] },
            None => App::Confirm(Confirmation::Invalid),
        });
    }
    if dialled == GROUP_PICKUP {
        let mut members: Vec<i64> = config
            .groups
            .groups
            .iter()
            .filter(|g| g.members.contains(&caller.username))
            .flat_map(|g| &g.members)
            .filter_map(|m| accounts.by_username(m))
            .map(|a| a.id)
            .filter(|id| *id != caller.id)
            .collect();
        members.sort_unstable();
        members.dedup();
        return Some(if members.is_empty() {
            App::Confirm(Confirmation::Invalid)
        } else {
            App::Pickup { accounts: members }
        });
    }
    if dialled == AGENT_LOGIN || dialled == AGENT_LOGOUT {
        return Some(App::Agent { login: dialled == AGENT_LOGIN });
    }
    if !config.access_number.is_empty() && dialled == config.access_number {
        return Some(App::Mailbox { account_id: None });
    }
    let mut routing = caller.routing.clone();
    let (change, confirmation) = if let Some(target) = dialled.strip_prefix(FORWARD_ON) {
        // The target is a local number or username; `*72` alone, or one that names no
        // account (or the caller), changes nothing.
        match accounts.by_user_part(target).filter(|a| !target.is_empty() && a.id != caller.id) {
            Some(account) => {
                routing.forward_always = Some(Target::Local(account.username.clone()));
                (Some(RoutingChange::ForwardAlways(Some(account.username.clone()))), Confirmation::ForwardOn)
            }
            None => (None, Confirmation::Invalid),
        }
    } else if dialled == FORWARD_OFF {
        routing.forward_always = None;
        (Some(RoutingChange::ForwardAlways(None)), Confirmation::ForwardOff)
    } else if dialled == DND_ON {
        routing.dnd = true;
        (Some(RoutingChange::Dnd(true)), Confirmation::DndOn)
    } else if dialled == DND_OFF {
        routing.dnd = false;
        (Some(RoutingChange::Dnd(false)), Confirmation::DndOff)
    } else if dialled.starts_with('*') && accounts.by_user_part(dialled).is_none() {
        (None, Confirmation::Invalid)
    } else {
        return None;
    };
    if let Some(change) = change {
        info!(account = caller.username, ?change, "feature code");
        accounts.set_routing(caller.id, routing);
        out.store(StoreWrite::Routing { account_id: caller.id, change: change.clone() });
        out.event(Event::SettingsChanged { account_id: caller.id, change: SettingsChange::FeatureCode(change) });
    }
    Some(App::Confirm(confirmation))
}
