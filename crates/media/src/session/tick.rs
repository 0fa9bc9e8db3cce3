//! The session's 20 ms clock: transcoders play out, application legs hear and say a frame,
//! mixes mix.

use std::time::Instant;

use super::{
    APP_STREAM, Leg, MAX_BURST, MediaSession, Outbox, Route, Router, Schedule, SessionEvent, TICK, mix, push_event,
    route_of, two_mut,
};

impl MediaSession {
    /// When [`Self::handle_timeout`] is due: every [`TICK`] while a stream is transcoded, an
    /// application leg exists or a mix is set; `None` otherwise.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.schedule {
            Schedule::Idle => None,
            Schedule::Start => Some(self.now),
            Schedule::At(at) => Some(at),
        }
    }

    /// How many ticks [`Self::handle_timeout`] would run at `now` (a driver feeding an
    /// application one frame per tick gives it that many).
    pub fn due_ticks(&self, now: Instant) -> u32 {
        match self.schedule {
            Schedule::Idle => 0,
            Schedule::Start => 1,
            Schedule::At(at) if at > now => 0,
            Schedule::At(at) => {
                let behind = now.duration_since(at).as_nanos() / TICK.as_nanos();
                u32::try_from(behind + 1).unwrap_or(u32::MAX).min(MAX_BURST)
            }
        }
    }

    /// Runs every tick due at `now`: missed ones are caught up at once, up to [`MAX_BURST`];
    /// beyond that the rest are skipped.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        let mut next = match self.schedule {
            Schedule::Idle => return,
            Schedule::Start => now,
            Schedule::At(at) => at,
        };
        let mut ran = 0;
        while next <= now && ran < MAX_BURST {
            self.tick(now);
            next += TICK;
            ran += 1;
        }
        if next <= now {
            next = now + TICK;
        }
        if self.schedule != Schedule::Idle {
            self.schedule = Schedule::At(next);
        }
    }

    fn tick(&mut self, now: Instant) {
        let MediaSession { streams, legs, router, transmits, pool, events, tap, .. } = self;
        let mut out = Outbox { transmits, pool };

        for (stream, state) in streams.iter_mut().enumerate() {
            let Some(transcoder) = &mut state.transcoder else { continue };
            let Router::Pair(a, b) = *router else { continue };
            transcoder.poll(now, &mut |to: usize, packet: &mut Vec<u8>| {
                let id = if to == 0 { a } else { b };
                if let Some(leg) = legs.iter_mut().find(|l| l.id == id) {
                    out.send(leg, stream, packet);
                }
            });
        }

        for index in 0..legs.len() {
            if legs[index].app.is_none() || (matches!(router, Router::Mix(_)) && router.contains(legs[index].id)) {
                continue;
            }
            let partner = match route_of(router, legs, legs[index].id) {
                Route::Pair { partner, .. } if legs[partner].is_rtp() => Some(partner),
                _ => None,
            };
            app_tick(legs, index, partner, now, &mut out, events);
        }

        for (stream, state) in streams.iter_mut().enumerate() {
            if let Some(mix) = &mut state.mix {
                mix::tick(mix, now, stream, legs, &mut out, events, *tap);
            }
        }
    }
}

/// One tick of the application leg at `index`: what its RTP partner (if any) said is decoded
/// for it, and its own frame (silence when it queued none) is encoded and sent to the partner.
fn app_tick(
    legs: &mut [Leg],
    index: usize,
    partner: Option<usize>,
    now: Instant,
    out: &mut Outbox<'_>,
    events: &mut std::collections::VecDeque<SessionEvent>,
) {
    let id = legs[index].id;
    let (app_leg, partner) = match partner.and_then(|p| two_mut(legs, index, p)) {
        Some((app_leg, partner)) => (app_leg, Some(partner)),
        None => (&mut legs[index], None),
    };
    let Some(app) = app_leg.app.as_mut() else { return };
    let heard = match (&partner, app.endpoint.poll_audio(now)) {
        (Some(_), Some(frame)) => frame.to_vec(),
        _ => app.silence(),
    };
    push_event(events, SessionEvent::AppAudio { leg: id, samples: heard });
    let frame = app.next_frame();
    if let Some(partner) = partner
        && let Ok(Some(packet)) = app.endpoint.send(&frame)
    {
        out.send(partner, APP_STREAM, packet);
    }
    app.done(frame);
}
