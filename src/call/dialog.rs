//! One SIP call (INVITE dialog) as seen from the wire: who called whom, when
//! it was answered and ended, and where each party receives its media.
//!
//! A [`Dialog`] takes parsed SIP messages (with their capture time and
//! addresses) and reports what changed as [`DialogEvent`]s; the recorder turns
//! those into index updates and recordings. Rules, from RFC 3261/3264 as seen
//! on real networks:
//! - The caller is the party whose tag is in the From header of the initial
//!   INVITE; in-dialog requests are attributed by their From tag.
//! - An offer in an initial INVITE (or an answer in an ACK, for delayed offer)
//!   is applied at once: the caller can receive as soon as it offered.
//! - Offers in re-INVITEs/UPDATEs are applied only when answered with a 2xx,
//!   so a rejected offer (e.g. T.38 declined with 488) changes nothing.
//! - Forking: SDP in 18x responses is kept per To-tag; the branch whose 2xx
//!   arrives first is the call, later 2xx with other tags are ignored.
//! - A 3xx-6xx to the initial INVITE marks the call failed but keeps it, as
//!   401/407 challenges are followed by a new INVITE with the same Call-ID.

use super::identity;
use crate::media::Law;
use crate::sip::message::{Message, Method, NameAddr, StartLine};
use crate::sip::sdp::{Direction, MediaKind, MediaProtocol, SessionDescription};
use crate::Timestamp;
use std::net::{IpAddr, SocketAddr};

/// A party of the call, by its role in the initial INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Sent the initial INVITE.
    Caller,
    /// Received the initial INVITE.
    Callee,
}

impl Role {
    /// The other party.
    pub const fn other(self) -> Role {
        match self {
            Role::Caller => Role::Callee,
            Role::Callee => Role::Caller,
        }
    }

    /// Index into per-role arrays.
    pub const fn index(self) -> usize {
        match self {
            Role::Caller => 0,
            Role::Callee => 1,
        }
    }

    /// "caller" or "callee".
    pub const fn name(self) -> &'static str {
        match self {
            Role::Caller => "caller",
            Role::Callee => "callee",
        }
    }
}

/// What an RTP payload type means in this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// G.711, recordable.
    G711(Law),
    /// RFC 4733 telephone-event.
    TelephoneEvent,
    /// Comfort noise.
    ComfortNoise,
    /// Anything else (not recordable).
    Other,
}

/// Where and how one party receives audio, from its SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSpec {
    /// RTP address, `None` when the stream is disabled (port 0) or on
    /// old-style hold (`c=0.0.0.0`).
    pub addr: Option<SocketAddr>,
    /// Media direction.
    pub direction: Direction,
    /// Plain RTP, SRTP, ...
    pub protocol: MediaProtocol,
    /// Payload types with their meaning, in preference order (capped).
    pub payloads: Vec<(u8, PayloadKind, String)>,
    /// The SDP came from the endpoint that receives the media (its address
    /// is the source of the SIP message), not from a B2BUA on its behalf.
    pub firsthand: bool,
}

impl MediaSpec {
    /// The audio section of an SDP body, if it has one.
    pub fn from_sdp(sdp: &SessionDescription) -> Option<MediaSpec> {
        let media = sdp.media.iter().find(|m| m.kind == MediaKind::Audio)?;
        let ip = media.address(sdp);
        let addr = match ip {
            Some(ip) if media.port != 0 && !ip.is_unspecified() => {
                Some(SocketAddr::new(ip, media.port))
            }
            _ => None,
        };
        let payloads = media
            .payload_types
            .iter()
            .map(|&pt| {
                let name = media.encoding(pt).unwrap_or("unknown").to_string();
                (pt, classify(pt, &name), name)
            })
            .collect();
        Some(MediaSpec {
            addr,
            direction: media.effective_direction(sdp),
            protocol: media.protocol,
            payloads,
            firsthand: false,
        })
    }

    /// The first G.711 law in preference order.
    pub fn first_g711(&self) -> Option<Law> {
        self.payloads.iter().find_map(|(_, kind, _)| match kind {
            PayloadKind::G711(law) => Some(*law),
            _ => None,
        })
    }

    /// The first audio codec (not telephone-event or CN) in preference order.
    pub fn first_codec(&self) -> Option<&str> {
        self.payloads
            .iter()
            .find(|(_, kind, _)| matches!(kind, PayloadKind::G711(_) | PayloadKind::Other))
            .map(|(_, _, name)| name.as_str())
    }
}

fn classify(pt: u8, encoding: &str) -> PayloadKind {
    if encoding.eq_ignore_ascii_case("PCMU") {
        PayloadKind::G711(Law::Ulaw)
    } else if encoding.eq_ignore_ascii_case("PCMA") {
        PayloadKind::G711(Law::Alaw)
    } else if encoding.eq_ignore_ascii_case("telephone-event") {
        PayloadKind::TelephoneEvent
    } else if encoding.eq_ignore_ascii_case("CN") || pt == 13 || pt == 19 {
        PayloadKind::ComfortNoise
    } else {
        PayloadKind::Other
    }
}

