//! `RtpPacket::parse` on arbitrary bytes: never panics; the parts it finds (CSRCs, extension,
//! payload, padding) tile the packet exactly, and writing the parsed fields back with
//! `RtpHeader::write` gives the same bytes (the writer zeroes padding before its count byte, so
//! only those bytes may differ), which parse to the same fields.
//!
//! The same bytes, read as a stream of 10-byte headers (sequence number, timestamp, arrival
//! time), feed the reception statistics a receiver keeps from what peers send (RFC 3550 §A.1,
//! §A.3, §A.8): never a panic, and the figures of each report stay within their fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sambung_media::rtp::{FIXED_HEADER_LEN, ReceptionStats, RtpHeader, RtpPacket};

fuzz_target!(|data: &[u8]| {
    statistics(data);
    let Ok(packet) = RtpPacket::parse(data) else { return };
    let csrcs: Vec<u32> = packet.csrcs().collect();
    let extension = packet.extension();
    let payload = packet.payload();
    let header_len = FIXED_HEADER_LEN + 4 * csrcs.len() + extension.map_or(0, |e| 4 + e.data.len());
    assert_eq!(header_len + payload.len() + packet.padding_len(), data.len(), "parts do not tile the packet");
    assert_eq!(packet.as_bytes(), data);
    assert_eq!(packet.has_padding(), data[0] & 0x20 != 0);
    if packet.has_padding() {
        assert_eq!(packet.padding_len(), usize::from(data[data.len() - 1]));
    } else {
        assert_eq!(packet.padding_len(), 0);
    }
    if let Some(extension) = extension {
        assert_eq!(extension.data.len() % 4, 0);
        let _ = extension.form();
    }

    let header = RtpHeader {
        marker: packet.marker(),
        payload_type: packet.payload_type(),
        sequence: packet.sequence(),
        timestamp: packet.timestamp(),
        ssrc: packet.ssrc(),
        csrcs: &csrcs,
        extension,
        padding: u8::try_from(packet.padding_len()).expect("a padding count is one byte"),
    };
    assert_eq!(header.header_len(), header_len);
    let mut out = vec![0u8; data.len()];
    let len = header.write(payload, &mut out).unwrap_or_else(|e| panic!("cannot write back a parsed packet: {e}"));
    assert_eq!(len, data.len());
    let unpadded = data.len() - packet.padding_len();
    assert_eq!(out[..unpadded], data[..unpadded], "written header or payload differs");
    assert_eq!(out[len - 1], data[len - 1]);
    let again = RtpPacket::parse(&out).unwrap_or_else(|e| panic!("written packet does not parse: {e}"));
    assert_eq!(
        (again.marker(), again.payload_type(), again.sequence(), again.timestamp(), again.ssrc()),
        (packet.marker(), packet.payload_type(), packet.sequence(), packet.timestamp(), packet.ssrc())
    );
    assert!(again.csrcs().eq(csrcs.iter().copied()));
    assert_eq!(again.extension(), extension);
    assert_eq!(again.payload(), payload);
    assert_eq!(again.padding_len(), packet.padding_len());
});

fn statistics(data: &[u8]) {
    let mut stats = ReceptionStats::new();
    let mut counted = 0u64;
    for record in data.chunks_exact(10) {
        let sequence = u16::from_be_bytes([record[0], record[1]]);
        let timestamp = u32::from_be_bytes([record[2], record[3], record[4], record[5]]);
        let arrival = u32::from_be_bytes([record[6], record[7], record[8], record[9]]);
        if let Some(extended) = stats.on_header(sequence, timestamp, arrival) {
            counted += 1;
            assert_eq!(extended as u16, sequence, "the extended number ends in the sequence number");
        }
        if record[0] & 1 == 1 {
            let report = stats.report();
            assert!((-0x80_0000..=0x7F_FFFF).contains(&report.cumulative_lost));
            assert_eq!(report.jitter, stats.jitter());
        }
    }
    assert!(stats.sequence().received() <= counted);
}
