//! Capture sources: where frames with capture timestamps come from.
//!
//! `file` reads pcap and pcapng files; `live` captures from an interface
//! (libpcap's memory-mapped AF_PACKET ring) and yields the same [`Frame`].

pub mod batch;
pub mod file;
pub mod live;
pub mod read_ahead;

use crate::Timestamp;

/// The link-layer framing of a captured frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// DLT_EN10MB: Ethernet II (with optional 802.1Q/QinQ tags).
    Ethernet,
    /// DLT_LINUX_SLL: Linux cooked capture v1.
    LinuxSll,
    /// DLT_LINUX_SLL2: Linux cooked capture v2.
    LinuxSll2,
    /// DLT_RAW / LINKTYPE_RAW: an IPv4 or IPv6 packet with no link header.
    RawIp,
    /// LINKTYPE_IPV4: a bare IPv4 packet.
    Ipv4,
    /// LINKTYPE_IPV6: a bare IPv6 packet.
    Ipv6,
    /// DLT_NULL / DLT_LOOP: BSD loopback, a 4-byte address family first
    /// (host byte order for NULL, network order for LOOP).
    Null,
}

impl LinkType {
    /// Maps a LINKTYPE_/DLT_ value from a capture file to the framing taprec
    /// decodes, `None` for link types it does not decode.
    ///
    /// Only the low 16 bits are the link type; the upper bits of the pcap
    /// header field may carry FCS information and are ignored.
    pub fn from_linktype(linktype: i32) -> Option<LinkType> {
        match linktype & 0xffff {
            0 | 108 => Some(LinkType::Null),
            1 => Some(LinkType::Ethernet),
            // 101 is LINKTYPE_RAW; 12 and 14 are the DLT_RAW values some
            // systems write into files directly.
            12 | 14 | 101 => Some(LinkType::RawIp),
            113 => Some(LinkType::LinuxSll),
            228 => Some(LinkType::Ipv4),
            229 => Some(LinkType::Ipv6),
            276 => Some(LinkType::LinuxSll2),
            _ => None,
        }
    }
}

/// One captured frame, borrowed from the capture source's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// When the frame was captured.
    pub ts: Timestamp,
    /// How to decode `data`.
    pub link: LinkType,
    /// The captured bytes (possibly shorter than the frame on the wire).
    pub data: &'a [u8],
    /// The frame's length on the wire.
    pub original_len: u32,
}
