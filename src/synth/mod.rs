//! `taprec synth`: synthetic SIP + RTP captures whose parties send distinct
//! tones, for end-to-end tests and benchmarks.
//!
//! The demo capture in `pcaps/` was made with:
//!
//! ```text
//! taprec synth -o pcaps/demo.pcap --calls 2 --duration 4 --seed 1
//! ```
//!
//! # What a capture holds
//!
//! Call `i` (0-based) is placed by a LOCAL caller with a REMOTE callee, over
//! UDP port 5060 on both sides:
//!
//! - caller: number `1000 + i`, display name `"Ext <number>"`, IPv4
//!   `10.1.(i/250).(i%250+1)` (above 64,000 calls the second octet grows) or
//!   IPv6 `fd00:1::/64`;
//! - callee: number `+3902` and 7 digits, IPv4 in 198.51.100.0/24 and
//!   203.0.113.0/24 (508 hosts, reused round-robin) or IPv6 in 2001:db8::/32;
//! - messages: INVITE (SDP offer `m=audio <port> RTP/AVP <pt> 101`), 100
//!   Trying, 180 Ringing, 200 OK (SDP answer, callee's to-tag) after 0.5-2 s
//!   of ringing, ACK, RTP both ways for `--duration` seconds, then BYE from
//!   the caller for even `i` and from the callee for odd `i`, and its 200 OK.
//!   The last `--no-bye-for` calls stop sending RTP without any BYE.
//! - RTP: one SSRC per direction, random first sequence number and
//!   timestamp, marker on the first packet, `8 * ptime` samples per packet of
//!   a pure sine at -10 dBFS with continuous phase. The caller's tone and the
//!   callee's tone come from the grid of [`tone`]: every party of 39
//!   consecutive calls has its own tone; the manifest tells which.
//!
//! `--concurrency N` runs the calls in N slots: call `i` goes to slot
//! `i % N`, the slots' first calls start spread over the first
//! `min(duration, 2 s)`, and each later call starts 0.2-1 s after the previous
//! call of its slot ended, so at most N calls overlap.
//!
//! Frames are Ethernet II (optionally 802.1Q, or QinQ with an 0x88A8 outer
//! tag) with correct IPv4 header and UDP checksums, written to a classic
//! microsecond pcap in capture-time order. Packets are produced by a binary
//! heap of per-call cursors (O(log n) per packet, constant memory per call)
//! and streamed out, so benchmark captures of thousands of concurrent calls
//! cost no more memory than the manifest. The same arguments and `--seed`
//! always give byte-identical output.
//!
//! # Manifest
//!
//! Beside the pcap, a JSON [`Manifest`] describes every call (times are Unix
//! seconds; `end_time` is the BYE's capture time, or the nominal send time of
//! the last RTP packet for a call without BYE).

pub mod pcap_writer;
pub mod sip_text;
pub mod tone;
pub mod wire;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::media::Law;
use pcap_writer::{PcapWriter, LINKTYPE_ETHERNET};
use sip_text::{CallText, PartyText, Step};
use tone::{ToneTable, CALLS_PER_GRID};
use wire::{build_udp_frame, Endpoint, IpFields};

/// Default capture start: 2026-01-01T00:00:00Z.
pub const DEFAULT_START: f64 = 1_767_225_600.0;

/// The SIP port of every synthetic party.
pub const SIP_PORT: u16 = 5060;

/// Largest `--calls` accepted (the caller address plan runs out beyond).
pub const MAX_CALLS: u32 = 16_000_000;

/// Ethernet address of the gateway that every remote party is reached through.
const GATEWAY_MAC: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x01];

/// Options of `taprec synth`.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct SynthArgs {
    /// Output pcap file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Number of calls.
    #[arg(long, default_value_t = 2)]
    pub calls: u32,
    /// Calls running at once (default: all of them).
    #[arg(long)]
    pub concurrency: Option<u32>,
    /// Talk time per call, seconds.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Codec of every call.
    #[arg(long, value_enum, default_value_t = Codec::Pcmu)]
    pub codec: Codec,
    /// RTP packetisation time, ms.
    #[arg(long, default_value_t = 20)]
    pub ptime: u32,
    /// Random RTP loss, percent of packets missing from the capture.
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Percent of RTP packets swapped with their stream neighbour in capture order.
    #[arg(long, default_value_t = 0.0)]
    pub reorder: f64,
    /// Random extra capture delay of RTP packets, up to this many ms.
    #[arg(long = "jitter-ms", default_value_t = 0.0)]
    pub jitter_ms: f64,
    /// VLAN ID; once for 802.1Q, twice for QinQ (outer first).
    #[arg(long = "vlan")]
    pub vlan: Vec<u16>,
    /// Use IPv6 addresses.
    #[arg(long)]
    pub ipv6: bool,
    /// Random seed; the same seed gives the same capture.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Capture start time, Unix seconds.
    #[arg(long, default_value_t = DEFAULT_START)]
    pub start: f64,
    /// Manifest JSON file (default: the output with a .json extension).
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// The last N calls end without BYE (media just stops).
    #[arg(long = "no-bye-for", default_value_t = 0)]
    pub no_bye_for: u32,
}

