//! Our own messages for the cases of RFC 5118 ("SIP Torture Test Messages for IPv6", §4.1 to
//! §4.10), with the table of what each must get. Written for Sambung: the identifiers, users
//! and addresses are ours (example.com names, 2001:db8::/32 and 192.0.2.0/24 documentation
//! addresses); each message keeps the one IPv6 construct its section is about.
//!
//! Shared by `crates/sip/tests/torture_ipv6.rs` (parser and policy) and
//! `crates/server/tests/torture_ipv6.rs` (the running server), which include this file with
//! `#[path]`. Not every item is used by both.
#![allow(dead_code)]

/// A request: its start line and headers (each line ending in CRLF, no Content-Length), and its
/// body. [`Raw::bytes`] adds the Content-Length the body really has.
#[derive(Debug, Clone, Copy)]
pub struct Raw {
    pub head: &'static str,
    pub body: &'static str,
}

impl Raw {
    /// The message on the wire, with `Content-Length` counted from the body.
    pub fn bytes(&self) -> Vec<u8> {
        self.with_declared_length(self.body.len())
    }

    /// The message with `Content-Length: declared`, whatever the body's length.
    pub fn with_declared_length(&self, declared: usize) -> Vec<u8> {
        format!("{}Content-Length: {declared}\r\n\r\n{}", self.head, self.body).into_bytes()
    }
}

/// What RFC 5118 says of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Well-formed: parse it and process it.
    Valid,
    /// Outside RFC 3261's grammar (or inside it only by its mistake), but a receiver should
    /// accept it anyway.
    Tolerated,
    /// Malformed: refuse it with this status.
    Invalid(u16),
}

/// One row of the table: the message, its section of RFC 5118, the RFC's verdict and what a
/// server like Sambung does with it.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub name: &'static str,
    pub section: &'static str,
    pub message: Raw,
    pub verdict: Verdict,
    pub expected: &'static str,
}

/// §4.1, a well-formed REGISTER with IPv6 references in the Request-URI, the Via sent-by and
/// the Contact. It must be accepted, and each bracketed reference read as an IPv6 address.
pub const REGISTER_IPV6_REFERENCES: Raw = Raw {
    head: "REGISTER sip:[2001:db8::a1] SIP/2.0\r\n\
           Via: SIP/2.0/UDP [2001:db8::5:7];branch=z9hG4bK-sb6-41-reg\r\n\
           Max-Forwards: 70\r\n\
           From: <sip:alice@example.com>;tag=sb6-41-f\r\n\
           To: <sip:alice@example.com>\r\n\
           Call-ID: sb6-41-0e7a51@alice.example.com\r\n\
           CSeq: 1 REGISTER\r\n\
           Contact: \"Alice\" <sip:alice@[2001:db8::5:8]>\r\n",
    body: "",
};

/// §4.2, the same kind of REGISTER with the Request-URI's IPv6 address written without the
/// `[` `]` a SIP URI requires around it. The RFC calls it invalid: the answer is 400.
pub const REGISTER_UNBRACKETED_URI: Raw = Raw {
    head: "REGISTER sip:2001:db8::a1 SIP/2.0\r\n\
           Via: SIP/2.0/UDP [2001:db8::5:7];branch=z9hG4bK-sb6-42-reg\r\n\
           Max-Forwards: 70\r\n\
           From: <sip:alice@example.com>;tag=sb6-42-f\r\n\
           To: <sip:alice@example.com>\r\n\
           Call-ID: sb6-42-3b19c4@alice.example.com\r\n\
           CSeq: 1 REGISTER\r\n\
           Contact: \"Alice\" <sip:alice@[2001:db8::5:8]>\r\n",
    body: "",
};

