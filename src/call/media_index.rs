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
    /// Bumped when an address that some entry may remember as its
    /// `known_peer` is removed: a remembered peer of an older generation
    /// may have been removed since and is checked again. Removals nobody
    /// remembers (most of them: a call's own addresses, removed together
    /// when it ends) leave it, so other calls' streams keep theirs.
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
    /// Who may remember this address as their `known_peer`:
    /// [`BY_OWN_CALL`] (entries of the call that owned it then) and
    /// [`BY_OTHER_CALL`]. Set when one does, cleared only with the entry.
    remembered: u8,
}

/// [`Entry::remembered`]: an entry of the same call may remember it.
const BY_OWN_CALL: u8 = 1;
/// [`Entry::remembered`]: an entry of another call may remember it.
const BY_OTHER_CALL: u8 = 2;

impl Entry {
    fn new(leg: Leg) -> Self {
        Entry {
            leg,
            known_peer: 0,
            known_generation: 0,
            remembered: 0,
        }
    }

    /// `self` replacing `old` under the same key: who may remember the
    /// address stays, and rememberers of `old`'s call are another call's
    /// when the address moves to another call.
    fn replacing(mut self, old: &Entry) -> Self {
        self.remembered = if old.leg.slot == self.leg.slot || old.remembered == 0 {
            old.remembered
        } else {
            BY_OTHER_CALL
        };
        self
    }
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
        let mut entry = Entry::new(Leg {
            slot,
            owner,
            learned: false,
            firsthand,
        });
        if let Some(existing) = self.map.get(&key) {
            let leg = existing.leg;
            if leg.slot != slot && leg.firsthand && !leg.learned && !firsthand {
                return false;
            }
            entry = entry.replacing(existing);
        }
        self.map.insert(key, entry);
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
            Entry::new(Leg {
                slot,
                owner,
                learned: true,
                firsthand: false,
            }),
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
        if found.source_known {
            return Some(found);
        }
        let Some(source) = self.map.find(&Key::new(&src)) else {
            return Some(found);
        };
        if peer != 0 {
            if let Some(Some((_, entry))) = self.map.slot_mut(source) {
                entry.remembered |= if entry.leg.slot == found.slot {
                    BY_OWN_CALL
                } else {
                    BY_OTHER_CALL
                };
            }
            if let Some(Some((_, entry))) = self.map.slot_mut(bucket) {
                entry.known_peer = peer;
                entry.known_generation = generation;
            }
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
        if self.take_if_owned(addr, slot) != 0 {
            self.generation = self.generation.wrapping_add(1);
        }
    }

    /// Removes the addresses of call `slot` that it still owns: the call has
    /// ended. `addrs` must hold every address indexed for the call (its
    /// announced and learned ones), so the entries of the call that
    /// remember one of them go with it: only an address another call may
    /// remember makes the remembered peers be checked again.
    pub fn remove_call(&mut self, addrs: &[SocketAddr], slot: u32) {
        let remembered = addrs
            .iter()
            .fold(0, |all, addr| all | self.take_if_owned(addr, slot));
        if remembered & BY_OTHER_CALL != 0 {
            self.generation = self.generation.wrapping_add(1);
        }
    }

