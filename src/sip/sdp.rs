//! SDP (RFC 4566/8866) line reader for the handful of fields a recorder needs.
//! Tolerant: missing or unknown lines never reject the body.
//!
//! Bounded: at most [`MAX_MEDIA`] sections and [`MAX_FORMATS`] payload types
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
}

/// At most this many `m=` sections are kept; more are ignored.
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
    /// `a=crypto` marks every section as having crypto.
    pub fn parse(body: &[u8]) -> SessionDescription {
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
                [k, b'=', ..] => (*k, line[2..].trim()),
                _ => continue,
            };
            match kind {
                b'm' => {
                    level = match parse_media(value) {
                        Some(m) if sd.media.len() < MAX_MEDIA => {
                            sd.media.push(m);
                            Level::Media
                        }
                        _ => Level::Ignored,
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
}
