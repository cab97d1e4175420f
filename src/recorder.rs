//! The recorder: frames in, recordings out.
//!
//! [`Recorder::handle_frame`] decodes a frame, feeds SIP to the call's
//! [`Dialog`] and RTP to the call's [`Timeline`]; timers (RTP inactivity,
//! maximum duration, unanswered INVITEs) run on the capture clock, checked
//! once per second of capture time. Finished recordings go to a [`Store`]
//! (the spool in production, memory in tests); every call's fate is reported
//! as an [`Outcome`].

use crate::call::dedup::{ChannelFilter, Verdict};
use crate::call::dialog::{Dialog, DialogEvent, EndReason, PayloadKind, Role, State};
use crate::call::legs::{self, LegLink, LinkKeys};
use crate::call::media_index::Peeked;
use crate::call::metadata::{self, LocalParty, Metadata, RemoteParty};
use crate::call::parties::{self, Direction};
use crate::call::settings::{InternalCalls, LegMode};
use crate::call::MediaIndex;
use crate::capture::batch::FrameBatch;
use crate::capture::Frame;
use crate::config::{Config, OutputFormat};
use crate::decode::rtp::{is_rtcp, RtpPacket};
use crate::decode::{Datagram, DecodeStats, Decoded, Decoder, FragmentLimits, Transport};
use crate::media::timeline::{Skipped, Timeline, TimelineLimits};
use crate::media::wav::{AudioSink, WavWriter};
use crate::media::{Channel, Law, SampleFormat};
use crate::prefetch;
use crate::ratelimit::SourceLimiter;
use crate::sip::message::{looks_like_sip, Message};
use crate::sip::message::{Limits as SipLimits, SipError};
use crate::sip::sctp::SctpMessages;
use crate::sip::sdp::{MediaProtocol, SessionDescription};
use crate::sip::stream::{SipStreams, StreamLimits, StreamStats};
use crate::Timestamp;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::io::{self, Seek, Write};
use std::net::SocketAddr;

/// Where recordings are written: the spool, or memory in tests.
pub trait Store {
    /// The byte sink a recording's WAV is written to.
    type Output: AudioSink;
    /// Creates the sink for a new recording `id` (unique). `provisional` is
    /// the metadata as known at the answer (duration zero), kept so that a
    /// recording cut short by a crash can be recovered with its metadata.
    fn create(&mut self, id: &str, provisional: &Metadata) -> io::Result<Self::Output>;
    /// [`create`](Self::create), leaving what makes the creation durable
    /// (the spool's fsyncs) to [`sync_creations`](Self::sync_creations),
    /// called later off the packet path, for several creations at once.
    /// What can be refused (quota, full disk) is still refused here. By
    /// default the same as `create`.
    fn create_unsynced(&mut self, id: &str, provisional: &Metadata) -> io::Result<Self::Output> {
        self.create(id, provisional)
    }
    /// Makes the creations of `ids` by
    /// [`create_unsynced`](Self::create_unsynced) durable; one result per
    /// id, in order. Nothing to do by default.
    fn sync_creations(&mut self, ids: &[String]) -> Vec<io::Result<()>> {
        ids.iter().map(|_| Ok(())).collect()
    }
    /// Makes a finished recording durable and visible with its metadata.
    fn commit(&mut self, id: &str, wav: Self::Output, metadata: &Metadata) -> io::Result<()>;
    /// Throws away a recording that will not be finished.
    fn discard(&mut self, id: &str, wav: Self::Output);
    /// Commits several finished recordings (id, sink, final metadata) and
    /// returns each one's result, in order: the same as
    /// [`commit`](Self::commit) on each, which is what it does unless a
    /// store can share the work of making them durable (the spool syncs
    /// each directory once for all of them).
    fn commit_all(
        &mut self,
        recordings: Vec<(String, Self::Output, Metadata)>,
    ) -> Vec<(String, io::Result<()>)> {
        recordings
            .into_iter()
            .map(|(id, wav, metadata)| {
                let result = self.commit(&id, wav, &metadata);
                (id, result)
            })
            .collect()
    }
    /// Whether [`commit`](Self::commit) only queues the commit, which then
    /// finishes in the background and is reported by
    /// [`finished_commits`](Self::finished_commits). `false` unless a store
    /// says otherwise: a commit is done when it returns.
    fn commits_later(&self) -> bool {
        false
    }
    /// The queued commits that have finished since the last call: each
    /// recording's id and result. With `wait`, first waits until every
    /// queued commit has finished. Called about once a second of capture
    /// time, so a store that gathers writes can pass them on here.
    fn finished_commits(&mut self, _wait: bool) -> Vec<(String, io::Result<()>)> {
        Vec::new()
    }
}

/// A recording whose commit the store finishes in the background: what its
/// outcome will say.
struct PendingCommit {
    call_id: String,
    metadata: Box<Metadata>,
    /// Packets lost and expected, for the loss histogram.
    lost: u64,
    total: u64,
}

/// What became of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A recording was committed to the store.
    Recorded {
        /// The SIP Call-ID.
        call_id: String,
        /// The recording id in the store.
        id: String,
        /// Its metadata.
        metadata: Box<Metadata>,
    },
    /// The call produced no recording.
    Skipped {
        /// The SIP Call-ID.
        call_id: String,
        /// Why, for people.
        reason: String,
    },
}

/// Counters of the whole recorder.
#[derive(Debug, Clone, Default)]
pub struct RecorderStats {
    /// Decoder counters (frames, errors, fragments).
    pub decode: DecodeStats,
    /// SIP messages parsed.
    pub sip_messages: u64,
    /// Payloads that looked like SIP but did not parse, or were too large.
    pub sip_errors: u64,
    /// RTP packets matched to a call.
    pub rtp_packets: u64,
    /// Matched RTP packets seen before the call was answered.
    pub rtp_before_answer: u64,
    /// UDP payloads that matched no call (and were not SIP).
    pub unmatched: u64,
    /// RTCP packets (ignored).
    pub rtcp: u64,
    /// Payloads on a media address that are not valid RTP.
    pub rtp_malformed: u64,
    /// INVITE dialogs seen.
    pub calls_seen: u64,
    /// Recordings committed.
    pub recorded: u64,
    /// Calls that produced no recording.
    pub skipped: u64,
    /// New calls refused because the call table was full.
    pub calls_refused: u64,
    /// TCP segments of SIP over TLS (port 5061): encrypted, not followed.
    pub tls_segments: u64,
    /// SIP-over-TLS connections seen (each reported once in the log).
    pub tls_connections: u64,
    /// Answered calls not recorded because none of their RTP was seen.
    pub calls_without_media: u64,
    /// Recordings lost to store (disk) errors.
    pub store_errors: u64,
    /// Unanswered dialogs dropped to make room when the call table was full
    /// (`limits.max_calls`).
    pub calls_evicted: u64,
    /// New calls not tracked because their source exceeded its rate
    /// (`limits.new_calls_per_second_per_source`).
    pub calls_rate_limited: u64,
    /// SIP messages dropped for their size or header count
    /// (`limits.max_sip_message_bytes`, `limits.max_sip_headers`).
    pub sip_oversized: u64,
    /// Media addresses of a call forgotten or not learned because of
    /// `limits.max_streams_per_call`.
    pub media_addrs_dropped: u64,
    /// SDP `m=` lines dropped over `limits.max_sdp_media_lines`.
    pub sdp_media_dropped: u64,
    /// Packet loss of each recorded call (both sides together), percent.
    pub call_loss: crate::metrics::LossHistogram,
    /// RTP packets dropped as copies of one already recorded (same SSRC and
    /// sequence number on the same channel).
    pub rtp_copies: u64,
    /// RTP packets ignored as another hop's copy of a channel's media.
    pub rtp_other_hop: u64,
    /// SIP messages of a known call seen on another hop (merged into it).
    pub sip_hop_copies: u64,
    /// Calls recognised as a second leg of another call (B2BUA/PBX).
    pub legs_linked: u64,
    /// ZRTP packets seen (key exchange for encrypted media).
    pub zrtp_packets: u64,
    /// Calls not recorded because their media is encrypted.
    pub encrypted_calls: u64,
    /// Calls whose media was switched to T.38 fax.
    pub t38_calls: u64,
    /// SIP over TCP/WebSocket stream reassembly counters.
    pub streams: StreamStats,
}

