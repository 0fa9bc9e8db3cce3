//! The session task's WebRTC legs: a leg handed to a browser ([`Command::WebRtc`]) speaks
//! ICE, DTLS-SRTP and RTCP through a [`WebRtcLeg`] on its first RTP socket (BUNDLE and
//! rtcp-mux: one socket for everything), and to the [`MediaSession`] it is a plain RTP leg.
//!
//! ```text
//!   browser ─ STUN/DTLS/SRTP ─▶ [socket] ─▶ WebRtcLeg ─ RTP ─▶ MediaSession ─▶ the other leg
//!   browser ◀──── SRTP ─────── [socket] ◀── WebRtcLeg ◀─ RTP ── MediaSession ◀─ the other leg
//! ```
//!
//! The session sees the browser's packets in the clear, as from the leg's own socket address
//! (a stand-in peer, so that latching and routing hold), and reads their DTMF, transcodes or
//! relays them as for any leg; what the session sends toward the leg is taken back out,
//! given to the `WebRtcLeg` (which protects it and keeps its own RTCP) and sent from the
//! socket to where ICE found the browser. The other leg's RTCP is not carried across: each
//! side gets reports of its own leg.
//!
//! [`MediaSession`]: sambung_media::session::MediaSession

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sambung_media::rtcp::{Compound, RtcpPacket};
use sambung_media::session::{Channel, Kind, Peer, Receive};
use sambung_media::webrtc::{RemoteWebRtc, RtpFields, WebRtcLeg, WebRtcOutput, WebRtcPlan};
use tracing::{debug, info, warn};

use super::forward::{Buffers, Relay, SLOT, kind_index, send_one};
use super::session::{DROPPED, Leg, RECEIVED, RECEIVED_BYTES};

/// Keyframe requests asked of one leg's stream are at most one this often: a browser that
/// loses packets asks again and again, and a keyframe costs a lot of bandwidth.
pub(super) const KEYFRAME_EVERY: Duration = Duration::from_millis(500);

/// RTCP payload-specific feedback (RFC 4585 §6.3): PLI has format 1, FIR format 4 (RFC 5104).
const PSFB: u8 = 206;
const PLI: u8 = 1;
const FIR: u8 = 4;

impl Relay {
    /// Hands `leg` to a browser: from now on its first RTP socket carries the WebRTC leg that
    /// speaks `plan` with `remote`.
    pub(super) fn attach_webrtc(&mut self, leg: Leg, plan: &WebRtcPlan, remote: &RemoteWebRtc) {
        let Some(identity) = self.identity.clone() else {
            return warn!(call = %self.call, "no WebRTC identity: the browser leg cannot start");
        };
        let now = tokio::time::Instant::now().into_std();
        match WebRtcLeg::new(now, &identity, plan, remote) {
            Ok(webrtc) => {
                let index = leg.index();
                let id = self.legs[index];
                let stand_in = Some(webrtc.local());
                for stream in 0..self.streams {
                    let peer = Peer { rtp: stand_in, rtcp: stand_in, signalling_ip: stand_in.map(|a| a.ip()) };
                    let _ = self.session.set_peer(id, stream, peer);
                }
                info!(call = %self.call, %leg, local = %plan.local, "WebRTC leg started");
                self.webrtc[index] = Some(Box::new(webrtc));
                self.busy = true;
                self.pump_webrtc(index, now);
            }
            Err(error) => warn!(call = %self.call, %leg, %error, "the WebRTC leg could not start"),
        }
    }

    /// The address the session takes leg `index`'s packets as coming from and sends them to:
    /// the leg's own first RTP socket (the plan's candidate). Never a real destination: sends
    /// there are taken back.
    fn stand_in(&self, index: usize) -> Option<SocketAddr> {
        self.webrtc[index].as_ref().map(|w| w.local())
    }

    /// The WebRTC leg behind `channel`, if its leg is one (by index A=0, B=1).
    pub(super) fn webrtc_leg(&self, channel: Channel) -> Option<usize> {
        let index = self.legs.iter().position(|&l| l == channel.leg)?;
        self.webrtc[index].is_some().then_some(index)
    }

