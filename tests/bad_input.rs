//! Clear errors for bad input, end to end through the binary: configs with
//! an unknown key, a wrong type, an invalid CIDR or URL, an unusable spool;
//! truncated and unreadable capture files; a full spool.

mod common;

use std::path::Path;

fn replay_with_config(dir: &Path, toml: &str, pcap: &str) -> (bool, String, String) {
    let config = dir.join("taprec.toml");
    std::fs::write(&config, toml).unwrap();
    let out = common::run(&[
        "replay",
        "--no-upload",
        "-c",
        config.to_str().unwrap(),
        pcap,
    ]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn pcap(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("pcaps")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn bad_configs_name_the_key_and_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let spool = spool.to_str().unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("[recording]\nformt = \"pcm16\"\n", &["formt"]),
        ("[limits]\nmax_calls = \"many\"\n", &["max_calls", "many"]),
        (
            "local_networks = [\"10.0.0.0/33\"]\n",
            &["local_networks", "10.0.0.0/33"],
        ),
        (
            "[upload]\nurl = \"ftp://example.invalid/x\"\n",
            &["upload.url", "ftp://example.invalid/x"],
        ),
        (
            "[limits]\nmax_sip_headers = 0\n",
            &["limits.max_sip_headers", "0"],
        ),
        (
            "[limits]\nmax_sdp_media_lines = 0\n",
            &["limits.max_sdp_media_lines", "0"],
        ),
        (
            "[limits]\nmax_sdp_media_lines = 5000\n",
            &["limits.max_sdp_media_lines", "5000"],
        ),
        (
            "[recording]\nrtp_timeout_secs = -5\n",
            &["rtp_timeout_secs", "-5"],
        ),
    ];
    for (body, wanted) in cases {
        let toml = format!("[spool]\ndir = \"{spool}\"\n{body}");
        let (ok, _, stderr) = replay_with_config(dir.path(), &toml, &pcap("sipp-pcmu.pcap"));
        assert!(!ok, "{body}: accepted");
        for w in *wanted {
            assert!(
                stderr.contains(w),
                "{body}: stderr does not name {w:?}: {stderr}"
            );
        }
    }
    // A spool directory that cannot be created (under a regular file).
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let bad_spool = file.join("spool");
    let toml = format!("[spool]\ndir = \"{}\"\n", bad_spool.display());
    let (ok, _, stderr) = replay_with_config(dir.path(), &toml, &pcap("sipp-pcmu.pcap"));
    assert!(!ok);
    assert!(stderr.contains("spool.dir"), "{stderr}");
    assert!(
        stderr.contains(&bad_spool.display().to_string()),
        "{stderr}"
    );
}

#[test]
fn truncated_capture_is_processed_up_to_where_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(pcap("sipp-pcmu-20calls.pcap")).unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3 + 7]).unwrap();
    let toml = format!(
        "[spool]\ndir = \"{}\"\n",
        dir.path().join("spool").display()
    );
    let (_, stdout, _) = replay_with_config(dir.path(), &toml, cut.to_str().unwrap());
    assert!(stdout.contains("capture error"), "{stdout}");
    assert!(
        stdout.contains("at byte"),
        "says where it stopped: {stdout}"
    );
    let recorded = common::ready_recordings(&dir.path().join("spool"));
    assert!(
        !recorded.is_empty(),
        "what was readable was recorded: {stdout}"
    );
    // Not a capture at all, and a missing file.
    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture file").unwrap();
    let (ok, _, stderr) = replay_with_config(dir.path(), &toml, junk.to_str().unwrap());
    assert!(!ok);
    assert!(
        stderr.contains("junk.pcap") && stderr.contains("not a pcap"),
        "{stderr}"
    );
    let missing = dir.path().join("missing.pcap");
    let (ok, _, stderr) = replay_with_config(dir.path(), &toml, missing.to_str().unwrap());
    assert!(!ok);
    assert!(stderr.contains("missing.pcap"), "{stderr}");
}

