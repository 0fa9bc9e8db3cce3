//! The value of an `a=crypto` attribute (RFC 4568 §9.1) on arbitrary text: `sdp::Crypto::parse`
//! (the syntax) and `sdes::SdesCrypto::parse` (what Sambung can honour) never panic. An
//! attribute Sambung honours is syntactically valid, prints to a value that parses back to the
//! same key, suite, tag and lifetime, gives a working SRTP context, and is answered by
//! `sdes::answer`; an offerer accepts the answer it gets back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sambung_media::sdes::{self, MAX_TAG, SdesCrypto};
use sambung_media::sdp::Crypto;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else { return };
    let syntax = Crypto::parse(value);
    if let Ok(crypto) = &syntax {
        assert!(crypto.tag <= MAX_TAG);
        assert!(!crypto.key_params.is_empty());
        assert!(crypto.key_params.iter().all(|k| !k.method.is_empty()));
    }
    let crypto = match SdesCrypto::parse(value) {
        Ok(crypto) => crypto,
        Err(e) => {
            assert_eq!(e.status(), 488);
            return;
        }
    };
    let syntax = syntax.unwrap_or_else(|e| panic!("honoured but not valid: {e}"));
    assert_eq!(SdesCrypto::from_crypto(&syntax).as_ref(), Ok(&crypto));
    assert_ne!(crypto.lifetime, Some(0));

    let printed = crypto.to_string();
    let again = SdesCrypto::parse(&printed).unwrap_or_else(|e| panic!("printed {printed:?} does not parse: {e}"));
    assert_eq!(again, crypto, "printed as {printed:?}");
    assert_eq!(crypto.to_attribute().value.as_deref(), Some(printed.as_str()));

    // The key works: a packet protected with it is unprotected with it.
    let mut packet = vec![0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xAA, 0xBB];
    crypto.context().protect_rtp(&mut packet).expect("a fresh key protects its first packet");
    crypto.context().unprotect_rtp(&mut packet).expect("and unprotects it");
    assert_eq!(packet, [0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xAA, 0xBB]);

    let answer = sdes::answer([value], &[0x42; 30]).expect("an honoured attribute is answered");
    assert_eq!(answer.remote, crypto);
    assert_eq!((answer.local.tag, answer.local.profile), (crypto.tag, crypto.profile));
    let (ours, theirs) = sdes::accept_answer(std::slice::from_ref(&crypto), &answer.local.to_string())
        .expect("the offerer accepts the answer to its own attribute");
    assert_eq!((ours, &theirs), (&crypto, &answer.local));
});
