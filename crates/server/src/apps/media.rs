//! The media of one application call: the answer to the relay's offer, the RTP socket, and the
//! 20 ms loop that plays prompts and records what the caller says.
//!
//! The relay offers the application's side its B-leg port with SDES-keyed SRTP (RFC 4568) and
//! the caller's codecs first, then the ones it can transcode to. [`answer`] takes the first
//! codec of the offer the engine has (the caller's own, so the relay need not transcode), binds
//! a socket on the relay's address, and answers with our own key under the offered tag and
//! suite. [`Session`] then runs a [`sambung_media::endpoint::Endpoint`] on that socket every
//! 20 ms and gives the applications the [`CallIo`] they are written against: play, record, keys.
//! Keys come from the core ([`crate::core::AppRequest::Key`]): the relay reads them from RFC 4733
//! events and SIP INFO, so the audio is not searched for DTMF here.

use std::collections::VecDeque;
use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use sambung_media::SessionDescription;
use sambung_media::codec::CodecKind;
use sambung_media::endpoint::{Endpoint, EndpointConfig, EndpointError, Received};
use sambung_media::negotiate::{self, Negotiated};
use sambung_media::offer_answer::remote_media;
use sambung_media::sdes::SdesCrypto;
use sambung_media::sdp::{Attribute, Connection, MediaDescription, MediaType, Origin, SdpError, Timing};
use sambung_media::tone::{Tone, ToneGenerator};
use sambung_media::wav::{WavPlayer, WavRecorder};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tracing::{debug, warn};

use super::{Audio, CallIo, Played, RecordEnd, Recording, Wait};
use crate::media::keys;

/// The 20 ms step of the audio.
pub const TICK: Duration = Duration::from_millis(20);

/// Largest datagram read.
const MAX_DATAGRAM: usize = 2048;

/// Why an offer could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("the offer is not valid SDP: {0}")]
    Sdp(#[from] SdpError),
    #[error("the offer has no RTP audio stream with a codec the engine has")]
    NoAudio,
    #[error("the offer's stream is SRTP without an SDES key we can use")]
    NoKey,
    #[error("cannot bind an RTP socket: {0}")]
    Bind(std::io::Error),
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
}

/// What [`answer`] chose: the stream's socket and endpoint, and where the relay listens.
#[derive(Debug)]
pub struct CallMedia {
    socket: UdpSocket,
    /// Where our packets go: the offer's address, then the source of the relay's packets
    /// (symmetric RTP, RFC 4961).
    peer: SocketAddr,
    endpoint: Endpoint,
}

impl CallMedia {
    /// The PCM rate of the call's audio (and of its recordings): 8 kHz for narrowband codecs,
    /// 16 kHz otherwise.
    pub fn rate(&self) -> u32 {
        self.endpoint.rate()
    }

    /// Our socket's address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.socket.local_addr().ok()
    }

    /// The codec in use.
    pub fn codec(&self) -> CodecKind {
        self.endpoint.negotiated().audio.codec
    }
}

/// The audio section of the offer we answer, and what we use on it.
struct Chosen {
    index: usize,
    negotiated: Negotiated,
    peer: SocketAddr,
    /// The relay's key and ours, for SRTP.
    keys: Option<(SdesCrypto, SdesCrypto)>,
}

/// The first audio stream of `offer` we can take: RTP with a codec the engine has, and SDES
/// keys when it is SRTP (DTLS-SRTP is not spoken here).
fn choose(offer: &SessionDescription) -> Result<Chosen, MediaError> {
    let mut missing_key = false;
    for (index, media) in offer.media.iter().enumerate() {
        if media.media != MediaType::Audio || media.is_disabled() || !media.proto.is_rtp() {
            continue;
        }
        let Some(negotiated) = negotiate::choose_for_offerer(media) else { continue };
        let Some(remote) = remote_media(offer, media) else { continue };
        let keys = if media.proto.is_secure() {
            match keys::from_media(media).into_iter().next() {
                Some(theirs) => {
                    let ours = keys::fresh(theirs.tag, theirs.profile);
                    Some((theirs, ours))
                }
                None => {
                    missing_key = true;
                    continue;
                }
            }
        } else {
            None
        };
        return Ok(Chosen { index, negotiated, peer: remote.rtp, keys });
    }
    Err(if missing_key { MediaError::NoKey } else { MediaError::NoAudio })
}

