//! End-to-end transport tests on the committed SIPp captures, rewritten the
//! way real mirror ports deliver them:
//!
//! - the SIP-over-TCP call (`pcaps/sipp-tcp-pcmu.pcap`) with every SIP
//!   segment cut in three, sent out of order and partly twice;
//! - the UDP call (`pcaps/sipp-pcmu.pcap`) with every frame (SIP and RTP)
//!   wrapped in GRE/TEB, GRE/PPP, ERSPAN II, ERSPAN III, VXLAN, MPLS, PPPoE,
//!   and in a nest of several of them.
//!
//! Each rewritten capture must give the same recording as the original: one
//! call, caller 1001 local (direction 2, LEFT) with its 500 Hz tone, callee
//! 5551234 with its 1200 Hz tone on the RIGHT; and the transport counters in
//! the summary must show the work done.

mod common;

use common::{read_wav, ready_recordings, run_ok, tone_ratio};
use serde_json::Value;
use std::path::{Path, PathBuf};

const CALLER_NET: &str = "127.0.1.0/24";

fn pcap_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("pcaps")
        .join(name)
}

/// One frame: timestamp in microseconds and bytes.
#[derive(Clone)]
struct Frame {
    ts_us: i64,
    data: Vec<u8>,
}

/// Reads a little-endian microsecond pcap with Ethernet frames.
fn read_pcap(path: &Path) -> Vec<Frame> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
    assert_eq!(u32::from_le_bytes(bytes[20..24].try_into().unwrap()), 1);
    let mut frames = Vec::new();
    let mut pos = 24;
    while pos + 16 <= bytes.len() {
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let ts_us = i64::from(word(pos)) * 1_000_000 + i64::from(word(pos + 4));
        let len = word(pos + 8) as usize;
        frames.push(Frame {
            ts_us,
            data: bytes[pos + 16..pos + 16 + len].to_vec(),
        });
        pos += 16 + len;
    }
    frames
}