/// §4.3, a Request-URI whose would-be port sits inside the brackets: `[2001:db8::a1:5080]`.
/// Syntactically fine, so it is accepted, but the host is the address 2001:db8::a1:5080 and no
/// port is given (the default applies), whatever the sender meant.
pub const REGISTER_PORT_INSIDE_BRACKETS: Raw = Raw {
    head: "REGISTER sip:[2001:db8::a1:5080] SIP/2.0\r\n\
           Via: SIP/2.0/UDP [2001:db8::5:7];branch=z9hG4bK-sb6-43-reg\r\n\
           Max-Forwards: 70\r\n\
           From: <sip:alice@example.com>;tag=sb6-43-f\r\n\
           To: <sip:alice@example.com>\r\n\
           Call-ID: sb6-43-92d0e8@alice.example.com\r\n\
           CSeq: 1 REGISTER\r\n\
           Contact: \"Alice\" <sip:alice@[2001:db8::5:8]>\r\n",
    body: "",
};

/// §4.4, the port written after the closing bracket: `[2001:db8::a1]:5080`. Accepted; the host
/// is 2001:db8::a1 and the port 5080.
pub const REGISTER_PORT_AFTER_BRACKETS: Raw = Raw {
    head: "REGISTER sip:[2001:db8::a1]:5080 SIP/2.0\r\n\
           Via: SIP/2.0/UDP [2001:db8::5:7];branch=z9hG4bK-sb6-44-reg\r\n\
           Max-Forwards: 70\r\n\
           From: <sip:alice@example.com>;tag=sb6-44-f\r\n\
           To: <sip:alice@example.com>\r\n\
           Call-ID: sb6-44-5f61aa@alice.example.com\r\n\
           CSeq: 1 REGISTER\r\n\
           Contact: \"Alice\" <sip:alice@[2001:db8::5:8]>\r\n",
    body: "",
};

/// §4.5, a BYE whose Via carries `received=[2001:db8::5:99]`, brackets included. RFC 3261's
/// grammar has no brackets there, but the RFC asks receivers to take the parameter either way
/// (and senders to write it without them): accepted, received read as 2001:db8::5:99.
pub const BYE_RECEIVED_BRACKETED: Raw = Raw {
    head: "BYE sip:[2001:db8::a1] SIP/2.0\r\n\
           Via: SIP/2.0/UDP [2001:db8::5:7];received=[2001:db8::5:99];branch=z9hG4bK-sb6-45a\r\n\
           Max-Forwards: 70\r\n\
           From: <sip:alice@example.com>;tag=sb6-45a-f\r\n\
           To: <sip:bob@example.com>;tag=sb6-45a-t\r\n\
           Call-ID: sb6-45a-c2d417@alice.example.com\r\n\
           CSeq: 2 BYE\r\n",
    body: "",
};

/// §4.5, an OPTIONS whose Via carries `received=2001:db8::5:99` without brackets, as RFC
/// 3261's grammar writes it. Valid: accepted, received read as 2001:db8::5:99.
pub const OPTIONS_RECEIVED_BARE: Raw = Raw {
    head: "OPTIONS sip:[2001:db8::a1] SIP/2.0\r\n\
           Via: SIP/2.0/UDP [2001:db8::5:7];received=2001:db8::5:99;branch=z9hG4bK-sb6-45b\r\n\
           Max-Forwards: 70\r\n\
           From: <sip:alice@example.com>;tag=sb6-45b-f\r\n\
           To: <sip:alice@example.com>\r\n\
           Call-ID: sb6-45b-18be03@alice.example.com\r\n\
           CSeq: 1 OPTIONS\r\n\
           Contact: <sip:alice@[2001:db8::5:7]>\r\n\
           Accept: application/sdp\r\n",
    body: "",
};

/// The session of [`INVITE_IPV6_SDP`]: IPv6 addresses in `o=` and `c=`, bare, as SDP writes
/// them.
pub const SDP_IPV6: &str = "v=0\r\n\
                            o=carol 3910 3910 IN IP6 2001:db8::c4\r\n\
                            s=IPv6 audio and video\r\n\
                            c=IN IP6 2001:db8::c4\r\n\
                            t=0 0\r\n\
                            m=audio 49170 RTP/AVP 0\r\n\
                            a=rtpmap:0 PCMU/8000\r\n\
                            m=video 51372 RTP/AVP 99\r\n\
                            a=rtpmap:99 H264/90000\r\n";

