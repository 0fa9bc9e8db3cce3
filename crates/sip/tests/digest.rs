//! Digest authentication: RFC vectors, nonce lifecycle, parsing robustness.

use proptest::prelude::*;
use sambung_sip::digest::{self, Algorithm, Challenge, Credentials, DigestError, NonceCheck, NonceManager, Qop};

const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
const RFC7616_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";
const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
const RFC7616_REALM: &str = "http-auth@example.org";

fn rfc7616_authorization(algorithm: &str, response: &str) -> String {
    // RFC 7616 §3.9.1, laid out over several lines as in the RFC (folded LWS).
    format!(
        "Digest username=\"Mufasa\",\r\n \
         realm=\"{RFC7616_REALM}\",\r\n \
         uri=\"/dir/index.html\",\r\n \
         algorithm={algorithm},\r\n \
         nonce=\"{RFC7616_NONCE}\",\r\n \
         nc=00000001,\r\n \
         cnonce=\"{RFC7616_CNONCE}\",\r\n \
         qop=auth,\r\n \
         response=\"{response}\",\r\n \
         opaque=\"{RFC7616_OPAQUE}\""
    )
}

/// RFC 7616 §3.9.1: the MD5 and SHA-256 responses for Mufasa / "Circle of Life".
#[test]
fn rfc7616_example_server_side() {
    for (alg, algorithm, response) in [
        ("MD5", Algorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", Algorithm::Sha256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ] {
        let creds = Credentials::parse(&rfc7616_authorization(alg, response)).unwrap();
        assert_eq!(creds.username, "Mufasa");
        assert_eq!(creds.realm, RFC7616_REALM);
        assert_eq!(creds.uri, "/dir/index.html");
        assert_eq!(creds.algorithm, algorithm);
        assert_eq!(creds.nonce, RFC7616_NONCE);
        assert_eq!(creds.nc, Some(1));
        assert_eq!(creds.cnonce.as_deref(), Some(RFC7616_CNONCE));
        assert_eq!(creds.qop, Some(Qop::Auth));
        assert_eq!(creds.opaque.as_deref(), Some(RFC7616_OPAQUE));

        let stored = digest::ha1(algorithm, "Mufasa", RFC7616_REALM, "Circle of Life");
        assert_eq!(stored.len(), algorithm.hex_len());
        assert!(digest::verify(&creds, "GET", &stored), "{alg}");
        // Uppercase stored hex is accepted too.
        assert!(digest::verify(&creds, "GET", &stored.to_ascii_uppercase()));
        // Wrong password, method or HA1 of the other algorithm: rejected.
        let wrong = digest::ha1(algorithm, "Mufasa", RFC7616_REALM, "Circle Of Life");
        assert!(!digest::verify(&creds, "GET", &wrong));
        assert!(!digest::verify(&creds, "POST", &stored));
        let other = if algorithm == Algorithm::Md5 { Algorithm::Sha256 } else { Algorithm::Md5 };
        let other_ha1 = digest::ha1(other, "Mufasa", RFC7616_REALM, "Circle of Life");
        assert!(!digest::verify(&creds, "GET", &other_ha1));
        assert!(!digest::verify(&creds, "GET", ""));
        assert!(!digest::verify(&creds, "GET", &"z".repeat(algorithm.hex_len())));
    }
}

/// RFC 7616 §3.9.1 from the client side: the challenge parses and `respond` yields the RFC's
/// responses.
#[test]
fn rfc7616_example_client_side() {
    for (alg, response) in [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ] {
        let header = format!(
            "Digest\r\n    realm=\"{RFC7616_REALM}\",\r\n    qop=\"auth, auth-int\",\r\n    \
             algorithm={alg},\r\n    nonce=\"{RFC7616_NONCE}\",\r\n    opaque=\"{RFC7616_OPAQUE}\""
        );
        let challenge = Challenge::parse(&header).unwrap();
        assert_eq!(challenge.realm, RFC7616_REALM);
        assert_eq!(challenge.qop, Some(Qop::Auth));
        assert_eq!(challenge.algorithm.as_str(), alg);
        assert!(!challenge.stale);
        let creds =
            digest::respond(&challenge, "GET", "/dir/index.html", "Mufasa", "Circle of Life", RFC7616_CNONCE, 1);
        assert_eq!(creds.response, response);
        assert_eq!(creds.opaque.as_deref(), Some(RFC7616_OPAQUE));
        // The printed header parses back to the same credentials.
        let printed = creds.to_string();
        assert!(printed.contains("nc=00000001"), "{printed}");
        assert!(printed.contains("qop=auth,") || printed.contains("qop=auth "), "{printed}");
        assert_eq!(Credentials::parse(&printed).unwrap(), creds);
    }
}

/// RFC 2617 §3.5: MD5 with qop=auth, password "Circle Of Life".
#[test]
fn rfc2617_example() {
    let header = "Digest username=\"Mufasa\",
                 realm=\"testrealm@host.com\",
                 nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",
                 uri=\"/dir/index.html\",
                 qop=auth,
                 nc=00000001,
                 cnonce=\"0a4f113b\",
                 response=\"6629fae49393a05397450978507c4ef1\",
                 opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
    let creds = Credentials::parse(header).unwrap();
    assert_eq!(creds.algorithm, Algorithm::Md5, "missing algorithm means MD5");
    let stored = digest::ha1(Algorithm::Md5, "Mufasa", "testrealm@host.com", "Circle Of Life");
    assert!(digest::verify(&creds, "GET", &stored));

    let challenge = Challenge::parse(
        "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
    )
    .unwrap();
    assert_eq!(challenge.algorithm, Algorithm::Md5);
    let answer = digest::respond(&challenge, "GET", "/dir/index.html", "Mufasa", "Circle Of Life", "0a4f113b", 1);
    assert_eq!(answer.response, "6629fae49393a05397450978507c4ef1");
}

/// RFC 2069 §2.4: a response without qop, accepted only when allowed.
#[test]
fn rfc2069_no_qop() {
    let header = "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
                  nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
                  response=\"1949323746fe6a43ef61f9606e7febea\", \
                  opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
    let creds = Credentials::parse(header).unwrap();
    assert_eq!(creds.qop, None);
    assert_eq!(creds.nc, None);
    let stored = digest::ha1(Algorithm::Md5, "Mufasa", "testrealm@host.com", "CircleOfLife");
    assert!(!digest::verify(&creds, "GET", &stored), "qop is required by default");
    assert!(digest::verify_with(&creds, "GET", &stored, true));
    assert!(!digest::verify_with(&creds, "PUT", &stored, true));

    // Our client answers a challenge without qop the same way.
    let challenge = Challenge::parse(
        "Digest realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
         opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
    )
    .unwrap();
    assert_eq!(challenge.qop, None);
    let answer = digest::respond(&challenge, "GET", "/dir/index.html", "Mufasa", "CircleOfLife", "unused", 1);
    assert_eq!(answer.response, "1949323746fe6a43ef61f9606e7febea");
    assert_eq!(answer.cnonce, None);
    assert_eq!(answer.nc, None);
    assert!(!answer.to_string().contains("qop"));
}

/// MD5-sess (RFC 7616 §3.4.2) on the RFC 2617 inputs; value cross-checked with an independent
/// implementation (Python hashlib).
#[test]
fn md5_sess_vector() {
    let header = "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
                  nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
                  algorithm=MD5-sess, qop=auth, nc=00000001, cnonce=\"0a4f113b\", \
                  response=\"8e3825c57e897f5a0dec6c2d4e5059d0\"";
    let creds = Credentials::parse(header).unwrap();
    assert_eq!(creds.algorithm, Algorithm::Md5Sess);
    let stored = digest::ha1(Algorithm::Md5, "Mufasa", "testrealm@host.com", "Circle Of Life");
    assert_eq!(
        stored,
        digest::ha1(Algorithm::Md5Sess, "Mufasa", "testrealm@host.com", "Circle Of Life"),
        "the stored HA1 is shared by MD5 and MD5-sess"
    );
    assert!(digest::verify(&creds, "GET", &stored));
}

/// Client `respond` → printed header → server parse → `verify`, for every algorithm.
#[test]
fn round_trip_every_algorithm() {
    let mut nonces = NonceManager::new(b"0123456789abcdef0123456789abcdef", 300);
    let now = 1_750_000_000;
    for alg in Algorithm::ALL {
        let challenge = Challenge::new("sambung.example", nonces.issue(now), alg).with_opaque("op\"aque\\x");
        let printed = challenge.to_string();
        assert!(printed.starts_with("Digest realm=\"sambung.example\", nonce=\""));
        assert!(printed.contains(&format!("algorithm={}", alg.as_str())), "{printed}");
        assert!(printed.contains("qop=\"auth\""));
        assert!(!printed.contains("stale"));
        let parsed = Challenge::parse(&printed).unwrap();
        assert_eq!(parsed, challenge);

        for nc in [1, 2, 0xdead_beef] {
            let creds = digest::respond(
                &parsed,
                "REGISTER",
                "sip:sambung.example",
                "alice \"the\" user",
                "pässwörd",
                "c\\nonce",
                nc,
            );
            let header = creds.to_string();
            let back = Credentials::parse(&header).unwrap();
            assert_eq!(back, creds);
            let stored = digest::ha1(alg.base(), "alice \"the\" user", "sambung.example", "pässwörd");
            assert!(digest::verify(&back, "REGISTER", &stored), "{alg} {header}");
            assert!(!digest::verify(&back, "INVITE", &stored), "{alg}");
            let wrong = digest::ha1(alg.base(), "alice \"the\" user", "sambung.example", "password");
            assert!(!digest::verify(&back, "REGISTER", &wrong), "{alg}");
            assert_eq!(nonces.check(&back.nonce, back.nc, now + 5), NonceCheck::Valid);
        }
    }
}

#[test]
fn challenge_display_matches_the_documented_form() {
    let c = Challenge::new("example.com", "abc", Algorithm::Sha256).with_opaque("xyz").with_stale(true);
    assert_eq!(
        c.to_string(),
        "Digest realm=\"example.com\", nonce=\"abc\", opaque=\"xyz\", algorithm=SHA-256, \
         qop=\"auth\", stale=true"
    );
    let parsed = Challenge::parse(&c.to_string()).unwrap();
    assert!(parsed.stale);
    assert_eq!(parsed, c);
    let mut d = Challenge::new("example.com", "abc", Algorithm::Md5);
    d.domain = Some("sip:example.com sip:other.example".into());
    assert_eq!(
        d.to_string(),
        "Digest realm=\"example.com\", domain=\"sip:example.com sip:other.example\", \
         nonce=\"abc\", algorithm=MD5, qop=\"auth\""
    );
    assert_eq!(Challenge::parse(&d.to_string()).unwrap(), d);
}

#[test]
fn challenge_parse_errors() {
    assert_eq!(Challenge::parse("Basic realm=\"x\""), Err(DigestError::UnknownScheme));
    assert_eq!(Challenge::parse("Digest nonce=\"n\""), Err(DigestError::MissingParam("realm")));
    assert_eq!(Challenge::parse("Digest realm=\"r\""), Err(DigestError::MissingParam("nonce")));
    assert_eq!(
        Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\""),
        Err(DigestError::UnsupportedQop("auth-int".into()))
    );
    assert_eq!(
        Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256"),
        Err(DigestError::UnsupportedAlgorithm("SHA-512-256".into()))
    );
    let c = Challenge::parse("digest REALM=r , NONCE = \"n\" ,STALE=TRUE, algorithm=sha-256-SESS").unwrap();
    assert_eq!(c.realm, "r");
    assert!(c.stale);
    assert_eq!(c.algorithm, Algorithm::Sha256Sess);
}

