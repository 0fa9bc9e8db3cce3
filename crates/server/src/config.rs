//! The TOML configuration file.
//!
//! Every key has a default, so the server runs with no file at all. The documented default file
//! is [`DEFAULT_CONFIG`] (printed by `sambung config print-default`); a test keeps it equal to
//! [`Config::default`], and `docs/config.md` explains each key.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use crate::guard::{FraudConfig, GuardConfig};
pub use menus::{MenuEntry, ParkingConfig, QueueEntry, RecordingConfig};
pub use outside::{DialplanConfig, DnsConfig, GroupEntry, LocationEntry, TrunkEntry};

mod menus;
mod outside;

/// The default configuration file, every key with a comment.
pub const DEFAULT_CONFIG: &str = include_str!("default-config.toml");

/// Errors while reading or checking the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config file {path}: {source}")]
    Parse { path: PathBuf, source: Box<toml::de::Error> },
    #[error("invalid configuration: {0}")]
    Invalid(&'static str),
    #[error("invalid configuration: media.codecs: unknown codec {0:?} (known: opus, G722, PCMU, PCMA)")]
    Codec(String),
    #[error("invalid configuration: {0}")]
    Value(String),
}

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Domain names served by this server (besides its own addresses).
    pub domains: Vec<String>,
    /// The digest authentication realm (RFC 3261 §22.1). Unset: the first of [`Config::domains`],
    /// else `"sambung"`; [`Config::load`] fills it in, and [`Config::realm`] resolves it anywhere.
    pub realm: Option<String>,
    /// Directory for generated certificates, the server secret and the SQLite database.
    pub data_dir: PathBuf,
    pub log: LogConfig,
    pub listen: ListenConfig,
    pub tls: TlsConfig,
    pub limits: LimitsConfig,
    pub database: DatabaseConfig,
    pub registrar: RegistrarConfig,
    pub media: MediaConfig,
    pub calls: CallsConfig,
    pub voicemail: VoicemailConfig,
    pub email: EmailConfig,
    pub guard: GuardConfig,
    pub fraud: FraudConfig,
    pub web: WebConfig,
    pub dns: DnsConfig,
    pub dialplan: DialplanConfig,
    /// `[[trunks]]`: the carriers calls to phone numbers go out through.
    pub trunks: Vec<TrunkEntry>,
    /// `[[locations]]`: civic addresses sent with emergency calls.
    pub locations: Vec<LocationEntry>,
    /// `[[groups]]`: ring groups.
    pub groups: Vec<GroupEntry>,
    /// `[[menus]]`: the auto-attendant's menus.
    pub menus: Vec<MenuEntry>,
    /// `[[queues]]`: call queues.
    pub queues: Vec<QueueEntry>,
    /// `[parking]`: parking slots.
    pub parking: ParkingConfig,
    /// `[recording]`: recorded calls.
    pub recording: RecordingConfig,
}

/// The realm used when neither `realm` nor `domains` is configured.
pub const FALLBACK_REALM: &str = "sambung";

/// The SQLite file name inside the data directory.
pub const DATABASE_FILE: &str = "sambung.db";

/// `[database]`: where accounts, registrations, messages and call records are kept.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://...`. Unset: `sqlite://<data_dir>/sambung.db`;
    /// [`Config::load`] fills it in, and [`Config::database_url`] resolves it anywhere.
    pub url: Option<String>,
    /// Most connections in the pool.
    pub max_connections: u32,
}

/// `[registrar]`: limits on the registration interval (RFC 3261 §10.3), in seconds.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrarConfig {
    /// Shortest accepted interval; a shorter non-zero one is answered `423 Interval Too Brief`.
    pub min_expires: u32,
    /// Longest interval; a longer one is shortened to this.
    pub max_expires: u32,
    /// Interval when the request gives none.
    pub default_expires: u32,
    /// Digest algorithms offered in challenges, in order (RFC 8760): `MD5`, `SHA-256`.
    pub digest_algorithms: Vec<String>,
}

