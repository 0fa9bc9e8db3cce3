//! Digest `Authorization` credentials on arbitrary text: never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sambung_sip::digest::Credentials;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(c) = Credentials::parse(s) {
        // Printing what was accepted must not panic, and should be readable again.
        let printed = c.to_string();
        let _ = Credentials::parse(&printed);
    }
});
