//! `[[menus]]`, the auto-attendant's menus, and `[[queues]]`, the call queues: checked and
//! turned into what their applications run ([`crate::apps::attendant::Menus`],
//! [`crate::apps::queue::QueueConfig`]) and what call control routes to. See docs/attendant.md
//! and docs/queues.md.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::{Config, ConfigError};
use crate::apps::attendant::{Action, Hours, Menu, Menus};
use crate::apps::queue::{QueueConfig, Strategy};

/// Longest greeting file read, bytes (16-bit mono at 16 kHz: about five minutes).
const MAX_GREETING: u64 = 10 << 20;

/// One `[[menus]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MenuEntry {
    /// Its user part (`main`): called as `sip:main@DOMAIN`; a phone number reaches it with
    /// `sambung number add NUMBER --menu main`.
    pub name: String,
    /// A number that reaches it too (`"500"`).
    pub extension: Option<String>,
    /// A WAV file (PCM, mono, 8 to 48 kHz) said when the menu answers; unset: "Please enter the
    /// extension of the person you are calling" (or "Please choose an option").
    pub greeting: Option<PathBuf>,
    /// Key → `menu:NAME`, `voicemail:USER`, `repeat`, `hangup`, or a username, extension,
    /// group, number or `sip:` URI to connect the caller to.
    pub options: BTreeMap<String, String>,
    /// A caller may key in an extension (an account's or a group's, never an outside number).
    pub dial_by_extension: bool,
    /// Seconds the caller has to choose after the greeting.
    pub timeout_seconds: u32,
    /// Times the greeting is said to a caller who chooses nothing, before `on_timeout`.
    pub repeats: u32,
    /// Where a caller who never chooses goes (as an option's value); empty: goodbye.
    pub on_timeout: String,
    /// The IANA time zone of `hours` and `holidays` (`"Europe/London"`); `"UTC"` by default.
    pub time_zone: String,
    /// When the menu is open: `"mon-fri 09:00-17:30"`, `"sat 10:00-13:00"`; empty: always.
    pub hours: Vec<String>,
    /// Days it is closed all day: `"2026-12-25"`.
    pub holidays: Vec<String>,
    /// The menu that answers instead while this one is closed.
    pub closed: Option<String>,
}

impl Default for MenuEntry {
    fn default() -> Self {
        MenuEntry {
            name: String::new(),
            extension: None,
            greeting: None,
            options: BTreeMap::new(),
            dial_by_extension: true,
            timeout_seconds: 5,
            repeats: 3,
            on_timeout: String::new(),
            time_zone: "UTC".into(),
            hours: Vec::new(),
            holidays: Vec::new(),
            closed: None,
        }
    }
}

/// `[parking]`: slots a call is parked in and retrieved from.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParkingConfig {
    /// The slots, `"FIRST-LAST"` (`"701-720"`); empty: no parking.
    pub slots: String,
    /// Seconds a parked call waits before it rings the one who parked it.
    pub timeout_seconds: u32,
}

impl Default for ParkingConfig {
    fn default() -> Self {
        ParkingConfig { slots: String::new(), timeout_seconds: 120 }
    }
}

impl ParkingConfig {
    /// The first and last slot; `None` without parking. The error names what is wrong.
    pub fn range(&self) -> Result<Option<(u32, u32)>, String> {
        let text = self.slots.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let bad = || format!("parking.slots: {text:?} must be FIRST-LAST, 2 to 6 digits each (\"701-720\")");
        let (first, last) = text.split_once('-').ok_or_else(bad)?;
        let number = |s: &str| -> Option<u32> {
            let s = s.trim();
            ((2..=6).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0'))
                .then(|| s.parse().ok())
                .flatten()
        };
        let (first, last) = (number(first).ok_or_else(bad)?, number(last).ok_or_else(bad)?);
        if first > last || last - first >= 1000 {
            return Err(bad());
        }
        if self.timeout_seconds == 0 {
            return Err("parking.timeout_seconds must be at least 1".into());
        }
        Ok(Some((first, last)))
    }
}

/// `[recording]`: which calls are recorded, and for how long recordings are kept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingConfig {
    /// Usernames whose calls (made or taken) are recorded.
    pub accounts: Vec<String>,
    /// Ring groups (`[[groups]]` names) whose calls are recorded.
    pub groups: Vec<String>,
    /// Days a recording is kept before it is deleted; 0: kept until deleted by hand.
    pub keep_days: u32,
    /// Both parties hear "This call is recorded" when the recording starts.
    pub notice: bool,
}

