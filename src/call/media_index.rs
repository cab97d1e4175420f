//! The media index: which call and which party an RTP address belongs to.
//!
//! Keys are the addresses parties announce in SDP (where they receive RTP),
//! plus addresses learned from traffic (symmetric RTP behind NAT). A packet
//! sent TO a party's address was sent by the other party; a packet sent FROM
//! a party's address (symmetric RTP) was sent by that party.

use super::Role;
use crate::prefetch;
use std::net::SocketAddr;

/// Where an address leads: a call slot and the party that owns the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leg {
    /// The call's slot in the recorder's call table.
    pub slot: u32,
    /// The party that receives on (and usually sends from) the address.
    pub owner: Role,
    /// Learned from traffic rather than announced in SDP.
    pub learned: bool,
    /// Announced by the endpoint itself (the SDP's address is the address
    /// its SIP came from), rather than by a B2BUA or proxy on its behalf.
    pub firsthand: bool,
}

/// Address -> call leg. Lookups are the per-packet hot path: one probe of
/// an open-addressing table on a compact key, no allocation, and a
/// [`prefetch`](Self::prefetch) to start the probe's cache miss early.
#[derive(Debug, Default)]
pub struct MediaIndex {
    map: AddrTable,
    /// Bumped on every removal: a remembered `known_peer` of an older
    /// generation may have been removed since and is checked again.
    generation: u32,
}

/// A socket address as a compact hash key: the IP as 128 bits (IPv4 in the
/// low 32) and the port, with bit 16 of `port_family` set for IPv6, so an
/// IPv4 address and its IPv4-mapped IPv6 form stay distinct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    ip_high: u64,
    ip_low: u64,
    port_family: u32,
}

impl Key {
    fn new(addr: &SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(a) => Key {
                ip_high: 0,
                ip_low: u64::from(u32::from(*a.ip())),
                port_family: u32::from(a.port()),
            },
            SocketAddr::V6(a) => {
                let ip = u128::from(*a.ip());
                Key {
                    ip_high: (ip >> 64) as u64,
                    ip_low: ip as u64,
                    port_family: u32::from(a.port()) | 1 << 16,
                }
            }
        }
    }

    /// A well-mixed 64-bit hash; the table uses its top bits.
    fn hash(&self) -> u64 {
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut h = self.ip_low.wrapping_mul(K)
            ^ self
                .ip_high
                .rotate_left(23)
                .wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
            ^ u64::from(self.port_family).wrapping_mul(0x1656_67B1_9E37_79F9);
        h ^= h >> 29;
        h.wrapping_mul(K)
    }
}

/// Open addressing with linear probing and backward-shift deletion (no
/// tombstones), at most half full, so every probe ends at an empty bucket
/// within a short run. Grows by doubling; memory follows the largest number
/// of addresses indexed at once, which the call limits bound.
#[derive(Debug, Default)]
struct AddrTable {
    buckets: Vec<Bucket>,
    len: usize,
    /// Bumped whenever a key is added or removed or the table grows: a
    /// bucket number found under the same layout still holds its key.
    layout: u32,
}

/// One table entry, alone in its cache line: a probe that ends at its home
/// bucket reads one line, the one [`AddrTable::prefetch`] asked for (a
/// 48-byte entry packed next to others straddled two lines every other
/// bucket, and the second one was read cold).
#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
struct Bucket(Option<(Key, Entry)>);

impl AddrTable {
    const MIN_BUCKETS: usize = 16;

    fn slot(&self, i: usize) -> Option<&Option<(Key, Entry)>> {
        self.buckets.get(i).map(|b| &b.0)
    }

