//! DTMF over RTP: the telephone-event payload (RFC 4733 §2.3), a [`DtmfReceiver`] that turns
//! its packets into one key press each, and a [`DtmfSender`] that produces the packets of one
//! key press.
//!
//! ```
//! use sambung_media::dtmf::{DtmfReceiver, DtmfSender};
//!
//! let mut receiver = DtmfReceiver::new();
//! for packet in DtmfSender::new('5', 16000, 120, 10).unwrap() {
//!     receiver.on_packet(packet.timestamp, packet.marker, &packet.payload).unwrap();
//! }
//! let event = receiver.poll_event().unwrap();
//! assert_eq!((event.key, event.duration, event.ended), ('5', 960, true));
//! assert_eq!(receiver.poll_event(), None, "the three end packets count once");
//! ```

/// The length of one telephone-event block (RFC 4733 §2.3).
pub const EVENT_LEN: usize = 4;
/// RTP clock rate for telephone-event with narrowband audio.
pub const CLOCK_RATE: u32 = 8000;
/// Update interval of the sender, in RTP units at 8 kHz (50 ms, RFC 4733 §2.5.1.2).
pub const UPDATE_INTERVAL: u32 = 400;
/// Number of end packets sent (RFC 4733 §2.5.1.4 recommends three).
pub const END_REPEATS: usize = 3;

const KEYS: [char; 16] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D'];

/// Why a telephone-event payload cannot be read or a key press not produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    #[error("telephone-event payload of {0} bytes, at least 4 needed")]
    TooShort(usize),
    #[error("`{0}` is not a DTMF key")]
    Key(char),
    #[error("volume {0} is above 63")]
    Volume(u8),
    #[error("duration of {0} ms needs more than one event segment")]
    Duration(u32),
}

/// One telephone-event block (RFC 4733 §2.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// The event code; DTMF digits are 0–15 (RFC 4733 §3.2).
    pub event: u8,
    /// The E bit: the final packets of the event.
    pub end: bool,
    /// Power level in −dBm0, 0–63 (6 bits).
    pub volume: u8,
    /// Duration so far, in RTP timestamp units, from the event's timestamp.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Reads the first event block of a payload; further blocks (RFC 4733 §2.5.1.5) are left.
    pub fn parse(payload: &[u8]) -> Result<TelephoneEvent, DtmfError> {
        let [event, flags, d0, d1, ..] = *payload else {
            return Err(DtmfError::TooShort(payload.len()));
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// The 4 payload bytes (the R bit is zero; the volume keeps its low 6 bits).
    pub fn to_bytes(&self) -> [u8; EVENT_LEN] {
        let [d0, d1] = self.duration.to_be_bytes();
        [self.event, if self.end { 0x80 } else { 0 } | (self.volume & 0x3F), d0, d1]
    }

    /// The DTMF key of the event code (RFC 4733 §3.2, table 7), if it is one.
    pub fn key(&self) -> Option<char> {
        KEYS.get(usize::from(self.event)).copied()
    }
}

/// The event code of a DTMF key (`'0'..='9'`, `'*'`, `'#'`, `'A'..='D'`, lower case accepted).
pub fn event_code(key: char) -> Result<u8, DtmfError> {
    let upper = key.to_ascii_uppercase();
    KEYS.iter().position(|&k| k == upper).map(|i| i as u8).ok_or(DtmfError::Key(key))
}

/// A key press read from telephone-event packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DtmfEvent {
    pub key: char,
    /// RTP timestamp of the start of the event.
    pub timestamp: u32,
    /// Duration in RTP timestamp units (the last one received).
    pub duration: u16,
    /// False when no end packet arrived: the press was closed by a later event or by
    /// [`DtmfReceiver::flush`].
    pub ended: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pending {
    key: char,
    timestamp: u32,
    duration: u16,
}

impl Pending {
    /// True when `timestamp` can start the next segment: this one is (nearly) full and the
    /// new timestamp is about where it ends, allowing for lost updates.
    fn continues_at(&self, timestamp: u32) -> bool {
        const SLACK: u16 = 4 * UPDATE_INTERVAL as u16;
        let offset = timestamp.wrapping_sub(self.timestamp);
        self.duration >= u16::MAX - SLACK && offset <= u32::from(u16::MAX) + u32::from(SLACK)
    }
}

/// Turns a stream of telephone-event packets into one [`DtmfEvent`] per key press (RFC 4733
/// §2.5.2). All packets of an event carry its start timestamp; the first one with the end bit
/// reports it, and later retransmissions of the end are dropped. When the end packets are all
/// lost the press is reported, not ended, once a packet of a new event arrives or the caller
/// calls [`DtmfReceiver::flush`] (for instance when audio resumes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DtmfReceiver {
    pending: Option<Pending>,
    /// Timestamp of the last event reported: its packets are duplicates from now on.
    reported: Option<u32>,
    queue: [Option<DtmfEvent>; 2],
}

impl DtmfReceiver {
    /// A receiver with no event in progress.
    pub fn new() -> DtmfReceiver {
        DtmfReceiver::default()
    }

