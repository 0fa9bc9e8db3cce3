//! The two sub-band ADPCM coders of ITU-T G.722 (11/88) §3.3-§3.6 and §4.2-§4.3, in the
//! Recommendation's fixed-point arithmetic and with its block names.
//!
//! Each band quantises the difference between its sample and an adaptive prediction; the
//! decoder rebuilds the same prediction from the codes alone. The encoder quantises with
//! [`LowBand::quantise`] / [`HighBand::quantise`] and then runs the very same update as the
//! decoder, so the two cannot drift apart.

/// QUANTL: decision levels of the 6-bit quantiser, in units of the scale factor / 4096.
const Q6: [i32; 30] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940, 1023, 1121, 1219, 1339,
    1458, 1612, 1765, 1980, 2195, 2557, 2919,
];
/// QUANTL: the code of each quantiser interval (index 1 to 30), for a negative difference.
const ILN: [u8; 31] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4,
];
/// QUANTL: the same for a positive (or zero) difference.
const ILP: [u8; 31] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34,
    33, 32,
];
/// INVQBL: the 6-bit inverse quantiser (64 kbit/s, mode 1), scaled by 2^15.
const QM6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232, -9360, -8576,
    -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776, -2400, -2032, -1688, -1360, -1040,
    -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280, 11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456,
    4944, 4464, 4008, 3576, 3168, 2776, 2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
/// INVQAL: the 4-bit inverse quantiser that drives the lower band's adaptation.
const QM4: [i32; 16] =
    [0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584, 1200, 0];
/// LOGSCL: the 4-bit code's magnitude class (RIL to IL4) ...
const RL42: [usize; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
/// ... and the log scale factor multiplier of each class.
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
/// SCALEL/SCALEH: 2^(i/32) for the fraction of the log scale factor, scaled by 2^11.
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834, 2896, 2960, 3025,
    3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];
/// QUANTH: the higher band's single decision level.
const Q2: i32 = 564;
/// QUANTH: codes for the inner and outer interval, negative and positive.
const IHN: [u8; 3] = [0, 1, 0];
const IHP: [u8; 3] = [0, 3, 2];
/// INVQAH: the 2-bit inverse quantiser.
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];
/// LOGSCH: magnitude class of the 2-bit code, and its log scale factor multiplier.
const RH2: [usize; 4] = [2, 1, 2, 1];
const WH: [i32; 3] = [0, -214, 798];

/// The range of a 16-bit register, where the Recommendation limits a result.
fn limit(x: i32) -> i32 {
    x.clamp(-32768, 32767)
}

/// The sign bit of a 16-bit value: -1 when negative, 0 otherwise (zero counts as positive).
fn sign(x: i32) -> i32 {
    if x < 0 { -1 } else { 0 }
}

/// Block 4 of either band (§3.6): the adaptive predictor with two poles and six zeros.
#[derive(Debug, Clone, Default)]
struct Predictor {
    /// SL/SH: the signal estimate for the next sample.
    s: i32,
    /// SZL/SZH: the zero section's part of it.
    sz: i32,
    /// RLT1, RLT2: the last two reconstructed signals.
    r: [i32; 2],
    /// PLT1, PLT2: the last two partially reconstructed signals.
    p: [i32; 2],
    /// AL1, AL2: the pole coefficients.
    a: [i32; 2],
    /// DLT1..DLT6: the last six quantised differences.
    d: [i32; 6],
    /// BL1..BL6: the zero coefficients.
    b: [i32; 6],
}