/// A socket on `ip` (the relay's address, on this host), any free port. When that address is
/// not one of ours (the relay advertises a public address it does not hold), the socket takes
/// any address of the family and the loopback address is advertised: the relay is in this
/// process. Returns the socket and the address to advertise.
async fn bind(ip: IpAddr) -> Result<(UdpSocket, IpAddr), MediaError> {
    if !ip.is_unspecified()
        && let Ok(socket) = UdpSocket::bind(SocketAddr::new(ip, 0)).await
    {
        return Ok((socket, ip));
    }
    let (any, loopback): (IpAddr, IpAddr) = match ip {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED.into(), Ipv4Addr::LOCALHOST.into()),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED.into(), Ipv6Addr::LOCALHOST.into()),
    };
    let socket = UdpSocket::bind(SocketAddr::new(any, 0)).await.map_err(MediaError::Bind)?;
    Ok((socket, loopback))
}

/// The answer (RFC 3264 §6): one section per offered one, the chosen one with our port, the
/// negotiated codec and telephone-event (RFC 4733), our key under the offered tag and suite
/// (RFC 4568 §7.1.2) and `a=rtcp` naming our one port (RFC 3605: the relay's RTCP comes to the
/// RTP socket and is dropped there); every other section declined with port 0.
fn build_answer(offer: &SessionDescription, chosen: &Chosen, ip: IpAddr, port: u16) -> SessionDescription {
    let session_id = rand::random::<u32>().to_string();
    let media = offer
        .media
        .iter()
        .enumerate()
        .map(|(index, offered)| {
            if index != chosen.index {
                let formats = if offered.formats.is_empty() { vec!["0".to_owned()] } else { offered.formats.clone() };
                return MediaDescription::new(offered.media.clone(), 0, offered.proto.clone(), formats);
            }
            let mut media = MediaDescription::new(MediaType::Audio, port, offered.proto.clone(), Vec::new());
            negotiate::restrict(&mut media, &chosen.negotiated);
            if let Some((_, ours)) = &chosen.keys {
                media.attributes.push(ours.to_attribute());
            }
            media.attributes.push(Attribute::value("rtcp", port.to_string()));
            media.attributes.push(Attribute::property("sendrecv"));
            media
        })
        .collect();
    let connection = Connection::new(ip);
    SessionDescription {
        origin: Origin {
            username: "sambung".into(),
            session_id,
            session_version: 1,
            net_type: connection.net_type.clone(),
            addr_type: connection.addr_type.clone(),
            address: connection.address.clone(),
        },
        session_name: "-".into(),
        information: None,
        uri: None,
        emails: Vec::new(),
        phones: Vec::new(),
        connection: Some(connection),
        bandwidths: Vec::new(),
        times: vec![Timing { start: 0, stop: 0, repeats: Vec::new() }],
        time_zones: None,
        key: None,
        attributes: Vec::new(),
        media,
    }
}

/// Answers the relay's `offer`: the media of the call and the SDP answer.
pub async fn answer(offer: &[u8]) -> Result<(CallMedia, Bytes), MediaError> {
    let offer = SessionDescription::parse(offer)?;
    let chosen = choose(&offer)?;
    let (socket, ip) = bind(chosen.peer.ip()).await?;
    let port = socket.local_addr().map_err(MediaError::Bind)?.port();
    let sdp = build_answer(&offer, &chosen, ip, port);
    // Narrowband audio stays at 8 kHz (recordings too); anything wider is heard at 16 kHz.
    let rate = if chosen.negotiated.audio.codec.sample_rate() == 8000 { 8000 } else { 16_000 };
    let mut config = EndpointConfig::new(chosen.negotiated, rand::random(), rate);
    config.seed = rand::random();
    if let Some((theirs, ours)) = &chosen.keys {
        config = config.with_srtp(theirs.context(), ours.context());
    }
    let endpoint = Endpoint::new(config)?;
    debug!(codec = %endpoint.negotiated().audio.codec, local = %SocketAddr::new(ip, port), relay = %chosen.peer, "application media answered");
    Ok((CallMedia { socket, peer: chosen.peer, endpoint }, Bytes::from(sdp.to_bytes())))
}

