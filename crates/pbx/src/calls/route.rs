//! Where a call goes when the callee cannot take it: forwarding (always, busy, no answer,
//! offline), do-not-disturb and voicemail, as a carrier does it.
//!
//! A call rings one *target* at a time: the callee's devices first. The target's settings
//! ([`Routing`]) decide each next step ([`Step`]): ring the devices, forward to another local
//! account or an outside SIP URI, answer with the voicemail application, or fail. Each
//! retargeting is recorded ([`Hop`]) and sent on the new B leg as History-Info (RFC 7044, with
//! the RFC 4458 `cause` of each retargeting) and Diversion (RFC 5806), which older equipment reads.
//! The caller's identity stays in From. A target seen before in the same call is a loop: the
//! call ends with `482 Loop Detected`, as it does after [`MAX_DIVERSIONS`] forwards.
//!
//! No-answer forwarding first cancels the ringing devices, then rings the new target; answers
//! from the cancelled devices that cross the CANCEL are acknowledged and hung up.

use std::sync::Arc;

use sambung_sip::Uri;

use crate::registrar::{Account, Routing, Target};

/// Most forwards one call may take.
pub(crate) const MAX_DIVERSIONS: usize = 5;

/// Why a call was retargeted: RFC 4458 cause values, RFC 5806 Diversion reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    /// Forward always.
    Unconditional,
    /// Every device was busy or declined (or do-not-disturb).
    Busy,
    /// Nobody answered in time.
    NoAnswer,
    /// No device registered, or none reachable.
    Unavailable,
}

impl Cause {
    /// The RFC 4458 `cause` URI parameter.
    pub(crate) fn code(self) -> u16 {
        match self {
            Cause::Unconditional => 302,
            Cause::Busy => 486,
            Cause::NoAnswer => 408,
            Cause::Unavailable => 503,
        }
    }

    /// The RFC 5806 Diversion `reason`.
    pub(crate) fn diversion(self) -> &'static str {
        match self {
            Cause::Unconditional => "unconditional",
            Cause::Busy => "user-busy",
            Cause::NoAnswer => "no-answer",
            Cause::Unavailable => "unavailable",
        }
    }
}

/// One target of the call, in the order they were tried.
#[derive(Clone, Debug)]
pub(crate) struct Hop {
    /// The target's address of record (or outside URI).
    pub uri: String,
    /// The local account, if the target is one.
    pub account: Option<i64>,
    /// Why the call came to this target (`None` for the callee the caller dialled).
    pub cause: Option<Cause>,
}

