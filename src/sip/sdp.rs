//! SDP (RFC 4566/8866) line reader for the handful of fields a recorder needs.
//! Tolerant: missing or unknown lines never reject the body.
//!
//! Bounded: at most [`MAX_MEDIA`] sections (or the cap given to
//! [`SessionDescription::parse_with_limit`], `limits.max_sdp_media_lines`;
//! the sections over it are counted) and [`MAX_FORMATS`] payload types
//! and rtpmaps per section are kept, and text copied out of the body
//! (encoding names, origin fields) is length-capped, so the result stays
//! small whatever the input. `c=IN IP4 0.0.0.0` (old-style hold, RFC 2543)
//! is kept as parsed; callers decide what it means.

use std::net::IpAddr;

/// Media direction attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// a=sendrecv (the default)
    #[default]
    SendRecv,
    /// a=sendonly
    SendOnly,
    /// a=recvonly
    RecvOnly,
    /// a=inactive
    Inactive,
}

/// The media type of an `m=` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// audio
    Audio,
    /// video
    Video,
    /// image (T.38 fax)
    Image,
    /// anything else
    Other,
}

/// The transport of an `m=` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaProtocol {
    /// RTP/AVP or RTP/AVPF: plain RTP.
    Rtp,
    /// RTP/SAVP, RTP/SAVPF, UDP/TLS/RTP/SAVP(F): SRTP.
    Srtp,
    /// udptl (T.38).
    Udptl,
    /// anything else.
    Other,
}

/// An `a=rtpmap` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// Payload type number.
    pub payload_type: u8,
    /// Encoding name as written (e.g. `PCMU`, `telephone-event`).
    pub encoding: String,
    /// Clock rate.
    pub clock_rate: u32,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// audio, video, image, ...
    pub kind: MediaKind,
    /// Port; 0 means the stream is rejected or disabled.
    pub port: u16,
    /// RTP, SRTP, UDPTL, ...
    pub protocol: MediaProtocol,
    /// Payload types in preference order.
    pub payload_types: Vec<u8>,
    /// rtpmap attributes of this section.
    pub rtpmaps: Vec<RtpMap>,
    /// Media-level `c=` address, if any.
    pub connection: Option<IpAddr>,
    /// Media-level direction attribute, if any.
    pub direction: Option<Direction>,
    /// `a=ptime`, milliseconds.
    pub ptime: Option<u32>,
    /// An `a=crypto` or `a=fingerprint` attribute is present (SRTP keys).
    pub has_crypto: bool,
}

/// The `o=` line: enough to tell a new offer from a repeated one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Username as written (`-` when none).
    pub username: String,
    /// Session id as written.
    pub session_id: String,
    /// Session version as written (changes with each new offer/answer).
    pub session_version: String,
    /// Unicast address of the originator, if it is an IP literal.
    pub address: Option<IpAddr>,
}

/// The parts of an SDP body that a recorder uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionDescription {
    /// The `o=` line, if readable.
    pub origin: Option<Origin>,
    /// Session-level `c=` address.
    pub connection: Option<IpAddr>,
    /// Session-level direction attribute.
    pub direction: Option<Direction>,
    /// The `m=` sections in order (capped).
    pub media: Vec<Media>,
    /// Readable `m=` lines dropped (with their attributes) because the cap on
    /// sections was reached.
    pub media_dropped: usize,
}

/// At most this many `m=` sections are kept by [`SessionDescription::parse`]
/// (the default of `limits.max_sdp_media_lines`); more are dropped.
pub const MAX_MEDIA: usize = 16;
/// At most this many payload types / rtpmaps per section are kept.
pub const MAX_FORMATS: usize = 32;
/// Longest text field (encoding name, origin field) copied out of a body.
const MAX_TEXT: usize = 128;

/// Where attribute lines currently apply.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Session,
    Media,
    /// Inside an `m=` section that is over the cap or unreadable.
    Ignored,
}

impl SessionDescription {
    /// Reads an SDP body. Never fails: unreadable lines are skipped.
    /// Lines end in CRLF or bare LF. A session-level `a=fingerprint` or
    /// `a=crypto` marks every section as having crypto. Keeps at most
    /// [`MAX_MEDIA`] sections.
    pub fn parse(body: &[u8]) -> SessionDescription {
        SessionDescription::parse_with_limit(body, MAX_MEDIA)
    }