fn write_pcap(path: &Path, frames: &[Frame]) {
    let mut out = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&262_144u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for f in frames {
        out.extend_from_slice(&((f.ts_us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((f.ts_us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&f.data);
    }
    std::fs::write(path, out).unwrap();
}

/// Replays `frames` with the caller's network local; returns the summary and
/// the one recording's WAV path and metadata.
fn replay(name: &str, frames: &[Frame]) -> (Value, PathBuf, Value) {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join(name);
    write_pcap(&pcap, frames);
    let spool = dir.path().join("spool");
    let summary_path = dir.path().join("summary.json");
    run_ok(&[
        "replay",
        "--local-net",
        CALLER_NET,
        "--spool",
        spool.to_str().unwrap(),
        "--no-upload",
        "--summary-json",
        summary_path.to_str().unwrap(),
        pcap.to_str().unwrap(),
    ]);
    let summary: Value = serde_json::from_slice(&std::fs::read(&summary_path).unwrap()).unwrap();
    let mut recordings = ready_recordings(&spool);
    assert_eq!(recordings.len(), 1, "{name}: one recording: {summary}");
    let (wav, meta) = recordings.remove(0);
    // Keep the WAV beyond the temporary directory.
    let kept = std::env::temp_dir().join(format!(
        "taprec-transport-{}-{name}.wav",
        std::process::id()
    ));
    std::fs::copy(&wav, &kept).unwrap();
    (summary, kept, meta)
}

/// The recording is the SIPp call: numbers, direction, tones per channel.
fn check_call(name: &str, summary: &Value, wav: &Path, meta: &Value) {
    assert_eq!(summary["calls_seen"], 1, "{name}: {summary}");
    assert_eq!(summary["recorded"], 1, "{name}: {summary}");
    assert_eq!(summary["decode_errors"], 0, "{name}: {summary}");
    assert_eq!(meta["direction"], 2, "{name}: {meta}");
    assert_eq!(meta["localParty"]["phoneNumber"], "1001", "{name}: {meta}");
    assert_eq!(
        meta["remoteParty"]["phoneNumber"], "5551234",
        "{name}: {meta}"
    );
    let w = read_wav(wav);
    std::fs::remove_file(wav).ok();
    assert_eq!(w.format_tag, 7, "{name}: u-law");
    assert!(w.seconds() > 4.0, "{name}: {} s", w.seconds());
    let mid = |s: &[i16]| s[8000..s.len() - 8000].to_vec();
    let (left, right) = (mid(&w.left), mid(&w.right));
    assert!(tone_ratio(&left, 500.0) > 0.8, "{name}: 500 Hz on the left");
    assert!(
        tone_ratio(&left, 1200.0) < 0.05,
        "{name}: no 1200 Hz on the left"
    );
    assert!(
        tone_ratio(&right, 1200.0) > 0.8,
        "{name}: 1200 Hz on the right"
    );
    assert!(
        tone_ratio(&right, 500.0) < 0.05,
        "{name}: no 500 Hz on the right"
    );
}

fn be16(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([b[at], b[at + 1]]))
}

/// Rebuilds an IPv4/TCP frame with a new sequence number and payload.
fn tcp_frame(frame: &[u8], seq: u32, payload: &[u8]) -> Vec<u8> {
    let ip_start = 14;
    let ihl = usize::from(frame[ip_start] & 0x0f) * 4;
    let tcp_start = ip_start + ihl;
    let tcp_len = usize::from(frame[tcp_start + 12] >> 4) * 4;
    let mut out = frame[..tcp_start + tcp_len].to_vec();
    out.extend_from_slice(payload);
    let total = (ihl + tcp_len + payload.len()) as u16;
    out[ip_start + 2..ip_start + 4].copy_from_slice(&total.to_be_bytes());
    out[tcp_start + 4..tcp_start + 8].copy_from_slice(&seq.to_be_bytes());
    out
}

#[test]
fn sip_over_tcp_cut_reordered_and_retransmitted() {
    let frames = read_pcap(&pcap_path("sipp-tcp-pcmu.pcap"));
    let mut out = Vec::new();
    let mut split = 0;
    for f in &frames {
        let d = &f.data;
        let is_tcp = be16(d, 12) == 0x0800 && d[14 + 9] == 6;
        if !is_tcp {
            out.push(f.clone());
            continue;
        }
        let ihl = usize::from(d[14] & 0x0f) * 4;
        let tcp = 14 + ihl;
        let payload_start = tcp + usize::from(d[tcp + 12] >> 4) * 4;
        let end = 14 + be16(d, 16);
        let payload = &d[payload_start..end];
        if payload.len() < 30 {
            out.push(f.clone());
            continue;
        }
        split += 1;
        let seq = u32::from_be_bytes(d[tcp + 4..tcp + 8].try_into().unwrap());
        let cuts = [0, payload.len() / 3, 2 * payload.len() / 3, payload.len()];
        let part = |i: usize| Frame {
            ts_us: f.ts_us,
            data: tcp_frame(d, seq + cuts[i] as u32, &payload[cuts[i]..cuts[i + 1]]),
        };
        // Third part first, then the first twice, then an overlapping
        // retransmission of parts 1-2, then the second.
        out.push(part(2));
        out.push(part(0));
        out.push(part(0));
        out.push(Frame {
            ts_us: f.ts_us,
            data: tcp_frame(d, seq, &payload[..cuts[2]]),
        });
        out.push(part(1));
    }
    assert_eq!(split, 6, "six SIP messages over TCP");
    let (summary, wav, meta) = replay("tcp-chopped.pcap", &out);
    let tcp = &summary["transport"]["tcp"];
    assert_eq!(tcp["messages"], 6, "{summary}");
    assert!(tcp["out_of_order"].as_u64().unwrap() >= 6, "{summary}");
    assert!(tcp["retransmitted"].as_u64().unwrap() >= 6, "{summary}");
    assert_eq!(tcp["gaps"], 0, "{summary}");
    check_call("tcp-chopped", &summary, &wav, &meta);
}

#[test]
fn sip_over_tcp_with_a_lost_segment_resyncs() {
    // The ACK's middle third never arrives: that message is lost, the
    // stream resynchronises on the BYE and the call still ends there.
    let frames = read_pcap(&pcap_path("sipp-tcp-pcmu.pcap"));
    let mut out = Vec::new();
    for f in &frames {
        let d = &f.data;
        let is_tcp = be16(d, 12) == 0x0800 && d[14 + 9] == 6;
        let ihl = usize::from(d[14] & 0x0f) * 4;
        let tcp = 14 + ihl;
        if !is_tcp {
            out.push(f.clone());
            continue;
        }
        let payload_start = tcp + usize::from(d[tcp + 12] >> 4) * 4;
        let payload = &d[payload_start..14 + be16(d, 16)];
        if !payload.starts_with(b"ACK ") {
            out.push(f.clone());
            continue;
        }
        let seq = u32::from_be_bytes(d[tcp + 4..tcp + 8].try_into().unwrap());
        let (a, b) = (payload.len() / 3, 2 * payload.len() / 3);
        out.push(Frame {
            ts_us: f.ts_us,
            data: tcp_frame(d, seq, &payload[..a]),
        });
        out.push(Frame {
            ts_us: f.ts_us,
            data: tcp_frame(d, seq + b as u32, &payload[b..]),
        });
    }
    let (summary, wav, meta) = replay("tcp-lost.pcap", &out);
    let tcp = &summary["transport"]["tcp"];
    assert_eq!(tcp["messages"], 5, "the ACK is lost: {summary}");
    assert_eq!(tcp["gaps"], 1, "{summary}");
    assert_eq!(tcp["resyncs"], 1, "{summary}");
    check_call("tcp-lost", &summary, &wav, &meta);
}

/// An outer IPv4 header (192.0.2.1 -> 192.0.2.2) around `payload`.
fn outer_ipv4(protocol: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&(20 + payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&[
        0, 1, 0x40, 0, 64, protocol, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
    ]);
    p.extend_from_slice(payload);
    p
}

fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0xaa, 0x02, 0, 0, 0, 0, 0xbb];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// The IP packet of an Ethernet frame.
fn ip_of(frame: &[u8]) -> &[u8] {
    assert_eq!(be16(frame, 12), 0x0800);
    &frame[14..]
}

fn gre_teb(frame: &[u8]) -> Vec<u8> {
    let mut g = vec![0, 0, 0x65, 0x58];
    g.extend_from_slice(frame);
    ethernet(0x0800, &outer_ipv4(47, &g))
}

fn gre_ppp(frame: &[u8]) -> Vec<u8> {
    let mut ppp = vec![0xff, 0x03, 0x00, 0x21];
    ppp.extend_from_slice(ip_of(frame));
    let mut g = vec![0x30, 0x01, 0x88, 0x0b];
    g.extend_from_slice(&(ppp.len() as u16).to_be_bytes());
    g.extend_from_slice(&[0, 9, 0, 0, 0, 1]);
    g.extend_from_slice(&ppp);
    ethernet(0x0800, &outer_ipv4(47, &g))
}

fn erspan_ii(frame: &[u8]) -> Vec<u8> {
    let mut g = vec![0x10, 0, 0x88, 0xbe, 0, 0, 0, 1];
    g.extend_from_slice(&[0x10, 0x64, 0x00, 0x07, 0, 0, 0, 0]);
    g.extend_from_slice(frame);
    ethernet(0x0800, &outer_ipv4(47, &g))
}

fn erspan_iii(frame: &[u8]) -> Vec<u8> {
    let mut g = vec![0x10, 0, 0x22, 0xeb, 0, 0, 0, 1];
    // ver 2, VLAN 100, session 7, timestamp, SGT, O bit + 8-byte subheader.
    g.extend_from_slice(&[0x20, 0x64, 0x00, 0x07, 1, 2, 3, 4, 0, 0, 0, 1]);
    g.extend_from_slice(&[0xee; 8]);
    g.extend_from_slice(frame);
    ethernet(0x0800, &outer_ipv4(47, &g))
}

fn vxlan(frame: &[u8]) -> Vec<u8> {
    let mut v = vec![0x08, 0, 0, 0, 0, 0x12, 0x34, 0];
    v.extend_from_slice(frame);
    let mut u = 49152u16.to_be_bytes().to_vec();
    u.extend_from_slice(&4789u16.to_be_bytes());
    u.extend_from_slice(&(8 + v.len() as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(&v);
    ethernet(0x0800, &outer_ipv4(17, &u))
}

fn mpls(frame: &[u8]) -> Vec<u8> {
    let mut m = vec![0x00, 0x10, 0x00, 0x40, 0x00, 0x20, 0x01, 0x40];
    m.extend_from_slice(ip_of(frame));
    ethernet(0x8847, &m)
}

fn pppoe(frame: &[u8]) -> Vec<u8> {
    let ip = ip_of(frame);
    let mut p = vec![0x11, 0, 0x00, 0x2a];
    p.extend_from_slice(&(ip.len() as u16 + 2).to_be_bytes());
    p.extend_from_slice(&[0x00, 0x21]);
    p.extend_from_slice(ip);
    ethernet(0x8864, &p)
}

/// MPLS around VXLAN around GRE/TEB around the frame.
fn nested(frame: &[u8]) -> Vec<u8> {
    mpls(&vxlan(&gre_teb(frame)))
}

#[test]
fn udp_call_through_every_tunnel_kind() {
    let frames = read_pcap(&pcap_path("sipp-pcmu.pcap"));
    let n = frames.len() as u64;
    type Wrap = fn(&[u8]) -> Vec<u8>;
    type Counts<'a> = &'a [(&'a str, u64)];
    let kinds: [(&str, Wrap, Counts); 8] = [
        ("gre-teb", gre_teb, &[("gre", n)]),
        ("gre-ppp", gre_ppp, &[("gre", n)]),
        ("erspan-ii", erspan_ii, &[("erspan_ii", n)]),
        ("erspan-iii", erspan_iii, &[("erspan_iii", n)]),
        ("vxlan", vxlan, &[("vxlan", n)]),
        ("mpls", mpls, &[("mpls", n)]),
        ("pppoe", pppoe, &[("pppoe", n)]),
        ("nested", nested, &[("mpls", n), ("vxlan", n), ("gre", n)]),
    ];
    for (name, wrap, counts) in kinds {
        let wrapped: Vec<Frame> = frames
            .iter()
            .map(|f| Frame {
                ts_us: f.ts_us,
                data: wrap(&f.data),
            })
            .collect();
        let (summary, wav, meta) = replay(&format!("{name}.pcap"), &wrapped);
        let tunnels = &summary["transport"]["tunnels"];
        for (kind, want) in counts {
            assert_eq!(tunnels[kind], *want, "{name}: {kind}: {summary}");
        }
        assert!(
            summary["rtp_packets"].as_u64().unwrap() > 400,
            "{name}: {summary}"
        );
        check_call(name, &summary, &wav, &meta);
    }
}
