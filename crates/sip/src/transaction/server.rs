//! Server transactions (RFC 3261 §17.2; RFC 6026 §7.1 for the Accepted state).

use super::keys::{to_tag_of_request, to_tag_of_response};
use super::layer::{Out, Retransmit};
use super::{Timer, TxError, TxEvent, TxState};
use crate::message::{Request, Response};
use crate::text::SipStr;
use bytes::Bytes;
use std::time::Instant;

/// What became of an ACK that matched an INVITE server transaction.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AckOutcome {
    /// The ACK for a non-2xx, or a repeated ACK: nothing for the TU.
    Absorbed,
    /// The first ACK for a 2xx: the TU (the dialog) gets it.
    ToTu,
}

/// RFC 3261 §17.2.1: the INVITE server transaction.
#[derive(Debug)]
pub(crate) struct ServerInvite {
    request: Request,
    /// The To tag of the INVITE as received (RFC 2543 matching, §17.2.3).
    request_to_tag: Option<SipStr>,
    /// The To tag of the final response, which an RFC 2543 ACK must carry.
    final_to_tag: Option<SipStr>,
    state: InviteState,
}

/// RFC 3261 §17.2.1, Figure 7, with RFC 6026 §7.1's Accepted state.
#[derive(Debug)]
enum InviteState {
    /// Waiting for the TU. `timer_trying` sends `100 Trying` if the TU stays silent;
    /// `provisional` is the last provisional response, repeated for each retransmitted INVITE.
    Proceeding {
        timer_trying: Option<Instant>,
        provisional: Option<Bytes>,
    },
    /// A 300-699 response went out. Timer G retransmits it (unreliable transports only),
    /// doubling from T1 up to T2, until the ACK comes; Timer H gives up at 64*T1.
    Completed {
        response: Bytes,
        timer_g: Option<Retransmit>,
        timer_h: Instant,
    },
    /// The ACK came; later ACKs are absorbed until Timer I.
    Confirmed {
        timer_i: Instant,
    },
    /// RFC 6026 §7.1: a 2xx went out; retransmitted INVITEs are absorbed until Timer L. With
    /// [`super::Config::retransmit_2xx`] the 2xx is retransmitted like a Timer G response
    /// until the first ACK for it (§13.3.1.4).
    Accepted {
        response: Bytes,
        timer_2xx: Option<Retransmit>,
        timer_l: Instant,
        acked: bool,
    },
    Terminated,
}

impl ServerInvite {
    pub(crate) fn start(request: Request, now: Instant, out: &mut Out<'_>) -> ServerInvite {
        let mut tx = ServerInvite {
            request_to_tag: to_tag_of_request(&request),
            request,
            final_to_tag: None,
            state: InviteState::Proceeding { timer_trying: None, provisional: None },
        };
        match out.config.trying_delay {
            Some(d) if d.is_zero() => tx.send_trying(out),
            Some(d) => tx.state = InviteState::Proceeding { timer_trying: Some(out.after(now, d)), provisional: None },
            None => {}
        }
        tx
    }

    fn send_trying(&mut self, out: &mut Out<'_>) {
        let trying = self.request.reply(100, "Trying").to_bytes();
        out.send(&trying);
        self.state = InviteState::Proceeding { timer_trying: None, provisional: Some(trying) };
    }

    pub(crate) fn request(&self) -> &Request {
        &self.request
    }

    pub(crate) fn request_to_tag(&self) -> Option<&SipStr> {
        self.request_to_tag.as_ref()
    }

    pub(crate) fn final_to_tag(&self) -> Option<&SipStr> {
        self.final_to_tag.as_ref()
    }

    pub(crate) fn state(&self) -> Option<TxState> {
        Some(match self.state {
            InviteState::Proceeding { .. } => TxState::Proceeding,
            InviteState::Completed { .. } => TxState::Completed,
            InviteState::Confirmed { .. } => TxState::Confirmed,
            InviteState::Accepted { .. } => TxState::Accepted,
            InviteState::Terminated => return None,
        })
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        match &self.state {
            InviteState::Proceeding { timer_trying, .. } => *timer_trying,
            InviteState::Completed { timer_g, timer_h, .. } => Some(timer_g.map_or(*timer_h, |g| g.at.min(*timer_h))),
            InviteState::Confirmed { timer_i } => Some(*timer_i),
            InviteState::Accepted { timer_2xx, timer_l, .. } => {
                Some(timer_2xx.map_or(*timer_l, |r| r.at.min(*timer_l)))
            }
            InviteState::Terminated => None,
        }
    }

