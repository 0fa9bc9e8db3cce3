//! Shared by the transaction tests: message builders and a two-node simulation (a UAC and a
//! UAS transaction layer over the testkit network, on the virtual clock).

#![allow(dead_code)]

use bytes::Bytes;
use sambung_sip::transaction::{Config, Peer, TransactionLayer, TxEvent, TxKey, new_branch, push_via};
use sambung_sip::{HeaderName, Message, Method, Request, Response, SipStr, Transport, Uri, Via};
use sambung_testkit::{Clock, NetConfig, Network, Rng};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub const UAC: usize = 0;
pub const UAS: usize = 1;

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn parse(bytes: &[u8]) -> Message {
    Message::parse(Bytes::copy_from_slice(bytes)).expect("test message parses")
}

pub fn request(bytes: &[u8]) -> Request {
    match parse(bytes) {
        Message::Request(r) => r,
        Message::Response(_) => panic!("not a request"),
    }
}

pub fn response(bytes: &[u8]) -> Response {
    match parse(bytes) {
        Message::Response(r) => r,
        Message::Request(_) => panic!("not a response"),
    }
}

/// An out-of-dialog request from `from` (a UAC at `via_host`) with a fresh branch.
pub fn new_request(method: Method, call_id: &str, cseq: u32, via_transport: &Transport, rng: &mut Rng) -> Request {
    let branch = new_branch(&rng.bytes::<8>());
    let raw = format!(
        "{method} sip:bob@192.0.2.2 SIP/2.0\r\n\
         Via: SIP/2.0/{via_transport} 192.0.2.1:5060;branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         To: Bob <sip:bob@example.com>\r\n\
         From: Alice <sip:alice@example.com>;tag={tag:x}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:alice@192.0.2.1>\r\n\
         Content-Length: 0\r\n\r\n",
        tag = rng.next_u64() as u32,
    );
    request(raw.as_bytes())
}

/// The ACK for a 2xx (§13.2.2.4), built the plain way: a new branch, the 2xx's To, the INVITE's
/// CSeq number.
pub fn ack_for_2xx(invite: &Request, ok: &Response, rng: &mut Rng) -> Request {
    let mut ack = invite.clone();
    ack.method = Method::Ack;
    ack.headers.remove(HeaderName::Via);
    ack.headers.set(HeaderName::To, ok.headers.get(HeaderName::To).unwrap().clone());
    let seq = invite.cseq().unwrap().seq;
    ack.headers.set(HeaderName::CSeq, SipStr::from(format!("{seq} ACK")));
    ack.body = Bytes::new();
    ack.headers.set(HeaderName::ContentLength, "0");
    let via = invite.top_via().unwrap();
    push_via(&mut ack, Via::new(via.transport, via.host, via.port, &new_branch(&rng.bytes::<8>())));
    ack
}

pub fn uri(s: &str) -> Uri {
    Uri::parse(s).unwrap()
}

/// One side: its layer, its address, and everything it sent and reported.
pub struct Node {
    pub layer: TransactionLayer,
    pub addr: SocketAddr,
    pub transport: Transport,
    /// Every datagram the node sent, with the time.
    pub sent: Vec<(Instant, Bytes)>,
    /// Every event the TU saw, with the time.
    pub events: Vec<(Instant, TxEvent)>,
}

impl Node {
    /// Times of the datagrams whose first line starts with `start`.
    pub fn sent_times(&self, start: &str) -> Vec<Instant> {
        self.sent.iter().filter(|(_, b)| b.starts_with(start.as_bytes())).map(|(t, _)| *t).collect()
    }
}

type Action = Box<dyn FnOnce(&mut TransactionLayer, Instant)>;

/// Two transaction layers talking over the testkit network.
pub struct Sim {
    pub clock: Clock,
    pub net: Network,
    pub nodes: [Node; 2],
    pub rng: Rng,
    queue: VecDeque<(usize, TxEvent)>,
    agenda: Vec<(Instant, usize, Action)>,
}

