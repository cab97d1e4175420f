//! Bounded IPv4 and IPv6 fragment reassembly.
//!
//! Fragments are grouped by [`FragmentKey`] (source, destination, protocol,
//! identification). Each partial datagram keeps one buffer, grown to the
//! highest byte seen, and the sorted list of byte ranges received. Data of
//! overlapping or duplicate fragments simply overwrites what was there; the
//! ranges are merged, so duplicates cost nothing.
//!
//! Invariants (checked after every call, see the tests):
//! - [`Reassembler::held_bytes`] (buffer and range-list capacity of all
//!   partial datagrams) never exceeds [`FragmentLimits::max_total_bytes`];
//!   the one completed datagram kept for the caller comes on top of that and
//!   is at most [`FragmentLimits::max_datagram_bytes`].
//! - At most [`FragmentLimits::max_datagrams`] partial datagrams exist.
//! - When a limit is hit, the oldest partial datagram is dropped and counted
//!   in [`Reassembler::dropped`]; so is one older than the timeout, measured
//!   in capture time (the timestamps passed in), never the system clock.

use super::{DecodeError, FragmentLimits};
use crate::Timestamp;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::net::IpAddr;

/// Received ranges one datagram may have before it is considered an attack
/// and dropped (a real datagram has a handful of fragments).
const MAX_RANGES: usize = 64;

/// Identifies the datagram a fragment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentKey {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Upper-layer protocol (IPv6: the fragment header's next header).
    pub protocol: u8,
    /// Identification (16 bits for IPv4, 32 for IPv6).
    pub id: u32,
}

/// What [`Reassembler::push`] did with a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// Stored; the datagram is still incomplete.
    Held,
    /// The datagram is complete: read it with [`Reassembler::completed`].
    Complete,
    /// The fragment's datagram was dropped because of a limit.
    Dropped,
}

/// One datagram being reassembled.
#[derive(Debug)]
struct Partial {
    /// Insertion sequence number, to recognise stale entries in `order`.
    seq: u64,
    /// Capture time of the first fragment.
    created: Timestamp,
    /// Reassembled bytes so far (holes are zero).
    buf: Vec<u8>,
    /// Received byte ranges, sorted, disjoint and not adjacent.
    ranges: Vec<(usize, usize)>,
    /// Payload length, once the last fragment has been seen.
    total: Option<usize>,
}

impl Partial {
    /// Bytes this datagram holds (what counts against the limits).
    fn cost(&self) -> usize {
        self.buf.capacity() + self.ranges.capacity() * std::mem::size_of::<(usize, usize)>()
    }

    /// Adds `start..end` to the received ranges, merging overlaps and
    /// neighbours. Returns false when the range list would grow past
    /// [`MAX_RANGES`].
    ///
    /// `partition_point` returns at most the length, and the merge branch
    /// runs only when `first < last`, so the checked lookups always succeed.
    fn insert_range(&mut self, start: usize, end: usize) -> bool {
        // First range that ends at or after `start` (could touch or overlap).
        let first = self.ranges.partition_point(|&(_, e)| e < start);
        // Ranges from `first` up to `last` (exclusive) touch or overlap.
        let tail = self.ranges.get(first..).unwrap_or_default();
        let last = first + tail.partition_point(|&(s, _)| s <= end);
        if first == last {
            if self.ranges.len() >= MAX_RANGES {
                return false;
            }
            if self.ranges.len() == self.ranges.capacity() {
                // Grow in small exact steps so the accounted cost stays tight.
                self.ranges
                    .reserve_exact(self.ranges.len().clamp(4, MAX_RANGES));
            }
            self.ranges.insert(first, (start, end));
        } else {
            let (Some(&(first_start, _)), Some(&(_, last_end))) =
                (self.ranges.get(first), self.ranges.get(last - 1))
            else {
                return false;
            };
            self.ranges.drain(first + 1..last);
            if let Some(range) = self.ranges.get_mut(first) {
                *range = (first_start.min(start), last_end.max(end));
            }
        }
        true
    }