/// What the signalling says about one party.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Party {
    /// Phone number: P-Asserted-Identity user part when present, else the
    /// From/To URI user part.
    pub number: Option<String>,
    /// Display name from From/To (or P-Asserted-Identity).
    pub display_name: Option<String>,
    /// The party's dialog tag.
    pub tag: Option<String>,
    /// Where the party's signalling was seen (source of the INVITE for the
    /// caller, its destination for the callee).
    pub signalling: Option<IpAddr>,
    /// Where the party receives audio.
    pub media: Option<MediaSpec>,
}

/// Where a call stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// INVITE sent, no final response yet.
    Calling,
    /// A 18x with a To-tag has been seen.
    Early,
    /// A 2xx to the initial INVITE has been seen.
    Answered,
    /// The initial INVITE got a 3xx-6xx final response.
    Failed {
        /// The status code.
        code: u16,
        /// The reason phrase.
        reason: String,
    },
    /// BYE (or a timeout) ended the call.
    Ended,
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// A BYE from this party.
    Bye(Role),
    /// No RTP or SIP for the configured timeout.
    Inactivity,
    /// The configured maximum duration was reached.
    MaxDuration,
    /// The capture ended with the call still active.
    EndOfInput,
    /// The call table was full.
    Evicted,
    /// The recorder was stopped (SIGTERM) with the call still active.
    Shutdown,
}

/// A change reported by [`Dialog::handle_message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogEvent {
    /// A party announced where it receives audio.
    MediaChanged(Role),
    /// The initial INVITE was answered.
    Answered,
    /// The call ended.
    Ended(EndReason),
}

#[derive(Debug, Clone)]
struct PendingOffer {
    cseq: u32,
    offerer: Role,
    offer: Option<MediaSpec>,
}

/// At most this many 18x branches (To-tags) are remembered per call.
const MAX_EARLY_BRANCHES: usize = 8;
/// At most this many open re-INVITE/UPDATE offers are remembered per call.
const MAX_PENDING_OFFERS: usize = 4;
/// At most this many notes are kept per call.
const MAX_NOTES: usize = 32;

/// One call, as its SIP messages tell it.
#[derive(Debug, Clone)]
pub struct Dialog {
    /// The SIP Call-ID.
    pub call_id: String,
    /// Where the call stands.
    pub state: State,
    /// Capture time of the first INVITE.
    pub invite_time: Timestamp,
    /// Capture time of the 2xx to the initial INVITE.
    pub answer_time: Option<Timestamp>,
    /// Capture time of the last SIP message or RTP packet of this call.
    pub last_activity: Timestamp,
    /// The parties, indexed by [`Role::index`].
    pub parties: [Party; 2],
    /// CSeq of the current initial INVITE transaction.
    pub invite_cseq: u32,
    /// A CANCEL was seen.
    pub cancelled: bool,
    /// Things worth telling in the recording's notes (capped).
    pub notes: Vec<String>,
    /// A 2xx answer accepted a T.38 fax stream (`m=image` with a port).
    pub t38: bool,
    /// Addresses the initial INVITE was delivered to on every hop seen (the
    /// first INVITE's destination, then the sources of responses to it),
    /// bounded.
    pub callee_hops: Vec<IpAddr>,
    early: Vec<(String, MediaSpec)>,
    pending: Vec<PendingOffer>,
    /// Tags of each side (by [`Role::index`]) as seen on every hop.
    hop_tags: [Vec<String>; 2],
    /// An open REFER: its CSeq, sender, target and whether attended.
    refer: Option<(u32, Role, String, bool)>,
    /// Where the 2xx that answered the call came from.
    answer_src: Option<IpAddr>,
}

/// At most this many tags per side are remembered across hops.
const MAX_HOP_TAGS: usize = 4;

fn remember_tag(tags: &mut Vec<String>, tag: &str) {
    if tags.len() < MAX_HOP_TAGS && !tags.iter().any(|t| t == tag) {
        tags.push(tag.to_string());
    }
}

impl Dialog {
    /// Starts a dialog from an initial INVITE (one without a To-tag).
    /// Returns `None` when the message is not such an INVITE.
    pub fn from_invite(
        now: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
        msg: &Message<'_>,
    ) -> Option<Dialog> {
        if !matches!(
            msg.start_line(),
            StartLine::Request {
                method: Method::Invite,
                ..
            }
        ) {
            return None;
        }
        let to = msg.to()?;
        if to.tag.is_some() {
            return None;
        }
        let from = msg.from()?;
        let call_id = msg.call_id()?.to_string();
        let cseq = msg.cseq().map_or(0, |c| c.number);
        let mut caller = party_from(&from, msg.p_asserted_identity().as_ref());
        if msg.p_asserted_identity().is_none() {
            if let Some(user) = identity::asserted_user(msg) {
                caller.number = Some(user);
            }
        }
        caller.tag = from.tag.map(str::to_string);
        caller.signalling = Some(src.ip());
        let mut callee = party_from(&to, None);
        callee.signalling = Some(dst.ip());
        let mut notes = Vec::new();
        notes.extend(identity::forwarding_note(msg));
        if let Some(replaced) = identity::replaces(msg) {
            notes.push(format!("attended transfer: replaces call {replaced}"));
        }
        Some(Dialog {
            call_id,
            state: State::Calling,
            invite_time: now,
            answer_time: None,
            last_activity: now,
            parties: [caller, callee],
            invite_cseq: cseq,
            cancelled: false,
            notes,
            t38: false,
            callee_hops: vec![dst.ip()],
            early: Vec::new(),
            pending: Vec::new(),
            hop_tags: [
                from.tag.map(str::to_string).into_iter().collect(),
                Vec::new(),
            ],
            refer: None,
            answer_src: None,
        })
    }

