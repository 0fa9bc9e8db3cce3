//! One call: who and what it is ([`Call`]), and where it is in its life ([`State`]).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use sambung_sip::dialog::Dialog;
use sambung_sip::transaction::{Peer, TxKey};
use sambung_sip::{Request, SipStr};

use super::media::CallMedia;
use super::prack::Reliable;
use super::route::Hop;
use super::session_timer::LegTimer;
use super::{CallId, Side};
use crate::registrar::Account;

/// A call. Its [`State`] holds what only one stage of its life has.
#[derive(Debug)]
pub(crate) struct Call {
    pub id: CallId,
    pub caller: Arc<Account>,
    /// The account the caller dialled.
    pub callee: Arc<Account>,
    /// What the caller dialled, for the call record, when it names no account (`*97`).
    pub dialled: Option<String>,
    pub a: ALeg,
    /// The B leg's identity for the current target (RFC 3261 §8.2.2.2: each retargeting
    /// gets a fresh one, so a device rung again does not take it for a merged request).
    pub b_call_id: SipStr,
    pub b_tag: String,
    /// The account whose devices ring now: the callee, or where the call was forwarded.
    pub target: Arc<Account>,
    /// Every target so far, the dialled callee first (History-Info, Diversion, loops).
    pub history: Vec<Hop>,
    /// Max-Forwards of the B legs.
    pub hops: u32,
    /// Every INVITE sent on the B side, for every target, in order.
    pub forks: Vec<Fork>,
    pub media: Media,
    /// Unix seconds.
    pub started: u64,
    pub state: State,
    /// A transfer an operator asked for, under way.
    pub transfer: Option<super::transfer::Transfer>,
    /// The `Replaces` (escaped) of a phone's attended transfer, for the REFER we send on.
    pub replaces: Option<String>,
    /// The call this one takes over (an INVITE with Replaces): only that device rings.
    pub replacing: Option<super::replaces::OtherLeg>,
    /// The dialogs this call has in the shared table of answered calls.
    pub listed: Option<[sambung_sip::dialog::DialogId; 2]>,
    /// The way out, for a call that leaves the service (an outside URI, a number).
    pub outside: Option<Box<super::outside::OutsideRoute>>,
    /// The call counts toward its caller's toll-fraud limits (not an emergency call, not a
    /// carrier's call).
    pub counted: bool,
    /// A ring group's members ring (the call was for a group, or forwarded to one).
    pub group: Option<Box<super::group::GroupRing>>,
    /// The side put on hold by the other, hearing the music on hold.
    pub held: Option<Side>,
    /// The caller, answered by an application, is being connected to a target (the
    /// attendant's choice): its answered side waits here, with the application still on the B
    /// leg, while the call is [`State::Ringing`] the target. See [`super::connect`].
    pub connecting: Option<Box<Answered>>,
    /// The target's own settings do not apply when it fails (a queue's agent): the failure
    /// ends the attempt.
    pub plain_ring: bool,
    /// The relay records the call.
    pub recording: bool,
}

/// The caller's leg.
#[derive(Debug)]
pub(crate) struct ALeg {
    /// The INVITE's server transaction.
    pub key: TxKey,
    pub invite: Request,
    pub peer: Peer,
    /// How the caller's device shows in the call record.
    pub device: String,
    /// The caller's INVITE carried no offer: the offer comes in the 2xx, the answer in the
    /// caller's ACK, which we then carry to the callee (RFC 3264 §2).
    pub late_offer: bool,
    /// Reliable provisional responses, when the caller requires them (RFC 3262).
    pub reliable: Option<Reliable>,
}

/// One INVITE of the B side: to a device of a target, or an outside URI.
#[derive(Debug)]
pub(crate) struct Fork {
    pub key: TxKey,
    pub peer: Peer,
    pub invite: Request,
    /// For the call record: the device's contact, or the outside URI.
    pub device: String,
    /// The account whose device this is; `None` for an outside URI.
    pub account: Option<i64>,
    /// The final status, once there is one (408 for a timeout).
    pub status: Option<u16>,
}

/// The call's media: none yet (no description seen), the session opening (with what waits for
/// its ports), or open.
#[derive(Debug)]
pub(crate) enum Media {
    None,
    /// Responses of forks that carry a description, held until the ports are known (a late
    /// offer's first description comes from the callee).
    Opening {
        queued: Vec<(usize, sambung_sip::Response)>,
    },
    Open(Box<CallMedia>),
}

/// Where a call is in its life.
#[derive(Debug)]
pub(crate) enum State {
    /// The caller's offer waits for the media session's ports before the call is routed;
    /// `service` is the application a service code named.
    Opening { service: Option<crate::apps::App> },
    /// Ringing a target's devices, or an outside URI.
    Ringing(Ringing),
    /// Answered by a device or an application.
    Answered(Box<Answered>),
    /// Over for the caller and recorded. Forks that were cancelled but never answered finally
    /// are still waited for, so that a late 2xx is acknowledged and hung up (§13.2.2.4).
    Ending,
}

/// Ringing one target.
#[derive(Debug)]
pub(crate) struct Ringing {
    /// Forks before this index rang an earlier target: their answers come too late.
    pub stage: usize,
    pub deadline: Instant,
    /// The current target is an outside URI: its failure ends the call.
    pub outside: bool,
    /// The deadline leads to no-answer forwarding or voicemail rather than a failure.
    pub no_answer_step: bool,
    /// A device of this target is alerting (a 180 or 183 came).
    pub alerting: bool,
}

/// An answered call.
#[derive(Debug)]
pub(crate) struct Answered {
    /// Unix seconds.
    pub at: u64,
    pub a_dialog: Option<Dialog>,
    pub b: BSide,
    /// Session timers of the A and B legs (RFC 4028).
    pub timers: [Option<LegTimer>; 2],
}