    /// Feeds one telephone-event packet: its RTP timestamp, marker bit and payload. Events that
    /// are not DTMF keys (tones, flash) are ignored.
    pub fn on_packet(&mut self, timestamp: u32, marker: bool, payload: &[u8]) -> Result<(), DtmfError> {
        let event = TelephoneEvent::parse(payload)?;
        let Some(key) = event.key() else { return Ok(()) };
        // Packets of the event already reported, or of an earlier one arriving late.
        if let Some(done) = self.reported
            && (timestamp == done || (timestamp.wrapping_sub(done) as i32) < 0)
        {
            return Ok(());
        }
        match self.pending {
            Some(p) if p.timestamp == timestamp => {
                if event.duration >= p.duration {
                    self.pending = Some(Pending { duration: event.duration, ..p });
                }
            }
            Some(p) if (timestamp.wrapping_sub(p.timestamp) as i32) < 0 => return Ok(()),
            // A long event's next segment (RFC 4733 §2.5.1.3): same key, no marker, starting where
            // a full segment ended.
            Some(p) if !marker && p.key == key && p.continues_at(timestamp) => {
                self.pending = Some(Pending { key, timestamp, duration: event.duration });
            }
            Some(_) => {
                self.close(false);
                self.pending = Some(Pending { key, timestamp, duration: event.duration });
            }
            None => self.pending = Some(Pending { key, timestamp, duration: event.duration }),
        }
        if event.end {
            self.close(true);
        }
        Ok(())
    }

    /// Reports the event in progress, if any, as not ended.
    pub fn flush(&mut self) {
        self.close(false);
    }

    /// The next key press, in order. A call to [`DtmfReceiver::on_packet`] or
    /// [`DtmfReceiver::flush`] yields at most two; drain them after each call, since only the
    /// newest two unpolled events are kept (no allocation on the packet path).
    pub fn poll_event(&mut self) -> Option<DtmfEvent> {
        let first = self.queue[0].take();
        self.queue.swap(0, 1);
        first
    }

    fn close(&mut self, ended: bool) {
        if let Some(p) = self.pending.take() {
            self.reported = Some(p.timestamp);
            let event = DtmfEvent { key: p.key, timestamp: p.timestamp, duration: p.duration, ended };
            let slot = if self.queue[0].is_none() { 0 } else { 1 };
            // With two events unpolled, the oldest is dropped rather than growing a queue.
            if self.queue[slot].is_some() {
                self.queue.swap(0, 1);
            }
            self.queue[slot] = Some(event);
        }
    }
}

/// One packet of a key press to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DtmfPacket {
    /// When to send it, in RTP units after the first packet.
    pub send_offset: u32,
    /// Set on the first packet only (RFC 4733 §2.5.1.1).
    pub marker: bool,
    /// The RTP timestamp: the start of the event, the same for every packet.
    pub timestamp: u32,
    pub payload: [u8; EVENT_LEN],
}

/// The packets of one key press at 8 kHz (RFC 4733 §2.5.1): a first packet with the marker
/// and duration 0, updates every 50 ms with the duration so far, then the end packet three
/// times, 50 ms apart, with the final duration (§2.5.1.4). The caller gives each its
/// sequence number and SSRC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DtmfSender {
    event: TelephoneEvent,
    timestamp: u32,
    total: u16,
    /// Offset of the next update; past `total`, end packets follow.
    next: u32,
    ends_sent: usize,
    started: bool,
}

impl DtmfSender {
    /// A press of `key` starting at RTP `timestamp`, lasting `duration_ms`, at `volume` −dBm0.
    pub fn new(key: char, timestamp: u32, duration_ms: u32, volume: u8) -> Result<DtmfSender, DtmfError> {
        let event = event_code(key)?;
        if volume > 63 {
            return Err(DtmfError::Volume(volume));
        }
        let total = duration_ms
            .checked_mul(CLOCK_RATE / 1000)
            .and_then(|d| u16::try_from(d).ok())
            .ok_or(DtmfError::Duration(duration_ms))?;
        let event = TelephoneEvent { event, end: false, volume, duration: 0 };
        Ok(DtmfSender { event, timestamp, total, next: 0, ends_sent: 0, started: false })
    }
}

impl Iterator for DtmfSender {
    type Item = DtmfPacket;

    fn next(&mut self) -> Option<DtmfPacket> {
        let total = u32::from(self.total);
        let (send_offset, event) = if self.next < total {
            let offset = self.next;
            self.next += UPDATE_INTERVAL;
            (offset, TelephoneEvent { duration: offset as u16, ..self.event })
        } else if self.ends_sent < END_REPEATS {
            // Spaced by the update interval, so that one burst of loss does not take all three.
            let offset = total + self.ends_sent as u32 * UPDATE_INTERVAL;
            self.ends_sent += 1;
            (offset, TelephoneEvent { end: true, duration: self.total, ..self.event })
        } else {
            return None;
        };
        let marker = !self.started;
        self.started = true;
        Some(DtmfPacket { send_offset, marker, timestamp: self.timestamp, payload: event.to_bytes() })
    }
}

#[cfg(test)]
mod tests;
