//! Attended transfer (RFC 3891, RFC 5589 §7): an INVITE with `Replaces` names a dialog the
//! server has with a phone, and asks that the call on the *other* side of that dialog be taken
//! over. We are the back-to-back agent, so the dialog named is ours with the transferor; the
//! device to ring is the one on the other leg of that call, with `Replaces` naming our dialog
//! with it, so that it takes the new call in place of the old one and hangs the old one up.
//!
//! Calls live on several shards, so every answered call's two dialogs are kept in one
//! [`Replaceable`] table that every shard reads: each dialog, as seen from us, with what the
//! other leg is.

use std::collections::HashMap;

use sambung_sip::Uri;
use sambung_sip::dialog::DialogId;
use sambung_sip::transaction::Peer;

use crate::shard::Locked;

/// The other leg of a call, as a dialog of that call's names it.
#[derive(Clone, Debug)]
pub(crate) struct OtherLeg {
    /// Its account, when it is one of ours.
    pub account: Option<i64>,
    pub peer: Peer,
    /// Its remote target (Contact): where the replacing INVITE goes.
    pub target: Uri,
    /// Our dialog with it.
    pub dialog: DialogId,
}

/// Every answered call's two dialogs, each with the other leg: shared by every shard.
pub(crate) type Replaceable = Locked<HashMap<DialogId, OtherLeg>>;

/// A `Replaces` header value (RFC 3891 §6.1): `call-id;to-tag=T;from-tag=F`, the dialog as the
/// recipient (us) knows it: `to-tag` is ours, `from-tag` the other's.
pub(crate) fn parse(value: &str) -> Option<DialogId> {
    let mut parts = value.split(';');
    let call_id = parts.next()?.trim();
    let (mut ours, mut theirs) = (None, None);
    for param in parts {
        // `early-only` (RFC 3891 §6.1) has no value.
        let Some((name, v)) = param.split_once('=') else { continue };
        match name.trim().to_ascii_lowercase().as_str() {
            "to-tag" => ours = Some(v.trim()),
            "from-tag" => theirs = Some(v.trim()),
            _ => {}
        }
    }
    if call_id.is_empty() {
        return None;
    }
    Some(DialogId {
        call_id: call_id.to_owned().into(),
        local_tag: ours?.to_owned().into(),
        remote_tag: theirs?.to_owned().into(),
    })
}

/// The `Replaces` value that names `dialog` (ours) to the device at its other end.
pub(crate) fn header_for(dialog: &DialogId) -> String {
    format!("{};to-tag={};from-tag={}", dialog.call_id, dialog.remote_tag, dialog.local_tag)
}

/// `%XX` escapes of a URI header value decoded (Refer-To's `?Replaces=`, RFC 3261 §19.1.1).
pub(crate) fn unescape(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = value.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_values_name_our_dialog() {
        let id = parse("abc@x;to-tag=ours;from-tag=theirs").unwrap();
        assert_eq!((&*id.call_id, &*id.local_tag, &*id.remote_tag), ("abc@x", "ours", "theirs"));
        let id = parse("abc@x; from-tag=b ;TO-TAG=a;early-only").unwrap();
        assert_eq!((&*id.local_tag, &*id.remote_tag), ("a", "b"));
        assert!(parse("abc@x;to-tag=a").is_none());
        assert!(parse(";to-tag=a;from-tag=b").is_none());
        assert_eq!(header_for(&parse("c;to-tag=us;from-tag=them").unwrap()), "c;to-tag=them;from-tag=us");
        assert_eq!(unescape("c%40h%3Bto-tag%3D1%3bfrom-tag%3D2"), "c@h;to-tag=1;from-tag=2");
        assert_eq!(unescape("100%"), "100%");
    }
}
