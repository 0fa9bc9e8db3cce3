use super::*;

fn block(ssrc: u32) -> ReportBlock {
    ReportBlock {
        ssrc,
        fraction_lost: 64,
        cumulative_lost: -3,
        extended_highest_seq: 0x0001_0005,
        jitter: 42,
        last_sr: 0xB705_2000,
        delay_since_last_sr: 0x0005_4000,
    }
}

#[test]
fn round_trip_time_matches_the_rfc_example() {
    // RFC 3550 §6.4.1, figure 2: A = 0xb710:8000, LSR = 0xb705:2000, DLSR = 0x0005:4000,
    // so the round trip is 0x0006:2000 (6.125 s).
    let arrival = 0xB710_8000u64 << 16;
    assert_eq!(round_trip_time(arrival, &block(1)), Some(0x0006_2000));
    assert_eq!(round_trip_time(arrival, &ReportBlock { last_sr: 0, ..block(1) }), None);
    assert_eq!(round_trip_time(0xB705_0000u64 << 16, &block(1)), None, "negative");
    assert_eq!(delay_since_last_sr(0xB705_2000u64 << 16, 0xB70A_6000u64 << 16), 0x0005_4000);
}

#[test]
fn parses_a_hand_built_sender_report() {
    #[rustfmt::skip]
    let bytes = [
        0x81, 200, 0, 12,              // V=2, RC=1, SR, 13 words
        0, 0, 0, 1,                    // SSRC
        0xB7, 0x10, 0x80, 0, 0, 0, 0, 0, // NTP
        0, 0, 0x03, 0x20,              // RTP timestamp 800
        0, 0, 0, 5, 0, 0, 0x03, 0x20,  // 5 packets, 800 octets
        0, 0, 0, 2, 0x40, 0xFF, 0xFF, 0xFD, // block for SSRC 2: 1/4 lost, cumulative −3
        0, 1, 0, 5, 0, 0, 0, 42, 0xB7, 0x05, 0x20, 0, 0, 5, 0x40, 0,
    ];
    let packets: Vec<_> = Compound::new(&bytes).unwrap().collect::<Result<_, _>>().unwrap();
    let [RtcpPacket::SenderReport(sr)] = packets[..] else { panic!("{packets:?}") };
    assert_eq!(sr.ssrc, 1);
    assert_eq!(
        sr.info,
        SenderInfo { ntp_timestamp: 0xB710_8000 << 32, rtp_timestamp: 800, packet_count: 5, octet_count: 800 }
    );
    assert_eq!(sr.reports.iter().collect::<Vec<_>>(), vec![block(2)]);
}

#[test]
fn writes_and_reads_a_compound_packet() {
    let mut buf = [0u8; 512];
    let mut w = RtcpWriter::new(&mut buf);
    let info = SenderInfo { ntp_timestamp: 7 << 32, rtp_timestamp: 160, packet_count: 1, octet_count: 160 };
    w.sender_report(9, &info, &[block(2), block(3)]).unwrap();
    w.receiver_report(9, &[]).unwrap();
    w.sdes_cname(9, b"bob@192.0.2.1").unwrap();
    w.bye(&[9, 10], Some(b"hangup")).unwrap();
    w.bye(&[11], None).unwrap();
    let len = w.finish();
    assert_eq!(len % 4, 0);
    let packets: Vec<_> = Compound::new(&buf[..len]).unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(packets.len(), 5);
    let RtcpPacket::SenderReport(sr) = packets[0] else { panic!() };
    assert_eq!((sr.ssrc, sr.info, sr.reports.iter().collect::<Vec<_>>()), (9, info, vec![block(2), block(3)]));
    let RtcpPacket::ReceiverReport(rr) = packets[1] else { panic!() };
    assert!(rr.reports.is_empty());
    let RtcpPacket::SourceDescription(sdes) = packets[2] else { panic!() };
    let chunks: Vec<_> = sdes.chunks().collect();
    assert_eq!((chunks.len(), chunks[0].ssrc, chunks[0].cname()), (1, 9, Some(&b"bob@192.0.2.1"[..])));
    let RtcpPacket::Bye(bye) = packets[3] else { panic!() };
    assert_eq!((bye.sources().collect::<Vec<_>>(), bye.reason), (vec![9, 10], Some(&b"hangup"[..])));
    let RtcpPacket::Bye(bye) = packets[4] else { panic!() };
    assert_eq!((bye.sources().collect::<Vec<_>>(), bye.reason), (vec![11], None));
}

#[test]
fn skips_unknown_types_and_honours_padding() {
    // An RR, then an APP packet (204) with 4 bytes of padding at the end of the compound.
    let bytes = [0x80, 201, 0, 1, 0, 0, 0, 5, 0xA1, 204, 0, 3, 0, 0, 0, 5, b'n', b'a', b'm', b'e', 0, 0, 0, 4];
    let packets: Vec<_> = Compound::new(&bytes).unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(packets[1], RtcpPacket::Unknown { packet_type: 204, count: 1, body: &bytes[12..20] });
}

#[test]
fn rejects_bad_framing() {
    assert_eq!(Compound::new(&[0x80, 201, 0]).err(), Some(RtcpError::TooShort(3)));
    assert_eq!(Compound::new(&[0x40, 201, 0, 0]).err(), Some(RtcpError::Version(1)));
    assert_eq!(Compound::new(&[0x80, 201, 0, 1]).err(), Some(RtcpError::Length { length: 1, available: 4 }));
    // Padding bit on a packet that is not the last.
    let padded_first = [0xA0, 201, 0, 1, 0, 0, 0, 4, 0x80, 201, 0, 1, 0, 0, 0, 5];
    assert_eq!(Compound::new(&padded_first).err(), Some(RtcpError::Padding));
    // RR claiming one block but carrying none.
    let mut it = Compound::new(&[0x81, 201, 0, 1, 0, 0, 0, 5]).unwrap();
    assert_eq!(it.next(), Some(Err(RtcpError::Truncated(RR))));
    assert_eq!(it.next(), None);
    // SDES chunk without its terminating null.
    let mut it = Compound::new(&[0x81, 202, 0, 2, 0, 0, 0, 5, 1, 2, b'a', b'b']).unwrap();
    assert_eq!(it.next(), Some(Err(RtcpError::Sdes)));
}

#[test]
fn writer_checks_limits() {
    let mut small = [0u8; 8];
    let mut w = RtcpWriter::new(&mut small);
    assert_eq!(w.receiver_report(1, &[block(2)]), Err(RtcpWriteError::BufferTooSmall { needed: 32 }));
    let mut buf = [0u8; 2048];
    let mut w = RtcpWriter::new(&mut buf);
    assert_eq!(w.receiver_report(1, &[block(2); 32]), Err(RtcpWriteError::TooMany));
    assert_eq!(w.sdes_cname(1, &[b'x'; 256]), Err(RtcpWriteError::TooLong));
    assert_eq!(w.finish(), 0);
}

#[test]
fn report_block_from_reception_stats() {
    let mut stats = crate::rtp::ReceptionStats::new();
    for seq in [1u16, 2, 3, 5] {
        stats.on_header(seq, u32::from(seq) * 160, u32::from(seq) * 160);
    }
    let b = ReportBlock::from_reception(7, stats.report(), 0, 0);
    assert_eq!((b.ssrc, b.cumulative_lost, b.extended_highest_seq, b.fraction_lost), (7, 1, 5, 64));
}
