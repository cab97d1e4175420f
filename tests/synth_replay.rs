//! End-to-end scenarios on synthetic captures: `taprec synth` writes calls
//! whose parties send distinct tones (and a manifest saying which), `taprec
//! replay` records them, and each recording is checked by content (tone per
//! channel, length, alignment) and by metadata.

mod common;

use common::{read_wav, ready_recordings, rms, run_ok, tone_onset, tone_ratio, Stereo};
use serde_json::Value;
use std::path::{Path, PathBuf};

struct Scenario {
    manifest: Value,
    recordings: Vec<(PathBuf, Value)>,
    summary: Value,
    _dir: tempfile::TempDir,
}

/// Generates a capture with `synth` options, replays it with `replay` options.
fn scenario(synth: &[&str], replay: &[&str]) -> Scenario {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("calls.pcap");
    let pcap_s = pcap.to_str().unwrap();
    let mut args = vec!["synth", "-o", pcap_s];
    args.extend_from_slice(synth);
    run_ok(&args);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(pcap.with_extension("json")).unwrap()).unwrap();
    let spool = dir.path().join("spool");
    let summary_path = dir.path().join("summary.json");
    let mut args = vec![
        "replay",
        "--spool",
        spool.to_str().unwrap(),
        "--summary-json",
        summary_path.to_str().unwrap(),
        "--no-upload",
    ];
    args.extend_from_slice(replay);
    args.push(pcap_s);
    run_ok(&args);
    let summary: Value = serde_json::from_slice(&std::fs::read(&summary_path).unwrap()).unwrap();
    Scenario {
        manifest,
        recordings: ready_recordings(&spool),
        summary,
        _dir: dir,
    }
}

impl Scenario {
    fn calls(&self) -> &Vec<Value> {
        self.manifest["calls"].as_array().unwrap()
    }

    fn recording(&self, call_id: &str) -> (Stereo, &Value) {
        let found: Vec<_> = self
            .recordings
            .iter()
            .filter(|(_, m)| m["pbxCallId"] == call_id)
            .collect();
        assert_eq!(found.len(), 1, "exactly one recording of {call_id}");
        (read_wav(&found[0].0), &found[0].1)
    }
}

