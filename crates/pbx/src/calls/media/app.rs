//! Leg B as an application inside the server (voicemail, the mailbox menu, confirmations): it
//! answers the caller's offer with the caller's own codec, so the media session decodes and
//! encodes for it and nothing is transcoded or encrypted toward it.

use bytes::Bytes;
use sambung_media::negotiate::{self, Negotiated};
use sambung_media::sdp::{Attribute, MediaDescription, MediaType, Proto, SessionDescription};

use sambung_media::offer_answer::rewrite_for_relay;

use super::{CallMedia, LegState, LegTransport, MediaFailure, Pending, Role, carries_rtp, index, parse, strip_crypto};
use crate::calls::Side;
use crate::pbx::Ctx;

/// What the application answers with.
#[derive(Debug)]
pub(crate) struct InProcessAnswer {
    /// The application speaks and hears this (the caller's codec).
    pub format: Negotiated,
    /// The application's PCM rate: 8 kHz for narrowband codecs, 16 kHz otherwise.
    pub rate: u32,
    /// The answer as the caller gets it.
    pub to_a: Bytes,
    /// The application's own description, to answer the caller's re-offers with.
    pub answer: Bytes,
}

impl CallMedia {
    /// Leg B becomes an application answering the caller's pending offer. `a_secure`: the
    /// caller's signalling is encrypted.
    pub(crate) fn answer_in_process(
        &mut self,
        ctx: &mut Ctx<'_>,
        a_secure: bool,
    ) -> Result<InProcessAnswer, MediaFailure> {
        let offer = match &self.pending {
            Some(pending) if pending.from == Side::A => pending.offer.clone(),
            _ => return Err(MediaFailure::NoOffer),
        };
        let chosen = offer
            .media
            .iter()
            .enumerate()
            .take(self.streams.len())
            .filter(|(_, m)| m.media == MediaType::Audio && carries_rtp(m))
            .find_map(|(i, m)| negotiate::choose_for_offerer(m).map(|format| (i, format)));
        let Some((stream, format)) = chosen else { return Err(MediaFailure::NoCommonCodec) };
        let answer = self.app_description(&offer, stream, &format);
        self.b_in_process = true;
        let bytes = Bytes::from(answer.to_bytes());
        let to_a =
            self.relay(ctx, Side::B, &bytes, self.in_process(), Role::Answer { provisional: false }, a_secure)?;
        let rate = if format.audio.codec.sample_rate() == 8000 { 8000 } else { 16_000 };
        Ok(InProcessAnswer { format, rate, to_a, answer: bytes })
    }

    /// A re-offer from the caller of an application call (a session refresh, hold): the
    /// application keeps its media, so its description answers again.
    pub(crate) fn reanswer_in_process(
        &mut self,
        ctx: &mut Ctx<'_>,
        offer: &Bytes,
        a: LegTransport,
        answer: &Bytes,
        a_secure: bool,
    ) -> Result<Bytes, MediaFailure> {
        self.take(ctx, Side::A, offer, a, Role::Offer)?;
        self.relay(ctx, Side::B, answer, self.in_process(), Role::Answer { provisional: false }, a_secure)
    }

    /// The caller, answered by an application speaking `format` (whose description was
    /// `app_answer`), is to be connected to a device: leg B is offered the caller's media as the
    /// application took it (the same codec, which the device may decline for one the engine
    /// transcodes to; streams the application declined stay declined), as a first offer toward
    /// that leg, so that its security follows the device's signalling. The offer is
    /// [`Self::b_offer`]; the device's answer is then taken as any callee's, and the caller is
    /// not asked again.
    pub(crate) fn connect_offer(&mut self, format: &Negotiated, app_answer: &Bytes) -> Result<(), MediaFailure> {
        let answer = parse(app_answer)?;
        let Some(mut offer) = self.latest[index(Side::A)].clone() else { return Err(MediaFailure::NoOffer) };
        for (i, media) in offer.media.iter_mut().enumerate() {
            if answer.media.get(i).is_some_and(|m| m.port != 0) {
                negotiate::restrict(media, format);
            } else {
                media.port = 0;
            }
        }
        self.b_in_process = false;
        self.negotiated_once = false;
        for stream in &mut self.streams {
            stream.transcode = false;
            stream.legs[index(Side::A)].format = None;
            stream.legs[index(Side::B)] = LegState::default();
        }
        let mut out = rewrite_for_relay(&offer, self.ip, self.leg_ports(Side::B));
        for (i, media) in out.media.iter_mut().enumerate() {
            strip_crypto(media);
            if i < self.streams.len() && carries_rtp(media) {
                negotiate::widen_offer(media, &self.preferences);
            }
        }
        self.pending = Some(Pending { from: Side::A, offer, initial: true });
        self.b_offer = Some(out);
        Ok(())
    }