#[test]
fn full_spool_stops_new_recordings_and_keeps_the_queued_ones() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    // Three captures one after another: the first call fills the spool.
    let toml = format!("[spool]\ndir = \"{}\"\nmax_bytes = 1000\n", spool.display());
    let config = dir.path().join("taprec.toml");
    std::fs::write(&config, toml).unwrap();
    let out = common::run(&[
        "replay",
        "--no-upload",
        "-c",
        config.to_str().unwrap(),
        &pcap("sipp-pcmu.pcap"),
        &pcap("sipp-pcma.pcap"),
        &pcap("demo.pcap"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "lost recordings make replay fail: {stdout}"
    );
    assert!(
        stdout.contains("spool quota (spool.max_bytes) was reached: 3"),
        "reported: {stdout}"
    );
    assert!(stderr.contains("SPOOL FULL"), "logged: {stderr}");
    let kept = common::ready_recordings(&spool);
    assert_eq!(
        kept.len(),
        1,
        "the recording made before the spool filled is kept: {stdout}"
    );
    for (wav, _) in &kept {
        let stereo = common::read_wav(wav);
        assert!(
            stereo.seconds() > 1.0,
            "{} is a whole recording",
            wav.display()
        );
    }
}

/// Runs one INVITE whose SDP has `m_lines` audio sections through a
/// `Recorder` with `max_sdp_media_lines` and returns the dropped count.
fn sdp_media_dropped(m_lines: u16, max_sdp_media_lines: Option<usize>) -> u64 {
    use taprec::capture::{Frame, LinkType};
    use taprec::synth::wire::{build_udp_frame, Endpoint, IpFields};

    let mut config = taprec::config::Config::default();
    if let Some(max) = max_sdp_media_lines {
        config.limits.max_sdp_media_lines = max;
    }
    config.validate().unwrap();
    let mut sdp =
        String::from("v=0\r\no=- 1 1 IN IP4 10.1.0.5\r\ns=-\r\nc=IN IP4 10.1.0.5\r\nt=0 0\r\n");
    for i in 0..m_lines {
        sdp.push_str(&format!(
            "m=audio {} RTP/AVP 0\r\na=sendrecv\r\n",
            4000 + 2 * i
        ));
    }
    let invite = format!(
        "INVITE sip:2002@10.1.0.6 SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.0.5:5060;branch=z9hG4bK1\r\n\
From: <sip:1001@10.1.0.5>;tag=a\r\nTo: <sip:2002@10.1.0.6>\r\nCall-ID: sdp-cap@x\r\n\
CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    let end = |ip: &str| Endpoint {
        mac: [2, 0, 0, 0, 0, 1],
        ip: ip.parse().unwrap(),
        port: 5060,
    };
    let mut buf = Vec::new();
    assert!(build_udp_frame(
        &mut buf,
        &[],
        &end("10.1.0.5"),
        &end("10.1.0.6"),
        IpFields { id: 1, ttl: 64 },
        |b| b.extend_from_slice(invite.as_bytes()),
    ));
    let mut recorder =
        taprec::recorder::Recorder::new(&config, taprec::memory_store::MemoryStore::new());
    recorder.handle_frame(&Frame {
        ts: taprec::Timestamp(1_767_225_600_000_000_000),
        link: LinkType::Ethernet,
        data: &buf,
        original_len: buf.len() as u32,
    });
    let stats = recorder.stats();
    assert_eq!(stats.calls_seen, 1, "the INVITE was not taken as a call");
    stats.sdp_media_dropped
}

#[test]
fn sdp_media_lines_over_the_limit_are_dropped_and_counted() {
    // Default (16): the 17th m= line is dropped and counted.
    assert_eq!(sdp_media_dropped(16, None), 0);
    assert_eq!(sdp_media_dropped(17, None), 1);
    // limits.max_sdp_media_lines = 2: the third is dropped.
    assert_eq!(sdp_media_dropped(2, Some(2)), 0);
    assert_eq!(sdp_media_dropped(3, Some(2)), 1);
}

/// A tmpfs mounted on a directory for the length of a test; unmounted (lazily
/// if busy) when dropped.
struct Tmpfs {
    dir: std::path::PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. "1m") on `dir`: `None` (with a
    /// message) when this process may not mount; fails when `CI` is set, as
    /// the full-disk test must run there.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let skip = |why: String| {
            assert!(
                std::env::var_os("CI").is_none(),
                "the full-filesystem test cannot run under CI: {why}"
            );
            eprintln!("SKIPPED the full-filesystem test: {why}");
            None
        };
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return skip("needs root to mount a tmpfs".into());
        }
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs {
                dir: dir.to_owned(),
            }),
            Ok(o) => skip(format!(
                "mount failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => skip(format!("cannot run mount: {e}")),
        }
    }

    /// Grows (or shrinks) the mounted filesystem, keeping its files.
    fn resize(&self, size: &str) {
        let out = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let umount = |lazy: bool| {
            let mut cmd = std::process::Command::new("umount");
            if lazy {
                cmd.arg("-l");
            }
            cmd.arg(&self.dir).status().is_ok_and(|s| s.success())
        };
        if !umount(false) && !umount(true) {
            eprintln!("could not unmount {}", self.dir.display());
        }
    }
}