impl Sim {
    pub fn new(transport: Transport, net: NetConfig, config: Config, seed: u64) -> Sim {
        let node = |addr: &str| Node {
            layer: TransactionLayer::new(config.clone()),
            addr: addr.parse().unwrap(),
            transport: transport.clone(),
            sent: Vec::new(),
            events: Vec::new(),
        };
        Sim {
            clock: Clock::new(),
            net: Network::new(net, seed),
            nodes: [node("192.0.2.1:5060"), node("192.0.2.2:5060")],
            rng: Rng::new(seed ^ 0x5eed),
            queue: VecDeque::new(),
            agenda: Vec::new(),
        }
    }

    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Time since the simulation started.
    pub fn t(&self, at: Instant) -> Duration {
        self.clock.offset(at)
    }

    /// How node `from` reaches node `to`.
    pub fn peer(&self, to: usize) -> Peer {
        Peer { transport: self.nodes[to].transport.clone(), addr: self.nodes[to].addr, flow: None }
    }

    pub fn layer(&mut self, node: usize) -> &mut TransactionLayer {
        &mut self.nodes[node].layer
    }

    /// Sends a request from `node` to the other node through a client transaction.
    pub fn send_request(&mut self, node: usize, request: Request) -> TxKey {
        let (now, to) = (self.now(), self.peer(1 - node));
        self.nodes[node].layer.send_request(request, to, now).unwrap()
    }

    /// Runs `action` on `node`'s layer `after` from now.
    pub fn schedule(
        &mut self,
        node: usize,
        after: Duration,
        action: impl FnOnce(&mut TransactionLayer, Instant) + 'static,
    ) {
        self.agenda.push((self.now() + after, node, Box::new(action)));
    }

    /// Moves everything queued in the layers to the network and the event queue.
    fn pump(&mut self) {
        let now = self.now();
        for i in 0..2 {
            while let Some(t) = self.nodes[i].layer.poll_transmit() {
                self.nodes[i].sent.push((now, t.bytes.clone()));
                self.net.send(self.nodes[i].addr, t.to.addr, t.bytes, now);
            }
            while let Some(e) = self.nodes[i].layer.poll_event() {
                self.nodes[i].events.push((now, e.clone()));
                self.queue.push_back((i, e));
            }
        }
    }

    /// The next event for a TU, running the network and the timers until one comes or nothing
    /// is left to happen before `limit`.
    pub fn next_event(&mut self, limit: Instant) -> Option<(usize, TxEvent)> {
        loop {
            self.pump();
            if let Some(e) = self.queue.pop_front() {
                return Some(e);
            }
            let next = [
                self.net.next_delivery(),
                self.nodes[0].layer.poll_timeout(),
                self.nodes[1].layer.poll_timeout(),
                self.agenda.iter().map(|a| a.0).min(),
            ]
            .into_iter()
            .flatten()
            .min()?;
            if next > limit {
                return None;
            }
            self.clock.advance_to(next);
            let now = self.now();
            while let Some(d) = self.net.poll_delivery(now) {
                let Some(i) = self.nodes.iter().position(|n| n.addr == d.to) else { continue };
                let from = Peer { transport: self.nodes[i].transport.clone(), addr: d.from, flow: None };
                let message = Message::parse(d.payload).expect("the layers send well-formed messages");
                if let Some(e) = self.nodes[i].layer.handle_message(message, from, now) {
                    self.nodes[i].events.push((now, e.clone()));
                    self.queue.push_back((i, e));
                }
            }
            for n in &mut self.nodes {
                if n.layer.poll_timeout().is_some_and(|t| t <= now) {
                    n.layer.handle_timeout(now);
                }
            }
            let due: Vec<_> = {
                let (due, rest): (Vec<_>, Vec<_>) = self.agenda.drain(..).partition(|a| a.0 <= now);
                self.agenda = rest;
                due
            };
            for (_, node, action) in due {
                action(&mut self.nodes[node].layer, now);
            }
        }
    }

    /// Runs until nothing is left to happen (or `limit`), handing every event to `tu`.
    pub fn run(&mut self, limit: Duration, mut tu: impl FnMut(&mut Sim, usize, TxEvent)) {
        let limit = self.clock.base() + limit;
        while let Some((node, event)) = self.next_event(limit) {
            tu(self, node, event);
        }
    }

    /// Events `node`'s TU saw that satisfy `f`.
    pub fn count(&self, node: usize, f: impl Fn(&TxEvent) -> bool) -> usize {
        self.nodes[node].events.iter().filter(|(_, e)| f(e)).count()
    }
}
