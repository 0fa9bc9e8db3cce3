//! Carriers (SIP trunks), phone numbers and the dial plan.
//!
//! A *trunk* is a carrier's SIP server the operator configures: calls to phone numbers leave
//! through it, calls to the service's numbers (DIDs) come in from it. A trunk either takes a
//! registration from us (digest, refreshed: [`registration`]) or knows us by our address (IP
//! authentication: its calls are recognised by their source address).
//!
//! The *dial plan* turns what people dial (`020 7946 0000`, `00 44 20 ...`, `+44 20 ...`) into
//! E.164 (`+442079460000`), marks emergency numbers, and each trunk writes numbers in the form
//! its carrier expects ([`NumberFormat`]). Emergency numbers stay as dialled (`112`, `999`):
//! they are no E.164 numbers, and carriers route them by the caller's location.

pub(crate) mod registration;

pub use registration::TrunkState;

use std::collections::HashMap;
use std::net::IpAddr;

use sambung_media::codec::CodecKind;
use sambung_sip::Uri;
use sambung_sip::transaction::Peer;

use crate::guard::net::IpNet;

/// How a trunk writes phone numbers in Request-URI, To, From and P-Asserted-Identity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NumberFormat {
    /// `+442079460000`.
    #[default]
    E164Plus,
    /// `442079460000`.
    E164,
    /// Numbers of the home country with the national prefix (`02079460000`), others with the
    /// international prefix (`0014155550100`).
    National,
}

impl NumberFormat {
    pub fn parse(text: &str) -> Option<NumberFormat> {
        match text.to_ascii_lowercase().as_str() {
            "e164" | "e.164" | "+e164" | "e164-plus" => Some(NumberFormat::E164Plus),
            "e164-no-plus" | "e164-digits" => Some(NumberFormat::E164),
            "national" => Some(NumberFormat::National),
            _ => None,
        }
    }
}

/// The registration lifetime asked of a carrier unless configured, seconds.
pub const DEFAULT_REGISTER_EXPIRES: u32 = 600;

/// A trunk's priority unless configured.
pub const DEFAULT_PRIORITY: u32 = 10;

/// One carrier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrunkConfig {
    /// The operator's name for it (`carrier-a`).
    pub name: String,
    /// The carrier's SIP server: `sip:sip.carrier.example`, `sips:...`, with `;transport=` and
    /// a port if the carrier needs them. A host name is resolved with RFC 3263 (NAPTR, SRV,
    /// A/AAAA), and failed over in that order.
    pub proxy: Uri,
    /// The domain written in Request-URI, To and From toward the carrier (default: the
    /// proxy's host).
    pub domain: Option<String>,
    /// Digest credentials: for the registration and for the carrier's challenges to calls.
    pub username: Option<String>,
    /// The digest user name when it differs from `username`.
    pub auth_username: Option<String>,
    pub password: Option<String>,
    /// Register with the carrier (needs `username` and `password`).
    pub register: bool,
    /// The registration's asked lifetime, seconds.
    pub register_expires: u32,
    /// Lower goes first; equal priorities keep the configured order.
    pub priority: u32,
    /// Destinations (E.164 prefixes with `+`) this trunk takes; empty: every number.
    pub prefixes: Vec<String>,
    /// Addresses the carrier's calls come from (IP authentication). The addresses its proxy
    /// name resolves to count too.
    pub inbound: Vec<IpNet>,
    pub number_format: NumberFormat,
    /// Send the caller's number in P-Asserted-Identity (RFC 3325) as well as in From.
    pub asserted_identity: bool,
    /// Codecs offered to this carrier, in order (empty: the server's `[media] codecs`).
    pub codecs: Vec<CodecKind>,
    /// Media to this carrier must be SRTP (SDES, RFC 4568).
    pub srtp: bool,
    /// This trunk carries emergency calls (tried first for them).
    pub emergency: bool,
}

impl TrunkConfig {
    /// A trunk with the usual settings: no registration, E.164 with `+`, priority 10.
    pub fn new(name: &str, proxy: Uri) -> TrunkConfig {
        TrunkConfig {
            name: name.to_owned(),
            proxy,
            domain: None,
            username: None,
            auth_username: None,
            password: None,
            register: false,
            register_expires: DEFAULT_REGISTER_EXPIRES,
            priority: DEFAULT_PRIORITY,
            prefixes: Vec::new(),
            inbound: Vec::new(),
            number_format: NumberFormat::E164Plus,
            asserted_identity: true,
            codecs: Vec::new(),
            srtp: false,
            emergency: false,
        }
    }

