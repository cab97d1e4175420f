//! End-to-end tests on real SIPp calls captured on loopback.
//!
//! The captures in `pcaps/sipp-*.pcap` were made by `scripts/record-sipp-calls.sh`
//! (their `.json` sidecars say how): caller `"Alice Caller" <sip:1001@127.0.1.x>`
//! streams one tone, callee `<sip:5551234@127.0.2.y>` another, and every call's
//! tones are listed in the sidecar. Each test replays a capture through
//! `taprec replay`, then checks the WAV and metadata against what the capture
//! itself says (Call-ID, 200 OK and BYE times, first RTP packet of each side),
//! read here with a small independent pcap/SIP parser.

mod common;

use common::{read_wav, ready_recordings, rms, run_ok, tone_onset, tone_ratio, Stereo};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const CALLER_NUMBER: &str = "1001";
const CALLEE_NUMBER: &str = "5551234";
const CALLER_NET: &str = "127.0.1.0/24";
const CALLEE_NET: &str = "127.0.2.0/24";

fn pcap_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("pcaps")
        .join(name)
}

// ---------------------------------------------------------------------------
// A tiny classic-pcap reader/writer (little-endian, microseconds, Ethernet).
// ---------------------------------------------------------------------------

/// One captured frame.
#[derive(Clone)]
struct Frame {
    ts_us: i64,
    data: Vec<u8>,
}

/// A classic pcap file: its 24-byte global header and its frames.
struct Pcap {
    header: Vec<u8>,
    frames: Vec<Frame>,
}

