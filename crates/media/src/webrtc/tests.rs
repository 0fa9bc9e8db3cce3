//! A WebRTC leg against a browser stand-in: a second str0m `Rtc` driven through its SDP API as
//! a browser is (a full ICE agent, controlling, with its own strict SDP parser, which refuses
//! a description without BUNDLE, mids, ICE credentials or a fingerprint). Both ends run on one
//! virtual clock; datagrams pass between them in memory. What must hold: the browser accepts
//! our SDP, ICE and DTLS complete in both offer directions, and RTP crosses both ways, in the
//! clear on our side and SRTP on the wire.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::change::SdpOffer;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Candidate, Event, Input, Output, Rtc};

use super::*;
use crate::sdp::{MediaType, SessionDescription};
use str0m::media::KeyframeRequestKind;

const OURS: &str = "127.0.0.1:40000";
const BROWSER: &str = "127.0.0.1:50000";

struct Browser {
    rtc: Rtc,
    addr: SocketAddr,
    rtp: Vec<(Mid, str0m::rtp::RtpPacket)>,
    keyframe_requests: Vec<Mid>,
    /// The bitrate caps we told it (REMB), bits per second, by mid.
    remb: Vec<(Mid, u64)>,
    connected: bool,
}

impl Browser {
    fn new(now: Instant) -> Browser {
        // A browser: full ICE, frame mode off so that RTP can be written and read directly,
        // the codecs Chrome offers first.
        let mut rtc = Rtc::builder()
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_pcmu(true, false)
            .enable_vp8(true)
            .build(now);
        let addr: SocketAddr = BROWSER.parse().unwrap();
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        Browser { rtc, addr, rtp: Vec::new(), keyframe_requests: Vec::new(), remb: Vec::new(), connected: false }
    }
}

/// The one real instant the tests need; everything else is an offset from it.
#[allow(clippy::disallowed_methods)]
fn origin() -> Instant {
    Instant::now()
}

impl Browser {
    /// The browser's offer of `kinds`, each send and receive, as its SDP API makes it.
    fn offer(&mut self, kinds: &[MediaKind]) -> (SdpOffer, str0m::change::SdpPendingOffer) {
        let mut change = self.rtc.sdp_api();
        for kind in kinds {
            change.add_media(*kind, Direction::SendRecv, None, None, None);
        }
        change.apply().expect("the browser's offer")
    }
}

