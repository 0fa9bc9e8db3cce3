//! An RTP endpoint for the server's own audio: an application (voicemail, an announcement)
//! that plays and hears a call as 20 ms frames of PCM, without I/O.
//!
//! [`Endpoint`] is one side of an RTP stream: what arrives ([`Endpoint::receive`]) is
//! unprotected (SRTP, RFC 3711), put into a jitter buffer, decoded with loss concealment (and
//! Opus FEC), and resampled to the application's rate ([`Endpoint::poll_audio`], every 20 ms);
//! what the application says ([`Endpoint::send`]) is resampled to the codec's rate, encoded,
//! put in RTP packets of our own source (RFC 3550 §5.1: sequence numbers and timestamps from a
//! random start, the marker bit on the first packet of each talk-spurt) and protected. The
//! caller owns the socket and the 20 ms clock, and passes `now` in.
//!
//! The two halves are [`AudioReceiver`] (jitter buffer and decoder) and [`AudioSender`]
//! (encoder and packetiser); the relay's [`crate::transcode::Transcoder`] is built from the
//! same two.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use sambung_media::codec::CodecKind;
//! use sambung_media::endpoint::{Endpoint, EndpointConfig};
//! use sambung_media::negotiate::{Negotiated, PayloadFormat};
//!
//! let pcmu = Negotiated { audio: PayloadFormat { codec: CodecKind::Pcmu, payload_type: 0, fmtp: None }, telephone_event: None };
//! let mut alice = Endpoint::new(EndpointConfig::new(pcmu.clone(), 1, 16_000)).unwrap();
//! let mut bob = Endpoint::new(EndpointConfig::new(pcmu, 2, 16_000)).unwrap();
//!
//! // Alice says 20 ms of a 400 Hz tone every 20 ms; Bob hears it once his jitter buffer plays.
//! let start = Instant::now();
//! let tone: Vec<i16> = (0..320).map(|n| ((n as f32 * 0.157).sin() * 8000.0) as i16).collect();
//! let mut heard = 0;
//! for i in 0..10u64 {
//!     let now = start + Duration::from_millis(20 * i);
//!     if let Some(datagram) = alice.send(&tone).unwrap() {
//!         bob.receive(now, datagram).unwrap();
//!     }
//!     if let Some(frame) = bob.poll_audio(now) {
//!         assert_eq!(frame.len(), 320); // 20 ms at 16 kHz
//!         heard += 1;
//!     }
//! }
//! assert!(heard >= 7);
//! ```
//!
//! Bad input (garbage, forged or replayed SRTP, unknown payload types) is an error or ignored,
//! never a panic.

use std::time::Instant;

use crate::codec::{self, CodecError, CodecKind, Decoder, Encoder, EncoderParams};
use crate::jitter::{JitterBuffer, JitterConfig, JitterStats, Playout};
use crate::negotiate::{Negotiated, PayloadFormat};
use crate::resample::{ResampleError, Resampler};
use crate::rtp::{RtpError, RtpHeader, RtpPacket};
use crate::srtp::{SrtpContext, SrtpError};

/// The engine's frame, in milliseconds.
pub const FRAME_MS: u32 = 20;

/// Room for one packet we write: header plus the largest 20 ms payload (G.722 or Opus).
const MAX_PACKET: usize = 12 + 1500;

/// Counters of an [`AudioReceiver`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Packets decoded.
    pub decoded: u64,
    /// Frames recovered from the next packet's FEC.
    pub recovered: u64,
    /// Frames concealed.
    pub concealed: u64,
    /// Payloads the decoder refused (concealed instead).
    pub bad_payloads: u64,
}

/// The receiving half of an audio stream: RTP packets of one payload format into an adaptive
/// jitter buffer ([`crate::jitter`]), decoded on demand into PCM at the codec's rate, with
/// lost packets recovered from Opus FEC or concealed.
#[derive(Debug)]
pub struct AudioReceiver {
    kind: CodecKind,
    payload_type: u8,
    jitter: JitterBuffer,
    decoder: Box<dyn Decoder>,
    /// Decoded audio not taken yet.
    pcm: Vec<i16>,
    stats: DecodeStats,
}

