//! `sambung number ...`: the service's phone numbers and the accounts they ring, and
//! `sambung trunk list`: the configured carriers with their registration state. Both work on
//! the server's database; a running server routes to a changed number within a second.

use std::io::Write as _;

use sambung_store::{OpenMode, Store, StoreError};

use super::settings::{SettingsError, block_on};
use super::table::{render, utc};
use super::{NumberArgs, NumberCommand, TrunkArgs, TrunkCommand};
use crate::config::Config;

/// What can go wrong; each has its exit code (see [`super::NUMBER_EXIT_CODES`]).
#[derive(Debug, thiserror::Error)]
pub enum NumberError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("the service has no number {0}")]
    NoSuchNumber(String),
    #[error("no ring group {0:?} in the configuration ([[groups]])")]
    NoSuchGroup(String),
    #[error("no menu {0:?} in the configuration ([[menus]])")]
    NoSuchMenu(String),
}

impl From<StoreError> for NumberError {
    fn from(e: StoreError) -> NumberError {
        NumberError::Settings(e.into())
    }
}

impl From<crate::config::ConfigError> for NumberError {
    fn from(e: crate::config::ConfigError) -> NumberError {
        NumberError::Settings(e.into())
    }
}

impl NumberError {
    pub fn exit_code(&self) -> i32 {
        match self {
            NumberError::Settings(e) => e.exit_code(),
            NumberError::NoSuchNumber(_) | NumberError::NoSuchGroup(_) | NumberError::NoSuchMenu(_) => 3,
        }
    }
}

/// Runs one `sambung number` command, printing its result on standard output.
pub fn run(args: NumberArgs) -> Result<(), NumberError> {
    let config = Config::load(args.config.as_deref())?;
    let text = block_on(async { Ok(execute(&config, args.command).await) })??;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(())
}

/// A number as typed (`+44 20 7946 0000`, `0044...`, or national with `[dialplan]
/// country_code`), as it is kept: E.164 with `+`.
fn e164(config: &Config, text: &str) -> Result<String, NumberError> {
    let plan = config.trunks_for_pbx().plan;
    match plan.read(text) {
        Some(number) if !number.emergency => Ok(number.digits),
        _ => Err(StoreError::Invalid {
            field: "number",
            reason: "use E.164 with '+': '+' and 7 to 15 digits, e.g. +442079460000",
        }
        .into()),
    }
}

async fn execute(config: &Config, command: NumberCommand) -> Result<String, NumberError> {
    let number = match &command {
        NumberCommand::Add { number, .. } | NumberCommand::Remove { number } => Some(e164(config, number)?),
        NumberCommand::List => None,
    };
    let create = matches!(command, NumberCommand::Add { .. });
    let mode = OpenMode { create_if_missing: create, max_connections: 2 };
    let store = Store::open_with(&config.database_url(), mode).await?;
    let result = match (command, number) {
        (NumberCommand::Add { group: Some(group), .. }, Some(number)) => {
            let groups = config.pbx().groups;
            match groups.find(&group.to_ascii_lowercase()).map(|g| groups.groups[g].name.clone()) {
                Some(name) => store
                    .put_group_number(&number, &name)
                    .await
                    .map_err(NumberError::from)
                    .map(|()| format!("{number} rings the group {name}\n")),
                None => Err(NumberError::NoSuchGroup(group)),
            }
        }
        (NumberCommand::Add { menu: Some(menu), .. }, Some(number)) => {
            // A menu's name is kept where a group's is: the two share one space of names.
            match config.menus_for_pbx().find(&menu.to_ascii_lowercase()).map(|m| m.name.clone()) {
                Some(name) => store
                    .put_group_number(&number, &name)
                    .await
                    .map_err(NumberError::from)
                    .map(|()| format!("{number} reaches the menu {name}\n")),
                None => Err(NumberError::NoSuchMenu(menu)),
            }
        }
        (NumberCommand::Add { account, .. }, Some(number)) => {
            let account = account.map(|a| a.to_lowercase());
            store.put_number(&number, account.as_deref()).await.map_err(NumberError::from).map(|()| match account {
                Some(account) => format!("{number} rings {account}\n"),
                None => format!("{number} added, not assigned\n"),
            })
        }
        (NumberCommand::Remove { .. }, Some(number)) => match store.remove_number(&number).await {
            Ok(true) => Ok(format!("{number} removed\n")),
            Ok(false) => Err(NumberError::NoSuchNumber(number)),
            Err(e) => Err(e.into()),
        },
        _ => list(config, &store).await,
    };
    store.close().await;
    result
}

async fn list(config: &Config, store: &Store) -> Result<String, NumberError> {
    let menus = config.menus_for_pbx();
    let numbers = store.list_numbers().await?;
    if numbers.is_empty() {
        return Ok("no numbers\n".to_owned());
    }
    let mut rows = vec![["number", "rings", "added"].map(String::from).to_vec()];
    for n in numbers {
        let rings = match (n.username, n.group_name) {
            (Some(user), _) => user,
            (None, Some(name)) if menus.find(&name).is_some() => format!("menu {name}"),
            (None, Some(group)) => format!("group {group}"),
            (None, None) => "-".to_owned(),
        };
        rows.push(vec![n.number, rings, utc(n.created_at)]);
    }
    Ok(render(&rows))
}

/// Runs `sambung trunk list`.
pub fn run_trunks(args: TrunkArgs) -> Result<(), NumberError> {
    let config = Config::load(args.config.as_deref())?;
    let TrunkCommand::List = args.command;
    if config.trunks.is_empty() {
        println!("no trunks configured ([[trunks]] in the configuration file)");
        return Ok(());
    }
    let states = block_on(async {
        let mode = OpenMode { create_if_missing: false, max_connections: 2 };
        // No database yet: the server never ran, so no state is known.
        let Ok(store) = Store::open_with(&config.database_url(), mode).await else { return Ok(Vec::new()) };
        let states = store.list_trunk_status().await;
        store.close().await;
        states.map_err(SettingsError::from)
    })?;
    let mut rows = vec![["trunk", "proxy", "priority", "registration", "since", "detail"].map(String::from).to_vec()];
    for trunk in &config.trunks {
        let state = states.iter().find(|s| s.name == trunk.name);
        let registration = match (trunk.register, state) {
            (false, _) => "not asked".to_owned(),
            (true, Some(s)) => s.state.clone(),
            (true, None) => "unknown".to_owned(),
        };
        rows.push(vec![
            trunk.name.clone(),
            trunk.proxy.clone(),
            trunk.priority.to_string(),
            registration,
            state.filter(|_| trunk.register).map_or_else(String::new, |s| utc(s.updated_at)),
            state.filter(|_| trunk.register).map_or_else(String::new, |s| s.detail.clone()),
        ]);
    }
    let _ = std::io::stdout().lock().write_all(render(&rows).as_bytes());
    Ok(())
}
