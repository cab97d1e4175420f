//! Duplicate media: the same RTP packet seen twice (two SPAN sources, a
//! loopback capture, the same stream mirrored on two links) and the same
//! conversation's media seen on two hops of one call.
//!
//! Rules, per recording channel (one sender):
//! - **Packet copies.** A packet whose SSRC, sequence number and RTP
//!   timestamp were already placed on the channel is a copy and is dropped.
//!   A 128-packet window (2.5 s of 20 ms packets) behind the highest
//!   sequence number is remembered as a bitmap plus each slot's timestamp;
//!   packets older than that are left to the timeline (which drops them as
//!   late). A new SSRC restarts the window. The same sequence number with
//!   another timestamp is a new packet (a sender that restarted its
//!   numbering), not a copy.
//! - **Hop copies.** The channel locks onto the first network path
//!   (source and destination address) that delivers its media. Media for the
//!   same channel on another path (a second hop of the same call behind an
//!   SBC or proxy that re-originates the stream) is ignored while the locked
//!   path is alive; once the locked path has been silent for `hop_idle`, the
//!   next path takes over (the media really moved, e.g. after a re-INVITE).
//!
//! Both checks are O(1) per packet and allocate nothing.

use crate::Timestamp;
use std::net::SocketAddr;

/// What the filter says about one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A new packet: place it.
    Fresh,
    /// The same SSRC and sequence number was already placed on this channel.
    Copy,
    /// The channel is locked onto another path that is still alive.
    OtherHop,
}

/// Per-channel duplicate filter; see the module doc.
///
/// `repr(C)`: the fields every packet reads come first (two cache lines),
/// the timestamp window after them.
#[derive(Debug, Clone)]
#[repr(C)]
pub struct ChannelFilter {
    path: Option<(SocketAddr, SocketAddr)>,
    path_seen: Timestamp,
    ssrc: Option<u32>,
    top: u16,
    /// Bit `i` set: sequence number `top - i` was seen.
    seen: u128,
    /// RTP timestamp of the packet seen with sequence number `s`, at
    /// `s % WINDOW`.
    stamps: [u32; WINDOW as usize],
    /// Packets dropped as copies.
    pub copies: u64,
    /// Packets dropped as another hop's media.
    pub other_hop: u64,
    /// Times the channel moved to another path.
    pub path_changes: u64,
}

/// Packets behind the highest sequence number that are remembered.
const WINDOW: u16 = 128;

impl Default for ChannelFilter {
    fn default() -> Self {
        ChannelFilter {
            path: None,
            path_seen: Timestamp::default(),
            ssrc: None,
            top: 0,
            seen: 0,
            stamps: [0; WINDOW as usize],
            copies: 0,
            other_hop: 0,
            path_changes: 0,
        }
    }
}

impl ChannelFilter {
    /// A filter with no history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Hints the memory [`check`](Self::check) of a packet with sequence
    /// number `seq` will read; changes nothing.
    pub fn prefetch(&self, seq: u16) {
        crate::prefetch::lines_of(self, 112);
        if let Some(stamp) = self.stamps.get(usize::from(seq % WINDOW)) {
            crate::prefetch::line(stamp);
        }
    }

