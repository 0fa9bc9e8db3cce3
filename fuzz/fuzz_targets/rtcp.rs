//! `rtcp::Compound` on arbitrary bytes: never panics. Once the framing is accepted, iterating
//! yields only body errors (never a framing one) and stops after the first; every field of
//! every packet kind the crate reads (SR, RR, SDES, BYE) can be read. Each SR, RR and BYE
//! written back with `RtcpWriter` parses to the same values, and so does an SDES carrying one
//! CNAME, the only one the writer makes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sambung_media::rtcp::{
    Compound, ReportBlock, RtcpError, RtcpPacket, RtcpWriter, delay_since_last_sr, round_trip_time,
};

fuzz_target!(|data: &[u8]| {
    let Ok(compound) = Compound::new(data) else { return };
    let mut errors = 0;
    for packet in compound {
        assert_eq!(errors, 0, "the iteration goes on after an error");
        match packet {
            Ok(packet) => check(&packet),
            Err(e) => {
                assert!(
                    matches!(e, RtcpError::Padding | RtcpError::Truncated(_) | RtcpError::Sdes),
                    "framing error {e:?} after the framing was accepted"
                );
                errors += 1;
            }
        }
    }
});

fn check(packet: &RtcpPacket<'_>) {
    let mut buf = [0u8; 2048];
    match packet {
        RtcpPacket::SenderReport(sr) => {
            let blocks: Vec<ReportBlock> = sr.reports.iter().collect();
            assert_eq!(blocks.len(), sr.reports.len());
            for block in &blocks {
                assert!((-0x80_0000..=0x7F_FFFF).contains(&block.cumulative_lost));
                let _ = round_trip_time(sr.info.ntp_timestamp, block);
            }
            let _ = delay_since_last_sr(sr.info.ntp_timestamp, sr.info.ntp_timestamp.wrapping_add(1 << 32));
            let mut w = RtcpWriter::new(&mut buf);
            w.sender_report(sr.ssrc, &sr.info, &blocks).expect("a parsed SR can be written");
            let len = w.finish();
            match only_packet(&buf[..len]) {
                RtcpPacket::SenderReport(again) => {
                    assert_eq!((again.ssrc, again.info), (sr.ssrc, sr.info));
                    assert!(again.reports.iter().eq(blocks.iter().copied()));
                }
                other => panic!("an SR was written back as {other:?}"),
            }
        }
        RtcpPacket::ReceiverReport(rr) => {
            let blocks: Vec<ReportBlock> = rr.reports.iter().collect();
            assert_eq!(blocks.len(), rr.reports.len());
            let mut w = RtcpWriter::new(&mut buf);
            w.receiver_report(rr.ssrc, &blocks).expect("a parsed RR can be written");
            let len = w.finish();
            match only_packet(&buf[..len]) {
                RtcpPacket::ReceiverReport(again) => {
                    assert_eq!(again.ssrc, rr.ssrc);
                    assert!(again.reports.iter().eq(blocks.iter().copied()));
                }
                other => panic!("an RR was written back as {other:?}"),
            }
        }
        RtcpPacket::SourceDescription(sdes) => {
            let chunks: Vec<_> = sdes.chunks().collect();
            for chunk in &chunks {
                assert!(chunk.items().all(|item| item.kind != 0));
                let _ = chunk.cname();
            }
            // The writer makes one chunk with one item, the CNAME.
            if let [chunk] = chunks[..]
                && let [item] = chunk.items().collect::<Vec<_>>()[..]
                && item.kind == sambung_media::rtcp::SDES_CNAME
            {
                let mut w = RtcpWriter::new(&mut buf);
                w.sdes_cname(chunk.ssrc, item.value).expect("a parsed CNAME can be written");
                let len = w.finish();
                match only_packet(&buf[..len]) {
                    RtcpPacket::SourceDescription(again) => {
                        let again: Vec<_> = again.chunks().collect();
                        assert_eq!(again.len(), 1);
                        assert_eq!(again[0].ssrc, chunk.ssrc);
                        assert_eq!(again[0].cname(), Some(item.value));
                        assert_eq!(again[0].items().count(), 1);
                    }
                    other => panic!("an SDES was written back as {other:?}"),
                }
            }
        }
        RtcpPacket::Bye(bye) => {
            let sources: Vec<u32> = bye.sources().collect();
            let mut w = RtcpWriter::new(&mut buf);
            w.bye(&sources, bye.reason).expect("a parsed BYE can be written");
            let len = w.finish();
            match only_packet(&buf[..len]) {
                RtcpPacket::Bye(again) => {
                    assert!(again.sources().eq(sources.iter().copied()));
                    assert_eq!(again.reason, bye.reason);
                }
                other => panic!("a BYE was written back as {other:?}"),
            }
        }
        RtcpPacket::Unknown { body, .. } => {
            let _ = body.len();
        }
    }
}

/// The single packet of a compound packet the writer made.
fn only_packet(bytes: &[u8]) -> RtcpPacket<'_> {
    let mut packets = Compound::new(bytes).unwrap_or_else(|e| panic!("written RTCP does not frame: {e}"));
    let packet = packets.next().expect("one packet").unwrap_or_else(|e| panic!("written RTCP does not parse: {e}"));
    assert!(packets.next().is_none(), "more than one packet written");
    packet
}