impl AudioReceiver {
    /// A receiver of `format`'s packets.
    pub fn new(format: &PayloadFormat) -> Result<AudioReceiver, CodecError> {
        AudioReceiver::with_jitter(format, JitterConfig::new(format.codec.rtp_clock_rate()))
    }

    /// A receiver of `format`'s packets whose jitter buffer runs with `jitter` (its
    /// `clock_rate` is the codec's whatever it says).
    pub fn with_jitter(format: &PayloadFormat, jitter: JitterConfig) -> Result<AudioReceiver, CodecError> {
        let kind = format.codec;
        Ok(AudioReceiver {
            kind,
            payload_type: format.payload_type,
            jitter: JitterBuffer::new(JitterConfig { clock_rate: kind.rtp_clock_rate(), ..jitter }),
            decoder: codec::decoder(kind)?,
            pcm: Vec::with_capacity(4 * kind.frame_samples(FRAME_MS)),
            stats: DecodeStats::default(),
        })
    }

    /// The codec it decodes.
    pub fn kind(&self) -> CodecKind {
        self.kind
    }

    /// Takes a received (decrypted) packet arriving at `now`; false, and nothing done, when it
    /// is not of this receiver's payload type. A new SSRC (another device, a transfer at the
    /// far end) restarts the jitter buffer.
    pub fn push(&mut self, now: Instant, packet: &RtpPacket<'_>) -> bool {
        if packet.payload_type() != self.payload_type {
            return false;
        }
        self.jitter.push_rtp(now, packet);
        true
    }

    /// Decodes what is due at `now` until at least `samples` samples (at the codec's rate) wait
    /// in [`Self::pending`], or nothing more is due. Returns how many wait.
    pub fn fill(&mut self, now: Instant, samples: usize) -> usize {
        let kind = self.kind;
        let frame = kind.frame_samples(FRAME_MS);
        // PCM samples at the codec's rate for `duration` RTP timestamp units, within reason.
        let samples_of = |duration: u32| {
            (u64::from(duration) * u64::from(kind.sample_rate()) / u64::from(kind.rtp_clock_rate()))
                .clamp(1, 6 * frame as u64) as usize
        };
        while self.pcm.len() < samples {
            match self.jitter.pop(now) {
                Some(Playout::Packet { payload, duration, .. }) => {
                    if self.decoder.decode(payload, &mut self.pcm).is_ok() {
                        self.stats.decoded += 1;
                    } else {
                        self.stats.bad_payloads += 1;
                        let _ = self.decoder.conceal(samples_of(duration).max(frame), &mut self.pcm);
                    }
                }
                Some(Playout::Lost { duration, next }) => {
                    let lost = samples_of(duration);
                    let recovered = match next {
                        Some(next) => self.decoder.recover(next, lost, &mut self.pcm).is_ok(),
                        None => false,
                    };
                    if recovered && next.is_some() && kind == CodecKind::Opus {
                        self.stats.recovered += 1;
                    } else {
                        if !recovered {
                            let _ = self.decoder.conceal(lost, &mut self.pcm);
                        }
                        self.stats.concealed += 1;
                    }
                }
                None => break,
            }
        }
        self.pcm.len()
    }

    /// The decoded audio not taken yet.
    pub fn pending(&self) -> &[i16] {
        &self.pcm
    }

    /// Drops the first `samples` samples of [`Self::pending`] (those just used).
    pub fn consume(&mut self, samples: usize) {
        self.pcm.drain(..samples.min(self.pcm.len()));
    }

    pub fn stats(&self) -> DecodeStats {
        self.stats
    }

    pub fn jitter_stats(&self) -> JitterStats {
        self.jitter.stats()
    }
}