/// The scheme of the RFC 3261 torture tests (RFC 4475 §3.1.2.5): a registrar re-challenges.
#[test]
fn unknown_scheme() {
    assert_eq!(Credentials::parse("NoOneKnowsThisScheme opaque-data=here"), Err(DigestError::UnknownScheme));
    assert_eq!(Credentials::parse("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="), Err(DigestError::UnknownScheme));
    assert_eq!(Credentials::parse("DigestX username=\"a\""), Err(DigestError::UnknownScheme));
}

#[test]
fn odd_whitespace_and_escaped_quotes() {
    let header = "  dIgEsT \t username = \"bob \\\"the\\\" \\\\builder\"\t,,\r\n\t realm=\"a\\,b\" ,\
                  nonce=\"n, with comma\",uri  =\"sip:bob@example.com;transport=tcp\"  ,\
                  response= \"ABCDEF\" , cnonce=\"c\", qop=\"auth\" , nc=\"0000000A\", \
                  ALGORITHM=\"sha-256\", x-extension=\"ignored\", other=token ,  ";
    let creds = Credentials::parse(header).unwrap();
    assert_eq!(creds.username, "bob \"the\" \\builder");
    assert_eq!(creds.realm, "a,b");
    assert_eq!(creds.nonce, "n, with comma");
    assert_eq!(creds.uri, "sip:bob@example.com;transport=tcp");
    assert_eq!(creds.response, "ABCDEF");
    assert_eq!(creds.qop, Some(Qop::Auth));
    assert_eq!(creds.nc, Some(10));
    assert_eq!(creds.algorithm, Algorithm::Sha256);
    // Printing re-escapes, and parsing that gives the same values.
    assert_eq!(Credentials::parse(&creds.to_string()).unwrap(), creds);
}

