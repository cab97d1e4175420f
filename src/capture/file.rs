//! Reading pcap (both byte orders, micro- and nanosecond) and pcapng files.
//!
//! Parsing is done by `pcap-parser`'s streaming reader over a bounded
//! buffer; this module adds link-type mapping, per-interface timestamp
//! resolution and offset (pcapng), and error reporting that says where a
//! damaged file stopped.
//!
//! Invariants:
//! - Memory is bounded: the read buffer starts at 64 KiB and grows only up
//!   to [`MAX_BLOCK_BYTES`] for a single oversized block; a block claiming to
//!   be larger is reported as [`CaptureError::Damaged`].
//! - Reading always terminates: every refill either reads new bytes or marks
//!   the file as exhausted.
//! - After an error the reader is finished: further calls return `Ok(None)`.

use super::{Frame, LinkType};
use crate::Timestamp;
use pcap_parser::pcapng::Block;
use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{OptionCode, PcapBlockOwned, PcapError};
use std::path::Path;

/// Initial size of the read buffer.
const INITIAL_BUFFER_BYTES: usize = 64 << 10;

/// Largest single pcap record or pcapng block the reader accepts. Real
/// snapshot lengths are at most 256 KiB; anything claiming more than this is
/// treated as damage rather than allocated.
pub const MAX_BLOCK_BYTES: usize = 16 << 20;

/// Interfaces one pcapng section may describe before the file is considered
/// damaged (bounds memory on hostile input).
const MAX_INTERFACES: usize = 1 << 16;

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

/// One pcapng interface (from an interface description block).
#[derive(Debug, Clone, Copy)]
struct Interface {
    /// The decodable link type, or the raw LINKTYPE_ value when unsupported.
    link: Result<LinkType, i32>,
    /// Timestamp units per second (`if_tsresol`), 0 when the option is invalid.
    units_per_sec: u64,
    /// Seconds added to every timestamp (`if_tsoffset`).
    offset_secs: i64,
}

/// The container format and its per-file state.
enum Format {
    /// Classic pcap: one link type and resolution for the whole file.
    Legacy { link: LinkType, nanos: bool },
    /// pcapng: interfaces of the current section.
    Ng {
        big_endian: bool,
        interfaces: Vec<Interface>,
    },
}

/// What one step of the block loop decided.
enum Step {
    /// A frame: bytes `start..start + caplen` of the reader's buffer.
    Frame {
        block_len: usize,
        start: usize,
        caplen: usize,
        ts: Timestamp,
        link: LinkType,
        original_len: u32,
    },
    /// A block with nothing to return (headers, statistics, ...).
    Skip(usize),
    /// A packet on an interface whose link type taprec does not decode.
    SkipUnsupported(usize, i32),
    /// More bytes are needed: refill the buffer.
    Refill,
    /// The block does not fit into the buffer: grow it.
    Grow,
    /// Clean end of file.
    End,
    /// Reading must stop.
    Fail(Failure),
}

/// A failure found while the parser still borrows the buffer; turned into a
/// [`CaptureError`] afterwards.
enum Failure {
    Damaged(String),
    Unsupported(i32),
    Read,
}

/// Reads frames from a pcap or pcapng file, one at a time, without copying them.
pub struct FileReader {
    path: String,
    reader: Box<dyn PcapReaderIterator + Send>,
    format: Format,
    /// Length of the block whose data the last frame borrowed; consumed at
    /// the start of the next call (the frame borrows the buffer until then).
    pending: usize,
    frames: u64,
    skipped: u64,
    first_unsupported: Option<i32>,
    /// Timestamp of the last frame, used for pcapng simple packet blocks,
    /// which carry none.
    last_ts: Timestamp,
    /// Current size of the read buffer.
    capacity: usize,
    max_block: usize,
    finished: bool,
}

