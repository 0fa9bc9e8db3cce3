//! Dialogs (RFC 3261 §12): the state two user agents share between an INVITE (or SUBSCRIBE,
//! REFER ...) and its BYE — the identifiers, the sequence numbers, the target and route set —
//! and the construction of requests inside it (§12.2.1.1).
//!
//! A [`Dialog`] is plain data plus rules: it sends nothing and keeps no time. The UA core
//! creates one from the request and response that establish it ([`Dialog::new_uac`],
//! [`Dialog::new_uas`]), finds it again with [`DialogId::of_request`] and
//! [`DialogId::of_response`], feeds it what arrives ([`Dialog::handle_request`],
//! [`Dialog::handle_response`]) and builds requests with [`Dialog::create_request`], to which it
//! adds its Via (see [`crate::transaction::push_via`]) before handing them to a client
//! transaction.

use crate::header::{HeaderName, Headers};
use crate::message::{Request, Response};
use crate::method::Method;
use crate::text::{SipStr, split_commas};
use crate::typed::{NameAddr, Transport};
use crate::uri::Uri;
use bytes::Bytes;

/// What identifies a dialog (§12): the Call-ID and the two tags, seen from this side.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DialogId {
    pub call_id: SipStr,
    pub local_tag: SipStr,
    /// Empty when the peer is an RFC 2543 UA that sent no From tag (§12.1.1: a null tag).
    pub remote_tag: SipStr,
}

impl DialogId {
    /// The dialog an incoming request names (§12.2.2): local tag from To, remote tag from
    /// From. `None` for a request with no To tag, which is outside any dialog.
    pub fn of_request(request: &Request) -> Option<DialogId> {
        Some(DialogId {
            call_id: request.headers.get(HeaderName::CallId)?.clone(),
            local_tag: tag(&request.to()?)?,
            remote_tag: tag(&request.from()?).unwrap_or_default(),
        })
    }

    /// The dialog a response to one of our requests names (§12.1.2): local tag from From,
    /// remote tag from To. `None` when the response has no To tag.
    pub fn of_response(response: &Response) -> Option<DialogId> {
        Some(DialogId {
            call_id: response.headers.get(HeaderName::CallId)?.clone(),
            local_tag: tag(&response.from()?).unwrap_or_default(),
            remote_tag: tag(&response.to()?)?,
        })
    }
}

fn tag(addr: &NameAddr) -> Option<SipStr> {
    addr.params.get("tag").flatten().filter(|t| !t.is_empty()).cloned()
}

/// §12.1: an early dialog (from a provisional response) becomes confirmed with the 2xx.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DialogState {
    Early,
    Confirmed,
    /// Ended by BYE, by a non-2xx final answer to the request that created it (§12.3), or by a
    /// 481 or 408 to a request inside it (§12.2.1.2).
    Terminated,
}

/// Why a dialog refused a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    #[error("the message lacks {0}")]
    Missing(&'static str),
    #[error("a {0} response does not create a dialog")]
    NotDialogCreating(u16),
    #[error("the message does not belong to this dialog")]
    NotThisDialog,
    #[error("CSeq {got} is lower than the remote sequence number {remote}")]
    OutOfOrder { got: u32, remote: u32 },
}

impl DialogError {
    /// The status to answer a refused request with: 481 for a request of no dialog we know
    /// (§12.2.2), 500 for one out of order (§12.2.2), 400 for a malformed one.
    pub fn status(&self) -> u16 {
        match self {
            DialogError::Missing(_) => 400,
            DialogError::NotThisDialog => 481,
            DialogError::OutOfOrder { .. } | DialogError::NotDialogCreating(_) => 500,
        }
    }
}

/// One dialog, seen from this user agent (§12).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dialog {
    id: DialogId,
    state: DialogState,
    /// The CSeq number of our last request; empty for a UAS until it sends one (§12.1.1).
    local_seq: Option<u32>,
    /// The CSeq number of the peer's last request; empty for a UAC until one comes (§12.1.2).
    remote_seq: Option<u32>,
    /// Our From (as UAC) or To (as UAS), tag included.
    local: NameAddr,
    /// The peer's address, tag included.
    remote: NameAddr,
    remote_target: Uri,
    route_set: Vec<NameAddr>,
    secure: bool,
    /// The Contact we put in the message that created the dialog, repeated in target refresh
    /// requests (§12.2.1.1).
    local_contact: Option<SipStr>,
    /// The CSeq number of the last INVITE we sent, for its ACK (§13.2.2.4).
    invite_seq: Option<u32>,
}

