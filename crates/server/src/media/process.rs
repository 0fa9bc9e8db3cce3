//! What a session does to a stream's packets beyond relaying them: SRTP per leg (decrypt with
//! the sender's key, encrypt with ours toward the receiver), DTMF events read into key events,
//! and transcoding between legs that use different codecs.
//!
//! A stream without any of these stays on the relay's batched fast path
//! ([`StreamProc::is_plain`]); the others take packets one by one through [`StreamProc::inbound`],
//! and a transcoded stream is driven every 20 ms by [`StreamProc::tick`].

use std::sync::Arc;
use std::time::Instant;

use sambung_media::dtmf::DtmfReceiver;
use sambung_media::rtp::RtpPacket;
use sambung_media::srtp::SrtpContext;
use sambung_media::transcode::Transcoder;
use tracing::debug;

use sambung_media::negotiate::{EventFormat, Negotiated};

use super::session::{KeyEvent, KeySink, Leg, StreamConfig};
use sambung_media::sdes::SdesCrypto;

/// What became of an inbound packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Inbound {
    /// Send the buffer (now in the other leg's form) to the other leg.
    Forward,
    /// Taken by the stream (transcoding) or not for anyone.
    Consumed,
    /// Refused: failed decryption or authentication, replay, malformed.
    Dropped,
}

#[derive(Default)]
struct LegProc {
    srtp_in: Option<SrtpContext>,
    srtp_out: Option<SrtpContext>,
    /// The keys the contexts were made from: a new description with the same keys keeps the
    /// contexts (their rollover counters and replay windows).
    keys: (Option<SdesCrypto>, Option<SdesCrypto>),
    /// telephone-event payload types this leg sends.
    events: Vec<EventFormat>,
    dtmf: DtmfReceiver,
}

impl std::fmt::Debug for LegProc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegProc")
            .field("srtp_in", &self.srtp_in.is_some())
            .field("srtp_out", &self.srtp_out.is_some())
            .field("events", &self.events)
            .finish()
    }
}

/// The processing state of one stream.
#[derive(Debug, Default)]
pub(super) struct StreamProc {
    legs: [LegProc; 2],
    transcoder: Option<Box<Transcoder>>,
    /// The formats the transcoder was made for.
    formats: Option<[Negotiated; 2]>,
    /// The legs need transcoding but no transcoder could be made: their audio cannot cross.
    refused: bool,
}

impl StreamProc {
    /// The state for `config`, keeping what `previous` had for the same keys and codecs (a
    /// re-INVITE for hold must not reset SRTP's rollover counters); `call` names the session
    /// in logs.
    pub(super) fn new(call: &str, config: &StreamConfig, previous: StreamProc) -> StreamProc {
        let mut proc = StreamProc::default();
        for ((leg, config), old) in proc.legs.iter_mut().zip(&config.legs).zip(previous.legs) {
            let keys = (config.srtp_in.clone(), config.srtp_out.clone());
            let same = |a: &Option<SdesCrypto>, b: &Option<SdesCrypto>| a.is_some() && a == b;
            leg.srtp_in = if same(&keys.0, &old.keys.0) { old.srtp_in } else { keys.0.as_ref().map(|k| k.context()) };
            leg.srtp_out = if same(&keys.1, &old.keys.1) { old.srtp_out } else { keys.1.as_ref().map(|k| k.context()) };
            leg.keys = keys;
            leg.events = config.events.clone();
        }
        if config.transcode
            && let [Some(a), Some(b)] = [&config.legs[0].format, &config.legs[1].format]
        {
            let formats = [a.clone(), b.clone()];
            if previous.transcoder.is_some() && previous.formats.as_ref() == Some(&formats) {
                proc.transcoder = previous.transcoder;
            } else {
                match Transcoder::new([a, b], [rand::random(), rand::random()], rand::random()) {
                    Ok(transcoder) => proc.transcoder = Some(Box::new(transcoder)),
                    Err(error) => {
                        debug!(call, %error, "cannot transcode this stream: its RTP is dropped");
                        proc.refused = true;
                    }
                }
            }
            proc.formats = Some(formats);
        }
        proc
    }

