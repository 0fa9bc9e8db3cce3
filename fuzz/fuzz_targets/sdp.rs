//! `SessionDescription::parse` on arbitrary bytes: never panics; an accepted description prints
//! to text that parses back to the same description, and printing that again gives the same
//! bytes. The typed attribute views (`rtpmap`, `fmtp`, `rtcp`, `crypto`, direction, `ptime`) and
//! what the relay does with every offer and answer (rewriting for the relay, the remote address,
//! codec negotiation) must not panic either; the attribute parsers that have a printer round-trip.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use sambung_media::codec::CodecKind;
use sambung_media::negotiate;
use sambung_media::offer_answer::{any_hold, has_common_codec, remote_media_all, rewrite_for_relay};
use sambung_media::sdp::{Codec, Crypto, Fmtp, Rtcp, SessionDescription};

fuzz_target!(|data: &[u8]| {
    let sdp = match SessionDescription::parse(data) {
        Ok(sdp) => sdp,
        Err(e) => {
            // An error names a line of the input (0 when none is to blame).
            let lines = data.split(|&b| b == b'\n').count();
            assert!(e.line <= lines, "error on line {} of {lines}: {e}", e.line);
            assert!(matches!(e.status(), 400 | 488));
            return;
        }
    };
    let printed = sdp.to_bytes();
    let again = SessionDescription::parse(&printed)
        .unwrap_or_else(|e| panic!("printed SDP does not parse: {e}\n{}", String::from_utf8_lossy(&printed)));
    assert_eq!(again, sdp, "re-parsed SDP differs\n{}", String::from_utf8_lossy(&printed));
    assert_eq!(again.to_bytes(), printed, "printing is not a fixed point");

    for attribute in sdp.attributes.iter().chain(sdp.media.iter().flat_map(|m| &m.attributes)) {
        let Some(value) = attribute.value.as_deref() else { continue };
        match attribute.name.as_str() {
            "rtpmap" => {
                if let Ok(codec) = Codec::parse_rtpmap(value) {
                    let printed = codec.to_rtpmap();
                    let reparsed = Codec::parse_rtpmap(printed.value.as_deref().unwrap_or_default());
                    assert_eq!(reparsed, Ok(codec), "rtpmap {value:?} printed as {printed}");
                }
            }
            "rtcp" => {
                if let Ok(rtcp) = Rtcp::parse(value) {
                    let printed = rtcp.to_attribute();
                    let reparsed = Rtcp::parse(printed.value.as_deref().unwrap_or_default());
                    assert_eq!(reparsed, Ok(rtcp), "rtcp {value:?} printed as {printed}");
                }
            }
            "fmtp" => {
                if let Ok(fmtp) = Fmtp::parse(value) {
                    let _ = fmtp.pairs().count();
                    let _ = fmtp.get("mode");
                }
            }
            "crypto" => {
                let _ = Crypto::parse(value);
            }
            _ => {}
        }
    }

    for media in &sdp.media {
        let _ = (media.codecs(), media.rtcp(), media.crypto(), media.ptime(), media.rtcp_mux(), media.has_ice());
        let _ = (sdp.connection_for(media), sdp.direction_for(media));
        for format in &media.formats {
            let _ = media.fmtp(format);
        }
        let _ = (negotiate::supported_formats(media), negotiate::telephone_events(media));
        let _ = (negotiate::choose_for_offerer(media), negotiate::answered_format(media, media));
    }
    let _ = (remote_media_all(&sdp), any_hold(&sdp), has_common_codec(&sdp, &sdp));

    // What the B2BUA does to an offer it transcodes: widen it with the engine's codecs, then
    // restrict the result to one negotiated format. Both must still print and parse back.
    let mut widened = sdp.clone();
    for media in &mut widened.media {
        negotiate::widen_offer(media, &CodecKind::ALL);
    }
    // A description equal to one already checked prints the same text (the types derive
    // `PartialEq`): only one that changed is printed and parsed again.
    if widened != sdp {
        round_trip(&widened, "widened");
    }
    let mut restricted = widened.clone();
    for (media, offered) in restricted.media.iter_mut().zip(&sdp.media) {
        if let Some(negotiated) = negotiate::choose_for_offerer(media) {
            negotiate::restrict(media, &negotiated);
            negotiate::retain_offered(media, offered);
        }
    }
    if restricted != widened && restricted != sdp {
        round_trip(&restricted, "restricted");
    }

    // What the relay sends on: the rewritten description must print and parse back as well.
    let ports: Vec<u16> = (0..sdp.media.len()).map(|i| 30000 + 2 * i as u16).collect();
    for relay in [IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)), IpAddr::V6(Ipv6Addr::LOCALHOST)] {
        round_trip(&rewrite_for_relay(&sdp, relay, &ports), "rewritten");
    }
});

/// A description the relay made prints to text that parses back to it.
fn round_trip(sdp: &SessionDescription, what: &str) {
    let printed = sdp.to_bytes();
    let again = SessionDescription::parse(&printed)
        .unwrap_or_else(|e| panic!("{what} SDP does not parse: {e}\n{}", String::from_utf8_lossy(&printed)));
    assert_eq!(&again, sdp, "{what} SDP re-parsed differs\n{}", String::from_utf8_lossy(&printed));
}