impl Dialog {
    /// The UAS side (§12.1.1), from the request received and the response (101-299 with a To
    /// tag) sent to it. The route set is the request's Record-Route in order; the remote
    /// target its Contact. `secure` holds when the Request-URI is SIPS and the request came
    /// over TLS (its top Via says TLS or WSS).
    pub fn new_uas(request: &Request, response: &Response) -> Result<Dialog, DialogError> {
        check_creating(response)?;
        let local = response.to().ok_or(DialogError::Missing("To"))?;
        let remote = request.from().ok_or(DialogError::Missing("From"))?;
        Ok(Dialog {
            id: DialogId {
                call_id: request.headers.get(HeaderName::CallId).ok_or(DialogError::Missing("Call-ID"))?.clone(),
                local_tag: tag(&local).ok_or(DialogError::Missing("To tag"))?,
                remote_tag: tag(&remote).unwrap_or_default(),
            },
            state: state_for(response.status),
            local_seq: None,
            remote_seq: Some(request.cseq().ok_or(DialogError::Missing("CSeq"))?.seq),
            local,
            remote,
            remote_target: contact(&request.headers).ok_or(DialogError::Missing("Contact"))?,
            route_set: record_route(&request.headers),
            secure: is_secure(request),
            local_contact: first_contact(&response.headers),
            invite_seq: None,
        })
    }

    /// The UAC side (§12.1.2), from the request sent and a response to it (101-199 with a To
    /// tag: an early dialog; 2xx: a confirmed one). The route set is the response's
    /// Record-Route in reverse; the remote target its Contact.
    pub fn new_uac(request: &Request, response: &Response) -> Result<Dialog, DialogError> {
        check_creating(response)?;
        let local = request.from().ok_or(DialogError::Missing("From"))?;
        let remote = response.to().ok_or(DialogError::Missing("To"))?;
        let cseq = request.cseq().ok_or(DialogError::Missing("CSeq"))?;
        let mut route_set = record_route(&response.headers);
        route_set.reverse();
        Ok(Dialog {
            id: DialogId {
                call_id: request.headers.get(HeaderName::CallId).ok_or(DialogError::Missing("Call-ID"))?.clone(),
                local_tag: tag(&local).ok_or(DialogError::Missing("From tag"))?,
                remote_tag: tag(&remote).ok_or(DialogError::Missing("To tag"))?,
            },
            state: state_for(response.status),
            local_seq: Some(cseq.seq),
            remote_seq: None,
            local,
            remote,
            remote_target: contact(&response.headers).ok_or(DialogError::Missing("Contact"))?,
            route_set,
            secure: is_secure(request),
            local_contact: first_contact(&request.headers),
            invite_seq: (request.method == Method::Invite).then_some(cseq.seq),
        })
    }

    pub fn id(&self) -> &DialogId {
        &self.id
    }

    pub fn state(&self) -> DialogState {
        self.state
    }

    pub fn local_seq(&self) -> Option<u32> {
        self.local_seq
    }

    pub fn remote_seq(&self) -> Option<u32> {
        self.remote_seq
    }

    /// Our address in the dialog (the From of our requests), tag included.
    pub fn local_uri(&self) -> &NameAddr {
        &self.local
    }

    /// The peer's address (the To of our requests), tag included.
    pub fn remote_uri(&self) -> &NameAddr {
        &self.remote
    }

    /// Where requests inside the dialog go (the peer's Contact).
    pub fn remote_target(&self) -> &Uri {
        &self.remote_target
    }

    /// The proxies requests pass through, first hop first.
    pub fn route_set(&self) -> &[NameAddr] {
        &self.route_set
    }

    pub fn secure(&self) -> bool {
        self.secure
    }

