//! Property tests of the parser and the printer.
//!
//! Requests and responses are generated from their parts (methods including extension tokens;
//! SIP, SIPS, tel and unknown-scheme URIs with users, passwords, escapes, IPv4, IPv6 and domain
//! hosts, ports, parameters and headers; Via stacks with parameters, some lines comma-combined;
//! From/To with quoted and token display names and tags; Contact lists and `*`; CSeq; Call-ID;
//! Max-Forwards; unknown headers with odd but legal values; bodies with Content-Length) and
//! must survive printing and parsing unchanged:
//!
//! * `Message::parse(m.to_bytes()) == m`, and printing is a fixed point;
//! * the same message written the way other implementations write it (compact and
//!   mixed-case names, white space around the colon, folded lines) parses to the same message;
//! * parsing arbitrary bytes, or a valid message with bytes changed, never panics, and whatever
//!   parses prints to bytes that parse back to it.

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use sambung_sip::{
    Header, HeaderName, Headers, Host, Message, Method, Param, Params, Request, Response, SipStr, SipUri, Uri,
    frame_stream,
};
use std::net::{Ipv4Addr, Ipv6Addr};

// ---------------------------------------------------------------------------------------------
// Building blocks (RFC 3261 §25.1)

const TOKEN: &str = "[A-Za-z0-9.!%*_+`'~-]{1,10}";
/// `user` characters: unreserved, user-unreserved and escapes (printable ASCII only, so the
/// escapes decode to UTF-8).
const USER: &str = "([A-Za-z0-9_.!~*'()&=+$,;?/-]|%[2-7][0-9A-Fa-f]){1,12}";
/// A user that can also stand in an `addr-spec` without angle brackets (no `;`, `?`, `,`).
const PLAIN_USER: &str = "([A-Za-z0-9_.!~*'()&=+$/-]|%[2-7][0-9A-F]){1,12}";
const PASSWORD: &str = "([A-Za-z0-9_.!~*'()&=+$,-]|%[2-7][0-9A-F]){0,10}";
const URI_PARAM_NAME: &str = "[a-z][a-z0-9-]{0,8}|[A-Za-z0-9_.!~*'()\\[\\]/:&+$-]{1,8}";
const URI_PARAM_VALUE: &str = "([A-Za-z0-9_.!~*'()\\[\\]/:&+$-]|%[2-7][0-9A-F]){0,10}";
/// A quoted string with escapes and any non-control characters.
const QUOTED: &str = "\"([^\"\\\\\\x00-\\x1f\\x7f]|\\\\[ -~]){0,12}\"";

fn token() -> BoxedStrategy<String> {
    TOKEN.boxed()
}

fn method() -> BoxedStrategy<Method> {
    prop_oneof![
        6 => prop::sample::select(vec![
            Method::Invite,
            Method::Ack,
            Method::Cancel,
            Method::Bye,
            Method::Options,
            Method::Register,
            Method::Prack,
            Method::Subscribe,
            Method::Notify,
            Method::Publish,
            Method::Info,
            Method::Refer,
            Method::Message,
            Method::Update,
        ]),
        2 => token()
            .prop_map(|t| Method::from_token(SipStr::from(t)))
            .prop_filter("an extension method", |m| matches!(m, Method::Extension(_))),
    ]
    .boxed()
}

fn host() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "[A-Za-z0-9][A-Za-z0-9_-]{0,8}(\\.[A-Za-z0-9][A-Za-z0-9_-]{0,8}){0,3}",
        2 => any::<[u8; 4]>().prop_map(|a| Ipv4Addr::from(a).to_string()),
        2 => any::<[u16; 8]>().prop_map(|a| format!("[{}]", Ipv6Addr::from(a))),
        1 => prop::sample::select(vec!["[::1]", "[2001:db8::10]", "[::ffff:192.0.2.1]", "localhost"]).prop_map(str::to_owned),
    ].boxed()
}

