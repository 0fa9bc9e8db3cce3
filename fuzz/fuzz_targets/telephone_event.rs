//! RFC 4733 telephone-event payloads. `TelephoneEvent::parse` on arbitrary bytes: never panics,
//! accepts any payload of four bytes or more, and what it read prints back to the first four
//! bytes (less the reserved bit).
//!
//! The same bytes, as a stream of 9-byte packets (RTP timestamp, marker, a 4-byte payload), go
//! to a `DtmfReceiver` as the relay feeds it: never a panic, every event reported is a DTMF key,
//! and no event is reported twice in a row (the end packets are sent three times). Finally the
//! first bytes pick a key press (key, duration, volume): when `DtmfSender` accepts it, its
//! packets make a fresh receiver report that one press, ended, with its full duration.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sambung_media::dtmf::{DtmfEvent, DtmfReceiver, DtmfSender, TelephoneEvent};

const KEYS: &[u8; 16] = b"0123456789*#ABCD";

fuzz_target!(|data: &[u8]| {
    match TelephoneEvent::parse(data) {
        Ok(event) => {
            assert!(data.len() >= 4);
            assert_eq!(event.to_bytes(), [data[0], data[1] & !0x40, data[2], data[3]]);
            assert_eq!(TelephoneEvent::parse(&event.to_bytes()), Ok(event));
            assert_eq!(event.key().is_some(), event.event < 16);
        }
        Err(_) => assert!(data.len() < 4),
    }

    let mut receiver = DtmfReceiver::new();
    let mut last: Option<DtmfEvent> = None;
    let mut drain = |receiver: &mut DtmfReceiver| {
        while let Some(event) = receiver.poll_event() {
            assert!(KEYS.contains(&(event.key as u8)), "{event:?} is not a DTMF key");
            if let Some(previous) = last {
                assert_ne!(previous.timestamp, event.timestamp, "{event:?} reported twice");
            }
            last = Some(event);
        }
    };
    for packet in data.chunks_exact(9) {
        let timestamp = u32::from_be_bytes([packet[0], packet[1], packet[2], packet[3]]);
        receiver.on_packet(timestamp, packet[4] & 1 == 1, &packet[5..]).expect("a 4-byte payload is read");
        drain(&mut receiver);
        if packet[4] & 2 == 2 {
            receiver.flush();
            drain(&mut receiver);
        }
    }

    if let [key, d0, d1, volume, ..] = *data {
        let key = char::from(key);
        let duration_ms = u32::from(u16::from_be_bytes([d0, d1]));
        let Ok(sender) = DtmfSender::new(key, 0x1234_5678, duration_ms, volume) else { return };
        let mut receiver = DtmfReceiver::new();
        for packet in sender {
            receiver.on_packet(packet.timestamp, packet.marker, &packet.payload).expect("our own payload is read");
        }
        let event = receiver.poll_event().expect("the press is reported");
        assert_eq!(event.key, key.to_ascii_uppercase());
        assert_eq!((event.timestamp, event.duration, event.ended), (0x1234_5678, (duration_ms * 8) as u16, true));
        assert_eq!(receiver.poll_event(), None, "one press, reported once");
    }
});
