//! `Message::parse` on arbitrary bytes must never panic; whatever it accepts must print to bytes
//! that parse back to the same message, and printing that again must give the same bytes.
//!
//! The one change printing makes on purpose: a message without Content-Length gets one (it is
//! required on streams, RFC 3261 §18.3), appended after the last header line. The re-parsed
//! message is compared with the original plus that line.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sambung_sip::{HeaderName, Message, SipStr};

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Message::parse(Bytes::copy_from_slice(data)) else { return };
    let printed = m.to_bytes();
    let again = match Message::parse(printed.clone()) {
        Ok(again) => again,
        Err(e) => panic!("printed message does not parse: {e}\n{}", String::from_utf8_lossy(&printed)),
    };
    let mut want = m.clone();
    if want.headers().count(HeaderName::ContentLength) == 0 {
        let n = want.body().len().to_string();
        want.headers_mut().push(HeaderName::ContentLength, SipStr::from(n));
    }
    assert_eq!(again, want, "re-parsed message differs\n{}", String::from_utf8_lossy(&printed));
    assert_eq!(again.to_bytes(), printed, "printing is not a fixed point");
    // The accessors the core uses on every message must not panic either.
    let _ = (m.headers().len(), m.body().len());
    if let Message::Request(r) = &m {
        let _ = (r.cseq(), r.top_via(), r.from(), r.to(), r.max_forwards());
        let _ = (r.vias().count(), r.contacts().count());
    }
});
