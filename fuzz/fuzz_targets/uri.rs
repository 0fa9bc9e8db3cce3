//! `Uri::parse` on arbitrary text: never panics; an accepted URI prints to text that parses
//! back to the same URI.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sambung_sip::Uri;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let Ok(u) = Uri::parse(s) else { return };
    let printed = u.to_string();
    let again = Uri::parse(&printed).unwrap_or_else(|e| panic!("printed URI {printed:?} does not parse: {e}"));
    assert_eq!(again, u);
    assert_eq!(again.to_string(), printed);
    let _ = u.scheme();
    if let Some(s) = u.as_sip() {
        let _ = (s.user_unescaped(), s.host.ip());
    }
});