/// Wrapper to parse [`SynthArgs`] alone (tests, other tools).
#[derive(clap::Parser)]
struct SynthCli {
    #[command(flatten)]
    args: SynthArgs,
}

impl SynthArgs {
    /// Parses `taprec synth` options (without the program or subcommand name),
    /// e.g. `["-o", "x.pcap", "--calls", "3"]`.
    pub fn try_parse_from<I, T>(options: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::Parser;
        let program = std::iter::once(std::ffi::OsString::from("synth"));
        SynthCli::try_parse_from(program.chain(options.into_iter().map(Into::into)))
            .map(|cli| cli.args)
    }

    /// The manifest path: `--manifest`, or the output with a `.json` extension.
    pub fn manifest_path(&self) -> PathBuf {
        self.manifest
            .clone()
            .unwrap_or_else(|| self.output.with_extension("json"))
    }

    /// Checks the ranges of every option.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.calls > MAX_CALLS {
            bail!("--calls must be at most {MAX_CALLS}");
        }
        if self.concurrency == Some(0) {
            bail!("--concurrency must be at least 1");
        }
        if !(self.duration > 0.0 && self.duration <= 86_400.0) {
            bail!("--duration must be in (0, 86400] seconds");
        }
        if !(1..=150).contains(&self.ptime) {
            bail!("--ptime must be 1..=150 ms");
        }
        if !(0.0..=100.0).contains(&self.loss) {
            bail!("--loss must be a percentage in 0..=100");
        }
        if !(0.0..=100.0).contains(&self.reorder) {
            bail!("--reorder must be a percentage in 0..=100");
        }
        if !(0.0..=10_000.0).contains(&self.jitter_ms) {
            bail!("--jitter-ms must be in 0..=10000");
        }
        if self.vlan.len() > 2 {
            bail!("--vlan may be given at most twice (QinQ)");
        }
        if let Some(bad) = self.vlan.iter().find(|&&id| id > 4094) {
            bail!("--vlan {bad}: VLAN IDs are 0..=4094");
        }
        if !(0.0..=4_000_000_000.0).contains(&self.start) {
            bail!("--start must be Unix seconds in 0..=4000000000");
        }
        if self.no_bye_for > self.calls {
            bail!("--no-bye-for must not exceed --calls");
        }
        Ok(())
    }
}

/// Codec choice of `--codec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, Serialize, Deserialize)]
pub enum Codec {
    /// G.711 u-law, RTP payload type 0.
    Pcmu,
    /// G.711 A-law, RTP payload type 8.
    Pcma,
}

impl Codec {
    /// The G.711 variant.
    pub fn law(self) -> Law {
        match self {
            Codec::Pcmu => Law::Ulaw,
            Codec::Pcma => Law::Alaw,
        }
    }

    /// The static RTP payload type.
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }
}

/// Which party of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The party that sent the INVITE (local).
    Caller,
    /// The party that answered (remote).
    Callee,
}

/// A value per direction, keyed by the sending party.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerSender<T> {
    /// Sent by the caller.
    pub caller: T,
    /// Sent by the callee.
    pub callee: T,
}

/// RTP packet counts of one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PacketCounts {
    /// Packets the sender sent (sequence numbers used).
    pub sent: u64,
    /// Of those, packets left out of the capture by `--loss`.
    pub dropped: u64,
}

/// One party as the manifest describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartyInfo {
    /// User part of the SIP URI.
    pub number: String,
    /// Display name in From/To, if any.
    pub display_name: Option<String>,
    /// IP address of SIP and RTP.
    pub ip: IpAddr,
    /// SIP UDP port.
    pub sip_port: u16,
    /// RTP UDP port (from the SDP).
    pub rtp_port: u16,
    /// Frequency of the tone this party sends, Hz.
    pub tone_hz: u32,
}

