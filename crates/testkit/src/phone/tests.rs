//! Two phones calling each other directly (alice's "server" is bob) over a lossy network.

use std::net::IpAddr;
use std::time::Duration;

use super::*;
use crate::audio::{rms_dbfs, tone_level_dbfs, zero_crossing_frequency};
use crate::{Clock, NetConfig, Network};

fn pair(seed: u64) -> (Clock, Network, [Phone; 2]) {
    let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
    let mut alice = PhoneConfig::new("alice", a, SocketAddr::new(b, 5060), "example.test");
    alice.tone_hz = 500.0;
    alice.seed ^= seed;
    let mut bob = PhoneConfig::new("bob", b, SocketAddr::new(a, 5060), "example.test");
    bob.tone_hz = 800.0;
    bob.auto_ring = false;
    let net =
        NetConfig { loss: 0.05, reorder: 0.05, reorder_delay: Duration::from_millis(30), ..NetConfig::lossy(0.05) };
    (Clock::new(), Network::new(net, seed), [Phone::new(alice), Phone::new(bob)])
}

/// Runs both phones for `d` of virtual time.
fn run(clock: &mut Clock, net: &mut Network, phones: &mut [Phone; 2], d: Duration) {
    run_until(clock, net, phones, d, |_| false);
}

/// Runs both phones until `done` or for `d` of virtual time; true when `done` held.
fn run_until(
    clock: &mut Clock,
    net: &mut Network,
    phones: &mut [Phone; 2],
    d: Duration,
    done: impl Fn(&[Phone; 2]) -> bool,
) -> bool {
    let end = clock.now() + d;
    loop {
        if done(phones) {
            return true;
        }
        for phone in phones.iter_mut() {
            while let Some((from, to, payload)) = phone.poll_transmit() {
                net.send(from, to, payload, clock.now());
            }
        }
        let next = [net.next_delivery(), phones[0].poll_timeout(), phones[1].poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .filter(|&at| at <= end);
        let Some(at) = next else {
            clock.advance_to(end);
            return done(phones);
        };
        clock.advance_to(at);
        let now = clock.now();
        while let Some(d) = net.poll_delivery(now) {
            if let Some(phone) = phones.iter_mut().find(|p| p.owns(d.to)) {
                phone.handle_datagram(now, d.from, d.to, d.payload);
            }
        }
        for phone in phones.iter_mut() {
            if phone.poll_timeout().is_some_and(|at| at <= now) {
                phone.handle_timeout(now);
            }
        }
    }
}

#[test]
fn two_phones_ring_answer_talk_and_hang_up() {
    for seed in [1, 2] {
        let (mut clock, mut net, mut phones) = pair(seed);
        phones[0].call(clock.now(), "bob");
        run(&mut clock, &mut net, &mut phones, Duration::from_secs(2));
        assert!(phones[1].saw(|e| matches!(e, PhoneEvent::Incoming { from } if from.starts_with("sip:alice@"))));
        assert!(!phones[1].is_ringing(), "bob rings only when told");
        phones[1].ring(clock.now());
        run(&mut clock, &mut net, &mut phones, Duration::from_secs(2));
        assert!(phones[0].saw(|e| *e == PhoneEvent::Ringing), "{:?}", phones[0].events());
        phones[1].answer(clock.now());
        // the ACK goes out again with every repeat of the 2xx until one gets through
        let connected = |p: &[Phone; 2]| p[1].saw(|e| *e == PhoneEvent::Connected);
        assert!(run_until(&mut clock, &mut net, &mut phones, Duration::from_secs(30), connected));
        run(&mut clock, &mut net, &mut phones, Duration::from_secs(3));
        assert!(phones[0].saw(|e| *e == PhoneEvent::Answered) && phones[0].in_call());
        assert!(phones[1].in_call());
        // each heard the other's tone in the last two seconds
        for (phone, other) in [(0, 1), (1, 0)] {
            let heard = &phones[phone].heard()[phones[phone].heard().len() - 2 * 8000..];
            let hz = phones[other].tone().frequency();
            assert!((zero_crossing_frequency(heard, 8000) - hz).abs() < hz * 0.03, "seed {seed}: phone {phone}");
            let level = tone_level_dbfs(heard, 8000, hz);
            assert!((level - phones[other].tone().level_dbfs()).abs() < 3.0, "level {level}, rms {}", rms_dbfs(heard));
        }
        assert!(phones[0].rtp_stats().sent > 100);
        phones[0].hang_up(clock.now());
        run(&mut clock, &mut net, &mut phones, Duration::from_secs(2));
        assert!(phones[1].saw(|e| *e == PhoneEvent::HungUp { by_peer: true }), "{:?}", phones[1].events());
        assert!(phones.iter().all(|p| p.is_idle() && !p.has_media()));
    }
}

#[test]
fn a_call_hung_up_while_ringing_is_cancelled() {
    let (mut clock, mut net, mut phones) = pair(3);
    phones[0].call(clock.now(), "bob");
    run(&mut clock, &mut net, &mut phones, Duration::from_secs(1));
    phones[1].ring(clock.now());
    run(&mut clock, &mut net, &mut phones, Duration::from_secs(2));
    phones[0].hang_up(clock.now());
    run(&mut clock, &mut net, &mut phones, Duration::from_secs(5));
    assert!(phones[1].saw(|e| *e == PhoneEvent::Cancelled), "{:?}", phones[1].events());
    assert_eq!(phones[1].requests_of("CANCEL").count(), 1);
    assert!(phones[0].saw(|e| *e == PhoneEvent::CallFailed(487)), "{:?}", phones[0].events());
    assert!(phones.iter().all(Phone::is_idle));
}

#[test]
fn messages_are_answered_and_keys_need_telephone_event() {
    let (mut clock, mut net, mut phones) = pair(4);
    phones[0].send_message(clock.now(), "bob", "hello bob");
    run(&mut clock, &mut net, &mut phones, Duration::from_secs(5));
    assert!(phones[1].saw(|e| matches!(e, PhoneEvent::MessageReceived { body, .. } if body == "hello bob")));
    assert!(phones[0].saw(|e| *e == PhoneEvent::MessageSent(200)));
    assert!(!phones[0].press_key(clock.now(), '5'), "no call, no key");
}