/// The sending half of an audio stream: PCM at the codec's rate encoded into RTP packets of
/// our own source (RFC 3550 §5.1; RFC 7667 §3.2.2 when the audio is someone else's,
/// transcoded).
#[derive(Debug)]
pub struct AudioSender {
    kind: CodecKind,
    payload_type: u8,
    encoder: Box<dyn Encoder>,
    ssrc: u32,
    sequence: u16,
    /// RTP timestamp of the next frame, at the codec's clock.
    timestamp: u32,
    /// Audio is flowing: no marker on the next packet.
    talking: bool,
    payload: Vec<u8>,
    packet: Vec<u8>,
    sent: u64,
}

impl AudioSender {
    /// A sender of `format` with the encoder settings `params`, as source `ssrc`, whose first
    /// packet has `sequence` and `timestamp` (RFC 3550 §5.1: random).
    pub fn new(
        format: &PayloadFormat,
        params: &EncoderParams,
        ssrc: u32,
        sequence: u16,
        timestamp: u32,
    ) -> Result<AudioSender, CodecError> {
        let kind = format.codec;
        Ok(AudioSender {
            kind,
            payload_type: format.payload_type,
            encoder: codec::encoder(kind, params)?,
            ssrc,
            sequence,
            timestamp,
            talking: false,
            payload: Vec::with_capacity(1500),
            packet: Vec::with_capacity(MAX_PACKET),
            sent: 0,
        })
    }

