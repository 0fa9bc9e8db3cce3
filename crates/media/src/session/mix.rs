//! A conference on one stream: each member's audio decoded (an RTP leg's) or taken as it is
//! (an application's), resampled to 48 kHz and mixed ([`crate::mixer`]); each member hears
//! everyone else, encoded in its own format as a source of its own.

use std::collections::VecDeque;
use std::time::Instant;

use super::rng::SplitMix64;
use super::{APP_STREAM, Leg, LegId, Outbox, SessionEvent, push_event};
use crate::endpoint::{AudioReceiver, AudioSender, FRAME_MS};
use crate::jitter::JitterConfig;
use crate::mixer::{self, Mixer, ParticipantId};
use crate::negotiate::Negotiated;
use crate::resample::Resampler;
use crate::rtp::RtpPacket;

#[derive(Debug)]
pub(super) struct MixStream {
    mixer: Mixer,
    members: Vec<Member>,
    /// One frame at 48 kHz, and one at a codec's rate.
    up: Vec<i16>,
    down: Vec<i16>,
}

#[derive(Debug)]
struct Member {
    leg: LegId,
    id: ParticipantId,
    /// `None` for an application leg, whose own state has its resamplers and frames.
    rtp: Option<RtpMember>,
}

/// The codec side of an RTP leg in a mix.
#[derive(Debug)]
pub(super) struct RtpMember {
    format: Negotiated,
    /// Its jitter buffer is [`JitterConfig::latency_tolerant`] when the mix fed an application
    /// as the member joined.
    receiver: AudioReceiver,
    sender: AudioSender,
    to_mix: Resampler,
    from_mix: Resampler,
}

impl RtpMember {
    fn new(format: &Negotiated, tolerant: bool, rng: &mut SplitMix64) -> Option<RtpMember> {
        let codec = format.audio.codec;
        let (ssrc, start) = (rng.next_u32(), rng.next_u64());
        let jitter = if tolerant {
            JitterConfig::latency_tolerant(codec.rtp_clock_rate())
        } else {
            JitterConfig::new(codec.rtp_clock_rate())
        };
        Some(RtpMember {
            format: format.clone(),
            receiver: AudioReceiver::with_jitter(&format.audio, jitter).ok()?,
            sender: AudioSender::new(
                &format.audio,
                &format.audio.encoder_params(),
                ssrc,
                (start >> 32) as u16,
                start as u32,
            )
            .ok()?,
            to_mix: Resampler::new(codec.sample_rate(), mixer::SAMPLE_RATE).ok()?,
            from_mix: Resampler::new(mixer::SAMPLE_RATE, codec.sample_rate()).ok()?,
        })
    }

    /// Takes a packet the leg sent (decrypted).
    pub(super) fn push(&mut self, now: Instant, packet: &RtpPacket<'_>) {
        self.receiver.push(now, packet);
    }
}

impl MixStream {
    /// The codec side of `leg`, if it is an RTP member.
    pub(super) fn member_mut(&mut self, leg: LegId) -> Option<&mut RtpMember> {
        self.members.iter_mut().find(|m| m.leg == leg)?.rtp.as_mut()
    }
}

