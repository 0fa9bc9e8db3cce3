//! The session task's side of [`MediaSession`] beyond the fast path: datagrams one by one
//! through [`MediaSession::receive`] (SRTP, DTMF, transcoding, an application leg), what the
//! session makes itself ([`MediaSession::poll_transmit`]) and reports
//! ([`MediaSession::poll_event`]), its clock, and the handle's commands.

use std::time::Instant;

use sambung_media::session::{APP_QUEUE, LegId, LegKind, Receive, Router, SessionEvent};
use tokio::sync::mpsc::error::TrySendError;
use tracing::{debug, info};

use super::forward::{Buffers, Relay, SLOT, kind_index, send_one};
use super::session::{Command, DROPPED, KeyEvent, Leg, RECEIVED, RECEIVED_BYTES, REJECTED, SENT, SENT_BYTES};

impl Relay {
    /// Handles the `filled` buffers just received on socket `i` one datagram at a time,
    /// through the session.
    pub(super) fn forward_each(&mut self, i: usize, filled: usize, buffers: &mut Buffers) {
        self.busy = true;
        let (channel, leg) = (self.sockets[i].channel, self.sockets[i].leg);
        let kind = kind_index(channel.kind);
        let mut inbound = [0u64; 6];
        // Per RTP leg with sockets (A, B).
        let mut outbound = [[0u64; 6]; 2];
        let now = tokio::time::Instant::now().into_std();
        for (k, meta) in buffers.meta[..filled].iter().enumerate() {
            let contents = buffers.data.get(k * SLOT..k * SLOT + meta.len).unwrap_or_default();
            let stride = if meta.stride == 0 { meta.len.max(1) } else { meta.stride };
            for datagram in contents.chunks(stride) {
                // The SSRCs a phone sends, for keyframe requests asked of it on a browser's
                // behalf: only while a browser is in the call.
                if kind == 0
                    && self.webrtc.iter().any(Option::is_some)
                    && let (Some(sources), Ok(rtp)) =
                        (self.sources.get_mut(leg), sambung_media::rtp::RtpPacket::parse(datagram))
                    && let Some(slot) = sources.get_mut(channel.stream)
                {
                    *slot = Some(rtp.ssrc());
                }
                if channel.stream == 0 && leg < 2 {
                    if kind == 0 {
                        self.receivers[leg].on_datagram(datagram, now);
                    } else {
                        self.round_trips.on_rtcp(leg, datagram, now);
                    }
                }
                self.scratch.clear();
                self.scratch.extend_from_slice(datagram);
                let verdict = self.session.receive(now, channel, meta.addr, &mut self.scratch);
                if verdict == Receive::Rejected {
                    inbound[REJECTED] += 1;
                    continue;
                }
                inbound[RECEIVED] += 1;
                inbound[RECEIVED_BYTES] += datagram.len() as u64;
                match verdict {
                    Receive::Forward { to, .. } if self.webrtc_leg(to).is_some() => self.send_to_browser(to, now),
                    Receive::Forward { to, destination } => {
                        let Some(out) = self.socket_of(to) else {
                            inbound[DROPPED] += 1;
                            continue;
                        };
                        let (packets, bytes) = send_one(&self.sockets[out].socket, destination, &self.scratch);
                        let counters = &mut outbound[self.sockets[out].leg];
                        counters[SENT] += packets;
                        counters[SENT_BYTES] += bytes;
                        inbound[DROPPED] += 1 - packets;
                    }
                    Receive::NoDestination | Receive::Dropped => inbound[DROPPED] += 1,
                    Receive::Consumed | Receive::Rejected => {}
                }
            }
        }
        self.counters.add(leg, kind, &inbound);
        for (leg, deltas) in outbound.iter().enumerate() {
            self.counters.add(leg, kind, deltas);
        }
    }

    /// Runs the session's ticks due at `now`, after giving it one frame the application played
    /// for each of them: the channel is the application's queue, and it waits while the channel
    /// is full, so its frames are paced by the session's clock.
    pub(super) fn tick(&mut self, now: Instant) {
        let ticks = self.session.due_ticks(now) as usize;
        if let Some(app) = &mut self.app {
            for _ in 0..ticks.min(APP_QUEUE) {
                let Ok(frame) = app.played.try_recv() else { break };
                if let Err(error) = self.session.app_play(self.legs[1], &frame) {
                    debug!(call = %self.call, %error, "application frame refused");
                }
            }
        }
        // The music on hold: one frame per tick, paced by the session's clock.
        if let (Some((leg, position)), Some(music)) = (&mut self.music, &self.music_source) {
            for _ in 0..ticks.min(APP_QUEUE) {
                let (frame, next) = music.frame(*position);
                *position = next;
                if let Err(error) = self.session.app_play(*leg, &frame) {
                    debug!(call = %self.call, %error, "music frame refused");
                    break;
                }
            }
        }
        self.play_notice(ticks);
        self.session.handle_timeout(now);
        self.webrtc_timeouts(now);
    }

