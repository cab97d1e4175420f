//! TCP segments (RFC 9293): ports, sequence number, flags and payload.
//!
//! Only the header is read here; checksums are not verified (captures on the
//! sending host carry offloaded, unfilled checksums). Stream reassembly of
//! SIP happens above decode, in [`crate::sip::stream`].

use super::link::be16;
use super::DecodeError;
use std::net::{IpAddr, SocketAddr};

/// The TCP control flags taprec looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from the sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers (connection opening).
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push.
    pub const PSH: u8 = 0x08;
    /// The acknowledgment field is significant.
    pub const ACK: u8 = 0x10;

    /// FIN is set.
    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    /// SYN is set.
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    /// RST is set.
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
}

/// One TCP segment, borrowed from the frame (or the fragment reassembler).
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Sequence number of the first payload byte (of the SYN when SYN is set).
    pub seq: u32,
    /// Control flags.
    pub flags: TcpFlags,
    /// The segment's data (may be empty).
    pub payload: &'a [u8],
}

/// Parses a TCP header and its payload. `data` is the IP payload, so its
/// end is the segment's end.
pub(crate) fn segment(src: IpAddr, dst: IpAddr, data: &[u8]) -> Result<Segment<'_>, DecodeError> {
    let src_port = be16(data, 0)?;
    let dst_port = be16(data, 2)?;
    let seq = data
        .get(4..8)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_be_bytes)
        .ok_or(DecodeError::Truncated)?;
    let offset_byte = *data.get(12).ok_or(DecodeError::Truncated)?;
    let flags = *data.get(13).ok_or(DecodeError::Truncated)?;
    let header_len = usize::from(offset_byte >> 4) * 4;
    if header_len < 20 {
        return Err(DecodeError::Malformed);
    }
    let payload = data.get(header_len..).ok_or(DecodeError::Truncated)?;
    Ok(Segment {
        src: SocketAddr::new(src, src_port),
        dst: SocketAddr::new(dst, dst_port),
        seq,
        flags: TcpFlags(flags),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    /// A TCP header with `options` (multiple of 4 bytes) and `payload`.
    fn tcp_bytes(
        src_port: u16,
        dst_port: u16,
        seq: u32,
        flags: u8,
        options: &[u8],
        payload: &[u8],
    ) -> Vec<u8> {
        let mut t = src_port.to_be_bytes().to_vec();
        t.extend_from_slice(&dst_port.to_be_bytes());
        t.extend_from_slice(&seq.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 0]); // ack
        t.push((((20 + options.len()) / 4) as u8) << 4);
        t.push(flags);
        t.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]); // window, checksum, urgent
        t.extend_from_slice(options);
        t.extend_from_slice(payload);
        t
    }

    #[test]
    fn header_fields_and_payload() {
        let bytes = tcp_bytes(40000, 5060, 0xfffffff0, 0x18, &[1, 1, 1, 0], b"OPTIONS");
        let s = segment(A, B, &bytes).unwrap();
        assert_eq!(s.src, SocketAddr::new(A, 40000));
        assert_eq!(s.dst, SocketAddr::new(B, 5060));
        assert_eq!(s.seq, 0xfffffff0);
        assert!(!s.flags.syn() && !s.flags.fin() && !s.flags.rst());
        assert_eq!(s.payload, b"OPTIONS");
    }

    #[test]
    fn flags() {
        for (bits, syn, fin, rst) in [
            (0x02, true, false, false),
            (0x11, false, true, false),
            (0x14, false, false, true),
        ] {
            let bytes = tcp_bytes(1, 2, 3, bits, &[], b"");
            let s = segment(A, B, &bytes).unwrap();
            assert_eq!(
                (s.flags.syn(), s.flags.fin(), s.flags.rst()),
                (syn, fin, rst)
            );
            assert!(s.payload.is_empty());
        }
    }

    #[test]
    fn errors() {
        let bytes = tcp_bytes(1, 2, 3, 0x10, &[], b"x");
        assert_eq!(
            segment(A, B, &bytes[..13]).unwrap_err(),
            DecodeError::Truncated
        );
        let mut short = bytes.clone();
        short[12] = 4 << 4; // 16-byte header
        assert_eq!(segment(A, B, &short).unwrap_err(), DecodeError::Malformed);
        let mut long = bytes.clone();
        long[12] = 15 << 4; // 60-byte header, 21 bytes present
        assert_eq!(segment(A, B, &long).unwrap_err(), DecodeError::Truncated);
        assert_eq!(segment(A, B, &[]).unwrap_err(), DecodeError::Truncated);
    }
}