    /// The party in `role`.
    pub fn party(&self, role: Role) -> &Party {
        let [caller, callee] = &self.parties;
        match role {
            Role::Caller => caller,
            Role::Callee => callee,
        }
    }

    fn party_mut(&mut self, role: Role) -> &mut Party {
        let [caller, callee] = &mut self.parties;
        match role {
            Role::Caller => caller,
            Role::Callee => callee,
        }
    }

    /// True once answered (and until removed).
    pub fn is_answered(&self) -> bool {
        self.answer_time.is_some()
    }

    /// Adds a note for the recording's metadata (bounded).
    pub fn note(&mut self, text: String) {
        if self.notes.len() < MAX_NOTES {
            self.notes.push(text);
        }
    }

    /// Which party sent a request carrying this From tag.
    fn requester(&self, msg: &Message<'_>) -> Role {
        let from_tag = msg.from().and_then(|f| f.tag);
        if let Some(tag) = from_tag {
            // Tags seen on other hops (an SBC that keeps the Call-ID but
            // issues its own tags) name the side too.
            if self.hop_tags[1].iter().any(|t| t == tag) {
                return Role::Callee;
            }
            if self.hop_tags[0].iter().any(|t| t == tag) {
                return Role::Caller;
            }
        }
        match (from_tag, self.parties[0].tag.as_deref()) {
            (Some(tag), Some(caller)) if tag != caller => Role::Callee,
            _ => Role::Caller,
        }
    }

    /// Before the answer, an UPDATE (or re-offer) may move the callee of an
    /// early branch: the branch's remembered SDP follows, so that a 2xx
    /// without SDP does not bring back the 18x's address.
    fn refresh_early_branch(&mut self, msg: &Message<'_>) {
        if self.is_answered() {
            return;
        }
        let caller_tag = self.parties[0].tag.as_deref();
        let from = msg.from().and_then(|f| f.tag);
        let to = msg.to().and_then(|t| t.tag);
        let branch = if from.is_some() && from != caller_tag {
            from
        } else {
            to
        };
        let (Some(branch), Some(media)) = (branch, self.parties[1].media.as_ref()) else {
            return;
        };
        if let Some(entry) = self.early.iter_mut().find(|(t, _)| t == branch) {
            entry.1 = media.clone();
        }
    }

    /// An asserted identity in a mid-call request or answer from `role`
    /// that differs from its number: the party changed (transfer, pickup).
    fn identity_update(&mut self, role: Role, msg: &Message<'_>, what: &str) {
        if !self.is_answered() {
            return;
        }
        let Some(user) = identity::asserted_user(msg) else {
            return;
        };
        let party = self.party_mut(role);
        if party.number.as_deref() == Some(user.as_str()) {
            return;
        }
        let old = party.number.replace(user.clone()).unwrap_or_default();
        self.note(format!(
            "{} changed from {old} to {user} ({what} with a new asserted identity: transfer or pickup)",
            role.name()
        ));
    }

    fn set_media(&mut self, role: Role, spec: MediaSpec, events: &mut Vec<DialogEvent>) {
        let party = self.party_mut(role);
        if party.media.as_ref() == Some(&spec) {
            return;
        }
        let moved = match (&party.media, spec.addr) {
            (Some(old), Some(new)) => old.addr.is_some() && old.addr != Some(new),
            _ => false,
        };
        party.media = Some(spec);
        if moved && self.is_answered() {
            let text = format!(
                "{} media moved to {}",
                role.name(),
                fmt_addr(self.party(role).media.as_ref().and_then(|m| m.addr))
            );
            self.note(text);
        }
        events.push(DialogEvent::MediaChanged(role));
    }