    /// `leg` is held by the other: it hears the music instead (an application leg paired with
    /// it), unless an application or a browser is in the call, or there is no music.
    fn hold(&mut self, leg: Leg, format: sambung_media::negotiate::Negotiated) {
        let call = self.call.clone();
        if self.app.is_some()
            || self.music.is_some()
            || self.recording.is_some()
            || self.webrtc.iter().any(Option::is_some)
        {
            return debug!(call = %call, %leg, "on hold: no music here");
        }
        if self.music_source.is_none() {
            return;
        }
        let kind = LegKind::App { format, rate: super::music::RATE };
        let music = match self.session.add_leg(kind) {
            Ok(music) => music,
            Err(error) => return debug!(call = %call, %error, "no music on hold"),
        };
        match self.session.set_router(Router::Pair(self.legs[leg.index()], music)) {
            Ok(()) => {
                info!(call = %call, %leg, "on hold: music");
                self.music = Some((music, 0));
            }
            Err(error) => {
                debug!(call = %call, %error, "no music on hold");
                let _ = self.session.remove_leg(music);
            }
        }
    }

    /// Off hold: the legs hear each other again.
    fn resume(&mut self) {
        let Some((music, _)) = self.music.take() else { return };
        let router = if self.recording.is_some() {
            Router::Mix(self.legs.to_vec())
        } else {
            Router::Pair(self.legs[0], self.legs[1])
        };
        let _ = self.session.set_router(router);
        let _ = self.session.remove_leg(music);
        info!(call = %self.call, "off hold");
    }

    /// The call is recorded from now on: both legs are decoded (their codecs `formats`, A
    /// then B) and mixed to each other rather than relayed, and what each says goes to `sink`.
    fn record(
        &mut self,
        formats: [sambung_media::negotiate::Negotiated; 2],
        sink: super::record::RecordSink,
        notice: bool,
    ) {
        let call = self.call.clone();
        if self.app.is_some() || self.recording.is_some() || self.webrtc.iter().any(Option::is_some) {
            return debug!(call = %call, "not recorded: an application or a browser is in the call");
        }
        let Some(recording) = super::record::Recording::new(sink, formats.clone()) else { return };
        let notice_format = formats[0].clone();
        for (leg, format) in self.legs.into_iter().zip(formats) {
            let mut config = self.session.config(leg, 0).cloned().unwrap_or_default();
            config.format = Some(format);
            let _ = self.session.configure(leg, 0, config);
        }
        if let Err(error) = self.session.set_router(Router::Mix(self.legs.to_vec())) {
            return debug!(call = %call, %error, "not recorded");
        }
        self.session.set_tap(true);
        self.recording = Some(recording);
        info!(call = %call, "recording");
        if notice {
            // Both parties hear the notice: an application leg in the mix plays it, then leaves.
            let kind = LegKind::App { format: notice_format, rate: super::record::NOTICE_RATE };
            let Ok(leg) = self.session.add_leg(kind) else { return };
            let legs = vec![self.legs[0], self.legs[1], leg];
            match self.session.set_router(Router::Mix(legs)) {
                Ok(()) => self.notice = Some((leg, 0)),
                Err(error) => {
                    debug!(call = %call, %error, "no recording notice");
                    let _ = self.session.remove_leg(leg);
                }
            }
        }
    }

    /// Plays the recording notice, one frame per tick; once it is over its leg leaves the mix.
    fn play_notice(&mut self, ticks: usize) {
        let Some((leg, position)) = &mut self.notice else { return };
        let samples = super::record::notice();
        let frame_len = super::record::NOTICE_RATE as usize / 50;
        for _ in 0..ticks.min(APP_QUEUE) {
            if *position >= samples.len() {
                break;
            }
            let mut frame = samples[*position..(*position + frame_len).min(samples.len())].to_vec();
            frame.resize(frame_len, 0);
            *position += frame_len;
            if self.session.app_play(*leg, &frame).is_err() {
                break;
            }
        }
        if *position >= samples.len() {
            let leg = *leg;
            self.notice = None;
            let _ = self.session.set_router(Router::Mix(self.legs.to_vec()));
            let _ = self.session.remove_leg(leg);
            info!(call = %self.call, "recording notice played");
        }
    }

