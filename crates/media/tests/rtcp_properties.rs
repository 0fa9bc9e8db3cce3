//! Property tests for RTCP: parsing never panics, and written compound packets read back.

use proptest::prelude::*;
use sambung_media::rtcp::{Compound, ReportBlock, RtcpPacket, RtcpWriter, SenderInfo, round_trip_time};

fn report_block() -> impl Strategy<Value = ReportBlock> {
    (any::<u32>(), any::<u8>(), -0x80_0000..=0x7F_FFFFi32, any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>())
        .prop_map(|(ssrc, fraction_lost, cumulative_lost, extended_highest_seq, jitter, last_sr, dlsr)| ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost,
            extended_highest_seq,
            jitter,
            last_sr,
            delay_since_last_sr: dlsr,
        })
}

proptest! {
    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(compound) = Compound::new(&bytes) {
            for packet in compound {
                match packet {
                    Ok(RtcpPacket::SenderReport(sr)) => { sr.reports.iter().for_each(drop) }
                    Ok(RtcpPacket::ReceiverReport(rr)) => { rr.reports.iter().for_each(drop) }
                    Ok(RtcpPacket::SourceDescription(sdes)) => {
                        for chunk in sdes.chunks() {
                            let _ = (chunk.cname(), chunk.items().count());
                        }
                    }
                    Ok(RtcpPacket::Bye(bye)) => { bye.sources().for_each(drop) }
                    Ok(RtcpPacket::Unknown { .. }) | Err(_) => {}
                }
            }
        }
    }

    /// Mutated valid packets: framing is right, so bodies are what gets tested.
    #[test]
    fn parse_framed_noise_never_panics(
        packet_type in 200u8..205,
        count in 0u8..32,
        words in proptest::collection::vec(any::<[u8; 4]>(), 0..20),
    ) {
        let mut bytes = vec![0x80 | count, packet_type];
        bytes.extend_from_slice(&(words.len() as u16).to_be_bytes());
        bytes.extend(words.iter().flatten());
        let results: Vec<_> = Compound::new(&bytes).unwrap().collect();
        prop_assert_eq!(results.len(), 1);
    }

    #[test]
    fn write_then_parse_round_trips(
        ssrc: u32,
        ntp: u64,
        rtp: u32,
        blocks in proptest::collection::vec(report_block(), 0..32),
        cname in proptest::collection::vec(1u8..=255, 0..256),
        leaving in proptest::collection::vec(any::<u32>(), 0..32),
        reason in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..256)),
    ) {
        let mut buf = vec![0u8; 4096];
        let mut w = RtcpWriter::new(&mut buf);
        let info = SenderInfo { ntp_timestamp: ntp, rtp_timestamp: rtp, packet_count: 3, octet_count: 480 };
        w.sender_report(ssrc, &info, &blocks).unwrap();
        w.sdes_cname(ssrc, &cname).unwrap();
        w.bye(&leaving, reason.as_deref()).unwrap();
        let len = w.finish();
        let packets: Vec<_> = Compound::new(&buf[..len]).unwrap().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(packets.len(), 3);
        let RtcpPacket::SenderReport(sr) = packets[0] else { panic!("not an SR") };
        prop_assert_eq!((sr.ssrc, sr.info), (ssrc, info));
        prop_assert_eq!(sr.reports.iter().collect::<Vec<_>>(), blocks);
        let RtcpPacket::SourceDescription(sdes) = packets[1] else { panic!("not SDES") };
        let chunk = sdes.chunks().next().unwrap();
        prop_assert_eq!((chunk.ssrc, chunk.cname()), (ssrc, Some(&cname[..])));
        let RtcpPacket::Bye(bye) = packets[2] else { panic!("not BYE") };
        prop_assert_eq!(bye.sources().collect::<Vec<_>>(), leaving);
        prop_assert_eq!(bye.reason, reason.as_deref());
    }

    #[test]
    fn rtt_is_what_was_spent_outside(lsr in 1u32.., dlsr in 0u32..0x4000_0000, rtt in 0u32..0x4000_0000) {
        let arrival_mid = lsr.wrapping_add(dlsr).wrapping_add(rtt);
        let block = ReportBlock { last_sr: lsr, delay_since_last_sr: dlsr, ..ReportBlock::default() };
        prop_assert_eq!(round_trip_time(u64::from(arrival_mid) << 16, &block), Some(rtt));
    }
}
