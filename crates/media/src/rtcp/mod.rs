//! RTCP compound packets (RFC 3550 §6): sender and receiver reports with their report blocks
//! (§6.4), source descriptions (§6.5) and BYE (§6.6), read in place from a datagram and
//! written into a caller's buffer ([`RtcpWriter`]). Other packet types (APP, feedback, XR)
//! are handed out as [`RtcpPacket::Unknown`] so a caller may skip them.
//!
//! ```
//! use sambung_media::rtcp::{Compound, RtcpPacket, RtcpWriter};
//!
//! let mut buf = [0u8; 256];
//! let mut w = RtcpWriter::new(&mut buf);
//! w.receiver_report(0x1111, &[]).unwrap();
//! w.sdes_cname(0x1111, b"alice@example.com").unwrap();
//! let len = w.finish();
//! let kinds: Vec<_> = Compound::new(&buf[..len]).unwrap().map(|p| p.unwrap()).collect();
//! assert!(matches!(kinds[0], RtcpPacket::ReceiverReport(ref rr) if rr.ssrc == 0x1111));
//! ```

mod write;

pub use write::{RtcpWriteError, RtcpWriter};

use crate::rtp::ReceptionReport;

/// RTCP packet types (RFC 3550 §12.1).
pub const SR: u8 = 200;
pub const RR: u8 = 201;
pub const SDES: u8 = 202;
pub const BYE: u8 = 203;
/// The CNAME SDES item (RFC 3550 §6.5.1).
pub const SDES_CNAME: u8 = 1;

const REPORT_BLOCK_LEN: usize = 24;

/// Why bytes are not a valid RTCP compound packet (RFC 3550 §6.1, §A.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    #[error("empty or shorter than an RTCP header ({0} bytes)")]
    TooShort(usize),
    #[error("RTCP version {0} (only 2 is defined)")]
    Version(u8),
    #[error("packet length {length} words runs past the {available} bytes left")]
    Length { length: usize, available: usize },
    #[error("padding only on the last packet, with a count within it")]
    Padding,
    #[error("packet type {0} is too short for its count")]
    Truncated(u8),
    #[error("malformed SDES chunk")]
    Sdes,
}

/// The sender information of an SR (RFC 3550 §6.4.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SenderInfo {
    /// 64-bit NTP timestamp (seconds since 1900 in the high 32 bits, fraction in the low).
    pub ntp_timestamp: u64,
    pub rtp_timestamp: u32,
    pub packet_count: u32,
    pub octet_count: u32,
}

/// A reception report block (RFC 3550 §6.4.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportBlock {
    pub ssrc: u32,
    pub fraction_lost: u8,
    /// 24-bit signed on the wire; values beyond are clamped when written.
    pub cumulative_lost: i32,
    pub extended_highest_seq: u32,
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR from this source, or 0.
    pub last_sr: u32,
    /// Delay since that SR was received, in units of 1/65536 seconds.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    /// A block for `ssrc` from reception statistics and the LSR/DLSR the caller tracks.
    pub fn from_reception(ssrc: u32, report: ReceptionReport, last_sr: u32, delay_since_last_sr: u32) -> ReportBlock {
        ReportBlock {
            ssrc,
            fraction_lost: report.fraction_lost,
            cumulative_lost: report.cumulative_lost,
            extended_highest_seq: report.extended_highest_seq,
            jitter: report.jitter,
            last_sr,
            delay_since_last_sr,
        }
    }

    fn read(b: &[u8]) -> ReportBlock {
        // Sign-extend the 24-bit cumulative loss.
        let lost = i32::from_be_bytes([b[5], b[6], b[7], 0]) >> 8;
        ReportBlock {
            ssrc: be32(b, 0),
            fraction_lost: b[4],
            cumulative_lost: lost,
            extended_highest_seq: be32(b, 8),
            jitter: be32(b, 12),
            last_sr: be32(b, 16),
            delay_since_last_sr: be32(b, 20),
        }
    }
}

/// The report blocks of an SR or RR, read lazily from the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportBlocks<'a>(&'a [u8]);

impl<'a> ReportBlocks<'a> {
    /// The number of blocks.
    pub fn len(&self) -> usize {
        self.0.len() / REPORT_BLOCK_LEN
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The blocks in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = ReportBlock> + 'a {
        self.0.chunks_exact(REPORT_BLOCK_LEN).map(ReportBlock::read)
    }
}