    /// The codec it encodes.
    pub fn kind(&self) -> CodecKind {
        self.kind
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The RTP timestamp of the next frame.
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    /// Takes a sequence number for a packet of the stream (the audio's, or an event's).
    pub fn next_sequence(&mut self) -> u16 {
        let sequence = self.sequence;
        self.sequence = self.sequence.wrapping_add(1);
        sequence
    }

    /// Audio packets sent.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Encodes one frame of PCM at the codec's rate (20 ms for the engine) into the next RTP
    /// packet. `Ok(None)`: the encoder sends nothing for this frame (Opus DTX in silence). The
    /// stream's clock moves on by the frame's length either way, so the far end's jitter buffer
    /// sees the gap; the packet after a gap carries the marker bit (a new talk-spurt).
    pub fn encode(&mut self, pcm: &[i16]) -> Result<Option<&mut Vec<u8>>, CodecError> {
        let timestamp = self.timestamp;
        let units = pcm.len() as u64 * u64::from(self.kind.rtp_clock_rate()) / u64::from(self.kind.sample_rate());
        self.timestamp = self.timestamp.wrapping_add(units as u32);
        self.payload.clear();
        let len = match self.encoder.encode(pcm, &mut self.payload) {
            Ok(len) => len,
            Err(error) => {
                self.talking = false;
                return Err(error);
            }
        };
        if len == 0 {
            self.talking = false;
            return Ok(None);
        }
        let header = RtpHeader {
            marker: !self.talking,
            payload_type: self.payload_type,
            sequence: self.sequence,
            timestamp,
            ssrc: self.ssrc,
            ..Default::default()
        };
        self.packet.resize(header.header_len() + self.payload.len(), 0);
        if header.write(&self.payload, &mut self.packet).is_err() {
            // Only an out-of-range payload type fails, and a negotiated one is in range.
            self.talking = false;
            return Ok(None);
        }
        self.sequence = self.sequence.wrapping_add(1);
        self.talking = true;
        self.sent += 1;
        Ok(Some(&mut self.packet))
    }

    /// Sends nothing for one 20 ms frame (nothing to say): the clock moves on and the next
    /// packet starts a talk-spurt.
    pub fn skip(&mut self) {
        self.talking = false;
        self.timestamp = self.timestamp.wrapping_add(self.kind.timestamp_units(FRAME_MS));
    }
}

/// Errors of an [`Endpoint`]. Receiving, each one means the datagram was dropped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error(transparent)]
    Rate(#[from] ResampleError),
    #[error("SRTP: {0}")]
    Srtp(#[from] SrtpError),
    #[error("not an RTP packet: {0}")]
    Rtp(#[from] RtpError),
    #[error("a frame is {expected} samples (20 ms), not {got}")]
    FrameSize { expected: usize, got: usize },
}

/// What a received datagram was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// Audio of the negotiated format, queued for [`Endpoint::poll_audio`].
    Audio,
    /// A telephone-event (RFC 4733) of the negotiated format. Not used here: the relay reports
    /// the keys to the application.
    Event,
    /// RTCP (told apart by its packet type, RFC 5761 §4), or RTP of a payload type not
    /// negotiated: ignored.
    Ignored,
}

/// How to make an [`Endpoint`].
#[derive(Debug)]
pub struct EndpointConfig {
    /// The negotiated audio format and telephone-event format.
    pub negotiated: Negotiated,
    /// Unprotects what arrives (the peer's key); `None` for plain RTP.
    pub srtp_in: Option<SrtpContext>,
    /// Protects what we send (our key); `None` for plain RTP.
    pub srtp_out: Option<SrtpContext>,
    /// Our source's SSRC (RFC 3550 §8.1: random).
    pub ssrc: u32,
    /// The rate of the application's PCM: 8000, 16000 or 48000.
    pub rate: u32,
    /// Gives the first sequence number and timestamp (RFC 3550 §5.1: random).
    pub seed: u64,
}

impl EndpointConfig {
    /// Plain RTP of `negotiated` as source `ssrc`, PCM at `rate`, sequence numbers and
    /// timestamps from `ssrc` (set `seed` from a random source in production).
    pub fn new(negotiated: Negotiated, ssrc: u32, rate: u32) -> EndpointConfig {
        EndpointConfig { negotiated, srtp_in: None, srtp_out: None, ssrc, rate, seed: u64::from(ssrc) << 16 }
    }

    /// With SRTP: `inbound` unprotects the peer's packets, `outbound` protects ours.
    pub fn with_srtp(mut self, inbound: SrtpContext, outbound: SrtpContext) -> EndpointConfig {
        self.srtp_in = Some(inbound);
        self.srtp_out = Some(outbound);
        self
    }
}

/// Counters of an [`Endpoint`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Datagrams taken as audio.
    pub audio: u64,
    /// Telephone-event packets.
    pub events: u64,
    /// Datagrams ignored (RTCP, other payload types).
    pub ignored: u64,
    /// Datagrams dropped: not RTP, or not authentic under SRTP.
    pub dropped: u64,
    /// Audio packets sent.
    pub sent: u64,
    pub decode: DecodeStats,
}

/// One side of an RTP audio stream for an application. See the [module docs](self).
#[derive(Debug)]
pub struct Endpoint {
    negotiated: Negotiated,
    receiver: AudioReceiver,
    sender: AudioSender,
    /// Codec rate to the application's rate, and back.
    to_app: Resampler,
    from_app: Resampler,
    srtp_in: Option<SrtpContext>,
    srtp_out: Option<SrtpContext>,
    rate: u32,
    /// Samples per frame at the application's rate.
    frame: usize,
    datagram: Vec<u8>,
    heard: Vec<i16>,
    said: Vec<i16>,
    stats: EndpointStats,
}

impl Endpoint {
    pub fn new(config: EndpointConfig) -> Result<Endpoint, EndpointError> {
        let EndpointConfig { negotiated, srtp_in, srtp_out, ssrc, rate, seed } = config;
        let kind = negotiated.audio.codec;
        let to_app = Resampler::new(kind.sample_rate(), rate)?;
        let from_app = Resampler::new(rate, kind.sample_rate())?;
        // Opus need not carry more than the application has (8 or 16 kHz audio as wideband).
        let mut params = negotiated.audio.encoder_params();
        params.max_playback_rate = params.max_playback_rate.min(rate.max(16_000));
        let sender = AudioSender::new(&negotiated.audio, &params, ssrc, (seed >> 32) as u16, seed as u32)?;
        Ok(Endpoint {
            receiver: AudioReceiver::new(&negotiated.audio)?,
            sender,
            to_app,
            from_app,
            srtp_in,
            srtp_out,
            rate,
            frame: (rate / 1000 * FRAME_MS) as usize,
            datagram: Vec::with_capacity(MAX_PACKET),
            heard: Vec::with_capacity(2 * (rate / 1000 * FRAME_MS) as usize),
            said: Vec::with_capacity(kind.frame_samples(FRAME_MS)),
            stats: EndpointStats::default(),
            negotiated,
        })
    }