    /// Judges one packet of this channel. `drop_copies` and `lock_hop` switch
    /// the two rules on; `hop_idle_nanos` is how long a locked path must be
    /// silent before another takes over.
    #[allow(clippy::too_many_arguments)]
    pub fn check(
        &mut self,
        now: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
        ssrc: u32,
        seq: u16,
        timestamp: u32,
        drop_copies: bool,
        lock_hop: bool,
        hop_idle_nanos: i64,
    ) -> Verdict {
        if lock_hop {
            match self.path {
                Some(path) if path == (src, dst) => self.path_seen = now,
                Some(_) if now.nanos_since(self.path_seen) < hop_idle_nanos => {
                    self.other_hop += 1;
                    return Verdict::OtherHop;
                }
                Some(_) => {
                    self.path_changes += 1;
                    self.path = Some((src, dst));
                    self.path_seen = now;
                }
                None => {
                    self.path = Some((src, dst));
                    self.path_seen = now;
                }
            }
        }
        if !drop_copies {
            return Verdict::Fresh;
        }
        let stamp = usize::from(seq % WINDOW);
        if self.ssrc != Some(ssrc) {
            self.ssrc = Some(ssrc);
            self.top = seq;
            self.seen = 1;
            self.set_stamp(stamp, timestamp);
            return Verdict::Fresh;
        }
        let ahead = seq.wrapping_sub(self.top) as i16;
        if ahead > 0 {
            let shift = ahead as u32;
            self.seen = if shift >= u32::from(WINDOW) {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.top = seq;
            self.set_stamp(stamp, timestamp);
            return Verdict::Fresh;
        }
        let age = u32::from(ahead.unsigned_abs());
        if age >= u32::from(WINDOW) {
            return Verdict::Fresh;
        }
        let bit = 1u128 << age;
        if self.seen & bit != 0 && self.stamps.get(stamp) == Some(&timestamp) {
            self.copies += 1;
            return Verdict::Copy;
        }
        self.seen |= bit;
        self.set_stamp(stamp, timestamp);
        Verdict::Fresh
    }

    fn set_stamp(&mut self, at: usize, timestamp: u32) {
        if let Some(stamp) = self.stamps.get_mut(at) {
            *stamp = timestamp;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const IDLE: i64 = 1_000_000_000;

    fn ts(seq: u16) -> u32 {
        u32::from(seq) * 160
    }

    fn at(ms: i64) -> Timestamp {
        Timestamp(ms * 1_000_000)
    }

    #[test]
    fn copies_of_the_same_packet_are_dropped_reordered_ones_kept() {
        let mut f = ChannelFilter::new();
        let (s, d) = (a("10.0.0.1:4000"), a("10.0.0.2:5000"));
        let mut check = |ms, seq| f.check(at(ms), s, d, 7, seq, ts(seq), true, true, IDLE);
        assert_eq!(check(0, 100), Verdict::Fresh);
        assert_eq!(check(1, 100), Verdict::Copy, "second SPAN copy");
        assert_eq!(check(40, 102), Verdict::Fresh);
        assert_eq!(check(41, 101), Verdict::Fresh, "reordered, not a copy");
        assert_eq!(check(42, 101), Verdict::Copy);
        assert_eq!(check(43, 102), Verdict::Copy);
        // Wrap-around of the sequence number.
        assert_eq!(check(60, 65535), Verdict::Fresh, "far behind: unknown");
        // The same number with another timestamp: a restarted sender.
        assert_eq!(
            f.check(at(44), s, d, 7, 101, 999_999, true, true, IDLE),
            Verdict::Fresh
        );
        assert_eq!(
            f.check(at(45), s, d, 7, 101, 999_999, true, true, IDLE),
            Verdict::Copy
        );
        let mut g = ChannelFilter::new();
        assert_eq!(
            g.check(at(0), s, d, 7, 65535, ts(65535), true, true, IDLE),
            Verdict::Fresh
        );
        assert_eq!(
            g.check(at(20), s, d, 7, 0, ts(0), true, true, IDLE),
            Verdict::Fresh
        );
        assert_eq!(
            g.check(at(21), s, d, 7, 65535, ts(65535), true, true, IDLE),
            Verdict::Copy
        );
        assert_eq!(
            g.check(at(22), s, d, 7, 0, ts(0), true, true, IDLE),
            Verdict::Copy
        );
        assert_eq!(g.copies, 2);
    }

    #[test]
    fn a_new_ssrc_restarts_the_window_and_big_jumps_clear_it() {
        let mut f = ChannelFilter::new();
        let (s, d) = (a("10.0.0.1:4000"), a("10.0.0.2:5000"));
        assert_eq!(
            f.check(at(0), s, d, 1, 10, ts(10), true, true, IDLE),
            Verdict::Fresh
        );
        assert_eq!(
            f.check(at(1), s, d, 2, 10, ts(10), true, true, IDLE),
            Verdict::Fresh
        );
        assert_eq!(
            f.check(at(2), s, d, 2, 10, ts(10), true, true, IDLE),
            Verdict::Copy
        );
        assert_eq!(
            f.check(at(3), s, d, 2, 1000, ts(1000), true, true, IDLE),
            Verdict::Fresh
        );
        assert_eq!(
            f.check(at(4), s, d, 2, 999, ts(999), true, true, IDLE),
            Verdict::Fresh
        );
        // Switched off: everything is fresh.
        assert_eq!(
            f.check(at(5), s, d, 2, 999, ts(999), false, false, IDLE),
            Verdict::Fresh
        );
    }

    #[test]
    fn second_hop_is_ignored_until_the_first_goes_quiet() {
        let mut f = ChannelFilter::new();
        let hop1 = (a("10.0.0.1:4000"), a("10.0.0.2:5000"));
        let hop2 = (a("172.16.0.1:6000"), a("172.16.0.2:7000"));
        assert_eq!(
            f.check(at(0), hop1.0, hop1.1, 1, 1, ts(1), true, true, IDLE),
            Verdict::Fresh
        );
        assert_eq!(
            f.check(at(2), hop2.0, hop2.1, 9, 500, ts(500), true, true, IDLE),
            Verdict::OtherHop
        );
        assert_eq!(
            f.check(at(20), hop1.0, hop1.1, 1, 2, ts(2), true, true, IDLE),
            Verdict::Fresh
        );
        assert_eq!(
            f.check(at(900), hop2.0, hop2.1, 9, 501, ts(501), true, true, IDLE),
            Verdict::OtherHop
        );
        // Hop 1 silent for over a second: the media moved.
        assert_eq!(
            f.check(at(1100), hop2.0, hop2.1, 9, 502, ts(502), true, true, IDLE),
            Verdict::Fresh
        );
        assert_eq!(
            f.check(at(1120), hop1.0, hop1.1, 1, 3, ts(3), true, true, IDLE),
            Verdict::OtherHop
        );
        assert_eq!((f.other_hop, f.path_changes), (3, 1));
    }
}