/// One call as the manifest describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallInfo {
    /// 0-based call number.
    pub index: u32,
    /// SIP Call-ID.
    pub call_id: String,
    /// The local party that sends the INVITE.
    pub caller: PartyInfo,
    /// The remote party that answers.
    pub callee: PartyInfo,
    /// Capture time of the INVITE, Unix seconds.
    pub invite_time: f64,
    /// Capture time of the 200 OK to the INVITE.
    pub answer_time: f64,
    /// Capture time of the BYE, or nominal time of the last RTP packet.
    pub end_time: f64,
    /// Who sent the BYE; `None` for a call that ends without one.
    pub bye_from: Option<Role>,
    /// SDP encoding name (`PCMU` or `PCMA`).
    pub codec: String,
    /// RTP payload type of the audio.
    pub payload_type: u8,
    /// SSRC per direction.
    pub ssrcs: PerSender<u32>,
    /// First RTP sequence number per direction.
    pub first_seq: PerSender<u16>,
    /// First RTP timestamp per direction.
    pub first_timestamp: PerSender<u32>,
    /// RTP packets per direction.
    pub packets: PerSender<PacketCounts>,
    /// SIP messages of the call in the capture.
    pub sip_messages: u32,
}

/// Frame totals of a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Totals {
    /// Frames written.
    pub frames: u64,
    /// Of those, SIP messages.
    pub sip: u64,
    /// Of those, RTP packets.
    pub rtp: u64,
    /// RTP packets left out by `--loss`.
    pub rtp_dropped: u64,
}

/// The JSON written beside a synthetic capture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `taprec synth`.
    pub generator: String,
    /// `--seed`.
    pub seed: u64,
    /// `--start`, Unix seconds.
    pub start_time: f64,
    /// `--duration`, seconds of talk per call.
    pub duration: f64,
    /// `--ptime`, ms.
    pub ptime_ms: u32,
    /// Samples per RTP packet.
    pub samples_per_packet: u32,
    /// `--concurrency` in effect.
    pub concurrency: u32,
    /// `--loss`, percent.
    pub loss_percent: f64,
    /// `--reorder`, percent.
    pub reorder_percent: f64,
    /// `--jitter-ms`.
    pub jitter_ms: f64,
    /// `--vlan` tags, outermost first.
    pub vlans: Vec<u16>,
    /// Whether addresses are IPv6.
    pub ipv6: bool,
    /// Networks of the local (caller) parties.
    pub local_networks: Vec<String>,
    /// Frame totals.
    pub totals: Totals,
    /// Every call, by index.
    pub calls: Vec<CallInfo>,
}