    /// The Contact value put into target refresh requests (§12.2.1.1); change it when this UA
    /// moves.
    pub fn set_local_contact(&mut self, contact: Option<SipStr>) {
        self.local_contact = contact;
    }

    /// A request inside the dialog (§12.2.1.1): To, From, Call-ID from the dialog; CSeq one
    /// above the last (ACK reuses the number of the INVITE it acknowledges, §13.2.2.4); the
    /// Request-URI and Route from the remote target and route set — loose routing when the
    /// first route has `lr`, else the strict-routing rewrite (§12.2.1.1, §16.12.1.2). Carries
    /// no Via and no body.
    pub fn create_request(&mut self, method: Method) -> Request {
        let seq = match method {
            Method::Ack => self.invite_seq.or(self.local_seq).unwrap_or(1),
            _ => {
                let seq = self.local_seq.map_or(1, |s| s.wrapping_add(1));
                self.local_seq = Some(seq);
                seq
            }
        };
        if method == Method::Invite {
            self.invite_seq = Some(seq);
        }
        let (uri, routes) = self.request_target();
        let mut headers = Headers::new();
        for route in routes {
            headers.push(HeaderName::Route, route);
        }
        headers.push(HeaderName::MaxForwards, SipStr::from_static("70"));
        headers.push(HeaderName::To, SipStr::from(self.remote.to_string()));
        headers.push(HeaderName::From, SipStr::from(self.local.to_string()));
        headers.push(HeaderName::CallId, self.id.call_id.clone());
        headers.push(HeaderName::CSeq, SipStr::from(format!("{seq} {method}")));
        if is_target_refresh(&method)
            && let Some(contact) = &self.local_contact
        {
            headers.push(HeaderName::Contact, contact.clone());
        }
        headers.push(HeaderName::ContentLength, SipStr::from_static("0"));
        Request { method, uri, headers, body: Bytes::new() }
    }

    /// The Request-URI and Route values of a request (§12.2.1.1).
    fn request_target(&self) -> (Uri, Vec<SipStr>) {
        let Some(first) = self.route_set.first() else { return (self.remote_target.clone(), vec![]) };
        let loose = first.uri.as_sip().is_some_and(|u| u.params.has("lr"));
        if loose {
            return (self.remote_target.clone(), self.route_set.iter().map(|r| SipStr::from(r.to_string())).collect());
        }
        // A strict router: it gets the request addressed to itself and the remote target
        // rides at the end of the Route set.
        let mut uri = first.uri.clone();
        if let Some(sip) = uri.as_sip_mut() {
            sip.params.remove("method"); // not allowed in a Request-URI (§19.1.1, Table 1)
            sip.headers = None;
        }
        let mut routes: Vec<SipStr> = self.route_set[1..].iter().map(|r| SipStr::from(r.to_string())).collect();
        routes.push(SipStr::from(format!("<{}>", self.remote_target)));
        (uri, routes)
    }

    /// A request that arrived inside this dialog (§12.2.2). `Err` when it names another
    /// dialog (answer 481) or its CSeq is lower than the remote sequence number (answer 500).
    /// A target refresh request (INVITE, UPDATE, SUBSCRIBE, NOTIFY) with a Contact replaces
    /// the remote target; a BYE ends the dialog.
    pub fn handle_request(&mut self, request: &Request) -> Result<(), DialogError> {
        if DialogId::of_request(request).as_ref() != Some(&self.id) {
            return Err(DialogError::NotThisDialog);
        }
        let cseq = request.cseq().ok_or(DialogError::Missing("CSeq"))?;
        // ACK and CANCEL carry the number of the INVITE they belong to.
        if !matches!(request.method, Method::Ack | Method::Cancel) {
            if let Some(remote) = self.remote_seq.filter(|&r| cseq.seq < r) {
                return Err(DialogError::OutOfOrder { got: cseq.seq, remote });
            }
            self.remote_seq = Some(cseq.seq);
        }
        if is_target_refresh(&request.method)
            && let Some(target) = contact(&request.headers)
        {
            self.remote_target = target;
        }
        if request.method == Method::Bye {
            self.state = DialogState::Terminated;
        }
        Ok(())
    }

