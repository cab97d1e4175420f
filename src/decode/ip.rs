//! IPv4 and IPv6: addresses, the upper-layer protocol and its bytes, and
//! fragment information for the reassembler.
//!
//! IPv4 header checksums are not verified (captures from the sending host
//! often carry offloaded, unfilled checksums). Lengths from the headers are
//! honoured, so trailing link padding is removed.

use super::link::be16;
use super::DecodeError;
use etherparse::{err, Ipv4HeaderSlice, Ipv6HeaderSlice};
use std::net::IpAddr;

/// IP protocol numbers this module looks at.
pub(crate) mod protocol {
    pub const HOP_BY_HOP: u8 = 0;
    pub const IPIP: u8 = 4;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const IPV6_IN_IP: u8 = 41;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const GRE: u8 = 47;
    pub const AUTH: u8 = 51;
    pub const DEST_OPTIONS: u8 = 60;
    pub const MOBILITY: u8 = 135;
    pub const HIP: u8 = 139;
    pub const SHIM6: u8 = 140;
    pub const SCTP: u8 = 132;
}

/// Where a fragment belongs in its datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FragmentInfo {
    /// Identification (16 bits for IPv4, 32 for IPv6).
    pub id: u32,
    /// Byte offset of this fragment's data in the reassembled payload.
    pub offset: usize,
    /// More fragments follow.
    pub more: bool,
}

/// A checked IP packet, down to its upper-layer payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IpPacket<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// The upper-layer protocol; for an IPv6 fragment, the fragment header's
    /// next header (the first header of the fragmentable part).
    pub protocol: u8,
    /// The upper-layer bytes, or this fragment's share of them.
    pub payload: &'a [u8],
    /// Set when the packet is a fragment of a larger datagram.
    pub fragment: Option<FragmentInfo>,
}

/// Parses an IPv4 packet. `data` may extend past the packet (link padding).
pub(crate) fn ipv4(data: &[u8]) -> Result<IpPacket<'_>, DecodeError> {
    let header = Ipv4HeaderSlice::from_slice(data).map_err(|e| match e {
        err::ipv4::HeaderSliceError::Len(_) => DecodeError::Truncated,
        err::ipv4::HeaderSliceError::Content(_) => DecodeError::Malformed,
    })?;
    let header_len = header.slice().len();
    let total_len = usize::from(header.total_len());
    let end = if total_len == 0 {
        // Segmentation offload on the capturing host leaves the length 0;
        // the frame then ends where the packet does.
        data.len()
    } else if total_len < header_len {
        return Err(DecodeError::Malformed);
    } else if total_len > data.len() {
        return Err(DecodeError::Truncated);
    } else {
        total_len
    };
    let payload = data.get(header_len..end).ok_or(DecodeError::Truncated)?;
    let offset = usize::from(header.fragments_offset().value()) * 8;
    let more = header.more_fragments();
    Ok(IpPacket {
        src: IpAddr::V4(header.source_addr()),
        dst: IpAddr::V4(header.destination_addr()),
        protocol: header.protocol().0,
        payload,
        fragment: (more || offset != 0).then_some(FragmentInfo {
            id: u32::from(header.identification()),
            offset,
            more,
        }),
    })
}

/// Parses an IPv6 packet, skipping extension headers up to the upper layer
/// or a fragment header. `data` may extend past the packet (link padding).
pub(crate) fn ipv6(data: &[u8]) -> Result<IpPacket<'_>, DecodeError> {
    let header = Ipv6HeaderSlice::from_slice(data).map_err(|e| match e {
        err::ipv6::HeaderSliceError::Len(_) => DecodeError::Truncated,
        err::ipv6::HeaderSliceError::Content(_) => DecodeError::Malformed,
    })?;
    let payload_len = usize::from(header.payload_length());
    let end = if payload_len == 0 {
        // Jumbogram or segmentation offload: the frame is the packet.
        data.len()
    } else {
        40 + payload_len
    };
    let payload = data.get(40..end).ok_or(DecodeError::Truncated)?;
    let (protocol, payload, fragment) = extensions(header.next_header().0, payload, true)?;
    Ok(IpPacket {
        src: IpAddr::V6(header.source_addr()),
        dst: IpAddr::V6(header.destination_addr()),
        protocol,
        payload,
        fragment,
    })
}

