//! Property tests: the parser never panics, and whatever it accepts prints back to the same
//! structure (`parse(print(parse(x))) == parse(x)`).

mod common;

use std::net::IpAddr;

use proptest::prelude::*;
use sambung_media::offer_answer::{has_common_codec, remote_media_all, rewrite_for_relay};
use sambung_media::sdp::{
    Attribute, Bandwidth, Connection, MediaDescription, MediaType, Origin, Proto, SessionDescription, Timing,
};

/// Parses, and when that succeeds checks the round trip and runs every helper over the result.
fn check(input: &[u8]) -> Result<(), TestCaseError> {
    let Ok(parsed) = SessionDescription::parse(input) else {
        return Ok(());
    };
    let printed = parsed.to_string();
    let reparsed = SessionDescription::parse(printed.as_bytes());
    prop_assert_eq!(reparsed.as_ref(), Ok(&parsed), "printed:\n{}", printed);
    for media in &parsed.media {
        let _ = (media.codecs(), media.crypto(), media.rtcp(), media.direction(), media.ptime(), media.fmtp("0"));
    }
    let _ = (remote_media_all(&parsed), has_common_codec(&parsed, &parsed));
    let relay: IpAddr = "192.0.2.1".parse().unwrap();
    let relayed = rewrite_for_relay(&parsed, relay, &[20000, 20002]);
    prop_assert_eq!(SessionDescription::parse(relayed.to_string().as_bytes()), Ok(relayed));
    Ok(())
}

/// A line an SDP parser might meet: well-formed, almost well-formed, or noise.
fn sdp_line() -> impl Strategy<Value = String> {
    prop_oneof![
        "[vosiuepcbtrzkam]=[ -~]{0,40}",
        "m=(audio|video|image) [0-9]{1,6}(/[0-9])? (RTP/AVP|RTP/SAVPF|udptl) [0-9 ]{0,12}",
        "c=IN IP[46] [0-9a-f.:]{1,20}(/[0-9]{1,3})?",
        "a=(rtpmap|fmtp|rtcp|crypto|candidate|sendonly|ptime)(:[ -~]{0,30})?",
        "b=[A-Z]{1,4}:[0-9]{0,21}",
        "t=[0-9]{0,21} [0-9]{0,3}",
        "o=[!-~]{1,5} [0-9]{1,5} [0-9+-]{1,21} IN IP4 [!-~]{1,9}",
        "[^\n]{0,20}",
    ]
}

/// Text that cannot end or break a line.
fn text() -> impl Strategy<Value = String> {
    "[^\r\n\u{0}]{0,16}"
}

/// A token without whitespace.
fn token() -> impl Strategy<Value = String> {
    "[!-~]{1,10}"
}

fn connection() -> impl Strategy<Value = Connection> {
    (token(), token(), token()).prop_map(|(net_type, addr_type, address)| Connection { net_type, addr_type, address })
}

fn bandwidth() -> impl Strategy<Value = Bandwidth> {
    ("[!-9;-~]{1,6}", any::<u64>()).prop_map(|(kind, value)| Bandwidth { kind, value })
}

fn attribute() -> impl Strategy<Value = Attribute> {
    ("[!-9;-~]{1,10}", proptest::option::of(text())).prop_map(|(name, value)| Attribute { name, value })
}

fn media() -> impl Strategy<Value = MediaDescription> {
    (
        (token(), any::<u16>(), proptest::option::of(any::<u16>()), token(), proptest::collection::vec(token(), 0..4)),
        (
            proptest::option::of(text()),
            proptest::collection::vec(connection(), 0..2),
            proptest::collection::vec(bandwidth(), 0..2),
            proptest::option::of(text()),
            proptest::collection::vec(attribute(), 0..6),
        ),
    )
        .prop_map(
            |((media, port, port_count, proto, formats), (information, connections, bandwidths, key, attributes))| {
                MediaDescription {
                    media: MediaType::from(media.as_str()),
                    port,
                    port_count,
                    proto: Proto::from(proto.as_str()),
                    formats,
                    information,
                    connections,
                    bandwidths,
                    key,
                    attributes,
                }
            },
        )
}

fn session() -> impl Strategy<Value = SessionDescription> {
    let origin = (token(), token(), any::<u64>(), token(), token(), token()).prop_map(
        |(username, session_id, session_version, net_type, addr_type, address)| Origin {
            username,
            session_id,
            session_version,
            net_type,
            addr_type,
            address,
        },
    );
    let timing = (any::<u64>(), any::<u64>(), proptest::collection::vec(text(), 0..2))
        .prop_map(|(start, stop, repeats)| Timing { start, stop, repeats });
    (
        (origin, text(), proptest::option::of(text()), proptest::option::of(text())),
        (proptest::collection::vec(text(), 0..2), proptest::collection::vec(text(), 0..2)),
        (proptest::option::of(connection()), proptest::collection::vec(bandwidth(), 0..2)),
        (proptest::collection::vec(timing, 0..3), proptest::option::of(text()), proptest::option::of(text())),
        (proptest::collection::vec(attribute(), 0..5), proptest::collection::vec(media(), 0..4)),
    )
        .prop_map(
            |(
                (origin, session_name, information, uri),
                (emails, phones),
                (connection, bandwidths),
                (times, time_zones, key),
                (attributes, media),
            )| SessionDescription {
                origin,
                session_name,
                information,
                uri,
                emails,
                phones,
                connection,
                bandwidths,
                times,
                time_zones,
                key,
                attributes,
                media,
            },
        )
}

/// A real description with line-level damage: lines removed, doubled, swapped, replaced,
/// cut short.
fn mutated_vector() -> impl Strategy<Value = String> {
    let vectors = common::all();
    let count = vectors.len();
    (
        0..count,
        proptest::collection::vec(
            (0..5u8, any::<prop::sample::Index>(), any::<prop::sample::Index>(), sdp_line()),
            0..6,
        ),
    )
        .prop_map(move |(which, edits)| {
            let mut lines: Vec<String> = vectors[which].1.split("\r\n").map(String::from).collect();
            for (op, a, b, line) in edits {
                if lines.is_empty() {
                    break;
                }
                let (i, j) = (a.index(lines.len()), b.index(lines.len()));
                match op {
                    0 => drop(lines.remove(i)),
                    1 => lines.insert(i, lines[j].clone()),
                    2 => lines.swap(i, j),
                    3 => lines[i] = line,
                    _ => {
                        let cut = b.index(lines[i].len() + 1);
                        let cut = (0..=cut).rev().find(|&c| lines[i].is_char_boundary(c)).unwrap_or(0);
                        lines[i].truncate(cut);
                    }
                }
            }
            lines.join("\r\n")
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn garbage_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(&input)?;
    }

    #[test]
    fn sdp_like_lines_never_panic(lines in proptest::collection::vec(sdp_line(), 0..24), lf in any::<bool>()) {
        let mut text = String::from("v=0\r\n");
        text.push_str(&lines.join(if lf { "\n" } else { "\r\n" }));
        check(text.as_bytes())?;
    }

    #[test]
    fn damaged_real_descriptions_round_trip(text in mutated_vector()) {
        check(text.as_bytes())?;
    }

    #[test]
    fn generated_descriptions_round_trip(sdp in session()) {
        let printed = sdp.to_string();
        prop_assert_eq!(SessionDescription::parse(printed.as_bytes()), Ok(sdp), "printed:\n{}", printed);
    }
}
