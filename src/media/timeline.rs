//! The per-call two-channel timeline.
//!
//! Position 0 is the call's start (the answer). Each RTP packet is placed at a
//! sample position computed from its RTP timestamp, anchored to capture time,
//! in a bounded per-channel ring that doubles as the reorder buffer. Samples
//! older than the reorder delay are flushed, both channels interleaved, to the
//! WAV writer; positions nobody wrote are silence.
//!
//! # Positions
//!
//! A capture time `now` maps to `pos(now) = round((now - start) * 8000 / 1 s)`.
//! Each channel keeps an anchor for its current stream: the SSRC and an
//! `offset` such that a packet with extended RTP timestamp `ts` lands at
//! `ts + offset`. The 32-bit RTP timestamp is extended across wrap-around by
//! adding the signed (`i32`) difference to the previous packet's timestamp.
//!
//! # Anchoring rules
//!
//! For each packet, `delay = pos(now) - (ts + offset)` is how much later it
//! was captured than its anchor predicts.
//!
//! 1. First packet, or a new SSRC on the channel: anchor at the capture
//!    position (`offset = pos(now) - ts`); an SSRC change counts a re-anchor.
//! 2. `|delay| > jump_threshold_samples`: the timestamps jumped (reset to 0,
//!    a leap of minutes, a new source behind the same SSRC): re-anchor at the
//!    capture position and count it. Exception: a packet older (by sequence
//!    number) than one already seen that is merely very late is not a jump;
//!    it keeps the anchor and is dropped as late.
//! 3. `delay < -80` (10 ms) for 3 packets in a row: the anchor was set from a
//!    packet that had been delayed in the network (capture can never precede
//!    sending). Move the anchor earlier to the earliest of those three: the
//!    anchor converges on the least-delayed packets. One early
//!    packet alone does not move it: a copy captured out of place (reordered
//!    by the capture path, duplicated on another hop) must not shift the whole
//!    stream, and tiny moves would each leave a click in the audio.
//! 4. The sender's clock may run slower than the capture clock, so `delay`
//!    creeps upward by a few samples a second. The minimum `delay` over the
//!    packets of the last ~2 s (needing at least ~1 s of them) is the drift
//!    free of jitter; once it exceeds 160 samples (20 ms) the anchor moves later
//!    by that minimum. A faster sender clock is handled by rule 3.
//!
//! Invariant: no packet is placed more than `jump_threshold_samples` (at most
//! 1 s) ahead of its capture position (rule 2 re-anchors beyond that), so no
//! timestamp can push audio far ahead of the capture clock.
//!
//! With both channels anchored to their least-delayed packets on the same
//! capture clock, they stay aligned to within the difference of the two
//! one-way network delays to the tap plus at most 20 ms of drift allowance.
//!
//! # Memory and cost
//!
//! The rings (`window_samples` per channel, in the output representation: one
//! byte per G.711 sample, two per PCM-16 sample) are allocated once in
//! [`Timeline::new`]; placing and flushing never allocate. Flushing
//! interleaves the two rings straight into the room the sink lends for them
//! ([`AudioSink::write_with`]: the write-behind store's staging buffer), in
//! one write of up to [`MAX_FLUSH_FRAMES`] frames (about a second of audio):
//! the sink needs no buffer of its own, and the samples are not copied
//! again. Both rings cover the positions `[flushed, flushed + window)`. A
//! packet beyond the window flushes forward first, so memory stays bounded
//! whatever the timestamps say. Flushing costs time proportional to the
//! samples written, and never goes beyond `max_samples`.

use super::g711;
use super::wav::{AudioSink, WavWriter};
use super::{Channel, Law, SampleFormat, SAMPLE_RATE};
use crate::Timestamp;
use std::io;

/// Bounds of the timeline's memory and reordering.
#[derive(Debug, Clone, Copy)]
pub struct TimelineLimits {
    /// Ring capacity per channel, in samples (default 12,096, about 1.5 s:
    /// the reorder delay, one flush batch and a little slack).
    pub window_samples: usize,
    /// Samples younger than this (relative to the newest capture time) are
    /// kept back for reordered packets (default 3200 = 400 ms).
    pub reorder_delay_samples: usize,
    /// A packet whose RTP-predicted position is further than this from its
    /// capture-time position re-anchors the stream (default 4000 = 500 ms).
    pub jump_threshold_samples: usize,
    /// The recording never grows beyond this many frames, whatever the
    /// capture times say (default 24 h; keeps stereo PCM-16 under the 4 GiB
    /// RIFF limit).
    pub max_samples: u64,
}

impl Default for TimelineLimits {
    fn default() -> Self {
        let reorder_delay_samples = 3200;
        TimelineLimits {
            window_samples: reorder_delay_samples + MAX_FLUSH_FRAMES + WINDOW_SLACK,
            reorder_delay_samples,
            jump_threshold_samples: 4000,
            max_samples: 24 * 3600 * SAMPLE_RATE as u64,
        }
    }
}

/// What was not audio, and why: such packets are counted, never written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// RFC 4733 telephone-event.
    TelephoneEvent,
    /// Comfort noise (PT 13 / 19).
    ComfortNoise,
    /// A payload type that is not G.711.
    OtherCodec,
}

/// Per-channel counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelStats {
    /// G.711 packets placed (fully or partly).
    pub packets: u64,
    /// Packets missing according to sequence numbers.
    pub lost: u64,
    /// Packets that arrived after their position was flushed.
    pub late: u64,
    /// Packets placed before the call's start (early media), ignored.
    pub before_start: u64,
    /// Packets placed entirely beyond [`TimelineLimits::max_samples`], ignored.
    pub beyond_max: u64,
    /// Telephone-event packets skipped.
    pub telephone_events: u64,
    /// Comfort-noise packets skipped.
    pub comfort_noise: u64,
    /// Packets of other codecs skipped.
    pub other_codec: u64,
    /// Times the stream was re-anchored (SSRC change, timestamp jump).
    pub reanchors: u64,
    /// Samples written from packets (not silence fill).
    pub samples: u64,
}

/// Length of one drift-window bucket, in samples (250 ms).
const DRIFT_BUCKET: i64 = 2000;
/// Buckets in the drift window (8 x 250 ms = 2 s).
const DRIFT_BUCKETS: usize = 8;
/// Buckets that must hold packets before the drift rule may act (~1 s).
const DRIFT_MIN_BUCKETS: usize = 4;
/// Drift allowance before the anchor moves later (20 ms).
const DRIFT_TOLERANCE: i64 = 160;
/// Earliness (samples) below which a packet does not count as early (rule 3):
/// moving the anchor leaves a discontinuity in the audio, worth it only for
/// a real misalignment, not for a sender's pacing jitter of a few ms.
const EARLY_TOLERANCE: i64 = 80;
/// Consecutive early packets that move the anchor earlier (rule 3).
const EARLY_CONFIRM: u8 = 3;
/// A sequence number step larger than this restarts loss counting (RFC 3550
/// MAX_DROPOUT).
const MAX_DROPOUT: i64 = 3000;
/// Frames interleaved per write at most (1,024 ms; 16 KiB of stereo G.711:
/// larger writes cost the kernel less per byte, measured).
pub const MAX_FLUSH_FRAMES: usize = 8192;
/// Room kept in the window beyond the reorder delay and the flush batch for
/// the newest packet (and a little early jitter), so that a normal packet
/// never has to push samples out before they are final. With the default
/// window and reorder delay this makes the batch exactly
/// [`MAX_FLUSH_FRAMES`], whole pages of the file.
const WINDOW_SLACK: usize = 704;
/// Flushes end where the file's pages do: the kernel then fills each page
/// of the WAV once, instead of twice where a write ends inside it.
const PAGE_BYTES: i64 = 4096;

/// Sliding minimum of anchor offsets over the last ~2 s of packets, in
/// fixed buckets (no allocation, O(1) per packet).
///
/// The minimum and count of the buckets before the newest are kept from
/// one packet to the next (they change only when a packet opens a new
/// bucket), so a packet reads its own bucket and those two sums, not all
/// eight buckets.
#[derive(Debug, Clone)]
struct DriftWindow {
    /// Bucket number (`capture_pos / DRIFT_BUCKET`) held by each slot.
    ids: [i64; DRIFT_BUCKETS],
    /// Least offset seen in each slot's bucket.
    mins: [i64; DRIFT_BUCKETS],
    /// The bucket `older_min` and `older_count` were summed up for, or
    /// `EMPTY` when they are stale (a packet went to an older bucket).
    newest: i64,
    /// Least offset of the window's buckets before `newest`.
    older_min: i64,
    /// How many of the window's buckets before `newest` hold packets.
    older_count: u8,
}