    /// §17.2.1: the TU passes a response down.
    pub(crate) fn respond(&mut self, response: Response, now: Instant, out: &mut Out<'_>) -> Result<(), TxError> {
        let bytes = response.to_bytes();
        match &mut self.state {
            InviteState::Proceeding { .. } if response.status < 200 => {
                out.send(&bytes);
                self.state = InviteState::Proceeding { timer_trying: None, provisional: Some(bytes) };
            }
            InviteState::Proceeding { .. } if response.status < 300 => {
                out.send(&bytes);
                let timer_2xx = out.config.retransmit_2xx.then(|| Retransmit::start(now, out.config.t1));
                self.final_to_tag = to_tag_of_response(&response);
                self.state = InviteState::Accepted {
                    response: bytes,
                    timer_2xx,
                    timer_l: out.after(now, out.config.timeout()),
                    acked: false,
                };
            }
            InviteState::Proceeding { .. } => {
                out.send(&bytes);
                let timer_g = (!out.reliable()).then(|| Retransmit::start(now, out.config.t1));
                self.final_to_tag = to_tag_of_response(&response);
                self.state =
                    InviteState::Completed { response: bytes, timer_g, timer_h: out.after(now, out.config.timeout()) };
            }
            // RFC 6026 §7.1: further 2xx from the TU (a proxy forwarding forks) pass through.
            InviteState::Accepted { .. } if response.is_success() => out.send(&bytes),
            _ => return Err(TxError::AlreadyFinal),
        }
        Ok(())
    }

    /// §17.2.1: the INVITE came again.
    pub(crate) fn on_retransmission(&mut self, out: &mut Out<'_>) {
        match &self.state {
            InviteState::Proceeding { provisional: Some(r), .. } | InviteState::Completed { response: r, .. } => {
                out.send(r)
            }
            // Confirmed and (RFC 6026) Accepted absorb it.
            _ => {}
        }
    }

    pub(crate) fn on_ack(&mut self, now: Instant, out: &Out<'_>) -> AckOutcome {
        match &mut self.state {
            InviteState::Completed { .. } => {
                self.state = if out.reliable() {
                    InviteState::Terminated // Timer I is zero
                } else {
                    InviteState::Confirmed { timer_i: out.after(now, out.config.t4) }
                };
                AckOutcome::Absorbed
            }
            InviteState::Accepted { timer_2xx, acked, .. } if !*acked => {
                *acked = true;
                *timer_2xx = None;
                AckOutcome::ToTu
            }
            _ => AckOutcome::Absorbed,
        }
    }

    pub(crate) fn on_timeout(&mut self, now: Instant, out: &mut Out<'_>) {
        match &mut self.state {
            InviteState::Proceeding { timer_trying: Some(t), .. } if now >= *t => self.send_trying(out),
            InviteState::Proceeding { .. } => {}
            InviteState::Completed { response, timer_g, timer_h } => {
                if now >= *timer_h {
                    out.event(TxEvent::NoAck { key: out.key, timer: Timer::H });
                    self.state = InviteState::Terminated;
                } else if let Some(g) = timer_g.filter(|g| now >= g.at) {
                    out.send(response);
                    *timer_g = Some(g.next(now, Some(out.config.t2)));
                }
            }
            InviteState::Confirmed { timer_i } => {
                if now >= *timer_i {
                    self.state = InviteState::Terminated;
                }
            }
            InviteState::Accepted { response, timer_2xx, timer_l, acked } => {
                if now >= *timer_l {
                    if out.config.retransmit_2xx && !*acked {
                        out.event(TxEvent::NoAck { key: out.key, timer: Timer::L });
                    }
                    self.state = InviteState::Terminated;
                } else if let Some(r) = timer_2xx.filter(|r| now >= r.at) {
                    out.send(response);
                    *timer_2xx = Some(r.next(now, Some(out.config.t2)));
                }
            }
            InviteState::Terminated => {}
        }
    }

