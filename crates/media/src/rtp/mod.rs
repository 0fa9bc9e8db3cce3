//! RTP packets (RFC 3550 §5.1): a zero-copy view over received bytes and a writer into a
//! caller's buffer, plus per-source reception statistics ([`stats`]).
//!
//! ```
//! use sambung_media::rtp::{RtpHeader, RtpPacket};
//!
//! let header = RtpHeader { marker: true, payload_type: 0, sequence: 7, timestamp: 160, ssrc: 0x1234, ..Default::default() };
//! let mut buf = [0u8; 1500];
//! let len = header.write(&[0xFF; 160], &mut buf).unwrap();
//! let packet = RtpPacket::parse(&buf[..len]).unwrap();
//! assert_eq!((packet.sequence(), packet.marker(), packet.payload().len()), (7, true, 160));
//! ```

pub mod stats;

pub use stats::{ReceptionReport, ReceptionStats, SequenceTracker};

/// The fixed part of an RTP header, in bytes (RFC 3550 §5.1).
pub const FIXED_HEADER_LEN: usize = 12;

/// Why bytes are not an RTP packet (RFC 3550 §5.1, §A.1 header validity checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("shorter than the fixed 12-byte RTP header ({0} bytes)")]
    TooShort(usize),
    #[error("RTP version {0} (only 2 is defined)")]
    Version(u8),
    #[error("CSRC list runs past the end of the packet")]
    CsrcTruncated,
    #[error("header extension runs past the end of the packet")]
    ExtensionTruncated,
    #[error("padding count {0} is zero or larger than the payload")]
    Padding(u8),
}

/// Why a header cannot be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RtpWriteError {
    #[error("buffer too small: {needed} bytes needed")]
    BufferTooSmall { needed: usize },
    #[error("more than 15 CSRCs")]
    TooManyCsrcs,
    #[error("payload type {0} does not fit in 7 bits")]
    PayloadType(u8),
    #[error("header extension data is {0} bytes, not a multiple of 4 below 262144")]
    ExtensionLength(usize),
}

/// The header extension (RFC 3550 §5.3.1): a 16-bit profile and its data, kept as a slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderExtension<'a> {
    /// "defined by profile": `0xBEDE` for one-byte, `0x100x` for two-byte headers (RFC 8285 §4).
    pub profile: u16,
    /// The extension data, a multiple of 4 bytes.
    pub data: &'a [u8],
}

/// The form of an RFC 8285 header extension block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtensionForm {
    /// One-byte headers, profile `0xBEDE` (RFC 8285 §4.2).
    OneByte,
    /// Two-byte headers, profile `0x100` followed by 4 application bits (RFC 8285 §4.3).
    TwoByte { app_bits: u8 },
    /// Some other profile-defined extension (RFC 3550 §5.3.1).
    Other,
}

impl HeaderExtension<'_> {
    /// Which RFC 8285 form the extension uses, from its profile field.
    pub fn form(&self) -> ExtensionForm {
        match self.profile {
            0xBEDE => ExtensionForm::OneByte,
            p if p >> 4 == 0x100 => ExtensionForm::TwoByte { app_bits: (p & 0xF) as u8 },
            _ => ExtensionForm::Other,
        }
    }
}