impl FileReader {
    /// Opens a capture file; the format is detected from its magic number.
    ///
    /// A classic pcap file with an unsupported link type fails here with
    /// [`CaptureError::UnsupportedLinkType`]. In pcapng, where every interface
    /// has its own link type, packets on unsupported interfaces are skipped
    /// and counted ([`FileReader::frames_skipped`]); the error is returned at
    /// the end of the file only when no frame at all could be returned.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CaptureError> {
        Self::open_with_max_block(path.as_ref(), MAX_BLOCK_BYTES)
    }

    fn open_with_max_block(path: &Path, max_block: usize) -> Result<Self, CaptureError> {
        let shown = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| CaptureError::Io {
            path: shown.clone(),
            source,
        })?;
        let reader = match pcap_parser::create_reader(INITIAL_BUFFER_BYTES, file) {
            Ok(reader) => reader,
            Err(PcapError::ReadError) => {
                return Err(CaptureError::Io {
                    path: shown,
                    source: std::io::Error::other("read failed"),
                })
            }
            Err(_) => return Err(CaptureError::NotACapture { path: shown }),
        };
        let mut this = FileReader {
            path: shown,
            reader,
            format: Format::Ng {
                big_endian: false,
                interfaces: Vec::new(),
            },
            pending: 0,
            frames: 0,
            skipped: 0,
            first_unsupported: None,
            last_ts: Timestamp::default(),
            capacity: INITIAL_BUFFER_BYTES,
            max_block: max_block.max(INITIAL_BUFFER_BYTES),
            finished: false,
        };
        // A classic pcap file starts with its file header as a pseudo block:
        // read it now so an unsupported link type fails `open`.
        let header = match this.reader.next() {
            Ok((len, PcapBlockOwned::LegacyHeader(header))) => {
                Some((len, header.network.0, header.is_nanosecond_precision()))
            }
            _ => None,
        };
        if let Some((len, linktype, nanos)) = header {
            let Some(link) = LinkType::from_linktype(linktype) else {
                return Err(CaptureError::UnsupportedLinkType {
                    path: this.path,
                    linktype,
                });
            };
            this.reader.consume(len);
            this.format = Format::Legacy { link, nanos };
        }
        Ok(this)
    }

    /// The next frame, `Ok(None)` at the end of the file. A frame borrows the
    /// reader's buffer until the next call.
    ///
    /// A damaged or truncated file yields every readable frame first, then
    /// [`CaptureError::Damaged`] saying where it stopped. After any error,
    /// further calls return `Ok(None)`.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        if self.finished {
            return Ok(None);
        }
        if self.pending > 0 {
            self.reader.consume(self.pending);
            self.pending = 0;
        }
        loop {
            let step = self.step();
            match step {
                Step::Frame {
                    block_len,
                    start,
                    caplen,
                    ts,
                    link,
                    original_len,
                } => {
                    let end = start.saturating_add(caplen);
                    if self.reader.data().get(start..end).is_none() {
                        return Err(self.fail(Failure::Damaged(
                            "packet data outside the parsed block".into(),
                        )));
                    }
                    self.pending = block_len;
                    self.frames += 1;
                    self.last_ts = ts;
                    let data = self.reader.data().get(start..end).unwrap_or_default();
                    return Ok(Some(Frame {
                        ts,
                        link,
                        data,
                        original_len,
                    }));
                }
                Step::Skip(len) => self.reader.consume(len),
                Step::SkipUnsupported(len, linktype) => {
                    self.reader.consume(len);
                    self.skipped += 1;
                    self.first_unsupported.get_or_insert(linktype);
                }
                Step::Refill => {
                    let before = self.reader.data().len();
                    if self.reader.refill().is_err() {
                        return Err(self.fail(Failure::Read));
                    }
                    // A refill that neither added bytes nor reached the end of
                    // the file means the buffer is full: grow it instead, so
                    // the loop always makes progress.
                    if self.reader.data().len() == before && !self.reader.reader_exhausted() {
                        self.grow()?;
                    }
                }
                Step::Grow => self.grow()?,
                Step::End => {
                    self.finished = true;
                    if self.frames == 0 {
                        if let Some(linktype) = self.first_unsupported {
                            return Err(self.fail(Failure::Unsupported(linktype)));
                        }
                    }
                    return Ok(None);
                }
                Step::Fail(failure) => return Err(self.fail(failure)),
            }
        }
    }

    /// Frames returned so far.
    pub fn frames_read(&self) -> u64 {
        self.frames
    }

    /// pcapng packets skipped because their interface has a link type taprec
    /// does not decode.
    pub fn frames_skipped(&self) -> u64 {
        self.skipped
    }

    /// Bytes of the file consumed so far (the offset of the next block, or of
    /// the block the last frame came from until the next call).
    pub fn offset(&self) -> u64 {
        self.reader.consumed() as u64
    }

    /// Doubles the read buffer (up to the block size limit) and refills it.
    fn grow(&mut self) -> Result<(), CaptureError> {
        let wanted = self.capacity.saturating_mul(2).min(self.max_block);
        if wanted <= self.capacity || !self.reader.grow(wanted) {
            let detail = format!("block larger than {} bytes", self.max_block);
            return Err(self.fail(Failure::Damaged(detail)));
        }
        self.capacity = wanted;
        if self.reader.refill().is_err() {
            return Err(self.fail(Failure::Read));
        }
        Ok(())
    }

    /// Ends reading and builds the error for `failure`.
    fn fail(&mut self, failure: Failure) -> CaptureError {
        self.finished = true;
        let path = self.path.clone();
        match failure {
            Failure::Damaged(detail) => CaptureError::Damaged {
                path,
                offset: self.reader.consumed() as u64,
                frames: self.frames,
                detail,
            },
            Failure::Unsupported(linktype) => CaptureError::UnsupportedLinkType { path, linktype },
            Failure::Read => CaptureError::Io {
                path,
                source: std::io::Error::other(format!(
                    "read failed at byte {} after {} frames",
                    self.reader.consumed(),
                    self.frames
                )),
            },
        }
    }

    /// Parses the next block and decides what to do with it. Only offsets
    /// into the buffer leave this function, so the caller can borrow the
    /// buffer afresh for the frame it returns.
    fn step(&mut self) -> Step {
        // `next` only parses; it never moves the buffer, so slices it returns
        // can be located relative to the buffer's start.
        let base = self.reader.data().as_ptr() as usize;
        let buffered = self.reader.data().len();
        match self.reader.next() {
            Ok((len, block)) => classify(block, len, base, &mut self.format, self.last_ts),
            Err(PcapError::Eof) => Step::End,
            Err(PcapError::Incomplete(_)) => Step::Refill,
            Err(PcapError::BufferTooSmall) => Step::Grow,
            Err(PcapError::UnexpectedEof) if buffered == 0 => Step::End,
            Err(PcapError::UnexpectedEof) => Step::Fail(Failure::Damaged(format!(
                "file ends inside a block ({buffered} bytes left over)"
            ))),
            Err(PcapError::ReadError) => Step::Fail(Failure::Read),
            Err(PcapError::HeaderNotRecognized) => {
                Step::Fail(Failure::Damaged("header not recognized".into()))
            }
            Err(PcapError::NomError(_, kind)) | Err(PcapError::OwnedNomError(_, kind)) => {
                Step::Fail(Failure::Damaged(format!("invalid block ({kind:?})")))
            }
        }
    }
}

