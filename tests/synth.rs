//! The synthetic capture generator on its own: every frame parses with
//! independent parsers (pcap-parser, etherparse), SIP and RTP counts match the
//! manifest, tones decode to the manifest's frequencies, options take effect.

mod common;

use std::collections::HashMap;
use std::net::IpAddr;

use common::{ref_alaw, ref_ulaw, rms, tone_ratio};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use taprec::synth::{self, CallInfo, Manifest, Role, SynthArgs};

/// One UDP frame of a capture, copied out.
#[derive(Debug, Clone)]
struct Frame {
    micros: u64,
    vlans: Vec<(u16, u16)>,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    payload: Vec<u8>,
}

/// An RTP packet's fields.
#[derive(Debug, Clone)]
struct Rtp {
    micros: u64,
    marker: bool,
    pt: u8,
    seq: u16,
    timestamp: u32,
    ssrc: u32,
    payload: Vec<u8>,
}

fn rtp(micros: u64, payload: &[u8]) -> Rtp {
    assert!(payload.len() >= 12);
    assert_eq!(payload[0], 0x80, "RTP v2, no padding/extension/CSRC");
    Rtp {
        micros,
        marker: payload[1] & 0x80 != 0,
        pt: payload[1] & 0x7f,
        seq: u16::from_be_bytes([payload[2], payload[3]]),
        timestamp: u32::from_be_bytes(payload[4..8].try_into().unwrap()),
        ssrc: u32::from_be_bytes(payload[8..12].try_into().unwrap()),
        payload: payload[12..].to_vec(),
    }
}

fn args(options: &[&str]) -> SynthArgs {
    let mut all = vec!["-o", "unused.pcap"];
    all.extend_from_slice(options);
    SynthArgs::try_parse_from(all).unwrap()
}

fn generate(options: &[&str]) -> (Vec<u8>, Manifest) {
    let a = args(options);
    let mut bytes = Vec::new();
    let manifest = synth::generate(&a, &mut bytes).unwrap();
    (bytes, manifest)
}

