//! Keyframe requests by signalling: the XML media control of RFC 5168, a SIP INFO whose
//! `application/media_control+xml` body asks the encoder for a `picture_fast_update`. Video
//! phones that take no RTCP feedback (no `a=rtcp-fb` with `pli` or `ccm fir` in their
//! description) are asked this way when the browser on the other leg needs a keyframe; a
//! phone's own such INFO toward a browser becomes an RTCP PLI at the relay. Between two
//! phones the INFO is carried across as any other.

use sambung_media::sdp::MediaType;
use sambung_sip::{HeaderName, Method, Request};
use tracing::debug;

use super::call::{Call, Media};
use super::{Purpose, Side};
use crate::pbx::Ctx;
use crate::sip::Owner;

const CONTENT_TYPE: &str = "application/media_control+xml";

/// The request for a keyframe (RFC 5168 §3).
const PICTURE_FAST_UPDATE: &str = "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\r\n\
<media_control><vc_primitive><to_encoder><picture_fast_update/></to_encoder></vc_primitive></media_control>\r\n";

/// True when `request` is an INFO asking for a keyframe: a media control body naming
/// `picture_fast_update`.
pub(crate) fn is_picture_update(request: &Request) -> bool {
    let Some(content_type) = request.headers.get(HeaderName::ContentType) else { return false };
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    media_type.eq_ignore_ascii_case(CONTENT_TYPE)
        && std::str::from_utf8(&request.body).is_ok_and(|body| body.contains("picture_fast_update"))
}

impl Call {
    /// True when the leg on the other side of `side` is a browser's.
    pub(super) fn other_is_browser(&self, side: Side) -> bool {
        matches!(&self.media, Media::Open(media) if media.is_browser(side.other()))
    }

    /// The relay wants a keyframe of the phone on `side` (stream `stream`), which takes no RTCP
    /// feedback: it is sent a `picture_fast_update` INFO in its dialog.
    pub(crate) fn ask_keyframe_by_info(&mut self, ctx: &mut Ctx<'_>, side: Side, stream: usize) {
        let video = self
            .media_mut()
            .and_then(|media| media.b_offer.as_ref())
            .and_then(|offer| offer.media.get(stream))
            .is_some_and(|m| m.media == MediaType::Video);
        if !video || !self.is_answered() {
            return;
        }
        let id = self.id;
        let Some((peer, dialog)) = self.leg_mut(side) else { return };
        let mut info = dialog.create_request(Method::Info);
        info.set_body(CONTENT_TYPE, PICTURE_FAST_UPDATE.as_bytes().to_vec().into());
        match ctx.sip.send_request(info, peer, Owner::Call(id, Purpose::Info), ctx.random, ctx.now.instant) {
            Ok(_) => debug!(call = id, ?side, stream, "keyframe asked of the phone (picture_fast_update INFO)"),
            Err(_) => debug!(call = id, ?side, "the keyframe INFO could not be sent"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::calls::keys::info_request as info;

    #[test]
    fn picture_fast_update_bodies() {
        assert!(is_picture_update(&info(CONTENT_TYPE, PICTURE_FAST_UPDATE)));
        assert!(is_picture_update(&info(
            "Application/Media_Control+XML; charset=utf-8",
            "<media_control><vc_primitive><to_encoder><picture_fast_update></picture_fast_update></to_encoder></vc_primitive></media_control>"
        )));
        assert!(!is_picture_update(&info("application/dtmf-relay", "Signal=5\r\n")));
        assert!(!is_picture_update(&info(
            CONTENT_TYPE,
            "<media_control><general_error>x</general_error></media_control>"
        )));
    }
}
