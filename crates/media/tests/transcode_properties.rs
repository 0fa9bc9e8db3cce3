//! Property tests of the transcoder and codec negotiation: whatever a device sends (any RTP
//! header, any payload, any order, any timing) and whatever SDP it writes, nothing panics, and
//! what the transcoder sends is well-formed RTP in the receiver's payload type.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use sambung_media::codec::CodecKind;
use sambung_media::negotiate::{
    EventFormat, Negotiated, PayloadFormat, answered_format, choose_for_offerer, restrict, retain_offered, widen_offer,
};
use sambung_media::rtp::{RtpHeader, RtpPacket};
use sambung_media::sdp::SessionDescription;
use sambung_media::transcode::Transcoder;

fn format(codec: CodecKind, payload_type: u8) -> Negotiated {
    Negotiated {
        audio: PayloadFormat { codec, payload_type, fmtp: None },
        telephone_event: Some(EventFormat { payload_type: 101, clock_rate: 8000 }),
    }
}

const KINDS: [CodecKind; 4] = [CodecKind::Pcmu, CodecKind::Pcma, CodecKind::G722, CodecKind::Opus];
const PAYLOAD_TYPES: [u8; 4] = [0, 8, 9, 96];

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn transcoder_survives_anything_a_device_sends(
        a in 0usize..4,
        b in 0usize..4,
        packets in proptest::collection::vec(
            (0u8..2, prop_oneof![Just(0u8), Just(8), Just(9), Just(96), Just(101), any::<u8>()], any::<u16>(),
             any::<u32>(), any::<bool>(), proptest::collection::vec(any::<u8>(), 0..400), 0u64..80),
            1..60,
        ),
    ) {
        let legs = [format(KINDS[a], PAYLOAD_TYPES[a]), format(KINDS[b], PAYLOAD_TYPES[b])];
        let mut transcoder = Transcoder::new([&legs[0], &legs[1]], [1, 2], 42).unwrap();
        // Any instant will do as the start of the virtual clock.
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let mut at = Duration::ZERO;
        for (from, pt, seq, timestamp, marker, payload, gap) in packets {
            at += Duration::from_millis(gap);
            let header = RtpHeader { payload_type: pt & 0x7f, sequence: seq, timestamp, marker, ssrc: 9, ..Default::default() };
            let mut bytes = vec![0; 12 + payload.len()];
            header.write(&payload, &mut bytes).unwrap();
            transcoder.push(start + at, usize::from(from), &RtpPacket::parse(&bytes).unwrap());
            transcoder.poll(start + at, &mut |to, packet| {
                let packet = RtpPacket::parse(packet).expect("well-formed RTP out");
                let expected = [legs[to].audio.payload_type, 101];
                assert!(expected.contains(&packet.payload_type()), "payload type {} toward leg {to}", packet.payload_type());
            });
        }
    }

    #[test]
    fn negotiation_never_panics(offer in "[ -~\r\n]{0,400}", answer in "[ -~\r\n]{0,400}") {
        let head = "v=0\r\no=a 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n";
        let (Ok(offer), Ok(answer)) = (
            SessionDescription::parse(format!("{head}{offer}").as_bytes()),
            SessionDescription::parse(format!("{head}{answer}").as_bytes()),
        ) else {
            return Ok(());
        };
        for (offered, answered) in offer.media.iter().zip(&answer.media) {
            let mut widened = offered.clone();
            widen_offer(&mut widened, &CodecKind::ALL);
            let _ = answered_format(&widened, answered);
            let mut trimmed = answered.clone();
            retain_offered(&mut trimmed, offered);
            if let Some(chosen) = choose_for_offerer(offered) {
                let mut held = answered.clone();
                restrict(&mut held, &chosen);
                prop_assert_eq!(held.formats.first(), Some(&chosen.audio.payload_type.to_string()));
            }
        }
    }
}