/// A received RTP packet, borrowed from the datagram (RFC 3550 §5.1). Parsing checks the
/// lengths once; the accessors then read fields in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    buf: &'a [u8],
    /// Offset of the payload: fixed header, CSRCs and extension.
    payload_start: usize,
    /// End of the payload: the packet length minus padding.
    payload_end: usize,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl<'a> RtpPacket<'a> {
    /// Checks the header of `buf` (version 2, CSRC list, extension and padding within bounds).
    pub fn parse(buf: &'a [u8]) -> Result<RtpPacket<'a>, RtpError> {
        if buf.len() < FIXED_HEADER_LEN {
            return Err(RtpError::TooShort(buf.len()));
        }
        let version = buf[0] >> 6;
        if version != 2 {
            return Err(RtpError::Version(version));
        }
        let mut start = FIXED_HEADER_LEN + 4 * usize::from(buf[0] & 0x0F);
        if buf.len() < start {
            return Err(RtpError::CsrcTruncated);
        }
        if buf[0] & 0x10 != 0 {
            if buf.len() < start + 4 {
                return Err(RtpError::ExtensionTruncated);
            }
            start += 4 + 4 * usize::from(be16(buf, start + 2));
            if buf.len() < start {
                return Err(RtpError::ExtensionTruncated);
            }
        }
        let mut end = buf.len();
        if buf[0] & 0x20 != 0 {
            let count = buf[buf.len() - 1];
            if count == 0 || usize::from(count) > end - start {
                return Err(RtpError::Padding(count));
            }
            end -= usize::from(count);
        }
        Ok(RtpPacket { buf, payload_start: start, payload_end: end })
    }

    /// The whole datagram.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// The P bit: the packet ends with padding.
    pub fn has_padding(&self) -> bool {
        self.buf[0] & 0x20 != 0
    }

    /// Number of padding bytes at the end (the last octet when P is set).
    pub fn padding_len(&self) -> usize {
        self.buf.len() - self.payload_end
    }

    /// The M bit; for audio, the first packet of a talkspurt (RFC 3551 §4.1).
    pub fn marker(&self) -> bool {
        self.buf[1] & 0x80 != 0
    }

    /// The 7-bit payload type.
    pub fn payload_type(&self) -> u8 {
        self.buf[1] & 0x7F
    }

    /// The 16-bit sequence number.
    pub fn sequence(&self) -> u16 {
        be16(self.buf, 2)
    }

    /// The RTP timestamp, in the payload's clock rate.
    pub fn timestamp(&self) -> u32 {
        be32(self.buf, 4)
    }

    /// The synchronisation source.
    pub fn ssrc(&self) -> u32 {
        be32(self.buf, 8)
    }

    /// The contributing sources (RFC 3550 §5.1 CSRC list).
    pub fn csrcs(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        let buf = self.buf;
        (0..usize::from(buf[0] & 0x0F)).map(move |i| be32(buf, FIXED_HEADER_LEN + 4 * i))
    }

    /// The header extension, when the X bit is set (RFC 3550 §5.3.1, RFC 8285).
    pub fn extension(&self) -> Option<HeaderExtension<'a>> {
        if self.buf[0] & 0x10 == 0 {
            return None;
        }
        let at = FIXED_HEADER_LEN + 4 * usize::from(self.buf[0] & 0x0F);
        Some(HeaderExtension { profile: be16(self.buf, at), data: &self.buf[at + 4..self.payload_start] })
    }

    /// The payload, without header and padding.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.payload_start..self.payload_end]
    }
}

/// The fields of an RTP header to write (RFC 3550 §5.1). `padding` is the number of padding
/// bytes to append (0 for none); the last one carries the count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtpHeader<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub csrcs: &'a [u32],
    pub extension: Option<HeaderExtension<'a>>,
    pub padding: u8,
}

