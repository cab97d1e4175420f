//! SIP over byte streams: TCP reassembly and message framing, and SIP over
//! WebSocket (RFC 7118).
//!
//! [`SipStreams`] is sans-IO: the recorder hands it every decoded TCP
//! [`Segment`] and gets back, through a callback, each complete SIP message
//! with its endpoints. Each direction of a connection is a separate stream,
//! keyed by (source, destination).
//!
//! - What a connection carries is decided on its first bytes: a SIP request
//!   or status line, or the HTTP Upgrade handshake of the `sip` WebSocket
//!   subprotocol. When the SYN was seen, the stream is held undecided (no
//!   bytes, short timeout, first to be evicted) so that its first segments
//!   may arrive out of order; otherwise (connections already open when the
//!   capture started) a segment whose payload starts like SIP starts the
//!   stream. Other TCP traffic keeps no state; SIP is found on any port.
//! - Segments are put in sequence order: retransmitted and overlapping bytes
//!   are dropped, early segments are held until the hole fills. A hole that
//!   stays open longer than [`StreamLimits::gap_timeout_nanos`] (or while too
//!   much waits behind it) is given up: the partial message is dropped and
//!   framing resynchronises on the next plausible SIP start line.
//! - SIP messages are framed by Content-Length (absent: no body, as RFC 3261
//!   requires it on streams); CRLF keep-alives are skipped; several messages
//!   per segment and messages across segments both work.
//! - WebSocket: the HTTP handshake is skipped, then frames are unmasked and
//!   fragmented messages joined; each WebSocket message is one SIP message.
//! - Memory is bounded: bytes per stream, streams in total, bytes in total,
//!   and idle streams are dropped; every limit hit is counted in
//!   [`StreamStats`]. FIN and RST end a stream.

use crate::decode::Segment;
use crate::sip::message::{looks_like_sip, Limits, Message, SipError};
use crate::Timestamp;
use rustc_hash::FxHashMap;
use std::net::SocketAddr;

/// Bounds on the memory and time the stream reassembler may use.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// Bytes buffered per stream (in order plus held early segments); a
    /// stream over it drops what it holds and resynchronises.
    pub max_stream_bytes: usize,
    /// Streams (connection directions) tracked at once; the least recently
    /// active one is dropped to make room.
    pub max_streams: usize,
    /// Bytes buffered by all streams together; least recently active streams
    /// are dropped beyond it.
    pub max_total_bytes: usize,
    /// A stream without segments for this long (capture time) is dropped.
    pub idle_timeout_nanos: i64,
    /// A sequence hole open this long is given up (bytes lost, resync).
    pub gap_timeout_nanos: i64,
    /// Largest SIP message (or WebSocket message) accepted, bytes.
    pub max_message_bytes: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            max_stream_bytes: 256 * 1024,
            max_streams: 10_000,
            max_total_bytes: 64 << 20,
            idle_timeout_nanos: 300_000_000_000,
            gap_timeout_nanos: 500_000_000,
            max_message_bytes: 65_535,
        }
    }
}

/// Counters of the stream reassembler.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Segments on tracked streams.
    pub segments: u64,
    /// Segments with payload on untracked connections that did not start
    /// like SIP (ignored).
    pub not_sip: u64,
    /// Streams started (SIP or WebSocket recognised).
    pub opened: u64,
    /// Streams ended by FIN, RST or a WebSocket close.
    pub closed: u64,
    /// Streams dropped after [`StreamLimits::idle_timeout_nanos`].
    pub expired: u64,
    /// Streams dropped to respect [`StreamLimits::max_streams`] or
    /// [`StreamLimits::max_total_bytes`].
    pub evicted: u64,
    /// Times a stream went over [`StreamLimits::max_stream_bytes`].
    pub overflows: u64,
    /// Segments whose bytes had all been seen already.
    pub retransmitted: u64,
    /// Segments that arrived before a missing one and were held.
    pub out_of_order: u64,
    /// Sequence holes given up (bytes never seen).
    pub gaps: u64,
    /// Times framing resynchronised on a SIP start line after a gap,
    /// an overflow or bytes that were not SIP.
    pub resyncs: u64,
    /// Bytes thrown away while resynchronising.
    pub bytes_skipped: u64,
    /// SIP messages framed and delivered.
    pub messages: u64,
    /// Streams that switched to WebSocket after the HTTP handshake.
    pub websocket: u64,
    /// WebSocket messages that were compressed or malformed (dropped).
    pub websocket_errors: u64,
}

/// Segments held behind a hole, at most, before the hole is given up.
const MAX_HELD_SEGMENTS: usize = 64;
/// A partial line kept while searching for a start line, at most.
const MAX_RESYNC_TAIL: usize = 2048;
/// Streams are checked for idleness once per this much capture time.
const SWEEP_NANOS: i64 = 1_000_000_000;
/// Longest HTTP Upgrade handshake accepted, bytes.
const MAX_HANDSHAKE: usize = 16 * 1024;
/// An undecided stream (SYN seen, no data yet) is forgotten after this long.
const UNKNOWN_IDLE_NANOS: i64 = 10_000_000_000;

/// What a stream's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Opened by a SYN, no byte seen in order yet.
    Unknown,
    /// SIP messages back to back.
    Sip,
    /// An HTTP Upgrade request or 101 response, then WebSocket frames.
    Handshake,
    /// WebSocket frames carrying SIP messages.
    WebSocket,
}

/// One direction of a connection.
struct Stream {
    mode: Mode,
    /// Sequence number of the byte after `buf`.
    next_seq: u32,
    /// In-order bytes not yet framed.
    buf: Vec<u8>,
    /// Segments beyond a hole: (sequence number, bytes).
    held: Vec<(u32, Vec<u8>)>,
    held_bytes: usize,
    /// When the oldest open hole appeared.
    hole_since: Option<Timestamp>,
    last_seen: Timestamp,
    /// Looking for a SIP start line (after a gap, overflow or garbage).
    resync: bool,
    /// A fragmented WebSocket message being joined.
    ws_message: Vec<u8>,
    /// The WebSocket message being joined is dropped (too large, compressed).
    ws_discard: bool,
}

impl Stream {
    fn held_total(&self) -> usize {
        self.buf.len() + self.held_bytes + self.ws_message.len()
    }
}