    /// Handles one SIP message of this call captured at `now`, appending what
    /// changed to `events`.
    pub fn handle_message(
        &mut self,
        now: Timestamp,
        src: SocketAddr,
        msg: &Message<'_>,
        sdp: Option<&SessionDescription>,
        events: &mut Vec<DialogEvent>,
    ) {
        if self.state == State::Ended {
            return;
        }
        self.last_activity = now;
        let spec = sdp.and_then(MediaSpec::from_sdp).map(|mut spec| {
            spec.firsthand = spec.addr.is_some_and(|a| a.ip() == src.ip());
            spec
        });
        let cseq = msg.cseq();
        if let (
            StartLine::Response {
                code: 200..=299, ..
            },
            Some(sdp),
        ) = (msg.start_line(), sdp)
        {
            let fax = sdp
                .media
                .iter()
                .any(|m| m.kind == MediaKind::Image && m.port != 0);
            if fax && !self.t38 {
                self.t38 = true;
                self.note("media switched to T.38 fax (UDPTL), which is not recorded".into());
            }
        }
        match msg.start_line() {
            StartLine::Request { method, .. } => {
                let requester = self.requester(msg);
                let number = cseq.map_or(0, |c| c.number);
                let to_tag = msg.to().and_then(|t| t.tag);
                match method {
                    Method::Invite if to_tag.is_none() => {
                        if let Some(tag) = msg.from().and_then(|f| f.tag) {
                            remember_tag(&mut self.hop_tags[0], tag);
                        }
                        self.handle_initial_invite(src, number, msg, spec, events)
                    }
                    Method::Invite | Method::Update => {
                        self.identity_update(requester, msg, method.as_str());
                        if self.pending.len() >= MAX_PENDING_OFFERS {
                            self.pending.remove(0);
                        }
                        self.pending
                            .retain(|p| p.cseq != number || p.offerer != requester);
                        self.pending.push(PendingOffer {
                            cseq: number,
                            offerer: requester,
                            offer: spec,
                        });
                    }
                    Method::Ack => {
                        // An answer in the ACK completes a delayed offer.
                        if let Some(spec) = spec {
                            self.set_media(requester, spec, events);
                        }
                    }
                    Method::Bye => {
                        self.state = State::Ended;
                        events.push(DialogEvent::Ended(EndReason::Bye(requester)));
                    }
                    Method::Cancel => {
                        self.cancelled = true;
                    }
                    Method::Prack => {
                        // SDP in a PRACK answers an offer in a reliable 18x
                        // (or offers anew): either way it is where the
                        // requester receives.
                        if let Some(spec) = spec {
                            self.set_media(requester, spec, events);
                        }
                    }
                    Method::Refer => {
                        if let Some((target, attended)) = identity::refer_target(msg) {
                            self.refer = Some((number, requester, target, attended));
                        }
                    }
                    _ => {}
                }
            }
            StartLine::Response { code, reason } => {
                let Some(cseq) = cseq else { return };
                match cseq.method {
                    Method::Invite if cseq.number == self.invite_cseq => {
                        if let Some(tag) = msg.to().and_then(|t| t.tag) {
                            if code > 100 && code < 300 {
                                remember_tag(&mut self.hop_tags[1], tag);
                            }
                        }
                        if self.callee_hops.len() < MAX_HOP_TAGS
                            && !self.callee_hops.contains(&src.ip())
                        {
                            self.callee_hops.push(src.ip());
                        }
                        self.handle_initial_response(now, src, code, reason, msg, spec, events)
                    }
                    Method::Refer => self.handle_refer_response(cseq.number, code, reason),
                    Method::Invite | Method::Update | Method::Prack => {
                        let requester = self.requester(msg);
                        if (200..300).contains(&code) && cseq.method != Method::Prack {
                            self.identity_update(requester.other(), msg, "answer");
                        }
                        self.handle_offer_response(
                            cseq.number,
                            requester,
                            code,
                            reason,
                            spec,
                            events,
                        );
                        self.refresh_early_branch(msg);
                    }
                    _ => {}
                }
            }
        }
    }

    fn handle_initial_invite(
        &mut self,
        src: SocketAddr,
        cseq: u32,
        msg: &Message<'_>,
        spec: Option<MediaSpec>,
        events: &mut Vec<DialogEvent>,
    ) {
        if cseq < self.invite_cseq || (cseq == self.invite_cseq && self.state != State::Calling) {
            // A retransmission (or a stale copy seen on another hop).
            return;
        }
        if self.is_answered() {
            return;
        }
        if cseq > self.invite_cseq {
            // A new attempt, typically with credentials after 401/407.
            self.invite_cseq = cseq;
            self.state = State::Calling;
            self.early.clear();
            if let Some(user) = identity::asserted_user(msg) {
                self.parties[0].number = Some(user);
            }
            self.parties[0].signalling = Some(src.ip());
        }
        if let Some(spec) = spec {
            self.set_media(Role::Caller, spec, events);
        }
    }

