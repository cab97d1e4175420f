//! End-to-end tests of `taprec upload` against `taprec mock-api`, both run as
//! processes on loopback; what arrives is checked by content.

mod common;

use common::{read_wav, taprec, tone_ratio};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

const API: &str = "/fw/Apps/Recorder/WebAPI/Recordings";

/// A running `taprec mock-api`, killed on drop.
struct Mock {
    child: Child,
    url: String,
    store: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mock {
    fn start(extra: &[&str]) -> Mock {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let mut child = taprec()
            .args(["mock-api", "--listen", "127.0.0.1:0", "--store"])
            .arg(&store)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().unwrap().unwrap();
        let url = first
            .strip_prefix("mock-api listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_string();
        assert!(url.ends_with(API), "{url}");
        // Keep reading so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Mock {
            child,
            url,
            store,
            _dir: dir,
        }
    }

    /// The requests the server logged.
    fn requests(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.store.join("requests.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// (wav, json) of every accepted upload.
    fn stored(&self) -> Vec<(PathBuf, Value)> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.store).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            if name.ends_with(".json") && !name.starts_with('.') {
                let json = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
                out.push((path.with_extension("wav"), json));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    let mut x = i32::from(sample);
    let sign = if x < 0 {
        x = -x;
        0x80
    } else {
        0
    };
    x = (x + BIAS).min(32635 + BIAS);
    let mut exponent = 7;
    while exponent > 0 && x & (0x4000 >> (7 - exponent)) == 0 {
        exponent -= 1;
    }
    let mantissa = (x >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// A stereo u-law WAV: `left` Hz on the left, `right` Hz on the right.
fn tone_wav(left: f64, right: f64, seconds: f64) -> Vec<u8> {
    let frames = (seconds * 8000.0) as u32;
    let mut data = Vec::with_capacity(frames as usize * 2);
    for i in 0..frames {
        let t = f64::from(i) / 8000.0;
        for f in [left, right] {
            let s = (8000.0 * (2.0 * std::f64::consts::PI * f * t).sin()) as i16;
            data.push(ulaw(s));
        }
    }
    let data_len = data.len() as u32;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(50 + data_len + (data_len & 1)).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&18u32.to_le_bytes());
    out.extend_from_slice(&7u16.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&8u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(b"fact");
    out.extend_from_slice(&4u32.to_le_bytes());
    out.extend_from_slice(&frames.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(&data);
    out
}

fn metadata(call: &str, seconds: f64) -> Value {
    json!({
        "startDateTime": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        "duration": format!("PT{seconds}S"),
        "direction": 2,
        "localParty": { "username": "mario_rossi", "phoneNumber": "1001" },
        "remoteParty": { "phoneNumber": "2002" },
        "pbxCallId": call,
        "notes": "PCMU",
        "preserved": false
    })
}

/// Tones of recording k: left and right differ per recording.
fn tones(k: usize) -> (f64, f64) {
    (400.0 + 100.0 * k as f64, 1500.0 + 100.0 * k as f64)
}

/// Puts `n` finished recordings in `<spool>/ready`; returns their metadata.
fn fill_spool(spool: &Path, n: usize, seconds: f64) -> Vec<Value> {
    let ready = spool.join("ready");
    std::fs::create_dir_all(&ready).unwrap();
    (0..n)
        .map(|k| {
            let (l, r) = tones(k);
            let id = format!("20260301T1000{k:02}.000Z-{k:04x}");
            let meta = metadata(&format!("call-{k}@test"), seconds);
            std::fs::write(ready.join(format!("{id}.wav")), tone_wav(l, r, seconds)).unwrap();
            std::fs::write(
                ready.join(format!("{id}.json")),
                serde_json::to_vec(&meta).unwrap(),
            )
            .unwrap();
            meta
        })
        .collect()
}

fn upload(spool: &Path, url: &str, extra: &[&str]) -> Output {
    taprec()
        .args(["upload", "--spool"])
        .arg(spool)
        .args([
            "--upload-url",
            url,
            "--retry-initial-ms",
            "50",
            "--retry-max-secs",
            "1",
        ])
        .args(extra)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn count(dir: &Path, suffix: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_str()
                    .unwrap()
                    .ends_with(suffix)
            })
            .count()
        })
        .unwrap_or(0)
}

/// Every expected recording arrived (at least once), with the same
/// metadata, and its audio has the recording's tones on the right sides.
fn assert_all_arrived(mock: &Mock, expected: &[Value]) {
    let stored = mock.stored();
    for (k, meta) in expected.iter().enumerate() {
        let copies: Vec<&(PathBuf, Value)> = stored.iter().filter(|(_, j)| j == meta).collect();
        assert!(!copies.is_empty(), "recording {k} never arrived: {meta}");
        let (l, r) = tones(k);
        for (wav, _) in copies {
            let audio = read_wav(wav);
            let seconds = audio.seconds();
            assert!(seconds > 0.5, "{} is {seconds} s", wav.display());
            assert!(tone_ratio(&audio.left, l) > 0.9, "left of {k}");
            assert!(tone_ratio(&audio.right, r) > 0.9, "right of {k}");
        }
    }
}

#[test]
fn happy_path_delivers_everything_and_keeps_the_ids() {
    let mock = Mock::start(&[]);
    let spool = tempfile::tempdir().unwrap();
    let expected = fill_spool(spool.path(), 3, 2.0);
    let out = upload(spool.path(), &mock.url, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("sent 3, failed 0, still queued 0"));
    assert_all_arrived(&mock, &expected);
    assert_eq!(mock.stored().len(), 3);
    let sent = spool.path().join("sent");
    assert_eq!(count(&sent, ".receipt.json"), 3);
    assert_eq!(count(&spool.path().join("ready"), ".json"), 0);
    // The receipts hold the ids the server gave.
    let ids: Vec<String> = mock
        .requests()
        .iter()
        .filter_map(|r| r["id"].as_str().map(String::from))
        .collect();
    for entry in std::fs::read_dir(&sent).unwrap() {
        let path = entry.unwrap().path();
        if path.to_str().unwrap().ends_with(".receipt.json") {
            let receipt: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let id = receipt["serverIds"][0].as_str().unwrap();
            assert!(ids.iter().any(|i| i == id), "{id} not issued by the server");
        }
    }
    // Nothing left: a second run has nothing to do and succeeds.
    let again = upload(spool.path(), &mock.url, &[]);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(mock.requests().len(), 3);
}

#[test]
fn failures_and_dropped_connections_are_retried_until_delivered() {
    let mock = Mock::start(&[
        "--fail-first",
        "3",
        "--fail-status",
        "500",
        "--drop-first",
        "2",
    ]);
    let spool = tempfile::tempdir().unwrap();
    let expected = fill_spool(spool.path(), 4, 1.0);
    let out = upload(spool.path(), &mock.url, &["--concurrency", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("sent 4, failed 0, still queued 0"),
        "{stdout}"
    );
    assert_all_arrived(&mock, &expected);
    let requests = mock.requests();
    assert_eq!(requests.iter().filter(|r| r["status"] == 500).count(), 3);
    assert_eq!(
        requests
            .iter()
            .filter(|r| r["outcome"] == "dropped")
            .count(),
        2
    );
    assert_eq!(requests.iter().filter(|r| r["status"] == 201).count(), 4);
}

#[test]
fn five_failures_then_success() {
    let mock = Mock::start(&["--fail-first", "5", "--fail-status", "503"]);
    let spool = tempfile::tempdir().unwrap();
    let expected = fill_spool(spool.path(), 1, 1.0);
    let out = upload(spool.path(), &mock.url, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("6 attempts"),
        "{}",
        text(&out)
    );
    assert_all_arrived(&mock, &expected);
}

#[test]
fn permanent_refusals_go_to_failed_with_the_reason_and_are_not_retried() {
    for status in ["400", "403", "409"] {
        let mock = Mock::start(&["--fail-first", "100", "--fail-status", status]);
        let spool = tempfile::tempdir().unwrap();
        fill_spool(spool.path(), 2, 1.0);
        let out = upload(spool.path(), &mock.url, &["--wait-secs", "20"]);
        assert!(!out.status.success(), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("sent 0, failed 2"),
            "{}",
            text(&out)
        );
        assert_eq!(mock.requests().len(), 2, "no retries on {status}");
        let failed = spool.path().join("failed");
        assert_eq!(count(&failed, ".error.json"), 2);
        assert_eq!(count(&failed, ".wav"), 2);
        assert_eq!(count(&spool.path().join("ready"), ".json"), 0);
        for entry in std::fs::read_dir(&failed).unwrap() {
            let path = entry.unwrap().path();
            if path.to_str().unwrap().ends_with(".error.json") {
                let e: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
                assert_eq!(e["status"].to_string(), status);
                assert!(e["message"].as_str().unwrap().contains("injected"), "{e}");
                if status == "400" {
                    assert_eq!(e["reason"], 1);
                }
            }
        }
        // A second run does not send them again.
        let again = upload(spool.path(), &mock.url, &[]);
        assert!(again.status.success(), "{}", text(&again));
        assert_eq!(mock.requests().len(), 2);
    }
}

#[test]
fn the_strict_server_explains_invalid_metadata_and_audio() {
    let mock = Mock::start(&[]);
    let spool = tempfile::tempdir().unwrap();
    fill_spool(spool.path(), 2, 1.0);
    let ready = spool.path().join("ready");
    let mut jsons: Vec<PathBuf> = std::fs::read_dir(&ready)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().unwrap() == "json")
        .collect();
    jsons.sort();
    // Recording 0: a duration that is not ISO 8601.
    let mut meta: Value = serde_json::from_slice(&std::fs::read(&jsons[0]).unwrap()).unwrap();
    meta["duration"] = json!("1 second");
    std::fs::write(&jsons[0], serde_json::to_vec(&meta).unwrap()).unwrap();
    // Recording 1: garbage after the data chunk breaks the RIFF size.
    let wav = jsons[1].with_extension("wav");
    let mut bytes = std::fs::read(&wav).unwrap();
    bytes.extend_from_slice(b"junk");
    std::fs::write(&wav, bytes).unwrap();
    let out = upload(spool.path(), &mock.url, &[]);
    assert!(!out.status.success(), "{}", text(&out));
    let failed = spool.path().join("failed");
    let errors: Vec<Value> = {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&failed)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_str().unwrap().ends_with(".error.json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    };
    assert_eq!(errors.len(), 2);
    assert_eq!(
        (errors[0]["status"].clone(), errors[0]["reason"].clone()),
        (json!(400), json!(1))
    );
    assert!(errors[0]["message"].as_str().unwrap().contains("duration"));
    assert_eq!(
        (errors[1]["status"].clone(), errors[1]["reason"].clone()),
        (json!(400), json!(2))
    );
    assert!(errors[1]["message"].as_str().unwrap().contains("RIFF"));
}

#[test]
fn unauthorized_is_kept_then_delivered_with_credentials() {
    let mock = Mock::start(&["--basic-auth", "rec:s3cret-pw"]);
    let spool = tempfile::tempdir().unwrap();
    let expected = fill_spool(spool.path(), 1, 1.0);
    let out = upload(spool.path(), &mock.url, &["--wait-secs", "2"]);
    assert!(!out.status.success(), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("401"), "{all}");
    assert!(all.contains("upload.username"), "{all}");
    assert_eq!(count(&spool.path().join("ready"), ".json"), 1, "kept");
    // With the password in a file, given by a config file.
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("pw");
    std::fs::write(&secret, "s3cret-pw\n").unwrap();
    let config = dir.path().join("taprec.toml");
    let mut f = std::fs::File::create(&config).unwrap();
    writeln!(
        f,
        "[upload]\nusername = \"rec\"\npassword_file = {:?}\nretry_initial_ms = 50",
        secret
    )
    .unwrap();
    let out = upload(spool.path(), &mock.url, &["-c", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("s3cret-pw"), "secret logged");
    assert_all_arrived(&mock, &expected);
}

#[test]
fn a_slow_server_times_out_and_the_retry_delivers() {
    let mock = Mock::start(&["--delay-ms", "4000", "--delay-first", "1"]);
    let spool = tempfile::tempdir().unwrap();
    let expected = fill_spool(spool.path(), 1, 1.0);
    let started = Instant::now();
    let out = upload(spool.path(), &mock.url, &["--idle-timeout", "1"]);
    assert!(out.status.success(), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("timed out") || all.contains("no progress"),
        "{all}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "did not wait for the slow answer"
    );
    assert_all_arrived(&mock, &expected);
}

#[test]
fn large_recordings_are_split_into_valid_parts() {
    let mock = Mock::start(&[]);
    let spool = tempfile::tempdir().unwrap();
    // 10 s of stereo u-law = 160058 bytes; parts of 70000 bytes hold 4.3 s.
    let expected = fill_spool(spool.path(), 1, 10.0);
    let out = upload(spool.path(), &mock.url, &["--max-file-bytes", "70000"]);
    assert!(out.status.success(), "{}", text(&out));
    let stored = mock.stored();
    assert_eq!(stored.len(), 3);
    let mut total = 0.0;
    let mut notes: Vec<String> = Vec::new();
    for (wav, json) in &stored {
        let audio = read_wav(wav);
        assert!(std::fs::metadata(wav).unwrap().len() <= 70000);
        assert!(tone_ratio(&audio.left, 400.0) > 0.9);
        assert!(tone_ratio(&audio.right, 1500.0) > 0.9);
        total += audio.seconds();
        assert_eq!(json["pbxCallId"], expected[0]["pbxCallId"]);
        notes.push(json["notes"].as_str().unwrap().to_string());
    }
    notes.sort();
    assert_eq!(
        notes,
        [
            "part 1 of 3; PCMU",
            "part 2 of 3; PCMU",
            "part 3 of 3; PCMU"
        ]
    );
    assert!((total - 10.0).abs() < 0.001, "{total}");
    let receipt = std::fs::read_dir(spool.path().join("sent"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_str().unwrap().ends_with(".receipt.json"))
        .unwrap();
    let receipt: Value = serde_json::from_slice(&std::fs::read(receipt).unwrap()).unwrap();
    assert_eq!(receipt["serverIds"].as_array().unwrap().len(), 3);
}

#[test]
fn kill_9_during_uploads_then_restart_loses_nothing() {
    let mock = Mock::start(&["--delay-ms", "150"]);
    let spool = tempfile::tempdir().unwrap();
    let expected = fill_spool(spool.path(), 20, 1.0);
    let mut child = taprec()
        .args(["upload", "--spool"])
        .arg(spool.path())
        .args(["--upload-url", &mock.url, "--concurrency", "3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some (but not all) recordings were accepted.
    let deadline = Instant::now() + Duration::from_secs(20);
    while mock.stored().len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = mock.stored().len();
    assert!(
        before < 20,
        "killed too late to test anything ({before} sent)"
    );
    let out = upload(spool.path(), &mock.url, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_all_arrived(&mock, &expected);
    assert_eq!(count(&spool.path().join("ready"), ".json"), 0);
    assert_eq!(count(&spool.path().join("sent"), ".receipt.json"), 20);
    // At least once: at most the uploads in flight at the kill are duplicated.
    assert!(
        mock.stored().len() <= 20 + 3,
        "{} stored",
        mock.stored().len()
    );
}

#[test]
fn recordings_cut_by_a_crash_are_repaired_and_delivered_flagged() {
    let mock = Mock::start(&[]);
    let spool = tempfile::tempdir().unwrap();
    let tmp = spool.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    // What the recorder leaves when killed: the header with zero sizes, the
    // samples that reached the disk (here 3 s and half a frame), and the
    // provisional metadata (duration 0).
    let mut wav = tone_wav(700.0, 1900.0, 3.0);
    for at in [4usize, 54, 58 - 4] {
        wav[at..at + 4].copy_from_slice(&[0; 4]);
    }
    wav.push(0x7f);
    let id = "20260301T120000.000Z-00ff";
    std::fs::write(tmp.join(format!("{id}.wav.part")), &wav).unwrap();
    let mut meta = metadata("cut@test", 0.0);
    meta["duration"] = json!("PT0S");
    meta["notes"] = json!("");
    std::fs::write(
        tmp.join(format!("{id}.meta.json")),
        serde_json::to_vec(&meta).unwrap(),
    )
    .unwrap();
    // A recording that never got any audio header.
    std::fs::write(tmp.join("20260301T120001.000Z-0100.wav.part"), b"RIFF").unwrap();
    std::fs::write(
        tmp.join("20260301T120001.000Z-0100.meta.json"),
        serde_json::to_vec(&meta).unwrap(),
    )
    .unwrap();
    let out = upload(spool.path(), &mock.url, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let stored = mock.stored();
    assert_eq!(stored.len(), 1);
    let (path, json) = &stored[0];
    assert_eq!(json["duration"], "PT3S");
    assert!(
        json["notes"].as_str().unwrap().contains("truncated"),
        "{json}"
    );
    assert_eq!(json["pbxCallId"], "cut@test");
    let audio = read_wav(path);
    assert_eq!(audio.left.len(), 24000);
    assert!(tone_ratio(&audio.left, 700.0) > 0.9);
    assert!(tone_ratio(&audio.right, 1900.0) > 0.9);
    // The unusable one is kept in failed/ with why, not deleted.
    let failed = spool.path().join("failed");
    assert_eq!(count(&failed, ".error.json"), 1);
    assert_eq!(count(&tmp, ""), 0);
}

#[test]
fn a_second_process_cannot_take_the_same_spool() {
    let mock = Mock::start(&["--delay-ms", "3000"]);
    let spool = tempfile::tempdir().unwrap();
    fill_spool(spool.path(), 1, 1.0);
    let mut first = taprec()
        .args(["upload", "--spool"])
        .arg(spool.path())
        .args(["--upload-url", &mock.url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let second = upload(spool.path(), &mock.url, &[]);
    assert!(!second.status.success());
    assert!(
        text(&second).contains("in use by another taprec process"),
        "{}",
        text(&second)
    );
    first.kill().unwrap();
    first.wait().unwrap();
}

#[test]
fn kill_9_while_recording_then_upload_recovers_every_call() {
    let mock = Mock::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("calls.pcap");
    let spool = dir.path().join("spool");
    let synth = taprec()
        .args(["synth", "-o"])
        .arg(&pcap)
        .args(["--calls", "100", "--concurrency", "100", "--duration", "60"])
        .output()
        .unwrap();
    assert!(synth.status.success(), "{}", text(&synth));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(pcap.with_extension("json")).unwrap()).unwrap();
    let mut child = taprec()
        .args([
            "replay",
            "--local-net",
            "10.0.0.0/8",
            "--no-upload",
            "--spool",
        ])
        .arg(&spool)
        .arg(&pcap)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill the recorder while calls are being written: once a partial WAV
    // holds more than 2.5 s of stereo audio.
    let tmp = spool.join("tmp");
    let deadline = Instant::now() + Duration::from_secs(60);
    let partial = |min: u64| {
        std::fs::read_dir(&tmp)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".wav.part"))
                    .filter(|e| e.metadata().map(|m| m.len() > min).unwrap_or(false))
                    .count()
            })
            .unwrap_or(0)
    };
    while partial(40_000) == 0 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "replay finished before it could be killed"
        );
        assert!(Instant::now() < deadline, "no partial recording appeared");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let cut = partial(0);
    assert!(cut > 0);
    let out = upload(&spool, &mock.url, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let stored = mock.stored();
    let truncated: Vec<_> = stored
        .iter()
        .filter(|(_, m)| {
            m["notes"]
                .as_str()
                .unwrap()
                .contains("recorder stopped during the call")
        })
        .collect();
    // A call answered just before the kill may have had no audio on disk
    // yet: it is kept in failed/ with its metadata and why, never dropped.
    let failed = spool.join("failed");
    let without_audio = std::fs::read_dir(&failed)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".error.json"))
                .filter(|e| {
                    std::fs::read_to_string(e.path())
                        .unwrap()
                        .contains("before any audio of this call reached the disk")
                })
                .count()
        })
        .unwrap_or(0);
    assert_eq!(count(&failed, ".error.json"), without_audio);
    assert_eq!(count(&failed, ".json") - without_audio, without_audio);
    assert!(!truncated.is_empty());
    assert_eq!(
        truncated.len() + without_audio,
        cut,
        "every partial recording was recovered and delivered, or kept with why"
    );
    let calls = manifest["calls"].as_array().unwrap();
    for (wav, meta) in &truncated {
        let call = calls
            .iter()
            .find(|c| c["call_id"] == meta["pbxCallId"])
            .expect("a call of the capture");
        let w = read_wav(wav);
        if w.seconds() < 2.0 {
            continue;
        }
        // The recovered audio is the call's own, on the right channels.
        let block = &w.left[8000..8800];
        let caller = call["caller"]["tone_hz"].as_f64().unwrap();
        assert!(tone_ratio(block, caller) > 0.9, "{}", wav.display());
        let block = &w.right[8000..8800];
        let callee = call["callee"]["tone_hz"].as_f64().unwrap();
        assert!(tone_ratio(block, callee) > 0.9, "{}", wav.display());
    }
    assert_eq!(count(&spool.join("tmp"), ".wav.part"), 0);
}