/// What to do with a stream after its bytes were processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Keep,
    /// FIN, RST, WebSocket close or unusable stream.
    Close,
    /// The first bytes are not SIP: forget the connection.
    NotSip,
}

/// The reassembler for all SIP streams; see the module doc.
pub struct SipStreams {
    limits: StreamLimits,
    sip_limits: Limits,
    streams: FxHashMap<(SocketAddr, SocketAddr), Stream>,
    total_bytes: usize,
    next_sweep: Timestamp,
    stats: StreamStats,
}

impl SipStreams {
    /// An empty reassembler with these limits.
    pub fn new(limits: StreamLimits) -> Self {
        SipStreams {
            limits,
            sip_limits: Limits {
                max_message_size: limits.max_message_bytes,
                ..Limits::default()
            },
            streams: FxHashMap::default(),
            total_bytes: 0,
            next_sweep: Timestamp(i64::MIN),
            stats: StreamStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &StreamStats {
        &self.stats
    }

    /// Streams tracked now.
    pub fn open(&self) -> usize {
        self.streams.len()
    }

    /// Bytes buffered by all streams now.
    pub fn buffered_bytes(&self) -> usize {
        self.total_bytes
    }

    /// Takes one TCP segment captured at `now`; calls `deliver(src, dst,
    /// message)` for every SIP message it completes, in stream order.
    pub fn push(
        &mut self,
        now: Timestamp,
        segment: &Segment<'_>,
        deliver: &mut impl FnMut(SocketAddr, SocketAddr, &[u8]),
    ) {
        if now >= self.next_sweep {
            self.expire(now, deliver);
        }
        let key = (segment.src, segment.dst);
        if segment.flags.rst() {
            for k in [key, (segment.dst, segment.src)] {
                if let Some(s) = self.streams.remove(&k) {
                    self.total_bytes = self.total_bytes.saturating_sub(s.held_total());
                    self.stats.closed += 1;
                }
            }
            return;
        }
        let payload_seq = if segment.flags.syn() {
            segment.seq.wrapping_add(1)
        } else {
            segment.seq
        };
        if segment.flags.syn() {
            // A new connection on a reused address pair: forget the old one.
            if let Some(s) = self.streams.remove(&key) {
                self.total_bytes = self.total_bytes.saturating_sub(s.held_total());
                self.stats.closed += 1;
            }
        }
        if !self.streams.contains_key(&key) {
            let mode = if segment.flags.syn() {
                Mode::Unknown
            } else if segment.payload.is_empty() {
                return;
            } else {
                match sniff(segment.payload) {
                    Some(mode) => {
                        self.stats.opened += 1;
                        mode
                    }
                    None => {
                        self.stats.not_sip += 1;
                        return;
                    }
                }
            };
            self.make_room(now);
            self.streams.insert(
                key,
                Stream {
                    mode,
                    next_seq: payload_seq,
                    buf: Vec::new(),
                    held: Vec::new(),
                    held_bytes: 0,
                    hole_since: None,
                    last_seen: now,
                    resync: false,
                    ws_message: Vec::new(),
                    ws_discard: false,
                },
            );
        }
        let Some(stream) = self.streams.get_mut(&key) else {
            return;
        };
        self.stats.segments += 1;
        stream.last_seen = now;
        let before = stream.held_total();
        let ctx = Ctx {
            limits: &self.limits,
            sip_limits: &self.sip_limits,
            src: segment.src,
            dst: segment.dst,
        };
        let mut fate = accept(
            stream,
            &ctx,
            &mut self.stats,
            now,
            payload_seq,
            segment.payload,
        );
        if fate == Fate::Keep {
            fate = frame(stream, &ctx, &mut self.stats, deliver);
        }
        if fate == Fate::Keep && segment.flags.fin() {
            // No more data: give up any hole and frame what is left.
            while !stream.held.is_empty() && fate == Fate::Keep {
                skip_gap(stream, &mut self.stats);
                fate = frame(stream, &ctx, &mut self.stats, deliver);
            }
            fate = Fate::Close;
        }
        let after = stream.held_total();
        self.total_bytes = (self.total_bytes + after).saturating_sub(before);
        if fate != Fate::Keep {
            if fate == Fate::Close && stream.mode != Mode::Unknown {
                self.stats.closed += 1;
            }
            self.total_bytes = self.total_bytes.saturating_sub(after);
            self.streams.remove(&key);
        }
        while self.total_bytes > self.limits.max_total_bytes && !self.streams.is_empty() {
            self.evict_oldest();
        }
    }

    /// Drops streams idle longer than the idle timeout and gives up holes
    /// older than the gap timeout (framing what follows them), as of `now`.
    /// [`SipStreams::push`] runs this once per second of capture time; call
    /// it when no segments arrive (live capture).
    pub fn expire(
        &mut self,
        now: Timestamp,
        deliver: &mut impl FnMut(SocketAddr, SocketAddr, &[u8]),
    ) {
        self.next_sweep = Timestamp(now.0.saturating_add(SWEEP_NANOS));
        let idle = self.limits.idle_timeout_nanos;
        let gap = self.limits.gap_timeout_nanos;
        self.drop_idle(now, idle);
        let mut closed = Vec::new();
        for (&(src, dst), stream) in self.streams.iter_mut() {
            let Some(since) = stream.hole_since else {
                continue;
            };
            if now.0.saturating_sub(since.0) < gap {
                continue;
            }
            let before = stream.held_total();
            skip_gap(stream, &mut self.stats);
            let ctx = Ctx {
                limits: &self.limits,
                sip_limits: &self.sip_limits,
                src,
                dst,
            };
            let fate = frame(stream, &ctx, &mut self.stats, deliver);
            let after = stream.held_total();
            self.total_bytes = (self.total_bytes + after).saturating_sub(before);
            if fate != Fate::Keep {
                closed.push(((src, dst), fate));
            }
        }
        for (key, fate) in closed {
            if let Some(s) = self.streams.remove(&key) {
                self.total_bytes = self.total_bytes.saturating_sub(s.held_total());
                if fate == Fate::Close {
                    self.stats.closed += 1;
                }
            }
        }
    }

    /// End of input: gives up every hole and delivers what follows it.
    pub fn finish(&mut self, deliver: &mut impl FnMut(SocketAddr, SocketAddr, &[u8])) {
        for (&(src, dst), stream) in self.streams.iter_mut() {
            let ctx = Ctx {
                limits: &self.limits,
                sip_limits: &self.sip_limits,
                src,
                dst,
            };
            while !stream.held.is_empty() {
                skip_gap(stream, &mut self.stats);
                if frame(stream, &ctx, &mut self.stats, deliver) != Fate::Keep {
                    break;
                }
            }
        }
        self.streams.clear();
        self.total_bytes = 0;
    }

    /// Makes room for one more stream.
    fn make_room(&mut self, now: Timestamp) {
        if self.streams.len() < self.limits.max_streams.max(1) {
            return;
        }
        // Full: idle streams go first, then the least recently active.
        self.drop_idle(now, self.limits.idle_timeout_nanos);
        while self.streams.len() >= self.limits.max_streams.max(1) {
            self.evict_oldest();
        }
    }

    /// Drops streams idle longer than `idle` (undecided ones sooner).
    fn drop_idle(&mut self, now: Timestamp, idle: i64) {
        let mut freed = 0;
        let mut expired = 0;
        self.streams.retain(|_, s| {
            let limit = if s.mode == Mode::Unknown {
                idle.min(UNKNOWN_IDLE_NANOS)
            } else {
                idle
            };
            let keep = now.0.saturating_sub(s.last_seen.0) <= limit;
            if !keep {
                freed += s.held_total();
                expired += u64::from(s.mode != Mode::Unknown);
            }
            keep
        });
        self.stats.expired += expired;
        self.total_bytes = self.total_bytes.saturating_sub(freed);
    }

    /// Drops the least recently active stream, undecided ones first.
    fn evict_oldest(&mut self) {
        let oldest = self
            .streams
            .iter()
            .min_by_key(|(_, s)| (s.mode != Mode::Unknown, s.last_seen))
            .map(|(k, _)| *k);
        if let Some(s) = oldest.and_then(|k| self.streams.remove(&k)) {
            self.total_bytes = self.total_bytes.saturating_sub(s.held_total());
            self.stats.evicted += 1;
        }
    }
}

/// What framing needs besides the stream.
struct Ctx<'l> {
    limits: &'l StreamLimits,
    sip_limits: &'l Limits,
    src: SocketAddr,
    dst: SocketAddr,
}

/// What the first in-order bytes of an undecided stream say.
enum Decision {
    Is(Mode),
    NotSip,
    NeedMore,
}

/// Decides an undecided stream on its first bytes.
fn decide(buf: &[u8]) -> Decision {
    if let Some(mode) = sniff(buf) {
        return Decision::Is(mode);
    }
    let crlf = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    let data = buf.get(crlf..).unwrap_or_default();
    let Some(&first) = data.first() else {
        return Decision::NeedMore;
    };
    // A start line not complete yet may still turn out to be SIP.
    let line_open = !data.contains(&b'\n') && data.len() < MAX_RESYNC_TAIL;
    if line_open && first.is_ascii_alphabetic() {
        return Decision::NeedMore;
    }
    let http = data.starts_with(b"GET ") || data.starts_with(b"HTTP/1.1 101");
    if http && find(data, b"\r\n\r\n").is_none() && data.len() < MAX_HANDSHAKE {
        return Decision::NeedMore;
    }
    Decision::NotSip
}

/// Whether a first payload starts a stream worth tracking, and as what.
fn sniff(payload: &[u8]) -> Option<Mode> {
    let data = {
        let crlf = payload
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        payload.get(crlf..).unwrap_or_default()
    };
    if looks_like_sip(data) {
        return Some(Mode::Sip);
    }
    let head = data.get(..MAX_HANDSHAKE).unwrap_or(data);
    let http = head.starts_with(b"GET ") || head.starts_with(b"HTTP/1.1 101");
    (http && has_sip_subprotocol(head)).then_some(Mode::Handshake)
}

/// The HTTP header block names the `sip` WebSocket subprotocol (RFC 7118).
fn has_sip_subprotocol(head: &[u8]) -> bool {
    const NAME: &[u8] = b"sec-websocket-protocol:";
    head.split(|&b| b == b'\n').any(|line| {
        line.split_at_checked(NAME.len())
            .is_some_and(|(name, rest)| {
                !rest.is_empty()
                    && name.eq_ignore_ascii_case(NAME)
                    && rest
                        .split(|&b| b == b',')
                        .any(|p| trim(p).eq_ignore_ascii_case(b"sip"))
            })
    })
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Signed distance from the stream's next expected byte to `seq`.
fn distance(stream: &Stream, seq: u32) -> i64 {
    i64::from(seq.wrapping_sub(stream.next_seq) as i32)
}

/// Puts a segment's bytes in order: appended, held, or dropped as seen.
fn accept(
    stream: &mut Stream,
    ctx: &Ctx<'_>,
    stats: &mut StreamStats,
    now: Timestamp,
    seq: u32,
    payload: &[u8],
) -> Fate {
    if payload.is_empty() {
        return Fate::Keep;
    }
    let d = distance(stream, seq);
    if d <= 0 {
        append(stream, ctx, stats, seq, payload);
    } else {
        stats.out_of_order += 1;
        stream.held.push((seq, payload.to_vec()));
        stream.held_bytes += payload.len();
        stream.hole_since.get_or_insert(now);
        if stream.held.len() > MAX_HELD_SEGMENTS
            || stream.held_bytes + stream.buf.len() > ctx.limits.max_stream_bytes
        {
            skip_gap(stream, stats);
        }
    }
    drain_held(stream, ctx, stats);
    if let Some(since) = stream.hole_since {
        if now.0.saturating_sub(since.0) >= ctx.limits.gap_timeout_nanos {
            skip_gap(stream, stats);
        }
    }
    Fate::Keep
}

/// Appends the new part of `payload` (starting at `seq`, at or before the
/// next expected byte) to the in-order buffer.
fn append(stream: &mut Stream, ctx: &Ctx<'_>, stats: &mut StreamStats, seq: u32, payload: &[u8]) {
    let seen = usize::try_from(-distance(stream, seq)).unwrap_or(usize::MAX);
    let Some(new) = payload.get(seen..).filter(|n| !n.is_empty()) else {
        stats.retransmitted += 1;
        return;
    };
    if stream.buf.len() + new.len() > ctx.limits.max_stream_bytes {
        stats.overflows += 1;
        stats.bytes_skipped += stream.buf.len() as u64;
        stream.buf.clear();
        stream.ws_message.clear();
        stream.resync = true;
    }
    stream.buf.extend_from_slice(new);
    stream.next_seq = stream.next_seq.wrapping_add(new.len() as u32);
}

/// Moves held segments that became contiguous into the in-order buffer.
fn drain_held(stream: &mut Stream, ctx: &Ctx<'_>, stats: &mut StreamStats) {
    while let Some(i) = stream
        .held
        .iter()
        .position(|&(seq, _)| distance(stream, seq) <= 0)
    {
        let (seq, bytes) = stream.held.swap_remove(i);
        stream.held_bytes -= bytes.len();
        append(stream, ctx, stats, seq, &bytes);
    }
    if stream.held.is_empty() {
        stream.hole_since = None;
    }
}

/// Gives up the hole before the earliest held segment: the partial message
/// is dropped and framing resynchronises after it.
fn skip_gap(stream: &mut Stream, stats: &mut StreamStats) {
    let Some(&(seq, _)) = stream
        .held
        .iter()
        .min_by_key(|&&(seq, _)| distance(stream, seq))
    else {
        stream.hole_since = None;
        return;
    };
    stats.gaps += 1;
    stats.bytes_skipped += stream.buf.len() as u64;
    stream.buf.clear();
    stream.ws_message.clear();
    stream.resync = true;
    stream.next_seq = seq;
    stream.hole_since = None;
    let mut remaining = std::mem::take(&mut stream.held);
    stream.held_bytes = 0;
    // Everything held is at or after the new position: re-hold the rest.
    remaining.sort_by_key(|&(s, _)| s.wrapping_sub(seq));
    for (s, bytes) in remaining {
        if distance(stream, s) <= 0 {
            let seen = usize::try_from(-distance(stream, s)).unwrap_or(usize::MAX);
            if let Some(new) = bytes.get(seen..).filter(|n| !n.is_empty()) {
                stream.buf.extend_from_slice(new);
                stream.next_seq = stream.next_seq.wrapping_add(new.len() as u32);
            }
        } else {
            stream.held_bytes += bytes.len();
            stream.held.push((s, bytes));
        }
    }
    if !stream.held.is_empty() {
        // Another hole follows: it gets its own timeout from now on.
        stream.hole_since = Some(stream.last_seen);
    }
}

/// Frames and delivers the complete messages in the in-order buffer.
fn frame(
    stream: &mut Stream,
    ctx: &Ctx<'_>,
    stats: &mut StreamStats,
    deliver: &mut impl FnMut(SocketAddr, SocketAddr, &[u8]),
) -> Fate {
    match stream.mode {
        Mode::Unknown => match decide(&stream.buf) {
            Decision::NeedMore => Fate::Keep,
            Decision::NotSip => {
                stats.not_sip += 1;
                Fate::NotSip
            }
            Decision::Is(mode) => {
                stats.opened += 1;
                stream.mode = mode;
                stream.resync = false;
                frame(stream, ctx, stats, deliver)
            }
        },
        Mode::Sip => {
            frame_sip(stream, ctx, stats, deliver);
            Fate::Keep
        }
        Mode::Handshake | Mode::WebSocket => {
            if stream.resync {
                // WebSocket framing cannot be recovered after lost bytes.
                return Fate::Close;
            }
            if stream.mode == Mode::Handshake {
                let Some(end) = find(&stream.buf, b"\r\n\r\n") else {
                    if stream.buf.len() > MAX_HANDSHAKE {
                        return Fate::Close;
                    }
                    return Fate::Keep;
                };
                stream.buf.drain(..end + 4);
                stream.mode = Mode::WebSocket;
                stats.websocket += 1;
            }
            frame_websocket(stream, ctx, stats, deliver)
        }
    }
}

/// Frames SIP messages by Content-Length, resynchronising where needed.
fn frame_sip(
    stream: &mut Stream,
    ctx: &Ctx<'_>,
    stats: &mut StreamStats,
    deliver: &mut impl FnMut(SocketAddr, SocketAddr, &[u8]),
) {
    let mut start = 0;
    loop {
        let rest = stream.buf.get(start..).unwrap_or_default();
        let crlf = rest
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        start += crlf;
        let data = stream.buf.get(start..).unwrap_or_default();
        if data.is_empty() {
            break;
        }
        if stream.resync {
            match find_start(data) {
                Found::At(p) => {
                    start += p;
                    stats.bytes_skipped += p as u64;
                    stats.resyncs += 1;
                    stream.resync = false;
                    continue;
                }
                Found::MaybeAt(p) => {
                    // A line that may become a start line: keep it, bounded.
                    let keep_from = if data.len() - p > MAX_RESYNC_TAIL {
                        data.len()
                    } else {
                        p
                    };
                    start += keep_from;
                    stats.bytes_skipped += keep_from as u64;
                    break;
                }
            }
        }
        match Message::parse_with_limits(data, ctx.sip_limits) {
            Ok((msg, consumed)) => {
                // Without Content-Length a stream message has no body.
                let len = if msg.header("Content-Length").is_some() {
                    consumed
                } else {
                    msg.raw().len() - msg.body().len()
                };
                let len = len.clamp(1, data.len());
                stats.messages += 1;
                // `data` is not empty (checked above), so `len` is in 1..=len.
                deliver(ctx.src, ctx.dst, data.get(..len).unwrap_or(data));
                start += len;
            }
            Err(SipError::Truncated) => break,
            Err(SipError::NotSip | SipError::TooLarge | SipError::Malformed) => {
                stream.resync = true;
                start += 1;
                stats.bytes_skipped += 1;
            }
        }
    }
    stream.buf.drain(..start.min(stream.buf.len()));
}

/// Where a SIP start line is in `data`.
enum Found {
    /// A complete start line begins here.
    At(usize),
    /// No start line; the incomplete last line begins here (the length of
    /// `data` when it ends with a newline).
    MaybeAt(usize),
}

/// Finds the first line of `data` that is a SIP start line.
fn find_start(data: &[u8]) -> Found {
    let mut pos = 0;
    loop {
        let line = data.get(pos..).unwrap_or_default();
        let Some(nl) = line.iter().position(|&b| b == b'\n') else {
            return Found::MaybeAt(pos);
        };
        if looks_like_sip(line) {
            return Found::At(pos);
        }
        pos += nl + 1;
    }
}

/// Position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// WebSocket opcodes (RFC 6455 5.2).
mod opcode {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xa;
}

/// Parses WebSocket frames; each complete message is one SIP message.
fn frame_websocket(
    stream: &mut Stream,
    ctx: &Ctx<'_>,
    stats: &mut StreamStats,
    deliver: &mut impl FnMut(SocketAddr, SocketAddr, &[u8]),
) -> Fate {
    let max = ctx.limits.max_message_bytes;
    let mut start = 0;
    let mut fate = Fate::Keep;
    loop {
        let data = stream.buf.get(start..).unwrap_or_default();
        let (Some(&b0), Some(&b1)) = (data.first(), data.get(1)) else {
            break;
        };
        let fin = b0 & 0x80 != 0;
        let compressed = b0 & 0x40 != 0;
        let op = b0 & 0x0f;
        let masked = b1 & 0x80 != 0;
        let (len, mut header) = match b1 & 0x7f {
            126 => match data.get(2..).and_then(<[u8]>::first_chunk) {
                Some(b) => (u64::from(u16::from_be_bytes(*b)), 4),
                None => break,
            },
            127 => match data.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                Some(b) => (u64::from_be_bytes(b), 10),
                None => break,
            },
            n => (u64::from(n), 2),
        };
        let mask = if masked {
            match data.get(header..).and_then(<[u8]>::first_chunk::<4>) {
                Some(m) => {
                    header += 4;
                    *m
                }
                None => break,
            }
        } else {
            [0; 4]
        };
        let len = match usize::try_from(len) {
            Ok(n) if n <= max => n,
            _ => {
                // Larger than any SIP message: the stream is not usable.
                stats.websocket_errors += 1;
                fate = Fate::Close;
                break;
            }
        };
        let Some(payload) = data.get(header..header + len) else {
            break;
        };
        match op {
            opcode::CONTINUATION | opcode::TEXT | opcode::BINARY => {
                if op != opcode::CONTINUATION {
                    stream.ws_message.clear();
                    stream.ws_discard = compressed;
                }
                if stream.ws_message.len() + len > max {
                    stream.ws_discard = true;
                    stream.ws_message.clear();
                }
                if !stream.ws_discard {
                    let from = stream.ws_message.len();
                    stream.ws_message.extend_from_slice(payload);
                    if masked {
                        let fresh = stream.ws_message.get_mut(from..).unwrap_or_default();
                        for (b, m) in fresh.iter_mut().zip(mask.iter().cycle()) {
                            *b ^= m;
                        }
                    }
                }
                if fin {
                    if stream.ws_discard {
                        stats.websocket_errors += 1;
                    } else if Message::parse_with_limits(&stream.ws_message, ctx.sip_limits).is_ok()
                    {
                        stats.messages += 1;
                        deliver(ctx.src, ctx.dst, &stream.ws_message);
                    } else {
                        stats.websocket_errors += 1;
                    }
                    stream.ws_message.clear();
                    stream.ws_discard = false;
                }
            }
            opcode::PING | opcode::PONG => {}
            opcode::CLOSE => fate = Fate::Close,
            _ => {
                stats.websocket_errors += 1;
                fate = Fate::Close;
            }
        }
        start += header + len;
        if fate == Fate::Close {
            break;
        }
    }
    stream.buf.drain(..start.min(stream.buf.len()));
    fate
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TcpFlags;
    use std::net::{IpAddr, Ipv4Addr};

    const A: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 40000);
    const B: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 6060);

    fn sip(call: &str, body: &str) -> Vec<u8> {
        format!(
            "INVITE sip:bob@b SIP/2.0\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    struct Harness {
        streams: SipStreams,
        got: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
        ts: i64,
    }

    impl Harness {
        fn new(limits: StreamLimits) -> Self {
            Harness {
                streams: SipStreams::new(limits),
                got: Vec::new(),
                ts: 0,
            }
        }
        fn seg(&mut self, src: SocketAddr, dst: SocketAddr, seq: u32, flags: u8, payload: &[u8]) {
            self.seg_at(self.ts, src, dst, seq, flags, payload);
        }
        fn seg_at(
            &mut self,
            ts: i64,
            src: SocketAddr,
            dst: SocketAddr,
            seq: u32,
            flags: u8,
            payload: &[u8],
        ) {
            self.ts = ts;
            let segment = Segment {
                src,
                dst,
                seq,
                flags: TcpFlags(flags),
                payload,
            };
            let got = &mut self.got;
            self.streams.push(Timestamp(ts), &segment, &mut |s, d, m| {
                got.push((s, d, m.to_vec()))
            });
        }
        fn messages(&self) -> Vec<String> {
            self.got
                .iter()
                .map(|(_, _, m)| String::from_utf8_lossy(m).into_owned())
                .collect()
        }
        fn call_ids(&self) -> Vec<String> {
            self.got
                .iter()
                .map(|(_, _, m)| Message::parse(m).unwrap().0.call_id().unwrap().to_string())
                .collect()
        }
    }

    #[test]
    fn one_message_per_segment_and_endpoints() {
        let mut h = Harness::new(StreamLimits::default());
        let m = sip("a", "v=0\r\n");
        h.seg(A, B, 1000, 0x18, &m);
        assert_eq!(h.got, vec![(A, B, m.clone())]);
        assert_eq!(h.streams.open(), 1);
        assert_eq!(h.streams.buffered_bytes(), 0);
        assert_eq!(h.streams.stats().messages, 1);
    }

    #[test]
    fn message_split_across_segments_at_every_point() {
        let m = sip("split", "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n");
        for cut in 1..m.len() {
            let mut h = Harness::new(StreamLimits::default());
            h.seg(A, B, 7, 0x18, &m[..cut]);
            if !looks_like_sip(&m[..cut]) {
                // The first bytes do not show a full start line yet: not tracked.
                assert_eq!(h.streams.open(), 0);
                continue;
            }
            assert!(h.got.is_empty(), "cut {cut}");
            h.seg(A, B, 7 + cut as u32, 0x18, &m[cut..]);
            assert_eq!(h.messages(), vec![String::from_utf8_lossy(&m)], "cut {cut}");
        }
    }

    #[test]
    fn two_messages_and_keepalives_in_one_segment() {
        let mut h = Harness::new(StreamLimits::default());
        let mut data = sip("one", "");
        data.extend_from_slice(b"\r\n\r\n");
        data.extend_from_slice(&sip("two", "x"));
        data.extend_from_slice(
            b"SIP/2.0 180 Ringing\r\nCall-ID: three\r\nContent-Length: 0\r\n\r\nBYE",
        );
        h.seg(A, B, 1, 0x18, &data);
        assert_eq!(h.call_ids(), ["one", "two", "three"]);
        // The rest of the BYE comes later.
        h.seg(
            A,
            B,
            1 + data.len() as u32,
            0x18,
            b" sip:a SIP/2.0\r\nCall-ID: four\r\nl: 0\r\n\r\n",
        );
        assert_eq!(h.call_ids(), ["one", "two", "three", "four"]);
    }

    #[test]
    fn message_without_content_length_has_no_body() {
        let mut h = Harness::new(StreamLimits::default());
        let mut data = b"ACK sip:b SIP/2.0\r\nCall-ID: nolen\r\n\r\n".to_vec();
        data.extend_from_slice(&sip("next", ""));
        h.seg(A, B, 1, 0x18, &data);
        assert_eq!(h.call_ids(), ["nolen", "next"]);
    }

    #[test]
    fn out_of_order_and_retransmitted_segments() {
        let a = sip("a", "body-a");
        let b = sip("b", "body-b");
        let mut all = a.clone();
        all.extend_from_slice(&b);
        let chunks: Vec<(u32, &[u8])> = all
            .chunks(40)
            .enumerate()
            .map(|(i, c)| (100 + 40 * i as u32, c))
            .collect();
        let mut h = Harness::new(StreamLimits::default());
        // First chunk in order, then the rest reversed, with duplicates.
        h.seg(A, B, chunks[0].0, 0x18, chunks[0].1);
        h.seg(A, B, chunks[0].0, 0x18, chunks[0].1);
        for &(seq, c) in chunks[1..].iter().rev() {
            h.seg(A, B, seq, 0x18, c);
            h.seg(A, B, seq, 0x18, c);
        }
        assert_eq!(h.call_ids(), ["a", "b"]);
        let s = h.streams.stats();
        assert!(s.retransmitted >= chunks.len() as u64, "{s:?}");
        assert!(s.out_of_order > 0, "{s:?}");
        assert_eq!((s.gaps, s.resyncs), (0, 0));
        assert_eq!(h.streams.buffered_bytes(), 0);
        // An overlapping retransmission that brings new bytes at its end.
        let c = sip("c", "");
        let end = 100 + all.len() as u32;
        h.seg(A, B, end, 0x18, &c[..10]);
        let mut overlap = all[all.len() - 5..].to_vec();
        overlap.extend_from_slice(&c[..20]);
        h.seg(A, B, end - 5, 0x18, &overlap);
        h.seg(A, B, end + 20, 0x18, &c[20..]);
        assert_eq!(h.call_ids(), ["a", "b", "c"]);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let m = sip("wrap", "0123456789");
        let mut h = Harness::new(StreamLimits::default());
        let seq = u32::MAX - 9;
        h.seg(A, B, seq, 0x18, &m[..30]);
        h.seg(A, B, seq.wrapping_add(30), 0x18, &m[30..]);
        assert_eq!(h.call_ids(), ["wrap"]);
    }

    #[test]
    fn gap_is_given_up_after_the_timeout_and_framing_resyncs() {
        let a = sip("a", "");
        let lost = sip("lost", "v=0\r\ns=-\r\n");
        let c = sip("c", "");
        let mut h = Harness::new(StreamLimits::default());
        h.seg_at(0, A, B, 1, 0x18, &a);
        let base = 1 + a.len() as u32;
        // The middle of "lost" is never seen; its tail and "c" arrive.
        let mut tail = lost[30..].to_vec();
        tail.extend_from_slice(&c);
        h.seg_at(1_000_000, A, B, base + 30, 0x18, &tail);
        assert_eq!(h.call_ids(), ["a"]);
        // Past the gap timeout the next segment gives the hole up.
        let d = sip("d", "");
        let after = base + 30 + tail.len() as u32;
        h.seg_at(600_000_000, A, B, after, 0x18, &d);
        assert_eq!(h.call_ids(), ["a", "c", "d"]);
        let s = h.streams.stats();
        assert_eq!((s.gaps, s.resyncs), (1, 1), "{s:?}");
        assert!(s.bytes_skipped > 0);
    }

    #[test]
    fn expire_gives_up_holes_without_new_segments() {
        let mut h = Harness::new(StreamLimits::default());
        let a = sip("a", "");
        h.seg_at(0, A, B, 1, 0x18, &a);
        let b = sip("b", "");
        h.seg_at(10, A, B, 1 + a.len() as u32 + 50, 0x18, &b);
        assert_eq!(h.call_ids(), ["a"]);
        let got = &mut h.got;
        h.streams.expire(Timestamp(2_000_000_000), &mut |s, d, m| {
            got.push((s, d, m.to_vec()))
        });
        assert_eq!(h.call_ids(), ["a", "b"]);
    }

    #[test]
    fn too_many_held_segments_give_up_the_hole_at_once() {
        let mut h = Harness::new(StreamLimits::default());
        h.seg(A, B, 1, 0x18, &sip("first", ""));
        let m = sip("later", "");
        let mut seq = 1_000_000;
        for _ in 0..=MAX_HELD_SEGMENTS {
            h.seg(A, B, seq, 0x18, &m);
            seq += m.len() as u32;
        }
        assert_eq!(h.streams.stats().gaps, 1);
        assert_eq!(h.call_ids().len(), 2 + MAX_HELD_SEGMENTS);
    }

    #[test]
    fn garbage_inside_a_stream_is_skipped_to_the_next_start_line() {
        let mut h = Harness::new(StreamLimits::default());
        let mut data = sip("a", "");
        data.extend_from_slice(b"\x00\x01garbage line\r\nmore junk\r\n");
        data.extend_from_slice(&sip("b", ""));
        h.seg(A, B, 1, 0x18, &data);
        assert_eq!(h.call_ids(), ["a", "b"]);
        assert_eq!(h.streams.stats().resyncs, 1);
    }

    #[test]
    fn non_sip_connections_are_not_tracked() {
        let mut h = Harness::new(StreamLimits::default());
        h.seg(A, B, 1, 0x02, b"");
        h.seg(A, B, 2, 0x18, b"\x16\x03\x01\x02\x00 TLS hello");
        h.seg(
            A,
            B,
            40,
            0x18,
            b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        assert_eq!(h.streams.open(), 0);
        assert_eq!(h.streams.stats().not_sip, 2);
        assert!(h.got.is_empty());
    }

    #[test]
    fn after_a_syn_the_first_segments_may_arrive_out_of_order() {
        let mut h = Harness::new(StreamLimits::default());
        let m = sip("first", "v=0\r\n");
        h.seg(A, B, 999, 0x02, b"");
        assert_eq!((h.streams.open(), h.streams.stats().opened), (1, 0));
        // The tail first (not a start line), then the head, split mid-line.
        h.seg(A, B, 1000 + 10, 0x18, &m[10..]);
        assert!(h.got.is_empty());
        h.seg(A, B, 1000, 0x18, &m[..10]);
        assert_eq!(h.call_ids(), ["first"]);
        assert_eq!(h.streams.stats().opened, 1);
        // A first line that arrives in pieces is waited for.
        let mut h = Harness::new(StreamLimits::default());
        h.seg(A, B, 0, 0x12, b"");
        h.seg(A, B, 1, 0x18, &m[..5]);
        h.seg(A, B, 6, 0x18, &m[5..]);
        assert_eq!(h.call_ids(), ["first"]);
    }

    #[test]
    fn after_a_syn_non_sip_bytes_forget_the_connection() {
        let mut h = Harness::new(StreamLimits::default());
        h.seg(A, B, 0, 0x02, b"");
        h.seg(
            A,
            B,
            1,
            0x18,
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(h.streams.open(), 0);
        assert_eq!(h.streams.stats().not_sip, 1);
        assert_eq!(h.streams.stats().opened, 0);
        assert_eq!(h.streams.stats().closed, 0);
    }

    #[test]
    fn undecided_streams_are_evicted_first_and_expire_sooner() {
        let limits = StreamLimits {
            max_streams: 4,
            ..StreamLimits::default()
        };
        let mut h = Harness::new(limits);
        h.seg_at(0, A, B, 1, 0x18, &sip("kept", ""));
        // A SYN flood from many ports.
        for port in 0..100u16 {
            let src = SocketAddr::new(A.ip(), 20000 + port);
            h.seg_at(1 + i64::from(port), src, B, 0, 0x02, b"");
            assert!(h.streams.open() <= 4);
        }
        // The SIP stream survived and still works.
        let next = 1 + sip("kept", "").len() as u32;
        h.seg_at(200, A, B, next, 0x18, &sip("again", ""));
        assert_eq!(h.call_ids(), ["kept", "again"]);
        // Undecided streams go after 10 s, the SIP one stays.
        h.seg_at(
            11_000_000_000,
            A,
            B,
            next + sip("again", "").len() as u32,
            0x18,
            b"\r\n\r\n",
        );
        assert_eq!(h.streams.open(), 1);
    }

    #[test]
    fn fin_and_rst_end_streams() {
        let mut h = Harness::new(StreamLimits::default());
        let m = sip("a", "");
        h.seg(A, B, 1, 0x18, &m);
        h.seg(B, A, 1, 0x18, &sip("back", ""));
        assert_eq!(h.streams.open(), 2);
        h.seg(A, B, 1 + m.len() as u32, 0x11, b"");
        assert_eq!(h.streams.open(), 1);
        h.seg(B, A, 0, 0x04, b"");
        assert_eq!(h.streams.open(), 0);
        assert_eq!(h.streams.stats().closed, 2);
        // FIN with held data behind a hole delivers it.
        let mut h = Harness::new(StreamLimits::default());
        h.seg(A, B, 1, 0x18, &m);
        h.seg(A, B, 1 + m.len() as u32 + 9, 0x19, &sip("z", ""));
        assert_eq!(h.call_ids(), ["a", "z"]);
        assert_eq!(h.streams.open(), 0);
    }

    #[test]
    fn syn_starts_a_fresh_stream() {
        let mut h = Harness::new(StreamLimits::default());
        let m = sip("old", "");
        h.seg(A, B, 1, 0x18, &m[..30]);
        h.seg(A, B, 5000, 0x02, b"");
        h.seg(A, B, 5001, 0x18, &sip("new", ""));
        assert_eq!(h.call_ids(), ["new"]);
    }

    #[test]
    fn caps_bytes_per_stream_streams_and_total_bytes() {
        let limits = StreamLimits {
            max_stream_bytes: 1000,
            max_streams: 3,
            max_total_bytes: 2500,
            ..StreamLimits::default()
        };
        // A message that never ends: the stream cap drops it.
        let mut h = Harness::new(limits);
        h.seg(
            A,
            B,
            1,
            0x18,
            b"INVITE sip:b SIP/2.0\r\nCall-ID: big\r\nContent-Length: 5000\r\n\r\n",
        );
        let filler = [b'x'; 400];
        let mut seq = 1 + 60;
        for _ in 0..3 {
            h.seg(A, B, seq, 0x18, &filler);
            seq += 400;
        }
        assert!(h.streams.stats().overflows >= 1);
        assert!(h.streams.buffered_bytes() <= 1000);
        // After the overflow the next message is found again.
        h.seg(
            A,
            B,
            seq,
            0x18,
            &[b"\r\n".as_slice(), &sip("ok", "")].concat(),
        );
        assert_eq!(h.call_ids(), ["ok"]);

        // More streams than allowed: the least recently active goes.
        let mut h = Harness::new(limits);
        for port in 0..5u16 {
            let src = SocketAddr::new(A.ip(), 1000 + port);
            h.seg_at(
                i64::from(port),
                src,
                B,
                1,
                0x18,
                b"OPTIONS sip:b SIP/2.0\r\nContent-Length: 10\r\n\r\n",
            );
        }
        assert_eq!(h.streams.open(), 3);
        assert_eq!(h.streams.stats().evicted, 2);
        // Total bytes: three streams holding 900 bytes each exceed 2500.
        let mut h = Harness::new(limits);
        for port in 0..3u16 {
            let src = SocketAddr::new(A.ip(), 2000 + port);
            let mut m = b"OPTIONS sip:b SIP/2.0\r\nContent-Length: 999\r\n\r\n".to_vec();
            m.extend_from_slice(&[b'y'; 850]);
            h.seg_at(i64::from(port), src, B, 1, 0x18, &m);
        }
        assert!(h.streams.buffered_bytes() <= 2500);
        assert_eq!(h.streams.stats().evicted, 1);
    }

    #[test]
    fn idle_streams_expire() {
        let limits = StreamLimits {
            idle_timeout_nanos: 10_000_000_000,
            ..StreamLimits::default()
        };
        let mut h = Harness::new(limits);
        h.seg_at(0, A, B, 1, 0x18, &sip("a", "")[..40]);
        assert_eq!(h.streams.open(), 1);
        h.seg_at(11_000_000_000, B, A, 1, 0x18, &sip("b", ""));
        assert_eq!(h.streams.open(), 1);
        assert_eq!(h.streams.stats().expired, 1);
        assert_eq!(h.streams.buffered_bytes(), 0);
    }

    fn ws_frame(fin: bool, op: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![if fin { 0x80 } else { 0 } | op];
        let m = if mask.is_some() { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => f.push(m | n as u8),
            n if n <= 0xffff => {
                f.push(m | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(m | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        match mask {
            Some(k) => {
                f.extend_from_slice(&k);
                f.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
            }
            None => f.extend_from_slice(payload),
        }
        f
    }

    const UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: proxy:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Protocol: sip\r\nSec-WebSocket-Version: 13\r\n\r\n";
    const SWITCHED: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: sip\r\n\r\n";

    #[test]
    fn websocket_handshake_masked_fragmented_and_control_frames() {
        let mut h = Harness::new(StreamLimits::default());
        h.seg(A, B, 1, 0x18, UPGRADE);
        h.seg(B, A, 1, 0x18, SWITCHED);
        assert_eq!(h.streams.stats().websocket, 2);
        let invite = sip("ws-invite", &"a".repeat(300));
        let key = Some([0x12, 0x34, 0x56, 0x78]);
        // Client: masked, fragmented in three frames with a ping between,
        // and the TCP segments cut through the frames.
        let mut bytes = ws_frame(false, opcode::TEXT, key, &invite[..100]);
        bytes.extend(ws_frame(true, opcode::PING, key, b"hi"));
        bytes.extend(ws_frame(
            false,
            opcode::CONTINUATION,
            key,
            &invite[100..250],
        ));
        bytes.extend(ws_frame(true, opcode::CONTINUATION, key, &invite[250..]));
        let mut seq = 1 + UPGRADE.len() as u32;
        for chunk in bytes.chunks(77) {
            h.seg(A, B, seq, 0x18, chunk);
            seq += chunk.len() as u32;
        }
        // Server: unmasked binary frame.
        let ok = b"SIP/2.0 200 OK\r\nCall-ID: ws-invite\r\nContent-Length: 0\r\n\r\n";
        h.seg(
            B,
            A,
            1 + SWITCHED.len() as u32,
            0x18,
            &ws_frame(true, opcode::BINARY, None, ok),
        );
        assert_eq!(h.got.len(), 2);
        assert_eq!(h.got[0], (A, B, invite.clone()));
        assert_eq!(h.got[1], (B, A, ok.to_vec()));
        // Close ends the stream.
        h.seg(
            A,
            B,
            seq,
            0x18,
            &ws_frame(true, opcode::CLOSE, key, &[3, 232]),
        );
        assert_eq!(h.streams.open(), 1);
    }

    #[test]
    fn websocket_errors_are_counted_not_delivered() {
        let mut h = Harness::new(StreamLimits::default());
        h.seg(B, A, 1, 0x18, SWITCHED);
        let mut seq = 1 + SWITCHED.len() as u32;
        // Compressed (RSV1) message, then a text frame that is not SIP.
        let mut f = ws_frame(true, opcode::TEXT, None, b"\x01\x02\x03");
        f[0] |= 0x40;
        f.extend(ws_frame(true, opcode::TEXT, None, b"{\"json\": 1}"));
        h.seg(B, A, seq, 0x18, &f);
        seq += f.len() as u32;
        assert!(h.got.is_empty());
        assert_eq!(h.streams.stats().websocket_errors, 2);
        // A frame longer than any SIP message closes the stream.
        let mut huge = vec![0x81, 127];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        h.seg(B, A, seq, 0x18, &huge);
        assert_eq!(h.streams.open(), 0);
        // An upgrade without the sip subprotocol is not tracked.
        let mut h = Harness::new(StreamLimits::default());
        h.seg(
            A,
            B,
            1,
            0x18,
            b"GET /chat HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: chat\r\n\r\n",
        );
        assert_eq!(h.streams.open(), 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic_or_grow_unbounded() {
        let limits = StreamLimits {
            max_stream_bytes: 4096,
            max_streams: 4,
            max_total_bytes: 8192,
            ..StreamLimits::default()
        };
        let mut h = Harness::new(limits);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let start = sip("s", "");
        for i in 0..3000u32 {
            let r = next();
            let len = (r % 700) as usize;
            let mut payload: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if r % 5 == 0 {
                payload = [start.as_slice(), &payload].concat();
            } else if r % 7 == 0 {
                payload = [SWITCHED, &payload].concat();
            }
            let src = SocketAddr::new(A.ip(), (r % 6) as u16);
            let seq = if r % 3 == 0 {
                next() as u32
            } else {
                i.wrapping_mul(300)
            };
            h.seg_at(
                i64::from(i) * 1_000_000,
                src,
                B,
                seq,
                (r >> 40) as u8 & 0x1f,
                &payload,
            );
            assert!(h.streams.buffered_bytes() <= 8192 + 4096);
            assert!(h.streams.open() <= 4);
        }
    }
}
