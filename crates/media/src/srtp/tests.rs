use super::keys::{AesCm, Label, derive, packet_iv};
use super::*;

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits.chunks(2).map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap()).collect()
}

fn array<const N: usize>(text: &str) -> [u8; N] {
    hex(text).try_into().unwrap()
}

/// The master key of RFC 3711 Appendix B.3, also the one of libSRTP's `srtp_validate`.
fn rfc_master_key() -> MasterKey {
    MasterKey::new(array("E1F97A0D3E018BE0D64FA32C06DE4139"), array("0EC675AD498AFEEBB6960B3AABE6"))
}

/// An RTP packet: version 2, payload type 0, the given sequence number and SSRC.
fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut packet = Vec::with_capacity(12 + payload.len() + MAX_TRAILER_LEN);
    packet.extend_from_slice(&[0x80, 0x00]);
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend_from_slice(payload);
    packet
}

/// A receiver report without report blocks followed by an SDES CNAME: a small compound packet.
fn rtcp(ssrc: u32) -> Vec<u8> {
    let mut packet = vec![0x80, 201, 0, 1];
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend_from_slice(&[0x81, 202, 0, 3]);
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend_from_slice(&[1, 3, b'b', b'o', b'b', 0, 0, 0]);
    packet
}

fn pair(profile: SrtpProfile) -> (SrtpContext, SrtpContext) {
    let key = MasterKey::from_bytes(&[0x5A; 30]);
    (SrtpContext::new(profile, &key), SrtpContext::new(profile, &key))
}

// RFC 3711 Appendix B.2: the AES-CM keystream for a session key and salt, with SSRC and
// index zero, at the start and near the end of the 2^16-block segment.
#[test]
fn appendix_b2_aes_cm_keystream() {
    let cipher = AesCm::new(&array("2B7E151628AED2A6ABF7158809CF4F3C"));
    let iv = packet_iv(&array("F0F1F2F3F4F5F6F7F8F9FAFBFCFD"), 0, 0);
    assert_eq!(iv.to_vec(), hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000"));

    let mut stream = vec![0u8; 16 * 0xFF02];
    cipher.apply(iv, &mut stream);
    assert_eq!(
        stream[..48],
        hex("E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB 41E95B3BB0A2E8DD477901E4FCA894C0")
    );
    assert_eq!(
        stream[16 * 0xFEFF..],
        hex("EC8CDF7398607CB0F2D21675EA9EA1E4 362B7C3C6773516318A077D7FC5073AE 6A2CC3787889374FBEB4C81B17BA6C44")
    );
}

// RFC 3711 Appendix B.3: key derivation with the AES-CM PRF.
#[test]
fn appendix_b3_key_derivation() {
    let master = rfc_master_key();
    let prf = AesCm::new(master.key());

    let mut cipher_key = [0u8; 16];
    derive(&prf, master.salt(), Label::RtpEncryption, &mut cipher_key);
    assert_eq!(cipher_key.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));

    let mut salt = [0u8; 14];
    derive(&prf, master.salt(), Label::RtpSalt, &mut salt);
    assert_eq!(salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));

    // The appendix lists 94 bytes for the authentication label; the key is its first 20.
    let mut auth = [0u8; 94];
    derive(&prf, master.salt(), Label::RtpAuthentication, &mut auth);
    assert_eq!(
        auth.to_vec(),
        hex("CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE
             E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25
             6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2")
    );
}

// The reference packets libSRTP checks itself against (`srtp_validate` in its test driver),
// with the master key of Appendix B.3: an independent implementation's output.
const LIBSRTP_RTP: &str = "800f1234decafbadcafebabe abababababababababababababababab";
const LIBSRTP_SRTP_80: &str = "800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb";
const LIBSRTP_RTCP: &str = "81c8000bcafebabe abababababababababababababababab";
const LIBSRTP_SRTCP_80: &str = "81c8000bcafebabe 7128035be487b9bdbef89041f977a5a8 80000001 993e08cd54d6c1230798";

