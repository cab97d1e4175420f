//! Reading pcap (both byte orders, micro- and nanosecond) and pcapng files.

use super::{Frame, LinkType};
use std::path::Path;

/// What went wrong reading a capture file. Frames read before the error are
/// valid; the error says where reading stopped.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not a pcap or pcapng file.
    #[error("{path} is not a pcap or pcapng file")]
    NotACapture {
        /// The file.
        path: String,
    },
    /// A link type taprec does not decode.
    #[error("{path}: unsupported link type {linktype} (supported: Ethernet, Linux SLL/SLL2, raw IP, BSD loopback)")]
    UnsupportedLinkType {
        /// The file.
        path: String,
        /// The LINKTYPE_ value from the file.
        linktype: i32,
    },
    /// The file is damaged or cut short at `offset`.
    #[error("{path}: damaged or truncated at byte {offset} after {frames} frames: {detail}")]
    Damaged {
        /// The file.
        path: String,
        /// Byte offset where reading stopped.
        offset: u64,
        /// Frames read successfully before that point.
        frames: u64,
        /// What the parser said.
        detail: String,
    },
}

/// Reads frames from a pcap or pcapng file, one at a time, without copying them.
pub struct FileReader {
    _private: (),
}

impl FileReader {
    /// Opens a capture file; the format is detected from its magic number.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CaptureError> {
        let _ = path;
        todo!("capture::file::FileReader::open")
    }

    /// The next frame, `Ok(None)` at the end of the file. A frame borrows the
    /// reader's buffer until the next call.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        let _ = LinkType::Ethernet;
        todo!("capture::file::FileReader::next_frame")
    }

    /// Frames returned so far.
    pub fn frames_read(&self) -> u64 {
        todo!()
    }
}