    /// The formats in use.
    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }

    /// The application's PCM rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Samples in one 20 ms frame at the application's rate.
    pub fn frame_len(&self) -> usize {
        self.frame
    }

    pub fn ssrc(&self) -> u32 {
        self.sender.ssrc()
    }

    pub fn stats(&self) -> EndpointStats {
        EndpointStats { sent: self.sender.sent(), decode: self.receiver.stats(), ..self.stats }
    }

    pub fn jitter_stats(&self) -> JitterStats {
        self.receiver.jitter_stats()
    }

    /// Takes one datagram received at `now`: SRTP is checked and removed, audio goes into the
    /// jitter buffer. An error means the datagram was dropped (counted in
    /// [`EndpointStats::dropped`]).
    pub fn receive(&mut self, now: Instant, datagram: &[u8]) -> Result<Received, EndpointError> {
        // RTCP's packet types 192-223 sit where RTP's marker bit and payload types 64-95 would
        // (RFC 5761 §4); the peer sends its reports to our RTP port (`a=rtcp`, RFC 3605).
        if datagram.len() >= 2 && (192..=223).contains(&datagram[1]) {
            self.stats.ignored += 1;
            return Ok(Received::Ignored);
        }
        self.datagram.clear();
        self.datagram.extend_from_slice(datagram);
        if let Some(srtp) = &mut self.srtp_in
            && let Err(error) = srtp.unprotect_rtp(&mut self.datagram)
        {
            self.stats.dropped += 1;
            return Err(error.into());
        }
        let packet = match RtpPacket::parse(&self.datagram) {
            Ok(packet) => packet,
            Err(error) => {
                self.stats.dropped += 1;
                return Err(error.into());
            }
        };
        if self.receiver.push(now, &packet) {
            self.stats.audio += 1;
            Ok(Received::Audio)
        } else if self.negotiated.telephone_event.is_some_and(|e| e.payload_type == packet.payload_type()) {
            self.stats.events += 1;
            Ok(Received::Event)
        } else {
            self.stats.ignored += 1;
            Ok(Received::Ignored)
        }
    }

    /// The next 20 ms of what the peer says, at the application's rate, when it is time to
    /// play it at `now` (call once every 20 ms). `None` when nothing is due: before the first
    /// packet's playout delay, and in the peer's silence (DTX, no packets); a frame only partly
    /// covered is completed with silence.
    pub fn poll_audio(&mut self, now: Instant) -> Option<&[i16]> {
        let codec_frame = self.receiver.kind().frame_samples(FRAME_MS);
        let waiting = self.receiver.fill(now, codec_frame);
        if waiting == 0 {
            return None;
        }
        let take = waiting.min(codec_frame);
        self.heard.clear();
        self.to_app.process(&self.receiver.pending()[..take], &mut self.heard);
        self.receiver.consume(take);
        self.heard.resize(self.frame, 0);
        Some(&self.heard)
    }

