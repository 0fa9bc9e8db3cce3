//! The typed SIP header values the core reads from every request (Via, From/To/Contact as
//! name-addr, CSeq) on arbitrary text: `Via::parse`, `NameAddr::parse` and `CSeq::parse` never
//! panic, and a value any of them accepts prints to text that parses back to the same value.
//! (`parse_message` reaches these parsers only through a whole message, and checks no printing.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use sambung_sip::{CSeq, NameAddr, SipStr, Via};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let value = SipStr::from(text);
    if let Ok(via) = Via::parse(&value) {
        let printed = SipStr::from(via.to_string());
        let again = Via::parse(&printed).unwrap_or_else(|e| panic!("printed Via {printed:?} does not parse: {e}"));
        assert_eq!(again, via, "Via printed as {printed:?}");
        let _ = (via.branch(), via.has_rfc3261_branch(), via.response_target());
    }
    if let Ok(addr) = NameAddr::parse(&value) {
        let printed = SipStr::from(addr.to_string());
        let again =
            NameAddr::parse(&printed).unwrap_or_else(|e| panic!("printed name-addr {printed:?} does not parse: {e}"));
        assert_eq!(again, addr, "name-addr printed as {printed:?}");
        let _ = (addr.tag(), addr.display_name());
    }
    if let Ok(cseq) = CSeq::parse(&value) {
        let printed = SipStr::from(cseq.to_string());
        let again = CSeq::parse(&printed).unwrap_or_else(|e| panic!("printed CSeq {printed:?} does not parse: {e}"));
        assert_eq!(again, cseq, "CSeq printed as {printed:?}");
    }
});
