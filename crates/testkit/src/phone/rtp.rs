//! A phone's RTP side: every 20 ms it says a frame of its tone (or, while a key is pressed,
//! the key's RFC 4733 telephone-events instead) and plays what its jitter buffer has, which it
//! records.
//!
//! Hearing goes through [`Endpoint`] (jitter buffer, G.711 decoding, loss concealment);
//! speaking through the endpoint's sending half, [`AudioSender`], used directly so that the
//! key's events take their sequence numbers and timestamp from the same RTP stream as the
//! audio (RFC 4733 §2.3: one SSRC, one sequence space).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sambung_media::codec::CodecKind;
use sambung_media::dtmf::{CLOCK_RATE, DtmfPacket, DtmfSender};
use sambung_media::endpoint::{AudioSender, Endpoint, EndpointConfig};
use sambung_media::negotiate::{EventFormat, Negotiated, PayloadFormat};
use sambung_media::rtp::RtpHeader;

use crate::audio::Sine;
use crate::rng::Rng;

/// The phones' frame: 20 ms.
pub const FRAME: Duration = Duration::from_millis(20);

/// Samples per frame at the phones' rate (G.711: 8 kHz).
pub const FRAME_SAMPLES: usize = 160;

/// The phones' PCM rate.
pub const RATE: u32 = 8000;

/// How long a key is held.
const KEY_MS: u32 = 160;

/// What the RTP side counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtpStats {
    /// Audio packets sent.
    pub sent: u64,
    /// Telephone-event packets sent.
    pub events_sent: u64,
    /// Datagrams received on the RTP port (any).
    pub received: u64,
    /// Frames played that had audio in them (the rest were silence: nothing due).
    pub frames_heard: u64,
}

/// A key being pressed: its packets, sent as their offsets come due.
#[derive(Debug)]
struct KeyPress {
    started: Instant,
    packets: std::iter::Peekable<DtmfSender>,
}

/// The media of one call.
#[derive(Debug)]
pub(crate) struct PhoneMedia {
    endpoint: Endpoint,
    sender: AudioSender,
    local: SocketAddr,
    remote: SocketAddr,
    /// The telephone-event payload type to send keys with, if negotiated.
    events: Option<EventFormat>,
    next_tick: Instant,
    key: Option<KeyPress>,
    pcm: Vec<i16>,
    packet: Vec<u8>,
    pub(crate) stats: RtpStats,
}

impl PhoneMedia {
    /// Media from `local` to `remote` in PCMU, keys as `events`, starting at `now`.
    pub(crate) fn new(
        local: SocketAddr,
        remote: SocketAddr,
        events: Option<EventFormat>,
        rng: &mut Rng,
        now: Instant,
    ) -> PhoneMedia {
        let format = PayloadFormat { codec: CodecKind::Pcmu, payload_type: 0, fmtp: None };
        let negotiated = Negotiated { audio: format.clone(), telephone_event: events };
        let ssrc = rng.next_u64() as u32;
        let mut config = EndpointConfig::new(negotiated, ssrc, RATE);
        config.seed = rng.next_u64();
        let endpoint = Endpoint::new(config).expect("PCMU at 8 kHz is always available");
        let (sequence, timestamp) = (rng.next_u64() as u16, rng.next_u64() as u32);
        let sender = AudioSender::new(&format, &format.encoder_params(), ssrc, sequence, timestamp)
            .expect("PCMU at 8 kHz is always available");
        PhoneMedia {
            endpoint,
            sender,
            local,
            remote,
            events,
            next_tick: now,
            key: None,
            pcm: vec![0; FRAME_SAMPLES],
            packet: Vec::with_capacity(256),
            stats: RtpStats::default(),
        }
    }

    pub(crate) fn next_tick(&self) -> Instant {
        self.next_tick
    }

    /// Presses `key` from the next tick on; false when no telephone-event was negotiated or the
    /// key is not one.
    pub(crate) fn press(&mut self, key: char, now: Instant) -> bool {
        if self.events.is_none() {
            return false;
        }
        match DtmfSender::new(key, self.sender.timestamp(), KEY_MS, 10) {
            Ok(sender) => {
                self.key = Some(KeyPress { started: now.max(self.next_tick), packets: sender.peekable() });
                true
            }
            Err(_) => false,
        }
    }

    /// True while a key's packets are still going out.
    pub(crate) fn pressing(&self) -> bool {
        self.key.is_some()
    }

    /// A datagram arrived on the RTP port.
    pub(crate) fn receive(&mut self, now: Instant, datagram: &[u8]) {
        self.stats.received += 1;
        let _ = self.endpoint.receive(now, datagram);
    }

    /// Runs the ticks due by `now`: what to say goes to `out`, what was heard to `heard`.
    pub(crate) fn tick(
        &mut self,
        now: Instant,
        tone: Option<&mut Sine>,
        heard: &mut Vec<i16>,
        out: &mut Vec<(SocketAddr, SocketAddr, Bytes)>,
    ) {
        let mut tone = tone;
        while self.next_tick <= now {
            let at = self.next_tick;
            self.next_tick += FRAME;
            if self.key.is_some() {
                self.send_key_packets(at, out);
                self.sender.skip();
            } else if let Some(tone) = tone.as_deref_mut() {
                tone.fill(&mut self.pcm);
                if let Ok(Some(packet)) = self.sender.encode(&self.pcm) {
                    out.push((self.local, self.remote, Bytes::copy_from_slice(packet)));
                    self.stats.sent += 1;
                }
            } else {
                self.sender.skip();
            }
            match self.endpoint.poll_audio(at) {
                Some(frame) => {
                    heard.extend_from_slice(frame);
                    self.stats.frames_heard += 1;
                }
                None => heard.extend(std::iter::repeat_n(0, FRAME_SAMPLES)),
            }
        }
    }

    /// Sends the key's packets whose time has come by `at`.
    fn send_key_packets(&mut self, at: Instant, out: &mut Vec<(SocketAddr, SocketAddr, Bytes)>) {
        let (Some(key), Some(events)) = (&mut self.key, self.events) else { return };
        let elapsed = at.saturating_duration_since(key.started);
        while let Some(packet) = key.packets.next_if(|p| due(p) <= elapsed) {
            let header = RtpHeader {
                marker: packet.marker,
                payload_type: events.payload_type,
                sequence: self.sender.next_sequence(),
                timestamp: packet.timestamp,
                ssrc: self.sender.ssrc(),
                ..RtpHeader::default()
            };
            self.packet.resize(header.header_len() + packet.payload.len(), 0);
            if header.write(&packet.payload, &mut self.packet).is_ok() {
                out.push((self.local, self.remote, Bytes::copy_from_slice(&self.packet)));
                self.stats.events_sent += 1;
            }
        }
        if key.packets.peek().is_none() {
            self.key = None;
        }
    }
}

/// When a key's packet is due after the key started.
fn due(packet: &DtmfPacket) -> Duration {
    Duration::from_micros(u64::from(packet.send_offset) * 1_000_000 / u64::from(CLOCK_RATE))
}