/// One `[[queues]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueEntry {
    /// Its user part (`support`); a phone number reaches it with `sambung number add NUMBER
    /// --menu support`.
    pub name: String,
    /// A number that reaches it too (`"700"`).
    pub extension: Option<String>,
    /// `"longest-idle"`, `"round-robin"` or `"fewest-calls"`.
    pub strategy: String,
    /// Usernames of the agents, in order (round robin follows it).
    pub agents: Vec<String>,
    /// Seconds an agent rings for one caller before the next agent is tried.
    pub ring_seconds: u32,
    /// Seconds after a queue call before the agent gets the next one.
    pub wrap_up_seconds: u32,
    /// Longest wait, seconds, before `on_timeout`.
    pub max_wait_seconds: u32,
    /// Seconds between two announcements of a caller's position.
    pub announce_seconds: u32,
    /// Where a caller goes after `max_wait_seconds`: `voicemail:USER`, or a username,
    /// extension, group, number or `sip:` URI; empty: goodbye.
    pub on_timeout: String,
    /// Where key 1 sends a waiting caller to leave a message (`voicemail:USER`); empty: no
    /// such choice.
    pub message: String,
}

impl Default for QueueEntry {
    fn default() -> Self {
        QueueEntry {
            name: String::new(),
            extension: None,
            strategy: "longest-idle".into(),
            agents: Vec::new(),
            ring_seconds: 15,
            wrap_up_seconds: 10,
            max_wait_seconds: 600,
            announce_seconds: 30,
            on_timeout: String::new(),
            message: String::new(),
        }
    }
}

impl QueueEntry {
    /// The queue as its application runs it; the error names what is wrong.
    pub fn to_queue(&self) -> Result<QueueConfig, String> {
        let name = self.name.to_ascii_lowercase();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(format!("queues: name {:?} must be letters, digits, '-', '_' or '.'", self.name));
        }
        if let Some(ext) = &self.extension
            && (ext.len() < 2 || ext.len() > 10 || !ext.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(format!("queues.{name}.extension: {ext:?} must be 2 to 10 digits"));
        }
        let strategy = Strategy::parse(&self.strategy).ok_or_else(|| {
            format!(
                "queues.{name}.strategy: {:?} (use \"longest-idle\", \"round-robin\" or \"fewest-calls\")",
                self.strategy
            )
        })?;
        if self.agents.is_empty() {
            return Err(format!("queues.{name}: agents must list at least one username"));
        }
        if self.ring_seconds > 600 {
            return Err(format!("queues.{name}.ring_seconds: at most 600"));
        }
        for (what, value) in [
            ("ring_seconds", self.ring_seconds),
            ("max_wait_seconds", self.max_wait_seconds),
            ("announce_seconds", self.announce_seconds),
        ] {
            if value == 0 {
                return Err(format!("queues.{name}.{what} must be at least 1"));
            }
        }
        let target = |what: &str, text: &str| -> Result<Option<String>, String> {
            match text.trim() {
                "" => Ok(None),
                text => match Action::parse(text) {
                    Ok(Action::Connect(target)) => Ok(Some(target)),
                    _ => Err(format!("queues.{name}.{what}: {text:?} is not a target")),
                },
            }
        };
        let secs = |s: u32| Duration::from_secs(u64::from(s));
        Ok(QueueConfig {
            strategy,
            agents: self.agents.iter().map(|a| a.to_ascii_lowercase()).collect(),
            ring: secs(self.ring_seconds),
            wrap_up: secs(self.wrap_up_seconds),
            max_wait: secs(self.max_wait_seconds),
            announce_every: secs(self.announce_seconds),
            on_timeout: target("on_timeout", &self.on_timeout)?,
            message: target("message", &self.message)?,
            name,
        })
    }
}

