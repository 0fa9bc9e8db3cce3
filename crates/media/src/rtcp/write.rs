//! Writing compound RTCP packets into a caller's buffer (RFC 3550 §6.1, §6.4–6.6).

use super::{BYE, REPORT_BLOCK_LEN, RR, ReportBlock, SDES, SDES_CNAME, SR, SenderInfo};

/// Why a packet cannot be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RtcpWriteError {
    #[error("buffer too small: {needed} bytes needed")]
    BufferTooSmall { needed: usize },
    #[error("more than 31 report blocks or sources in one packet")]
    TooMany,
    #[error("SDES item or BYE reason longer than 255 bytes")]
    TooLong,
}

/// Appends RTCP packets to a buffer; [`RtcpWriter::finish`] gives the compound length. A
/// compound packet starts with an SR or RR and carries an SDES with the CNAME (RFC 3550 §6.1).
#[derive(Debug)]
pub struct RtcpWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> RtcpWriter<'b> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'b mut [u8]) -> RtcpWriter<'b> {
        RtcpWriter { buf, len: 0 }
    }

    /// Bytes written so far.
    pub fn finish(self) -> usize {
        self.len
    }

    /// Reserves a packet of `body_len` bytes (a multiple of 4) after its header and returns
    /// the body, zeroed.
    fn packet(&mut self, count: usize, packet_type: u8, body_len: usize) -> Result<&mut [u8], RtcpWriteError> {
        if count > 31 {
            return Err(RtcpWriteError::TooMany);
        }
        debug_assert_eq!(body_len % 4, 0);
        let needed = self.len + 4 + body_len;
        if self.buf.len() < needed {
            return Err(RtcpWriteError::BufferTooSmall { needed });
        }
        let start = self.len;
        let words = (body_len / 4) as u16;
        self.buf[start] = 0x80 | count as u8;
        self.buf[start + 1] = packet_type;
        self.buf[start + 2..start + 4].copy_from_slice(&words.to_be_bytes());
        self.len = needed;
        let body = &mut self.buf[start + 4..needed];
        body.fill(0);
        Ok(body)
    }

    /// A sender report (RFC 3550 §6.4.1).
    pub fn sender_report(
        &mut self,
        ssrc: u32,
        info: &SenderInfo,
        reports: &[ReportBlock],
    ) -> Result<(), RtcpWriteError> {
        let body = self.packet(reports.len(), SR, 24 + REPORT_BLOCK_LEN * reports.len())?;
        body[0..4].copy_from_slice(&ssrc.to_be_bytes());
        body[4..12].copy_from_slice(&info.ntp_timestamp.to_be_bytes());
        body[12..16].copy_from_slice(&info.rtp_timestamp.to_be_bytes());
        body[16..20].copy_from_slice(&info.packet_count.to_be_bytes());
        body[20..24].copy_from_slice(&info.octet_count.to_be_bytes());
        write_blocks(&mut body[24..], reports);
        Ok(())
    }

    /// A receiver report (RFC 3550 §6.4.2).
    pub fn receiver_report(&mut self, ssrc: u32, reports: &[ReportBlock]) -> Result<(), RtcpWriteError> {
        let body = self.packet(reports.len(), RR, 4 + REPORT_BLOCK_LEN * reports.len())?;
        body[0..4].copy_from_slice(&ssrc.to_be_bytes());
        write_blocks(&mut body[4..], reports);
        Ok(())
    }

    /// An SDES packet with one chunk carrying the CNAME (RFC 3550 §6.5.1).
    pub fn sdes_cname(&mut self, ssrc: u32, cname: &[u8]) -> Result<(), RtcpWriteError> {
        let len = u8::try_from(cname.len()).map_err(|_| RtcpWriteError::TooLong)?;
        // SSRC, type, length, text, then at least one null octet up to a 32-bit boundary.
        let body = self.packet(1, SDES, (4 + 2 + cname.len() + 4) & !3)?;
        body[0..4].copy_from_slice(&ssrc.to_be_bytes());
        body[4] = SDES_CNAME;
        body[5] = len;
        body[6..6 + cname.len()].copy_from_slice(cname);
        Ok(())
    }

    /// A BYE for `sources`, with an optional reason (RFC 3550 §6.6).
    pub fn bye(&mut self, sources: &[u32], reason: Option<&[u8]>) -> Result<(), RtcpWriteError> {
        let reason_len = match reason {
            Some(r) => u8::try_from(r.len()).map_err(|_| RtcpWriteError::TooLong)?,
            None => 0,
        };
        let n = 4 * sources.len();
        let body_len = n + reason.map_or(0, |r| (1 + r.len() + 3) & !3);
        let body = self.packet(sources.len(), BYE, body_len)?;
        for (slot, ssrc) in body.chunks_exact_mut(4).zip(sources) {
            slot.copy_from_slice(&ssrc.to_be_bytes());
        }
        if let Some(reason) = reason {
            body[n] = reason_len;
            body[n + 1..n + 1 + reason.len()].copy_from_slice(reason);
        }
        Ok(())
    }
}

fn write_blocks(out: &mut [u8], reports: &[ReportBlock]) {
    for (b, r) in out.chunks_exact_mut(REPORT_BLOCK_LEN).zip(reports) {
        let lost = r.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF).to_be_bytes();
        b[0..4].copy_from_slice(&r.ssrc.to_be_bytes());
        b[4] = r.fraction_lost;
        b[5..8].copy_from_slice(&lost[1..4]);
        b[8..12].copy_from_slice(&r.extended_highest_seq.to_be_bytes());
        b[12..16].copy_from_slice(&r.jitter.to_be_bytes());
        b[16..20].copy_from_slice(&r.last_sr.to_be_bytes());
        b[20..24].copy_from_slice(&r.delay_since_last_sr.to_be_bytes());
    }
}