    pub(crate) fn fail(&mut self) {
        self.state = InviteState::Terminated;
    }
}

/// RFC 3261 §17.2.2: the non-INVITE server transaction.
#[derive(Debug)]
pub(crate) struct ServerNonInvite {
    /// Dropped once the final response went out: a completed transaction only answers
    /// retransmissions, with the response's bytes, and at a registrar's rates Timer J keeps
    /// tens of thousands of them (RFC 3261 §17.2.2: 64*T1 over UDP).
    request: Option<Request>,
    request_to_tag: Option<SipStr>,
    state: NonInviteState,
}

/// RFC 3261 §17.2.2, Figure 8.
#[derive(Debug)]
enum NonInviteState {
    /// Waiting for the TU; retransmitted requests are absorbed.
    Trying,
    /// A provisional response went out; it answers each retransmitted request.
    Proceeding {
        provisional: Bytes,
    },
    /// The final response went out; it answers each retransmitted request until Timer J.
    Completed {
        response: Bytes,
        timer_j: Instant,
    },
    Terminated,
}

impl ServerNonInvite {
    pub(crate) fn start(request: Request) -> ServerNonInvite {
        ServerNonInvite {
            request_to_tag: to_tag_of_request(&request),
            request: Some(request),
            state: NonInviteState::Trying,
        }
    }

    /// The request, until the final response went out.
    pub(crate) fn request(&self) -> Option<&Request> {
        self.request.as_ref()
    }

    pub(crate) fn request_to_tag(&self) -> Option<&SipStr> {
        self.request_to_tag.as_ref()
    }

    pub(crate) fn state(&self) -> Option<TxState> {
        Some(match self.state {
            NonInviteState::Trying => TxState::Trying,
            NonInviteState::Proceeding { .. } => TxState::Proceeding,
            NonInviteState::Completed { .. } => TxState::Completed,
            NonInviteState::Terminated => return None,
        })
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        match &self.state {
            NonInviteState::Completed { timer_j, .. } => Some(*timer_j),
            _ => None,
        }
    }

    pub(crate) fn respond(&mut self, response: Response, now: Instant, out: &mut Out<'_>) -> Result<(), TxError> {
        if matches!(self.state, NonInviteState::Completed { .. } | NonInviteState::Terminated) {
            return Err(TxError::AlreadyFinal);
        }
        let bytes = response.to_bytes();
        out.send(&bytes);
        if response.status >= 200 {
            self.request = None;
        }
        self.state = if response.status < 200 {
            NonInviteState::Proceeding { provisional: bytes }
        } else if out.reliable() {
            NonInviteState::Terminated // Timer J is zero
        } else {
            NonInviteState::Completed { response: bytes, timer_j: out.after(now, out.config.timeout()) }
        };
        Ok(())
    }

    /// Once Completed: the final response's bytes and Timer J, all the transaction still needs
    /// (the layer then keeps only those, see `TransactionLayer::completed`).
    pub(crate) fn completed(&self) -> Option<(&Bytes, Instant)> {
        match &self.state {
            NonInviteState::Completed { response, timer_j } => Some((response, *timer_j)),
            _ => None,
        }
    }

    pub(crate) fn on_retransmission(&mut self, out: &mut Out<'_>) {
        match &self.state {
            NonInviteState::Proceeding { provisional: r } | NonInviteState::Completed { response: r, .. } => {
                out.send(r)
            }
            NonInviteState::Trying | NonInviteState::Terminated => {}
        }
    }

    pub(crate) fn on_timeout(&mut self, now: Instant) {
        if let NonInviteState::Completed { timer_j, .. } = &self.state
            && now >= *timer_j
        {
            self.state = NonInviteState::Terminated;
        }
    }

    pub(crate) fn fail(&mut self) {
        self.state = NonInviteState::Terminated;
    }
}