    fn slot_mut(&mut self, i: usize) -> Option<&mut Option<(Key, Entry)>> {
        self.buckets.get_mut(i).map(|b| &mut b.0)
    }

    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }

    /// The bucket where a probe for `key` starts.
    fn home(&self, key: &Key) -> usize {
        let bits = self.buckets.len().trailing_zeros();
        if bits == 0 {
            return 0;
        }
        (key.hash() >> (64 - bits)) as usize
    }

    /// The bucket holding `key`.
    fn find(&self, key: &Key) -> Option<usize> {
        let mask = self.mask();
        let mut i = self.home(key);
        for _ in 0..self.buckets.len() {
            match self.slot(i)? {
                None => return None,
                Some((k, _)) if k == key => return Some(i),
                Some(_) => i = (i + 1) & mask,
            }
        }
        None
    }

    fn prefetch(&self, key: &Key) {
        if let Some(bucket) = self.slot(self.home(key)) {
            prefetch::line(bucket);
        }
    }

    fn get(&self, key: &Key) -> Option<&Entry> {
        let i = self.find(key)?;
        self.slot(i)?.as_ref().map(|(_, e)| e)
    }

    fn get_mut(&mut self, key: &Key) -> Option<&mut Entry> {
        let i = self.find(key)?;
        self.slot_mut(i)?.as_mut().map(|(_, e)| e)
    }

    fn contains_key(&self, key: &Key) -> bool {
        self.find(key).is_some()
    }

    fn insert(&mut self, key: Key, entry: Entry) {
        if let Some(existing) = self.get_mut(&key) {
            *existing = entry;
            return;
        }
        if (self.len + 1) * 2 > self.buckets.len() {
            self.grow();
        }
        let mask = self.mask();
        let mut i = self.home(&key);
        while let Some(Some(_)) = self.slot(i) {
            i = (i + 1) & mask;
        }
        if let Some(bucket) = self.slot_mut(i) {
            *bucket = Some((key, entry));
            self.len += 1;
            self.layout = self.layout.wrapping_add(1);
        }
    }

    fn grow(&mut self) {
        let size = (self.buckets.len() * 2).max(Self::MIN_BUCKETS);
        let old = std::mem::replace(&mut self.buckets, vec![Bucket(None); size]);
        self.len = 0;
        self.layout = self.layout.wrapping_add(1);
        for (key, entry) in old.into_iter().filter_map(|b| b.0) {
            self.insert(key, entry);
        }
    }

    fn remove(&mut self, key: &Key) {
        let Some(mut hole) = self.find(key) else {
            return;
        };
        if let Some(bucket) = self.slot_mut(hole) {
            *bucket = None;
            self.len -= 1;
        }
        self.layout = self.layout.wrapping_add(1);
        // Shift the rest of the run back so no probe stops short at the hole.
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let Some(Some((k, _))) = self.slot(j) else {
                return;
            };
            let home = self.home(k);
            // `k` may fill the hole unless its home lies cyclically in
            // (hole, j]: then it was never probed past the hole.
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                let moved = self.slot_mut(j).and_then(Option::take);
                if let Some(bucket) = self.slot_mut(hole) {
                    *bucket = moved;
                }
                hole = j;
            }
        }
    }
}

/// The exact 64-bit form of an IPv4 socket address (bit 48 set so it is
/// never 0); IPv6 addresses have none.
fn short_form(addr: &SocketAddr) -> u64 {
    match addr {
        SocketAddr::V4(a) => 1 << 48 | u64::from(u32::from(*a.ip())) << 16 | u64::from(a.port()),
        SocketAddr::V6(_) => 0,
    }
}

/// A leg and, for the hot path, the last sender address seen to be indexed.
#[derive(Debug, Clone, Copy)]
struct Entry {
    leg: Leg,
    /// [`short_form`] of the last source address of a packet sent to this
    /// address that was itself found in the index (0: none). Saves the
    /// second probe for every following packet of the same stream.
    known_peer: u64,
    /// [`MediaIndex::generation`] when `known_peer` was checked.
    known_generation: u32,
}

/// Which party sent a matched RTP packet, and how it was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    /// The call's slot.
    pub slot: u32,
    /// The party that sent the packet.
    pub sender: Role,
    /// True when matched by destination (the receiver's announced address).
    pub by_destination: bool,
    /// True when the source address is indexed too (to this call or another
    /// one): nothing to learn from it. Always true for a source match.
    pub source_known: bool,
}

/// What [`MediaIndex::peek`] found for a destination address: the call and
/// sender, and where in the table, for [`MediaIndex::lookup_peeked`] to
/// start from while nothing has been added or removed since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peeked {
    /// The call's slot.
    pub slot: u32,
    /// The party that sent a packet to the address.
    pub sender: Role,
    bucket: u32,
    layout: u32,
}

