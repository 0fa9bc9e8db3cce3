//! Toll fraud: per-account limits on concurrent calls, calls per minute, and the outside
//! destinations an account's calls may reach. A call past a limit is refused with 403 and a
//! reason phrase that says which, logged as an alert, and announced as
//! [`crate::Event::FraudRefused`].

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use sambung_sip::Uri;

use super::Recent;

/// What the limits are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FraudConfig {
    /// Calls one account may have going at once as the caller (0: no limit).
    pub max_concurrent_calls: u32,
    /// Calls one account may place per minute (0: no limit).
    pub max_calls_per_minute: u32,
    /// Outside destinations calls may reach (empty: none).
    pub outside: Vec<Destination>,
}

impl Default for FraudConfig {
    fn default() -> FraudConfig {
        FraudConfig { max_concurrent_calls: 10, max_calls_per_minute: 30, outside: Vec::new() }
    }
}

/// Which limit a call ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FraudLimit {
    Concurrent,
    PerMinute,
    Destination,
}

impl FraudLimit {
    /// The answer the caller gets.
    pub fn status(self) -> (u16, &'static str) {
        match self {
            FraudLimit::Concurrent => (403, "Too Many Calls"),
            FraudLimit::PerMinute => (403, "Call Rate Exceeded"),
            FraudLimit::Destination => (403, "Destination Not Allowed"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FraudLimit::Concurrent => "concurrent calls",
            FraudLimit::PerMinute => "calls per minute",
            FraudLimit::Destination => "outside destination",
        }
    }
}

/// An outside destination calls may reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// `*`: anywhere.
    Any,
    /// A number prefix (`+49`, `0049`): the URI's user part starts with it.
    Prefix(String),
    /// `*.example.com`: any host in that domain.
    Domain(String),
    /// One host: a name or an address.
    Host(String),
}

/// Why a destination did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a destination: use \"*\", a number prefix like \"+49\", a host, or \"*.example.com\"")]
pub struct DestinationError(pub String);

impl FromStr for Destination {
    type Err = DestinationError;

    fn from_str(text: &str) -> Result<Destination, DestinationError> {
        let text = text.trim();
        let error = || DestinationError(text.to_owned());
        if text == "*" {
            return Ok(Destination::Any);
        }
        let number = text.strip_prefix('+').unwrap_or(text);
        if !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit())
            && (text.starts_with('+') || !text.contains('.'))
        {
            return Ok(Destination::Prefix(text.to_owned()));
        }
        let host_ok = |h: &str| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
        if let Some(domain) = text.strip_prefix("*.") {
            return if host_ok(domain) { Ok(Destination::Domain(domain.to_ascii_lowercase())) } else { Err(error()) };
        }
        if host_ok(text) {
            Ok(Destination::Host(text.trim_matches(['[', ']']).to_ascii_lowercase()))
        } else {
            Err(error())
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Any => f.write_str("*"),
            Destination::Prefix(p) => f.write_str(p),
            Destination::Domain(d) => write!(f, "*.{d}"),
            Destination::Host(h) => f.write_str(h),
        }
    }
}

impl Destination {
    /// True when `uri` is within this destination.
    pub fn allows(&self, uri: &Uri) -> bool {
        let Some(sip) = uri.as_sip() else { return matches!(self, Destination::Any) };
        match self {
            Destination::Any => true,
            Destination::Prefix(prefix) => {
                let user = sip.user_unescaped().unwrap_or_default();
                // Visual separators of a dialled number do not count (RFC 3966 §5.1.1).
                let digits: String = user.chars().filter(|c| !matches!(c, '-' | '.' | '(' | ')' | ' ')).collect();
                digits.starts_with(prefix.as_str())
            }
            Destination::Domain(domain) => {
                let host = sip.host.as_str().to_ascii_lowercase();
                host.strip_suffix(domain.as_str()).is_some_and(|rest| rest.ends_with('.'))
            }
            Destination::Host(host) => sip.host.as_str().trim_matches(['[', ']']).eq_ignore_ascii_case(host),
        }
    }
}

/// The counts the limits are checked against.
#[derive(Debug, Default)]
pub(crate) struct Fraud {
    /// Calls each account has going as the caller.
    active: HashMap<i64, u32>,
    /// Each account's recent calls.
    recent: HashMap<i64, Recent>,
    next_sweep: Option<Instant>,
}

impl Fraud {
    /// Accounts counted as having a call going (0 with no call in progress; the recent calls
    /// of the last minute are bounded by their sweep).
    pub(crate) fn retained(&self) -> usize {
        self.active.len()
    }

    /// May `account` place one more call? On `Ok` the call counts as placed and active (until
    /// [`Fraud::ended`]).
    pub(crate) fn place(&mut self, config: &FraudConfig, account: i64, now: Instant) -> Result<(), FraudLimit> {
        self.sweep(now);
        let active = self.active.get(&account).copied().unwrap_or(0);
        if config.max_concurrent_calls > 0 && active >= config.max_concurrent_calls {
            return Err(FraudLimit::Concurrent);
        }
        if config.max_calls_per_minute > 0 {
            let recent = self.recent.entry(account).or_default();
            let minute = Duration::from_secs(60);
            while recent.0.front().is_some_and(|t| now.saturating_duration_since(*t) >= minute) {
                recent.0.pop_front();
            }
            if recent.0.len() >= config.max_calls_per_minute as usize {
                return Err(FraudLimit::PerMinute);
            }
            recent.0.push_back(now);
        }
        *self.active.entry(account).or_insert(0) += 1;
        Ok(())
    }