#[test]
fn libsrtp_reference_rtp_packet() {
    for (profile, tag_len) in [(SrtpProfile::Aes128CmSha1_80, 10), (SrtpProfile::Aes128CmSha1_32, 4)] {
        let expected = &hex(LIBSRTP_SRTP_80)[..28 + tag_len];
        let mut packet = hex(LIBSRTP_RTP);
        SrtpContext::new(profile, &rfc_master_key()).protect_rtp(&mut packet).unwrap();
        assert_eq!(packet, expected, "{profile}");

        let mut packet = expected.to_vec();
        SrtpContext::new(profile, &rfc_master_key()).unprotect_rtp(&mut packet).unwrap();
        assert_eq!(packet, hex(LIBSRTP_RTP), "{profile}");
    }
}

#[test]
fn libsrtp_reference_rtcp_packet() {
    // libSRTP numbers its first SRTCP packet 1; ours is 0 (RFC 3711 §3.4), so its packet is
    // our second.
    let mut sender = SrtpContext::new(SrtpProfile::Aes128CmSha1_80, &rfc_master_key());
    let mut first = hex(LIBSRTP_RTCP);
    sender.protect_rtcp(&mut first).unwrap();
    assert_eq!(first[24..28], [0x80, 0, 0, 0]);
    let mut second = hex(LIBSRTP_RTCP);
    sender.protect_rtcp(&mut second).unwrap();
    assert_eq!(second, hex(LIBSRTP_SRTCP_80));

    // The 32-bit suite keeps the 80-bit tag on SRTCP.
    let mut receiver = SrtpContext::new(SrtpProfile::Aes128CmSha1_32, &rfc_master_key());
    let mut packet = hex(LIBSRTP_SRTCP_80);
    receiver.unprotect_rtcp(&mut packet).unwrap();
    assert_eq!(packet, hex(LIBSRTP_RTCP));
}

#[test]
fn round_trip_across_a_sequence_number_rollover() {
    for profile in SrtpProfile::ALL {
        let (mut sender, mut receiver) = pair(profile);
        let payload = [0xD5u8; 160];
        let mut sent = Vec::new();
        let mut seq = 65530u16;
        for _ in 0..12 {
            let mut packet = rtp(seq, 0x1234_5678, &payload);
            sender.protect_rtp(&mut packet).unwrap();
            assert_eq!(packet.len(), 12 + 160 + profile.rtp_tag_len());
            assert_ne!(packet[12..172], payload);
            sent.push((seq, packet));
            seq = seq.wrapping_add(1);
        }
        // Delivered out of order around the wrap: 65530..65533, 0, 1, 65534, 65535, 2..5.
        let order = [0, 1, 2, 3, 6, 7, 4, 5, 8, 9, 10, 11];
        for &i in &order {
            let (seq, packet) = &sent[i];
            let mut received = packet.clone();
            receiver.unprotect_rtp(&mut received).unwrap_or_else(|e| panic!("{profile} seq {seq}: {e}"));
            assert_eq!(received, rtp(*seq, 0x1234_5678, &payload));
        }
        assert_eq!(receiver.rtp.get_mut(0x1234_5678).unwrap().highest(), 0x1_0005);
    }
}

#[test]
fn the_rollover_counter_changes_the_keystream_and_the_tag() {
    let (mut sender, _) = pair(SrtpProfile::Aes128CmSha1_80);
    let mut before_wrap = rtp(5, 1, &[0; 32]);
    sender.protect_rtp(&mut before_wrap).unwrap();
    for seq in [20000, 40000, 60000, 0] {
        sender.protect_rtp(&mut rtp(seq, 1, &[0; 32])).unwrap();
    }
    let mut after_wrap = rtp(5, 1, &[0; 32]);
    sender.protect_rtp(&mut after_wrap).unwrap();
    assert_eq!(before_wrap[..12], after_wrap[..12]);
    assert_ne!(before_wrap[12..44], after_wrap[12..44]);
    assert_ne!(before_wrap[44..], after_wrap[44..]);

    // A receiver that missed the wrap still estimates ROC 1 from a packet in the second half.
    let (_, mut receiver) = pair(SrtpProfile::Aes128CmSha1_80);
    let (mut sender, _) = pair(SrtpProfile::Aes128CmSha1_80);
    let mut packets: Vec<_> = [60000u16, 0].iter().map(|&seq| rtp(seq, 1, &[1; 20])).collect();
    for packet in &mut packets {
        sender.protect_rtp(packet).unwrap();
    }
    receiver.unprotect_rtp(&mut packets[0]).unwrap();
    receiver.unprotect_rtp(&mut packets[1]).unwrap();
    assert_eq!(packets[1], rtp(0, 1, &[1; 20]));
}