/// §4.6, an INVITE to an IPv6 reference whose SDP names IPv6 addresses. SDP's grammar has no
/// brackets (`c=IN IP6 2001:db8::c4`), and the request is valid: accepted.
pub const INVITE_IPV6_SDP: Raw = Raw {
    head: "INVITE sip:bob@[2001:db8::a1] SIP/2.0\r\n\
           Via: SIP/2.0/UDP [2001:db8::c4];branch=z9hG4bK-sb6-46\r\n\
           Max-Forwards: 70\r\n\
           From: \"Carol\" <sip:carol@example.com>;tag=sb6-46-f\r\n\
           To: <sip:bob@[2001:db8::a1]>\r\n\
           Call-ID: sb6-46-7740bd@carol.example.com\r\n\
           CSeq: 1 INVITE\r\n\
           Contact: <sip:carol@[2001:db8::c4]>\r\n\
           Content-Type: application/sdp\r\n",
    body: SDP_IPV6,
};

/// §4.7, a BYE that went through three hops: a Via with an IPv6 reference and a port after the
/// bracket, one with an IPv4 address, and one over TCP with an IPv6 reference and an IPv4
/// `received`. Valid: accepted, each Via read with its own family.
pub const BYE_MIXED_VIAS: Raw = Raw {
    head: "BYE sip:bob@host.example.net SIP/2.0\r\n\
           Via: SIP/2.0/UDP [2001:db8::7:1]:5062;branch=z9hG4bK-sb6-47-p2\r\n\
           Via: SIP/2.0/UDP 192.0.2.33;branch=z9hG4bK-sb6-47-p1\r\n\
           Via: SIP/2.0/TCP [2001:db8::7:2];branch=z9hG4bK-sb6-47-ua;received=192.0.2.34\r\n\
           Max-Forwards: 68\r\n\
           From: <sip:dave@example.com>;tag=sb6-47-f\r\n\
           To: <sip:bob@example.net>;tag=sb6-47-t\r\n\
           Call-ID: sb6-47-a9015e@dave.example.com\r\n\
           CSeq: 3 BYE\r\n",
    body: "",
};

/// The session of [`INVITE_SDP_TWO_FAMILIES`]: no session-level `c=`; the audio is on IPv4 and
/// the video on IPv6.
pub const SDP_TWO_FAMILIES: &str = "v=0\r\n\
                                    o=dave 5521 5521 IN IP4 pc.example.com\r\n\
                                    s=-\r\n\
                                    t=0 0\r\n\
                                    m=audio 49172 RTP/AVP 0\r\n\
                                    c=IN IP4 192.0.2.40\r\n\
                                    m=video 51374 RTP/AVP 99\r\n\
                                    c=IN IP6 2001:db8::c5\r\n\
                                    a=rtpmap:99 H264/90000\r\n";

/// §4.8, an INVITE whose SDP puts one media stream on an IPv4 address and the other on an IPv6
/// address. Valid: accepted.
pub const INVITE_SDP_TWO_FAMILIES: Raw = Raw {
    head: "INVITE sip:bob@[2001:db8::a1] SIP/2.0\r\n\
           Via: SIP/2.0/UDP [2001:db8::c5];branch=z9hG4bK-sb6-48\r\n\
           Max-Forwards: 70\r\n\
           From: <sip:dave@example.com>;tag=sb6-48-f\r\n\
           To: <sip:bob@[2001:db8::a1]>\r\n\
           Call-ID: sb6-48-60c3f2@dave.example.com\r\n\
           CSeq: 1 INVITE\r\n\
           Contact: <sip:dave@[2001:db8::c5]>\r\n\
           Content-Type: application/sdp\r\n",
    body: SDP_TWO_FAMILIES,
};

/// The session of [`INVITE_IPV4_MAPPED`], on an IPv4-mapped IPv6 address.
pub const SDP_IPV4_MAPPED: &str = "v=0\r\n\
                                   o=erin 7301 7301 IN IP6 ::ffff:192.0.2.51\r\n\
                                   s=Mapped\r\n\
                                   c=IN IP6 ::ffff:192.0.2.51\r\n\
                                   t=0 0\r\n\
                                   m=audio 40000 RTP/AVP 8\r\n\
                                   a=rtpmap:8 PCMA/8000\r\n";

