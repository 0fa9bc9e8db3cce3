//! Symmetric RTP latching for endpoints behind NAT.
//!
//! An endpoint behind a NAT writes its private address in the SDP, and its packets reach the
//! relay from whatever public address and port the NAT picked. Endpoints that send and receive
//! on the same port (symmetric RTP, RFC 4961) can still be reached: the relay sends each leg's
//! media to the source of the packets it receives from that leg ("latching", RFC 7362 §3;
//! "comedia", RFC 4145 §4). Until the first packet arrives it sends to the SDP address.
//!
//! Latching to any source would let anyone who guesses a relay port hijack a call's media
//! (RFC 7362 §4.1), so a [`Latch`] only accepts sources whose IP is the one in the SDP or the
//! one the leg's SIP messages came from; packets from elsewhere are rejected. It may move to a
//! new port of an allowed IP at any time, which follows NAT rebinding.

use std::net::{IpAddr, SocketAddr};

/// What to do with a packet received from a leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// From the latched source: forward it.
    Accept,
    /// From an allowed new source, now latched (`previous` was the latched one, if any):
    /// forward it.
    Latched { previous: Option<SocketAddr> },
    /// From a source this leg may not use: drop it.
    Reject,
}

impl Verdict {
    /// True when the packet is to be forwarded.
    pub fn accepted(self) -> bool {
        !matches!(self, Verdict::Reject)
    }
}

/// The latching state of one leg's stream (one per RTP or RTCP port).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Latch {
    /// Where the SDP says the leg receives.
    signalled: Option<SocketAddr>,
    /// The source IP of the leg's signalling.
    signalling_ip: Option<IpAddr>,
    latched: Option<SocketAddr>,
}

fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

impl Latch {
    /// A latch that knows nothing yet: it rejects every packet and has no destination.
    pub fn new() -> Latch {
        Latch::default()
    }

    /// Sets what signalling says about the leg: the address in its SDP (`c=` and port, or the
    /// RTCP address) and the IP its SIP messages came from. A latched source whose IP is no
    /// longer allowed is forgotten.
    pub fn set_peer(&mut self, signalled: Option<SocketAddr>, signalling_ip: Option<IpAddr>) {
        self.signalled = signalled.map(canonical);
        self.signalling_ip = signalling_ip.map(|ip| ip.to_canonical()).filter(|ip| !ip.is_unspecified());
        if self.latched.is_some_and(|latched| !self.allows(latched.ip())) {
            self.latched = None;
        }
    }

    /// True when packets from `ip` may be latched to.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let sdp_ip = self.signalled.map(|s| s.ip()).filter(|ip| !ip.is_unspecified());
        sdp_ip == Some(ip) || self.signalling_ip == Some(ip)
    }

    /// Judges a packet from `source`, latching to it when it is new and allowed.
    pub fn on_packet(&mut self, source: SocketAddr) -> Verdict {
        if self.latched == Some(source) {
            return Verdict::Accept;
        }
        let source = canonical(source);
        if self.latched == Some(source) {
            return Verdict::Accept;
        }
        if !self.allows(source.ip()) {
            return Verdict::Reject;
        }
        let previous = self.latched.replace(source);
        Verdict::Latched { previous }
    }

    /// Where to send the leg's media: the latched source, else the SDP address (unless it is
    /// unspecified, `0.0.0.0`, or has port 0).
    pub fn destination(&self) -> Option<SocketAddr> {
        self.latched.or(self.signalled.filter(|s| !s.ip().is_unspecified() && s.port() != 0))
    }

    /// The latched source, if any.
    pub fn latched(&self) -> Option<SocketAddr> {
        self.latched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn latches_to_the_sdp_ip_or_the_signalling_ip_only() {
        let mut latch = Latch::new();
        assert_eq!(latch.on_packet(addr("192.0.2.1:4000")), Verdict::Reject);
        assert_eq!(latch.destination(), None);

        // Behind NAT: private address in the SDP, public one in signalling.
        latch.set_peer(Some(addr("10.0.0.5:4000")), Some("203.0.113.7".parse().unwrap()));
        assert_eq!(latch.destination(), Some(addr("10.0.0.5:4000")));
        assert_eq!(latch.on_packet(addr("198.51.100.9:4000")), Verdict::Reject);
        assert_eq!(latch.on_packet(addr("203.0.113.7:61000")), Verdict::Latched { previous: None });
        assert_eq!(latch.on_packet(addr("203.0.113.7:61000")), Verdict::Accept);
        assert_eq!(latch.destination(), Some(addr("203.0.113.7:61000")));
        // NAT rebinding: a new port of the same IP.
        let rebound = latch.on_packet(addr("203.0.113.7:61002"));
        assert_eq!(rebound, Verdict::Latched { previous: Some(addr("203.0.113.7:61000")) });
        // Still no foreign source, even once latched.
        assert!(!latch.on_packet(addr("198.51.100.9:61002")).accepted());
        assert_eq!(latch.destination(), Some(addr("203.0.113.7:61002")));
    }

    #[test]
    fn hold_and_peer_changes() {
        let mut latch = Latch::new();
        latch.set_peer(Some(addr("0.0.0.0:4000")), None);
        assert_eq!(latch.destination(), None);
        assert_eq!(latch.on_packet(addr("0.0.0.0:4000")), Verdict::Reject);

        latch.set_peer(Some(addr("192.0.2.1:4000")), None);
        assert!(latch.on_packet(addr("192.0.2.1:5000")).accepted());
        // Same IP again: the latch stays.
        latch.set_peer(Some(addr("192.0.2.1:4002")), None);
        assert_eq!(latch.latched(), Some(addr("192.0.2.1:5000")));
        // The endpoint moved: the old source is forgotten.
        latch.set_peer(Some(addr("192.0.2.2:4000")), None);
        assert_eq!(latch.latched(), None);
        assert_eq!(latch.destination(), Some(addr("192.0.2.2:4000")));
    }

    #[test]
    fn ipv4_mapped_sources_match() {
        let mut latch = Latch::new();
        latch.set_peer(Some(addr("192.0.2.1:4000")), None);
        assert!(latch.on_packet(addr("[::ffff:192.0.2.1]:4000")).accepted());
        assert_eq!(latch.on_packet(addr("[::ffff:192.0.2.1]:4000")), Verdict::Accept);
    }
}
