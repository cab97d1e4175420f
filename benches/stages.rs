//! Per-stage benchmarks of the recording pipeline (divan).
//!
//! `cargo bench --bench stages` runs them all (a couple of minutes);
//! `cargo bench --bench stages -- decode` runs the ones whose path matches.
//! Every bench counts items (frames, packets, messages) and, where it means
//! something, bytes, so divan prints items/s and bytes/s beside the time.
//!
//! The inputs come from the crate itself: a `taprec synth` capture of 100
//! calls of 2 s each (about 20,000 frames, Ethernet/IPv4/UDP, G.711 u-law,
//! 20 ms packets, realistic SIP), generated once per process in memory, plus
//! a VLAN-tagged and an IPv6 variant for the decoder. Stages:
//!
//! - `capture`: `FileReader` over the capture, from memory and from a
//!   temporary file (page cache), every frame read and touched, and from
//!   memory into 64-frame `FrameBatch`es (`taprec replay` now batches 1,024 on its reading thread);
//! - `decode`: `Decoder::decode` of every frame (link, IP, UDP);
//! - `sip`: `Message::parse` of the capture's INVITE (with SDP) and 200 OK,
//!   header extraction as the call table does it, and the SDP parser;
//! - `rtp`: `RtpPacket::parse`, `MediaIndex::lookup` at random over indexes
//!   of 1,000 to 100,000 addresses (hits, hits with the destination
//!   prefetched 8 packets ahead, misses), and `Timeline::place`
//!   of 20 ms packets round-robin over thousands of timelines, each writing
//!   through its own `WavWriter` into a sink that discards;
//! - `g711`: encode, decode and transcode of one 20 ms payload and of 1 s;
//! - `wav`: `WavWriter::write_g711` of 8 KiB blocks into a discarding sink
//!   and into a `BufWriter` on `/dev/null` (one syscall per 8 KiB).

use divan::counter::{BytesCount, ItemsCount};
use divan::{black_box, Bencher};
use std::io::{self, Seek, SeekFrom, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use taprec::capture::batch::FrameBatch;
use taprec::capture::file::FileReader;
use taprec::capture::LinkType;
use taprec::decode::{Decoded, Decoder, FragmentLimits};
use taprec::media::wav::AudioSink;
use taprec::media::{Law, SampleFormat};
use taprec::synth::SynthArgs;
use taprec::Timestamp;

fn main() {
    divan::main();
}

/// SIP port of every synthetic party: datagrams on it are SIP, others RTP.
const SIP_PORT: u16 = taprec::synth::SIP_PORT;

/// A capture frame copied out of the reader.
struct OwnedFrame {
    ts: Timestamp,
    link: LinkType,
    data: Vec<u8>,
}

/// One synthetic capture, in memory, with its frames and payloads split out.
struct Capture {
    /// The pcap file's bytes.
    pcap: Vec<u8>,
    frames: Vec<OwnedFrame>,
    /// Sum of the frames' captured lengths.
    frame_bytes: u64,
}

/// Generates a `taprec synth` capture of 100 calls x 2 s with `extra` options.
fn synth(extra: &[&str]) -> Capture {
    let mut options = vec!["-o", "unused.pcap", "--calls", "100", "--duration", "2"];
    options.extend_from_slice(extra);
    let args = SynthArgs::try_parse_from(options).expect("synth options");
    let mut pcap = Vec::new();
    taprec::synth::generate(&args, &mut pcap).expect("synth capture");
    let mut reader = FileReader::from_reader("synth", io::Cursor::new(pcap.clone()))
        .expect("synth capture readable");
    let mut frames = Vec::new();
    while let Some(frame) = reader.next_frame().expect("synth capture intact") {
        frames.push(OwnedFrame {
            ts: frame.ts,
            link: frame.link,
            data: frame.data.to_vec(),
        });
    }
    let frame_bytes = frames.iter().map(|f| f.data.len() as u64).sum();
    Capture {
        pcap,
        frames,
        frame_bytes,
    }
}

/// Ethernet II, IPv4, UDP.
fn plain() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| synth(&[]))
}

/// Ethernet with an 802.1Q tag, IPv4, UDP.
fn vlan() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| synth(&["--vlan", "100"]))
}