/// Decides what one parsed block means. `base` is the address of the start
/// of the reader's buffer.
fn classify(
    block: PcapBlockOwned<'_>,
    len: usize,
    base: usize,
    format: &mut Format,
    last_ts: Timestamp,
) -> Step {
    let offset_of = |data: &[u8]| (data.as_ptr() as usize).checked_sub(base);
    match (block, format) {
        (PcapBlockOwned::LegacyHeader(_), _) => Step::Skip(len),
        (PcapBlockOwned::Legacy(packet), Format::Legacy { link, nanos }) => {
            let Some(start) = offset_of(packet.data) else {
                return Step::Fail(Failure::Damaged("packet outside buffer".into()));
            };
            let frac = i64::from(packet.ts_usec);
            let frac_nanos = if *nanos { frac } else { frac * 1_000 };
            let ts = Timestamp(
                i64::from(packet.ts_sec)
                    .saturating_mul(1_000_000_000)
                    .saturating_add(frac_nanos),
            );
            Step::Frame {
                block_len: len,
                start,
                caplen: packet.data.len(),
                ts,
                link: *link,
                original_len: packet.origlen,
            }
        }
        (
            PcapBlockOwned::NG(block),
            Format::Ng {
                big_endian,
                interfaces,
            },
        ) => match block {
            Block::SectionHeader(shb) => {
                // A new section starts with no interfaces and may change byte order.
                *big_endian = shb.big_endian();
                interfaces.clear();
                Step::Skip(len)
            }
            Block::InterfaceDescription(idb) => {
                if interfaces.len() >= MAX_INTERFACES {
                    return Step::Fail(Failure::Damaged(format!(
                        "more than {MAX_INTERFACES} interfaces in one section"
                    )));
                }
                interfaces.push(interface(&idb, *big_endian));
                Step::Skip(len)
            }
            Block::EnhancedPacket(epb) => {
                let Some(iface) = interfaces.get(epb.if_id as usize).copied() else {
                    return Step::Fail(Failure::Damaged(format!(
                        "packet on interface {} but the section describes {}",
                        epb.if_id,
                        interfaces.len()
                    )));
                };
                let link = match iface.link {
                    Ok(link) => link,
                    Err(linktype) => return Step::SkipUnsupported(len, linktype),
                };
                let data = epb.packet_data();
                let Some(start) = offset_of(data) else {
                    return Step::Fail(Failure::Damaged("packet outside buffer".into()));
                };
                let raw = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                Step::Frame {
                    block_len: len,
                    start,
                    caplen: data.len(),
                    ts: pcapng_timestamp(raw, iface.units_per_sec, iface.offset_secs),
                    link,
                    original_len: epb.origlen,
                }
            }
            Block::SimplePacket(spb) => {
                // A simple packet block belongs to interface 0 and has no
                // timestamp: it gets the previous frame's time.
                let Some(iface) = interfaces.first().copied() else {
                    return Step::Fail(Failure::Damaged(
                        "simple packet block before any interface description".into(),
                    ));
                };
                let link = match iface.link {
                    Ok(link) => link,
                    Err(linktype) => return Step::SkipUnsupported(len, linktype),
                };
                let data = spb.packet_data();
                let Some(start) = offset_of(data) else {
                    return Step::Fail(Failure::Damaged("packet outside buffer".into()));
                };
                Step::Frame {
                    block_len: len,
                    start,
                    caplen: data.len(),
                    ts: last_ts,
                    link,
                    original_len: spb.origlen,
                }
            }
            _ => Step::Skip(len),
        },
        _ => Step::Fail(Failure::Damaged(
            "block does not match the file format".into(),
        )),
    }
}