fn port() -> BoxedStrategy<Option<u16>> {
    prop_oneof![2 => Just(None), 1 => any::<u16>().prop_map(Some), 1 => Just(Some(5060))].boxed()
}

fn uri_params() -> BoxedStrategy<Vec<(String, Option<String>)>> {
    let known = prop::sample::select(vec![
        ("transport", Some("udp")),
        ("transport", Some("TLS")),
        ("lr", None),
        ("user", Some("phone")),
        ("maddr", Some("192.0.2.5")),
        ("ttl", Some("16")),
        ("method", Some("INVITE")),
        ("ob", None),
    ])
    .prop_map(|(n, v)| (n.to_owned(), v.map(str::to_owned)));
    let any_param = (URI_PARAM_NAME, prop::option::of(URI_PARAM_VALUE));
    vec(prop_oneof![known, any_param], 0..4).boxed()
}

/// A SIP or SIPS URI. `headers` allows a `?` part (not in a Request-URI), `plain` keeps to
/// what an `addr-spec` without angle brackets may hold.
fn sip_uri(headers: bool, plain: bool) -> BoxedStrategy<SipUri> {
    let user = if plain { PLAIN_USER } else { USER };
    (
        any::<bool>(),
        prop::option::of((user, prop::option::of(PASSWORD))),
        host(),
        port(),
        if plain { Just(vec![]).boxed() } else { uri_params().boxed() },
        if headers {
            prop::option::of(
                "[A-Za-z][A-Za-z0-9-]{0,6}=([A-Za-z0-9_.-]|%[2-7][0-9A-F]){0,8}(&[a-z]{1,5}=[a-z0-9]{0,5}){0,2}",
            )
            .boxed()
        } else {
            Just(None).boxed()
        },
    )
        .prop_map(move |(secure, userinfo, host, port, params, headers)| {
            let (user, password) = match userinfo {
                Some((u, p)) if !plain => (Some(u), p),
                Some((u, _)) => (Some(u), None),
                None => (None, None),
            };
            SipUri {
                secure,
                user: user.map(SipStr::from),
                password: password.map(SipStr::from),
                host: Host::from(host.as_str()),
                port,
                params: Params(
                    params
                        .into_iter()
                        .map(|(n, v)| Param { name: SipStr::from(n), value: v.map(SipStr::from) })
                        .collect(),
                ),
                headers: headers.map(SipStr::from),
            }
        })
        .boxed()
}

fn other_uri() -> BoxedStrategy<Uri> {
    let tel = "\\+?[0-9][0-9-]{2,14}(;[a-z-]{1,10}=[A-Za-z0-9.+-]{1,10}){0,2}"
        .prop_map(|rest| Uri::Other { scheme: SipStr::from("tel"), rest: SipStr::from(rest) });
    let unknown = (
        "[a-zA-Z][a-zA-Z0-9+.-]{0,7}"
            .prop_filter("not sip or sips", |s| !s.eq_ignore_ascii_case("sip") && !s.eq_ignore_ascii_case("sips")),
        "[A-Za-z0-9/._~:@!$&'()*+,;=%-]{1,20}",
    )
        .prop_map(|(scheme, rest)| Uri::Other { scheme: SipStr::from(scheme), rest: SipStr::from(rest) });
    prop_oneof![tel, unknown].boxed()
}

fn request_uri() -> BoxedStrategy<Uri> {
    prop_oneof![4 => sip_uri(false, false).prop_map(Uri::Sip), 1 => other_uri()].boxed()
}

fn uri_text(u: &Uri) -> String {
    u.to_string()
}

/// `;name[=value]` header parameters: tokens, IPv6-ish values, quoted strings.
fn header_params() -> BoxedStrategy<String> {
    let value = prop_oneof![
        3 => token(),
        1 => QUOTED.prop_map(|q| q.to_string()),
        1 => Just("[2001:db8::1]".to_owned()),
    ];
    vec((token(), prop::option::of(value), prop::sample::select(vec!["", " "])), 0..3)
        .prop_map(|ps| {
            ps.into_iter()
                .map(|(n, v, sp)| match v {
                    Some(v) => format!("{sp};{sp}{n}{sp}={sp}{v}"),
                    None => format!(";{n}"),
                })
                .collect()
        })
        .boxed()
}

