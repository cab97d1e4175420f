//! B2BUA and PBX legs: two dialogs (two Call-IDs) that carry one
//! conversation, and which of them is recorded.
//!
//! Correlation, checked when the second leg's initial INVITE arrives:
//! - **Header** (always): one of the configured headers (e.g. `X-Call-ID`)
//!   of the new INVITE names the Call-ID of a call being tracked.
//! - **Automatic** (`b2bua.auto`), for a first leg still ringing (not
//!   answered, failed or ended) whose first INVITE came at most `window`
//!   before, when the new leg was not sent by the first leg's caller, and
//!   either
//!   - the new leg is sent from an address the first leg's INVITE was
//!     delivered to, on any hop (the B2BUA forwards what it received), with
//!     the same caller or callee number; or
//!   - its From tag contains the first leg's (SBCs derive their tags, e.g.
//!     `SD4909701-00e9d478` from `00e9d478`) and it dials the same number.
//!
//! Choice (`b2bua.mode = "boundary"`): the leg whose parties are one local,
//! one remote is recorded; when both or neither are, the first leg (nearest
//! the caller) is. `each-leg` records both and notes the other's Call-ID.

use super::dialog::{Dialog, Role, State};

/// Why two dialogs were taken as legs of one conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegLink {
    /// A correlation header names the other Call-ID.
    Header,
    /// The new leg leaves the first leg's callee (B2BUA topology).
    Topology,
    /// The new leg's From tag is derived from the first leg's.
    DerivedTag,
}

impl LegLink {
    /// Short text for logs and notes.
    pub const fn describe(self) -> &'static str {
        match self {
            LegLink::Header => "correlation header",
            LegLink::Topology => "B2BUA topology and number",
            LegLink::DerivedTag => "derived From tag and number",
        }
    }
}

/// Digests of a dialog's caller and callee numbers, for ruling out cheaply
/// the recent INVITEs a new dialog cannot be another leg of: every automatic
/// link needs the same caller or callee number ([`auto_link`]), so two
/// dialogs whose keys share neither are never linked, and only those that
/// share one are compared in full. A missing or empty number has key 0,
/// which matches nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkKeys {
    caller: u32,
    callee: u32,
}

impl LinkKeys {
    /// The keys of `dialog`'s numbers as they are now.
    pub fn of(dialog: &Dialog) -> Self {
        LinkKeys {
            caller: number_key(dialog.party(Role::Caller).number.as_deref()),
            callee: number_key(dialog.party(Role::Callee).number.as_deref()),
        }
    }

    /// False when dialogs with these keys cannot be legs of one
    /// conversation; true when they may be.
    pub fn may_link(self, other: LinkKeys) -> bool {
        (self.caller != 0 && self.caller == other.caller)
            || (self.callee != 0 && self.callee == other.callee)
    }
}

/// A nonzero 32-bit digest of a number (0 for none or empty).
fn number_key(number: Option<&str>) -> u32 {
    use std::hash::Hasher;
    match number {
        Some(n) if !n.is_empty() => {
            let mut hasher = rustc_hash::FxHasher::default();
            hasher.write(n.as_bytes());
            let h = hasher.finish();
            ((h ^ h >> 32) as u32).max(1)
        }
        _ => 0,
    }
}

