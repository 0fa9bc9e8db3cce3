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

use crate::codec::{self, CodecError, CodecKind, Decoder, Encoder};
use crate::dtmf::TelephoneEvent;
use crate::jitter::{JitterBuffer, JitterConfig, Playout};
use crate::negotiate::{EventFormat, Negotiated};
use crate::resample::Resampler;
use crate::rtp::{RtpHeader, RtpPacket};

/// The engine's frame: one packet out per direction every 20 ms.
pub const FRAME: Duration = Duration::from_millis(20);
const FRAME_MS: u32 = 20;

/// Room for one packet we write: header plus the largest 20 ms payload (G.722 or Opus).
const MAX_PACKET: usize = 12 + 1500;

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

#[derive(Debug)]
struct Pipeline {
    input: Negotiated,
    output: Negotiated,
    jitter: JitterBuffer,
    decoder: Box<dyn Decoder>,
    resampler: Option<Resampler>,
    encoder: Box<dyn Encoder>,
    /// Decoded audio at the input codec's rate, not yet sent.
    pcm: Vec<i16>,
    resampled: Vec<i16>,
    payload: Vec<u8>,
    packet: Vec<u8>,
    ssrc: u32,
    sequence: u16,
    /// RTP timestamp of the next frame we send, at the output codec's clock.
    timestamp: u32,
    /// Audio is flowing: no marker on the next packet.
    talking: bool,
    /// Event packets translated, waiting for the next poll.
    events: Vec<Vec<u8>>,
    /// The event being carried: its timestamp on the input and on the output.
    event: Option<(u32, u32)>,
    stats: PipelineStats,
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
        self.pipes[from].stats
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
        let jitter = JitterBuffer::new(JitterConfig::new(from.rtp_clock_rate()));
        Ok(Pipeline {
            input: input.clone(),
            output: output.clone(),
            jitter,
            decoder: codec::decoder(from)?,
            resampler,
            encoder: codec::encoder(to, &encoder_params(input, output))?,
            pcm: Vec::with_capacity(4 * from.frame_samples(FRAME_MS)),
            resampled: Vec::with_capacity(2 * to.frame_samples(FRAME_MS)),
            payload: Vec::with_capacity(1500),
            packet: Vec::with_capacity(MAX_PACKET),
            ssrc,
            sequence,
            timestamp,
            talking: false,
            events: Vec::new(),
            event: None,
            stats: PipelineStats::default(),
        })
    }

    fn push(&mut self, now: Instant, packet: &RtpPacket<'_>) {
        let pt = packet.payload_type();
        if pt == self.input.audio.payload_type {
            // A new SSRC (another device, a transfer at the far end) restarts the buffer.
            self.jitter.push_rtp(now, packet);
        } else if let Some(events) = self.input.telephone_event.filter(|e| e.payload_type == pt) {
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
                let output_ts = self.timestamp;
                self.event = Some((packet.timestamp(), output_ts));
                output_ts
            }
        };
        let scaled = u64::from(event.duration) * u64::from(output.clock_rate) / u64::from(input.clock_rate.max(1));
        event.duration = scaled.min(u64::from(u16::MAX)) as u16;
        let header = RtpHeader {
            marker: packet.marker(),
            payload_type: output.payload_type,
            sequence: self.next_sequence(),
            timestamp,
            ssrc: self.ssrc,
            ..Default::default()
        };
        let mut out = vec![0; 12 + 4];
        if header.write(&event.to_bytes(), &mut out).is_ok() {
            self.events.push(out);
        }
    }

    fn next_sequence(&mut self) -> u16 {
        let sequence = self.sequence;
        self.sequence = self.sequence.wrapping_add(1);
        sequence
    }

    fn poll(&mut self, now: Instant, send: &mut impl FnMut(&mut Vec<u8>)) {
        for mut event in self.events.drain(..) {
            self.stats.sent += 1;
            send(&mut event);
        }
        let input = self.input.audio.codec;
        let frame = input.frame_samples(FRAME_MS);
        while self.pcm.len() < frame {
            match self.jitter.pop(now) {
                Some(Playout::Packet { payload, .. }) => {
                    if self.decoder.decode(payload, &mut self.pcm).is_ok() {
                        self.stats.decoded += 1;
                    } else {
                        self.stats.bad_payloads += 1;
                        let _ = self.decoder.conceal(frame, &mut self.pcm);
                    }
                }
                Some(Playout::Lost { duration, next }) => {
                    let samples = (u64::from(duration) * u64::from(input.sample_rate())
                        / u64::from(input.rtp_clock_rate()))
                    .clamp(1, 6 * frame as u64) as usize;
                    let recovered = match next {
                        Some(next) => self.decoder.recover(next, samples, &mut self.pcm).is_ok(),
                        None => false,
                    };
                    if recovered && next.is_some() && input == CodecKind::Opus {
                        self.stats.recovered += 1;
                    } else {
                        if !recovered {
                            let _ = self.decoder.conceal(samples, &mut self.pcm);
                        }
                        self.stats.concealed += 1;
                    }
                }
                None => break,
            }
        }
        let output = self.output.audio.codec;
        if self.pcm.len() >= frame {
            self.resampled.clear();
            match &mut self.resampler {
                Some(resampler) => resampler.process(&self.pcm[..frame], &mut self.resampled),
                None => self.resampled.extend_from_slice(&self.pcm[..frame]),
            }
            self.pcm.drain(..frame);
            self.payload.clear();
            let wanted = output.frame_samples(FRAME_MS);
            self.resampled.resize(wanted, 0);
            if let Ok(len) = self.encoder.encode(&self.resampled, &mut self.payload)
                && len > 0
            {
                let header = RtpHeader {
                    marker: !self.talking,
                    payload_type: self.output.audio.payload_type,
                    sequence: self.next_sequence(),
                    timestamp: self.timestamp,
                    ssrc: self.ssrc,
                    ..Default::default()
                };
                self.packet.resize(header.header_len() + self.payload.len(), 0);
                if header.write(&self.payload, &mut self.packet).is_ok() {
                    self.stats.sent += 1;
                    self.talking = true;
                    send(&mut self.packet);
                }
            } else {
                // DTX: the next packet starts a talk-spurt.
                self.talking = false;
            }
        } else {
            self.talking = false;
        }
        self.timestamp = self.timestamp.wrapping_add(output.timestamp_units(FRAME_MS));
    }
}