fn display_name() -> BoxedStrategy<Option<String>> {
    prop_oneof![
        2 => Just(None),
        2 => "[A-Za-z0-9.!%*_+`'~-]{1,8}( [A-Za-z0-9.!%*_+`'~-]{1,8}){0,2}".prop_map(Some),
        2 => QUOTED.prop_map(Some),
        1 => "\"[\\p{L} ]{0,8}\"".prop_map(Some),
    ]
    .boxed()
}

/// A From, To or Contact value: `name-addr` or `addr-spec`, then `params` (a tag, say).
fn name_addr(params: impl Strategy<Value = String> + 'static) -> BoxedStrategy<String> {
    let bracketed = (
        display_name(),
        prop_oneof![3 => sip_uri(true, false).prop_map(Uri::Sip), 1 => other_uri()],
        prop::sample::select(vec!["", " ", "  "]),
    )
        .prop_map(|(d, u, sp)| match d {
            Some(d) => format!("{d}{sp}<{}>", uri_text(&u)),
            None => format!("<{}>", uri_text(&u)),
        });
    let addr_spec = sip_uri(false, true).prop_map(|u| uri_text(&Uri::Sip(u)));
    (prop_oneof![3 => bracketed, 1 => addr_spec], params).prop_map(|(a, p)| format!("{a}{p}")).boxed()
}

fn tag() -> BoxedStrategy<String> {
    token().boxed()
}

fn via() -> BoxedStrategy<(String, String)> {
    let transport = prop_oneof![
        4 => prop::sample::select(vec!["UDP", "TCP", "TLS", "SCTP", "WS", "WSS", "udp", "Tls"]).prop_map(str::to_owned),
        1 => token(),
    ];
    let received = prop_oneof![
        any::<[u8; 4]>().prop_map(|a| format!(";received={}", Ipv4Addr::from(a))),
        any::<[u16; 8]>().prop_map(|a| format!(";received={}", Ipv6Addr::from(a))),
    ];
    (
        transport,
        host(),
        port(),
        "[A-Za-z0-9.!%*_+`'~-]{1,16}",
        prop::option::of(received),
        prop::sample::select(vec!["", ";rport", ";rport=5060", ";ttl=1;maddr=239.255.255.1"]),
        header_params(),
    )
        .prop_map(|(t, h, p, branch, received, rport, extra)| {
            let port = p.map(|p| format!(":{p}")).unwrap_or_default();
            let branch = format!("z9hG4bK{branch}");
            let value = format!("SIP/2.0/{t} {h}{port};branch={branch}{}{rport}{extra}", received.unwrap_or_default());
            (value, branch)
        })
        .boxed()
}

/// 1 to 4 Via values on lines of one or more values; returns the lines and the branches.
fn via_stack() -> BoxedStrategy<(Vec<String>, Vec<String>)> {
    (vec(via(), 1..5), vec(any::<bool>(), 4), prop::sample::select(vec![",", ", ", " ,  "]))
        .prop_map(|(vias, join, sep)| {
            let mut lines: Vec<String> = Vec::new();
            let mut branches = Vec::new();
            for (i, (v, b)) in vias.into_iter().enumerate() {
                branches.push(b);
                match lines.last_mut() {
                    Some(last) if join[i] => {
                        last.push_str(sep);
                        last.push_str(&v);
                    }
                    _ => lines.push(v),
                }
            }
            (lines, branches)
        })
        .boxed()
}

fn contact_lines() -> BoxedStrategy<Vec<String>> {
    let params = prop::sample::select(vec![
        "",
        ";expires=3600",
        ";q=0.7;expires=60",
        ";+sip.instance=\"<urn:uuid:0f8d3c1e-7b2a-4e69-9c5d-8a1b2c3d4e5f>\";reg-id=1",
        ";methods=\"INVITE,BYE\"",
    ])
    .prop_map(str::to_owned);
    prop_oneof![
        1 => Just(vec!["*".to_owned()]),
        6 => vec(vec(name_addr(params), 1..3).prop_map(|v| v.join(", ")), 1..3),
    ]
    .boxed()
}

