//! The TOML configuration file.
//!
//! Every key has a default, so the server runs with no file at all. The documented default file
//! is [`DEFAULT_CONFIG`] (printed by `sambung config print-default`); a test keeps it equal to
//! [`Config::default`], and `docs/config.md` explains each key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

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
}

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Domain names served by this server (besides its own addresses).
    pub domains: Vec<String>,
    /// Directory for generated certificates and, later, the database.
    pub data_dir: PathBuf,
    pub log: LogConfig,
    pub listen: ListenConfig,
    pub tls: TlsConfig,
    pub limits: LimitsConfig,
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
}

impl LimitsConfig {
    /// [`LimitsConfig::idle_timeout`] as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            domains: Vec::new(),
            data_dir: PathBuf::from("./sambung-data"),
            log: LogConfig::default(),
            listen: ListenConfig::default(),
            tls: TlsConfig::default(),
            limits: LimitsConfig::default(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: "info".into(), format: LogFormat::Text }
    }
}

impl Default for ListenConfig {
    fn default() -> Self {
        let any = |port: u16| vec![SocketAddr::from(([0, 0, 0, 0], port))];
        ListenConfig { udp: any(5060), tcp: any(5060), tls: any(5061), ws: any(5066), wss: any(7443) }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig { max_message_size: 65535, max_connections: 10_000, idle_timeout: 600 }
    }
}

/// The largest `max_message_size` accepted: SIP messages are small, and each stream connection
/// may buffer this much.
pub const MAX_MESSAGE_SIZE_CEILING: usize = 16 * 1024 * 1024;

impl Config {
    /// Reads `path`, or returns the defaults when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let config = Config::parse(&text)
            .map_err(|source| ConfigError::Parse { path: path.to_owned(), source: Box::new(source) })?;
        config.validate()?;
        Ok(config)
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
        Ok(())
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
