//! The media runtime's side of a WebRTC leg ([`WebRtcLeg`]): str0m's `Rtc` speaking a plan,
//! plain RTP in and out.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use str0m::change::DirectApi;
use str0m::config::Fingerprint;
use str0m::format::FormatParams;
use str0m::media::{Frequency, KeyframeRequestKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{ExtensionMap, RtpWrite, SeqNo, Ssrc};
use str0m::{Candidate, Event, IceCreds, Input, Output, Rtc, RtcConfig};

use super::plan::WebRtcPlan;
use super::remote::{RemoteWebRtc, Setup};
use super::{EXTENSIONS, WebRtcError, WebRtcIdentity};
use crate::sdp::MediaType;

/// What a WebRTC leg has for the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebRtcOutput {
    /// Send `data` from the leg's socket to `destination`.
    Transmit { destination: SocketAddr, data: Vec<u8> },
    /// An RTP packet from the browser on stream `stream`, decrypted: the header's fields and
    /// the payload.
    Rtp { stream: usize, packet: RtpFields },
    /// The browser asks for a keyframe on `stream` (PLI or FIR).
    KeyframeRequest { stream: usize, fir: bool },
    /// ICE and DTLS are done: media flows.
    Connected,
    /// The leg is over (DTLS closed, or a fatal error).
    Closed,
}

/// An RTP packet's fields, without SRTP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpFields {
    pub pt: u8,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
}

impl RtpFields {
    /// Reads an RTP packet in the clear (RFC 3550 §5.1): CSRCs and extensions skipped,
    /// padding removed. `None` when it is not one.
    pub fn parse(packet: &[u8]) -> Option<RtpFields> {
        let rtp = crate::rtp::RtpPacket::parse(packet).ok()?;
        Some(RtpFields {
            pt: rtp.payload_type(),
            seq: rtp.sequence(),
            timestamp: rtp.timestamp(),
            ssrc: rtp.ssrc(),
            marker: rtp.marker(),
            payload: rtp.payload().to_vec(),
        })
    }

    /// Writes it as a plain RTP packet (version 2, no CSRCs, no extension) into `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.clear();
        out.push(0x80);
        out.push((u8::from(self.marker) << 7) | (self.pt & 0x7F));
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(&self.payload);
    }
}

/// A browser leg. See the [module docs](self).
pub struct WebRtcLeg {
    rtc: Rtc,
    local: SocketAddr,
    streams: Vec<LegStream>,
    outputs: VecDeque<WebRtcOutput>,
    next_timeout: Option<Instant>,
    connected: bool,
    closed: bool,
    /// When the bitrate caps are next told (REMB is a standing report, sent again each second).
    next_remb: Option<Instant>,
}

/// How often a browser is reminded of its bitrate cap.
const REMB_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// One stream of a leg.
#[derive(Clone, Debug)]
struct LegStream {
    mid: Mid,
    video: bool,
    /// The cap told to the browser by REMB, bits per second: the other side's own.
    max_bitrate: Option<u64>,
    /// What the other side's loss reports allow, once it has sent one (see [`super::rate`]).
    rate: Option<super::rate::LossBasedRate>,
    ssrc: u32,
    pts: Vec<u8>,
    /// The last extended sequence number written, to extend the next 16-bit one.
    last_seq: Option<u64>,
    declined: bool,
}

impl fmt::Debug for WebRtcLeg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebRtcLeg")
            .field("local", &self.local)
            .field("streams", &self.streams.len())
            .field("connected", &self.connected)
            .field("closed", &self.closed)
            .finish()
    }
}

