//! Codec negotiation for a back-to-back agent that transcodes only when it must.
//!
//! The B2BUA offers the callee what the caller offered, then the codecs the engine can
//! transcode to that the caller lacks ([`widen_offer`]). When the callee answers with one of
//! the caller's codecs, the media is relayed untouched; when it picks one the B2BUA added,
//! the call is transcoded, and each leg is then held to its own codec ([`restrict`]).
//!
//! ```
//! use sambung_media::codec::CodecKind;
//! use sambung_media::negotiate::{answered_format, widen_offer};
//! use sambung_media::sdp::SessionDescription;
//!
//! let offer: SessionDescription = "v=0\r\no=a 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
//!     m=audio 4000 RTP/AVP 96 101\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:101 telephone-event/48000\r\n"
//!     .parse()
//!     .unwrap();
//! let mut to_callee = offer.media[0].clone();
//! assert!(widen_offer(&mut to_callee, &[CodecKind::Opus, CodecKind::Pcmu]));
//! assert_eq!(to_callee.formats, ["96", "101", "0", "97"]); // PCMU and an 8 kHz telephone-event added
//!
//! let answer: SessionDescription = "v=0\r\no=b 1 1 IN IP4 192.0.2.2\r\ns=-\r\nc=IN IP4 192.0.2.2\r\nt=0 0\r\n\
//!     m=audio 5000 RTP/AVP 0 97\r\na=rtpmap:97 telephone-event/8000\r\n"
//!     .parse()
//!     .unwrap();
//! let (callee, relayed) = answered_format(&offer.media[0], &answer.media[0]).unwrap();
//! assert_eq!((callee.audio.codec, relayed), (CodecKind::Pcmu, false)); // transcode
//! assert_eq!(callee.telephone_event.map(|t| t.payload_type), Some(97));
//! ```

use crate::codec::{CodecKind, EncoderParams};
use crate::sdp::{Attribute, Codec, MediaDescription, MediaType};

/// One audio payload format a leg uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayloadFormat {
    pub codec: CodecKind,
    pub payload_type: u8,
    /// The `a=fmtp` parameters the leg wrote for it.
    pub fmtp: Option<String>,
}

impl PayloadFormat {
    /// How to encode toward the leg that wrote this format: Opus's `useinbandfec`, `usedtx`
    /// and `maxplaybackrate` (RFC 7587 §6.1) say what the receiver wants.
    pub fn encoder_params(&self) -> EncoderParams {
        let mut params = EncoderParams::default();
        let Some(fmtp) = &self.fmtp else { return params };
        for pair in fmtp.split(';') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (name, value) = (name.trim(), value.trim());
            match name.to_ascii_lowercase().as_str() {
                "useinbandfec" => params.fec = value == "1",
                "usedtx" => params.dtx = value == "1",
                "maxplaybackrate" => {
                    if let Ok(rate) = value.parse::<u32>() {
                        params.max_playback_rate = rate.clamp(8000, 48_000);
                    }
                }
                "maxaveragebitrate" => params.bitrate = value.parse::<u32>().ok().map(|b| b.clamp(6000, 510_000)),
                _ => {}
            }
        }
        params
    }
}

/// The telephone-event format (RFC 4733) a leg uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventFormat {
    pub payload_type: u8,
    pub clock_rate: u32,
}

/// What one leg of a stream negotiated: its audio codec and its DTMF events, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub audio: PayloadFormat,
    pub telephone_event: Option<EventFormat>,
}

fn fmtp_of(media: &MediaDescription, payload_type: u8) -> Option<String> {
    media.fmtp(&payload_type.to_string()).map(|f| f.params)
}

fn kind_of(codec: &Codec) -> Option<CodecKind> {
    CodecKind::from_rtpmap(&codec.name, codec.clock_rate, codec.channels.map(u32::from))
}