/// Ethernet II, IPv6, UDP.
fn ipv6() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| synth(&["--ipv6"]))
}

/// Transport payloads of the plain capture: (src, dst, payload).
type Payloads = Vec<(SocketAddr, SocketAddr, Vec<u8>)>;

/// The plain capture's UDP payloads, SIP and RTP apart.
fn payloads() -> &'static (Payloads, Payloads) {
    static PAYLOADS: OnceLock<(Payloads, Payloads)> = OnceLock::new();
    PAYLOADS.get_or_init(|| {
        let mut decoder = Decoder::new(FragmentLimits::default());
        let (mut sip, mut rtp) = (Vec::new(), Vec::new());
        for frame in &plain().frames {
            if let Ok(Decoded::Datagram(d)) = decoder.decode(frame.ts, frame.link, &frame.data) {
                let entry = (d.src, d.dst, d.payload.to_vec());
                if d.src.port() == SIP_PORT || d.dst.port() == SIP_PORT {
                    sip.push(entry);
                } else {
                    rtp.push(entry);
                }
            }
        }
        assert!(
            !sip.is_empty() && !rtp.is_empty(),
            "synth capture has SIP and RTP"
        );
        (sip, rtp)
    })
}

/// The first SIP payload of the capture that starts with `prefix` and
/// carries an SDP body.
fn sip_with_sdp(prefix: &str) -> &'static [u8] {
    payloads()
        .0
        .iter()
        .map(|(_, _, p)| p.as_slice())
        .find(|p| p.starts_with(prefix.as_bytes()) && p.windows(4).any(|w| w == b"v=0\r"))
        .unwrap_or_else(|| panic!("no {prefix} with SDP in the synth capture"))
}

/// A small deterministic generator (SplitMix64) for random access patterns.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A `Write + Seek` sink that discards the bytes and keeps the position,
/// so WAV writing costs only what taprec itself does.
#[derive(Debug, Default)]
struct Discard {
    pos: u64,
    len: u64,
}

impl Write for Discard {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pos += buf.len() as u64;
        self.len = self.len.max(self.pos);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AudioSink for Discard {}

impl Seek for Discard {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let base = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(delta) => self.len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.pos.checked_add_signed(delta),
        };
        self.pos = base.ok_or_else(|| io::Error::other("seek before the start"))?;
        Ok(self.pos)
    }
}

/// Reading capture files: `FileReader::next_frame` over every frame.
mod capture {
    use super::*;

    /// Reads every frame, touching its bytes; returns a checksum.
    fn read_all(mut reader: FileReader) -> u64 {
        let mut check = 0u64;
        while let Ok(Some(frame)) = reader.next_frame() {
            check = check.wrapping_add(u64::from(frame.data.first().copied().unwrap_or(0)));
        }
        check
    }

    /// From a buffer in memory (`FileReader::from_reader` over a slice).
    #[divan::bench]
    fn from_memory(bencher: Bencher) {
        let capture = plain();
        let pcap: &'static [u8] = &capture.pcap;
        bencher
            .counter(ItemsCount::new(capture.frames.len()))
            .counter(BytesCount::new(pcap.len()))
            .bench_local(|| {
                let reader = FileReader::from_reader("memory", io::Cursor::new(pcap))
                    .expect("capture readable");
                read_all(reader)
            });
    }

    /// From memory, every frame copied into a 64-frame `FrameBatch` as
    /// `taprec replay` does.
    #[divan::bench]
    fn from_memory_batched(bencher: Bencher) {
        const BATCH_FRAMES: usize = 64;
        let capture = plain();
        let pcap: &'static [u8] = &capture.pcap;
        let mut batch = FrameBatch::with_capacity(BATCH_FRAMES, BATCH_FRAMES * 512);
        bencher
            .counter(ItemsCount::new(capture.frames.len()))
            .counter(BytesCount::new(pcap.len()))
            .bench_local(|| {
                let mut reader = FileReader::from_reader("memory", io::Cursor::new(pcap))
                    .expect("capture readable");
                let mut bytes = 0usize;
                batch.clear();
                while let Ok(Some(frame)) = reader.next_frame() {
                    batch.push(&frame);
                    if batch.len() >= BATCH_FRAMES {
                        bytes += black_box(&batch).bytes();
                        batch.clear();
                    }
                }
                bytes + batch.bytes()
            });
    }

