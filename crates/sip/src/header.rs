//! Header names and the ordered header list (RFC 3261 §7.3, §20).

use crate::text::SipStr;
use std::fmt;

macro_rules! header_names {
    ($( $variant:ident => $canon:literal $(, $compact:literal)? ;)*) => {
        /// A header name. Known names are matched case-insensitively and in their compact form
        /// (RFC 3261 §7.3.3) and printed in canonical form; any other name is kept as received.
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum HeaderName {
            $( $variant, )*
            Other(SipStr),
        }

        impl HeaderName {
            /// The canonical (long) name.
            #[inline]
            pub fn as_str(&self) -> &str {
                match self {
                    $( HeaderName::$variant => $canon, )*
                    HeaderName::Other(s) => s,
                }
            }
        }

        /// Every known name with its canonical spelling, in declaration order.
        const KNOWN: &[(&str, HeaderName)] = &[ $( ($canon, HeaderName::$variant), )* ];

        /// Compact forms (RFC 3261 §7.3.3): the letter and the canonical name it stands for.
        const COMPACT: &[(u8, &str)] = &[ $( $( ($compact, $canon), )? )* ];
    };
}

header_names! {
    Via => "Via", b'v';
    From => "From", b'f';
    To => "To", b't';
    CallId => "Call-ID", b'i';
    CSeq => "CSeq";
    Contact => "Contact", b'm';
    MaxForwards => "Max-Forwards";
    ContentLength => "Content-Length", b'l';
    ContentType => "Content-Type", b'c';
    ContentEncoding => "Content-Encoding", b'e';
    ContentDisposition => "Content-Disposition";
    ContentLanguage => "Content-Language";
    Route => "Route";
    RecordRoute => "Record-Route";
    Path => "Path";
    Authorization => "Authorization";
    ProxyAuthorization => "Proxy-Authorization";
    WwwAuthenticate => "WWW-Authenticate";
    ProxyAuthenticate => "Proxy-Authenticate";
    AuthenticationInfo => "Authentication-Info";
    Expires => "Expires";
    MinExpires => "Min-Expires";
    Allow => "Allow";
    AllowEvents => "Allow-Events", b'u';
    Supported => "Supported", b'k';
    Require => "Require";
    ProxyRequire => "Proxy-Require";
    Unsupported => "Unsupported";
    Accept => "Accept";
    AcceptEncoding => "Accept-Encoding";
    AcceptLanguage => "Accept-Language";
    UserAgent => "User-Agent";
    Server => "Server";
    Subject => "Subject", b's';
    Date => "Date";
    Timestamp => "Timestamp";
    RetryAfter => "Retry-After";
    Warning => "Warning";
    Reason => "Reason";
    Event => "Event", b'o';
    SubscriptionState => "Subscription-State";
    ReferTo => "Refer-To", b'r';
    ReferredBy => "Referred-By", b'b';
    Replaces => "Replaces";
    SessionExpires => "Session-Expires", b'x';
    MinSe => "Min-SE";
    RSeq => "RSeq";
    RAck => "RAck";
    HistoryInfo => "History-Info";
    Diversion => "Diversion";
    PAssertedIdentity => "P-Asserted-Identity";
    PPreferredIdentity => "P-Preferred-Identity";
    Privacy => "Privacy";
    AcceptContact => "Accept-Contact", b'a';
    RejectContact => "Reject-Contact", b'j';
    RequestDisposition => "Request-Disposition", b'd';
    Organization => "Organization";
    Priority => "Priority";
    InReplyTo => "In-Reply-To";
    CallInfo => "Call-Info";
    AlertInfo => "Alert-Info";
    ErrorInfo => "Error-Info";
    ReplyTo => "Reply-To";
    MimeVersion => "MIME-Version";
    SipETag => "SIP-ETag";
    SipIfMatch => "SIP-If-Match";
}

// Name lookup: an open-addressing hash table built at compile time from `KNOWN`. The hash
// reads the length and three bytes (folded to lower case), so a lookup is a handful of
// arithmetic instructions, one table load and one case-insensitive compare; with the names
// above every slot is hit at its first probe. Compact forms have a 128-entry table of their own.

const SLOTS: usize = 256;

