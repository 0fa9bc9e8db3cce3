//! `sambung settings ...`: a user's call settings (forwarding, do not disturb, voicemail) on
//! the server's database.

use std::io::Write as _;

use sambung_store::{
    Account, CallSettings, OpenMode, Store, StoreError, validate_pin, validate_target, validate_username,
};

use super::table::render;
use super::{SettingsArgs, SettingsChanges, SettingsCommand, store_exit_code};
use crate::config::{Config, ConfigError};

/// Errors of the `settings` and `voicemail` commands, each printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `settings set` without any option.
    #[error("nothing to change: give at least one option (see `sambung settings set --help`)")]
    NothingToChange,
    /// A forwarding target of the wrong shape.
    #[error("{option}: {source}")]
    Target { option: &'static str, source: StoreError },
    /// A forwarding target that names no account.
    #[error("{option}: no user or extension {target:?} (use an existing username or extension, or a sip:/sips: URI)")]
    UnknownTarget { option: &'static str, target: String },
    /// A forwarding target with a scheme that is not a usable SIP or SIPS URI.
    #[error("{option}: {target:?} is not a valid sip:/sips: URI ({reason})")]
    BadUri { option: &'static str, target: String, reason: &'static str },
    /// A forwarding target that is the user itself.
    #[error("{option}: {username} cannot forward calls to {target:?}, which is {username} again")]
    SelfForward { option: &'static str, username: String, target: String },
    /// No message with this id in the user's mailbox.
    #[error("user {username} has no voicemail message {id}")]
    UnknownMessage { username: String, id: i64 },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: std::path::PathBuf, source: std::io::Error },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

impl SettingsError {
    /// The process exit code (see [`super::SETTINGS_EXIT_CODES`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            SettingsError::Store(e) => store_exit_code(e),
            SettingsError::Target { source, .. } => store_exit_code(source),
            SettingsError::NothingToChange | SettingsError::BadUri { .. } | SettingsError::SelfForward { .. } => 2,
            SettingsError::UnknownTarget { .. } | SettingsError::UnknownMessage { .. } => 3,
            SettingsError::Config(_) | SettingsError::Write { .. } | SettingsError::Runtime(_) => 1,
        }
    }
}

/// Runs one `sambung settings` command, printing its result on standard output.
pub fn run(args: SettingsArgs) -> Result<(), SettingsError> {
    let config = Config::load(args.config.as_deref())?;
    let text = block_on(execute(&config, args.command))?;
    // A closed standard output (`| head`) is not worth an error.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(())
}

/// Runs `future` on a single-threaded runtime.
pub(super) fn block_on<T>(future: impl Future<Output = Result<T, SettingsError>>) -> Result<T, SettingsError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(SettingsError::Runtime)?;
    runtime.block_on(future)
}

/// Opens the configured database, which must exist (`sambung user add` creates it), and finds
/// the account `username`.
pub(super) async fn open_account(config: &Config, username: String) -> Result<(Store, Account), SettingsError> {
    validate_username(&username)?;
    let mode = OpenMode { create_if_missing: false, max_connections: 2 };
    let store = Store::open_with(&config.database_url(), mode).await?;
    match store.account_by_username(&username).await? {
        Some(account) => Ok((store, account)),
        None => {
            store.close().await;
            Err(StoreError::UnknownUser(username).into())
        }
    }
}

async fn execute(config: &Config, command: SettingsCommand) -> Result<String, SettingsError> {
    match command {
        SettingsCommand::Show { username } => {
            let (store, account) = open_account(config, username).await?;
            let text = show(&store, &account).await;
            store.close().await;
            text
        }
        SettingsCommand::Set { username, changes } => {
            if changes.is_empty() {
                return Err(SettingsError::NothingToChange);
            }
            let (store, account) = open_account(config, username).await?;
            let result = set(&store, &account, changes).await;
            store.close().await;
            result
        }
    }
}

/// Applies `changes` to the stored settings. Everything is checked before anything is
/// written, so a refused option leaves the settings (and the PIN) as they were.
async fn set(store: &Store, account: &Account, changes: SettingsChanges) -> Result<String, SettingsError> {
    let current = store.call_settings(account.id).await?;
    let mut new = current.clone();
    let targets = [
        ("--forward-always", changes.forward_always, &mut new.forward_always),
        ("--forward-busy", changes.forward_busy, &mut new.forward_busy),
        ("--forward-no-answer", changes.forward_no_answer, &mut new.forward_no_answer),
        ("--forward-offline", changes.forward_offline, &mut new.forward_offline),
    ];
    for (option, given, field) in targets {
        if let Some(given) = given {
            *field = check_target(store, account, option, given).await?;
        }
    }
    if let Some(secs) = changes.no_answer_seconds {
        new.no_answer_secs = secs;
    }
    if let Some(dnd) = changes.dnd {
        new.dnd = dnd.is_on();
    }
    if let Some(voicemail) = changes.voicemail {
        new.voicemail = voicemail.is_on();
    }
    if let Some(email) = changes.voicemail_email {
        new.voicemail_email = (email != "none").then_some(email);
    }
    if let Some(attach) = changes.attach {
        new.voicemail_attach = attach.is_on();
    }
    if let Some(mailed) = changes.voice_messages_email {
        new.voice_messages_email = mailed.is_on();
    }
    new.validate()?;
    if let Some(pin) = &changes.pin {
        validate_pin(pin)?;
    }

    if new != current {
        store.set_call_settings(account.id, &new).await?;
    }
    if let Some(pin) = &changes.pin {
        store.set_voicemail_pin(account.id, pin).await?;
    }
    let mut text = format!("changed the call settings of {}\n\n", account.username);
    text.push_str(&show(store, account).await?);
    Ok(text)
}