impl DriftWindow {
    const EMPTY: i64 = i64::MIN;

    fn new() -> Self {
        DriftWindow {
            ids: [Self::EMPTY; DRIFT_BUCKETS],
            mins: [0; DRIFT_BUCKETS],
            newest: Self::EMPTY,
            older_min: i64::MAX,
            older_count: 0,
        }
    }

    fn clear(&mut self) {
        self.ids = [Self::EMPTY; DRIFT_BUCKETS];
        self.newest = Self::EMPTY;
    }

    fn push(&mut self, capture_pos: i64, offset: i64) {
        let id = capture_pos.div_euclid(DRIFT_BUCKET);
        if id != self.newest {
            if id > self.newest {
                // A new bucket: sum up the ones before it (the slot it takes
                // over holds none of them).
                let (count, min) = self.scan(id.saturating_sub(DRIFT_BUCKETS as i64 - 1), id - 1);
                self.older_count = count;
                self.older_min = min;
                self.newest = id;
            } else {
                self.newest = Self::EMPTY;
            }
        }
        let slot = id.rem_euclid(DRIFT_BUCKETS as i64) as usize;
        if let (Some(bucket), Some(min)) = (self.ids.get_mut(slot), self.mins.get_mut(slot)) {
            if *bucket == id {
                *min = (*min).min(offset);
            } else {
                *bucket = id;
                *min = offset;
            }
        }
    }

    /// How many buckets in `[oldest, newest]` hold packets, and their least
    /// offset.
    fn scan(&self, oldest: i64, newest: i64) -> (u8, i64) {
        let mut count = 0;
        let mut min = i64::MAX;
        for (&bucket, &m) in self.ids.iter().zip(&self.mins) {
            if bucket != Self::EMPTY && bucket >= oldest && bucket <= newest {
                count += 1;
                min = min.min(m);
            }
        }
        (count, min)
    }

    /// The least offset of the window ending at `capture_pos`, if enough of
    /// the window holds packets.
    fn min(&self, capture_pos: i64) -> Option<i64> {
        let id = capture_pos.div_euclid(DRIFT_BUCKET);
        let (count, min) = if id == self.newest {
            let slot = id.rem_euclid(DRIFT_BUCKETS as i64) as usize;
            match (self.ids.get(slot), self.mins.get(slot)) {
                (Some(&bucket), Some(&m)) if bucket == id => {
                    (self.older_count + 1, self.older_min.min(m))
                }
                _ => (self.older_count, self.older_min),
            }
        } else {
            self.scan(id.saturating_sub(DRIFT_BUCKETS as i64 - 1), id)
        };
        (usize::from(count) >= DRIFT_MIN_BUCKETS).then_some(min)
    }
}

/// Sequence-number loss accounting for one SSRC (RFC 3550 A.3 style).
#[derive(Debug, Clone)]
struct SeqCount {
    base: i64,
    highest: i64,
    received: u64,
}

impl SeqCount {
    fn new(sequence: u16) -> Self {
        SeqCount {
            base: i64::from(sequence),
            highest: i64::from(sequence),
            received: 1,
        }
    }

    fn lost(&self) -> u64 {
        let expected = (self.highest - self.base + 1).max(0) as u64;
        expected.saturating_sub(self.received)
    }

    /// Counts a packet; returns true if it is older than (or equal to) the
    /// newest seen, i.e. reordered or duplicated. `closed` collects the loss
    /// of a run ended by a sequence jump.
    fn update(&mut self, sequence: u16, closed: &mut u64) -> bool {
        let step = i64::from(sequence.wrapping_sub(self.highest as u16) as i16);
        let ext = self.highest + step;
        if step.abs() > MAX_DROPOUT {
            // The sender restarted its numbering: close the run, start anew.
            *closed = closed.saturating_add(self.lost());
            *self = SeqCount {
                base: ext,
                highest: ext,
                received: 1,
            };
            return false;
        }
        self.received += 1;
        if ext > self.highest {
            self.highest = ext;
            false
        } else {
            true
        }
    }
}

/// The anchor and counters of one RTP stream on a channel.
#[derive(Debug, Clone)]
struct Stream {
    ssrc: u32,
    /// RTP timestamp of the previous packet.
    last_ts: u32,
    /// Its extension to 64 bits.
    ext_ts: i64,
    /// A packet with extended timestamp `t` belongs at position `t + offset`.
    offset: i64,
    seq: SeqCount,
    drift: DriftWindow,
    /// Consecutive early packets seen (rule 3), and the smallest (earliest)
    /// offset among them.
    early_run: u8,
    early_offset: i64,
}

#[derive(Debug, Clone)]
struct ChannelState {
    stats: ChannelStats,
    stream: Option<Stream>,
    /// Loss of closed sequence runs (earlier SSRCs, sequence restarts).
    closed_lost: u64,
}

impl ChannelState {
    /// Applies the anchoring rules (see the module doc) and returns the
    /// position of the packet's first sample.
    fn position(
        &mut self,
        ssrc: u32,
        sequence: u16,
        rtp_timestamp: u32,
        capture_pos: i64,
        jump_threshold: i64,
    ) -> i64 {
        let stream = match &mut self.stream {
            Some(s) if s.ssrc == ssrc => s,
            other => {
                if let Some(old) = other {
                    self.closed_lost = self.closed_lost.saturating_add(old.seq.lost());
                    self.stats.reanchors += 1;
                }
                let ext = i64::from(rtp_timestamp);
                *other = Some(Stream {
                    ssrc,
                    last_ts: rtp_timestamp,
                    ext_ts: ext,
                    offset: capture_pos.saturating_sub(ext),
                    seq: SeqCount::new(sequence),
                    drift: DriftWindow::new(),
                    early_run: 0,
                    early_offset: i64::MAX,
                });
                self.stats.lost = self.closed_lost;
                return capture_pos;
            }
        };

        let older = stream.seq.update(sequence, &mut self.closed_lost);
        self.stats.lost = self.closed_lost.saturating_add(stream.seq.lost());

        let step = i64::from(rtp_timestamp.wrapping_sub(stream.last_ts) as i32);
        let ext = stream.ext_ts.saturating_add(step);
        stream.last_ts = rtp_timestamp;
        stream.ext_ts = ext;

        let offset = capture_pos.saturating_sub(ext);
        let delay = offset.saturating_sub(stream.offset);
        // An early packet is never placed more than 1 s (or the jump
        // threshold) ahead of its capture position, whatever the limits.
        let early_limit = jump_threshold.min(i64::from(SAMPLE_RATE));
        if delay.saturating_abs() > jump_threshold || delay < -early_limit {
            if older && delay > 0 {
                // A very late straggler, not a jump: keep the anchor.
                return ext.saturating_add(stream.offset);
            }
            stream.offset = offset;
            stream.drift.clear();
            stream.early_run = 0;
            stream.early_offset = i64::MAX;
            self.stats.reanchors += 1;
            return capture_pos;
        }
        if delay < -EARLY_TOLERANCE {
            stream.early_run += 1;
            stream.early_offset = stream.early_offset.min(offset);
            if stream.early_run >= EARLY_CONFIRM {
                stream.offset = stream.early_offset;
                stream.early_run = 0;
                stream.early_offset = i64::MAX;
            }
        } else {
            stream.early_run = 0;
            stream.early_offset = i64::MAX;
        }
        stream.drift.push(capture_pos, offset);
        if let Some(min) = stream.drift.min(capture_pos) {
            if min - stream.offset > DRIFT_TOLERANCE {
                stream.offset = min;
            }
        }
        ext.saturating_add(stream.offset)
    }
}

/// The rings, in the output representation.
enum Store {
    /// G.711 bytes of `law`.
    G711 { law: Law, rings: [Box<[u8]>; 2] },
    /// Linear samples.
    Pcm16 { rings: [Box<[i16]>; 2] },
}