/// Parses a whole capture, checking link type, time order and every checksum.
fn parse(bytes: &[u8]) -> Vec<Frame> {
    let capture = pcap_parser::PcapCapture::from_file(bytes).unwrap();
    assert_eq!(capture.header.network, pcap_parser::Linktype::ETHERNET);
    assert_eq!(capture.header.version_major, 2);
    let mut frames = Vec::new();
    let mut last = 0u64;
    for block in &capture.blocks {
        assert_eq!(block.caplen, block.origlen);
        assert!(block.ts_usec < 1_000_000);
        let micros = u64::from(block.ts_sec) * 1_000_000 + u64::from(block.ts_usec);
        assert!(micros >= last, "capture timestamps must not go back");
        last = micros;
        let sliced = SlicedPacket::from_ethernet(block.data).unwrap();
        let vlans: Vec<u16> = sliced
            .link_exts
            .iter()
            .map(|ext| match ext {
                etherparse::LinkExtSlice::Vlan(v) => v.vlan_identifier().value(),
                other => panic!("unexpected link extension {other:?}"),
            })
            .collect();
        // The TPID of each tag is the EtherType before it.
        let mut tpids = Vec::new();
        let eth = block.data;
        let mut pos = 12;
        while matches!(
            u16::from_be_bytes([eth[pos], eth[pos + 1]]),
            0x8100 | 0x88a8
        ) {
            tpids.push(u16::from_be_bytes([eth[pos], eth[pos + 1]]));
            pos += 4;
        }
        let Some(TransportSlice::Udp(udp)) = &sliced.transport else {
            panic!("not UDP")
        };
        let header = udp.to_header();
        let (src, dst, expected) = match sliced.net.as_ref().unwrap() {
            NetSlice::Ipv4(v4) => {
                let ip = v4.header().to_header();
                assert_eq!(
                    ip.header_checksum,
                    ip.calc_header_checksum(),
                    "IPv4 checksum"
                );
                assert!(ip.dont_fragment && !ip.more_fragments && ip.fragment_offset.value() == 0);
                let sum = header.calc_checksum_ipv4(&ip, udp.payload()).unwrap();
                (IpAddr::from(ip.source), IpAddr::from(ip.destination), sum)
            }
            NetSlice::Ipv6(v6) => {
                let ip = v6.header().to_header();
                let sum = header.calc_checksum_ipv6(&ip, udp.payload()).unwrap();
                (IpAddr::from(ip.source), IpAddr::from(ip.destination), sum)
            }
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(header.checksum, expected, "UDP checksum");
        assert_eq!(usize::from(header.length), 8 + udp.payload().len());
        frames.push(Frame {
            micros,
            vlans: tpids.into_iter().zip(vlans).collect(),
            src,
            dst,
            sport: header.source_port,
            dport: header.destination_port,
            payload: udp.payload().to_vec(),
        });
    }
    frames
}

/// Frames of one call: SIP text in capture order, RTP per sender.
#[derive(Default)]
struct CallFrames {
    sip: Vec<(u64, String)>,
    caller_rtp: Vec<Rtp>,
    callee_rtp: Vec<Rtp>,
}

fn split_by_call(frames: &[Frame], manifest: &Manifest) -> Vec<CallFrames> {
    let by_caller: HashMap<IpAddr, usize> = manifest
        .calls
        .iter()
        .enumerate()
        .map(|(i, c)| (c.caller.ip, i))
        .collect();
    let mut calls: Vec<CallFrames> = manifest
        .calls
        .iter()
        .map(|_| CallFrames::default())
        .collect();
    for f in frames {
        let (index, from_caller) = match (by_caller.get(&f.src), by_caller.get(&f.dst)) {
            (Some(&i), None) => (i, true),
            (None, Some(&i)) => (i, false),
            _ => panic!("frame {:?} -> {:?} belongs to no single call", f.src, f.dst),
        };
        let call = &manifest.calls[index];
        let (me, peer) = if from_caller {
            (&call.caller, &call.callee)
        } else {
            (&call.callee, &call.caller)
        };
        assert_eq!((f.src, f.dst), (me.ip, peer.ip));
        if f.sport == 5060 {
            assert_eq!(f.dport, 5060);
            let text = String::from_utf8(f.payload.clone()).unwrap();
            calls[index].sip.push((f.micros, text));
        } else {
            assert_eq!((f.sport, f.dport), (me.rtp_port, peer.rtp_port));
            let packet = rtp(f.micros, &f.payload);
            if from_caller {
                calls[index].caller_rtp.push(packet);
            } else {
                calls[index].callee_rtp.push(packet);
            }
        }
    }
    calls
}

fn start_line(text: &str) -> &str {
    text.split("\r\n").next().unwrap()
}

fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let head = text.split("\r\n\r\n").next().unwrap();
    head.split("\r\n")
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
}

/// Checks a call's SIP dialog against its manifest entry.
fn check_sip(call: &CallInfo, frames: &CallFrames, start: f64) {
    let lines: Vec<&str> = frames.sip.iter().map(|(_, t)| start_line(t)).collect();
    let invite = format!("INVITE sip:{}@", call.callee.number);
    assert!(lines[0].starts_with(&invite), "{lines:?}");
    assert_eq!(lines[1], "SIP/2.0 100 Trying");
    assert_eq!(lines[2], "SIP/2.0 180 Ringing");
    assert_eq!(lines[3], "SIP/2.0 200 OK");
    assert!(lines[4].starts_with("ACK sip:"));
    match call.bye_from {
        Some(role) => {
            assert_eq!(lines.len(), 7);
            assert!(lines[5].starts_with("BYE sip:"));
            assert_eq!(lines[6], "SIP/2.0 200 OK");
            let bye_target = match role {
                Role::Caller => &call.callee.number,
                Role::Callee => &call.caller.number,
            };
            assert!(lines[5].starts_with(&format!("BYE sip:{bye_target}@")));
            let bye_time = frames.sip[5].0 as f64 / 1e6;
            assert!((bye_time - call.end_time).abs() < 1e-5);
        }
        None => assert_eq!(lines.len(), 5),
    }
    assert_eq!(lines.len() as u32, call.sip_messages);
    for (_, text) in &frames.sip {
        assert_eq!(header(text, "Call-ID"), Some(call.call_id.as_str()));
        for name in ["Via", "From", "To", "CSeq", "User-Agent", "Content-Length"] {
            assert!(header(text, name).is_some(), "{name} missing in\n{text}");
        }
        let (_, body) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(
            header(text, "Content-Length").unwrap(),
            body.len().to_string()
        );
    }
    let invite = &frames.sip[0].1;
    let from = header(invite, "From").unwrap();
    let display = call.caller.display_name.as_deref().unwrap();
    assert!(
        from.starts_with(&format!("\"{display}\" <sip:{}@", call.caller.number)),
        "{from}"
    );
    assert!(from.contains(";tag="));
    assert!(!header(invite, "To").unwrap().contains("tag="));
    assert!(header(&frames.sip[3].1, "To").unwrap().contains(";tag="));
    let offer = invite.split_once("\r\n\r\n").unwrap().1;
    let answer = frames.sip[3].1.split_once("\r\n\r\n").unwrap().1;
    let pt = call.payload_type;
    assert!(offer.contains(&format!(
        "m=audio {} RTP/AVP {pt} 101\r\n",
        call.caller.rtp_port
    )));
    assert!(answer.contains(&format!(
        "m=audio {} RTP/AVP {pt} 101\r\n",
        call.callee.rtp_port
    )));
    assert!(offer.contains(&format!("a=rtpmap:{pt} {}/8000\r\n", call.codec)));
    for sdp in [offer, answer] {
        assert!(sdp.contains("a=rtpmap:101 telephone-event/8000\r\n"));
        assert!(sdp.contains("a=sendrecv\r\n"));
        assert!(sdp.contains("a=ptime:"));
    }
    let invite_time = frames.sip[0].0 as f64 / 1e6;
    let answer_time = frames.sip[3].0 as f64 / 1e6;
    assert!((invite_time - call.invite_time).abs() < 1e-5);
    assert!((answer_time - call.answer_time).abs() < 1e-5);
    assert!(call.invite_time >= start);
    let ring = call.answer_time - call.invite_time;
    assert!((0.5..=2.0).contains(&ring), "ring time {ring}");
}

