//! Real session descriptions (RFC 3264, RFC 4317, baresip, Linphone, Zoiper, Chromium) through
//! the parser, the printer and the offer/answer helpers.

mod common;

use std::net::{IpAddr, SocketAddr};

use sambung_media::offer_answer::{
    RemoteMedia, any_hold, common_codecs, has_common_codec, is_hold, remote_media, remote_media_all, rewrite_for_relay,
    streams_compatible,
};
use sambung_media::sdp::{Attribute, Codec, Connection, Direction, MediaType, Proto, SessionDescription};

fn sdp(name: &str) -> SessionDescription {
    common::get(name).parse().unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn relay() -> IpAddr {
    "198.51.100.1".parse().unwrap()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn names(codecs: &[Codec]) -> Vec<&str> {
    codecs.iter().map(|c| c.name.as_str()).collect()
}

#[test]
fn every_vector_prints_back_byte_for_byte() {
    for (name, text) in common::all() {
        let parsed: SessionDescription = text.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(parsed.to_string(), text, "{name}");
        let lf = text.replace("\r\n", "\n");
        assert_eq!(SessionDescription::parse(lf.as_bytes()).unwrap(), parsed, "{name} with LF");
    }
}

#[test]
fn baresip_offer() {
    let offer = sdp("baresip_offer");
    assert_eq!(offer.attribute("tool"), Some("baresip 0.6.3"));
    let audio = &offer.media[0];
    assert_eq!(names(&audio.codecs()), ["PCMU", "PCMA", "telephone-event"]);
    assert_eq!(audio.fmtp("101").map(|f| f.params), Some("0-15".into()));
    assert_eq!((audio.ptime(), audio.direction()), (Some(20), Some(Direction::SendRecv)));
    let remote = remote_media(&offer, audio).unwrap();
    assert_eq!(remote, RemoteMedia { rtp: addr("10.0.2.15:16906"), rtcp: addr("10.0.2.15:16907"), rtcp_mux: false });

    let relayed = rewrite_for_relay(&offer, relay(), &[30000]);
    let expected = common::get("baresip_offer")
        .replace("c=IN IP4 10.0.2.15", "c=IN IP4 198.51.100.1")
        .replace("m=audio 16906", "m=audio 30000")
        .replace("1140145081 1649997976", "1140145081 1649997977");
    assert_eq!(relayed.to_string(), expected);
    // The same input gives the same output: an unchanged re-offer stays unchanged.
    assert_eq!(rewrite_for_relay(&offer, relay(), &[30000]), relayed);
    assert_eq!(rewrite_for_relay(&relayed, relay(), &[30000]), relayed);
}

#[test]
fn baresip_l16_static_and_dynamic_payload_types() {
    let offer = sdp("baresip_l16_offer");
    let codecs = offer.media[0].codecs();
    assert_eq!(codecs.len(), 13);
    assert_eq!(codecs[3], Codec { payload_type: 10, name: "L16".into(), clock_rate: 44100, channels: Some(2) });
    assert_eq!(offer.media[0].attributes_named("ebuacip").count(), 4);
}

#[test]
fn linphone_audio_and_video() {
    let offer = sdp("linphone_offer");
    assert_eq!(offer.bandwidths[0].value, 8000);
    assert_eq!(offer.attribute("rtcp-xr"), Some("rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics"));
    let (audio, video) = (&offer.media[0], &offer.media[1]);
    assert_eq!(names(&audio.codecs())[..5], ["opus", "speex", "speex", "PCMU", "PCMA"]);
    // Payload type 96 means opus in one section and VP8 in the other.
    assert_eq!(audio.rtpmap(96).map(|c| c.name), Some("opus".into()));
    assert_eq!(video.rtpmap(96).map(|c| c.name), Some("VP8".into()));
    assert_eq!(video.fmtp("97").and_then(|f| f.get("profile-level-id").map(String::from)), Some("42801F".into()));

    let relayed = rewrite_for_relay(&offer, relay(), &[30000, 30002]);
    assert_eq!((relayed.media[0].port, relayed.media[1].port), (30000, 30002));
    assert_eq!(relayed.connection, Some(Connection::new(relay())));
    assert!(relayed.media.iter().all(|m| m.connections.is_empty()));
    assert_eq!(relayed.media[1].attributes, video.attributes);
    assert_eq!(remote_media_all(&relayed)[1].map(|r| r.rtcp), Some(addr("198.51.100.1:30003")));
}

#[test]
fn zoiper_sdes_crypto_passes_through() {
    let offer = sdp("zoiper_sdes_offer");
    let audio = &offer.media[0];
    assert_eq!(audio.proto, Proto::RtpSavp);
    assert!(audio.proto.is_secure() && audio.proto.is_rtp());
    let crypto = audio.crypto();
    assert_eq!(crypto.iter().map(|c| c.tag).collect::<Vec<_>>(), [5, 6, 1, 2]);
    assert_eq!(crypto[2].suite, "AES_CM_128_HMAC_SHA1_80");
    assert_eq!(crypto[2].key_params[0].info, "WVNfX19zZW1jdGwgKiI7NTc1BqOA1Q6YhLbGTKPC");
    let relayed = rewrite_for_relay(&offer, relay(), &[30000]);
    assert_eq!(relayed.media[0].attributes, audio.attributes);
    assert_eq!(relayed.origin.session_version, 1);
}

#[test]
fn chrome_offer_loses_ice_and_keeps_dtls() {
    let offer = sdp("chrome_offer");
    let audio = &offer.media[0];
    assert!(audio.has_ice());
    assert_eq!(audio.proto, Proto::UdpTlsRtpSavpf);
    assert_eq!(
        names(&audio.codecs()),
        ["opus", "red", "G722", "PCMU", "PCMA", "CN", "telephone-event", "telephone-event"]
    );
    let remote = remote_media(&offer, audio).unwrap();
    assert_eq!(remote, RemoteMedia { rtp: addr("49.255.202.246:64457"), rtcp: remote.rtp, rtcp_mux: true });
    // Bundled video: port 9 and 0.0.0.0, the address left to ICE.
    assert!(is_hold(&offer, &offer.media[1]));

    let relayed = rewrite_for_relay(&offer, relay(), &[30000, 30002]);
    for (before, after) in offer.media.iter().zip(&relayed.media) {
        assert!(!after.has_ice());
        let kept: Vec<&Attribute> = before.attributes.iter().filter(|a| !a.is_ice() && a.name != "rtcp").collect();
        let after_kept: Vec<&Attribute> = after.attributes.iter().filter(|a| a.name != "rtcp").collect();
        assert_eq!(kept, after_kept);
        assert_eq!(after.connections, [Connection::new(relay())]);
    }
    assert_eq!(relayed.media[0].attribute("rtcp"), Some("30001 IN IP4 198.51.100.1"));
    assert_eq!(relayed.media[1].attribute("rtcp"), Some("30003 IN IP4 198.51.100.1"));
    assert!(relayed.media[0].has_attribute("fingerprint") && relayed.media[0].rtcp_mux());
    assert_eq!(relayed.attributes, offer.attributes);
    assert_eq!(relayed.origin.session_version, 3);
}

#[test]
fn rfc3264_basic_exchange() {
    let (offer, answer, reoffer) = (sdp("rfc3264_10_1_offer"), sdp("rfc3264_10_1_answer"), sdp("rfc3264_10_1_reoffer"));
    assert_eq!(offer.session_name, " ");
    assert!(has_common_codec(&offer, &answer));
    let compatible: Vec<bool> = offer.media.iter().zip(&answer.media).map(|(o, a)| streams_compatible(o, a)).collect();
    assert_eq!(compatible, [true, false, true]);
    // The declined stream (port 0) stays declined when relayed.
    let relayed = rewrite_for_relay(&answer, relay(), &[30000, 30002, 30004]);
    assert_eq!(relayed.media.iter().map(|m| m.port).collect::<Vec<_>>(), [30000, 0, 30004]);
    // Host names are not addresses a relay can send to: latching finds the endpoint.
    assert_eq!(remote_media_all(&answer), [None, None, None]);
    assert_eq!(reoffer.media[3].direction(), Some(Direction::RecvOnly));
    assert_eq!(reoffer.media[3].codecs()[0].name, "telephone-events");
}

#[test]
fn rfc4317_codec_selection() {
    let offer = sdp("rfc4317_2_1_offer");
    let answer = sdp("rfc4317_2_1_answer");
    assert_eq!(names(&common_codecs(&offer.media[0], &answer.media[0])), ["PCMU"]);
    assert_eq!(names(&common_codecs(&offer.media[1], &answer.media[1])), ["MPV"]);
    // §2.3: iLBC as 97 in the offer and 99 in the answer is the same codec.
    let other = sdp("rfc4317_2_3_answer");
    let common = common_codecs(&offer.media[0], &other.media[0]);
    assert_eq!((common[0].name.as_str(), common[0].payload_type), ("iLBC", 97));
    assert!(has_common_codec(&offer, &other));
}

#[test]
fn rfc4317_media_level_connection() {
    let answer = sdp("rfc4317_2_8_answer");
    let video = &answer.media[1];
    assert_eq!(answer.connection_for(video).map(|c| c.address.as_str()), Some("otherhost.biloxi.example.com"));
    let relayed = rewrite_for_relay(&answer, relay(), &[30000, 30002]);
    assert_eq!(relayed.connection_for(&relayed.media[1]), Some(&Connection::new(relay())));
    assert_eq!(relayed.media[0].connections, []);
}

#[test]
fn rfc4317_hold() {
    let answer = sdp("rfc4317_3_1_answer");
    assert!(is_hold(&answer, &answer.media[0]) && any_hold(&answer));
    assert!(!any_hold(&sdp("rfc4317_2_1_answer")));
    // §5.2: the RFC 2543 style, c=0.0.0.0.
    let offer = sdp("rfc4317_5_2_offer");
    assert!(is_hold(&offer, &offer.media[0]));
    assert_eq!(remote_media(&offer, &offer.media[0]).map(|r| r.rtp), Some(addr("0.0.0.0:23442")));
    // The relayed offer names the relay, which sends nothing to 0.0.0.0.
    let relayed = rewrite_for_relay(&offer, relay(), &[30000]);
    assert!(!is_hold(&relayed, &relayed.media[0]));
    // A session-level direction applies to every section without its own.
    let mut session_hold = sdp("rfc4317_2_1_offer");
    session_hold.attributes.push(Attribute::property("inactive"));
    assert!(session_hold.media.iter().all(|m| is_hold(&session_hold, m)));
}

#[test]
fn rfc4317_no_media_3pcc() {
    let offer = sdp("rfc4317_5_1_offer");
    assert!(offer.media.is_empty());
    assert!(has_common_codec(&offer, &sdp("rfc4317_2_1_answer")));
    let relayed = rewrite_for_relay(&offer, relay(), &[]);
    assert_eq!(relayed.connection, Some(Connection::new(relay())));
    assert_eq!(relayed.origin.session_version, offer.origin.session_version + 1);
}

#[test]
fn no_common_codec() {
    let linphone = sdp("linphone_offer");
    let mut g729 = sdp("baresip_offer");
    g729.media[0].formats = vec!["18".into(), "101".into()];
    assert!(!has_common_codec(&linphone, &g729));
    // Sharing only telephone-event is sharing no codec.
    g729.media[0].formats = vec!["101".into()];
    assert_eq!(names(&common_codecs(&g729.media[0], &linphone.media[0])), ["telephone-event"]);
    assert!(!has_common_codec(&g729, &linphone));
    // Audio against video never matches.
    let mut video = linphone.clone();
    video.media[0].media = MediaType::Video;
    assert!(!streams_compatible(&video.media[0], &linphone.media[0]));
}

#[test]
fn rewrite_edge_cases() {
    let offer = sdp("linphone_offer");
    // Fewer relay ports than streams: the rest are declined.
    let relayed = rewrite_for_relay(&offer, relay(), &[30000]);
    assert_eq!((relayed.media[0].port, relayed.media[1].port), (30000, 0));
    // TCP media cannot go through a UDP relay.
    let mut msrp = offer.clone();
    msrp.media[1].proto = Proto::from("TCP/MSRP");
    assert_eq!(rewrite_for_relay(&msrp, relay(), &[30000, 30002]).media[1].port, 0);
    // An IPv6 relay.
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    let relayed = rewrite_for_relay(&offer, v6, &[30000, 30002]);
    assert!(relayed.to_string().contains("c=IN IP6 2001:db8::1\r\n"));
    // A section without c= and no session-level c= gets one of its own.
    let mut bare = offer.clone();
    bare.connection = None;
    let relayed = rewrite_for_relay(&bare, relay(), &[30000, 30002]);
    assert!(relayed.media.iter().all(|m| m.connections == [Connection::new(relay())]));
}
