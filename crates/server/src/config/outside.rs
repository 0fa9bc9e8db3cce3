//! The keys for reaching beyond the service's own accounts: `[dns]`, `[dialplan]`,
//! `[[trunks]]`, `[[locations]]` (emergency calls) and `[[groups]]` (ring groups), each turned
//! into what call control takes and checked. See docs/trunks.md and docs/groups.md.

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;

use super::{Config, ConfigError, codec_by_name};

/// One `[[groups]]` entry: a ring group.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupEntry {
    /// Its user part (`sales`): called as `sip:sales@DOMAIN`.
    pub name: String,
    /// A number that reaches it too (`"600"`).
    pub extension: Option<String>,
    /// `"simultaneous"`, `"sequential"` or `"round-robin"`.
    pub strategy: String,
    /// Usernames, in order.
    pub members: Vec<String>,
    /// Seconds each member rings when they ring one at a time.
    pub ring_seconds: u32,
    /// Seconds the group rings in all before the fallback.
    pub timeout_seconds: u32,
    /// When nobody answers: `""` (480), `"voicemail:USER"`, or a username, extension, group,
    /// number or `sip:` URI to forward to.
    pub fallback: String,
    /// Pass over a member already in a call.
    pub skip_busy: bool,
}

impl Default for GroupEntry {
    fn default() -> Self {
        GroupEntry {
            name: String::new(),
            extension: None,
            strategy: "simultaneous".into(),
            members: Vec::new(),
            ring_seconds: sambung_pbx::groups::DEFAULT_RING_SECS,
            timeout_seconds: sambung_pbx::groups::DEFAULT_TIMEOUT_SECS,
            fallback: String::new(),
            skip_busy: true,
        }
    }
}

impl GroupEntry {
    /// The group as call control takes it; the error names what is wrong.
    pub fn to_pbx(&self) -> Result<sambung_pbx::groups::RingGroup, String> {
        let name = self.name.to_ascii_lowercase();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(format!("groups: name {:?} must be letters, digits, '-', '_' or '.'", self.name));
        }
        let members: Vec<&str> = self.members.iter().map(String::as_str).collect();
        if members.is_empty() {
            return Err(format!("groups.{name}: members must list at least one username"));
        }
        let mut group = sambung_pbx::groups::RingGroup::new(&name, &members);
        if let Some(ext) = &self.extension
            && (ext.len() < 2 || ext.len() > 10 || !ext.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(format!("groups.{name}.extension: {ext:?} must be 2 to 10 digits"));
        }
        group.extension = self.extension.clone();
        group.strategy = sambung_pbx::groups::Strategy::parse(&self.strategy).ok_or_else(|| {
            format!(
                "groups.{name}.strategy: {:?} (use \"simultaneous\", \"sequential\" or \"round-robin\")",
                self.strategy
            )
        })?;
        if self.ring_seconds == 0 || self.timeout_seconds == 0 {
            return Err(format!("groups.{name}: ring_seconds and timeout_seconds must be at least 1"));
        }
        group.ring_secs = self.ring_seconds;
        group.timeout_secs = self.timeout_seconds;
        group.fallback = sambung_pbx::groups::Fallback::parse(&self.fallback)
            .ok_or_else(|| format!("groups.{name}.fallback: {:?} is not a target", self.fallback))?;
        group.skip_busy = self.skip_busy;
        Ok(group)
    }
}

/// `[dns]`: how SIP servers of other domains and carriers are found (RFC 3263).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DnsConfig {
    /// Name servers (`"192.0.2.53"` or `"127.0.0.1:5353"`); empty: those of /etc/resolv.conf.
    pub servers: Vec<String>,
}

impl DnsConfig {
    /// The name servers to ask, or the system's.
    pub fn server_addresses(&self) -> Vec<SocketAddr> {
        if self.servers.is_empty() {
            let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            return sambung_dns::parse_resolv_conf(&text);
        }
        self.servers.iter().filter_map(|s| parse_server(s)).collect()
    }
}

fn parse_server(text: &str) -> Option<SocketAddr> {
    text.parse::<SocketAddr>().ok().or_else(|| text.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
}

/// `[dialplan]`: how dialled numbers are read.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DialplanConfig {
    /// The home country's calling code, digits (`"44"`); empty: only `+` and international
    /// numbers are recognised.
    pub country_code: String,
    pub national_prefix: String,
    pub international_prefix: String,
    /// The home area code without the national prefix (`"20"`): local numbers (5 to 8 digits)
    /// are read as this area's. Empty: none.
    pub area_code: String,
    /// Numbers that always go out, past every limit, on the emergency trunks first.
    pub emergency: Vec<String>,
}