/// Decodes a direction's payloads in sequence order (continuous stream when
/// nothing was lost).
fn decode(packets: &[Rtp], codec: &str) -> Vec<i16> {
    let mut sorted = packets.to_vec();
    sorted.sort_by_key(|p| p.timestamp.wrapping_sub(packets[0].timestamp) as i32);
    let dec = if codec == "PCMA" { ref_alaw } else { ref_ulaw };
    sorted
        .iter()
        .flat_map(|p| p.payload.iter().map(|&b| dec(b)))
        .collect()
}

#[test]
fn demo_like_capture_matches_manifest() {
    let (bytes, manifest) = generate(&["--calls", "3", "--duration", "2", "--no-bye-for", "1"]);
    let frames = parse(&bytes);
    assert_eq!(frames.len() as u64, manifest.totals.frames);
    let calls = split_by_call(&frames, &manifest);
    assert_eq!(manifest.calls.len(), 3);
    assert_eq!(manifest.calls[0].bye_from, Some(Role::Caller));
    assert_eq!(manifest.calls[1].bye_from, Some(Role::Callee));
    assert_eq!(manifest.calls[2].bye_from, None);
    let mut ids = std::collections::HashSet::new();
    let mut tones = std::collections::HashSet::new();
    for (call, got) in manifest.calls.iter().zip(&calls) {
        assert!(ids.insert(call.call_id.clone()));
        assert!(tones.insert(call.caller.tone_hz) && tones.insert(call.callee.tone_hz));
        assert_eq!(call.caller.number, format!("{}", 1000 + call.index));
        assert!(call.callee.number.starts_with("+3902") && call.callee.number.len() == 12);
        check_sip(call, got, manifest.start_time);
        for (packets, counts, ssrc, first_seq) in [
            (
                &got.caller_rtp,
                call.packets.caller,
                call.ssrcs.caller,
                call.first_seq.caller,
            ),
            (
                &got.callee_rtp,
                call.packets.callee,
                call.ssrcs.callee,
                call.first_seq.callee,
            ),
        ] {
            assert_eq!(counts.sent, 100);
            assert_eq!(counts.dropped, 0);
            assert_eq!(packets.len(), 100);
            assert!(packets[0].marker && packets[1..].iter().all(|p| !p.marker));
            assert_eq!(packets[0].seq, first_seq);
            for (k, p) in packets.iter().enumerate() {
                assert_eq!(p.ssrc, ssrc);
                assert_eq!(p.pt, 0);
                assert_eq!(p.seq, first_seq.wrapping_add(k as u16));
                assert_eq!(
                    p.timestamp.wrapping_sub(packets[0].timestamp),
                    160 * k as u32
                );
                assert_eq!(p.payload.len(), 160);
            }
        }
        // RTP flows from the answer to the end of the call.
        for packets in [&got.caller_rtp, &got.callee_rtp] {
            let first = packets[0].micros as f64 / 1e6;
            let last = packets[packets.len() - 1].micros as f64 / 1e6;
            assert!(first > call.answer_time && first < call.answer_time + 0.021);
            assert!(last <= call.end_time + 1e-6 && last > call.end_time - 0.1);
            assert!((last - first - 1.98).abs() < 0.021, "{first}..{last}");
        }
    }
}