    /// [`SessionDescription::parse`] keeping at most `max_media` `m=`
    /// sections: a readable `m=` line over the cap is dropped with the lines
    /// of its section and counted in [`SessionDescription::media_dropped`].
    pub fn parse_with_limit(body: &[u8], max_media: usize) -> SessionDescription {
        let mut sd = SessionDescription::default();
        let mut level = Level::Session;
        let mut session_crypto = false;
        for raw_line in body.split(|&b| b == b'\n') {
            let line = raw_line.strip_suffix(b"\r").unwrap_or(raw_line);
            let line = match std::str::from_utf8(line) {
                Ok(l) => l.trim_end(),
                Err(_) => continue,
            };
            let (kind, value) = match line.as_bytes() {
                [k, b'=', ..] => (*k, line.get(2..).unwrap_or_default().trim()),
                _ => continue,
            };
            match kind {
                b'm' => {
                    level = match parse_media(value) {
                        Some(m) if sd.media.len() < max_media => {
                            sd.media.push(m);
                            Level::Media
                        }
                        Some(_) => {
                            sd.media_dropped += 1;
                            Level::Ignored
                        }
                        None => Level::Ignored,
                    };
                }
                b'o' if level == Level::Session => sd.origin = parse_origin(value),
                b'c' => {
                    let addr = parse_connection(value);
                    match level {
                        Level::Session => sd.connection = addr,
                        Level::Media => {
                            if let Some(m) = sd.media.last_mut() {
                                m.connection = addr;
                            }
                        }
                        Level::Ignored => {}
                    }
                }
                b'a' => {
                    let (name, attr_value) = match value.split_once(':') {
                        Some((n, v)) => (n.trim(), v.trim()),
                        None => (value, ""),
                    };
                    match level {
                        Level::Session => {
                            if let Some(d) = parse_direction(name) {
                                sd.direction = Some(d);
                            } else if is_crypto(name) {
                                session_crypto = true;
                            }
                        }
                        Level::Media => {
                            if let Some(m) = sd.media.last_mut() {
                                m.apply_attribute(name, attr_value);
                            }
                        }
                        Level::Ignored => {}
                    }
                }
                _ => {}
            }
        }
        if session_crypto {
            for m in &mut sd.media {
                m.has_crypto = true;
            }
        }
        sd
    }

    /// The first audio section with a non-zero port, if any.
    pub fn audio(&self) -> Option<&Media> {
        self.media
            .iter()
            .find(|m| m.kind == MediaKind::Audio && m.port != 0)
    }
}

impl Media {
    /// The connection address that applies to this section (media-level
    /// `c=` over session-level).
    pub fn address(&self, session: &SessionDescription) -> Option<IpAddr> {
        self.connection.or(session.connection)
    }

    /// The direction that applies (media-level over session-level, default sendrecv).
    pub fn effective_direction(&self, session: &SessionDescription) -> Direction {
        self.direction.or(session.direction).unwrap_or_default()
    }

    /// The encoding name for a payload type: rtpmap first, then the static
    /// table of RFC 3551 (0 = PCMU, 8 = PCMA, 13 = CN, 18 = G729, ...).
    pub fn encoding(&self, payload_type: u8) -> Option<&str> {
        match self.rtpmaps.iter().find(|r| r.payload_type == payload_type) {
            Some(r) => Some(r.encoding.as_str()),
            None => static_payload(payload_type).map(|(name, _)| name),
        }
    }

    /// The RTP clock rate for a payload type: rtpmap first, then the static
    /// table of RFC 3551.
    pub fn clock_rate(&self, payload_type: u8) -> Option<u32> {
        match self.rtpmaps.iter().find(|r| r.payload_type == payload_type) {
            Some(r) => Some(r.clock_rate),
            None => static_payload(payload_type).map(|(_, rate)| rate),
        }
    }