#[test]
fn replayed_and_too_old_packets_are_rejected() {
    let (mut sender, mut receiver) = pair(SrtpProfile::Aes128CmSha1_80);
    let mut packets = Vec::new();
    for seq in 0..200u16 {
        let mut packet = rtp(seq, 7, b"hello");
        sender.protect_rtp(&mut packet).unwrap();
        packets.push(packet);
    }
    let mut copy = packets[0].clone();
    receiver.unprotect_rtp(&mut copy).unwrap();
    let mut copy = packets[0].clone();
    assert_eq!(receiver.unprotect_rtp(&mut copy), Err(SrtpError::Replayed));
    assert_eq!(copy, packets[0], "a refused packet is left as it was");

    receiver.unprotect_rtp(&mut packets[199].clone()).unwrap();
    // 199 - 72 = 127 behind the highest: still in the window, and not seen yet.
    receiver.unprotect_rtp(&mut packets[72].clone()).unwrap();
    assert_eq!(receiver.unprotect_rtp(&mut packets[72].clone()), Err(SrtpError::Replayed));
    assert_eq!(receiver.unprotect_rtp(&mut packets[71].clone()), Err(SrtpError::TooOld));
}

#[test]
fn tampered_packets_are_rejected_and_change_nothing() {
    for profile in SrtpProfile::ALL {
        let (mut sender, mut receiver) = pair(profile);
        let mut packet = rtp(100, 9, &[0x42; 160]);
        sender.protect_rtp(&mut packet).unwrap();
        for at in [1, 3, 11, 12, 100, packet.len() - 1] {
            let mut tampered = packet.clone();
            tampered[at] ^= 0x01;
            assert_eq!(receiver.unprotect_rtp(&mut tampered), Err(SrtpError::AuthenticationFailed), "byte {at}");
        }
        // Failed packets neither create state nor use up the index: the genuine one passes.
        assert_eq!(receiver.rtp.len(), 0);
        let mut genuine = packet.clone();
        receiver.unprotect_rtp(&mut genuine).unwrap();
        assert_eq!(genuine, rtp(100, 9, &[0x42; 160]));
    }
}

#[test]
fn another_key_fails_authentication() {
    let (mut sender, _) = pair(SrtpProfile::Aes128CmSha1_80);
    let mut other = SrtpContext::new(SrtpProfile::Aes128CmSha1_80, &MasterKey::from_bytes(&[0x5B; 30]));
    let mut packet = rtp(1, 1, b"payload");
    sender.protect_rtp(&mut packet).unwrap();
    assert_eq!(other.unprotect_rtp(&mut packet), Err(SrtpError::AuthenticationFailed));
    let mut control = rtcp(1);
    sender.protect_rtcp(&mut control).unwrap();
    assert_eq!(other.unprotect_rtcp(&mut control), Err(SrtpError::AuthenticationFailed));
}

#[test]
fn header_csrcs_and_extension_stay_in_the_clear() {
    let (mut sender, mut receiver) = pair(SrtpProfile::Aes128CmSha1_32);
    // Two CSRCs, a one-byte-header extension of one word, padding of 4 bytes.
    let mut plain = vec![0xB2, 0x08, 0x00, 0x01, 0, 0, 0, 160, 0, 0, 0, 9];
    plain.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
    plain.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x10, 0xAA, 0, 0]);
    plain.extend_from_slice(&[0x33; 20]);
    plain.extend_from_slice(&[0, 0, 0, 4]);
    let mut packet = plain.clone();
    sender.protect_rtp(&mut packet).unwrap();
    assert_eq!(packet[..28], plain[..28]);
    assert_ne!(packet[28..52], plain[28..52], "payload and padding are encrypted");
    receiver.unprotect_rtp(&mut packet).unwrap();
    assert_eq!(packet, plain);
    assert!(crate::rtp::RtpPacket::parse(&packet).is_ok());
}