fn secs(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

/// Parses an ISO 8601 `PT#H#M#S` duration.
fn duration_secs(text: &str) -> f64 {
    let mut rest = text.strip_prefix("PT").expect("PT prefix");
    let mut total = 0.0;
    for (unit, factor) in [('H', 3600.0), ('M', 60.0), ('S', 1.0)] {
        if let Some(pos) = rest.find(unit) {
            total += rest[..pos].parse::<f64>().unwrap() * factor;
            rest = &rest[pos + 1..];
        }
    }
    assert!(rest.is_empty(), "{text}");
    total
}

/// Seconds since the epoch of an API start time like 2026-01-01T00:00:01.231312Z.
fn start_secs(text: &str) -> f64 {
    let t = chrono::DateTime::parse_from_rfc3339(text).expect("RFC 3339 start");
    t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9
}

/// 100 ms blocks from 0.5 s after the start to 0.5 s before the end.
fn blocks(samples: &[i16]) -> Vec<&[i16]> {
    let end = samples.len().saturating_sub(4000);
    assert!(end > 4000 + 800, "recording too short: {}", samples.len());
    samples[4000..end].chunks_exact(800).collect()
}

/// `own` Hz fills the channel (all blocks, or 90% when lossy) and `other`
/// Hz never appears in it.
fn check_tone(what: &str, samples: &[i16], own: f64, other: f64, lossy: bool) {
    let blocks = blocks(samples);
    let mut good = 0;
    for (i, b) in blocks.iter().enumerate() {
        let foreign = tone_ratio(b, other);
        assert!(
            foreign < 0.05,
            "{what} block {i}: {other} Hz present ({foreign:.3})"
        );
        let mine = tone_ratio(b, own);
        if mine > if lossy { 0.5 } else { 0.9 } && rms(b) > 1000.0 {
            good += 1;
        } else {
            assert!(
                lossy,
                "{what} block {i}: {own} Hz ratio {mine:.3}, rms {:.0}",
                rms(b)
            );
        }
    }
    assert!(
        good * 10 >= blocks.len() * 9,
        "{what}: {good} of {} blocks hold {own} Hz",
        blocks.len()
    );
}

#[derive(Clone, Copy)]
struct Expect {
    /// Which manifest party is local (left): "caller" or "callee".
    local: &'static str,
    direction: u64,
    format_tag: u16,
    lossy: bool,
}

const OUTGOING: Expect = Expect {
    local: "caller",
    direction: 2,
    format_tag: 7,
    lossy: false,
};

/// Checks every call of the scenario against the manifest.
fn check_all(s: &Scenario, e: Expect) {
    assert_eq!(
        s.summary["recorded"].as_u64().unwrap() as usize,
        s.calls().len(),
        "every call recorded: {}",
        s.summary
    );
    assert_eq!(s.recordings.len(), s.calls().len());
    for call in s.calls() {
        let call_id = call["call_id"].as_str().unwrap();
        let (w, m) = s.recording(call_id);
        let remote = if e.local == "caller" {
            "callee"
        } else {
            "caller"
        };
        let local_tone = secs(&call[e.local]["tone_hz"]);
        let remote_tone = secs(&call[remote]["tone_hz"]);
        assert_eq!(w.format_tag, e.format_tag, "{call_id}");
        assert_eq!(m["direction"], e.direction, "{call_id}: {m}");
        assert_eq!(
            m["localParty"]["phoneNumber"], call[e.local]["number"],
            "{m}"
        );
        assert_eq!(
            m["remoteParty"]["phoneNumber"], call[remote]["number"],
            "{m}"
        );
        assert_eq!(m["pbxCallId"], call_id);
        let answer = secs(&call["answer_time"]);
        let start = start_secs(m["startDateTime"].as_str().unwrap());
        assert!(
            (start - answer).abs() < 0.001,
            "{call_id}: start {start} vs answer {answer}"
        );
        if call["bye_from"].is_string() {
            let expected = secs(&call["end_time"]) - answer;
            let got = duration_secs(m["duration"].as_str().unwrap());
            assert!(
                (got - expected).abs() < 0.05,
                "{call_id}: duration {got} vs {expected}"
            );
            assert!(
                (w.seconds() - expected).abs() < 0.05,
                "{call_id}: WAV {} vs {expected}",
                w.seconds()
            );
        }
        check_tone(
            &format!("{call_id} left"),
            &w.left,
            local_tone,
            remote_tone,
            e.lossy,
        );
        check_tone(
            &format!("{call_id} right"),
            &w.right,
            remote_tone,
            local_tone,
            e.lossy,
        );
        // Both parties start sending at the answer: their tones start within
        // 60 ms of each other and of the recording's start.
        let l = tone_onset(&w.left, local_tone).expect("left onset");
        let r = tone_onset(&w.right, remote_tone).expect("right onset");
        assert!(
            l <= 480 && r <= 480,
            "{call_id}: onsets {l} and {r} samples"
        );
        assert!(
            l.abs_diff(r) <= 480,
            "{call_id}: channels {l} vs {r} samples apart"
        );
    }
}

#[test]
fn clean_pcmu_calls_outgoing() {
    let s = scenario(
        &["--calls", "4", "--concurrency", "4", "--duration", "3"],
        &["--local-net", "10.0.0.0/8"],
    );
    check_all(&s, OUTGOING);
    for (_, m) in &s.recordings {
        let notes = m["notes"].as_str().unwrap();
        assert!(notes.contains("codec PCMU"), "{notes}");
        assert!(notes.contains("loss 0.0%"), "{notes}");
        assert!(
            m["localParty"]["username"]
                .as_str()
                .unwrap()
                .starts_with("Ext "),
            "display name: {m}"
        );
        assert_eq!(m["preserved"], false);
    }
}

#[test]
fn incoming_when_the_callee_is_local_swaps_channels() {
    let s = scenario(
        &["--calls", "2", "--duration", "3"],
        &[
            "--local-net",
            "198.51.100.0/24",
            "--local-net",
            "203.0.113.0/24",
        ],
    );
    check_all(
        &s,
        Expect {
            local: "callee",
            direction: 1,
            ..OUTGOING
        },
    );
}

#[test]
fn unknown_direction_puts_the_caller_left() {
    let s = scenario(
        &["--calls", "2", "--duration", "3"],
        &["--local-net", "192.0.2.0/24"],
    );
    check_all(
        &s,
        Expect {
            direction: 0,
            ..OUTGOING
        },
    );
}

#[test]
fn pcma_recorded_as_alaw_and_as_pcm16() {
    let s = scenario(
        &["--calls", "2", "--duration", "3", "--codec", "pcma"],
        &["--local-net", "10.0.0.0/8"],
    );
    check_all(
        &s,
        Expect {
            format_tag: 6,
            ..OUTGOING
        },
    );
    let s = scenario(
        &["--calls", "2", "--duration", "3", "--codec", "pcma"],
        &[
            "--local-net",
            "10.0.0.0/8",
            "--format",
            "pcm16",
            "--preserved",
            "--user",
            "1000=alice",
        ],
    );
    check_all(
        &s,
        Expect {
            format_tag: 1,
            ..OUTGOING
        },
    );
    let (_, m) = s.recording(s.calls()[0]["call_id"].as_str().unwrap());
    assert_eq!(m["localParty"]["username"], "alice", "users map wins: {m}");
    assert_eq!(m["preserved"], true);
}

#[test]
fn loss_reordering_and_jitter_with_twenty_concurrent_calls() {
    let s = scenario(
        &[
            "--calls",
            "20",
            "--concurrency",
            "20",
            "--duration",
            "4",
            "--loss",
            "5",
            "--reorder",
            "5",
            "--jitter-ms",
            "15",
            "--seed",
            "7",
        ],
        &["--local-net", "10.0.0.0/8"],
    );
    check_all(
        &s,
        Expect {
            lossy: true,
            ..OUTGOING
        },
    );
    // Loss is measured and reported per side, close to what was dropped.
    for call in s.calls() {
        let (w, m) = s.recording(call["call_id"].as_str().unwrap());
        let notes = m["notes"].as_str().unwrap();
        let dropped = call["packets"]["caller"]["dropped"].as_u64().unwrap();
        let sent = call["packets"]["caller"]["sent"].as_u64().unwrap();
        // Lost audio is silence of the right length: the file is as long as the call.
        let expected = secs(&call["end_time"]) - secs(&call["answer_time"]);
        assert!((w.seconds() - expected).abs() < 0.05, "{}", w.seconds());
        // "local packet loss 4.9% (10 of 205)": losses at the very end of a
        // stream cannot be seen (no later sequence number tells), so the
        // counts may fall short of what was dropped by a packet or two.
        let text = notes
            .split("local packet loss ")
            .nth(1)
            .expect("loss in notes");
        let inner = &text[text.find('(').unwrap() + 1..text.find(')').unwrap()];
        let (lost, total) = inner.split_once(" of ").unwrap();
        let (lost, total): (u64, u64) = (lost.parse().unwrap(), total.parse().unwrap());
        assert!(
            lost <= dropped && lost + 2 >= dropped,
            "{notes}: dropped {dropped}"
        );
        assert!(total <= sent && total + 2 >= sent, "{notes}: sent {sent}");
        assert!(notes.contains("local packet loss"), "{notes}");
    }
}

#[test]
fn qinq_vlan_and_ipv6() {
    let s = scenario(
        &[
            "--calls",
            "3",
            "--duration",
            "3",
            "--vlan",
            "100",
            "--vlan",
            "200",
        ],
        &["--local-net", "10.0.0.0/8"],
    );
    check_all(&s, OUTGOING);
    let s = scenario(
        &["--calls", "3", "--duration", "3", "--ipv6", "--vlan", "42"],
        &["--local-net", "fd00:1::/64"],
    );
    check_all(&s, OUTGOING);
}

#[test]
fn call_without_bye_ends_after_rtp_timeout() {
    let s = scenario(
        &[
            "--calls",
            "2",
            "--concurrency",
            "1",
            "--duration",
            "3",
            "--no-bye-for",
            "1",
        ],
        &["--local-net", "10.0.0.0/8", "--rtp-timeout", "5"],
    );
    check_all(&s, OUTGOING);
    let last = &s.calls()[1];
    assert!(last["bye_from"].is_null());
    let (w, m) = s.recording(last["call_id"].as_str().unwrap());
    let notes = m["notes"].as_str().unwrap();
    assert!(
        notes.contains("without RTP or SIP") || notes.contains("end of input"),
        "{notes}"
    );
    // Ends at its last packet, not at the timeout.
    let expected = secs(&last["end_time"]) - secs(&last["answer_time"]);
    assert!(
        (w.seconds() - expected).abs() < 0.1,
        "{} vs {expected}",
        w.seconds()
    );
}

#[test]
fn max_duration_cuts_the_recording() {
    let s = scenario(
        &["--calls", "1", "--duration", "8"],
        &["--local-net", "10.0.0.0/8", "--max-duration", "3"],
    );
    let call = &s.calls()[0];
    let (w, m) = s.recording(call["call_id"].as_str().unwrap());
    assert!((w.seconds() - 3.0).abs() < 0.01, "{}", w.seconds());
    assert_eq!(duration_secs(m["duration"].as_str().unwrap()), 3.0);
    assert!(
        m["notes"].as_str().unwrap().contains("maximum duration"),
        "{m}"
    );
    check_tone(
        "left",
        &w.left,
        secs(&call["caller"]["tone_hz"]),
        secs(&call["callee"]["tone_hz"]),
        false,
    );
}

#[test]
fn demo_capture_from_the_readme() {
    let pcap = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/demo.pcap");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/taprec.toml");
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    run_ok(&[
        "replay",
        "-c",
        config.to_str().unwrap(),
        "--spool",
        spool.to_str().unwrap(),
        pcap.to_str().unwrap(),
    ]);
    let recordings = ready_recordings(&spool);
    assert_eq!(recordings.len(), 2);
    for (wav, _) in &recordings {
        let w = read_wav(wav);
        assert!(rms(&w.left) > 1000.0 && rms(&w.right) > 1000.0);
    }
}