/// Whether `second` (a dialog just started) is another leg of `first`
/// (a dialog already tracked), by the automatic rules of the module doc.
pub fn auto_link(first: &Dialog, second: &Dialog, window_nanos: i64) -> Option<LegLink> {
    if !matches!(first.state, State::Calling | State::Early) || first.is_answered() {
        return None;
    }
    let since = second.invite_time.nanos_since(first.invite_time);
    if !(0..=window_nanos).contains(&since) {
        return None;
    }
    let (a_caller, a_callee) = (first.party(Role::Caller), first.party(Role::Callee));
    let (b_caller, b_callee) = (second.party(Role::Caller), second.party(Role::Callee));
    if b_caller.signalling.is_none() || b_caller.signalling == a_caller.signalling {
        return None;
    }
    let same = |x: &Option<String>, y: &Option<String>| match (x, y) {
        (Some(x), Some(y)) => !x.is_empty() && x == y,
        _ => false,
    };
    let same_callee = same(&a_callee.number, &b_callee.number);
    let same_caller = same(&a_caller.number, &b_caller.number);
    let from_b2bua = b_caller.signalling == a_callee.signalling
        || b_caller
            .signalling
            .is_some_and(|ip| first.callee_hops.contains(&ip));
    if from_b2bua && (same_callee || same_caller) {
        return Some(LegLink::Topology);
    }
    let derived = match (&a_caller.tag, &b_caller.tag) {
        (Some(a), Some(b)) if a.len() >= 6 && a != b => b.contains(a.as_str()),
        _ => false,
    };
    if derived && same_callee {
        return Some(LegLink::DerivedTag);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::Message;
    use crate::Timestamp;

    fn invite(t_ms: i64, src: &str, dst: &str, from: &str, tag: &str, to: &str) -> Dialog {
        let text = format!(
            "INVITE sip:{to}@{dst} SIP/2.0\r\nVia: SIP/2.0/UDP {src};branch=z9hG4bK1\r\nFrom: <sip:{from}@{src}>;tag={tag}\r\nTo: <sip:{to}@{dst}>\r\nCall-ID: {tag}-call\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        let (msg, _) = Message::parse(text.as_bytes()).unwrap();
        Dialog::from_invite(
            Timestamp(t_ms * 1_000_000),
            format!("{src}:5060").parse().unwrap(),
            format!("{dst}:5060").parse().unwrap(),
            &msg,
        )
        .unwrap()
    }

    const W: i64 = 2_000_000_000;

    #[test]
    fn pbx_forwarding_the_call_is_a_second_leg() {
        // Zoiper -> Asterisk (dials 2302), Asterisk -> phone (telephone2).
        let a = invite(
            0,
            "172.16.98.1",
            "172.16.98.101",
            "telephone1",
            "aa1",
            "2302",
        );
        let b = invite(
            2,
            "172.16.98.101",
            "172.16.98.145",
            "telephone1",
            "bb2",
            "telephone2",
        );
        assert_eq!(auto_link(&a, &b, W), Some(LegLink::Topology));
        // Too late, or the first leg already answered: not a leg.
        let late = invite(
            2500,
            "172.16.98.101",
            "172.16.98.145",
            "telephone1",
            "bb3",
            "x",
        );
        assert_eq!(auto_link(&a, &late, W), None);
        let mut answered = a.clone();
        answered.answer_time = Some(Timestamp(1));
        answered.state = State::Answered;
        assert_eq!(auto_link(&answered, &b, W), None);
    }

    #[test]
    fn sbc_with_derived_tag_on_another_interface_is_a_second_leg() {
        let a = invite(
            0,
            "10.35.60.72",
            "10.35.60.100",
            "unavailable",
            "00e9d478",
            "061963177",
        );
        let b = invite(
            5,
            "138.132.169.101",
            "192.168.100.219",
            "unavailable",
            "SD4909701-00e9d478",
            "061963177",
        );
        assert_eq!(auto_link(&a, &b, W), Some(LegLink::DerivedTag));
    }

    #[test]
    fn concurrent_independent_calls_are_not_legs() {
        // SIPp: many callers calling the same service number at once.
        let a = invite(0, "127.0.1.10", "127.0.2.20", "1001", "t1", "5551234");
        let b = invite(1, "127.0.1.11", "127.0.2.21", "1001", "t2", "5551234");
        assert_eq!(auto_link(&a, &b, W), None);
        // The same caller placing a second call.
        let c = invite(1, "127.0.1.10", "127.0.2.20", "1001", "t3", "5551234");
        assert_eq!(auto_link(&a, &c, W), None);
        // A callee that happens to call someone else (other numbers).
        let d = invite(1, "127.0.2.20", "127.0.3.30", "777", "t4", "888");
        assert_eq!(auto_link(&a, &d, W), None);
    }

    /// Over all pairs of many dialogs (B2BUA topologies, derived tags,
    /// shared and distinct numbers): every link [`auto_link`] finds passes
    /// [`LinkKeys::may_link`], and pairs with no number in common are ruled
    /// out by it.
    #[test]
    fn keys_never_rule_out_a_link() {
        let hosts = ["172.16.98.1", "172.16.98.101", "172.16.98.145"];
        let (mut dialogs, mut numbers) = (Vec::new(), Vec::new());
        for (i, (src, dst)) in hosts
            .iter()
            .flat_map(|s| hosts.iter().filter(move |d| *d != s).map(move |d| (s, d)))
            .enumerate()
        {
            for from in ["telephone1", "2302", "+390255501"] {
                for tag in ["aa1", "xaa1y", "bb2"] {
                    for to in ["2302", "telephone2", "777"] {
                        dialogs.push(invite(i as i64, src, dst, from, tag, to));
                        numbers.push((from, to));
                    }
                }
            }
        }
        let (mut links, mut ruled_out) = (0, 0);
        for (a, (a_from, a_to)) in dialogs.iter().zip(&numbers) {
            for (b, (b_from, b_to)) in dialogs.iter().zip(&numbers) {
                let may = LinkKeys::of(a).may_link(LinkKeys::of(b));
                if auto_link(a, b, W).is_some() {
                    assert!(may, "{a_from}->{a_to} and {b_from}->{b_to} linked");
                    links += 1;
                }
                if a_from != b_from && a_to != b_to {
                    assert!(!may, "{a_from}->{a_to} and {b_from}->{b_to}");
                    ruled_out += 1;
                }
            }
        }
        assert!(
            links > 100 && ruled_out > 1000,
            "{links} links, {ruled_out} ruled out"
        );
        // A missing number matches nothing.
        let none = LinkKeys::default();
        assert!(!none.may_link(none));
    }
}
