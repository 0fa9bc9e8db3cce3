use std::time::Instant;

use super::*;
use crate::config::PbxConfig;
use crate::io::{Now, Outputs};
use crate::sip::Sip;

/// The time of each call: only the Unix seconds matter here.
#[allow(clippy::disallowed_methods)] // a test reads the real clock once, for a base instant
fn now() -> Now {
    Now { instant: Instant::now(), unix_secs: 1_700_000_000 }
}

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const KEY: &str = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n";
const OFFER: Role = Role::Offer;
const ANSWER: Role = Role::Answer { provisional: false };
const EARLY: Role = Role::Answer { provisional: true };

fn sdp(port: u16, m: &str, extra: &str) -> Bytes {
    Bytes::from(format!(
        "v=0\r\no=x 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio {port} {m}\r\n{extra}"
    ))
}

fn transport(secure: bool) -> LegTransport {
    LegTransport { secure, signalling_ip: "192.0.2.1".parse().unwrap() }
}

/// A call's media with its session open on fake ports, and what it needs to run.
struct Harness {
    sip: Sip,
    out: Outputs,
    random: Random,
    media: CallMedia,
}

impl Harness {
    fn take(
        &mut self,
        from: Side,
        body: &Bytes,
        transport: LegTransport,
        role: Role,
    ) -> Result<SessionDescription, MediaFailure> {
        let now = now();
        let mut ctx = Ctx { now, sip: &mut self.sip, out: &mut self.out, random: &mut self.random };
        self.media.take(&mut ctx, from, body, transport, role)
    }

    fn for_leg(&mut self, to: Side, sdp: &SessionDescription, secure: bool) -> Option<Bytes> {
        let now = now();
        let mut ctx = Ctx { now, sip: &mut self.sip, out: &mut self.out, random: &mut self.random };
        self.media.for_leg(&mut ctx, to, sdp, secure)
    }

    fn reject(&mut self, offerer: Side) {
        self.media.reject(offerer);
    }

    /// The commands the media runtime got.
    fn commands(&mut self) -> Vec<MediaCommand> {
        std::iter::from_fn(|| self.out.pop())
            .filter_map(|o| match o {
                crate::io::Output::Media(command) => Some(command),
                _ => None,
            })
            .collect()
    }
}

fn call(first: &Bytes) -> Harness {
    let streams = SessionDescription::parse(first).unwrap().media.len();
    let ports =
        [(0..streams).map(|i| 30_000 + 2 * i as u16).collect(), (0..streams).map(|i| 31_000 + 2 * i as u16).collect()];
    let media = CallMedia::new(7, LO, ports, true, &[CodecKind::Opus, CodecKind::Pcmu, CodecKind::Pcma], None);
    Harness { sip: Sip::new(&PbxConfig::default()), out: Outputs::default(), random: Random::seeded(1), media }
}

fn m_line(body: &Bytes) -> String {
    let text = String::from_utf8_lossy(body);
    text.lines().filter(|l| l.starts_with("m=") || l.starts_with("a=crypto")).collect::<Vec<_>>().join(" | ")
}

#[test]
fn a_refused_re_offer_leaves_the_roles_as_they_were() {
    let offer = sdp(4000, "RTP/AVP 0", "");
    let mut media = call(&offer);
    media.take(Side::A, &offer, transport(false), OFFER).unwrap();
    media.take(Side::B, &sdp(5000, "RTP/AVP 0", ""), transport(false), ANSWER).unwrap();
    // A re-offers (hold); B refuses it with 488.
    media.take(Side::A, &sdp(4000, "RTP/AVP 0", "a=sendonly\r\n"), transport(false), OFFER).unwrap();
    media.reject(Side::A);
    assert!(media.media.pending.is_none());
    // B's own re-offer is then an offer, and A's answer answers it.
    media.take(Side::B, &sdp(5002, "RTP/AVP 0", ""), transport(false), OFFER).unwrap();
    assert_eq!(media.media.pending.as_ref().map(|p| p.from), Some(Side::B));
    media.take(Side::A, &sdp(4000, "RTP/AVP 0", ""), transport(false), ANSWER).unwrap();
    assert!(media.media.pending.is_none());
}