    fn apply_attribute(&mut self, name: &str, value: &str) {
        if let Some(d) = parse_direction(name) {
            self.direction = Some(d);
        } else if is_crypto(name) {
            self.has_crypto = true;
        } else if name.eq_ignore_ascii_case("rtpmap") {
            if self.rtpmaps.len() < MAX_FORMATS {
                if let Some(map) = parse_rtpmap(value) {
                    self.rtpmaps.push(map);
                }
            }
        } else if name.eq_ignore_ascii_case("ptime") {
            // Some UAs write fractional ptimes ("20.0"); keep whole milliseconds.
            let whole = value.split('.').next().unwrap_or("");
            if let Ok(ms) = whole.trim().parse::<u32>() {
                self.ptime = Some(ms);
            }
        }
    }
}

/// RFC 3551 table 4 and 5: static payload types, encoding name and clock rate.
fn static_payload(payload_type: u8) -> Option<(&'static str, u32)> {
    Some(match payload_type {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        5 => ("DVI4", 8000),
        6 => ("DVI4", 16000),
        7 => ("LPC", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        10 | 11 => ("L16", 44100),
        12 => ("QCELP", 8000),
        13 => ("CN", 8000),
        14 => ("MPA", 90000),
        15 => ("G728", 8000),
        16 => ("DVI4", 11025),
        17 => ("DVI4", 22050),
        18 => ("G729", 8000),
        25 => ("CelB", 90000),
        26 => ("JPEG", 90000),
        28 => ("nv", 90000),
        31 => ("H261", 90000),
        32 => ("MPV", 90000),
        33 => ("MP2T", 90000),
        34 => ("H263", 90000),
        _ => return None,
    })
}

fn parse_direction(name: &str) -> Option<Direction> {
    Some(match name {
        "sendrecv" => Direction::SendRecv,
        "sendonly" => Direction::SendOnly,
        "recvonly" => Direction::RecvOnly,
        "inactive" => Direction::Inactive,
        _ => return None,
    })
}

fn is_crypto(name: &str) -> bool {
    name.eq_ignore_ascii_case("crypto") || name.eq_ignore_ascii_case("fingerprint")
}

/// `<media> <port>[/<count>] <proto> <fmt> ...`
fn parse_media(value: &str) -> Option<Media> {
    let mut parts = value.split_ascii_whitespace();
    let kind = match parts.next()? {
        k if k.eq_ignore_ascii_case("audio") => MediaKind::Audio,
        k if k.eq_ignore_ascii_case("video") => MediaKind::Video,
        k if k.eq_ignore_ascii_case("image") => MediaKind::Image,
        _ => MediaKind::Other,
    };
    let port_field = parts.next()?;
    let port = port_field
        .split('/')
        .next()
        .unwrap_or("")
        .parse::<u16>()
        .ok()?;
    let protocol = parse_protocol(parts.next()?);
    let payload_types = if matches!(protocol, MediaProtocol::Rtp | MediaProtocol::Srtp) {
        parts
            .filter_map(|f| f.parse::<u8>().ok())
            .filter(|pt| *pt < 128)
            .take(MAX_FORMATS)
            .collect()
    } else {
        Vec::new()
    };
    Some(Media {
        kind,
        port,
        protocol,
        payload_types,
        rtpmaps: Vec::new(),
        connection: None,
        direction: None,
        ptime: None,
        has_crypto: false,
    })
}

fn parse_protocol(proto: &str) -> MediaProtocol {
    const RTP: [&str; 2] = ["RTP/AVP", "RTP/AVPF"];
    const SRTP: [&str; 4] = [
        "RTP/SAVP",
        "RTP/SAVPF",
        "UDP/TLS/RTP/SAVP",
        "UDP/TLS/RTP/SAVPF",
    ];
    if RTP.iter().any(|p| p.eq_ignore_ascii_case(proto)) {
        MediaProtocol::Rtp
    } else if SRTP.iter().any(|p| p.eq_ignore_ascii_case(proto)) {
        MediaProtocol::Srtp
    } else if proto.eq_ignore_ascii_case("udptl") {
        MediaProtocol::Udptl
    } else {
        MediaProtocol::Other
    }
}

/// `IN IP4 <addr>[/<ttl>[/<count>]]` or `IN IP6 <addr>[/<count>]`. Host
/// names (allowed by the grammar) are not resolved: `None`.
fn parse_connection(value: &str) -> Option<IpAddr> {
    let mut parts = value.split_ascii_whitespace();
    if !parts.next()?.eq_ignore_ascii_case("IN") {
        return None;
    }
    // The address literal is unambiguous even when the type is mislabelled.
    let _addr_type = parts.next()?;
    parts.next()?.split('/').next()?.parse().ok()
}

/// `<username> <sess-id> <sess-version> IN <addrtype> <addr>`
fn parse_origin(value: &str) -> Option<Origin> {
    let mut parts = value.split_ascii_whitespace();
    let username = parts.next()?;
    let session_id = parts.next()?;
    let session_version = parts.next()?;
    if [username, session_id, session_version]
        .iter()
        .any(|f| f.len() > MAX_TEXT)
    {
        return None;
    }
    let _net = parts.next();
    let _addr_type = parts.next();
    let address = parts.next().and_then(|a| a.parse().ok());
    Some(Origin {
        username: username.to_owned(),
        session_id: session_id.to_owned(),
        session_version: session_version.to_owned(),
        address,
    })
}

/// `<pt> <encoding>/<clock rate>[/<channels>]`
fn parse_rtpmap(value: &str) -> Option<RtpMap> {
    let (pt, rest) = value.split_once(|c: char| c.is_ascii_whitespace())?;
    let payload_type = pt.parse::<u8>().ok().filter(|pt| *pt < 128)?;
    let mut fields = rest.trim().split('/');
    let encoding = fields.next()?.trim();
    if encoding.is_empty() || encoding.len() > MAX_TEXT {
        return None;
    }
    let clock_rate = fields.next()?.trim().parse::<u32>().ok()?;
    Some(RtpMap {
        payload_type,
        encoding: encoding.to_owned(),
        clock_rate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// The offer of the delayed-offer 200 OK in pcma-rfc2833-delayed-offer-ptime30.cap.
    const OFFER_PTIME30: &[u8] = b"v=0\r\n\
o=SIPDECT2504 4400 1459 IN IP4 192.168.105.110\r\n\
s=-\r\n\
c=IN IP4 192.168.105.110\r\n\
t=0 0\r\n\
m=audio 4376 RTP/AVP 8 0 18 96\r\n\
a=sendrecv\r\n\
a=ptime:30\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=rtpmap:96 telephone-event/8000\r\n\
a=fmtp:96 0-15\r\n";

    #[test]
    fn offer_with_ptime_and_telephone_event() {
        let sd = SessionDescription::parse(OFFER_PTIME30);
        let origin = sd.origin.as_ref().unwrap();
        assert_eq!(origin.username, "SIPDECT2504");
        assert_eq!(origin.session_id, "4400");
        assert_eq!(origin.session_version, "1459");
        assert_eq!(
            origin.address,
            Some(IpAddr::V4(Ipv4Addr::new(192, 168, 105, 110)))
        );
        assert_eq!(
            sd.connection,
            Some(IpAddr::V4(Ipv4Addr::new(192, 168, 105, 110)))
        );
        let audio = sd.audio().unwrap();
        assert_eq!(audio.kind, MediaKind::Audio);
        assert_eq!(audio.port, 4376);
        assert_eq!(audio.protocol, MediaProtocol::Rtp);
        assert_eq!(audio.payload_types, [8, 0, 18, 96]);
        assert_eq!(audio.ptime, Some(30));
        assert_eq!(audio.direction, Some(Direction::SendRecv));
        assert_eq!(audio.encoding(96), Some("telephone-event"));
        assert_eq!(audio.clock_rate(96), Some(8000));
        assert_eq!(audio.encoding(8), Some("PCMA"));
        assert_eq!(audio.address(&sd), sd.connection);
        assert!(!audio.has_crypto);
    }

    #[test]
    fn static_payload_types_without_rtpmap() {
        let sd = SessionDescription::parse(
            b"v=0\nc=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 0 3 4 8 9 13 18 101\n",
        );
        let audio = sd.audio().unwrap();
        let names: Vec<_> = audio
            .payload_types
            .iter()
            .map(|&pt| audio.encoding(pt))
            .collect();
        assert_eq!(
            names,
            [
                Some("PCMU"),
                Some("GSM"),
                Some("G723"),
                Some("PCMA"),
                Some("G722"),
                Some("CN"),
                Some("G729"),
                None
            ]
        );
        // G.722's RTP clock is 8000 although it samples at 16 kHz (RFC 3551 4.5.2).
        assert_eq!(audio.clock_rate(9), Some(8000));
    }

    #[test]
    fn no_t_line_and_unknown_lines() {
        let sd = SessionDescription::parse(
            b"v=0\r\nx-garbage\r\nz=what\r\n\r\nm=audio 5004 RTP/AVP 0\r\nc=IN IP4 10.1.2.3/127\r\na=unknown-attr\r\n",
        );
        assert_eq!(sd.connection, None);
        let audio = sd.audio().unwrap();
        assert_eq!(
            audio.connection,
            Some(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)))
        );
        assert_eq!(audio.address(&sd), audio.connection);
        assert_eq!(audio.effective_direction(&sd), Direction::SendRecv);
    }

    #[test]
    fn ipv6_connection() {
        // As in ipv6-sip-bogus-timestamps.pcap.
        let sd = SessionDescription::parse(
            b"v=0\r\n\
o=Valid8.com-UserAgent 8521 32 IN IP6 fec0:0:0:0:216:d3ff:fe0d:22c\r\n\
s=SIP-Call\r\n\
c=IN IP6 fec0:0:0:0:216:d3ff:fe0d:22c\r\n\
t=0 0\r\n\
m=audio 5008 RTP/AVP 0\r\n\
a=rtpmap:0 pcmu/8000/1\r\n",
        );
        let expected: Ipv6Addr = "fec0::216:d3ff:fe0d:22c".parse().unwrap();
        assert_eq!(sd.connection, Some(IpAddr::V6(expected)));
        let audio = sd.audio().unwrap();
        assert_eq!(audio.port, 5008);
        assert_eq!(audio.encoding(0), Some("pcmu"));
        assert_eq!(audio.clock_rate(0), Some(8000));
    }

    #[test]
    fn hold_and_directions() {
        // Old-style hold (gre-teb-sip-hold-refer.pcapng): address kept as parsed.
        let sd = SessionDescription::parse(
            b"v=0\r\nc=IN IP4 0.0.0.0\r\na=sendonly\r\nt=0 0\r\nm=audio 8000 RTP/AVP 8\r\nm=audio 8002 RTP/AVP 8\r\na=inactive\r\n",
        );
        assert_eq!(sd.connection, Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        assert_eq!(sd.direction, Some(Direction::SendOnly));
        assert_eq!(sd.media[0].effective_direction(&sd), Direction::SendOnly);
        assert_eq!(sd.media[1].effective_direction(&sd), Direction::Inactive);
        let sd = SessionDescription::parse(b"m=audio 1 RTP/AVP 0\r\na=recvonly\r\n");
        assert_eq!(sd.media[0].effective_direction(&sd), Direction::RecvOnly);
    }

    #[test]
    fn protocols_and_crypto() {
        let sd = SessionDescription::parse(
            b"v=0\r\n\
a=fingerprint:sha-256 AB:CD\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\n\
c=IN IP4 0.0.0.0\r\n\
m=audio 4000 RTP/SAVP 0\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abc\r\n\
m=image 5000 udptl t38\r\n\
m=video 0 RTP/AVPF 96\r\n\
m=application 5000 TCP/BFCP *\r\n",
        );
        let protos: Vec<_> = sd.media.iter().map(|m| m.protocol).collect();
        assert_eq!(
            protos,
            [
                MediaProtocol::Srtp,
                MediaProtocol::Srtp,
                MediaProtocol::Udptl,
                MediaProtocol::Rtp,
                MediaProtocol::Other
            ]
        );
        assert!(
            sd.media.iter().all(|m| m.has_crypto),
            "session-level fingerprint applies to all"
        );
        assert_eq!(sd.media[2].kind, MediaKind::Image);
        assert!(sd.media[2].payload_types.is_empty());
        assert_eq!(sd.media[3].kind, MediaKind::Video);
        assert_eq!(sd.media[4].kind, MediaKind::Other);

        let sd = SessionDescription::parse(b"m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\nm=audio 4002 RTP/AVP 0\r\n");
        assert!(sd.media[0].has_crypto);
        assert!(!sd.media[1].has_crypto);
    }

    #[test]
    fn audio_skips_rejected_streams() {
        // As in pppoe-sip-info-dtmf-multi-invite.pcap: video rejected with port 0.
        let sd = SessionDescription::parse(
            b"m=audio 0 RTP/AVP 8\r\nm=video 0 RTP/AVP 34\r\nm=audio 7078/2 RTP/AVP 8\r\n",
        );
        let audio = sd.audio().unwrap();
        assert_eq!(audio.port, 7078);
        assert_eq!(sd.media.len(), 3);
    }

    #[test]
    fn caps() {
        let mut body = String::new();
        for i in 0..(MAX_MEDIA + 5) {
            body.push_str(&format!("m=audio {} RTP/AVP", 4000 + 2 * i));
            for pt in 0..100 {
                body.push_str(&format!(" {pt}"));
            }
            body.push_str("\r\n");
            for pt in 0..100 {
                body.push_str(&format!("a=rtpmap:{pt} X{pt}/8000\r\n"));
            }
        }
        body.push_str("c=IN IP4 1.2.3.4\r\n"); // inside an ignored section
        let sd = SessionDescription::parse(body.as_bytes());
        assert_eq!(sd.media.len(), MAX_MEDIA);
        assert_eq!(sd.media_dropped, 5);
        assert!(sd
            .media
            .iter()
            .all(|m| m.payload_types.len() == MAX_FORMATS));
        assert!(sd.media.iter().all(|m| m.rtpmaps.len() == MAX_FORMATS));
        assert!(sd.media.iter().all(|m| m.connection.is_none()));
        assert_eq!(sd.connection, None);
    }

    #[test]
    fn media_lines_over_the_cap_are_dropped_and_counted() {
        let mut body = String::from("v=0\r\nc=IN IP4 10.0.0.1\r\n");
        for i in 0..17 {
            body.push_str(&format!(
                "m=audio {} RTP/AVP 0\r\na=sendonly\r\n",
                4000 + 2 * i
            ));
        }
        // Default cap (16): the 17th section is dropped, attributes and all.
        let sd = SessionDescription::parse(body.as_bytes());
        assert_eq!(sd.media.len(), 16);
        assert_eq!(sd.media_dropped, 1);
        assert_eq!(sd.media.last().unwrap().port, 4030);
        assert_eq!(
            sd,
            SessionDescription::parse_with_limit(body.as_bytes(), 16)
        );

        // A cap of 2: the third and later sections are dropped.
        let sd = SessionDescription::parse_with_limit(body.as_bytes(), 2);
        let ports: Vec<u16> = sd.media.iter().map(|m| m.port).collect();
        assert_eq!(ports, [4000, 4002]);
        assert_eq!(sd.media_dropped, 15);
        assert!(sd
            .media
            .iter()
            .all(|m| m.direction == Some(Direction::SendOnly)));

        // Unreadable m= lines are not counted as dropped by the cap.
        let sd = SessionDescription::parse_with_limit(
            b"m=audio 4000 RTP/AVP 0\r\nm=audio x RTP/AVP 0\r\nm=audio 4002 RTP/AVP 0\r\n",
            1,
        );
        assert_eq!((sd.media.len(), sd.media_dropped), (1, 1));
    }

    #[test]
    fn garbage_lines_are_skipped() {
        let sd = SessionDescription::parse(b"m=audio x RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\nm=audio 70000 RTP/AVP 0\r\nc=IN IP4 nonsense\r\na=rtpmap:999 X/1\r\na=rtpmap:8 PCMA\r\na=ptime:abc\r\n\xff\xfe\r\nm=audio 1000 RTP/AVP 0 abc 300 8\r\na=ptime:20.0\r\n");
        assert_eq!(sd.media.len(), 1);
        assert_eq!(sd.media[0].payload_types, [0, 8]);
        assert_eq!(sd.media[0].ptime, Some(20));
        assert_eq!(
            SessionDescription::parse(b""),
            SessionDescription::default()
        );
    }
}