#[test]
fn sources_have_their_own_rollover_counter_and_window() {
    let (mut sender, mut receiver) = pair(SrtpProfile::Aes128CmSha1_80);
    let mut a: Vec<_> = [65535u16, 0].iter().map(|&s| rtp(s, 0xA, b"a")).collect();
    let mut b = rtp(0, 0xB, b"b");
    for packet in a.iter_mut().chain([&mut b]) {
        sender.protect_rtp(packet).unwrap();
    }
    // B's sequence number 0 is index 0; A's second packet is index 65536.
    assert_eq!(sender.rtp.get_mut(0xA).unwrap().highest(), 0x1_0000);
    assert_eq!(sender.rtp.get_mut(0xB).unwrap().highest(), 0);
    for packet in a.iter_mut().chain([&mut b]) {
        receiver.unprotect_rtp(packet).unwrap();
    }
    assert_eq!(a[1], rtp(0, 0xA, b"a"));
    assert_eq!(b, rtp(0, 0xB, b"b"));
}

#[test]
fn srtcp_round_trip_with_index_and_replay_protection() {
    for profile in SrtpProfile::ALL {
        let (mut sender, mut receiver) = pair(profile);
        let mut sent = Vec::new();
        for i in 0..5u32 {
            let mut packet = rtcp(0xC0FFEE);
            sender.protect_rtcp(&mut packet).unwrap();
            assert_eq!(packet.len(), rtcp(0).len() + 4 + 10);
            assert_eq!(packet[..8], rtcp(0xC0FFEE)[..8], "first header and SSRC in the clear");
            assert_ne!(packet[8..24], rtcp(0xC0FFEE)[8..]);
            assert_eq!(be32(&packet, 24), 0x8000_0000 | i);
            sent.push(packet);
        }
        for i in [0, 2, 1, 4, 3] {
            let mut packet = sent[i].clone();
            receiver.unprotect_rtcp(&mut packet).unwrap();
            assert_eq!(packet, rtcp(0xC0FFEE));
        }
        assert_eq!(receiver.unprotect_rtcp(&mut sent[3].clone()), Err(SrtpError::Replayed));
        let mut tampered = sent[4].clone();
        tampered[25] ^= 0x80; // the index
        assert_eq!(receiver.unprotect_rtcp(&mut tampered), Err(SrtpError::AuthenticationFailed));
    }
}

#[test]
fn srtcp_without_the_e_flag_is_authenticated_but_not_decrypted() {
    let (_, mut receiver) = pair(SrtpProfile::Aes128CmSha1_80);
    let plain = rtcp(0xD00D);
    let mut packet = plain.clone();
    packet.extend_from_slice(&7u32.to_be_bytes());
    let tag = receiver.keys.rtcp_auth.tag(&packet, &[]);
    packet.extend_from_slice(&tag[..10]);
    // Setting E breaks the tag: the flag is authenticated.
    let mut tampered = packet.clone();
    tampered[plain.len()] |= 0x80;
    assert_eq!(receiver.unprotect_rtcp(&mut tampered), Err(SrtpError::AuthenticationFailed));

    receiver.unprotect_rtcp(&mut packet).unwrap();
    assert_eq!(packet, plain);
}

// libre (baresip) tags SRTCP with 32 bits under AES_CM_128_HMAC_SHA1_32, against RFC 4568 §6.2.
#[test]
fn srtcp_with_a_32_bit_tag_is_accepted_only_under_the_32_bit_suite() {
    let short_tagged = |context: &SrtpContext, index: u32| {
        let plain = rtcp(0xBA5E);
        let mut packet = plain.clone();
        let iv = packet_iv(&context.keys.rtcp_salt, 0xBA5E, u64::from(index));
        context.keys.rtcp_cipher.apply(iv, &mut packet[8..]);
        packet.extend_from_slice(&(0x8000_0000 | index).to_be_bytes());
        let tag = context.keys.rtcp_auth.tag(&packet, &[]);
        packet.extend_from_slice(&tag[..4]);
        (plain, packet)
    };
    let (_, mut receiver) = pair(SrtpProfile::Aes128CmSha1_32);
    let (plain, packet) = short_tagged(&receiver, 1);
    let mut copy = packet.clone();
    receiver.unprotect_rtcp(&mut copy).unwrap();
    assert_eq!(copy, plain);
    assert_eq!(receiver.unprotect_rtcp(&mut packet.clone()), Err(SrtpError::Replayed));
    let (_, mut tampered) = short_tagged(&receiver, 2);
    tampered[10] ^= 1;
    assert_eq!(receiver.unprotect_rtcp(&mut tampered), Err(SrtpError::AuthenticationFailed));

    let (_, mut receiver) = pair(SrtpProfile::Aes128CmSha1_80);
    let (_, mut packet) = short_tagged(&receiver, 1);
    assert_eq!(receiver.unprotect_rtcp(&mut packet), Err(SrtpError::AuthenticationFailed));
}