    /// Encodes 20 ms of PCM at the application's rate into the next datagram to send (RTP,
    /// protected when SRTP is used). `Ok(None)`: nothing to send for this frame (Opus DTX).
    pub fn send(&mut self, pcm: &[i16]) -> Result<Option<&[u8]>, EndpointError> {
        if pcm.len() != self.frame {
            return Err(EndpointError::FrameSize { expected: self.frame, got: pcm.len() });
        }
        self.said.clear();
        self.from_app.process(pcm, &mut self.said);
        self.said.resize(self.sender.kind().frame_samples(FRAME_MS), 0);
        let Some(packet) = self.sender.encode(&self.said)? else { return Ok(None) };
        if let Some(srtp) = &mut self.srtp_out {
            srtp.protect_rtp(packet)?;
        }
        Ok(Some(packet.as_slice()))
    }

    /// Sends nothing for one 20 ms frame: the RTP clock moves on, the next packet starts a
    /// talk-spurt.
    pub fn skip(&mut self) {
        self.sender.skip();
    }
}

#[cfg(test)]
mod tests {
    use std::f64::consts::TAU;
    use std::time::Duration;

    use super::*;
    use crate::negotiate::EventFormat;
    use crate::srtp::{MasterKey, SrtpProfile};

    /// The one real instant the tests need; everything else is an offset from it.
    #[allow(clippy::disallowed_methods)]
    fn origin() -> Instant {
        Instant::now()
    }

    fn negotiated(codec: CodecKind, payload_type: u8) -> Negotiated {
        Negotiated {
            audio: PayloadFormat { codec, payload_type, fmtp: None },
            telephone_event: Some(EventFormat { payload_type: 101, clock_rate: 8000 }),
        }
    }

    fn srtp_pair(seed: u8) -> (SrtpContext, SrtpContext) {
        let key = MasterKey::from_bytes(&[seed; MasterKey::LEN]);
        let profile = SrtpProfile::Aes128CmSha1_80;
        (SrtpContext::new(profile, &key), SrtpContext::new(profile, &key))
    }

    /// Two endpoints, `a` and `b`, with SRTP in both directions when `srtp`.
    fn pair(codec: CodecKind, payload_type: u8, rate: u32, srtp: bool) -> (Endpoint, Endpoint) {
        let mut a = EndpointConfig::new(negotiated(codec, payload_type), 0x1111, rate);
        let mut b = EndpointConfig::new(negotiated(codec, payload_type), 0x2222, rate);
        if srtp {
            let (a_out, b_in) = srtp_pair(1);
            let (b_out, a_in) = srtp_pair(2);
            a = a.with_srtp(a_in, a_out);
            b = b.with_srtp(b_in, b_out);
        }
        (Endpoint::new(a).unwrap(), Endpoint::new(b).unwrap())
    }

    /// Level (RMS in dBFS, a full-scale sine at 0) and the frequency of the strongest of
    /// `candidates` (Goertzel power).
    fn analyse(pcm: &[i16], rate: u32, candidates: &[f64]) -> (f64, f64) {
        let rms = (pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len() as f64).sqrt();
        let dbfs = 20.0 * (rms * std::f64::consts::SQRT_2 / 32767.0).log10();
        let power = |f: f64| {
            let w = TAU * f / f64::from(rate);
            let (mut s1, mut s2) = (0.0, 0.0);
            for &x in pcm {
                let s = f64::from(x) + 2.0 * w.cos() * s1 - s2;
                s2 = s1;
                s1 = s;
            }
            s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2
        };
        let best = candidates.iter().copied().max_by(|x, y| power(*x).total_cmp(&power(*y))).unwrap();
        (dbfs, best)
    }

