//! `Message::parse` on arbitrary datagrams (what any host can send to the resolver's socket):
//! never panics, never loops on compression pointers; what parses encodes again without
//! panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sambung_dns::message::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = Message::parse(data) else { return };
    let _ = message.encode();
});
