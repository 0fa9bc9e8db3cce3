//! The session's processing, without sockets: relaying, SRTP per leg, DTMF, transcoding,
//! latching, application legs and mixes, on a clock the tests move.

use std::f64::consts::TAU;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::codec::{self, CodecKind};
use crate::dtmf::{DtmfSender, TelephoneEvent};
use crate::g711;
use crate::negotiate::{EventFormat, Negotiated, PayloadFormat};
use crate::rtp::{RtpHeader, RtpPacket};
use crate::sdes::SdesCrypto;
use crate::srtp::SrtpProfile;

/// The one real instant the tests need; everything else is an offset from it.
#[allow(clippy::disallowed_methods)]
fn origin() -> Instant {
    Instant::now()
}

fn ms(start: Instant, ms: u64) -> Instant {
    start + Duration::from_millis(ms)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const ALICE: &str = "192.0.2.10:4000";
const BOB: &str = "198.51.100.7:5000";
const CAROL: &str = "203.0.113.3:6000";

fn peer(at: &str) -> Peer {
    let at = addr(at);
    Peer { rtp: Some(at), rtcp: None, signalling_ip: Some(at.ip()) }
}

fn format(codec: CodecKind, payload_type: u8) -> Negotiated {
    Negotiated { audio: PayloadFormat { codec, payload_type, fmtp: None }, telephone_event: None }
}

fn sdes(byte: u8) -> SdesCrypto {
    SdesCrypto::new(1, SrtpProfile::Aes128CmSha1_80, &[byte; 30]).unwrap()
}

/// A session of `streams` streams with two RTP legs, paired, whose peers are ALICE and BOB on
/// every stream.
fn pair(streams: usize) -> (MediaSession, LegId, LegId, Instant) {
    let start = origin();
    let mut session = MediaSession::new(streams, 7, start).unwrap();
    let a = session.add_leg(LegKind::Rtp).unwrap();
    let b = session.add_leg(LegKind::Rtp).unwrap();
    session.set_router(Router::Pair(a, b)).unwrap();
    for stream in 0..streams {
        session.set_peer(a, stream, peer(ALICE)).unwrap();
        session.set_peer(b, stream, peer(BOB)).unwrap();
    }
    (session, a, b, start)
}

fn rtp_with(pt: u8, seq: u16, timestamp: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let header = RtpHeader { marker, payload_type: pt, sequence: seq, timestamp, ssrc: 0x5151, ..Default::default() };
    let mut packet = vec![0; 12 + payload.len()];
    header.write(payload, &mut packet).unwrap();
    packet
}

/// `count` samples of a sine of `frequency` at `rate`, from sample `offset`.
fn sine(frequency: f64, amplitude: f64, rate: u32, offset: usize, count: usize) -> Vec<i16> {
    (offset..offset + count)
        .map(|n| (amplitude * (TAU * frequency * n as f64 / f64::from(rate)).sin()) as i16)
        .collect()
}

/// The amplitude of `frequency` in `pcm` (Goertzel).
fn amplitude(pcm: &[i16], rate: u32, frequency: f64) -> f64 {
    let w = TAU * frequency / f64::from(rate);
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in pcm {
        let s = f64::from(x) + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
    2.0 * power.max(0.0).sqrt() / pcm.len() as f64
}

fn rms(pcm: &[i16]) -> f64 {
    (pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len().max(1) as f64).sqrt()
}

fn transmits(session: &mut MediaSession) -> Vec<(Transmit, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while let Some(transmit) = session.poll_transmit(&mut buf) {
        out.push((transmit, buf.clone()));
    }
    out
}

fn events(session: &mut MediaSession) -> Vec<SessionEvent> {
    std::iter::from_fn(|| session.poll_event()).collect()
}

#[test]
fn a_plain_pair_relays_and_latches() {
    let (mut session, a, b, now) = pair(1);
    assert!(session.is_plain(0));
    assert_eq!(session.poll_timeout(), None);
    assert_eq!(session.partner(Channel::rtp(a, 0)), Some(Channel::rtp(b, 0)));
    assert_eq!(session.partner(Channel::rtcp(b, 0)), Some(Channel::rtcp(a, 0)));
    assert_eq!(session.destination(Channel::rtcp(b, 0)), Some(addr("198.51.100.7:5001")));

    // A's NAT picked another port of the signalled IP: latched, and B's media follows.
    let nat = addr("192.0.2.10:61000");
    let mut buf = rtp_with(0, 1, 160, false, &[0x55; 160]);
    let packet = buf.clone();
    let verdict = session.receive(now, Channel::rtp(a, 0), nat, &mut buf);
    assert_eq!(verdict, Receive::Forward { to: Channel::rtp(b, 0), destination: addr(BOB) });
    assert_eq!(buf, packet, "a plain stream is relayed untouched");
    assert_eq!(events(&mut session), [SessionEvent::Latched { at: Channel::rtp(a, 0), source: nat, previous: None }]);
    assert_eq!(session.destination(Channel::rtp(a, 0)), Some(nat));
    // A third party may not inject media, nor move the latch.
    assert_eq!(session.receive(now, Channel::rtp(a, 0), addr(CAROL), &mut buf), Receive::Rejected);
    assert_eq!(session.destination(Channel::rtp(a, 0)), Some(nat));
    // Garbage on a plain stream is relayed as it is: it is not looked at.
    let mut garbage = vec![1, 2, 3];
    assert!(matches!(session.receive(now, Channel::rtcp(b, 0), addr(BOB), &mut garbage), Receive::Forward { .. }));

    // B goes on hold (c=0.0.0.0): nothing is sent to it until it sends itself.
    session
        .set_peer(b, 0, Peer { rtp: Some(addr("0.0.0.0:5000")), rtcp: None, signalling_ip: Some(addr(BOB).ip()) })
        .unwrap();
    let mut buf = packet.clone();
    assert_eq!(session.receive(now, Channel::rtp(a, 0), nat, &mut buf), Receive::NoDestination);
    assert!(session.receive(now, Channel::rtp(b, 0), addr(BOB), &mut buf.clone()).to_channel().is_some());
    assert_eq!(
        session.receive(now, Channel::rtp(a, 0), nat, &mut buf),
        Receive::Forward { to: Channel::rtp(b, 0), destination: addr(BOB) }
    );
}

impl Receive {
    fn to_channel(self) -> Option<Channel> {
        match self {
            Receive::Forward { to, .. } => Some(to),
            _ => None,
        }
    }
}

#[test]
fn before_signalling_nobody_is_accepted() {
    let start = origin();
    let mut session = MediaSession::new(1, 1, start).unwrap();
    let a = session.add_leg(LegKind::Rtp).unwrap();
    let b = session.add_leg(LegKind::Rtp).unwrap();
    session.set_router(Router::Pair(a, b)).unwrap();
    let mut buf = rtp_with(0, 1, 0, false, &[0; 20]);
    assert_eq!(session.receive(start, Channel::rtp(a, 0), addr(ALICE), &mut buf), Receive::Rejected);
    session.set_peer(a, 0, peer(ALICE)).unwrap();
    assert_eq!(session.receive(start, Channel::rtp(a, 0), addr(ALICE), &mut buf), Receive::NoDestination);
}

#[test]
fn streams_are_kept_apart() {
    let (mut session, a, b, now) = pair(2);
    session.set_peer(b, 1, peer("198.51.100.7:7000")).unwrap();
    let mut buf = b"video".to_vec();
    assert_eq!(
        session.receive(now, Channel::rtp(a, 1), addr(ALICE), &mut buf),
        Receive::Forward { to: Channel::rtp(b, 1), destination: addr("198.51.100.7:7000") }
    );
    let mut buf = b"audio".to_vec();
    assert_eq!(
        session.receive(now, Channel::rtp(b, 0), addr(BOB), &mut buf),
        Receive::Forward { to: Channel::rtp(a, 0), destination: addr(ALICE) }
    );
    // Stream 1 of A latched, stream 0 of A did not.
    assert_eq!(session.latch_mut(Channel::rtp(a, 1)).unwrap().latched(), Some(addr(ALICE)));
    assert_eq!(session.latch_mut(Channel::rtp(a, 0)).unwrap().latched(), None);
    assert_eq!(session.set_peer(a, 2, Peer::default()), Err(SessionError::NoSuchStream(2)));
    assert_eq!(session.receive(now, Channel::rtp(a, 2), addr(ALICE), &mut buf), Receive::Dropped);
}

/// A and B with SRTP both ways: alice's key, ours toward alice, bob's, ours toward bob.
fn srtp_pair() -> (MediaSession, LegId, LegId, Instant, [SdesCrypto; 4]) {
    let (mut session, a, b, now) = pair(1);
    let keys = [sdes(1), sdes(2), sdes(3), sdes(4)];
    let leg = |srtp_in: &SdesCrypto, srtp_out: &SdesCrypto| LegConfig {
        srtp_in: Some(srtp_in.clone()),
        srtp_out: Some(srtp_out.clone()),
        ..LegConfig::default()
    };
    session.configure(a, 0, leg(&keys[0], &keys[1])).unwrap();
    session.configure(b, 0, leg(&keys[2], &keys[3])).unwrap();
    assert!(!session.is_plain(0));
    (session, a, b, now, keys)
}

#[test]
fn srtp_is_removed_with_the_senders_key_and_applied_with_the_receivers() {
    let (mut session, a, b, now, [alice, to_alice, bob, to_bob]) = srtp_pair();
    let (mut alice_tx, mut bob_rx) = (alice.context(), to_bob.context());
    for seq in 0..5u16 {
        let plain = rtp_with(0, seq, 160 * u32::from(seq), false, &[0x55; 160]);
        let mut buf = plain.clone();
        alice_tx.protect_rtp(&mut buf).unwrap();
        let sent = buf.clone();
        assert_eq!(
            session.receive(now, Channel::rtp(a, 0), addr(ALICE), &mut buf),
            Receive::Forward { to: Channel::rtp(b, 0), destination: addr(BOB) }
        );
        assert_ne!(buf, sent, "re-encrypted for bob");
        bob_rx.unprotect_rtp(&mut buf).expect("under our key toward bob");
        assert_eq!(buf, plain);
        // A replay is refused.
        let mut replay = sent.clone();
        assert_eq!(session.receive(now, Channel::rtp(a, 0), addr(ALICE), &mut replay), Receive::Dropped);
    }
    // Under the wrong key: dropped.
    let mut forged = rtp_with(0, 9, 1440, false, &[0x55; 160]);
    sdes(9).context().protect_rtp(&mut forged).unwrap();
    assert_eq!(session.receive(now, Channel::rtp(a, 0), addr(ALICE), &mut forged.clone()), Receive::Dropped);

    // A forger on an allowed IP, another port, does not move alice's latch.
    let forger = addr("192.0.2.10:9999");
    assert_eq!(session.receive(now, Channel::rtp(a, 0), forger, &mut forged.clone()), Receive::Dropped);
    assert_eq!(session.destination(Channel::rtp(a, 0)), Some(addr(ALICE)));
    // Someone off the allowed IPs is not even decrypted.
    assert_eq!(session.receive(now, Channel::rtp(a, 0), addr(CAROL), &mut forged), Receive::Rejected);
    // Bob's media reaches alice under our key toward her.
    let plain = rtp_with(0, 1, 160, false, &[0x33; 160]);
    let mut buf = plain.clone();
    bob.context().protect_rtp(&mut buf).unwrap();
    assert_eq!(
        session.receive(now, Channel::rtp(b, 0), addr(BOB), &mut buf),
        Receive::Forward { to: Channel::rtp(a, 0), destination: addr(ALICE) }
    );
    to_alice.context().unprotect_rtp(&mut buf).unwrap();
    assert_eq!(buf, plain);

    // An authentic packet from a new port of alice's IP moves the latch (NAT rebinding).
    let mut buf = rtp_with(0, 20, 3200, false, &[0x55; 160]);
    alice_tx.protect_rtp(&mut buf).unwrap();
    assert!(matches!(session.receive(now, Channel::rtp(a, 0), forger, &mut buf), Receive::Forward { .. }));
    assert_eq!(session.destination(Channel::rtp(a, 0)), Some(forger));
    let latched = events(&mut session).into_iter().filter(|e| matches!(e, SessionEvent::Latched { .. })).count();
    assert_eq!(latched, 3, "alice, bob, then alice's new port");
}

#[test]
fn the_same_keys_keep_their_contexts() {
    let (mut session, a, _b, now, [alice, to_alice, ..]) = srtp_pair();
    let mut tx = alice.context();
    let mut first = rtp_with(0, 1, 160, false, &[1; 160]);
    tx.protect_rtp(&mut first).unwrap();
    assert!(matches!(
        session.receive(now, Channel::rtp(a, 0), addr(ALICE), &mut first.clone()),
        Receive::Forward { .. }
    ));
    // A re-INVITE for hold with the same keys: the replay window stays.
    let same = LegConfig { srtp_in: Some(alice.clone()), srtp_out: Some(to_alice.clone()), ..LegConfig::default() };
    session.configure(a, 0, same.clone()).unwrap();
    assert_eq!(session.receive(now, Channel::rtp(a, 0), addr(ALICE), &mut first.clone()), Receive::Dropped);
    // New keys: a new context.
    session.configure(a, 0, LegConfig { srtp_in: Some(sdes(7)), ..same }).unwrap();
    let mut fresh = rtp_with(0, 1, 160, false, &[1; 160]);
    sdes(7).context().protect_rtp(&mut fresh).unwrap();
    assert!(matches!(session.receive(now, Channel::rtp(a, 0), addr(ALICE), &mut fresh), Receive::Forward { .. }));
}

#[test]
fn srtcp_is_relayed_reprotected() {
    let (mut session, a, b, now, [alice, _, _, to_bob]) = srtp_pair();
    let report =
        vec![0x80, 200, 0, 6, 0, 0, 0x51, 0x51, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0, 0, 0, 1];
    let mut buf = report.clone();
    alice.context().protect_rtcp(&mut buf).unwrap();
    assert_eq!(
        session.receive(now, Channel::rtcp(a, 0), addr("192.0.2.10:4001"), &mut buf),
        Receive::Forward { to: Channel::rtcp(b, 0), destination: addr("198.51.100.7:5001") }
    );
    to_bob.context().unprotect_rtcp(&mut buf).expect("under our key toward bob");
    assert_eq!(buf, report);
    // Plain RTCP on an SRTP leg does not authenticate.
    assert_eq!(
        session.receive(now, Channel::rtcp(a, 0), addr("192.0.2.10:4001"), &mut report.clone()),
        Receive::Dropped
    );
}

#[test]
fn telephone_events_become_keys_at_their_own_clock_and_pass_through() {
    let (mut session, a, b, now) = pair(1);
    let events_8k = vec![EventFormat { payload_type: 101, clock_rate: 8000 }];
    let events_48k = vec![EventFormat { payload_type: 110, clock_rate: 48_000 }];
    session.configure(a, 0, LegConfig { events: events_8k, ..LegConfig::default() }).unwrap();
    session.configure(b, 0, LegConfig { events: events_48k, ..LegConfig::default() }).unwrap();
    assert!(!session.is_plain(0));

    let mut seq = 100;
    for key in ['4', '#'] {
        for packet in DtmfSender::new(key, u32::from(seq) * 160, 100, 10).unwrap() {
            let bytes = rtp_with(101, seq, packet.timestamp, packet.marker, &packet.payload);
            seq += 1;
            let mut buf = bytes.clone();
            assert!(matches!(session.receive(now, Channel::rtp(a, 0), addr(ALICE), &mut buf), Receive::Forward { .. }));
            assert_eq!(buf, bytes, "events pass to the other leg untouched");
        }
    }
    // B's events run at 48 kHz: 100 ms is 4800 units.
    for (i, duration) in [960u16, 1920, 2880, 3840, 4800, 4800, 4800].into_iter().enumerate() {
        let event = TelephoneEvent { event: 9, end: i >= 4, volume: 10, duration };
        let mut buf = rtp_with(110, 500 + i as u16, 96_000, i == 0, &event.to_bytes());
        assert!(matches!(session.receive(now, Channel::rtp(b, 0), addr(BOB), &mut buf), Receive::Forward { .. }));
    }
    let keys: Vec<(LegId, char, u32)> = events(&mut session)
        .into_iter()
        .filter_map(|e| match e {
            SessionEvent::Key { leg, stream: 0, key, duration_ms } => Some((leg, key, duration_ms)),
            _ => None,
        })
        .collect();
    assert_eq!(keys, [(a, '4', 100), (a, '#', 100), (b, '9', 100)]);
}

/// PCMU RTP of 20 ms of `pcm` (8 kHz).
fn pcmu(seq: u16, pcm: &[i16]) -> Vec<u8> {
    let payload: Vec<u8> = pcm.iter().map(|&s| g711::ulaw_encode(s)).collect();
    rtp_with(0, seq, 160 * u32::from(seq), seq == 0, &payload)
}

fn decode(kind: CodecKind, packets: &[Vec<u8>]) -> Vec<i16> {
    let mut decoder = codec::decoder(kind).unwrap();
    let mut pcm = Vec::new();
    for packet in packets {
        decoder.decode(RtpPacket::parse(packet).unwrap().payload(), &mut pcm).unwrap();
    }
    pcm
}

#[test]
fn pcmu_and_pcma_legs_are_transcoded() {
    let (mut session, a, b, start) = pair(1);
    session.configure(a, 0, LegConfig { format: Some(format(CodecKind::Pcmu, 0)), ..LegConfig::default() }).unwrap();
    session.configure(b, 0, LegConfig { format: Some(format(CodecKind::Pcma, 8)), ..LegConfig::default() }).unwrap();
    assert!(!session.is_plain(0));
    assert_eq!(session.poll_timeout(), Some(start));
    let mut to_b = Vec::new();
    for i in 0..40u16 {
        let now = ms(start, 20 * u64::from(i));
        let mut buf = pcmu(i, &sine(400.0, 9000.0, 8000, 160 * usize::from(i), 160));
        assert_eq!(session.receive(now, Channel::rtp(a, 0), addr(ALICE), &mut buf), Receive::Consumed);
        while session.poll_timeout().is_some_and(|at| at <= now) {
            session.handle_timeout(now);
        }
        for (transmit, packet) in transmits(&mut session) {
            assert_eq!(transmit, Transmit { to: Channel::rtp(b, 0), destination: addr(BOB) });
            to_b.push(packet);
        }
    }
    // RTCP of a transcoded stream ends here.
    assert_eq!(
        session.receive(start, Channel::rtcp(a, 0), addr("192.0.2.10:4001"), &mut vec![0x80, 200, 0, 0]),
        Receive::Consumed
    );
    assert!(to_b.len() > 30, "{}", to_b.len());
    assert!(to_b.iter().all(|p| RtpPacket::parse(p).unwrap().payload_type() == 8));
    let pcm = g711_alaw(&to_b[to_b.len() - 10..]);
    assert!((5500.0..7300.0).contains(&rms(&pcm)), "a 9000-peak sine has an RMS near 6364, got {}", rms(&pcm));
    assert!(amplitude(&pcm, 8000, 400.0) > 10.0 * amplitude(&pcm, 8000, 1000.0));
}

fn g711_alaw(packets: &[Vec<u8>]) -> Vec<i16> {
    packets
        .iter()
        .flat_map(|p| RtpPacket::parse(p).unwrap().payload().iter().map(|&c| g711::alaw_decode(c)).collect::<Vec<_>>())
        .collect()
}

#[test]
fn pcmu_and_opus_legs_are_transcoded_both_ways() {
    let (mut session, a, b, start) = pair(1);
    session.configure(a, 0, LegConfig { format: Some(format(CodecKind::Pcmu, 0)), ..LegConfig::default() }).unwrap();
    session.configure(b, 0, LegConfig { format: Some(format(CodecKind::Opus, 111)), ..LegConfig::default() }).unwrap();
    let mut opus = codec::encoder(CodecKind::Opus, &Default::default()).unwrap();
    let (mut to_a, mut to_b) = (Vec::new(), Vec::new());
    for i in 0..60u16 {
        let now = ms(start, 20 * u64::from(i));
        let mut buf = pcmu(i, &sine(400.0, 9000.0, 8000, 160 * usize::from(i), 160));
        session.receive(now, Channel::rtp(a, 0), addr(ALICE), &mut buf);
        let mut payload = Vec::new();
        opus.encode(&sine(1000.0, 9000.0, 48_000, 960 * usize::from(i), 960), &mut payload).unwrap();
        let mut buf = rtp_with(111, i, 960 * u32::from(i), i == 0, &payload);
        assert_eq!(session.receive(now, Channel::rtp(b, 0), addr(BOB), &mut buf), Receive::Consumed);
        session.handle_timeout(now);
        for (transmit, packet) in transmits(&mut session) {
            if transmit.to.leg == a { to_a.push(packet) } else { to_b.push(packet) }
        }
    }
    let heard_by_b = decode(CodecKind::Opus, &to_b[to_b.len() - 20..]);
    let heard_by_a = decode(CodecKind::Pcmu, &to_a[to_a.len() - 20..]);
    assert!(amplitude(&heard_by_b, 48_000, 400.0) > 5000.0, "{}", amplitude(&heard_by_b, 48_000, 400.0));
    assert!(amplitude(&heard_by_a, 8000, 1000.0) > 5000.0, "{}", amplitude(&heard_by_a, 8000, 1000.0));
    assert!(amplitude(&heard_by_a, 8000, 400.0) < 500.0);
    // A configuration naming a leg that is not there changes nothing.
    let ghost = LegId(9);
    assert_eq!(
        session.configure_legs(0, [(a, LegConfig::default()), (ghost, LegConfig::default())]),
        Err(SessionError::NoSuchLeg(ghost))
    );
    assert!(!session.is_plain(0));
    // The same formats again keep the transcoder: its stream toward B goes on.
    let ssrc = RtpPacket::parse(to_b.last().unwrap()).unwrap().ssrc();
    session.configure(b, 0, LegConfig { format: Some(format(CodecKind::Opus, 111)), ..LegConfig::default() }).unwrap();
    let mut after = Vec::new();
    for i in 60..70u16 {
        let now = ms(start, 20 * u64::from(i));
        session.receive(now, Channel::rtp(a, 0), addr(ALICE), &mut pcmu(i, &[100; 160]));
        session.handle_timeout(now);
        after.extend(transmits(&mut session).into_iter().filter(|(t, _)| t.to.leg == b));
    }
    assert!(!after.is_empty());
    assert!(after.iter().all(|(_, p)| RtpPacket::parse(p).unwrap().ssrc() == ssrc));
}

/// A: an RTP leg with PCMU and SRTP; B: an application at `rate`.
fn app_pair(rate: u32) -> (MediaSession, LegId, LegId, Instant, [SdesCrypto; 2]) {
    let start = origin();
    let mut session = MediaSession::new(1, 99, start).unwrap();
    let a = session.add_leg(LegKind::Rtp).unwrap();
    let b = session.add_leg(LegKind::App { format: format(CodecKind::Pcmu, 0), rate }).unwrap();
    session.set_router(Router::Pair(a, b)).unwrap();
    session.set_peer(a, 0, peer(ALICE)).unwrap();
    let keys = [sdes(1), sdes(2)];
    let config = LegConfig {
        srtp_in: Some(keys[0].clone()),
        srtp_out: Some(keys[1].clone()),
        events: vec![EventFormat { payload_type: 101, clock_rate: 8000 }],
        format: None,
        rtcp_feedback: false,
    };
    session.configure(a, 0, config).unwrap();
    (session, a, b, start, keys)
}

#[test]
fn an_application_hears_and_says_a_tone_across_srtp() {
    let (mut session, a, b, start, [alice, to_alice]) = app_pair(16_000);
    assert_eq!(session.poll_timeout(), Some(start));
    assert_eq!(session.partner(Channel::rtp(a, 0)), None);
    let mut alice_tx = alice.context();
    let mut alice_rx = to_alice.context();
    let (mut heard, mut said) = (Vec::new(), Vec::new());
    let mut ticks = 0;
    for i in 0..50u16 {
        let now = ms(start, 20 * u64::from(i));
        let mut buf = pcmu(i, &sine(1000.0, 10_000.0, 8000, 160 * usize::from(i), 160));
        alice_tx.protect_rtp(&mut buf).unwrap();
        assert_eq!(session.receive(now, Channel::rtp(a, 0), addr(ALICE), &mut buf), Receive::Consumed);
        session.app_play(b, &sine(1000.0, 10_000.0, 16_000, 320 * usize::from(i), 320)).unwrap();
        while session.poll_timeout().is_some_and(|at| at <= now) {
            session.handle_timeout(now);
            ticks += 1;
        }
        for event in events(&mut session) {
            if let SessionEvent::AppAudio { leg, samples } = event {
                assert_eq!((leg, samples.len()), (b, 320));
                heard.extend(samples);
            }
        }
        for (transmit, mut packet) in transmits(&mut session) {
            assert_eq!(transmit, Transmit { to: Channel::rtp(a, 0), destination: addr(ALICE) });
            alice_rx.unprotect_rtp(&mut packet).expect("under our key toward alice");
            said.push(packet);
        }
    }
    assert_eq!((heard.len(), said.len()), (ticks * 320, ticks), "one frame each way per tick");
    let steady = &heard[heard.len() - 16_000 / 2..];
    let level = rms(steady) * std::f64::consts::SQRT_2;
    assert!((8500.0..11_500.0).contains(&level), "the application hears the tone's level, got {level:.0}");
    assert!(amplitude(steady, 16_000, 1000.0) > 20.0 * amplitude(steady, 16_000, 400.0));
    let alice_hears = decode(CodecKind::Pcmu, &said[said.len() - 20..]);
    let level = amplitude(&alice_hears, 8000, 1000.0);
    assert!((8500.0..11_500.0).contains(&level), "alice hears the application's tone, got {level:.0}");
    assert!(said.iter().all(|p| RtpPacket::parse(p).unwrap().payload_type() == 0));
    // SRTCP to an application ends here (garbage does not authenticate); keys the caller presses
    // reach it as events.
    let rtcp_from = addr("192.0.2.10:4001");
    let mut report = vec![0x80, 201, 0, 1, 0, 0, 0x51, 0x51];
    alice.context().protect_rtcp(&mut report).unwrap();
    assert_eq!(session.receive(start, Channel::rtcp(a, 0), rtcp_from, &mut report), Receive::Consumed);
    assert_eq!(session.receive(start, Channel::rtcp(a, 0), rtcp_from, &mut vec![0; 40]), Receive::Dropped);
    for (n, packet) in DtmfSender::new('7', 9000, 100, 10).unwrap().enumerate() {
        let mut buf = rtp_with(101, 100 + n as u16, packet.timestamp, packet.marker, &packet.payload);
        alice_tx.protect_rtp(&mut buf).unwrap();
        assert_eq!(session.receive(start, Channel::rtp(a, 0), addr(ALICE), &mut buf), Receive::Consumed);
    }
    let keys: Vec<_> = events(&mut session).into_iter().filter(|e| matches!(e, SessionEvent::Key { .. })).collect();
    assert_eq!(keys, [SessionEvent::Key { leg: a, stream: 0, key: '7', duration_ms: 100 }]);
}

#[test]
fn an_application_frame_of_the_wrong_length_is_an_error() {
    let (mut session, a, b, start, _) = app_pair(8000);
    assert_eq!(session.app_play(b, &[0; 320]), Err(SessionError::FrameLength { expected: 160, got: 320 }));
    assert_eq!(session.app_play(a, &[0; 160]), Err(SessionError::NotAnApp(a)));
    // More frames than the queue holds: the oldest go.
    for level in 0..10 {
        session.app_play(b, &[level * 100; 160]).unwrap();
    }
    session.handle_timeout(start);
    let (_, packet) = transmits(&mut session).pop().unwrap();
    let mut packet = packet;
    sdes(2).context().unprotect_rtp(&mut packet).unwrap();
    let first = g711::ulaw_decode(RtpPacket::parse(&packet).unwrap().payload()[0]);
    assert!((550..=650).contains(&first), "frame 6 of 10 comes first, got {first}");
    assert!(matches!(
        MediaSession::new(1, 1, start)
            .unwrap()
            .add_leg(LegKind::App { format: format(CodecKind::Pcmu, 0), rate: 11_025 }),
        Err(SessionError::App(_))
    ));
}

#[test]
fn ticks_catch_up_but_not_without_end() {
    let (mut session, _a, b, start, _) = app_pair(8000);
    assert_eq!(session.due_ticks(ms(start, 500)), 1, "a clock that starts ticks once");
    session.handle_timeout(start);
    assert_eq!((session.due_ticks(ms(start, 19)), session.due_ticks(ms(start, 80))), (0, 4));
    assert_eq!(session.due_ticks(ms(start, 10_000)), MAX_BURST);
    assert_eq!(session.poll_timeout(), Some(ms(start, 20)));
    let heard = |s: &mut MediaSession| events(s).iter().filter(|e| matches!(e, SessionEvent::AppAudio { .. })).count();
    assert_eq!(heard(&mut session), 1);
    // 60 ms late: three ticks at once.
    session.handle_timeout(ms(start, 80));
    assert_eq!(heard(&mut session), 4);
    assert_eq!(session.poll_timeout(), Some(ms(start, 100)));
    // Ten seconds late: ten, and the clock starts again from now.
    session.handle_timeout(ms(start, 10_000));
    assert_eq!(heard(&mut session), MAX_BURST as usize);
    assert_eq!(session.poll_timeout(), Some(ms(start, 10_020)));
    session.remove_leg(b).unwrap();
    assert_eq!(session.poll_timeout(), None);
    assert_eq!(session.router(), &Router::None);
}

#[test]
fn a_leg_becomes_an_application_mid_session() {
    let (mut session, a, b, start) = pair(1);
    let mut buf = pcmu(0, &[0; 160]);
    assert!(matches!(session.receive(start, Channel::rtp(a, 0), addr(ALICE), &mut buf), Receive::Forward { .. }));
    session.set_leg_kind(b, LegKind::App { format: format(CodecKind::Pcmu, 0), rate: 8000 }).unwrap();
    assert!(!session.is_plain(0));
    assert_eq!(session.partner(Channel::rtp(a, 0)), None);
    assert_eq!(session.destination(Channel::rtp(b, 0)), None, "an application has no sockets");
    let mut heard = Vec::new();
    for i in 1..40u16 {
        let now = ms(start, 20 * u64::from(i));
        let mut buf = pcmu(i, &sine(700.0, 8000.0, 8000, 160 * usize::from(i), 160));
        assert_eq!(session.receive(now, Channel::rtp(a, 0), addr(ALICE), &mut buf), Receive::Consumed);
        // Whatever still arrives on the application leg's old sockets goes nowhere.
        assert_eq!(session.receive(now, Channel::rtp(b, 0), addr(BOB), &mut buf), Receive::Dropped);
        session.handle_timeout(now);
        for event in events(&mut session) {
            if let SessionEvent::AppAudio { samples, .. } = event {
                heard.extend(samples);
            }
        }
        assert_eq!(transmits(&mut session).len(), 1, "the application's frame goes to alice");
    }
    let steady = &heard[heard.len() - 1600..];
    assert!(amplitude(steady, 8000, 700.0) > 6000.0, "{}", amplitude(steady, 8000, 700.0));
    // And back to a device: relaying again.
    session.set_leg_kind(b, LegKind::Rtp).unwrap();
    assert!(session.is_plain(0));
    assert_eq!(session.poll_timeout(), None);
}

#[test]
fn a_mix_of_three_lets_each_hear_the_other_two() {
    let start = origin();
    let mut session = MediaSession::new(1, 3, start).unwrap();
    let x = session.add_leg(LegKind::Rtp).unwrap();
    let y = session.add_leg(LegKind::Rtp).unwrap();
    let z = session.add_leg(LegKind::App { format: format(CodecKind::Pcmu, 0), rate: 16_000 }).unwrap();
    session.set_peer(x, 0, peer(ALICE)).unwrap();
    session.set_peer(y, 0, peer(BOB)).unwrap();
    session.configure(x, 0, LegConfig { format: Some(format(CodecKind::Pcmu, 0)), ..LegConfig::default() }).unwrap();
    session.configure(y, 0, LegConfig { format: Some(format(CodecKind::Pcma, 8)), ..LegConfig::default() }).unwrap();
    session.set_router(Router::Mix(vec![x, y, z])).unwrap();
    assert_eq!(session.set_router(Router::Mix(vec![x, x])), Err(SessionError::Duplicate(x)));
    let (fx, fy, fz) = (400.0, 1000.0, 2000.0);
    let (mut to_x, mut to_y, mut heard_z) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..50u16 {
        let now = ms(start, 20 * u64::from(i));
        let offset = 160 * usize::from(i);
        let mut buf = pcmu(i, &sine(fx, 8000.0, 8000, offset, 160));
        assert_eq!(session.receive(now, Channel::rtp(x, 0), addr(ALICE), &mut buf), Receive::Consumed);
        let payload: Vec<u8> = sine(fy, 8000.0, 8000, offset, 160).iter().map(|&s| g711::alaw_encode(s)).collect();
        let mut buf = rtp_with(8, i, 160 * u32::from(i), i == 0, &payload);
        assert_eq!(session.receive(now, Channel::rtp(y, 0), addr(BOB), &mut buf), Receive::Consumed);
        session.app_play(z, &sine(fz, 8000.0, 16_000, 2 * offset, 320)).unwrap();
        session.handle_timeout(now);
        for (transmit, packet) in transmits(&mut session) {
            match transmit.to.leg {
                leg if leg == x => to_x.push(packet),
                leg if leg == y => to_y.push(packet),
                other => panic!("nothing goes to {other}"),
            }
        }
        for event in events(&mut session) {
            if let SessionEvent::AppAudio { leg, samples } = event {
                assert_eq!(leg, z);
                heard_z.extend(samples);
            }
        }
    }
    // RTCP of mixed legs ends here.
    assert_eq!(
        session.receive(start, Channel::rtcp(x, 0), addr("192.0.2.10:4001"), &mut vec![0x80, 201, 0, 1, 0, 0, 0, 1]),
        Receive::Consumed
    );
    let x_hears = decode(CodecKind::Pcmu, &to_x[to_x.len() - 20..]);
    let y_hears = g711_alaw(&to_y[to_y.len() - 20..]);
    let z_hears = &heard_z[heard_z.len() - 6400..];
    let levels = |pcm: &[i16], rate| [fx, fy, fz].map(|f| amplitude(pcm, rate, f));
    for (who, pcm, rate, own) in [("x", &x_hears[..], 8000, 0), ("y", &y_hears[..], 8000, 1), ("z", z_hears, 16_000, 2)]
    {
        let heard = levels(pcm, rate);
        for (i, level) in heard.iter().enumerate() {
            if i == own {
                assert!(*level < 200.0, "{who} hears itself: {heard:?}");
            } else {
                assert!(*level > 5000.0, "{who} misses {i}: {heard:?}");
            }
        }
    }
    let ssrcs = [&to_x, &to_y].map(|p| RtpPacket::parse(p.last().unwrap()).unwrap().ssrc());
    assert_ne!(ssrcs[0], ssrcs[1], "each leg hears a source of its own");
}

#[test]
fn bad_calls_are_errors() {
    let start = origin();
    assert_eq!(MediaSession::new(0, 1, start).unwrap_err(), SessionError::Streams(0));
    assert_eq!(MediaSession::new(17, 1, start).unwrap_err(), SessionError::Streams(17));
    let (mut session, a, b, _) = pair(1);
    session.remove_leg(b).unwrap();
    assert_eq!(session.router(), &Router::None);
    assert_eq!(session.configure(b, 0, LegConfig::default()), Err(SessionError::NoSuchLeg(b)));
    assert_eq!(session.set_router(Router::Pair(a, b)), Err(SessionError::NoSuchLeg(b)));
    assert_eq!(session.set_router(Router::Pair(a, a)), Err(SessionError::Duplicate(a)));
    assert_eq!(session.configure(a, 3, LegConfig::default()), Err(SessionError::NoSuchStream(3)));
    assert_eq!(session.receive(start, Channel::rtp(b, 0), addr(BOB), &mut vec![0x80; 20]), Receive::Dropped);
    assert_eq!(session.latch_mut(Channel::rtp(b, 0)), None);
    assert_eq!(session.app_play(b, &[0; 160]), Err(SessionError::NoSuchLeg(b)));
    let c = session.add_leg(LegKind::Rtp).unwrap();
    assert_ne!(c, b, "leg ids are not reused");
    assert_eq!(session.legs().collect::<Vec<_>>(), [a, c]);
}

/// A session of two streams in one of several shapes, its legs' peers set.
fn shaped(shape: u8) -> (MediaSession, Vec<LegId>, Instant) {
    let start = origin();
    let mut session = MediaSession::new(2, u64::from(shape), start).unwrap();
    let app = LegKind::App { format: format(CodecKind::Opus, 111), rate: 16_000 };
    let kinds = match shape % 5 {
        3 => vec![LegKind::Rtp, app],
        4 => vec![LegKind::Rtp, LegKind::Rtp, app],
        _ => vec![LegKind::Rtp, LegKind::Rtp],
    };
    let legs: Vec<LegId> = kinds.into_iter().map(|k| session.add_leg(k).unwrap()).collect();
    for (i, &leg) in legs.iter().enumerate() {
        for stream in 0..2 {
            session.set_peer(leg, stream, peer(["192.0.2.1:4000", "192.0.2.2:4000", "192.0.2.3:4000"][i])).unwrap();
            let config = match shape % 5 {
                1 => LegConfig { srtp_in: Some(sdes(i as u8)), srtp_out: Some(sdes(9)), ..LegConfig::default() },
                2 | 4 => LegConfig {
                    format: Some(if i == 0 { format(CodecKind::Pcmu, 0) } else { format(CodecKind::Opus, 111) }),
                    events: vec![EventFormat { payload_type: 101, clock_rate: 8000 }],
                    ..LegConfig::default()
                },
                _ => LegConfig {
                    events: vec![EventFormat { payload_type: 101, clock_rate: 48_000 }],
                    ..LegConfig::default()
                },
            };
            session.configure(leg, stream, config).unwrap();
        }
    }
    let router = if shape % 5 == 4 { Router::Mix(legs.clone()) } else { Router::Pair(legs[0], legs[1]) };
    session.set_router(router).unwrap();
    (session, legs, start)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_datagrams_never_panic(
        shape in 0u8..10,
        datagrams in proptest::collection::vec(
            (0usize..4, 0usize..3, any::<bool>(), 0usize..3, any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300)),
            1..40,
        ),
    ) {
        let (mut session, legs, start) = shaped(shape);
        let sources = ["192.0.2.1:4000", "192.0.2.2:4000", "192.0.2.3:4000"].map(addr);
        for (i, (leg, stream, rtcp, source, rtp_like, mut bytes)) in datagrams.into_iter().enumerate() {
            let leg = legs.get(leg).copied().unwrap_or(LegId(77));
            if rtp_like && bytes.len() >= 12 {
                bytes[0] = 0x80;
                bytes[1] = [0, 101, 111, 200][i % 4];
            }
            let at = Channel { leg, stream, kind: if rtcp { Kind::Rtcp } else { Kind::Rtp } };
            let now = ms(start, 7 * i as u64);
            let _ = session.receive(now, at, sources[source], &mut bytes);
            let _ = session.app_play(leg, &[1000; 320]);
            session.handle_timeout(now);
            let mut buf = Vec::new();
            while session.poll_transmit(&mut buf).is_some() {}
            while session.poll_event().is_some() {}
        }
    }
}