    /// `a` sends one second of a tone to `b`; returns what `b` heard after the first 200 ms.
    fn carry_tone(a: &mut Endpoint, b: &mut Endpoint, start: Instant, frequency: f64) -> Vec<i16> {
        let rate = a.rate();
        let frame = a.frame_len();
        let amplitude = 10_000.0; // -10.3 dBFS
        let mut heard = Vec::new();
        for i in 0..60usize {
            let now = start + Duration::from_millis(20 * i as u64);
            let pcm: Vec<i16> = (0..frame)
                .map(|n| (amplitude * (TAU * frequency * (i * frame + n) as f64 / f64::from(rate)).sin()) as i16)
                .collect();
            if i < 50
                && let Some(datagram) = a.send(&pcm).unwrap()
            {
                let datagram = datagram.to_vec();
                assert_eq!(b.receive(now, &datagram), Ok(Received::Audio));
            }
            if let Some(frame) = b.poll_audio(now) {
                heard.extend_from_slice(frame);
            } else {
                heard.extend(std::iter::repeat_n(0, frame));
            }
        }
        heard.split_off(rate as usize / 5)
    }

    fn check_tone(codec: CodecKind, payload_type: u8, rate: u32, srtp: bool) {
        let (mut a, mut b) = pair(codec, payload_type, rate, srtp);
        let start = origin();
        let heard = carry_tone(&mut a, &mut b, start, 1000.0);
        // 0.6 s of steady tone (from 0.2 s on, the jitter buffer's delay ahead).
        let steady = &heard[..rate as usize * 6 / 10];
        let (level, frequency) = analyse(steady, rate, &[400.0, 700.0, 1000.0, 1300.0, 2000.0, 3000.0]);
        assert_eq!(frequency, 1000.0, "{codec} srtp={srtp}");
        assert!((level - -10.3).abs() < 1.5, "{codec} srtp={srtp}: {level} dBFS");
        let stats = b.stats();
        assert_eq!((stats.audio, stats.dropped), (a.stats().sent, 0));
        assert!(stats.decode.decoded >= 45, "{stats:?}");
        // The stream ended: once the jitter buffer runs dry, nothing more is due.
        let later = start + Duration::from_secs(5);
        let due = (0..20u64).filter(|i| b.poll_audio(later + Duration::from_millis(20 * i)).is_some()).count();
        assert!(due < 20, "{codec}: audio after the stream ended");
        assert!(b.poll_audio(later + Duration::from_secs(1)).is_none());
    }

    /// Packets every 20 ms, but once a second nothing arrives for 100 ms and then five packets
    /// come at once (a busy machine runs the sender or the session late): the real-time jitter
    /// buffer conceals while its delay grows; the latency-tolerant one, for what applications
    /// hear, rides it out.
    #[test]
    fn stalls_are_concealed_in_real_time_and_ridden_out_by_the_tolerant_buffer() {
        let concealed = |config: JitterConfig| {
            let (mut a, _) = pair(CodecKind::Pcmu, 0, 8000, false);
            let format = PayloadFormat { codec: CodecKind::Pcmu, payload_type: 0, fmtp: None };
            let mut receiver = AudioReceiver::with_jitter(&format, config).unwrap();
            let start = origin();
            let mut queued: Vec<Vec<u8>> = Vec::new();
            let mut heard = 0;
            for i in 0..250u64 {
                let now = start + Duration::from_millis(20 * i);
                queued.push(a.send(&[1000; 160]).unwrap().unwrap().to_vec());
                if i % 50 < 45 {
                    for datagram in queued.drain(..) {
                        assert!(receiver.push(now, &RtpPacket::parse(&datagram).unwrap()));
                    }
                }
                let waiting = receiver.fill(now, 160);
                heard += waiting.min(160);
                receiver.consume(160);
            }
            assert!(heard >= 160 * 230, "{heard} samples heard");
            receiver.stats().concealed
        };
        assert!(concealed(JitterConfig::new(8000)) > 0);
        assert_eq!(concealed(JitterConfig::latency_tolerant(8000)), 0);
    }

    #[test]
    fn a_tone_crosses_pcmu_with_and_without_srtp() {
        check_tone(CodecKind::Pcmu, 0, 16_000, false);
        check_tone(CodecKind::Pcmu, 0, 16_000, true);
        check_tone(CodecKind::Pcmu, 0, 8000, true);
    }