impl Default for DialplanConfig {
    fn default() -> Self {
        let plan = sambung_pbx::trunks::DialPlan::default();
        DialplanConfig {
            country_code: plan.country_code,
            national_prefix: plan.national_prefix,
            international_prefix: plan.international_prefix,
            area_code: plan.area_code,
            emergency: plan.emergency,
        }
    }
}

/// One `[[trunks]]` entry: a carrier.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrunkEntry {
    pub name: String,
    /// The carrier's SIP server as a URI (`sip:sip.carrier.example;transport=tls`).
    pub proxy: String,
    /// Domain written in Request-URI, From and To; unset: the proxy's host.
    pub domain: Option<String>,
    pub username: Option<String>,
    pub auth_username: Option<String>,
    pub password: Option<String>,
    /// Register with the carrier.
    pub register: bool,
    pub register_expires: u32,
    /// Lower first.
    pub priority: u32,
    /// E.164 prefixes with `+` this trunk takes; empty: every number.
    pub prefixes: Vec<String>,
    /// Addresses or networks the carrier's calls come from (IP authentication).
    pub inbound: Vec<String>,
    /// `"e164"` (+44...), `"e164-no-plus"` (44...) or `"national"` (0...).
    pub number_format: String,
    pub asserted_identity: bool,
    /// Codecs offered to the carrier (empty: `[media] codecs`).
    pub codecs: Vec<String>,
    pub srtp: bool,
    /// Carries emergency calls.
    pub emergency: bool,
}

impl Default for TrunkEntry {
    fn default() -> Self {
        TrunkEntry {
            name: String::new(),
            proxy: String::new(),
            domain: None,
            username: None,
            auth_username: None,
            password: None,
            register: false,
            register_expires: sambung_pbx::trunks::DEFAULT_REGISTER_EXPIRES,
            priority: sambung_pbx::trunks::DEFAULT_PRIORITY,
            prefixes: Vec::new(),
            inbound: Vec::new(),
            number_format: "e164".into(),
            asserted_identity: true,
            codecs: Vec::new(),
            srtp: false,
            emergency: false,
        }
    }
}

impl TrunkEntry {
    /// The trunk as call control takes it; the error names what is wrong.
    pub fn to_pbx(&self) -> Result<sambung_pbx::trunks::TrunkConfig, String> {
        let name = &self.name;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(format!("trunks: name {name:?} must be letters, digits, '-', '_' or '.'"));
        }
        let proxy = sambung_sip::Uri::parse(&self.proxy)
            .ok()
            .filter(|u| u.as_sip().is_some())
            .ok_or_else(|| format!("trunks.{name}.proxy: {:?} is not a sip: or sips: URI", self.proxy))?;
        let mut trunk = sambung_pbx::trunks::TrunkConfig::new(name, proxy);
        trunk.domain = self.domain.clone();
        trunk.username = self.username.clone();
        trunk.auth_username = self.auth_username.clone();
        trunk.password = self.password.clone();
        trunk.register = self.register;
        if self.register && (self.username.is_none() || self.password.is_none()) {
            return Err(format!("trunks.{name}: register needs username and password"));
        }
        if self.register_expires < 60 {
            return Err(format!("trunks.{name}.register_expires must be at least 60"));
        }
        trunk.register_expires = self.register_expires;
        trunk.priority = self.priority;
        if let Some(bad) =
            self.prefixes.iter().find(|p| !p.starts_with('+') || !p[1..].bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(format!("trunks.{name}.prefixes: {bad:?} is not a + followed by digits"));
        }
        trunk.prefixes = self.prefixes.clone();
        trunk.inbound = self
            .inbound
            .iter()
            .map(|n| {
                n.parse().map_err(|e: sambung_pbx::guard::net::NetParseError| format!("trunks.{name}.inbound: {e}"))
            })
            .collect::<Result<_, _>>()?;
        trunk.number_format = sambung_pbx::trunks::NumberFormat::parse(&self.number_format).ok_or_else(|| {
            format!(
                "trunks.{name}.number_format: {:?} (use \"e164\", \"e164-no-plus\" or \"national\")",
                self.number_format
            )
        })?;
        trunk.asserted_identity = self.asserted_identity;
        trunk.codecs = self
            .codecs
            .iter()
            .map(|c| codec_by_name(c).ok_or_else(|| format!("trunks.{name}.codecs: unknown codec {c:?}")))
            .collect::<Result<_, _>>()?;
        trunk.srtp = self.srtp;
        trunk.emergency = self.emergency;
        Ok(trunk)
    }
}