/// The mix of `stream` for the legs of a [`super::Router::Mix`]: RTP legs with a format for
/// the stream, and application legs on [`APP_STREAM`]. Members of `old` whose leg and format
/// are the same are kept. `None` when nobody takes part.
pub(super) fn rebuild(
    old: Option<Box<MixStream>>,
    legs_in_mix: &[LegId],
    legs: &[Leg],
    stream: usize,
    rng: &mut SplitMix64,
) -> Option<Box<MixStream>> {
    enum Want<'a> {
        Rtp(&'a Negotiated),
        App,
    }
    let wanted: Vec<(LegId, Want<'_>)> = legs_in_mix
        .iter()
        .filter_map(|&id| {
            let leg = legs.iter().find(|l| l.id == id)?;
            if leg.is_rtp() {
                Some((id, Want::Rtp(leg.streams.get(stream)?.config.format.as_ref()?)))
            } else {
                (stream == APP_STREAM).then_some((id, Want::App))
            }
        })
        .collect();
    if wanted.is_empty() {
        return None;
    }
    // What an application hears may come late (JitterConfig::latency_tolerant); people in a
    // mix of their own hear each other with the real-time defaults. A member keeps the buffer it
    // was made with when an application joins or leaves later (a notice played into a recorded
    // call): making it anew would drop what it holds, a gap in what everyone hears.
    let tolerant = wanted.iter().any(|(_, want)| matches!(want, Want::App));
    let mut mix = old.unwrap_or_else(|| {
        Box::new(MixStream {
            mixer: Mixer::new(),
            members: Vec::new(),
            up: Vec::with_capacity(mixer::FRAME),
            down: Vec::with_capacity(mixer::FRAME),
        })
    });
    let mut old_members = std::mem::take(&mut mix.members);
    for (leg, want) in wanted {
        let kept = old_members.iter().position(|m| {
            m.leg == leg
                && match (&want, &m.rtp) {
                    (Want::Rtp(format), Some(rtp)) => rtp.format == **format,
                    (Want::App, None) => true,
                    _ => false,
                }
        });
        if let Some(position) = kept {
            mix.members.push(old_members.swap_remove(position));
            continue;
        }
        let rtp = match want {
            Want::Rtp(format) => match RtpMember::new(format, tolerant, rng) {
                Some(member) => Some(member),
                None => continue,
            },
            Want::App => None,
        };
        let Ok(id) = mix.mixer.add() else { continue };
        mix.members.push(Member { leg, id, rtp });
    }
    for gone in old_members {
        let _ = mix.mixer.remove(gone.id);
    }
    Some(mix)
}

/// One tick of the mix of `stream`: everyone's frame in, the mix, everyone's share out.
pub(super) fn tick(
    mix: &mut MixStream,
    now: Instant,
    stream: usize,
    legs: &mut [Leg],
    out: &mut Outbox<'_>,
    events: &mut VecDeque<SessionEvent>,
    tap: bool,
) {
    let MixStream { mixer, members, up, down } = mix;
    let mut tapped = Vec::new();
    for member in members.iter_mut() {
        up.clear();
        if tap && member.rtp.is_some() {
            tapped.push((member.leg, vec![0i16; mixer::FRAME]));
        }
        match &mut member.rtp {
            Some(rtp) => {
                let frame = rtp.format.audio.codec.frame_samples(FRAME_MS);
                let waiting = rtp.receiver.fill(now, frame);
                if waiting == 0 {
                    continue;
                }
                let take = waiting.min(frame);
                rtp.to_mix.process(&rtp.receiver.pending()[..take], up);
                rtp.receiver.consume(take);
            }
            None => {
                let Some(app) = legs.iter_mut().find(|l| l.id == member.leg).and_then(|l| l.app.as_mut()) else {
                    continue;
                };
                let frame = app.next_frame();
                app.to_mix.process(&frame, up);
                app.done(frame);
            }
        }
        up.resize(mixer::FRAME, 0);
        if let Some((_, frame)) = tapped.iter_mut().find(|(leg, _)| *leg == member.leg) {
            frame.copy_from_slice(up);
        }
        let _ = mixer.push(member.id, up);
    }
    if tap && !tapped.is_empty() {
        push_event(events, SessionEvent::Tapped { stream, frames: tapped });
    }
    mixer.mix();
    for member in members.iter_mut() {
        let Ok(heard) = mixer.output(member.id) else { continue };
        let Some(leg) = legs.iter_mut().find(|l| l.id == member.leg) else { continue };
        match &mut member.rtp {
            Some(rtp) => {
                down.clear();
                rtp.from_mix.process(heard, down);
                down.resize(rtp.format.audio.codec.frame_samples(FRAME_MS), 0);
                if let Ok(Some(packet)) = rtp.sender.encode(down) {
                    out.send(leg, stream, packet);
                }
            }
            None => {
                let Some(app) = leg.app.as_mut() else { continue };
                let mut samples = Vec::with_capacity(app.frame);
                app.from_mix.process(heard, &mut samples);
                samples.resize(app.frame, 0);
                push_event(events, SessionEvent::AppAudio { leg: member.leg, samples });
            }
        }
    }
}