#[test]
fn the_final_answer_decides_transcoding_not_an_early_one_from_another_fork() {
    let offer = sdp(4000, "RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000\r\n");
    let mut media = call(&offer);
    media.take(Side::A, &offer, transport(false), OFFER).unwrap();
    // Fork 1's 183 chooses Opus (added by us): transcoding, for now.
    media.take(Side::B, &sdp(5000, "RTP/AVP 96", "a=rtpmap:96 opus/48000/2\r\n"), transport(false), EARLY).unwrap();
    assert!(media.media.streams[0].transcode);
    // Fork 2 answers 200 with PCMU, the caller's own codec: relayed untouched.
    let out = media.take(Side::B, &sdp(6000, "RTP/AVP 0", ""), transport(false), ANSWER).unwrap();
    assert!(!media.media.streams[0].transcode);
    assert!(media.media.streams[0].legs[1].format.is_none());
    assert_eq!(out.media[0].formats, ["0"]);
}

#[test]
fn a_re_offer_follows_what_the_leg_negotiated() {
    let offer = sdp(4000, "RTP/AVP 0", "");
    let mut media = call(&offer);
    // A is on TLS but chose plain RTP.
    let out = media.take(Side::A, &offer, transport(true), OFFER).unwrap();
    media.for_leg(Side::B, &out, false).unwrap();
    let answer = media.take(Side::B, &sdp(5000, "RTP/AVP 0", ""), transport(false), ANSWER).unwrap();
    assert_eq!(
        m_line(&media.for_leg(Side::A, &answer, true).unwrap()),
        format!("m=audio {} RTP/AVP 0", media.media.leg_ports(Side::A)[0])
    );
    // B puts A on hold: A is re-offered plain RTP, as it negotiated.
    let hold = media.take(Side::B, &sdp(5000, "RTP/AVP 0", "a=sendonly\r\n"), transport(false), OFFER).unwrap();
    let to_a = media.for_leg(Side::A, &hold, true).unwrap();
    assert!(m_line(&to_a).contains("RTP/AVP 0") && !m_line(&to_a).contains("crypto"), "{}", m_line(&to_a));
}

