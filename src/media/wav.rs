//! A small RIFF/WAVE writer and reader: PCM-16 (tag 1) and G.711 (tags 6 and
//! 7, with a `fact` chunk). The header is written first with zero sizes and
//! rewritten by [`WavWriter::finish`].
//!
//! Layout written (all integers little-endian):
//!
//! ```text
//! PCM-16 (44-byte header)          G.711 (58-byte header)
//! "RIFF" riff_size "WAVE"          "RIFF" riff_size "WAVE"
//! "fmt " 16                        "fmt " 18
//!   tag=1 ch rate byte_rate          tag=6|7 ch rate byte_rate
//!   block_align bits=16              block_align bits=8 cbSize=0
//!                                  "fact" 4 sample_frames
//! "data" data_size <samples>       "data" data_size <samples>
//! [pad byte if data_size is odd]   [pad byte if data_size is odd]
//! ```
//!
//! `riff_size` is the file length minus 8. The `data` chunk is always the
//! last chunk, which is what makes [`repair`] possible after a crash: a file
//! whose writer died before `finish` still has its header (with zero sizes)
//! followed by whatever samples reached the disk.

use super::{Law, SampleFormat, SAMPLE_RATE};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// WAVE format tag of linear PCM.
const TAG_PCM: u16 = 1;
/// WAVE format tag of G.711 A-law.
const TAG_ALAW: u16 = 6;
/// WAVE format tag of G.711 u-law.
const TAG_ULAW: u16 = 7;

/// Largest data payload whose sizes still fit the 32-bit RIFF fields (the
/// RIFF size counts the header, the data and a pad byte).
const MAX_DATA_LEN: u64 = u32::MAX as u64 - 128;

/// Byte offsets of the size fields of a header, as written or as found.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// Where the `fact` chunk's sample count is, if there is one.
    fact_count_offset: Option<u64>,
    /// Where the `data` chunk's payload starts (its size field is 4 bytes before).
    data_offset: u64,
}

fn tag_and_bits(format: SampleFormat) -> (u16, u16) {
    match format {
        SampleFormat::Pcm16 => (TAG_PCM, 16),
        SampleFormat::G711(Law::Alaw) => (TAG_ALAW, 8),
        SampleFormat::G711(Law::Ulaw) => (TAG_ULAW, 8),
    }
}