impl MediaIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Announces that `owner` of call `slot` receives on `addr` (from SDP).
    /// The latest announcement of an address wins, except that a secondhand
    /// one (a B2BUA passing on the other leg's address) never takes an
    /// address from another call that its endpoint announced firsthand.
    /// Returns true when the address now leads to `slot`.
    pub fn announce(&mut self, addr: SocketAddr, slot: u32, owner: Role, firsthand: bool) -> bool {
        let key = Key::new(&addr);
        if let Some(Entry { leg: existing, .. }) = self.map.get(&key) {
            if existing.slot != slot && existing.firsthand && !existing.learned && !firsthand {
                return false;
            }
        }
        self.map.insert(
            key,
            Entry {
                leg: Leg {
                    slot,
                    owner,
                    learned: false,
                    firsthand,
                },
                known_peer: 0,
                known_generation: 0,
            },
        );
        true
    }

    /// Records that `owner` of call `slot` sends from `addr` (symmetric RTP),
    /// unless the address is already known. Returns true when it was added.
    pub fn learn(&mut self, addr: SocketAddr, slot: u32, owner: Role) -> bool {
        let key = Key::new(&addr);
        if self.map.contains_key(&key) {
            return false;
        }
        self.map.insert(
            key,
            Entry {
                leg: Leg {
                    slot,
                    owner,
                    learned: true,
                    firsthand: false,
                },
                known_peer: 0,
                known_generation: 0,
            },
        );
        true
    }

    /// Starts loading the memory a [`lookup`](Self::lookup) or
    /// [`peek`](Self::peek) of `dst` will read: a hint, changes nothing.
    pub fn prefetch(&self, dst: &SocketAddr) {
        self.map.prefetch(&Key::new(dst));
    }

    /// Matches a packet by its destination first, then by its source.
    pub fn lookup(&mut self, src: SocketAddr, dst: SocketAddr) -> Option<Match> {
        match self.map.find(&Key::new(&dst)) {
            Some(bucket) => self.by_destination(bucket, src),
            None => self.by_source(src),
        }
    }

    /// [`lookup`](Self::lookup) of a packet whose destination was peeked
    /// (`peeked` is what [`peek`](Self::peek) said of `dst`): the peek's
    /// bucket is used again when the table has not changed since, so the
    /// destination is not probed twice.
    pub fn lookup_peeked(
        &mut self,
        peeked: Option<Peeked>,
        src: SocketAddr,
        dst: SocketAddr,
    ) -> Option<Match> {
        let Some(peeked) = peeked.filter(|p| p.layout == self.map.layout) else {
            return self.lookup(src, dst);
        };
        let key = Key::new(&dst);
        match self.map.slot(peeked.bucket as usize) {
            Some(Some((k, _))) if *k == key => self.by_destination(peeked.bucket as usize, src),
            _ => self.lookup(src, dst),
        }
    }

    /// The match of a packet from `src` to the address in `bucket`.
    fn by_destination(&mut self, bucket: usize, src: SocketAddr) -> Option<Match> {
        let peer = short_form(&src);
        let generation = self.generation;
        let (_, entry) = self.map.slot(bucket)?.as_ref()?;
        let found = Match {
            slot: entry.leg.slot,
            sender: entry.leg.owner.other(),
            by_destination: true,
            source_known: peer != 0
                && entry.known_peer == peer
                && entry.known_generation == generation,
        };
        if found.source_known || !self.map.contains_key(&Key::new(&src)) {
            return Some(found);
        }
        if let Some(Some((_, entry))) = self.map.slot_mut(bucket) {
            entry.known_peer = peer;
            entry.known_generation = generation;
        }
        Some(Match {
            source_known: true,
            ..found
        })
    }

    /// The match of a packet by its source alone.
    fn by_source(&self, src: SocketAddr) -> Option<Match> {
        self.map.get(&Key::new(&src)).map(|entry| Match {
            slot: entry.leg.slot,
            sender: entry.leg.owner,
            by_destination: false,
            source_known: true,
        })
    }

    /// The call slot and sending party a packet sent to `dst` belongs to,
    /// without learning anything: a hint for prefetching, and a start for
    /// [`lookup_peeked`](Self::lookup_peeked), which decides.
    pub fn peek(&self, dst: &SocketAddr) -> Option<Peeked> {
        let bucket = self.map.find(&Key::new(dst))?;
        let (_, entry) = self.map.slot(bucket)?.as_ref()?;
        Some(Peeked {
            slot: entry.leg.slot,
            sender: entry.leg.owner.other(),
            bucket: u32::try_from(bucket).ok()?,
            layout: self.map.layout,
        })
    }

    /// The leg an address leads to.
    pub fn leg(&self, addr: &SocketAddr) -> Option<Leg> {
        self.map.get(&Key::new(addr)).map(|entry| entry.leg)
    }

    /// Removes `addr` if it still belongs to call `slot`.
    pub fn remove_if_owned(&mut self, addr: &SocketAddr, slot: u32) {
        let key = Key::new(addr);
        if self
            .map
            .get(&key)
            .is_some_and(|entry| entry.leg.slot == slot)
        {
            self.map.remove(&key);
            self.generation = self.generation.wrapping_add(1);
        }
    }

    /// Addresses indexed.
    pub fn len(&self) -> usize {
        self.map.len
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.map.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn destination_match_names_the_other_party_as_sender() {
        let mut index = MediaIndex::new();
        index.announce(addr("10.0.0.1:4000"), 7, Role::Caller, true);
        let m = index
            .lookup(addr("192.0.2.9:9000"), addr("10.0.0.1:4000"))
            .unwrap();
        assert_eq!(m.slot, 7);
        assert_eq!(m.sender, Role::Callee);
        assert!(m.by_destination);
    }

    #[test]
    fn source_match_names_the_owner_as_sender() {
        let mut index = MediaIndex::new();
        index.announce(addr("10.0.0.1:4000"), 7, Role::Caller, true);
        let m = index
            .lookup(addr("10.0.0.1:4000"), addr("192.0.2.9:9000"))
            .unwrap();
        assert_eq!(m.sender, Role::Caller);
        assert!(!m.by_destination);
    }

    #[test]
    fn source_known_follows_the_index_through_removals() {
        let mut index = MediaIndex::new();
        let (a, b, nat) = (
            addr("10.0.0.1:4000"),
            addr("10.0.0.2:5000"),
            addr("198.51.100.7:5000"),
        );
        index.announce(a, 1, Role::Caller, true);
        index.announce(b, 1, Role::Callee, true);
        // From the other announced address: known, and remembered.
        assert!(index.lookup(b, a).unwrap().source_known);
        assert!(index.lookup(b, a).unwrap().source_known);
        // An unknown (NAT) source is not, until it is learned.
        assert!(!index.lookup(nat, a).unwrap().source_known);
        assert!(index.learn(nat, 1, Role::Callee));
        assert!(index.lookup(nat, a).unwrap().source_known);
        // Removed: no longer known, even though it was remembered.
        index.remove_if_owned(&nat, 1);
        assert!(!index.lookup(nat, a).unwrap().source_known);
        // IPv6 sources are checked each time.
        let v6 = addr("[2001:db8::1]:6000");
        assert!(!index.lookup(v6, a).unwrap().source_known);
        index.learn(v6, 1, Role::Callee);
        assert!(index.lookup(v6, a).unwrap().source_known);
        // An IPv4 address and its IPv4-mapped IPv6 form are different keys.
        assert!(index.leg(&addr("[::ffff:10.0.0.1]:4000")).is_none());
    }

    #[test]
    fn the_table_agrees_with_a_hash_map_through_inserts_and_removals() {
        use std::collections::HashMap;
        let mut index = MediaIndex::new();
        let mut model: HashMap<SocketAddr, u32> = HashMap::new();
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for step in 0..40_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Few distinct addresses, so that runs collide and removals
            // shift entries back often; some IPv6.
            let port = 4000 + (x % 700) as u16;
            let a: SocketAddr = if x & 0x100 == 0 {
                SocketAddr::from(([10, 0, (x >> 9) as u8 & 3, 1], port))
            } else {
                SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, (x >> 9) as u16 & 3], port))
            };
            if x & 0x3000 == 0 {
                index.remove_if_owned(&a, model.get(&a).copied().unwrap_or(u32::MAX));
                model.remove(&a);
            } else {
                index.announce(a, step, Role::Caller, true);
                model.insert(a, step);
            }
            assert_eq!(index.len(), model.len());
        }
        for (a, slot) in &model {
            assert_eq!(index.leg(a).unwrap().slot, *slot);
        }
        for port in 4000..4700u16 {
            let a = SocketAddr::from(([10, 0, 0, 1], port));
            assert_eq!(index.leg(&a).map(|l| l.slot), model.get(&a).copied());
        }
        assert!(index.map.buckets.len() >= 2 * index.len());
    }

    /// A lookup started from a peek taken before the table changed (calls
    /// added, addresses learned or removed in between) matches what a plain
    /// lookup says: two indexes fed the same changes answer alike.
    #[test]
    fn lookup_from_a_stale_peek_agrees_with_a_plain_lookup() {
        let (mut peeking, mut plain) = (MediaIndex::new(), MediaIndex::new());
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let pick =
            |r: u64| SocketAddr::from(([10, 0, 0, (r % 5) as u8], 4000 + (r >> 8) as u16 % 40));
        let mut reused = 0;
        for step in 0..20_000u32 {
            let (src, dst) = (pick(next()), pick(next()));
            let peeked = peeking.peek(&dst);
            assert_eq!(peeked.map(|p| p.slot), plain.leg(&dst).map(|l| l.slot));
            // Changes between the peek and the lookup, as SIP handled
            // between the look-ahead and the frame would make.
            for _ in 0..next() % 3 {
                let (r, a) = (next(), pick(next()));
                match r % 4 {
                    0 => {
                        let owner = plain.leg(&a).map_or(u32::MAX, |l| l.slot);
                        peeking.remove_if_owned(&a, owner);
                        plain.remove_if_owned(&a, owner);
                    }
                    1 => {
                        assert_eq!(
                            peeking.learn(a, step, Role::Callee),
                            plain.learn(a, step, Role::Callee)
                        );
                    }
                    _ => {
                        let role = if r & 8 == 0 {
                            Role::Caller
                        } else {
                            Role::Callee
                        };
                        peeking.announce(a, step, role, r & 16 == 0);
                        plain.announce(a, step, role, r & 16 == 0);
                    }
                }
            }
            if peeked.is_some_and(|p| p.layout == peeking.map.layout) {
                reused += 1;
            }
            assert_eq!(
                peeking.lookup_peeked(peeked, src, dst),
                plain.lookup(src, dst),
                "step {step}"
            );
        }
        assert!(reused > 1_000, "the peek was reused {reused} times");
    }

    #[test]
    fn learning_never_overrides_an_announced_address() {
        let mut index = MediaIndex::new();
        index.announce(addr("10.0.0.1:4000"), 1, Role::Caller, true);
        assert!(!index.learn(addr("10.0.0.1:4000"), 2, Role::Callee));
        assert_eq!(index.leg(&addr("10.0.0.1:4000")).unwrap().slot, 1);
        assert!(index.learn(addr("198.51.100.7:5000"), 1, Role::Callee));
        index.remove_if_owned(&addr("198.51.100.7:5000"), 2);
        assert_eq!(index.len(), 2);
        index.remove_if_owned(&addr("198.51.100.7:5000"), 1);
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn secondhand_announcement_does_not_steal_a_firsthand_address() {
        let mut index = MediaIndex::new();
        let a = addr("172.16.98.1:8000");
        assert!(index.announce(a, 1, Role::Caller, true));
        // A B2BUA re-INVITEs its other leg with the caller's address.
        assert!(!index.announce(a, 2, Role::Caller, false));
        assert_eq!(index.leg(&a).unwrap().slot, 1);
        // The endpoint itself moving to another call does take it.
        assert!(index.announce(a, 3, Role::Callee, true));
        assert_eq!(index.leg(&a).unwrap().slot, 3);
        // And a secondhand claim takes an address nobody owns firsthand.
        let b = addr("172.16.98.145:8000");
        assert!(index.announce(b, 2, Role::Callee, false));
        assert!(index.announce(b, 1, Role::Callee, false));
        assert_eq!(index.leg(&b).unwrap().slot, 1);
    }
}
