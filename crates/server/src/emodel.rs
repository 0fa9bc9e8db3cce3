//! A call's listening quality estimated from what the relay measured, with the E-model of
//! ITU-T G.107 in its default conditions (no echo, quiet rooms): only the delay impairment `Id`
//! and the effective equipment impairment `Ie,eff` vary. The codec is taken as G.711 with packet
//! loss concealment (`Ie` 0, `Bpl` 25.1, ITU-T G.113 Appendix I); the one-way delay as half the
//! measured round trip (when RTCP gave one), a jitter buffer of twice the jitter, and 20 ms of
//! packetisation. The figure is an estimate for comparing calls, not a listening test.

/// `Ro - Is` in the default conditions (G.107 Table 3).
const R_DEFAULT: f64 = 93.2;
/// G.711 with packet loss concealment (G.113 Appendix I).
const IE: f64 = 0.0;
const BPL: f64 = 25.1;

/// The transmission rating `R` for a loss percentage and a one-way delay in milliseconds
/// (random loss: `BurstR` 1).
pub fn rating(loss_percent: f64, delay_ms: f64) -> f64 {
    let d = delay_ms.max(0.0);
    let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
    let ppl = loss_percent.clamp(0.0, 100.0);
    let ie_eff = IE + (95.0 - IE) * ppl / (ppl + BPL);
    R_DEFAULT - id - ie_eff
}

/// MOS (conversational quality, 1 to 4.5) from `R` (G.107 Annex B).
pub fn mos_of(r: f64) -> f64 {
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7.0e-6
    }
}

/// The estimated MOS of audio that arrived with `loss_percent` lost and `jitter_ms` of jitter,
/// over a path with round trip `rtt_ms` when known; rounded to two decimals.
pub fn mos(loss_percent: f64, jitter_ms: f64, rtt_ms: Option<f64>) -> f64 {
    let delay = rtt_ms.unwrap_or(0.0) / 2.0 + 2.0 * jitter_ms + 20.0;
    (mos_of(rating(loss_percent, delay)) * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_points_of_the_model() {
        // No loss, little delay: G.711's ceiling, about 4.4.
        assert_eq!(mos(0.0, 0.0, None), 4.4);
        // R 93.2 (no impairment at all) gives 4.41, the usual G.711 figure.
        assert!((mos_of(93.2) - 4.41).abs() < 0.005);
        // R thresholds of G.109: 70 is about MOS 3.6, 50 about 2.6.
        assert!((mos_of(70.0) - 3.60).abs() < 0.01, "{}", mos_of(70.0));
        assert!((mos_of(50.0) - 2.58).abs() < 0.01, "{}", mos_of(50.0));
        // Loss and delay each lower it, steadily.
        assert!(mos(1.0, 5.0, Some(40.0)) < mos(0.0, 5.0, Some(40.0)));
        assert!(mos(5.0, 5.0, Some(40.0)) < mos(1.0, 5.0, Some(40.0)));
        assert!(mos(0.0, 5.0, Some(600.0)) < mos(0.0, 5.0, Some(40.0)));
        // Everything lost: R about 16.8, the bottom of the scale.
        assert_eq!(mos(100.0, 0.0, None), 1.16);
        assert_eq!(mos_of(-5.0), 1.0);
    }
}
