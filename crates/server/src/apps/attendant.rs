//! The auto-attendant: menus that greet callers ("press 1 for sales"), take their choice by
//! key (RFC 4733 or SIP INFO), and connect them where the choice leads, or to the extension they
//! key in.
//!
//! A menu (`[[menus]]`, see docs/attendant.md) has a greeting (the operator's recording, else
//! a built-in prompt), options (key → another menu, a target call control connects to, a
//! voicemail box, "repeat", "hangup"), dial-by-extension, what happens when the caller keys
//! nothing, and office hours: days and times in the menu's time zone, and holidays, outside of
//! which another menu answers instead (the `closed` one).
//!
//! The caller is connected through call control ([`CallIo::connect`]): the caller hears the
//! ringing tone; a target that cannot take the call brings the caller back to the menu, told
//! that the person is not available (or that the extension does not exist).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use sambung_pbx::{AppEnd, Caller};
use tracing::{debug, info, warn};

use super::prompts::Prompt;
use super::{Audio, CallIo, Connect, Context, Played, Wait};

/// How long after one key of an extension the next may come.
const INTER_DIGIT: Duration = Duration::from_secs(2);
/// Longest extension keyed in.
const MAX_EXTENSION: usize = 10;
/// Most menus followed from one to the next when one is closed (a loop stops there).
const MAX_CLOSED_HOPS: usize = 8;

/// What a key (or the caller's silence) leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Another menu, by name.
    Menu(String),
    /// Connect the caller: a username, extension, group, number, SIP URI, or `voicemail:USER`.
    Connect(String),
    /// Say the menu again.
    Repeat,
    /// Say goodbye and hang up.
    Hangup,
}

impl Action {
    /// `menu:NAME`, `repeat`, `hangup`, `voicemail:USER`, or a target for call control.
    pub fn parse(text: &str) -> Result<Action, String> {
        let text = text.trim();
        if let Some(name) = text.strip_prefix("menu:") {
            let name = name.trim().to_ascii_lowercase();
            return if name.is_empty() { Err("menu: names no menu".into()) } else { Ok(Action::Menu(name)) };
        }
        match text.to_ascii_lowercase().as_str() {
            "repeat" => return Ok(Action::Repeat),
            "hangup" | "hang-up" => return Ok(Action::Hangup),
            _ => {}
        }
        if let Some(user) = text.strip_prefix("voicemail:") {
            return if user.trim().is_empty() {
                Err("voicemail: names no mailbox".into())
            } else {
                Ok(Action::Connect(text.to_owned()))
            };
        }
        match sambung_pbx::registrar::Target::parse(text) {
            Some(_) => Ok(Action::Connect(text.to_owned())),
            None => Err(format!("{text:?} is not a target")),
        }
    }
}

/// Opening hours on some days of the week: `mon-fri 09:00-17:30`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hours {
    /// Monday first.
    days: [bool; 7],
    /// Minutes after midnight: open from `from` until before `to`.
    from: u16,
    to: u16,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Hours {
    /// `DAYS HH:MM-HH:MM`, where DAYS is `daily`, a day (`mon`), a range (`mon-fri`) or a list
    /// of either (`mon,wed,fri-sun`); `24:00` ends the day.
    pub fn parse(text: &str) -> Result<Hours, String> {
        let bad = || format!("{text:?}: write days and times as \"mon-fri 09:00-17:30\"");
        let (days_text, times) = text.trim().split_once(char::is_whitespace).ok_or_else(bad)?;
        let mut days = [false; 7];
        let day = |name: &str| DAYS.iter().position(|d| name.trim().to_ascii_lowercase().starts_with(d));
        for part in days_text.split(',') {
            if part.eq_ignore_ascii_case("daily") {
                days = [true; 7];
                continue;
            }
            match part.split_once('-') {
                Some((first, last)) => {
                    let (first, last) = (day(first).ok_or_else(bad)?, day(last).ok_or_else(bad)?);
                    // A range may wrap past Sunday (`fri-mon`).
                    let mut d = first;
                    loop {
                        days[d] = true;
                        if d == last {
                            break;
                        }
                        d = (d + 1) % 7;
                    }
                }
                None => days[day(part).ok_or_else(bad)?] = true,
            }
        }
        let (from, to) = times.trim().split_once('-').ok_or_else(bad)?;
        let minutes = |t: &str| -> Option<u16> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
        };
        let (from, to) = (minutes(from).ok_or_else(bad)?, minutes(to).ok_or_else(bad)?);
        if from >= to {
            return Err(format!("{text:?}: the hours must end after they begin (past midnight: two entries)"));
        }
        Ok(Hours { days, from, to })
    }

    fn covers(&self, weekday: Weekday, minute: u16) -> bool {
        self.days[weekday.to_monday_zero_offset() as usize] && (self.from..self.to).contains(&minute)
    }
}

/// One menu, ready to run.
#[derive(Clone, Debug)]
pub struct Menu {
    pub name: String,
    /// The operator's greeting (a WAV file's bytes); `None`: the built-in one.
    pub greeting: Option<Arc<[u8]>>,
    pub options: BTreeMap<char, Action>,
    pub dial_by_extension: bool,
    /// How long the caller has to choose once the greeting is over.
    pub timeout: Duration,
    /// How many times the greeting is said before `on_timeout` is taken.
    pub repeats: u32,
    /// Where a caller who chooses nothing goes; `None`: goodbye.
    pub on_timeout: Option<Action>,
    /// When the menu is open; empty: always (but on holidays).
    pub hours: Vec<Hours>,
    pub holidays: Vec<Date>,
    pub time_zone: TimeZone,
    /// The menu that answers when this one is closed; `None`: this one answers anyway.
    pub closed: Option<String>,
}