impl Store {
    /// Interleaves the frames at ring positions `range` into `out` (in the
    /// file's byte representation) and resets them to silence.
    fn take_frames(&mut self, range: std::ops::Range<usize>, out: &mut [u8]) -> io::Result<()> {
        let out_of_range = || io::Error::other("timeline ring index out of range");
        match self {
            Store::G711 { law, rings } => {
                let [left, right] = rings;
                let left = left.get_mut(range.clone()).ok_or_else(out_of_range)?;
                let right = right.get_mut(range).ok_or_else(out_of_range)?;
                interleave_g711(left, right, out);
                left.fill(law.silence());
                right.fill(law.silence());
            }
            Store::Pcm16 { rings } => {
                let [left, right] = rings;
                let left = left.get_mut(range.clone()).ok_or_else(out_of_range)?;
                let right = right.get_mut(range).ok_or_else(out_of_range)?;
                interleave_pcm16(left, right, out);
                left.fill(0);
                right.fill(0);
            }
        }
        Ok(())
    }
}

/// Interleaves the G.711 bytes of `left` and `right` into `out` (two bytes
/// a frame); stops at the shortest.
fn interleave_g711(left: &[u8], right: &[u8], out: &mut [u8]) {
    for ((frame, l), r) in out.chunks_exact_mut(2).zip(left).zip(right) {
        frame.copy_from_slice(&[*l, *r]);
    }
}

/// Interleaves `left` and `right` into `out` as little-endian PCM-16 (four
/// bytes a frame); stops at the shortest.
fn interleave_pcm16(left: &[i16], right: &[i16], out: &mut [u8]) {
    for ((frame, l), r) in out.chunks_exact_mut(4).zip(left).zip(right) {
        let [l0, l1] = l.to_le_bytes();
        let [r0, r1] = r.to_le_bytes();
        frame.copy_from_slice(&[l0, l1, r0, r1]);
    }
}

/// The state of `channel` among the two.
fn channel_of(channels: &mut [ChannelState; 2], channel: Channel) -> &mut ChannelState {
    let [left, right] = channels;
    match channel {
        Channel::Left => left,
        Channel::Right => right,
    }
}

/// Two channels on one timeline, written to a WAV as it goes.
///
/// `repr(C)`: what every packet reads (positions, limits, the rings'
/// addresses) comes first, in two cache lines that
/// [`prefetch`](Self::prefetch) asks for.
#[repr(C)]
pub struct Timeline {
    start: Timestamp,
    limits: TimelineLimits,
    store: Store,
    /// Window length (at least 1).
    window: usize,
    /// Everything before this position has been written to the WAV.
    flushed: i64,
    /// `flushed`'s index in the rings (`flushed mod window`): positions just
    /// after it are found from it without a division ([`Self::ring_index`]).
    flushed_idx: usize,
    /// Everything before this position is final (older than the reorder
    /// delay): no packet may change it any more. `flushed <= horizon`; the
    /// samples in between are written out once `batch` have accumulated.
    horizon: i64,
    /// Final samples gathered before `place` writes them out: one larger
    /// write instead of one per packet. Which samples are final (the
    /// horizon) does not depend on it, so neither does the output.
    batch: i64,
    finished: bool,
    channels: [ChannelState; 2],
}

impl Timeline {
    /// A timeline starting at `start` (capture time of the answer), writing `format`.
    ///
    /// Allocates the two rings; nothing else is allocated afterwards.
    pub fn new(start: Timestamp, format: SampleFormat, limits: TimelineLimits) -> Self {
        let window = limits.window_samples.max(1);
        let store = match format {
            SampleFormat::G711(law) => Store::G711 {
                law,
                rings: [
                    vec![law.silence(); window].into_boxed_slice(),
                    vec![law.silence(); window].into_boxed_slice(),
                ],
            },
            SampleFormat::Pcm16 => Store::Pcm16 {
                rings: [
                    vec![0; window].into_boxed_slice(),
                    vec![0; window].into_boxed_slice(),
                ],
            },
        };
        let channel = ChannelState {
            stats: ChannelStats::default(),
            stream: None,
            closed_lost: 0,
        };
        Timeline {
            start,
            limits,
            window,
            flushed: 0,
            flushed_idx: 0,
            horizon: 0,
            batch: window
                .saturating_sub(limits.reorder_delay_samples)
                .saturating_sub(WINDOW_SLACK)
                .clamp(1, MAX_FLUSH_FRAMES) as i64,
            finished: false,
            channels: [channel.clone(), channel],
            store,
        }
    }

    /// The sample format written.
    pub fn format(&self) -> SampleFormat {
        match &self.store {
            Store::G711 { law, .. } => SampleFormat::G711(*law),
            Store::Pcm16 { .. } => SampleFormat::Pcm16,
        }
    }

    /// The sample position of capture time `now`:
    /// `round((now - start) * 8000 / 1 s)` (negative before the start).
    pub fn capture_pos(&self, now: Timestamp) -> i64 {
        // One sample is exactly 125,000 ns, so the position is the rounded
        // quotient; plain i64 arithmetic (no 128-bit division per packet).
        const NANOS_PER_SAMPLE: i64 = 1_000_000_000 / SAMPLE_RATE as i64;
        let nanos = now.nanos_since(self.start);
        nanos
            .saturating_add(NANOS_PER_SAMPLE / 2)
            .div_euclid(NANOS_PER_SAMPLE)
    }

    /// Index in the rings of position `pos`. A position within the window
    /// (`flushed <= pos < flushed + window`: every one a packet is written
    /// to) is found from `flushed_idx` with an addition; the per-packet
    /// division by the window is left to any other.
    fn ring_index(&self, pos: i64) -> usize {
        match pos.checked_sub(self.flushed).map(usize::try_from) {
            Some(Ok(ahead)) if ahead < self.window => {
                let idx = self.flushed_idx + ahead;
                if idx >= self.window {
                    idx - self.window
                } else {
                    idx
                }
            }
            _ => pos.rem_euclid(self.window as i64) as usize,
        }
    }

    /// Frames written to the WAV so far.
    pub fn flushed(&self) -> u64 {
        self.flushed.max(0) as u64
    }

    /// Bytes held by the rings (constant for the timeline's life).
    pub fn memory_bytes(&self) -> usize {
        match &self.store {
            Store::G711 { rings, .. } => rings[0].len() + rings[1].len(),
            Store::Pcm16 { rings } => 2 * (rings[0].len() + rings[1].len()),
        }
    }

    /// Places one G.711 RTP payload captured at `now` on `channel`, flushing
    /// older samples to `out` as the window moves.
    ///
    /// First flushes what is older than the reorder delay at `now` (as
    /// [`advance`](Self::advance)), then positions the packet by the anchoring
    /// rules of the module doc and writes its samples into the ring, copied
    /// (same law), transcoded (other law) or decoded (PCM-16 output). Does
    /// nothing after [`finish`](Self::finish). Errors come only from `out`.
    #[allow(clippy::too_many_arguments)]
    pub fn place<W: AudioSink>(
        &mut self,
        channel: Channel,
        now: Timestamp,
        ssrc: u32,
        sequence: u16,
        rtp_timestamp: u32,
        law: Law,
        payload: &[u8],
        out: &mut WavWriter<W>,
    ) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        let now_pos = self.capture_pos(now);
        self.move_horizon(now_pos);
        if self.horizon - self.flushed >= self.batch {
            let target = self.page_aligned(self.horizon, out.data_offset());
            self.flush_to(target, out)?;
        }

