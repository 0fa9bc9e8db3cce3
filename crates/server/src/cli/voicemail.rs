//! `sambung voicemail ...`: a user's voicemail messages on the server's database.

use std::io::Write as _;

use sambung_store::Voicemail;

use super::settings::{SettingsError, block_on, open_account};
use super::table::{render, utc};
use super::{VoicemailArgs, VoicemailCommand};
use crate::config::Config;

/// Runs one `sambung voicemail` command, printing its result on standard output. Errors are
/// those of the `settings` commands, with the same exit codes.
pub fn run(args: VoicemailArgs) -> Result<(), SettingsError> {
    let config = Config::load(args.config.as_deref())?;
    let text = block_on(execute(&config, args.command))?;
    // A closed standard output (`| head`) is not worth an error.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(())
}

async fn execute(config: &Config, command: VoicemailCommand) -> Result<String, SettingsError> {
    match command {
        VoicemailCommand::List { username } => {
            let (store, account) = open_account(config, username).await?;
            let messages = store.voicemails(account.id, None).await;
            store.close().await;
            Ok(list(&messages?))
        }
        VoicemailCommand::Export { username, id, file } => {
            let (store, account) = open_account(config, username).await?;
            let found = export_audio(&store, account.id, id).await;
            store.close().await;
            let unknown = || SettingsError::UnknownMessage { username: account.username.clone(), id };
            let (message, audio) = found?.ok_or_else(unknown)?;
            std::fs::write(&file, &audio).map_err(|source| SettingsError::Write { path: file.clone(), source })?;
            Ok(format!(
                "wrote voicemail message {id} of {} ({}, {} bytes) to {}\n",
                account.username,
                duration(message.duration_ms),
                audio.len(),
                file.display()
            ))
        }
    }
}

/// Message `id` of account `account_id` and its audio, or `None` when the account has no such
/// message.
async fn export_audio(
    store: &sambung_store::Store,
    account_id: i64,
    id: i64,
) -> Result<Option<(Voicemail, Vec<u8>)>, SettingsError> {
    let messages = store.voicemails(account_id, None).await?;
    let Some(message) = messages.into_iter().find(|m| m.id == id) else { return Ok(None) };
    // Deleted in between (by the server) counts as unknown too.
    Ok(store.voicemail_audio(id).await?.map(|audio| (message, audio)))
}

/// The table of `voicemail list`.
fn list(messages: &[Voicemail]) -> String {
    let mut rows = vec![["ID", "STATE", "CALLER", "TIME", "DURATION"].map(String::from).to_vec()];
    for m in messages {
        rows.push(vec![
            m.id.to_string(),
            m.state.as_str().into(),
            caller(m),
            utc(m.created_at),
            duration(m.duration_ms),
        ]);
    }
    render(&rows)
}

/// `Name (number) <uri>`, leaving out what is missing or repeats the name.
fn caller(m: &Voicemail) -> String {
    let mut text = m.caller_name.clone();
    if let Some(number) = m.caller_number.as_deref().filter(|n| !n.is_empty() && *n != m.caller_name) {
        text.push_str(&format!(" ({number})"));
    }
    if !m.caller_uri.is_empty() {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&format!("<{}>", m.caller_uri));
    }
    // Control characters from a caller's display name must not reach the terminal.
    text.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// Milliseconds as `m:ss`, rounded to the nearest second.
fn duration(ms: i64) -> String {
    let secs = (ms.max(0) + 500) / 1000;
    format!("{}:{:02}", secs / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sambung_store::VoicemailState;

    fn message(name: &str, number: Option<&str>, uri: &str) -> Voicemail {
        Voicemail {
            id: 1,
            account_id: 1,
            caller_uri: uri.into(),
            caller_name: name.into(),
            caller_number: number.map(str::to_owned),
            created_at: 0,
            duration_ms: 0,
            state: VoicemailState::New,
        }
    }

    #[test]
    fn callers_and_durations() {
        assert_eq!(caller(&message("Bob", Some("1002"), "sip:bob@x")), "Bob (1002) <sip:bob@x>");
        assert_eq!(caller(&message("1002", Some("1002"), "sip:1002@x")), "1002 <sip:1002@x>");
        assert_eq!(caller(&message("", None, "sip:anon@x")), "<sip:anon@x>");
        assert_eq!(caller(&message("Evil\u{1b}[2J", None, "")), "Evil?[2J");
        assert_eq!(duration(0), "0:00");
        assert_eq!(duration(499), "0:00");
        assert_eq!(duration(500), "0:01");
        assert_eq!(duration(61_400), "1:01");
        assert_eq!(duration(3_600_000), "60:00");
    }
}
