//! Ethernet (optionally 802.1Q / QinQ tagged) + IPv4/IPv6 + UDP frame building
//! with correct IPv4 header and UDP checksums.
//!
//! Frames are built in place into a caller-supplied buffer, so the hot loop of
//! the generator allocates nothing per packet.

use std::net::IpAddr;

/// EtherType of IPv4.
const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
const ETHERTYPE_IPV6: u16 = 0x86DD;
/// EtherType (TPID) of an 802.1Q customer tag.
const TPID_8021Q: u16 = 0x8100;
/// EtherType (TPID) of an 802.1ad service tag, the outer tag of QinQ.
const TPID_8021AD: u16 = 0x88A8;
/// IP protocol number of UDP.
const IPPROTO_UDP: u8 = 17;

/// One end of a UDP flow as it appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// Ethernet address used as source when this end sends, or destination
    /// when it receives (the gateway's for a remote party).
    pub mac: [u8; 6],
    /// IP address.
    pub ip: IpAddr,
    /// UDP port.
    pub port: u16,
}

/// Per-frame IP header fields that vary between packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpFields {
    /// IPv4 identification (ignored for IPv6).
    pub id: u16,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
}

/// Builds one UDP frame into `buf` (cleared first): Ethernet header, the VLAN
/// tags of `vlans` (outermost first; with two or more tags the outer one uses
/// TPID 0x88A8), the IP header and UDP header of `src` -> `dst`, then the
/// payload appended by `payload`. Lengths and checksums are filled in last.
///
/// Returns `false` (leaving `buf` unspecified) when the two ends are of
/// different IP versions or the datagram would exceed 65,535 bytes.
pub fn build_udp_frame(
    buf: &mut Vec<u8>,
    vlans: &[u16],
    src: &Endpoint,
    dst: &Endpoint,
    ip: IpFields,
    payload: impl FnOnce(&mut Vec<u8>),
) -> bool {
    buf.clear();
    buf.extend_from_slice(&dst.mac);
    buf.extend_from_slice(&src.mac);
    for (i, &vid) in vlans.iter().enumerate() {
        let tpid = if i == 0 && vlans.len() > 1 {
            TPID_8021AD
        } else {
            TPID_8021Q
        };
        buf.extend_from_slice(&tpid.to_be_bytes());
        buf.extend_from_slice(&(vid & 0x0FFF).to_be_bytes());
    }
    let ip_start;
    match (src.ip, dst.ip) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            buf.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
            ip_start = buf.len();
            buf.extend_from_slice(&[0x45, 0, 0, 0]);
            buf.extend_from_slice(&ip.id.to_be_bytes());
            // Don't fragment: a phone never sends fragmented G.711.
            buf.extend_from_slice(&[0x40, 0x00, ip.ttl, IPPROTO_UDP, 0, 0]);
            buf.extend_from_slice(&s.octets());
            buf.extend_from_slice(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            buf.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
            ip_start = buf.len();
            buf.extend_from_slice(&[0x60, 0, 0, 0, 0, 0, IPPROTO_UDP, ip.ttl]);
            buf.extend_from_slice(&s.octets());
            buf.extend_from_slice(&d.octets());
        }
        _ => return false,
    }
    let udp_start = buf.len();
    buf.extend_from_slice(&src.port.to_be_bytes());
    buf.extend_from_slice(&dst.port.to_be_bytes());
    buf.extend_from_slice(&[0, 0, 0, 0]);
    payload(buf);
    let udp_len = buf.len() - udp_start;
    let Ok(udp_len16) = u16::try_from(udp_len) else {
        return false;
    };
    buf[udp_start + 4..udp_start + 6].copy_from_slice(&udp_len16.to_be_bytes());

    // Pseudo-header sum (RFC 768 / RFC 8200 section 8.1), then the datagram.
    let mut sum = u32::from(IPPROTO_UDP) + udp_len as u32;
    match src.ip {
        IpAddr::V4(_) => {
            let total = udp_len + 20;
            let Ok(total16) = u16::try_from(total) else {
                return false;
            };
            buf[ip_start + 2..ip_start + 4].copy_from_slice(&total16.to_be_bytes());
            let header_sum = fold(add_words(0, &buf[ip_start..ip_start + 20]));
            buf[ip_start + 10..ip_start + 12].copy_from_slice(&(!header_sum).to_be_bytes());
            sum = add_words(sum, &buf[ip_start + 12..ip_start + 20]);
        }
        IpAddr::V6(_) => {
            buf[ip_start + 4..ip_start + 6].copy_from_slice(&udp_len16.to_be_bytes());
            sum = add_words(sum, &buf[ip_start + 8..ip_start + 40]);
        }
    }
    sum = add_words(sum, &buf[udp_start..]);
    let mut checksum = !fold(sum);
    // RFC 768: a computed zero is sent as all ones (zero means "no checksum").
    if checksum == 0 {
        checksum = 0xFFFF;
    }
    buf[udp_start + 6..udp_start + 8].copy_from_slice(&checksum.to_be_bytes());
    true
}

