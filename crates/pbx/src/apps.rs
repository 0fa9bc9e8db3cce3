//! Calls the server answers itself: voicemail, the mailbox menu, feature-code confirmations.
//!
//! Call control decides that a call goes to an application: it answers the caller itself (the
//! application speaks the caller's own codec, so nothing is transcoded), turns the B leg of the
//! call's media session into the application ([`crate::MediaCommand::AttachApp`]) and asks the
//! applications to start ([`AppRequest::Start`]). The application then plays, records and reads
//! keys through that leg, inside the server. Keys the caller sends by SIP INFO reach it as
//! [`AppRequest::Key`] (RFC 4733 keys come straight from the media leg); a caller who hangs up
//! ends it with [`AppRequest::Stop`]; an application that is done says so with
//! [`crate::Input::AppEnded`], and call control hangs up the caller's leg (or transfers it).
//!
//! An application may also hand its caller on without ending ([`crate::Input::AppConnect`],
//! the auto-attendant's choice): call control rings the target while the application goes on
//! playing (a ringing tone). When a device answers, the application is stopped and the caller
//! talks to the device; when the target cannot take the call, the application is told
//! ([`AppRequest::ConnectFailed`]) and has the caller again. A target with voicemail that does
//! not answer sends the caller to that voicemail instead, as a direct call would.

/// What a feature code did, for the spoken confirmation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirmation {
    ForwardOn,
    ForwardOff,
    DndOn,
    DndOff,
    /// The code was not understood or its target is not valid.
    Invalid,
}

/// Which application answers a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum App {
    /// Record a message for `account_id` (greeting, beep, recording).
    Voicemail {
        account_id: i64,
        /// How the default greeting names the mailbox: its extension, else its username.
        name: String,
    },
    /// The mailbox menu. `account_id` is known when the owner dials `*97` from one of their own
    /// devices; `None` (the access number) asks for the mailbox number and its PIN.
    Mailbox { account_id: Option<i64> },
    /// Speak a confirmation, then hang up.
    Confirm(Confirmation),
    /// The auto-attendant's menu `menu` (by name): prompts, key choices, dial-by-extension.
    Attendant { menu: String },
    /// Call queue `queue` (by name): the caller waits with music, told its position, until an
    /// agent is free.
    Queue { queue: String },
    /// The caller (an agent of queues) logs in to its queues (`*45`) or out (`*46`).
    Agent { login: bool },
    /// Pick up a call ringing for one of `accounts` (`**EXT`: that account; `*8`: the members
    /// of the caller's ring groups): the application finds it and asks call control for it
    /// ([`crate::Input::PickUp`]), then bridges the two.
    Pickup { accounts: Vec<i64> },
    /// Parking slot `slot`: an empty slot parks the caller (music until someone retrieves it, or
    /// back to `parker` after the parking time); an occupied one retrieves the call parked there.
    Parking { slot: String, parker: Option<String> },
    /// The caller is bridged with the application of call `partner` (a pickup): each hears the
    /// other through the server.
    Bridge { partner: u64 },
}

impl App {
    /// How the application shows in call records and logs.
    pub fn name(&self) -> &'static str {
        match self {
            App::Voicemail { .. } => "voicemail",
            App::Mailbox { .. } => "mailbox",
            App::Confirm(_) => "feature code",
            App::Attendant { .. } => "attendant",
            App::Queue { .. } => "queue",
            App::Agent { .. } => "feature code",
            App::Pickup { .. } | App::Bridge { .. } => "pickup",
            App::Parking { .. } => "parking",
        }
    }
}

/// Who placed the call (always an authenticated account, for now).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub account_id: i64,
    pub username: String,
    /// The caller's display name, else the username.
    pub display: String,
    /// `sip:user@domain` of the caller, for call-back and the message's record.
    pub uri: String,
    /// The caller's extension, when it has one (spoken and called back).
    pub extension: Option<String>,
}

/// What call control asks of the applications.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppRequest {
    /// Run `app` on call `call`, whose media session's B leg is now the application's, as PCM
    /// at `rate` (8000 or 16000 Hz).
    Start { call: u64, app: App, caller: Caller, rate: u32 },
    /// The caller pressed a key (RFC 4733 or SIP INFO): `0`-`9`, `*`, `#`, `A`-`D`.
    Key { call: u64, key: char },
    /// The caller hung up (or the call failed, or was connected elsewhere): stop at once,
    /// without reporting an end.
    Stop { call: u64 },
    /// The target of the application's [`crate::Input::AppConnect`] could not take the call
    /// (`status`: 486 busy, 480 unavailable or no answer, 404 no such target ...): the
    /// application has its caller again.
    ConnectFailed { call: u64, status: u16 },
}

/// How an application ended its call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppEnd {
    /// Hang up the caller.
    Hangup,
    /// The caller asked to call `target` (a `sip:` URI) back from the mailbox menu: call control
    /// transfers the caller there (REFER) and hangs up.
    CallBack { target: String },
}

/// The counts a mailbox shows (RFC 3842 `Voice-Message: new/old`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MailboxCounts {
    pub new: u32,
    pub saved: u32,
}