    /// A call [`Fraud::place`] let through is over.
    pub(crate) fn ended(&mut self, account: i64) {
        if let Some(n) = self.active.get_mut(&account) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.active.remove(&account);
            }
        }
    }

    fn sweep(&mut self, now: Instant) {
        if self.next_sweep.is_some_and(|at| now < at) {
            return;
        }
        self.next_sweep = Some(now + Duration::from_secs(60));
        self.recent
            .retain(|_, r| r.0.back().is_some_and(|t| now.saturating_duration_since(*t) < Duration::from_secs(60)));
    }
}

/// True when `config` lets calls reach `uri`.
pub fn outside_allowed(config: &FraudConfig, uri: &Uri) -> bool {
    config.outside.iter().any(|d| d.allows(uri))
}

/// True when `config` lets calls go straight to the SIP URI `uri` (another domain's server, a
/// forwarding target): a host, a domain or `*` must allow it. A number prefix does not: numbers
/// go out through the trunks ([`number_allowed`]), and a prefix must not open every host.
pub fn uri_allowed(config: &FraudConfig, uri: &Uri) -> bool {
    config.outside.iter().any(|d| !matches!(d, Destination::Prefix(_)) && d.allows(uri))
}

/// True when `config` lets calls reach the phone number `e164` (`+442079460000`) through a
/// trunk: `*`, or a number prefix (`+44`, or the same written `0044` or `44`).
pub fn number_allowed(config: &FraudConfig, e164: &str) -> bool {
    let digits = e164.trim_start_matches('+');
    config.outside.iter().any(|d| match d {
        Destination::Any => true,
        Destination::Prefix(prefix) => {
            let prefix = prefix.strip_prefix('+').or_else(|| prefix.strip_prefix("00")).unwrap_or(prefix);
            digits.starts_with(prefix)
        }
        Destination::Domain(_) | Destination::Host(_) => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> Uri {
        Uri::parse(text).unwrap()
    }

    #[test]
    fn numbers_need_a_prefix_and_uris_a_host() {
        let config = |list: &[&str]| FraudConfig {
            outside: list.iter().map(|d| d.parse().unwrap()).collect(),
            ..FraudConfig::default()
        };
        let uk = config(&["+44", "carrier.example"]);
        assert!(number_allowed(&uk, "+442079460000"));
        assert!(!number_allowed(&uk, "+14155550100"));
        assert!(number_allowed(&config(&["0044"]), "+442079460000"));
        assert!(number_allowed(&config(&["*"]), "+14155550100"));
        // A prefix opens no host to direct calls; a host does.
        assert!(!uri_allowed(&uk, &uri("sip:+442079460000@10.0.0.5")));
        assert!(uri_allowed(&uk, &uri("sip:anyone@carrier.example")));
        assert!(!number_allowed(&config(&["carrier.example"]), "+442079460000"));
    }

    #[test]
    fn destinations() {
        let d = |t: &str| t.parse::<Destination>().unwrap();
        assert_eq!(d("+49"), Destination::Prefix("+49".into()));
        assert_eq!(d("0049"), Destination::Prefix("0049".into()));
        assert_eq!(d("192.0.2.7"), Destination::Host("192.0.2.7".into()));
        assert_eq!(d("*.Example.com"), Destination::Domain("example.com".into()));
        assert!(d("+49").allows(&uri("sip:+49-30-1234@carrier.example")));
        assert!(!d("+49").allows(&uri("sip:+1900555@carrier.example")));
        assert!(d("0049").allows(&uri("sip:00493012@192.0.2.1")));
        assert!(d("192.0.2.7").allows(&uri("sip:x@192.0.2.7:5099")));
        assert!(!d("192.0.2.7").allows(&uri("sip:x@192.0.2.8")));
        assert!(d("*.example.com").allows(&uri("sip:x@pbx.example.com")));
        assert!(!d("*.example.com").allows(&uri("sip:x@badexample.com")));
        assert!(d("*").allows(&uri("sip:anything@anywhere.example")));
        for bad in ["", "*.", "a b", "sip:x@y"] {
            assert!(bad.parse::<Destination>().is_err(), "{bad}");
        }
        let config = FraudConfig { outside: vec![d("192.0.2.7")], ..FraudConfig::default() };
        assert!(outside_allowed(&config, &uri("sip:x@192.0.2.7")));
        assert!(!outside_allowed(&FraudConfig::default(), &uri("sip:x@192.0.2.7")), "none by default");
    }

    #[test]
    fn concurrent_and_per_minute_limits() {
        let t0 = sambung_testkit::Clock::new().now();
        let config = FraudConfig { max_concurrent_calls: 2, max_calls_per_minute: 3, outside: Vec::new() };
        let mut fraud = Fraud::default();
        assert_eq!(fraud.place(&config, 1, t0), Ok(()));
        assert_eq!(fraud.place(&config, 1, t0), Ok(()));
        assert_eq!(fraud.place(&config, 1, t0), Err(FraudLimit::Concurrent));
        assert_eq!(fraud.place(&config, 2, t0), Ok(()), "another account has its own");
        fraud.ended(1);
        assert_eq!(fraud.place(&config, 1, t0), Ok(()));
        fraud.ended(1);
        fraud.ended(1);
        assert_eq!(fraud.place(&config, 1, t0 + Duration::from_secs(30)), Err(FraudLimit::PerMinute));
        assert_eq!(fraud.place(&config, 1, t0 + Duration::from_secs(61)), Ok(()));
        let unlimited = FraudConfig { max_concurrent_calls: 0, max_calls_per_minute: 0, outside: Vec::new() };
        for _ in 0..1000 {
            assert_eq!(fraud.place(&unlimited, 3, t0), Ok(()));
        }
    }
}