/// What is being played.
enum Source<'a> {
    Wav(Box<WavPlayer<Cursor<&'a [u8]>>>),
    Tone(ToneGenerator),
}

impl Source<'_> {
    /// Fills `frame` with the next 20 ms; false once the source is over (`frame` is silence
    /// then, or the last bit of the sound padded with silence).
    fn fill(&mut self, frame: &mut [i16]) -> bool {
        match self {
            Source::Wav(player) => match player.next_frame() {
                Ok(Some(samples)) => {
                    let len = samples.len().min(frame.len());
                    frame[..len].copy_from_slice(&samples[..len]);
                    frame[len..].fill(0);
                    true
                }
                Ok(None) => {
                    frame.fill(0);
                    false
                }
                Err(error) => {
                    debug!(%error, "prompt unreadable from here on");
                    frame.fill(0);
                    false
                }
            },
            Source::Tone(tone) => tone.fill(frame),
        }
    }
}

/// The call's media and keys, driven every 20 ms: the [`CallIo`] of a real call.
#[derive(Debug)]
pub struct Session {
    media: CallMedia,
    ticker: Interval,
    keys_rx: mpsc::Receiver<char>,
    keys_open: bool,
    stop: oneshot::Receiver<()>,
    /// Keys pressed and not read yet (type-ahead).
    keys: VecDeque<char>,
    hung_up: bool,
    buffer: Vec<u8>,
    frame: Vec<i16>,
    silence: Vec<i16>,
    /// Ticks of silence still to send before the first sound: the answer is sent when the
    /// application starts, and the caller's phone and the relay need a moment to connect, or
    /// the first words of the first prompt are lost.
    lead_in: u32,
}

/// How long the application waits, sending silence, before it first plays something.
const LEAD_IN: Duration = Duration::from_millis(400);

impl Session {
    /// Runs `media`; `keys` brings the caller's keys, `stop` fires (or is dropped) when the
    /// caller hangs up.
    pub fn new(media: CallMedia, keys: mpsc::Receiver<char>, stop: oneshot::Receiver<()>) -> Session {
        let mut ticker = tokio::time::interval(TICK);
        // Late ticks are caught up: the RTP clock must keep pace with the wall clock.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let frame_len = media.endpoint.frame_len();
        Session {
            media,
            ticker,
            keys_rx: keys,
            keys_open: true,
            stop,
            keys: VecDeque::new(),
            hung_up: false,
            buffer: vec![0; MAX_DATAGRAM],
            frame: vec![0; frame_len],
            silence: vec![0; frame_len],
            lead_in: (LEAD_IN.as_millis() / TICK.as_millis()) as u32,
        }
    }

    /// Waits for the next tick, taking in datagrams and keys meanwhile. False once the caller
    /// hung up.
    async fn tick(&mut self) -> bool {
        let Session { media, ticker, keys_rx, keys_open, stop, keys, hung_up, buffer, .. } = self;
        loop {
            if *hung_up {
                return false;
            }
            tokio::select! {
                _ = ticker.tick() => return true,
                received = media.socket.recv_from(buffer) => match received {
                    Ok((len, source)) => {
                        let now = Instant::now().into_std();
                        match media.endpoint.receive(now, &buffer[..len]) {
                            // An authentic packet from elsewhere: the relay's port moved.
                            Ok(Received::Audio | Received::Event) if source != media.peer => {
                                debug!(from = %media.peer, to = %source, "application media latched");
                                media.peer = source;
                            }
                            Ok(_) => {}
                            Err(error) => debug!(%source, %error, "datagram dropped"),
                        }
                    }
                    // ICMP port unreachable and the like: the next datagram may do.
                    Err(error) => debug!(%error, "RTP receive error"),
                },
                key = keys_rx.recv(), if *keys_open => match key {
                    Some(key) => keys.push_back(key),
                    None => *keys_open = false,
                },
                // A Stop, or the applications are gone (shutdown): either way the call is over.
                _ = &mut *stop => *hung_up = true,
            }
        }
    }

