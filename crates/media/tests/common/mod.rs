//! The test vectors of `tests/data`, with CRLF line ends.

#![allow(dead_code)]

macro_rules! vectors {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../data/", $name, ".sdp")))),*]
    };
}

const VECTORS: &[(&str, &str)] = vectors![
    "rfc3264_10_1_offer",
    "rfc3264_10_1_answer",
    "rfc3264_10_1_reoffer",
    "rfc4317_2_1_offer",
    "rfc4317_2_1_answer",
    "rfc4317_2_3_answer",
    "rfc4317_2_8_answer",
    "rfc4317_3_1_answer",
    "rfc4317_5_1_offer",
    "rfc4317_5_2_offer",
    "baresip_offer",
    "baresip_l16_offer",
    "linphone_offer",
    "zoiper_sdes_offer",
    "chrome_offer",
];

/// Every vector as `(name, text with CRLF line ends)`.
pub fn all() -> Vec<(&'static str, String)> {
    VECTORS.iter().map(|(name, text)| (*name, text.replace("\r\n", "\n").replace('\n', "\r\n"))).collect()
}

/// One vector by name.
pub fn get(name: &str) -> String {
    all().into_iter().find(|(n, _)| *n == name).map(|(_, text)| text).unwrap_or_else(|| panic!("no vector {name}"))
}
