//! `sambung user ...`: account management on the server's database.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use sambung_store::{NewAccount, OpenMode, Store, StoreError, check_password, validate_username};

use super::table::{render, utc};
use super::{UserArgs, UserCommand};
use crate::config::{Config, ConfigError};

/// Errors of the `user` commands, each printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the passwords do not match")]
    Mismatch,
    #[error("no password given: standard input was empty")]
    NoPassword,
    #[error("cannot read the password: {0}")]
    Read(std::io::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot read {}: {source}", path.display())]
    File { path: std::path::PathBuf, source: std::io::Error },
    /// Lines of an import that were refused; nothing was imported.
    #[error("nothing imported:\n  {}", .0.join("\n  "))]
    Import(Vec<String>),
}

impl UserError {
    /// The process exit code (see [`super::USER_EXIT_CODES`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            UserError::Store(e) => match e {
                StoreError::WeakPassword(_)
                | StoreError::InvalidUsername(_)
                | StoreError::InvalidExtension(_)
                | StoreError::Invalid { .. } => 2,
                StoreError::UnknownUser(_) | StoreError::Missing(_) => 3,
                StoreError::UserExists(_) | StoreError::ExtensionTaken(_) => 4,
                StoreError::Locked => 5,
                _ => 1,
            },
            UserError::Mismatch | UserError::NoPassword | UserError::Import(_) => 2,
            UserError::File { .. } => 1,
            UserError::Config(_) | UserError::Read(_) | UserError::Runtime(_) => 1,
        }
    }
}

/// Runs one `sambung user` command, printing its result on standard output.
pub fn run(args: UserArgs) -> Result<(), UserError> {
    let config = Config::load(args.config.as_deref())?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(UserError::Runtime)?;
    let mut out = std::io::stdout().lock();
    let text = runtime.block_on(execute(&config, args.command))?;
    // A closed standard output (`| head`) is not worth an error.
    let _ = out.write_all(text.as_bytes());
    Ok(())
}

/// Runs `command` against the configured database and returns what to print.
async fn execute(config: &Config, command: UserCommand) -> Result<String, UserError> {
    let realm = config.realm().to_owned();
    match command {
        UserCommand::Add { username, password, display_name, email, extension, admin } => {
            validate_username(&username)?;
            if let Some(ext) = &extension {
                sambung_store::validate_extension(ext)?;
            }
            let store = open(config, true).await?;
            if store.account_by_username(&username).await?.is_some() {
                return Err(StoreError::UserExists(username).into());
            }
            let password = obtain_password(&username, password.password)?;
            let new = NewAccount { username, password, realm, display_name, email, extension, admin };
            let account = store.create_account(new).await?;
            store.close().await;
            let ext = account.extension.map(|x| format!(", extension {x}")).unwrap_or_default();
            let role = if account.admin { " (administrator)" } else { "" };
            Ok(format!("added user {}{ext}{role}\n", account.username))
        }
        UserCommand::Admin { username, revoke } => {
            validate_username(&username)?;
            let store = open(config, false).await?;
            store.set_admin(&username, !revoke).await?;
            store.close().await;
            Ok(if revoke {
                format!("{username} is no longer an administrator\n")
            } else {
                format!("{username} is an administrator\n")
            })
        }
        UserCommand::List => {
            let store = open(config, false).await?;
            let accounts = store.list_accounts().await?;
            let bindings = store.all_bindings().await?;
            store.close().await;
            let now = unix_now();
            let mut rows = vec![
                ["USERNAME", "EXTENSION", "DISPLAY NAME", "EMAIL", "DISABLED", "DEVICES"].map(String::from).to_vec(),
            ];
            for a in accounts {
                let devices = bindings.iter().filter(|b| b.account_id == a.id && b.expires_at > now).count();
                rows.push(vec![
                    a.username,
                    a.extension.unwrap_or_else(|| "-".into()),
                    a.display_name,
                    a.email.unwrap_or_else(|| "-".into()),
                    if a.disabled { "yes" } else { "no" }.into(),
                    devices.to_string(),
                ]);
            }
            Ok(render(&rows))
        }
        UserCommand::Show { username } => {
            validate_username(&username)?;
            let store = open(config, false).await?;
            let account = store.account_by_username(&username).await?.ok_or(StoreError::UnknownUser(username))?;
            let bindings = store.bindings(account.id).await?;
            store.close().await;
            Ok(show(&account, &bindings, unix_now()))
        }
        UserCommand::Passwd { username, password } => {
            validate_username(&username)?;
            let store = open(config, false).await?;
            if store.account_by_username(&username).await?.is_none() {
                return Err(StoreError::UnknownUser(username).into());
            }
            let password = obtain_password(&username, password.password)?;
            store.set_password(&username, &password, &realm).await?;
            store.close().await;
            Ok(format!("changed the password of {username} (realm {realm})\n"))
        }
        UserCommand::Import { file } => import(config, &realm, &file).await,
        UserCommand::Disable { username } => set_disabled(config, username, true).await,
        UserCommand::Enable { username } => set_disabled(config, username, false).await,
        UserCommand::Delete { username } => {
            validate_username(&username)?;
            let store = open(config, false).await?;
            store.delete_account(&username).await?;
            store.close().await;
            Ok(format!("deleted user {username}\n"))
        }
    }
}

