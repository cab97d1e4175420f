//! SIP over SCTP (RFC 4168): user messages from DATA chunks.
//!
//! Each SIP message is one SCTP user message; a large one arrives as several
//! DATA chunks (B flag on the first, E on the last), possibly in several
//! packets. Partial messages are kept per (source, destination, stream), in
//! bounded numbers and sizes; anything beyond the bounds is dropped and
//! counted.

use rustc_hash::FxHashMap;
use std::net::SocketAddr;

/// Partial messages kept at once; the oldest is dropped beyond this.
const MAX_PARTIAL: usize = 256;
/// Largest user message reassembled, bytes.
const MAX_MESSAGE: usize = 64 * 1024;
/// Chunk type of DATA.
const DATA: u8 = 0;
/// DATA flags: E (ending fragment) and B (beginning fragment).
const FLAG_E: u8 = 0x01;
const FLAG_B: u8 = 0x02;

/// Counters of the SCTP reassembler.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SctpStats {
    /// DATA chunks seen.
    pub chunks: u64,
    /// Whole user messages delivered.
    pub messages: u64,
    /// Partial messages dropped (bounds, or a chunk out of place).
    pub dropped: u64,
}

/// Reassembles SCTP user messages from the chunks of each packet.
#[derive(Debug, Default)]
pub struct SctpMessages {
    partial: FxHashMap<(SocketAddr, SocketAddr, u16), (u64, Vec<u8>)>,
    serial: u64,
    stats: SctpStats,
}

impl SctpMessages {
    /// An empty reassembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counters so far.
    pub fn stats(&self) -> &SctpStats {
        &self.stats
    }

    /// Takes the chunks of one SCTP packet (everything after its 12-byte
    /// common header) and calls `deliver` with each complete user message.
    pub fn push(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        mut chunks: &[u8],
        deliver: &mut impl FnMut(&[u8]),
    ) {
        while let (Some(&kind), Some(&flags), Some(len)) = (
            chunks.first(),
            chunks.get(1),
            chunks.get(2..).and_then(<[u8]>::first_chunk),
        ) {
            let length = usize::from(u16::from_be_bytes(*len));
            let Some(chunk) = chunks.get(..length).filter(|_| length >= 4) else {
                return;
            };
            if kind == DATA {
                self.data(src, dst, flags, chunk, deliver);
            }
            // Chunks are padded to four bytes.
            chunks = chunks.get(length.div_ceil(4) * 4..).unwrap_or_default();
        }
    }

    fn data(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        flags: u8,
        chunk: &[u8],
        deliver: &mut impl FnMut(&[u8]),
    ) {
        // Type, flags, length, TSN (4), stream id (2), stream seq (2), PPID (4).
        let (Some(stream), Some(user)) = (
            chunk.get(8..).and_then(<[u8]>::first_chunk),
            chunk.get(16..),
        ) else {
            return;
        };
        self.stats.chunks += 1;
        let key = (src, dst, u16::from_be_bytes(*stream));
        match (flags & FLAG_B != 0, flags & FLAG_E != 0) {
            (true, true) => {
                self.stats.messages += 1;
                deliver(user);
            }
            (true, false) => {
                if self.partial.len() >= MAX_PARTIAL && !self.partial.contains_key(&key) {
                    self.evict_oldest();
                }
                self.serial += 1;
                if self
                    .partial
                    .insert(key, (self.serial, user.to_vec()))
                    .is_some()
                {
                    self.stats.dropped += 1;
                }
            }
            (false, end) => {
                let Some((_, buffer)) = self.partial.get_mut(&key) else {
                    return;
                };
                if buffer.len() + user.len() > MAX_MESSAGE {
                    self.partial.remove(&key);
                    self.stats.dropped += 1;
                    return;
                }
                buffer.extend_from_slice(user);
                if end {
                    if let Some((_, message)) = self.partial.remove(&key) {
                        self.stats.messages += 1;
                        deliver(&message);
                    }
                }
            }
        }
    }

    fn evict_oldest(&mut self) {
        if let Some(key) = self
            .partial
            .iter()
            .min_by_key(|(_, (serial, _))| *serial)
            .map(|(key, _)| *key)
        {
            self.partial.remove(&key);
            self.stats.dropped += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(flags: u8, stream: u16, user: &[u8]) -> Vec<u8> {
        let mut c = vec![DATA, flags, 0, 0, 0, 0, 0, 1];
        c.extend_from_slice(&stream.to_be_bytes());
        c.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        c.extend_from_slice(user);
        let len = c.len() as u16;
        c[2..4].copy_from_slice(&len.to_be_bytes());
        while c.len() % 4 != 0 {
            c.push(0);
        }
        c
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn whole_and_fragmented_messages_are_delivered() {
        let mut sctp = SctpMessages::new();
        let (a, b) = (addr("10.0.0.1:5060"), addr("10.0.0.2:5060"));
        let mut got = Vec::new();
        let mut packet = chunk(FLAG_B | FLAG_E, 0, b"SIP/2.0 100 Trying\r\n\r\n");
        packet.extend(chunk(FLAG_B, 1, b"INVITE sip:x SIP/2.0\r\n"));
        sctp.push(a, b, &packet, &mut |m| got.push(m.to_vec()));
        assert_eq!(got.len(), 1);
        sctp.push(a, b, &chunk(0, 1, b"Call-ID: 1\r\n"), &mut |m| {
            got.push(m.to_vec())
        });
        sctp.push(a, b, &chunk(FLAG_E, 1, b"\r\n"), &mut |m| {
            got.push(m.to_vec())
        });
        assert_eq!(got[1], b"INVITE sip:x SIP/2.0\r\nCall-ID: 1\r\n\r\n");
        assert_eq!(sctp.stats().messages, 2);
    }

    #[test]
    fn garbage_and_bounds_never_panic() {
        let mut sctp = SctpMessages::new();
        let (a, b) = (addr("10.0.0.1:5060"), addr("10.0.0.2:5060"));
        let mut n = 0;
        for i in 0..2000u16 {
            let key_src = SocketAddr::new(a.ip(), i);
            sctp.push(key_src, b, &chunk(FLAG_B, i, &[b'x'; 100]), &mut |_| n += 1);
            sctp.push(a, b, &[0, 0, 0, 1, 9, 9], &mut |_| n += 1);
            sctp.push(a, b, &chunk(0, 0, &[b'y'; 40_000]), &mut |_| n += 1);
        }
        assert!(sctp.partial.len() <= MAX_PARTIAL);
        assert_eq!(n, 0);
    }
}
