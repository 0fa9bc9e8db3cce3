//! The spoken prompts of voicemail and the mailbox menu, built into the binary.
//!
//! Each [`Prompt`] is one WAV file in `crates/server/prompts/` (16 kHz, mono, 16-bit PCM, about
//! 50 ms of silence at each end), spoken by espeak-ng and made by `scripts/make-prompts.sh`, which
//! lists every prompt's text: change a text there, rerun the script and commit the WAV files with
//! it. Sentences are put together from several prompts: [`digit`], [`letter`] and [`spell`] say
//! characters one by one, [`count`] says a number the way people say it ("three hundred forty
//! two").
//!
//! ```
//! use sambung_server::apps::prompts::{self, Prompt};
//!
//! // "You have three new messages."
//! let mut sentence = vec![Prompt::YouHave];
//! sentence.extend(prompts::count(3));
//! sentence.push(Prompt::NewMessages);
//! assert_eq!(sentence, [Prompt::YouHave, Prompt::Digit3, Prompt::NewMessages]);
//! assert!(sentence.iter().all(|p| !p.wav().is_empty()));
//! ```

/// Declares [`Prompt`] from one table of variant, file name and (as its doc comment) the text.
macro_rules! prompts {
    ($( $(#[doc = $text:literal])+ $variant:ident => $name:literal, )*) => {
        /// One recorded prompt. Its doc comment is what it says.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Prompt {
            $( $(#[doc = $text])+ $variant, )*
        }

        impl Prompt {
            /// Every prompt, in the order of the table.
            pub const ALL: &'static [Prompt] = &[$( Prompt::$variant, )*];

            /// The file's name without `.wav`, as `scripts/make-prompts.sh` names it.
            pub fn name(self) -> &'static str {
                match self {
                    $( Prompt::$variant => $name, )*
                }
            }

            /// The whole WAV file (16 kHz, mono, 16-bit PCM), ready for
            /// [`sambung_media::wav::WavPlayer`] over a `Cursor`.
            pub fn wav(self) -> &'static [u8] {
                match self {
                    $( Prompt::$variant => include_bytes!(concat!("../../prompts/", $name, ".wav")), )*
                }
            }
        }
    };
}

prompts! {
    /// "The person at"
    GreetingIntro => "greeting_intro",
    /// "is not available. Please leave your message after the tone. When you are done, hang up,
    /// or press the pound key."
    GreetingUnavailable => "greeting_unavailable",
    /// "zero"
    Digit0 => "digit_0",
    /// "one"
    Digit1 => "digit_1",
    /// "two"
    Digit2 => "digit_2",
    /// "three"
    Digit3 => "digit_3",
    /// "four"
    Digit4 => "digit_4",
    /// "five"
    Digit5 => "digit_5",
    /// "six"
    Digit6 => "digit_6",
    /// "seven"
    Digit7 => "digit_7",
    /// "eight"
    Digit8 => "digit_8",
    /// "nine"
    Digit9 => "digit_9",
    /// "ten"
    Number10 => "number_10",
    /// "eleven"
    Number11 => "number_11",
    /// "twelve"
    Number12 => "number_12",
    /// "thirteen"
    Number13 => "number_13",
    /// "fourteen"
    Number14 => "number_14",
    /// "fifteen"
    Number15 => "number_15",
    /// "sixteen"
    Number16 => "number_16",
    /// "seventeen"
    Number17 => "number_17",
    /// "eighteen"
    Number18 => "number_18",
    /// "nineteen"
    Number19 => "number_19",
    /// "twenty"
    Number20 => "number_20",
    /// "thirty"
    Number30 => "number_30",
    /// "forty"
    Number40 => "number_40",
    /// "fifty"
    Number50 => "number_50",
    /// "sixty"
    Number60 => "number_60",
    /// "seventy"
    Number70 => "number_70",
    /// "eighty"
    Number80 => "number_80",
    /// "ninety"
    Number90 => "number_90",
    /// "hundred"
    Hundred => "hundred",
    /// "A"
    LetterA => "letter_a",
    /// "B"
    LetterB => "letter_b",
    /// "C"
    LetterC => "letter_c",
    /// "D"
    LetterD => "letter_d",
    /// "E"
    LetterE => "letter_e",
    /// "F"
    LetterF => "letter_f",
    /// "G"
    LetterG => "letter_g",
    /// "H"
    LetterH => "letter_h",
    /// "I"
    LetterI => "letter_i",
    /// "J"
    LetterJ => "letter_j",
    /// "K"
    LetterK => "letter_k",
    /// "L"
    LetterL => "letter_l",
    /// "M"
    LetterM => "letter_m",
    /// "N"
    LetterN => "letter_n",
    /// "O"
    LetterO => "letter_o",
    /// "P"
    LetterP => "letter_p",
    /// "Q"
    LetterQ => "letter_q",
    /// "R"
    LetterR => "letter_r",
    /// "S"
    LetterS => "letter_s",
    /// "T"
    LetterT => "letter_t",
    /// "U"
    LetterU => "letter_u",
    /// "V"
    LetterV => "letter_v",
    /// "W"
    LetterW => "letter_w",
    /// "X"
    LetterX => "letter_x",
    /// "Y"
    LetterY => "letter_y",
    /// "Z"
    LetterZ => "letter_z",
    /// "star"
    Star => "star",
    /// "pound"
    Pound => "pound",
    /// "Please enter your mailbox number, followed by the pound key."
    MailboxNumber => "mailbox_number",
    /// "Please enter your PIN, followed by the pound key."
    EnterPin => "enter_pin",
    /// "That mailbox number or PIN is not correct."
    LoginIncorrect => "login_incorrect",
    /// "Goodbye."
    Goodbye => "goodbye",
    /// "You have"
    YouHave => "you_have",
    /// "new message"
    NewMessage => "new_message",
    /// "new messages"
    NewMessages => "new_messages",
    /// "saved message"
    SavedMessage => "saved_message",
    /// "saved messages"
    SavedMessages => "saved_messages",
    /// "and"
    And => "and",
    /// "You have no messages."
    NoMessages => "no_messages",
    /// "To listen to new messages, press 1. For saved messages, press 2. To record your greeting,
    /// press 3. To change your PIN, press 4. To hang up, press star."
    MainMenu => "main_menu",
    /// "Message"
    Message => "message",
    /// "from"
    From => "from",
    /// "an unknown caller"
    UnknownCaller => "unknown_caller",
    /// "To play it again, press 4. To save it, press 9. To delete it, press 7. To call back, press
    /// 5. To forward it to another mailbox, press 8. For the next message, press 6. For the main
    /// menu, press star."
    MessageMenu => "message_menu",
    /// "Message deleted."
    MessageDeleted => "message_deleted",
    /// "Message saved."
    MessageSaved => "message_saved",
    /// "Enter the mailbox number to forward this message to, followed by the pound key."
    ForwardTo => "forward_to",
    /// "Message forwarded."
    MessageForwarded => "message_forwarded",
    /// "There is no such mailbox."
    UnknownMailbox => "unknown_mailbox",
    /// "There are no more messages."
    NoMoreMessages => "no_more_messages",
    /// "Record your greeting after the tone. When you are done, press the pound key."
    RecordGreeting => "record_greeting",
    /// "Your greeting is saved."
    GreetingSaved => "greeting_saved",
    /// "Enter your new PIN, four to twelve digits, followed by the pound key."
    NewPin => "new_pin",
    /// "Your PIN is changed."
    PinChanged => "pin_changed",
    /// "That PIN is not valid."
    InvalidPin => "invalid_pin",
    /// "That is not a valid choice."
    InvalidOption => "invalid_option",
    /// "Calling back."
    CallingBack => "calling_back",
    /// "Call forwarding is on."
    ForwardOn => "forward_on",
    /// "Call forwarding is off."
    ForwardOff => "forward_off",
    /// "Do not disturb is on."
    DndOn => "dnd_on",
    /// "Do not disturb is off."
    DndOff => "dnd_off",
    /// "That feature code is not valid."
    InvalidCode => "invalid_code",
    /// "Your message is recorded. Goodbye."
    MessageRecorded => "message_recorded",
    /// "Too many attempts. Goodbye."
    TooManyAttempts => "too_many_attempts",
    /// "Please enter the extension of the person you are calling."
    EnterExtension => "enter_extension",
    /// "Please choose an option on your keypad."
    ChooseOption => "choose_option",
    /// "The person you are calling is not available. Please make another choice."
    NotAvailable => "not_available",
    /// "There is no one at that extension."
    NoSuchExtension => "no_such_extension",
    /// "All our agents are busy. You are caller number"
    YouAreCaller => "you_are_caller",
    /// "To leave a message instead, press 1."
    QueueMessage => "queue_message",
    /// "You are logged in to your queues."
    AgentLoggedIn => "agent_logged_in",
    /// "You are logged out of your queues."
    AgentLoggedOut => "agent_logged_out",
    /// "There is no call to pick up."
    NoCallToPickUp => "no_call_to_pick_up",
    /// "This call is recorded."
    CallRecorded => "call_recorded",
}

/// The digits, by value.
const DIGITS: [Prompt; 10] = [
    Prompt::Digit0,
    Prompt::Digit1,
    Prompt::Digit2,
    Prompt::Digit3,
    Prompt::Digit4,
    Prompt::Digit5,
    Prompt::Digit6,
    Prompt::Digit7,
    Prompt::Digit8,
    Prompt::Digit9,
];

/// "ten" to "nineteen", by value minus ten.
const TEENS: [Prompt; 10] = [
    Prompt::Number10,
    Prompt::Number11,
    Prompt::Number12,
    Prompt::Number13,
    Prompt::Number14,
    Prompt::Number15,
    Prompt::Number16,
    Prompt::Number17,
    Prompt::Number18,
    Prompt::Number19,
];

/// "twenty" to "ninety", by tens digit minus two.
const TENS: [Prompt; 8] = [
    Prompt::Number20,
    Prompt::Number30,
    Prompt::Number40,
    Prompt::Number50,
    Prompt::Number60,
    Prompt::Number70,
    Prompt::Number80,
    Prompt::Number90,
];

/// The letters, in alphabetical order.
const LETTERS: [Prompt; 26] = [
    Prompt::LetterA,
    Prompt::LetterB,
    Prompt::LetterC,
    Prompt::LetterD,
    Prompt::LetterE,
    Prompt::LetterF,
    Prompt::LetterG,
    Prompt::LetterH,
    Prompt::LetterI,
    Prompt::LetterJ,
    Prompt::LetterK,
    Prompt::LetterL,
    Prompt::LetterM,
    Prompt::LetterN,
    Prompt::LetterO,
    Prompt::LetterP,
    Prompt::LetterQ,
    Prompt::LetterR,
    Prompt::LetterS,
    Prompt::LetterT,
    Prompt::LetterU,
    Prompt::LetterV,
    Prompt::LetterW,
    Prompt::LetterX,
    Prompt::LetterY,
    Prompt::LetterZ,
];

/// A keypad key: `'0'..='9'`, `'*'` ("star") or `'#'` ("pound"); anything else is `None`.
pub fn digit(d: char) -> Option<Prompt> {
    match d {
        '*' => Some(Prompt::Star),
        '#' => Some(Prompt::Pound),
        _ => d.to_digit(10).and_then(|value| DIGITS.get(value as usize)).copied(),
    }
}

/// An ASCII letter by its name, either case; anything else is `None`.
pub fn letter(c: char) -> Option<Prompt> {
    if !c.is_ascii_alphabetic() {
        return None;
    }
    let index = c.to_ascii_lowercase() as usize - 'a' as usize;
    LETTERS.get(index).copied()
}

/// `text` said character by character: digits, `*`, `#` and ASCII letters, skipping everything
/// else (spaces, `+`, `@`, dots ...). Spells a caller's number or user name.
pub fn spell(text: &str) -> Vec<Prompt> {
    text.chars().filter_map(|c| digit(c).or_else(|| letter(c))).collect()
}

/// `n` said as a number: 0 to 999 the way people say it ("three hundred forty two", "twelve",
/// "one hundred five"), larger numbers digit by digit, which is how a listener takes in a long
/// number best.
pub fn count(n: u32) -> Vec<Prompt> {
    if n > 999 {
        return spell(&n.to_string());
    }
    if n == 0 {
        return vec![Prompt::Digit0];
    }
    let mut words = Vec::with_capacity(4);
    let hundreds = (n / 100) as usize;
    let rest = (n % 100) as usize;
    if hundreds > 0 {
        words.push(DIGITS[hundreds]);
        words.push(Prompt::Hundred);
    }
    match rest {
        0 => {}
        1..=9 => words.push(DIGITS[rest]),
        10..=19 => words.push(TEENS[rest - 10]),
        _ => {
            words.push(TENS[rest / 10 - 2]);
            if !rest.is_multiple_of(10) {
                words.push(DIGITS[rest % 10]);
            }
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::io::Cursor;

    use sambung_media::wav::WavPlayer;

    use super::*;

    /// What a prompt's RIFF header says, read without any WAV library so the test does not
    /// trust the code it feeds.
    #[derive(Debug)]
    struct Header {
        format_tag: u16,
        channels: u16,
        sample_rate: u32,
        bits: u16,
        data_len: usize,
    }

    fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
        Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
    }

    fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
        Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    }

    /// Walks the chunks after `RIFF....WAVE` to `fmt ` and `data`.
    fn parse_header(bytes: &[u8]) -> Result<Header, String> {
        if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
            return Err("not RIFF/WAVE".into());
        }
        let riff_len = u32_at(bytes, 4).ok_or("short RIFF header")? as usize;
        if riff_len + 8 != bytes.len() {
            return Err(format!("RIFF length {} for a file of {} bytes", riff_len, bytes.len()));
        }
        let mut at = 12;
        let mut fmt = None;
        while at + 8 <= bytes.len() {
            let id = &bytes[at..at + 4];
            let len = u32_at(bytes, at + 4).ok_or("short chunk header")? as usize;
            let body = bytes.get(at + 8..at + 8 + len).ok_or("chunk runs past the end")?;
            match id {
                b"fmt " => {
                    fmt = Some((
                        u16_at(body, 0).ok_or("short fmt")?,
                        u16_at(body, 2).ok_or("short fmt")?,
                        u32_at(body, 4).ok_or("short fmt")?,
                        u16_at(body, 14).ok_or("short fmt")?,
                    ));
                }
                b"data" => {
                    let (format_tag, channels, sample_rate, bits) = fmt.ok_or("data before fmt")?;
                    return Ok(Header { format_tag, channels, sample_rate, bits, data_len: len });
                }
                _ => {}
            }
            at += 8 + len + len % 2;
        }
        Err("no data chunk".into())
    }

    #[test]
    fn every_prompt_is_16khz_mono_16bit_of_a_sensible_length() {
        for &prompt in Prompt::ALL {
            let header = parse_header(prompt.wav()).unwrap_or_else(|e| panic!("{}: {e}", prompt.name()));
            assert_eq!(header.format_tag, 1, "{}: PCM", prompt.name());
            assert_eq!(header.channels, 1, "{}: mono", prompt.name());
            assert_eq!(header.sample_rate, 16_000, "{}: 16 kHz", prompt.name());
            assert_eq!(header.bits, 16, "{}: 16-bit", prompt.name());
            // The longest, the message menu's seven choices, takes 17.6 s at 150 words a minute.
            let seconds = header.data_len as f64 / 32_000.0;
            assert!((0.2..=20.0).contains(&seconds), "{}: {seconds} s", prompt.name());

            // The media engine plays it too, frame by frame, to its end.
            let mut player =
                WavPlayer::new(Cursor::new(prompt.wav()), 16_000).unwrap_or_else(|e| panic!("{}: {e}", prompt.name()));
            let mut frames = 0;
            let mut loudest = 0;
            while let Some(frame) = player.next_frame().unwrap_or_else(|e| panic!("{}: {e}", prompt.name())) {
                loudest = frame.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0).max(loudest);
                frames += 1;
            }
            assert!(!player.was_truncated(), "{}", prompt.name());
            assert_eq!(frames, header.data_len.div_ceil(640), "{}: 20 ms frames", prompt.name());
            assert!(loudest > 3000, "{}: speech, not silence (peak {loudest})", prompt.name());
        }
    }

    #[test]
    fn the_prompt_directory_holds_exactly_the_prompts() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
        let on_disk: HashSet<String> = std::fs::read_dir(&dir)
            .expect("prompts directory")
            .map(|entry| entry.expect("directory entry").file_name().to_string_lossy().into_owned())
            .collect();
        let declared: HashSet<String> = Prompt::ALL.iter().map(|p| format!("{}.wav", p.name())).collect();
        assert_eq!(on_disk, declared);
        assert_eq!(declared.len(), Prompt::ALL.len(), "names are unique");
        let variants: HashSet<Prompt> = Prompt::ALL.iter().copied().collect();
        assert_eq!(variants.len(), Prompt::ALL.len());
    }

    #[test]
    fn the_script_lists_every_prompt() {
        let script = include_str!("../../../../scripts/make-prompts.sh");
        for prompt in Prompt::ALL {
            assert!(script.contains(&format!("\n  {}|", prompt.name())), "{} missing from the script", prompt.name());
        }
    }

    #[test]
    fn keys_and_letters() {
        assert_eq!(digit('0'), Some(Prompt::Digit0));
        assert_eq!(digit('7'), Some(Prompt::Digit7));
        assert_eq!(digit('9'), Some(Prompt::Digit9));
        assert_eq!(digit('*'), Some(Prompt::Star));
        assert_eq!(digit('#'), Some(Prompt::Pound));
        assert_eq!(digit('a'), None);
        assert_eq!(digit('٣'), None, "only ASCII digits");
        assert_eq!(letter('a'), Some(Prompt::LetterA));
        assert_eq!(letter('Z'), Some(Prompt::LetterZ));
        assert_eq!(letter('m'), Some(Prompt::LetterM));
        assert_eq!(letter('é'), None);
        assert_eq!(letter('1'), None);
        for (i, c) in ('a'..='z').enumerate() {
            assert_eq!(letter(c).map(Prompt::name), Some(format!("letter_{c}")).as_deref());
            assert_eq!(letter(c.to_ascii_uppercase()), Some(LETTERS[i]));
        }
        for (value, c) in ('0'..='9').enumerate() {
            assert_eq!(digit(c).map(Prompt::name), Some(format!("digit_{value}")).as_deref());
        }
    }

    #[test]
    fn spelling_skips_what_cannot_be_said() {
        use Prompt::*;
        assert_eq!(spell("+62 21-5*#"), [Digit6, Digit2, Digit2, Digit1, Digit5, Star, Pound]);
        assert_eq!(spell("Bo.9"), [LetterB, LetterO, Digit9]);
        assert_eq!(spell("é ü @"), []);
        assert_eq!(spell(""), []);
    }

    #[test]
    fn numbers_are_said_as_words() {
        use Prompt::*;
        assert_eq!(count(0), [Digit0]);
        assert_eq!(count(1), [Digit1]);
        assert_eq!(count(9), [Digit9]);
        assert_eq!(count(10), [Number10]);
        assert_eq!(count(13), [Number13]);
        assert_eq!(count(19), [Number19]);
        assert_eq!(count(20), [Number20]);
        assert_eq!(count(21), [Number20, Digit1]);
        assert_eq!(count(99), [Number90, Digit9]);
        assert_eq!(count(100), [Digit1, Hundred]);
        assert_eq!(count(105), [Digit1, Hundred, Digit5]);
        assert_eq!(count(111), [Digit1, Hundred, Number11]);
        assert_eq!(count(340), [Digit3, Hundred, Number40]);
        assert_eq!(count(342), [Digit3, Hundred, Number40, Digit2]);
        assert_eq!(count(999), [Digit9, Hundred, Number90, Digit9]);
        assert_eq!(count(1000), [Digit1, Digit0, Digit0, Digit0]);
        assert_eq!(count(u32::MAX).len(), 10);
        // Every number up to 999 is one to four words, none of them a key name.
        for n in 0..=999 {
            let words = count(n);
            assert!((1..=4).contains(&words.len()), "{n}: {words:?}");
            assert!(!words.contains(&Star) && !words.contains(&Pound), "{n}");
        }
    }
}
