//! Writes seed inputs for the media and WebSocket fuzz targets into `fuzz/corpus/<target>/`:
//! RTP, RTCP, SRTP and SRTCP packets and telephone-event payloads made by `sambung-media`'s own
//! writers, session descriptions and `a=crypto` values like those of the repository's tests,
//! and masked client WebSocket frames carrying SIP. Run by `fuzz/seed.sh`:
//!
//!     cargo run --example seed_corpora -- fuzz/corpus
use std::fs;
use std::path::{Path, PathBuf};

use sambung_media::dtmf::DtmfSender;
use sambung_media::rtcp::{ReportBlock, RtcpWriter, SenderInfo};
use sambung_media::rtp::{HeaderExtension, RtpHeader};
use sambung_media::sdes::SdesCrypto;
use sambung_media::srtp::{MasterKey, SrtpContext, SrtpProfile};

/// The fuzz targets' master key (RFC 3711 Appendix B.3), so that some raw seeds authenticate.
const MASTER: [u8; 30] = [
    0xE1, 0xF9, 0x7A, 0x0D, 0x3E, 0x01, 0x8B, 0xE0, 0xD6, 0x4F, 0xA3, 0x2C, 0x06, 0xDE, 0x41, 0x39, 0x0E, 0xC6, 0x75,
    0xAD, 0x49, 0x8A, 0xFE, 0xEB, 0xB6, 0x96, 0x0B, 0x3A, 0xAB, 0xE6,
];

const RFC_KEY: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

fn main() {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "corpus".into()));
    let mut seeds = Seeds { root, count: 0 };
    let rtp = rtp_packets();
    let rtcp = rtcp_packets();
    for (i, packet) in rtp.iter().enumerate() {
        seeds.write("rtp", &format!("writer-{i}"), packet);
    }
    for (i, packet) in rtcp.iter().enumerate() {
        seeds.write("rtcp", &format!("writer-{i}"), packet);
    }
    srtp_seeds(&mut seeds, &rtp, false);
    srtp_seeds(&mut seeds, &rtcp, true);
    for (i, sdp) in sdp_bodies().iter().enumerate() {
        seeds.write("sdp", &format!("body-{i}"), sdp.as_bytes());
    }
    for (i, value) in crypto_values().iter().enumerate() {
        seeds.write("sdes_crypto", &format!("value-{i}"), value.as_bytes());
    }
    telephone_event_seeds(&mut seeds);
    websocket_seeds(&mut seeds);
    println!("wrote {} seeds under {}", seeds.count, seeds.root.display());
}

struct Seeds {
    root: PathBuf,
    count: usize,
}

impl Seeds {
    fn write(&mut self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.root.join(target);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let path: &Path = &dir.join(format!("seed-{name}"));
        fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        self.count += 1;
    }
}

fn rtp_packets() -> Vec<Vec<u8>> {
    let one_byte = [0x10, 0xAA, 0, 0]; // RFC 8285 §4.2: id 1, one byte of data, padding.
    let two_byte = [0x01, 0x02, 0xAB, 0xCD]; // RFC 8285 §4.3: id 1, two bytes of data.
    let headers = [
        // G.711 at 20 ms, start of a talkspurt.
        (
            RtpHeader {
                marker: true,
                payload_type: 0,
                sequence: 1,
                timestamp: 160,
                ssrc: 0x1234,
                ..Default::default()
            },
            160,
        ),
        (
            RtpHeader {
                payload_type: 8,
                sequence: 0xFFFF,
                timestamp: 0xFFFF_FF60,
                ssrc: 0xDEAD_BEEF,
                ..Default::default()
            },
            160,
        ),
        // Opus with a mixer's CSRCs, a one-byte extension and padding.
        (
            RtpHeader {
                payload_type: 111,
                sequence: 7,
                timestamp: 960,
                ssrc: 0x5555,
                csrcs: &[1, 2, 3],
                extension: Some(HeaderExtension { profile: 0xBEDE, data: &one_byte }),
                padding: 4,
                ..Default::default()
            },
            40,
        ),
        (
            RtpHeader {
                payload_type: 9,
                sequence: 100,
                timestamp: 16000,
                ssrc: 0x77,
                extension: Some(HeaderExtension { profile: 0x1000, data: &two_byte }),
                ..Default::default()
            },
            160,
        ),
        // A telephone-event packet and comfort noise.
        (
            RtpHeader {
                marker: true,
                payload_type: 101,
                sequence: 9,
                timestamp: 3200,
                ssrc: 0x1234,
                ..Default::default()
            },
            4,
        ),
        (
            RtpHeader {
                payload_type: 13,
                sequence: 10,
                timestamp: 3360,
                ssrc: 0x1234,
                padding: 1,
                ..Default::default()
            },
            1,
        ),
    ];
    headers
        .iter()
        .map(|(header, payload_len)| {
            let payload: Vec<u8> = (0..*payload_len).map(|i| (i * 7) as u8).collect();
            let mut buf = vec![0u8; 1500];
            let len = header.write(&payload, &mut buf).expect("a seed RTP packet");
            buf.truncate(len);
            buf
        })
        .collect()
}