impl Predictor {
    /// Takes the quantised difference `dlt` of the current sample and computes the estimate
    /// for the next one.
    fn update(&mut self, dlt: i32) {
        // RECONS and PARREC.
        let r = limit(self.s + dlt);
        let p = limit(self.sz + dlt);

        // UPPOL2: the second pole.
        let sg0 = sign(p);
        let sg1 = sign(self.p[0]);
        let sg2 = sign(self.p[1]);
        let wd1 = limit(self.a[0] * 4);
        let wd2 = if sg0 == sg1 { -wd1 } else { wd1 }.min(32767);
        let wd3 = if sg0 == sg2 { 128 } else { -128 } + (wd2 >> 7) + ((self.a[1] * 32512) >> 15);
        let a2 = wd3.clamp(-12288, 12288);

        // UPPOL1: the first pole, kept inside the stability triangle.
        let wd1 = if sg0 == sg1 { 192 } else { -192 };
        let a1 = limit(wd1 + ((self.a[0] * 32640) >> 15));
        let bound = limit(15360 - a2);
        let a1 = a1.clamp(-bound, bound);

        // UPZERO: the six zeros, by sign correlation with the past differences.
        let step = if dlt == 0 { 0 } else { 128 };
        let sg0 = sign(dlt);
        for (b, &d) in self.b.iter_mut().zip(&self.d) {
            let wd2 = if sign(d) == sg0 { step } else { -step };
            *b = limit(wd2 + ((*b * 32640) >> 15));
        }

        // DELAYA.
        self.d.copy_within(0..5, 1);
        self.d[0] = dlt;
        self.r = [r, self.r[0]];
        self.p = [p, self.p[0]];
        self.a = [a1, a2];

        // FILTEP: the pole section's prediction.
        let sp = limit(((self.a[0] * limit(self.r[0] * 2)) >> 15) + ((self.a[1] * limit(self.r[1] * 2)) >> 15));
        // FILTEZ: the zero section's prediction.
        let mut sz = 0;
        for (&b, &d) in self.b.iter().zip(&self.d).rev() {
            sz = limit(sz + ((b * limit(d * 2)) >> 15));
        }
        self.sz = sz;
        // PREDIC.
        self.s = limit(sp + sz);
    }
}

/// SCALEL and SCALEH: the linear scale factor from the logarithmic one, `shift` telling the
/// band (8 for the lower, 10 for the higher).
fn scale(nb: i32, shift: i32) -> i32 {
    let wd1 = ILB[((nb >> 6) & 31) as usize];
    let wd2 = shift - (nb >> 11);
    let wd3 = if wd2 < 0 { wd1 << -wd2 } else { wd1 >> wd2 };
    wd3 << 2
}

/// The lower sub-band (0-4 kHz): 6-bit ADPCM, of which 4 bits drive the adaptation.
#[derive(Debug, Clone)]
pub(super) struct LowBand {
    predictor: Predictor,
    /// NBL: the logarithmic scale factor.
    nb: i32,
    /// DETL: the linear scale factor.
    det: i32,
}

impl Default for LowBand {
    fn default() -> LowBand {
        LowBand { predictor: Predictor::default(), nb: 0, det: 32 }
    }
}

impl LowBand {
    /// SUBTRA and QUANTL: the 6-bit code of the lower band's sample `xl`.
    pub(super) fn quantise(&self, xl: i32) -> u8 {
        let el = limit(xl - self.predictor.s);
        let wd = if el >= 0 { el } else { -(el + 1) };
        let mut mil = 1;
        while mil < 30 && wd >= (Q6[mil] * self.det) >> 12 {
            mil += 1;
        }
        if el < 0 { ILN[mil] } else { ILP[mil] }
    }

    /// Decodes the 6-bit code `il` (INVQBL, RECONS, LIMIT) and adapts to it (INVQAL, LOGSCL,
    /// SCALEL, block 4). Returns the reconstructed lower band sample.
    pub(super) fn decode(&mut self, il: u8) -> i32 {
        let il = usize::from(il & 63);
        let dl = (self.det * QM6[il]) >> 15;
        let rl = (self.predictor.s + dl).clamp(-16384, 16383);

        let ril = il >> 2;
        let dlt = (self.det * QM4[ril]) >> 15;
        self.nb = (((self.nb * 127) >> 7) + WL[RL42[ril]]).clamp(0, 18432);
        self.det = scale(self.nb, 8);
        self.predictor.update(dlt);
        rl
    }
}