    /// Sends what the session made and delivers what it reports.
    pub(super) fn pump(&mut self) {
        while let Some(transmit) = self.session.poll_transmit(&mut self.out) {
            if self.webrtc_leg(transmit.to).is_some() {
                std::mem::swap(&mut self.scratch, &mut self.out);
                self.send_to_browser(transmit.to, tokio::time::Instant::now().into_std());
                std::mem::swap(&mut self.scratch, &mut self.out);
                continue;
            }
            let Some(out) = self.socket_of(transmit.to) else { continue };
            let (packets, bytes) = send_one(&self.sockets[out].socket, transmit.destination, &self.out);
            self.counters.add(self.sockets[out].leg, kind_index(transmit.to.kind), &[0, 0, packets, bytes, 0, 0]);
        }
        while let Some(event) = self.session.poll_event() {
            match event {
                SessionEvent::Key { leg, stream, key, duration_ms } => {
                    let leg = if leg == self.legs[0] { Leg::A } else { Leg::B };
                    info!(call = %self.call, %leg, stream, key = %key, duration_ms, "key pressed");
                    if let Some(keys) = &self.keys {
                        keys.send(KeyEvent { call: self.call.clone(), leg, key, duration_ms });
                    }
                    if let Some(app) = &self.app
                        && leg == Leg::A
                    {
                        let _ = app.keys.try_send(key);
                    }
                }
                SessionEvent::AppAudio { samples, .. } => {
                    let Some(app) = &self.app else { continue };
                    // A full channel drops the frame: the application is behind.
                    if let Err(TrySendError::Closed(_)) = app.heard.try_send(samples) {
                        debug!(call = %self.call, "the application has gone");
                        self.app = None;
                    }
                }
                SessionEvent::Tapped { stream: 0, frames } => {
                    let Some(recording) = &mut self.recording else { continue };
                    let frame = |leg: LegId| frames.iter().find(|(l, _)| *l == leg).map(|(_, f)| f.as_slice());
                    if !recording.write([frame(self.legs[0]), frame(self.legs[1])]) {
                        debug!(call = %self.call, "the recording's writer has gone");
                        self.recording = None;
                        self.session.set_tap(false);
                    }
                }
                SessionEvent::Tapped { .. } => {}
                SessionEvent::Latched { at, source, previous } => {
                    debug!(call = %self.call, channel = ?at, %source, ?previous, "media latched");
                }
            }
        }
    }

    /// Applies a command of the handle, then refreshes the fast path's routes.
    pub(super) fn apply(&mut self, command: Command) {
        self.apply_command(command);
        self.refresh_routes();
    }

    fn apply_command(&mut self, command: Command) {
        let call = self.call.clone();
        match command {
            Command::Clocks { leg, clocks } => self.receivers[leg.index()].set_clocks(clocks),
            // A browser's leg keeps its stand-in peer: ICE says where the browser is.
            Command::SetPeer { leg, .. } if self.webrtc[leg.index()].is_some() => {}
            Command::SetPeer { leg, stream, peer } => {
                let rtcp = peer.rtcp_or_next();
                let signalling = peer.signalling_ip;
                debug!(call = %call, %leg, stream, rtp = ?peer.rtp, ?rtcp, ?signalling, "media peer set");
                let _ = self.session.set_peer(self.legs[leg.index()], stream, peer);
            }
            Command::Configure { stream, legs } => {
                let ids = self.legs;
                // A recorded call's legs are mixed: they keep the codecs the recording decodes
                // (a new offer and answer, such as hold, says nothing of them when it relays).
                let formats = self.recording.as_ref().filter(|_| stream == 0).map(|r| r.formats.clone());
                let legs = legs.into_iter().map(|(leg, mut config)| {
                    if let Some(formats) = &formats
                        && config.format.is_none()
                    {
                        config.format = Some(formats[leg.index()].clone());
                    }
                    (ids[leg.index()], config)
                });
                let _ = self.session.configure_legs(stream, legs);
                let plain = self.session.is_plain(stream);
                debug!(call = %call, stream, plain, "media stream configured");
            }
            Command::AttachApp { port, format } => {
                let kind = LegKind::App { format: *format, rate: port.rate };
                match self.session.set_leg_kind(self.legs[1], kind) {
                    Ok(()) => {
                        debug!(call = %call, rate = port.rate, "leg B handed to an application");
                        self.app = Some(port);
                        self.listen(self.legs[1], false);
                    }
                    Err(error) => debug!(call = %call, %error, "cannot hand leg B to the application"),
                }
            }
            Command::WebRtc { leg, plan, remote } => self.attach_webrtc(leg, &plan, &remote),
            Command::Keyframe { leg } => {
                let now = tokio::time::Instant::now().into_std();
                // A browser's video streams; a phone's, not known here, are all asked.
                let streams = match &self.webrtc[leg.index()] {
                    Some(webrtc) => webrtc.video_streams(),
                    None => (0..self.streams).collect(),
                };
                for stream in streams {
                    self.ask_keyframe(leg.index(), stream, now);
                }
            }
            Command::Hold { leg, format } => self.hold(leg, *format),
            Command::Resume => self.resume(),
            Command::Record { formats, sink, notice } => self.record(*formats, sink, notice),
            Command::DetachApp => {
                let _ = self.session.set_leg_kind(self.legs[1], LegKind::Rtp);
                self.app = None;
                self.listen(self.legs[1], true);
                debug!(call = %call, "leg B back to its device");
            }
        }
    }

    /// Starts or stops reading `leg`'s sockets.
    fn listen(&mut self, leg: LegId, listen: bool) {
        for socket in self.sockets.iter_mut().filter(|s| s.channel.leg == leg) {
            socket.listen = listen;
        }
    }
}