    /// The outcome of a REFER: a transfer accepted (2xx) or refused (an
    /// authentication challenge waits for the retry).
    fn handle_refer_response(&mut self, cseq: u32, code: u16, reason: &str) {
        let Some((number, role, target, attended)) = self.refer.clone() else {
            return;
        };
        if number != cseq || code < 200 || code == 401 || code == 407 {
            return;
        }
        self.refer = None;
        let kind = if attended { "attended" } else { "blind" };
        let text = if code < 300 {
            format!(
                "{} transferred the call ({kind} REFER to {target}, accepted)",
                role.name()
            )
        } else {
            format!(
                "{} tried to transfer the call ({kind} REFER to {target}), refused: {code} {}",
                role.name(),
                reason.trim()
            )
        };
        if !self.notes.contains(&text) {
            self.note(text);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_initial_response(
        &mut self,
        now: Timestamp,
        src: SocketAddr,
        code: u16,
        reason: &str,
        msg: &Message<'_>,
        spec: Option<MediaSpec>,
        events: &mut Vec<DialogEvent>,
    ) {
        let to_tag = msg.to().and_then(|t| t.tag).map(str::to_string);
        match code {
            101..=199 => {
                if self.is_answered() {
                    return;
                }
                if let Some(tag) = to_tag {
                    if self.state == State::Calling {
                        self.state = State::Early;
                    }
                    if let Some(spec) = spec {
                        // Early media: the latest branch with SDP is the one
                        // that can be heard until one answers.
                        self.early.retain(|(t, _)| *t != tag);
                        if self.early.len() >= MAX_EARLY_BRANCHES {
                            self.early.remove(0);
                        }
                        self.early.push((tag, spec.clone()));
                        self.set_media(Role::Callee, spec, events);
                    }
                }
            }
            200..=299 => {
                if self.is_answered() {
                    let same_branch = to_tag.is_some() && to_tag == self.parties[1].tag;
                    if same_branch {
                        if let (Some(spec), None) = (spec, &self.parties[1].media) {
                            self.set_media(Role::Callee, spec, events);
                        }
                    } else if to_tag.is_some() && Some(src.ip()) == self.answer_src {
                        // From where the answer came: a forked branch. (A
                        // different tag from another hop is that hop's.)
                        self.note(format!(
                            "a second branch answered (To-tag {}) and was ignored",
                            to_tag.as_deref().unwrap_or("")
                        ));
                    }
                    return;
                }
                self.state = State::Answered;
                self.answer_time = Some(now);
                self.answer_src = Some(src.ip());
                if let Some(user) = identity::asserted_user(msg) {
                    self.parties[1].number = Some(user);
                }
                let branch_spec = to_tag.as_ref().and_then(|tag| {
                    self.early
                        .iter()
                        .find(|(t, _)| t == tag)
                        .map(|(_, s)| s.clone())
                });
                self.parties[1].tag = to_tag;
                self.early.clear();
                if let Some(spec) = spec.or(branch_spec) {
                    self.set_media(Role::Callee, spec, events);
                }
                events.push(DialogEvent::Answered);
            }
            300..=699 => {
                if self.is_answered() {
                    return;
                }
                self.state = State::Failed {
                    code,
                    reason: reason.trim().to_string(),
                };
            }
            _ => {}
        }
    }

    fn handle_offer_response(
        &mut self,
        cseq: u32,
        requester: Role,
        code: u16,
        reason: &str,
        spec: Option<MediaSpec>,
        events: &mut Vec<DialogEvent>,
    ) {
        let Some(pos) = self
            .pending
            .iter()
            .position(|p| p.cseq == cseq && p.offerer == requester)
        else {
            return;
        };
        if code < 200 {
            return;
        }
        let pending = self.pending.remove(pos);
        if code >= 300 {
            self.note(format!(
                "re-INVITE/UPDATE rejected: {code} {}",
                reason.trim()
            ));
            return;
        }
        let answerer = pending.offerer.other();
        if let Some(offer) = pending.offer {
            self.set_media(pending.offerer, offer, events);
        }
        if let Some(answer) = spec {
            if answer.direction != Direction::SendRecv {
                let state = match answer.direction {
                    Direction::Inactive => "inactive",
                    Direction::SendOnly => "sendonly",
                    Direction::RecvOnly => "recvonly",
                    Direction::SendRecv => "sendrecv",
                };
                self.note(format!(
                    "hold or one-way media ({} is {state})",
                    answerer.name()
                ));
            } else if answer.addr.is_none() {
                self.note(format!("hold ({} media address 0.0.0.0)", answerer.name()));
            }
            self.set_media(answerer, answer, events);
        }
    }
}

fn party_from(addr: &NameAddr<'_>, pai: Option<&NameAddr<'_>>) -> Party {
    let number = pai.and_then(|p| p.user).or(addr.user).map(str::to_string);
    let display_name = addr
        .display_name
        .as_deref()
        .or(pai.and_then(|p| p.display_name.as_deref()))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    Party {
        number,
        display_name,
        ..Party::default()
    }
}

fn fmt_addr(addr: Option<SocketAddr>) -> String {
    addr.map_or_else(|| "none".to_string(), |a| a.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLER: &str = "10.0.0.1:5060";
    const CALLEE: &str = "192.0.2.2:5060";

    fn sdp(ip: &str, port: u16, pts: &str, extra: &str) -> String {
        format!(
            "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {pts}\r\na=rtpmap:101 telephone-event/8000\r\n{extra}"
        )
    }

    fn request(
        method: &str,
        cseq: u32,
        from_tag: &str,
        to_tag: Option<&str>,
        body: &str,
    ) -> String {
        let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        let ctype = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        format!(
            "{method} sip:5551234@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK{cseq}{method}\r\nFrom: \"Mario\" <sip:1001@10.0.0.1>;tag={from_tag}\r\nTo: <sip:5551234@192.0.2.2>{to_tag}\r\nCall-ID: abc@10.0.0.1\r\nCSeq: {cseq} {method}\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    fn response(
        code: u16,
        method: &str,
        cseq: u32,
        from_tag: &str,
        to_tag: &str,
        body: &str,
    ) -> String {
        let ctype = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        format!(
            "SIP/2.0 {code} Whatever\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK{cseq}\r\nFrom: \"Mario\" <sip:1001@10.0.0.1>;tag={from_tag}\r\nTo: <sip:5551234@192.0.2.2>;tag={to_tag}\r\nCall-ID: abc@10.0.0.1\r\nCSeq: {cseq} {method}\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    struct Call {
        dialog: Dialog,
        t: i64,
    }

    impl Call {
        fn start(invite: &str) -> (Call, Vec<DialogEvent>) {
            let (msg, _) = Message::parse(invite.as_bytes()).unwrap();
            let now = Timestamp(1_000_000_000);
            let mut dialog =
                Dialog::from_invite(now, CALLER.parse().unwrap(), CALLEE.parse().unwrap(), &msg)
                    .unwrap();
            let mut events = Vec::new();
            let sdp = msg.sdp_body().map(SessionDescription::parse);
            dialog.handle_message(
                now,
                CALLER.parse().unwrap(),
                &msg,
                sdp.as_ref(),
                &mut events,
            );
            (Call { dialog, t: 1 }, events)
        }

        fn feed(&mut self, from: &str, text: &str) -> Vec<DialogEvent> {
            self.t += 1;
            let (msg, _) = Message::parse(text.as_bytes()).unwrap();
            let sdp = msg.sdp_body().map(SessionDescription::parse);
            let mut events = Vec::new();
            self.dialog.handle_message(
                Timestamp(self.t * 1_000_000_000),
                from.parse().unwrap(),
                &msg,
                sdp.as_ref(),
                &mut events,
            );
            events
        }

        fn media(&self, role: Role) -> Option<SocketAddr> {
            self.dialog.party(role).media.as_ref().and_then(|m| m.addr)
        }
    }

    #[test]
    fn basic_call_answer_and_bye_from_callee() {
        let (mut call, events) = Call::start(&request(
            "INVITE",
            1,
            "a1",
            None,
            &sdp("10.0.0.1", 4000, "0 101", ""),
        ));
        assert_eq!(events, vec![DialogEvent::MediaChanged(Role::Caller)]);
        assert_eq!(
            call.dialog.party(Role::Caller).number.as_deref(),
            Some("1001")
        );
        assert_eq!(
            call.dialog.party(Role::Caller).display_name.as_deref(),
            Some("Mario")
        );
        assert_eq!(
            call.dialog.party(Role::Callee).number.as_deref(),
            Some("5551234")
        );
        assert!(call
            .feed(CALLEE, &response(180, "INVITE", 1, "a1", "b1", ""))
            .is_empty());
        let ev = call.feed(
            CALLEE,
            &response(
                200,
                "INVITE",
                1,
                "a1",
                "b1",
                &sdp("192.0.2.2", 5000, "0", ""),
            ),
        );
        assert_eq!(
            ev,
            vec![
                DialogEvent::MediaChanged(Role::Callee),
                DialogEvent::Answered
            ]
        );
        assert_eq!(call.dialog.answer_time, Some(Timestamp(3_000_000_000)));
        assert_eq!(
            call.media(Role::Callee),
            Some("192.0.2.2:5000".parse().unwrap())
        );
        assert!(call
            .feed(CALLER, &request("ACK", 1, "a1", Some("b1"), ""))
            .is_empty());
        // A BYE from the callee carries the callee's tag in From.
        let bye = "BYE sip:1001@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bKx\r\nFrom: <sip:5551234@192.0.2.2>;tag=b1\r\nTo: <sip:1001@10.0.0.1>;tag=a1\r\nCall-ID: abc@10.0.0.1\r\nCSeq: 7 BYE\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            call.feed(CALLEE, bye),
            vec![DialogEvent::Ended(EndReason::Bye(Role::Callee))]
        );
        assert_eq!(call.dialog.state, State::Ended);
    }

    #[test]
    fn delayed_offer_takes_offer_from_200_and_answer_from_ack() {
        let (mut call, events) = Call::start(&request("INVITE", 1, "a1", None, ""));
        assert!(events.is_empty());
        call.feed(
            CALLEE,
            &response(
                200,
                "INVITE",
                1,
                "a1",
                "b1",
                &sdp("192.0.2.2", 4376, "8 101", "a=ptime:30\r\n"),
            ),
        );
        assert_eq!(
            call.media(Role::Callee),
            Some("192.0.2.2:4376".parse().unwrap())
        );
        let ev = call.feed(
            CALLER,
            &request("ACK", 1, "a1", Some("b1"), &sdp("10.0.0.1", 4374, "8", "")),
        );
        assert_eq!(ev, vec![DialogEvent::MediaChanged(Role::Caller)]);
        assert_eq!(
            call.media(Role::Caller),
            Some("10.0.0.1:4374".parse().unwrap())
        );
    }

    #[test]
    fn rejected_reinvite_changes_nothing_and_accepted_one_moves_media() {
        let (mut call, _) = Call::start(&request(
            "INVITE",
            1,
            "a1",
            None,
            &sdp("10.0.0.1", 4000, "8", ""),
        ));
        call.feed(
            CALLEE,
            &response(
                200,
                "INVITE",
                1,
                "a1",
                "b1",
                &sdp("192.0.2.2", 5000, "8", ""),
            ),
        );
        let t38 = "v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=image 4002 udptl t38\r\n";
        assert!(call
            .feed(CALLER, &request("INVITE", 2, "a1", Some("b1"), t38))
            .is_empty());
        assert!(call
            .feed(CALLEE, &response(488, "INVITE", 2, "a1", "b1", ""))
            .is_empty());
        assert_eq!(
            call.media(Role::Caller),
            Some("10.0.0.1:4000".parse().unwrap())
        );
        assert!(call.dialog.notes.iter().any(|n| n.contains("488")));
        call.feed(
            CALLER,
            &request(
                "INVITE",
                3,
                "a1",
                Some("b1"),
                &sdp("10.0.0.9", 4100, "8", ""),
            ),
        );
        assert_eq!(
            call.media(Role::Caller),
            Some("10.0.0.1:4000".parse().unwrap()),
            "offer applies on 2xx only"
        );
        let ev = call.feed(
            CALLEE,
            &response(
                200,
                "INVITE",
                3,
                "a1",
                "b1",
                &sdp("192.0.2.2", 5000, "8", "a=sendonly\r\n"),
            ),
        );
        assert_eq!(
            ev,
            vec![
                DialogEvent::MediaChanged(Role::Caller),
                DialogEvent::MediaChanged(Role::Callee)
            ]
        );
        assert_eq!(
            call.media(Role::Caller),
            Some("10.0.0.9:4100".parse().unwrap())
        );
        assert!(call.dialog.notes.iter().any(|n| n.contains("moved")));
        assert!(call.dialog.notes.iter().any(|n| n.contains("sendonly")));
    }

    #[test]
    fn forked_early_media_answered_branch_wins() {
        let (mut call, _) = Call::start(&request(
            "INVITE",
            1,
            "a1",
            None,
            &sdp("10.0.0.1", 4000, "0", ""),
        ));
        call.feed(
            CALLEE,
            &response(
                183,
                "INVITE",
                1,
                "a1",
                "x1",
                &sdp("192.0.2.10", 6000, "0", ""),
            ),
        );
        call.feed(
            CALLEE,
            &response(
                183,
                "INVITE",
                1,
                "a1",
                "x2",
                &sdp("192.0.2.20", 7000, "0", ""),
            ),
        );
        assert_eq!(call.dialog.state, State::Early);
        // The answer from branch x1 carries no SDP: its early SDP applies.
        let ev = call.feed(CALLEE, &response(200, "INVITE", 1, "a1", "x1", ""));
        assert!(ev.contains(&DialogEvent::Answered));
        assert_eq!(
            call.media(Role::Callee),
            Some("192.0.2.10:6000".parse().unwrap())
        );
        assert_eq!(call.dialog.party(Role::Callee).tag.as_deref(), Some("x1"));
        // A late 200 from the other branch is ignored.
        let ev = call.feed(
            CALLEE,
            &response(
                200,
                "INVITE",
                1,
                "a1",
                "x2",
                &sdp("192.0.2.20", 7000, "0", ""),
            ),
        );
        assert!(ev.is_empty());
        assert_eq!(
            call.media(Role::Callee),
            Some("192.0.2.10:6000".parse().unwrap())
        );
    }

    #[test]
    fn auth_challenge_then_retry_is_one_call() {
        let (mut call, _) = Call::start(&request(
            "INVITE",
            1,
            "a1",
            None,
            &sdp("10.0.0.1", 4000, "0", ""),
        ));
        call.feed(CALLEE, &response(407, "INVITE", 1, "a1", "p1", ""));
        assert!(matches!(call.dialog.state, State::Failed { code: 407, .. }));
        call.feed(
            CALLER,
            &request("INVITE", 2, "a1", None, &sdp("10.0.0.1", 4000, "0", "")),
        );
        assert_eq!(call.dialog.state, State::Calling);
        let ev = call.feed(
            CALLEE,
            &response(
                200,
                "INVITE",
                2,
                "a1",
                "b1",
                &sdp("192.0.2.2", 5000, "0", ""),
            ),
        );
        assert!(ev.contains(&DialogEvent::Answered));
    }

    #[test]
    fn retransmitted_invite_and_200_are_harmless() {
        let invite = request("INVITE", 1, "a1", None, &sdp("10.0.0.1", 4000, "0", ""));
        let (mut call, _) = Call::start(&invite);
        let ok = response(
            200,
            "INVITE",
            1,
            "a1",
            "b1",
            &sdp("192.0.2.2", 5000, "0", ""),
        );
        assert_eq!(call.feed(CALLEE, &ok).len(), 2);
        let answered = call.dialog.answer_time;
        assert!(call.feed(CALLER, &invite).is_empty());
        assert!(call.feed(CALLEE, &ok).is_empty());
        assert_eq!(call.dialog.answer_time, answered);
    }

    #[test]
    fn prack_and_update_with_sdp_in_the_early_dialog() {
        // INVITE without SDP; the offer comes in a reliable 183, the answer
        // in the PRACK; then an UPDATE moves the caller before the answer.
        let (mut call, _) = Call::start(&request("INVITE", 1, "a1", None, ""));
        call.feed(
            CALLEE,
            &response(
                183,
                "INVITE",
                1,
                "a1",
                "b1",
                &sdp("192.0.2.2", 5000, "8", ""),
            ),
        );
        assert_eq!(
            call.media(Role::Callee),
            Some("192.0.2.2:5000".parse().unwrap())
        );
        let ev = call.feed(
            CALLER,
            &request(
                "PRACK",
                2,
                "a1",
                Some("b1"),
                &sdp("10.0.0.1", 4000, "8", ""),
            ),
        );
        assert_eq!(ev, vec![DialogEvent::MediaChanged(Role::Caller)]);
        assert_eq!(
            call.media(Role::Caller),
            Some("10.0.0.1:4000".parse().unwrap())
        );
        call.feed(CALLEE, &response(200, "PRACK", 2, "a1", "b1", ""));
        call.feed(
            CALLER,
            &request(
                "UPDATE",
                3,
                "a1",
                Some("b1"),
                &sdp("10.0.0.1", 4100, "8", ""),
            ),
        );
        assert_eq!(
            call.media(Role::Caller),
            Some("10.0.0.1:4000".parse().unwrap()),
            "UPDATE offer applies on its 2xx"
        );
        let ev = call.feed(
            CALLEE,
            &response(
                200,
                "UPDATE",
                3,
                "a1",
                "b1",
                &sdp("192.0.2.2", 5002, "8", ""),
            ),
        );
        assert_eq!(
            ev,
            vec![
                DialogEvent::MediaChanged(Role::Caller),
                DialogEvent::MediaChanged(Role::Callee)
            ]
        );
        assert_eq!(
            call.media(Role::Callee),
            Some("192.0.2.2:5002".parse().unwrap())
        );
        let ev = call.feed(CALLEE, &response(200, "INVITE", 1, "a1", "b1", ""));
        assert_eq!(ev, vec![DialogEvent::Answered]);
        assert_eq!(
            call.media(Role::Caller),
            Some("10.0.0.1:4100".parse().unwrap())
        );
    }

    #[test]
    fn accepted_t38_is_noted_and_rejected_is_not() {
        let (mut call, _) = Call::start(&request(
            "INVITE",
            1,
            "a1",
            None,
            &sdp("10.0.0.1", 4000, "8", ""),
        ));
        call.feed(
            CALLEE,
            &response(
                200,
                "INVITE",
                1,
                "a1",
                "b1",
                &sdp("192.0.2.2", 5000, "8", ""),
            ),
        );
        let t38 = "v=0\r\no=- 1 2 IN IP4 192.0.2.2\r\ns=-\r\nc=IN IP4 192.0.2.2\r\nt=0 0\r\nm=image 5002 udptl t38\r\n";
        call.feed(CALLER, &request("INVITE", 2, "a1", Some("b1"), t38));
        call.feed(CALLEE, &response(488, "INVITE", 2, "a1", "b1", ""));
        assert!(!call.dialog.t38);
        call.feed(CALLER, &request("INVITE", 3, "a1", Some("b1"), t38));
        call.feed(CALLEE, &response(200, "INVITE", 3, "a1", "b1", t38));
        assert!(call.dialog.t38);
        assert!(call.dialog.notes.iter().any(|n| n.contains("T.38")));
        assert_eq!(
            call.media(Role::Callee),
            Some("192.0.2.2:5000".parse().unwrap()),
            "no audio section: the audio addresses stay"
        );
    }

    #[test]
    fn identity_change_in_reinvite_follows_the_party() {
        let (mut call, _) = Call::start(&request(
            "INVITE",
            1,
            "a1",
            None,
            &sdp("10.0.0.1", 4000, "8", ""),
        ));
        call.feed(
            CALLEE,
            &response(
                200,
                "INVITE",
                1,
                "a1",
                "b1",
                &sdp("192.0.2.2", 5000, "8", ""),
            ),
        );
        let reinvite = "INVITE sip:1001@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bKr\r\nFrom: <sip:5551234@192.0.2.2>;tag=b1\r\nTo: <sip:1001@10.0.0.1>;tag=a1\r\nCall-ID: abc@10.0.0.1\r\nCSeq: 9 INVITE\r\nRemote-Party-ID: <sip:5550001@192.0.2.2>;party=calling\r\nContent-Length: 0\r\n\r\n";
        call.feed(CALLEE, reinvite);
        assert_eq!(
            call.dialog.party(Role::Callee).number.as_deref(),
            Some("5550001")
        );
        assert!(call
            .dialog
            .notes
            .iter()
            .any(|n| n.contains("callee changed from 5551234 to 5550001")));
        // The same identity again adds nothing.
        let before = call.dialog.notes.len();
        call.feed(CALLEE, reinvite);
        assert_eq!(call.dialog.notes.len(), before);
    }

    #[test]
    fn old_style_hold_has_no_address() {
        let body = sdp("0.0.0.0", 4000, "8", "");
        let spec = MediaSpec::from_sdp(&SessionDescription::parse(body.as_bytes())).unwrap();
        assert_eq!(spec.addr, None);
        assert_eq!(spec.first_g711(), Some(Law::Alaw));
    }
}