/// Who answered.
#[derive(Debug)]
pub(crate) enum BSide {
    /// A device (or outside URI): fork `fork`, in its dialog.
    Device { fork: usize, dialog: Box<Dialog> },
    /// An application of the server.
    App(AppLeg),
}

/// An application on the B side of a call.
#[derive(Debug)]
pub(crate) struct AppLeg {
    /// For the call record: `voicemail`, `mailbox`, `feature code`.
    pub name: &'static str,
    /// The application said it is done: it needs no Stop.
    pub ended: bool,
    /// The application's description, given again to re-offers.
    pub answer: Bytes,
    /// What the application speaks and hears (the caller's codec), and its PCM rate: another
    /// application takes the leg over with them.
    pub format: sambung_media::negotiate::Negotiated,
    pub rate: u32,
}

impl Call {
    /// The SIP peer of `side`, when it has one (an application has none).
    pub(crate) fn peer(&self, side: Side) -> Option<&Peer> {
        match (side, &self.state) {
            (Side::A, _) => Some(&self.a.peer),
            (Side::B, State::Answered(answered)) => match &answered.b {
                BSide::Device { fork, .. } => Some(&self.forks[*fork].peer),
                BSide::App(_) => None,
            },
            (Side::B, _) => None,
        }
    }

    /// The dialog of `side` once answered (the caller's while it is being connected, too).
    pub(crate) fn dialog_mut(&mut self, side: Side) -> Option<&mut Dialog> {
        if let (Some(connecting), Side::A) = (&mut self.connecting, side) {
            return connecting.a_dialog.as_mut();
        }
        match (&mut self.state, side) {
            (State::Answered(answered), Side::A) => answered.a_dialog.as_mut(),
            (State::Answered(answered), Side::B) => match &mut answered.b {
                BSide::Device { dialog, .. } => Some(dialog),
                BSide::App(_) => None,
            },
            _ => None,
        }
    }

    /// The peer and dialog of `side`, together.
    pub(crate) fn leg_mut(&mut self, side: Side) -> Option<(Peer, &mut Dialog)> {
        let peer = self.peer(side)?.clone();
        Some((peer, self.dialog_mut(side)?))
    }

    /// The two dialogs of an answered call between two devices, each with the other leg.
    pub(crate) fn replaceable_dialogs(
        &self,
    ) -> Option<[(sambung_sip::dialog::DialogId, super::replaces::OtherLeg); 2]> {
        let State::Answered(answered) = &self.state else { return None };
        let (BSide::Device { fork, dialog: b }, Some(a)) = (&answered.b, &answered.a_dialog) else { return None };
        let fork = &self.forks[*fork];
        let to_b = super::replaces::OtherLeg {
            account: fork.account,
            peer: fork.peer.clone(),
            target: b.remote_target().clone(),
            dialog: b.id().clone(),
        };
        let to_a = super::replaces::OtherLeg {
            account: Some(self.caller.id),
            peer: self.a.peer.clone(),
            target: a.remote_target().clone(),
            dialog: a.id().clone(),
        };
        Some([(a.id().clone(), to_b), (b.id().clone(), to_a)])
    }

    pub(crate) fn is_answered(&self) -> bool {
        matches!(self.state, State::Answered(_))
    }

    pub(crate) fn is_over(&self) -> bool {
        matches!(self.state, State::Ending)
    }

    /// The application answering the call, if one does (also while it is connecting the call).
    pub(crate) fn app_mut(&mut self) -> Option<&mut AppLeg> {
        if let Some(connecting) = &mut self.connecting {
            return match &mut connecting.b {
                BSide::App(app) => Some(app),
                BSide::Device { .. } => None,
            };
        }
        match &mut self.state {
            State::Answered(answered) => match &mut answered.b {
                BSide::App(app) => Some(app),
                BSide::Device { .. } => None,
            },
            _ => None,
        }
    }

    /// An application has the B leg: it answered the call (and may be connecting it).
    pub(crate) fn has_app(&self) -> bool {
        self.connecting.is_some()
            || matches!(&self.state, State::Answered(answered) if matches!(answered.b, BSide::App(_)))
    }

    /// The open media, if any.
    pub(crate) fn media_mut(&mut self) -> Option<&mut CallMedia> {
        match &mut self.media {
            Media::Open(media) => Some(media),
            _ => None,
        }
    }

    /// Forks of the current stage that have no final answer.
    pub(crate) fn pending_forks(&self, from: usize) -> Vec<TxKey> {
        self.forks[from.min(self.forks.len())..].iter().filter(|f| f.status.is_none()).map(|f| f.key).collect()
    }

    /// Nothing of the call is waiting any more (every fork has its final answer).
    pub(crate) fn settled(&self) -> bool {
        self.forks.iter().all(|f| f.status.is_some())
    }

    /// The call's earliest timer.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let reliable = self.a.reliable.as_ref().and_then(Reliable::deadline);
        match &self.state {
            State::Ringing(ringing) => {
                // Being connected on, the caller's session timer still runs.
                let caller = self.connecting.as_ref().and_then(|c| c.timers[0].as_ref()).map(|t| t.due);
                let due = reliable.map_or(ringing.deadline, |r| r.min(ringing.deadline));
                Some(caller.map_or(due, |c| c.min(due)))
            }
            State::Answered(answered) => {
                let transfer = self.transfer.as_ref().map(|t| t.deadline);
                answered.timers.iter().flatten().map(|t| t.due).chain(transfer).min()
            }
            State::Opening { .. } => reliable,
            State::Ending => None,
        }
    }
}