#[test]
fn malformed_packets_are_refused_untouched() {
    let (mut sender, mut receiver) = pair(SrtpProfile::Aes128CmSha1_80);
    let cases: [(Vec<u8>, SrtpError); 4] = [
        (vec![0x80; 11], SrtpError::TooShort(11)),
        (vec![0x40; 20], SrtpError::Version(1)),
        ([&[0x83u8][..], &[0; 19]].concat(), SrtpError::HeaderTruncated),
        ([&[0x90u8][..], &[0; 13], &[0, 5], &[0; 8]].concat(), SrtpError::HeaderTruncated),
    ];
    for (packet, error) in cases {
        let mut copy = packet.clone();
        assert_eq!(sender.protect_rtp(&mut copy), Err(error));
        assert_eq!(copy, packet);
    }
    // The tag comes off first: 12 bytes and a 10-byte tag need 22.
    assert_eq!(receiver.unprotect_rtp(&mut vec![0x80; 21]), Err(SrtpError::TooShort(21)));
    assert_eq!(receiver.unprotect_rtp(&mut vec![0x80; 22]), Err(SrtpError::AuthenticationFailed));
    assert_eq!(sender.protect_rtcp(&mut vec![0x80; 7]), Err(SrtpError::TooShort(7)));
    assert_eq!(sender.protect_rtcp(&mut vec![0x00; 8]), Err(SrtpError::Version(0)));
    assert_eq!(receiver.unprotect_rtcp(&mut vec![0x80; 21]), Err(SrtpError::TooShort(21)));
    assert_eq!(receiver.unprotect_rtcp(&mut vec![0x80; 22]), Err(SrtpError::AuthenticationFailed));
}

#[test]
fn the_key_lifetime_is_honoured() {
    let key = MasterKey::from_bytes(&[1; 30]);
    let mut sender = SrtpContext::new(SrtpProfile::Aes128CmSha1_80, &key).with_key_lifetime(2);
    let mut receiver = SrtpContext::new(SrtpProfile::Aes128CmSha1_80, &key).with_key_lifetime(2);
    let mut packets: Vec<_> = (0..3).map(|seq| rtp(seq, 1, b"x")).collect();
    sender.protect_rtp(&mut packets[0]).unwrap();
    sender.protect_rtp(&mut packets[1]).unwrap();
    assert_eq!(sender.protect_rtp(&mut packets[2]), Err(SrtpError::KeyExhausted));
    receiver.unprotect_rtp(&mut packets[0]).unwrap();
    receiver.unprotect_rtp(&mut packets[1]).unwrap();
    // RTCP counts apart.
    let mut control = rtcp(1);
    sender.protect_rtcp(&mut control).unwrap();
    receiver.unprotect_rtcp(&mut control).unwrap();
}

#[test]
fn index_space_exhaustion_stops_the_sender() {
    let (mut sender, _) = pair(SrtpProfile::Aes128CmSha1_80);
    sender.protect_rtp(&mut rtp(0xFFF0, 3, b"x")).unwrap();
    // Pretend 2^32 - 1 rollovers have happened.
    sender.rtp.get_mut(3).unwrap().accept(MAX_RTP_INDEX - 0x0F);
    sender.protect_rtp(&mut rtp(0xFFFF, 3, b"x")).unwrap();
    assert_eq!(sender.protect_rtp(&mut rtp(0, 3, b"x")), Err(SrtpError::KeyExhausted));

    sender.protect_rtcp(&mut rtcp(3)).unwrap();
    sender.rtcp.get_mut(3).unwrap().accept(MAX_RTCP_INDEX);
    assert_eq!(sender.protect_rtcp(&mut rtcp(3)), Err(SrtpError::KeyExhausted));
}

#[test]
fn protecting_does_not_reallocate_a_buffer_with_room() {
    let (mut sender, mut receiver) = pair(SrtpProfile::Aes128CmSha1_80);
    let mut packet = Vec::with_capacity(172 + MAX_TRAILER_LEN);
    packet.extend_from_slice(&rtp(1, 1, &[0; 160]));
    let address = packet.as_ptr();
    sender.protect_rtp(&mut packet).unwrap();
    receiver.unprotect_rtp(&mut packet).unwrap();
    assert_eq!(packet.as_ptr(), address);
}