/// One `[[locations]]` entry: the civic address (RFC 5139) sent with an account's emergency
/// calls; `account = "*"` for every account without its own.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct LocationEntry {
    pub account: String,
    pub country: String,
    pub region: String,
    pub county: String,
    pub city: String,
    pub district: String,
    pub street: String,
    pub house_number: String,
    pub postal_code: String,
    pub floor: String,
    pub room: String,
    pub name: String,
}

impl LocationEntry {
    fn civic(&self) -> sambung_pbx::trunks::CivicAddress {
        sambung_pbx::trunks::CivicAddress {
            country: self.country.clone(),
            a1: self.region.clone(),
            a2: self.county.clone(),
            a3: self.city.clone(),
            a4: self.district.clone(),
            road: self.street.clone(),
            house_number: self.house_number.clone(),
            postal_code: self.postal_code.clone(),
            floor: self.floor.clone(),
            room: self.room.clone(),
            name: self.name.clone(),
        }
    }
}

impl Config {
    /// The trunks and the dial plan as call control takes them (checked by
    /// [`Config::validate`]: an entry that does not convert is left out).
    pub fn trunks_for_pbx(&self) -> sambung_pbx::trunks::Trunks {
        let d = &self.dialplan;
        let mut plan = sambung_pbx::trunks::DialPlan {
            country_code: d.country_code.clone(),
            national_prefix: d.national_prefix.clone(),
            international_prefix: d.international_prefix.clone(),
            area_code: d.area_code.clone(),
            emergency: d.emergency.clone(),
            ..sambung_pbx::trunks::DialPlan::default()
        };
        for location in &self.locations {
            if location.account == "*" {
                plan.default_location = Some(location.civic());
            } else {
                plan.locations.insert(location.account.to_ascii_lowercase(), location.civic());
            }
        }
        sambung_pbx::trunks::Trunks { trunks: self.trunks.iter().filter_map(|t| t.to_pbx().ok()).collect(), plan }
    }

    /// The ring groups as call control takes them (checked by [`Config::validate`]).
    pub fn groups_for_pbx(&self) -> sambung_pbx::groups::RingGroups {
        sambung_pbx::groups::RingGroups { groups: self.groups.iter().filter_map(|g| g.to_pbx().ok()).collect() }
    }

    pub(super) fn validate_trunks(&self) -> Result<(), ConfigError> {
        let d = &self.dialplan;
        for (what, value) in [
            ("country_code", &d.country_code),
            ("national_prefix", &d.national_prefix),
            ("international_prefix", &d.international_prefix),
            ("area_code", &d.area_code),
        ] {
            if !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ConfigError::Value(format!("dialplan.{what} may hold only digits")));
            }
        }
        if d.emergency.iter().any(|e| e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit())) {
            return Err(ConfigError::Value("dialplan.emergency: numbers of digits only".into()));
        }
        if let Some(bad) = self.dns.servers.iter().find(|s| parse_server(s).is_none()) {
            return Err(ConfigError::Value(format!(
                "dns.servers: {bad:?} is not an address (\"192.0.2.53\" or \"127.0.0.1:5353\")"
            )));
        }
        let mut names = std::collections::HashSet::new();
        for trunk in &self.trunks {
            trunk.to_pbx().map_err(ConfigError::Value)?;
            if !names.insert(trunk.name.as_str()) {
                return Err(ConfigError::Value(format!("trunks: the name {:?} is used twice", trunk.name)));
            }
        }
        let mut groups = std::collections::HashSet::new();
        for group in &self.groups {
            let pbx = group.to_pbx().map_err(ConfigError::Value)?;
            let taken = [Some(pbx.name.clone()), pbx.extension.clone()];
            if taken.into_iter().flatten().any(|id| !groups.insert(id)) {
                return Err(ConfigError::Value(format!("groups: {:?} uses a name or extension twice", group.name)));
            }
        }
        if let Some(bad) = self.locations.iter().find(|l| l.account.is_empty() || l.country.is_empty()) {
            return Err(ConfigError::Value(format!(
                "locations: each needs account (a username, or \"*\") and country (entry for {:?})",
                bad.account
            )));
        }
        Ok(())
    }
}