/// How long an ended Call-ID is remembered, so late retransmissions do not
/// start a new call.
const TOMBSTONE_NANOS: i64 = 32_000_000_000;
/// Timers are checked once per this much capture time.
const SWEEP_NANOS: i64 = 1_000_000_000;

/// An answered call's recording. `repr(C)`: the fields every RTP packet
/// reads come first, in the first cache lines, which the recorder's
/// look-ahead prefetches (the `Option` around it keeps its tag in a niche
/// of these fields too).
#[repr(C)]
struct Recording<W: Write + Seek> {
    local: Role,
    direction: Direction,
    format: SampleFormat,
    failed: Option<String>,
    other_codec: Option<String>,
    id: String,
    timeline: Timeline,
    filters: [ChannelFilter; 2],
    /// Written in blocks of about a second by the timeline (no buffer of
    /// its own: one copy less per byte, and no buffer's memory per call).
    writer: WavWriter<W>,
}

/// One tracked call. `repr(C)`: the recording first, see [`Recording`].
#[repr(C)]
struct CallSlot<W: Write + Seek> {
    recording: Option<Recording<W>>,
    /// A ZRTP key exchange was seen on the call's media: RTP after it is
    /// SRTP; counts the RTP packets not recorded because of it.
    zrtp: Option<u64>,
    payloads: [PayloadKind; 128],
    dialog: Dialog,
    /// Why the call cannot be recorded, when it cannot.
    unrecordable: Option<String>,
    media_addrs: Vec<SocketAddr>,
    /// The other leg of this conversation (B2BUA): its slot and Call-ID.
    link: Option<(u32, String, LegLink)>,
    /// The dialog's numbers' keys as its [`RecentInvite`] holds them.
    link_keys: LinkKeys,
    /// A SIP message of the call was seen on another hop.
    other_hop_seen: bool,
}

/// The call-tracking and recording core; see the module doc.
pub struct Recorder<S: Store> {
    decoder: Decoder,
    streams: SipStreams,
    core: Core<S>,
}

struct Core<S: Store> {
    config: Config,
    store: S,
    /// Boxed: the table itself stays small (and in cache) however large a
    /// call's state is, and a slot's address is known without touching it,
    /// which is what [`Recorder::handle_batch`] prefetches.
    slots: Vec<Option<Box<CallSlot<S::Output>>>>,
    free: Vec<u32>,
    by_call_id: FxHashMap<String, u32>,
    index: MediaIndex,
    tombstones: FxHashMap<String, Timestamp>,
    clock: Option<Timestamp>,
    next_sweep: Timestamp,
    stats: RecorderStats,
    outcomes: Vec<Outcome>,
    events: Vec<DialogEvent>,
    limits: TimelineLimits,
    ids: u64,
    /// Unanswered dialogs in arrival order (slot, INVITE time), for
    /// eviction when the table is full; stale entries are skipped.
    unanswered: VecDeque<(u32, Timestamp)>,
    limiter: SourceLimiter,
    sip_limits: SipLimits,
    /// Initial INVITEs of the last `b2bua.window_ms` (capped): the only
    /// candidates for a new leg's first leg.
    recent_invites: VecDeque<RecentInvite>,
    /// SIP over SCTP: user messages being reassembled.
    sctp: SctpMessages,
    /// SIP-over-TLS connections already reported (bounded).
    tls_flows: rustc_hash::FxHashSet<(SocketAddr, SocketAddr)>,
    /// Commits the store is finishing in the background, by recording id.
    pending: FxHashMap<String, PendingCommit>,
}

/// TLS connections remembered for reporting at most.
const MAX_TLS_FLOWS: usize = 4096;

/// A TLS record (content type 20-23, version 3.x) on the SIPS port 5061:
/// encrypted signalling, whose calls cannot be followed.
fn is_sip_over_tls(segment: &crate::decode::tcp::Segment<'_>) -> bool {
    let sips = segment.src.port() == 5061 || segment.dst.port() == 5061;
    sips && matches!(segment.payload, [20..=23, 3, 0..=4, _, _, ..])
}

/// At most this many recent INVITEs are candidates for B2BUA correlation.
const MAX_RECENT_INVITES: usize = 1024;

/// An initial INVITE that a new dialog may be the second leg of.
#[derive(Debug, Clone, Copy)]
struct RecentInvite {
    /// The dialog's INVITE time: a slot reused since is another call.
    time: Timestamp,
    slot: u32,
    /// Its numbers' keys as they are now (refreshed when they change while
    /// it rings): only INVITEs sharing a key with a new one are compared
    /// in full, so the new dialog's candidates are not all read.
    keys: LinkKeys,
}

impl<S: Store> Recorder<S> {
    /// A recorder writing finished recordings to `store`.
    pub fn new(config: &Config, store: S) -> Self {
        let limits = FragmentLimits {
            max_datagrams: config.limits.max_fragmented_datagrams,
            timeout_nanos: (config.limits.fragment_timeout_secs as i64)
                .saturating_mul(1_000_000_000),
            ..FragmentLimits::default()
        };
        Recorder {
            decoder: Decoder::new(limits),
            streams: SipStreams::new(stream_limits(config)),
            core: Core {
                config: config.clone(),
                store,
                slots: Vec::new(),
                free: Vec::new(),
                by_call_id: FxHashMap::default(),
                index: MediaIndex::new(),
                tombstones: FxHashMap::default(),
                sctp: SctpMessages::new(),
                tls_flows: Default::default(),
                pending: FxHashMap::default(),
                clock: None,
                next_sweep: Timestamp(i64::MIN),
                stats: RecorderStats::default(),
                outcomes: Vec::new(),
                events: Vec::new(),
                limits: TimelineLimits::default(),
                ids: 0,
                unanswered: VecDeque::new(),
                limiter: SourceLimiter::new(
                    config.limits.new_calls_per_second_per_source,
                    config.limits.new_call_burst_per_source,
                    config.limits.max_rate_limited_sources,
                ),
                sip_limits: SipLimits {
                    max_message_size: config.limits.max_sip_message_bytes,
                    max_headers: config.limits.max_sip_headers,
                    ..SipLimits::default()
                },
                recent_invites: VecDeque::new(),
            },
        }
    }