/// Values of headers the parser keeps as text.
fn unknown_header() -> BoxedStrategy<(String, String)> {
    let name = TOKEN.prop_filter("not a known name", |n| {
        matches!(HeaderName::parse(SipStr::from(n.as_str())), HeaderName::Other(_))
    });
    let value = prop_oneof![
        3 => "[^\\r\\n]{0,30}",
        1 => Just(";;,,;;,;".to_owned()),
        1 => Just("\u{feff}大停電".to_owned()),
        1 => Just(String::new()),
        1 => QUOTED.prop_map(|q| format!("{q}, <sip:a@b>;x=\"y,z\"")),
        1 => "[!-~]{1,10}( [!-~]{1,10}){1,4}",
    ];
    (name, value).prop_map(|(n, v)| (n, trim_lws(&v).to_owned())).boxed()
}

fn known_text_header() -> BoxedStrategy<(HeaderName, String)> {
    prop::sample::select(vec![
        (HeaderName::UserAgent, "Sambung-Proptest/1.0 (x86_64)"),
        (HeaderName::Subject, ""),
        (HeaderName::Subject, "lunch?"),
        (HeaderName::Expires, "3600"),
        (HeaderName::Allow, "INVITE, ACK, CANCEL, BYE, OPTIONS"),
        (HeaderName::Supported, "replaces, timer"),
        (HeaderName::Route, "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>"),
        (HeaderName::RecordRoute, "<sip:[2001:db8::1];lr>"),
        (
            HeaderName::Authorization,
            "Digest username=\"alice\", realm=\"a.example\", nonce=\"n0\", uri=\"sip:a.example\", response=\"00112233445566778899aabbccddeeff\"",
        ),
        (HeaderName::Date, "Sat, 13 Nov 2010 23:29:00 GMT"),
    ])
    .prop_map(|(n, v)| (n, v.to_owned())).boxed()
}

fn trim_lws(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\r', '\n'])
}

fn body() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        2 => Just(Vec::new()),
        2 => vec(any::<u8>(), 1..300),
        1 => Just(b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n\r\n".to_vec()),
    ].boxed()
}

// ---------------------------------------------------------------------------------------------
// Whole messages

/// What the generator put in a message, to check the typed views against.
#[derive(Debug, Clone)]
struct Facts {
    branches: Vec<String>,
    from_tag: String,
    to_tag: Option<String>,
    seq: u32,
    contacts: usize,
}