fn rtcp_packets() -> Vec<Vec<u8>> {
    let block = ReportBlock {
        ssrc: 0x1234,
        fraction_lost: 12,
        cumulative_lost: -3,
        extended_highest_seq: 0x1_0010,
        jitter: 80,
        last_sr: 0x1234_5678,
        delay_since_last_sr: 0x0001_8000,
    };
    let info = SenderInfo {
        ntp_timestamp: 0xE5A1_2345_8000_0000,
        rtp_timestamp: 160_000,
        packet_count: 1000,
        octet_count: 160_000,
    };
    let mut packets = Vec::new();
    let mut write = |f: &dyn Fn(&mut RtcpWriter<'_>)| {
        let mut buf = [0u8; 1500];
        let mut w = RtcpWriter::new(&mut buf);
        f(&mut w);
        let len = w.finish();
        packets.push(buf[..len].to_vec());
    };
    write(&|w| {
        w.sender_report(0x5555, &info, &[block]).unwrap();
        w.sdes_cname(0x5555, b"alice@192.0.2.10").unwrap();
    });
    write(&|w| {
        w.receiver_report(0x1111, &[block, ReportBlock { ssrc: 0x2222, cumulative_lost: 0x7F_FFFF, ..block }]).unwrap();
        w.sdes_cname(0x1111, b"bob").unwrap();
    });
    write(&|w| {
        w.receiver_report(0x1111, &[]).unwrap();
        w.sdes_cname(0x1111, b"").unwrap();
        w.bye(&[0x1111, 0x3333], Some(b"call ended")).unwrap();
    });
    write(&|w| {
        w.sender_report(0x5555, &info, &[]).unwrap();
        w.receiver_report(0x5555, &[block]).unwrap();
        w.bye(&[0x5555], None).unwrap();
    });
    // An RR followed by an APP packet (type 204, unread) with padding, as the last packet.
    let mut buf = [0u8; 64];
    let mut w = RtcpWriter::new(&mut buf);
    w.receiver_report(0x4444, &[]).unwrap();
    let len = w.finish();
    let mut packet = buf[..len].to_vec();
    packet.extend_from_slice(&[0xA1, 204, 0, 3, 0, 0, 0x44, 0x44, b'n', b'a', b'm', b'e', 0, 0, 0, 4]);
    packets.push(packet);
    // An SDES with two chunks and several items (CNAME, NAME, TOOL).
    let mut sdes = vec![0x82, 202, 0, 9];
    sdes.extend_from_slice(&[0, 0, 0x11, 0x11, 1, 3, b'a', b'@', b'b', 2, 5, b'A', b'l', b'i', b'c', b'e', 0, 0, 0]);
    sdes.extend_from_slice(&[0, 0, 0x22, 0x22, 6, 7, b's', b'a', b'm', b'b', b'u', b'n', b'g', 0, 0, 0, 0]);
    let words = (sdes.len() / 4 - 1) as u16;
    sdes[2..4].copy_from_slice(&words.to_be_bytes());
    packets.push(sdes);
    packets
}