    /// Handles a batch of captured frames, in order: the same as
    /// [`handle_frame`](Self::handle_frame) on each, but faster with many
    /// concurrent calls.
    ///
    /// Each call's state is rarely in cache, so a frame would wait on its
    /// misses one after another. While handling frame `i` this looks ahead
    /// in three steps of `d` frames, each needing only what the step before
    /// brought into cache: it takes the peek of frame `i + 3d` (a cheap
    /// read-only decode, done once per frame when the batch was filled:
    /// [`FrameBatch::peeked`]) and prefetches its media index bucket, finds
    /// the call of frame `i + 2d` and prefetches its slot, and prefetches the
    /// recording state and ring position of frame `i + d`; so the misses of
    /// several frames overlap. The look-ahead never changes what is
    /// recorded: a frame the peek accepted is handled from the peek (which
    /// yields exactly what decoding would) and its media index lookup starts
    /// from the peek's bucket only while the index is unchanged since.
    pub fn handle_batch(&mut self, batch: &FrameBatch) {
        const AHEAD: usize = 4;
        const HINTS: usize = 4 * AHEAD;
        let mut hints: [Option<Hint<'_>>; HINTS] = [None; HINTS];
        let n = batch.len();
        for j in 0..n + 3 * AHEAD {
            if let Some(hint) = hints.get_mut(j % HINTS) {
                *hint = batch.peeked(j).and_then(|d| self.core.prefetch_index(d));
            }
            if let Some(Some(hint)) = j.checked_sub(AHEAD).and_then(|k| hints.get_mut(k % HINTS)) {
                self.core.prefetch_slot(hint);
            }
            if let Some(k) = j.checked_sub(2 * AHEAD) {
                if let (Some(frame), Some(Some(hint))) = (batch.get(k), hints.get(k % HINTS)) {
                    self.core.prefetch_recording(hint, frame.ts);
                }
            }
            if let Some(i) = j.checked_sub(3 * AHEAD) {
                match (batch.get(i), hints.get(i % HINTS)) {
                    // The peek is what decoding would yield: no second decode.
                    (Some(frame), Some(Some(hint))) => {
                        self.decoder.note_peeked(frame.ts);
                        self.core.handle_peeked(frame.ts, hint);
                    }
                    (Some(frame), _) => self.handle_frame(&frame),
                    (None, _) => {}
                }
            }
        }
    }

    /// Handles one captured frame.
    pub fn handle_frame(&mut self, frame: &Frame<'_>) {
        match self.decoder.decode(frame.ts, frame.link, frame.data) {
            Ok(Decoded::Datagram(datagram)) => self.core.handle_datagram(frame.ts, &datagram),
            Ok(Decoded::Segment(segment)) => {
                self.core.tick(frame.ts);
                if is_sip_over_tls(&segment) {
                    self.core.note_tls(&segment);
                    return;
                }
                let core = &mut self.core;
                self.streams
                    .push(frame.ts, &segment, &mut |src, dst, message| {
                        core.handle_stream_sip(frame.ts, src, dst, message)
                    });
            }
            Ok(Decoded::FragmentHeld | Decoded::Ignored) | Err(_) => self.core.tick(frame.ts),
        }
    }

    /// Runs the timers as of capture time `now` (for live capture when no
    /// packets arrive).
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.core.tick(now);
        let core = &mut self.core;
        self.streams.expire(now, &mut |src, dst, message| {
            core.handle_stream_sip(now, src, dst, message)
        });
    }

    /// End of input: finalizes every call still open (recordings are flagged
    /// as truncated by the end of the capture).
    pub fn finish(&mut self) {
        if let Some(now) = self.core.clock {
            let core = &mut self.core;
            self.streams
                .finish(&mut |src, dst, message| core.handle_stream_sip(now, src, dst, message));
        }
        self.core.finish_all();
    }

    /// The service is stopping: finalizes every call still open (recordings
    /// are flagged as truncated by shutdown) and commits them to the store.
    pub fn shutdown(&mut self) {
        self.core.finish_with(EndReason::Shutdown);
    }

    /// Applies a changed configuration (SIGHUP) to what follows: users,
    /// local networks, recording settings, timers and the call and SIP size
    /// limits. The store and the fragment reassembly limits keep their
    /// start-up values.
    pub fn reload_config(&mut self, config: &Config) {
        self.core.config = config.clone();
    }

    /// Takes the outcomes reported since the last call.
    pub fn take_outcomes(&mut self) -> Vec<Outcome> {
        std::mem::take(&mut self.core.outcomes)
    }

    /// Counters so far.
    pub fn stats(&self) -> RecorderStats {
        let mut stats = self.core.stats.clone();
        stats.decode = self.decoder.stats().clone();
        stats.streams = self.streams.stats().clone();
        stats
    }

    /// Calls being tracked now.
    pub fn active_calls(&self) -> usize {
        self.core.by_call_id.len()
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.core.store
    }
}

/// What the look-ahead of [`Recorder::handle_batch`] learned of one frame.
#[derive(Debug, Clone, Copy)]
struct Hint<'a> {
    /// The frame's datagram, from [`crate::decode::peek_udp`].
    datagram: Datagram<'a>,
    payload_type: u8,
    sequence: u16,
    /// The call slot and sending party, once found.
    call: Option<Peeked>,
}

/// RTP and RTCP start with version 2 (SIP starts with a letter).
fn looks_like_rtp(first_byte: u8) -> bool {
    first_byte & 0xC0 == 0x80
}