    #[test]
    fn a_tone_crosses_g722_with_and_without_srtp() {
        check_tone(CodecKind::G722, 9, 16_000, false);
        check_tone(CodecKind::G722, 9, 16_000, true);
    }

    #[test]
    fn a_tone_crosses_opus_with_and_without_srtp() {
        check_tone(CodecKind::Opus, 111, 16_000, false);
        check_tone(CodecKind::Opus, 111, 16_000, true);
        check_tone(CodecKind::Opus, 111, 48_000, true);
    }

    #[test]
    fn packets_carry_our_numbering_and_marker() {
        let (mut a, _) = pair(CodecKind::Pcmu, 0, 8000, false);
        let silence = vec![0i16; 160];
        let mut packets = Vec::new();
        for i in 0..4 {
            if i == 2 {
                a.skip();
            } else {
                packets.push(a.send(&silence).unwrap().unwrap().to_vec());
            }
        }
        let parsed: Vec<RtpPacket<'_>> = packets.iter().map(|p| RtpPacket::parse(p).unwrap()).collect();
        assert!(parsed.iter().all(|p| p.ssrc() == 0x1111 && p.payload_type() == 0 && p.payload().len() == 160));
        let seq0 = parsed[0].sequence();
        let ts0 = parsed[0].timestamp();
        assert_eq!(
            parsed
                .iter()
                .map(|p| (p.sequence().wrapping_sub(seq0), p.timestamp().wrapping_sub(ts0), p.marker()))
                .collect::<Vec<_>>(),
            [(0, 0, true), (1, 160, false), (2, 480, true)]
        );
        assert_eq!(a.send(&silence[..100]), Err(EndpointError::FrameSize { expected: 160, got: 100 }));
    }

    #[test]
    fn garbage_and_forgeries_are_dropped_without_panic() {
        let (mut a, mut b) = pair(CodecKind::Opus, 111, 16_000, true);
        let now = origin();
        for datagram in
            [&[][..], &[0x80], &[0x80, 0x00, 0, 1], &[0xFF; 40], &[0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2]]
        {
            assert!(b.receive(now, datagram).is_err());
        }
        // RTCP is set aside before SRTP is looked at.
        assert_eq!(b.receive(now, &[0x80, 200, 0, 6, 0, 0, 0, 1]), Ok(Received::Ignored));
        // A packet altered in flight does not authenticate; a replay is refused.
        let tone: Vec<i16> = (0..320).map(|n| ((n as f32 * 0.3).sin() * 5000.0) as i16).collect();
        let good = a.send(&tone).unwrap().unwrap().to_vec();
        let mut forged = good.clone();
        *forged.last_mut().unwrap() ^= 1;
        assert_eq!(b.receive(now, &forged), Err(EndpointError::Srtp(SrtpError::AuthenticationFailed)));
        assert_eq!(b.receive(now, &good), Ok(Received::Audio));
        assert_eq!(b.receive(now, &good), Err(EndpointError::Srtp(SrtpError::Replayed)));
        assert_eq!(b.stats().dropped, 7);

        // Without SRTP: random bytes of every length, and RTP of any payload type and payload.
        let (_, mut plain) = pair(CodecKind::Opus, 111, 16_000, false);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for i in 0..3000u64 {
            let len = (next() % 200) as usize;
            let mut datagram: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if i % 2 == 0 && len >= 12 {
                datagram[0] = 0x80;
                datagram[1] = [111, 101, 0, 96][(i / 2 % 4) as usize];
            }
            let now = now + Duration::from_millis(i);
            let _ = plain.receive(now, &datagram);
            if i % 20 == 0
                && let Some(frame) = plain.poll_audio(now)
            {
                assert_eq!(frame.len(), 320);
            }
        }
        assert!(plain.stats().audio > 0 && plain.stats().events > 0 && plain.stats().ignored > 0);
    }
}
