//! A small RIFF/WAVE writer and reader: PCM-16 (tag 1) and G.711 (tags 6 and
//! 7, with a `fact` chunk). The header is written first with zero sizes and
//! rewritten by [`WavWriter::finish`].

use super::SampleFormat;
use std::io::{self, Read, Seek, Write};

/// Writes a WAV file incrementally.
pub struct WavWriter<W: Write + Seek> {
    _out: W,
    _format: SampleFormat,
}

impl<W: Write + Seek> WavWriter<W> {
    /// Starts a WAV stream: 8000 Hz, `channels` channels, writes a placeholder header.
    pub fn new(out: W, format: SampleFormat, channels: u16) -> io::Result<Self> {
        let _ = (out, format, channels);
        todo!()
    }

    /// Appends interleaved G.711 bytes (format must be `G711`).
    pub fn write_g711(&mut self, interleaved: &[u8]) -> io::Result<()> {
        let _ = interleaved;
        todo!()
    }

    /// Appends interleaved PCM-16 samples (format must be `Pcm16`).
    pub fn write_pcm16(&mut self, interleaved: &[i16]) -> io::Result<()> {
        let _ = interleaved;
        todo!()
    }

    /// Frames (samples per channel) written so far.
    pub fn frames(&self) -> u64 {
        todo!()
    }

    /// Rewrites the header with the final sizes, flushes, and returns the sink.
    pub fn finish(self) -> io::Result<W> {
        todo!()
    }
}

/// What a WAV header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavInfo {
    /// Sample format (tag 1/6/7 with 16/8/8 bits).
    pub format: SampleFormat,
    /// Channels.
    pub channels: u16,
    /// Samples per second.
    pub sample_rate: u32,
    /// Byte offset of the `data` chunk's payload.
    pub data_offset: u64,
    /// Length of the `data` payload according to the header.
    pub data_len: u64,
}

/// Reads and checks a WAV header (RIFF/WAVE, fmt, optional fact, data).
pub fn read_info<R: Read + Seek>(input: &mut R) -> io::Result<WavInfo> {
    let _ = input;
    todo!()
}