impl<S: Store> Core<S> {
    /// First look-ahead step of [`Recorder::handle_batch`]: whether a
    /// frame's peeked datagram ([`FrameBatch::peeked`]) looks like RTP, and
    /// if so its media index bucket prefetched.
    fn prefetch_index<'a>(&self, datagram: Datagram<'a>) -> Option<Hint<'a>> {
        let [first, second, seq_high, seq_low, ..] = *datagram.payload else {
            return None;
        };
        if !looks_like_rtp(first) {
            return None;
        }
        self.index.prefetch(&datagram.dst);
        Some(Hint {
            datagram,
            payload_type: second & 0x7F,
            sequence: u16::from_be_bytes([seq_high, seq_low]),
            call: None,
        })
    }

    /// Second look-ahead step: the call slot and sender of the frame, its
    /// slot's hot lines prefetched.
    fn prefetch_slot(&self, hint: &mut Hint<'_>) {
        let Some(peeked) = self.index.peek(&hint.datagram.dst) else {
            return;
        };
        let Some(slot) = self
            .slots
            .get(peeked.slot as usize)
            .and_then(Option::as_deref)
        else {
            return;
        };
        // The recording's header (its tag, side, failure) and the
        // timeline's (positions, limits, the rings' addresses).
        prefetch::lines_of(&slot.recording, 256);
        prefetch::line(&slot.zrtp);
        prefetch::line(&slot.dialog.last_activity);
        if let Some(kind) = slot.payloads.get(usize::from(hint.payload_type)) {
            prefetch::line(kind);
        }
        hint.call = Some(peeked);
    }

    /// Third look-ahead step: the recording state the frame will touch
    /// (its channel's duplicate filter, anchor and ring position).
    fn prefetch_recording(&self, hint: &Hint<'_>, now: Timestamp) {
        let Some(Peeked {
            slot: slot_id,
            sender,
            ..
        }) = hint.call
        else {
            return;
        };
        let Some(Some(slot)) = self.slots.get(slot_id as usize) else {
            return;
        };
        let Some(rec) = &slot.recording else {
            return;
        };
        let channel = if sender == rec.local {
            Channel::Left
        } else {
            Channel::Right
        };
        if let Some(filter) = rec.filters.get(channel as usize) {
            filter.prefetch(hint.sequence);
        }
        rec.timeline.prefetch(channel, now);
    }

    /// An RTP-looking UDP frame the look-ahead peeked ([`Hint`]): what
    /// [`handle_datagram`](Self::handle_datagram) does with it, starting
    /// from the peek's media index match.
    fn handle_peeked(&mut self, now: Timestamp, hint: &Hint<'_>) {
        self.tick(now);
        self.handle_media(now, &hint.datagram, hint.call);
    }

    fn handle_datagram(&mut self, now: Timestamp, datagram: &Datagram<'_>) {
        self.tick(now);
        let payload = datagram.payload;
        if datagram.transport == Transport::Sctp {
            // SIP over SCTP (RFC 4168): user messages from DATA chunks.
            let mut sctp = std::mem::take(&mut self.sctp);
            sctp.push(datagram.src, datagram.dst, payload, &mut |message| {
                if looks_like_sip(message) {
                    self.handle_stream_sip(now, datagram.src, datagram.dst, message);
                }
            });
            self.sctp = sctp;
            return;
        }
        if datagram.transport != Transport::Udp {
            return;
        }
        match payload.first() {
            Some(&b) if looks_like_rtp(b) => self.handle_media(now, datagram, None),
            // ZRTP (RFC 6189): version bits 0, magic cookie "ZRTP" at offset 4.
            Some(b) if b & 0xF0 == 0x10 && payload.get(4..8) == Some(b"ZRTP") => {
                self.handle_zrtp(datagram)
            }
            Some(_) if looks_like_sip(payload) => self.handle_sip(now, datagram),
            _ => self.stats.unmatched += 1,
        }
    }

    /// Counts encrypted SIP (TLS on 5061) and reports each connection once.
    fn note_tls(&mut self, segment: &crate::decode::tcp::Segment<'_>) {
        self.stats.tls_segments += 1;
        let flow = if segment.src <= segment.dst {
            (segment.src, segment.dst)
        } else {
            (segment.dst, segment.src)
        };
        if self.tls_flows.len() < MAX_TLS_FLOWS && self.tls_flows.insert(flow) {
            self.stats.tls_connections += 1;
            tracing::warn!(
                a = %flow.0,
                b = %flow.1,
                "SIP over TLS: the signalling is encrypted, so calls on this connection cannot be recorded"
            );
        }
    }

    /// A SIP message framed from a TCP or WebSocket stream.
    fn handle_stream_sip(
        &mut self,
        now: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
        message: &[u8],
    ) {
        let datagram = Datagram {
            transport: Transport::Tcp,
            src,
            dst,
            payload: message,
        };
        self.handle_sip(now, &datagram);
    }

    /// An RTP or RTCP packet; `peeked` is what the look-ahead found of its
    /// destination in the media index, if it looked.
    fn handle_media(&mut self, now: Timestamp, datagram: &Datagram<'_>, peeked: Option<Peeked>) {
        let Some(found) = self.index.lookup_peeked(peeked, datagram.src, datagram.dst) else {
            self.stats.unmatched += 1;
            return;
        };
        if is_rtcp(datagram.payload) {
            self.stats.rtcp += 1;
            return;
        }
        let Ok(rtp) = RtpPacket::parse(datagram.payload) else {
            self.stats.rtp_malformed += 1;
            return;
        };
        let Some(Some(slot)) = self.slots.get_mut(found.slot as usize) else {
            return;
        };
        // Symmetric RTP: the source of packets sent to a party's announced
        // address is where the other party really sends from (NAT).
        if !found.source_known
            && datagram.src != datagram.dst
            && !slot.media_addrs.contains(&datagram.src)
        {
            if slot.media_addrs.len() >= self.config.limits.max_streams_per_call {
                self.stats.media_addrs_dropped += 1;
            } else if self.index.learn(datagram.src, found.slot, found.sender) {
                slot.media_addrs.push(datagram.src);
            }
        }
        slot.dialog.last_activity = now;
        let Some(rec) = slot.recording.as_mut() else {
            self.stats.rtp_before_answer += 1;
            return;
        };
        self.stats.rtp_packets += 1;
        if rec.failed.is_some() {
            return;
        }
        if let Some(encrypted) = slot.zrtp.as_mut() {
            *encrypted += 1;
            return;
        }
        let (channel, filter) = if found.sender == rec.local {
            (Channel::Left, &mut rec.filters[0])
        } else {
            (Channel::Right, &mut rec.filters[1])
        };
        let dedup = &self.config.dedup;
        match filter.check(
            now,
            datagram.src,
            datagram.dst,
            rtp.ssrc,
            rtp.sequence,
            rtp.timestamp,
            dedup.drop_copies,
            dedup.lock_hop,
            (dedup.hop_idle_ms as i64).saturating_mul(1_000_000),
        ) {
            Verdict::Fresh => {}
            Verdict::Copy => {
                self.stats.rtp_copies += 1;
                return;
            }
            Verdict::OtherHop => {
                self.stats.rtp_other_hop += 1;
                return;
            }
        }
        let kind = slot
            .payloads
            .get(usize::from(rtp.payload_type))
            .copied()
            .unwrap_or(PayloadKind::Other);
        match kind {
            PayloadKind::G711(law) => {
                if let Err(e) = rec.timeline.place(
                    channel,
                    now,
                    rtp.ssrc,
                    rtp.sequence,
                    rtp.timestamp,
                    law,
                    rtp.payload,
                    &mut rec.writer,
                ) {
                    rec.failed = Some(e.to_string());
                }
            }
            PayloadKind::TelephoneEvent => {
                rec.timeline
                    .skip(channel, Skipped::TelephoneEvent, rtp.ssrc, rtp.sequence)
            }
            PayloadKind::ComfortNoise => {
                rec.timeline
                    .skip(channel, Skipped::ComfortNoise, rtp.ssrc, rtp.sequence)
            }
            PayloadKind::Other => {
                rec.timeline
                    .skip(channel, Skipped::OtherCodec, rtp.ssrc, rtp.sequence);
                if rec.other_codec.is_none() {
                    let name = slot
                        .dialog
                        .parties
                        .iter()
                        .filter_map(|p| p.media.as_ref())
                        .flat_map(|m| m.payloads.iter())
                        .find(|(pt, _, _)| *pt == rtp.payload_type)
                        .map_or_else(
                            || format!("payload type {}", rtp.payload_type),
                            |(_, _, n)| n.clone(),
                        );
                    rec.other_codec = Some(name);
                }
            }
        }
    }

    fn handle_sip(&mut self, now: Timestamp, datagram: &Datagram<'_>) {
        if datagram.payload.len() > self.config.limits.max_sip_message_bytes {
            self.stats.sip_errors += 1;
            return;
        }
        let msg = match Message::parse_with_limits(datagram.payload, &self.sip_limits) {
            Ok((msg, _)) => msg,
            Err(e) => {
                self.stats.sip_errors += 1;
                if e == SipError::TooLarge {
                    self.stats.sip_oversized += 1;
                }
                return;
            }
        };
        self.stats.sip_messages += 1;
        let Some(call_id) = msg.call_id() else {
            self.stats.sip_errors += 1;
            return;
        };
        let slot_id = match self.by_call_id.get(call_id) {
            Some(&id) => {
                self.note_other_hop(id, datagram);
                id
            }
            None => {
                if self.tombstones.contains_key(call_id) {
                    return;
                }
                let Some(dialog) = Dialog::from_invite(now, datagram.src, datagram.dst, &msg)
                else {
                    return;
                };
                if !self.limiter.allow(datagram.src.ip(), now) {
                    self.stats.calls_rate_limited += 1;
                    return;
                }
                match self.insert(dialog, now) {
                    Some(id) => {
                        self.link_legs(id, &msg);
                        id
                    }
                    None => return,
                }
            }
        };
        let max_media = self.config.limits.max_sdp_media_lines;
        let sdp = msg
            .sdp_body()
            .map(|body| SessionDescription::parse_with_limit(body, max_media));
        self.stats.sdp_media_dropped += sdp.as_ref().map_or(0, |s| s.media_dropped as u64);
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        if let Some(Some(slot)) = self.slots.get_mut(slot_id as usize) {
            slot.dialog
                .handle_message(now, datagram.src, &msg, sdp.as_ref(), &mut events);
            // A ringing call's numbers can change (an authenticated retry
            // with an asserted identity): its candidate keys follow.
            if !slot.dialog.is_answered() && slot.link.is_none() {
                let keys = LinkKeys::of(&slot.dialog);
                if keys != slot.link_keys {
                    slot.link_keys = keys;
                    let time = slot.dialog.invite_time;
                    if let Some(r) = self
                        .recent_invites
                        .iter_mut()
                        .find(|r| r.slot == slot_id && r.time == time)
                    {
                        r.keys = keys;
                    }
                }
            }
        }
        for &event in &events {
            match event {
                DialogEvent::MediaChanged(role) => self.media_changed(slot_id, role),
                DialogEvent::Answered => self.start_recording(slot_id, now),
                DialogEvent::Ended(reason) => self.finalize(slot_id, now, reason),
            }
        }
        self.events = events;
    }

    /// A SIP message of a known call between addresses that are neither of
    /// its parties' signalling addresses: the same call seen on another hop
    /// (proxy, SBC, a second mirror). It is merged into the call: the dialog
    /// is keyed by Call-ID, so state follows whichever hop shows it first.
    fn note_other_hop(&mut self, slot_id: u32, datagram: &Datagram<'_>) {
        let Some(Some(slot)) = self.slots.get_mut(slot_id as usize) else {
            return;
        };
        let ends = [
            slot.dialog.party(Role::Caller).signalling,
            slot.dialog.party(Role::Callee).signalling,
        ];
        let (src, dst) = (Some(datagram.src.ip()), Some(datagram.dst.ip()));
        if (src == ends[0] && dst == ends[1]) || (src == ends[1] && dst == ends[0]) {
            return;
        }
        self.stats.sip_hop_copies += 1;
        if !slot.other_hop_seen {
            slot.other_hop_seen = true;
            tracing::info!(
                call_id = %slot.dialog.call_id,
                hop = %format!("{} -> {}", datagram.src, datagram.dst),
                "same Call-ID on another hop: merged into one call"
            );
            slot.dialog.note(format!(
                "also seen on another hop ({} -> {}), merged",
                datagram.src.ip(),
                datagram.dst.ip()
            ));
        }
    }

    /// Looks for the call that a new dialog is another leg of (see
    /// [`crate::call::legs`]) and links the two.
    fn link_legs(&mut self, slot_id: u32, msg: &Message<'_>) {
        let b2bua = &self.config.b2bua;
        let mut found: Option<(u32, LegLink)> = None;
        for name in &b2bua.correlation_headers {
            for value in msg.headers(name) {
                let value = value.trim();
                if let Some(&other) = self.by_call_id.get(value) {
                    if other != slot_id {
                        found = Some((other, LegLink::Header));
                    }
                }
            }
            if found.is_some() {
                break;
            }
        }
        let Some(Some(new)) = self.slots.get(slot_id as usize) else {
            return;
        };
        let window = (b2bua.window_ms as i64).saturating_mul(1_000_000);
        let now = new.dialog.invite_time;
        let keys = new.link_keys;
        while self
            .recent_invites
            .front()
            .is_some_and(|r| now.nanos_since(r.time) > window)
        {
            self.recent_invites.pop_front();
        }
        if found.is_none() && b2bua.auto {
            found = self.recent_invites.iter().find_map(|r| {
                if !r.keys.may_link(keys) || r.slot == slot_id {
                    return None;
                }
                let s = self.slots.get(r.slot as usize)?.as_ref()?;
                if s.link.is_some() || s.dialog.invite_time != r.time {
                    return None;
                }
                legs::auto_link(&s.dialog, &new.dialog, window).map(|l| (r.slot, l))
            });
        }
        if self.recent_invites.len() >= MAX_RECENT_INVITES {
            self.recent_invites.pop_front();
        }
        self.recent_invites.push_back(RecentInvite {
            time: now,
            slot: slot_id,
            keys,
        });
        let Some((other, how)) = found else { return };
        let new_call_id = new.dialog.call_id.clone();
        let Some(Some(first)) = self.slots.get_mut(other as usize) else {
            return;
        };
        if first.link.is_some() {
            return;
        }
        let first_call_id = first.dialog.call_id.clone();
        first.link = Some((slot_id, new_call_id.clone(), how));
        first.dialog.note(format!(
            "B2BUA leg of call {new_call_id} (linked by {})",
            how.describe()
        ));
        if let Some(Some(new)) = self.slots.get_mut(slot_id as usize) {
            new.link = Some((other, first_call_id.clone(), how));
            new.dialog.note(format!(
                "B2BUA leg of call {first_call_id} (linked by {})",
                how.describe()
            ));
        }
        self.stats.legs_linked += 1;
        tracing::info!(
            call_id = %new_call_id,
            other = %first_call_id,
            by = how.describe(),
            "two dialogs are legs of one conversation"
        );
    }

    /// When this call is a leg of another (B2BUA), whether this leg is the one
    /// recorded: `Err(reason)` when it is not. When it is and the other leg
    /// is recording already, that recording is discarded.
    fn leg_choice(&mut self, slot_id: u32) -> Result<(), String> {
        if self.config.b2bua.mode == LegMode::EachLeg {
            return Ok(());
        }
        let Some(Some(slot)) = self.slots.get(slot_id as usize) else {
            return Ok(());
        };
        let Some((other, other_call_id, _)) = slot.link.clone() else {
            return Ok(());
        };
        let Some(Some(partner)) = self.slots.get(other as usize) else {
            return Ok(());
        };
        let crosses = |d: &Dialog| {
            let caller = d
                .party(Role::Caller)
                .signalling
                .map(|ip| self.config.is_local(ip));
            let callee = d
                .party(Role::Callee)
                .signalling
                .map(|ip| self.config.is_local(ip));
            matches!((caller, callee), (Some(a), Some(b)) if a != b)
        };
        let (mine, theirs) = (crosses(&slot.dialog), crosses(&partner.dialog));
        let first = slot.dialog.invite_time <= partner.dialog.invite_time;
        let preferred = match (mine, theirs) {
            (true, false) => true,
            (false, true) => false,
            _ => first,
        };
        if !preferred {
            let why = if theirs {
                "it crosses the local/remote boundary"
            } else {
                "it is the first leg"
            };
            return Err(format!(
                "B2BUA leg of call {other_call_id}, which is recorded instead ({why})"
            ));
        }
        let call_id = slot.dialog.call_id.clone();
        let Some(Some(partner)) = self.slots.get_mut(other as usize) else {
            return Ok(());
        };
        if let Some(rec) = partner.recording.take() {
            partner.unrecordable = Some(format!(
                "B2BUA leg of call {call_id}, which is recorded instead (it crosses the local/remote boundary)"
            ));
            self.discard(rec);
        }
        Ok(())
    }

    /// Throws a recording away (leg or encrypted call not to be kept).
    fn discard(&mut self, rec: Recording<S::Output>) {
        let Recording { id, writer, .. } = rec;
        match writer.finish() {
            Ok(out) => self.store.discard(&id, out),
            Err(e) => tracing::warn!(id = %id, error = %e, "could not close a discarded recording"),
        }
    }

    /// A ZRTP packet on a call's media address: the call's RTP is SRTP from
    /// now on, which cannot be recorded.
    fn handle_zrtp(&mut self, datagram: &Datagram<'_>) {
        self.stats.zrtp_packets += 1;
        let Some(found) = self.index.lookup(datagram.src, datagram.dst) else {
            self.stats.unmatched += 1;
            return;
        };
        if let Some(Some(slot)) = self.slots.get_mut(found.slot as usize) {
            if slot.zrtp.is_none() {
                slot.zrtp = Some(0);
                tracing::info!(call_id = %slot.dialog.call_id, "ZRTP key exchange: the call's media is encrypted");
            }
        }
    }

    fn insert(&mut self, dialog: Dialog, now: Timestamp) -> Option<u32> {
        if self.by_call_id.len() >= self.config.limits.max_calls && !self.evict_unanswered(now) {
            self.stats.calls_refused += 1;
            return None;
        }
        let invite_time = dialog.invite_time;
        self.stats.calls_seen += 1;
        let call_id = dialog.call_id.clone();
        let slot = CallSlot {
            link_keys: LinkKeys::of(&dialog),
            dialog,
            recording: None,
            unrecordable: None,
            media_addrs: Vec::new(),
            payloads: static_payloads(),
            link: None,
            zrtp: None,
            other_hop_seen: false,
        };
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(free) = self.slots.get_mut(id as usize) {
                    *free = Some(Box::new(slot));
                }
                id
            }
            None => {
                self.slots.push(Some(Box::new(slot)));
                (self.slots.len() - 1) as u32
            }
        };
        self.by_call_id.insert(call_id, id);
        self.unanswered.push_back((id, invite_time));
        Some(id)
    }

    /// True when `entry` of the unanswered queue still names an unanswered call.
    fn still_unanswered(&self, (slot_id, invite_time): (u32, Timestamp)) -> bool {
        matches!(self.slots.get(slot_id as usize), Some(Some(slot))
            if slot.dialog.answer_time.is_none() && slot.dialog.invite_time == invite_time)
    }

    /// Drops the oldest unanswered dialog to make room; false when every
    /// tracked call is answered.
    fn evict_unanswered(&mut self, now: Timestamp) -> bool {
        while let Some(entry) = self.unanswered.pop_front() {
            if self.still_unanswered(entry) {
                self.stats.calls_evicted += 1;
                self.finalize(entry.0, now, EndReason::Evicted);
                return true;
            }
        }
        false
    }

    fn media_changed(&mut self, slot_id: u32, role: Role) {
        let Some(Some(slot)) = self.slots.get_mut(slot_id as usize) else {
            return;
        };
        let mut payloads = static_payloads();
        for party in &slot.dialog.parties {
            if let Some(media) = &party.media {
                for &(pt, kind, _) in &media.payloads {
                    if let Some(entry) = payloads.get_mut(usize::from(pt)) {
                        *entry = kind;
                    }
                }
            }
        }
        slot.payloads = payloads;
        let Some((addr, firsthand)) = slot
            .dialog
            .party(role)
            .media
            .as_ref()
            .and_then(|m| m.addr.map(|a| (a, m.firsthand)))
        else {
            return;
        };
        if !self.index.announce(addr, slot_id, role, firsthand) {
            return;
        }
        if !slot.media_addrs.contains(&addr) {
            if slot.media_addrs.len() >= self.config.limits.max_streams_per_call {
                self.stats.media_addrs_dropped += 1;
                let old = slot.media_addrs.remove(0);
                self.index.remove_if_owned(&old, slot_id);
            }
            slot.media_addrs.push(addr);
        }
    }

    fn start_recording(&mut self, slot_id: u32, now: Timestamp) {
        let leg = self.leg_choice(slot_id);
        let Some(Some(slot)) = self.slots.get_mut(slot_id as usize) else {
            return;
        };
        if let Err(reason) = leg {
            tracing::info!(call_id = %slot.dialog.call_id, %reason, "leg not recorded");
            slot.unrecordable = Some(reason);
            return;
        }
        let dialog = &slot.dialog;
        if self.config.numbers.internal_calls == InternalCalls::Skip
            && parties::both_local(dialog, &self.config)
        {
            slot.unrecordable = Some(
                "internal call (both parties local): not recorded (numbers.internal_calls = skip)"
                    .into(),
            );
            return;
        }
        let specs: Vec<_> = [Role::Callee, Role::Caller]
            .iter()
            .filter_map(|&r| dialog.party(r).media.as_ref())
            .collect();
        if specs.is_empty() {
            slot.unrecordable = Some(if dialog.t38 {
                "T.38 fax (UDPTL) cannot be recorded".into()
            } else {
                "no SDP seen for the call: its media cannot be located".into()
            });
            return;
        }
        if specs.iter().any(|m| m.protocol == MediaProtocol::Srtp) {
            self.stats.encrypted_calls += 1;
            slot.unrecordable = Some(
                "encrypted media (SRTP: RTP/SAVP, crypto or DTLS fingerprint) cannot be recorded"
                    .into(),
            );
            return;
        }
        let Some(law) = specs.iter().find_map(|m| m.first_g711()) else {
            let codec = specs
                .iter()
                .find_map(|m| m.first_codec())
                .unwrap_or("none")
                .to_string();
            slot.unrecordable = Some(format!(
                "codec {codec} is not supported (only PCMU and PCMA are recorded)"
            ));
            return;
        };
        let sides = parties::sides(dialog, &self.config);
        let format = match self.config.recording.format {
            OutputFormat::G711 => SampleFormat::G711(law),
            OutputFormat::Pcm16 => SampleFormat::Pcm16,
        };
        self.ids += 1;
        let id = recording_id(dialog, now, self.ids);
        let provisional = provisional_metadata(dialog, sides, now, &self.config);
        let writer = self
            .store
            .create(&id, &provisional)
            .and_then(|out| WavWriter::new(out, format, 2));
        match writer {
            Ok(writer) => {
                slot.recording = Some(Recording {
                    id,
                    timeline: Timeline::new(now, format, self.limits),
                    writer,
                    format,
                    local: sides.local,
                    direction: sides.direction,
                    other_codec: None,
                    failed: None,
                    filters: [ChannelFilter::new(), ChannelFilter::new()],
                });
            }
            Err(e) => {
                self.stats.store_errors += 1;
                tracing::error!(call_id = %dialog.call_id, error = %e, "cannot create recording");
                slot.unrecordable = Some(format!("cannot write to the spool: {e}"));
            }
        }
    }

    /// Runs the timers when a second of capture time has passed.
    fn tick(&mut self, now: Timestamp) {
        let clock = match self.clock {
            Some(c) if c >= now => return,
            _ => now,
        };
        self.clock = Some(clock);
        if clock < self.next_sweep {
            return;
        }
        self.next_sweep = clock.add_nanos(SWEEP_NANOS);
        self.sweep(clock);
    }

    fn sweep(&mut self, now: Timestamp) {
        let rtp_timeout = secs(self.config.recording.rtp_timeout_secs);
        let max_duration = secs(self.config.recording.max_duration_secs);
        let unanswered = secs(self.config.recording.unanswered_timeout_secs);
        let mut due = Vec::new();
        for (id, slot) in self.slots.iter_mut().enumerate() {
            let Some(slot) = slot else { continue };
            let dialog = &slot.dialog;
            let idle = now.nanos_since(dialog.last_activity);
            match dialog.answer_time {
                Some(answer) => {
                    if now.nanos_since(answer) >= max_duration {
                        due.push((
                            id as u32,
                            answer.add_nanos(max_duration),
                            EndReason::MaxDuration,
                        ));
                    } else if idle >= rtp_timeout {
                        due.push((id as u32, dialog.last_activity, EndReason::Inactivity));
                    } else if let Some(rec) = slot.recording.as_mut() {
                        if rec.failed.is_none() {
                            if let Err(e) = rec.timeline.advance(now, &mut rec.writer) {
                                rec.failed = Some(e.to_string());
                            }
                        }
                    }
                }
                None if idle >= unanswered => {
                    due.push((id as u32, dialog.last_activity, EndReason::Inactivity));
                }
                None => {}
            }
        }
        for (id, end, reason) in due {
            self.finalize(id, end, reason);
        }
        self.settle_commits(false);
        self.tombstones
            .retain(|_, &mut ended| now.nanos_since(ended) < TOMBSTONE_NANOS);
        let mut unanswered = std::mem::take(&mut self.unanswered);
        unanswered.retain(|&entry| self.still_unanswered(entry));
        self.unanswered = unanswered;
    }

    fn finish_all(&mut self) {
        self.finish_with(EndReason::EndOfInput);
    }

    fn finish_with(&mut self, reason: EndReason) {
        for id in 0..self.slots.len() {
            if let Some(Some(slot)) = self.slots.get(id) {
                let end = slot.dialog.last_activity;
                self.finalize(id as u32, end, reason);
            }
        }
        self.settle_commits(true);
    }

    fn finalize(&mut self, slot_id: u32, end: Timestamp, reason: EndReason) {
        let Some(slot) = self.slots.get_mut(slot_id as usize).and_then(Option::take) else {
            return;
        };
        self.free.push(slot_id);
        self.by_call_id.remove(&slot.dialog.call_id);
        self.index.remove_call(&slot.media_addrs, slot_id);
        self.tombstones
            .insert(slot.dialog.call_id.clone(), self.clock.unwrap_or(end));
        if let Some((other, _, _)) = &slot.link {
            if let Some(Some(partner)) = self.slots.get_mut(*other as usize) {
                if partner.link.as_ref().is_some_and(|l| l.0 == slot_id) {
                    partner.link = None;
                }
            }
        }
        if slot.dialog.t38 {
            self.stats.t38_calls += 1;
        }
        let CallSlot {
            dialog,
            recording,
            mut unrecordable,
            zrtp,
            ..
        } = *slot;
        let call_id = dialog.call_id.clone();
        let recording = match (recording, zrtp) {
            (Some(rec), Some(encrypted)) => {
                self.discard(rec);
                self.stats.encrypted_calls += 1;
                unrecordable = Some(format!(
                    "encrypted media: a ZRTP key exchange was seen and the RTP after it is SRTP ({encrypted} packets), which cannot be recorded"
                ));
                None
            }
            (rec, _) => rec,
        };
        let outcome = match recording {
            Some(rec) => self.commit(&dialog, rec, end, reason),
            None => Some(Outcome::Skipped {
                call_id: call_id.clone(),
                reason: unrecordable.unwrap_or_else(|| unanswered_reason(&dialog, reason)),
            }),
        };
        if let Some(outcome) = outcome {
            self.report(outcome);
        }
    }

    /// Counts, logs and keeps what became of a call.
    fn report(&mut self, outcome: Outcome) {
        match &outcome {
            Outcome::Recorded {
                call_id,
                id,
                metadata,
            } => {
                self.stats.recorded += 1;
                tracing::info!(
                    call_id = %call_id,
                    id = %id,
                    direction = metadata.direction,
                    local = %metadata.local_party.phone_number,
                    remote = %metadata.remote_party.phone_number,
                    duration = %metadata.duration,
                    "recorded call"
                );
            }
            Outcome::Skipped { call_id, reason } => {
                self.stats.skipped += 1;
                tracing::info!(call_id = %call_id, %reason, "call not recorded");
            }
        }
        self.outcomes.push(outcome);
    }

    /// Reports the commits the store has finished in the background (all of
    /// them, waiting for the last, with `wait`).
    fn settle_commits(&mut self, wait: bool) {
        for (id, result) in self.store.finished_commits(wait) {
            if let Some(p) = self.pending.remove(&id) {
                let outcome = self.commit_outcome(p, id, result);
                self.report(outcome);
            }
        }
    }

    fn commit(
        &mut self,
        dialog: &Dialog,
        mut rec: Recording<S::Output>,
        end: Timestamp,
        reason: EndReason,
    ) -> Option<Outcome> {
        let answer = dialog.answer_time.unwrap_or(dialog.invite_time);
        let end = end.max(answer);
        let heard: u64 = [Channel::Left, Channel::Right]
            .iter()
            .map(|&c| {
                let s = rec.timeline.stats(c);
                s.packets + s.comfort_noise + s.telephone_events + s.other_codec + s.late
            })
            .sum();
        if heard == 0 && !self.config.recording.keep_calls_without_media {
            // The signalling crossed this capture point but the media did not
            // (asymmetric routing, a SIP-only mirror): a silent file would
            // only mislead whoever listens to it.
            self.stats.calls_without_media += 1;
            let Recording { id, writer, .. } = rec;
            if let Ok(out) = writer.finish() {
                self.store.discard(&id, out);
            }
            return Some(Outcome::Skipped {
                call_id: dialog.call_id.clone(),
                reason: "answered, but none of its RTP was seen (its media did not cross this \
                         capture point); no recording (recording.keep_calls_without_media = false)"
                    .into(),
            });
        }
        let flushed = match rec.failed.take() {
            Some(e) => Err(io::Error::other(e)),
            None => rec.timeline.finish(end, &mut rec.writer),
        };
        let metadata = build_metadata(dialog, &rec, answer, end, reason, &self.config);
        let (lost, total) = [Channel::Left, Channel::Right]
            .iter()
            .map(|&c| rec.timeline.stats(c))
            .fold((0u64, 0u64), |(l, t), s| {
                (l + s.lost, t + s.packets + s.lost)
            });
        let Recording { id, writer, .. } = rec;
        let committed = flushed
            .and_then(|()| writer.finish())
            .and_then(|out| self.store.commit(&id, out, &metadata));
        let pending = PendingCommit {
            call_id: dialog.call_id.clone(),
            metadata: Box::new(metadata),
            lost,
            total,
        };
        if committed.is_ok() && self.store.commits_later() {
            self.pending.insert(id, pending);
            return None;
        }
        Some(self.commit_outcome(pending, id, committed))
    }

    /// The outcome of a recording's commit, counted.
    fn commit_outcome(
        &mut self,
        p: PendingCommit,
        id: String,
        committed: io::Result<()>,
    ) -> Outcome {
        match committed {
            Ok(()) => {
                if p.total > 0 {
                    self.stats
                        .call_loss
                        .observe(p.lost as f64 * 100.0 / p.total as f64);
                }
                Outcome::Recorded {
                    call_id: p.call_id,
                    id,
                    metadata: p.metadata,
                }
            }
            Err(e) => {
                self.stats.store_errors += 1;
                tracing::error!(call_id = %p.call_id, id = %id, error = %e, "recording lost: cannot write it");
                Outcome::Skipped {
                    call_id: p.call_id,
                    reason: format!("writing the recording failed: {e}"),
                }
            }
        }
    }
}

