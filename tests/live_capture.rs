//! End-to-end tests of `taprec run` capturing live.
//!
//! Each test creates two network namespaces of its own joined by a veth pair:
//! a real SIPp caller (`"Alice Caller" <sip:1001@10.77.0.1>`, 500 Hz tone) in
//! namespace A calls a real SIPp callee (`<sip:5551234@10.77.0.2>`, 1200 Hz)
//! in namespace B; `taprec run` captures on A's end of the veth (and, in the
//! first test, uploads to `taprec mock-api` on A's loopback). Traffic stays
//! inside the namespaces, which are deleted even when a test fails.
//!
//! Needs root, `ip`, `sipp` (Debian `sip-tester`) and `sox`: skipped with a
//! message without them, and failing when `CI` is set.

mod common;

use common::{read_wav, rms, tone_ratio};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const CALLER_IP: &str = "10.77.0.1";
const CALLEE_IP: &str = "10.77.0.2";
const CALLER_HZ: f64 = 500.0;
const CALLEE_HZ: f64 = 1200.0;
const METRICS: &str = "127.0.0.1:9187";

/// True when the test can run; panics under CI when it cannot.
fn prerequisites() -> bool {
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root".to_string());
    }
    for tool in ["ip", "sipp", "sox"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            missing.push(tool.to_string());
        }
    }
    if missing.is_empty() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "live capture test needs {missing:?} (CI is set, so this fails instead of skipping)"
        );
    }
    eprintln!("skipped: live capture test needs {missing:?}");
    false
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces joined by a veth pair, removed on drop.
struct Net {
    a: String,
    b: String,
    veth_a: String,
}

impl Net {
    fn new(tag: &str) -> Net {
        static SERIAL: AtomicU32 = AtomicU32::new(0);
        let n = SERIAL.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}{}", std::process::id() % 100_000, n);
        let net = Net {
            a: format!("taprec-{tag}-{id}-a"),
            b: format!("taprec-{tag}-{id}-b"),
            veth_a: format!("trA{id}"),
        };
        let veth_b = format!("trB{id}");
        sh(&["ip", "netns", "add", &net.a]);
        sh(&["ip", "netns", "add", &net.b]);
        sh(&[
            "ip",
            "-n",
            &net.a,
            "link",
            "add",
            &net.veth_a,
            "type",
            "veth",
            "peer",
            "name",
            &veth_b,
            "netns",
            &net.b,
        ]);
        sh(&[
            "ip",
            "-n",
            &net.a,
            "addr",
            "add",
            &format!("{CALLER_IP}/24"),
            "dev",
            &net.veth_a,
        ]);
        sh(&[
            "ip",
            "-n",
            &net.b,
            "addr",
            "add",
            &format!("{CALLEE_IP}/24"),
            "dev",
            &veth_b,
        ]);
        for (ns, dev) in [(&net.a, &net.veth_a), (&net.b, &veth_b)] {
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        net
    }