    /// Sends the next 20 ms: from `source` when given (false once it is over), else silence.
    /// The caller's audio of the same 20 ms is returned when `hear` (silence in its gaps), and
    /// taken out of the jitter buffer either way.
    fn exchange(&mut self, source: Option<&mut Source<'_>>, hear: bool) -> (bool, Option<&[i16]>) {
        let playing = match source {
            Some(source) => source.fill(&mut self.frame),
            None => {
                self.frame.fill(0);
                false
            }
        };
        match self.media.endpoint.send(&self.frame) {
            Ok(Some(datagram)) => {
                if let Err(error) = self.media.socket.try_send_to(datagram, self.media.peer) {
                    debug!(%error, peer = %self.media.peer, "RTP send error");
                }
            }
            Ok(None) => {}
            Err(error) => warn!(%error, "cannot send the application's audio"),
        }
        let now = Instant::now().into_std();
        let heard = self.media.endpoint.poll_audio(now);
        let heard = if hear { Some(heard.unwrap_or(&self.silence)) } else { None };
        (playing, heard)
    }

    fn source<'a>(&self, audio: &Audio<'a>) -> Option<Source<'a>> {
        let rate = self.media.rate();
        let wav = match audio {
            Audio::Prompt(prompt) => prompt.wav(),
            Audio::Wav(bytes) => bytes,
            Audio::Beep => {
                return ToneGenerator::new(Tone::Beep, rate)
                    .map(Source::Tone)
                    .inspect_err(|error| warn!(%error, "cannot make the beep"))
                    .ok();
            }
        };
        WavPlayer::new(Cursor::new(wav), rate)
            .map(|player| Source::Wav(Box::new(player)))
            .inspect_err(|error| warn!(%error, "unplayable WAV"))
            .ok()
    }
}

impl CallIo for Session {
    async fn play(&mut self, audio: &[Audio<'_>], interruptible: bool) -> Played {
        while self.lead_in > 0 {
            self.lead_in -= 1;
            if !self.tick().await {
                return Played::Hangup;
            }
            self.exchange(None, false);
        }
        for item in audio {
            let Some(mut source) = self.source(item) else { continue };
            loop {
                if interruptible && let Some(&key) = self.keys.front() {
                    return Played::Key(key);
                }
                if !self.tick().await {
                    return Played::Hangup;
                }
                if !self.exchange(Some(&mut source), false).0 {
                    break;
                }
            }
        }
        Played::Done
    }

    async fn wait_key(&mut self, timeout: Duration) -> Wait {
        let ticks = timeout.as_millis().div_ceil(TICK.as_millis()).max(1);
        for _ in 0..ticks {
            if let Some(key) = self.keys.pop_front() {
                return Wait::Key(key);
            }
            if !self.tick().await {
                return Wait::Hangup;
            }
            self.exchange(None, false);
        }
        match self.keys.pop_front() {
            Some(key) => Wait::Key(key),
            None => Wait::Timeout,
        }
    }

    async fn record(&mut self, max: Duration, stop_keys: &[char]) -> Recording {
        let rate = self.media.rate();
        let mut file = Vec::new();
        let mut recorder = match WavRecorder::new(Cursor::new(&mut file), rate) {
            Ok(recorder) => recorder,
            Err(error) => {
                warn!(%error, "cannot record");
                return Recording::failed(RecordEnd::MaxLength);
            }
        };
        let frames = max.as_millis().div_ceil(TICK.as_millis());
        let mut recorded = 0u128;
        let ended_by = loop {
            if let Some(key) = self.keys.pop_front()
                && stop_keys.contains(&key)
            {
                break RecordEnd::Key(key);
            }
            if recorded >= frames {
                break RecordEnd::MaxLength;
            }
            if !self.tick().await {
                break RecordEnd::Hangup;
            }
            let (_, heard) = self.exchange(None, true);
            if let Some(heard) = heard
                && let Err(error) = recorder.write(heard)
            {
                warn!(%error, "recording stopped");
                break RecordEnd::MaxLength;
            }
            recorded += 1;
        };
        match recorder.finalize() {
            Ok(summary) => Recording { wav: file, duration: summary.duration, silent: summary.silent, ended_by },
            Err(error) => {
                warn!(%error, "cannot finish the recording");
                Recording::failed(ended_by)
            }
        }
    }

    fn clear_keys(&mut self) {
        self.keys.clear();
    }

    fn unix_now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }
}
