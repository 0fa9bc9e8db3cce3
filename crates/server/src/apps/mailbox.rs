//! The mailbox menu: listen to messages, save, delete, call back, forward; record the greeting;
//! change the PIN.
//!
//! From one's own device (`*97`) the mailbox opens at once: the device has authenticated. From
//! the access number, the caller enters a mailbox number (an extension, or a numeric username)
//! and its PIN, three tries at most. Then "You have 2 new messages and 1 saved message" and the
//! main menu:
//!
//! | key | main menu | while a message plays, or after it |
//! |---|---|---|
//! | 1 | new messages, oldest first | |
//! | 2 | saved messages, oldest first | |
//! | 3 | record the greeting | |
//! | 4 | change the PIN | play the message again |
//! | 5 | | call the sender back (the call is transferred) |
//! | 6 | | next message |
//! | 7 | | delete |
//! | 8 | | forward to another mailbox |
//! | 9 | | save |
//! | * | goodbye | back to the main menu |
//!
//! A new message becomes saved (heard) once it was played to its end or the caller acted on it;
//! each change of the counts goes to the core (message-waiting indication). Two pauses of
//! [`KEY_TIMEOUT`] in a row end the call.

use std::time::Duration;

use sambung_store::{Account, StoreError, Voicemail, VoicemailState};
use tracing::{info, warn};

use super::prompts::{self, Prompt};
use super::{Audio, CallIo, Context, Digits, KEY_TIMEOUT, Played, RecordEnd, Wait, read_digits};
use sambung_pbx::AppEnd;

/// Tries at the mailbox number and PIN.
pub const LOGIN_ATTEMPTS: u32 = 3;
/// Pauses in a row that end the call.
const MAX_TIMEOUTS: u32 = 2;
/// Longest mailbox number or PIN typed.
const MAX_DIGITS: usize = 20;
/// Shorter greetings are not kept (a slip of the finger).
const MIN_GREETING: Duration = Duration::from_secs(1);

/// What a step of the menu leads to.
enum Next {
    /// Back to the main menu.
    Menu,
    /// The call is over.
    End(AppEnd),
}

/// Opens `account_id`'s mailbox (`None`: ask which, and its PIN) and runs the menu.
pub async fn run(context: &Context, io: &mut impl CallIo, account_id: Option<i64>) -> AppEnd {
    let account_id = match account_id {
        Some(id) => id,
        None => match login(context, io).await {
            Some(id) => id,
            None => return AppEnd::Hangup,
        },
    };
    info!(account_id, "mailbox opened");
    if announce(context, io, account_id).await == Played::Hangup {
        return AppEnd::Hangup;
    }
    let mut timeouts = 0;
    loop {
        if io.play(&[Audio::Prompt(Prompt::MainMenu)], true).await == Played::Hangup {
            return AppEnd::Hangup;
        }
        let key = match io.wait_key(KEY_TIMEOUT).await {
            Wait::Key(key) => key,
            Wait::Timeout => {
                timeouts += 1;
                if timeouts >= MAX_TIMEOUTS {
                    return goodbye(io).await;
                }
                continue;
            }
            Wait::Hangup => return AppEnd::Hangup,
        };
        timeouts = 0;
        let next = match key {
            '1' => browse(context, io, account_id, VoicemailState::New).await,
            '2' => browse(context, io, account_id, VoicemailState::Saved).await,
            '3' => record_greeting(context, io, account_id).await,
            '4' => change_pin(context, io, account_id).await,
            '*' => return goodbye(io).await,
            _ => say(io, Prompt::InvalidOption).await,
        };
        if let Next::End(end) = next {
            return end;
        }
    }
}

async fn goodbye(io: &mut impl CallIo) -> AppEnd {
    io.play(&[Audio::Prompt(Prompt::Goodbye)], false).await;
    AppEnd::Hangup
}

/// Plays one prompt; [`Next::Menu`] unless the caller hung up.
async fn say(io: &mut impl CallIo, prompt: Prompt) -> Next {
    match io.play(&[Audio::Prompt(prompt)], false).await {
        Played::Hangup => Next::End(AppEnd::Hangup),
        _ => Next::Menu,
    }
}

