//! Ring groups: a name (and extension) that rings a team.
//!
//! A group rings its members' devices all at once, or one member at a time in the configured
//! order, or one at a time starting after the member who got the group's previous call (round
//! robin). A member rings for the group's `ring_secs` at a time; the whole group for at most
//! `timeout_secs`. A member who is disabled, has no device online, is in do-not-disturb or (with
//! `skip_busy`) already in a call is passed over. When nobody answers, the group's fallback
//! takes the call: another account, group, number or SIP URI, an account's voicemail, or a
//! failure (`480`).

use std::collections::HashMap;

use crate::registrar::Target;

/// How a group rings its members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Every member at once; the first to answer takes the call.
    Simultaneous,
    /// One member at a time, in the configured order.
    Sequential,
    /// One member at a time, starting after the one who got the previous call.
    RoundRobin,
}

impl Strategy {
    pub fn parse(text: &str) -> Option<Strategy> {
        match text.to_ascii_lowercase().as_str() {
            "simultaneous" | "ringall" | "ring-all" => Some(Strategy::Simultaneous),
            "sequential" | "linear" | "in-order" => Some(Strategy::Sequential),
            "round-robin" | "roundrobin" | "rrmemory" => Some(Strategy::RoundRobin),
            _ => None,
        }
    }
}

/// Where a group's call goes when nobody answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// The caller hears `480 Temporarily Unavailable`.
    Fail,
    /// This account's voicemail (by username) takes a message.
    Voicemail(String),
    /// Forwarded: an account, another group, a number or a SIP URI.
    Forward(Target),
}

impl Fallback {
    /// `""` (fail), `voicemail:USER`, or a forwarding target.
    pub fn parse(text: &str) -> Option<Fallback> {
        let text = text.trim();
        if text.is_empty() {
            return Some(Fallback::Fail);
        }
        if let Some(user) = text.strip_prefix("voicemail:") {
            let user = user.trim();
            return (!user.is_empty()).then(|| Fallback::Voicemail(user.to_ascii_lowercase()));
        }
        Target::parse(text).map(Fallback::Forward)
    }
}

/// How long each member rings, unless configured, seconds.
pub const DEFAULT_RING_SECS: u32 = 20;

/// How long a group rings in all, unless configured, seconds.
pub const DEFAULT_TIMEOUT_SECS: u32 = 60;

/// One ring group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingGroup {
    /// Its user part (`sales` in `sip:sales@example.com`), lower-case.
    pub name: String,
    /// A number that reaches it too (`600`).
    pub extension: Option<String>,
    pub strategy: Strategy,
    /// Usernames, in order.
    pub members: Vec<String>,
    /// How long each member rings (one at a time); ignored when all ring at once.
    pub ring_secs: u32,
    /// How long the group rings in all before the fallback.
    pub timeout_secs: u32,
    pub fallback: Fallback,
    /// Pass over a member already in a call.
    pub skip_busy: bool,
}

impl RingGroup {
    /// A group with the usual settings: everyone at once, 20 s a member, 60 s in all, a failure
    /// when nobody answers, busy members passed over.
    pub fn new(name: &str, members: &[&str]) -> RingGroup {
        RingGroup {
            name: name.to_ascii_lowercase(),
            extension: None,
            strategy: Strategy::Simultaneous,
            members: members.iter().map(|m| m.to_ascii_lowercase()).collect(),
            ring_secs: DEFAULT_RING_SECS,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            fallback: Fallback::Fail,
            skip_busy: true,
        }
    }

    /// True when `user` (a dialled user part) names this group.
    pub fn is_called(&self, user: &str) -> bool {
        self.name.eq_ignore_ascii_case(user) || self.extension.as_deref() == Some(user)
    }
}

/// The groups of a server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RingGroups {
    pub groups: Vec<RingGroup>,
}

impl RingGroups {
    /// The group a dialled user part names.
    pub fn find(&self, user: &str) -> Option<usize> {
        self.groups.iter().position(|g| g.is_called(user))
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// Where each round-robin group starts next: shared by the shards.
#[derive(Debug, Default)]
pub(crate) struct Turns(HashMap<usize, usize>);

impl Turns {
    /// The members' order for the next call of group `group` with `count` members: starting
    /// after the one who started the previous call.
    pub(crate) fn next_order(&mut self, group: usize, count: usize) -> Vec<usize> {
        if count == 0 {
            return Vec::new();
        }
        let start = self.0.get(&group).map_or(0, |last| (last + 1) % count);
        self.0.insert(group, start);
        (0..count).map(|i| (start + i) % count).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse() {
        assert_eq!(Strategy::parse("round-robin"), Some(Strategy::RoundRobin));
        assert_eq!(Strategy::parse("Sequential"), Some(Strategy::Sequential));
        assert_eq!(Strategy::parse("random"), None);
        assert_eq!(Fallback::parse(""), Some(Fallback::Fail));
        assert_eq!(Fallback::parse("voicemail:Alice"), Some(Fallback::Voicemail("alice".into())));
        assert_eq!(Fallback::parse("voicemail:"), None);
        assert_eq!(Fallback::parse("support"), Some(Fallback::Forward(Target::Local("support".into()))));
        assert!(matches!(Fallback::parse("sip:desk@192.0.2.7"), Some(Fallback::Forward(Target::Uri(_)))));
    }

    #[test]
    fn round_robin_moves_on_each_call() {
        let mut turns = Turns::default();
        assert_eq!(turns.next_order(0, 3), [0, 1, 2]);
        assert_eq!(turns.next_order(0, 3), [1, 2, 0]);
        assert_eq!(turns.next_order(1, 2), [0, 1], "each group keeps its own turn");
        assert_eq!(turns.next_order(0, 3), [2, 0, 1]);
        assert_eq!(turns.next_order(0, 3), [0, 1, 2]);
        assert!(turns.next_order(2, 0).is_empty());
    }

    #[test]
    fn groups_are_found_by_name_or_extension() {
        let mut sales = RingGroup::new("Sales", &["alice", "bob"]);
        sales.extension = Some("600".into());
        let groups = RingGroups { groups: vec![RingGroup::new("support", &["carol"]), sales] };
        assert_eq!(groups.find("sales"), Some(1));
        assert_eq!(groups.find("600"), Some(1));
        assert_eq!(groups.find("SUPPORT"), Some(0));
        assert_eq!(groups.find("601"), None);
    }
}
