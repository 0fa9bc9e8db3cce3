//! The DNS wire format (RFC 1035 §4): messages to bytes and back.
//!
//! Parsing follows compression pointers (§4.1.4) only backwards, so a pointer loop ends in an
//! error; every read is bounds-checked, so malformed input gives an error and never a panic.
//! Names are returned in lower case without the trailing dot (the root is "."); a label byte
//! outside letters, digits, '-' and '_' is written as `\DDD` (RFC 4343 §2.1), which the encoder
//! reads back.

use std::net::{Ipv4Addr, Ipv6Addr};

/// A record type (RFC 1035 §3.2.2 and later registrations).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RType(pub u16);

impl RType {
    pub const A: RType = RType(1);
    pub const NS: RType = RType(2);
    pub const CNAME: RType = RType(5);
    pub const SOA: RType = RType(6);
    pub const AAAA: RType = RType(28);
    pub const SRV: RType = RType(33);
    pub const NAPTR: RType = RType(35);
    pub const OPT: RType = RType(41);
}

/// The Internet class.
pub const CLASS_IN: u16 = 1;

/// Response codes (RFC 1035 §4.1.1).
pub mod rcode {
    pub const NOERROR: u8 = 0;
    pub const FORMERR: u8 = 1;
    pub const SERVFAIL: u8 = 2;
    pub const NXDOMAIN: u8 = 3;
    pub const NOTIMP: u8 = 4;
    pub const REFUSED: u8 = 5;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    pub name: String,
    pub qtype: RType,
    pub qclass: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub class: u16,
    pub ttl: u32,
    pub data: RData,
}

impl Record {
    pub fn rtype(&self) -> RType {
        self.data.rtype()
    }
}

/// Record data; names are in the form described in the module documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
    /// RFC 2782.
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    /// RFC 3403 §4.1.
    Naptr {
        order: u16,
        preference: u16,
        flags: String,
        services: String,
        regexp: String,
        replacement: String,
    },
    Soa {
        mname: String,
        rname: String,
        serial: u32,
        refresh: u32,
        retry: u32,
        expire: u32,
        minimum: u32,
    },
    /// Any other type, kept as its raw bytes.
    Other {
        rtype: RType,
        data: Vec<u8>,
    },
}

impl RData {
    pub fn rtype(&self) -> RType {
        match self {
            RData::A(_) => RType::A,
            RData::Aaaa(_) => RType::AAAA,
            RData::Cname(_) => RType::CNAME,
            RData::Srv { .. } => RType::SRV,
            RData::Naptr { .. } => RType::NAPTR,
            RData::Soa { .. } => RType::SOA,
            RData::Other { rtype, .. } => *rtype,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub id: u16,
    /// QR: this is a response.
    pub response: bool,
    pub opcode: u8,
    pub authoritative: bool,
    pub truncated: bool,
    pub recursion_desired: bool,
    pub recursion_available: bool,
    pub rcode: u8,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("the message ends early")]
    Truncated,
    #[error("a compression pointer does not point backwards")]
    BadPointer,
    #[error("a name is longer than 255 bytes")]
    NameTooLong,
    #[error("a label is empty, longer than 63 bytes or of an unknown kind")]
    BadLabel,
    #[error("record data does not match its length or type")]
    BadRdata,
    #[error("a character string is longer than 255 bytes")]
    StringTooLong,
    #[error("a section has more than 65535 entries")]
    TooManyRecords,
    #[error("bytes follow the last record")]
    TrailingBytes,
}

impl Message {
    /// A standard query with recursion desired and one question of class IN.
    pub fn query(id: u16, name: &str, qtype: RType) -> Message {
        Message {
            id,
            recursion_desired: true,
            questions: vec![Question { name: name.to_owned(), qtype, qclass: CLASS_IN }],
            ..Message::default()
        }
    }

    /// The message as bytes, without name compression.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(&self.id.to_be_bytes());
        let mut flags = u16::from(self.opcode & 0x0F) << 11 | u16::from(self.rcode & 0x0F);
        for (set, bit) in [
            (self.response, 0x8000),
            (self.authoritative, 0x0400),
            (self.truncated, 0x0200),
            (self.recursion_desired, 0x0100),
            (self.recursion_available, 0x0080),
        ] {
            if set {
                flags |= bit;
            }
        }
        out.extend_from_slice(&flags.to_be_bytes());
        for count in [self.questions.len(), self.answers.len(), self.authority.len(), self.additional.len()] {
            let count = u16::try_from(count).map_err(|_| WireError::TooManyRecords)?;
            out.extend_from_slice(&count.to_be_bytes());
        }
        for q in &self.questions {
            write_name(&mut out, &q.name)?;
            out.extend_from_slice(&q.qtype.0.to_be_bytes());
            out.extend_from_slice(&q.qclass.to_be_bytes());
        }
        for r in self.answers.iter().chain(&self.authority).chain(&self.additional) {
            write_record(&mut out, r)?;
        }
        Ok(out)
    }