/// `[media]`: the RTP relay.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Lowest UDP port for RTP (RTCP uses the next one).
    pub rtp_port_min: u16,
    /// Highest UDP port for RTP.
    pub rtp_port_max: u16,
    /// The IP written into SDP and bound for RTP. Unset: the local IP the signalling arrived on.
    pub address: Option<IpAddr>,
    /// Whether unencrypted RTP (RTP/AVP without SRTP) is accepted.
    pub allow_plain_rtp: bool,
    /// The codecs the engine may transcode to, in order of preference: `opus`, `G722`,
    /// `PCMU`, `PCMA`. Empty: never transcode.
    pub codecs: Vec<String>,
    /// What a held party hears: `""` the built-in music, `"off"` nothing, else an 8000 Hz mono
    /// 16-bit WAV file.
    pub music_on_hold: String,
}

impl MediaConfig {
    /// The music on hold to play, `None` when off; the error names a file that cannot be used.
    pub fn music(&self) -> Result<Option<crate::media::Music>, crate::media::MusicError> {
        match self.music_on_hold.as_str() {
            "off" => Ok(None),
            "" => Ok(Some(crate::media::Music::built_in())),
            path => crate::media::Music::load(Path::new(path)).map(Some),
        }
    }

    /// [`Self::codecs`] as codec kinds (names checked by [`Config::validate`]).
    pub fn codec_preferences(&self) -> Vec<sambung_media::codec::CodecKind> {
        self.codecs.iter().filter_map(|name| codec_by_name(name)).collect()
    }
}

fn codec_by_name(name: &str) -> Option<sambung_media::codec::CodecKind> {
    sambung_media::codec::CodecKind::ALL.into_iter().find(|kind| kind.encoding_name().eq_ignore_ascii_case(name))
}

/// `[calls]`: call control timers, in seconds.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallsConfig {
    /// How long a callee may ring before the call is given up (`408`/`480` to the caller).
    pub ring_timeout: u64,
    /// Session refresh interval requested and accepted (RFC 4028 `Session-Expires`).
    pub session_expires: u32,
    /// Smallest session interval accepted (RFC 4028 `Min-SE`, at least 90).
    pub min_se: u32,
}

impl CallsConfig {
    /// [`CallsConfig::ring_timeout`] as a duration.
    pub fn ring_timeout(&self) -> Duration {
        Duration::from_secs(self.ring_timeout)
    }
}

/// `[voicemail]`: the mailboxes.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VoicemailConfig {
    /// Longest message, in seconds; the recording stops there.
    pub max_message_seconds: u32,
    /// Number anyone may dial to reach any mailbox with its number and PIN (besides `*97`, which
    /// opens the caller's own mailbox). Empty: only `*97`.
    pub access_number: String,
    /// Longest greeting an account may record, in seconds.
    pub max_greeting_seconds: u32,
}

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP (only for a relay on the same host or network).
    None,
    /// Plain connection upgraded with STARTTLS (RFC 3207), refused if the server lacks it.
    #[default]
    Starttls,
    /// TLS from the first byte (RFC 8314 implicit TLS, usually port 465).
    Tls,
}

/// `[email]`: the SMTP server that voicemail emails are sent through.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP server host name or IP. Unset: no email is sent.
    pub server: Option<String>,
    /// SMTP port.
    pub port: u16,
    pub tls: SmtpTls,
    /// Credentials for SMTP AUTH (PLAIN or LOGIN), when the server wants them.
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sender address (`From:` and the envelope).
    pub from: String,
    /// Seconds one delivery attempt may take.
    pub timeout_seconds: u64,
    /// Attempts before a message is given up.
    pub max_attempts: u32,
    /// Seconds before the first retry; each retry waits twice as long as the last, up to an hour.
    pub retry_seconds: u64,
}