/// A sender report (RFC 3550 §6.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderReport<'a> {
    pub ssrc: u32,
    pub info: SenderInfo,
    pub reports: ReportBlocks<'a>,
}

/// A receiver report (RFC 3550 §6.4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiverReport<'a> {
    pub ssrc: u32,
    pub reports: ReportBlocks<'a>,
}

/// An SDES item (RFC 3550 §6.5): its type and text (UTF-8 by the RFC, not checked here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdesItem<'a> {
    pub kind: u8,
    pub value: &'a [u8],
}

/// One SDES chunk: a source and its items (validated when the packet was parsed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdesChunk<'a> {
    pub ssrc: u32,
    items: &'a [u8],
}

impl<'a> SdesChunk<'a> {
    /// The items in order.
    pub fn items(&self) -> impl Iterator<Item = SdesItem<'a>> + 'a {
        let mut rest = self.items;
        std::iter::from_fn(move || match rest {
            [kind, len, tail @ ..] if *kind != 0 && tail.len() >= usize::from(*len) => {
                let (value, next) = tail.split_at(usize::from(*len));
                rest = next;
                Some(SdesItem { kind: *kind, value })
            }
            _ => None,
        })
    }

    /// The CNAME item (RFC 3550 §6.5.1), if present.
    pub fn cname(&self) -> Option<&'a [u8]> {
        self.items().find(|i| i.kind == SDES_CNAME).map(|i| i.value)
    }
}

/// A source description packet (RFC 3550 §6.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceDescription<'a> {
    count: u8,
    body: &'a [u8],
}

impl<'a> SourceDescription<'a> {
    /// The chunks in order.
    pub fn chunks(&self) -> impl Iterator<Item = SdesChunk<'a>> + 'a {
        let mut rest = self.body;
        (0..self.count).map_while(move |_| {
            let (chunk, next) = split_chunk(rest).ok()?;
            rest = next;
            Some(chunk)
        })
    }
}

/// Splits one SDES chunk off `b` (RFC 3550 §6.5: items end with a null octet, and the chunk
/// is padded with nulls to a 32-bit boundary).
fn split_chunk(b: &[u8]) -> Result<(SdesChunk<'_>, &[u8]), RtcpError> {
    if b.len() < 4 {
        return Err(RtcpError::Sdes);
    }
    let mut at = 4;
    loop {
        match b.get(at) {
            None => return Err(RtcpError::Sdes),
            Some(0) => break,
            Some(_) => {
                let len = *b.get(at + 1).ok_or(RtcpError::Sdes)?;
                at += 2 + usize::from(len);
            }
        }
    }
    let end = (at + 4) & !3;
    if b.len() < end {
        return Err(RtcpError::Sdes);
    }
    Ok((SdesChunk { ssrc: be32(b, 0), items: &b[4..at] }, &b[end..]))
}

/// A BYE packet (RFC 3550 §6.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bye<'a> {
    sources: &'a [u8],
    /// The reason for leaving, if given.
    pub reason: Option<&'a [u8]>,
}

impl<'a> Bye<'a> {
    /// The sources leaving.
    pub fn sources(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        self.sources.chunks_exact(4).map(|c| be32(c, 0))
    }
}