    /// True when every byte up to the known total has arrived.
    fn is_complete(&self) -> bool {
        matches!((self.total, self.ranges.as_slice()), (Some(total), [(0, end)]) if *end == total)
    }
}

/// Reassembles fragmented IP datagrams within fixed memory and time limits.
#[derive(Debug)]
pub struct Reassembler {
    limits: FragmentLimits,
    partials: FxHashMap<FragmentKey, Partial>,
    /// Keys in insertion order (oldest first); entries whose partial is gone
    /// or was re-created (different `seq`) are stale and skipped.
    order: VecDeque<(u64, FragmentKey)>,
    next_seq: u64,
    held: usize,
    dropped: u64,
    /// The last completed datagram, lent out by [`Reassembler::completed`].
    completed: Vec<u8>,
}

impl Reassembler {
    /// An empty reassembler with the given limits.
    pub fn new(limits: FragmentLimits) -> Self {
        Reassembler {
            limits,
            partials: FxHashMap::default(),
            order: VecDeque::new(),
            next_seq: 0,
            held: 0,
            dropped: 0,
            completed: Vec::new(),
        }
    }

    /// Adds one fragment captured at `now`: `data` goes at byte `offset` of
    /// the datagram's payload; `more` is the more-fragments flag.
    ///
    /// Returns [`DecodeError::Malformed`] (and drops the datagram) when the
    /// fragment contradicts earlier ones: a second, different end, or data
    /// past the end.
    pub fn push(
        &mut self,
        now: Timestamp,
        key: FragmentKey,
        offset: usize,
        more: bool,
        data: &[u8],
    ) -> Result<Push, DecodeError> {
        self.expire(now);
        let end = offset.saturating_add(data.len());
        if end > self.limits.max_datagram_bytes {
            self.drop_key(&key);
            self.dropped += 1;
            return Ok(Push::Dropped);
        }
        if !self.partials.contains_key(&key) {
            if self.limits.max_datagrams == 0 {
                self.dropped += 1;
                return Ok(Push::Dropped);
            }
            while self.partials.len() >= self.limits.max_datagrams {
                if !self.drop_oldest() {
                    break;
                }
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            self.partials.insert(
                key,
                Partial {
                    seq,
                    created: now,
                    buf: Vec::new(),
                    ranges: Vec::new(),
                    total: None,
                },
            );
            self.order.push_back((seq, key));
        }

        // Consistency with what is known about the datagram's end.
        let inconsistent = self.partials.get(&key).is_some_and(|p| match p.total {
            Some(total) => end > total || (!more && end != total),
            None => !more && p.ranges.last().is_some_and(|&(_, e)| e > end),
        });
        if inconsistent {
            self.drop_key(&key);
            self.dropped += 1;
            return Err(DecodeError::Malformed);
        }

        // Make room before growing: the buffer grows to `end`, the range list
        // by at most a few entries.
        let growth = self.partials.get(&key).map_or(0, |p| {
            end.saturating_sub(p.buf.capacity())
                + if p.ranges.len() == p.ranges.capacity() {
                    p.ranges.len().clamp(4, MAX_RANGES) * std::mem::size_of::<(usize, usize)>()
                } else {
                    0
                }
        });
        while self.held.saturating_add(growth) > self.limits.max_total_bytes {
            if self.oldest_is(&key) || !self.drop_oldest() {
                self.drop_key(&key);
                self.dropped += 1;
                return Ok(Push::Dropped);
            }
        }

        let Some(partial) = self.partials.get_mut(&key) else {
            return Ok(Push::Dropped);
        };
        let before = partial.cost();
        if partial.buf.len() < end {
            partial
                .buf
                .reserve_exact(end.saturating_sub(partial.buf.len()));
        }
        // Overwrite what overlaps, zero-fill a gap, append the rest.
        let overlap = partial.buf.len().saturating_sub(offset).min(data.len());
        if let Some(slot) = partial.buf.get_mut(offset..offset + overlap) {
            slot.copy_from_slice(data.get(..overlap).unwrap_or_default());
        }
        if partial.buf.len() < offset {
            partial.buf.resize(offset, 0);
        }
        partial
            .buf
            .extend_from_slice(data.get(overlap..).unwrap_or_default());
        let ranges_ok = data.is_empty() || partial.insert_range(offset, end);
        if !more {
            partial.total = Some(end);
        }
        let after = partial.cost();
        let complete = partial.is_complete();
        self.held = self.held - before + after;

        if !ranges_ok {
            self.drop_key(&key);
            self.dropped += 1;
            return Ok(Push::Dropped);
        }
        if complete {
            if let Some(done) = self.partials.remove(&key) {
                self.held -= done.cost();
                let total = done.total.unwrap_or(0);
                self.completed = done.buf;
                self.completed.truncate(total);
            }
            self.compact_order();
            return Ok(Push::Complete);
        }
        // Allocators may round capacities up: re-check the bound.
        while self.held > self.limits.max_total_bytes {
            if !self.drop_oldest() {
                break;
            }
        }
        if self.partials.contains_key(&key) {
            Ok(Push::Held)
        } else {
            Ok(Push::Dropped)
        }
    }

    /// The datagram completed by the last [`Push::Complete`]: its payload,
    /// starting at the upper-layer header.
    pub fn completed(&self) -> &[u8] {
        &self.completed
    }

    /// Drops partial datagrams whose first fragment is older than the
    /// timeout at capture time `now`.
    pub fn expire(&mut self, now: Timestamp) {
        while let Some(&(seq, key)) = self.order.front() {
            match self.partials.get(&key) {
                Some(p) if p.seq == seq => {
                    if now.nanos_since(p.created) <= self.limits.timeout_nanos {
                        break;
                    }
                    self.drop_key(&key);
                    self.dropped += 1;
                }
                _ => {
                    self.order.pop_front();
                }
            }
        }
    }

    /// Bytes held by partial datagrams.
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// Partial datagrams being reassembled.
    pub fn in_progress(&self) -> usize {
        self.partials.len()
    }

    /// Partial datagrams dropped so far (limits, timeouts, bad fragments).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// True when the oldest live partial datagram is `key`.
    fn oldest_is(&mut self, key: &FragmentKey) -> bool {
        self.skip_stale();
        self.order.front().is_some_and(|(_, k)| k == key)
    }

    /// Drops the oldest partial datagram; false when there is none.
    fn drop_oldest(&mut self) -> bool {
        self.skip_stale();
        match self.order.front() {
            Some(&(_, key)) => {
                self.drop_key(&key);
                self.dropped += 1;
                true
            }
            None => false,
        }
    }

    fn skip_stale(&mut self) {
        while let Some(&(seq, key)) = self.order.front() {
            if self.partials.get(&key).is_some_and(|p| p.seq == seq) {
                return;
            }
            self.order.pop_front();
        }
    }

    /// Removes `key`'s partial datagram (not counted here).
    fn drop_key(&mut self, key: &FragmentKey) {
        if let Some(p) = self.partials.remove(key) {
            self.held -= p.cost();
        }
        self.compact_order();
    }

    /// Keeps the order queue proportional to the live datagrams.
    fn compact_order(&mut self) {
        if self.order.len() > 2 * self.partials.len() + 64 {
            let partials = &self.partials;
            self.order
                .retain(|(seq, key)| partials.get(key).is_some_and(|p| p.seq == *seq));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(id: u32) -> FragmentKey {
        FragmentKey {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            protocol: 17,
            id,
        }
    }

    fn payload(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + 3) as u8).collect()
    }

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_parts(secs, 0)
    }

