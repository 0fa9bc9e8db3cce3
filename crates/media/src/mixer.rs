//! Conference mixing: N participants at 48 kHz in 20 ms frames, each hearing everyone else.
//!
//! Every tick the engine [`Mixer::push`]es the frame each participant sent (decoded and resampled
//! to 48 kHz), calls [`Mixer::mix`] once, and reads what each participant hears with
//! [`Mixer::output`] (to encode and send to them) and what the whole conference sounds like with
//! [`Mixer::mix_all`] (to record it).
//!
//! The work is O(N) per tick: all contributions are summed once in `i32`, and each participant's
//! output is that sum minus their own contribution (an "N−1 mix"). Participants who contribute
//! nothing this tick (no frame pushed, muted, an all-zero frame, or not among the loudest
//! speakers) share one output buffer: what the others hear is the whole mix. Overflow is soft
//! clipped: samples up to 3/4 of full scale pass unchanged, louder ones bend smoothly (a
//! quadratic knee) into full scale, which they reach at 1.25 × full scale, so several loud
//! talkers never wrap around and do not clip with a hard edge. Nothing is
//! allocated per tick; each participant's buffers are allocated once, when they join.
//!
//! With many participants, [`Mixer::set_max_speakers`] mixes only the K loudest frames of each
//! tick (by mean absolute level after gain): background noise from dozens of open microphones
//! stays out of the mix, and the sum stays small. The choice is made per tick, without
//! hysteresis, so a participant at the edge of the K can come and go from one frame to the next.
//!
//! Decoding and encoding each participant's audio costs more than mixing it; the mixer only adds.
//!
//! ```
//! use sambung_media::mixer::{FRAME, Gain, Mixer};
//!
//! let mut mixer = Mixer::new();
//! let alice = mixer.add().unwrap();
//! let bob = mixer.add().unwrap();
//! let carol = mixer.add().unwrap();
//! mixer.set_gain(carol, Gain::from_db(-6.0)).unwrap();
//!
//! // One 20 ms tick.
//! mixer.push(alice, &[1000; FRAME]).unwrap();
//! mixer.push(bob, &[200; FRAME]).unwrap();
//! mixer.push(carol, &[4000; FRAME]).unwrap();
//! mixer.mix();
//! assert_eq!(mixer.output(alice).unwrap()[0], 200 + 2004); // Bob, and Carol 6 dB down
//! assert_eq!(mixer.output(carol).unwrap()[0], 1200); // Alice and Bob, not herself
//! assert_eq!(mixer.mix_all()[0], 3204); // everyone, for the recording
//! ```

/// Samples per frame: 20 ms at 48 kHz.
pub const FRAME: usize = 960;
/// The mixer's sample rate.
pub const SAMPLE_RATE: u32 = 48_000;
/// Most participants in one mixer. With every gain at its maximum, this many full-scale
/// contributions still sum without overflowing `i32`.
pub const MAX_PARTICIPANTS: usize = 4096;

/// Gains are fixed point with this many fractional bits.
const GAIN_SHIFT: u32 = 12;
const UNITY: i32 = 1 << GAIN_SHIFT;
/// Up to here samples pass unchanged; above, [`soft_clip`] bends them towards full scale, which
/// they reach at `KNEE + 2 × ROOM` (1.25 × full scale).
const KNEE: i32 = i16::MAX as i32 - ROOM;
const ROOM_BITS: u32 = 13;
const ROOM: i32 = 1 << ROOM_BITS;

/// A participant of a [`Mixer`]; stays unique after the participant leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParticipantId {
    index: u32,
    generation: u32,
}

/// A linear gain between 0 (silence) and 8 (+18 dB), in steps of 1/4096.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Gain(i32);

impl Gain {
    /// No change.
    pub const UNITY: Gain = Gain(UNITY);
    /// Silence.
    pub const SILENT: Gain = Gain(0);
    /// The largest gain: ×8, about +18 dB.
    pub const MAX: Gain = Gain(8 * UNITY);