/// `user import FILE`: every line checked, then all created at once, or none.
async fn import(config: &Config, realm: &str, file: &std::path::Path) -> Result<String, UserError> {
    let text = if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut text).map_err(UserError::Read)?;
        text
    } else {
        std::fs::read_to_string(file).map_err(|source| UserError::File { path: file.to_owned(), source })?
    };
    let accounts = super::import::parse(&text, realm).map_err(UserError::Import)?;
    let store = open(config, true).await?;
    let started = std::time::Instant::now();
    let outcome = store.import_accounts(accounts).await;
    store.close().await;
    match outcome? {
        Ok(count) => Ok(format!("imported {count} accounts in {:.1} s\n", started.elapsed().as_secs_f64())),
        Err(rows) => Err(UserError::Import(
            rows.into_iter().map(|r| format!("row {} ({}): {}", r.row, r.username, r.error)).collect(),
        )),
    }
}

async fn set_disabled(config: &Config, username: String, disabled: bool) -> Result<String, UserError> {
    validate_username(&username)?;
    let store = open(config, false).await?;
    store.set_disabled(&username, disabled).await?;
    store.close().await;
    Ok(format!("{} user {username}\n", if disabled { "disabled" } else { "enabled" }))
}

/// Opens the configured database; only `user add` may create it.
async fn open(config: &Config, create: bool) -> Result<Store, StoreError> {
    let mode = OpenMode { create_if_missing: create, max_connections: 2 };
    Store::open_with(&config.database_url(), mode).await
}

/// The `--password` value, else two prompts on the terminal, else one line of standard input.
/// The policy is checked before the second prompt, so a weak password is refused at once.
fn obtain_password(username: &str, given: Option<String>) -> Result<String, UserError> {
    if let Some(password) = given {
        return Ok(password);
    }
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {username}: ")).map_err(UserError::Read)?;
        check_password(username, &first).map_err(StoreError::from)?;
        let second = rpassword::prompt_password("Repeat the password: ").map_err(UserError::Read)?;
        return if first == second { Ok(first) } else { Err(UserError::Mismatch) };
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(UserError::Read)?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if line.is_empty() {
        return Err(UserError::NoPassword);
    }
    Ok(password.to_owned())
}

/// The text of `user show`.
fn show(a: &sambung_store::Account, bindings: &[sambung_store::Binding], now: i64) -> String {
    let none = || "-".to_owned();
    let mut rows = vec![
        vec!["username:".into(), a.username.clone()],
        vec!["display name:".into(), a.display_name.clone()],
        vec!["email:".into(), a.email.clone().unwrap_or_else(none)],
        vec!["extension:".into(), a.extension.clone().unwrap_or_else(none)],
        vec!["realm:".into(), a.realm.clone()],
        vec!["disabled:".into(), if a.disabled { "yes" } else { "no" }.into()],
        vec!["administrator:".into(), if a.admin { "yes" } else { "no" }.into()],
        vec!["created:".into(), utc(a.created_at)],
        vec!["updated:".into(), utc(a.updated_at)],
    ];
    let active: Vec<_> = bindings.iter().filter(|b| b.expires_at > now).collect();
    rows.push(vec!["devices:".into(), active.len().to_string()]);
    let mut text = render(&rows);
    if !active.is_empty() {
        let mut table = vec![["CONTACT", "FROM", "EXPIRES IN", "USER AGENT"].map(String::from).to_vec()];
        for b in active {
            table.push(vec![
                b.contact.clone(),
                b.received.clone(),
                format!("{}s", b.expires_at - now),
                b.user_agent.clone().unwrap_or_else(none),
            ]);
        }
        text.push('\n');
        text.push_str(&render(&table));
    }
    text
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
