//! Splits fuzz input into a sequence of captured frames with increasing
//! timestamps. Record layout: flags (u8: low 3 bits pick the link type, bit 7
//! means the time step is in seconds rather than 100 us units), time step
//! (u16 BE), frame length (u16 BE), then the frame bytes (the rest of the
//! input when it is shorter). `fuzz/make_seeds.py` writes captures in this
//! layout.

#![allow(dead_code)]

use taprec::capture::LinkType;
use taprec::Timestamp;

const LINKS: [LinkType; 8] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::RawIp,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::Null,
    LinkType::Ethernet,
];

/// Start of the synthetic capture clock: 2024-01-01T00:00:00Z.
pub const START_NANOS: i64 = 1_704_067_200_000_000_000;

/// Iterator over the frames of one fuzz input.
pub struct Frames<'a> {
    data: &'a [u8],
    nanos: i64,
}

/// The frames of `data`.
pub fn frames(data: &[u8]) -> Frames<'_> {
    Frames {
        data,
        nanos: START_NANOS,
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = (Timestamp, LinkType, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (head, rest) = self.data.split_at_checked(5)?;
        let flags = head[0];
        let step = i64::from(u16::from_be_bytes([head[1], head[2]]));
        let len = usize::from(u16::from_be_bytes([head[3], head[4]])).min(rest.len());
        let (frame, rest) = rest.split_at(len);
        self.data = rest;
        let unit = if flags & 0x80 != 0 {
            1_000_000_000
        } else {
            100_000
        };
        self.nanos = self.nanos.saturating_add(step * unit);
        let link = LINKS[usize::from(flags & 7)];
        Some((Timestamp(self.nanos), link, frame))
    }
}

/// True when `inner` lies within `outer` in memory.
pub fn within(outer: &[u8], inner: &[u8]) -> bool {
    let o = outer.as_ptr_range();
    let i = inner.as_ptr_range();
    inner.is_empty() || (o.start <= i.start && i.end <= o.end)
}
