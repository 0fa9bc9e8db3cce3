//! Calls the server answers itself: voicemail, the mailbox menu, feature-code confirmations.
//!
//! The core stays sans-IO: it decides that a call goes to an application and queues an
//! [`AppRequest::Start`] with the SDP offer meant for the application's side (the B leg of the
//! call's relay session). The runtime hands it to the applications (`crate::apps`), which bind
//! their own RTP socket, answer the offer ([`Core::app_answered`]), then play, record and read
//! keys. Keys pressed by the caller reach the application as [`AppRequest::Key`]; a caller who
//! hangs up ends it with [`AppRequest::Stop`]; an application that is done reports
//! [`Core::app_ended`], and the core hangs up the caller's leg.

use bytes::Bytes;

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

/// What the core asks of the applications.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppRequest {
    /// Answer call `call` with `app`; `offer` is the SDP meant for the application's side.
    Start { call: u64, app: App, caller: Caller, offer: Bytes },
    /// The caller pressed a key (RFC 4733 or SIP INFO): `0`-`9`, `*`, `#`, `A`-`D`.
    Key { call: u64, key: char },
    /// The caller hung up (or the call failed): stop at once.
    Stop { call: u64 },
}

/// How an application ended its call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppEnd {
    /// Hang up the caller.
    Hangup,
    /// The caller asked to call `target` (a `sip:` URI) back from the mailbox menu: the core
    /// transfers the caller there (REFER) and hangs up.
    CallBack { target: String },
}

/// The counts a mailbox shows (RFC 3842 `Voice-Message: new/old`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MailboxCounts {
    pub new: u32,
    pub saved: u32,
}

impl super::Core {
    /// The next request for the applications.
    pub fn poll_app(&mut self) -> Option<AppRequest> {
        self.app_requests.pop_front()
    }

    /// The mailbox counts of every account, loaded at start.
    pub fn set_mailboxes(&mut self, counts: impl IntoIterator<Item = (i64, MailboxCounts)>) {
        self.mailboxes = counts.into_iter().collect();
    }

    /// An application answered call `call` (`None`: it could not).
    pub fn app_answered(&mut self, now: super::Now, call: u64, sdp: Option<Bytes>) {
        self.last_now = Some(now);
        self.on_app_answered(now, call, sdp);
        self.drain(now, None);
    }

    /// An application is done with call `call`.
    pub fn app_ended(&mut self, now: super::Now, call: u64, end: AppEnd) {
        self.last_now = Some(now);
        self.on_app_ended(now, call, end);
        self.drain(now, None);
    }

    /// A mailbox's counts changed: subscribed devices are told (RFC 3842).
    pub fn mailbox_changed(&mut self, now: super::Now, account_id: i64, counts: MailboxCounts) {
        self.mailboxes.insert(account_id, counts);
        self.last_now = Some(now);
        self.notify_mailbox(now, account_id);
        self.drain(now, None);
    }
}
