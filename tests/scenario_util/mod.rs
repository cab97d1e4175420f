//! Helpers of the call-level scenario tests: read a classic pcap of
//! Ethernet/IPv4/UDP frames, derive variants of it (duplicated packets,
//! another hop, another leg) and replay them through `taprec replay`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// One captured frame: time in microseconds and bytes.
#[derive(Clone)]
pub struct Frame {
    pub us: u64,
    pub data: Vec<u8>,
}

/// A classic little-endian microsecond pcap with Ethernet frames.
pub struct Pcap {
    pub header: Vec<u8>,
    pub frames: Vec<Frame>,
}

pub fn repo_pcap(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("pcaps")
        .join(name)
}

pub fn read_pcap(path: &Path) -> Pcap {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        &bytes[0..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "LE microsecond pcap"
    );
    assert_eq!(
        u32::from_le_bytes(bytes[20..24].try_into().unwrap()),
        1,
        "Ethernet"
    );
    let mut frames = Vec::new();
    let mut pos = 24;
    while pos + 16 <= bytes.len() {
        let rd = |o: usize| u32::from_le_bytes(bytes[pos + o..pos + o + 4].try_into().unwrap());
        let us = u64::from(rd(0)) * 1_000_000 + u64::from(rd(4));
        let len = rd(8) as usize;
        frames.push(Frame {
            us,
            data: bytes[pos + 16..pos + 16 + len].to_vec(),
        });
        pos += 16 + len;
    }
    Pcap {
        header: bytes[..24].to_vec(),
        frames,
    }
}

/// Writes frames (sorted by time, stable) as a pcap.
pub fn write_pcap(path: &Path, header: &[u8], frames: &[Frame]) {
    let mut frames = frames.to_vec();
    frames.sort_by_key(|f| f.us);
    let mut out = header.to_vec();
    for f in &frames {
        out.extend_from_slice(&((f.us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((f.us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&f.data);
    }
    std::fs::write(path, out).unwrap();
}

/// Offsets of the IPv4 header and UDP payload of an Ethernet/IPv4/UDP frame.
fn layout(data: &[u8]) -> (usize, usize) {
    assert_eq!(&data[12..14], &[0x08, 0x00], "IPv4");
    let ip = 14;
    let ihl = usize::from(data[ip] & 0x0F) * 4;
    assert_eq!(data[ip + 9], 17, "UDP");
    (ip, ip + ihl + 8)
}

impl Frame {
    pub fn payload(&self) -> &[u8] {
        &self.data[layout(&self.data).1..]
    }

    pub fn is_sip(&self) -> bool {
        let p = self.payload();
        p.starts_with(b"SIP/2.0") || p.windows(7).take(200).any(|w| w == b"SIP/2.0")
    }

    pub fn is_rtp(&self) -> bool {
        let p = self.payload();
        p.len() >= 12 && p[0] & 0xC0 == 0x80 && !self.is_sip()
    }

    /// Replaces the UDP payload, fixing the IPv4 and UDP lengths (checksum 0).
    pub fn set_payload(&mut self, payload: &[u8]) {
        let (ip, at) = layout(&self.data);
        self.data.truncate(at);
        self.data.extend_from_slice(payload);
        let ip_len = (self.data.len() - ip) as u16;
        self.data[ip + 2..ip + 4].copy_from_slice(&ip_len.to_be_bytes());
        let udp = at - 8;
        let udp_len = (self.data.len() - udp) as u16;
        self.data[udp + 4..udp + 6].copy_from_slice(&udp_len.to_be_bytes());
        self.data[udp + 6..udp + 8].copy_from_slice(&[0, 0]);
    }

    /// Maps the IPv4 source and destination through `map` (unmapped stay).
    pub fn map_ips(&mut self, map: &[([u8; 4], [u8; 4])]) {
        let (ip, _) = layout(&self.data);
        for field in [ip + 12, ip + 16] {
            let cur: [u8; 4] = self.data[field..field + 4].try_into().unwrap();
            if let Some((_, to)) = map.iter().find(|(from, _)| *from == cur) {
                self.data[field..field + 4].copy_from_slice(to);
            }
        }
    }

    /// Maps UDP ports through `map`.
    pub fn map_ports(&mut self, map: &[(u16, u16)]) {
        let (_, at) = layout(&self.data);
        let udp = at - 8;
        for field in [udp, udp + 2] {
            let cur = u16::from_be_bytes([self.data[field], self.data[field + 1]]);
            if let Some((_, to)) = map.iter().find(|(from, _)| *from == cur) {
                self.data[field..field + 2].copy_from_slice(&to.to_be_bytes());
            }
        }
    }

    /// Rewrites SIP text with simultaneous string replacements.
    pub fn map_text(&mut self, map: &[(&str, &str)]) {
        let text = String::from_utf8(self.payload().to_vec()).unwrap();
        let mut out = text.clone();
        for (i, (from, _)) in map.iter().enumerate() {
            out = out.replace(from, &format!("\u{1}{i}\u{1}"));
        }
        for (i, (_, to)) in map.iter().enumerate() {
            out = out.replace(&format!("\u{1}{i}\u{1}"), to);
        }
        self.set_payload(out.as_bytes());
    }

    /// Inserts a header line after the first line of a SIP message.
    pub fn add_header(&mut self, line: &str) {
        let text = String::from_utf8(self.payload().to_vec()).unwrap();
        let (first, rest) = text.split_once("\r\n").unwrap();
        let out = format!("{first}\r\n{line}\r\n{rest}");
        self.set_payload(out.as_bytes());
    }
}

pub fn ip(s: &str) -> [u8; 4] {
    s.parse::<std::net::Ipv4Addr>().unwrap().octets()
}

/// The first SIP frame whose text contains `needle`.
pub fn sip_frame<'a>(frames: &'a [Frame], needle: &str) -> &'a Frame {
    frames
        .iter()
        .find(|f| f.is_sip() && String::from_utf8_lossy(f.payload()).contains(needle))
        .unwrap_or_else(|| panic!("no SIP frame with {needle:?}"))
}

/// The value of a `;tag=` parameter on the header line starting with `name`.
pub fn tag_of(frame: &Frame, name: &str) -> String {
    let text = String::from_utf8_lossy(frame.payload()).to_string();
    let line = text
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} header"));
    let at = line.find(";tag=").expect("tag") + 5;
    line[at..].split(';').next().unwrap().trim().to_string()
}

/// The SDP body of a SIP frame.
pub fn sdp_of(frame: &Frame) -> String {
    let text = String::from_utf8_lossy(frame.payload()).to_string();
    text.split_once("\r\n\r\n").unwrap().1.to_string()
}

/// A new SIP frame at `us` with the addresses of `like` and the given text
/// (Content-Length is computed from `body`).
pub fn sip_like(like: &Frame, us: u64, head: &str, body: &str) -> Frame {
    let mut f = Frame {
        us,
        data: like.data.clone(),
    };
    let ctype = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    let text = format!("{head}{ctype}Content-Length: {}\r\n\r\n{body}", body.len());
    f.set_payload(text.as_bytes());
    f
}
