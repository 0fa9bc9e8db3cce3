//! A datagram received on an RTP leg's channel: latching, SRTP removed with the sender's key,
//! RFC 4733 keys read, then relayed (SRTP applied with the receiver's key), or handed to a
//! transcoder, an application leg or the mixer.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use super::{APP_STREAM, Channel, Kind, Leg, MediaSession, Receive, Route, SessionEvent, push_event};
use crate::latch::Verdict;
use crate::rtp::RtpPacket;

impl MediaSession {
    /// Takes a datagram that arrived from `source` on channel `at` (an RTP leg's socket),
    /// processing `buf` in place: on [`Receive::Forward`] it holds the bytes to send. Never
    /// allocates (the buffer may grow once to hold an SRTP tag).
    pub fn receive(&mut self, now: Instant, at: Channel, source: SocketAddr, buf: &mut Vec<u8>) -> Receive {
        self.now = self.now.max(now);
        let Some(index) = self.legs.iter().position(|l| l.id == at.leg && l.is_rtp()) else {
            return Receive::Dropped;
        };
        if at.stream >= self.streams.len() {
            return Receive::Dropped;
        }
        let kind = at.kind.index();

        if self.streams[at.stream].plain {
            let latch = &mut self.legs[index].streams[at.stream].latches[kind];
            match latch.on_packet(source) {
                Verdict::Reject => return Receive::Rejected,
                Verdict::Latched { previous } => {
                    push_event(&mut self.events, SessionEvent::Latched { at, source, previous });
                }
                Verdict::Accept => {}
            }
            let Route::Pair { partner, .. } = self.route(at.leg) else { return Receive::Dropped };
            let to = at.on(self.legs[partner].id);
            return match self.legs[partner].streams[at.stream].latches[kind].destination() {
                Some(destination) => Receive::Forward { to, destination },
                None => Receive::NoDestination,
            };
        }

        // With SRTP, a new source is latched to only once one of its packets authenticates: an
        // allowed IP (a NAT shared with others) is not enough to move the leg's media.
        let leg = &mut self.legs[index].streams[at.stream];
        let mut latch_on_success = false;
        if leg.srtp_in.is_some() {
            let latch = &leg.latches[kind];
            let canonical = SocketAddr::new(source.ip().to_canonical(), source.port());
            if latch.latched() != Some(canonical) && latch.latched() != Some(source) {
                if !latch.allows(source.ip()) {
                    return Receive::Rejected;
                }
                latch_on_success = true;
            }
        } else {
            match leg.latches[kind].on_packet(source) {
                Verdict::Reject => return Receive::Rejected,
                Verdict::Latched { previous } => {
                    self.push_event(SessionEvent::Latched { at, source, previous });
                }
                Verdict::Accept => {}
            }
        }

        let verdict = self.process(now, index, at, buf);
        if latch_on_success
            && verdict != Receive::Dropped
            && let Some(latch) = self.legs.get_mut(index).and_then(|l| l.streams.get_mut(at.stream))
            && let Verdict::Latched { previous } = latch.latches[kind].on_packet(source)
        {
            self.push_event(SessionEvent::Latched { at, source, previous });
        }
        verdict
    }

    /// The per-packet path of a datagram from the leg at `index`, accepted by its latch.
    fn process(&mut self, now: Instant, index: usize, at: Channel, buf: &mut Vec<u8>) -> Receive {
        let route = self.route(at.leg);
        let MediaSession { legs, streams, events, .. } = self;
        let stream = &mut streams[at.stream];
        let sender = &mut legs[index];
        let state = &mut sender.streams[at.stream];
        if let Some(srtp) = &mut state.srtp_in {
            let result = match at.kind {
                Kind::Rtp => srtp.unprotect_rtp(buf),
                Kind::Rtcp => srtp.unprotect_rtcp(buf),
            };
            if result.is_err() {
                return Receive::Dropped;
            }
        }

        if at.kind == Kind::Rtcp {
            // Reports of a transcoded or mixed stream, or to an application, describe streams the
            // receiver never sees: they end here.
            let partner = match route {
                Route::Pair { partner, .. } if stream.transcoder.is_none() && legs[partner].is_rtp() => partner,
                Route::Pair { .. } | Route::Mix => return Receive::Consumed,
                Route::None => return Receive::Dropped,
            };
            return relay(&mut legs[partner], at, buf, true);
        }

        let Ok(packet) = RtpPacket::parse(buf) else { return Receive::Dropped };
        read_keys(sender, at, &packet, events);
        match route {
            Route::None => Receive::Dropped,
            Route::Mix => match stream.mix.as_mut().and_then(|mix| mix.member_mut(at.leg)) {
                Some(member) => {
                    member.push(now, &packet);
                    Receive::Consumed
                }
                None => Receive::Dropped,
            },
            Route::Pair { partner, first } => {
                if let Some(app) = &mut legs[partner].app {
                    if at.stream == APP_STREAM {
                        let _ = app.endpoint.receive(now, buf);
                    }
                    return Receive::Consumed;
                }
                if let Some(transcoder) = &mut stream.transcoder {
                    transcoder.push(now, if first { 0 } else { 1 }, &packet);
                    return Receive::Consumed;
                }
                if stream.refused {
                    return Receive::Dropped;
                }
                relay(&mut legs[partner], at, buf, false)
            }
        }
    }
}

/// Reads the DTMF keys of a telephone-event packet of the sender's `events` payload types,
/// with the duration at that event format's own clock.
fn read_keys(sender: &mut Leg, at: Channel, packet: &RtpPacket<'_>, events: &mut VecDeque<SessionEvent>) {
    let state = &mut sender.streams[at.stream];
    let Some(format) = state.config.events.iter().find(|e| e.payload_type == packet.payload_type()) else {
        return;
    };
    if state.dtmf.on_packet(packet.timestamp(), packet.marker(), packet.payload()).is_err() {
        return;
    }
    let clock = format.clock_rate.max(1);
    while let Some(event) = state.dtmf.poll_event() {
        let duration_ms = u32::from(event.duration) * 1000 / clock;
        push_event(events, SessionEvent::Key { leg: at.leg, stream: at.stream, key: event.key, duration_ms });
    }
}

/// Relays `buf` to the same stream and kind on `receiver`: protected with its key, when it has
/// somewhere to send.
fn relay(receiver: &mut Leg, at: Channel, buf: &mut Vec<u8>, rtcp: bool) -> Receive {
    let to = at.on(receiver.id);
    let state = &mut receiver.streams[at.stream];
    let Some(destination) = state.latches[at.kind.index()].destination() else {
        return Receive::NoDestination;
    };
    if let Some(srtp) = &mut state.srtp_out {
        let result = if rtcp { srtp.protect_rtcp(buf) } else { srtp.protect_rtp(buf) };
        if result.is_err() {
            return Receive::Dropped;
        }
    }
    Receive::Forward { to, destination }
}
