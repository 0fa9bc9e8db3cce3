//! Voicemail: a caller who reached no one leaves a message.
//!
//! The mailbox's greeting (recorded by its owner, else "The person at <number> is not
//! available ..."), the tone, then the recording, until the caller hangs up, presses `#`, or
//! the longest message allowed. A recording with nothing said in it (only silence or line
//! noise) or shorter than [`MIN_MESSAGE`] is dropped; any other is stored even when the caller
//! hung up, the mailbox's counts go to call control (message-waiting indication, RFC 3842), and an
//! email is queued when the owner has an address for it.

use std::io::Cursor;
use std::time::Duration;

use sambung_media::wav::WavPlayer;
use sambung_store::{NewMail, NewVoicemail, StoreError, Voicemail};
use tracing::{info, warn};

use super::prompts::{self, Prompt};
use super::{Audio, CallIo, Context, Played, RecordEnd, Recording};
use sambung_pbx::{AppEnd, Caller};

/// Shorter messages are dropped: a hang-up at the tone.
pub const MIN_MESSAGE: Duration = Duration::from_secs(1);

/// Takes a message for `account_id`'s mailbox, named `name` in the default greeting.
pub async fn run(context: &Context, io: &mut impl CallIo, account_id: i64, name: &str, caller: &Caller) -> AppEnd {
    let greeting = match context.store.greeting(account_id).await {
        Ok(greeting) => greeting,
        Err(error) => {
            warn!(account_id, %error, "cannot read the greeting; the default one is played");
            None
        }
    };
    // A stored greeting that cannot be played (damaged) gives way to the default one.
    let greeting = greeting.filter(|wav| WavPlayer::new(Cursor::new(wav.as_slice()), 16_000).is_ok());
    let default: Vec<Audio<'_>> = std::iter::once(Prompt::GreetingIntro)
        .chain(prompts::spell(name))
        .chain([Prompt::GreetingUnavailable])
        .map(Audio::Prompt)
        .collect();
    let greeting = match &greeting {
        Some(wav) => vec![Audio::Wav(wav)],
        None => default,
    };
    // Any key skips the greeting, straight to the tone.
    if io.play(&greeting, true).await == Played::Hangup {
        return AppEnd::Hangup;
    }
    io.clear_keys();
    if io.play(&[Audio::Beep], false).await == Played::Hangup {
        return AppEnd::Hangup;
    }
    let recording = io.record(context.max_message, &['#']).await;
    let kept = keep(&recording);
    if kept {
        match save(context, account_id, name, caller, &recording, io.unix_now()).await {
            Ok(message) => {
                info!(account_id, id = message.id, duration_ms = message.duration_ms, "voicemail left");
                context.publisher.publish(sambung_pbx::Event::VoicemailLeft {
                    account_id,
                    message_id: message.id,
                    caller: caller.uri.clone(),
                    duration_secs: u32::try_from(message.duration_ms / 1000).unwrap_or(u32::MAX),
                });
            }
            Err(error) => warn!(account_id, %error, "cannot store the voicemail"),
        }
    } else {
        info!(account_id, duration = ?recording.duration, silent = recording.silent, "empty voicemail dropped");
    }
    if recording.ended_by != RecordEnd::Hangup {
        let farewell = if kept { Prompt::MessageRecorded } else { Prompt::Goodbye };
        io.play(&[Audio::Prompt(farewell)], false).await;
    }
    AppEnd::Hangup
}

/// Whether a recording is a message: something said, for at least [`MIN_MESSAGE`].
pub fn keep(recording: &Recording) -> bool {
    !recording.silent && recording.duration >= MIN_MESSAGE && !recording.wav.is_empty()
}

/// Stores the message, tells call control the new counts, and queues the email.
async fn save(
    context: &Context,
    account_id: i64,
    mailbox: &str,
    caller: &Caller,
    recording: &Recording,
    now: i64,
) -> Result<Voicemail, StoreError> {
    let number = caller.extension.clone().unwrap_or_else(|| caller.username.clone());
    let message = context
        .store
        .store_voicemail(NewVoicemail {
            account_id,
            caller_uri: caller.uri.clone(),
            caller_name: caller.display.clone(),
            caller_number: Some(number),
            created_at: now,
            duration_ms: i64::try_from(recording.duration.as_millis()).unwrap_or(i64::MAX),
            audio: recording.wav.clone(),
        })
        .await?;
    context.mailbox_changed(account_id).await;
    if context.email
        && let Err(error) = mail(context, &message, mailbox, recording).await
    {
        warn!(account_id, %error, "cannot queue the voicemail email");
    }
    Ok(message)
}

/// Queues the email of `message`, when its mailbox has an address for it.
async fn mail(context: &Context, message: &Voicemail, mailbox: &str, recording: &Recording) -> Result<(), StoreError> {
    let settings = context.store.call_settings(message.account_id).await?;
    let to = match settings.voicemail_email {
        Some(to) => Some(to),
        None => context.store.account(message.account_id).await?.and_then(|account| account.email),
    };
    let Some(to) = to.filter(|to| !to.is_empty()) else { return Ok(()) };
    let attachment = settings
        .voicemail_attach
        .then(|| (format!("voicemail-{}.wav", message.id), "audio/wav".to_owned(), recording.wav.clone()));
    let mail = NewMail { to, subject: subject(message), body: body(message, mailbox), attachment };
    let id = context.store.enqueue_mail(mail, message.created_at).await?;
    info!(account_id = message.account_id, mail = id, "voicemail email queued");
    context.mail_wake.notify_one();
    Ok(())
}

/// The caller's number, else their URI.
fn number_of(message: &Voicemail) -> &str {
    message.caller_number.as_deref().unwrap_or(&message.caller_uri)
}

/// `Voicemail from <name> (<number>)`, on one line whatever the name holds.
pub fn subject(message: &Voicemail) -> String {
    let line: String = format!("Voicemail from {} ({})", message.caller_name, number_of(message))
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    line
}

/// The plain-text body: who, when (UTC), how long.
pub fn body(message: &Voicemail, mailbox: &str) -> String {
    let seconds = message.duration_ms.max(0) / 1000;
    format!(
        "You have a new voicemail message in mailbox {mailbox}.\n\n\
         From:     {} <{}>\n\
         Number:   {}\n\
         Received: {}\n\
         Duration: {}:{:02}\n",
        message.caller_name,
        message.caller_uri,
        number_of(message),
        super::utc_date_time(message.created_at),
        seconds / 60,
        seconds % 60,
    )
}