/// One packet of a compound RTCP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtcpPacket<'a> {
    SenderReport(SenderReport<'a>),
    ReceiverReport(ReceiverReport<'a>),
    SourceDescription(SourceDescription<'a>),
    Bye(Bye<'a>),
    /// A packet type this module does not read (APP, RTPFB, PSFB, XR ...), padding removed.
    Unknown {
        packet_type: u8,
        count: u8,
        body: &'a [u8],
    },
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl<'a> RtcpPacket<'a> {
    fn parse_body(packet_type: u8, count: u8, body: &'a [u8]) -> Result<RtcpPacket<'a>, RtcpError> {
        let blocks = |at: usize| {
            let end = at + usize::from(count) * REPORT_BLOCK_LEN;
            body.get(at..end).map(ReportBlocks).ok_or(RtcpError::Truncated(packet_type))
        };
        Ok(match packet_type {
            SR => {
                let reports = blocks(24)?;
                let info = SenderInfo {
                    ntp_timestamp: u64::from(be32(body, 4)) << 32 | u64::from(be32(body, 8)),
                    rtp_timestamp: be32(body, 12),
                    packet_count: be32(body, 16),
                    octet_count: be32(body, 20),
                };
                RtcpPacket::SenderReport(SenderReport { ssrc: be32(body, 0), info, reports })
            }
            RR => {
                let reports = blocks(4)?;
                RtcpPacket::ReceiverReport(ReceiverReport { ssrc: be32(body, 0), reports })
            }
            SDES => {
                let mut rest = body;
                for _ in 0..count {
                    rest = split_chunk(rest)?.1;
                }
                RtcpPacket::SourceDescription(SourceDescription { count, body })
            }
            BYE => {
                let n = usize::from(count) * 4;
                let sources = body.get(..n).ok_or(RtcpError::Truncated(packet_type))?;
                let reason = match body.get(n) {
                    Some(&len) => Some(body.get(n + 1..n + 1 + usize::from(len)).ok_or(RtcpError::Truncated(BYE))?),
                    None => None,
                };
                RtcpPacket::Bye(Bye { sources, reason })
            }
            _ => RtcpPacket::Unknown { packet_type, count, body },
        })
    }
}

/// The packets of a compound RTCP datagram, in order. [`Compound::new`] checks the framing
/// of every packet (RFC 3550 §A.2: version, lengths adding up, padding only on the last);
/// iterating reads each body and yields an error for one that does not fit its type.
#[derive(Clone, Debug)]
pub struct Compound<'a> {
    rest: &'a [u8],
}

impl<'a> Compound<'a> {
    /// Checks the framing of `buf`.
    pub fn new(buf: &'a [u8]) -> Result<Compound<'a>, RtcpError> {
        if buf.len() < 4 {
            return Err(RtcpError::TooShort(buf.len()));
        }
        let mut rest = buf;
        while !rest.is_empty() {
            let (_, _, _, len) = header(rest)?;
            if rest[0] & 0x20 != 0 && len != rest.len() {
                return Err(RtcpError::Padding);
            }
            rest = &rest[len..];
        }
        Ok(Compound { rest: buf })
    }
}

/// Reads a packet header: (padding, count, type, total length in bytes).
fn header(b: &[u8]) -> Result<(bool, u8, u8, usize), RtcpError> {
    if b.len() < 4 {
        return Err(RtcpError::TooShort(b.len()));
    }
    if b[0] >> 6 != 2 {
        return Err(RtcpError::Version(b[0] >> 6));
    }
    let len = 4 * (usize::from(u16::from_be_bytes([b[2], b[3]])) + 1);
    if len > b.len() {
        return Err(RtcpError::Length { length: len / 4 - 1, available: b.len() });
    }
    Ok((b[0] & 0x20 != 0, b[0] & 0x1F, b[1], len))
}

impl<'a> Iterator for Compound<'a> {
    type Item = Result<RtcpPacket<'a>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let result = header(self.rest).and_then(|(padded, count, packet_type, len)| {
            let packet = &self.rest[..len];
            self.rest = &self.rest[len..];
            let mut body = &packet[4..];
            if padded {
                let pad = usize::from(*body.last().ok_or(RtcpError::Padding)?);
                if pad == 0 || pad > body.len() {
                    return Err(RtcpError::Padding);
                }
                body = &body[..body.len() - pad];
            }
            RtcpPacket::parse_body(packet_type, count, body)
        });
        if result.is_err() {
            self.rest = &[];
        }
        Some(result)
    }
}

/// The middle 32 bits of a 64-bit NTP timestamp, as carried in LSR (RFC 3550 §6.4.1).
pub fn ntp_middle32(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// DLSR: the delay between receiving an SR (`sr_received`) and sending the report (`now`),
/// both 64-bit NTP times, in units of 1/65536 seconds (RFC 3550 §6.4.1).
pub fn delay_since_last_sr(sr_received: u64, now: u64) -> u32 {
    ntp_middle32(now).wrapping_sub(ntp_middle32(sr_received))
}

/// Round-trip time from a report block received at NTP time `arrival`: A − LSR − DLSR, in
/// units of 1/65536 seconds (RFC 3550 §6.4.1). `None` when the block has no LSR or the
/// result would be negative (clocks or the block are wrong).
pub fn round_trip_time(arrival: u64, block: &ReportBlock) -> Option<u32> {
    if block.last_sr == 0 {
        return None;
    }
    let rtt = ntp_middle32(arrival).wrapping_sub(block.last_sr).wrapping_sub(block.delay_since_last_sr);
    // A wrapped (negative) difference shows up as a huge value.
    (rtt < 0x8000_0000).then_some(rtt)
}

#[cfg(test)]
mod tests;