    /// From a temporary file (`FileReader::open`; the file is in the page cache).
    #[divan::bench]
    fn from_file(bencher: Bencher) {
        let capture = plain();
        let mut file = tempfile::NamedTempFile::new().expect("temporary file");
        file.write_all(&capture.pcap).expect("write capture");
        file.flush().expect("flush capture");
        let path = file.path().to_owned();
        bencher
            .counter(ItemsCount::new(capture.frames.len()))
            .counter(BytesCount::new(capture.pcap.len()))
            .bench_local(|| read_all(FileReader::open(&path).expect("capture readable")));
    }
}

/// Link, IP and UDP decoding: `Decoder::decode` of every frame.
mod decode {
    use super::*;

    fn decode_all(bencher: Bencher, capture: &Capture) {
        let mut decoder = Decoder::new(FragmentLimits::default());
        bencher
            .counter(ItemsCount::new(capture.frames.len()))
            .counter(BytesCount::new(capture.frame_bytes))
            .bench_local(|| {
                let mut datagrams = 0usize;
                for frame in &capture.frames {
                    let decoded = decoder.decode(frame.ts, frame.link, black_box(&frame.data));
                    if let Ok(Decoded::Datagram(d)) = decoded {
                        datagrams += d.payload.len();
                    }
                }
                datagrams
            });
    }

    /// Ethernet II / IPv4 / UDP.
    #[divan::bench]
    fn ethernet_ipv4_udp(bencher: Bencher) {
        decode_all(bencher, plain());
    }

    /// Ethernet / 802.1Q / IPv4 / UDP.
    #[divan::bench]
    fn vlan_ipv4_udp(bencher: Bencher) {
        decode_all(bencher, vlan());
    }

    /// Ethernet II / IPv6 / UDP.
    #[divan::bench]
    fn ethernet_ipv6_udp(bencher: Bencher) {
        decode_all(bencher, ipv6());
    }
}

/// SIP and SDP parsing of the capture's INVITE and 200 OK.
mod sip {
    use super::*;
    use taprec::sip::message::{Limits, Message};
    use taprec::sip::sdp::SessionDescription;

    fn parse(bencher: Bencher, raw: &'static [u8]) {
        bencher
            .counter(ItemsCount::new(1usize))
            .counter(BytesCount::new(raw.len()))
            .bench(|| Message::parse(black_box(raw)).map(|(_, len)| len));
    }

    /// `Message::parse` of an INVITE with an SDP offer.
    #[divan::bench]
    fn parse_invite(bencher: Bencher) {
        parse(bencher, sip_with_sdp("INVITE "));
    }

    /// `Message::parse` of a 200 OK with an SDP answer.
    #[divan::bench]
    fn parse_200_ok(bencher: Bencher) {
        parse(bencher, sip_with_sdp("SIP/2.0 200 "));
    }

    /// `Message::parse_with_limits` of the INVITE, then the headers the call
    /// table reads (Call-ID, From, To, CSeq, Via branch, Contact, body).
    #[divan::bench]
    fn parse_invite_and_headers(bencher: Bencher) {
        let raw = sip_with_sdp("INVITE ");
        let limits = Limits::default();
        bencher
            .counter(ItemsCount::new(1usize))
            .counter(BytesCount::new(raw.len()))
            .bench(|| {
                let (msg, _) = Message::parse_with_limits(black_box(raw), &limits).ok()?;
                let tag_len = msg.from()?.tag.map_or(0, str::len);
                Some((
                    msg.call_id()?.len(),
                    tag_len,
                    msg.to().is_some(),
                    msg.cseq()?.number,
                    msg.via_branch().map(str::len),
                    msg.contact().is_some(),
                    msg.sdp_body().map(<[u8]>::len),
                ))
            });
    }

    /// `SessionDescription::parse` of the INVITE's SDP offer.
    #[divan::bench]
    fn sdp_offer(bencher: Bencher) {
        let raw = sip_with_sdp("INVITE ");
        let (msg, _) = Message::parse(raw).expect("INVITE parses");
        let body = msg.sdp_body().expect("INVITE has SDP");
        bencher
            .counter(ItemsCount::new(1usize))
            .counter(BytesCount::new(body.len()))
            .bench(|| SessionDescription::parse(black_box(body)));
    }
}