/// Reads link type, `if_tsresol` and `if_tsoffset` from an interface
/// description block. Options are decoded here in the section's byte order
/// (the parser's own `if_tsoffset` always assumes little-endian).
fn interface(idb: &pcap_parser::InterfaceDescriptionBlock<'_>, big_endian: bool) -> Interface {
    let mut tsresol: u8 = 6;
    let mut offset_secs: i64 = 0;
    for option in &idb.options {
        let Ok(value) = option.as_bytes() else {
            continue;
        };
        if option.code == OptionCode::IfTsresol {
            if let Some(&v) = value.first() {
                tsresol = v;
            }
        } else if option.code == OptionCode::IfTsoffset {
            if let Some(bytes) = value.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                offset_secs = if big_endian {
                    i64::from_be_bytes(bytes)
                } else {
                    i64::from_le_bytes(bytes)
                };
            }
        }
    }
    let linktype = idb.linktype.0;
    Interface {
        link: LinkType::from_linktype(linktype).ok_or(linktype),
        units_per_sec: units_per_sec(tsresol),
        offset_secs,
    }
}

/// Timestamp units per second for an `if_tsresol` value: `10^v`, or `2^v`
/// when the top bit is set. 0 when the value cannot be represented.
fn units_per_sec(tsresol: u8) -> u64 {
    let exponent = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 == 0 {
        10u64.checked_pow(exponent).unwrap_or(0)
    } else {
        1u64.checked_shl(exponent).unwrap_or(0)
    }
}

/// Converts a raw pcapng timestamp to nanoseconds since the epoch, saturating.
fn pcapng_timestamp(raw: u64, units_per_sec: u64, offset_secs: i64) -> Timestamp {
    if units_per_sec == 0 {
        return Timestamp(offset_secs.saturating_mul(1_000_000_000));
    }
    let secs = raw / units_per_sec;
    let frac = raw % units_per_sec;
    let frac_nanos = (u128::from(frac) * 1_000_000_000 / u128::from(units_per_sec)) as i64;
    let secs = i64::try_from(secs)
        .unwrap_or(i64::MAX)
        .saturating_add(offset_secs);
    Timestamp(
        secs.saturating_mul(1_000_000_000)
            .saturating_add(frac_nanos),
    )
}