#[test]
fn credential_parse_errors() {
    let full = |drop: &str| {
        [
            "username=\"u\"",
            "realm=\"r\"",
            "nonce=\"n\"",
            "uri=\"sip:r\"",
            "response=\"0123\"",
            "qop=auth",
            "nc=00000001",
            "cnonce=\"c\"",
        ]
        .iter()
        .filter(|p| !p.starts_with(drop))
        .copied()
        .collect::<Vec<_>>()
        .join(", ")
    };
    assert!(Credentials::parse(&format!("Digest {}", full("none"))).is_ok());
    for (name, param) in [
        ("username", "username"),
        ("realm", "realm"),
        ("nonce", "nonce"),
        ("uri", "uri"),
        ("response", "response"),
        ("cnonce", "cnonce"),
        ("nc", "nc"),
    ] {
        assert_eq!(
            Credentials::parse(&format!("Digest {}", full(param))),
            Err(DigestError::MissingParam(name)),
            "{name}"
        );
    }
    // -sess needs a cnonce even without qop.
    assert_eq!(
        Credentials::parse(
            "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"x\", response=\"0\", \
             algorithm=SHA-256-sess"
        ),
        Err(DigestError::MissingParam("cnonce"))
    );
    let base = "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"x\", response=\"0\"";
    assert_eq!(Credentials::parse(&format!("{base}, userhash=true")), Err(DigestError::UserhashUnsupported));
    assert!(Credentials::parse(&format!("{base}, userhash=false")).is_ok());
    assert_eq!(
        Credentials::parse(&format!("{base}, qop=auth-int, nc=00000001, cnonce=\"c\"")),
        Err(DigestError::UnsupportedQop("auth-int".into()))
    );
    assert_eq!(
        Credentials::parse(&format!("{base}, algorithm=SHA-512-256")),
        Err(DigestError::UnsupportedAlgorithm("SHA-512-256".into()))
    );
    for nc in ["1", "000000001", "0000000x", "\"\""] {
        assert!(
            matches!(
                Credentials::parse(&format!("{base}, qop=auth, cnonce=\"c\", nc={nc}")),
                Err(DigestError::InvalidNonceCount(_))
            ),
            "{nc}"
        );
    }
    assert_eq!(
        Credentials::parse(&format!("{base}, realm=\"again\"")),
        Err(DigestError::DuplicateParam("realm".into()))
    );
    assert_eq!(
        Credentials::parse(&format!("{base}, REALM=\"again\"")),
        Err(DigestError::DuplicateParam("realm".into()))
    );
    for bad in [
        "",
        "   ",
        "\"Digest\"",
        "Digest,username=\"u\"",
        "Digest username",
        "Digest username=",
        "Digest username=\"unterminated",
        "Digest username=\"u\" realm=\"r\"",
        "Digest =\"u\"",
        "Digest username=\"u\\",
        "Digest username=a\"b\"",
    ] {
        assert!(
            matches!(Credentials::parse(bad), Err(DigestError::Malformed(_))),
            "{bad:?} -> {:?}",
            Credentials::parse(bad)
        );
    }
    assert_eq!(Credentials::parse("Digest"), Err(DigestError::MissingParam("username")));
}