/// RTP: header parsing, media index lookup, timeline placement.
mod rtp {
    use super::*;
    use taprec::call::{MediaIndex, Role};
    use taprec::decode::rtp::RtpPacket;
    use taprec::media::timeline::{Timeline, TimelineLimits};
    use taprec::media::wav::WavWriter;
    use taprec::media::Channel;

    /// `RtpPacket::parse` of every RTP payload of the capture.
    #[divan::bench]
    fn parse(bencher: Bencher) {
        let rtp = &payloads().1;
        bencher.counter(ItemsCount::new(rtp.len())).bench_local(|| {
            let mut sum = 0u32;
            for (_, _, payload) in rtp {
                if let Ok(packet) = RtpPacket::parse(black_box(payload)) {
                    sum = sum.wrapping_add(u32::from(packet.sequence));
                }
            }
            sum
        });
    }

    /// The RTP address of party `role` of call `call` (a local caller in
    /// 10.0.0.0/8, a remote callee in 198.51.100.0/22), as SDP announces it.
    fn address(call: usize, role: Role) -> SocketAddr {
        let port = 16_384 + 2 * (call % 8_000) as u16;
        let ip = match role {
            Role::Caller => Ipv4Addr::new(10, 1, (call / 250) as u8, (call % 250 + 1) as u8),
            Role::Callee => {
                let host = call % 1_016;
                Ipv4Addr::new(198, 51, 100 + (host / 254) as u8, (host % 254 + 1) as u8)
            }
        };
        SocketAddr::new(IpAddr::V4(ip), port)
    }

    /// An index of `addresses` addresses (two per call), and 4,096 packets
    /// between random parties of it (or, for `miss`, from and to addresses
    /// that are not indexed).
    fn index_and_packets(
        addresses: usize,
        miss: bool,
    ) -> (MediaIndex, Vec<(SocketAddr, SocketAddr)>) {
        let calls = addresses / 2;
        let mut index = MediaIndex::new();
        for call in 0..calls {
            for role in [Role::Caller, Role::Callee] {
                index.announce(address(call, role), call as u32, role, true);
            }
        }
        assert_eq!(index.len(), addresses, "addresses are distinct");
        let mut rng = Rng(7);
        let packets = (0..4_096)
            .map(|_| {
                let call = rng.below(calls);
                let (src, dst) = (address(call, Role::Caller), address(call, Role::Callee));
                if miss {
                    let shift = |a: SocketAddr| SocketAddr::new(a.ip(), a.port() + 1);
                    (shift(src), shift(dst))
                } else {
                    (src, dst)
                }
            })
            .collect();
        (index, packets)
    }

    fn lookup(bencher: Bencher, addresses: usize, miss: bool) {
        let (mut index, packets) = index_and_packets(addresses, miss);
        bencher
            .counter(ItemsCount::new(packets.len()))
            .bench_local(|| {
                let mut found = 0u32;
                for &(src, dst) in &packets {
                    if let Some(m) = index.lookup(black_box(src), black_box(dst)) {
                        found = found.wrapping_add(m.slot);
                    }
                }
                found
            });
    }

    /// `MediaIndex::lookup` of packets of random calls, matched by destination.
    #[divan::bench(args = [1_000, 10_000, 100_000])]
    fn lookup_hit(bencher: Bencher, addresses: usize) {
        lookup(bencher, addresses, false);
    }

    /// `MediaIndex::lookup` of packets of random calls as the recorder does
    /// it: each destination prefetched 8 packets ahead.
    #[divan::bench(args = [1_000, 10_000, 100_000])]
    fn lookup_hit_prefetched(bencher: Bencher, addresses: usize) {
        const AHEAD: usize = 8;
        let (mut index, packets) = index_and_packets(addresses, false);
        bencher
            .counter(ItemsCount::new(packets.len()))
            .bench_local(|| {
                let mut found = 0u32;
                for (i, &(src, dst)) in packets.iter().enumerate() {
                    if let Some((_, ahead)) = packets.get(i + AHEAD) {
                        index.prefetch(ahead);
                    }
                    if let Some(m) = index.lookup(black_box(src), black_box(dst)) {
                        found = found.wrapping_add(m.slot);
                    }
                }
                found
            });
    }

