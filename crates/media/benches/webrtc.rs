//! Browser legs per core: what one [`WebRtcLeg`] costs, against a browser stand-in (a second
//! str0m `Rtc`, a full ICE agent as a browser is) over an in-memory wire.
//!
//! - `handshake`: one whole connection, ICE checks and the DTLS handshake (certificate
//!   verification, keys), both ends: a core makes `1 s / time` of them, less since the
//!   browser's side is half the work;
//! - `audio`: one 20 ms PCMU packet each way through the leg only (SRTP decrypt of the
//!   browser's, encrypt of ours; the browser's own work is not timed): a core relays
//!   `2 / time` packets per second, `1 / (100 * time)` calls;
//! - `video`: the same with a 1,100-byte VP8-sized payload one way.
//!
//! Run with `cargo bench -p sambung-media --bench webrtc`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use sambung_media::sdp::SessionDescription;
use sambung_media::webrtc::{RemoteWebRtc, RtpFields, WebRtcIdentity, WebRtcLeg, WebRtcOutput, WebRtcPlan};
use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, Ssrc};
use str0m::{Candidate, Event, Input, Output, Rtc};

const OURS: &str = "127.0.0.1:40000";
const BROWSER: &str = "127.0.0.1:50000";

/// A connected pair: our leg and the browser, and the browser's audio and video send streams.
struct Pair {
    leg: WebRtcLeg,
    browser: Rtc,
    now: Instant,
    streams: Vec<(Mid, Ssrc)>,
    to_browser: u64,
}

fn clock() -> Instant {
    #[allow(clippy::disallowed_methods)]
    Instant::now()
}

/// Hands the browser's datagrams to the leg and the leg's to the browser until neither has
/// anything more; returns how many RTP packets the leg gave out.
fn exchange(pair: &mut Pair) -> usize {
    let browser_addr: SocketAddr = BROWSER.parse().unwrap();
    let mut rtp = 0;
    loop {
        let mut moved = false;
        let _ = pair.browser.handle_input(Input::Timeout(pair.now));
        while let Ok(output) = pair.browser.poll_output() {
            match output {
                Output::Timeout(_) => break,
                Output::Transmit(t) => {
                    pair.leg.receive(pair.now, browser_addr, &t.contents);
                    moved = true;
                }
                Output::Event(_) => {}
            }
        }
        pair.leg.handle_timeout(pair.now);
        while let Some(output) = pair.leg.poll() {
            match output {
                WebRtcOutput::Transmit { data, .. } => {
                    let receive = Receive {
                        proto: Protocol::Udp,
                        source: OURS.parse().unwrap(),
                        destination: browser_addr,
                        contents: data.as_slice().try_into().unwrap(),
                    };
                    let _ = pair.browser.handle_input(Input::Receive(pair.now, receive));
                    pair.to_browser += 1;
                    moved = true;
                }
                WebRtcOutput::Rtp { .. } => rtp += 1,
                _ => {}
            }
        }
        if !moved {
            return rtp;
        }
    }
}

fn connect(identity: &WebRtcIdentity, seed: u64) -> Pair {
    let mut now = clock();
    let mut browser =
        Rtc::builder().set_rtp_mode(true).clear_codecs().enable_pcmu(true, false).enable_vp8(true).build(now);
    browser.add_local_candidate(Candidate::host(BROWSER.parse().unwrap(), "udp").unwrap());
    let mut change = browser.sdp_api();
    let audio = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let video = change.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
    let (offer, pending) = change.apply().unwrap();
    let offer = SessionDescription::parse(offer.to_sdp_string().as_bytes()).unwrap();
    let remote = RemoteWebRtc::parse(&offer).unwrap();
    let mut plan =
        WebRtcPlan::answer(&remote, identity.fingerprint(), OURS.parse().unwrap(), seed, |_, _| true).unwrap();
    let leg = WebRtcLeg::new(now, identity, &plan, &remote).unwrap();
    let answer = SdpAnswer::from_sdp_string(&plan.description().to_string()).unwrap();
    browser.sdp_api().accept_answer(pending, answer).unwrap();
    let streams = [audio, video]
        .into_iter()
        .map(|mid| (mid, browser.direct_api().stream_tx_by_mid(mid, None).map(|tx| tx.ssrc()).unwrap()))
        .collect();
    let mut pair = Pair { leg, browser, now, streams, to_browser: 0 };
    for _ in 0..400 {
        exchange(&mut pair);
        if pair.leg.is_connected() && pair.browser.is_connected() {
            return pair;
        }
        now += Duration::from_millis(5);
        pair.now = now;
    }
    panic!("no connection");
}

