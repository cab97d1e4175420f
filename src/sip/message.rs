//! A tolerant, zero-copy SIP message scanner (RFC 3261 syntax, as seen on
//! real networks: compact header names, folded lines, stray spaces).
//!
//! [`Message::parse`] reads the start line, indexes the header fields in
//! order (repeated headers such as Via are all kept) as byte spans into the
//! input, and frames the body by Content-Length. Nothing is copied: accessors
//! return slices of the input, except where a value must be rewritten
//! (unfolded lines, unescaped display names), hence the `Cow`s.
//!
//! Invariants and limits (see [`Limits`]): a message is at most
//! [`MAX_MESSAGE_SIZE`] bytes, holds at most [`MAX_HEADERS`] header fields,
//! and no header field (with its continuation lines) or start line is longer
//! than [`MAX_LINE_LEN`]. The only allocation per message is the header index,
//! a `Vec` whose capacity never exceeds the header limit.

use std::borrow::Cow;

/// Default largest message (headers plus body) accepted, in bytes.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;
/// Default largest number of header fields (a folded field counts once).
pub const MAX_HEADERS: usize = 128;
/// Default longest start line or header field (including continuation lines), in bytes.
pub const MAX_LINE_LEN: usize = 16 * 1024;

/// Size limits for [`Message::parse_with_limits`]. Input over a limit is
/// rejected with [`SipError::TooLarge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message (headers plus body), in bytes. Values above `u32::MAX` act as `u32::MAX`.
    pub max_message_size: usize,
    /// Largest number of header fields.
    pub max_headers: usize,
    /// Longest start line or header field, in bytes.
    pub max_line_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: MAX_MESSAGE_SIZE,
            max_headers: MAX_HEADERS,
            max_line_len: MAX_LINE_LEN,
        }
    }
}

/// Why bytes are not a usable SIP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SipError {
    /// Not a SIP start line.
    #[error("not SIP")]
    NotSip,
    /// The header section or body is cut short (Content-Length beyond the data).
    /// On a stream, wait for more bytes; on a datagram, drop it.
    #[error("truncated SIP message")]
    Truncated,
    /// Over a size or header-count limit.
    #[error("SIP message too large")]
    TooLarge,
    /// A header needed to use the message is unparseable (e.g. Content-Length).
    #[error("malformed SIP message")]
    Malformed,
}

/// A SIP method. Unknown methods are kept as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method<'a> {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// REGISTER
    Register,
    /// OPTIONS
    Options,
    /// PRACK
    Prack,
    /// UPDATE
    Update,
    /// INFO
    Info,
    /// REFER
    Refer,
    /// NOTIFY
    Notify,
    /// SUBSCRIBE
    Subscribe,
    /// MESSAGE
    Message,
    /// PUBLISH
    Publish,
    /// Any other token.
    Other(&'a str),
}

impl<'a> Method<'a> {
    /// The method for a token. Methods are case-sensitive (RFC 3261 7.1), so
    /// `invite` is `Other("invite")`.
    pub fn from_token(token: &'a str) -> Method<'a> {
        match token {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "PRACK" => Method::Prack,
            "UPDATE" => Method::Update,
            "INFO" => Method::Info,
            "REFER" => Method::Refer,
            "NOTIFY" => Method::Notify,
            "SUBSCRIBE" => Method::Subscribe,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Other(other),
        }
    }

    /// The method as written on the wire.
    pub fn as_str(&self) -> &'a str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Prack => "PRACK",
            Method::Update => "UPDATE",
            Method::Info => "INFO",
            Method::Refer => "REFER",
            Method::Notify => "NOTIFY",
            Method::Subscribe => "SUBSCRIBE",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }
}

/// The first line of a SIP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartLine<'a> {
    /// `METHOD uri SIP/2.0`
    Request {
        /// The method.
        method: Method<'a>,
        /// The Request-URI, as written.
        uri: &'a str,
    },
    /// `SIP/2.0 code reason`
    Response {
        /// Status code, 100..=699.
        code: u16,
        /// Reason phrase, as written (empty if absent or not UTF-8).
        reason: &'a str,
    },
}

/// A name-addr or addr-spec header value (From, To, Contact, P-Asserted-Identity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// Display name, unquoted (quotes and backslash escapes removed), if any.
    pub display_name: Option<Cow<'a, str>>,
    /// The URI between `<` `>` (or the bare URI), e.g. `sip:1001@pbx.example.com;user=phone`.
    pub uri: &'a str,
    /// The user part of a sip:/sips: URI (without `:password` or `;user-params`),
    /// or the number of a tel: URI (without parameters), if any.
    pub user: Option<&'a str>,
    /// The host part of a sip:/sips: URI as written (IPv6 references keep
    /// their brackets), if any.
    pub host: Option<&'a str>,
    /// The `tag` header parameter, if any.
    pub tag: Option<&'a str>,
}

/// A CSeq header: sequence number and method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// Sequence number.
    pub number: u32,
    /// Method.
    pub method: Method<'a>,
}

/// Byte range into the message, `start..end`. u32 keeps the index small;
/// messages are capped far below 4 GiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn new(start: usize, end: usize) -> Span {
        // Callers only build spans inside a message of at most u32::MAX bytes.
        Span {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(end).unwrap_or(u32::MAX),
        }
    }

    fn of<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        data.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }
}

/// One header field: its name as written and its value (trimmed, possibly
/// spanning continuation lines).
#[derive(Debug, Clone, Copy)]
struct Field {
    name: Span,
    value: Span,
    folded: bool,
}

/// A parsed SIP message borrowing the packet bytes. Header lines are kept in
/// order; lookups are by canonical (long-form, case-insensitive) name.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    /// The message bytes, exactly `consumed` long.
    data: &'a [u8],
    start: StartLine<'a>,
    fields: Vec<Field>,
    body: Span,
}

/// Longest first line [`looks_like_sip`] examines.
const SNIFF_LEN: usize = 2048;

