use super::*;

fn packet(event: u8, end: bool, duration: u16) -> [u8; 4] {
    TelephoneEvent { event, end, volume: 10, duration }.to_bytes()
}

fn events(receiver: &mut DtmfReceiver) -> Vec<DtmfEvent> {
    std::iter::from_fn(|| receiver.poll_event()).collect()
}

#[test]
fn payload_matches_the_rfc_layout() {
    // RFC 4733 §2.3: event 9, E set, volume 10 (−10 dBm0), duration 1000.
    let bytes = [9, 0x8A, 0x03, 0xE8];
    let e = TelephoneEvent::parse(&bytes).unwrap();
    assert_eq!(e, TelephoneEvent { event: 9, end: true, volume: 10, duration: 1000 });
    assert_eq!(e.to_bytes(), bytes);
    assert_eq!(e.key(), Some('9'));
    // The R bit is ignored on receipt.
    assert_eq!(TelephoneEvent::parse(&[11, 0x4A, 0, 0]).unwrap().volume, 10);
    assert_eq!(TelephoneEvent::parse(&[1, 2, 3]), Err(DtmfError::TooShort(3)));
}

#[test]
fn event_codes_of_every_key() {
    let keys: String = (0..16).map(|e| TelephoneEvent { event: e, ..Default::default() }.key().unwrap()).collect();
    assert_eq!(keys, "0123456789*#ABCD");
    for (code, key) in keys.chars().enumerate() {
        assert_eq!(event_code(key), Ok(code as u8));
    }
    assert_eq!(event_code('d'), Ok(15));
    assert_eq!(event_code('x'), Err(DtmfError::Key('x')));
    assert_eq!(TelephoneEvent { event: 16, ..Default::default() }.key(), None, "flash is not a key");
}

#[test]
fn sender_produces_the_rfc_sequence() {
    let packets: Vec<_> = DtmfSender::new('1', 1000, 120, 10).unwrap().collect();
    let summary: Vec<_> = packets
        .iter()
        .map(|p| {
            let e = TelephoneEvent::parse(&p.payload).unwrap();
            (p.send_offset, p.marker, e.end, e.duration)
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (0, true, false, 0),
            (400, false, false, 400),
            (800, false, false, 800),
            (960, false, true, 960),
            (1360, false, true, 960),
            (1760, false, true, 960),
        ]
    );
    assert!(packets.iter().all(|p| p.timestamp == 1000 && p.payload[0] == 1 && p.payload[1] & 0x3F == 10));
}

#[test]
fn sender_checks_its_arguments() {
    assert_eq!(DtmfSender::new('x', 0, 100, 10).err(), Some(DtmfError::Key('x')));
    assert_eq!(DtmfSender::new('1', 0, 100, 64).err(), Some(DtmfError::Volume(64)));
    assert_eq!(DtmfSender::new('1', 0, 9000, 10).err(), Some(DtmfError::Duration(9000)));
    let zero: Vec<_> = DtmfSender::new('#', 0, 0, 0).unwrap().collect();
    assert_eq!(zero.len(), 3);
    assert!(zero[0].marker && !zero[1].marker);
}

#[test]
fn retransmitted_ends_count_once() {
    let mut r = DtmfReceiver::new();
    r.on_packet(100, true, &packet(5, false, 0)).unwrap();
    r.on_packet(100, false, &packet(5, false, 400)).unwrap();
    assert_eq!(r.poll_event(), None, "not ended yet");
    for _ in 0..3 {
        r.on_packet(100, false, &packet(5, true, 800)).unwrap();
    }
    assert_eq!(events(&mut r), vec![DtmfEvent { key: '5', timestamp: 100, duration: 800, ended: true }]);
    // A late update of the same event after its end changes nothing.
    r.on_packet(100, false, &packet(5, false, 400)).unwrap();
    assert_eq!(r.poll_event(), None);
}

#[test]
fn lost_start_and_lost_ends() {
    let mut r = DtmfReceiver::new();
    // The start packet of '1' is lost; updates still make a press; its ends are lost too.
    r.on_packet(1000, false, &packet(1, false, 400)).unwrap();
    r.on_packet(1000, false, &packet(1, false, 800)).unwrap();
    // '2' starts: '1' is reported, not ended.
    r.on_packet(3000, true, &packet(2, false, 0)).unwrap();
    r.on_packet(3000, false, &packet(2, true, 640)).unwrap();
    let got: Vec<_> = events(&mut r).iter().map(|e| (e.key, e.timestamp, e.duration, e.ended)).collect();
    assert_eq!(got, vec![('1', 1000, 800, false), ('2', 3000, 640, true)]);
    // Same key again, a new press with its own timestamp, closed by `flush`.
    r.on_packet(5000, true, &packet(2, false, 0)).unwrap();
    assert_eq!(r.poll_event(), None);
    r.flush();
    assert_eq!(r.poll_event().map(|e| (e.key, e.timestamp, e.ended)), Some(('2', 5000, false)));
    r.flush();
    assert_eq!(r.poll_event(), None);
}

#[test]
fn unpolled_events_keep_the_newest_two() {
    let mut r = DtmfReceiver::new();
    for (i, ts) in [0u32, 1000, 2000].into_iter().enumerate() {
        r.on_packet(ts, true, &packet(i as u8, true, 480)).unwrap();
    }
    let keys: Vec<_> = events(&mut r).iter().map(|e| e.key).collect();
    assert_eq!(keys, vec!['1', '2']);
}

#[test]
fn reordered_packets_of_an_earlier_event_are_ignored() {
    let mut r = DtmfReceiver::new();
    r.on_packet(1000, true, &packet(3, true, 480)).unwrap();
    r.on_packet(2000, true, &packet(4, false, 0)).unwrap();
    r.on_packet(1000, false, &packet(3, false, 400)).unwrap();
    r.on_packet(2000, false, &packet(4, true, 480)).unwrap();
    let keys: Vec<_> = events(&mut r).iter().map(|e| e.key).collect();
    assert_eq!(keys, vec!['3', '4']);
}

#[test]
fn a_long_event_spans_segments() {
    let mut r = DtmfReceiver::new();
    r.on_packet(0, true, &packet(0, false, 0)).unwrap();
    r.on_packet(0, false, &packet(0, false, 65535)).unwrap();
    r.on_packet(65535, false, &packet(0, false, 400)).unwrap();
    r.on_packet(65535, false, &packet(0, true, 800)).unwrap();
    let got = events(&mut r);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].ended);
}

#[test]
fn sender_and_receiver_agree_under_loss() {
    for lost in 0..6 {
        let mut r = DtmfReceiver::new();
        for (i, p) in DtmfSender::new('#', 42, 200, 10).unwrap().enumerate() {
            if i != lost {
                r.on_packet(p.timestamp, p.marker, &p.payload).unwrap();
            }
        }
        r.flush();
        let got = events(&mut r);
        assert_eq!(got.len(), 1, "losing packet {lost}: {got:?}");
        assert_eq!((got[0].key, got[0].timestamp, got[0].duration), ('#', 42, 1600));
    }
}

#[test]
fn non_dtmf_events_are_ignored() {
    let mut r = DtmfReceiver::new();
    r.on_packet(0, true, &packet(16, true, 400)).unwrap();
    r.flush();
    assert_eq!(r.poll_event(), None);
}
