//! A batch of frames copied out of a capture source into one buffer.
//!
//! The recorder looks a few frames ahead to prefetch the call state they
//! will touch ([`Recorder::handle_batch`](crate::recorder::Recorder::handle_batch)),
//! which needs several frames alive at once; a file reader or the live ring
//! hands out one borrowed frame at a time. Copying them into a batch costs
//! one `memcpy` of a few hundred bytes a frame into a buffer that stays in
//! cache, and nothing is allocated once the buffer has grown to its size.
//!
//! A frame is also peeked at ([`crate::decode::peek_udp`]) as it is copied
//! in, while its bytes are in the copying thread's cache: in replay that is
//! the reading thread, so the recording thread, the busiest, gets the
//! addresses and payload of each plain IPv4 UDP frame without parsing its
//! headers ([`FrameBatch::peeked`]).

use super::{Frame, LinkType};
use crate::decode::{peek_udp, Datagram, Transport};
use crate::Timestamp;
use std::net::{SocketAddr, SocketAddrV4};

/// Where one frame lies in the batch's buffer.
#[derive(Debug, Clone, Copy)]
struct Entry {
    ts: Timestamp,
    link: LinkType,
    start: usize,
    len: usize,
    original_len: u32,
    /// What [`peek_udp`] saw in the frame.
    udp: Option<PeekedUdp>,
}

/// A datagram [`peek_udp`] accepted (it accepts only IPv4): its addresses
/// and where its payload lies in the frame.
#[derive(Debug, Clone, Copy)]
struct PeekedUdp {
    src: SocketAddrV4,
    dst: SocketAddrV4,
    payload_start: u32,
    payload_len: u32,
}

impl PeekedUdp {
    /// The peek of `frame`'s bytes, kept as offsets into them.
    fn of(link: LinkType, data: &[u8]) -> Option<PeekedUdp> {
        let datagram = peek_udp(link, data)?;
        let (SocketAddr::V4(src), SocketAddr::V4(dst)) = (datagram.src, datagram.dst) else {
            return None;
        };
        // The payload is a part of `data`.
        let start = (datagram.payload.as_ptr() as usize).checked_sub(data.as_ptr() as usize)?;
        Some(PeekedUdp {
            src,
            dst,
            payload_start: u32::try_from(start).ok()?,
            payload_len: u32::try_from(datagram.payload.len()).ok()?,
        })
    }
}

/// Frames copied into one reusable buffer; see the module doc.
#[derive(Debug, Default)]
pub struct FrameBatch {
    data: Vec<u8>,
    entries: Vec<Entry>,
}

impl FrameBatch {
    /// An empty batch with room for `frames` frames of `bytes` bytes in all
    /// before it has to grow.
    pub fn with_capacity(frames: usize, bytes: usize) -> Self {
        FrameBatch {
            data: Vec::with_capacity(bytes),
            entries: Vec::with_capacity(frames),
        }
    }

    /// Appends a copy of `frame`.
    pub fn push(&mut self, frame: &Frame<'_>) {
        let start = self.data.len();
        self.data.extend_from_slice(frame.data);
        self.entries.push(Entry {
            ts: frame.ts,
            link: frame.link,
            start,
            len: frame.data.len(),
            original_len: frame.original_len,
            udp: PeekedUdp::of(frame.link, frame.data),
        });
    }

    /// Forgets every frame, keeping the memory.
    pub fn clear(&mut self) {
        self.data.clear();
        self.entries.clear();
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no frame is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of frame data held.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// The `i`th frame, if there is one.
    pub fn get(&self, i: usize) -> Option<Frame<'_>> {
        let e = self.entries.get(i)?;
        let data = self.data.get(e.start..e.start.checked_add(e.len)?)?;
        Some(Frame {
            ts: e.ts,
            link: e.link,
            data,
            original_len: e.original_len,
        })
    }