#[test]
fn tones_decode_per_direction() {
    for codec in ["pcmu", "pcma"] {
        let (bytes, manifest) = generate(&["--calls", "4", "--duration", "1", "--codec", codec]);
        let calls = split_by_call(&parse(&bytes), &manifest);
        for (call, got) in manifest.calls.iter().zip(&calls) {
            for (packets, mine, other) in [
                (&got.caller_rtp, call.caller.tone_hz, call.callee.tone_hz),
                (&got.callee_rtp, call.callee.tone_hz, call.caller.tone_hz),
            ] {
                let samples = decode(packets, &call.codec);
                assert_eq!(samples.len(), 8000);
                let ratio = tone_ratio(&samples, f64::from(mine));
                assert!(
                    ratio > 0.95,
                    "{codec} call {} tone {mine}: ratio {ratio}",
                    call.index
                );
                assert!(tone_ratio(&samples, f64::from(other)) < 0.01);
                // Each 20 ms block alone is the tone too (continuous phase).
                for block in samples.chunks(160) {
                    assert!(tone_ratio(block, f64::from(mine)) > 0.9);
                }
                // About -10 dBFS: a sine of peak 10362 has RMS 7327.
                let level = rms(&samples);
                assert!((6800.0..7800.0).contains(&level), "rms {level}");
            }
        }
        let expected_pt = if codec == "pcma" { 8 } else { 0 };
        assert!(calls
            .iter()
            .all(|c| c.caller_rtp.iter().all(|p| p.pt == expected_pt)));
    }
}

#[test]
fn tones_distinct_for_forty_calls_then_wrap() {
    let (_, manifest) = generate(&["--calls", "40", "--duration", "0.1"]);
    let mut tones: Vec<u32> = manifest.calls[..39]
        .iter()
        .flat_map(|c| [c.caller.tone_hz, c.callee.tone_hz])
        .collect();
    tones.sort_unstable();
    assert!(tones.windows(2).all(|w| w[1] - w[0] >= 40), "{tones:?}");
    assert!(tones[0] >= 300 && tones[tones.len() - 1] <= 3400);
    assert_eq!(
        manifest.calls[39].caller.tone_hz,
        manifest.calls[0].caller.tone_hz
    );
}

#[test]
fn loss_is_roughly_as_asked() {
    let (bytes, manifest) = generate(&["--calls", "10", "--duration", "5", "--loss", "10"]);
    let calls = split_by_call(&parse(&bytes), &manifest);
    let (mut sent, mut dropped) = (0u64, 0u64);
    for (call, got) in manifest.calls.iter().zip(&calls) {
        for (packets, counts) in [
            (&got.caller_rtp, call.packets.caller),
            (&got.callee_rtp, call.packets.callee),
        ] {
            assert_eq!(counts.sent, 250);
            assert_eq!(packets.len() as u64, counts.sent - counts.dropped);
            sent += counts.sent;
            dropped += counts.dropped;
        }
        // SIP is never dropped.
        assert_eq!(got.sip.len(), 7);
    }
    let percent = 100.0 * dropped as f64 / sent as f64;
    assert!((8.0..12.0).contains(&percent), "lost {percent}%");
    assert_eq!(manifest.totals.rtp_dropped, dropped);
}

#[test]
fn reorder_swaps_neighbours_without_losing_any() {
    let (bytes, manifest) = generate(&["--calls", "4", "--duration", "5", "--reorder", "20"]);
    let calls = split_by_call(&parse(&bytes), &manifest);
    let (mut total, mut displaced) = (0usize, 0usize);
    for (call, got) in manifest.calls.iter().zip(&calls) {
        for (packets, first) in [
            (&got.caller_rtp, call.first_seq.caller),
            (&got.callee_rtp, call.first_seq.callee),
        ] {
            let order: Vec<u16> = packets.iter().map(|p| p.seq.wrapping_sub(first)).collect();
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..250).collect::<Vec<u16>>());
            for (pos, &k) in order.iter().enumerate() {
                // Only neighbours swap: nobody moves more than one place.
                assert!((i32::from(k) - pos as i32).abs() <= 1);
                displaced += usize::from(usize::from(k) != pos);
            }
            total += order.len();
        }
    }
    let percent = 100.0 * displaced as f64 / total as f64;
    assert!((15.0..25.0).contains(&percent), "displaced {percent}%");
}

