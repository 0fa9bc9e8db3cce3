//! Stream framing on arbitrary bytes: never panics, never claims more bytes than it was given or
//! than the size limit, and a framed message is a prefix the datagram parser may then read.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sambung_sip::{Message, frame_stream};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the size limit, so small limits get exercised as well.
    let (limit, buf) = match data.split_first() {
        Some((&b, rest)) if b & 1 == 1 => (usize::from(b) * 8, rest),
        _ => (sambung_sip::MAX_MESSAGE_SIZE, data),
    };
    match frame_stream(buf, limit) {
        Ok(Some(n)) => {
            assert!(n <= buf.len() && n <= limit, "framed {n} of {} (limit {limit})", buf.len());
            let _ = Message::parse(Bytes::copy_from_slice(&buf[..n]));
        }
        Ok(None) => assert!(buf.len() < limit || limit == 0),
        Err(e) => {
            let _ = e.status();
        }
    }
});
