//! Cutting a recording into uploads the server accepts: no IO, only the plan
//! (which bytes of the spooled WAV each upload carries, the WAV header each
//! part gets, and each part's metadata).
//!
//! A recording that fits in `max_file_bytes` is uploaded as it is. A longer
//! one is cut at frame boundaries into `n` consecutive parts, each a valid
//! WAV of the same format (its own header, then a slice of the data), with
//! its own `startDateTime` (the recording's start plus the audio before it)
//! and `duration`, the same `pbxCallId`, and `part k of n` in front of the
//! notes.

use crate::call::metadata::{format_duration, Metadata};
use crate::media::wav::WavInfo;
use crate::media::{Law, SampleFormat};

/// One upload of a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartPlan {
    /// 1-based part number.
    pub index: u32,
    /// Number of parts of the recording.
    pub count: u32,
    /// Bytes sent before the slice of the file (a part's own WAV header;
    /// empty when the file is sent whole).
    pub header: Vec<u8>,
    /// Offset in the spooled file of the first byte sent.
    pub file_offset: u64,
    /// Bytes of the spooled file sent.
    pub file_len: u64,
    /// Bytes sent after the slice (a pad byte for odd data lengths).
    pub trailer: Vec<u8>,
    /// The `jsondata` object of this upload.
    pub metadata: Metadata,
    /// The `filename` of the attachment.
    pub file_name: String,
}

impl PartPlan {
    /// Total length of the attachment.
    pub fn content_length(&self) -> u64 {
        self.header.len() as u64 + self.file_len + self.trailer.len() as u64
    }
}

/// Why a recording cannot be uploaded at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The WAV header claims more data than the file has.
    #[error("WAV data chunk ({claimed} bytes) is longer than the file allows ({available})")]
    DataBeyondFile {
        /// Bytes the header claims.
        claimed: u64,
        /// Bytes present after the header.
        available: u64,
    },
    /// `startDateTime` is not a UTC ISO 8601 time, so part starts cannot be computed.
    #[error("startDateTime {0:?} cannot be parsed to compute the parts' start times")]
    BadStart(String),
    /// The limit leaves no room for audio.
    #[error("upload.max_file_bytes {0} is too small for a WAV part")]
    LimitTooSmall(u64),
}

/// Plans the uploads of recording `id` (its WAV header `info`, its file
/// length `file_len`, its metadata `meta`) for a server accepting files up
/// to `max_file_bytes`.
pub fn plan(
    id: &str,
    info: &WavInfo,
    file_len: u64,
    meta: &Metadata,
    max_file_bytes: u64,
) -> Result<Vec<PartPlan>, PlanError> {
    let available = file_len.saturating_sub(info.data_offset);
    if info.data_len > available {
        return Err(PlanError::DataBeyondFile {
            claimed: info.data_len,
            available,
        });
    }
    if file_len <= max_file_bytes {
        return Ok(vec![PartPlan {
            index: 1,
            count: 1,
            header: Vec::new(),
            file_offset: 0,
            file_len,
            trailer: Vec::new(),
            metadata: meta.clone(),
            file_name: format!("{id}.wav"),
        }]);
    }
    let align = info.block_align().max(1);
    let header_len = header(info.format, info.channels, info.sample_rate, 0, 0).len() as u64;
    // Room for the header and a pad byte.
    let frames_per_part = max_file_bytes.saturating_sub(header_len + 1) / align;
    if frames_per_part == 0 {
        return Err(PlanError::LimitTooSmall(max_file_bytes));
    }
    let total_frames = info.data_len / align;
    let count = total_frames.div_ceil(frames_per_part).max(1);
    let count_u32 = u32::try_from(count).map_err(|_| PlanError::LimitTooSmall(max_file_bytes))?;
    let start = parse_utc(&meta.start_date_time)
        .ok_or_else(|| PlanError::BadStart(meta.start_date_time.clone()))?;
    let rate = u64::from(info.sample_rate.max(1));
    let mut parts = Vec::with_capacity(count as usize);
    for k in 0..count {
        let first = k * frames_per_part;
        let frames = frames_per_part.min(total_frames - first);
        let data_len = frames * align;
        let offset_nanos = nanos(first, rate);
        let part_start = start + chrono::Duration::nanoseconds(offset_nanos);
        let index = u32::try_from(k + 1).unwrap_or(count_u32);
        let mut metadata = meta.clone();
        metadata.start_date_time = part_start.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
        metadata.duration = format_duration(nanos(frames, rate));
        metadata.notes = if meta.notes.is_empty() {
            format!("part {index} of {count}")
        } else {
            format!("part {index} of {count}; {}", meta.notes)
        };
        let frames_field = u32::try_from(frames).unwrap_or(u32::MAX);
        let data_field = u32::try_from(data_len).unwrap_or(u32::MAX);
        parts.push(PartPlan {
            index,
            count: count_u32,
            header: header(
                info.format,
                info.channels,
                info.sample_rate,
                data_field,
                frames_field,
            ),
            file_offset: info.data_offset + first * align,
            file_len: data_len,
            trailer: if data_len % 2 == 1 {
                vec![0]
            } else {
                Vec::new()
            },
            metadata,
            file_name: format!("{id}-part{index}of{count}.wav"),
        });
    }
    Ok(parts)
}