/// §4.9, IPv4-mapped IPv6 addresses (`::ffff:192.0.2.x`) in two Vias (one with a port after
/// the bracket), the Contact and the SDP. Valid: accepted, each read as an IPv6 address.
pub const INVITE_IPV4_MAPPED: Raw = Raw {
    head: "INVITE sip:bob@example.com SIP/2.0\r\n\
           Via: SIP/2.0/UDP [::ffff:192.0.2.50]:5090;branch=z9hG4bK-sb6-49-p1\r\n\
           Via: SIP/2.0/UDP [::ffff:192.0.2.51];branch=z9hG4bK-sb6-49-ua\r\n\
           Max-Forwards: 69\r\n\
           From: <sip:erin@example.com>;tag=sb6-49-f\r\n\
           To: <sip:bob@example.com>\r\n\
           Call-ID: sb6-49-4d8e26@erin.example.com\r\n\
           CSeq: 1 INVITE\r\n\
           Contact: \"Erin\" <sip:erin@[::ffff:192.0.2.51]>\r\n\
           Content-Type: application/sdp\r\n",
    body: SDP_IPV4_MAPPED,
};

/// §4.10, an IPv6 reference with three colons before a trailing IPv4 address,
/// `[2001:db8:::192.0.2.60]`: RFC 3261's ABNF lets it through by mistake, RFC 4291 has no such
/// address. Receivers should tolerate it and read 2001:db8::192.0.2.60.
pub const OPTIONS_THREE_COLONS: Raw = Raw {
    head: "OPTIONS sip:bob@[2001:db8:::192.0.2.60] SIP/2.0\r\n\
           Via: SIP/2.0/UDP edge1.example.com;branch=z9hG4bK-sb6-410a\r\n\
           Max-Forwards: 70\r\n\
           From: <sip:frank@example.com>;tag=sb6-410a-f\r\n\
           To: <sip:bob@[2001:db8:::192.0.2.60]>\r\n\
           Call-ID: sb6-410a-e35b70@edge1.example.com\r\n\
           CSeq: 1 OPTIONS\r\n",
    body: "",
};

/// §4.10, the same request with the address written correctly, two colons:
/// `[2001:db8::192.0.2.60]`. Valid: accepted.
pub const OPTIONS_TWO_COLONS: Raw = Raw {
    head: "OPTIONS sip:bob@[2001:db8::192.0.2.60] SIP/2.0\r\n\
           Via: SIP/2.0/UDP edge1.example.com;branch=z9hG4bK-sb6-410b\r\n\
           Max-Forwards: 70\r\n\
           From: <sip:frank@example.com>;tag=sb6-410b-f\r\n\
           To: <sip:bob@[2001:db8::192.0.2.60]>\r\n\
           Call-ID: sb6-410b-81f4c9@edge1.example.com\r\n\
           CSeq: 1 OPTIONS\r\n",
    body: "",
};

/// Not one of RFC 5118's cases: an INVITE with an IPv6 SDP body, to be sent with a
/// Content-Length larger than its body ([`body_cut_short`]). Over UDP RFC 3261 §18.3 makes that
/// a malformed request: 400.
pub const INVITE_FOR_SHORT_BODY: Raw = Raw {
    head: "INVITE sip:bob@[2001:db8::a1] SIP/2.0\r\n\
           Via: SIP/2.0/UDP [2001:db8::c6];branch=z9hG4bK-sb6-short\r\n\
           Max-Forwards: 70\r\n\
           From: <sip:grace@example.com>;tag=sb6-short-f\r\n\
           To: <sip:bob@[2001:db8::a1]>\r\n\
           Call-ID: sb6-short-2c7d11@grace.example.com\r\n\
           CSeq: 1 INVITE\r\n\
           Contact: <sip:grace@[2001:db8::c6]>\r\n\
           Content-Type: application/sdp\r\n",
    body: SDP_IPV6,
};

/// How many bytes [`body_cut_short`] claims beyond the body it carries.
pub const SHORT_BY: usize = 17;