    /// A response to a request this side sent in the dialog, including later responses to
    /// the request that created it (§12.1.2, §12.2.1.2, §13.2.2.4). A 2xx confirms an early
    /// dialog (its Record-Route then recomputes the route set) and a 2xx to a target refresh
    /// replaces the remote target; a 481 or 408, a final answer to BYE, or a non-2xx final
    /// answer to the INVITE of an early dialog ends it.
    pub fn handle_response(&mut self, response: &Response) -> Result<(), DialogError> {
        if DialogId::of_response(response).as_ref() != Some(&self.id) {
            return Err(DialogError::NotThisDialog);
        }
        let method = response.cseq().ok_or(DialogError::Missing("CSeq"))?.method;
        let status = response.status;
        if status < 200 {
            if self.state == DialogState::Early
                && status > 100
                && let Some(target) = contact(&response.headers)
            {
                self.remote_target = target;
            }
            return Ok(());
        }
        if method == Method::Bye || status == 481 || status == 408 {
            self.state = DialogState::Terminated;
        } else if status < 300 {
            if self.state == DialogState::Early && method == Method::Invite {
                self.state = DialogState::Confirmed;
                let mut routes = record_route(&response.headers);
                routes.reverse();
                self.route_set = routes;
            }
            if is_target_refresh(&method)
                && let Some(target) = contact(&response.headers)
            {
                self.remote_target = target;
            }
        } else if self.state == DialogState::Early && method == Method::Invite {
            self.state = DialogState::Terminated; // §12.3
        }
        Ok(())
    }

    /// The UAS side sent a response in the dialog: a 2xx to INVITE confirms an early dialog,
    /// a non-2xx final answer to its INVITE ends it (§12.1.1, §12.3).
    pub fn handle_local_response(&mut self, response: &Response) {
        let is_invite = response.cseq().is_some_and(|c| c.method == Method::Invite);
        if self.state != DialogState::Early || !is_invite || response.status < 200 {
            return;
        }
        self.state = if response.is_success() { DialogState::Confirmed } else { DialogState::Terminated };
    }
}

fn check_creating(response: &Response) -> Result<(), DialogError> {
    match response.status {
        101..=299 => Ok(()),
        s => Err(DialogError::NotDialogCreating(s)),
    }
}

fn state_for(status: u16) -> DialogState {
    if status < 200 { DialogState::Early } else { DialogState::Confirmed }
}

/// Requests that may change the remote target: INVITE (RFC 3261 §12.2), UPDATE (RFC 3311),
/// SUBSCRIBE and NOTIFY (RFC 6665 §4.1.2.4, §4.2.2.3).
fn is_target_refresh(method: &Method) -> bool {
    matches!(method, Method::Invite | Method::Update | Method::Subscribe | Method::Notify)
}

fn contact(headers: &Headers) -> Option<Uri> {
    name_addrs(headers, HeaderName::Contact).next().map(|c| c.uri)
}

fn first_contact(headers: &Headers) -> Option<SipStr> {
    let line = headers.get(HeaderName::Contact)?;
    let first = crate::text::trim_lws(split_commas(line).next()?);
    (!first.is_empty() && first != "*").then(|| line.slice_ref(first))
}

fn record_route(headers: &Headers) -> Vec<NameAddr> {
    name_addrs(headers, HeaderName::RecordRoute).collect()
}

/// Every value of a name-addr list header, top first; malformed values are skipped.
fn name_addrs(headers: &Headers, name: HeaderName) -> impl Iterator<Item = NameAddr> + '_ {
    headers.get_all(name).flat_map(|line| split_commas(line).filter_map(move |v| NameAddr::parse_in(line, v).ok()))
}

/// §12.1.1, §12.1.2: SIPS Request-URI, carried over TLS (the top Via names the transport of
/// the hop the request took).
fn is_secure(request: &Request) -> bool {
    let sips = matches!(&request.uri, Uri::Sip(u) if u.secure);
    let tls = request.top_via().is_some_and(|v| matches!(v.transport, Transport::Tls | Transport::Wss));
    sips && tls
}
