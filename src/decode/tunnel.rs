//! Tunnel headers as remote SPAN delivers mirrored traffic: GRE (RFC 2784,
//! 2890, and the PPTP variant of RFC 2637), ERSPAN type I, II and III
//! (GRE protocols 0x88BE and 0x22EB), VXLAN (RFC 7348).
//!
//! Each function checks its header and returns what follows it, for the
//! decoder to decode as the next layer (see [`super::link::Next`]).

use super::link::{be16, Next};
use super::{DecodeError, Encap};
use crate::capture::LinkType;

/// GRE protocol types handled here (the rest are EtherTypes).
mod gre_protocol {
    /// Transparent Ethernet bridging: an Ethernet frame follows.
    pub const TEB: u16 = 0x6558;
    /// PPP (PPTP's enhanced GRE, and GRE-carried PPP).
    pub const PPP: u16 = 0x880b;
    /// ERSPAN type I (no ERSPAN header) and type II.
    pub const ERSPAN_II: u16 = 0x88be;
    /// ERSPAN type III.
    pub const ERSPAN_III: u16 = 0x22eb;
}

/// GRE header flag bits (first two bytes).
mod gre_flag {
    pub const CHECKSUM: u16 = 0x8000;
    pub const ROUTING: u16 = 0x4000;
    pub const KEY: u16 = 0x2000;
    pub const SEQUENCE: u16 = 0x1000;
    /// Version 1 (enhanced GRE): an acknowledgment number is present.
    pub const ACK: u16 = 0x0080;
    pub const VERSION: u16 = 0x0007;
}

/// An unwrapped layer: its kind, how to decode its content, the content.
pub(crate) type Layer<'a> = (Encap, Next, &'a [u8]);

/// A GRE packet: what it carries, how to decode it, and its bytes. `None`
/// for a packet without payload (keepalive, PPTP acknowledgment).
pub(crate) fn gre(data: &[u8]) -> Result<Option<Layer<'_>>, DecodeError> {
    let bits = be16(data, 0)?;
    let protocol = be16(data, 2)?;
    let has = |flag: u16| bits & flag != 0;
    let (header_len, payload) = match bits & gre_flag::VERSION {
        0 => {
            if has(gre_flag::ROUTING) {
                // RFC 1701 source routing: obsolete, variable length.
                return Err(DecodeError::Unsupported);
            }
            let len = 4
                + 4 * usize::from(has(gre_flag::CHECKSUM))
                + 4 * usize::from(has(gre_flag::KEY))
                + 4 * usize::from(has(gre_flag::SEQUENCE));
            (len, data.get(len..).ok_or(DecodeError::Truncated)?)
        }
        1 => {
            // Enhanced GRE (RFC 2637): key = payload length + call id.
            if !has(gre_flag::KEY) || protocol != gre_protocol::PPP {
                return Err(DecodeError::Malformed);
            }
            let payload_len = usize::from(be16(data, 4)?);
            let len =
                8 + 4 * usize::from(has(gre_flag::SEQUENCE)) + 4 * usize::from(has(gre_flag::ACK));
            let payload = data
                .get(len..len + payload_len)
                .ok_or(DecodeError::Truncated)?;
            (len, payload)
        }
        _ => return Err(DecodeError::Unsupported),
    };
    if payload.is_empty() {
        return Ok(None);
    }
    let ethernet = Next::Link(LinkType::Ethernet);
    Ok(Some(match protocol {
        gre_protocol::TEB => (Encap::Gre, ethernet, payload),
        gre_protocol::PPP => (Encap::Gre, Next::Ppp, payload),
        gre_protocol::ERSPAN_II if has(gre_flag::SEQUENCE) => {
            // Type II: an 8-byte header whose version nibble is 1.
            let version = payload.first().map(|b| b >> 4);
            if version != Some(1) {
                return Err(DecodeError::Malformed);
            }
            let inner = data.get(header_len + 8..).ok_or(DecodeError::Truncated)?;
            (Encap::ErspanII, ethernet, inner)
        }
        // Type I: no sequence number and no ERSPAN header.
        gre_protocol::ERSPAN_II => (Encap::ErspanII, ethernet, payload),
        gre_protocol::ERSPAN_III => erspan_iii(payload)?,
        ethertype => (Encap::Gre, Next::Ethertype(ethertype), payload),
    }))
}

