//! Property tests for G.711: re-encoding a decoded sample is stable, and the quantisation
//! error stays within half a step of the sample's segment (plus clipping at full scale).

use proptest::prelude::*;
use sambung_media::g711::{alaw_decode, alaw_encode, ulaw_decode, ulaw_encode};

proptest! {
    #[test]
    fn encoding_is_idempotent(sample: i16) {
        let u = ulaw_encode(sample);
        prop_assert_eq!(ulaw_encode(ulaw_decode(u)), if u == 0x7F { 0xFF } else { u });
        let a = alaw_encode(sample);
        prop_assert_eq!(alaw_encode(alaw_decode(a)), a);
    }
}

/// Over every 16-bit sample, the error stays within a step of the sample's segment (steps
/// double per segment: mu-law from 8, A-law from 16, up to 1024).
#[test]
fn error_is_bounded_by_the_segment_step() {
    for sample in i16::MIN..=i16::MAX {
        let s = i32::from(sample);
        let bound = |step_min: i32| (s.abs() / 16 + step_min).min(1024);
        let u_err = (i32::from(ulaw_decode(ulaw_encode(sample))) - s).abs();
        let a_err = (i32::from(alaw_decode(alaw_encode(sample))) - s).abs();
        assert!(u_err <= bound(8), "mu-law {s} -> error {u_err}");
        assert!(a_err <= bound(16), "A-law {s} -> error {a_err}");
    }
}