    /// The domain written toward the carrier.
    pub fn domain(&self) -> String {
        match (&self.domain, &self.proxy) {
            (Some(domain), _) => domain.clone(),
            (None, Uri::Sip(sip)) => match sip.port {
                Some(port) => format!("{}:{port}", sip.host.as_str()),
                None => sip.host.as_str().to_owned(),
            },
            (None, other) => other.to_string(),
        }
    }

    /// The digest user name.
    pub fn auth_user(&self) -> Option<&str> {
        self.auth_username.as_deref().or(self.username.as_deref())
    }

    /// True when this trunk takes calls to `number`.
    pub fn serves(&self, number: &Number) -> bool {
        if number.emergency {
            return true;
        }
        self.prefixes.is_empty() || self.prefixes.iter().any(|p| number.digits.starts_with(p.as_str()))
    }

    /// `number` as this carrier wants it written.
    pub fn format(&self, number: &Number, plan: &DialPlan) -> String {
        if number.emergency {
            return number.digits.clone();
        }
        let digits = number.digits.trim_start_matches('+');
        match self.number_format {
            NumberFormat::E164Plus => format!("+{digits}"),
            NumberFormat::E164 => digits.to_owned(),
            NumberFormat::National => match digits.strip_prefix(plan.country_code.as_str()) {
                Some(national) if !plan.country_code.is_empty() => format!("{}{national}", plan.national_prefix),
                _ => format!("{}{digits}", plan.international_prefix),
            },
        }
    }

    /// True when a request from `source` is this carrier's (IP authentication).
    pub fn sent_from(&self, source: IpAddr, resolved: &[IpAddr]) -> bool {
        self.inbound.iter().any(|net| net.contains(source)) || resolved.contains(&source)
    }
}

/// A civic address (RFC 5139) for emergency calls, sent in a PIDF-LO (RFC 4119) with the
/// Geolocation header (RFC 6442).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CivicAddress {
    /// ISO 3166 country code (`GB`).
    pub country: String,
    /// Region, county, city, district (A1, A2, A3, A4).
    pub a1: String,
    pub a2: String,
    pub a3: String,
    pub a4: String,
    /// Street (RD), house number (HNO), postal code (PC), floor (FLR), room (ROOM), name (NAM).
    pub road: String,
    pub house_number: String,
    pub postal_code: String,
    pub floor: String,
    pub room: String,
    pub name: String,
}

impl CivicAddress {
    /// The PIDF-LO document for `entity` (RFC 4119, RFC 5139, RFC 5491 §3.4).
    pub fn pidf_lo(&self, entity: &str, id: &str) -> String {
        let mut civic = String::new();
        for (tag, value) in [
            ("country", &self.country),
            ("A1", &self.a1),
            ("A2", &self.a2),
            ("A3", &self.a3),
            ("A4", &self.a4),
            ("RD", &self.road),
            ("HNO", &self.house_number),
            ("PC", &self.postal_code),
            ("FLR", &self.floor),
            ("ROOM", &self.room),
            ("NAM", &self.name),
        ] {
            if !value.is_empty() {
                civic.push_str(&format!("<ca:{tag}>{}</ca:{tag}>", xml_escape(value)));
            }
        }
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
             <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
             xmlns:gp=\"urn:ietf:params:xml:ns:pidf:geopriv10\" \
             xmlns:ca=\"urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr\" \
             xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" entity=\"{entity}\">\r\n\
             <dm:device id=\"{id}\"><gp:geopriv><gp:location-info>\
             <ca:civicAddress>{civic}</ca:civicAddress>\
             </gp:location-info><gp:usage-rules/>\
             <gp:method>Manual</gp:method></gp:geopriv></dm:device>\r\n</presence>\r\n",
            entity = xml_escape(entity),
            id = xml_escape(id),
        )
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// How dialled numbers are read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialPlan {
    /// The home country's calling code, digits only (`44`); empty: national numbers are not
    /// recognised (only `+` and the international prefix).
    pub country_code: String,
    /// What starts a national number (`0`).
    pub national_prefix: String,
    /// What starts an international number (`00`).
    pub international_prefix: String,
    /// The home area code without the national prefix (`20`); with it, a local number (5 to
    /// 8 digits, no prefix) is read as a number of this area. Empty: local numbers are not
    /// recognised.
    pub area_code: String,
    /// Emergency numbers (`112`, `999`, `911`): always go out, past every limit.
    pub emergency: Vec<String>,
    /// The civic address sent with an account's emergency calls, by username.
    pub locations: HashMap<String, CivicAddress>,
    /// The address sent for accounts without one of their own.
    pub default_location: Option<CivicAddress>,
}