/// The header lines every message has, shuffled, plus a body and its Content-Length.
fn common(cseq_method: BoxedStrategy<Method>) -> BoxedStrategy<(Headers, Facts, Bytes)> {
    (
        via_stack(),
        (tag(), name_addr(Just(String::new()))),
        (prop::option::of(tag()), name_addr(Just(String::new()))),
        "[!-~]{1,24}",
        (any::<u32>(), cseq_method, prop::sample::select(vec![" ", "  ", "\t"])),
        prop::option::of(contact_lines()),
        vec(
            prop_oneof![
                unknown_header().prop_map(|(n, v)| (HeaderName::Other(SipStr::from(n)), v)),
                known_text_header()
            ],
            0..5,
        ),
        body(),
    )
        .prop_flat_map(|(vias, from, to, call_id, cseq, contacts, extra, body)| {
            let (via_lines, branches) = vias;
            let mut lines: Vec<(HeaderName, String)> = Vec::new();
            let contact_count = contacts.as_ref().map_or(0, |c| {
                c.iter().map(|l| if l == "*" { 0 } else { sambung_sip::text::split_commas(l).count() }).sum()
            });
            for v in via_lines {
                lines.push((HeaderName::Via, v));
            }
            lines.push((HeaderName::From, format!("{};tag={}", from.1, from.0)));
            lines.push((
                HeaderName::To,
                match &to.0 {
                    Some(t) => format!("{};tag={t}", to.1),
                    None => to.1.clone(),
                },
            ));
            lines.push((HeaderName::CallId, call_id));
            lines.push((HeaderName::CSeq, format!("{}{}{}", cseq.0, cseq.2, cseq.1)));
            for c in contacts.into_iter().flatten() {
                lines.push((HeaderName::Contact, c));
            }
            lines.extend(extra);
            if !body.is_empty() {
                lines.push((HeaderName::ContentType, "application/octet-stream".to_owned()));
            }
            lines.push((HeaderName::ContentLength, body.len().to_string()));
            let facts = Facts { branches, from_tag: from.0, to_tag: to.0, seq: cseq.0, contacts: contact_count };
            let lines: Vec<(HeaderName, String, usize)> =
                lines.into_iter().enumerate().map(|(i, (n, v))| (n, v, i)).collect();
            (Just(lines).prop_shuffle(), Just(facts), Just(Bytes::from(body)))
        })
        .prop_map(|(mut lines, facts, body)| {
            // Any order, except that the Via lines keep theirs (the stack is ordered): the Via
            // lines go back, in their first order, to wherever the shuffle put Via lines.
            let mut vias: Vec<(usize, String)> =
                lines.iter().filter(|(n, _, _)| *n == HeaderName::Via).map(|(_, v, k)| (*k, v.clone())).collect();
            vias.sort();
            let mut next = vias.into_iter();
            for (n, v, _) in lines.iter_mut() {
                if *n == HeaderName::Via {
                    *v = next.next().map(|(_, v)| v).unwrap_or_default();
                }
            }
            let headers =
                Headers(lines.into_iter().map(|(name, v, _)| Header { name, value: SipStr::from(v) }).collect());
            (headers, facts, body)
        })
        .boxed()
}

fn request() -> BoxedStrategy<(Message, Facts)> {
    (method(), request_uri(), prop::option::of(0u32..=255))
        .prop_flat_map(|(m, uri, max_forwards)| {
            (Just(m.clone()), Just(uri), Just(max_forwards), common(Just(m).boxed()))
        })
        .prop_map(|(method, uri, max_forwards, (mut headers, facts, body))| {
            if let Some(n) = max_forwards {
                headers.0.insert(
                    1.min(headers.len()),
                    Header { name: HeaderName::MaxForwards, value: SipStr::from(n.to_string()) },
                );
            }
            (Message::Request(Request { method, uri, headers, body }), facts)
        })
        .boxed()
}

fn response() -> BoxedStrategy<(Message, Facts)> {
    (100u16..700, prop_oneof![Just(None), "[^\\r\\n]{0,24}".prop_map(Some)], common(method().boxed()))
        .prop_map(|(status, reason, (headers, facts, body))| {
            let reason = reason.unwrap_or_else(|| sambung_sip::reason_phrase(status).to_owned());
            (Message::Response(Response { status, reason: SipStr::from(reason), headers, body }), facts)
        })
        .boxed()
}

fn message() -> BoxedStrategy<(Message, Facts)> {
    prop_oneof![request(), response()].boxed()
}

// ---------------------------------------------------------------------------------------------
// The same message written differently

/// Compact forms (RFC 3261 §7.3.3) of the names the generator uses.
fn compact(name: &HeaderName) -> Option<&'static str> {
    Some(match name {
        HeaderName::Via => "v",
        HeaderName::From => "f",
        HeaderName::To => "t",
        HeaderName::CallId => "i",
        HeaderName::Contact => "m",
        HeaderName::ContentLength => "l",
        HeaderName::ContentType => "c",
        HeaderName::Subject => "s",
        HeaderName::Supported => "k",
        _ => return None,
    })
}

/// How one header line is written: name spelling, white space around the colon, folding.
#[derive(Debug, Clone)]
struct LineStyle {
    compact: bool,
    case_flips: u64,
    before_colon: &'static str,
    after_colon: &'static str,
    fold_at: Vec<usize>,
    fold_ws: &'static str,
}

