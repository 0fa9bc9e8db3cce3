//! Webhook signatures as the Standard Webhooks specification has them: the receiver gets
//! `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature: v1,<base64 of
//! HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, where the key is the base64 after `whsec_` in
//! the webhook's secret. A receiver that checks the signature and that the timestamp is recent
//! (and remembers the ids it has seen) can tell a forged, altered or replayed delivery.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The secret's prefix.
pub const PREFIX: &str = "whsec_";

/// A new secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> String {
    let key: [u8; 32] = rand::random();
    format!("{PREFIX}{}", STANDARD.encode(key))
}

/// The key inside a secret (`None` when it is not one of ours).
fn key(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix(PREFIX)?).ok().filter(|k| !k.is_empty())
}

/// The `webhook-signature` value for a message: `v1,<base64>`.
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key(secret)?).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// Whether `header` (space-separated `v1,<base64>` signatures) holds a valid signature of the
/// message, compared in constant time, and `timestamp` is within `tolerance` seconds of `now`.
pub fn verify(secret: &str, id: &str, timestamp: i64, body: &[u8], header: &str, now: i64, tolerance: i64) -> bool {
    if (now - timestamp).abs() > tolerance {
        return false;
    }
    let Some(key) = key(secret) else { return false };
    header.split(' ').filter_map(|s| s.strip_prefix("v1,")).filter_map(|s| STANDARD.decode(s).ok()).any(|given| {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else { return false };
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        mac.verify_slice(&given).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specifications_example_signs_as_published() {
        // The example of the Standard Webhooks specification (and of its reference libraries).
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let signed = signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(signed, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let header = format!("v1,bm9ub3NlbnNl {signed}");
        assert!(verify(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, &header, 1614265400, 300));
    }

    #[test]
    fn altered_stale_or_foreign_messages_fail() {
        let secret = new_secret();
        let body = b"{\"type\":\"call.started\"}";
        let signed = signature(&secret, "msg_1", 1000, body).unwrap();
        assert!(verify(&secret, "msg_1", 1000, body, &signed, 1000, 300));
        assert!(!verify(&secret, "msg_1", 1000, b"{\"type\":\"call.ended\"}", &signed, 1000, 300), "altered body");
        assert!(!verify(&secret, "msg_2", 1000, body, &signed, 1000, 300), "another id");
        assert!(!verify(&secret, "msg_1", 1001, body, &signed, 1001, 300), "another timestamp");
        assert!(!verify(&secret, "msg_1", 1000, body, &signed, 1301, 300), "too old");
        assert!(!verify(&new_secret(), "msg_1", 1000, body, &signed, 1000, 300), "another key");
        assert!(signature("not-a-secret", "msg_1", 1000, body).is_none());
    }
}