/// `[log]`: level and format of the structured logs.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A level or an `EnvFilter` directive.
    pub level: String,
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[listen]`: the addresses of each transport; an empty list disables the transport.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenConfig {
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
    pub tls: Vec<SocketAddr>,
    pub ws: Vec<SocketAddr>,
    pub wss: Vec<SocketAddr>,
}

impl ListenConfig {
    /// Every configured address, all transports together.
    pub fn all(&self) -> impl Iterator<Item = &SocketAddr> {
        self.udp.iter().chain(&self.tcp).chain(&self.tls).chain(&self.ws).chain(&self.wss)
    }
}

/// `[tls]`: the certificate for TLS and WSS; generated when unset.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub certificate: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key: Option<PathBuf>,
    /// PEM certificates trusted for outgoing TLS besides the system's roots (a carrier's
    /// private CA).
    pub trusted_ca: Option<PathBuf>,
}

/// `[limits]`: resource limits against misbehaving peers.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest SIP message in bytes.
    pub max_message_size: usize,
    /// Most stream connections (TCP, TLS, WS, WSS together).
    pub max_connections: usize,
    /// Seconds of silence after which a stream connection is closed.
    pub idle_timeout: u64,
    /// Call-control shards, each on a task of its own (0: one per core).
    pub shards: usize,
}

impl LimitsConfig {
    /// [`LimitsConfig::idle_timeout`] as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout)
    }

    /// How many call-control shards to run: [`LimitsConfig::shards`], or one per core.
    pub fn shard_count(&self) -> usize {
        match self.shards {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            domains: Vec::new(),
            realm: None,
            data_dir: PathBuf::from("./sambung-data"),
            log: LogConfig::default(),
            listen: ListenConfig::default(),
            tls: TlsConfig::default(),
            limits: LimitsConfig::default(),
            database: DatabaseConfig::default(),
            registrar: RegistrarConfig::default(),
            media: MediaConfig::default(),
            calls: CallsConfig::default(),
            voicemail: VoicemailConfig::default(),
            email: EmailConfig::default(),
            guard: GuardConfig::default(),
            fraud: FraudConfig::default(),
            web: WebConfig::default(),
            dns: DnsConfig::default(),
            dialplan: DialplanConfig::default(),
            trunks: Vec::new(),
            locations: Vec::new(),
            groups: Vec::new(),
            menus: Vec::new(),
            queues: Vec::new(),
            parking: ParkingConfig::default(),
            recording: RecordingConfig::default(),
        }
    }
}

/// `[web]`: the web app and its HTTP API, served on the secure WebSocket listeners.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Serve the app and the API (SIP over secure WebSocket is served either way).
    pub enabled: bool,
    /// Who may make an account in the app.
    pub signup: Signup,
    /// Days a sign-in lasts without being used (each use extends it).
    pub session_days: u32,
    /// Sign-ups one source address may make per hour (0: no limit).
    pub signups_per_hour: u32,
    /// Failed sign-ins one source address may make per 10 minutes before it must wait
    /// (0: no limit).
    pub sign_in_failures: u32,
    /// Days an invitation to sign up stays valid.
    pub invitation_days: u32,
    /// `/metrics` answers anyone (a scraper on a private network); otherwise only an
    /// administrator's API token or session.
    pub public_metrics: bool,
    /// Requests one API token may make per minute (0: no limit).
    pub token_requests_per_minute: u32,
}

/// `[web] signup`: who may make an account in the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signup {
    /// Anyone.
    Open,
    /// Whoever holds an invitation made by an administrator.
    Invite,
    /// Nobody: accounts are made by administrators (CLI or app).
    Closed,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            enabled: true,
            signup: Signup::Open,
            session_days: 14,
            signups_per_hour: 5,
            sign_in_failures: 10,
            invitation_days: 7,
            public_metrics: false,
            token_requests_per_minute: 600,
        }
    }
}

impl Default for VoicemailConfig {
    fn default() -> Self {
        VoicemailConfig { max_message_seconds: 180, access_number: String::new(), max_greeting_seconds: 60 }
    }
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            server: None,
            port: 587,
            tls: SmtpTls::Starttls,
            username: None,
            password: None,
            from: "Sambung Voicemail <voicemail@localhost>".into(),
            timeout_seconds: 30,
            max_attempts: 8,
            retry_seconds: 30,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig { url: None, max_connections: 8 }
    }
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            digest_algorithms: vec!["MD5".into()],
        }
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            rtp_port_min: 10_000,
            rtp_port_max: 20_000,
            address: None,
            allow_plain_rtp: true,
            codecs: ["opus", "G722", "PCMU", "PCMA"].map(String::from).to_vec(),
            music_on_hold: String::new(),
        }
    }
}

impl Default for CallsConfig {
    fn default() -> Self {
        CallsConfig { ring_timeout: 60, session_expires: 1800, min_se: 90 }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: "info".into(), format: LogFormat::Text }
    }
}

impl Default for ListenConfig {
    /// Every IPv4 and every IPv6 address, on each transport's usual port. Where the machine has
    /// no IPv6, the `[::]` of a list left at its default is skipped at start.
    fn default() -> Self {
        let any = |port: u16| vec![SocketAddr::from(([0, 0, 0, 0], port)), SocketAddr::from(([0u16; 8], port))];
        ListenConfig { udp: any(5060), tcp: any(5060), tls: any(5061), ws: any(5066), wss: any(7443) }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig { max_message_size: 65535, max_connections: 10_000, idle_timeout: 600, shards: 0 }
    }
}

/// The largest `max_message_size` accepted: SIP messages are small, and each stream connection
/// may buffer this much.
pub const MAX_MESSAGE_SIZE_CEILING: usize = 16 * 1024 * 1024;

impl Config {
    /// Reads `path`, or returns the defaults when `path` is `None`; checks the values and fills in
    /// the derived defaults ([`Config::realm`], [`DatabaseConfig::url`]).
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match path {
            None => Config::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
                Config::parse(&text)
                    .map_err(|source| ConfigError::Parse { path: path.to_owned(), source: Box::new(source) })?
            }
        };
        config.validate()?;
        config.resolve();
        Ok(config)
    }

    /// Fills in the keys whose default depends on other keys: `realm` and `database.url`.
    pub fn resolve(&mut self) {
        self.realm = Some(self.realm().to_owned());
        self.database.url = Some(self.database_url());
    }

    /// The digest realm: `realm`, else the first of `domains`, else [`FALLBACK_REALM`].
    /// What call control runs with.
    pub fn pbx(&self) -> sambung_pbx::PbxConfig {
        sambung_pbx::PbxConfig {
            domains: self.domains.clone(),
            realm: self.realm().to_owned(),
            listen: self.listen.all().copied().collect(),
            registrar: sambung_pbx::registrar::RegistrarConfig {
                min_expires: self.registrar.min_expires,
                max_expires: self.registrar.max_expires,
                default_expires: self.registrar.default_expires,
            },
            digest_algorithms: self.registrar.digest_algorithms.iter().filter_map(|a| a.parse().ok()).collect(),
            media_address: self.media.address,
            allow_plain_rtp: self.media.allow_plain_rtp,
            codecs: self.media.codec_preferences(),
            ring_timeout: self.calls.ring_timeout(),
            session_expires: self.calls.session_expires,
            min_se: self.calls.min_se,
            access_number: self.voicemail.access_number.clone(),
            guard: self.guard.pbx(&self.fraud),
            // Set by the runtime from the relay's identity, made at start.
            webrtc_fingerprint: None,
            trunks: self.trunks_for_pbx(),
            groups: self.groups_for_pbx(),
            menus: self.menus_for_pbx(),
            parking: self.parking.range().ok().flatten(),
            record_accounts: self.recording.accounts.iter().map(|a| a.to_ascii_lowercase()).collect(),
            record_groups: self.recording.groups.iter().map(|g| g.to_ascii_lowercase()).collect(),
            record_notice: self.recording.notice,
        }
    }

    pub fn realm(&self) -> &str {
        self.realm.as_deref().or(self.domains.first().map(String::as_str)).unwrap_or(FALLBACK_REALM)
    }

    /// The database URL: `database.url`, else `sqlite://<data_dir>/sambung.db`.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.clone(),
            None => {
                // The driver percent-decodes the path and splits parameters at `?`.
                let path = self.data_dir.join(DATABASE_FILE).display().to_string();
                format!("sqlite://{}", path.replace('%', "%25").replace('?', "%3F").replace('#', "%23"))
            }
        }
    }

    /// Parses TOML text without checking the values.
    pub fn parse(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let limits = &self.limits;
        if limits.max_message_size < 1024 || limits.max_message_size > MAX_MESSAGE_SIZE_CEILING {
            return Err(ConfigError::Invalid("limits.max_message_size must be between 1024 and 16777216"));
        }
        if limits.shards > 256 {
            return Err(ConfigError::Invalid("limits.shards must be at most 256 (0: one per core)"));
        }
        if limits.max_connections == 0 {
            return Err(ConfigError::Invalid("limits.max_connections must be at least 1"));
        }
        if limits.idle_timeout == 0 {
            return Err(ConfigError::Invalid("limits.idle_timeout must be at least 1 second"));
        }
        if self.tls.certificate.is_some() != self.tls.private_key.is_some() {
            return Err(ConfigError::Invalid("tls.certificate and tls.private_key must be set together"));
        }
        if self.domains.iter().any(|d| d.is_empty() || d.contains(|c: char| c.is_whitespace())) {
            return Err(ConfigError::Invalid("domains must be non-empty host names without spaces"));
        }
        if self.realm.as_ref().is_some_and(|r| r.is_empty() || r.contains(['"', '\\', '\r', '\n'])) {
            return Err(ConfigError::Invalid("realm must be non-empty, without quotes, backslashes or line breaks"));
        }
        self.validate_sections()
    }

    fn validate_sections(&self) -> Result<(), ConfigError> {
        if self.web.session_days == 0 || self.web.session_days > 365 {
            return Err(ConfigError::Invalid("web.session_days must be between 1 and 365"));
        }
        if self.web.invitation_days == 0 || self.web.invitation_days > 365 {
            return Err(ConfigError::Invalid("web.invitation_days must be between 1 and 365"));
        }
        if let Some(bad) = self.media.codecs.iter().find(|name| codec_by_name(name).is_none()) {
            return Err(ConfigError::Codec(bad.clone()));
        }
        let algorithms = &self.registrar.digest_algorithms;
        if algorithms.is_empty()
            || algorithms.iter().any(|a| !matches!(a.to_ascii_uppercase().as_str(), "MD5" | "SHA-256"))
        {
            return Err(ConfigError::Invalid("registrar.digest_algorithms: list \"MD5\" and/or \"SHA-256\""));
        }
        if let Some(url) = &self.database.url
            && !["sqlite:", "postgres://", "postgresql://"].iter().any(|p| url.starts_with(p))
        {
            return Err(ConfigError::Invalid("database.url must start with sqlite:, postgres:// or postgresql://"));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::Invalid("database.max_connections must be at least 1"));
        }
        let r = &self.registrar;
        if r.min_expires == 0 || r.min_expires > r.default_expires || r.default_expires > r.max_expires {
            return Err(ConfigError::Invalid(
                "registrar: 1 <= min_expires <= default_expires <= max_expires must hold",
            ));
        }
        let m = &self.media;
        if m.rtp_port_min < 1024 || m.rtp_port_min >= m.rtp_port_max {
            return Err(ConfigError::Invalid("media: 1024 <= rtp_port_min < rtp_port_max must hold"));
        }
        if m.address.is_some_and(|a| a.is_unspecified()) {
            return Err(ConfigError::Invalid("media.address must be a concrete IP, not 0.0.0.0 or ::"));
        }
        let c = &self.calls;
        if c.ring_timeout == 0 {
            return Err(ConfigError::Invalid("calls.ring_timeout must be at least 1 second"));
        }
        if c.min_se < 90 || c.session_expires < c.min_se {
            return Err(ConfigError::Invalid("calls: 90 <= min_se <= session_expires must hold (RFC 4028)"));
        }
        let v = &self.voicemail;
        if v.max_message_seconds < 5 || v.max_greeting_seconds < 5 {
            return Err(ConfigError::Invalid(
                "voicemail: max_message_seconds and max_greeting_seconds must be at least 5",
            ));
        }
        if !v.access_number.chars().all(|c| c.is_ascii_digit() || c == '*' || c == '#') {
            return Err(ConfigError::Invalid("voicemail.access_number may hold only digits, * and #"));
        }
        let e = &self.email;
        if e.server.as_ref().is_some_and(|s| s.is_empty()) || e.port == 0 {
            return Err(ConfigError::Invalid("email: server must be a host name and port non-zero"));
        }
        if e.username.is_some() != e.password.is_some() {
            return Err(ConfigError::Invalid("email.username and email.password must be set together"));
        }
        if e.max_attempts == 0 || e.timeout_seconds == 0 || e.retry_seconds == 0 {
            return Err(ConfigError::Invalid(
                "email: max_attempts, timeout_seconds and retry_seconds must be at least 1",
            ));
        }
        if !e.from.contains('@') {
            return Err(ConfigError::Invalid("email.from must be an address"));
        }
        if !matches!(self.media.music_on_hold.as_str(), "" | "off") {
            self.media.music().map_err(|e| ConfigError::Value(format!("media.music_on_hold: {e}")))?;
        }
        self.validate_trunks()?;
        self.validate_menus()?;
        self.guard.validate(&self.fraud).map_err(ConfigError::Value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_default_equals_built_in_default() {
        let parsed = Config::parse(DEFAULT_CONFIG).expect("default config parses");
        assert_eq!(parsed, Config::default());
        parsed.validate().expect("default config is valid");
    }

    #[test]
    fn empty_file_is_the_default() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(Config::parse("[limits]\nmax_conections = 3\n").is_err());
    }

    #[test]
    fn empty_list_disables_a_transport() {
        let c = Config::parse("[listen]\nudp = []\ntcp = [\"127.0.0.1:5070\", \"[::1]:5070\"]\n").unwrap();
        assert!(c.listen.udp.is_empty());
        assert_eq!(c.listen.tcp.len(), 2);
        assert_eq!(c.listen.tls, Config::default().listen.tls);
    }

    #[test]
    fn half_a_certificate_is_invalid() {
        let c = Config::parse("[tls]\ncertificate = \"a.pem\"\n").unwrap();
        assert!(c.validate().is_err());
    }

    #[test]
    fn realm_defaults_to_first_domain() {
        assert_eq!(Config::default().realm(), FALLBACK_REALM);
        let c = Config::parse("domains = [\"a.example\", \"b.example\"]\n").unwrap();
        assert_eq!(c.realm(), "a.example");
        let c = Config::parse("realm = \"r\"\ndomains = [\"a.example\"]\n").unwrap();
        assert_eq!(c.realm(), "r");
    }

    #[test]
    fn database_url_defaults_into_data_dir() {
        let c = Config::parse("data_dir = \"/var/lib/sambung\"\n").unwrap();
        assert_eq!(c.database_url(), "sqlite:///var/lib/sambung/sambung.db");
        let c = Config::parse("data_dir = \"/tmp/a b?c%d\"\n").unwrap();
        assert_eq!(c.database_url(), "sqlite:///tmp/a b%3Fc%25d/sambung.db");
        let c = Config::parse("[database]\nurl = \"postgres://u@h/db\"\n").unwrap();
        assert_eq!(c.database_url(), "postgres://u@h/db");
    }

    #[test]
    fn load_resolves_derived_defaults() {
        let dir = std::env::temp_dir().join(format!("sambung-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "domains = [\"x.example\"]\ndata_dir = \"/d\"\n[media]\naddress = \"127.0.0.1\"\n")
            .unwrap();
        let c = Config::load(Some(&file)).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(c.realm.as_deref(), Some("x.example"));
        assert_eq!(c.database.url.as_deref(), Some("sqlite:///d/sambung.db"));
        assert_eq!(c.media.address, Some(IpAddr::from([127, 0, 0, 1])));
    }

    #[test]
    fn inconsistent_sections_are_invalid() {
        for text in [
            "[registrar]\nmin_expires = 4000\n",
            "[registrar]\ndefault_expires = 7200\n",
            "[media]\nrtp_port_min = 30000\n",
            "[media]\naddress = \"0.0.0.0\"\n",
            "[calls]\nmin_se = 60\n",
            "[calls]\nring_timeout = 0\n",
            "[database]\nurl = \"mysql://x\"\n",
            "[database]\nmax_connections = 0\n",
            "realm = \"\"\n",
        ] {
            let c = Config::parse(text).unwrap();
            assert!(c.validate().is_err(), "{text}");
        }
    }

    /// docs/config.md documents every key of the default file.
    #[test]
    fn docs_mention_every_key() {
        let docs = include_str!("../../../docs/config.md");
        for line in DEFAULT_CONFIG.lines() {
            let line = line.trim_start_matches("# ");
            if let Some((key, _)) = line.split_once(" = ")
                && !key.starts_with('#')
                && !key.contains(' ')
            {
                assert!(docs.contains(&format!("`{key}`")), "docs/config.md lacks `{key}`");
            }
        }
    }
}