/// Cheap test whether a payload starts like a SIP message (a request line
/// ending in `SIP/2.0`, or a status line starting with `SIP/2.0 ` and three
/// digits). Used to recognise SIP on any port; rejects RTP and most other
/// binary payloads at the first byte.
pub fn looks_like_sip(data: &[u8]) -> bool {
    if let (Some(head), Some(code)) = (data.get(..8), data.get(8..11)) {
        if head.eq_ignore_ascii_case(b"SIP/2.0 ") {
            return code.iter().all(u8::is_ascii_digit);
        }
    }
    // Request: token SP uri SP SIP/2.0 (CR)LF
    let first = match data.first() {
        Some(b) => *b,
        None => return false,
    };
    if !first.is_ascii_alphabetic() {
        return false;
    }
    let window = data.get(..SNIFF_LEN).unwrap_or(data);
    match split_once_byte(window, b'\n') {
        Some((line, _)) => parse_request_line(trim_cr(line)).is_some(),
        None => false,
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `s` split at `at` (`s[..at]`, `s[at..]`); all of `s` and nothing when
/// `at` is past the end.
fn split_at(s: &[u8], at: usize) -> (&[u8], &[u8]) {
    s.split_at_checked(at).unwrap_or((s, &[]))
}

/// `s` split around the byte at `at` (`s[..at]`, `s[at + 1..]`); `None`
/// when `at` is not inside `s`.
fn split_around(s: &[u8], at: usize) -> Option<(&[u8], &[u8])> {
    let (head, tail) = s.split_at_checked(at)?;
    Some((head, tail.get(1..)?))
}

/// `s` split around the first `byte` in it.
fn split_once_byte(s: &[u8], byte: u8) -> Option<(&[u8], &[u8])> {
    split_around(s, s.iter().position(|&b| b == byte)?)
}

/// `s` up to its first `byte` (all of `s` without one).
fn until(s: &[u8], byte: u8) -> &[u8] {
    s.split(|&b| b == byte).next().unwrap_or_default()
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t')
}

/// Whitespace including line-fold bytes, for values that may span lines.
fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn trim_lws(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if is_lws(*first) {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if is_lws(*last) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

fn as_str(b: &[u8]) -> Option<&str> {
    std::str::from_utf8(b).ok()
}

/// `METHOD SP uri SP SIP/2.0`, tolerating runs of spaces/tabs.
fn parse_request_line(line: &[u8]) -> Option<(&str, &str)> {
    let mut parts = line.split(|&b| is_ws(b)).filter(|p| !p.is_empty());
    let method = parts.next()?;
    let uri = parts.next()?;
    let version = parts.next()?;
    if parts.next().is_some()
        || !version.eq_ignore_ascii_case(b"SIP/2.0")
        || !method.iter().all(|&b| is_token_byte(b))
        || uri.iter().any(|&b| b < 0x21 || b == 0x7f)
    {
        return None;
    }
    Some((as_str(method)?, as_str(uri)?))
}

fn parse_start_line(line: &[u8]) -> Option<StartLine<'_>> {
    if let Some((_, rest)) = line
        .split_at_checked(8)
        .filter(|(head, _)| head.eq_ignore_ascii_case(b"SIP/2.0 "))
    {
        let skip = rest.iter().take_while(|&&b| is_ws(b)).count();
        let (digits, after) = rest.get(skip..)?.split_at_checked(3)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let code = digits
            .iter()
            .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
        if !(100..=699).contains(&code) {
            return None;
        }
        // The code must end at a space or end of line ("2000" is not a code).
        if after.first().is_some_and(|&b| !is_ws(b)) {
            return None;
        }
        let reason = as_str(trim_lws(after)).unwrap_or("");
        return Some(StartLine::Response { code, reason });
    }
    let (method, uri) = parse_request_line(line)?;
    Some(StartLine::Request {
        method: Method::from_token(method),
        uri,
    })
}

/// Expands a compact header name (RFC 3261 7.3.3 and later RFCs) to its long
/// form; other names are returned unchanged.
fn canonical_name(name: &[u8]) -> &[u8] {
    let [only] = name else {
        return name;
    };
    let long: &'static str = match only.to_ascii_lowercase() {
        b'i' => "Call-ID",
        b'f' => "From",
        b't' => "To",
        b'v' => "Via",
        b'm' => "Contact",
        b'l' => "Content-Length",
        b'c' => "Content-Type",
        b'k' => "Supported",
        b's' => "Subject",
        b'e' => "Content-Encoding",
        b'o' => "Event",
        b'r' => "Refer-To",
        b'b' => "Referred-By",
        b'x' => "Session-Expires",
        b'u' => "Allow-Events",
        b'a' => "Accept-Contact",
        b'j' => "Reject-Contact",
        b'd' => "Request-Disposition",
        b'y' => "Identity",
        b'n' => "Identity-Info",
        _ => return name,
    };
    long.as_bytes()
}

fn names_match(written: &[u8], wanted: &[u8]) -> bool {
    canonical_name(written).eq_ignore_ascii_case(canonical_name(wanted))
}

impl<'a> Message<'a> {
    /// Parses one message from the start of `data` with the default
    /// [`Limits`]. Returns the message and the number of bytes it occupies
    /// (leading CRLF keep-alives + headers + Content-Length body), so a caller
    /// can find a following message in the same buffer.
    ///
    /// Without a Content-Length header the rest of `data` is the body (right
    /// for a datagram; on a stream RFC 3261 requires Content-Length).
    pub fn parse(data: &'a [u8]) -> Result<(Message<'a>, usize), SipError> {
        Message::parse_with_limits(data, &Limits::default())
    }

    /// [`Message::parse`] with explicit limits.
    pub fn parse_with_limits(
        data: &'a [u8],
        limits: &Limits,
    ) -> Result<(Message<'a>, usize), SipError> {
        let max_size = limits.max_message_size.min(u32::MAX as usize);
        // RFC 3261 7.5: ignore CRLFs before the start line (stream keep-alives).
        let skip = data
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        let msg_data = data.get(skip..).unwrap_or_default();
        let window = msg_data.get(..max_size).unwrap_or(msg_data);

        // Start line.
        let (first_end, first_line) = match window.iter().position(|&b| b == b'\n') {
            Some(i) => (i, split_at(window, i).0),
            None => return Err(incomplete_line_error(window, msg_data.len(), limits)),
        };
        if first_end > limits.max_line_len {
            return Err(SipError::TooLarge);
        }
        let start = parse_start_line(trim_cr(first_line)).ok_or(SipError::NotSip)?;

        // Header fields, up to the blank line. One allocation, capped.
        let estimate = window
            .iter()
            .take(8 * 1024)
            .filter(|&&b| b == b'\n')
            .count();
        let mut fields: Vec<Field> = Vec::with_capacity(estimate.clamp(8, limits.max_headers));
        let mut pos = first_end + 1;
        let mut current: Option<Field> = None;
        let body_start = loop {
            let rest = window.get(pos..).unwrap_or_default();
            let (rel_end, line) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (i, split_at(rest, i).0),
                None => {
                    return Err(if msg_data.len() >= max_size {
                        SipError::TooLarge
                    } else {
                        SipError::Truncated
                    })
                }
            };
            let line = trim_cr(line);
            let next = pos + rel_end + 1; // after the '\n'
            if line.is_empty() {
                if let Some(f) = current.take() {
                    push_field(&mut fields, f, limits)?;
                }
                break next;
            }
            if line.first().is_some_and(|&b| is_ws(b)) {
                // Continuation of the previous field (RFC 3261 7.3.1).
                if let Some(f) = current.as_mut() {
                    extend_field(f, line, pos);
                    if f.value.end.saturating_sub(f.name.start) as usize > limits.max_line_len {
                        return Err(SipError::TooLarge);
                    }
                }
                pos = next;
                continue;
            }
            if let Some(f) = current.take() {
                push_field(&mut fields, f, limits)?;
            }
            if line.len() > limits.max_line_len {
                return Err(SipError::TooLarge);
            }
            current = parse_field_line(line, pos);
            pos = next;
        };

        // Body framing.
        let mut content_length = None;
        for f in &fields {
            if names_match(f.name.of(msg_data), b"Content-Length") {
                let v = trim_lws(f.value.of(msg_data));
                if v.is_empty() || v.len() > 10 || !v.iter().all(u8::is_ascii_digit) {
                    return Err(SipError::Malformed);
                }
                // At most 10 digits: fits a u64 on every platform.
                let n = v.iter().fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
                content_length = Some(usize::try_from(n).map_err(|_| SipError::TooLarge)?);
                break;
            }
        }
        let body_end = match content_length {
            Some(n) => {
                let end = body_start.checked_add(n).ok_or(SipError::TooLarge)?;
                if end > max_size {
                    return Err(SipError::TooLarge);
                }
                if end > msg_data.len() {
                    return Err(SipError::Truncated);
                }
                end
            }
            None => {
                if msg_data.len() > max_size {
                    return Err(SipError::TooLarge);
                }
                msg_data.len()
            }
        };
        let message = Message {
            // body_end <= msg_data.len(), checked above.
            data: msg_data.get(..body_end).ok_or(SipError::Truncated)?,
            start,
            fields,
            body: Span::new(body_start, body_end),
        };
        Ok((message, skip + body_end))
    }

    /// The start line.
    pub fn start_line(&self) -> StartLine<'a> {
        self.start
    }

    /// The whole message as it was read (headers and body).
    pub fn raw(&self) -> &'a [u8] {
        self.data
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The method of a request, or of the CSeq of a response.
    pub fn method(&self) -> Option<Method<'a>> {
        match self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => self.cseq().map(|c| c.method),
        }
    }

    /// Status code for a response, `None` for a request.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// All header fields in order, as (name as written, value).
    pub fn fields(&self) -> impl Iterator<Item = (&'a str, Cow<'a, str>)> + '_ {
        let data = self.data;
        self.fields.iter().filter_map(move |f| {
            let name = as_str(f.name.of(data))?;
            Some((name, field_value(data, f)))
        })
    }

    /// All values of a header, in order, by case-insensitive name; compact
    /// forms match their long names (`i` = Call-ID, `f` = From, ...). Folded
    /// values are returned with line folds replaced by single spaces where
    /// needed (hence `Cow`); bytes that are not UTF-8 are replaced.
    pub fn headers<'s>(&'s self, name: &'s str) -> impl Iterator<Item = Cow<'a, str>> + 's {
        let data = self.data;
        self.fields
            .iter()
            .filter(move |f| names_match(f.name.of(data), name.as_bytes()))
            .map(move |f| field_value(data, f))
    }

    /// The first value of a header (see [`Message::headers`]).
    pub fn header(&self, name: &str) -> Option<Cow<'a, str>> {
        let f = self.first_field(name.as_bytes())?;
        Some(field_value(self.data, f))
    }

    fn first_field(&self, name: &[u8]) -> Option<&Field> {
        self.fields
            .iter()
            .find(|f| names_match(f.name.of(self.data), name))
    }

    /// Raw value bytes of the first field called `name` (may hold line folds).
    fn first_raw(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.first_field(name).map(|f| f.value.of(self.data))
    }

    /// Call-ID, trimmed.
    pub fn call_id(&self) -> Option<&'a str> {
        let v = as_str(trim_lws(self.first_raw(b"Call-ID")?))?;
        (!v.is_empty()).then_some(v)
    }

    /// From header.
    pub fn from(&self) -> Option<NameAddr<'a>> {
        parse_name_addr(self.first_raw(b"From")?).map(|(na, _)| na)
    }

    /// To header.
    pub fn to(&self) -> Option<NameAddr<'a>> {
        parse_name_addr(self.first_raw(b"To")?).map(|(na, _)| na)
    }

    /// CSeq header.
    pub fn cseq(&self) -> Option<CSeq<'a>> {
        let v = trim_lws(self.first_raw(b"CSeq")?);
        let digits = v.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 10 {
            return None;
        }
        let (digits, rest) = v.split_at_checked(digits)?;
        let number = digits.iter().try_fold(0u32, |acc, d| {
            acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
        })?;
        if !rest.first().is_some_and(|&b| is_lws(b)) {
            return None;
        }
        let method = trim_lws(rest);
        if method.is_empty() || !method.iter().all(|&b| is_token_byte(b)) {
            return None;
        }
        Some(CSeq {
            number,
            method: Method::from_token(as_str(method)?),
        })
    }

    /// The `branch` parameter of the top Via (the first via-parm of the first
    /// Via field, which may hold several comma-separated vias).
    pub fn via_branch(&self) -> Option<&'a str> {
        let v = self.first_raw(b"Via")?;
        let first = split_at(v, top_level_find(v, b',').unwrap_or(v.len())).0;
        let params_at = top_level_find(first, b';')?;
        find_param(first.get(params_at..)?, b"branch")
    }

    /// First Contact (`None` for `Contact: *`).
    pub fn contact(&self) -> Option<NameAddr<'a>> {
        parse_name_addr(self.first_raw(b"Contact")?).map(|(na, _)| na)
    }

    /// First P-Asserted-Identity (the first URI in it).
    pub fn p_asserted_identity(&self) -> Option<NameAddr<'a>> {
        parse_name_addr(self.first_raw(b"P-Asserted-Identity")?).map(|(na, _)| na)
    }

    /// Content-Type media type as written, parameters excluded (e.g.
    /// `application/sdp`); compare it case-insensitively.
    pub fn content_type(&self) -> Option<&'a str> {
        let v = self.first_raw(b"Content-Type")?;
        let media = trim_lws(until(v, b';'));
        as_str(media).filter(|s| !s.is_empty())
    }

    /// The body (exactly Content-Length bytes; what follows the blank line when
    /// Content-Length is absent on a datagram).
    pub fn body(&self) -> &'a [u8] {
        self.body.of(self.data)
    }

    /// The SDP body, if the message carries one (Content-Type application/sdp,
    /// or the application/sdp part of a multipart body, found with its
    /// `boundary` parameter). A non-empty body without Content-Type that starts
    /// with `v=` is taken as SDP too. An empty body is never SDP.
    pub fn sdp_body(&self) -> Option<&'a [u8]> {
        let body = self.body();
        if body.is_empty() {
            return None;
        }
        let ctype = match self.content_type() {
            Some(t) => t,
            None => return body.starts_with(b"v=").then_some(body),
        };
        if ctype.eq_ignore_ascii_case("application/sdp") {
            return Some(body);
        }
        // `get`, not a range index: byte 10 need not be a char boundary.
        if ctype
            .get(..10)
            .is_some_and(|p| p.eq_ignore_ascii_case("multipart/"))
        {
            let v = self.first_raw(b"Content-Type")?;
            let params_at = top_level_find(v, b';')?;
            let boundary = find_param(v.get(params_at..)?, b"boundary")?;
            let boundary = boundary.trim_matches('"');
            return multipart_sdp(body, boundary.as_bytes());
        }
        None
    }
}