impl MenuEntry {
    /// The menu as the attendant runs it (its greeting read); the error names what is wrong.
    pub fn to_menu(&self) -> Result<Menu, String> {
        let name = self.name.to_ascii_lowercase();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(format!("menus: name {:?} must be letters, digits, '-', '_' or '.'", self.name));
        }
        if let Some(ext) = &self.extension
            && (ext.len() < 2 || ext.len() > 10 || !ext.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(format!("menus.{name}.extension: {ext:?} must be 2 to 10 digits"));
        }
        let mut options = BTreeMap::new();
        for (key, value) in &self.options {
            let mut chars = key.chars();
            let (Some(k), None) = (chars.next(), chars.next()) else {
                return Err(format!("menus.{name}.options: {key:?} is not one key (0-9, *, #)"));
            };
            if !(k.is_ascii_digit() || k == '*' || k == '#') {
                return Err(format!("menus.{name}.options: {key:?} is not one key (0-9, *, #)"));
            }
            let action = Action::parse(value).map_err(|e| format!("menus.{name}.options.{key}: {e}"))?;
            options.insert(k, action);
        }
        let on_timeout = match self.on_timeout.trim() {
            "" => None,
            text => Some(Action::parse(text).map_err(|e| format!("menus.{name}.on_timeout: {e}"))?),
        };
        if self.timeout_seconds == 0 || self.timeout_seconds > 60 {
            return Err(format!("menus.{name}.timeout_seconds: 1 to 60"));
        }
        let time_zone = match self.time_zone.trim() {
            "" | "UTC" | "utc" => jiff::tz::TimeZone::UTC,
            zone => jiff::tz::TimeZone::get(zone).map_err(|e| {
                format!("menus.{name}.time_zone: {zone:?} is not a time zone this machine knows (tzdata): {e}")
            })?,
        };
        let hours = self
            .hours
            .iter()
            .map(|h| Hours::parse(h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("menus.{name}.hours: {e}"))?;
        let holidays = self
            .holidays
            .iter()
            .map(|d| {
                d.trim()
                    .parse::<jiff::civil::Date>()
                    .map_err(|_| format!("menus.{name}.holidays: {d:?} is not a date (YYYY-MM-DD)"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let greeting = match &self.greeting {
            None => None,
            Some(path) => Some(read_greeting(path).map_err(|e| format!("menus.{name}.greeting: {e}"))?),
        };
        Ok(Menu {
            name,
            greeting,
            options,
            dial_by_extension: self.dial_by_extension,
            timeout: Duration::from_secs(u64::from(self.timeout_seconds)),
            repeats: self.repeats.max(1),
            on_timeout,
            hours,
            holidays,
            time_zone,
            closed: self.closed.as_ref().map(|c| c.to_ascii_lowercase()),
        })
    }
}

/// A greeting file, checked to be a WAV file the attendant can play.
fn read_greeting(path: &std::path::Path) -> Result<Arc<[u8]>, String> {
    let size = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?.len();
    if size > MAX_GREETING {
        return Err(format!("{}: {size} bytes, more than a greeting may be ({MAX_GREETING})", path.display()));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    sambung_media::wav::WavPlayer::new(std::io::Cursor::new(&bytes[..]), 8000)
        .map_err(|e| format!("{}: not a WAV file the attendant can play: {e}", path.display()))?;
    Ok(bytes.into())
}

impl Config {
    /// The menus as the attendant runs them (checked by [`Config::validate`]; one that cannot
    /// be read now is left out, and logged).
    pub fn menus(&self) -> Menus {
        let menus = self
            .menus
            .iter()
            .filter_map(|m| m.to_menu().inspect_err(|e| tracing::warn!(error = e, "menu left out")).ok())
            .collect();
        Menus { menus }
    }

    /// The queues as their application runs them (checked by [`Config::validate`]).
    pub fn queues(&self) -> Vec<QueueConfig> {
        self.queues.iter().filter_map(|q| q.to_queue().ok()).collect()
    }

    /// The menus and queues as call control routes to them.
    pub fn menus_for_pbx(&self) -> sambung_pbx::menus::Menus {
        use sambung_pbx::menus::{Kind, Menu};
        let menus = self
            .menus
            .iter()
            .map(|m| Menu { name: m.name.to_ascii_lowercase(), extension: m.extension.clone(), kind: Kind::Attendant })
            .chain(self.queues.iter().map(|q| Menu {
                name: q.name.to_ascii_lowercase(),
                extension: q.extension.clone(),
                kind: Kind::Queue,
            }))
            .collect();
        sambung_pbx::menus::Menus { menus }
    }

    pub(super) fn validate_menus(&self) -> Result<(), ConfigError> {
        let slots = self.parking.range().map_err(ConfigError::Value)?;
        // Groups and menus share one space of names and extensions (numbers name either).
        let mut taken: std::collections::HashSet<String> = std::collections::HashSet::new();
        for group in &self.groups {
            taken.insert(group.name.to_ascii_lowercase());
            taken.extend(group.extension.clone());
        }
        // A slot may not be a group's, menu's or queue's extension.
        let in_slots = |ext: &str| sambung_pbx::menus::parking_slot(slots, ext).is_some();
        let extensions = self.groups.iter().map(|g| &g.extension).chain(self.menus.iter().map(|m| &m.extension));
        if let Some(ext) = extensions.chain(self.queues.iter().map(|q| &q.extension)).flatten().find(|e| in_slots(e)) {
            return Err(ConfigError::Value(format!(
                "parking.slots: {ext} is also a group's, menu's or queue's extension"
            )));
        }
        let mut menus = Vec::new();
        for entry in &self.menus {
            let menu = entry.to_menu().map_err(ConfigError::Value)?;
            for id in [Some(menu.name.clone()), entry.extension.clone()].into_iter().flatten() {
                if !taken.insert(id.clone()) {
                    return Err(ConfigError::Value(format!(
                        "menus: {id:?} ({:?}) is already the name or extension of a group or menu",
                        entry.name
                    )));
                }
            }
            menus.push(menu);
        }
        for entry in &self.queues {
            let queue = entry.to_queue().map_err(ConfigError::Value)?;
            for id in [Some(queue.name.clone()), entry.extension.clone()].into_iter().flatten() {
                if !taken.insert(id.clone()) {
                    return Err(ConfigError::Value(format!(
                        "queues: {id:?} ({:?}) is already the name or extension of a group, menu or queue",
                        entry.name
                    )));
                }
            }
        }
        let names: Vec<&str> = menus.iter().map(|m| m.name.as_str()).collect();
        for menu in &menus {
            let leads = menu.options.values().chain(&menu.on_timeout).filter_map(|a| match a {
                Action::Menu(next) => Some(next.as_str()),
                _ => None,
            });
            if let Some(missing) = leads.chain(menu.closed.as_deref()).find(|n| !names.contains(n)) {
                return Err(ConfigError::Value(format!("menus.{}: no menu is named {missing:?}", menu.name)));
            }
        }
        Ok(())
    }
}