#[test]
fn display_never_splits_the_header() {
    let challenge = Challenge::new("r\r\nX-Injected: 1", "n", Algorithm::Md5);
    let creds = digest::respond(&challenge, "REGISTER", "sip:r", "u\n", "p", "c", 1);
    for s in [challenge.to_string(), creds.to_string()] {
        assert!(!s.contains('\r') && !s.contains('\n'), "{s:?}");
    }
}

const SECRET: &[u8] = b"server secret, at least 32 bytes long!";

/// Shards share the secret: each checks the counts of its own nonces only, and asks again
/// (stale) for another's, whose counts it cannot track; without counts any shard's nonce is
/// authentic.
#[test]
fn sharded_managers_take_counts_only_for_their_own_nonces() {
    let t0 = 1_700_000_000;
    let mut shards: Vec<NonceManager> =
        (0..3).map(|i| NonceManager::new(SECRET, 300).with_counter_seed(u64::MAX - 4).with_shard(i, 3)).collect();
    for _ in 0..4 {
        for i in 0..3 {
            let nonce = shards[i].issue(t0);
            for (j, other) in shards.iter_mut().enumerate() {
                let expect = if i == j { NonceCheck::Valid } else { NonceCheck::Stale };
                assert_eq!(other.check(&nonce, Some(1), t0), expect, "nonce of {i} at {j}");
                assert_eq!(other.check(&nonce, None, t0), NonceCheck::Valid);
            }
            assert_eq!(shards[i].check(&nonce, Some(1), t0), NonceCheck::Replay);
        }
    }
}