/// Error for a buffer whose first line has no end yet: a plausible start of
/// a SIP message is `Truncated` (wait for more), anything else `NotSip`.
fn incomplete_line_error(window: &[u8], available: usize, limits: &Limits) -> SipError {
    if window.is_empty() {
        return SipError::Truncated;
    }
    let plausible = window
        .iter()
        .all(|&b| b == b'\r' || b == b'\t' || (0x20..0x7f).contains(&b))
        && window.first().is_some_and(u8::is_ascii_alphabetic);
    if !plausible {
        SipError::NotSip
    } else if available > limits.max_line_len || available >= limits.max_message_size {
        SipError::TooLarge
    } else {
        SipError::Truncated
    }
}

fn trim_end_ws(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., last] = s {
        if is_ws(*last) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Extends a field with a continuation `line` found at `offset`.
fn extend_field(f: &mut Field, line: &[u8], offset: usize) {
    let lead = line.iter().take_while(|&&b| is_ws(b)).count();
    let content = trim_end_ws(line);
    if content.len() <= lead {
        return; // whitespace-only continuation
    }
    let end = Span::new(offset + lead, offset + content.len());
    if f.value.start == f.value.end {
        // The value begins on this continuation line.
        f.value = end;
    } else {
        f.value.end = end.end;
        f.folded = true;
    }
}

fn push_field(fields: &mut Vec<Field>, f: Field, limits: &Limits) -> Result<(), SipError> {
    if fields.len() >= limits.max_headers {
        return Err(SipError::TooLarge);
    }
    fields.push(f);
    Ok(())
}

/// `name *WS ":" *WS value`; lines without a colon or with a non-token name
/// are skipped (tolerated, not indexed).
fn parse_field_line(line: &[u8], offset: usize) -> Option<Field> {
    let colon = line.iter().position(|&b| b == b':')?;
    let (name, after) = split_around(line, colon)?;
    let name = trim_end_ws(name);
    if name.is_empty() || !name.iter().all(|&b| is_token_byte(b)) {
        return None;
    }
    let lead = after.iter().take_while(|&&b| is_ws(b)).count();
    let value_start = colon + 1 + lead;
    let value_end = value_start + trim_end_ws(split_at(after, lead).1).len();
    Some(Field {
        name: Span::new(offset, offset + name.len()),
        value: Span::new(offset + value_start, offset + value_end),
        folded: false,
    })
}

/// A field value as text: borrowed unless it had line folds (each fold and
/// the whitespace around it becomes one space) or invalid UTF-8.
fn field_value<'a>(data: &'a [u8], f: &Field) -> Cow<'a, str> {
    let raw = f.value.of(data);
    if !f.folded {
        return String::from_utf8_lossy(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if b == b'\r' || b == b'\n' {
            while out.last().is_some_and(|&c| is_ws(c)) {
                out.pop();
            }
            while raw.get(i).is_some_and(|&c| is_lws(c)) {
                i += 1;
            }
            out.push(b' ');
        } else {
            out.push(b);
            i += 1;
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Position of the first `needle` outside double quotes and `<...>`.
fn top_level_find(s: &[u8], needle: u8) -> Option<usize> {
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if in_quotes {
            match b {
                b'\\' => i += 1,
                b'"' => in_quotes = false,
                _ => {}
            }
        } else if b == b'"' {
            in_quotes = true;
        } else if b == b'<' {
            in_angle = true;
        } else if b == b'>' {
            in_angle = false;
        } else if b == needle && !in_angle {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Finds `;name=value` in a parameter list (`s` starts at a `;`); the value
/// is trimmed and may be quoted (quotes kept). Stops at a top-level comma.
fn find_param<'a>(s: &'a [u8], name: &[u8]) -> Option<&'a str> {
    let mut rest = split_at(s, top_level_find(s, b',').unwrap_or(s.len())).0;
    while let Some(semi) = top_level_find(rest, b';') {
        let after = split_at(rest, semi + 1).1;
        let (param, tail) = split_at(after, top_level_find(after, b';').unwrap_or(after.len()));
        let (pname, pvalue) = match split_once_byte(param, b'=') {
            Some((pname, pvalue)) => (pname, Some(pvalue)),
            None => (param, None),
        };
        if trim_lws(pname).eq_ignore_ascii_case(name) {
            let value = as_str(trim_lws(pvalue?))?;
            return (!value.is_empty()).then_some(value);
        }
        rest = tail;
    }
    None
}

/// Parses one name-addr / addr-spec with its header parameters from the
/// start of `v`. Returns it and the rest (from a following top-level comma).
fn parse_name_addr(v: &[u8]) -> Option<(NameAddr<'_>, &[u8])> {
    let v = trim_lws(v);
    let (display_name, uri, params): (Option<Cow<'_, str>>, &[u8], &[u8]) =
        if v.first() == Some(&b'"') {
            let (name, after) = parse_quoted(v)?;
            let after = trim_lws(after);
            let inner = after.strip_prefix(b"<")?;
            let (uri, params) = split_once_byte(inner, b'>')?;
            (Some(name), uri, params)
        } else {
            let lt = v.iter().position(|&b| b == b'<');
            let stop = v.iter().position(|&b| b == b';' || b == b',');
            match lt {
                Some(lt) if stop.is_none_or(|s| s > lt) => {
                    let (name, inner) = split_around(v, lt)?;
                    let name = trim_lws(name);
                    let (uri, params) = split_once_byte(inner, b'>')?;
                    let display = if name.is_empty() {
                        None
                    } else {
                        Some(unfold_display(name))
                    };
                    (display, uri, params)
                }
                _ => {
                    // addr-spec: parameters after the URI are header parameters
                    // (RFC 3261 20.10).
                    let end = v
                        .iter()
                        .position(|&b| b == b';' || b == b',' || is_lws(b))
                        .unwrap_or(v.len());
                    let (uri, params) = split_at(v, end);
                    (None, uri, params)
                }
            }
        };
    let uri = trim_lws(uri);
    if uri.is_empty() || uri == b"*" {
        return None;
    }
    let uri = as_str(uri)?;
    let (own, following) = split_at(params, top_level_find(params, b',').unwrap_or(params.len()));
    let tag = find_param(own, b"tag");
    let (user, host) = split_uri(uri);
    Some((
        NameAddr {
            display_name,
            uri,
            user,
            host,
            tag,
        },
        following,
    ))
}

/// A quoted-string at the start of `v`: its unescaped content and the rest.
fn parse_quoted(v: &[u8]) -> Option<(Cow<'_, str>, &[u8])> {
    let inner = v.strip_prefix(b"\"")?;
    let mut i = 0;
    let mut plain = true;
    while let Some(&b) = inner.get(i) {
        match b {
            b'\\' => {
                plain = false;
                i += 2;
            }
            b'"' => break,
            b'\r' | b'\n' => {
                plain = false;
                i += 1;
            }
            _ => i += 1,
        }
    }
    let content = inner.get(..i)?;
    let rest = inner.get(i + 1..)?; // requires the closing quote
    let name = if plain {
        String::from_utf8_lossy(content)
    } else {
        let mut out = Vec::with_capacity(content.len());
        let mut j = 0;
        while let Some(&b) = content.get(j) {
            match b {
                b'\\' => {
                    if let Some(&esc) = content.get(j + 1) {
                        out.push(esc);
                    }
                    j += 2;
                }
                b'\r' | b'\n' => {
                    while out.last().is_some_and(|&c| is_ws(c)) {
                        out.pop();
                    }
                    while content.get(j).is_some_and(|&c| is_lws(c)) {
                        j += 1;
                    }
                    out.push(b' ');
                }
                _ => {
                    out.push(b);
                    j += 1;
                }
            }
        }
        Cow::Owned(String::from_utf8_lossy(&out).into_owned())
    };
    Some((name, rest))
}

/// An unquoted (token-form) display name, with any line folds collapsed.
fn unfold_display(name: &[u8]) -> Cow<'_, str> {
    if !name.iter().any(|&b| b == b'\r' || b == b'\n') {
        return String::from_utf8_lossy(name);
    }
    let words: Vec<Cow<'_, str>> = name
        .split(|&b| is_lws(b))
        .filter(|w| !w.is_empty())
        .map(String::from_utf8_lossy)
        .collect();
    Cow::Owned(words.join(" "))
}

/// User and host of a sip:/sips: URI, or the number of a tel: URI.
fn split_uri(uri: &str) -> (Option<&str>, Option<&str>) {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return (None, None);
    };
    if scheme.eq_ignore_ascii_case("tel") {
        let number = rest.split([';', '?']).next().unwrap_or_default().trim();
        return ((!number.is_empty()).then_some(number), None);
    }
    if !(scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")) {
        return (None, None);
    }
    // The userinfo ends at the '@' that precedes the host; '?' starts URI headers.
    let head = rest.split('?').next().unwrap_or_default();
    let (user, hostport) = match head.split_once('@') {
        Some((userinfo, hostport)) => {
            let user = userinfo.split([':', ';']).next().unwrap_or_default();
            ((!user.is_empty()).then_some(user), hostport)
        }
        None => (None, head),
    };
    let host = if hostport.starts_with('[') {
        hostport.find(']').and_then(|close| hostport.get(..=close))
    } else if hostport.bytes().filter(|&b| b == b':').count() > 1 {
        // An unbracketed IPv6 literal (seen in the wild): the last ":n" is a
        // port only if what precedes it is still an address.
        let candidate = hostport.split(';').next().unwrap_or_default();
        match candidate.rsplit_once(':') {
            Some((addr, _))
                if candidate.parse::<std::net::Ipv6Addr>().is_err()
                    && addr.parse::<std::net::Ipv6Addr>().is_ok() =>
            {
                Some(addr)
            }
            _ => Some(candidate),
        }
    } else {
        hostport.split([':', ';']).next()
    };
    (user, host.filter(|h| !h.is_empty()))
}

/// The content of the application/sdp part of a multipart body (RFC 2046).
fn multipart_sdp<'a>(body: &'a [u8], boundary: &[u8]) -> Option<&'a [u8]> {
    if boundary.is_empty() || boundary.len() > 200 {
        return None;
    }
    let mut delimiter = Vec::with_capacity(boundary.len() + 2);
    delimiter.extend_from_slice(b"--");
    delimiter.extend_from_slice(boundary);
    // The first delimiter may start the body or follow a preamble line.
    let mut at = find_delimiter(body, &delimiter, 0)?;
    loop {
        let after = at + delimiter.len();
        if body.get(after..after + 2) == Some(b"--") {
            return None; // close delimiter
        }
        // Rest of the delimiter line (transport padding).
        let line_end = after + body.get(after..)?.iter().position(|&b| b == b'\n')?;
        let part_start = line_end + 1;
        let next = find_delimiter(body, &delimiter, part_start);
        // The CRLF before the next delimiter belongs to the delimiter.
        let part_end = match next {
            Some(n) => {
                let mut e = n;
                if e > part_start && body.get(e - 1) == Some(&b'\n') {
                    e -= 1;
                    if e > part_start && body.get(e - 1) == Some(&b'\r') {
                        e -= 1;
                    }
                }
                e
            }
            None => body.len(),
        };
        let part = body.get(part_start..part_end.max(part_start))?;
        if let Some(content) = sdp_part_content(part) {
            return Some(content);
        }
        at = next?;
    }
}