fn line_style() -> BoxedStrategy<LineStyle> {
    (
        any::<bool>(),
        any::<u64>(),
        prop::sample::select(vec!["", "", " ", "\t", "  "]),
        prop::sample::select(vec![" ", "", "   ", "\t", " \t "]),
        vec(any::<usize>(), 0..3),
        prop::sample::select(vec![" ", "\t", "   ", " \t"]),
    )
        .prop_map(|(compact, case_flips, before_colon, after_colon, fold_at, fold_ws)| LineStyle {
            compact,
            case_flips,
            before_colon,
            after_colon,
            fold_at,
            fold_ws,
        })
        .boxed()
}

/// Writes `m` the way other implementations might. Known names only change their spelling;
/// an unknown name is kept as it is (its spelling is part of the message). Folding happens only
/// at a single SP between two other characters, which unfolds back to that SP.
fn restyle(m: &Message, styles: &[LineStyle]) -> Vec<u8> {
    let printed = m.to_bytes();
    let start_end = printed.windows(2).position(|w| w == b"\r\n").unwrap();
    let mut out = printed[..start_end + 2].to_vec();
    for (i, h) in m.headers().iter().enumerate() {
        let style = &styles[i % styles.len()];
        let name = match (&h.name, style.compact, compact(&h.name)) {
            (HeaderName::Other(n), ..) => n.to_string(),
            (_, true, Some(c)) => c.to_owned(),
            (n, ..) => n.as_str().to_owned(),
        };
        let name: String = match h.name {
            HeaderName::Other(_) => name,
            _ => name
                .chars()
                .enumerate()
                .map(|(j, c)| {
                    if style.case_flips >> (j % 64) & 1 == 1 { c.to_ascii_lowercase() } else { c.to_ascii_uppercase() }
                })
                .collect(),
        };
        let v = h.value.as_bytes();
        let singles: Vec<usize> = (1..v.len().saturating_sub(1))
            .filter(|&j| v[j] == b' ' && !matches!(v[j - 1], b' ' | b'\t') && !matches!(v[j + 1], b' ' | b'\t'))
            .collect();
        let mut folds: Vec<usize> = if singles.is_empty() {
            vec![]
        } else {
            style.fold_at.iter().map(|k| singles[k % singles.len()]).collect()
        };
        folds.sort_unstable();
        folds.dedup();
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(style.before_colon.as_bytes());
        out.push(b':');
        out.extend_from_slice(style.after_colon.as_bytes());
        let mut last = 0;
        for f in folds {
            out.extend_from_slice(&v[last..f]);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(style.fold_ws.as_bytes());
            last = f + 1;
        }
        out.extend_from_slice(&v[last..]);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(m.body());
    out
}

/// What printing does on purpose: a message without Content-Length gets one.
fn with_content_length(m: &Message) -> Message {
    let mut m = m.clone();
    if m.headers().count(HeaderName::ContentLength) == 0 {
        let n = m.body().len().to_string();
        m.headers_mut().push(HeaderName::ContentLength, SipStr::from(n));
    }
    m
}

/// Whatever parses must print to bytes that parse back to it, and printing again gives the
/// same bytes.
fn assert_reprints(m: &Message) -> Result<(), TestCaseError> {
    let printed = m.to_bytes();
    let again = Message::parse(printed.clone()).map_err(|e| {
        TestCaseError::fail(format!("printed message does not parse: {e}\n{}", String::from_utf8_lossy(&printed)))
    })?;
    prop_assert_eq!(&again, &with_content_length(m));
    prop_assert_eq!(again.to_bytes(), printed);
    Ok(())
}

/// Single-byte edits of a message: change, insert, delete.
fn mutate(mut b: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(at, byte, kind) in edits {
        if b.is_empty() {
            b.push(byte);
            continue;
        }
        let at = at % b.len();
        match kind % 3 {
            0 => b[at] = byte,
            1 => b.insert(at, byte),
            _ => {
                b.remove(at);
            }
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// `Message::parse(m.to_bytes()) == m`, printing is a fixed point, and the typed views
    /// show what was generated.
    #[test]
    fn printed_messages_parse_back((m, facts) in message()) {
        let printed = m.to_bytes();
        let parsed = match Message::parse(printed.clone()) {
            Ok(p) => p,
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n{}", String::from_utf8_lossy(&printed)))),
        };
        prop_assert_eq!(&parsed, &m, "{}", String::from_utf8_lossy(&printed));
        prop_assert_eq!(parsed.to_bytes(), printed);

        let (vias, from, to, cseq, contacts): (Vec<_>, _, _, _, usize) = match &parsed {
            Message::Request(r) => (r.vias().collect(), r.from(), r.to(), r.cseq(), r.contacts().count()),
            Message::Response(r) => (r.vias().collect(), r.from(), r.to(), r.cseq(), r.contacts().count()),
        };
        let branches: Vec<_> = vias.iter().map(|v| v.branch().unwrap_or_default().to_owned()).collect();
        prop_assert_eq!(branches, facts.branches);
        let (from, to) = (from.unwrap(), to.unwrap());
        prop_assert_eq!(from.tag(), Some(facts.from_tag.as_str()));
        prop_assert_eq!(to.tag(), facts.to_tag.as_deref());
        prop_assert_eq!(cseq.unwrap().seq, facts.seq);
        prop_assert_eq!(contacts, facts.contacts);
        if let Message::Request(r) = &parsed {
            prop_assert_eq!(&r.cseq().unwrap().method, &r.method);
        }
    }

    /// Compact and mixed-case names, white space around the colon and folded lines parse to
    /// the same message.
    #[test]
    fn restyled_messages_parse_the_same((m, _) in message(), styles in vec(line_style(), 1..6)) {
        let wire = restyle(&m, &styles);
        let parsed = match Message::parse(Bytes::from(wire.clone())) {
            Ok(p) => p,
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n{}", String::from_utf8_lossy(&wire)))),
        };
        prop_assert_eq!(&parsed, &m, "{}", String::from_utf8_lossy(&wire));
        assert_reprints(&parsed)?;
    }

    /// Arbitrary bytes never make the parser or the framer panic.
    #[test]
    fn arbitrary_bytes_never_panic(b in vec(any::<u8>(), 0..600), limit in 0usize..2000) {
        if let Ok(m) = Message::parse(Bytes::from(b.clone())) {
            assert_reprints(&m)?;
        }
        if let Ok(Some(n)) = frame_stream(&b, limit) {
            prop_assert!(n <= b.len() && n <= limit);
        }
    }

    /// Valid messages with bytes changed, inserted or removed: never a panic, and whatever
    /// still parses prints back to itself.
    #[test]
    fn damaged_messages_never_panic((m, _) in message(), edits in vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6)) {
        let wire = mutate(m.to_bytes().to_vec(), &edits);
        if let Ok(m) = Message::parse(Bytes::from(wire.clone())) {
            assert_reprints(&m)?;
        }
        let _ = frame_stream(&wire, sambung_sip::MAX_MESSAGE_SIZE);
    }
}

#[test]
fn printing_adds_a_missing_content_length() {
    let raw = "OPTIONS sip:a.example SIP/2.0\r\nVia: SIP/2.0/UDP b.example;branch=z9hG4bK1\r\nFrom: <sip:b@b.example>;tag=1\r\n\
               To: <sip:a.example>\r\nCall-ID: 1@b\r\nCSeq: 1 OPTIONS\r\n\r\nhello";
    let m = Message::parse(Bytes::from_static(raw.as_bytes())).unwrap();
    assert_eq!(m.body(), "hello");
    let printed = m.to_bytes();
    assert!(printed.ends_with(b"Content-Length: 5\r\n\r\nhello"));
    assert_eq!(Message::parse(printed).unwrap(), with_content_length(&m));
}
