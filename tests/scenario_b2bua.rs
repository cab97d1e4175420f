//! B2BUA legs: the real SIPp call of `pcaps/sipp-pcmu.pcap` (leg A: 1001 at
//! 127.0.1.10 calls 5551234 at 127.0.2.20) forwarded by 127.0.2.20, acting
//! as a B2BUA, to 127.0.5.50 as a second dialog with its own Call-ID
//! (leg B, 1 ms later, media re-originated on port 7000 with other SSRCs).
//! With the caller's network local, leg A crosses the local/remote boundary:
//! by default it is the one recording, leg B is skipped with a reason; with
//! `b2bua.mode = "each-leg"` both are recorded; without automatic correlation
//! a configured header (`X-Orig-Call-ID`) still links them. The asterisk
//! capture in tests/external_captures.rs shows the same on a real PBX.

mod common;
mod scenario_util;

use common::{read_wav, ready_recordings, run_ok, tone_ratio};
use scenario_util::{ip, read_pcap, repo_pcap, write_pcap, Frame};
use serde_json::Value;
use std::path::{Path, PathBuf};

const LEG_A: &str = "1-13069@127.0.1.10";
const LEG_B: &str = "1-13069@127.0.2.20";

struct Replay {
    _dir: tempfile::TempDir,
    summary: Value,
    recordings: Vec<(PathBuf, Value)>,
}

fn replay(pcap: &Path, config: Option<&str>) -> Replay {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let summary_path = dir.path().join("summary.json");
    let config_path = dir.path().join("taprec.toml");
    let mut args = vec![
        "replay".to_string(),
        "--local-net".into(),
        "127.0.1.0/24".into(),
        "--spool".into(),
        spool.to_str().unwrap().into(),
        "--no-upload".into(),
        "--summary-json".into(),
        summary_path.to_str().unwrap().into(),
    ];
    if let Some(text) = config {
        std::fs::write(&config_path, text).unwrap();
        args.push("--config".into());
        args.push(config_path.to_str().unwrap().into());
    }
    args.push(pcap.to_str().unwrap().into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_ok(&args);
    let summary: Value = serde_json::from_slice(&std::fs::read(&summary_path).unwrap()).unwrap();
    let recordings = ready_recordings(&spool);
    Replay {
        _dir: dir,
        summary,
        recordings,
    }
}

/// Leg A plus leg B, optionally with a correlation header on B's INVITEs.
fn two_legs(dir: &Path, header: Option<&str>) -> Option<PathBuf> {
    let src = repo_pcap("sipp-pcmu.pcap");
    if !src.exists() {
        return None;
    }
    let pcap = read_pcap(&src);
    let map = [
        (ip("127.0.1.10"), ip("127.0.2.20")),
        (ip("127.0.2.20"), ip("127.0.5.50")),
    ];
    let mut frames = pcap.frames.clone();
    for f in &pcap.frames {
        let mut leg = Frame {
            us: f.us + 1000,
            data: f.data.clone(),
        };
        leg.map_ips(&map);
        if f.is_sip() {
            leg.map_text(&[
                ("127.0.1.10", "127.0.2.20"),
                ("127.0.2.20", "127.0.5.50"),
                ("m=audio 6000", "m=audio 7000"),
            ]);
            let is_invite = leg.payload().starts_with(b"INVITE ");
            if let (Some(h), true) = (header, is_invite) {
                leg.add_header(h);
            }
        } else if f.is_rtp() {
            leg.map_ports(&[(6000, 7000)]);
            let mut p = leg.payload().to_vec();
            for b in &mut p[8..12] {
                *b ^= 0x33;
            }
            leg.set_payload(&p);
        }
        frames.push(leg);
    }
    let path = dir.join("two-legs.pcap");
    write_pcap(&path, &pcap.header, &frames);
    Some(path)
}

fn check_leg_a(r: &Replay) {
    let found: Vec<_> = r
        .recordings
        .iter()
        .filter(|(_, m)| m["pbxCallId"] == LEG_A)
        .collect();
    assert_eq!(found.len(), 1, "{}", r.summary);
    let (wav, meta) = found[0];
    assert_eq!(meta["direction"], 2, "{meta}");
    assert_eq!(meta["remoteParty"]["phoneNumber"], "5551234");
    let w = read_wav(wav);
    assert!(tone_ratio(&w.left[8000..24000], 500.0) > 0.9);
    assert!(tone_ratio(&w.right[8000..24000], 1200.0) > 0.9);
}

#[test]
fn b2bua_call_is_recorded_once_on_the_boundary_leg() {
    let dir = tempfile::tempdir().unwrap();
    let Some(path) = two_legs(dir.path(), None) else {
        return;
    };
    let r = replay(&path, None);
    assert_eq!(r.summary["calls_seen"], 2, "{}", r.summary);
    assert_eq!(r.summary["legs_linked"], 1, "{}", r.summary);
    assert_eq!(r.recordings.len(), 1, "one recording: {}", r.summary);
    check_leg_a(&r);
    let notes = r.recordings[0].1["notes"].as_str().unwrap();
    assert!(notes.contains(LEG_B), "notes name the other leg: {notes}");
    let skipped = r.summary["skipped"].as_array().unwrap();
    assert!(
        skipped.iter().any(|s| s["call_id"] == LEG_B
            && s["reason"].as_str().unwrap().contains("B2BUA leg of call")),
        "{skipped:?}"
    );
}

#[test]
fn each_leg_mode_records_both() {
    let dir = tempfile::tempdir().unwrap();
    let Some(path) = two_legs(dir.path(), None) else {
        return;
    };
    let r = replay(&path, Some("[b2bua]\nmode = \"each-leg\"\n"));
    assert_eq!(r.recordings.len(), 2, "{}", r.summary);
    check_leg_a(&r);
    let b = r
        .recordings
        .iter()
        .find(|(_, m)| m["pbxCallId"] == LEG_B)
        .expect("leg B recorded");
    assert_eq!(b.1["direction"], 0, "neither party of leg B is local");
    assert!(b.1["notes"].as_str().unwrap().contains(LEG_A));
}

#[test]
fn correlation_header_links_legs_without_auto_rules() {
    let dir = tempfile::tempdir().unwrap();
    let Some(plain) = two_legs(dir.path(), None) else {
        return;
    };
    let off = "[b2bua]\nauto = false\n";
    let r = replay(&plain, Some(off));
    assert_eq!(r.summary["legs_linked"], 0, "{}", r.summary);
    assert_eq!(r.recordings.len(), 2, "unlinked legs: {}", r.summary);

    let hdir = tempfile::tempdir().unwrap();
    let tagged = two_legs(hdir.path(), Some(&format!("X-Orig-Call-ID: {LEG_A}"))).unwrap();
    let r = replay(&tagged, Some(off));
    assert_eq!(r.summary["legs_linked"], 1, "{}", r.summary);
    assert_eq!(r.recordings.len(), 1, "{}", r.summary);
    check_leg_a(&r);
}