/// The audio formats of `media` the engine can decode and encode, in the section's order.
pub fn supported_formats(media: &MediaDescription) -> Vec<PayloadFormat> {
    media
        .codecs()
        .into_iter()
        .filter_map(|codec| {
            let kind = kind_of(&codec)?;
            Some(PayloadFormat {
                codec: kind,
                payload_type: codec.payload_type,
                fmtp: fmtp_of(media, codec.payload_type),
            })
        })
        .collect()
}

/// Every telephone-event format of `media` (one per clock rate, RFC 4733 §7.1.1).
pub fn telephone_events(media: &MediaDescription) -> Vec<EventFormat> {
    media
        .codecs()
        .into_iter()
        .filter(|c| c.name.eq_ignore_ascii_case("telephone-event"))
        .map(|c| EventFormat { payload_type: c.payload_type, clock_rate: c.clock_rate })
        .collect()
}

/// The telephone-event format of `media`, preferring the one at `clock_rate`.
pub fn telephone_event(media: &MediaDescription, clock_rate: u32) -> Option<EventFormat> {
    let events = telephone_events(media);
    events.iter().find(|e| e.clock_rate == clock_rate).or(events.first()).copied()
}

/// The lowest dynamic payload type (96-127) `media` does not use yet.
fn free_payload_type(media: &MediaDescription) -> Option<u8> {
    (96..=127u8).find(|pt| !media.formats.iter().any(|f| f.parse::<u8>().ok() == Some(*pt)))
}

/// Appends to an audio offer the codecs of `preferences` it lacks, so that a callee without
/// any of the caller's codecs can still answer (and the call is transcoded). Adds a
/// telephone-event at each added codec's clock rate when the section has none at that rate. Does nothing unless the section is enabled RTP audio with at least one codec the
/// engine can decode. Returns true when it added something.
pub fn widen_offer(media: &mut MediaDescription, preferences: &[CodecKind]) -> bool {
    if media.media != MediaType::Audio || media.is_disabled() || !media.proto.is_rtp() {
        return false;
    }
    let present: Vec<CodecKind> = supported_formats(media).into_iter().map(|f| f.codec).collect();
    if present.is_empty() {
        return false;
    }
    let mut added = Vec::new();
    for &kind in preferences.iter().filter(|k| !present.contains(k)) {
        let payload_type = match kind.static_payload_type() {
            Some(pt) if !media.formats.iter().any(|f| f == &pt.to_string()) => pt,
            _ => match free_payload_type(media) {
                Some(pt) => pt,
                None => break,
            },
        };
        push_format(media, kind, payload_type, None);
        added.push(kind.rtp_clock_rate());
    }
    // Events at each added codec's clock (RFC 4733 §2.1: the audio's clock), unless present.
    added.sort_unstable();
    added.dedup();
    for clock_rate in added.iter().copied() {
        if telephone_events(media).iter().any(|e| e.clock_rate == clock_rate) {
            continue;
        }
        let Some(pt) = free_payload_type(media) else { break };
        media.formats.push(pt.to_string());
        media.attributes.push(Attribute::value("rtpmap", format!("{pt} telephone-event/{clock_rate}")));
        media.attributes.push(Attribute::value("fmtp", format!("{pt} 0-16")));
    }
    !added.is_empty()
}

/// The fmtp the engine writes for a codec it offers or answers: Opus with in-band FEC.
fn our_fmtp(kind: CodecKind) -> Option<&'static str> {
    match kind {
        CodecKind::Opus => Some("useinbandfec=1;maxplaybackrate=48000"),
        _ => None,
    }
}

fn push_format(media: &mut MediaDescription, kind: CodecKind, payload_type: u8, fmtp: Option<&str>) {
    media.formats.push(payload_type.to_string());
    if kind.static_payload_type() != Some(payload_type) || kind == CodecKind::G722 {
        let codec = Codec {
            payload_type,
            name: kind.encoding_name().to_owned(),
            clock_rate: kind.rtp_clock_rate(),
            channels: kind.rtpmap_channels().map(|c| c as u8),
        };
        media.attributes.push(codec.to_rtpmap());
    }
    if let Some(fmtp) = fmtp.or(our_fmtp(kind)) {
        media.attributes.push(Attribute::value("fmtp", format!("{payload_type} {fmtp}")));
    }
}