/// The account a mailbox number names: an extension, else a (numeric) username.
async fn mailbox_account(context: &Context, number: &str) -> Result<Option<Account>, StoreError> {
    if number.is_empty() {
        return Ok(None);
    }
    if let Some(account) = context.store.account_by_extension(number).await? {
        return Ok(Some(account));
    }
    context.store.account_by_username(number).await
}

/// Asks for a mailbox number and its PIN; the account, or `None` when the caller hung up or
/// failed [`LOGIN_ATTEMPTS`] times. Whether the mailbox exists is not told apart from a wrong
/// PIN.
async fn login(context: &Context, io: &mut impl CallIo) -> Option<i64> {
    for _ in 0..LOGIN_ATTEMPTS {
        if io.play(&[Audio::Prompt(Prompt::MailboxNumber)], true).await == Played::Hangup {
            return None;
        }
        let number = match read_digits(io, MAX_DIGITS, KEY_TIMEOUT).await {
            Digits::Entered(number) => number,
            Digits::Hangup => return None,
            Digits::Timeout | Digits::Cancelled => String::new(),
        };
        if io.play(&[Audio::Prompt(Prompt::EnterPin)], true).await == Played::Hangup {
            return None;
        }
        let pin = match read_digits(io, MAX_DIGITS, KEY_TIMEOUT).await {
            Digits::Entered(pin) => pin,
            Digits::Hangup => return None,
            Digits::Timeout | Digits::Cancelled => String::new(),
        };
        let account = match mailbox_account(context, &number).await {
            Ok(account) => account.filter(|a| !a.disabled),
            Err(error) => {
                warn!(%error, "cannot look the mailbox up");
                None
            }
        };
        if let Some(account) = account {
            if context.pins.locked(&context.store, account.id).await {
                // Locked: the answer of a wrong PIN, whatever was typed.
                info!(account = account.username, "voicemail PIN locked; login refused");
            } else {
                match context.store.verify_voicemail_pin(account.id, &pin).await {
                    Ok(true) => return Some(account.id),
                    Ok(false) => {
                        info!(account = account.username, "wrong voicemail PIN");
                        context.pins.failed(&context.store, &context.publisher, account.id).await;
                    }
                    Err(error) => warn!(%error, "cannot check the PIN"),
                }
            }
        }
        if io.play(&[Audio::Prompt(Prompt::LoginIncorrect)], false).await == Played::Hangup {
            return None;
        }
        io.clear_keys();
    }
    io.play(&[Audio::Prompt(Prompt::TooManyAttempts)], false).await;
    None
}

/// "You have N new messages and M saved messages", or "You have no messages".
async fn announce(context: &Context, io: &mut impl CallIo, account_id: i64) -> Played {
    let (new, saved) = match context.store.voicemail_counts(account_id).await {
        Ok(counts) => counts,
        Err(error) => {
            warn!(account_id, %error, "cannot count the messages");
            (0, 0)
        }
    };
    let mut sentence = Vec::new();
    if new == 0 && saved == 0 {
        sentence.push(Prompt::NoMessages);
    } else {
        sentence.push(Prompt::YouHave);
        sentence.extend(prompts::count(new));
        sentence.push(if new == 1 { Prompt::NewMessage } else { Prompt::NewMessages });
        sentence.push(Prompt::And);
        sentence.extend(prompts::count(saved));
        sentence.push(if saved == 1 { Prompt::SavedMessage } else { Prompt::SavedMessages });
    }
    let audio: Vec<Audio<'_>> = sentence.into_iter().map(Audio::Prompt).collect();
    io.play(&audio, true).await
}