impl WebRtcLeg {
    /// The leg that speaks `plan` with the browser `remote` describes (its offer, or its
    /// answer to ours): ICE-lite with the plan's credentials and candidate, the plan's
    /// payload types and extension ids, DTLS started in the plan's role.
    pub fn new(
        now: Instant,
        identity: &WebRtcIdentity,
        plan: &WebRtcPlan,
        remote: &RemoteWebRtc,
    ) -> Result<WebRtcLeg, WebRtcError> {
        if plan.setup == Setup::ActPass {
            return Err(WebRtcError::Mismatch("no answer has fixed the DTLS role"));
        }
        let mut config = RtcConfig::new()
            .set_dtls_cert(identity.cert.clone())
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .clear_codecs()
            .set_local_ice_credentials(IceCreds { ufrag: plan.ufrag.clone(), pass: plan.pwd.clone() });
        // The payload types as negotiated, so that what str0m sends and reads matches our SDP.
        let mut seen = Vec::new();
        for format in plan.streams.iter().flat_map(|s| &s.formats) {
            let (Some(codec), false) = (format.codec(), seen.contains(&format.pt)) else { continue };
            seen.push(format.pt);
            let clock = Frequency::new(format.clock_rate).ok_or(WebRtcError::Mismatch("a zero clock rate"))?;
            let fmtp = format.fmtp.as_deref().map(FormatParams::parse_line).unwrap_or_default();
            let resend = plan
                .streams
                .iter()
                .flat_map(|s| &s.rtx)
                .find(|(_, apt)| *apt == format.pt)
                .map(|(rtx, _)| (*rtx).into());
            config.codec_config().add_config(format.pt.into(), resend, codec, clock, format.channels, fmtp);
        }
        let mut map = ExtensionMap::empty();
        for (id, uri) in plan.streams.iter().flat_map(|s| &s.extensions) {
            if let Some(ext) = EXTENSIONS.iter().find(|e| e.as_uri() == uri) {
                map.set(*id, ext.clone());
            }
        }
        let mut rtc = config.set_extension_map(map).build(now);
        let candidate = Candidate::host(plan.local, "udp")
            .map_err(|e| WebRtcError::Rtc(format!("candidate {}: {e}", plan.local)))?;
        rtc.add_local_candidate(candidate);
        let fingerprint: Fingerprint = remote.fingerprint.parse().map_err(WebRtcError::Fingerprint)?;
        let mut streams = Vec::with_capacity(plan.streams.len());
        {
            let mut api = rtc.direct_api();
            for (index, planned) in plan.streams.iter().enumerate() {
                let mid = Mid::from(planned.mid.as_str());
                let declined = planned.is_declined();
                if !declined {
                    api.declare_media(mid, planned.kind());
                    api.declare_stream_tx(Ssrc::from(planned.ssrc), planned.rtx_ssrc.map(Ssrc::from), mid, None);
                    if let Some(media) = remote.media.get(index)
                        && let Some(ssrc) = media.ssrcs.first()
                    {
                        let rtx = media.rtx_ssrc.filter(|_| !planned.rtx.is_empty()).map(Ssrc::from);
                        api.expect_stream_rx(Ssrc::from(*ssrc), rtx, mid, None);
                    }
                }
                let pts = planned.formats.iter().map(|f| f.pt).collect();
                let video = planned.media == MediaType::Video;
                streams.push(LegStream {
                    mid,
                    video,
                    max_bitrate: planned.max_bitrate,
                    rate: None,
                    ssrc: planned.ssrc,
                    pts,
                    last_seq: None,
                    declined,
                });
            }
            api.set_remote_ice_credentials(IceCreds { ufrag: remote.ufrag.clone(), pass: remote.pwd.clone() });
            api.set_remote_fingerprint(fingerprint);
            api.set_ice_controlling(false);
            api.start_dtls(plan.dtls_client())?;
        }
        let mut leg = WebRtcLeg {
            rtc,
            local: plan.local,
            streams,
            outputs: VecDeque::new(),
            next_timeout: None,
            connected: false,
            closed: false,
            next_remb: None,
        };
        leg.drain();
        Ok(leg)
    }

    /// The leg's socket address.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// True once ICE and DTLS are done.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The streams that carry video (and are not declined).
    pub fn video_streams(&self) -> Vec<usize> {
        self.streams.iter().enumerate().filter(|(_, s)| s.video && !s.declined).map(|(i, _)| i).collect()
    }

    /// A datagram that arrived on the leg's socket from `source`: STUN, DTLS, SRTP or SRTCP.
    /// Anything else is dropped.
    pub fn receive(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        let Ok(contents) = data.try_into() else { return };
        let input = Input::Receive(now, Receive { proto: Protocol::Udp, source, destination: self.local, contents });
        if self.rtc.accepts(&input) {
            let _ = self.rtc.handle_input(input);
            self.drain();
        }
    }