        let threshold = i64::try_from(self.limits.jump_threshold_samples).unwrap_or(i64::MAX);
        let ch = channel_of(&mut self.channels, channel);
        let pos = ch.position(ssrc, sequence, rtp_timestamp, now_pos, threshold);
        if payload.is_empty() {
            return Ok(());
        }
        let max = i64::try_from(self.limits.max_samples).unwrap_or(i64::MAX);
        let mut end = pos.saturating_add(payload.len() as i64);
        if end <= 0 {
            ch.stats.before_start += 1;
            return Ok(());
        }
        if pos >= max {
            ch.stats.beyond_max += 1;
            return Ok(());
        }
        end = end.min(max);
        if end <= self.horizon {
            ch.stats.late += 1;
            return Ok(());
        }
        let window = self.window as i64;
        if end > self.flushed.saturating_add(window) {
            // Memory stays bounded: push older samples out to make room.
            self.flush_to(end - window, out)?;
        }
        let first = pos.max(0).max(self.horizon);
        if first >= end {
            // The flush forward was cut short by `max_samples`.
            self.channel_mut(channel).stats.beyond_max += 1;
            return Ok(());
        }
        // In bounds: pos <= first < end <= pos + payload.len(), and
        // flushed <= horizon <= first < end <= flushed + window.
        let skip = (first - pos) as usize;
        let len = (end - first) as usize;
        let idx = self.ring_index(first);
        let head = len.min(self.window - idx);
        let broken = || io::Error::other("timeline placement out of its ring (a bug)");
        let (src_head, src_tail) = payload
            .get(skip..skip + len)
            .and_then(|src| src.split_at_checked(head))
            .ok_or_else(broken)?;
        let ring_index = channel as usize;
        match &mut self.store {
            Store::G711 { law: to, rings, .. } => {
                let ring = rings.get_mut(ring_index).ok_or_else(broken)?;
                g711::transcode_into(law, *to, src_head, ring.get_mut(idx..).ok_or_else(broken)?);
                g711::transcode_into(law, *to, src_tail, ring);
            }
            Store::Pcm16 { rings, .. } => {
                let ring = rings.get_mut(ring_index).ok_or_else(broken)?;
                g711::decode_into(law, src_head, ring.get_mut(idx..).ok_or_else(broken)?);
                g711::decode_into(law, src_tail, ring);
            }
        }
        let stats = &mut self.channel_mut(channel).stats;
        stats.packets += 1;
        stats.samples += len as u64;
        Ok(())
    }

    /// Hints the memory that placing a packet captured at `now` on `channel`
    /// will touch (the channel's anchor and the ring where its samples go);
    /// changes nothing.
    pub fn prefetch(&self, channel: Channel, now: Timestamp) {
        let index = channel as usize;
        crate::prefetch::lines_of(self, 128);
        if let Some(ch) = self.channels.get(index) {
            crate::prefetch::lines_of(ch, 384);
        }
        let pos = self.capture_pos(now).max(self.flushed);
        let idx = self.ring_index(pos);
        // The next 20 ms of the ring (up to its end).
        let next = idx..(idx + 160).min(self.window);
        match &self.store {
            Store::G711 { rings, .. } => {
                if let Some(samples) = rings.get(index).and_then(|r| r.get(next)) {
                    crate::prefetch::slice(samples);
                }
            }
            Store::Pcm16 { rings } => {
                if let Some(samples) = rings.get(index).and_then(|r| r.get(next)) {
                    crate::prefetch::slice(samples);
                }
            }
        }
    }

    /// Counts a packet that is not written (see [`Skipped`]). Its time stays
    /// silence unless audio covers it.
    pub fn skip(&mut self, channel: Channel, why: Skipped, ssrc: u32, sequence: u16) {
        let ch = self.channel_mut(channel);
        // Skipped packets still take sequence numbers: count them as received
        // so that comfort noise and DTMF are not reported as loss.
        if let Some(stream) = ch.stream.as_mut().filter(|s| s.ssrc == ssrc) {
            stream.seq.update(sequence, &mut ch.closed_lost);
            ch.stats.lost = ch.closed_lost.saturating_add(stream.seq.lost());
        }
        let stats = &mut ch.stats;
        match why {
            Skipped::TelephoneEvent => stats.telephone_events += 1,
            Skipped::ComfortNoise => stats.comfort_noise += 1,
            Skipped::OtherCodec => stats.other_codec += 1,
        }
    }

    /// Flushes what is older than the reorder delay at capture time `now`.
    ///
    /// Call it on a timer or for any packet of the call, so that a silent
    /// call still gets written. Costs time proportional to the frames
    /// flushed. Does nothing after [`finish`](Self::finish).
    pub fn advance<W: AudioSink>(
        &mut self,
        now: Timestamp,
        out: &mut WavWriter<W>,
    ) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        let now_pos = self.capture_pos(now);
        self.move_horizon(now_pos);
        self.flush_to(self.horizon, out)
    }

    /// The last position up to `horizon` whose frame ends a page of the file
    /// (whose data starts at byte `data_offset`), if one lies beyond what is
    /// flushed; else `horizon`. Only where a flush stops changes, never what
    /// is written.
    fn page_aligned(&self, horizon: i64, data_offset: u64) -> i64 {
        let frame_bytes: i64 = match self.store {
            Store::G711 { .. } => 2,
            Store::Pcm16 { .. } => 4,
        };
        let Ok(offset) = i64::try_from(data_offset) else {
            return horizon;
        };
        let end = offset.saturating_add(horizon.saturating_mul(frame_bytes));
        let page_end = end - end.rem_euclid(PAGE_BYTES);
        let bytes = page_end - offset;
        if bytes % frame_bytes != 0 {
            return horizon;
        }
        let target = bytes / frame_bytes;
        if target > self.flushed {
            target
        } else {
            horizon
        }
    }

    /// Makes final what is older than the reorder delay at `now_pos`.
    fn move_horizon(&mut self, now_pos: i64) {
        let delay = i64::try_from(self.limits.reorder_delay_samples).unwrap_or(i64::MAX);
        let max = i64::try_from(self.limits.max_samples).unwrap_or(i64::MAX);
        let final_end = now_pos.saturating_sub(delay).min(max);
        self.horizon = self.horizon.max(final_end);
    }

    /// Flushes everything up to `end`: afterwards `out` holds exactly
    /// `(end - start) * 8000` frames (silence where nothing was received).
    ///
    /// Precisely, `max(capture_pos(end), frames already flushed)` frames,
    /// capped at `max_samples`: samples placed beyond are discarded. Later
    /// calls to `place`, `advance` and `finish` do nothing.
    pub fn finish<W: AudioSink>(
        &mut self,
        end: Timestamp,
        out: &mut WavWriter<W>,
    ) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        let end_pos = self.capture_pos(end).max(self.horizon);
        self.flush_to(end_pos, out)?;
        self.finished = true;
        Ok(())
    }

    /// Counters of one channel.
    pub fn stats(&self, channel: Channel) -> &ChannelStats {
        let [left, right] = &self.channels;
        match channel {
            Channel::Left => &left.stats,
            Channel::Right => &right.stats,
        }
    }

    fn channel_mut(&mut self, channel: Channel) -> &mut ChannelState {
        channel_of(&mut self.channels, channel)
    }

    /// Writes positions `[flushed, target)` (capped at `max_samples`) to
    /// `out` and resets them to silence.
    fn flush_to<W: AudioSink>(&mut self, target: i64, out: &mut WavWriter<W>) -> io::Result<()> {
        let max = i64::try_from(self.limits.max_samples).unwrap_or(i64::MAX);
        let target = target.min(max);
        let (frame_bytes, same_format) = match self.store {
            Store::G711 { .. } => (2, matches!(out.format(), SampleFormat::G711(_))),
            Store::Pcm16 { .. } => (4, out.format() == SampleFormat::Pcm16),
        };
        if !same_format {
            return Err(io::Error::other(
                "the WAV's sample format is not the timeline's",
            ));
        }
        while self.flushed < target {
            // Up to MAX_FLUSH_FRAMES in one write, gathered from at most two
            // pieces of the rings (where they wrap around).
            let total = ((target - self.flushed) as u64).min(MAX_FLUSH_FRAMES as u64) as usize;
            let (store, window, flushed) = (&mut self.store, self.window, self.flushed);
            out.write_with(total * frame_bytes, &mut |dst| {
                let mut done = 0;
                while done < total {
                    let idx = (flushed + done as i64).rem_euclid(window as i64) as usize;
                    let n = (total - done).min(window - idx);
                    let piece = dst
                        .get_mut(done * frame_bytes..(done + n) * frame_bytes)
                        .ok_or_else(|| io::Error::other("flush larger than the room lent"))?;
                    store.take_frames(idx..idx + n, piece)?;
                    done += n;
                }
                Ok(())
            })?;
            self.flushed += total as i64;
            self.flushed_idx = (self.flushed_idx + total) % self.window;
        }
        self.horizon = self.horizon.max(self.flushed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::wav::read_info;
    use std::io::Cursor;

    const T0: Timestamp = Timestamp(1_700_000_000_000_000_000);
    const ULAW: SampleFormat = SampleFormat::G711(Law::Ulaw);
    const SILENCE: u8 = 0xFF;

    type Out = WavWriter<Cursor<Vec<u8>>>;

    /// Capture time of sample position `pos` relative to `T0` (plus `nanos`).
    fn at(pos: i64, nanos: i64) -> Timestamp {
        T0.add_nanos(pos * 125_000 + nanos)
    }

    /// A deterministic pseudo-random number.
    fn hash(x: u64) -> u64 {
        let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Recognisable content for sample `k` of a sender (never u-law silence).
    fn noise(seed: u64, k: i64) -> u8 {
        match (hash(seed ^ (k as u64).wrapping_mul(31)) >> 56) as u8 {
            0xFF | 0x7F => 0x11,
            b => b,
        }
    }

    fn tone(freq: f64, k: i64) -> u8 {
        let x = (2.0 * std::f64::consts::PI * freq * k as f64 / 8000.0).sin();
        g711::linear_to_ulaw((x * 8000.0) as i16)
    }

    /// One RTP packet as seen on the tap.
    #[derive(Clone)]
    struct Pkt {
        now: Timestamp,
        channel: Channel,
        ssrc: u32,
        seq: u16,
        ts: u32,
        law: Law,
        payload: Vec<u8>,
    }

    /// Packets of one sender: `sizes` samples each, content `content(k)`
    /// for sender sample `k`, captured at `when(k)` (nanoseconds after T0).
    fn stream(
        channel: Channel,
        ssrc: u32,
        seq0: u16,
        ts0: u32,
        sizes: impl IntoIterator<Item = usize>,
        content: impl Fn(i64) -> u8,
        when: impl Fn(usize, i64) -> i64,
    ) -> Vec<Pkt> {
        let mut out = Vec::new();
        let mut k = 0i64;
        for (i, n) in sizes.into_iter().enumerate() {
            out.push(Pkt {
                now: T0.add_nanos(when(i, k)),
                channel,
                ssrc,
                seq: seq0.wrapping_add(i as u16),
                ts: ts0.wrapping_add(k as u32),
                law: Law::Ulaw,
                payload: (k..k + n as i64).map(&content).collect(),
            });
            k += n as i64;
        }
        out
    }

    fn on_time(_: usize, k: i64) -> i64 {
        k * 125_000
    }

    /// The packets but the `i`th of those for which `dropped(i)`.
    fn without(pkts: Vec<Pkt>, dropped: impl Fn(usize) -> bool) -> Vec<Pkt> {
        pkts.into_iter()
            .enumerate()
            .filter(|(i, _)| !dropped(*i))
            .map(|(_, p)| p)
            .collect()
    }

    /// Where a channel has no packets (a pause longer than the ring, lost
    /// packets, a packet that arrives after the one behind it) its samples
    /// are silence, never what an earlier lap of the ring held.
    #[test]
    fn gaps_are_silence_never_an_earlier_laps_samples() {
        const END: i64 = 64_000;
        let sizes = vec![160; (END / 160) as usize];
        let dropped = |i: usize| {
            let k = i as i64 * 160;
            (24_000..48_000).contains(&k) || (k >= 48_000 && i.is_multiple_of(7))
        };
        let left = without(
            stream(
                Channel::Left,
                1,
                0,
                0,
                sizes.clone(),
                |k| noise(1, k),
                on_time,
            ),
            dropped,
        );
        let mut right = stream(Channel::Right, 2, 0, 0, sizes, |k| noise(2, k), on_time);
        // Two of the right's packets swapped in capture order.
        let (a, b) = (right[300].now, right[301].now);
        right[300].now = b;
        right[301].now = a;
        let mut pkts = left;
        pkts.extend(right);
        let (l, r, tl) = run(pkts, T0, at(END, 0), TimelineLimits::default());
        assert_eq!(l.len(), END as usize);
        assert_eq!(r.len(), END as usize);
        assert!(
            (tl.window as i64) < 24_000,
            "the pause is longer than the ring"
        );
        for k in 0..END {
            let expected = if dropped((k / 160) as usize) {
                SILENCE
            } else {
                noise(1, k)
            };
            assert_eq!(l[k as usize], expected, "left sample {k}");
            assert_eq!(r[k as usize], noise(2, k), "right sample {k}");
        }
    }

    /// Feeds packets (in capture order) and finishes at `end`; returns the
    /// left and right channel bytes and the timeline.
    fn run(
        mut pkts: Vec<Pkt>,
        start: Timestamp,
        end: Timestamp,
        limits: TimelineLimits,
    ) -> (Vec<u8>, Vec<u8>, Timeline) {
        pkts.sort_by_key(|p| p.now);
        let mut out = WavWriter::new(Cursor::new(Vec::new()), ULAW, 2).unwrap();
        let mut tl = Timeline::new(start, ULAW, limits);
        for p in &pkts {
            tl.place(
                p.channel, p.now, p.ssrc, p.seq, p.ts, p.law, &p.payload, &mut out,
            )
            .unwrap();
        }
        tl.finish(end, &mut out).unwrap();
        assert_eq!(out.frames(), tl.flushed());
        let (l, r) = split(out);
        (l, r, tl)
    }

    fn split(out: Out) -> (Vec<u8>, Vec<u8>) {
        let bytes = out.finish().unwrap().into_inner();
        let info = read_info(&mut Cursor::new(&bytes)).unwrap();
        assert_eq!(info.channels, 2);
        let start = info.data_offset as usize;
        let data = &bytes[start..start + info.data_len as usize];
        let left = data.iter().step_by(2).copied().collect();
        let right = data.iter().skip(1).step_by(2).copied().collect();
        (left, right)
    }

    /// The shift `s` such that `out[p + i] == content(p + i - s)` near `p`,
    /// searched within `range`, trying a few later points if `p` is at a seam.
    fn shift_at(
        out: &[u8],
        p: usize,
        range: std::ops::RangeInclusive<i64>,
        content: impl Fn(i64) -> u8,
    ) -> i64 {
        for probe in (p..p + 1600).step_by(40) {
            for s in range.clone() {
                if (0..40).all(|i| {
                    let at = probe + i;
                    at < out.len() && out[at] == content(at as i64 - s)
                }) {
                    return s;
                }
            }
        }
        panic!("no match near {p}");
    }

    /// The drift window's kept sums give what a full scan of its buckets
    /// gives, whatever order packets come in (capture time may step back).

    #[test]
    fn ring_index_is_the_position_modulo_the_window() {
        for window in [1, 7, 4096, 12_096] {
            let limits = TimelineLimits {
                window_samples: window,
                reorder_delay_samples: 0,
                ..TimelineLimits::default()
            };
            let mut tl = Timeline::new(T0, ULAW, limits);
            let mut out = WavWriter::new(Cursor::new(Vec::new()), ULAW, 2).unwrap();
            let w = window as i64;
            for step in [0, 1, 3, w - 1, w, 2 * w + 5, 8192, 100_003] {
                tl.flush_to(tl.flushed + step, &mut out).unwrap();
                assert_eq!(tl.flushed_idx as i64, tl.flushed.rem_euclid(w));
                let f = tl.flushed;
                for pos in [
                    f,
                    f + 1,
                    f + w / 2,
                    f + w - 1,
                    f + w,
                    f + 3 * w + 2,
                    f - 1,
                    -5,
                    0,
                ] {
                    assert_eq!(
                        tl.ring_index(pos) as i64,
                        pos.rem_euclid(w),
                        "window {window}, flushed {f}, pos {pos}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_wav_of_another_sample_format_is_refused() {
        let mut out = WavWriter::new(Cursor::new(Vec::new()), SampleFormat::Pcm16, 2).unwrap();
        let mut tl = Timeline::new(T0, ULAW, TimelineLimits::default());
        assert!(tl.finish(at(8000, 0), &mut out).is_err());
        assert_eq!(out.frames(), 0);
        let mut out = WavWriter::new(Cursor::new(Vec::new()), ULAW, 2).unwrap();
        let mut tl = Timeline::new(T0, SampleFormat::Pcm16, TimelineLimits::default());
        assert!(tl.finish(at(8000, 0), &mut out).is_err());
        let mut tl = Timeline::new(T0, ULAW, TimelineLimits::default());
        tl.finish(at(8000, 0), &mut out).unwrap();
        assert_eq!(out.frames(), 8000);
    }

    #[test]
    fn drift_window_matches_a_full_scan() {
        let mut window = DriftWindow::new();
        let mut pos = 0i64;
        for k in 0..20_000u64 {
            let r = hash(k);
            pos += match r % 100 {
                0 => -(((r >> 8) % 6_000) as i64),
                1 => ((r >> 8) % 20_000) as i64,
                _ => ((r >> 8) % 400) as i64,
            };
            if r.is_multiple_of(997) {
                window.clear();
            }
            let offset = ((r >> 20) % 1_000) as i64 - 500;
            window.push(pos, offset);
            let id = pos.div_euclid(DRIFT_BUCKET);
            let (count, min) = window.scan(id.saturating_sub(DRIFT_BUCKETS as i64 - 1), id);
            let full = (usize::from(count) >= DRIFT_MIN_BUCKETS).then_some(min);
            assert_eq!(window.min(pos), full, "packet {k} at {pos}");
        }
    }

    #[test]
    fn tones_land_on_their_channels_with_exact_length() {
        let mut pkts = stream(
            Channel::Left,
            1,
            100,
            5000,
            [160; 500],
            |k| tone(400.0, k),
            on_time,
        );
        pkts.extend(stream(
            Channel::Right,
            2,
            7,
            0xFFFF_FF00,
            [160; 500],
            |k| tone(1000.0, k),
            on_time,
        ));
        let (l, r, tl) = run(pkts, T0, at(80_000, 0), TimelineLimits::default());
        assert_eq!(l.len(), 80_000);
        assert!(l
            .iter()
            .enumerate()
            .all(|(k, &b)| b == tone(400.0, k as i64)));
        assert!(r
            .iter()
            .enumerate()
            .all(|(k, &b)| b == tone(1000.0, k as i64)));
        for ch in [Channel::Left, Channel::Right] {
            let s = tl.stats(ch);
            assert_eq!(
                (s.packets, s.samples, s.lost, s.late, s.reanchors),
                (500, 80_000, 0, 0, 0)
            );
        }
    }

    #[test]
    fn reordered_packets_are_put_back() {
        // Every 7th packet is delayed by 50 ms: it arrives after the next two.
        let when = |i: usize, k: i64| k * 125_000 + if i % 7 == 3 { 50_000_000 } else { 0 };
        let pkts = stream(
            Channel::Left,
            9,
            65_500,
            0,
            [160; 300],
            |k| noise(1, k),
            when,
        );
        let (l, r, tl) = run(pkts, T0, at(48_000, 0), TimelineLimits::default());
        assert!(l.iter().enumerate().all(|(k, &b)| b == noise(1, k as i64)));
        assert!(r.iter().all(|&b| b == SILENCE));
        let s = tl.stats(Channel::Left);
        assert_eq!((s.packets, s.lost, s.late, s.reanchors), (300, 0, 0, 0));
    }

    #[test]
    fn five_percent_loss_is_silence_at_the_right_place() {
        let dropped = |i: usize| i > 0 && i < 499 && hash(i as u64).is_multiple_of(20);
        let pkts = without(
            stream(
                Channel::Right,
                3,
                1,
                1,
                [160; 500],
                |k| noise(2, k),
                on_time,
            ),
            dropped,
        );
        let lost = (0..500).filter(|&i| dropped(i)).count() as u64;
        assert!((15..=40).contains(&lost), "{lost}");
        let (_, r, tl) = run(pkts, T0, at(80_000, 0), TimelineLimits::default());
        assert_eq!(r.len(), 80_000);
        for (k, &b) in r.iter().enumerate() {
            let expected = if dropped(k / 160) {
                SILENCE
            } else {
                noise(2, k as i64)
            };
            assert_eq!(b, expected, "sample {k}");
        }
        let s = tl.stats(Channel::Right);
        assert_eq!((s.packets, s.lost, s.late), (500 - lost, lost, 0));
    }

    #[test]
    fn ssrc_change_reanchors_and_keeps_content() {
        let mut pkts = stream(
            Channel::Left,
            10,
            500,
            1000,
            [160; 250],
            |k| noise(3, k),
            on_time,
        );
        pkts.extend(stream(
            Channel::Left,
            11,
            40_000,
            123_456_789,
            [160; 250],
            |k| noise(3, k + 40_000),
            |_, k| (k + 40_000) * 125_000,
        ));
        let (l, _, tl) = run(pkts, T0, at(80_000, 0), TimelineLimits::default());
        assert!(l.iter().enumerate().all(|(k, &b)| b == noise(3, k as i64)));
        let s = tl.stats(Channel::Left);
        assert_eq!((s.packets, s.lost, s.reanchors), (500, 0, 1));
    }

    #[test]
    fn timestamp_reset_to_zero_reanchors() {
        let mut pkts = stream(
            Channel::Left,
            10,
            0,
            347_200 - 40_000,
            [160; 250],
            |k| noise(4, k),
            on_time,
        );
        // Same SSRC, sequence continues, timestamp restarts at 0.
        pkts.extend(stream(
            Channel::Left,
            10,
            250,
            0,
            [160; 250],
            |k| noise(4, k + 40_000),
            |_, k| (k + 40_000) * 125_000,
        ));
        let (l, _, tl) = run(pkts, T0, at(80_000, 0), TimelineLimits::default());
        assert!(l.iter().enumerate().all(|(k, &b)| b == noise(4, k as i64)));
        let s = tl.stats(Channel::Left);
        assert_eq!((s.packets, s.lost, s.reanchors), (500, 0, 1));
    }

    #[test]
    fn timestamp_jump_forward_reanchors() {
        let mut pkts = stream(
            Channel::Left,
            10,
            0,
            0,
            [160; 100],
            |k| noise(5, k),
            on_time,
        );
        // Jumps forward by 10 minutes of timestamps, capture time continues.
        pkts.extend(stream(
            Channel::Left,
            10,
            100,
            16_000 + 4_800_000,
            [160; 100],
            |k| noise(5, k + 16_000),
            |_, k| (k + 16_000) * 125_000,
        ));
        let (l, _, tl) = run(pkts, T0, at(32_000, 0), TimelineLimits::default());
        assert!(l.iter().enumerate().all(|(k, &b)| b == noise(5, k as i64)));
        assert_eq!(tl.stats(Channel::Left).reanchors, 1);
    }

    #[test]
    fn mixed_10_and_20_ms_packets() {
        let sizes: Vec<usize> = (0..700)
            .map(|i| if hash(i).is_multiple_of(3) { 160 } else { 80 })
            .collect();
        let total: usize = sizes.iter().sum();
        let pkts = stream(Channel::Right, 5, 9, 77, sizes, |k| noise(6, k), on_time);
        let (_, r, tl) = run(pkts, T0, at(total as i64, 0), TimelineLimits::default());
        assert_eq!(r.len(), total);
        assert!(r.iter().enumerate().all(|(k, &b)| b == noise(6, k as i64)));
        assert_eq!(tl.stats(Channel::Right).samples, total as u64);
    }

    #[test]
    fn five_second_gap_stays_five_seconds_of_silence() {
        let mut pkts = stream(Channel::Left, 1, 0, 0, [160; 100], |k| noise(7, k), on_time);
        // Silence suppression: timestamps and sequence numbers continue after 5 s.
        pkts.extend(stream(
            Channel::Left,
            1,
            100,
            56_000,
            [160; 100],
            |k| noise(7, k + 56_000),
            |_, k| (k + 56_000) * 125_000,
        ));
        let (l, _, tl) = run(pkts, T0, at(72_000, 0), TimelineLimits::default());
        assert_eq!(l.len(), 72_000);
        for (k, &b) in l.iter().enumerate() {
            let expected = if (16_000..56_000).contains(&k) {
                SILENCE
            } else {
                noise(7, k as i64)
            };
            assert_eq!(b, expected, "sample {k}");
        }
        let s = tl.stats(Channel::Left);
        assert_eq!((s.lost, s.reanchors), (0, 0));
    }

    #[test]
    fn early_media_before_start_is_dropped() {
        // The call is answered 1.01 s after the stream starts.
        let start = at(8080, 0);
        let pkts = stream(Channel::Left, 1, 0, 0, [160; 500], |k| noise(8, k), on_time);
        let (l, _, tl) = run(pkts, start, at(80_000, 0), TimelineLimits::default());
        assert_eq!(l.len(), 80_000 - 8080);
        assert!(l
            .iter()
            .enumerate()
            .all(|(p, &b)| b == noise(8, p as i64 + 8080)));
        let s = tl.stats(Channel::Left);
        // Packets 0..50 end at or before sample 8000; packet 50 is cut.
        assert_eq!(
            (s.before_start, s.packets, s.samples),
            (50, 450, 80_000 - 8080)
        );
    }

    #[test]
    fn late_packets_are_dropped_and_counted() {
        let when = |i: usize, k: i64| {
            k * 125_000
                + match i {
                    100 => 450_000_000,
                    200 => 1_500_000_000,
                    _ => 0,
                }
        };
        let pkts = stream(Channel::Left, 1, 0, 0, [160; 300], |k| noise(9, k), when);
        let (l, _, tl) = run(pkts, T0, at(48_000, 0), TimelineLimits::default());
        for (k, &b) in l.iter().enumerate() {
            let expected = if k / 160 == 100 || k / 160 == 200 {
                SILENCE
            } else {
                noise(9, k as i64)
            };
            assert_eq!(b, expected, "sample {k}");
        }
        let s = tl.stats(Channel::Left);
        assert_eq!((s.packets, s.late, s.lost, s.reanchors), (298, 2, 0, 0));
    }

    #[test]
    fn channels_with_differently_delayed_first_packets_stay_aligned() {
        let jitter = |seed: u64, i: usize, max_ms: u64| {
            (hash(seed + i as u64) % (max_ms * 1_000_000)) as i64
        };
        let left_when = move |i: usize, k: i64| {
            k * 125_000
                + if i == 0 {
                    80_000_000
                } else {
                    5_000_000 + jitter(100, i, 40)
                }
        };
        let right_when = move |i: usize, k: i64| {
            k * 125_000
                + if i == 0 {
                    30_000_000
                } else {
                    12_000_000 + jitter(200, i, 30)
                }
        };
        let mut pkts = stream(
            Channel::Left,
            1,
            0,
            9,
            [160; 3000],
            |k| noise(10, k),
            left_when,
        );
        pkts.extend(stream(
            Channel::Right,
            2,
            0,
            99,
            [160; 3000],
            |k| noise(11, k),
            right_when,
        ));
        let (l, r, tl) = run(pkts, T0, at(480_000, 0), TimelineLimits::default());
        for p in (8000..470_000).step_by(8000) {
            let sl = shift_at(&l, p, -1000..=1000, |k| noise(10, k));
            let sr = shift_at(&r, p, -1000..=1000, |k| noise(11, k));
            assert!((sl - sr).abs() <= 480, "at {p}: {sl} vs {sr}");
            // Each starts on a delayed packet (80 ms and 30 ms) and converges
            // on its least-delayed packets (5 ms and 12 ms); a move needs three
            // early packets in a row (rule 3), so the last steps take a while.
            assert!((40..=400).contains(&sl), "left shift {sl} at {p}");
            assert!((96..=240).contains(&sr), "right shift {sr} at {p}");
            if p >= 240_000 {
                assert!((40..=200).contains(&sl), "left shift {sl} at {p}");
                assert!((96..=240).contains(&sr), "right shift {sr} at {p}");
            }
        }
        assert_eq!(tl.stats(Channel::Left).reanchors, 0);
        assert_eq!(tl.stats(Channel::Right).late, 0);
    }

    #[test]
    fn slow_sender_clock_stays_aligned_for_ten_minutes() {
        // The left sender's clock runs 0.1% slow: its 160 samples take
        // 20.02 ms of capture time. The right sender's clock is exact.
        let left_when = |i: usize, k: i64| k * 125_125 + (hash(300 + i as u64) % 10_000_000) as i64;
        let right_when =
            |i: usize, k: i64| k * 125_000 + (hash(400 + i as u64) % 10_000_000) as i64;
        let mut pkts = stream(
            Channel::Left,
            1,
            0,
            0,
            std::iter::repeat_n(160, 29_960),
            |k| noise(12, k),
            left_when,
        );
        pkts.extend(stream(
            Channel::Right,
            2,
            0,
            0,
            std::iter::repeat_n(160, 30_000),
            |k| noise(13, k),
            right_when,
        ));
        let end = 4_800_000;
        let (l, r, tl) = run(pkts, T0, at(end, 0), TimelineLimits::default());
        assert_eq!(l.len(), end as usize);
        let mut worst = 0;
        for p in (8000..(end as usize - 8000)).step_by(40_000) {
            // Sender sample k was played at capture position k * 1.001.
            let ideal = p as i64 - (p as f64 / 1.001).round() as i64;
            let sl = shift_at(&l, p, ideal - 800..=ideal + 800, |k| noise(12, k));
            let sr = shift_at(&r, p, -800..=800, |k| noise(13, k));
            let error = ((sl - ideal) - sr).abs();
            worst = worst.max(error);
            assert!(error < 480, "at {p}: left {sl} (ideal {ideal}), right {sr}");
        }
        assert!(worst > 0);
        assert_eq!(tl.stats(Channel::Left).reanchors, 0);
        assert_eq!(tl.stats(Channel::Left).late, 0);
    }

    #[test]
    fn fast_sender_clock_is_followed_too() {
        let when = |_: usize, k: i64| k * 124_875;
        let pkts = stream(
            Channel::Left,
            1,
            0,
            0,
            std::iter::repeat_n(160, 15_000),
            |k| noise(14, k),
            when,
        );
        let (l, _, tl) = run(pkts, T0, at(2_396_000, 0), TimelineLimits::default());
        for p in (8000..2_380_000).step_by(80_000) {
            let ideal = p as i64 - (p as f64 / 0.999).round() as i64;
            let s = shift_at(&l, p, ideal - 800..=ideal + 800, |k| noise(14, k));
            assert!((s - ideal).abs() < 480, "at {p}: {s} vs {ideal}");
        }
        assert_eq!(tl.stats(Channel::Left).reanchors, 0);
    }

    #[test]
    fn hostile_streams_never_panic_and_stay_bounded() {
        let limit_sets = [
            TimelineLimits::default(),
            TimelineLimits {
                window_samples: 0,
                reorder_delay_samples: 0,
                jump_threshold_samples: 0,
                max_samples: 100_000,
            },
            TimelineLimits {
                window_samples: 160,
                reorder_delay_samples: 4000,
                jump_threshold_samples: usize::MAX,
                max_samples: u64::MAX,
            },
        ];
        for limits in limit_sets {
            let mut out = WavWriter::new(Cursor::new(Vec::new()), ULAW, 2).unwrap();
            let mut tl = Timeline::new(T0, ULAW, limits);
            let memory = tl.memory_bytes();
            let payload = vec![0x42u8; 2000];
            let mut seq = 0u16;
            let mut ts = 0u32;
            let mut last = T0;
            for i in 0..20_000u64 {
                let h = hash(i);
                // Capture time: mostly forward, sometimes back, sometimes before start.
                let now =
                    T0.add_nanos(i as i64 * 5_000_000 + (h % 4_000_000_000) as i64 - 1_000_000_000);
                last = last.max(now);
                ts = match h % 7 {
                    0 => h as u32,
                    1 => ts.wrapping_add(0x8000_0000),
                    2 => ts.wrapping_sub(160),
                    _ => ts.wrapping_add(160),
                };
                seq = if h.is_multiple_of(11) {
                    (h >> 8) as u16
                } else {
                    seq.wrapping_add(1)
                };
                let ssrc = if h.is_multiple_of(97) {
                    (h >> 16) as u32
                } else {
                    7
                };
                let channel = if h & 1 == 0 {
                    Channel::Left
                } else {
                    Channel::Right
                };
                let law = if h & 2 == 0 { Law::Ulaw } else { Law::Alaw };
                let len = ((h >> 20) % 2001) as usize;
                tl.place(channel, now, ssrc, seq, ts, law, &payload[..len], &mut out)
                    .unwrap();
                if h.is_multiple_of(13) {
                    tl.skip(channel, Skipped::ComfortNoise, ssrc, seq.wrapping_add(1));
                }
                assert_eq!(tl.memory_bytes(), memory);
            }
            let end = last.add_secs(1);
            tl.finish(end, &mut out).unwrap();
            let expected = (tl.capture_pos(end) as u64).min(limits.max_samples);
            assert_eq!(out.frames(), expected);
            assert_eq!(tl.flushed(), expected);
        }
    }

    #[test]
    fn skipped_packets_in_the_stream_are_not_loss() {
        let mut out = WavWriter::new(Cursor::new(Vec::new()), ULAW, 2).unwrap();
        let mut tl = Timeline::new(T0, ULAW, TimelineLimits::default());
        for i in 0..100u16 {
            let k = i64::from(i) * 160;
            if i % 10 == 5 {
                // Comfort noise and DTMF share the audio's SSRC and sequence.
                let why = if i % 20 == 5 {
                    Skipped::ComfortNoise
                } else {
                    Skipped::TelephoneEvent
                };
                tl.skip(Channel::Left, why, 9, i);
                continue;
            }
            tl.place(
                Channel::Left,
                at(k, 0),
                9,
                i,
                k as u32,
                Law::Ulaw,
                &[1; 160],
                &mut out,
            )
            .unwrap();
        }
        let s = tl.stats(Channel::Left);
        assert_eq!(
            (s.packets, s.lost, s.comfort_noise, s.telephone_events),
            (90, 0, 5, 5)
        );
        // A skipped packet of another SSRC says nothing about this stream.
        tl.skip(Channel::Left, Skipped::OtherCodec, 10, 500);
        tl.place(
            Channel::Left,
            at(100 * 160, 0),
            9,
            101,
            16_000,
            Law::Ulaw,
            &[1; 160],
            &mut out,
        )
        .unwrap();
        assert_eq!(tl.stats(Channel::Left).lost, 1);
    }

    #[test]
    fn pcma_payload_in_ulaw_recording_is_transcoded_by_table() {
        let all: Vec<u8> = (0..=255u8).cycle().take(160 * 50).collect();
        let mut out = WavWriter::new(Cursor::new(Vec::new()), ULAW, 2).unwrap();
        let mut tl = Timeline::new(T0, ULAW, TimelineLimits::default());
        for (i, chunk) in all.chunks(160).enumerate() {
            let now = at(i as i64 * 160, 0);
            let ts = i as u32 * 160;
            tl.place(
                Channel::Left,
                now,
                1,
                i as u16,
                ts,
                Law::Alaw,
                chunk,
                &mut out,
            )
            .unwrap();
            tl.place(
                Channel::Right,
                now,
                2,
                i as u16,
                ts,
                Law::Ulaw,
                chunk,
                &mut out,
            )
            .unwrap();
        }
        tl.finish(at(8000, 0), &mut out).unwrap();
        let (l, r) = split(out);
        let expected: Vec<u8> = all
            .iter()
            .map(|&b| g711::ALAW_TO_ULAW[b as usize])
            .collect();
        assert_eq!(l, expected);
        assert_eq!(r, all);
    }

    #[test]
    fn pcm16_output_decodes_by_table() {
        let all: Vec<u8> = (0..=255u8).cycle().take(160 * 10).collect();
        let mut out = WavWriter::new(Cursor::new(Vec::new()), SampleFormat::Pcm16, 2).unwrap();
        let mut tl = Timeline::new(T0, SampleFormat::Pcm16, TimelineLimits::default());
        for (i, chunk) in all.chunks(160).enumerate() {
            let now = at(i as i64 * 160, 0);
            tl.place(
                Channel::Left,
                now,
                1,
                i as u16,
                i as u32 * 160,
                Law::Alaw,
                chunk,
                &mut out,
            )
            .unwrap();
            tl.place(
                Channel::Right,
                now,
                2,
                i as u16,
                i as u32 * 160,
                Law::Ulaw,
                chunk,
                &mut out,
            )
            .unwrap();
        }
        tl.finish(at(1700, 0), &mut out).unwrap();
        let bytes = out.finish().unwrap().into_inner();
        let info = read_info(&mut Cursor::new(&bytes)).unwrap();
        assert_eq!(info.frames(), 1700);
        let data = &bytes[info.data_offset as usize..];
        for k in 0..1700 {
            let l = i16::from_le_bytes([data[4 * k], data[4 * k + 1]]);
            let r = i16::from_le_bytes([data[4 * k + 2], data[4 * k + 3]]);
            let (el, er) = if k < 1600 {
                (g711::alaw_to_linear(all[k]), g711::ulaw_to_linear(all[k]))
            } else {
                (0, 0)
            };
            assert_eq!((l, r), (el, er), "frame {k}");
        }
    }

    #[test]
    fn advance_keeps_the_reorder_delay_and_finish_is_final() {
        let mut out = WavWriter::new(Cursor::new(Vec::new()), ULAW, 2).unwrap();
        let mut tl = Timeline::new(T0, ULAW, TimelineLimits::default());
        for i in 0..100u16 {
            let k = i64::from(i) * 160;
            tl.place(
                Channel::Left,
                at(k, 0),
                1,
                i,
                k as u32,
                Law::Ulaw,
                &[1; 160],
                &mut out,
            )
            .unwrap();
        }
        tl.advance(at(16_000, 0), &mut out).unwrap();
        assert_eq!(out.frames(), 16_000 - 3200);
        tl.skip(Channel::Right, Skipped::TelephoneEvent, 0, 0);
        tl.skip(Channel::Right, Skipped::OtherCodec, 0, 0);
        tl.finish(at(20_000, 0), &mut out).unwrap();
        assert_eq!(out.frames(), 20_000);
        let before = tl.stats(Channel::Left).clone();
        tl.place(
            Channel::Left,
            at(20_000, 0),
            1,
            100,
            16_000,
            Law::Ulaw,
            &[1; 160],
            &mut out,
        )
        .unwrap();
        tl.advance(at(40_000, 0), &mut out).unwrap();
        tl.finish(at(40_000, 0), &mut out).unwrap();
        assert_eq!(out.frames(), 20_000);
        assert_eq!(tl.stats(Channel::Left), &before);
        let r = tl.stats(Channel::Right);
        assert_eq!(
            (r.telephone_events, r.other_codec, r.comfort_noise),
            (1, 1, 0)
        );
        let (l, r) = split(out);
        assert!(l[..16_000].iter().all(|&b| b == 1));
        assert!(l[16_000..].iter().all(|&b| b == SILENCE));
        assert!(r.iter().all(|&b| b == SILENCE));
    }

    #[test]
    fn silent_call_and_capture_rounding() {
        let tl = Timeline::new(T0, ULAW, TimelineLimits::default());
        assert_eq!(tl.capture_pos(T0.add_nanos(62_499)), 0);
        assert_eq!(tl.capture_pos(T0.add_nanos(62_500)), 1);
        assert_eq!(tl.capture_pos(T0.add_nanos(-62_501)), -1);
        assert_eq!(
            tl.capture_pos(Timestamp(i64::MAX)),
            (i64::MAX - T0.0) / 125_000
        );
        let (l, r, _) = run(
            Vec::new(),
            T0,
            T0.add_nanos(3_500_000_000),
            TimelineLimits::default(),
        );
        assert_eq!(l.len(), 28_000);
        assert!(l.iter().chain(&r).all(|&b| b == SILENCE));
    }

    #[test]
    fn max_samples_caps_the_recording() {
        let limits = TimelineLimits {
            max_samples: 8000,
            ..TimelineLimits::default()
        };
        let pkts = stream(
            Channel::Left,
            1,
            0,
            0,
            [160; 100],
            |k| noise(15, k),
            on_time,
        );
        let (l, _, tl) = run(pkts, T0, at(16_000, 0), limits);
        assert_eq!(l.len(), 8000);
        assert!(l.iter().enumerate().all(|(k, &b)| b == noise(15, k as i64)));
        assert_eq!(tl.stats(Channel::Left).beyond_max, 50);
    }
}