/// Skips IPv6 extension headers (and AH, which IPv4 may carry too) starting
/// with `next`. Stops at the upper layer, or at a fragment header that
/// really fragments when `fragments_allowed` (the rest is then fragment
/// data). Returns the protocol that follows, its bytes and the fragment.
pub(crate) fn extensions(
    mut next: u8,
    mut data: &[u8],
    fragments_allowed: bool,
) -> Result<(u8, &[u8], Option<FragmentInfo>), DecodeError> {
    // Every header consumes at least 8 bytes, so this ends with the data.
    loop {
        let len = match next {
            protocol::HOP_BY_HOP
            | protocol::ROUTING
            | protocol::DEST_OPTIONS
            | protocol::MOBILITY
            | protocol::HIP
            | protocol::SHIM6 => {
                // next(1) length in 8-octet units, not counting the first 8.
                let units = *data.get(1).ok_or(DecodeError::Truncated)?;
                8 + 8 * usize::from(units)
            }
            protocol::AUTH => {
                // RFC 4302: payload length in 4-octet units, minus 2.
                let units = *data.get(1).ok_or(DecodeError::Truncated)?;
                4 * (usize::from(units) + 2)
            }
            protocol::FRAGMENT => {
                let bits = be16(data, 2)?;
                let id = data
                    .get(4..8)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map(u32::from_be_bytes)
                    .ok_or(DecodeError::Truncated)?;
                let offset = usize::from(bits >> 3) * 8;
                let more = bits & 1 == 1;
                let inner = *data.first().ok_or(DecodeError::Truncated)?;
                let rest = data.get(8..).unwrap_or_default();
                if offset == 0 && !more {
                    // RFC 6946 atomic fragment: not really fragmented.
                    next = inner;
                    data = rest;
                    continue;
                }
                if !fragments_allowed {
                    return Err(DecodeError::Malformed);
                }
                return Ok((inner, rest, Some(FragmentInfo { id, offset, more })));
            }
            _ => return Ok((next, data, None)),
        };
        let inner = *data.first().ok_or(DecodeError::Truncated)?;
        data = data.get(len..).ok_or(DecodeError::Truncated)?;
        next = inner;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// IPv4 header for `payload_len` bytes of UDP, with optional options.
    fn ipv4_header(payload_len: usize, options: &[u8], flags_offset: u16, id: u16) -> Vec<u8> {
        let header_len = 20 + options.len();
        let mut h = vec![0x40 | (header_len / 4) as u8, 0];
        h.extend_from_slice(&((header_len + payload_len) as u16).to_be_bytes());
        h.extend_from_slice(&id.to_be_bytes());
        h.extend_from_slice(&flags_offset.to_be_bytes());
        h.extend_from_slice(&[64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2]);
        h.extend_from_slice(options);
        h
    }

    #[test]
    fn ipv4_honours_total_length_and_skips_options() {
        let mut packet = ipv4_header(4, &[1, 1, 1, 0], 0x4000, 7);
        packet.extend_from_slice(&[1, 2, 3, 4]);
        packet.extend_from_slice(&[0; 6]); // Ethernet padding
        let ip = ipv4(&packet).unwrap();
        assert_eq!(ip.src, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(ip.dst, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)));
        assert_eq!(ip.protocol, 17);
        assert_eq!(ip.payload, &[1, 2, 3, 4]);
        assert_eq!(ip.fragment, None);
    }

    #[test]
    fn ipv4_errors() {
        let mut packet = ipv4_header(4, &[], 0, 0);
        packet.extend_from_slice(&[1, 2]);
        assert_eq!(ipv4(&packet), Err(DecodeError::Truncated));
        assert_eq!(ipv4(&packet[..10]), Err(DecodeError::Truncated));
        let mut bad_version = ipv4_header(0, &[], 0, 0);
        bad_version[0] = 0x55;
        assert_eq!(ipv4(&bad_version), Err(DecodeError::Malformed));
        let mut short_total = ipv4_header(0, &[], 0, 0);
        short_total[3] = 10;
        assert_eq!(ipv4(&short_total), Err(DecodeError::Malformed));
    }

    #[test]
    fn ipv4_fragment_fields() {
        let mut packet = ipv4_header(8, &[], 0x2000 | 185, 0xbeef);
        packet.extend_from_slice(&[9; 8]);
        let ip = ipv4(&packet).unwrap();
        assert_eq!(
            ip.fragment,
            Some(FragmentInfo {
                id: 0xbeef,
                offset: 1480,
                more: true
            })
        );
    }

    fn ipv6_packet(next: u8, body: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(body.len() as u16).to_be_bytes());
        p.extend_from_slice(&[next, 64]);
        p.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        p.extend_from_slice(&Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2).octets());
        p.extend_from_slice(body);
        p
    }

    #[test]
    fn ipv6_skips_extension_headers() {
        let mut body = vec![43, 0, 0, 0, 0, 0, 0, 0]; // hop-by-hop -> routing
        body.extend_from_slice(&[60, 1, 0, 0, 0, 0, 0, 0]); // routing (16 bytes) -> dest
        body.extend_from_slice(&[0; 8]);
        body.extend_from_slice(&[51, 0, 0, 0, 0, 0, 0, 0]); // dest opts -> AH
        body.extend_from_slice(&[17, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // AH (12 bytes) -> UDP
        body.extend_from_slice(b"udp!");
        let mut packet = ipv6_packet(0, &body);
        packet.extend_from_slice(&[0; 3]); // padding
        let ip = ipv6(&packet).unwrap();
        assert_eq!(ip.protocol, 17);
        assert_eq!(ip.payload, b"udp!");
        assert_eq!(ip.src, IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(ip.fragment, None);
    }

    #[test]
    fn ipv6_fragment_header_stops_the_walk() {
        let mut body = vec![60, 0, 0x00, 0xa1, 0, 0, 0x12, 0x34]; // offset 20 units = 160, M=1
        body.extend_from_slice(&[0xee; 16]);
        let packet = ipv6_packet(44, &body);
        let ip = ipv6(&packet).unwrap();
        assert_eq!(ip.protocol, 60);
        assert_eq!(ip.payload, &[0xee; 16]);
        assert_eq!(
            ip.fragment,
            Some(FragmentInfo {
                id: 0x1234,
                offset: 160,
                more: true
            })
        );
    }

    #[test]
    fn ipv6_atomic_fragment_is_not_fragmented() {
        let mut body = vec![17, 0, 0, 0, 0, 0, 0, 9];
        body.extend_from_slice(b"x");
        let packet = ipv6_packet(44, &body);
        let ip = ipv6(&packet).unwrap();
        assert_eq!(
            (ip.protocol, ip.payload, ip.fragment),
            (17, &b"x"[..], None)
        );
    }

    #[test]
    fn ipv6_errors() {
        let packet = ipv6_packet(17, &[0; 8]);
        assert_eq!(ipv6(&packet[..45]), Err(DecodeError::Truncated));
        assert_eq!(ipv6(&packet[..39]), Err(DecodeError::Truncated));
        let cut_ext = ipv6_packet(60, &[17, 4, 0, 0, 0, 0, 0, 0]);
        assert_eq!(ipv6(&cut_ext), Err(DecodeError::Truncated));
        let mut bad = packet.clone();
        bad[0] = 0x40;
        assert_eq!(ipv6(&bad), Err(DecodeError::Malformed));
        // a second fragment header inside reassembled data
        assert_eq!(
            extensions(44, &[17, 0, 0, 9, 0, 0, 0, 1], false),
            Err(DecodeError::Malformed)
        );
    }
}