/// Generates the capture of `args` into the file `args.output`, writes the
/// manifest, and prints a one-line summary with the generation rate.
pub fn run(args: &SynthArgs) -> anyhow::Result<()> {
    args.validate()?;
    let file = File::create(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let started = Instant::now();
    let manifest = generate(args, BufWriter::with_capacity(1 << 20, file))
        .with_context(|| format!("writing {}", args.output.display()))?;
    let elapsed = started.elapsed().as_secs_f64();
    let manifest_path = args.manifest_path();
    let json = File::create(&manifest_path)
        .with_context(|| format!("creating {}", manifest_path.display()))?;
    let mut json = BufWriter::new(json);
    serde_json::to_writer_pretty(&mut json, &manifest)?;
    json.write_all(b"\n")?;
    json.flush()
        .with_context(|| format!("writing {}", manifest_path.display()))?;
    let t = manifest.totals;
    println!(
        "synth: {} calls, {} frames ({} SIP, {} RTP, {} RTP dropped) -> {} in {:.2} s ({:.0} packets/s); manifest {}",
        manifest.calls.len(),
        t.frames,
        t.sip,
        t.rtp,
        t.rtp_dropped,
        args.output.display(),
        elapsed,
        t.frames as f64 / elapsed.max(1e-9),
        manifest_path.display()
    );
    Ok(())
}

/// Writes the pcap of `args` to `out` (flushed at the end) and returns its
/// manifest. `args.output` and `args.manifest` are not used.
pub fn generate<W: Write>(args: &SynthArgs, out: W) -> anyhow::Result<Manifest> {
    args.validate()?;
    let plan = Plan::new(args);
    let mut generator = Generator::new(&plan, out)?;
    generator.run()?;
    let totals = generator.totals;
    let counts = generator.counts;
    generator.writer.finish()?;
    Ok(plan.manifest(args, totals, &counts))
}

/// SplitMix64: a tiny, fast, seedable generator; good enough for test data.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    /// A generator for stream `stream` of `seed`, independent of other streams.
    fn new(seed: u64, stream: u64) -> Self {
        let mut rng = Rng(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        rng.next_u64();
        rng
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`lo` when the range is empty).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + ((u128::from(self.next_u64()) * u128::from(hi - lo)) >> 64) as u64
    }

    /// True with probability `p` (0..=1).
    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// One RTP direction of a planned call.
#[derive(Debug, Clone)]
struct StreamPlan {
    ssrc: u32,
    first_seq: u16,
    first_timestamp: u32,
    /// Nominal send time of packet 0, µs after the capture start.
    start_us: u64,
    /// Index into the tone tables.
    tone: usize,
}

/// Everything decided about one call before generation starts.
#[derive(Debug, Clone)]
struct CallPlan {
    caller_ip: IpAddr,
    callee_ip: IpAddr,
    caller_mac: [u8; 6],
    caller_rtp: u16,
    callee_rtp: u16,
    callee_ttl: u8,
    tags: [u64; 2],
    nonce: u64,
    call_id_rand: u64,
    /// Capture times of the SIP steps, µs after the capture start.
    sip_us: [u64; 7],
    has_bye: bool,
    caller_hangs_up: bool,
    /// Caller's stream, then callee's.
    streams: [StreamPlan; 2],
    /// First IPv4 identification of caller and callee.
    ip_id: [u16; 2],
    /// Seeds of the per-stream loss/reorder/jitter generators.
    stream_seeds: [u64; 2],
}

/// The whole capture, planned.
struct Plan {
    start_us: u64,
    seed: u64,
    codec: Codec,
    ptime_us: u64,
    samples_per_packet: u32,
    packets_per_stream: u64,
    loss: f64,
    /// Probability that a slot starts a swapped pair.
    swap: f64,
    jitter_us: u64,
    vlans: Vec<u16>,
    ipv6: bool,
    concurrency: u32,
    tables: Vec<ToneTable>,
    calls: Vec<CallPlan>,
}

impl Plan {
    fn new(args: &SynthArgs) -> Self {
        let calls = args.calls;
        let concurrency = args.concurrency.unwrap_or(calls).clamp(1, calls.max(1));
        let ptime_us = u64::from(args.ptime) * 1000;
        let duration_us = (args.duration * 1e6).round() as u64;
        let packets_per_stream = ((duration_us + ptime_us / 2) / ptime_us).max(1);
        let jitter_us = (args.jitter_ms * 1000.0).round() as u64;
        let law = args.codec.law();
        let tables = (0..2 * CALLS_PER_GRID)
            .map(|k| {
                let (caller, callee) = tone::call_tones(k % CALLS_PER_GRID);
                ToneTable::new(if k < CALLS_PER_GRID { caller } else { callee }, law)
            })
            .collect();
        // Fraction p of packets in swapped pairs needs a pair to start with
        // probability q = p / (2 - p) at each slot (pairs take two slots).
        let p = args.reorder / 100.0;
        let swap = if p > 0.0 { p / (2.0 - p) } else { 0.0 };
        let ramp_us = duration_us.min(2_000_000);
        let mut slot_free = vec![0u64; concurrency as usize];
        let mut plans = Vec::with_capacity(calls as usize);
        for i in 0..calls {
            let mut rng = Rng::new(args.seed, u64::from(i));
            let slot = (i % concurrency) as usize;
            let invite = if i < concurrency {
                50_000 + ramp_us * slot as u64 / u64::from(concurrency) + rng.range(0, 20_000)
            } else {
                slot_free[slot] + rng.range(200_000, 1_000_000)
            };
            let trying = invite + rng.range(5_000, 30_000);
            let ringing = invite + rng.range(40_000, 200_000);
            let answer = invite + rng.range(500_000, 2_000_000);
            let ack = answer + rng.range(10_000, 60_000);
            let callee_start = answer + rng.range(1_000, ptime_us);
            let caller_start = answer + rng.range(1_000, ptime_us);
            let last_nominal = callee_start.max(caller_start) + (packets_per_stream - 1) * ptime_us;
            let bye = last_nominal + jitter_us + rng.range(5_000, 50_000);
            let bye_ok = bye + rng.range(10_000, 40_000);
            let has_bye = i < calls - args.no_bye_for;
            slot_free[slot] = if has_bye {
                bye_ok
            } else {
                last_nominal + jitter_us
            };
            let remote = i % 508;
            let (caller_ip, callee_ip): (IpAddr, IpAddr) = if args.ipv6 {
                let n = i + 1;
                (
                    Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, (n >> 16) as u16, n as u16).into(),
                    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, remote as u16 + 1).into(),
                )
            } else {
                let callee = if remote < 254 {
                    Ipv4Addr::new(198, 51, 100, remote as u8 + 1)
                } else {
                    Ipv4Addr::new(203, 0, 113, (remote - 254) as u8 + 1)
                };
                (
                    Ipv4Addr::new(
                        10,
                        (1 + i / 64_000) as u8,
                        ((i / 250) % 256) as u8,
                        (i % 250 + 1) as u8,
                    )
                    .into(),
                    callee.into(),
                )
            };
            let n = (i + 1).to_be_bytes();
            let tone = (i % CALLS_PER_GRID) as usize;
            let stream = |start_us: u64, tone: usize, rng: &mut Rng| StreamPlan {
                ssrc: rng.next_u64() as u32,
                first_seq: rng.next_u64() as u16,
                first_timestamp: rng.next_u64() as u32,
                start_us,
                tone,
            };
            let streams = [
                stream(caller_start, tone, &mut rng),
                stream(callee_start, tone + CALLS_PER_GRID as usize, &mut rng),
            ];
            plans.push(CallPlan {
                caller_ip,
                callee_ip,
                caller_mac: [0x02, 0x00, 0x0a, n[1], n[2], n[3]],
                caller_rtp: 16_384 + 2 * (i % 8192) as u16,
                callee_rtp: 20_000 + 2 * ((i / 508) % 20_000) as u16,
                callee_ttl: 64 - 3 - (remote % 12) as u8,
                tags: [rng.next_u64(), rng.next_u64()],
                nonce: rng.next_u64(),
                call_id_rand: rng.next_u64(),
                sip_us: [invite, trying, ringing, answer, ack, bye, bye_ok],
                has_bye,
                caller_hangs_up: i % 2 == 0,
                streams,
                ip_id: [rng.next_u64() as u16, rng.next_u64() as u16],
                stream_seeds: [rng.next_u64(), rng.next_u64()],
            });
        }
        Plan {
            start_us: (args.start * 1e6).round() as u64,
            seed: args.seed,
            codec: args.codec,
            ptime_us,
            samples_per_packet: args.ptime * 8,
            packets_per_stream,
            loss: args.loss / 100.0,
            swap,
            jitter_us,
            vlans: args.vlan.clone(),
            ipv6: args.ipv6,
            concurrency,
            tables,
            calls: plans,
        }
    }

    fn caller_number(index: u32) -> String {
        (1000 + u64::from(index)).to_string()
    }

    fn callee_number(index: u32) -> String {
        // 7919 is prime, so the 7 digits are unique for 10 million calls.
        format!(
            "+3902{:07}",
            (5_550_000 + u64::from(index) * 7919) % 10_000_000
        )
    }

    fn call_id(&self, index: u32) -> String {
        let call = &self.calls[index as usize];
        let host = match call.caller_ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        format!("{:016x}{index:x}@{host}", call.call_id_rand)
    }

    fn text(&self, index: u32) -> CallText {
        let call = &self.calls[index as usize];
        let number = Self::caller_number(index);
        CallText {
            call_id: self.call_id(index),
            caller: PartyText {
                display_name: Some(format!("Ext {number}")),
                number,
                ip: call.caller_ip,
                sip_port: SIP_PORT,
                rtp_port: call.caller_rtp,
                tag: call.tags[0],
            },
            callee: PartyText {
                number: Self::callee_number(index),
                display_name: None,
                ip: call.callee_ip,
                sip_port: SIP_PORT,
                rtp_port: call.callee_rtp,
                tag: call.tags[1],
            },
            law: self.codec.law(),
            ptime_ms: (self.ptime_us / 1000) as u32,
            nonce: call.nonce,
        }
    }

    fn seconds(&self, rel_us: u64) -> f64 {
        (self.start_us + rel_us) as f64 / 1e6
    }

    fn manifest(&self, args: &SynthArgs, totals: Totals, counts: &[[PacketCounts; 2]]) -> Manifest {
        let calls = self
            .calls
            .iter()
            .zip(counts)
            .enumerate()
            .map(|(i, (call, counts))| {
                let index = i as u32;
                let text = self.text(index);
                let party = |p: PartyText, stream: &StreamPlan| PartyInfo {
                    number: p.number,
                    display_name: p.display_name,
                    ip: p.ip,
                    sip_port: p.sip_port,
                    rtp_port: p.rtp_port,
                    tone_hz: self.tables[stream.tone].freq_hz,
                };
                let last_rtp = call.streams[0].start_us.max(call.streams[1].start_us)
                    + (self.packets_per_stream - 1) * self.ptime_us;
                let [s0, s1] = &call.streams;
                CallInfo {
                    index,
                    call_id: text.call_id,
                    caller: party(text.caller, s0),
                    callee: party(text.callee, s1),
                    invite_time: self.seconds(call.sip_us[0]),
                    answer_time: self.seconds(call.sip_us[3]),
                    end_time: self.seconds(if call.has_bye {
                        call.sip_us[5]
                    } else {
                        last_rtp
                    }),
                    bye_from: call.has_bye.then_some(if call.caller_hangs_up {
                        Role::Caller
                    } else {
                        Role::Callee
                    }),
                    codec: self.codec.law().name().to_string(),
                    payload_type: self.codec.payload_type(),
                    ssrcs: PerSender {
                        caller: s0.ssrc,
                        callee: s1.ssrc,
                    },
                    first_seq: PerSender {
                        caller: s0.first_seq,
                        callee: s1.first_seq,
                    },
                    first_timestamp: PerSender {
                        caller: s0.first_timestamp,
                        callee: s1.first_timestamp,
                    },
                    packets: PerSender {
                        caller: counts[0],
                        callee: counts[1],
                    },
                    sip_messages: if call.has_bye { 7 } else { 5 },
                }
            })
            .collect();
        Manifest {
            generator: "taprec synth".to_string(),
            seed: self.seed,
            start_time: self.start_us as f64 / 1e6,
            duration: args.duration,
            ptime_ms: args.ptime,
            samples_per_packet: self.samples_per_packet,
            concurrency: self.concurrency,
            loss_percent: args.loss,
            reorder_percent: args.reorder,
            jitter_ms: args.jitter_ms,
            vlans: self.vlans.clone(),
            ipv6: self.ipv6,
            local_networks: vec![if self.ipv6 {
                "fd00:1::/64"
            } else {
                "10.0.0.0/8"
            }
            .to_string()],
            totals,
            calls,
        }
    }
}