/// ERSPAN type III header: 12 bytes, then an 8-byte platform-specific
/// subheader when the O bit is set; the frame type says Ethernet or IP.
fn erspan_iii(data: &[u8]) -> Result<Layer<'_>, DecodeError> {
    let header: &[u8; 12] = data
        .get(..12)
        .and_then(|h| h.try_into().ok())
        .ok_or(DecodeError::Truncated)?;
    if header[0] >> 4 != 2 {
        return Err(DecodeError::Malformed);
    }
    let frame_type = (header[10] >> 2) & 0x1f;
    let optional = header[11] & 1 == 1;
    let len = if optional { 20 } else { 12 };
    let inner = data.get(len..).ok_or(DecodeError::Truncated)?;
    let next = match frame_type {
        0 => Next::Link(LinkType::Ethernet),
        2 => Next::Link(LinkType::RawIp),
        _ => return Err(DecodeError::Unsupported),
    };
    Ok((Encap::ErspanIII, next, inner))
}

/// The Ethernet frame inside a VXLAN packet, or `None` when the UDP payload
/// is not VXLAN (then it is treated as plain UDP).
pub(crate) fn vxlan(data: &[u8]) -> Option<&[u8]> {
    // flags(1: I bit 0x08) reserved(3) VNI(3) reserved(1), then Ethernet.
    let flags = *data.first()?;
    if flags & 0x08 == 0 {
        return None;
    }
    let inner = data.get(8..)?;
    (inner.len() >= 14).then_some(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gre_header(bits: u16, protocol: u16, extra: &[u8]) -> Vec<u8> {
        let mut g = bits.to_be_bytes().to_vec();
        g.extend_from_slice(&protocol.to_be_bytes());
        g.extend_from_slice(extra);
        g
    }

    #[test]
    fn gre_plain_ip_and_optional_fields() {
        let mut p = gre_header(0, 0x0800, &[]);
        p.extend_from_slice(&[0x45, 0]);
        assert_eq!(
            gre(&p).unwrap(),
            Some((Encap::Gre, Next::Ethertype(0x0800), &[0x45, 0][..]))
        );
        // checksum + key + sequence: 12 more bytes
        let mut p = gre_header(0xb000, 0x86dd, &[0; 12]);
        p.push(0x60);
        assert_eq!(
            gre(&p).unwrap(),
            Some((Encap::Gre, Next::Ethertype(0x86dd), &[0x60][..]))
        );
        assert_eq!(gre(&p[..10]), Err(DecodeError::Truncated));
        assert_eq!(gre(&gre_header(0, 0x0800, &[])), Ok(None));
        assert_eq!(
            gre(&gre_header(0x4000, 0x0800, &[0; 8])),
            Err(DecodeError::Unsupported)
        );
        assert_eq!(gre(&[0, 5]), Err(DecodeError::Truncated));
    }

    #[test]
    fn gre_transparent_ethernet_bridging() {
        let mut p = gre_header(0, 0x6558, &[]);
        p.extend_from_slice(&[0xaa; 14]);
        assert_eq!(
            gre(&p).unwrap(),
            Some((Encap::Gre, Next::Link(LinkType::Ethernet), &[0xaa; 14][..]))
        );
    }

    #[test]
    fn gre_version_1_ppp_with_sequence_and_ack() {
        // K, S set, A set; payload length 3, call id 7, seq, ack.
        let mut p = gre_header(0x3081, 0x880b, &[0, 3, 0, 7, 0, 0, 0, 1, 0, 0, 0, 2]);
        p.extend_from_slice(&[0xff, 0x03, 0x21, 0xee]); // 1 byte beyond the length
        assert_eq!(
            gre(&p).unwrap(),
            Some((Encap::Gre, Next::Ppp, &[0xff, 0x03, 0x21][..]))
        );
        // Acknowledgment only: nothing to decode.
        let ack = gre_header(0x2081, 0x880b, &[0, 0, 0, 7, 0, 0, 0, 2]);
        assert_eq!(gre(&ack), Ok(None));
        // Version 1 without a key is malformed.
        assert_eq!(
            gre(&gre_header(0x0001, 0x880b, &[0; 8])),
            Err(DecodeError::Malformed)
        );
        assert_eq!(
            gre(&gre_header(0x0002, 0x0800, &[0; 8])),
            Err(DecodeError::Unsupported)
        );
    }

    #[test]
    fn erspan_type_i_and_ii() {
        let mut p = gre_header(0, 0x88be, &[]);
        p.extend_from_slice(&[0xbb; 14]);
        assert_eq!(
            gre(&p).unwrap(),
            Some((
                Encap::ErspanII,
                Next::Link(LinkType::Ethernet),
                &[0xbb; 14][..]
            ))
        );
        // Type II: sequence number, then ver=1 VLAN 5 session 3, index.
        let mut p = gre_header(0x1000, 0x88be, &[0, 0, 0, 9]);
        p.extend_from_slice(&[0x10, 0x05, 0x00, 0x03, 0, 0, 0, 1]);
        p.extend_from_slice(&[0xcc; 14]);
        assert_eq!(
            gre(&p).unwrap(),
            Some((
                Encap::ErspanII,
                Next::Link(LinkType::Ethernet),
                &[0xcc; 14][..]
            ))
        );
        let mut bad = p.clone();
        bad[8] = 0x20;
        assert_eq!(gre(&bad), Err(DecodeError::Malformed));
        assert_eq!(gre(&p[..14]), Err(DecodeError::Truncated));
    }

    #[test]
    fn erspan_type_iii_with_and_without_subheader() {
        let mut header = vec![0x20, 0x05, 0x00, 0x03, 1, 2, 3, 4, 0, 0, 0, 0];
        let mut p = gre_header(0x1000, 0x22eb, &[0, 0, 0, 1]);
        p.extend_from_slice(&header);
        p.extend_from_slice(&[0xdd; 14]);
        assert_eq!(
            gre(&p).unwrap(),
            Some((
                Encap::ErspanIII,
                Next::Link(LinkType::Ethernet),
                &[0xdd; 14][..]
            ))
        );
        // O bit: 8-byte platform subheader; frame type 2: IP.
        header[10] = 2 << 2;
        header[11] = 1;
        let mut p = gre_header(0x1000, 0x22eb, &[0, 0, 0, 1]);
        p.extend_from_slice(&header);
        p.extend_from_slice(&[0x77; 8]);
        p.extend_from_slice(&[0x45]);
        assert_eq!(
            gre(&p).unwrap(),
            Some((Encap::ErspanIII, Next::Link(LinkType::RawIp), &[0x45][..]))
        );
        header[10] = 5 << 2;
        let mut p = gre_header(0, 0x22eb, &header);
        p.extend_from_slice(&[0; 8]);
        assert_eq!(gre(&p), Err(DecodeError::Unsupported));
        let mut wrong_version = gre_header(0, 0x22eb, &[0x10; 12]);
        wrong_version.push(0);
        assert_eq!(gre(&wrong_version), Err(DecodeError::Malformed));
        assert_eq!(
            gre(&gre_header(0, 0x22eb, &[0x20; 5])),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn vxlan_header() {
        let mut p = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
        p.extend_from_slice(&[0xee; 14]);
        assert_eq!(vxlan(&p), Some(&[0xee; 14][..]));
        let mut no_i = p.clone();
        no_i[0] = 0;
        assert_eq!(vxlan(&no_i), None);
        assert_eq!(vxlan(&p[..20]), None);
        assert_eq!(vxlan(&[]), None);
    }
}
