//! Calls joined inside the server: call pickup and parking.
//!
//! Two calls answered by applications are bridged through the [`Patchbay`]: each call's task
//! sends what its caller says, 20 ms at a time, to the other's, and plays what it gets (at its
//! own rate). The two calls may be on different shards, in different codecs.
//!
//! - **Pickup** (`**EXT`, `*8`): the picker's call finds a call ringing for the account (the
//!   presence hub knows who rings) and asks that call's shard for it
//!   ([`sambung_pbx::Input::PickUp`]); its caller is then answered by [`sambung_pbx::App::Bridge`]
//!   and the two are bridged.
//! - **Parking** (`[parking] slots`): a caller handed to a free slot (a phone's blind transfer
//!   to `701`, or dialling it) waits there with music; whoever dials the slot then takes it over,
//!   from any phone. A parked call not taken within `[parking] timeout_seconds` rings the one who
//!   parked it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use sambung_media::resample::Resampler;
use sambung_pbx::AppEnd;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::{TryRecvError, TrySendError};
use tracing::{debug, info};

use super::prompts::Prompt;
use super::{Audio, CallIo, Connect, Context, Played};
use crate::transport::Event;

/// How long a call waits for the one it is to be bridged with.
const BRIDGE_WAIT: Duration = Duration::from_secs(4);
/// Frames a bridge holds for its caller before dropping the oldest (the two clocks drift).
const BRIDGE_QUEUE: usize = 6;
/// How long the one who parked a call rings when it comes back: its devices only, none of its
/// forwarding or voicemail.
const RING_BACK_SECS: u32 = 30;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where bridged calls find each other. Shared by every shard's applications.
#[derive(Clone, Debug, Default)]
pub struct Patchbay {
    /// Each bridging call's inbox.
    ends: Arc<Mutex<HashMap<u64, mpsc::Sender<Vec<i16>>>>>,
    /// Calls asked to bridge (a parked call) → by whom.
    requests: Arc<Mutex<HashMap<u64, u64>>>,
}

impl Patchbay {
    fn open(&self, call: u64) -> mpsc::Receiver<Vec<i16>> {
        let (tx, rx) = mpsc::channel(BRIDGE_QUEUE);
        lock(&self.ends).insert(call, tx);
        rx
    }

    fn end_of(&self, call: u64) -> Option<mpsc::Sender<Vec<i16>>> {
        lock(&self.ends).get(&call).cloned()
    }

    fn close(&self, call: u64) {
        lock(&self.ends).remove(&call);
        lock(&self.requests).remove(&call);
    }

    /// Asks call `target` (parked) to bridge with call `from`.
    fn request(&self, target: u64, from: u64) {
        lock(&self.requests).insert(target, from);
    }

    fn take_request(&self, target: u64) -> Option<u64> {
        lock(&self.requests).remove(&target)
    }
}

/// The parking slots in use: slot → the parked call.
#[derive(Clone, Debug, Default)]
pub struct ParkingLot {
    slots: Arc<Mutex<HashMap<String, u64>>>,
}

impl ParkingLot {
    /// Parks `call` in `slot` if it is free (true), else leaves it (false).
    fn park(&self, slot: &str, call: u64) -> bool {
        let mut slots = lock(&self.slots);
        if slots.contains_key(slot) {
            return false;
        }
        slots.insert(slot.to_owned(), call);
        true
    }

    /// The call parked in `slot`, if any.
    fn parked(&self, slot: &str) -> Option<u64> {
        lock(&self.slots).get(slot).copied()
    }

    /// `slot` is free again, if `call` held it.
    fn leave(&self, slot: &str, call: u64) {
        let mut slots = lock(&self.slots);
        if slots.get(slot) == Some(&call) {
            slots.remove(slot);
        }
    }

    /// The slots in use, with their calls.
    pub fn in_use(&self) -> Vec<(String, u64)> {
        let mut slots: Vec<_> = lock(&self.slots).iter().map(|(s, c)| (s.clone(), *c)).collect();
        slots.sort();
        slots
    }
}

/// Bridges call `me` with call `partner` until either hangs up: false when `partner` never
/// came within [`BRIDGE_WAIT`] (true once bridged, or when our caller hung up meanwhile).
pub async fn bridge(patchbay: &Patchbay, io: &mut impl CallIo, me: u64, partner: u64) -> bool {
    let mut inbox = patchbay.open(me);
    let rate = io.rate();
    let frame_len = rate as usize / 50;
    let silence = vec![0i16; frame_len];
    let started = Instant::now();
    let to_partner = loop {
        if let Some(end) = patchbay.end_of(partner) {
            break end;
        }
        if started.elapsed() >= BRIDGE_WAIT {
            patchbay.close(me);
            return false;
        }
        if io.exchange(&silence).await.is_none() {
            patchbay.close(me);
            return true;
        }
    };
    info!(call = me, partner, "bridged");
    let mut resampler: Option<Resampler> = None;
    let mut out = silence.clone();
    let mut fitted = Vec::with_capacity(frame_len);
    loop {
        let Some(heard) = io.exchange(&out).await else { break };
        match to_partner.try_send(heard) {
            Err(TrySendError::Closed(_)) => break,
            // The partner is behind: this frame is dropped.
            Err(TrySendError::Full(_)) | Ok(()) => {}
        }
        out = match inbox.try_recv() {
            Ok(frame) if frame.len() == frame_len => frame,
            Ok(frame) => {
                let from = frame.len() as u32 * 50;
                if resampler.as_ref().is_none_or(|r| r.from_rate() != from) {
                    resampler = Resampler::new(from, rate).ok();
                }
                fitted.clear();
                if let Some(resampler) = resampler.as_mut() {
                    resampler.process(&frame, &mut fitted);
                }
                fitted.resize(frame_len, 0);
                fitted.clone()
            }
            Err(TryRecvError::Empty) => silence.clone(),
            Err(TryRecvError::Disconnected) => break,
        };
    }
    patchbay.close(me);
    debug!(call = me, partner, "bridge over");
    true
}