/// Heap lanes of a call: its SIP messages and its two RTP directions.
const LANE_SIP: u8 = 0;
const LANE_CALLER_RTP: u8 = 1;
const LANE_CALLEE_RTP: u8 = 2;

/// Generation-time state of one RTP direction.
#[derive(Debug, Clone)]
struct StreamState {
    /// Next capture slot.
    slot: u64,
    /// A packet held back by a swap, sent in the next slot.
    held: Option<u64>,
    rng: Rng,
}

/// Generation-time state of one call.
#[derive(Debug, Clone)]
struct CallState {
    sip_step: u8,
    streams: [StreamState; 2],
    ip_id: [u16; 2],
}

/// Walks every call's events in capture-time order and writes frames.
struct Generator<'p, W: Write> {
    plan: &'p Plan,
    writer: PcapWriter<W>,
    states: Vec<CallState>,
    counts: Vec<[PacketCounts; 2]>,
    /// (INVITE time, call index) of every call, earliest first.
    starts: Vec<(u64, u32)>,
    /// The next entry of `starts` to activate.
    next_start: usize,
    /// (capture time µs, call index, lane) of active calls, earliest first.
    heap: BinaryHeap<Reverse<(u64, u32, u8)>>,
    frame: Vec<u8>,
    text: String,
    totals: Totals,
}