    /// Datagrams received on socket `i`, whose leg is a browser's: STUN, DTLS, SRTP and
    /// SRTCP for its `WebRtcLeg`.
    pub(super) fn webrtc_receive(&mut self, i: usize, filled: usize, buffers: &mut Buffers) {
        let index = self.sockets[i].leg;
        let now = tokio::time::Instant::now().into_std();
        let mut inbound = [0u64; 6];
        if let Some(webrtc) = self.webrtc[index].as_mut() {
            for (k, meta) in buffers.meta[..filled].iter().enumerate() {
                let contents = buffers.data.get(k * SLOT..k * SLOT + meta.len).unwrap_or_default();
                let stride = if meta.stride == 0 { meta.len.max(1) } else { meta.stride };
                for datagram in contents.chunks(stride) {
                    inbound[RECEIVED] += 1;
                    inbound[RECEIVED_BYTES] += datagram.len() as u64;
                    webrtc.receive(now, meta.addr, datagram);
                }
            }
        }
        self.counters.add(index, kind_index(Kind::Rtp), &inbound);
        self.busy = true;
        self.pump_webrtc(index, now);
    }

    /// Runs the WebRTC legs' timers due at `now`.
    pub(super) fn webrtc_timeouts(&mut self, now: Instant) {
        for index in 0..2 {
            let due = self.webrtc[index].as_ref().and_then(|w| w.poll_timeout()).is_some_and(|at| at <= now);
            if due {
                if let Some(webrtc) = self.webrtc[index].as_mut() {
                    webrtc.handle_timeout(now);
                }
                self.pump_webrtc(index, now);
            }
        }
    }

    /// The earliest timer of the WebRTC legs.
    pub(super) fn webrtc_deadline(&self) -> Option<Instant> {
        self.webrtc.iter().flatten().filter_map(|w| w.poll_timeout()).min()
    }

    /// Takes what leg `index`'s `WebRtcLeg` has: datagrams go out of its socket, the browser's
    /// RTP into the session.
    pub(super) fn pump_webrtc(&mut self, index: usize, now: Instant) {
        let Some(socket) = self.socket_of(Channel::rtp(self.legs[index], 0)) else { return };
        let stand_in = self.stand_in(index);
        while let Some(output) = self.webrtc[index].as_mut().and_then(|w| w.poll()) {
            match output {
                WebRtcOutput::Transmit { destination, data } => {
                    let (packets, bytes) = send_one(&self.sockets[socket].socket, destination, &data);
                    self.counters.add(index, kind_index(Kind::Rtp), &[0, 0, packets, bytes, 0, 0]);
                }
                WebRtcOutput::Rtp { stream, packet } => {
                    let Some(source) = stand_in else { continue };
                    packet.write(&mut self.scratch);
                    if stream == 0 {
                        self.receivers[index].on_datagram(&self.scratch, now);
                    }
                    let channel = Channel::rtp(self.legs[index], stream);
                    let verdict = self.session.receive(now, channel, source, &mut self.scratch);
                    self.route(index, verdict, now);
                }
                WebRtcOutput::Connected => {
                    info!(call = %self.call, leg = index, "WebRTC leg connected (ICE, DTLS)");
                    // The browser needs a keyframe to show anything: ask the other side now.
                    let video = self.webrtc[index].as_ref().map(|w| w.video_streams()).unwrap_or_default();
                    for stream in video {
                        self.ask_keyframe(1 - index, stream, now);
                    }
                }
                WebRtcOutput::KeyframeRequest { stream, fir } => {
                    debug!(call = %self.call, leg = index, stream, fir, "keyframe request from the browser");
                    self.ask_keyframe(1 - index, stream, now);
                }
                WebRtcOutput::Closed => info!(call = %self.call, leg = index, "WebRTC leg closed"),
            }
        }
    }

    /// Where the session sent a packet received from leg `from` (now in `scratch`).
    fn route(&mut self, from: usize, verdict: Receive, now: Instant) {
        let mut inbound = [0u64; 6];
        match verdict {
            Receive::Forward { to, destination } => {
                if self.webrtc_leg(to).is_some() {
                    self.send_to_browser(to, now);
                    return;
                }
                let Some(out) = self.socket_of(to) else { return };
                let (packets, bytes) = send_one(&self.sockets[out].socket, destination, &self.scratch);
                let leg = self.sockets[out].leg;
                self.counters.add(leg, kind_index(to.kind), &[0, 0, packets, bytes, 0, 0]);
            }
            Receive::NoDestination | Receive::Dropped => inbound[DROPPED] += 1,
            Receive::Consumed | Receive::Rejected => {}
        }
        self.counters.add(from, kind_index(Kind::Rtp), &inbound);
    }