/// What the answerer chose for a stream: its first audio format, and whether the offerer had
/// offered that format (relay it untouched) or the B2BUA added it (transcode). `None` when the
/// answer has no format the engine knows and none of the offer's (the stream cannot carry
/// audio through us).
pub fn answered_format(offer: &MediaDescription, answer: &MediaDescription) -> Option<(Negotiated, bool)> {
    let offered = offer.codecs();
    let first = answer.codecs().into_iter().find(|c| !c.is_auxiliary())?;
    let in_offer = offered.iter().any(|c| c.same_format(&first));
    let kind = kind_of(&first)?;
    let audio =
        PayloadFormat { codec: kind, payload_type: first.payload_type, fmtp: fmtp_of(answer, first.payload_type) };
    let telephone_event = telephone_event(answer, kind.rtp_clock_rate());
    Some((Negotiated { audio, telephone_event }, in_offer))
}

/// The format the engine answers an offerer with when transcoding: the offer's first codec
/// the engine supports, in the offerer's order of preference, and its telephone-event.
pub fn choose_for_offerer(offer: &MediaDescription) -> Option<Negotiated> {
    let audio = supported_formats(offer).into_iter().next()?;
    let telephone_event = telephone_event(offer, audio.codec.rtp_clock_rate());
    Some(Negotiated { audio, telephone_event })
}

/// Removes from an answer the formats its offer did not list (those the B2BUA added toward
/// the answerer), with their `rtpmap` and `fmtp` lines: an answer to the offerer may only
/// name formats of its offer (RFC 3264 §6.1).
pub fn retain_offered(answer: &mut MediaDescription, offer: &MediaDescription) {
    let offered = offer.codecs();
    let removed: Vec<String> = answer
        .codecs()
        .into_iter()
        .filter(|codec| !offered.iter().any(|o| o.same_format(codec)))
        .map(|codec| codec.payload_type.to_string())
        .collect();
    if removed.is_empty() {
        return;
    }
    answer.formats.retain(|f| !removed.contains(f));
    answer.attributes.retain(|a| {
        let names_removed = a
            .value
            .as_deref()
            .and_then(|v| v.split_whitespace().next())
            .is_some_and(|pt| removed.iter().any(|r| r == pt));
        !(matches!(a.name.as_str(), "rtpmap" | "fmtp") && names_removed)
    });
}