impl<'p, W: Write> Generator<'p, W> {
    fn new(plan: &'p Plan, out: W) -> anyhow::Result<Self> {
        let writer = PcapWriter::new(out, LINKTYPE_ETHERNET)?;
        let states = plan
            .calls
            .iter()
            .map(|call| CallState {
                sip_step: 0,
                streams: [0, 1].map(|d| StreamState {
                    slot: 0,
                    held: None,
                    rng: Rng::new(call.stream_seeds[d], 0x5EED),
                }),
                ip_id: call.ip_id,
            })
            .collect();
        let mut starts: Vec<(u64, u32)> = (0..plan.calls.len())
            .map(|i| (plan.calls[i].sip_us[0], i as u32))
            .collect();
        starts.sort_unstable();
        Ok(Self {
            plan,
            writer,
            counts: vec![[PacketCounts::default(); 2]; plan.calls.len()],
            states,
            starts,
            next_start: 0,
            heap: BinaryHeap::with_capacity(3 * plan.concurrency as usize + 1),
            frame: Vec::with_capacity(2048),
            text: String::with_capacity(2048),
            totals: Totals::default(),
        })
    }

    /// Queues the SIP and RTP cursors of call `index`.
    fn activate(&mut self, index: u32) {
        let call = &self.plan.calls[index as usize];
        self.heap.push(Reverse((call.sip_us[0], index, LANE_SIP)));
        let streams = &mut self.states[index as usize].streams;
        for (d, lane) in [LANE_CALLER_RTP, LANE_CALLEE_RTP].into_iter().enumerate() {
            let first = call.streams[d].start_us + jitter(&mut streams[d].rng, self.plan.jitter_us);
            self.heap.push(Reverse((first, index, lane)));
        }
    }

    fn run(&mut self) -> anyhow::Result<()> {
        let mut now = 0u64;
        loop {
            // Calls enter the heap only when their INVITE is next, so the heap
            // holds the active calls' cursors, not every call's.
            while let Some(&(invite, index)) = self.starts.get(self.next_start) {
                let earlier = self
                    .heap
                    .peek()
                    .is_some_and(|Reverse(top)| *top < (invite, index, LANE_SIP));
                if earlier {
                    break;
                }
                self.activate(index);
                self.next_start += 1;
            }
            let Some(Reverse((due, index, lane))) = self.heap.pop() else {
                break;
            };
            // Jitter may put a packet before one already written: keep the
            // file's timestamps monotonic by sending it "now" instead.
            now = now.max(due);
            if lane == LANE_SIP {
                self.sip(now, index)?;
            } else {
                self.rtp(now, index, usize::from(lane - LANE_CALLER_RTP))?;
            }
        }
        Ok(())
    }