fn read_pcap(path: &Path) -> Pcap {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_eq!(
        &bytes[0..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian microsecond pcap"
    );
    let linktype = u32::from_le_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!(linktype, 1, "Ethernet link type");
    let mut frames = Vec::new();
    let mut pos = 24;
    while pos + 16 <= bytes.len() {
        let sec = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as i64;
        let usec = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as i64;
        let incl = u32::from_le_bytes(bytes[pos + 8..pos + 12].try_into().unwrap()) as usize;
        let data = bytes[pos + 16..pos + 16 + incl].to_vec();
        frames.push(Frame {
            ts_us: sec * 1_000_000 + usec,
            data,
        });
        pos += 16 + incl;
    }
    assert_eq!(pos, bytes.len(), "pcap ends on a record boundary");
    Pcap {
        header: bytes[0..24].to_vec(),
        frames,
    }
}

fn write_pcap(path: &Path, pcap: &Pcap) {
    let mut out = pcap.header.clone();
    for f in &pcap.frames {
        out.extend_from_slice(&((f.ts_us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((f.ts_us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&f.data);
    }
    std::fs::write(path, out).unwrap();
}

/// A UDP datagram inside an Ethernet (optionally 802.1Q-tagged) IPv4 frame.
struct Udp<'a> {
    src: [u8; 4],
    dst: [u8; 4],
    payload: &'a [u8],
}

fn parse_udp(frame: &[u8]) -> Option<Udp<'_>> {
    let mut off = 12;
    let mut ethertype = u16::from_be_bytes([frame[off], frame[off + 1]]);
    while ethertype == 0x8100 {
        off += 4;
        ethertype = u16::from_be_bytes([frame[off], frame[off + 1]]);
    }
    if ethertype != 0x0800 {
        return None;
    }
    let ip = &frame[off + 2..];
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    if ip[9] != 17 {
        return None;
    }
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    let udp = &ip[ihl..total];
    Some(Udp {
        src: ip[12..16].try_into().unwrap(),
        dst: ip[16..20].try_into().unwrap(),
        payload: &udp[8..],
    })
}

/// The payload of a TCP segment inside an Ethernet IPv4 frame (SIPp sends
/// each SIP message in one segment).
fn parse_tcp(frame: &[u8]) -> Option<Udp<'_>> {
    if u16::from_be_bytes([frame[12], frame[13]]) != 0x0800 {
        return None;
    }
    let ip = &frame[14..];
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    if ip[9] != 6 {
        return None;
    }
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    let tcp = &ip[ihl..total];
    let data_offset = ((tcp[12] >> 4) as usize) * 4;
    Some(Udp {
        src: ip[12..16].try_into().unwrap(),
        dst: ip[16..20].try_into().unwrap(),
        payload: &tcp[data_offset..],
    })
}

fn is_rtp(payload: &[u8]) -> bool {
    payload.len() >= 12 && payload[0] >> 6 == 2 && matches!(payload[1] & 0x7f, 0 | 8)
}

/// What the capture says about one call.
#[derive(Debug, Default, Clone)]
struct CallFacts {
    call_id: String,
    caller: [u8; 4],
    callee: [u8; 4],
    answer_us: i64,
    bye_us: i64,
    first_caller_rtp_us: i64,
    first_callee_rtp_us: i64,
}

fn sip_header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads the SIP dialogs and RTP streams of a SIPp capture (SIP over UDP
/// or TCP, RTP over UDP).
fn call_facts(pcap: &Pcap) -> Vec<CallFacts> {
    let mut calls: BTreeMap<String, CallFacts> = BTreeMap::new();
    let mut first_rtp: BTreeMap<([u8; 4], [u8; 4]), i64> = BTreeMap::new();
    for f in &pcap.frames {
        let Some(udp) = parse_udp(&f.data).or_else(|| parse_tcp(&f.data)) else {
            continue;
        };
        if is_rtp(udp.payload) {
            first_rtp.entry((udp.src, udp.dst)).or_insert(f.ts_us);
            continue;
        }
        let Ok(msg) = std::str::from_utf8(udp.payload) else {
            continue;
        };
        let Some(call_id) = sip_header(msg, "Call-ID") else {
            continue;
        };
        let cseq = sip_header(msg, "CSeq").unwrap_or("");
        let entry = calls
            .entry(call_id.to_string())
            .or_insert_with(|| CallFacts {
                call_id: call_id.to_string(),
                ..Default::default()
            });
        if msg.starts_with("INVITE ") {
            entry.caller = udp.src;
            entry.callee = udp.dst;
        } else if msg.starts_with("SIP/2.0 200") && cseq.ends_with("INVITE") {
            if entry.answer_us == 0 {
                entry.answer_us = f.ts_us;
            }
        } else if msg.starts_with("BYE ") && entry.bye_us == 0 {
            entry.bye_us = f.ts_us;
        }
    }
    let mut out: Vec<CallFacts> = calls.into_values().collect();
    for c in &mut out {
        assert!(
            c.answer_us > 0 && c.bye_us > 0,
            "capture has 200 OK and BYE for {}",
            c.call_id
        );
        c.first_caller_rtp_us = first_rtp[&(c.caller, c.callee)];
        c.first_callee_rtp_us = first_rtp[&(c.callee, c.caller)];
    }
    out
}

/// Tones per call from the capture's sidecar: caller IP -> (caller Hz, callee Hz).
fn sidecar_tones(pcap_name: &str) -> BTreeMap<[u8; 4], (f64, f64)> {
    let path = pcap_path(pcap_name).with_extension("json");
    let side: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    side["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let ip: std::net::Ipv4Addr = c["caller_ip"].as_str().unwrap().parse().unwrap();
            (
                ip.octets(),
                (
                    c["caller_tone_hz"].as_f64().unwrap(),
                    c["callee_tone_hz"].as_f64().unwrap(),
                ),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Metadata helpers.
// ---------------------------------------------------------------------------

/// Parses "YYYY-MM-DDTHH:MM:SS.ffffffZ" into microseconds since the epoch.
fn parse_start(s: &str) -> i64 {
    assert!(s.ends_with('Z'), "startDateTime {s} is UTC with a Z");
    let t = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.fZ")
        .unwrap_or_else(|e| panic!("startDateTime {s}: {e}"));
    t.and_utc().timestamp_micros()
}

/// Parses an ISO 8601 duration such as "PT5.02S", "PT1M30S" or "PT1H2M3.5S".
fn parse_duration(s: &str) -> f64 {
    let rest = s
        .strip_prefix("PT")
        .unwrap_or_else(|| panic!("duration {s} starts with PT"));
    let mut total = 0.0;
    let mut num = String::new();
    for ch in rest.chars() {
        match ch {
            '0'..='9' | '.' => num.push(ch),
            'H' | 'M' | 'S' => {
                let v: f64 = num.parse().unwrap_or_else(|_| panic!("duration {s}"));
                total += v * match ch {
                    'H' => 3600.0,
                    'M' => 60.0,
                    _ => 1.0,
                };
                num.clear();
            }
            _ => panic!("unexpected {ch:?} in duration {s}"),
        }
    }
    assert!(num.is_empty(), "duration {s} ends with a unit");
    total
}

// ---------------------------------------------------------------------------
// Replay and checks.
// ---------------------------------------------------------------------------

struct Replay {
    _dir: tempfile::TempDir,
    summary: Value,
    recordings: Vec<(PathBuf, Value)>,
}

fn replay(pcap: &Path, local_net: &str, extra: &[&str]) -> Replay {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let summary_path = dir.path().join("summary.json");
    let mut args = vec![
        "replay",
        "--local-net",
        local_net,
        "--spool",
        spool.to_str().unwrap(),
        "--no-upload",
        "--summary-json",
        summary_path.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push(pcap.to_str().unwrap());
    run_ok(&args);
    let summary_bytes = std::fs::read(&summary_path)
        .unwrap_or_else(|e| panic!("taprec wrote no summary {}: {e}", summary_path.display()));
    let summary: Value = serde_json::from_slice(&summary_bytes).expect("summary JSON");
    let recordings = ready_recordings(&spool);
    Replay {
        _dir: dir,
        summary,
        recordings,
    }
}

/// How a replay is expected to come out.
#[derive(Clone, Copy)]
struct Expect {
    /// true: local net holds the caller (outgoing); false: the callee (incoming).
    caller_local: bool,
    /// WAV format tag: 7 u-law, 6 A-law, 1 PCM-16.
    format_tag: u16,
    /// Packet loss and reordering were injected: looser tone checks.
    lossy: bool,
}

/// Blocks of 100 ms between 1 s after the start and 0.5 s before the end.
fn middle_blocks(samples: &[i16]) -> Vec<&[i16]> {
    let start = 8000;
    let end = samples.len().saturating_sub(4000);
    assert!(
        end > start + 8000,
        "at least 1 s of call to look at ({} samples)",
        samples.len()
    );
    samples[start..end].chunks_exact(800).collect()
}

/// `own` Hz must fill the channel and `other` Hz must be absent.
fn check_channel(name: &str, samples: &[i16], own: f64, other: f64, lossy: bool) {
    let blocks = middle_blocks(samples);
    let mut good = 0;
    for (i, b) in blocks.iter().enumerate() {
        let r_own = tone_ratio(b, own);
        let r_other = tone_ratio(b, other);
        assert!(
            r_other < 0.05,
            "{name} block {i}: {other} Hz present (ratio {r_other:.3})"
        );
        if lossy {
            if r_own > 0.5 && rms(b) > 1000.0 {
                good += 1;
            }
        } else {
            assert!(
                r_own > 0.9 && rms(b) > 3000.0,
                "{name} block {i}: {own} Hz ratio {r_own:.3}, rms {:.0}",
                rms(b)
            );
            good += 1;
        }
    }
    assert!(
        good * 10 >= blocks.len() * 9,
        "{name}: only {good} of {} blocks hold the {own} Hz tone",
        blocks.len()
    );
}

fn check_replay(r: &Replay, facts: &[CallFacts], tones: &BTreeMap<[u8; 4], (f64, f64)>, e: Expect) {
    let n = facts.len();
    assert_eq!(r.summary["calls_seen"], n, "summary: {}", r.summary);
    assert_eq!(r.summary["recorded"], n, "summary: {}", r.summary);
    assert_eq!(
        r.summary["skipped"].as_array().map(Vec::len),
        Some(0),
        "summary: {}",
        r.summary
    );
    assert_eq!(
        r.summary["recordings"].as_array().map(Vec::len),
        Some(n),
        "summary: {}",
        r.summary
    );
    assert_eq!(r.recordings.len(), n, "one recording per call");

    for call in facts {
        let (wav, meta) = r
            .recordings
            .iter()
            .find(|(_, m)| m["pbxCallId"] == call.call_id.as_str())
            .unwrap_or_else(|| panic!("no recording with pbxCallId {}", call.call_id));
        let ctx = format!("call {} ({})", call.call_id, wav.display());
        let (caller_hz, callee_hz) = tones[&call.caller];

        // Metadata.
        let (direction, local, remote) = if e.caller_local {
            (2, CALLER_NUMBER, CALLEE_NUMBER)
        } else {
            (1, CALLEE_NUMBER, CALLER_NUMBER)
        };
        assert_eq!(meta["direction"], direction, "{ctx}: {meta}");
        assert_eq!(meta["localParty"]["phoneNumber"], local, "{ctx}: {meta}");
        assert!(
            meta["localParty"]["username"]
                .as_str()
                .is_some_and(|u| !u.is_empty()),
            "{ctx}: localParty.username set: {meta}"
        );
        assert_eq!(meta["remoteParty"]["phoneNumber"], remote, "{ctx}: {meta}");
        assert_eq!(meta["preserved"], false, "{ctx}: {meta}");
        assert!(meta["notes"].is_string(), "{ctx}: notes: {meta}");
        let start_us = parse_start(meta["startDateTime"].as_str().unwrap());
        assert!(
            (start_us - call.answer_us).abs() <= 1000,
            "{ctx}: startDateTime {} vs 200 OK at {} us",
            meta["startDateTime"],
            call.answer_us
        );
        let talk = (call.bye_us - call.answer_us) as f64 / 1e6;
        let dur = parse_duration(meta["duration"].as_str().unwrap());
        assert!(
            (dur - talk).abs() <= 1.0,
            "{ctx}: duration {dur} s vs 200 OK to BYE {talk} s"
        );

        // Audio.
        let w: Stereo = read_wav(wav);
        assert_eq!(w.format_tag, e.format_tag, "{ctx}: format tag");
        assert!(
            (w.seconds() - talk).abs() <= 1.0,
            "{ctx}: WAV {} s vs talk {talk} s",
            w.seconds()
        );
        let (local_hz, remote_hz) = if e.caller_local {
            (caller_hz, callee_hz)
        } else {
            (callee_hz, caller_hz)
        };
        check_channel(
            &format!("{ctx} left"),
            &w.left,
            local_hz,
            remote_hz,
            e.lossy,
        );
        check_channel(
            &format!("{ctx} right"),
            &w.right,
            remote_hz,
            local_hz,
            e.lossy,
        );

        // Alignment: each tone starts where the capture says its first packet came.
        if !e.lossy {
            let (local_first, remote_first) = if e.caller_local {
                (call.first_caller_rtp_us, call.first_callee_rtp_us)
            } else {
                (call.first_callee_rtp_us, call.first_caller_rtp_us)
            };
            for (name, samples, hz, first_us) in [
                ("left", &w.left, local_hz, local_first),
                ("right", &w.right, remote_hz, remote_first),
            ] {
                let onset = tone_onset(samples, hz)
                    .unwrap_or_else(|| panic!("{ctx}: no {hz} Hz onset on the {name} channel"));
                let got = onset as f64 / 8000.0;
                let want = (first_us - call.answer_us) as f64 / 1e6;
                assert!(
                    (got - want).abs() <= 0.060,
                    "{ctx}: {name} tone starts at {got:.3} s, capture says {want:.3} s"
                );
            }
        }
    }
}

fn check_committed(name: &str, format_tag: u16) {
    let path = pcap_path(name);
    let facts = call_facts(&read_pcap(&path));
    let tones = sidecar_tones(name);
    let r = replay(&path, CALLER_NET, &[]);
    check_replay(
        &r,
        &facts,
        &tones,
        Expect {
            caller_local: true,
            format_tag,
            lossy: false,
        },
    );
    let r = replay(&path, CALLEE_NET, &[]);
    check_replay(
        &r,
        &facts,
        &tones,
        Expect {
            caller_local: false,
            format_tag,
            lossy: false,
        },
    );
}

#[test]
fn sipp_pcmu_call() {
    check_committed("sipp-pcmu.pcap", 7);
}

#[test]
fn sipp_pcma_call() {
    check_committed("sipp-pcma.pcap", 6);
}

#[test]
fn sipp_20_concurrent_pcmu_calls() {
    let facts = call_facts(&read_pcap(&pcap_path("sipp-pcmu-20calls.pcap")));
    assert_eq!(facts.len(), 20);
    check_committed("sipp-pcmu-20calls.pcap", 7);
}

#[test]
fn sipp_pcm16_output_format() {
    for name in ["sipp-pcmu.pcap", "sipp-pcma.pcap"] {
        let path = pcap_path(name);
        let facts = call_facts(&read_pcap(&path));
        let r = replay(&path, CALLER_NET, &["--format", "pcm16"]);
        let e = Expect {
            caller_local: true,
            format_tag: 1,
            lossy: false,
        };
        check_replay(&r, &facts, &sidecar_tones(name), e);
    }
}

// ---------------------------------------------------------------------------
// Damaged variants of the committed captures.
// ---------------------------------------------------------------------------

/// A small seeded generator (xorshift64*), so the damage is the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// true with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// Drops about `loss` of the RTP packets and swaps some RTP neighbours (the
/// frames change places, capture times stay in order).
fn lossy(pcap: &Pcap, loss: f64, seed: u64) -> (Pcap, usize, usize) {
    let mut rng = Rng(seed);
    let mut frames: Vec<Frame> = Vec::new();
    let mut dropped = 0;
    for f in &pcap.frames {
        let rtp = parse_udp(&f.data).is_some_and(|u| is_rtp(u.payload));
        if rtp && rng.chance(loss) {
            dropped += 1;
            continue;
        }
        frames.push(f.clone());
    }
    let mut swapped = 0;
    let mut i = 0;
    while i + 1 < frames.len() {
        let both_rtp = [&frames[i], &frames[i + 1]]
            .iter()
            .all(|f| parse_udp(&f.data).is_some_and(|u| is_rtp(u.payload)));
        if both_rtp && rng.chance(0.05) {
            let a = std::mem::take(&mut frames[i].data);
            frames[i].data = std::mem::replace(&mut frames[i + 1].data, a);
            swapped += 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    (
        Pcap {
            header: pcap.header.clone(),
            frames,
        },
        dropped,
        swapped,
    )
}

/// Inserts an 802.1Q tag (VLAN 100) after the MAC addresses of every frame.
fn vlan_tagged(pcap: &Pcap) -> Pcap {
    let frames = pcap
        .frames
        .iter()
        .map(|f| {
            let mut data = f.data[..12].to_vec();
            data.extend_from_slice(&[0x81, 0x00, 0x00, 100]);
            data.extend_from_slice(&f.data[12..]);
            Frame {
                ts_us: f.ts_us,
                data,
            }
        })
        .collect();
    Pcap {
        header: pcap.header.clone(),
        frames,
    }
}

#[test]
fn five_percent_loss_and_reordering() {
    for (name, tag) in [("sipp-pcmu-20calls.pcap", 7), ("sipp-pcma.pcap", 6)] {
        let original = read_pcap(&pcap_path(name));
        let facts = call_facts(&original);
        let (damaged, dropped, swapped) = lossy(&original, 0.05, 0x7a9_2ec);
        let rtp = original
            .frames
            .iter()
            .filter(|f| parse_udp(&f.data).is_some_and(|u| is_rtp(u.payload)))
            .count();
        assert!(
            dropped * 100 >= rtp * 3 && dropped * 100 <= rtp * 7,
            "{dropped} of {rtp} dropped"
        );
        assert!(swapped > 0, "some packets reordered");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("lossy-{name}"));
        write_pcap(&path, &damaged);
        let r = replay(&path, CALLER_NET, &[]);
        let e = Expect {
            caller_local: true,
            format_tag: tag,
            lossy: true,
        };
        check_replay(&r, &facts, &sidecar_tones(name), e);
    }
}

#[test]
fn vlan_tagged_capture() {
    let name = "sipp-pcma.pcap";
    let original = read_pcap(&pcap_path(name));
    let facts = call_facts(&original);
    let tagged = vlan_tagged(&original);
    // The tagged copy still parses to the same calls.
    assert_eq!(call_facts(&tagged).len(), facts.len());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vlan-sipp-pcma.pcap");
    write_pcap(&path, &tagged);
    let r = replay(&path, CALLER_NET, &[]);
    let e = Expect {
        caller_local: true,
        format_tag: 6,
        lossy: false,
    };
    check_replay(&r, &facts, &sidecar_tones(name), e);
}

#[test]
fn sipp_tcp_pcmu_call() {
    // SIP over TCP 127.0.1.10:5061 -> 127.0.2.20:5060, RTP over UDP: exactly
    // the checks of sipp-pcmu.pcap (1 recording, u-law, caller tone left and
    // callee tone right when the caller is local and the reverse otherwise,
    // direction, numbers, timing, tones aligned within 60 ms).
    let path = pcap_path("sipp-tcp-pcmu.pcap");
    let facts = call_facts(&read_pcap(&path));
    assert_eq!(facts.len(), 1, "one call in the capture");
    check_committed("sipp-tcp-pcmu.pcap", 7);
    let r = replay(&path, CALLER_NET, &[]);
    let frames = read_pcap(&path).frames.len() as u64;
    assert_eq!(r.summary["frames"].as_u64(), Some(frames));
    let tcp = &r.summary["transport"]["tcp"];
    assert_eq!(tcp["messages"], 6, "summary: {}", r.summary);
    assert_eq!(
        tcp["closed"], 2,
        "both directions end with FIN: {}",
        r.summary
    );
}

// ---------------------------------------------------------------------------
// Live: make a fresh capture with SIPp and replay it.
// ---------------------------------------------------------------------------

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn live_sipp_call_capture_and_replay() {
    if !(have("sipp") && have("tcpdump") && have("sox") && have("timeout") && is_root()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but sipp/tcpdump/sox/timeout or root is missing"
        );
        eprintln!("skipping live SIPp test: needs sipp, tcpdump, sox and root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("live.pcap");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/record-sipp-calls.sh");
    let mut child = Command::new("timeout")
        .arg("120")
        .arg("bash")
        .arg(&script)
        .args(["-c", "pcma", "-n", "2", "-d", "3", "-o"])
        .arg(&out)
        .spawn()
        .unwrap();
    // `timeout` bounds the script; this loop bounds the wait for `timeout` itself.
    let mut status = None;
    for _ in 0..1300 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = status.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("record-sipp-calls.sh did not finish in time")
    });
    assert!(status.success(), "record-sipp-calls.sh failed: {status}");

    let pcap = read_pcap(&out);
    let facts = call_facts(&pcap);
    assert_eq!(facts.len(), 2, "two live calls captured");
    let side: Value =
        serde_json::from_slice(&std::fs::read(out.with_extension("json")).unwrap()).unwrap();
    let tones: BTreeMap<[u8; 4], (f64, f64)> = side["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let ip: std::net::Ipv4Addr = c["caller_ip"].as_str().unwrap().parse().unwrap();
            (
                ip.octets(),
                (
                    c["caller_tone_hz"].as_f64().unwrap(),
                    c["callee_tone_hz"].as_f64().unwrap(),
                ),
            )
        })
        .collect();
    let r = replay(&out, CALLER_NET, &[]);
    check_replay(
        &r,
        &facts,
        &tones,
        Expect {
            caller_local: true,
            format_tag: 6,
            lossy: false,
        },
    );
    let r = replay(&out, CALLEE_NET, &[]);
    check_replay(
        &r,
        &facts,
        &tones,
        Expect {
            caller_local: false,
            format_tag: 6,
            lossy: false,
        },
    );
}

// ---------------------------------------------------------------------------
// Self-checks of the helpers above (they pass without taprec).
// ---------------------------------------------------------------------------

#[test]
fn helper_iso_durations() {
    assert!((parse_duration("PT5.02S") - 5.02).abs() < 1e-9);
    assert!((parse_duration("PT1M30S") - 90.0).abs() < 1e-9);
    assert!((parse_duration("PT1H2M3.5S") - 3723.5).abs() < 1e-9);
    assert_eq!(parse_start("1970-01-01T00:00:01.000002Z"), 1_000_002);
}

#[test]
fn helper_capture_facts_match_sidecars() {
    for (name, calls) in [
        ("sipp-pcmu.pcap", 1),
        ("sipp-pcma.pcap", 1),
        ("sipp-pcmu-20calls.pcap", 20),
    ] {
        let pcap = read_pcap(&pcap_path(name));
        let facts = call_facts(&pcap);
        let tones = sidecar_tones(name);
        assert_eq!(facts.len(), calls, "{name}");
        assert_eq!(tones.len(), calls, "{name}");
        for c in &facts {
            assert!(
                tones.contains_key(&c.caller),
                "{name}: {:?} in sidecar",
                c.caller
            );
            let talk = (c.bye_us - c.answer_us) as f64 / 1e6;
            assert!(talk > 2.5 && talk < 6.0, "{name}: talk {talk}");
            assert!(c.first_caller_rtp_us >= c.answer_us && c.first_callee_rtp_us >= c.answer_us);
        }
        // Writing and reading back gives the same frames.
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("copy.pcap");
        write_pcap(&copy, &pcap);
        assert_eq!(
            std::fs::read(&copy).unwrap(),
            std::fs::read(pcap_path(name)).unwrap()
        );
        // VLAN tagging keeps every frame parseable.
        assert_eq!(call_facts(&vlan_tagged(&pcap)).len(), calls);
    }
}