/// Records for the `srtp` and `srtcp` targets: `[suite][op][len][bytes]...` (see the targets).
fn srtp_seeds(seeds: &mut Seeds, packets: &[Vec<u8>], rtcp: bool) {
    let target = if rtcp { "srtcp" } else { "srtp" };
    let key = MasterKey::from_bytes(&MASTER);
    for (suite, profile) in SrtpProfile::ALL.into_iter().enumerate() {
        let mut sender = SrtpContext::new(profile, &key);
        for (i, packet) in packets.iter().enumerate() {
            let len = u8::try_from(packet.len().min(255)).unwrap();
            // Protected in place by this key, sent as received (op 0): the receiver accepts it.
            let mut protected = packet[..usize::from(len)].to_vec();
            let ok = if rtcp { sender.protect_rtcp(&mut protected) } else { sender.protect_rtp(&mut protected) };
            let mut record = vec![suite as u8];
            if ok.is_ok() && protected.len() <= 255 {
                record.extend_from_slice(&[0, protected.len() as u8]);
                record.extend_from_slice(&protected);
            }
            // Then the plain packet through the sender (op 1), tampered (op 2), as a payload (op 3).
            for op in [1u8, 2 | (i as u8) << 2, 3] {
                record.extend_from_slice(&[op, len]);
                record.extend_from_slice(&packet[..usize::from(len)]);
            }
            seeds.write(target, &format!("{}-{i}", profile.name()), &record);
        }
    }
}

fn sdp_bodies() -> Vec<String> {
    vec![
        // crates/media/src/lib.rs: a phone's offer with telephone-event.
        "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns= \r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
         m=audio 49170 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
            .into(),
        // crates/media/src/sdp/print.rs: every session-level line, three media sections.
        "v=0\r\no=jdoe 3724394400 3724394405 IN IP4 198.51.100.1\r\ns=Call to John Smith\r\ni=SDP Offer #1\r\n\
         u=http://www.jdoe.example.com/home.html\r\ne=Jane Doe <jane@jdoe.example.com>\r\np=+1 617 555-6011\r\n\
         c=IN IP4 198.51.100.1\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\nm=audio 49180 RTP/AVP 0\r\n\
         m=video 51372 RTP/AVP 99\r\nc=IN IP6 2001:db8::2\r\na=rtpmap:99 h263-1998/90000\r\n"
            .into(),
        // baresip-like: several codecs, SDES keys, rtcp, ptime, a direction.
        format!(
            "v=0\r\no=- 1838414208 3116716624 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nb=AS:64\r\nt=0 0\r\n\
             m=audio 10004 RTP/SAVP 111 9 0 8 101\r\nb=TIAS:64000\r\na=rtpmap:111 opus/48000/2\r\n\
             a=fmtp:111 stereo=1;sprop-stereo=1;useinbandfec=1\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=rtcp:10005\r\n\
             a=sendrecv\r\na=ptime:20\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}|2^20\r\n\
             a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{RFC_KEY}\r\n"
        ),
        // A WebRTC offer: ICE, DTLS, rtcp-mux, a bundle, audio and video.
        "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
         a=msid-semantic: WMS\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0 8 126\r\nc=IN IP4 0.0.0.0\r\n\
         a=rtcp:9 IN IP4 0.0.0.0\r\na=candidate:1 1 udp 2122260223 192.0.2.30 54400 typ host generation 0\r\n\
         a=candidate:2 1 udp 1686052607 203.0.113.7 54400 typ srflx raddr 192.0.2.30 rport 54400\r\n\
         a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdefghijklmn\r\na=ice-options:trickle\r\n\
         a=fingerprint:sha-256 12:34:56:78:9A:BC:DE:F0:12:34:56:78:9A:BC:DE:F0:12:34:56:78:9A:BC:DE:F0:12:34:56:78:9A:BC:DE:F0\r\n\
         a=setup:actpass\r\na=mid:0\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=sendrecv\r\n\
         a=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
         a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:126 telephone-event/8000\r\na=ssrc:1001 cname:x\r\n\
         m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=recvonly\r\na=rtcp-mux\r\n\
         a=rtpmap:96 VP8/90000\r\na=end-of-candidates\r\n"
            .into(),
        // A hold re-offer (RFC 2543 style and sendonly), a declined stream, a T.38 stream.
        "v=0\r\no=bob 7 8 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n\
         a=sendonly\r\nm=video 0 RTP/AVP 31\r\nm=image 4002 udptl t38\r\na=T38FaxVersion:0\r\n"
            .into(),
        // Bare LF line ends, lines out of order, layered multicast, repeat times, zones, keys.
        "v=0\ns=-\nt=2873397496 2873404696\nr=7d 1h 0 25h\no=- 1 1 IN IP6 2001:db8::1\nz=2882844526 -1h 2898848070 0\n\
         k=prompt\nm=video 49170/2 RTP/AVP 96\nc=IN IP4 224.2.1.1/127/2\nk=clear:x\ni=layers\na=rtpmap:96 VP8/90000\n"
            .into(),
    ]
}