    /// Leg B, a device's in an answered call, becomes an application (its phone handed the
    /// caller to a service): the application speaks the codec the caller's leg uses now, and
    /// its description, as leg B's, answers the caller's later re-offers.
    pub(crate) fn b_to_app(&mut self) -> Result<InProcessAnswer, MediaFailure> {
        let Some(a) = self.latest[index(Side::A)].clone() else { return Err(MediaFailure::NoOffer) };
        let Some((stream, format)) = self.leg_format(Side::A) else { return Err(MediaFailure::NoCommonCodec) };
        if self.is_browser(Side::A) {
            return Err(MediaFailure::NoWebRtc);
        }
        let answer = Bytes::from(self.app_description(&a, stream, &format).to_bytes());
        self.pending = None;
        self.b_in_process = true;
        for stream in &mut self.streams {
            stream.legs[index(Side::B)] = LegState::default();
        }
        let rate = if format.audio.codec.sample_rate() == 8000 { 8000 } else { 16_000 };
        Ok(InProcessAnswer { format, rate, to_a: Bytes::new(), answer })
    }

    /// The codec `side` sends and receives on the first audio stream now, with the stream's
    /// index: its transcoding format, else the codec both ends agreed on (the first of the
    /// side's own list that the other listed too).
    pub(crate) fn leg_format(&self, side: Side) -> Option<(usize, Negotiated)> {
        let own = self.latest[index(side)].as_ref()?;
        let other = self.latest[index(side.other())].as_ref()?;
        own.media.iter().enumerate().take(self.streams.len()).find_map(|(i, m)| {
            if m.media != MediaType::Audio || !carries_rtp(m) {
                return None;
            }
            if self.streams[i].transcode {
                return self.streams[i].legs[index(side)].format.clone().map(|f| (i, f));
            }
            // Both ends send the answer's first codec (RFC 3264 §6.1); relayed as it is, its
            // payload type is the same on both legs.
            let theirs = other.media.get(i)?;
            let (offer, answer) = if self.last_answerer == Some(side) { (theirs, m) } else { (m, theirs) };
            negotiate::answered_format(offer, answer).map(|(format, _)| (i, format))
        })
    }

    /// The codecs legs A and B speak now, to record the call; `None` when a leg is a browser's
    /// or an application's, or has no audio the engine decodes.
    pub(crate) fn recording_formats(&self) -> Option<[Negotiated; 2]> {
        if self.b_in_process || self.is_browser(Side::A) || self.is_browser(Side::B) {
            return None;
        }
        // The relay mixes a recorded call: only a call of one audio stream (no video) is.
        let streams = self.latest[index(Side::A)].as_ref()?.media.iter().filter(|m| carries_rtp(m)).count();
        if streams != 1 {
            return None;
        }
        let (a_stream, a) = self.leg_format(Side::A)?;
        let (b_stream, b) = self.leg_format(Side::B)?;
        (a_stream == 0 && b_stream == 0).then_some([a, b])
    }

    /// True when an application can answer the caller's pending offer (see
    /// [`Self::answer_in_process`]): a pickup takes a ringing call only then.
    pub(crate) fn can_answer_in_process(&self) -> bool {
        match &self.pending {
            Some(pending) if pending.from == Side::A => {
                pending.offer.media.iter().take(self.streams.len()).any(|m| {
                    m.media == MediaType::Audio && carries_rtp(m) && negotiate::choose_for_offerer(m).is_some()
                })
            }
            _ => false,
        }
    }

    /// Connecting failed: leg B is the application's again, as it was.
    pub(crate) fn back_to_app(&mut self) {
        self.pending = None;
        self.b_in_process = true;
        self.negotiated_once = true;
        for stream in &mut self.streams {
            stream.transcode = false;
            stream.legs[index(Side::A)].format = None;
            stream.legs[index(Side::B)] = LegState::default();
        }
    }

    fn in_process(&self) -> LegTransport {
        LegTransport { secure: true, signalling_ip: self.ip }
    }

    /// The application's description (RFC 3264 §6): one section per offered one, the chosen
    /// stream on leg B's port with the negotiated codec and telephone-event, plain RTP; every
    /// other section declined with port 0.
    fn app_description(&self, offer: &SessionDescription, stream: usize, format: &Negotiated) -> SessionDescription {
        let port = self.ports[index(Side::B)].get(stream).copied().unwrap_or(9);
        let media = offer
            .media
            .iter()
            .enumerate()
            .map(|(i, offered)| {
                if i != stream {
                    let formats =
                        if offered.formats.is_empty() { vec!["0".to_owned()] } else { offered.formats.clone() };
                    return MediaDescription::new(offered.media.clone(), 0, offered.proto.clone(), formats);
                }
                let mut media = MediaDescription::new(MediaType::Audio, port, Proto::RtpAvp, Vec::new());
                negotiate::restrict(&mut media, format);
                media.attributes.push(Attribute::property("sendrecv"));
                media
            })
            .collect();
        SessionDescription::ours(self.ip, self.session.to_string(), media)
    }
}