/// Holds a section to one leg's negotiated formats: its `m=` formats, `rtpmap` and `fmtp`
/// lines become the negotiated codec's (with the engine's own fmtp) and telephone-event's;
/// every other attribute stays. `ptime` is set to 20 ms, the engine's frame.
pub fn restrict(media: &mut MediaDescription, negotiated: &Negotiated) {
    media.formats.clear();
    // The sources (`ssrc`, RFC 5576) are the engine's own once it transcodes.
    media.attributes.retain(|a| {
        !matches!(a.name.as_str(), "rtpmap" | "fmtp" | "ptime" | "maxptime" | "ssrc" | "ssrc-group" | "msid")
    });
    let audio = &negotiated.audio;
    push_format(media, audio.codec, audio.payload_type, None);
    if let Some(event) = negotiated.telephone_event {
        media.formats.push(event.payload_type.to_string());
        media
            .attributes
            .push(Attribute::value("rtpmap", format!("{} telephone-event/{}", event.payload_type, event.clock_rate)));
        media.attributes.push(Attribute::value("fmtp", format!("{} 0-16", event.payload_type)));
    }
    media.attributes.push(Attribute::value("ptime", "20"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::SessionDescription;

    fn section(m: &str) -> MediaDescription {
        let sdp = format!("v=0\r\no=a 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n{m}");
        SessionDescription::parse(sdp.as_bytes()).unwrap().media.remove(0)
    }

    #[test]
    fn widening_adds_missing_codecs_with_free_payload_types() {
        let mut pcmu = section("m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n");
        assert!(widen_offer(&mut pcmu, &CodecKind::ALL));
        // Opus came with events at its own clock; the 8 kHz ones were there already.
        assert_eq!(pcmu.formats, ["0", "101", "96", "9", "8", "97"]);
        assert_eq!(pcmu.rtpmap(97).map(|c| (c.name, c.clock_rate)), Some(("telephone-event".into(), 48_000)));
        let kinds: Vec<CodecKind> = supported_formats(&pcmu).iter().map(|f| f.codec).collect();
        assert_eq!(kinds, [CodecKind::Pcmu, CodecKind::Opus, CodecKind::G722, CodecKind::Pcma]);
        assert_eq!(pcmu.fmtp("96").unwrap().get("useinbandfec"), Some("1"));
        assert_eq!(pcmu.codecs().iter().filter(|c| c.is_auxiliary()).count(), 2);

        // Nothing to decode (G.729 only), video, or a disabled stream: left alone.
        let mut g729 = section("m=audio 4000 RTP/AVP 18\r\n");
        assert!(!widen_offer(&mut g729, &CodecKind::ALL));
        let mut video = section("m=video 4000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n");
        assert!(!widen_offer(&mut video, &CodecKind::ALL));
        let mut off = section("m=audio 0 RTP/AVP 0\r\n");
        assert!(!widen_offer(&mut off, &CodecKind::ALL));
    }

    #[test]
    fn answer_with_an_offered_codec_is_relayed() {
        let offer = section("m=audio 4000 RTP/AVP 0 8\r\n");
        let answer = section("m=audio 5000 RTP/AVP 8\r\n");
        let (negotiated, relayed) = answered_format(&offer, &answer).unwrap();
        assert!(relayed);
        assert_eq!(negotiated.audio.codec, CodecKind::Pcma);
        assert_eq!(negotiated.telephone_event, None);
        // Only auxiliary formats: nothing to carry.
        assert!(
            answered_format(&offer, &section("m=audio 5000 RTP/AVP 101\r\na=rtpmap:101 telephone-event/8000\r\n"))
                .is_none()
        );
    }

    #[test]
    fn restricting_keeps_other_attributes() {
        let mut media = section(
            "m=audio 4000 RTP/AVP 96 0 101\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 stereo=1\r\n\
             a=rtpmap:101 telephone-event/48000\r\na=sendrecv\r\na=ptime:40\r\n",
        );
        let chosen = choose_for_offerer(&media).unwrap();
        assert_eq!(chosen.audio.codec, CodecKind::Opus);
        assert_eq!(chosen.telephone_event, Some(EventFormat { payload_type: 101, clock_rate: 48_000 }));
        restrict(&mut media, &chosen);
        assert_eq!(media.formats, ["96", "101"]);
        assert_eq!(media.ptime(), Some(20));
        assert!(media.has_attribute("sendrecv"));
        assert_eq!(media.fmtp("96").unwrap().get("stereo"), None);
    }

    #[test]
    fn answers_lose_formats_the_offerer_never_offered() {
        let offer = section("m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n");
        let mut answer = section(
            "m=audio 5000 RTP/AVP 0 8 96 101\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n",
        );
        retain_offered(&mut answer, &offer);
        assert_eq!(answer.formats, ["0", "101"]);
        assert!(answer.rtpmap(96).is_none() && answer.fmtp("96").is_none() && answer.fmtp("101").is_some());
    }

    #[test]
    fn opus_parameters_become_encoder_settings() {
        let format = PayloadFormat {
            codec: CodecKind::Opus,
            payload_type: 96,
            fmtp: Some("maxplaybackrate=16000; useinbandfec=0;usedtx=1;maxaveragebitrate=20000".into()),
        };
        let params = format.encoder_params();
        assert_eq!(
            (params.max_playback_rate, params.fec, params.dtx, params.bitrate),
            (16_000, false, true, Some(20_000))
        );
    }
}