    /// A gain in decibels (20·log10 of the amplitude ratio), clamped to [`Gain::MAX`]; −∞ (or
    /// anything below about −72 dB) is silence, NaN is unity.
    pub fn from_db(db: f32) -> Gain {
        if db.is_nan() {
            return Gain::UNITY;
        }
        Gain::from_linear(10f32.powf(db / 20.0))
    }

    /// A linear amplitude factor, clamped to 0..=8; NaN is unity.
    pub fn from_linear(factor: f32) -> Gain {
        if factor.is_nan() {
            return Gain::UNITY;
        }
        Gain((factor.clamp(0.0, 8.0) * UNITY as f32).round() as i32)
    }

    /// The amplitude factor.
    pub fn linear(self) -> f32 {
        self.0 as f32 / UNITY as f32
    }

    /// The gain in decibels (−∞ for silence).
    pub fn db(self) -> f32 {
        20.0 * self.linear().log10()
    }
}

impl Default for Gain {
    fn default() -> Gain {
        Gain::UNITY
    }
}

/// Errors of a [`Mixer`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MixerError {
    #[error("no participant {0:?} in this mixer")]
    UnknownParticipant(ParticipantId),
    #[error("a frame is {expected} samples, not {got}")]
    FrameLength { expected: usize, got: usize },
    #[error("the mixer is full ({0} participants)")]
    Full(usize),
}

#[derive(Debug)]
struct Participant {
    generation: u32,
    present: bool,
    muted: bool,
    gain: Gain,
    output_gain: Gain,
    /// A frame was pushed this tick (and it is not silent, nor muted).
    pushed: bool,
    /// In this tick's mix.
    speaking: bool,
    /// Sum of absolute sample values of this tick's contribution: the loudness ranking. At most
    /// 960 × 2^18 (full scale at the largest gain), so it fits.
    level: u32,
    /// This tick's frame after `gain`.
    contribution: Box<[i32]>,
    /// What this participant hears, unless `shared` says it is the whole mix.
    output: Box<[i16]>,
    shared: bool,
}

/// A conference mixer. See the [module docs](self).
#[derive(Debug)]
pub struct Mixer {
    participants: Vec<Participant>,
    free: Vec<u32>,
    count: usize,
    max_speakers: Option<usize>,
    sum: Box<[i32]>,
    all: Box<[i16]>,
    /// Loudness ranking of one tick: `(level, index)`; capacity grows when participants join.
    ranking: Vec<(u32, u32)>,
}

impl Default for Mixer {
    fn default() -> Mixer {
        Mixer::new()
    }
}

impl Mixer {
    /// An empty mixer that mixes every participant.
    pub fn new() -> Mixer {
        Mixer {
            participants: Vec::new(),
            free: Vec::new(),
            count: 0,
            max_speakers: None,
            sum: vec![0; FRAME].into_boxed_slice(),
            all: vec![0; FRAME].into_boxed_slice(),
            ranking: Vec::new(),
        }
    }

    /// A new participant: unmuted, unity gains, hearing silence until the next [`Self::mix`].
    pub fn add(&mut self) -> Result<ParticipantId, MixerError> {
        if self.count >= MAX_PARTICIPANTS {
            return Err(MixerError::Full(MAX_PARTICIPANTS));
        }
        self.count += 1;
        self.ranking.reserve(self.count.saturating_sub(self.ranking.len()));
        if let Some(index) = self.free.pop() {
            let participant = &mut self.participants[index as usize];
            participant.generation = participant.generation.wrapping_add(1);
            participant.present = true;
            participant.muted = false;
            participant.gain = Gain::UNITY;
            participant.output_gain = Gain::UNITY;
            participant.pushed = false;
            participant.speaking = false;
            participant.output.fill(0);
            participant.shared = false;
            return Ok(ParticipantId { index, generation: participant.generation });
        }
        let index = self.participants.len() as u32;
        self.participants.push(Participant {
            generation: 0,
            present: true,
            muted: false,
            gain: Gain::UNITY,
            output_gain: Gain::UNITY,
            pushed: false,
            speaking: false,
            level: 0,
            contribution: vec![0; FRAME].into_boxed_slice(),
            output: vec![0; FRAME].into_boxed_slice(),
            shared: false,
        });
        Ok(ParticipantId { index, generation: 0 })
    }

