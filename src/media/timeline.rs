//! The per-call two-channel timeline.
//!
//! Position 0 is the call's start (the answer). Each RTP packet is placed at a
//! sample position computed from its RTP timestamp, anchored to capture time,
//! in a bounded per-channel ring that doubles as the reorder buffer. Samples
//! older than the reorder delay are flushed, both channels interleaved, to the
//! WAV writer; positions nobody wrote are silence.

use super::wav::WavWriter;
use super::{Channel, Law, SampleFormat};
use crate::Timestamp;
use std::io::{self, Seek, Write};

/// Bounds of the timeline's memory and reordering.
#[derive(Debug, Clone, Copy)]
pub struct TimelineLimits {
    /// Ring capacity per channel, in samples (default 8000 = 1 s).
    pub window_samples: usize,
    /// Samples younger than this (relative to the newest capture time) are
    /// kept back for reordered packets (default 3200 = 400 ms).
    pub reorder_delay_samples: usize,
    /// A packet whose RTP-predicted position is further than this from its
    /// capture-time position re-anchors the stream (default 4000 = 500 ms).
    pub jump_threshold_samples: usize,
}

impl Default for TimelineLimits {
    fn default() -> Self {
        TimelineLimits {
            window_samples: 8000,
            reorder_delay_samples: 3200,
            jump_threshold_samples: 4000,
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

/// Two channels on one timeline, written to a WAV as it goes.
pub struct Timeline {
    _start: Timestamp,
}

impl Timeline {
    /// A timeline starting at `start` (capture time of the answer), writing `format`.
    pub fn new(start: Timestamp, format: SampleFormat, limits: TimelineLimits) -> Self {
        let _ = (format, limits);
        Timeline { _start: start }
    }

    /// Places one G.711 RTP payload captured at `now` on `channel`, flushing
    /// older samples to `out` as the window moves.
    #[allow(clippy::too_many_arguments)]
    pub fn place<W: Write + Seek>(
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
        let _ = (
            channel,
            now,
            ssrc,
            sequence,
            rtp_timestamp,
            law,
            payload,
            out,
        );
        todo!()
    }

    /// Counts a packet that is not written (see [`Skipped`]).
    pub fn skip(&mut self, channel: Channel, why: Skipped) {
        let _ = (channel, why);
        todo!()
    }

    /// Flushes what is older than the reorder delay at capture time `now`.
    pub fn advance<W: Write + Seek>(
        &mut self,
        now: Timestamp,
        out: &mut WavWriter<W>,
    ) -> io::Result<()> {
        let _ = (now, out);
        todo!()
    }

    /// Flushes everything up to `end`: afterwards `out` holds exactly
    /// `(end - start) * 8000` frames (silence where nothing was received).
    pub fn finish<W: Write + Seek>(
        &mut self,
        end: Timestamp,
        out: &mut WavWriter<W>,
    ) -> io::Result<()> {
        let _ = (end, out);
        todo!()
    }

    /// Counters of one channel.
    pub fn stats(&self, channel: Channel) -> &ChannelStats {
        let _ = channel;
        todo!()
    }
}
