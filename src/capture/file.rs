//! Reading pcap (both byte orders, micro- and nanosecond) and pcapng files.
//!
//! Parsing is done by `pcap-parser`'s streaming reader over a bounded
//! buffer; this module adds link-type mapping, per-interface timestamp
//! resolution and offset (pcapng), and error reporting that says where a
//! damaged file stopped.
//!
//! Invariants:
//! - Memory is bounded: the read buffer starts at 1 MiB and grows only up
//!   to [`MAX_BLOCK_BYTES`] for a single oversized block; a block claiming to
//!   be larger is reported as [`CaptureError::Damaged`].
//! - Reading always terminates: every refill either reads new bytes or marks
//!   the file as exhausted.
//! - Frames are consumed without moving the buffer's data
//!   (`consume_noshift`): only a refill moves the unread remainder (less than
//!   one block) to the front. `consume` would move the unread half of the
//!   buffer each time the read position passed its middle, copying about
//!   half of the file once more.
//! - After an error the reader is finished: further calls return `Ok(None)`.

use super::{Frame, LinkType};
use crate::Timestamp;
use pcap_parser::pcapng::Block;
use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{OptionCode, PcapBlockOwned, PcapError};
use std::io::Read;
use std::path::Path;

/// Initial size of the read buffer: 1 MiB reads keep the system calls per
/// frame negligible (about one per 5,000 G.711 RTP frames).
const INITIAL_BUFFER_BYTES: usize = 1 << 20;

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

    /// Reads a capture from any byte source (a buffer in memory, a pipe),
    /// exactly as [`FileReader::open`] reads a file; `name` is what errors
    /// call it.
    pub fn from_reader(
        name: impl Into<String>,
        source: impl Read + Send + 'static,
    ) -> Result<Self, CaptureError> {
        Self::from_reader_with_max_block(name.into(), source, MAX_BLOCK_BYTES)
    }

    fn open_with_max_block(path: &Path, max_block: usize) -> Result<Self, CaptureError> {
        let shown = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| CaptureError::Io {
            path: shown.clone(),
            source,
        })?;
        Self::from_reader_with_max_block(shown, file, max_block)
    }

    fn from_reader_with_max_block(
        shown: String,
        source: impl Read + Send + 'static,
        max_block: usize,
    ) -> Result<Self, CaptureError> {
        let reader = match pcap_parser::create_reader(INITIAL_BUFFER_BYTES, source) {
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
            this.reader.consume_noshift(len);
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
            self.reader.consume_noshift(self.pending);
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
                Step::Skip(len) => self.reader.consume_noshift(len),
                Step::SkipUnsupported(len, linktype) => {
                    self.reader.consume_noshift(len);
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
        if let Format::Ng { big_endian, .. } = self.format {
            if let Some(len) = short_block_len(self.reader.data(), big_endian) {
                // pcap-parser subtracts 12 from a block's length without
                // checking it first for some block types: refuse it here.
                return Step::Fail(Failure::Damaged(format!(
                    "pcapng block length {len} is shorter than a block header"
                )));
            }
        }
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

/// The length of the pcapng block at the start of `data` when it is shorter
/// than the 12 bytes every block has (a section header block is exempt: its
/// byte order is its own).
fn short_block_len(data: &[u8], big_endian: bool) -> Option<u32> {
    let head: [u8; 8] = data.get(..8)?.try_into().ok()?;
    let [t0, t1, t2, t3, l0, l1, l2, l3] = head;
    if [t0, t1, t2, t3] == [0x0A, 0x0D, 0x0D, 0x0A] {
        return None;
    }
    let len = if big_endian {
        u32::from_be_bytes([l0, l1, l2, l3])
    } else {
        u32::from_le_bytes([l0, l1, l2, l3])
    };
    (len < 12).then_some(len)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A tiny pcap/pcapng writer for fixtures.
    mod write {
        pub fn u16b(v: u16, big: bool) -> [u8; 2] {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        }
        pub fn u32b(v: u32, big: bool) -> [u8; 4] {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        }

        /// Classic pcap: `(seconds, fraction, data)` per packet.
        pub fn pcap(
            big: bool,
            nanos: bool,
            linktype: u32,
            packets: &[(u32, u32, &[u8])],
        ) -> Vec<u8> {
            let magic = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
            let mut out = u32b(magic, big).to_vec();
            out.extend_from_slice(&u16b(2, big));
            out.extend_from_slice(&u16b(4, big));
            out.extend_from_slice(&[0; 8]);
            out.extend_from_slice(&u32b(65535, big));
            out.extend_from_slice(&u32b(linktype, big));
            for (sec, frac, data) in packets {
                for v in [*sec, *frac, data.len() as u32, data.len() as u32 + 4] {
                    out.extend_from_slice(&u32b(v, big));
                }
                out.extend_from_slice(data);
            }
            out
        }

        fn block(kind: u32, body: &[u8], big: bool) -> Vec<u8> {
            let padded = body.len().div_ceil(4) * 4;
            let total = (12 + padded) as u32;
            let mut out = u32b(kind, big).to_vec();
            out.extend_from_slice(&u32b(total, big));
            out.extend_from_slice(body);
            out.resize(8 + padded, 0);
            out.extend_from_slice(&u32b(total, big));
            out
        }

        pub fn shb(big: bool) -> Vec<u8> {
            let mut body = u32b(0x1a2b_3c4d, big).to_vec();
            body.extend_from_slice(&u16b(1, big));
            body.extend_from_slice(&u16b(0, big));
            body.extend_from_slice(&[0xff; 8]);
            block(0x0a0d_0d0a, &body, big)
        }

        pub fn idb(
            big: bool,
            linktype: u16,
            tsresol: Option<u8>,
            tsoffset: Option<i64>,
        ) -> Vec<u8> {
            let mut body = u16b(linktype, big).to_vec();
            body.extend_from_slice(&[0, 0]);
            body.extend_from_slice(&u32b(65535, big));
            if let Some(r) = tsresol {
                body.extend_from_slice(&u16b(9, big));
                body.extend_from_slice(&u16b(1, big));
                body.extend_from_slice(&[r, 0, 0, 0]);
            }
            if let Some(o) = tsoffset {
                body.extend_from_slice(&u16b(14, big));
                body.extend_from_slice(&u16b(8, big));
                body.extend_from_slice(&if big {
                    o.to_be_bytes()
                } else {
                    o.to_le_bytes()
                });
            }
            if tsresol.is_some() || tsoffset.is_some() {
                body.extend_from_slice(&[0; 4]);
            }
            block(1, &body, big)
        }

        pub fn epb(big: bool, if_id: u32, ts: u64, data: &[u8]) -> Vec<u8> {
            let mut body = Vec::new();
            for v in [
                if_id,
                (ts >> 32) as u32,
                ts as u32,
                data.len() as u32,
                data.len() as u32,
            ] {
                body.extend_from_slice(&u32b(v, big));
            }
            body.extend_from_slice(data);
            body.resize(20 + data.len().div_ceil(4) * 4, 0);
            block(6, &body, big)
        }

        pub fn spb(big: bool, data: &[u8]) -> Vec<u8> {
            let mut body = u32b(data.len() as u32, big).to_vec();
            body.extend_from_slice(data);
            block(3, &body, big)
        }
    }

    type Read = (Timestamp, LinkType, Vec<u8>, u32);

    fn temp(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f.flush().unwrap();
        f
    }

    fn read_all(reader: &mut FileReader) -> (Vec<Read>, Option<CaptureError>) {
        let mut frames = Vec::new();
        loop {
            match reader.next_frame() {
                Ok(Some(f)) => frames.push((f.ts, f.link, f.data.to_vec(), f.original_len)),
                Ok(None) => return (frames, None),
                Err(e) => {
                    // fused after an error
                    assert!(matches!(reader.next_frame(), Ok(None)));
                    return (frames, Some(e));
                }
            }
        }
    }

    fn read_bytes(bytes: &[u8]) -> (Vec<Read>, Option<CaptureError>) {
        let f = temp(bytes);
        let mut reader = FileReader::open(f.path()).unwrap();
        read_all(&mut reader)
    }

    const P1: &[u8] = b"first packet";
    const P2: &[u8] = b"second, odd length";

    #[test]
    fn pcap_all_byte_orders_and_resolutions() {
        for big in [false, true] {
            for nanos in [false, true] {
                let frac = if nanos { 123_456_789 } else { 123_456 };
                let bytes = write::pcap(
                    big,
                    nanos,
                    1,
                    &[(1_700_000_000, frac, P1), (1_700_000_001, 0, P2)],
                );
                let (frames, err) = read_bytes(&bytes);
                assert!(err.is_none(), "{err:?}");
                let expect_ns = if nanos { 123_456_789 } else { 123_456_000 };
                assert_eq!(frames[0].0, Timestamp::from_parts(1_700_000_000, expect_ns));
                assert_eq!(frames[0].1, LinkType::Ethernet);
                assert_eq!(frames[0].2, P1);
                assert_eq!(frames[0].3, P1.len() as u32 + 4);
                assert_eq!(frames[1].2, P2);
                assert_eq!(frames.len(), 2);
            }
        }
    }

    #[test]
    fn pcap_link_types() {
        for (linktype, link) in [
            (0, LinkType::Null),
            (108, LinkType::Null),
            (12, LinkType::RawIp),
            (14, LinkType::RawIp),
            (101, LinkType::RawIp),
            (113, LinkType::LinuxSll),
            (276, LinkType::LinuxSll2),
            (228, LinkType::Ipv4),
            (229, LinkType::Ipv6),
        ] {
            let (frames, _) = read_bytes(&write::pcap(false, false, linktype, &[(0, 0, P1)]));
            assert_eq!(frames[0].1, link, "linktype {linktype}");
        }
        let f = temp(&write::pcap(false, false, 147, &[(0, 0, P1)]));
        let err = FileReader::open(f.path()).err().unwrap();
        assert!(matches!(
            err,
            CaptureError::UnsupportedLinkType { linktype: 147, .. }
        ));
        assert!(err.to_string().contains("unsupported link type 147"));
    }

    #[test]
    fn not_a_capture() {
        for bytes in [&b"hello, this is not a capture file at all....."[..], &[]] {
            let f = temp(bytes);
            assert!(matches!(
                FileReader::open(f.path()),
                Err(CaptureError::NotACapture { .. })
            ));
        }
        assert!(matches!(
            FileReader::open("/nonexistent/file.pcap"),
            Err(CaptureError::Io { .. })
        ));
    }

    #[test]
    fn pcap_cut_inside_the_last_packet() {
        let bytes = write::pcap(false, false, 1, &[(1, 0, P1), (2, 0, P2)]);
        let last_start = 24 + 16 + P1.len();
        for cut in [bytes.len() - 1, last_start + 10, last_start + 16] {
            let (frames, err) = read_bytes(&bytes[..cut]);
            assert_eq!(frames.len(), 1, "cut at {cut}");
            match err {
                Some(CaptureError::Damaged { offset, frames, .. }) => {
                    assert_eq!((offset, frames), (last_start as u64, 1));
                }
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
        // cut exactly at a record boundary is a clean end
        let (frames, err) = read_bytes(&bytes[..last_start]);
        assert_eq!((frames.len(), err.is_none()), (1, true));
    }

    #[test]
    fn huge_bogus_length_is_bounded() {
        let mut bytes = write::pcap(false, false, 1, &[(1, 0, P1)]);
        let bogus_at = bytes.len();
        bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&0xffff_fff0u32.to_le_bytes());
        bytes.extend_from_slice(&0xffff_fff0u32.to_le_bytes());
        bytes.extend_from_slice(&vec![0x55; 300_000]);
        let f = temp(&bytes);
        // a small limit forces the grow-then-give-up path
        let mut reader = FileReader::open_with_max_block(f.path(), 128 << 10).unwrap();
        let (frames, err) = read_all(&mut reader);
        assert_eq!(frames.len(), 1);
        match err {
            Some(CaptureError::Damaged {
                offset,
                frames,
                detail,
                ..
            }) => {
                assert_eq!((offset, frames), (bogus_at as u64, 1));
                assert!(detail.contains("larger than"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        // with the default limit the file simply ends inside the block
        let (frames, err) = read_bytes(&bytes);
        assert_eq!(frames.len(), 1);
        assert!(matches!(err, Some(CaptureError::Damaged { frames: 1, .. })));
    }

    #[test]
    fn many_packets_across_buffer_refills() {
        let payloads: Vec<Vec<u8>> = (0..5000u32)
            .map(|i| vec![i as u8; (i % 1500) as usize])
            .collect();
        let packets: Vec<(u32, u32, &[u8])> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| (i as u32, 0, p.as_slice()))
            .collect();
        let (frames, err) = read_bytes(&write::pcap(true, true, 101, &packets));
        assert!(err.is_none());
        assert_eq!(frames.len(), 5000);
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(f.2, payloads[i]);
            assert_eq!(f.0, Timestamp::from_parts(i as i64, 0));
        }
    }

    #[test]
    fn pcapng_sections_interfaces_resolution_and_offset() {
        for big in [false, true] {
            let mut bytes = write::shb(big);
            bytes.extend(write::idb(big, 1, None, None)); // microseconds
            bytes.extend(write::idb(big, 113, Some(9), Some(100))); // ns, +100 s
            bytes.extend(write::idb(big, 147, None, None)); // unsupported
            bytes.extend(write::epb(big, 0, 1_500_000_250_000, P1));
            bytes.extend(write::epb(big, 2, 0, b"skipped"));
            bytes.extend(write::epb(big, 1, 1_500_000_000_123_456_789, P2));
            bytes.extend(write::spb(big, P1));
            // second section, other byte order, binary resolution
            bytes.extend(write::shb(!big));
            bytes.extend(write::idb(!big, 229, Some(0x80 | 10), None));
            bytes.extend(write::epb(!big, 0, 3 * 1024 + 512, P2));
            let f = temp(&bytes);
            let mut reader = FileReader::open(f.path()).unwrap();
            let (frames, err) = read_all(&mut reader);
            assert!(err.is_none(), "{err:?}");
            assert_eq!(reader.frames_read(), 4);
            assert_eq!(reader.frames_skipped(), 1);
            let summary: Vec<(Timestamp, LinkType, &[u8])> =
                frames.iter().map(|f| (f.0, f.1, f.2.as_slice())).collect();
            assert_eq!(
                summary,
                vec![
                    (
                        Timestamp::from_parts(1_500_000, 250_000_000),
                        LinkType::Ethernet,
                        P1
                    ),
                    (
                        Timestamp::from_parts(1_500_000_100, 123_456_789),
                        LinkType::LinuxSll,
                        P2
                    ),
                    // simple packet block: interface 0, previous timestamp
                    (
                        Timestamp::from_parts(1_500_000_100, 123_456_789),
                        LinkType::Ethernet,
                        P1
                    ),
                    (Timestamp::from_parts(3, 500_000_000), LinkType::Ipv6, P2),
                ]
            );
        }
    }

    #[test]
    fn pcapng_only_unsupported_interfaces() {
        let mut bytes = write::shb(false);
        bytes.extend(write::idb(false, 147, None, None));
        bytes.extend(write::epb(false, 0, 0, P1));
        let (frames, err) = read_bytes(&bytes);
        assert!(frames.is_empty());
        assert!(matches!(
            err,
            Some(CaptureError::UnsupportedLinkType { linktype: 147, .. })
        ));
    }

    #[test]
    fn pcapng_damage() {
        let mut bytes = write::shb(false);
        bytes.extend(write::idb(false, 1, None, None));
        bytes.extend(write::epb(false, 0, 0, P1));
        let good = bytes.len();
        bytes.extend(write::epb(false, 0, 0, P2));
        let (frames, err) = read_bytes(&bytes[..bytes.len() - 3]);
        assert_eq!(frames.len(), 1);
        assert!(
            matches!(err, Some(CaptureError::Damaged { offset, frames: 1, .. }) if offset == good as u64),
            "{err:?}"
        );
        // packet on an interface that was never described
        let mut bad_if = write::shb(false);
        bad_if.extend(write::idb(false, 1, None, None));
        bad_if.extend(write::epb(false, 3, 0, P1));
        let (frames, err) = read_bytes(&bad_if);
        assert!(frames.is_empty());
        assert!(matches!(err, Some(CaptureError::Damaged { .. })));
        // garbage block length
        let mut garbage = write::shb(false);
        garbage.extend(write::idb(false, 1, None, None));
        garbage.extend_from_slice(&[6, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4]);
        garbage.extend_from_slice(&[0; 100]);
        let (frames, err) = read_bytes(&garbage);
        assert!(frames.is_empty());
        assert!(
            matches!(err, Some(CaptureError::Damaged { frames: 0, .. })),
            "{err:?}"
        );
    }

    #[test]
    fn pcapng_block_shorter_than_its_header_is_damage() {
        // Found by fuzzing: a process information block (type 0x80000001)
        // of length 4 made pcap-parser subtract 12 from 4.
        for big in [false, true] {
            let mut bytes = write::shb(big);
            bytes.extend(write::idb(big, 1, None, None));
            bytes.extend(write::epb(big, 0, 0, P1));
            let good = bytes.len();
            bytes.extend_from_slice(&write::u32b(0x8000_0001, big));
            bytes.extend_from_slice(&write::u32b(4, big));
            bytes.extend_from_slice(&[0; 40]);
            let mut reader = FileReader::from_reader("mem", std::io::Cursor::new(bytes)).unwrap();
            assert!(reader.next_frame().unwrap().is_some());
            let err = reader.next_frame().unwrap_err();
            assert!(
                matches!(err, CaptureError::Damaged { offset, frames: 1, .. } if offset == good as u64),
                "{err:?}"
            );
            assert!(err.to_string().contains("block length 4"), "{err}");
            assert!(reader.next_frame().unwrap().is_none());
        }
    }

    #[test]
    fn timestamp_helpers_never_overflow() {
        assert_eq!(units_per_sec(6), 1_000_000);
        assert_eq!(units_per_sec(0x80 | 20), 1 << 20);
        assert_eq!(units_per_sec(20), 0);
        assert_eq!(units_per_sec(0xff), 0);
        assert_eq!(pcapng_timestamp(u64::MAX, 1, i64::MAX), Timestamp(i64::MAX));
        assert_eq!(pcapng_timestamp(5, 0, 2), Timestamp(2_000_000_000));
        assert_eq!(pcapng_timestamp(1_500, 1_000, -1), Timestamp(500_000_000));
    }
}
