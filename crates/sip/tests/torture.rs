//! Every RFC 4475 torture message through the parser and the request policy, checked against
//! what ../shared/sip/torture/rfc4475/index.tsv says it must get.

use bytes::Bytes;
use sambung_sip::{HeaderName, Message, Method, RequestPolicy};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/sip/torture/rfc4475")
}

/// What a message must get from a UAS like Sambung.
#[derive(Debug, PartialEq)]
enum Expect {
    /// Parses and passes the policy.
    Accept,
    /// Parses, then the policy answers with this status.
    Policy(u16),
    /// Parse error answered with this status.
    Reject(u16),
    /// Parse error with no answer (a broken response).
    Drop,
    /// No RFC expectation: must not panic.
    Either,
}

fn expected(file: &str) -> Expect {
    use Expect::*;
    match file {
        "badbranch.dat" | "test.dat" => Either,
        "baddn.dat" | "badinv01.dat" | "escruri.dat" | "insuf.dat" | "lwsruri.dat" | "lwsstart.dat" | "mcl01.dat"
        | "mismatch01.dat" | "multi01.dat" | "ncl.dat" | "regbadct.dat" | "trws.dat" => Reject(400),
        "badvers.dat" => Reject(505),
        "bigcode.dat" | "scalarlg.dat" => Drop,
        "intmeth.dat" => Policy(501),
        "unkscm.dat" | "novelsc.dat" => Policy(416),
        "sdp01.dat" => Policy(406),
        "baddate.dat" | "bcast.dat" | "cparam01.dat" | "esc01.dat" | "inv2543.dat" | "longreq.dat" | "lwsdisp.dat"
        | "noreason.dat" | "regaut01.dat" | "transports.dat" | "unreason.dat" | "wsinv.dat" => Accept,
        other => panic!("{other} is not in this test's table: add it"),
    }
}

#[test]
fn every_torture_message_gets_what_the_index_says() {
    let index = std::fs::read_to_string(dir().join("index.tsv")).expect("index.tsv");
    let policy = RequestPolicy::default();
    let mut checked = 0;
    for line in index.lines().skip(1) {
        let file = line.split('\t').next().unwrap();
        let bytes = Bytes::from(std::fs::read(dir().join(file)).unwrap());
        let got = match Message::parse(bytes) {
            Ok(Message::Request(r)) => match policy.check(&r) {
                Ok(()) => Expect::Accept,
                Err(rej) => {
                    let resp = rej.response(&r);
                    assert_eq!(resp.status, rej.status);
                    Expect::Policy(rej.status)
                }
            },
            Ok(Message::Response(_)) => Expect::Accept,
            Err(e) => match e.status() {
                Some(s) => {
                    let resp = e.error_response().expect("a request error has a response");
                    assert_eq!(resp.status, s);
                    assert!(!resp.reason.is_empty(), "{file}: the reason names the fault");
                    Expect::Reject(s)
                }
                None => Expect::Drop,
            },
        };
        let want = expected(file);
        if want != Expect::Either {
            assert_eq!(got, want, "{file}");
        }
        checked += 1;
    }
    let files = std::fs::read_dir(dir())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "dat"))
        .count();
    assert_eq!(checked, files, "every .dat file is in the index");
}

fn parse(file: &str) -> Message {
    Message::parse(Bytes::from(std::fs::read(dir().join(file)).unwrap())).unwrap()
}

#[test]
fn wsinv_every_element() {
    let Message::Request(r) = parse("wsinv.dat") else { panic!() };
    assert_eq!(r.method, Method::Invite);
    assert_eq!(r.max_forwards(), Some(68));
    assert_eq!(r.cseq().unwrap().seq, 9);
    assert_eq!(r.to().unwrap().tag(), Some("1918181833n"));
    assert_eq!(r.from().unwrap().tag(), Some("98asjd8"));
    assert_eq!(r.from().unwrap().display_name().unwrap(), "J Rosenberg \\\"");
    let vias: Vec<_> = r.vias().collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(r.headers.get(HeaderName::from("UnknownHeaderWithUnusualValue")).unwrap(), ";;,,;;,;");
    assert_eq!(
        r.headers.get(HeaderName::from("NewFangledHeader")).unwrap(),
        "newfangled value continued newfangled value"
    );
    assert_eq!(r.headers.get(HeaderName::Subject).unwrap(), "");
    let c: Vec<_> = r.contacts().collect();
    assert_eq!(c[0].params.value("q"), Some("0.33"));
    assert_eq!(r.body.len(), 150);
    // printed and parsed again, it is the same request
    let again = Message::parse(r.to_bytes()).unwrap();
    assert_eq!(again, Message::Request(r));
}

#[test]
fn escapes_are_decoded_once() {
    let Message::Request(r) = parse("esc01.dat") else { panic!() };
    let uri = r.uri.as_sip().unwrap();
    assert_eq!(uri.user_unescaped().unwrap(), "sips:user@example.com");
    let contact = r.contacts().next().unwrap();
    let cu = contact.uri.as_sip().unwrap();
    assert_eq!(cu.user_unescaped().unwrap(), "caller");
    assert_eq!(cu.params.value("n%61me"), Some("v%61lue%25%34%31"));
    assert_eq!(sambung_sip::text::unescape("v%61lue%25%34%31").unwrap(), "value%41");
}

#[test]
fn unknown_method_and_odd_characters_are_kept() {
    let Message::Request(r) = parse("intmeth.dat") else { panic!() };
    assert_eq!(r.method.as_str(), "!interesting-Method0123456789_*+`.%indeed'~");
    let uri = r.uri.as_sip().unwrap();
    assert_eq!(uri.password.as_deref(), Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"));
    assert_eq!(r.call_id(), Some("intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"));
    let printed = r.to_bytes();
    let raw = std::fs::read(dir().join("intmeth.dat")).unwrap();
    assert!(printed.starts_with(&raw[..raw.iter().position(|&b| b == b'\r').unwrap()]));
    assert!(String::from_utf8_lossy(&printed).contains("extensionHeader-!.%*+_`'~: \u{feff}大停電\r\n"));
}

#[test]
fn contact_params_without_angles_belong_to_the_header() {
    let Message::Request(r) = parse("cparam01.dat") else { panic!() };
    let c = r.contacts().next().unwrap();
    assert!(c.params.has("unknownparam"));
    assert!(c.uri.as_sip().unwrap().params.is_empty());
}

#[test]
fn rfc2543_invite_without_content_length_takes_the_rest() {
    let Message::Request(r) = parse("inv2543.dat") else { panic!() };
    assert!(!r.body.is_empty());
    assert!(r.top_via().unwrap().branch().is_none());
}

#[test]
fn responses_with_odd_reasons() {
    let Message::Response(r) = parse("noreason.dat") else { panic!() };
    assert_eq!((r.status, &*r.reason), (100, ""));
    let Message::Response(r) = parse("unreason.dat") else { panic!() };
    assert_eq!(r.status, 200);
    assert!(r.reason.contains("Ôgonowicz") || !r.reason.is_empty());
}
