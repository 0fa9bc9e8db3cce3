//! The relay over loopback: fake endpoints send RTP and RTCP through real sessions.
//!
//! Each test takes a port range found free when it starts ([`free_range`]), in 26000-31999:
//! above the integration tests' servers (20000-25999, `tests/common`) and below the ephemeral
//! range, so tests run in parallel, in one process or in many.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sambung_media::sdes::SdesCrypto;
use tokio::net::UdpSocket;
use tokio::runtime::Handle;

use super::{Leg, MediaError, MediaRelay, Peer, RelayConfig, RelaySession};

const LO: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// `len` consecutive UDP ports, from an even one, that are free on 127.0.0.1 now: one of 60
/// windows of 100 in 26000-31999, picked from the process id, the clock and a counter, and
/// checked by binding each port.
fn free_range(len: u16) -> (u16, u16) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOWEST: u16 = 26_000;
    const WINDOWS: u32 = 60;
    assert!(len <= 100);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let start = std::process::id().wrapping_mul(7919).wrapping_add(nanos / 1000);
    for attempt in 0..WINDOWS * 4 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let window = start.wrapping_add(n.wrapping_mul(13)).wrapping_add(attempt) % WINDOWS;
        let base = LOWEST + window as u16 * 100;
        if (base..base + len).all(|port| std::net::UdpSocket::bind((LO, port)).is_ok()) {
            return (base, base + len - 1);
        }
    }
    panic!("no {len} free UDP ports in {LOWEST}..{}", u32::from(LOWEST) + WINDOWS * 100);
}

/// A relay over a free range of `len` ports.
fn relay(len: u16) -> MediaRelay {
    let (min, max) = free_range(len);
    MediaRelay::new(RelayConfig::new(min, max), Handle::current()).unwrap()
}

async fn endpoint(ip: &str) -> UdpSocket {
    UdpSocket::bind((ip, 0)).await.unwrap()
}

fn addr(socket: &UdpSocket) -> SocketAddr {
    socket.local_addr().unwrap()
}

fn port(session: &RelaySession, leg: Leg, stream: usize) -> SocketAddr {
    SocketAddr::new(LO, session.leg_ports(leg)[stream])
}

fn rtcp_port(session: &RelaySession, leg: Leg, stream: usize) -> SocketAddr {
    SocketAddr::new(LO, session.leg_ports(leg)[stream] + 1)
}

async fn recv(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0; 2048];
    let (len, from) = tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf))
        .await
        .expect("a packet should arrive")
        .unwrap();
    buf.truncate(len);
    (buf, from)
}

async fn nothing(socket: &UdpSocket) {
    let mut buf = [0; 2048];
    let got = tokio::time::timeout(Duration::from_millis(150), socket.recv_from(&mut buf)).await;
    assert!(got.is_err(), "no packet should arrive, got {got:?}");
}

/// A plausible RTP packet: version 2, payload type 0, the sequence number, `len` bytes.
fn rtp(seq: u16, len: usize) -> Vec<u8> {
    let mut packet = vec![0u8; len.max(12)];
    packet[0] = 0x80;
    packet[2..4].copy_from_slice(&seq.to_be_bytes());
    for (i, byte) in packet.iter_mut().enumerate().skip(12) {
        *byte = (i as u8).wrapping_mul(31).wrapping_add(seq as u8);
    }
    packet
}