impl Default for DialPlan {
    fn default() -> DialPlan {
        DialPlan {
            country_code: String::new(),
            national_prefix: "0".to_owned(),
            international_prefix: "00".to_owned(),
            area_code: String::new(),
            emergency: vec!["112".to_owned(), "911".to_owned(), "999".to_owned()],
            locations: HashMap::new(),
            default_location: None,
        }
    }
}

/// A phone number read by the dial plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Number {
    /// E.164 with `+` (`+442079460000`), or the emergency number as dialled.
    pub digits: String,
    pub emergency: bool,
}

impl DialPlan {
    /// What a dialled user part means as a phone number: `None` when it is none (a name, too
    /// short, letters).
    pub fn read(&self, dialled: &str) -> Option<Number> {
        // Visual separators (RFC 3966 §5.1.1) go.
        let cleaned: String = dialled.chars().filter(|c| !matches!(c, '-' | '.' | ' ' | '(' | ')')).collect();
        let (plus, digits) = match cleaned.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, cleaned.as_str()),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if !plus && self.emergency.iter().any(|e| e == digits) {
            return Some(Number { digits: digits.to_owned(), emergency: true });
        }
        let e164 = if plus {
            digits.to_owned()
        } else if !self.international_prefix.is_empty() && digits.starts_with(&self.international_prefix) {
            digits[self.international_prefix.len()..].to_owned()
        } else if !self.country_code.is_empty()
            && !self.national_prefix.is_empty()
            && digits.starts_with(&self.national_prefix)
        {
            format!("{}{}", self.country_code, &digits[self.national_prefix.len()..])
        } else if !self.country_code.is_empty()
            && self.national_prefix.is_empty()
            && digits.starts_with(&self.country_code)
            && digits.len() >= self.country_code.len() + 10
        {
            // Where no national prefix exists, the country code may start a national number
            // (`1 415 555 0100` in North America).
            digits.to_owned()
        } else if !self.country_code.is_empty() && !self.area_code.is_empty() && (5..=8).contains(&digits.len()) {
            // A local number: this area's.
            format!("{}{}{digits}", self.country_code, self.area_code)
        } else if !self.country_code.is_empty() && self.national_prefix.is_empty() && digits.len() >= 7 {
            // Countries without a national prefix dial national numbers as they are.
            format!("{}{digits}", self.country_code)
        } else {
            return None;
        };
        // E.164: a country code and at most 15 digits in all (ITU-T E.164 §6); very short
        // ones are service codes, not numbers.
        if !(7..=15).contains(&e164.len()) || e164.starts_with('0') {
            return None;
        }
        Some(Number { digits: format!("+{e164}"), emergency: false })
    }

    /// The civic address for `username`'s emergency calls.
    pub fn location_of(&self, username: &str) -> Option<&CivicAddress> {
        self.locations.get(username).or(self.default_location.as_ref())
    }
}

/// The trunks, in the order calls try them, and the dial plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trunks {
    pub trunks: Vec<TrunkConfig>,
    pub plan: DialPlan,
}

impl Trunks {
    /// The trunks a call to `number` tries, in order: by priority (emergency trunks first for
    /// emergency numbers), then as configured.
    pub fn candidates(&self, number: &Number) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.trunks.len()).filter(|&i| self.trunks[i].serves(number)).collect();
        order.sort_by_key(|&i| {
            let trunk = &self.trunks[i];
            (number.emergency && !trunk.emergency, trunk.priority, i)
        });
        order
    }

    pub fn is_empty(&self) -> bool {
        self.trunks.is_empty()
    }
}

