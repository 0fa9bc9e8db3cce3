//! What call control is configured with, and which hosts are ours.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use sambung_media::codec::CodecKind;
use sambung_sip::Host;
use sambung_sip::digest::Algorithm;

use crate::guard::GuardConfig;
use crate::registrar::RegistrarConfig;

/// Settings of call control (the server makes them from its configuration file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PbxConfig {
    /// The domains the server is responsible for (RFC 3261 §16.4), lower-case.
    pub domains: Vec<String>,
    /// The digest realm.
    pub realm: String,
    /// Every address the server listens on, any transport.
    pub listen: Vec<SocketAddr>,
    pub registrar: RegistrarConfig,
    /// Digest algorithms offered, in order of preference (RFC 8760 §2.4).
    pub digest_algorithms: Vec<Algorithm>,
    /// `[media] address`: written into SDP, and where the relay binds.
    pub media_address: Option<IpAddr>,
    /// `[media] allow_plain_rtp`: legs may use RTP without SRTP.
    pub allow_plain_rtp: bool,
    /// `[media] codecs`: what calls may be transcoded to, in order of preference.
    pub codecs: Vec<CodecKind>,
    /// How long the callee's devices ring before the call fails (or forwards).
    pub ring_timeout: Duration,
    /// Session timers (RFC 4028), seconds.
    pub session_expires: u32,
    pub min_se: u32,
    /// `[voicemail] access_number`: reaches any mailbox with its PIN (empty: none).
    pub access_number: String,
    /// `[guard]` and `[fraud]`: bans, lockouts and toll-fraud limits.
    pub guard: GuardConfig,
    /// The DTLS fingerprint (`sha-256 ...`) of the relay's WebRTC identity; `None`: browsers'
    /// WebRTC descriptions are refused (488).
    pub webrtc_fingerprint: Option<String>,
    /// `[[trunks]]` and `[dialplan]`: carriers, and how dialled numbers are read.
    pub trunks: crate::trunks::Trunks,
    /// `[[groups]]`: ring groups.
    pub groups: crate::groups::RingGroups,
    /// `[[menus]]`: the auto-attendant's menus.
    pub menus: crate::menus::Menus,
    /// `[parking] slots`: the parking slots, first and last (`701`-`720`); `None`: no parking.
    pub parking: Option<(u32, u32)>,
    /// `[recording]`: the accounts (usernames) whose calls, and the ring groups whose calls,
    /// are recorded.
    pub record_accounts: Vec<String>,
    pub record_groups: Vec<String>,
    /// `[recording] notice`: both parties hear that the call is recorded.
    pub record_notice: bool,
}

impl Default for PbxConfig {
    /// The server's defaults: no domain, realm `localhost`, every transport on its usual port.
    fn default() -> PbxConfig {
        PbxConfig {
            domains: Vec::new(),
            realm: "localhost".to_owned(),
            listen: [5060, 5061, 5066, 7443].map(|port| SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))).to_vec(),
            registrar: RegistrarConfig::default(),
            digest_algorithms: vec![Algorithm::Md5],
            media_address: None,
            allow_plain_rtp: true,
            codecs: vec![CodecKind::Opus, CodecKind::G722, CodecKind::Pcmu, CodecKind::Pcma],
            ring_timeout: Duration::from_secs(60),
            session_expires: 1800,
            min_se: 90,
            access_number: String::new(),
            guard: GuardConfig::default(),
            webrtc_fingerprint: None,
            trunks: crate::trunks::Trunks::default(),
            groups: crate::groups::RingGroups::default(),
            menus: crate::menus::Menus::default(),
            parking: None,
            record_accounts: Vec::new(),
            record_groups: Vec::new(),
            record_notice: false,
        }
    }
}

/// Which hosts are this server's (RFC 3261 §16.4: "the domain(s) the element is responsible for").
#[derive(Clone, Debug, Default)]
pub struct LocalDomains {
    /// Configured domain names, lower-case.
    names: Vec<String>,
    /// Addresses the server listens on explicitly.
    ips: Vec<IpAddr>,
    /// Listening on 0.0.0.0 / [::]: without enumerating interfaces any IP literal of that
    /// family may be ours, so it is taken as ours (no relaying is ever done for it).
    any_v4: bool,
    any_v6: bool,
    /// The ports the server listens on (any transport).
    ports: Vec<u16>,
}

impl LocalDomains {
    pub fn from_config(config: &PbxConfig) -> LocalDomains {
        // Without domains, the realm is the name people's addresses show (`sip:alice@REALM`,
        // as the web app writes them): it is ours too.
        let names = if config.domains.is_empty() {
            vec![config.realm.to_ascii_lowercase()]
        } else {
            config.domains.iter().map(|d| d.to_ascii_lowercase()).collect()
        };
        let mut local = LocalDomains { names, ..LocalDomains::default() };
        for addr in &config.listen {
            local.ports.push(addr.port());
            match addr.ip() {
                ip if ip.is_unspecified() && ip.is_ipv4() => local.any_v4 = true,
                ip if ip.is_unspecified() => local.any_v6 = true,
                ip => local.ips.push(ip),
            }
        }
        local
    }

    /// True when a URI's `host` and `port` name this server: the host is ours and the port is
    /// one we listen on (or none, the default).
    pub fn contains_address(&self, host: &Host, port: Option<u16>) -> bool {
        // A wildcard listener makes every IP possibly ours for requests that reach us, but a
        // target we are asked to call is ours only when it names us for sure.
        let ours = match host.ip() {
            Some(ip) => ip.is_loopback() || self.ips.contains(&ip),
            None => self.names.iter().any(|n| n.eq_ignore_ascii_case(host.as_str())),
        };
        ours && port.is_none_or(|p| self.ports.contains(&p))
    }

    /// True when `host` names this server: a configured domain, a listening address, the
    /// address the message arrived on, or a loopback address.
    pub fn contains(&self, host: &Host, arrived_on: IpAddr) -> bool {
        match host.ip() {
            Some(ip) => {
                ip == arrived_on
                    || ip.is_loopback()
                    || self.ips.contains(&ip)
                    || (ip.is_ipv4() && self.any_v4)
                    || (ip.is_ipv6() && self.any_v6)
            }
            None => self.names.iter().any(|n| n.eq_ignore_ascii_case(host.as_str())),
        }
    }
}

/// The host written into Via and Contact when a socket listens on a wildcard address: the
/// configured media address, else the first specific listening address, else the first domain.
pub(crate) fn advertised_host(config: &PbxConfig) -> Host {
    if let Some(ip) = config.media_address {
        return Host::from(ip);
    }
    if let Some(addr) = config.listen.iter().find(|a| !a.ip().is_unspecified()) {
        return Host::from(addr.ip());
    }
    match config.domains.first() {
        Some(domain) => Host::from(domain.as_str()),
        None => Host::from(IpAddr::from(Ipv4Addr::LOCALHOST)),
    }
}