impl Menu {
    /// True when the menu is open at `unix` seconds.
    pub fn is_open(&self, unix: i64) -> bool {
        let Ok(at) = jiff::Timestamp::from_second(unix) else { return true };
        let local = self.time_zone.to_datetime(at);
        if self.holidays.contains(&local.date()) {
            return false;
        }
        let minute = u16::try_from(i32::from(local.hour()) * 60 + i32::from(local.minute())).unwrap_or(0);
        self.hours.is_empty() || self.hours.iter().any(|h| h.covers(local.weekday(), minute))
    }
}

/// Every menu of the server.
#[derive(Clone, Debug, Default)]
pub struct Menus {
    pub menus: Vec<Menu>,
}

impl Menus {
    pub fn get(&self, name: &str) -> Option<&Menu> {
        self.menus.iter().find(|m| m.name.eq_ignore_ascii_case(name))
    }

    /// The menu that answers for `name` at `unix` seconds: it, or the one it sends callers to
    /// while it is closed (and so on).
    pub fn answering(&self, name: &str, unix: i64) -> Option<&Menu> {
        let mut menu = self.get(name)?;
        for _ in 0..MAX_CLOSED_HOPS {
            match &menu.closed {
                Some(closed) if !menu.is_open(unix) => match self.get(closed) {
                    Some(next) => menu = next,
                    None => break,
                },
                _ => break,
            }
        }
        Some(menu)
    }
}

/// What the caller chose.
enum Choice {
    Key(char),
    Extension(String),
    Nothing,
    Hangup,
}

/// Runs menu `name` for `caller` until the caller is connected, hangs up, or is said goodbye.
pub async fn run(context: &Context, io: &mut impl CallIo, name: &str, caller: &Caller) -> AppEnd {
    let menus = context.menus.clone();
    let Some(mut menu) = menus.answering(name, io.unix_now()) else {
        warn!(menu = name, "no such menu");
        io.play(&[Audio::Prompt(Prompt::Goodbye)], false).await;
        return AppEnd::Hangup;
    };
    info!(menu = menu.name, caller = caller.username, "attendant answering");
    let mut unanswered = 0;
    loop {
        let choice = choose(io, menu).await;
        let action = match choice {
            Choice::Hangup => return AppEnd::Hangup,
            Choice::Nothing => {
                unanswered += 1;
                if unanswered < menu.repeats.max(1) {
                    continue;
                }
                match &menu.on_timeout {
                    Some(action) => action.clone(),
                    None => Action::Hangup,
                }
            }
            Choice::Key(key) => match menu.options.get(&key) {
                Some(action) => action.clone(),
                None => {
                    debug!(menu = menu.name, key = %key, "no such option");
                    if io.play(&[Audio::Prompt(Prompt::InvalidOption)], false).await == Played::Hangup {
                        return AppEnd::Hangup;
                    }
                    continue;
                }
            },
            Choice::Extension(digits) => Action::Connect(format!("extension:{digits}")),
        };
        unanswered = 0;
        match action {
            Action::Repeat => {}
            Action::Hangup => {
                io.play(&[Audio::Prompt(Prompt::Goodbye)], false).await;
                return AppEnd::Hangup;
            }
            Action::Menu(next) => match menus.answering(&next, io.unix_now()) {
                Some(next) => menu = next,
                None => warn!(menu = next, "an option names no menu"),
            },
            Action::Connect(target) => {
                info!(menu = menu.name, target, "attendant connecting");
                match io.connect(&target).await {
                    Connect::Over => return AppEnd::Hangup,
                    Connect::Failed(status) => {
                        info!(menu = menu.name, target, status, "the caller is back in the menu");
                        let prompt = if status == 404 { Prompt::NoSuchExtension } else { Prompt::NotAvailable };
                        if io.play(&[Audio::Prompt(prompt)], false).await == Played::Hangup {
                            return AppEnd::Hangup;
                        }
                    }
                }
            }
        }
    }
}

/// Says the menu's greeting and reads the caller's choice: a key, or an extension when the
/// menu takes them (more keys following the first within [`INTER_DIGIT`], or a first key
/// that is no option).
async fn choose(io: &mut impl CallIo, menu: &Menu) -> Choice {
    let greeting = match &menu.greeting {
        Some(wav) => Audio::Wav(wav),
        None if menu.dial_by_extension => Audio::Prompt(Prompt::EnterExtension),
        None => Audio::Prompt(Prompt::ChooseOption),
    };
    let first = match io.play(&[greeting], true).await {
        Played::Hangup => return Choice::Hangup,
        _ => match io.wait_key(menu.timeout).await {
            Wait::Key(key) => key,
            Wait::Timeout => return Choice::Nothing,
            Wait::Hangup => return Choice::Hangup,
        },
    };
    if !menu.dial_by_extension || !first.is_ascii_digit() {
        return Choice::Key(first);
    }
    let mut digits = String::from(first);
    loop {
        match io.wait_key(INTER_DIGIT).await {
            Wait::Key('#') => break,
            Wait::Key(key) if key.is_ascii_digit() && digits.len() < MAX_EXTENSION => digits.push(key),
            Wait::Key(_) => {}
            Wait::Timeout => break,
            Wait::Hangup => return Choice::Hangup,
        }
    }
    if digits.len() == 1 && menu.options.contains_key(&first) {
        return Choice::Key(first);
    }
    Choice::Extension(digits)
}
