//! Transcoding between two legs that use different codecs (an Opus phone and a G.711-only
//! one, say), without I/O.
//!
//! Each direction is a pipeline: the sender's RTP goes into an adaptive jitter buffer
//! ([`crate::jitter`]); every 20 ms ([`Transcoder::poll`]) the due packet is decoded (a lost
//! one is recovered from the next packet's Opus FEC, or concealed), resampled to the
//! receiver's rate ([`crate::resample`]), encoded and sent as the receiver's payload type, in
//! an RTP stream of our own (SSRC, sequence numbers and timestamps: RFC 7667 §3.2.2, the
//! translator that transcodes). DTMF events (RFC 4733) are carried across with the receiver's
//! telephone-event payload type and clock.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use sambung_media::codec::{self, CodecKind, EncoderParams};
//! use sambung_media::negotiate::{Negotiated, PayloadFormat};
//! use sambung_media::rtp::{RtpHeader, RtpPacket};
//! use sambung_media::transcode::Transcoder;
//!
//! let pcmu = Negotiated { audio: PayloadFormat { codec: CodecKind::Pcmu, payload_type: 0, fmtp: None }, telephone_event: None };
//! let pcma = Negotiated { audio: PayloadFormat { codec: CodecKind::Pcma, payload_type: 8, fmtp: None }, telephone_event: None };
//! let mut transcoder = Transcoder::new([&pcmu, &pcma], [1, 2], 7).unwrap();
//!
//! // Leg 0 sends PCMU every 20 ms; leg 1 gets PCMA.
//! let start = Instant::now();
//! let mut encoder = codec::encoder(CodecKind::Pcmu, &EncoderParams::default()).unwrap();
//! let mut received = Vec::new();
//! for i in 0..20u16 {
//!     let now = start + Duration::from_millis(20 * u64::from(i));
//!     let pcm: Vec<i16> = (0..160).map(|n| ((n as f32 * 0.3).sin() * 8000.0) as i16).collect();
//!     let mut payload = Vec::new();
//!     encoder.encode(&pcm, &mut payload).unwrap();
//!     let mut packet = vec![0; 12 + payload.len()];
//!     let header = RtpHeader { payload_type: 0, sequence: i, timestamp: 160 * u32::from(i), ssrc: 9, ..Default::default() };
//!     header.write(&payload, &mut packet).unwrap();
//!     transcoder.push(now, 0, &RtpPacket::parse(&packet).unwrap());
//!     transcoder.poll(now, &mut |to, packet| received.push((to, packet.clone())));
//! }
//! assert!(received.len() > 10);
//! assert!(received.iter().all(|(to, packet)| *to == 1 && RtpPacket::parse(packet).unwrap().payload_type() == 8));
//! ```

use std::time::{Duration, Instant};

use crate::codec::{self, CodecError};
use crate::dtmf::TelephoneEvent;
use crate::endpoint::{AudioReceiver, AudioSender};
use crate::negotiate::{EventFormat, Negotiated};
use crate::resample::Resampler;
use crate::rtp::{RtpHeader, RtpPacket};

/// The engine's frame: one packet out per direction every 20 ms.
pub const FRAME: Duration = Duration::from_millis(20);
const FRAME_MS: u32 = crate::endpoint::FRAME_MS;

/// Both directions between two legs.
#[derive(Debug)]
pub struct Transcoder {
    /// `pipes[i]` carries leg `i`'s audio to the other leg.
    pipes: [Pipeline; 2],
}

/// Counters of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PipelineStats {
    /// Packets decoded.
    pub decoded: u64,
    /// Frames recovered from the next packet's FEC.
    pub recovered: u64,
    /// Frames concealed.
    pub concealed: u64,
    /// Packets sent (audio and events).
    pub sent: u64,
    /// Payloads the decoder refused.
    pub bad_payloads: u64,
}

/// One direction: the input leg's packets decoded ([`AudioReceiver`]), resampled, and encoded
/// for the output leg ([`AudioSender`]).
#[derive(Debug)]
struct Pipeline {
    input: Negotiated,
    output: Negotiated,
    receiver: AudioReceiver,
    resampler: Option<Resampler>,
    sender: AudioSender,
    resampled: Vec<i16>,
    /// Event packets translated, waiting for the next poll.
    events: Vec<Vec<u8>>,
    /// The event being carried: its timestamp on the input and on the output.
    event: Option<(u32, u32)>,
    /// Event packets sent.
    events_sent: u64,
}

impl Transcoder {
    /// A transcoder between leg 0 using `legs[0]` and leg 1 using `legs[1]`. `ssrcs[i]` is the
    /// SSRC of our stream toward leg `i`; `seed` gives the initial sequence numbers and
    /// timestamps (RFC 3550 §5.1: random).
    pub fn new(legs: [&Negotiated; 2], ssrcs: [u32; 2], seed: u64) -> Result<Transcoder, CodecError> {
        let start = |shift: u32| (seed >> shift) as u32;
        let pipes = [
            Pipeline::new(legs[0], legs[1], ssrcs[1], start(0) as u16, start(16))?,
            Pipeline::new(legs[1], legs[0], ssrcs[0], start(48) as u16, start(24))?,
        ];
        Ok(Transcoder { pipes })
    }

