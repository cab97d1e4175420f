//! RTP (RFC 3550) packet view, and telling RTCP apart from RTP.

use super::DecodeError;

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
    pub fn parse(data: &'a [u8]) -> Result<Self, DecodeError> {
        let _ = data;
        todo!()
    }
}

/// True when `data` looks like RTCP (version 2, packet type 192..=223), which
/// shares ports with RTP under rtcp-mux and must be ignored.
pub fn is_rtcp(data: &[u8]) -> bool {
    let _ = data;
    todo!()
}
