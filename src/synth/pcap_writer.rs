//! A minimal classic pcap writer: microsecond timestamps, little-endian,
//! one link type per file.
//!
//! File layout (libpcap "classic" format): a 24-byte global header (magic
//! `0xa1b2c3d4`, version 2.4, zone 0, sigfigs 0, snaplen, link type), then per
//! packet a 16-byte record header (seconds, microseconds, captured length,
//! original length) followed by the captured bytes. Every integer is written
//! little-endian.

use std::io::{self, Write};

/// Link type of Ethernet frames (`LINKTYPE_ETHERNET`).
pub const LINKTYPE_ETHERNET: u32 = 1;

/// Snapshot length written in the global header; longer packets are refused.
pub const SNAPLEN: u32 = 65_535;

/// Writes packets into a classic pcap stream.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    packets: u64,
    bytes: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header for `linktype` and returns the writer.
    pub fn new(mut out: W, linktype: u32) -> io::Result<Self> {
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay zero.
        header[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        header[20..24].copy_from_slice(&linktype.to_le_bytes());
        out.write_all(&header)?;
        Ok(Self {
            out,
            packets: 0,
            bytes: 24,
        })
    }

    /// Appends one packet captured at `micros` microseconds since the Unix epoch.
    pub fn write_packet(&mut self, micros: u64, data: &[u8]) -> io::Result<()> {
        let len = u32::try_from(data.len())
            .ok()
            .filter(|&len| len <= SNAPLEN)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "packet over snaplen"))?;
        let seconds = u32::try_from(micros / 1_000_000)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "timestamp past 2106"))?;
        let mut record = [0u8; 16];
        record[0..4].copy_from_slice(&seconds.to_le_bytes());
        record[4..8].copy_from_slice(&((micros % 1_000_000) as u32).to_le_bytes());
        record[8..12].copy_from_slice(&len.to_le_bytes());
        record[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&record)?;
        self.out.write_all(data)?;
        self.packets += 1;
        self.bytes += 16 + u64::from(len);
        Ok(())
    }

    /// Packets written so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Bytes written so far, headers included.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_record_bytes() {
        let mut w = PcapWriter::new(Vec::new(), LINKTYPE_ETHERNET).unwrap();
        w.write_packet(1_767_225_600_123_456, &[0xAA, 0xBB, 0xCC])
            .unwrap();
        assert_eq!(w.packets(), 1);
        assert_eq!(w.bytes(), 24 + 16 + 3);
        let bytes = w.finish().unwrap();
        assert_eq!(
            &bytes[..24],
            &[
                0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0,
                0, 0
            ]
        );
        assert_eq!(&bytes[24..28], &1_767_225_600u32.to_le_bytes());
        assert_eq!(&bytes[28..32], &123_456u32.to_le_bytes());
        assert_eq!(&bytes[32..36], &3u32.to_le_bytes());
        assert_eq!(&bytes[36..40], &3u32.to_le_bytes());
        assert_eq!(&bytes[40..], &[0xAA, 0xBB, 0xCC]);
    }

    #[test]
    fn readable_by_pcap_parser() {
        let mut w = PcapWriter::new(Vec::new(), LINKTYPE_ETHERNET).unwrap();
        w.write_packet(2_000_000, &[1; 60]).unwrap();
        w.write_packet(2_000_020, &[2; 70]).unwrap();
        let bytes = w.finish().unwrap();
        let (rest, header) = pcap_parser::pcap::parse_pcap_header(&bytes).unwrap();
        assert_eq!(header.network, pcap_parser::Linktype::ETHERNET);
        let (rest, first) = pcap_parser::pcap::parse_pcap_frame(rest).unwrap();
        assert_eq!((first.ts_sec, first.ts_usec, first.data.len()), (2, 0, 60));
        let (rest, second) = pcap_parser::pcap::parse_pcap_frame(rest).unwrap();
        assert_eq!(
            (second.ts_sec, second.ts_usec, second.data),
            (2, 20, &[2u8; 70][..])
        );
        assert!(rest.is_empty());
    }

    #[test]
    fn refuses_oversized_packets() {
        let mut w = PcapWriter::new(Vec::new(), LINKTYPE_ETHERNET).unwrap();
        assert!(w.write_packet(0, &vec![0; SNAPLEN as usize + 1]).is_err());
        assert_eq!(w.packets(), 0);
    }
}