    fn exec(&self, ns: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, program]);
        c
    }

    /// GET `path` from the metrics endpoint inside namespace A.
    fn http_get(&self, path: &str) -> String {
        let out = self
            .exec(&self.a, "curl")
            .args(["-s", "-m", "5", &format!("http://{METRICS}{path}")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth pair with it.
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A child process killed (by its id) on drop.
struct Proc(Child, &'static str);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    fn signal(&self, sig: libc::c_int) {
        // SAFETY: sends a signal to our own child by its id.
        unsafe { libc::kill(self.0.id() as libc::pid_t, sig) };
    }

    fn wait_for(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {limit:?}",
                self.1
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Writes the tones and SIPp scenarios into `dir`; returns (uac, uas) paths.
fn scenarios(dir: &Path, talk_secs: u32) -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/sipp");
    let mut out = Vec::new();
    for (role, hz) in [("uac", CALLER_HZ), ("uas", CALLEE_HZ)] {
        let tone = dir.join(format!("{role}.ulaw"));
        sh(&[
            "sox",
            "-n",
            "-r",
            "8000",
            "-c",
            "1",
            "-e",
            "mu-law",
            "-t",
            "raw",
            tone.to_str().unwrap(),
            "synth",
            &(talk_secs + 1).to_string(),
            "sine",
            &hz.to_string(),
            "vol",
            "0.5",
        ]);
        let template = std::fs::read_to_string(root.join(format!("{role}.xml.in"))).unwrap();
        let xml = template
            .replace("@PT@", "0")
            .replace("@CODEC@", "PCMU")
            .replace("@TONE@", tone.to_str().unwrap())
            .replace("@TALK_MS@", &(talk_secs * 1000).to_string())
            .replace("@CALLER@", "1001")
            .replace("@CALLER_NAME@", "Alice Caller")
            .replace("@CALLEE@", "5551234");
        let path = dir.join(format!("{role}.xml"));
        std::fs::write(&path, xml).unwrap();
        out.push(path);
    }
    (out[0].clone(), out[1].clone())
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing in:\n{text}"))
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

struct Call {
    net: Net,
    dir: tempfile::TempDir,
    taprec: Proc,
    uas: Proc,
    uac: Proc,
    _mock: Option<Proc>,
}

/// Starts the namespaces, taprec (and the mock API when `upload`), the
/// callee and then the caller.
fn start_call(tag: &str, talk_secs: u32, upload: bool) -> Call {
    let net = Net::new(tag);
    let dir = tempfile::tempdir().unwrap();
    let (uac, uas) = scenarios(dir.path(), talk_secs);
    let spool = dir.path().join("spool");
    let mock = upload.then(|| {
        let child = net
            .exec(&net.a, env!("CARGO_BIN_EXE_taprec"))
            .args(["mock-api", "--listen", "127.0.0.1:8080", "--store"])
            .arg(dir.path().join("store"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Proc(child, "mock-api")
    });
    let log = std::fs::File::create(dir.path().join("taprec.log")).unwrap();
    let mut cmd = net.exec(&net.a, env!("CARGO_BIN_EXE_taprec"));
    cmd.args(["run", "--interface", &net.veth_a, "--spool"])
        .arg(&spool)
        .args([
            "--local-net",
            &format!("{CALLER_IP}/32"),
            "--metrics-listen",
            METRICS,
        ])
        .args(["--user", "1001=alice", "--shutdown-upload-secs", "15"]);
    if upload {
        cmd.args([
            "--upload-url",
            "http://127.0.0.1:8080/fw/Apps/Recorder/WebAPI/Recordings",
        ]);
    }
    let taprec = Proc(
        cmd.stdout(Stdio::null()).stderr(log).spawn().unwrap(),
        "taprec run",
    );
    // Wait until the service answers its health check (capture is open).
    assert!(
        wait_until(Duration::from_secs(20), || net.http_get("/health")
            == "ok\n"),
        "taprec run never became healthy; log:\n{}",
        std::fs::read_to_string(dir.path().join("taprec.log")).unwrap_or_default()
    );
    let limit = format!("{}s", talk_secs + 30);
    let uas = net
        .exec(&net.b, "sipp")
        .current_dir(dir.path())
        .args([
            "-sf",
            uas.to_str().unwrap(),
            "-t",
            "u1",
            "-i",
            CALLEE_IP,
            "-p",
            "5060",
        ])
        .args(["-mi", CALLEE_IP, "-m", "1", "-nostdin", "-timeout", &limit])
        .args(["-timeout_error", "-trace_err"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let uac = net
        .exec(&net.a, "sipp")
        .current_dir(dir.path())
        .arg(format!("{CALLEE_IP}:5060"))
        .args([
            "-sf",
            uac.to_str().unwrap(),
            "-t",
            "u1",
            "-i",
            CALLER_IP,
            "-p",
            "5061",
        ])
        .args(["-mi", CALLER_IP, "-m", "1", "-nostdin", "-timeout", &limit])
        .args(["-timeout_error", "-trace_err"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Call {
        net,
        dir,
        taprec,
        uas: Proc(uas, "sipp callee"),
        uac: Proc(uac, "sipp caller"),
        _mock: mock,
    }
}

impl Call {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("taprec.log")).unwrap_or_default()
    }

    /// SIGTERM, then the exit status must be 0.
    fn stop(&mut self) {
        self.taprec.signal(libc::SIGTERM);
        let status = self.taprec.wait_for(Duration::from_secs(60));
        assert!(
            status.success(),
            "taprec run exited {status}; log:\n{}",
            self.log()
        );
    }

    /// The single recording in `folder` of the spool: (wav, metadata).
    fn recording(&self, folder: &str) -> (PathBuf, Value) {
        let dir = self.dir.path().join("spool").join(folder);
        let jsons: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}; log:\n{}", dir.display(), self.log()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == "json")
                    && !p.to_string_lossy().ends_with(".receipt.json")
            })
            .collect();
        assert_eq!(
            jsons.len(),
            1,
            "{jsons:?} in {}; log:\n{}",
            dir.display(),
            self.log()
        );
        let meta = serde_json::from_slice(&std::fs::read(&jsons[0]).unwrap()).unwrap();
        (jsons[0].with_extension("wav"), meta)
    }
}

/// The caller's tone is on the left (local) channel, the callee's on the right.
fn check_audio(wav: &Path, min_secs: f64) {
    let audio = read_wav(wav);
    assert!(audio.seconds() >= min_secs, "only {} s", audio.seconds());
    // One second from the middle of the call, on each channel.
    let mid = audio.left.len() / 2;
    let (l, r) = (
        &audio.left[mid - 4000..mid + 4000],
        &audio.right[mid - 4000..mid + 4000],
    );
    assert!(rms(l) > 1000.0 && rms(r) > 1000.0, "silent channel");
    // The tone is measured per 100 ms block, and 8 of the 10 must hold it: a
    // Goertzel sum over the whole second is coherent, so a step of a single
    // sample in the middle (the timeline moving a live channel's anchor
    // under jitter, rules 3 and 4) would cancel a fifth of the 1200 Hz
    // tone's power, though every sample is the callee's.
    let blocks_with = |c: &[i16], hz| c.chunks(800).filter(|b| tone_ratio(b, hz) > 0.8).count();
    // On failure, each channel's tone ratio per 100 ms of the whole
    // recording says where the audio went wrong.
    let per_tenth = |c: &[i16], hz| -> Vec<String> {
        c.chunks(800)
            .map(|s| format!("{:.2}", tone_ratio(s, hz)))
            .collect()
    };
    let channels = [
        ("left", "caller's", l, &audio.left, CALLER_HZ),
        ("right", "callee's", r, &audio.right, CALLEE_HZ),
    ];
    for (side, party, middle, whole, hz) in channels {
        let blocks = blocks_with(middle, hz);
        assert!(
            blocks >= 8,
            "{side} is not the {party} tone (in {blocks} of 10 blocks of the middle second of {} s); per 100 ms: {:?}",
            audio.seconds(),
            per_tenth(whole, hz)
        );
    }
    assert!(tone_ratio(l, CALLEE_HZ) < 0.05 && tone_ratio(r, CALLER_HZ) < 0.05);
}

fn check_parties(meta: &Value) {
    assert_eq!(
        meta["direction"], 2,
        "outgoing: the local caller sent the INVITE"
    );
    assert_eq!(meta["localParty"]["phoneNumber"], "1001");
    assert_eq!(meta["localParty"]["username"], "alice");
    assert_eq!(meta["remoteParty"]["phoneNumber"], "5551234");
    assert!(meta["pbxCallId"].as_str().is_some_and(|s| !s.is_empty()));
}

#[test]
fn live_sipp_call_between_namespaces_is_recorded_and_uploaded() {
    if !prerequisites() {
        return;
    }
    let mut call = start_call("ok", 4, true);
    let before = call.net.http_get("/metrics");
    let status = call.uac.wait_for(Duration::from_secs(60));
    assert!(status.success(), "SIPp caller failed: {status}");
    call.uas.wait_for(Duration::from_secs(30));
    // The recording is written at the BYE, then uploaded.
    let mut after = String::new();
    let done = wait_until(Duration::from_secs(20), || {
        after = call.net.http_get("/metrics");
        // The recorder publishes its counters a few times a second.
        metric(&after, "taprec_uploads_sent_total") >= 1.0
            && metric(&after, "taprec_recordings_written_total") >= 1.0
            && metric(&after, "taprec_sip_messages_total") >= 6.0
    });
    assert!(
        done,
        "not uploaded; metrics:\n{after}\nlog:\n{}",
        call.log()
    );
    // Metrics are exposed and move.
    assert!(
        metric(&after, "taprec_captured_packets_total")
            > metric(&before, "taprec_captured_packets_total") + 300.0
    );
    assert!(metric(&after, "taprec_captured_bytes_total") > 50_000.0);
    assert!(metric(&after, "taprec_sip_messages_total") >= 6.0);
    assert!(metric(&after, "taprec_rtp_packets_total") > 300.0);
    assert_eq!(metric(&after, "taprec_recordings_written_total"), 1.0);
    assert_eq!(metric(&after, "taprec_active_calls"), 0.0);
    assert_eq!(metric(&after, "taprec_kernel_dropped_packets_total"), 0.0);
    assert_eq!(metric(&after, "taprec_queue_dropped_packets_total"), 0.0);
    assert_eq!(metric(&after, "taprec_call_packet_loss_percent_count"), 1.0);
    assert!(
        after.contains("taprec_spool_files{folder=\"ready\"} 0\n"),
        "{after}"
    );
    call.stop();
    let (wav, meta) = call.recording("sent");
    check_audio(&wav, 3.5);
    check_parties(&meta);
    let notes = meta["notes"].as_str().unwrap();
    assert!(
        notes.contains("ended by BYE from the local party"),
        "{notes}"
    );
    assert!(!notes.contains("truncated"), "{notes}");
    let log = call.log();
    assert!(log.contains("recorded call"), "{log}");
}

#[test]
fn live_call_active_at_sigterm_is_finalized_and_queued() {
    if !prerequisites() {
        return;
    }
    let mut call = start_call("term", 60, false);
    // Wait until the call is answered and audio flows, then stop taprec.
    let mut text = String::new();
    let flowing = wait_until(Duration::from_secs(30), || {
        text = call.net.http_get("/metrics");
        metric(&text, "taprec_active_calls") == 1.0
            && metric(&text, "taprec_rtp_packets_total") > 400.0
    });
    assert!(
        flowing,
        "no call in progress; metrics:\n{text}\nlog:\n{}",
        call.log()
    );
    assert_eq!(metric(&text, "taprec_recordings_written_total"), 0.0);
    // SIGHUP reloads the configuration without disturbing the call.
    call.taprec.signal(libc::SIGHUP);
    let reloaded = wait_until(Duration::from_secs(10), || {
        text = call.net.http_get("/metrics");
        metric(&text, "taprec_config_reloads_total") == 1.0
    });
    assert!(reloaded, "SIGHUP not applied; log:\n{}", call.log());
    assert_eq!(metric(&text, "taprec_active_calls"), 1.0);
    call.stop();
    let (wav, meta) = call.recording("ready");
    check_audio(&wav, 2.0);
    check_parties(&meta);
    let notes = meta["notes"].as_str().unwrap();
    assert!(notes.contains("truncated by shutdown"), "{notes}");
    assert!(call
        .log()
        .contains("finalized the calls active at shutdown"));
}