/// Runs taprec, failing the test if it has not finished after `secs`.
fn run_within(args: &[&str], secs: u64) -> (std::process::ExitStatus, String, String) {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = common::taprec()
        .args(args)
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("taprec {args:?} hung: not finished after {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
    (status, read(&out_path), read(&err_path))
}

/// File names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Checks `ready/`: complete WAV + JSON pairs only, each a whole call.
fn assert_ready_complete(spool: &Path, min_seconds: f64) -> Vec<String> {
    let names = names_in(&spool.join("ready"));
    for name in &names {
        assert!(
            name.ends_with(".wav") || name.ends_with(".json"),
            "half-written or stray file in ready/: {name}"
        );
    }
    let kept = common::ready_recordings(spool);
    assert_eq!(
        names.len(),
        2 * kept.len(),
        "a WAV without its JSON: {names:?}"
    );
    for (wav, meta) in &kept {
        let stereo = common::read_wav(wav);
        assert!(
            stereo.seconds() > min_seconds,
            "{} holds {} s",
            wav.display(),
            stereo.seconds()
        );
        assert!(meta["duration"]
            .as_str()
            .is_some_and(|d| d.starts_with("PT")));
    }
    names
}

/// A real full filesystem (ENOSPC, not the spool quota): ten sequential
/// 10-second calls (about 160 KB of WAV each) into a 1 MiB tmpfs. The calls
/// that fit are committed whole; the one the disk fills during is cut and
/// kept in tmp/ for recovery; later calls are refused without leaving files;
/// every loss is reported with the OS error and which recording or call; the
/// process neither panics nor hangs. A restart on the still-full disk starts
/// and keeps the queue; once there is room, recovery queues the cut call
/// flagged truncated.
#[test]
fn full_filesystem_stops_new_recordings_and_keeps_the_queued_ones() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&dir.path().join("mnt"), "1m") else {
        return;
    };
    let spool = fs.dir.join("spool");
    let capture = dir.path().join("calls.pcap");
    let capture = capture.to_str().unwrap();
    common::run_ok(&[
        "synth",
        "-o",
        capture,
        "--calls",
        "10",
        "--concurrency",
        "1",
        "--duration",
        "10",
    ]);
    let config = dir.path().join("taprec.toml");
    std::fs::write(&config, format!("[spool]\ndir = \"{}\"\n", spool.display())).unwrap();
    let config = config.to_str().unwrap();
    let replay = ["replay", "--no-upload", "-c", config];

    let (status, stdout, stderr) = run_within(&[&replay[..], &[capture]].concat(), 120);
    let both = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!both.contains("panicked"), "{both}");
    assert!(
        !status.success(),
        "lost recordings make replay fail: {both}"
    );
    let recorded =
        stdout.matches("\n  recorded ").count() + stdout.starts_with("  recorded ") as usize;
    let lost: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("  skipped "))
        .collect();
    assert!(
        (1..10).contains(&recorded) && recorded + lost.len() == 10,
        "some calls fit and the rest are reported lost: {both}"
    );
    assert!(
        stdout.contains(&format!("recordings lost to spool errors {}", lost.len())),
        "{both}"
    );
    for line in &lost {
        // "  skipped   <call-id>: <reason naming the OS error>"
        assert!(line.contains("@10."), "names the call: {line}");
        assert!(
            line.contains("No space left on device"),
            "names ENOSPC: {line}"
        );
    }
    assert!(
        stderr.contains("SPOOL DISK FULL"),
        "logged loudly: {stderr}"
    );

    // ready/: exactly the recorded calls, whole.
    let ready = assert_ready_complete(&spool, 9.5);
    assert_eq!(ready.len(), 2 * recorded, "{ready:?}\n{both}");
    assert!(names_in(&spool.join("failed")).is_empty());

    // tmp/: only the calls cut by the full disk (their WAV so far and their
    // provisional metadata, named in the report); the refused calls left
    // nothing. The audio is written on a writer thread, so the next call may
    // already have been created when the disk filled under the one before:
    // one or two calls are cut, never more.
    let tmp = names_in(&spool.join("tmp"));
    let cut: Vec<String> = tmp
        .iter()
        .filter_map(|n| n.strip_suffix(".wav.part"))
        .map(str::to_string)
        .collect();
    assert!(
        (1..=2).contains(&cut.len()),
        "the calls being written when the disk filled: {tmp:?}"
    );
    let mut expected_tmp: Vec<String> = cut
        .iter()
        .flat_map(|c| [format!("{c}.meta.json"), format!("{c}.wav.part")])
        .collect();
    expected_tmp.sort();
    assert_eq!(tmp, expected_tmp, "nothing but the cut recordings in tmp/");
    for c in &cut {
        assert!(
            lost.iter().any(|l| l.contains(&format!("{c}.wav.part"))),
            "the cut recording {c} is named: {both}"
        );
    }
    assert!(
        lost.iter()
            .filter(|l| l.contains("cannot write to the spool"))
            .count()
            == lost.len() - cut.len(),
        "the calls after them were refused at the start: {both}"
    );

    // Replaying more on the still-full disk: the new call is refused and
    // reported, the queue and the cut recording stay as they are.
    let small = pcap("sipp-pcmu.pcap");
    let (status, stdout, stderr) = run_within(&[&replay[..], &[small.as_str()]].concat(), 120);
    let both = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!both.contains("panicked"), "{both}");
    assert!(!status.success(), "{both}");
    assert!(stdout.contains("No space left on device"), "{both}");
    assert_eq!(assert_ready_complete(&spool, 9.5), ready);
    assert_eq!(names_in(&spool.join("tmp")), tmp);

    // A restart on the still-full disk (what `run` and `upload` do first):
    // the spool opens, recovery defers the cut recording instead of failing.
    let mut service_config = taprec::config::Config::default();
    service_config.spool.dir = spool.clone();
    let reopened =
        taprec::service::open_spool(&service_config).expect("the spool opens on a full disk");
    let report = reopened.recover().unwrap();
    drop(reopened);
    let mut deferred = report.deferred.clone();
    deferred.sort();
    assert_eq!(deferred, cut, "{report:?}");
    assert!(report.repaired.is_empty() && report.unusable.is_empty());
    assert_eq!(assert_ready_complete(&spool, 9.5), ready);
    assert_eq!(names_in(&spool.join("tmp")), tmp);
    assert!(names_in(&spool.join("failed")).is_empty());

    // With room again, recovery queues the cut call, flagged truncated.
    fs.resize("8m");
    let mut opened = taprec::spool::Spool::open(&spool).unwrap();
    opened.lock().unwrap();
    let report = opened.recover().unwrap();
    drop(opened);
    let mut repaired = report.repaired.clone();
    repaired.sort();
    assert_eq!(repaired, cut, "{report:?}");
    assert!(report.deferred.is_empty());
    assert!(names_in(&spool.join("tmp")).is_empty());
    let kept = common::ready_recordings(&spool);
    assert_eq!(kept.len(), recorded + cut.len());
    for c in &cut {
        let (wav, meta) = kept
            .iter()
            .find(|(wav, _)| wav.file_stem().is_some_and(|s| s == c.as_str()))
            .expect("the cut recording is queued");
        assert!(
            meta["notes"]
                .as_str()
                .is_some_and(|n| n.contains("truncated")),
            "{meta}"
        );
        let seconds = common::read_wav(wav).seconds();
        assert!(seconds > 0.5 && seconds < 10.0, "{seconds}");
    }
}