    /// `MediaIndex::lookup` of packets no call owns (two probes, both missing).
    #[divan::bench(args = [1_000, 10_000, 100_000])]
    fn lookup_miss(bencher: Bencher, addresses: usize) {
        lookup(bencher, addresses, true);
    }

    /// One 20 ms round: a packet per direction for every call, in turn,
    /// calls up to 18 ms apart within the round.
    fn place_round(
        calls: &mut [(Timeline, WavWriter<Discard>)],
        start: Timestamp,
        round: u32,
        payload: &[u8],
    ) {
        let round_start = start.add_nanos(i64::from(round) * 20_000_000);
        let sequence = round as u16;
        let rtp_ts = round.wrapping_mul(160);
        for (i, (timeline, writer)) in calls.iter_mut().enumerate() {
            let now = round_start.add_nanos((i % 10) as i64 * 2_000_000);
            let ssrc = i as u32;
            for (channel, ssrc) in [(Channel::Left, ssrc), (Channel::Right, !ssrc)] {
                timeline
                    .place(
                        channel,
                        now,
                        ssrc,
                        sequence,
                        rtp_ts,
                        Law::Ulaw,
                        payload,
                        writer,
                    )
                    .expect("discarding sink never fails");
            }
        }
    }

    /// `Timeline::place` of 20 ms u-law packets: each iteration is one
    /// 20 ms round, a packet per direction for every one of `timelines`
    /// calls, in turn; each timeline flushes into its own `WavWriter` over a
    /// discarding sink as its window moves. The timelines run 2 s before
    /// measuring, so flushing is in its steady state; the mean is the
    /// figure to read (a round that flushes costs more than one that does
    /// not).
    #[divan::bench(args = [1_000, 5_000], sample_count = 500)]
    fn place_round_robin(bencher: Bencher, timelines: usize) {
        let start = Timestamp::from_secs_f64(taprec::synth::DEFAULT_START);
        let format = SampleFormat::G711(Law::Ulaw);
        // Calls answered at different times (spread over 1.28 s before
        // `start`), so their timelines flush in different rounds.
        let mut calls: Vec<(Timeline, WavWriter<Discard>)> = (0..timelines)
            .map(|i| {
                let answered = start.add_nanos(-((i % 64) as i64) * 20_000_000);
                let timeline = Timeline::new(answered, format, TimelineLimits::default());
                let writer = WavWriter::new(Discard::default(), format, 2).expect("WAV header");
                (timeline, writer)
            })
            .collect();
        let payload: Vec<u8> = (0..160u32).map(|i| (i * 37 % 251) as u8).collect();
        const WARM_UP_ROUNDS: u32 = 100;
        for round in 0..WARM_UP_ROUNDS {
            place_round(&mut calls, start, round, &payload);
        }
        assert!(
            calls.iter().all(|(_, w)| w.frames() > 0),
            "every timeline flushed during the warm-up"
        );
        let mut round = WARM_UP_ROUNDS;
        bencher
            .counter(ItemsCount::new(2 * timelines))
            .bench_local(|| {
                place_round(&mut calls, start, round, &payload);
                round += 1;
            });
    }
}

/// G.711 conversions through the crate's tables.
mod g711 {
    use super::*;
    use taprec::media::g711;

    /// A -10 dBFS 1 kHz sine, `len` samples.
    fn sine(len: usize) -> Vec<i16> {
        (0..len)
            .map(|i| {
                let phase = i as f64 * 2.0 * std::f64::consts::PI * 1000.0 / 8000.0;
                (phase.sin() * 10_362.0) as i16
            })
            .collect()
    }

    fn encoded(law: Law, len: usize) -> Vec<u8> {
        let pcm = sine(len);
        let mut out = vec![0; len];
        g711::encode_into(law, &pcm, &mut out);
        out
    }

    /// Samples: one 20 ms packet, and one second.
    const SIZES: [usize; 2] = [160, 8000];