    /// Source, destination (ports zero) and TTL of a frame of call `index`.
    fn endpoints(&self, index: u32, from_caller: bool) -> (Endpoint, Endpoint, u8) {
        let call = &self.plan.calls[index as usize];
        let caller = Endpoint {
            mac: call.caller_mac,
            ip: call.caller_ip,
            port: 0,
        };
        // Remote parties are reached through the gateway, some hops away.
        let callee = Endpoint {
            mac: GATEWAY_MAC,
            ip: call.callee_ip,
            port: 0,
        };
        if from_caller {
            (caller, callee, 64)
        } else {
            (callee, caller, call.callee_ttl)
        }
    }

    fn sip(&mut self, now: u64, index: u32) -> anyhow::Result<()> {
        let call = &self.plan.calls[index as usize];
        let state = &mut self.states[index as usize];
        let step_index = usize::from(state.sip_step);
        let Some(&step) = Step::WITH_BYE.get(step_index) else {
            return Ok(());
        };
        state.sip_step += 1;
        let last = if call.has_bye { 7 } else { 5 };
        if usize::from(state.sip_step) < last {
            self.heap.push(Reverse((
                call.sip_us[usize::from(state.sip_step)],
                index,
                LANE_SIP,
            )));
        }
        self.plan
            .text(index)
            .write(step, call.caller_hangs_up, &mut self.text);
        let from_caller = step.from_caller(call.caller_hangs_up);
        let (src, dst, ttl) = self.endpoints(index, from_caller);
        let side = usize::from(!from_caller);
        let id = self.states[index as usize].ip_id[side];
        self.states[index as usize].ip_id[side] = id.wrapping_add(1);
        let text = self.text.as_bytes();
        let src = Endpoint {
            port: SIP_PORT,
            ..src
        };
        let dst = Endpoint {
            port: SIP_PORT,
            ..dst
        };
        if !build_udp_frame(
            &mut self.frame,
            &self.plan.vlans,
            &src,
            &dst,
            IpFields { id, ttl },
            |buf| buf.extend_from_slice(text),
        ) {
            bail!("SIP message too large for one UDP datagram");
        }
        self.writer
            .write_packet(self.plan.start_us + now, &self.frame)?;
        self.totals.frames += 1;
        self.totals.sip += 1;
        Ok(())
    }

    fn rtp(&mut self, now: u64, index: u32, dir: usize) -> anyhow::Result<()> {
        let plan = self.plan;
        let call = &plan.calls[index as usize];
        let stream = &call.streams[dir];
        let count = plan.packets_per_stream;
        let state = &mut self.states[index as usize].streams[dir];
        let slot = state.slot;
        if slot >= count {
            return Ok(());
        }
        state.slot += 1;
        // Which packet goes into this slot: a held one, the next one early
        // (swap), or its own.
        let packet = if let Some(held) = state.held.take() {
            held
        } else if slot + 1 < count && state.rng.chance(plan.swap) {
            state.held = Some(slot);
            slot + 1
        } else {
            slot
        };
        let lost = state.rng.chance(plan.loss);
        if state.slot < count {
            let due = stream.start_us
                + state.slot * plan.ptime_us
                + jitter(&mut state.rng, plan.jitter_us);
            let lane = if dir == 0 {
                LANE_CALLER_RTP
            } else {
                LANE_CALLEE_RTP
            };
            self.heap.push(Reverse((due, index, lane)));
        }
        let counts = &mut self.counts[index as usize][dir];
        counts.sent += 1;
        if lost {
            counts.dropped += 1;
            self.totals.rtp_dropped += 1;
            return Ok(());
        }
        let from_caller = dir == 0;
        let (src, dst, ttl) = self.endpoints(index, from_caller);
        let (src_port, dst_port) = if from_caller {
            (call.caller_rtp, call.callee_rtp)
        } else {
            (call.callee_rtp, call.caller_rtp)
        };
        let id = self.states[index as usize].ip_id[dir];
        self.states[index as usize].ip_id[dir] = id.wrapping_add(1);
        let spp = u64::from(plan.samples_per_packet);
        let marker = if packet == 0 { 0x80 } else { 0 };
        let seq = stream.first_seq.wrapping_add(packet as u16);
        let timestamp = stream.first_timestamp.wrapping_add((packet * spp) as u32);
        let table = &plan.tables[stream.tone];
        let header_pt = marker | plan.codec.payload_type();
        let ok = build_udp_frame(
            &mut self.frame,
            &plan.vlans,
            &Endpoint {
                port: src_port,
                ..src
            },
            &Endpoint {
                port: dst_port,
                ..dst
            },
            IpFields { id, ttl },
            |buf| {
                buf.extend_from_slice(&[0x80, header_pt]);
                buf.extend_from_slice(&seq.to_be_bytes());
                buf.extend_from_slice(&timestamp.to_be_bytes());
                buf.extend_from_slice(&stream.ssrc.to_be_bytes());
                table.extend(buf, packet * spp, spp as usize);
            },
        );
        if !ok {
            bail!("RTP packet too large for one UDP datagram");
        }
        self.writer.write_packet(plan.start_us + now, &self.frame)?;
        self.totals.frames += 1;
        self.totals.rtp += 1;
        Ok(())
    }
}