    /// Removes `addr` if it belongs to call `slot`; returns its
    /// [`Entry::remembered`] (0 when nothing was removed).
    fn take_if_owned(&mut self, addr: &SocketAddr, slot: u32) -> u8 {
        let key = Key::new(addr);
        match self.map.get(&key) {
            Some(entry) if entry.leg.slot == slot => {
                let remembered = entry.remembered;
                self.map.remove(&key);
                remembered
            }
            _ => 0,
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

    /// The next number of a xorshift64 sequence (`seed` nonzero).
    fn xorshift(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
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
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for step in 0..40_000u32 {
            let x = xorshift(&mut seed);
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
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || xorshift(&mut seed);
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

    /// Calls come and go as in the recorder (each keeps the list of the
    /// addresses it indexed, ends with `remove_call`, drops its oldest
    /// address past a cap): whatever was remembered, a destination match
    /// says the source is known exactly when the source is indexed.
    #[test]
    fn source_known_is_exact_as_calls_come_and_go() {
        const CALLS: usize = 12;
        const CAP: usize = 4;
        let mut index = MediaIndex::new();
        let mut owned: Vec<Vec<SocketAddr>> = vec![Vec::new(); CALLS];
        let mut seed = 0x5DEE_CE66_D1CE_4E5Bu64;
        let pick = |r: u64| {
            let port = 4000 + (r >> 8) as u16 % 24;
            if r & 0x80 == 0 {
                SocketAddr::from(([10, 0, 0, (r % 4) as u8], port))
            } else {
                SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, (r % 2) as u16], port))
            }
        };
        let (mut known, mut remembered_hits, mut kept) = (0, 0, 0);
        for step in 0..50_000u32 {
            let r = xorshift(&mut seed);
            let call = (r >> 40) as usize % CALLS;
            let slot = call as u32;
            let a = pick(xorshift(&mut seed));
            match r % 16 {
                // A call ends: all its addresses go together.
                0 => {
                    let before = index.generation;
                    index.remove_call(&owned[call], slot);
                    owned[call].clear();
                    kept += usize::from(index.generation == before);
                }
                // Its oldest address dropped past the cap, alone.
                1 if !owned[call].is_empty() => {
                    let old = owned[call].remove(0);
                    index.remove_if_owned(&old, slot);
                }
                2..=4 => {
                    let role = if r & 0x100 == 0 {
                        Role::Caller
                    } else {
                        Role::Callee
                    };
                    if index.announce(a, slot, role, r & 0x200 == 0) && !owned[call].contains(&a) {
                        if owned[call].len() >= CAP {
                            let old = owned[call].remove(0);
                            index.remove_if_owned(&old, slot);
                        }
                        owned[call].push(a);
                    }
                }
                5 => {
                    if owned[call].len() < CAP && index.learn(a, slot, Role::Callee) {
                        owned[call].push(a);
                    }
                }
                // Packets, mostly of streams seen before.
                _ => {
                    // Mostly a stream between two of a call's addresses.
                    let (mut a, mut dst) = (a, pick(xorshift(&mut seed)));
                    let addrs = &owned[call];
                    if r & 0xC00 != 0 && !addrs.is_empty() {
                        a = addrs[(r >> 12) as usize % addrs.len()];
                        dst = addrs[(r >> 20) as usize % addrs.len()];
                    }
                    for _ in 0..3 {
                        let indexed = index.leg(&a).is_some();
                        let peer_memo = index.map.get(&Key::new(&dst)).is_some_and(|e| {
                            e.known_peer == short_form(&a)
                                && short_form(&a) != 0
                                && e.known_generation == index.generation
                        });
                        if let Some(m) = index.lookup(a, dst).filter(|m| m.by_destination) {
                            assert_eq!(m.source_known, indexed, "step {step}: {a} -> {dst}");
                            known += usize::from(indexed);
                            remembered_hits += usize::from(peer_memo);
                        }
                    }
                }
            }
            // What `remove_call` relies on: every address indexed for a
            // call is in its list.
            if step % 16 == 0 {
                for r in 0..(1u64 << 14) {
                    let a = pick(r);
                    if let Some(leg) = index.leg(&a) {
                        assert!(owned[leg.slot as usize].contains(&a), "step {step}: {a}");
                    }
                }
            }
        }
        assert!(known > 10_000, "sources known {known}");
        assert!(
            remembered_hits > 5_000,
            "remembered peers used {remembered_hits}"
        );
        assert!(kept > 500, "calls ending without a new generation: {kept}");
    }

    #[test]
    fn a_call_ending_leaves_other_calls_peers_remembered() {
        let mut index = MediaIndex::new();
        let (a1, b1) = (addr("10.0.0.1:4000"), addr("10.0.0.2:5000"));
        let (a2, b2) = (addr("10.0.1.1:4000"), addr("10.0.1.2:5000"));
        for (slot, a, b) in [(1, a1, b1), (2, a2, b2)] {
            index.announce(a, slot, Role::Caller, true);
            index.announce(b, slot, Role::Callee, true);
            // Both directions: each address remembers the other.
            assert!(index.lookup(b, a).unwrap().source_known);
            assert!(index.lookup(a, b).unwrap().source_known);
        }
        let generation = index.generation;
        index.remove_call(&[a1, b1], 1);
        assert_eq!(index.generation, generation, "call 2's peers forgotten");
        assert!(index.leg(&a1).is_none() && index.leg(&b1).is_none());
        assert!(index.lookup(b2, a2).unwrap().source_known);
        // Call 1's address sending to call 2 is no longer known.
        assert!(!index.lookup(a1, a2).unwrap().source_known);

        // An address remembered within its call, then taken over by another
        // call: when that call ends, the first call's memory of it is stale.
        let c = addr("10.0.2.1:4000");
        index.announce(c, 3, Role::Caller, true);
        assert!(index.lookup(c, a2).unwrap().source_known); // remembered by call 2
        assert!(index.lookup(a2, b2).unwrap().source_known);
        assert!(index.lookup(b2, a2).unwrap().source_known); // a2 remembers b2
        index.announce(b2, 4, Role::Callee, true);
        index.remove_call(&[b2], 4);
        assert!(index.leg(&b2).is_none());
        assert!(!index.lookup(b2, a2).unwrap().source_known);
        // Call 2 ending (its a2 remembered by nobody else) keeps call 3's.
        assert!(index.lookup(a2, c).unwrap().source_known);
        let generation = index.generation;
        index.announce(addr("10.0.2.2:5000"), 3, Role::Callee, true);
        assert!(index.lookup(c, addr("10.0.2.2:5000")).unwrap().source_known);
        index.remove_call(&[a2, b2], 2);
        assert_ne!(index.generation, generation, "a2 was remembered by call 3");
        assert!(!index.lookup(a2, c).unwrap().source_known);
    }
}