    #[test]
    fn in_order_fragments_reassemble() {
        let data = payload(3000);
        let mut r = Reassembler::new(FragmentLimits::default());
        assert_eq!(r.push(t(0), key(1), 0, true, &data[..1480]), Ok(Push::Held));
        assert_eq!(
            r.push(t(0), key(1), 1480, true, &data[1480..2960]),
            Ok(Push::Held)
        );
        assert_eq!(
            r.push(t(0), key(1), 2960, false, &data[2960..]),
            Ok(Push::Complete)
        );
        assert_eq!(r.completed(), &data[..]);
        assert_eq!((r.in_progress(), r.held_bytes(), r.dropped()), (0, 0, 0));
    }

    #[test]
    fn out_of_order_and_duplicate_fragments_reassemble() {
        let data = payload(2000);
        let mut r = Reassembler::new(FragmentLimits::default());
        assert_eq!(
            r.push(t(0), key(2), 1600, false, &data[1600..]),
            Ok(Push::Held)
        );
        assert_eq!(
            r.push(t(0), key(2), 800, true, &data[800..1600]),
            Ok(Push::Held)
        );
        assert_eq!(
            r.push(t(0), key(2), 800, true, &data[800..1600]),
            Ok(Push::Held)
        );
        // overlapping the first two
        assert_eq!(
            r.push(t(0), key(2), 400, true, &data[400..1200]),
            Ok(Push::Held)
        );
        assert_eq!(
            r.push(t(0), key(2), 0, true, &data[..800]),
            Ok(Push::Complete)
        );
        assert_eq!(r.completed(), &data[..]);
        // A late duplicate starts a new partial, which times out later.
        assert_eq!(r.push(t(1), key(2), 0, true, &data[..800]), Ok(Push::Held));
        r.expire(t(100));
        assert_eq!((r.in_progress(), r.dropped()), (0, 1));
    }