impl SettingsChanges {
    /// Whether no option was given.
    fn is_empty(&self) -> bool {
        let SettingsChanges {
            forward_always,
            forward_busy,
            forward_no_answer,
            forward_offline,
            no_answer_seconds,
            dnd,
            voicemail,
            pin,
            voicemail_email,
            attach,
            voice_messages_email,
        } = self;
        [forward_always, forward_busy, forward_no_answer, forward_offline, pin, voicemail_email]
            .iter()
            .all(|o| o.is_none())
            && no_answer_seconds.is_none()
            && [dnd, voicemail, attach, voice_messages_email].iter().all(|o| o.is_none())
    }
}

/// Checks the forwarding target `given` of option `option`: `none` (no forwarding), a
/// `sip:`/`sips:` URI that parses, or the username or extension of another account. Usernames
/// are stored in lower case, as accounts are named.
pub(crate) async fn check_target(
    store: &Store,
    account: &Account,
    option: &'static str,
    given: String,
) -> Result<Option<String>, SettingsError> {
    if given == "none" {
        return Ok(None);
    }
    validate_target(&given).map_err(|source| SettingsError::Target { option, source })?;
    if let Some((scheme, _)) = given.split_once(':') {
        if !scheme.eq_ignore_ascii_case("sip") && !scheme.eq_ignore_ascii_case("sips") {
            return Err(SettingsError::BadUri { option, target: given, reason: "only sip: and sips: are supported" });
        }
        return match sambung_sip::Uri::parse(&given) {
            // The server reaches outside URIs over UDP only (no outgoing TCP or TLS yet).
            Ok(uri)
                if uri.as_sip().is_some_and(|sip| {
                    sip.secure || sip.params.value("transport").is_some_and(|t| !t.eq_ignore_ascii_case("udp"))
                }) =>
            {
                Err(SettingsError::BadUri {
                    option,
                    target: given,
                    reason: "only UDP targets can be called yet (no sips: or transport=tcp/tls)",
                })
            }
            Ok(_) => Ok(Some(given)),
            Err(reason) => Err(SettingsError::BadUri { option, target: given, reason }),
        };
    }
    let lower = given.to_ascii_lowercase();
    let (target, name) = match store.account_by_username(&lower).await? {
        Some(target) => (target, lower),
        None => match store.account_by_extension(&given).await? {
            Some(target) => (target, given),
            None => return Err(SettingsError::UnknownTarget { option, target: given }),
        },
    };
    if target.id == account.id {
        return Err(SettingsError::SelfForward { option, username: account.username.clone(), target: name });
    }
    Ok(Some(name))
}

/// The text of `settings show`: every setting, the PIN only as set or not.
async fn show(store: &Store, account: &Account) -> Result<String, SettingsError> {
    let settings = store.call_settings(account.id).await?;
    let greeting = store.greeting(account.id).await?;
    let (new, saved) = store.voicemail_counts(account.id).await?;
    Ok(render_settings(account, &settings, greeting.as_deref().map(<[u8]>::len), (new, saved)))
}

fn render_settings(
    account: &Account,
    s: &CallSettings,
    greeting_bytes: Option<usize>,
    (new, saved): (u32, u32),
) -> String {
    let target = |t: &Option<String>| t.clone().unwrap_or_else(|| "-".into());
    let on_off = |b: bool| if b { "on" } else { "off" }.to_owned();
    let email = match (&s.voicemail_email, &account.email) {
        (Some(email), _) => email.clone(),
        (None, Some(own)) => format!("{own} (the account's email)"),
        (None, None) => "- (the account has no email: no mail is sent)".into(),
    };
    let rows = [
        ("user:", account.username.clone()),
        ("forward always:", target(&s.forward_always)),
        ("forward when busy:", target(&s.forward_busy)),
        ("forward on no answer:", target(&s.forward_no_answer)),
        ("forward when offline:", target(&s.forward_offline)),
        ("no-answer seconds:", s.no_answer_secs.to_string()),
        ("do not disturb:", on_off(s.dnd)),
        ("voicemail:", on_off(s.voicemail)),
        ("voicemail PIN:", if s.pin_set { "set" } else { "not set" }.into()),
        ("voicemail email:", email),
        ("attach recording:", on_off(s.voicemail_attach)),
        ("voice messages by email:", on_off(s.voice_messages_email)),
        ("greeting:", greeting_bytes.map_or_else(|| "default".into(), |n| format!("recorded ({n} bytes)"))),
        ("messages:", format!("{new} new, {saved} saved")),
    ];
    render(&rows.map(|(label, value)| vec![label.to_owned(), value]))
}
