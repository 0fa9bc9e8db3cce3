//! SRTP protect and unprotect of a G.711 packet: 12-byte header, 160-byte payload (20 ms at
//! 8 kHz). Throughput is in packets (elements) per second on one core.
//!
//! `cargo bench -p sambung-media --bench srtp`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sambung_media::srtp::{MAX_TRAILER_LEN, MasterKey, SrtpContext, SrtpProfile};

const PAYLOAD_LEN: usize = 160;

/// A 172-byte RTP packet in a buffer with room for the SRTP trailer.
fn rtp_packet(seq: u16) -> Vec<u8> {
    let mut packet = Vec::with_capacity(12 + PAYLOAD_LEN + MAX_TRAILER_LEN);
    packet.extend_from_slice(&[0x80, 0x00]);
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    packet.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    packet.extend_from_slice(&[0xD5; PAYLOAD_LEN]);
    packet
}

fn srtp(c: &mut Criterion) {
    let key = MasterKey::from_bytes(&[0x3C; 30]);
    for profile in SrtpProfile::ALL {
        let mut group = c.benchmark_group(format!("srtp/{profile}"));
        group.throughput(Throughput::Elements(1));

        // Each packet is built outside the timed routine; the routine transforms it in place.
        let mut sender = SrtpContext::new(profile, &key);
        let mut seq = 0u16;
        group.bench_function("protect_rtp_172B", |b| {
            b.iter_batched(
                || {
                    seq = seq.wrapping_add(1);
                    rtp_packet(seq)
                },
                |mut packet| {
                    sender.protect_rtp(black_box(&mut packet)).unwrap();
                    packet
                },
                BatchSize::SmallInput,
            )
        });

        // Every packet is new to the receiver (no replays), in order, across rollovers.
        let mut sender = SrtpContext::new(profile, &key);
        let mut receiver = SrtpContext::new(profile, &key);
        let mut seq = 0u16;
        group.bench_function("unprotect_rtp_172B", |b| {
            b.iter_batched(
                || {
                    seq = seq.wrapping_add(1);
                    let mut packet = rtp_packet(seq);
                    sender.protect_rtp(&mut packet).unwrap();
                    packet
                },
                |mut packet| {
                    receiver.unprotect_rtp(black_box(&mut packet)).unwrap();
                    packet
                },
                BatchSize::SmallInput,
            )
        });
        group.finish();
    }
}

criterion_group!(benches, srtp);
criterion_main!(benches);