    /// `encode_into` (linear PCM to u-law), samples per second.
    #[divan::bench(args = SIZES)]
    fn encode_ulaw(bencher: Bencher, len: usize) {
        let pcm = sine(len);
        let mut out = vec![0u8; len];
        bencher
            .counter(ItemsCount::new(len))
            .bench_local(|| g711::encode_into(Law::Ulaw, black_box(&pcm), &mut out));
    }

    /// `encode_into` (linear PCM to A-law).
    #[divan::bench(args = SIZES)]
    fn encode_alaw(bencher: Bencher, len: usize) {
        let pcm = sine(len);
        let mut out = vec![0u8; len];
        bencher
            .counter(ItemsCount::new(len))
            .bench_local(|| g711::encode_into(Law::Alaw, black_box(&pcm), &mut out));
    }

    /// `decode_into` (u-law to linear PCM).
    #[divan::bench(args = SIZES)]
    fn decode_ulaw(bencher: Bencher, len: usize) {
        let input = encoded(Law::Ulaw, len);
        let mut out = vec![0i16; len];
        bencher
            .counter(ItemsCount::new(len))
            .counter(BytesCount::new(len))
            .bench_local(|| g711::decode_into(Law::Ulaw, black_box(&input), &mut out));
    }

    /// `decode_into` (A-law to linear PCM).
    #[divan::bench(args = SIZES)]
    fn decode_alaw(bencher: Bencher, len: usize) {
        let input = encoded(Law::Alaw, len);
        let mut out = vec![0i16; len];
        bencher
            .counter(ItemsCount::new(len))
            .counter(BytesCount::new(len))
            .bench_local(|| g711::decode_into(Law::Alaw, black_box(&input), &mut out));
    }

    /// `transcode_into` u-law to A-law.
    #[divan::bench(args = SIZES)]
    fn transcode_ulaw_to_alaw(bencher: Bencher, len: usize) {
        let input = encoded(Law::Ulaw, len);
        let mut out = vec![0u8; len];
        bencher
            .counter(ItemsCount::new(len))
            .counter(BytesCount::new(len))
            .bench_local(|| {
                g711::transcode_into(Law::Ulaw, Law::Alaw, black_box(&input), &mut out)
            });
    }

    /// `transcode_into` with the same law on both sides (the timeline's copy).
    #[divan::bench(args = SIZES)]
    fn copy_same_law(bencher: Bencher, len: usize) {
        let input = encoded(Law::Ulaw, len);
        let mut out = vec![0u8; len];
        bencher
            .counter(ItemsCount::new(len))
            .counter(BytesCount::new(len))
            .bench_local(|| {
                g711::transcode_into(Law::Ulaw, Law::Ulaw, black_box(&input), &mut out)
            });
    }
}

/// WAV writing: `WavWriter::write_g711` of 8 KiB interleaved stereo blocks.
mod wav {
    use super::*;
    use std::fs::File;
    use std::io::BufWriter;
    use taprec::media::wav::WavWriter;

    const BLOCK: usize = 8 * 1024;

    /// A new writer is started after this many bytes (the RIFF limit is 4 GiB).
    const RESTART_AFTER: u64 = 1 << 30;

    fn write_blocks<W: Write + Seek>(bencher: Bencher, mut make: impl FnMut() -> W) {
        let format = SampleFormat::G711(Law::Ulaw);
        let block: Vec<u8> = (0..BLOCK).map(|i| (i * 31 % 256) as u8).collect();
        let mut writer = WavWriter::new(make(), format, 2).expect("WAV header");
        bencher
            .counter(ItemsCount::new(1usize))
            .counter(BytesCount::new(BLOCK))
            .bench_local(|| {
                if writer.frames() * 2 >= RESTART_AFTER {
                    writer = WavWriter::new(make(), format, 2).expect("WAV header");
                }
                writer.write_g711(black_box(&block))
            });
        writer.finish().expect("WAV finish");
    }

    /// Into a sink that discards (the writer's own cost).
    #[divan::bench]
    fn write_g711_discard(bencher: Bencher) {
        write_blocks(bencher, Discard::default);
    }

    /// Into a `BufWriter<File>` on `/dev/null` (adds the write syscalls).
    #[divan::bench]
    fn write_g711_dev_null(bencher: Bencher) {
        write_blocks(bencher, || {
            BufWriter::new(File::create("/dev/null").expect("open /dev/null"))
        });
    }
}