#[test]
fn best_effort_srtp_is_answered_on_rtp_avp_with_our_key() {
    let offer = sdp(4000, "RTP/AVP 0", KEY);
    let mut media = call(&offer);
    let out = media.take(Side::A, &offer, transport(true), OFFER).unwrap();
    media.for_leg(Side::B, &out, false).unwrap();
    let answer = media.take(Side::B, &sdp(5000, "RTP/AVP 0", ""), transport(false), ANSWER).unwrap();
    let to_a = m_line(&media.for_leg(Side::A, &answer, true).unwrap());
    assert!(to_a.contains("RTP/AVP 0") && to_a.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80"), "{to_a}");
    assert!(!to_a.contains("PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"), "our own key, not the caller's");
}

#[test]
fn an_answer_must_keep_our_suite() {
    let offer = sdp(4000, "RTP/AVP 0", "");
    let mut media = call(&offer);
    let out = media.take(Side::A, &offer, transport(false), OFFER).unwrap();
    let to_b = media.for_leg(Side::B, &out, true).unwrap();
    let line = m_line(&to_b);
    assert!(line.contains("RTP/SAVP 0") && line.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80"), "{line}");
    let wrong_suite = sdp(5000, "RTP/SAVP 0", &KEY.replace("_80", "_32"));
    let refused = media.take(Side::B, &wrong_suite, transport(true), ANSWER);
    assert!(matches!(refused, Err(MediaFailure::NoCryptoSuite)), "{refused:?}");
    let fine = media.take(Side::B, &sdp(5000, "RTP/SAVP 0", KEY), transport(true), ANSWER);
    assert!(fine.is_ok());
    assert!(media.media.streams[0].legs[1].srtp);
}

#[test]
fn keys_over_clear_signalling_and_plain_rtp_where_refused() {
    let offer = sdp(4000, "RTP/SAVP 0", KEY);
    let mut media = call(&offer);
    assert!(matches!(media.take(Side::A, &offer, transport(false), OFFER), Err(MediaFailure::KeysInClear)));
    media.media.allow_plain = false;
    let plain = sdp(4000, "RTP/AVP 0", "");
    assert!(matches!(media.take(Side::A, &plain, transport(true), OFFER), Err(MediaFailure::PlainRtp)));
    let out = media.take(Side::A, &offer, transport(true), OFFER).unwrap();
    assert!(media.for_leg(Side::B, &out, false).is_none(), "a device without TLS cannot be offered SRTP keys");
    assert!(m_line(&media.for_leg(Side::B, &out, true).unwrap()).contains("RTP/SAVP"));
}

#[test]
fn the_runtime_is_told_each_legs_keys_and_where_it_receives() {
    let offer = sdp(4000, "RTP/SAVP 0", KEY);
    let mut media = call(&offer);
    let out = media.take(Side::A, &offer, transport(true), OFFER).unwrap();
    let to_b = media.for_leg(Side::B, &out, false).unwrap();
    assert!(m_line(&to_b).contains("RTP/AVP 0"), "{}", m_line(&to_b));
    media.take(Side::B, &sdp(5000, "RTP/AVP 0", ""), transport(false), ANSWER).unwrap();
    let commands = media.commands();
    let peers: Vec<_> = commands
        .iter()
        .filter_map(|c| match c {
            MediaCommand::SetPeer { session: 7, side, stream: 0, peer } => Some((*side, peer.rtp)),
            _ => None,
        })
        .collect();
    assert_eq!(
        peers,
        [(Side::A, Some("192.0.2.1:4000".parse().unwrap())), (Side::B, Some("192.0.2.1:5000".parse().unwrap()))]
    );
    let Some(MediaCommand::Configure { session: 7, stream: 0, legs }) =
        commands.iter().find(|c| matches!(c, MediaCommand::Configure { .. }))
    else {
        panic!("no configuration in {commands:?}")
    };
    let theirs = legs[0].srtp_in.as_ref().expect("A's packets are decrypted with A's key");
    assert_eq!(theirs.to_attribute().value, Some(KEY.trim_end().trim_start_matches("a=crypto:").to_owned()));
    assert!(legs[0].srtp_out.is_some() && legs[0].srtp_out != legs[0].srtp_in, "our own key toward A");
    assert!(legs[1].srtp_in.is_none() && legs[1].srtp_out.is_none(), "B is plain RTP");
}

#[test]
fn an_application_answers_with_the_callers_codec_in_the_clear_inside_the_server() {
    let offer = sdp(4000, "RTP/SAVP 8 0 101", &format!("a=rtpmap:101 telephone-event/8000\r\n{KEY}"));
    let mut media = call(&offer);
    media.media.allow_plain = false;
    let out = media.take(Side::A, &offer, transport(true), OFFER).unwrap();
    media.media.b_offer = Some(out);
    let now = now();
    let mut ctx = Ctx { now, sip: &mut media.sip, out: &mut media.out, random: &mut media.random };
    let answer = media.media.answer_in_process(&mut ctx, true).unwrap();
    assert_eq!(answer.format.audio.codec, CodecKind::Pcma, "the caller's first codec");
    assert_eq!(answer.format.telephone_event.map(|e| e.payload_type), Some(101));
    assert_eq!(answer.rate, 8000);
    let to_a = m_line(&answer.to_a);
    assert!(to_a.starts_with("m=audio 30000 RTP/SAVP 8 101") && to_a.contains("a=crypto:1"), "{to_a}");
    let commands = media.commands();
    assert!(!commands.iter().any(|c| matches!(c, MediaCommand::SetPeer { side: Side::B, .. })), "{commands:?}");
    let Some(MediaCommand::Configure { legs, .. }) =
        commands.iter().find(|c| matches!(c, MediaCommand::Configure { .. }))
    else {
        panic!("no configuration in {commands:?}")
    };
    assert!(legs[0].srtp_in.is_some() && legs[1].srtp_in.is_none() && legs[1].srtp_out.is_none());
    assert!(legs[0].format.is_none(), "nothing is transcoded");
}
