//! The domain events: one stream of what happened, for everything that watches the service
//! (call records, logs, and next the REST API, the web app's live view, webhooks, metrics and
//! the abuse guard).
//!
//! Call control emits them as [`crate::Output::Event`]; the server's applications add the ones
//! only they know ([`Event::VoicemailLeft`]). Events describe, they never ask: whatever
//! subscribes cannot change the call they describe.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use sambung_sip::Transport;

use crate::guard::FraudLimit;

use crate::io::RoutingChange;

/// Something that happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A device of an account registered (a new binding, not a refresh).
    Registered {
        account_id: i64,
        username: String,
        /// The binding's key: RFC 5626 instance and reg-id, else the contact URI.
        device: String,
        contact: String,
        transport: Transport,
        source: SocketAddr,
        /// Unix seconds.
        expires_at: u64,
        user_agent: Option<String>,
    },
    /// A binding went away.
    Unregistered { account_id: i64, device: String, contact: String, cause: Unregistration },
    /// A call was placed (an INVITE passed authentication and names someone): by the account
    /// `caller_id` to the account `callee_id` (`callee` is what was dialled).
    CallStarted { call: u64, call_id: String, caller: String, callee: String, caller_id: i64, callee_id: i64, at: u64 },
    /// A device of the call's current target is ringing (the first 180/183 of each target).
    CallRinging { call: u64, target: String, target_id: i64 },
    /// A device or an application answered: `by` is the device (or the application), and
    /// `account_id` the device's account (`None` for an application or an outside URI).
    CallAnswered { call: u64, by: String, account_id: Option<i64>, at: u64 },
    /// The call is over: its record.
    CallEnded(CallRecord),
    /// A transfer an operator asked for ([`crate::Input::TransferCall`]) is over: `status`
    /// 200 when the referred party's call to `target` was answered (this call then ended),
    /// else why not (409 the call is not answered or already transferring, 488 that party is not
    /// a phone, the phone's refusal of the REFER, the status its call failed with, 408 never
    /// reported); the call goes on after a failure.
    TransferEnded { call: u64, target: String, status: u16, reason: String },
    /// A click-to-call attempt ([`crate::Input::Originate`]) is over: `status` 200 when the
    /// person's device answered and its own call to `target` was answered (or the device took
    /// that call over), else why not (480 no device registered or answering, 486 busy, 603
    /// declined, 408 no answer, or the status the device's call failed with).
    OriginateEnded { id: u64, account_id: i64, username: String, target: String, status: u16, reason: String },
    /// A text message was stored for its recipient.
    MessageStored { message_id: i64, from_account: Option<i64>, to_account: i64 },
    /// A device took a stored message.
    MessageDelivered { message_id: i64, account_id: i64, device: String },
    /// A caller left a voicemail message (emitted by the voicemail application).
    VoicemailLeft { account_id: i64, message_id: i64, caller: String, duration_secs: u32 },
    /// A request carried credentials that did not authenticate (a wrong password, an unknown
    /// or disabled user, a forged or replayed nonce). The answer never says which; this event
    /// may, for the guard.
    AuthFailed { source: SocketAddr, transport: Transport, method: String, username: String, reason: AuthFailure },
    /// An account's call settings changed (a feature code, or the store's accounts changed).
    SettingsChanged { account_id: i64, change: SettingsChange },
    /// A source address (an IPv6 source's /64) is banned: nothing it sends is read until
    /// `until` (Unix seconds; `None`: until an operator lifts it).
    SourceBanned { source: IpAddr, until: Option<u64>, reason: BanReason },
    /// A ban was lifted by hand before its time.
    SourceUnbanned { source: IpAddr },
    /// An address (an IPv6 source's /64) authenticated, for the first time in a day: from now
    /// on a flood from it is cut to its rate instead of banned, and the watch never bans it
    /// (its address may be forged by someone who wants it banned).
    SourceVerified { source: IpAddr },
    /// Too many failed authentications for `username`: until `until` (Unix seconds) even the
    /// right password gets the answer a wrong one gets.
    AccountLocked { username: String, until: u64, failures: u32 },
    /// Too many wrong PINs for a mailbox, across calls: until `until` (Unix seconds) even the
    /// right PIN is refused (emitted by the mailbox application).
    VoicemailPinLocked { account_id: i64, until: u64, failures: u32 },
    /// A call was refused by a toll-fraud limit of the account (the caller's, or for an
    /// outside destination the account whose forwarding led there).
    FraudRefused { account_id: i64, username: String, limit: FraudLimit, destination: Option<String> },
    /// What each side's audio looked like on arrival at the relay, over the whole call (emitted
    /// by the media runtime once the call's media session has closed, after [`Event::CallEnded`]).
    CallQuality { call: u64, legs: Vec<LegReception> },
    /// The registration with a carrier changed state (registered, refreshed, failed).
    TrunkRegistration { trunk: String, state: crate::trunks::TrunkState, at: u64 },
    /// Call `call` is recorded from now on, as `name` (the file `<name>.wav` of the
    /// recordings); `caller` and `callee` are its parties (usernames, or outside parties).
    RecordingStarted { call: u64, name: String, caller: String, callee: String, at: u64 },
}