/// The higher sub-band (4-8 kHz): 2-bit ADPCM.
#[derive(Debug, Clone)]
pub(super) struct HighBand {
    predictor: Predictor,
    /// NBH: the logarithmic scale factor.
    nb: i32,
    /// DETH: the linear scale factor.
    det: i32,
}

impl Default for HighBand {
    fn default() -> HighBand {
        HighBand { predictor: Predictor::default(), nb: 0, det: 8 }
    }
}

impl HighBand {
    /// SUBTRA and QUANTH: the 2-bit code of the higher band's sample `xh`.
    pub(super) fn quantise(&self, xh: i32) -> u8 {
        let eh = limit(xh - self.predictor.s);
        let wd = if eh >= 0 { eh } else { -(eh + 1) };
        let mih = if wd >= (Q2 * self.det) >> 12 { 2 } else { 1 };
        if eh < 0 { IHN[mih] } else { IHP[mih] }
    }

    /// Decodes the 2-bit code `ih` (INVQAH, RECONS, LIMIT) and adapts to it (LOGSCH, SCALEH,
    /// block 4). Returns the reconstructed higher band sample.
    pub(super) fn decode(&mut self, ih: u8) -> i32 {
        let ih = usize::from(ih & 3);
        let dh = (self.det * QM2[ih]) >> 15;
        let rh = (self.predictor.s + dh).clamp(-16384, 16383);
        self.nb = (((self.nb * 127) >> 7) + WH[RH2[ih]]).clamp(0, 22528);
        self.det = scale(self.nb, 10);
        self.predictor.update(dh);
        rh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_factor_range() {
        // At rest the lower band's step is its minimum, 32; at the top of NBL's range, 16384.
        assert_eq!(scale(0, 8), 32);
        assert_eq!(scale(18431, 8), 4008 << 2);
        assert_eq!(scale(18432, 8), 16384);
        assert_eq!(scale(0, 10), 8);
        assert_eq!(scale(22528, 10), 16384);
    }

    #[test]
    fn quantiser_codes_cover_both_signs() {
        let band = LowBand::default();
        // With the smallest step (32) the first three decision levels round to 0, so zero
        // falls in the fourth interval, and large values in the outermost.
        assert_eq!(band.quantise(0), 58);
        assert_eq!(band.quantise(-1), 30);
        assert_eq!(band.quantise(10_000), 32);
        assert_eq!(band.quantise(-10_000), 4);
        let high = HighBand::default();
        assert_eq!(high.quantise(0), 3);
        assert_eq!(high.quantise(-1), 1);
        assert_eq!(high.quantise(100), 2);
        assert_eq!(high.quantise(-100), 0);
    }

    #[test]
    fn bands_track_a_steady_signal() {
        let mut low = LowBand::default();
        let mut last = 0;
        for n in 0..400 {
            let x = (4000.0 * (n as f64 * 0.3).sin()) as i32;
            let code = low.quantise(x);
            last = low.decode(code);
            if n > 300 {
                assert!((last - x).abs() < 400, "sample {n}: {last} for {x}");
            }
        }
        assert_ne!(last, 0);
    }

    #[test]
    fn predictor_stays_stable_under_hostile_codes() {
        // Any code sequence, however wild, keeps every value in its register's range.
        let mut low = LowBand::default();
        let mut high = HighBand::default();
        let mut state = 0x9E37_79B9_u32;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let rl = low.decode(state as u8);
            let rh = high.decode((state >> 8) as u8);
            assert!((-16384..=16383).contains(&rl) && (-16384..=16383).contains(&rh));
            for p in [&low.predictor, &high.predictor] {
                assert!(p.a[1].abs() <= 12288 && p.a[0].abs() <= 15360 - p.a[1]);
            }
        }
    }
}