/// Waits (on the test's runtime, so the relay task runs) until `condition` holds.
async fn eventually(condition: impl Fn() -> bool) {
    tokio::time::timeout(Duration::from_secs(2), async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the condition should come true");
}

/// Two endpoints (RTP and RTCP sockets each) on loopback, set as the peers of stream 0.
async fn endpoints(session: &RelaySession) -> (UdpSocket, UdpSocket, UdpSocket, UdpSocket) {
    let (a, a_rtcp, b, b_rtcp) = (
        endpoint("127.0.0.1").await,
        endpoint("127.0.0.1").await,
        endpoint("127.0.0.1").await,
        endpoint("127.0.0.1").await,
    );
    session.set_peer(Leg::A, 0, peer(&a, &a_rtcp)).unwrap();
    session.set_peer(Leg::B, 0, peer(&b, &b_rtcp)).unwrap();
    (a, a_rtcp, b, b_rtcp)
}

fn peer(rtp: &UdpSocket, rtcp: &UdpSocket) -> Peer {
    Peer { rtp: Some(addr(rtp)), rtcp: Some(addr(rtcp)), signalling_ip: Some(LO) }
}

#[tokio::test]
async fn rtp_and_rtcp_flow_both_ways_unmodified() {
    let relay = relay(20);
    let session = relay.allocate("call-1", 1, LO).unwrap();
    let (a, a_rtcp, b, b_rtcp) = endpoints(&session).await;

    a.send_to(&rtp(1, 172), port(&session, Leg::A, 0)).await.unwrap();
    assert_eq!(recv(&b).await, (rtp(1, 172), port(&session, Leg::B, 0)));
    b.send_to(&rtp(2, 172), port(&session, Leg::B, 0)).await.unwrap();
    assert_eq!(recv(&a).await, (rtp(2, 172), port(&session, Leg::A, 0)));

    a_rtcp.send_to(b"\x81\xc8 sender report", rtcp_port(&session, Leg::A, 0)).await.unwrap();
    assert_eq!(recv(&b_rtcp).await, (b"\x81\xc8 sender report".to_vec(), rtcp_port(&session, Leg::B, 0)));
    b_rtcp.send_to(b"\x81\xc9 receiver report", rtcp_port(&session, Leg::B, 0)).await.unwrap();
    assert_eq!(recv(&a_rtcp).await, (b"\x81\xc9 receiver report".to_vec(), rtcp_port(&session, Leg::A, 0)));

    // Bursts, mostly equal sizes (sent on with GSO) with some odd ones in between: every
    // datagram arrives whole and in order.
    let sizes: Vec<usize> = (0..300).map(|i| if i % 25 == 24 { 60 + i } else { 172 }).collect();
    for burst in sizes.chunks(50).enumerate().map(|(n, sizes)| (n * 50, sizes)) {
        let (first, sizes) = burst;
        for (i, &size) in sizes.iter().enumerate() {
            a.send_to(&rtp((first + i) as u16 + 10, size), port(&session, Leg::A, 0)).await.unwrap();
        }
        for (i, &size) in sizes.iter().enumerate() {
            assert_eq!(recv(&b).await.0, rtp((first + i) as u16 + 10, size), "packet {}", first + i);
        }
    }

    let stats = session.stats();
    let (leg_a, leg_b) = (stats.leg(Leg::A), stats.leg(Leg::B));
    assert_eq!((leg_a.rtp.received_packets, leg_b.rtp.sent_packets), (301, 301));
    assert_eq!((leg_b.rtp.received_packets, leg_a.rtp.sent_packets), (1, 1));
    let bytes: u64 = 172 + sizes.iter().map(|&s| s as u64).sum::<u64>();
    assert_eq!((leg_a.rtp.received_bytes, leg_b.rtp.sent_bytes), (bytes, bytes));
    assert_eq!((leg_a.rtcp.received_packets, leg_a.rtcp.sent_packets), (1, 1));
    assert_eq!(leg_a.rtp.rejected_packets + leg_a.rtp.dropped_packets, 0);
    let last = session.release().await;
    assert_eq!(last.leg(Leg::B).rtcp.sent_bytes, b"\x81\xc8 sender report".len() as u64);
}

#[tokio::test]
async fn third_sources_are_dropped_and_counted() {
    let relay = relay(20);
    let session = relay.allocate("call-2", 1, LO).unwrap();
    let (a, a_rtcp, b, b_rtcp) = (
        endpoint("127.0.0.1").await,
        endpoint("127.0.0.1").await,
        endpoint("127.0.0.1").await,
        endpoint("127.0.0.1").await,
    );
    let intruder = endpoint("127.0.0.2").await;

    // Before signalling says anything, nobody is accepted.
    a.send_to(&rtp(1, 100), port(&session, Leg::A, 0)).await.unwrap();
    eventually(|| session.stats().leg(Leg::A).rtp.rejected_packets == 1).await;
    session.set_peer(Leg::A, 0, peer(&a, &a_rtcp)).unwrap();
    session.set_peer(Leg::B, 0, peer(&b, &b_rtcp)).unwrap();
    nothing(&b).await;

    // Neither before nor after the leg latched may another IP inject media.
    intruder.send_to(&rtp(2, 100), port(&session, Leg::A, 0)).await.unwrap();
    intruder.send_to(&rtp(3, 100), rtcp_port(&session, Leg::B, 0)).await.unwrap();
    a.send_to(&rtp(4, 100), port(&session, Leg::A, 0)).await.unwrap();
    assert_eq!(recv(&b).await.0, rtp(4, 100));
    intruder.send_to(&rtp(5, 100), port(&session, Leg::A, 0)).await.unwrap();
    nothing(&b).await;
    nothing(&a_rtcp).await;
    // Nor hijack the destination: B's packets still reach A.
    b.send_to(&rtp(6, 100), port(&session, Leg::B, 0)).await.unwrap();
    assert_eq!(recv(&a).await.0, rtp(6, 100));
    nothing(&intruder).await;

    let stats = session.stats();
    assert_eq!(stats.leg(Leg::A).rtp.rejected_packets, 3);
    assert_eq!(stats.leg(Leg::B).rtcp.rejected_packets, 1);
    assert_eq!(stats.leg(Leg::A).rtp.received_packets, 1);
}

#[tokio::test]
async fn latches_to_a_nat_changed_port_of_the_signalled_ip() {
    let relay = relay(20);
    let session = relay.allocate("call-3", 1, LO).unwrap();
    // A's SDP names `a_sdp`, but its NAT sends from other ports of the same IP.
    let (a_sdp, a_nat, a_rebound) =
        (endpoint("127.0.0.1").await, endpoint("127.0.0.1").await, endpoint("127.0.0.1").await);
    let (b, b_rtcp, a_rtcp) = (endpoint("127.0.0.1").await, endpoint("127.0.0.1").await, endpoint("127.0.0.1").await);
    session
        .set_peer(Leg::A, 0, Peer { rtp: Some(addr(&a_sdp)), rtcp: Some(addr(&a_rtcp)), signalling_ip: None })
        .unwrap();
    session.set_peer(Leg::B, 0, peer(&b, &b_rtcp)).unwrap();

    // Before A sends, B's media goes to A's SDP address.
    b.send_to(&rtp(1, 80), port(&session, Leg::B, 0)).await.unwrap();
    assert_eq!(recv(&a_sdp).await.0, rtp(1, 80));
    // A's first packet latches: B's media follows it.
    a_nat.send_to(&rtp(2, 80), port(&session, Leg::A, 0)).await.unwrap();
    assert_eq!(recv(&b).await.0, rtp(2, 80));
    b.send_to(&rtp(3, 80), port(&session, Leg::B, 0)).await.unwrap();
    assert_eq!(recv(&a_nat).await.0, rtp(3, 80));
    nothing(&a_sdp).await;
    // The NAT rebinds A to yet another port: the relay follows.
    a_rebound.send_to(&rtp(4, 80), port(&session, Leg::A, 0)).await.unwrap();
    assert_eq!(recv(&b).await.0, rtp(4, 80));
    b.send_to(&rtp(5, 80), port(&session, Leg::B, 0)).await.unwrap();
    assert_eq!(recv(&a_rebound).await.0, rtp(5, 80));
    nothing(&a_nat).await;
}

#[tokio::test]
async fn latches_to_the_signalling_ip_when_the_sdp_is_private() {
    let relay = relay(20);
    let session = relay.allocate("call-4", 1, LO).unwrap();
    // The SDP names a private address (127.0.0.9 stands in for 10.0.0.5); SIP came from 127.0.0.1.
    let private: SocketAddr = "127.0.0.9:4000".parse().unwrap();
    let (a, b, b_rtcp) = (endpoint("127.0.0.1").await, endpoint("127.0.0.1").await, endpoint("127.0.0.1").await);
    session.set_peer(Leg::A, 0, Peer { rtp: Some(private), rtcp: None, signalling_ip: Some(LO) }).unwrap();
    session.set_peer(Leg::B, 0, peer(&b, &b_rtcp)).unwrap();
    a.send_to(&rtp(1, 60), port(&session, Leg::A, 0)).await.unwrap();
    assert_eq!(recv(&b).await.0, rtp(1, 60));
    b.send_to(&rtp(2, 60), port(&session, Leg::B, 0)).await.unwrap();
    assert_eq!(recv(&a).await.0, rtp(2, 60));
    // A source at the private IP is allowed too (the SDP address): on a LAN it is the phone.
    let lan = endpoint("127.0.0.9").await;
    lan.send_to(&rtp(3, 60), port(&session, Leg::A, 0)).await.unwrap();
    assert_eq!(recv(&b).await.0, rtp(3, 60));
}

#[tokio::test]
async fn hold_drops_until_the_held_leg_sends() {
    let relay = relay(20);
    let session = relay.allocate("call-5", 1, LO).unwrap();
    let (a, a_rtcp, b) = (endpoint("127.0.0.1").await, endpoint("127.0.0.1").await, endpoint("127.0.0.1").await);
    session.set_peer(Leg::A, 0, peer(&a, &a_rtcp)).unwrap();
    // B's SDP says c=0.0.0.0 (RFC 2543 hold): nothing is sent to it.
    let held = Peer { rtp: Some("0.0.0.0:4000".parse().unwrap()), rtcp: None, signalling_ip: Some(LO) };
    session.set_peer(Leg::B, 0, held).unwrap();
    a.send_to(&rtp(1, 50), port(&session, Leg::A, 0)).await.unwrap();
    nothing(&b).await;
    assert_eq!(session.stats().leg(Leg::A).rtp.dropped_packets, 1);
    // B sends from its signalling IP: it is latched and reachable again.
    b.send_to(&rtp(2, 50), port(&session, Leg::B, 0)).await.unwrap();
    assert_eq!(recv(&a).await.0, rtp(2, 50));
    a.send_to(&rtp(3, 50), port(&session, Leg::A, 0)).await.unwrap();
    assert_eq!(recv(&b).await.0, rtp(3, 50));
}

#[tokio::test]
async fn streams_are_kept_apart() {
    let relay = relay(20);
    let session = relay.allocate("call-6", 2, LO).unwrap();
    assert_eq!(session.streams(), 2);
    let mut sockets = Vec::new();
    for _ in 0..8 {
        sockets.push(endpoint("127.0.0.1").await);
    }
    // [stream][leg] -> (rtp, rtcp)
    let socket = |stream: usize, leg: usize, kind: usize| &sockets[stream * 4 + leg * 2 + kind];
    for stream in 0..2 {
        for (l, leg) in [Leg::A, Leg::B].into_iter().enumerate() {
            session.set_peer(leg, stream, peer(socket(stream, l, 0), socket(stream, l, 1))).unwrap();
        }
    }
    socket(1, 0, 0).send_to(b"video", port(&session, Leg::A, 1)).await.unwrap();
    assert_eq!(recv(socket(1, 1, 0)).await.0, b"video");
    socket(0, 1, 0).send_to(b"audio", port(&session, Leg::B, 0)).await.unwrap();
    assert_eq!(recv(socket(0, 0, 0)).await.0, b"audio");
    nothing(socket(1, 0, 0)).await;
    assert!(matches!(session.set_peer(Leg::A, 2, Peer::default()), Err(MediaError::NoSuchStream(2))));
}

#[tokio::test]
async fn ports_are_exhausted_then_freed() {
    // Two pairs: one session of one stream takes both.
    let relay = relay(4);
    assert_eq!((relay.capacity_pairs(), relay.available_pairs()), (2, 2));
    let first = relay.allocate("call-7", 1, LO).unwrap();
    assert_eq!(first.leg_ports(Leg::A).len() + first.leg_ports(Leg::B).len(), 2);
    assert_eq!((first.leg_ports(Leg::A)[0] & 1, first.leg_ports(Leg::B)[0] & 1), (0, 0));
    assert_eq!(relay.available_pairs(), 0);
    let err = relay.allocate("call-8", 1, LO).unwrap_err();
    let (min, max) = (relay.config().port_min, relay.config().port_max);
    assert!(matches!(err, MediaError::PortsExhausted { min: m, max: n } if (m, n) == (min, max)));
    assert_eq!(err.to_string(), format!("no free RTP port pair in {min}-{max}"));
    assert_eq!(relay.active_sessions(), 1);

    // Released: the ports are back once the call returns.
    first.release().await;
    assert_eq!((relay.available_pairs(), relay.active_sessions()), (2, 0));
    let second = relay.allocate("call-9", 1, LO).unwrap();
    // Dropped: they come back as soon as the task has closed its sockets.
    drop(second);
    eventually(|| relay.available_pairs() == 2).await;
    relay.allocate("call-10", 1, LO).unwrap();
}

#[tokio::test]
async fn a_busy_port_is_skipped() {
    let relay = relay(6);
    // Someone else holds the RTCP port of the first pair.
    let min = relay.config().port_min;
    let _squatter = std::net::UdpSocket::bind((LO, min + 1)).unwrap();
    let session = relay.allocate("call-11", 1, LO).unwrap();
    assert_eq!(session.leg_ports(Leg::A)[0], min + 2);
    assert_eq!(session.leg_ports(Leg::B)[0], min + 4);
    assert_eq!(relay.available_pairs(), 1);
}

#[tokio::test]
async fn bad_arguments() {
    assert!(matches!(
        MediaRelay::new(RelayConfig::new(20_000, 20_000), Handle::current()),
        Err(MediaError::InvalidRange { .. })
    ));
    let relay = relay(10);
    assert!(matches!(relay.allocate("x", 0, LO), Err(MediaError::Streams(0))));
    assert!(matches!(relay.allocate("x", 17, LO), Err(MediaError::Streams(17))));
    assert_eq!(relay.available_pairs(), 5);
}

#[tokio::test]
async fn offer_and_answer_drive_the_relay() {
    use sambung_media::SessionDescription;

    let relay = relay(20);
    let (a, b) = (endpoint("127.0.0.1").await, endpoint("127.0.0.1").await);
    let offer: SessionDescription = format!(
        "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
        addr(&a).port()
    )
    .parse()
    .unwrap();
    let session = relay.allocate("call-12", offer.media.len(), LO).unwrap();
    session.set_peers_from_sdp(Leg::A, &offer, Some(LO)).unwrap();
    let to_bob = session.sdp_for(Leg::B, &offer, LO);
    assert_eq!(to_bob.media[0].port, session.leg_ports(Leg::B)[0]);
    assert_eq!(to_bob.origin.session_version, 2);

    let answer: SessionDescription = format!(
        "v=0\r\no=bob 7 7 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0\r\n",
        addr(&b).port()
    )
    .parse()
    .unwrap();
    assert!(sambung_media::offer_answer::has_common_codec(&offer, &answer));
    session.set_peers_from_sdp(Leg::B, &answer, Some(LO)).unwrap();
    let to_alice = session.sdp_for(Leg::A, &answer, LO);

    // Each side sends where the SDP it got says, and hears the other.
    a.send_to(&rtp(1, 172), SocketAddr::new(LO, to_alice.media[0].port)).await.unwrap();
    assert_eq!(recv(&b).await, (rtp(1, 172), SocketAddr::new(LO, to_bob.media[0].port)));
    b.send_to(&rtp(2, 172), SocketAddr::new(LO, to_bob.media[0].port)).await.unwrap();
    assert_eq!(recv(&a).await, (rtp(2, 172), SocketAddr::new(LO, to_alice.media[0].port)));
}

#[tokio::test]
async fn ipv6() {
    let Ok(a) = UdpSocket::bind("[::1]:0").await else {
        return; // no IPv6 loopback on this machine
    };
    let b = UdpSocket::bind("[::1]:0").await.unwrap();
    let v6: IpAddr = "::1".parse().unwrap();
    let relay = relay(20);
    let session = relay.allocate("call-13", 1, v6).unwrap();
    for (leg, socket) in [(Leg::A, &a), (Leg::B, &b)] {
        session.set_peer(leg, 0, Peer { rtp: Some(addr(socket)), rtcp: None, signalling_ip: Some(v6) }).unwrap();
    }
    let to = |leg| SocketAddr::new(v6, session.leg_ports(leg)[0]);
    a.send_to(&rtp(1, 172), to(Leg::A)).await.unwrap();
    assert_eq!(recv(&b).await, (rtp(1, 172), to(Leg::B)));
    b.send_to(&rtp(2, 172), to(Leg::B)).await.unwrap();
    assert_eq!(recv(&a).await, (rtp(2, 172), to(Leg::A)));
}

fn sdes(tag: u32, byte: u8) -> SdesCrypto {
    SdesCrypto::new(tag, sambung_media::srtp::SrtpProfile::Aes128CmSha1_80, &[byte; 30]).unwrap()
}

/// An RTP packet of payload type `pt` with `payload`.
fn rtp_with(pt: u8, seq: u16, timestamp: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let header = sambung_media::rtp::RtpHeader {
        marker,
        payload_type: pt,
        sequence: seq,
        timestamp,
        ssrc: 0x5151,
        ..Default::default()
    };
    let mut packet = vec![0; 12 + payload.len()];
    header.write(payload, &mut packet).unwrap();
    packet
}

#[tokio::test]
async fn srtp_is_decrypted_with_the_senders_key_and_encrypted_with_ours() {
    let relay = relay(20);
    let session = relay.allocate("call-7", 1, LO).unwrap();
    let (a, _a_rtcp, b, _b_rtcp) = endpoints(&session).await;
    // Alice's key, ours toward alice, bob's, ours toward bob.
    let (alice, to_alice, bob, to_bob) = (sdes(1, 1), sdes(1, 2), sdes(1, 3), sdes(1, 4));
    let leg = |srtp_in: &SdesCrypto, srtp_out: &SdesCrypto| super::LegConfig {
        srtp_in: Some(srtp_in.clone()),
        srtp_out: Some(srtp_out.clone()),
        format: None,
        events: Vec::new(),
        rtcp_feedback: false,
    };
    let config = super::StreamConfig { legs: [leg(&alice, &to_alice), leg(&bob, &to_bob)], transcode: false };
    session.configure(0, config).unwrap();

    let (mut alice_tx, mut bob_rx) = (alice.context(), to_bob.context());
    for seq in 0..5u16 {
        let plain = rtp_with(0, seq, 160 * u32::from(seq), false, &[0x55; 160]);
        let mut packet = plain.clone();
        alice_tx.protect_rtp(&mut packet).unwrap();
        a.send_to(&packet, port(&session, Leg::A, 0)).await.unwrap();
        let (mut got, _) = recv(&b).await;
        assert_ne!(got, packet, "re-encrypted for bob");
        bob_rx.unprotect_rtp(&mut got).expect("bob's packets are under our key toward him");
        assert_eq!(got, plain);
    }
    // A packet under the wrong key is dropped, not forwarded.
    let mut forged = rtp_with(0, 9, 1440, false, &[0x55; 160]);
    sdes(1, 9).context().protect_rtp(&mut forged).unwrap();
    a.send_to(&forged, port(&session, Leg::A, 0)).await.unwrap();
    nothing(&b).await;
    assert_eq!(session.stats().leg(Leg::A).rtp.dropped_packets, 1);

    // A forger on an allowed IP (here the same host) does not move alice's latch: bob's media
    // still goes to alice.
    let forger = endpoint("127.0.0.1").await;
    forger.send_to(&forged, port(&session, Leg::A, 0)).await.unwrap();
    nothing(&b).await;
    let mut bob_tx = bob.context();
    let mut to_alice_rx = to_alice.context();
    let plain = rtp_with(0, 1, 160, false, &[0x33; 160]);
    let mut packet = plain.clone();
    bob_tx.protect_rtp(&mut packet).unwrap();
    b.send_to(&packet, port(&session, Leg::B, 0)).await.unwrap();
    let (mut got, _) = recv(&a).await;
    to_alice_rx.unprotect_rtp(&mut got).expect("alice's packets are under our key toward her");
    assert_eq!(got, plain);
    nothing(&forger).await;
}

#[tokio::test]
async fn telephone_events_become_key_events_and_pass_through() {
    let relay = relay(20);
    let keys = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = keys.clone();
    relay.set_key_sink(super::KeySink::new(move |event| sink.lock().unwrap().push(event)));
    let session = relay.allocate("call-8", 1, LO).unwrap();
    let (a, _a_rtcp, b, _b_rtcp) = endpoints(&session).await;
    let events = vec![sambung_media::negotiate::EventFormat { payload_type: 101, clock_rate: 8000 }];
    let leg = super::LegConfig { events, ..Default::default() };
    session.configure(0, super::StreamConfig { legs: [leg.clone(), leg], transcode: false }).unwrap();

    let mut seq = 100;
    for key in ['4', '#'] {
        let timestamp = u32::from(seq) * 160;
        for packet in sambung_media::dtmf::DtmfSender::new(key, timestamp, 100, 10).unwrap() {
            let bytes = rtp_with(101, seq, packet.timestamp, packet.marker, &packet.payload);
            seq += 1;
            a.send_to(&bytes, port(&session, Leg::A, 0)).await.unwrap();
            assert_eq!(recv(&b).await.0, bytes, "events pass to the other leg untouched");
        }
    }
    eventually(|| keys.lock().unwrap().len() == 2).await;
    let got: Vec<(Leg, char, u32)> = keys.lock().unwrap().iter().map(|k| (k.leg, k.key, k.duration_ms)).collect();
    assert_eq!(got, [(Leg::A, '4', 100), (Leg::A, '#', 100)]);
    assert!(keys.lock().unwrap().iter().all(|k| &*k.call == "call-8"));
}

#[tokio::test]
async fn legs_without_a_common_codec_are_transcoded() {
    use sambung_media::codec::CodecKind;
    use sambung_media::negotiate::{Negotiated, PayloadFormat};
    let relay = relay(20);
    let session = relay.allocate("call-9", 1, LO).unwrap();
    let (a, _a_rtcp, b, _b_rtcp) = endpoints(&session).await;
    let format = |codec, payload_type| Negotiated {
        audio: PayloadFormat { codec, payload_type, fmtp: None },
        telephone_event: None,
    };
    let legs = [
        super::LegConfig { format: Some(format(CodecKind::Pcmu, 0)), ..Default::default() },
        super::LegConfig { format: Some(format(CodecKind::Pcma, 8)), ..Default::default() },
    ];
    session.configure(0, super::StreamConfig { legs, transcode: true }).unwrap();

    // A 400 Hz tone in PCMU from A, every 20 ms: B gets PCMA carrying the same tone.
    let tone: Vec<i16> =
        (0..160 * 30).map(|n| ((n as f32 * 400.0 / 8000.0 * std::f32::consts::TAU).sin() * 9000.0) as i16).collect();
    for (i, frame) in tone.chunks(160).enumerate() {
        let payload: Vec<u8> = frame.iter().map(|&s| sambung_media::g711::ulaw_encode(s)).collect();
        a.send_to(&rtp_with(0, i as u16, 160 * i as u32, i == 0, &payload), port(&session, Leg::A, 0)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut received = Vec::new();
    while received.len() < 10 {
        let (packet, _) = recv(&b).await;
        received.push(packet);
    }
    for packet in &received {
        let packet = sambung_media::rtp::RtpPacket::parse(packet).unwrap();
        assert_eq!((packet.payload_type(), packet.payload().len()), (8, 160));
    }
    // The last packets carry the tone: its level, in A-law, is the tone's.
    let last = sambung_media::rtp::RtpPacket::parse(received.last().unwrap()).unwrap();
    let pcm: Vec<f64> = last.payload().iter().map(|&c| f64::from(sambung_media::g711::alaw_decode(c))).collect();
    let rms = (pcm.iter().map(|s| s * s).sum::<f64>() / pcm.len() as f64).sqrt();
    assert!((5500.0..7300.0).contains(&rms), "a 9000-peak sine has an RMS near 6364, got {rms:.0}");
}

#[tokio::test]
async fn an_application_leg_hears_the_caller_and_answers() {
    use sambung_media::codec::CodecKind;
    use sambung_media::negotiate::{EventFormat, Negotiated, PayloadFormat};

    let relay = relay(20);
    let keys = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = keys.clone();
    relay.set_key_sink(super::KeySink::new(move |event| sink.lock().unwrap().push(event)));
    let session = relay.allocate("call-app", 1, LO).unwrap();
    let caller = endpoint("127.0.0.1").await;
    session.set_peer(Leg::A, 0, Peer { rtp: Some(addr(&caller)), rtcp: None, signalling_ip: Some(LO) }).unwrap();
    let events = vec![EventFormat { payload_type: 101, clock_rate: 8000 }];
    let caller_config = super::LegConfig { events, ..Default::default() };
    session.configure(0, super::StreamConfig { legs: [caller_config, Default::default()], transcode: false }).unwrap();
    let pcmu = Negotiated {
        audio: PayloadFormat { codec: CodecKind::Pcmu, payload_type: 0, fmtp: None },
        telephone_event: Some(EventFormat { payload_type: 101, clock_rate: 8000 }),
    };
    let (app_side, mut app) = super::app_port(8000);
    assert_eq!((app_side.rate(), app.rate(), app.frame_len()), (8000, 8000, 160));
    session.attach_app(app_side, pcmu).unwrap();

    // The application: one frame of a 1 kHz tone said for each frame heard, until it has heard
    // a second and a key.
    let application = tokio::spawn(async move {
        let mut heard = Vec::new();
        let mut key = None;
        let mut n = 0;
        while heard.len() < 8000 || key.is_none() {
            tokio::select! {
                frame = app.heard.recv() => {
                    let Some(frame) = frame else { break };
                    assert_eq!(frame.len(), 160);
                    heard.extend(frame);
                    let tone: Vec<i16> = (n * 160..n * 160 + 160)
                        .map(|i| (10_000.0 * (std::f64::consts::TAU * 1000.0 * i as f64 / 8000.0).sin()) as i16)
                        .collect();
                    n += 1;
                    let _ = app.played.try_send(tone);
                }
                pressed = app.keys.recv() => key = pressed,
            }
        }
        (heard, key)
    });

    // The caller: 1.2 s of a 400 Hz tone in PCMU, then the key 5 (RFC 4733), listening all along.
    let to_relay = port(&session, Leg::A, 0);
    let mut said = Vec::new();
    let mut buf = vec![0; 2048];
    for i in 0..60u16 {
        let pcm: Vec<u8> = (usize::from(i) * 160..usize::from(i) * 160 + 160)
            .map(|n| {
                let sample = 10_000.0 * (std::f64::consts::TAU * 400.0 * n as f64 / 8000.0).sin();
                sambung_media::g711::ulaw_encode(sample as i16)
            })
            .collect();
        caller.send_to(&rtp_with(0, i, 160 * u32::from(i), i == 0, &pcm), to_relay).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(20);
        while let Ok(Ok((len, from))) = tokio::time::timeout_at(deadline, caller.recv_from(&mut buf)).await {
            assert_eq!(from, to_relay, "the application's audio comes from A's port");
            said.push(buf[..len].to_vec());
        }
    }
    let key_press: Vec<_> = sambung_media::dtmf::DtmfSender::new('5', 60 * 160, 100, 10).unwrap().collect();
    for (n, packet) in key_press.iter().enumerate() {
        let bytes = rtp_with(101, 60 + n as u16, packet.timestamp, packet.marker, &packet.payload);
        caller.send_to(&bytes, to_relay).await.unwrap();
    }
    let (heard, key) = tokio::time::timeout(Duration::from_secs(5), application).await.unwrap().unwrap();
    assert_eq!(key, Some('5'));
    eventually(|| keys.lock().unwrap().iter().any(|k| k.key == '5' && k.leg == Leg::A)).await;

    let amplitude = |pcm: &[f64], frequency: f64| {
        let w = std::f64::consts::TAU * frequency / 8000.0;
        let (mut s1, mut s2) = (0.0, 0.0);
        for &x in pcm {
            let s = x + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        2.0 * (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2).max(0.0).sqrt() / pcm.len() as f64
    };
    // What the application heard, once the jitter buffer plays: the caller's tone.
    let steady: Vec<f64> = heard[heard.len() - 2400..].iter().map(|&s| f64::from(s)).collect();
    let level = amplitude(&steady, 400.0);
    assert!((8000.0..12_000.0).contains(&level), "the application hears 400 Hz at {level:.0}");
    // What the caller heard: PCMU of our own source, carrying the application's tone.
    assert!(said.len() > 30, "{} packets", said.len());
    let last: Vec<f64> = said[said.len() - 10..]
        .iter()
        .flat_map(|p| {
            let packet = sambung_media::rtp::RtpPacket::parse(p).unwrap();
            assert_eq!(packet.payload_type(), 0);
            packet.payload().iter().map(|&c| f64::from(sambung_media::g711::ulaw_decode(c))).collect::<Vec<_>>()
        })
        .collect();
    let level = amplitude(&last, 1000.0);
    assert!((8000.0..12_000.0).contains(&level), "the caller hears 1 kHz at {level:.0}");
    let stats = session.release().await;
    assert!(stats.leg(Leg::A).rtp.sent_packets >= said.len() as u64);
    assert_eq!(stats.leg(Leg::A).rtp.received_packets, 60 + key_press.len() as u64);
}

/// A browser stand-in over a real loopback socket: a str0m `Rtc` driven through its SDP API
/// as a browser is (full ICE agent, controlling), in RTP mode.
struct Browser {
    rtc: str0m::Rtc,
    socket: UdpSocket,
    connected: bool,
    heard: Vec<str0m::rtp::RtpPacket>,
}

impl Browser {
    async fn new() -> Browser {
        let socket = endpoint("127.0.0.1").await;
        let mut rtc = str0m::Rtc::builder()
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_pcmu(true, false)
            .build(tokio::time::Instant::now().into_std());
        rtc.add_local_candidate(str0m::Candidate::host(addr(&socket), "udp").unwrap());
        Browser { rtc, socket, connected: false, heard: Vec::new() }
    }

    /// Runs the browser for `span`: its timers, its datagrams both ways.
    async fn run(&mut self, span: Duration) {
        let end = tokio::time::Instant::now() + span;
        loop {
            let now = tokio::time::Instant::now();
            let _ = self.rtc.handle_input(str0m::Input::Timeout(now.into_std()));
            let next = loop {
                match self.rtc.poll_output().unwrap() {
                    str0m::Output::Timeout(at) => break tokio::time::Instant::from_std(at),
                    str0m::Output::Transmit(t) => {
                        self.socket.send_to(&t.contents, t.destination).await.unwrap();
                    }
                    str0m::Output::Event(str0m::Event::Connected) => self.connected = true,
                    str0m::Output::Event(str0m::Event::RtpPacket(packet)) => self.heard.push(packet),
                    str0m::Output::Event(_) => {}
                }
            };
            if now >= end {
                return;
            }
            let wait = next.min(end).min(now + Duration::from_millis(10));
            let mut buf = vec![0u8; 2048];
            if let Ok(Ok((len, source))) = tokio::time::timeout_at(wait, self.socket.recv_from(&mut buf)).await {
                let receive = str0m::net::Receive {
                    proto: str0m::net::Protocol::Udp,
                    source,
                    destination: addr(&self.socket),
                    contents: buf[..len].try_into().unwrap(),
                };
                let now = tokio::time::Instant::now().into_std();
                self.rtc.handle_input(str0m::Input::Receive(now, receive)).unwrap();
            }
        }
    }
}

#[tokio::test]
async fn a_browser_leg_speaks_webrtc_and_the_other_leg_plain_rtp() {
    use sambung_media::sdp::SessionDescription;
    use sambung_media::webrtc::{RemoteWebRtc, WebRtcIdentity, WebRtcPlan};
    let relay = relay(20);
    let identity = std::sync::Arc::new(WebRtcIdentity::generate(tokio::time::Instant::now().into_std()).unwrap());
    relay.set_webrtc_identity(identity.clone());
    let session = relay.allocate("call-webrtc", 1, LO).unwrap();

    // The browser calls: its offer, our answer from the relay's leg A socket.
    let mut browser = Browser::new().await;
    let mut change = browser.rtc.sdp_api();
    change.add_media(str0m::media::MediaKind::Audio, str0m::media::Direction::SendRecv, None, None, None);
    let (offer, pending) = change.apply().unwrap();
    let offer = SessionDescription::parse(offer.to_sdp_string().as_bytes()).unwrap();
    let remote = RemoteWebRtc::parse(&offer).unwrap();
    // The phone on leg B took PCMU.
    let mut plan =
        WebRtcPlan::answer(&remote, identity.fingerprint(), port(&session, Leg::A, 0), 7, |_, f| f.name == "PCMU")
            .unwrap();
    session.attach_webrtc(Leg::A, plan.clone(), remote).unwrap();
    // Call control's SetPeer for the browser's leg (port 9 of its SDP) must not undo ICE.
    session.set_peer(Leg::A, 0, Peer { rtp: Some("127.0.0.1:9".parse().unwrap()), ..Peer::default() }).unwrap();
    let answer = str0m::change::SdpAnswer::from_sdp_string(&plan.description().to_string()).unwrap();
    browser.rtc.sdp_api().accept_answer(pending, answer).unwrap();

    let (phone, phone_rtcp) = (endpoint("127.0.0.1").await, endpoint("127.0.0.1").await);
    session.set_peer(Leg::B, 0, peer(&phone, &phone_rtcp)).unwrap();
    browser.run(Duration::from_secs(3)).await;
    assert!(browser.connected, "ICE and DTLS through the relay's socket");

    // 30 packets each way, 20 ms apart.
    let ssrc = browser
        .rtc
        .direct_api()
        .stream_tx_by_mid(plan.streams[0].mid.as_str().into(), None)
        .map(|tx| tx.ssrc())
        .expect("the browser's send stream");
    let mut from_browser = Vec::new();
    for i in 0..30u16 {
        let now = tokio::time::Instant::now().into_std();
        let payload = vec![0x55u8.wrapping_add(i as u8); 160];
        if let Some(tx) = browser.rtc.direct_api().stream_tx(&ssrc) {
            tx.write_rtp(str0m::rtp::RtpWrite::new(
                0.into(),
                (500 + u64::from(i)).into(),
                160 * u32::from(i),
                now,
                payload.as_slice(),
            ));
        }
        let mut packet = rtp(9000 + i, 172);
        packet[1] = 0;
        phone.send_to(&packet, port(&session, Leg::B, 0)).await.unwrap();
        browser.run(Duration::from_millis(20)).await;
        let mut buf = [0u8; 2048];
        while let Ok(Ok((len, _))) = tokio::time::timeout(Duration::from_millis(1), phone.recv_from(&mut buf)).await {
            from_browser.push(buf[..len].to_vec());
        }
    }
    browser.run(Duration::from_millis(200)).await;
    let mut buf = [0u8; 2048];
    while let Ok(Ok((len, _))) = tokio::time::timeout(Duration::from_millis(50), phone.recv_from(&mut buf)).await {
        from_browser.push(buf[..len].to_vec());
    }
    // The phone got the browser's PCMU in the clear.
    assert!(from_browser.len() >= 28, "the phone got {} of the browser's 30 packets", from_browser.len());
    for packet in &from_browser {
        let rtp = sambung_media::rtp::RtpPacket::parse(packet).expect("plain RTP toward the phone");
        assert_eq!((rtp.payload_type(), rtp.ssrc(), rtp.payload().len()), (0, *ssrc, 160));
        // The payload is the browser's, byte for byte (sequence 500 + i carried 0x55 + i).
        let i = rtp.sequence().wrapping_sub(500) as u8;
        assert!(rtp.payload().iter().all(|&b| b == 0x55u8.wrapping_add(i)), "payload of packet {}", rtp.sequence());
    }
    // The browser got the phone's, decrypted by str0m from SRTP.
    let heard: Vec<u16> = browser.heard.iter().map(|p| p.header.sequence_number).collect();
    assert!(heard.len() >= 28, "the browser got {} of the phone's 30 packets: {heard:?}", heard.len());
    assert!(heard.iter().all(|s| (9000..9030).contains(s)));
    let stats = session.release().await;
    assert!(stats.leg(Leg::A).rtp.received_packets >= 30, "{stats:?}");
}
