//! A tolerant, zero-copy SIP message scanner (RFC 3261 syntax, as seen on
//! real networks: compact header names, folded lines, stray spaces).

/// Why bytes are not a usable SIP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SipError {
    /// Not a SIP start line.
    #[error("not SIP")]
    NotSip,
    /// The header section or body is cut short (Content-Length beyond the data).
    #[error("truncated SIP message")]
    Truncated,
    /// Over a size or header-count limit.
    #[error("SIP message too large")]
    TooLarge,
    /// A header needed to use the message is unparseable.
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
        /// Reason phrase, as written.
        reason: &'a str,
    },
}

/// A name-addr or addr-spec header value (From, To, Contact, P-Asserted-Identity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// Display name, unquoted (quotes and backslash escapes removed), if any.
    pub display_name: Option<std::borrow::Cow<'a, str>>,
    /// The URI between `<` `>` (or the bare URI), e.g. `sip:1001@pbx.example.com;user=phone`.
    pub uri: &'a str,
    /// The user part of a sip:/sips: URI, or the number of a tel: URI, if any.
    pub user: Option<&'a str>,
    /// The host part of the URI, if any.
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

/// A parsed SIP message borrowing the packet bytes. Header lines are kept in
/// order; lookups are by canonical (long-form, case-insensitive) name.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    _private: std::marker::PhantomData<&'a ()>,
}

/// Cheap test whether a payload starts like a SIP message (a request line
/// ending in `SIP/2.0`, or a status line starting with `SIP/2.0 `). Used to
/// recognise SIP on any port.
pub fn looks_like_sip(data: &[u8]) -> bool {
    let _ = data;
    todo!()
}

impl<'a> Message<'a> {
    /// Parses one message from the start of `data`. Returns the message and
    /// the number of bytes it occupies (headers + Content-Length body), so a
    /// caller can find a following message in the same buffer.
    pub fn parse(data: &'a [u8]) -> Result<(Message<'a>, usize), SipError> {
        let _ = data;
        todo!()
    }

    /// The start line.
    pub fn start_line(&self) -> StartLine<'a> {
        todo!()
    }

    /// The method of a request, or of the CSeq of a response.
    pub fn method(&self) -> Option<Method<'a>> {
        todo!()
    }

    /// Status code for a response, `None` for a request.
    pub fn status(&self) -> Option<u16> {
        todo!()
    }

    /// All values of a header, in order, by case-insensitive name; compact
    /// forms match their long names (`i` = Call-ID, `f` = From, ...). Folded
    /// values are returned with line folds replaced by single spaces where
    /// needed (hence `Cow`).
    pub fn headers(&self, name: &str) -> impl Iterator<Item = std::borrow::Cow<'a, str>> + '_ {
        let _ = name;
        std::iter::empty()
    }

    /// The first value of a header (see [`Message::headers`]).
    pub fn header(&self, name: &str) -> Option<std::borrow::Cow<'a, str>> {
        self.headers(name).next()
    }

    /// Call-ID, trimmed.
    pub fn call_id(&self) -> Option<&'a str> {
        todo!()
    }

    /// From header.
    pub fn from(&self) -> Option<NameAddr<'a>> {
        todo!()
    }

    /// To header.
    pub fn to(&self) -> Option<NameAddr<'a>> {
        todo!()
    }

    /// CSeq header.
    pub fn cseq(&self) -> Option<CSeq<'a>> {
        todo!()
    }

    /// The `branch` parameter of the top Via.
    pub fn via_branch(&self) -> Option<&'a str> {
        todo!()
    }

    /// First Contact.
    pub fn contact(&self) -> Option<NameAddr<'a>> {
        todo!()
    }

    /// First P-Asserted-Identity (the first URI in it).
    pub fn p_asserted_identity(&self) -> Option<NameAddr<'a>> {
        todo!()
    }

    /// Content-Type media type, lowercased parameters excluded (e.g. `application/sdp`).
    pub fn content_type(&self) -> Option<&'a str> {
        todo!()
    }

    /// The body (exactly Content-Length bytes; what follows the blank line when
    /// Content-Length is absent on a datagram).
    pub fn body(&self) -> &'a [u8] {
        todo!()
    }

    /// The SDP body, if the message carries one (Content-Type application/sdp,
    /// or the SDP part of a multipart/mixed body).
    pub fn sdp_body(&self) -> Option<&'a [u8]> {
        todo!()
    }
}
