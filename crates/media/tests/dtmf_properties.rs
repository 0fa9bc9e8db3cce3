//! Property tests for RFC 4733 DTMF: payloads round-trip, the receiver never panics, and any
//! key press sent through a lossy, duplicating link is reported exactly once.

use proptest::prelude::*;
use sambung_media::dtmf::{DtmfReceiver, DtmfSender, TelephoneEvent};

proptest! {
    #[test]
    fn payload_round_trips(event: u8, end: bool, volume in 0u8..64, duration: u16) {
        let e = TelephoneEvent { event, end, volume, duration };
        prop_assert_eq!(TelephoneEvent::parse(&e.to_bytes()), Ok(e));
    }

    #[test]
    fn receiver_never_panics(
        packets in proptest::collection::vec(
            (any::<u32>(), any::<bool>(), proptest::collection::vec(any::<u8>(), 0..8)),
            0..60,
        ),
    ) {
        let mut r = DtmfReceiver::new();
        for (timestamp, marker, payload) in &packets {
            let _ = r.on_packet(*timestamp, *marker, payload);
            while r.poll_event().is_some() {}
        }
        r.flush();
    }

    #[test]
    fn a_press_is_reported_once_through_loss_and_duplication(
        key in proptest::sample::select(b"0123456789*#ABCD".to_vec()),
        timestamp: u32,
        duration_ms in 0u32..3000,
        // Per packet: 0 = lost, 1 = delivered, 2 = delivered twice.
        fate in proptest::collection::vec(0u8..3, 70),
    ) {
        let key = char::from(key);
        let packets: Vec<_> = DtmfSender::new(key, timestamp, duration_ms, 10).unwrap().collect();
        prop_assume!(packets.iter().zip(&fate).any(|(_, f)| *f > 0));
        let mut r = DtmfReceiver::new();
        let mut got = Vec::new();
        for (p, f) in packets.iter().zip(&fate) {
            for _ in 0..*f {
                r.on_packet(p.timestamp, p.marker, &p.payload).unwrap();
                got.extend(std::iter::from_fn(|| r.poll_event()));
            }
        }
        r.flush();
        got.extend(std::iter::from_fn(|| r.poll_event()));
        prop_assert_eq!(got.len(), 1, "{:?}", got);
        prop_assert_eq!((got[0].key, got[0].timestamp), (key, timestamp));
        let end_delivered = packets.iter().zip(&fate).any(|(p, f)| *f > 0 && p.payload[1] & 0x80 != 0);
        prop_assert_eq!(got[0].ended, end_delivered);
        if end_delivered {
            prop_assert_eq!(u32::from(got[0].duration), duration_ms * 8);
        }
    }
}