/// The transport a SIP URI asks for: its `transport` parameter, TLS for `sips:`; `None`: RFC
/// 3263 picks. `Err` for one we cannot speak as a client (WebSocket, SCTP).
fn uri_transport(sip: &sambung_sip::SipUri) -> Result<Option<sambung_dns::Transport>, ()> {
    match sip.params.value("transport").map(str::to_ascii_lowercase).as_deref() {
        None if sip.secure => Ok(Some(sambung_dns::Transport::Tls)),
        None => Ok(None),
        Some("udp") if !sip.secure => Ok(Some(sambung_dns::Transport::Udp)),
        Some("tcp") if sip.secure => Ok(Some(sambung_dns::Transport::Tls)),
        Some("tcp") => Ok(Some(sambung_dns::Transport::Tcp)),
        Some("tls") => Ok(Some(sambung_dns::Transport::Tls)),
        _ => Err(()),
    }
}

/// What to look up for a `sip:`/`sips:` URI (RFC 3263 §4); `None` for another scheme or a
/// transport we cannot open.
pub(crate) fn query_of(uri: &Uri) -> Option<sambung_dns::Query> {
    let sip = uri.as_sip()?;
    let transport = uri_transport(sip).ok()?;
    // A `maddr` names the server to use instead of the host (RFC 3261 §19.1.1).
    let host = sip.params.value("maddr").map(str::to_owned).unwrap_or_else(|| sip.host.as_str().to_owned());
    Some(sambung_dns::Query { host, port: sip.port, transport, secure: sip.secure })
}

/// Where an IP-literal URI is reached, without any lookup: `None` for a host name (or a URI
/// that is not SIP, or a transport we cannot open).
pub(crate) fn literal_peers(uri: &Uri) -> Option<Vec<Peer>> {
    let sip = uri.as_sip()?;
    let ip = match sip.params.value("maddr").map(|m| m.parse::<IpAddr>()) {
        Some(Ok(ip)) => ip,
        Some(Err(_)) => return None,
        None => match sip.host.ip() {
            Some(ip) => ip,
            None if sip.host.as_str().eq_ignore_ascii_case("localhost") => std::net::Ipv4Addr::LOCALHOST.into(),
            None => return None,
        },
    };
    let transport = uri_transport(sip).ok()?.unwrap_or(sambung_dns::Transport::Udp);
    let port = sip.port.unwrap_or(if transport == sambung_dns::Transport::Tls { 5061 } else { 5060 });
    Some(vec![Peer { transport: sip_transport(transport), addr: std::net::SocketAddr::new(ip, port), flow: None }])
}

/// The peers a lookup found, in its order.
pub(crate) fn peers_of(targets: &[sambung_dns::Target]) -> Vec<Peer> {
    targets.iter().map(|t| Peer { transport: sip_transport(t.transport), addr: t.addr, flow: None }).collect()
}

fn sip_transport(transport: sambung_dns::Transport) -> sambung_sip::Transport {
    match transport {
        sambung_dns::Transport::Udp => sambung_sip::Transport::Udp,
        sambung_dns::Transport::Tcp => sambung_sip::Transport::Tcp,
        sambung_dns::Transport::Tls => sambung_sip::Transport::Tls,
    }
}