    /// Takes a packet that leg `from` sent (decrypted). Audio goes into the jitter buffer;
    /// telephone-events are translated for the other leg; other payload types are ignored.
    pub fn push(&mut self, now: Instant, from: usize, packet: &RtpPacket<'_>) {
        if let Some(pipe) = self.pipes.get_mut(from) {
            pipe.push(now, packet);
        }
    }

    /// The 20 ms step: `send(to, packet)` for each RTP packet to send to leg `to`. Call it every
    /// [`FRAME`].
    pub fn poll(&mut self, now: Instant, send: &mut impl FnMut(usize, &mut Vec<u8>)) {
        for (from, pipe) in self.pipes.iter_mut().enumerate() {
            pipe.poll(now, &mut |packet| send(from ^ 1, packet));
        }
    }

    /// Counters of the direction from leg `from`.
    pub fn stats(&self, from: usize) -> PipelineStats {
        self.pipes[from].stats()
    }
}

/// How to encode toward `output`: what its SDP asks, with the bandwidth capped near what the
/// input carries (G.711's 4 kHz re-encoded as full-band Opus costs twice the CPU for nothing;
/// wideband keeps the edge of the narrow band, which Opus's narrowband mode cuts).
fn encoder_params(input: &Negotiated, output: &Negotiated) -> codec::EncoderParams {
    let mut params = output.audio.encoder_params();
    params.max_playback_rate = params.max_playback_rate.min(input.audio.codec.sample_rate().max(16_000));
    params
}

impl Pipeline {
    fn new(
        input: &Negotiated,
        output: &Negotiated,
        ssrc: u32,
        sequence: u16,
        timestamp: u32,
    ) -> Result<Pipeline, CodecError> {
        let (from, to) = (input.audio.codec, output.audio.codec);
        let resampler = if from.sample_rate() == to.sample_rate() {
            None
        } else {
            Some(
                Resampler::new(from.sample_rate(), to.sample_rate())
                    .map_err(|e| CodecError::Codec(from, e.to_string()))?,
            )
        };
        Ok(Pipeline {
            input: input.clone(),
            output: output.clone(),
            receiver: AudioReceiver::new(&input.audio)?,
            resampler,
            sender: AudioSender::new(&output.audio, &encoder_params(input, output), ssrc, sequence, timestamp)?,
            resampled: Vec::with_capacity(2 * to.frame_samples(FRAME_MS)),
            events: Vec::new(),
            event: None,
            events_sent: 0,
        })
    }

    fn stats(&self) -> PipelineStats {
        let decode = self.receiver.stats();
        PipelineStats {
            decoded: decode.decoded,
            recovered: decode.recovered,
            concealed: decode.concealed,
            sent: self.sender.sent() + self.events_sent,
            bad_payloads: decode.bad_payloads,
        }
    }

    fn push(&mut self, now: Instant, packet: &RtpPacket<'_>) {
        // Audio goes into the jitter buffer (a new SSRC restarts it).
        if self.receiver.push(now, packet) {
            return;
        }
        let pt = packet.payload_type();
        if let Some(events) = self.input.telephone_event.filter(|e| e.payload_type == pt) {
            self.translate_event(events, packet);
        }
    }

    /// Carries one telephone-event packet across: the receiver's payload type, our timestamp
    /// (where the event starts in our stream) and the duration at the receiver's event clock.
    /// Dropped when the receiver takes no events.
    fn translate_event(&mut self, input: EventFormat, packet: &RtpPacket<'_>) {
        let Some(output) = self.output.telephone_event else { return };
        let Ok(mut event) = TelephoneEvent::parse(packet.payload()) else { return };
        let timestamp = match self.event {
            Some((input_ts, output_ts)) if input_ts == packet.timestamp() => output_ts,
            _ => {
                let output_ts = self.sender.timestamp();
                self.event = Some((packet.timestamp(), output_ts));
                output_ts
            }
        };
        let scaled = u64::from(event.duration) * u64::from(output.clock_rate) / u64::from(input.clock_rate.max(1));
        event.duration = scaled.min(u64::from(u16::MAX)) as u16;
        let header = RtpHeader {
            marker: packet.marker(),
            payload_type: output.payload_type,
            sequence: self.sender.next_sequence(),
            timestamp,
            ssrc: self.sender.ssrc(),
            ..Default::default()
        };
        let mut out = vec![0; 12 + 4];
        if header.write(&event.to_bytes(), &mut out).is_ok() {
            self.events.push(out);
        }
    }

    fn poll(&mut self, now: Instant, send: &mut impl FnMut(&mut Vec<u8>)) {
        for mut event in self.events.drain(..) {
            self.events_sent += 1;
            send(&mut event);
        }
        let frame = self.input.audio.codec.frame_samples(FRAME_MS);
        if self.receiver.fill(now, frame) < frame {
            self.sender.skip();
            return;
        }
        self.resampled.clear();
        let pcm = &self.receiver.pending()[..frame];
        match &mut self.resampler {
            Some(resampler) => resampler.process(pcm, &mut self.resampled),
            None => self.resampled.extend_from_slice(pcm),
        }
        self.receiver.consume(frame);
        self.resampled.resize(self.output.audio.codec.frame_samples(FRAME_MS), 0);
        // An encoder error or DTX sends nothing; the next packet starts a talk-spurt.
        if let Ok(Some(packet)) = self.sender.encode(&self.resampled) {
            send(packet);
        }
    }
}