#[test]
fn nonce_valid_then_stale_after_lifetime() {
    let mut m = NonceManager::new(SECRET, 300);
    let t0 = 1_700_000_000;
    let nonce = m.issue(t0);
    assert_eq!(nonce.len(), 64);
    assert!(nonce.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(m.check(&nonce, Some(1), t0), NonceCheck::Valid);
    assert_eq!(m.check(&nonce, Some(2), t0 + 300), NonceCheck::Valid);
    assert_eq!(m.check(&nonce, Some(3), t0 + 301), NonceCheck::Stale);
    assert_eq!(m.check(&nonce, None, t0 + 10_000), NonceCheck::Stale);
    // A nonce from far in the future (clock stepped back) is not fresh either.
    let future = m.issue(t0 + 3_600);
    assert_eq!(m.check(&future, Some(1), t0), NonceCheck::Stale);
    // Nonces issued in the same second differ.
    assert_ne!(m.issue(t0), m.issue(t0));
    // Stale is answered with stale=true.
    let c = Challenge::new("r", m.issue(t0 + 301), Algorithm::Sha256).with_stale(true);
    assert!(c.to_string().ends_with(", stale=true"));
}

#[test]
fn nonce_replay_rejected_and_higher_nc_accepted() {
    let mut m = NonceManager::new(SECRET, 300);
    let t0 = 1_700_000_000;
    let nonce = m.issue(t0);
    assert_eq!(m.check(&nonce, Some(1), t0 + 1), NonceCheck::Valid);
    assert_eq!(m.check(&nonce, Some(1), t0 + 2), NonceCheck::Replay);
    assert_eq!(m.check(&nonce, Some(2), t0 + 2), NonceCheck::Valid);
    assert_eq!(m.check(&nonce, Some(5), t0 + 3), NonceCheck::Valid);
    assert_eq!(m.check(&nonce, Some(3), t0 + 3), NonceCheck::Replay);
    assert_eq!(m.check(&nonce, Some(5), t0 + 3), NonceCheck::Replay);
    assert_eq!(m.check(&nonce, Some(6), t0 + 4), NonceCheck::Valid);
    // Another nonce has its own count; nc 0 is never valid.
    let other = m.issue(t0);
    assert_eq!(m.check(&other, Some(0), t0 + 1), NonceCheck::Replay);
    assert_eq!(m.check(&other, Some(1), t0 + 1), NonceCheck::Valid);
    assert_eq!(m.tracked(), 2);
    // Uppercase hex is the same nonce.
    assert_eq!(m.check(&other.to_ascii_uppercase(), Some(1), t0 + 1), NonceCheck::Replay);
}

#[test]
fn tampered_or_foreign_nonce_rejected() {
    let mut m = NonceManager::new(SECRET, 300);
    let t0 = 1_700_000_000;
    let nonce = m.issue(t0);
    // Flip each hex digit in turn: timestamp, salt or tag, all rejected.
    for i in 0..nonce.len() {
        let mut bytes = nonce.clone().into_bytes();
        bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert_eq!(m.check(&tampered, Some(1), t0), NonceCheck::Invalid, "digit {i}");
    }
    // Another secret's nonce, junk, truncated, extended.
    let mut other = NonceManager::new(b"another secret", 300);
    assert_eq!(m.check(&other.issue(t0), Some(1), t0), NonceCheck::Invalid);
    for junk in ["", "abc", RFC7616_NONCE, &nonce[..62], &format!("{nonce}00"), &"é".repeat(32)] {
        assert_eq!(m.check(junk, Some(1), t0), NonceCheck::Invalid, "{junk}");
    }
    // None of that consumed the real nonce.
    assert_eq!(m.check(&nonce, Some(1), t0), NonceCheck::Valid);
}

#[test]
fn nonce_survives_restart_with_same_secret() {
    let t0 = 1_700_000_000;
    let nonce = NonceManager::new(SECRET, 300).issue(t0);
    let mut restarted = NonceManager::new(SECRET, 300).with_counter_seed(0x1234_5678);
    assert_eq!(restarted.check(&nonce, Some(1), t0 + 10), NonceCheck::Valid);
    let salted = restarted.issue_with_salt(t0, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(restarted.check(&salted, None, t0), NonceCheck::Valid);
}

#[test]
fn replay_map_is_bounded() {
    let mut m = NonceManager::new(SECRET, 1_000).with_max_tracked(100);
    let t0 = 1_700_000_000;
    for i in 0..1_000u64 {
        let n = m.issue(t0 + i / 10);
        assert_eq!(m.check(&n, Some(1), t0 + i / 10), NonceCheck::Valid);
        assert!(m.tracked() <= 100);
    }
    // Expired entries go away by themselves.
    let n = m.issue(t0 + 5_000);
    assert_eq!(m.check(&n, Some(1), t0 + 5_000), NonceCheck::Valid);
    assert_eq!(m.tracked(), 1);
    assert!(format!("{m:?}").contains("tracked: 1"));
}

/// The full server flow: challenge, stale nonce → stale=true, retry with a new nonce.
#[test]
fn registrar_flow_with_stale_retry() {
    let mut nonces = NonceManager::new(SECRET, 60);
    let stored = digest::ha1(Algorithm::Sha256, "alice", "sambung.example", "pw");
    let t0 = 1_700_000_000;
    let challenge = Challenge::new("sambung.example", nonces.issue(t0), Algorithm::Sha256);

    let creds = digest::respond(&challenge, "REGISTER", "sip:sambung.example", "alice", "pw", "x", 1);
    let creds = Credentials::parse(&creds.to_string()).unwrap();
    assert!(digest::verify(&creds, "REGISTER", &stored));
    assert_eq!(nonces.check(&creds.nonce, creds.nc, t0 + 1), NonceCheck::Valid);

    // Later the phone refreshes with the old nonce: the response is right, the nonce stale.
    let creds = digest::respond(&challenge, "REGISTER", "sip:sambung.example", "alice", "pw", "y", 2);
    assert!(digest::verify(&creds, "REGISTER", &stored));
    assert_eq!(nonces.check(&creds.nonce, creds.nc, t0 + 600), NonceCheck::Stale);
    let again = Challenge::new("sambung.example", nonces.issue(t0 + 600), Algorithm::Sha256).with_stale(true);
    let parsed = Challenge::parse(&again.to_string()).unwrap();
    assert!(parsed.stale);
    let creds = digest::respond(&parsed, "REGISTER", "sip:sambung.example", "alice", "pw", "z", 1);
    assert!(digest::verify(&creds, "REGISTER", &stored));
    assert_eq!(nonces.check(&creds.nonce, creds.nc, t0 + 601), NonceCheck::Valid);
}

#[test]
fn garbage_loop_never_panics() {
    let pieces = [
        "Digest",
        "digest",
        " ",
        "\t",
        "\r\n",
        ",",
        "=",
        "\"",
        "\\",
        "username",
        "realm",
        "nonce",
        "uri",
        "response",
        "qop",
        "nc",
        "cnonce",
        "algorithm",
        "userhash",
        "stale",
        "auth",
        "00000001",
        "MD5",
        "SHA-256-sess",
        "true",
        "é",
        "\u{0}",
        "ÿ",
        "a",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut m = NonceManager::new(SECRET, 60);
    for _ in 0..20_000 {
        let mut s = String::new();
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (state % 24) as usize;
        let mut x = state;
        for _ in 0..len {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            s.push_str(pieces[((x >> 33) as usize) % pieces.len()]);
        }
        let _ = Credentials::parse(&s);
        let _ = Challenge::parse(&s);
        let _ = m.check(&s, Some(1), 0);
    }
}

proptest! {
    #[test]
    fn parse_never_panics(s in "\\PC*") {
        let _ = Credentials::parse(&s);
        let _ = Challenge::parse(&s);
        let _ = Credentials::parse(&format!("Digest {s}"));
        let _ = Challenge::parse(&format!("Digest {s}"));
    }

    #[test]
    fn parse_never_panics_on_digest_like_input(
        s in "(Digest|digest)?[ \t\r\n]*([a-z]{1,8}[ \t]*=[ \t]*(\"([^\"\\\\]|\\\\.)*\"?|[A-Za-z0-9/+=-]*)[ \t]*,?[ \t]*){0,12}"
    ) {
        let _ = Credentials::parse(&s);
        let _ = Challenge::parse(&s);
    }

    #[test]
    fn printed_credentials_parse_back(
        user in "\\PC{0,20}", realm in "\\PC{0,20}", uri in "\\PC{1,20}",
        cnonce in "\\PC{1,20}", nc in 1u32.., alg in 0usize..4,
    ) {
        // Values without CR/LF survive print → parse exactly; the response then verifies.
        let alg = Algorithm::ALL[alg];
        let mut nonces = NonceManager::new(SECRET, 60);
        let challenge = Challenge::new(realm.clone(), nonces.issue(100), alg);
        let creds = digest::respond(&challenge, "INVITE", &uri, &user, "pw", &cnonce, nc);
        let back = Credentials::parse(&creds.to_string()).unwrap();
        prop_assert_eq!(&back, &creds);
        prop_assert!(digest::verify(&back, "INVITE", &digest::ha1(alg, &user, &realm, "pw")));
    }

    #[test]
    fn nonce_check_never_panics(s in "\\PC*", nc in proptest::option::of(any::<u32>()), now in any::<u64>()) {
        let mut m = NonceManager::new(SECRET, 60);
        prop_assert_ne!(m.check(&s, nc, now), NonceCheck::Valid);
    }
}