#[test]
fn debug_output_hides_keys() {
    let key = MasterKey::from_bytes(&[0xAB; 30]);
    assert_eq!(format!("{key:?}"), "MasterKey(..)");
    let context = SrtpContext::new(SrtpProfile::Aes128CmSha1_80, &key);
    let text = format!("{context:?}");
    assert!(text.contains("Aes128CmSha1_80") && !text.contains("171") && !text.to_lowercase().contains("ab, "));
}

#[test]
fn profile_names() {
    for profile in SrtpProfile::ALL {
        assert_eq!(SrtpProfile::from_name(profile.name()), Some(profile));
    }
    assert_eq!(SrtpProfile::from_name("AES_256_CM_HMAC_SHA1_80"), None);
    assert_eq!(MasterKey::from_bytes(&rfc_master_key().to_bytes()), rfc_master_key());
}

proptest::proptest! {
    // Packets come off the network: no byte string may panic any of the four transforms, and
    // a refused packet is left as it was.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
        for profile in SrtpProfile::ALL {
            let (mut sender, mut receiver) = pair(profile);
            for op in 0..4 {
                let mut packet = bytes.clone();
                let result = match op {
                    0 => sender.protect_rtp(&mut packet),
                    1 => receiver.unprotect_rtp(&mut packet),
                    2 => sender.protect_rtcp(&mut packet),
                    _ => receiver.unprotect_rtcp(&mut packet),
                };
                if result.is_err() {
                    proptest::prop_assert_eq!(&packet, &bytes);
                }
            }
        }
    }

    // Whatever the sequence numbers, what one side protects the other recovers, once.
    #[test]
    fn any_sequence_run_round_trips(start in proptest::prelude::any::<u16>(), steps in proptest::collection::vec(1u16..3000, 1..40)) {
        let (mut sender, mut receiver) = pair(SrtpProfile::Aes128CmSha1_80);
        let mut seq = start;
        for step in steps {
            let plain = rtp(seq, 77, &seq.to_be_bytes());
            let mut packet = plain.clone();
            sender.protect_rtp(&mut packet).unwrap();
            let mut copy = packet.clone();
            proptest::prop_assert_eq!(receiver.unprotect_rtp(&mut copy), Ok(()));
            proptest::prop_assert_eq!(copy, plain);
            proptest::prop_assert_eq!(receiver.unprotect_rtp(&mut packet), Err(SrtpError::Replayed));
            seq = seq.wrapping_add(step);
        }
    }
}

#[test]
fn a_fresh_context_is_a_new_one_under_the_same_key() {
    let key = MasterKey::from_bytes(&[0x5A; 30]);
    for profile in SrtpProfile::ALL {
        let mut used = SrtpContext::new(profile, &key).with_key_lifetime(1);
        let mut first = rtp(1, 7, b"hello");
        used.protect_rtp(&mut first).unwrap();
        let mut second = rtp(2, 7, b"hello");
        assert_eq!(used.protect_rtp(&mut second.clone()), Err(SrtpError::KeyExhausted));

        // Neither the sources nor the lifetime of `used` carry over; the keys do.
        let mut fresh = used.fresh();
        assert_eq!(fresh.profile(), profile);
        let mut again = rtp(1, 7, b"hello");
        fresh.protect_rtp(&mut again).unwrap();
        assert_eq!(again, first, "a fresh context protects as a new one does");
        fresh.protect_rtp(&mut second).unwrap();
        let mut expected = rtp(2, 7, b"hello");
        SrtpContext::new(profile, &key).protect_rtp(&mut expected).unwrap();
        assert_eq!(second[12..], expected[12..], "the same keystream and tag for a new source");

        let mut receiver = used.fresh();
        let mut report = rtcp(7);
        let mut sender = SrtpContext::new(profile, &key);
        sender.protect_rtcp(&mut report).unwrap();
        receiver.unprotect_rtcp(&mut report).unwrap();
        assert_eq!(report, rtcp(7));
        receiver.unprotect_rtp(&mut first).unwrap();
        assert_eq!(first, rtp(1, 7, b"hello"));
    }
}
