//! Per-source rate limiting of new calls: a token bucket per source IP
//! address, in a table of bounded size, on the capture clock.
//!
//! A source may start `burst` calls at once and `rate` calls per second on
//! average after that; a new dialog from a source whose bucket is empty is
//! not tracked (the caller counts it). The table holds at most `max_sources`
//! buckets: when it is full, buckets that have refilled completely (idle
//! sources, indistinguishable from new ones) are forgotten first, and if that
//! frees nothing the whole table is reset, so a flood from many addresses
//! costs bounded memory and at worst lets some calls through.

use crate::Timestamp;
use rustc_hash::FxHashMap;
use std::net::IpAddr;

/// Token units per call: buckets count in millitokens for integer math.
const MILLI: u64 = 1000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Millitokens available.
    tokens: u64,
    /// When `tokens` was last brought up to date.
    updated: Timestamp,
}

/// Token buckets per source address; see the module doc.
#[derive(Debug)]
pub struct SourceLimiter {
    /// Calls per second per source; 0 disables the limiter.
    rate: u64,
    /// Bucket size in calls.
    burst: u64,
    max_sources: usize,
    buckets: FxHashMap<IpAddr, Bucket>,
    resets: u64,
}

impl SourceLimiter {
    /// A limiter allowing `rate` new calls per second from one source with
    /// bursts of `burst`, remembering at most `max_sources` sources. A `rate`
    /// of 0 allows everything.
    pub fn new(rate: u32, burst: u32, max_sources: usize) -> Self {
        SourceLimiter {
            rate: u64::from(rate),
            burst: u64::from(burst.max(1)),
            max_sources: max_sources.max(1),
            buckets: FxHashMap::default(),
            resets: 0,
        }
    }

    /// Takes one call from `source`'s bucket at capture time `now`; false
    /// when the source is over its rate.
    pub fn allow(&mut self, source: IpAddr, now: Timestamp) -> bool {
        if self.rate == 0 {
            return true;
        }
        let full = self.burst * MILLI;
        if !self.buckets.contains_key(&source) && self.buckets.len() >= self.max_sources {
            self.make_room(now);
        }
        let bucket = self.buckets.entry(source).or_insert(Bucket {
            tokens: full,
            updated: now,
        });
        let elapsed = u64::try_from(now.nanos_since(bucket.updated)).unwrap_or(0);
        if elapsed > 0 {
            // rate calls/s = rate * MILLI millitokens per 1e9 ns.
            let earned = u128::from(elapsed) * u128::from(self.rate * MILLI) / 1_000_000_000;
            let earned = u64::try_from(earned).unwrap_or(u64::MAX);
            bucket.tokens = bucket.tokens.saturating_add(earned).min(full);
            bucket.updated = now;
        }
        if bucket.tokens >= MILLI {
            bucket.tokens -= MILLI;
            true
        } else {
            false
        }
    }

    /// Sources remembered now.
    pub fn sources(&self) -> usize {
        self.buckets.len()
    }

    /// Times the table was full of active sources and was reset.
    pub fn resets(&self) -> u64 {
        self.resets
    }

    fn make_room(&mut self, now: Timestamp) {
        let (rate, full) = (self.rate, self.burst * MILLI);
        self.buckets.retain(|_, b| {
            let elapsed = u64::try_from(now.nanos_since(b.updated)).unwrap_or(0);
            let earned = u128::from(elapsed) * u128::from(rate * MILLI) / 1_000_000_000;
            u128::from(b.tokens) + earned < u128::from(full)
        });
        if self.buckets.len() >= self.max_sources {
            self.buckets.clear();
            self.resets += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn burst_then_rate() {
        let mut l = SourceLimiter::new(2, 3, 16);
        let t0 = Timestamp(1_000_000_000);
        let a = ip("10.0.0.1");
        assert!(l.allow(a, t0));
        assert!(l.allow(a, t0));
        assert!(l.allow(a, t0));
        assert!(!l.allow(a, t0), "burst of 3 used up");
        // Other sources are not affected.
        assert!(l.allow(ip("10.0.0.2"), t0));
        // 2 calls/s: one more after 500 ms, not before.
        assert!(!l.allow(a, t0.add_nanos(400_000_000)));
        assert!(l.allow(a, t0.add_nanos(500_000_000)));
        assert!(!l.allow(a, t0.add_nanos(500_000_000)));
        // Refill never exceeds the burst.
        let later = t0.add_secs(100);
        for _ in 0..3 {
            assert!(l.allow(a, later));
        }
        assert!(!l.allow(a, later));
    }

    #[test]
    fn zero_rate_allows_everything() {
        let mut l = SourceLimiter::new(0, 1, 1);
        for _ in 0..1000 {
            assert!(l.allow(ip("10.0.0.1"), Timestamp(0)));
        }
        assert_eq!(l.sources(), 0);
    }

    #[test]
    fn table_stays_bounded() {
        let mut l = SourceLimiter::new(1, 1, 100);
        let t = Timestamp(0);
        for i in 0..10_000u32 {
            let addr = IpAddr::from(i.to_be_bytes());
            l.allow(addr, t);
            assert!(l.sources() <= 100);
        }
        assert!(l.resets() > 0);
        // Idle sources are forgotten first: after they refill, new sources
        // make room without a reset.
        let mut l = SourceLimiter::new(1, 1, 2);
        l.allow(ip("10.0.0.1"), t);
        l.allow(ip("10.0.0.2"), t);
        l.allow(ip("10.0.0.3"), t.add_secs(5));
        assert_eq!(l.resets(), 0);
        assert_eq!(l.sources(), 1);
    }
}