/// The stream reassembler's limits from `[limits]`.
fn stream_limits(config: &Config) -> StreamLimits {
    let limits = &config.limits;
    StreamLimits {
        max_stream_bytes: limits.tcp_max_stream_bytes,
        max_streams: limits.tcp_max_streams,
        max_total_bytes: limits.tcp_max_total_bytes,
        idle_timeout_nanos: secs(limits.tcp_idle_timeout_secs),
        max_message_bytes: limits.max_sip_message_bytes,
        ..StreamLimits::default()
    }
}

fn secs(s: u64) -> i64 {
    i64::try_from(s)
        .unwrap_or(i64::MAX / 1_000_000_000)
        .saturating_mul(1_000_000_000)
}

/// The payload-type table before any SDP: the static types of RFC 3551.
fn static_payloads() -> [PayloadKind; 128] {
    let mut table = [PayloadKind::Other; 128];
    table[0] = PayloadKind::G711(Law::Ulaw);
    table[8] = PayloadKind::G711(Law::Alaw);
    table[13] = PayloadKind::ComfortNoise;
    table[19] = PayloadKind::ComfortNoise;
    table
}

fn unanswered_reason(dialog: &Dialog, reason: EndReason) -> String {
    match &dialog.state {
        State::Failed { code, reason } => format!("unanswered: {code} {reason}"),
        _ if dialog.cancelled => "unanswered: cancelled by the caller".to_string(),
        State::Ended => "ended before it was answered".to_string(),
        _ if reason == EndReason::Evicted => {
            "unanswered: dropped because the call table was full (limits.max_calls)".to_string()
        }
        _ if reason == EndReason::Shutdown => {
            "unanswered: no final response before taprec was stopped".to_string()
        }
        _ if reason == EndReason::EndOfInput => {
            "unanswered: no final response before the end of the capture".to_string()
        }
        _ => "unanswered: no final response".to_string(),
    }
}