    /// The `i`th frame's datagram as [`peek_udp`] yields it, computed when
    /// the frame was pushed; `None` when it yields none (or there is no
    /// such frame).
    pub fn peeked(&self, i: usize) -> Option<Datagram<'_>> {
        let e = self.entries.get(i)?;
        let udp = e.udp.as_ref()?;
        let start = e.start.checked_add(udp.payload_start as usize)?;
        let payload = self
            .data
            .get(start..start.checked_add(udp.payload_len as usize)?)?;
        Some(Datagram {
            transport: Transport::Udp,
            src: SocketAddr::V4(udp.src),
            dst: SocketAddr::V4(udp.dst),
            payload,
        })
    }

    /// The frames in order.
    pub fn iter(&self) -> impl Iterator<Item = Frame<'_>> {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_back_apart_and_in_order() {
        let mut batch = FrameBatch::with_capacity(4, 64);
        let frames: [&[u8]; 3] = [b"first", b"", b"third frame"];
        for (i, data) in frames.iter().enumerate() {
            batch.push(&Frame {
                ts: Timestamp(i as i64),
                link: LinkType::Ethernet,
                data,
                original_len: 100 + i as u32,
            });
        }
        assert_eq!(batch.len(), 3);
        assert_eq!(batch.bytes(), 16);
        let back: Vec<_> = batch.iter().collect();
        for (i, f) in back.iter().enumerate() {
            assert_eq!(f.data, frames[i]);
            assert_eq!(f.ts, Timestamp(i as i64));
            assert_eq!(f.original_len, 100 + i as u32);
        }
        assert!(batch.get(3).is_none());
        batch.clear();
        assert!(batch.is_empty());
        assert!(batch.get(0).is_none());
    }

    #[test]
    fn a_frame_is_peeked_as_peek_udp_sees_it() {
        use crate::synth::wire::{build_udp_frame, Endpoint, IpFields};
        let end = |ip: &str, port: u16| Endpoint {
            mac: [2, 0, 0, 0, 0, 1],
            ip: ip.parse().unwrap(),
            port,
        };
        let ip = IpFields { id: 1, ttl: 64 };
        let mut frames: Vec<Vec<u8>> = Vec::new();
        let mut buf = Vec::new();
        // IPv4 UDP, plain and VLAN-tagged; over IPv6 (left to the decoder);
        // then one cut short, and garbage.
        for (vlans, src, dst) in [
            (&[][..], end("10.0.0.1", 4000), end("10.0.0.2", 5000)),
            (&[100][..], end("10.0.0.1", 4000), end("10.0.0.2", 5000)),
            (&[][..], end("2001:db8::1", 4000), end("2001:db8::2", 5000)),
            (
                &[][..],
                end("192.0.2.7", 10_000),
                end("198.51.100.9", 20_000),
            ),
        ] {
            assert!(build_udp_frame(&mut buf, vlans, &src, &dst, ip, |p| {
                p.extend_from_slice(&[0x80, 0, 0, 1, 2, 3]);
            }));
            frames.push(buf.clone());
        }
        let cut = frames[0][..30].to_vec();
        frames.push(cut);
        frames.push(vec![0xAB; 60]);
        let mut batch = FrameBatch::with_capacity(2, 16);
        for data in &frames {
            batch.push(&Frame {
                ts: Timestamp(0),
                link: LinkType::Ethernet,
                data,
                original_len: data.len() as u32,
            });
        }
        let mut accepted = 0;
        for (i, data) in frames.iter().enumerate() {
            let want = peek_udp(LinkType::Ethernet, data);
            let got = batch.peeked(i);
            match (want, got) {
                (None, None) => {}
                (Some(w), Some(g)) => {
                    accepted += 1;
                    assert_eq!((w.transport, w.src, w.dst), (g.transport, g.src, g.dst));
                    assert_eq!(w.payload, g.payload);
                    // Borrowed from the batch's copy of the frame.
                    let frame = batch.get(i).unwrap();
                    let range = frame.data.as_ptr_range();
                    assert!(range.contains(&g.payload.as_ptr()));
                }
                (w, g) => panic!("frame {i}: peek_udp {w:?}, batch {g:?}"),
            }
        }
        assert_eq!(accepted, 3);
        assert!(batch.peeked(frames.len()).is_none());
    }
}
