//! Client transactions (RFC 3261 §17.1; RFC 6026 §7.2 for the Accepted state).

use super::build::ack_for;
use super::keys::to_tag_of_response;
use super::layer::{Out, Retransmit};
use super::{Peer, Timer, TxEvent, TxKey, TxState};
use crate::message::{Request, Response};
use crate::text::SipStr;
use bytes::Bytes;
use std::time::Instant;

/// What a client INVITE transaction asks of the layer after a timer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Followup {
    /// Timer C fired after a provisional response: send a CANCEL (§16.8).
    SendCancel,
    /// The transaction ended before a provisional response: the CANCEL the TU asked for will
    /// never be sent.
    DropCancel(TxKey),
}

/// RFC 3261 §17.1.1: the INVITE client transaction.
#[derive(Debug)]
pub(crate) struct ClientInvite {
    request: Request,
    bytes: Bytes,
    state: InviteState,
}

/// RFC 3261 §17.1.1.2, Figure 5, with RFC 6026 §7.2's Accepted state.
#[derive(Debug)]
enum InviteState {
    /// Waiting for any response. Timer A retransmits (unreliable transports only), doubling
    /// from T1; Timer B gives up at 64*T1. `cancel` is a CANCEL the TU asked for, held back
    /// until a provisional response arrives (§9.1).
    Calling {
        timer_a: Option<Retransmit>,
        timer_b: Instant,
        timer_c: Option<Instant>,
        cancel: Option<TxKey>,
    },
    /// A provisional response arrived: no more retransmission. `timer_b` runs again only after
    /// a CANCEL (§9.1: no final response within 64*T1 of the CANCEL ends the transaction).
    Proceeding {
        timer_c: Option<Instant>,
        timer_b: Option<Instant>,
    },
    /// A 300-699 response arrived and was ACKed; each retransmission of it is ACKed again until
    /// Timer D.
    Completed {
        ack: Bytes,
        timer_d: Instant,
    },
    /// RFC 6026 §7.2: a 2xx arrived. 2xx responses from other forks pass to the TU; a
    /// retransmitted 2xx gets the ACK the TU sent for it again. Timer M ends the wait.
    Accepted {
        timer_m: Instant,
        forks: Vec<Fork>,
    },
    Terminated,
}

/// One 2xx answer (one dialog) to a forked INVITE, and the TU's ACK for it.
#[derive(Debug)]
struct Fork {
    to_tag: Option<SipStr>,
    ack: Option<(Bytes, Peer)>,
}

impl ClientInvite {
    /// Sends the INVITE and starts Timers A, B and (for a proxy) C.
    pub(crate) fn start(request: Request, now: Instant, out: &mut Out<'_>) -> ClientInvite {
        let bytes = request.to_bytes();
        out.send(&bytes);
        let timer_a = (!out.reliable()).then(|| Retransmit::start(now, out.config.t1));
        let timer_b = out.after(now, out.config.timeout());
        let timer_c = out.config.timer_c.map(|c| out.after(now, c));
        ClientInvite { request, bytes, state: InviteState::Calling { timer_a, timer_b, timer_c, cancel: None } }
    }

    pub(crate) fn request(&self) -> &Request {
        &self.request
    }

    pub(crate) fn state(&self) -> Option<TxState> {
        Some(match self.state {
            InviteState::Calling { .. } => TxState::Calling,
            InviteState::Proceeding { .. } => TxState::Proceeding,
            InviteState::Completed { .. } => TxState::Completed,
            InviteState::Accepted { .. } => TxState::Accepted,
            InviteState::Terminated => return None,
        })
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        match &self.state {
            InviteState::Calling { timer_a, timer_b, timer_c, .. } => {
                [timer_a.map(|a| a.at), Some(*timer_b), *timer_c].into_iter().flatten().min()
            }
            InviteState::Proceeding { timer_c, timer_b } => [*timer_c, *timer_b].into_iter().flatten().min(),
            InviteState::Completed { timer_d, .. } => Some(*timer_d),
            InviteState::Accepted { timer_m, .. } => Some(*timer_m),
            InviteState::Terminated => None,
        }
    }

    /// The CANCEL waiting for a provisional response, taken out of the Calling state.
    pub(crate) fn take_pending_cancel(&mut self) -> Option<TxKey> {
        match &mut self.state {
            InviteState::Calling { cancel, .. } => cancel.take(),
            _ => None,
        }
    }

