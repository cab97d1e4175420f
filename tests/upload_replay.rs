//! `taprec replay --upload-url` of a real SIPp capture against
//! `taprec mock-api`, with and without injected faults: every recording
//! arrives valid, with the spool's metadata and each party's tone.

mod common;

use common::{read_wav, taprec, tone_ratio};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

struct Mock {
    child: Child,
    url: String,
    store: PathBuf,
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_mock(store: &Path, extra: &[&str]) -> Mock {
    let mut child = taprec()
        .args(["mock-api", "--listen", "127.0.0.1:0", "--store"])
        .arg(store)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first
        .strip_prefix("mock-api listening on ")
        .unwrap()
        .to_string();
    std::thread::spawn(move || for _ in lines {});
    Mock {
        child,
        url,
        store: store.to_owned(),
    }
}

fn replay_and_check(extra: &[&str], expect_injected: usize, expect_dropped: usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pcap = root.join("pcaps/sipp-pcmu-20calls.pcap");
    let sidecar: Value =
        serde_json::from_slice(&std::fs::read(root.join("pcaps/sipp-pcmu-20calls.json")).unwrap())
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mock = start_mock(&dir.path().join("store"), extra);
    let spool = dir.path().join("spool");
    let out = taprec()
        .args(["replay", "--local-net", "127.0.1.0/24", "--spool"])
        .arg(&spool)
        .args(["--upload-url", &mock.url, "--wait-secs", "60"])
        .arg(&pcap)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("upload: 20 recordings: sent 20, failed 0, still queued 0"),
        "{stdout}"
    );
    let log = std::fs::read_to_string(mock.store.join("requests.jsonl")).unwrap();
    let requests: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        requests.iter().filter(|r| r["status"] == 500).count(),
        expect_injected
    );
    assert_eq!(
        requests
            .iter()
            .filter(|r| r["outcome"] == "dropped")
            .count(),
        expect_dropped
    );
    assert_eq!(requests.iter().filter(|r| r["status"] == 201).count(), 20);
    // What the server stored equals what the spool recorded (now in sent/).
    let sent = spool.join("sent");
    let mut spooled: Vec<Value> = std::fs::read_dir(&sent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.ends_with(".json") && !name.ends_with(".receipt.json")
        })
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect();
    assert_eq!(spooled.len(), 20);
    for call in sidecar["calls"].as_array().unwrap() {
        let caller_tone = call["caller_tone_hz"].as_f64().unwrap();
        let callee_tone = call["callee_tone_hz"].as_f64().unwrap();
        // The stored upload whose audio carries this call's tones.
        let mut found = None;
        for entry in std::fs::read_dir(&mock.store).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|x| x == "wav") {
                let audio = read_wav(&path);
                // A 100 ms block one second into the call.
                let block = |s: &[i16]| s.get(8000..8800).map(<[i16]>::to_vec).unwrap_or_default();
                if tone_ratio(&block(&audio.left), caller_tone) > 0.9
                    && tone_ratio(&block(&audio.right), callee_tone) > 0.9
                {
                    assert!(found.is_none(), "call with {caller_tone} Hz stored twice");
                    found = Some((path, audio));
                }
            }
        }
        let (path, audio) = found.unwrap_or_else(|| panic!("call with {caller_tone} Hz missing"));
        assert!(audio.seconds() > 2.0, "{}", audio.seconds());
        let json: Value =
            serde_json::from_slice(&std::fs::read(path.with_extension("json")).unwrap()).unwrap();
        assert_eq!(json["direction"], 2, "{json}");
        assert_eq!(json["localParty"]["phoneNumber"], "1001");
        assert_eq!(json["remoteParty"]["phoneNumber"], "5551234");
        let k = spooled
            .iter()
            .position(|s| *s == json)
            .unwrap_or_else(|| panic!("stored metadata not in the spool: {json}"));
        spooled.remove(k);
    }
    assert!(spooled.is_empty());
}

#[test]
fn replay_uploads_every_sipp_recording_to_the_strict_receiver() {
    replay_and_check(&[], 0, 0);
}

#[test]
fn replay_delivers_everything_despite_500s_and_dropped_connections() {
    replay_and_check(
        &[
            "--fail-first",
            "3",
            "--fail-status",
            "500",
            "--drop-first",
            "2",
        ],
        3,
        2,
    );
}