/// "Message 3 from 2 0 1", or the caller's name spelled, or "an unknown caller".
fn introduction(position: usize, message: &Voicemail) -> Vec<Prompt> {
    let mut sentence = vec![Prompt::Message];
    sentence.extend(prompts::count(u32::try_from(position).unwrap_or(u32::MAX)));
    sentence.push(Prompt::From);
    let spelled = [message.caller_number.as_deref(), Some(message.caller_name.as_str())]
        .into_iter()
        .flatten()
        .map(prompts::spell)
        .find(|spelled| !spelled.is_empty());
    match spelled {
        Some(spelled) => sentence.extend(spelled),
        None => sentence.push(Prompt::UnknownCaller),
    }
    sentence
}

/// Marks `message` heard (saved) if it is new, and tells the core.
async fn mark_heard(context: &Context, message: &mut Voicemail) {
    if message.state != VoicemailState::New {
        return;
    }
    match context.store.set_voicemail_state(message.id, VoicemailState::Saved).await {
        Ok(()) => {
            message.state = VoicemailState::Saved;
            context.mailbox_changed(message.account_id).await;
        }
        Err(error) => warn!(id = message.id, %error, "cannot mark the message heard"),
    }
}

/// Plays the messages in `state`, oldest first, each followed by the message menu.
async fn browse(context: &Context, io: &mut impl CallIo, account_id: i64, state: VoicemailState) -> Next {
    let mut messages = match context.store.voicemails(account_id, Some(state)).await {
        Ok(messages) => messages,
        Err(error) => {
            warn!(account_id, %error, "cannot list the messages");
            Vec::new()
        }
    };
    if messages.is_empty() {
        return say(io, Prompt::NoMessages).await;
    }
    let mut index = 0;
    'messages: while index < messages.len() {
        let audio = match context.store.voicemail_audio(messages[index].id).await {
            Ok(Some(audio)) => audio,
            Ok(None) => {
                index += 1; // deleted meanwhile
                continue;
            }
            Err(error) => {
                warn!(id = messages[index].id, %error, "cannot read the message");
                index += 1;
                continue;
            }
        };
        let message = &mut messages[index];
        // Introduction, then the recording; a key stops either and goes to the message menu.
        let mut items: Vec<Audio<'_>> = introduction(index + 1, message).into_iter().map(Audio::Prompt).collect();
        items.push(Audio::Wav(&audio));
        match io.play(&items, true).await {
            Played::Hangup => return Next::End(AppEnd::Hangup),
            Played::Done => mark_heard(context, message).await,
            Played::Key(_) => {}
        }
        let mut timeouts = 0;
        loop {
            if io.play(&[Audio::Prompt(Prompt::MessageMenu)], true).await == Played::Hangup {
                return Next::End(AppEnd::Hangup);
            }
            let key = match io.wait_key(KEY_TIMEOUT).await {
                Wait::Key(key) => key,
                Wait::Timeout => {
                    timeouts += 1;
                    if timeouts >= MAX_TIMEOUTS {
                        return Next::End(goodbye(io).await);
                    }
                    continue;
                }
                Wait::Hangup => return Next::End(AppEnd::Hangup),
            };
            timeouts = 0;
            match key {
                '4' => continue 'messages,
                '9' => {
                    mark_heard(context, message).await;
                    if let Next::End(end) = say(io, Prompt::MessageSaved).await {
                        return Next::End(end);
                    }
                    index += 1;
                    continue 'messages;
                }
                '7' => {
                    match context.store.delete_voicemail(message.id).await {
                        Ok(_) => context.mailbox_changed(account_id).await,
                        Err(error) => warn!(id = message.id, %error, "cannot delete the message"),
                    }
                    if let Next::End(end) = say(io, Prompt::MessageDeleted).await {
                        return Next::End(end);
                    }
                    index += 1;
                    continue 'messages;
                }
                '5' => {
                    mark_heard(context, message).await;
                    io.play(&[Audio::Prompt(Prompt::CallingBack)], false).await;
                    info!(account_id, target = message.caller_uri, "mailbox calls back");
                    return Next::End(AppEnd::CallBack { target: message.caller_uri.clone() });
                }
                '8' => {
                    mark_heard(context, message).await;
                    if let Next::End(end) = forward(context, io, message).await {
                        return Next::End(end);
                    }
                }
                '6' => {
                    mark_heard(context, message).await;
                    index += 1;
                    continue 'messages;
                }
                '*' => return Next::Menu,
                _ => {
                    if let Next::End(end) = say(io, Prompt::InvalidOption).await {
                        return Next::End(end);
                    }
                }
            }
        }
    }
    say(io, Prompt::NoMoreMessages).await
}