#[inline(always)]
const fn name_hash(b: &[u8]) -> usize {
    let n = b.len();
    (n * 6
        + b[0].to_ascii_lowercase() as usize * 11
        + b[n - 1].to_ascii_lowercase() as usize * 15
        + b[n / 2].to_ascii_lowercase() as usize * 11)
        % SLOTS
}

/// `KNOWN` index + 1 per slot, 0 for an empty slot.
static NAME_SLOTS: [u8; SLOTS] = {
    assert!(KNOWN.len() < 255 && KNOWN.len() < SLOTS / 2);
    let mut t = [0u8; SLOTS];
    let mut i = 0;
    while i < KNOWN.len() {
        let mut h = name_hash(KNOWN[i].0.as_bytes());
        while t[h] != 0 {
            h = (h + 1) % SLOTS;
        }
        t[h] = (i + 1) as u8;
        i += 1;
    }
    t
};

/// `KNOWN` index + 1 per lower-case ASCII letter, 0 when the letter is no compact form.
static COMPACT_SLOTS: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut c = 0;
    while c < COMPACT.len() {
        let (letter, canon) = COMPACT[c];
        let mut i = 0;
        while i < KNOWN.len() {
            if const_eq(KNOWN[i].0.as_bytes(), canon.as_bytes()) {
                t[letter as usize] = (i + 1) as u8;
            }
            i += 1;
        }
        c += 1;
    }
    t
};

const fn const_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The longest known name: anything longer is not looked up.
const MAX_KNOWN_LEN: usize = {
    let mut m = 0;
    let mut i = 0;
    while i < KNOWN.len() {
        if KNOWN[i].0.len() > m {
            m = KNOWN[i].0.len();
        }
        i += 1;
    }
    m
};

/// Room for the longest known name, zero-padded.
const PAD: usize = 24;

/// Every known name in lower case, zero-padded.
static LOWER: [[u8; PAD]; KNOWN.len()] = {
    assert!(MAX_KNOWN_LEN <= PAD);
    let mut t = [[0u8; PAD]; KNOWN.len()];
    let mut i = 0;
    while i < KNOWN.len() {
        let b = KNOWN[i].0.as_bytes();
        let mut j = 0;
        while j < b.len() {
            t[i][j] = b[j].to_ascii_lowercase();
            j += 1;
        }
        i += 1;
    }
    t
};

/// 0x20 where the known name has a letter (the bit that tells the cases apart), else 0.
static FOLD: [[u8; PAD]; KNOWN.len()] = {
    let mut t = [[0u8; PAD]; KNOWN.len()];
    let mut i = 0;
    while i < KNOWN.len() {
        let b = KNOWN[i].0.as_bytes();
        let mut j = 0;
        while j < b.len() {
            if b[j].is_ascii_alphabetic() {
                t[i][j] = 0x20;
            }
            j += 1;
        }
        i += 1;
    }
    t
};

/// `b` equals a known name of the same length, ignoring ASCII case: `b | fold == lower` for
/// every byte, compared a word at a time (overlapping words cover the lengths in between).
/// Exact for any input: only a letter's other case differs from it in the 0x20 bit alone.
#[inline(always)]
fn eq_folded(b: &[u8], lower: &[u8; PAD], fold: &[u8; PAD]) -> bool {
    #[inline(always)]
    fn w64(s: &[u8], i: usize) -> u64 {
        u64::from_le_bytes(s[i..i + 8].try_into().unwrap_or([0; 8]))
    }
    #[inline(always)]
    fn w32(s: &[u8], i: usize) -> u32 {
        u32::from_le_bytes(s[i..i + 4].try_into().unwrap_or([0; 4]))
    }
    let n = b.len();
    match n {
        0..4 => (0..n).all(|i| b[i] | fold[i] == lower[i]),
        4..8 => {
            let t = n - 4;
            w32(b, 0) | w32(fold, 0) == w32(lower, 0) && w32(b, t) | w32(fold, t) == w32(lower, t)
        }
        8..=16 => {
            let t = n - 8;
            w64(b, 0) | w64(fold, 0) == w64(lower, 0) && w64(b, t) | w64(fold, t) == w64(lower, t)
        }
        _ => {
            let t = n.min(PAD) - 8;
            w64(b, 0) | w64(fold, 0) == w64(lower, 0)
                && w64(b, 8) | w64(fold, 8) == w64(lower, 8)
                && w64(b, t) | w64(fold, t) == w64(lower, t)
        }
    }
}