#[test]
fn jitter_delays_but_keeps_time_order() {
    let (bytes, manifest) = generate(&["--calls", "2", "--duration", "2", "--jitter-ms", "30"]);
    let frames = parse(&bytes); // checks monotonic timestamps
    let calls = split_by_call(&frames, &manifest);
    assert_eq!(calls[0].caller_rtp.len(), 100);
    let times: Vec<u64> = frames
        .iter()
        .filter(|f| f.src == manifest.calls[0].caller.ip && f.sport != 5060)
        .map(|f| f.micros)
        .collect();
    let deltas: Vec<i64> = times.windows(2).map(|w| (w[1] - w[0]) as i64).collect();
    assert!(deltas.iter().any(|&d| d < 15_000) && deltas.iter().any(|&d| d > 25_000));
    assert!(deltas.iter().all(|&d| d <= 50_000));
}

#[test]
fn deterministic_for_a_seed() {
    let (a, ma) = generate(&[
        "--calls",
        "3",
        "--duration",
        "1",
        "--loss",
        "5",
        "--seed",
        "7",
    ]);
    let (b, mb) = generate(&[
        "--calls",
        "3",
        "--duration",
        "1",
        "--loss",
        "5",
        "--seed",
        "7",
    ]);
    let (c, _) = generate(&[
        "--calls",
        "3",
        "--duration",
        "1",
        "--loss",
        "5",
        "--seed",
        "8",
    ]);
    assert!(a == b, "same seed, same bytes");
    assert_eq!(ma, mb);
    assert!(a != c, "another seed, another capture");
}

#[test]
fn vlan_tags_when_asked() {
    let (bytes, _) = generate(&["--calls", "1", "--duration", "0.2", "--vlan", "42"]);
    for f in parse(&bytes) {
        assert_eq!(f.vlans, [(0x8100, 42)]);
    }
    let (bytes, _) = generate(&[
        "--calls",
        "1",
        "--duration",
        "0.2",
        "--vlan",
        "100",
        "--vlan",
        "200",
    ]);
    for f in parse(&bytes) {
        assert_eq!(f.vlans, [(0x88a8, 100), (0x8100, 200)]);
    }
    let (bytes, _) = generate(&["--calls", "1", "--duration", "0.2"]);
    assert!(parse(&bytes).iter().all(|f| f.vlans.is_empty()));
}

#[test]
fn ipv6_variant_is_valid() {
    let (bytes, manifest) = generate(&["--calls", "2", "--duration", "1", "--ipv6"]);
    let frames = parse(&bytes);
    let local: ipnet::IpNet = "fd00:1::/64".parse().unwrap();
    let remote: ipnet::IpNet = "2001:db8::/32".parse().unwrap();
    for call in &manifest.calls {
        assert!(local.contains(&call.caller.ip), "{}", call.caller.ip);
        assert!(remote.contains(&call.callee.ip), "{}", call.callee.ip);
    }
    let calls = split_by_call(&frames, &manifest);
    for (call, got) in manifest.calls.iter().zip(&calls) {
        check_sip(call, got, manifest.start_time);
        let offer = &got.sip[0].1;
        assert!(offer.contains(&format!("c=IN IP6 {}\r\n", call.caller.ip)));
        assert!(start_line(offer).contains(&format!("@[{}]:5060", call.callee.ip)));
        assert_eq!(got.caller_rtp.len(), 50);
        let samples = decode(&got.callee_rtp, &call.codec);
        assert!(tone_ratio(&samples, f64::from(call.callee.tone_hz)) > 0.95);
    }
}

#[test]
fn ipv4_address_plan() {
    let (_, manifest) = generate(&[
        "--calls",
        "300",
        "--duration",
        "0.02",
        "--concurrency",
        "300",
    ]);
    let c = &manifest.calls;
    assert_eq!(c[0].caller.ip.to_string(), "10.1.0.1");
    assert_eq!(c[249].caller.ip.to_string(), "10.1.0.250");
    assert_eq!(c[250].caller.ip.to_string(), "10.1.1.1");
    assert_eq!(c[0].callee.ip.to_string(), "198.51.100.1");
    assert_eq!(c[254].callee.ip.to_string(), "203.0.113.1");
    let unique: std::collections::HashSet<_> = c.iter().map(|x| &x.call_id).collect();
    assert_eq!(unique.len(), 300);
}

