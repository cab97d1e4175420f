//! Link layer: from a captured frame to the IP packet it carries.
//!
//! Ethernet II with any number of 802.1Q / 802.1ad (QinQ) tags, PPPoE
//! sessions, PPP, MPLS label stacks, Linux cooked capture v1 and v2, raw IP
//! and BSD loopback.
//!
//! Encapsulations (PPPoE, MPLS) are not unwrapped here: they come back as
//! [`Network::Encap`] so the decoder can count them and bound their nesting.

use super::{DecodeError, Encap};
use crate::capture::LinkType;

/// EtherType values this module looks at.
mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const RARP: u16 = 0x8035;
    pub const VLAN: u16 = 0x8100;
    pub const IPV6: u16 = 0x86dd;
    pub const PPPOE_DISCOVERY: u16 = 0x8863;
    pub const PPPOE_SESSION: u16 = 0x8864;
    pub const MPLS_UNICAST: u16 = 0x8847;
    pub const MPLS_MULTICAST: u16 = 0x8848;
    pub const QINQ: u16 = 0x88a8;
    pub const LLDP: u16 = 0x88cc;
    pub const QINQ_OLD: u16 = 0x9100;
    pub const QINQ_OLD2: u16 = 0x9200;
    /// Values up to 1500 are IEEE 802.3 lengths (LLC frames such as STP).
    pub const MAX_8023_LENGTH: u16 = 1500;
}

/// BSD loopback address families (the value differs between systems).
mod family {
    pub const INET: u32 = 2;
    /// Linux, NetBSD/OpenBSD, FreeBSD, macOS.
    pub const INET6: [u32; 4] = [10, 24, 28, 30];
}

/// The network-layer content of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Network<'a> {
    /// An IPv4 packet (possibly followed by link padding).
    Ipv4(&'a [u8]),
    /// An IPv6 packet (possibly followed by link padding).
    Ipv6(&'a [u8]),
    /// A valid frame without IP (ARP, STP, LLDP, ...).
    Other,
    /// An encapsulation of the given kind; its content is decoded as `Next`.
    Encap(Encap, Next, &'a [u8]),
}

/// How to decode the content of an encapsulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// A frame of this link type (Ethernet, raw IP by version, ...).
    Link(LinkType),
    /// A PPP frame (optional address/control bytes, protocol field).
    Ppp,
    /// Data whose type is this EtherType (GRE, MPLS in Ethernet, ...).
    Ethertype(u16),
}

/// Decodes the content of an encapsulation (or a captured frame, with
/// `Next::Link`).
pub(crate) fn next(next: Next, data: &[u8]) -> Result<Network<'_>, DecodeError> {
    match next {
        Next::Link(link) => network(link, data),
        Next::Ppp => ppp(data),
        Next::Ethertype(ethertype) => by_ethertype(ethertype, data),
    }
}

/// Strips the link layer of `data`.
pub(crate) fn network(link: LinkType, data: &[u8]) -> Result<Network<'_>, DecodeError> {
    match link {
        LinkType::Ethernet => {
            let ethertype = be16(data, 12)?;
            by_ethertype(ethertype, data.get(14..).unwrap_or_default())
        }
        LinkType::LinuxSll => {
            // packet type(2) ARPHRD(2) address length(2) address(8) protocol(2)
            let protocol = be16(data, 14)?;
            by_ethertype(protocol, data.get(16..).unwrap_or_default())
        }
        LinkType::LinuxSll2 => {
            // protocol(2) reserved(2) ifindex(4) ARPHRD(2) packet type(1)
            // address length(1) address(8)
            let protocol = be16(data, 0)?;
            let payload = data.get(20..).ok_or(DecodeError::Truncated)?;
            by_ethertype(protocol, payload)
        }
        LinkType::RawIp => by_version(data),
        LinkType::Ipv4 => Ok(Network::Ipv4(data)),
        LinkType::Ipv6 => Ok(Network::Ipv6(data)),
        LinkType::Null => {
            let head: [u8; 4] = data
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .ok_or(DecodeError::Truncated)?;
            // DLT_NULL stores the family in the capturing host's byte order,
            // DLT_LOOP in network order: accept either.
            let payload = data.get(4..).unwrap_or_default();
            let little = u32::from_le_bytes(head);
            let big = u32::from_be_bytes(head);
            if little == family::INET || big == family::INET {
                Ok(Network::Ipv4(payload))
            } else if family::INET6.contains(&little) || family::INET6.contains(&big) {
                Ok(Network::Ipv6(payload))
            } else {
                Err(DecodeError::Unsupported)
            }
        }
    }
}

