//! RTP (RFC 3550) packet view, and telling RTCP apart from RTP.

use super::DecodeError;

/// Fixed RTP header length.
const HEADER_LEN: usize = 12;

/// A checked, borrowed view of an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// Marker bit.
    pub marker: bool,
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Media timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// The payload, after CSRCs, header extension, and without padding.
    pub payload: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// Parses an RTP packet (version 2). Never panics.
    ///
    /// `Truncated` when the CSRC list or header extension runs past the end;
    /// `Malformed` for another version or an impossible padding length.
    pub fn parse(data: &'a [u8]) -> Result<Self, DecodeError> {
        let fixed: &[u8; HEADER_LEN] = data
            .get(..HEADER_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(DecodeError::Truncated)?;
        if fixed[0] >> 6 != 2 {
            return Err(DecodeError::Malformed);
        }
        let padding = fixed[0] & 0x20 != 0;
        let extension = fixed[0] & 0x10 != 0;
        let csrc_count = usize::from(fixed[0] & 0x0f);
        let mut header_len = HEADER_LEN + 4 * csrc_count;
        if extension {
            // profile(2) length in 32-bit words(2), then the words
            let words = match data.get(header_len + 2..header_len + 4) {
                Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
                _ => return Err(DecodeError::Truncated),
            };
            header_len += 4 + 4 * usize::from(words);
        }
        if header_len > data.len() {
            return Err(DecodeError::Truncated);
        }
        let mut end = data.len();
        if padding {
            // The last byte counts the padding, itself included.
            let pad = usize::from(*data.last().ok_or(DecodeError::Truncated)?);
            // header_len <= end was checked above.
            if pad == 0 || pad > end - header_len {
                return Err(DecodeError::Malformed);
            }
            end -= pad;
        }
        Ok(RtpPacket {
            marker: fixed[1] & 0x80 != 0,
            payload_type: fixed[1] & 0x7f,
            sequence: u16::from_be_bytes([fixed[2], fixed[3]]),
            timestamp: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
            ssrc: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
            payload: data.get(header_len..end).ok_or(DecodeError::Truncated)?,
        })
    }
}

/// True when `data` looks like RTCP (version 2, packet type 192..=223), which
/// shares ports with RTP under rtcp-mux and must be ignored.
///
/// RTCP packet types (SR 200, RR 201, SDES 202, BYE 203, APP 204, and the
/// feedback types 205/206) sit in the second byte where RTP has marker and
/// payload type; RFC 5761 section 4 reserves the whole range 192..=223 (RTP
/// payload types 64..=95 with the marker set) so the two can be told apart.
pub fn is_rtcp(data: &[u8]) -> bool {
    match data {
        [first, second, _, _, ..] => first >> 6 == 2 && (192..=223).contains(second),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PCMU: [u8; 16] = [
        0x80, 0x00, 0x12, 0x34, 0x00, 0x00, 0x0f, 0xa0, 0xde, 0xad, 0xbe, 0xef, 0xff, 0x7f, 0xfe,
        0x7e,
    ];

    #[test]
    fn parses_plain_packet() {
        let p = RtpPacket::parse(&PCMU).unwrap();
        assert_eq!(
            p,
            RtpPacket {
                marker: false,
                payload_type: 0,
                sequence: 0x1234,
                timestamp: 4000,
                ssrc: 0xdeadbeef,
                payload: &PCMU[12..],
            }
        );
    }

    #[test]
    fn marker_csrcs_extension_and_padding() {
        let mut pkt = vec![0xb1, 0x88, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        pkt.extend_from_slice(&[0, 0, 0, 9]); // one CSRC
        pkt.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // extension, 1 word
        pkt.extend_from_slice(&[0xd5; 5]); // payload
        pkt.extend_from_slice(&[0, 0, 3]); // 3 bytes padding
        let p = RtpPacket::parse(&pkt).unwrap();
        assert!(p.marker);
        assert_eq!(p.payload_type, 8);
        assert_eq!(p.payload, &[0xd5; 5]);
    }

    #[test]
    fn padding_may_consume_the_whole_payload() {
        let mut pkt = PCMU.to_vec();
        pkt[0] |= 0x20;
        pkt[15] = 4;
        assert_eq!(RtpPacket::parse(&pkt).unwrap().payload, &[] as &[u8]);
    }

    #[test]
    fn rejects_bad_packets_without_panicking() {
        assert_eq!(RtpPacket::parse(&PCMU[..11]), Err(DecodeError::Truncated));
        let mut v1 = PCMU;
        v1[0] = 0x40;
        assert_eq!(RtpPacket::parse(&v1), Err(DecodeError::Malformed));
        let mut csrcs = PCMU;
        csrcs[0] = 0x82; // two CSRCs need 8 bytes, only 4 there
        assert_eq!(RtpPacket::parse(&csrcs), Err(DecodeError::Truncated));
        let mut ext = PCMU;
        ext[0] = 0x90; // extension header cut short
        assert_eq!(RtpPacket::parse(&ext[..14]), Err(DecodeError::Truncated));
        assert_eq!(RtpPacket::parse(&ext), Err(DecodeError::Truncated));
        let mut pad = PCMU;
        pad[0] = 0xa0;
        pad[15] = 0;
        assert_eq!(RtpPacket::parse(&pad), Err(DecodeError::Malformed));
        pad[15] = 5;
        assert_eq!(RtpPacket::parse(&pad), Err(DecodeError::Malformed));
        for len in 0..=PCMU.len() {
            for first in [0x80, 0xbf, 0xaf, 0x9f] {
                let mut pkt = PCMU[..len].to_vec();
                if let Some(b) = pkt.first_mut() {
                    *b = first;
                }
                let _ = RtpPacket::parse(&pkt);
            }
        }
    }

    #[test]
    fn rtcp_detection() {
        let sr = [0x80, 200, 0, 6, 0, 0, 0, 1];
        assert!(is_rtcp(&sr));
        assert!(is_rtcp(&[0x81, 201, 0, 7]));
        assert!(is_rtcp(&[0x80, 192, 0, 0]));
        assert!(is_rtcp(&[0x80, 223, 0, 0]));
        assert!(!is_rtcp(&[0x80, 224, 0, 0]));
        assert!(!is_rtcp(&PCMU));
        assert!(!is_rtcp(&[0x80, 0x88, 0, 0])); // PCMA with marker
        assert!(!is_rtcp(&[0x40, 200, 0, 0]));
        assert!(!is_rtcp(&[0x80, 200]));
    }
}