fn invalid_input(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn invalid_data(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// The first `len` bytes of a [`header`] buffer (`len` is at most 58 by
/// construction; an error rather than a panic if that ever broke).
fn header_bytes(buf: &[u8; 58], len: usize) -> io::Result<&[u8]> {
    buf.get(..len)
        .ok_or_else(|| invalid_input("WAV header longer than its buffer"))
}

/// Builds the header for `format`/`channels` with the given sizes; returns
/// its bytes (in a fixed buffer) and length.
fn header(format: SampleFormat, channels: u16, data_len: u32, frames: u32) -> ([u8; 58], usize) {
    let (tag, bits) = tag_and_bits(format);
    let block_align = channels.saturating_mul(bits / 8);
    let byte_rate = SAMPLE_RATE.saturating_mul(u32::from(block_align));
    let pcm = tag == TAG_PCM;
    let fmt_len: u32 = if pcm { 16 } else { 18 };
    let header_len: u32 = 12 + 8 + fmt_len + if pcm { 0 } else { 12 } + 8;
    let pad = data_len & 1;
    let riff_size = (header_len - 8)
        .saturating_add(data_len)
        .saturating_add(pad);

    let mut buf = [0u8; 58];
    let mut at = 0;
    // The pieces below add up to at most 58 bytes: every `get_mut` hits.
    let mut put = |bytes: &[u8]| {
        if let Some(dst) = buf.get_mut(at..at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        at += bytes.len();
    };
    put(b"RIFF");
    put(&riff_size.to_le_bytes());
    put(b"WAVE");
    put(b"fmt ");
    put(&fmt_len.to_le_bytes());
    put(&tag.to_le_bytes());
    put(&channels.to_le_bytes());
    put(&SAMPLE_RATE.to_le_bytes());
    put(&byte_rate.to_le_bytes());
    put(&block_align.to_le_bytes());
    put(&bits.to_le_bytes());
    if !pcm {
        put(&0u16.to_le_bytes()); // cbSize
        put(b"fact");
        put(&4u32.to_le_bytes());
        put(&frames.to_le_bytes());
    }
    put(b"data");
    put(&data_len.to_le_bytes());
    debug_assert_eq!(at, header_len as usize);
    (buf, header_len as usize)
}

/// A WAV's byte sink that can lend the room for its next bytes, so that a
/// writer produces them in place (the timeline interleaves its two channels
/// straight into it) instead of in a buffer of its own that is then copied
/// in.
pub trait AudioSink: Write + Seek {
    /// Writes `len` bytes at the current position, as [`Write::write_all`]
    /// would, produced by `fill` in the `len`-byte slice it is lent; nothing
    /// is written if `fill` fails. The default lends a per-thread buffer and
    /// writes it.
    fn write_with(
        &mut self,
        len: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        thread_local! {
            static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        SCRATCH.with_borrow_mut(|scratch| {
            if scratch.len() < len {
                scratch.resize(len, 0);
            }
            let buf = scratch
                .get_mut(..len)
                .ok_or_else(|| io::Error::other("scratch buffer shorter than asked"))?;
            fill(buf)?;
            self.write_all(buf)
        })
    }
}

impl AudioSink for File {}
impl AudioSink for io::Cursor<Vec<u8>> {}

/// Writes a WAV file incrementally.
///
/// Every `write_*` call goes straight to the sink: write large blocks (the
/// timeline writes about a second at a time) or give it a buffered sink. [`finish`](Self::finish) rewrites the sizes and
/// flushes; a writer dropped without `finish` leaves a file that [`repair`]
/// can fix.
pub struct WavWriter<W: Write + Seek> {
    out: W,
    format: SampleFormat,
    channels: u16,
    /// Bytes per frame.
    block_align: u16,
    /// Offset of the data payload (the header length).
    data_offset: u64,
    /// Bytes of sample data written so far.
    data_len: u64,
}

impl<W: Write + Seek> WavWriter<W> {
    /// Starts a WAV stream: 8000 Hz, `channels` channels, writes a placeholder header.
    ///
    /// The header is written at the sink's current position, which should be
    /// the start of the file. `channels` must be 1 or more.
    pub fn new(mut out: W, format: SampleFormat, channels: u16) -> io::Result<Self> {
        if channels == 0 || channels > 256 {
            return Err(invalid_input("WAV channel count must be 1..=256"));
        }
        let start = out.stream_position()?;
        let (bytes, len) = header(format, channels, 0, 0);
        out.write_all(header_bytes(&bytes, len)?)?;
        let (_, bits) = tag_and_bits(format);
        Ok(WavWriter {
            out,
            format,
            channels,
            block_align: channels * (bits / 8),
            data_offset: start + len as u64,
            data_len: 0,
        })
    }

    /// The sample format being written.
    pub fn format(&self) -> SampleFormat {
        self.format
    }

    /// Channels per frame.
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Byte offset (in the sink) where the sample data starts.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    fn reserve(&mut self, bytes: u64) -> io::Result<()> {
        let total = self.data_len.saturating_add(bytes);
        if total > MAX_DATA_LEN {
            return Err(io::Error::other(
                "WAV data would exceed the 4 GiB RIFF limit",
            ));
        }
        self.data_len = total;
        Ok(())
    }

    /// Appends interleaved G.711 bytes (format must be `G711`).
    ///
    /// The length must be a whole number of frames. Fails without writing
    /// anything if the format is PCM-16 or the 4 GiB RIFF limit would be
    /// passed.
    pub fn write_g711(&mut self, interleaved: &[u8]) -> io::Result<()> {
        if !matches!(self.format, SampleFormat::G711(_)) {
            return Err(invalid_input("write_g711 on a PCM-16 WAV"));
        }
        if !interleaved.len().is_multiple_of(usize::from(self.channels)) {
            return Err(invalid_input("partial frame"));
        }
        self.reserve(interleaved.len() as u64)?;
        self.out.write_all(interleaved)
    }

    /// Appends interleaved PCM-16 samples (format must be `Pcm16`).
    ///
    /// Same rules as [`write_g711`](Self::write_g711). Converts to
    /// little-endian through a small stack buffer (no allocation).
    pub fn write_pcm16(&mut self, interleaved: &[i16]) -> io::Result<()> {
        if self.format != SampleFormat::Pcm16 {
            return Err(invalid_input("write_pcm16 on a G.711 WAV"));
        }
        if !interleaved.len().is_multiple_of(usize::from(self.channels)) {
            return Err(invalid_input("partial frame"));
        }
        self.reserve(interleaved.len() as u64 * 2)?;
        let mut buf = [0u8; 1024];
        for chunk in interleaved.chunks(buf.len() / 2) {
            for (dst, sample) in buf.chunks_exact_mut(2).zip(chunk) {
                dst.copy_from_slice(&sample.to_le_bytes());
            }
            let filled = buf
                .get(..chunk.len() * 2)
                .ok_or_else(|| invalid_input("sample chunk larger than its buffer"))?;
            self.out.write_all(filled)?;
        }
        Ok(())
    }

    /// Appends interleaved PCM-16 samples already in little-endian bytes
    /// (format must be `Pcm16`), in one write to the sink.
    ///
    /// Same rules as [`write_g711`](Self::write_g711).
    pub fn write_pcm16_le(&mut self, interleaved: &[u8]) -> io::Result<()> {
        if self.format != SampleFormat::Pcm16 {
            return Err(invalid_input("write_pcm16_le on a G.711 WAV"));
        }
        if !interleaved
            .len()
            .is_multiple_of(usize::from(self.block_align))
        {
            return Err(invalid_input("partial frame"));
        }
        self.reserve(interleaved.len() as u64)?;
        self.out.write_all(interleaved)
    }

    /// Appends `len` bytes of interleaved samples in the WAV's format,
    /// produced by `fill` straight into the sink's room for them (see
    /// [`AudioSink`]). Same rules as [`write_g711`](Self::write_g711).
    pub fn write_with(
        &mut self,
        len: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> io::Result<()>,
    ) -> io::Result<()>
    where
        W: AudioSink,
    {
        if !len.is_multiple_of(usize::from(self.block_align)) {
            return Err(invalid_input("partial frame"));
        }
        let total = self.data_len.saturating_add(len as u64);
        if total > MAX_DATA_LEN {
            return Err(io::Error::other(
                "WAV data would exceed the 4 GiB RIFF limit",
            ));
        }
        self.out.write_with(len, fill)?;
        self.data_len = total;
        Ok(())
    }

    /// Frames (samples per channel) written so far.
    pub fn frames(&self) -> u64 {
        self.data_len / u64::from(self.block_align)
    }

    /// Rewrites the header with the final sizes, flushes, and returns the sink.
    ///
    /// Adds the pad byte if the data length is odd. The sink is left
    /// positioned at the end of the file.
    pub fn finish(mut self) -> io::Result<W> {
        if self.data_len % 2 == 1 {
            self.out.write_all(&[0])?;
        }
        let end = self.data_offset + self.data_len + self.data_len % 2;
        // Both fit in u32: `reserve` bounds data_len by MAX_DATA_LEN.
        let data_len = u32::try_from(self.data_len).unwrap_or(u32::MAX);
        let frames = u32::try_from(self.frames()).unwrap_or(u32::MAX);
        let (bytes, len) = header(self.format, self.channels, data_len, frames);
        self.out
            .seek(SeekFrom::Start(self.data_offset - len as u64))?;
        self.out.write_all(header_bytes(&bytes, len)?)?;
        self.out.seek(SeekFrom::Start(end))?;
        self.out.flush()?;
        Ok(self.out)
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

impl WavInfo {
    /// Bytes per frame (all channels of one sample instant).
    pub fn block_align(&self) -> u64 {
        let bytes = match self.format {
            SampleFormat::Pcm16 => 2,
            SampleFormat::G711(_) => 1,
        };
        bytes * u64::from(self.channels)
    }

    /// Whole frames in the data chunk according to the header.
    pub fn frames(&self) -> u64 {
        self.data_len / self.block_align()
    }
}

/// Most chunks [`read_info`] walks before giving up on finding `data`.
const MAX_CHUNKS: usize = 64;

/// The little-endian `u16` at `at`; 0 past the end (callers read fixed-size
/// buffers at fixed offsets inside them).
fn read_u16(bytes: &[u8], at: usize) -> u16 {
    bytes
        .get(at..)
        .and_then(<[u8]>::first_chunk)
        .map_or(0, |b| u16::from_le_bytes(*b))
}

/// The little-endian `u32` at `at`; 0 past the end (see [`read_u16`]).
fn read_u32(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..)
        .and_then(<[u8]>::first_chunk)
        .map_or(0, |b| u32::from_le_bytes(*b))
}

fn parse<R: Read + Seek>(input: &mut R) -> io::Result<(WavInfo, Layout)> {
    let start = input.stream_position()?;
    let mut riff = [0u8; 12];
    input.read_exact(&mut riff)?;
    if &riff[0..4] != b"RIFF" || &riff[8..12] != b"WAVE" {
        return Err(invalid_data("not a RIFF/WAVE file"));
    }
    let mut fmt: Option<(SampleFormat, u16, u32)> = None;
    let mut fact_count_offset = None;
    let mut pos = start + 12;
    for _ in 0..MAX_CHUNKS {
        let mut chunk = [0u8; 8];
        input.read_exact(&mut chunk)?;
        let size = u64::from(read_u32(&chunk, 4));
        let body = pos + 8;
        match &chunk[0..4] {
            b"fmt " => {
                if size < 16 {
                    return Err(invalid_data("fmt chunk too short"));
                }
                let mut f = [0u8; 16];
                input.read_exact(&mut f)?;
                let tag = read_u16(&f, 0);
                let channels = read_u16(&f, 2);
                let rate = read_u32(&f, 4);
                let byte_rate = read_u32(&f, 8);
                let block_align = read_u16(&f, 12);
                let bits = read_u16(&f, 14);
                let format = match (tag, bits) {
                    (TAG_PCM, 16) => SampleFormat::Pcm16,
                    (TAG_ALAW, 8) => SampleFormat::G711(Law::Alaw),
                    (TAG_ULAW, 8) => SampleFormat::G711(Law::Ulaw),
                    _ => {
                        return Err(invalid_data(
                            "unsupported WAV format (want PCM-16 or G.711)",
                        ))
                    }
                };
                if channels == 0 {
                    return Err(invalid_data("WAV with zero channels"));
                }
                let expected_align = u32::from(channels) * u32::from(bits / 8);
                if u32::from(block_align) != expected_align
                    || u64::from(byte_rate) != u64::from(rate) * u64::from(block_align)
                {
                    return Err(invalid_data("inconsistent WAV fmt chunk"));
                }
                fmt = Some((format, channels, rate));
            }
            b"fact" if size >= 4 => fact_count_offset = Some(body),
            b"data" => {
                let (format, channels, sample_rate) =
                    fmt.ok_or_else(|| invalid_data("data chunk before fmt chunk"))?;
                let info = WavInfo {
                    format,
                    channels,
                    sample_rate,
                    data_offset: body,
                    data_len: size,
                };
                let layout = Layout {
                    fact_count_offset,
                    data_offset: body,
                };
                return Ok((info, layout));
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        pos = body + size + (size & 1);
        input.seek(SeekFrom::Start(pos))?;
    }
    Err(invalid_data("no data chunk found"))
}

/// Reads and checks a WAV header (RIFF/WAVE, fmt, optional fact, data).
///
/// Reads from the current position (the start of the file). Accepts only
/// PCM-16 and 8-bit G.711 with a consistent fmt chunk; skips unknown chunks
/// before `data`. Afterwards the reader is positioned at the data payload.
/// The sizes are not checked against the file length (see [`repair`]).
pub fn read_info<R: Read + Seek>(input: &mut R) -> io::Result<WavInfo> {
    parse(input).map(|(info, _)| info)
}

/// What [`repair`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repaired {
    /// The header as it is after the repair.
    pub info: WavInfo,
    /// Whole frames now in the file.
    pub frames: u64,
    /// `data_len` the header claimed before the repair.
    pub previous_data_len: u64,
    /// Bytes of a trailing partial frame removed.
    pub truncated_bytes: u64,
    /// Whether anything was rewritten.
    pub changed: bool,
}

/// Fixes the header of a WAV whose writer died before
/// [`finish`](WavWriter::finish): the sizes (RIFF, `fact`, `data`) are set to
/// the whole frames actually present after the data offset, and a trailing
/// partial frame is cut off (a pad byte is added if the data length is odd).
///
/// Assumes, as [`WavWriter`] writes, that `data` is the last chunk. A file
/// whose header itself is incomplete or invalid is an error (nothing is
/// changed). Repairing a finished file changes nothing.
pub fn repair(file: &mut File) -> io::Result<Repaired> {
    file.seek(SeekFrom::Start(0))?;
    let (info, layout) = parse(file)?;
    let file_len = file.seek(SeekFrom::End(0))?;
    let available = file_len.saturating_sub(layout.data_offset);
    let align = info.block_align();
    let frames = (available / align).min(MAX_DATA_LEN / align);
    let data_len = frames * align;
    let pad = data_len & 1;
    let new_len = layout.data_offset + data_len + pad;
    let riff_size = new_len - 8;
    let truncated_bytes = available.saturating_sub(data_len + pad);

    let mut changed = false;
    if new_len != file_len {
        file.set_len(new_len)?; // a pad byte, if added, reads as zero
        changed = true;
    }
    let mut patch = |offset: u64, value: u64| -> io::Result<()> {
        let value = u32::try_from(value).unwrap_or(u32::MAX);
        let mut current = [0u8; 4];
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(&mut current)?;
        if u32::from_le_bytes(current) != value {
            file.seek(SeekFrom::Start(offset))?;
            file.write_all(&value.to_le_bytes())?;
            changed = true;
        }
        Ok(())
    };
    patch(4, riff_size)?;
    if let Some(offset) = layout.fact_count_offset {
        patch(offset, frames)?;
    }
    patch(layout.data_offset - 4, data_len)?;
    if changed {
        file.sync_data()?;
    }
    Ok(Repaired {
        info: WavInfo { data_len, ..info },
        frames,
        previous_data_len: info.data_len,
        truncated_bytes,
        changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufWriter, Cursor};

    fn ulaw() -> SampleFormat {
        SampleFormat::G711(Law::Ulaw)
    }

    #[test]
    fn bytes_produced_in_place_are_written_like_copied_ones() {
        let frames: Vec<u8> = (0..4000u32).map(|k| (k * 13) as u8).collect();
        let mut copied = WavWriter::new(Cursor::new(Vec::new()), ulaw(), 2).unwrap();
        copied.write_g711(&frames).unwrap();
        let mut lent = WavWriter::new(Cursor::new(Vec::new()), ulaw(), 2).unwrap();
        lent.write_with(frames.len(), &mut |room| {
            room.copy_from_slice(&frames);
            Ok(())
        })
        .unwrap();
        // Refused: a partial frame, and a producer that fails; neither
        // counts towards the data length.
        assert!(lent.write_with(3, &mut |_| Ok(())).is_err());
        assert!(lent
            .write_with(2, &mut |_| Err(io::Error::other("no samples")))
            .is_err());
        assert_eq!(lent.frames(), 2000);
        assert_eq!(
            lent.finish().unwrap().into_inner(),
            copied.finish().unwrap().into_inner()
        );
    }

    #[test]
    fn g711_header_bytes_are_exact() {
        let mut w = WavWriter::new(Cursor::new(Vec::new()), ulaw(), 2).unwrap();
        w.write_g711(&[1, 2, 3, 4, 5, 6]).unwrap();
        assert_eq!(w.frames(), 3);
        let bytes = w.finish().unwrap().into_inner();
        #[rustfmt::skip]
        let expected: [u8; 58] = [
            b'R', b'I', b'F', b'F', 56, 0, 0, 0, b'W', b'A', b'V', b'E',
            b'f', b'm', b't', b' ', 18, 0, 0, 0,
            7, 0,               // u-law
            2, 0,               // channels
            0x40, 0x1F, 0, 0,   // 8000 Hz
            0x80, 0x3E, 0, 0,   // 16000 bytes/s
            2, 0,               // block align
            8, 0,               // bits
            0, 0,               // cbSize
            b'f', b'a', b'c', b't', 4, 0, 0, 0, 3, 0, 0, 0,
            b'd', b'a', b't', b'a', 6, 0, 0, 0,
        ];
        assert_eq!(&bytes[..58], &expected);
        assert_eq!(&bytes[58..], &[1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn pcm16_header_bytes_are_exact() {
        let mut w = WavWriter::new(Cursor::new(Vec::new()), SampleFormat::Pcm16, 2).unwrap();
        w.write_pcm16(&[1, -1, 0x1234, -32768]).unwrap();
        let bytes = w.finish().unwrap().into_inner();
        #[rustfmt::skip]
        let expected: [u8; 44] = [
            b'R', b'I', b'F', b'F', 44, 0, 0, 0, b'W', b'A', b'V', b'E',
            b'f', b'm', b't', b' ', 16, 0, 0, 0,
            1, 0, 2, 0, 0x40, 0x1F, 0, 0, 0x00, 0x7D, 0, 0, 4, 0, 16, 0,
            b'd', b'a', b't', b'a', 8, 0, 0, 0,
        ];
        assert_eq!(&bytes[..44], &expected);
        assert_eq!(&bytes[44..], &[1, 0, 0xFF, 0xFF, 0x34, 0x12, 0x00, 0x80]);
    }

    #[test]
    fn placeholder_header_has_zero_sizes() {
        let w = WavWriter::new(Cursor::new(Vec::new()), SampleFormat::G711(Law::Alaw), 2).unwrap();
        let bytes = w.out.get_ref().clone();
        assert_eq!(bytes.len(), 58);
        assert_eq!(read_u32(&bytes, 4), 50);
        assert_eq!(read_u32(&bytes, 46), 0); // fact
        assert_eq!(read_u32(&bytes, 54), 0); // data
    }

    #[test]
    fn round_trip_through_reader() {
        for (format, channels) in [
            (ulaw(), 2),
            (SampleFormat::G711(Law::Alaw), 1),
            (SampleFormat::Pcm16, 2),
            (SampleFormat::Pcm16, 1),
        ] {
            let mut w = WavWriter::new(Cursor::new(Vec::new()), format, channels).unwrap();
            let frames = 1001u64;
            let count = frames as usize * usize::from(channels);
            match format {
                SampleFormat::Pcm16 => {
                    let samples: Vec<i16> =
                        (0..count).map(|i| (i as i16).wrapping_mul(37)).collect();
                    w.write_pcm16(&samples).unwrap();
                }
                SampleFormat::G711(_) => {
                    let bytes: Vec<u8> = (0..count).map(|i| i as u8).collect();
                    w.write_g711(&bytes).unwrap();
                }
            }
            assert_eq!(w.frames(), frames);
            let mut cur = w.finish().unwrap();
            let file_len = cur.get_ref().len() as u64;
            cur.set_position(0);
            let info = read_info(&mut cur).unwrap();
            assert_eq!(info.format, format);
            assert_eq!(info.channels, channels);
            assert_eq!(info.sample_rate, 8000);
            assert_eq!(info.frames(), frames);
            assert_eq!(cur.position(), info.data_offset);
            assert_eq!(
                info.data_offset + info.data_len + (info.data_len & 1),
                file_len
            );
            assert_eq!(read_u32(cur.get_ref(), 4) as u64, file_len - 8);
        }
    }

    #[test]
    fn odd_data_length_gets_a_pad_byte() {
        let mut w = WavWriter::new(Cursor::new(Vec::new()), ulaw(), 1).unwrap();
        w.write_g711(&[9, 9, 9]).unwrap();
        let bytes = w.finish().unwrap().into_inner();
        assert_eq!(bytes.len(), 58 + 4);
        assert_eq!(read_u32(&bytes, 4), 58 + 4 - 8);
        assert_eq!(read_u32(&bytes, 46), 3); // fact: frames
        assert_eq!(read_u32(&bytes, 54), 3); // data: without the pad
        assert_eq!(bytes[61], 0);
        let info = read_info(&mut Cursor::new(&bytes)).unwrap();
        assert_eq!(info.data_len, 3);
    }

    #[test]
    fn wrong_format_and_partial_frames_are_rejected() {
        let mut w = WavWriter::new(Cursor::new(Vec::new()), ulaw(), 2).unwrap();
        assert!(w.write_pcm16(&[0, 0]).is_err());
        assert!(w.write_g711(&[0]).is_err());
        assert_eq!(w.frames(), 0);
        let mut p = WavWriter::new(Cursor::new(Vec::new()), SampleFormat::Pcm16, 2).unwrap();
        assert!(p.write_g711(&[0, 0]).is_err());
        assert!(p.write_pcm16(&[0]).is_err());
        assert!(WavWriter::new(Cursor::new(Vec::new()), ulaw(), 0).is_err());
    }

    #[test]
    fn reader_rejects_garbage_and_skips_unknown_chunks() {
        for bad in [
            &b""[..],
            b"RIFF\0\0\0\0WAVX",
            b"RIFF\0\0\0\0WAVEdata\0\0\0\0",
        ] {
            assert!(read_info(&mut Cursor::new(bad)).is_err());
        }
        // A LIST chunk (odd size, padded) between fmt and data.
        let mut w = WavWriter::new(Cursor::new(Vec::new()), SampleFormat::Pcm16, 1).unwrap();
        w.write_pcm16(&[7]).unwrap();
        let bytes = w.finish().unwrap().into_inner();
        let mut with_list = bytes[..36].to_vec();
        with_list.extend_from_slice(b"LIST\x03\0\0\0abc\0");
        with_list.extend_from_slice(&bytes[36..]);
        let info = read_info(&mut Cursor::new(&with_list)).unwrap();
        assert_eq!(info.data_offset, 44 + 12);
        assert_eq!(info.data_len, 2);
        // Inconsistent block align.
        let mut broken = bytes.clone();
        broken[32] = 3;
        assert!(read_info(&mut Cursor::new(&broken)).is_err());
    }

    #[test]
    fn repair_fixes_a_cut_file() {
        let mut tmp = tempfile::tempfile().unwrap();
        {
            let mut w =
                WavWriter::new(BufWriter::new(tmp.try_clone().unwrap()), ulaw(), 2).unwrap();
            w.write_g711(&[0x55; 2 * 800]).unwrap();
            // The writer dies here: flush what was buffered, never finish.
            w.out.flush().unwrap();
        }
        // Plus half a frame that reached the disk.
        tmp.seek(SeekFrom::End(0)).unwrap();
        tmp.write_all(&[0x55]).unwrap();
        tmp.seek(SeekFrom::Start(0)).unwrap();
        assert_eq!(read_info(&mut tmp).unwrap().data_len, 0);

        let r = repair(&mut tmp).unwrap();
        assert!(r.changed);
        assert_eq!(r.frames, 800);
        assert_eq!(r.truncated_bytes, 1);
        assert_eq!(r.previous_data_len, 0);
        assert_eq!(tmp.metadata().unwrap().len(), 58 + 1600);

        tmp.seek(SeekFrom::Start(0)).unwrap();
        let info = read_info(&mut tmp).unwrap();
        assert_eq!(info, r.info);
        assert_eq!(info.data_len, 1600);
        let mut all = Vec::new();
        tmp.seek(SeekFrom::Start(0)).unwrap();
        tmp.read_to_end(&mut all).unwrap();
        assert_eq!(read_u32(&all, 4), 58 + 1600 - 8);
        assert_eq!(read_u32(&all, 46), 800);

        // A second repair has nothing to do.
        let again = repair(&mut tmp).unwrap();
        assert!(!again.changed);
        assert_eq!(again.frames, 800);
    }

    #[test]
    fn repair_of_odd_mono_file_adds_pad_and_rejects_broken_header() {
        let mut tmp = tempfile::tempfile().unwrap();
        {
            let mut w = WavWriter::new(tmp.try_clone().unwrap(), ulaw(), 1).unwrap();
            w.write_g711(&[1, 2, 3]).unwrap();
        }
        let r = repair(&mut tmp).unwrap();
        assert_eq!(r.frames, 3);
        assert_eq!(tmp.metadata().unwrap().len(), 58 + 4);

        let mut short = tempfile::tempfile().unwrap();
        short.write_all(b"RIFF\0\0\0\0WAVEfmt ").unwrap();
        assert!(repair(&mut short).is_err());
        assert_eq!(short.metadata().unwrap().len(), 16);
    }
}