#[test]
fn concurrency_limits_overlap() {
    let (bytes, manifest) = generate(&["--calls", "6", "--concurrency", "2", "--duration", "1"]);
    assert_eq!(manifest.concurrency, 2);
    let spans: Vec<(f64, f64)> = manifest
        .calls
        .iter()
        .map(|c| (c.invite_time, c.end_time + 0.05))
        .collect();
    for &(start, _) in &spans {
        let active = spans
            .iter()
            .filter(|&&(s, e)| s <= start && start < e)
            .count();
        assert!(active <= 2, "{active} calls overlap at {start}");
    }
    // The second wave starts after the first calls ended.
    assert!(manifest.calls[2].invite_time > manifest.calls[0].end_time);
    assert_eq!(parse(&bytes).len() as u64, manifest.totals.frames);
}

#[test]
fn options_are_validated() {
    for bad in [
        &["--loss", "101"][..],
        &["--reorder", "-1"],
        &["--ptime", "0"],
        &["--duration", "0"],
        &["--vlan", "1", "--vlan", "2", "--vlan", "3"],
        &["--vlan", "4095"],
        &["--concurrency", "0"],
        &["--calls", "2", "--no-bye-for", "3"],
    ] {
        let a = SynthArgs::try_parse_from([&["-o", "x.pcap"][..], bad].concat());
        if let Ok(a) = a {
            assert!(a.validate().is_err(), "{bad:?} accepted");
            assert!(synth::generate(&a, Vec::new()).is_err());
        }
    }
    assert!(
        SynthArgs::try_parse_from(["--calls", "1"]).is_err(),
        "output is required"
    );
    let a = args(&[]);
    assert_eq!((a.calls, a.duration, a.ptime, a.seed), (2, 5.0, 20, 1));
    assert_eq!(a.start, 1_767_225_600.0);
    assert_eq!(a.manifest_path(), std::path::PathBuf::from("unused.json"));
}

#[test]
fn ptime_sets_packet_size() {
    let (bytes, manifest) = generate(&["--calls", "1", "--duration", "1", "--ptime", "30"]);
    let calls = split_by_call(&parse(&bytes), &manifest);
    assert_eq!(manifest.samples_per_packet, 240);
    assert!(calls[0].caller_rtp.iter().all(|p| p.payload.len() == 240));
    assert_eq!(calls[0].caller_rtp.len(), 33);
    assert!(calls[0].sip[0].1.contains("a=ptime:30\r\n"));
}

#[test]
fn run_writes_pcap_and_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("cap.pcap");
    let a = args(&["--calls", "2", "--duration", "0.5"]);
    let a = SynthArgs {
        output: output.clone(),
        ..a
    };
    synth::run(&a).unwrap();
    let bytes = std::fs::read(&output).unwrap();
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(dir.path().join("cap.json")).unwrap()).unwrap();
    let (expected, expected_manifest) = generate(&["--calls", "2", "--duration", "0.5"]);
    assert!(bytes == expected);
    assert_eq!(manifest, expected_manifest);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("cap.json")).unwrap()).unwrap();
    assert_eq!(json["calls"][1]["bye_from"], "callee");
    assert_eq!(json["calls"][0]["caller"]["ip"], "10.1.0.1");
}

/// The committed demo is exactly what the command in `synth`'s module docs
/// makes. If the generator changes on purpose, regenerate it with
/// `taprec synth -o pcaps/demo.pcap --calls 2 --duration 4 --seed 1`.
#[test]
fn committed_demo_is_current() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let committed = std::fs::read(root.join("pcaps/demo.pcap")).unwrap();
    let (bytes, manifest) = generate(&["--calls", "2", "--duration", "4", "--seed", "1"]);
    assert!(
        committed == bytes,
        "pcaps/demo.pcap is stale: regenerate it"
    );
    let committed: Manifest =
        serde_json::from_slice(&std::fs::read(root.join("pcaps/demo.json")).unwrap()).unwrap();
    assert_eq!(
        committed, manifest,
        "pcaps/demo.json is stale: regenerate it"
    );
    assert!(bytes.len() < 300_000);
}