    #[test]
    fn interleaved_datagrams_are_kept_apart() {
        let a = payload(100);
        let b: Vec<u8> = a.iter().map(|x| !x).collect();
        let mut r = Reassembler::new(FragmentLimits::default());
        r.push(t(0), key(1), 0, true, &a[..48]).unwrap();
        r.push(t(0), key(2), 48, false, &b[48..]).unwrap();
        assert_eq!(
            r.push(t(0), key(1), 48, false, &a[48..]),
            Ok(Push::Complete)
        );
        assert_eq!(r.completed(), &a[..]);
        assert_eq!(r.push(t(0), key(2), 0, true, &b[..48]), Ok(Push::Complete));
        assert_eq!(r.completed(), &b[..]);
    }

    #[test]
    fn timeout_uses_capture_time() {
        let limits = FragmentLimits {
            timeout_nanos: 5_000_000_000,
            ..FragmentLimits::default()
        };
        let mut r = Reassembler::new(limits);
        r.push(t(100), key(1), 0, true, &[1; 8]).unwrap();
        r.expire(t(104));
        assert_eq!(r.in_progress(), 1);
        // The rest arrives too late: the first part was dropped meanwhile.
        assert_eq!(r.push(t(106), key(1), 8, false, &[2; 8]), Ok(Push::Held));
        assert_eq!(r.dropped(), 1);
        // Time going backwards never expires anything.
        r.expire(t(0));
        assert_eq!(r.in_progress(), 1);
    }

    #[test]
    fn datagram_limit_drops_oldest() {
        let limits = FragmentLimits {
            max_datagrams: 2,
            ..FragmentLimits::default()
        };
        let mut r = Reassembler::new(limits);
        for id in 1..=3 {
            r.push(t(0), key(id), 0, true, &[0; 8]).unwrap();
        }
        assert_eq!((r.in_progress(), r.dropped()), (2, 1));
        // key 1 was the oldest: its tail now starts a fresh partial.
        assert_eq!(r.push(t(0), key(1), 8, false, &[0; 8]), Ok(Push::Held));
        assert_eq!(r.push(t(0), key(3), 8, false, &[0; 8]), Ok(Push::Complete));
    }