/// [`INVITE_FOR_SHORT_BODY`] declaring [`SHORT_BY`] more bytes than its body has.
pub fn body_cut_short() -> Vec<u8> {
    INVITE_FOR_SHORT_BODY.with_declared_length(INVITE_FOR_SHORT_BODY.body.len() + SHORT_BY)
}

/// Every case of RFC 5118 §4, in the RFC's order (§4.5 and §4.10 have two messages each).
pub static CASES: [Case; 12] = [
    Case {
        name: "register-ipv6-references",
        section: "4.1",
        message: REGISTER_IPV6_REFERENCES,
        verdict: Verdict::Valid,
        expected: "accept; Request-URI [2001:db8::a1], Via sent-by [2001:db8::5:7] and Contact \
                   [2001:db8::5:8] are all IPv6 addresses",
    },
    Case {
        name: "register-unbracketed-uri",
        section: "4.2",
        message: REGISTER_UNBRACKETED_URI,
        verdict: Verdict::Invalid(400),
        expected: "400 Bad Request: an IPv6 address in a SIP URI must be bracketed",
    },
    Case {
        name: "register-port-inside-brackets",
        section: "4.3",
        message: REGISTER_PORT_INSIDE_BRACKETS,
        verdict: Verdict::Valid,
        expected: "accept; the host is 2001:db8::a1:5080 with no port: 5080 is part of the address",
    },
    Case {
        name: "register-port-after-brackets",
        section: "4.4",
        message: REGISTER_PORT_AFTER_BRACKETS,
        verdict: Verdict::Valid,
        expected: "accept; host 2001:db8::a1, port 5080",
    },
    Case {
        name: "bye-received-bracketed",
        section: "4.5",
        message: BYE_RECEIVED_BRACKETED,
        verdict: Verdict::Tolerated,
        expected: "accept although the grammar has no brackets in received; received is \
                   2001:db8::5:99 (and we write it without brackets ourselves)",
    },
    Case {
        name: "options-received-bare",
        section: "4.5",
        message: OPTIONS_RECEIVED_BARE,
        verdict: Verdict::Valid,
        expected: "accept; received is 2001:db8::5:99",
    },
    Case {
        name: "invite-ipv6-sdp",
        section: "4.6",
        message: INVITE_IPV6_SDP,
        verdict: Verdict::Valid,
        expected: "accept; the SDP's o= and c= addresses are bare IPv6, as SDP writes them",
    },
    Case {
        name: "bye-mixed-vias",
        section: "4.7",
        message: BYE_MIXED_VIAS,
        verdict: Verdict::Valid,
        expected: "accept; Vias [2001:db8::7:1]:5062 over UDP, 192.0.2.33, and [2001:db8::7:2] over \
                   TCP with received=192.0.2.34",
    },
    Case {
        name: "invite-sdp-two-families",
        section: "4.8",
        message: INVITE_SDP_TWO_FAMILIES,
        verdict: Verdict::Valid,
        expected: "accept; audio on c=IN IP4 192.0.2.40, video on c=IN IP6 2001:db8::c5",
    },
    Case {
        name: "invite-ipv4-mapped",
        section: "4.9",
        message: INVITE_IPV4_MAPPED,
        verdict: Verdict::Valid,
        expected: "accept; ::ffff:192.0.2.50 (port 5090) and ::ffff:192.0.2.51 in the Vias, the \
                   latter in the Contact too, all read as IPv6 addresses",
    },
    Case {
        name: "options-three-colons",
        section: "4.10",
        message: OPTIONS_THREE_COLONS,
        verdict: Verdict::Tolerated,
        expected: "tolerate; [2001:db8:::192.0.2.60] is read as 2001:db8::192.0.2.60",
    },
    Case {
        name: "options-two-colons",
        section: "4.10",
        message: OPTIONS_TWO_COLONS,
        verdict: Verdict::Valid,
        expected: "accept; [2001:db8::192.0.2.60] is 2001:db8::c000:23c",
    },
];

/// The case called `name`.
pub fn case(name: &str) -> &'static Case {
    CASES.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no RFC 5118 case {name}"))
}