    /// Parses a whole message; bytes after the last record are an error.
    pub fn parse(bytes: &[u8]) -> Result<Message, WireError> {
        let mut r = Reader { msg: bytes, pos: 0 };
        let id = r.u16()?;
        let flags = r.u16()?;
        let counts = [r.u16()?, r.u16()?, r.u16()?, r.u16()?];
        let mut m = Message {
            id,
            response: flags & 0x8000 != 0,
            opcode: ((flags >> 11) & 0x0F) as u8,
            authoritative: flags & 0x0400 != 0,
            truncated: flags & 0x0200 != 0,
            recursion_desired: flags & 0x0100 != 0,
            recursion_available: flags & 0x0080 != 0,
            rcode: (flags & 0x0F) as u8,
            ..Message::default()
        };
        for _ in 0..counts[0] {
            let name = r.name()?;
            let qtype = RType(r.u16()?);
            let qclass = r.u16()?;
            m.questions.push(Question { name, qtype, qclass });
        }
        for (section, count) in
            [(&mut m.answers, counts[1]), (&mut m.authority, counts[2]), (&mut m.additional, counts[3])]
        {
            for _ in 0..count {
                section.push(r.record()?);
            }
        }
        if r.pos != bytes.len() {
            return Err(WireError::TrailingBytes);
        }
        Ok(m)
    }
}

struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn bytes(&mut self, n: usize) -> Result<&[u8], WireError> {
        let end = self.pos.checked_add(n).ok_or(WireError::Truncated)?;
        let slice = self.msg.get(self.pos..end).ok_or(WireError::Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.bytes(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn name(&mut self) -> Result<String, WireError> {
        let (name, end) = read_name(self.msg, self.pos)?;
        self.pos = end;
        Ok(name)
    }

    fn string(&mut self) -> Result<String, WireError> {
        let len = self.u8()?;
        Ok(String::from_utf8_lossy(self.bytes(usize::from(len))?).into_owned())
    }

    fn record(&mut self) -> Result<Record, WireError> {
        let name = self.name()?;
        let rtype = RType(self.u16()?);
        let class = self.u16()?;
        let ttl = self.u32()?;
        let len = usize::from(self.u16()?);
        let start = self.pos;
        let end = start + len;
        if end > self.msg.len() {
            return Err(WireError::Truncated);
        }
        let data = match rtype {
            RType::A => {
                let b = self.bytes(len)?;
                RData::A(Ipv4Addr::from(<[u8; 4]>::try_from(b).map_err(|_| WireError::BadRdata)?))
            }
            RType::AAAA => {
                let b = self.bytes(len)?;
                RData::Aaaa(Ipv6Addr::from(<[u8; 16]>::try_from(b).map_err(|_| WireError::BadRdata)?))
            }
            RType::CNAME => RData::Cname(self.name()?),
            RType::SRV => {
                RData::Srv { priority: self.u16()?, weight: self.u16()?, port: self.u16()?, target: self.name()? }
            }
            RType::NAPTR => RData::Naptr {
                order: self.u16()?,
                preference: self.u16()?,
                flags: self.string()?,
                services: self.string()?,
                regexp: self.string()?,
                replacement: self.name()?,
            },
            RType::SOA => RData::Soa {
                mname: self.name()?,
                rname: self.name()?,
                serial: self.u32()?,
                refresh: self.u32()?,
                retry: self.u32()?,
                expire: self.u32()?,
                minimum: self.u32()?,
            },
            _ => RData::Other { rtype, data: self.bytes(len)?.to_vec() },
        };
        if self.pos != end {
            return Err(WireError::BadRdata);
        }
        Ok(Record { name, class, ttl, data })
    }
}

/// Reads the name at `pos`; returns it and the position just after it (after the first pointer
/// when the name is compressed). Each pointer must point before the place it jumped from, so the
/// walk always ends.
fn read_name(msg: &[u8], mut pos: usize) -> Result<(String, usize), WireError> {
    let mut name = String::new();
    let mut end = None;
    let mut limit = pos;
    let mut wire_len = 1;
    loop {
        let len = usize::from(*msg.get(pos).ok_or(WireError::Truncated)?);
        match len & 0xC0 {
            0x00 if len == 0 => {
                let end = end.unwrap_or(pos + 1);
                if name.is_empty() {
                    name.push('.');
                }
                return Ok((name, end));
            }
            0x00 => {
                let label = msg.get(pos + 1..pos + 1 + len).ok_or(WireError::Truncated)?;
                wire_len += len + 1;
                if wire_len > 255 {
                    return Err(WireError::NameTooLong);
                }
                if !name.is_empty() {
                    name.push('.');
                }
                for &b in label {
                    match b {
                        b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => name.push(char::from(b)),
                        b'A'..=b'Z' => name.push(char::from(b.to_ascii_lowercase())),
                        _ => {
                            name.push('\\');
                            name.push_str(&format!("{b:03}"));
                        }
                    }
                }
                pos += 1 + len;
            }
            0xC0 => {
                let low = usize::from(*msg.get(pos + 1).ok_or(WireError::Truncated)?);
                let target = (len & 0x3F) << 8 | low;
                if end.is_none() {
                    end = Some(pos + 2);
                }
                if target >= limit {
                    return Err(WireError::BadPointer);
                }
                limit = target;
                pos = target;
            }
            _ => return Err(WireError::BadLabel),
        }
    }
}

/// Writes a name in the form described in the module documentation ("" and "." are the root).
fn write_name(out: &mut Vec<u8>, name: &str) -> Result<(), WireError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let mut wire_len = 1;
    if !name.is_empty() {
        for label in name.split('.') {
            let label = unescape(label)?;
            if label.is_empty() || label.len() > 63 {
                return Err(WireError::BadLabel);
            }
            wire_len += label.len() + 1;
            if wire_len > 255 {
                return Err(WireError::NameTooLong);
            }
            out.push(label.len() as u8);
            out.extend_from_slice(&label);
        }
    }
    out.push(0);
    Ok(())
}

/// A label's bytes from its text with `\DDD` and `\c` escapes.
fn unescape(label: &str) -> Result<Vec<u8>, WireError> {
    let bytes = label.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let digits = bytes.get(i + 1..i + 4).filter(|d| d.iter().all(u8::is_ascii_digit));
        if let Some(d) = digits {
            let value = d.iter().fold(0u32, |v, &c| v * 10 + u32::from(c - b'0'));
            out.push(u8::try_from(value).map_err(|_| WireError::BadLabel)?);
            i += 4;
        } else {
            out.push(*bytes.get(i + 1).ok_or(WireError::BadLabel)?);
            i += 2;
        }
    }
    Ok(out)
}

fn write_string(out: &mut Vec<u8>, s: &str) -> Result<(), WireError> {
    let len = u8::try_from(s.len()).map_err(|_| WireError::StringTooLong)?;
    out.push(len);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn write_record(out: &mut Vec<u8>, r: &Record) -> Result<(), WireError> {
    write_name(out, &r.name)?;
    out.extend_from_slice(&r.rtype().0.to_be_bytes());
    out.extend_from_slice(&r.class.to_be_bytes());
    out.extend_from_slice(&r.ttl.to_be_bytes());
    let len_at = out.len();
    out.extend_from_slice(&[0, 0]);
    match &r.data {
        RData::A(a) => out.extend_from_slice(&a.octets()),
        RData::Aaaa(a) => out.extend_from_slice(&a.octets()),
        RData::Cname(n) => write_name(out, n)?,
        RData::Srv { priority, weight, port, target } => {
            for v in [priority, weight, port] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            write_name(out, target)?;
        }
        RData::Naptr { order, preference, flags, services, regexp, replacement } => {
            out.extend_from_slice(&order.to_be_bytes());
            out.extend_from_slice(&preference.to_be_bytes());
            write_string(out, flags)?;
            write_string(out, services)?;
            write_string(out, regexp)?;
            write_name(out, replacement)?;
        }
        RData::Soa { mname, rname, serial, refresh, retry, expire, minimum } => {
            write_name(out, mname)?;
            write_name(out, rname)?;
            for v in [serial, refresh, retry, expire, minimum] {
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
        RData::Other { data, .. } => out.extend_from_slice(data),
    }
    let len = u16::try_from(out.len() - len_at - 2).map_err(|_| WireError::BadRdata)?;
    out[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
    Ok(())
}