    /// A packet the session sent toward a browser's leg (in `scratch`, in the clear): RTP goes
    /// to its `WebRtcLeg`; RTCP ends here (the leg makes its own reports), but a keyframe
    /// request in it (PLI, FIR) is asked of the browser, and what the phone says it lost of the
    /// browser's video steers how much the browser may send (REMB, see `rate.rs` of the media
    /// crate).
    pub(super) fn send_to_browser(&mut self, to: Channel, now: Instant) {
        let Some(index) = self.webrtc_leg(to) else { return };
        if to.kind != Kind::Rtp {
            // The browser's own SSRC on this stream: the phone's report blocks about it.
            let browser_ssrc = self.sources[index].get(to.stream).copied().flatten();
            let (mut wants_keyframe, mut lost) = (false, None::<u8>);
            if let Ok(compound) = Compound::new(&self.scratch) {
                for packet in compound.into_iter().flatten() {
                    let blocks = match packet {
                        RtcpPacket::Unknown { packet_type: PSFB, count: PLI | FIR, .. } => {
                            wants_keyframe = true;
                            continue;
                        }
                        RtcpPacket::ReceiverReport(rr) => rr.reports,
                        RtcpPacket::SenderReport(sr) => sr.reports,
                        _ => continue,
                    };
                    for block in blocks.iter().filter(|b| browser_ssrc.is_none_or(|ssrc| b.ssrc == ssrc)) {
                        lost = Some(lost.map_or(block.fraction_lost, |l| l.max(block.fraction_lost)));
                    }
                }
            }
            if wants_keyframe {
                self.ask_keyframe(index, to.stream, now);
            }
            if let (Some(lost), Some(webrtc)) = (lost, self.webrtc[index].as_mut())
                && let Some(estimate) = webrtc.report_loss(now, to.stream, lost)
            {
                debug!(call = %self.call, stream = to.stream, lost, estimate, "the phone's loss report: the browser may send");
                self.pump_webrtc(index, now);
            }
            return;
        }
        let Some(packet) = RtpFields::parse(&self.scratch) else { return };
        if let Some(webrtc) = self.webrtc[index].as_mut()
            && let Err(error) = webrtc.write_rtp(now, to.stream, &packet)
        {
            debug!(call = %self.call, %error, "packet for the browser dropped");
        }
        self.pump_webrtc(index, now);
    }
}

impl Relay {
    /// Asks leg `index` for a keyframe on `stream`, at most once per [`KEYFRAME_EVERY`]: a
    /// browser through its `WebRtcLeg` (PLI), a phone by an RTCP PLI of our own (RFC 4585
    /// §6.3.1) to where its RTCP goes, naming the SSRC it sends that stream with.
    pub(super) fn ask_keyframe(&mut self, index: usize, stream: usize, now: Instant) {
        let Some(asked) = self.keyframe_asked.get_mut(index).and_then(|a| a.get_mut(stream)) else { return };
        if asked.is_some_and(|at| now.saturating_duration_since(at) < KEYFRAME_EVERY) {
            return;
        }
        *asked = Some(now);
        if let Some(webrtc) = self.webrtc[index].as_mut() {
            let _ = webrtc.request_keyframe(stream);
            return self.pump_webrtc(index, now);
        }
        // A phone that said nothing of RTCP feedback is asked by SIP INFO (RFC 5168), which
        // call control sends in its dialog.
        if !self.session.config(self.legs[index], stream).is_some_and(|c| c.rtcp_feedback) {
            let leg = if index == 0 { Leg::A } else { Leg::B };
            if let Some(sink) = &self.keyframes {
                sink.send(&self.call, leg, stream);
                debug!(call = %self.call, leg = index, stream, "keyframe asked of the phone (SIP INFO)");
            }
            return;
        }
        let Some(media) = self.sources[index].get(stream).copied().flatten() else { return };
        let channel = Channel::rtcp(self.legs[index], stream);
        let (Some(socket), Some(destination)) = (self.socket_of(channel), self.session.destination(channel)) else {
            return;
        };
        // Version 2, FMT 1, PT 206, length 2 (three words less one); sender SSRC, media SSRC.
        let mut pli = [0u8; 12];
        pli[..4].copy_from_slice(&[0x80 | PLI, PSFB, 0, 2]);
        pli[4..8].copy_from_slice(&1u32.to_be_bytes());
        pli[8..].copy_from_slice(&media.to_be_bytes());
        let (packets, bytes) = send_one(&self.sockets[socket].socket, destination, &pli);
        self.counters.add(index, kind_index(Kind::Rtcp), &[0, 0, packets, bytes, 0, 0]);
        debug!(call = %self.call, leg = index, stream, media, "keyframe asked of the phone (PLI)");
    }
}