    #[test]
    fn size_limits_drop() {
        let limits = FragmentLimits {
            max_datagram_bytes: 1000,
            max_total_bytes: 1500,
            ..FragmentLimits::default()
        };
        let mut r = Reassembler::new(limits);
        assert_eq!(r.push(t(0), key(1), 992, true, &[0; 16]), Ok(Push::Dropped));
        assert_eq!(r.push(t(0), key(2), 0, true, &[0; 800]), Ok(Push::Held));
        // needs 800 more bytes: key 2 (oldest) goes
        assert_eq!(r.push(t(0), key(3), 0, true, &[0; 800]), Ok(Push::Held));
        assert_eq!(r.in_progress(), 1);
        assert_eq!(r.dropped(), 2);
        assert!(r.held_bytes() <= 1500);
    }

    #[test]
    fn contradicting_ends_are_malformed() {
        let mut r = Reassembler::new(FragmentLimits::default());
        assert_eq!(r.push(t(0), key(1), 0, false, &[0; 16]), Ok(Push::Complete));
        r.push(t(0), key(2), 16, false, &[0; 16]).unwrap();
        assert_eq!(
            r.push(t(0), key(2), 24, true, &[0; 16]),
            Err(DecodeError::Malformed)
        );
        r.push(t(0), key(3), 32, true, &[0; 16]).unwrap();
        assert_eq!(
            r.push(t(0), key(3), 0, false, &[0; 8]),
            Err(DecodeError::Malformed)
        );
        assert_eq!(r.in_progress(), 0);
    }

    #[test]
    fn too_many_ranges_drop_the_datagram() {
        let mut r = Reassembler::new(FragmentLimits::default());
        let mut last = Ok(Push::Held);
        for i in 0..=MAX_RANGES {
            last = r.push(t(0), key(1), i * 16, true, &[1; 8]);
        }
        assert_eq!(last, Ok(Push::Dropped));
        assert_eq!((r.in_progress(), r.held_bytes()), (0, 0));
    }

    #[test]
    fn empty_fragments_do_not_panic() {
        let mut r = Reassembler::new(FragmentLimits::default());
        assert_eq!(r.push(t(0), key(1), 0, true, &[]), Ok(Push::Held));
        assert_eq!(r.push(t(0), key(1), 0, false, &[]), Ok(Push::Held));
        let zero = FragmentLimits {
            max_datagrams: 0,
            ..FragmentLimits::default()
        };
        let mut none = Reassembler::new(zero);
        assert_eq!(none.push(t(0), key(1), 0, true, &[1]), Ok(Push::Dropped));
    }

    #[test]
    fn a_million_random_fragments_stay_within_limits() {
        let limits = FragmentLimits {
            max_datagrams: 64,
            max_datagram_bytes: 65_535,
            max_total_bytes: 64 << 10,
            timeout_nanos: 2_000_000_000,
        };
        let mut r = Reassembler::new(limits);
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let data = payload(2000);
        let mut completed = 0;
        for i in 0..1_000_000u64 {
            let x = next();
            let id = (x % 512) as u32;
            let offset = ((x >> 16) % 512) as usize * 8;
            let len = ((x >> 32) % 600) as usize;
            let more = (x >> 48) % 4 != 0;
            let now = Timestamp((i as i64) * 1_000_000 - ((x >> 56) as i64) * 50_000_000);
            if let Ok(Push::Complete) = r.push(now, key(id), offset, more, &data[..len]) {
                completed += 1;
                assert!(r.completed().len() <= limits.max_datagram_bytes);
            }
            assert!(r.held_bytes() <= limits.max_total_bytes);
            assert!(r.in_progress() <= limits.max_datagrams);
            assert!(r.order.len() <= 2 * r.partials.len() + 65);
        }
        let recount: usize = r.partials.values().map(Partial::cost).sum();
        assert_eq!(recount, r.held_bytes());
        assert!(r.dropped() > 0);
        assert!(completed > 0);
    }
}
