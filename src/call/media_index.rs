//! The media index: which call and which party an RTP address belongs to.
//!
//! Keys are the addresses parties announce in SDP (where they receive RTP),
//! plus addresses learned from traffic (symmetric RTP behind NAT). A packet
//! sent TO a party's address was sent by the other party; a packet sent FROM
//! a party's address (symmetric RTP) was sent by that party.

use super::Role;
use rustc_hash::FxHashMap;
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

/// Address -> call leg. Lookups are the per-packet hot path: one hash probe
/// with a fast non-cryptographic hasher, no allocation.
#[derive(Debug, Default)]
pub struct MediaIndex {
    map: FxHashMap<SocketAddr, Leg>,
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
        if let Some(existing) = self.map.get(&addr) {
            if existing.slot != slot && existing.firsthand && !existing.learned && !firsthand {
                return false;
            }
        }
        self.map.insert(
            addr,
            Leg {
                slot,
                owner,
                learned: false,
                firsthand,
            },
        );
        true
    }

    /// Records that `owner` of call `slot` sends from `addr` (symmetric RTP),
    /// unless the address is already known. Returns true when it was added.
    pub fn learn(&mut self, addr: SocketAddr, slot: u32, owner: Role) -> bool {
        if self.map.contains_key(&addr) {
            return false;
        }
        self.map.insert(
            addr,
            Leg {
                slot,
                owner,
                learned: true,
                firsthand: false,
            },
        );
        true
    }

    /// Matches a packet by its destination first, then by its source.
    pub fn lookup(&self, src: SocketAddr, dst: SocketAddr) -> Option<Match> {
        if let Some(leg) = self.map.get(&dst) {
            return Some(Match {
                slot: leg.slot,
                sender: leg.owner.other(),
                by_destination: true,
            });
        }
        self.map.get(&src).map(|leg| Match {
            slot: leg.slot,
            sender: leg.owner,
            by_destination: false,
        })
    }

    /// The leg an address leads to.
    pub fn leg(&self, addr: &SocketAddr) -> Option<Leg> {
        self.map.get(addr).copied()
    }

    /// Removes `addr` if it still belongs to call `slot`.
    pub fn remove_if_owned(&mut self, addr: &SocketAddr, slot: u32) {
        if self.map.get(addr).is_some_and(|leg| leg.slot == slot) {
            self.map.remove(addr);
        }
    }

    /// Addresses indexed.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
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