impl HeaderName {
    /// The known header called `s` (any case, long or compact form).
    #[inline]
    fn known(s: &str) -> Option<HeaderName> {
        let b = s.as_bytes();
        let slot = match b.len() {
            0 => return None,
            1 => *COMPACT_SLOTS.get(b[0].to_ascii_lowercase() as usize)?,
            n if n > MAX_KNOWN_LEN => return None,
            _ => {
                let mut h = name_hash(b);
                loop {
                    let slot = NAME_SLOTS[h];
                    if slot == 0 {
                        return None;
                    }
                    let i = slot as usize - 1;
                    if KNOWN[i].0.len() == b.len() && eq_folded(b, &LOWER[i], &FOLD[i]) {
                        break slot;
                    }
                    h = (h + 1) % SLOTS;
                }
            }
        };
        match slot {
            0 => None,
            i => Some(KNOWN[i as usize - 1].1.clone()),
        }
    }

    /// Classifies a name given as a slice of `base` (a received buffer): the buffer is shared
    /// only for an unknown name.
    #[inline]
    pub(crate) fn parse_in(base: &SipStr, s: &str) -> HeaderName {
        HeaderName::known(s).unwrap_or_else(|| HeaderName::Other(crate::text::sub(base, s)))
    }
}

impl HeaderName {
    /// Classifies a header name as received; unknown names keep their bytes.
    pub fn parse(raw: SipStr) -> HeaderName {
        HeaderName::known(&raw).unwrap_or(HeaderName::Other(raw))
    }

    /// Compares with a name given as text, the way SIP compares names (case-insensitive,
    /// compact forms equal to long ones).
    pub fn is(&self, name: &str) -> bool {
        match HeaderName::known(name) {
            Some(k) => *self == k,
            None => matches!(self, HeaderName::Other(s) if s.eq_ignore_ascii_case(name)),
        }
    }

    /// Headers whose values may be combined into one comma-separated line (RFC 3261 §7.3.1).
    /// The authentication headers and unknown headers are never split.
    pub fn is_list(&self) -> bool {
        use HeaderName::*;
        matches!(
            self,
            Via | Contact
                | Route
                | RecordRoute
                | Path
                | Allow
                | AllowEvents
                | Supported
                | Require
                | ProxyRequire
                | Unsupported
                | Accept
                | AcceptEncoding
                | AcceptLanguage
                | ContentEncoding
                | ContentLanguage
                | Warning
                | HistoryInfo
                | Diversion
                | PAssertedIdentity
                | Reason
                | CallInfo
                | AlertInfo
                | ErrorInfo
                | InReplyTo
        )
    }
}

impl PartialEq<HeaderName> for &HeaderName {
    fn eq(&self, other: &HeaderName) -> bool {
        *self == other
    }
}

impl From<&'static str> for HeaderName {
    fn from(s: &'static str) -> Self {
        HeaderName::parse(SipStr::from_static(s))
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header line: a name and its value with surrounding white space removed and any line
/// folding replaced by single spaces.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    pub name: HeaderName,
    pub value: SipStr,
}

/// The headers of a message, in order. Several lines of one name stay separate lines; use
/// [`Headers::values`] to walk the comma-separated values of list headers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Headers(pub Vec<Header>);

impl Headers {
    pub fn new() -> Headers {
        Headers(Vec::with_capacity(12))
    }

    /// The first line of `name`.
    pub fn get(&self, name: HeaderName) -> Option<&SipStr> {
        self.0.iter().find(|h| h.name == name).map(|h| &h.value)
    }

    /// Every line of `name`, in order.
    pub fn get_all(&self, name: HeaderName) -> impl Iterator<Item = &SipStr> {
        self.0.iter().filter(move |h| h.name == name).map(|h| &h.value)
    }

