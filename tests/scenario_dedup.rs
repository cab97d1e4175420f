//! Duplicates: the real SIPp call of `pcaps/sipp-pcmu.pcap` (caller 1001 at
//! 127.0.1.10 sends 500 Hz, callee 5551234 at 127.0.2.20 sends 1200 Hz)
//! captured twice (every packet duplicated 300 us later, as two SPAN sources
//! deliver it) and seen on a second hop (every SIP message and RTP packet
//! also between 127.0.3.10 and 127.0.4.20, the SDP rewritten for that hop,
//! the media re-originated with other SSRCs and sequence numbers) must give
//! exactly the recording of the plain capture: one WAV, byte for byte.

mod common;
mod scenario_util;

use common::{read_wav, ready_recordings, rms, run_ok, tone_ratio};
use scenario_util::{ip, read_pcap, repo_pcap, write_pcap, Frame};
use serde_json::Value;
use std::path::{Path, PathBuf};

const CALL_ID: &str = "1-13069@127.0.1.10";

struct Replay {
    _dir: tempfile::TempDir,
    summary: Value,
    recordings: Vec<(PathBuf, Value)>,
}

fn replay(pcap: &Path, extra: &[&str]) -> Replay {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let summary_path = dir.path().join("summary.json");
    let mut args = vec![
        "replay",
        "--local-net",
        "127.0.1.0/24",
        "--spool",
        spool.to_str().unwrap(),
        "--no-upload",
        "--summary-json",
        summary_path.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push(pcap.to_str().unwrap());
    run_ok(&args);
    let summary: Value = serde_json::from_slice(&std::fs::read(&summary_path).unwrap()).unwrap();
    let recordings = ready_recordings(&spool);
    Replay {
        _dir: dir,
        summary,
        recordings,
    }
}

/// The WAV data of the single recording, checked for the call's tones.
fn single_recording(r: &Replay) -> Vec<u8> {
    assert_eq!(r.summary["calls_seen"], 1, "{}", r.summary);
    assert_eq!(r.recordings.len(), 1, "one recording: {}", r.summary);
    let (wav, meta) = &r.recordings[0];
    assert_eq!(meta["pbxCallId"], CALL_ID);
    assert_eq!(meta["direction"], 2, "{meta}");
    assert_eq!(meta["localParty"]["phoneNumber"], "1001");
    assert_eq!(meta["remoteParty"]["phoneNumber"], "5551234");
    let w = read_wav(wav);
    assert!((w.seconds() - 5.0).abs() < 0.1, "{} s", w.seconds());
    let mid = 8000..8000 * 4;
    assert!(
        tone_ratio(&w.left[mid.clone()], 500.0) > 0.9,
        "caller 500 Hz left"
    );
    assert!(
        tone_ratio(&w.right[mid.clone()], 1200.0) > 0.9,
        "callee 1200 Hz right"
    );
    assert!(rms(&w.left[mid]) > 5000.0);
    std::fs::read(wav).unwrap()
}

fn skip_if_absent() -> bool {
    !repo_pcap("sipp-pcmu.pcap").exists()
}

#[test]
fn same_packets_twice_and_second_hop_give_one_identical_recording() {
    if skip_if_absent() {
        return;
    }
    let pcap = read_pcap(&repo_pcap("sipp-pcmu.pcap"));
    let dir = tempfile::tempdir().unwrap();
    let baseline = single_recording(&replay(&repo_pcap("sipp-pcmu.pcap"), &[]));

    // Two SPAN sources: every frame twice, 300 us apart.
    let mut twice = Vec::new();
    for f in &pcap.frames {
        twice.push(f.clone());
        twice.push(Frame {
            us: f.us + 300,
            data: f.data.clone(),
        });
    }
    let twice_path = dir.path().join("twice.pcap");
    write_pcap(&twice_path, &pcap.header, &twice);
    let r = replay(&twice_path, &[]);
    assert_eq!(single_recording(&r), baseline, "same WAV as without copies");
    let rtp = pcap.frames.iter().filter(|f| f.is_rtp()).count() as u64;
    assert_eq!(
        r.summary["rtp_copies"], rtp,
        "every RTP copy dropped: {}",
        r.summary
    );
    let notes = r.recordings[0].1["notes"].as_str().unwrap();
    assert!(
        notes.contains(&format!("duplicates dropped: {rtp} RTP packet copies")),
        "{notes}"
    );

    // The first hop ends before the second: its BYE/200 copies come after
    // the call ended (remembered Call-ID, not a new call).
    // A second hop: SIP between 127.0.3.10 and 127.0.4.20 with its own SDP,
    // media re-originated there (other SSRC and sequence numbers), 50 us
    // later (so the second hop's INVITE arrives before the first hop's 180
    // and its SDP is taken too: both hops' media addresses are the call's).
    let map = [
        (ip("127.0.1.10"), ip("127.0.3.10")),
        (ip("127.0.2.20"), ip("127.0.4.20")),
    ];
    let mut hops = pcap.frames.clone();
    for f in &pcap.frames {
        let mut copy = Frame {
            us: f.us + 50,
            data: f.data.clone(),
        };
        copy.map_ips(&map);
        if f.is_sip() {
            // Only the SDP is rewritten: the Call-ID stays the same.
            let text = String::from_utf8(copy.payload().to_vec()).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            let body = body
                .replace("127.0.1.10", "127.0.3.10")
                .replace("127.0.2.20", "127.0.4.20");
            copy.set_payload(format!("{head}\r\n\r\n{body}").as_bytes());
        } else if f.is_rtp() {
            let mut p = copy.payload().to_vec();
            let seq = u16::from_be_bytes([p[2], p[3]]).wrapping_add(1000);
            p[2..4].copy_from_slice(&seq.to_be_bytes());
            for b in &mut p[8..12] {
                *b ^= 0x5A;
            }
            copy.set_payload(&p);
        }
        hops.push(copy);
    }
    let hops_path = dir.path().join("hops.pcap");
    write_pcap(&hops_path, &pcap.header, &hops);
    let r = replay(&hops_path, &[]);
    assert_eq!(single_recording(&r), baseline, "same WAV as one hop");
    assert!(
        r.summary["sip_hop_copies"].as_u64().unwrap() >= 4,
        "{}",
        r.summary
    );
    assert!(
        r.summary["rtp_other_hop"].as_u64().unwrap() >= rtp - 2,
        "the second hop's media is ignored: {}",
        r.summary
    );
    let notes = r.recordings[0].1["notes"].as_str().unwrap();
    assert!(notes.contains("another hop"), "merge noted: {notes}");

    // With the hop lock off, both hops' media reach the channels: the
    // recording is no longer the clean one (which is why the lock exists).
    let config = dir.path().join("nolock.toml");
    std::fs::write(&config, "[dedup]\nlock_hop = false\n").unwrap();
    let r = replay(&hops_path, &["--config", config.to_str().unwrap()]);
    assert_eq!(r.recordings.len(), 1);
    assert_eq!(r.summary["rtp_other_hop"], 0, "{}", r.summary);
    assert!(r.summary["rtp_packets"].as_u64().unwrap() > 2 * rtp - 4);
}

#[test]
fn copies_are_kept_when_the_filter_is_off() {
    if skip_if_absent() {
        return;
    }
    let pcap = read_pcap(&repo_pcap("sipp-pcmu.pcap"));
    let dir = tempfile::tempdir().unwrap();
    let mut twice = Vec::new();
    for f in &pcap.frames {
        twice.push(f.clone());
        twice.push(Frame {
            us: f.us + 300,
            data: f.data.clone(),
        });
    }
    let path = dir.path().join("twice.pcap");
    write_pcap(&path, &pcap.header, &twice);
    let config = dir.path().join("off.toml");
    std::fs::write(&config, "[dedup]\ndrop_copies = false\n").unwrap();
    let r = replay(&path, &["--config", config.to_str().unwrap()]);
    assert_eq!(r.summary["rtp_copies"], 0, "{}", r.summary);
    // Still one call and one recording: the dialog is keyed by Call-ID.
    assert_eq!(r.recordings.len(), 1, "{}", r.summary);
}