/// Uniform extra delay in `0..=max_us`.
fn jitter(rng: &mut Rng, max_us: u64) -> u64 {
    if max_us == 0 {
        0
    } else {
        rng.range(0, max_us + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(options: &[&str]) -> SynthArgs {
        SynthArgs::try_parse_from([&["-o", "t.pcap"][..], options].concat()).unwrap()
    }

    #[test]
    fn rng_is_deterministic_and_in_range() {
        let mut a = Rng::new(1, 2);
        let mut b = Rng::new(1, 2);
        let mut c = Rng::new(1, 3);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        assert_eq!(xs, (0..8).map(|_| b.next_u64()).collect::<Vec<_>>());
        assert_ne!(xs, (0..8).map(|_| c.next_u64()).collect::<Vec<_>>());
        for _ in 0..1000 {
            assert!((10..20).contains(&a.range(10, 20)));
        }
        assert_eq!(a.range(5, 5), 5);
        assert!(!a.chance(0.0));
        assert!(a.chance(1.0));
        let hits = (0..10_000).filter(|_| a.chance(0.25)).count();
        assert!((2_200..2_800).contains(&hits), "{hits}");
    }

    #[test]
    fn plan_timing_invariants() {
        let a = args(&["--calls", "50", "--concurrency", "7", "--jitter-ms", "15"]);
        let plan = Plan::new(&a);
        assert_eq!(plan.packets_per_stream, 250);
        for call in &plan.calls {
            let t = call.sip_us;
            assert!(t.windows(2).all(|w| w[0] < w[1]), "{t:?}");
            assert!((500_000..2_000_000).contains(&(t[3] - t[0])));
            for s in &call.streams {
                assert!(s.start_us > t[3] && s.start_us < t[3] + 20_000);
                let last = s.start_us + 249 * 20_000 + 15_000;
                assert!(t[5] > last, "BYE after the last (jittered) RTP packet");
            }
        }
        // Calls of one slot never overlap.
        for slot in 0..7 {
            let spans: Vec<_> = plan.calls.iter().skip(slot).step_by(7).collect();
            for w in spans.windows(2) {
                assert!(w[1].sip_us[0] > w[0].sip_us[6]);
            }
        }
    }

    #[test]
    fn reorder_probability_matches_fraction() {
        let plan = Plan::new(&args(&["--reorder", "20"]));
        // q = p / (2 - p): pairs started per slot for 20 % of packets displaced.
        assert!((plan.swap - 0.2 / 1.8).abs() < 1e-12);
        assert_eq!(Plan::new(&args(&["--reorder", "100"])).swap, 1.0);
        assert_eq!(Plan::new(&args(&[])).swap, 0.0);
    }

    #[test]
    fn numbers_and_call_ids() {
        assert_eq!(Plan::caller_number(0), "1000");
        assert_eq!(Plan::callee_number(0), "+39025550000");
        assert_eq!(Plan::callee_number(1), "+39025557919");
        let plan = Plan::new(&args(&["--calls", "3", "--ipv6"]));
        let id = plan.call_id(2);
        assert!(id.ends_with("2@[fd00:1::3]"), "{id}");
    }

    #[test]
    fn manifest_path_defaults_to_json_beside_output() {
        assert_eq!(args(&[]).manifest_path(), PathBuf::from("t.json"));
        let a = args(&["--manifest", "m/x.json"]);
        assert_eq!(a.manifest_path(), PathBuf::from("m/x.json"));
    }

    #[test]
    fn zero_calls_give_an_empty_capture() {
        let mut out = Vec::new();
        let manifest = generate(&args(&["--calls", "0"]), &mut out).unwrap();
        assert_eq!(out.len(), 24);
        assert!(manifest.calls.is_empty());
        assert_eq!(manifest.totals, Totals::default());
    }
}