impl RtpHeader<'_> {
    /// Length of the header with its CSRCs and extension.
    pub fn header_len(&self) -> usize {
        FIXED_HEADER_LEN + 4 * self.csrcs.len() + self.extension.map_or(0, |e| 4 + e.data.len())
    }

    /// Writes the header, `payload` and padding into `out`; returns the packet length.
    pub fn write(&self, payload: &[u8], out: &mut [u8]) -> Result<usize, RtpWriteError> {
        if self.csrcs.len() > 15 {
            return Err(RtpWriteError::TooManyCsrcs);
        }
        if self.payload_type > 0x7F {
            return Err(RtpWriteError::PayloadType(self.payload_type));
        }
        if let Some(ext) = self.extension
            && (ext.data.len() % 4 != 0 || ext.data.len() / 4 > usize::from(u16::MAX))
        {
            return Err(RtpWriteError::ExtensionLength(ext.data.len()));
        }
        let header_len = self.header_len();
        let needed = header_len + payload.len() + usize::from(self.padding);
        if out.len() < needed {
            return Err(RtpWriteError::BufferTooSmall { needed });
        }
        out[0] = 0x80
            | if self.padding > 0 { 0x20 } else { 0 }
            | if self.extension.is_some() { 0x10 } else { 0 }
            | self.csrcs.len() as u8;
        out[1] = if self.marker { 0x80 } else { 0 } | self.payload_type;
        out[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        let mut at = FIXED_HEADER_LEN;
        for csrc in self.csrcs {
            out[at..at + 4].copy_from_slice(&csrc.to_be_bytes());
            at += 4;
        }
        if let Some(ext) = self.extension {
            out[at..at + 2].copy_from_slice(&ext.profile.to_be_bytes());
            out[at + 2..at + 4].copy_from_slice(&((ext.data.len() / 4) as u16).to_be_bytes());
            out[at + 4..at + 4 + ext.data.len()].copy_from_slice(ext.data);
            at += 4 + ext.data.len();
        }
        out[at..at + payload.len()].copy_from_slice(payload);
        at += payload.len();
        if self.padding > 0 {
            let pad = usize::from(self.padding);
            out[at..at + pad - 1].fill(0);
            out[at + pad - 1] = self.padding;
            at += pad;
        }
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_pcmu_packet() {
        // V=2, no P/X/CC, M=1, PT=0, seq 0x1234, ts 0xDEADBEEF, SSRC 0x01020304, 4 payload bytes.
        let bytes = [0x80, 0x80, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3, 4, 0xFF, 0xFE, 0x7F, 0x00];
        let p = RtpPacket::parse(&bytes).unwrap();
        assert!(p.marker());
        assert_eq!(p.payload_type(), 0);
        assert_eq!(p.sequence(), 0x1234);
        assert_eq!(p.timestamp(), 0xDEAD_BEEF);
        assert_eq!(p.ssrc(), 0x0102_0304);
        assert_eq!(p.csrcs().len(), 0);
        assert_eq!(p.extension(), None);
        assert_eq!(p.payload(), &[0xFF, 0xFE, 0x7F, 0x00]);
    }

    #[test]
    fn parses_csrcs_one_byte_extension_and_padding() {
        let ext_data = [0x10, 0xAA, 0, 0]; // RFC 8285 §4.2: id 1, len 1 (0 + 1), then padding.
        let header = RtpHeader {
            payload_type: 96,
            sequence: 1,
            csrcs: &[7, 8],
            extension: Some(HeaderExtension { profile: 0xBEDE, data: &ext_data }),
            padding: 3,
            ..Default::default()
        };
        let mut buf = [0u8; 64];
        let len = header.write(b"abc", &mut buf).unwrap();
        assert_eq!(len, 12 + 8 + 8 + 3 + 3);
        let p = RtpPacket::parse(&buf[..len]).unwrap();
        assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![7, 8]);
        let ext = p.extension().unwrap();
        assert_eq!((ext.form(), ext.data), (ExtensionForm::OneByte, &ext_data[..]));
        assert_eq!(p.payload(), b"abc");
        assert_eq!(p.padding_len(), 3);
        let two_byte = HeaderExtension { profile: 0x1003, data: &[] };
        assert_eq!(two_byte.form(), ExtensionForm::TwoByte { app_bits: 3 });
    }

    #[test]
    fn rejects_malformed_headers() {
        assert_eq!(RtpPacket::parse(&[0x80; 11]), Err(RtpError::TooShort(11)));
        let mut b = [0u8; 12];
        b[0] = 0x40;
        assert_eq!(RtpPacket::parse(&b), Err(RtpError::Version(1)));
        b[0] = 0x81;
        assert_eq!(RtpPacket::parse(&b), Err(RtpError::CsrcTruncated));
        b[0] = 0x90;
        assert_eq!(RtpPacket::parse(&b), Err(RtpError::ExtensionTruncated));
        b[0] = 0xA0;
        assert_eq!(RtpPacket::parse(&b), Err(RtpError::Padding(0)));
        let mut c = [0u8; 14];
        c[0] = 0xA0;
        c[13] = 3;
        assert_eq!(RtpPacket::parse(&c), Err(RtpError::Padding(3)));
    }

    #[test]
    fn writer_checks_its_input() {
        let mut small = [0u8; 12];
        let h = RtpHeader::default();
        assert_eq!(h.write(&[0], &mut small), Err(RtpWriteError::BufferTooSmall { needed: 13 }));
        let h = RtpHeader { payload_type: 128, ..Default::default() };
        assert_eq!(h.write(&[], &mut [0; 64]), Err(RtpWriteError::PayloadType(128)));
        let h = RtpHeader { csrcs: &[0; 16], ..Default::default() };
        assert_eq!(h.write(&[], &mut [0; 128]), Err(RtpWriteError::TooManyCsrcs));
        let h = RtpHeader { extension: Some(HeaderExtension { profile: 0xBEDE, data: &[1] }), ..Default::default() };
        assert_eq!(h.write(&[], &mut [0; 64]), Err(RtpWriteError::ExtensionLength(1)));
    }
}