/// Dispatches on an EtherType, peeling VLAN tags.
/// `payload` starts right after the EtherType field.
pub(crate) fn by_ethertype(
    mut ethertype: u16,
    mut payload: &[u8],
) -> Result<Network<'_>, DecodeError> {
    // Each tag consumes 4 bytes, so the loop ends with the data.
    loop {
        match ethertype {
            ethertype::IPV4 => return Ok(Network::Ipv4(payload)),
            ethertype::IPV6 => return Ok(Network::Ipv6(payload)),
            ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD | ethertype::QINQ_OLD2 => {
                // TCI(2) then the inner EtherType(2).
                ethertype = be16(payload, 2)?;
                payload = payload.get(4..).unwrap_or_default();
            }
            ethertype::PPPOE_SESSION => return pppoe_session(payload),
            ethertype::MPLS_UNICAST | ethertype::MPLS_MULTICAST => return mpls(payload),
            ethertype::ARP | ethertype::RARP | ethertype::LLDP | ethertype::PPPOE_DISCOVERY => {
                return Ok(Network::Other)
            }
            n if n <= ethertype::MAX_8023_LENGTH => return Ok(Network::Other),
            _ => return Err(DecodeError::Unsupported),
        }
    }
}

/// PPPoE session header (RFC 2516); the PPP frame it carries follows.
fn pppoe_session(data: &[u8]) -> Result<Network<'_>, DecodeError> {
    // ver/type(1) code(1) session(2) length(2), then the PPP frame.
    let length = usize::from(be16(data, 4)?);
    // The PPPoE length covers the PPP frame; anything after it is padding.
    let ppp = data.get(6..6 + length).ok_or(DecodeError::Truncated)?;
    Ok(Network::Encap(Encap::Pppoe, Next::Ppp, ppp))
}

/// PPP protocol numbers this module looks at.
mod ppp_protocol {
    pub const IPV4: u16 = 0x0021;
    pub const IPV6: u16 = 0x0057;
    pub const MPLS_UNICAST: u16 = 0x0281;
    /// Values from here on are control protocols (LCP, IPCP, CHAP, ...).
    pub const CONTROL: u16 = 0x8000;
}

/// A PPP frame (RFC 1661) as PPPoE or GRE carry it: optional address and
/// control bytes (`FF 03`), a one- or two-byte protocol field, the payload.
fn ppp(data: &[u8]) -> Result<Network<'_>, DecodeError> {
    let data = data.strip_prefix(&[0xff, 0x03]).unwrap_or(data);
    let first = *data.first().ok_or(DecodeError::Truncated)?;
    // A compressed protocol field (RFC 1661 6.5) is one odd byte.
    let (protocol, payload) = if first & 1 == 1 {
        (u16::from(first), data.get(1..).unwrap_or_default())
    } else {
        (be16(data, 0)?, data.get(2..).unwrap_or_default())
    };
    match protocol {
        ppp_protocol::IPV4 => Ok(Network::Ipv4(payload)),
        ppp_protocol::IPV6 => Ok(Network::Ipv6(payload)),
        ppp_protocol::MPLS_UNICAST => mpls(payload),
        p if p >= ppp_protocol::CONTROL => Ok(Network::Other),
        _ => Err(DecodeError::Unsupported),
    }
}

/// An MPLS label stack (RFC 3032) up to the bottom-of-stack label. MPLS does
/// not say what it carries: IP by its version nibble, otherwise an Ethernet
/// pseudowire (RFC 4448), after its control word when the nibble is 0.
fn mpls(mut data: &[u8]) -> Result<Network<'_>, DecodeError> {
    // Each label consumes 4 bytes, so the loop ends with the data.
    loop {
        let label = data.get(..4).ok_or(DecodeError::Truncated)?;
        let bottom = label.get(2).is_some_and(|b| b & 1 == 1);
        data = data.get(4..).unwrap_or_default();
        if bottom {
            break;
        }
    }
    let next = match data.first().map(|b| b >> 4) {
        Some(4 | 6) => Next::Link(LinkType::RawIp),
        Some(0) => {
            data = data.get(4..).ok_or(DecodeError::Truncated)?;
            Next::Link(LinkType::Ethernet)
        }
        Some(_) => Next::Link(LinkType::Ethernet),
        None => return Err(DecodeError::Truncated),
    };
    Ok(Network::Encap(Encap::Mpls, next, data))
}