/// A user part as a SIP URI writes it (RFC 3261 §25.1 `user`: unreserved characters and
/// user-unreserved ones as they are, the rest escaped).
pub(crate) fn escape_user(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    for b in user.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uk() -> DialPlan {
        DialPlan { country_code: "44".into(), ..DialPlan::default() }
    }

    fn number(digits: &str) -> Number {
        Number { digits: digits.into(), emergency: false }
    }

    #[test]
    fn dialled_numbers_become_e164() {
        let plan = uk();
        assert_eq!(plan.read("020 7946 0000"), Some(number("+442079460000")));
        assert_eq!(plan.read("00442079460000"), Some(number("+442079460000")));
        assert_eq!(plan.read("+1-415-555-0100"), Some(number("+14155550100")));
        assert_eq!(plan.read("(020) 7946.0000"), Some(number("+442079460000")));
        assert_eq!(plan.read("112"), Some(Number { digits: "112".into(), emergency: true }));
        assert_eq!(plan.read("999"), Some(Number { digits: "999".into(), emergency: true }));
        // Names, extensions, service codes and too long numbers are not phone numbers.
        assert_eq!(plan.read("alice"), None);
        assert_eq!(plan.read("1001"), None);
        assert_eq!(plan.read("*97"), None);
        assert_eq!(plan.read("+1234567890123456"), None);
        assert_eq!(plan.read("+"), None);
        // Without a home country, only international forms are numbers.
        let plain = DialPlan::default();
        assert_eq!(plain.read("02079460000"), None);
        assert_eq!(plain.read("00442079460000"), Some(number("+442079460000")));
        // A country without a national prefix.
        let nanp = DialPlan {
            country_code: "1".into(),
            national_prefix: String::new(),
            international_prefix: "011".into(),
            ..DialPlan::default()
        };
        assert_eq!(nanp.read("4155550100"), Some(number("+14155550100")));
        assert_eq!(nanp.read("011442079460000"), Some(number("+442079460000")));
        // Local numbers, with a home area.
        let london = DialPlan { area_code: "20".into(), ..uk() };
        assert_eq!(london.read("7946 0000"), Some(number("+442079460000")));
        assert_eq!(london.read("020 7946 0000"), Some(number("+442079460000")));
        assert_eq!(london.read("1001"), None, "an extension is no local number");
        let sf = DialPlan { area_code: "415".into(), ..nanp };
        assert_eq!(sf.read("5550100"), Some(number("+14155550100")));
        assert_eq!(sf.read("4155550100"), Some(number("+14155550100")));
        assert_eq!(sf.read("14155550100"), Some(number("+14155550100")));
    }

    #[test]
    fn trunks_write_numbers_their_way() {
        let plan = uk();
        let mut trunk = TrunkConfig::new("a", Uri::parse("sip:127.0.0.1:5090").unwrap());
        let london = number("+442079460000");
        let sf = number("+14155550100");
        assert_eq!(trunk.format(&london, &plan), "+442079460000");
        trunk.number_format = NumberFormat::E164;
        assert_eq!(trunk.format(&london, &plan), "442079460000");
        trunk.number_format = NumberFormat::National;
        assert_eq!(trunk.format(&london, &plan), "02079460000");
        assert_eq!(trunk.format(&sf, &plan), "0014155550100");
        assert_eq!(trunk.format(&Number { digits: "112".into(), emergency: true }, &plan), "112");
        assert_eq!(trunk.domain(), "127.0.0.1:5090");
    }

    #[test]
    fn candidates_follow_priority_prefixes_and_emergency() {
        let mut a = TrunkConfig::new("a", Uri::parse("sip:127.0.0.1:5090").unwrap());
        a.priority = 20;
        let mut b = TrunkConfig::new("b", Uri::parse("sip:127.0.0.2:5090").unwrap());
        b.priority = 10;
        b.prefixes = vec!["+44".into()];
        let mut c = TrunkConfig::new("c", Uri::parse("sip:127.0.0.3:5090").unwrap());
        c.priority = 30;
        c.emergency = true;
        let trunks = Trunks { trunks: vec![a, b, c], plan: uk() };
        assert_eq!(trunks.candidates(&number("+442079460000")), vec![1, 0, 2]);
        assert_eq!(trunks.candidates(&number("+14155550100")), vec![0, 2]);
        assert_eq!(trunks.candidates(&Number { digits: "112".into(), emergency: true }), vec![2, 1, 0]);
    }

    #[test]
    fn pidf_lo_carries_the_civic_address() {
        let civic = CivicAddress {
            country: "GB".into(),
            a3: "London".into(),
            road: "Whitehall".into(),
            house_number: "10".into(),
            name: "A & B".into(),
            ..CivicAddress::default()
        };
        let doc = civic.pidf_lo("pres:alice@example.com", "alice");
        assert!(doc.contains("<ca:country>GB</ca:country><ca:A3>London</ca:A3><ca:RD>Whitehall</ca:RD><ca:HNO>10</ca:HNO><ca:NAM>A &amp; B</ca:NAM>"));
        assert!(doc.contains("entity=\"pres:alice@example.com\""));
        assert!(!doc.contains("<ca:A1>"));
    }
}