/// Finds `delimiter` at `from` or at the start of a later line.
fn find_delimiter(body: &[u8], delimiter: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(rest) = body.get(i..).filter(|r| !r.is_empty()) {
        if rest.starts_with(delimiter) && (i == 0 || body.get(i - 1) == Some(&b'\n')) {
            return Some(i);
        }
        i += 1 + rest.iter().position(|&b| b == b'\n')?;
    }
    None
}

/// If a MIME part has Content-Type application/sdp, its content.
fn sdp_part_content(part: &[u8]) -> Option<&[u8]> {
    let mut pos = 0;
    let mut is_sdp = false;
    loop {
        let rest = part.get(pos..)?;
        let rel = rest.iter().position(|&b| b == b'\n');
        let line_end = rel.map_or(part.len(), |r| pos + r);
        let line = trim_cr(until(rest, b'\n'));
        if line.is_empty() {
            let content_start = (line_end + 1).min(part.len());
            return part.get(content_start..).filter(|_| is_sdp);
        }
        if let Some((name, value)) = split_once_byte(line, b':') {
            if trim_lws(name).eq_ignore_ascii_case(b"Content-Type") {
                let media = trim_lws(until(value, b';'));
                is_sdp = media.eq_ignore_ascii_case(b"application/sdp");
            }
        }
        rel?;
        pos = line_end + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Modelled on the delayed-offer call in pcma-rfc2833-delayed-offer-ptime30.cap:
    /// the 200 OK carries the offer.
    const OK_WITH_OFFER: &[u8] = b"SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 192.168.105.105:5060;branch=z9hG4bK48df8586c6abf.1\r\n\
Via: SIP/2.0/UDP 192.168.105.110:5060;branch=z9hG4bK12840\r\n\
Record-Route: <sip:192.168.105.105:5060;lr>\r\n\
From: 2502 <sip:2502@192.168.105.105>;tag=26598\r\n\
To: <sip:2504@192.168.105.110:5060>;tag=12860\r\n\
Call-ID: 25672@192.168.105.110\r\n\
CSeq: 20 INVITE\r\n\
Contact: <sip:2504@192.168.105.110:5060;transport=udp>\r\n\
User-Agent: SIP IP-DECT gateway, NEC Philips Unified Solutions  \r\n\
Content-Type: application/sdp\r\n\
Content-Length:   123\r\n\
\r\n\
v=0\r\n\
o=SIPDECT2504 4400 1459 IN IP4 192.168.105.110\r\n\
s=-\r\n\
c=IN IP4 192.168.105.110\r\n\
t=0 0\r\n\
m=audio 4376 RTP/AVP 8 0 18 96\r\n";

    /// The INVITE of the same call: no SDP (delayed offer).
    const INVITE_NO_SDP: &[u8] = b"INVITE sip:2504@192.168.105.110:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.168.105.105:5060;branch=z9hG4bK48df8586c6abf.1\r\n\
From: 2502 <sip:2502@192.168.105.105>;tag=26598\r\n\
To: <sip:2504@192.168.105.110:5060>\r\n\
Call-ID: 25672@192.168.105.110\r\n\
CSeq: 20 INVITE\r\n\
Content-Length: 0\r\n\
\r\n";

    fn parse(data: &[u8]) -> Message<'_> {
        let (msg, consumed) = Message::parse(data).expect("parses");
        assert_eq!(consumed, data.len());
        msg
    }

    #[test]
    fn response_with_sdp() {
        let msg = parse(OK_WITH_OFFER);
        assert_eq!(
            msg.start_line(),
            StartLine::Response {
                code: 200,
                reason: "OK"
            }
        );
        assert_eq!(msg.status(), Some(200));
        assert_eq!(msg.method(), Some(Method::Invite));
        assert_eq!(msg.call_id(), Some("25672@192.168.105.110"));
        assert_eq!(
            msg.cseq(),
            Some(CSeq {
                number: 20,
                method: Method::Invite
            })
        );
        let from = msg.from().unwrap();
        assert_eq!(from.display_name.as_deref(), Some("2502"));
        assert_eq!(from.uri, "sip:2502@192.168.105.105");
        assert_eq!(from.user, Some("2502"));
        assert_eq!(from.host, Some("192.168.105.105"));
        assert_eq!(from.tag, Some("26598"));
        let to = msg.to().unwrap();
        assert_eq!(to.display_name, None);
        assert_eq!(to.host, Some("192.168.105.110"));
        assert_eq!(to.tag, Some("12860"));
        // Top Via only, both Via lines kept in order.
        assert_eq!(msg.via_branch(), Some("z9hG4bK48df8586c6abf.1"));
        let vias: Vec<_> = msg.headers("via").collect();
        assert_eq!(vias.len(), 2);
        assert!(vias[1].ends_with("branch=z9hG4bK12840"));
        assert_eq!(msg.contact().unwrap().user, Some("2504"));
        assert_eq!(msg.content_type(), Some("application/sdp"));
        assert!(msg.body().starts_with(b"v=0\r\n"));
        assert_eq!(msg.sdp_body(), Some(msg.body()));
        // Trailing spaces of a value are trimmed.
        assert_eq!(
            msg.header("User-Agent").as_deref(),
            Some("SIP IP-DECT gateway, NEC Philips Unified Solutions")
        );
        assert_eq!(msg.fields().count(), 11);
        assert!(looks_like_sip(OK_WITH_OFFER));
    }

    #[test]
    fn delayed_offer_invite_has_no_sdp() {
        let msg = parse(INVITE_NO_SDP);
        assert!(msg.is_request());
        assert_eq!(
            msg.start_line(),
            StartLine::Request {
                method: Method::Invite,
                uri: "sip:2504@192.168.105.110:5060"
            }
        );
        assert_eq!(msg.status(), None);
        assert_eq!(msg.body(), b"");
        assert_eq!(msg.sdp_body(), None);
        assert_eq!(msg.to().unwrap().tag, None);
    }

    #[test]
    fn compact_headers_and_lf_only() {
        let data = b"BYE sip:alice@10.0.0.1 SIP/2.0\n\
v: SIP/2.0/TCP 10.0.0.2:5060;rport;branch=z9hG4bKabc, SIP/2.0/UDP 10.0.0.3;branch=z9hG4bKdef\n\
f: <sip:bob@example.com>;tag=b1\n\
t: \"Alice\" <sip:alice@example.com>;tag=a1\n\
i:  abc123@host  \n\
CSeq: 7 BYE\n\
m: <sip:bob@10.0.0.2:5060;transport=tcp>\n\
l: 0\n\
\n";
        let msg = parse(data);
        assert_eq!(msg.method(), Some(Method::Bye));
        assert_eq!(msg.call_id(), Some("abc123@host"));
        assert_eq!(msg.from().unwrap().tag, Some("b1"));
        assert_eq!(msg.to().unwrap().display_name.as_deref(), Some("Alice"));
        // The first via of a line holding several.
        assert_eq!(msg.via_branch(), Some("z9hG4bKabc"));
        assert_eq!(msg.contact().unwrap().host, Some("10.0.0.2"));
        assert_eq!(msg.header("Content-Length").as_deref(), Some("0"));
        assert_eq!(msg.header("CALL-ID").as_deref(), Some("abc123@host"));
        assert_eq!(msg.header("I").as_deref(), Some("abc123@host"));
        assert!(looks_like_sip(data));
    }

    #[test]
    fn folded_headers_and_space_before_colon() {
        let data = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via : SIP/2.0/UDP pc33.atlanta.example.com\r\n\
\x20;branch=z9hG4bK776asdhds\r\n\
Subject:\r\n\
\tI know you're there,\r\n   pick up the phone\r\n\
From\t: \"Alice\"\r\n <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
To: <sip:bob@biloxi.example.com>\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Content-Length: 0\r\n\r\n";
        let msg = parse(data);
        assert_eq!(msg.via_branch(), Some("z9hG4bK776asdhds"));
        assert_eq!(
            msg.header("via").as_deref(),
            Some("SIP/2.0/UDP pc33.atlanta.example.com ;branch=z9hG4bK776asdhds")
        );
        assert!(matches!(msg.header("Via"), Some(Cow::Owned(_))));
        assert_eq!(
            msg.header("s").as_deref(),
            Some("I know you're there, pick up the phone")
        );
        let from = msg.from().unwrap();
        assert_eq!(from.display_name.as_deref(), Some("Alice"));
        assert_eq!(from.user, Some("alice"));
        assert_eq!(from.tag, Some("1928301774"));
        // Unfolded values are borrowed.
        assert!(matches!(msg.header("To"), Some(Cow::Borrowed(_))));
        let names: Vec<_> = msg.fields().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "Via",
                "Subject",
                "From",
                "To",
                "Call-ID",
                "CSeq",
                "Content-Length"
            ]
        );
    }

    #[test]
    fn unknown_method() {
        let data = b"FOOBAR sip:x@y SIP/2.0\r\nCSeq: 1 FOOBAR\r\nContent-Length: 0\r\n\r\n";
        let msg = parse(data);
        assert_eq!(msg.method(), Some(Method::Other("FOOBAR")));
        assert_eq!(msg.cseq().unwrap().method, Method::Other("FOOBAR"));
        assert_eq!(Method::Other("FOOBAR").as_str(), "FOOBAR");
        assert_eq!(Method::from_token("PRACK"), Method::Prack);
    }

    #[test]
    fn truncated_body_and_headers() {
        let cut = &OK_WITH_OFFER[..OK_WITH_OFFER.len() - 1];
        assert_eq!(Message::parse(cut).unwrap_err(), SipError::Truncated);
        let head_only = &INVITE_NO_SDP[..INVITE_NO_SDP.len() - 2];
        assert_eq!(Message::parse(head_only).unwrap_err(), SipError::Truncated);
        assert_eq!(
            Message::parse(b"INVITE sip:a@b SI").unwrap_err(),
            SipError::Truncated
        );
        assert_eq!(Message::parse(b"").unwrap_err(), SipError::Truncated);
    }

    #[test]
    fn two_messages_back_to_back() {
        let mut stream = Vec::new();
        stream.extend_from_slice(b"\r\n\r\n"); // keep-alive
        stream.extend_from_slice(OK_WITH_OFFER);
        stream.extend_from_slice(INVITE_NO_SDP);
        let (first, used) = Message::parse(&stream).unwrap();
        assert_eq!(used, 4 + OK_WITH_OFFER.len());
        assert_eq!(first.status(), Some(200));
        assert_eq!(first.raw(), OK_WITH_OFFER);
        let (second, used2) = Message::parse(&stream[used..]).unwrap();
        assert_eq!(used2, INVITE_NO_SDP.len());
        assert_eq!(second.method(), Some(Method::Invite));
        assert_eq!(second.body(), b"");
    }

    #[test]
    fn datagram_without_content_length_takes_rest() {
        let data = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Type: text/plain\r\n\r\nhello";
        let (msg, used) = Message::parse(data).unwrap();
        assert_eq!(msg.body(), b"hello");
        assert_eq!(used, data.len());
        assert_eq!(msg.sdp_body(), None);
    }

    #[test]
    fn quoted_display_names_with_escapes() {
        let data = br#"OPTIONS sip:a@b SIP/2.0
From: "Smith, John \"JJ\" \\ Sales" <sip:+15551234;npdi@pbx.example.com:5061;user=phone>;tag=x9
To: Bob Smith <sips:bob:secret@[2001:db8::1]:5061>
P-Asserted-Identity: "Caller" <tel:+1-555-1234;phone-context=example.com>, <sip:+15551234@example.com>
Contact: *
Content-Length: 0

"#;
        let msg = parse(data);
        let from = msg.from().unwrap();
        assert_eq!(
            from.display_name.as_deref(),
            Some(r#"Smith, John "JJ" \ Sales"#)
        );
        assert_eq!(from.user, Some("+15551234"));
        assert_eq!(from.host, Some("pbx.example.com"));
        assert_eq!(from.tag, Some("x9"));
        let to = msg.to().unwrap();
        assert_eq!(to.display_name.as_deref(), Some("Bob Smith"));
        assert!(matches!(to.display_name, Some(Cow::Borrowed(_))));
        assert_eq!(to.user, Some("bob"));
        assert_eq!(to.host, Some("[2001:db8::1]"));
        let pai = msg.p_asserted_identity().unwrap();
        assert_eq!(pai.display_name.as_deref(), Some("Caller"));
        assert_eq!(pai.uri, "tel:+1-555-1234;phone-context=example.com");
        assert_eq!(pai.user, Some("+1-555-1234"));
        assert_eq!(pai.host, None);
        assert_eq!(msg.contact(), None);
    }

    #[test]
    fn addr_spec_form_params_are_header_params() {
        let data = b"NOTIFY sip:a@b SIP/2.0\r\nFrom: sip:carol@chicago.example.com;tag=887s\r\n\
To: tel:+4930123\r\nContent-Length: 0\r\n\r\n";
        let msg = parse(data);
        let from = msg.from().unwrap();
        assert_eq!(from.uri, "sip:carol@chicago.example.com");
        assert_eq!(from.tag, Some("887s"));
        assert_eq!(msg.to().unwrap().user, Some("+4930123"));
    }

    #[test]
    fn unbracketed_ipv6_hosts() {
        // As in ipv6-sip-bogus-timestamps.pcap.
        let data = b"SIP/2.0 200 OK\r\n\
Call-ID: c3eF6f58-363323Cd-8058EB88-10300252@fe80:0:0:0:21a:a0ff:fe07:32e0\r\n\
Contact: <sip:4321@fec0:0:0:0:216:d3ff:fe0d:22c:5060>\r\n\
CSeq: 1 INVITE\r\n\
From: <sip:9876@fe80:0:0:0:21a:a0ff:fe07:32e0>;tag=a3bhg\r\n\
Via: SIP/2.0/UDP fe80:0:0:0:21a:a0ff:fe07:32e0:5060;branch=z9hG4bKkdjuw8376\r\n\
Content-Length: 0\r\n\r\n";
        let msg = parse(data);
        assert_eq!(
            msg.contact().unwrap().host,
            Some("fec0:0:0:0:216:d3ff:fe0d:22c")
        );
        assert_eq!(
            msg.from().unwrap().host,
            Some("fe80:0:0:0:21a:a0ff:fe07:32e0")
        );
        assert_eq!(msg.via_branch(), Some("z9hG4bKkdjuw8376"));
    }

    #[test]
    fn multipart_sdp_part() {
        let data = b"INVITE sip:1@h SIP/2.0\r\n\
Content-Type: multipart/mixed;boundary=\"b0und\"\r\n\
Content-Length: 167\r\n\
\r\n\
--b0und\r\n\
Content-Type: application/ISUP;version=itu-t92+\r\n\
\r\n\
\x01\x00\r\n\
--b0und\r\n\
Content-Type: application/sdp\r\n\
\r\n\
v=0\r\n\
c=IN IP4 10.0.0.1\r\n\
m=audio 4000 RTP/AVP 8\r\n\
\r\n\
--b0und--\r\n";
        let msg = parse(data);
        assert_eq!(msg.content_type(), Some("multipart/mixed"));
        assert_eq!(
            msg.sdp_body(),
            Some(&b"v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 8\r\n"[..])
        );
    }

    /// A Content-Type whose 10th byte is inside a multi-byte character used
    /// to panic on a `&str` range index (found converting to checked access).
    #[test]
    fn content_type_split_character_is_no_panic() {
        let data = "OPTIONS sip:a@b SIP/2.0\r\nContent-Type: multipart\u{e9}/x\r\n\
Content-Length: 3\r\n\r\nv=0"
            .as_bytes();
        let msg = parse(data);
        assert_eq!(msg.content_type(), Some("multipart\u{e9}/x"));
        assert_eq!(msg.sdp_body(), None);
    }

    #[test]
    fn limits() {
        let mut many = b"OPTIONS sip:a@b SIP/2.0\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(Message::parse(&many).unwrap_err(), SipError::TooLarge);
        let small = Limits {
            max_headers: 500,
            ..Limits::default()
        };
        assert!(Message::parse_with_limits(&many, &small).is_ok());

        let big_body = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 70000\r\n\r\n";
        assert_eq!(Message::parse(big_body).unwrap_err(), SipError::TooLarge);

        let mut long_line = b"OPTIONS sip:a@b SIP/2.0\r\nX-Long: ".to_vec();
        long_line.resize(long_line.len() + MAX_LINE_LEN, b'a');
        long_line.extend_from_slice(b"\r\n\r\n");
        assert_eq!(Message::parse(&long_line).unwrap_err(), SipError::TooLarge);

        let no_end = vec![b'a'; MAX_MESSAGE_SIZE + 10];
        assert_eq!(Message::parse(&no_end).unwrap_err(), SipError::TooLarge);
    }

    #[test]
    fn malformed_content_length() {
        let data = b"BYE sip:a@b SIP/2.0\r\nContent-Length: ten\r\n\r\n";
        assert_eq!(Message::parse(data).unwrap_err(), SipError::Malformed);
    }

    #[test]
    fn not_sip() {
        // An RTP packet: version 2, PT 0.
        let rtp = [
            0x80u8, 0x00, 0x12, 0x34, 0, 0, 0, 160, 1, 2, 3, 4, 0xff, 0xff,
        ];
        assert!(!looks_like_sip(&rtp));
        assert_eq!(Message::parse(&rtp).unwrap_err(), SipError::NotSip);
        assert!(!looks_like_sip(b"HTTP/1.1 200 OK\r\n"));
        assert!(!looks_like_sip(b"GET / HTTP/1.1\r\n"));
        assert_eq!(
            Message::parse(b"GET / HTTP/1.1\r\n\r\n").unwrap_err(),
            SipError::NotSip
        );
        assert!(!looks_like_sip(b"SIP/2.0 abc\r\n"));
        assert_eq!(
            Message::parse(b"SIP/2.0 999 Huh\r\n\r\n").unwrap_err(),
            SipError::NotSip
        );
        assert!(looks_like_sip(b"REGISTER sip:example.com SIP/2.0\r\n"));
        assert!(!looks_like_sip(b"REGISTER sip:example.com SIP/2.0"));
    }

    #[test]
    fn header_lines_without_colon_are_skipped() {
        let data = b"ACK sip:a@b SIP/2.0\r\ngarbage line\r\nCall-ID: x\r\n\r\n";
        let msg = parse(data);
        assert_eq!(msg.call_id(), Some("x"));
        assert_eq!(msg.fields().count(), 1);
    }

    #[test]
    fn response_without_reason() {
        let msg = parse(b"SIP/2.0 180\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            msg.start_line(),
            StartLine::Response {
                code: 180,
                reason: ""
            }
        );
        assert_eq!(msg.method(), None);
    }
}
