//! REFER (RFC 3515) as the server sends it: a phone is asked to call someone itself (the
//! mailbox's call back, click-to-call, an operator's transfer), and the NOTIFYs it sends back
//! (RFC 3515 §2.4.5, a `message/sipfrag` of its own call) say how that call goes.

use std::time::Duration;

use sambung_sip::dialog::Dialog;
use sambung_sip::transaction::Peer;
use sambung_sip::{HeaderName, Method, Request, SipStr, Transport};

use crate::pbx::Ctx;

/// How long the outcome of an accepted REFER is waited for (the phone's own call rings
/// meanwhile); a phone that never reports is given up on after this.
pub(crate) const REFER_WAIT: Duration = Duration::from_secs(120);

/// A REFER in `dialog` asking the phone at `peer` to call `refer_to` (a URI), on behalf of
/// `referred_by` (a username of ours, RFC 3892) when there is one.
pub(crate) fn request(
    ctx: &Ctx<'_>,
    dialog: &mut Dialog,
    peer: &Peer,
    refer_to: &str,
    referred_by: Option<&str>,
) -> Request {
    let mut refer = dialog.create_request(Method::Refer);
    refer.headers.push(HeaderName::from("Refer-To"), SipStr::from(format!("<{refer_to}>")));
    if let Some(user) = referred_by {
        let (host, port) = ctx.sip.local_address(peer);
        refer.headers.push(HeaderName::from("Referred-By"), SipStr::from(format!("<sip:{user}@{host}:{port}>")));
    }
    // RFC 3515 §2.4.1: a REFER carries the referrer's Contact.
    refer.headers.push(HeaderName::Contact, ctx.sip.contact_for(peer));
    refer
}

/// The URI a phone is asked to call: a SIP URI as given, else `target` (a user, extension or
/// number) at this server's address as the phone reaches it.
pub(crate) fn target_uri(ctx: &Ctx<'_>, peer: &Peer, target: &str) -> String {
    if target.starts_with("sip:") || target.starts_with("sips:") {
        return target.to_owned();
    }
    let (host, port) = ctx.sip.local_address(peer);
    let transport = match peer.transport {
        Transport::Udp => String::new(),
        ref t => format!(";transport={}", t.as_str().to_ascii_lowercase()),
    };
    format!("sip:{}@{host}:{port}{transport}", escape_user(target))
}

/// What a NOTIFY of the REFER's implicit subscription says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// The phone's call is under way (a provisional status, or none yet).
    Pending,
    /// Its call was answered, with this 2xx.
    Answered(u16),
    /// Its call failed with this status.
    Failed(u16),
    /// The subscription ended without a final status.
    Ended,
}

/// The progress a NOTIFY reports; `None` when it is not one of a REFER (`Event: refer`).
pub(crate) fn progress(notify: &Request) -> Option<Progress> {
    let event = notify.headers.get(HeaderName::Event)?;
    if !event.trim().to_ascii_lowercase().starts_with("refer") {
        return None;
    }
    let terminated = notify
        .headers
        .get(HeaderName::from("Subscription-State"))
        .is_some_and(|s| s.trim_start().to_ascii_lowercase().starts_with("terminated"));
    Some(match sipfrag_status(&notify.body) {
        Some(status @ 200..=299) => Progress::Answered(status),
        Some(status @ 300..) => Progress::Failed(status),
        _ if terminated => Progress::Ended,
        _ => Progress::Pending,
    })
}

/// The status line of a `message/sipfrag` body (RFC 3420): `SIP/2.0 200 OK`.
fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.lines().next()?.trim();
    let rest = line.strip_prefix("SIP/2.0")?.trim_start();
    rest.split_ascii_whitespace().next()?.parse().ok()
}

/// `user` as the user part of a SIP URI (RFC 3261 §25.1: unreserved characters and the
/// user-unreserved ones as they are, the rest escaped).
fn escape_user(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    for b in user.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sipfrag_status_lines() {
        assert_eq!(sipfrag_status(b"SIP/2.0 200 OK\r\n"), Some(200));
        assert_eq!(sipfrag_status(b"SIP/2.0 100 Trying"), Some(100));
        assert_eq!(sipfrag_status(b"SIP/2.0 486 Busy Here\r\nContent-Length: 0\r\n"), Some(486));
        assert_eq!(sipfrag_status(b"INVITE sip:x SIP/2.0"), None);
        assert_eq!(sipfrag_status(b""), None);
        assert_eq!(sipfrag_status(&[0xff, 0xfe]), None);
    }

    #[test]
    fn targets_are_escaped_for_the_user_part() {
        assert_eq!(escape_user("bob"), "bob");
        assert_eq!(escape_user("+4930123*9"), "+4930123*9");
        assert_eq!(escape_user("#21 x@y"), "%2321%20x%40y");
    }

    fn notify(extra: &str, body: &str) -> Request {
        let text = format!(
            "NOTIFY sip:sambung@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKn\r\n\
             From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: c\r\nCSeq: 1 NOTIFY\r\n{extra}\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        match sambung_sip::Message::parse(bytes::Bytes::from(text)).unwrap() {
            sambung_sip::Message::Request(r) => r,
            sambung_sip::Message::Response(_) => unreachable!(),
        }
    }

    #[test]
    fn notifies_of_a_refer_report_its_call() {
        let active = "Event: refer\r\nSubscription-State: active\r\n";
        let done = "Event: refer;id=3\r\nSubscription-State: terminated;reason=noresource\r\n";
        assert_eq!(progress(&notify(active, "SIP/2.0 100 Trying\r\n")), Some(Progress::Pending));
        assert_eq!(progress(&notify(done, "SIP/2.0 200 OK\r\n")), Some(Progress::Answered(200)));
        assert_eq!(progress(&notify(done, "SIP/2.0 486 Busy Here\r\n")), Some(Progress::Failed(486)));
        assert_eq!(progress(&notify(done, "")), Some(Progress::Ended));
        assert_eq!(progress(&notify("Event: presence\r\n", "SIP/2.0 200 OK\r\n")), None);
        assert_eq!(progress(&notify("", "SIP/2.0 200 OK\r\n")), None);
    }
}