    /// Takes a participant out; their id is not valid any more.
    pub fn remove(&mut self, id: ParticipantId) -> Result<(), MixerError> {
        self.get_mut(id)?.present = false;
        self.free.push(id.index);
        self.count -= 1;
        Ok(())
    }

    /// Mutes or unmutes a participant: while muted, nobody hears them (they still hear the others).
    pub fn set_muted(&mut self, id: ParticipantId, muted: bool) -> Result<(), MixerError> {
        self.get_mut(id)?.muted = muted;
        Ok(())
    }

    /// The gain applied to what a participant says, before it is mixed.
    pub fn set_gain(&mut self, id: ParticipantId, gain: Gain) -> Result<(), MixerError> {
        self.get_mut(id)?.gain = gain;
        Ok(())
    }

    /// The gain applied to what a participant hears.
    pub fn set_output_gain(&mut self, id: ParticipantId, gain: Gain) -> Result<(), MixerError> {
        self.get_mut(id)?.output_gain = gain;
        Ok(())
    }

    /// Mixes only the `k` loudest frames of each tick (`None`: everyone). See the module docs.
    pub fn set_max_speakers(&mut self, k: Option<usize>) {
        self.max_speakers = k;
    }

    /// Whether a participant is muted.
    pub fn is_muted(&self, id: ParticipantId) -> Result<bool, MixerError> {
        Ok(self.get(id)?.muted)
    }

    /// Participants in the mixer.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when nobody is in the mixer.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether `id` is in the mixer.
    pub fn contains(&self, id: ParticipantId) -> bool {
        self.get(id).is_ok()
    }

    /// The frame (exactly [`FRAME`] samples at 48 kHz) that a participant sent this tick. A
    /// participant without a frame this tick contributes nothing.
    pub fn push(&mut self, id: ParticipantId, frame: &[i16]) -> Result<(), MixerError> {
        if frame.len() != FRAME {
            return Err(MixerError::FrameLength { expected: FRAME, got: frame.len() });
        }
        let participant = self.get_mut(id)?;
        if participant.muted || participant.gain == Gain::SILENT {
            participant.pushed = false;
            return Ok(());
        }
        let gain = participant.gain.0;
        let mut level = 0u32;
        if gain == UNITY {
            for (c, &s) in participant.contribution.iter_mut().zip(frame) {
                *c = i32::from(s);
                level += u32::from(s.unsigned_abs());
            }
        } else {
            for (c, &s) in participant.contribution.iter_mut().zip(frame) {
                *c = (i32::from(s) * gain) >> GAIN_SHIFT;
                level += c.unsigned_abs();
            }
        }
        participant.level = level;
        participant.pushed = level > 0;
        Ok(())
    }

