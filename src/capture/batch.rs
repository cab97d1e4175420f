//! A batch of frames copied out of a capture source into one buffer.
//!
//! The recorder looks a few frames ahead to prefetch the call state they
//! will touch ([`Recorder::handle_batch`](crate::recorder::Recorder::handle_batch)),
//! which needs several frames alive at once; a file reader or the live ring
//! hands out one borrowed frame at a time. Copying them into a batch costs
//! one `memcpy` of a few hundred bytes a frame into a buffer that stays in
//! cache, and nothing is allocated once the buffer has grown to its size.

use super::{Frame, LinkType};
use crate::Timestamp;

/// Where one frame lies in the batch's buffer.
#[derive(Debug, Clone, Copy)]
struct Entry {
    ts: Timestamp,
    link: LinkType,
    start: usize,
    len: usize,
    original_len: u32,
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
}