/// What to do next with a call.
#[derive(Clone, Debug)]
pub(crate) enum Step {
    /// Ring the target account's registered devices.
    Ring,
    /// Forward to this target.
    Forward(Target, Cause),
    /// Answer with the target account's voicemail; the status is what the caller hears when
    /// the voicemail cannot answer (no relay, or no offer to answer).
    Voicemail(u16, &'static str),
    /// End the call with this status.
    Fail(u16, &'static str),
}

/// The first step for a call reaching `account` with `online` devices.
pub(crate) fn first_step(routing: &Routing, online: bool) -> Step {
    if let Some(target) = &routing.forward_always {
        return Step::Forward(target.clone(), Cause::Unconditional);
    }
    if routing.dnd {
        // Do-not-disturb: nothing rings; the call is treated as busy (busy forwarding,
        // voicemail, or busy).
        return busy_step(routing, 486, "Busy Here");
    }
    if !online {
        return offline_step(routing);
    }
    Step::Ring
}

/// No device is online (or none could be reached).
pub(crate) fn offline_step(routing: &Routing) -> Step {
    match &routing.forward_offline {
        Some(target) => Step::Forward(target.clone(), Cause::Unavailable),
        None if routing.voicemail => Step::Voicemail(480, "Temporarily Unavailable"),
        None => Step::Fail(480, "Temporarily Unavailable"),
    }
}

/// Every device was busy or declined.
pub(crate) fn busy_step(routing: &Routing, status: u16, reason: &str) -> Step {
    let reason = if status == 486 { "Busy Here" } else { static_reason(reason) };
    match &routing.forward_busy {
        Some(target) => Step::Forward(target.clone(), Cause::Busy),
        None if routing.voicemail => Step::Voicemail(status, reason),
        None => Step::Fail(status, reason),
    }
}

/// Nobody answered within the account's ring time.
pub(crate) fn no_answer_step(routing: &Routing) -> Step {
    match &routing.forward_no_answer {
        Some(target) => Step::Forward(target.clone(), Cause::NoAnswer),
        None if routing.voicemail => Step::Voicemail(480, "No Answer"),
        None => Step::Fail(480, "No Answer"),
    }
}

/// Whether the ring time of `routing` ends in a next step (forwarding or voicemail) rather than
/// in the server-wide ring timeout.
pub(crate) fn has_no_answer_step(routing: &Routing, voicemail_can_answer: bool) -> bool {
    routing.forward_no_answer.is_some() || (routing.voicemail && voicemail_can_answer)
}

fn static_reason(reason: &str) -> &'static str {
    match reason {
        "Decline" => "Decline",
        "Busy Everywhere" => "Busy Everywhere",
        _ => "Busy Here",
    }
}

/// Where a forwarded call goes, once resolved.
#[derive(Debug)]
pub(crate) enum Resolved {
    Account(Arc<Account>),
    /// An outside URI.
    Outside(Uri),
    /// A phone number, out through the trunks.
    Number(crate::trunks::Number),
    /// A ring group.
    Group(usize),
    /// The target cannot be reached (unknown user, a URI we cannot call).
    Invalid(&'static str),
}

/// The History-Info header value (RFC 7044) for a B leg after `hops`: one entry per target,
/// indexed 1, 1.1, 1.1.1 ...; each retargeted entry carries the Reason of its retargeting, and
/// each later target its `cause` (RFC 4458) and the index it was mapped from (`mp`).
pub(crate) fn history_info(hops: &[Hop]) -> String {
    let mut entries = Vec::with_capacity(hops.len());
    let mut index = String::from("1");
    for (i, hop) in hops.iter().enumerate() {
        let mut uri = hop.uri.clone();
        if let Some(cause) = hop.cause {
            uri.push_str(&format!(";cause={}", cause.code()));
        }
        if let Some(next) = hops.get(i + 1).and_then(|h| h.cause) {
            uri.push_str(&format!("?Reason=SIP%3Bcause%3D{}", next.code()));
        }
        let mut entry = format!("<{uri}>;index={index}");
        if i > 0 {
            let parent = &index[..index.len() - 2];
            entry.push_str(&format!(";mp={parent}"));
        }
        entries.push(entry);
        index.push_str(".1");
    }
    entries.join(", ")
}

/// The Diversion header values (RFC 5806), the latest diversion first.
pub(crate) fn diversions(hops: &[Hop]) -> Vec<String> {
    let mut out = Vec::new();
    for pair in hops.windows(2).rev() {
        let Some(cause) = pair[1].cause else { continue };
        // Each header stands for one diversion (RFC 5806 §2: counter counts the diversions
        // that header represents).
        out.push(format!("<{}>;reason={};counter=1", pair[0].uri, cause.diversion()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(uri: &str, cause: Option<Cause>) -> Hop {
        Hop { uri: uri.into(), account: None, cause }
    }

    #[test]
    fn history_info_indexes_each_retargeting() {
        let hops = [
            hop("sip:bob@example.com", None),
            hop("sip:carol@example.com", Some(Cause::Unconditional)),
            hop("sip:dave@example.com", Some(Cause::NoAnswer)),
        ];
        assert_eq!(
            history_info(&hops),
            "<sip:bob@example.com?Reason=SIP%3Bcause%3D302>;index=1, \
             <sip:carol@example.com;cause=302?Reason=SIP%3Bcause%3D408>;index=1.1;mp=1, \
             <sip:dave@example.com;cause=408>;index=1.1.1;mp=1.1"
        );
        assert_eq!(
            diversions(&hops),
            [
                "<sip:carol@example.com>;reason=no-answer;counter=1",
                "<sip:bob@example.com>;reason=unconditional;counter=1"
            ]
        );
        for value in history_info(&hops).split(", ") {
            let addr = value.split_once(">;").unwrap().0.trim_start_matches('<');
            Uri::parse(addr).expect("each History-Info entry is a URI");
        }
    }

    #[test]
    fn steps_follow_the_settings() {
        let mut routing = Routing::default();
        assert!(matches!(first_step(&routing, true), Step::Ring));
        assert!(matches!(first_step(&routing, false), Step::Voicemail(480, _)));
        routing.voicemail = false;
        assert!(matches!(first_step(&routing, false), Step::Fail(480, _)));
        assert!(matches!(busy_step(&routing, 486, "Busy Here"), Step::Fail(486, _)));
        assert!(matches!(busy_step(&routing, 603, "Decline"), Step::Fail(603, "Decline")));
        routing.forward_busy = Target::parse("carol");
        assert!(matches!(busy_step(&routing, 486, ""), Step::Forward(Target::Local(_), Cause::Busy)));
        routing.dnd = true;
        assert!(matches!(first_step(&routing, true), Step::Forward(Target::Local(_), Cause::Busy)));
        routing.forward_busy = None;
        assert!(matches!(first_step(&routing, true), Step::Fail(486, _)));
        routing.forward_always = Target::parse("sip:desk@192.0.2.1:5062");
        assert!(matches!(first_step(&routing, true), Step::Forward(Target::Uri(_), Cause::Unconditional)));
    }
}