fn bench(c: &mut Criterion) {
    let identity = WebRtcIdentity::generate(clock()).unwrap();
    c.bench_function("webrtc/handshake", |b| {
        let mut seed = 1;
        b.iter(|| {
            seed += 1;
            black_box(connect(&identity, seed));
        });
    });

    let mut pair = connect(&identity, 7);
    let mut run = |c: &mut Criterion, name: &str, stream: usize, size: usize, both_ways: bool| {
        // Each stream's sequence numbers start low (a first packet past a wrap would need its
        // rollover counter told out of band).
        let mut seq = 0u64;
        let payload = vec![0x5au8; size];
        let (_, ssrc) = pair.streams[stream];
        // The payload types the browser negotiated: PCMU's static 0, its own number for VP8.
        let codec = if stream == 0 { Codec::PCMU } else { Codec::Vp8 };
        let pt: u8 = *pair.browser.codec_config().find(|p| p.spec().codec == codec).expect("negotiated").pt();
        c.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                let mut in_leg = Duration::ZERO;
                let mut relayed = 0u64;
                for _ in 0..iterations {
                    seq += 1;
                    pair.now += Duration::from_millis(20);
                    if let Some(tx) = pair.browser.direct_api().stream_tx(&ssrc) {
                        tx.write_rtp(RtpWrite::new(
                            pt.into(),
                            seq.into(),
                            (seq * 160) as u32,
                            pair.now,
                            payload.as_slice(),
                        ));
                    }
                    let _ = pair.browser.handle_input(Input::Timeout(pair.now));
                    let mut datagrams = Vec::new();
                    while let Ok(output) = pair.browser.poll_output() {
                        match output {
                            Output::Timeout(_) => break,
                            Output::Transmit(t) => datagrams.push(t.contents.to_vec()),
                            Output::Event(Event::RtpPacket(p)) => {
                                black_box(p);
                            }
                            Output::Event(_) => {}
                        }
                    }
                    let started = clock();
                    for data in &datagrams {
                        pair.leg.receive(pair.now, BROWSER.parse().unwrap(), data);
                    }
                    if both_ways {
                        let packet = RtpFields {
                            pt,
                            seq: seq as u16,
                            timestamp: (seq * 160) as u32,
                            ssrc: 9,
                            marker: false,
                            payload: payload.clone(),
                        };
                        pair.leg.write_rtp(pair.now, stream, &packet).unwrap();
                    }
                    let mut out = Vec::new();
                    while let Some(output) = pair.leg.poll() {
                        out.push(output);
                    }
                    in_leg += started.elapsed();
                    for output in out {
                        if let WebRtcOutput::Rtp { .. } = output {
                            relayed += 1;
                        }
                        if let WebRtcOutput::Transmit { data, .. } = output {
                            let receive = Receive {
                                proto: Protocol::Udp,
                                source: OURS.parse().unwrap(),
                                destination: BROWSER.parse().unwrap(),
                                contents: data.as_slice().try_into().unwrap(),
                            };
                            let _ = pair.browser.handle_input(Input::Receive(pair.now, receive));
                        }
                    }
                }
                // Every browser packet came out of the leg in the clear.
                assert!(relayed + 2 >= iterations, "{relayed} of {iterations} packets decrypted");
                in_leg
            });
        });
    };
    run(c, "webrtc/audio_pcmu_both_ways", 0, 160, true);
    run(c, "webrtc/video_1100_bytes_one_way", 1, 1100, false);
}

criterion_group!(benches, bench);
criterion_main!(benches);
