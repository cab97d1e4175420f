//! Capture sources: where frames with capture timestamps come from.
//!
//! `file` reads pcap and pcapng files. (Live AF_PACKET capture comes later and
//! yields the same [`Frame`].)

pub mod file;

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
