//! `sambung ban ...`: the guard's bans and lockouts on the server's database. A running server
//! picks up changes within a second.

use std::io::Write as _;
use std::net::IpAddr;

use sambung_pbx::guard::source_key;
use sambung_store::{Ban, LockoutKind, OpenMode, Store, StoreError};

use super::settings::{SettingsError, block_on};
use super::table::{render, utc};
use super::{BanArgs, BanCommand};
use crate::config::Config;
use crate::persist::unix_now;

/// What can go wrong; each has its exit code (see [`super::BAN_EXIT_CODES`]).
#[derive(Debug, thiserror::Error)]
pub enum BanError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("{0:?} is not an IP address (a ban names one address; for IPv6 it covers the address's /64)")]
    BadAddress(String),
    #[error("{0} is not banned")]
    NotBanned(String),
    #[error("account {0} is not locked")]
    NotLocked(String),
}

impl From<StoreError> for BanError {
    fn from(e: StoreError) -> BanError {
        BanError::Settings(e.into())
    }
}

impl From<crate::config::ConfigError> for BanError {
    fn from(e: crate::config::ConfigError) -> BanError {
        BanError::Settings(e.into())
    }
}

impl BanError {
    pub fn exit_code(&self) -> i32 {
        match self {
            BanError::Settings(e) => e.exit_code(),
            BanError::BadAddress(_) => 2,
            BanError::NotBanned(_) | BanError::NotLocked(_) => 3,
        }
    }
}

/// Runs one `sambung ban` command, printing its result on standard output.
pub fn run(args: BanArgs) -> Result<(), BanError> {
    let config = Config::load(args.config.as_deref())?;
    let text = block_on(async { Ok(execute(&config, args.command).await) })?;
    let text = text?;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(())
}

/// The address a ban is kept under: the address itself, or its /64 for IPv6.
fn address(text: &str) -> Result<IpAddr, BanError> {
    text.trim().parse::<IpAddr>().map(source_key).map_err(|_| BanError::BadAddress(text.to_owned()))
}

async fn execute(config: &Config, command: BanCommand) -> Result<String, BanError> {
    // Check the input before opening anything.
    let target = match &command {
        BanCommand::Add { address: a, .. } | BanCommand::Remove { address: a } => Some(address(a)?),
        BanCommand::List | BanCommand::Unlock { .. } => None,
    };
    let mode = OpenMode { create_if_missing: false, max_connections: 2 };
    let store = Store::open_with(&config.database_url(), mode).await?;
    let result = execute_on(&store, command, target).await;
    store.close().await;
    result
}

async fn execute_on(store: &Store, command: BanCommand, target: Option<IpAddr>) -> Result<String, BanError> {
    let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
    match (command, target) {
        (BanCommand::List, _) => list(store, now).await,
        (BanCommand::Add { seconds, reason, .. }, Some(ip)) => {
            let until_at = seconds.map(|s| now.saturating_add(i64::try_from(s).unwrap_or(i64::MAX)));
            let ban = Ban {
                address: ip.to_string(),
                until_at,
                reason: reason.unwrap_or_default(),
                manual: true,
                created_at: now,
            };
            store.put_ban(&ban).await?;
            Ok(match until_at {
                Some(at) => format!("banned {ip} until {}\n", utc(at)),
                None => format!("banned {ip} until removed\n"),
            })
        }
        (BanCommand::Remove { .. }, Some(ip)) => {
            if store.remove_ban(&ip.to_string()).await? {
                Ok(format!("ban on {ip} removed\n"))
            } else {
                Err(BanError::NotBanned(ip.to_string()))
            }
        }
        (BanCommand::Unlock { username, pin }, _) => {
            let username = username.to_lowercase();
            let removed = if pin {
                // A PIN lockout is kept by account id.
                match store.account_by_username(&username).await? {
                    Some(account) => store.remove_lockout(LockoutKind::Pin, &account.id.to_string()).await?,
                    None => return Err(StoreError::UnknownUser(username).into()),
                }
            } else {
                store.remove_lockout(LockoutKind::Account, &username).await?
            };
            match (removed, pin) {
                (true, false) => Ok(format!("account {username} unlocked\n")),
                (true, true) => Ok(format!("voicemail PIN of {username} unlocked\n")),
                (false, _) => Err(BanError::NotLocked(username)),
            }
        }
        (BanCommand::Add { .. } | BanCommand::Remove { .. }, None) => unreachable!("checked before"),
    }
}

async fn list(store: &Store, now: i64) -> Result<String, BanError> {
    let bans = store.list_bans(now).await?;
    let lockouts = store.list_lockouts(now).await?;
    let mut out = String::new();
    if bans.is_empty() {
        out.push_str("no bans\n");
    } else {
        let mut rows = vec![["address", "until", "by", "reason"].map(String::from).to_vec()];
        for ban in &bans {
            rows.push(vec![
                ban.address.clone(),
                ban.until_at.map_or_else(|| "removed by hand".to_owned(), utc),
                if ban.manual { "operator" } else { "guard" }.to_owned(),
                ban.reason.clone(),
            ]);
        }
        out.push_str(&render(&rows));
    }
    if !lockouts.is_empty() {
        out.push('\n');
        let mut rows = vec![["locked", "who", "until"].map(String::from).to_vec()];
        for lockout in &lockouts {
            let who = match lockout.kind {
                LockoutKind::Account => lockout.subject.clone(),
                LockoutKind::Pin => format!("account id {}", lockout.subject),
            };
            let kind = match lockout.kind {
                LockoutKind::Account => "account",
                LockoutKind::Pin => "voicemail PIN",
            };
            rows.push(vec![kind.to_owned(), who, utc(lockout.until_at)]);
        }
        out.push_str(&render(&rows));
    }
    Ok(out)
}