fn nanos(frames: u64, rate: u64) -> i64 {
    let n = u128::from(frames) * 1_000_000_000 / u128::from(rate);
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Parses the UTC times the recorder writes (`2018-09-25T13:00:00.000000Z`).
fn parse_utc(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// A WAV header as [`crate::media::wav::WavWriter`] writes it: 44 bytes for
/// PCM-16, 58 for G.711 (with `fact`), `data` last.
pub fn header(
    format: SampleFormat,
    channels: u16,
    rate: u32,
    data_len: u32,
    frames: u32,
) -> Vec<u8> {
    let (tag, bits): (u16, u16) = match format {
        SampleFormat::Pcm16 => (1, 16),
        SampleFormat::G711(Law::Alaw) => (6, 8),
        SampleFormat::G711(Law::Ulaw) => (7, 8),
    };
    let pcm = tag == 1;
    let block_align = channels.saturating_mul(bits / 8);
    let byte_rate = rate.saturating_mul(u32::from(block_align));
    let fmt_len: u32 = if pcm { 16 } else { 18 };
    let header_len: u32 = 12 + 8 + fmt_len + if pcm { 0 } else { 12 } + 8;
    let riff = (header_len - 8)
        .saturating_add(data_len)
        .saturating_add(data_len & 1);
    let mut out = Vec::with_capacity(header_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&riff.to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&fmt_len.to_le_bytes());
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&byte_rate.to_le_bytes());
    out.extend_from_slice(&block_align.to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    if !pcm {
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(b"fact");
        out.extend_from_slice(&4u32.to_le_bytes());
        out.extend_from_slice(&frames.to_le_bytes());
    }
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::metadata::{LocalParty, RemoteParty};
    use crate::media::wav::{read_info, WavWriter};
    use std::io::Cursor;

    fn meta() -> Metadata {
        Metadata {
            start_date_time: "2026-03-01T10:00:00.000000Z".into(),
            duration: "PT25S".into(),
            direction: 2,
            local_party: LocalParty {
                username: "mario".into(),
                phone_number: "1001".into(),
            },
            remote_party: RemoteParty {
                phone_number: "2002".into(),
            },
            pbx_call_id: "abc@host".into(),
            notes: "PCMU".into(),
            preserved: false,
        }
    }

    /// A stereo u-law WAV of `frames` frames whose bytes count up.
    fn wav(frames: usize) -> Vec<u8> {
        let mut w =
            WavWriter::new(Cursor::new(Vec::new()), SampleFormat::G711(Law::Ulaw), 2).unwrap();
        let data: Vec<u8> = (0..frames * 2).map(|i| (i % 251) as u8).collect();
        w.write_g711(&data).unwrap();
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn small_files_go_whole() {
        let bytes = wav(8000);
        let info = read_info(&mut Cursor::new(&bytes)).unwrap();
        let parts = plan("r1", &info, bytes.len() as u64, &meta(), 1 << 20).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].content_length(), bytes.len() as u64);
        assert!(parts[0].header.is_empty());
        assert_eq!(parts[0].metadata, meta());
        assert_eq!(parts[0].file_name, "r1.wav");
    }

    #[test]
    fn large_files_split_into_valid_consecutive_wavs() {
        // 25 s of stereo u-law = 400000 data bytes; parts of at most 160058
        // bytes hold 10 s each: 10 s, 10 s, 5 s.
        let bytes = wav(200_000);
        let info = read_info(&mut Cursor::new(&bytes)).unwrap();
        let parts = plan("r2", &info, bytes.len() as u64, &meta(), 160_059).unwrap();
        assert_eq!(parts.len(), 3);
        let mut joined = Vec::new();
        let starts: Vec<&str> = parts
            .iter()
            .map(|p| p.metadata.start_date_time.as_str())
            .collect();
        assert_eq!(
            starts,
            [
                "2026-03-01T10:00:00.000000Z",
                "2026-03-01T10:00:10.000000Z",
                "2026-03-01T10:00:20.000000Z"
            ]
        );
        let durations: Vec<&str> = parts.iter().map(|p| p.metadata.duration.as_str()).collect();
        assert_eq!(durations, ["PT10S", "PT10S", "PT5S"]);
        for (k, p) in parts.iter().enumerate() {
            assert!(p.content_length() <= 160_059);
            assert_eq!(p.metadata.pbx_call_id, "abc@host");
            assert_eq!(p.metadata.notes, format!("part {} of 3; PCMU", k + 1));
            let mut file = p.header.clone();
            let start = p.file_offset as usize;
            file.extend_from_slice(&bytes[start..start + p.file_len as usize]);
            file.extend_from_slice(&p.trailer);
            assert_eq!(file.len() as u64, p.content_length());
            let part_info = read_info(&mut Cursor::new(&file)).unwrap();
            assert_eq!(part_info.format, info.format);
            assert_eq!(
                part_info.data_offset + part_info.data_len,
                file.len() as u64
            );
            let riff = u32::from_le_bytes(file[4..8].try_into().unwrap()) as usize;
            assert_eq!(riff + 8, file.len());
            joined.extend_from_slice(&file[part_info.data_offset as usize..]);
        }
        assert_eq!(joined, bytes[info.data_offset as usize..]);
    }

    #[test]
    fn header_matches_the_writer() {
        for format in [SampleFormat::Pcm16, SampleFormat::G711(Law::Alaw)] {
            let w = WavWriter::new(Cursor::new(Vec::new()), format, 2).unwrap();
            let written = w.finish().unwrap().into_inner();
            assert_eq!(header(format, 2, 8000, 0, 0), written);
        }
    }

    #[test]
    fn inconsistent_files_are_refused() {
        let bytes = wav(100);
        let info = read_info(&mut Cursor::new(&bytes)).unwrap();
        let err = plan("r3", &info, 60, &meta(), 1 << 20).unwrap_err();
        assert!(matches!(err, PlanError::DataBeyondFile { .. }));
        let mut bad = meta();
        bad.start_date_time = "yesterday".into();
        let big = wav(100_000);
        let info = read_info(&mut Cursor::new(&big)).unwrap();
        assert!(matches!(
            plan("r4", &info, big.len() as u64, &bad, 70_000),
            Err(PlanError::BadStart(_))
        ));
        assert!(matches!(
            plan("r5", &info, big.len() as u64, &meta(), 50),
            Err(PlanError::LimitTooSmall(50))
        ));
    }
}