fn crypto_values() -> Vec<String> {
    vec![
        format!("1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}|2^20|1:4 FEC_ORDER=FEC_SRTP"),
        format!("1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}|2^20"),
        format!("42 AES_CM_128_HMAC_SHA1_32 inline:{RFC_KEY}|1000 WSH=128 -X-NICE FEC_ORDER=FEC_SRTP"),
        format!("7 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}"),
        format!("2 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}|2^20|1:32;inline:{RFC_KEY}|2^20|2:32"),
        format!("3 AES_CM_128_HMAC_SHA1_32 inline:{RFC_KEY} KDR=1 UNENCRYPTED_SRTCP"),
        "1 AES_256_CM_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj|2^31".into(),
        SdesCrypto::new(999_999_999, SrtpProfile::Aes128CmSha1_32, &[0x42; 30]).unwrap().to_string(),
    ]
}

/// 9-byte records (timestamp, flags, payload) of whole key presses, led by a press the target
/// makes with its own sender.
fn telephone_event_seeds(seeds: &mut Seeds) {
    let presses = [('5', 16000, 120, 10), ('#', 0xFFFF_FF00, 40, 0), ('a', 0, 8191, 63)];
    for (i, (key, timestamp, duration_ms, volume)) in presses.into_iter().enumerate() {
        let mut records = vec![key as u8, 0, 200, volume];
        for packet in DtmfSender::new(key, timestamp, duration_ms, volume).unwrap() {
            records.extend_from_slice(&packet.timestamp.to_be_bytes());
            records.push(u8::from(packet.marker));
            records.extend_from_slice(&packet.payload);
        }
        seeds.write("telephone_event", &format!("press-{i}"), &records);
    }
    // A press whose end packets were lost, closed by a flush.
    let mut records = vec![];
    for packet in DtmfSender::new('9', 800, 200, 10).unwrap().take(3) {
        records.extend_from_slice(&packet.timestamp.to_be_bytes());
        records.push(u8::from(packet.marker) | 2);
        records.extend_from_slice(&packet.payload);
    }
    seeds.write("telephone_event", "lost-end", &records);
}

/// A masked client frame (RFC 6455 §5.2).
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xFA, 0x21, 0x3D];
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

fn websocket_seeds(seeds: &mut Seeds) {
    let register = b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKasudf\r\n\
From: <sip:alice@example.com>;tag=65bnmj.34asd\r\nTo: <sip:alice@example.com>\r\nCall-ID: aiuy7k9njasd\r\n\
CSeq: 1 REGISTER\r\nMax-Forwards: 70\r\nSupported: path, outbound, gruu\r\n\
Contact: <sip:alice@df7jal23ls0d.invalid;transport=ws>;expires=600\r\nContent-Length: 0\r\n\r\n";
    let (head, tail) = register.split_at(60);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("text", frame(true, 1, register)),
        ("binary", frame(true, 2, register)),
        ("fragmented", [frame(false, 1, head), frame(true, 9, b"hi"), frame(true, 0, tail)].concat()),
        ("keepalive", [frame(true, 1, b"\r\n\r\n"), frame(true, 1, b"\r\n"), frame(true, 10, b"")].concat()),
        (
            "close",
            [frame(true, 1, register), frame(true, 8, &[0x03, 0xE8, b'b', b'y', b'e']), frame(true, 1, b"x")].concat(),
        ),
        ("small-limit", [&[0x77][..], &frame(true, 1, head), &frame(true, 2, register)].concat()),
    ];
    for (name, bytes) in cases {
        seeds.write("websocket", name, &bytes);
    }
}