/// A unique, file-name-safe recording id: answer time plus a hash.
fn recording_id(dialog: &Dialog, answer: Timestamp, serial: u64) -> String {
    // FNV-1a 64: stable across runs and platforms.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let tag = dialog.party(Role::Callee).tag.as_deref().unwrap_or("");
    for part in [
        dialog.call_id.as_bytes(),
        tag.as_bytes(),
        &answer.nanos().to_le_bytes(),
        &serial.to_le_bytes(),
    ] {
        for &b in part {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!(
        "{}-{hash:016x}",
        answer.to_utc().format("%Y%m%dT%H%M%S%.3fZ")
    )
}

/// The metadata as known at the answer, for crash recovery.
fn provisional_metadata(
    dialog: &Dialog,
    sides: parties::Sides,
    answer: Timestamp,
    config: &Config,
) -> Metadata {
    Metadata {
        start_date_time: metadata::format_start(answer),
        duration: metadata::format_duration(0),
        direction: sides.direction as u8,
        local_party: LocalParty {
            username: parties::username(dialog, sides.local, config),
            phone_number: parties::phone_number(dialog, sides.local, config),
        },
        remote_party: RemoteParty {
            phone_number: parties::phone_number(dialog, sides.local.other(), config),
        },
        pbx_call_id: dialog.call_id.clone(),
        notes: String::new(),
        preserved: config.recording.preserved,
    }
}

fn build_metadata<W: Write + Seek>(
    dialog: &Dialog,
    rec: &Recording<W>,
    answer: Timestamp,
    end: Timestamp,
    reason: EndReason,
    config: &Config,
) -> Metadata {
    let local = rec.local;
    let remote = local.other();
    let mut notes = Vec::new();
    let codec = match rec.format {
        SampleFormat::G711(law) => format!("codec {}", law.name()),
        SampleFormat::Pcm16 => "PCM-16 from G.711".to_string(),
    };
    notes.push(codec);
    let mut loss = Vec::new();
    for (name, channel) in [("local", Channel::Left), ("remote", Channel::Right)] {
        let s = rec.timeline.stats(channel);
        let total = s.packets + s.lost;
        if total == 0 {
            loss.push(format!("no audio from the {name} party"));
        } else {
            loss.push(format!(
                "{name} packet loss {:.1}% ({} of {})",
                s.lost as f64 * 100.0 / total as f64,
                s.lost,
                total
            ));
        }
    }
    notes.push(loss.join(", "));
    let events: u64 = [Channel::Left, Channel::Right]
        .iter()
        .map(|&c| rec.timeline.stats(c).telephone_events)
        .sum();
    if events > 0 {
        notes.push(format!("{events} DTMF event packets (not audible)"));
    }
    if let Some(codec) = &rec.other_codec {
        let n: u64 = [Channel::Left, Channel::Right]
            .iter()
            .map(|&c| rec.timeline.stats(c).other_codec)
            .sum();
        notes.push(format!("{n} packets in {codec} not recorded (silence)"));
    }
    let copies: u64 = rec.filters.iter().map(|f| f.copies).sum();
    let other_hop: u64 = rec.filters.iter().map(|f| f.other_hop).sum();
    if copies > 0 || other_hop > 0 {
        notes.push(format!(
            "duplicates dropped: {copies} RTP packet copies, {other_hop} packets of the same media on another hop"
        ));
    }
    notes.extend(dialog.notes.iter().cloned());
    notes.push(match reason {
        EndReason::Bye(role) if role == local => "ended by BYE from the local party".to_string(),
        EndReason::Bye(_) => "ended by BYE from the remote party".to_string(),
        EndReason::Inactivity => format!(
            "ended after {} s without RTP or SIP (no BYE seen)",
            config.recording.rtp_timeout_secs
        ),
        EndReason::MaxDuration => format!(
            "truncated at the maximum duration of {} s",
            config.recording.max_duration_secs
        ),
        EndReason::EndOfInput => {
            "truncated: end of input (the capture ended during the call)".to_string()
        }
        EndReason::Evicted => "truncated: the call table was full".to_string(),
        EndReason::Shutdown => {
            "truncated by shutdown (taprec was stopped during the call)".to_string()
        }
    });
    Metadata {
        start_date_time: metadata::format_start(answer),
        duration: metadata::format_duration(end.nanos_since(answer)),
        direction: rec.direction as u8,
        local_party: LocalParty {
            username: parties::username(dialog, local, config),
            phone_number: parties::phone_number(dialog, local, config),
        },
        remote_party: RemoteParty {
            phone_number: parties::phone_number(dialog, remote, config),
        },
        pbx_call_id: dialog.call_id.clone(),
        notes: notes.join("; "),
        preserved: config.recording.preserved,
    }
}