fn parse(text: &str) -> SessionDescription {
    SessionDescription::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Runs both ends for `span` of virtual time, passing datagrams; returns what our leg gave.
fn run(now: &mut Instant, span: Duration, leg: &mut WebRtcLeg, browser: &mut Browser) -> Vec<WebRtcOutput> {
    run_losing(now, span, leg, browser, &mut |_| false)
}

/// [`run`], losing on the way to the browser the datagrams `lose` picks.
fn run_losing(
    now: &mut Instant,
    span: Duration,
    leg: &mut WebRtcLeg,
    browser: &mut Browser,
    lose: &mut dyn FnMut(&[u8]) -> bool,
) -> Vec<WebRtcOutput> {
    let end = *now + span;
    let mut seen = Vec::new();
    while *now < end {
        // The browser's turn.
        let _ = browser.rtc.handle_input(Input::Timeout(*now));
        let mut to_us = Vec::new();
        loop {
            match browser.rtc.poll_output().expect("the browser") {
                Output::Timeout(_) => break,
                Output::Transmit(t) => to_us.push(t.contents.to_vec()),
                Output::Event(Event::Connected) => browser.connected = true,
                Output::Event(Event::RtpPacket(p)) => {
                    let mid = p.header.ext_vals.mid.unwrap_or_else(|| Mid::from("?"));
                    browser.rtp.push((mid, p));
                }
                Output::Event(Event::KeyframeRequest(r)) => browser.keyframe_requests.push(r.mid),
                Output::Event(Event::EgressBitrateEstimate(str0m::bwe::BweKind::Remb { estimate, mid })) => {
                    browser.remb.push((mid, estimate.as_u64()));
                }
                Output::Event(_) => {}
            }
        }
        for data in to_us {
            leg.receive(*now, browser.addr, &data);
        }
        // Ours.
        leg.handle_timeout(*now);
        while let Some(output) = leg.poll() {
            match output {
                WebRtcOutput::Transmit { data, .. } if lose(&data) => {}
                WebRtcOutput::Transmit { destination, data } => {
                    assert_eq!(destination, browser.addr, "we answer where the browser's checks came from");
                    let input = Input::Receive(
                        *now,
                        Receive {
                            proto: Protocol::Udp,
                            source: leg.local(),
                            destination: browser.addr,
                            contents: data.as_slice().try_into().unwrap(),
                        },
                    );
                    browser.rtc.handle_input(input).expect("the browser takes our datagram");
                }
                other => seen.push(other),
            }
        }
        *now += Duration::from_millis(5);
    }
    seen
}

fn identity(now: Instant) -> WebRtcIdentity {
    let identity = WebRtcIdentity::generate(now).expect("a certificate");
    assert!(identity.fingerprint().starts_with("sha-256 "), "{}", identity.fingerprint());
    assert_eq!(identity.fingerprint().len(), "sha-256 ".len() + 32 * 3 - 1);
    identity
}

/// The browser sends 50 Opus packets on its audio stream; we write 50 back.
fn exchange_audio(now: &mut Instant, plan: &WebRtcPlan, leg: &mut WebRtcLeg, browser: &mut Browser, stream: usize) {
    let opus = plan.streams[stream].formats.iter().find(|f| f.name == "opus").expect("Opus negotiated").pt;
    let mid = Mid::from(plan.streams[stream].mid.as_str());
    // The browser's own send stream, made by its offer or answer.
    let ssrc = browser.rtc.direct_api().stream_tx_by_mid(mid, None).map(|tx| tx.ssrc()).expect("the browser sends");
    let mut got = Vec::new();
    for i in 0..50u16 {
        let payload = vec![i as u8; 60];
        let tx = browser.rtc.direct_api().stream_tx(&ssrc).map(|tx| {
            tx.write_rtp(RtpWrite::new(
                opus.into(),
                SeqNo::from(1000 + u64::from(i)),
                960 * u32::from(i),
                *now,
                payload.as_slice(),
            ));
        });
        assert!(tx.is_some(), "the browser's stream");
        let packet = RtpFields {
            pt: opus,
            seq: 65_500u16.wrapping_add(i),
            timestamp: 4_000_000 + 960 * u32::from(i),
            ssrc: 7,
            marker: i == 0,
            payload: vec![0xA0 | (i as u8 & 0x0F); 40],
        };
        leg.write_rtp(*now, stream, &packet).unwrap();
        got.extend(run(now, Duration::from_millis(20), leg, browser));
    }
    got.extend(run(now, Duration::from_millis(300), leg, browser));
    let received: Vec<&RtpFields> = got
        .iter()
        .filter_map(|o| match o {
            WebRtcOutput::Rtp { stream: s, packet } if *s == stream => Some(packet),
            _ => None,
        })
        .collect();
    assert!(received.len() >= 48, "we got {} of the browser's 50 packets", received.len());
    assert!(received.iter().all(|p| p.pt == opus && p.ssrc == *ssrc && p.payload.len() == 60));
    let first = received[0].seq;
    assert!(received.windows(2).all(|w| w[1].seq == w[0].seq.wrapping_add(1)), "in order");
    assert_eq!(received[0].payload[0], (first - 1000) as u8);
    let heard: Vec<_> = browser.rtp.iter().filter(|(_, p)| *p.header.payload_type == opus).collect();
    assert!(heard.len() >= 48, "the browser got {} of our 50 packets", heard.len());
    // Sequence numbers crossed 65535 and go on, as we wrote them.
    let seqs: Vec<u16> = heard.iter().map(|(_, p)| p.header.sequence_number).collect();
    assert!(seqs.contains(&65_535) && seqs.contains(&0), "{seqs:?}");
    assert!(heard.iter().all(|(_, p)| p.payload.len() == 40));
}

#[test]
fn a_browser_offer_is_answered_and_audio_crosses_both_ways() {
    let mut now = origin();
    let identity = identity(now);
    let mut browser = Browser::new(now);
    let (offer, pending) = browser.offer(&[MediaKind::Audio, MediaKind::Video]);
    let offer = parse(&offer.to_sdp_string());
    assert!(is_webrtc(&offer));

    let remote = RemoteWebRtc::parse(&offer).unwrap();
    let mut plan =
        WebRtcPlan::answer(&remote, identity.fingerprint(), OURS.parse().unwrap(), 0xC0FFEE, |_, _| true).unwrap();
    let mut leg = WebRtcLeg::new(now, &identity, &plan, &remote).unwrap();
    let text = plan.description().to_string();
    for line in ["a=ice-lite", "a=setup:passive", "a=rtcp-mux", "a=group:BUNDLE ", "typ host", "opus/48000/2"] {
        assert!(text.contains(line), "{line} missing from our answer:\n{text}");
    }
    // The browser's own parser takes our answer.
    let answer = SdpAnswer::from_sdp_string(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    browser.rtc.sdp_api().accept_answer(pending, answer).expect("the browser accepts our answer");

    let outputs = run(&mut now, Duration::from_secs(2), &mut leg, &mut browser);
    assert!(outputs.contains(&WebRtcOutput::Connected), "{outputs:?}");
    assert!(leg.is_connected() && browser.connected);
    exchange_audio(&mut now, &plan, &mut leg, &mut browser, 0);

    // A keyframe request on video reaches the browser as RTCP (PLI) ...
    let video = Mid::from(plan.streams[1].mid.as_str());
    leg.request_keyframe(1).unwrap();
    run(&mut now, Duration::from_millis(200), &mut leg, &mut browser);
    assert_eq!(browser.keyframe_requests, [video]);
    // ... and one from the browser reaches us as an output for that stream.
    let rx =
        browser.rtc.direct_api().stream_rx_by_mid(video, None).map(|rx| rx.request_keyframe(KeyframeRequestKind::Fir));
    assert!(rx.is_some(), "the browser receives our video stream");
    let outputs = run(&mut now, Duration::from_millis(200), &mut leg, &mut browser);
    assert!(outputs.contains(&WebRtcOutput::KeyframeRequest { stream: 1, fir: true }), "{outputs:?}");
}

#[test]
fn our_offer_to_a_browser_is_answered_and_audio_crosses_both_ways() {
    let mut now = origin();
    let identity = identity(now);
    let mut browser = Browser::new(now);
    let streams = [(MediaType::Audio, default_formats(&MediaType::Audio))];
    let mut plan = WebRtcPlan::offer(&streams, identity.fingerprint(), OURS.parse().unwrap(), 0xBEEF).unwrap();
    let text = plan.description().to_string();
    assert!(text.contains("a=setup:actpass") && text.contains("a=ice-lite"), "{text}");
    let offer = SdpOffer::from_sdp_string(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    let answer = browser.rtc.sdp_api().accept_offer(offer).expect("the browser accepts our offer");
    let remote = RemoteWebRtc::parse(&parse(&answer.to_sdp_string())).unwrap();
    plan.accept_answer(&remote).expect("we take the browser's answer");
    // The browser kept what it has of ours: Opus and PCMU; it chose its DTLS role (str0m
    // takes passive facing an ice-lite offerer, Chrome active) and we take the other.
    let names: Vec<&str> = plan.streams[0].formats.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["opus", "PCMU"]);
    let ours = if remote.setup == Setup::Passive { Setup::Active } else { Setup::Passive };
    assert_ne!(remote.setup, Setup::ActPass);
    assert_eq!(plan.setup, ours);
    let mut leg = WebRtcLeg::new(now, &identity, &plan, &remote).unwrap();
    assert!(browser.rtc.codec_config().find(|p| p.spec().codec == Codec::Opus).is_some());

    let outputs = run(&mut now, Duration::from_secs(2), &mut leg, &mut browser);
    assert!(outputs.contains(&WebRtcOutput::Connected), "{outputs:?}");
    exchange_audio(&mut now, &plan, &mut leg, &mut browser, 0);
}

#[test]
fn descriptions_that_are_not_webrtc_are_refused_clearly() {
    let now = origin();
    let identity = identity(now);
    let plain =
        parse("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n");
    assert!(!is_webrtc(&plain));
    let error = RemoteWebRtc::parse(&plain).unwrap_err();
    assert!(matches!(error, WebRtcError::NotWebRtc(_)), "{error}");
    // Only codecs we cannot relay: nothing to answer with.
    let odd = parse(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
         m=audio 9 UDP/TLS/RTP/SAVPF 98\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:abcd\r\n\
         a=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 00:11\r\na=setup:actpass\r\n\
         a=rtcp-mux\r\na=rtpmap:98 ISAC/16000\r\n",
    );
    assert!(is_webrtc(&odd));
    let remote = RemoteWebRtc::parse(&odd).unwrap();
    let refused = WebRtcPlan::answer(&remote, identity.fingerprint(), OURS.parse().unwrap(), 1, |_, _| true);
    assert_eq!(refused.unwrap_err(), WebRtcError::NoMedia);
    // A plan not yet answered cannot make a leg: the DTLS role is open.
    let offer = WebRtcPlan::offer(
        &[(MediaType::Audio, default_formats(&MediaType::Audio))],
        identity.fingerprint(),
        OURS.parse().unwrap(),
        1,
    )
    .unwrap();
    assert!(WebRtcLeg::new(now, &identity, &offer, &remote).is_err());
    let bad = parse(&odd.to_string().replace("sha-256 00:11", "sha-256 zz"));
    assert!(matches!(RemoteWebRtc::parse(&bad), Err(WebRtcError::Fingerprint(_))));
}

#[test]
fn sequence_numbers_are_extended_across_wraps() {
    assert_eq!(extend_seq(None, 7), 7);
    assert_eq!(extend_seq(Some(65_535), 0), 65_536);
    assert_eq!(extend_seq(Some(65_536), 65_535), 65_535, "a late packet from before the wrap");
    assert_eq!(extend_seq(Some(3 << 16 | 10), 11), 3 << 16 | 11);
    assert_eq!(extend_seq(Some(5), 65_530), 65_530, "no wrap below zero");
}

#[test]
fn credentials_follow_the_seed_and_rfc_8445() {
    let (ufrag, pwd) = credentials(42);
    assert_eq!((ufrag.len(), pwd.len()), (8, 24));
    assert_eq!(credentials(42), (ufrag.clone(), pwd.clone()));
    assert_ne!(credentials(43).0, ufrag);
    assert!(ufrag.chars().chain(pwd.chars()).all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/'));
}

#[test]
fn rtp_fields_round_trip_through_bytes() {
    let fields =
        RtpFields { pt: 111, seq: 65_535, timestamp: 0xDEAD_BEEF, ssrc: 42, marker: true, payload: vec![1, 2, 3] };
    let mut out = Vec::new();
    fields.write(&mut out);
    assert_eq!(out.len(), 12 + 3);
    assert_eq!(RtpFields::parse(&out), Some(fields));
    assert_eq!(RtpFields::parse(&out[..11]), None);
}

#[test]
fn an_answer_keeps_only_what_the_other_side_allows() {
    let now = origin();
    let identity = identity(now);
    let mut browser = Browser::new(now);
    let (offer, _) = browser.offer(&[MediaKind::Audio]);
    let remote = RemoteWebRtc::parse(&parse(&offer.to_sdp_string())).unwrap();
    // The phone on the other side took PCMU only.
    let plan =
        WebRtcPlan::answer(&remote, identity.fingerprint(), OURS.parse().unwrap(), 5, |_, f| f.name == "PCMU").unwrap();
    let names: Vec<&str> = plan.streams[0].formats.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["PCMU"]);
    let none = WebRtcPlan::answer(&remote, identity.fingerprint(), OURS.parse().unwrap(), 5, |_, f| f.name == "G729");
    assert_eq!(none.unwrap_err(), WebRtcError::NoMedia);
}

/// H.264 as Chrome, Firefox and Safari offer it (their real `fmtp` lines: constrained baseline
/// `42e01f` and `42001f`, main `4d001f`, Safari's constrained high `640c1f` and `640c34`, and
/// `42e034`): every one is answered with its own payload type and parameters, unchanged, so a
/// phone that picked one gets exactly what the browser sends; the leg takes them all.
#[test]
fn h264_as_browsers_offer_it_is_answered_unchanged() {
    let now = origin();
    let identity = identity(now);
    let lines = [
        (102, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"),
        (104, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"),
        (108, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f"),
        (126, "profile-level-id=42e01f;level-asymmetry-allowed=1;packetization-mode=1"),
        (97, "profile-level-id=42e01f;level-asymmetry-allowed=1"),
        (98, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f"),
        (100, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c34"),
        (96, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e034"),
    ];
    let pts: Vec<String> = lines.iter().map(|(pt, _)| pt.to_string()).collect();
    let mut text = format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
         m=video 9 UDP/TLS/RTP/SAVPF {}\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:abcd\r\n\
         a=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 00:11:22\r\na=setup:actpass\r\n\
         a=sendrecv\r\na=rtcp-mux\r\n",
        pts.join(" ")
    );
    for (pt, fmtp) in &lines {
        text.push_str(&format!("a=rtpmap:{pt} H264/90000\r\na=rtcp-fb:{pt} nack pli\r\na=fmtp:{pt} {fmtp}\r\n"));
    }
    let remote = RemoteWebRtc::parse(&parse(&text)).unwrap();
    let mut plan = WebRtcPlan::answer(&remote, identity.fingerprint(), OURS.parse().unwrap(), 3, |_, _| true).unwrap();
    let answer = plan.description().to_string();
    for (pt, fmtp) in &lines {
        assert!(answer.contains(&format!("a=rtpmap:{pt} H264/90000")), "{pt} missing:\n{answer}");
        assert!(answer.contains(&format!("a=fmtp:{pt} {fmtp}")), "{pt}'s parameters changed:\n{answer}");
        assert!(answer.contains(&format!("a=rtcp-fb:{pt} nack pli")), "{pt} without PLI feedback:\n{answer}");
    }
    // A phone that took only Safari's constrained high profile: the browser is answered with it.
    let only =
        WebRtcPlan::answer(&remote, identity.fingerprint(), OURS.parse().unwrap(), 3, |_, f| f.pt == 100).unwrap();
    assert_eq!(only.streams[0].formats.iter().map(|f| f.pt).collect::<Vec<_>>(), [100]);
    // str0m takes every one of them as the leg's payload types.
    WebRtcLeg::new(now, &identity, &plan, &remote).expect("the leg takes the browsers' H.264 parameters");
}

/// Video toward a browser is kept for retransmission: a packet lost on the way is asked for
/// again by the browser (NACK, RFC 4585) and sent again from str0m's cache as RTX (RFC 4588),
/// which the browser offered and our answer kept.
#[test]
fn a_video_packet_lost_toward_the_browser_is_sent_again() {
    let mut now = origin();
    let identity = identity(now);
    let mut browser = Browser::new(now);
    let (offer, pending) = browser.offer(&[MediaKind::Audio, MediaKind::Video]);
    let offer_text = offer.to_sdp_string();
    let remote = RemoteWebRtc::parse(&parse(&offer_text)).unwrap();
    let mut plan = WebRtcPlan::answer(&remote, identity.fingerprint(), OURS.parse().unwrap(), 11, |_, _| true).unwrap();
    assert!(!plan.streams[1].rtx.is_empty(), "the browser offered RTX for its video: {offer_text}");
    let answer = plan.description().to_string();
    assert!(answer.contains("rtx/90000") && answer.contains("a=ssrc-group:FID"), "{answer}");
    let mut leg = WebRtcLeg::new(now, &identity, &plan, &remote).unwrap();
    browser.rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap()).unwrap();
    run(&mut now, Duration::from_secs(2), &mut leg, &mut browser);
    assert!(leg.is_connected());

    let vp8 = plan.streams[1].formats.iter().find(|f| f.name == "VP8").expect("VP8").pt;
    let lost_seq = 2010u16;
    let mut dropped = 0;
    for i in 0..30u16 {
        let packet = RtpFields {
            pt: vp8,
            seq: 2000 + i,
            timestamp: 90_000 + 3000 * u32::from(i),
            ssrc: 5,
            marker: true,
            payload: vec![0x10, 0, 0, 0x9d, 0x01, 0x2a, i as u8],
        };
        leg.write_rtp(now, 1, &packet).unwrap();
        // The packet with `lost_seq` never reaches the browser (SRTP keeps the header clear).
        let mut lose = |data: &[u8]| {
            let lost = dropped == 0 && data.len() > 12 && data[1] & 0x7f == vp8 && data[2..4] == lost_seq.to_be_bytes();
            dropped += usize::from(lost);
            lost
        };
        run_losing(&mut now, Duration::from_millis(40), &mut leg, &mut browser, &mut lose);
    }
    run(&mut now, Duration::from_millis(500), &mut leg, &mut browser);
    assert_eq!(dropped, 1, "one packet was lost on the way");
    let heard: Vec<u16> = browser
        .rtp
        .iter()
        .filter(|(_, p)| *p.header.payload_type == vp8)
        .map(|(_, p)| p.header.sequence_number)
        .collect();
    assert!(heard.contains(&lost_seq), "the lost packet came again: {heard:?}");
    assert!((2000..2030).all(|s| heard.contains(&s)), "every packet reached the browser: {heard:?}");
}

/// A cap on what the browser sends (the other side's `b=AS`) is in our answer and told to the
/// browser by REMB, again each second.
#[test]
fn the_browser_is_told_how_much_video_to_send() {
    let mut now = origin();
    let identity = identity(now);
    let mut browser = Browser::new(now);
    let (offer, pending) = browser.offer(&[MediaKind::Audio, MediaKind::Video]);
    let remote = RemoteWebRtc::parse(&parse(&offer.to_sdp_string())).unwrap();
    let mut plan = WebRtcPlan::answer(&remote, identity.fingerprint(), OURS.parse().unwrap(), 13, |_, _| true).unwrap();
    plan.streams[1].max_bitrate = Some(384_000);
    let answer = plan.description().to_string();
    assert!(answer.contains("b=AS:384\r\n"), "{answer}");
    let mut leg = WebRtcLeg::new(now, &identity, &plan, &remote).unwrap();
    browser.rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap()).unwrap();
    run(&mut now, Duration::from_secs(4), &mut leg, &mut browser);
    let video = Mid::from(plan.streams[1].mid.as_str());
    let told: Vec<u64> = browser.remb.iter().filter(|(mid, _)| *mid == video).map(|(_, bps)| *bps).collect();
    assert!(told.len() >= 2, "REMB each second: {:?}", browser.remb);
    assert!(told.iter().all(|bps| (380_000..=385_000).contains(bps)), "{told:?}");
    assert!(browser.remb.iter().all(|(mid, _)| *mid == video), "no cap on audio: {:?}", browser.remb);
}

/// The phone's loss reports steer what the browser is told it may send: heavy loss brings the
/// REMB figure below the phone's cap at once, none lets it climb back to the cap; audio is
/// never capped.
#[test]
fn the_other_sides_losses_lower_what_the_browser_may_send() {
    let mut now = origin();
    let identity = identity(now);
    let mut browser = Browser::new(now);
    let (offer, pending) = browser.offer(&[MediaKind::Audio, MediaKind::Video]);
    let remote = RemoteWebRtc::parse(&parse(&offer.to_sdp_string())).unwrap();
    let mut plan = WebRtcPlan::answer(&remote, identity.fingerprint(), OURS.parse().unwrap(), 17, |_, _| true).unwrap();
    plan.streams[1].max_bitrate = Some(1_000_000);
    let answer = plan.description().to_string();
    let mut leg = WebRtcLeg::new(now, &identity, &plan, &remote).unwrap();
    browser.rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap()).unwrap();
    run(&mut now, Duration::from_secs(2), &mut leg, &mut browser);
    let video = Mid::from(plan.streams[1].mid.as_str());
    let last = |browser: &Browser| browser.remb.iter().rev().find(|(mid, _)| *mid == video).map(|(_, bps)| *bps);
    assert!(last(&browser).is_some_and(|bps| (990_000..=1_005_000).contains(&bps)), "{:?}", browser.remb);
    // Three reports of 30 % lost, a second apart: about 0.85^3 of the cap.
    assert_eq!(leg.report_loss(now, 0, 77), None, "audio takes no loss-based cap");
    for _ in 0..3 {
        leg.report_loss(now, 1, 77);
        run(&mut now, Duration::from_secs(1), &mut leg, &mut browser);
    }
    let lowered = last(&browser).unwrap();
    assert!((600_000..=630_000).contains(&lowered), "after 30 % losses: {lowered} ({:?})", browser.remb);
    // No loss for a while: back up to the cap, not beyond.
    for _ in 0..15 {
        leg.report_loss(now, 1, 0);
        run(&mut now, Duration::from_secs(1), &mut leg, &mut browser);
    }
    let recovered = last(&browser).unwrap();
    assert!((990_000..=1_005_000).contains(&recovered), "after no loss: {recovered}");
    assert!(browser.remb.iter().all(|(mid, _)| *mid == video), "no cap on audio: {:?}", browser.remb);
}