    /// True when packets pass untouched: no keys, no events to read, no transcoding.
    pub(super) fn is_plain(&self) -> bool {
        self.transcoder.is_none()
            && !self.refused
            && self.legs.iter().all(|l| l.srtp_in.is_none() && l.srtp_out.is_none() && l.events.is_empty())
    }

    /// True when what `leg` sends is authenticated (SRTP): a packet proves its source only
    /// once it decrypts.
    pub(super) fn authenticates(&self, leg: Leg) -> bool {
        self.legs[leg.index()].srtp_in.is_some()
    }

    /// True when the stream needs [`Self::tick`] every 20 ms.
    pub(super) fn ticks(&self) -> bool {
        self.transcoder.is_some()
    }

    /// Takes a packet that `from` sent (RTP, or RTCP when `rtcp`), in `buffer`; on
    /// [`Inbound::Forward`] the buffer holds what to send to the other leg.
    pub(super) fn inbound(
        &mut self,
        now: Instant,
        call: &Arc<str>,
        from: Leg,
        rtcp: bool,
        buffer: &mut Vec<u8>,
        keys: Option<&KeySink>,
    ) -> Inbound {
        let index = from.index();
        let leg = &mut self.legs[index];
        if let Some(srtp) = &mut leg.srtp_in {
            let result = if rtcp { srtp.unprotect_rtcp(buffer) } else { srtp.unprotect_rtp(buffer) };
            if result.is_err() {
                return Inbound::Dropped;
            }
        }
        if rtcp {
            if self.transcoder.is_some() {
                // Each leg's reports describe streams the other leg never sees.
                return Inbound::Consumed;
            }
        } else {
            let Ok(packet) = RtpPacket::parse(buffer) else { return Inbound::Dropped };
            if let Some(format) = leg.events.iter().find(|e| e.payload_type == packet.payload_type())
                && leg.dtmf.on_packet(packet.timestamp(), packet.marker(), packet.payload()).is_ok()
            {
                let clock = format.clock_rate.max(1);
                while let Some(event) = leg.dtmf.poll_event() {
                    let duration_ms = u32::from(event.duration) * 1000 / clock;
                    debug!(call = %call, leg = %from, key = %event.key, duration_ms, "DTMF event");
                    if let Some(keys) = keys {
                        keys.send(KeyEvent { call: call.clone(), leg: from, key: event.key, duration_ms });
                    }
                }
            }
            if let Some(transcoder) = &mut self.transcoder {
                transcoder.push(now, index, &packet);
                return Inbound::Consumed;
            }
            if self.refused {
                return Inbound::Dropped;
            }
        }
        let out = &mut self.legs[index ^ 1];
        if let Some(srtp) = &mut out.srtp_out {
            let result = if rtcp { srtp.protect_rtcp(buffer) } else { srtp.protect_rtp(buffer) };
            if result.is_err() {
                return Inbound::Dropped;
            }
        }
        Inbound::Forward
    }

    /// Runs the transcoder's 20 ms step: `send(leg, packet)` for each packet to send, already
    /// encrypted for that leg.
    pub(super) fn tick(&mut self, now: Instant, send: &mut impl FnMut(Leg, &[u8])) {
        let Some(transcoder) = &mut self.transcoder else { return };
        let legs = &mut self.legs;
        transcoder.poll(now, &mut |to: usize, packet: &mut Vec<u8>| {
            if let Some(srtp) = &mut legs[to].srtp_out
                && srtp.protect_rtp(packet).is_err()
            {
                return;
            }
            send(if to == 0 { Leg::A } else { Leg::B }, packet);
        });
    }
}