    /// Mixes this tick: afterwards [`Self::output`] and [`Self::mix_all`] give its result, and
    /// every participant needs a new [`Self::push`] for the next tick.
    pub fn mix(&mut self) {
        let Mixer { participants, max_speakers, sum, all, ranking, .. } = self;
        for participant in participants.iter_mut() {
            participant.speaking = participant.present && participant.pushed;
        }
        if let Some(k) = *max_speakers {
            ranking.clear();
            ranking
                .extend(participants.iter().enumerate().filter(|(_, p)| p.speaking).map(|(i, p)| (p.level, i as u32)));
            if ranking.len() > k {
                // The loudest k first; ties go to the participant who joined first.
                ranking.select_nth_unstable_by(k, |a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
                for &(_, index) in &ranking[k..] {
                    participants[index as usize].speaking = false;
                }
            }
        }

        sum.fill(0);
        for participant in participants.iter().filter(|p| p.speaking) {
            for (s, &c) in sum.iter_mut().zip(participant.contribution.iter()) {
                *s += c;
            }
        }
        render(all, sum, None, Gain::UNITY);

        for participant in participants.iter_mut().filter(|p| p.present) {
            if participant.speaking {
                render(&mut participant.output, sum, Some(&participant.contribution), participant.output_gain);
                participant.shared = false;
            } else if participant.output_gain == Gain::UNITY {
                participant.shared = true;
            } else {
                render(&mut participant.output, sum, None, participant.output_gain);
                participant.shared = false;
            }
            participant.pushed = false;
        }
    }

    /// What a participant hears after the last [`Self::mix`]: everyone else ([`FRAME`] samples).
    pub fn output(&self, id: ParticipantId) -> Result<&[i16], MixerError> {
        let participant = self.get(id)?;
        Ok(if participant.shared { &self.all } else { &participant.output })
    }

    /// Everyone together after the last [`Self::mix`], for recording the conference.
    pub fn mix_all(&self) -> &[i16] {
        &self.all
    }

    /// The participants heard in the last [`Self::mix`].
    pub fn speakers(&self) -> impl Iterator<Item = ParticipantId> + '_ {
        self.participants
            .iter()
            .enumerate()
            .filter(|(_, p)| p.present && p.speaking)
            .map(|(index, p)| ParticipantId { index: index as u32, generation: p.generation })
    }

    fn get(&self, id: ParticipantId) -> Result<&Participant, MixerError> {
        self.participants
            .get(id.index as usize)
            .filter(|p| p.present && p.generation == id.generation)
            .ok_or(MixerError::UnknownParticipant(id))
    }

    fn get_mut(&mut self, id: ParticipantId) -> Result<&mut Participant, MixerError> {
        self.participants
            .get_mut(id.index as usize)
            .filter(|p| p.present && p.generation == id.generation)
            .ok_or(MixerError::UnknownParticipant(id))
    }
}

/// Samples rendered at a time: a chunk with no sample past the knee takes the plain path.
const CHUNK: usize = 64;

/// Writes `(sum − own) × gain` to `out` as 16-bit samples, soft clipped. Chunk by chunk, the
/// values are formed and their range taken in loops that the compiler vectorises; a chunk that
/// stays within the knee (nearly all of them) is then just narrowed, one with a loud peak goes
/// through [`soft_clip`].
fn render(out: &mut [i16], sum: &[i32], own: Option<&[i32]>, gain: Gain) {
    let g = gain.linear();
    let mut values = [0i32; CHUNK];
    for start in (0..out.len()).step_by(CHUNK) {
        let end = (start + CHUNK).min(out.len());
        let values = &mut values[..end - start];
        match own {
            Some(own) => {
                for ((v, &s), &c) in values.iter_mut().zip(&sum[start..end]).zip(&own[start..end]) {
                    *v = s - c;
                }
            }
            None => values.copy_from_slice(&sum[start..end]),
        }
        if gain != Gain::UNITY {
            // |v| ≤ 2^30 and g ≤ 8: the product may pass i32; `as` saturates, and it is clipped anyway.
            for v in values.iter_mut() {
                *v = (*v as f32 * g) as i32;
            }
        }
        let (low, high) = values.iter().fold((0, 0), |(low, high), &v| (v.min(low), v.max(high)));
        let out = &mut out[start..end];
        if low >= -KNEE && high <= KNEE {
            for (o, &v) in out.iter_mut().zip(values.iter()) {
                *o = v as i16;
            }
        } else {
            for (o, &v) in out.iter_mut().zip(values.iter()) {
                *o = soft_clip(v);
            }
        }
    }
}