/// Raw IP: the version nibble says which.
fn by_version(data: &[u8]) -> Result<Network<'_>, DecodeError> {
    match data.first().map(|b| b >> 4) {
        Some(4) => Ok(Network::Ipv4(data)),
        Some(6) => Ok(Network::Ipv6(data)),
        Some(_) => Err(DecodeError::Malformed),
        None => Err(DecodeError::Truncated),
    }
}

/// Big-endian u16 at `at`, or `Truncated`.
pub(crate) fn be16(data: &[u8], at: usize) -> Result<u16, DecodeError> {
    match data.get(at..at.saturating_add(2)) {
        Some(&[a, b]) => Ok(u16::from_be_bytes([a, b])),
        _ => Err(DecodeError::Truncated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP4: &[u8] = &[
        0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];

    fn ethernet(ethertype_and_tags: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![0xaa; 6];
        frame.extend_from_slice(&[0xbb; 6]);
        frame.extend_from_slice(ethertype_and_tags);
        frame.extend_from_slice(payload);
        frame
    }

    #[test]
    fn ethernet_plain_ipv4_and_ipv6() {
        let frame = ethernet(&[0x08, 0x00], IP4);
        assert_eq!(network(LinkType::Ethernet, &frame), Ok(Network::Ipv4(IP4)));
        let frame = ethernet(&[0x86, 0xdd], &[0x60, 1, 2]);
        assert_eq!(
            network(LinkType::Ethernet, &frame),
            Ok(Network::Ipv6(&[0x60, 1, 2][..]))
        );
    }

    #[test]
    fn ethernet_single_vlan_tag() {
        let frame = ethernet(&[0x81, 0x00, 0x00, 0x8e, 0x08, 0x00], IP4);
        assert_eq!(network(LinkType::Ethernet, &frame), Ok(Network::Ipv4(IP4)));
    }

    #[test]
    fn ethernet_qinq_both_tag_types() {
        for outer in [[0x88, 0xa8], [0x91, 0x00]] {
            let mut tags = outer.to_vec();
            tags.extend_from_slice(&[0x00, 0x9b, 0x81, 0x00, 0x00, 0x01, 0x86, 0xdd]);
            let frame = ethernet(&tags, &[0x60, 0, 0]);
            assert_eq!(
                network(LinkType::Ethernet, &frame),
                Ok(Network::Ipv6(&[0x60, 0, 0][..]))
            );
        }
    }

    #[test]
    fn ethernet_truncated_tag_and_header() {
        let frame = ethernet(&[0x81, 0x00, 0x00], &[]);
        assert_eq!(
            network(LinkType::Ethernet, &frame),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            network(LinkType::Ethernet, &[0; 13]),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn ethernet_non_ip_is_other_or_unsupported() {
        let arp = ethernet(&[0x08, 0x06], &[0; 28]);
        assert_eq!(network(LinkType::Ethernet, &arp), Ok(Network::Other));
        let stp = ethernet(&[0x00, 0x26], &[0x42; 38]);
        assert_eq!(network(LinkType::Ethernet, &stp), Ok(Network::Other));
        let experimental = ethernet(&[0x88, 0xb5], &[0; 8]);
        assert_eq!(
            network(LinkType::Ethernet, &experimental),
            Err(DecodeError::Unsupported)
        );
    }

    #[test]
    fn pppoe_session_carries_ppp() {
        let mut pppoe = vec![0x11, 0x00, 0x12, 0x34];
        pppoe.extend_from_slice(&(IP4.len() as u16 + 2).to_be_bytes());
        pppoe.extend_from_slice(&[0x00, 0x21]);
        pppoe.extend_from_slice(IP4);
        pppoe.extend_from_slice(&[0; 4]); // Ethernet padding
        let frame = ethernet(&[0x88, 0x64], &pppoe);
        let Ok(Network::Encap(Encap::Pppoe, Next::Ppp, ppp_frame)) =
            network(LinkType::Ethernet, &frame)
        else {
            panic!("PPPoE expected");
        };
        assert_eq!(ppp_frame.len(), IP4.len() + 2, "padding removed");
        assert_eq!(next(Next::Ppp, ppp_frame), Ok(Network::Ipv4(IP4)));
        let cut = &frame[..frame.len() - 8];
        assert_eq!(
            network(LinkType::Ethernet, cut),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn ppp_protocol_field_forms() {
        let with_address = [&[0xff, 0x03, 0x00, 0x21][..], IP4].concat();
        assert_eq!(ppp(&with_address), Ok(Network::Ipv4(IP4)));
        let compressed = [&[0x21][..], IP4].concat();
        assert_eq!(ppp(&compressed), Ok(Network::Ipv4(IP4)));
        assert_eq!(ppp(&[0x00, 0x57, 0x60]), Ok(Network::Ipv6(&[0x60][..])));
        assert_eq!(ppp(&[0xc0, 0x21, 1, 2]), Ok(Network::Other)); // LCP
        assert_eq!(ppp(&[0x00, 0x3d]), Err(DecodeError::Unsupported));
        assert_eq!(ppp(&[0xff, 0x03]), Err(DecodeError::Truncated));
        assert_eq!(ppp(&[0x00]), Err(DecodeError::Truncated));
    }

    #[test]
    fn mpls_label_stack() {
        let stack = [&[0, 1, 0, 64, 0, 2, 1, 64][..], IP4].concat();
        assert_eq!(
            network(LinkType::Ethernet, &ethernet(&[0x88, 0x47], &stack)),
            Ok(Network::Encap(
                Encap::Mpls,
                Next::Link(LinkType::RawIp),
                IP4
            ))
        );
        let pw = [&[0, 1, 1, 64][..], &[0xaa; 14]].concat();
        assert_eq!(
            mpls(&pw),
            Ok(Network::Encap(
                Encap::Mpls,
                Next::Link(LinkType::Ethernet),
                &[0xaa; 14][..]
            ))
        );
        assert_eq!(mpls(&[0, 1, 0, 64]), Err(DecodeError::Truncated));
        assert_eq!(mpls(&[0, 1, 1, 64]), Err(DecodeError::Truncated));
        assert_eq!(mpls(&[0, 1, 1, 64, 0, 0]), Err(DecodeError::Truncated));
    }

    #[test]
    fn linux_sll_v1() {
        let mut frame = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
        frame.extend_from_slice(IP4);
        assert_eq!(network(LinkType::LinuxSll, &frame), Ok(Network::Ipv4(IP4)));
        assert_eq!(
            network(LinkType::LinuxSll, &frame[..15]),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn linux_sll_v1_with_vlan_tag() {
        let mut frame = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x81, 0x00];
        frame.extend_from_slice(&[0x00, 0x05, 0x08, 0x00]);
        frame.extend_from_slice(IP4);
        assert_eq!(network(LinkType::LinuxSll, &frame), Ok(Network::Ipv4(IP4)));
    }

    #[test]
    fn linux_sll_v2() {
        let mut frame = vec![
            0x86, 0xdd, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
        ];
        frame.extend_from_slice(&[0x60, 0, 0, 0]);
        assert_eq!(
            network(LinkType::LinuxSll2, &frame),
            Ok(Network::Ipv6(&[0x60, 0, 0, 0][..]))
        );
        assert_eq!(
            network(LinkType::LinuxSll2, &frame[..19]),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn raw_ip_by_version() {
        assert_eq!(network(LinkType::RawIp, IP4), Ok(Network::Ipv4(IP4)));
        assert_eq!(
            network(LinkType::RawIp, &[0x60, 0]),
            Ok(Network::Ipv6(&[0x60, 0][..]))
        );
        assert_eq!(
            network(LinkType::RawIp, &[0x50]),
            Err(DecodeError::Malformed)
        );
        assert_eq!(network(LinkType::RawIp, &[]), Err(DecodeError::Truncated));
        assert_eq!(network(LinkType::Ipv4, IP4), Ok(Network::Ipv4(IP4)));
        assert_eq!(
            network(LinkType::Ipv6, &[0x60]),
            Ok(Network::Ipv6(&[0x60][..]))
        );
    }

    #[test]
    fn null_loopback_both_byte_orders_and_inet6_values() {
        let mut host = 2u32.to_le_bytes().to_vec();
        host.extend_from_slice(IP4);
        assert_eq!(network(LinkType::Null, &host), Ok(Network::Ipv4(IP4)));
        let mut net = 2u32.to_be_bytes().to_vec();
        net.extend_from_slice(IP4);
        assert_eq!(network(LinkType::Null, &net), Ok(Network::Ipv4(IP4)));
        for af in [10u32, 24, 28, 30] {
            for head in [af.to_le_bytes(), af.to_be_bytes()] {
                let mut frame = head.to_vec();
                frame.push(0x60);
                assert_eq!(
                    network(LinkType::Null, &frame),
                    Ok(Network::Ipv6(&[0x60][..]))
                );
            }
        }
        assert_eq!(
            network(LinkType::Null, &[7, 0, 0, 0, 0x45]),
            Err(DecodeError::Unsupported)
        );
        assert_eq!(
            network(LinkType::Null, &[2, 0, 0]),
            Err(DecodeError::Truncated)
        );
    }
}