/// `**EXT` / `*8`: picks up a call ringing for one of `accounts` and bridges it with call `me`.
pub async fn pickup(context: &Context, io: &mut impl CallIo, me: u64, accounts: &[i64]) -> AppEnd {
    let ringing = context.hub.as_ref().and_then(|hub| {
        hub.calls().into_iter().find_map(|(call, parties)| {
            parties.iter().any(|(id, p)| accounts.contains(id) && !p.initiator && !p.answered).then_some(call)
        })
    });
    let Some(call) = ringing.filter(|call| *call != me) else {
        info!(call = me, "nothing ringing to pick up");
        io.play(&[Audio::Prompt(Prompt::NoCallToPickUp)], false).await;
        return AppEnd::Hangup;
    };
    info!(call = me, picks_up = call, "pickup");
    if context.events.send(Event::PickUp { call, partner: me }).await.is_err() {
        return AppEnd::Hangup;
    }
    if !bridge(&context.patchbay, io, me, call).await {
        io.play(&[Audio::Prompt(Prompt::NoCallToPickUp)], false).await;
    }
    AppEnd::Hangup
}

/// Parking slot `slot` for call `me`: parks it there if the slot is free, else takes over the
/// call parked there.
pub async fn parking(context: &Context, io: &mut impl CallIo, me: u64, slot: &str, parker: Option<&str>) -> AppEnd {
    let lot = &context.parking;
    if !lot.park(slot, me) {
        if let Some(parker) = parker {
            // Handed over by a phone's transfer to a slot in use: never taken for a retrieval
            // (that would join two callers); it goes back to the one who parked it.
            info!(call = me, slot, parker, "slot in use: back to the one who parked the call");
            return match io.connect(&format!("agent:{parker}:{RING_BACK_SECS}")).await {
                Connect::Over => AppEnd::Hangup,
                Connect::Failed(_) => {
                    io.play(&[Audio::Prompt(Prompt::Goodbye)], false).await;
                    AppEnd::Hangup
                }
            };
        }
        let Some(parked) = lot.parked(slot) else { return AppEnd::Hangup };
        info!(call = me, slot, parked, "retrieving a parked call");
        context.patchbay.request(parked, me);
        if !bridge(&context.patchbay, io, me, parked).await {
            io.play(&[Audio::Prompt(Prompt::NoCallToPickUp)], false).await;
        }
        return AppEnd::Hangup;
    }
    info!(call = me, slot, parker, "parked");
    let end = wait_parked(context, io, me, slot, parker).await;
    lot.leave(slot, me);
    context.patchbay.close(me);
    end
}

async fn wait_parked(context: &Context, io: &mut impl CallIo, me: u64, slot: &str, parker: Option<&str>) -> AppEnd {
    let parked_at = Instant::now();
    let music = context.queues.music();
    let mut chunk = 0usize;
    let mut rang_parker = false;
    loop {
        if let Some(from) = context.patchbay.take_request(me) {
            context.parking.leave(slot, me);
            bridge(&context.patchbay, io, me, from).await;
            return AppEnd::Hangup;
        }
        let waited = parked_at.elapsed();
        if waited >= context.parking_timeout * 3 {
            info!(call = me, slot, "parked too long: goodbye");
            io.play(&[Audio::Prompt(Prompt::Goodbye)], false).await;
            return AppEnd::Hangup;
        }
        if waited >= context.parking_timeout
            && !rang_parker
            && let Some(parker) = parker
        {
            rang_parker = true;
            // The slot stays the call's while the parker's devices ring.
            info!(call = me, slot, parker, "parking time over: ringing the one who parked it");
            match io.connect(&format!("agent:{parker}:{RING_BACK_SECS}")).await {
                Connect::Over => return AppEnd::Hangup,
                Connect::Failed(status) => debug!(call = me, slot, status, "the parker did not take it back"),
            }
        }
        let played = match music.get(chunk % music.len().max(1)) {
            Some(wav) => {
                chunk += 1;
                io.play(&[Audio::Wav(wav)], false).await
            }
            None => match io.exchange(&vec![0; io.rate() as usize / 50]).await {
                Some(_) => Played::Done,
                None => Played::Hangup,
            },
        };
        if played == Played::Hangup {
            return AppEnd::Hangup;
        }
    }
}