/// One side's audio as the relay received it (RFC 3550 reception statistics).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegReception {
    /// `caller` or `callee`.
    pub side: &'static str,
    /// RTP packets received.
    pub packets: u64,
    /// RTP packets lost on the way to the relay.
    pub lost: u64,
    /// Interarrival jitter in microseconds.
    pub jitter_us: u64,
    /// The payload type of its last packet.
    pub payload_type: Option<u8>,
    /// The mean round trip between the relay and the side's device (RTCP), in microseconds.
    pub rtt_us: Option<u64>,
}

/// Why a source was banned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BanReason {
    /// It sent faster than its bucket allowed (messages or new connections).
    Flood,
    /// This many failed authentications within the window.
    AuthFailures { count: u32 },
    /// It named this many unknown users within the window (an extension sweep).
    UnknownUsers { count: u32 },
    /// Its User-Agent is a known scanning tool's.
    Scanner { user_agent: String, tool: String },
    /// An operator banned it (`sambung ban add`), with their note.
    Manual(String),
}

impl fmt::Display for BanReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BanReason::Flood => f.write_str("flood: over the per-source rate"),
            BanReason::AuthFailures { count } => write!(f, "{count} failed authentications"),
            BanReason::UnknownUsers { count } => write!(f, "sweep: {count} usernames never authenticated"),
            BanReason::Scanner { user_agent, .. } => write!(f, "scanner: User-Agent {user_agent:?}"),
            BanReason::Manual(note) if note.is_empty() => f.write_str("by hand"),
            BanReason::Manual(note) => write!(f, "by hand: {note}"),
        }
    }
}

/// Why a binding went away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unregistration {
    /// The device removed it (expires=0 or `Contact: *`).
    Removed,
    /// Its time ran out.
    Expired,
    /// The same device registered from another contact.
    Replaced,
    /// The connection it registered over closed, and nothing else reaches it (a browser's
    /// WebSocket: the tab was closed or reloaded).
    FlowClosed,
}

/// Why credentials did not authenticate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// No such account, or it is disabled, or in another realm.
    UnknownUser,
    /// The digest response is wrong: a wrong password.
    WrongPassword,
    /// The nonce was not ours, or a count was reused.
    BadNonce,
    /// The account is locked after too many failures (the password was not even checked).
    Locked,
}

/// What changed in an account's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettingsChange {
    /// From a phone, by a feature code.
    FeatureCode(RoutingChange),
    /// In the store (the command line, later the web app and the API).
    Stored,
}

/// A finished call, for the call records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// The call's number within this server.
    pub call: u64,
    /// The caller's Call-ID.
    pub call_id: String,
    pub caller: String,
    pub callee: String,
    pub caller_device: Option<String>,
    pub callee_device: Option<String>,
    pub started_at: u64,
    pub answered_at: Option<u64>,
    pub ended_at: u64,
    pub duration_secs: u64,
    /// The final status of the call: 200 for an answered call, else what the caller heard.
    pub cause_code: u16,
    pub cause_reason: String,
    /// `caller`, `callee` or `system`.
    pub hangup_side: &'static str,
    /// Who answered: the account's username, or the application (`voicemail`, `mailbox`,
    /// `feature code`); `None` unanswered, or answered by an outside URI (`callee_device`).
    pub answered_by: Option<String>,
    /// Where the call was forwarded on its way, in order: the new target (a username, or an
    /// outside URI) and why, as RFC 5806 names it (`unconditional`, `user-busy`, `no-answer`,
    /// `unavailable`).
    pub forwards: Vec<(String, &'static str)>,
}
