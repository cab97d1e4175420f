//! Media: G.711 tables, the per-call two-channel timeline (placement by RTP
//! timestamp anchored to capture time, reordering, loss fill), and the WAV
//! writer.

#[cfg_attr(not(test), deny(clippy::indexing_slicing))]
pub mod g711;
#[cfg_attr(not(test), deny(clippy::indexing_slicing))]
pub mod timeline;
#[cfg_attr(not(test), deny(clippy::indexing_slicing))]
pub mod wav;

/// A G.711 variant, as carried in RTP (PT 0 = u-law, PT 8 = A-law).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// PCMU, G.711 u-law.
    Ulaw,
    /// PCMA, G.711 A-law.
    Alaw,
}

impl Law {
    /// The encoded byte for digital silence.
    pub const fn silence(self) -> u8 {
        match self {
            Law::Ulaw => 0xFF,
            Law::Alaw => 0xD5,
        }
    }

    /// The SDP encoding name.
    pub const fn name(self) -> &'static str {
        match self {
            Law::Ulaw => "PCMU",
            Law::Alaw => "PCMA",
        }
    }
}

/// How samples are stored in the WAV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleFormat {
    /// G.711 bytes, WAVE format tag 6 (A-law) or 7 (u-law).
    G711(Law),
    /// Linear 16-bit little-endian PCM, format tag 1.
    Pcm16,
}

/// Which channel of the stereo recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Left: audio sent by the local party.
    Left = 0,
    /// Right: audio sent by the remote party.
    Right = 1,
}

/// Samples per second of every recording.
pub const SAMPLE_RATE: u32 = 8000;