/// Adds `bytes` as big-endian 16-bit words (odd tail padded with zero) to
/// `sum`, returning a value congruent modulo 0xFFFF and below 0x1_0000.
///
/// Sums 32-bit words into a 64-bit accumulator (2^16 is 1 modulo 0xFFFF, so
/// this is the same ones'-complement sum): twice as few steps on the hot path.
fn add_words(sum: u32, bytes: &[u8]) -> u32 {
    let mut acc = u64::from(sum);
    let mut chunks = bytes.chunks_exact(4);
    for word in &mut chunks {
        acc += u64::from(u32::from_be_bytes([word[0], word[1], word[2], word[3]]));
    }
    let rest = chunks.remainder();
    let mut tail = [0u8; 4];
    tail[..rest.len()].copy_from_slice(rest);
    acc += u64::from(u32::from_be_bytes(tail));
    // A 64 KiB datagram adds at most 2^14 words of 2^32: far from overflow.
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    acc as u32
}

/// Folds carries of a ones'-complement sum into 16 bits.
fn fold(mut sum: u32) -> u16 {
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn ends(v6: bool) -> (Endpoint, Endpoint) {
        let (a, b): (IpAddr, IpAddr) = if v6 {
            (
                Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 1).into(),
                Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7).into(),
            )
        } else {
            (
                Ipv4Addr::new(10, 1, 0, 1).into(),
                Ipv4Addr::new(198, 51, 100, 7).into(),
            )
        };
        (
            Endpoint {
                mac: [2, 0, 0, 0, 0, 1],
                ip: a,
                port: 5060,
            },
            Endpoint {
                mac: [0, 0, 0x5e, 0, 1, 1],
                ip: b,
                port: 5062,
            },
        )
    }

    fn udp_checksum_ok(frame: &[u8]) -> bool {
        let sliced = SlicedPacket::from_ethernet(frame).unwrap();
        let Some(TransportSlice::Udp(udp)) = sliced.transport else {
            panic!("not UDP")
        };
        let header = udp.to_header();
        let expected = match sliced.net.unwrap() {
            NetSlice::Ipv4(v4) => header
                .calc_checksum_ipv4(&v4.header().to_header(), udp.payload())
                .unwrap(),
            NetSlice::Ipv6(v6) => header
                .calc_checksum_ipv6(&v6.header().to_header(), udp.payload())
                .unwrap(),
            _ => panic!("unexpected net slice"),
        };
        expected == header.checksum
    }

    #[test]
    fn ipv4_frame_exact_bytes() {
        let (a, b) = ends(false);
        let mut buf = Vec::new();
        assert!(build_udp_frame(
            &mut buf,
            &[],
            &a,
            &b,
            IpFields { id: 1, ttl: 64 },
            |p| { p.extend_from_slice(b"hi") }
        ));
        let expected: [u8; 44] = [
            0, 0, 0x5e, 0, 1, 1, 2, 0, 0, 0, 0, 1, 0x08, 0x00, // ethernet
            0x45, 0, 0, 30, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 1, 0, 1, 198, 51, 100, 7, // ipv4
            0x13, 0xc4, 0x13, 0xc6, 0, 10, 0, 0, b'h', b'i', // udp
        ];
        // Compare everything but the two checksums, which are checked below.
        assert_eq!(buf.len(), expected.len());
        for (i, (&got, &want)) in buf.iter().zip(expected.iter()).enumerate() {
            if !(24..26).contains(&i) && !(40..42).contains(&i) {
                assert_eq!(got, want, "byte {i}");
            }
        }
        let ip = etherparse::Ipv4HeaderSlice::from_slice(&buf[14..]).unwrap();
        assert_eq!(ip.header_checksum(), ip.to_header().calc_header_checksum());
        assert!(udp_checksum_ok(&buf));
    }

    #[test]
    fn ipv6_and_vlan_frames() {
        let (a, b) = ends(true);
        let mut buf = Vec::new();
        assert!(build_udp_frame(
            &mut buf,
            &[100, 200],
            &b,
            &a,
            IpFields { id: 0, ttl: 57 },
            |p| { p.extend_from_slice(&[0x80; 173]) }
        ));
        assert_eq!(&buf[12..14], &[0x88, 0xA8]);
        assert_eq!(&buf[14..16], &100u16.to_be_bytes());
        assert_eq!(&buf[16..18], &[0x81, 0x00]);
        assert_eq!(&buf[18..20], &200u16.to_be_bytes());
        assert_eq!(&buf[20..22], &[0x86, 0xDD]);
        assert_eq!(
            SlicedPacket::from_ethernet(&buf).unwrap().vlan_ids().len(),
            2
        );
        assert!(udp_checksum_ok(&buf));

        build_udp_frame(&mut buf, &[42], &a, &b, IpFields { id: 0, ttl: 64 }, |p| {
            p.push(1)
        });
        assert_eq!(&buf[12..16], &[0x81, 0x00, 0, 42]);
        assert!(udp_checksum_ok(&buf));
    }

    #[test]
    fn many_payloads_checksum() {
        let (a, b) = ends(false);
        let mut buf = Vec::new();
        for len in 0..300usize {
            build_udp_frame(
                &mut buf,
                &[],
                &a,
                &b,
                IpFields {
                    id: len as u16,
                    ttl: 64,
                },
                |p| p.extend((0..len).map(|i| (i * 37 + len) as u8)),
            );
            assert!(udp_checksum_ok(&buf), "length {len}");
        }
    }

    #[test]
    fn mixed_versions_refused() {
        let (a, _) = ends(false);
        let (_, b) = ends(true);
        let mut buf = Vec::new();
        assert!(!build_udp_frame(
            &mut buf,
            &[],
            &a,
            &b,
            IpFields { id: 0, ttl: 1 },
            |_| {}
        ));
    }
}