/// Identity up to [`KNEE`]; above it a quadratic knee, `KNEE + x − x²/(4·ROOM)` for the excess
/// `x`, which leaves the identity with slope 1 and reaches full scale with slope 0 at
/// `x = 2·ROOM`; beyond that, full scale. No branches, no division.
#[inline]
fn soft_clip(v: i32) -> i16 {
    let magnitude = v.unsigned_abs().min((KNEE + 2 * ROOM) as u32) as i32;
    let excess = (magnitude - KNEE).max(0);
    let bent = magnitude - ((excess * excess) >> (ROOM_BITS + 2));
    (if v < 0 { -bent } else { bent }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(f: impl Fn(usize) -> i16) -> Vec<i16> {
        (0..FRAME).map(f).collect()
    }

    fn tone(period: usize, amplitude: f32) -> Vec<i16> {
        frame(|n| ((n as f32 * std::f32::consts::TAU / period as f32).sin() * amplitude) as i16)
    }

    #[test]
    fn three_participants_each_hear_exactly_the_other_two() {
        let mut mixer = Mixer::new();
        let ids = [mixer.add().unwrap(), mixer.add().unwrap(), mixer.add().unwrap()];
        let frames = [tone(48, 3000.0), tone(30, 2000.0), frame(|n| (n as i16 % 100) * 10 - 500)];
        for (id, f) in ids.iter().zip(&frames) {
            mixer.push(*id, f).unwrap();
        }
        mixer.mix();
        for (me, id) in ids.iter().enumerate() {
            let heard = mixer.output(*id).unwrap();
            for n in 0..FRAME {
                let expected: i32 = (0..3).filter(|&o| o != me).map(|o| i32::from(frames[o][n])).sum();
                assert_eq!(i32::from(heard[n]), expected, "participant {me}, sample {n}");
            }
        }
        let all: Vec<i32> = (0..FRAME).map(|n| frames.iter().map(|f| i32::from(f[n])).sum()).collect();
        assert!(mixer.mix_all().iter().zip(&all).all(|(&a, &b)| i32::from(a) == b));
        assert_eq!(mixer.speakers().count(), 3);
    }

    #[test]
    fn without_a_frame_a_participant_contributes_nothing() {
        let mut mixer = Mixer::new();
        let a = mixer.add().unwrap();
        let b = mixer.add().unwrap();
        let c = mixer.add().unwrap();
        mixer.push(a, &[100; FRAME]).unwrap();
        mixer.push(b, &[10; FRAME]).unwrap();
        mixer.push(c, &[1; FRAME]).unwrap();
        mixer.mix();
        // Next tick only A sends.
        mixer.push(a, &[100; FRAME]).unwrap();
        mixer.mix();
        assert_eq!(mixer.output(a).unwrap(), &[0; FRAME][..]);
        assert_eq!(mixer.output(b).unwrap(), &[100; FRAME][..]);
        assert_eq!(mixer.output(c).unwrap(), &[100; FRAME][..]);
        assert_eq!(mixer.speakers().collect::<Vec<_>>(), vec![a]);
        // A participant alone hears silence.
        let mut alone = Mixer::new();
        let only = alone.add().unwrap();
        alone.push(only, &[5000; FRAME]).unwrap();
        alone.mix();
        assert_eq!(alone.output(only).unwrap(), &[0; FRAME][..]);
        assert_eq!(alone.mix_all(), &[5000; FRAME][..]);
    }

    #[test]
    fn a_muted_participant_is_not_heard_but_hears() {
        let mut mixer = Mixer::new();
        let a = mixer.add().unwrap();
        let b = mixer.add().unwrap();
        let c = mixer.add().unwrap();
        mixer.set_muted(b, true).unwrap();
        assert!(mixer.is_muted(b).unwrap());
        for _ in 0..2 {
            mixer.push(a, &[100; FRAME]).unwrap();
            mixer.push(b, &[10; FRAME]).unwrap();
            mixer.push(c, &[1; FRAME]).unwrap();
            mixer.mix();
            assert_eq!(mixer.output(a).unwrap()[0], 1);
            assert_eq!(mixer.output(b).unwrap()[0], 101);
            assert_eq!(mixer.output(c).unwrap()[0], 100);
            assert_eq!(mixer.mix_all()[0], 101);
        }
        mixer.set_muted(b, false).unwrap();
        mixer.push(a, &[100; FRAME]).unwrap();
        mixer.push(b, &[10; FRAME]).unwrap();
        mixer.mix();
        assert_eq!(mixer.output(a).unwrap()[0], 10);
        assert_eq!(mixer.output(c).unwrap()[0], 110);
    }

    #[test]
    fn gains_apply_to_what_is_said_and_what_is_heard() {
        let mut mixer = Mixer::new();
        let a = mixer.add().unwrap();
        let b = mixer.add().unwrap();
        let c = mixer.add().unwrap();
        mixer.set_gain(a, Gain::from_db(6.0)).unwrap();
        mixer.set_gain(b, Gain::from_linear(0.5)).unwrap();
        mixer.set_output_gain(c, Gain::from_db(-6.0)).unwrap();
        mixer.push(a, &[1000; FRAME]).unwrap();
        mixer.push(b, &[-1000; FRAME]).unwrap();
        mixer.push(c, &[300; FRAME]).unwrap();
        mixer.mix();
        // +6 dB is ×1.995 (8173/4096).
        assert_eq!(mixer.output(b).unwrap()[0], 1995 + 300);
        assert_eq!(mixer.output(a).unwrap()[0], -500 + 300);
        // C hears A and B, 6 dB down.
        assert_eq!(Gain::from_db(-6.0), Gain(2053));
        assert_eq!(mixer.output(c).unwrap()[0], (((1995 - 500) * 2053) >> 12) as i16);
        // A silent listener with an output gain gets their own buffer; one without shares the mix.
        let d = mixer.add().unwrap();
        let e = mixer.add().unwrap();
        mixer.set_output_gain(d, Gain::from_linear(2.0)).unwrap();
        mixer.push(a, &[1000; FRAME]).unwrap();
        mixer.mix();
        assert_eq!(mixer.output(d).unwrap()[0], 3990);
        assert_eq!(mixer.output(e).unwrap()[0], 1995);
        assert!((Gain::from_db(6.0).db() - 6.0).abs() < 0.01);
        assert_eq!(Gain::from_db(f32::NEG_INFINITY), Gain::SILENT);
        assert_eq!(Gain::from_db(40.0), Gain::MAX);
        assert_eq!(Gain::from_linear(f32::NAN), Gain::UNITY);
    }

    #[test]
    fn overflow_is_soft_clipped_not_wrapped() {
        let mut mixer = Mixer::new();
        let ids: Vec<_> = (0..4).map(|_| mixer.add().unwrap()).collect();
        let loud = tone(96, 30_000.0);
        for id in &ids {
            mixer.push(*id, &loud).unwrap();
        }
        mixer.mix();
        let heard = mixer.output(ids[0]).unwrap();
        for n in 0..FRAME {
            let exact = 3 * i32::from(loud[n]);
            let got = i32::from(heard[n]);
            // Same sign, never above full scale, unchanged below the knee, and no louder than exact.
            assert_eq!(got.signum(), exact.signum(), "sample {n}");
            assert!(got.abs() <= exact.abs() && got.abs() <= 32_767);
            if exact.abs() <= KNEE {
                assert_eq!(got, exact);
            } else {
                assert!(got.abs() >= KNEE, "sample {n}: {exact} → {got}");
            }
        }
        // The curve is monotonic and continuous at the knee.
        let mut previous = soft_clip(0);
        for v in (0..2_000_000).step_by(97) {
            let c = soft_clip(v);
            assert!(c >= previous);
            previous = c;
        }
        assert_eq!(soft_clip(KNEE), KNEE as i16);
        assert_eq!(soft_clip(KNEE + 1), KNEE as i16 + 1);
        assert_eq!(soft_clip(KNEE + ROOM), KNEE as i16 + 3 * ROOM as i16 / 4);
        assert_eq!(soft_clip(KNEE + 2 * ROOM), i16::MAX);
        assert_eq!(soft_clip(-KNEE - 1000), -soft_clip(KNEE + 1000));
        assert_eq!(soft_clip(i32::MAX), i16::MAX);
        assert_eq!(soft_clip(i32::MIN), -i16::MAX);
    }

    #[test]
    fn participants_leave_and_join() {
        let mut mixer = Mixer::new();
        let a = mixer.add().unwrap();
        let b = mixer.add().unwrap();
        let c = mixer.add().unwrap();
        mixer.remove(b).unwrap();
        assert_eq!(mixer.len(), 2);
        assert!(!mixer.contains(b));
        assert_eq!(mixer.push(b, &[1; FRAME]), Err(MixerError::UnknownParticipant(b)));
        assert_eq!(mixer.remove(b), Err(MixerError::UnknownParticipant(b)));
        assert!(mixer.output(b).is_err());
        mixer.push(a, &[100; FRAME]).unwrap();
        mixer.push(c, &[1; FRAME]).unwrap();
        mixer.mix();
        assert_eq!(mixer.output(a).unwrap()[0], 1);
        // D takes B's place, with a fresh state; B's id stays invalid.
        let d = mixer.add().unwrap();
        assert_ne!(d, b);
        assert!(!mixer.contains(b));
        assert!(!mixer.is_muted(d).unwrap());
        assert_eq!(mixer.output(d).unwrap(), &[0; FRAME][..], "silence before the first mix");
        mixer.push(a, &[100; FRAME]).unwrap();
        mixer.push(c, &[1; FRAME]).unwrap();
        mixer.push(d, &[20; FRAME]).unwrap();
        mixer.mix();
        assert_eq!(mixer.output(a).unwrap()[0], 21);
        assert_eq!(mixer.output(d).unwrap()[0], 101);
        assert_eq!(mixer.len(), 3);
    }

    #[test]
    fn only_the_loudest_speakers_are_mixed_when_asked() {
        let mut mixer = Mixer::new();
        mixer.set_max_speakers(Some(2));
        let ids: Vec<_> = (0..5).map(|_| mixer.add().unwrap()).collect();
        let levels = [300i16, 5000, 20, 4000, 0];
        for (id, level) in ids.iter().zip(levels) {
            mixer.push(*id, &[level; FRAME]).unwrap();
        }
        mixer.mix();
        assert_eq!(mixer.speakers().collect::<Vec<_>>(), vec![ids[1], ids[3]]);
        assert_eq!(mixer.output(ids[1]).unwrap()[0], 4000);
        assert_eq!(mixer.output(ids[3]).unwrap()[0], 5000);
        for quiet in [0, 2, 4] {
            assert_eq!(mixer.output(ids[quiet]).unwrap()[0], 9000);
        }
        assert_eq!(mixer.mix_all()[0], 9000);
        mixer.set_max_speakers(None);
        for (id, level) in ids.iter().zip(levels) {
            mixer.push(*id, &[level; FRAME]).unwrap();
        }
        mixer.mix();
        assert_eq!(mixer.mix_all()[0], 9320);
    }

    #[test]
    fn bad_frames_and_a_full_mixer_are_errors() {
        let mut mixer = Mixer::new();
        let a = mixer.add().unwrap();
        assert_eq!(mixer.push(a, &[0; 160]), Err(MixerError::FrameLength { expected: FRAME, got: 160 }));
        for _ in 1..MAX_PARTICIPANTS {
            mixer.add().unwrap();
        }
        assert_eq!(mixer.add(), Err(MixerError::Full(MAX_PARTICIPANTS)));
        // The worst case sums without overflow: everyone at full scale and maximum gain.
        let ids: Vec<_> = (0..MAX_PARTICIPANTS as u32).map(|index| ParticipantId { index, generation: 0 }).collect();
        for id in &ids {
            mixer.set_gain(*id, Gain::MAX).unwrap();
            mixer.push(*id, &[i16::MIN; FRAME]).unwrap();
        }
        mixer.mix();
        assert!(mixer.mix_all().iter().all(|&s| s < -KNEE as i16));
        assert!(mixer.output(a).unwrap().iter().all(|&s| s < -KNEE as i16));
    }
}
