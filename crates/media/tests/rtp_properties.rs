//! Property tests for RTP: parsing never panics, write → parse round-trips, and the
//! reception statistics stay consistent whatever order packets come in.

use proptest::prelude::*;
use sambung_media::rtp::{HeaderExtension, ReceptionStats, RtpHeader, RtpPacket};

proptest! {
    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(p) = RtpPacket::parse(&bytes) {
            let _ = (p.marker(), p.payload_type(), p.sequence(), p.timestamp(), p.ssrc(), p.extension());
            prop_assert_eq!(p.csrcs().count(), usize::from(bytes[0] & 0x0F));
            prop_assert!(p.payload().len() + p.padding_len() < bytes.len());
        }
    }

    #[test]
    fn write_then_parse_round_trips(
        marker: bool,
        payload_type in 0u8..128,
        sequence: u16,
        timestamp: u32,
        ssrc: u32,
        csrcs in proptest::collection::vec(any::<u32>(), 0..16),
        ext in proptest::option::of((any::<u16>(), proptest::collection::vec(any::<u8>(), 0..5))),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        padding: u8,
    ) {
        let ext_data: Option<(u16, Vec<u8>)> = ext.map(|(p, words)| (p, words.repeat(4)));
        let header = RtpHeader {
            marker,
            payload_type,
            sequence,
            timestamp,
            ssrc,
            csrcs: &csrcs,
            extension: ext_data.as_ref().map(|(profile, data)| HeaderExtension { profile: *profile, data }),
            padding,
        };
        let mut buf = vec![0u8; 2000];
        let len = header.write(&payload, &mut buf).unwrap();
        let p = RtpPacket::parse(&buf[..len]).unwrap();
        prop_assert_eq!(
            (p.marker(), p.payload_type(), p.sequence(), p.timestamp(), p.ssrc()),
            (marker, payload_type, sequence, timestamp, ssrc)
        );
        prop_assert_eq!(p.csrcs().collect::<Vec<_>>(), csrcs.clone());
        prop_assert_eq!(p.extension(), header.extension);
        prop_assert_eq!(p.payload(), &payload[..]);
        prop_assert_eq!(p.padding_len(), usize::from(padding));
        prop_assert!(header.write(&payload, &mut buf[..len - 1]).is_err());
    }

    #[test]
    fn stats_never_panic(packets in proptest::collection::vec((any::<u16>(), any::<u32>(), any::<u32>()), 0..100)) {
        let mut stats = ReceptionStats::new();
        for (seq, ts, arrival) in packets {
            stats.on_header(seq, ts, arrival);
        }
        let r = stats.report();
        prop_assert!((-0x80_0000..=0x7F_FFFF).contains(&r.cumulative_lost));
    }

    #[test]
    fn in_order_stream_with_drops_counts_losses(start: u16, keep in proptest::collection::vec(any::<bool>(), 2..500)) {
        let mut stats = ReceptionStats::new();
        // The first two packets validate the source; then some are dropped.
        stats.on_header(start, 0, 0);
        stats.on_header(start.wrapping_add(1), 0, 0);
        // RFC 3550 §A.1 starts counting (cycles included) at the packet that validates the
        // source: from `start + 1`, so a wrap between the two probation packets is no cycle.
        let base = u64::from(start.wrapping_add(1));
        let mut last = 1u64;
        let mut dropped = 0i32;
        for (i, k) in keep.iter().enumerate() {
            let n = i as u64 + 2;
            if *k {
                let ext = stats.on_header(start.wrapping_add(n as u16), 0, 0).unwrap();
                prop_assert_eq!(ext, base + n - 1);
                last = n;
            } else {
                dropped += 1;
            }
        }
        // Trailing drops are not yet known as lost.
        let trailing = keep.iter().rev().take_while(|k| !**k).count() as i32;
        let r = stats.report();
        prop_assert_eq!(r.cumulative_lost, dropped - trailing);
        prop_assert_eq!(u64::from(r.extended_highest_seq), (base + last - 1) & 0xFFFF_FFFF);
    }
}