    /// Runs str0m's timers (ICE keep-alive, DTLS retransmission, RTCP reports).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        if self.connected && self.next_remb.is_none_or(|at| at <= now) {
            self.next_remb = Some(now + REMB_EVERY);
            let caps: Vec<(Mid, u64)> = self
                .streams
                .iter()
                .filter(|s| !s.declined)
                .filter_map(|s| Some((s.mid, s.rate.map(|r| r.estimate()).or(s.max_bitrate)?)))
                .collect();
            let mut api = self.rtc.direct_api();
            for (mid, bps) in caps {
                if let Some(rx) = api.stream_rx_by_mid(mid, None) {
                    rx.request_remb(str0m::bwe::Bitrate::bps(bps));
                }
            }
        }
        let _ = self.rtc.handle_input(Input::Timeout(now));
        self.drain();
    }

    /// When [`WebRtcLeg::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let remb = self
            .next_remb
            .filter(|_| self.connected && self.streams.iter().any(|s| s.max_bitrate.is_some() || s.rate.is_some()));
        match (self.next_timeout, remb) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The other side reported `fraction_lost` (of 256, RFC 3550 §6.4.1) of the video it was sent
    /// on `stream`: what the browser may send follows ([`super::rate::LossBasedRate`]), and a
    /// lower figure is told at once. Returns the estimate, bits per second (`None` for a stream
    /// that is not video).
    pub fn report_loss(&mut self, now: Instant, stream: usize, fraction_lost: u8) -> Option<u64> {
        let s = self.streams.get_mut(stream).filter(|s| s.video && !s.declined)?;
        let cap = s.max_bitrate;
        let rate = s.rate.get_or_insert_with(|| super::rate::LossBasedRate::new(cap));
        let before = rate.estimate();
        let after = rate.on_report(fraction_lost);
        if after < before || self.next_remb.is_none() {
            self.next_remb = Some(now);
        }
        Some(after)
    }

    /// What the leg has for the driver, in order.
    pub fn poll(&mut self) -> Option<WebRtcOutput> {
        self.outputs.pop_front()
    }

    /// Sends an RTP packet to the browser on `stream` (in the clear: str0m protects it).
    /// `seq` is extended across its wraps here. Before the leg is connected, and for a payload
    /// type not negotiated on the stream, it is dropped.
    pub fn write_rtp(&mut self, now: Instant, stream: usize, packet: &RtpFields) -> Result<(), WebRtcError> {
        let leg_stream = self.streams.get_mut(stream).ok_or(WebRtcError::NoSuchStream(stream))?;
        if leg_stream.declined || !self.connected || !leg_stream.pts.contains(&packet.pt) {
            return Ok(());
        }
        let seq = extend_seq(leg_stream.last_seq, packet.seq);
        leg_stream.last_seq = Some(seq.max(leg_stream.last_seq.unwrap_or(0)));
        let ssrc = Ssrc::from(leg_stream.ssrc);
        let mut api: DirectApi<'_> = self.rtc.direct_api();
        let Some(tx) = api.stream_tx(&ssrc) else { return Err(WebRtcError::NoSuchStream(stream)) };
        // Video is kept for retransmission on a NACK; audio is not worth it.
        let write = RtpWrite::new(packet.pt.into(), SeqNo::from(seq), packet.timestamp, now, packet.payload.as_slice())
            .marker(packet.marker)
            .nackable(leg_stream.video);
        tx.write_rtp(write);
        self.drain();
        Ok(())
    }

    /// Asks the browser for a keyframe on `stream` (PLI).
    pub fn request_keyframe(&mut self, stream: usize) -> Result<(), WebRtcError> {
        let mid = self.streams.get(stream).ok_or(WebRtcError::NoSuchStream(stream))?.mid;
        if let Some(rx) = self.rtc.direct_api().stream_rx_by_mid(mid, None) {
            rx.request_keyframe(KeyframeRequestKind::Pli);
        }
        self.drain();
        Ok(())
    }

    fn stream_of(&self, mid: Mid) -> Option<usize> {
        self.streams.iter().position(|s| s.mid == mid)
    }

    /// Takes everything str0m has to say up to its next timeout.
    fn drain(&mut self) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => {
                    self.next_timeout = Some(at);
                    break;
                }
                Ok(Output::Transmit(t)) => self
                    .outputs
                    .push_back(WebRtcOutput::Transmit { destination: t.destination, data: t.contents.to_vec() }),
                Ok(Output::Event(event)) => self.event(event),
                Err(_) => {
                    self.close();
                    break;
                }
            }
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Connected => {
                self.connected = true;
                self.outputs.push_back(WebRtcOutput::Connected);
            }
            Event::RtpPacket(packet) => {
                let pt = *packet.header.payload_type;
                let by_pt = self.streams.iter().position(|s| !s.declined && s.pts.contains(&pt));
                let stream = packet.header.ext_vals.mid.and_then(|mid| self.stream_of(mid)).or(by_pt);
                let Some(stream) = stream else { return };
                self.outputs.push_back(WebRtcOutput::Rtp {
                    stream,
                    packet: RtpFields {
                        pt,
                        seq: packet.header.sequence_number,
                        timestamp: packet.header.timestamp,
                        ssrc: *packet.header.ssrc,
                        marker: packet.header.marker,
                        payload: packet.payload.to_vec(),
                    },
                });
            }
            Event::KeyframeRequest(request) => {
                if let Some(stream) = self.stream_of(request.mid) {
                    let fir = request.kind == KeyframeRequestKind::Fir;
                    self.outputs.push_back(WebRtcOutput::KeyframeRequest { stream, fir });
                }
            }
            Event::Closed => self.close(),
            _ => {}
        }
    }

    fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.outputs.push_back(WebRtcOutput::Closed);
        }
    }
}

/// The extended sequence number of `seq` given the last one (RFC 3711 §3.3.1's estimate).
pub(super) fn extend_seq(last: Option<u64>, seq: u16) -> u64 {
    let Some(last) = last else { return u64::from(seq) };
    let roc = last >> 16;
    let candidates = [roc.wrapping_sub(1), roc, roc + 1].map(|r| (r << 16) | u64::from(seq));
    candidates.into_iter().filter(|c| *c < (1 << 48)).min_by_key(|c| c.abs_diff(last)).unwrap_or(u64::from(seq))
}