/// Copies `message` into the mailbox the caller names.
async fn forward(context: &Context, io: &mut impl CallIo, message: &Voicemail) -> Next {
    if io.play(&[Audio::Prompt(Prompt::ForwardTo)], true).await == Played::Hangup {
        return Next::End(AppEnd::Hangup);
    }
    let number = match read_digits(io, MAX_DIGITS, KEY_TIMEOUT).await {
        Digits::Entered(number) => number,
        Digits::Hangup => return Next::End(AppEnd::Hangup),
        Digits::Timeout | Digits::Cancelled => return Next::Menu,
    };
    let target = match mailbox_account(context, &number).await {
        Ok(account) => account.filter(|a| !a.disabled),
        Err(error) => {
            warn!(%error, "cannot look the mailbox up");
            None
        }
    };
    let Some(target) = target else { return say(io, Prompt::UnknownMailbox).await };
    match context.store.copy_voicemail(message.id, target.id).await {
        Ok(copy) => {
            info!(from = message.account_id, to = target.id, id = copy.id, "voicemail forwarded");
            context.mailbox_changed(target.id).await;
            say(io, Prompt::MessageForwarded).await
        }
        Err(error) => {
            warn!(id = message.id, %error, "cannot forward the message");
            say(io, Prompt::UnknownMailbox).await
        }
    }
}

/// Records a new greeting, kept when something was said.
async fn record_greeting(context: &Context, io: &mut impl CallIo, account_id: i64) -> Next {
    if io.play(&[Audio::Prompt(Prompt::RecordGreeting)], false).await == Played::Hangup {
        return Next::End(AppEnd::Hangup);
    }
    io.clear_keys();
    if io.play(&[Audio::Beep], false).await == Played::Hangup {
        return Next::End(AppEnd::Hangup);
    }
    let recording = io.record(context.max_greeting, &['#']).await;
    if recording.ended_by == RecordEnd::Hangup {
        // Hanging up abandons the new greeting.
        return Next::End(AppEnd::Hangup);
    }
    if recording.silent || recording.duration < MIN_GREETING || recording.wav.is_empty() {
        return say(io, Prompt::InvalidOption).await;
    }
    match context.store.set_greeting(account_id, Some(&recording.wav)).await {
        Ok(()) => {
            info!(account_id, duration = ?recording.duration, "greeting recorded");
            say(io, Prompt::GreetingSaved).await
        }
        Err(error) => {
            warn!(account_id, %error, "cannot store the greeting");
            say(io, Prompt::InvalidOption).await
        }
    }
}

/// Asks for a new PIN of 4 to 12 digits.
async fn change_pin(context: &Context, io: &mut impl CallIo, account_id: i64) -> Next {
    if io.play(&[Audio::Prompt(Prompt::NewPin)], true).await == Played::Hangup {
        return Next::End(AppEnd::Hangup);
    }
    let pin = match read_digits(io, MAX_DIGITS, KEY_TIMEOUT).await {
        Digits::Entered(pin) => pin,
        Digits::Hangup => return Next::End(AppEnd::Hangup),
        Digits::Timeout | Digits::Cancelled => return Next::Menu,
    };
    if sambung_store::validate_pin(&pin).is_err() {
        return say(io, Prompt::InvalidPin).await;
    }
    match context.store.set_voicemail_pin(account_id, &pin).await {
        Ok(()) => {
            info!(account_id, "voicemail PIN changed");
            say(io, Prompt::PinChanged).await
        }
        Err(error) => {
            warn!(account_id, %error, "cannot change the PIN");
            say(io, Prompt::InvalidPin).await
        }
    }
}