    /// Every value of `name`, splitting comma-separated lines of list headers.
    pub fn values(&self, name: HeaderName) -> impl Iterator<Item = &str> {
        let list = name.is_list();
        self.get_all(name).flat_map(move |v| {
            let parts: Box<dyn Iterator<Item = &str>> = if list {
                Box::new(crate::text::split_commas(v).map(crate::text::trim_lws).filter(|s| !s.is_empty()))
            } else {
                Box::new(std::iter::once(&**v))
            };
            parts
        })
    }

    /// How many lines of `name` there are.
    pub fn count(&self, name: HeaderName) -> usize {
        self.0.iter().filter(|h| h.name == name).count()
    }

    /// Appends a line.
    pub fn push(&mut self, name: HeaderName, value: impl Into<SipStr>) {
        self.0.push(Header { name, value: value.into() });
    }

    /// Inserts a line before every other line of the same name (or at the end when there is
    /// none): how a proxy adds its Via or Record-Route.
    pub fn push_front(&mut self, name: HeaderName, value: impl Into<SipStr>) {
        let at = self.0.iter().position(|h| h.name == name).unwrap_or(self.0.len());
        self.0.insert(at, Header { name, value: value.into() });
    }

    /// Replaces every line of `name` with one line (appended if none existed).
    pub fn set(&mut self, name: HeaderName, value: impl Into<SipStr>) {
        let value = value.into();
        match self.0.iter().position(|h| h.name == name) {
            Some(i) => {
                self.0[i].value = value;
                let mut j = 0;
                self.0.retain(|h| {
                    let keep = j <= i || h.name != name;
                    j += 1;
                    keep
                });
            }
            None => self.0.push(Header { name, value }),
        }
    }

    /// Removes every line of `name`; returns how many were removed.
    pub fn remove(&mut self, name: HeaderName) -> usize {
        let before = self.0.len();
        self.0.retain(|h| h.name != name);
        before - self.0.len()
    }

    /// Removes the first value of a list header: the first value of a comma-separated line, or
    /// the whole line if it holds one value. Returns the removed value.
    pub fn remove_first_value(&mut self, name: HeaderName) -> Option<SipStr> {
        let i = self.0.iter().position(|h| h.name == name)?;
        let value = self.0[i].value.clone();
        if name.is_list() {
            let first = crate::text::split_commas(&value).next().unwrap_or("");
            if first.len() < value.len() {
                let rest = crate::text::trim_lws(&value[first.len() + 1..]);
                self.0[i].value = value.slice_ref(rest);
                return Some(value.slice_ref(crate::text::trim_lws(first)));
            }
        }
        self.0.remove(i);
        Some(value)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compact_and_case() {
        assert_eq!(HeaderName::from("v"), HeaderName::Via);
        assert_eq!(HeaderName::from("cALL-id"), HeaderName::CallId);
        assert!(HeaderName::from("X-Custom").is("x-custom"));
        assert_eq!(HeaderName::from("X-Custom").as_str(), "X-Custom");
        assert!(HeaderName::Contact.is("m"));
    }

    #[test]
    fn remove_first_value_of_combined_line() {
        let mut h = Headers::new();
        h.push(HeaderName::Via, "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2");
        h.push(HeaderName::Via, "SIP/2.0/UDP c;branch=z9hG4bK3");
        assert_eq!(h.remove_first_value(HeaderName::Via).unwrap(), "SIP/2.0/UDP a;branch=z9hG4bK1");
        assert_eq!(h.get(HeaderName::Via).unwrap(), "SIP/2.0/UDP b;branch=z9hG4bK2");
        assert_eq!(h.remove_first_value(HeaderName::Via).unwrap(), "SIP/2.0/UDP b;branch=z9hG4bK2");
        assert_eq!(h.count(HeaderName::Via), 1);
    }

    #[test]
    fn set_replaces_all() {
        let mut h = Headers::new();
        h.push(HeaderName::Expires, "1");
        h.push(HeaderName::To, "<sip:a@b>");
        h.push(HeaderName::Expires, "2");
        h.set(HeaderName::Expires, "3");
        assert_eq!(h.get_all(HeaderName::Expires).collect::<Vec<_>>(), vec!["3"]);
        assert_eq!(h.len(), 2);
    }
}