    /// Asks for a CANCEL once a provisional response arrives; `Err` with the key already
    /// waiting.
    pub(crate) fn hold_cancel(&mut self, key: TxKey) -> Result<(), TxKey> {
        match &mut self.state {
            InviteState::Calling { cancel: Some(k), .. } => Err(*k),
            InviteState::Calling { cancel, .. } => {
                *cancel = Some(key);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// §9.1: a CANCEL went out; without a final response within 64*T1 the transaction ends.
    pub(crate) fn cancel_sent(&mut self, now: Instant, out: &Out<'_>) {
        if let InviteState::Proceeding { timer_b, .. } = &mut self.state {
            timer_b.get_or_insert(out.after(now, out.config.timeout()));
        }
    }

    /// §17.1.1.2: a response matched this transaction. Returns what the TU must see.
    pub(crate) fn on_response(
        &mut self,
        response: Response,
        from: Peer,
        now: Instant,
        out: &mut Out<'_>,
    ) -> Option<TxEvent> {
        let status = response.status;
        let waiting = match &self.state {
            InviteState::Calling { .. } => Some(None),
            InviteState::Proceeding { timer_b, .. } => Some(*timer_b),
            _ => None,
        };
        if let Some(timer_b) = waiting {
            self.state = if status < 200 {
                // §16.7 item 2: every provisional response resets Timer C.
                let timer_c = out.config.timer_c.map(|c| out.after(now, c));
                InviteState::Proceeding { timer_c, timer_b }
            } else if status < 300 {
                let fork = Fork { to_tag: to_tag_of_response(&response), ack: None };
                InviteState::Accepted { timer_m: out.after(now, out.config.timeout()), forks: vec![fork] }
            } else {
                let ack = ack_for(&self.request, &response).to_bytes();
                out.send(&ack);
                if out.reliable() {
                    InviteState::Terminated // Timer D is zero
                } else {
                    InviteState::Completed { ack, timer_d: out.after(now, out.config.timer_d) }
                }
            };
            return Some(TxEvent::Response { key: out.key, response, from });
        }
        match &mut self.state {
            InviteState::Completed { ack, .. } => {
                if status >= 300 {
                    out.send(ack);
                }
                None
            }
            InviteState::Accepted { forks, .. } => {
                if !(200..300).contains(&status) {
                    return None;
                }
                let tag = to_tag_of_response(&response);
                if let Some(fork) = forks.iter().find(|f| f.to_tag == tag) {
                    if let Some((ack, peer)) = &fork.ack {
                        out.send_to(peer, ack, None);
                    }
                    return None;
                }
                forks.push(Fork { to_tag: tag, ack: None });
                Some(TxEvent::Response { key: out.key, response, from })
            }
            _ => None,
        }
    }

    /// RFC 6026 §7.2: remembers the TU's ACK for a 2xx so that a retransmission of that 2xx
    /// gets it again.
    pub(crate) fn remember_ack(&mut self, to_tag: Option<SipStr>, ack: Bytes, to: Peer) {
        if let InviteState::Accepted { forks, .. } = &mut self.state {
            match forks.iter_mut().find(|f| f.to_tag == to_tag) {
                Some(f) => f.ack = Some((ack, to)),
                None => forks.push(Fork { to_tag, ack: Some((ack, to)) }),
            }
        }
    }

    pub(crate) fn on_timeout(&mut self, now: Instant, out: &mut Out<'_>) -> Option<Followup> {
        match &mut self.state {
            InviteState::Calling { timer_a, timer_b, timer_c, cancel } => {
                let timer = if now >= *timer_b {
                    Timer::B
                } else if timer_c.is_some_and(|c| now >= c) {
                    Timer::C // §16.8: no provisional response yet, behave as for a 408
                } else {
                    if let Some(a) = timer_a.filter(|a| now >= a.at) {
                        out.send(&self.bytes);
                        *timer_a = Some(a.next(now, None));
                    }
                    return None;
                };
                let dropped = cancel.take();
                self.time_out(timer, out);
                dropped.map(Followup::DropCancel)
            }
            InviteState::Proceeding { timer_c, timer_b } => {
                if timer_b.is_some_and(|b| now >= b) {
                    self.time_out(Timer::B, out);
                    None
                } else if timer_c.is_some_and(|c| now >= c) {
                    *timer_c = None;
                    Some(Followup::SendCancel)
                } else {
                    None
                }
            }
            InviteState::Completed { timer_d: t, .. } | InviteState::Accepted { timer_m: t, .. } => {
                if now >= *t {
                    self.state = InviteState::Terminated;
                }
                None
            }
            InviteState::Terminated => None,
        }
    }

    fn time_out(&mut self, timer: Timer, out: &mut Out<'_>) {
        let response = self.request.reply(408, "Request Timeout");
        out.event(TxEvent::Timeout { key: out.key, timer, response });
        self.state = InviteState::Terminated;
    }

    /// §17.1.4: the transport failed.
    pub(crate) fn fail(&mut self) -> Option<Followup> {
        let dropped = self.take_pending_cancel();
        self.state = InviteState::Terminated;
        dropped.map(Followup::DropCancel)
    }
}

/// RFC 3261 §17.1.2: the non-INVITE client transaction.
#[derive(Debug)]
pub(crate) struct ClientNonInvite {
    request: Request,
    bytes: Bytes,
    state: NonInviteState,
}

/// RFC 3261 §17.1.2.2, Figure 6.
#[derive(Debug)]
enum NonInviteState {
    /// Timer E retransmits (unreliable transports only), doubling from T1 up to T2; Timer F
    /// gives up at 64*T1.
    Trying {
        timer_e: Option<Retransmit>,
        timer_f: Instant,
    },
    /// A provisional response arrived: Timer E keeps firing, every T2.
    Proceeding {
        timer_e: Option<Retransmit>,
        timer_f: Instant,
    },
    /// A final response arrived; retransmissions of it are absorbed until Timer K.
    Completed {
        timer_k: Instant,
    },
    Terminated,
}

impl ClientNonInvite {
    pub(crate) fn start(request: Request, now: Instant, out: &mut Out<'_>) -> ClientNonInvite {
        let bytes = request.to_bytes();
        out.send(&bytes);
        let timer_e = (!out.reliable()).then(|| Retransmit::start(now, out.config.t1));
        let timer_f = out.after(now, out.config.timeout());
        ClientNonInvite { request, bytes, state: NonInviteState::Trying { timer_e, timer_f } }
    }

    pub(crate) fn request(&self) -> &Request {
        &self.request
    }

    pub(crate) fn state(&self) -> Option<TxState> {
        Some(match self.state {
            NonInviteState::Trying { .. } => TxState::Trying,
            NonInviteState::Proceeding { .. } => TxState::Proceeding,
            NonInviteState::Completed { .. } => TxState::Completed,
            NonInviteState::Terminated => return None,
        })
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        match &self.state {
            NonInviteState::Trying { timer_e, timer_f } | NonInviteState::Proceeding { timer_e, timer_f } => {
                Some(timer_e.map_or(*timer_f, |e| e.at.min(*timer_f)))
            }
            NonInviteState::Completed { timer_k } => Some(*timer_k),
            NonInviteState::Terminated => None,
        }
    }

    pub(crate) fn on_response(
        &mut self,
        response: Response,
        from: Peer,
        now: Instant,
        out: &mut Out<'_>,
    ) -> Option<TxEvent> {
        match &self.state {
            NonInviteState::Trying { timer_e, timer_f } | NonInviteState::Proceeding { timer_e, timer_f } => {
                self.state = if response.status < 200 {
                    NonInviteState::Proceeding { timer_e: *timer_e, timer_f: *timer_f }
                } else if out.reliable() {
                    NonInviteState::Terminated // Timer K is zero
                } else {
                    NonInviteState::Completed { timer_k: out.after(now, out.config.t4) }
                };
                Some(TxEvent::Response { key: out.key, response, from })
            }
            NonInviteState::Completed { .. } | NonInviteState::Terminated => None,
        }
    }

    pub(crate) fn on_timeout(&mut self, now: Instant, out: &mut Out<'_>) {
        let proceeding = matches!(self.state, NonInviteState::Proceeding { .. });
        match &mut self.state {
            NonInviteState::Trying { timer_e, timer_f } | NonInviteState::Proceeding { timer_e, timer_f } => {
                if now >= *timer_f {
                    let response = self.request.reply(408, "Request Timeout");
                    out.event(TxEvent::Timeout { key: out.key, timer: Timer::F, response });
                    self.state = NonInviteState::Terminated;
                } else if let Some(e) = timer_e.filter(|e| now >= e.at) {
                    out.send(&self.bytes);
                    // §17.1.2.2: doubling up to T2 while Trying, T2 once Proceeding.
                    let t2 = out.config.t2;
                    *timer_e = Some(if proceeding {
                        Retransmit { interval: t2, ..e }.next(now, Some(t2))
                    } else {
                        e.next(now, Some(t2))
                    });
                }
            }
            NonInviteState::Completed { timer_k } => {
                if now >= *timer_k {
                    self.state = NonInviteState::Terminated;
                }
            }
            NonInviteState::Terminated => {}
        }
    }

    pub(crate) fn fail(&mut self) {
        self.state = NonInviteState::Terminated;
    }
}
